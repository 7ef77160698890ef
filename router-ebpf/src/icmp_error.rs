//! ICMP errors of forwarding, built in place and sent back out of the
//! interface the packet came in by, with its tags: time exceeded (TTL or
//! hop limit ≤ 1), fragmentation needed (IPv4 with DF) and packet too big
//! (IPv6) when the packet does not fit its egress.
//!
//! The error comes from the ingress interface's own address of the
//! packet's family (the uplink's towards the core, the access interface's
//! towards a member) and goes to the packet's source, quoting what RFC 792
//! asks (the IP header and the first 64 bits of data) or RFC 4443 (as much
//! of the packet as fits in 1280 bytes). None is sent about an ICMP error,
//! a non-first fragment, or a source that is not a unicast address (RFC
//! 1812 §4.3.2.7, RFC 4443 §2.4); nor without an address to send it from,
//! nor with `[edge] icmp_rate` 0: those packets go to the kernel as
//! before. Over the rate, the packet is dropped (`rate-limited`).
use aya_ebpf::helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail};
use router_common::{IfaceAddrs, addr_flags, reason};

use crate::{
    csum,
    edge::{In, answer_eth, source_mac},
    maps::IFACE_ADDRS,
    packet::{
        ETH_HLEN, ICMP_HLEN, IP_DF, IP_OFFSET, IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_HLEN, IPV6_HLEN,
        IcmpHdr, Ipv4Hdr, Ipv6Hdr, VLAN_HLEN, header,
    },
    parse::Packet,
    ratelimit,
    verdict::Verdict,
};

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
const ICMPV6_TIME_EXCEEDED: u8 = 3;
/// IPv4 TOS of the errors (precedence "internetwork control", as Linux).
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
const TTL: u8 = 64;
/// Bytes an error puts before the quoted packet.
const PREFIX4: usize = IPV4_HLEN + ICMP_HLEN;
const PREFIX6: usize = IPV6_HLEN + ICMP_HLEN;
/// The most of the packet an ICMPv6 error quotes: 1280 bytes in all.
const QUOTE6: u32 = 1280 - PREFIX6 as u32;

/// How building went.
enum Built {
    /// The frame is the error.
    Yes,
    /// Nothing was changed (no room before the frame).
    Untouched,
    /// The frame was changed but could not be finished: it must not reach
    /// the kernel.
    Broken,
}

/// The packet could not be forwarded (`v.reason`: `ttl-exceeded`, or
/// `too-big` with `mtu` the most the egress takes): sends its ICMP error
/// back when it may, changing `v` to say so; otherwise `v` is left as it
/// is (the packet goes to the kernel).
/// Returns `v.reason` (see [`arp`](crate::arp::arp) for why).
#[inline(never)]
pub fn send(x: &In, p: &Packet, mtu: u32, v: &mut Verdict) -> u32 {
    build(x, p, mtu, v);
    v.reason
}

#[inline(always)]
fn build(x: &In, p: &Packet, mtu: u32, v: &mut Verdict) {
    let too_big = v.reason == reason::PASS_TOO_BIG;
    if too_big && !p.v6 && p.frag & IP_DF == 0 {
        // The kernel fragments it.
        return;
    }
    if !ratelimit::enabled(x.t.g) || !about_unicast(p) || !about_non_error(x, p) {
        return;
    }
    let Some(addrs) = IFACE_ADDRS.get(x.slot) else {
        return;
    };
    let family = if p.v6 { addr_flags::V6 } else { addr_flags::V4 };
    if addrs.flags & family == 0 {
        return;
    }
    if !ratelimit::allow(x.t.g) {
        v.reason = reason::DROP_RATE_LIMITED;
        return;
    }
    let built = if p.v6 {
        build6(x, p, addrs, too_big, mtu)
    } else {
        build4(x, p, addrs, too_big, mtu)
    };
    match built {
        Built::Yes => {
            v.reason = match (too_big, p.v6) {
                (false, _) => reason::REPLY_TIME_EXCEEDED,
                (true, false) => reason::REPLY_FRAG_NEEDED,
                (true, true) => reason::REPLY_PACKET_TOO_BIG,
            };
            v.egress = x.slot;
        }
        Built::Untouched => {}
        Built::Broken => v.reason = reason::DROP_MALFORMED,
    }
}

/// The packet's source is a unicast address, and it is not a non-first
/// IPv4 fragment.
#[inline(always)]
fn about_unicast(p: &Packet) -> bool {
    if p.v6 {
        let unspecified = p.src[0] == 0 && p.src[1] == 0;
        let loopback = p.src[0] == 0 && p.src[1] == 1;
        !(unspecified || loopback || p.src[0] >> 56 == 0xff)
    } else {
        let src = p.src[0] as u32;
        src != 0 && src >> 24 != 127 && src >> 28 < 0xe && p.frag & IP_OFFSET == 0
    }
}

/// The packet is not itself an ICMP error.
#[inline(always)]
fn about_non_error(x: &In, p: &Packet) -> bool {
    let icmp = if p.v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
    if p.proto != icmp {
        return true;
    }
    let Some(h) = header::<IcmpHdr>(x.ctx, p.l3_at() + p.hlen_at()) else {
        return false;
    };
    let kind = unsafe { (*h).kind };
    if p.v6 {
        kind >= 128
    } else {
        !matches!(kind, 3 | 4 | 5 | 11 | 12)
    }
}

/// Grows the frame by `room` bytes at its start and moves its layer-2
/// header (and `tags` tags) there, so that `room` bytes are free right
/// before the IP packet.
#[inline(always)]
fn open(x: &In, room: usize, tags: u32) -> Built {
    let ctx = x.ctx;
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(room as i32)) } != 0 {
        return Built::Untouched;
    }
    let (Some(from), Some(to)) = (
        header::<[u8; ETH_HLEN]>(ctx, room),
        header::<[u8; ETH_HLEN]>(ctx, 0),
    ) else {
        return Built::Broken;
    };
    unsafe { *to = *from };
    let mut at = ETH_HLEN;
    for _ in 0..2 {
        if (at - ETH_HLEN) / VLAN_HLEN >= tags as usize {
            break;
        }
        let (Some(from), Some(to)) = (
            header::<[u8; VLAN_HLEN]>(ctx, room + at),
            header::<[u8; VLAN_HLEN]>(ctx, at),
        ) else {
            return Built::Broken;
        };
        unsafe { *to = *from };
        at += VLAN_HLEN;
    }
    Built::Yes
}

/// Sets the frame's end at `len` bytes from its start.
#[inline(always)]
fn cut(x: &In, len: usize) -> bool {
    let ctx = x.ctx;
    let have = ctx.data_end() - ctx.data();
    have == len || unsafe { bpf_xdp_adjust_tail(ctx.ctx, len as i32 - have as i32) } == 0
}

/// Time exceeded, or fragmentation needed with the next-hop MTU (RFC
/// 1191): a new IPv4 header and ICMP header before the packet's header
/// and first 8 bytes of data.
#[inline(always)]
fn build4(x: &In, p: &Packet, addrs: &IfaceAddrs, too_big: bool, mtu: u32) -> Built {
    let ctx = x.ctx;
    let l3 = p.l3_at();
    let quote = (p.hlen_at() as u32 + 8).min(p.len);
    match open(x, PREFIX4, p.tags) {
        Built::Yes => {}
        other => return other,
    }
    if !cut(x, l3 + PREFIX4 + quote as usize) {
        return Built::Broken;
    }
    let (Some(requester), Some(ip), Some(icmp), Some(sender)) = (
        source_mac(ctx),
        header::<Ipv4Hdr>(ctx, l3),
        header::<IcmpHdr>(ctx, l3 + IPV4_HLEN),
        header::<[u8; 4]>(ctx, l3 + PREFIX4 + 12),
    ) else {
        return Built::Broken;
    };
    let (ip, icmp) = unsafe { (&mut *ip, &mut *icmp) };
    ip.version_ihl = 0x45;
    ip.tos = TOS_INTERNETWORK_CONTROL;
    ip.tot_len = ((PREFIX4 as u32 + quote) as u16).to_be_bytes();
    ip.id = [0; 2];
    ip.frag_off = [0; 2];
    ip.ttl = TTL;
    ip.protocol = IPPROTO_ICMP;
    ip.check = [0; 2];
    ip.src = addrs.v4;
    ip.dst = unsafe { *sender };
    let Some(sum) = csum::sum_fixed::<{ IPV4_HLEN }>(ctx, l3) else {
        return Built::Broken;
    };
    ip.check = csum::store(sum);
    if too_big {
        let m = (mtu.min(u16::MAX as u32) as u16).to_be_bytes();
        *icmp = IcmpHdr {
            kind: ICMP_DEST_UNREACH,
            code: ICMP_FRAG_NEEDED,
            check: [0; 2],
            rest: [0, 0, m[0], m[1]],
        };
    } else {
        *icmp = IcmpHdr {
            kind: ICMP_TIME_EXCEEDED,
            code: 0,
            check: [0; 2],
            rest: [0; 4],
        };
    }
    let Some(sum) = csum::sum(ctx, l3 + IPV4_HLEN, ICMP_HLEN as u32 + quote) else {
        return Built::Broken;
    };
    icmp.check = csum::store(sum);
    if !answer_eth(ctx, requester, x.iface.mac) {
        return Built::Broken;
    }
    Built::Yes
}

/// Time exceeded, or packet too big with the MTU: a new IPv6 header and
/// ICMPv6 header before as much of the packet as fits in 1280 bytes.
#[inline(always)]
fn build6(x: &In, p: &Packet, addrs: &IfaceAddrs, too_big: bool, mtu: u32) -> Built {
    let ctx = x.ctx;
    let l3 = p.l3_at();
    let quote = p.len.min(QUOTE6);
    match open(x, PREFIX6, p.tags) {
        Built::Yes => {}
        other => return other,
    }
    if !cut(x, l3 + PREFIX6 + quote as usize) {
        return Built::Broken;
    }
    let (Some(requester), Some(ip), Some(icmp), Some(sender)) = (
        source_mac(ctx),
        header::<Ipv6Hdr>(ctx, l3),
        header::<IcmpHdr>(ctx, l3 + IPV6_HLEN),
        header::<[u8; 16]>(ctx, l3 + PREFIX6 + 8),
    ) else {
        return Built::Broken;
    };
    let (ip, icmp) = unsafe { (&mut *ip, &mut *icmp) };
    let len = ICMP_HLEN as u32 + quote;
    ip.vtc_flow = [0x60, 0, 0, 0];
    ip.payload_len = (len as u16).to_be_bytes();
    ip.next_hdr = IPPROTO_ICMPV6;
    ip.hop_limit = TTL;
    ip.src = addrs.v6;
    ip.dst = unsafe { *sender };
    *icmp = if too_big {
        IcmpHdr {
            kind: ICMPV6_PACKET_TOO_BIG,
            code: 0,
            check: [0; 2],
            rest: mtu.to_be_bytes(),
        }
    } else {
        IcmpHdr {
            kind: ICMPV6_TIME_EXCEEDED,
            code: 0,
            check: [0; 2],
            rest: [0; 4],
        }
    };
    // The pseudo-header's addresses are the IPv6 header's last 32 bytes.
    let Some(sum) = csum::sum(ctx, l3 + 8, 32 + len) else {
        return Built::Broken;
    };
    icmp.check = csum::store(sum + csum::be32(len) + csum::be32(IPPROTO_ICMPV6 as u32));
    if !answer_eth(ctx, requester, x.iface.mac) {
        return Built::Broken;
    }
    Built::Yes
}
