//! The member routes in the kernel (`[routes] table = N`), without BIRD:
//! the reconciliation at start, a table moved or dropped by a reload, the
//! withdrawal while the datapath is detached, and what happens without
//! `[routes]`. Each test runs its own daemon in a namespace of its own.
use std::time::{Duration, Instant};

use serde_json::json;
use tests::{
    api::{Site, SiteOptions},
    bgp::kernel_routes,
};

const SEC: Duration = Duration::from_secs(1);

/// alice and carol, the sites' members of the configuration file, as
/// the table should hold them.
fn members() -> Vec<String> {
    let mut v: Vec<String> = ["198.51.100.7/32", "2001:db8:1001::/48", "198.51.100.32/28"]
        .iter()
        .map(|p| format!("blackhole {p} proto 150"))
        .collect();
    v.sort();
    v
}

fn site(tag: &str, extra: &str) -> Site {
    Site::new(
        tag,
        SiteOptions {
            extra: extra.into(),
            ..SiteOptions::default()
        },
    )
}

/// Polls `f` until it returns `want`; panics with the last value after
/// `timeout`.
fn wait_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    want: &T,
    mut f: impl FnMut() -> T,
) -> Duration {
    let start = Instant::now();
    loop {
        let now = f();
        if now == *want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{what}: not {want:?} within {timeout:?}, but {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn start_reconciles_the_table_and_leaves_other_routes_alone() {
    let mut site = site("routes-start", "\n[routes]\ntable = 100\n");
    let ns = &site.ns;
    // What a previous run and others left: a stale route of ours, one of
    // ours that is right, routes of other protocols in table 100 (one on a
    // member's prefix), ours in another table, and the main table's.
    for args in [
        &[
            "route",
            "add",
            "blackhole",
            "198.51.100.99/32",
            "table",
            "100",
            "proto",
            "150",
        ][..],
        &[
            "route",
            "add",
            "blackhole",
            "198.51.100.7/32",
            "table",
            "100",
            "proto",
            "150",
        ],
        &[
            "-6",
            "route",
            "add",
            "blackhole",
            "2001:db8:dead::/48",
            "table",
            "100",
            "proto",
            "150",
        ],
        &[
            "route",
            "add",
            "blackhole",
            "10.0.0.0/8",
            "table",
            "100",
            "proto",
            "static",
        ],
        &[
            "route",
            "add",
            "unreachable",
            "198.51.100.32/28",
            "table",
            "100",
            "proto",
            "static",
        ],
        &[
            "route",
            "add",
            "blackhole",
            "198.51.100.98/32",
            "table",
            "101",
            "proto",
            "150",
        ],
        &[
            "route",
            "add",
            "blackhole",
            "198.51.100.97/32",
            "proto",
            "150",
        ],
    ] {
        ns.ip(args);
    }
    let others = kernel_routes(ns, 100, None)
        .into_iter()
        .filter(|r| !r.ends_with("proto 150"))
        .collect::<Vec<_>>();
    assert_eq!(
        others,
        [
            "blackhole 10.0.0.0/8 proto static",
            "unreachable 198.51.100.32/28 proto static"
        ]
    );
    site.start();
    let ns = &site.ns;
    // carol's /28 is taken by a static route: not ours to replace.
    let want: Vec<String> = members()
        .into_iter()
        .filter(|r| !r.contains("198.51.100.32/28"))
        .collect();
    wait_eq("table 100, ours", 5 * SEC, &want, || {
        kernel_routes(ns, 100, Some(150))
    });
    let other_now: Vec<String> = kernel_routes(ns, 100, None)
        .into_iter()
        .filter(|r| !r.ends_with("proto 150"))
        .collect();
    assert_eq!(other_now, others, "other protocols' routes are untouched");
    assert_eq!(
        kernel_routes(ns, 101, None),
        ["blackhole 198.51.100.98/32 proto 150"],
        "another table is untouched"
    );
    let main = ns.ip(&["route", "show", "proto", "150"]);
    assert!(
        main.contains("198.51.100.97"),
        "the main table is untouched: {main}"
    );
    let log = site.daemon().log();
    assert!(
        log.contains("198.51.100.32/28") && log.contains("not collecte's"),
        "the conflict is logged:\n{log}"
    );
    let m = site.daemon().metrics();
    assert_eq!(
        m.value("collecte_routes_exported", &[("table", "100")]),
        Some(2.0)
    );

    // Once the static route goes, a reload (the same file) brings carol's
    // route.
    ns.ip(&[
        "route",
        "del",
        "198.51.100.32/28",
        "table",
        "100",
        "proto",
        "static",
    ]);
    site.daemon().reload(&site.config());
    wait_eq("table 100, ours", 5 * SEC, &members(), || {
        kernel_routes(ns, 100, Some(150))
    });
}

#[test]
fn without_routes_nothing_is_exported_and_drain_is_refused() {
    let mut site = site("routes-none", "");
    site.start();
    let c = site.client();
    let put = c.put(
        "/v1/members/dave",
        &json!({"interface": "acc1", "c_vlan": 103, "prefixes": ["198.51.100.48/30"]}),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let resp = c.put("/v1/drain", &json!({"drained": true}));
    assert_eq!(resp.status, 409, "{}", resp.text());
    assert!(resp.json()["error"].as_str().unwrap().contains("[routes]"));
    let h = c.get("/v1/health").json();
    assert_eq!(h["drained"], json!(false));
    assert!(h.get("routes_exported").is_none(), "{h}");
    assert_eq!(
        c.get("/v1/drain").json(),
        json!({"drained": false, "table": null, "exported": 0})
    );
    let m = site.daemon().metrics();
    assert!(!m.text.contains("collecte_routes"), "{}", m.text);
    for table in [100, 254, 255] {
        assert!(kernel_routes(&site.ns, table, Some(150)).is_empty());
    }
    assert!(!site.state_file().with_extension("json.drain").exists());
}

#[test]
fn a_bad_table_is_refused_by_name() {
    let site = site("routes-bad", "");
    for (table, words) in [
        ("254", "254 is the kernel's main table"),
        ("0", "0 means no table"),
        ("4294967296", "4294967296 is out of range"),
    ] {
        let config = site.config() + &format!("\n[routes]\ntable = {table}\n");
        let out = site.run_once(&config);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("[routes] table") && err.contains(words),
            "{table}: {err}"
        );
    }
}

#[test]
fn a_detached_interface_withdraws_the_routes_until_it_is_back() {
    let mut site = site("routes-detach", "\n[routes]\ntable = 100\n");
    site.start();
    let ns = &site.ns;
    wait_eq("table 100", 5 * SEC, &members(), || {
        kernel_routes(ns, 100, Some(150))
    });
    // acc1 disappears: the datapath is detached from it.
    ns.ip(&["link", "del", "acc1"]);
    wait_eq("table 100", 5 * SEC, &Vec::<String>::new(), || {
        kernel_routes(ns, 100, Some(150))
    });
    let log = site.daemon().log();
    assert!(
        log.contains("the datapath is detached from acc1: withdrawing every member route"),
        "{log}"
    );
    assert_eq!(
        site.client().get("/v1/health").json()["status"],
        json!("degraded")
    );
    // Back: attached again, announced again.
    ns.veth("acc1", "02:00:00:00:00:21", "t0", "02:00:00:00:00:2f");
    wait_eq("table 100", 5 * SEC, &members(), || {
        kernel_routes(ns, 100, Some(150))
    });
    assert!(
        site.daemon()
            .log()
            .contains("attached to every interface again")
    );
}

#[test]
fn a_reload_moves_the_routes_to_a_new_table_and_can_stop_the_export() {
    let mut site = site("routes-reload", "\n[routes]\ntable = 100\n");
    site.start();
    let ns = &site.ns;
    wait_eq("table 100", 5 * SEC, &members(), || {
        kernel_routes(ns, 100, Some(150))
    });
    let d = site.daemon.as_ref().unwrap();
    d.reload(&site.config().replace("table = 100", "table = 4000000000"));
    wait_eq("table 4000000000", 5 * SEC, &members(), || {
        kernel_routes(ns, 4_000_000_000, Some(150))
    });
    assert!(kernel_routes(ns, 100, Some(150)).is_empty());
    let m = d.metrics();
    assert_eq!(
        m.value("collecte_routes_exported", &[("table", "4000000000")]),
        Some(3.0)
    );
    // [routes] removed: nothing is exported any more.
    let mut plain = site.config();
    plain = plain.replace("\n[routes]\ntable = 100\n", "");
    assert!(!plain.contains("[routes]"));
    d.reload(&plain);
    wait_eq("table 4000000000", 5 * SEC, &Vec::<String>::new(), || {
        kernel_routes(ns, 4_000_000_000, Some(150))
    });
    let deadline = Instant::now() + 5 * SEC;
    while d.metrics().text.contains("collecte_routes") {
        assert!(Instant::now() < deadline, "the routes' gauges stay");
        std::thread::sleep(Duration::from_millis(20));
    }
}
