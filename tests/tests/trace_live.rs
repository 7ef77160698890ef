//! `collecte trace` beside a running daemon reads the daemon's live, pinned
//! tables — members the daemon holds, not those the tracer would build — and
//! moves no counter.
use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use tests::{
    daemon::{Daemon, binary},
    frames::{ETH_P_IP, ether, ipv4_udp, mac},
    topology::{Settings, Topology, alice, bob, plan},
};

#[test]
fn trace_reads_the_live_tables_and_counts_nothing() {
    tests::require_root();
    let t = Topology::new("trlive");
    let settings = Settings {
        metrics_port: 9595,
        gateway_mac: Some(plan::GW_MAC),
        ..Settings::default()
    };
    // The daemon runs with alice and bob; the file the tracer is given
    // afterwards names only alice, so a bob line proves the live tables.
    let config = t.config(&settings, &[alice(), bob()]);
    let mut d = Daemon::start(
        &t.router,
        &config,
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 9595),
    );
    d.wait_ready(2, Duration::from_secs(30));
    let traced_config = d.config_path.with_file_name("trace.toml");
    std::fs::write(&traced_config, t.config(&settings, &[alice()])).unwrap();

    let (a, b) = (alice(), bob());
    let down_a = ipv4_udp(plan::REMOTE4, a.host4, 64, &[1; 8]);
    let down_b = ipv4_udp(plan::REMOTE4, b.host4, 64, &[2; 8]);
    let frames = [
        ether(
            mac(plan::UP0_MAC),
            mac(plan::GW_MAC),
            &[],
            ETH_P_IP,
            &down_a,
        ),
        ether(
            mac(plan::UP0_MAC),
            mac(plan::GW_MAC),
            &[],
            ETH_P_IP,
            &down_b,
        ),
    ];
    let pcap = d.config_path.with_file_name("in.pcap");
    let mut w = PcapWriter::new(File::create(&pcap).unwrap()).unwrap();
    for f in &frames {
        w.write_packet(&PcapPacket::new(Duration::ZERO, f.len() as u32, f))
            .unwrap();
    }
    drop(w);

    let before = d.metrics();
    let out = t.router.exec(
        binary().to_str().unwrap(),
        &[
            "trace",
            "--config",
            traced_config.to_str().unwrap(),
            "--ingress",
            "up0",
            pcap.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trace failed: {stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["1 forward acc0 member=alice", "2 forward acc1 member=bob"],
        "stderr: {stderr}"
    );
    assert!(
        !stderr.contains("does not exist here"),
        "the live tracer uses the real interfaces: {stderr}"
    );
    let after = d.metrics();
    for id in ["alice", "bob"] {
        for what in ["receive_packets", "transmit_packets", "spoofed_packets"] {
            assert_eq!(
                before.member(id, what),
                after.member(id, what),
                "tracing moved {id}'s {what}"
            );
        }
    }
    assert_eq!(
        before.datapath("up0", "forward", "downstream"),
        after.datapath("up0", "forward", "downstream"),
        "tracing moved an interface counter"
    );
}
