//! Packet headers, their sizes and EtherTypes, the one bounds-checked
//! accessor and the TTL update, shared by the datapath and the benchmark's
//! anchors (which include this file). It knows the wire format only: no map,
//! no reason, no decision.
use aya_ebpf::programs::XdpContext;
use core::mem::size_of;

pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPV6_HLEN: usize = 40;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
/// An older outer TPID, still met on QinQ lines.
pub const ETH_P_QINQ_9100: u16 = 0x9100;

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: [u8; 2],
}

#[repr(C)]
pub struct VlanHdr {
    pub tci: [u8; 2],
    pub proto: [u8; 2],
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub id: [u8; 2],
    pub frag_off: [u8; 2],
    pub ttl: u8,
    pub protocol: u8,
    pub check: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next_hdr: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// ICMP and ICMPv6: type, code, checksum, and the 4 bytes that depend on
/// the type.
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    pub check: [u8; 2],
    pub rest: [u8; 4],
}

pub const ICMP_HLEN: usize = 8;
pub const IPV4_HLEN: usize = 20;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv4 `frag_off` bits: don't fragment, more fragments, the offset.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET: u16 = 0x1fff;

/// The one bounds-checked accessor: a pointer to a `T` at `offset` bytes into
/// the frame, or `None` when the frame is too short.
#[inline(always)]
pub fn header<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    if start + offset + size_of::<T>() > ctx.data_end() {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Decrements the TTL and updates the checksum incrementally (RFC 1624,
/// equation 3: HC' = ~(~HC + ~m + m')), which gives the same bytes as a full
/// recomputation.
#[inline(always)]
pub fn decrement_ttl(ip: &mut Ipv4Hdr) {
    let old = u16::from_be_bytes([ip.ttl, ip.protocol]) as u32;
    ip.ttl -= 1;
    let new = u16::from_be_bytes([ip.ttl, ip.protocol]) as u32;
    let hc = u16::from_be_bytes(ip.check) as u32;
    let mut sum = (!hc & 0xffff) + (!old & 0xffff) + new;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    ip.check = (!(sum as u16)).to_be_bytes();
}
