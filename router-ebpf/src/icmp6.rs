//! ICMPv6 to the router on an access interface, dispatched to what answers
//! it: Neighbor Solicitations ([`ndp`]), Router Solicitations ([`ra`]) and
//! echo requests ([`echo`]).
use crate::{
    echo,
    edge::In,
    ndp,
    packet::{IPPROTO_ICMPV6, IPV6_HLEN, IcmpHdr, header},
    parse::Packet,
    ra,
    verdict::Verdict,
};

/// ICMPv6 types the program answers.
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_NEIGHBOR_SOLICIT: u8 = 135;

/// ICMPv6 to the router on an access interface: a Neighbor Solicitation,
/// a Router Solicitation or (unless it came to a group address,
/// `group`) an echo request. `v` gets the verdict when the frame is one of
/// those the program answers or refuses; false leaves it to the caller's
/// classification. `v.from` is the sender when the source check already
/// found it.
/// Returns `v.reason`. Each answer is a BPF subprogram of its own, called
/// from here (inlined in the caller): one level of calls below the entry
/// point, within the verifier's 512 bytes of stack for the whole chain.
#[inline(always)]
pub fn to_router(x: &In, p: &Packet, group: bool, v: &mut Verdict) -> u32 {
    if p.proto != IPPROTO_ICMPV6 {
        return v.reason;
    }
    let Some(h) = header::<IcmpHdr>(x.ctx, p.l3 + IPV6_HLEN) else {
        return v.reason;
    };
    let kind = unsafe { (*h).kind };
    if kind == ND_NEIGHBOR_SOLICIT {
        ndp::solicitation(x, p, v)
    } else if kind == ND_ROUTER_SOLICIT {
        ra::solicitation(x, p, v)
    } else if kind == ICMPV6_ECHO_REQUEST && !group {
        echo::request6(x, p, v)
    } else {
        v.reason
    }
}
