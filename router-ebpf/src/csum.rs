//! Internet checksums (RFC 1071) of what the program builds: sums of frame
//! bytes with `bpf_csum_diff`, in chunks of fixed sizes that the verifier
//! can check against the frame's end, and RFC 1624 updates.
//!
//! Sums are kept in memory order: `bpf_csum_diff` adds the bytes as the
//! CPU loads them (little-endian), which gives the byte-swapped sum of
//! big-endian words; its complement, stored back with the CPU's byte
//! order ([`store`]), is the right checksum. Values that are not in the
//! frame (a pseudo-header's length and next header) enter the sum through
//! [`be32`], in that same order.
use aya_ebpf::{helpers::bpf_csum_diff, programs::XdpContext};

use crate::packet::header;

/// Longest run of bytes [`sum`] adds: an ICMPv6 error of 1280 bytes less
/// its IPv6 header, plus the pseudo-header's addresses.
pub const MAX_SUM: u32 = 1280;
const CHUNK: u32 = 64;

/// The memory-order value of the big-endian 32-bit `v`.
#[inline(always)]
pub fn be32(v: u32) -> u64 {
    u32::from_ne_bytes(v.to_be_bytes()) as u64
}

/// Folds a sum into 16 bits, carries added back.
#[inline(always)]
pub fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The checksum field's bytes for a sum taken with the field at zero.
#[inline(always)]
pub fn store(sum: u64) -> [u8; 2] {
    (!fold(sum)).to_ne_bytes()
}

/// A sum that includes its checksum field is right when it folds to all
/// ones.
#[inline(always)]
pub fn verifies(sum: u64) -> bool {
    fold(sum) == 0xffff
}

/// The sum of the `N` frame bytes at `off` (`N` a multiple of 4, at most
/// 512), added to `seed`.
#[inline(always)]
fn chunk<const N: usize>(ctx: &XdpContext, off: usize, seed: u32) -> Option<u32> {
    let p = header::<[u8; N]>(ctx, off)?;
    let s = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, p as *mut u32, N as u32, seed) };
    if s < 0 { None } else { Some(s as u32) }
}

/// The sum of the `len` frame bytes at `off` (at most [`MAX_SUM`]), as if
/// they started a checksummed run of bytes: a trailing odd byte counts as
/// the high byte of a word. None when the frame is shorter.
#[inline(always)]
pub fn sum(ctx: &XdpContext, off: usize, len: u32) -> Option<u64> {
    if len > MAX_SUM {
        return None;
    }
    let mut off = off;
    let mut left = len;
    let mut acc: u32 = 0;
    for _ in 0..MAX_SUM / CHUNK {
        if left < CHUNK {
            break;
        }
        acc = chunk::<64>(ctx, off, acc)?;
        off += CHUNK as usize;
        left -= CHUNK;
    }
    if left & 32 != 0 {
        acc = chunk::<32>(ctx, off, acc)?;
        off += 32;
    }
    if left & 16 != 0 {
        acc = chunk::<16>(ctx, off, acc)?;
        off += 16;
    }
    if left & 8 != 0 {
        acc = chunk::<8>(ctx, off, acc)?;
        off += 8;
    }
    if left & 4 != 0 {
        acc = chunk::<4>(ctx, off, acc)?;
        off += 4;
    }
    let mut total = acc as u64;
    let tail = left & 3;
    if tail != 0 {
        // One to three bytes: a word [b0, b1] (b1 zero if absent), then
        // [b2, 0].
        let byte = |at: usize| header::<u8>(ctx, at).map(|b| unsafe { *b });
        let b0 = byte(off)?;
        let b1 = if tail >= 2 { byte(off + 1)? } else { 0 };
        total += u16::from_ne_bytes([b0, b1]) as u64;
        if tail == 3 {
            total += u16::from_ne_bytes([byte(off + 2)?, 0]) as u64;
        }
    }
    Some(total)
}

/// The sum of the `N` frame bytes at `off` alone (`N` a multiple of 4, at
/// most 512).
#[inline(always)]
pub fn sum_fixed<const N: usize>(ctx: &XdpContext, off: usize) -> Option<u64> {
    chunk::<N>(ctx, off, 0).map(|s| s as u64)
}

/// RFC 1624 eq. 3: the checksum `check` (as stored) after a 16-bit word of
/// the summed data changes from `old` to `new` (big-endian values).
#[inline(always)]
pub fn update16(check: [u8; 2], old: u16, new: u16) -> [u8; 2] {
    let hc = u16::from_be_bytes(check) as u32;
    let mut sum = (!hc & 0xffff) + (!(old as u32) & 0xffff) + new as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (!(sum as u16)).to_be_bytes()
}
