//! The prefix table (`ROUTES`) as the datapath reads it, built in userspace.
//!
//! The layout is defined in [`router_common::route`] and read by `lookup4` and
//! `lookup6` in the eBPF program: a multibit trie of `u32` entries ("DIR-24-8
//! generalised", as DPDK's `rte_lpm6`) with a 16-bit root and 8-bit strides.
//! Entries come in groups of 256; group `g` is entries `g * 256 .. g * 256 +
//! 256` of a half. Groups `0..256` are the IPv4 root (indexed by the top 16
//! bits of the address), groups `256..512` the IPv6 root, and groups from
//! [`route::FIRST_GROUP`] on are allocated as prefixes need them.
//!
//! # Levels
//! Level 0 is the root and resolves the address bits `0..16`; level `k >= 1`
//! is a group reached through `k` pointers and resolves bits `8k + 8 ..
//! 8k + 16`. A prefix of length `L` lives at the first level whose bits reach
//! `L` (its *target level*) and covers `2^(end - L)` consecutive entries of one
//! group there (prefix expansion). IPv4 has levels `0..=2`, IPv6 `0..=14`.
//!
//! # Shadow state
//! Leaves are fully expanded, so an entry alone does not say which prefix it
//! came from. The table keeps, next to every entry, its *depth*: `L + 1` for a
//! leaf of a length-`L` prefix, `0` for [`route::EMPTY`]. For a pointer entry
//! the depth and the group's *background* value describe what the entry would
//! hold without the pointer: the longest prefix no longer than the entry's
//! level that covers it. With these:
//! - an insert of length `L` rewrites the entries of its range whose depth is
//!   at most `L + 1`, and descends into pointers (whose subtrees it covers);
//! - a remove of length `L` rewrites the entries (and backgrounds) whose depth
//!   is exactly `L + 1` with the next shorter covering prefix;
//! - a group whose 256 entries become one leaf of one prefix no longer than the
//!   parent's level is collapsed back into its parent entry and its number is
//!   reused (lowest first).
//!
//! # Prefixes
//! A prefix whose length ends a level (`/16`, `/24`, `/32`, and every multiple
//! of 8 from `/16` to `/128` for IPv6) — which is what member pools hand out —
//! is recorded by the trie itself: its entry has its depth (or its pointer's
//! background has). Only the other lengths are kept in a side map. This keeps
//! a million members at about 5 bytes per trie entry and nothing more.
//!
//! # Changes
//! Every entry write is tracked: [`RouteTable::take_dirty`] returns the entries
//! whose value differs from what the previous call saw, plus every entry of
//! the groups allocated since then, so the caller can bring a copy of the
//! table (the inactive half of the map) up to date. A new group is written
//! whole, so the datapath never depends on what an unallocated group of the
//! map held (after a restart, for instance). The entries that are not in
//! [`RouteTable::entries`] are [`route::EMPTY`]; freed groups are cleared, so
//! the map never holds stale pointers.
//!
//! # Layout
//! - this module: [`RouteTable`] and its shadow state;
//! - `change`: inserting and removing prefixes, which keeps the shadow
//!   state, collapses uniform groups and frees them;
//! - `dirty`: tracking what changed, for [`RouteTable::take_dirty`];
//! - `lookup`: lookups as the datapath does them, and the overlap search;
//! - `key`: a prefix in the trie's terms.
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use ipnet::IpNet;
use router_common::route;

use key::GE;

mod change;
mod dirty;
mod key;
mod lookup;

#[cfg(test)]
mod tests;

/// Highest number of allocatable groups whose entries still have `u32` indices.
const MAX_GROUPS: u32 = u32::MAX / route::GROUP_ENTRIES - route::FIRST_GROUP;

/// Why the prefix table refused a change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// Not enough free groups for the prefix.
    #[error(
        "no room in the prefix table for {prefix}: it needs {needed} more trie group(s) \
         but only {free} are free; raise `[datapath] route_groups`"
    )]
    GroupsExhausted {
        prefix: IpNet,
        needed: u32,
        free: u32,
    },
    /// `remove()` of a prefix that is not in the table.
    #[error("prefix {prefix} is not in the prefix table")]
    NotFound { prefix: IpNet },
    /// A leaf value that is EMPTY or has the PTR bit.
    #[error(
        "invalid leaf value {leaf:#x} for prefix {prefix}: a leaf is neither 0 (empty) \
         nor has the pointer bit"
    )]
    BadLeaf { prefix: IpNet, leaf: u32 },
}

/// The prefix table: a multibit trie as the datapath reads it, with the shadow
/// state needed to change it. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct RouteTable {
    /// One half of `ROUTES`: the roots, then every group allocated so far.
    entries: Vec<u32>,
    /// Per entry: depth code of its leaf (`len + 1`, 0 for EMPTY); for a
    /// pointer, that of its background.
    depth: Vec<u8>,
    /// Per allocated group (index `g - FIRST_GROUP`): the background value of
    /// the pointer to it.
    background: Vec<u32>,
    /// Per allocated group (index `g - FIRST_GROUP`): allocated since the last
    /// `take_dirty`, so reported whole.
    fresh: Vec<bool>,
    /// The groups whose `fresh` is set.
    fresh_list: Vec<u32>,
    /// Allocatable groups.
    groups: u32,
    /// Allocated groups.
    used: u32,
    /// Freed group numbers, lowest first.
    free: BinaryHeap<Reverse<u32>>,
    /// Prefixes whose length does not end a level: (is IPv6, length, address).
    unaligned: BTreeMap<(bool, u8, u128), u32>,
    /// How many of `unaligned` there are per family and length.
    unaligned_count: [[u32; 129]; 2],
    /// Number of prefixes.
    len: usize,
    /// Entries written since the last `take_dirty`, with their value then.
    dirty: Vec<(u32, u32)>,
    /// Bit per entry: in `dirty`.
    dirty_bits: Vec<u64>,
}

impl RouteTable {
    /// An empty table. `groups`: how many groups can be allocated beyond the
    /// roots (the datapath map holds
    /// [`route::half_entries(groups)`](route::half_entries) entries per half).
    /// More than fit `u32` indices are not used.
    pub fn new(groups: u32) -> Self {
        let roots = route::FIRST_GROUP as usize * GE;
        RouteTable {
            entries: vec![route::EMPTY; roots],
            depth: vec![0; roots],
            background: Vec::new(),
            fresh: Vec::new(),
            fresh_list: Vec::new(),
            groups: groups.min(MAX_GROUPS),
            used: 0,
            free: BinaryHeap::new(),
            unaligned: BTreeMap::new(),
            unaligned_count: [[0; 129]; 2],
            len: 0,
            dirty: Vec::new(),
            dirty_bits: vec![0; roots / 64],
        }
    }

    /// Groups that can still be allocated.
    pub fn groups_free(&self) -> u32 {
        self.groups - self.used
    }

    /// All entries of one half as they currently are: the roots and the groups
    /// allocated so far. Entries beyond the end (up to
    /// [`route::half_entries`]`(groups_total())`) are EMPTY.
    pub fn entries(&self) -> &[u32] {
        &self.entries
    }

    /// Groups allocated beyond the roots.
    pub fn groups_used(&self) -> u32 {
        self.used
    }

    /// Groups that can be allocated beyond the roots.
    pub fn groups_total(&self) -> u32 {
        self.groups
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap memory held by the table, in bytes.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.entries.capacity() * size_of::<u32>()
            + self.depth.capacity()
            + self.background.capacity() * size_of::<u32>()
            + self.fresh.capacity()
            + self.fresh_list.capacity() * size_of::<u32>()
            + self.free.capacity() * size_of::<u32>()
            // A B-tree node holds 6 to 11 pairs; count 8 plus the node overhead.
            + self.unaligned.len() * (size_of::<((bool, u8, u128), u32)>() + 8)
            + self.dirty.capacity() * size_of::<(u32, u32)>()
            + self.dirty_bits.capacity() * size_of::<u64>()
    }
}
