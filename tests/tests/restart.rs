//! Restart under traffic: while sequenced flows run through the router, the
//! daemon is restarted 10 times (SIGTERM or kill -9) and the API's members
//! are fully synced 10 times with 10,000 members. Members present throughout
//! lose no packet, and their counters only ever grow.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::unix::fs::PermissionsExt as _,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tests::{
    api::{Client, Endpoint, TOKEN},
    daemon::Daemon,
    topology::{
        SeqSink, Settings, Topology, alice, bob,
        plan::{GW_MAC, REMOTE4, REMOTE6},
        seq_report, spawn_flow, udp_socket,
    },
};

const SEC: Duration = Duration::from_secs(1);
const API_MEMBERS: usize = 10_000;
/// Packets per flow, at `RATE` per second: long enough to cover the run.
const RATE: u32 = 1000;

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// API member `i`: on the trunk behind acc1 with a QinQ attachment of its
/// own, a /32 and a /56 from pools no traffic goes to.
fn api_member(i: usize) -> Value {
    let v4 = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i as u32);
    json!({
        "id": format!("m{i:05}"),
        "interface": "acc1",
        "s_vlan": 1000 + i / 4000,
        "c_vlan": 1 + i % 4000,
        "mac": format!("02:10:00:00:{:02x}:{:02x}", i >> 8, i & 0xff),
        "prefixes": [
            format!("{v4}/32"),
            format!("2001:db8:{:x}:{:x}::/56", 0x8000 + i / 256, (i % 256) << 8),
        ],
    })
}

/// Sync `k`: members `offset .. offset + 10,000`, alternating between two
/// sets that share half their members.
fn api_set(k: usize) -> Value {
    let offset = if k.is_multiple_of(2) {
        0
    } else {
        API_MEMBERS / 2
    };
    json!({ "members": (offset..offset + API_MEMBERS).map(api_member).collect::<Vec<_>>() })
}

fn flow(ns: &str, from: SocketAddr, to: SocketAddr, id: u32, count: u32) -> JoinHandle<()> {
    spawn_flow(ns, from, to, id, count, 64, RATE)
}

#[test]
fn restarts_and_full_syncs_under_traffic_lose_nothing() {
    tests::require_root();
    let t = Topology::new("restart");
    let dir = std::env::temp_dir().join(format!("{}.api", t.router.name()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let settings = Settings {
        metrics_port: 9590,
        ..Settings::default()
    };
    let config = t
        .config(&settings, &[alice(), bob()])
        .replace("max_members = 64", "max_members = 16384")
        .replace("route_groups = 64", "route_groups = 4096")
        .lines()
        .map(|l| {
            if l.starts_with("state = ") {
                format!("state = \"{}/state.json\"\n", dir.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>()
        + &format!(
            "\n[api]\nlisten = \"127.0.0.1:9591\"\ntoken_file = \"{}\"\n",
            token.display()
        );
    let mut d = Daemon::start(&t.router, &config, sa(Ipv4Addr::LOCALHOST, 9590));
    d.wait_ready(2, 30 * SEC);
    let client = Client::new(Endpoint::Tcp {
        ns: t.router.name().to_string(),
        addr: sa(Ipv4Addr::LOCALHOST, 9591),
    });
    // The gateway resolved and in the datapath before the flows start.
    let resolved = tests::topology::wait_for(10 * SEC, || {
        t.router_neighbour(IpAddr::V4(tests::topology::plan::GW4))
            .filter(|m| m == GW_MAC)
    });
    assert!(
        resolved.is_some(),
        "gateway never resolved; log:\n{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(1100));

    // Flows in both directions, both families, for alice (present
    // throughout), long enough to span every restart and sync.
    let a = alice();
    let count = 45 * RATE;
    let sinks = [
        SeqSink::start(
            udp_socket(t.core.name(), sa(REMOTE4, 7000)),
            1,
            count,
            3 * SEC,
        ),
        SeqSink::start(
            udp_socket(t.alice.name(), sa(a.host4, 7000)),
            2,
            count,
            3 * SEC,
        ),
        SeqSink::start(
            udp_socket(t.core.name(), sa(REMOTE6, 7000)),
            3,
            count,
            3 * SEC,
        ),
        SeqSink::start(
            udp_socket(t.alice.name(), sa(a.host6, 7000)),
            4,
            count,
            3 * SEC,
        ),
    ];
    let flows = [
        flow(
            t.alice.name(),
            sa(a.host4, 7001),
            sa(REMOTE4, 7000),
            1,
            count,
        ),
        flow(
            t.core.name(),
            sa(REMOTE4, 7001),
            sa(a.host4, 7000),
            2,
            count,
        ),
        flow(
            t.alice.name(),
            sa(a.host6, 7001),
            sa(REMOTE6, 7000),
            3,
            count,
        ),
        flow(
            t.core.name(),
            sa(REMOTE6, 7001),
            sa(a.host6, 7000),
            4,
            count,
        ),
    ];
    let started = Instant::now();
    let mut last = [0u64; 4];
    let counters = |d: &Daemon| {
        let m = d.metrics();
        [
            m.member("alice", "receive_packets"),
            m.member("alice", "receive_bytes"),
            m.member("alice", "transmit_packets"),
            m.member("alice", "transmit_bytes"),
        ]
    };
    let mut sync_times = Vec::new();
    let mut restart_times = Vec::new();
    for k in 0..10 {
        // A full sync of 10,000 members.
        let body = api_set(k);
        let t0 = Instant::now();
        let r = client.put("/v1/members", &body);
        let took = t0.elapsed();
        assert_eq!(r.status, 200, "sync {k}: {}", r.text());
        sync_times.push(took);
        let now = counters(&d);
        for (i, (n, l)) in now.iter().zip(&last).enumerate() {
            assert!(
                n >= l,
                "after sync {k}: alice's counter {i} went from {l} to {n}"
            );
        }
        last = now;

        // A restart: SIGTERM or kill -9, alternately.
        let sig = if k.is_multiple_of(2) {
            libc::SIGTERM
        } else {
            libc::SIGKILL
        };
        let t0 = Instant::now();
        d.stop(sig, 10 * SEC);
        d.restart();
        d.wait_ready(2 + API_MEMBERS as u64, 60 * SEC);
        restart_times.push(t0.elapsed());
        let now = counters(&d);
        for (i, (n, l)) in now.iter().zip(&last).enumerate() {
            assert!(
                n >= l,
                "after restart {k}: alice's counter {i} went from {l} to {n}"
            );
        }
        last = now;
        // The API's members came back from the state file.
        let listed = client.get("/v1/members").json();
        assert_eq!(listed["members"].as_array().unwrap().len(), 2 + API_MEMBERS);
    }
    let ops = started.elapsed();
    assert!(
        ops < Duration::from_secs(40),
        "the restarts and syncs took {ops:?}, longer than the flows cover"
    );
    for f in flows {
        f.join().expect("flow");
    }
    let mut total = 0;
    for (i, s) in sinks.into_iter().enumerate() {
        let seqs = s.finish();
        let (lost, reordered, dup) = seq_report(&seqs, count);
        println!(
            "flow {}: {} sent, {} received, {lost} lost, {reordered} reordered, {dup} duplicated",
            i + 1,
            count,
            seqs.len()
        );
        assert_eq!((lost, reordered, dup), (0, 0, 0), "flow {}", i + 1);
        total += seqs.len();
    }
    let (fw4, fw6) = t.kernel_forwarded();
    let ms = |v: &[Duration]| {
        let mut v: Vec<u128> = v.iter().map(|d| d.as_millis()).collect();
        v.sort();
        format!("median {} ms, max {} ms", v[v.len() / 2], v[v.len() - 1])
    };
    println!(
        "10 full syncs of {API_MEMBERS} members: {}; 10 restarts (5 SIGTERM, 5 kill -9) until ready: {}",
        ms(&sync_times),
        ms(&restart_times)
    );
    println!(
        "{total} packets over {ops:?} of restarts and syncs: none lost or reordered; the router's kernel forwarded {fw4} IPv4 and {fw6} IPv6 packets"
    );
    let final_counts = counters(&d);
    println!("alice's counters only grew: {final_counts:?}");
}
