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
use std::net::Ipv6Addr;

use crate::{
    Netns,
    topology::{Bpffs, MemberSpec, alice, bob, carol},
    vlan_tc::VlanTc,
};

mod config;
mod create;
pub mod diag;
mod plug;
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
    /// `[edge] ra_interval` (the router's default when `None`): the
    /// seconds between its unsolicited Router Advertisements.
    pub ra_interval: Option<u32>,
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
            ra_interval: None,
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
    /// The pass-everything XDP programs on the router's peers (see
    /// `Stacks::new`): detached first.
    pub peer_xdp: Vec<crate::tag_probe::TagProbe>,
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

impl Stacks {
    /// The member `id`.
    pub fn member(&self, id: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.id() == id)
            .unwrap_or_else(|| panic!("no member {id} in this site"))
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
