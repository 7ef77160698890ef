//! The datapath fixture table: each row is an input frame, the expected
//! action and reason, the expected output frame (byte-exact; IPv4 checksums
//! verified by recomputation) and the expected counter changes. Every row
//! runs through the real program with `BPF_PROG_TEST_RUN`, in the forwarding
//! instance and in the tracer's.
use std::net::{Ipv4Addr, Ipv6Addr};

use collecte::datapath::action::{DROP, PASS, REDIRECT};
use router_common::{MemberCounters, reason};
use tests::{
    frames::{
        ETH_P_8021AD, ETH_P_8021Q, ETH_P_9100, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ether, ipv4_header,
        ipv4_packet, ipv4_udp, ipv6_udp, mac, next_hop,
    },
    harness::{Fixture, Harness},
};

const CONFIG: &str = r#"
[datapath]
max_members = 64
route_groups = 64

[[uplink]]
interface = "up0"
gateway4 = "192.0.2.1"
gateway6 = "2001:db8::1"
gateway_mac = "02:00:00:00:00:01"

[[uplink]]
interface = "up1"
gateway4 = "192.0.2.129"
gateway_mac = "02:00:00:00:00:02"
vlan = 200

[[access]]
interface = "acc0"

[[access]]
interface = "acc1"

[[member]]
id = "alice"
interface = "acc0"
mac = "02:00:00:00:01:01"
prefixes = ["198.51.100.7/32", "2001:db8:100::/48"]

[[member]]
id = "bob"
interface = "acc0"
c_vlan = 101
mac = "02:00:00:00:01:02"
prefixes = ["198.51.100.16/29", "2001:db8:200::/56"]

[[member]]
id = "carol"
interface = "acc1"
s_vlan = 10
c_vlan = 102
mac = "02:00:00:00:01:03"
prefixes = ["203.0.113.0/24", "2001:db8:300::/64"]

[[member]]
id = "dave"
interface = "acc0"
prefixes = ["198.51.100.8/32"]
"#;

// The router's interfaces (see tests::harness::IFACES).
const UP0: &str = "02:00:00:00:00:10";
const UP1: &str = "02:00:00:00:00:11";
const ACC0: &str = "02:00:00:00:00:20";
const ACC1: &str = "02:00:00:00:00:21";
const GW: &str = "02:00:00:00:00:01";
const GW_TAGGED: &str = "02:00:00:00:00:02";
const ALICE: &str = "02:00:00:00:01:01";
const BOB: &str = "02:00:00:00:01:02";
const CAROL: &str = "02:00:00:00:01:03";
const REMOTE: &str = "02:00:00:00:09:09";

const ALICE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const BOB4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 17);
const CAROL4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
const DAVE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
const INTERNET4: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("IPv6 literal")
}

fn rx(bytes: usize) -> MemberCounters {
    MemberCounters {
        rx_packets: 1,
        rx_bytes: bytes as u64,
        ..Default::default()
    }
}

fn tx(bytes: usize) -> MemberCounters {
    MemberCounters {
        tx_packets: 1,
        tx_bytes: bytes as u64,
        ..Default::default()
    }
}

fn spoofed() -> MemberCounters {
    MemberCounters {
        spoofed_packets: 1,
        ..Default::default()
    }
}

/// A row whose frame goes to the kernel or is dropped unchanged.
fn unchanged(
    name: &str,
    ingress: &'static str,
    input: Vec<u8>,
    action: u32,
    reason: u32,
    members: Vec<(&'static str, MemberCounters)>,
) -> Fixture {
    Fixture {
        name: name.to_string(),
        ingress,
        output: input.clone(),
        input,
        action,
        reason,
        egress: None,
        members,
    }
}

fn ethertype(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 { ETH_P_IPV6 } else { ETH_P_IP }
}

/// A row whose IP packet `ip` is forwarded: `in_*` describe the frame that
/// arrives, `out_*` the frame that must leave.
#[allow(clippy::too_many_arguments)]
fn forwarded(
    name: &str,
    ingress: &'static str,
    (in_dst, in_src, in_tags): (&str, &str, &[(u16, u16)]),
    ip: &[u8],
    egress: &'static str,
    (out_dst, out_src, out_tags): (&str, &str, &[(u16, u16)]),
    reason: u32,
    members: Vec<(&'static str, MemberCounters)>,
) -> Fixture {
    let t = ethertype(ip);
    Fixture {
        name: name.to_string(),
        ingress,
        input: ether(mac(in_dst), mac(in_src), in_tags, t, ip),
        action: REDIRECT,
        reason,
        output: ether(mac(out_dst), mac(out_src), out_tags, t, &next_hop(ip)),
        egress: Some(egress),
        members,
    }
}

fn table() -> Vec<Fixture> {
    let payload = [0xabu8; 18];
    let down4 = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    let down6 = ipv6_udp(v6("2001:db8:ffff::1"), v6("2001:db8:100::7"), 64, &payload);
    let up4 = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let up6 = ipv6_udp(v6("2001:db8:100::7"), v6("2001:4860::8888"), 64, &payload);
    let mut t = vec![
        forwarded(
            "downstream IPv4 to an untagged member",
            "up0",
            (UP0, REMOTE, &[]),
            &down4,
            "acc0",
            (ALICE, ACC0, &[]),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down4.len()))],
        ),
        forwarded(
            "downstream IPv6 to an untagged member",
            "up0",
            (UP0, REMOTE, &[]),
            &down6,
            "acc0",
            (ALICE, ACC0, &[]),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down6.len()))],
        ),
        forwarded(
            "upstream IPv4 from an untagged member",
            "acc0",
            (ACC0, ALICE, &[]),
            &up4,
            "up0",
            (GW, UP0, &[]),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(up4.len()))],
        ),
        forwarded(
            "upstream IPv6 from an untagged member",
            "acc0",
            (ACC0, ALICE, &[]),
            &up6,
            "up0",
            (GW, UP0, &[]),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(up6.len()))],
        ),
    ];
    let bob_down = ipv4_udp(INTERNET4, BOB4, 64, &payload);
    t.push(forwarded(
        "downstream IPv4 to an 802.1Q member pushes its tag",
        "up0",
        (UP0, REMOTE, &[]),
        &bob_down,
        "acc0",
        (BOB, ACC0, &[(ETH_P_8021Q, 101)]),
        reason::FWD_DOWNSTREAM,
        vec![("bob", tx(bob_down.len()))],
    ));
    let carol_down = ipv4_udp(INTERNET4, CAROL4, 64, &payload);
    t.push(forwarded(
        "downstream IPv4 to a QinQ member pushes S- and C-tags",
        "up0",
        (UP0, REMOTE, &[]),
        &carol_down,
        "acc1",
        (CAROL, ACC1, &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)]),
        reason::FWD_DOWNSTREAM,
        vec![("carol", tx(carol_down.len()))],
    ));
    let carol_up = ipv4_udp(CAROL4, INTERNET4, 64, &payload);
    t.push(forwarded(
        "upstream IPv4 from a QinQ member pops both tags",
        "acc1",
        (ACC1, CAROL, &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)]),
        &carol_up,
        "up0",
        (GW, UP0, &[]),
        reason::FWD_UPSTREAM,
        vec![("carol", rx(carol_up.len()))],
    ));
    let hairpin = ipv4_udp(ALICE4, CAROL4, 64, &payload);
    t.push(forwarded(
        "hairpin from an untagged member to a QinQ member",
        "acc0",
        (ACC0, ALICE, &[]),
        &hairpin,
        "acc1",
        (CAROL, ACC1, &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)]),
        reason::FWD_HAIRPIN,
        vec![("alice", rx(hairpin.len())), ("carol", tx(hairpin.len()))],
    ));
    let tagged_up_down = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    t.push(forwarded(
        "downstream from a tagged uplink pops its tag",
        "up1",
        (UP1, REMOTE, &[(ETH_P_8021Q, 200)]),
        &tagged_up_down,
        "acc0",
        (ALICE, ACC0, &[]),
        reason::FWD_DOWNSTREAM,
        vec![("alice", tx(tagged_up_down.len()))],
    ));
    t.push(unchanged(
        "ARP goes to the kernel",
        "acc0",
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_ARP, &[0u8; 28]),
        PASS,
        reason::PASS_NOT_IP,
        vec![],
    ));
    t.push(unchanged(
        "TTL 1 downstream goes to the kernel for its ICMP error",
        "up0",
        ether(mac(UP0), mac(REMOTE), &[], ETH_P_IP, &ipv4_udp(INTERNET4, ALICE4, 1, &payload)),
        PASS,
        reason::PASS_TTL_EXCEEDED,
        vec![],
    ));
    let spoof = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    t.push(unchanged(
        "an untagged member sending from a tagged member's prefix is spoofing",
        "acc0",
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &spoof),
        DROP,
        reason::DROP_SPOOFED,
        vec![],
    ));
    let spoof_tagged = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    t.push(unchanged(
        "a tagged member sending from another member's prefix is spoofing, and counted",
        "acc0",
        ether(mac(ACC0), mac(BOB), &[(ETH_P_8021Q, 101)], ETH_P_IP, &spoof_tagged),
        DROP,
        reason::DROP_SPOOFED,
        vec![("bob", spoofed())],
    ));
    t.push(unchanged(
        "a bare Ethernet header announcing IPv4 is malformed",
        "acc0",
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &[]),
        DROP,
        reason::DROP_MALFORMED,
        vec![],
    ));
    let _ = (ipv4_header, ipv4_packet, ETH_P_9100, GW_TAGGED, DAVE4);
    t
}

#[test]
fn datapath_fixtures() {
    let mut h = Harness::new("fixtures", CONFIG);
    let t = table();
    h.run_table(&t);
}
