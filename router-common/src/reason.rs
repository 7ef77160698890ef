//! Why the program did what it did: the counter index within an interface's
//! row of `IFACE_COUNTERS`, and the code the tracer reports. What the
//! program then does is the reason's row of [`TABLE`], not where its number
//! falls.
//!
//! Reasons are only ever appended: a number, once given, keeps its meaning
//! (the counters of a pinned datapath are read by it). An interface's row
//! has [`REASON_SLOTS`] counters whatever [`COUNT`] is, so that new reasons
//! do not change the size of `IFACE_COUNTERS`.
use super::action::{DROP, FORWARD, PASS, REPLY};

pub const FWD_DOWNSTREAM: u32 = 0;
pub const FWD_UPSTREAM: u32 = 1;
pub const FWD_HAIRPIN: u32 = 2;
pub const PASS_NOT_IP: u32 = 3;
pub const PASS_NOT_TO_ROUTER: u32 = 4;
pub const PASS_LOCAL: u32 = 5;
pub const PASS_TTL_EXCEEDED: u32 = 6;
pub const PASS_TOO_BIG: u32 = 7;
pub const PASS_NO_ROUTE: u32 = 8;
pub const PASS_NO_NEIGHBOR: u32 = 9;
pub const PASS_IPV6_EXTENSION: u32 = 10;
pub const PASS_LINK_LOCAL: u32 = 11;
pub const PASS_MULTICAST: u32 = 12;
pub const PASS_BROADCAST: u32 = 13;
pub const PASS_UNKNOWN_ATTACHMENT: u32 = 14;
pub const DROP_SPOOFED: u32 = 15;
pub const DROP_MALFORMED: u32 = 16;
/// An ARP request for a gateway address, answered.
pub const REPLY_ARP: u32 = 17;
/// A Neighbor Solicitation for a gateway address, answered with a
/// Neighbor Advertisement.
pub const REPLY_NEIGHBOR_ADVERT: u32 = 18;
/// A Router Solicitation, answered with a Router Advertisement.
pub const REPLY_ROUTER_ADVERT: u32 = 19;
/// An echo request to a gateway address, answered.
pub const REPLY_ECHO: u32 = 20;
/// TTL or hop limit ≤ 1: ICMP time exceeded sent back.
pub const REPLY_TIME_EXCEEDED: u32 = 21;
/// IPv4 with DF, too big for the egress: ICMP fragmentation needed sent
/// back.
pub const REPLY_FRAG_NEEDED: u32 = 22;
/// IPv6 too big for the egress: ICMPv6 packet too big sent back.
pub const REPLY_PACKET_TOO_BIG: u32 = 23;
/// An echo reply or ICMP error over the `[edge]` rate: the packet is
/// dropped, unanswered.
pub const DROP_RATE_LIMITED: u32 = 24;
/// ARP that is not answered and is nothing below: replies, ARP that is not
/// Ethernet/IPv4, ARP on uplinks.
pub const PASS_ARP: u32 = 25;
/// Gratuitous ARP (sender address = target address).
pub const PASS_ARP_GRATUITOUS: u32 = 26;
/// ARP probe (sender address 0.0.0.0).
pub const PASS_ARP_PROBE: u32 = 27;
/// An ARP request for an address that is not a gateway address.
pub const PASS_ARP_OTHER_TARGET: u32 = 28;
/// A Neighbor Solicitation for an address that is not a gateway address
/// (or not addressed to it).
pub const PASS_NDP_OTHER_TARGET: u32 = 29;
/// A Neighbor or Router Solicitation that RFC 4861 §6.1.1 / §7.1.1 says
/// to discard: hop limit not 255, code not 0, too short, an option of
/// length 0, a bad checksum, a multicast target, a source link-layer
/// option from the unspecified address, a DAD solicitation not sent to
/// the solicited-node address.
pub const DROP_NDP_INVALID: u32 = 30;
/// PPPoE discovery (0x8863: PADI, PADR, PADT...), for the daemon.
pub const PASS_PPPOE_DISCOVERY: u32 = 31;
/// A PPPoE session frame that carries no IP packet (LCP, PAP, CHAP, IPCP,
/// IPv6CP...), for the daemon.
pub const PASS_PPPOE_CONTROL: u32 = 32;
/// An IP packet in a PPPoE session frame of no session the datapath knows
/// (interface, tags, client MAC, session id), for the daemon.
pub const PASS_PPPOE_UNKNOWN_SESSION: u32 = 33;
/// A PPPoE session frame with a bad version, type or code, a length beyond
/// the frame, or an IP length that disagrees with the PPPoE length.
pub const DROP_PPPOE_MALFORMED: u32 = 34;
/// A packet to a PPPoE member whose session the datapath does not hold
/// (no `SESSION_LINES` entry): it cannot be encapsulated.
pub const DROP_PPPOE_NO_SESSION: u32 = 35;
/// Number of reasons.
pub const COUNT: u32 = 36;
/// Counters per interface in `IFACE_COUNTERS`: room for reasons to come,
/// so that adding one does not change the map's size.
pub const REASON_SLOTS: u32 = 64;

/// Every reason's [`action`](super::action) and name, one row per reason in
/// reason order (checked below at compile time), so that a new reason gets
/// its action here, by name, and no other reason's changes.
pub const TABLE: [(u32, u32, &str); COUNT as usize] = [
    (FWD_DOWNSTREAM, FORWARD, "downstream"),
    (FWD_UPSTREAM, FORWARD, "upstream"),
    (FWD_HAIRPIN, FORWARD, "hairpin"),
    (PASS_NOT_IP, PASS, "not-ip"),
    (PASS_NOT_TO_ROUTER, PASS, "not-to-router"),
    (PASS_LOCAL, PASS, "local"),
    (PASS_TTL_EXCEEDED, PASS, "ttl-exceeded"),
    (PASS_TOO_BIG, PASS, "too-big"),
    (PASS_NO_ROUTE, PASS, "no-route"),
    (PASS_NO_NEIGHBOR, PASS, "no-neighbor"),
    (PASS_IPV6_EXTENSION, PASS, "ipv6-extension"),
    (PASS_LINK_LOCAL, PASS, "link-local"),
    (PASS_MULTICAST, PASS, "multicast"),
    (PASS_BROADCAST, PASS, "broadcast"),
    (PASS_UNKNOWN_ATTACHMENT, PASS, "unknown-attachment"),
    (DROP_SPOOFED, DROP, "spoofed"),
    (DROP_MALFORMED, DROP, "malformed"),
    (REPLY_ARP, REPLY, "arp-reply"),
    (REPLY_NEIGHBOR_ADVERT, REPLY, "neighbor-advert"),
    (REPLY_ROUTER_ADVERT, REPLY, "router-advert"),
    (REPLY_ECHO, REPLY, "echo-reply"),
    (REPLY_TIME_EXCEEDED, REPLY, "time-exceeded"),
    (REPLY_FRAG_NEEDED, REPLY, "frag-needed"),
    (REPLY_PACKET_TOO_BIG, REPLY, "packet-too-big"),
    (DROP_RATE_LIMITED, DROP, "rate-limited"),
    (PASS_ARP, PASS, "arp"),
    (PASS_ARP_GRATUITOUS, PASS, "arp-gratuitous"),
    (PASS_ARP_PROBE, PASS, "arp-probe"),
    (PASS_ARP_OTHER_TARGET, PASS, "arp-other-target"),
    (PASS_NDP_OTHER_TARGET, PASS, "ndp-other-target"),
    (DROP_NDP_INVALID, DROP, "ndp-invalid"),
    (PASS_PPPOE_DISCOVERY, PASS, "pppoe-discovery"),
    (PASS_PPPOE_CONTROL, PASS, "pppoe-control"),
    (PASS_PPPOE_UNKNOWN_SESSION, PASS, "pppoe-unknown-session"),
    (DROP_PPPOE_MALFORMED, DROP, "pppoe-malformed"),
    (DROP_PPPOE_NO_SESSION, DROP, "pppoe-no-session"),
];

/// `(action, reason)` names, as the metrics and the tracer spell them:
/// [`TABLE`]'s, indexed by reason.
pub const NAMES: [(&str, &str); COUNT as usize] = names();

/// The reasons whose action is `action`, as a mask (bit `r` for reason
/// `r`): the program tests a reason's bit in a constant, with no memory
/// access.
pub const fn with_action(action: u32) -> u64 {
    let mut mask = 0;
    let mut r = 0;
    while r < TABLE.len() {
        if TABLE[r].1 == action {
            mask |= 1 << r;
        }
        r += 1;
    }
    mask
}

const fn names() -> [(&'static str, &'static str); COUNT as usize] {
    let mut names = [("", ""); COUNT as usize];
    let mut r = 0;
    while r < TABLE.len() {
        names[r] = (super::action::name(TABLE[r].1), TABLE[r].2);
        r += 1;
    }
    names
}

// Row `r` is reason `r` (so each of the `COUNT` reasons has exactly one
// row), and its action is one of the four.
const _: () = {
    let mut r = 0;
    while r < TABLE.len() {
        assert!(
            TABLE[r].0 == r as u32,
            "reason::TABLE: row r must be reason r"
        );
        let a = TABLE[r].1;
        assert!(
            a == FORWARD || a == PASS || a == DROP || a == REPLY,
            "reason::TABLE: unknown action"
        );
        r += 1;
    }
};
// Every reason has a bit in a `with_action` mask, and a counter in its
// interface's row.
const _: () = assert!(COUNT <= u64::BITS);
const _: () = assert!(COUNT <= REASON_SLOTS);
