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
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use hashbrown::{HashMap, HashSet};

use ipnet::IpNet;
use router_common::{
    ATTACH_SHARED, IfaceInfo, MAX_IFACES, MemberInfo, iface_flags, kind, member_flags, route,
};
use smallvec::SmallVec;

use router_core::{
    config::{Config, ConfigError, check_count},
    member::{Member, MemberError, MemberIn, Origin},
    store::{MemberStore, MemberView, StoreError},
};

use crate::{
    datapath::{Changes, FullState},
    neighbors::LinkInfo,
    routes::{RouteError, RouteTable},
};

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

/// A configured interface and what the datapath knows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub slot: u32,
    pub info: IfaceInfo,
    /// The link is up.
    pub up: bool,
    /// Position in the configuration (uplinks first).
    pub order: usize,
}

/// The members of one attachment: how many, and the sum of their slots
/// (the slot itself when there is one).
#[derive(Clone, Copy, Debug, Default)]
struct Attach {
    count: u32,
    sum: u64,
}

type AttachKey = (u16, u16, u16);

/// The desired contents of every datapath table.
#[derive(Clone, Debug)]
pub struct Tables {
    max_members: u32,
    routes: RouteTable,
    /// The members, numbered by slot.
    members: MemberStore,
    locals: BTreeSet<IpNet>,
    attachments: HashMap<AttachKey, Attach>,
    ifaces: BTreeMap<String, Interface>,
    free: Vec<u32>,
    resting: Vec<u32>,
    next_slot: u32,
    /// Slots a previous run gave to members (restored from the pinned
    /// tables): a member with one of these ids gets its slot back.
    reserved: HashMap<String, u32>,
    /// Interface slots of a previous run, by name.
    reserved_ifaces: BTreeMap<String, u32>,
    pending: Changes,
    /// Attachments changed since the last [`Tables::take_changes`].
    dirty_attachments: HashSet<AttachKey>,
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
            attachments: HashMap::new(),
            ifaces: BTreeMap::new(),
            free: Vec::new(),
            resting: Vec::new(),
            next_slot: 0,
            reserved: HashMap::new(),
            reserved_ifaces: BTreeMap::new(),
            pending: Changes::default(),
            dirty_attachments: HashSet::new(),
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
        t.reserved = members
            .into_iter()
            .filter(|(_, slot)| *slot < max_members)
            .collect();
        // Fresh slots come from the gaps between the reserved ones, then
        // from above them: a reserved slot is only ever given back to its
        // member (or freed, when it does not come back).
        let mut used = vec![false; t.reserved.values().max().map_or(0, |s| *s as usize + 1)];
        for s in t.reserved.values() {
            used[*s as usize] = true;
        }
        t.next_slot = used.len() as u32;
        t.free = (0..t.next_slot)
            .rev()
            .filter(|s| !used[*s as usize])
            .collect();
        t.reserved_ifaces = ifaces
            .into_iter()
            .filter(|(_, slot)| *slot > 0 && *slot < MAX_IFACES)
            .collect();
        t
    }

    /// Releases reserved slots no member came back for.
    fn release_reserved(&mut self) {
        if self.reserved.is_empty() {
            return;
        }
        let reserved = std::mem::take(&mut self.reserved);
        for (_, slot) in reserved {
            if self.members.get(slot).is_none() {
                self.resting.push(slot);
            }
        }
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
        self.ifaces = self.plan_interfaces(config, links, gateway_macs)?;
        self.pending.uplinks = self.pick_uplinks();
        Ok(())
    }

    /// The interfaces [`Tables::set_interfaces`] would set.
    fn plan_interfaces(
        &self,
        config: &Config,
        links: &BTreeMap<String, LinkInfo>,
        gateway_macs: &BTreeMap<IpAddr, [u8; 6]>,
    ) -> Result<BTreeMap<String, Interface>, TablesError> {
        let mut wanted: Vec<(String, IfaceInfo, bool)> = Vec::new();
        let link = |name: &str| links.get(name).copied();
        for up in &config.uplinks {
            let mut info = base_info(link(&up.interface), kind::UPLINK);
            info.vlan = up.vlan.unwrap_or(0);
            let static_mac = up.gateway_mac.map(|m| m.0);
            let resolve = |gw: Option<IpAddr>| {
                static_mac.or_else(|| gw.and_then(|g| gateway_macs.get(&g).copied()))
            };
            if up.gateway4.is_some()
                && let Some(mac) = resolve(up.gateway4.map(IpAddr::V4))
            {
                info.gw4_mac = mac;
                info.flags |= iface_flags::GW4_VALID;
            }
            if up.gateway6.is_some()
                && let Some(mac) = resolve(up.gateway6.map(IpAddr::V6))
            {
                info.gw6_mac = mac;
                info.flags |= iface_flags::GW6_VALID;
            }
            let is_up = link(&up.interface).is_some_and(|l| l.up);
            wanted.push((up.interface.clone(), info, is_up));
        }
        for acc in &config.access {
            let is_up = link(&acc.interface).is_some_and(|l| l.up);
            wanted.push((
                acc.interface.clone(),
                base_info(link(&acc.interface), kind::ACCESS),
                is_up,
            ));
        }
        let names: BTreeSet<&str> = wanted.iter().map(|(n, _, _)| n.as_str()).collect();
        let mut ifaces = self.ifaces.clone();
        ifaces.retain(|name, _| names.contains(name.as_str()));
        for (order, (name, info, up)) in wanted.into_iter().enumerate() {
            let slot = match ifaces.get(&name) {
                Some(i) => i.slot,
                None => match self.reserved_ifaces.get(&name) {
                    Some(s) if !ifaces.values().any(|i| i.slot == *s) => *s,
                    _ => self.free_iface_slot(&ifaces)?,
                },
            };
            ifaces.insert(
                name.clone(),
                Interface {
                    name,
                    slot,
                    info,
                    up,
                    order,
                },
            );
        }
        Ok(ifaces)
    }

    fn free_iface_slot(&self, ifaces: &BTreeMap<String, Interface>) -> Result<u32, TablesError> {
        let mut used: BTreeSet<u32> = ifaces.values().map(|i| i.slot).collect();
        used.extend(self.reserved_ifaces.values());
        (1..MAX_IFACES)
            .find(|s| !used.contains(s))
            .ok_or(TablesError::TooManyInterfaces)
    }

    /// The first uplink (in configuration order) that is up and has a
    /// resolved gateway carries each family.
    fn pick_uplinks(&self) -> (u32, u32) {
        let mut ups: Vec<&Interface> = self
            .ifaces
            .values()
            .filter(|i| i.info.kind == kind::UPLINK && i.up)
            .collect();
        ups.sort_by_key(|i| i.order);
        let first = |flag| {
            ups.iter()
                .find(|i| i.info.flags & flag != 0)
                .map_or(0, |i| i.slot)
        };
        (first(iface_flags::GW4_VALID), first(iface_flags::GW6_VALID))
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
        let available = self.free.len() + self.max_members.saturating_sub(self.next_slot) as usize;
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
                        if !self.reserved.contains_key(m.id()) {
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
        if access_slot(&self.ifaces, m.id, m.interface).is_err() {
            let allowed: Vec<String> = self
                .ifaces
                .values()
                .filter(|i| i.info.kind == kind::ACCESS)
                .map(|i| i.name.clone())
                .collect();
            return Err(TablesError::Invalid(ConfigError::UnknownInterface {
                member: m.id.to_owned(),
                interface: m.interface.to_owned(),
                allowed,
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
        interfaces: (
            &Config,
            &BTreeMap<String, LinkInfo>,
            &BTreeMap<IpAddr, [u8; 6]>,
        ),
        parts: &[Part<'_>],
        locals: &[IpAddr],
    ) -> Result<(), TablesError> {
        let (config, links, gateways) = interfaces;
        let ifaces = self.plan_interfaces(config, links, gateways)?;
        let wanted = local_prefixes(locals);
        let checked = self.check_replace_with(&ifaces, parts, wanted.iter().copied(), false)?;
        let fits = checked.fits;
        let apply = |t: &mut Tables| {
            t.ifaces = ifaces;
            t.pending.uplinks = t.pick_uplinks();
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
        let new_key = (iface as u16, m.tags().0, m.tags().1);
        let (old_key, new_prefixes): (Option<AttachKey>, SmallVec<[IpNet; 4]>) =
            match self.members.get(slot) {
                Some(cur) if cur.same_prefixes(m) => (Some(self.key_of(&cur)), SmallVec::new()),
                Some(cur) => {
                    let old = prefix_list(&cur);
                    (
                        Some(self.key_of(&cur)),
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
        if old_key != Some(new_key) {
            if let Some(k) = old_key {
                self.detach(k, slot);
            }
            self.attach(new_key, slot);
        }
        self.pending.members.push((slot, member_info(iface, m)));
        if fresh {
            self.pending.ids.push(slot, Some(m.id()));
        }
        self.members.set_view(slot, m, origin)?;
        Ok(())
    }

    fn key_of(&self, m: &MemberView<'_>) -> AttachKey {
        let iface = self.ifaces.get(m.interface()).map_or(0, |i| i.slot);
        (iface as u16, m.tags().0, m.tags().1)
    }

    fn delete_slot(&mut self, slot: u32) -> Result<(), TablesError> {
        let Some(m) = self.members.get(slot) else {
            return Ok(());
        };
        let prefixes: SmallVec<[IpNet; 4]> = m.prefixes().collect();
        let id = m.id().to_owned();
        let key = self.key_of(&m);
        for p in prefixes {
            self.release(p, slot, &id)?;
        }
        self.detach(key, slot);
        self.members.remove(slot);
        self.pending.members.push((slot, MemberInfo::default()));
        self.pending.ids.push(slot, None);
        self.resting.push(slot);
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
        if let Some(slot) = self.reserved.remove(id) {
            // Its counters carry on from the previous run; its id is
            // recorded already.
            return Ok(slot);
        }
        let slot = if let Some(s) = self.free.pop() {
            s
        } else if self.next_slot < self.max_members {
            self.next_slot += 1;
            self.next_slot - 1
        } else {
            return Err(TablesError::SlotsExhausted {
                member: id.to_string(),
                max: self.max_members,
            });
        };
        self.pending.zero_counters.push(slot);
        Ok(slot)
    }

    fn attach(&mut self, key: AttachKey, slot: u32) {
        let a = self.attachments.entry(key).or_default();
        a.count += 1;
        a.sum += u64::from(slot);
        self.dirty_attachments.insert(key);
    }

    fn detach(&mut self, key: AttachKey, slot: u32) {
        if let Some(a) = self.attachments.get_mut(&key) {
            a.count -= 1;
            a.sum -= u64::from(slot);
            if a.count == 0 {
                self.attachments.remove(&key);
            }
        }
        self.dirty_attachments.insert(key);
    }

    /// The datapath's value for attachment `key`.
    fn attachment(&self, key: &AttachKey) -> Option<u32> {
        self.attachments.get(key).map(|a| match a.count {
            1 => a.sum as u32,
            _ => ATTACH_SHARED,
        })
    }

    /// Takes what changed since the last call. Slots freed before the
    /// previous call become reusable.
    pub fn take_changes(&mut self) -> Changes {
        self.release_reserved();
        self.free.append(&mut self.resting);
        let mut c = std::mem::take(&mut self.pending);
        let mut keys: Vec<AttachKey> = self.dirty_attachments.drain().collect();
        keys.sort_unstable();
        c.attachments = keys.into_iter().map(|k| (k, self.attachment(&k))).collect();
        c.routes = self.routes.take_dirty();
        c.uplinks = self.pick_uplinks();
        self.pending.uplinks = c.uplinks;
        c
    }

    /// Everything the tables hold, for [`crate::datapath::Datapath::apply_full`]
    /// (a fresh datapath, or one restored from pins). Takes the pending
    /// changes too.
    pub fn full_state(&mut self) -> FullState<'_> {
        // The pending changes' members and ids are in the whole state: they
        // go before it is built.
        let Changes {
            zero_counters,
            uplinks,
            ..
        } = self.take_changes();
        let mut full = FullState {
            routes: self.routes.entries().into(),
            zero_counters,
            uplinks,
            ..FullState::default()
        };
        full.members.reserve(self.members.len());
        for (slot, m) in self.members.iter() {
            let iface = self.ifaces.get(m.interface()).map_or(0, |i| i.slot);
            full.members.push((slot, member_info(iface, &m)));
            full.ids.push(slot, Some(m.id()));
        }
        full.attachments = self
            .attachments
            .keys()
            .filter_map(|k| Some((*k, self.attachment(k)?)))
            .collect();
        full.attachments.sort_unstable();
        full
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
    ifaces
        .get(interface)
        .filter(|i| i.info.kind == kind::ACCESS)
        .map(|i| i.slot)
        .ok_or_else(|| TablesError::UnknownInterface {
            member: id.to_owned(),
            interface: interface.to_owned(),
        })
}

fn base_info(link: Option<LinkInfo>, kind: u8) -> IfaceInfo {
    let link = link.unwrap_or(LinkInfo {
        ifindex: 0,
        mac: [0; 6],
        mtu: 0,
        up: false,
    });
    IfaceInfo {
        ifindex: link.ifindex,
        mtu: link.mtu.min(u16::MAX as u32) as u16,
        mac: link.mac,
        kind,
        ..IfaceInfo::default()
    }
}

fn member_info(iface: u32, m: &MemberView<'_>) -> MemberInfo {
    let (s_vlan, c_vlan) = m.tags();
    let mut info = MemberInfo {
        iface,
        s_vlan,
        c_vlan,
        mac: [0; 6],
        flags: member_flags::PRESENT,
    };
    if let Some(mac) = m.mac() {
        info.mac = mac.0;
        info.flags |= member_flags::HAS_MAC | member_flags::CHECK_MAC;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::member::MacAddr;

    fn member(id: &str, prefixes: &[&str], c_vlan: Option<u16>) -> Member {
        Member {
            id: id.into(),
            interface: "acc0".into(),
            s_vlan: None,
            c_vlan,
            mac: Some(MacAddr([2, 0, 0, 0, 1, 1])),
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn tables(max: u32) -> Tables {
        let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n[[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
        let mut t = Tables::new(max, 64);
        t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
            .unwrap();
        t
    }

    fn sorted(v: &[u32]) -> Vec<u32> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    }

    /// The change of attachment `key`, if any.
    fn att(c: &Changes, key: &AttachKey) -> Option<Option<u32>> {
        c.attachments
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    fn lookup(t: &Tables, a: &str) -> u32 {
        t.routes().lookup(a.parse().unwrap())
    }

    #[test]
    fn slots_are_stable_and_zeroed_only_when_new() {
        let mut t = tables(8);
        let a = member("a", &["198.51.100.1/32"], None);
        let b = member("b", &["198.51.100.2/32"], Some(10));
        t.sync(&[a.clone(), b.clone()]).unwrap();
        let c = t.take_changes();
        let (sa, sb) = (t.slot("a").unwrap(), t.slot("b").unwrap());
        assert_eq!(sorted(&c.zero_counters), vec![sa.min(sb), sa.max(sb)]);
        assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(sb));
        // Changing b keeps its slot and zeroes nothing.
        let b2 = member("b", &["198.51.100.2/32", "198.51.100.3/32"], Some(11));
        t.sync(&[a.clone(), b2]).unwrap();
        let c = t.take_changes();
        assert_eq!(t.slot("b"), Some(sb));
        assert!(c.zero_counters.is_empty());
        assert_eq!(att(&c, &(2, 0, 10)), Some(None));
        assert_eq!(att(&c, &(2, 0, 11)), Some(Some(sb)));
        assert_eq!(lookup(&t, "198.51.100.3"), route::member_leaf(sb));
        // Removing a frees its slot only once the removal has been applied:
        // a member added in the same change gets another slot.
        let b3 = member("b", &["198.51.100.2/32"], Some(11));
        t.sync(&[b3.clone(), member("c", &["198.51.100.9/32"], None)])
            .unwrap();
        assert_ne!(t.slot("c"), Some(sa), "a freed slot rests for one apply");
        t.take_changes();
        assert_eq!(lookup(&t, "198.51.100.1"), route::EMPTY);
        t.set_member(&member("d", &["198.51.100.10/32"], None))
            .unwrap();
        assert_eq!(t.slot("d"), Some(sa), "then it is reused");
        assert!(t.take_changes().zero_counters.contains(&sa), "and zeroed");
    }

    #[test]
    fn members_can_swap_prefixes_in_one_sync() {
        let mut t = tables(8);
        t.sync(&[
            member("a", &["198.51.100.1/32"], None),
            member("b", &["198.51.100.2/32"], None),
        ])
        .unwrap();
        t.take_changes();
        let (sa, sb) = (t.slot("a").unwrap(), t.slot("b").unwrap());
        t.sync(&[
            member("a", &["198.51.100.2/32"], None),
            member("b", &["198.51.100.1/32"], None),
        ])
        .unwrap();
        assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(sa));
        assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(sb));
        // The prefix's ownership moves in the same change as its route.
        let c = t.take_changes();
        assert!(!c.routes.is_empty());
        t.remove_member("a").unwrap();
        assert_eq!(lookup(&t, "198.51.100.2"), route::EMPTY);
        assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(sb));
    }

    #[test]
    fn a_shared_attachment_is_marked_shared() {
        let mut t = tables(8);
        t.sync(&[
            member("a", &["198.51.100.1/32"], None),
            member("b", &["198.51.100.2/32"], None),
        ])
        .unwrap();
        let c = t.take_changes();
        assert_eq!(att(&c, &(2, 0, 0)), Some(Some(ATTACH_SHARED)));
        t.remove_member("b").unwrap();
        let c = t.take_changes();
        assert_eq!(att(&c, &(2, 0, 0)), Some(Some(t.slot("a").unwrap())));
    }

    #[test]
    fn restored_slots_come_back_and_are_never_given_to_others() {
        // A previous run had a in slot 5 and b in slot 0.
        let recorded = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 0)]);
        let mut t = Tables::with_slots(16, 64, recorded, BTreeMap::new());
        let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n[[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
        t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
            .unwrap();
        let ms: Vec<Member> = (0..8)
            .map(|i| {
                member(
                    &format!("n{i}"),
                    &[&format!("198.51.100.{}/32", 10 + i)],
                    None,
                )
            })
            .chain([member("a", &["198.51.100.1/32"], None)])
            .collect();
        t.sync(&ms).unwrap();
        let zero = t.full_state().zero_counters;
        assert_eq!(t.slot("a"), Some(5), "a gets its slot back");
        assert!(!zero.contains(&5), "and keeps its counters");
        let others: BTreeSet<u32> = (0..8).map(|i| t.slot(&format!("n{i}")).unwrap()).collect();
        assert_eq!(others.len(), 8);
        assert!(!others.contains(&5), "nobody else gets a's slot");
        assert!(!others.contains(&0), "b's slot waits a round before reuse");
        // After a further round, b's unclaimed slot is reusable and zeroed.
        t.take_changes();
        t.set_member(&member("late", &["198.51.100.99/32"], None))
            .unwrap();
        let late = t.slot("late").unwrap();
        let c = t.take_changes();
        assert!(c.zero_counters.contains(&late));
        assert_ne!(late, 5);
    }

    #[test]
    fn a_failed_change_changes_nothing() {
        let mut t = Tables::new(2, 2);
        let config =
            Config::parse("[[uplink]]\ninterface = \"up0\"\n[[access]]\ninterface = \"acc0\"\n")
                .unwrap();
        t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
            .unwrap();
        t.sync(&[member("a", &["198.51.100.1/32"], None)]).unwrap();
        t.take_changes();
        // Needs more trie groups than the one available.
        let big = member("b", &["2001:db8:1:2:3:4::/96"], None);
        assert!(t.set_member(&big).is_err());
        assert!(t.slot("b").is_none());
        assert!(t.take_changes().routes.is_empty());
        // Too many members.
        let r = t.sync(&[
            member("a", &["198.51.100.1/32"], None),
            member("c", &["198.51.100.3/32"], None),
            member("d", &["198.51.100.4/32"], None),
        ]);
        assert!(matches!(r, Err(TablesError::SlotsExhausted { .. })));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn an_update_that_fails_at_the_router_addresses_changes_no_member() {
        let config =
            Config::parse("[[uplink]]\ninterface = \"up0\"\n[[access]]\ninterface = \"acc0\"\n")
                .unwrap();
        let mut t = Tables::new(8, 4);
        t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
            .unwrap();
        t.sync(&[member("a", &["198.51.100.1/32"], None)]).unwrap();
        t.take_changes();
        // The new member fits; the router's IPv6 address needs more groups
        // than are left once it is in.
        let b = member("b", &["203.0.113.1/32"], None);
        let a = member("a", &["198.51.100.1/32"], None);
        let batch = batch_of([&a, &b], Origin::Config).unwrap();
        let r = t.update(
            (&config, &BTreeMap::new(), &BTreeMap::new()),
            &[Part::all(&batch)],
            &["2001:db8:1:2::1".parse().unwrap()],
        );
        assert!(matches!(r, Err(TablesError::LocalRoute { .. })), "{r:?}");
        assert_eq!(t.slot("b"), None);
        assert_eq!(lookup(&t, "203.0.113.1"), route::EMPTY);
        let c = t.take_changes();
        assert!(c.members.is_empty() && c.routes.is_empty());
        // Without the address, the same update goes through.
        t.update(
            (&config, &BTreeMap::new(), &BTreeMap::new()),
            &[Part::all(&batch)],
            &[],
        )
        .unwrap();
        assert!(t.slot("b").is_some());
    }

    #[test]
    fn upstream_leaves_by_the_first_uplink_that_is_up_and_resolved() {
        let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway_mac = \"02:00:00:00:00:01\"\n\
             [[uplink]]\ninterface = \"up1\"\ngateway4 = \"192.0.2.129\"\ngateway6 = \"2001:db8::1\"\n\
             [[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
        let link = |ifindex, up| LinkInfo {
            ifindex,
            mac: [2, 0, 0, 0, 0, ifindex as u8],
            mtu: 1500,
            up,
        };
        let gw6: IpAddr = "2001:db8::1".parse().unwrap();
        let gws = BTreeMap::from([(gw6, [2, 0, 0, 0, 0, 9])]);
        let mut links = BTreeMap::from([
            ("up0".to_string(), link(2, true)),
            ("up1".to_string(), link(3, true)),
            ("acc0".to_string(), link(4, true)),
        ]);
        let mut t = Tables::new(8, 64);
        t.set_interfaces(&config, &links, &gws).unwrap();
        let (up0, up1) = (t.interfaces()["up0"].slot, t.interfaces()["up1"].slot);
        // IPv4: up0 (static MAC) first; IPv6: only up1 has a resolved gateway.
        assert_eq!(t.take_changes().uplinks, (up0, up1));
        links.get_mut("up0").unwrap().up = false;
        t.set_interfaces(&config, &links, &gws).unwrap();
        assert_eq!(
            t.take_changes().uplinks,
            (0, up1),
            "up1's IPv4 gateway is unresolved"
        );
        let gws = BTreeMap::from([
            (gw6, [2, 0, 0, 0, 0, 9]),
            ("192.0.2.129".parse().unwrap(), [2, 0, 0, 0, 0, 8]),
        ]);
        t.set_interfaces(&config, &links, &gws).unwrap();
        assert_eq!(t.take_changes().uplinks, (up1, up1));
    }

    #[test]
    fn router_addresses_are_local_unless_a_member_owns_them() {
        let mut t = tables(8);
        t.sync(&[member("a", &["198.51.100.0/24"], None)]).unwrap();
        t.set_locals(&[
            "198.51.100.1".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ])
        .unwrap();
        assert_eq!(lookup(&t, "198.51.100.1"), route::LOCAL);
        assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(0));
        assert_eq!(lookup(&t, "127.0.0.1"), route::EMPTY, "loopback stays out");
        t.set_locals(&[]).unwrap();
        assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(0));
    }

    /// A random prefix in a small space, so that prefixes nest and
    /// overlap often; lengths cross the trie's levels and the unaligned ones.
    fn random_prefix(rng: &mut impl rand::Rng) -> IpNet {
        use ipnet::{Ipv4Net, Ipv6Net};
        use std::net::{Ipv4Addr, Ipv6Addr};
        if rng.gen_bool(0.5) {
            let len = rng.gen_range(20..=32);
            let addr = Ipv4Addr::from(0xc633_6400 | rng.gen_range(0..4096u32));
            IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc())
        } else {
            let len = rng.gen_range(40..=64);
            let seg = rng.gen_range(0..4096u16);
            let addr = Ipv6Addr::new(0x2001, 0xdb8, seg >> 8, seg << 8, 0, 0, 0, 0);
            IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
        }
    }

    /// The checks of one member against the running tables (through the
    /// prefix table) agree with the whole-set check and with brute force,
    /// router addresses included (which hide parts of member prefixes).
    #[test]
    fn the_incremental_check_agrees_with_the_whole_set_check() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let access = std::collections::HashSet::from(["acc0"]);
        let (mut oks, mut errs) = (0, 0);
        for round in 0..1500 {
            let mut t = tables(64);
            let locals: Vec<IpAddr> = (0..rng.gen_range(0..6))
                .map(|_| {
                    let p = random_prefix(&mut rng);
                    // A host of the prefix.
                    match p {
                        IpNet::V4(v) => IpAddr::V4(v.network()),
                        IpNet::V6(v) => IpAddr::V6(v.network()),
                    }
                })
                .collect();
            t.set_locals(&locals).unwrap();
            let mut accepted: Vec<Member> = Vec::new();
            for i in 0..rng.gen_range(1..10) {
                // Sometimes a member replaces an earlier one.
                let id = if !accepted.is_empty() && rng.gen_bool(0.2) {
                    accepted[rng.gen_range(0..accepted.len())].id.clone()
                } else {
                    format!("m{i}")
                };
                let m = Member {
                    prefixes: (0..rng.gen_range(1..3))
                        .map(|_| random_prefix(&mut rng))
                        .collect(),
                    ..member(&id, &[], None)
                };
                if m.validate_fields().is_err() {
                    continue;
                }
                let mut set: Vec<Member> =
                    accepted.iter().filter(|a| a.id != m.id).cloned().collect();
                set.push(m.clone());
                let whole = router_core::config::validate_members(&set, &access, 64);
                let all: Vec<IpNet> = set.iter().flat_map(|m| m.prefixes.clone()).collect();
                let brute = (0..all.len())
                    .any(|i| (0..i).any(|j| all[i].contains(&all[j]) || all[j].contains(&all[i])));
                assert_eq!(whole.is_err(), brute, "round {round}: {set:?}: {whole:?}");
                let one = t.check_put(m.as_in(), Origin::Config);
                assert_eq!(
                    one.is_err(),
                    whole.is_err(),
                    "round {round}, locals {locals:?}: {accepted:?} + {m:?}: {:?} vs {whole:?}",
                    one.as_ref().err()
                );
                match one {
                    Ok(c) => {
                        t.commit_put(c, m.as_in(), Origin::Config).unwrap();
                        accepted = set;
                        oks += 1;
                    }
                    Err(TablesError::Invalid(ConfigError::Member(MemberError::Overlap {
                        member,
                        prefix,
                        other_member,
                        other_prefix,
                    }))) => {
                        // It names a real clash with another member.
                        assert_eq!(member, m.id);
                        assert!(prefix.contains(&other_prefix) || other_prefix.contains(&prefix));
                        let other = accepted.iter().find(|a| a.id == other_member).unwrap();
                        assert!(other.prefixes.contains(&other_prefix));
                        assert_ne!(other.id, m.id);
                        errs += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            // The tables hold exactly the accepted members.
            assert_eq!(t.len(), accepted.len());
            for a in &accepted {
                let (_, v) = t.member(&a.id).unwrap();
                assert_eq!(v.to_member(), *a);
            }
        }
        assert!(oks > 1000 && errs > 1000, "{oks} {errs}");
    }

    /// A member prefix whose every address is a router address shows in
    /// no entry of the prefix table; a member overlapping it is still
    /// refused.
    #[test]
    fn a_prefix_hidden_by_router_addresses_still_clashes() {
        let mut t = tables(8);
        t.set_locals(&[
            "198.51.100.0".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        ])
        .unwrap();
        t.set_member(&member("a", &["198.51.100.0/31"], None))
            .unwrap();
        assert_eq!(lookup(&t, "198.51.100.0"), route::LOCAL);
        assert_eq!(lookup(&t, "198.51.100.1"), route::LOCAL);
        for p in ["198.51.100.1/32", "198.51.100.0/32", "198.51.100.0/30"] {
            let e = t.set_member(&member("b", &[p], None)).unwrap_err();
            assert!(
                matches!(&e, TablesError::Invalid(ConfigError::Member(MemberError::Overlap { other_member, .. })) if other_member == "a"),
                "{p}: {e}"
            );
        }
        t.set_member(&member("b", &["198.51.100.2/31"], None))
            .unwrap();
    }
}
