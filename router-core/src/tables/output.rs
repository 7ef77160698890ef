//! What the tables hand out: the changes since the caller last took them,
//! the whole state for a fresh datapath, and read access to the members
//! and the prefix table.
use crate::changes::{Attachment, Changes, FullState};
use crate::routes::RouteTable;
use crate::store::{MemberStore, MemberView};

use super::Tables;
use super::interfaces::pick_uplinks;

impl Tables {
    /// Takes what changed since the last call. Slots freed before the
    /// previous call become reusable.
    pub fn take_changes(&mut self) -> Changes {
        let members = &self.members;
        self.slots
            .release_reserved(|slot| members.get(slot).is_some());
        self.slots.recycle();
        let mut c = std::mem::take(&mut self.pending);
        c.attachments = self.attachments.take_changes();
        c.routes = self.routes.take_dirty();
        c.uplinks = pick_uplinks(&self.ifaces);
        self.pending.uplinks = c.uplinks;
        c.edge = self.edge;
        c
    }

    /// Everything the tables hold, to write into a fresh datapath or one
    /// restored from pins. Takes the pending changes too.
    pub fn full_state(&mut self) -> FullState<'_> {
        // The pending changes' members and ids are in the whole state: they
        // go before it is built.
        let Changes {
            zero_counters,
            uplinks,
            edge,
            ..
        } = self.take_changes();
        let mut full = FullState {
            routes: self.routes.entries().into(),
            zero_counters,
            uplinks,
            edge,
            ..FullState::default()
        };
        full.members.reserve(self.members.len());
        for (slot, m) in self.members.iter() {
            let iface = self.ifaces.get(m.interface()).map_or(0, |i| i.slot);
            full.members.push((slot, self.info_of(slot, iface, &m)));
            full.ids.push(slot, Some(m.id()));
        }
        full.attachments = self.attachments.all();
        full
    }

    /// The attachments that gained their first member with an IPv6 prefix,
    /// or lost their last, since the last call (the first call: since the
    /// tables were made), sorted, with whether one lives there now: what
    /// the router advertisements follow. Independent of
    /// [`Tables::take_changes`].
    pub fn take_ipv6_attachment_changes(&mut self) -> Vec<(Attachment, bool)> {
        self.attachments.take_ipv6_changes()
    }

    /// Every attachment where a member with an IPv6 prefix lives, sorted.
    pub fn ipv6_attachments(&self) -> Vec<Attachment> {
        self.attachments.ipv6()
    }

    /// Member slot of `id`.
    pub fn slot(&self, id: &str) -> Option<u32> {
        self.members.number(id)
    }

    /// Member id in `slot`.
    pub fn id(&self, slot: u32) -> Option<&str> {
        self.members.get(slot).map(|m| m.id())
    }

    /// Member `id`, with its slot.
    pub fn member(&self, id: &str) -> Option<(u32, MemberView<'_>)> {
        self.members.by_id(id)
    }

    /// Members with their slots, by slot.
    pub fn members(&self) -> impl Iterator<Item = (u32, MemberView<'_>)> + '_ {
        self.members.iter()
    }

    /// The member store.
    pub fn store(&self) -> &MemberStore {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The prefix table, for lookups and statistics.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }
}
