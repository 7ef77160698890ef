//! What the program answers for itself on access interfaces, the parts the
//! answers share: where a frame entered ([`In`]), whose attachment it came
//! from ([`by_attachment`]), the gateway addresses, the answer's Ethernet
//! header ([`answer_eth`]). The answers themselves are
//! [`arp`](crate::arp), [`ndp`](crate::ndp), [`ra`](crate::ra) and
//! [`echo`](crate::echo), reached through [`icmp6`](crate::icmp6) for
//! ICMPv6.
//!
//! The answers' entry points are BPF subprograms (`#[inline(never)]`): the
//! rare paths stay out of the forwarding path's code and of its
//! verification.
use aya_ebpf::programs::XdpContext;
use router_common::{ATTACH_SHARED, GatewayKey, IfaceInfo, MemberFwd, member_flags, reason};

use crate::{
    lookup::{Tables, member},
    maps::GATEWAYS,
    packet::{EthHdr, header},
    source::{Origin, attached_at, from_mac},
    verdict::Verdict,
};

/// Where a frame came in, and the tables it is looked up in: what every
/// answer needs, in one argument (a BPF call takes five).
pub struct In<'a> {
    pub ctx: &'a XdpContext,
    /// Interface slot.
    pub slot: u32,
    pub iface: &'static IfaceInfo,
    pub t: &'a Tables,
}

/// Who sent a frame, as its attachment tells.
pub enum Attached {
    /// The member attached there alone (its MAC checked when configured).
    Member(u32, &'static MemberFwd),
    /// Several members share the attachment (an untagged segment): the
    /// frame is nobody's in particular.
    Shared,
}

/// The member attached where the frame came from, checking its MAC when it
/// has one configured; the verdict otherwise: nobody lives there (`pass
/// unknown-attachment`), or the MAC is not the member's (`drop spoofed`).
#[inline(always)]
pub fn by_attachment(x: &In, s_vlan: u16, c_vlan: u16) -> Result<Attached, Verdict> {
    let at = Origin {
        slot: x.slot,
        s_vlan,
        c_vlan,
    };
    let slot = match attached_at(&at, x.t.g) {
        None => return Err(Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT)),
        Some(ATTACH_SHARED) => return Ok(Attached::Shared),
        Some(s) => s,
    };
    let Some(m) = member(x.t, slot) else {
        return Err(Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT));
    };
    if m.flags as u16 & member_flags::CHECK_MAC != 0 && !from_mac(x.ctx, &m.mac) {
        let mut v = Verdict::new(reason::DROP_SPOOFED);
        v.from = slot;
        return Err(v);
    }
    Ok(Attached::Member(slot, m))
}

/// Whether IPv4 address `a` is one of interface `slot`'s.
#[inline(always)]
pub fn gateway4(slot: u32, a: u32) -> bool {
    let key = GatewayKey::v4(slot as u16, a.to_be_bytes());
    unsafe { GATEWAYS.get(&key) }.is_some()
}

/// Whether IPv6 address `a` is one of interface `slot`'s.
#[inline(always)]
pub fn gateway6(slot: u32, a: &[u8; 16]) -> bool {
    let key = GatewayKey::v6(slot as u16, *a);
    unsafe { GATEWAYS.get(&key) }.is_some()
}

/// Makes the frame's Ethernet header the answer's: to `dst`, from the
/// interface's MAC `src`. Tags stay as they came. False if the frame has
/// no Ethernet header.
#[inline(always)]
pub fn answer_eth(ctx: &XdpContext, dst: [u8; 6], src: [u8; 6]) -> bool {
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return false;
    };
    let eth = unsafe { &mut *eth };
    eth.dst = dst;
    eth.src = src;
    true
}

/// The frame's source MAC.
#[inline(always)]
pub fn source_mac(ctx: &XdpContext) -> Option<[u8; 6]> {
    header::<EthHdr>(ctx, 0).map(|eth| unsafe { (*eth).src })
}
