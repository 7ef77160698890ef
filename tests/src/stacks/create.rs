//! Building a [`Stacks`] site: namespaces, links, addresses, routes, the
//! bridge, and the members' tc programs (see the topology in the module
//! above).
use crate::{
    Netns,
    netns::run,
    tag_probe::TagProbe,
    topology::{Bpffs, MemberSpec},
    vlan_tc::VlanTc,
};

use super::{Member, Options, Stacks, TXVLAN_OFF, plan::*};

pub(super) fn sysctl(ns: &Netns, settings: &[&str]) {
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

        // What the router's XDP transmits (XDP_TX: its answers and ICMP
        // errors) reaches the peer veth's queue, but the kernel (6.18)
        // only wakes the peer to take it when the peer has an XDP program
        // of its own; without one the frames wait for the next redirected
        // frame. A program that passes everything on (`tag_probe`) on both
        // peers of the router, as a real NIC needs none.
        let peer_xdp = vec![
            TagProbe::attach(&switch, "sw0"),
            TagProbe::attach(&core, "gw0"),
        ];
        let bpffs = Bpffs::mount(router.name());
        Stacks {
            peer_xdp,
            members,
            switch,
            core,
            router,
            bpffs,
            opts,
        }
    }
}
