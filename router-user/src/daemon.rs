//! `collecte run`: keeps the datapath in step with the configuration and the
//! kernel, and serves the metrics.
//!
//! One task owns the [`Router`] state behind a mutex. It reacts to:
//! - netlink events (links, addresses, neighbours): a resync within ~50 ms;
//! - a 1 s tick while a gateway is unresolved (the kernel is asked to
//!   resolve it), and a 30 s safety resync;
//! - SIGHUP: reload the configuration, apply only the difference;
//! - SIGTERM / SIGINT: exit, leaving the pinned datapath forwarding with its
//!   last tables (a restart takes it over; `collecte stop --detach` removes
//!   it).
//!
//! The metrics server reads counters under the same mutex; a scrape never
//! touches the packets' path. So does the provisioning API ([`crate::api`]),
//! whose writes go through `Router::provision`; the members it adds are
//! kept in the state file ([`crate::state`]) and restored at start.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use router_common::IfaceInfo;
use router_core::{
    changes::{Changes, Uplinks},
    config::{Config, ConfigError, XdpMode},
    member::Origin,
    store::MemberStore,
    tables::{InterfaceSources, Part, Tables, TablesError},
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};

use crate::{
    datapath::{Attach, Datapath, DatapathError, LinkId, LoadOptions, Mode, Sizing},
    metrics,
    neighbors::{self, NeighborError, Snapshot},
    state::{self, Op, Outcome, Provisioning, StateError, WriteError},
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tables(#[from] TablesError),
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    #[error(transparent)]
    Netlink(#[from] NeighborError),
    #[error("interface {0} does not exist; create it, or remove it from the configuration")]
    MissingInterface(String),
    #[error("cannot serve metrics on {addr}: {source}; choose a free address in [metrics] listen")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "[datapath] pin_dir {0} is not on a bpffs mount; mount one (mount -t bpf bpf /sys/fs/bpf) or choose a pin_dir inside one"
    )]
    NotBpffs(PathBuf),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Api(#[from] crate::api::StartError),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(
        "[datapath] {field} changed from {old} to {new}: table sizes are fixed while running; restart collecte to apply it"
    )]
    SizingChanged {
        field: &'static str,
        old: u32,
        new: u32,
    },
}

/// The daemon's state: what is configured, what the datapath holds.
pub struct Router {
    config: Config,
    tables: Tables,
    datapath: Datapath,
    /// Interfaces as installed in the datapath.
    installed: BTreeMap<String, (u32, IfaceInfo)>,
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

    /// Gateways that have neither a static MAC nor a neighbour entry, with
    /// the ifindex of their uplink.
    fn unresolved_gateways(&self, system: &Snapshot) -> Vec<(String, u32, IpAddr)> {
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
                    out.push((up.interface.clone(), link.ifindex, gw));
                }
            }
        }
        out
    }

    /// Brings interfaces, attachments and tables in line with `system`,
    /// and the member sets of `parts` (at start and on reload; the kernel's
    /// events change no member).
    fn sync(&mut self, system: &Snapshot, parts: &[Part<'_>]) -> Result<(), DaemonError> {
        self.update(system, parts)?;
        self.push()
    }

    /// The tables part of [`Router::sync`]: all or nothing.
    fn update(&mut self, system: &Snapshot, parts: &[Part<'_>]) -> Result<(), DaemonError> {
        let gateways = self.gateway_macs(system);
        let sources = InterfaceSources {
            config: &self.config,
            links: &system.links,
            gateway_macs: &gateways,
        };
        self.tables.update(sources, parts, &system.addresses)?;
        Ok(())
    }

    /// The datapath part of [`Router::sync`]: interfaces, then the tables'
    /// changes (or the whole tables).
    fn push(&mut self) -> Result<(), DaemonError> {
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

    fn apply(&mut self, changes: Changes) -> Result<(), DaemonError> {
        let empty = changes.members.is_empty()
            && changes.routes.is_empty()
            && changes.attachments.is_empty()
            && changes.zero_counters.is_empty();
        if empty && changes.uplinks == self.uplinks {
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
            crate::state::trim_later();
        }
        let (rss_kib, peak_kib) = crate::state::resident_kib();
        debug!(
            elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
            rss_kib, peak_kib, "table changes applied"
        );
        self.uplinks = uplinks;
        Ok(())
    }

    /// Installs changed interfaces and attaches the program where needed.
    fn install_interfaces(&mut self) -> Result<(), DaemonError> {
        let wanted = self.tables.interfaces().clone();
        for (name, (slot, info)) in self.installed.clone() {
            if !wanted.contains_key(&name) {
                info!(interface = %name, "interface removed from the configuration");
                self.detach(&name);
                self.datapath.clear_iface(slot, info.ifindex)?;
                self.installed.remove(&name);
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
                    self.detach(name);
                    continue;
                }
                self.datapath
                    .set_iface(iface.slot, name, &iface.info, previous)?;
                self.installed
                    .insert(name.clone(), (iface.slot, iface.info));
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

    fn attach(&mut self, name: &str) -> Result<LinkId, DaemonError> {
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
    /// its members with `members`, if they can be applied live.
    fn reload(
        &mut self,
        new: Config,
        members: MemberStore,
        system: &Snapshot,
    ) -> Result<(), DaemonError> {
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
                return Err(DaemonError::SizingChanged {
                    field,
                    old: a,
                    new: b,
                });
            }
        }
        // The new file must not conflict with the API members.
        let api = self
            .tables
            .members()
            .map(|(_, m)| m)
            .filter(|m| m.origin() == Origin::Api);
        let checked = state::check_config(&new, members, api, self.provisioning.path())?;
        let previous = std::mem::replace(&mut self.config, new);
        if let Err(e) = self.sync(system, &[Part::of(Origin::Config, &checked.config_members)]) {
            self.config = previous;
            return Err(e);
        }
        state::drop_later(checked);
        Ok(())
    }
}

/// The provisioning API's access to the router (see [`crate::api`]).
impl Router {
    /// Validates, computes, persists and applies an API write, in that
    /// order; on error before the apply, nothing has changed.
    pub(crate) fn provision(&mut self, op: Op) -> Result<Outcome, WriteError> {
        let (changed, outcome) = self
            .provisioning
            .write(op, &self.config, &mut self.tables)?;
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

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn tables(&self) -> &Tables {
        &self.tables
    }

    pub(crate) fn provisioning(&self) -> &Provisioning {
        &self.provisioning
    }

    /// Interfaces the program is attached to.
    pub(crate) fn attached_count(&self) -> usize {
        self.attached.len()
    }
}

/// Runs the daemon until SIGTERM or SIGINT. `config` is what reading
/// `config_path` gave (the file is read again on SIGHUP).
pub async fn run(
    config_path: &Path,
    config: Result<(Config, MemberStore), ConfigError>,
) -> Result<(), DaemonError> {
    // The members live in the tables; the configuration keeps the rest.
    let (config, config_members) = config?;
    let (provisioning, api_members) = Provisioning::load(&config)?;
    let checked = state::check_config(
        &config,
        config_members,
        api_members.iter().map(|(_, m)| m),
        provisioning.path(),
    )?;
    let api = crate::api::prepare(&config.api).await?;
    let (handle, mut events) = neighbors::connect()?;
    let system = neighbors::snapshot(&handle).await?;
    for name in config
        .uplinks
        .iter()
        .map(|u| &u.interface)
        .chain(config.access.iter().map(|a| &a.interface))
    {
        if !system.links.contains_key(name) {
            return Err(DaemonError::MissingInterface(name.clone()));
        }
    }
    let sizing = Sizing {
        max_members: config.datapath.max_members,
        route_groups: config.datapath.route_groups(),
    };
    let pin_dir = config.datapath.pin_dir.clone();
    check_bpffs(&pin_dir)?;
    let datapath = Datapath::load_with(&LoadOptions {
        sizing,
        mode: Mode::Forward,
        pin_dir: Some(pin_dir.clone()),
    })?;
    let tables = if datapath.reused() {
        let slots = datapath.recorded_slots()?;
        info!(
            pin_dir = %pin_dir.display(),
            members = slots.members.len(),
            "taking over the pinned datapath: counters carry on, forwarding never stopped"
        );
        Tables::with_slots(
            sizing.max_members,
            sizing.route_groups,
            slots.members,
            slots.ifaces,
        )
    } else {
        Tables::new(sizing.max_members, sizing.route_groups)
    };
    let listen = config.metrics.listen;
    let mut router = Router {
        tables,
        config,
        datapath,
        installed: BTreeMap::new(),
        attached: BTreeMap::new(),
        uplinks: Uplinks::default(),
        unresolved: BTreeSet::new(),
        full: true,
        provisioning,
    };
    router.update(
        &system,
        &[
            Part::of(Origin::Config, &checked.config_members),
            Part::of(Origin::Api, &api_members),
        ],
    )?;
    let lap = |what: &str| {
        let (rss_kib, peak_kib) = state::resident_kib();
        debug!(rss_kib, peak_kib, "start-up: {what}");
    };
    lap("tables built");
    // In the tables now: freed before the whole tables are written out.
    drop((checked, api_members));
    // SAFETY: malloc_trim only releases free memory of the heap.
    unsafe { libc::malloc_trim(0) };
    router.push()?;
    lap("datapath written");
    info!(
        members = router.tables.len(),
        interfaces = router.attached.len(),
        "datapath ready"
    );
    let router = Arc::new(Mutex::new(router));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Metrics {
            addr: listen,
            source,
        });
    let listener = listener?;
    info!(url = %format!("http://{listen}/metrics"), "serving metrics");
    let server = tokio::spawn(serve_metrics(listener, router.clone()));
    let api = api.map(|a| a.spawn(router.clone()));

    let signals = (|| {
        Ok::<_, std::io::Error>((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })();
    let (mut hup, mut term, mut int) = signals.map_err(DaemonError::Signals)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    let mut needs_resolution = true;
    loop {
        let mut resync = false;
        let mut resolve = false;
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                info!(config = %config_path.display(), "SIGHUP: reloading the configuration");
                reload(&router, config_path, &handle).await;
                if let Some(api) = &api {
                    let config = lock(&router).config().api.clone();
                    api.reload(&config);
                }
            }
            Some(()) = events.recv() => {
                // Let a burst of events settle, then resync once.
                tokio::time::sleep(Duration::from_millis(20)).await;
                while events.try_recv().is_ok() {}
                resync = true;
            }
            _ = tick.tick() => {
                ticks += 1;
                resolve = needs_resolution;
                resync = needs_resolution || ticks.is_multiple_of(30);
            }
        }
        if resync {
            needs_resolution = resync_once(&router, &handle, resolve).await;
        }
    }
    server.abort();
    if let Some(api) = api {
        api.stop();
    }
    info!(
        pin_dir = %pin_dir.display(),
        "the datapath keeps forwarding with its last tables; `collecte stop --detach` removes it"
    );
    Ok(())
}

/// Changes of at least this many members and routes free enough memory
/// to give it back to the system once applied.
const TRIM_AFTER: usize = 16 * 1024;

/// bpffs's magic number (`statfs`).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Pins only work on bpffs: say so clearly rather than fail obscurely.
fn check_bpffs(pin_dir: &Path) -> Result<(), DaemonError> {
    let mut dir = pin_dir.to_path_buf();
    while !dir.exists() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(DaemonError::NotBpffs(pin_dir.to_path_buf()));
    }
    Ok(())
}

fn lock(router: &Arc<Mutex<Router>>) -> std::sync::MutexGuard<'_, Router> {
    router.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resyncs with the kernel and, when `resolve`, asks it to resolve the
/// unresolved gateways (only on the 1 s tick: a request causes a neighbour
/// event, which must not cause another request). Returns whether some
/// gateway is still unresolved.
async fn resync_once(
    router: &Arc<Mutex<Router>>,
    handle: &rtnetlink::Handle,
    resolve: bool,
) -> bool {
    let system = match neighbors::snapshot(handle).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot read the kernel's interfaces and neighbours; will retry");
            return true;
        }
    };
    let unresolved = {
        let mut r = lock(router);
        if let Err(e) = r.sync(&system, &[]) {
            error!(error = %e, "cannot update the datapath; the previous tables stay in force");
        }
        let unresolved = r.unresolved_gateways(&system);
        let now: BTreeSet<IpAddr> = unresolved.iter().map(|(_, _, gw)| *gw).collect();
        for (iface, _, gw) in &unresolved {
            if !r.unresolved.contains(gw) {
                warn!(gateway = %gw, interface = %iface, "gateway MAC unknown: upstream packets go to the kernel (pass no-neighbor) until it resolves; check that the gateway answers ARP/ND, or set gateway_mac");
            }
        }
        for gw in r.unresolved.difference(&now) {
            info!(gateway = %gw, "gateway resolved");
        }
        r.unresolved = now;
        unresolved
    };
    for (_, ifindex, gw) in unresolved.iter().filter(|_| resolve) {
        if let Err(e) = neighbors::resolve(handle, *ifindex, *gw).await {
            debug!(gateway = %gw, error = %e, "resolution request failed");
        }
    }
    !unresolved.is_empty()
}

async fn reload(router: &Arc<Mutex<Router>>, path: &Path, handle: &rtnetlink::Handle) {
    let (config, members) = match Config::read(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "refusing the new configuration; the running one stays in force");
            return;
        }
    };
    let system = match neighbors::snapshot(handle).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot read the kernel's interfaces; the running configuration stays in force");
            return;
        }
    };
    for name in config
        .uplinks
        .iter()
        .map(|u| &u.interface)
        .chain(config.access.iter().map(|a| &a.interface))
    {
        if !system.links.contains_key(name) {
            error!(interface = %name, "refusing the new configuration: interface does not exist; the running one stays in force");
            return;
        }
    }
    let mut r = lock(router);
    match r.reload(config, members, &system) {
        Ok(()) => info!(members = r.tables.len(), "configuration reloaded"),
        Err(e) => {
            error!(error = %e, "refusing the new configuration; the running one stays in force")
        }
    }
}

async fn serve_metrics(listener: tokio::net::TcpListener, router: Arc<Mutex<Router>>) {
    use axum::{
        Router as Http,
        http::{StatusCode, header},
        response::IntoResponse as _,
        routing::get,
    };
    let app = Http::new().route(
        "/metrics",
        get(move || {
            let router = router.clone();
            async move {
                let snapshot = tokio::task::spawn_blocking(move || lock(&router).metrics()).await;
                let failed = |message: String| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [(header::CONTENT_TYPE, "text/plain")],
                        message,
                    )
                        .into_response()
                };
                match snapshot {
                    // Streamed piece by piece: the whole text of a million
                    // members is never held in memory.
                    Ok(Ok(s)) => (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                        axum::body::Body::from_stream(futures::stream::iter(
                            metrics::render_chunks(s).map(Ok::<_, std::convert::Infallible>),
                        )),
                    )
                        .into_response(),
                    Ok(Err(e)) => failed(format!("cannot read the counters: {e}\n")),
                    Err(e) => failed(format!("scrape failed: {e}\n")),
                }
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        error!(error = %e, "the metrics server stopped");
    }
}

/// The default configuration path.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("/etc/collecte/collecte.toml")
}
