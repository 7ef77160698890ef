//! The member routes, exported to a kernel routing table for BIRD or FRR
//! to announce (`[routes] table = N`): one `blackhole` route of protocol
//! [`PROTO`](router_core::export::PROTO) per member prefix.
//!
//! A thread of its own keeps the table in step, in the background: the
//! API's writes and the datapath never wait for the kernel's routes. The
//! router hands it every change of the member set as it happens (a
//! [`Delta`] per single write, a full resync for a sync, a reload or a
//! start) through a channel; the thread coalesces what arrived while it was
//! busy, plans with [`Exporter`] (router-core) and sends each plan as
//! batches of route messages ([`kernel`]). The router's lock is held only
//! to copy the member prefixes (a full resync); a million members' two
//! million routes take about 17 s on the 2-core test VM (the control
//! bench's member-routes part), during which the API and the fast path go
//! on.
//!
//! - **Start:** the table's routes of ours are dumped, compared with the
//!   members, and only the difference is sent: a restart over a right table
//!   changes nothing, so a routing daemon sees no withdrawal.
//! - **Stop, crash:** the routes stay, like the datapath;
//!   `collecte stop --detach` removes them ([`remove_all`]).
//! - **Drain** ([`Handle::set_drained`], saved beside the state file):
//!   every route is withdrawn while forwarding goes on; undrain puts them
//!   back. So are they while the datapath is found detached from one of its
//!   interfaces.
//!
//! # Layout
//! - this module: the [`Handle`] the router, the daemon and the API hold,
//!   and the thread;
//! - `codec`: the route messages as bytes;
//! - [`kernel`]: the socket, dumps and batches;
//! - `drain`: the drain state's file.
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    time::{Duration, Instant},
};

use ipnet::IpNet;
use router_core::{
    config::RoutesConfig,
    export::{Delta, Exporter, Step, Withdrawal},
};
use tracing::{debug, error, info, warn};

mod codec;
mod drain;
pub mod kernel;

pub use drain::{DrainError, drain_path, read_drained};
pub use kernel::{KernelError, remove_all};

/// What the thread is told.
enum Event {
    /// A single write changed the member set.
    Members(Delta),
    /// Take the whole member set again.
    Resync,
    Drained(bool),
    /// The interfaces the datapath is not attached to.
    Detached(Vec<String>),
    /// `[routes]` after a reload.
    Configure(Option<u32>),
}

/// What the handle's holders read without asking the thread.
#[derive(Debug, Default)]
struct Status {
    /// The configured table, 0 for none.
    table: AtomicU32,
    /// Our routes in the table.
    exported: AtomicU64,
    drained: AtomicBool,
}

/// The routes' side of the router: cheap to clone, never blocks on the
/// kernel.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: Sender<Event>,
    status: Arc<Status>,
    drain_file: PathBuf,
}

/// Takes every member prefix, running its argument while no write can
/// happen (under the router's lock), so that what the argument drains
/// from the channel is in what it returns.
pub type Members = Box<dyn FnMut(&mut dyn FnMut()) -> Vec<IpNet> + Send>;

/// The thread's end, before it starts.
pub struct Pending {
    rx: Receiver<Event>,
    status: Arc<Status>,
}

/// A handle and the thread's end for `config` (`None`: nothing exported
/// until a reload adds `[routes]`); reads the drain state from
/// `drain_file`.
pub fn channel(
    config: Option<&RoutesConfig>,
    drain_file: PathBuf,
) -> Result<(Handle, Pending), DrainError> {
    let drained = read_drained(&drain_file)?;
    let status = Arc::new(Status {
        table: AtomicU32::new(config.map_or(0, |c| c.table)),
        exported: AtomicU64::new(0),
        drained: AtomicBool::new(drained),
    });
    let (tx, rx) = mpsc::channel();
    // The first step: reconcile the table.
    let _ = tx.send(Event::Resync);
    let handle = Handle {
        tx,
        status: status.clone(),
        drain_file,
    };
    Ok((handle, Pending { rx, status }))
}

impl Handle {
    /// The configured table, if any.
    pub fn table(&self) -> Option<u32> {
        match self.status.table.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Our routes in the table, as last installed.
    pub fn exported(&self) -> u64 {
        self.status.exported.load(Ordering::Relaxed)
    }

    pub fn drained(&self) -> bool {
        self.status.drained.load(Ordering::Relaxed)
    }

    /// A single write changed the member set.
    pub fn members_changed(&self, delta: Delta) {
        if !delta.is_empty() {
            let _ = self.tx.send(Event::Members(delta));
        }
    }

    /// The member set changed as a whole (a sync, a reload).
    pub fn resync(&self) {
        let _ = self.tx.send(Event::Resync);
    }

    /// The interfaces the datapath is found detached from (none: it is
    /// attached everywhere).
    pub fn set_detached(&self, interfaces: Vec<String>) {
        let _ = self.tx.send(Event::Detached(interfaces));
    }

    /// `[routes]` after a reload: a new table takes the routes from the old.
    pub fn configure(&self, config: Option<&RoutesConfig>) {
        let table = config.map(|c| c.table);
        let old = self
            .status
            .table
            .swap(table.unwrap_or(0), Ordering::Relaxed);
        if old != table.unwrap_or(0) {
            let _ = self.tx.send(Event::Configure(table));
        }
    }

    /// Drains (withdraws every route) or undrains, saving the state first;
    /// the routes follow in the background.
    pub fn set_drained(&self, drained: bool) -> Result<(), DrainError> {
        if self.table().is_none() {
            return Err(DrainError::NotExported);
        }
        if drained != self.drained() {
            drain::write_drained(&self.drain_file, drained)?;
            self.status.drained.store(drained, Ordering::Relaxed);
            info!(
                drained,
                "{}",
                if drained {
                    "drained: withdrawing every member route (forwarding goes on)"
                } else {
                    "undrained: announcing the member routes again"
                }
            );
        }
        let _ = self.tx.send(Event::Drained(drained));
        Ok(())
    }
}

impl Pending {
    /// Starts the thread; `members` takes the member prefixes.
    pub fn spawn(self, members: Members) -> std::io::Result<()> {
        let table = match self.status.table.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        };
        let drained = self.status.drained.load(Ordering::Relaxed);
        let driver = Driver {
            rx: self.rx,
            status: self.status,
            members,
            table,
            kernel: None,
            exporter: Exporter::new(drained),
            detached: Vec::new(),
            backoff: MIN_BACKOFF,
            retry_at: None,
        };
        std::thread::Builder::new()
            .name("collecte-routes".into())
            .spawn(move || driver.run())
            .map(drop)
    }
}

/// A burst of changes settles for this long before it is sent...
const SETTLE: Duration = Duration::from_millis(20);
/// ...but never longer than this.
const SETTLE_MAX: Duration = Duration::from_millis(200);
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Changes at least this large are logged at info.
const LOG_AT_INFO: usize = 1000;

struct Driver {
    rx: Receiver<Event>,
    status: Arc<Status>,
    members: Members,
    table: Option<u32>,
    kernel: Option<kernel::KernelTable>,
    exporter: Exporter,
    detached: Vec<String>,
    backoff: Duration,
    /// After a failure: when to try again.
    retry_at: Option<Instant>,
}

impl Driver {
    fn run(mut self) {
        loop {
            let first = match self.retry_at {
                Some(at) => self
                    .rx
                    .recv_timeout(at.saturating_duration_since(Instant::now())),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match first {
                Ok(e) => self.handle(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.retry_at.is_some_and(|at| Instant::now() >= at) {
                self.retry_at = None;
                self.exporter.retry();
            }
            // Let a burst of writes settle into one exchange.
            let end = Instant::now() + SETTLE_MAX;
            while let Ok(e) = self
                .rx
                .recv_timeout(SETTLE.min(end.saturating_duration_since(Instant::now())))
            {
                self.handle(e);
            }
            self.steps();
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Members(delta) => self.exporter.members_changed(delta),
            Event::Resync => self.exporter.resync(),
            Event::Drained(d) => {
                self.exporter.set_drained(d);
            }
            Event::Detached(list) => {
                if list == self.detached {
                    return;
                }
                if list.is_empty() {
                    info!(
                        "the datapath is attached to every interface again: announcing the member routes"
                    );
                } else {
                    warn!(
                        interfaces = %list.join(","),
                        "the datapath is detached from {}: withdrawing every member route until it is back",
                        list.join(", ")
                    );
                }
                self.detached = list.clone();
                self.exporter.set_detached(list);
            }
            Event::Configure(table) => self.configure(table),
        }
    }

    fn configure(&mut self, table: Option<u32>) {
        if table == self.table {
            return;
        }
        if let Some(old) = self.table {
            match remove_all(old) {
                Ok(n) => info!(
                    table = old,
                    routes = n,
                    "[routes] changed: removed the member routes from the former table"
                ),
                Err(e) => {
                    error!(error = %e, "[routes] changed: cannot remove the member routes from the former table; remove them by hand (ip route flush table {old} proto 150)")
                }
            }
        }
        self.table = table;
        self.kernel = None;
        let drained = self.status.drained.load(Ordering::Relaxed);
        self.exporter = Exporter::new(drained);
        self.exporter.set_detached(self.detached.clone());
        self.status.exported.store(0, Ordering::Relaxed);
        self.retry_at = None;
        match table {
            Some(t) => info!(table = t, "exporting the member routes to a new table"),
            None => info!("[routes] removed: no member route is exported any more"),
        }
    }

    /// Runs the exporter's steps until it is idle.
    fn steps(&mut self) {
        let Some(table) = self.table else {
            return;
        };
        loop {
            let step = self.exporter.next_step();
            let done = match step {
                Step::Idle => break,
                Step::Dump => self.dump(table),
                Step::Snapshot => {
                    self.snapshot();
                    Ok(())
                }
                Step::Apply(ops) => self.apply(table, ops),
            };
            self.status
                .exported
                .store(self.exporter.installed() as u64, Ordering::Relaxed);
            if let Err(e) = done {
                self.kernel = None;
                self.exporter.lost();
                self.fail(format_args!("{e}"));
                break;
            }
            if self.exporter.failed() {
                self.fail(format_args!("the kernel refused some route changes"));
                break;
            }
            self.backoff = MIN_BACKOFF;
        }
    }

    fn fail(&mut self, why: std::fmt::Arguments<'_>) {
        error!(
            retry_in_s = self.backoff.as_secs(),
            "member routes: {why}; trying again (the table is reconciled then)"
        );
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn kernel(&mut self, table: u32) -> Result<&mut kernel::KernelTable, KernelError> {
        if self.kernel.is_none() {
            self.kernel = Some(kernel::KernelTable::open(table)?);
        }
        Ok(self.kernel.as_mut().expect("opened"))
    }

    fn dump(&mut self, table: u32) -> Result<(), KernelError> {
        let t = Instant::now();
        let routes = self.kernel(table)?.dump()?;
        debug!(
            table,
            routes = routes.len(),
            elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
            "member routes: table dumped"
        );
        self.exporter.dumped(routes);
        Ok(())
    }

    /// Takes the member prefixes; what was queued meanwhile is in them.
    fn snapshot(&mut self) {
        let t = Instant::now();
        let mut queued = Vec::new();
        let rx = &self.rx;
        let prefixes = (self.members)(&mut || queued.extend(rx.try_iter()));
        for e in queued {
            match e {
                // In the snapshot already.
                Event::Members(_) | Event::Resync => {}
                other => self.handle(other),
            }
        }
        debug!(
            prefixes = prefixes.len(),
            elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
            "member routes: member prefixes taken"
        );
        self.exporter.snapshot(prefixes);
    }

    fn apply(&mut self, table: u32, ops: router_core::export::Ops) -> Result<(), KernelError> {
        let t = Instant::now();
        let refused = self.kernel(table)?.apply(&ops)?;
        let a = self.exporter.applied(&ops, &refused);
        let elapsed_ms = t.elapsed().as_secs_f64() * 1e3;
        let exported = self.exporter.installed();
        match self.exporter.withdrawal() {
            Some(w) if a.removed > 0 => info!(
                table,
                removed = a.removed,
                elapsed_ms,
                "member routes withdrawn ({})",
                match w {
                    Withdrawal::Drained => "drained".to_owned(),
                    Withdrawal::Detached(list) =>
                        format!("the datapath is detached from {}", list.join(", ")),
                }
            ),
            _ if ops.len() >= LOG_AT_INFO => info!(
                table,
                added = a.added,
                removed = a.removed,
                exported,
                elapsed_ms,
                "member routes updated"
            ),
            _ => debug!(
                table,
                added = a.added,
                removed = a.removed,
                exported,
                elapsed_ms,
                "member routes updated"
            ),
        }
        for p in &a.conflicts {
            warn!(table, prefix = %p, "routing table {table} already has a route for {p} that is not collecte's (another protocol): it is left alone, and {p} is not exported while it is there");
        }
        for (p, add, errno) in a.errors.iter().take(10) {
            error!(table, prefix = %p, "the kernel refused to {} the route for {p}: {}", if *add { "add" } else { "remove" }, std::io::Error::from_raw_os_error(*errno));
        }
        Ok(())
    }
}
