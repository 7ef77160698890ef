//! The offloads that take VLAN tags away before XDP sees a frame, what to
//! do about them, and the record of what was changed: pure (the ioctls
//! are [`super::ethtool`], the record's file [`super::record`]).
//!
//! - On receive, a NIC with VLAN offload strips the outer tag into the
//!   packet's metadata (`rx-vlan-hw-parse` for 0x8100, `rx-vlan-stag-hw-parse`
//!   for 0x88a8); native XDP sees the frame's data only, without it. VLAN
//!   filtering (`rx-vlan-filter`, `rx-vlan-stag-filter`) drops frames of
//!   VLANs no kernel VLAN device asked for: collecte's members have none.
//!   All four go off on access interfaces and tagged uplinks.
//! - On a veth, the *sending* side decides: with `tx-vlan-hw-insert` /
//!   `tx-vlan-stag-hw-insert` on (the default), a tag its stack or a tc
//!   program put in metadata crosses to the peer as metadata, and native
//!   XDP on the peer never sees it. They go off on the veth peer of an
//!   access interface or tagged uplink when it is in the same namespace.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Receive features that hide tags from XDP, or drop tagged frames.
pub const RX_TAG_FEATURES: &[&str] = &[
    "rx-vlan-hw-parse",
    "rx-vlan-stag-hw-parse",
    "rx-vlan-filter",
    "rx-vlan-stag-filter",
];

/// Transmit features of a veth that hand its peer tags as metadata.
pub const PEER_TX_TAG_FEATURES: &[&str] = &["tx-vlan-hw-insert", "tx-vlan-stag-hw-insert"];

/// One feature as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Its name, as `ethtool -k` prints it (e.g. `rx-vlan-hw-parse`).
    pub name: String,
    /// Currently on.
    pub active: bool,
    /// The user can change it (`ethtool -k` prints `[fixed]` otherwise).
    pub changeable: bool,
}

/// What to do about an interface's features.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// On and changeable: to turn off.
    pub turn_off: Vec<String>,
    /// On and fixed: nothing to do but warn.
    pub fixed_on: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.turn_off.is_empty() && self.fixed_on.is_empty()
    }
}

/// The plan for `features` (an interface's), turning off those of
/// `unwanted` that are on. Features the interface does not have are left
/// out.
pub fn plan(features: &[Feature], unwanted: &[&str]) -> Plan {
    let mut p = Plan::default();
    for name in unwanted {
        match features.iter().find(|f| f.name == *name) {
            Some(f) if f.active && f.changeable => p.turn_off.push(f.name.clone()),
            Some(f) if f.active => p.fixed_on.push(f.name.clone()),
            _ => {}
        }
    }
    p
}

/// What a feature that stays on (fixed) breaks.
pub fn fixed_consequence(feature: &str) -> &'static str {
    match feature {
        "rx-vlan-hw-parse" => {
            "the NIC strips 802.1Q tags before XDP sees the frame: members with a c_vlan alone, and the C-tag of QinQ members on NICs that strip it, will not work on this interface"
        }
        "rx-vlan-stag-hw-parse" => {
            "the NIC strips 802.1ad S-tags before XDP sees the frame: QinQ members will not work on this interface"
        }
        "rx-vlan-filter" | "rx-vlan-stag-filter" => {
            "the NIC drops frames of VLANs the kernel has no VLAN device for: tagged members will not work on this interface"
        }
        "tx-vlan-hw-insert" | "tx-vlan-stag-hw-insert" => {
            "the veth hands its peer tags as metadata, which native XDP does not see: tagged members will not work"
        }
        _ => "tagged members may not work on this interface",
    }
}

/// The format of the record file.
pub const RECORD_FORMAT: &str = "collecte-offloads";
/// Its version.
pub const RECORD_VERSION: u32 = 1;

/// What collecte turned off, so that `collecte stop --detach` can put it
/// back: per network namespace (its identity, see [`super::record`]), per
/// interface, each feature's value before collecte changed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub namespaces: BTreeMap<String, BTreeMap<String, BTreeMap<String, bool>>>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            namespaces: BTreeMap::new(),
        }
    }
}

impl Record {
    /// Notes that `feature` of `interface` in namespace `ns` was `original`
    /// before collecte changed it. A value already recorded stays: it is
    /// the one from before collecte first changed it (a restart finds the
    /// feature off, and must not take that for the original).
    pub fn note(&mut self, ns: &str, interface: &str, feature: &str, original: bool) {
        self.namespaces
            .entry(ns.to_string())
            .or_default()
            .entry(interface.to_string())
            .or_default()
            .entry(feature.to_string())
            .or_insert(original);
    }

    /// Removes and returns what was recorded in namespace `ns`.
    pub fn take(&mut self, ns: &str) -> BTreeMap<String, BTreeMap<String, bool>> {
        self.namespaces.remove(ns).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.namespaces.values().all(|n| n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, active: bool, changeable: bool) -> Feature {
        Feature {
            name: name.into(),
            active,
            changeable,
        }
    }

    #[test]
    fn the_plan_turns_off_what_is_on_and_changeable_and_names_what_is_fixed() {
        let features = [
            f("rx-vlan-hw-parse", true, true),
            f("rx-vlan-stag-hw-parse", true, false),
            f("rx-vlan-filter", false, false),
            f("rx-checksum", true, true),
        ];
        let p = plan(&features, RX_TAG_FEATURES);
        assert_eq!(p.turn_off, ["rx-vlan-hw-parse"]);
        assert_eq!(p.fixed_on, ["rx-vlan-stag-hw-parse"]);
        // Already off, or missing: nothing to do.
        let off = [f("rx-vlan-hw-parse", false, true)];
        assert!(plan(&off, RX_TAG_FEATURES).is_empty());
        assert!(plan(&[], RX_TAG_FEATURES).is_empty());
    }

    #[test]
    fn the_record_keeps_the_first_original_and_round_trips() {
        let mut r = Record::default();
        r.note("4026531840", "acc0", "rx-vlan-hw-parse", true);
        // A restart finds it off: the original stays on.
        r.note("4026531840", "acc0", "rx-vlan-hw-parse", false);
        r.note("4026532000", "acc0", "rx-vlan-stag-hw-parse", true);
        let text = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let mine = r.take("4026531840");
        assert!(mine["acc0"]["rx-vlan-hw-parse"]);
        assert!(!r.is_empty(), "the other namespace's entry stays");
        r.take("4026532000");
        assert!(r.is_empty());
        assert!(r.take("nothing").is_empty());
        // Unknown fields are refused.
        assert!(
            serde_json::from_str::<Record>(r#"{"format":"collecte-offloads","version":1,"x":1}"#)
                .is_err()
        );
    }
}
