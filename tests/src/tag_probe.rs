//! `tag_probe` of `tests-ebpf` as native XDP on an interface: it counts the
//! frames the interface receives by the VLAN tags in their data (TPIDs and
//! VLAN ids) — what the router's XDP program sees, which tcpdump cannot
//! show: libpcap puts the tag the kernel keeps in the skb's metadata back
//! into the frame it prints (`tcpdump -e -i acc0` shows bob's `vlan 101`
//! where acc0's XDP saw an untagged frame) — and passes every frame on.
//!
//! ```text
//!   switch ── sw0 ═══ veth ═══ acc0 [tag_probe, native XDP] ── router's stack
//! ```
//!
//! The XDP link is a BPF link: dropping the probe detaches it, from any
//! namespace.
use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::PerCpuHashMap,
    programs::{Xdp, XdpMode},
};
use tests_ebpf as abi;

use crate::{Netns, netns::in_netns};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tests-ebpf"));

/// A frame's in-band tags as (TPID, VLAN id), outer first (at most two
/// listed; see [`Seen`]).
pub type Tags = Vec<(u16, u16)>;

/// Frames seen, by their in-band tags. A frame with three or more tags is
/// listed under its first two, with a third `(0xffff, 0xffff)` entry.
pub type Seen = BTreeMap<Tags, u64>;

/// `tag_probe` attached to one interface.
pub struct TagProbe {
    ebpf: Ebpf,
}

impl TagProbe {
    /// Attaches the probe in native mode to `dev` of `ns`.
    pub fn attach(ns: &Netns, dev: &str) -> TagProbe {
        let ebpf = in_netns(ns.name(), || -> Result<Ebpf, String> {
            let mut ebpf = Ebpf::load(OBJECT).map_err(|e| format!("loading tests-ebpf: {e}"))?;
            let prog: &mut Xdp = ebpf
                .program_mut(abi::PROBE)
                .ok_or_else(|| format!("no program {}", abi::PROBE))?
                .try_into()
                .map_err(|e| format!("{}: {e}", abi::PROBE))?;
            prog.load().map_err(|e| format!("loading: {e:?}"))?;
            prog.attach(dev, XdpMode::Driver)
                .map_err(|e| format!("attaching to {dev} (native): {e:?}"))?;
            Ok(ebpf)
        })
        .unwrap_or_else(|e| panic!("{} on {}/{dev}: {e}", abi::PROBE, ns.name()));
        TagProbe { ebpf }
    }

    /// Every tag stack seen so far, with its number of frames.
    pub fn seen(&self) -> Seen {
        let map: PerCpuHashMap<_, u64, u64> =
            PerCpuHashMap::try_from(self.ebpf.map(abi::PROBE_SEEN).expect("PROBE_SEEN"))
                .expect("PROBE_SEEN is a per-CPU hash of u64");
        let mut seen = Seen::new();
        for entry in map.iter() {
            let (key, per_cpu) = entry.expect("reading PROBE_SEEN");
            let (n, tags) = abi::probe_unkey(key);
            let mut t: Tags = tags.iter().take(n.min(2) as usize).copied().collect();
            if n > 2 {
                t.push((0xffff, 0xffff));
            }
            *seen.entry(t).or_default() += per_cpu.iter().sum::<u64>();
        }
        seen
    }

    /// Frames seen with exactly these in-band tags.
    pub fn count(&self, tags: &[(u16, u16)]) -> u64 {
        self.seen().get(tags).copied().unwrap_or(0)
    }
}
