//! Test-only tc classifiers (clsact, direct action) that make a Linux IP
//! stack a tagged member of an access link, since this kernel has no 802.1Q
//! module to terminate tags:
//!
//! - `vlan_push` (egress): pushes the member's C-tag (0x8100, `C_VLAN`),
//!   then, if `S_VLAN` is set, its S-tag (0x88a8) outside it. With no tag
//!   configured (an untagged member) frames leave as they are.
//! - `vlan_pop` (ingress): passes only frames carrying exactly the member's
//!   tags (none for an untagged member), after popping them; drops every
//!   other frame (untagged frames of a tagged member, other or more tags).
//!
//! The kernel moves a received frame's outer tag into the skb's metadata
//! (`skb_vlan_untag`, before tc ingress), so the outer tag is read from
//! `__sk_buff.vlan_proto`/`vlan_tci` when `vlan_present` is set, from the
//! frame otherwise; the inner ones from the frame. `COUNTS` records which
//! case each accepted frame was. `bpf_skb_vlan_pop` removes the metadata tag
//! first, then the tags in the data.
//!
//! `tag_probe` (XDP) counts the frames an interface receives by the tags in
//! their data, which is what the router's native XDP program sees.
//!
//! `S_VLAN` and `C_VLAN` are read-only globals that the loader
//! (`tests::vlan_tc`) sets for each attachment: one load per member.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    helpers::{bpf_skb_vlan_pop, bpf_skb_vlan_push},
    macros::{classifier, map, xdp},
    maps::{PerCpuArray, PerCpuHashMap},
    programs::{TcContext, XdpContext},
};
use tests_ebpf::{
    ACCEPTED, DROP_OTHER, DROP_UNTAGGED, ETH_P_8021AD, ETH_P_8021Q, ETH_P_QINQ1, N_COUNTS,
    OUTER_IN_DATA, OUTER_IN_META, POP_FAILED, PROBE_ENTRIES, PUSH_FAILED, PUSHED, probe_key,
};

/// The member's S-tag (802.1ad, outer) VLAN id; 0: none.
#[unsafe(no_mangle)]
static S_VLAN: u16 = 0;
/// The member's C-tag (802.1Q) VLAN id; 0: untagged member.
#[unsafe(no_mangle)]
static C_VLAN: u16 = 0;

#[map]
static COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(N_COUNTS, 0);

#[map]
static PROBE_SEEN: PerCpuHashMap<u64, u64> = PerCpuHashMap::with_max_entries(PROBE_ENTRIES, 0);

fn count(i: u32) {
    if let Some(p) = COUNTS.get_ptr_mut(i) {
        unsafe { *p += 1 };
    }
}

/// A tag as (TPID, VLAN id), host order.
type Tag = (u16, u16);

/// The member's tags, outer first: none, the C-tag, or the S- and C-tags.
fn member_tags() -> (Option<Tag>, Option<Tag>) {
    // Volatile: the loader rewrites the values, the compiler must not fold
    // the initial zeros.
    let s = unsafe { core::ptr::read_volatile(&S_VLAN) };
    let c = unsafe { core::ptr::read_volatile(&C_VLAN) };
    match (s, c) {
        (_, 0) => (None, None),
        (0, c) => (Some((ETH_P_8021Q, c)), None),
        (s, c) => (Some((ETH_P_8021AD, s)), Some((ETH_P_8021Q, c))),
    }
}

fn is_tpid(t: u16) -> bool {
    t == ETH_P_8021Q || t == ETH_P_8021AD || t == ETH_P_QINQ1
}

/// The tag at `off` in the frame, if a TPID is there. (Straight-line
/// code: the verifier refuses a stack array indexed in a loop here.)
fn tag_at(ctx: &TcContext, off: usize) -> Option<Tag> {
    let tpid = u16::from_be(ctx.load::<u16>(off).ok()?);
    if !is_tpid(tpid) {
        return None;
    }
    let tci = u16::from_be(ctx.load::<u16>(off + 2).ok()?);
    Some((tpid, tci & 0x0fff))
}

#[classifier]
pub fn vlan_push(ctx: TcContext) -> i32 {
    let skb: *mut __sk_buff = ctx.skb.skb;
    let (outer, inner) = member_tags();
    // Inner first: a push moves a tag already in the metadata into the
    // frame, then puts the new one in the metadata.
    let Some(outer) = outer else {
        return TC_ACT_OK;
    };
    let push = |(tpid, vid): Tag| unsafe { bpf_skb_vlan_push(skb, tpid.to_be(), vid) } == 0;
    if inner.is_some_and(|t| !push(t)) || !push(outer) {
        count(PUSH_FAILED);
        return TC_ACT_SHOT;
    }
    count(PUSHED);
    TC_ACT_OK
}

#[classifier]
pub fn vlan_pop(ctx: TcContext) -> i32 {
    let skb: *mut __sk_buff = ctx.skb.skb;
    let want = member_tags();

    // The frame's first three tags, outer first: the outer one from the
    // metadata if the kernel put it there, the others from the data.
    let in_meta = unsafe { (*skb).vlan_present } != 0;
    let (first, off) = if in_meta {
        let (proto, tci) = unsafe { ((*skb).vlan_proto, (*skb).vlan_tci) };
        (Some((u16::from_be(proto as u16), tci as u16 & 0x0fff)), 12)
    } else {
        (tag_at(&ctx, 12), 16)
    };
    let second = first.and_then(|_| tag_at(&ctx, off));
    let third = second.and_then(|_| tag_at(&ctx, off + 4));

    if (first, second) != want || third.is_some() {
        count(if first.is_none() {
            DROP_UNTAGGED
        } else {
            DROP_OTHER
        });
        return TC_ACT_SHOT;
    }
    let pop = || unsafe { bpf_skb_vlan_pop(skb) } == 0;
    if (want.0.is_some() && !pop()) || (want.1.is_some() && !pop()) {
        count(POP_FAILED);
        return TC_ACT_SHOT;
    }
    count(ACCEPTED);
    if want.0.is_some() {
        count(if in_meta {
            OUTER_IN_META
        } else {
            OUTER_IN_DATA
        });
    }
    TC_ACT_OK
}

/// The tag at `off` in an XDP frame, if a TPID is there.
fn xdp_tag_at(ctx: &XdpContext, off: usize) -> Option<Tag> {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + off + 4 > end {
        return None;
    }
    let p = (data + off) as *const u8;
    let tpid = u16::from_be_bytes(unsafe { [*p, *p.add(1)] });
    if !is_tpid(tpid) {
        return None;
    }
    let vid = u16::from_be_bytes(unsafe { [*p.add(2), *p.add(3)] }) & 0x0fff;
    Some((tpid, vid))
}

#[xdp]
pub fn tag_probe(ctx: XdpContext) -> u32 {
    let first = xdp_tag_at(&ctx, 12);
    let second = first.and_then(|_| xdp_tag_at(&ctx, 16));
    let third = second.and_then(|_| xdp_tag_at(&ctx, 20));
    let n = first.is_some() as u64 + second.is_some() as u64 + third.is_some() as u64;
    let key = probe_key(n, [first.unwrap_or((0, 0)), second.unwrap_or((0, 0))]);
    match PROBE_SEEN.get_ptr_mut(&key) {
        Some(c) => unsafe { *c += 1 },
        None => {
            let _ = PROBE_SEEN.insert(&key, &1, 0);
        }
    }
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
