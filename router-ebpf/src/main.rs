//! The collecte XDP program: forwards member traffic between uplinks and
//! access interfaces, drops spoofed and malformed packets, and passes
//! everything else to the kernel unchanged.
//!
//! The program reads like the path of a packet: [`parse`] the headers
//! (through the one bounds-checked accessor, [`packet::header`]), classify
//! the frame by its ingress interface ([`process`]), look the addresses up in
//! the prefix table ([`trie`]), [`rewrite`] the frame for its next hop, then
//! [`count`] and act.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_smp_processor_id, bpf_xdp_adjust_head},
    macros::{map, xdp},
    maps::{Array, DevMap, HashMap, PerCpuArray},
    programs::XdpContext,
};
use packet::{EthHdr, Ipv4Hdr, Ipv6Hdr, VlanHdr, decrement_ttl, header};
use router_common::{
    ATTACH_SHARED, AttachKey, Globals, IFACE_SLOT_UNKNOWN, IfaceInfo, MAX_IFACES, MAX_IFINDEX,
    MemberFwd, MemberLine, NO_MEMBER, RouteChunk, TraceVerdict, action, iface_flags, kind,
    member_flags, member_line_index, reason, route,
};

/// Set to 1 by the tracer's instance of the program: the ingress interface
/// comes from `TRACE_VERDICT`, the verdict is written there, no counter moves
/// and nothing is redirected. The verifier removes the branches it guards
/// from the datapath's instance, where it stays 0.
#[unsafe(no_mangle)]
static TRACE: u8 = 0;

// ---- Bench build (the `bench` crate; see bench.rs) ----
/// Set to 1 by the benchmark's instance of the program: before parsing, the
/// frame is restored from a template and its destination (or source)
/// address replaced by a random one ([`bench::randomise`]). The verifier
/// removes this from every other instance, where it stays 0.
#[unsafe(no_mangle)]
static BENCH: u8 = 0;
mod bench;
mod packet;
mod trie;
// ---- end of the bench build ----

#[map]
static GLOBALS: Array<Globals> = Array::with_max_entries(1, 0);
#[map]
static IFINDEX_SLOT: Array<u32> = Array::with_max_entries(MAX_IFINDEX, 0);
#[map]
static IFACES: Array<IfaceInfo> = Array::with_max_entries(MAX_IFACES, 0);
#[map]
static EGRESS: DevMap = DevMap::with_max_entries(MAX_IFACES, 0);
/// Two halves of `route::half_entries(groups)` entries, in chunks of
/// `route::CHUNK`; sized by the loader. Memory-mapped by userspace.
#[map]
static ROUTES: Array<RouteChunk> = Array::with_max_entries(
    2 * route::FIRST_GROUP * route::GROUP_ENTRIES / route::CHUNK,
    BPF_F_MMAPABLE,
);
/// Sized by the loader to twice the members, plus room for shared segments.
#[map]
static ATTACHMENTS: HashMap<AttachKey, u32> = HashMap::with_max_entries(2, 0);
/// One block of `max_members` lines per possible CPU (see
/// `router_common::member_line_index`): each member's forwarding data for
/// both halves and the CPU's counters of it, in one cache line. Sized by
/// the loader; memory-mapped by userspace, which writes it directly.
#[map]
static MEMBER_LINES: Array<MemberLine> = Array::with_max_entries(1, BPF_F_MMAPABLE);
#[map]
static IFACE_COUNTERS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(MAX_IFACES * reason::COUNT, 0);
#[map]
static TRACE_VERDICT: Array<TraceVerdict> = Array::with_max_entries(1, 0);

/// `BPF_F_MMAPABLE`: the array can be memory-mapped by userspace.
const BPF_F_MMAPABLE: u32 = 1 << 10;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_P_QINQ_9100: u16 = 0x9100;
const VID_MASK: u16 = 0x0fff;
const IPV6_HLEN: usize = 40;
const NEXTHDR_HOP: u8 = 0;

/// What every packet reads once: the globals, and where this CPU's block of
/// member lines starts.
struct Tables {
    g: &'static Globals,
    /// Index of this CPU's line of member slot 0 in `MEMBER_LINES`.
    lines: u32,
}

/// What the program decided, before it is counted and acted on.
struct Verdict {
    reason: u32,
    /// Interface slot to redirect to (forwards).
    egress: u32,
    /// Member the packet came from (counted as receive, or as spoofed).
    from: u32,
    /// Member the packet goes to (counted as transmit).
    to: u32,
    /// IP packet length, for the byte counters.
    bytes: u32,
}

impl Verdict {
    const fn new(reason: u32) -> Self {
        Verdict {
            reason,
            egress: 0,
            from: NO_MEMBER,
            to: NO_MEMBER,
            bytes: 0,
        }
    }
    /// The packet comes from member `member`.
    const fn from(mut self, member: u32, bytes: u32) -> Self {
        self.from = member;
        self.bytes = bytes;
        self
    }
    /// The packet goes to member `member`.
    const fn to(mut self, member: u32, bytes: u32) -> Self {
        self.to = member;
        self.bytes = bytes;
        self
    }
}

/// The layer-2 envelope and layer-3 essentials of a frame.
struct Packet {
    /// Number of VLAN tags (0..=2).
    tags: u32,
    /// Outer tag of a double-tagged frame, else 0.
    s_vlan: u16,
    /// The only tag of a single-tagged frame, or the inner tag; else 0.
    c_vlan: u16,
    /// Offset of the IP header.
    l3: usize,
    /// IPv6 (else IPv4).
    v6: bool,
    /// IP packet length from its header.
    len: u32,
    /// Bytes from the IP header to the end of the frame (the IP packet plus
    /// any Ethernet padding, which is forwarded as it is).
    wire: u32,
    /// TTL or hop limit.
    ttl: u8,
    /// Addresses: IPv4 in `[0]`, IPv6 in big-endian 64-bit halves.
    src: [u64; 2],
    dst: [u64; 2],
}

#[xdp]
pub fn collecte(ctx: XdpContext) -> u32 {
    // Bench build only (BENCH = 0 elsewhere).
    if unsafe { core::ptr::read_volatile(&BENCH) } != 0 && !bench::randomise(&ctx) {
        return xdp_action::XDP_ABORTED;
    }
    let trace = unsafe { core::ptr::read_volatile(&TRACE) } != 0;
    let ifindex = if trace {
        match TRACE_VERDICT.get(0) {
            Some(t) => t.ingress_ifindex,
            None => 0,
        }
    } else {
        unsafe { (*ctx.ctx).ingress_ifindex }
    };
    let slot = match IFINDEX_SLOT.get(ifindex) {
        Some(&s) if s < MAX_IFACES => s,
        _ => IFACE_SLOT_UNKNOWN,
    };
    let Some(g) = GLOBALS.get(0) else {
        return xdp_action::XDP_PASS;
    };
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let t = Tables {
        g,
        lines: member_line_index(cpu, g.max_members, 0),
    };
    let verdict = process(&ctx, slot, &t);
    if trace {
        record(&verdict);
    } else {
        count(slot, &verdict, &t);
    }
    act(&verdict, trace)
}

// The table's actions are the kernel's codes, returned as they are.
const _: () = assert!(action::DROP == xdp_action::XDP_DROP);
const _: () = assert!(action::PASS == xdp_action::XDP_PASS);
const _: () = assert!(action::FORWARD == xdp_action::XDP_REDIRECT);

/// Reasons whose packets are forwarded, and dropped (bit `r` for reason
/// `r`), from the table: constants, so that the program tests a bit.
const FORWARDS: u32 = reason::with_action(action::FORWARD);
const DROPS: u32 = reason::with_action(action::DROP);

/// Turns a verdict into an XDP action: its reason's, from the table.
#[inline(always)]
fn act(v: &Verdict, trace: bool) -> u32 {
    if FORWARDS >> v.reason & 1 != 0 {
        if trace {
            return xdp_action::XDP_REDIRECT;
        }
        // The egress slot always has a devmap entry (userspace fills both
        // together); should it not, the rewritten frame is dropped rather
        // than handed to the kernel altered.
        return match EGRESS.redirect(v.egress, xdp_action::XDP_DROP as u64) {
            Ok(a) | Err(a) => a,
        };
    }
    if DROPS >> v.reason & 1 != 0 {
        return xdp_action::XDP_DROP;
    }
    xdp_action::XDP_PASS
}

/// Adds the verdict to this CPU's counters. A member's counters share the
/// cache line its forwarding data was read from.
#[inline(always)]
fn count(slot: u32, v: &Verdict, t: &Tables) {
    if let Some(c) = IFACE_COUNTERS.get_ptr_mut(slot * reason::COUNT + v.reason) {
        unsafe { *c += 1 };
    }
    if let Some(l) = line(t, v.from) {
        let c = unsafe { &mut (*l).counters };
        if v.reason == reason::DROP_SPOOFED {
            c.spoofed_packets += 1;
        } else {
            c.rx_packets += 1;
            c.rx_bytes += v.bytes as u64;
        }
    }
    if let Some(l) = line(t, v.to) {
        let c = unsafe { &mut (*l).counters };
        c.tx_packets += 1;
        c.tx_bytes += v.bytes as u64;
    }
}

/// Writes the verdict for the tracer.
#[inline(always)]
fn record(v: &Verdict) {
    if let Some(t) = TRACE_VERDICT.get_ptr_mut(0) {
        let t = unsafe { &mut *t };
        t.reason = v.reason;
        t.egress = v.egress;
        t.member = if v.to != NO_MEMBER { v.to } else { v.from };
    }
}

#[inline(always)]
fn process(ctx: &XdpContext, slot: u32, t: &Tables) -> Verdict {
    let Some(iface) = IFACES.get(slot) else {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    };
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Verdict::new(reason::DROP_MALFORMED);
    };
    if iface.kind == kind::NONE {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    }
    let dst_mac = unsafe { (*eth).dst };
    if dst_mac[0] & 1 != 0 {
        return Verdict::new(if dst_mac == [0xff; 6] {
            reason::PASS_BROADCAST
        } else {
            reason::PASS_MULTICAST
        });
    }
    if dst_mac != iface.mac {
        return Verdict::new(reason::PASS_NOT_TO_ROUTER);
    }
    let p = match parse(ctx) {
        Ok(p) => p,
        Err(r) => return Verdict::new(r),
    };
    if let Some(r) = special_addresses(&p) {
        return Verdict::new(r);
    }
    if iface.kind == kind::UPLINK {
        downstream(ctx, &p, iface, t)
    } else {
        upstream(ctx, &p, slot, t)
    }
}

/// Parses the VLAN tags and the IP header. Errors are verdict reasons.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<Packet, u32> {
    let eth = header::<EthHdr>(ctx, 0).ok_or(reason::DROP_MALFORMED)?;
    let mut proto = u16::from_be_bytes(unsafe { (*eth).proto });
    let mut p = Packet {
        tags: 0,
        s_vlan: 0,
        c_vlan: 0,
        l3: ETH_HLEN,
        v6: false,
        len: 0,
        wire: 0,
        ttl: 0,
        src: [0; 2],
        dst: [0; 2],
    };
    if proto == ETH_P_8021AD || proto == ETH_P_8021Q || proto == ETH_P_QINQ_9100 {
        let tag = header::<VlanHdr>(ctx, ETH_HLEN).ok_or(reason::DROP_MALFORMED)?;
        p.c_vlan = u16::from_be_bytes(unsafe { (*tag).tci }) & VID_MASK;
        proto = u16::from_be_bytes(unsafe { (*tag).proto });
        p.tags = 1;
        p.l3 = ETH_HLEN + VLAN_HLEN;
        if proto == ETH_P_8021Q {
            let inner =
                header::<VlanHdr>(ctx, ETH_HLEN + VLAN_HLEN).ok_or(reason::DROP_MALFORMED)?;
            p.s_vlan = p.c_vlan;
            p.c_vlan = u16::from_be_bytes(unsafe { (*inner).tci }) & VID_MASK;
            proto = u16::from_be_bytes(unsafe { (*inner).proto });
            p.tags = 2;
            p.l3 = ETH_HLEN + 2 * VLAN_HLEN;
        }
    }
    let frame_len = (ctx.data_end() - ctx.data()) as u32;
    p.wire = frame_len.saturating_sub(p.l3 as u32);
    if proto == ETH_P_IP {
        let ip = header::<Ipv4Hdr>(ctx, p.l3).ok_or(reason::DROP_MALFORMED)?;
        let ip = unsafe { &*ip };
        let ihl = (ip.version_ihl & 0x0f) as u32 * 4;
        p.len = u16::from_be_bytes(ip.tot_len) as u32;
        if ip.version_ihl >> 4 != 4 || ihl < 20 || p.len < ihl || p.l3 as u32 + p.len > frame_len {
            return Err(reason::DROP_MALFORMED);
        }
        p.ttl = ip.ttl;
        p.src[0] = u32::from_be_bytes(ip.src) as u64;
        p.dst[0] = u32::from_be_bytes(ip.dst) as u64;
        Ok(p)
    } else if proto == ETH_P_IPV6 {
        let ip = header::<Ipv6Hdr>(ctx, p.l3).ok_or(reason::DROP_MALFORMED)?;
        let ip = unsafe { &*ip };
        p.len = IPV6_HLEN as u32 + u16::from_be_bytes(ip.payload_len) as u32;
        if ip.vtc_flow[0] >> 4 != 6 || p.l3 as u32 + p.len > frame_len {
            return Err(reason::DROP_MALFORMED);
        }
        if ip.next_hdr == NEXTHDR_HOP {
            return Err(reason::PASS_IPV6_EXTENSION);
        }
        p.v6 = true;
        p.ttl = ip.hop_limit;
        p.src = addr6(&ip.src);
        p.dst = addr6(&ip.dst);
        Ok(p)
    } else {
        Err(reason::PASS_NOT_IP)
    }
}

#[inline(always)]
fn addr6(a: &[u8; 16]) -> [u64; 2] {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    [u64::from_be_bytes(hi), u64::from_be_bytes(lo)]
}

/// Addresses the kernel handles: link-local, multicast and broadcast.
#[inline(always)]
fn special_addresses(p: &Packet) -> Option<u32> {
    if p.v6 {
        let link_local = |a: u64| a >> 54 == 0xfe80 >> 6;
        if link_local(p.src[0]) || link_local(p.dst[0]) {
            return Some(reason::PASS_LINK_LOCAL);
        }
        if p.dst[0] >> 56 == 0xff {
            return Some(reason::PASS_MULTICAST);
        }
    } else {
        let (src, dst) = (p.src[0] as u32, p.dst[0] as u32);
        if src >> 16 == 0xa9fe || dst >> 16 == 0xa9fe {
            return Some(reason::PASS_LINK_LOCAL);
        }
        if dst == u32::MAX {
            return Some(reason::PASS_BROADCAST);
        }
        if dst >> 28 == 0xe {
            return Some(reason::PASS_MULTICAST);
        }
    }
    None
}

/// Entry `index` of the prefix table (both halves counted).
#[inline(always)]
fn entry(index: u32) -> u32 {
    match ROUTES.get(index / route::CHUNK) {
        Some(chunk) => chunk.0[(index % route::CHUNK) as usize],
        None => route::EMPTY,
    }
}

#[inline(always)]
fn lookup(g: &Globals, p: &Packet, addr: &[u64; 2]) -> u32 {
    let base = g.active * g.route_half;
    let entry_in_half = |i| entry(base + i);
    if p.v6 {
        trie::lookup6(entry_in_half, addr)
    } else {
        trie::lookup4(entry_in_half, addr[0] as u32)
    }
}

/// This CPU's line of member `slot` (none beyond `max_members`, which
/// would be the next CPU's block, nor for `NO_MEMBER`).
#[inline(always)]
fn line(t: &Tables, slot: u32) -> Option<*mut MemberLine> {
    if slot >= t.g.max_members {
        return None;
    }
    MEMBER_LINES.get_ptr_mut(t.lines + slot)
}

/// Member `slot`'s forwarding data in the active half, if it exists.
#[inline(always)]
fn member(t: &Tables, slot: u32) -> Option<&'static MemberFwd> {
    let l = line(t, slot)?;
    let m = unsafe { &(*l).fwd[(t.g.active & 1) as usize] };
    if m.flags as u16 & member_flags::PRESENT == 0 {
        return None;
    }
    Some(m)
}

/// From an uplink towards a member.
#[inline(always)]
fn downstream(ctx: &XdpContext, p: &Packet, uplink: &IfaceInfo, t: &Tables) -> Verdict {
    let expected_tags = if uplink.vlan == 0 { 0 } else { 1 };
    if p.tags != expected_tags || p.c_vlan != uplink.vlan {
        return Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT);
    }
    let leaf = lookup(t.g, p, &p.dst);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL);
    }
    if leaf == route::EMPTY {
        return Verdict::new(reason::PASS_NO_ROUTE);
    }
    let slot = leaf - 1;
    let mut v = Verdict::new(reason::FWD_DOWNSTREAM).to(slot, p.len);
    forward(ctx, p, member_hop(t, slot), &mut v);
    v
}

/// From a member: the source check, then to another member or the uplink.
#[inline(always)]
fn upstream(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables) -> Verdict {
    let src_leaf = lookup(t.g, p, &p.src);
    let sender = if src_leaf != route::EMPTY && src_leaf != route::LOCAL {
        src_leaf - 1
    } else {
        NO_MEMBER
    };
    if !attached_here(ctx, p, slot, t, sender) {
        return spoofed(p, slot, t.g, sender);
    }
    let bytes = p.len;
    let leaf = lookup(t.g, p, &p.dst);
    if leaf == route::LOCAL {
        return Verdict::new(reason::PASS_LOCAL).from(sender, bytes);
    }
    if leaf != route::EMPTY {
        let mut v = Verdict::new(reason::FWD_HAIRPIN)
            .from(sender, bytes)
            .to(leaf - 1, bytes);
        forward(ctx, p, member_hop(t, leaf - 1), &mut v);
        return v;
    }
    let mut v = Verdict::new(reason::FWD_UPSTREAM).from(sender, bytes);
    forward(ctx, p, uplink_hop(t.g, p), &mut v);
    v
}

/// Is `sender` attached at the frame's interface and tags, with its MAC?
#[inline(always)]
fn attached_here(ctx: &XdpContext, p: &Packet, slot: u32, t: &Tables, sender: u32) -> bool {
    let Some(m) = member(t, sender) else {
        return false;
    };
    if m.iface as u32 != slot || m.s_vlan != p.s_vlan || m.c_vlan != p.c_vlan {
        return false;
    }
    if m.flags as u16 & member_flags::CHECK_MAC != 0 {
        let Some(eth) = header::<EthHdr>(ctx, 0) else {
            return false;
        };
        if unsafe { (*eth).src } != m.mac {
            return false;
        }
    }
    true
}

/// A frame whose source is not its sender's: dropped, attributed to the
/// member attached where it came from. From an attachment where no member
/// lives, a frame of unknown source goes to the kernel instead.
#[inline(always)]
fn spoofed(p: &Packet, slot: u32, g: &Globals, sender: u32) -> Verdict {
    let key = AttachKey {
        iface: slot as u16,
        half: g.active as u16,
        s_vlan: p.s_vlan,
        c_vlan: p.c_vlan,
    };
    let attached = unsafe { ATTACHMENTS.get(key) }.copied();
    let mut v = Verdict::new(reason::DROP_SPOOFED);
    match attached {
        None if sender == NO_MEMBER => Verdict::new(reason::PASS_UNKNOWN_ATTACHMENT),
        Some(m) if m != ATTACH_SHARED => {
            v.from = m;
            v
        }
        _ => v,
    }
}

/// Rewrites the frame for `hop`, the verdict's next hop. When there is
/// none, or the frame cannot take it, the packet goes to the kernel
/// instead, with the reason, and to no member (the egress stays the one
/// found, as the tracer reports it).
#[inline(always)]
fn forward(ctx: &XdpContext, p: &Packet, hop: Result<NextHop, u32>, v: &mut Verdict) {
    let rewritten = match hop {
        Ok(hop) => {
            v.egress = hop.egress;
            rewrite(ctx, p, &hop)
        }
        Err(r) => Err(r),
    };
    if let Err(r) = rewritten {
        v.reason = r;
        v.to = NO_MEMBER;
    }
}

/// The next hop towards member `slot`: its line, MAC and tags. Fails with
/// the reason the packet goes to the kernel instead.
#[inline(always)]
fn member_hop(t: &Tables, slot: u32) -> Result<NextHop, u32> {
    let m = member(t, slot).ok_or(reason::PASS_NO_ROUTE)?;
    if m.flags as u16 & member_flags::HAS_MAC == 0 {
        return Err(reason::PASS_NO_NEIGHBOR);
    }
    let out = IFACES.get(m.iface as u32).ok_or(reason::PASS_NO_ROUTE)?;
    Ok(NextHop {
        egress: m.iface as u32,
        dst_mac: m.mac,
        src_mac: out.mac,
        mtu: out.mtu as u32,
        tags: Tags::member(m.s_vlan, m.c_vlan),
    })
}

/// The next hop of upstream traffic of `p`'s family: the uplink's gateway.
/// Fails (`no-neighbor`) while there is no uplink or its gateway's MAC is
/// unknown.
#[inline(always)]
fn uplink_hop(g: &Globals, p: &Packet) -> Result<NextHop, u32> {
    let (slot, valid) = if p.v6 {
        (g.uplink6, iface_flags::GW6_VALID)
    } else {
        (g.uplink4, iface_flags::GW4_VALID)
    };
    let up = IFACES.get(slot).ok_or(reason::PASS_NO_NEIGHBOR)?;
    if slot == IFACE_SLOT_UNKNOWN || up.flags & valid == 0 {
        return Err(reason::PASS_NO_NEIGHBOR);
    }
    Ok(NextHop {
        egress: slot,
        dst_mac: if p.v6 { up.gw6_mac } else { up.gw4_mac },
        src_mac: up.mac,
        mtu: up.mtu as u32,
        tags: Tags::uplink(up.vlan),
    })
}

/// Where a forwarded frame goes, as the lookup found it.
struct NextHop {
    /// Interface slot to redirect to.
    egress: u32,
    /// The member's MAC, or the gateway's.
    dst_mac: [u8; 6],
    /// The egress interface's MAC.
    src_mac: [u8; 6],
    /// The egress interface's layer-3 MTU.
    mtu: u32,
    tags: Tags,
}

/// The VLAN tags a frame leaves with: `count` of them, `first` under TPID
/// `outer`, then `second` under 0x8100. The priority bits are not kept.
struct Tags {
    /// 0, 1 or 2.
    count: u32,
    outer: u16,
    first: u16,
    second: u16,
}

impl Tags {
    /// A member's line: untagged, its C-tag alone (802.1Q), or its S-tag
    /// (802.1ad) then its C-tag.
    #[inline(always)]
    fn member(s_vlan: u16, c_vlan: u16) -> Self {
        let count = (s_vlan != 0) as u32 + (c_vlan != 0) as u32;
        Tags {
            count,
            outer: if count == 2 {
                ETH_P_8021AD
            } else {
                ETH_P_8021Q
            },
            first: if count == 2 { s_vlan } else { c_vlan },
            second: c_vlan,
        }
    }

    /// An uplink's: its one 802.1Q tag, if it has one.
    #[inline(always)]
    fn uplink(vlan: u16) -> Self {
        Tags {
            count: (vlan != 0) as u32,
            outer: ETH_P_8021Q,
            first: vlan,
            second: 0,
        }
    }
}

/// Checks TTL and MTU, then replaces the layer-2 header (MACs and tags) and
/// decrements the TTL or hop limit. Fails with the reason the frame goes to
/// the kernel instead, in which case the frame is untouched.
#[inline(always)]
fn rewrite(ctx: &XdpContext, p: &Packet, hop: &NextHop) -> Result<(), u32> {
    if p.ttl <= 1 {
        return Err(reason::PASS_TTL_EXCEEDED);
    }
    // The IP packet must fit the MTU, and the frame the kernel's limit for
    // a redirected frame: MTU + Ethernet header + one tag.
    let tags = hop.tags.count;
    if p.len > hop.mtu || p.wire + VLAN_HLEN as u32 * tags > hop.mtu + VLAN_HLEN as u32 {
        return Err(reason::PASS_TOO_BIG);
    }
    let new_l3 = ETH_HLEN + VLAN_HLEN * tags as usize;
    let delta = p.l3 as i32 - new_l3 as i32;
    if delta != 0 && unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return Err(reason::PASS_TOO_BIG);
    }
    let Some(eth) = header::<EthHdr>(ctx, 0) else {
        return Err(reason::DROP_MALFORMED);
    };
    let eth = unsafe { &mut *eth };
    eth.dst = hop.dst_mac;
    eth.src = hop.src_mac;
    let l3_proto = if p.v6 { ETH_P_IPV6 } else { ETH_P_IP };
    if tags == 0 {
        eth.proto = l3_proto.to_be_bytes();
    } else {
        eth.proto = hop.tags.outer.to_be_bytes();
        let Some(t) = header::<VlanHdr>(ctx, ETH_HLEN) else {
            return Err(reason::DROP_MALFORMED);
        };
        let t = unsafe { &mut *t };
        t.tci = hop.tags.first.to_be_bytes();
        if tags == 1 {
            t.proto = l3_proto.to_be_bytes();
        } else {
            t.proto = ETH_P_8021Q.to_be_bytes();
            let Some(t2) = header::<VlanHdr>(ctx, ETH_HLEN + VLAN_HLEN) else {
                return Err(reason::DROP_MALFORMED);
            };
            let t2 = unsafe { &mut *t2 };
            t2.tci = hop.tags.second.to_be_bytes();
            t2.proto = l3_proto.to_be_bytes();
        }
    }
    if p.v6 {
        let Some(ip) = header::<Ipv6Hdr>(ctx, new_l3) else {
            return Err(reason::DROP_MALFORMED);
        };
        unsafe { (*ip).hop_limit -= 1 };
    } else {
        let Some(ip) = header::<Ipv4Hdr>(ctx, new_l3) else {
            return Err(reason::DROP_MALFORMED);
        };
        decrement_ttl(unsafe { &mut *ip });
    }
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
