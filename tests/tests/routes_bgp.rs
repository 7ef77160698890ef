//! The member routes announced by a real BIRD 2: collecte exports them to
//! kernel table 100 (`[routes]`), the router's BIRD (`examples/bird.conf`)
//! learns them and announces them over BGP to a core BIRD, whose tables
//! the tests read. Each router and the core live in namespaces of their
//! own (see `tests::bgp`).
use std::{
    collections::BTreeMap,
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tests::{
    api::{Req, SiteOptions},
    bgp::{Core, Router},
};

const SEC: Duration = Duration::from_secs(1);

/// alice and carol, the sites' members of the configuration file.
const CONFIG_PREFIXES: [&str; 3] = ["198.51.100.7/32", "2001:db8:1001::/48", "198.51.100.32/28"];
const DAVE: [&str; 2] = ["198.51.100.48/30", "2001:db8:1004::/48"];

fn dave(prefixes: &[&str]) -> Value {
    json!({"interface": "acc1", "c_vlan": 103, "mac": "02:00:00:00:01:04", "prefixes": prefixes})
}

/// What the core should have: each prefix via each router's address of
/// its family.
fn via(prefixes: &[&str], routers: &[&Router]) -> BTreeMap<String, Vec<String>> {
    prefixes
        .iter()
        .map(|p| {
            let mut hops: Vec<String> = routers
                .iter()
                .map(|r| {
                    if p.contains(':') {
                        r.next_hop6()
                    } else {
                        r.next_hop4()
                    }
                })
                .collect();
            hops.sort();
            ((*p).to_owned(), hops)
        })
        .collect()
}

/// A core and `n` routers serving alice and carol, collecte and BIRD
/// running everywhere, every session established.
fn site(tag: &str, n: u32) -> (Core, Vec<Router>) {
    let mut core = Core::new(tag);
    let mut routers: Vec<Router> = (0..n)
        .map(|i| Router::new(&core, tag, i, SiteOptions::default()))
        .collect();
    core.start(n);
    for r in &mut routers {
        r.site.start();
        r.start_bird();
    }
    let names: Vec<String> = (0..n)
        .flat_map(|i| [format!("r{i}v4"), format!("r{i}v6")])
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    core.bird().wait_established(&names, 60 * SEC);
    for r in &routers {
        r.bird().wait_established(&["core4", "core6"], 10 * SEC);
    }
    (core, routers)
}

/// `collecte routes ARGS` against router `r`'s API.
fn routes_cli(r: &Router, args: &[&str]) -> Output {
    let bin = tests::daemon::binary();
    let url = r.site.endpoint.url();
    let token = r.site.token_file();
    let mut all = vec!["routes"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--api", &url, "--token-file", token.to_str().unwrap()]);
    r.site.ns.exec(bin.to_str().unwrap(), &all)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Polls router `r`'s kernel table until it has exactly `prefixes` (as
/// blackholes of protocol 150); how long that took.
fn wait_kernel(r: &Router, prefixes: &[&str], timeout: Duration) -> Duration {
    let mut want: Vec<String> = prefixes
        .iter()
        .map(|p| format!("blackhole {p} proto 150"))
        .collect();
    want.sort();
    let start = Instant::now();
    loop {
        let now = r.kernel_routes();
        if now == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "table 100 did not become {want:?} within {timeout:?}: {now:?}\n{}",
            r.site.daemon().log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn health(r: &Router) -> Value {
    r.site.client().get("/v1/health").json()
}

#[test]
fn the_core_learns_every_member_and_follows_the_api() {
    let (core, routers) = site("bgp-api", 1);
    let r = &routers[0];
    // Every member prefix, with the router as next hop; in the kernel
    // table as blackholes of protocol 150, and counted.
    core.wait_for("the members", 10 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[r])
    });
    wait_kernel(r, &CONFIG_PREFIXES, SEC);
    let m = r.site.daemon().metrics();
    assert_eq!(
        m.value("collecte_routes_exported", &[("table", "100")]),
        Some(3.0)
    );
    assert_eq!(
        m.value("collecte_routes_drained", &[("table", "100")]),
        Some(0.0)
    );
    let h = health(r);
    assert_eq!(
        (&h["drained"], &h["routes_exported"]),
        (&json!(false), &json!(3)),
        "{h}"
    );

    // A member added through the API: in the kernel table within a
    // second, at the core within a few.
    let c = r.site.client();
    let put = c.put("/v1/members/dave", &dave(&DAVE));
    assert_eq!(put.status, 201, "{}", put.text());
    let all: Vec<&str> = CONFIG_PREFIXES.iter().chain(&DAVE).copied().collect();
    let kernel = wait_kernel(r, &all, SEC);
    let bgp = core.wait_for("dave", 5 * SEC, |h| *h == via(&all, &[r]));
    eprintln!("a PUT reached the kernel table in {kernel:?}, the core in {bgp:?}");

    // Replaced with another IPv6 prefix: the old one goes, the new comes.
    let moved = [DAVE[0], "2001:db8:1005::/56"];
    let put = c.put("/v1/members/dave", &dave(&moved));
    assert_eq!(put.status, 200, "{}", put.text());
    let all: Vec<&str> = CONFIG_PREFIXES.iter().chain(&moved).copied().collect();
    wait_kernel(r, &all, SEC);
    core.wait_for("dave's new prefix", 5 * SEC, |h| *h == via(&all, &[r]));

    // Deleted with the CLI: gone from the table and the core.
    let out = r.site.cli(&["delete", "dave"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_kernel(r, &CONFIG_PREFIXES, SEC);
    core.wait_for("dave gone", 5 * SEC, |h| *h == via(&CONFIG_PREFIXES, &[r]));

    // A full sync: the API's members become exactly these.
    let sync = c.put(
        "/v1/members",
        &json!({"members": [{"id": "erin", "interface": "acc0", "prefixes": ["198.51.100.64/26"]}]}),
    );
    assert_eq!(sync.status, 200, "{}", sync.text());
    let all: Vec<&str> = CONFIG_PREFIXES
        .iter()
        .copied()
        .chain(["198.51.100.64/26"])
        .collect();
    wait_kernel(r, &all, SEC);
    core.wait_for("erin", 5 * SEC, |h| *h == via(&all, &[r]));
}

#[test]
fn drain_withdraws_everything_and_undrain_restores_it() {
    let (core, mut routers) = site("bgp-drain", 1);
    let r = &mut routers[0];
    core.wait_for("the members", 10 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[&*r])
    });
    let c = r.site.client();

    // The API's refusals change nothing.
    for body in [&br#"{"drained":"yes"}"#[..], br#"{}"#, br#"nope"#] {
        let resp = c
            .send(c.req("PUT", "/v1/drain", Some(body.to_vec())))
            .unwrap();
        assert_eq!(resp.status, 400, "{}", resp.text());
    }
    let resp = c
        .send(Req {
            auth: None,
            ..c.req("PUT", "/v1/drain", Some(br#"{"drained":true}"#.to_vec()))
        })
        .unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(health(r)["drained"], json!(false));

    // Drained with the CLI: every route leaves the table and the core,
    // the fast path stays attached.
    let out = routes_cli(r, &["drain"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("drained"), "{}", text(&out));
    wait_kernel(r, &[], SEC);
    core.wait_for("nothing", 5 * SEC, BTreeMap::is_empty);
    let h = health(r);
    assert_eq!(
        (&h["drained"], &h["attached"], &h["routes_exported"]),
        (&json!(true), &json!(true), &json!(0)),
        "{h}"
    );
    let m = r.site.daemon().metrics();
    assert_eq!(
        m.value("collecte_routes_drained", &[("table", "100")]),
        Some(1.0)
    );
    let out = routes_cli(r, &["status"]);
    assert_eq!(
        text(&out),
        "table 100: 0 member route(s) exported, drained\n"
    );

    // Writes while drained reach the datapath, not the table.
    let put = c.put("/v1/members/dave", &dave(&DAVE));
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(health(r)["members"], json!(3));

    // The state survives a restart (SIGKILL: no goodbye).
    r.site.kill9();
    r.site.start();
    assert_eq!(health(r)["drained"], json!(true));
    std::thread::sleep(SEC / 2);
    assert!(r.kernel_routes().is_empty(), "{:?}", r.kernel_routes());
    assert!(core.next_hops().is_empty(), "{:?}", core.next_hops());

    // Undrained through the API: everything is back, dave included.
    let resp = c.put("/v1/drain", &json!({"drained": false}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["drained"], json!(false));
    assert_eq!(resp.json()["table"], json!(100));
    let all: Vec<&str> = CONFIG_PREFIXES.iter().chain(&DAVE).copied().collect();
    wait_kernel(r, &all, SEC);
    core.wait_for("everything back", 5 * SEC, |h| *h == via(&all, &[&*r]));
    let resp = c.get("/v1/drain");
    assert_eq!(
        resp.json(),
        json!({"drained": false, "table": 100, "exported": 5})
    );
}

/// The core's view, sampled every 20 ms on a thread until stopped: the
/// samples where something it had at the start was missing.
fn sample_gaps(core: &Core, stop: &AtomicBool) -> Vec<String> {
    let before = core.next_hops();
    let mut gaps = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = core.next_hops();
        if now != before {
            gaps.push(format!("{now:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    gaps
}

#[test]
fn a_restart_keeps_the_announcement_and_stop_detach_withdraws() {
    let (core, mut routers) = site("bgp-restart", 1);
    let r = &mut routers[0];
    core.wait_for("the members", 10 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[&*r])
    });
    // Settled: what BIRD has received so far, and when each route last
    // changed.
    std::thread::sleep(SEC);
    let stats = |core: &Core| {
        (
            core.bird().import_stats("r0v4"),
            core.bird().import_stats("r0v6"),
        )
    };
    let since = |core: &Core| -> Vec<String> {
        core.paths()
            .values()
            .flatten()
            .map(|p| format!("{} {}", p.prefix, p.since))
            .collect()
    };
    let (stats_before, since_before) = (stats(&core), since(&core));

    let stop = Arc::new(AtomicBool::new(false));
    let gaps = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample_gaps(&core, &stop));
        // A clean stop and a crash, each followed by a start.
        let d = r.site.daemon.as_mut().unwrap();
        assert!(d.stop(libc::SIGTERM, 10 * SEC).success());
        drop(r.site.daemon.take());
        r.site.start();
        r.site.kill9();
        r.site.start();
        // Long enough for a wrong reconciliation to show.
        std::thread::sleep(2 * SEC);
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap()
    });
    assert!(
        gaps.is_empty(),
        "the core's routes changed during the restarts: {gaps:#?}"
    );
    assert_eq!(
        stats(&core),
        stats_before,
        "BGP updates or withdrawals during the restarts"
    );
    assert_eq!(since(&core), since_before);
    assert!(
        r.site
            .daemon()
            .log()
            .contains("taking over the pinned datapath")
    );

    // Stopped, then `collecte stop --detach`: the routes go.
    let d = r.site.daemon.as_mut().unwrap();
    assert!(d.stop(libc::SIGTERM, 10 * SEC).success());
    let out = d.stop_detach();
    assert!(
        out.contains("removed 3 member route(s) from routing table 100"),
        "{out}"
    );
    wait_kernel(r, &[], SEC);
    core.wait_for("nothing", 5 * SEC, BTreeMap::is_empty);
    assert!(
        core.bird().import_stats("r0v4").withdraws_received > stats_before.0.withdraws_received
    );
}

#[test]
fn two_routers_give_the_core_two_paths_and_draining_one_leaves_the_other() {
    let (core, routers) = site("bgp-two", 2);
    let (r0, r1) = (&routers[0], &routers[1]);
    core.wait_for("two paths to each member", 10 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[r0, r1])
    });
    let resp = r0.site.client().put("/v1/drain", &json!({"drained": true}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    core.wait_for("router 1's paths only", 5 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[r1])
    });
    assert_eq!(health(r1)["drained"], json!(false));
    let resp = r0
        .site
        .client()
        .put("/v1/drain", &json!({"drained": false}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    core.wait_for("both paths again", 5 * SEC, |h| {
        *h == via(&CONFIG_PREFIXES, &[r0, r1])
    });
}
