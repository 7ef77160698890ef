//! What the test programs (`src/main.rs`, built for BPF by `tests/build.rs`)
//! share with the loader in `tests::vlan_tc`: the program and global names,
//! and the indices of the `COUNTS` per-CPU array.
#![no_std]

/// Egress classifier: pushes the member's tags.
pub const PUSH: &str = "vlan_push";
/// Ingress classifier: accepts only the member's tags, and pops them.
pub const POP: &str = "vlan_pop";

/// Read-only globals the loader sets for each attachment (`u16`, 0: none).
pub const S_VLAN: &str = "S_VLAN";
pub const C_VLAN: &str = "C_VLAN";

/// Per-CPU counters, summed by the loader.
pub const COUNTS: &str = "COUNTS";
/// Egress frames that left with the member's tags pushed.
pub const PUSHED: u32 = 0;
/// Egress frames a push failed on (dropped).
pub const PUSH_FAILED: u32 = 1;
/// Ingress frames with exactly the member's tags (popped, passed on).
pub const ACCEPTED: u32 = 2;
/// Ingress frames of a tagged member that came untagged (dropped).
pub const DROP_UNTAGGED: u32 = 3;
/// Ingress frames with other tags, more tags, or (untagged member) any
/// tag (dropped).
pub const DROP_OTHER: u32 = 4;
/// Ingress frames a pop failed on (dropped).
pub const POP_FAILED: u32 = 5;
/// Accepted tagged frames whose outer tag was in the skb's metadata
/// (`__sk_buff.vlan_present`).
pub const OUTER_IN_META: u32 = 6;
/// Accepted tagged frames whose outer tag was in the frame's data.
pub const OUTER_IN_DATA: u32 = 7;
/// Number of counters.
pub const N_COUNTS: u32 = 8;

/// TPIDs, host order.
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_QINQ1: u16 = 0x9100;

/// XDP program that records where tags are in the frames an interface
/// receives, as the router's native XDP program sees them; passes every
/// frame on.
pub const PROBE: &str = "tag_probe";
/// Per-CPU hash of frames seen by their in-band tags: key [`probe_key`],
/// value the number of frames.
pub const PROBE_SEEN: &str = "PROBE_SEEN";
/// Distinct tag stacks `PROBE_SEEN` holds.
pub const PROBE_ENTRIES: u32 = 256;

/// `PROBE_SEEN`'s key: the number of tags in the frame's data (3: three or
/// more) and the first two, (TPID, VLAN id) outer first, (0, 0) if absent.
pub const fn probe_key(n: u64, tags: [(u16, u16); 2]) -> u64 {
    n << 56
        | (tags[0].0 as u64) << 40
        | ((tags[0].1 & 0x0fff) as u64) << 28
        | (tags[1].0 as u64) << 12
        | (tags[1].1 & 0x0fff) as u64
}

/// The inverse of [`probe_key`].
pub const fn probe_unkey(k: u64) -> (u64, [(u16, u16); 2]) {
    (
        k >> 56,
        [
            ((k >> 40) as u16, ((k >> 28) & 0x0fff) as u16),
            ((k >> 12) as u16, (k & 0x0fff) as u16),
        ],
    )
}
