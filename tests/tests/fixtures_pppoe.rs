//! The PPPoE fast path's fixture rows (`tests::fixtures::pppoe_rows`) under
//! their own topology (`CONFIG_PPPOE`): pat, quinn and rose are PPPoE
//! members with sessions on untagged, 802.1Q and QinQ lines, sam a PPPoE
//! member without one. Each row runs through the forwarding instance and
//! the tracer's, whose PPPoE programs are reached by tail calls too.
use tests::{
    fixtures::{pppoe, pppoe_rows},
    harness::Harness,
};

fn harness(tag: &str) -> Harness {
    let mut h = Harness::new(tag, pppoe::CONFIG_PPPOE);
    h.pppoe(pppoe::SESSIONS, pppoe::NO_SESSION);
    h
}

#[test]
fn pppoe_forwarding_fixtures() {
    harness("fx-pppoe-fwd").run_table(&pppoe_rows::forwarding());
}

#[test]
fn pppoe_not_forwarded_fixtures() {
    harness("fx-pppoe-pass").run_table(&pppoe_rows::not_forwarded());
}

#[test]
fn pppoe_clamping_fixtures() {
    harness("fx-pppoe-mss").run_table(&pppoe_rows::clamping());
}

/// The datapath's session API: what `put_session` writes, `sessions`
/// reads back, and `remove_session` takes away (twice: absent is fine);
/// then the session's frames are unknown and its member's packets dropped.
#[test]
fn pppoe_session_api() {
    let mut h = harness("fx-pppoe-api");
    let listed = h.sessions();
    assert_eq!(listed.len(), pppoe::SESSIONS.len(), "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|(k, s)| k.session_id == pppoe::PAT_SID && s.mru == pppoe::MRU),
        "{listed:?}"
    );
    h.remove_session("pat", pppoe::PAT_SID);
    h.remove_session("pat", pppoe::PAT_SID);
    assert_eq!(h.sessions().len(), pppoe::SESSIONS.len() - 1);
    let ip = tests::frames::ipv4_udp(pppoe::PAT4, pppoe::INTERNET4, 64, &[1; 18]);
    let up = pppoe::session_frame(pppoe::from_pat(), pppoe::PAT_SID, &ip);
    let (action, out) = h.run("acc0", &up);
    assert_eq!(
        (action, out),
        (collecte::datapath::action::PASS, up),
        "a removed session's frame goes to the kernel unchanged"
    );
    let down = pppoe::from_uplink(&tests::frames::ipv4_udp(
        pppoe::INTERNET4,
        pppoe::PAT4,
        64,
        &[1; 18],
    ));
    let (action, _) = h.run("up0", &down);
    assert_eq!(
        action,
        collecte::datapath::action::DROP,
        "packets to a member whose session was removed are dropped"
    );
}
