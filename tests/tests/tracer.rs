//! The packet tracer (`collecte trace`) and the configuration checker
//! (`collecte check`), run as an operator would: the real binary, a pcap in,
//! a pcap out.
use std::{
    fs::{File, OpenOptions},
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

/// A pcap record: the frame as captured, and its length on the wire (more
/// when the capture kept only its start).
type Record = (Vec<u8>, u32);

/// Writes `records`.
fn write_records(path: &Path, records: &[Record]) {
    let mut w = PcapWriter::new(File::create(path).expect("create pcap")).expect("pcap header");
    for (i, (f, wire)) in records.iter().enumerate() {
        let ts = Duration::from_millis(1000 + i as u64);
        w.write_packet(&PcapPacket::new(ts, *wire, f))
            .expect("write packet");
    }
}

/// Every record of a pcap as (timestamp, length on the wire, data), read
/// without pcap-file's checks of the lengths against the snap length.
fn read_records(path: &Path) -> Vec<(Duration, u32, Vec<u8>)> {
    let mut r = PcapReader::new(File::open(path).expect("open pcap")).expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_raw_packet() {
        let p = p.expect("record");
        assert_eq!(p.incl_len as usize, p.data.len());
        let ts = Duration::new(p.ts_sec.into(), p.ts_frac * 1000);
        out.push((ts, p.orig_len, p.data.into_owned()));
    }
    out
}

/// The largest frame the kernel's XDP test run gives a program whole,
/// derived from the kernel's own description rather than measured as the
/// tracer does: PAGE_SIZE − XDP_PACKET_HEADROOM (256) −
/// SKB_DATA_ALIGN(sizeof(struct skb_shared_info)), the size read from the
/// kernel's BTF, aligned to x86-64's 64-byte cache line.
fn test_run_limit() -> usize {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let out = Command::new("bpftool")
        .args([
            "btf",
            "dump",
            "file",
            "/sys/kernel/btf/vmlinux",
            "format",
            "raw",
        ])
        .output()
        .expect("bpftool is missing: install the Debian package `bpftool`");
    assert!(out.status.success(), "bpftool btf dump failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("STRUCT 'skb_shared_info' size="))
        .expect("struct skb_shared_info in the kernel's BTF");
    let size: usize = line
        .split("size=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no size in {line:?}"));
    page - 256 - size.next_multiple_of(64)
}

/// An upstream IPv4 frame from alice of exactly `len` bytes (UDP payload
/// sized to fit).
fn alice_up(len: usize) -> Vec<u8> {
    let payload = vec![9u8; len - 14 - 20 - 8];
    let ip = ipv4_udp(
        Ipv4Addr::new(198, 51, 100, 7),
        Ipv4Addr::new(8, 8, 8, 8),
        64,
        &payload,
    );
    let f = ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &ip);
    assert_eq!(f.len(), len);
    f
}

/// `collecte trace --config CONFIG --ingress acc0 IN [--write OUT]` in a
/// namespace where the configured interfaces do not exist: its stdout
/// lines, stderr and exit code.
fn trace(tag: &str, input: &Path, output: Option<&Path>) -> (Vec<String>, String, Option<i32>) {
    let ns = Netns::new(tag);
    let config = scratch(&format!("{tag}.toml"));
    std::fs::write(&config, CONFIG).expect("write config");
    let mut args = vec![
        "trace",
        "--config",
        config.to_str().unwrap(),
        "--ingress",
        "acc0",
        input.to_str().unwrap(),
    ];
    if let Some(out) = output {
        args.extend(["--write", out.to_str().unwrap()]);
    }
    let out = run_in(&ns, &args);
    (
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
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
            "4 pass arp",
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

/// Frames the kernel's test run refuses (shorter than an Ethernet header)
/// or cannot give the program whole (larger than a page less its headroom
/// and tailroom) do not stop the trace: the runt is what the program makes
/// of it, `drop malformed`; the large frames get an error line naming the
/// limit; every frame after them is traced, and the exit status says that
/// some could not be.
#[test]
fn trace_goes_on_after_a_runt_and_a_jumbo_frame() {
    tests::require_root();
    let limit = test_run_limit();
    let runt = vec![0x02u8; 10];
    let alice = Ipv4Addr::new(198, 51, 100, 7);
    let bob = Ipv4Addr::new(198, 51, 100, 17);
    let hairpin = ipv4_udp(alice, bob, 64, &[7u8; 10]);
    // (input, expected line, expected frame written)
    let cases: Vec<(Vec<u8>, String, Vec<u8>)> = vec![
        (
            alice_up(60),
            "1 forward core0 member=alice".into(),
            ether(
                mac(GW),
                mac(CORE0),
                &[],
                ETH_P_IP,
                &next_hop(&alice_up(60)[14..]),
            ),
        ),
        (runt.clone(), "2 drop malformed".into(), runt.clone()),
        (
            ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &hairpin),
            "3 forward acc0 member=bob".into(),
            ether(
                mac(BOB),
                mac(ACC0),
                &[(ETH_P_8021Q, 101)],
                ETH_P_IP,
                &next_hop(&hairpin),
            ),
        ),
        (
            alice_up(9014),
            format!(
                "4 error: frame of 9014 bytes is larger than the kernel's test run accepts (at most {limit})"
            ),
            alice_up(9014),
        ),
        // The largest frame the program sees whole: traced (too big for
        // the uplink's MTU of 1500).
        (alice_up(limit), "5 pass too-big".into(), alice_up(limit)),
        (
            alice_up(limit + 1),
            format!(
                "6 error: frame of {} bytes is larger than the kernel's test run accepts (at most {limit})",
                limit + 1
            ),
            alice_up(limit + 1),
        ),
        (runt.clone(), "7 drop malformed".into(), runt.clone()),
        (
            alice_up(60),
            "8 forward core0 member=alice".into(),
            ether(
                mac(GW),
                mac(CORE0),
                &[],
                ETH_P_IP,
                &next_hop(&alice_up(60)[14..]),
            ),
        ),
    ];
    let input: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let pcap_in = scratch("big-in.pcap");
    let pcap_out = scratch("big-out.pcap");
    write_pcap(&pcap_in, &input);
    let (lines, stderr, code) = trace("tracer-big", &pcap_in, Some(&pcap_out));
    let expected: Vec<&str> = cases.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(lines, expected, "stderr: {stderr}");
    assert_eq!(
        code,
        Some(3),
        "two frames could not be traced: exit status 3; stderr: {stderr}"
    );
    assert!(
        stderr.contains("2 of 8 record(s)"),
        "stderr says how many records were not traced: {stderr}"
    );
    let written = read_records(&pcap_out);
    assert_eq!(
        written.len(),
        cases.len(),
        "one record written per record read"
    );
    for (i, ((ts, wire, frame), case)) in written.iter().zip(&cases).enumerate() {
        assert_eq!(
            *ts,
            Duration::from_millis(1000 + i as u64),
            "timestamp of {}",
            i + 1
        );
        assert_eq!(frame, &case.2, "frame {} as written", i + 1);
        assert_eq!(*wire as usize, frame.len(), "wire length of {}", i + 1);
    }
}

/// A file that ends inside a record: everything before it is traced, the
/// record gets a line naming it, and the trace ends there with exit status
/// 3. Nothing is written for the record cut short.
#[test]
fn trace_names_a_record_cut_short() {
    tests::require_root();
    let frames = vec![alice_up(60), alice_up(60), alice_up(60)];
    // (bytes cut from the end, expected last line)
    let cases = [
        (
            40,
            "3 error: record 3 is cut short: the file ends after 20 of the 60 bytes its header announces",
        ),
        (
            60 + 9,
            "3 error: record 3 is cut short: the file ends 7 bytes into its 16-byte record header",
        ),
    ];
    for (i, (cut, last)) in cases.iter().enumerate() {
        let pcap_in = scratch(&format!("cut{i}-in.pcap"));
        let pcap_out = scratch(&format!("cut{i}-out.pcap"));
        write_pcap(&pcap_in, &frames);
        let f = OpenOptions::new().write(true).open(&pcap_in).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len - cut).unwrap();
        let (lines, stderr, code) = trace(&format!("tracer-cut{i}"), &pcap_in, Some(&pcap_out));
        assert_eq!(
            lines,
            [
                "1 forward core0 member=alice",
                "2 forward core0 member=alice",
                last
            ],
            "cut {cut} bytes; stderr: {stderr}"
        );
        assert_eq!(code, Some(3), "cut {cut} bytes; stderr: {stderr}");
        assert_eq!(read_records(&pcap_out).len(), 2, "cut {cut} bytes");
    }
}

/// A record captured shorter than its frame (a snap length) is traced as
/// captured, with a note on its line; it is not an error. A capture with
/// no record at all traces nothing, successfully.
#[test]
fn trace_notes_a_capture_shorter_than_its_frame_and_takes_an_empty_pcap() {
    tests::require_root();
    // alice's 60-byte frame holds a 38-byte IP packet and 8 bytes of
    // Ethernet padding: captured without its padding, it is still whole.
    let padded = {
        let ip = ipv4_udp(
            Ipv4Addr::new(198, 51, 100, 7),
            Ipv4Addr::new(8, 8, 8, 8),
            64,
            &[5u8; 10],
        );
        let mut f = ether(mac(ACC0), mac(ALICE), &[], ETH_P_IP, &ip);
        f.resize(60, 0);
        f
    };
    let big = alice_up(1000);
    // ((captured, wire length), expected line, expected frame written,
    // with the same wire length: none of these gains or loses a tag)
    let cases: Vec<(Record, &str, Vec<u8>)> = vec![
        (
            (padded[..52].to_vec(), 60),
            "1 forward core0 member=alice (captured 52 of 60 bytes)",
            {
                let mut f = padded[..52].to_vec();
                f[..12].copy_from_slice(&[mac(GW), mac(CORE0)].concat());
                f[14..52].copy_from_slice(&next_hop(&padded[14..52]));
                f
            },
        ),
        // Its IP header says 986 bytes, 50 are there: malformed, as the
        // program sees it.
        (
            (big[..64].to_vec(), 1000),
            "2 drop malformed (captured 64 of 1000 bytes)",
            big[..64].to_vec(),
        ),
        (
            (alice_up(60), 60),
            "3 forward core0 member=alice",
            ether(
                mac(GW),
                mac(CORE0),
                &[],
                ETH_P_IP,
                &next_hop(&alice_up(60)[14..]),
            ),
        ),
    ];
    let records: Vec<Record> = cases.iter().map(|c| c.0.clone()).collect();
    let pcap_in = scratch("snap-in.pcap");
    let pcap_out = scratch("snap-out.pcap");
    write_records(&pcap_in, &records);
    let (lines, stderr, code) = trace("tracer-snap", &pcap_in, Some(&pcap_out));
    let expected: Vec<&str> = cases.iter().map(|c| c.1).collect();
    assert_eq!(lines, expected, "stderr: {stderr}");
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let written = read_records(&pcap_out);
    assert_eq!(written.len(), cases.len());
    for (i, ((_, wire, frame), case)) in written.iter().zip(&cases).enumerate() {
        assert_eq!(frame, &case.2, "frame {} as written", i + 1);
        assert_eq!(*wire, case.0.1, "wire length of {}", i + 1);
    }

    let empty_in = scratch("empty-in.pcap");
    let empty_out = scratch("empty-out.pcap");
    write_pcap(&empty_in, &[]);
    let (lines, stderr, code) = trace("tracer-empty", &empty_in, Some(&empty_out));
    assert_eq!(lines, Vec::<String>::new(), "stderr: {stderr}");
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(read_records(&empty_out).len(), 0);
    assert_eq!(
        std::fs::metadata(&empty_out).unwrap().len(),
        24,
        "an empty capture is written as a pcap header alone"
    );
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
