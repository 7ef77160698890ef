//! Packet fixtures built with etherparse: IP packets with correct checksums,
//! wrapped in Ethernet frames with any tags.
use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpNumber, Ipv4Header,
    Ipv6Header, TcpHeader, UdpHeader,
};

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
pub fn ether(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
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

/// An IPv4 packet: header `h` (options kept; total length and checksum
/// recomputed) followed by `l4` as it is, whatever `h.protocol` says.
pub fn ipv4_raw(mut h: Ipv4Header, l4: &[u8]) -> Vec<u8> {
    h.total_len = (h.header_len() + l4.len()) as u16;
    h.header_checksum = h.calc_header_checksum();
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv4");
    out.extend_from_slice(l4);
    out
}

/// A TCP SYN carrying `payload`, in IPv4.
pub fn ipv4_tcp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = ipv4_header(src, dst, ttl, 0);
    h.protocol = IpNumber::TCP;
    let mut tcp = TcpHeader::new(40000, 443, 0x0102_0304, 64240);
    tcp.syn = true;
    tcp.checksum = tcp
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload)
        .expect("TCP checksum");
    let mut l4 = Vec::new();
    tcp.write(&mut l4).expect("write TCP");
    l4.extend_from_slice(payload);
    ipv4_raw(h, &l4)
}

/// An ICMP echo request carrying `payload`, in IPv4.
pub fn ipv4_icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = ipv4_header(src, dst, ttl, 0);
    h.protocol = IpNumber::ICMP;
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 }),
        payload,
    );
    let mut l4 = Vec::new();
    icmp.write(&mut l4).expect("write ICMP");
    l4.extend_from_slice(payload);
    ipv4_raw(h, &l4)
}

/// An IPv6 packet whose first next header is `next_header`, followed by
/// `payload` as it is (extension headers included, if any).
pub fn ipv6_raw(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    next_header: u8,
    payload: &[u8],
) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: payload.len() as u16,
        next_header: IpNumber(next_header),
        hop_limit,
        source: src.octets(),
        destination: dst.octets(),
    };
    let mut out = Vec::new();
    h.write(&mut out).expect("write IPv6");
    out.extend_from_slice(payload);
    out
}

/// An ICMPv6 echo request carrying `payload`.
pub fn ipv6_icmp_echo(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let icmp = Icmpv6Header::with_checksum(
        Icmpv6Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 }),
        src.octets(),
        dst.octets(),
        payload,
    )
    .expect("ICMPv6 checksum");
    let mut l4 = Vec::new();
    icmp.write(&mut l4).expect("write ICMPv6");
    l4.extend_from_slice(payload);
    ipv6_raw(src, dst, hop_limit, IpNumber::IPV6_ICMP.0, &l4)
}

/// The frame padded with zeros to `len` bytes (60 is the Ethernet minimum
/// without the FCS).
pub fn pad(frame: &[u8], len: usize) -> Vec<u8> {
    let mut out = frame.to_vec();
    if out.len() < len {
        out.resize(len, 0);
    }
    out
}

/// Rewrites the checksum of the IPv4 header at the start of `ip`, over the
/// bytes its IHL announces (as far as `ip` goes), whatever else is wrong
/// with it: for malformed headers that must differ from a good one in one
/// way only.
pub fn set_ipv4_checksum(ip: &mut [u8]) {
    let ihl = ((ip[0] & 0x0f) as usize * 4).min(ip.len());
    ip[10] = 0;
    ip[11] = 0;
    let mut sum: u32 = 0;
    for chunk in ip[..ihl].chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}
