//! Reading the table: a prefix's own leaf, the overlap search that checks
//! a member against the others, and lookups walked exactly as the datapath
//! walks them.
use std::net::IpAddr;

use ipnet::IpNet;
use router_common::route;

use super::RouteTable;
use super::key::{GE, Key, code, end_bits, group_of, is_ptr, mask};

impl RouteTable {
    /// The leaf of exactly `prefix` (host bits are cleared), if it is in the
    /// table.
    pub fn get(&self, prefix: IpNet) -> Option<u32> {
        self.get_key(&Key::of(prefix))
    }

    pub(super) fn get_key(&self, k: &Key) -> Option<u32> {
        if !k.aligned() {
            return self.unaligned.get(&k.side_key(k.len)).copied();
        }
        let mut i = k.root_index();
        for l in 1..=k.level() {
            let e = self.entries[i];
            if !is_ptr(e) {
                return None;
            }
            i = group_of(e) * GE + k.byte(l);
        }
        if self.depth[i] != code(k.len) {
            return None;
        }
        let e = self.entries[i];
        Some(if is_ptr(e) {
            self.background[group_of(e) - route::FIRST_GROUP as usize]
        } else {
            e
        })
    }

    /// A leaf `wanted` of some prefix that overlaps `prefix` (host bits are
    /// cleared): one covering it, equal to it or inside it. It is found even
    /// where longer prefixes hide it from `prefix`'s range, as far as the
    /// table holds a valid set (prefixes of different leaves `wanted` never
    /// overlap): the shorter covering ones are the backgrounds of the
    /// pointers on `prefix`'s path, and host routes (the router's own
    /// addresses) can only hide unaligned prefixes, which the side map holds.
    pub fn find_overlapping(&self, prefix: IpNet, wanted: impl Fn(u32) -> bool) -> Option<u32> {
        let k = Key::of(prefix);
        let level = k.level();
        let mut i = k.root_index();
        for l in 1..=level {
            let e = self.entries[i];
            if !is_ptr(e) {
                // This leaf covers the whole prefix, and nothing longer
                // lies below it.
                return wanted(e).then_some(e);
            }
            let g = group_of(e);
            let bg = self.background[g - route::FIRST_GROUP as usize];
            if wanted(bg) {
                return Some(bg);
            }
            i = g * GE + k.byte(l);
        }
        let step = |level: u32| 1u128 << (128 - end_bits(level));
        let first = mask(k.addr, k.len);
        self.find_in(k.v6, i, k.span(), level, first, step(level), &wanted)
    }

    /// [`RouteTable::find_overlapping`] in entries `first..first + n` at
    /// `level`, the first of which resolves address `addr`, the next ones
    /// `step` further each.
    #[expect(
        clippy::too_many_arguments,
        reason = "one recursive step of the overlap search: the family, the range, its level, the address and the stride"
    )]
    fn find_in(
        &self,
        v6: bool,
        first: usize,
        n: usize,
        level: u32,
        addr: u128,
        step: u128,
        wanted: &impl Fn(u32) -> bool,
    ) -> Option<u32> {
        for (j, i) in (first..first + n).enumerate() {
            let e = self.entries[i];
            let at = addr + step * j as u128;
            if is_ptr(e) {
                let g = group_of(e);
                let bg = self.background[g - route::FIRST_GROUP as usize];
                if wanted(bg) {
                    return Some(bg);
                }
                let below = 1u128 << (128 - end_bits(level + 1));
                if let Some(v) = self.find_in(v6, g * GE, GE, level + 1, at, below, wanted) {
                    return Some(v);
                }
            } else if wanted(e) {
                return Some(e);
            } else if self.depth[i] != 0 {
                // A prefix not wanted here (a host route, say) may hide
                // unaligned prefixes that cover the same address.
                let floor = if level == 0 {
                    0
                } else {
                    end_bits(level - 1) as u8 + 1
                };
                let hiding = self.depth[i] - 1;
                for len in floor..hiding {
                    if self.unaligned_count[usize::from(v6)][usize::from(len)] == 0 {
                        continue;
                    }
                    if let Some(&v) = self.unaligned.get(&(v6, len, mask(at, len)))
                        && wanted(v)
                    {
                        return Some(v);
                    }
                }
            }
        }
        None
    }

    /// Walks the table exactly as the datapath does and returns the leaf (or
    /// EMPTY).
    pub fn lookup(&self, addr: IpAddr) -> u32 {
        let entry = |i: u32| {
            self.entries
                .get(i as usize)
                .copied()
                .unwrap_or(route::EMPTY)
        };
        let leaf_or_empty = |v: u32| if is_ptr(v) { route::EMPTY } else { v };
        match addr {
            IpAddr::V4(a) => {
                let addr = u32::from(a);
                let mut v = entry(route::ROOT4_GROUP * route::GROUP_ENTRIES + (addr >> 16));
                let mut shift = 8u32;
                for _ in 0..route::MAX_V4_LEVELS {
                    if !is_ptr(v) {
                        return v;
                    }
                    let group = v & !route::PTR;
                    v = entry(group * route::GROUP_ENTRIES + ((addr >> shift) & 0xff));
                    shift = shift.wrapping_sub(8);
                }
                leaf_or_empty(v)
            }
            IpAddr::V6(a) => {
                let bytes = a.octets();
                let top = u32::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                let mut v = entry(route::ROOT6_GROUP * route::GROUP_ENTRIES + top);
                for level in 0..route::MAX_V6_LEVELS {
                    if !is_ptr(v) {
                        return v;
                    }
                    let b = u32::from(bytes[2 + level as usize]);
                    let group = v & !route::PTR;
                    v = entry(group * route::GROUP_ENTRIES + b);
                }
                leaf_or_empty(v)
            }
        }
    }
}
