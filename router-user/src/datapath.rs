//! The only module that touches aya and the kernel maps.
//!
//! [`Datapath`] loads the XDP program embedded in the binary, owns its maps,
//! writes table changes ([`Changes`]) into them, reads counters, runs packets
//! through the program (`BPF_PROG_TEST_RUN`) and attaches it to interfaces.
//!
//! Members, routes and attachments are double-buffered: a change is written
//! into the inactive half, then `GLOBALS.active` flips, so a packet sees
//! either the whole old or the whole new table. The half that just became
//! inactive receives the same change at the next apply.
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMap, HashMap, MapData, MapError, PerCpuArray, PerCpuValues},
    programs::xdp::XdpLinkId,
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode},
    util::nr_cpus,
};
use router_common::{
    ABI_VERSION, AttachKey, Globals, IfaceInfo, MAX_IFACES, MAX_IFINDEX, MemberCounters,
    MemberInfo, TraceVerdict, reason, route,
};

/// The XDP object built by `build.rs` from `router-ebpf`.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/router"));
const PROGRAM_NAME: &str = "collecte";

/// How long a half stays untouched after it stops being active, so that
/// packets already inside the program finish reading it. An XDP program run
/// lasts microseconds.
const GRACE: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "cannot load the XDP program: {0}. collecte needs root (or CAP_BPF and CAP_NET_ADMIN) and a kernel with BTF and XDP (5.15 or later)"
    )]
    Load(#[source] aya::EbpfError),
    #[error(
        "the kernel refused the XDP program: {0}. Check `dmesg` and that the kernel is 5.15 or later"
    )]
    Program(#[source] ProgramError),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map {map}: {message}")]
    Devmap { map: &'static str, message: String },
    #[error(
        "interface {interface} has ifindex {ifindex}, beyond the {MAX_IFINDEX} the datapath can classify; recreate the interface or restart the network namespace"
    )]
    IfindexTooLarge { interface: String, ifindex: u32 },
    #[error("interface slot {0} is out of range (at most {MAX_IFACES} interfaces)")]
    IfaceSlot(u32),
    #[error("cannot attach XDP to {interface} in {mode} mode: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("cannot run the program on a packet: {0}")]
    TestRun(#[source] ProgramError),
    #[error("cannot count the CPUs: {0}")]
    Cpus(String),
}

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |source| DatapathError::Map { map, source }
}

/// Table sizes fixed when the program is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    pub max_members: u32,
    pub route_groups: u32,
}

impl Sizing {
    /// Entries in one half of `ROUTES`.
    pub fn route_half(&self) -> u32 {
        route::half_entries(self.route_groups)
    }
}

/// Which instance of the program to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The forwarding datapath: counts, redirects.
    Forward,
    /// The tracer's instance: takes its ingress interface from a map, records
    /// its verdict, never counts and never redirects.
    Trace,
}

/// A set of table changes to apply at once: desired values of member slots,
/// route entries (index within a half) and attachments (`None` removes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub members: BTreeMap<u32, MemberInfo>,
    pub routes: BTreeMap<u32, u32>,
    pub attachments: BTreeMap<(u16, u16, u16), Option<u32>>,
    /// Member slots whose counters start again from zero (newly allocated).
    pub zero_counters: BTreeSet<u32>,
    /// Upstream uplink slots `(IPv4, IPv6)`, 0 for none.
    pub uplinks: (u32, u32),
}

impl Changes {
    fn merge(&mut self, other: &Changes) {
        self.members
            .extend(other.members.iter().map(|(k, v)| (*k, *v)));
        self.routes
            .extend(other.routes.iter().map(|(k, v)| (*k, *v)));
        self.attachments
            .extend(other.attachments.iter().map(|(k, v)| (*k, *v)));
        self.uplinks = other.uplinks;
    }
}

/// What one run of the program did to a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The XDP action (`XDP_PASS` = 2, `XDP_DROP` = 1, `XDP_REDIRECT` = 4, ...).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// The XDP action codes, as the kernel defines them.
pub mod action {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;

    pub fn name(action: u32) -> &'static str {
        match action {
            ABORTED => "aborted",
            DROP => "drop",
            PASS => "pass",
            TX => "tx",
            REDIRECT => "forward",
            _ => "unknown",
        }
    }
}

/// The loaded program and its maps.
pub struct Datapath {
    ebpf: Ebpf,
    mode: Mode,
    sizing: Sizing,
    globals: Array<MapData, Globals>,
    ifindex_slot: Array<MapData, u32>,
    ifaces: Array<MapData, IfaceInfo>,
    egress: DevMap<MapData>,
    members: Array<MapData, MemberInfo>,
    routes: Array<MapData, u32>,
    attachments: HashMap<MapData, AttachKey, u32>,
    member_counters: PerCpuArray<MapData, MemberCounters>,
    iface_counters: PerCpuArray<MapData, u64>,
    trace: Array<MapData, TraceVerdict>,
    active: u32,
    last_flip: Instant,
    /// Changes the inactive half has not received yet.
    lagging: Changes,
    ncpus: usize,
}

macro_rules! take {
    ($ebpf:expr, $name:literal) => {{
        let map = $ebpf.take_map($name).ok_or(DatapathError::Devmap {
            map: $name,
            message: "missing from the program object".into(),
        })?;
        map.try_into().map_err(map_err($name))?
    }};
}

impl Datapath {
    /// Loads a fresh instance of the program with empty tables.
    pub fn load(sizing: Sizing, mode: Mode) -> Result<Self, DatapathError> {
        let trace: u8 = (mode == Mode::Trace).into();
        let mut ebpf = EbpfLoader::new()
            .override_global("TRACE", &trace, true)
            .map_max_entries("MEMBERS", 2 * sizing.max_members)
            .map_max_entries("ROUTES", 2 * sizing.route_half())
            .map_max_entries("ATTACHMENTS", 2 * sizing.max_members + 2 * MAX_IFACES)
            .map_max_entries("MEMBER_COUNTERS", sizing.max_members)
            .load(PROGRAM)
            .map_err(DatapathError::Load)?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DatapathError::Devmap {
                map: "program",
                message: "the object has no program named collecte".into(),
            })?
            .try_into()
            .map_err(DatapathError::Program)?;
        prog.load().map_err(DatapathError::Program)?;
        let ncpus = nr_cpus().map_err(|(_, e)| DatapathError::Cpus(e.to_string()))?;
        let mut dp = Datapath {
            globals: take!(ebpf, "GLOBALS"),
            ifindex_slot: take!(ebpf, "IFINDEX_SLOT"),
            ifaces: take!(ebpf, "IFACES"),
            egress: take!(ebpf, "EGRESS"),
            members: take!(ebpf, "MEMBERS"),
            routes: take!(ebpf, "ROUTES"),
            attachments: take!(ebpf, "ATTACHMENTS"),
            member_counters: take!(ebpf, "MEMBER_COUNTERS"),
            iface_counters: take!(ebpf, "IFACE_COUNTERS"),
            trace: take!(ebpf, "TRACE_VERDICT"),
            ebpf,
            mode,
            sizing,
            active: 0,
            last_flip: Instant::now(),
            lagging: Changes::default(),
            ncpus,
        };
        dp.write_globals((0, 0))?;
        Ok(dp)
    }

    pub fn sizing(&self) -> Sizing {
        self.sizing
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn program(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .expect("the program was checked at load time")
    }

    fn write_globals(&mut self, uplinks: (u32, u32)) -> Result<(), DatapathError> {
        let g = Globals {
            active: self.active,
            max_members: self.sizing.max_members,
            route_half: self.sizing.route_half(),
            uplink4: uplinks.0,
            uplink6: uplinks.1,
            abi_version: ABI_VERSION,
        };
        self.globals.set(0, g, 0).map_err(map_err("GLOBALS"))
    }

    /// Installs interface `slot`. `previous_ifindex` is the ifindex the slot
    /// had, whose classification entry is removed when it differs.
    pub fn set_iface(
        &mut self,
        slot: u32,
        name: &str,
        info: &IfaceInfo,
        previous_ifindex: Option<u32>,
    ) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if info.ifindex >= MAX_IFINDEX {
            return Err(DatapathError::IfindexTooLarge {
                interface: name.to_string(),
                ifindex: info.ifindex,
            });
        }
        if self.mode == Mode::Forward {
            self.egress
                .set(slot, info.ifindex, None, 0)
                .map_err(|e| DatapathError::Devmap {
                    map: "EGRESS",
                    message: format!("interface {name} (ifindex {}): {e}", info.ifindex),
                })?;
        }
        self.ifaces.set(slot, info, 0).map_err(map_err("IFACES"))?;
        if let Some(old) = previous_ifindex
            && old != info.ifindex
            && old < MAX_IFINDEX
        {
            self.ifindex_slot
                .set(old, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.ifindex_slot
            .set(info.ifindex, slot, 0)
            .map_err(map_err("IFINDEX_SLOT"))
    }

    /// Removes interface `slot` from the datapath.
    pub fn clear_iface(&mut self, slot: u32, ifindex: u32) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if ifindex < MAX_IFINDEX {
            self.ifindex_slot
                .set(ifindex, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.ifaces
            .set(slot, IfaceInfo::default(), 0)
            .map_err(map_err("IFACES"))
    }

    /// Applies `changes`: writes them (and whatever the inactive half still
    /// lacks) into the inactive half, then makes it active.
    pub fn apply(&mut self, changes: &Changes) -> Result<(), DatapathError> {
        let half = 1 - self.active;
        let mut todo = std::mem::take(&mut self.lagging);
        todo.merge(changes);
        // The inactive half was active until `last_flip`.
        let since = self.last_flip.elapsed();
        if since < GRACE {
            std::thread::sleep(GRACE - since);
        }
        for slot in &changes.zero_counters {
            self.zero_member_counters(*slot)?;
        }
        self.write_half(half, &todo)?;
        self.active = half;
        self.write_globals(changes.uplinks)?;
        self.last_flip = Instant::now();
        self.lagging = changes.clone();
        self.lagging.zero_counters.clear();
        Ok(())
    }

    fn write_half(&mut self, half: u32, c: &Changes) -> Result<(), DatapathError> {
        let member_base = half * self.sizing.max_members;
        for (slot, m) in &c.members {
            self.members
                .set(member_base + slot, m, 0)
                .map_err(map_err("MEMBERS"))?;
        }
        let route_base = half * self.sizing.route_half();
        for (index, v) in &c.routes {
            self.routes
                .set(route_base + index, v, 0)
                .map_err(map_err("ROUTES"))?;
        }
        for ((iface, s_vlan, c_vlan), v) in &c.attachments {
            let key = AttachKey {
                iface: *iface,
                half: half as u16,
                s_vlan: *s_vlan,
                c_vlan: *c_vlan,
            };
            match v {
                Some(v) => self
                    .attachments
                    .insert(key, v, 0)
                    .map_err(map_err("ATTACHMENTS"))?,
                None => match self.attachments.remove(&key) {
                    Ok(()) | Err(MapError::KeyNotFound) => {}
                    Err(e) => return Err(map_err("ATTACHMENTS")(e)),
                },
            }
        }
        Ok(())
    }

    fn sum<T: aya::Pod + Default + Copy>(values: &PerCpuValues<T>, add: impl Fn(&mut T, &T)) -> T {
        let mut total = T::default();
        for v in values.iter() {
            add(&mut total, v);
        }
        total
    }

    /// A member's counters, summed over CPUs.
    pub fn member_counters(&self, slot: u32) -> Result<MemberCounters, DatapathError> {
        let values = self
            .member_counters
            .get(&slot, 0)
            .map_err(map_err("MEMBER_COUNTERS"))?;
        Ok(Self::sum(&values, |t, v| {
            t.rx_packets += v.rx_packets;
            t.rx_bytes += v.rx_bytes;
            t.tx_packets += v.tx_packets;
            t.tx_bytes += v.tx_bytes;
            t.spoofed_packets += v.spoofed_packets;
        }))
    }

    /// An interface's packet counters per [`reason`], summed over CPUs.
    pub fn iface_counters(
        &self,
        slot: u32,
    ) -> Result<[u64; reason::COUNT as usize], DatapathError> {
        let mut out = [0u64; reason::COUNT as usize];
        for (r, total) in out.iter_mut().enumerate() {
            let values = self
                .iface_counters
                .get(&(slot * reason::COUNT + r as u32), 0)
                .map_err(map_err("IFACE_COUNTERS"))?;
            *total = Self::sum(&values, |t, v| *t += v);
        }
        Ok(out)
    }

    fn zero_member_counters(&mut self, slot: u32) -> Result<(), DatapathError> {
        let zeros = PerCpuValues::try_from(vec![MemberCounters::default(); self.ncpus])
            .map_err(|e| DatapathError::Cpus(e.to_string()))?;
        self.member_counters
            .set(slot, zeros, 0)
            .map_err(map_err("MEMBER_COUNTERS"))
    }

    /// Runs the program once on `frame` as if it arrived on `ingress_ifindex`.
    /// In [`Mode::Forward`] the interface must exist in the caller's network
    /// namespace; in [`Mode::Trace`] it need not, and the verdict is returned
    /// too.
    pub fn run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
    ) -> Result<(RunResult, Option<TraceVerdict>), DatapathError> {
        if self.mode == Mode::Trace {
            let t = TraceVerdict {
                ingress_ifindex,
                ..TraceVerdict::default()
            };
            self.trace.set(0, t, 0).map_err(map_err("TRACE_VERDICT"))?;
        }
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        if self.mode == Mode::Forward {
            ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        }
        // Room for pushed tags.
        let mut out = vec![0u8; frame.len() + 256];
        let result = self
            .program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::default()
            })
            .map_err(DatapathError::TestRun)?;
        out.truncate(result.data_size_out as usize);
        let verdict = if self.mode == Mode::Trace {
            Some(self.trace.get(&0, 0).map_err(map_err("TRACE_VERDICT"))?)
        } else {
            None
        };
        Ok((
            RunResult {
                action: result.return_value,
                frame: out,
            },
            verdict,
        ))
    }

    /// Detaches the program from an interface.
    pub fn detach(&mut self, link: XdpLinkId) -> Result<(), DatapathError> {
        self.program().detach(link).map_err(DatapathError::Program)
    }

    /// Attaches the program to `interface`.
    pub fn attach(&mut self, interface: &str, mode: XdpMode) -> Result<XdpLinkId, DatapathError> {
        let mode_name = match mode {
            XdpMode::Driver => "native",
            XdpMode::Skb => "generic",
            _ => "default",
        };
        self.program()
            .attach(interface, mode)
            .map_err(|source| DatapathError::Attach {
                interface: interface.to_string(),
                mode: mode_name,
                source,
            })
    }
}
