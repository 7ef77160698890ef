//! The source check of upstream packets: the sender a source address
//! belongs to must be attached where the frame came from (interface, tags
//! and, when configured, MAC); otherwise the packet is spoofed and is
//! attributed to the member attached there. It reads the frame and the
//! tables and decides the spoofed verdict, but rewrites nothing.
use aya_ebpf::programs::XdpContext;
use router_common::{
    ATTACH_SHARED, AttachKey, Globals, MemberFwd, NO_MEMBER, member_flags, reason, route, step,
};

use crate::{
    explain,
    lookup::{Tables, lookup, member},
    maps::ATTACHMENTS,
    packet::{EthHdr, header},
    parse::Packet,
    verdict::Verdict,
};

/// The member a frame came from: its slot and forwarding data.
pub struct Sender {
    pub slot: u32,
    pub m: &'static MemberFwd,
}

/// Where a frame came from: interface slot and tags.
pub struct Origin {
    pub slot: u32,
    pub s_vlan: u16,
    pub c_vlan: u16,
}

/// The member that sent `p` from interface `slot`, or the verdict on a
/// packet whose source is not its sender's.
#[inline(always)]
pub fn check(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables) -> Result<Sender, Verdict> {
    let at = Origin {
        slot,
        s_vlan: p.s_vlan,
        c_vlan: p.c_vlan,
    };
    check_addr(ctx, p.v6, &p.src, &at, t)
}

/// The member that owns source address `src` (IPv6 if `v6`) and is
/// attached at `at`, or the verdict on a frame whose source is not its
/// sender's.
#[inline(always)]
pub fn check_addr(
    ctx: &XdpContext,
    v6: bool,
    src: &[u64; 2],
    at: &Origin,
    t: &Tables,
) -> Result<Sender, Verdict> {
    let src_leaf = lookup(t.g, v6, src);
    explain::src_lookup(src_leaf);
    let sender = if src_leaf != route::EMPTY && src_leaf != route::LOCAL {
        src_leaf - 1
    } else {
        NO_MEMBER
    };
    match attached_here(ctx, at, t, sender) {
        Some(m) => {
            explain::step(step::SRC_OK);
            Ok(Sender { slot: sender, m })
        }
        None => Err(spoofed(at, t.g, sender)),
    }
}

/// `sender`, if it is attached at the frame's interface and tags, with its
/// MAC.
#[inline(always)]
fn attached_here(
    ctx: &XdpContext,
    at: &Origin,
    t: &Tables,
    sender: u32,
) -> Option<&'static MemberFwd> {
    let Some(m) = member(t, sender) else {
        explain::step(step::SRC_WRONG_ATTACHMENT);
        return None;
    };
    // A PPPoE member's packets come in its session (`pppoe_up`), never
    // as plain IP frames.
    if m.iface as u32 != at.slot
        || m.s_vlan != at.s_vlan
        || m.c_vlan != at.c_vlan
        || m.flags as u16 & member_flags::PPPOE != 0
    {
        explain::step(step::SRC_WRONG_ATTACHMENT);
        return None;
    }
    if m.flags as u16 & member_flags::CHECK_MAC != 0 {
        explain::step(step::SRC_MAC_CHECKED);
        if !from_mac(ctx, &m.mac) {
            explain::step(step::SRC_MAC_MISMATCH);
            return None;
        }
    }
    Some(m)
}

/// Whether the frame's source MAC is `mac`.
#[inline(always)]
pub fn from_mac(ctx: &XdpContext, mac: &[u8; 6]) -> bool {
    match header::<EthHdr>(ctx, 0) {
        Some(eth) => (unsafe { (*eth).src }) == *mac,
        None => false,
    }
}

/// The member attached at `at` alone, if one is (not a shared segment).
#[inline(always)]
pub fn attached_at(at: &Origin, g: &Globals) -> Option<u32> {
    let key = AttachKey {
        iface: at.slot as u16,
        half: g.active as u16,
        s_vlan: at.s_vlan,
        c_vlan: at.c_vlan,
    };
    unsafe { ATTACHMENTS.get(key) }.copied()
}

/// A frame whose source is not its sender's: dropped, attributed to the
/// member attached where it came from. From an attachment where no member
/// lives, a frame of unknown source goes to the kernel instead.
#[inline(always)]
fn spoofed(at: &Origin, g: &Globals, sender: u32) -> Verdict {
    let mut v = Verdict::new(reason::DROP_SPOOFED);
    match attached_at(at, g) {
        None if sender == NO_MEMBER => Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT),
        Some(m) if m != ATTACH_SHARED => {
            v.from = m;
            v
        }
        _ => v,
    }
}
