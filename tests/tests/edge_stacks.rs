//! Issue 13, "Tagged lines work with a stock CPE", end to end: the members
//! of `tests::stacks` (alice untagged, bob 802.1Q, carol QinQ, each a real
//! IP stack behind one access link) with NO static neighbour entry on
//! either side and NO `mac` in the configuration, so that the router must
//!
//! - answer ARP, Neighbour Solicitations, Router Solicitations and echo
//!   requests for its gateway addresses on every attachment (tagged ones
//!   included: its kernel cannot terminate tags);
//! - send ICMP errors itself: time exceeded (traceroute), fragmentation
//!   needed / packet too big (path-MTU discovery towards carol, whose line
//!   carries 4 bytes less than the core's);
//! - learn each member's CPE MAC, so that their traffic stays on the XDP
//!   fast path (the kernel forwards none of it).
//!
//! The configuration is today's without `mac`; the router's gateway
//! addresses are its addresses on `acc0` (198.51.100.1, fe80::1 and
//! 2001:db8:1000::1). If the router side needs settings of its own (e.g.
//! Router Advertisements per access interface), add them in
//! `Stacks::config`.
//!
//! The members' Router Solicitations (sent when they are plugged in) are
//! answered by the fast path, which is what gives them their IPv6 default
//! route here; the paced unsolicited advertisements are the daemon's. The
//! router's peers carry a pass-everything XDP program (see
//! `tests::stacks`): on veth, what XDP transmits is only delivered promptly
//! to a peer that has one.
use std::{net::IpAddr, time::Duration};

use tests::{
    daemon::Daemon,
    stacks::{
        Gateway6, Member, Options, Stacks, member_counters,
        plan::*,
        pmtu::assert_path_mtu_discovery,
        ra::default_route_from_ra,
        tools::{iperf3, ping, ping_until, traceroute},
    },
    topology::wait_for,
};

const SEC: Duration = Duration::from_secs(1);
/// The daemon's metrics port (each site has a namespace of its own).
const METRICS: u16 = 9620;

/// One test per member for each check.
macro_rules! per_member {
    ($check:ident: $($name:ident => $id:literal),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check($id)
            }
        )+
    };
}

per_member!(pings:
    alice_pings_gateway_and_internet => "alice",
    bob_pings_gateway_and_internet => "bob",
    carol_pings_gateway_and_internet => "carol",
);
per_member!(iperf3_both_ways:
    alice_iperf3_both_ways => "alice",
    bob_iperf3_both_ways => "bob",
    carol_iperf3_both_ways => "carol",
);
per_member!(traceroutes:
    alice_traceroute_shows_the_router => "alice",
    bob_traceroute_shows_the_router => "bob",
    carol_traceroute_shows_the_router => "carol",
);
per_member!(takes_default_route_from_ra:
    alice_takes_ipv6_default_route_from_ra => "alice",
    bob_takes_ipv6_default_route_from_ra => "bob",
    carol_takes_ipv6_default_route_from_ra => "carol",
);

/// A stock site: no MAC in the configuration, no static neighbour.
fn stock(tag: &str) -> (Stacks, Daemon) {
    Stacks::start(tag, Options::stock(METRICS))
}

/// `m` gets an answer from `target` within 10 s (neighbour resolution
/// included).
fn reach(s: &Stacks, d: &Daemon, m: &Member, target: &str, what: &str) {
    let first = ping_until(&m.ns, target, 10 * SEC);
    assert_eq!(
        first.received,
        1,
        "{}: no answer from {what} ({target}) in 10 s; its neighbours: {}\n{}{}",
        m.id(),
        m.neighbours(),
        first.ran,
        s.diagnose(Some(d))
    );
}

/// `target` answers `m`'s pings: the first within 10 s, then 10 of 10.
fn assert_pings(s: &Stacks, d: &Daemon, m: &Member, target: &str, what: &str) {
    reach(s, d, m, target, what);
    let p = ping(&m.ns, target, 10, &[]);
    assert_eq!(
        (p.sent, p.received),
        (10, 10),
        "{}: pings of {what} ({target}) lost:\n{}{}",
        m.id(),
        p.ran,
        s.diagnose(Some(d))
    );
}

/// ping and ping6 to the gateway (IPv4, IPv6 link-local and global) and
/// to the internet host; the internet pings on the fast path.
fn pings(id: &str) {
    let (s, d) = stock(&format!("e-ping-{id}"));
    let m = s.member(id);
    let ll = format!("{ACC_LL6}%{MEMBER_DEV}");
    for (target, what) in [
        (ACC_GW4.to_string(), "the IPv4 gateway"),
        (ll, "the IPv6 link-local gateway"),
        (ACC_GW6.to_string(), "the IPv6 global gateway address"),
        (REMOTE4.to_string(), "the internet host over IPv4"),
        (REMOTE6.to_string(), "the internet host over IPv6"),
    ] {
        assert_pings(&s, &d, m, &target, what);
    }

    // Warmed up: now the fast path carries all of it.
    let (k0, m0) = (s.kernel_forwarded(), d.metrics());
    for target in [REMOTE4.to_string(), REMOTE6.to_string()] {
        let p = ping(&m.ns, &target, 20, &[]);
        assert_eq!((p.sent, p.received), (20, 20), "{}", p.ran);
    }
    let (k1, m1) = (s.kernel_forwarded(), d.metrics());
    let c0 = member_counters(&m0, id);
    let c1 = member_counters(&m1, id);
    let (up, down) = (c1[0] - c0[0], c1[2] - c0[2]);
    assert!(
        up >= 40 && down >= 40,
        "{id}'s member counters: {up} of its 40 echo packets counted from it, {down} of 40 \
         forwarded to it (the router forwards to a member whose MAC it learnt; `no-neighbor` \
         among the reasons below means it did not){}",
        s.diagnose(Some(&d))
    );
    assert_eq!(
        (k1.0 - k0.0, k1.1 - k0.1),
        (0, 0),
        "the router's kernel forwarded (IPv4, IPv6) packets of {id}'s pings: the fast path \
         should carry them (the router must know {id}'s MAC without configuration){}",
        s.diagnose(Some(&d))
    );
}

/// iperf3 (TCP, 2 s) to and from the internet host, both families, on the
/// fast path.
fn iperf3_both_ways(id: &str) {
    let (s, d) = stock(&format!("e-perf-{id}"));
    let m = s.member(id);
    for target in [REMOTE4.to_string(), REMOTE6.to_string()] {
        reach(&s, &d, m, &target, "the internet host");
    }
    let (k0, m0) = (s.kernel_forwarded(), d.metrics());
    let mut port = 5201;
    for server in [IpAddr::from(REMOTE4), IpAddr::from(REMOTE6)] {
        for reverse in [false, true] {
            let mut args = vec!["-t", "2"];
            if reverse {
                args.push("-R");
            }
            let r = iperf3(&m.ns, &s.core, server, port, &args).unwrap_or_else(|ran| {
                panic!(
                    "iperf3 {id} -> {server} (reverse {reverse}):\n{ran}{}",
                    s.diagnose(Some(&d))
                )
            });
            port += 1;
            assert!(
                r.bytes > 1_000_000,
                "iperf3 {id} -> {server} (reverse {reverse}) moved only {} bytes:\n{}{}",
                r.bytes,
                r.ran,
                s.diagnose(Some(&d))
            );
        }
    }
    let (k1, m1) = (s.kernel_forwarded(), d.metrics());
    let (c0, c1) = (member_counters(&m0, id), member_counters(&m1, id));
    let carried = (c1[0] - c0[0]) + (c1[2] - c0[2]);
    let kernel = (k1.0 - k0.0) + (k1.1 - k0.1);
    assert!(
        carried > 10_000 && kernel * 100 < carried,
        "{id}'s iperf3 runs: XDP carried {carried} packets, the kernel forwarded {kernel}{}",
        s.diagnose(Some(&d))
    );
}

/// traceroute and traceroute -6 to the internet host: hop 1 is the router,
/// answering with one of its access addresses; hop 2 the host.
fn traceroutes(id: &str) {
    let (s, d) = stock(&format!("e-trace-{id}"));
    let m = s.member(id);
    let router = s.router_access_addresses();
    for target in [IpAddr::from(REMOTE4), IpAddr::from(REMOTE6)] {
        reach(&s, &d, m, &target.to_string(), "the internet host");
        let t = traceroute(&m.ns, target, 4);
        let hop1 = t.hops.first().copied().flatten();
        assert!(
            hop1.is_some_and(|h| router.contains(&h.to_string())),
            "{id}: traceroute to {target} does not show the router ({router:?}) at hop 1 \
             (the router must answer TTL expiry itself):\n{}{}",
            t.ran,
            s.diagnose(Some(&d))
        );
        assert_eq!(
            t.hops.get(1).copied().flatten(),
            Some(target),
            "{id}: traceroute to {target} does not reach it at hop 2:\n{}",
            t.ran
        );
    }
}

/// The member's kernel takes its IPv6 default route from the router's
/// Router Advertisement (accept_ra=2, forwarding=0, no static route), via
/// one of the router's link-local addresses, and reaches the internet
/// host with it.
fn takes_default_route_from_ra(id: &str) {
    let opts = Options {
        gateway6: Gateway6::FromRa,
        ..Options::stock(METRICS)
    };
    let (s, d) = Stacks::start(&format!("e-ra-{id}"), opts);
    let m = s.member(id);
    let lls = s.router_link_locals();
    let mut last = String::new();
    let route = wait_for(15 * SEC, || {
        let (route, shown) = default_route_from_ra(&m.ns, &lls);
        last = shown;
        route
    });
    assert!(
        route.is_some(),
        "{id} has no IPv6 default route from a Router Advertisement via the router's \
         link-local address ({lls:?}) after 15 s; `ip -6 route show default`:\n{last}{}",
        s.diagnose(Some(&d))
    );
    assert_pings(
        &s,
        &d,
        m,
        &REMOTE6.to_string(),
        "the internet host over IPv6 (RA route)",
    );
}

/// A core host whose MTU is 1500 sends 1 MiB over TCP to carol, whose line
/// carries 1496-byte packets: the transfer completes through path-MTU
/// discovery, the router telling the sender (fragmentation needed / packet
/// too big) and the sender learning 1496 (see `tests::stacks::pmtu`).
fn path_mtu_towards_carol(v6: bool) {
    let (s, d) = stock(if v6 { "e-pmtu6" } else { "e-pmtu4" });
    assert_eq!(s.member("carol").mtu, 1496);
    assert_path_mtu_discovery(&s, &d, "carol", v6, 1496);
}

#[test]
fn carol_path_mtu_discovery_ipv4() {
    path_mtu_towards_carol(false)
}

#[test]
fn carol_path_mtu_discovery_ipv6() {
    path_mtu_towards_carol(true)
}
