//! Bench-only XDP programs: the anchors and helpers of `cargo xtask bench`.
//!
//! - `bench_floor`: only returns (the `BPF_PROG_TEST_RUN` floor).
//! - `bench_randomise`: the bench build's prologue alone (restore the frame,
//!   write a random address, return); its cost is subtracted.
//! - `bench_lpm4`, `bench_lpm6`: the same prologue, then a
//!   `BPF_MAP_TYPE_LPM_TRIE` lookup of the destination (the anchor).
//! - `bench_loop`: the forwarding bench's generator, an all-XDP loop:
//!   counts the frame it receives, makes it a new frame (the same prologue:
//!   a random member's address) and redirects it to `LOOP_EGRESS`, whose
//!   peer is the router's ingress; frames seeded once circulate until
//!   `LOOP_STOP` is set.
//! - `bench_fwd`: the minimal XDP forward: MAC rewrite, TTL and checksum,
//!   DEVMAP redirect, no lookup.
//! - `lookup4`, `lookup6`: the same prologue, then the datapath's prefix
//!   table walk (its own `trie.rs`, on a copy of its table in `P_ROUTES`) —
//!   collecte's lookup, measured exactly as the anchor is.
//! - `bench_array`: the same prologue, then one read of a plain 2^24-entry
//!   `u32` array (64 MiB) indexed by the destination's low 24 bits: what one
//!   random memory access costs on this machine (the first level of a
//!   DIR-24-8 table).
//! - `probe_*`: where the datapath's random-lookup time goes. Maps shaped
//!   and filled like the datapath's (`P_ROUTES` holds a copy of its prefix
//!   table, `P_LINES` of its member lines; `P_MEMBERS`, `P_FLAT` and
//!   `P_COUNTERS` are the layouts it used before: a member table of 16-byte
//!   entries, counters in a flat array and in a per-CPU array), read the way
//!   it reads them; the frame carries the destination and, after it, the
//!   member's slot.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_prandom_u32, bpf_get_smp_processor_id},
    macros::{map, xdp},
    maps::{Array, DevMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use router_common::{
    MemberCounters, MemberInfo, MemberLine, RouteChunk, member_flags, member_line_index, route,
};

/// The bench build's prologue, the very file the datapath compiles.
#[path = "../../router-ebpf/src/bench.rs"]
mod bench;
/// The datapath's headers and TTL update, the very files it compiles (the
/// anchors use part of them).
#[expect(
    dead_code,
    reason = "the anchors use part of the datapath's header file"
)]
#[path = "../../router-ebpf/src/packet.rs"]
mod packet;
/// The datapath's prefix table walk (all of it: IPv4 and IPv6).
#[path = "../../router-ebpf/src/trie.rs"]
mod trie;

/// Per-CPU counters: [`SEEN`], [`HITS`] and [`DRAINED`].
#[map]
static COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(3, 0);
/// Frames the loop generator saw come back.
const SEEN: u32 = 0;
/// LPM lookups that found a prefix.
const HITS: u32 = 1;
/// Frames the loop generator dropped because it was told to stop: the
/// frames still circulating then.
const DRAINED: u32 = 2;

/// The anchor's tables: the members' prefixes, valued by member slot.
#[map]
static LPM4: LpmTrie<u32, u32> = LpmTrie::with_max_entries(1, 0);
#[map]
static LPM6: LpmTrie<[u32; 4], u32> = LpmTrie::with_max_entries(1, 0);

/// The minimal forward's egress (entry 0) and MACs (destination, source).
#[map]
static FWD_EGRESS: DevMap = DevMap::with_max_entries(1, 0);
#[map]
static FWD_MACS: Array<[u8; 12]> = Array::with_max_entries(1, 0);

/// Offsets in an untagged frame.
const ETH_HLEN: usize = 14;
const IPV4_DST: usize = ETH_HLEN + 16;
const IPV6_DST: usize = ETH_HLEN + 24;

#[xdp]
pub fn bench_floor(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[xdp]
pub fn bench_randomise(ctx: XdpContext) -> u32 {
    if !bench::randomise(&ctx) {
        return xdp_action::XDP_ABORTED;
    }
    xdp_action::XDP_DROP
}

#[inline(always)]
fn hit() {
    if let Some(c) = COUNTS.get_ptr_mut(HITS) {
        unsafe { *c += 1 };
    }
}

/// Randomises the frame, then reads its IPv4 destination: one word load, in
/// network byte order, as the datapath reads it.
#[inline(always)]
fn random_dst4(ctx: &XdpContext) -> Option<u32> {
    if !bench::randomise(ctx) {
        return None;
    }
    let start = ctx.data();
    if start + IPV4_DST + 4 > ctx.data_end() {
        return None;
    }
    Some(unsafe { *((start + IPV4_DST) as *const u32) })
}

/// Randomises the frame, then reads its IPv6 destination as four words in
/// network byte order.
#[inline(always)]
fn random_dst6(ctx: &XdpContext) -> Option<[u32; 4]> {
    if !bench::randomise(ctx) {
        return None;
    }
    let start = ctx.data();
    if start + IPV6_DST + 16 > ctx.data_end() {
        return None;
    }
    let p = (start + IPV6_DST) as *const u32;
    Some(unsafe { [*p, *p.add(1), *p.add(2), *p.add(3)] })
}

#[xdp]
pub fn bench_lpm4(ctx: XdpContext) -> u32 {
    match random_dst4(&ctx) {
        Some(addr) => verdict(LPM4.get(Key::new(32, addr)).is_some()),
        None => xdp_action::XDP_ABORTED,
    }
}

#[xdp]
pub fn bench_lpm6(ctx: XdpContext) -> u32 {
    match random_dst6(&ctx) {
        Some(addr) => verdict(LPM6.get(Key::new(128, addr)).is_some()),
        None => xdp_action::XDP_ABORTED,
    }
}

/// Whether a prefix-table leaf is a member's.
#[inline(always)]
fn is_member(leaf: u32) -> bool {
    leaf != route::EMPTY && leaf != route::LOCAL
}

/// The datapath's prefix table walk, on the copy in `P_ROUTES`: collecte's
/// counterpart of `bench_lpm4`.
#[xdp]
pub fn lookup4(ctx: XdpContext) -> u32 {
    match random_dst4(&ctx) {
        Some(addr) => verdict(is_member(trie::lookup4(probe_entry, u32::from_be(addr)))),
        None => xdp_action::XDP_ABORTED,
    }
}

/// The same for IPv6: collecte's counterpart of `bench_lpm6`.
#[xdp]
pub fn lookup6(ctx: XdpContext) -> u32 {
    let Some(w) = random_dst6(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    let half = |hi: u32, lo: u32| (u32::from_be(hi) as u64) << 32 | u32::from_be(lo) as u64;
    let addr = [half(w[0], w[1]), half(w[2], w[3])];
    verdict(is_member(trie::lookup6(probe_entry, &addr)))
}

/// A plain array of 2^24 `u32`, as 64-byte chunks (array map values are
/// padded to 8 bytes; chunks keep it at 64 MiB).
#[map]
static A_FLAT24: Array<RouteChunk> = Array::with_max_entries(1 << 20, 0);

/// One read of `A_FLAT24` at the destination's low 24 bits.
#[xdp]
pub fn bench_array(ctx: XdpContext) -> u32 {
    let Some(addr) = random_dst4(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    let index = u32::from_be(addr) & 0x00ff_ffff;
    let found = match A_FLAT24.get(index / route::CHUNK) {
        Some(chunk) => unsafe {
            core::ptr::read_volatile(&chunk.0[(index % route::CHUNK) as usize]) == 0
        },
        None => false,
    };
    verdict(found)
}

/// Offset of the IPv4 header checksum in an untagged frame.
const IPV4_CHECK: usize = ETH_HLEN + 10;

/// The loop's egress (entry 0): the generator's veth, whose peer is the
/// router's ingress.
#[map]
static LOOP_EGRESS: DevMap = DevMap::with_max_entries(1, 0);
/// Entry 0 non-zero: the loop drains (frames are counted and dropped).
#[map]
static LOOP_STOP: Array<u32> = Array::with_max_entries(1, 0);

/// Makes the frame a new generated one: the template with a random
/// member's IPv4 destination and its header checksum (untagged IPv4 frames
/// only).
#[inline(always)]
fn generate(ctx: &XdpContext) -> bool {
    if !bench::randomise(ctx) {
        return false;
    }
    // The kernel checks the header checksum: the template's was computed
    // with a zero destination, so add the destination's two words to it.
    let start = ctx.data();
    if start + IPV4_DST + 4 > ctx.data_end() {
        return false;
    }
    let check = (start + IPV4_CHECK) as *mut [u8; 2];
    let dst = (start + IPV4_DST) as *const [u8; 4];
    let (check, dst) = unsafe { (&mut *check, *dst) };
    let hc = u16::from_be_bytes(*check) as u32;
    let mut sum = (!hc & 0xffff)
        + u16::from_be_bytes([dst[0], dst[1]]) as u32
        + u16::from_be_bytes([dst[2], dst[3]]) as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    *check = (!(sum as u16)).to_be_bytes();
    true
}

#[xdp]
pub fn bench_loop(ctx: XdpContext) -> u32 {
    if let Some(c) = COUNTS.get_ptr_mut(SEEN) {
        unsafe { *c += 1 };
    }
    if LOOP_STOP.get(0).is_none_or(|s| *s != 0) {
        if let Some(c) = COUNTS.get_ptr_mut(DRAINED) {
            unsafe { *c += 1 };
        }
        return xdp_action::XDP_DROP;
    }
    if !generate(&ctx) {
        return xdp_action::XDP_ABORTED;
    }
    match LOOP_EGRESS.redirect(0, xdp_action::XDP_DROP as u64) {
        Ok(a) | Err(a) => a,
    }
}

#[xdp]
pub fn bench_fwd(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + ETH_HLEN + core::mem::size_of::<packet::Ipv4Hdr>() > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let eth = start as *mut [u8; ETH_HLEN];
    let eth = unsafe { &mut *eth };
    if eth[12..14] != [0x08, 0x00] {
        return xdp_action::XDP_PASS;
    }
    let ip = unsafe { &mut *((start + ETH_HLEN) as *mut packet::Ipv4Hdr) };
    if ip.ttl <= 1 {
        return xdp_action::XDP_PASS;
    }
    let Some(macs) = FWD_MACS.get(0) else {
        return xdp_action::XDP_PASS;
    };
    eth[..12].copy_from_slice(macs);
    // RFC 1624 incremental update: the datapath's own function.
    packet::decrement_ttl(ip);
    match FWD_EGRESS.redirect(0, xdp_action::XDP_DROP as u64) {
        Ok(a) | Err(a) => a,
    }
}

// ---- Probes: the datapath's lookup, piece by piece ----

/// One half of the datapath's prefix table (`ROUTES`), copied.
#[map]
static P_ROUTES: Array<RouteChunk> = Array::with_max_entries(1, 0);
/// The datapath's member table (`MEMBERS`), copied.
#[map]
static P_MEMBERS: Array<MemberInfo> = Array::with_max_entries(1, 0);
/// Per-CPU counters, the layout `MEMBER_COUNTERS` had before it was flat.
#[map]
static P_COUNTERS: PerCpuArray<MemberCounters> = PerCpuArray::with_max_entries(1, 0);
/// The same counters in one flat array, indexed by CPU × members + slot.
#[map]
static P_FLAT: Array<MemberCounters> = Array::with_max_entries(1, 0);
/// The datapath's member lines (`MEMBER_LINES`), copied: memory-mapped
/// like it, so that each line is a cache line.
#[map]
static P_LINES: Array<MemberLine> = Array::with_max_entries(1, BPF_F_MMAPABLE);
const BPF_F_MMAPABLE: u32 = 1 << 10;
/// `[members per CPU in P_FLAT, 0, 0, 0]`.
#[map]
static P_CONF: Array<[u32; 4]> = Array::with_max_entries(1, 0);

/// The member's slot, written by the randomiser after the destination.
const PROBE_SLOT: usize = IPV4_DST + 4;

/// The destination and slot of a probe frame.
#[inline(always)]
fn probe_input(ctx: &XdpContext) -> Option<(u32, u32)> {
    if !bench::randomise(ctx) {
        return None;
    }
    let start = ctx.data();
    if start + PROBE_SLOT + 4 > ctx.data_end() {
        return None;
    }
    let addr = unsafe { *((start + IPV4_DST) as *const u32) };
    let slot = unsafe { *((start + PROBE_SLOT) as *const u32) };
    Some((u32::from_be(addr), slot))
}

/// The datapath's `entry` and `lookup4` (router-ebpf/src/lookup.rs), on
/// `P_ROUTES`.
#[inline(always)]
fn probe_entry(index: u32) -> u32 {
    match P_ROUTES.get(index / route::CHUNK) {
        Some(chunk) => chunk.0[(index % route::CHUNK) as usize],
        None => route::EMPTY,
    }
}

#[inline(always)]
fn probe_lookup4(addr: u32) -> u32 {
    trie::lookup4(probe_entry, addr)
}

#[inline(always)]
fn probe_member(slot: u32) -> bool {
    match P_MEMBERS.get(slot) {
        Some(m) => m.flags & member_flags::PRESENT != 0,
        None => false,
    }
}

#[inline(always)]
fn probe_count(slot: u32) -> bool {
    match P_COUNTERS.get_ptr_mut(slot) {
        Some(c) => {
            unsafe {
                (*c).tx_packets += 1;
                (*c).tx_bytes += 50;
            }
            true
        }
        None => false,
    }
}

#[inline(always)]
fn verdict(found: bool) -> u32 {
    if found {
        hit();
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

/// The prefix table alone.
#[xdp]
pub fn probe_trie(ctx: XdpContext) -> u32 {
    let Some((addr, slot)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    verdict(probe_lookup4(addr) == slot + 1)
}

/// The member table alone.
#[xdp]
pub fn probe_members(ctx: XdpContext) -> u32 {
    let Some((_, slot)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    verdict(probe_member(slot))
}

/// Member counters in a per-CPU array alone (the previous layout).
#[xdp]
pub fn probe_counters(ctx: XdpContext) -> u32 {
    let Some((_, slot)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    verdict(probe_count(slot))
}

/// The counters in a flat array, as the datapath keeps them.
#[xdp]
pub fn probe_flat(ctx: XdpContext) -> u32 {
    let Some((_, slot)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    let found = match probe_flat_ptr(slot) {
        Some(c) => {
            unsafe {
                (*c).tx_packets += 1;
                (*c).tx_bytes += 50;
            }
            true
        }
        None => false,
    };
    verdict(found)
}

/// This CPU's entry of `P_FLAT` for `slot`.
#[inline(always)]
fn probe_flat_ptr(slot: u32) -> Option<*mut MemberCounters> {
    let conf = P_CONF.get(0)?;
    let cpu = unsafe { bpf_get_smp_processor_id() };
    P_FLAT.get_ptr_mut(cpu * conf[0] + slot)
}

/// This CPU's line of `slot` in `P_LINES`, as the datapath finds it: the
/// member's data (half 0, the half in force after a full apply) and
/// counters.
#[inline(always)]
fn probe_line_ptr(slot: u32) -> Option<*mut MemberLine> {
    let conf = P_CONF.get(0)?;
    if slot >= conf[0] {
        return None;
    }
    let cpu = unsafe { bpf_get_smp_processor_id() };
    P_LINES.get_ptr_mut(member_line_index(cpu, conf[0], slot))
}

/// Reads the member's data in its line and counts a packet there, as the
/// datapath does for a downstream packet.
#[inline(always)]
fn probe_line_count(slot: u32) -> bool {
    let Some(l) = probe_line_ptr(slot) else {
        return false;
    };
    let l = unsafe { &mut *l };
    if l.fwd[0].flags as u16 & member_flags::PRESENT == 0 {
        return false;
    }
    l.counters.tx_packets += 1;
    l.counters.tx_bytes += 50;
    true
}

/// The member line alone: forwarding data and counters in one access.
#[xdp]
pub fn probe_line(ctx: XdpContext) -> u32 {
    let Some((_, slot)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    verdict(probe_line_count(slot))
}

/// The datapath's chain: prefix table → member line.
#[xdp]
pub fn probe_chain_line(ctx: XdpContext) -> u32 {
    let Some((addr, _)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    let leaf = probe_lookup4(addr);
    if leaf == route::EMPTY || leaf == route::LOCAL {
        return xdp_action::XDP_PASS;
    }
    verdict(probe_line_count(leaf - 1))
}

/// The previous chain: prefix table → member → counters (flat).
#[xdp]
pub fn probe_chain(ctx: XdpContext) -> u32 {
    let Some((addr, _)) = probe_input(&ctx) else {
        return xdp_action::XDP_ABORTED;
    };
    let leaf = probe_lookup4(addr);
    if leaf == route::EMPTY || leaf == route::LOCAL {
        return xdp_action::XDP_PASS;
    }
    let slot = leaf - 1;
    if !probe_member(slot) {
        return xdp_action::XDP_PASS;
    }
    let Some(c) = probe_flat_ptr(slot) else {
        return xdp_action::XDP_PASS;
    };
    unsafe {
        (*c).tx_packets += 1;
        (*c).tx_bytes += 50;
    }
    verdict(true)
}

/// Lines chased by `probe_chase`: 2^20 lines of 64 bytes (64 MiB).
const CHASE_LINES: u32 = 1 << 20;
/// Dependent reads per run of `probe_chase`.
const CHASE_HOPS: u32 = 8;

/// A random cycle through `CHASE_LINES` lines: entry 0 of each line is the
/// next line's index. Memory-mapped, like `MEMBER_LINES`.
#[map]
static P_CHASE: Array<RouteChunk> = Array::with_max_entries(CHASE_LINES, BPF_F_MMAPABLE);

/// `CHASE_HOPS` dependent reads of `P_CHASE` from a random line: each
/// read's address comes from the previous one, so that none overlaps
/// another, as the datapath's trie leaf and member line cannot. The other
/// probes, short loops whose runs are independent, let the processor
/// overlap one run's misses with the next run's.
#[xdp]
pub fn probe_chase(_ctx: XdpContext) -> u32 {
    let mut i = unsafe { bpf_get_prandom_u32() } & (CHASE_LINES - 1);
    for _ in 0..CHASE_HOPS {
        i = match P_CHASE.get(i) {
            Some(c) => c.0[0] & (CHASE_LINES - 1),
            None => return xdp_action::XDP_PASS,
        };
    }
    verdict(i < CHASE_LINES)
}

// ---- end of the probes ----

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
