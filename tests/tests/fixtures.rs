//! The datapath fixture table: each row is an input frame, the expected
//! action and reason, the expected output frame (byte-exact; IPv4 checksums
//! verified by recomputation) and the expected counter changes. Every row
//! runs through the real program with `BPF_PROG_TEST_RUN`, in the forwarding
//! instance and in the tracer's.
//!
//! Three topologies: [`CONFIG`] (untagged uplink up0 carries both families,
//! tagged up1 is second), [`CONFIG_TAGGED_UPLINK`] (tagged up1 is the only
//! uplink, up0 is left unconfigured) and [`CONFIG_PARTIAL_GATEWAYS`] (no
//! usable IPv4 gateway).
use std::net::{Ipv4Addr, Ipv6Addr};

use collecte::datapath::action::{DROP, PASS, REDIRECT};
use etherparse::{IpFragOffset, IpNumber};
use router_common::{MemberCounters, reason};
use tests::{
    frames::{
        ETH_P_8021AD, ETH_P_8021Q, ETH_P_9100, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ether, ipv4_header,
        ipv4_icmp_echo, ipv4_packet, ipv4_raw, ipv4_tcp, ipv4_udp, ipv6_icmp_echo, ipv6_raw,
        ipv6_udp, mac, next_hop, pad, set_ipv4_checksum,
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

/// The tagged uplink up1 carries both families and is the only uplink; up0
/// is not configured at all (frames from it meet the unknown-interface slot).
const CONFIG_TAGGED_UPLINK: &str = r#"
[datapath]
max_members = 64
route_groups = 64

[[uplink]]
interface = "up1"
gateway4 = "192.0.2.129"
gateway6 = "2001:db8:1::1"
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
"#;

/// up0 has only an IPv6 gateway; up1's IPv4 gateway has no MAC (none is
/// configured and the harness resolves none): IPv4 has no uplink at all.
const CONFIG_PARTIAL_GATEWAYS: &str = r#"
[datapath]
max_members = 64
route_groups = 64

[[uplink]]
interface = "up0"
gateway6 = "2001:db8::1"
gateway_mac = "02:00:00:00:00:01"

[[uplink]]
interface = "up1"
gateway4 = "192.0.2.129"
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
/// Whatever dave's CPE uses: dave has no MAC in the configuration.
const DAVE: &str = "02:00:00:00:01:04";
const REMOTE: &str = "02:00:00:00:09:09";
const STRANGER: &str = "02:00:00:00:0e:0e";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

const UNTAGGED: &[(u16, u16)] = &[];
const BOB_TAG: &[(u16, u16)] = &[(ETH_P_8021Q, 101)];
const CAROL_TAGS: &[(u16, u16)] = &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)];
const UP1_TAG: &[(u16, u16)] = &[(ETH_P_8021Q, 200)];

const ALICE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const BOB4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 17);
/// The last address of bob's 198.51.100.16/29.
const BOB4_LAST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 23);
/// The address right after bob's /29: nobody's.
const BOB4_NEXT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 24);
const CAROL4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
const DAVE4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
const INTERNET4: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
/// The router's address on up0.
const ROUTER_UP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The router's address on acc0.
const ROUTER_ACC4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

const ALICE6: &str = "2001:db8:100::7";
const BOB6: &str = "2001:db8:200::17";
const CAROL6: &str = "2001:db8:300::50";
const INTERNET6: &str = "2001:4860::8888";
const REMOTE6: &str = "2001:db8:ffff::1";
const ROUTER_UP6: &str = "2001:db8::2";

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

/// [`unchanged`] for frames handed to the kernel.
fn pass(
    name: &str,
    ingress: &'static str,
    input: Vec<u8>,
    reason: u32,
    members: Vec<(&'static str, MemberCounters)>,
) -> Fixture {
    unchanged(name, ingress, input, PASS, reason, members)
}

/// [`unchanged`] for frames dropped as malformed (nobody counted).
fn malformed(name: &str, ingress: &'static str, input: Vec<u8>) -> Fixture {
    unchanged(name, ingress, input, DROP, reason::DROP_MALFORMED, vec![])
}

/// [`unchanged`] for frames dropped as spoofed.
fn spoof(
    name: &str,
    ingress: &'static str,
    input: Vec<u8>,
    members: Vec<(&'static str, MemberCounters)>,
) -> Fixture {
    unchanged(name, ingress, input, DROP, reason::DROP_SPOOFED, members)
}

fn ethertype(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        ETH_P_IPV6
    } else {
        ETH_P_IP
    }
}

/// An Ethernet frame around the IP packet `ip`.
fn frame(dst: &str, src: &str, tags: &[(u16, u16)], ip: &[u8]) -> Vec<u8> {
    ether(mac(dst), mac(src), tags, ethertype(ip), ip)
}

/// The first `len` bytes of `frame`: a runt.
fn cut(frame: &[u8], len: usize) -> Vec<u8> {
    assert!(len >= 14 && len < frame.len(), "a cut of {len} bytes");
    frame[..len].to_vec()
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

/// A UDP-in-IPv4 packet of exactly `total` bytes.
fn ipv4_sized(src: Ipv4Addr, dst: Ipv4Addr, total: usize) -> Vec<u8> {
    let ip = ipv4_udp(src, dst, 64, &vec![0x5a; total - 28]);
    assert_eq!(ip.len(), total);
    ip
}

/// A UDP-in-IPv6 packet of exactly `total` bytes.
fn ipv6_sized(src: &str, dst: &str, total: usize) -> Vec<u8> {
    let ip = ipv6_udp(v6(src), v6(dst), 64, &vec![0x5a; total - 48]);
    assert_eq!(ip.len(), total);
    ip
}

/// A UDP-in-IPv4 packet carrying `options` in its header.
fn ipv4_with_options(src: Ipv4Addr, dst: Ipv4Addr, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut h = ipv4_header(src, dst, 64, payload.len());
    h.options = options.try_into().expect("IPv4 options of 4..=40 bytes");
    let ip = ipv4_packet(h, payload);
    assert_eq!(ip[0] & 0x0f, 5 + options.len() as u8 / 4, "IHL");
    ip
}

/// A UDP-in-IPv4 packet (identification varied) whose header checksum, or
/// the checksum one hop later, is 0x0000.
fn ipv4_zero_checksum(src: Ipv4Addr, dst: Ipv4Addr, after_hop: bool) -> Vec<u8> {
    let payload = [0x11u8; 10];
    for id in 0..=u16::MAX {
        let mut h = ipv4_header(src, dst, 64, payload.len());
        h.identification = id;
        let ip = ipv4_packet(h, &payload);
        let check = if after_hop { next_hop(&ip) } else { ip.clone() };
        if check[10..12] == [0, 0] {
            return ip;
        }
    }
    panic!("no identification gives a zero checksum");
}

/// Record Route filling the 40 bytes of options (IHL 15): type 7, length
/// 39, pointer 4, nine empty slots, then End of Options.
fn record_route_options() -> Vec<u8> {
    let mut o = vec![7, 39, 4];
    o.extend_from_slice(&[0; 36]);
    o.push(0);
    o
}

// ---------------------------------------------------------------------------
// CONFIG: untagged up0 (both families), tagged up1, four members
// ---------------------------------------------------------------------------

/// Both directions, both families, for untagged, 802.1Q and QinQ members.
fn directions() -> Vec<Fixture> {
    let payload = [0xabu8; 18];
    let down4 = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    let down6 = ipv6_udp(v6(REMOTE6), v6(ALICE6), 64, &payload);
    let up4 = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let up6 = ipv6_udp(v6(ALICE6), v6(INTERNET6), 64, &payload);
    let bob_down4 = ipv4_udp(INTERNET4, BOB4, 64, &payload);
    let bob_down6 = ipv6_udp(v6(REMOTE6), v6(BOB6), 64, &payload);
    let bob_up4 = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    let bob_up6 = ipv6_udp(v6(BOB6), v6(INTERNET6), 64, &payload);
    let carol_down4 = ipv4_udp(INTERNET4, CAROL4, 64, &payload);
    let carol_down6 = ipv6_udp(v6(REMOTE6), v6(CAROL6), 64, &payload);
    let carol_up4 = ipv4_udp(CAROL4, INTERNET4, 64, &payload);
    let carol_up6 = ipv6_udp(v6(CAROL6), v6(INTERNET6), 64, &payload);
    let tagged_up_down4 = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    let tagged_up_down6 = ipv6_udp(v6(REMOTE6), v6(CAROL6), 64, &payload);
    let dave_up = ipv4_udp(DAVE4, INTERNET4, 64, &payload);
    let bob_edge_down = ipv4_udp(INTERNET4, BOB4_LAST, 64, &payload);
    let bob_edge_up = ipv4_udp(BOB4_LAST, INTERNET4, 64, &payload);
    let bob_far6 = ipv6_udp(v6(REMOTE6), v6("2001:db8:200:ff::1"), 64, &payload);
    let carol_far6 = ipv6_udp(
        v6(REMOTE6),
        v6("2001:db8:300:0:ffff:ffff:ffff:ffff"),
        64,
        &payload,
    );
    vec![
        forwarded(
            "downstream IPv4 to an untagged member",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &down4,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down4.len()))],
        ),
        forwarded(
            "downstream IPv6 to an untagged member",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &down6,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down6.len()))],
        ),
        forwarded(
            "upstream IPv4 from an untagged member",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &up4,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(up4.len()))],
        ),
        forwarded(
            "upstream IPv6 from an untagged member",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &up6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(up6.len()))],
        ),
        forwarded(
            "downstream IPv4 to an 802.1Q member pushes its tag",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &bob_down4,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(bob_down4.len()))],
        ),
        forwarded(
            "downstream IPv6 to an 802.1Q member pushes its tag",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &bob_down6,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(bob_down6.len()))],
        ),
        forwarded(
            "upstream IPv4 from an 802.1Q member pops its tag",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_up4,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up4.len()))],
        ),
        forwarded(
            "upstream IPv6 from an 802.1Q member pops its tag",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_up6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up6.len()))],
        ),
        forwarded(
            "downstream IPv4 to a QinQ member pushes S- and C-tags",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &carol_down4,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(carol_down4.len()))],
        ),
        forwarded(
            "downstream IPv6 to a QinQ member pushes S- and C-tags",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &carol_down6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(carol_down6.len()))],
        ),
        forwarded(
            "upstream IPv4 from a QinQ member pops both tags",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_up4,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_up4.len()))],
        ),
        forwarded(
            "upstream IPv6 from a QinQ member pops both tags",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_up6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_up6.len()))],
        ),
        forwarded(
            "downstream IPv4 from the tagged uplink pops its tag",
            "up1",
            (UP1, REMOTE, UP1_TAG),
            &tagged_up_down4,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(tagged_up_down4.len()))],
        ),
        forwarded(
            "downstream IPv6 from the tagged uplink (no IPv6 gateway there) swaps its tag for S- and C-tags",
            "up1",
            (UP1, REMOTE, UP1_TAG),
            &tagged_up_down6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(tagged_up_down6.len()))],
        ),
        forwarded(
            "upstream IPv4 from a member without MAC (dave), any source MAC, is accepted",
            "acc0",
            (ACC0, DAVE, UNTAGGED),
            &dave_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("dave", rx(dave_up.len()))],
        ),
        forwarded(
            "downstream IPv4 to the last address of an 802.1Q member's /29",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &bob_edge_down,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(bob_edge_down.len()))],
        ),
        forwarded(
            "upstream IPv4 from the last address of an 802.1Q member's /29",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_edge_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_edge_up.len()))],
        ),
        forwarded(
            "downstream IPv6 to the last /64 of an 802.1Q member's /56",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &bob_far6,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(bob_far6.len()))],
        ),
        forwarded(
            "downstream IPv6 to the last address of a QinQ member's /64",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &carol_far6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(carol_far6.len()))],
        ),
    ]
}

/// Member to member, through the router.
fn hairpins() -> Vec<Fixture> {
    let payload = [0xcdu8; 18];
    let alice_carol = ipv4_udp(ALICE4, CAROL4, 64, &payload);
    let carol_alice = ipv4_udp(CAROL4, ALICE4, 64, &payload);
    let bob_carol6 = ipv6_udp(v6(BOB6), v6(CAROL6), 64, &payload);
    let carol_bob = ipv4_udp(CAROL4, BOB4, 64, &payload);
    let alice_bob6 = ipv6_udp(v6(ALICE6), v6(BOB6), 64, &payload);
    let bob_alice = ipv4_udp(BOB4, ALICE4, 64, &payload);
    let alice_dave = ipv4_udp(ALICE4, DAVE4, 64, &payload);
    vec![
        forwarded(
            "hairpin IPv4 from an untagged member to a QinQ member",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &alice_carol,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_HAIRPIN,
            vec![
                ("alice", rx(alice_carol.len())),
                ("carol", tx(alice_carol.len())),
            ],
        ),
        forwarded(
            "hairpin IPv4 from a QinQ member to an untagged member",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_alice,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_HAIRPIN,
            vec![
                ("carol", rx(carol_alice.len())),
                ("alice", tx(carol_alice.len())),
            ],
        ),
        forwarded(
            "hairpin IPv6 from an 802.1Q member to a QinQ member (tagged to tagged)",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_carol6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_HAIRPIN,
            vec![
                ("bob", rx(bob_carol6.len())),
                ("carol", tx(bob_carol6.len())),
            ],
        ),
        forwarded(
            "hairpin IPv4 from a QinQ member to an 802.1Q member (tagged to tagged)",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_bob,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_HAIRPIN,
            vec![("carol", rx(carol_bob.len())), ("bob", tx(carol_bob.len()))],
        ),
        forwarded(
            "hairpin IPv6 from an untagged member to an 802.1Q member on the same interface",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &alice_bob6,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_HAIRPIN,
            vec![
                ("alice", rx(alice_bob6.len())),
                ("bob", tx(alice_bob6.len())),
            ],
        ),
        forwarded(
            "hairpin IPv4 from an 802.1Q member to an untagged member on the same interface",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_alice,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_HAIRPIN,
            vec![("bob", rx(bob_alice.len())), ("alice", tx(bob_alice.len()))],
        ),
        pass(
            "hairpin to a member without MAC (dave) goes to the kernel to resolve it, sender counted",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &alice_dave),
            reason::PASS_NO_NEIGHBOR,
            vec![("alice", rx(alice_dave.len()))],
        ),
    ]
}

/// TTL and hop limit at the edge, and IPv4 checksums that wrap.
fn ttl_rows() -> Vec<Fixture> {
    let payload = [0x42u8; 18];
    let ttl1_down = ipv4_udp(INTERNET4, ALICE4, 1, &payload);
    let ttl0_down = ipv4_udp(INTERNET4, ALICE4, 0, &payload);
    let ttl2_down = ipv4_udp(INTERNET4, CAROL4, 2, &payload);
    let ttl1_up = ipv4_udp(BOB4, INTERNET4, 1, &payload);
    let ttl2_up = ipv4_udp(BOB4, INTERNET4, 2, &payload);
    let ttl255 = ipv4_udp(CAROL4, INTERNET4, 255, &payload);
    let hop1_down = ipv6_udp(v6(REMOTE6), v6(BOB6), 1, &payload);
    let hop2_down = ipv6_udp(v6(REMOTE6), v6(BOB6), 2, &payload);
    let hop1_up = ipv6_udp(v6(CAROL6), v6(INTERNET6), 1, &payload);
    let hop2_up = ipv6_udp(v6(CAROL6), v6(INTERNET6), 2, &payload);
    let hop1_hairpin = ipv6_udp(v6(ALICE6), v6(CAROL6), 1, &payload);
    let ttl1_local = ipv4_udp(ALICE4, ROUTER_ACC4, 1, &payload);
    let zero_in = ipv4_zero_checksum(INTERNET4, ALICE4, false);
    let zero_out = ipv4_zero_checksum(INTERNET4, ALICE4, true);
    let mut ffff_in = zero_in.clone();
    ffff_in[10..12].copy_from_slice(&[0xff, 0xff]);
    vec![
        pass(
            "TTL 1 downstream goes to the kernel for its ICMP error",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &ttl1_down),
            reason::PASS_TTL_EXCEEDED,
            vec![],
        ),
        pass(
            "TTL 0 downstream goes to the kernel too",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &ttl0_down),
            reason::PASS_TTL_EXCEEDED,
            vec![],
        ),
        forwarded(
            "TTL 2 downstream is forwarded with TTL 1",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &ttl2_down,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(ttl2_down.len()))],
        ),
        pass(
            "TTL 1 upstream goes to the kernel, after the sender's receive is counted",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &ttl1_up),
            reason::PASS_TTL_EXCEEDED,
            vec![("bob", rx(ttl1_up.len()))],
        ),
        forwarded(
            "TTL 2 upstream is forwarded with TTL 1",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &ttl2_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(ttl2_up.len()))],
        ),
        forwarded(
            "TTL 255 upstream is forwarded with TTL 254",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &ttl255,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(ttl255.len()))],
        ),
        pass(
            "hop limit 1 downstream goes to the kernel for its ICMPv6 error",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &hop1_down),
            reason::PASS_TTL_EXCEEDED,
            vec![],
        ),
        forwarded(
            "hop limit 2 downstream is forwarded with hop limit 1",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &hop2_down,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(hop2_down.len()))],
        ),
        pass(
            "hop limit 1 upstream goes to the kernel, sender counted",
            "acc1",
            frame(ACC1, CAROL, CAROL_TAGS, &hop1_up),
            reason::PASS_TTL_EXCEEDED,
            vec![("carol", rx(hop1_up.len()))],
        ),
        forwarded(
            "hop limit 2 upstream is forwarded with hop limit 1",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &hop2_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(hop2_up.len()))],
        ),
        pass(
            "hop limit 1 hairpin goes to the kernel: sender counted, receiver not",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &hop1_hairpin),
            reason::PASS_TTL_EXCEEDED,
            vec![("alice", rx(hop1_hairpin.len()))],
        ),
        pass(
            "TTL 1 to the router's own address is local, not expired",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &ttl1_local),
            reason::PASS_LOCAL,
            vec![("alice", rx(ttl1_local.len()))],
        ),
        forwarded(
            "IPv4 header checksum 0x0000 on input is updated right",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &zero_in,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(zero_in.len()))],
        ),
        forwarded(
            "IPv4 header checksum becoming 0x0000 after the TTL decrement",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &zero_out,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(zero_out.len()))],
        ),
        forwarded(
            "IPv4 header checksum 0xffff (the other zero) on input is updated right",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &ffff_in,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(ffff_in.len()))],
        ),
    ]
}

/// IPv4 options and fragments, IPv6 extension headers, protocols other than
/// UDP: none of it matters to forwarding (but hop-by-hop options).
fn headers_and_protocols() -> Vec<Fixture> {
    let payload = [0x77u8; 18];
    let ihl6 = ipv4_with_options(INTERNET4, ALICE4, &[1, 1, 1, 0], &payload);
    let ihl7_alert = ipv4_with_options(INTERNET4, BOB4, &[148, 4, 0, 0, 1, 1, 1, 0], &payload);
    let ihl15 = ipv4_with_options(CAROL4, INTERNET4, &record_route_options(), &payload);
    let ihl15_hairpin = ipv4_with_options(BOB4, CAROL4, &record_route_options(), &payload);
    let mut first = ipv4_header(INTERNET4, ALICE4, 64, 1472);
    first.dont_fragment = false;
    first.more_fragments = true;
    let first = ipv4_packet(first, &payload);
    let mut later = ipv4_header(BOB4, INTERNET4, 64, 0);
    later.dont_fragment = false;
    later.fragment_offset = IpFragOffset::try_new(185).expect("offset");
    let later = ipv4_raw(later, &[0x99; 40]);
    let mut middle = ipv4_header(CAROL4, ALICE4, 64, 0);
    middle.dont_fragment = false;
    middle.more_fragments = true;
    middle.fragment_offset = IpFragOffset::try_new(370).expect("offset");
    let middle = ipv4_raw(middle, &[0x98; 48]);
    let header_only = {
        let mut h = ipv4_header(INTERNET4, CAROL4, 64, 0);
        h.protocol = IpNumber(253);
        ipv4_raw(h, &[])
    };
    let tcp_up = ipv4_tcp(ALICE4, INTERNET4, 64, &payload);
    let icmp_down = ipv4_icmp_echo(INTERNET4, BOB4, 64, &payload);
    let gre_down = {
        let mut h = ipv4_header(INTERNET4, CAROL4, 64, 0);
        h.protocol = IpNumber::GRE;
        ipv4_raw(h, &[0, 0, 0x08, 0, 0x45, 0, 0, 0x14])
    };
    let icmp6_down = ipv6_icmp_echo(v6(REMOTE6), v6(CAROL6), 64, &payload);
    let icmp6_up = ipv6_icmp_echo(v6(BOB6), v6(INTERNET6), 64, &payload);
    let mut frag6_payload = vec![IpNumber::UDP.0, 0, 0x00, 0x01, 0, 0, 0x12, 0x34];
    frag6_payload.extend_from_slice(&[0x66; 24]);
    let frag6 = ipv6_raw(
        v6(REMOTE6),
        v6(ALICE6),
        64,
        IpNumber::IPV6_FRAGMENTATION_HEADER.0,
        &frag6_payload,
    );
    let no_next6 = ipv6_raw(
        v6(ALICE6),
        v6(INTERNET6),
        64,
        IpNumber::IPV6_NO_NEXT_HEADER.0,
        &[],
    );
    // Hop-by-hop: next header UDP, length 0 (8 bytes), PadN of 4.
    let mut hbh = vec![IpNumber::UDP.0, 0, 1, 4, 0, 0, 0, 0];
    hbh.extend_from_slice(&[0x55; 16]);
    let hbh_down = ipv6_raw(v6(REMOTE6), v6(ALICE6), 64, 0, &hbh);
    let hbh_up = ipv6_raw(v6(BOB6), v6(INTERNET6), 64, 0, &hbh);
    // Every IHL from 6 to 15: NOPs then End of Options, alternately
    // downstream to carol (two tags pushed) and upstream from bob (one
    // popped), so the layer-2 rewrite meets every IP header length.
    let mut rows: Vec<Fixture> = (6u8..=15)
        .map(|ihl| {
            let mut options = vec![1u8; (ihl as usize - 5) * 4];
            *options.last_mut().expect("options") = 0;
            if ihl % 2 == 0 {
                let ip = ipv4_with_options(INTERNET4, CAROL4, &options, &payload);
                forwarded(
                    &format!("IPv4 with IHL {ihl} (NOP options) downstream to a QinQ member"),
                    "up0",
                    (UP0, REMOTE, UNTAGGED),
                    &ip,
                    "acc1",
                    (CAROL, ACC1, CAROL_TAGS),
                    reason::FWD_DOWNSTREAM,
                    vec![("carol", tx(ip.len()))],
                )
            } else {
                let ip = ipv4_with_options(BOB4, INTERNET4, &options, &payload);
                forwarded(
                    &format!("IPv4 with IHL {ihl} (NOP options) upstream from an 802.1Q member"),
                    "acc0",
                    (ACC0, BOB, BOB_TAG),
                    &ip,
                    "up0",
                    (GW, UP0, UNTAGGED),
                    reason::FWD_UPSTREAM,
                    vec![("bob", rx(ip.len()))],
                )
            }
        })
        .collect();
    rows.extend(vec![
        forwarded(
            "IPv4 with 4 bytes of options (IHL 6) forwarded with them, TTL and checksum updated",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &ihl6,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(ihl6.len()))],
        ),
        forwarded(
            "IPv4 with Router Alert (IHL 7) to an 802.1Q member is forwarded with it",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &ihl7_alert,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(ihl7_alert.len()))],
        ),
        forwarded(
            "IPv4 with 40 bytes of options (IHL 15) upstream from a QinQ member",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &ihl15,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(ihl15.len()))],
        ),
        forwarded(
            "IPv4 with 40 bytes of options (IHL 15) hairpinned 802.1Q to QinQ",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &ihl15_hairpin,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_HAIRPIN,
            vec![
                ("bob", rx(ihl15_hairpin.len())),
                ("carol", tx(ihl15_hairpin.len())),
            ],
        ),
        forwarded(
            "first IPv4 fragment (MF, offset 0) is forwarded",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &first,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(first.len()))],
        ),
        forwarded(
            "last IPv4 fragment (offset 1480, no transport header) is forwarded",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &later,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(later.len()))],
        ),
        forwarded(
            "middle IPv4 fragment (MF, offset 2960) is hairpinned",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &middle,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_HAIRPIN,
            vec![("carol", rx(middle.len())), ("alice", tx(middle.len()))],
        ),
        forwarded(
            "IPv4 that is only a header (total length 20) is forwarded",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &header_only,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(header_only.len()))],
        ),
        forwarded(
            "IPv4 TCP upstream is forwarded like UDP",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &tcp_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(tcp_up.len()))],
        ),
        forwarded(
            "IPv4 ICMP downstream is forwarded like UDP",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &icmp_down,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(icmp_down.len()))],
        ),
        forwarded(
            "IPv4 GRE downstream is forwarded like UDP",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &gre_down,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(gre_down.len()))],
        ),
        forwarded(
            "ICMPv6 downstream is forwarded",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &icmp6_down,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(icmp6_down.len()))],
        ),
        forwarded(
            "ICMPv6 upstream is forwarded",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &icmp6_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(icmp6_up.len()))],
        ),
        forwarded(
            "IPv6 with a fragment header is forwarded (only hop-by-hop goes to the kernel)",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &frag6,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(frag6.len()))],
        ),
        forwarded(
            "IPv6 with no next header and no payload (40 bytes) is forwarded",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &no_next6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(no_next6.len()))],
        ),
        pass(
            "IPv6 hop-by-hop options downstream go to the kernel",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &hbh_down),
            reason::PASS_IPV6_EXTENSION,
            vec![],
        ),
        pass(
            "IPv6 hop-by-hop options from a member go to the kernel, before any source check",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &hbh_up),
            reason::PASS_IPV6_EXTENSION,
            vec![],
        ),
    ]);
    rows
}

/// VLAN tag variants: TPIDs, priority bits, tag counts, uplink tags.
fn vlan_rows() -> Vec<Fixture> {
    let payload = [0x33u8; 18];
    let carol_up = ipv4_udp(CAROL4, INTERNET4, 64, &payload);
    let carol_up6 = ipv6_udp(v6(CAROL6), v6(INTERNET6), 64, &payload);
    let bob_up = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    let alice_up = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let down = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    let down_bob = ipv4_udp(INTERNET4, BOB4, 64, &payload);
    // PCP 5, DEI set, VLAN 101.
    let bob_prio: &[(u16, u16)] = &[(ETH_P_8021Q, 0xb000 | 101)];
    let up1_prio: &[(u16, u16)] = &[(ETH_P_8021Q, 0xe000 | 200)];
    vec![
        forwarded(
            "QinQ with outer TPID 0x9100 from a QinQ member is forwarded",
            "acc1",
            (ACC1, CAROL, &[(ETH_P_9100, 10), (ETH_P_8021Q, 102)]),
            &carol_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_up.len()))],
        ),
        forwarded(
            "QinQ with outer TPID 0x8100 (double 802.1Q) from a QinQ member is forwarded",
            "acc1",
            (ACC1, CAROL, &[(ETH_P_8021Q, 10), (ETH_P_8021Q, 102)]),
            &carol_up6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_up6.len()))],
        ),
        forwarded(
            "a single tag with TPID 0x9100 is the member's C-tag",
            "acc0",
            (ACC0, BOB, &[(ETH_P_9100, 101)]),
            &bob_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up.len()))],
        ),
        forwarded(
            "priority and DEI bits of a member's tag are ignored",
            "acc0",
            (ACC0, BOB, bob_prio),
            &bob_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up.len()))],
        ),
        forwarded(
            "priority bits of the tagged uplink's tag are ignored",
            "up1",
            (UP1, REMOTE, up1_prio),
            &down_bob,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(down_bob.len()))],
        ),
        forwarded(
            "a single tag with TPID 0x88a8 is the member's C-tag",
            "acc0",
            (ACC0, BOB, &[(ETH_P_8021AD, 101)]),
            &bob_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up.len()))],
        ),
        forwarded(
            "a priority tag (VLAN 0, PCP 6) from an untagged member is its untagged line",
            "acc0",
            (ACC0, ALICE, &[(ETH_P_8021Q, 0xc000)]),
            &alice_up,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(alice_up.len()))],
        ),
        pass(
            "uplink tag mismatch: a priority tag (VLAN 0) on the untagged uplink",
            "up0",
            frame(UP0, REMOTE, &[(ETH_P_8021Q, 0xc000)], &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "an inner tag with TPID 0x88a8 is not parsed: not IP",
            "acc1",
            ether(
                mac(ACC1),
                mac(CAROL),
                &[(ETH_P_8021AD, 10), (ETH_P_8021AD, 102)],
                ETH_P_IP,
                &carol_up,
            ),
            reason::PASS_NOT_IP,
            vec![],
        ),
        pass(
            "three tags: the third is not parsed, not IP",
            "acc1",
            ether(
                mac(ACC1),
                mac(CAROL),
                &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 102), (ETH_P_8021Q, 7)],
                ETH_P_IP,
                &carol_up,
            ),
            reason::PASS_NOT_IP,
            vec![],
        ),
        pass(
            "uplink tag mismatch: untagged frame on the tagged uplink",
            "up1",
            frame(UP1, REMOTE, UNTAGGED, &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "uplink tag mismatch: VLAN 201 on the uplink of VLAN 200",
            "up1",
            frame(UP1, REMOTE, &[(ETH_P_8021Q, 201)], &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "uplink tag mismatch: a tag on the untagged uplink",
            "up0",
            frame(UP0, REMOTE, UP1_TAG, &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "uplink tag mismatch: the uplink's VLAN under an outer tag",
            "up1",
            frame(
                UP1,
                REMOTE,
                &[(ETH_P_8021AD, 200), (ETH_P_8021Q, 200)],
                &down,
            ),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
    ]
}

/// Runts, truncated headers and inconsistent lengths.
fn malformed_rows() -> Vec<Fixture> {
    let payload = [0x21u8; 18];
    let alice_up = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let alice_up6 = ipv6_udp(v6(ALICE6), v6(INTERNET6), 64, &payload);
    let bob_up = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    let carol_up = ipv4_udp(CAROL4, INTERNET4, 64, &payload);
    let carol_up6 = ipv6_udp(v6(CAROL6), v6(INTERNET6), 64, &payload);
    let ihl15 = ipv4_with_options(ALICE4, INTERNET4, &record_route_options(), &payload);
    let down6 = ipv6_udp(v6(REMOTE6), v6(ALICE6), 64, &payload);

    let mut long4 = alice_up.clone();
    let len = long4.len() as u16 + 1;
    long4[2..4].copy_from_slice(&len.to_be_bytes());
    set_ipv4_checksum(&mut long4);
    // Counts the tag as IP: fits the frame only from the wrong offset.
    let mut long4_tagged = bob_up.clone();
    let len = long4_tagged.len() as u16 + 4;
    long4_tagged[2..4].copy_from_slice(&len.to_be_bytes());
    set_ipv4_checksum(&mut long4_tagged);
    let mut long6 = alice_up6.clone();
    let plen = u16::from_be_bytes([long6[4], long6[5]]) + 1;
    long6[4..6].copy_from_slice(&plen.to_be_bytes());
    let mut long6_qinq = carol_up6.clone();
    let plen = u16::from_be_bytes([long6_qinq[4], long6_qinq[5]]) + 4;
    long6_qinq[4..6].copy_from_slice(&plen.to_be_bytes());
    let mut version6_in_4 = alice_up.clone();
    version6_in_4[0] = 0x65;
    set_ipv4_checksum(&mut version6_in_4);
    let mut ihl4 = alice_up.clone();
    ihl4[0] = 0x44;
    set_ipv4_checksum(&mut ihl4);
    let mut short_total = ipv4_with_options(ALICE4, INTERNET4, &[1, 1, 1, 0], &payload);
    short_total[2..4].copy_from_slice(&20u16.to_be_bytes());
    set_ipv4_checksum(&mut short_total);
    let mut version4_in_6 = alice_up6.clone();
    version4_in_6[0] = 0x40 | (version4_in_6[0] & 0x0f);

    let alice_frame = frame(ACC0, ALICE, UNTAGGED, &alice_up);
    let bob_frame = frame(ACC0, BOB, BOB_TAG, &bob_up);
    let carol_frame = frame(ACC1, CAROL, CAROL_TAGS, &carol_up);
    vec![
        malformed(
            "a bare Ethernet header announcing IPv4 is malformed",
            "acc0",
            ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &[]),
        ),
        malformed(
            "a bare Ethernet header announcing IPv6 on the uplink is malformed",
            "up0",
            ether(mac(UP0), mac(REMOTE), &[], ETH_P_IPV6, &[]),
        ),
        pass(
            "a bare Ethernet header of another EtherType is simply not IP",
            "acc0",
            ether(mac(ACC0), mac(ALICE), &[], ETH_P_ARP, &[]),
            reason::PASS_NOT_IP,
            vec![],
        ),
        malformed(
            "a 14-byte frame announcing an 802.1Q tag is malformed",
            "acc0",
            cut(&bob_frame, 14),
        ),
        malformed(
            "a frame cut in the middle of its 802.1Q tag (16 bytes) is malformed",
            "acc0",
            cut(&bob_frame, 16),
        ),
        malformed(
            "a frame cut right after its outer tag (18 bytes) is malformed",
            "acc1",
            cut(&carol_frame, 18),
        ),
        malformed(
            "a frame cut in the middle of its inner tag (20 bytes) is malformed",
            "acc1",
            cut(&carol_frame, 20),
        ),
        malformed(
            "an 802.1Q frame cut right after its tag (18 bytes) is malformed",
            "acc0",
            cut(&bob_frame, 18),
        ),
        malformed(
            "IPv4 header one byte short (19 of 20) is malformed",
            "acc0",
            cut(&alice_frame, 14 + 19),
        ),
        malformed(
            "IPv4 header cut in the middle under two tags is malformed",
            "acc1",
            cut(&carol_frame, 22 + 10),
        ),
        malformed(
            "IPv4 options cut (IHL 15, frame ends after 40 header bytes) are malformed",
            "acc0",
            cut(&frame(ACC0, ALICE, UNTAGGED, &ihl15), 14 + 40),
        ),
        malformed(
            "IPv6 header one byte short (39 of 40) is malformed",
            "acc0",
            cut(&frame(ACC0, ALICE, UNTAGGED, &alice_up6), 14 + 39),
        ),
        malformed(
            "IPv6 header cut in the middle on the uplink is malformed",
            "up0",
            cut(&frame(UP0, REMOTE, UNTAGGED, &down6), 14 + 20),
        ),
        malformed(
            "IPv4 total length one byte beyond the frame is malformed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &long4),
        ),
        malformed(
            "IPv4 total length reaching beyond the frame once the tag is skipped is malformed",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &long4_tagged),
        ),
        malformed(
            "IPv4 total length shorter than its header (IHL 6, total 20) is malformed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &short_total),
        ),
        malformed(
            "IPv4 IHL 4 is malformed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &ihl4),
        ),
        malformed(
            "version 6 under the IPv4 EtherType is malformed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &version6_in_4),
        ),
        malformed(
            "IPv6 payload length one byte beyond the frame is malformed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &long6),
        ),
        malformed(
            "IPv6 payload length reaching beyond the frame once both tags are skipped is malformed",
            "acc1",
            frame(ACC1, CAROL, CAROL_TAGS, &long6_qinq),
        ),
        malformed(
            "version 4 under the IPv6 EtherType is malformed",
            "acc0",
            ether(mac(ACC0), mac(ALICE), &[], ETH_P_IPV6, &version4_in_6),
        ),
    ]
}

/// The source check, its attribution, and unknown attachments.
fn spoofing_rows() -> Vec<Fixture> {
    let payload = [0x5fu8; 18];
    let from_bob = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    let from_alice = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let from_alice6 = ipv6_udp(v6(ALICE6), v6(INTERNET6), 64, &payload);
    let from_carol = ipv4_udp(CAROL4, INTERNET4, 64, &payload);
    let from_dave = ipv4_udp(DAVE4, INTERNET4, 64, &payload);
    let from_nobody = ipv4_udp(Ipv4Addr::new(10, 1, 2, 3), INTERNET4, 64, &payload);
    let from_nobody6 = ipv6_udp(v6("2001:db8:abcd::1"), v6(INTERNET6), 64, &payload);
    let from_router = ipv4_udp(ROUTER_ACC4, INTERNET4, 64, &payload);
    let from_bob_next = ipv4_udp(BOB4_NEXT, INTERNET4, 64, &payload);
    let from_bob_next6 = ipv6_udp(v6("2001:db8:200:100::1"), v6(INTERNET6), 64, &payload);
    vec![
        spoof(
            "an untagged member sending from a tagged member's prefix is spoofing (shared segment: not attributed)",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &from_bob),
            vec![],
        ),
        spoof(
            "a tagged member sending from another member's prefix is spoofing, and counted",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_alice),
            vec![("bob", spoofed())],
        ),
        spoof(
            "spoofing by source MAC: bob's prefix and VLAN from another MAC, counted on bob",
            "acc0",
            frame(ACC0, STRANGER, BOB_TAG, &from_bob),
            vec![("bob", spoofed())],
        ),
        spoof(
            "spoofing by source MAC: alice's prefix on her shared segment from another MAC, not attributed",
            "acc0",
            frame(ACC0, STRANGER, UNTAGGED, &from_alice),
            vec![],
        ),
        spoof(
            "spoofing by source MAC: dave (no MAC) cannot use alice's prefix",
            "acc0",
            frame(ACC0, DAVE, UNTAGGED, &from_alice6),
            vec![],
        ),
        spoof(
            "spoofing by VLAN: bob's prefix and MAC on an unprovisioned VLAN, not attributed",
            "acc0",
            frame(ACC0, BOB, &[(ETH_P_8021Q, 102)], &from_bob),
            vec![],
        ),
        spoof(
            "spoofing by VLAN: carol's tags swapped (S 102, C 10)",
            "acc1",
            frame(
                ACC1,
                CAROL,
                &[(ETH_P_8021AD, 102), (ETH_P_8021Q, 10)],
                &from_carol,
            ),
            vec![],
        ),
        spoof(
            "spoofing by VLAN: carol's C-tag alone",
            "acc1",
            frame(ACC1, CAROL, &[(ETH_P_8021Q, 102)], &from_carol),
            vec![],
        ),
        spoof(
            "spoofing by interface: carol's prefix, tags and MAC on acc0",
            "acc0",
            frame(ACC0, CAROL, CAROL_TAGS, &from_carol),
            vec![],
        ),
        spoof(
            "spoofing by interface: bob's prefix from carol's attachment, counted on carol",
            "acc1",
            frame(ACC1, CAROL, CAROL_TAGS, &from_bob),
            vec![("carol", spoofed())],
        ),
        spoof(
            "spoofing by interface: alice's IPv6 prefix from carol's attachment, counted on carol",
            "acc1",
            frame(ACC1, CAROL, CAROL_TAGS, &from_alice6),
            vec![("carol", spoofed())],
        ),
        spoof(
            "dave's prefix from bob's VLAN is spoofing, counted on bob",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_dave),
            vec![("bob", spoofed())],
        ),
        spoof(
            "bob sending from just past his /29 is spoofing, counted on bob",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_bob_next),
            vec![("bob", spoofed())],
        ),
        spoof(
            "bob sending from just past his IPv6 /56 is spoofing, counted on bob",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_bob_next6),
            vec![("bob", spoofed())],
        ),
        spoof(
            "bob sending from the router's own address is spoofing, counted on bob",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_router),
            vec![("bob", spoofed())],
        ),
        spoof(
            "an unknown source on bob's VLAN is spoofing, counted on bob",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &from_nobody),
            vec![("bob", spoofed())],
        ),
        spoof(
            "an unknown source on the shared untagged segment is spoofing, not attributed",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &from_nobody),
            vec![],
        ),
        pass(
            "an unknown source on an unprovisioned VLAN goes to the kernel",
            "acc0",
            frame(ACC0, STRANGER, &[(ETH_P_8021Q, 999)], &from_nobody),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "an unknown IPv6 source on an unprovisioned QinQ pair goes to the kernel",
            "acc1",
            frame(
                ACC1,
                STRANGER,
                &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 999)],
                &from_nobody6,
            ),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "an unknown source untagged on acc1 (nobody untagged there) goes to the kernel",
            "acc1",
            frame(ACC1, STRANGER, UNTAGGED, &from_nobody),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
    ]
}

/// What goes to the kernel: local, no route, no neighbour, link-local,
/// multicast, broadcast, not for the router, not IP.
fn kernel_rows() -> Vec<Fixture> {
    let payload = [0x0fu8; 18];
    let to_dave = ipv4_udp(INTERNET4, DAVE4, 64, &payload);
    let to_router_acc = ipv4_icmp_echo(ALICE4, ROUTER_ACC4, 64, &payload);
    let to_router_up = ipv4_udp(CAROL4, ROUTER_UP4, 64, &payload);
    let to_router_up6 = ipv6_icmp_echo(v6(BOB6), v6(ROUTER_UP6), 64, &payload);
    let local_down = ipv4_icmp_echo(INTERNET4, ROUTER_UP4, 64, &payload);
    let local_down6 = ipv6_udp(v6(REMOTE6), v6(ROUTER_UP6), 64, &payload);
    let local_down_acc = ipv4_udp(INTERNET4, ROUTER_ACC4, 64, &payload);
    let no_route = ipv4_udp(INTERNET4, Ipv4Addr::new(192, 0, 2, 3), 64, &payload);
    let no_route_gap = ipv4_udp(INTERNET4, BOB4_NEXT, 64, &payload);
    let no_route6 = ipv6_udp(v6(REMOTE6), v6("2001:db8:300:1::1"), 64, &payload);
    let no_route6_bob = ipv6_udp(v6(REMOTE6), v6("2001:db8:200:100::1"), 64, &payload);
    let class_e = ipv4_udp(INTERNET4, Ipv4Addr::new(240, 0, 0, 1), 64, &payload);
    let site_local6 = ipv6_udp(v6(REMOTE6), v6("fec0::1"), 64, &payload);
    let ll_src4 = ipv4_udp(Ipv4Addr::new(169, 254, 1, 1), INTERNET4, 64, &payload);
    let ll_dst4 = ipv4_udp(INTERNET4, Ipv4Addr::new(169, 254, 255, 255), 64, &payload);
    let ll_src6 = ipv6_icmp_echo(v6("fe80::1"), v6(INTERNET6), 64, &payload);
    let ll_dst6 = ipv6_udp(v6(REMOTE6), v6("febf:ffff::1"), 64, &payload);
    let mcast4 = ipv4_udp(ALICE4, Ipv4Addr::new(224, 0, 0, 5), 64, &payload);
    let mcast4_top = ipv4_udp(INTERNET4, Ipv4Addr::new(239, 255, 255, 250), 64, &payload);
    let mcast6 = ipv6_icmp_echo(v6(BOB6), v6("ff02::1:2"), 64, &payload);
    let bcast4 = ipv4_udp(ALICE4, Ipv4Addr::BROADCAST, 64, &payload);
    let unicast = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    vec![
        pass(
            "downstream to a member without MAC (dave) goes to the kernel, nobody counted",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &to_dave),
            reason::PASS_NO_NEIGHBOR,
            vec![],
        ),
        pass(
            "from a member to the router's address on its interface is local, sender counted",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &to_router_acc),
            reason::PASS_LOCAL,
            vec![("alice", rx(to_router_acc.len()))],
        ),
        pass(
            "from a QinQ member to the router's uplink address is local, sender counted",
            "acc1",
            frame(ACC1, CAROL, CAROL_TAGS, &to_router_up),
            reason::PASS_LOCAL,
            vec![("carol", rx(to_router_up.len()))],
        ),
        pass(
            "IPv6 from an 802.1Q member to the router's address is local, sender counted",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &to_router_up6),
            reason::PASS_LOCAL,
            vec![("bob", rx(to_router_up6.len()))],
        ),
        pass(
            "from the uplink to 192.0.2.2 is local",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &local_down),
            reason::PASS_LOCAL,
            vec![],
        ),
        pass(
            "from the uplink to 2001:db8::2 is local",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &local_down6),
            reason::PASS_LOCAL,
            vec![],
        ),
        pass(
            "from the tagged uplink to the router's access address is local",
            "up1",
            frame(UP1, REMOTE, UP1_TAG, &local_down_acc),
            reason::PASS_LOCAL,
            vec![],
        ),
        pass(
            "downstream to an address nobody has (next to the router's) is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &no_route),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "downstream to just past an 802.1Q member's /29 is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &no_route_gap),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "downstream IPv6 to the /64 after a QinQ member's is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &no_route6),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "downstream IPv6 to just past an 802.1Q member's /56 is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &no_route6_bob),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "downstream to 240.0.0.1 (class E, not multicast) is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &class_e),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "downstream IPv6 to fec0::1 (just outside fe80::/10) is no-route",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &site_local6),
            reason::PASS_NO_ROUTE,
            vec![],
        ),
        pass(
            "IPv4 from 169.254/16 is link-local, before the source check",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &ll_src4),
            reason::PASS_LINK_LOCAL,
            vec![],
        ),
        pass(
            "IPv4 to 169.254.255.255 is link-local",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &ll_dst4),
            reason::PASS_LINK_LOCAL,
            vec![],
        ),
        pass(
            "IPv6 from fe80::1 is link-local",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &ll_src6),
            reason::PASS_LINK_LOCAL,
            vec![],
        ),
        pass(
            "IPv6 to febf:ffff::1 (the top of fe80::/10) is link-local",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &ll_dst6),
            reason::PASS_LINK_LOCAL,
            vec![],
        ),
        pass(
            "IPv4 to 224.0.0.5 with the router's MAC is multicast",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &mcast4),
            reason::PASS_MULTICAST,
            vec![],
        ),
        pass(
            "IPv4 to 239.255.255.250 with the router's MAC is multicast",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &mcast4_top),
            reason::PASS_MULTICAST,
            vec![],
        ),
        pass(
            "IPv6 to ff02::1:2 with the router's MAC is multicast",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &mcast6),
            reason::PASS_MULTICAST,
            vec![],
        ),
        pass(
            "IPv4 to 255.255.255.255 with the router's MAC is broadcast",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &bcast4),
            reason::PASS_BROADCAST,
            vec![],
        ),
        pass(
            "Ethernet broadcast (ARP request) is broadcast",
            "acc0",
            ether(mac(BROADCAST), mac(ALICE), &[], ETH_P_ARP, &[0u8; 28]),
            reason::PASS_BROADCAST,
            vec![],
        ),
        pass(
            "Ethernet broadcast of an IPv4 unicast packet on the uplink is broadcast",
            "up0",
            frame(BROADCAST, REMOTE, UNTAGGED, &unicast),
            reason::PASS_BROADCAST,
            vec![],
        ),
        pass(
            "Ethernet multicast 01:00:5e:00:00:05 is multicast",
            "acc0",
            frame("01:00:5e:00:00:05", ALICE, UNTAGGED, &mcast4),
            reason::PASS_MULTICAST,
            vec![],
        ),
        pass(
            "Ethernet multicast 33:33:00:01:00:02 on a tagged line is multicast",
            "acc0",
            frame("33:33:00:01:00:02", BOB, BOB_TAG, &mcast6),
            reason::PASS_MULTICAST,
            vec![],
        ),
        pass(
            "a unicast frame for another station is not to the router",
            "acc0",
            frame(STRANGER, ALICE, UNTAGGED, &unicast),
            reason::PASS_NOT_TO_ROUTER,
            vec![],
        ),
        pass(
            "a frame for up1's MAC arriving on up0 is not to the router",
            "up0",
            frame(UP1, REMOTE, UNTAGGED, &unicast),
            reason::PASS_NOT_TO_ROUTER,
            vec![],
        ),
        pass(
            "ARP goes to the kernel",
            "acc0",
            ether(mac(ACC0), mac(ALICE), &[], ETH_P_ARP, &[0u8; 28]),
            reason::PASS_NOT_IP,
            vec![],
        ),
        pass(
            "ARP on a member's VLAN goes to the kernel",
            "acc1",
            ether(mac(ACC1), mac(CAROL), CAROL_TAGS, ETH_P_ARP, &[0u8; 28]),
            reason::PASS_NOT_IP,
            vec![],
        ),
    ]
}

/// Sizes: MTU edges, one and two pushed tags, and Ethernet padding.
fn size_rows() -> Vec<Fixture> {
    // acc1's MTU is 1508 and the kernel takes a redirected frame of up to
    // MTU + 14 + 4 bytes: with carol's two tags (22 bytes of layer 2), IP
    // packets of up to 1504 bytes fit; 1505 does not, nor does 1508 (MTU).
    let carol_fits = ipv4_sized(INTERNET4, CAROL4, 1504);
    let carol_over = ipv4_sized(INTERNET4, CAROL4, 1505);
    let carol_mtu = ipv4_sized(INTERNET4, CAROL4, 1508);
    let carol_fits6 = ipv6_sized(REMOTE6, CAROL6, 1504);
    let carol_over6 = ipv6_sized(REMOTE6, CAROL6, 1505);
    let bob_hairpin_over = ipv4_sized(BOB4, CAROL4, 1505);
    // acc0 and up0: MTU 1500.
    let alice_fits = ipv4_sized(INTERNET4, ALICE4, 1500);
    let alice_over = ipv4_sized(INTERNET4, ALICE4, 1501);
    let bob_fits = ipv6_sized(REMOTE6, BOB6, 1500);
    let bob_over = ipv6_sized(REMOTE6, BOB6, 1501);
    let up_fits = ipv4_sized(CAROL4, INTERNET4, 1500);
    let up_over = ipv4_sized(ALICE4, INTERNET4, 1501);
    let up_over6 = ipv6_sized(BOB6, INTERNET6, 1501);
    // 28 bytes of IP in a 60-byte frame: the padding travels along (the
    // frame is not trimmed), the counters count the IP packet.
    let small = ipv4_udp(INTERNET4, CAROL4, 64, &[]);
    let small_in = pad(&frame(UP0, REMOTE, UNTAGGED, &small), 60);
    let mut small_out = next_hop(&small);
    small_out.resize(60 - 14, 0);
    let small_up = ipv4_udp(BOB4, INTERNET4, 64, &[]);
    let small_up_in = pad(&frame(ACC0, BOB, BOB_TAG, &small_up), 60);
    let mut small_up_out = next_hop(&small_up);
    small_up_out.resize(60 - 18, 0);
    vec![
        forwarded(
            "1504-byte IPv4 to a QinQ member on acc1 (MTU 1508) fits with both tags",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &carol_fits,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(carol_fits.len()))],
        ),
        pass(
            "1505-byte IPv4 to a QinQ member on acc1 (MTU 1508) is too big with both tags",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &carol_over),
            reason::PASS_TOO_BIG,
            vec![],
        ),
        pass(
            "MTU-sized (1508-byte) IPv4 to a QinQ member on acc1 is too big with both tags",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &carol_mtu),
            reason::PASS_TOO_BIG,
            vec![],
        ),
        forwarded(
            "1504-byte IPv6 to a QinQ member on acc1 fits with both tags",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &carol_fits6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(carol_fits6.len()))],
        ),
        pass(
            "1505-byte IPv6 to a QinQ member on acc1 is too big with both tags",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &carol_over6),
            reason::PASS_TOO_BIG,
            vec![],
        ),
        pass(
            "1505-byte hairpin to a QinQ member is too big, sender counted",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &bob_hairpin_over),
            reason::PASS_TOO_BIG,
            vec![("bob", rx(bob_hairpin_over.len()))],
        ),
        forwarded(
            "MTU-sized (1500) IPv4 to an untagged member fits",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &alice_fits,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(alice_fits.len()))],
        ),
        pass(
            "1501-byte IPv4 to an untagged member on acc0 (MTU 1500) is too big",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &alice_over),
            reason::PASS_TOO_BIG,
            vec![],
        ),
        forwarded(
            "MTU-sized (1500) IPv6 to an 802.1Q member fits with its tag",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &bob_fits,
            "acc0",
            (BOB, ACC0, BOB_TAG),
            reason::FWD_DOWNSTREAM,
            vec![("bob", tx(bob_fits.len()))],
        ),
        pass(
            "1501-byte IPv6 to an 802.1Q member on acc0 is too big",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &bob_over),
            reason::PASS_TOO_BIG,
            vec![],
        ),
        forwarded(
            "MTU-sized (1500) IPv4 upstream from a QinQ member fits up0",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &up_fits,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(up_fits.len()))],
        ),
        pass(
            "1501-byte IPv4 upstream (up0 MTU 1500) is too big, sender counted",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &up_over),
            reason::PASS_TOO_BIG,
            vec![("alice", rx(up_over.len()))],
        ),
        pass(
            "1501-byte IPv6 upstream (up0 MTU 1500) is too big, sender counted",
            "acc0",
            frame(ACC0, BOB, BOB_TAG, &up_over6),
            reason::PASS_TOO_BIG,
            vec![("bob", rx(up_over6.len()))],
        ),
        Fixture {
            name: "60-byte padded frame (28 bytes of IPv4) to a QinQ member keeps its padding, counts 28 bytes"
                .to_string(),
            ingress: "up0",
            input: small_in,
            action: REDIRECT,
            reason: reason::FWD_DOWNSTREAM,
            output: ether(mac(CAROL), mac(ACC1), CAROL_TAGS, ETH_P_IP, &small_out),
            egress: Some("acc1"),
            members: vec![("carol", tx(small.len()))],
        },
        Fixture {
            name: "60-byte padded frame (28 bytes of IPv4) from an 802.1Q member keeps its padding, counts 28 bytes"
                .to_string(),
            ingress: "acc0",
            input: small_up_in,
            action: REDIRECT,
            reason: reason::FWD_UPSTREAM,
            output: ether(mac(GW), mac(UP0), UNTAGGED, ETH_P_IP, &small_up_out),
            egress: Some("up0"),
            members: vec![("bob", rx(small_up.len()))],
        },
    ]
}

fn table() -> Vec<Fixture> {
    let mut t = Vec::new();
    t.extend(directions());
    t.extend(hairpins());
    t.extend(ttl_rows());
    t.extend(headers_and_protocols());
    t.extend(vlan_rows());
    t.extend(malformed_rows());
    t.extend(spoofing_rows());
    t.extend(kernel_rows());
    t.extend(size_rows());
    t
}

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

// ---------------------------------------------------------------------------
// CONFIG_TAGGED_UPLINK: upstream leaves through tagged up1; up0 is unknown
// ---------------------------------------------------------------------------

fn tagged_uplink_table() -> Vec<Fixture> {
    let payload = [0x6cu8; 18];
    let alice_up = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let alice_up6 = ipv6_udp(v6(ALICE6), v6(INTERNET6), 64, &payload);
    let bob_up = ipv4_udp(BOB4, INTERNET4, 64, &payload);
    let carol_up6 = ipv6_udp(v6(CAROL6), v6(INTERNET6), 64, &payload);
    let down = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    let down6 = ipv6_udp(v6(REMOTE6), v6(CAROL6), 64, &payload);
    let fits = ipv4_sized(ALICE4, INTERNET4, 1500);
    let over = ipv4_sized(ALICE4, INTERNET4, 1501);
    let carol_fits = ipv4_sized(CAROL4, INTERNET4, 1500);
    let small = ipv4_udp(ALICE4, INTERNET4, 64, &[]);
    let small_in = pad(&frame(ACC0, ALICE, UNTAGGED, &small), 60);
    let mut small_out = next_hop(&small);
    small_out.resize(60 - 14, 0);
    vec![
        forwarded(
            "tagged uplink: upstream IPv4 from an untagged member gets the uplink's tag",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &alice_up,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(alice_up.len()))],
        ),
        forwarded(
            "tagged uplink: upstream IPv6 from an untagged member gets the uplink's tag",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &alice_up6,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(alice_up6.len()))],
        ),
        forwarded(
            "tagged uplink: upstream from an 802.1Q member swaps its tag for the uplink's",
            "acc0",
            (ACC0, BOB, BOB_TAG),
            &bob_up,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("bob", rx(bob_up.len()))],
        ),
        forwarded(
            "tagged uplink: upstream IPv6 from a QinQ member leaves with one tag",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_up6,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_up6.len()))],
        ),
        forwarded(
            "tagged uplink: MTU-sized (1500) IPv4 fits with the pushed tag",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &fits,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(fits.len()))],
        ),
        pass(
            "tagged uplink: 1501-byte IPv4 is too big, sender counted",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &over),
            reason::PASS_TOO_BIG,
            vec![("alice", rx(over.len()))],
        ),
        forwarded(
            "tagged uplink: MTU-sized (1500) IPv4 from a QinQ member leaves with one tag",
            "acc1",
            (ACC1, CAROL, CAROL_TAGS),
            &carol_fits,
            "up1",
            (GW_TAGGED, UP1, UP1_TAG),
            reason::FWD_UPSTREAM,
            vec![("carol", rx(carol_fits.len()))],
        ),
        Fixture {
            name: "tagged uplink: 60-byte padded frame gets the tag and keeps its padding"
                .to_string(),
            ingress: "acc0",
            input: small_in,
            action: REDIRECT,
            reason: reason::FWD_UPSTREAM,
            output: ether(mac(GW_TAGGED), mac(UP1), UP1_TAG, ETH_P_IP, &small_out),
            egress: Some("up1"),
            members: vec![("alice", rx(small.len()))],
        },
        forwarded(
            "tagged uplink: downstream IPv4 pops the uplink's tag",
            "up1",
            (UP1, REMOTE, UP1_TAG),
            &down,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down.len()))],
        ),
        forwarded(
            "tagged uplink: downstream IPv6 swaps the uplink's tag for S- and C-tags",
            "up1",
            (UP1, REMOTE, UP1_TAG),
            &down6,
            "acc1",
            (CAROL, ACC1, CAROL_TAGS),
            reason::FWD_DOWNSTREAM,
            vec![("carol", tx(down6.len()))],
        ),
        pass(
            "tagged uplink: untagged downstream is an unknown attachment",
            "up1",
            frame(UP1, REMOTE, UNTAGGED, &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "unconfigured interface: a frame to its MAC is an unknown attachment",
            "up0",
            frame(UP0, REMOTE, UNTAGGED, &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "unconfigured interface: a frame for another MAC is an unknown attachment",
            "up0",
            frame(STRANGER, REMOTE, UNTAGGED, &down),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "unconfigured interface: a non-IP frame is an unknown attachment",
            "up0",
            ether(mac(UP0), mac(REMOTE), &[], ETH_P_ARP, &[0u8; 28]),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "unconfigured interface: a runt is an unknown attachment, not malformed",
            "up0",
            ether(mac(UP0), mac(REMOTE), &[], ETH_P_IP, &[]),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
        pass(
            "unconfigured interface: an Ethernet broadcast is an unknown attachment",
            "up0",
            ether(mac(BROADCAST), mac(REMOTE), &[], ETH_P_ARP, &[0u8; 28]),
            reason::PASS_UNKNOWN_ATTACHMENT,
            vec![],
        ),
    ]
}

#[test]
fn tagged_uplink_fixtures() {
    let mut h = Harness::new("fixtures-tagged", CONFIG_TAGGED_UPLINK);
    h.run_table(&tagged_uplink_table());
}

// ---------------------------------------------------------------------------
// CONFIG_PARTIAL_GATEWAYS: no IPv4 gateway with a MAC
// ---------------------------------------------------------------------------

fn partial_gateways_table() -> Vec<Fixture> {
    let payload = [0x19u8; 18];
    let up4 = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let up6 = ipv6_udp(v6(ALICE6), v6(INTERNET6), 64, &payload);
    let down4 = ipv4_udp(INTERNET4, ALICE4, 64, &payload);
    vec![
        pass(
            "no IPv4 gateway MAC: upstream IPv4 goes to the kernel, sender counted",
            "acc0",
            frame(ACC0, ALICE, UNTAGGED, &up4),
            reason::PASS_NO_NEIGHBOR,
            vec![("alice", rx(up4.len()))],
        ),
        forwarded(
            "IPv6-only uplink: upstream IPv6 still forwards",
            "acc0",
            (ACC0, ALICE, UNTAGGED),
            &up6,
            "up0",
            (GW, UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("alice", rx(up6.len()))],
        ),
        forwarded(
            "an uplink without gateway MAC still forwards downstream",
            "up1",
            (UP1, REMOTE, UP1_TAG),
            &down4,
            "acc0",
            (ALICE, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("alice", tx(down4.len()))],
        ),
    ]
}

#[test]
fn partial_gateways_fixtures() {
    let mut h = Harness::new("fixtures-gw", CONFIG_PARTIAL_GATEWAYS);
    h.run_table(&partial_gateways_table());
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
