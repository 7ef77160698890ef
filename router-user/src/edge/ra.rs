//! The router advertisement the router sends on a member's attachment: a
//! pure codec, no I/O. [`Advert::frame`] builds the whole Ethernet frame,
//! tags included, ready for a packet socket.
//!
//! # The frame, byte by byte
//!
//! `T` is the number of tags (0 untagged, 1 for 802.1Q, 2 for QinQ) and
//! `L = 14 + 4T` the offset of the IPv6 header. Every field is big-endian.
//!
//! | offset | bytes | field | value |
//! | --- | --- | --- | --- |
//! | 0 | 6 | Ethernet destination | `33:33:00:00:00:01` (all-nodes) |
//! | 6 | 6 | Ethernet source | the access interface's MAC |
//! | 12 | 4 | QinQ only: S-tag | TPID `0x88a8`, TCI = `s_vlan` (priority 0, DEI 0) |
//! | 12 + 4(T−1) | 4 | tagged only: C-tag | TPID `0x8100`, TCI = `c_vlan` |
//! | L − 2 | 2 | EtherType | `0x86dd` |
//! | L | 4 | IPv6 version, class, flow | `0x60000000` |
//! | L + 4 | 2 | payload length | 32 |
//! | L + 6 | 1 | next header | 58 (ICMPv6) |
//! | L + 7 | 1 | hop limit | 255 |
//! | L + 8 | 16 | source | the interface's link-local address |
//! | L + 24 | 16 | destination | `ff02::1` |
//! | L + 40 | 1 | ICMPv6 type | 134 (Router Advertisement) |
//! | L + 41 | 1 | code | 0 |
//! | L + 42 | 2 | checksum | over the IPv6 pseudo-header and the 32 bytes |
//! | L + 44 | 1 | Cur Hop Limit | `[edge] ra_hop_limit` |
//! | L + 45 | 1 | flags | 0 (M = O = 0, no preference) |
//! | L + 46 | 2 | Router Lifetime | `[edge] router_lifetime` (0 in a final RA) |
//! | L + 48 | 4 | Reachable Time | 0 (unspecified) |
//! | L + 52 | 4 | Retrans Timer | 0 (unspecified) |
//! | L + 56 | 1 | option type | 1 (Source Link-Layer Address) |
//! | L + 57 | 1 | option length | 1 (8 bytes) |
//! | L + 58 | 6 | link-layer address | the interface's MAC |
//! | L + 64 | 1 | option type | 5 (MTU) |
//! | L + 65 | 1 | option length | 1 |
//! | L + 66 | 2 | reserved | 0 |
//! | L + 68 | 4 | MTU | the attachment's MTU ([`attachment_mtu`]) |
//!
//! The frame is `L + 72` bytes: 86 untagged, 90 with one tag, 94 with two.
//! It carries no Prefix Information option: member prefixes are routed,
//! never on-link.
use std::net::Ipv6Addr;

/// Ethernet destination of all-nodes multicast (`ff02::1`, RFC 2464).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ICMPv6 Router Advertisement.
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
/// Bytes of the ICMPv6 message: the RA (16) and its two options (8 each).
pub const ICMPV6_LEN: usize = 32;

const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_ICMPV6: u8 = 58;
const OPT_SOURCE_LL: u8 = 1;
const OPT_MTU: u8 = 5;

/// The tags of an attachment: `c_vlan` alone is one 802.1Q tag, both an
/// S-tag then a C-tag; 0 is none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tags {
    pub s_vlan: u16,
    pub c_vlan: u16,
}

impl Tags {
    /// How many tags the frames of the attachment carry.
    pub fn count(&self) -> u32 {
        match (self.s_vlan, self.c_vlan) {
            (_, 0) => 0,
            (0, _) => 1,
            _ => 2,
        }
    }
}

/// The IP MTU of an attachment on an interface of layer-3 MTU `iface_mtu`:
/// the datapath forwards a frame of at most MTU + 14 + 4 bytes (the
/// kernel's limit for a redirected frame), so one tag costs nothing and
/// the second costs 4 bytes (router-ebpf's `rewrite`: `too-big`).
pub fn attachment_mtu(iface_mtu: u32, tags: Tags) -> u32 {
    (iface_mtu + 4)
        .saturating_sub(4 * tags.count())
        .min(iface_mtu)
}

/// What one router advertisement says, and where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The access interface's MAC: the Ethernet source and the Source
    /// Link-Layer Address option.
    pub mac: [u8; 6],
    /// The interface's link-local address: the IPv6 source.
    pub source: Ipv6Addr,
    pub tags: Tags,
    /// Cur Hop Limit (0: unspecified).
    pub hop_limit: u8,
    /// Router Lifetime in seconds (0: not a default router).
    pub lifetime: u16,
    /// The MTU option's value: the attachment's MTU.
    pub mtu: u32,
}

impl Advert {
    /// The frame's length: 86 bytes and 4 per tag.
    pub fn len(&self) -> usize {
        14 + 4 * self.tags.count() as usize + 40 + ICMPV6_LEN
    }

    /// Never: a frame always has its headers.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole Ethernet frame (see the module's table).
    pub fn frame(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.len());
        f.extend_from_slice(&ALL_NODES_MAC);
        f.extend_from_slice(&self.mac);
        match self.tags.count() {
            0 => {}
            1 => push_tag(&mut f, ETH_P_8021Q, self.tags.c_vlan),
            _ => {
                push_tag(&mut f, ETH_P_8021AD, self.tags.s_vlan);
                push_tag(&mut f, ETH_P_8021Q, self.tags.c_vlan);
            }
        }
        f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        // IPv6 header.
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(ICMPV6_LEN as u16).to_be_bytes());
        f.push(IPPROTO_ICMPV6);
        f.push(255);
        f.extend_from_slice(&self.source.octets());
        f.extend_from_slice(&ALL_NODES.octets());
        // ICMPv6 Router Advertisement, checksum filled in below.
        let icmp = f.len();
        f.extend_from_slice(&[ICMPV6_ROUTER_ADVERT, 0, 0, 0]);
        f.push(self.hop_limit);
        f.push(0);
        f.extend_from_slice(&self.lifetime.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[OPT_SOURCE_LL, 1]);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&[OPT_MTU, 1, 0, 0]);
        f.extend_from_slice(&self.mtu.to_be_bytes());
        let sum = icmpv6_checksum(&self.source, &ALL_NODES, &f[icmp..]);
        f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
        debug_assert_eq!(f.len(), self.len());
        f
    }
}

fn push_tag(f: &mut Vec<u8>, tpid: u16, vid: u16) {
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
}

/// The ICMPv6 checksum of `message` (its checksum field zero) from `src`
/// to `dst` (RFC 4443 2.3: over the RFC 8200 pseudo-header).
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u64::from(*b));
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use etherparse::{Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice, VlanSlice};

    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

    fn advert(tags: Tags) -> Advert {
        Advert {
            mac: MAC,
            source: LL,
            tags,
            hop_limit: 64,
            lifetime: 1800,
            mtu: attachment_mtu(1500, tags),
        }
    }

    /// The untagged frame, written out byte by byte; its checksum worked
    /// out by hand below.
    #[rustfmt::skip]
    const UNTAGGED: [u8; 86] = [
        // Ethernet: all-nodes, the interface's MAC, IPv6.
        0x33, 0x33, 0x00, 0x00, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x02, 0x01,
        0x86, 0xdd,
        // IPv6: version 6, payload 32, ICMPv6, hop limit 255.
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        // RA: type 134, code 0, checksum 0x2538 (see `hand_checksum`);
        // hop limit 64, no flag, lifetime 1800 (0x0708), reachable 0,
        // retrans 0.
        0x86, 0x00, 0x25, 0x38, 0x40, 0x00, 0x07, 0x08,
        0, 0, 0, 0, 0, 0, 0, 0,
        // Source link-layer address.
        0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x02, 0x01,
        // MTU 1500 (0x05dc).
        0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0xdc,
    ];

    /// The frame the codec builds is the one written out above.
    #[test]
    fn the_untagged_frame_is_the_one_written_out() {
        assert_eq!(advert(Tags::default()).frame(), UNTAGGED);
    }

    /// The checksum of the written-out frame, from its 16-bit words listed
    /// one by one (not with [`icmpv6_checksum`]): they sum to 0x2_dac5,
    /// folded 0xdac7, whose complement is 0x2538.
    #[test]
    fn hand_checksum() {
        let words: &[u32] = &[
            // Pseudo-header: source fe80::1, destination ff02::1, length
            // 32, next header 58.
            0xfe80, 0x0001, 0xff02, 0x0001, 0x0020, 0x003a,
            // RA: 86 00, (checksum 0), 40 00, 07 08, reachable, retrans.
            0x8600, 0x4000, 0x0708,
            // Options: 01 01 02 00 00 00 02 01, 05 01 00 00 00 00 05 dc.
            0x0101, 0x0200, 0x0000, 0x0201, 0x0501, 0x0000, 0x0000, 0x05dc,
        ];
        let mut sum: u32 = words.iter().sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let hand = !(sum as u16);
        assert_eq!(hand, u16::from_be_bytes([UNTAGGED[56], UNTAGGED[57]]));
    }

    /// Every variant parses with etherparse into what the table says, with
    /// a checksum etherparse recomputes the same.
    #[test]
    fn frames_parse_as_documented() {
        for (tags, mtu, len) in [
            (Tags::default(), 1500, 86),
            (
                Tags {
                    s_vlan: 0,
                    c_vlan: 101,
                },
                1500,
                90,
            ),
            (
                Tags {
                    s_vlan: 10,
                    c_vlan: 102,
                },
                1496,
                94,
            ),
        ] {
            let a = advert(tags);
            let f = a.frame();
            assert_eq!(f.len(), len, "{tags:?}");
            assert_eq!(a.len(), len);
            let p = SlicedPacket::from_ethernet(&f).expect("parses");
            let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
                panic!("not Ethernet II")
            };
            assert_eq!(eth.destination(), ALL_NODES_MAC);
            assert_eq!(eth.source(), MAC);
            match (&p.vlan, tags.count()) {
                (None, 0) => {}
                (Some(VlanSlice::SingleVlan(v)), 1) => {
                    assert_eq!(eth.ether_type().0, ETH_P_8021Q);
                    assert_eq!(v.vlan_identifier().value(), tags.c_vlan);
                    assert_eq!(v.priority_code_point().value(), 0);
                }
                (Some(VlanSlice::DoubleVlan(v)), 2) => {
                    assert_eq!(eth.ether_type().0, ETH_P_8021AD);
                    assert_eq!(v.outer().vlan_identifier().value(), tags.s_vlan);
                    assert_eq!(v.outer().ether_type().0, ETH_P_8021Q);
                    assert_eq!(v.inner().vlan_identifier().value(), tags.c_vlan);
                    assert_eq!(v.inner().ether_type().0, ETH_P_IPV6);
                }
                (other, n) => panic!("{n} tags expected, parsed {other:?}"),
            }
            let Some(NetSlice::Ipv6(ip)) = &p.net else {
                panic!("not IPv6")
            };
            let h = ip.header();
            assert_eq!(h.source_addr(), LL);
            assert_eq!(h.destination_addr(), ALL_NODES);
            assert_eq!(h.hop_limit(), 255);
            assert_eq!(h.payload_length(), ICMPV6_LEN as u16);
            let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
                panic!("not ICMPv6")
            };
            assert_eq!(
                icmp.icmp_type(),
                Icmpv6Type::Unknown {
                    type_u8: ICMPV6_ROUTER_ADVERT,
                    code_u8: 0,
                    bytes5to8: [64, 0, 0x07, 0x08],
                }
            );
            let recomputed = icmp
                .header()
                .icmp_type
                .calc_checksum(LL.octets(), ALL_NODES.octets(), icmp.payload())
                .unwrap();
            assert_eq!(icmp.checksum(), recomputed, "{tags:?}");
            // Reachable, retrans, then the options in order.
            let body = icmp.payload();
            assert_eq!(&body[..8], &[0; 8]);
            assert_eq!(&body[8..16], &[1, 1, 2, 0, 0, 0, 2, 1]);
            assert_eq!(&body[16..20], &[5, 1, 0, 0]);
            assert_eq!(u32::from_be_bytes(body[20..24].try_into().unwrap()), mtu);
        }
    }

    #[test]
    fn the_attachment_mtu_loses_four_bytes_with_two_tags_only() {
        assert_eq!(attachment_mtu(1500, Tags::default()), 1500);
        assert_eq!(
            attachment_mtu(
                1500,
                Tags {
                    s_vlan: 0,
                    c_vlan: 7
                }
            ),
            1500
        );
        assert_eq!(
            attachment_mtu(
                1504,
                Tags {
                    s_vlan: 3,
                    c_vlan: 7
                }
            ),
            1500
        );
        assert_eq!(
            attachment_mtu(
                9000,
                Tags {
                    s_vlan: 3,
                    c_vlan: 7
                }
            ),
            8996
        );
        assert_eq!(
            attachment_mtu(
                0,
                Tags {
                    s_vlan: 3,
                    c_vlan: 7
                }
            ),
            0
        );
    }

    #[test]
    fn a_final_advert_has_lifetime_zero_and_a_valid_checksum() {
        let a = Advert {
            lifetime: 0,
            ..advert(Tags {
                s_vlan: 4094,
                c_vlan: 4094,
            })
        };
        let f = a.frame();
        let l = 14 + 8;
        assert_eq!(&f[l + 46..l + 48], &[0, 0]);
        let mut zeroed = f[l + 40..].to_vec();
        zeroed[2..4].fill(0);
        let sum = icmpv6_checksum(&LL, &ALL_NODES, &zeroed);
        assert_eq!(u16::from_be_bytes([f[l + 42], f[l + 43]]), sum);
        // The whole message, checksum included, sums to 0xffff.
        assert_eq!(icmpv6_checksum(&LL, &ALL_NODES, &f[l + 40..]), 0);
    }
}
