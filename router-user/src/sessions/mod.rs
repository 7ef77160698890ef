//! PPPoE sessions in the daemon: the glue between the protocol engine
//! ([`crate::pppoe`]), RADIUS ([`crate::radius`]), the member tables and
//! the datapath.
//!
//! # A session's life
//! 1. The [`manager`] runs the sans-IO [`Engine`](crate::pppoe::Engine)
//!    over one AF_PACKET socket per `[pppoe]` interface, and ticks it
//!    every second (echoes, retransmissions, timeouts).
//! 2. When the client sends its credentials (PAP or CHAP), the manager asks
//!    RADIUS, without holding the router's lock. An Access-Accept's
//!    `Framed-IP-Address` (as a /32), `Framed-IPv6-Prefix` and
//!    `Delegated-IPv6-Prefix` make the session's member ([`grant`]): its
//!    id is the User-Name, its attachment the interface, tags and client
//!    MAC. The member is checked like any other (a prefix overlapping
//!    another member's, an id taken by a configured or API member, no room
//!    left: refused). A refusal, an Access-Reject or an unreachable server
//!    ends the negotiation (PAP-NAK or CHAP-Failure, LCP terminate, PADT),
//!    logged with why; nothing is left in the tables.
//! 3. When the engine says the session is up, its member (origin
//!    `session`, the PPPOE flag) and the session (`SESSIONS`,
//!    `SESSION_LINES`) go into the datapath, through
//!    [`Router::put_session`](crate::router::Router::put_session), and the
//!    accounting Start is sent. Interim-Updates follow every
//!    `interim_interval` (or the Access-Accept's Acct-Interim-Interval),
//!    from the member's datapath counters ([`accounting`]).
//! 4. When it ends (PADT or LCP terminate from either side, echo failures,
//!    Session-Timeout), both are removed and the accounting Stop carries
//!    the Terminate-Cause and the final counters.
//!
//! # Restart
//! Established sessions are kept in `sessions.json`, in the directory of
//! the state file, written atomically at every Up and Down ([`persist`]).
//! At start, before the first push, their members are put back in the
//! slots the pinned datapath recorded (their counters carry on), the
//! datapath's sessions that no record names are removed, and the engine
//! resumes each one (echoes and interim accounting restart). The XDP
//! program keeps forwarding their data while the daemon is away.
//!
//! # Layout
//! - this module: the persisted [`Record`], the operator's view
//!   ([`SessionOut`]) and the [`Registry`] the router keeps;
//! - [`grant`]: an Access-Accept's member and grant;
//! - [`persist`]: the file `sessions.json`;
//! - [`accounting`]: accounting records from the datapath's counters;
//! - [`stats`]: RADIUS request counters and the gauges of the metrics;
//! - [`manager`]: the task that runs it all.
use std::collections::BTreeMap;
use std::path::PathBuf;

use router_common::MemberCounters;
use router_core::member::Member;
use serde::{Deserialize, Serialize};

use crate::pppoe::{Counters, Persisted, SessionRef, SessionState};

pub mod accounting;
pub mod grant;
pub mod manager;
pub mod persist;
pub mod stats;

#[cfg(test)]
mod tests;

pub use persist::PersistError;
pub use stats::{PppoeGauges, RadiusKind, RadiusResult, RadiusStats};

/// An established session, as persisted and as the router keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its member (origin `session`): id = User-Name, the line, the
    /// granted prefixes.
    pub member: Member,
    /// The member's counter slot.
    pub slot: u32,
    /// The interface's slot (the datapath's session key).
    pub iface_slot: u16,
    /// Acct-Session-Id.
    pub acct_session_id: String,
    /// The Access-Accept's Class values, sent back in accounting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<Vec<u8>>,
    /// Seconds between Interim-Updates.
    pub interim_interval: u32,
    /// The member's counters when the session came up (a slot kept from
    /// a previous run carries its counters on).
    #[serde(default)]
    pub base: CountersOut,
    /// Session-Timeout, seconds, if RADIUS set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_timeout: Option<u32>,
    /// What the engine needs to resume it.
    pub engine: Persisted,
}

impl Record {
    /// The engine's reference of the session.
    pub fn session(&self) -> SessionRef {
        self.engine.session
    }

    /// The datapath's key of the session.
    pub fn key(&self) -> router_common::pppoe::SessionKey {
        self.engine.session.key(self.iface_slot)
    }

    /// The MRU both directions can carry.
    pub fn mru(&self) -> u16 {
        self.engine.our_mru.min(self.engine.peer_mru)
    }
}

/// A session in negotiation or up, as the manager last published it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub session: SessionRef,
    pub interface: String,
    pub state: SessionState,
    pub user: Option<String>,
    pub mru: u16,
    pub started_unix: u64,
}

/// A session as the API shows it (`GET /v1/sessions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOut {
    /// The member's id (the User-Name), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_vlan: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_vlan: Option<u16>,
    /// The client's MAC.
    pub mac: String,
    pub session_id: u16,
    /// `lcp`, `auth`, `network` or `up`.
    pub state: String,
    pub mru: u16,
    /// The member's prefixes (Framed-IP-Address as a /32,
    /// Framed-IPv6-Prefix, Delegated-IPv6-Prefix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Start time, Unix seconds.
    pub started: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct_session_id: Option<String>,
    /// The member's datapath counters (up sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersOut>,
}

/// A session's datapath counters: rx from the client (input), tx to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersOut {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub spoofed_packets: u64,
}

impl CountersOut {
    /// The counters `now` minus these.
    pub fn since(&self, now: &MemberCounters) -> MemberCounters {
        MemberCounters {
            rx_packets: now.rx_packets.saturating_sub(self.rx_packets),
            rx_bytes: now.rx_bytes.saturating_sub(self.rx_bytes),
            tx_packets: now.tx_packets.saturating_sub(self.tx_packets),
            tx_bytes: now.tx_bytes.saturating_sub(self.tx_bytes),
            spoofed_packets: now.spoofed_packets.saturating_sub(self.spoofed_packets),
        }
    }
}

impl From<MemberCounters> for CountersOut {
    fn from(c: MemberCounters) -> CountersOut {
        CountersOut {
            rx_packets: c.rx_packets,
            rx_bytes: c.rx_bytes,
            tx_packets: c.tx_packets,
            tx_bytes: c.tx_bytes,
            spoofed_packets: c.spoofed_packets,
        }
    }
}

/// The sessions the router knows: the established ones (persisted), what
/// the manager last published of every session, and the counters of the
/// metrics.
#[derive(Debug, Default)]
pub struct Registry {
    /// `sessions.json`; none when PPPoE is off.
    path: Option<PathBuf>,
    up: BTreeMap<SessionRef, Record>,
    live: Vec<Live>,
    engine: Counters,
    radius: std::sync::Arc<RadiusStats>,
    enabled: bool,
}

impl Registry {
    /// A registry persisted at `path` (PPPoE on), holding `records`.
    pub fn new(path: PathBuf, records: Vec<Record>) -> Registry {
        Registry {
            path: Some(path),
            up: records.into_iter().map(|r| (r.session(), r)).collect(),
            enabled: true,
            ..Registry::default()
        }
    }

    /// Whether PPPoE is configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The established sessions.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.up.values()
    }

    pub fn get(&self, session: &SessionRef) -> Option<&Record> {
        self.up.get(session)
    }

    /// The established session of member `id`.
    pub fn by_user(&self, id: &str) -> Option<&Record> {
        self.up.values().find(|r| r.member.id == id)
    }

    pub(crate) fn insert(&mut self, r: Record) -> Result<(), PersistError> {
        self.up.insert(r.session(), r);
        self.save()
    }

    pub(crate) fn remove(&mut self, session: &SessionRef) -> Result<Option<Record>, PersistError> {
        let r = self.up.remove(session);
        if r.is_some() {
            self.save()?;
        }
        Ok(r)
    }

    /// The engine's state of an established session changed (an NCP
    /// opened after its Up): kept, and saved.
    pub(crate) fn update_engine(&mut self, p: Persisted) -> Result<(), PersistError> {
        match self.up.get_mut(&p.session) {
            Some(r) if r.engine != p => {
                r.engine = p;
                self.save()
            }
            _ => Ok(()),
        }
    }

    fn save(&self) -> Result<(), PersistError> {
        match &self.path {
            Some(p) => persist::save(p, self.up.values()),
            None => Ok(()),
        }
    }

    /// The manager's view of every session and its engine's counters.
    pub fn publish(&mut self, live: Vec<Live>, engine: Counters) {
        self.live = live;
        self.engine = engine;
    }

    /// Every session the manager last published.
    pub fn live(&self) -> &[Live] {
        &self.live
    }

    /// The engine's counters, as last published.
    pub fn engine_counters(&self) -> Counters {
        self.engine
    }

    /// The RADIUS request counters (shared with the manager).
    pub fn radius(&self) -> std::sync::Arc<RadiusStats> {
        self.radius.clone()
    }

    /// Sessions by state (`lcp`, `auth`, `network`, `up`).
    pub fn by_state(&self) -> BTreeMap<&'static str, usize> {
        let mut out: BTreeMap<&'static str, usize> = [
            SessionState::Lcp,
            SessionState::Auth,
            SessionState::Network,
            SessionState::Up,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for l in &self.live {
            *out.entry(l.state.as_str()).or_default() += 1;
        }
        // Up sessions restored but not published yet.
        let up_live = self
            .live
            .iter()
            .filter(|l| l.state == SessionState::Up)
            .count();
        if up_live < self.up.len() {
            *out.entry(SessionState::Up.as_str()).or_default() += self.up.len() - up_live;
        }
        out
    }

    /// Every session as the API shows it, by id then line; `counters` gives
    /// an up session's member counters by slot.
    pub fn view(&self, counters: impl Fn(u32) -> Option<MemberCounters>) -> Vec<SessionOut> {
        let mut out: Vec<SessionOut> = self
            .up
            .values()
            .map(|r| {
                let s = r.session();
                SessionOut {
                    id: Some(r.member.id.clone()),
                    interface: r.member.interface.clone(),
                    s_vlan: r.member.s_vlan,
                    c_vlan: r.member.c_vlan,
                    mac: crate::radius::calling_station_id(s.line.mac),
                    session_id: s.session_id,
                    state: SessionState::Up.as_str().to_owned(),
                    mru: r.mru(),
                    addresses: r.member.prefixes.iter().map(ToString::to_string).collect(),
                    started: r.engine.started_unix,
                    slot: Some(r.slot),
                    acct_session_id: Some(r.acct_session_id.clone()),
                    counters: counters(r.slot).map(CountersOut::from),
                }
            })
            .collect();
        for l in self
            .live
            .iter()
            .filter(|l| !self.up.contains_key(&l.session))
        {
            let tag = |v: u16| (v != 0).then_some(v);
            out.push(SessionOut {
                id: l.user.clone(),
                interface: l.interface.clone(),
                s_vlan: tag(l.session.line.s_vlan),
                c_vlan: tag(l.session.line.c_vlan),
                mac: crate::radius::calling_station_id(l.session.line.mac),
                session_id: l.session.session_id,
                state: l.state.as_str().to_owned(),
                mru: l.mru,
                addresses: Vec::new(),
                started: l.started_unix,
                slot: None,
                acct_session_id: None,
                counters: None,
            });
        }
        out.sort_by(|a, b| {
            (&a.id, &a.interface, a.session_id).cmp(&(&b.id, &b.interface, b.session_id))
        });
        out
    }
}
