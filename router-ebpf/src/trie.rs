//! The prefix table walk (see `router_common::route`), over any source of
//! entries: the datapath's `ROUTES`, or the benchmark's copy of it (the
//! benchmark includes this file).
use router_common::route;

/// Longest-prefix match of an IPv4 address; `entry(i)` reads entry `i` of
/// one half of the table.
#[inline(always)]
pub fn lookup4(entry: impl Fn(u32) -> u32, addr: u32) -> u32 {
    let mut v = entry(addr >> 16);
    let mut shift = 8u32;
    for _ in 0..route::MAX_V4_LEVELS {
        if v & route::PTR == 0 {
            return v;
        }
        let group = v & !route::PTR;
        v = entry(group * route::GROUP_ENTRIES + ((addr >> shift) & 0xff));
        shift = shift.wrapping_sub(8);
    }
    leaf_or_empty(v)
}

/// Longest-prefix match of an IPv6 address (two big-endian 64-bit halves).
#[inline(always)]
pub fn lookup6(entry: impl Fn(u32) -> u32, addr: &[u64; 2]) -> u32 {
    let root = route::ROOT6_GROUP * route::GROUP_ENTRIES + (addr[0] >> 48) as u32;
    let mut v = entry(root);
    let mut level = 0u32;
    while level < route::MAX_V6_LEVELS {
        if v & route::PTR == 0 {
            return v;
        }
        // Byte 2 + level of the address.
        let byte = 2 + level;
        let word = addr[(byte >> 3) as usize & 1];
        let b = (word >> (56 - 8 * (byte & 7))) as u32 & 0xff;
        let group = v & !route::PTR;
        v = entry(group * route::GROUP_ENTRIES + b);
        level += 1;
    }
    leaf_or_empty(v)
}

/// A pointer left after the deepest level means a broken table: no match.
#[inline(always)]
fn leaf_or_empty(v: u32) -> u32 {
    if v & route::PTR != 0 { route::EMPTY } else { v }
}
