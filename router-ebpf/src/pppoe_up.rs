//! `pppoe_up`, the program the entry program tail-calls for a PPPoE
//! session frame (0x8864) from an access interface: it checks the PPPoE
//! header, finds the session (interface, tags, client MAC, session id),
//! checks that the source belongs to the session's member, takes the IP
//! packet out (the PPPoE length decides where it ends: Ethernet padding is
//! trimmed) and forwards it like any member's, clamping a TCP SYN's MSS to
//! the session's MRU. What it does not forward leaves unchanged, still
//! encapsulated, for the daemon's packet socket: control protocols,
//! unknown sessions, link-local and multicast destinations, the router's
//! own addresses; and so do packets whose ICMP error the entry program
//! would send (expired, too big), which would go back unencapsulated.
use aya_ebpf::{helpers::bpf_xdp_adjust_tail, macros::xdp, programs::XdpContext};
use router_common::{
    NO_MEMBER,
    pppoe::{PPP_PROTO_LEN, SessionKey},
    reason, route, step,
};

use crate::{
    classify::special_addresses,
    edge::source_mac,
    explain,
    lookup::{Tables, lookup, member, member_hop, uplink_hop},
    maps::SESSIONS,
    packet::{ETH_HLEN, VLAN_HLEN},
    parse::{self, Packet},
    pppoe::{self, TAIL_DOWN},
    rewrite::{NextHop, fits, rewrite},
    verdict::{self, Verdict},
};

#[xdp]
pub fn pppoe_up(ctx: XdpContext) -> u32 {
    let trace = verdict::tracing();
    let slot = pppoe::ingress_slot(&ctx, trace);
    let Some(t) = Tables::read() else {
        return pppoe::NO_TABLES;
    };
    let mut v = up(&ctx, slot, &t);
    if v.reason == TAIL_DOWN {
        pppoe::tail(&ctx, slot, &mut v);
    }
    pppoe::finish(slot, &v, &t, trace)
}

#[inline(always)]
fn up(ctx: &XdpContext, slot: u32, t: &Tables) -> Verdict {
    let l2 = match parse::l2(ctx) {
        Ok(l2) => l2,
        Err(r) => return Verdict::new(r),
    };
    let s = match pppoe::session(ctx, &l2) {
        Ok(s) => s,
        Err(r) => return Verdict::new(r),
    };
    let Some(mac) = source_mac(ctx) else {
        return Verdict::new(reason::DROP_MALFORMED);
    };
    let key = SessionKey {
        iface: slot as u16,
        s_vlan: l2.s_vlan,
        c_vlan: l2.c_vlan,
        session_id: s.session_id,
        mac,
        _pad: [0; 2],
    };
    let Some(session) = (unsafe { SESSIONS.get(&key) }) else {
        return Verdict::new(reason::PASS_PPPOE_UNKNOWN_SESSION);
    };
    let (sender, mru) = (session.member, session.mru);
    let mut p = match parse::l3(ctx, &s.inner) {
        Ok(p) => p,
        Err(r) => return Verdict::new(r),
    };
    if p.len + PPP_PROTO_LEN as u32 != s.len as u32 {
        return Verdict::new(reason::DROP_PPPOE_MALFORMED);
    }
    explain::parsed(&p);
    explain::step(step::FROM_ACCESS);
    if let Some(r) = special_addresses(&p) {
        return Verdict::new(r);
    }
    // The source check: the source is the session's member's.
    let src_leaf = lookup(t.g, p.v6, &p.src);
    explain::src_lookup(src_leaf);
    if src_leaf != route::member_leaf(sender) || member(t, sender).is_none() {
        explain::step(step::SRC_WRONG_ATTACHMENT);
        let mut v = Verdict::new(reason::DROP_SPOOFED);
        v.from = sender;
        return v;
    }
    explain::step(step::SRC_OK);
    explain::step(step::PPPOE_DECAP);
    let bytes = p.len;
    let leaf = lookup(t.g, p.v6, &p.dst);
    explain::dst_lookup(leaf);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL).from(sender, bytes);
    }
    // What leaves is the IP packet alone, without the padding.
    let wire = p.wire;
    p.wire = p.len;
    if leaf != route::EMPTY {
        let mut v = Verdict::new(reason::FWD_HAIRPIN)
            .from(sender, bytes)
            .to(leaf - 1, bytes);
        match member_hop(t, leaf - 1) {
            Err(TAIL_DOWN) => {
                if !trim(ctx, wire, &p) {
                    return Verdict::new(reason::DROP_PPPOE_MALFORMED);
                }
                v.reason = TAIL_DOWN;
            }
            hop => forward(ctx, &p, wire, hop, mru, &mut v),
        }
        return v;
    }
    let mut v = Verdict::new(reason::FWD_UPSTREAM).from(sender, bytes);
    forward(ctx, &p, wire, uplink_hop(t.g, &p), mru, &mut v);
    v
}

/// Takes the IP packet `p` out of its session for `hop` (the padding after
/// it trimmed: `wire` bytes followed its header), clamping its MSS to
/// `mru`. When there is no next hop, or the packet cannot take it, it goes
/// to the kernel unchanged, with the reason.
#[inline(always)]
fn forward(
    ctx: &XdpContext,
    p: &Packet,
    wire: u32,
    hop: Result<NextHop, u32>,
    mru: u16,
    v: &mut Verdict,
) {
    let hop = match hop {
        Ok(hop) => hop,
        Err(r) => {
            v.reason = r;
            v.to = NO_MEMBER;
            return;
        }
    };
    v.egress = hop.egress;
    explain::hop(&hop);
    if let Err(r) = fits(p, &hop) {
        v.reason = r;
        v.to = NO_MEMBER;
        return;
    }
    if !trim(ctx, wire, p) {
        v.reason = reason::DROP_PPPOE_MALFORMED;
        v.to = NO_MEMBER;
        return;
    }
    match rewrite(ctx, p, &hop) {
        Ok(()) => {
            explain::step(step::REWRITTEN);
            let ip_at = ETH_HLEN + VLAN_HLEN * hop.tags.count as usize;
            pppoe::clamp_mss(ctx, ip_at, p, mru);
        }
        Err(r) => {
            v.reason = r;
            v.to = NO_MEMBER;
        }
    }
}

/// Trims what follows the IP packet `p` in the frame (`wire` bytes from
/// its header on): Ethernet padding, beyond the PPPoE length.
#[inline(always)]
fn trim(ctx: &XdpContext, wire: u32, p: &Packet) -> bool {
    let pad = wire.saturating_sub(p.len) as i32;
    pad == 0 || unsafe { bpf_xdp_adjust_tail(ctx.ctx, -pad) } == 0
}
