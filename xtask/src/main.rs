//! Developer and operator tasks: `cargo xtask setup|build|test|demo|bench`.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

mod deb;

#[derive(Parser)]
#[command(name = "xtask", about = "collecte's developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install everything the build and the tests need (idempotent).
    Setup,
    /// Build the workspace (the eBPF object is built and embedded by router-user).
    Build,
    /// Set up, then run every test (needs root: tests create namespaces).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, then build the Debian package:
    /// target/debian/collecte_VERSION_ARCH.deb (the release binary, the
    /// systemd unit, the configuration, the maintainer scripts).
    Deb,
    /// Set up, then run the demo: a router, a core and three members
    /// (untagged, 802.1Q, QinQ) in namespaces, `collecte run` with
    /// examples/demo.toml, real traffic, and a per-member table.
    Demo {
        /// Seconds of traffic (default 10).
        #[arg(long)]
        duration: Option<u64>,
        /// Leave the site running until Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// Set up, then run the benchmarks against their anchors (needs root);
    /// writes target/bench/results.{json,md} and lookup.png.
    Bench {
        /// Small sizes and short runs (a smoke test).
        #[arg(long)]
        quick: bool,
        /// Run only these parts: cost, forward, daemon, control, routes
        /// (comma separated; control includes routes); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

/// Debian packages: the LLVM that bpf-linker links against, the tools
/// the tests drive, and for the benchmark the font of its plot and GNU time.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    "iproute2",
    "iputils-ping",
    "iperf3",
    "tcpdump",
    "traceroute",
    "bpftool",
    "ethtool",
    "prometheus",
    // The member routes' tests announce them with real BIRD 2 daemons
    // (bird, birdc).
    "bird2",
    // The PPPoE tests authenticate against real FreeRADIUS servers
    // (freeradius; radclient and radtest for a developer's checks).
    "freeradius",
    "freeradius-utils",
    // The Debian package (cargo xtask deb) and its test: dpkg-shlibdeps,
    // strip, the man page, lintian, systemd-analyze.
    "dpkg-dev",
    "binutils",
    "help2man",
    "lintian",
    "systemd",
    // collecte top's test drives it in a terminal; the unit's sandbox
    // test traces the daemon's system calls.
    "tmux",
    "strace",
    "fonts-dejavu-core",
    "time",
];
const BPF_LINKER_VERSION: &str = "0.13";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    std::env::set_current_dir(&root).context("entering the workspace")?;
    match cli.task {
        Task::Setup => setup(),
        Task::Build => {
            setup()?;
            cargo(&["build", "--all-targets"])
        }
        Task::Deb => {
            setup()?;
            deb::build(&root).map(|_| ())
        }
        Task::Test { args } => {
            setup()?;
            test(&args)
        }
        Task::Demo { duration, keep } => {
            setup()?;
            let mut args = vec!["--config".to_string(), "examples/demo.toml".to_string()];
            if let Some(d) = duration {
                args.extend(["--duration".to_string(), d.to_string()]);
            }
            if keep {
                args.push("--keep".to_string());
            }
            demo(&args)
        }
        Task::Bench { quick, only } => {
            setup()?;
            bench(quick, &only)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new(env!("CARGO")).args(args))
}

/// Stops and disables the system's FreeRADIUS service, which the package
/// may start on install: the tests run their own servers, and one on 1812
/// and 1813 would answer requests meant for them. Without systemd (or when
/// nothing was started) there is nothing to stop, and failures are ignored.
fn stop_system_freeradius() {
    let quiet = |c: &mut Command| {
        let _ = c
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    quiet(Command::new("systemctl").args(["disable", "--now", "freeradius"]));
    quiet(Command::new("invoke-rc.d").args(["freeradius", "stop"]));
    quiet(Command::new("update-rc.d").args(["freeradius", "disable"]));
}

fn setup() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .contains("install ok installed")
        })
        .collect();
    if !missing.is_empty() {
        eprintln!("setup: installing {}", missing.join(" "));
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        if missing.contains(&"freeradius") {
            stop_system_freeradius();
        }
    }
    if !output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .lines()
    .any(|l| l.starts_with("rust-src"))
    {
        eprintln!("setup: adding rust-src to the nightly toolchain");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    let linker = output(Command::new("bpf-linker").arg("--version"));
    if !linker.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")) {
        eprintln!("setup: installing bpf-linker {BPF_LINKER_VERSION} against LLVM 22");
        run(Command::new(env!("CARGO"))
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                &format!("~{BPF_LINKER_VERSION}"),
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"))?;
    }
    mount_bpffs()
}

/// Pinning needs bpffs at /sys/fs/bpf; it is not mounted by default here.
fn mount_bpffs() -> anyhow::Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf"))
    {
        return Ok(());
    }
    if !succeeds(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"])) {
        eprintln!(
            "setup: warning: cannot mount bpffs at /sys/fs/bpf (tests that pin will mount it themselves)"
        );
    }
    Ok(())
}

fn bench(quick: bool, only: &[String]) -> anyhow::Result<()> {
    // The daemon's figures use the release `collecte` binary.
    cargo(&[
        "build",
        "--release",
        "-p",
        "router-user",
        "--bin",
        "collecte",
    ])?;
    let mut args = vec!["run", "--release", "-p", "bench", "--"];
    if quick {
        args.push("--quick");
    }
    let only = only.join(",");
    if !only.is_empty() {
        args.extend(["--only", &only]);
    }
    cargo(&args)
}

fn test(args: &[String]) -> anyhow::Result<()> {
    // The benchmarks' smoke test: every measurement produces a number (the
    // timings themselves are never pass/fail). Skipped when the caller
    // filters the tests.
    if args.is_empty() {
        bench(true, &[])?;
    }
    // The integration tests run the `collecte` binary: build it first.
    cargo(&["build", "--bins"])?;
    let mut child = Command::new(env!("CARGO"))
        .arg("test")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    // Pass the output through and add up every test binary's result line,
    // so that the run closes on one total.
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = child.stdout.take().expect("piped stdout");
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match what {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("\ntests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("cargo test failed: {status}");
    }
    Ok(())
}

fn demo(args: &[String]) -> anyhow::Result<()> {
    cargo(&["build", "--bins"])?;
    let mut a: Vec<&str> = vec!["run", "--quiet", "-p", "tests", "--bin", "demo", "--"];
    a.extend(args.iter().map(String::as_str));
    cargo(&a)
}
