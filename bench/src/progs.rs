//! The bench-only XDP programs (bench-ebpf), built by build.rs. Each
//! [`Progs`] is one load of the object, with maps of its own.
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMap, LpmTrie, MapData, PerCpuArray, lpm_trie::Key},
    programs::{TestRun, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use std::os::fd::{AsFd as _, AsRawFd as _};

use collecte::datapath::bench::BENCH_CONF_LEN;
use router_common::{MemberFwd, MemberLine, RouteChunk, member_line_index};
use router_core::changes::FullState;

fn cpus() -> anyhow::Result<u32> {
    aya::util::nr_cpus()
        .map(|n| n as u32)
        .map_err(|(_, e)| anyhow!("counting CPUs: {e}"))
}

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench-ebpf"));

pub const FLOOR: &str = "bench_floor";
pub const RANDOMISE: &str = "bench_randomise";
pub const LPM4: &str = "bench_lpm4";
pub const LPM6: &str = "bench_lpm6";
pub const LOOP: &str = "bench_loop";
pub const FWD: &str = "bench_fwd";
pub const PROBE_TRIE: &str = "probe_trie";
pub const PROBE_MEMBERS: &str = "probe_members";
pub const PROBE_COUNTERS: &str = "probe_counters";
pub const PROBE_FLAT: &str = "probe_flat";
pub const PROBE_CHAIN: &str = "probe_chain";
pub const PROBE_LINE: &str = "probe_line";
pub const PROBE_CHAIN_LINE: &str = "probe_chain_line";
pub const PROBE_CHASE: &str = "probe_chase";
/// Dependent reads per run of `probe_chase` (bench-ebpf `CHASE_HOPS`).
pub const CHASE_HOPS: u32 = 8;
/// Lines of `P_CHASE` (bench-ebpf `CHASE_LINES`).
const CHASE_LINES: u32 = 1 << 20;
pub const LOOKUP4: &str = "lookup4";
pub const LOOKUP6: &str = "lookup6";
pub const ARRAY: &str = "bench_array";

/// `COUNTS` indices.
pub const SEEN: u32 = 0;
pub const HITS: u32 = 1;
pub const DRAINED: u32 = 2;

/// Map sizes of one load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizes {
    pub addresses: u32,
    pub lpm4: u32,
    pub lpm6: u32,
    /// The probes' copies of the datapath's maps: `ROUTES` chunks, `MEMBERS`
    /// entries, `MEMBER_COUNTERS` entries (0: unused).
    pub route_chunks: u32,
    pub members: u32,
    pub counters: u32,
}

pub struct Progs {
    ebpf: Ebpf,
}

impl Progs {
    pub fn load(s: Sizes) -> anyhow::Result<Progs> {
        let ebpf = EbpfLoader::new()
            .map_max_entries("BENCH_ADDRS", s.addresses.max(1))
            .map_max_entries("LPM4", s.lpm4.max(1))
            .map_max_entries("LPM6", s.lpm6.max(1))
            .map_max_entries("P_ROUTES", s.route_chunks.max(1))
            .map_max_entries("P_MEMBERS", s.members.max(1))
            .map_max_entries("P_COUNTERS", s.counters.max(1))
            .map_max_entries("P_FLAT", (s.counters * cpus()?).max(1))
            .map_max_entries("P_LINES", (s.counters * cpus()?).max(1))
            .load(OBJECT)
            .context("loading the bench-ebpf object")?;
        Ok(Progs { ebpf })
    }

    /// The program `name`, loaded into the kernel on first use.
    pub fn prog(&mut self, name: &str) -> anyhow::Result<&mut Xdp> {
        let p: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| anyhow!("bench-ebpf has no program {name}"))?
            .try_into()?;
        if p.fd().is_err() {
            p.load()
                .with_context(|| format!("the kernel refused {name}"))?;
        }
        Ok(p)
    }

    fn map(&mut self, name: &str) -> anyhow::Result<&mut aya::maps::Map> {
        self.ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow!("bench-ebpf has no map {name}"))
    }

    pub fn set_conf(&mut self, conf: &[u8; BENCH_CONF_LEN]) -> anyhow::Result<()> {
        let mut m: Array<&mut MapData, [u8; BENCH_CONF_LEN]> =
            self.map("BENCH_CONF")?.try_into()?;
        m.set(0, conf, 0)?;
        Ok(())
    }

    pub fn set_addresses(&mut self, addrs: &[[u8; 16]]) -> anyhow::Result<()> {
        let mut m: Array<&mut MapData, [u8; 16]> = self.map("BENCH_ADDRS")?.try_into()?;
        for (i, a) in addrs.iter().enumerate() {
            m.set(i as u32, a, 0)?;
        }
        Ok(())
    }

    pub fn insert_lpm4(
        &mut self,
        prefixes: impl Iterator<Item = (ipnet::Ipv4Net, u32)>,
    ) -> anyhow::Result<()> {
        let mut m: LpmTrie<&mut MapData, [u8; 4], u32> = self.map("LPM4")?.try_into()?;
        for (p, v) in prefixes {
            m.insert(
                &Key::new(u32::from(p.prefix_len()), p.network().octets()),
                v,
                0,
            )?;
        }
        Ok(())
    }

    pub fn insert_lpm6(
        &mut self,
        prefixes: impl Iterator<Item = (ipnet::Ipv6Net, u32)>,
    ) -> anyhow::Result<()> {
        let mut m: LpmTrie<&mut MapData, [u8; 16], u32> = self.map("LPM6")?.try_into()?;
        for (p, v) in prefixes {
            m.insert(
                &Key::new(u32::from(p.prefix_len()), p.network().octets()),
                v,
                0,
            )?;
        }
        Ok(())
    }

    /// Fills the probes' maps from the datapath's whole state (`routes` is
    /// one half of its prefix table); `counters` is the members per CPU.
    pub fn fill_probes(&mut self, full: &FullState<'_>, counters: u32) -> anyhow::Result<()> {
        let mut r: Array<&mut MapData, router_common::RouteChunk> =
            self.map("P_ROUTES")?.try_into()?;
        for (i, c) in full
            .routes
            .chunks(router_common::route::CHUNK as usize)
            .enumerate()
        {
            let mut chunk = router_common::RouteChunk::default();
            chunk.0[..c.len()].copy_from_slice(c);
            if chunk != router_common::RouteChunk::default() {
                r.set(i as u32, chunk, 0)?;
            }
        }
        let mut m: Array<&mut MapData, router_common::MemberInfo> =
            self.map("P_MEMBERS")?.try_into()?;
        for (slot, info) in &full.members {
            m.set(*slot, info, 0)?;
        }
        // The lines, as the datapath writes them: half 0 on every CPU,
        // through a mapping (P_LINES is memory-mapped like MEMBER_LINES).
        let lines = self.map("P_LINES")?;
        let aya::maps::Map::Array(data) = lines else {
            anyhow::bail!("P_LINES is not an array");
        };
        let size = std::mem::size_of::<MemberLine>();
        let entries = data.info()?.max_entries() as usize;
        // Nothing runs the probes meanwhile.
        let mapping = Mapping::new(data, "P_LINES", entries * size)?;
        let cpus = cpus()? as usize;
        for (slot, info) in &full.members {
            for cpu in 0..cpus {
                let i = member_line_index(cpu as u32, counters, *slot) as usize;
                assert!(i < entries);
                // SAFETY: within the mapping, at a line boundary.
                unsafe {
                    let line = mapping.base.cast::<MemberLine>().add(i);
                    (*line).fwd[0] = MemberFwd::from_info(info);
                }
            }
        }
        drop(mapping);
        let mut c: Array<&mut MapData, [u32; 4]> = self.map("P_CONF")?.try_into()?;
        c.set(0, [counters, 0, 0, 0], 0)?;
        Ok(())
    }

    /// Fills `P_CHASE` with one random cycle through its lines.
    pub fn fill_chase(&mut self) -> anyhow::Result<()> {
        // A random permutation (xorshift, fixed seed), then each line
        // points to the next one in it.
        let mut order: Vec<u32> = (0..CHASE_LINES).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut next = vec![0u32; CHASE_LINES as usize];
        for k in 0..order.len() {
            next[order[k] as usize] = order[(k + 1) % order.len()];
        }
        let lines = self.map("P_CHASE")?;
        let aya::maps::Map::Array(data) = lines else {
            anyhow::bail!("P_CHASE is not an array");
        };
        let mapping = Mapping::new(data, "P_CHASE", CHASE_LINES as usize * 64)?;
        for (i, n) in next.iter().enumerate() {
            // SAFETY: line i of the mapping.
            unsafe { *mapping.base.cast::<RouteChunk>().add(i) = RouteChunk([*n; 16]) };
        }
        Ok(())
    }

    /// The minimal forward's egress and MACs.
    pub fn set_fwd(
        &mut self,
        egress_ifindex: u32,
        dst: [u8; 6],
        src: [u8; 6],
    ) -> anyhow::Result<()> {
        let mut d: DevMap<&mut MapData> = self.map("FWD_EGRESS")?.try_into()?;
        d.set(0, egress_ifindex, None, 0)?;
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&dst);
        macs[6..].copy_from_slice(&src);
        let mut m: Array<&mut MapData, [u8; 12]> = self.map("FWD_MACS")?.try_into()?;
        m.set(0, macs, 0)?;
        Ok(())
    }

    /// A `COUNTS` entry summed over CPUs.
    pub fn count(&mut self, index: u32) -> anyhow::Result<u64> {
        let m: PerCpuArray<&mut MapData, u64> = self.map("COUNTS")?.try_into()?;
        Ok(m.get(&index, 0)?.iter().sum())
    }

    /// `repeat` runs of `name` on `frame` arriving on `ifindex`: the action
    /// of the last run and the kernel's mean time per run.
    pub fn run(
        &mut self,
        name: &str,
        frame: &[u8],
        ifindex: u32,
        repeat: u32,
    ) -> anyhow::Result<(u32, Duration)> {
        let ctx = xdp_md(frame.len(), ifindex);
        let r = self
            .prog(name)?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..TestRunOptions::default()
            })
            .with_context(|| format!("test run of {name}"))?;
        Ok((r.return_value, r.duration))
    }

    /// The loop generator's egress: `ifindex` as the writer's namespace
    /// knows it.
    pub fn set_loop_egress(&mut self, ifindex: u32) -> anyhow::Result<()> {
        let mut d: DevMap<&mut MapData> = self.map("LOOP_EGRESS")?.try_into()?;
        d.set(0, ifindex, None, 0)?;
        Ok(())
    }

    /// Stops the loop generator (frames in flight are dropped) or lets it
    /// run.
    pub fn set_loop_stop(&mut self, stop: bool) -> anyhow::Result<()> {
        let mut m: Array<&mut MapData, u32> = self.map("LOOP_STOP")?.try_into()?;
        m.set(0, u32::from(stop), 0)?;
        Ok(())
    }

    pub fn attach(&mut self, name: &str, iface: &str) -> anyhow::Result<XdpLinkId> {
        self.prog(name)?
            .attach(iface, XdpMode::Driver)
            .with_context(|| format!("attaching {name} to {iface}"))
    }

    pub fn detach(&mut self, name: &str, link: XdpLinkId) -> anyhow::Result<()> {
        self.prog(name)?.detach(link)?;
        Ok(())
    }
}

/// `struct xdp_md` for a test run: data_end = frame length, ingress ifindex.
pub fn xdp_md(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// A shared read-write mapping of a whole memory-mapped array map, unmapped
/// when dropped.
struct Mapping {
    base: *mut libc::c_void,
    bytes: usize,
}

impl Mapping {
    /// Maps the first `len` bytes (rounded up to whole pages) of `name`.
    fn new(data: &MapData, name: &str, len: usize) -> anyhow::Result<Self> {
        let bytes = len.div_ceil(4096) * 4096;
        // SAFETY: a plain shared mapping of the map's descriptor; `Drop`
        // unmaps exactly it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                data.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        anyhow::ensure!(
            base != libc::MAP_FAILED,
            "mapping {name}: {}",
            std::io::Error::last_os_error()
        );
        Ok(Mapping { base, bytes })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped.
        unsafe { libc::munmap(self.base, self.bytes) };
    }
}
