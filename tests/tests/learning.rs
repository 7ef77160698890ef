//! CPE MAC learning for members without `mac`: in the datapath (what it
//! reports, and what it does not), and in the daemon (the member takes the
//! MAC, logs it, shows it in the API and `collecte member show`, keeps it
//! across a restart, and takes a new CPE's MAC again).
use std::time::{Duration, Instant};

use collecte::datapath::action::{DROP, PASS, REDIRECT};
use router_common::{MemberCounters, reason};
use serde_json::Value;
use tests::{
    api::{Site, SiteOptions},
    fixtures::{
        ACC0, ALICE, ALICE4, CONFIG, DAVE, DAVE4, INTERNET4, REMOTE, STRANGER, UNTAGGED, UP0,
        forwarded, frame, rx, tx,
    },
    frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ether, ipv4_udp, mac},
    harness::{Fixture, Harness},
    tagged::RawPort,
    wire::{ARP_REQUEST, arp},
};

const NEW_CPE: &str = "02:00:00:00:01:44";

/// dave (untagged on acc0, no `mac`): his first frame that passes the
/// source check is reported, once; frames that fail it teach nothing;
/// once the tables learn the MAC, downstream goes to it; a new CPE is
/// reported and learned again. alice's configured MAC is never replaced.
#[test]
fn the_datapath_reports_cpe_macs_and_downstream_uses_them() {
    let mut h = Harness::new("learn", CONFIG);
    let payload = [0x33u8; 20];
    let up = ipv4_udp(DAVE4, INTERNET4, 64, &payload);
    let down = ipv4_udp(INTERNET4, DAVE4, 64, &payload);
    let not_his = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let unlearned = Fixture {
        name: "downstream to dave before learning goes to the kernel".into(),
        ingress: "up0",
        input: frame(UP0, REMOTE, UNTAGGED, &down),
        action: PASS,
        reason: reason::PASS_NO_NEIGHBOR,
        output: frame(UP0, REMOTE, UNTAGGED, &down),
        egress: None,
        members: vec![],
    };
    h.run_table(std::slice::from_ref(&unlearned));
    // A spoofed frame on dave's line teaches nothing.
    let (action, _) = h.run("acc0", &frame(ACC0, DAVE, UNTAGGED, &not_his));
    assert_eq!(action, DROP, "spoofed");
    assert_eq!(h.learn_events(), vec![], "a spoofed frame teaches nothing");
    let upstream = |cpe: &str| {
        forwarded(
            "dave upstream",
            "acc0",
            (ACC0, cpe, UNTAGGED),
            &up,
            "up0",
            ("02:00:00:00:00:01", UP0, UNTAGGED),
            reason::FWD_UPSTREAM,
            vec![("dave", rx(up.len()))],
        )
    };
    h.run_table(&[upstream(DAVE), upstream(DAVE)]);
    assert_eq!(
        h.learn_events(),
        vec![("dave".to_string(), mac(DAVE))],
        "reported once"
    );
    assert!(matches!(
        h.learn("dave", mac(DAVE)),
        router_core::tables::learned::Learned::New { .. }
    ));
    let to = |cpe: &str| {
        forwarded(
            "downstream to dave goes to the MAC learned",
            "up0",
            (UP0, REMOTE, UNTAGGED),
            &down,
            "acc0",
            (cpe, ACC0, UNTAGGED),
            reason::FWD_DOWNSTREAM,
            vec![("dave", tx(down.len()))],
        )
    };
    h.run_table(&[to(DAVE), upstream(DAVE)]);
    assert_eq!(h.learn_events(), vec![], "the MAC in force is not reported");
    // A new CPE on dave's line.
    h.run_table(&[upstream(NEW_CPE)]);
    assert_eq!(h.learn_events(), vec![("dave".to_string(), mac(NEW_CPE))]);
    assert!(matches!(
        h.learn("dave", mac(NEW_CPE)),
        router_core::tables::learned::Learned::Changed { .. }
    ));
    h.run_table(&[to(NEW_CPE)]);
    // alice has a configured MAC: another one is spoofed and not reported.
    let alice_up = ipv4_udp(ALICE4, INTERNET4, 64, &payload);
    let (action, _) = h.run("acc0", &frame(ACC0, STRANGER, UNTAGGED, &alice_up));
    assert_eq!(action, DROP);
    let (action, _) = h.run("acc0", &frame(ACC0, ALICE, UNTAGGED, &alice_up));
    assert_eq!(action, REDIRECT);
    assert_eq!(h.learn_events(), vec![], "alice's MAC is configured");
    let _ = MemberCounters::default();
}

/// `GET /v1/members/carol`, until its `learned_mac` is `want` (10 s).
fn wait_learned(site: &Site, want: &str) -> Value {
    let c = site.client();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let m = c.get("/v1/members/carol").json();
        if m["learned_mac"] == Value::String(want.into()) {
            return m;
        }
        assert!(
            Instant::now() < end,
            "carol's learned MAC is not {want} after 10 s: {m}\nlog:\n{}",
            site.daemon().log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// carol (QinQ 10/102 on acc1, no `mac` in the configuration) ARPs for
/// her gateway from her CPE: the daemon learns its MAC, logs it, and the
/// API and `collecte member show` show it; it survives a restart (kill -9
/// included); a new CPE is learned again, and the change logged.
#[test]
fn the_daemon_learns_shows_and_keeps_cpe_macs() {
    let mut site = Site::new("learn-d", SiteOptions::default());
    site.ns
        .ip(&["addr", "add", "198.51.100.1/32", "dev", "acc1", "nodad"]);
    site.start();
    let port = RawPort::open(site.ns.name(), "t0");
    let tags = [(ETH_P_8021AD, 10), (ETH_P_8021Q, 102)];
    let carol4 = "198.51.100.33".parse().unwrap();
    let gw = "198.51.100.1".parse().unwrap();
    let arp_from = |cpe: &str| {
        let body = arp(ARP_REQUEST, mac(cpe), carol4, [0; 6], gw);
        ether([0xff; 6], mac(cpe), &tags, ETH_P_ARP, &body)
    };
    let first = "02:00:00:00:01:03";
    let m = site.client().get("/v1/members/carol").json();
    assert!(m.get("learned_mac").is_none(), "nothing learned yet: {m}");
    port.send(&arp_from(first));
    wait_learned(&site, first);
    let log = site.daemon().log();
    assert!(
        log.contains("CPE MAC learned") && log.contains(first),
        "the learning is logged:\n{log}"
    );
    let out = site.cli(&["show", "carol"]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.contains("learned mac:") && shown.contains(first),
        "member show:\n{shown}"
    );
    // A restart (kill -9: nothing saved on the way out) keeps it, before
    // any new frame from carol.
    site.kill9();
    site.start();
    wait_learned(&site, first);
    // A new CPE.
    port.send(&arp_from(NEW_CPE));
    wait_learned(&site, NEW_CPE);
    let log = site.daemon().log();
    assert!(
        log.contains("a new CPE") && log.contains(NEW_CPE),
        "the new CPE is logged:\n{log}"
    );
}
