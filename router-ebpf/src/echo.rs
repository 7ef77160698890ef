//! Echo requests (ping) from a member to a gateway address of its access
//! interface, answered in place within `[edge] icmp_rate`: a CPE pings its
//! gateway to test its line. The reply is the request with its addresses
//! swapped, a fresh TTL (64) and its type changed, the checksums updated.
//! An IPv4 request with options or fragmented, or with `icmp_rate` 0, goes
//! to the kernel as before (`pass local`).
use router_common::{NO_MEMBER, reason};

use crate::{
    csum,
    edge::{Attached, In, answer_eth, by_attachment, gateway4, gateway6, source_mac},
    learn,
    packet::{
        IP_MF, IP_OFFSET, IPPROTO_ICMP, IPV4_HLEN, IPV6_HLEN, IcmpHdr, Ipv4Hdr, Ipv6Hdr, header,
    },
    parse::{Packet, bytes6, link_local6},
    ratelimit, source,
    verdict::Verdict,
};

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_ECHO_REQUEST: u8 = 128;
/// TTL and hop limit of the replies.
const TTL: u8 = 64;

/// An IPv4 packet from member `v.from` (past the source check) to a router
/// address, on access interface `x.slot`: an echo request to one of its
/// gateway addresses is answered (or dropped over the rate); anything
/// else is left to the caller (false).
/// Returns `v.reason` (see [`arp`](crate::arp::arp) for why).
#[inline(never)]
pub fn request4(x: &In, p: &Packet, v: &mut Verdict) -> u32 {
    answer4(x, p, v);
    v.reason
}

#[inline(always)]
fn answer4(x: &In, p: &Packet, v: &mut Verdict) -> bool {
    if p.proto != IPPROTO_ICMP
        || p.hlen != IPV4_HLEN as u32
        || p.frag & (IP_MF | IP_OFFSET) != 0
        || !ratelimit::enabled(x.t.g)
    {
        return false;
    }
    let Some(icmp) = header::<IcmpHdr>(x.ctx, p.l3_at() + IPV4_HLEN) else {
        return false;
    };
    let icmp = unsafe { &mut *icmp };
    if icmp.kind != ICMP_ECHO_REQUEST || icmp.code != 0 || !gateway4(x.slot, p.dst[0] as u32) {
        return false;
    }
    if !ratelimit::allow(x.t.g) {
        v.reason = reason::DROP_RATE_LIMITED;
        return true;
    }
    let Some(requester) = source_mac(x.ctx) else {
        return false;
    };
    icmp.kind = ICMP_ECHO_REPLY;
    icmp.check = csum::update16(
        icmp.check,
        u16::from_be_bytes([ICMP_ECHO_REQUEST, 0]),
        u16::from_be_bytes([ICMP_ECHO_REPLY, 0]),
    );
    let Some(ip) = header::<Ipv4Hdr>(x.ctx, p.l3_at()) else {
        return false;
    };
    let ip = unsafe { &mut *ip };
    let gateway = ip.dst;
    ip.dst = ip.src;
    ip.src = gateway;
    ip.ttl = TTL;
    ip.check = [0; 2];
    let Some(sum) = csum::sum_fixed::<20>(x.ctx, p.l3_at()) else {
        return false;
    };
    ip.check = csum::store(sum);
    answer_eth(x.ctx, requester, x.iface.mac);
    set_reply(v, x.slot);
    true
}

/// An ICMPv6 echo request to the router on access interface `x.slot`
/// (`v.from`: the sender, if the source check found it): answered if it
/// is to a gateway address and from a member (the attachment's, for a
/// link-local source), dropped over the rate; false leaves it to the
/// caller.
/// Returns `v.reason` (see [`arp`](crate::arp::arp) for why).
#[inline(never)]
pub fn request6(x: &In, p: &Packet, v: &mut Verdict) -> u32 {
    answer6(x, p, v);
    v.reason
}

#[inline(always)]
fn answer6(x: &In, p: &Packet, v: &mut Verdict) -> bool {
    if !ratelimit::enabled(x.t.g) {
        return false;
    }
    let Some(icmp) = header::<IcmpHdr>(x.ctx, p.l3_at() + IPV6_HLEN) else {
        return false;
    };
    if unsafe { (*icmp).code } != 0 || !gateway6(x.slot, &bytes6(&p.dst)) {
        return false;
    }
    if v.from == NO_MEMBER {
        let sender = if link_local6(p.src[0]) {
            match by_attachment(x, p.s_vlan, p.c_vlan) {
                Ok(Attached::Member(slot, m)) => Ok((slot, m)),
                Ok(Attached::Shared) => Err(Verdict::new(reason::PASS_LINK_LOCAL)),
                Err(refused) => Err(refused),
            }
        } else {
            source::check(x.ctx, p, x.slot, x.t).map(|s| (s.slot, s.m))
        };
        match sender {
            Ok((slot, m)) => {
                learn::note(x.ctx, slot, m);
                *v = Verdict::new(v.reason).from(slot, p.len);
            }
            Err(refused) => {
                *v = refused;
                return true;
            }
        }
    }
    if !ratelimit::allow(x.t.g) {
        v.reason = reason::DROP_RATE_LIMITED;
        return true;
    }
    let (Some(requester), Some(ip), Some(icmp)) = (
        source_mac(x.ctx),
        header::<Ipv6Hdr>(x.ctx, p.l3_at()),
        header::<IcmpHdr>(x.ctx, p.l3_at() + IPV6_HLEN),
    ) else {
        return false;
    };
    let (ip, icmp) = unsafe { (&mut *ip, &mut *icmp) };
    // The pseudo-header's sum does not change when its addresses swap.
    let gateway = ip.dst;
    ip.dst = ip.src;
    ip.src = gateway;
    ip.hop_limit = TTL;
    icmp.kind = ICMPV6_ECHO_REPLY;
    icmp.check = csum::update16(
        icmp.check,
        u16::from_be_bytes([ICMPV6_ECHO_REQUEST, 0]),
        u16::from_be_bytes([ICMPV6_ECHO_REPLY, 0]),
    );
    answer_eth(x.ctx, requester, x.iface.mac);
    set_reply(v, x.slot);
    true
}

/// Makes `v` the echo reply's verdict, its sender kept.
#[inline(always)]
fn set_reply(v: &mut Verdict, slot: u32) {
    v.reason = reason::REPLY_ECHO;
    v.egress = slot;
}
