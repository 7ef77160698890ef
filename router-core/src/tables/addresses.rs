//! An interface's own addresses as the datapath uses them: the sources of
//! what it sends from the interface ([`IfaceAddrs`]), and, on an access
//! interface, the gateway addresses its members use (`GATEWAYS`).
use std::net::IpAddr;

use router_common::{GatewayKey, IfaceAddrs, MAX_GATEWAYS_PER_IFACE, addr_flags, kind};

/// What interface `slot` (of `kind`) answers from and for, given its
/// addresses as the kernel has them: the lowest IPv4, global IPv6 and
/// link-local IPv6 address are its sources; every address of an access
/// interface (the lowest [`MAX_GATEWAYS_PER_IFACE`]) is a gateway address.
/// Loopback, multicast and unspecified addresses are neither.
pub(super) fn derive(slot: u32, kind: u8, addrs: &[IpAddr]) -> (IfaceAddrs, Vec<GatewayKey>) {
    let mut usable: Vec<IpAddr> = addrs
        .iter()
        .copied()
        .filter(|a| !(a.is_loopback() || a.is_multicast() || a.is_unspecified()))
        .collect();
    usable.sort_unstable();
    usable.dedup();
    let mut out = IfaceAddrs::default();
    // Ascending: the first of a kind is the lowest.
    for a in &usable {
        match a {
            IpAddr::V4(v4) if out.flags & addr_flags::V4 == 0 => {
                out.v4 = v4.octets();
                out.flags |= addr_flags::V4;
            }
            IpAddr::V6(v6) if is_link_local(v6) && out.flags & addr_flags::LINK_LOCAL == 0 => {
                out.link_local = v6.octets();
                out.flags |= addr_flags::LINK_LOCAL;
            }
            IpAddr::V6(v6) if !is_link_local(v6) && out.flags & addr_flags::V6 == 0 => {
                out.v6 = v6.octets();
                out.flags |= addr_flags::V6;
            }
            _ => {}
        }
    }
    let gateways = if kind == kind::ACCESS {
        usable
            .iter()
            .take(MAX_GATEWAYS_PER_IFACE)
            .map(|a| match a {
                IpAddr::V4(v4) => GatewayKey::v4(slot as u16, v4.octets()),
                IpAddr::V6(v6) => GatewayKey::v6(slot as u16, v6.octets()),
            })
            .collect()
    } else {
        Vec::new()
    };
    (out, gateways)
}

fn is_link_local(a: &std::net::Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn the_lowest_of_each_kind_are_the_sources() {
        let (a, gws) = derive(
            3,
            kind::ACCESS,
            &parse(&[
                "fe80::5054:ff:fe12:3456",
                "2001:db8:1000::9",
                "198.51.100.9",
                "fe80::1",
                "198.51.100.1",
                "2001:db8:1000::1",
                "::1",
                "127.0.0.1",
            ]),
        );
        assert_eq!(a.v4, [198, 51, 100, 1]);
        assert_eq!(
            a.v6,
            "2001:db8:1000::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(
            a.link_local,
            "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            a.flags,
            addr_flags::V4 | addr_flags::V6 | addr_flags::LINK_LOCAL
        );
        assert_eq!(gws.len(), 6, "every address but loopback: {gws:?}");
        assert!(gws.iter().all(|g| g.iface == 3));
        assert!(gws.contains(&GatewayKey::v4(3, [198, 51, 100, 9])));
    }

    #[test]
    fn uplinks_have_sources_and_no_gateway() {
        let (a, gws) = derive(1, kind::UPLINK, &parse(&["192.0.2.2", "2001:db8::2"]));
        assert_eq!(a.flags, addr_flags::V4 | addr_flags::V6);
        assert!(gws.is_empty());
        let (none, gws) = derive(2, kind::ACCESS, &[]);
        assert_eq!(none, IfaceAddrs::default());
        assert!(gws.is_empty());
    }

    #[test]
    fn at_most_so_many_gateways() {
        let many: Vec<IpAddr> = (1..=40u8)
            .map(|i| IpAddr::from([198, 51, 100, i]))
            .collect();
        let (_, gws) = derive(2, kind::ACCESS, &many);
        assert_eq!(gws.len(), MAX_GATEWAYS_PER_IFACE);
        assert_eq!(gws[0], GatewayKey::v4(2, [198, 51, 100, 1]));
    }
}
