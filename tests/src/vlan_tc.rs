//! The tc programs of `tests-ebpf` (built by build.rs) on a member's
//! interface: they make a Linux IP stack an 802.1Q or QinQ member, since
//! this kernel has no 802.1Q module to terminate tags.
//!
//! ```text
//!   member netns                          switch / router
//!  ┌──────────────────────────────┐
//!  │ IP stack                     │
//!  │   │ egress       ▲ ingress   │
//!  │ vlan_push     vlan_pop       │   frames carry the member's tags:
//!  │ (C 0x8100,    (exactly the   │   [dst src 88a8 S 8100 C type ...]
//!  │  then S        member's tags,│
//!  │  0x88a8)       popped; any   │
//!  │   │            other dropped)│
//!  │   └── m0 ──────┘             ├──── veth ──── ...
//!  └──────────────────────────────┘
//! ```
//!
//! Each [`VlanTc`] is one load of the object with the member's tags in its
//! read-only globals (`S_VLAN`, `C_VLAN`), attached through a `clsact`
//! qdisc, direct action, by netlink in the member's namespace, so that
//! `tc filter show dev m0 ingress` lists it. Dropping it detaches both
//! programs, from inside that namespace (netlink names interfaces by index,
//! which only means something there).
use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{
        SchedClassifier, TcAttachType,
        tc::{NlOptions, SchedClassifierLink, TcAttachOptions, qdisc_add_clsact},
    },
};
use tests_ebpf as abi;

use crate::{Netns, topology::in_netns};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tests-ebpf"));

/// What the two programs of one attachment counted, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagCounts {
    /// Egress frames that left with the member's tags.
    pub pushed: u64,
    pub push_failed: u64,
    /// Ingress frames with exactly the member's tags, popped.
    pub accepted: u64,
    /// Ingress frames dropped: untagged (for a tagged member).
    pub drop_untagged: u64,
    /// Ingress frames dropped: other or more tags (any tag, for an
    /// untagged member).
    pub drop_other: u64,
    pub pop_failed: u64,
    /// Accepted tagged frames whose outer tag was in the skb's metadata
    /// (`__sk_buff.vlan_present`), or in the frame's data.
    pub outer_in_meta: u64,
    pub outer_in_data: u64,
}

/// `vlan_push` on egress and `vlan_pop` on ingress of one interface.
pub struct VlanTc {
    ebpf: Ebpf,
    /// The two netlink attachments, detached on drop.
    links: Vec<SchedClassifierLink>,
    ns: String,
    dev: String,
}

impl VlanTc {
    /// Attaches both programs to `dev` of `ns` for a member with these tags
    /// (`c_vlan` 0: untagged, which still drops every tagged frame).
    pub fn attach(ns: &Netns, dev: &str, s_vlan: u16, c_vlan: u16) -> VlanTc {
        assert!(s_vlan == 0 || c_vlan != 0, "an S-tag needs a C-tag");
        let (ebpf, links) = in_netns(ns.name(), || -> Result<_, String> {
            let mut ebpf = EbpfLoader::new()
                .override_global(abi::S_VLAN, &s_vlan, true)
                .override_global(abi::C_VLAN, &c_vlan, true)
                .load(OBJECT)
                .map_err(|e| format!("loading tests-ebpf: {e}"))?;
            // EEXIST: a clsact qdisc is already there (a second attach).
            if let Err(e) = qdisc_add_clsact(dev)
                && !e.to_string().contains("exists")
            {
                return Err(format!("adding clsact to {dev}: {e}"));
            }
            let mut links = Vec::new();
            for (name, at) in [
                (abi::PUSH, TcAttachType::Egress),
                (abi::POP, TcAttachType::Ingress),
            ] {
                let prog: &mut SchedClassifier = ebpf
                    .program_mut(name)
                    .ok_or_else(|| format!("no program {name} in tests-ebpf"))?
                    .try_into()
                    .map_err(|e| format!("{name}: {e}"))?;
                prog.load().map_err(|e| format!("loading {name}: {e:?}"))?;
                let id = prog
                    .attach_with_options(dev, at, TcAttachOptions::Netlink(NlOptions::default()))
                    .map_err(|e| format!("attaching {name} to {dev} ({at:?}): {e:?}"))?;
                links.push(prog.take_link(id).map_err(|e| format!("{name}: {e:?}"))?);
            }
            Ok((ebpf, links))
        })
        .unwrap_or_else(|e| panic!("tc programs on {}/{dev}: {e}", ns.name()));
        VlanTc {
            ebpf,
            links,
            ns: ns.name().to_string(),
            dev: dev.to_string(),
        }
    }

    /// The programs' counters, summed over CPUs.
    pub fn counts(&self) -> TagCounts {
        let map: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.ebpf
                .map(abi::COUNTS)
                .unwrap_or_else(|| panic!("no map {}", abi::COUNTS)),
        )
        .expect("COUNTS is a per-CPU array of u64");
        let get = |i: u32| -> u64 {
            map.get(&i, 0)
                .unwrap_or_else(|e| panic!("reading COUNTS[{i}]: {e}"))
                .iter()
                .sum()
        };
        TagCounts {
            pushed: get(abi::PUSHED),
            push_failed: get(abi::PUSH_FAILED),
            accepted: get(abi::ACCEPTED),
            drop_untagged: get(abi::DROP_UNTAGGED),
            drop_other: get(abi::DROP_OTHER),
            pop_failed: get(abi::POP_FAILED),
            outer_in_meta: get(abi::OUTER_IN_META),
            outer_in_data: get(abi::OUTER_IN_DATA),
        }
    }

    /// Where the programs are, for messages.
    pub fn place(&self) -> String {
        format!("{}/{}", self.ns, self.dev)
    }
}

impl Drop for VlanTc {
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        // Detach where the interface index names this interface. When the
        // namespace is already gone, so are its interfaces and their
        // filters: forget the links (plain ids) rather than let a detach
        // run against an interface of the caller's namespace.
        if std::path::Path::new(&format!("/run/netns/{}", self.ns)).exists() {
            in_netns(&self.ns, move || drop(links));
        } else {
            std::mem::forget(links);
        }
    }
}
