//! A whole collecte site in network namespaces, with real IP stacks on both
//! sides of the router, for end-to-end tests of the `collecte run` daemon.
//!
//! ```text
//!   core (gateway + "internet")        router                    members
//!  ┌────────────────────────┐   ┌──────────────────────┐   ┌──────────────────────┐
//!  │ gw0 192.0.2.1/24       ├───┤ up0  192.0.2.2/24    │   │ alice (own netns)    │
//!  │     2001:db8::1/64     │   │      2001:db8::2/64  │   │ m0 198.51.100.7/32   │
//!  │ lo  203.0.113.1/32     │   │ acc0 198.51.100.1/32 ├───┤    2001:db8:1001::7  │
//!  │     2001:db8:ffff::1   │   │      fe80::1/64      │   └──────────────────────┘
//!  └────────────────────────┘   │ acc1 (trunk)         ├───┐ trunk (own netns)
//!                               └──────────────────────┘   │ t0: raw sockets of the
//!                                                          │ tagged members (bob,
//!                                                          │ carol, dave), see
//!                                                          │ crate::tagged
//! ```
//!
//! The router namespace forwards (ip_forward, IPv6 forwarding) and holds the
//! routes a real router keeps, so the kernel can take the slow path
//! (time-exceeded, unreachable, ARP/ND) and can even carry alice's traffic on
//! its own when no XDP program is attached. The tagged members live behind
//! `acc1` as AF_PACKET sockets: this kernel has no 802.1Q module, so only the
//! XDP program terminates their tags.
//!
//! Every namespace is a [`Netns`], removed when the [`Topology`] is dropped;
//! interface names repeat across tests but namespaces never do, so tests run
//! in parallel.
use std::{
    io::ErrorKind,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{Netns, netns::run, tag_probe::TagProbe};

/// MACs and addresses of the site (documentation ranges only).
pub mod plan {
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The core's interface towards the router: the uplink gateway.
    pub const GW_MAC: &str = "02:00:00:00:00:01";
    /// Another MAC the gateway may move to (neighbour-change test).
    pub const GW_MAC_NEW: &str = "02:00:00:00:00:0e";
    pub const UP0_MAC: &str = "02:00:00:00:00:10";
    pub const ACC0_MAC: &str = "02:00:00:00:00:20";
    pub const ACC1_MAC: &str = "02:00:00:00:00:21";
    /// The trunk host's own interface (its raw sockets send with the
    /// members' MACs, not this one).
    pub const TRUNK_MAC: &str = "02:00:00:00:00:2f";

    pub const GW4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    pub const GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    /// The router's address on acc0: the members' IPv4 default gateway.
    pub const ACC_GW4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    /// The router's link-local address on acc0: the members' IPv6 gateway.
    pub const ACC_LL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    /// "Internet" hosts behind the core (on its loopback).
    pub const REMOTE4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    pub const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
    /// Covers every member prefix below (routed by the core to the router).
    pub const MEMBERS4: &str = "198.51.100.0/24";
    pub const MEMBERS6: &str = "2001:db8:1000::/36";
}

/// One member as the configuration and the test hosts see it.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub id: &'static str,
    pub interface: &'static str,
    pub s_vlan: u16,
    pub c_vlan: u16,
    pub mac: &'static str,
    pub prefixes: Vec<&'static str>,
    /// The host address the test uses inside the member's prefixes.
    pub host4: Ipv4Addr,
    pub host6: Ipv6Addr,
}

impl MemberSpec {
    /// The member's tags as they appear on the wire, outer first, as
    /// (TPID, VLAN id).
    pub fn tags(&self) -> Vec<(u16, u16)> {
        match (self.s_vlan, self.c_vlan) {
            (0, 0) => vec![],
            (0, c) => vec![(crate::frames::ETH_P_8021Q, c)],
            (s, c) => vec![
                (crate::frames::ETH_P_8021AD, s),
                (crate::frames::ETH_P_8021Q, c),
            ],
        }
    }

    pub fn mac_bytes(&self) -> [u8; 6] {
        crate::frames::mac(self.mac)
    }

    fn toml(&self) -> String {
        let mut s = format!(
            "[[member]]\nid = \"{}\"\ninterface = \"{}\"\nmac = \"{}\"\n",
            self.id, self.interface, self.mac
        );
        if self.s_vlan != 0 {
            s += &format!("s_vlan = {}\n", self.s_vlan);
        }
        if self.c_vlan != 0 {
            s += &format!("c_vlan = {}\n", self.c_vlan);
        }
        let p: Vec<String> = self.prefixes.iter().map(|p| format!("\"{p}\"")).collect();
        s += &format!("prefixes = [{}]\n\n", p.join(", "));
        s
    }
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("IPv6 literal")
}

/// The untagged member with a real IP stack (namespace `alice`, on acc0).
pub fn alice() -> MemberSpec {
    MemberSpec {
        id: "alice",
        interface: "acc0",
        s_vlan: 0,
        c_vlan: 0,
        mac: "02:00:00:00:01:01",
        prefixes: vec!["198.51.100.7/32", "2001:db8:1001::/48"],
        host4: Ipv4Addr::new(198, 51, 100, 7),
        host6: v6("2001:db8:1001::7"),
    }
}

/// A single-tagged (802.1Q, VLAN 101) member on the trunk.
pub fn bob() -> MemberSpec {
    MemberSpec {
        id: "bob",
        interface: "acc1",
        s_vlan: 0,
        c_vlan: 101,
        mac: "02:00:00:00:01:02",
        prefixes: vec!["198.51.100.16/29", "2001:db8:1002::/56"],
        host4: Ipv4Addr::new(198, 51, 100, 17),
        host6: v6("2001:db8:1002::17"),
    }
}

/// A double-tagged (QinQ: S-tag 10 under 0x88a8, C-tag 102) member.
pub fn carol() -> MemberSpec {
    MemberSpec {
        id: "carol",
        interface: "acc1",
        s_vlan: 10,
        c_vlan: 102,
        mac: "02:00:00:00:01:03",
        prefixes: vec!["198.51.100.32/28", "2001:db8:1003::/64"],
        host4: Ipv4Addr::new(198, 51, 100, 33),
        host6: v6("2001:db8:1003::33"),
    }
}

/// A single-tagged member (VLAN 103) that tests add at run time.
pub fn dave() -> MemberSpec {
    MemberSpec {
        id: "dave",
        interface: "acc1",
        s_vlan: 0,
        c_vlan: 103,
        mac: "02:00:00:00:01:04",
        prefixes: vec!["198.51.100.48/30", "2001:db8:1004::/48"],
        host4: Ipv4Addr::new(198, 51, 100, 49),
        host6: v6("2001:db8:1004::49"),
    }
}

/// Daemon settings that vary between tests.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Port of the metrics listener (inside the router namespace).
    pub metrics_port: u16,
    /// `[datapath] xdp_mode`; omitted when `None` (the default, native).
    pub xdp_mode: Option<&'static str>,
    /// Static `gateway_mac` of the uplink; resolved from the kernel when
    /// `None`.
    pub gateway_mac: Option<&'static str>,
    pub log_level: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            metrics_port: 9570,
            xdp_mode: None,
            gateway_mac: None,
            log_level: "info",
        }
    }
}

/// The namespaces of one site.
pub struct Topology {
    /// Pass-everything XDP programs on the router's peers (see
    /// `Topology::new`); detached first.
    pub peer_xdp: Vec<crate::tag_probe::TagProbe>,
    pub core: Netns,
    pub router: Netns,
    /// alice's host.
    pub alice: Netns,
    /// The trunk behind acc1, where the tagged members' raw sockets live.
    pub trunk: Netns,
    /// The site's own bpffs, for the daemon's pins.
    pub bpffs: Bpffs,
}

/// A bpffs instance of its own, mounted in the root mount namespace under
/// /tmp, unmounted and removed on drop.
///
/// `ip netns exec` gives the daemon a mount namespace where /sys is a fresh
/// sysfs, so /sys/fs/bpf is not a bpffs there; mounts under /tmp made
/// before it starts are visible, and survive a daemon restart (as pins
/// must). Each site has its own, so parallel daemons never share pins.
pub struct Bpffs {
    pub path: std::path::PathBuf,
}

impl Bpffs {
    pub fn mount(name: &str) -> Bpffs {
        let path = std::env::temp_dir().join(format!("{name}.bpffs"));
        std::fs::create_dir_all(&path).expect("bpffs mount point");
        run("mount", &["-t", "bpf", "bpf", path.to_str().unwrap()]);
        Bpffs { path }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .output();
        let _ = std::fs::remove_dir(&self.path);
    }
}

pub use crate::netns::in_netns;

fn sysctl(ns: &Netns, settings: &[&str]) {
    let mut args = vec!["netns", "exec", ns.name(), "sysctl", "-qw"];
    args.extend_from_slice(settings);
    run("ip", &args);
}

impl Topology {
    /// Builds the site. Nothing is attached to any interface: until a
    /// daemon runs, the router namespace forwards alice's traffic with the
    /// kernel alone.
    pub fn new(tag: &str) -> Topology {
        crate::require_root();
        use plan::*;
        let core = Netns::new(&format!("{tag}-core"));
        let router = Netns::new(&format!("{tag}-rtr"));
        let alice_ns = Netns::new(&format!("{tag}-alice"));
        let trunk = Netns::new(&format!("{tag}-trunk"));

        // Addresses are usable at once (no DAD), reverse-path filtering off.
        for ns in [&core, &router, &alice_ns, &trunk] {
            sysctl(
                ns,
                &[
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                ],
            );
        }
        sysctl(
            &router,
            &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"],
        );
        // The trunk host has no IP stack of its own: only the raw sockets'
        // frames leave it, so nothing else lands on the members' counters.
        sysctl(
            &trunk,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        );

        let a = alice();
        let pairs = [
            ("up0", UP0_MAC, "gw0", GW_MAC, &core),
            ("acc0", ACC0_MAC, "m0", a.mac, &alice_ns),
            ("acc1", ACC1_MAC, "t0", TRUNK_MAC, &trunk),
        ];
        for (here, here_mac, there, there_mac, peer_ns) in pairs {
            router.ip(&[
                "link",
                "add",
                here,
                "address",
                here_mac,
                "type",
                "veth",
                "peer",
                "name",
                there,
                "address",
                there_mac,
                "netns",
                peer_ns.name(),
            ]);
            router.ip(&["link", "set", here, "up"]);
            peer_ns.ip(&["link", "set", there, "up"]);
            // A frame XDP_REDIRECTed into a veth is delivered only when the
            // peer's NAPI runs: GRO on enables it (kernel >= 5.13).
            // The hosts also compute their checksums in software, as frames
            // from a real NIC carry them: a veth hands on CHECKSUM_PARTIAL
            // packets whose checksum is not filled in yet, which the kernel
            // fixes when it forwards but an XDP redirect cannot (the peer
            // would drop UDP and TCP as UdpInCsumErrors / bad segments).
            let out = peer_ns.exec("ethtool", &["-K", there, "gro", "on", "tx", "off"]);
            assert!(
                out.status.success(),
                "ethtool -K {there} gro on tx off: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The trunk receives frames for the members' MACs.
        trunk.ip(&["link", "set", "t0", "promisc", "on"]);

        // core: the gateway, and the "internet" on its loopback.
        core.ip(&["addr", "add", "192.0.2.1/24", "dev", "gw0"]);
        core.ip(&["addr", "add", "2001:db8::1/64", "dev", "gw0", "nodad"]);
        core.ip(&["addr", "add", "203.0.113.1/32", "dev", "lo"]);
        core.ip(&["addr", "add", "2001:db8:ffff::1/128", "dev", "lo"]);
        core.ip(&["route", "add", MEMBERS4, "via", "192.0.2.2"]);
        core.ip(&["route", "add", MEMBERS6, "via", "2001:db8::2"]);

        // router
        router.ip(&["addr", "add", "192.0.2.2/24", "dev", "up0"]);
        router.ip(&["addr", "add", "2001:db8::2/64", "dev", "up0", "nodad"]);
        router.ip(&["addr", "add", "198.51.100.1/32", "dev", "acc0"]);
        router.ip(&["addr", "add", "fe80::1/64", "dev", "acc0", "nodad"]);
        router.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        router.ip(&["route", "add", "default", "via", "2001:db8::1"]);
        // What the kernel needs to reach alice on the slow path.
        router.ip(&[
            "route",
            "add",
            "198.51.100.7/32",
            "dev",
            "acc0",
            "src",
            "198.51.100.1",
        ]);
        router.ip(&["route", "add", "2001:db8:1001::/48", "dev", "acc0"]);
        // Member space the kernel cannot reach (the tagged members): answer
        // "unreachable" instead of bouncing it back to the core.
        router.ip(&["route", "add", "unreachable", MEMBERS4]);
        router.ip(&["route", "add", "unreachable", MEMBERS6]);

        // alice: her addresses, the router as default gateway.
        alice_ns.ip(&["addr", "add", "198.51.100.7/32", "dev", "m0"]);
        alice_ns.ip(&["addr", "add", "2001:db8:1001::7/128", "dev", "m0", "nodad"]);
        alice_ns.ip(&[
            "route",
            "add",
            "198.51.100.1/32",
            "dev",
            "m0",
            "scope",
            "link",
        ]);
        alice_ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            "198.51.100.1",
            "dev",
            "m0",
        ]);
        alice_ns.ip(&["route", "add", "default", "via", "fe80::1", "dev", "m0"]);

        // What the router's XDP transmits (XDP_TX: ARP and ND answers,
        // ICMP errors) is only delivered promptly to a veth peer that runs
        // an XDP program of its own (6.18): a pass-everything one on each.
        let peer_xdp = vec![
            TagProbe::attach(&core, "gw0"),
            TagProbe::attach(&alice_ns, "m0"),
            TagProbe::attach(&trunk, "t0"),
        ];
        let bpffs = Bpffs::mount(router.name());
        Topology {
            peer_xdp,
            core,
            router,
            alice: alice_ns,
            trunk,
            bpffs,
        }
    }

    /// The daemon's configuration for `members`.
    pub fn config(&self, settings: &Settings, members: &[MemberSpec]) -> String {
        let mut s = String::new();
        s += "[datapath]\n";
        s += &format!("pin_dir = \"{}/collecte\"\n", self.bpffs.path.display());
        s += "max_members = 64\nroute_groups = 64\n";
        // The state beside the daemon's files (removed with them), not in
        // /var/lib/collecte: the daemon records there the VLAN offloads it
        // turns off.
        s += &format!(
            "state = \"{}\"\n",
            std::env::temp_dir()
                .join(self.router.name())
                .join("state.json")
                .display()
        );
        if let Some(mode) = settings.xdp_mode {
            s += &format!("xdp_mode = \"{mode}\"\n");
        }
        s += &format!(
            "\n[metrics]\nlisten = \"127.0.0.1:{}\"\n\n[log]\nlevel = \"{}\"\n\n",
            settings.metrics_port, settings.log_level
        );
        s += "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway6 = \"2001:db8::1\"\n";
        if let Some(mac) = settings.gateway_mac {
            s += &format!("gateway_mac = \"{mac}\"\n");
        }
        s += "\n[[access]]\ninterface = \"acc0\"\n\n[[access]]\ninterface = \"acc1\"\n\n";
        for m in members {
            s += &m.toml();
        }
        s
    }

    /// Runs a command in namespace `ns` (panics if it cannot start).
    pub fn exec(ns: &Netns, program: &str, args: &[&str]) -> Output {
        ns.exec(program, args)
    }

    /// The router's kernel forwarding counters: (IPv4 `Ip: ForwDatagrams`,
    /// IPv6 `Ip6OutForwDatagrams`).
    pub fn kernel_forwarded(&self) -> (u64, u64) {
        kernel_forwarded(&self.router)
    }

    /// The XDP attachment of router interface `dev` as `ip link` shows it:
    /// `Some("xdp")` (native), `Some("xdpgeneric")`, ..., or `None`.
    pub fn xdp_on(&self, dev: &str) -> Option<String> {
        let out = self.router.ip(&["link", "show", "dev", dev]);
        let first = out.lines().next().unwrap_or_default();
        first
            .split_whitespace()
            .find(|w| w.starts_with("xdp"))
            .map(str::to_string)
    }

    /// The router's neighbour entry for `addr` on up0: its MAC when it has
    /// one (any state but FAILED/INCOMPLETE).
    pub fn router_neighbour(&self, addr: IpAddr) -> Option<String> {
        let out = self
            .router
            .ip(&["neigh", "show", "to", &addr.to_string(), "dev", "up0"]);
        let line = out.lines().next()?;
        let w: Vec<&str> = line.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "lladdr")?;
        Some(w.get(i + 1)?.to_string())
    }
}

/// The kernel forwarding counters of namespace `ns`: (IPv4 `Ip:
/// ForwDatagrams`, IPv6 `Ip6OutForwDatagrams`).
pub fn kernel_forwarded(ns: &Netns) -> (u64, u64) {
    let snmp = String::from_utf8(ns.exec("cat", &["/proc/net/snmp"]).stdout).expect("snmp is text");
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip: "));
    let names: Vec<&str> = ip.next().expect("Ip: names").split_whitespace().collect();
    let values: Vec<&str> = ip.next().expect("Ip: values").split_whitespace().collect();
    let i = names
        .iter()
        .position(|n| *n == "ForwDatagrams")
        .expect("ForwDatagrams");
    let v4 = values[i].parse().expect("ForwDatagrams value");
    let snmp6 =
        String::from_utf8(ns.exec("cat", &["/proc/net/snmp6"]).stdout).expect("snmp6 is text");
    let v6 = snmp6
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("Ip6OutForwDatagrams")).then(|| w.next().unwrap().parse().unwrap())
        })
        .expect("Ip6OutForwDatagrams");
    (v4, v6)
}

/// UDP receive errors of namespace `ns` (`Udp:` and `Udp6` InErrors,
/// RcvbufErrors, InCsumErrors), to tell losses in a host from losses on the
/// way.
pub fn udp_errors(ns: &str) -> String {
    let cat = |f: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "cat", f])
            .output()
            .expect("ip netns exec cat");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let snmp = cat("/proc/net/snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next().unwrap_or_default().split_whitespace().collect();
    let values: Vec<&str> = udp.next().unwrap_or_default().split_whitespace().collect();
    let mut out: Vec<String> = names
        .iter()
        .zip(&values)
        .filter(|(n, _)| n.contains("Err"))
        .map(|(n, v)| format!("Udp{n}={v}"))
        .collect();
    let snmp6 = cat("/proc/net/snmp6");
    out.extend(
        snmp6
            .lines()
            .filter(|l| l.starts_with("Udp6") && l.contains("Err"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join("=")),
    );
    out.join(" ")
}

/// `ping` from namespace `ns`: returns (transmitted, received, output).
pub fn ping(ns: &Netns, target: IpAddr, count: u32, extra: &[&str]) -> (u32, u32, String) {
    let count_s = count.to_string();
    // Bounded by timeout(1), not -w: with a deadline, ping stops at the
    // first ICMP error.
    let bound = (count / 50 + 10).to_string();
    let mut args = vec![
        bound.as_str(),
        "ping",
        "-n",
        "-c",
        &count_s,
        "-i",
        "0.01",
        "-W",
        "1",
    ];
    args.extend_from_slice(extra);
    let target_s = target.to_string();
    args.push(&target_s);
    let out = ns.exec("timeout", &args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let stats = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| {
            panic!(
                "ping {target} from {} printed no statistics:\n{text}",
                ns.name()
            )
        });
    let n: Vec<u32> = stats
        .split(',')
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    (n[0], n[1], text)
}

/// A UDP socket bound to `addr` inside namespace `ns`.
pub fn udp_socket(ns: &str, addr: SocketAddr) -> UdpSocket {
    in_netns(ns, || {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        // Room for bursts while the receiving thread waits for a CPU.
        let size: libc::c_int = 8 << 20;
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        s
    })
}

/// Magic that starts every sequenced datagram.
const SEQ_MAGIC: &[u8; 4] = b"CLTq";

/// Sends `count` datagrams of `size` payload bytes from `socket` to `dst` at
/// `rate` packets per second (0: as fast as possible, but paced in bursts of
/// 32 to stay lossless), each carrying `flow` and its sequence number.
pub fn send_sequenced(
    socket: &UdpSocket,
    dst: SocketAddr,
    flow: u32,
    count: u32,
    size: usize,
    rate: u32,
) {
    assert!(size >= 12);
    let start = Instant::now();
    let mut buf = vec![0u8; size];
    buf[..4].copy_from_slice(SEQ_MAGIC);
    buf[4..8].copy_from_slice(&flow.to_be_bytes());
    for seq in 0..count {
        buf[8..12].copy_from_slice(&seq.to_be_bytes());
        if rate > 0 {
            let due = start + Duration::from_secs_f64(seq as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        } else if seq % 32 == 31 {
            std::thread::sleep(Duration::from_micros(200));
        }
        loop {
            match socket.send_to(&buf, dst) {
                Ok(_) => break,
                // A full socket or device queue: retry, the flow must not lose.
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    std::thread::sleep(Duration::from_micros(100))
                }
                Err(e) => panic!("send to {dst}: {e}"),
            }
        }
    }
}

/// Receives sequenced datagrams of one flow on a socket, on a thread of its
/// own, until `count` arrived or nothing arrived for `idle`.
pub struct SeqSink {
    handle: Option<JoinHandle<Vec<u32>>>,
    stop: Arc<AtomicBool>,
}

impl SeqSink {
    pub fn start(socket: UdpSocket, flow: u32, count: u32, idle: Duration) -> SeqSink {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seqs = Vec::with_capacity(count as usize);
            let mut buf = [0u8; 2048];
            let mut last = Instant::now();
            // A hard bound on top of the idle bound.
            let hard = Instant::now() + Duration::from_secs(120);
            while (seqs.len() as u32) < count && Instant::now() < hard {
                match socket.recv_from(&mut buf) {
                    Ok((n, _)) if n >= 12 && &buf[..4] == SEQ_MAGIC => {
                        if u32::from_be_bytes(buf[4..8].try_into().unwrap()) == flow {
                            seqs.push(u32::from_be_bytes(buf[8..12].try_into().unwrap()));
                            last = Instant::now();
                        }
                    }
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut =>
                    {
                        if stop2.load(Ordering::Relaxed) && last.elapsed() > idle {
                            break;
                        }
                    }
                    Err(e) => panic!("receive: {e}"),
                }
            }
            seqs
        });
        SeqSink {
            handle: Some(handle),
            stop,
        }
    }

    /// Waits for the flow to end (the sender is done) and returns the
    /// sequence numbers in arrival order.
    pub fn finish(mut self) -> Vec<u32> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("sink thread")
    }
}

/// Sends a sequenced flow from a socket bound at `from` in `ns`, on a
/// thread of its own.
pub fn spawn_flow(
    ns: &str,
    from: SocketAddr,
    to: SocketAddr,
    id: u32,
    count: u32,
    size: usize,
    rate: u32,
) -> JoinHandle<()> {
    let s = udp_socket(ns, from);
    std::thread::spawn(move || send_sequenced(&s, to, id, count, size, rate))
}

/// Describes losses and reorderings of a sequenced flow of `count` packets.
pub fn seq_report(seqs: &[u32], count: u32) -> (usize, usize, usize) {
    let mut seen = vec![false; count as usize];
    let mut dup = 0;
    for &s in seqs {
        if (s as usize) < seen.len() {
            if seen[s as usize] {
                dup += 1;
            }
            seen[s as usize] = true;
        }
    }
    let lost = seen.iter().filter(|s| !**s).count();
    let reordered = seqs.windows(2).filter(|w| w[1] < w[0]).count();
    (lost, reordered, dup)
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
