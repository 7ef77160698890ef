//! DHCPv6 prefix delegation over a session (RFC 8415): the client's
//! messages to ff02::1:2 (UDP 546 → 547) in the session's IPv6 packets,
//! and our answers from our link-local address, with the session's
//! Delegated-IPv6-Prefix as IA_PD and a DUID-LL from the port MAC.
//!
//! A small codec of its own: the messages are a type, a transaction id and
//! type-length-value options, and the server needs a dozen of them.
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

/// Message types.
pub const SOLICIT: u8 = 1;
pub const ADVERTISE: u8 = 2;
pub const REQUEST: u8 = 3;
pub const CONFIRM: u8 = 4;
pub const RENEW: u8 = 5;
pub const REBIND: u8 = 6;
pub const REPLY: u8 = 7;
pub const RELEASE: u8 = 8;
pub const INFORMATION_REQUEST: u8 = 11;
/// Options.
pub const OPT_CLIENTID: u16 = 1;
pub const OPT_SERVERID: u16 = 2;
pub const OPT_IA_NA: u16 = 3;
pub const OPT_STATUS_CODE: u16 = 13;
pub const OPT_RAPID_COMMIT: u16 = 14;
pub const OPT_IA_PD: u16 = 25;
pub const OPT_IAPREFIX: u16 = 26;
/// Status codes.
pub const STATUS_SUCCESS: u16 = 0;
pub const STATUS_NO_ADDRS_AVAIL: u16 = 2;
pub const STATUS_NO_PREFIX_AVAIL: u16 = 6;
/// Ports.
pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers.
pub const SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Lifetimes of delegated prefixes (s): T1, T2, preferred, valid.
pub const T1: u32 = 1800;
pub const T2: u32 = 2880;
pub const PREFERRED: u32 = 3600;
pub const VALID: u32 = 7200;

/// A DHCPv6 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub msg_type: u8,
    pub xid: [u8; 3],
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Message {
    /// Reads a message (a UDP payload).
    pub fn parse(b: &[u8]) -> Option<Message> {
        if b.len() < 4 {
            return None;
        }
        Some(Message {
            msg_type: b[0],
            xid: [b[1], b[2], b[3]],
            options: parse_options(&b[4..])?,
        })
    }

    pub fn get(&self, code: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| &v[..])
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.msg_type, self.xid[0], self.xid[1], self.xid[2]];
        out.extend_from_slice(&encode_options(&self.options));
        out
    }
}

/// Reads type-length-value options.
pub fn parse_options(mut b: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let code = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let len = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize;
        out.push((code, b.get(4..4 + len)?.to_vec()));
        b = &b[4 + len..];
    }
    Some(out)
}

pub fn encode_options(opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (c, v) in opts {
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The DUID-LL of `mac` (RFC 8415 11.4: type 3, hardware type 1).
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

/// An IPv6 packet carrying UDP, as received in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp6<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// Reads an IPv6 packet with a UDP datagram right after the fixed header.
pub fn parse_udp6(ip: &[u8]) -> Option<Udp6<'_>> {
    if ip.len() < 48 || ip[0] >> 4 != 6 || ip[6] != 17 {
        return None;
    }
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let udp = ip.get(40..40 + plen)?;
    let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if ulen < 8 || ulen > udp.len() {
        return None;
    }
    let src: [u8; 16] = ip[8..24].try_into().ok()?;
    let dst: [u8; 16] = ip[24..40].try_into().ok()?;
    Some(Udp6 {
        src: src.into(),
        dst: dst.into(),
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        payload: &udp[8..ulen],
    })
}

/// The one's complement sum of `b` added to `sum`.
fn sum16(mut sum: u32, b: &[u8]) -> u32 {
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

/// An IPv6 packet (hop limit `hops`) carrying a UDP datagram, checksum
/// computed.
pub fn udp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    hops: u8,
    data: &[u8],
) -> Vec<u8> {
    let ulen = (8 + data.len()) as u16;
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&ulen.to_be_bytes());
    p.push(17);
    p.push(hops);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&ulen.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    // Pseudo-header: addresses, length, next header; then the datagram.
    let mut s = sum16(0, &p[8..40]);
    s += u32::from(ulen) + 17;
    s = sum16(s, &p[40..]);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    let mut c = !(s as u16);
    if c == 0 {
        c = 0xffff;
    }
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

/// Is the UDP checksum of IPv6 packet `ip` right?
pub fn udp6_checksum_ok(ip: &[u8]) -> bool {
    let Some(u) = parse_udp6(ip) else {
        return false;
    };
    let ulen = 8 + u.payload.len();
    let mut s = sum16(0, &ip[8..40]);
    s += ulen as u32 + 17;
    s = sum16(s, &ip[40..40 + ulen]);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

fn status(code: u16, msg: &str) -> (u16, Vec<u8>) {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(msg.as_bytes());
    (OPT_STATUS_CODE, v)
}

/// Our answer to a client's `msg`, or None when it is not for us (a
/// Request or Renew naming another server, a message a server does not
/// answer).
pub fn answer(msg: &Message, server_duid: &[u8], delegated: Option<Ipv6Net>) -> Option<Message> {
    let client = msg.get(OPT_CLIENTID)?;
    let named = msg.get(OPT_SERVERID);
    let rapid = msg.get(OPT_RAPID_COMMIT).is_some();
    let msg_type = match msg.msg_type {
        SOLICIT if named.is_none() => {
            if rapid {
                REPLY
            } else {
                ADVERTISE
            }
        }
        REQUEST | RENEW | RELEASE if named == Some(server_duid) => REPLY,
        REBIND if named.is_none() => REPLY,
        INFORMATION_REQUEST if named.is_none_or(|n| n == server_duid) => REPLY,
        _ => return None,
    };
    let mut options = vec![
        (OPT_CLIENTID, client.to_vec()),
        (OPT_SERVERID, server_duid.to_vec()),
    ];
    if msg.msg_type == SOLICIT && rapid {
        options.push((OPT_RAPID_COMMIT, Vec::new()));
    }
    if msg.msg_type == RELEASE {
        options.push(status(STATUS_SUCCESS, "released"));
        return Some(Message {
            msg_type,
            xid: msg.xid,
            options,
        });
    }
    for (code, value) in &msg.options {
        let Some(iaid) = value.get(..4) else { continue };
        match *code {
            OPT_IA_PD => {
                let mut ia = iaid.to_vec();
                match delegated {
                    Some(p) => {
                        ia.extend_from_slice(&T1.to_be_bytes());
                        ia.extend_from_slice(&T2.to_be_bytes());
                        let mut pfx = PREFERRED.to_be_bytes().to_vec();
                        pfx.extend_from_slice(&VALID.to_be_bytes());
                        pfx.push(p.prefix_len());
                        pfx.extend_from_slice(&p.network().octets());
                        ia.extend_from_slice(&encode_options(&[(OPT_IAPREFIX, pfx)]));
                    }
                    None => {
                        ia.extend_from_slice(&[0; 8]);
                        ia.extend_from_slice(&encode_options(&[status(
                            STATUS_NO_PREFIX_AVAIL,
                            "no prefix for this session",
                        )]));
                    }
                }
                options.push((OPT_IA_PD, ia));
            }
            OPT_IA_NA => {
                let mut ia = iaid.to_vec();
                ia.extend_from_slice(&[0; 8]);
                ia.extend_from_slice(&encode_options(&[status(
                    STATUS_NO_ADDRS_AVAIL,
                    "no addresses: use the advertised prefix",
                )]));
                options.push((OPT_IA_NA, ia));
            }
            _ => {}
        }
    }
    Some(Message {
        msg_type,
        xid: msg.xid,
        options,
    })
}

/// fe80:: with interface identifier `ifid`.
pub fn link_local(ifid: u64) -> Ipv6Addr {
    Ipv6Addr::from((0xfe80u128 << 112) | u128::from(ifid))
}

/// What [`serve`] made of an IPv6 packet of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Not DHCPv6 to the servers' address.
    NotDhcp,
    /// DHCPv6 that cannot be read.
    Malformed,
    /// DHCPv6 a server leaves unanswered (another server named...).
    NotForUs,
    /// The answer: an IPv6 packet from our link-local address.
    Reply(Vec<u8>),
}

/// Answers a client's DHCPv6 message in IPv6 packet `ip`, as the server
/// of DUID-LL `mac` at fe80::`our_ifid`, delegating `delegated`.
pub fn serve(ip: &[u8], mac: [u8; 6], our_ifid: u64, delegated: Option<Ipv6Net>) -> Served {
    let Some(u) = parse_udp6(ip) else {
        return Served::NotDhcp;
    };
    if u.dst != SERVERS || u.dst_port != SERVER_PORT {
        return Served::NotDhcp;
    }
    let Some(msg) = Message::parse(u.payload) else {
        return Served::Malformed;
    };
    let Some(ans) = answer(&msg, &duid_ll(mac), delegated) else {
        return Served::NotForUs;
    };
    Served::Reply(udp6(
        link_local(our_ifid),
        u.src,
        SERVER_PORT,
        u.src_port,
        64,
        &ans.encode(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];

    fn solicit(rapid: bool) -> Message {
        let mut options = vec![
            (OPT_CLIENTID, vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
            (OPT_IA_PD, vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]),
        ];
        if rapid {
            options.push((OPT_RAPID_COMMIT, Vec::new()));
        }
        Message {
            msg_type: SOLICIT,
            xid: [1, 2, 3],
            options,
        }
    }

    #[test]
    fn a_solicit_gets_an_advertise_with_the_delegated_prefix_byte_exact() {
        let s = solicit(false);
        let bytes = s.encode();
        assert_eq!(Message::parse(&bytes).unwrap(), s);
        let p: Ipv6Net = "2001:db8:100::/56".parse().unwrap();
        let a = answer(&s, &duid_ll(MAC), Some(p)).unwrap();
        let want: Vec<u8> = [
            &[ADVERTISE, 1, 2, 3][..],
            &[0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
            &[0, 2, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa],
            &[0, 25, 0, 41, 0, 0, 0, 7, 0, 0, 0x07, 0x08, 0, 0, 0x0b, 0x40],
            &[0, 26, 0, 25, 0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20, 56],
            &[
                0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ]
        .concat();
        assert_eq!(a.encode(), want);
        // Rapid commit: a Reply at once, saying so.
        let r = answer(&solicit(true), &duid_ll(MAC), Some(p)).unwrap();
        assert_eq!(r.msg_type, REPLY);
        assert!(r.get(OPT_RAPID_COMMIT).is_some());
        // No prefix: NoPrefixAvail inside the IA_PD.
        let n = answer(&s, &duid_ll(MAC), None).unwrap();
        let ia = n.get(OPT_IA_PD).unwrap();
        assert_eq!(&ia[12..18], &[0, 13, 0, 28, 0, 6]);
    }

    #[test]
    fn a_request_is_answered_only_when_it_names_us() {
        let mut r = solicit(false);
        r.msg_type = REQUEST;
        assert_eq!(answer(&r, &duid_ll(MAC), None), None, "no Server-Id");
        r.options.push((OPT_SERVERID, duid_ll([9; 6])));
        assert_eq!(answer(&r, &duid_ll(MAC), None), None, "another server");
        r.options.pop();
        r.options.push((OPT_SERVERID, duid_ll(MAC)));
        assert_eq!(answer(&r, &duid_ll(MAC), None).unwrap().msg_type, REPLY);
    }

    #[test]
    fn udp_over_ipv6_has_a_right_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let p = udp6(src, SERVERS, 546, 547, 1, b"hello");
        assert!(udp6_checksum_ok(&p));
        let u = parse_udp6(&p).unwrap();
        assert_eq!(
            (u.src, u.dst, u.src_port, u.dst_port),
            (src, SERVERS, 546, 547)
        );
        assert_eq!(u.payload, b"hello");
        let mut bad = p.clone();
        bad[50] ^= 1;
        assert!(!udp6_checksum_ok(&bad));
    }
}
