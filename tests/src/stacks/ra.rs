//! A Router Advertisement like the router's, built here (apart from
//! collecte's codec) so that tests can check that one reaches a member on
//! its tags and that the member's kernel takes its default route from it;
//! and the route a member took from one.
use std::net::Ipv6Addr;

use etherparse::{Icmpv6Header, Icmpv6Type, IpNumber};

use crate::{
    Netns,
    frames::{ipv6_raw, mac},
};

/// All-nodes multicast, and its Ethernet address.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_NODES_MAC: &str = "33:33:00:00:00:01";

/// An IPv6 Router Advertisement (RFC 4861 4.2) from `src` (a link-local
/// address) to all nodes, hop limit 255: router lifetime `lifetime`
/// seconds, no prefix, a source link-layer address option with `src_mac`.
pub fn router_advertisement(src: Ipv6Addr, src_mac: &str, lifetime: u16) -> Vec<u8> {
    let l = lifetime.to_be_bytes();
    // Current hop limit 64, no flags, router lifetime.
    let ty = Icmpv6Type::Unknown {
        type_u8: 134,
        code_u8: 0,
        bytes5to8: [64, 0, l[0], l[1]],
    };
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_be_bytes()); // reachable time
    body.extend_from_slice(&0u32.to_be_bytes()); // retransmission timer
    body.extend_from_slice(&[1, 1]); // source link-layer address, 8 bytes
    body.extend_from_slice(&mac(src_mac));
    let icmp = Icmpv6Header::with_checksum(ty, src.octets(), ALL_NODES.octets(), &body)
        .expect("ICMPv6 checksum");
    let mut l4 = Vec::new();
    icmp.write(&mut l4).expect("write ICMPv6");
    l4.extend_from_slice(&body);
    ipv6_raw(src, ALL_NODES, 255, IpNumber::IPV6_ICMP.0, &l4)
}

/// The IPv6 default route `ns` learnt from a Router Advertisement (`proto
/// ra`) via one of `routers`, if any; and `ip -6 route show default` as
/// printed.
pub fn default_route_from_ra(ns: &Netns, routers: &[Ipv6Addr]) -> (Option<String>, String) {
    let out = ns.ip(&["-6", "route", "show", "default"]);
    let found = out
        .lines()
        .filter(|l| l.contains("proto ra"))
        .find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "via")
                .and_then(|i| w.get(i + 1)?.parse::<Ipv6Addr>().ok())
                .is_some_and(|gw| routers.contains(&gw))
        })
        .map(str::to_string);
    (found, out)
}
