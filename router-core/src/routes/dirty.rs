//! What changed since the caller last looked: every entry written, with
//! its value then, and the groups allocated since, reported whole.
use router_common::route;

use super::RouteTable;
use super::key::GE;

impl RouteTable {
    /// Indices (within one half) whose value changed since the last call, and
    /// every entry of the groups allocated since then (even where unchanged),
    /// with their new values, sorted by index, each once.
    pub fn take_dirty(&mut self) -> Vec<(u32, u32)> {
        let touched = std::mem::take(&mut self.dirty);
        let mut changed = Vec::with_capacity(touched.len());
        for (i, before) in touched {
            let i = i as usize;
            self.dirty_bits[i / 64] &= !(1 << (i % 64));
            // Entries of new groups are reported with their group.
            if !self.in_fresh(i) && self.entries[i] != before {
                changed.push((i as u32, self.entries[i]));
            }
        }
        // Indices are unique: sorting by them alone is enough.
        changed.sort_unstable_by_key(|&(i, _)| i);
        let mut groups = std::mem::take(&mut self.fresh_list);
        groups.sort_unstable();
        let mut out = Vec::with_capacity(changed.len() + groups.len() * GE);
        let mut changed = changed.into_iter().peekable();
        for g in groups {
            self.fresh[(g - route::FIRST_GROUP) as usize] = false;
            let base = g as usize * GE;
            while let Some(c) = changed.next_if(|&(i, _)| (i as usize) < base) {
                out.push(c);
            }
            out.extend((base..base + GE).map(|i| (i as u32, self.entries[i])));
        }
        out.extend(changed);
        out
    }

    /// Whether entry `i` is in a group allocated since the last
    /// `take_dirty` (reported whole).
    pub(super) fn in_fresh(&self, i: usize) -> bool {
        let g = i / GE;
        g >= route::FIRST_GROUP as usize && self.fresh[g - route::FIRST_GROUP as usize]
    }

    /// Writes entry `i`, remembering its previous value for `take_dirty`.
    pub(super) fn set(&mut self, i: usize, v: u32) {
        if self.entries[i] != v {
            if !self.in_fresh(i) {
                self.touch(i);
            }
            self.entries[i] = v;
        }
    }

    /// Lists entry `i` for `take_dirty` with its current value, unless it is
    /// listed already.
    pub(super) fn touch(&mut self, i: usize) {
        let bit = 1u64 << (i % 64);
        if self.dirty_bits[i / 64] & bit == 0 {
            self.dirty_bits[i / 64] |= bit;
            self.dirty.push((i as u32, self.entries[i]));
        }
    }
}
