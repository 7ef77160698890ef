//! A site with a running daemon and steady traffic through its fast path,
//! for the tests of what reads the metrics (`collecte top`, the Grafana
//! dashboard through a real Prometheus).
//!
//! Every tick (10 ms) the core sends each member its share of download
//! datagrams, each member sends its share of upload datagrams to the core,
//! and bob sends datagrams with alice's source (spoofed). The shares are
//! unequal, so that each sort column orders the members differently.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::{
    daemon::Daemon,
    frames::ipv4_udp,
    tagged::TaggedMember,
    topology::{MemberSpec, Settings, Topology, alice, bob, carol, plan, udp_socket},
};

/// Datagrams per tick, for alice, bob and carol in that order.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// From the core to the member.
    pub down: [u32; 3],
    /// From the member to the core.
    pub up: [u32; 3],
    /// From bob's line with alice's source.
    pub spoofed_by_bob: u32,
}

/// Payload bytes of every datagram (IPv4 + UDP: 128-byte packets).
pub const PAYLOAD: usize = 100;
const PORT: u16 = 7000;

/// A site whose daemon runs alice, bob and carol with a static gateway
/// MAC (no neighbour resolution to wait for), metrics on `metrics_port`
/// inside the router namespace. Returns once the daemon serves its
/// metrics with the three members and XDP is on every interface.
pub fn site(tag: &str, metrics_port: u16) -> (Topology, Daemon) {
    let t = Topology::new(tag);
    let settings = Settings {
        metrics_port,
        gateway_mac: Some(plan::GW_MAC),
        ..Settings::default()
    };
    let members: Vec<MemberSpec> = vec![alice(), bob(), carol()];
    // Member routes exported too (the dashboard's routes panels read them).
    let config = t.config(&settings, &members) + "\n[routes]\ntable = 100\n";
    let mut d = Daemon::start(
        &t.router,
        &config,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), metrics_port),
    );
    d.wait_ready(members.len() as u64, Duration::from_secs(30));
    for dev in ["up0", "acc0", "acc1"] {
        assert!(
            t.xdp_on(dev).is_some(),
            "no XDP program on {dev} although collecte is ready; log:\n{}",
            d.log()
        );
    }
    (t, d)
}

/// Traffic running on a thread until dropped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Traffic {
    /// Starts `mix` through the site `t`.
    pub fn start(t: &Topology, mix: Mix) -> Traffic {
        let (a, b, c) = (alice(), bob(), carol());
        let any = |ip: Ipv4Addr| SocketAddr::new(IpAddr::V4(ip), PORT);
        // Bound receivers, so that no host answers with port unreachable
        // (which would add traffic of its own); they are never read, and
        // a full socket drops silently.
        let core = udp_socket(t.core.name(), any(plan::REMOTE4));
        let alice_sock = udp_socket(t.alice.name(), any(a.host4));
        let tagged = [
            TaggedMember::open(t.trunk.name(), "t0", &b, plan::ACC1_MAC),
            TaggedMember::open(t.trunk.name(), "t0", &c, plan::ACC1_MAC),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let payload = [0x5au8; PAYLOAD];
        let hosts = [a.host4, b.host4, c.host4];
        let handle = std::thread::spawn(move || {
            let mut ticks = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for (i, host) in hosts.iter().enumerate() {
                    for _ in 0..mix.down[i] {
                        send(&core, &payload, any(*host));
                    }
                }
                for _ in 0..mix.up[0] {
                    send(&alice_sock, &payload, any(plan::REMOTE4));
                }
                for (m, n) in tagged.iter().zip(&mix.up[1..]) {
                    let ip = ipv4_udp(m.addr4, plan::REMOTE4, 64, &payload);
                    for _ in 0..*n {
                        m.send_ip(&ip);
                    }
                }
                let spoofed = ipv4_udp(hosts[0], plan::REMOTE4, 64, &payload);
                for _ in 0..mix.spoofed_by_bob {
                    tagged[0].send_ip(&spoofed);
                }
                ticks += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            ticks
        });
        Traffic {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the traffic; returns the ticks sent.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("traffic running");
        handle.join().expect("traffic thread")
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn send(s: &UdpSocket, payload: &[u8], to: SocketAddr) {
    // A full queue loses a datagram, which the rates absorb.
    let _ = s.send_to(payload, to);
}
