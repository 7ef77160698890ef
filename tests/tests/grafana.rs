//! contrib/grafana/collecte.json against a real Prometheus (Debian's
//! `prometheus`) that scrapes a running collecte every second, with
//! alice, bob and carol and traffic through the fast path: every template
//! variable's query and every panel's PromQL, with the variables
//! substituted as Grafana does by default, must be valid and return data.
//! (Grafana itself is not packaged; its JSON model is checked for what an
//! import needs.)
use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use serde_json::Value;
use tests::{
    prometheus::Prometheus,
    traffic::{Mix, Traffic, site},
};

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/grafana/collecte.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Every panel, those inside rows too.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

fn is_prometheus(ds: &Value) -> bool {
    ds["type"] == "prometheus" && ds["uid"] == "${datasource}"
}

/// What Grafana needs to import the file as it is, and what this
/// dashboard promises: a datasource input and variable, every query on
/// it, panels on the 24-column grid with unique ids.
#[test]
fn the_dashboard_is_an_importable_grafana_model() {
    let d = dashboard();
    assert_eq!(d["uid"], "collecte");
    assert_eq!(d["title"], "collecte");
    assert!(d["id"].is_null(), "an exported dashboard has no id");
    assert!(
        d["schemaVersion"].as_u64().unwrap() >= 36,
        "Grafana 10's model"
    );
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert_eq!(inputs.len(), 1);
    assert_eq!(
        (
            &inputs[0]["name"],
            &inputs[0]["type"],
            &inputs[0]["pluginId"]
        ),
        (
            &Value::from("DS_PROMETHEUS"),
            &Value::from("datasource"),
            &Value::from("prometheus")
        )
    );
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&Value::from("datasource"), &Value::from("prometheus"))
    );
    assert_eq!(
        ds["current"]["value"], "${DS_PROMETHEUS}",
        "the import's choice is its default"
    );
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert!(is_prometheus(&v["datasource"]), "variable {}", v["name"]);
    }
    let mut ids = BTreeSet::new();
    let mut titles = Vec::new();
    for p in panels(&d) {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && g["h"].as_u64().unwrap() > 0,
            "panel {id}: {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        titles.push(p["title"].as_str().unwrap().to_string());
        assert!(is_prometheus(&p["datasource"]), "panel {}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            assert!(is_prometheus(&t["datasource"]), "panel {}", p["title"]);
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
    for needed in [
        "Members",
        "Scrape up",
        "Scrape duration",
        "Top members by traffic",
        "Download per member (bit/s)",
        "Upload per member (bit/s)",
        "Download per member (packets/s)",
        "Upload per member (packets/s)",
        "Spoofed packets per member (packets/s)",
        "Packets by interface, action and reason (packets/s)",
        "Member routes exported",
        "Drained",
    ] {
        assert!(
            titles.iter().any(|t| t == needed),
            "no panel {needed:?}: {titles:?}"
        );
    }
}

/// `label_values(SELECTOR, LABEL)`.
fn label_values(query: &str) -> (&str, &str) {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(...): {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .expect("label_values(SELECTOR, LABEL)");
    (selector.trim(), label.trim())
}

/// Replaces `$name` and `${name}` with the values, longest names first.
fn substitute(expr: &str, values: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = values.iter().collect();
    sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = expr.to_string();
    for (name, value) in sorted {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    out
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let (t, _daemon) = site("graf", 9582);
    let _traffic = Traffic::start(
        &t,
        Mix {
            down: [3, 2, 1],
            up: [1, 2, 3],
            spoofed_by_bob: 1,
        },
    );
    let localhost = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let prom = Prometheus::start(&t.router, localhost(9090), localhost(9582));

    // Enough samples for the rate windows: 12 scrapes that worked.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let n = prom
            .query(&format!("sum_over_time(up{{job=\"{}\"}}[1m])", prom.job))
            .ok()
            .and_then(|r| {
                r.first()
                    .map(|s| s["value"][1].as_str().unwrap_or("0").to_string())
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if n >= 12.0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "prometheus has {n} good scrapes of collecte after 60 s; targets: {:?}",
            prom.api("/api/v1/targets", &[])
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let d = dashboard();
    // The variables, in order (later ones use earlier ones), valued as
    // Grafana does by default: All (their allValue) for the multi-value
    // ones, the first value (sorted) otherwise, a custom one's current.
    // Grafana's own: $__rate_interval is max(4 × scrape interval,
    // $__interval + scrape interval), with the data source's scrape
    // interval set to Prometheus's (1 s).
    let mut values: Vec<(String, String)> = vec![
        ("__rate_interval".into(), "5s".into()),
        ("__interval".into(), "1s".into()),
        ("datasource".into(), "prometheus".into()),
    ];
    for v in d["templating"]["list"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap().to_string();
        match v["type"].as_str().unwrap() {
            "datasource" => {}
            "custom" => values.push((name, v["current"]["value"].as_str().unwrap().to_string())),
            "query" => {
                let query = v["query"]["query"]
                    .as_str()
                    .expect("a query variable's query");
                let (selector, label) = label_values(query);
                let selector = substitute(selector, &values);
                let series = prom
                    .api("/api/v1/series", &[("match[]", &selector)])
                    .unwrap_or_else(|e| panic!("variable {name}: {e}"));
                let found: BTreeSet<String> = series
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|s| s[label].as_str().map(str::to_string))
                    .collect();
                assert!(!found.is_empty(), "variable {name}: {query} has no value");
                let value = if v["includeAll"] == true {
                    v["allValue"].as_str().expect("allValue").to_string()
                } else {
                    found.first().unwrap().clone()
                };
                eprintln!("${name} = {value} (of {found:?})");
                values.push((name, value));
            }
            other => panic!("variable {name} of type {other}"),
        }
    }

    let mut checked = 0;
    for p in panels(&d) {
        for target in p["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let query = substitute(expr, &values);
            assert!(
                !query.contains('$'),
                "panel {:?}: a variable the test does not know is left in {query}",
                p["title"]
            );
            let result = prom
                .query(&query)
                .unwrap_or_else(|e| panic!("panel {:?}: {e}", p["title"]));
            assert!(
                !result.is_empty(),
                "panel {:?}: no data for {query}",
                p["title"]
            );
            // The per-member panels show every member (3 of at most
            // $topk).
            if expr.contains("by (member)") {
                let members: BTreeSet<&str> = result
                    .iter()
                    .filter_map(|s| s["metric"]["member"].as_str())
                    .collect();
                assert_eq!(
                    members,
                    BTreeSet::from(["alice", "bob", "carol"]),
                    "panel {:?}: {query}",
                    p["title"]
                );
            }
            eprintln!("ok ({} series): {query}", result.len());
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} queries in the dashboard");
}
