//! End-to-end tests of the `collecte run` daemon: real IP stacks in network
//! namespaces on both sides of the router (see `tests::topology`), tagged
//! members emulated with raw sockets (`tests::tagged`), and the daemon run
//! as an operator runs it (`ip netns exec ROUTER collecte run --config F`).
//!
//! Every test builds its own namespaces and daemon, so they run in parallel.
//! Tools they drive: ip, ping, ethtool, iperf3, promtool (Debian packages
//! iproute2, iputils-ping, ethtool, iperf3, prometheus). A missing tool
//! fails the test; nothing is skipped.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use router_common::reason;
use tests::{
    daemon::{Daemon, Metrics, promtool},
    frames::{
        ETH_P_IP, ETH_P_IPV6, assert_ipv4_checksum, ether, ipv4_header, ipv4_packet, ipv4_udp,
        ipv6_udp, mac, next_hop,
    },
    tagged::{RawPort, TaggedMember, carries, l3},
    topology::{
        MemberSpec, SeqSink, Settings, Topology, alice, bob, carol, dave, ping, plan::*,
        seq_report, spawn_flow, udp_errors, udp_socket, wait_for,
    },
};

const SEC: Duration = Duration::from_secs(1);
const LOCALHOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// IPv4 + UDP header bytes.
const V4: u64 = 28;
/// IPv6 + UDP header bytes.
const V6: u64 = 48;

/// A site with a daemon running `members`, ready to forward: metrics up,
/// XDP on every interface, the gateway resolved (unless static) and given
/// the one second the daemon has to bring it to the datapath.
fn site(tag: &str, settings: Settings, members: &[MemberSpec]) -> (Topology, Daemon) {
    let t = Topology::new(tag);
    let config = t.config(&settings, members);
    let mut d = Daemon::start(&t.router, &config, sa(LOCALHOST, settings.metrics_port));
    d.wait_ready(members.len() as u64, 30 * SEC);
    for dev in ["up0", "acc0", "acc1"] {
        assert!(
            t.xdp_on(dev).is_some(),
            "no XDP program on {dev} although collecte is ready; log:\n{}",
            d.log()
        );
    }
    if settings.gateway_mac.is_none() {
        for gw in [IpAddr::from(GW4), IpAddr::from(GW6)] {
            let got = wait_for(10 * SEC, || t.router_neighbour(gw).filter(|m| m == GW_MAC));
            assert!(
                got.is_some(),
                "the router's kernel never resolved gateway {gw} (the daemon should make it): {:?}; log:\n{}",
                t.router_neighbour(gw),
                d.log()
            );
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    (t, d)
}

fn settings(port: u16) -> Settings {
    Settings {
        metrics_port: port,
        ..Settings::default()
    }
}

/// The member counters of `id` as (receive packets, receive bytes,
/// transmit packets, transmit bytes, spoofed).
fn member(m: &Metrics, id: &str) -> [u64; 5] {
    [
        m.member(id, "receive_packets"),
        m.member(id, "receive_bytes"),
        m.member(id, "transmit_packets"),
        m.member(id, "transmit_bytes"),
        m.member(id, "spoofed_packets"),
    ]
}

fn delta(a: [u64; 5], b: [u64; 5]) -> [u64; 5] {
    std::array::from_fn(|i| b[i] - a[i])
}

/// A sink on `ns` that expects `count` packets of `flow`.
fn sink(ns: &str, at: SocketAddr, flow: u32, count: u32) -> SeqSink {
    SeqSink::start(udp_socket(ns, at), flow, count, SEC)
}

/// Sends a flow and checks it arrived whole and in order.
#[expect(
    clippy::too_many_arguments,
    reason = "a flow is its two ends (namespace, address) and its shape"
)]
fn lossless(
    src_ns: &str,
    from: SocketAddr,
    dst_ns: &str,
    to: SocketAddr,
    id: u32,
    count: u32,
    size: usize,
    rate: u32,
) {
    let s = sink(dst_ns, to, id, count);
    spawn_flow(src_ns, from, to, id, count, size, rate)
        .join()
        .unwrap();
    let seqs = s.finish();
    assert_eq!(
        seq_report(&seqs, count),
        (0, 0, 0),
        "flow {id} {from} -> {to}: (lost, reordered, duplicated) of {count}; receiver's UDP errors: {}",
        udp_errors(dst_ns)
    );
}

/// Runs an iperf3 TCP test from `client_ns` to `server` (in the core) for 2 s,
/// reverse (server to client) if `reverse`. Returns (bytes, bits/s).
fn iperf3(t: &Topology, server: IpAddr, port: u16, reverse: bool) -> (u64, f64) {
    let port_s = port.to_string();
    let mut srv = Command::new("ip")
        .args([
            "netns",
            "exec",
            t.core.name(),
            "timeout",
            "30",
            "iperf3",
            "-s",
            "-1",
            "-p",
            &port_s,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 is missing: install the Debian package `iperf3`");
    let listening = wait_for(5 * SEC, || {
        let out = t.core.exec("ss", &["-Hltn", &format!("sport = :{port}")]);
        (!out.stdout.is_empty()).then_some(())
    });
    assert!(listening.is_some(), "iperf3 server did not listen");
    let server_s = server.to_string();
    let mut args = vec![
        "20",
        "iperf3",
        "-J",
        "-c",
        &server_s,
        "-p",
        &port_s,
        "-t",
        "2",
        "--connect-timeout",
        "3000",
    ];
    if reverse {
        args.push("-R");
    }
    let out = t.alice.exec("timeout", &args);
    let _ = srv.kill();
    let _ = srv.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "iperf3 -c {server} (reverse {reverse}) failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_str(&text).expect("iperf3 JSON");
    let r = &j["end"]["sum_received"];
    (
        r["bytes"].as_u64().expect("bytes"),
        r["bits_per_second"].as_f64().expect("bps"),
    )
}

/// (1) An untagged member with a real IP stack, IPv4 and IPv6: ping and TCP
/// both ways, exact member counters for known traffic, and the kernel
/// forwarding nothing of it.
#[test]
fn untagged_member_fast_path() {
    let (t, d) = site("fast", settings(9571), &[alice(), bob(), carol()]);
    let a = alice();
    // Warm-up: alice and the core learn their gateways' MACs.
    for (from, to) in [
        (&t.alice, IpAddr::from(REMOTE4)),
        (&t.alice, IpAddr::from(REMOTE6)),
    ] {
        let (_, got, out) = ping(from, to, 2, &[]);
        assert_eq!(got, 2, "warm-up ping {to}:\n{out}");
    }
    let f0 = t.kernel_forwarded();
    let m0 = d.metrics();

    // Pings, 100 each way and family: 200 echo requests and 200 replies
    // each way across alice's line.
    for (from, to) in [
        (&t.alice, IpAddr::from(REMOTE4)),
        (&t.alice, IpAddr::from(REMOTE6)),
        (&t.core, IpAddr::from(a.host4)),
        (&t.core, IpAddr::from(a.host6)),
    ] {
        let (sent, got, out) = ping(from, to, 100, &[]);
        assert_eq!(
            (sent, got),
            (100, 100),
            "ping {to} from {}:\n{out}",
            from.name()
        );
    }
    let m1 = d.metrics();
    // ICMP echo with 56 data bytes: 84-byte IPv4 packets, 104-byte IPv6.
    let per_dir = 100 * 84 + 100 * 104;
    assert_eq!(
        delta(member(&m0, "alice"), member(&m1, "alice")),
        [400, 2 * per_dir, 400, 2 * per_dir, 0],
        "alice's counters after 400 pings (rx pkts, rx bytes, tx pkts, tx bytes, spoofed)"
    );

    // UDP bursts of known sizes, lossless, exact counters.
    lossless(
        t.alice.name(),
        sa(a.host4, 6001),
        t.core.name(),
        sa(REMOTE4, 6000),
        1,
        1000,
        100,
        0,
    );
    lossless(
        t.alice.name(),
        sa(a.host6, 6001),
        t.core.name(),
        sa(REMOTE6, 6000),
        2,
        1000,
        200,
        0,
    );
    lossless(
        t.core.name(),
        sa(REMOTE4, 6001),
        t.alice.name(),
        sa(a.host4, 6000),
        3,
        700,
        300,
        0,
    );
    lossless(
        t.core.name(),
        sa(REMOTE6, 6001),
        t.alice.name(),
        sa(a.host6, 6000),
        4,
        300,
        400,
        0,
    );
    let m2 = d.metrics();
    assert_eq!(
        delta(member(&m1, "alice"), member(&m2, "alice")),
        [
            2000,
            1000 * (V4 + 100) + 1000 * (V6 + 200),
            1000,
            700 * (V4 + 300) + 300 * (V6 + 400),
            0
        ],
        "alice's counters after the UDP bursts"
    );
    assert_eq!(
        m2.datapath("acc0", "forward", "upstream") - m1.datapath("acc0", "forward", "upstream"),
        2000
    );
    assert_eq!(
        m2.datapath("up0", "forward", "downstream") - m1.datapath("up0", "forward", "downstream"),
        1000
    );
    for other in ["bob", "carol"] {
        assert_eq!(
            member(&m2, other),
            [0; 5],
            "{other} saw none of alice's traffic"
        );
    }

    // TCP both ways, both families.
    let mut report = Vec::new();
    for (i, (server, reverse)) in [
        (IpAddr::from(REMOTE4), false),
        (IpAddr::from(REMOTE4), true),
        (IpAddr::from(REMOTE6), false),
        (IpAddr::from(REMOTE6), true),
    ]
    .into_iter()
    .enumerate()
    {
        let (bytes, bps) = iperf3(&t, server, 5201 + i as u16, reverse);
        assert!(
            bytes > 1_000_000,
            "iperf3 to {server} (reverse {reverse}) moved only {bytes} bytes"
        );
        report.push(format!(
            "{server} {}: {:.2} Gbit/s",
            if reverse { "download" } else { "upload" },
            bps / 1e9
        ));
    }
    let m3 = d.metrics();
    let f1 = t.kernel_forwarded();
    let [rx, _, tx, _, _] = delta(member(&m0, "alice"), member(&m3, "alice"));
    let kernel = (f1.0 - f0.0) + (f1.1 - f0.1);
    eprintln!(
        "untagged_member_fast_path: {}; alice's line carried {rx} + {tx} packets through XDP, \
         the kernel forwarded {} IPv4 + {} IPv6",
        report.join(", "),
        f1.0 - f0.0,
        f1.1 - f0.1
    );
    assert!(rx + tx > 10_000, "too few packets to judge: {rx} + {tx}");
    assert!(
        kernel * 100 < rx + tx,
        "the kernel forwarded {kernel} packets of {} (more than 1%): the fast path did not carry the traffic",
        rx + tx
    );
}

/// (2) Tagged (802.1Q) and double-tagged (QinQ) members through raw sockets:
/// exact frames in both directions, to the core, from the core (raw and
/// real IP stack), and between members.
#[test]
fn tagged_and_qinq_members() {
    let (t, d) = site("tag", settings(9572), &[alice(), bob(), carol()]);
    let a = alice();
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let core4 = udp_socket(t.core.name(), sa(REMOTE4, 5000));
    let core6 = udp_socket(t.core.name(), sa(REMOTE6, 5000));
    let alice4 = udp_socket(t.alice.name(), sa(a.host4, 5000));
    let m0 = d.metrics();
    let mut sent: std::collections::BTreeMap<&str, [u64; 5]> = Default::default();

    for spec in [bob(), carol()] {
        let m = TaggedMember::open(t.trunk.name(), "t0", &spec, ACC1_MAC);
        let c = sent.entry(spec.id).or_default();
        for v6 in [false, true] {
            // Upstream: the exact frame the gateway receives, and the real
            // stack of the core accepts it.
            let marker = format!("{} up v6={v6}", spec.id);
            let ip = if v6 {
                ipv6_udp(spec.host6, REMOTE6, 64, marker.as_bytes())
            } else {
                ipv4_udp(spec.host4, REMOTE4, 64, marker.as_bytes())
            };
            gw0.drain();
            m.send_ip(&ip);
            c[0] += 1;
            c[1] += ip.len() as u64;
            let got = gw0
                .recv_matching(SEC, |f| carries(f, marker.as_bytes()))
                .unwrap_or_else(|| panic!("{marker}: nothing reached the core"));
            let et = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
            assert_eq!(
                got,
                ether(mac(GW_MAC), mac(UP0_MAC), &[], et, &next_hop(&ip)),
                "{marker}: frame at the core"
            );
            assert_ipv4_checksum(&got, 14);
            let sock = if v6 { &core6 } else { &core4 };
            let mut buf = [0u8; 256];
            let (n, from) = sock
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{marker}: core's UDP socket: {e}"));
            assert_eq!(&buf[..n], marker.as_bytes());
            assert_eq!(
                from.ip(),
                if v6 {
                    IpAddr::from(spec.host6)
                } else {
                    IpAddr::from(spec.host4)
                }
            );

            // Downstream, injected on the core's wire: the exact frame the
            // member receives, tags and all.
            let marker = format!("{} down v6={v6}", spec.id);
            let ip = if v6 {
                ipv6_udp(REMOTE6, spec.host6, 64, marker.as_bytes())
            } else {
                ipv4_udp(REMOTE4, spec.host4, 64, marker.as_bytes())
            };
            gw0.send(&ether(mac(UP0_MAC), mac(GW_MAC), &[], et, &ip));
            c[2] += 1;
            c[3] += ip.len() as u64;
            let got = m
                .recv_matching(SEC, |f| carries(f, marker.as_bytes()))
                .unwrap_or_else(|| panic!("{marker}: nothing reached the member"));
            assert_eq!(
                got,
                ether(m.mac, mac(ACC1_MAC), &spec.tags(), et, &next_hop(&ip)),
                "{marker}: frame at the member"
            );
            assert_ipv4_checksum(&got, l3(&got).unwrap().0);

            // Downstream from the core's real IP stack.
            let marker = format!("{} stack v6={v6}", spec.id);
            let (sock, dst) = if v6 {
                (&core6, IpAddr::from(spec.host6))
            } else {
                (&core4, IpAddr::from(spec.host4))
            };
            sock.send_to(marker.as_bytes(), sa(dst, 5000)).unwrap();
            let got = m
                .recv_matching(SEC, |f| carries(f, marker.as_bytes()))
                .unwrap_or_else(|| panic!("{marker}: nothing reached the member"));
            let (off, proto) = l3(&got).unwrap();
            assert_eq!(proto, et);
            assert_eq!(&got[6..12], &mac(ACC1_MAC));
            let ttl = if v6 { got[off + 7] } else { got[off + 8] };
            assert_eq!(ttl, 63, "{marker}: TTL after one hop");
            assert_ipv4_checksum(&got, off);
            c[2] += 1;
            c[3] += (got.len() - off) as u64;
        }
    }

    // Between members: alice (untagged, acc0) to and from bob (VLAN 101,
    // acc1), and bob to carol (QinQ) on the same trunk.
    let b = TaggedMember::open(t.trunk.name(), "t0", &bob(), ACC1_MAC);
    let cm = TaggedMember::open(t.trunk.name(), "t0", &carol(), ACC1_MAC);
    alice4
        .send_to(b"alice to bob", sa(bob().host4, 5000))
        .unwrap();
    let got = b
        .recv_matching(SEC, |f| carries(f, b"alice to bob"))
        .expect("alice's packet reached bob");
    let off = l3(&got).unwrap().0;
    assert_eq!(off, 18);
    assert_eq!(got[off + 8], 63);
    assert_ipv4_checksum(&got, off);
    let ip = ipv4_udp(bob().host4, a.host4, 64, b"bob to alice");
    b.send_ip(&ip);
    let mut buf = [0u8; 64];
    let (n, from) = alice4
        .recv_from(&mut buf)
        .expect("bob's packet reached alice's stack");
    assert_eq!(
        (&buf[..n], from),
        (&b"bob to alice"[..], sa(bob().host4, 4000))
    );
    let ip2 = ipv6_udp(bob().host6, carol().host6, 9, b"bob to carol");
    b.send_ip(&ip2);
    let got = cm
        .recv_matching(SEC, |f| carries(f, b"bob to carol"))
        .expect("bob's packet reached carol");
    assert_eq!(
        got,
        ether(
            cm.mac,
            mac(ACC1_MAC),
            &carol().tags(),
            ETH_P_IPV6,
            &next_hop(&ip2)
        )
    );

    let hair4 = V4 + 12;
    let mut expect = sent;
    expect.insert("alice", [1, hair4, 1, hair4, 0]);
    let bob_e = expect.get_mut("bob").unwrap();
    bob_e[0] += 2;
    bob_e[1] += hair4 + ip2.len() as u64;
    bob_e[2] += 1;
    bob_e[3] += hair4;
    let carol_e = expect.get_mut("carol").unwrap();
    carol_e[2] += 1;
    carol_e[3] += ip2.len() as u64;
    let m1 = d.metrics();
    for (id, e) in &expect {
        assert_eq!(
            delta(member(&m0, id), member(&m1, id)),
            *e,
            "{id}'s counters"
        );
    }
    let hairpins = m1.datapath("acc0", "forward", "hairpin")
        + m1.datapath("acc1", "forward", "hairpin")
        - m0.datapath("acc0", "forward", "hairpin")
        - m0.datapath("acc1", "forward", "hairpin");
    assert_eq!(hairpins, 3, "hairpin forwards");
}

/// (3) A TTL of 1 gets its time exceeded, from the fast path where the
/// ingress interface has an address of the packet's family, else from the
/// kernel; a TTL of 2 still goes through the fast path.
#[test]
fn ttl_expiry_is_answered() {
    let (t, d) = site("ttl", settings(9573), &[alice(), bob(), carol()]);
    let a = alice();
    let m0 = d.metrics();
    for (from, to, expect) in [
        (
            &t.alice,
            IpAddr::from(REMOTE4),
            "From 198.51.100.1 icmp_seq=1 Time to live exceeded",
        ),
        (&t.alice, IpAddr::from(REMOTE6), "Time exceeded: Hop limit"),
        (
            &t.core,
            IpAddr::from(a.host4),
            "From 192.0.2.2 icmp_seq=1 Time to live exceeded",
        ),
        (
            &t.core,
            IpAddr::from(a.host6),
            "From 2001:db8::2 icmp_seq=1 Time exceeded: Hop limit",
        ),
    ] {
        let (sent, got, out) = ping(from, to, 3, &["-t", "1"]);
        assert_eq!((sent, got), (3, 0), "ping -t 1 {to}:\n{out}");
        assert!(
            out.contains(expect),
            "ping -t 1 {to} from {}: expected {expect:?} in:\n{out}",
            from.name()
        );
    }
    // TTL 2 reaches the core with TTL 1, through XDP.
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let m = TaggedMember::open(t.trunk.name(), "t0", &bob(), ACC1_MAC);
    let ip = ipv4_udp(bob().host4, REMOTE4, 2, b"ttl two");
    m.send_ip(&ip);
    let got = gw0
        .recv_matching(SEC, |f| carries(f, b"ttl two"))
        .expect("TTL 2 packet forwarded");
    assert_eq!(
        got,
        ether(mac(GW_MAC), mac(UP0_MAC), &[], ETH_P_IP, &next_hop(&ip))
    );
    // TTL 1 from a tagged member on acc1 (no address to answer from) goes
    // to the kernel (which cannot answer here: no VLAN devices), and is
    // never forwarded.
    m.send_ip(&ipv4_udp(bob().host4, REMOTE4, 1, b"ttl one"));
    m.send_ip(&ipv6_udp(bob().host6, REMOTE6, 1, b"ttl one"));
    assert!(
        gw0.collect(Duration::from_millis(300), |f| carries(f, b"ttl one"))
            .is_empty()
    );

    let m1 = d.metrics();
    let ttl = |m: &Metrics, i| m.datapath(i, "pass", "ttl-exceeded");
    let answered = |m: &Metrics, i| m.datapath(i, "reply", "time-exceeded");
    // The fast path answers from the ingress interface's address of the
    // packet's family: acc0 has an IPv4 one (alice's pings), up0 both (the
    // core's); acc0 has no global IPv6 address and acc1 none at all, so
    // those go to the kernel as before.
    assert_eq!(
        (
            answered(&m1, "acc0") - answered(&m0, "acc0"),
            ttl(&m1, "acc0") - ttl(&m0, "acc0")
        ),
        (3, 3),
        "TTL-expired from alice: IPv4 answered by XDP, IPv6 by the kernel"
    );
    assert_eq!(
        answered(&m1, "up0") - answered(&m0, "up0"),
        6,
        "TTL-expired from the core, answered by XDP"
    );
    assert_eq!(
        ttl(&m1, "acc1") - ttl(&m0, "acc1"),
        2,
        "TTL-expired passes from bob"
    );
}

/// (4) Spoofed sources are dropped, counted against the member whose line
/// sent them, and never reach the core.
#[test]
fn spoofed_sources_are_dropped() {
    let (t, d) = site("spoof", settings(9574), &[alice(), bob(), carol()]);
    let a = alice();
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let m0_port = RawPort::open(t.alice.name(), "m0");
    let b = TaggedMember::open(t.trunk.name(), "t0", &bob(), ACC1_MAC);
    let c = TaggedMember::open(t.trunk.name(), "t0", &carol(), ACC1_MAC);
    // The core answers the legitimate packet below with nothing (a bound
    // socket: no port-unreachable back to alice).
    let _core = udp_socket(t.core.name(), sa(REMOTE4, 5000));
    let m0 = d.metrics();
    let f0 = t.kernel_forwarded();

    let alice_frame = |src_mac: &str, ip: &[u8]| {
        let et = if ip[0] >> 4 == 6 {
            ETH_P_IPV6
        } else {
            ETH_P_IP
        };
        ether(mac(ACC0_MAC), mac(src_mac), &[], et, ip)
    };
    let spoof = b"SPOOFED";
    for _ in 0..10 {
        // A source nobody owns, v4 and v6.
        m0_port.send(&alice_frame(
            a.mac,
            &ipv4_udp(Ipv4Addr::new(198, 51, 100, 99), REMOTE4, 64, spoof),
        ));
        m0_port.send(&alice_frame(
            a.mac,
            &ipv6_udp("2001:db8:9999::1".parse().unwrap(), REMOTE6, 64, spoof),
        ));
        // Another member's source.
        m0_port.send(&alice_frame(
            a.mac,
            &ipv4_udp(bob().host4, REMOTE4, 64, spoof),
        ));
        // Her own source from a MAC that is not her CPE's.
        m0_port.send(&alice_frame(
            "02:00:00:00:66:66",
            &ipv4_udp(a.host4, REMOTE4, 64, spoof),
        ));
        // Tagged: bob with carol's source, carol with bob's.
        b.send_ip(&ipv4_udp(carol().host4, REMOTE4, 64, spoof));
        c.send_ip(&ipv6_udp(bob().host6, REMOTE6, 64, spoof));
    }
    // A legitimate packet after them proves the capture sees traffic.
    m0_port.send(&alice_frame(
        a.mac,
        &ipv4_udp(a.host4, REMOTE4, 64, b"LEGIT"),
    ));
    let seen = gw0.collect(Duration::from_millis(500), |f| {
        carries(f, spoof) || carries(f, b"LEGIT")
    });
    assert!(
        seen.iter().all(|f| !carries(f, spoof)),
        "a spoofed frame reached the core"
    );
    assert_eq!(seen.len(), 1, "the legitimate frame reached the core");

    let m1 = d.metrics();
    let f1 = t.kernel_forwarded();
    assert_eq!(
        delta(member(&m0, "alice"), member(&m1, "alice")),
        [1, V4 + 5, 0, 0, 40]
    );
    assert_eq!(
        delta(member(&m0, "bob"), member(&m1, "bob")),
        [0, 0, 0, 0, 10]
    );
    assert_eq!(
        delta(member(&m0, "carol"), member(&m1, "carol")),
        [0, 0, 0, 0, 10]
    );
    assert_eq!(
        m1.datapath("acc0", "drop", "spoofed") - m0.datapath("acc0", "drop", "spoofed"),
        40
    );
    assert_eq!(
        m1.datapath("acc1", "drop", "spoofed") - m0.datapath("acc1", "drop", "spoofed"),
        20
    );
    assert_eq!(f1, f0, "the kernel forwarded something");
}

/// Sends alternating IPv4 and IPv6 datagrams from alice to the core every
/// millisecond until stopped.
fn ticker(t: &Topology, payload: &'static [u8], stop: Arc<AtomicBool>) -> JoinHandle<u32> {
    let a = alice();
    let s4 = udp_socket(t.alice.name(), sa(a.host4, 6100));
    let s6 = udp_socket(t.alice.name(), sa(a.host6, 6100));
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let _ = s4.send_to(payload, sa(REMOTE4, 6100));
            let _ = s6.send_to(payload, sa(REMOTE6, 6100));
            n += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        n
    })
}

/// (5) A new gateway MAC in the kernel's neighbour table reaches the
/// datapath within a second.
#[test]
fn gateway_mac_change_reaches_datapath() {
    let (t, d) = site("nbr", settings(9575), &[alice(), bob(), carol()]);
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let stop = Arc::new(AtomicBool::new(false));
    let tick = ticker(&t, b"NEIGHBOUR", stop.clone());

    let before = gw0.collect(Duration::from_millis(300), |f| carries(f, b"NEIGHBOUR"));
    assert!(!before.is_empty(), "no traffic before the change");
    assert!(
        before.iter().all(|f| f[..6] == mac(GW_MAC)),
        "traffic went to another MAC than the gateway's"
    );
    let m0 = d.metrics();

    t.core
        .ip(&["link", "set", "dev", "gw0", "address", GW_MAC_NEW]);
    t.router.ip(&[
        "neigh",
        "replace",
        "192.0.2.1",
        "lladdr",
        GW_MAC_NEW,
        "dev",
        "up0",
    ]);
    t.router.ip(&[
        "neigh",
        "replace",
        "2001:db8::1",
        "lladdr",
        GW_MAC_NEW,
        "dev",
        "up0",
    ]);
    let t0 = Instant::now();
    let mut first = [None, None];
    let mut old_after_new = 0;
    let end = t0 + 3 * SEC;
    while Instant::now() < end && first.iter().any(Option::is_none) {
        let Some(f) = gw0.recv_matching(end - Instant::now(), |f| carries(f, b"NEIGHBOUR")) else {
            break;
        };
        let i = (l3(&f).unwrap().1 == ETH_P_IPV6) as usize;
        if f[..6] == mac(GW_MAC_NEW) {
            first[i].get_or_insert(t0.elapsed());
        } else if first[i].is_some() {
            old_after_new += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let ticks = tick.join().unwrap();
    eprintln!(
        "gateway_mac_change_reaches_datapath: new MAC used after {first:?} (IPv4, IPv6); {ticks} ticks"
    );
    for (i, fam) in ["IPv4", "IPv6"].iter().enumerate() {
        let after = first[i].unwrap_or_else(|| {
            panic!(
                "{fam}: no frame to the new gateway MAC within 3 s; log:\n{}",
                d.log()
            )
        });
        assert!(
            after < SEC,
            "{fam}: the new gateway MAC reached the datapath after {after:?}"
        );
    }
    assert_eq!(
        old_after_new, 0,
        "frames to the old MAC after the new one was in use"
    );
    // Still the fast path, and the core's stack takes them again.
    let m1 = d.metrics();
    assert!(
        m1.datapath("acc0", "forward", "upstream") > m0.datapath("acc0", "forward", "upstream")
    );
    let core = udp_socket(t.core.name(), sa(REMOTE4, 6200));
    let s = udp_socket(t.alice.name(), sa(alice().host4, 6200));
    s.send_to(b"after", sa(REMOTE4, 6200)).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        core.recv_from(&mut buf).is_ok() || {
            std::thread::sleep(Duration::from_millis(200));
            core.recv_from(&mut buf).is_ok()
        },
        "the core's stack did not receive after the change"
    );
}

/// bob, changed: a new CPE MAC and one more prefix.
fn bob_changed() -> MemberSpec {
    let mut b = bob();
    b.mac = "02:00:00:00:01:12";
    b.prefixes.push("198.51.100.24/29");
    b
}

/// (6) SIGHUP applies the difference (a member added, one changed, one
/// removed) while an unchanged member's flows lose and reorder nothing;
/// an invalid configuration is refused and the running one stays.
#[test]
fn reload_is_hitless_for_unchanged_members() {
    let s = settings(9576);
    let (t, mut d) = site("reload", s.clone(), &[alice(), bob(), carol()]);
    let a = alice();
    const N: u32 = 2000;
    let sinks = [
        sink(t.core.name(), sa(REMOTE4, 7000), 1, N),
        sink(t.alice.name(), sa(a.host4, 7000), 2, N),
        sink(t.core.name(), sa(REMOTE6, 7000), 3, N),
        sink(t.alice.name(), sa(a.host6, 7000), 4, N),
    ];
    let flows = [
        spawn_flow(
            t.alice.name(),
            sa(a.host4, 7001),
            sa(REMOTE4, 7000),
            1,
            N,
            64,
            1000,
        ),
        spawn_flow(
            t.core.name(),
            sa(REMOTE4, 7001),
            sa(a.host4, 7000),
            2,
            N,
            64,
            1000,
        ),
        spawn_flow(
            t.alice.name(),
            sa(a.host6, 7001),
            sa(REMOTE6, 7000),
            3,
            N,
            64,
            1000,
        ),
        spawn_flow(
            t.core.name(),
            sa(REMOTE6, 7001),
            sa(a.host6, 7000),
            4,
            N,
            64,
            1000,
        ),
    ];
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let new_members = [alice(), bob_changed(), dave()];
    let log_before = d.log().len();
    d.reload(&t.config(&s, &new_members));
    let reloaded = wait_for(5 * SEC, || {
        let m = d.metrics();
        (m.value("collecte_members", &[]) == Some(3.0)
            && m.value(
                "collecte_member_receive_packets_total",
                &[("member", "dave")],
            )
            .is_some())
        .then_some(())
    });
    assert!(
        reloaded.is_some(),
        "the reload did not take effect; log:\n{}",
        d.log()
    );
    let applied_at = start.elapsed();
    assert!(
        applied_at < Duration::from_millis(1500),
        "the reload took effect {applied_at:?} into 2 s flows: too late to test them"
    );

    // An invalid configuration (eve overlaps alice) during the flows.
    std::thread::sleep(Duration::from_millis(300));
    let mut eve = dave();
    eve.id = "eve";
    eve.c_vlan = 104;
    eve.mac = "02:00:00:00:01:05";
    eve.prefixes = vec!["198.51.100.0/29"];
    let log_mid = d.log().len();
    d.reload(&t.config(&s, &[alice(), bob_changed(), dave(), eve]));
    let refused = wait_for(5 * SEC, || {
        let l = d.log();
        let new = &l[log_mid..];
        (new.to_lowercase().contains("refus") || new.to_lowercase().contains("invalid"))
            .then(|| new.to_string())
    });
    assert!(
        refused.is_some(),
        "no log line refusing the invalid configuration; log:\n{}",
        d.log()
    );
    d.assert_alive();

    for f in flows {
        f.join().unwrap();
    }
    for (i, s) in sinks.into_iter().enumerate() {
        let seqs = s.finish();
        assert_eq!(
            seq_report(&seqs, N),
            (0, 0, 0),
            "flow {} (lost, reordered, duplicated) across the reloads",
            i + 1
        );
    }
    eprintln!(
        "reload_is_hitless_for_unchanged_members: reload applied {applied_at:?} into the flows; \
         refusal logged: {:?}; log grew by {} bytes at the first reload",
        refused.unwrap().trim(),
        log_mid - log_before
    );

    // The running configuration is the first reload's.
    let m = d.metrics();
    assert_eq!(m.value("collecte_members", &[]), Some(3.0));
    assert!(
        m.value(
            "collecte_member_receive_packets_total",
            &[("member", "eve")]
        )
        .is_none()
    );
    assert!(
        m.value(
            "collecte_member_receive_packets_total",
            &[("member", "carol")]
        )
        .is_none(),
        "carol still exported"
    );
    let gw0 = RawPort::open(t.core.name(), "gw0");
    // dave (added) forwards both ways.
    let dm = TaggedMember::open(t.trunk.name(), "t0", &dave(), ACC1_MAC);
    let ip = ipv4_udp(dave().host4, REMOTE4, 64, b"dave up");
    dm.send_ip(&ip);
    let got = gw0
        .recv_matching(SEC, |f| carries(f, b"dave up"))
        .expect("dave's packet reached the core");
    assert_eq!(
        got,
        ether(mac(GW_MAC), mac(UP0_MAC), &[], ETH_P_IP, &next_hop(&ip))
    );
    let ip = ipv6_udp(REMOTE6, dave().host6, 64, b"dave down");
    gw0.send(&ether(mac(UP0_MAC), mac(GW_MAC), &[], ETH_P_IPV6, &ip));
    let got = dm
        .recv_matching(SEC, |f| carries(f, b"dave down"))
        .expect("a packet reached dave");
    assert_eq!(
        got,
        ether(
            dm.mac,
            mac(ACC1_MAC),
            &dave().tags(),
            ETH_P_IPV6,
            &next_hop(&ip)
        )
    );
    // bob (changed): his new MAC downstream, on his new prefix too, and his
    // old MAC is no longer accepted upstream.
    let bm = TaggedMember::open(t.trunk.name(), "t0", &bob_changed(), ACC1_MAC);
    for dst in [bob().host4, Ipv4Addr::new(198, 51, 100, 25)] {
        let ip = ipv4_udp(REMOTE4, dst, 64, b"bob down");
        gw0.send(&ether(mac(UP0_MAC), mac(GW_MAC), &[], ETH_P_IP, &ip));
        let got = bm
            .recv_matching(SEC, |f| carries(f, b"bob down"))
            .unwrap_or_else(|| panic!("nothing reached bob's new MAC for {dst}"));
        assert_eq!(
            got,
            ether(
                bm.mac,
                mac(ACC1_MAC),
                &bob().tags(),
                ETH_P_IP,
                &next_hop(&ip)
            )
        );
    }
    let old_bob = TaggedMember::open(t.trunk.name(), "t0", &bob(), ACC1_MAC);
    old_bob.send_ip(&ipv4_udp(bob().host4, REMOTE4, 64, b"old bob"));
    bm.send_ip(&ipv4_udp(bob().host4, REMOTE4, 64, b"new bob"));
    let seen = gw0.collect(Duration::from_millis(400), |f| {
        carries(f, b"old bob") || carries(f, b"new bob")
    });
    assert_eq!(seen.len(), 1, "exactly bob's new MAC is forwarded");
    assert!(carries(&seen[0], b"new bob"));
    // carol (removed): nothing forwarded either way.
    let cm = TaggedMember::open(t.trunk.name(), "t0", &carol(), ACC1_MAC);
    cm.send_ip(&ipv4_udp(carol().host4, REMOTE4, 64, b"carol up"));
    gw0.send(&ether(
        mac(UP0_MAC),
        mac(GW_MAC),
        &[],
        ETH_P_IP,
        &ipv4_udp(REMOTE4, carol().host4, 64, b"carol down"),
    ));
    assert!(
        gw0.collect(Duration::from_millis(300), |f| carries(f, b"carol up"))
            .is_empty(),
        "removed carol still forwarded upstream"
    );
    assert!(
        cm.port
            .collect(Duration::from_millis(300), |f| carries(f, b"carol down"))
            .is_empty(),
        "removed carol still forwarded downstream"
    );
}

/// (7) /metrics passes `promtool check metrics` and carries exact values
/// for a known set of packets (counted from the daemon's start: a static
/// gateway MAC means no warm-up traffic).
#[test]
fn metrics_are_exact_and_well_formed() {
    let s = Settings {
        metrics_port: 9577,
        gateway_mac: Some(GW_MAC),
        ..Settings::default()
    };
    let (t, d) = site("metrics", s, &[alice(), bob(), carol()]);
    let a = alice();
    let first = d.metrics();
    promtool(&first.text);
    assert_eq!(first.value("collecte_members", &[]), Some(3.0));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        first.value("collecte_build_info", &[("version", version)]),
        Some(1.0),
        "collecte_build_info{{version=\"{version}\"}}"
    );
    for id in ["alice", "bob", "carol"] {
        for what in [
            "receive_packets",
            "receive_bytes",
            "transmit_packets",
            "transmit_bytes",
            "spoofed_packets",
        ] {
            assert_eq!(
                first.value(&format!("collecte_member_{what}_total"), &[("member", id)]),
                Some(0.0),
                "collecte_member_{what}_total{{member=\"{id}\"}} at start"
            );
        }
    }
    for sample in first
        .samples
        .iter()
        .filter(|s| s.name == "collecte_datapath_packets_total")
    {
        let pair = (
            sample.labels["action"].as_str(),
            sample.labels["reason"].as_str(),
        );
        assert!(
            reason::NAMES.contains(&pair),
            "unknown action/reason {pair:?}"
        );
        assert!(
            ["up0", "acc0", "acc1"].contains(&sample.labels["interface"].as_str()),
            "{sample:?}"
        );
    }

    // alice: 100 IPv4 (100-byte payload) and 50 IPv6 up, 70 IPv4 (200) and
    // 30 IPv6 down. bob: 40 IPv4 up (60). carol: 25 IPv6 down (10), 5
    // spoofed.
    lossless(
        t.alice.name(),
        sa(a.host4, 6001),
        t.core.name(),
        sa(REMOTE4, 6000),
        1,
        100,
        100,
        2000,
    );
    lossless(
        t.alice.name(),
        sa(a.host6, 6001),
        t.core.name(),
        sa(REMOTE6, 6000),
        2,
        50,
        100,
        2000,
    );
    lossless(
        t.core.name(),
        sa(REMOTE4, 6001),
        t.alice.name(),
        sa(a.host4, 6000),
        3,
        70,
        200,
        2000,
    );
    lossless(
        t.core.name(),
        sa(REMOTE6, 6001),
        t.alice.name(),
        sa(a.host6, 6000),
        4,
        30,
        200,
        2000,
    );
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let b = TaggedMember::open(t.trunk.name(), "t0", &bob(), ACC1_MAC);
    let c = TaggedMember::open(t.trunk.name(), "t0", &carol(), ACC1_MAC);
    // Bound, so that the core's stack sends no port-unreachable back.
    let _core = udp_socket(t.core.name(), sa(REMOTE4, 5000));
    for i in 0..40u8 {
        b.send_ip(&ipv4_udp(bob().host4, REMOTE4, 64, &[i; 60]));
    }
    for _ in 0..25 {
        gw0.send(&ether(
            mac(UP0_MAC),
            mac(GW_MAC),
            &[],
            ETH_P_IPV6,
            &ipv6_udp(REMOTE6, carol().host6, 64, b"carol down"),
        ));
    }
    for _ in 0..5 {
        c.send_ip(&ipv6_udp(alice().host6, REMOTE6, 64, b"carol spoof"));
    }
    let got = c.port.collect(Duration::from_millis(500), |f| {
        c.is_mine(f) && carries(f, b"carol down")
    });
    assert_eq!(got.len(), 25, "carol received");

    let m = d.metrics();
    promtool(&m.text);
    assert_eq!(
        member(&m, "alice"),
        [
            150,
            100 * (V4 + 100) + 50 * (V6 + 100),
            100,
            70 * (V4 + 200) + 30 * (V6 + 200),
            0
        ]
    );
    assert_eq!(member(&m, "bob"), [40, 40 * (V4 + 60), 0, 0, 0]);
    assert_eq!(member(&m, "carol"), [0, 0, 25, 25 * (V6 + 10), 5]);
    assert_eq!(m.datapath("acc0", "forward", "upstream"), 150);
    assert_eq!(m.datapath("acc1", "forward", "upstream"), 40);
    assert_eq!(m.datapath("up0", "forward", "downstream"), 125);
    assert_eq!(m.datapath("acc1", "drop", "spoofed"), 5);
    for (iface, action, reason) in [
        ("acc0", "forward", "hairpin"),
        ("acc0", "drop", "spoofed"),
        ("up0", "pass", "no-route"),
    ] {
        assert_eq!(
            m.datapath(iface, action, reason),
            0,
            "{iface} {action} {reason}"
        );
    }
    // Counters are monotonic: a scrape never goes back.
    let again = d.metrics();
    for s in &m.samples {
        if s.name.ends_with("_total") {
            let v = again
                .samples
                .iter()
                .find(|x| x.name == s.name && x.labels == s.labels)
                .map(|x| x.value);
            assert!(
                v >= Some(s.value),
                "{} {:?} went from {} to {v:?}",
                s.name,
                s.labels,
                s.value
            );
        }
    }
}

/// (8) Shutdown. SIGTERM and SIGINT stop the daemon and leave the datapath
/// forwarding with its last tables (the daemon's design: a restart never
/// interrupts the members); a restarted daemon takes it over without losing
/// a packet of a running flow; `collecte stop --detach` then removes the
/// program from every interface, after which the kernel forwards alone.
/// `xdp_mode` selects how it attaches.
/// A daemon started with no member serves /metrics: a valid exposition
/// (`promtool check metrics`) with `collecte_members 0`, no per-member
/// family, and the interfaces' counters, which still count.
#[test]
fn metrics_with_no_member_are_well_formed() {
    let s = Settings {
        metrics_port: 9579,
        gateway_mac: Some(GW_MAC),
        ..Settings::default()
    };
    let (t, d) = site("nomember", s, &[]);
    let m = d.metrics();
    promtool(&m.text);
    assert!(
        m.text.lines().any(|l| l == "collecte_members 0"),
        "collecte_members 0 in:\n{}",
        m.text
    );
    assert_eq!(m.value("collecte_members", &[]), Some(0.0));
    assert!(
        !m.text.contains("collecte_member_"),
        "no per-member family without members:\n{}",
        m.text
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        m.value("collecte_build_info", &[("version", version)]),
        Some(1.0)
    );
    for iface in ["up0", "acc0", "acc1"] {
        for (action, why) in reason::NAMES {
            assert!(
                m.value(
                    "collecte_datapath_packets_total",
                    &[("interface", iface), ("action", action), ("reason", why)]
                )
                .is_some(),
                "collecte_datapath_packets_total{{interface={iface},action={action},reason={why}}} missing:\n{}",
                m.text
            );
        }
    }
    assert_eq!(
        m.samples
            .iter()
            .filter(|s| s.name == "collecte_datapath_packets_total")
            .count(),
        3 * reason::COUNT as usize
    );

    // Downstream packets to an address no member holds: the kernel's
    // (no-route), counted on up0.
    let gw0 = RawPort::open(t.core.name(), "gw0");
    let nobody = ipv4_udp(REMOTE4, alice().host4, 64, b"nobody home");
    for _ in 0..5 {
        gw0.send(&ether(mac(UP0_MAC), mac(GW_MAC), &[], ETH_P_IP, &nobody));
    }
    let before = m.datapath("up0", "pass", "no-route");
    let counted = wait_for(5 * SEC, || {
        let now = d.metrics().datapath("up0", "pass", "no-route");
        (now >= before + 5).then_some(now)
    });
    assert_eq!(
        counted,
        Some(before + 5),
        "five no-route packets on up0; log:\n{}",
        d.log()
    );
    let m = d.metrics();
    promtool(&m.text);
    assert_eq!(m.value("collecte_members", &[]), Some(0.0));
}

#[test]
fn shutdown_restart_and_detach() {
    let t = Topology::new("stop");
    let a = alice();
    let members = [alice(), bob(), carol()];
    let s = Settings {
        metrics_port: 9578,
        xdp_mode: Some("native"),
        ..Settings::default()
    };
    let mut d = Daemon::start(&t.router, &t.config(&s, &members), sa(LOCALHOST, 9578));
    d.wait_ready(3, 30 * SEC);
    for dev in ["up0", "acc0", "acc1"] {
        assert_eq!(
            t.xdp_on(dev).as_deref(),
            Some("xdp"),
            "{dev} (native); log:\n{}",
            d.log()
        );
    }
    assert!(
        wait_for(10 * SEC, || t
            .router_neighbour(IpAddr::from(GW4))
            .filter(|m| m == GW_MAC))
        .is_some()
    );
    std::thread::sleep(Duration::from_millis(1100));

    // Flows both ways across SIGTERM, 1 s without a daemon, a restart,
    // and SIGINT.
    const N: u32 = 3000;
    let sinks = [
        sink(t.core.name(), sa(REMOTE4, 7000), 1, N),
        sink(t.alice.name(), sa(a.host4, 7000), 2, N),
    ];
    let flows = [
        spawn_flow(
            t.alice.name(),
            sa(a.host4, 7001),
            sa(REMOTE4, 7000),
            1,
            N,
            64,
            1000,
        ),
        spawn_flow(
            t.core.name(),
            sa(REMOTE4, 7001),
            sa(a.host4, 7000),
            2,
            N,
            64,
            1000,
        ),
    ];
    let f0 = t.kernel_forwarded();
    std::thread::sleep(Duration::from_millis(500));
    let before = d.metrics();
    let status = d.stop(libc::SIGTERM, 10 * SEC);
    assert!(
        status.success(),
        "collecte exited with {status} after SIGTERM; log:\n{}",
        d.log()
    );
    for dev in ["up0", "acc0", "acc1"] {
        assert_eq!(
            t.xdp_on(dev).as_deref(),
            Some("xdp"),
            "{dev} lost its program at SIGTERM"
        );
    }
    std::thread::sleep(SEC);
    d.restart();
    d.wait_ready(3, 30 * SEC);
    let after = d.metrics();
    std::thread::sleep(Duration::from_millis(500));
    let status = d.stop(libc::SIGINT, 10 * SEC);
    assert!(
        status.success(),
        "collecte exited with {status} after SIGINT; log:\n{}",
        d.log()
    );
    for f in flows {
        f.join().unwrap();
    }
    for (i, s) in sinks.into_iter().enumerate() {
        assert_eq!(
            seq_report(&s.finish(), N),
            (0, 0, 0),
            "flow {} (lost, reordered, duplicated) across stop and restart",
            i + 1
        );
    }
    let f1 = t.kernel_forwarded();
    assert_eq!(
        f1, f0,
        "the kernel forwarded while the daemon was away: the fast path was interrupted"
    );
    // The counters live in the pinned maps: the restarted daemon goes on
    // from where the first one stopped.
    let rx = |m: &Metrics| m.member("alice", "receive_packets");
    assert!(
        rx(&after) >= rx(&before) + 900,
        "alice's receive counter went from {} to {} across the restart",
        rx(&before),
        rx(&after)
    );

    // stop --detach takes the program away; the kernel forwards alone.
    let text = d.stop_detach();
    for dev in ["up0", "acc0", "acc1"] {
        assert_eq!(
            t.xdp_on(dev),
            None,
            "{dev} still has XDP after stop --detach:\n{text}"
        );
    }
    let bpftool = t.router.exec("bpftool", &["net", "show"]);
    let out = String::from_utf8_lossy(&bpftool.stdout);
    assert!(
        bpftool.status.success() && !out.contains(" id "),
        "bpftool net show:\n{out}"
    );
    let left: Vec<_> = std::fs::read_dir(&t.bpffs.path)
        .unwrap()
        .flatten()
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .collect();
    assert!(left.is_empty(), "pins left after stop --detach: {left:?}");
    let (f4, _) = t.kernel_forwarded();
    let (_, got, out) = ping(&t.alice, IpAddr::from(REMOTE4), 5, &[]);
    assert_eq!(got, 5, "{out}");
    assert!(
        t.kernel_forwarded().0 >= f4 + 10,
        "the kernel did not forward after detach"
    );

    // The other attach modes.
    for (mode, shown) in [("generic", "xdpgeneric"), ("auto", "xdp")] {
        let s = Settings {
            metrics_port: 9578,
            xdp_mode: Some(mode),
            ..Settings::default()
        };
        let mut d = Daemon::start(&t.router, &t.config(&s, &members), sa(LOCALHOST, 9578));
        d.wait_ready(3, 30 * SEC);
        for dev in ["up0", "acc0", "acc1"] {
            assert_eq!(
                t.xdp_on(dev).as_deref(),
                Some(shown),
                "{dev} in mode {mode}; log:\n{}",
                d.log()
            );
        }
        assert!(
            wait_for(10 * SEC, || t
                .router_neighbour(IpAddr::from(GW4))
                .filter(|m| m == GW_MAC))
            .is_some()
        );
        std::thread::sleep(Duration::from_millis(1100));
        let before = d.metrics().datapath("acc0", "forward", "upstream");
        let (_, got, out) = ping(&t.alice, IpAddr::from(REMOTE4), 5, &[]);
        assert_eq!(got, 5, "{out}");
        let n = d.metrics().datapath("acc0", "forward", "upstream");
        assert_eq!(
            n,
            before + 5,
            "mode {mode}: pings did not take the fast path"
        );
        let status = d.stop(libc::SIGTERM, 10 * SEC);
        assert!(
            status.success(),
            "mode {mode}: collecte exited with {status}; log:\n{}",
            d.log()
        );
        d.stop_detach();
        for dev in ["up0", "acc0", "acc1"] {
            assert_eq!(
                t.xdp_on(dev),
                None,
                "{dev} still has XDP after stop --detach (mode {mode})"
            );
        }
    }
}

/// The plumbing alone, with the kernel forwarding and no daemon: proves the
/// topology and the raw-socket tag emulation, and that the kernel
/// forwarding counters do count what the kernel forwards (so that
/// `untagged_member_fast_path`'s "barely moves" means something).
#[test]
fn plumbing_without_daemon() {
    let t = Topology::new("base");
    let a = alice();
    let (f4, f6) = t.kernel_forwarded();
    for (from, to) in [
        (&t.alice, IpAddr::from(REMOTE4)),
        (&t.alice, IpAddr::from(REMOTE6)),
        (&t.core, IpAddr::from(a.host4)),
        (&t.core, IpAddr::from(a.host6)),
    ] {
        let (sent, got, out) = ping(from, to, 20, &[]);
        assert_eq!(
            (sent, got),
            (20, 20),
            "ping {to} from {}:\n{out}",
            from.name()
        );
    }
    let (g4, g6) = t.kernel_forwarded();
    assert!(
        g4 - f4 >= 80 && g6 - f6 >= 80,
        "kernel forwarded {} v4 / {} v6",
        g4 - f4,
        g6 - f6
    );

    let gw0 = RawPort::open(t.core.name(), "gw0");
    lossless(
        t.alice.name(),
        sa(a.host4, 7001),
        t.core.name(),
        sa(REMOTE4, 7000),
        1,
        500,
        64,
        0,
    );
    let seen = gw0.collect(Duration::from_millis(200), |f| f[..6] == mac(GW_MAC));
    assert!(!seen.is_empty(), "the core's raw port saw none of the flow");

    // Tags cross the trunk intact both ways, the outer one included
    // (rebuilt from PACKET_AUXDATA on receive).
    let acc1 = RawPort::open(t.router.name(), "acc1");
    for spec in [bob(), carol()] {
        let m = TaggedMember::open(t.trunk.name(), "t0", &spec, ACC1_MAC);
        let ip = ipv4_packet(ipv4_header(spec.host4, REMOTE4, 64, 11), b"plumbing up");
        m.send_ip(&ip);
        let got = acc1
            .recv_matching(SEC, |f| carries(f, b"plumbing up"))
            .unwrap_or_else(|| panic!("{}: nothing on acc1", spec.id));
        assert_eq!(got, m.frame(&ip), "{}: frame on acc1", spec.id);
        let ip = ipv6_udp(REMOTE6, spec.host6, 64, b"plumbing down");
        let down = ether(m.mac, mac(ACC1_MAC), &spec.tags(), ETH_P_IPV6, &ip);
        acc1.send(&down);
        let got = m
            .recv_matching(SEC, |f| carries(f, b"plumbing down"))
            .unwrap_or_else(|| panic!("{}: nothing on t0", spec.id));
        assert_eq!(got, down, "{}: frame on t0", spec.id);
    }
}
