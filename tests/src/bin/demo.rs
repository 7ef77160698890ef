//! `cargo xtask demo`: a collection router in network namespaces, with a
//! core and three members behind one access link through a switch: alice
//! (untagged), bob (802.1Q) and carol (QinQ), each a real Linux IP stack
//! whose tags tc programs push and pop (`tests::stacks`). Real traffic
//! goes through `collecte run --config examples/demo.toml`, which names no
//! member's MAC: the router learns them, answers ARP and Neighbor
//! Solicitations for its gateway addresses on every line, and sends the
//! router advertisements the members take their IPv6 default route from.
//! A per-member table read from its metrics; then `collecte top` for a
//! few seconds, and one packet traced with `collecte trace --explain`
//! against the live tables.
//!
//! Everything it creates (namespaces, the bpffs mount, the daemon, its pins)
//! is removed on exit, after a failure or Ctrl-C too.
use std::{
    fs::File,
    io::IsTerminal as _,
    net::{IpAddr, SocketAddr},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use tests::{
    Netns,
    daemon::{Metrics, binary, scrape},
    frames::{ETH_P_IP, ether, ipv4_udp, mac},
    stacks::{
        Gateway6, Options as SiteOptions, Stacks, plan, ra::default_route_from_ra,
        tools::ping_until,
    },
    topology::{alice, carol, wait_for},
};

/// Where examples/demo.toml pins the datapath; the demo mounts a bpffs of
/// its own there.
const DEMO_BPFFS: &str = "/run/collecte-demo";
const METRICS: &str = "127.0.0.1:9570";

struct Options {
    config: PathBuf,
    duration: Duration,
    keep: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        config: PathBuf::from("examples/demo.toml"),
        duration: Duration::from_secs(10),
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => o.config = args.next().context("--config FILE")?.into(),
            "--duration" => {
                let s = args.next().context("--duration SECONDS")?;
                o.duration = Duration::from_secs(s.parse().context("--duration SECONDS")?);
            }
            "--keep" => o.keep = true,
            other => bail!(
                "unknown argument {other}; usage: demo [--config FILE] [--duration SECONDS] [--keep]"
            ),
        }
    }
    Ok(o)
}

/// Ctrl-C and SIGTERM set `stop` instead of killing the process, so that the
/// cleanup always runs.
fn catch_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    // SAFETY: a signal mask set before any other thread starts, and a thread
    // that waits for those signals synchronously.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let flag = stop.clone();
        thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            eprintln!("\ndemo: stopping and cleaning up");
            flag.store(true, Ordering::SeqCst);
        });
    }
    stop
}

/// `cmd` with SIGINT and SIGTERM unblocked in the child: it would inherit
/// the mask [`catch_signals`] sets (a spawned process keeps its parent's
/// signal mask), and a daemon or `collecte top` that never sees SIGTERM
/// cannot stop cleanly.
fn with_signals(cmd: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec, only async-signal-safe calls on a
    // local set.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// The bpffs mount and the daemon: stopped, detached and unmounted on drop.
struct Router {
    child: Option<Child>,
    ns: String,
    config: PathBuf,
    log: PathBuf,
}

impl Router {
    fn start(ns: &str, config: &Path, log: &Path) -> anyhow::Result<Router> {
        std::fs::create_dir_all(DEMO_BPFFS)?;
        let mounted = std::fs::read_to_string("/proc/mounts")?
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(DEMO_BPFFS));
        if !mounted {
            let ok = Command::new("mount")
                .args(["-t", "bpf", "bpf", DEMO_BPFFS])
                .status()?
                .success();
            if !ok {
                bail!("cannot mount a bpffs at {DEMO_BPFFS}");
            }
        }
        let logfile = std::fs::File::create(log)?;
        let child = with_signals(&mut Command::new("ip"))
            .args(["netns", "exec", ns])
            .arg(binary())
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone()?)
            .stderr(logfile)
            .spawn()
            .context("starting collecte run")?;
        Ok(Router {
            child: Some(child),
            ns: ns.to_string(),
            config: config.to_path_buf(),
            log: log.to_path_buf(),
        })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // SIGTERM leaves the datapath forwarding; take it away for real
        // (in the router's namespace: the final router advertisements and
        // the VLAN offloads are its interfaces').
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(binary())
            .args(["stop", "--detach", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .status();
        let _ = Command::new("umount").arg(DEMO_BPFFS).status();
        let _ = std::fs::remove_dir(DEMO_BPFFS);
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("demo failed: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let opts = options()?;
    let stop = catch_signals();
    tests::require_root();
    let config = std::fs::canonicalize(&opts.config)
        .with_context(|| format!("{}", opts.config.display()))?;
    println!(
        "demo: building the site: a core, the router, a switch, and behind it alice (untagged), bob (802.1Q 101) and carol (QinQ 10/102), real IP stacks"
    );
    let site = Stacks::new(
        "demo",
        SiteOptions {
            gateway6: Gateway6::FromRa,
            ..SiteOptions::stock(9570)
        },
    );
    let log = std::env::temp_dir().join(format!("{}.collecte.log", site.router.name()));
    let mut router = Router::start(site.router.name(), &config, &log)?;
    let metrics: SocketAddr = METRICS.parse()?;
    let started = Instant::now();
    loop {
        if scrape(site.router.name(), metrics)
            .map(|t| Metrics::parse(&t).count("collecte_members", &[]) == 3)
            .unwrap_or(false)
        {
            break;
        }
        if !router.alive() || started.elapsed() > Duration::from_secs(15) {
            bail!(
                "collecte did not come up; its log ({}):\n{}",
                router.log.display(),
                std::fs::read_to_string(&router.log).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    println!(
        "demo: collecte runs in namespace {} ({}); the members come up, no MAC configured anywhere",
        site.router.name(),
        config.display(),
    );
    site.plug();
    for m in &site.members {
        let route = wait_for(Duration::from_secs(20), || {
            default_route_from_ra(&m.ns, &[plan::ACC_LL6]).0
        });
        let Some(route) = route else {
            bail!(
                "{} took no IPv6 default route from the router's advertisements in 20 s{}",
                m.id(),
                site.diagnose(None)
            );
        };
        println!(
            "demo: {:<5} IPv6 default route from the router's RA: {route}",
            m.id()
        );
        for target in [plan::REMOTE4.to_string(), plan::REMOTE6.to_string()] {
            if ping_until(&m.ns, &target, Duration::from_secs(10)).received != 1 {
                bail!(
                    "{} cannot reach {target} through the router{}",
                    m.id(),
                    site.diagnose(None)
                );
            }
        }
    }
    println!(
        "demo: every member reaches the internet host; driving traffic for {} s",
        opts.duration.as_secs()
    );
    drive(&site, opts.duration, &stop)?;
    let text = scrape(site.router.name(), metrics).map_err(anyhow::Error::msg)?;
    print_table(&Metrics::parse(&text));
    if !stop.load(Ordering::SeqCst) {
        show_top(site.router.name())?;
    }
    if !stop.load(Ordering::SeqCst) {
        explain_one_packet(site.router.name(), &config)?;
    }
    println!(
        "\nmetrics: http://{METRICS}/metrics inside namespace {} (ip netns exec {} curl -s http://{METRICS}/metrics)",
        site.router.name(),
        site.router.name()
    );
    println!("daemon log: {}", router.log.display());
    if opts.keep && !stop.load(Ordering::SeqCst) {
        println!("demo: --keep: running until Ctrl-C");
        while !stop.load(Ordering::SeqCst) && router.alive() {
            thread::sleep(Duration::from_millis(200));
        }
    }
    drop(router);
    drop(site);
    println!("demo: everything removed");
    Ok(())
}

/// `ping` in namespace `ns`, in the background, quiet.
fn ping(ns: &Netns, args: &[&str]) -> std::io::Result<Child> {
    Command::new("ip")
        .args(["netns", "exec", ns.name(), "ping", "-n", "-q"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Traffic both ways for every member (pings from each member to the
/// core's internet host and from the core to each member, both families),
/// plus bob trying alice's source address once a second.
fn drive(site: &Stacks, duration: Duration, stop: &AtomicBool) -> anyhow::Result<()> {
    let deadline = Instant::now() + duration;
    let count = (duration.as_secs() * 20).max(1).to_string();
    let mut pings = Vec::new();
    for m in &site.members {
        for target in [IpAddr::V4(plan::REMOTE4), IpAddr::V6(plan::REMOTE6)] {
            let target = target.to_string();
            pings.push(ping(&m.ns, &["-i", "0.05", "-c", &count, &target])?);
        }
        for host in [IpAddr::V4(m.spec.host4), IpAddr::V6(m.spec.host6)] {
            let host = host.to_string();
            pings.push(ping(&site.core, &["-i", "0.05", "-c", &count, &host])?);
        }
    }
    // bob sends with alice's source: the router drops it as spoofed.
    let bob = site.member("bob");
    let alice4 = alice().host4.to_string();
    bob.ns.ip(&[
        "addr",
        "add",
        &format!("{alice4}/32"),
        "dev",
        plan::MEMBER_DEV,
    ]);
    let spoofs = duration.as_secs().max(1).to_string();
    let remote4 = plan::REMOTE4.to_string();
    pings.push(ping(
        &bob.ns,
        &["-I", &alice4, "-i", "1", "-c", &spoofs, &remote4],
    )?);
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(100));
    }
    for mut p in pings {
        let _ = p.kill();
        let _ = p.wait();
    }
    Ok(())
}

fn print_table(m: &Metrics) {
    println!(
        "\n{:<8} {:>12} {:>14} {:>12} {:>14} {:>10}",
        "member", "rx packets", "rx bytes", "tx packets", "tx bytes", "spoofed"
    );
    for id in ["alice", "bob", "carol"] {
        println!(
            "{:<8} {:>12} {:>14} {:>12} {:>14} {:>10}",
            id,
            m.member(id, "receive_packets"),
            m.member(id, "receive_bytes"),
            m.member(id, "transmit_packets"),
            m.member(id, "transmit_bytes"),
            m.member(id, "spoofed_packets"),
        );
    }
    println!("(rx: from the member, upload; tx: to the member, download; bytes are IP bytes)");
}

/// How long the demo shows `collecte top`.
const TOP_FOR: Duration = Duration::from_secs(5);

/// `collecte top` on the router's metrics for [`TOP_FOR`], as an operator
/// would leave it open (it needs a terminal: without one, the demo says
/// how to run it).
fn show_top(router_ns: &str) -> anyhow::Result<()> {
    let url = format!("http://{METRICS}/metrics");
    if !std::io::stdout().is_terminal() {
        println!(
            "\ndemo: collecte top needs a terminal, and this output is not one; in a terminal: ip netns exec {router_ns} {} top --metrics {url}",
            binary().display()
        );
        return Ok(());
    }
    println!(
        "\ndemo: collecte top for {} s (q quits it earlier)",
        TOP_FOR.as_secs()
    );
    thread::sleep(Duration::from_secs(1));
    // `ip netns exec` execs collecte: the child is collecte itself.
    let mut top = with_signals(&mut Command::new("ip"))
        .args(["netns", "exec", router_ns])
        .arg(binary())
        .args(["top", "--metrics", &url])
        .spawn()
        .context("starting collecte top")?;
    let until = Instant::now() + TOP_FOR;
    while Instant::now() < until {
        if top.try_wait()?.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    if top.try_wait()?.is_none() {
        // SIGTERM: top puts the terminal back before it exits.
        unsafe { libc::kill(top.id() as i32, libc::SIGTERM) };
    }
    let status = top.wait()?;
    if !status.success() {
        bail!("collecte top ended with {status}");
    }
    Ok(())
}

/// One packet from the core to carol, traced with `--explain` through the
/// running daemon's own tables (the tracer reads the pinned ones): what
/// the program does with it, step by step.
fn explain_one_packet(router_ns: &str, config: &Path) -> anyhow::Result<()> {
    let c = carol();
    let ip = ipv4_udp(plan::REMOTE4, c.host4, 64, b"hello carol");
    let frame = ether(mac(plan::UP0_MAC), mac(plan::GW_MAC), &[], ETH_P_IP, &ip);
    let pcap = std::env::temp_dir().join(format!("{router_ns}.explain.pcap"));
    let file = File::create(&pcap).with_context(|| format!("{}", pcap.display()))?;
    let mut w = PcapWriter::new(file).context("writing the pcap")?;
    w.write_packet(&PcapPacket::new(Duration::ZERO, frame.len() as u32, &frame))
        .context("writing the pcap")?;
    drop(w);
    println!(
        "\ndemo: one packet from the internet to carol, traced through the running router's tables:\n$ collecte trace --explain --config {} --ingress up0 {}",
        config.display(),
        pcap.display()
    );
    let out = Command::new("ip")
        .args(["netns", "exec", router_ns])
        .arg(binary())
        .args(["trace", "--explain", "--config"])
        .arg(config)
        .args(["--ingress", "up0"])
        .arg(&pcap)
        .output()
        .context("running collecte trace")?;
    let _ = std::fs::remove_file(&pcap);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!(
            "collecte trace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
