//! The bench build of the datapath: what the program does first when its
//! rodata global `BENCH` is set (see `main.rs`). Production instances keep
//! `BENCH = 0` and the verifier removes all of this from them.
//!
//! `bench-ebpf` compiles this very file into its own programs (the randomiser
//! whose cost the benchmark subtracts, the LPM-trie anchor and the traffic
//! generator), so that what is subtracted is the same code.
//!
//! Before each run, [`randomise`] makes the frame equal to the template in
//! `BENCH_CONF` again — `BPF_PROG_TEST_RUN` neither restores the frame nor
//! (outside live-frames mode) its head between repetitions, and the
//! program rewrites MACs, TTL and checksum and pushes or pops tags — then
//! writes a random address of `BENCH_ADDRS` (one of `count` from entry
//! `first`; IPv6 addresses one to an entry, IPv4 ones four to an entry)
//! over the destination (or, for an upstream bench, the source) address.
use aya_ebpf::{
    helpers::{bpf_get_prandom_u32, bpf_xdp_adjust_head},
    macros::map,
    maps::Array,
    programs::XdpContext,
};

/// Length of every bench frame.
pub const FRAME_LEN: usize = 64;

/// The single value of `BENCH_CONF`; userspace writes it as 80 bytes:
/// `count`, `offset`, `addr_len` and `first` as native-endian `u32`, then
/// the 64-byte frame.
#[repr(C)]
pub struct BenchConf {
    /// Addresses to draw from (at least 1).
    pub count: u32,
    /// Byte offset of the address to overwrite in the frame.
    pub offset: u32,
    /// 4 (IPv4) or 16 (IPv6).
    pub addr_len: u32,
    /// First entry of `BENCH_ADDRS` to draw from.
    pub first: u32,
    /// The frame, restored before each run.
    pub frame: [u64; FRAME_LEN / 8],
}

#[map]
static BENCH_CONF: Array<BenchConf> = Array::with_max_entries(1, 0);
/// Addresses in network byte order: one IPv6 address, or four IPv4 ones,
/// per entry; sized by the loader.
#[map]
static BENCH_ADDRS: Array<[u32; 4]> = Array::with_max_entries(1, 0);

/// Restores the frame from the template and writes a random address into
/// it. False when the bench is not configured or the frame is unusable.
#[inline(always)]
pub fn randomise(ctx: &XdpContext) -> bool {
    let Some(conf) = BENCH_CONF.get(0) else {
        return false;
    };
    let len = ctx.data_end() - ctx.data();
    if len != FRAME_LEN
        && unsafe { bpf_xdp_adjust_head(ctx.ctx, len as i32 - FRAME_LEN as i32) } != 0
    {
        return false;
    }
    let start = ctx.data();
    if start + FRAME_LEN > ctx.data_end() {
        return false;
    }
    // Plain 8- and 4-byte stores: unaligned ones would be split into
    // bytes. (The x86 JIT and the verifier accept any alignment.)
    let words = start as *mut u64;
    for (i, w) in conf.frame.iter().enumerate() {
        unsafe { *words.add(i) = *w };
    }
    let count = conf.count;
    if count == 0 {
        return false;
    }
    let pick = unsafe { bpf_get_prandom_u32() } % count;
    // Masked, so that the verifier bounds the moved pointer; a pointer
    // moved by a variable offset needs its own check against the end.
    let offset = conf.offset as usize & (FRAME_LEN - 1);
    let p = (start + offset) as *mut u32;
    if conf.addr_len == 16 {
        let Some(addr) = BENCH_ADDRS.get(conf.first + pick) else {
            return false;
        };
        if p as usize + 16 > ctx.data_end() {
            return false;
        }
        for (i, a) in addr.iter().enumerate() {
            unsafe { *p.add(i) = *a };
        }
    } else {
        // IPv4 addresses are packed four to an entry: a quarter of the
        // cache footprint.
        let Some(addr) = BENCH_ADDRS.get(conf.first + pick / 4) else {
            return false;
        };
        if p as usize + 4 > ctx.data_end() {
            return false;
        }
        unsafe { *p = addr[(pick & 3) as usize] };
    }
    true
}
