//! The Router Advertisement collecte sends on a member's line, byte for
//! byte: the fast path's answer to a Router Solicitation, and the
//! unsolicited advertisements the daemon sends, are both built from
//! [`message`], so that they never differ.
//!
//! ```text
//! Ethernet  dst  33:33:00:00:00:01 (all-nodes), or the soliciting host's MAC
//!           src  the access interface's MAC
//!           tags the attachment's, as its frames carry them: none, C-tag
//!                (0x8100), or S-tag (0x88a8) then C-tag (0x8100)
//!           type 0x86dd
//! IPv6      version 6, traffic class 0, flow label 0
//!           payload length 32, next header 58 (ICMPv6), hop limit 255
//!           src  the access interface's link-local address (the lowest)
//!           dst  ff02::1, or the soliciting host's address
//! ICMPv6    byte  0      type 134 (Router Advertisement)
//! (32 bytes)      1      code 0
//!                 2..4   checksum (RFC 4443 §2.3, over the pseudo-header)
//!                 4      Cur Hop Limit: [edge] ra_hop_limit
//!                 5      flags: 0 (M = O = 0: no DHCPv6)
//!                 6..8   Router Lifetime: [edge] router_lifetime, seconds
//!                 8..12  Reachable Time 0 (unspecified)
//!                 12..16 Retrans Timer 0 (unspecified)
//!                 16..24 Source Link-Layer Address option: 1, 1, the MAC
//!                 24..32 MTU option: 5, 1, 0, 0, the line's MTU (line_mtu)
//! ```
//!
//! No Prefix Information option: members' prefixes are routed to them,
//! never on-link. A solicitation from the unspecified address (`::`) is
//! answered to all-nodes; any other is answered to its sender.

/// Length of the ICMPv6 message.
pub const MESSAGE_LEN: usize = 32;
/// ICMPv6 type of a Router Advertisement.
pub const TYPE: u8 = 134;
/// All-nodes multicast, ff02::1.
pub const ALL_NODES: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Its Ethernet address.
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// Hop limit of every Neighbor Discovery message (RFC 4861).
pub const HOP_LIMIT: u8 = 255;

/// The MTU of a member's line: the largest IP packet the fast path
/// forwards to it. The kernel accepts a redirected frame of MTU + 14 + 4
/// bytes: one tag fits within the interface's MTU, two take 4 bytes of it.
pub const fn line_mtu(iface_mtu: u32, tags: u32) -> u32 {
    if tags >= 2 {
        iface_mtu.saturating_sub(4 * (tags - 1))
    } else {
        iface_mtu
    }
}

/// The ICMPv6 message of the Router Advertisement, checksum zero (see
/// [`checksum`]).
pub const fn message(hop_limit: u8, lifetime: u16, mac: [u8; 6], mtu: u32) -> [u8; MESSAGE_LEN] {
    let l = lifetime.to_be_bytes();
    let m = mtu.to_be_bytes();
    [
        TYPE, 0, 0, 0, hop_limit, 0, l[0], l[1], 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, mac[0], mac[1],
        mac[2], mac[3], mac[4], mac[5], 5, 1, 0, 0, m[0], m[1], m[2], m[3],
    ]
}

/// The ICMPv6 checksum of `message` from `src` to `dst`, to write at bytes
/// 2..4 (big-endian).
pub const fn checksum(src: &[u8; 16], dst: &[u8; 16], message: &[u8; MESSAGE_LEN]) -> u16 {
    let mut sum: u32 = MESSAGE_LEN as u32 + 58;
    let mut i = 0;
    while i < 16 {
        sum += ((src[i] as u32) << 8) | src[i + 1] as u32;
        sum += ((dst[i] as u32) << 8) | dst[i + 1] as u32;
        i += 2;
    }
    let mut i = 0;
    while i < MESSAGE_LEN {
        if i != 2 {
            sum += ((message[i] as u32) << 8) | message[i + 1] as u32;
        }
        i += 2;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_mtus() {
        assert_eq!(line_mtu(1500, 0), 1500);
        assert_eq!(line_mtu(1500, 1), 1500);
        assert_eq!(line_mtu(1500, 2), 1496);
    }

    #[test]
    fn the_checksum_verifies() {
        let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut m = message(64, 1800, [2, 0, 0, 0, 0, 0x20], 1496);
        let c = checksum(&src, &ALL_NODES, &m).to_be_bytes();
        m[2] = c[0];
        m[3] = c[1];
        // Summing everything, checksum included, gives 0xffff.
        let mut sum: u32 = 32 + 58;
        for w in src.chunks(2).chain(ALL_NODES.chunks(2)).chain(m.chunks(2)) {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        assert_eq!(&m[24..32], &[5, 1, 0, 0, 0, 0, 0x05, 0xd8]);
    }
}
