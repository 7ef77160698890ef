use std::net::Ipv4Addr;

use ipnet::IpNet;
use router_common::MemberCounters;

use super::{accounting, grant, persist, *};
use crate::pppoe::{Line, Persisted, SessionRef, SessionState, TerminateCause};
use crate::radius::{Accept, AcctKind};

fn session(c_vlan: u16, id: u16) -> SessionRef {
    SessionRef {
        line: Line {
            ifindex: 7,
            s_vlan: 0,
            c_vlan,
            mac: [2, 0, 0, 0, 0x5e, 1],
        },
        session_id: id,
    }
}

fn accept() -> Accept {
    Accept {
        framed_ip: Some(Ipv4Addr::new(198, 51, 100, 9)),
        framed_ipv6_prefix: Some("2001:db8:9::/64".parse().unwrap()),
        // Host bits set: cleared in the member.
        delegated_ipv6_prefix: Some("2001:db8:99::1/48".parse().unwrap()),
        ..Accept::default()
    }
}

fn record(s: SessionRef) -> Record {
    let a = accept();
    let member = grant::member_of("pat@isp.example", "acc0", &s, &a).unwrap();
    Record {
        member,
        slot: 3,
        iface_slot: 2,
        acct_session_id: accounting::acct_session_id(1_700_000_000, 7, s.session_id),
        class: vec![b"gold".to_vec()],
        interim_interval: 10,
        base: CountersOut::default(),
        session_timeout: None,
        engine: Persisted {
            session: s,
            user: "pat@isp.example".into(),
            our_magic: 1,
            peer_magic: 2,
            our_mru: 1492,
            peer_mru: 1480,
            grant: grant::grant_of(&a),
            our_ifid: 0,
            peer_ifid: 0,
            ipv4_open: true,
            ipv6_open: false,
            started_unix: 1_700_000_000,
        },
    }
}

#[test]
fn an_accept_makes_a_member_with_its_line_and_prefixes() {
    let s = session(100, 1);
    let m = grant::member_of("pat@isp.example", "acc0", &s, &accept()).unwrap();
    assert_eq!(m.id, "pat@isp.example");
    assert_eq!((m.s_vlan, m.c_vlan), (None, Some(100)));
    assert_eq!(m.mac.unwrap().0, s.line.mac);
    let want: Vec<IpNet> = ["198.51.100.9/32", "2001:db8:9::/64", "2001:db8:99::/48"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(m.prefixes, want);
    m.validate_fields().unwrap();
    let g = grant::grant_of(&accept());
    assert_eq!(g.ipv4, Some(Ipv4Addr::new(198, 51, 100, 9)));
    assert_eq!(g.delegated, accept().delegated_ipv6_prefix);
    // No address at all: refused, naming the user.
    let err = grant::member_of("pat", "acc0", &s, &Accept::default()).unwrap_err();
    assert!(err.to_string().contains("\"pat\""), "{err}");
    // QinQ: both tags.
    let mut q = session(200, 2);
    q.line.s_vlan = 10;
    let m = grant::member_of("q", "acc0", &q, &accept()).unwrap();
    assert_eq!((m.s_vlan, m.c_vlan), (Some(10), Some(200)));
}

#[test]
fn sessions_persist_atomically_and_come_back() {
    let dir = std::env::temp_dir().join(format!("collecte-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state.json");
    let path = persist::path_beside(&state);
    assert_eq!(path, dir.join("sessions.json"));
    assert_eq!(
        persist::load::<Record>(&path).unwrap(),
        Vec::new(),
        "missing: none"
    );
    let mut reg = Registry::new(path.clone(), Vec::new());
    let (a, b) = (record(session(100, 1)), record(session(101, 2)));
    let mut b = b;
    b.member.id = "sam".into();
    reg.insert(a.clone()).unwrap();
    reg.insert(b.clone()).unwrap();
    assert_eq!(
        persist::load::<Record>(&path).unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(!dir.join("sessions.json.tmp").exists());
    reg.remove(&b.session()).unwrap();
    assert_eq!(persist::load::<Record>(&path).unwrap(), vec![a.clone()]);
    // The engine's state changes after the Up: saved.
    let mut p = a.engine.clone();
    p.ipv6_open = true;
    reg.update_engine(p.clone()).unwrap();
    assert_eq!(persist::load::<Record>(&path).unwrap()[0].engine, p);
    // Damaged: a clear error naming the file.
    std::fs::write(
        &path,
        b"{\"format\":\"collecte-sessions\",\"version\":9,\"sessions\":[]}",
    )
    .unwrap();
    let err = persist::load::<Record>(&path).unwrap_err().to_string();
    assert!(
        err.contains("sessions.json") && err.contains("version 9"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accounting_reports_the_counters_since_the_up() {
    let mut r = record(session(100, 1));
    r.base = CountersOut {
        rx_packets: 10,
        rx_bytes: 1000,
        tx_packets: 5,
        tx_bytes: 500,
        spoofed_packets: 0,
    };
    let now = MemberCounters {
        rx_packets: 12,
        rx_bytes: 5 << 32,
        tx_packets: 9,
        tx_bytes: 900,
        spoofed_packets: 1,
    };
    let c = r.base.since(&now);
    assert_eq!((c.rx_packets, c.rx_bytes), (2, (5 << 32) - 1000));
    assert_eq!((c.tx_packets, c.tx_bytes), (4, 400));
    let a = accounting::record(
        AcctKind::Stop,
        &r,
        &c,
        1_700_000_042,
        Some(TerminateCause::LostCarrier),
    );
    assert_eq!(a.kind, AcctKind::Stop);
    assert_eq!(a.user, "pat@isp.example");
    assert_eq!(a.session_time, 42);
    assert_eq!((a.in_octets, a.out_octets), (c.rx_bytes, 400));
    assert_eq!((a.in_packets, a.out_packets), (2, 4));
    assert_eq!(a.terminate_cause, Some(2));
    assert_eq!(a.nas_port_id, "acc0:100");
    assert_eq!(a.calling_station_id, "02:00:00:00:5e:01");
    assert_eq!(a.framed_ip, Some(Ipv4Addr::new(198, 51, 100, 9)));
    assert_eq!(a.class, vec![b"gold".to_vec()]);
    assert_eq!(a.session_id, "6553F10000070001");
}

#[test]
fn the_registry_counts_and_shows_sessions() {
    let up = record(session(100, 1));
    let mut reg = Registry::default();
    reg.insert(up.clone()).unwrap();
    let negotiating = session(101, 2);
    reg.publish(
        vec![
            Live {
                session: up.session(),
                interface: "acc0".into(),
                state: SessionState::Up,
                user: Some(up.member.id.clone()),
                mru: 1480,
                started_unix: 1,
            },
            Live {
                session: negotiating,
                interface: "acc0".into(),
                state: SessionState::Lcp,
                user: None,
                mru: 1492,
                started_unix: 2,
            },
        ],
        Default::default(),
    );
    let by = reg.by_state();
    assert_eq!(by["up"], 1);
    assert_eq!(by["lcp"], 1);
    assert_eq!(by["auth"], 0);
    let view = reg.view(|slot| {
        (slot == 3).then_some(MemberCounters {
            rx_bytes: 84,
            ..MemberCounters::default()
        })
    });
    assert_eq!(view.len(), 2);
    let s = view.iter().find(|s| s.state == "up").unwrap();
    assert_eq!(s.id.as_deref(), Some("pat@isp.example"));
    assert_eq!(s.mru, 1480);
    assert_eq!(s.counters.unwrap().rx_bytes, 84);
    assert_eq!(s.addresses.len(), 3);
    let n = view.iter().find(|s| s.state == "lcp").unwrap();
    assert_eq!((n.id.clone(), n.c_vlan, n.session_id), (None, Some(101), 2));
    // Restored sessions not published yet count as up.
    let mut restored = Registry::default();
    restored.insert(up).unwrap();
    assert_eq!(restored.by_state()["up"], 1);
}
