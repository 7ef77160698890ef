//! The verdict: what the program decided for a packet, and the three things
//! done with it at the end, [`count`] it, [`record`] it for the tracer and
//! [`act`] on it (the action is the reason's row of `router_common::reason`'s
//! table). It reads neither the frame nor the prefix table.
use aya_ebpf::bindings::xdp_action;
use router_common::{NO_MEMBER, action, reason};

use crate::{
    lookup::{Tables, line},
    maps::{EGRESS, IFACE_COUNTERS, TRACE_VERDICT},
};

/// Set to 1 by the tracer's instance of the program: the ingress interface
/// comes from `TRACE_VERDICT`, the verdict is written there, no counter moves
/// and nothing is redirected. The verifier removes the branches it guards
/// from the datapath's instance, where it stays 0.
#[unsafe(no_mangle)]
static TRACE: u8 = 0;

/// Whether this is the tracer's instance, which changes no state: it
/// neither counts, nor spends the ICMP rate, nor reports CPE MACs.
#[inline(always)]
pub fn tracing() -> bool {
    unsafe { core::ptr::read_volatile(&TRACE) != 0 }
}

/// What the program decided, before it is counted and acted on.
pub struct Verdict {
    pub reason: u32,
    /// Interface slot to redirect to (forwards).
    pub egress: u32,
    /// Member the packet came from (counted as receive, or as spoofed).
    pub from: u32,
    /// Member the packet goes to (counted as transmit).
    pub to: u32,
    /// IP packet length, for the byte counters.
    pub bytes: u32,
}

impl Verdict {
    #[inline(always)]
    pub const fn new(reason: u32) -> Self {
        Verdict {
            reason,
            egress: 0,
            from: NO_MEMBER,
            to: NO_MEMBER,
            bytes: 0,
        }
    }
    /// The packet comes from member `member`.
    #[inline(always)]
    pub const fn from(mut self, member: u32, bytes: u32) -> Self {
        self.from = member;
        self.bytes = bytes;
        self
    }
    /// The packet goes to member `member`.
    #[inline(always)]
    pub const fn to(mut self, member: u32, bytes: u32) -> Self {
        self.to = member;
        self.bytes = bytes;
        self
    }
    /// The frame, made an answer, leaves by interface `slot`, where it
    /// came from.
    #[inline(always)]
    pub const fn reply(reason: u32, slot: u32) -> Self {
        let mut v = Verdict::new(reason);
        v.egress = slot;
        v
    }
}

// The table's actions are the kernel's codes, returned as they are.
const _: () = assert!(action::DROP == xdp_action::XDP_DROP);
const _: () = assert!(action::PASS == xdp_action::XDP_PASS);
const _: () = assert!(action::FORWARD == xdp_action::XDP_REDIRECT);
const _: () = assert!(action::REPLY == xdp_action::XDP_TX);

/// Reasons whose packets are forwarded, answered, and dropped (bit `r`
/// for reason `r`), from the table: constants, so that the program tests a
/// bit.
const FORWARDS: u64 = reason::with_action(action::FORWARD);
const REPLIES: u64 = reason::with_action(action::REPLY);
const DROPS: u64 = reason::with_action(action::DROP);

/// Turns a verdict into an XDP action: its reason's, from the table.
#[inline(always)]
pub fn act(v: &Verdict, trace: bool) -> u32 {
    if FORWARDS >> v.reason & 1 != 0 {
        if trace {
            return xdp_action::XDP_REDIRECT;
        }
        // The egress slot always has a devmap entry (userspace fills both
        // together); should it not, the rewritten frame is dropped rather
        // than handed to the kernel altered.
        return match EGRESS.redirect(v.egress, xdp_action::XDP_DROP as u64) {
            Ok(a) | Err(a) => a,
        };
    }
    if REPLIES >> v.reason & 1 != 0 {
        return xdp_action::XDP_TX;
    }
    if DROPS >> v.reason & 1 != 0 {
        return xdp_action::XDP_DROP;
    }
    xdp_action::XDP_PASS
}

/// Adds the verdict to this CPU's counters. A member's counters share the
/// cache line its forwarding data was read from.
#[inline(always)]
pub fn count(slot: u32, v: &Verdict, t: &Tables) {
    if let Some(c) = IFACE_COUNTERS.get_ptr_mut(slot * reason::REASON_SLOTS + v.reason) {
        unsafe { *c += 1 };
    }
    if let Some(l) = line(t, v.from) {
        let c = unsafe { &mut (*l).counters };
        if v.reason == reason::DROP_SPOOFED {
            c.spoofed_packets += 1;
        } else {
            c.rx_packets += 1;
            c.rx_bytes += v.bytes as u64;
        }
    }
    if let Some(l) = line(t, v.to) {
        let c = unsafe { &mut (*l).counters };
        c.tx_packets += 1;
        c.tx_bytes += v.bytes as u64;
    }
}

/// The ingress ifindex the tracer asks for (the tracer's instance runs on
/// frames that arrived nowhere).
#[inline(always)]
pub fn traced_ingress() -> u32 {
    match TRACE_VERDICT.get(0) {
        Some(t) => t.ingress_ifindex,
        None => 0,
    }
}

/// Writes the verdict for the tracer.
#[inline(always)]
pub fn record(v: &Verdict) {
    if let Some(t) = TRACE_VERDICT.get_ptr_mut(0) {
        let t = unsafe { &mut *t };
        t.reason = v.reason;
        t.egress = v.egress;
        t.member = if v.to != NO_MEMBER { v.to } else { v.from };
        t.from = v.from;
        t.to = v.to;
    }
}
