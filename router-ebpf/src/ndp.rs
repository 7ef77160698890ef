//! Neighbor Discovery (RFC 4861) on access interfaces: the checks every
//! solicitation passes (§6.1.1, §7.1.1), and the Neighbor Advertisement
//! that answers a Neighbor Solicitation for a gateway address, built in
//! place as cilium's `icmp6.h` does: Router, Solicited and Override flags,
//! a Target (not Source) link-layer address option, the checksum. A
//! duplicate address detection probe (from `::`) is answered to all-nodes
//! with Solicited clear (§7.2.4). The solicitation is attributed by its
//! attachment: its source is usually link-local, which no member owns.
use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use router_common::{ra::ALL_NODES, ra::ALL_NODES_MAC, ra::HOP_LIMIT, reason};

use crate::{
    csum,
    edge::{Attached, In, answer_eth, by_attachment, gateway6, source_mac},
    learn,
    packet::{ICMP_HLEN, IPPROTO_ICMPV6, IPV6_HLEN, IcmpHdr, Ipv6Hdr, header},
    parse::Packet,
    verdict::Verdict,
};

const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Option types.
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// Neighbor Advertisement flags (first byte after the checksum).
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
/// Longest solicitation the program checks (options included); longer
/// ones go to the kernel.
pub const MAX_ND_LEN: u32 = 256;
/// Options the program walks; a solicitation with more goes to the kernel.
const MAX_OPTIONS: usize = 8;

/// A Neighbor Solicitation, or an Advertisement once built: the ICMPv6
/// header, the target and one link-layer address option.
#[repr(C)]
struct NdMsg {
    icmp: IcmpHdr,
    target: [u8; 16],
    opt_type: u8,
    opt_len: u8,
    opt_mac: [u8; 6],
}
const NA_LEN: u32 = 32;

/// What the checks of a solicitation found.
pub enum Checked {
    /// Valid.
    Valid,
    /// To be discarded (`drop ndp-invalid`).
    Invalid,
    /// Not checked (too long): the kernel's.
    Unchecked,
}

/// RFC 4861's checks of a solicitation whose fixed part (after the ICMPv6
/// header) is `fixed` bytes: hop limit 255, code 0, long enough, a valid
/// checksum, options of non-zero length within the message, none that is
/// a source link-layer address from `::`.
#[inline(always)]
pub fn check(ctx: &XdpContext, p: &Packet, fixed: u32) -> Checked {
    let len = p.len - IPV6_HLEN as u32;
    let Some(h) = header::<IcmpHdr>(ctx, p.l3_at() + IPV6_HLEN) else {
        return Checked::Invalid;
    };
    if p.ttl != HOP_LIMIT || unsafe { (*h).code } != 0 || len < ICMP_HLEN as u32 + fixed {
        return Checked::Invalid;
    }
    if len > MAX_ND_LEN {
        return Checked::Unchecked;
    }
    // The pseudo-header's addresses are the IPv6 header's last 32 bytes,
    // right before the message.
    let Some(sum) = csum::sum(ctx, p.l3_at() + 8, 32 + len) else {
        return Checked::Invalid;
    };
    if !csum::verifies(sum + csum::be32(len) + csum::be32(IPPROTO_ICMPV6 as u32)) {
        return Checked::Invalid;
    }
    let mut source_ll = false;
    let end = p.l3_at() + IPV6_HLEN + len as usize;
    let mut off = p.l3_at() + IPV6_HLEN + ICMP_HLEN + fixed as usize;
    for _ in 0..MAX_OPTIONS {
        if off >= end {
            break;
        }
        let Some(o) = header::<[u8; 2]>(ctx, off) else {
            return Checked::Invalid;
        };
        let (kind, units) = unsafe { ((*o)[0], (*o)[1]) };
        if units == 0 {
            return Checked::Invalid;
        }
        source_ll |= kind == OPT_SOURCE_LL;
        off += units as usize * 8;
    }
    if off < end {
        return Checked::Unchecked;
    }
    if off > end || (source_ll && unspecified(p)) {
        return Checked::Invalid;
    }
    Checked::Valid
}

/// The source is `::`.
#[inline(always)]
pub fn unspecified(p: &Packet) -> bool {
    p.src[0] == 0 && p.src[1] == 0
}

/// The solicited-node multicast address of a target whose lower half is
/// `low`, as upper and lower halves: ff02::1:ffXX:XXXX.
#[inline(always)]
fn solicited_node(low: u64) -> [u64; 2] {
    [
        0xff02_0000_0000_0000,
        0x0000_0001_ff00_0000 | (low & 0xff_ffff),
    ]
}

/// A Neighbor Solicitation to the router on access interface `x.slot`:
/// answered, refused or left to the caller (false).
/// Returns `v.reason` (see [`arp`](crate::arp::arp) for why).
#[inline(never)]
pub fn solicitation(x: &In, p: &Packet, v: &mut Verdict) -> u32 {
    solicited(x, p, v);
    v.reason
}

#[inline(always)]
fn solicited(x: &In, p: &Packet, v: &mut Verdict) -> bool {
    match check(x.ctx, p, 16) {
        Checked::Valid => {}
        Checked::Invalid => {
            *v = Verdict::new(reason::DROP_NDP_INVALID);
            return true;
        }
        Checked::Unchecked => return false,
    }
    // The target, read in place (as halves, like `p.dst`): no copy on
    // this subprogram's stack, which the verifier bounds.
    let Some(target) = header::<[u8; 16]>(x.ctx, p.l3_at() + IPV6_HLEN + ICMP_HLEN) else {
        return false;
    };
    let target = unsafe { &*target };
    let Some(halves) = header::<[u64; 2]>(x.ctx, p.l3_at() + IPV6_HLEN + ICMP_HLEN) else {
        return false;
    };
    let (hi, lo) = unsafe { (u64::from_be((*halves)[0]), u64::from_be((*halves)[1])) };
    let dad = unspecified(p);
    let solicited = solicited_node(lo);
    if hi >> 56 == 0xff || (dad && p.dst != solicited) {
        *v = Verdict::new(reason::DROP_NDP_INVALID);
        return true;
    }
    if !gateway6(x.slot, target) || (p.dst != solicited && p.dst != [hi, lo]) {
        *v = Verdict::new(reason::PASS_NDP_OTHER_TARGET);
        return true;
    }
    match by_attachment(x, p.s_vlan, p.c_vlan) {
        Ok(Attached::Member(slot, m)) => learn::note(x.ctx, slot, m),
        Ok(Attached::Shared) => {}
        Err(refused) => {
            *v = refused;
            return true;
        }
    }
    *v = if advertise(x, p, dad) {
        Verdict::reply(reason::REPLY_NEIGHBOR_ADVERT, x.slot)
    } else {
        Verdict::new(reason::DROP_MALFORMED)
    };
    true
}

/// Turns the solicitation into the advertisement of its target: from the
/// target, to the soliciting host (to all-nodes for a DAD probe), 32 bytes
/// of ICMPv6 (the frame's length changes to fit).
#[inline(always)]
fn advertise(x: &In, p: &Packet, dad: bool) -> bool {
    let ctx = x.ctx;
    let Some(requester) = source_mac(ctx) else {
        return false;
    };
    let want = p.l3_at() + IPV6_HLEN + NA_LEN as usize;
    let have = ctx.data_end() - ctx.data();
    if have != want && unsafe { bpf_xdp_adjust_tail(ctx.ctx, want as i32 - have as i32) } != 0 {
        return false;
    }
    let (Some(ip), Some(na)) = (
        header::<Ipv6Hdr>(ctx, p.l3_at()),
        header::<NdMsg>(ctx, p.l3_at() + IPV6_HLEN),
    ) else {
        return false;
    };
    let (ip, na) = unsafe { (&mut *ip, &mut *na) };
    let mac = x.iface.mac;
    ip.vtc_flow = [0x60, 0, 0, 0];
    ip.payload_len = (NA_LEN as u16).to_be_bytes();
    ip.next_hdr = IPPROTO_ICMPV6;
    ip.hop_limit = HOP_LIMIT;
    ip.dst = if dad { ALL_NODES } else { ip.src };
    ip.src = na.target;
    na.icmp.kind = ND_NEIGHBOR_ADVERT;
    na.icmp.code = 0;
    na.icmp.check = [0; 2];
    let flags = if dad {
        NA_ROUTER | NA_OVERRIDE
    } else {
        NA_ROUTER | NA_SOLICITED | NA_OVERRIDE
    };
    na.icmp.rest = [flags, 0, 0, 0];
    na.opt_type = OPT_TARGET_LL;
    na.opt_len = 1;
    na.opt_mac = mac;
    let Some(sum) = csum::sum_fixed::<64>(ctx, p.l3_at() + 8) else {
        return false;
    };
    na.icmp.check = csum::store(sum + csum::be32(NA_LEN) + csum::be32(IPPROTO_ICMPV6 as u32));
    answer_eth(ctx, if dad { ALL_NODES_MAC } else { requester }, mac)
}
