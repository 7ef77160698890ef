//! Packet fixtures built with etherparse: IP packets with correct checksums,
//! wrapped in Ethernet frames with any tags.
use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, Ipv4Header, Ipv6Header, UdpHeader};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_9100: u16 = 0x9100;

/// Parses "02:00:00:00:00:01".
pub fn mac(s: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    assert_eq!(parts.len(), 6, "bad MAC {s}");
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).expect("hex MAC");
    }
    out
}

/// An Ethernet frame: MACs, tags as (TPID, VLAN id), EtherType, payload.
pub fn ether(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header for a UDP packet of `payload_len` bytes, DF set.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload_len: usize) -> Ipv4Header {
    let mut h = Ipv4Header::new(
        (UdpHeader::LEN + payload_len) as u16,
        ttl,
        IpNumber::UDP,
        src.octets(),
        dst.octets(),
    )
    .expect("IPv4 header");
    h.identification = 0x1234;
    h
}

/// Serialises an IPv4 header (checksum recomputed; `total_len` grows by the
/// options) and a UDP datagram carrying `payload`.
pub fn ipv4_packet(mut h: Ipv4Header, payload: &[u8]) -> Vec<u8> {
    h.total_len = (h.header_len() + UdpHeader::LEN + payload.len()) as u16;
    h.header_checksum = h.calc_header_checksum();
    let udp = UdpHeader::with_ipv4_checksum(4000, 5000, &h, payload).expect("UDP");
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv4");
    udp.write(&mut out).expect("write UDP");
    out.extend_from_slice(payload);
    out
}

/// A UDP-in-IPv4 packet.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_packet(ipv4_header(src, dst, ttl, payload.len()), payload)
}

/// A UDP-in-IPv6 packet with `next_header` (normally UDP) as its first
/// header.
pub fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (UdpHeader::LEN + payload.len()) as u16,
        next_header: IpNumber::UDP,
        hop_limit,
        source: src.octets(),
        destination: dst.octets(),
    };
    let udp = UdpHeader::with_ipv6_checksum(4000, 5000, &h, payload).expect("UDP");
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv6");
    udp.write(&mut out).expect("write UDP");
    out.extend_from_slice(payload);
    out
}

/// The same IP packet one hop later: TTL or hop limit minus one, IPv4
/// checksum recomputed from scratch.
pub fn next_hop(ip: &[u8]) -> Vec<u8> {
    let mut out = ip.to_vec();
    match ip[0] >> 4 {
        4 => {
            let (mut h, _) = Ipv4Header::from_slice(ip).expect("IPv4 header");
            h.time_to_live -= 1;
            h.header_checksum = h.calc_header_checksum();
            let bytes = h.to_bytes();
            out[..bytes.len()].copy_from_slice(&bytes);
        }
        6 => out[7] -= 1,
        v => panic!("IP version {v}"),
    }
    out
}

/// Checks the IPv4 header checksum of the IP packet at `l3` in `frame` by
/// recomputing it. IPv6 has none; other frames pass.
pub fn assert_ipv4_checksum(frame: &[u8], l3: usize) {
    if frame.len() < l3 + 20 || frame[l3] >> 4 != 4 {
        return;
    }
    let (h, _) = Ipv4Header::from_slice(&frame[l3..]).expect("IPv4 header parses");
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum of the output frame is wrong"
    );
}
