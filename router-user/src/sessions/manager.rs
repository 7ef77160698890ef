//! The session manager: one task that runs the PPPoE engine over the
//! `[pppoe]` interfaces' packet sockets, asks RADIUS, and puts sessions in
//! the router and the datapath (see [the module](super)).
//!
//! RADIUS exchanges run on tasks of their own, without the router's lock;
//! their outcomes come back to the manager's loop, which alone touches the
//! engine. The router's lock is taken for each table or datapath change,
//! briefly.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use router_common::MemberCounters;
use router_core::config::Config;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::{
    Live, RadiusKind, RadiusResult, RadiusStats, Record, accounting,
    grant::{grant_of, member_of},
};
use crate::{
    netlink::Snapshot,
    pppoe::{
        Action, AuthRequest, Engine, Port, SessionRef, Settings, TerminateCause,
        socket::{PacketSocket, SocketError},
    },
    radius::{
        Accept, AccessRequest, AcctKind, Client, Credentials, NasPortType, RadiusError,
        SecretError, calling_station_id, nas_port_id, read_secret,
    },
    router::{Shared, lock},
};

/// Why the sessions cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("[pppoe] interfaces: {0} does not exist; create it, or remove it from [pppoe]")]
    MissingInterface(String),
    #[error("[pppoe] interfaces: {0} is not an access interface of the datapath")]
    NotAccess(String),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Radius(#[from] RadiusError),
}

/// The shortest interval between Interim-Updates (an Accept asking for
/// less gets this).
pub const MIN_INTERIM: u32 = 10;

/// A RADIUS outcome for the loop.
struct AuthDone {
    session: SessionRef,
    user: String,
    result: Result<Accept, RadiusError>,
}

/// The session manager, ready to run.
pub struct Manager {
    engine: Engine,
    sockets: BTreeMap<u32, Arc<PacketSocket>>,
    names: BTreeMap<u32, String>,
    radius: Arc<Client>,
    router: Shared,
    stats: Arc<RadiusStats>,
    interim_default: u32,
    /// Accepted sessions waiting for their Up: the Accept and the member.
    pending: HashMap<SessionRef, (Accept, router_core::member::Member)>,
    /// Up sessions: when their next Interim-Update is due.
    interim: HashMap<SessionRef, Instant>,
    /// Up sessions with a Session-Timeout: when they end.
    deadlines: HashMap<SessionRef, Instant>,
    auth_tx: mpsc::UnboundedSender<AuthDone>,
    auth_rx: mpsc::UnboundedReceiver<AuthDone>,
    /// Restored sessions on an interface that is no longer a PPPoE one:
    /// ended when the manager starts.
    orphans: Vec<SessionRef>,
}

/// The running manager.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the manager: established sessions stay in the datapath (and
    /// in `sessions.json`) for the next run to take over.
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

impl Manager {
    /// The manager of `config`'s `[pppoe]` (None without it), over the
    /// interfaces of `system`, for `router` (whose tables know the
    /// interfaces, and which holds the sessions restored at start). Opens
    /// the packet sockets and reads the RADIUS secret.
    pub fn new(
        config: &Config,
        system: &Snapshot,
        router: &Shared,
    ) -> Result<Option<Manager>, ManagerError> {
        let (Some(pppoe), Some(radius)) = (&config.pppoe, &config.radius) else {
            return Ok(None);
        };
        let secret = read_secret(&radius.secret_file)?;
        let client = Client::new(radius, secret)?;
        let mut ports = Vec::new();
        let mut sockets = BTreeMap::new();
        let mut names = BTreeMap::new();
        let r = lock(router);
        for name in &pppoe.interfaces {
            let link = system
                .links
                .get(name)
                .ok_or_else(|| ManagerError::MissingInterface(name.clone()))?;
            let iface_slot = r
                .iface_slot(name)
                .ok_or_else(|| ManagerError::NotAccess(name.clone()))?;
            let gateway_ipv4 = system.link_addresses.get(name).and_then(|a| {
                a.iter().find_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
            });
            ports.push(Port {
                ifindex: link.ifindex,
                ifname: name.clone(),
                iface_slot,
                mac: link.mac,
                gateway_ipv4,
            });
            sockets.insert(link.ifindex, Arc::new(PacketSocket::open(name)?));
            names.insert(link.ifindex, name.clone());
        }
        let settings = Settings {
            ac_name: pppoe.ac_name.clone(),
            mru: pppoe.mru,
            echo_interval: pppoe.echo_interval(),
            echo_failures: pppoe.echo_failures,
            ..Settings::default()
        };
        let mut engine = Engine::new(settings, ports);
        let stats = r.sessions().radius();
        let interim_default = radius.interim_interval.max(MIN_INTERIM);
        // The sessions of the previous run resume.
        let now = Instant::now();
        let mut interim = HashMap::new();
        let mut deadlines = HashMap::new();
        let unix = accounting::unix_now();
        let mut orphans = Vec::new();
        for rec in r.sessions().records() {
            let Some(s) = engine.restore(now, rec.engine.clone()) else {
                orphans.push(rec.session());
                continue;
            };
            interim.insert(s, now + secs(rec.interim_interval));
            if let Some(t) = rec.session_timeout {
                let end = rec.engine.started_unix + u64::from(t);
                deadlines.insert(s, now + Duration::from_secs(end.saturating_sub(unix)));
            }
        }
        drop(r);
        let (auth_tx, auth_rx) = mpsc::unbounded_channel();
        Ok(Some(Manager {
            engine,
            sockets,
            names,
            radius: Arc::new(client),
            router: router.clone(),
            stats,
            interim_default,
            pending: HashMap::new(),
            interim,
            deadlines,
            auth_tx,
            auth_rx,
            orphans,
        }))
    }

    /// Runs the manager on tasks of its own: one reader per socket, and the
    /// loop.
    pub fn spawn(self) -> Running {
        let (tx, rx) = mpsc::channel::<(u32, Vec<u8>)>(1024);
        let mut tasks = Vec::new();
        for (&ifindex, socket) in &self.sockets {
            let socket = socket.clone();
            let tx = tx.clone();
            let name = self.names.get(&ifindex).cloned().unwrap_or_default();
            tasks.push(tokio::spawn(async move {
                loop {
                    match socket.recv().await {
                        Ok(frame) => {
                            if tx.send((ifindex, frame)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            error!(interface = %name, error = %e, "cannot receive PPPoE frames; retrying in 1 s");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }));
        }
        let restored = self.interim.len();
        if restored > 0 {
            info!(
                sessions = restored,
                "PPPoE sessions of the previous run resumed"
            );
        }
        tasks.push(tokio::spawn(self.run(rx)));
        Running { tasks }
    }

    async fn run(mut self, mut frames: mpsc::Receiver<(u32, Vec<u8>)>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for s in std::mem::take(&mut self.orphans) {
            warn!(
                ifindex = s.line.ifindex,
                session_id = s.session_id,
                "a PPPoE session of the previous run is on an interface that no longer has PPPoE; it is ended"
            );
            self.down(s, TerminateCause::AdminReboot);
        }
        self.publish();
        loop {
            tokio::select! {
                Some((ifindex, frame)) = frames.recv() => {
                    let actions = self.engine.on_frame(Instant::now(), ifindex, &frame);
                    let changed = !actions.is_empty();
                    self.handle(actions);
                    // Frames that came meanwhile, before publishing.
                    while let Ok((ifindex, frame)) = frames.try_recv() {
                        let actions = self.engine.on_frame(Instant::now(), ifindex, &frame);
                        self.handle(actions);
                    }
                    if changed {
                        self.publish();
                    }
                }
                Some(done) = self.auth_rx.recv() => {
                    self.on_radius(done);
                    self.publish();
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let actions = self.engine.on_tick(now);
                    self.handle(actions);
                    self.due(now);
                    self.publish();
                }
            }
        }
    }

    /// Carries out `actions` and those they lead to.
    fn handle(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            let more = match a {
                Action::Send { ifindex, frame } => {
                    match self.sockets.get(&ifindex) {
                        Some(s) => {
                            if let Err(e) = s.send(&frame) {
                                warn!(ifindex, error = %e, "cannot send a PPPoE frame");
                            }
                        }
                        None => warn!(ifindex, "a PPPoE frame for an interface without a socket"),
                    }
                    Vec::new()
                }
                Action::Authenticate { session, request } => {
                    self.authenticate(session, request);
                    Vec::new()
                }
                Action::Up { session } => self.up(session),
                Action::Down { session, cause } => {
                    self.down(session, cause);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    fn ifname(&self, session: &SessionRef) -> String {
        self.names
            .get(&session.line.ifindex)
            .cloned()
            .unwrap_or_default()
    }

    /// Asks RADIUS on a task of its own.
    fn authenticate(&mut self, session: SessionRef, request: AuthRequest) {
        let ifname = self.ifname(&session);
        let (user, auth) = match request {
            AuthRequest::Pap { user, password } => (user, Credentials::Pap { password }),
            AuthRequest::Chap {
                user,
                id,
                challenge,
                response,
            } => (
                user,
                Credentials::Chap {
                    id,
                    challenge,
                    response,
                },
            ),
        };
        let req = AccessRequest {
            user: user.clone(),
            auth,
            nas_port_id: nas_port_id(&ifname, session.line.s_vlan, session.line.c_vlan),
            nas_port_type: NasPortType::Ethernet,
            calling_station_id: calling_station_id(session.line.mac),
        };
        let client = self.radius.clone();
        let tx = self.auth_tx.clone();
        debug!(user = %user, interface = %ifname, session_id = session.session_id, "asking RADIUS");
        tokio::spawn(async move {
            let result = client.authenticate(&req).await;
            let _ = tx.send(AuthDone {
                session,
                user,
                result,
            });
        });
    }

    /// RADIUS answered: the member is checked, the engine told.
    fn on_radius(&mut self, done: AuthDone) {
        let AuthDone {
            session,
            user,
            result,
        } = done;
        self.stats
            .count(RadiusKind::Auth, RadiusResult::of(&result));
        let ifname = self.ifname(&session);
        let outcome = match result {
            Err(e) => {
                warn!(user = %user, interface = %ifname, session_id = session.session_id, error = %e, "PPPoE session refused");
                Err(match e {
                    RadiusError::Rejected { message } => {
                        message.unwrap_or_else(|| "authentication failed".to_owned())
                    }
                    _ => "authentication unavailable".to_owned(),
                })
            }
            Ok(accept) => {
                // A client dialling again on the same line (its CPE
                // rebooted without a PADT) replaces its stale session.
                let stale = lock(&self.router)
                    .sessions()
                    .by_user(&user)
                    .map(|r| r.session())
                    .filter(|s| *s != session && s.line == session.line);
                if let Some(old) = stale {
                    info!(user = %user, interface = %ifname, old_session_id = old.session_id, "the user dials again on the same line: its previous session ends");
                    let actions = self.engine.terminate(old, TerminateCause::NasRequest);
                    self.handle(actions);
                }
                let checked = member_of(&user, &ifname, &session, &accept)
                    .map_err(|e| e.to_string())
                    .and_then(|m| {
                        lock(&self.router)
                            .check_session_member(&m, &session)
                            .map(|()| m)
                            .map_err(|e| e.to_string())
                    });
                match checked {
                    Ok(m) => {
                        let grant = grant_of(&accept);
                        self.pending.insert(session, (accept, m));
                        Ok(grant)
                    }
                    Err(why) => {
                        warn!(user = %user, interface = %ifname, session_id = session.session_id, error = %why, "PPPoE session refused: RADIUS accepted it, but its member cannot be put");
                        Err("the session's addresses cannot be given".to_owned())
                    }
                }
            }
        };
        let actions = self.engine.on_auth(Instant::now(), session, outcome);
        self.handle(actions);
    }

    /// The session is up: its member and the session go in, accounting
    /// starts. Returns the actions of ending it, if it cannot be put.
    fn up(&mut self, session: SessionRef) -> Vec<Action> {
        let ifname = self.ifname(&session);
        let (Some((accept, member)), Some(persisted)) = (
            self.pending.remove(&session),
            self.engine.persisted(session),
        ) else {
            error!(interface = %ifname, session_id = session.session_id, "a PPPoE session came up without an accepted authentication; it is ended");
            return self.engine.terminate(session, TerminateCause::NasError);
        };
        let interim = accept
            .interim_interval
            .unwrap_or(self.interim_default)
            .max(MIN_INTERIM);
        let record = Record {
            acct_session_id: accounting::acct_session_id(
                persisted.started_unix,
                session.line.ifindex,
                session.session_id,
            ),
            member,
            slot: 0,
            iface_slot: 0,
            class: accept.class.clone(),
            interim_interval: interim,
            base: Default::default(),
            session_timeout: accept.session_timeout,
            engine: persisted,
        };
        let put = lock(&self.router).put_session(record);
        match put {
            Ok(r) => {
                info!(user = %r.member.id, interface = %ifname, session_id = session.session_id, slot = r.slot, prefixes = ?r.member.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(), "PPPoE session up");
                let now = Instant::now();
                self.interim.insert(session, now + secs(interim));
                if let Some(t) = accept.session_timeout {
                    self.deadlines.insert(session, now + secs(t));
                }
                self.account(AcctKind::Start, &r, MemberCounters::default(), None);
                Vec::new()
            }
            Err(e) => {
                error!(interface = %ifname, session_id = session.session_id, error = %e, "a PPPoE session cannot be put in the datapath; it is ended");
                self.engine.terminate(session, TerminateCause::NasError)
            }
        }
    }

    /// The session ended: out of the tables and the datapath, accounting
    /// stops.
    fn down(&mut self, session: SessionRef, cause: TerminateCause) {
        self.pending.remove(&session);
        self.interim.remove(&session);
        self.deadlines.remove(&session);
        let removed = lock(&self.router).remove_session(&session);
        let ifname = self.ifname(&session);
        match removed {
            Ok(Some((r, counters))) => {
                info!(user = %r.member.id, interface = %ifname, session_id = session.session_id, cause = ?cause, rx_bytes = counters.rx_bytes, tx_bytes = counters.tx_bytes, "PPPoE session down");
                self.account(AcctKind::Stop, &r, counters, Some(cause));
            }
            Ok(None) => {
                debug!(interface = %ifname, session_id = session.session_id, cause = ?cause, "PPPoE session ended before it was up")
            }
            Err(e) => {
                error!(interface = %ifname, session_id = session.session_id, error = %e, "cannot remove an ended PPPoE session from the datapath")
            }
        }
    }

    /// Interim-Updates and Session-Timeouts due at `now`.
    fn due(&mut self, now: Instant) {
        let ended: Vec<SessionRef> = self
            .deadlines
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in ended {
            self.deadlines.remove(&s);
            let actions = self.engine.terminate(s, TerminateCause::SessionTimeout);
            self.handle(actions);
        }
        let due: Vec<SessionRef> = self
            .interim
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            let read = {
                let r = lock(&self.router);
                r.sessions()
                    .get(&s)
                    .cloned()
                    .map(|rec| (r.session_counters(&rec), rec))
            };
            match read {
                Some((Ok(c), rec)) => {
                    self.interim.insert(s, now + secs(rec.interim_interval));
                    self.account(AcctKind::Interim, &rec, c, None);
                }
                Some((Err(e), rec)) => {
                    self.interim.insert(s, now + secs(rec.interim_interval));
                    error!(user = %rec.member.id, error = %e, "cannot read a session's counters for its Interim-Update");
                }
                None => {
                    self.interim.remove(&s);
                }
            }
        }
    }

    /// Sends an accounting record on a task of its own.
    fn account(
        &self,
        kind: AcctKind,
        r: &Record,
        counters: MemberCounters,
        cause: Option<TerminateCause>,
    ) {
        let rec = accounting::record(kind, r, &counters, accounting::unix_now(), cause);
        let client = self.radius.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let result = client.account(&rec).await;
            stats.count(RadiusKind::Acct, RadiusResult::of(&result));
            if let Err(e) = result {
                warn!(user = %rec.user, kind = ?rec.kind, error = %e, "RADIUS accounting failed");
            }
        });
    }

    /// Tells the router every session's state (the API and the metrics),
    /// and saves the engine's state of established sessions that changed
    /// (an NCP opened after the Up).
    fn publish(&mut self) {
        let live: Vec<Live> = self
            .engine
            .sessions()
            .map(|v| Live {
                session: v.session,
                interface: v.ifname.to_owned(),
                state: v.state,
                user: v.user.map(str::to_owned),
                mru: v.mru,
                started_unix: v.started_unix,
            })
            .collect();
        let changed: Vec<_> = self
            .interim
            .keys()
            .filter_map(|s| self.engine.persisted(*s))
            .collect();
        let counters = self.engine.counters();
        let mut r = lock(&self.router);
        let registry = r.sessions_mut();
        for p in changed {
            if let Err(e) = registry.update_engine(p) {
                warn!(error = %e, "cannot save the PPPoE sessions file");
            }
        }
        registry.publish(live, counters);
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}
