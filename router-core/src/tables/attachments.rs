//! The members of each attachment, and what the datapath's attachment
//! table says of it: the member's slot when there is one member, or
//! [`ATTACH_SHARED`]; and whether a member with an IPv6 prefix lives there
//! (the attachments that get router advertisements).
use hashbrown::{HashMap, HashSet};
use router_common::ATTACH_SHARED;

use crate::changes::Attachment;

/// The members of one attachment: how many, how many of them have an
/// IPv6 prefix, and the sum of their slots (the slot itself when there is
/// one).
#[derive(Clone, Copy, Debug, Default)]
struct Members {
    count: u32,
    ipv6: u32,
    sum: u64,
}

/// Every attachment with a member, those changed since the last
/// [`Attachments::take_changes`], and those whose IPv6 members changed
/// since the last [`Attachments::take_ipv6_changes`].
#[derive(Clone, Debug, Default)]
pub(super) struct Attachments {
    members: HashMap<Attachment, Members>,
    dirty: HashSet<Attachment>,
    ipv6_dirty: HashSet<Attachment>,
}

impl Attachments {
    /// Member `slot` is attached at `key` (`ipv6`: it has an IPv6 prefix).
    pub(super) fn attach(&mut self, key: Attachment, slot: u32, ipv6: bool) {
        let a = self.members.entry(key).or_default();
        a.count += 1;
        a.sum += u64::from(slot);
        if ipv6 {
            a.ipv6 += 1;
            if a.ipv6 == 1 {
                self.ipv6_dirty.insert(key);
            }
        }
        self.dirty.insert(key);
    }

    /// Member `slot` is no longer attached at `key` (`ipv6`: as it was
    /// attached).
    pub(super) fn detach(&mut self, key: Attachment, slot: u32, ipv6: bool) {
        if let Some(a) = self.members.get_mut(&key) {
            a.count -= 1;
            a.sum -= u64::from(slot);
            if ipv6 {
                a.ipv6 -= 1;
                if a.ipv6 == 0 {
                    self.ipv6_dirty.insert(key);
                }
            }
            if a.count == 0 {
                self.members.remove(&key);
            }
        }
        self.dirty.insert(key);
    }

    /// Whether a member with an IPv6 prefix lives at `key`.
    pub(super) fn has_ipv6(&self, key: &Attachment) -> bool {
        self.members.get(key).is_some_and(|a| a.ipv6 > 0)
    }

    /// The attachments that gained their first IPv6 member or lost their
    /// last since the last call, sorted, with whether one lives there now.
    pub(super) fn take_ipv6_changes(&mut self) -> Vec<(Attachment, bool)> {
        let mut keys: Vec<Attachment> = self.ipv6_dirty.drain().collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| (k, self.has_ipv6(&k))).collect()
    }

    /// Every attachment where a member with an IPv6 prefix lives, sorted.
    pub(super) fn ipv6(&self) -> Vec<Attachment> {
        let mut all: Vec<Attachment> = self
            .members
            .iter()
            .filter(|(_, a)| a.ipv6 > 0)
            .map(|(k, _)| *k)
            .collect();
        all.sort_unstable();
        all
    }

    /// The datapath's value for attachment `key`.
    pub(super) fn value(&self, key: &Attachment) -> Option<u32> {
        self.members.get(key).map(|a| match a.count {
            1 => a.sum as u32,
            _ => ATTACH_SHARED,
        })
    }

    /// The attachments changed since the last call, sorted, with their
    /// values (`None`: no member left).
    pub(super) fn take_changes(&mut self) -> Vec<(Attachment, Option<u32>)> {
        let mut keys: Vec<Attachment> = self.dirty.drain().collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| (k, self.value(&k))).collect()
    }

    /// Every attachment with its value, sorted.
    pub(super) fn all(&self) -> Vec<(Attachment, u32)> {
        let mut all: Vec<(Attachment, u32)> = self
            .members
            .keys()
            .filter_map(|k| Some((*k, self.value(k)?)))
            .collect();
        all.sort_unstable();
        all
    }
}
