//! The map ABI shared by the collecte XDP program and its userspace.
//!
//! Everything here is plain `#[repr(C)]` integers with explicit padding, so
//! the kernel and user sides agree on every byte. There are no enums and no
//! `Option`: raw codes are compared to the constants below.
//!
//! # The tables
//! - [`IfaceInfo`] per interface slot, found from the ingress ifindex through
//!   `IFINDEX_SLOT`.
//! - [`MemberLine`] per (CPU, member slot) in `MEMBER_LINES` (see
//!   [`member_line_index`]): one 64-byte cache line holding the member's
//!   forwarding data ([`MemberFwd`]) for both halves and that CPU's
//!   [`MemberCounters`], so that a packet reaches both with one memory
//!   access.
//! - The prefix table (`ROUTES`): a multibit trie of `u32` entries, in two
//!   halves (see [`Globals::active`]). See [`route`] for its layout.
//! - A `u64` packet counter per (interface slot, [`reason`]) in a per-CPU
//!   array, [`reason::REASON_SLOTS`] per interface.
//! - What the fast path answers for itself on members' lines (see [`edge`]):
//!   each interface's own addresses ([`IfaceAddrs`]), the gateway addresses
//!   of each access interface (`GATEWAYS`, keyed by [`GatewayKey`]), the
//!   per-CPU rate of the ICMP messages it sends, and the CPE MACs it learns
//!   ([`LearnedMac`], [`LearnEvent`]).
//!
//! Tables that change together (members and routes) are double-buffered:
//! userspace writes the inactive half (the inactive [`MemberFwd`] of every
//! CPU's line, the inactive half of `ROUTES`), then flips
//! [`Globals::active`], so a packet sees either the whole old or the whole
//! new table.
#![no_std]

/// Bumped whenever a layout below changes; userspace refuses pinned maps of
/// another version instead of misreading them.
pub const ABI_VERSION: u32 = 5;

/// Highest ingress ifindex the datapath can classify (`IFINDEX_SLOT` size).
pub const MAX_IFINDEX: u32 = 1 << 16;
/// Number of interface slots. Slot 0 is reserved for "unknown interface".
pub const MAX_IFACES: u32 = 64;
/// Interface slot used for frames from an interface that is not configured.
pub const IFACE_SLOT_UNKNOWN: u32 = 0;

/// What an interface is for ([`IfaceInfo::kind`]).
pub mod kind {
    pub const NONE: u8 = 0;
    pub const UPLINK: u8 = 1;
    pub const ACCESS: u8 = 2;
}

/// [`IfaceInfo::flags`] bits.
pub mod iface_flags {
    /// `gw4_mac` holds the resolved MAC of the IPv4 gateway.
    pub const GW4_VALID: u8 = 1 << 0;
    /// `gw6_mac` holds the resolved MAC of the IPv6 gateway.
    pub const GW6_VALID: u8 = 1 << 1;
}

/// One configured interface. Indexed by interface slot in `IFACES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Kernel ifindex (also the `EGRESS` devmap value at this slot).
    pub ifindex: u32,
    /// Layer-3 MTU of the interface.
    pub mtu: u16,
    /// 802.1Q tag pushed on frames to this uplink, and expected on frames from
    /// it; 0 for untagged.
    pub vlan: u16,
    /// The interface's own MAC: source of frames we send, destination of
    /// frames addressed to the router.
    pub mac: [u8; 6],
    /// One of [`kind`].
    pub kind: u8,
    /// [`iface_flags`] bits.
    pub flags: u8,
    /// Uplinks: the IPv4 gateway's MAC.
    pub gw4_mac: [u8; 6],
    /// Uplinks: the IPv6 gateway's MAC.
    pub gw6_mac: [u8; 6],
    pub _pad: [u8; 4],
}

/// [`MemberInfo::flags`] and [`MemberFwd::flags`] bits.
pub mod member_flags {
    /// The slot holds a member.
    pub const PRESENT: u16 = 1 << 0;
    /// `mac` is known: it is the downstream destination MAC, and upstream
    /// frames must come from it.
    pub const HAS_MAC: u16 = 1 << 1;
    /// The member also checks upstream frames' source MAC against `mac`.
    pub const CHECK_MAC: u16 = 1 << 2;
    /// The member has no configured MAC: the datapath reports the source
    /// MAC of its frames that pass the source check (`LEARN_EVENTS`), and
    /// `mac` (with [`HAS_MAC`]) is the one learned, if any.
    pub const LEARN: u16 = 1 << 3;
    /// The member is a PPPoE session (see [`pppoe`](crate::pppoe)): frames
    /// to it get the session's PPPoE and PPP headers, and only frames of
    /// its session count as its own (a plain IP frame from its attachment
    /// does not).
    pub const PPPOE: u16 = 1 << 4;
}

/// One member's attachment, as the control plane describes it; the
/// datapath keeps it as a [`MemberFwd`] (see [`MemberFwd::from_info`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberInfo {
    /// Interface slot of the member's access interface.
    pub iface: u32,
    /// Outer tag (S-tag, 802.1ad) VLAN id, 0 for none.
    pub s_vlan: u16,
    /// Inner tag (C-tag, 802.1Q) VLAN id, 0 for none.
    pub c_vlan: u16,
    /// The member's CPE MAC.
    pub mac: [u8; 6],
    /// [`member_flags`] bits.
    pub flags: u16,
}

/// One member's attachment in one half, as the datapath reads it: two of
/// them fit in a [`MemberLine`] beside the counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberFwd {
    /// Interface slot of the member's access interface (below
    /// [`MAX_IFACES`]).
    pub iface: u8,
    /// [`member_flags`] bits.
    pub flags: u8,
    /// Outer tag (S-tag, 802.1ad) VLAN id, 0 for none.
    pub s_vlan: u16,
    /// Inner tag (C-tag, 802.1Q) VLAN id, 0 for none.
    pub c_vlan: u16,
    /// The member's CPE MAC.
    pub mac: [u8; 6],
}

impl MemberFwd {
    /// The datapath's form of `m`. Interface slots are below
    /// [`MAX_IFACES`] and flags below 256, so nothing is lost.
    pub const fn from_info(m: &MemberInfo) -> Self {
        MemberFwd {
            iface: m.iface as u8,
            flags: m.flags as u8,
            s_vlan: m.s_vlan,
            c_vlan: m.c_vlan,
            mac: m.mac,
        }
    }
}

/// One CPU's counters of one member, in its [`MemberLine`]. Byte counts are IP packet lengths (layer 3), so they do
/// not depend on how the member's line is tagged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounters {
    /// Packets from the member that passed the source check.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets forwarded to the member.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets sent from the member's attachment with a source it does not own.
    pub spoofed_packets: u64,
}

/// One member's cache line on one CPU, at [`member_line_index`] in
/// `MEMBER_LINES`: the member's forwarding data in each half (`fwd[half]`,
/// read at [`Globals::active`]) and this CPU's counters. Userspace writes
/// the inactive half's `fwd` into every CPU's line and sums the counters
/// over the lines of every CPU; the program reads and counts in its own
/// CPU's line only.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberLine {
    pub fwd: [MemberFwd; 2],
    pub counters: MemberCounters,
}

/// Global switches, in the single entry of `GLOBALS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Globals {
    /// Which half (0 or 1) of the members' forwarding data and of `ROUTES`
    /// is in force.
    pub active: u32,
    /// Member slots (the `max_members` setting): lines per CPU block of
    /// `MEMBER_LINES`.
    pub max_members: u32,
    /// Entries per half of `ROUTES`.
    pub route_half: u32,
    /// Interface slot of the uplink that carries upstream IPv4, 0 for none.
    pub uplink4: u32,
    /// Interface slot of the uplink that carries upstream IPv6, 0 for none.
    pub uplink6: u32,
    /// [`ABI_VERSION`] of the userspace that filled the tables.
    pub abi_version: u32,
    /// `[edge] icmp_rate`: echo replies and ICMP errors per second and per
    /// CPU; 0 sends none (the packets go to the kernel).
    pub icmp_rate: u32,
    /// `[edge] icmp_burst`: how many may go at once after a quiet time.
    pub icmp_burst: u32,
    /// `[edge] router_lifetime`: Router Lifetime of the answered Router
    /// Solicitations' advertisements, in seconds.
    pub router_lifetime: u16,
    /// `[edge] ra_hop_limit`: their Cur Hop Limit.
    pub ra_hop_limit: u8,
    pub _pad: u8,
}

/// The multibit trie that maps addresses to members (`ROUTES`).
///
/// It is DIR-24-8 generalised (as in DPDK's rte_lpm6) with a 16-bit root and
/// 8-bit strides: an IPv4 lookup reads at most 3 entries, an IPv6 /64 at most
/// 7, and the upper levels are shared by every member of a pool, so they stay
/// in cache. Groups of 256 entries are numbered; group `g` occupies entries
/// `g * 256 .. g * 256 + 256` of a half. Groups `0..256` are the IPv4 root
/// (indexed by the top 16 bits), groups `256..512` the IPv6 root.
///
/// An entry is [`EMPTY`](route::EMPTY), a leaf (a member slot + 1, or
/// [`LOCAL`](route::LOCAL)), or a pointer to the group holding the next 8
/// bits ([`PTR`](route::PTR) | group). Leaves are fully expanded, so the
/// first leaf met is the longest match.
pub mod route {
    pub const STRIDE: u32 = 8;
    pub const GROUP_ENTRIES: u32 = 1 << STRIDE;
    pub const ROOT_BITS: u32 = 16;
    /// First group of the IPv4 root.
    pub const ROOT4_GROUP: u32 = 0;
    /// First group of the IPv6 root.
    pub const ROOT6_GROUP: u32 = (1 << ROOT_BITS) / GROUP_ENTRIES;
    /// First group that can be allocated below a root.
    pub const FIRST_GROUP: u32 = 2 * ROOT6_GROUP;
    /// No prefix covers the address.
    pub const EMPTY: u32 = 0;
    /// The address is one of the router's own.
    pub const LOCAL: u32 = 0x7fff_ffff;
    /// The entry points to a group: the low 31 bits are its number.
    pub const PTR: u32 = 0x8000_0000;
    /// Entries per map value of `ROUTES`: a 64-byte cache line. (Array map
    /// values are padded to 8 bytes, so single `u32` values would waste half
    /// of every line.)
    pub const CHUNK: u32 = 16;
    /// Levels below the root an IPv6 lookup may walk (bits 16..128).
    pub const MAX_V6_LEVELS: u32 = 14;
    /// Levels below the root an IPv4 lookup may walk (bits 16..32).
    pub const MAX_V4_LEVELS: u32 = 2;

    /// Entries in one half of the table for `groups` allocatable groups.
    pub const fn half_entries(groups: u32) -> u32 {
        (FIRST_GROUP + groups) * GROUP_ENTRIES
    }

    /// The leaf value of member slot `slot`.
    pub const fn member_leaf(slot: u32) -> u32 {
        slot + 1
    }
}

/// One value of `ROUTES`: [`route::CHUNK`] consecutive entries.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteChunk(pub [u32; route::CHUNK as usize]);

/// Highest member slot (exclusive) a leaf can encode.
pub const MAX_MEMBERS_LIMIT: u32 = route::LOCAL - 1;

/// What the program does with a packet: the kernel's XDP action codes
/// (`XDP_REDIRECT`, `XDP_PASS`, `XDP_DROP`, `XDP_TX`), so that an action
/// reads the same here, in the program's return value and in the tracer's
/// output.
/// Each [`reason`] has one, in [`reason::TABLE`].
pub mod action {
    /// Dropped (`XDP_DROP`).
    pub const DROP: u32 = 1;
    /// Handed to the kernel unchanged (`XDP_PASS`).
    pub const PASS: u32 = 2;
    /// Answered: the frame, turned into the answer in place, leaves by the
    /// interface it came from with the tags it came with (`XDP_TX`).
    pub const REPLY: u32 = 3;
    /// Rewritten and redirected to its egress interface (`XDP_REDIRECT`).
    pub const FORWARD: u32 = 4;

    /// The action's name, as the metrics and the tracer spell it.
    pub const fn name(action: u32) -> &'static str {
        match action {
            FORWARD => "forward",
            PASS => "pass",
            DROP => "drop",
            REPLY => "reply",
            _ => "unknown",
        }
    }
}

pub mod reason;

pub mod edge;
pub mod pppoe;
pub mod ra;

pub use edge::{
    GATEWAY_ENTRIES, GatewayKey, IfaceAddrs, LEARN_EVENTS_BYTES, LearnEvent, LearnedMac,
    MAX_GATEWAYS_PER_IFACE, addr_flags, family,
};

/// A member id or interface name, NUL-padded: the value of the userspace-only
/// pinned maps `MEMBER_IDS` and `IFACE_NAMES`, which record which slot
/// belongs to whom beside the counters, so that a restart gives slots back.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotName(pub [u8; 64]);

impl Default for SlotName {
    fn default() -> Self {
        SlotName([0; 64])
    }
}

/// Marker for "no member" in [`TraceVerdict::member`].
pub const NO_MEMBER: u32 = u32::MAX;

/// Key of `ATTACHMENTS`: where a frame entered (interface slot and tags), in
/// one half of the table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttachKey {
    pub iface: u16,
    pub half: u16,
    pub s_vlan: u16,
    pub c_vlan: u16,
}

/// Value of `ATTACHMENTS` when several members share one attachment (an
/// untagged shared segment): spoofed packets from it are not attributed.
pub const ATTACH_SHARED: u32 = u32::MAX - 1;

/// What the program decided for one packet, and the steps that led there,
/// recorded only by the tracer's instance of the program (global `TRACE`
/// set at load time), for `collecte trace --explain`. Each field below
/// `ingress_ifindex` is meaningful only when its [`step`] bit is set in
/// `steps`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceVerdict {
    /// One of [`reason`].
    pub reason: u32,
    /// Interface slot the packet was redirected to (forwards only).
    pub egress: u32,
    /// Member slot the packet was attributed to, or [`NO_MEMBER`].
    pub member: u32,
    /// Ingress ifindex to use instead of the context's (tracer input).
    pub ingress_ifindex: u32,
    /// [`step`] bits: what the program did.
    pub steps: u32,
    /// [`step::PARSED`]: the IP packet's length (its header's), in bytes.
    pub len: u32,
    /// [`step::PARSED`]: the tags found (S-VLAN, 0 with one tag; C-VLAN).
    pub s_vlan: u16,
    pub c_vlan: u16,
    /// [`step::PARSED`]: how many tags (0–2).
    pub tags: u8,
    /// [`step::PARSED`]: 4 or 6.
    pub family: u8,
    /// [`step::PARSED`]: TTL or hop limit as received.
    pub ttl: u8,
    /// [`step::HOP`]: how many tags the egress frame carries (0–2).
    pub hop_tags: u8,
    /// [`step::DST_LOOKUP`]: the prefix table's answer for the destination
    /// (a [`route`] entry: `EMPTY`, `LOCAL`, or member slot + 1).
    pub dst_leaf: u32,
    /// [`step::SRC_LOOKUP`]: the same for the source.
    pub src_leaf: u32,
    /// Member slot the packet came from, or [`NO_MEMBER`].
    pub from: u32,
    /// Member slot the packet goes to, or [`NO_MEMBER`].
    pub to: u32,
    /// [`step::HOP`]: the egress MTU the packet must fit.
    pub hop_mtu: u32,
    /// [`step::HOP`]: the egress tags (outer first; 0 when absent).
    pub hop_first: u16,
    pub hop_second: u16,
    /// [`step::HOP`]: the Ethernet addresses the frame leaves with.
    pub hop_dst_mac: [u8; 6],
    pub hop_src_mac: [u8; 6],
}

/// [`TraceVerdict::steps`] bits: the steps the program took, in order.
pub mod step {
    /// The headers were parsed (Ethernet, tags, IPv4 or IPv6).
    pub const PARSED: u32 = 1 << 0;
    /// The ingress is an uplink: the destination decides (downstream).
    pub const FROM_UPLINK: u32 = 1 << 1;
    /// The ingress is an access interface: the source check comes first.
    pub const FROM_ACCESS: u32 = 1 << 2;
    /// The source was looked up in the prefix table (`src_leaf`).
    pub const SRC_LOOKUP: u32 = 1 << 3;
    /// The source's member is not attached where the frame came in (its
    /// interface or tags differ), or the source belongs to no member.
    pub const SRC_WRONG_ATTACHMENT: u32 = 1 << 4;
    /// The member's configured MAC was compared with the frame's source.
    pub const SRC_MAC_CHECKED: u32 = 1 << 5;
    /// ... and differed.
    pub const SRC_MAC_MISMATCH: u32 = 1 << 6;
    /// The source check passed.
    pub const SRC_OK: u32 = 1 << 7;
    /// The destination was looked up in the prefix table (`dst_leaf`).
    pub const DST_LOOKUP: u32 = 1 << 8;
    /// A next hop was found (`hop_*`, and the verdict's egress).
    pub const HOP: u32 = 1 << 9;
    /// The frame was rewritten for it: MACs, tags, TTL or hop limit − 1.
    pub const REWRITTEN: u32 = 1 << 10;
    /// A PPPoE session frame of a known session: its IP packet was taken
    /// out (upstream), the source checked against the session's member.
    pub const PPPOE_DECAP: u32 = 1 << 11;
    /// The packet was put in its member's PPPoE session (downstream).
    pub const PPPOE_ENCAP: u32 = 1 << 12;
    /// A TCP SYN's MSS was lowered to the session's MRU.
    pub const MSS_CLAMPED: u32 = 1 << 13;
}

/// Index in `MEMBER_LINES` of member `slot`'s line on CPU `cpu`.
///
/// The array holds one block of `max_members` lines per possible CPU: a
/// flat array is one memory access per packet, where a per-CPU array map
/// costs two dependent ones (its pointer table, then the CPU's copy) — at a
/// million members each is a cache and TLB miss. Blocks per CPU, rather
/// than CPUs per member, keep two CPUs that count the same member off each
/// other's cache lines.
pub const fn member_line_index(cpu: u32, max_members: u32, slot: u32) -> u32 {
    cpu * max_members + slot
}

// The ABI has no implicit padding: each size is the sum of its fields.
const _: () = assert!(core::mem::size_of::<IfaceInfo>() == 32);
const _: () = assert!(core::mem::size_of::<MemberInfo>() == 16);
const _: () = assert!(core::mem::size_of::<MemberFwd>() == 12);
const _: () = assert!(core::mem::size_of::<MemberCounters>() == 40);
const _: () = assert!(core::mem::size_of::<MemberLine>() == 64);
const _: () = assert!(core::mem::offset_of!(MemberLine, counters) == 24);
// Interface slots and member flags fit `MemberFwd`'s bytes.
const _: () = assert!(MAX_IFACES <= 256);
const _: () = assert!(member_flags::PPPOE < 256);
const _: () = assert!(core::mem::size_of::<Globals>() == 36);
const _: () = assert!(core::mem::size_of::<TraceVerdict>() == 68);
const _: () = assert!(core::mem::size_of::<AttachKey>() == 8);
const _: () = assert!(route::FIRST_GROUP == 512);
const _: () = assert!(core::mem::size_of::<RouteChunk>() == 64);
const _: () = assert!(core::mem::size_of::<SlotName>() == 64);
const _: () = assert!(route::GROUP_ENTRIES.is_multiple_of(route::CHUNK));

#[cfg(feature = "user")]
mod pod {
    // SAFETY: each type is repr(C), made only of integers, with no padding
    // (checked by the size asserts above), so every bit pattern is valid.
    unsafe impl aya::Pod for super::IfaceInfo {}
    unsafe impl aya::Pod for super::MemberInfo {}
    unsafe impl aya::Pod for super::MemberFwd {}
    unsafe impl aya::Pod for super::MemberCounters {}
    unsafe impl aya::Pod for super::MemberLine {}
    unsafe impl aya::Pod for super::Globals {}
    unsafe impl aya::Pod for super::TraceVerdict {}
    unsafe impl aya::Pod for super::AttachKey {}
    unsafe impl aya::Pod for super::RouteChunk {}
    unsafe impl aya::Pod for super::SlotName {}
    unsafe impl aya::Pod for super::IfaceAddrs {}
    unsafe impl aya::Pod for super::GatewayKey {}
    unsafe impl aya::Pod for super::LearnedMac {}
    unsafe impl aya::Pod for super::LearnEvent {}
}
