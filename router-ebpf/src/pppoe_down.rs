//! `pppoe_down`, the program tail-called for a packet to a PPPoE member
//! (from an uplink, or hairpinned from another member, PPPoE or not): the
//! caller found the member (`PPPOE_HANDOFF`); this program parses the
//! frame again (a hairpinned session frame's IP packet after its PPPoE
//! header), checks that the packet fits the session's MRU (an ICMP error
//! otherwise, as for any too-big packet, except to a session frame's
//! sender), puts it in the member's session (`SESSION_LINES`) and clamps a
//! TCP SYN's MSS to the MRU.
use aya_ebpf::{macros::xdp, programs::XdpContext};
use router_common::{
    NO_MEMBER,
    pppoe::{ETH_P_PPPOE_SESSION, line_flags},
    ra::line_mtu,
    reason, step,
};

use crate::{
    edge::In,
    explain, icmp_error,
    lookup::{Tables, member},
    maps::{IFACES, PPPOE_HANDOFF, SESSION_LINES},
    packet::VLAN_HLEN,
    parse,
    pppoe::{self, Handoff, SESSION_HLEN},
    rewrite::{NextHop, Tags},
    verdict::Verdict,
};

#[xdp]
pub fn pppoe_down(ctx: XdpContext) -> u32 {
    let trace = crate::verdict::tracing();
    let Some(h) = PPPOE_HANDOFF.get(0).copied() else {
        return pppoe::NO_TABLES;
    };
    let Some(t) = Tables::read() else {
        return pppoe::NO_TABLES;
    };
    let v = down(&ctx, &h, &t);
    pppoe::finish(h.slot, &v, &t, trace)
}

#[inline(always)]
fn down(ctx: &XdpContext, h: &Handoff, t: &Tables) -> Verdict {
    let mut v = Verdict::new(if h.from == NO_MEMBER {
        reason::FWD_DOWNSTREAM
    } else {
        reason::FWD_HAIRPIN
    })
    .from(h.from, h.bytes)
    .to(h.to, h.bytes);
    let Some(iface) = IFACES.get(h.slot) else {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    };
    let l2 = match parse::l2(ctx) {
        Ok(l2) => l2,
        Err(r) => return Verdict::new(r),
    };
    let encapsulated = l2.proto == ETH_P_PPPOE_SESSION;
    let inner = if encapsulated {
        match pppoe::session(ctx, &l2) {
            Ok(s) => s.inner,
            Err(r) => return Verdict::new(r),
        }
    } else {
        l2
    };
    let p = match parse::l3(ctx, &inner) {
        Ok(p) => p,
        Err(r) => return Verdict::new(r),
    };
    let line = match SESSION_LINES.get(h.to) {
        Some(l) if l.flags & line_flags::PRESENT != 0 => l,
        _ => {
            v.reason = reason::DROP_PPPOE_NO_SESSION;
            v.to = NO_MEMBER;
            return v;
        }
    };
    let hop = member(t, h.to).and_then(|m| {
        let out = IFACES.get(m.iface as u32)?;
        Some((
            NextHop {
                egress: m.iface as u32,
                dst_mac: m.mac,
                src_mac: out.mac,
                mtu: out.mtu as u32,
                tags: Tags::member(m.s_vlan, m.c_vlan),
            },
            m.flags,
        ))
    });
    let Some((hop, flags)) = hop else {
        v.reason = reason::PASS_NO_ROUTE;
        v.to = NO_MEMBER;
        return v;
    };
    if flags as u16 & router_common::member_flags::HAS_MAC == 0 {
        v.reason = reason::PASS_NO_NEIGHBOR;
        v.to = NO_MEMBER;
        return v;
    }
    v.egress = hop.egress;
    explain::hop(&hop);
    // The session's MRU, within what the line takes with the session's 8
    // bytes; the frame within the kernel's limit for a redirected frame.
    let tags = hop.tags.count;
    let limit = (line.mru as u32).min(line_mtu(hop.mtu, tags).saturating_sub(SESSION_HLEN as u32));
    let failed = if p.ttl <= 1 {
        Some(reason::PASS_TTL_EXCEEDED)
    } else if p.len > limit
        || p.wire + (SESSION_HLEN + VLAN_HLEN * tags as usize) as u32 > hop.mtu + VLAN_HLEN as u32
    {
        Some(reason::PASS_TOO_BIG)
    } else {
        None
    };
    if let Some(r) = failed {
        v.reason = r;
        v.to = NO_MEMBER;
        if !encapsulated {
            let x = In {
                ctx,
                slot: h.slot,
                iface,
                t,
            };
            v.reason = icmp_error::send(&x, &p, limit, &mut v);
        }
        return v;
    }
    match pppoe::encap(ctx, &p, &hop, line.session_id) {
        Ok(ip_at) => {
            explain::step(step::REWRITTEN);
            pppoe::clamp_mss(ctx, ip_at, &p, line.mru);
        }
        Err(r) => {
            v.reason = r;
            v.to = NO_MEMBER;
        }
    }
    v
}
