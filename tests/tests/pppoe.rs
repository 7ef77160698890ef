//! Issue 15 end to end: PPPoE sessions set up by `collecte run` with a real
//! FreeRADIUS, their data forwarded by XDP between the test client (a raw
//! socket behind `acc1`) and a real Linux stack behind the uplink (the
//! core). See `tests::pppoe_site` for the site.
//!
//! Restarts: `pppoe_restart.rs`; RADIUS failures and refusals:
//! `pppoe_refusals.rs`.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use tests::{
    frames,
    pppoe::PppoeClient,
    pppoe_site::{Site, SiteOptions, dial_chap, dial_pap},
    topology::{udp_socket, wait_for},
};

const SEC: Duration = Duration::from_secs(1);
const CORE4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const CORE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

fn opts(port: u16) -> SiteOptions {
    SiteOptions {
        metrics_port: port,
        ..SiteOptions::default()
    }
}

/// UDP from the client to the core and back, byte-exact, over IPv4 (and
/// IPv6 from `v6` when given): forwarded by XDP (the router's kernel
/// forwards nothing, the member's counters move).
fn data_both_ways(site: &Site, c: &mut PppoeClient, id: &str, v4: Ipv4Addr, v6: Option<Ipv6Addr>) {
    let core4 = udp_socket(site.topo.core.name(), SocketAddr::from((CORE4, 5000)));
    let before = site.metrics();
    let kernel_before = site.topo.kernel_forwarded();
    // Upstream, byte-exact at the core (a few tries: the first packets
    // may still meet an unresolved gateway).
    let payload = b"collecte pppoe upstream \x00\x01\x02\xff";
    let got = wait_for(5 * SEC, || {
        c.send_ipv4(&frames::ipv4_udp(v4, CORE4, 64, payload));
        let mut buf = [0u8; 2048];
        match core4.recv_from(&mut buf) {
            Ok((n, from)) => Some((buf[..n].to_vec(), from)),
            Err(_) => None,
        }
    });
    let (data, from) = got.unwrap_or_else(|| {
        panic!(
            "the core never received {id}'s UDP packet\nlog:\n{}",
            site.daemon.log()
        )
    });
    assert_eq!(data, payload, "upstream payload");
    assert_eq!(from, SocketAddr::from((v4, 4000)));
    // Downstream, byte-exact in the session.
    let down = b"collecte pppoe downstream \xfe\xfd";
    core4.send_to(down, (v4, 4000)).unwrap();
    let ip = c
        .recv_ip(5 * SEC)
        .unwrap_or_else(|| panic!("{id} received nothing from the core"));
    assert_eq!(ip[0] >> 4, 4, "an IPv4 packet");
    assert_eq!(&ip[12..16], &CORE4.octets(), "from the core");
    assert_eq!(&ip[16..20], &v4.octets(), "to the session");
    assert_eq!(&ip[28..], down, "downstream payload");
    if let Some(v6) = v6 {
        let core6 = udp_socket(site.topo.core.name(), SocketAddr::from((CORE6, 5000)));
        let up6 = b"collecte pppoe upstream v6";
        let got = wait_for(5 * SEC, || {
            c.send_ipv6(&frames::ipv6_udp(v6, CORE6, 64, up6));
            let mut buf = [0u8; 2048];
            core6
                .recv_from(&mut buf)
                .ok()
                .map(|(n, _)| buf[..n].to_vec())
        });
        assert_eq!(got.as_deref(), Some(&up6[..]), "IPv6 upstream");
        let down6 = b"collecte pppoe downstream v6";
        core6.send_to(down6, (IpAddr::V6(v6), 4000)).unwrap();
        let ip = wait_for(5 * SEC, || c.recv_ip(SEC).filter(|p| p[0] >> 4 == 6))
            .unwrap_or_else(|| panic!("{id} received no IPv6 packet from the core"));
        assert_eq!(&ip[24..40], &v6.octets());
        assert_eq!(&ip[48..], down6, "IPv6 downstream payload");
    }
    // Forwarded by XDP: the member's counters moved, the kernel forwarded
    // none of it.
    let after = site.metrics();
    assert!(
        after.member(id, "receive_packets") > before.member(id, "receive_packets"),
        "{id}'s receive counter did not move"
    );
    assert!(
        after.member(id, "transmit_packets") > before.member(id, "transmit_packets"),
        "{id}'s transmit counter did not move"
    );
    let kernel_after = site.topo.kernel_forwarded();
    assert_eq!(
        kernel_after, kernel_before,
        "the router's kernel forwarded session traffic"
    );
}

#[test]
fn pap_session_forwards_both_ways_in_xdp_and_ends_with_a_padt() {
    let site = Site::start("pppoe-pap", opts(9641));
    let mut c = site.client(1, &[]);
    let v4 = dial_pap(&mut c, "dual@isp", "dual-pass").expect("PAP session");
    assert_eq!(v4, Ipv4Addr::new(198, 51, 100, 41), "Framed-IP-Address");
    let (ours, theirs) = c.ipv6cp().expect("IPv6CP");
    assert_ne!(ours, 0);
    assert_ne!(theirs, 0);
    let (delegated, len) = c.dhcpv6_pd().expect("DHCPv6-PD");
    assert_eq!(
        (delegated, len),
        ("2001:db8:1600::".parse().unwrap(), 56),
        "Delegated-IPv6-Prefix by IA_PD"
    );
    let up = site.wait_up(1);
    let s = &up[0];
    assert_eq!(s["id"], "dual@isp");
    assert_eq!(s["interface"], "acc1");
    assert_eq!(s["mac"], "02:00:00:00:5e:01");
    assert_eq!(s["session_id"], u64::from(c.session));
    let addresses: Vec<&str> = s["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        [
            "198.51.100.41/32",
            "2001:db8:1500::/64",
            "2001:db8:1600::/56"
        ]
    );
    // The session's member: origin session, out of the API's reach.
    let (status, m) = site.member("dual@isp");
    assert_eq!(status, 200);
    assert_eq!(m["origin"], "session");
    let r = site.api.delete("/v1/members/dual%40isp");
    assert_eq!(r.status, 409, "{}", r.text());
    // Data both ways, IPv4 and IPv6 (from the delegated prefix).
    let v6: Ipv6Addr = "2001:db8:1600::1".parse().unwrap();
    data_both_ways(&site, &mut c, "dual@isp", v4, Some(v6));
    // Echo both ways: ours is answered, the router's (every second) are.
    c.echo().expect("the router answers LCP echo");
    let answered = wait_for(5 * SEC, || {
        let _ = c.recv_ip(Duration::from_millis(200));
        (c.echoes_answered >= 2).then_some(())
    });
    assert!(answered.is_some(), "the router sent no LCP echo request");
    let m = site.metrics();
    assert_eq!(m.count("collecte_pppoe_sessions", &[("state", "up")]), 1);
    assert!(
        m.count(
            "collecte_radius_requests_total",
            &[("kind", "auth"), ("result", "accept")]
        ) >= 1
    );
    // Accounting: Start, then an Interim-Update (interim_interval 10).
    let start = site.wait_detail(&mut c, 10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Start") && r.get("User-Name") == Some("dual@isp")
    });
    let sid = start
        .get("Acct-Session-Id")
        .expect("Acct-Session-Id")
        .to_owned();
    assert_eq!(start.get("Framed-IP-Address"), Some("198.51.100.41"));
    site.wait_detail(&mut c, 20 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Interim-Update")
            && r.get("Acct-Session-Id") == Some(&sid)
    });
    // PADT from the client: the member leaves the tables, accounting stops
    // with the counted octets.
    let counted = site.metrics();
    let rx = counted.member("dual@isp", "receive_bytes");
    let tx = counted.member("dual@isp", "transmit_bytes");
    assert!(rx > 0 && tx > 0);
    c.padt();
    site.wait_member_gone("dual@isp");
    let stop = site.radius().wait_detail(10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Stop") && r.get("Acct-Session-Id") == Some(&sid)
    });
    assert_eq!(stop.get("Acct-Terminate-Cause"), Some("User-Request"));
    assert_eq!(stop.number("Acct-Input-Octets"), Some(rx), "{stop:?}");
    assert_eq!(stop.number("Acct-Output-Octets"), Some(tx), "{stop:?}");
    assert!(stop.number("Acct-Input-Packets").unwrap_or(0) >= 2);
    assert!(site.sessions().iter().all(|s| s["state"] != "up"));
}

#[test]
fn chap_session_and_a_spoofed_source_and_an_unknown_session() {
    let site = Site::start("pppoe-chap", opts(9642));
    let mut c = site.client(2, &[]);
    let v4 = dial_chap(&mut c, "chap@isp", "chap-pass").expect("CHAP session");
    assert_eq!(v4, Ipv4Addr::new(198, 51, 100, 42));
    site.wait_up(1);
    data_both_ways(&site, &mut c, "chap@isp", v4, None);
    // A spoofed source inside the session: dropped, counted.
    let core4 = udp_socket(site.topo.core.name(), SocketAddr::from((CORE4, 5000)));
    let before = site.metrics().member("chap@isp", "spoofed_packets");
    for _ in 0..3 {
        c.send_ipv4(&frames::ipv4_udp(
            Ipv4Addr::new(198, 51, 100, 99),
            CORE4,
            64,
            b"spoofed",
        ));
    }
    let counted = wait_for(5 * SEC, || {
        (site.metrics().member("chap@isp", "spoofed_packets") >= before + 3).then_some(())
    });
    assert!(counted.is_some(), "the spoofed packets were not counted");
    let mut buf = [0u8; 2048];
    assert!(
        core4.recv_from(&mut buf).is_err(),
        "a spoofed packet reached the core"
    );
    // A frame of an unknown session id never reaches the core, and is
    // counted.
    let unknown_before = site.metrics().count(
        "collecte_pppoe_events_total",
        &[("event", "unknown_session")],
    );
    let mut other = site.client(2, &[]);
    other.server = c.server;
    other.session = c.session.wrapping_add(100);
    for _ in 0..3 {
        other.send_ipv4(&frames::ipv4_udp(v4, CORE4, 64, b"unknown session"));
    }
    let counted = wait_for(5 * SEC, || {
        (site.metrics().count(
            "collecte_pppoe_events_total",
            &[("event", "unknown_session")],
        ) >= unknown_before + 3)
            .then_some(())
    });
    assert!(
        counted.is_some(),
        "frames of an unknown session were not counted"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        core4.recv_from(&mut buf).is_err(),
        "a frame of an unknown session reached the core"
    );
}

#[test]
fn tagged_sessions_8021q_and_qinq() {
    let site = Site::start("pppoe-tags", opts(9643));
    let mut q = site.client(3, &[(0x8100, 101)]);
    let mut qq = site.client(4, &[(0x88a8, 10), (0x8100, 102)]);
    let v4q = dial_pap(&mut q, "q1@isp", "q1-pass").expect("802.1Q session");
    let v4qq = dial_pap(&mut qq, "q2@isp", "q2-pass").expect("QinQ session");
    let up = site.wait_up(2);
    let q1 = up.iter().find(|s| s["id"] == "q1@isp").unwrap();
    assert_eq!(q1["c_vlan"], 101);
    assert!(q1["s_vlan"].is_null());
    let q2 = up.iter().find(|s| s["id"] == "q2@isp").unwrap();
    assert_eq!(
        (q2["s_vlan"].clone(), q2["c_vlan"].clone()),
        (10.into(), 102.into())
    );
    data_both_ways(&site, &mut q, "q1@isp", v4q, None);
    data_both_ways(&site, &mut qq, "q2@isp", v4qq, None);
}

#[test]
fn the_router_ends_sessions_on_echo_failures_and_session_timeout() {
    let site = Site::start("pppoe-end", opts(9644));
    // Echo failures: the client stops answering.
    let mut c = site.client(5, &[]);
    dial_pap(&mut c, "v4@isp", "v4-pass").expect("session");
    site.wait_up(1);
    c.answer_echoes = false;
    c.expect_padt(10 * SEC)
        .expect("a PADT after unanswered echoes");
    site.wait_member_gone("v4@isp");
    site.radius().wait_detail(10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Stop")
            && r.get("User-Name") == Some("v4@isp")
            && r.get("Acct-Terminate-Cause") == Some("Lost-Carrier")
    });
    // Session-Timeout 3 s.
    let mut s = site.client(6, &[]);
    dial_pap(&mut s, "short@isp", "short-pass").expect("session");
    site.wait_up(1);
    s.expect_padt(10 * SEC)
        .expect("a PADT at the Session-Timeout");
    site.wait_member_gone("short@isp");
    site.radius().wait_detail(10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Stop")
            && r.get("User-Name") == Some("short@isp")
            && r.get("Acct-Terminate-Cause") == Some("Session-Timeout")
    });
}
