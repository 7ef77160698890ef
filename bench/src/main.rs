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
//!    path during a full sync, a scrape and the peak RSS; and at its
//!    largest size the member routes (`[routes]`, `--only routes` alone):
//!    how long the whole kernel table takes to install in the background,
//!    the API and the flows meanwhile, single writes, drain and undrain.
//! 5. PPPoE sessions (`sessions`): sessions set up per second by the
//!    daemon, RADIUS (a real FreeRADIUS) included, against FreeRADIUS
//!    alone answering the same number of Access-Requests.
//! 6. Probes (bench-ebpf `probe_*`): the datapath's prefix table, member
//!    table and counters read alone, at the same sizes, to say where the
//!    random-lookup time goes.
//!
//! Figures are medians of several repetitions, interleaved so that the
//! machine's drift hits a figure and its anchor alike. Writes
//! `target/bench/results.json`, `results.md` and `lookup.png`. Exits
//! non-zero only when a measurement could not be produced.
//!
//! This file owns the plan only: the command line, what each mode measures
//! ([`Plan`]), calling each part in turn and writing out the [`Report`] the
//! parts fill. Each part owns its measurement (`run`) and its figures
//! (`figures`, in `<part>/figures.rs`); nothing here names a figure.
mod control;
mod cost;
mod forward;
mod frames;
mod ns;
mod population;
mod progs;
mod report;
mod scrape;
mod sessions;
mod stats;

use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use report::Report;
use serde_json::json;

#[derive(Parser)]
#[command(name = "bench", about = "collecte's benchmarks against their anchors")]
struct Cli {
    /// Small sizes and short runs (a smoke test: about two minutes).
    #[arg(long)]
    quick: bool,
    /// Run only these parts (cost, forward, daemon, control, routes,
    /// sessions; control includes routes); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

struct Plan {
    cost: cost::Options,
    forward: forward::Options,
    daemon: scrape::Plan,
    control: control::Plan,
    sessions: sessions::Plan,
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
        ("BENCH_DAEMON_SIZES", &mut p.daemon.sizes),
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
            daemon: scrape::Plan {
                sizes: vec![1_000, 10_000],
                timed: vec![1_000, 10_000],
                scrape_size: 10_000,
                scrapes: 3,
            },
            control: control::Plan {
                sizes: vec![10_000],
                puts: 200,
                put_secs: 1.0,
                rate: 5_000,
                margin_ms: 300,
            },
            sessions: sessions::Plan {
                batches: 3,
                per_batch: 10,
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
            daemon: scrape::Plan {
                sizes: vec![1_000, 100_000, 1_000_000],
                timed: vec![1_000, 100_000],
                scrape_size: 100_000,
                scrapes: 5,
            },
            control: control::Plan {
                sizes: vec![100_000, 1_000_000],
                puts: 2_000,
                put_secs: 10.0,
                rate: 5_000,
                margin_ms: 500,
            },
            sessions: sessions::Plan {
                batches: 5,
                per_batch: 50,
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
        .chain(&p.daemon.sizes)
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
        cost::figures(&p.cost, &results, &mut report);
    }

    // 2. Forwarding.
    if want("forward") {
        let r = forward::run(&p.forward, &specs, &mut log);
        ns::unpin()?;
        forward::figures(&p.forward, r, &mut report);
    }

    // 3. The daemon.
    if want("daemon") {
        let binary = scrape::binary();
        let results = match binary {
            Ok(binary) => scrape::run(
                &scrape::Options {
                    sizes: p.daemon.sizes.clone(),
                    scrapes: p.daemon.scrapes,
                    timed: p.daemon.timed.clone(),
                    work: work.clone(),
                    binary,
                },
                &specs,
                &mut log,
            ),
            Err(e) => p
                .daemon
                .sizes
                .iter()
                .map(|_| Err(anyhow::anyhow!("{e:#}")))
                .collect(),
        };
        scrape::figures(&p.daemon, &results, &mut report);
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
        control::figures(&p.control, &results, &mut report);
    }
    // 5. The member routes ([routes]), at the control part's largest size.
    if want("control") || want("routes") {
        let n = p.control.sizes.iter().copied().max().unwrap_or(0);
        let result = scrape::binary().and_then(|binary| {
            control::routes::run(
                &control::Options {
                    sizes: vec![n],
                    puts: p.control.puts,
                    put_secs: p.control.put_secs,
                    rate: p.control.rate,
                    margin: std::time::Duration::from_millis(p.control.margin_ms),
                    work: work.clone(),
                    binary,
                },
                &specs[..n],
                &mut log,
            )
        });
        if let Err(e) = &result {
            log(&format!("  failed: {e:#}"));
        }
        control::routes::figures(&result, &mut report);
    }
    // 5. PPPoE sessions.
    if want("sessions") {
        let result =
            scrape::binary().and_then(|binary| sessions::run(&p.sessions, binary, &mut log));
        if let Err(e) = &result {
            log(&format!("  failed: {e:#}"));
        }
        ns::unpin()?;
        sessions::figures(&p.sessions, &result, &mut report);
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
