//! Packet headers and the one bounds-checked accessor, shared by the
//! datapath and the benchmark's anchors (which include this file).
use aya_ebpf::programs::XdpContext;
use core::mem::size_of;

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
