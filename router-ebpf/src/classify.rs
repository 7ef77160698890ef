//! Classification: what a frame is, from its ingress interface (uplink or
//! access), its Ethernet destination and its addresses, then the dispatch
//! downstream (to a member) or upstream (through the [`source`] check, to a
//! member or the uplink), down to the verdict's reason. What the router
//! answers itself (ARP, Neighbor and Router Solicitations, echo requests,
//! ICMP errors) is dispatched here, off the forwarding path, to the
//! modules that answer it. It decides; the lookups, the rewrite, the
//! answers and the counting are the other modules'.
use aya_ebpf::programs::XdpContext;
use router_common::{
    IFACE_SLOT_UNKNOWN, MAX_IFACES, NO_MEMBER, kind,
    pppoe::{ETH_P_PPPOE_DISCOVERY, ETH_P_PPPOE_SESSION},
    reason, route, step,
};

use crate::{
    arp, echo,
    edge::In,
    explain, icmp_error, icmp6, learn,
    lookup::{Tables, lookup, member_hop, uplink_hop},
    maps::{IFACES, IFINDEX_SLOT},
    packet::{ETH_P_ARP, ETH_P_IPV6, EthHdr, header},
    parse::{self, Packet, link_local6},
    pppoe,
    rewrite::{NextHop, fits, rewrite},
    source,
    verdict::Verdict,
};

/// The interface slot of ingress interface `ifindex`
/// ([`IFACE_SLOT_UNKNOWN`] when it is not configured).
#[inline(always)]
pub fn iface_slot(ifindex: u32) -> u32 {
    match IFINDEX_SLOT.get(ifindex) {
        Some(&s) if s < MAX_IFACES => s,
        _ => IFACE_SLOT_UNKNOWN,
    }
}

/// Decides what to do with the frame that came in on interface `slot`,
/// and rewrites it if it is forwarded or answered.
#[inline(always)]
pub fn classify(ctx: &XdpContext, slot: u32, t: &Tables) -> Verdict {
    let Some(iface) = IFACES.get(slot) else {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    };
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Verdict::new(reason::DROP_MALFORMED);
    };
    if iface.kind == kind::NONE {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    }
    let x = In {
        ctx,
        slot,
        iface,
        t,
    };
    let dst_mac = unsafe { (*eth).dst };
    if dst_mac[0] & 1 != 0 {
        let mut v = Verdict::new(if dst_mac == [0xff; 6] {
            reason::PASS_BROADCAST
        } else {
            reason::PASS_MULTICAST
        });
        v.reason = group(&x, &mut v);
        return v;
    }
    if dst_mac != iface.mac {
        return Verdict::new(reason::PASS_NOT_TO_ROUTER);
    }
    let l2 = match parse::l2(ctx) {
        Ok(l2) => l2,
        Err(r) => return Verdict::new(r),
    };
    if l2.proto == ETH_P_ARP {
        let mut v = Verdict::new(reason::PASS_ARP);
        v.reason = arp::arp(&x, &l2, &mut v);
        return v;
    }
    let p = match parse::l3(ctx, &l2) {
        Ok(p) => p,
        Err(reason::PASS_NOT_IP) => return Verdict::new(not_ip(&x, l2.proto)),
        Err(r) => return Verdict::new(r),
    };
    explain::parsed(&p);
    if let Some(r) = special_addresses(&p) {
        let mut v = Verdict::new(r);
        if p.v6 && iface.kind == kind::ACCESS {
            v.reason = icmp6::to_router(&x, &p, false, &mut v);
        }
        return v;
    }
    if iface.kind == kind::UPLINK {
        explain::step(step::FROM_UPLINK);
        downstream(&x, &p)
    } else {
        explain::step(step::FROM_ACCESS);
        upstream(&x, &p)
    }
}

/// What a frame that is neither IP nor ARP is: PPPoE discovery (the
/// daemon's), a PPPoE session frame on an access interface (for
/// `pppoe_up`: [`pppoe::TAIL_UP`]), or not IP.
#[inline(always)]
fn not_ip(x: &In, proto: u16) -> u32 {
    if proto == ETH_P_PPPOE_DISCOVERY {
        reason::PASS_PPPOE_DISCOVERY
    } else if proto == ETH_P_PPPOE_SESSION && x.iface.kind == kind::ACCESS {
        pppoe::TAIL_UP
    } else {
        reason::PASS_NOT_IP
    }
}

/// A frame to a group address (`v` says which: broadcast or multicast),
/// which goes to the kernel unless it is ARP, or on an access interface a
/// Neighbor or Router Solicitation. Returns the reason.
#[inline(always)]
fn group(x: &In, v: &mut Verdict) -> u32 {
    let Ok(l2) = parse::l2(x.ctx) else {
        return v.reason;
    };
    if l2.proto == ETH_P_ARP {
        return arp::arp(x, &l2, v);
    }
    if l2.proto == ETH_P_PPPOE_DISCOVERY {
        return reason::PASS_PPPOE_DISCOVERY;
    }
    if x.iface.kind != kind::ACCESS || l2.proto != ETH_P_IPV6 {
        return v.reason;
    }
    match parse::l3(x.ctx, &l2) {
        Ok(p) => icmp6::to_router(x, &p, true, v),
        Err(_) => v.reason,
    }
}

/// Addresses the kernel handles: link-local, multicast and broadcast.
#[inline(always)]
pub fn special_addresses(p: &Packet) -> Option<u32> {
    if p.v6 {
        if link_local6(p.src[0]) || link_local6(p.dst[0]) {
            return Some(reason::PASS_LINK_LOCAL);
        }
        if p.dst[0] >> 56 == 0xff {
            return Some(reason::PASS_MULTICAST);
        }
    } else {
        let (src, dst) = (p.src[0] as u32, p.dst[0] as u32);
        if src >> 16 == 0xa9fe || dst >> 16 == 0xa9fe {
            return Some(reason::PASS_LINK_LOCAL);
        }
        if dst == u32::MAX {
            return Some(reason::PASS_BROADCAST);
        }
        if dst >> 28 == 0xe {
            return Some(reason::PASS_MULTICAST);
        }
    }
    None
}

/// From an uplink towards a member.
#[inline(always)]
fn downstream(x: &In, p: &Packet) -> Verdict {
    let expected_tags = if x.iface.vlan == 0 { 0 } else { 1 };
    if p.tags != expected_tags || p.c_vlan != x.iface.vlan {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    }
    let leaf = lookup(x.t.g, p.v6, &p.dst);
    explain::dst_lookup(leaf);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL);
    }
    if leaf == route::EMPTY {
        return Verdict::new(reason::PASS_NO_ROUTE);
    }
    let slot = leaf - 1;
    let mut v = Verdict::new(reason::FWD_DOWNSTREAM).to(slot, p.len);
    forward(x, p, member_hop(x.t, slot), &mut v);
    v
}

/// From a member: the source check, then to the router, another member or
/// the uplink.
#[inline(always)]
fn upstream(x: &In, p: &Packet) -> Verdict {
    let sender = match source::check(x.ctx, p, x.slot, x.t) {
        Ok(sender) => sender,
        Err(spoofed) => return spoofed,
    };
    learn::note(x.ctx, sender.slot, sender.m);
    let bytes = p.len;
    let leaf = lookup(x.t.g, p.v6, &p.dst);
    explain::dst_lookup(leaf);
    if leaf == route::LOCAL {
        let mut v = Verdict::new(reason::PASS_LOCAL).from(sender.slot, bytes);
        if p.v6 {
            v.reason = icmp6::to_router(x, p, false, &mut v);
        } else {
            v.reason = echo::request4(x, p, &mut v);
        }
        return v;
    }
    if leaf != route::EMPTY {
        let mut v = Verdict::new(reason::FWD_HAIRPIN)
            .from(sender.slot, bytes)
            .to(leaf - 1, bytes);
        forward(x, p, member_hop(x.t, leaf - 1), &mut v);
        return v;
    }
    let mut v = Verdict::new(reason::FWD_UPSTREAM).from(sender.slot, bytes);
    forward(x, p, uplink_hop(x.t.g, p), &mut v);
    v
}

/// Rewrites the frame for `hop`, the verdict's next hop. When there is
/// none, or the frame cannot take it, the packet goes to the kernel
/// instead, with the reason, and to no member (the egress stays the one
/// found, as the tracer reports it) — or, expired or too big, its ICMP
/// error goes back where it came from.
#[inline(always)]
fn forward(x: &In, p: &Packet, hop: Result<NextHop, u32>, v: &mut Verdict) {
    let hop = match hop {
        Ok(hop) => hop,
        Err(r) => {
            v.reason = r;
            // A PPPoE member's hop is `pppoe_down`'s to find.
            if r != pppoe::TAIL_DOWN {
                v.to = NO_MEMBER;
            }
            return;
        }
    };
    v.egress = hop.egress;
    explain::hop(&hop);
    if let Err(r) = fits(p, &hop) {
        v.reason = r;
        v.to = NO_MEMBER;
        v.reason = icmp_error::send(x, p, hop.limit(), v);
        return;
    }
    match rewrite(x.ctx, p, &hop) {
        Ok(()) => explain::step(step::REWRITTEN),
        Err(r) => {
            v.reason = r;
            v.to = NO_MEMBER;
        }
    }
}
