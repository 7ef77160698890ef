use router_common::ATTACH_SHARED;

use super::*;
use crate::changes::Uplinks;
use crate::member::MacAddr;
use crate::tables::learned::Learned;

fn member(id: &str, prefixes: &[&str], c_vlan: Option<u16>) -> Member {
    Member {
        id: id.into(),
        interface: "acc0".into(),
        s_vlan: None,
        c_vlan,
        mac: Some(MacAddr([2, 0, 0, 0, 1, 1])),
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
    }
}

fn tables(max: u32) -> Tables {
    let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n[[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
    let mut t = Tables::new(max, 64);
    t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
        .unwrap();
    t
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

/// The change of attachment `key`, if any.
fn att(c: &Changes, key: &Attachment) -> Option<Option<u32>> {
    c.attachments
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
}

fn key(iface: u16, s_vlan: u16, c_vlan: u16) -> Attachment {
    Attachment {
        iface,
        s_vlan,
        c_vlan,
    }
}

fn uplinks(v4: u32, v6: u32) -> Uplinks {
    Uplinks { v4, v6 }
}

fn lookup(t: &Tables, a: &str) -> u32 {
    t.routes().lookup(a.parse().unwrap())
}

#[test]
fn slots_are_stable_and_zeroed_only_when_new() {
    let mut t = tables(8);
    let a = member("a", &["198.51.100.1/32"], None);
    let b = member("b", &["198.51.100.2/32"], Some(10));
    t.sync(&[a.clone(), b.clone()]).unwrap();
    let c = t.take_changes();
    let (sa, sb) = (t.slot("a").unwrap(), t.slot("b").unwrap());
    assert_eq!(sorted(&c.zero_counters), vec![sa.min(sb), sa.max(sb)]);
    assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(sb));
    // Changing b keeps its slot and zeroes nothing.
    let b2 = member("b", &["198.51.100.2/32", "198.51.100.3/32"], Some(11));
    t.sync(&[a.clone(), b2]).unwrap();
    let c = t.take_changes();
    assert_eq!(t.slot("b"), Some(sb));
    assert!(c.zero_counters.is_empty());
    assert_eq!(att(&c, &key(2, 0, 10)), Some(None));
    assert_eq!(att(&c, &key(2, 0, 11)), Some(Some(sb)));
    assert_eq!(lookup(&t, "198.51.100.3"), route::member_leaf(sb));
    // Removing a frees its slot only once the removal has been applied:
    // a member added in the same change gets another slot.
    let b3 = member("b", &["198.51.100.2/32"], Some(11));
    t.sync(&[b3.clone(), member("c", &["198.51.100.9/32"], None)])
        .unwrap();
    assert_ne!(t.slot("c"), Some(sa), "a freed slot rests for one apply");
    t.take_changes();
    assert_eq!(lookup(&t, "198.51.100.1"), route::EMPTY);
    t.set_member(&member("d", &["198.51.100.10/32"], None))
        .unwrap();
    assert_eq!(t.slot("d"), Some(sa), "then it is reused");
    assert!(t.take_changes().zero_counters.contains(&sa), "and zeroed");
}

#[test]
fn members_can_swap_prefixes_in_one_sync() {
    let mut t = tables(8);
    t.sync(&[
        member("a", &["198.51.100.1/32"], None),
        member("b", &["198.51.100.2/32"], None),
    ])
    .unwrap();
    t.take_changes();
    let (sa, sb) = (t.slot("a").unwrap(), t.slot("b").unwrap());
    t.sync(&[
        member("a", &["198.51.100.2/32"], None),
        member("b", &["198.51.100.1/32"], None),
    ])
    .unwrap();
    assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(sa));
    assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(sb));
    // The prefix's ownership moves in the same change as its route.
    let c = t.take_changes();
    assert!(!c.routes.is_empty());
    t.remove_member("a").unwrap();
    assert_eq!(lookup(&t, "198.51.100.2"), route::EMPTY);
    assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(sb));
}

#[test]
fn a_shared_attachment_is_marked_shared() {
    let mut t = tables(8);
    t.sync(&[
        member("a", &["198.51.100.1/32"], None),
        member("b", &["198.51.100.2/32"], None),
    ])
    .unwrap();
    let c = t.take_changes();
    assert_eq!(att(&c, &key(2, 0, 0)), Some(Some(ATTACH_SHARED)));
    t.remove_member("b").unwrap();
    let c = t.take_changes();
    assert_eq!(att(&c, &key(2, 0, 0)), Some(Some(t.slot("a").unwrap())));
}

#[test]
fn restored_slots_come_back_and_are_never_given_to_others() {
    // A previous run had a in slot 5 and b in slot 0.
    let recorded = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 0)]);
    let mut t = Tables::with_slots(16, 64, recorded, BTreeMap::new());
    let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n[[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
    t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
        .unwrap();
    let ms: Vec<Member> = (0..8)
        .map(|i| {
            member(
                &format!("n{i}"),
                &[&format!("198.51.100.{}/32", 10 + i)],
                None,
            )
        })
        .chain([member("a", &["198.51.100.1/32"], None)])
        .collect();
    t.sync(&ms).unwrap();
    let zero = t.full_state().zero_counters;
    assert_eq!(t.slot("a"), Some(5), "a gets its slot back");
    assert!(!zero.contains(&5), "and keeps its counters");
    let others: BTreeSet<u32> = (0..8).map(|i| t.slot(&format!("n{i}")).unwrap()).collect();
    assert_eq!(others.len(), 8);
    assert!(!others.contains(&5), "nobody else gets a's slot");
    assert!(!others.contains(&0), "b's slot waits a round before reuse");
    // After a further round, b's unclaimed slot is reusable and zeroed.
    t.take_changes();
    t.set_member(&member("late", &["198.51.100.99/32"], None))
        .unwrap();
    let late = t.slot("late").unwrap();
    let c = t.take_changes();
    assert!(c.zero_counters.contains(&late));
    assert_ne!(late, 5);
}

#[test]
fn a_failed_change_changes_nothing() {
    let mut t = Tables::new(2, 2);
    let config =
        Config::parse("[[uplink]]\ninterface = \"up0\"\n[[access]]\ninterface = \"acc0\"\n")
            .unwrap();
    t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
        .unwrap();
    t.sync(&[member("a", &["198.51.100.1/32"], None)]).unwrap();
    t.take_changes();
    // Needs more trie groups than the one available.
    let big = member("b", &["2001:db8:1:2:3:4::/96"], None);
    assert!(t.set_member(&big).is_err());
    assert!(t.slot("b").is_none());
    assert!(t.take_changes().routes.is_empty());
    // Too many members.
    let r = t.sync(&[
        member("a", &["198.51.100.1/32"], None),
        member("c", &["198.51.100.3/32"], None),
        member("d", &["198.51.100.4/32"], None),
    ]);
    assert!(matches!(r, Err(TablesError::SlotsExhausted { .. })));
    assert_eq!(t.len(), 1);
}

#[test]
fn an_update_that_fails_at_the_router_addresses_changes_no_member() {
    let config =
        Config::parse("[[uplink]]\ninterface = \"up0\"\n[[access]]\ninterface = \"acc0\"\n")
            .unwrap();
    let mut t = Tables::new(8, 4);
    t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
        .unwrap();
    t.sync(&[member("a", &["198.51.100.1/32"], None)]).unwrap();
    t.take_changes();
    // The new member fits; the router's IPv6 address needs more groups
    // than are left once it is in.
    let b = member("b", &["203.0.113.1/32"], None);
    let a = member("a", &["198.51.100.1/32"], None);
    let batch = batch_of([&a, &b], Origin::Config).unwrap();
    let r = t.update(
        InterfaceSources {
            config: &config,
            links: &BTreeMap::new(),
            gateway_macs: &BTreeMap::new(),
        },
        &[Part::all(&batch)],
        &["2001:db8:1:2::1".parse().unwrap()],
    );
    assert!(matches!(r, Err(TablesError::LocalRoute { .. })), "{r:?}");
    assert_eq!(t.slot("b"), None);
    assert_eq!(lookup(&t, "203.0.113.1"), route::EMPTY);
    let c = t.take_changes();
    assert!(c.members.is_empty() && c.routes.is_empty());
    // Without the address, the same update goes through.
    t.update(
        InterfaceSources {
            config: &config,
            links: &BTreeMap::new(),
            gateway_macs: &BTreeMap::new(),
        },
        &[Part::all(&batch)],
        &[],
    )
    .unwrap();
    assert!(t.slot("b").is_some());
}

#[test]
fn upstream_leaves_by_the_first_uplink_that_is_up_and_resolved() {
    let config = Config::parse(
            "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway_mac = \"02:00:00:00:00:01\"\n\
             [[uplink]]\ninterface = \"up1\"\ngateway4 = \"192.0.2.129\"\ngateway6 = \"2001:db8::1\"\n\
             [[access]]\ninterface = \"acc0\"\n",
        )
        .unwrap();
    let link = |ifindex, up| LinkInfo {
        ifindex,
        mac: [2, 0, 0, 0, 0, ifindex as u8],
        mtu: 1500,
        up,
    };
    let gw6: IpAddr = "2001:db8::1".parse().unwrap();
    let gws = BTreeMap::from([(gw6, [2, 0, 0, 0, 0, 9])]);
    let mut links = BTreeMap::from([
        ("up0".to_string(), link(2, true)),
        ("up1".to_string(), link(3, true)),
        ("acc0".to_string(), link(4, true)),
    ]);
    let mut t = Tables::new(8, 64);
    t.set_interfaces(&config, &links, &gws).unwrap();
    let (up0, up1) = (t.interfaces()["up0"].slot, t.interfaces()["up1"].slot);
    // IPv4: up0 (static MAC) first; IPv6: only up1 has a resolved gateway.
    assert_eq!(t.take_changes().uplinks, uplinks(up0, up1));
    links.get_mut("up0").unwrap().up = false;
    t.set_interfaces(&config, &links, &gws).unwrap();
    assert_eq!(
        t.take_changes().uplinks,
        uplinks(0, up1),
        "up1's IPv4 gateway is unresolved"
    );
    let gws = BTreeMap::from([
        (gw6, [2, 0, 0, 0, 0, 9]),
        ("192.0.2.129".parse().unwrap(), [2, 0, 0, 0, 0, 8]),
    ]);
    t.set_interfaces(&config, &links, &gws).unwrap();
    assert_eq!(t.take_changes().uplinks, uplinks(up1, up1));
}

#[test]
fn router_addresses_are_local_unless_a_member_owns_them() {
    let mut t = tables(8);
    t.sync(&[member("a", &["198.51.100.0/24"], None)]).unwrap();
    t.set_locals(&[
        "198.51.100.1".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
    ])
    .unwrap();
    assert_eq!(lookup(&t, "198.51.100.1"), route::LOCAL);
    assert_eq!(lookup(&t, "198.51.100.2"), route::member_leaf(0));
    assert_eq!(lookup(&t, "127.0.0.1"), route::EMPTY, "loopback stays out");
    t.set_locals(&[]).unwrap();
    assert_eq!(lookup(&t, "198.51.100.1"), route::member_leaf(0));
}

/// A random prefix in a small space, so that prefixes nest and
/// overlap often; lengths cross the trie's levels and the unaligned ones.
fn random_prefix(rng: &mut impl rand::Rng) -> IpNet {
    use ipnet::{Ipv4Net, Ipv6Net};
    use std::net::{Ipv4Addr, Ipv6Addr};
    if rng.gen_bool(0.5) {
        let len = rng.gen_range(20..=32);
        let addr = Ipv4Addr::from(0xc633_6400 | rng.gen_range(0..4096u32));
        IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc())
    } else {
        let len = rng.gen_range(40..=64);
        let seg = rng.gen_range(0..4096u16);
        let addr = Ipv6Addr::new(0x2001, 0xdb8, seg >> 8, seg << 8, 0, 0, 0, 0);
        IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
    }
}

/// The checks of one member against the running tables (through the
/// prefix table) agree with the whole-set check and with brute force,
/// router addresses included (which hide parts of member prefixes).
#[test]
fn the_incremental_check_agrees_with_the_whole_set_check() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let access = std::collections::HashSet::from(["acc0"]);
    let (mut oks, mut errs) = (0, 0);
    for round in 0..1500 {
        let mut t = tables(64);
        let locals: Vec<IpAddr> = (0..rng.gen_range(0..6))
            .map(|_| {
                let p = random_prefix(&mut rng);
                // A host of the prefix.
                match p {
                    IpNet::V4(v) => IpAddr::V4(v.network()),
                    IpNet::V6(v) => IpAddr::V6(v.network()),
                }
            })
            .collect();
        t.set_locals(&locals).unwrap();
        let mut accepted: Vec<Member> = Vec::new();
        for i in 0..rng.gen_range(1..10) {
            // Sometimes a member replaces an earlier one.
            let id = if !accepted.is_empty() && rng.gen_bool(0.2) {
                accepted[rng.gen_range(0..accepted.len())].id.clone()
            } else {
                format!("m{i}")
            };
            let m = Member {
                prefixes: (0..rng.gen_range(1..3))
                    .map(|_| random_prefix(&mut rng))
                    .collect(),
                ..member(&id, &[], None)
            };
            if m.validate_fields().is_err() {
                continue;
            }
            let mut set: Vec<Member> = accepted.iter().filter(|a| a.id != m.id).cloned().collect();
            set.push(m.clone());
            let whole = crate::config::validate_members(&set, &access, 64);
            let all: Vec<IpNet> = set.iter().flat_map(|m| m.prefixes.clone()).collect();
            let brute = (0..all.len())
                .any(|i| (0..i).any(|j| all[i].contains(&all[j]) || all[j].contains(&all[i])));
            assert_eq!(whole.is_err(), brute, "round {round}: {set:?}: {whole:?}");
            let one = t.check_put(m.as_in(), Origin::Config);
            assert_eq!(
                one.is_err(),
                whole.is_err(),
                "round {round}, locals {locals:?}: {accepted:?} + {m:?}: {:?} vs {whole:?}",
                one.as_ref().err()
            );
            match one {
                Ok(c) => {
                    t.commit_put(c, m.as_in(), Origin::Config).unwrap();
                    accepted = set;
                    oks += 1;
                }
                Err(TablesError::Invalid(ConfigError::Member(MemberError::Overlap {
                    member,
                    prefix,
                    other_member,
                    other_prefix,
                }))) => {
                    // It names a real clash with another member.
                    assert_eq!(member, m.id);
                    assert!(prefix.contains(&other_prefix) || other_prefix.contains(&prefix));
                    let other = accepted.iter().find(|a| a.id == other_member).unwrap();
                    assert!(other.prefixes.contains(&other_prefix));
                    assert_ne!(other.id, m.id);
                    errs += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // The tables hold exactly the accepted members.
        assert_eq!(t.len(), accepted.len());
        for a in &accepted {
            let (_, v) = t.member(&a.id).unwrap();
            assert_eq!(v.to_member(), *a);
        }
    }
    assert!(oks > 1000 && errs > 1000, "{oks} {errs}");
}

/// A member prefix whose every address is a router address shows in
/// no entry of the prefix table; a member overlapping it is still
/// refused.
#[test]
fn a_prefix_hidden_by_router_addresses_still_clashes() {
    let mut t = tables(8);
    t.set_locals(&[
        "198.51.100.0".parse().unwrap(),
        "198.51.100.1".parse().unwrap(),
    ])
    .unwrap();
    t.set_member(&member("a", &["198.51.100.0/31"], None))
        .unwrap();
    assert_eq!(lookup(&t, "198.51.100.0"), route::LOCAL);
    assert_eq!(lookup(&t, "198.51.100.1"), route::LOCAL);
    for p in ["198.51.100.1/32", "198.51.100.0/32", "198.51.100.0/30"] {
        let e = t.set_member(&member("b", &[p], None)).unwrap_err();
        assert!(
            matches!(&e, TablesError::Invalid(ConfigError::Member(MemberError::Overlap { other_member, .. })) if other_member == "a"),
            "{p}: {e}"
        );
    }
    t.set_member(&member("b", &["198.51.100.2/31"], None))
        .unwrap();
}

/// The attachments where a member with an IPv6 prefix lives (what the
/// router advertisements follow): gained with the first such member, lost
/// with the last, whether it goes, moves or drops its IPv6 prefixes.
#[test]
fn ipv6_attachments_follow_members_with_ipv6_prefixes() {
    let mut t = tables(8);
    let v4 = member("v4", &["198.51.100.1/32"], Some(10));
    let v6 = member("v6", &["198.51.100.2/32", "2001:db8:1::/48"], Some(10));
    let other = member("other", &["2001:db8:2::/48"], Some(20));
    t.sync(std::slice::from_ref(&v4)).unwrap();
    assert_eq!(t.take_ipv6_attachment_changes(), vec![]);
    assert!(t.ipv6_attachments().is_empty());
    t.sync(&[v4.clone(), v6.clone(), other.clone()]).unwrap();
    assert_eq!(
        t.take_ipv6_attachment_changes(),
        vec![(key(2, 0, 10), true), (key(2, 0, 20), true)]
    );
    assert_eq!(t.ipv6_attachments(), vec![key(2, 0, 10), key(2, 0, 20)]);
    // Nothing changed: nothing to take, whatever the datapath takes.
    t.sync(&[v4.clone(), v6.clone(), other.clone()]).unwrap();
    t.take_changes();
    assert_eq!(t.take_ipv6_attachment_changes(), vec![]);
    // v6 drops its IPv6 prefix: VLAN 10 keeps only v4, which has none.
    let v6_without = member("v6", &["198.51.100.2/32"], Some(10));
    t.sync(&[v4.clone(), v6_without, other.clone()]).unwrap();
    assert_eq!(
        t.take_ipv6_attachment_changes(),
        vec![(key(2, 0, 10), false)]
    );
    // v6 gets it back and moves to VLAN 30 at once.
    let v6_moved = member("v6", &["198.51.100.2/32", "2001:db8:1::/48"], Some(30));
    t.sync(&[v4.clone(), v6_moved, other.clone()]).unwrap();
    assert_eq!(
        t.take_ipv6_attachment_changes(),
        vec![(key(2, 0, 30), true)]
    );
    // Two IPv6 members on one attachment: the attachment stays until the
    // last goes.
    let twin = member("twin", &["2001:db8:3::/48"], Some(30));
    t.sync(&[
        v4.clone(),
        member("v6", &["2001:db8:1::/48"], Some(30)),
        twin,
        other,
    ])
    .unwrap();
    assert_eq!(t.take_ipv6_attachment_changes(), vec![]);
    t.sync(&[v4.clone(), member("v6", &["2001:db8:1::/48"], Some(30))])
        .unwrap();
    assert_eq!(
        t.take_ipv6_attachment_changes(),
        vec![(key(2, 0, 20), false)]
    );
    t.sync(&[v4]).unwrap();
    assert_eq!(
        t.take_ipv6_attachment_changes(),
        vec![(key(2, 0, 30), false)]
    );
    assert!(t.ipv6_attachments().is_empty());
}

fn without_mac(id: &str, prefixes: &[&str], c_vlan: Option<u16>) -> Member {
    Member {
        mac: None,
        ..member(id, prefixes, c_vlan)
    }
}

/// The member info of `slot` in the changes (the last one written).
fn info(c: &Changes, slot: u32) -> MemberInfo {
    c.members
        .iter()
        .rev()
        .find(|(s, _)| *s == slot)
        .map(|(_, m)| *m)
        .expect("the member was written")
}

#[test]
fn a_member_without_mac_learns_and_relearns_its_cpe() {
    let mut t = tables(8);
    t.sync(&[without_mac("dave", &["198.51.100.8/32"], Some(7))])
        .unwrap();
    let slot = t.slot("dave").unwrap();
    let first = info(&t.take_changes(), slot);
    assert_eq!(
        first.flags & member_flags::HAS_MAC,
        0,
        "nothing learned yet"
    );
    assert_ne!(first.flags & member_flags::LEARN, 0);
    assert_eq!(first.flags & member_flags::CHECK_MAC, 0);
    let a = [2, 0, 0, 0, 0xaa, 1];
    assert_eq!(t.learn(slot, a), Learned::New { mac: a });
    let learned = info(&t.take_changes(), slot);
    assert_eq!(learned.mac, a);
    assert_ne!(learned.flags & member_flags::HAS_MAC, 0);
    assert_eq!(learned.flags & member_flags::CHECK_MAC, 0, "never checked");
    assert_eq!(t.learn(slot, a), Learned::Same);
    assert!(t.take_changes().members.is_empty(), "nothing to write");
    let b = [2, 0, 0, 0, 0xbb, 2];
    assert_eq!(t.learn(slot, b), Learned::Changed { old: a, mac: b });
    assert_eq!(info(&t.take_changes(), slot).mac, b);
    assert_eq!(t.learned_mac(slot), Some(b));
    // Another line: another CPE, the MAC is forgotten.
    t.sync(&[without_mac("dave", &["198.51.100.8/32"], Some(8))])
        .unwrap();
    assert_eq!(t.learned_mac(slot), None);
    assert_eq!(
        info(&t.take_changes(), slot).flags & member_flags::HAS_MAC,
        0
    );
}

#[test]
fn a_configured_mac_is_never_replaced_by_a_learned_one() {
    let mut t = tables(8);
    t.sync(&[member("alice", &["198.51.100.7/32"], None)])
        .unwrap();
    let slot = t.slot("alice").unwrap();
    t.take_changes();
    assert_eq!(t.learn(slot, [2, 0, 0, 0, 0xcc, 3]), Learned::Ignored);
    assert!(t.take_changes().members.is_empty());
    assert_eq!(
        t.learn(9, [2, 0, 0, 0, 0xcc, 3]),
        Learned::Ignored,
        "no member"
    );
    // Given a MAC, a member that learned one forgets it.
    t.sync(&[without_mac("alice", &["198.51.100.7/32"], None)])
        .unwrap();
    t.learn(slot, [2, 0, 0, 0, 0xdd, 4]);
    t.sync(&[member("alice", &["198.51.100.7/32"], None)])
        .unwrap();
    assert_eq!(t.learned_mac(slot), None);
    let m = info(&t.take_changes(), slot);
    assert_eq!(m.mac, [2, 0, 0, 0, 1, 1]);
    assert_ne!(m.flags & member_flags::CHECK_MAC, 0);
}

#[test]
fn learned_macs_come_back_only_to_the_slots_they_belonged_to() {
    let slots = BTreeMap::from([("dave".to_string(), 3u32)]);
    let mut t = Tables::with_slots(8, 64, slots, BTreeMap::new());
    let config = Config::parse(
        "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n[[access]]\ninterface = \"acc0\"\n",
    )
    .unwrap();
    t.set_interfaces(&config, &BTreeMap::new(), &BTreeMap::new())
        .unwrap();
    t.sync(&[
        without_mac("dave", &["198.51.100.8/32"], Some(7)),
        without_mac("erin", &["198.51.100.9/32"], Some(9)),
    ])
    .unwrap();
    let erin = t.slot("erin").unwrap();
    assert_eq!(t.slot("dave"), Some(3));
    let kept = [2, 0, 0, 0, 0xd0, 1];
    // erin's slot is new: what the pins held there was someone else's.
    let n = t.restore_learned([(3, kept), (erin, [2, 0, 0, 0, 0xe0, 1])]);
    assert_eq!(n, 1);
    assert_eq!(t.learned_mac(3), Some(kept));
    assert_eq!(t.learned_mac(erin), None);
    let full = t.full_state();
    let dave = full.members.iter().find(|(s, _)| *s == 3).unwrap().1;
    assert_eq!(dave.mac, kept);
}

#[test]
fn a_session_member_is_pppoe_with_its_client_mac_checked() {
    let mut t = tables(8);
    t.sync(&[member("carol", &["198.51.100.7/32"], None)])
        .unwrap();
    let client = MacAddr([2, 0, 0, 0, 0x5e, 1]);
    let pat = Member {
        mac: Some(client),
        ..member(
            "pat@isp.example",
            &["198.51.100.9/32", "2001:db8:9::/48"],
            Some(100),
        )
    };
    let checked = t.check_put(pat.as_in(), Origin::Session).unwrap();
    t.commit_put(checked, pat.as_in(), Origin::Session).unwrap();
    let slot = t.slot("pat@isp.example").unwrap();
    let changes = t.take_changes();
    let m = info(&changes, slot);
    assert_eq!(m.mac, client.0);
    assert_eq!(m.c_vlan, 100);
    let want = member_flags::PRESENT
        | member_flags::PPPOE
        | member_flags::HAS_MAC
        | member_flags::CHECK_MAC;
    assert_eq!(m.flags, want);
    let carol = t.slot("carol").unwrap();
    assert_eq!(
        t.full_state()
            .members
            .iter()
            .find(|(s, _)| *s == carol)
            .unwrap()
            .1
            .flags
            & member_flags::PPPOE,
        0
    );
    assert_eq!(t.store().count(Origin::Session), 1);
    assert_eq!(t.store().count(Origin::Config), 1);
    // It learns nothing.
    assert_eq!(t.learn(slot, [2, 0, 0, 0, 0xcc, 3]), Learned::Ignored);
    // A config sync leaves it alone; an id taken by another origin refuses it.
    let parts_batch = batch_of(
        &[member("carol", &["198.51.100.7/32"], None)],
        Origin::Config,
    )
    .unwrap();
    let parts = [Part::of(Origin::Config, &parts_batch)];
    let checked = t.check_replace(&parts).unwrap();
    t.commit_replace(checked, &parts).unwrap();
    assert_eq!(t.slot("pat@isp.example"), Some(slot));
    let clash = member("carol", &["198.51.100.20/32"], None);
    assert!(t.check_put(clash.as_in(), Origin::Session).is_err());
    // An overlapping prefix refuses the session.
    let over = member("sam@isp.example", &["198.51.100.7/32"], None);
    let Err(err) = t.check_put(over.as_in(), Origin::Session) else {
        panic!("an overlapping session member was accepted");
    };
    assert!(err.to_string().contains("carol"), "{err}");
}
