//! `collecte trace --explain`: under each verdict, the steps the program
//! recorded, in words. A table of {description, ingress, frame, expected
//! lines}, run through the real binary in a namespace where the configured
//! interfaces do not exist (so their MACs are the tracer's synthetic ones).
use std::{
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Duration,
};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use tests::{
    Netns,
    frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ether, ipv4_udp, mac},
};

const CONFIG: &str = r#"
[datapath]
max_members = 16
route_groups = 64

[[uplink]]
interface = "core0"
gateway4 = "192.0.2.1"
gateway_mac = "02:00:00:00:00:01"

[[access]]
interface = "acc0"

[[member]]
id = "alice"
interface = "acc0"
mac = "02:00:00:00:01:01"
prefixes = ["198.51.100.7/32"]

[[member]]
id = "bob"
interface = "acc0"
c_vlan = 101
mac = "02:00:00:00:01:02"
prefixes = ["198.51.100.16/29"]

[[member]]
id = "carol"
interface = "acc0"
s_vlan = 10
c_vlan = 102
mac = "02:00:00:00:01:03"
prefixes = ["198.51.100.32/28"]
"#;

/// Synthetic MACs: 02:00:00:00:ff:SLOT, uplinks first.
const CORE0: &str = "02:00:00:00:ff:01";
const ACC0: &str = "02:00:00:00:ff:02";
const ALICE: &str = "02:00:00:00:01:01";
const CAROL: &str = "02:00:00:00:01:03";

struct Case {
    description: &'static str,
    ingress: &'static str,
    frame: Vec<u8>,
    /// The verdict line, then the explanation's lines (without their
    /// four-space indent).
    expected: &'static [&'static str],
}

fn udp(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
    ipv4_udp(Ipv4Addr::from(src), Ipv4Addr::from(dst), ttl, &[7u8; 10])
}

fn cases() -> Vec<Case> {
    const NET: [u8; 4] = [8, 8, 8, 8];
    const ALICE_IP: [u8; 4] = [198, 51, 100, 7];
    const BOB_IP: [u8; 4] = [198, 51, 100, 17];
    const CAROL_IP: [u8; 4] = [198, 51, 100, 40];
    let qinq = [(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)];
    vec![
        Case {
            description: "downstream to an 802.1Q member: looked up, tag pushed",
            ingress: "core0",
            frame: ether(
                mac(CORE0),
                mac("02:00:00:00:00:01"),
                &[],
                ETH_P_IP,
                &udp(NET, BOB_IP, 64),
            ),
            expected: &[
                "1 forward acc0 member=bob",
                "headers: Ethernet, untagged, IPv4 8.8.8.8 → 198.51.100.17, 38 bytes, TTL 64",
                "ingress: core0, an uplink: the destination decides",
                "destination 198.51.100.17: in member bob's prefix 198.51.100.16/29",
                "next hop: out of acc0, 802.1Q tag 101, MTU 1500, to 02:00:00:00:01:02 from 02:00:00:00:ff:02",
                "rewritten: Ethernet addresses as above, untagged → 802.1Q tag 101, TTL 64 → 63, IPv4 checksum updated",
                "forward (XDP_REDIRECT), reason downstream: a packet from an uplink to a member's prefix: forwarded to the member's line",
            ],
        },
        Case {
            description: "upstream from a QinQ member: source checked, both tags popped",
            ingress: "acc0",
            frame: ether(
                mac(ACC0),
                mac(CAROL),
                &qinq,
                ETH_P_IP,
                &udp(CAROL_IP, NET, 64),
            ),
            expected: &[
                "1 forward core0 member=carol",
                "headers: Ethernet, QinQ S-tag 10, C-tag 102, IPv4 198.51.100.40 → 8.8.8.8, 38 bytes, TTL 64",
                "ingress: acc0, an access interface: the source must be a member attached here",
                "source 198.51.100.40: in member carol's prefix 198.51.100.32/28",
                "MAC check passed: the frame's source MAC is member carol's",
                "source check passed: the packet is member carol's, from its own line",
                "destination 8.8.8.8: in no member's prefix",
                "next hop: out of core0, untagged, MTU 1500, to 02:00:00:00:00:01 from 02:00:00:00:ff:01",
                "rewritten: Ethernet addresses as above, QinQ S-tag 10, C-tag 102 → untagged, TTL 64 → 63, IPv4 checksum updated",
                "forward (XDP_REDIRECT), reason upstream: a member's packet to an address outside every member's prefix: forwarded to the uplink",
            ],
        },
        Case {
            description: "another member's source on alice's line: spoofed",
            ingress: "acc0",
            frame: ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &udp(BOB_IP, NET, 64)),
            expected: &[
                "1 drop spoofed member=alice",
                "headers: Ethernet, untagged, IPv4 198.51.100.17 → 8.8.8.8, 38 bytes, TTL 64",
                "ingress: acc0, an access interface: the source must be a member attached here",
                "source 198.51.100.17: in member bob's prefix 198.51.100.16/29",
                "source check failed: member bob is attached to acc0 802.1Q tag 101, not where this frame came in",
                "counted as spoofed for member alice",
                "drop (XDP_DROP), reason spoofed: its source is not the member's that is attached where it came in: dropped and counted against that attachment's member",
            ],
        },
        Case {
            description: "alice's address from another MAC: the MAC check fails",
            ingress: "acc0",
            frame: ether(
                mac(ACC0),
                mac("02:00:00:00:09:09"),
                &[],
                ETH_P_IP,
                &udp(ALICE_IP, NET, 64),
            ),
            expected: &[
                "1 drop spoofed member=alice",
                "headers: Ethernet, untagged, IPv4 198.51.100.7 → 8.8.8.8, 38 bytes, TTL 64",
                "ingress: acc0, an access interface: the source must be a member attached here",
                "source 198.51.100.7: in member alice's prefix 198.51.100.7/32",
                "source check failed: the frame's source MAC is not member alice's configured MAC",
                "counted as spoofed for member alice",
                "drop (XDP_DROP), reason spoofed: its source is not the member's that is attached where it came in: dropped and counted against that attachment's member",
            ],
        },
        Case {
            description: "TTL 1 towards a member: next hop found, not rewritten",
            ingress: "core0",
            frame: ether(
                mac(CORE0),
                mac("02:00:00:00:00:01"),
                &[],
                ETH_P_IP,
                &udp(NET, ALICE_IP, 1),
            ),
            expected: &[
                "1 pass ttl-exceeded",
                "headers: Ethernet, untagged, IPv4 8.8.8.8 → 198.51.100.7, 38 bytes, TTL 1",
                "ingress: core0, an uplink: the destination decides",
                "destination 198.51.100.7: in member alice's prefix 198.51.100.7/32",
                "next hop: out of acc0, untagged, MTU 1500, to 02:00:00:00:01:01 from 02:00:00:00:ff:02",
                "not rewritten: the frame was left as it came",
                "pass (XDP_PASS), reason ttl-exceeded: its TTL or hop limit would reach 0, and the fast path sends no error for it (about an ICMP error, a later fragment, a non-unicast source, no address on the interface, or icmp_rate 0): the kernel's",
            ],
        },
        Case {
            description: "ARP the fast path does not answer: not a packet to forward",
            ingress: "acc0",
            frame: ether(mac(ACC0), mac(ALICE), &[], ETH_P_ARP, &[0u8; 28]),
            expected: &[
                "1 pass arp",
                "headers: not parsed as a packet to forward (42 bytes on acc0)",
                "pass (XDP_PASS), reason arp: ARP the fast path does not answer (a reply, not Ethernet/IPv4, on an uplink): the kernel's",
            ],
        },
        Case {
            description: "a runt: refused by the kernel's test run, reported as the program would",
            ingress: "acc0",
            frame: vec![0xff; 10],
            expected: &[
                "1 drop malformed",
                "headers: 10 bytes, shorter than an Ethernet header; the kernel's test run refuses such a frame, and the program's first check drops it",
                "drop (XDP_DROP), reason malformed: headers cut short or inconsistent: dropped",
            ],
        },
    ]
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("collecte-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn write_pcap(path: &Path, frame: &[u8]) {
    let mut w = PcapWriter::new(File::create(path).expect("create pcap")).expect("pcap header");
    w.write_packet(&PcapPacket::new(
        Duration::from_secs(1),
        frame.len() as u32,
        frame,
    ))
    .expect("write packet");
}

#[test]
fn explain_says_each_step_the_program_took() {
    tests::require_root();
    let ns = Netns::new("explain");
    let config = scratch("explain.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let bin = tests::daemon::binary();
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let pcap = scratch(&format!("case{i}.pcap"));
        write_pcap(&pcap, &case.frame);
        let out = ns.exec(
            bin.to_str().expect("utf-8 path"),
            &[
                "trace",
                "--explain",
                "--config",
                config.to_str().unwrap(),
                "--ingress",
                case.ingress,
                pcap.to_str().unwrap(),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: trace failed: {stderr}",
            case.description
        );
        let mut lines = stdout.lines();
        let verdict = lines.next().unwrap_or_default();
        let steps: Vec<&str> = lines
            .map(|l| {
                l.strip_prefix("    ")
                    .unwrap_or_else(|| panic!("{}: unindented step {l:?}", case.description))
            })
            .collect();
        let mut got = vec![verdict];
        got.extend(steps);
        if got != case.expected {
            failures.push(format!(
                "{}:\n  expected {:#?}\n  got {:#?}",
                case.description, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_explain_the_lines_stay_as_they_were() {
    tests::require_root();
    let ns = Netns::new("noexpl");
    let config = scratch("noexpl.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let case = &cases()[0];
    let pcap = scratch("noexpl.pcap");
    write_pcap(&pcap, &case.frame);
    let bin = tests::daemon::binary();
    let out = ns.exec(
        bin.to_str().expect("utf-8 path"),
        &[
            "trace",
            "--config",
            config.to_str().unwrap(),
            "--ingress",
            case.ingress,
            pcap.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", case.expected[0])
    );
}
