//! Issue 15: PPPoE sessions refused cleanly, with nothing left in the
//! tables: a wrong password, an Access-Reject, an Access-Accept whose
//! address overlaps another member's, and RADIUS unreachable. See
//! `tests::pppoe_site` for the site.
use std::time::Duration;

use tests::pppoe_site::{Site, SiteOptions, dial_pap};

const SEC: Duration = Duration::from_secs(1);

/// Nothing of user `id` in the tables or among the sessions up, and only
/// alice as a member.
fn nothing_left(site: &Site, id: &str) {
    assert_eq!(site.member(id).0, 404, "member {id} left in the tables");
    let m = site.metrics();
    assert_eq!(m.value("collecte_members", &[]), Some(1.0), "only alice");
    assert_eq!(m.count("collecte_pppoe_sessions", &[("state", "up")]), 0);
    assert!(site.sessions().iter().all(|s| s["state"] != "up"));
}

#[test]
fn wrong_password_reject_and_overlap_are_refused() {
    let site = Site::start(
        "pppoe-refuse",
        SiteOptions {
            metrics_port: 9645,
            ..SiteOptions::default()
        },
    );
    // A wrong password: PAP-NAK.
    let mut c = site.client(7, &[]);
    let err = dial_pap(&mut c, "v4@isp", "not-the-password").unwrap_err();
    assert!(err.to_string().contains("PAP refused"), "{err:#}");
    c.expect_padt(5 * SEC).expect("a PADT after the refusal");
    nothing_left(&site, "v4@isp");
    // An account RADIUS rejects.
    let mut r = site.client(8, &[]);
    assert!(dial_pap(&mut r, "rejected", "rejected-pass").is_err());
    nothing_left(&site, "rejected");
    let m = site.metrics();
    assert!(
        m.count(
            "collecte_radius_requests_total",
            &[("kind", "auth"), ("result", "reject")]
        ) >= 2,
        "the rejects were not counted"
    );
    // RADIUS accepts, but the address is alice's: refused, logged.
    let mut t = site.client(9, &[]);
    assert!(dial_pap(&mut t, "thief@isp", "thief-pass").is_err());
    nothing_left(&site, "thief@isp");
    let log = site.daemon.log();
    assert!(
        log.contains("thief@isp") && log.contains("alice"),
        "the refusal is not logged with the member it overlaps:\n{log}"
    );
    // The refused ones leave the line usable: a good login works.
    let mut ok = site.client(10, &[]);
    dial_pap(&mut ok, "v4@isp", "v4-pass").expect("a good login after the refusals");
    site.wait_up(1);
}

#[test]
fn radius_unreachable_ends_the_negotiation_cleanly() {
    let site = Site::start(
        "pppoe-noradius",
        SiteOptions {
            metrics_port: 9646,
            unreachable: true,
            radius: "timeout = \"1s\"\nretries = 1\n".into(),
            ..SiteOptions::default()
        },
    );
    let mut c = site.client(11, &[]);
    c.timeout = 10 * SEC;
    let err = dial_pap(&mut c, "v4@isp", "v4-pass").unwrap_err();
    assert!(err.to_string().contains("PAP refused"), "{err:#}");
    nothing_left(&site, "v4@isp");
    let m = site.metrics();
    assert_eq!(
        m.count(
            "collecte_radius_requests_total",
            &[("kind", "auth"), ("result", "timeout")]
        ),
        1
    );
    let log = site.daemon.log();
    assert!(
        log.contains("no RADIUS server answered"),
        "the log does not say why:\n{log}"
    );
}
