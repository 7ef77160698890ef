//! What the router does on members' lines besides forwarding, from the
//! daemon's side (issue 13's control plane; the fast path's answers to
//! ARP, NDP and echo, and its ICMP errors, are the XDP program's):
//!
//! - **unsolicited router advertisements** on every attachment where a
//!   member with an IPv6 prefix lives: the frame ([`ra`], a pure codec),
//!   the pacing ([`schedule`], pure), the packet socket
//!   ([`crate::packet_socket`]), the
//!   task that runs them ([`adverts`]) over the router's tables
//!   ([`feed`]), and the final ones of `collecte stop --detach`
//!   ([`detach`]);
//! - **tags that the NIC takes away**: which offloads hide VLAN tags from
//!   XDP ([`offload`], pure), their ioctls ([`ethtool`]), the record of
//!   what was changed ([`record`]), and turning them off at attach and
//!   back on at `stop --detach` ([`tags`]).
//!
//! [`Edge`] is what the daemon holds.
use std::sync::Arc;

use router_core::config::Config;
use tokio::{sync::watch, task::JoinHandle};

use crate::{netlink::Snapshot, router::Shared};

pub mod adverts;
pub mod detach;
pub mod ethtool;
pub mod feed;
pub mod offload;
pub mod ra;
pub mod record;
pub mod schedule;
pub mod tags;

pub use adverts::Stats;
pub use tags::{TagOffloads, TagsError, Target};

/// The edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(transparent)]
    Tags(#[from] TagsError),
}

/// The edge of a running daemon: the offloads it keeps off, and the
/// router advertisements' task.
pub struct Edge {
    offloads: TagOffloads,
    system: watch::Sender<Arc<Snapshot>>,
    stats: Arc<Stats>,
    adverts: Option<JoinHandle<()>>,
}

impl Edge {
    /// Before the program is attached: turns off the offloads that would
    /// hide tags on `config`'s access interfaces and tagged uplinks. Fails
    /// when a change cannot be recorded.
    pub fn prepare(config: &Config, system: &Snapshot) -> Result<Edge, EdgeError> {
        let mut offloads = TagOffloads::new(&config.datapath.state)?;
        offloads.ensure(&tags::targets(config), system)?;
        let (tx, _) = watch::channel(Arc::new(system.clone()));
        Ok(Edge {
            offloads,
            system: tx,
            stats: Arc::new(Stats::default()),
            adverts: None,
        })
    }

    /// Starts the router advertisements over `router`'s tables.
    pub fn spawn(&mut self, router: Shared) {
        let feed = feed::RouterFeed::new(router, self.system.subscribe());
        self.adverts = Some(tokio::spawn(adverts::run(feed, self.stats.clone())));
    }

    /// After a resync or a reload with `system`: the offloads of `targets`
    /// (new interfaces, offloads turned back on), and the interfaces the
    /// advertisements see.
    pub fn observe(&mut self, targets: &[Target], system: &Snapshot) {
        if let Err(e) = self.offloads.ensure(targets, system) {
            tracing::error!(error = %e, "VLAN offloads left as they are");
        }
        self.system.send_replace(Arc::new(system.clone()));
    }

    /// The advertisements' counters, for the metrics.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops the advertisements, sending no final one: the datapath goes
    /// on forwarding.
    pub fn stop(self) {
        if let Some(t) = self.adverts {
            t.abort();
        }
    }
}
