//! Parsing: the VLAN tags of a frame ([`l2`]), then its IP header ([`l3`]),
//! into a [`Packet`]. It reads the frame only (through [`header`]), touches
//! no map and writes nothing; what it cannot handle is an error that is the
//! verdict's reason.
use aya_ebpf::programs::XdpContext;
use router_common::reason;

use crate::packet::{
    ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ETH_P_QINQ_9100, EthHdr, IPV6_HLEN,
    Ipv4Hdr, Ipv6Hdr, VLAN_HLEN, VlanHdr, header,
};

const VID_MASK: u16 = 0x0fff;
const NEXTHDR_HOP: u8 = 0;

/// The layer-2 envelope of a frame: its tags and what they carry.
pub struct L2 {
    /// Number of VLAN tags (0..=2).
    pub tags: u32,
    /// Outer tag of a double-tagged frame, else 0.
    pub s_vlan: u16,
    /// The only tag of a single-tagged frame, or the inner tag; else 0.
    pub c_vlan: u16,
    /// Offset of the layer-3 header.
    pub l3: usize,
    /// The EtherType after the tags.
    pub proto: u16,
}

/// Mask of a layer-3 offset (14, 18 or 22): what [`L2::l3_at`] and
/// [`Packet::l3_at`] give is below 32 for the verifier too.
const L3_MASK: usize = 0x1f;

impl L2 {
    /// `l3`, bounded for the verifier: a BPF subprogram reads it from its
    /// caller's stack, where it has no bounds.
    #[inline(always)]
    pub fn l3_at(&self) -> usize {
        self.l3 & L3_MASK
    }
}

/// The layer-2 envelope and layer-3 essentials of a frame.
pub struct Packet {
    /// Number of VLAN tags (0..=2).
    pub tags: u32,
    /// Outer tag of a double-tagged frame, else 0.
    pub s_vlan: u16,
    /// The only tag of a single-tagged frame, or the inner tag; else 0.
    pub c_vlan: u16,
    /// Offset of the IP header.
    pub l3: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// IP packet length from its header.
    pub len: u32,
    /// Bytes from the IP header to the end of the frame (the IP packet plus
    /// any Ethernet padding, which is forwarded as it is).
    pub wire: u32,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 protocol, or IPv6 first next header.
    pub proto: u8,
    /// IP header length (IPv4: from the IHL; IPv6: 40).
    pub hlen: u32,
    /// IPv4 `frag_off` (flags and offset, host order); 0 for IPv6.
    pub frag: u16,
    /// Addresses: IPv4 in `[0]`, IPv6 in big-endian 64-bit halves.
    pub src: [u64; 2],
    pub dst: [u64; 2],
}

impl Packet {
    /// `l3`, bounded for the verifier (see [`L2::l3_at`]).
    #[inline(always)]
    pub fn l3_at(&self) -> usize {
        self.l3 & L3_MASK
    }

    /// `hlen`, bounded for the verifier (an IPv4 IHL is at most 60).
    #[inline(always)]
    pub fn hlen_at(&self) -> usize {
        self.hlen as usize & 0x3f
    }
}

/// Parses the VLAN tags. Truncated tags are malformed.
#[inline(always)]
pub fn l2(ctx: &XdpContext) -> Result<L2, u32> {
    let eth = header::<EthHdr>(ctx, 0).ok_or(reason::DROP_MALFORMED)?;
    let mut l2 = L2 {
        tags: 0,
        s_vlan: 0,
        c_vlan: 0,
        l3: ETH_HLEN,
        proto: u16::from_be_bytes(unsafe { (*eth).proto }),
    };
    let proto = l2.proto;
    if proto == ETH_P_8021AD || proto == ETH_P_8021Q || proto == ETH_P_QINQ_9100 {
        let tag = header::<VlanHdr>(ctx, ETH_HLEN).ok_or(reason::DROP_MALFORMED)?;
        l2.c_vlan = u16::from_be_bytes(unsafe { (*tag).tci }) & VID_MASK;
        l2.proto = u16::from_be_bytes(unsafe { (*tag).proto });
        l2.tags = 1;
        l2.l3 = ETH_HLEN + VLAN_HLEN;
        if l2.proto == ETH_P_8021Q {
            let inner =
                header::<VlanHdr>(ctx, ETH_HLEN + VLAN_HLEN).ok_or(reason::DROP_MALFORMED)?;
            l2.s_vlan = l2.c_vlan;
            l2.c_vlan = u16::from_be_bytes(unsafe { (*inner).tci }) & VID_MASK;
            l2.proto = u16::from_be_bytes(unsafe { (*inner).proto });
            l2.tags = 2;
            l2.l3 = ETH_HLEN + 2 * VLAN_HLEN;
        }
    }
    Ok(l2)
}

/// Parses the IP header after the tags `l2` found. Errors are verdict
/// reasons.
#[inline(always)]
pub fn l3(ctx: &XdpContext, l2: &L2) -> Result<Packet, u32> {
    let mut p = Packet {
        tags: l2.tags,
        s_vlan: l2.s_vlan,
        c_vlan: l2.c_vlan,
        l3: l2.l3,
        v6: false,
        len: 0,
        wire: 0,
        ttl: 0,
        proto: 0,
        hlen: 0,
        frag: 0,
        src: [0; 2],
        dst: [0; 2],
    };
    let frame_len = (ctx.data_end() - ctx.data()) as u32;
    p.wire = frame_len.saturating_sub(p.l3 as u32);
    if l2.proto == ETH_P_IP {
        let ip = header::<Ipv4Hdr>(ctx, p.l3).ok_or(reason::DROP_MALFORMED)?;
        let ip = unsafe { &*ip };
        let ihl = (ip.version_ihl & 0x0f) as u32 * 4;
        p.len = u16::from_be_bytes(ip.tot_len) as u32;
        if ip.version_ihl >> 4 != 4 || ihl < 20 || p.len < ihl || p.l3 as u32 + p.len > frame_len {
            return Err(reason::DROP_MALFORMED);
        }
        p.ttl = ip.ttl;
        p.proto = ip.protocol;
        p.hlen = ihl;
        p.frag = u16::from_be_bytes(ip.frag_off);
        p.src[0] = u32::from_be_bytes(ip.src) as u64;
        p.dst[0] = u32::from_be_bytes(ip.dst) as u64;
        Ok(p)
    } else if l2.proto == ETH_P_IPV6 {
        let ip = header::<Ipv6Hdr>(ctx, p.l3).ok_or(reason::DROP_MALFORMED)?;
        let ip = unsafe { &*ip };
        p.len = IPV6_HLEN as u32 + u16::from_be_bytes(ip.payload_len) as u32;
        if ip.vtc_flow[0] >> 4 != 6 || p.l3 as u32 + p.len > frame_len {
            return Err(reason::DROP_MALFORMED);
        }
        if ip.next_hdr == NEXTHDR_HOP {
            return Err(reason::PASS_IPV6_EXTENSION);
        }
        p.v6 = true;
        p.ttl = ip.hop_limit;
        p.proto = ip.next_hdr;
        p.hlen = IPV6_HLEN as u32;
        p.src = addr6(&ip.src);
        p.dst = addr6(&ip.dst);
        Ok(p)
    } else {
        Err(reason::PASS_NOT_IP)
    }
}

#[inline(always)]
fn addr6(a: &[u8; 16]) -> [u64; 2] {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    [u64::from_be_bytes(hi), u64::from_be_bytes(lo)]
}

/// An IPv6 address of `Packet::src`/`dst` as bytes.
#[inline(always)]
pub fn bytes6(a: &[u64; 2]) -> [u8; 16] {
    let (hi, lo) = (a[0].to_be_bytes(), a[1].to_be_bytes());
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi);
    out[8..].copy_from_slice(&lo);
    out
}

/// IPv6 link-local (fe80::/10), from the address's upper half.
#[inline(always)]
pub fn link_local6(hi: u64) -> bool {
    hi >> 54 == 0xfe80 >> 6
}
