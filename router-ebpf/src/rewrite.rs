//! Rewriting a frame for its [`NextHop`]: the TTL and MTU checks
//! ([`fits`]), the layer-2 header with its tags, and the TTL or hop-limit
//! decrement ([`rewrite`]). It writes the frame only (through [`header`]);
//! it reads no map, and which next hop to take is decided before it.
use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use router_common::{ra::line_mtu, reason};

use crate::{
    packet::{
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, EthHdr, Ipv4Hdr, Ipv6Hdr,
        VLAN_HLEN, VlanHdr, decrement_ttl, header,
    },
    parse::Packet,
};

/// Where a forwarded frame goes, as the lookup found it.
pub struct NextHop {
    /// Interface slot to redirect to.
    pub egress: u32,
    /// The member's MAC, or the gateway's.
    pub dst_mac: [u8; 6],
    /// The egress interface's MAC.
    pub src_mac: [u8; 6],
    /// The egress interface's layer-3 MTU.
    pub mtu: u32,
    pub tags: Tags,
}

impl NextHop {
    /// The largest IP packet the egress takes with the tags it leaves with
    /// (the MTU an ICMP error announces).
    #[inline(always)]
    pub fn limit(&self) -> u32 {
        line_mtu(self.mtu, self.tags.count)
    }
}

/// The VLAN tags a frame leaves with: `count` of them, `first` under TPID
/// `outer`, then `second` under 0x8100. The priority bits are not kept.
pub struct Tags {
    /// 0, 1 or 2.
    pub count: u32,
    pub outer: u16,
    pub first: u16,
    pub second: u16,
}

impl Tags {
    /// A member's line: untagged, its C-tag alone (802.1Q), or its S-tag
    /// (802.1ad) then its C-tag.
    #[inline(always)]
    pub fn member(s_vlan: u16, c_vlan: u16) -> Self {
        let count = (s_vlan != 0) as u32 + (c_vlan != 0) as u32;
        Tags {
            count,
            outer: if count == 2 {
                ETH_P_8021AD
            } else {
                ETH_P_8021Q
            },
            first: if count == 2 { s_vlan } else { c_vlan },
            second: c_vlan,
        }
    }

    /// An uplink's: its one 802.1Q tag, if it has one.
    #[inline(always)]
    pub fn uplink(vlan: u16) -> Self {
        Tags {
            count: (vlan != 0) as u32,
            outer: ETH_P_8021Q,
            first: vlan,
            second: 0,
        }
    }
}

/// Whether the packet can be forwarded to `hop`: its TTL or hop limit is
/// above 1, and it fits (the reason it cannot otherwise, `ttl-exceeded` or
/// `too-big`).
#[inline(always)]
pub fn fits(p: &Packet, hop: &NextHop) -> Result<(), u32> {
    if p.ttl <= 1 {
        return Err(reason::PASS_TTL_EXCEEDED);
    }
    // The IP packet must fit the MTU, and the frame the kernel's limit for
    // a redirected frame: MTU + Ethernet header + one tag.
    let tags = hop.tags.count;
    if p.len > hop.mtu || p.wire + VLAN_HLEN as u32 * tags > hop.mtu + VLAN_HLEN as u32 {
        return Err(reason::PASS_TOO_BIG);
    }
    Ok(())
}

/// Replaces the layer-2 header (MACs and tags) and decrements the TTL or
/// hop limit of a packet that [`fits`]. Fails with the reason the frame
/// goes to the kernel instead, in which case the frame is untouched.
#[inline(always)]
pub fn rewrite(ctx: &XdpContext, p: &Packet, hop: &NextHop) -> Result<(), u32> {
    let tags = hop.tags.count;
    let new_l3 = ETH_HLEN + VLAN_HLEN * tags as usize;
    let delta = p.l3 as i32 - new_l3 as i32;
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Err(reason::PASS_TOO_BIG);
    }
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Err(reason::DROP_MALFORMED);
    };
    let eth = unsafe { &mut *eth };
    eth.dst = hop.dst_mac;
    eth.src = hop.src_mac;
    let l3_proto = if p.v6 { ETH_P_IPV6 } else { ETH_P_IP };
    if tags == 0 {
        eth.proto = l3_proto.to_be_bytes();
    } else {
        eth.proto = hop.tags.outer.to_be_bytes();
        let Some(t) = header::<VlanHdr>(ctx, ETH_HLEN) else {
            return Err(reason::DROP_MALFORMED);
        };
        let t = unsafe { &mut *t };
        t.tci = hop.tags.first.to_be_bytes();
        if tags == 1 {
            t.proto = l3_proto.to_be_bytes();
        } else {
            t.proto = ETH_P_8021Q.to_be_bytes();
            let Some(t2) = header::<VlanHdr>(ctx, ETH_HLEN + VLAN_HLEN) else {
                return Err(reason::DROP_MALFORMED);
            };
            let t2 = unsafe { &mut *t2 };
            t2.tci = hop.tags.second.to_be_bytes();
            t2.proto = l3_proto.to_be_bytes();
        }
    }
    if p.v6 {
        let Some(ip) = header::<Ipv6Hdr>(ctx, new_l3) else {
            return Err(reason::DROP_MALFORMED);
        };
        unsafe { (*ip).hop_limit -= 1 };
    } else {
        let Some(ip) = header::<Ipv4Hdr>(ctx, new_l3) else {
            return Err(reason::DROP_MALFORMED);
        };
        decrement_ttl(unsafe { &mut *ip });
    }
    Ok(())
}
