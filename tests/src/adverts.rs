//! Router advertisements as they cross a wire: a frame read back into its
//! fields with etherparse (not with collecte's own codec), and `ethtool
//! -k` read into a table, for the edge tests.
use std::{collections::BTreeMap, net::Ipv6Addr};

use etherparse::{Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice, VlanSlice};

use crate::Netns;

/// What a router advertisement frame says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenAdvert {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// (S-tag, C-tag), 0 for none; a single tag is the C-tag.
    pub tags: (u16, u16),
    /// TPIDs of the tags, outer first.
    pub tpids: Vec<u16>,
    pub ip_src: Ipv6Addr,
    pub ip_dst: Ipv6Addr,
    pub ip_hop_limit: u8,
    pub cur_hop_limit: u8,
    pub flags: u8,
    pub lifetime: u16,
    pub reachable: u32,
    pub retrans: u32,
    /// The options, in order: (type, body after type and length).
    pub options: Vec<(u8, Vec<u8>)>,
    /// The ICMPv6 checksum is right.
    pub checksum_ok: bool,
}

impl SeenAdvert {
    /// The Source Link-Layer Address option's MAC.
    pub fn source_ll(&self) -> Option<[u8; 6]> {
        self.options
            .iter()
            .find(|(t, _)| *t == 1)
            .and_then(|(_, b)| b.get(..6)?.try_into().ok())
    }

    /// The MTU option's value.
    pub fn mtu(&self) -> Option<u32> {
        self.options
            .iter()
            .find(|(t, _)| *t == 5)
            .and_then(|(_, b)| Some(u32::from_be_bytes(b.get(2..6)?.try_into().ok()?)))
    }
}

/// `frame` read as a router advertisement, if it is one.
pub fn parse_advert(frame: &[u8]) -> Option<SeenAdvert> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        return None;
    };
    let (tags, tpids) = match &p.vlan {
        None => ((0, 0), vec![]),
        Some(VlanSlice::SingleVlan(v)) => {
            ((0, v.vlan_identifier().value()), vec![eth.ether_type().0])
        }
        Some(VlanSlice::DoubleVlan(v)) => (
            (
                v.outer().vlan_identifier().value(),
                v.inner().vlan_identifier().value(),
            ),
            vec![eth.ether_type().0, v.outer().ether_type().0],
        ),
    };
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        return None;
    };
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
        return None;
    };
    let Icmpv6Type::Unknown {
        type_u8: 134,
        code_u8: 0,
        bytes5to8,
    } = icmp.icmp_type()
    else {
        return None;
    };
    let h = ip.header();
    let body = icmp.payload();
    let checksum_ok = icmp
        .header()
        .icmp_type
        .calc_checksum(
            h.source_addr().octets(),
            h.destination_addr().octets(),
            body,
        )
        .is_ok_and(|c| c == icmp.checksum());
    let mut options = Vec::new();
    let mut rest = body.get(8..)?;
    while rest.len() >= 2 {
        let len = usize::from(rest[1]) * 8;
        if len == 0 || len > rest.len() {
            return None;
        }
        options.push((rest[0], rest[2..len].to_vec()));
        rest = &rest[len..];
    }
    Some(SeenAdvert {
        eth_dst: eth.destination(),
        eth_src: eth.source(),
        tags,
        tpids,
        ip_src: h.source_addr(),
        ip_dst: h.destination_addr(),
        ip_hop_limit: h.hop_limit(),
        cur_hop_limit: bytes5to8[0],
        flags: bytes5to8[1],
        lifetime: u16::from_be_bytes([bytes5to8[2], bytes5to8[3]]),
        reachable: u32::from_be_bytes(body.get(..4)?.try_into().ok()?),
        retrans: u32::from_be_bytes(body.get(4..8)?.try_into().ok()?),
        options,
        checksum_ok,
    })
}

/// `ethtool -k DEV` in `ns`: feature -> (on, fixed).
pub fn features(ns: &Netns, dev: &str) -> BTreeMap<String, (bool, bool)> {
    let out = ns.exec("ethtool", &["-k", dev]);
    assert!(
        out.status.success(),
        "ethtool -k {dev} in {}: {}",
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(": ")?;
            let on = rest.starts_with("on");
            Some((name.to_string(), (on, rest.contains("[fixed]"))))
        })
        .collect()
}

/// Whether feature `name` of `dev` in `ns` is on.
pub fn feature_on(ns: &Netns, dev: &str, name: &str) -> bool {
    features(ns, dev)
        .get(name)
        .unwrap_or_else(|| panic!("{dev} in {} has no feature {name}", ns.name()))
        .0
}
