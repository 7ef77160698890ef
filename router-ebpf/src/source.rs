//! The source check of upstream packets: the sender a source address
//! belongs to must be attached where the frame came from (interface, tags
//! and, when configured, MAC); otherwise the packet is spoofed and is
//! attributed to the member attached there. It reads the frame and the
//! tables and decides the spoofed verdict, but rewrites nothing.
use aya_ebpf::programs::XdpContext;
use router_common::{
    ATTACH_SHARED, AttachKey, Globals, NO_MEMBER, member_flags, reason, route, step,
};

use crate::{
    explain,
    lookup::{Tables, lookup, member},
    maps::ATTACHMENTS,
    packet::{EthHdr, header},
    parse::Packet,
    verdict::Verdict,
};

/// The member slot that sent `p` from interface `slot`, or the verdict on a
/// packet whose source is not its sender's.
#[inline(always)]
pub fn check(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables) -> Result<u32, Verdict> {
    let src_leaf = lookup(t.g, p, &p.src);
    explain::src_lookup(src_leaf);
    let sender = if src_leaf != route::EMPTY && src_leaf != route::LOCAL {
        src_leaf - 1
    } else {
        NO_MEMBER
    };
    if !attached_here(ctx, p, slot, t, sender) {
        return Err(spoofed(p, slot, t.g, sender));
    }
    explain::step(step::SRC_OK);
    Ok(sender)
}

/// Is `sender` attached at the frame's interface and tags, with its MAC?
#[inline(always)]
fn attached_here(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables, sender: u32) -> bool {
    let Some(m) = member(t, sender) else {
        explain::step(step::SRC_WRONG_ATTACHMENT);
        return false;
    };
    if m.iface as u32 != slot || m.s_vlan != p.s_vlan || m.c_vlan != p.c_vlan {
        explain::step(step::SRC_WRONG_ATTACHMENT);
        return false;
    }
    if m.flags as u16 & member_flags::CHECK_MAC != 0 {
        explain::step(step::SRC_MAC_CHECKED);
        let Some(eth) = header::<EthHdr>(ctx, 0) else {
            return false;
        };
        if unsafe { (*eth).src } != m.mac {
            explain::step(step::SRC_MAC_MISMATCH);
            return false;
        }
    }
    true
}

/// A frame whose source is not its sender's: dropped, attributed to the
/// member attached where it came from. From an attachment where no member
/// lives, a frame of unknown source goes to the kernel instead.
#[inline(always)]
fn spoofed(p: &Packet, slot: u32, g: &Globals, sender: u32) -> Verdict {
    let key = AttachKey {
        iface: slot as u16,
        half: g.active as u16,
        s_vlan: p.s_vlan,
        c_vlan: p.c_vlan,
    };
    let attached = unsafe { ATTACHMENTS.get(key) }.copied();
    let mut v = Verdict::new(reason::DROP_SPOOFED);
    match attached {
        None if sender == NO_MEMBER => Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT),
        Some(m) if m != ATTACH_SHARED => {
            v.from = m;
            v
        }
        _ => v,
    }
}
