//! A [`Stacks`] site with `collecte run` started on it, as the daemon tests
//! start it (`ip netns exec ROUTER collecte run --config F`), and its
//! members plugged in once the datapath is in place.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::{daemon::Daemon, topology::wait_for};

use super::{Options, Stacks, plan::*};

const SEC: Duration = Duration::from_secs(1);

impl Stacks {
    /// Builds the site, starts the daemon with [`Stacks::config`], waits
    /// until it serves metrics with every member, has XDP on `up0` and
    /// `acc0`, and the router's kernel has resolved the uplink's gateways;
    /// then plugs the members in ([`Stacks::plug`]).
    ///
    /// The daemon brings a resolved gateway to the datapath within a
    /// second: the first packets may still take the kernel's path. Tests
    /// warm up with a poll (e.g. [`super::tools::ping_until`]).
    pub fn start(tag: &str, opts: Options) -> (Stacks, Daemon) {
        let s = Stacks::new(tag, opts);
        let metrics = SocketAddr::new(IpAddr::from(Ipv4Addr::LOCALHOST), s.opts.metrics_port);
        let mut d = Daemon::start(&s.router, &s.config(), metrics);
        d.wait_ready(s.members.len() as u64, 30 * SEC);
        for dev in ["up0", ACCESS] {
            let out = s.router.ip(&["link", "show", "dev", dev]);
            assert!(
                out.contains("prog/xdp") || out.contains(" xdp"),
                "no XDP program on {dev} although collecte is ready:\n{out}{}",
                s.diagnose(Some(&d))
            );
        }
        for gw in [IpAddr::from(GW4), IpAddr::from(GW6)] {
            let resolved = wait_for(10 * SEC, || {
                let out = s
                    .router
                    .ip(&["neigh", "show", "to", &gw.to_string(), "dev", "up0"]);
                out.contains(GW_MAC).then_some(())
            });
            assert!(
                resolved.is_some(),
                "the router's kernel never resolved gateway {gw} (the daemon should make it){}",
                s.diagnose(Some(&d))
            );
        }
        s.plug();
        (s, d)
    }
}
