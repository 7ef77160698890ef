//! What the tracer's instance of the program records of the steps it takes
//! (`collecte trace --explain`), in `TRACE_VERDICT`. Every function here
//! does nothing unless `TRACE` is set: in the datapath's instance the
//! verifier sees the constant and removes the calls, so the fast path pays
//! nothing for them. It records; it decides nothing.
use router_common::{TraceVerdict, step};

use crate::{maps::TRACE_VERDICT, parse::Packet, rewrite::NextHop};

/// Whether this is the tracer's instance of the program.
#[inline(always)]
pub fn tracing() -> bool {
    crate::verdict::tracing()
}

/// Applies `f` to the tracer's record, in the tracer's instance only.
#[inline(always)]
fn note(f: impl FnOnce(&mut TraceVerdict)) {
    if !tracing() {
        return;
    }
    if let Some(t) = TRACE_VERDICT.get_ptr_mut(0) {
        f(unsafe { &mut *t });
    }
}

/// A step that carries no value.
#[inline(always)]
pub fn step(bit: u32) {
    note(|t| t.steps |= bit);
}

/// The headers found.
#[inline(always)]
pub fn parsed(p: &Packet) {
    note(|t| {
        t.steps |= step::PARSED;
        t.len = p.len;
        t.s_vlan = p.s_vlan;
        t.c_vlan = p.c_vlan;
        t.tags = p.tags as u8;
        t.family = if p.v6 { 6 } else { 4 };
        t.ttl = p.ttl;
    });
}

/// The prefix table's answer for the destination.
#[inline(always)]
pub fn dst_lookup(leaf: u32) {
    note(|t| {
        t.steps |= step::DST_LOOKUP;
        t.dst_leaf = leaf;
    });
}

/// The prefix table's answer for the source.
#[inline(always)]
pub fn src_lookup(leaf: u32) {
    note(|t| {
        t.steps |= step::SRC_LOOKUP;
        t.src_leaf = leaf;
    });
}

/// The next hop found.
#[inline(always)]
pub fn hop(h: &NextHop) {
    note(|t| {
        t.steps |= step::HOP;
        t.hop_mtu = h.mtu;
        t.hop_tags = h.tags.count as u8;
        t.hop_first = if h.tags.count > 0 { h.tags.first } else { 0 };
        t.hop_second = if h.tags.count > 1 { h.tags.second } else { 0 };
        t.hop_dst_mac = h.dst_mac;
        t.hop_src_mac = h.src_mac;
    });
}
