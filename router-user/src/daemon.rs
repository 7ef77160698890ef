//! `collecte run`: keeps the datapath in step with the configuration and the
//! kernel, and serves the metrics.
//!
//! One task owns the [`Router`] state behind a mutex. It reacts to:
//! - netlink events (links, addresses, neighbours): a resync within ~50 ms;
//! - a 1 s tick while a gateway is unresolved (the kernel is asked to
//!   resolve it), and a 30 s safety resync;
//! - the datapath's reports of CPE MACs (members without a configured
//!   MAC): the member takes the MAC, logged;
//! - SIGHUP: reload the configuration, apply only the difference;
//! - SIGTERM / SIGINT: exit, leaving the pinned datapath forwarding with its
//!   last tables (a restart takes it over; `collecte stop --detach` removes
//!   it).
//!
//! The metrics server reads counters under the same mutex; a scrape never
//! touches the packets' path. So does the provisioning API ([`crate::api`]),
//! whose writes go through `Router::provision`; the members it adds are
//! kept in the state file ([`crate::provisioning`]) and restored at start.
//!
//! The router itself, and what it does on each event, is
//! [`crate::router`]; this module starts it, runs the loop and serves the
//! metrics.
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use router_core::{
    config::{Config, ConfigError},
    member::Origin,
    store::MemberStore,
    tables::{Part, Tables, TablesError},
};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use tracing::{debug, error, info, warn};

use crate::{
    alloc,
    datapath::{Datapath, DatapathError, LearnEvents, LoadOptions, Mode, Sizing},
    edge::{self, Edge, EdgeError},
    metrics,
    netlink::{self, NetlinkError},
    provisioning::{self, ConflictError, Provisioning, StateError},
    router::{Router, RouterError, Shared, lock},
    routes::{self, DrainError},
    sessions::{self, Registry, manager::Manager},
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
    Netlink(#[from] NetlinkError),
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
    Conflict(#[from] ConflictError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Api(#[from] crate::api::StartError),
    #[error("cannot watch the datapath's CPE MAC reports (LEARN_EVENTS): {0}")]
    LearnEvents(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Drain(#[from] DrainError),
    #[error("cannot start the member routes' thread: {0}")]
    RoutesThread(#[source] std::io::Error),
    #[error(transparent)]
    Edge(#[from] EdgeError),
    #[error(transparent)]
    Sessions(#[from] sessions::manager::ManagerError),
}

/// Runs the daemon until SIGTERM or SIGINT. `config` is what reading
/// `config_path` gave (the file is read again on SIGHUP).
pub async fn run(
    config_path: &Path,
    config: Result<(Config, MemberStore), ConfigError>,
) -> Result<(), DaemonError> {
    // Signals first: a SIGTERM that arrives while the daemon starts (once
    // it answers, say) ends it cleanly at the loop instead of killing it
    // with the default action.
    let signals = (|| {
        Ok::<_, std::io::Error>((
            signal(SignalKind::hangup())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })();
    let (mut hup, mut term, mut int) = signals.map_err(DaemonError::Signals)?;
    // The members live in the tables; the configuration keeps the rest.
    let (config, config_members) = config?;
    let (provisioning, api_members) = Provisioning::load(&config)?;
    let checked = provisioning::check_config(
        &config,
        config_members,
        api_members.iter().map(|(_, m)| m),
        provisioning.path(),
    )?;
    let (routes, routes_thread) = routes::channel(
        config.routes.as_ref(),
        routes::drain_path(provisioning.path()),
    )?;
    let api = crate::api::prepare(&config.api).await?;
    let (handle, mut events) = netlink::connect()?;
    let system = netlink::snapshot(&handle).await?;
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
    // Before the program is attached: the NICs must leave the tags in.
    let mut edge = Edge::prepare(&config, &system)?;
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
    // The PPPoE sessions of the previous run, beside the member state.
    let sessions_path = sessions::persist::path_beside(provisioning.path());
    let session_records = if config.pppoe.is_some() {
        sessions::persist::load::<sessions::Record>(&sessions_path).unwrap_or_else(|e| {
            error!(error = %e, "the PPPoE sessions of the previous run are ended");
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let pppoe = config.pppoe.is_some();
    let mut router = Router::new(config, tables, datapath, provisioning);
    router.set_routes(routes.clone());
    router.update(
        &system,
        &[
            Part::of(Origin::Config, &checked.config_members),
            Part::of(Origin::Api, &api_members),
        ],
    )?;
    let lap = |what: &str| {
        let (rss_kib, peak_kib) = alloc::resident_kib();
        debug!(rss_kib, peak_kib, "start-up: {what}");
    };
    // Before the first push: the established sessions' members get their
    // slots back.
    let session_records = router.restore_sessions(session_records);
    if pppoe {
        router.set_sessions(Registry::new(sessions_path, Vec::new()));
    }
    let restored = router.restore_learned()?;
    if restored > 0 {
        info!(
            members = restored,
            "CPE MACs learned by the previous run kept"
        );
    }
    lap("tables built");
    // In the tables now: freed before the whole tables are written out.
    drop((checked, api_members));
    // SAFETY: malloc_trim only releases free memory of the heap.
    unsafe { libc::malloc_trim(0) };
    router.push()?;
    let ended = router.reconcile_sessions(&session_records)?;
    if ended > 0 {
        info!(
            sessions = ended,
            "PPPoE sessions of the previous run without a record removed from the datapath"
        );
    }
    drop(session_records);
    lap("datapath written");
    info!(
        members = router.tables().len(),
        interfaces = router.attached_count(),
        "datapath ready"
    );
    let learn_events = router.take_learn_events().map(|ring| {
        // SAFETY: the ring's file descriptor is the map's, owned by the
        // ring, open until the `AsyncFd` (which owns the ring) drops.
        unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)
    });
    let mut learn_events = learn_events.transpose().map_err(DaemonError::LearnEvents)?;
    let mut detached = router.detached_interfaces();
    routes.set_detached(detached.clone());
    let router = Arc::new(Mutex::new(router));
    let members = router.clone();
    routes_thread
        .spawn(Box::new(move |under_lock: &mut dyn FnMut()| {
            let r = lock(&members);
            under_lock();
            r.member_prefixes()
        }))
        .map_err(DaemonError::RoutesThread)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Metrics {
            addr: listen,
            source,
        });
    let listener = listener?;
    info!(url = %format!("http://{listen}/metrics"), "serving metrics");
    let server = tokio::spawn(serve_metrics(listener, router.clone(), edge.stats()));
    edge.spawn(router.clone());
    let api = api.map(|a| a.spawn(router.clone()));
    let config = lock(&router).config().clone();
    let pppoe = Manager::new(&config, &system, &router)?.map(Manager::spawn);
    drop(config);

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    let mut needs_resolution = true;
    loop {
        let mut resync = false;
        let mut resolve = false;
        let mut stop_learning = false;
        let mut reloaded = false;
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                info!(config = %config_path.display(), "SIGHUP: reloading the configuration");
                reload(&router, config_path, &handle, &mut edge).await;
                reloaded = true;
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
            Some(ready) = readable(&mut learn_events) => {
                match ready {
                    Ok(mut guard) => {
                        let reports = guard.get_inner_mut().drain();
                        guard.clear_ready();
                        if !reports.is_empty()
                            && let Err(e) = lock(&router).learn(&reports)
                        {
                            error!(error = %e, "cannot apply the CPE MACs learned; the previous tables stay in force");
                        }
                    }
                    Err(e) => {
                        error!(error = %e, "cannot wait for the datapath's CPE MAC reports; no more MACs are learned");
                        stop_learning = true;
                    }
                }
            }
            _ = tick.tick() => {
                ticks += 1;
                resolve = needs_resolution;
                resync = needs_resolution || ticks.is_multiple_of(30);
            }
        }
        if stop_learning {
            learn_events = None;
        }
        if resync {
            needs_resolution = resync_once(&router, &handle, resolve, &mut edge).await;
        }
        // Routes are withdrawn while the datapath is detached anywhere.
        if resync || reloaded {
            let now = lock(&router).detached_interfaces();
            if now != detached {
                routes.set_detached(now.clone());
                detached = now;
            }
        }
    }
    server.abort();
    edge.stop();
    if let Some(pppoe) = pppoe {
        pppoe.stop();
        info!("the established PPPoE sessions keep forwarding; the next run takes them over");
    }
    if let Some(api) = api {
        api.stop();
    }
    info!(
        pin_dir = %pin_dir.display(),
        "the datapath keeps forwarding with its last tables; `collecte stop --detach` removes it"
    );
    if let Some(table) = routes.table() {
        info!(
            table,
            "the member routes stay in their table; `collecte stop --detach` removes them"
        );
    }
    Ok(())
}

/// The datapath's CPE MAC reports, when there are some to read (never,
/// without the ring).
async fn readable(
    events: &mut Option<AsyncFd<LearnEvents>>,
) -> Option<std::io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, LearnEvents>>> {
    match events {
        Some(fd) => Some(fd.readable_mut().await),
        None => std::future::pending().await,
    }
}

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

/// Resyncs with the kernel and, when `resolve`, asks it to resolve the
/// unresolved gateways (only on the 1 s tick: a request causes a neighbour
/// event, which must not cause another request). Returns whether some
/// gateway is still unresolved.
async fn resync_once(
    router: &Shared,
    handle: &rtnetlink::Handle,
    resolve: bool,
    edge: &mut Edge,
) -> bool {
    let system = match netlink::snapshot(handle).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot read the kernel's interfaces and neighbours; will retry");
            return true;
        }
    };
    let (unresolved, targets) = {
        let mut r = lock(router);
        if let Err(e) = r.sync(&system, &[]) {
            error!(error = %e, "cannot update the datapath; the previous tables stay in force");
        }
        (r.check_gateways(&system), edge::tags::targets(r.config()))
    };
    edge.observe(&targets, &system);
    for u in unresolved.iter().filter(|_| resolve) {
        if let Err(e) = netlink::resolve(handle, u.ifindex, u.gateway).await {
            debug!(gateway = %u.gateway, error = %e, "resolution request failed");
        }
    }
    !unresolved.is_empty()
}

async fn reload(router: &Shared, path: &Path, handle: &rtnetlink::Handle, edge: &mut Edge) {
    let (config, members) = match Config::read(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "refusing the new configuration; the running one stays in force");
            return;
        }
    };
    let system = match netlink::snapshot(handle).await {
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
    let targets = {
        let mut r = lock(router);
        // The session manager keeps its sockets, engine and RADIUS client.
        if (&config.pppoe, &config.radius) != (&r.config().pppoe, &r.config().radius) {
            warn!(
                "[pppoe] or [radius] changed: restart collecte to apply it (established sessions survive a restart); the running settings stay"
            );
        }
        match r.reload(config, members, &system) {
            Ok(()) => info!(members = r.tables().len(), "configuration reloaded"),
            Err(e) => {
                error!(error = %e, "refusing the new configuration; the running one stays in force")
            }
        }
        edge::tags::targets(r.config())
    };
    edge.observe(&targets, &system);
}

async fn serve_metrics(listener: tokio::net::TcpListener, router: Shared, edge: Arc<edge::Stats>) {
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
            let edge = edge.clone();
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
                            metrics::render_chunks(s)
                                .chain(std::iter::once_with(move || edge.render()))
                                .map(Ok::<_, std::convert::Infallible>),
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
