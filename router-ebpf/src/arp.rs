//! ARP (RFC 826) on access interfaces: a request for a gateway address
//! from the member its sender address belongs to, attached where the frame
//! came from, is answered in place, as cilium's `arp.h` does; everything
//! else goes to the kernel with the reason it was not answered. ARP on
//! uplinks goes to the kernel (`pass arp`).
use router_common::{kind, reason};

use crate::{
    edge::{In, answer_eth, gateway4, source_mac},
    learn,
    packet::header,
    parse::L2,
    source::{Origin, check_addr},
    verdict::Verdict,
};

/// An Ethernet/IPv4 ARP packet.
#[repr(C)]
struct ArpHdr {
    htype: [u8; 2],
    ptype: [u8; 2],
    hlen: u8,
    plen: u8,
    oper: [u8; 2],
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
}

const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

/// What to do with an ARP frame (EtherType 0x0806 after the tags `l2`):
/// `v`, whose reason is returned. (A BPF subprogram returns a value its
/// caller uses: LLVM leaves whatever it likes in the return register of a
/// function whose result is unused, and the verifier refuses a stack
/// pointer there.)
#[inline(never)]
pub fn arp(x: &In, l2: &L2, v: &mut Verdict) -> u32 {
    *v = classify(x, l2);
    v.reason
}

#[inline(always)]
fn classify(x: &In, l2: &L2) -> Verdict {
    if x.iface.kind != kind::ACCESS {
        return Verdict::new(reason::PASS_ARP);
    }
    let Some(a) = header::<ArpHdr>(x.ctx, l2.l3_at()) else {
        return Verdict::new(reason::PASS_ARP);
    };
    let a = unsafe { &mut *a };
    if u16::from_be_bytes(a.htype) != ARPHRD_ETHER
        || u16::from_be_bytes(a.ptype) != crate::packet::ETH_P_IP
        || a.hlen != 6
        || a.plen != 4
    {
        return Verdict::new(reason::PASS_ARP);
    }
    let spa = u32::from_be_bytes(a.spa);
    if spa == u32::from_be_bytes(a.tpa) {
        return Verdict::new(reason::PASS_ARP_GRATUITOUS);
    }
    if u16::from_be_bytes(a.oper) != ARPOP_REQUEST {
        return Verdict::new(reason::PASS_ARP);
    }
    if spa == 0 {
        return Verdict::new(reason::PASS_ARP_PROBE);
    }
    if !gateway4(x.slot, u32::from_be_bytes(a.tpa)) {
        return Verdict::new(reason::PASS_ARP_OTHER_TARGET);
    }
    let at = Origin {
        slot: x.slot,
        s_vlan: l2.s_vlan,
        c_vlan: l2.c_vlan,
    };
    let sender = match check_addr(x.ctx, false, &[spa as u64, 0], &at, x.t) {
        Ok(s) => s,
        Err(spoofed) => return spoofed,
    };
    learn::note(x.ctx, sender.slot, sender.m);
    let Some(requester) = source_mac(x.ctx) else {
        return Verdict::new(reason::DROP_MALFORMED);
    };
    // The reply in place: from the gateway address to the requester.
    let mac = x.iface.mac;
    a.oper = ARPOP_REPLY.to_be_bytes();
    a.tha = a.sha;
    a.sha = mac;
    let gateway = a.tpa;
    a.tpa = a.spa;
    a.spa = gateway;
    if !answer_eth(x.ctx, requester, mac) {
        return Verdict::new(reason::DROP_MALFORMED);
    }
    Verdict::reply(reason::REPLY_ARP, x.slot)
}
