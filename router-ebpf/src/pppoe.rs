//! PPPoE sessions (RFC 2516) in the fast path, the parts the programs
//! share: the session header ([`session`]), the hand-over to the PPPoE
//! programs by tail call ([`tail`]), the encapsulation ([`encap`]) and the
//! clamping of TCP SYNs' MSS ([`clamp_mss`]).
//!
//! The PPPoE work runs in two programs of its own, reached by tail calls
//! (`PPPOE_PROGS`), so that the entry program's code and verification stay
//! as they were: [`pppoe_up`](crate::pppoe_up) takes session frames from
//! access interfaces, [`pppoe_down`](crate::pppoe_down) puts packets to
//! PPPoE members in their session. The entry program only recognises the
//! two cases (a reason beyond the table, [`TAIL_UP`] or [`TAIL_DOWN`]).
use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_head, programs::XdpContext};
use router_common::{
    NO_MEMBER,
    pppoe::{
        CODE_SESSION, ETH_P_PPPOE_SESSION, PPP_IPV4, PPP_IPV6, PPP_PROTO_LEN, PPPOE_HLEN, VER_TYPE,
        clamped_mss,
    },
    reason, step,
};

use crate::{
    csum, explain,
    lookup::Tables,
    maps::{PPPOE_HANDOFF, PPPOE_PROGS},
    packet::{
        ETH_HLEN, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, EthHdr, IP_MF, IP_OFFSET, Ipv4Hdr, Ipv6Hdr,
        VLAN_HLEN, VlanHdr, decrement_ttl, header,
    },
    parse::{L2, Packet},
    rewrite::NextHop,
    verdict::{self, Verdict},
};

/// Indices in `PPPOE_PROGS`.
pub const UP: u32 = 0;
pub const DOWN: u32 = 1;

/// Verdict reasons beyond the table, seen only before counting: the frame
/// goes on in `pppoe_up` (a session frame from an access interface) or
/// `pppoe_down` (a packet to a PPPoE member, `Verdict::to`).
pub const TAIL_UP: u32 = reason::REASON_SLOTS - 2;
pub const TAIL_DOWN: u32 = reason::REASON_SLOTS - 1;
const _: () = assert!(reason::COUNT < TAIL_UP);

/// PPPoE and PPP headers together: what a session frame adds to an IP
/// packet.
pub const SESSION_HLEN: usize = PPPOE_HLEN + PPP_PROTO_LEN;

/// What `pppoe_down` is told (`PPPOE_HANDOFF`): the rest it finds again.
/// The map is pinned (a restart's old entry program hands to the new
/// `pppoe_down`), so this layout changes only with `ABI_VERSION`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Handoff {
    /// Ingress interface slot (whose counters count the packet).
    pub slot: u32,
    /// The sending member (hairpin), or `NO_MEMBER` (from an uplink).
    pub from: u32,
    /// The PPPoE member it goes to.
    pub to: u32,
    /// IP packet length.
    pub bytes: u32,
}

/// The PPPoE header and the PPP protocol field of a session frame.
#[repr(C)]
pub struct SessionHdr {
    pub ver_type: u8,
    pub code: u8,
    pub session_id: [u8; 2],
    pub len: [u8; 2],
    pub proto: [u8; 2],
}

/// A session frame's headers, checked.
pub struct Session {
    /// The IP packet's envelope: `l3` after the PPP protocol field,
    /// `proto` the IP EtherType.
    pub inner: L2,
    pub session_id: u16,
    /// The PPPoE length (the PPP protocol field and the IP packet).
    pub len: u16,
}

/// Checks the PPPoE header after the tags `l2` found (version and type 1,
/// code 0, a length of at least the PPP protocol field that the frame
/// holds; else `pppoe-malformed`) and that it carries IPv4 or IPv6 (else
/// `pppoe-control`).
#[inline(always)]
pub fn session(ctx: &XdpContext, l2: &L2) -> Result<Session, u32> {
    let at = l2.l3_at();
    let h = header::<SessionHdr>(ctx, at).ok_or(reason::DROP_PPPOE_MALFORMED)?;
    let h = unsafe { &*h };
    let len = u16::from_be_bytes(h.len);
    let frame_len = (ctx.data_end() - ctx.data()) as u32;
    if h.ver_type != VER_TYPE
        || h.code != CODE_SESSION
        || (len as usize) < PPP_PROTO_LEN
        || (at + PPPOE_HLEN) as u32 + len as u32 > frame_len
    {
        return Err(reason::DROP_PPPOE_MALFORMED);
    }
    let proto = match u16::from_be_bytes(h.proto) {
        PPP_IPV4 => ETH_P_IP,
        PPP_IPV6 => ETH_P_IPV6,
        _ => return Err(reason::PASS_PPPOE_CONTROL),
    };
    Ok(Session {
        inner: L2 {
            tags: l2.tags,
            s_vlan: l2.s_vlan,
            c_vlan: l2.c_vlan,
            l3: at + SESSION_HLEN,
            proto,
        },
        session_id: u16::from_be_bytes(h.session_id),
        len,
    })
}

/// The entry program's (and `pppoe_up`'s) hand-over to a PPPoE program,
/// for a verdict of reason [`TAIL_UP`] or [`TAIL_DOWN`]. It only returns
/// if the tail call failed (no program in `PPPOE_PROGS`): the verdict is
/// then a session frame passed as of no known session, or a packet to a
/// PPPoE member dropped as of no session.
#[inline(always)]
pub fn tail(ctx: &XdpContext, slot: u32, v: &mut Verdict) {
    if v.reason == TAIL_UP {
        unsafe { PPPOE_PROGS.tail_call(ctx, UP) };
        v.reason = reason::PASS_PPPOE_UNKNOWN_SESSION;
        return;
    }
    if let Some(h) = PPPOE_HANDOFF.get_ptr_mut(0) {
        unsafe {
            *h = Handoff {
                slot,
                from: v.from,
                to: v.to,
                bytes: v.bytes,
            }
        };
        unsafe { PPPOE_PROGS.tail_call(ctx, DOWN) };
    }
    v.reason = reason::DROP_PPPOE_NO_SESSION;
    v.to = NO_MEMBER;
}

/// The end of each PPPoE program, as of the entry program: the verdict
/// counted (or recorded, in the tracer's instance), then acted on.
#[inline(always)]
pub fn finish(slot: u32, v: &Verdict, t: &Tables, trace: bool) -> u32 {
    if trace {
        verdict::record(v);
    } else {
        verdict::count(slot, v, t);
    }
    verdict::act(v, trace)
}

/// The ingress interface slot of a PPPoE program's frame (the tracer's,
/// in its instance), as the entry program finds it.
#[inline(always)]
pub fn ingress_slot(ctx: &XdpContext, trace: bool) -> u32 {
    let ifindex = if trace {
        verdict::traced_ingress()
    } else {
        unsafe { (*ctx.ctx).ingress_ifindex }
    };
    crate::classify::iface_slot(ifindex)
}

/// `pass` when `GLOBALS` cannot be read (never).
pub const NO_TABLES: u32 = xdp_action::XDP_PASS;

/// Rewrites the IP packet `p` (of a frame that fits) into session
/// `session_id` of the member `hop` leads to: the layer-2 header with its
/// tags, ethertype 0x8864, the PPPoE header (length: the IP packet and the
/// PPP protocol field) and the PPP protocol, then the TTL or hop limit
/// − 1. Returns the offset of the IP header.
#[inline(always)]
pub fn encap(ctx: &XdpContext, p: &Packet, hop: &NextHop, session_id: u16) -> Result<usize, u32> {
    let tags = hop.tags.count;
    let ip_at = ETH_HLEN + VLAN_HLEN * tags as usize + SESSION_HLEN;
    let delta = p.l3 as i32 - ip_at as i32;
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Err(reason::PASS_TOO_BIG);
    }
    let eth = header::<EthHdr>(ctx, 0).ok_or(reason::DROP_MALFORMED)?;
    let eth = unsafe { &mut *eth };
    eth.dst = hop.dst_mac;
    eth.src = hop.src_mac;
    let session = ETH_P_PPPOE_SESSION.to_be_bytes();
    if tags == 0 {
        eth.proto = session;
    } else {
        eth.proto = hop.tags.outer.to_be_bytes();
        let t = header::<VlanHdr>(ctx, ETH_HLEN).ok_or(reason::DROP_MALFORMED)?;
        let t = unsafe { &mut *t };
        t.tci = hop.tags.first.to_be_bytes();
        if tags == 1 {
            t.proto = session;
        } else {
            t.proto = ETH_P_8021Q.to_be_bytes();
            let t2 = header::<VlanHdr>(ctx, ETH_HLEN + VLAN_HLEN).ok_or(reason::DROP_MALFORMED)?;
            let t2 = unsafe { &mut *t2 };
            t2.tci = hop.tags.second.to_be_bytes();
            t2.proto = session;
        }
    }
    let h = header::<SessionHdr>(ctx, ip_at - SESSION_HLEN).ok_or(reason::DROP_MALFORMED)?;
    let h = unsafe { &mut *h };
    h.ver_type = VER_TYPE;
    h.code = CODE_SESSION;
    h.session_id = session_id.to_be_bytes();
    h.len = ((p.len + PPP_PROTO_LEN as u32) as u16).to_be_bytes();
    h.proto = if p.v6 { PPP_IPV6 } else { PPP_IPV4 }.to_be_bytes();
    if p.v6 {
        let ip = header::<Ipv6Hdr>(ctx, ip_at).ok_or(reason::DROP_MALFORMED)?;
        unsafe { (*ip).hop_limit -= 1 };
    } else {
        let ip = header::<Ipv4Hdr>(ctx, ip_at).ok_or(reason::DROP_MALFORMED)?;
        decrement_ttl(unsafe { &mut *ip });
    }
    explain::step(step::PPPOE_ENCAP);
    Ok(ip_at)
}

const IPPROTO_TCP: u8 = 6;
const TCP_SYN: u8 = 0x02;
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;
/// Options looked at before giving up on finding the MSS (which senders
/// put first).
const MAX_OPTIONS: usize = 8;
/// Frame offsets of TCP options stay below this (IP at 30 at most, a
/// 60-byte IPv4 header, 60 bytes of TCP header): a bound the verifier sees.
const OFFSET_MASK: usize = 0xff;

/// Lowers the MSS option of a TCP SYN (or SYN-ACK) whose IP header (of
/// `p`) is at `ip_at` to what a session of MRU `mru` carries, with the TCP
/// checksum updated (RFC 1624). Other packets, and an MSS already small
/// enough, are left alone. Returns whether it clamped.
#[inline(always)]
pub fn clamp_mss(ctx: &XdpContext, ip_at: usize, p: &Packet, mru: u16) -> bool {
    if p.proto != IPPROTO_TCP || (!p.v6 && p.frag & (IP_MF | IP_OFFSET) != 0) {
        return false;
    }
    let tcp = (ip_at & 0x1f) + p.hlen_at();
    let Some(th) = header::<[u8; 20]>(ctx, tcp) else {
        return false;
    };
    let (offset_byte, flags) = unsafe { ((*th)[12], (*th)[13]) };
    let doff = (offset_byte >> 4) as usize * 4;
    if flags & TCP_SYN == 0 || doff <= 20 {
        return false;
    }
    let max = clamped_mss(mru, p.v6);
    let end = tcp + doff;
    let mut off = tcp + 20;
    for _ in 0..MAX_OPTIONS {
        if off >= end {
            return false;
        }
        let o = off & OFFSET_MASK;
        let Some(opt) = header::<[u8; 2]>(ctx, o) else {
            return false;
        };
        let (kind, len) = unsafe { ((*opt)[0], (*opt)[1] as usize) };
        if kind == TCPOPT_EOL {
            return false;
        }
        if kind == TCPOPT_NOP {
            off += 1;
            continue;
        }
        if kind == TCPOPT_MSS && len == 4 {
            if o + 4 > end {
                return false;
            }
            return lower_mss(ctx, tcp, o + 2, max);
        }
        if len < 2 {
            return false;
        }
        off += len;
    }
    false
}

/// Writes `max` into the MSS at `at` if it is larger, and updates the TCP
/// checksum of the header at `tcp`.
#[inline(always)]
fn lower_mss(ctx: &XdpContext, tcp: usize, at: usize, max: u16) -> bool {
    let (Some(mss), Some(check)) = (
        header::<[u8; 2]>(ctx, at & OFFSET_MASK),
        header::<[u8; 2]>(ctx, (tcp & OFFSET_MASK) + 16),
    ) else {
        return false;
    };
    let old = u16::from_be_bytes(unsafe { *mss });
    if old <= max {
        return false;
    }
    unsafe { *mss = max.to_be_bytes() };
    // A value at an odd offset from the header's start straddles two
    // 16-bit words of the sum: its bytes count swapped.
    let (o, n) = if (at - tcp) & 1 == 0 {
        (old, max)
    } else {
        (old.swap_bytes(), max.swap_bytes())
    };
    unsafe { *check = csum::update16(*check, o, n) };
    explain::step(step::MSS_CLAMPED);
    true
}
