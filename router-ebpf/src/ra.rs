//! Router Solicitations on access interfaces (RFC 4861 §6.2.6): answered
//! with the Router Advertisement of `router_common::ra` (the daemon's
//! unsolicited ones are the same bytes), from the interface's link-local
//! address, to the soliciting host (to all-nodes from `::`), with the
//! line's MTU: its tags included.
use aya_ebpf::helpers::bpf_xdp_adjust_tail;
use router_common::{
    addr_flags,
    ra::{self, ALL_NODES, ALL_NODES_MAC, HOP_LIMIT, MESSAGE_LEN},
    reason,
};

use crate::{
    csum,
    edge::{Attached, In, answer_eth, by_attachment, gateway6, source_mac},
    learn,
    maps::IFACE_ADDRS,
    ndp::{self, Checked},
    packet::{IPPROTO_ICMPV6, IPV6_HLEN, Ipv6Hdr, header},
    parse::{Packet, bytes6},
    verdict::Verdict,
};

/// All-routers multicast, ff02::2.
const ALL_ROUTERS: [u64; 2] = [0xff02_0000_0000_0000, 2];

/// A Router Solicitation on access interface `x.slot`: answered, refused
/// or left to the caller (false: not to the router, or the interface has
/// no link-local address to answer from).
/// Returns `v.reason` (see [`arp`](crate::arp::arp) for why).
#[inline(never)]
pub fn solicitation(x: &In, p: &Packet, v: &mut Verdict) -> u32 {
    solicited(x, p, v);
    v.reason
}

#[inline(always)]
fn solicited(x: &In, p: &Packet, v: &mut Verdict) -> bool {
    match ndp::check(x.ctx, p, 0) {
        Checked::Valid => {}
        Checked::Invalid => {
            *v = Verdict::new(reason::DROP_NDP_INVALID);
            return true;
        }
        Checked::Unchecked => return false,
    }
    if p.dst != ALL_ROUTERS && !gateway6(x.slot, &bytes6(&p.dst)) {
        return false;
    }
    let Some(addrs) = IFACE_ADDRS.get(x.slot) else {
        return false;
    };
    if addrs.flags & addr_flags::LINK_LOCAL == 0 {
        return false;
    }
    match by_attachment(x, p.s_vlan, p.c_vlan) {
        Ok(Attached::Member(slot, m)) => learn::note(x.ctx, slot, m),
        Ok(Attached::Shared) => {}
        Err(refused) => {
            *v = refused;
            return true;
        }
    }
    *v = if advertise(x, p, &addrs.link_local) {
        Verdict::reply(reason::REPLY_ROUTER_ADVERT, x.slot)
    } else {
        Verdict::new(reason::DROP_MALFORMED)
    };
    true
}

/// Turns the solicitation into the advertisement, from `source`.
#[inline(always)]
fn advertise(x: &In, p: &Packet, source: &[u8; 16]) -> bool {
    let ctx = x.ctx;
    let Some(requester) = source_mac(ctx) else {
        return false;
    };
    let to_all = ndp::unspecified(p);
    let want = p.l3_at() + IPV6_HLEN + MESSAGE_LEN;
    let have = ctx.data_end() - ctx.data();
    if have != want && unsafe { bpf_xdp_adjust_tail(ctx.ctx, want as i32 - have as i32) } != 0 {
        return false;
    }
    let (Some(ip), Some(msg)) = (
        header::<Ipv6Hdr>(ctx, p.l3_at()),
        header::<[u8; MESSAGE_LEN]>(ctx, p.l3_at() + IPV6_HLEN),
    ) else {
        return false;
    };
    let (ip, msg) = unsafe { (&mut *ip, &mut *msg) };
    let g = x.t.g;
    let mac = x.iface.mac;
    ip.vtc_flow = [0x60, 0, 0, 0];
    ip.payload_len = (MESSAGE_LEN as u16).to_be_bytes();
    ip.next_hdr = IPPROTO_ICMPV6;
    ip.hop_limit = HOP_LIMIT;
    ip.dst = if to_all { ALL_NODES } else { ip.src };
    ip.src = *source;
    let mtu = ra::line_mtu(x.iface.mtu as u32, p.tags);
    *msg = ra::message(g.ra_hop_limit, g.router_lifetime, mac, mtu);
    let Some(sum) = csum::sum_fixed::<64>(ctx, p.l3_at() + 8) else {
        return false;
    };
    let check =
        csum::store(sum + csum::be32(MESSAGE_LEN as u32) + csum::be32(IPPROTO_ICMPV6 as u32));
    msg[2] = check[0];
    msg[3] = check[1];
    answer_eth(ctx, if to_all { ALL_NODES_MAC } else { requester }, mac)
}
