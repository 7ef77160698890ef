//! The member routes (`[routes] table = N`): the real daemon exports one
//! kernel route per member prefix, in the background. Measured at the
//! control part's largest size, in a run of its own (the other control
//! figures run without `[routes]`):
//!
//! - the whole table installed after a full sync into the empty daemon,
//!   from the request until the daemon reports every route in the kernel
//!   (`exported` of `GET /v1/drain`, stored after each netlink exchange),
//!   with the same two paced UDP flows as the syncs crossing the fast path
//!   meanwhile, and `GET /v1/drain` answered throughout;
//! - single writes (a `DELETE` then the `PUT` that brings the member back)
//!   until the table has changed;
//! - a drain (every route withdrawn) and an undrain (every route back).
//!
//! The kernel table is counted with `ip route show` at the end of the
//! install, so that the daemon's own count is checked.
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::{Http, Options, Running, TrafficSync, launch, member_json, sync_body, under_traffic};
use crate::{
    population::Spec,
    report::{Check, Figure, Report, size_label},
    stats::median,
};

/// The kernel table of the run.
const TABLE: u32 = 100;
/// Single writes timed (each a DELETE and a PUT).
const WRITES: usize = 5;
/// How long the whole table may take before the run is given up.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RoutesResult {
    pub members: usize,
    /// Routes the member set needs (an IPv4 and an IPv6 prefix each).
    pub routes: usize,
    /// The full sync's own time, request to answer.
    pub sync_s: f64,
    /// From the sync's request until every route is in the kernel table.
    pub install_s: f64,
    /// `ip route show table TABLE proto 150` lines after the install.
    pub kernel_routes: usize,
    /// `GET /v1/drain` during the install: requests, median and longest.
    pub polls: usize,
    pub poll_median_ms: f64,
    pub poll_max_ms: f64,
    /// The same request with the daemon idle, before the sync.
    pub idle_poll_median_ms: f64,
    pub idle_poll_max_ms: f64,
    /// The flows across the fast path during the install.
    pub traffic: TrafficSync,
    /// Single writes, request until the table has changed: each DELETE
    /// and PUT.
    pub write_ms: Vec<f64>,
    /// Drain until no route is left; undrain until every one is back.
    pub drain_s: f64,
    pub undrain_s: f64,
}

/// `GET /v1/drain`: (exported, how long the request took).
fn exported(http: &mut Http) -> anyhow::Result<(u64, f64)> {
    let t = Instant::now();
    let (code, text) = http.request("GET", "/v1/drain", None)?;
    let took = t.elapsed().as_secs_f64();
    ensure!(code == 200, "GET /v1/drain answered {code}: {text}");
    let v: Value = serde_json::from_str(&text).context("GET /v1/drain's answer")?;
    let n = v["exported"]
        .as_u64()
        .with_context(|| format!("no \"exported\" in {text}"))?;
    Ok((n, took))
}

/// Polls until the daemon reports `want` routes in the table: the poll
/// times (s).
fn wait_exported(http: &mut Http, want: u64, timeout: Duration) -> anyhow::Result<Vec<f64>> {
    let start = Instant::now();
    let mut polls = Vec::new();
    loop {
        let (n, took) = exported(http)?;
        polls.push(took);
        if n == want {
            return Ok(polls);
        }
        ensure!(
            start.elapsed() < timeout,
            "the kernel table has {n} member routes after {timeout:?}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ms_stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (
        median(&v) * 1e3,
        v.last().copied().unwrap_or(f64::NAN) * 1e3,
    )
}

/// Runs the member routes' measurements with `specs` (their count: the
/// control part's largest size).
pub fn run(
    opts: &Options,
    specs: &[Spec],
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<RoutesResult> {
    let n = specs.len();
    ensure!(n >= 2, "the member routes need at least 2 members, not {n}");
    log(&format!(
        "member routes ([routes] table {TABLE}): {n} members"
    ));
    let flow = specs[0];
    let Running {
        s,
        daemon,
        mut http,
        state,
        path,
        ..
    } = launch(opts, specs, &format!("r{n}"), Some(TABLE))?;
    let routes = 2 * n;
    let mut r = RoutesResult {
        members: n,
        routes,
        ..Default::default()
    };

    let mut idle = Vec::new();
    for _ in 0..200 {
        let (e, took) = exported(&mut http)?;
        ensure!(e == 0, "{e} member routes before any member");
        idle.push(took);
    }
    (r.idle_poll_median_ms, r.idle_poll_max_ms) = ms_stats(idle);

    let body = sync_body(specs, false);
    let mut sync_s = 0.0;
    let mut polls = Vec::new();
    r.traffic = under_traffic(opts, &s, &flow, || {
        let t = Instant::now();
        let (code, text) = http.request("PUT", "/v1/members", Some(&body))?;
        sync_s = t.elapsed().as_secs_f64();
        ensure!(code == 200, "the full sync answered {code}: {text}");
        polls = wait_exported(&mut http, routes as u64, INSTALL_TIMEOUT)?;
        Ok(t.elapsed().as_secs_f64())
    })?;
    r.sync_s = sync_s;
    r.install_s = r.traffic.sync_s;
    r.polls = polls.len();
    (r.poll_median_ms, r.poll_max_ms) = ms_stats(polls);
    log(&format!(
        "  {routes} routes installed in {:.3} s (the sync answered in {sync_s:.3} s); GET /v1/drain meanwhile: {} requests, median {:.2} ms, longest {:.2} ms (idle {:.2}/{:.2}); flows: longest gap {:.2}/{:.2} ms, lost {}/{}",
        r.install_s,
        r.polls,
        r.poll_median_ms,
        r.poll_max_ms,
        r.idle_poll_median_ms,
        r.idle_poll_max_ms,
        r.traffic.max_gap_ms[0],
        r.traffic.max_gap_ms[1],
        r.traffic.lost[0],
        r.traffic.lost[1],
    ));

    let table = TABLE.to_string();
    for family in ["-4", "-6"] {
        let text = s
            .router
            .ip(&[family, "route", "show", "table", &table, "proto", "150"])?;
        r.kernel_routes += text.lines().filter(|l| !l.trim().is_empty()).count();
    }
    ensure!(
        r.kernel_routes == routes,
        "the kernel table holds {} routes of protocol 150, not {routes}",
        r.kernel_routes
    );

    for i in 0..WRITES {
        let k = 1 + i % (n - 1);
        let t = Instant::now();
        let (code, text) = http.request("DELETE", &format!("/v1/members/m{k}"), None)?;
        ensure!(code == 204, "DELETE answered {code}: {text}");
        wait_exported(&mut http, routes as u64 - 2, Duration::from_secs(30))?;
        r.write_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut member = String::new();
        member_json(&mut member, k, &specs[k], false);
        let t = Instant::now();
        let (code, text) =
            http.request("PUT", &format!("/v1/members/m{k}"), Some(member.as_bytes()))?;
        ensure!(code == 201, "PUT answered {code}: {text}");
        wait_exported(&mut http, routes as u64, Duration::from_secs(30))?;
        r.write_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    log(&format!(
        "  single writes to the table: {:?} ms",
        r.write_ms
            .iter()
            .map(|w| (w * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    ));

    for (drained, want) in [(true, 0), (false, routes as u64)] {
        let t = Instant::now();
        let body = format!("{{\"drained\":{drained}}}");
        let (code, text) = http.request("PUT", "/v1/drain", Some(body.as_bytes()))?;
        ensure!(code == 200, "PUT /v1/drain answered {code}: {text}");
        wait_exported(&mut http, want, INSTALL_TIMEOUT)?;
        let took = t.elapsed().as_secs_f64();
        if drained {
            r.drain_s = took;
        } else {
            r.undrain_s = took;
        }
    }
    log(&format!(
        "  drain {:.3} s, undrain {:.3} s",
        r.drain_s, r.undrain_s
    ));

    drop(http);
    drop(daemon);
    for f in super::state_files(&state) {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(path);
    Ok(r)
}

/// The member routes' figures, raw result or error into `report`.
pub fn figures(result: &anyhow::Result<RoutesResult>, report: &mut Report) {
    let g = "control plane: member routes exported to a kernel table ([routes])";
    let r = match result {
        Ok(r) => {
            report
                .raw
                .insert("control.routes".into(), serde_json::json!(r));
            Some(r)
        }
        Err(e) => {
            report.errors.push(format!("{e:#}"));
            None
        }
    };
    let get = |f: &dyn Fn(&RoutesResult) -> f64| r.map(f);
    let sz = r.map_or_else(|| "?".to_owned(), |r| size_label(r.members as f64));
    let routes = r.map_or_else(|| "?".to_owned(), |r| size_label(r.routes as f64));
    let figures = &mut report.figures;
    figures.push(Figure::new(
        g,
        format!("whole table installed in the background, {sz} members ({routes} routes)"),
        get(&|r| r.install_s),
        "s",
        "the full sync that brought them, request to answer",
        get(&|r| r.sync_s),
        None,
        Check::None,
        "PUT /v1/members with every member (an IPv4 and an IPv6 prefix each) into a daemon started with none, from the request until GET /v1/drain reports every route in the kernel table (the daemon counts what the kernel accepted, in batched RTM_NEWROUTE exchanges); checked at the end against `ip route show table 100 proto 150`",
    ));
    figures.push(Figure::new(
        g,
        format!("longest GET /v1/drain during the install, {sz} members"),
        get(&|r| r.poll_max_ms),
        "ms",
        "the same request with the daemon idle, longest of 200",
        get(&|r| r.idle_poll_max_ms),
        None,
        Check::None,
        "requests one after the other on one keep-alive connection while the routes go in: the API does not wait for the kernel",
    ));
    figures.push(Figure::new(
        g,
        format!("longest forwarding stall during the install, {sz} members"),
        get(&|r| {
            r.traffic.delay_excess_ms[0].max(r.traffic.delay_excess_ms[1])
        }),
        "ms",
        "the same outside the install",
        get(&|r| {
            r.traffic.idle_delay_excess_ms[0].max(r.traffic.idle_delay_excess_ms[1])
        }),
        None,
        Check::None,
        "the largest extra one-way delay of a packet of the two paced UDP flows (member → uplink, uplink → member) through the fast path, as for the full syncs",
    ));
    figures.push(Figure::new(
        g,
        format!("packets lost during the install, {sz} members"),
        get(&|r| (r.traffic.lost[0] + r.traffic.lost[1]) as f64),
        "packets",
        "packets sent",
        get(&|r| (r.traffic.sent[0] + r.traffic.sent[1]) as f64),
        Some("0"),
        Check::AtMost(0.0),
        "both flows, from before the sync until after the last route is in",
    ));
    figures.push(Figure::new(
        g,
        format!("single write to the kernel table, longest, table of {sz} members"),
        get(&|r| r.write_ms.iter().copied().fold(0f64, f64::max)),
        "ms",
        "median",
        get(&|r| {
            let mut v = r.write_ms.clone();
            v.sort_by(f64::total_cmp);
            median(&v)
        }),
        Some("≤ 1000 ms"),
        Check::AtMost(1000.0),
        format!("{WRITES} DELETE /v1/members/{{id}} and the PUT that brings each member back, from the request until GET /v1/drain reports the table changed"),
    ));
    figures.push(Figure::new(
        g,
        format!("drain: every route withdrawn, {sz} members ({routes} routes)"),
        get(&|r| r.drain_s),
        "s",
        "undrain: every route back",
        get(&|r| r.undrain_s),
        None,
        Check::None,
        "PUT /v1/drain {\"drained\":true}, then false, each until GET /v1/drain reports the table empty or full",
    ));
}
