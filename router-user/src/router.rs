//! The router's state: what is configured, what the tables hold, what
//! the datapath holds, and the operations that keep them in step (a
//! resync with the kernel's view, a reload, an API write, a scrape).
//!
//! Shared by the daemon's loop, the metrics server and the provisioning
//! API, behind one mutex ([`Shared`]). It imports neither the daemon nor
//! the API.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use ipnet::IpNet;
use router_common::{GatewayKey, IfaceAddrs, IfaceInfo, MemberCounters};
use router_core::{
    changes::{Attachment, Changes, Uplinks},
    config::{Config, XdpMode},
    export::Delta,
    member::{Member, Origin},
    store::MemberStore,
    tables::{InterfaceSources, Part, Tables, TablesError, learned::Learned},
};
use tracing::{debug, info, warn};

use crate::{
    alloc,
    datapath::{Attach, Datapath, DatapathError, LearnEvents, LinkId},
    metrics,
    netlink::Snapshot,
    pppoe::SessionRef,
    provisioning::{self, ConflictError, Op, Outcome, Provisioning, WriteError, Written},
    routes,
    sessions::{PersistError, Record, Registry},
};

/// Why the router could not be brought in line.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The tables refused the change.
    #[error(transparent)]
    Tables(#[from] TablesError),
    /// The datapath could not be written.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// A reloaded configuration conflicts with an API member.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// The PPPoE sessions file could not be written.
    #[error(transparent)]
    Sessions(#[from] PersistError),
    /// A reloaded configuration changes a table size.
    #[error(
        "[datapath] {field} changed from {old} to {new}: table sizes are fixed while running; restart collecte to apply it"
    )]
    SizingChanged {
        field: &'static str,
        old: u32,
        new: u32,
    },
}

/// The router behind its mutex, as the daemon, the metrics server and the
/// API hold it.
pub type Shared = Arc<Mutex<Router>>;

/// Locks the router (a panic while it was held leaves it usable).
pub fn lock(router: &Shared) -> MutexGuard<'_, Router> {
    router.lock().unwrap_or_else(|p| p.into_inner())
}

/// A gateway with neither a static MAC nor a neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnresolvedGateway {
    /// Its uplink.
    pub interface: String,
    /// The uplink's ifindex.
    pub ifindex: u32,
    pub gateway: IpAddr,
}

/// The daemon's state: what is configured, what the datapath holds.
pub struct Router {
    config: Config,
    tables: Tables,
    datapath: Datapath,
    /// Interfaces as installed in the datapath.
    installed: BTreeMap<String, (u32, IfaceInfo)>,
    /// Their addresses and gateway addresses, as installed.
    installed_addrs: BTreeMap<String, (u32, IfaceAddrs, Vec<GatewayKey>)>,
    /// Interfaces the program is attached to: name -> (ifindex, link).
    attached: BTreeMap<String, (u32, LinkId)>,
    /// Uplink slots last written.
    uplinks: Uplinks,
    /// Gateways already reported as unresolved.
    unresolved: BTreeSet<IpAddr>,
    /// The next apply writes the tables whole (start, restart over pins).
    full: bool,
    /// Where the members added through the API are saved.
    provisioning: Provisioning,
    /// The member routes' thread, told of every change of the member set.
    routes: Option<routes::Handle>,
    /// The PPPoE sessions.
    sessions: Registry,
}

impl Router {
    /// A router over `datapath` (loaded, perhaps over pinned tables) and
    /// `tables` (empty, perhaps with the slots the pins recorded): the
    /// first [`Router::push`] writes the tables whole.
    pub fn new(
        config: Config,
        tables: Tables,
        datapath: Datapath,
        provisioning: Provisioning,
    ) -> Router {
        Router {
            config,
            tables,
            datapath,
            installed: BTreeMap::new(),
            installed_addrs: BTreeMap::new(),
            attached: BTreeMap::new(),
            uplinks: Uplinks::default(),
            unresolved: BTreeSet::new(),
            full: true,
            provisioning,
            routes: None,
            sessions: Registry::default(),
        }
    }

    /// Tells `routes` of every change of the member set from now on.
    pub fn set_routes(&mut self, routes: routes::Handle) {
        self.routes = Some(routes);
    }

    /// The member routes' handle, once set.
    pub fn routes(&self) -> Option<&routes::Handle> {
        self.routes.as_ref()
    }

    /// Every member prefix (what the routes export).
    pub fn member_prefixes(&self) -> Vec<IpNet> {
        let mut out = Vec::with_capacity(self.tables.len() * 2);
        for (_, m) in self.tables.members() {
            out.extend(m.prefixes());
        }
        out
    }

    /// Configured interfaces the program is not attached to (missing, or
    /// the attachment failed).
    pub fn detached_interfaces(&self) -> Vec<String> {
        self.tables
            .interfaces()
            .keys()
            .filter(|name| !self.attached.contains_key(*name))
            .cloned()
            .collect()
    }

    /// After a resync: the gateways still unresolved, logged once when
    /// they become so and when they resolve.
    pub fn check_gateways(&mut self, system: &Snapshot) -> Vec<UnresolvedGateway> {
        let unresolved = self.unresolved_gateways(system);
        let now: BTreeSet<IpAddr> = unresolved.iter().map(|u| u.gateway).collect();
        for u in &unresolved {
            if !self.unresolved.contains(&u.gateway) {
                warn!(gateway = %u.gateway, interface = %u.interface, "gateway MAC unknown: upstream packets go to the kernel (pass no-neighbor) until it resolves; check that the gateway answers ARP/ND, or set gateway_mac");
            }
        }
        for gw in self.unresolved.difference(&now) {
            info!(gateway = %gw, "gateway resolved");
        }
        self.unresolved = now;
        unresolved
    }
}

impl Router {
    /// Counters for a scrape.
    pub fn metrics(&self) -> Result<metrics::Snapshot, DatapathError> {
        let mut s = metrics::Snapshot::default();
        let slots: Vec<u32> = self.tables.members().map(|(slot, _)| slot).collect();
        let counters = self.datapath.member_counters_many(&slots)?;
        drop(slots);
        s.set_members(self.tables.members().map(|(_, m)| m.id()), counters);
        for (name, iface) in self.tables.interfaces() {
            s.interfaces
                .push((name.clone(), self.datapath.iface_counters(iface.slot)?));
        }
        if self.sessions.enabled() {
            let radius = self.sessions.radius();
            s.pppoe = Some(crate::sessions::PppoeGauges {
                by_state: self.sessions.by_state().into_iter().collect(),
                radius: crate::sessions::RadiusKind::ALL
                    .iter()
                    .flat_map(|k| {
                        crate::sessions::RadiusResult::ALL
                            .iter()
                            .map(move |r| (*k, *r))
                    })
                    .map(|(k, r)| (k.as_str(), r.as_str(), radius.get(k, r)))
                    .collect(),
                engine: self.sessions.engine_counters(),
            });
        }
        s.routes = self.routes.as_ref().and_then(|h| {
            h.table().map(|table| metrics::RoutesGauges {
                table,
                exported: h.exported(),
                drained: h.drained(),
            })
        });
        Ok(s)
    }

    /// Gateway MACs: static ones from the configuration, else the kernel's
    /// neighbour entries on the uplink.
    fn gateway_macs(&self, system: &Snapshot) -> BTreeMap<IpAddr, [u8; 6]> {
        let mut out = BTreeMap::new();
        for up in &self.config.uplinks {
            let Some(link) = system.links.get(&up.interface) else {
                continue;
            };
            let gws = [up.gateway4.map(IpAddr::V4), up.gateway6.map(IpAddr::V6)];
            for gw in gws.into_iter().flatten() {
                if let Some(mac) = system.neighbour(link.ifindex, gw) {
                    out.insert(gw, mac);
                }
            }
        }
        out
    }

    /// Gateways that have neither a static MAC nor a neighbour entry.
    fn unresolved_gateways(&self, system: &Snapshot) -> Vec<UnresolvedGateway> {
        let known = self.gateway_macs(system);
        let mut out = Vec::new();
        for up in &self.config.uplinks {
            if up.gateway_mac.is_some() {
                continue;
            }
            let Some(link) = system.links.get(&up.interface) else {
                continue;
            };
            let gws = [up.gateway4.map(IpAddr::V4), up.gateway6.map(IpAddr::V6)];
            for gw in gws.into_iter().flatten() {
                if !known.contains_key(&gw) {
                    out.push(UnresolvedGateway {
                        interface: up.interface.clone(),
                        ifindex: link.ifindex,
                        gateway: gw,
                    });
                }
            }
        }
        out
    }

    /// Brings interfaces, attachments and tables in line with `system`,
    /// and the member sets of `parts` (at start and on reload; the kernel's
    /// events change no member).
    pub fn sync(&mut self, system: &Snapshot, parts: &[Part<'_>]) -> Result<(), RouterError> {
        self.update(system, parts)?;
        self.push()
    }

    /// The tables part of [`Router::sync`]: all or nothing.
    pub fn update(&mut self, system: &Snapshot, parts: &[Part<'_>]) -> Result<(), RouterError> {
        let gateways = self.gateway_macs(system);
        let sources = InterfaceSources {
            config: &self.config,
            links: &system.links,
            gateway_macs: &gateways,
        };
        self.tables.set_link_addresses(&system.link_addresses);
        self.tables.update(sources, parts, &system.addresses)?;
        Ok(())
    }

    /// The datapath part of [`Router::sync`]: interfaces, then the tables'
    /// changes (or the whole tables).
    pub fn push(&mut self) -> Result<(), RouterError> {
        self.install_interfaces()?;
        if self.full {
            let full = self.tables.full_state();
            self.datapath.apply_full(&full)?;
            self.uplinks = full.uplinks;
            self.full = false;
            drop(full);
            // SAFETY: malloc_trim only releases free memory of the heap.
            unsafe { libc::malloc_trim(0) };
            return Ok(());
        }
        let changes = self.tables.take_changes();
        self.apply(changes)
    }

    fn apply(&mut self, changes: Changes) -> Result<(), RouterError> {
        let empty = changes.members.is_empty()
            && changes.routes.is_empty()
            && changes.attachments.is_empty()
            && changes.zero_counters.is_empty();
        if empty && changes.uplinks == self.uplinks && changes.edge == self.datapath.edge() {
            return Ok(());
        }
        debug!(
            members = changes.members.len(),
            routes = changes.routes.len(),
            attachments = changes.attachments.len(),
            "applying table changes"
        );
        let t = std::time::Instant::now();
        let uplinks = changes.uplinks;
        let large = changes.members.len() + changes.routes.len() >= TRIM_AFTER;
        self.datapath.apply(changes)?;
        if large {
            // The change's copies are freed: give that memory back, or it
            // stays resident beside the next sync's (glibc returns only the
            // top of its heap by itself).
            alloc::trim_later();
        }
        let (rss_kib, peak_kib) = alloc::resident_kib();
        debug!(
            elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
            rss_kib, peak_kib, "table changes applied"
        );
        self.uplinks = uplinks;
        Ok(())
    }

    /// Installs changed interfaces and attaches the program where needed.
    fn install_interfaces(&mut self) -> Result<(), RouterError> {
        let wanted = self.tables.interfaces().clone();
        for (name, (slot, info)) in self.installed.clone() {
            if !wanted.contains_key(&name) {
                info!(interface = %name, "interface removed from the configuration");
                self.detach(&name);
                self.datapath.clear_iface(slot, info.ifindex)?;
                self.installed.remove(&name);
                self.installed_addrs.remove(&name);
            }
        }
        for (name, iface) in &wanted {
            let previous = self.installed.get(name).map(|(_, i)| i.ifindex);
            if self.installed.get(name) != Some(&(iface.slot, iface.info)) {
                if iface.info.ifindex == 0 {
                    warn!(interface = %name, "interface has disappeared; it is ignored until it returns");
                    if let Some((slot, info)) = self.installed.remove(name) {
                        self.datapath.clear_iface(slot, info.ifindex)?;
                    }
                    self.installed_addrs.remove(name);
                    self.detach(name);
                    continue;
                }
                self.datapath
                    .set_iface(iface.slot, name, &iface.info, previous)?;
                self.installed
                    .insert(name.clone(), (iface.slot, iface.info));
            }
            let addrs = (iface.slot, iface.addrs, iface.gateways.clone());
            if self.installed_addrs.get(name) != Some(&addrs) {
                self.datapath
                    .set_iface_addrs(iface.slot, &iface.addrs, &iface.gateways)?;
                self.installed_addrs.insert(name.clone(), addrs);
            }
            let attached_at = self.attached.get(name).map(|(i, _)| *i);
            if attached_at != Some(iface.info.ifindex) {
                // A link of ours on an old ifindex goes; a pinned link of a
                // previous run is taken over by `attach`.
                if attached_at.is_some() {
                    self.detach(name);
                }
                let link = self.attach(name)?;
                self.attached
                    .insert(name.clone(), (iface.info.ifindex, link));
            }
        }
        Ok(())
    }

    fn attach(&mut self, name: &str) -> Result<LinkId, RouterError> {
        let mode = self.config.datapath.xdp_mode;
        let first = match mode {
            XdpMode::Generic => Attach::Generic,
            XdpMode::Native | XdpMode::Auto => Attach::Native,
        };
        match self.datapath.attach(name, first) {
            Ok(link) => {
                info!(interface = %name, mode = ?mode, "XDP program attached");
                Ok(link)
            }
            Err(e) if mode == XdpMode::Auto => {
                warn!(interface = %name, error = %e, "native XDP is not available; falling back to generic XDP, which is much slower");
                Ok(self.datapath.attach(name, Attach::Generic)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Detaches the program from an interface (removed from the
    /// configuration, or gone), pinned link included.
    fn detach(&mut self, name: &str) {
        let link = self.attached.remove(name).map(|(_, l)| l);
        if let Err(e) = self.datapath.detach_pinned(name, link) {
            warn!(interface = %name, error = %e, "cannot detach the XDP program");
        }
    }

    /// Replaces the configuration with `new` (without its members) and
    /// its members with `members`, if they can be applied live: the table
    /// sizes must not change, and the new members must not conflict with
    /// the API's. On error the running configuration stays.
    pub fn reload(
        &mut self,
        new: Config,
        members: MemberStore,
        system: &Snapshot,
    ) -> Result<(), RouterError> {
        let old = &self.config.datapath;
        for (field, a, b) in [
            ("max_members", old.max_members, new.datapath.max_members),
            (
                "route_groups",
                old.route_groups(),
                new.datapath.route_groups(),
            ),
        ] {
            if a != b {
                return Err(RouterError::SizingChanged {
                    field,
                    old: a,
                    new: b,
                });
            }
        }
        // The new file must not conflict with the API members.
        // (and the PPPoE sessions' members, which it must leave alone).
        let api = self
            .tables
            .members()
            .map(|(_, m)| m)
            .filter(|m| m.origin() != Origin::Config);
        let checked = provisioning::check_config(&new, members, api, self.provisioning.path())?;
        let previous = std::mem::replace(&mut self.config, new);
        let synced = self.sync(system, &[Part::of(Origin::Config, &checked.config_members)]);
        if let Some(routes) = &self.routes {
            // (A failed datapath write may leave the tables changed: the
            // routes follow the tables either way.)
            if synced.is_ok() {
                routes.configure(self.config.routes.as_ref());
            }
            routes.resync();
        }
        if let Err(e) = synced {
            self.config = previous;
            return Err(e);
        }
        alloc::drop_later(checked);
        Ok(())
    }
}

/// The provisioning API's access to the router.
impl Router {
    /// Validates, computes, persists and applies an API write, in that
    /// order; on error before the apply, nothing has changed.
    pub fn provision(&mut self, op: Op) -> Result<Outcome, WriteError> {
        // What the member routes need to know of the write: its prefixes
        // before and after (a sync: everything).
        let routes_change = self.routes.as_ref().map(|_| {
            let (id, new) = match &op {
                Op::Put(m) => (m.id.as_str(), m.prefixes.clone()),
                Op::Delete(id) => (id.as_str(), Vec::new()),
                Op::Sync { .. } => return None,
            };
            let old: Vec<IpNet> = self
                .tables
                .member(id)
                .map(|(_, m)| m.prefixes().collect())
                .unwrap_or_default();
            Some((old, new))
        });
        let Written { changed, outcome } =
            self.provisioning
                .write(op, &self.config, &mut self.tables)?;
        if let (true, Some(routes)) = (changed, &self.routes) {
            // Sent under the lock: in order with the writes.
            match routes_change.flatten() {
                Some((old, new)) => routes.members_changed(Delta::between(&old, &new)),
                None => routes.resync(),
            }
        }
        if changed {
            let changes = self.tables.take_changes();
            if let Err(e) = self.apply(changes) {
                // The next resync writes the tables whole.
                self.full = true;
                return Err(WriteError::Datapath(e.to_string()));
            }
        }
        Ok(outcome)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The attachments that gained their first member with an IPv6 prefix,
    /// or lost their last, since the last call (see
    /// [`Tables::take_ipv6_attachment_changes`]): what the router
    /// advertisements follow.
    pub fn take_ipv6_attachment_changes(&mut self) -> Vec<(Attachment, bool)> {
        self.tables.take_ipv6_attachment_changes()
    }

    pub fn provisioning(&self) -> &Provisioning {
        &self.provisioning
    }

    /// Interfaces the program is attached to.
    pub fn attached_count(&self) -> usize {
        self.attached.len()
    }
}

/// The CPE MACs the datapath learns for members without a configured MAC.
impl Router {
    /// At start over a pinned datapath: gives members the MACs the
    /// previous run learned (before the first push). Returns how many.
    pub fn restore_learned(&mut self) -> Result<usize, RouterError> {
        if !self.datapath.reused() {
            return Ok(0);
        }
        let learned = self.datapath.learned_macs()?;
        Ok(self.tables.restore_learned(learned))
    }

    /// The datapath's reports of CPE MACs, for the daemon's loop (once).
    pub fn take_learn_events(&mut self) -> Option<LearnEvents> {
        self.datapath.take_learn_events()
    }

    /// Applies the datapath's reports `(member slot, MAC)`: each member
    /// without a configured MAC takes the MAC its CPE sends from (logged,
    /// and logged as a new CPE when it had another one).
    pub fn learn(&mut self, reports: &[(u32, [u8; 6])]) -> Result<(), RouterError> {
        for &(slot, mac) in reports {
            let id = self.tables.id(slot).unwrap_or("?").to_string();
            match self.tables.learn(slot, mac) {
                Learned::New { mac } => {
                    info!(member = %id, mac = %fmt_mac(mac), "CPE MAC learned: downstream traffic goes to it")
                }
                Learned::Changed { old, mac } => {
                    warn!(member = %id, old = %fmt_mac(old), mac = %fmt_mac(mac), "a new CPE on the member's line: its MAC changed, downstream traffic goes to the new one")
                }
                Learned::Same | Learned::Ignored => {}
            }
        }
        let changes = self.tables.take_changes();
        self.apply(changes)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Changes of at least this many members and routes free enough memory
/// to give it back to the system once applied.
const TRIM_AFTER: usize = 16 * 1024;

/// Why a session's member cannot be put.
#[derive(Debug, thiserror::Error)]
pub enum SessionPutError {
    /// The member breaks a rule (its fields, an overlap, an id of another
    /// origin, no room left).
    #[error(transparent)]
    Tables(#[from] TablesError),
    /// The user has a session on another line already.
    #[error(
        "user {user:?} has a session already (on {interface}, session id {session_id}); a user \
         has one session at a time"
    )]
    AlreadyUp {
        user: String,
        interface: String,
        session_id: u16,
    },
    /// The session's interface is not in the tables.
    #[error("interface {0} is not an access interface of the datapath")]
    NoInterface(String),
    /// The datapath could not be written (nothing of the session stays).
    #[error(transparent)]
    Apply(#[from] RouterError),
}

/// The PPPoE sessions: their members and their datapath entries, under the
/// router's lock (see [`crate::sessions`]).
impl Router {
    /// Sets the sessions' registry (at start, PPPoE on).
    pub fn set_sessions(&mut self, registry: Registry) {
        self.sessions = registry;
    }

    pub fn sessions(&self) -> &Registry {
        &self.sessions
    }

    pub fn sessions_mut(&mut self) -> &mut Registry {
        &mut self.sessions
    }

    /// The datapath slot of interface `name`.
    pub fn iface_slot(&self, name: &str) -> Option<u16> {
        self.tables.interfaces().get(name).map(|i| i.slot as u16)
    }

    /// Checks that session `session`'s member `m` could be put (its
    /// fields, the other members, the room), changing nothing.
    pub fn check_session_member(
        &self,
        m: &Member,
        session: &SessionRef,
    ) -> Result<(), SessionPutError> {
        m.validate_fields()
            .map_err(|e| TablesError::Invalid(e.into()))?;
        if let Some(r) = self.sessions.by_user(&m.id)
            && r.session() != *session
        {
            return Err(SessionPutError::AlreadyUp {
                user: m.id.clone(),
                interface: r.member.interface.clone(),
                session_id: r.session().session_id,
            });
        }
        self.tables
            .check_put(m.as_in(), Origin::Session)
            .map(drop)?;
        Ok(())
    }

    /// Puts session `r`'s member (origin `session`) in the tables and the
    /// datapath, then the session; fills in `r.slot`, `r.iface_slot` and
    /// `r.base`, and keeps the record (persisted). On error nothing of the
    /// session stays.
    pub fn put_session(&mut self, mut r: Record) -> Result<Record, SessionPutError> {
        let session = r.session();
        self.check_session_member(&r.member, &session)?;
        let iface_slot = self
            .iface_slot(&r.member.interface)
            .ok_or_else(|| SessionPutError::NoInterface(r.member.interface.clone()))?;
        let checked = self.tables.check_put(r.member.as_in(), Origin::Session)?;
        if let Some(old) = self
            .tables
            .commit_put(checked, r.member.as_in(), Origin::Session)?
        {
            alloc::drop_later(old);
        }
        let slot = self.tables.slot(&r.member.id).unwrap_or_default();
        let changes = self.tables.take_changes();
        let written = self.apply(changes).and_then(|()| {
            r.slot = slot;
            r.iface_slot = iface_slot;
            let base = self.datapath.member_counters_many(&[slot])?;
            r.base = base[0].into();
            let value = router_common::pppoe::Session {
                member: slot,
                mru: r.mru(),
                _pad: 0,
            };
            self.datapath.put_session(r.key(), value)?;
            Ok(())
        });
        if let Err(e) = written {
            // Nothing stays: the member goes (the next resync writes the
            // tables whole if this fails too).
            let _ = self.datapath.remove_session(&r.key());
            let _ = self.tables.remove_member(&r.member.id);
            let changes = self.tables.take_changes();
            if self.apply(changes).is_err() {
                self.full = true;
            }
            return Err(SessionPutError::Apply(e));
        }
        if let Some(routes) = &self.routes {
            routes.members_changed(Delta::between(&[], &r.member.prefixes));
        }
        if let Err(e) = self.sessions.insert(r.clone()) {
            warn!(error = %e, user = %r.member.id, "the session is up but could not be saved; a restart ends it");
        }
        Ok(r)
    }

    /// Removes session `session` from the datapath and its member from the
    /// tables: its record and its counters since it came up, if it was up.
    pub fn remove_session(
        &mut self,
        session: &SessionRef,
    ) -> Result<Option<(Record, MemberCounters)>, RouterError> {
        let Some(r) = self.sessions.get(session).cloned() else {
            return Ok(None);
        };
        self.datapath.remove_session(&r.key())?;
        let counters = self.session_counters(&r)?;
        if self.tables.member(&r.member.id).is_some() {
            self.tables.remove_member(&r.member.id)?;
            let changes = self.tables.take_changes();
            if let Err(e) = self.apply(changes) {
                self.full = true;
                return Err(e);
            }
            if let Some(routes) = &self.routes {
                routes.members_changed(Delta::between(&r.member.prefixes, &[]));
            }
        }
        if let Err(e) = self.sessions.remove(session) {
            warn!(error = %e, user = %r.member.id, "the session ended but the sessions file could not be saved");
        }
        Ok(Some((r, counters)))
    }

    /// Session `r`'s member counters since it came up.
    pub fn session_counters(&self, r: &Record) -> Result<MemberCounters, DatapathError> {
        let now = self.datapath.member_counters_many(&[r.slot])?[0];
        Ok(r.base.since(&now))
    }

    /// At start, before the first push: puts the members of the persisted
    /// sessions `records` back (in the slots the pinned datapath recorded
    /// for them). A record whose member no longer fits (its interface is no
    /// longer a PPPoE one, a configured member took its prefixes) is
    /// dropped, logged. Returns the records kept.
    pub fn restore_sessions(&mut self, records: Vec<Record>) -> Vec<Record> {
        let mut kept = Vec::with_capacity(records.len());
        for mut r in records {
            let put = self
                .check_session_member(&r.member, &r.session())
                .and_then(|()| {
                    let checked = self.tables.check_put(r.member.as_in(), Origin::Session)?;
                    self.tables
                        .commit_put(checked, r.member.as_in(), Origin::Session)?;
                    Ok(())
                });
            match (put, self.iface_slot(&r.member.interface)) {
                (Ok(()), Some(iface_slot)) => {
                    let slot = self.tables.slot(&r.member.id).unwrap_or_default();
                    if slot != r.slot {
                        // A new slot: its counters start from zero.
                        r.base = Default::default();
                    }
                    r.slot = slot;
                    r.iface_slot = iface_slot;
                    kept.push(r);
                }
                (Err(e), _) => {
                    warn!(user = %r.member.id, error = %e, "a PPPoE session of the previous run cannot be restored; it is ended")
                }
                (Ok(()), None) => {
                    let _ = self.tables.remove_member(&r.member.id);
                    warn!(user = %r.member.id, interface = %r.member.interface, "a PPPoE session of the previous run is on an interface no longer configured; it is ended")
                }
            }
        }
        kept
    }

    /// After the first push: writes the restored sessions `records` to the
    /// datapath (again: it kept them) and removes the datapath's sessions
    /// that none of them names. Returns how many were removed.
    pub fn reconcile_sessions(&mut self, records: &[Record]) -> Result<usize, RouterError> {
        for r in records {
            let value = router_common::pppoe::Session {
                member: r.slot,
                mru: r.mru(),
                _pad: 0,
            };
            self.datapath.put_session(r.key(), value)?;
            if let Err(e) = self.sessions.insert(r.clone()) {
                warn!(error = %e, "cannot save the PPPoE sessions file");
            }
        }
        let wanted: BTreeSet<_> = records.iter().map(Record::key).collect();
        let mut removed = 0;
        for (key, _) in self.datapath.sessions()? {
            if !wanted.contains(&key) {
                self.datapath.remove_session(&key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The operator's view of the PPPoE sessions.
impl Router {
    /// Every session as the API shows it, with an up session's counters.
    pub fn sessions_view(&self) -> Vec<crate::sessions::SessionOut> {
        self.sessions.view(|slot| {
            let r = self.sessions.records().find(|r| r.slot == slot)?;
            self.session_counters(r).ok()
        })
    }
}
