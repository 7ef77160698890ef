//! The change sets between the planner and the datapath: what the tables
//! computed ([`crate::tables`]) and the daemon writes into the kernel maps.
//! Plain data, shared by both sides; nothing here plans or writes.
use std::{borrow::Cow, collections::BTreeMap};

use router_common::MemberInfo;

/// An attachment: where a member's frames arrive, the interface slot and
/// the tags (0 for none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attachment {
    /// The access interface's slot.
    pub iface: u16,
    /// The outer tag (802.1ad), 0 for none.
    pub s_vlan: u16,
    /// The inner tag, or the single 802.1Q tag, 0 for none.
    pub c_vlan: u16,
}

/// The uplinks upstream traffic leaves by: an interface slot per family, 0
/// for none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uplinks {
    pub v4: u32,
    pub v6: u32,
}

/// The `[edge]` settings the datapath reads (in `Globals`): the rate of
/// the echo replies and ICMP errors it sends, and what its Router
/// Advertisements carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Edge {
    /// Per second and per CPU; 0: none (the packets go to the kernel).
    pub icmp_rate: u32,
    pub icmp_burst: u32,
    /// Router Lifetime, seconds.
    pub router_lifetime: u16,
    /// Cur Hop Limit.
    pub ra_hop_limit: u8,
}

impl Edge {
    /// The settings of an `[edge]` section.
    pub fn of(config: &crate::config::EdgeConfig) -> Self {
        Edge {
            icmp_rate: config.icmp_rate,
            icmp_burst: config.icmp_burst,
            router_lifetime: config.router_lifetime.min(u32::from(u16::MAX)) as u16,
            ra_hop_limit: config.ra_hop_limit,
        }
    }
}

/// A set of table changes to apply at once: desired values of member slots,
/// route entries (index within a half) and attachments (`None` removes),
/// later entries winning over earlier ones for the same slot or key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub members: Vec<(u32, MemberInfo)>,
    pub routes: Vec<(u32, u32)>,
    pub attachments: Vec<(Attachment, Option<u32>)>,
    /// Member slots whose counters start again from zero (newly allocated).
    pub zero_counters: Vec<u32>,
    /// Upstream uplink slots, 0 for none.
    pub uplinks: Uplinks,
    /// The `[edge]` settings in force.
    pub edge: Edge,
    /// Which member id holds each changed slot (`None`: freed), recorded
    /// beside the pinned counters so that a restart gives slots back.
    pub ids: SlotIds,
}

/// Member ids by slot, packed into one string: what `MEMBER_IDS` records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotIds {
    slots: Vec<u32>,
    /// End of each id in `text`.
    ends: Vec<u32>,
    text: String,
}

impl SlotIds {
    /// Records that `id` holds `slot` (`None`: nobody).
    pub fn push(&mut self, slot: u32, id: Option<&str>) {
        self.text.push_str(id.unwrap_or(""));
        self.slots.push(slot);
        self.ends.push(self.text.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Each slot with its holder, in the order recorded.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Option<&str>)> + '_ {
        self.slots.iter().enumerate().map(|(i, &slot)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            let id = &self.text[start..self.ends[i] as usize];
            (slot, (!id.is_empty()).then_some(id))
        })
    }
}

/// The whole desired contents of the tables, written whole into a fresh
/// datapath or one restored from pins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullState<'a> {
    /// One half of the prefix table: the roots and the allocated groups
    /// (borrowed from the tables' own copy: tens of MiB at 1M members).
    pub routes: Cow<'a, [u32]>,
    /// Every member slot in use.
    pub members: Vec<(u32, MemberInfo)>,
    /// Every attachment.
    pub attachments: Vec<(Attachment, u32)>,
    /// Member slots whose counters start again from zero.
    pub zero_counters: Vec<u32>,
    /// Upstream uplink slots.
    pub uplinks: Uplinks,
    /// The `[edge]` settings.
    pub edge: Edge,
    /// Member id of every slot in use.
    pub ids: SlotIds,
}

impl FullState<'_> {
    /// The same, owning its prefix table: for a caller that goes on using
    /// the tables it came from.
    pub fn into_owned(self) -> FullState<'static> {
        FullState {
            routes: Cow::Owned(self.routes.into_owned()),
            members: self.members,
            attachments: self.attachments,
            zero_counters: self.zero_counters,
            uplinks: self.uplinks,
            edge: self.edge,
            ids: self.ids,
        }
    }
}

/// Who held which slot in a previous run, as the pinned tables record it:
/// the tables give these slots back (see `Tables::with_slots`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedSlots {
    /// (member id, slot).
    pub members: Vec<(String, u32)>,
    /// Interface name → slot.
    pub ifaces: BTreeMap<String, u32>,
}
