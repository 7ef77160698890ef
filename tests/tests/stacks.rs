//! `collecte run` between real IP stacks, tagged ones included
//! (`tests::stacks`: alice untagged, bob 802.1Q, carol QinQ, behind one
//! access link through a bridge), with what the router needs today: each
//! member's MAC in the configuration, and a static neighbour entry for the
//! gateway on the tagged members (the router answers no ARP/ND for tagged
//! attachments yet; see edge_stacks.rs for the tests without them).
//!
//! Tools: ip, ping, ethtool, iperf3, bridge (Debian packages iproute2,
//! iputils-ping, ethtool, iperf3). A missing tool fails the test.
use std::time::Duration;

use tests::{
    daemon::Daemon,
    stacks::{
        Options, Stacks, member_counters,
        plan::*,
        pmtu::assert_path_mtu_discovery,
        tools::{iperf3, ping, ping_until},
    },
};

const SEC: Duration = Duration::from_secs(1);

fn delta(a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    std::array::from_fn(|i| b[i] - a[i])
}

/// Each member reaches the internet host over both families, once the
/// daemon has brought the gateway to the datapath.
fn warm_up(s: &Stacks, d: &Daemon) {
    for m in &s.members {
        for target in [REMOTE4.to_string(), REMOTE6.to_string()] {
            let p = ping_until(&m.ns, &target, 15 * SEC);
            assert_eq!(
                p.received,
                1,
                "{} never reached {target}:\n{}{}",
                m.id(),
                p.ran,
                s.diagnose(Some(d))
            );
        }
    }
}

/// (1) alice, bob and carol ping the internet host and are pinged by it,
/// over IPv4 and IPv6, with full-size packets too: every packet crosses
/// the XDP fast path (exact member and datapath counters), none the
/// kernel's forwarding.
#[test]
fn members_ping_through_the_fast_path() {
    let (s, d) = Stacks::start("stkping", Options::today(9611));
    warm_up(&s, &d);
    let k0 = s.kernel_forwarded();
    let m0 = d.metrics();

    let mut expected = Vec::new();
    for m in &s.members {
        // ICMP echo with 56 data bytes: 84-byte IPv4, 104-byte IPv6
        // packets; then the largest the member's MTU allows, DF set.
        let mtu = m.mtu as u64;
        let mut bytes = 0;
        for (target, size, from_core) in [
            (REMOTE4.to_string(), 84, false),
            (REMOTE6.to_string(), 104, false),
            (REMOTE4.to_string(), mtu, false),
            (REMOTE6.to_string(), mtu, false),
            (m.spec.host4.to_string(), 84, true),
            (m.spec.host6.to_string(), 104, true),
            (m.spec.host4.to_string(), mtu, true),
            (m.spec.host6.to_string(), mtu, true),
        ] {
            let v6 = target.contains(':');
            let payload = (size - if v6 { 48 } else { 28 }).to_string();
            let ns = if from_core { &s.core } else { &m.ns };
            let p = ping(ns, &target, 10, &["-s", &payload, "-M", "do"]);
            assert_eq!(
                (p.sent, p.received),
                (10, 10),
                "{} <-> {target}, {size}-byte packets:\n{}{}",
                m.id(),
                p.ran,
                s.diagnose(Some(&d))
            );
            bytes += 10 * size;
        }
        // 80 requests and 80 replies each way.
        expected.push((m.id(), [80, bytes, 80, bytes, 0]));
    }

    let m1 = d.metrics();
    let k1 = s.kernel_forwarded();
    let diag = || s.diagnose(Some(&d));
    for (id, want) in &expected {
        assert_eq!(
            delta(member_counters(&m0, id), member_counters(&m1, id)),
            *want,
            "{id}'s counters after its pings (rx pkts, rx bytes, tx pkts, tx bytes, spoofed){}",
            diag()
        );
    }
    let n = 80 * s.members.len() as u64;
    let up =
        m1.datapath(ACCESS, "forward", "upstream") - m0.datapath(ACCESS, "forward", "upstream");
    let down =
        m1.datapath("up0", "forward", "downstream") - m0.datapath("up0", "forward", "downstream");
    assert_eq!(
        (up, down),
        (n, n),
        "datapath upstream/downstream forwards{}",
        diag()
    );
    assert_eq!(
        (k1.0 - k0.0, k1.1 - k0.1),
        (0, 0),
        "the router's kernel forwarded (IPv4, IPv6) packets the fast path should have carried{}",
        diag()
    );
    for m in &s.members {
        let c = m.tc.counts();
        assert!(
            c.accepted >= 80 && c.push_failed == 0 && c.pop_failed == 0,
            "{}'s tc programs: {c:?}",
            m.id()
        );
        if m.tagged() {
            assert!(c.pushed >= 80, "{}'s tc programs: {c:?}", m.id());
        }
    }
}

/// (2) TCP both ways, both families, for the tagged members: iperf3
/// between each and the internet host, carried by XDP.
#[test]
fn tagged_members_iperf3_both_ways() {
    let (s, d) = Stacks::start("stkperf", Options::today(9612));
    warm_up(&s, &d);
    let k0 = s.kernel_forwarded();
    let m0 = d.metrics();
    let mut report = Vec::new();
    let mut port = 5201;
    for id in ["bob", "carol"] {
        let m = s.member(id);
        for server in [REMOTE4.into(), std::net::IpAddr::from(REMOTE6)] {
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
                    "iperf3 {id} -> {server} (reverse {reverse}) moved only {} bytes:\n{}",
                    r.bytes,
                    r.ran
                );
                report.push(format!(
                    "{id} {} {server}: {:.2} Gbit/s",
                    if reverse { "<-" } else { "->" },
                    r.bits_per_second / 1e9
                ));
            }
        }
    }
    let m1 = d.metrics();
    let k1 = s.kernel_forwarded();
    let mut carried = 0;
    for id in ["bob", "carol"] {
        let [rx, rx_bytes, tx, tx_bytes, spoofed] =
            delta(member_counters(&m0, id), member_counters(&m1, id));
        assert!(
            rx_bytes > 2_000_000 && tx_bytes > 2_000_000 && spoofed == 0,
            "{id}'s counters did not carry its iperf3 runs: {:?}{}",
            [rx, rx_bytes, tx, tx_bytes, spoofed],
            s.diagnose(Some(&d))
        );
        carried += rx + tx;
    }
    let kernel = (k1.0 - k0.0) + (k1.1 - k0.1);
    eprintln!(
        "tagged_members_iperf3_both_ways: {}; XDP carried {carried} packets of bob and carol, the kernel forwarded {kernel}",
        report.join(", ")
    );
    assert!(
        kernel * 100 < carried,
        "the kernel forwarded {kernel} packets of {carried} (more than 1%){}",
        s.diagnose(Some(&d))
    );
}

/// (3) Path-MTU discovery towards carol (line MTU 1496, the core's 1500),
/// with today's site (MACs configured, static neighbours): the fast path
/// answers a packet too big for her line itself (fragmentation needed /
/// packet too big, from up0's address) — no route with `mtu 1496` in the
/// router's kernel is needed. (edge_stacks.rs does it with a stock site.)
#[test]
fn carol_path_mtu_discovery() {
    let (s, d) = Stacks::start("stkpmtu", Options::today(9613));
    let m0 = d.metrics();
    for v6 in [false, true] {
        assert_path_mtu_discovery(&s, &d, "carol", v6, 1496);
    }
    let m1 = d.metrics();
    let answered =
        |reason| m1.datapath("up0", "reply", reason) - m0.datapath("up0", "reply", reason);
    assert!(
        answered("frag-needed") >= 1 && answered("packet-too-big") >= 1,
        "the datapath answered {} fragmentation needed and {} packet too big",
        answered("frag-needed"),
        answered("packet-too-big")
    );
}
