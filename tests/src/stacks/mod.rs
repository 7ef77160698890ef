//! A collecte site whose members are real Linux IP stacks, tagged ones
//! included, all behind one access link through a switch.
//!
//! ```text
//!  core (gateway, "internet")      router                         switch: br0, a Linux
//! ┌────────────────────────┐     ┌──────────────────────────┐     bridge, no VLAN filtering
//! │ gw0 192.0.2.1/24       ├─────┤ up0  192.0.2.2/24        │    ┌────────────────────────┐
//! │     2001:db8::1/64     │     │      2001:db8::2/64      │    │ sw0 (txvlan off)       │
//! │ lo  203.0.113.1/32     │     │ acc0 198.51.100.1/32     ├────┤  │                     │
//! │     2001:db8:ffff::1   │     │      2001:db8:1000::1/128│    │ br0 ─┬─────┬─────┐     │
//! └────────────────────────┘     │      fe80::1/64          │    │ sw-alice sw-bob sw-carol│
//!                                │ collecte run (XDP)       │    └──────┼─────┼─────┼─────┘
//!                                └──────────────────────────┘           │     │     │
//!    ┌──────────────────────────────────────────────────────────────────┘     │     │
//!    │                     ┌──────────────────────────────────────────────────┘     │
//!    │                     │                     ┌──────────────────────────────────┘
//! ┌──┴─────────────────┐ ┌─┴──────────────────┐ ┌─┴──────────────────┐
//! │ alice: untagged    │ │ bob: 802.1Q 101    │ │ carol: QinQ 10/102 │
//! │ m0 MTU 1500        │ │ m0 MTU 1500        │ │ m0 MTU 1496        │
//! │ 198.51.100.7/32    │ │ 198.51.100.17/32   │ │ 198.51.100.33/32   │
//! │ 2001:db8:1001::7   │ │ 2001:db8:1002::17  │ │ 2001:db8:1003::33  │
//! │ tc vlan_push/pop   │ │ tc vlan_push/pop   │ │ tc vlan_push/pop   │
//! └────────────────────┘ └────────────────────┘ └────────────────────┘
//! ```
//!
//! Each member's `m0` carries the tc programs of `tests-ebpf`
//! ([`crate::vlan_tc`]): its stack sends and receives plain Ethernet, and
//! the wire carries its tags. The default IPv4 route is an on-link gateway
//! (`default via 198.51.100.1 dev m0 onlink`), the IPv6 one the router's
//! link-local address, either static or learnt from a Router Advertisement
//! ([`Gateway6`]). Members are plugged in ([`Stacks::plug`]) once the
//! daemon runs, as a CPE comes up on a running line: the Router
//! Solicitations they send then reach it.
//!
//! # Where the tags go (measured on this kernel, 6.18: tests/stacks_tags.rs)
//!
//! - `bpf_skb_vlan_push` on the member's egress leaves the outermost tag in
//!   the skb's metadata (`skb->vlan_tci`) and the inner one in the frame. A
//!   veth with tx VLAN insertion offload on hands the metadata tag to its
//!   peer as metadata. There are two such offloads, both on by default:
//!   `tx-vlan-hw-insert` (0x8100, what `ethtool -K DEV txvlan off` turns
//!   off) and `tx-vlan-stag-hw-insert` (0x88a8, which `txvlan` leaves on):
//!   [`TXVLAN_OFF`] turns both off.
//! - Every receiving interface moves a frame's outer tag back into
//!   metadata (`skb_vlan_untag`, before taps, tc and the bridge) whatever
//!   its offloads: `vlan_pop` on the members always finds it there
//!   (`outer_in_meta`, never `outer_in_data`). So turning the offload off on
//!   the member's `m0` writes the tags into the frame on the member's own
//!   link only: the switch port takes the outer one out again.
//! - The bridge (no VLAN filtering) forwards tagged frames by MAC address
//!   alone, the outer tag riding along in metadata: it learns a member's
//!   MAC whatever its tags (one forwarding database for every VLAN: the
//!   same MAC on two VLANs would move between ports), floods broadcasts,
//!   multicasts (snooping is off here) and unknown destinations to every
//!   port, other members' included, whose `vlan_pop` drops them
//!   (`drop_other`), and hands the outer tag to the egress port as
//!   metadata.
//! - Native XDP on a veth sees the frame's data only: a tag left in the
//!   metadata is invisible to it. With the offloads on at `sw0`, the
//!   switch's port towards the router, the router's program sees bob's
//!   frames untagged and carol's with her C-tag alone. Hence [`TXVLAN_OFF`]
//!   on `sw0`: its transmit path writes the metadata tag into the frame,
//!   and acc0's XDP sees 0x8100 (bob) and 0x88a8 then 0x8100 (carol) in
//!   band.
//! - The other way, the router's XDP pushes the tags in band; `sw0` moves
//!   the outer one into metadata, and the member's port keeps it there
//!   (offloads on): carol's `m0` receives a full QinQ frame, 1496 + 14 + 8
//!   bytes, as 1496 + 14 + 4 in data, within what a veth accepts for its
//!   MTU (MTU + 14 + 4). With the offloads off on her port, the same frame
//!   is 4 bytes too long and the veth drops it (counted as a transmit drop
//!   of the port).
//! - GRO on `sw0` gives it the NAPI that frames XDP-redirected into `acc0`
//!   need; turned on while the veth was down, it gave none when the veth
//!   came up, and every redirected frame was lost without a counter. It is
//!   turned on once `sw0` is up.
//!
//! Every namespace is a [`Netns`], removed when the [`Stacks`] is dropped
//! (the tc programs are detached first, from inside their namespace).
use std::{net::Ipv6Addr, time::Duration};

use crate::{
    Netns,
    netns::run,
    topology::{Bpffs, MemberSpec, alice, bob, carol, wait_for},
    vlan_tc::VlanTc,
};

pub mod diag;
pub mod pmtu;
pub mod ra;
mod start;
pub mod tools;

/// MACs and addresses of the site: the ones of [`crate::topology::plan`],
/// and the switch's.
pub mod plan {
    use std::net::Ipv6Addr;

    pub use crate::topology::plan::*;

    /// The router's global IPv6 address on its access interface (a
    /// gateway address members can ping and traceroute shows).
    pub const ACC_GW6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1000, 0, 0, 0, 0, 1);
    /// The switch's port towards the router.
    pub const SW0_MAC: &str = "02:00:00:00:03:00";
    /// MTU of the access link (acc0, sw0, the switch's ports).
    pub const ACCESS_MTU: u32 = 1500;
    /// The access interface and the members' interface.
    pub const ACCESS: &str = "acc0";
    pub const MEMBER_DEV: &str = "m0";
}
use plan::*;

/// How a member gets its IPv6 default route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway6 {
    /// `default via fe80::1 dev m0`, Router Advertisements ignored
    /// (`accept_ra=0`).
    Static,
    /// From the router's Router Advertisements: `accept_ra=2`,
    /// `forwarding=0`, no static route.
    FromRa,
}

/// What varies between sites.
#[derive(Clone, Debug)]
pub struct Options {
    /// The members, all on [`ACCESS`] (their `interface` is overridden).
    pub members: Vec<MemberSpec>,
    /// Put each member's `mac` in the configuration (today the router
    /// cannot learn it).
    pub member_macs: bool,
    /// Give each tagged member a permanent neighbour entry for its
    /// gateway's addresses (today the router answers no ARP/ND on a tagged
    /// attachment). Untagged members never get one: the router's kernel
    /// answers them.
    pub static_neighbours: bool,
    pub gateway6: Gateway6,
    /// The daemon's metrics port (inside the router namespace).
    pub metrics_port: u16,
    /// `txvlan off` on the switch's port towards the router (needed for
    /// the router's XDP to see the outer tag; see the module's doc).
    pub uplink_txvlan_off: bool,
    /// `txvlan off` on the members' own interfaces (makes no difference to
    /// the router; see the module's doc).
    pub member_txvlan_off: bool,
}

impl Options {
    /// alice, bob and carol with today's two crutches (MACs in the
    /// configuration, static gateway neighbours on the tagged members).
    pub fn today(metrics_port: u16) -> Options {
        Options {
            members: vec![alice(), bob(), carol()],
            member_macs: true,
            static_neighbours: true,
            gateway6: Gateway6::Static,
            metrics_port,
            uplink_txvlan_off: true,
            member_txvlan_off: false,
        }
    }

    /// alice, bob and carol as a stock CPE is: no MAC in the
    /// configuration, no static neighbour anywhere.
    pub fn stock(metrics_port: u16) -> Options {
        Options {
            member_macs: false,
            static_neighbours: false,
            ..Options::today(metrics_port)
        }
    }
}

/// One member: its namespace, its tc programs, its MTU.
pub struct Member {
    pub spec: MemberSpec,
    /// Dropped before `ns`: detached from inside the namespace.
    pub tc: VlanTc,
    pub ns: Netns,
    /// Its switch port (in the switch namespace).
    pub port: String,
    /// `m0`'s MTU: the access link's, less 4 bytes with two tags.
    pub mtu: u32,
}

impl Member {
    pub fn id(&self) -> &'static str {
        self.spec.id
    }

    pub fn tagged(&self) -> bool {
        self.spec.c_vlan != 0
    }

    /// Its neighbour entries on one line, for messages: an unanswered ARP
    /// or Neighbour Solicitation shows as INCOMPLETE or FAILED.
    pub fn neighbours(&self) -> String {
        let out = self.ns.ip(&["neigh", "show", "dev", MEMBER_DEV]);
        if out.trim().is_empty() {
            "(none)".to_string()
        } else {
            out.trim_end().replace('\n', "; ")
        }
    }
}

/// The namespaces of one site. Fields drop in order: members (their tc
/// programs, then their namespaces), switch, core, router, bpffs.
pub struct Stacks {
    pub members: Vec<Member>,
    pub switch: Netns,
    pub core: Netns,
    pub router: Netns,
    /// The site's own bpffs, for the daemon's pins.
    pub bpffs: Bpffs,
    pub opts: Options,
}

/// `ethtool -K` arguments that turn tx VLAN insertion offload off for both
/// TPIDs: `txvlan` is only the 802.1Q one (`tx-vlan-hw-insert`); an S-tag
/// in metadata stays there unless `tx-vlan-stag-hw-insert` is off too.
pub const TXVLAN_OFF: &[&str] = &["txvlan", "off", "tx-vlan-stag-hw-insert", "off"];

fn sysctl(ns: &Netns, settings: &[&str]) {
    let mut args = vec!["netns", "exec", ns.name(), "sysctl", "-qw"];
    args.extend_from_slice(settings);
    run("ip", &args);
}

fn ethtool(ns: &Netns, args: &[&str]) {
    let out = ns.exec("ethtool", args);
    assert!(
        out.status.success(),
        "ethtool {} in {}: {}",
        args.join(" "),
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair from `a` in `a_ns` to `b` in `b_ns`, both up.
fn veth(a_ns: &Netns, a: &str, a_mac: &str, b_ns: &Netns, b: &str, b_mac: &str, mtu: u32) {
    let mtu = mtu.to_string();
    a_ns.ip(&[
        "link",
        "add",
        a,
        "address",
        a_mac,
        "mtu",
        &mtu,
        "type",
        "veth",
        "peer",
        "name",
        b,
        "address",
        b_mac,
        "mtu",
        &mtu,
        "netns",
        b_ns.name(),
    ]);
    a_ns.ip(&["link", "set", a, "up"]);
}

impl Stacks {
    /// Builds the site with its members' links down (see [`Stacks::plug`]).
    /// Nothing is attached to the router's interfaces.
    pub fn new(tag: &str, opts: Options) -> Stacks {
        crate::require_root();
        let core = Netns::new(&format!("{tag}-core"));
        let router = Netns::new(&format!("{tag}-rtr"));
        let switch = Netns::new(&format!("{tag}-sw"));
        let member_ns: Vec<Netns> = opts
            .members
            .iter()
            .map(|m| Netns::new(&format!("{tag}-{}", m.id)))
            .collect();

        for ns in [&core, &router, &switch].into_iter().chain(&member_ns) {
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
        // The switch is a plain layer-2 box: nothing of its own on the wire.
        sysctl(
            &switch,
            &[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        );

        // core <-> router, as in crate::topology.
        veth(&router, "up0", UP0_MAC, &core, "gw0", GW_MAC, 1500);
        core.ip(&["link", "set", "gw0", "up"]);
        // NAPI on the peer of an XDP-redirecting veth; checksums in
        // software (see crate::topology).
        ethtool(&core, &["-K", "gw0", "gro", "on", "tx", "off"]);
        core.ip(&["addr", "add", "192.0.2.1/24", "dev", "gw0"]);
        core.ip(&["addr", "add", "2001:db8::1/64", "dev", "gw0", "nodad"]);
        core.ip(&["addr", "add", "203.0.113.1/32", "dev", "lo"]);
        core.ip(&["addr", "add", "2001:db8:ffff::1/128", "dev", "lo"]);
        core.ip(&["route", "add", MEMBERS4, "via", "192.0.2.2"]);
        core.ip(&["route", "add", MEMBERS6, "via", "2001:db8::2"]);

        // router <-> switch: the access link.
        veth(
            &router, ACCESS, ACC0_MAC, &switch, "sw0", SW0_MAC, ACCESS_MTU,
        );
        if opts.uplink_txvlan_off {
            ethtool(
                &switch,
                &["-K", "sw0"]
                    .iter()
                    .chain(TXVLAN_OFF)
                    .copied()
                    .collect::<Vec<_>>(),
            );
        }
        switch.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ]);
        switch.ip(&["link", "set", "sw0", "master", "br0", "up"]);
        // NAPI for the frames the router's XDP redirects into acc0. Once
        // sw0 is up: turned on while the veth is down, GRO did not give it
        // NAPI when it came up (6.18), and every redirected frame was lost
        // (no counter says so).
        ethtool(&switch, &["-K", "sw0", "gro", "on"]);

        router.ip(&["addr", "add", "192.0.2.2/24", "dev", "up0"]);
        router.ip(&["addr", "add", "2001:db8::2/64", "dev", "up0", "nodad"]);
        router.ip(&["addr", "add", "198.51.100.1/32", "dev", ACCESS]);
        router.ip(&["addr", "add", "fe80::1/64", "dev", ACCESS, "nodad"]);
        router.ip(&[
            "addr",
            "add",
            "2001:db8:1000::1/128",
            "dev",
            ACCESS,
            "nodad",
        ]);
        router.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        router.ip(&["route", "add", "default", "via", "2001:db8::1"]);
        // The kernel can reach the untagged members on the slow path; the
        // rest of member space is unreachable to it (it cannot push tags).
        for m in opts.members.iter().filter(|m| m.c_vlan == 0) {
            for p in &m.prefixes {
                let mut args = vec!["route", "add", p, "dev", ACCESS];
                if !p.contains(':') {
                    args.extend(["src", "198.51.100.1"]);
                }
                router.ip(&args);
            }
        }
        router.ip(&["route", "add", "unreachable", MEMBERS4]);
        router.ip(&["route", "add", "unreachable", MEMBERS6]);

        // The members' links: switch port <-> m0, m0 left down.
        let mut members = Vec::new();
        for (i, (spec, ns)) in opts.members.iter().zip(member_ns).enumerate() {
            let spec = MemberSpec {
                interface: ACCESS,
                ..spec.clone()
            };
            let mtu = ACCESS_MTU - if spec.s_vlan != 0 { 4 } else { 0 };
            let port = format!("sw-{}", spec.id);
            assert!(port.len() <= 15, "interface name {port} too long");
            let port_mac = format!("02:00:00:00:03:{:02x}", i + 1);
            veth(
                &switch, &port, &port_mac, &ns, MEMBER_DEV, spec.mac, ACCESS_MTU,
            );
            switch.ip(&["link", "set", &port, "master", "br0"]);
            ns.ip(&["link", "set", MEMBER_DEV, "mtu", &mtu.to_string()]);
            // Checksums in software: the router's XDP forwards frames as
            // they are.
            let mut k = vec!["-K", MEMBER_DEV, "tx", "off"];
            if opts.member_txvlan_off {
                k.extend(TXVLAN_OFF);
            }
            ethtool(&ns, &k);
            let tc = VlanTc::attach(&ns, MEMBER_DEV, spec.s_vlan, spec.c_vlan);
            members.push(Member {
                spec,
                tc,
                ns,
                port,
                mtu,
            });
        }
        switch.ip(&["link", "set", "br0", "up"]);

        let bpffs = Bpffs::mount(router.name());
        Stacks {
            members,
            switch,
            core,
            router,
            bpffs,
            opts,
        }
    }

    /// The member `id`.
    pub fn member(&self, id: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.id() == id)
            .unwrap_or_else(|| panic!("no member {id} in this site"))
    }

    /// Brings every member's link up, as a CPE comes up: addresses, routes
    /// (and the static neighbours of [`Options::static_neighbours`]); then
    /// waits for the bridge to forward on every port.
    pub fn plug(&self) {
        for m in &self.members {
            let ns = &m.ns;
            let conf = format!("net.ipv6.conf.{MEMBER_DEV}");
            let ra = match self.opts.gateway6 {
                Gateway6::Static => "0",
                Gateway6::FromRa => "2",
            };
            sysctl(
                ns,
                &[
                    &format!("{conf}.accept_ra={ra}"),
                    &format!("{conf}.forwarding=0"),
                    &format!("{conf}.accept_dad=0"),
                ],
            );
            ns.ip(&["link", "set", MEMBER_DEV, "up"]);
            let h4 = format!("{}/32", m.spec.host4);
            let h6 = format!("{}/128", m.spec.host6);
            ns.ip(&["addr", "add", &h4, "dev", MEMBER_DEV]);
            ns.ip(&["addr", "add", &h6, "dev", MEMBER_DEV, "nodad"]);
            ns.ip(&[
                "route",
                "add",
                "default",
                "via",
                &ACC_GW4.to_string(),
                "dev",
                MEMBER_DEV,
                "onlink",
            ]);
            if self.opts.gateway6 == Gateway6::Static {
                ns.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &ACC_LL6.to_string(),
                    "dev",
                    MEMBER_DEV,
                ]);
            }
            if self.opts.static_neighbours && m.tagged() {
                for gw in [
                    ACC_GW4.to_string(),
                    ACC_LL6.to_string(),
                    ACC_GW6.to_string(),
                ] {
                    ns.ip(&[
                        "neigh",
                        "replace",
                        &gw,
                        "lladdr",
                        ACC0_MAC,
                        "dev",
                        MEMBER_DEV,
                        "nud",
                        "permanent",
                    ]);
                }
            }
        }
        let forwarding = wait_for(Duration::from_secs(10), || {
            let out = self.switch.exec("bridge", &["link", "show"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ports = text.lines().filter(|l| l.contains("master br0")).count();
            let fwd = text
                .lines()
                .filter(|l| l.contains("master br0") && l.contains("state forwarding"))
                .count();
            (ports == self.members.len() + 1 && fwd == ports).then_some(())
        });
        assert!(
            forwarding.is_some(),
            "the bridge does not forward on every port:\n{}",
            String::from_utf8_lossy(&self.switch.exec("bridge", &["link", "show"]).stdout)
        );
    }

    /// The daemon's configuration: the uplink, one access interface and the
    /// members (with their MACs when [`Options::member_macs`]).
    pub fn config(&self) -> String {
        let mut s = String::new();
        s += "[datapath]\n";
        s += &format!("pin_dir = \"{}/collecte\"\n", self.bpffs.path.display());
        s += "max_members = 64\nroute_groups = 64\n\n";
        s += &format!(
            "[metrics]\nlisten = \"127.0.0.1:{}\"\n\n[log]\nlevel = \"info\"\n\n",
            self.opts.metrics_port
        );
        s += "[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway6 = \"2001:db8::1\"\n\n";
        s += &format!("[[access]]\ninterface = \"{ACCESS}\"\n\n");
        for m in &self.members {
            let spec = &m.spec;
            s += &format!(
                "[[member]]\nid = \"{}\"\ninterface = \"{ACCESS}\"\n",
                spec.id
            );
            if self.opts.member_macs {
                s += &format!("mac = \"{}\"\n", spec.mac);
            }
            if spec.s_vlan != 0 {
                s += &format!("s_vlan = {}\n", spec.s_vlan);
            }
            if spec.c_vlan != 0 {
                s += &format!("c_vlan = {}\n", spec.c_vlan);
            }
            let p: Vec<String> = spec.prefixes.iter().map(|p| format!("\"{p}\"")).collect();
            s += &format!("prefixes = [{}]\n\n", p.join(", "));
        }
        s
    }

    /// The router's addresses on the access interface, link-local ones
    /// included (as `ip` prints them, without prefix length).
    pub fn router_access_addresses(&self) -> Vec<String> {
        let out = self.router.ip(&["-o", "addr", "show", "dev", ACCESS]);
        out.lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let i = w.iter().position(|x| *x == "inet" || *x == "inet6")?;
                Some(w.get(i + 1)?.split('/').next()?.to_string())
            })
            .collect()
    }

    /// The router's link-local addresses on the access interface.
    pub fn router_link_locals(&self) -> Vec<Ipv6Addr> {
        self.router_access_addresses()
            .iter()
            .filter_map(|a| a.parse::<Ipv6Addr>().ok())
            .filter(|a| a.segments()[0] & 0xffc0 == 0xfe80)
            .collect()
    }

    /// The router's kernel forwarding counters (IPv4, IPv6), as
    /// [`crate::topology::Topology::kernel_forwarded`].
    pub fn kernel_forwarded(&self) -> (u64, u64) {
        crate::topology::kernel_forwarded(&self.router)
    }
}

/// A member's counters in the daemon's metrics: (receive packets, receive
/// bytes, transmit packets, transmit bytes, spoofed).
pub fn member_counters(m: &crate::daemon::Metrics, id: &str) -> [u64; 5] {
    [
        m.member(id, "receive_packets"),
        m.member(id, "receive_bytes"),
        m.member(id, "transmit_packets"),
        m.member(id, "transmit_bytes"),
        m.member(id, "spoofed_packets"),
    ]
}
