//! The desired state of the datapath tables: which member sits in which
//! counter slot, at which attachment, with which prefixes, and the interfaces.
//!
//! [`Tables`] is changed member by member ([`Tables::check_put`] /
//! [`Tables::commit_put`], [`Tables::remove_member`]) or by whole sets of
//! one origin ([`Tables::check_replace`] / [`Tables::commit_replace`]), and
//! hands out the resulting [`Changes`] for the datapath to apply. It never
//! touches the kernel.
//!
//! The members themselves are kept once, compactly, in a [`MemberStore`]
//! numbered by counter slot; the prefix table ([`RouteTable`]) says who owns
//! which address, and is what a single member is checked against
//! ([`RouteTable::find_overlapping`]).
//!
//! Slots are stable: a member keeps its counter slot for as long as it exists.
//! A freed slot rests for one apply before reuse, and its counters are zeroed
//! when it is given to a new member.
//!
//! # Layout
//! - this module: [`Tables`], the plan (`check_*`) and commit (`commit_*`)
//!   of member changes, and the whole state;
//! - `slots`: member slots, free, resting and reserved;
//! - `interfaces`: the interfaces' slots and descriptions, and the uplinks;
//! - `attachments`: the members of each attachment;
//! - `addresses`: the interfaces' own addresses, sources and gateways;
//! - `learned`: the CPE MACs learned for members without one configured;
//! - `output`: what the tables hand out (changes, whole state, members).
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use router_common::{MAX_IFACES, MemberInfo, member_flags, route};
use smallvec::SmallVec;

use crate::{
    changes::{Attachment, Changes, Edge},
    config::{Config, ConfigError, check_count},
    member::{Member, MemberError, MemberIn, Origin},
    routes::{RouteError, RouteTable},
    store::{MemberStore, MemberView, StoreError},
};

mod addresses;
mod attachments;
mod interfaces;
pub mod learned;
mod output;
mod slots;

#[cfg(test)]
mod tests;

use attachments::Attachments;
pub use interfaces::{Interface, InterfaceSources, LinkInfo};
use slots::Slots;

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("member {member}: all {max} member slots are in use; raise [datapath] max_members")]
    SlotsExhausted { member: String, max: u32 },
    #[error("the router's own address {address}: {source}")]
    LocalRoute {
        address: IpNet,
        #[source]
        source: RouteError,
    },
    #[error("member {member}: {source}")]
    Route {
        member: String,
        #[source]
        source: RouteError,
    },
    #[error("member {member}: interface {interface} is not an [[access]] interface")]
    UnknownInterface { member: String, interface: String },
    #[error("more than {} interfaces are configured", MAX_IFACES - 1)]
    TooManyInterfaces,
    #[error("no member has id {0}")]
    UnknownMember(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The member breaks a rule of the member set (overlap, count).
    #[error(transparent)]
    Invalid(ConfigError),
}

/// The desired contents of every datapath table.
#[derive(Clone, Debug)]
pub struct Tables {
    max_members: u32,
    routes: RouteTable,
    /// The members, numbered by slot.
    members: MemberStore,
    locals: BTreeSet<IpNet>,
    attachments: Attachments,
    ifaces: BTreeMap<String, Interface>,
    slots: Slots,
    /// Interface slots of a previous run, by name.
    reserved_ifaces: BTreeMap<String, u32>,
    /// Each interface's addresses, as the kernel has them, by name.
    link_addresses: BTreeMap<String, Vec<IpAddr>>,
    /// The `[edge]` settings.
    edge: Edge,
    /// CPE MACs learned, by member slot (members without a configured
    /// MAC).
    learned: hashbrown::HashMap<u32, [u8; 6]>,
    pending: Changes,
}

/// What a whole-set change does to each member of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Already so.
    Same,
    /// Replaces the member in this slot.
    Change(u32),
    /// A new member.
    Add,
}

/// A change found to fit: see [`Tables::check_replace`] and
/// [`Tables::check_put`].
#[must_use]
pub struct Checked {
    /// Per part: what happens to each member of its batch.
    steps: Vec<Vec<Step>>,
    /// Slots of the members that go.
    removed: Vec<u32>,
    /// The tables with the change made, when the prefix table was too full
    /// to tell beforehand.
    copy: Option<Box<Tables>>,
    counts: ReplaceCounts,
    /// The change fits without trying.
    fits: bool,
}

impl Checked {
    /// What the change does, by member.
    pub fn counts(&self) -> ReplaceCounts {
        self.counts
    }
}

/// What a whole-set change does, by member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaceCounts {
    pub added: usize,
    pub replaced: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl Tables {
    pub fn new(max_members: u32, route_groups: u32) -> Self {
        Tables {
            max_members,
            routes: RouteTable::new(route_groups),
            members: MemberStore::new(),
            locals: BTreeSet::new(),
            attachments: Attachments::default(),
            ifaces: BTreeMap::new(),
            slots: Slots::new(max_members),
            reserved_ifaces: BTreeMap::new(),
            link_addresses: BTreeMap::new(),
            edge: Edge::default(),
            learned: hashbrown::HashMap::new(),
            pending: Changes::default(),
        }
    }

    /// Empty tables that give members and interfaces back the slots a
    /// previous run gave them, so their counters carry on. Slots of members
    /// that do not come back are freed at the first [`Tables::take_changes`]
    /// or [`Tables::full_state`], and zeroed when reused.
    pub fn with_slots(
        max_members: u32,
        route_groups: u32,
        members: impl IntoIterator<Item = (String, u32)>,
        ifaces: BTreeMap<String, u32>,
    ) -> Self {
        let mut t = Tables::new(max_members, route_groups);
        t.slots = Slots::with_reserved(max_members, members);
        t.reserved_ifaces = ifaces
            .into_iter()
            .filter(|(_, slot)| *slot > 0 && *slot < MAX_IFACES)
            .collect();
        t
    }

    /// Builds the tables of a validated configuration. `links` gives the
    /// kernel's view of each interface; `gateway_macs` the resolved MAC of
    /// each uplink gateway address.
    pub fn from_config(
        config: &Config,
        links: &BTreeMap<String, LinkInfo>,
        gateway_macs: &BTreeMap<IpAddr, [u8; 6]>,
    ) -> Result<Self, TablesError> {
        let mut t = Tables::new(config.datapath.max_members, config.datapath.route_groups());
        t.set_interfaces(config, links, gateway_macs)?;
        t.sync(&config.members)?;
        Ok(t)
    }

    /// Declares the configured interfaces (slots are kept by name) and what
    /// the kernel says of them. Interfaces without a [`LinkInfo`] are kept
    /// with ifindex 0 and match no frame.
    /// All-or-nothing.
    pub fn set_interfaces(
        &mut self,
        config: &Config,
        links: &BTreeMap<String, LinkInfo>,
        gateway_macs: &BTreeMap<IpAddr, [u8; 6]>,
    ) -> Result<(), TablesError> {
        let sources = InterfaceSources {
            config,
            links,
            gateway_macs,
        };
        self.ifaces = self.plan_interfaces(sources)?;
        self.pending.uplinks = interfaces::pick_uplinks(&self.ifaces);
        self.edge = Edge::of(&config.edge);
        Ok(())
    }

    /// The interfaces [`Tables::set_interfaces`] would set.
    fn plan_interfaces(
        &self,
        sources: InterfaceSources<'_>,
    ) -> Result<BTreeMap<String, Interface>, TablesError> {
        let mut ifaces = interfaces::plan(&self.ifaces, &self.reserved_ifaces, sources)
            .map_err(|_| TablesError::TooManyInterfaces)?;
        self.derive_addresses(&mut ifaces);
        Ok(ifaces)
    }

    /// Each interface's addresses, as the kernel has them (by interface
    /// name; the addresses of interfaces absent from the map are none).
    /// The interfaces' sources and gateways follow at once.
    pub fn set_link_addresses(&mut self, addresses: &BTreeMap<String, Vec<IpAddr>>) {
        self.link_addresses = addresses.clone();
        let mut ifaces = std::mem::take(&mut self.ifaces);
        self.derive_addresses(&mut ifaces);
        self.ifaces = ifaces;
    }

    fn derive_addresses(&self, ifaces: &mut BTreeMap<String, Interface>) {
        for (name, i) in ifaces.iter_mut() {
            let addrs = self.link_addresses.get(name).map_or(&[][..], Vec::as_slice);
            (i.addrs, i.gateways) = addresses::derive(i.slot, i.info.kind, addrs);
        }
    }

    /// The configured interfaces, by name.
    pub fn interfaces(&self) -> &BTreeMap<String, Interface> {
        &self.ifaces
    }

    /// Makes the member set equal to `members` (validated beforehand, all of
    /// origin `config`): absent members are removed, changed ones updated,
    /// unchanged ones left alone. All-or-nothing.
    pub fn sync<'a>(
        &mut self,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> Result<(), TablesError> {
        let batch = batch_of(members, Origin::Config)?;
        let parts = [Part::all(&batch)];
        let checked = self.check_replace(&parts)?;
        self.commit_replace(checked, &parts).map(drop)
    }

    /// Checks what replacing whole member sets would do, changing nothing;
    /// [`Tables::commit_replace`] then makes the change. Each part replaces
    /// the members of its origin (or all) with its batch: members of that
    /// origin not in the batch are removed. The batches are validated
    /// beforehand, together with the members they leave alone (ids and
    /// prefixes). Cheap unless the prefix table is too full to tell: the
    /// change is then made on a copy, which the commit takes.
    pub fn check_replace(&self, parts: &[Part<'_>]) -> Result<Checked, TablesError> {
        self.check_replace_with(&self.ifaces, parts, std::iter::empty(), true)
    }

    /// [`Tables::check_replace`] with other interfaces and `extra`
    /// prefixes to make room for; `try_copy`: when the prefix table is too
    /// full to tell, make the change on a copy (else only say so, with
    /// `Checked::copy` empty and `fits` false).
    fn check_replace_with(
        &self,
        ifaces: &BTreeMap<String, Interface>,
        parts: &[Part<'_>],
        extra: impl Iterator<Item = IpNet>,
        try_copy: bool,
    ) -> Result<Checked, TablesError> {
        let mut counts = ReplaceCounts::default();
        let mut steps = Vec::with_capacity(parts.len());
        let mut fresh = 0usize;
        let available = self.slots.available();
        let whole = parts.iter().any(|p| p.whole);
        // Slots a batch member keeps: the others of a whole part's origin go.
        let mut kept = vec![
            false;
            if whole {
                self.members.end() as usize
            } else {
                0
            }
        ];
        // Lists usually come in the order of the last one: the next slot is
        // tried first.
        let mut guess = 0u32;
        for part in parts {
            let mut s = Vec::with_capacity(part.batch.end() as usize);
            for (_, m) in part.batch.iter() {
                let found = self
                    .members
                    .number_near(m.id(), guess)
                    .and_then(|slot| Some((slot, self.members.get(slot)?)));
                let step = match found {
                    Some((slot, cur)) => {
                        guess = slot + 1;
                        if let Some(k) = kept.get_mut(slot as usize) {
                            *k = true;
                        }
                        if cur.same_as_view(&m) && cur.origin() == m.origin() {
                            counts.unchanged += 1;
                            Step::Same
                        } else {
                            counts.replaced += 1;
                            Step::Change(slot)
                        }
                    }
                    None => {
                        counts.added += 1;
                        if !self.slots.is_reserved(m.id()) {
                            fresh += 1;
                            if fresh > available {
                                return Err(TablesError::SlotsExhausted {
                                    member: m.id().to_owned(),
                                    max: self.max_members,
                                });
                            }
                        }
                        Step::Add
                    }
                };
                if step != Step::Same {
                    access_slot(ifaces, m.id(), m.interface())?;
                }
                s.push(step);
            }
            steps.push(s);
        }
        let mut removed = Vec::new();
        for (slot, m) in self.members.iter().filter(|_| whole) {
            let replaced = parts
                .iter()
                .any(|p| p.whole && p.origin.is_none_or(|o| o == m.origin()));
            if replaced && !kept[slot as usize] {
                removed.push(slot);
            }
        }
        counts.removed = removed.len();
        // The prefixes that may need trie groups: those of the new and
        // changed members.
        let new_prefixes = parts.iter().zip(&steps).flat_map(|(p, s)| {
            p.batch
                .iter()
                .zip(s)
                .filter(|(_, step)| **step != Step::Same)
                .flat_map(|((_, m), _)| m.prefixes())
        });
        let needed = self.routes.groups_needed(new_prefixes.chain(extra));
        let fits = needed <= u64::from(self.routes.groups_free());
        let mut checked = Checked {
            steps,
            removed,
            copy: None,
            counts,
            fits,
        };
        if !fits && try_copy {
            // Too full to tell: try on a copy.
            let mut copy = self.clone();
            copy.ifaces = ifaces.clone();
            copy.make_replace(&checked, parts)?;
            checked.copy = Some(Box::new(copy));
        }
        Ok(checked)
    }

    /// Makes the change [`Tables::check_replace`] found to fit, the tables
    /// being unchanged since. Returns the tables it replaced, if it took the
    /// check's copy (for the caller to free off its path).
    pub fn commit_replace(
        &mut self,
        mut checked: Checked,
        parts: &[Part<'_>],
    ) -> Result<Option<Tables>, TablesError> {
        match checked.copy.take() {
            Some(copy) => Ok(Some(std::mem::replace(self, *copy))),
            None => self.make_replace(&checked, parts).map(|()| None),
        }
    }

    /// Removals and prefix releases first, so that a prefix moving between
    /// two members never meets its previous owner; then changes and
    /// additions.
    fn make_replace(&mut self, checked: &Checked, parts: &[Part<'_>]) -> Result<(), TablesError> {
        for &slot in &checked.removed {
            self.delete_slot(slot)?;
        }
        for (part, steps) in parts.iter().zip(&checked.steps) {
            for ((_, m), step) in part.batch.iter().zip(steps) {
                if let Step::Change(slot) = step {
                    let cur = self.members.get(*slot).expect("a planned member");
                    if cur.same_prefixes(&m) {
                        continue;
                    }
                    let (old, new) = (prefix_list(&cur), prefix_list(&m));
                    let gone: SmallVec<[IpNet; 4]> =
                        old.into_iter().filter(|p| !new.contains(p)).collect();
                    for p in gone {
                        self.release(p, *slot, m.id())?;
                    }
                }
            }
        }
        for (part, steps) in parts.iter().zip(&checked.steps) {
            for ((_, m), step) in part.batch.iter().zip(steps) {
                let slot = match step {
                    Step::Same => continue,
                    Step::Change(slot) => *slot,
                    Step::Add => self.alloc_slot(m.id())?,
                };
                self.put_at(slot, &m, m.origin(), *step == Step::Add)?;
            }
        }
        Ok(())
    }

    /// Checks that `m` (with its fields validated) can be put — added, or
    /// replacing the member with its id — against the other members (ids,
    /// prefixes, `max_members`), the interfaces and the room in the tables,
    /// changing nothing. `origin` is the origin it gets; a member of the
    /// other origin with its id is a duplicate.
    pub fn check_put(&self, m: MemberIn<'_>, origin: Origin) -> Result<Checked, TablesError> {
        let mut batch = MemberStore::with_capacity(1);
        batch.push(m, origin)?;
        let current = self.members.by_id(m.id);
        let own = match current {
            Some((slot, cur)) => {
                if cur.origin() != origin {
                    return Err(TablesError::Invalid(
                        MemberError::DuplicateId {
                            member: m.id.to_owned(),
                        }
                        .into(),
                    ));
                }
                Some(slot)
            }
            None => {
                check_count(self.members.len() + 1, self.max_members)
                    .map_err(TablesError::Invalid)?;
                None
            }
        };
        if interfaces::access_slot(&self.ifaces, m.interface).is_none() {
            return Err(TablesError::Invalid(ConfigError::UnknownInterface {
                member: m.id.to_owned(),
                interface: m.interface.to_owned(),
                allowed: interfaces::access_names(&self.ifaces),
            }));
        }
        for net in m.prefixes {
            if let Some((other, other_prefix)) = self.overlapping(net, own) {
                return Err(TablesError::Invalid(
                    MemberError::Overlap {
                        member: m.id.to_owned(),
                        prefix: *net,
                        other_member: other.to_owned(),
                        other_prefix,
                    }
                    .into(),
                ));
            }
        }
        self.check_replace(&[Part::single(&batch)])
    }

    /// Makes the put [`Tables::check_put`] found to fit.
    pub fn commit_put(
        &mut self,
        checked: Checked,
        m: MemberIn<'_>,
        origin: Origin,
    ) -> Result<Option<Tables>, TablesError> {
        let mut batch = MemberStore::with_capacity(1);
        batch.push(m, origin)?;
        self.commit_replace(checked, &[Part::single(&batch)])
    }

    /// Adds or replaces one member (of origin `config`), checked against
    /// the others. All-or-nothing.
    pub fn set_member(&mut self, m: &Member) -> Result<(), TablesError> {
        let checked = self.check_put(m.as_in(), Origin::Config)?;
        self.commit_put(checked, m.as_in(), Origin::Config)
            .map(drop)
    }

    /// A member other than the one in slot `own` with a prefix that
    /// overlaps `net`: its id and that prefix.
    fn overlapping(&self, net: &IpNet, own: Option<u32>) -> Option<(&str, IpNet)> {
        let own_leaf = own.map(route::member_leaf);
        let leaf = self.routes.find_overlapping(*net, |leaf| {
            leaf != route::EMPTY && leaf != route::LOCAL && Some(leaf) != own_leaf
        })?;
        let other = self.members.get(leaf - 1)?;
        let prefix = other
            .prefixes()
            .find(|p| p.contains(net) || net.contains(p))?;
        Some((other.id(), prefix))
    }

    /// Removes one member. All-or-nothing (a removal only frees room).
    pub fn remove_member(&mut self, id: &str) -> Result<(), TablesError> {
        let slot = self
            .members
            .number(id)
            .ok_or_else(|| TablesError::UnknownMember(id.to_string()))?;
        self.delete_slot(slot)
    }

    /// Brings the interfaces, the member sets of `parts` (when given) and
    /// the router's own addresses in line, all at once: on error nothing has
    /// changed. Copies the tables only when the prefix table is too full
    /// to tell beforehand.
    pub fn update(
        &mut self,
        sources: InterfaceSources<'_>,
        parts: &[Part<'_>],
        locals: &[IpAddr],
    ) -> Result<(), TablesError> {
        let ifaces = self.plan_interfaces(sources)?;
        let wanted = local_prefixes(locals);
        let checked = self.check_replace_with(&ifaces, parts, wanted.iter().copied(), false)?;
        let fits = checked.fits;
        let edge = Edge::of(&sources.config.edge);
        let apply = |t: &mut Tables| {
            t.ifaces = ifaces;
            t.pending.uplinks = interfaces::pick_uplinks(&t.ifaces);
            t.edge = edge;
            t.make_replace(&checked, parts)?;
            t.put_locals(wanted)
        };
        if fits {
            apply(self)
        } else {
            let mut next = self.clone();
            apply(&mut next)?;
            *self = next;
            Ok(())
        }
    }

    /// Sets the router's own addresses: they go to the kernel (`pass local`).
    /// An address equal to a member prefix is left to the member. Loopback,
    /// link-local and multicast addresses are left out: such packets never
    /// reach a lookup.
    /// All-or-nothing.
    pub fn set_locals(&mut self, addrs: &[IpAddr]) -> Result<(), TablesError> {
        let wanted = local_prefixes(addrs);
        let needed = self.routes.groups_needed(wanted.iter().copied());
        if needed <= u64::from(self.routes.groups_free()) {
            return self.put_locals(wanted);
        }
        let mut next = self.clone();
        next.put_locals(wanted)?;
        *self = next;
        Ok(())
    }

    fn put_locals(&mut self, wanted: BTreeSet<IpNet>) -> Result<(), TablesError> {
        let old = std::mem::replace(&mut self.locals, wanted.clone());
        for p in old.symmetric_difference(&wanted) {
            let member = self.routes.get(*p).is_some_and(|l| l != route::LOCAL);
            let r = if member {
                // A member's prefix: it stays the member's.
                Ok(())
            } else if wanted.contains(p) {
                self.routes.insert(*p, route::LOCAL)
            } else {
                match self.routes.remove(*p) {
                    Err(RouteError::NotFound { .. }) => Ok(()),
                    other => other,
                }
            };
            r.map_err(|source| TablesError::LocalRoute {
                address: *p,
                source,
            })?;
        }
        Ok(())
    }

    /// Puts batch member `m` in `slot` (a new one when `fresh`): its
    /// prefixes, attachment and datapath entry.
    fn put_at(
        &mut self,
        slot: u32,
        m: &MemberView<'_>,
        origin: Origin,
        fresh: bool,
    ) -> Result<(), TablesError> {
        let iface = access_slot(&self.ifaces, m.id(), m.interface())?;
        let (s_vlan, c_vlan) = m.tags();
        let new_key = Attachment {
            iface: iface as u16,
            s_vlan,
            c_vlan,
        };
        let new_ipv6 = has_ipv6(m);
        let (old_key, new_prefixes): (Option<(Attachment, bool)>, SmallVec<[IpNet; 4]>) =
            match self.members.get(slot) {
                Some(cur) if cur.same_prefixes(m) => {
                    (Some((self.key_of(&cur), new_ipv6)), SmallVec::new())
                }
                Some(cur) => {
                    let old = prefix_list(&cur);
                    (
                        Some((self.key_of(&cur), has_ipv6(&cur))),
                        m.prefixes().filter(|p| !old.contains(p)).collect(),
                    )
                }
                None => (None, m.prefixes().collect()),
            };
        for p in new_prefixes {
            self.routes
                .insert(p, route::member_leaf(slot))
                .map_err(|source| TablesError::Route {
                    member: m.id().to_owned(),
                    source,
                })?;
        }
        if old_key != Some((new_key, new_ipv6)) {
            if let Some((k, ipv6)) = old_key {
                self.attachments.detach(k, slot, ipv6);
            }
            self.attachments.attach(new_key, slot, new_ipv6);
            // Another line: another CPE (a member that only gains or
            // loses IPv6 prefixes keeps its line, and its CPE).
            if old_key.map(|(k, _)| k) != Some(new_key) {
                self.forget_learned(slot);
            }
        }
        if fresh || m.mac().is_some() {
            self.forget_learned(slot);
        }
        let info = self.info_of(slot, iface, m);
        self.pending.members.push((slot, info));
        if fresh {
            self.pending.ids.push(slot, Some(m.id()));
        }
        self.members.set_view(slot, m, origin)?;
        Ok(())
    }

    fn key_of(&self, m: &MemberView<'_>) -> Attachment {
        let iface = self.ifaces.get(m.interface()).map_or(0, |i| i.slot);
        let (s_vlan, c_vlan) = m.tags();
        Attachment {
            iface: iface as u16,
            s_vlan,
            c_vlan,
        }
    }

    fn delete_slot(&mut self, slot: u32) -> Result<(), TablesError> {
        let Some(m) = self.members.get(slot) else {
            return Ok(());
        };
        let prefixes: SmallVec<[IpNet; 4]> = m.prefixes().collect();
        let id = m.id().to_owned();
        let key = self.key_of(&m);
        let ipv6 = has_ipv6(&m);
        for p in prefixes {
            self.release(p, slot, &id)?;
        }
        self.attachments.detach(key, slot, ipv6);
        self.forget_learned(slot);
        self.members.remove(slot);
        self.pending.members.push((slot, MemberInfo::default()));
        self.pending.ids.push(slot, None);
        self.slots.rest(slot);
        Ok(())
    }

    /// Gives up `slot`'s claim on `p`: the router's own address again if it
    /// is one, else nothing. Within one change a prefix can move to a
    /// member that was put before: the new owner's claim stays.
    fn release(&mut self, p: IpNet, slot: u32, who: &str) -> Result<(), TablesError> {
        if self.routes.get(p) != Some(route::member_leaf(slot)) {
            return Ok(());
        }
        let r = if self.locals.contains(&p) {
            self.routes.insert(p, route::LOCAL)
        } else {
            self.routes.remove(p)
        };
        r.map_err(|source| TablesError::Route {
            member: who.to_string(),
            source,
        })
    }

    fn alloc_slot(&mut self, id: &str) -> Result<u32, TablesError> {
        if let Some(slot) = self.slots.take_reserved(id) {
            // Its counters carry on from the previous run; its id is
            // recorded already.
            return Ok(slot);
        }
        let slot = self
            .slots
            .alloc()
            .ok_or_else(|| TablesError::SlotsExhausted {
                member: id.to_string(),
                max: self.max_members,
            })?;
        self.pending.zero_counters.push(slot);
        Ok(slot)
    }
}

/// A member set that replaces the members of one origin (or all): see
/// [`Tables::check_replace`].
#[derive(Clone, Copy)]
pub struct Part<'a> {
    /// `None`: every member.
    pub origin: Option<Origin>,
    pub batch: &'a MemberStore,
    /// Whether members of the origin that the batch lacks go.
    whole: bool,
}

impl<'a> Part<'a> {
    /// `batch` replaces the members of `origin`.
    pub fn of(origin: Origin, batch: &'a MemberStore) -> Self {
        Part {
            origin: Some(origin),
            batch,
            whole: true,
        }
    }

    /// `batch` replaces every member.
    pub fn all(batch: &'a MemberStore) -> Self {
        Part {
            origin: None,
            batch,
            whole: true,
        }
    }

    /// `batch` is put, nobody goes.
    fn single(batch: &'a MemberStore) -> Self {
        Part {
            origin: None,
            batch,
            whole: false,
        }
    }
}

/// A batch of members (validated beforehand).
pub fn batch_of<'a>(
    members: impl IntoIterator<Item = &'a Member>,
    origin: Origin,
) -> Result<MemberStore, TablesError> {
    let mut batch = MemberStore::new();
    for m in members {
        match batch.push(m.as_in(), origin) {
            Ok(_) => {}
            Err(StoreError::Duplicate(id)) => {
                return Err(TablesError::Invalid(
                    MemberError::DuplicateId { member: id }.into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(batch)
}

/// A member's prefixes, decoded once.
fn prefix_list(m: &MemberView<'_>) -> SmallVec<[IpNet; 4]> {
    m.prefixes().collect()
}

/// Whether member `m` has an IPv6 prefix.
fn has_ipv6(m: &MemberView<'_>) -> bool {
    m.prefixes().any(|p| matches!(p, IpNet::V6(_)))
}

/// Whether a router address can be the destination of a forwarded packet.
fn routable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_link_local() || v4.is_multicast() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unspecified()
                || v6.segments()[0] & 0xffc0 == 0xfe80)
        }
    }
}

/// The routable ones of the router's addresses, as host prefixes.
fn local_prefixes(addrs: &[IpAddr]) -> BTreeSet<IpNet> {
    addrs
        .iter()
        .filter(|a| routable(a))
        .map(|a| IpNet::from(*a))
        .collect()
}

/// The slot of a member's interface, which must be an access interface.
fn access_slot(
    ifaces: &BTreeMap<String, Interface>,
    id: &str,
    interface: &str,
) -> Result<u32, TablesError> {
    interfaces::access_slot(ifaces, interface).ok_or_else(|| TablesError::UnknownInterface {
        member: id.to_owned(),
        interface: interface.to_owned(),
    })
}

/// What the datapath holds for member `m` in interface slot `iface`: a
/// configured MAC is checked upstream and used downstream; without one,
/// the member learns its CPE's (`learned`, used downstream only). A
/// PPPoE session's member (origin `session`) has the PPPOE flag, and its
/// MAC, the client's, is checked; it never learns one.
fn member_info(iface: u32, m: &MemberView<'_>, learned: Option<[u8; 6]>) -> MemberInfo {
    let (s_vlan, c_vlan) = m.tags();
    let mut info = MemberInfo {
        iface,
        s_vlan,
        c_vlan,
        mac: [0; 6],
        flags: member_flags::PRESENT,
    };
    let session = m.origin() == Origin::Session;
    if session {
        info.flags |= member_flags::PPPOE;
    }
    if let Some(mac) = m.mac() {
        info.mac = mac.0;
        info.flags |= member_flags::HAS_MAC | member_flags::CHECK_MAC;
    } else if !session {
        info.flags |= member_flags::LEARN;
        if let Some(mac) = learned {
            info.mac = mac;
            info.flags |= member_flags::HAS_MAC;
        }
    }
    info
}
