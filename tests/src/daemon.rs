//! The `collecte run` daemon as a test drives it: started in the router
//! namespace with `ip netns exec`, its stderr kept in a log file, signalled,
//! scraped, and stopped (SIGKILL as a last resort) when dropped.
use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use crate::{Netns, topology::in_netns};

/// The daemon binary, `target/debug/collecte` of this workspace (or of
/// `CARGO_TARGET_DIR`). Panics with what to do when it is missing: test
/// binaries do not build the binaries of their dependencies.
pub fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/collecte");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p router-user --bin collecte` \
         (`cargo xtask test` does)",
        bin.display()
    );
    // Test binaries do not rebuild it: say so when it is older than its
    // sources (`cargo xtask test` builds it first).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../router-user/src");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let newest = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let (Some(built), Some(newest)) = (built, newest)
        && newest > built
    {
        WARNED.call_once(|| eprintln!(
            "warning: {} is older than router-user/src: rebuild it with `cargo build -p router-user --bin collecte`",
            bin.display()
        ));
    }
    bin
}

/// A running `collecte run`.
pub struct Daemon {
    child: Option<Child>,
    ns: String,
    dir: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub metrics: SocketAddr,
}

impl Daemon {
    /// Writes `config` and starts the daemon in namespace `ns`. It listens
    /// for metrics on `metrics` (inside the namespace).
    pub fn start(ns: &Netns, config: &str, metrics: SocketAddr) -> Daemon {
        Daemon::start_binary(&binary(), ns, config, metrics)
    }

    /// [`Daemon::start`] with another build of collecte (the benchmarks'
    /// release build).
    pub fn start_binary(bin: &Path, ns: &Netns, config: &str, metrics: SocketAddr) -> Daemon {
        let bin = bin.to_path_buf();
        let dir = std::env::temp_dir().join(ns.name());
        std::fs::create_dir_all(&dir).expect("daemon directory");
        let config_path = dir.join("collecte.toml");
        let log_path = dir.join("collecte.log");
        std::fs::write(&config_path, config).expect("write configuration");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&bin)
            .args(["run", "--config"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Daemon {
            child: Some(child),
            ns: ns.name().to_string(),
            dir,
            config_path,
            log_path,
            metrics,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("daemon running").id() as i32
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn signal(&self, sig: libc::c_int) {
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Has the daemon exited? Panics with its log if so (for checks that
    /// expect it alive).
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
            panic!("collecte exited ({status}); its log:\n{}", self.log());
        }
    }

    /// Replaces the configuration file and sends SIGHUP.
    pub fn reload(&self, config: &str) {
        let tmp = self.dir.join("collecte.toml.new");
        std::fs::write(&tmp, config).expect("write configuration");
        std::fs::rename(&tmp, &self.config_path).expect("replace configuration");
        self.signal(libc::SIGHUP);
    }

    /// `collecte stop --detach` with this daemon's configuration, in its
    /// namespace: takes the datapath away. Returns its combined output.
    pub fn stop_detach(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(binary())
            .args(["stop", "--detach", "--config"])
            .arg(&self.config_path)
            .output()
            .expect("run collecte stop");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "collecte stop --detach failed ({}):\n{text}",
            out.status
        );
        text
    }

    /// Starts the daemon again (same namespace, configuration and log,
    /// appended) after it exited.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "collecte is still running");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(binary())
            .args(["run", "--config"])
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("restart collecte");
        self.child = Some(child);
    }

    /// GET /metrics, or the error.
    pub fn try_scrape(&self) -> Result<String, String> {
        scrape(&self.ns, self.metrics)
    }

    /// GET /metrics, parsed; panics on failure.
    pub fn metrics(&self) -> Metrics {
        let text = self
            .try_scrape()
            .unwrap_or_else(|e| panic!("scraping {}: {e}\nlog:\n{}", self.metrics, self.log()));
        Metrics::parse(&text)
    }

    /// Waits until the metrics endpoint answers with `members` members.
    pub fn wait_ready(&mut self, members: u64, timeout: Duration) -> Metrics {
        let end = Instant::now() + timeout;
        let mut last;
        loop {
            self.assert_alive();
            match self.try_scrape() {
                Ok(text) => {
                    let m = Metrics::parse(&text);
                    if m.value("collecte_members", &[]) == Some(members as f64) {
                        return m;
                    }
                    last = format!("collecte_members is {:?}", m.value("collecte_members", &[]));
                }
                Err(e) => last = e,
            }
            if Instant::now() >= end {
                panic!(
                    "collecte not ready with {members} members after {timeout:?} ({last}); log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` and waits up to `timeout` for the daemon to exit.
    pub fn stop(&mut self, sig: libc::c_int, timeout: Duration) -> ExitStatus {
        self.signal(sig);
        let end = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "collecte did not exit within {timeout:?} of signal {sig}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- collecte log ({}) ----\n{}",
                self.log_path.display(),
                self.log()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails when `promtool check metrics` does not accept `text`.
pub fn promtool(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: install the Debian package `prometheus`");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTP/1.0 GET of /metrics at `addr` inside namespace `ns`.
pub fn scrape(ns: &str, addr: SocketAddr) -> Result<String, String> {
    let stream = in_netns(ns, || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
    })
    .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut stream = stream;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "response is not UTF-8".to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("no header/body separator")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("status {status}"));
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// One sample of the Prometheus text format.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed /metrics page.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, labels, rest) = match line.find('{') {
                Some(i) => {
                    let j = line
                        .rfind('}')
                        .unwrap_or_else(|| panic!("bad sample line {line}"));
                    (&line[..i], parse_labels(&line[i + 1..j]), &line[j + 1..])
                }
                None => {
                    let i = line
                        .find(' ')
                        .unwrap_or_else(|| panic!("bad sample line {line}"));
                    (&line[..i], BTreeMap::new(), &line[i..])
                }
            };
            let v = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("no value: {line}"));
            let value = match v {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Metrics {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of the sample named `name` whose labels include `labels`
    /// (exactly one must match).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        match found.len() {
            0 => None,
            1 => Some(found[0].value),
            _ => panic!("{} samples of {name} match {labels:?}", found.len()),
        }
    }

    /// Like [`Metrics::value`], 0 when absent, as an integer.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(name, labels).unwrap_or(0.0) as u64
    }

    /// A member counter (`collecte_member_<what>_total{member}`).
    pub fn member(&self, id: &str, what: &str) -> u64 {
        self.count(&format!("collecte_member_{what}_total"), &[("member", id)])
    }

    /// `collecte_datapath_packets_total{interface,action,reason}`.
    pub fn datapath(&self, iface: &str, action: &str, reason: &str) -> u64 {
        self.count(
            "collecte_datapath_packets_total",
            &[("interface", iface), ("action", action), ("reason", reason)],
        )
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').unwrap_or_else(|| panic!("bad labels {s}"));
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        assert!(after.starts_with('"'), "bad labels {s}");
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => break,
                },
                '"' => {
                    end = Some(i + 2);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value in {s}"));
        out.insert(key, value);
        rest = after[end..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    out
}
