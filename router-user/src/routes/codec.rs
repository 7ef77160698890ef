//! The rtnetlink messages of the member routes, as bytes: route additions
//! and removals, the dump request of a table, and the kernel's answers.
//!
//! A route message is a `nlmsghdr` (16 bytes), an `rtmsg` (12) and two
//! attributes: `RTA_TABLE` (the table, always given, so that tables above
//! 255 work) and `RTA_DST` (the prefix). Additions are `blackhole` routes
//! of protocol [`PROTO`], created exclusively (`NLM_F_CREATE |
//! NLM_F_EXCL`): a route of another protocol on the same prefix is never
//! replaced. Removals name the protocol, so that the kernel only ever
//! removes routes of ours.
//!
//! Pure: byte vectors in and out, tested against netlink-packet-route's
//! own encoding.
use std::net::IpAddr;

use ipnet::IpNet;
use router_core::export::PROTO;

pub const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_DUMP: u16 = 0x300;

const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const RTN_BLACKHOLE: u8 = 6;
const RT_SCOPE_UNIVERSE: u8 = 0;
/// A removal's scope: any.
const RT_SCOPE_NOWHERE: u8 = 255;
/// `rtm_table` when the table is too large for it: `RTA_TABLE` has it.
const RT_TABLE_COMPAT: u8 = 252;

/// A route change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

/// Bytes of the message that adds or removes `prefix`.
pub fn route_len(prefix: &IpNet) -> usize {
    NLMSG_HDRLEN + RTMSG_LEN + 8 + 4 + addr_len(prefix)
}

fn addr_len(prefix: &IpNet) -> usize {
    match prefix {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 16,
    }
}

fn family(prefix: &IpNet) -> u8 {
    match prefix {
        IpNet::V4(_) => AF_INET,
        IpNet::V6(_) => AF_INET6,
    }
}

fn rtm_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(RT_TABLE_COMPAT)
}

fn push_header(buf: &mut Vec<u8>, len: usize, kind: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    // Port 0: the kernel.
    buf.extend_from_slice(&0u32.to_ne_bytes());
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    // Every attribute here is a multiple of 4 bytes: no padding.
    debug_assert!(data.len().is_multiple_of(4));
}

/// Appends the message that adds (`Change::Add`) or removes `prefix` in
/// `table`, numbered `seq`; `ack`: ask for an acknowledgement even when it
/// succeeds (a failure is always answered).
pub fn push_route(
    buf: &mut Vec<u8>,
    change: Change,
    prefix: &IpNet,
    table: u32,
    seq: u32,
    ack: bool,
) {
    let (kind, mut flags, scope, rtype) = match change {
        Change::Add => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
            RT_SCOPE_UNIVERSE,
            RTN_BLACKHOLE,
        ),
        // Any type: a stale route of ours goes whatever it is.
        Change::Remove => (RTM_DELROUTE, NLM_F_REQUEST, RT_SCOPE_NOWHERE, 0),
    };
    if ack {
        flags |= NLM_F_ACK;
    }
    push_header(buf, route_len(prefix), kind, flags, seq);
    buf.extend_from_slice(&[
        family(prefix),
        prefix.prefix_len(),
        0, // source length
        0, // tos
        rtm_table(table),
        PROTO,
        scope,
        rtype,
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    push_attr(buf, RTA_TABLE, &table.to_ne_bytes());
    match prefix.network() {
        IpAddr::V4(a) => push_attr(buf, RTA_DST, &a.octets()),
        IpAddr::V6(a) => push_attr(buf, RTA_DST, &a.octets()),
    }
}

/// Appends the request dumping the routes of protocol [`PROTO`] in `table`
/// for one family. With `NETLINK_GET_STRICT_CHK` the kernel filters by
/// table and protocol itself; [`parse`] checks both again.
pub fn push_dump(buf: &mut Vec<u8>, family: u8, table: u32, seq: u32) {
    let len = NLMSG_HDRLEN + RTMSG_LEN + 8;
    push_header(buf, len, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
    buf.extend_from_slice(&[family, 0, 0, 0, rtm_table(table), PROTO, 0, 0]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(buf, RTA_TABLE, &table.to_ne_bytes());
}

/// A route of a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub table: u32,
    pub proto: u8,
    pub kind: u8,
}

/// One message the kernel sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// A route (`RTM_NEWROUTE` of a dump); `interrupted`: the dump was
    /// disturbed by a change (`NLM_F_DUMP_INTR`) and must be done again.
    Route {
        seq: u32,
        route: Option<Route>,
        interrupted: bool,
    },
    /// The answer to request `seq`: 0 for success, else a negative errno.
    Answer { seq: u32, error: i32 },
    /// The end of a dump, with its outcome: 0, or a negative errno when
    /// the dump failed part-way (the kernel puts it in `NLMSG_DONE`'s
    /// body).
    Done {
        seq: u32,
        interrupted: bool,
        error: i32,
    },
    /// Anything else.
    Other,
}

/// Why bytes from the kernel do not read as messages.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("a netlink message of {len} bytes at offset {at} overruns the {total} bytes received")]
    Truncated { at: usize, len: usize, total: usize },
}

/// The messages of one datagram from the kernel.
pub fn parse(buf: &[u8]) -> impl Iterator<Item = Result<Message, CodecError>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + NLMSG_HDRLEN > buf.len() {
            return None;
        }
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            let total = buf.len();
            let e = CodecError::Truncated { at, len, total };
            at = buf.len();
            return Some(Err(e));
        }
        let msg = &buf[at..at + len];
        at += len.next_multiple_of(4);
        Some(Ok(message(msg)))
    })
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn message(msg: &[u8]) -> Message {
    let kind = u16_at(msg, 4);
    let flags = u16_at(msg, 6);
    let seq = u32_at(msg, 8);
    let body = &msg[NLMSG_HDRLEN..];
    let interrupted = flags & NLM_F_DUMP_INTR != 0;
    match kind {
        NLMSG_ERROR if body.len() >= 4 => Message::Answer {
            seq,
            error: i32::from_ne_bytes(body[..4].try_into().unwrap()),
        },
        NLMSG_DONE => Message::Done {
            seq,
            interrupted,
            error: if body.len() >= 4 {
                i32::from_ne_bytes(body[..4].try_into().unwrap())
            } else {
                0
            },
        },
        RTM_NEWROUTE => Message::Route {
            seq,
            route: route(body),
            interrupted,
        },
        _ => Message::Other,
    }
}

/// A route message's body; `None` if it is not one this dump asked for
/// the shape of (no destination: a default route).
fn route(body: &[u8]) -> Option<Route> {
    if body.len() < RTMSG_LEN {
        return None;
    }
    let (fam, dst_len, table8, proto, kind) = (body[0], body[1], body[4], body[5], body[7]);
    let mut table = u32::from(table8);
    let mut dst: Option<IpAddr> = None;
    let mut at = RTMSG_LEN;
    while at + 4 <= body.len() {
        let len = u16_at(body, at) as usize;
        let kind = u16_at(body, at + 2);
        if len < 4 || at + len > body.len() {
            break;
        }
        let data = &body[at + 4..at + len];
        match (kind, fam, data.len()) {
            (RTA_TABLE, _, 4) => table = u32::from_ne_bytes(data.try_into().unwrap()),
            (RTA_DST, AF_INET, 4) => {
                dst = Some(IpAddr::from(<[u8; 4]>::try_from(data).unwrap()));
            }
            (RTA_DST, AF_INET6, 16) => {
                dst = Some(IpAddr::from(<[u8; 16]>::try_from(data).unwrap()));
            }
            _ => {}
        }
        at += len.next_multiple_of(4);
    }
    let prefix = match (fam, dst) {
        (_, Some(a)) => IpNet::new(a, dst_len).ok()?,
        // A default route has no RTA_DST.
        (AF_INET, None) if dst_len == 0 => IpNet::V4(Default::default()),
        (AF_INET6, None) if dst_len == 0 => IpNet::V6(Default::default()),
        _ => return None,
    };
    Some(Route {
        prefix,
        table,
        proto,
        kind,
    })
}

/// Splits `items` into runs whose messages fit `budget` bytes and number
/// at most `max_messages`: the batches of one send each. A single item
/// larger than the budget is a batch of its own.
pub fn batches<'a>(
    items: &'a [IpNet],
    budget: usize,
    max_messages: usize,
) -> impl Iterator<Item = &'a [IpNet]> + 'a {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < max_messages.max(1) {
            let size = route_len(&rest[n]);
            if n > 0 && bytes + size > budget {
                break;
            }
            bytes += size;
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{
        NLM_F_ACK as CORE_ACK, NLM_F_CREATE as CORE_CREATE, NLM_F_EXCL as CORE_EXCL,
        NLM_F_REQUEST as CORE_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    };
    use netlink_packet_route::{
        AddressFamily, RouteNetlinkMessage,
        route::{
            RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
            RouteType,
        },
    };

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// netlink-packet-route's bytes for the same route message.
    fn reference(change: Change, prefix: &IpNet, table: u32, seq: u32, flags: u16) -> Vec<u8> {
        let mut msg = RouteMessage::default();
        msg.header = RouteHeader {
            address_family: match prefix {
                IpNet::V4(_) => AddressFamily::Inet,
                IpNet::V6(_) => AddressFamily::Inet6,
            },
            destination_prefix_length: prefix.prefix_len(),
            source_prefix_length: 0,
            tos: 0,
            table: rtm_table(table),
            protocol: RouteProtocol::from(PROTO),
            scope: match change {
                Change::Add => RouteScope::Universe,
                Change::Remove => RouteScope::NoWhere,
            },
            kind: match change {
                Change::Add => RouteType::BlackHole,
                Change::Remove => RouteType::Unspec,
            },
            flags: vec![],
        };
        msg.attributes.push(RouteAttribute::Table(table));
        msg.attributes
            .push(RouteAttribute::Destination(match prefix.network() {
                IpAddr::V4(a) => RouteAddress::Inet(a),
                IpAddr::V6(a) => RouteAddress::Inet6(a),
            }));
        let inner = match change {
            Change::Add => RouteNetlinkMessage::NewRoute(msg),
            Change::Remove => RouteNetlinkMessage::DelRoute(msg),
        };
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(inner));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }

    #[test]
    fn route_messages_match_netlink_packet_route() {
        for (prefix, table) in [
            ("198.51.100.7/32", 100u32),
            ("198.51.100.16/29", 4_000_000_000),
            ("2001:db8:1001::/48", 100),
            ("2001:db8:1003::/64", 1000),
        ] {
            let p = net(prefix);
            for (change, ack) in [
                (Change::Add, false),
                (Change::Add, true),
                (Change::Remove, false),
                (Change::Remove, true),
            ] {
                let mut buf = Vec::new();
                push_route(&mut buf, change, &p, table, 77, ack);
                let mut flags = CORE_REQUEST;
                if change == Change::Add {
                    flags |= CORE_CREATE | CORE_EXCL;
                }
                if ack {
                    flags |= CORE_ACK;
                }
                assert_eq!(
                    buf,
                    reference(change, &p, table, 77, flags),
                    "{change:?} {prefix} table {table} ack {ack}"
                );
                assert_eq!(buf.len(), route_len(&p));
            }
        }
    }

    #[test]
    fn an_addition_in_bytes() {
        let mut buf = Vec::new();
        push_route(&mut buf, Change::Add, &net("192.0.2.0/24"), 300, 5, true);
        let mut want = Vec::new();
        want.extend(44u32.to_ne_bytes()); // length
        want.extend(24u16.to_ne_bytes()); // RTM_NEWROUTE
        want.extend(0x605u16.to_ne_bytes()); // REQUEST | ACK | EXCL | CREATE
        want.extend(5u32.to_ne_bytes()); // seq
        want.extend(0u32.to_ne_bytes()); // port
        // AF_INET /24, table 252 (compat: 300 is in RTA_TABLE), proto 150,
        // scope universe, blackhole; flags 0.
        want.extend([2, 24, 0, 0, 252, 150, 0, 6, 0, 0, 0, 0]);
        want.extend(8u16.to_ne_bytes());
        want.extend(15u16.to_ne_bytes());
        want.extend(300u32.to_ne_bytes());
        want.extend(8u16.to_ne_bytes());
        want.extend(1u16.to_ne_bytes());
        want.extend([192, 0, 2, 0]);
        assert_eq!(buf, want);
    }

    #[test]
    fn parses_a_dump_answer_and_errors() {
        // A route as the kernel sends it in a dump: netlink-packet-route's
        // encoding, with more attributes than we read.
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.destination_prefix_length = 48;
        msg.header.table = RT_TABLE_COMPAT;
        msg.header.protocol = RouteProtocol::from(PROTO);
        msg.header.kind = RouteType::BlackHole;
        msg.attributes.push(RouteAttribute::Table(1000));
        msg.attributes.push(RouteAttribute::Priority(1024));
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(
                "2001:db8:1001::".parse().unwrap(),
            )));
        let mut header = NetlinkHeader::default();
        header.sequence_number = 9;
        header.flags = NLM_F_DUMP_INTR;
        let mut nl = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(msg)),
        );
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        // An error answer (ESRCH) to message 10 and the end of the dump.
        let mut err = Vec::new();
        push_header(&mut err, 36, NLMSG_ERROR, 0, 10);
        err.extend((-3i32).to_ne_bytes());
        push_header(&mut err, 16, RTM_DELROUTE, 0, 10);
        buf.extend(&err);
        let mut done = Vec::new();
        push_header(&mut done, 20, NLMSG_DONE, 0, 9);
        done.extend(0i32.to_ne_bytes());
        buf.extend(&done);
        // A later dump that failed part-way (EINTR in NLMSG_DONE).
        let mut failed = Vec::new();
        push_header(&mut failed, 20, NLMSG_DONE, 0, 11);
        failed.extend((-libc::EINTR).to_ne_bytes());
        buf.extend(&failed);

        let got: Vec<Message> = parse(&buf).map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                Message::Route {
                    seq: 9,
                    route: Some(Route {
                        prefix: net("2001:db8:1001::/48"),
                        table: 1000,
                        proto: PROTO,
                        kind: RTN_BLACKHOLE,
                    }),
                    interrupted: true,
                },
                Message::Answer { seq: 10, error: -3 },
                Message::Done {
                    seq: 9,
                    interrupted: false,
                    error: 0,
                },
                Message::Done {
                    seq: 11,
                    interrupted: false,
                    error: -libc::EINTR,
                },
            ]
        );
        // Cut short: an error, never a wrong message.
        let cut = &buf[..buf.len() - 3];
        assert!(parse(cut).any(|m| m.is_err()));
    }

    #[test]
    fn a_dump_request_filters_by_table_and_protocol() {
        let mut buf = Vec::new();
        push_dump(&mut buf, AF_INET6, 100, 3);
        assert_eq!(buf.len(), 36);
        assert_eq!(u16_at(&buf, 4), RTM_GETROUTE);
        assert_eq!(u16_at(&buf, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(&buf[16..24], &[AF_INET6, 0, 0, 0, 100, PROTO, 0, 0]);
        assert_eq!(u32_at(&buf, 32), 100);
    }

    #[test]
    fn batches_respect_the_byte_budget_and_the_message_count() {
        let v4 = net("10.0.0.0/8");
        let v6 = net("2001:db8::/32");
        assert_eq!((route_len(&v4), route_len(&v6)), (44, 56));
        let items: Vec<IpNet> = [v4, v4, v6, v6, v4].to_vec();
        let sizes = |b: usize, m: usize| -> Vec<usize> {
            batches(&items, b, m).map(<[IpNet]>::len).collect()
        };
        assert_eq!(sizes(1 << 20, 1000), vec![5]);
        assert_eq!(sizes(100, 1000), vec![2, 1, 2]);
        assert_eq!(sizes(144, 1000), vec![3, 2]);
        assert_eq!(sizes(1 << 20, 2), vec![2, 2, 1]);
        assert_eq!(sizes(10, 1000), vec![1; 5], "each alone when too large");
        assert_eq!(batches(&[], 100, 10).count(), 0);
        // Every item once, in order.
        let joined: Vec<IpNet> = batches(&items, 100, 3).flatten().copied().collect();
        assert_eq!(joined, items);
    }
}
