//! DHCPv6 prefix delegation over a session (RFC 8415): the client's
//! messages to ff02::1:2 (UDP 546 → 547) in the session's IPv6 packets,
//! and our answers from our link-local address, with the session's
//! Delegated-IPv6-Prefix as IA_PD and a DUID-LL from the port MAC.
//!
//! The messages are read and written by dhcproto, the IPv6 and UDP
//! headers by etherparse; this module only decides the answer.
use std::net::Ipv6Addr;

use dhcproto::{
    Decodable as _, Encodable as _,
    v6::{
        DhcpOption, DhcpOptions, IANA, IAPD, IAPrefix, Message, MessageType, OptionCode, Status,
        StatusCode,
    },
};
use etherparse::{IpNumber, Ipv6Slice, PacketBuilder, UdpSlice};
use ipnet::Ipv6Net;

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
/// Hop limit of our answers (link-local, one hop).
const HOP_LIMIT: u8 = 64;

/// The DUID-LL of `mac` (RFC 8415 11.4: type 3, hardware type 1).
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

/// fe80:: with interface identifier `ifid`.
pub fn link_local(ifid: u64) -> Ipv6Addr {
    Ipv6Addr::from((0xfe80u128 << 112) | u128::from(ifid))
}

/// An IPv6 packet carrying a UDP datagram right after its fixed header,
/// as received in a session, with a right UDP checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp6<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// Reads IPv6 packet `ip` as UDP, or None (not IPv6, not UDP, truncated,
/// or a wrong UDP checksum).
pub fn parse_udp6(ip: &[u8]) -> Option<Udp6<'_>> {
    let v6 = Ipv6Slice::from_slice(ip).ok()?;
    if v6.header().next_header() != IpNumber::UDP || v6.is_payload_fragmented() {
        return None;
    }
    let udp = UdpSlice::from_slice(v6.payload().payload).ok()?;
    let header = v6.header().to_header();
    let want = udp
        .to_header()
        .calc_checksum_ipv6(&header, udp.payload())
        .ok()?;
    if udp.checksum() != want {
        return None;
    }
    Some(Udp6 {
        src: header.source_addr(),
        dst: header.destination_addr(),
        src_port: udp.source_port(),
        dst_port: udp.destination_port(),
        payload: udp.payload(),
    })
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
    let builder = PacketBuilder::ipv6(src.octets(), dst.octets(), hops).udp(sport, dport);
    let mut p = Vec::with_capacity(builder.size(data.len()));
    builder
        .write(&mut p, data)
        .expect("writing into a Vec cannot fail, and the datagram is small");
    p
}

fn status(status: Status, msg: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status,
        msg: msg.to_owned(),
    })
}

fn duid(opts: &DhcpOptions, code: OptionCode) -> Option<&[u8]> {
    match opts.get(code)? {
        DhcpOption::ClientId(d) | DhcpOption::ServerId(d) => Some(d),
        _ => None,
    }
}

/// Our answer to a client's `msg`, or None when it is not for us (a
/// Request or Renew naming another server, a message a server does not
/// answer).
pub fn answer(msg: &Message, server_duid: &[u8], delegated: Option<Ipv6Net>) -> Option<Message> {
    let opts = msg.opts();
    let client = duid(opts, OptionCode::ClientId)?;
    let named = duid(opts, OptionCode::ServerId);
    let rapid = opts.get(OptionCode::RapidCommit).is_some();
    let msg_type = match msg.msg_type() {
        MessageType::Solicit if named.is_none() => {
            if rapid {
                MessageType::Reply
            } else {
                MessageType::Advertise
            }
        }
        MessageType::Request | MessageType::Renew | MessageType::Release
            if named == Some(server_duid) =>
        {
            MessageType::Reply
        }
        MessageType::Rebind if named.is_none() => MessageType::Reply,
        MessageType::InformationRequest if named.is_none_or(|n| n == server_duid) => {
            MessageType::Reply
        }
        _ => return None,
    };
    let mut out = Message::new_with_id(msg_type, msg.xid());
    let o = out.opts_mut();
    o.insert(DhcpOption::ClientId(client.to_vec()));
    o.insert(DhcpOption::ServerId(server_duid.to_vec()));
    if msg.msg_type() == MessageType::Solicit && rapid {
        o.insert(DhcpOption::RapidCommit);
    }
    if msg.msg_type() == MessageType::Release {
        o.insert(status(Status::Success, "released"));
        return Some(out);
    }
    for opt in opts.iter() {
        match opt {
            DhcpOption::IAPD(ia) => {
                let mut pd = IAPD {
                    id: ia.id,
                    t1: 0,
                    t2: 0,
                    opts: DhcpOptions::new(),
                };
                match delegated {
                    Some(p) => {
                        (pd.t1, pd.t2) = (T1, T2);
                        pd.opts.insert(DhcpOption::IAPrefix(IAPrefix {
                            preferred_lifetime: PREFERRED,
                            valid_lifetime: VALID,
                            prefix_len: p.prefix_len(),
                            prefix_ip: p.network(),
                            opts: DhcpOptions::new(),
                        }));
                    }
                    None => pd
                        .opts
                        .insert(status(Status::NoPrefixAvail, "no prefix for this session")),
                }
                o.insert(DhcpOption::IAPD(pd));
            }
            DhcpOption::IANA(ia) => {
                let mut na = IANA {
                    id: ia.id,
                    t1: 0,
                    t2: 0,
                    opts: DhcpOptions::new(),
                };
                na.opts.insert(status(
                    Status::NoAddrsAvail,
                    "no addresses: use the advertised prefix",
                ));
                o.insert(DhcpOption::IANA(na));
            }
            _ => {}
        }
    }
    Some(out)
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
    let Ok(msg) = Message::from_bytes(u.payload) else {
        return Served::Malformed;
    };
    let Some(ans) = answer(&msg, &duid_ll(mac), delegated) else {
        return Served::NotForUs;
    };
    let Ok(bytes) = ans.to_vec() else {
        return Served::Malformed;
    };
    Served::Reply(udp6(
        link_local(our_ifid),
        u.src,
        SERVER_PORT,
        u.src_port,
        HOP_LIMIT,
        &bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];

    fn solicit(rapid: bool) -> Message {
        let mut m = Message::new_with_id(MessageType::Solicit, [1, 2, 3]);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        o.insert(DhcpOption::IAPD(IAPD {
            id: 7,
            t1: 0,
            t2: 0,
            opts: DhcpOptions::new(),
        }));
        if rapid {
            o.insert(DhcpOption::RapidCommit);
        }
        m
    }

    #[test]
    fn a_solicit_gets_an_advertise_with_the_delegated_prefix_byte_exact() {
        let s = solicit(false);
        let p: Ipv6Net = "2001:db8:100::/56".parse().unwrap();
        let a = answer(&s, &duid_ll(MAC), Some(p)).unwrap();
        let want: Vec<u8> = [
            &[2, 1, 2, 3][..],
            &[0, 1, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
            &[0, 2, 0, 10, 0, 3, 0, 1, 2, 0, 0, 0, 0, 0xaa],
            &[0, 25, 0, 41, 0, 0, 0, 7, 0, 0, 0x07, 0x08, 0, 0, 0x0b, 0x40],
            &[0, 26, 0, 25, 0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20, 56],
            &[
                0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ]
        .concat();
        assert_eq!(a.to_vec().unwrap(), want);
        // Rapid commit: a Reply at once, saying so.
        let r = answer(&solicit(true), &duid_ll(MAC), Some(p)).unwrap();
        assert_eq!(r.msg_type(), MessageType::Reply);
        assert!(r.opts().get(OptionCode::RapidCommit).is_some());
        // No prefix: NoPrefixAvail inside the IA_PD.
        let n = answer(&s, &duid_ll(MAC), None).unwrap().to_vec().unwrap();
        let ia = &n[4 + 14 + 14..];
        assert_eq!(&ia[..4], &[0, 25, 0, 12 + 4 + 2 + 26]);
        assert_eq!(&ia[16..22], &[0, 13, 0, 28, 0, 6]);
    }

    #[test]
    fn a_request_is_answered_only_when_it_names_us() {
        let mut r = solicit(false);
        r.set_msg_type(MessageType::Request);
        assert_eq!(answer(&r, &duid_ll(MAC), None), None, "no Server-Id");
        r.opts_mut().insert(DhcpOption::ServerId(duid_ll([9; 6])));
        assert_eq!(answer(&r, &duid_ll(MAC), None), None, "another server");
        r.opts_mut().remove(OptionCode::ServerId);
        r.opts_mut().insert(DhcpOption::ServerId(duid_ll(MAC)));
        assert_eq!(
            answer(&r, &duid_ll(MAC), None).unwrap().msg_type(),
            MessageType::Reply
        );
    }

    #[test]
    fn udp_over_ipv6_has_a_right_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let p = udp6(src, SERVERS, 546, 547, 1, b"hello");
        let u = parse_udp6(&p).unwrap();
        assert_eq!(
            (u.src, u.dst, u.src_port, u.dst_port),
            (src, SERVERS, 546, 547)
        );
        assert_eq!(u.payload, b"hello");
        let mut bad = p.clone();
        bad[50] ^= 1;
        assert_eq!(parse_udp6(&bad), None, "a wrong checksum is refused");
    }
}
