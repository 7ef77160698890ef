//! The desired state of the datapath tables: which member sits in which
//! counter slot, at which attachment, with which prefixes, and the interfaces.
//!
//! [`Tables`] is changed member by member (or by a whole-set [`Tables::sync`])
//! and hands out the resulting [`Changes`] for the datapath to apply. It never
//! touches the kernel.
//!
//! Slots are stable: a member keeps its counter slot for as long as it exists.
//! A freed slot rests for one apply before reuse, and its counters are zeroed
//! when it is given to a new member.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use ipnet::IpNet;
use router_common::{
    ATTACH_SHARED, IfaceInfo, MAX_IFACES, MemberInfo, iface_flags, kind, member_flags, route,
};

use crate::{
    config::{Config, Member},
    datapath::{Changes, FullState},
    neighbors::LinkInfo,
    routes::{RouteError, RouteTable},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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
}

#[derive(Clone, Debug)]
struct Entry {
    slot: u32,
    member: Member,
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

/// The desired contents of every datapath table.
#[derive(Clone, Debug)]
pub struct Tables {
    max_members: u32,
    routes: RouteTable,
    members: BTreeMap<String, Entry>,
    /// Slot -> id, for counters and the tracer.
    by_slot: BTreeMap<u32, String>,
    /// Which member owns each member prefix.
    owners: BTreeMap<IpNet, u32>,
    locals: BTreeSet<IpNet>,
    attachments: BTreeMap<(u16, u16, u16), BTreeSet<u32>>,
    ifaces: BTreeMap<String, Interface>,
    free: Vec<u32>,
    resting: Vec<u32>,
    next_slot: u32,
    /// Slots a previous run gave to members (restored from the pinned
    /// tables): a member with one of these ids gets its slot back.
    reserved: BTreeMap<String, u32>,
    /// Interface slots of a previous run, by name.
    reserved_ifaces: BTreeMap<String, u32>,
    pending: Changes,
}

impl Tables {
    pub fn new(max_members: u32, route_groups: u32) -> Self {
        Tables {
            max_members,
            routes: RouteTable::new(route_groups),
            members: BTreeMap::new(),
            by_slot: BTreeMap::new(),
            owners: BTreeMap::new(),
            locals: BTreeSet::new(),
            attachments: BTreeMap::new(),
            ifaces: BTreeMap::new(),
            free: Vec::new(),
            resting: Vec::new(),
            next_slot: 0,
            reserved: BTreeMap::new(),
            reserved_ifaces: BTreeMap::new(),
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
        members: BTreeMap<String, u32>,
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
        let used: BTreeSet<u32> = t.reserved.values().copied().collect();
        t.next_slot = used.last().map_or(0, |s| s + 1);
        t.free = (0..t.next_slot)
            .rev()
            .filter(|s| !used.contains(s))
            .collect();
        t.reserved_ifaces = ifaces
            .into_iter()
            .filter(|(_, slot)| *slot > 0 && *slot < MAX_IFACES)
            .collect();
        t
    }

    /// Releases reserved slots no member came back for.
    fn release_reserved(&mut self) {
        let reserved = std::mem::take(&mut self.reserved);
        for (_, slot) in reserved {
            if !self.by_slot.contains_key(&slot) {
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

    /// Makes the member set equal to `members` (validated beforehand):
    /// absent members are removed, changed ones updated, unchanged ones left
    /// alone. All-or-nothing: see [`Tables::check_sync`].
    pub fn sync<'a>(
        &mut self,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> Result<(), TablesError> {
        let members: Vec<&Member> = members.into_iter().collect();
        let checked = self.check_sync(&members)?;
        self.commit_sync(checked, &members).map(drop)
    }

    /// Checks that [`Tables::sync`] of `members` would succeed, changing
    /// nothing; [`Tables::commit_sync`] then makes the change. Cheap unless the
    /// prefix table is too full to tell: the sync is then tried on a copy,
    /// which the commit takes.
    pub fn check_sync(&self, members: &[&Member]) -> Result<Checked, TablesError> {
        match self.precheck(&self.ifaces, members, std::iter::empty())? {
            Fits::Yes => Ok(Checked(None)),
            Fits::Unsure => {
                let mut copy = self.clone();
                copy.sync_members(members.iter().copied())?;
                Ok(Checked(Some(Box::new(copy))))
            }
        }
    }

    /// [`Tables::check_sync`] for [`Tables::set_member`] of `m`.
    pub fn check_member(&self, m: &Member) -> Result<Checked, TablesError> {
        match self.precheck(&self.ifaces, &[m], std::iter::empty())? {
            Fits::Yes => Ok(Checked(None)),
            Fits::Unsure => {
                let mut copy = self.clone();
                copy.put_member(m)?;
                Ok(Checked(Some(Box::new(copy))))
            }
        }
    }

    /// Makes the sync [`Tables::check_sync`] found to fit, the tables being
    /// unchanged since. Returns the tables it replaced, if it took the
    /// check's copy.
    pub fn commit_sync(
        &mut self,
        checked: Checked,
        members: &[&Member],
    ) -> Result<Option<Tables>, TablesError> {
        match checked.0 {
            Some(copy) => Ok(Some(std::mem::replace(self, *copy))),
            None => self.sync_members(members.iter().copied()).map(|()| None),
        }
    }

    /// [`Tables::commit_sync`] for [`Tables::check_member`].
    pub fn commit_member(
        &mut self,
        checked: Checked,
        m: &Member,
    ) -> Result<Option<Tables>, TablesError> {
        match checked.0 {
            Some(copy) => Ok(Some(std::mem::replace(self, *copy))),
            None => self.put_member(m).map(|()| None),
        }
    }

    /// Adds or replaces one member (validated beforehand against the others).
    /// All-or-nothing: see [`Tables::check_member`].
    pub fn set_member(&mut self, m: &Member) -> Result<(), TablesError> {
        let checked = self.check_member(m)?;
        self.commit_member(checked, m).map(drop)
    }

    /// Removes one member. All-or-nothing (a removal only frees room).
    pub fn remove_member(&mut self, id: &str) -> Result<(), TablesError> {
        self.delete_member(id)
    }

    /// Brings the interfaces, the member set (when `members` is given) and
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
        members: Option<Vec<&Member>>,
        locals: &[IpAddr],
    ) -> Result<(), TablesError> {
        let (config, links, gateways) = interfaces;
        let ifaces = self.plan_interfaces(config, links, gateways)?;
        let wanted = local_prefixes(locals);
        let fits = self.precheck(
            &ifaces,
            members.as_deref().unwrap_or(&[]),
            wanted.iter().copied(),
        )?;
        let apply = |t: &mut Tables| {
            t.ifaces = ifaces;
            t.pending.uplinks = t.pick_uplinks();
            if let Some(members) = members {
                t.sync_members(members)?;
            }
            t.put_locals(wanted)
        };
        match fits {
            Fits::Yes => apply(self),
            Fits::Unsure => self.atomically(apply),
        }
    }

    /// What can be known of putting `members` (and inserting `extra`
    /// prefixes) without trying: `Err` when a member is on no access
    /// interface (of `ifaces`) or no slot is left for it, [`Fits::Yes`] when
    /// the trie groups their prefixes could need are free. Removals only
    /// free slots (after the next apply) and groups.
    fn precheck(
        &self,
        ifaces: &BTreeMap<String, Interface>,
        members: &[&Member],
        extra: impl Iterator<Item = IpNet>,
    ) -> Result<Fits, TablesError> {
        let available = self.free.len() + self.max_members.saturating_sub(self.next_slot) as usize;
        let mut fresh = 0usize;
        let mut prefixes: Vec<IpNet> = extra.collect();
        for m in members {
            let old = self.members.get(&m.id);
            if old.is_some_and(|e| e.member == **m) {
                continue;
            }
            access_slot(ifaces, m)?;
            if old.is_none() && !self.reserved.contains_key(&m.id) {
                fresh += 1;
                if fresh > available {
                    return Err(TablesError::SlotsExhausted {
                        member: m.id.clone(),
                        max: self.max_members,
                    });
                }
            }
            prefixes.extend(m.prefixes.iter().map(IpNet::trunc));
        }
        let needed = self.routes.groups_needed(prefixes);
        Ok(if needed <= u64::from(self.routes.groups_free()) {
            Fits::Yes
        } else {
            Fits::Unsure
        })
    }

    fn sync_members<'a>(
        &mut self,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> Result<(), TablesError> {
        let members: Vec<&Member> = members.into_iter().collect();
        let wanted: std::collections::HashSet<&str> =
            members.iter().map(|m| m.id.as_str()).collect();
        let gone: Vec<String> = self
            .members
            .keys()
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        drop(wanted);
        for id in gone {
            self.delete_member(&id)?;
        }
        for m in members {
            self.put_member(m)?;
        }
        Ok(())
    }

    fn atomically(
        &mut self,
        f: impl FnOnce(&mut Tables) -> Result<(), TablesError>,
    ) -> Result<(), TablesError> {
        let mut next = self.clone();
        f(&mut next)?;
        *self = next;
        Ok(())
    }

    fn put_member(&mut self, m: &Member) -> Result<(), TablesError> {
        if let Some(e) = self.members.get(&m.id)
            && e.member == *m
        {
            return Ok(());
        }
        let iface = access_slot(&self.ifaces, m)?;
        let (slot, old_prefixes, old_key) = match self.members.get(&m.id) {
            Some(e) => (
                e.slot,
                e.member.prefixes.iter().copied().collect(),
                Some(attach_key(
                    iface_slot_of(&self.ifaces, &e.member),
                    &e.member,
                )),
            ),
            None => (self.alloc_slot(&m.id)?, BTreeSet::new(), None),
        };
        let new_prefixes: BTreeSet<IpNet> = m.prefixes.iter().copied().collect();
        // Release first, so that a prefix moving between two of this
        // member's entries never clashes with itself.
        for p in old_prefixes.difference(&new_prefixes) {
            self.release(*p, slot, &m.id)?;
        }
        for p in new_prefixes.difference(&old_prefixes) {
            self.owners.insert(*p, slot);
            self.refresh_prefix(*p, &m.id)?;
        }
        let new_key = attach_key(iface, m);
        if old_key != Some(new_key) {
            if let Some(k) = old_key {
                self.detach(k, slot);
            }
            self.attach(new_key, slot);
        }
        self.pending.members.insert(slot, member_info(iface, m));
        self.pending.ids.insert(slot, Some(m.id.clone()));
        match self.members.get_mut(&m.id) {
            Some(e) => e.member = m.clone(),
            None => {
                self.by_slot.insert(slot, m.id.clone());
                self.members.insert(
                    m.id.clone(),
                    Entry {
                        slot,
                        member: m.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    fn delete_member(&mut self, id: &str) -> Result<(), TablesError> {
        let e = self
            .members
            .remove(id)
            .ok_or_else(|| TablesError::UnknownMember(id.to_string()))?;
        for p in &e.member.prefixes {
            self.release(*p, e.slot, id)?;
        }
        self.detach(
            attach_key(iface_slot_of(&self.ifaces, &e.member), &e.member),
            e.slot,
        );
        self.pending.members.insert(e.slot, MemberInfo::default());
        self.pending.ids.insert(e.slot, None);
        self.by_slot.remove(&e.slot);
        self.resting.push(e.slot);
        Ok(())
    }

    /// Gives up `slot`'s claim on `p`. Within one sync a prefix can move to
    /// a member that was updated before its previous owner: the new owner's
    /// claim stays.
    fn release(&mut self, p: IpNet, slot: u32, who: &str) -> Result<(), TablesError> {
        if self.owners.get(&p) == Some(&slot) {
            self.owners.remove(&p);
            self.refresh_prefix(p, who)?;
        }
        Ok(())
    }

    /// Sets the router's own addresses: they go to the kernel (`pass local`).
    /// An address equal to a member prefix is left to the member. Loopback,
    /// link-local and multicast addresses are left out: such packets never
    /// reach a lookup.
    /// All-or-nothing.
    pub fn set_locals(&mut self, addrs: &[IpAddr]) -> Result<(), TablesError> {
        let wanted = local_prefixes(addrs);
        match self.precheck(&self.ifaces, &[], wanted.iter().copied())? {
            Fits::Yes => self.put_locals(wanted),
            Fits::Unsure => self.atomically(|t| t.put_locals(wanted)),
        }
    }

    fn put_locals(&mut self, wanted: BTreeSet<IpNet>) -> Result<(), TablesError> {
        let old = std::mem::replace(&mut self.locals, wanted.clone());
        for p in old.symmetric_difference(&wanted) {
            if let Err(e) = self.refresh_prefix(*p, "") {
                return Err(match e {
                    TablesError::Route { source, .. } => TablesError::LocalRoute {
                        address: *p,
                        source,
                    },
                    other => other,
                });
            }
        }
        Ok(())
    }

    /// Puts the right leaf for `p` into the route table: its member's, else
    /// local, else none.
    fn refresh_prefix(&mut self, p: IpNet, who: &str) -> Result<(), TablesError> {
        let leaf = match self.owners.get(&p) {
            Some(slot) => Some(route::member_leaf(*slot)),
            None if self.locals.contains(&p) => Some(route::LOCAL),
            None => None,
        };
        let r = match leaf {
            Some(l) => self.routes.insert(p, l),
            None => match self.routes.remove(p) {
                Err(RouteError::NotFound { .. }) => Ok(()),
                other => other,
            },
        };
        r.map_err(|source| TablesError::Route {
            member: who.to_string(),
            source,
        })
    }

    fn alloc_slot(&mut self, id: &str) -> Result<u32, TablesError> {
        if let Some(slot) = self.reserved.remove(id) {
            // Its counters carry on from the previous run.
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
        self.pending.zero_counters.insert(slot);
        Ok(slot)
    }

    fn attach(&mut self, key: (u16, u16, u16), slot: u32) {
        self.attachments.entry(key).or_default().insert(slot);
        self.mark_attachment(key);
    }

    fn detach(&mut self, key: (u16, u16, u16), slot: u32) {
        if let Some(set) = self.attachments.get_mut(&key) {
            set.remove(&slot);
            if set.is_empty() {
                self.attachments.remove(&key);
            }
        }
        self.mark_attachment(key);
    }

    fn mark_attachment(&mut self, key: (u16, u16, u16)) {
        let v = self.attachments.get(&key).map(|set| match set.len() {
            1 => *set.iter().next().expect("one element"),
            _ => ATTACH_SHARED,
        });
        self.pending.attachments.insert(key, v);
    }

    /// Takes what changed since the last call. Slots freed before the
    /// previous call become reusable.
    pub fn take_changes(&mut self) -> Changes {
        self.release_reserved();
        self.free.append(&mut self.resting);
        let mut c = std::mem::take(&mut self.pending);
        c.routes = self.routes.take_dirty().into_iter().collect();
        c.uplinks = self.pick_uplinks();
        self.pending.uplinks = c.uplinks;
        c
    }

    /// Everything the tables hold, for [`crate::datapath::Datapath::apply_full`]
    /// (a fresh datapath, or one restored from pins). Takes the pending
    /// changes too.
    pub fn full_state(&mut self) -> FullState {
        let c = self.take_changes();
        let mut full = FullState {
            routes: self.routes.entries().to_vec(),
            zero_counters: c.zero_counters,
            uplinks: c.uplinks,
            ..FullState::default()
        };
        for e in self.members.values() {
            let iface = iface_slot_of(&self.ifaces, &e.member);
            full.members.insert(e.slot, member_info(iface, &e.member));
            full.ids.insert(e.slot, e.member.id.clone());
        }
        for (key, set) in &self.attachments {
            let v = match set.len() {
                1 => *set.iter().next().expect("one element"),
                _ => ATTACH_SHARED,
            };
            full.attachments.insert(*key, v);
        }
        full
    }

    /// Member slot of `id`.
    pub fn slot(&self, id: &str) -> Option<u32> {
        self.members.get(id).map(|e| e.slot)
    }

    /// Member id in `slot`.
    pub fn id(&self, slot: u32) -> Option<&str> {
        self.by_slot.get(&slot).map(String::as_str)
    }

    /// Members with their slots, by id.
    pub fn members(&self) -> impl Iterator<Item = (&str, u32, &Member)> {
        self.members
            .iter()
            .map(|(id, e)| (id.as_str(), e.slot, &e.member))
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

/// A change found to fit: see [`Tables::check_sync`].
#[must_use]
pub struct Checked(Option<Box<Tables>>);

/// Whether a change fits without trying it.
enum Fits {
    Yes,
    /// The prefix table is too full to tell.
    Unsure,
}

/// The routable ones of the router's addresses, as host prefixes.
fn local_prefixes(addrs: &[IpAddr]) -> BTreeSet<IpNet> {
    addrs
        .iter()
        .filter(|a| routable(a))
        .map(|a| IpNet::from(*a))
        .collect()
}

/// The slot of `m`'s interface, which must be an access interface.
fn access_slot(ifaces: &BTreeMap<String, Interface>, m: &Member) -> Result<u32, TablesError> {
    ifaces
        .get(&m.interface)
        .filter(|i| i.info.kind == kind::ACCESS)
        .map(|i| i.slot)
        .ok_or_else(|| TablesError::UnknownInterface {
            member: m.id.clone(),
            interface: m.interface.clone(),
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

fn iface_slot_of(ifaces: &BTreeMap<String, Interface>, m: &Member) -> u32 {
    ifaces.get(&m.interface).map_or(0, |i| i.slot)
}

fn attach_key(iface: u32, m: &Member) -> (u16, u16, u16) {
    (iface as u16, m.s_vlan.unwrap_or(0), m.c_vlan.unwrap_or(0))
}

fn member_info(iface: u32, m: &Member) -> MemberInfo {
    let mut info = MemberInfo {
        iface,
        s_vlan: m.s_vlan.unwrap_or(0),
        c_vlan: m.c_vlan.unwrap_or(0),
        mac: [0; 6],
        flags: member_flags::PRESENT,
    };
    if let Some(mac) = m.mac {
        info.mac = mac.0;
        info.flags |= member_flags::HAS_MAC | member_flags::CHECK_MAC;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MacAddr;

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
        assert_eq!(c.zero_counters, BTreeSet::from([sa, sb]));
        assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(sb));
        // Changing b keeps its slot and zeroes nothing.
        let b2 = member("b", &["198.51.100.2/32", "198.51.100.3/32"], Some(11));
        t.sync(&[a.clone(), b2]).unwrap();
        let c = t.take_changes();
        assert_eq!(t.slot("b"), Some(sb));
        assert!(c.zero_counters.is_empty());
        assert_eq!(c.attachments.get(&(2, 0, 10)), Some(&None));
        assert_eq!(c.attachments.get(&(2, 0, 11)), Some(&Some(sb)));
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
        assert_eq!(c.attachments.get(&(2, 0, 0)), Some(&Some(ATTACH_SHARED)));
        t.remove_member("b").unwrap();
        let c = t.take_changes();
        assert_eq!(
            c.attachments.get(&(2, 0, 0)),
            Some(&Some(t.slot("a").unwrap()))
        );
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
        let full = t.full_state();
        assert_eq!(t.slot("a"), Some(5), "a gets its slot back");
        assert!(!full.zero_counters.contains(&5), "and keeps its counters");
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
        let r = t.update(
            (&config, &BTreeMap::new(), &BTreeMap::new()),
            Some(vec![&member("a", &["198.51.100.1/32"], None), &b]),
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
            Some(vec![&member("a", &["198.51.100.1/32"], None), &b]),
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
}
