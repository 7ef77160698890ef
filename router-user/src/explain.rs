//! `collecte trace --explain`: the steps the program recorded for a packet
//! ([`TraceVerdict::steps`] and the values beside them), said in plain
//! words. Every decision comes from the record; the frame and the members
//! only supply names (addresses, member ids, prefixes, attachments), so
//! that the words cannot disagree with what the program did.
use std::{collections::BTreeMap, net::IpAddr};

use etherparse::{NetSlice, SlicedPacket};
use ipnet::IpNet;
use router_common::{NO_MEMBER, TraceVerdict, action, reason, route, step};
use router_core::member::Member;

/// What the explanation names things with.
#[derive(Debug, Default)]
pub struct Names {
    /// Interface names by slot.
    pub ifaces: BTreeMap<u32, String>,
    /// Members by slot, when the tracer knows them (a live daemon's
    /// members provisioned through the API are known by id only).
    pub members: BTreeMap<u32, Member>,
    /// Member ids by slot.
    pub member_ids: BTreeMap<u32, String>,
}

/// One plain sentence per reason: what it means and why the action.
/// Indexed by reason; [`describe`] falls back for an unknown code.
pub const REASONS: [&str; reason::COUNT as usize] = [
    "a packet from an uplink to a member's prefix: forwarded to the member's line",
    "a member's packet to an address outside every member's prefix: forwarded to the uplink",
    "a member's packet to another member's prefix: forwarded to that member's line",
    "neither IPv4, IPv6 nor ARP: the kernel's to handle",
    "its Ethernet destination is not this interface's MAC: not a packet for the router to forward",
    "addressed to one of the router's own addresses: the kernel answers it",
    "its TTL or hop limit would reach 0, and the fast path sends no error for it (about an ICMP error, a later fragment, a non-unicast source, no address on the interface, or icmp_rate 0): the kernel's",
    "it does not fit the egress MTU: IPv4 without DF, which the kernel fragments, or a packet the fast path sends no error for",
    "no member's prefix holds the destination: the kernel routes it",
    "the next hop's MAC is not known yet: the kernel resolves it",
    "an IPv6 hop-by-hop options header: the kernel processes it",
    "a link-local address: link-local traffic is the kernel's",
    "a multicast destination: the kernel's",
    "a broadcast destination: the kernel's",
    "it came from an interface or tags where no member lives (or an uplink with unexpected tags): the kernel's",
    "its source is not the member's that is attached where it came in: dropped and counted against that attachment's member",
    "headers cut short or inconsistent: dropped",
    "an ARP request for the gateway from the member attached there: answered with the interface's MAC, out of the way it came, tags kept",
    "a Neighbor Solicitation for a gateway address: answered with a Neighbor Advertisement (router, solicited, override; target link-layer address)",
    "a Router Solicitation: answered with a Router Advertisement from the link-local gateway (lifetime, source link-layer address, the line's MTU)",
    "an echo request to a gateway address from a member: answered with the echo reply",
    "its TTL or hop limit would reach 0: the fast path sends the ICMP time exceeded back, from the ingress interface's address",
    "IPv4 with DF that does not fit the egress MTU: the fast path sends fragmentation needed with the MTU back",
    "IPv6 that does not fit the egress MTU: the fast path sends packet too big with the MTU back",
    "an echo reply or ICMP error over [edge] icmp_rate: dropped, unanswered",
    "ARP the fast path does not answer (a reply, not Ethernet/IPv4, on an uplink): the kernel's",
    "gratuitous ARP (sender = target): not answered, the kernel's",
    "an ARP probe (sender 0.0.0.0): not answered, the kernel's",
    "an ARP request for an address that is not a gateway of this interface: the kernel's",
    "a Neighbor Solicitation for an address that is not a gateway of this interface: the kernel's",
    "a Neighbor or Router Solicitation RFC 4861 says to discard (hop limit not 255, bad checksum, bad option, ...): dropped",
    "PPPoE discovery (PADI, PADR, PADT...): the daemon's to answer",
    "a PPPoE session frame that carries no IP packet (LCP, PAP, CHAP, IPCP, IPv6CP...): the daemon's, unchanged",
    "an IP packet in a PPPoE session the datapath does not know (interface, tags, client MAC, session id): the daemon's, unchanged",
    "a PPPoE session frame with a bad version, type or code, a length beyond the frame, or an IP length that disagrees with it: dropped",
    "a packet to a PPPoE member whose session the datapath does not hold: it cannot be put in a session, dropped",
];

/// The sentence for reason `r`.
pub fn describe(r: u32) -> &'static str {
    REASONS
        .get(r as usize)
        .copied()
        .unwrap_or("a reason this tracer does not know (is the program newer?)")
}

/// The XDP action's name as the kernel spells it.
fn xdp_name(a: u32) -> &'static str {
    match a {
        action::FORWARD => "XDP_REDIRECT",
        action::PASS => "XDP_PASS",
        action::DROP => "XDP_DROP",
        action::REPLY => "XDP_TX",
        _ => "XDP_ABORTED",
    }
}

/// The addresses of the frame the program was given, for naming (a PPPoE
/// session frame's: of the IP packet it carries).
fn addresses(frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let p = match session_ip(frame) {
        Some(ip) => SlicedPacket::from_ip(ip).ok()?,
        None => SlicedPacket::from_ethernet(frame).ok()?,
    };
    match p.net? {
        NetSlice::Ipv4(ip) => Some((
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        )),
        NetSlice::Ipv6(ip) => Some((
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        )),
    }
}

/// The IP packet in a PPPoE session frame (after 0 to 2 tags), if it is
/// one.
fn session_ip(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let t = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match t {
            0x8100 | 0x88a8 | 0x9100 if at < 20 => at += 4,
            router_common::pppoe::ETH_P_PPPOE_SESSION => return frame.get(at + 2 + 8..),
            _ => return None,
        }
    }
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn tags(count: u8, first: u16, second: u16) -> String {
    match count {
        0 => "untagged".to_string(),
        1 => format!("802.1Q tag {first}"),
        _ => format!("QinQ S-tag {first}, C-tag {second}"),
    }
}

impl Names {
    fn iface(&self, slot: u32) -> String {
        self.ifaces
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| format!("interface slot {slot}"))
    }

    fn member(&self, slot: u32) -> String {
        self.member_ids
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| format!("member slot {slot}"))
    }

    /// "member ID (prefix P)": the member's prefix that holds `addr`, when
    /// the tracer knows the member's prefixes.
    fn member_with_prefix(&self, slot: u32, addr: Option<IpAddr>) -> String {
        let name = self.member(slot);
        let prefix = addr.and_then(|a| {
            self.members
                .get(&slot)?
                .prefixes
                .iter()
                .filter(|p: &&IpNet| p.contains(&a))
                .max_by_key(|p| p.prefix_len())
                .copied()
        });
        match prefix {
            Some(p) => format!("member {name}'s prefix {p}"),
            None => format!("a prefix of member {name}"),
        }
    }

    /// Where member `slot` is attached, when known.
    fn attachment(&self, slot: u32) -> Option<String> {
        let m = self.members.get(&slot)?;
        let t = match (m.s_vlan, m.c_vlan) {
            (Some(s), Some(c)) => tags(2, s, c),
            (None, Some(c)) => tags(1, c, 0),
            _ => tags(0, 0, 0),
        };
        Some(format!("{} {t}", m.interface))
    }

    /// What the prefix table's answer `leaf` says about `addr`.
    fn leaf(&self, leaf: u32, addr: Option<IpAddr>) -> String {
        match leaf {
            route::EMPTY => "in no member's prefix".to_string(),
            route::LOCAL => "an address of this router".to_string(),
            l => format!("in {}", self.member_with_prefix(l - 1, addr)),
        }
    }

    /// The steps of one traced packet, one sentence per line: `ingress` is
    /// the interface it was given on, `frame` the frame as given, `v` the
    /// program's record and `act` the action it returned.
    pub fn explain(&self, ingress: &str, frame: &[u8], v: &TraceVerdict, act: u32) -> Vec<String> {
        let mut out = Vec::new();
        let s = |bit: u32| v.steps & bit != 0;
        let addrs = addresses(frame);
        let (src, dst) = match addrs {
            Some((s, d)) => (Some(s), Some(d)),
            None => (None, None),
        };
        if s(step::PARSED) {
            let ttl = if v.family == 6 { "hop limit" } else { "TTL" };
            let flow = match addrs {
                Some((s, d)) => format!(" {s} → {d}"),
                None => String::new(),
            };
            out.push(format!(
                "headers: Ethernet, {}, IPv{}{flow}, {} bytes, {ttl} {}",
                tags(
                    v.tags,
                    if v.tags == 2 { v.s_vlan } else { v.c_vlan },
                    v.c_vlan
                ),
                v.family,
                v.len,
                v.ttl
            ));
        } else {
            out.push(format!(
                "headers: not parsed as a packet to forward ({} bytes on {ingress})",
                frame.len()
            ));
        }
        if s(step::FROM_UPLINK) {
            out.push(format!(
                "ingress: {ingress}, an uplink: the destination decides"
            ));
        } else if s(step::FROM_ACCESS) {
            out.push(format!(
                "ingress: {ingress}, an access interface: the source must be a member attached here"
            ));
        }
        if s(step::SRC_LOOKUP) {
            let a = src.map_or_else(|| "the source".to_string(), |a| a.to_string());
            out.push(format!("source {a}: {}", self.leaf(v.src_leaf, src)));
            let sender = match v.src_leaf {
                route::EMPTY | route::LOCAL => None,
                l => Some(l - 1),
            };
            if s(step::SRC_WRONG_ATTACHMENT) {
                out.push(match sender {
                    Some(m) => format!(
                        "source check failed: member {} is attached to {}, not where this frame came in",
                        self.member(m),
                        self.attachment(m)
                            .unwrap_or_else(|| "another attachment".to_string())
                    ),
                    None => "source check failed: the source belongs to no member".to_string(),
                });
            }
            if s(step::SRC_MAC_CHECKED) {
                let who = sender.map_or_else(String::new, |m| self.member(m));
                out.push(if s(step::SRC_MAC_MISMATCH) {
                    format!(
                        "source check failed: the frame's source MAC is not member {who}'s configured MAC"
                    )
                } else {
                    format!("MAC check passed: the frame's source MAC is member {who}'s")
                });
            }
            if s(step::SRC_OK)
                && let Some(m) = sender
            {
                out.push(format!(
                    "source check passed: the packet is member {}'s, from its own line",
                    self.member(m)
                ));
            }
        }
        if s(step::DST_LOOKUP) {
            let a = dst.map_or_else(|| "the destination".to_string(), |a| a.to_string());
            out.push(format!("destination {a}: {}", self.leaf(v.dst_leaf, dst)));
        }
        if s(step::HOP) {
            out.push(format!(
                "next hop: out of {}, {}, MTU {}, to {} from {}",
                self.iface(v.egress),
                tags(v.hop_tags, v.hop_first, v.hop_second),
                v.hop_mtu,
                mac(&v.hop_dst_mac),
                mac(&v.hop_src_mac)
            ));
            if s(step::REWRITTEN) {
                let ttl = if v.family == 6 { "hop limit" } else { "TTL" };
                let from_tags = tags(
                    v.tags,
                    if v.tags == 2 { v.s_vlan } else { v.c_vlan },
                    v.c_vlan,
                );
                let to_tags = tags(v.hop_tags, v.hop_first, v.hop_second);
                let retag = if from_tags == to_tags {
                    format!("tags kept ({to_tags})")
                } else {
                    format!("{from_tags} → {to_tags}")
                };
                out.push(format!(
                    "rewritten: Ethernet addresses as above, {retag}, {ttl} {} → {}{}",
                    v.ttl,
                    v.ttl.saturating_sub(1),
                    if v.family == 4 {
                        ", IPv4 checksum updated"
                    } else {
                        ""
                    }
                ));
            } else {
                out.push("not rewritten: the frame was left as it came".to_string());
            }
        }
        if s(step::PPPOE_DECAP) {
            out.push(
                "PPPoE: a frame of a known session, its IP packet taken out of the PPPoE and PPP headers (padding trimmed)"
                    .to_string(),
            );
        }
        if s(step::PPPOE_ENCAP) {
            out.push(
                "PPPoE: put in the member's session (ethertype 0x8864, its session id, PPPoE length = IP length + 2)"
                    .to_string(),
            );
        }
        if s(step::MSS_CLAMPED) {
            out.push(
                "TCP SYN: its MSS lowered to the session's MRU less the IP and TCP headers, TCP checksum updated"
                    .to_string(),
            );
        }
        if v.from != NO_MEMBER && v.reason == reason::DROP_SPOOFED {
            out.push(format!(
                "counted as spoofed for member {}",
                self.member(v.from)
            ));
        }
        let (_, name) = reason::NAMES
            .get(v.reason as usize)
            .copied()
            .unwrap_or(("unknown", "unknown"));
        out.push(format!(
            "{} ({}), reason {name}: {}",
            action::name(act),
            xdp_name(act),
            describe(v.reason)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_sentence() {
        // REASONS is sized by reason::COUNT, so a new reason fails to build
        // until it has one; none may be empty or repeated.
        for (r, text) in REASONS.iter().enumerate() {
            assert!(!text.is_empty(), "reason {r} has no sentence");
            assert_eq!(
                REASONS.iter().filter(|t| t == &text).count(),
                1,
                "reason {r}'s sentence is repeated"
            );
        }
        assert_eq!(
            describe(reason::DROP_SPOOFED),
            REASONS[reason::DROP_SPOOFED as usize]
        );
        assert!(describe(reason::COUNT).contains("does not know"));
    }

    #[test]
    fn a_session_frame_is_named_by_the_packet_it_carries() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 7, 0x88, 0x64]);
        f.extend_from_slice(&[0x11, 0, 0, 1, 0, 22, 0, 0x21]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[3] = 20;
        ip[8] = 64;
        ip[12..16].copy_from_slice(&[198, 51, 100, 40]);
        ip[16..20].copy_from_slice(&[8, 8, 8, 8]);
        f.extend_from_slice(&ip);
        let (src, dst) = addresses(&f).expect("the session's IP packet");
        assert_eq!(
            (src.to_string(), dst.to_string()),
            ("198.51.100.40".to_string(), "8.8.8.8".to_string())
        );
    }

    #[test]
    fn an_unparsed_frame_says_so_and_why() {
        let v = TraceVerdict {
            reason: reason::PASS_NOT_IP,
            ..TraceVerdict::default()
        };
        let lines = Names::default().explain("acc0", &[0u8; 42], &v, action::PASS);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("not parsed"), "{lines:?}");
        assert!(
            lines[1].starts_with("pass (XDP_PASS), reason not-ip"),
            "{lines:?}"
        );
    }
}
