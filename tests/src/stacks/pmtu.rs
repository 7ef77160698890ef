//! Path-MTU discovery towards a member whose line carries less than the
//! core's MTU (carol: 1496 against 1500), checked with a plain TCP
//! transfer from the core.
//!
//! ```text
//!   core (MTU 1500)          router                  carol (MTU 1496, advmss 1460)
//!   sender ── 1500-byte ──▶ too big for the line ──┐
//!          ◀── frag needed / packet too big, 1496 ─┘
//!   sender ── 1496-byte ──▶ XDP, two tags pushed ───▶ receiver (1 MiB)
//! ```
use std::{net::SocketAddr, time::Duration};

use crate::daemon::Daemon;

use super::{
    MEMBER_DEV, Stacks,
    plan::*,
    tools::{learnt_mtu, ping_until, tcp_transfer},
};

/// Makes member `id` advertise the TCP MSS of a host on a 1500-byte LAN
/// behind a stock CPE (1460 over IPv4, 1440 over IPv6, `advmss` on its
/// default route), which knows nothing of the line's smaller MTU: without
/// it the member's kernel would advertise an MSS that fits its own MTU, and
/// no packet would ever be too big.
pub fn advertise_lan_mss(s: &Stacks, id: &str, v6: bool) {
    let m = s.member(id);
    let (family, gw, advmss) = if v6 {
        ("-6", ACC_LL6.to_string(), "1440")
    } else {
        ("-4", ACC_GW4.to_string(), "1460")
    };
    let mut args = vec![
        family, "route", "replace", "default", "via", &gw, "dev", MEMBER_DEV,
    ];
    if !v6 {
        args.push("onlink");
    }
    args.extend(["advmss", advmss]);
    m.ns.ip(&args);
}

/// A core host whose MTU is 1500 sends 1 MiB over TCP to member `id` (no
/// MSS clamping, path-MTU discovery on): the transfer must complete, and
/// the core must have learnt the member's path MTU (`ip route get`'s
/// `mtu`), `expected_mtu`. Panics with the site's state otherwise.
pub fn assert_path_mtu_discovery(s: &Stacks, d: &Daemon, id: &str, v6: bool, expected_mtu: u32) {
    let m = s.member(id);
    let gw0 = s.core.ip(&["link", "show", "dev", "gw0"]);
    assert!(gw0.contains("mtu 1500"), "the core's MTU: {gw0}");
    advertise_lan_mss(s, id, v6);
    let (dst, remote) = if v6 {
        (m.spec.host6.into(), REMOTE6.to_string())
    } else {
        (m.spec.host4.into(), REMOTE4.to_string())
    };
    // Both ways resolved before the transfer.
    let p = ping_until(&m.ns, &remote, Duration::from_secs(10));
    assert_eq!(
        p.received,
        1,
        "{id} never reached {remote}; its neighbours: {}\n{}{}",
        m.neighbours(),
        p.ran,
        s.diagnose(Some(d))
    );
    let to = SocketAddr::new(dst, 7000);
    let got = tcp_transfer(&s.core, &m.ns, to, 1 << 20, Duration::from_secs(20));
    let (mtu, route) = learnt_mtu(&s.core, dst);
    assert_eq!(
        got,
        Ok(1 << 20),
        "1 MiB from the core to {id} ({to}) did not arrive whole; the core's route: {route}{}",
        s.diagnose(Some(d))
    );
    assert_eq!(
        mtu,
        Some(expected_mtu),
        "the core did not learn {id}'s path MTU; its route: {route}{}",
        s.diagnose(Some(d))
    );
}
