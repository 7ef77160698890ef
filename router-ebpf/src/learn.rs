//! CPE MAC learning: a member without a configured MAC (`LEARN`) has the
//! source MAC of its frames that pass the source check reported to the
//! daemon (`LEARN_EVENTS`), which makes it the member's MAC in the tables:
//! downstream then goes to it. A MAC is reported once (`LEARNED` holds the
//! last one reported), and again when another one shows up (a new CPE).
//! Members with a configured MAC pay one test of a flag they have already
//! loaded.
use aya_ebpf::programs::XdpContext;
use router_common::{LearnEvent, LearnedMac, MemberFwd, edge::LEARNED_VALID, member_flags};

use crate::{
    edge::source_mac,
    maps::{LEARN_EVENTS, LEARNED},
};

/// Notes that member `slot`'s frame, which passed the source check, came
/// from its CPE.
#[inline(always)]
pub fn note(ctx: &XdpContext, slot: u32, m: &MemberFwd) {
    if m.flags as u16 & member_flags::LEARN != 0
        && let Some(src) = source_mac(ctx)
    {
        report(slot, m, src);
    }
}

/// Reports source MAC `src` for member `slot` unless it is the one in
/// force or the one last reported. Never in the tracer's instance. (A BPF
/// subprogram that touches no packet: the frame's MAC comes as a value.)
#[inline(never)]
fn report(slot: u32, m: &MemberFwd, src: [u8; 6]) {
    if m.flags as u16 & member_flags::HAS_MAC != 0 && m.mac == src {
        return;
    }
    if crate::verdict::tracing() {
        return;
    }
    let Some(l) = LEARNED.get_ptr_mut(slot) else {
        return;
    };
    if unsafe { (*l).get() } == Some(src) {
        return;
    }
    let event = LearnEvent {
        slot,
        mac: src,
        _pad: 0,
    };
    // `LEARNED` only once the report is in the ring: a full ring loses
    // nothing, the next frame reports again.
    if LEARN_EVENTS.output::<LearnEvent>(&event, 0).is_ok() {
        unsafe {
            *l = LearnedMac {
                mac: src,
                flags: LEARNED_VALID,
            }
        };
    }
}
