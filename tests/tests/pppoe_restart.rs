//! Issue 15: a daemon restart keeps an established PPPoE session
//! forwarding (the XDP program and its pinned tables stay while the daemon
//! is away), and the next run resumes its echoes and accounting. See
//! `tests::pppoe_site` for the site.
use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use tests::{
    frames,
    pppoe_site::{Site, SiteOptions, dial_pap},
    topology::{udp_socket, wait_for},
};

const SEC: Duration = Duration::from_secs(1);
const CORE4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

#[test]
fn a_restart_keeps_the_session_forwarding_and_answering_echo() {
    let mut site = Site::start(
        "pppoe-restart",
        SiteOptions {
            metrics_port: 9647,
            // Long enough for the daemon to be away without the client
            // missing echoes.
            pppoe: "echo_interval = 2\necho_failures = 5\n".into(),
            ..SiteOptions::default()
        },
    );
    let mut c = site.client(12, &[]);
    let v4 = dial_pap(&mut c, "v4@isp", "v4-pass").expect("session");
    let before = site.wait_up(1);
    let slot = before[0]["slot"].clone();
    let core = udp_socket(site.topo.core.name(), SocketAddr::from((CORE4, 5000)));
    let roundtrip = |c: &mut tests::pppoe::PppoeClient, what: &str| {
        let got = wait_for(5 * SEC, || {
            c.send_ipv4(&frames::ipv4_udp(v4, CORE4, 64, what.as_bytes()));
            let mut buf = [0u8; 2048];
            core.recv_from(&mut buf)
                .ok()
                .map(|(n, _)| buf[..n].to_vec())
        });
        assert_eq!(got.as_deref(), Some(what.as_bytes()), "upstream: {what}");
    };
    roundtrip(&mut c, "before the restart");
    // The daemon stops: the session keeps forwarding.
    site.daemon.stop(libc::SIGTERM, 10 * SEC);
    roundtrip(&mut c, "while the daemon is away");
    // It comes back: same session, same slot, echoes answered.
    site.daemon.restart();
    site.daemon.wait_ready(2, 30 * SEC);
    let after = site.wait_up(1);
    assert_eq!(after[0]["session_id"], u64::from(c.session));
    assert_eq!(after[0]["slot"], slot, "the session kept its slot");
    roundtrip(&mut c, "after the restart");
    c.echo().expect("the restarted router answers LCP echo");
    let echoes = c.echoes_answered;
    let asked = wait_for(10 * SEC, || {
        let _ = c.recv_ip(Duration::from_millis(200));
        (c.echoes_answered > echoes).then_some(())
    });
    assert!(
        asked.is_some(),
        "the restarted router sends no echo request"
    );
    // Accounting resumed: an Interim-Update after the restart, then the
    // Stop with the octets of the whole session.
    let started = site.wait_detail(&mut c, 10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Start") && r.get("User-Name") == Some("v4@isp")
    });
    let sid = started.get("Acct-Session-Id").unwrap().to_owned();
    let interims = |site: &Site| {
        site.radius()
            .detail()
            .iter()
            .filter(|r| {
                r.get("Acct-Status-Type") == Some("Interim-Update")
                    && r.get("Acct-Session-Id") == Some(&sid)
            })
            .count()
    };
    let n = interims(&site);
    let more = wait_for(20 * SEC, || {
        let _ = c.recv_ip(Duration::from_millis(200));
        (interims(&site) > n).then_some(())
    });
    assert!(more.is_some(), "no Interim-Update after the restart");
    let rx = site.metrics().member("v4@isp", "receive_bytes");
    c.padt();
    site.wait_member_gone("v4@isp");
    let stop = site.radius().wait_detail(10 * SEC, |r| {
        r.get("Acct-Status-Type") == Some("Stop") && r.get("Acct-Session-Id") == Some(&sid)
    });
    assert_eq!(stop.number("Acct-Input-Octets"), Some(rx), "{stop:?}");
}
