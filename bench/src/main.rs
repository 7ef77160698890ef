//! `cargo xtask bench [--quick]`: collecte measured side by side with what an
//! operator would use instead, in one run, on this machine.
//!
//! 1. Program cost (`BPF_PROG_TEST_RUN`, 64-byte frames): the bench build of
//!    the real program with random destinations (or sources) across the
//!    members and with one hot packet, against the floor (a program that
//!    only returns), the randomiser (subtracted) and a
//!    `BPF_MAP_TYPE_LPM_TRIE` holding the same prefixes.
//! 2. Forwarding over veth (live-frames generator → router → counting sink):
//!    collecte against the kernel's `ip_forward` with the same routes and a
//!    minimal XDP forward.
//! 3. The daemon: `GET /metrics` time and peak RSS.
//! 4. The control plane (`control`): the daemon with its provisioning API,
//!    members provisioned through it: full syncs and single PUTs, the
//!    longest forwarding gap and the loss of flows crossing the XDP fast
//!    path during a full sync, a scrape and the peak RSS.
//! 5. Probes (bench-ebpf `probe_*`): the datapath's prefix table, member
//!    table and counters read alone, at the same sizes, to say where the
//!    random-lookup time goes.
//!
//! Figures are medians of several repetitions, interleaved so that the
//! machine's drift hits a figure and its anchor alike. Writes
//! `target/bench/results.json`, `results.md` and `lookup.png`. Exits
//! non-zero only when a measurement could not be produced.
mod control;
mod cost;
mod forward;
mod frames;
mod ns;
mod population;
mod progs;
mod report;
mod scrape;
mod stats;

use std::{collections::BTreeMap, time::Instant};

use anyhow::Context as _;
use clap::Parser;
use report::{Check, Figure, Report, Series, size_label};
use serde_json::json;

#[derive(Parser)]
#[command(name = "bench", about = "collecte's benchmarks against their anchors")]
struct Cli {
    /// Small sizes and short runs (a smoke test: about two minutes).
    #[arg(long)]
    quick: bool,
    /// Run only these parts (cost, forward, daemon, control); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

struct Plan {
    cost: cost::Options,
    forward: forward::Options,
    daemon_sizes: Vec<usize>,
    daemon_timed: Vec<usize>,
    /// The size the scrape figure is quoted at.
    scrape_size: usize,
    scrapes: usize,
    control: ControlPlan,
}

struct ControlPlan {
    sizes: Vec<usize>,
    puts: usize,
    put_secs: f64,
    rate: u32,
    margin_ms: u64,
}

fn plan(quick: bool) -> Plan {
    let mut p = plan_for(quick);
    // Developer knob: frames circulating in the forwarding loop.
    if let Some(n) = std::env::var("BENCH_INFLIGHT")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        p.forward.inflight = n;
    }
    // Developer knobs: the program-cost, daemon and control-plane member
    // counts, comma-separated (e.g. `1000,1000000`).
    for (var, sizes) in [
        ("BENCH_COST_SIZES", &mut p.cost.sizes),
        ("BENCH_DAEMON_SIZES", &mut p.daemon_sizes),
        ("BENCH_CONTROL_SIZES", &mut p.control.sizes),
    ] {
        let wanted: Vec<usize> = std::env::var(var)
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        if !wanted.is_empty() {
            *sizes = wanted;
        }
    }
    p
}

fn plan_for(quick: bool) -> Plan {
    if quick {
        Plan {
            cost: cost::Options {
                sizes: vec![1_000, 10_000],
                reps: 5,
                repeat: 50_000,
            },
            forward: forward::Options {
                small: 1_000,
                large: 10_000,
                reps: 3,
                secs: 0.5,
                warmup: 0.2,
                inflight: 64,
            },
            daemon_sizes: vec![1_000, 10_000],
            daemon_timed: vec![1_000, 10_000],
            scrape_size: 10_000,
            scrapes: 3,
            control: ControlPlan {
                sizes: vec![10_000],
                puts: 200,
                put_secs: 1.0,
                rate: 5_000,
                margin_ms: 300,
            },
        }
    } else {
        Plan {
            cost: cost::Options {
                sizes: vec![1_000, 10_000, 100_000, 1_000_000],
                reps: 9,
                repeat: 300_000,
            },
            forward: forward::Options {
                small: 1_000,
                large: 1_000_000,
                reps: 7,
                secs: 3.0,
                warmup: 0.5,
                inflight: 64,
            },
            daemon_sizes: vec![1_000, 100_000, 1_000_000],
            daemon_timed: vec![1_000, 100_000],
            scrape_size: 100_000,
            scrapes: 5,
            control: ControlPlan {
                sizes: vec![100_000, 1_000_000],
                puts: 2_000,
                put_secs: 10.0,
                rate: 5_000,
                margin_ms: 500,
            },
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Ok(true) when every measurement produced a number.
fn real_main(cli: &Cli) -> anyhow::Result<bool> {
    anyhow::ensure!(
        unsafe { libc::geteuid() } == 0,
        "the benchmark needs root (namespaces, BPF): run it through `cargo xtask bench` as root"
    );
    let started = Instant::now();
    let mut log = |m: &str| eprintln!("[{:6.1}s] {m}", started.elapsed().as_secs_f64());
    ns::remove_stale();
    mount_bpffs();
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .context("cannot find the target directory")?
        .to_path_buf();
    let out_dir = target.join("bench");
    let work = out_dir.join("tmp");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let load_start = loadavg();
    let p = plan(cli.quick);
    let want = |part: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == part);
    let largest = p
        .cost
        .sizes
        .iter()
        .chain([&p.forward.large])
        .chain(&p.daemon_sizes)
        .chain(&p.control.sizes)
        .copied()
        .max()
        .unwrap_or(0);
    log(&format!("generating {largest} members"));
    let specs = population::specs(largest)?;

    let mut report = Report::default();
    // 1. Program cost.
    if want("cost") {
        let results = cost::run(&p.cost, &specs, &mut log);
        ns::unpin()?;
        cost_figures(&p, &results, &mut report);
    }

    // 2. Forwarding.
    if want("forward") {
        let r = forward::run(&p.forward, &specs, &mut log);
        ns::unpin()?;
        forward_figures(&p, r, &mut report);
    }

    // 3. The daemon.
    if want("daemon") {
        let binary = scrape::binary();
        let results = match binary {
            Ok(binary) => scrape::run(
                &scrape::Options {
                    sizes: p.daemon_sizes.clone(),
                    scrapes: p.scrapes,
                    timed: p.daemon_timed.clone(),
                    work: work.clone(),
                    binary,
                },
                &specs,
                &mut log,
            ),
            Err(e) => p
                .daemon_sizes
                .iter()
                .map(|_| Err(anyhow::anyhow!("{e:#}")))
                .collect(),
        };
        daemon_figures(&p, &results, &mut report);
    }

    // 4. The control plane.
    if want("control") {
        let results = match scrape::binary() {
            Ok(binary) => control::run(
                &control::Options {
                    sizes: p.control.sizes.clone(),
                    puts: p.control.puts,
                    put_secs: p.control.put_secs,
                    rate: p.control.rate,
                    margin: std::time::Duration::from_millis(p.control.margin_ms),
                    work: work.clone(),
                    binary,
                },
                &specs,
                &mut log,
            ),
            Err(e) => p
                .control
                .sizes
                .iter()
                .map(|_| Err(anyhow::anyhow!("{e:#}")))
                .collect(),
        };
        control_figures(&p, &results, &mut report);
    }
    let Report {
        mut figures,
        errors,
        raw,
        mut notes,
        plot: plot_series,
        analysis,
    } = report;

    // Output, each group's figures together, groups in order of appearance.
    let mut order: Vec<String> = Vec::new();
    for f in &figures {
        if !order.contains(&f.group) {
            order.push(f.group.clone());
        }
    }
    figures.sort_by_key(|f| order.iter().position(|g| *g == f.group));
    let table = report::table(&figures);
    println!("\n{table}");
    println!("targets:");
    for t in report::targets(&figures) {
        println!("  {t}");
    }
    for a in &analysis {
        println!("probes: {a}");
    }
    for e in &errors {
        println!("error: {e}");
    }
    notes.push(format!(
        "Load average (1, 5, 15 min) at the start: {load_start}; at the end: {}. The VM is shared: whatever else runs competes for the CPUs, the caches and memory bandwidth, which is why every figure is read against an anchor measured in the same run.",
        loadavg()
    ));
    let cpu = ns::measure_cpu();
    let rt = if ns::REALTIME_FAILED.load(std::sync::atomic::Ordering::Relaxed) {
        "could not get a real-time priority (SCHED_FIFO refused); they ran at normal priority"
    } else {
        "ran SCHED_FIFO (priority 10; the kernel's RT throttling leaves others 5%)"
    };
    notes.push(format!(
        "Timed test runs are pinned to CPU {cpu} and {rt}; the forwarding loop is seeded from CPU {cpu} and runs in its softirqs; timekeeping runs on CPU 0."
    ));
    notes.push(POPULATION.to_string());
    let mode = if cli.quick {
        "quick (small sizes, short runs: a smoke test, not the figures)"
    } else {
        "full"
    };
    notes.insert(
        0,
        format!(
            "Mode: {mode}. Machine: {}. Total run time {:.0} s.",
            machine(),
            started.elapsed().as_secs_f64()
        ),
    );
    let json = json!({
        "mode": if cli.quick { "quick" } else { "full" },
        "machine": machine(),
        "figures": figures,
        "notes": notes,
        "errors": errors,
        "raw": raw,
    });
    let json_path = out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    let md = report::markdown("collecte benchmarks", PREAMBLE, &figures, &notes, &analysis);
    std::fs::write(out_dir.join("results.md"), md)?;
    if !plot_series.is_empty() {
        let title = "Random lookup cost vs table size (floor and randomiser subtracted)";
        if let Err(e) = report::plot(&out_dir.join("lookup.png"), title, &plot_series) {
            eprintln!("bench: warning: no plot: {e:#}");
        }
    }
    eprintln!(
        "bench: wrote {}, results.md and lookup.png",
        json_path.display()
    );
    let missing: Vec<&str> = figures
        .iter()
        .filter(|f| f.value.is_none() && !f.pending)
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "bench: {} measurement(s) produced no number: {}",
            missing.len(),
            missing.join("; ")
        );
    }
    Ok(missing.is_empty() && errors.is_empty())
}

const PREAMBLE: &str = "Every figure is a median of several repetitions, measured in the same run as \
its anchor, repetitions interleaved. Program costs come from BPF_PROG_TEST_RUN (64-byte frames, \
the kernel's mean time per run). `lookup` = destination → member slot: a bench-ebpf program \
that walks the datapath's own prefix table code (trie.rs) over a copy of its table, minus the \
randomiser (a bench-ebpf program doing the same random pick and write); for the LPM trie, the \
same with a BPF_MAP_TYPE_LPM_TRIE holding the same prefixes. `program` = the whole program as an operator runs it, including the \
test-run floor (the randomiser's cost above the floor removed). Ratios are value / anchor value.";

const POPULATION: &str = "Members: member i has one IPv4 prefix (a /32; 1 in 32 a /29, and a few /28 to /24), handed out sequentially round-robin from 100.64.0.0/10, 10.0.0.0/8, 172.16.0.0/12 and 45.128.0.0/10, and one IPv6 prefix (/48 1 in 8, /56 2 in 8, /64 5 in 8) handed out sequentially from one pool per length. Program cost: 3 in 4 members untagged on acc0, 1 in 4 QinQ (S-VLAN 100, C-VLAN 200) on acc1; each kind shares its attachment and CPE MAC so that a frame whose source is drawn at random passes the source check (the check reads the same entries whatever their values). Random destinations (sources for upstream) are drawn per packet among all members of the kind the path serves; the LPM trie holds the same prefixes. Forwarding and daemon: all members untagged on the access interface.";

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cpus = ns::online_cpus();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} × {cpu}, kernel {}", kernel.trim())
}

fn mount_bpffs() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if !mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    {
        let _ = ns::run("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"]);
    }
}

fn cost_figures(p: &Plan, results: &[anyhow::Result<cost::SizeResult>], report: &mut Report) {
    report.analysis = cost_analysis(p, results);
    let Report {
        figures,
        errors,
        raw,
        plot,
        ..
    } = report;
    let g = "program cost (BPF_PROG_TEST_RUN, ns/packet)";
    let large = *p.cost.sizes.last().unwrap_or(&0);
    let small = *p.cost.sizes.first().unwrap_or(&0);
    let mut by_size: BTreeMap<usize, &cost::SizeResult> = BTreeMap::new();
    for (n, r) in p.cost.sizes.iter().zip(results) {
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
    for &n in &p.cost.sizes {
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
    for &n in &p.cost.sizes {
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
    for &n in &p.cost.sizes {
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
    for (path, what) in cost::PATHS {
        for (kind, label) in [("hot", "hot packet"), ("rand", "random")] {
            let target = match (*path, kind) {
                ("down4", "hot") => Some(("≤ 4× the floor", Check::RatioAtMost(4.0))),
                ("down4", "rand") => Some(("≤ 300 ns", Check::AtMost(300.0))),
                _ => None,
            };
            let sizes: Vec<usize> = if kind == "hot" {
                vec![large]
            } else {
                p.cost.sizes.clone()
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
                    if *path == "push" || *path == "pop" {
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
        for &n in &p.cost.sizes {
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
        for &n in &p.cost.sizes {
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
        points: p
            .cost
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
fn cost_analysis(p: &Plan, results: &[anyhow::Result<cost::SizeResult>]) -> Vec<String> {
    let mut out = Vec::new();
    for (n, r) in p.cost.sizes.iter().zip(results) {
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

fn forward_figures(p: &Plan, r: anyhow::Result<forward::Results>, report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        notes,
        ..
    } = report;
    let g = "forwarding over veth (64-byte frames, one core, Mpps)";
    let (small, large) = (
        size_label(p.forward.small as f64),
        size_label(p.forward.large as f64),
    );
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
    if p.forward.large < 1_000_000 {
        notes.push(format!(
            "Quick mode: forwarding is measured at {large} members and routes instead of 1M, to keep the kernel's route insertion short."
        ));
    }
}

fn daemon_figures(p: &Plan, results: &[anyhow::Result<scrape::SizeResult>], report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        ..
    } = report;
    let g = "daemon (collecte run, release build)";
    let mut by_size: BTreeMap<usize, &scrape::SizeResult> = BTreeMap::new();
    for (n, r) in p.daemon_sizes.iter().zip(results) {
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
    let small = *p.daemon_sizes.first().unwrap_or(&0);
    let largest = *p.daemon_sizes.last().unwrap_or(&0);
    let sz = |n: usize| size_label(n as f64);
    let scrape = |n: usize| by_size.get(&n).map(|r| r.scrape_median_s);
    let hwm = |n: usize| by_size.get(&n).map(|r| r.hwm_kib as f64 / 1024.0);
    figures.push(Figure::new(
        g,
        format!("GET /metrics, {} members", sz(p.scrape_size)),
        scrape(p.scrape_size),
        "s",
        format!("GET /metrics, {} members", sz(small)),
        scrape(small),
        Some("≤ 0.5 s"),
        Check::AtMost(0.5),
        "wall time of one GET (connect to last byte), median of the scrapes",
    ));
    for &n in &p.daemon_sizes {
        if n == small || n == p.scrape_size {
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
    for &n in &p.daemon_sizes {
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
    let kib =
        |n: usize, f: fn(&scrape::SizeResult) -> u64| by_size.get(&n).map(|r| f(r) as f64 / 1024.0);
    for &n in &p.daemon_sizes {
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
    for &n in &p.daemon_sizes {
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

fn control_figures(p: &Plan, results: &[anyhow::Result<control::SizeResult>], report: &mut Report) {
    let Report {
        figures,
        errors,
        raw,
        ..
    } = report;
    let g = "control plane (collecte run, provisioning API)";
    let mut by_size: BTreeMap<usize, &control::SizeResult> = BTreeMap::new();
    for (n, r) in p.control.sizes.iter().zip(results) {
        match r {
            Ok(r) => {
                by_size.insert(*n, r);
                raw.insert(format!("control.{n}"), json!(r));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let sizes = &p.control.sizes;
    let largest = *sizes.last().unwrap_or(&0);
    let sz = |n: usize| size_label(n as f64);
    let get = |n: usize, f: &dyn Fn(&control::SizeResult) -> f64| by_size.get(&n).map(|r| f(r));
    let flows = format!(
        "two flows of {} kpps of 64-byte UDP (member → uplink and uplink → member) forwarded by XDP, the receivers taking the kernel's arrival time (SO_TIMESTAMPNS)",
        p.control.rate / 1000
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
        let tr = |r: &control::SizeResult, f: &dyn Fn(&control::TrafficSync) -> f64| {
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
