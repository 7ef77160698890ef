//! Classification: what a frame is, from its ingress interface (uplink or
//! access), its Ethernet destination and its addresses, then the dispatch
//! downstream (to a member) or upstream (through the [`source`] check, to a
//! member or the uplink), down to the verdict's reason. It decides; the
//! lookups, the rewrite and the counting are the other modules'.
use aya_ebpf::programs::XdpContext;
use router_common::{
    IFACE_SLOT_UNKNOWN, IfaceInfo, MAX_IFACES, NO_MEMBER, kind, reason, route, step,
};

use crate::{
    explain,
    lookup::{Tables, lookup, member_hop, uplink_hop},
    maps::{IFACES, IFINDEX_SLOT},
    packet::{EthHdr, header},
    parse::{Packet, parse},
    rewrite::{NextHop, rewrite},
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
/// and rewrites it if it is forwarded.
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
    let dst_mac = unsafe { (*eth).dst };
    if dst_mac[0] & 1 != 0 {
        return Verdict::new(if dst_mac == [0xff; 6] {
            reason::PASS_BROADCAST
        } else {
            reason::PASS_MULTICAST
        });
    }
    if dst_mac != iface.mac {
        return Verdict::new(reason::PASS_NOT_TO_ROUTER);
    }
    let p = match parse(ctx) {
        Ok(p) => p,
        Err(r) => return Verdict::new(r),
    };
    explain::parsed(&p);
    if let Some(r) = special_addresses(&p) {
        return Verdict::new(r);
    }
    if iface.kind == kind::UPLINK {
        explain::step(step::FROM_UPLINK);
        downstream(ctx, &p, iface, t)
    } else {
        explain::step(step::FROM_ACCESS);
        upstream(ctx, &p, slot, t)
    }
}

/// Addresses the kernel handles: link-local, multicast and broadcast.
#[inline(always)]
fn special_addresses(p: &Packet) -> Option<u32> {
    if p.v6 {
        let link_local = |a: u64| a >> 54 == 0xfe80 >> 6;
        if link_local(p.src[0]) || link_local(p.dst[0]) {
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
fn downstream(ctx: &XdpContext, p: &Packet, uplink: &IfaceInfo, t: &Tables) -> Verdict {
    let expected_tags = if uplink.vlan == 0 { 0 } else { 1 };
    if p.tags != expected_tags || p.c_vlan != uplink.vlan {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    }
    let leaf = lookup(t.g, p, &p.dst);
    explain::dst_lookup(leaf);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL);
    }
    if leaf == route::EMPTY {
        return Verdict::new(reason::PASS_NO_ROUTE);
    }
    let slot = leaf - 1;
    let mut v = Verdict::new(reason::FWD_DOWNSTREAM).to(slot, p.len);
    forward(ctx, p, member_hop(t, slot), &mut v);
    v
}

/// From a member: the source check, then to another member or the uplink.
#[inline(always)]
fn upstream(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables) -> Verdict {
    let sender = match source::check(ctx, p, slot, t) {
        Ok(sender) => sender,
        Err(spoofed) => return spoofed,
    };
    let bytes = p.len;
    let leaf = lookup(t.g, p, &p.dst);
    explain::dst_lookup(leaf);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL).from(sender, bytes);
    }
    if leaf != route::EMPTY {
        let mut v = Verdict::new(reason::FWD_HAIRPIN)
            .from(sender, bytes)
            .to(leaf - 1, bytes);
        forward(ctx, p, member_hop(t, leaf - 1), &mut v);
        return v;
    }
    let mut v = Verdict::new(reason::FWD_UPSTREAM).from(sender, bytes);
    forward(ctx, p, uplink_hop(t.g, p), &mut v);
    v
}

/// Rewrites the frame for `hop`, the verdict's next hop. When there is
/// none, or the frame cannot take it, the packet goes to the kernel
/// instead, with the reason, and to no member (the egress stays the one
/// found, as the tracer reports it).
#[inline(always)]
fn forward(ctx: &XdpContext, p: &Packet, hop: Result<NextHop, u32>, v: &mut Verdict) {
    let rewritten = match hop {
        Ok(hop) => {
            v.egress = hop.egress;
            explain::hop(&hop);
            rewrite(ctx, p, &hop)
        }
        Err(r) => Err(r),
    };
    match rewritten {
        Ok(()) => explain::step(step::REWRITTEN),
        Err(r) => {
            v.reason = r;
            v.to = NO_MEMBER;
        }
    }
}
