//! The real daemon (`collecte run`, the release binary) in a namespace of
//! its own with a generated configuration: time of `GET /metrics` and peak
//! RSS (VmHWM). [`figures()`] turns its results into the report's figures.
mod figures;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};

pub use self::figures::figures;
use crate::{
    ns::Netns,
    population::{self, Attachment, CPE_PLAIN, Spec},
    stats::median,
};

pub const METRICS: &str = "127.0.0.1:9570";

/// The daemon part of the plan.
pub struct Plan {
    /// Member counts to start the daemon with.
    pub sizes: Vec<usize>,
    /// Sizes whose scrapes are repeated `scrapes` times.
    pub timed: Vec<usize>,
    /// The size the scrape figure is quoted at.
    pub scrape_size: usize,
    pub scrapes: usize,
}

pub struct Options {
    /// Member counts to start the daemon with.
    pub sizes: Vec<usize>,
    /// Scrapes per size (the first size and the scrape size); 1 for others.
    pub scrapes: usize,
    /// Sizes whose scrapes are repeated `scrapes` times.
    pub timed: Vec<usize>,
    pub work: PathBuf,
    pub binary: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct SizeResult {
    pub members: usize,
    /// Seconds from start to serving metrics.
    pub startup_s: f64,
    /// Every scrape's seconds, and their median.
    pub scrape_s: Vec<f64>,
    pub scrape_median_s: f64,
    /// Bytes of one response.
    pub body_bytes: usize,
    /// VmHWM after start-up, and after the scrapes (KiB).
    pub hwm_startup_kib: u64,
    pub hwm_kib: u64,
    /// VmRSS once serving, before any scrape (KiB).
    pub rss_startup_kib: u64,
    /// Peak RSS of `collecte check` on the same configuration (KiB).
    pub check_hwm_kib: u64,
}

pub fn run(
    opts: &Options,
    specs: &[Spec],
    log: &mut dyn FnMut(&str),
) -> Vec<anyhow::Result<SizeResult>> {
    population::each_size(
        &opts.sizes,
        specs,
        "daemon (TOML start-up)",
        log,
        |specs, _| one(opts, specs),
    )
}

/// A started daemon, stopped on drop, its pins removed.
pub struct Daemon {
    pub child: Child,
    pin_dir: PathBuf,
}

impl Daemon {
    /// Starts `binary run --config CONFIG` in namespace `ns` (only the
    /// network namespace: bpffs stays the root mount namespace's, where the
    /// pins go), its output to `logfile`.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        ns: &Netns,
        logfile: &Path,
        pin_dir: PathBuf,
    ) -> anyhow::Result<Daemon> {
        let nsfile = ns.file()?;
        let err = std::fs::File::create(logfile)?;
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(err.try_clone()?)
            .stderr(err);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&nsfile);
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Daemon { child, pin_dir })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

fn one(opts: &Options, specs: &[Spec]) -> anyhow::Result<SizeResult> {
    let n = specs.len();
    // The daemon inherits this thread's CPU affinity: all of them.
    crate::ns::unpin()?;
    let ns = Netns::new(&format!("d{n}"))?;
    for (name, mac) in [
        ("up0", [0x02, 0, 0, 0, 0, 0x10]),
        ("acc0", [0x02, 0, 0, 0, 0, 0x20]),
    ] {
        let peer = format!("{name}p");
        ns.ip(&[
            "link",
            "add",
            name,
            "address",
            &population::mac_text(mac),
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ns.ip(&["link", "set", name, "up"])?;
        ns.ip(&["link", "set", &peer, "up"])?;
    }
    let members = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            population::member(
                i,
                s,
                Attachment {
                    interface: "acc0",
                    tags: None,
                    mac: CPE_PLAIN,
                },
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/clt-bench-{}-{n}", std::process::id()));
    let state = opts.work.join(format!("state-{n}.json"));
    let _ = std::fs::remove_file(&state);
    let setup = population::Setup {
        uplink: "up0",
        gateway_mac: [0x02, 0, 0, 0, 0x0e, 0x01],
        access: &["acc0"],
        max_members: population::max_members(n),
        route_groups: population::route_groups(specs)?,
        pin_dir: &pin_dir,
        state: &state,
        metrics: METRICS,
    };
    let mut config = population::config(&setup, members)?;
    // Where the start-up's time and memory go, in the log.
    config.log.level = "collecte=debug".into();
    let path = opts.work.join(format!("collecte-{n}.toml"));
    std::fs::write(&path, population::config_toml(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;
    drop(config);
    let logfile = opts.work.join(format!("collecte-{n}.log"));

    let started = Instant::now();
    let mut daemon = Daemon::spawn(&opts.binary, &path, &ns, &logfile, pin_dir)?;
    let pid = daemon.child.id();

    // Ready when the metrics port accepts connections (it is bound once the
    // tables are in the datapath).
    let _in = ns.enter()?;
    let limit = Duration::from_secs(900);
    loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "collecte exited ({status}) before serving metrics; see {}:\n{}",
                logfile.display(),
                tail(&logfile)
            );
        }
        if TcpStream::connect(METRICS).is_ok() {
            break;
        }
        if started.elapsed() > limit {
            bail!(
                "collecte did not serve metrics within {limit:?}; see {}",
                logfile.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let startup_s = started.elapsed().as_secs_f64();
    let hwm_startup_kib = vm_hwm(pid)?;
    let rss_startup_kib = status_kib(pid, "VmRSS:")?;

    let scrapes = if opts.timed.contains(&n) {
        opts.scrapes
    } else {
        1
    };
    let mut times = Vec::new();
    let mut body_bytes = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let body = get_metrics()?;
        times.push(t.elapsed().as_secs_f64());
        let want = format!("collecte_members {n}");
        ensure!(
            body.lines().any(|l| l == want),
            "the scrape lacks {want:?} ({} bytes)",
            body.len()
        );
        body_bytes = body.len();
    }
    let hwm_kib = vm_hwm(pid)?;
    drop(_in);
    drop(daemon);
    // What reading the configuration alone costs: `collecte check` parses
    // and validates the same file.
    let check_hwm_kib = max_rss_of(&opts.binary, &path)?;
    let _ = std::fs::remove_file(&path);
    Ok(SizeResult {
        members: n,
        startup_s,
        scrape_median_s: median(&times),
        scrape_s: times,
        body_bytes,
        hwm_startup_kib,
        hwm_kib,
        rss_startup_kib,
        check_hwm_kib,
    })
}

/// Peak RSS (KiB) of `collecte check --config PATH`, through GNU time:
/// a child of this (large) process would inherit its high-water mark.
fn max_rss_of(binary: &Path, config: &Path) -> anyhow::Result<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss-kib %M"])
        .arg(binary)
        .args(["check", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .output()
        .context("running /usr/bin/time (Debian package time)")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "collecte check failed on the generated configuration: {err}"
    );
    err.lines()
        .find_map(|l| l.strip_prefix("maxrss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .context("no peak RSS from /usr/bin/time")
}

/// One `GET /metrics`: the body.
pub fn get_metrics() -> anyhow::Result<String> {
    let mut s = TcpStream::connect(METRICS).context("connecting to the metrics endpoint")?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading the scrape")?;
    let text = String::from_utf8(buf).context("the scrape is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no HTTP header in the scrape")?;
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "the scrape answered {}",
        head.lines().next().unwrap_or("")
    );
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(body)
}

fn dechunk(mut s: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).context("short chunk")?);
        s = rest.get(size + 2..).context("short chunk")?;
    }
}

/// VmHWM of a process, KiB.
pub fn vm_hwm(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// A `kB` line of /proc/PID/status.
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/PID/status"))
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Where the release `collecte` binary is: next to this benchmark's.
pub fn binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("collecte");
    ensure!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p router-user` (cargo xtask bench does)",
        bin.display()
    );
    Ok(bin)
}
