//! The forwarding part's figures: its results turned into the report's
//! figures, raw results, errors and notes. It measures nothing and writes no
//! file: [`super::run`] measures, and `main` writes the report out.
use serde_json::json;

use super::{Options, Results};
use crate::report::{Check, Figure, Report, size_label};

/// The forwarding part's figures, raw results, errors and notes into
/// `report`.
pub fn figures(opts: &Options, r: anyhow::Result<Results>, report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        notes,
        ..
    } = report;
    let g = "forwarding over veth (64-byte frames, one core, Mpps)";
    let (small, large) = (size_label(opts.small as f64), size_label(opts.large as f64));
    let r = match r {
        Ok(r) => {
            raw.insert(
                "forward".into(),
                json!({
                    "samples_mpps": r.samples,
                    "kernel_route_insert_s": r.kernel_insert_s,
                    "collecte_load_s": r.collecte_load_s,
                    "router_ns_above_generator": r.router_ns,
                    "loop_inflight": r.inflight,
                    "loop_fewest_left": r.fewest_left,
                }),
            );
            notes.push(format!(
                "Forwarding generator: {} frames seeded into the all-XDP loop before each measurement; at the end of every measurement at least {} were still circulating (frames lost on the way leave fewer in flight).",
                r.inflight, r.fewest_left
            ));
            Some(r)
        }
        Err(e) => {
            errors.push(format!("forwarding: {e:#}"));
            None
        }
    };
    let m = |k: &str| r.as_ref().and_then(|r| r.medians.get(k).copied());
    let note = "frames that came round the loop over a fixed time; generator: bench_loop, an all-XDP loop of 64 frames with random destinations across the members (no live frames)";
    figures.push(Figure::new(
        g,
        format!("collecte, {large} members (vs kernel)"),
        m("collecte.large"),
        "Mpps",
        format!("kernel ip_forward, {large} routes"),
        m("kernel.large"),
        Some("≥ 3.3× the kernel"),
        Check::RatioAtLeast(3.3),
        note,
    ));
    figures.push(Figure::new(
        g,
        format!("collecte, {large} members (vs minimal)"),
        m("collecte.large"),
        "Mpps",
        "minimal XDP forward (no lookup)",
        m("minimal"),
        Some("≥ 0.75× the minimal forward"),
        Check::RatioAtLeast(0.75),
        note,
    ));
    figures.push(Figure::new(
        g,
        format!("collecte, {small} members"),
        m("collecte.small"),
        "Mpps",
        "minimal XDP forward (no lookup)",
        m("minimal"),
        None,
        Check::None,
        note,
    ));
    figures.push(Figure::new(
        g,
        format!("kernel ip_forward, {small} routes"),
        m("kernel.small"),
        "Mpps",
        format!("kernel ip_forward, {large} routes"),
        m("kernel.large"),
        None,
        Check::None,
        "no XDP on the router; GRO on r0 so that veth accepts the generator's frames; member routes via one next hop with a permanent neighbour",
    ));
    figures.push(Figure::new(
        g,
        "generator alone (the loop closed on the router's r0, no forwarding)",
        m("ceiling"),
        "Mpps",
        "minimal XDP forward (no lookup)",
        m("minimal"),
        None,
        Check::None,
        "bench_loop on r0, redirecting into g0: one program and one veth hop per frame, the fixed part of every case above",
    ));
    let rns = |k: &str| r.as_ref().and_then(|r| r.router_ns.get(k).copied());
    let gr = "forwarding: what the router adds per packet (ns above the generator alone)";
    let note_r = "1/Mpps − 1/(generator alone), paired by repetition: the router's program or stack and its egress hop to the sink";
    for (key, name, anchor_key, anchor) in [
        (
            "collecte.large",
            format!("collecte, {large} members"),
            "kernel.large",
            format!("kernel ip_forward, {large} routes"),
        ),
        (
            "collecte.small",
            format!("collecte, {small} members"),
            "kernel.large",
            format!("kernel ip_forward, {large} routes"),
        ),
        (
            "minimal",
            "minimal XDP forward".to_string(),
            "collecte.large",
            format!("collecte, {large} members"),
        ),
        (
            "kernel.large",
            format!("kernel ip_forward, {large} routes"),
            "collecte.large",
            format!("collecte, {large} members"),
        ),
        (
            "kernel.small",
            format!("kernel ip_forward, {small} routes"),
            "collecte.small",
            format!("collecte, {small} members"),
        ),
    ] {
        figures.push(Figure::new(
            gr,
            name,
            rns(key),
            "ns",
            anchor,
            rns(anchor_key),
            None,
            Check::None,
            note_r,
        ));
    }
    figures.push(Figure::new(
        gr,
        "the generator alone, per frame",
        m("ceiling").map(|mpps| 1e3 / mpps),
        "ns",
        "minimal XDP forward",
        rns("minimal"),
        None,
        Check::None,
        "1/(generator alone): bench_loop's program and one veth hop, what every case above also pays",
    ));
    let ins = |k: &str| r.as_ref().and_then(|r| r.kernel_insert_s.get(k).copied());
    let load = |k: &str| r.as_ref().and_then(|r| r.collecte_load_s.get(k).copied());
    figures.push(Figure::new(
        "control plane",
        format!("kernel FIB: adding {large} member routes (ip -batch)"),
        ins("large"),
        "s",
        format!("collecte: building and applying {large} members"),
        load("large"),
        None,
        Check::None,
        "`ip -n NS -batch -` with one `route add PREFIX via NEXT_HOP dev r1` per member; collecte: Tables::from_config + Datapath::load + set_iface + apply_full, from the member list",
    ));
    if opts.large < 1_000_000 {
        notes.push(format!(
            "Quick mode: forwarding is measured at {large} members and routes instead of 1M, to keep the kernel's route insertion short."
        ));
    }
}
