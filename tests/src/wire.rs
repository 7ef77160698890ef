//! What the program answers, built independently of it with etherparse
//! (checksums recomputed here, never copied from the program's output):
//! ARP packets, ICMP and ICMPv6 messages, Neighbor Discovery messages. And
//! [`check_frame`], the consistency check of any frame the program
//! transmits or redirects (lengths, checksums), which the fixture harness
//! and the randomised test apply to every such frame.
use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    Icmpv4Header, Icmpv4Slice, Icmpv4Type, Icmpv6Header, Icmpv6Slice, Icmpv6Type, IpNumber,
    Ipv4Dscp, Ipv4Header, Ipv6Header,
};

use crate::frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_9100, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// An Ethernet/IPv4 ARP packet (28 bytes).
pub fn arp(oper: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0x00, 6, 4];
    p.extend_from_slice(&oper.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// An IPv6 packet carrying one ICMPv6 message: `kind`, `code`, the four
/// bytes after the checksum (`rest`), then `body`; checksum by etherparse.
pub fn icmp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    (kind, code, rest): (u8, u8, [u8; 4]),
    body: &[u8],
) -> Vec<u8> {
    let t = Icmpv6Type::Unknown {
        type_u8: kind,
        code_u8: code,
        bytes5to8: rest,
    };
    let icmp =
        Icmpv6Header::with_checksum(t, src.octets(), dst.octets(), body).expect("ICMPv6 checksum");
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (8 + body.len()) as u16,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit,
        source: src.octets(),
        destination: dst.octets(),
    };
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv6");
    icmp.write(&mut out).expect("write ICMPv6");
    out.extend_from_slice(body);
    out
}

/// An ICMP error as the router sends it: TOS 0xc0, identification 0, no
/// flag, TTL 64; `kind`, `code`, `rest` and the quoted `body`.
pub fn icmp4_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    (kind, code, rest): (u8, u8, [u8; 4]),
    body: &[u8],
) -> Vec<u8> {
    let mut h = Ipv4Header::new(
        (8 + body.len()) as u16,
        64,
        IpNumber::ICMP,
        src.octets(),
        dst.octets(),
    )
    .expect("IPv4 header");
    h.dscp = Ipv4Dscp::try_new(0xc0 >> 2).expect("DSCP");
    h.dont_fragment = false;
    h.identification = 0;
    h.header_checksum = h.calc_header_checksum();
    let mut icmp = vec![kind, code, 0, 0];
    icmp.extend_from_slice(&rest);
    icmp.extend_from_slice(body);
    let sum = internet_checksum(&icmp).to_be_bytes();
    icmp[2] = sum[0];
    icmp[3] = sum[1];
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv4");
    out.extend_from_slice(&icmp);
    out
}

/// The Internet checksum (RFC 1071) of `data`, to store big-endian.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for w in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 echo reply the router sends for `request` (an IPv4 echo
/// request from `member` to `gateway`): addresses swapped, TTL 64, type 0,
/// identification, flags and payload kept; checksums by etherparse.
pub fn echo4_reply(request: &[u8]) -> Vec<u8> {
    let (mut h, rest) = Ipv4Header::from_slice(request).expect("IPv4 request");
    std::mem::swap(&mut h.source, &mut h.destination);
    h.time_to_live = 64;
    h.header_checksum = h.calc_header_checksum();
    let icmp = Icmpv4Slice::from_slice(rest).expect("ICMP request");
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        panic!("not an echo request");
    };
    let reply = Icmpv4Header::with_checksum(Icmpv4Type::EchoReply(echo), icmp.payload());
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv4");
    reply.write(&mut out).expect("write ICMP");
    out.extend_from_slice(icmp.payload());
    out
}

/// The ICMPv6 echo reply the router sends for `request`.
pub fn echo6_reply(request: &[u8]) -> Vec<u8> {
    let (h, rest) = Ipv6Header::from_slice(request).expect("IPv6 request");
    let icmp = Icmpv6Slice::from_slice(rest).expect("ICMPv6 request");
    let Icmpv6Type::EchoRequest(echo) = icmp.icmp_type() else {
        panic!("not an echo request");
    };
    let (src, dst) = (Ipv6Addr::from(h.destination), Ipv6Addr::from(h.source));
    let reply = Icmpv6Header::with_checksum(
        Icmpv6Type::EchoReply(echo),
        src.octets(),
        dst.octets(),
        icmp.payload(),
    )
    .expect("ICMPv6 checksum");
    let mut b = Vec::new();
    reply.write(&mut b).expect("write");
    let (kind, code, rest) = (b[0], b[1], [b[4], b[5], b[6], b[7]]);
    icmp6(src, dst, 64, (kind, code, rest), icmp.payload())
}

/// The offset of the layer-3 header after any VLAN tags, and its
/// EtherType.
pub fn l3_of(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    loop {
        let t = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        if t == ETH_P_8021Q || t == ETH_P_8021AD || t == ETH_P_9100 {
            off += 4;
        } else {
            return Some((off + 2, t));
        }
    }
}

/// Checks a frame the program transmits or redirects: its IP header's
/// lengths match the frame (an IPv4 or IPv6 packet may be followed by
/// padding only when `padding` is allowed), its IPv4 header checksum is
/// right, and, when `built` (the program wrote the whole message: ICMP
/// errors, Neighbor Discovery), so is its ICMP or ICMPv6 checksum. ARP
/// must be 28 bytes or more.
pub fn check_frame(frame: &[u8], built: bool, padding: bool) -> Result<(), String> {
    check(frame, true, built, padding)
}

/// [`check_frame`] without the IPv4 header checksum: for a forwarded
/// frame whose input had a wrong one (the program updates it, never
/// recomputes it).
pub fn check_lengths(frame: &[u8], padding: bool) -> Result<(), String> {
    check(frame, false, false, padding)
}

fn check(frame: &[u8], ip_checksum: bool, built: bool, padding: bool) -> Result<(), String> {
    let (l3, proto) = l3_of(frame).ok_or("no complete Ethernet header")?;
    let ip = &frame[l3..];
    match proto {
        ETH_P_ARP => {
            if ip.len() < 28 {
                return Err(format!("ARP of {} bytes", ip.len()));
            }
            Ok(())
        }
        ETH_P_IP => {
            let (h, _) = Ipv4Header::from_slice(ip).map_err(|e| format!("IPv4: {e}"))?;
            let total = h.total_len as usize;
            if total > ip.len() || (!padding && total != ip.len()) {
                return Err(format!("IPv4 total length {total} for {} bytes", ip.len()));
            }
            if ip_checksum && h.header_checksum != h.calc_header_checksum() {
                return Err("IPv4 header checksum wrong".into());
            }
            if built && h.protocol == IpNumber::ICMP {
                let icmp = &ip[h.header_len()..total];
                if internet_checksum(icmp) != 0 {
                    return Err("ICMP checksum wrong".into());
                }
            }
            Ok(())
        }
        ETH_P_IPV6 => {
            let (h, _) = Ipv6Header::from_slice(ip).map_err(|e| format!("IPv6: {e}"))?;
            let total = 40 + h.payload_length as usize;
            if total > ip.len() || (!padding && total != ip.len()) {
                return Err(format!(
                    "IPv6 payload length {} for {} bytes",
                    h.payload_length,
                    ip.len()
                ));
            }
            if built && h.next_header == IpNumber::IPV6_ICMP {
                let icmp =
                    Icmpv6Slice::from_slice(&ip[40..total]).map_err(|e| format!("ICMPv6: {e}"))?;
                if !icmp.is_checksum_valid(h.source, h.destination) {
                    return Err("ICMPv6 checksum wrong".into());
                }
            }
            Ok(())
        }
        other => Err(format!("EtherType {other:#06x}")),
    }
}
