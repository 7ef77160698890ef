//! End-to-end tests of the provisioning API (`[api]`), its persistence
//! (`[datapath] state`) and its client (`collecte member`): the real daemon
//! (`ip netns exec NS collecte run --config F`) on veth interfaces of a
//! namespace of its own per test, driven over HTTP as a provisioning system
//! would, killed with SIGKILL and restarted.
use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt as _,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tests::{
    api::{Client, Endpoint, Req, Resp, Site, SiteOptions, TOKEN, read_state},
    daemon::promtool,
    topology::wait_for,
};

const SEC: Duration = Duration::from_secs(1);

/// A small deterministic PRNG (xorshift64*), seeded per test and printed.
struct Rng(u64);

impl Rng {
    fn seeded(what: &str) -> Rng {
        let seed = std::env::var("COLLECTE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{what}: seed {seed} (set COLLECTE_TEST_SEED to replay)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// API member number `k` in variant `v` (k < 250): its own prefixes, an
/// attachment and MAC that change with `v`. Canonical form (as the API
/// echoes it), without the id.
fn api_member(k: u64, v: u64) -> Value {
    let mac = format!(
        "02:00:00:{:02x}:{:02x}:{:02x}",
        k,
        (v >> 8) & 0xff,
        v & 0xff
    );
    let prefixes = json!([
        format!("203.0.113.{k}/32"),
        format!("2001:db8:2000:{:x}::/64", k + 1)
    ]);
    if v.is_multiple_of(2) {
        json!({"interface": "acc0", "mac": mac, "prefixes": prefixes})
    } else {
        json!({"interface": "acc1", "c_vlan": v % 4000 + 1, "mac": mac, "prefixes": prefixes})
    }
}

fn with_id(id: &str, m: &Value) -> Value {
    let mut m = m.clone();
    m.as_object_mut().unwrap().insert("id".into(), id.into());
    m
}

/// The API members of a `GET /v1/members` answer, without slot and origin.
fn api_view(list: &Value) -> BTreeMap<String, Value> {
    list["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["origin"] == "api")
        .map(|m| {
            let mut m = m.clone();
            let o = m.as_object_mut().unwrap();
            o.remove("slot");
            o.remove("origin");
            (o["id"].as_str().unwrap().to_string(), m)
        })
        .collect()
}

fn members_gauge(site: &Site) -> u64 {
    site.daemon().metrics().count("collecte_members", &[])
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_endpoint_and_the_cli() {
    let mut site = Site::new("api-ep", SiteOptions::default());
    site.start();
    let c = site.client();

    // Health, without a token.
    let h = c
        .send(Req {
            method: "GET",
            path: "/v1/health",
            auth: None,
            content_type: None,
            body: None,
        })
        .unwrap();
    assert_eq!(h.status, 200, "{}", h.text());
    let h = h.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["attached"], true);
    assert_eq!(h["interfaces"], 3);
    assert_eq!(h["members"], 2);
    assert_eq!(h["config_members"], 2);
    assert_eq!(h["api_members"], 0);

    // The configuration's members, in the configuration's shape.
    let list = c.get("/v1/members");
    assert_eq!(list.status, 200);
    let l = list.json();
    assert_eq!(l["revision"], 0);
    let ids: Vec<&str> = l["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "carol"]);
    let alice = c.get("/v1/members/alice");
    assert_eq!(alice.status, 200);
    let a = alice.json();
    assert_eq!(a["origin"], "config");
    assert_eq!(a["interface"], "acc0");
    assert_eq!(a["mac"], "02:00:00:00:01:01");
    assert_eq!(
        a["prefixes"],
        json!(["198.51.100.7/32", "2001:db8:1001::/48"])
    );
    assert!(a["slot"].is_u64());
    assert_eq!(c.get("/v1/members/carol").json()["s_vlan"], 10);

    // Create (the id may be left out of the body), unchanged, replace.
    let bob = json!({"interface": "acc1", "c_vlan": 101, "mac": "02:00:00:00:01:02",
        "prefixes": ["198.51.100.16/29", "2001:db8:1002::/56"]});
    let r = c.put("/v1/members/bob", &bob);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.revision(), Some(1));
    let created = r.json();
    assert_eq!(created["id"], "bob");
    assert_eq!(created["origin"], "api");
    let slot = created["slot"].as_u64().unwrap();
    assert_eq!(members_gauge(&site), 3);
    assert!(
        site.daemon()
            .metrics()
            .value(
                "collecte_member_receive_packets_total",
                &[("member", "bob")]
            )
            .is_some()
    );
    let r = c.put("/v1/members/bob", &bob);
    assert_eq!((r.status, r.revision()), (200, Some(1)), "{}", r.text());
    let mut bob2 = with_id("bob", &bob);
    bob2["mac"] = "02:00:00:00:01:0B".into();
    let r = c.put("/v1/members/bob", &bob2);
    assert_eq!((r.status, r.revision()), (200, Some(2)), "{}", r.text());
    let shown = c.get("/v1/members/bob").json();
    assert_eq!(shown["mac"], "02:00:00:00:01:0b");
    assert_eq!(
        shown["slot"].as_u64(),
        Some(slot),
        "a replaced member keeps its slot"
    );
    assert_eq!(shown["c_vlan"], 101);
    let (rev, state) = read_state(&site.state_file());
    assert_eq!(rev, 2);
    assert_eq!(state["bob"]["mac"], "02:00:00:00:01:0b");

    // Delete.
    let r = c.delete("/v1/members/bob");
    assert_eq!((r.status, r.revision()), (204, Some(3)));
    assert!(r.body.is_empty());
    assert_eq!(c.get("/v1/members/bob").status, 404);
    assert_eq!(members_gauge(&site), 2);

    // Full sync: added, then replaced / removed / unchanged.
    let sync = |members: Vec<Value>| c.put("/v1/members", &json!({ "members": members }));
    let r = sync(vec![
        with_id("dave", &api_member(1, 0)),
        with_id("erin", &api_member(2, 1)),
    ]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"revision": 4, "members": 2, "added": 2, "replaced": 0, "removed": 0, "unchanged": 0})
    );
    let dave_slot = c.get("/v1/members/dave").json()["slot"].clone();
    let r = sync(vec![
        with_id("dave", &api_member(1, 0)),
        with_id("frank", &api_member(3, 3)),
    ]);
    assert_eq!(
        r.json(),
        json!({"revision": 5, "members": 2, "added": 1, "replaced": 0, "removed": 1, "unchanged": 1})
    );
    assert_eq!(
        c.get("/v1/members/dave").json()["slot"],
        dave_slot,
        "unchanged keeps its slot"
    );
    let r = sync(vec![
        with_id("dave", &api_member(1, 2)),
        with_id("frank", &api_member(3, 3)),
    ]);
    assert_eq!(
        r.json(),
        json!({"revision": 6, "members": 2, "added": 0, "replaced": 1, "removed": 0, "unchanged": 1})
    );
    let r = sync(vec![
        with_id("dave", &api_member(1, 2)),
        with_id("frank", &api_member(3, 3)),
    ]);
    assert_eq!(r.json()["revision"], 6, "an identical sync saves nothing");
    assert_eq!(c.get("/v1/members/dave").json()["slot"], dave_slot);
    // Config members are untouched by a sync.
    let view = c.get("/v1/members").json();
    assert_eq!(view["members"].as_array().unwrap().len(), 4);
    assert_eq!(members_gauge(&site), 4);
    let (rev, state) = read_state(&site.state_file());
    assert_eq!(rev, 6);
    assert_eq!(state.keys().collect::<Vec<_>>(), ["dave", "frank"]);

    // The CLI.
    let out = site.cli(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("ORIGIN") && lines[0].contains("PREFIXES"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[1].starts_with("alice") && lines[1].contains("config"),
        "{text}"
    );
    assert!(
        text.contains("dave") && text.contains("api") && text.contains("203.0.113.1/32"),
        "{text}"
    );
    let out = site.cli(&["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, c.get("/v1/members").json());
    let out = site.cli(&["show", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("s-vlan:") && stdout(&out).contains("10"),
        "{}",
        stdout(&out)
    );
    let out = site.cli(&[
        "set",
        "gina",
        "--interface",
        "acc1",
        "--s-vlan",
        "20",
        "--c-vlan",
        "200",
        "--mac",
        "02:00:00:00:02:01",
        "--prefix",
        "198.51.100.64/30",
        "--prefix",
        "2001:db8:1007::/48",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("created gina (slot "),
        "{}",
        stdout(&out)
    );
    let gina = c.get("/v1/members/gina").json();
    assert_eq!(
        (gina["s_vlan"].as_u64(), gina["c_vlan"].as_u64()),
        (Some(20), Some(200))
    );
    let file = site.dir.join("gina.json");
    std::fs::write(
        &file,
        json!({"id": "gina", "interface": "acc0", "prefixes": ["198.51.100.64/30"]}).to_string(),
    )
    .unwrap();
    let out = site.cli(&["set", "gina", "--file", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let echoed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(echoed["interface"], "acc0");
    assert_eq!(echoed["s_vlan"], Value::Null);
    let file = site.dir.join("gina.toml");
    std::fs::write(&file, "[[member]]\nid = \"gina\"\ninterface = \"acc1\"\nc_vlan = 7\nprefixes = [\"198.51.100.64/30\"]\n").unwrap();
    let out = site.cli(&["set", "gina", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("replaced gina"),
        "{}",
        stdout(&out)
    );
    assert_eq!(c.get("/v1/members/gina").json()["c_vlan"], 7);
    let out = site.cli(&["delete", "gina"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "deleted gina");
    assert_eq!(c.get("/v1/members/gina").status, 404);
    let file = site.dir.join("members.toml");
    std::fs::write(
        &file,
        "[[member]]\nid = \"hal\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.80/28\"]\n\n\
         [[member]]\nid = \"dave\"\ninterface = \"acc0\"\nmac = \"02:00:00:01:00:02\"\n\
         prefixes = [\"203.0.113.1/32\", \"2001:db8:2000:2::/64\"]\n",
    )
    .unwrap();
    let out = site.cli(&["sync", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .starts_with("synced: 1 added, 0 replaced, 1 removed, 1 unchanged; 2 API members"),
        "{}",
        stdout(&out)
    );
    let file = site.dir.join("members.json");
    std::fs::write(&file, json!({"members": [with_id("hal", &json!({"interface": "acc0", "prefixes": ["198.51.100.80/28"]}))]}).to_string()).unwrap();
    let out = site.cli(&["sync", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let synced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (synced["removed"].as_u64(), synced["members"].as_u64()),
        (Some(1), Some(1))
    );
    // Errors: the API's message, a non-zero exit.
    let out = site.cli(&[
        "set",
        "ivan",
        "--interface",
        "eth9",
        "--prefix",
        "198.51.100.96/30",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not one of the [[access]] interfaces"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("field interface"), "{}", stderr(&out));
    let out = site.cli(&["delete", "alice"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("managed by the configuration file"),
        "{}",
        stderr(&out)
    );
    let out = site.cli(&["show", "nobody"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no member has id \"nobody\""),
        "{}",
        stderr(&out)
    );
    std::fs::write(site.dir.join("wrong.token"), "not-the-token-at-all-0000\n").unwrap();
    let url = site.endpoint.url();
    let out = site.ns.exec(
        tests::daemon::binary().to_str().unwrap(),
        &[
            "member",
            "list",
            "--api",
            &url,
            "--token-file",
            site.dir.join("wrong.token").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert_eq!(members_gauge(&site), 3);
}

/// A router with no member at all (none in the file, none through the
/// API), and one emptied again by a delete and by a sync: health, the
/// list, `collecte member list` (table and JSON) and /metrics (checked by
/// promtool) all answer.
#[test]
fn an_empty_member_set_is_listed_and_scraped() {
    let mut site = Site::new(
        "api-empty",
        SiteOptions {
            members: String::new(),
            ..SiteOptions::default()
        },
    );
    site.start();
    let c = site.client();
    let check_empty = |site: &Site, revision: u64| {
        let h = c.get("/v1/health").json();
        assert_eq!(
            (
                &h["members"],
                &h["config_members"],
                &h["api_members"],
                &h["revision"]
            ),
            (&json!(0), &json!(0), &json!(0), &json!(revision)),
            "{h}"
        );
        let l = c.get("/v1/members");
        assert_eq!(l.status, 200, "{}", l.text());
        assert_eq!(l.json(), json!({"revision": revision, "members": []}));
        let out = site.cli(&["list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "ID  ORIGIN  SLOT  INTERFACE  S-VLAN  C-VLAN  MAC  PREFIXES\n",
            "the header alone"
        );
        let out = site.cli(&["list", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed, json!({"revision": revision, "members": []}));
        let m = site.daemon().metrics();
        promtool(&m.text);
        assert!(
            m.text.lines().any(|l| l == "collecte_members 0"),
            "collecte_members 0 in:\n{}",
            m.text
        );
        assert!(!m.text.contains("collecte_member_"), "{}", m.text);
    };
    check_empty(&site, 0);

    let bob = json!({"interface": "acc1", "c_vlan": 101, "mac": "02:00:00:00:01:02",
        "prefixes": ["198.51.100.16/29"]});
    let r = c.put("/v1/members/bob", &bob);
    assert_eq!((r.status, r.revision()), (201, Some(1)), "{}", r.text());
    assert_eq!(members_gauge(&site), 1);
    let r = c.delete("/v1/members/bob");
    assert_eq!((r.status, r.revision()), (204, Some(2)));
    check_empty(&site, 2);

    let r = c.put("/v1/members/bob", &bob);
    assert_eq!((r.status, r.revision()), (201, Some(3)), "{}", r.text());
    let r = c.put("/v1/members", &json!({"members": []}));
    assert_eq!(
        r.json(),
        json!({"revision": 4, "members": 0, "added": 0, "replaced": 0, "removed": 1, "unchanged": 0})
    );
    check_empty(&site, 4);
}

#[test]
fn unix_socket_survives_kill_and_stops_cleanly() {
    let mut site = Site::new(
        "api-unix",
        SiteOptions {
            unix_socket: true,
            ..SiteOptions::default()
        },
    );
    site.start();
    let Endpoint::Unix(sock) = site.endpoint.clone() else {
        unreachable!()
    };
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is for root only");
    let c = site.client();
    let r = c.put("/v1/members/bob", &api_member(5, 1));
    assert_eq!(r.status, 201, "{}", r.text());
    let out = site.cli(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("bob"), "{}", stdout(&out));
    // A stale socket left by SIGKILL does not stop the next start.
    site.kill9();
    assert!(sock.exists());
    site.start();
    assert_eq!(
        api_view(&c.get("/v1/members").json())["bob"],
        with_id("bob", &api_member(5, 1))
    );
    assert_eq!(members_gauge(&site), 3);
    // A clean stop removes the socket.
    let mut d = site.daemon.take().unwrap();
    let status = d.stop(libc::SIGTERM, 10 * SEC);
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn requests_without_the_token_are_refused_and_reveal_nothing() {
    let mut site = Site::new("api-auth", SiteOptions::default());
    site.start();
    let c = site.client();
    let wrong = [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
        Some("Bearer".to_string()),
    ];
    let member = json!({"interface": "acc0", "prefixes": ["198.51.100.64/30"]}).to_string();
    let sync = json!({"members": []}).to_string();
    let requests: [(&str, &str, Option<&str>); 9] = [
        ("GET", "/v1/members", None),
        ("GET", "/v1/members/alice", None),
        ("GET", "/v1/members/nobody", None),
        ("PUT", "/v1/members/zed", Some(&member)),
        ("DELETE", "/v1/members/alice", None),
        ("DELETE", "/v1/members/nobody", None),
        ("PUT", "/v1/members", Some(&sync)),
        ("GET", "/v1/nowhere", None),
        ("POST", "/v1/members", Some(&sync)),
    ];
    for auth in &wrong {
        for (method, path, body) in requests {
            let r = c
                .send(Req {
                    method,
                    path,
                    auth: auth.clone(),
                    content_type: body.map(|_| "application/json"),
                    body: body.map(|b| b.as_bytes().to_vec()),
                })
                .unwrap();
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.text());
            assert_eq!(r.text(), r#"{"error":"unauthorized"}"#, "{method} {path}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    assert!(
        !site.state_file().exists() && !site.journal_file().exists(),
        "nothing was written"
    );
    assert_eq!(members_gauge(&site), 2);
    // Health needs no token; the scheme's case does not matter.
    let r = c
        .send(Req {
            method: "GET",
            path: "/v1/health",
            auth: None,
            content_type: None,
            body: None,
        })
        .unwrap();
    assert_eq!(r.status, 200);
    let r = c
        .send(Req {
            method: "GET",
            path: "/v1/members",
            auth: Some(format!("bearer {TOKEN}")),
            content_type: None,
            body: None,
        })
        .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn token_file_must_be_private_and_is_read_again_on_sighup() {
    let mut site = Site::new("api-token", SiteOptions::default());
    let token = site.token_file();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = site.run_once(&site.config());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(token.to_str().unwrap())
            && err.contains(&format!("chmod 600 {}", token.display())),
        "{err}"
    );
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(!site.run_once(&site.config()).status.success());
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&token, "\n").unwrap();
    let out = site.run_once(&site.config());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();

    site.start();
    let mut c = site.client();
    assert_eq!(c.get("/v1/members").status, 200);
    let new = "fedcba9876543210-rotated-token";
    std::fs::write(&token, new).unwrap();
    site.daemon().signal(libc::SIGHUP);
    let old = c.clone();
    c.token = new.into();
    let rotated = wait_for(10 * SEC, || {
        (c.get("/v1/members").status == 200).then_some(())
    });
    assert!(
        rotated.is_some(),
        "the new token was never accepted; log:\n{}",
        site.daemon().log()
    );
    assert_eq!(old.get("/v1/members").status, 401);
    // An unusable token file at SIGHUP keeps the token in force.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::write(&token, "another-token-0123456789").unwrap();
    site.daemon().signal(libc::SIGHUP);
    let kept = wait_for(10 * SEC, || {
        site.daemon()
            .log()
            .contains("keeping the previous API token")
            .then_some(())
    });
    assert!(kept.is_some(), "log:\n{}", site.daemon().log());
    assert_eq!(c.get("/v1/members").status, 200);
}

/// The members every bad-request case starts from: alice and carol from the
/// file, bob from the API.
fn bob() -> Value {
    json!({"interface": "acc1", "c_vlan": 101, "mac": "02:00:00:00:01:02",
        "prefixes": ["198.51.100.16/29", "2001:db8:1002::/56"]})
}

#[test]
fn bad_requests_change_nothing() {
    let mut site = Site::new(
        "api-bad",
        SiteOptions {
            body_limit: Some("64KiB".into()),
            max_members: 16,
            ..SiteOptions::default()
        },
    );
    site.start();
    let c = site.client();
    assert_eq!(c.put("/v1/members/bob", &bob()).status, 201);
    let list_before = c.get("/v1/members").body;
    let state_before = site.state_bytes();
    assert!(!state_before.is_empty());
    let gauge_before = members_gauge(&site);

    let m = |extra: Value| {
        let mut base = json!({"interface": "acc0", "prefixes": ["198.51.100.64/30"]});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base.to_string()
    };
    let prefixes = |p: Value| m(json!({ "prefixes": p }));
    let sync_of = |members: Value| json!({ "members": members }).to_string();
    let good = |id: &str, p: &str| json!({"id": id, "interface": "acc0", "prefixes": [p]});
    let many: Vec<Value> = (0..15)
        .map(|k| good(&format!("n{k}"), &format!("203.0.113.{k}/32")))
        .collect();
    let big = m(json!({ "padding": "x".repeat(100 * 1024) }));
    let long_id = "a".repeat(65);
    let long_path = format!("/v1/members/{long_id}");
    let j = Some("application/json");

    // (method, path, content type, body, status, field)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        String,
        u16,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "PUT",
            "/v1/members/zed",
            j,
            r#"{"interface": "acc0", "#.into(),
            400,
            None,
        ),
        ("PUT", "/v1/members/zed", j, "".into(), 400, None),
        ("PUT", "/v1/members/zed", j, "[]".into(), 400, None),
        ("PUT", "/v1/members/zed", j, r#""acc0""#.into(), 400, None),
        (
            "PUT",
            "/v1/members/zed",
            j,
            format!("{} trailing", m(json!({}))),
            400,
            None,
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"colour": "red"})),
            400,
            Some("colour"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"c_vlan": "ten"})),
            400,
            Some("c_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"c_vlan": 70000})),
            400,
            Some("c_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"c_vlan": -1})),
            400,
            Some("c_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"prefixes": "198.51.100.64/30"})),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": 3})),
            400,
            Some("interface"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            r#"{"prefixes": ["198.51.100.64/30"]}"#.into(),
            400,
            None,
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.64"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.64/33"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.65/30"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["2001:db8:1009::1/48"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["127.0.0.1/32"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["224.0.0.0/24"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["fe80::/64"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!([])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.64/26", "198.51.100.64/28"])),
            400,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.7/32"])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.0/24"])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["2001:db8:1001:5::/64"])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["198.51.100.20/32"])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            prefixes(json!(["2001:db8:1000::/36"])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "acc1", "c_vlan": 0})),
            400,
            Some("c_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "acc1", "c_vlan": 4095})),
            400,
            Some("c_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "acc1", "s_vlan": 4095, "c_vlan": 5})),
            400,
            Some("s_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "acc1", "s_vlan": 10})),
            400,
            Some("s_vlan"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"mac": "01:00:5e:00:00:01"})),
            400,
            Some("mac"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"mac": "ff:ff:ff:ff:ff:ff"})),
            400,
            Some("mac"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"mac": "00:00:00:00:00:00"})),
            400,
            Some("mac"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"mac": "zz:zz:zz:zz:zz:zz"})),
            400,
            Some("mac"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"mac": "02:00:00:00:01"})),
            400,
            Some("mac"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "eth9"})),
            400,
            Some("interface"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"interface": "up0"})),
            400,
            Some("interface"),
        ),
        ("PUT", &long_path, j, m(json!({})), 400, Some("id")),
        ("PUT", "/v1/members/a%20b", j, m(json!({})), 400, Some("id")),
        ("PUT", "/v1/members/a!b", j, m(json!({})), 400, Some("id")),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"id": "zod"})),
            400,
            Some("id"),
        ),
        (
            "PUT",
            "/v1/members/zed",
            j,
            m(json!({"id": 7})),
            400,
            Some("id"),
        ),
        ("PUT", "/v1/members/zed", j, big.clone(), 413, None),
        (
            "PUT",
            "/v1/members/zed",
            Some("text/plain"),
            m(json!({})),
            415,
            None,
        ),
        ("PUT", "/v1/members/zed", None, m(json!({})), 415, None),
        (
            "PUT",
            "/v1/members/zed",
            Some("application/x-www-form-urlencoded"),
            "a=b".into(),
            415,
            None,
        ),
        (
            "PUT",
            "/v1/members/alice",
            j,
            prefixes(json!(["198.51.100.7/32"])),
            409,
            None,
        ),
        ("DELETE", "/v1/members/alice", None, "".into(), 409, None),
        ("DELETE", "/v1/members/nobody", None, "".into(), 404, None),
        ("DELETE", &long_path, None, "".into(), 400, Some("id")),
        ("GET", "/v1/members/nobody", None, "".into(), 404, None),
        ("GET", "/v1/nowhere", None, "".into(), 404, None),
        ("POST", "/v1/members", j, sync_of(json!([])), 405, None),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([
                good("x", "203.0.113.1/32"),
                good("x", "203.0.113.2/32")
            ])),
            400,
            Some("id"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([
                good("x", "203.0.113.0/24"),
                good("y", "203.0.113.2/32")
            ])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([good("x", "198.51.100.40/29")])),
            409,
            Some("prefixes"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([good("alice", "203.0.113.1/32")])),
            409,
            None,
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(
                json!([good("x", "203.0.113.1/32"), {"id": "y", "interface": "acc0", "prefixes": ["203.0.113.3/32"], "vlan": 3}]),
            ),
            400,
            Some("members[1].vlan"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([{"interface": "acc0", "prefixes": ["203.0.113.3/32"]}])),
            400,
            Some("members[0]"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!([good("x", "203.0.113.1/33")])),
            400,
            Some("members[0].prefixes"),
        ),
        (
            "PUT",
            "/v1/members",
            j,
            json!({"members": [], "extra": 1}).to_string(),
            400,
            Some("extra"),
        ),
        ("PUT", "/v1/members", j, "{}".into(), 400, None),
        ("PUT", "/v1/members", j, "[]".into(), 400, None),
        (
            "PUT",
            "/v1/members",
            j,
            r#"{"members": [}"#.into(),
            400,
            None,
        ),
        (
            "PUT",
            "/v1/members",
            Some("text/json"),
            sync_of(json!([])),
            415,
            None,
        ),
        (
            "PUT",
            "/v1/members",
            j,
            sync_of(json!(many)),
            409,
            Some("max_members"),
        ),
    ];
    assert!(cases.len() >= 30);
    for (method, path, ct, body, status, field) in &cases {
        let r = c
            .send(Req {
                method,
                path,
                auth: Some(format!("Bearer {TOKEN}")),
                content_type: *ct,
                body: Some(body.clone().into_bytes()),
            })
            .unwrap();
        let what = format!("{method} {path} ({ct:?}) {:.200}", body);
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        let e = r.json();
        assert!(
            e["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: {e}"
        );
        if let Some(f) = field {
            assert_eq!(e["field"].as_str(), Some(*f), "{what}: {e}");
        }
        if path.starts_with("/v1/members/zed") && *status != 413 && *status != 415 {
            assert_eq!(e["member"], "zed", "{what}: {e}");
        }
        assert_eq!(
            c.get("/v1/members").body,
            list_before,
            "{what} changed the member list"
        );
        assert_eq!(
            site.state_bytes(),
            state_before,
            "{what} changed the state file"
        );
    }
    assert_eq!(members_gauge(&site), gauge_before);
    // The overlap names the other member, and a config member's refusal says
    // where it is managed.
    let r = c.put(
        "/v1/members/zed",
        &json!({"interface": "acc0", "prefixes": ["198.51.100.20/32"]}),
    );
    assert!(
        r.json()["error"].as_str().unwrap().contains("\"bob\""),
        "{}",
        r.text()
    );
    let r = c.delete("/v1/members/alice");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("managed by the configuration file")
    );
    // A change that cannot be saved is refused (500, with the reason) and
    // changes nothing: a directory where the journal (single writes) or the
    // temporary file (a full sync) goes stops even root. The journal is
    // moved aside meanwhile, and back after.
    let tmp = site.state_file().with_file_name(".state.json.tmp");
    let journal = site.journal_file();
    let aside = journal.with_file_name("journal.aside");
    let list_before = c.get("/v1/members").body;
    let state_before = site.state_bytes();
    let journaled = journal.exists();
    if journaled {
        std::fs::rename(&journal, &aside).unwrap();
    }
    std::fs::create_dir(&tmp).unwrap();
    std::fs::create_dir(&journal).unwrap();
    let state_blocked = site.state_bytes();
    for r in [
        c.put(
            "/v1/members/zed",
            &json!({"interface": "acc0", "prefixes": ["198.51.100.64/30"]}),
        ),
        c.delete("/v1/members/bob"),
        c.put("/v1/members", &json!({"members": []})),
    ] {
        assert_eq!(r.status, 500, "{}", r.text());
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.contains("cannot write the state file") && e.contains("state.json"),
            "{e}"
        );
        assert_eq!(c.get("/v1/members").body, list_before);
        assert_eq!(site.state_bytes(), state_blocked);
    }
    assert_eq!(members_gauge(&site), gauge_before);
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::remove_dir(&journal).unwrap();
    if journaled {
        std::fs::rename(&aside, &journal).unwrap();
    }
    assert_eq!(site.state_bytes(), state_before);
    // And the same requests, made good, pass.
    assert_eq!(
        c.put(
            "/v1/members/zed",
            &json!({"interface": "acc0", "prefixes": ["198.51.100.64/30"]})
        )
        .status,
        201
    );
}

/// One acknowledged write of the concurrent test.
#[derive(Clone, Debug)]
struct Acked {
    revision: u64,
    id: String,
    /// `None` for a delete.
    value: Option<Value>,
}

#[test]
fn concurrent_writers_serialize() {
    let mut site = Site::new("api-conc", SiteOptions::default());
    site.start();
    let c = site.client();
    let seed = Rng::seeded("concurrent_writers_serialize").0;
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    const THREADS: u64 = 6;
    const OPS: u64 = 40;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = c.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                for op in 0..OPS {
                    // Four ids every thread writes, three of its own.
                    let k = if rng.below(2) == 0 {
                        rng.below(4)
                    } else {
                        10 + t * 3 + rng.below(3)
                    };
                    let id = format!("m{k}");
                    let path = format!("/v1/members/{id}");
                    if rng.below(10) < 7 {
                        // A variant no other write uses: every PUT changes something.
                        let value = with_id(&id, &api_member(k, t * 1000 + op + 1));
                        let r = c.put(&path, &value);
                        assert!(matches!(r.status, 200 | 201), "{}", r.text());
                        acked.lock().unwrap().push(Acked {
                            revision: r.revision().unwrap(),
                            id,
                            value: Some(value),
                        });
                    } else {
                        let r = c.delete(&path);
                        match r.status {
                            204 => acked.lock().unwrap().push(Acked {
                                revision: r.revision().unwrap(),
                                id,
                                value: None,
                            }),
                            404 => {}
                            s => panic!("DELETE {path}: {s} {}", r.text()),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    // Every acknowledged change has a revision of its own: the writes were
    // applied one after the other.
    let mut revisions: Vec<u64> = acked.iter().map(|a| a.revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=acked.len() as u64).collect::<Vec<_>>());
    // Per id, the last write in that order wins.
    let mut expected = BTreeMap::new();
    let mut order = acked.clone();
    order.sort_by_key(|a| a.revision);
    for a in &order {
        match &a.value {
            Some(v) => expected.insert(a.id.clone(), v.clone()),
            None => expected.remove(&a.id),
        };
    }
    let list = c.get("/v1/members").json();
    assert_eq!(list["revision"], acked.len() as u64);
    assert_eq!(api_view(&list), expected);
    let (rev, state) = read_state(&site.state_file());
    assert_eq!(rev, acked.len() as u64);
    assert_eq!(state, expected);
    assert_eq!(members_gauge(&site), 2 + expected.len() as u64);
    for (id, v) in expected.iter().take(3) {
        let mut shown = c.get(&format!("/v1/members/{id}")).json();
        assert_eq!(shown["origin"], "api");
        let o = shown.as_object_mut().unwrap();
        o.remove("slot");
        o.remove("origin");
        assert_eq!(&shown, v);
    }
    // The datapath agrees with a restart's view.
    site.kill9();
    site.start();
    assert_eq!(api_view(&c.get("/v1/members").json()), expected);
    assert_eq!(members_gauge(&site), 2 + expected.len() as u64);
}

/// A write of the kill test.
#[derive(Clone, Debug)]
enum Write {
    Put(String, Value),
    Delete(String),
    Sync(BTreeMap<String, Value>),
}

impl Write {
    fn apply(&self, model: &mut BTreeMap<String, Value>) {
        match self {
            Write::Put(id, v) => {
                model.insert(id.clone(), v.clone());
            }
            Write::Delete(id) => {
                model.remove(id);
            }
            Write::Sync(all) => *model = all.clone(),
        }
    }

    fn send(&self, c: &Client) -> std::io::Result<Resp> {
        let (method, path, body) = match self {
            Write::Put(id, v) => ("PUT", format!("/v1/members/{id}"), Some(v.to_string())),
            Write::Delete(id) => ("DELETE", format!("/v1/members/{id}"), None),
            Write::Sync(all) => (
                "PUT",
                "/v1/members".to_string(),
                Some(json!({"members": all.values().collect::<Vec<_>>()}).to_string()),
            ),
        };
        c.send(c.req(method, &path, body.map(String::into_bytes)))
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let started = Instant::now();
    let mut site = Site::new("api-kill", SiteOptions::default());
    let c = site.client();
    let mut rng = Rng::seeded("kill_9_loses_no_acknowledged_write");
    // The acknowledged state, and its revision.
    let mut model: BTreeMap<String, Value> = BTreeMap::new();
    let mut revision = 0u64;
    let mut variant = 0u64;
    let mut in_flight_seen = 0;
    let mut acked_total = 0;
    // The write in flight at the previous kill.
    let mut in_flight: Option<Write> = None;
    for round in 0..=50 {
        site.start();
        // Everything acknowledged is there; of the write in flight at the
        // kill (if any), it is there whole or not at all.
        let list = c.get("/v1/members").json();
        let got = api_view(&list);
        let (rev, state) = read_state(&site.state_file());
        assert_eq!(state, got, "round {round}: state file and API disagree");
        assert_eq!(list["revision"], rev, "round {round}");
        if got != model {
            let w = in_flight.take().unwrap_or_else(|| {
                panic!(
                    "round {round}: after the restart the API members are\n{got:#?}\n\
                     but the acknowledged state is\n{model:#?}\nand no write was in flight"
                )
            });
            w.apply(&mut model);
            assert_eq!(
                got, model,
                "round {round}: neither the acknowledged state nor it plus the write in flight ({w:?})"
            );
            assert_eq!(
                rev,
                revision + 1,
                "round {round}: the write in flight made one revision"
            );
            in_flight_seen += 1;
        } else {
            assert_eq!(rev, revision, "round {round}");
        }
        revision = rev;
        assert_eq!(
            members_gauge(&site),
            2 + model.len() as u64,
            "round {round}"
        );
        if round == 50 {
            break;
        }

        // A stream of writes from one client, killed at a random instant.
        let kill_after = Duration::from_millis(rng.below(120));
        let mut writes = Vec::new();
        let mut sim = model.clone();
        for _ in 0..400 {
            variant += 1;
            let k = rng.below(12);
            let id = format!("k{k}");
            let w = match rng.below(20) {
                0..12 => Write::Put(id.clone(), with_id(&id, &api_member(k, variant))),
                12..17 if sim.contains_key(&id) => Write::Delete(id),
                12..17 => Write::Put(id.clone(), with_id(&id, &api_member(k, variant))),
                _ => {
                    let all: BTreeMap<String, Value> = (0..12)
                        .filter(|_| rng.below(2) == 0)
                        .map(|k| {
                            let id = format!("k{k}");
                            let v = with_id(&id, &api_member(k, variant + k));
                            (id, v)
                        })
                        .collect();
                    Write::Sync(all)
                }
            };
            w.apply(&mut sim);
            writes.push(w);
        }
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for w in writes {
                    match w.send(&c) {
                        Ok(r) if matches!(r.status, 200 | 201 | 204) => {
                            acked.push((w, r.revision().expect("revision")))
                        }
                        Ok(r) => panic!("{w:?}: {} {}", r.status, r.text()),
                        // The daemon died with this one in flight.
                        Err(_) => return (acked, Some(w)),
                    }
                }
                (acked, None)
            })
        };
        std::thread::sleep(kill_after);
        site.kill9();
        let (acked, flying) = writer.join().unwrap();
        for (w, rev) in &acked {
            w.apply(&mut model);
            assert!(*rev >= revision, "revisions only grow");
            revision = *rev;
        }
        acked_total += acked.len();
        in_flight = flying;
    }
    eprintln!(
        "50 kills, {acked_total} acknowledged writes, {in_flight_seen} in-flight writes found applied, {:?}",
        started.elapsed()
    );
    assert!(
        acked_total > 50,
        "too few writes were acknowledged to mean anything"
    );
}

#[test]
fn configuration_and_api_members_never_conflict() {
    let mut site = Site::new("api-conf", SiteOptions::default());
    site.start();
    let c = site.client();
    assert_eq!(c.put("/v1/members/bob", &bob()).status, 201);
    let before = c.get("/v1/members").body;

    let reload = |site: &Site, members: &str, expect: &str| {
        let d = site.daemon();
        let n = d.log().matches(expect).count();
        d.reload(&site.config_with(members));
        let seen = wait_for(10 * SEC, || {
            (d.log().matches(expect).count() > n).then_some(())
        });
        assert!(
            seen.is_some(),
            "no {expect:?} after the reload; log:\n{}",
            d.log()
        );
    };
    // Same id as the API member.
    let same_id = format!(
        "{}\n[[member]]\nid = \"bob\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.200/32\"]\n",
        tests::api::CONFIG_MEMBERS
    );
    reload(&site, &same_id, "refusing the new configuration");
    let log = site.daemon().log();
    let line = log.lines().rev().find(|l| l.contains("refusing")).unwrap();
    assert!(line.contains("bob") && line.contains("same id"), "{line}");
    assert_eq!(c.get("/v1/members").body, before, "the running set stays");
    // Overlapping prefixes: the log line names both members.
    let overlap = format!(
        "{}\n[[member]]\nid = \"zed\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.16/30\"]\n",
        tests::api::CONFIG_MEMBERS
    );
    reload(&site, &overlap, "refusing the new configuration");
    let log = site.daemon().log();
    let line = log.lines().rev().find(|l| l.contains("refusing")).unwrap();
    assert!(
        line.contains("\\\"zed\\\"") || line.contains("\"zed\""),
        "{line}"
    );
    assert!(line.contains("bob"), "{line}");
    assert_eq!(c.get("/v1/members").body, before);
    // Removing the access interface bob is on.
    let alice_only =
        "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/32\"]\n";
    let no_acc1 = site
        .config_with(alice_only)
        .replace("\n[[access]]\ninterface = \"acc1\"\n", "\n");
    let d = site.daemon();
    let n = d.log().matches("refusing the new configuration").count();
    d.reload(&no_acc1);
    assert!(
        wait_for(10 * SEC, || (d
            .log()
            .matches("refusing the new configuration")
            .count()
            > n)
            .then_some(()))
        .is_some(),
        "log:\n{}",
        d.log()
    );
    assert_eq!(c.get("/v1/members").body, before);

    // A compatible file replaces the config members only.
    let compatible = "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/32\"]\n\n\
        [[member]]\nid = \"ivan\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.128/25\"]\n";
    reload(&site, compatible, "configuration reloaded");
    let list = c.get("/v1/members").json();
    let origins: Vec<(String, String)> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().into(),
                m["origin"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [("alice", "config"), ("bob", "api"), ("ivan", "config")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(origins, want);
    assert_eq!(members_gauge(&site), 3);
    // The new config member is protected, the old one is free.
    assert_eq!(
        c.put(
            "/v1/members/ivan",
            &json!({"interface": "acc0", "prefixes": ["198.51.100.128/25"]})
        )
        .status,
        409
    );
    assert_eq!(
        c.put(
            "/v1/members/carol",
            &json!({"interface": "acc0", "prefixes": ["198.51.100.32/28"]})
        )
        .status,
        201
    );
    // A sync replaces the API members only.
    let r = c.put("/v1/members", &json!({"members": []}));
    assert_eq!(r.json()["removed"], 2);
    let ids: Vec<String> = c.get("/v1/members").json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["alice", "ivan"]);

    // At start: a conflicting file refuses to start, naming both.
    assert_eq!(c.put("/v1/members/bob", &bob()).status, 201);
    let mut d = site.daemon.take().unwrap();
    assert!(d.stop(libc::SIGTERM, 10 * SEC).success());
    for (members, words) in [
        (overlap.as_str(), ["\"zed\"", "\"bob\"", "overlaps"]),
        (
            same_id.as_str(),
            ["\"bob\"", "same id", "configuration file"],
        ),
    ] {
        let out = site.run_once(&site.config_with(members));
        assert!(!out.status.success());
        let err = stderr(&out);
        for w in words {
            assert!(err.contains(w), "{w:?} not in:\n{err}");
        }
    }
    // The state was not touched: bob is back with a compatible file.
    site.start();
    assert_eq!(
        api_view(&c.get("/v1/members").json())["bob"],
        with_id("bob", &bob())
    );
}

#[test]
fn unreadable_state_refuses_to_start() {
    let site = Site::new("api-state", SiteOptions::default());
    let state = site.state_file();
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    for (content, words) in [
        ("", vec!["damaged"]),
        (
            "{\"format\":\"collecte-state\",\"version\":1,\"revision\":3,\"members\":[",
            vec!["damaged"],
        ),
        (
            "{\"format\":\"collecte-state\",\"version\":9,\"revision\":3,\"members\":[]}",
            vec!["format version 9"],
        ),
        (
            "{\"format\":\"collecte-state\",\"version\":1,\"revision\":3,\"members\":[{\"id\":\"x\",\"interface\":\"acc0\",\"prefixes\":[\"198.51.100.7/32\"]}]}",
            vec!["\"x\"", "\"alice\"", "overlaps"],
        ),
        (
            "{\"format\":\"collecte-state\",\"version\":1,\"revision\":3,\"members\":[{\"id\":\"x\",\"interface\":\"eth7\",\"prefixes\":[\"198.51.100.99/32\"]}]}",
            vec!["\"x\"", "eth7"],
        ),
    ] {
        std::fs::write(&state, content).unwrap();
        let out = site.run_once(&site.config());
        assert!(!out.status.success(), "started with state {content:?}");
        let err = stderr(&out);
        assert!(err.contains(state.to_str().unwrap()), "{err}");
        for w in words {
            assert!(err.contains(w), "{w:?} not in:\n{err}");
        }
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            content,
            "the file is left alone"
        );
    }
    std::fs::remove_file(&state).unwrap();
    std::fs::create_dir(&state).unwrap();
    let out = site.run_once(&site.config());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read the state file"),
        "{}",
        stderr(&out)
    );
}
