//! The members of each attachment, and what the datapath's attachment
//! table says of it: the member's slot when there is one member, or
//! [`ATTACH_SHARED`].
use hashbrown::{HashMap, HashSet};
use router_common::ATTACH_SHARED;

use crate::changes::Attachment;

/// The members of one attachment: how many, and the sum of their slots
/// (the slot itself when there is one).
#[derive(Clone, Copy, Debug, Default)]
struct Members {
    count: u32,
    sum: u64,
}

/// Every attachment with a member, and those changed since the last
/// [`Attachments::take_changes`].
#[derive(Clone, Debug, Default)]
pub(super) struct Attachments {
    members: HashMap<Attachment, Members>,
    dirty: HashSet<Attachment>,
}

impl Attachments {
    /// Member `slot` is attached at `key`.
    pub(super) fn attach(&mut self, key: Attachment, slot: u32) {
        let a = self.members.entry(key).or_default();
        a.count += 1;
        a.sum += u64::from(slot);
        self.dirty.insert(key);
    }

    /// Member `slot` is no longer attached at `key`.
    pub(super) fn detach(&mut self, key: Attachment, slot: u32) {
        if let Some(a) = self.members.get_mut(&key) {
            a.count -= 1;
            a.sum -= u64::from(slot);
            if a.count == 0 {
                self.members.remove(&key);
            }
        }
        self.dirty.insert(key);
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
