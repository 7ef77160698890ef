//! The whole fixture table under one configuration: every feature's rows
//! of [`CONFIG`] (see `tests::fixtures`) run together in one harness, with
//! the members' slots as the tables give them and spread over the counter
//! reader's windows; and both halves of the tables following every change.
//!
//! Each feature's rows are also run alone, by `fixtures_<feature>.rs`. This
//! file owns no rows: add a row to its feature's module in
//! `tests/src/fixtures/`, and it runs here too.
use std::net::Ipv4Addr;

use collecte::datapath::action::{PASS, REDIRECT};
use tests::{
    fixtures::{CONFIG, frame, table},
    frames::ipv4_udp,
    harness::Harness,
};

#[test]
fn datapath_fixtures() {
    let mut h = Harness::new("fixtures", CONFIG);
    let t = table();
    assert!(t.len() >= 45, "the table has {} rows", t.len());
    h.run_table(&t);
}

/// The same table with the members' slots spread over several windows of
/// the counter reader (`COUNTER_WINDOW` slots per mapping) and a large
/// `max_members`, so that each CPU's block of counters starts far from the
/// previous one: every counter delta must still land on its member.
#[test]
fn datapath_fixtures_high_slots() {
    let w = collecte::datapath::COUNTER_WINDOW;
    let max = 3 * w + 1000;
    let config = CONFIG.replace("max_members = 64", &format!("max_members = {max}"));
    let slots = [
        ("alice", w - 1),
        ("bob", w),
        ("carol", 2 * w + 7),
        ("dave", max - 1),
    ];
    let slots = slots.iter().map(|(id, s)| (id.to_string(), *s)).collect();
    let mut h = Harness::with_slots("fixtures-slots", &config, slots);
    h.run_table(&table());
}

/// Every change reaches both halves of the tables: the daemon writes a
/// change into the inactive half, flips, and brings the other half up to
/// date at the next change. Members come, go, change MAC and trade
/// prefixes over many changes; after each, every member's address is
/// forwarded to its current MAC and every other address goes to the kernel.
#[test]
fn both_halves_follow_every_change() {
    let mut h = Harness::new("halves", CONFIG);
    let addr = |k: usize| Ipv4Addr::new(203, 0, 113, k as u8);
    for round in 0..12usize {
        // Member i is present in most rounds, with a MAC that changes every
        // one, two or three rounds and an address that moves to another
        // member's every three.
        let members: Vec<router_core::member::Member> = (0..20usize)
            .filter(|i| (i * 7 + round * 3) % 5 != 0)
            .map(|i| router_core::member::Member {
                id: format!("m{i}"),
                interface: "acc0".into(),
                s_vlan: None,
                c_vlan: None,
                mac: Some(router_core::member::MacAddr([
                    2,
                    0,
                    0,
                    9,
                    i as u8,
                    (round / (1 + i % 3)) as u8,
                ])),
                prefixes: vec![
                    format!("{}/32", addr((i + round / 3) % 20 + 1))
                        .parse()
                        .unwrap(),
                ],
            })
            .collect();
        h.sync_members(&members);
        let owner = |a: Ipv4Addr| {
            members
                .iter()
                .find(|m| m.prefixes[0].addr() == std::net::IpAddr::V4(a))
        };
        for k in 1..=20 {
            let ip = ipv4_udp(Ipv4Addr::new(192, 0, 2, 99), addr(k), 64, b"x");
            let input = frame("02:00:00:00:00:10", "02:00:00:00:00:01", &[], &ip);
            let (action, out) = h.run("up0", &input);
            match owner(addr(k)) {
                Some(m) => {
                    assert_eq!(action, REDIRECT, "round {round}, {}: {}", addr(k), m.id);
                    assert_eq!(
                        out[..6],
                        m.mac.unwrap().0,
                        "round {round}, {}: to {}'s MAC",
                        addr(k),
                        m.id
                    );
                }
                None => assert_eq!(action, PASS, "round {round}, {}: nobody's", addr(k)),
            }
        }
    }
}
