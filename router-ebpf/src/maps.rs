//! Every map of the program, with its name, type and default size (the
//! names, types and value layouts are the ABI the loader opens by name;
//! sizes marked "sized by the loader" are set at load time). Nothing else:
//! how the maps are read is the other modules' business. The bench build's
//! own maps stay in `bench.rs`, which `bench-ebpf` compiles too.
use aya_ebpf::{
    macros::map,
    maps::{Array, DevMap, HashMap, PerCpuArray, ProgramArray, RingBuf},
};
use router_common::{
    AttachKey, GATEWAY_ENTRIES, GatewayKey, Globals, IfaceAddrs, IfaceInfo, LEARN_EVENTS_BYTES,
    LearnedMac, MAX_IFACES, MAX_IFINDEX, MemberLine, RouteChunk, TraceVerdict,
    pppoe::{Session, SessionKey, SessionLine},
    reason, route,
};

use crate::pppoe::Handoff;

/// `BPF_F_MMAPABLE`: the array can be memory-mapped by userspace.
const BPF_F_MMAPABLE: u32 = 1 << 10;

#[map]
pub static GLOBALS: Array<Globals> = Array::with_max_entries(1, 0);
#[map]
pub static IFINDEX_SLOT: Array<u32> = Array::with_max_entries(MAX_IFINDEX, 0);
#[map]
pub static IFACES: Array<IfaceInfo> = Array::with_max_entries(MAX_IFACES, 0);
#[map]
pub static EGRESS: DevMap = DevMap::with_max_entries(MAX_IFACES, 0);
/// Two halves of `route::half_entries(groups)` entries, in chunks of
/// `route::CHUNK`; sized by the loader. Memory-mapped by userspace.
#[map]
pub static ROUTES: Array<RouteChunk> = Array::with_max_entries(
    2 * route::FIRST_GROUP * route::GROUP_ENTRIES / route::CHUNK,
    BPF_F_MMAPABLE,
);
/// Sized by the loader to twice the members, plus room for shared segments.
#[map]
pub static ATTACHMENTS: HashMap<AttachKey, u32> = HashMap::with_max_entries(2, 0);
/// One block of `max_members` lines per possible CPU (see
/// `router_common::member_line_index`): each member's forwarding data for
/// both halves and the CPU's counters of it, in one cache line. Sized by
/// the loader; memory-mapped by userspace, which writes it directly.
#[map]
pub static MEMBER_LINES: Array<MemberLine> = Array::with_max_entries(1, BPF_F_MMAPABLE);
/// `reason::REASON_SLOTS` counters per interface slot.
#[map]
pub static IFACE_COUNTERS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(MAX_IFACES * reason::REASON_SLOTS, 0);
/// Each interface's own addresses, the sources of what it answers.
#[map]
pub static IFACE_ADDRS: Array<IfaceAddrs> = Array::with_max_entries(MAX_IFACES, 0);
/// The addresses of each access interface: its members' gateways.
#[map]
pub static GATEWAYS: HashMap<GatewayKey, u32> = HashMap::with_max_entries(GATEWAY_ENTRIES, 0);
/// This CPU's theoretical arrival time of its next echo reply or ICMP
/// error (GCRA, `bpf_ktime_get_ns`).
#[map]
pub static ICMP_RATE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
/// By member slot: the last CPE MAC reported for a member without one
/// configured. Sized by the loader (`max_members`); memory-mapped by
/// userspace.
#[map]
pub static LEARNED: Array<LearnedMac> = Array::with_max_entries(1, BPF_F_MMAPABLE);
/// Reports of CPE MACs, read by the daemon.
#[map]
pub static LEARN_EVENTS: RingBuf = RingBuf::with_byte_size(LEARN_EVENTS_BYTES, 0);
#[map]
pub static TRACE_VERDICT: Array<TraceVerdict> = Array::with_max_entries(1, 0);
/// PPPoE sessions by where their frames come from (see
/// `router_common::pppoe`). Sized by the loader (`max_members`).
#[map]
pub static SESSIONS: HashMap<SessionKey, Session> = HashMap::with_max_entries(1, 0);
/// By member slot: a PPPoE member's session id and MRU. Sized by the loader
/// (`max_members`).
#[map]
pub static SESSION_LINES: Array<SessionLine> = Array::with_max_entries(1, 0);
/// The PPPoE programs the entry program tail-calls (`pppoe::UP`,
/// `pppoe::DOWN`), filled by each load with that load's programs.
#[map]
pub static PPPOE_PROGS: ProgramArray = ProgramArray::with_max_entries(2, 0);
/// What a program tells the PPPoE program it tail-calls (one entry per
/// CPU: a tail call stays on the CPU).
#[map]
pub static PPPOE_HANDOFF: PerCpuArray<Handoff> = PerCpuArray::with_max_entries(1, 0);
