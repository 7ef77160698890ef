//! The CPE MACs the datapath learns for members without a configured MAC:
//! its reports (`LEARN_EVENTS`, a ring buffer the daemon reads through
//! `LearnEvents`), and what it keeps by member slot (`LEARNED`), which
//! userspace reads at start — the learned MACs survive a restart — and
//! keeps in step with every member it writes: a member's entry is the MAC
//! its line holds as learned, or none.
use router_common::{LearnedMac, MemberInfo, edge::LEARNED_VALID, member_flags};

use super::Datapath;
use super::error::DatapathError;
use super::ring::LearnEvents;

impl Datapath {
    /// The datapath's reports of CPE MACs, for one reader (the daemon):
    /// `None` once taken.
    pub fn take_learn_events(&mut self) -> Option<LearnEvents> {
        self.learn_events.take().map(|ring| LearnEvents { ring })
    }

    /// Every member slot's learned MAC, as the datapath keeps them (pinned:
    /// what a previous run had).
    pub fn learned_macs(&self) -> Result<Vec<(u32, [u8; 6])>, DatapathError> {
        let mut out = Vec::new();
        self.learned.read(|slot, l| {
            if let Some(mac) = l.get() {
                out.push((slot as u32, mac));
            }
        })?;
        Ok(out)
    }

    /// `LEARNED` of each member written: its learned MAC, or none (a
    /// configured MAC, nothing learned yet, no member).
    pub(super) fn keep_learned<'a>(
        &self,
        members: impl Iterator<Item = (u32, &'a MemberInfo)>,
    ) -> Result<(), DatapathError> {
        let learned = member_flags::LEARN | member_flags::HAS_MAC;
        self.learned.write(members.map(|(slot, m)| {
            let value = if m.flags & learned == learned {
                LearnedMac {
                    mac: m.mac,
                    flags: LEARNED_VALID,
                }
            } else {
                LearnedMac::default()
            };
            (slot as usize, value)
        }))
    }

    /// Clears `LEARNED` of slots given to new members.
    pub(super) fn forget_learned(&self, slots: &[u32]) -> Result<(), DatapathError> {
        self.learned
            .write(slots.iter().map(|&s| (s as usize, LearnedMac::default())))
    }
}
