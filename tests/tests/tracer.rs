//! The packet tracer (`collecte trace`) and the configuration checker
//! (`collecte check`), run as an operator would: the real binary, a pcap in,
//! a pcap out.
use std::{
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use tests::{
    Netns,
    frames::{ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ether, ipv4_udp, mac, next_hop},
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
"#;

/// The tracer gives interfaces absent from the machine MAC
/// 02:00:00:00:ff:SLOT; uplinks come first, so core0 is slot 1, acc0 slot 2.
const CORE0: &str = "02:00:00:00:ff:01";
const ACC0: &str = "02:00:00:00:ff:02";
const GW: &str = "02:00:00:00:00:01";
const ALICE: &str = "02:00:00:00:01:01";
const BOB: &str = "02:00:00:00:01:02";

fn collecte() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/collecte");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo xtask test does)",
        bin.display()
    );
    bin
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("collecte-tracer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(File::create(path).expect("create pcap")).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_millis(1000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .expect("write packet");
    }
}

fn read_pcap(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let mut r = PcapReader::new(File::open(path).expect("open pcap")).expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

fn run_in(ns: &Netns, args: &[&str]) -> Output {
    let bin = collecte();
    let mut full = vec![bin.to_str().expect("utf-8 path")];
    full.extend_from_slice(args);
    ns.exec(full[0], &full[1..])
}

#[test]
fn trace_round_trip_through_a_pcap() {
    tests::require_root();
    // A namespace with only `lo`: the configured interfaces do not exist,
    // as on an operator's laptop.
    let ns = Netns::new("tracer");
    let config = scratch("trace.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let payload = [7u8; 10];
    let internet = Ipv4Addr::new(8, 8, 8, 8);
    let alice = Ipv4Addr::new(198, 51, 100, 7);
    let bob = Ipv4Addr::new(198, 51, 100, 17);
    let up = ipv4_udp(alice, internet, 64, &payload);
    let hairpin = ipv4_udp(alice, bob, 64, &payload);
    let spoof = ipv4_udp(alice, internet, 64, &payload);
    let input = vec![
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &up),
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &hairpin),
        ether(mac(ACC0), mac(BOB), &[(ETH_P_8021Q, 101)], ETH_P_IP, &spoof),
        ether(mac(ACC0), mac(ALICE), &[], ETH_P_ARP, &[0u8; 28]),
    ];
    let expected = vec![
        ether(mac(GW), mac(CORE0), &[], ETH_P_IP, &next_hop(&up)),
        ether(
            mac(BOB),
            mac(ACC0),
            &[(ETH_P_8021Q, 101)],
            ETH_P_IP,
            &next_hop(&hairpin),
        ),
        input[2].clone(),
        input[3].clone(),
    ];
    let pcap_in = scratch("in.pcap");
    let pcap_out = scratch("out.pcap");
    write_pcap(&pcap_in, &input);
    let out = run_in(
        &ns,
        &[
            "trace",
            "--config",
            config.to_str().unwrap(),
            "--ingress",
            "acc0",
            pcap_in.to_str().unwrap(),
            "--write",
            pcap_out.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trace failed: {stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "1 forward core0 member=alice",
            "2 forward acc0 member=bob",
            "3 drop spoofed member=bob",
            "4 pass not-ip",
        ],
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("interface acc0 does not exist here"),
        "the tracer says which interfaces it made up: {stderr}"
    );
    let written = read_pcap(&pcap_out);
    assert_eq!(written.len(), expected.len());
    for (i, ((ts, frame), want)) in written.iter().zip(&expected).enumerate() {
        assert_eq!(
            *ts,
            Duration::from_millis(1000 + i as u64),
            "timestamp of packet {}",
            i + 1
        );
        assert_eq!(frame, want, "frame {} as rewritten", i + 1);
    }
}

#[test]
fn trace_uses_real_interfaces_when_they_exist() {
    tests::require_root();
    let ns = Netns::new("tracer-real");
    ns.veth("core0", "02:00:00:00:aa:01", "core0p", "02:00:00:00:aa:02");
    ns.veth("acc0", "02:00:00:00:aa:03", "acc0p", "02:00:00:00:aa:04");
    let config = scratch("real.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let down = ipv4_udp(
        Ipv4Addr::new(8, 8, 8, 8),
        Ipv4Addr::new(198, 51, 100, 7),
        64,
        &[1; 4],
    );
    let pcap_in = scratch("real-in.pcap");
    write_pcap(
        &pcap_in,
        &[
            // To the real MAC of core0: forwarded.
            ether(mac("02:00:00:00:aa:01"), mac(GW), &[], ETH_P_IP, &down),
            // To the made-up one: not for the router.
            ether(mac(CORE0), mac(GW), &[], ETH_P_IP, &down),
        ],
    );
    let out = run_in(
        &ns,
        &[
            "trace",
            "-c",
            config.to_str().unwrap(),
            "--ingress",
            "core0",
            pcap_in.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["1 forward acc0 member=alice", "2 pass not-to-router"]
    );
}

#[test]
fn trace_refuses_an_unknown_ingress_and_a_non_pcap() {
    tests::require_root();
    let ns = Netns::new("tracer-bad");
    let config = scratch("bad.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let pcap_in = scratch("empty.pcap");
    write_pcap(&pcap_in, &[]);
    let out = run_in(
        &ns,
        &[
            "trace",
            "-c",
            config.to_str().unwrap(),
            "--ingress",
            "eth9",
            pcap_in.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--ingress eth9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let not_pcap = scratch("not.pcap");
    std::fs::write(&not_pcap, b"this is not a capture").expect("write");
    let out = run_in(
        &ns,
        &[
            "trace",
            "-c",
            config.to_str().unwrap(),
            "--ingress",
            "acc0",
            not_pcap.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not.pcap") && err.contains("pcap"), "{err}");
}

#[test]
fn check_names_the_member_at_fault_and_changes_nothing() {
    let bad = CONFIG.replace("198.51.100.16/29", "198.51.100.7/32");
    let path = scratch("overlap.toml");
    std::fs::write(&path, &bad).expect("write");
    let out = Command::new(collecte())
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .expect("run collecte check");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bob") && err.contains("alice"), "{err}");
    assert!(err.contains("198.51.100.7/32"), "{err}");
    let good = scratch("good.toml");
    std::fs::write(&good, CONFIG).expect("write");
    let out = Command::new(collecte())
        .args(["check", "--config", good.to_str().unwrap()])
        .output()
        .expect("run collecte check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 member(s)"));
}
