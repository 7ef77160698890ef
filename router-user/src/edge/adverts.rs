//! The unsolicited router advertisements: a task that keeps a
//! [`Schedule`] of every attachment where a member with an IPv6 prefix
//! lives, and sends each its [`Advert`] from a [`PacketSocket`] on its
//! access interface, at most [`MAX_RATE`] a second.
//!
//! It reads what it needs through a [`Source`] (the daemon gives it the
//! router's): the attachments that came and went, the access interfaces
//! as the kernel has them, and the `[edge]` settings; it polls them every
//! [`POLL_MS`]. An interface that is down or has no IPv6 link-local
//! address gets nothing (logged once it has lasted [`PAUSE_GRACE_MS`], and
//! once when it can again); its attachments then start over with their
//! initial advertisements.
use std::{
    collections::BTreeMap,
    net::Ipv6Addr,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus::{
    Encoder as _, TextEncoder,
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use router_core::{changes::Attachment, config::EdgeConfig};
use tracing::{info, warn};

use super::{
    ra::{Advert, Tags, attachment_mtu},
    schedule::{Pacing, Schedule, TokenBucket},
};
use crate::packet_socket::PacketSocket;

/// Most advertisements sent a second, over every attachment.
pub const MAX_RATE: u64 = 2_000;
/// Most sent at once after a quiet time.
pub const BURST: u64 = 200;
/// How often the source is read, ms.
pub const POLL_MS: u64 = 1_000;
/// How long an interface may be without advertisements before it is
/// logged, ms: a link-local address is tentative for a second or two
/// after the interface comes up (duplicate address detection).
pub const PAUSE_GRACE_MS: u64 = 5_000;

/// An access interface as the advertisements need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessInterface {
    /// Its slot in the datapath (an [`Attachment`]'s `iface`).
    pub slot: u16,
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Layer-3 MTU.
    pub mtu: u32,
    pub up: bool,
    /// The advertisements' source, if it has one.
    pub link_local: Option<Ipv6Addr>,
}

/// What the advertisements say, from `[edge]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub router_lifetime: u16,
    pub hop_limit: u8,
    /// MaxRtrAdvInterval, s.
    pub interval: u32,
}

impl Settings {
    pub fn of(edge: &EdgeConfig) -> Settings {
        Settings {
            router_lifetime: edge.router_lifetime.min(u32::from(u16::MAX)) as u16,
            hop_limit: edge.ra_hop_limit,
            interval: edge.ra_interval,
        }
    }
}

/// One reading of the [`Source`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// Attachments that gained their first IPv6 member (`true`) or lost
    /// their last (`false`) since the last reading; the first reading has
    /// them all.
    pub changes: Vec<(Attachment, bool)>,
    /// Every access interface.
    pub interfaces: Vec<AccessInterface>,
    pub settings: Settings,
}

/// Where the task reads the attachments and the interfaces.
pub trait Source: Send + 'static {
    fn poll(&mut self) -> Feed;
}

/// Why an interface gets no advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Paused {
    Down,
    NoLinkLocal,
}

struct Interface {
    facts: AccessInterface,
    socket: Option<PacketSocket>,
    paused: Option<Paused>,
    /// Since when (ms), and whether that was logged.
    paused_since: u64,
    pause_logged: bool,
    /// The last socket error was logged.
    socket_error_logged: bool,
}

/// The task's state: the schedule, the interfaces, the counters.
pub struct Adverts {
    schedule: Schedule,
    bucket: TokenBucket,
    settings: Option<Settings>,
    interfaces: BTreeMap<u16, Interface>,
    stats: Arc<Stats>,
    /// Lateness was reported, and not yet caught up.
    late_reported: bool,
}

impl Adverts {
    pub fn new(stats: Arc<Stats>, seed: u64) -> Adverts {
        Adverts {
            schedule: Schedule::new(Pacing::from_interval(200), seed),
            bucket: TokenBucket::new(MAX_RATE, BURST, 0),
            settings: None,
            interfaces: BTreeMap::new(),
            stats,
            late_reported: false,
        }
    }

    /// Takes in a reading of the source at `now_ms`.
    pub fn apply(&mut self, feed: Feed, now_ms: u64) {
        if self.settings.map(|s| s.interval) != Some(feed.settings.interval) {
            self.schedule
                .set_pacing(Pacing::from_interval(feed.settings.interval));
        }
        self.settings = Some(feed.settings);
        for (a, ipv6) in feed.changes {
            if ipv6 {
                self.schedule.add(a, now_ms);
            } else {
                self.schedule.remove(a);
            }
        }
        let names: Vec<String> = feed.interfaces.iter().map(|i| i.name.clone()).collect();
        self.interfaces
            .retain(|slot, _| feed.interfaces.iter().any(|i| i.slot == *slot));
        for facts in feed.interfaces {
            let paused = if !facts.up {
                Some(Paused::Down)
            } else if facts.link_local.is_none() {
                Some(Paused::NoLinkLocal)
            } else {
                None
            };
            let slot = facts.slot;
            let i = self.interfaces.entry(slot).or_insert_with(|| Interface {
                facts: facts.clone(),
                socket: None,
                paused: None,
                paused_since: now_ms,
                pause_logged: false,
                socket_error_logged: false,
            });
            if i.facts.ifindex != facts.ifindex || i.facts.name != facts.name {
                i.socket = None;
                i.socket_error_logged = false;
            }
            if i.paused != paused {
                if paused.is_none() {
                    // Its attachments' turns went by unsent: they start over.
                    self.schedule.restart(|a| a.iface == slot, now_ms);
                    if i.pause_logged {
                        info!(interface = %facts.name, "router advertisements resume on this access interface");
                    }
                }
                i.paused_since = now_ms;
                i.pause_logged = false;
            }
            if let Some(why) = &paused
                && !i.pause_logged
                && now_ms.saturating_sub(i.paused_since) >= PAUSE_GRACE_MS
            {
                log_pause(&facts.name, why);
                i.pause_logged = true;
            }
            i.facts = facts;
            i.paused = paused;
        }
        self.stats.set(&names, self.schedule.len());
    }

    /// Sends what is due at `now_ms`, as far as the rate allows.
    pub fn send_due(&mut self, now_ms: u64) {
        let Some(settings) = self.settings else {
            return;
        };
        while self.bucket.next_token_ms(now_ms) == now_ms {
            let Some(due) = self.schedule.pop_due(now_ms) else {
                break;
            };
            self.note_lateness(due.late_ms);
            let Some(iface) = self.interfaces.get_mut(&due.attachment.iface) else {
                continue;
            };
            let (Some(source), None) = (iface.facts.link_local, &iface.paused) else {
                continue;
            };
            if iface.socket.is_none() {
                match PacketSocket::sender(&iface.facts.name, iface.facts.ifindex) {
                    Ok(s) => iface.socket = Some(s),
                    Err(e) => {
                        if !iface.socket_error_logged {
                            warn!(interface = %iface.facts.name, error = %e, "cannot send router advertisements");
                            iface.socket_error_logged = true;
                        }
                        self.stats.error(&iface.facts.name);
                        continue;
                    }
                }
            }
            let tags = Tags {
                s_vlan: due.attachment.s_vlan,
                c_vlan: due.attachment.c_vlan,
            };
            let advert = Advert {
                mac: iface.facts.mac,
                source,
                tags,
                hop_limit: settings.hop_limit,
                lifetime: settings.router_lifetime,
                mtu: attachment_mtu(iface.facts.mtu, tags),
            };
            self.bucket.take(now_ms);
            let socket = iface.socket.as_ref().expect("opened above");
            match socket.send(&advert.frame()) {
                Ok(()) => {
                    iface.socket_error_logged = false;
                    self.stats.sent(&iface.facts.name);
                }
                Err(e) => {
                    if !iface.socket_error_logged {
                        warn!(interface = %iface.facts.name, error = %e, "a router advertisement could not be sent; counted in collecte_edge_router_advert_errors_total");
                        iface.socket_error_logged = true;
                    }
                    self.stats.error(&iface.facts.name);
                }
            }
        }
    }

    fn note_lateness(&mut self, late_ms: u64) {
        let max = self.schedule.pacing().max_ms;
        if late_ms > max / 2 && !self.late_reported {
            warn!(
                late_s = late_ms / 1000,
                attachments = self.schedule.len(),
                max_rate = MAX_RATE,
                "router advertisements run late: more attachments than {MAX_RATE} advertisements a second serve at [edge] ra_interval; members still get one every {} s or so",
                self.schedule.len() as u64 / MAX_RATE,
            );
            self.late_reported = true;
        } else if late_ms < 1000 && self.late_reported {
            info!("router advertisements are on time again");
            self.late_reported = false;
        }
    }

    /// When there is something to do next, ms.
    pub fn next_wake_ms(&mut self, now_ms: u64) -> Option<u64> {
        let due = self.schedule.next_due_ms()?;
        Some(due.max(self.bucket.next_token_ms(now_ms)))
    }
}

fn log_pause(name: &str, why: &Paused) {
    match why {
        Paused::Down => {
            warn!(interface = %name, "no router advertisements on this access interface while it is down")
        }
        Paused::NoLinkLocal => warn!(
            interface = %name,
            "no router advertisements on this access interface: it has no IPv6 link-local address past duplicate address detection (is IPv6 enabled on it?)"
        ),
    }
}

/// Runs the advertisements until the task is aborted (the daemon's stop
/// sends no final advertisement: the datapath goes on forwarding).
pub async fn run(mut source: impl Source, stats: Arc<Stats>) {
    let start = tokio::time::Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let mut adverts = Adverts::new(stats, seed);
    let mut next_poll = 0;
    loop {
        let now = now_ms();
        if now >= next_poll {
            adverts.apply(source.poll(), now);
            next_poll = now + POLL_MS;
        }
        adverts.send_due(now);
        let wake = adverts
            .next_wake_ms(now)
            .map_or(next_poll, |w| w.min(next_poll))
            .max(now + 1);
        tokio::time::sleep_until(start + Duration::from_millis(wake)).await;
    }
}

/// The advertisements' counters, by access interface.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    /// Interface -> (sent, errors).
    counts: BTreeMap<String, (u64, u64)>,
    attachments: usize,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The access interfaces (each reported, at 0 until it sends) and the
    /// attachments advertised.
    fn set(&self, interfaces: &[String], attachments: usize) {
        let mut s = self.lock();
        for name in interfaces {
            s.counts.entry(name.clone()).or_default();
        }
        s.attachments = attachments;
    }

    fn sent(&self, interface: &str) {
        self.lock()
            .counts
            .entry(interface.to_string())
            .or_default()
            .0 += 1;
    }

    fn error(&self, interface: &str) {
        self.lock()
            .counts
            .entry(interface.to_string())
            .or_default()
            .1 += 1;
    }

    /// (sent, errors) on `interface`.
    pub fn counts(&self, interface: &str) -> (u64, u64) {
        self.lock()
            .counts
            .get(interface)
            .copied()
            .unwrap_or_default()
    }

    /// The Prometheus text of the counters (nothing before the task has
    /// read its source).
    pub fn render(&self) -> Vec<u8> {
        let s = self.lock();
        if s.counts.is_empty() {
            return Vec::new();
        }
        let per_iface = |pick: fn(&(u64, u64)) -> u64| {
            s.counts
                .iter()
                .map(|(name, c)| {
                    let mut m = Metric::default();
                    let mut l = LabelPair::default();
                    l.set_name("interface".into());
                    l.set_value(name.clone());
                    m.set_label(vec![l]);
                    let mut v = Counter::default();
                    v.set_value(pick(c) as f64);
                    m.set_counter(v);
                    m
                })
                .collect::<Vec<_>>()
        };
        let mut attachments = Metric::default();
        let mut g = Gauge::default();
        g.set_value(s.attachments as f64);
        attachments.set_gauge(g);
        let families = [
            family(
                "collecte_edge_router_adverts_total",
                "Unsolicited router advertisements sent, by access interface.",
                MetricType::COUNTER,
                per_iface(|c| c.0),
            ),
            family(
                "collecte_edge_router_advert_errors_total",
                "Router advertisements that could not be sent, by access interface.",
                MetricType::COUNTER,
                per_iface(|c| c.1),
            ),
            family(
                "collecte_edge_advertised_attachments",
                "Attachments where a member with an IPv6 prefix lives, which get router advertisements.",
                MetricType::GAUGE,
                vec![attachments],
            ),
        ];
        let mut out = Vec::new();
        // The encoder fails only on malformed families, which these are not.
        let _ = TextEncoder::new().encode(&families, &mut out);
        out
    }
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}
