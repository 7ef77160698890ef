//! Where the tags of the tc-tagged members (`tests::stacks`) go, measured
//! with no daemon: `tag_probe` (native XDP on the router's `acc0`) counts
//! frames by the tags in their data, which is what the router's XDP program
//! sees; a raw socket on `acc0` sends full-size QinQ frames to carol's real
//! stack and receives her answers.
//!
//! These tests pin down the findings written in `tests::stacks`' module
//! doc: with tx VLAN offload off on the switch's port towards the router,
//! both tags of a QinQ member reach the router in band; with it on (even
//! with the member's own offload off) the outer tag stays in the skb's
//! metadata and the router's XDP never sees it; a full-size (1496-byte) QinQ
//! packet crosses both ways, unless the member's switch port writes the
//! outer tag into the frame, which makes it 4 bytes too long for her veth;
//! a Router Advertisement sent on a member's tags reaches that member
//! alone, whose kernel takes its default route from it (what issue 13's
//! RA test will expect from the router).
use std::time::Duration;

use tests::{
    frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ether, ipv4_icmp_echo, mac},
    stacks::{
        Gateway6, Options, Stacks, TXVLAN_OFF,
        plan::*,
        ra::{ALL_NODES_MAC, default_route_from_ra, router_advertisement},
        tools::ping,
    },
    tag_probe::TagProbe,
    tagged::{RawPort, l3},
    topology::wait_for,
};

const SEC: Duration = Duration::from_secs(1);
const BOB: [(u16, u16); 1] = [(ETH_P_8021Q, 101)];
const CAROL: [(u16, u16); 2] = [(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)];
/// carol's frames with their outer tag lost (left in metadata).
const CAROL_INNER_ONLY: [(u16, u16); 1] = [(ETH_P_8021Q, 102)];

/// A site with its members plugged in and no daemon; the probe on acc0.
fn site(tag: &str, opts: Options) -> (Stacks, TagProbe) {
    let s = Stacks::new(tag, opts);
    let probe = TagProbe::attach(&s.router, ACCESS);
    s.plug();
    (s, probe)
}

/// 20 echo requests from each tagged member to its gateway: they reach
/// acc0 (the router's kernel cannot answer them: it has no 802.1Q).
fn ping_gateway_from_tagged(s: &Stacks) {
    for id in ["bob", "carol"] {
        let p = ping(&s.member(id).ns, &ACC_GW4.to_string(), 20, &[]);
        assert_eq!(p.sent, 20, "{id}'s ping did not send:\n{}", p.ran);
    }
}

#[test]
fn qinq_tags_reach_the_router_in_band() {
    let (s, probe) = site("tagsin", Options::today(9601));
    ping_gateway_from_tagged(&s);
    let seen = wait_for(5 * SEC, || {
        let seen = probe.seen();
        (seen.get(&CAROL[..]).copied().unwrap_or(0) >= 20
            && seen.get(&BOB[..]).copied().unwrap_or(0) >= 20)
            .then_some(seen)
    });
    let seen = seen.unwrap_or_else(|| {
        panic!(
            "acc0's XDP did not see bob's and carol's echo requests with their tags in band: {:?}{}",
            probe.seen(),
            s.diagnose(None)
        )
    });
    assert_eq!(
        probe.count(&CAROL_INNER_ONLY),
        0,
        "some of carol's frames reached acc0's XDP without their outer tag: {seen:?}"
    );
    eprintln!("acc0's XDP saw, by in-band tags: {seen:?}");
}

#[test]
fn outer_tag_stays_in_metadata_when_the_uplink_port_offloads_it() {
    // The member's own offload off, the switch port's towards the router
    // left on: the bridge port takes the tag out of the frame again.
    let opts = Options {
        uplink_txvlan_off: false,
        member_txvlan_off: true,
        ..Options::today(9602)
    };
    let (s, probe) = site("tagsmeta", opts);
    ping_gateway_from_tagged(&s);
    let seen = wait_for(5 * SEC, || {
        let seen = probe.seen();
        (seen.get(&CAROL_INNER_ONLY[..]).copied().unwrap_or(0) >= 20).then_some(seen)
    });
    assert!(
        seen.is_some(),
        "carol's frames were expected at acc0's XDP with only their inner tag in band: {:?}{}",
        probe.seen(),
        s.diagnose(None)
    );
    assert_eq!(
        probe.count(&CAROL),
        0,
        "with tx VLAN offload on sw0, carol's outer tag reached the XDP in band: {:?}",
        probe.seen()
    );
    eprintln!("acc0's XDP saw, by in-band tags: {:?}", probe.seen());
}

/// Sends carol a QinQ echo request of `size` IP bytes from acc0's raw
/// socket; returns her reply as received on acc0, if any.
fn full_size_echo(s: &Stacks, port: &RawPort, size: usize, marker: u8) -> Option<Vec<u8>> {
    let c = s.member("carol");
    let payload = vec![marker; size - 28];
    let ip = ipv4_icmp_echo(ACC_GW4, c.spec.host4, 64, &payload);
    assert_eq!(ip.len(), size);
    port.drain();
    port.send(&ether(
        mac(c.spec.mac),
        mac(ACC0_MAC),
        &CAROL,
        ETH_P_IP,
        &ip,
    ));
    port.recv_matching(2 * SEC, |f| {
        f.len() > 14 + 8 + 28 + 4
            && f[6..12] == mac(c.spec.mac)
            && l3(f).is_some_and(|(off, et)| {
                et == ETH_P_IP && f[off + 20] == 0 && f.get(off + 28) == Some(&marker)
            })
    })
}

#[test]
fn full_size_qinq_frames_cross_both_ways() {
    let (s, probe) = site("tagsfull", Options::today(9603));
    let c = s.member("carol");
    assert_eq!(c.mtu, 1496);
    // A packet socket sends at most MTU + 14 bytes (+ 4 for one 802.1Q
    // tag): 1504 lets it send 1496 + 14 + 8. The switch's side keeps 1500,
    // so the link still takes at most 1500 + 14 + 4 bytes, as with XDP.
    s.router.ip(&["link", "set", ACCESS, "mtu", "1504"]);
    let port = RawPort::open(s.router.name(), ACCESS);
    let before = c.tc.counts();
    let reply = full_size_echo(&s, &port, 1496, 0xa5).unwrap_or_else(|| {
        panic!(
            "no echo reply from carol to a 1496-byte QinQ echo request{}",
            s.diagnose(None)
        )
    });
    assert_eq!(reply.len(), 14 + 8 + 1496, "carol's reply frame");
    assert_eq!(&reply[12..20], &[0x88, 0xa8, 0, 10, 0x81, 0, 0, 102]);
    assert!(probe.count(&CAROL) >= 1, "{:?}", probe.seen());
    let after = c.tc.counts();
    // The kernel moved the outer tag into metadata before tc saw it.
    assert!(
        after.accepted > before.accepted
            && after.outer_in_meta > before.outer_in_meta
            && after.outer_in_data == 0,
        "carol's vlan_pop: {before:?} -> {after:?}"
    );

    // carol's switch port writing the outer tag into the frame: 1518 bytes
    // reach a veth whose MTU (1496) lets in 1496 + 14 + 4, and are dropped.
    let mut args = vec!["-K", c.port.as_str()];
    args.extend(TXVLAN_OFF);
    let out = s.switch.exec("ethtool", &args);
    assert!(out.status.success(), "ethtool {}", args.join(" "));
    let dropped0 = tx_dropped(&s.switch, &c.port);
    let reply = full_size_echo(&s, &port, 1496, 0x5a);
    assert!(
        reply.is_none(),
        "a 1518-byte frame reached carol through a port without tx VLAN offload"
    );
    assert_eq!(
        tx_dropped(&s.switch, &c.port),
        dropped0 + 1,
        "{} did not count the frame it could not deliver{}",
        c.port,
        s.diagnose(None)
    );
    // 4 bytes less fit.
    let reply = full_size_echo(&s, &port, 1492, 0x5b).unwrap_or_else(|| {
        panic!(
            "no echo reply from carol to a 1492-byte QinQ echo request{}",
            s.diagnose(None)
        )
    });
    assert_eq!(reply.len(), 14 + 8 + 1492);
}

/// The transmit drops of `dev` in `ns`.
fn tx_dropped(ns: &tests::Netns, dev: &str) -> u64 {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", dev]);
    let j: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    j[0]["stats64"]["tx"]["dropped"]
        .as_u64()
        .unwrap_or_else(|| panic!("no tx dropped counter for {dev}: {out}"))
}

/// An RA on each member's tags in turn (from a raw socket on acc0, as the
/// router will send them): that member alone takes its IPv6 default route
/// from it; the others' vlan_pop drop it.
#[test]
fn router_advertisements_reach_each_member_on_its_tags() {
    let opts = Options {
        gateway6: Gateway6::FromRa,
        ..Options::today(9604)
    };
    let (s, _probe) = site("tagsra", opts);
    let port = RawPort::open(s.router.name(), ACCESS);
    let ra = router_advertisement(ACC_LL6, ACC0_MAC, 1800);
    let routers = [ACC_LL6];
    let mut done: Vec<&str> = Vec::new();
    for id in ["bob", "carol", "alice"] {
        let m = s.member(id);
        port.send(&ether(
            mac(ALL_NODES_MAC),
            mac(ACC0_MAC),
            &m.spec.tags(),
            ETH_P_IPV6,
            &ra,
        ));
        let mut shown = String::new();
        let route = wait_for(5 * SEC, || {
            let (route, out) = default_route_from_ra(&m.ns, &routers);
            shown = out;
            route
        });
        assert!(
            route.is_some(),
            "{id} took no default route from an RA on its tags; `ip -6 route show default`:\n{shown}{}",
            s.diagnose(None)
        );
        done.push(id);
        for other in s.members.iter().filter(|o| !done.contains(&o.id())) {
            let (route, out) = default_route_from_ra(&other.ns, &routers);
            assert!(
                route.is_none(),
                "{} took a default route from an RA sent on {id}'s tags:\n{out}",
                other.id()
            );
        }
    }
}
