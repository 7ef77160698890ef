//! The sessions part's figures: its results turned into the report's
//! figures, raw results and errors. It measures nothing: [`super::run`]
//! measures.
use serde_json::json;

use super::{Plan, SessionsResult};
use crate::report::{Check, Figure, Report};

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// The sessions part's figures, raw results and errors into `report`.
pub fn figures(plan: &Plan, result: &anyhow::Result<SessionsResult>, report: &mut Report) {
    let g = "PPPoE sessions (collecte run, FreeRADIUS, release build)";
    let (rate, radius) = match result {
        Ok(r) => {
            report.raw.insert(
                "sessions".into(),
                json!({
                    "batches": plan.batches,
                    "per_batch": plan.per_batch,
                    "sessions_per_s": r.rates,
                    "radius_requests_per_s": r.radius_rates,
                }),
            );
            (median(&r.rates), median(&r.radius_rates))
        }
        Err(e) => {
            report.errors.push(format!("sessions: {e:#}"));
            (None, None)
        }
    };
    report.figures.push(Figure::new(
        g,
        format!("session setup, {} at once", plan.per_batch),
        rate,
        "sessions/s",
        format!("RADIUS Access-Requests alone, {} at once", plan.per_batch),
        radius,
        None,
        Check::None,
        "discovery, LCP, PAP checked by FreeRADIUS, IPv6CP, each seen up in the API; median of the batches",
    ));
}
