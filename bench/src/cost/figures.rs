//! The cost part's figures: its results turned into the report's figures,
//! raw results, errors, the lookup plot's series and the probes' analysis.
//! It measures nothing and writes no file: [`super::run`] measures, and
//! `main` writes the report out.
use std::collections::BTreeMap;

use serde_json::json;

use super::{Options, PATHS, SizeResult, measured};
use crate::report::{Check, Figure, Report, Series, size_label};

/// The cost part's figures, raw results, errors and plot series, and the
/// probes' analysis, into `report`.
pub fn figures(opts: &Options, results: &[anyhow::Result<SizeResult>], report: &mut Report) {
    report.analysis = analysis(opts, results);
    let Report {
        figures,
        errors,
        raw,
        plot,
        ..
    } = report;
    let g = "program cost (BPF_PROG_TEST_RUN, ns/packet)";
    let large = *opts.sizes.last().unwrap_or(&0);
    let small = *opts.sizes.first().unwrap_or(&0);
    let mut by_size: BTreeMap<usize, &SizeResult> = BTreeMap::new();
    for (n, r) in opts.sizes.iter().zip(results) {
        match r {
            Ok(r) => {
                by_size.insert(*n, r);
                raw.insert(
                    format!("cost.{n}"),
                    json!({
                        "members": r.members,
                        "realtime": r.realtime,
                        "samples_ns": r.samples,
                        "derived_ns": r.derived,
                        "tables_build_s": r.build_s,
                        "tables_apply_s": r.apply_s,
                        "route_groups_used": r.groups_used,
                    }),
                );
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let d = |n: usize, k: &str| by_size.get(&n).and_then(|r| r.derived.get(k).copied());
    let sz = size_label;
    for &n in &opts.sizes {
        let (target, check) = if n == large {
            (
                Some("≤ 150 ns and ≥ 7× faster than the anchor (ratio ≤ 0.143)"),
                Check::AtMostAndRatioAtMost(150.0, 1.0 / 7.0),
            )
        } else {
            (None, Check::None)
        };
        figures.push(Figure::new(
            g,
            format!("IPv4 lookup, random, {}", sz(n as f64)),
            d(n, "lookup4"),
            "ns",
            format!("LPM trie IPv4 lookup, random, {}", sz(n as f64)),
            d(n, "lpm4"),
            target,
            check,
            "destination → member slot: bench-ebpf lookup4 (the datapath's own trie.rs on a copy of its prefix table) − randomiser; anchor: bench_lpm4 (same pick, BPF_MAP_TYPE_LPM_TRIE with the same prefixes, valued by member slot) − randomiser. The whole forwarding program is under 'program' below",
        ));
    }
    for &n in &opts.sizes {
        figures.push(Figure::new(
            g,
            format!("IPv6 lookup, random, {}", sz(n as f64)),
            d(n, "lookup6"),
            "ns",
            format!("LPM trie IPv6 lookup, random, {}", sz(n as f64)),
            d(n, "lpm6"),
            None,
            Check::None,
            "as IPv4, with /48, /56 and /64 member prefixes",
        ));
    }
    for &n in &opts.sizes {
        figures.push(Figure::new(
            g,
            format!("IPv4 lookup, random, {} (vs one memory read)", sz(n as f64)),
            d(n, "lookup4"),
            "ns",
            format!("one read of a 64 MiB array, random, {}", sz(n as f64)),
            d(n, "array"),
            None,
            Check::None,
            "anchor: bench_array − randomiser: one read of a plain 2^24-entry u32 array at the destination's low 24 bits (DIR-24-8's first level), the same destinations — what one random memory access costs here",
        ));
    }
    figures.push(Figure::new(
        g,
        format!("IPv6 lookup, random, {} (vs IPv4)", sz(large as f64)),
        d(large, "lookup6"),
        "ns",
        format!("IPv4 lookup, random, {}", sz(large as f64)),
        d(large, "lookup4"),
        Some("≤ 2× IPv4"),
        Check::RatioAtMost(2.0),
        "",
    ));
    figures.push(Figure::new(
        g,
        format!(
            "IPv4 lookup, random, {} (vs {})",
            sz(large as f64),
            sz(small as f64)
        ),
        d(large, "lookup4"),
        "ns",
        format!("IPv4 lookup, random, {}", sz(small as f64)),
        d(small, "lookup4"),
        Some("≤ 3× the small table"),
        Check::RatioAtMost(3.0),
        "",
    ));
    for (path, what) in PATHS {
        for (kind, label) in [("hot", "hot packet"), ("rand", "random")] {
            if !measured(path, kind) {
                continue;
            }
            let target = match (*path, kind) {
                ("down4", "hot") => Some(("≤ 4× the floor", Check::RatioAtMost(4.0))),
                ("down4", "rand") => Some(("≤ 300 ns", Check::AtMost(300.0))),
                _ => None,
            };
            let sizes: Vec<usize> = if kind == "hot" {
                vec![large]
            } else {
                opts.sizes.clone()
            };
            for n in sizes {
                let (t, c) = match target {
                    Some((t, c)) if n == large => (Some(t), c),
                    _ => (None, Check::None),
                };
                figures.push(Figure::new(
                    g,
                    format!("program, {what}, {label}, {}", sz(n as f64)),
                    d(n, &format!("whole.{path}.{kind}")),
                    "ns",
                    format!("floor, {}", sz(n as f64)),
                    d(n, "floor"),
                    t,
                    c,
                    if super::SESSION_PATHS.contains(path) {
                        "whole program incl. the test-run floor and the tail call to the PPPoE program; one session (member m0); includes one bpf_xdp_adjust_head of the bench restore; compare with the plain member's hot packet"
                    } else if *path == "push" || *path == "pop" || *path == "icmp6" {
                        "whole program incl. the test-run floor; includes one bpf_xdp_adjust_head of the bench restore (the frame's length changed in the previous run)"
                    } else {
                        "whole program incl. the test-run floor, randomiser removed"
                    },
                ));
            }
        }
    }
    for (key, name) in [
        ("rand.down4.rand", "randomiser (subtracted), IPv4, random"),
        ("rand.down6.rand", "randomiser (subtracted), IPv6, random"),
        ("rand.down4.hot", "randomiser (subtracted), IPv4, hot"),
    ] {
        for &n in &opts.sizes {
            figures.push(Figure::new(
                g,
                format!("{name}, {}", sz(n as f64)),
                d(n, key),
                "ns",
                format!("floor, {}", sz(n as f64)),
                d(n, "floor"),
                None,
                Check::None,
                "bench_randomise − floor: restoring the 64-byte frame, the random pick and the address write",
            ));
        }
    }
    let gq = "where the IPv4 lookup time goes (probes, random members, ns/packet)";
    for (key, name, note) in [
        (
            "probe.trie",
            "prefix table (trie walk) alone",
            "bench-ebpf probe_trie: the datapath's lookup4 on a copy of its prefix table",
        ),
        (
            "probe.line",
            "member line alone (forwarding data and counters)",
            "probe_line: the member's data read and its tx counters += in one 64-byte line per CPU and slot, as MEMBER_LINES is (the datapath's layout)",
        ),
        (
            "probe.chainline",
            "trie → member line chain",
            "probe_chain_line: the trie walk, then the member line, dependent, as the datapath does them",
        ),
        (
            "probe.chase",
            "one dependent random read of a 64 MiB array (pointer chase)",
            "probe_chase: 8 reads per run, each at the index the previous one read (ns per read, floor subtracted): the latency of one random access that nothing overlaps, as the datapath's trie leaf then member line",
        ),
        (
            "probe.members",
            "member table read alone (previous layout)",
            "probe_members: one read of a 16-byte member entry at the member's slot (the previous MEMBERS)",
        ),
        (
            "probe.counters",
            "member counters in a per-CPU array alone (previous layout)",
            "probe_counters: tx counters += in a per-CPU array of MemberCounters (what MEMBER_COUNTERS was before it became flat)",
        ),
        (
            "probe.flat",
            "member counters in the flat array alone (previous layout)",
            "probe_flat: tx counters += in one plain array of 40-byte entries indexed by CPU × max_members + slot (the previous MEMBER_COUNTERS)",
        ),
        (
            "probe.chain",
            "trie → member → counters chain (previous layout)",
            "probe_chain: the trie walk, the member entry and the flat counters, dependent, as the datapath did them before member lines",
        ),
    ] {
        for &n in &opts.sizes {
            figures.push(Figure::new(
                gq,
                format!("{name}, {}", sz(n as f64)),
                d(n, key),
                "ns",
                format!("IPv4 lookup, random, {}", sz(n as f64)),
                d(n, "lookup4"),
                None,
                Check::None,
                if key == "probe.chase" {
                    note.to_string()
                } else {
                    format!("{note}; randomiser and floor subtracted")
                },
            ));
        }
    }
    let series = |name: &str, key: &str, color, dashed| Series {
        name: name.into(),
        color,
        dashed,
        points: opts
            .sizes
            .iter()
            .filter_map(|&n| d(n, key).map(|v| (n as f64, v)))
            .collect(),
    };
    plot.push(series("collecte IPv4", "lookup4", (0, 90, 200), false));
    plot.push(series("collecte IPv6", "lookup6", (0, 160, 80), false));
    plot.push(series("LPM trie IPv4", "lpm4", (210, 60, 30), true));
    plot.push(series("LPM trie IPv6", "lpm6", (160, 40, 160), true));
    plot.push(series(
        "one read of a 64 MiB array",
        "array",
        (90, 90, 90),
        true,
    ));
}

/// Where the random-lookup time goes, in words, from the probes.
fn analysis(opts: &Options, results: &[anyhow::Result<SizeResult>]) -> Vec<String> {
    let mut out = Vec::new();
    for (n, r) in opts.sizes.iter().zip(results) {
        let Ok(r) = r else { continue };
        let d = |k: &str| r.derived.get(k).copied().unwrap_or(f64::NAN);
        out.push(format!(
            "{} members: IPv4 lookup {:.0} ns (one random read of a 64 MiB array: {:.0} ns; whole program, random: {:.0} ns, hot packet: {:.0} ns). Alone, with random members: trie walk {:.0} ns, member line {:.0} ns; chained as the datapath does: {:.0} ns; one random read that nothing overlaps (pointer chase): {:.0} ns. The previous layout: member table {:.0} ns, flat member counters {:.0} ns (a per-CPU array: {:.0} ns), the three chained {:.0} ns. LPM trie: {:.0} ns.",
            size_label(*n as f64),
            d("lookup4"),
            d("array"),
            d("whole.down4.rand"),
            d("whole.down4.hot"),
            d("probe.trie"),
            d("probe.line"),
            d("probe.chainline"),
            d("probe.chase"),
            d("probe.members"),
            d("probe.flat"),
            d("probe.counters"),
            d("probe.chain"),
            d("lpm4"),
        ));
    }
    out
}
