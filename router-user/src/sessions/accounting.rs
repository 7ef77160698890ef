//! Accounting records of a session, from its member's datapath counters:
//! what the datapath received from the client (rx) is the NAS's input,
//! what it forwarded to the client (tx) its output. Octets go whole: the
//! RADIUS client splits them into Gigawords.
use std::time::{SystemTime, UNIX_EPOCH};

use router_common::MemberCounters;

use super::Record;
use crate::pppoe::TerminateCause;
use crate::radius::{AcctKind, AcctRecord, NasPortType, calling_station_id, nas_port_id};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An Acct-Session-Id unique on this NAS: the start time, the interface
/// and the PPPoE session id, in hex.
pub fn acct_session_id(started_unix: u64, ifindex: u32, session_id: u16) -> String {
    format!(
        "{:08X}{:04X}{:04X}",
        started_unix as u32, ifindex as u16, session_id
    )
}

/// The accounting record of `kind` for session `r` with counters `c` at
/// Unix time `now` (`cause`: a Stop's Terminate-Cause).
pub fn record(
    kind: AcctKind,
    r: &Record,
    c: &MemberCounters,
    now: u64,
    cause: Option<TerminateCause>,
) -> AcctRecord {
    let s = r.session();
    AcctRecord {
        kind,
        session_id: r.acct_session_id.clone(),
        user: r.member.id.clone(),
        nas_port_id: nas_port_id(&r.member.interface, s.line.s_vlan, s.line.c_vlan),
        nas_port_type: NasPortType::Ethernet,
        calling_station_id: calling_station_id(s.line.mac),
        framed_ip: r.engine.grant.ipv4,
        framed_ipv6_prefix: r.engine.grant.ipv6_prefix,
        delegated_ipv6_prefix: r.engine.grant.delegated,
        session_time: u32::try_from(now.saturating_sub(r.engine.started_unix)).unwrap_or(u32::MAX),
        in_octets: c.rx_bytes,
        out_octets: c.tx_bytes,
        in_packets: c.rx_packets,
        out_packets: c.tx_packets,
        terminate_cause: cause.map(TerminateCause::code),
        class: r.class.clone(),
    }
}
