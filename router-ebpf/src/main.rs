//! The collecte XDP program: forwards member traffic between uplinks and
//! access interfaces, answers for the gateway on members' lines, sends the
//! ICMP errors of forwarding, drops spoofed and malformed packets, and
//! passes everything else to the kernel unchanged.
//!
//! A packet goes through the modules in order: [`parse`] its headers
//! (through the one bounds-checked accessor, [`packet::header`]),
//! [`classify`] it by its ingress interface (with the [`source`] check
//! upstream, and [`learn`]ing CPE MACs), [`lookup`] its addresses and next
//! hop (the walk is [`trie`]'s), [`rewrite`] the frame for it, then count
//! and act on the [`verdict`]. What the router answers itself, off the
//! forwarding path ([`edge`]): [`arp`], and through [`icmp6`] [`ndp`]
//! (Neighbor Solicitations), [`ra`] (Router Solicitations) and [`echo`];
//! and the [`icmp_error`]s of forwarding, within the [`ratelimit`]; their
//! checksums are [`csum`]'s. The tracer's instance also records each step
//! it takes ([`explain`]).
//! PPPoE sessions are handled in two programs of their own, reached by
//! tail calls ([`pppoe`]): [`pppoe_up`] and [`pppoe_down`].
//! Every map is in [`maps`].
#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

mod arp;
mod classify;
mod csum;
mod echo;
mod edge;
mod explain;
mod icmp6;
mod icmp_error;
mod learn;
mod lookup;
mod maps;
mod ndp;
mod packet;
mod parse;
mod pppoe;
mod pppoe_down;
mod pppoe_up;
mod ra;
mod ratelimit;
mod rewrite;
mod source;
mod trie;
mod verdict;

// ---- Bench build (the `bench` crate; see bench.rs) ----
/// Set to 1 by the benchmark's instance of the program: before parsing, the
/// frame is restored from a template and its destination (or source)
/// address replaced by a random one ([`bench::randomise`]). The verifier
/// removes this from every other instance, where it stays 0.
#[unsafe(no_mangle)]
static BENCH: u8 = 0;
mod bench;
// ---- end of the bench build ----

#[xdp]
pub fn collecte(ctx: XdpContext) -> u32 {
    // Bench build only (BENCH = 0 elsewhere).
    if unsafe { core::ptr::read_volatile(&BENCH) } != 0 && !bench::randomise(&ctx) {
        return xdp_action::XDP_ABORTED;
    }
    let trace = verdict::tracing();
    let ifindex = if trace {
        verdict::traced_ingress()
    } else {
        unsafe { (*ctx.ctx).ingress_ifindex }
    };
    let slot = classify::iface_slot(ifindex);
    let Some(t) = lookup::Tables::read() else {
        return xdp_action::XDP_PASS;
    };
    let mut v = classify::classify(&ctx, slot, &t);
    if v.reason >= pppoe::TAIL_UP {
        // Only returns if the PPPoE program is missing.
        pppoe::tail(&ctx, slot, &mut v);
    }
    if trace {
        verdict::record(&v);
    } else {
        verdict::count(slot, &v, &t);
    }
    verdict::act(&v, trace)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
