use super::*;

fn member(id: &str, prefixes: &[&str]) -> Member {
    Member {
        id: id.into(),
        interface: "acc0".into(),
        s_vlan: None,
        c_vlan: Some(7),
        mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
    }
}

#[test]
fn prefixes_round_trip() {
    let nets = [
        "0.0.0.0/0",
        "10.0.0.0/8",
        "198.51.100.7/32",
        "198.51.100.16/29",
        "2001:db8::/32",
        "2001:db8:100::/48",
        "2a03:3000:0:1234::/64",
        "2001:db8::1/128",
        "::/0",
    ];
    let m = member("a", &nets);
    let mut s = MemberStore::new();
    let n = s.push(m.as_in(), Origin::Api).unwrap();
    let v = s.get(n).unwrap();
    assert_eq!(v.to_member(), m);
    assert!(v.same_as(m.as_in()));
    assert_eq!(v.origin(), Origin::Api);
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        serde_json::to_string(&m).unwrap()
    );
}

#[test]
fn ids_are_unique_and_found() {
    let mut s = MemberStore::new();
    for i in 0..1000 {
        let m = member(
            &format!("m{i}"),
            &[&format!("10.0.{}.{}/32", i / 256, i % 256)],
        );
        assert_eq!(s.push(m.as_in(), Origin::Config).unwrap(), i);
    }
    let dup = member("m5", &["10.9.9.9/32"]);
    assert_eq!(
        s.push(dup.as_in(), Origin::Config),
        Err(StoreError::Duplicate("m5".into()))
    );
    assert_eq!(s.len(), 1000);
    assert_eq!(s.number("m999"), Some(999));
    assert_eq!(s.number("m1000"), None);
    // Replace, remove, refill a hole: the index and arena follow.
    for round in 0..50 {
        for i in (0..1000).step_by(3) {
            let m = member(
                &format!("m{i}"),
                &[&format!("10.{round}.{}.{}/32", i / 256, i % 256)],
            );
            s.set(i, m.as_in(), Origin::Api).unwrap();
        }
    }
    assert!(s.remove(10));
    assert!(!s.remove(10));
    assert_eq!(s.number("m10"), None);
    assert!(s.get(10).is_none());
    let m = member("new", &["192.0.2.1/32"]);
    s.set(10, m.as_in(), Origin::Api).unwrap();
    assert_eq!(s.number("new"), Some(10));
    assert_eq!(s.len(), 1000);
    let v = s.get(999).unwrap();
    assert_eq!(v.id(), "m999");
    assert_eq!(
        v.prefixes().collect::<Vec<_>>(),
        vec!["10.49.3.231/32".parse::<IpNet>().unwrap()]
    );
    assert_eq!(s.get(3).unwrap().origin(), Origin::Api);
    assert_eq!(s.get(4).unwrap().origin(), Origin::Config);
    // Compaction kept the arena small.
    assert!(s.arena.len() < 1000 * 30, "{}", s.arena.len());
    assert_eq!(s.iter().count(), 1000);
}

#[test]
fn a_replacement_of_the_same_size_is_made_in_place() {
    let mut s = MemberStore::new();
    let mut batch = MemberStore::new();
    let a = member("a", &["10.0.0.1/32", "2001:db8:1::/64"]);
    batch.push(a.as_in(), Origin::Api).unwrap();
    s.set_view(0, &batch.get(0).unwrap(), Origin::Api).unwrap();
    let arena = s.arena.len();
    let mut renumbered = MemberStore::new();
    let a2 = member("a", &["10.0.0.2/32", "2001:db8:2::/64"]);
    renumbered.push(a2.as_in(), Origin::Api).unwrap();
    s.set_view(0, &renumbered.get(0).unwrap(), Origin::Api)
        .unwrap();
    assert_eq!(s.arena.len(), arena, "rewritten in place");
    assert_eq!(s.garbage, 0);
    assert_eq!(s.get(0).unwrap().to_member(), a2);
    // Another size goes to the end; the old bytes are garbage.
    let a3 = member("a", &["10.0.0.0/24"]);
    let mut other = MemberStore::new();
    other.push(a3.as_in(), Origin::Api).unwrap();
    s.set_view(0, &other.get(0).unwrap(), Origin::Api).unwrap();
    assert_eq!(s.get(0).unwrap().to_member(), a3);
    assert!(s.garbage > 0);
    assert_eq!(s.number("a"), Some(0));
}

#[test]
fn each_origin_is_counted_apart() {
    let mut s = MemberStore::new();
    let c = member("carol", &["10.0.0.1/32"]);
    let a = member("alice", &["10.0.0.2/32"]);
    let p = member("pat@isp.example", &["10.0.0.3/32"]);
    s.push(c.as_in(), Origin::Config).unwrap();
    s.push(a.as_in(), Origin::Api).unwrap();
    let n = s.push(p.as_in(), Origin::Session).unwrap();
    let counts =
        |s: &MemberStore| [Origin::Config, Origin::Api, Origin::Session].map(|o| s.count(o));
    assert_eq!(counts(&s), [1, 1, 1]);
    assert_eq!(s.get(n).unwrap().origin(), Origin::Session);
    assert_eq!(s.by_id("pat@isp.example").unwrap().0, n);
    // Replaced under another origin, counted under the new one.
    s.set(n, p.as_in(), Origin::Api).unwrap();
    assert_eq!(counts(&s), [1, 2, 0]);
    let mut batch = MemberStore::new();
    batch.push(p.as_in(), Origin::Session).unwrap();
    s.set_view(n, &batch.get(0).unwrap(), Origin::Session)
        .unwrap();
    assert_eq!(counts(&s), [1, 1, 1]);
    assert_eq!(s.get(n).unwrap().origin(), Origin::Session);
    assert!(s.remove(n));
    assert_eq!(counts(&s), [1, 1, 0]);
    // A session member in a hole.
    s.set(7, p.as_in(), Origin::Session).unwrap();
    assert_eq!(counts(&s), [1, 1, 1]);
    assert_eq!(s.len(), 3);
}
