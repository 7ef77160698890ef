//! CPE MACs learned for members without a configured MAC: the datapath
//! reports the MAC a member's frames come from, and the tables make it the
//! member's MAC (downstream goes to it) as a change like any other. A
//! member forgets it when it goes, gets a configured MAC, or moves to
//! another attachment (another line, another CPE); a slot given to a new
//! member starts without one.
use router_common::MemberInfo;

use super::{Tables, member_info};
use crate::member::Origin;

/// What a report of a CPE MAC did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// The member had none: `mac` is its MAC now.
    New { mac: [u8; 6] },
    /// The member's MAC changed from `old` (a new CPE).
    Changed { old: [u8; 6], mac: [u8; 6] },
    /// The member had this one already.
    Same,
    /// Nothing: no member in the slot, or one with a configured MAC (or a
    /// PPPoE session's).
    Ignored,
}

impl Tables {
    /// Member `slot`'s CPE sends from `mac`: the MAC it learns, if it has
    /// none configured. The change is pending like any other.
    pub fn learn(&mut self, slot: u32, mac: [u8; 6]) -> Learned {
        let Some(m) = self.members.get(slot) else {
            return Learned::Ignored;
        };
        if m.mac().is_some() || m.origin() == Origin::Session {
            return Learned::Ignored;
        }
        let previous = self.learned.insert(slot, mac);
        if previous == Some(mac) {
            return Learned::Same;
        }
        let iface = self.ifaces.get(m.interface()).map_or(0, |i| i.slot);
        let info = member_info(iface, &m, Some(mac));
        self.pending.members.push((slot, info));
        match previous {
            None => Learned::New { mac },
            Some(old) => Learned::Changed { old, mac },
        }
    }

    /// The MAC member `slot` learned, if any.
    pub fn learned_mac(&self, slot: u32) -> Option<[u8; 6]> {
        self.learned.get(&slot).copied()
    }

    /// Gives members the MACs a previous run learned (`(slot, mac)`, as the
    /// datapath kept them): only to members that got their slot back from
    /// that run (a newly allocated slot's record belonged to someone else)
    /// and have no configured MAC. Returns how many were restored.
    pub fn restore_learned(&mut self, learned: impl IntoIterator<Item = (u32, [u8; 6])>) -> usize {
        let fresh: hashbrown::HashSet<u32> = self.pending.zero_counters.iter().copied().collect();
        let mut n = 0;
        for (slot, mac) in learned {
            if !fresh.contains(&slot) && matches!(self.learn(slot, mac), Learned::New { .. }) {
                n += 1;
            }
        }
        n
    }

    /// Member `slot` forgets the MAC it learned.
    pub(super) fn forget_learned(&mut self, slot: u32) {
        self.learned.remove(&slot);
    }

    /// What the datapath holds for member `slot` (in `iface`), its learned
    /// MAC included.
    pub(super) fn info_of(
        &self,
        slot: u32,
        iface: u32,
        m: &crate::store::MemberView<'_>,
    ) -> MemberInfo {
        member_info(iface, m, self.learned.get(&slot).copied())
    }
}
