//! The rate of the echo replies and ICMP errors the program sends, per CPU:
//! the generic cell rate algorithm (one `u64`, the theoretical arrival
//! time of the next message) with `[edge] icmp_rate` messages per second
//! and bursts of `icmp_burst`.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use router_common::Globals;

use crate::maps::ICMP_RATE;

const NANOS: u64 = 1_000_000_000;

/// Whether the program sends echo replies and ICMP errors at all
/// (`icmp_rate` 0: the packets go to the kernel as before).
#[inline(always)]
pub fn enabled(g: &Globals) -> bool {
    g.icmp_rate != 0
}

/// Whether one more message may go now; if so, it is accounted for. The
/// tracer's instance always may, and accounts nothing.
#[inline(always)]
pub fn allow(g: &Globals) -> bool {
    if g.icmp_rate == 0 {
        return false;
    }
    if crate::verdict::tracing() {
        return true;
    }
    let Some(tat) = ICMP_RATE.get_ptr_mut(0) else {
        return false;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    let interval = NANOS / g.icmp_rate as u64;
    let burst = if g.icmp_burst == 0 { 1 } else { g.icmp_burst } as u64;
    // Up to `burst` messages may be ahead of the steady rate.
    let tolerance = interval * (burst - 1);
    let next = unsafe { *tat }.max(now);
    if next - now > tolerance {
        return false;
    }
    unsafe { *tat = next + interval };
    true
}
