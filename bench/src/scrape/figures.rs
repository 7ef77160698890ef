//! The daemon part's figures: its results turned into the report's figures,
//! raw results and errors. It measures nothing and writes no file:
//! [`super::run`] measures, and `main` writes the report out.
use std::collections::BTreeMap;

use serde_json::json;

use super::{Plan, SizeResult};
use crate::report::{Check, Figure, Report, size_label};

/// The daemon part's figures, raw results and errors into `report`.
pub fn figures(plan: &Plan, results: &[anyhow::Result<SizeResult>], report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        ..
    } = report;
    let g = "daemon (collecte run, release build)";
    let mut by_size: BTreeMap<usize, &SizeResult> = BTreeMap::new();
    for (n, r) in plan.sizes.iter().zip(results) {
        match r {
            Ok(r) => {
                by_size.insert(*n, r);
                raw.insert(
                    format!("daemon.{n}"),
                    json!({
                        "members": r.members,
                        "startup_s": r.startup_s,
                        "scrape_s": r.scrape_s,
                        "body_bytes": r.body_bytes,
                        "vmhwm_startup_kib": r.hwm_startup_kib,
                        "vmhwm_kib": r.hwm_kib,
                        "vmrss_startup_kib": r.rss_startup_kib,
                        "collecte_check_maxrss_kib": r.check_hwm_kib,
                    }),
                );
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let small = *plan.sizes.first().unwrap_or(&0);
    let largest = *plan.sizes.last().unwrap_or(&0);
    let sz = |n: usize| size_label(n as f64);
    let scrape = |n: usize| by_size.get(&n).map(|r| r.scrape_median_s);
    let hwm = |n: usize| by_size.get(&n).map(|r| r.hwm_kib as f64 / 1024.0);
    figures.push(Figure::new(
        g,
        format!("GET /metrics, {} members", sz(plan.scrape_size)),
        scrape(plan.scrape_size),
        "s",
        format!("GET /metrics, {} members", sz(small)),
        scrape(small),
        Some("≤ 0.5 s"),
        Check::AtMost(0.5),
        "wall time of one GET (connect to last byte), median of the scrapes",
    ));
    for &n in &plan.sizes {
        if n == small || n == plan.scrape_size {
            continue;
        }
        figures.push(Figure::new(
            g,
            format!("GET /metrics, {} members", sz(n)),
            scrape(n),
            "s",
            format!("GET /metrics, {} members", sz(small)),
            scrape(small),
            None,
            Check::None,
            "one scrape",
        ));
    }
    for &n in &plan.sizes {
        if n == small {
            continue;
        }
        let (t, c) = if n == largest {
            (Some("≤ 256 MiB"), Check::AtMost(256.0))
        } else {
            (None, Check::None)
        };
        figures.push(Figure::new(
            g,
            format!("peak RSS (VmHWM), {} members", sz(n)),
            hwm(n),
            "MiB",
            format!("peak RSS (VmHWM), {} members", sz(small)),
            hwm(small),
            t,
            c,
            "VmHWM after start-up and the scrapes",
        ));
    }
    let kib = |n: usize, f: fn(&SizeResult) -> u64| by_size.get(&n).map(|r| f(r) as f64 / 1024.0);
    for &n in &plan.sizes {
        if n == small {
            continue;
        }
        figures.push(Figure::new(
            g,
            format!(
                "peak RSS after start-up, before any scrape, {} members",
                sz(n)
            ),
            kib(n, |r| r.hwm_startup_kib),
            "MiB",
            format!("peak RSS (VmHWM), {} members", sz(n)),
            hwm(n),
            None,
            Check::None,
            "VmHWM once the metrics port accepts connections",
        ));
        figures.push(Figure::new(
            g,
            format!("resident after start-up (VmRSS), {} members", sz(n)),
            kib(n, |r| r.rss_startup_kib),
            "MiB",
            format!("peak RSS after start-up, {} members", sz(n)),
            kib(n, |r| r.hwm_startup_kib),
            None,
            Check::None,
            "VmRSS once serving: what stays resident after the start-up transients",
        ));
        figures.push(Figure::new(
            g,
            format!(
                "reading the configuration alone (collecte check), {} members",
                sz(n)
            ),
            kib(n, |r| r.check_hwm_kib),
            "MiB",
            format!("peak RSS after start-up, {} members", sz(n)),
            kib(n, |r| r.hwm_startup_kib),
            None,
            Check::None,
            "peak RSS of `collecte check` on the same file: TOML parse and validation only",
        ));
    }
    for &n in &plan.sizes {
        figures.push(Figure::new(
            g,
            format!("start-up to serving metrics, {} members", sz(n)),
            by_size.get(&n).map(|r| r.startup_s),
            "s",
            format!("start-up, {} members", sz(small)),
            by_size.get(&small).map(|r| r.startup_s),
            None,
            Check::None,
            "configuration parse and validation, tables, datapath load and apply",
        ));
    }
}
