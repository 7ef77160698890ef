//! The control-plane part's figures: its results turned into the report's
//! figures, raw results and errors. It measures nothing and writes no file:
//! [`super::run`] measures, and `main` writes the report out.
use std::collections::BTreeMap;

use serde_json::json;

use super::{Plan, SizeResult, TrafficSync};
use crate::report::{Check, Figure, Report, size_label};

/// The control-plane part's figures, raw results and errors into `report`.
pub fn figures(plan: &Plan, results: &[anyhow::Result<SizeResult>], report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        ..
    } = report;
    let g = "control plane (collecte run, provisioning API)";
    let mut by_size: BTreeMap<usize, &SizeResult> = BTreeMap::new();
    for (n, r) in plan.sizes.iter().zip(results) {
        match r {
            Ok(r) => {
                by_size.insert(*n, r);
                raw.insert(format!("control.{n}"), json!(r));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let sizes = &plan.sizes;
    let largest = *sizes.last().unwrap_or(&0);
    let sz = |n: usize| size_label(n as f64);
    let get = |n: usize, f: &dyn Fn(&SizeResult) -> f64| by_size.get(&n).map(|r| f(r));
    let flows = format!(
        "two flows of {} kpps of 64-byte UDP (member → uplink and uplink → member) forwarded by XDP, the receivers taking the kernel's arrival time (SO_TIMESTAMPNS)",
        plan.rate / 1000
    );
    for &n in sizes {
        let target = n == largest;
        let (t, c) = if target && n >= 1_000_000 {
            (Some("≤ 1 s"), Check::AtMost(1.0))
        } else {
            (None, Check::None)
        };
        figures.push(Figure::new(
            g,
            format!("full sync, {} members, every member but the flows' changed", sz(n)),
            get(n, &|r| r.change_sync_s),
            "s",
            format!("identical re-sync, {} members", sz(n)),
            get(n, &|r| r.identical_sync_s),
            t,
            c,
            "PUT /v1/members with the whole set (new MAC and IPv6 prefix for every member but the flows'), request sent to answer received, keep-alive connection, median of two syncs under traffic; anchor: the same request when nothing changes (upload, JSON parse, validation, comparison)",
        ));
        figures.push(Figure::new(
            g,
            format!("full sync rate, {} members changed", sz(n)),
            get(n, &|r| r.members as f64 / r.change_sync_s),
            "members/s",
            format!("full sync rate into the empty table, {} members", sz(n)),
            get(n, &|r| r.members as f64 / r.initial_sync_s),
            None,
            Check::None,
            "members in the sync / its wall time",
        ));
        figures.push(Figure::new(
            g,
            format!("full sync into the empty table, {} members", sz(n)),
            get(n, &|r| r.initial_sync_s),
            "s",
            format!("identical re-sync, {} members", sz(n)),
            get(n, &|r| r.identical_sync_s),
            None,
            Check::None,
            "the first PUT /v1/members after start: every member added",
        ));
        figures.push(Figure::new(
            g,
            format!("single PUT /v1/members/{{id}}, table of {} members", sz(n)),
            get(n, &|r| r.put_per_s),
            "req/s",
            "GET /v1/health on the same connection",
            get(n, &|r| r.health_per_s),
            None,
            Check::None,
            "sequential PUTs on one keep-alive HTTP/1.1 connection, each replacing an existing member (MAC and IPv6 prefix) and acknowledged after the state file is saved; anchor: a request that does no work, same connection (the HTTP round trip)",
        ));
        let (t, c) = if target {
            (Some("≤ 1 ms"), Check::AtMost(1.0))
        } else {
            (None, Check::None)
        };
        let tr = |r: &SizeResult, f: &dyn Fn(&TrafficSync) -> f64| {
            r.traffic.iter().map(f).fold(0f64, f64::max)
        };
        figures.push(Figure::new(
            g,
            format!(
                "longest forwarding stall during a full sync (largest extra one-way delay), {} members",
                sz(n)
            ),
            get(n, &|r| {
                tr(r, &|t| t.delay_excess_ms[0].max(t.delay_excess_ms[1]))
            }),
            "ms",
            "the same outside the syncs",
            get(n, &|r| {
                tr(r, &|t| t.idle_delay_excess_ms[0].max(t.idle_delay_excess_ms[1]))
            }),
            t,
            c,
            format!("a packet that met a stall of the fast path arrives that much later than its send time says: the largest (arrival − send time) of a packet sent during a sync, minus the median outside the syncs, worst flow and sync (an upper bound: a sender descheduled between taking its time and sending counts too); {flows}"),
        ));
        figures.push(Figure::new(
            g,
            format!("longest forwarding gap during a full sync, {} members", sz(n)),
            get(n, &|r| tr(r, &|t| t.max_gap_ms[0].max(t.max_gap_ms[1]))),
            "ms",
            "p99 gap outside the syncs (the flows' own pacing)",
            get(n, &|r| tr(r, &|t| t.idle_gap_p99_ms[0].max(t.idle_gap_p99_ms[1]))),
            None,
            Check::None,
            format!("longest time between two consecutive arrivals overlapping a sync, worst flow and sync (the senders' own gaps included: see the next figure); {flows}"),
        ));
        figures.push(Figure::new(
            g,
            format!("longest gap outside the syncs, {} members", sz(n)),
            get(n, &|r| {
                tr(r, &|t| t.idle_gap_max_ms[0].max(t.idle_gap_max_ms[1]))
            }),
            "ms",
            "p99 gap outside the syncs",
            get(n, &|r| {
                tr(r, &|t| t.idle_gap_p99_ms[0].max(t.idle_gap_p99_ms[1]))
            }),
            None,
            Check::None,
            "the same flows before and after each sync: what the machine does to them with no sync",
        ));
        figures.push(Figure::new(
            g,
            format!("senders' longest gap during a full sync, {} members", sz(n)),
            get(n, &|r| tr(r, &|t| t.send_gap_ms[0].max(t.send_gap_ms[1]))),
            "ms",
            "longest forwarding gap during the sync",
            get(n, &|r| tr(r, &|t| t.max_gap_ms[0].max(t.max_gap_ms[1]))),
            None,
            Check::None,
            "from the send times the packets carry: a gap the sender made itself (it was not scheduled) is not the router's",
        ));
        let (t, c) = if target {
            (Some("0"), Check::AtMost(0.0))
        } else {
            (None, Check::None)
        };
        figures.push(Figure::new(
            g,
            format!("packets lost during full syncs, {} members", sz(n)),
            get(n, &|r| r.traffic.iter().map(|t| (t.lost[0] + t.lost[1]) as f64).sum()),
            "packets",
            "packets sent",
            get(n, &|r| r.traffic.iter().map(|t| (t.sent[0] + t.sent[1]) as f64).sum()),
            t,
            c,
            format!("both flows over both syncs under traffic (each flow runs from before a sync to after it); {flows}"),
        ));
        figures.push(Figure::new(
            g,
            format!("flow packets the router's kernel forwarded, {} members", sz(n)),
            get(n, &|r| r.traffic.iter().map(|t| t.kernel_forwarded as f64).sum()),
            "packets",
            "packets sent",
            get(n, &|r| r.traffic.iter().map(|t| (t.sent[0] + t.sent[1]) as f64).sum()),
            None,
            Check::None,
            "IPv4 ForwDatagrams of the router's namespace (forwarding on) across the flows: 0 means XDP forwarded every packet",
        ));
        figures.push(Figure::new(
            g,
            format!(
                "GET /metrics, {} members provisioned through the API",
                sz(n)
            ),
            get(n, &|r| r.scrape_s),
            "s",
            format!("identical re-sync, {} members", sz(n)),
            get(n, &|r| r.identical_sync_s),
            None,
            Check::None,
            "one scrape after the syncs",
        ));
        let (t, c) = if n >= 1_000_000 {
            (Some("≤ 256 MiB"), Check::AtMost(256.0))
        } else {
            (None, Check::None)
        };
        figures.push(Figure::new(
            g,
            format!("peak RSS (VmHWM), {} members provisioned through the API", sz(n)),
            get(n, &|r| r.hwm_kib as f64 / 1024.0),
            "MiB",
            "resident at the end (VmRSS)",
            get(n, &|r| r.rss_kib as f64 / 1024.0),
            t,
            c,
            "the daemon started with no member, then full syncs, PUTs and a scrape: VmHWM at the end",
        ));
    }
    if sizes.len() > 1 {
        let small = sizes[0];
        figures.push(Figure::new(
            g,
            format!("full sync, {} members (vs {})", sz(largest), sz(small)),
            get(largest, &|r| r.change_sync_s),
            "s",
            format!("full sync, {} members", sz(small)),
            get(small, &|r| r.change_sync_s),
            None,
            Check::None,
            format!("scaling: {}× the members", largest / small.max(1)),
        ));
    }
}
