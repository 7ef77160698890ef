//! Issue 13, unsolicited router advertisements: `collecte run` sends them
//! on every attachment where a member with an IPv6 prefix lives, from the
//! access interface's link-local address, with the attachment's tags and
//! MTU, paced (RFC 4861 6.2.4); follows members as they come and go;
//! pauses on an interface without a link-local address; sends nothing
//! final on a plain stop, and a final one (router lifetime 0) on each
//! attachment at `collecte stop --detach`.
//!
//! The site is [`Topology`]'s: alice untagged on acc0 (her m0 is the
//! capture point), bob (802.1Q 101) and carol (QinQ 10/102) on acc1, whose
//! wire is the trunk's t0 (captured with a raw port that puts the outer
//! tag back). Frames are read back with etherparse, not collecte's codec.
//! The last test has real IP stacks as members (`tests::stacks`), whose
//! kernels take their IPv6 default route from the advertisements.
use std::{
    collections::BTreeMap,
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use tests::{
    adverts::{SeenAdvert, parse_advert},
    daemon::Daemon,
    frames::{ETH_P_8021AD, ETH_P_8021Q, mac},
    stacks::{
        Gateway6, Options, Stacks, plan::ACCESS, ra::default_route_from_ra, tools::ping_until,
    },
    tagged::RawPort,
    topology::{MemberSpec, Settings, Topology, alice, bob, carol, dave, plan::*, wait_for},
};

const SEC: Duration = Duration::from_secs(1);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// acc1's link-local address: EUI-64 of its MAC (02:00:00:00:00:21).
const ACC1_LL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x21);

/// The site's configuration, with RAs every 4 s at most (3 s at least).
fn config(t: &Topology, port: u16, members: &[MemberSpec]) -> String {
    let settings = Settings {
        metrics_port: port,
        gateway_mac: Some(GW_MAC),
        ..Settings::default()
    };
    t.config(&settings, members)
        + "[edge]\nra_interval = 4\nrouter_lifetime = 600\nra_hop_limit = 64\n"
}

fn start(t: &Topology, port: u16, members: &[MemberSpec]) -> Daemon {
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut d = Daemon::start(&t.router, &config(t, port, members), metrics);
    d.wait_ready(members.len() as u64, 30 * SEC);
    d
}

/// Every unsolicited router advertisement (to all nodes) seen on `port`
/// within `window`, with its arrival time. The answers to a member's
/// Router Solicitations, unicast to it, are the fast path's (a Linux host
/// keeps soliciting when it does not take RAs), not the daemon's.
fn adverts(port: &RawPort, window: Duration) -> Vec<(Instant, SeenAdvert)> {
    let end = Instant::now() + window;
    let mut out = Vec::new();
    while let Some(f) = port.recv(end.saturating_duration_since(Instant::now())) {
        if let Some(a) = parse_advert(&f).filter(|a| a.ip_dst == ALL_NODES) {
            out.push((Instant::now(), a));
        }
        if Instant::now() >= end {
            break;
        }
    }
    out
}

/// By tags.
fn by_tags(seen: &[(Instant, SeenAdvert)]) -> BTreeMap<(u16, u16), Vec<(Instant, SeenAdvert)>> {
    let mut m: BTreeMap<(u16, u16), Vec<(Instant, SeenAdvert)>> = BTreeMap::new();
    for (t, a) in seen {
        m.entry(a.tags).or_default().push((*t, a.clone()));
    }
    m
}

fn assert_advert(a: &SeenAdvert, iface_mac: &str, source: Ipv6Addr, mtu: u32, lifetime: u16) {
    let m = mac(iface_mac);
    assert_eq!(a.eth_dst, [0x33, 0x33, 0, 0, 0, 1], "{a:?}");
    assert_eq!(a.eth_src, m, "{a:?}");
    assert_eq!(a.ip_src, source, "{a:?}");
    assert_eq!(a.ip_dst, ALL_NODES, "{a:?}");
    assert_eq!(a.ip_hop_limit, 255, "{a:?}");
    assert_eq!(a.cur_hop_limit, 64, "{a:?}");
    assert_eq!(a.flags, 0, "M = O = 0: {a:?}");
    assert_eq!(a.lifetime, lifetime, "{a:?}");
    assert_eq!((a.reachable, a.retrans), (0, 0), "{a:?}");
    let types: Vec<u8> = a.options.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        types,
        [1, 5],
        "source link-layer address then MTU, no prefix: {a:?}"
    );
    assert_eq!(a.source_ll(), Some(m), "{a:?}");
    assert_eq!(a.mtu(), Some(mtu), "{a:?}");
    assert!(a.checksum_ok, "bad ICMPv6 checksum: {a:?}");
}

#[test]
fn every_ipv6_attachment_gets_paced_adverts_with_its_tags_and_mtu() {
    let t = Topology::new("ra");
    // Capture from before the start: the initial advertisements count.
    let m0 = RawPort::open(t.alice.name(), "m0");
    let t0 = RawPort::open(t.trunk.name(), "t0");
    // dave has an IPv6 prefix too; a v4-only member gets none.
    let mut v4_only = dave();
    v4_only.prefixes = vec!["198.51.100.48/30"];
    let d = start(&t, 9640, &[alice(), bob(), carol(), v4_only]);
    let started = Instant::now();

    // 12 s: the initial ones (3, at least 3 s apart), then every 3-4 s.
    let (on_m0, on_t0) = std::thread::scope(|s| {
        let a = s.spawn(|| adverts(&m0, 12 * SEC));
        let b = s.spawn(|| adverts(&t0, 12 * SEC));
        (a.join().unwrap(), b.join().unwrap())
    });
    let trunk = by_tags(&on_t0);
    assert_eq!(
        trunk.keys().copied().collect::<Vec<_>>(),
        [(0, 101), (10, 102)],
        "advertisements on the trunk: bob's and carol's attachments only (not dave's, IPv4 only)"
    );
    let alice_seen = by_tags(&on_m0);
    assert_eq!(alice_seen.keys().copied().collect::<Vec<_>>(), [(0, 0)]);
    for (tags, seen, iface_mac, source) in [
        ((0, 0), &alice_seen[&(0, 0)], ACC0_MAC, ACC_LL6),
        ((0, 101), &trunk[&(0, 101)], ACC1_MAC, ACC1_LL6),
        ((10, 102), &trunk[&(10, 102)], ACC1_MAC, ACC1_LL6),
    ] {
        let mtu = if tags.0 != 0 { 1496 } else { 1500 };
        for (_, a) in seen {
            assert_advert(a, iface_mac, source, mtu, 600);
        }
        let tpids: Vec<u16> = match tags {
            (0, 0) => vec![],
            (0, _) => vec![ETH_P_8021Q],
            _ => vec![ETH_P_8021AD, ETH_P_8021Q],
        };
        assert_eq!(seen[0].1.tpids, tpids, "{tags:?}");
        // The first within a second or two of the start; then at least
        // 3 s apart (MIN_DELAY_BETWEEN_RAS), at most 4 s (ra_interval)
        // plus scheduling slack.
        let first = seen[0].0.duration_since(started);
        assert!(
            first < Duration::from_millis(2500),
            "{tags:?}: first after {first:?}"
        );
        for w in seen.windows(2) {
            let gap = w[1].0.duration_since(w[0].0);
            assert!(
                gap >= Duration::from_millis(2900) && gap <= Duration::from_millis(5200),
                "{tags:?}: {gap:?} between two advertisements"
            );
        }
        assert!(
            (3..=5).contains(&seen.len()),
            "{tags:?}: {} in 12 s",
            seen.len()
        );
    }
    let m = d.metrics();
    let sent = |i: &str| m.value("collecte_edge_router_adverts_total", &[("interface", i)]);
    assert!(
        sent("acc0").unwrap_or(0.0) >= alice_seen[&(0, 0)].len() as f64,
        "{}",
        m.text
    );
    assert!(
        sent("acc1").unwrap_or(0.0) >= (trunk[&(0, 101)].len() + trunk[&(10, 102)].len()) as f64,
        "{}",
        m.text
    );
    assert_eq!(
        m.value("collecte_edge_advertised_attachments", &[]),
        Some(3.0)
    );
    assert_eq!(
        m.value(
            "collecte_edge_router_advert_errors_total",
            &[("interface", "acc1")]
        ),
        Some(0.0)
    );
    tests::daemon::promtool(&m.text);
}

#[test]
fn adverts_follow_members_as_they_come_and_go() {
    let t = Topology::new("ramove");
    let t0 = RawPort::open(t.trunk.name(), "t0");
    let d = start(&t, 9641, &[alice(), bob(), carol()]);
    let seen = |tags: (u16, u16), within: Duration| {
        t0.recv_matching(within, |f| parse_advert(f).is_some_and(|a| a.tags == tags))
            .is_some()
    };
    assert!(
        seen((0, 101), 5 * SEC),
        "no advertisement for bob:\n{}",
        d.log()
    );
    // bob goes, dave comes (a reload): dave's attachment gets its first
    // within a second or two; bob's none from the reload on.
    d.reload(&config(&t, 9641, &[alice(), carol(), dave()]));
    let reloaded = wait_for(10 * SEC, || {
        d.log().contains("configuration reloaded").then_some(())
    });
    assert!(reloaded.is_some(), "{}", d.log());
    let reload_seen = Instant::now();
    // dave's first comes from the same reading of the router that drops
    // bob's attachment: from then on, nothing for bob.
    let dave_first = t0.recv_matching(5 * SEC, |f| {
        parse_advert(f).is_some_and(|a| a.tags == (0, 103))
    });
    assert!(
        dave_first.is_some(),
        "no advertisement for dave:\n{}",
        d.log()
    );
    let dave_after = reload_seen.elapsed();
    assert!(
        dave_after < Duration::from_millis(2500),
        "dave's first after {dave_after:?}"
    );
    let window = adverts(&t0, 9 * SEC);
    let tags = by_tags(&window);
    assert!(
        tags.contains_key(&(0, 103)),
        "dave's go on: {:?}",
        tags.keys()
    );
    assert!(
        tags.contains_key(&(10, 102)),
        "carol's go on: {:?}",
        tags.keys()
    );
    assert!(
        !tags.contains_key(&(0, 101)),
        "bob is gone, yet: {:?}",
        tags[&(0, 101)]
    );
}

#[test]
fn no_link_local_no_adverts_until_there_is_one() {
    let t = Topology::new("rall");
    // acc1 without any link-local address.
    t.router.ip(&["link", "set", "acc1", "addrgenmode", "none"]);
    t.router.ip(&["link", "set", "acc1", "down"]);
    t.router.ip(&["link", "set", "acc1", "up"]);
    assert!(
        !t.router
            .ip(&["-6", "addr", "show", "dev", "acc1"])
            .contains("fe80")
    );
    let t0 = RawPort::open(t.trunk.name(), "t0");
    let d = start(&t, 9642, &[alice(), bob()]);
    let any = |within| {
        t0.recv_matching(within, |f| parse_advert(f).is_some())
            .map(|f| parse_advert(&f).unwrap())
    };
    assert_eq!(
        any(4 * SEC),
        None,
        "an advertisement without a link-local source"
    );
    let said = |d: &Daemon, what: &str| {
        d.log()
            .lines()
            .filter(|l| l.contains(what) && l.contains("interface=acc1"))
            .count()
    };
    // Said once the pause has lasted (a link-local address is tentative for
    // a moment after an interface comes up).
    let logged = wait_for(10 * SEC, || {
        (said(&d, "no IPv6 link-local address") > 0).then_some(())
    });
    assert!(logged.is_some(), "{}", d.log());
    assert_eq!(said(&d, "no IPv6 link-local address"), 1, "{}", d.log());
    // alice's line is not held up by it.
    let m = d.metrics();
    assert!(
        m.value(
            "collecte_edge_router_adverts_total",
            &[("interface", "acc0")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        m.value(
            "collecte_edge_router_adverts_total",
            &[("interface", "acc1")]
        ),
        Some(0.0)
    );
    // A link-local address: advertisements start, as on a new line.
    t.router
        .ip(&["addr", "add", "fe80::21/64", "dev", "acc1", "nodad"]);
    let a = any(5 * SEC).unwrap_or_else(|| panic!("none after the address came:\n{}", d.log()));
    assert_advert(&a, ACC1_MAC, "fe80::21".parse().unwrap(), 1500, 600);
    assert_eq!(said(&d, "resume"), 1, "{}", d.log());
    assert_eq!(
        said(&d, "no IPv6 link-local address"),
        1,
        "logged once: {}",
        d.log()
    );
}

#[test]
fn a_stop_sends_no_final_advert_and_a_detach_sends_one_per_attachment() {
    let t = Topology::new("rafin");
    let m0 = RawPort::open(t.alice.name(), "m0");
    let t0 = RawPort::open(t.trunk.name(), "t0");
    let mut d = start(&t, 9643, &[alice(), bob(), carol()]);
    assert!(
        t0.recv_matching(5 * SEC, |f| parse_advert(f).is_some())
            .is_some(),
        "{}",
        d.log()
    );
    d.stop(libc::SIGTERM, 10 * SEC);
    m0.drain();
    t0.drain();
    // After a stop: nothing at all, final or not (the datapath forwards).
    let after_stop = adverts(&t0, 5 * SEC);
    assert!(after_stop.is_empty(), "{after_stop:?}");
    let out = d.stop_detach();
    let finals_t0 = adverts(&t0, SEC);
    let finals_m0 = adverts(&m0, SEC);
    let tags = by_tags(&finals_t0);
    assert_eq!(
        tags.keys().copied().collect::<Vec<_>>(),
        [(0, 101), (10, 102)],
        "{out}"
    );
    for (k, seen) in &tags {
        assert_eq!(seen.len(), 1, "{k:?}: {seen:?}");
        let mtu = if k.0 != 0 { 1496 } else { 1500 };
        assert_advert(&seen[0].1, ACC1_MAC, ACC1_LL6, mtu, 0);
    }
    assert_eq!(finals_m0.len(), 1, "{finals_m0:?}");
    assert_advert(&finals_m0[0].1, ACC0_MAC, ACC_LL6, 1500, 0);
    assert!(
        out.contains("sent 1 final router advertisement(s) (router lifetime 0) on acc0")
            && out.contains("sent 2 final router advertisement(s) (router lifetime 0) on acc1"),
        "{out}"
    );
}

/// Real IP stacks as members (`tests::stacks`: alice untagged, bob 802.1Q,
/// carol QinQ, behind one access link through a bridge, the tags pushed
/// and popped by tc programs), with `accept_ra=2` and no static IPv6
/// default route: each member's kernel takes its default route from the
/// daemon's unsolicited advertisements, via the router's link-local
/// address, with the configured router lifetime, and reaches the
/// internet host over it. (Today's crutches stay: MACs in the
/// configuration, static gateway neighbours on the tagged members.)
#[test]
fn members_kernels_take_their_default_route_from_the_adverts() {
    let opts = Options {
        gateway6: Gateway6::FromRa,
        ra_interval: Some(4),
        ..Options::today(9644)
    };
    let (s, d) = Stacks::start("rastk", opts);
    for m in &s.members {
        let mut shown = String::new();
        let route = wait_for(15 * SEC, || {
            let (route, out) = default_route_from_ra(&m.ns, &[ACC_LL6]);
            shown = out;
            route
        });
        let route = route.unwrap_or_else(|| {
            panic!(
                "{}: no IPv6 default route from a router advertisement via {ACC_LL6} in 15 s; \
                 `ip -6 route show default`:\n{shown}{}",
                m.id(),
                s.diagnose(Some(&d))
            )
        });
        // `expires 1799sec`: the default router_lifetime, 1800 s.
        let expires: Option<u32> = route
            .split_whitespace()
            .skip_while(|w| *w != "expires")
            .nth(1)
            .and_then(|w| w.trim_end_matches("sec").parse().ok());
        assert!(
            expires.is_some_and(|e| (1780..=1800).contains(&e)),
            "{}: the route's lifetime is not the router's (1800 s): {route}",
            m.id()
        );
        let p = ping_until(&m.ns, &REMOTE6.to_string(), 10 * SEC);
        assert_eq!(
            p.received,
            1,
            "{}: no answer from the internet host over the route from the advertisement:\n{}{}",
            m.id(),
            p.ran,
            s.diagnose(Some(&d))
        );
    }
    // The route may come from the fast path's answer to the member's
    // solicitation, before the daemon's first unsolicited advertisement:
    // the daemon's three initial ones follow within RFC 4861's 16 s.
    let mut last = String::new();
    let sent = wait_for(30 * SEC, || {
        let m = d.metrics();
        let sent = m
            .value(
                "collecte_edge_router_adverts_total",
                &[("interface", ACCESS)],
            )
            .unwrap_or(0.0);
        last = m.text;
        (sent >= 3.0).then_some(sent)
    });
    assert!(
        sent.is_some(),
        "fewer than 3 advertisements counted on {ACCESS} in 30 s:\n{last}"
    );
}
