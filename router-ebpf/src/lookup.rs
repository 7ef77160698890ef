//! Looking up: the prefix table's entries (the walk itself is [`trie`]'s),
//! the member lines, and the [`NextHop`] a forward goes to. It reads maps,
//! never the frame, and neither counts nor acts; when there is no usable
//! next hop, it says why (the reason the packet goes to the kernel).
use aya_ebpf::helpers::bpf_get_smp_processor_id;
use router_common::{
    Globals, IFACE_SLOT_UNKNOWN, MemberFwd, MemberLine, iface_flags, member_flags,
    member_line_index, reason, route,
};

use crate::{
    maps::{GLOBALS, IFACES, MEMBER_LINES, ROUTES},
    parse::Packet,
    rewrite::{NextHop, Tags},
    trie,
};

/// What every packet reads once: the globals, and where this CPU's block of
/// member lines starts.
pub struct Tables {
    pub g: &'static Globals,
    /// Index of this CPU's line of member slot 0 in `MEMBER_LINES`.
    lines: u32,
}

impl Tables {
    /// None only if `GLOBALS` has no entry, which the kernel never lets
    /// happen to an array.
    #[inline(always)]
    pub fn read() -> Option<Self> {
        let g = GLOBALS.get(0)?;
        let cpu = unsafe { bpf_get_smp_processor_id() };
        Some(Tables {
            g,
            lines: member_line_index(cpu, g.max_members, 0),
        })
    }
}

/// Entry `index` of the prefix table (both halves counted).
#[inline(always)]
fn entry(index: u32) -> u32 {
    match ROUTES.get(index / route::CHUNK) {
        Some(chunk) => chunk.0[(index % route::CHUNK) as usize],
        None => route::EMPTY,
    }
}

/// The leaf of `addr` (IPv6 if `v6`) in the active half of the prefix
/// table: a member slot + 1, `route::LOCAL` or `route::EMPTY`.
#[inline(always)]
pub fn lookup(g: &Globals, v6: bool, addr: &[u64; 2]) -> u32 {
    let base = g.active * g.route_half;
    let entry_in_half = |i| entry(base + i);
    if v6 {
        trie::lookup6(entry_in_half, addr)
    } else {
        trie::lookup4(entry_in_half, addr[0] as u32)
    }
}

/// This CPU's line of member `slot` (none beyond `max_members`, which
/// would be the next CPU's block, nor for `NO_MEMBER`).
#[inline(always)]
pub fn line(t: &Tables, slot: u32) -> Option<*mut MemberLine> {
    if slot >= t.g.max_members {
        return None;
    }
    MEMBER_LINES.get_ptr_mut(t.lines + slot)
}

/// Member `slot`'s forwarding data in the active half, if it exists.
#[inline(always)]
pub fn member(t: &Tables, slot: u32) -> Option<&'static MemberFwd> {
    let l = line(t, slot)?;
    let m = unsafe { &(*l).fwd[(t.g.active & 1) as usize] };
    if m.flags as u16 & member_flags::PRESENT == 0 {
        return None;
    }
    Some(m)
}

/// The next hop towards member `slot`: its line, MAC and tags. Fails with
/// the reason the packet goes to the kernel instead, or, for a PPPoE
/// member, [`TAIL_DOWN`](crate::pppoe::TAIL_DOWN): `pppoe_down` finds it.
#[inline(always)]
pub fn member_hop(t: &Tables, slot: u32) -> Result<NextHop, u32> {
    let m = member(t, slot).ok_or(reason::PASS_NO_ROUTE)?;
    // One test on the common path (a MAC, no session): then which.
    let flags = m.flags as u16 & (member_flags::HAS_MAC | member_flags::PPPOE);
    if flags != member_flags::HAS_MAC {
        if flags & member_flags::PPPOE != 0 {
            return Err(crate::pppoe::TAIL_DOWN);
        }
        return Err(reason::PASS_NO_NEIGHBOR);
    }
    let out = IFACES.get(m.iface as u32).ok_or(reason::PASS_NO_ROUTE)?;
    Ok(NextHop {
        egress: m.iface as u32,
        dst_mac: m.mac,
        src_mac: out.mac,
        mtu: out.mtu as u32,
        tags: Tags::member(m.s_vlan, m.c_vlan),
    })
}

/// The next hop of upstream traffic of `p`'s family: the uplink's gateway.
/// Fails (`no-neighbor`) while there is no uplink or its gateway's MAC is
/// unknown.
#[inline(always)]
pub fn uplink_hop(g: &Globals, p: &Packet) -> Result<NextHop, u32> {
    let (slot, valid) = if p.v6 {
        (g.uplink6, iface_flags::GW6_VALID)
    } else {
        (g.uplink4, iface_flags::GW4_VALID)
    };
    let up = IFACES.get(slot).ok_or(reason::PASS_NO_NEIGHBOR)?;
    if slot == IFACE_SLOT_UNKNOWN || up.flags & valid == 0 {
        return Err(reason::PASS_NO_NEIGHBOR);
    }
    Ok(NextHop {
        egress: slot,
        dst_mac: if p.v6 { up.gw6_mac } else { up.gw4_mac },
        src_mac: up.mac,
        mtu: up.mtu as u32,
        tags: Tags::uplink(up.vlan),
    })
}
