//! Inserting and removing prefixes: prefix expansion over the entries a
//! prefix covers, the shadow state (depths and backgrounds) that says what
//! each entry would hold without it, and the groups allocated on a path or
//! freed once they become uniform.
use std::cmp::Reverse;

use hashbrown::HashSet;
use ipnet::IpNet;
use router_common::route;

use super::key::{GE, Key, code, end_bits, group_of, is_ptr, mask};
use super::{RouteError, RouteTable};

impl RouteTable {
    /// Adds `prefix` (host bits are cleared) with leaf value `leaf`, or
    /// replaces the leaf of the equal prefix already there. All-or-nothing:
    /// on error nothing changes.
    pub fn insert(&mut self, prefix: IpNet, leaf: u32) -> Result<(), RouteError> {
        let k = Key::of(prefix);
        let prefix = k.net();
        if leaf == route::EMPTY || is_ptr(leaf) {
            return Err(RouteError::BadLeaf { prefix, leaf });
        }
        let level = k.level();

        // Count the groups the path lacks before touching anything.
        let needed = level - self.levels_present(&k);
        let free = self.groups_free();
        if needed > free {
            return Err(RouteError::GroupsExhausted {
                prefix,
                needed,
                free,
            });
        }
        let existed = self.get_key(&k).is_some();

        let mut i = k.root_index();
        for l in 1..=level {
            let e = self.entries[i];
            let g = if is_ptr(e) {
                group_of(e)
            } else {
                let g = self.alloc(e, self.depth[i]);
                self.set(i, route::PTR | g as u32);
                g
            };
            i = g * GE + k.byte(l);
        }
        let c = code(k.len);
        self.rewrite(i, k.span(), level, 0, c, leaf, c);

        if !k.aligned() {
            self.unaligned.insert(k.side_key(k.len), leaf);
        }
        if !existed {
            if !k.aligned() {
                self.unaligned_count[usize::from(k.v6)][usize::from(k.len)] += 1;
            }
            self.len += 1;
        }
        Ok(())
    }

    /// How many groups inserting every one of `prefixes` could allocate at
    /// most: the distinct groups missing on their paths now. Removals in
    /// between only free groups, so a batch of removals and of insertions of
    /// these prefixes, in any order, never fails for want of groups when
    /// this is at most [`RouteTable::groups_free`]. (A group freed by a
    /// removal and needed again is paid for by the removal.)
    pub fn groups_needed(&self, prefixes: impl IntoIterator<Item = IpNet>) -> u64 {
        let mut missing: HashSet<(bool, u32, u128)> = HashSet::new();
        for prefix in prefixes {
            let k = Key::of(prefix);
            let have = self.levels_present(&k);
            // The group at level `l` hangs off the entry that the first
            // `end_bits(l - 1)` bits select. Deepest first: once one is
            // counted, those above it on the path are too.
            for l in (have + 1..=k.level()).rev() {
                if !missing.insert((k.v6, l, mask(k.addr, end_bits(l - 1) as u8))) {
                    break;
                }
            }
        }
        missing.len() as u64
    }

    /// How many groups of `k`'s path below the root exist.
    fn levels_present(&self, k: &Key) -> u32 {
        let level = k.level();
        let mut i = k.root_index();
        let mut have = 0;
        while have < level && is_ptr(self.entries[i]) {
            have += 1;
            i = group_of(self.entries[i]) * GE + k.byte(have);
        }
        have
    }

    /// Removes `prefix` (host bits are cleared): the entries it covered fall
    /// back to the next shorter covering prefix (or EMPTY), and groups that
    /// become uniform are collapsed into their parent entry and freed.
    pub fn remove(&mut self, prefix: IpNet) -> Result<(), RouteError> {
        let prefix = prefix.trunc();
        let k = Key::of(prefix);
        if self.get_key(&k).is_none() {
            return Err(RouteError::NotFound { prefix });
        }
        let level = k.level();
        if !k.aligned() {
            self.unaligned.remove(&k.side_key(k.len));
            self.unaligned_count[usize::from(k.v6)][usize::from(k.len)] -= 1;
        }
        self.len -= 1;

        // The pointer entries on the path, by level.
        let mut path = [0usize; route::MAX_V6_LEVELS as usize];
        let mut i = k.root_index();
        for l in 1..=level {
            let e = self.entries[i];
            // The prefix exists, so its path does: a group holding part of a
            // longer prefix (or a pointer) never collapses.
            debug_assert!(is_ptr(e), "broken path to {prefix}");
            if !is_ptr(e) {
                return Ok(());
            }
            path[l as usize - 1] = i;
            i = group_of(e) * GE + k.byte(l);
        }

        let (v, c) = self.covering(&k, &path);
        let old = code(k.len);
        self.rewrite(i, k.span(), level, old, old, v, c);
        for l in (0..level).rev() {
            if !self.try_collapse(path[l as usize], l) {
                break;
            }
        }
        Ok(())
    }

    /// Value and depth code of the longest prefix shorter than `k` covering
    /// it. `path[l]` is the pointer entry at level `l` on `k`'s path, for each
    /// level above `k`'s.
    fn covering(&self, k: &Key, path: &[usize]) -> (u32, u8) {
        let level = k.level();
        // Shorter prefixes that still live at `k`'s level do not end a level:
        // they are in the side map. The longest of the even shorter ones is
        // the background of the last pointer on the path.
        let floor = if level == 0 {
            0
        } else {
            end_bits(level - 1) as u8 + 1
        };
        for len in (floor..k.len).rev() {
            if self.unaligned_count[usize::from(k.v6)][usize::from(len)] == 0 {
                continue;
            }
            if let Some(&v) = self.unaligned.get(&k.side_key(len)) {
                return (v, code(len));
            }
        }
        if level == 0 {
            return (route::EMPTY, 0);
        }
        let p = path[level as usize - 1];
        let g = group_of(self.entries[p]);
        (
            self.background[g - route::FIRST_GROUP as usize],
            self.depth[p],
        )
    }

    /// Gives the entries `first..first + span` at `level` (and everything
    /// below them) whose depth code is within `lo..=hi` the value `v` and code
    /// `c`, collapsing the groups below that become uniform.
    #[expect(
        clippy::too_many_arguments,
        reason = "one recursive step of the trie walk: the range, its level, the depth window and the new value and code"
    )]
    fn rewrite(&mut self, first: usize, span: usize, level: u32, lo: u8, hi: u8, v: u32, c: u8) {
        for i in first..first + span {
            let e = self.entries[i];
            let hit = (lo..=hi).contains(&self.depth[i]);
            if is_ptr(e) {
                let g = group_of(e);
                if hit {
                    self.depth[i] = c;
                    self.background[g - route::FIRST_GROUP as usize] = v;
                }
                self.rewrite(g * GE, GE, level + 1, lo, hi, v, c);
                self.try_collapse(i, level);
            } else if hit {
                self.set(i, v);
                self.depth[i] = c;
            }
        }
    }

    /// If entry `i` (at `level`) points to a group whose entries are all the
    /// same leaf of one prefix no longer than `level`'s bits, puts that leaf
    /// back into `i` and frees the group.
    fn try_collapse(&mut self, i: usize, level: u32) -> bool {
        let e = self.entries[i];
        if !is_ptr(e) {
            return false;
        }
        let g = group_of(e);
        let base = g * GE;
        let (v, d) = (self.entries[base], self.depth[base]);
        if is_ptr(v) || u32::from(d) > end_bits(level) + 1 {
            return false;
        }
        let uniform = self.entries[base..base + GE].iter().all(|&x| x == v)
            && self.depth[base..base + GE].iter().all(|&x| x == d);
        if !uniform {
            return false;
        }
        // One prefix covers the whole group, and nothing longer: it is the
        // pointer's background.
        debug_assert_eq!(self.depth[i], d);
        debug_assert_eq!(self.background[g - route::FIRST_GROUP as usize], v);
        self.set(i, v);
        self.depth[i] = d;
        self.release(g);
        true
    }

    /// Allocates a group filled with leaf `v` of depth code `d`.
    fn alloc(&mut self, v: u32, d: u8) -> usize {
        let g = match self.free.pop() {
            Some(Reverse(g)) => g as usize,
            None => {
                let g = self.entries.len() / GE;
                self.entries.resize(self.entries.len() + GE, route::EMPTY);
                self.depth.resize(self.depth.len() + GE, 0);
                self.dirty_bits.resize(self.dirty_bits.len() + GE / 64, 0);
                self.background.push(route::EMPTY);
                self.fresh.push(false);
                g
            }
        };
        debug_assert!(g < route::FIRST_GROUP as usize + self.groups as usize);
        self.used += 1;
        self.background[g - route::FIRST_GROUP as usize] = v;
        // A new group is reported whole, even where its value is unchanged.
        if !self.fresh[g - route::FIRST_GROUP as usize] {
            self.fresh[g - route::FIRST_GROUP as usize] = true;
            self.fresh_list.push(g as u32);
        }
        // Reported whole at the next `take_dirty`: no entry is tracked.
        self.entries[g * GE..(g + 1) * GE].fill(v);
        self.depth[g * GE..(g + 1) * GE].fill(d);
        g
    }

    /// Clears group `g` and makes it reusable.
    fn release(&mut self, g: usize) {
        for i in g * GE..(g + 1) * GE {
            self.set(i, route::EMPTY);
            self.depth[i] = 0;
        }
        self.background[g - route::FIRST_GROUP as usize] = route::EMPTY;
        self.free.push(Reverse(g as u32));
        self.used -= 1;
    }
}
