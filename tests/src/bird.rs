//! BIRD 2 (Debian `bird2`) as the tests run it: one `bird` per namespace,
//! in the foreground, with its own configuration, control socket and pid
//! file in a directory of its own (never the system's service), stopped
//! and removed when dropped; `birdc` on its socket, and its answers parsed.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::Netns;

/// A running `bird`.
pub struct Bird {
    pub name: String,
    dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// One path to a prefix, as `show route` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdRoute {
    pub prefix: String,
    /// The protocol that brought it (`core4`, `r1v4`, ...).
    pub protocol: String,
    /// Its next hop (`via ...`), if any.
    pub via: Option<String>,
    /// `blackhole`, `unicast`, ...
    pub kind: String,
    /// The time of its last change, as BIRD prints it.
    pub since: String,
}

/// A BGP channel's counters (`show protocols all`): what the peer sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    pub updates_received: u64,
    pub withdraws_received: u64,
}

impl Bird {
    /// Writes `config` and starts `bird` in `ns`; waits until it answers.
    pub fn start(ns: &Netns, name: &str, config: &str) -> Bird {
        let dir = std::env::temp_dir().join(format!("{}-bird-{name}", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bird directory");
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config).expect("write bird.conf");
        let socket = dir.join("bird.ctl");
        let log = dir.join("bird.log");
        let out = std::fs::File::create(&log).expect("bird log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "bird", "-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&socket)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("bird is missing: install the Debian package bird2 (cargo xtask setup)");
        let mut bird = Bird {
            name: name.to_owned(),
            dir,
            socket,
            log,
            child: Some(child),
        };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = bird.child.as_mut().unwrap().try_wait().unwrap() {
                bird.child = None;
                panic!("bird {name} exited ({status}):\n{}", bird.log());
            }
            if bird.try_cli("show status").is_ok() {
                return bird;
            }
            assert!(
                Instant::now() < end,
                "bird {name} does not answer on {}:\n{}",
                bird.socket.display(),
                bird.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn try_cli(&self, command: &str) -> Result<String, String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.socket)
            .args(command.split_whitespace())
            .output()
            .map_err(|e| format!("birdc: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !text.contains("BIRD") {
            return Err(format!(
                "birdc {command}: {}{text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text)
    }

    /// `birdc COMMAND`'s answer; panics when BIRD does not answer.
    pub fn cli(&self, command: &str) -> String {
        self.try_cli(command)
            .unwrap_or_else(|e| panic!("bird {}: {e}\nlog:\n{}", self.name, self.log()))
    }

    /// Every path of BIRD table `table` (`master4`, `members6`, ...).
    pub fn routes(&self, table: &str) -> Vec<BirdRoute> {
        parse_routes(&self.cli(&format!("show route table {table}")))
    }

    /// Whether BGP protocol `name` is established.
    pub fn established(&self, name: &str) -> bool {
        self.cli(&format!("show protocols {name}"))
            .lines()
            .any(|l| l.starts_with(name) && l.contains("Established"))
    }

    /// Waits until every protocol of `names` is established.
    pub fn wait_established(&self, names: &[&str], timeout: Duration) {
        let end = Instant::now() + timeout;
        while !names.iter().all(|n| self.established(n)) {
            assert!(
                Instant::now() < end,
                "bird {}: {names:?} not established within {timeout:?}:\n{}\nlog:\n{}",
                self.name,
                self.cli("show protocols all"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The import counters of BGP protocol `name`'s channel.
    pub fn import_stats(&self, name: &str) -> ImportStats {
        let text = self.cli(&format!("show protocols all {name}"));
        let received = |what: &str| -> u64 {
            text.lines()
                .find(|l| l.trim_start().starts_with(what))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {what:?} in:\n{text}"))
        };
        ImportStats {
            updates_received: received("Import updates:"),
            withdraws_received: received("Import withdraws:"),
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `ip netns exec` execs bird: the child is bird itself.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- bird {} log ----\n{}", self.name, self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses `show route` (BIRD 2):
///
/// ```text
/// Table master4:
/// 198.51.100.7/32      unicast [r1v4 2026-12-06 23:19:26.712] * (100) [AS65001i]
///         via 203.0.113.2 on core0
///                      unicast [r2v4 2026-12-06 23:19:27.001] (100) [AS65002i]
///         via 203.0.113.6 on core1
/// ```
pub fn parse_routes(text: &str) -> Vec<BirdRoute> {
    let mut out: Vec<BirdRoute> = Vec::new();
    let mut prefix = String::new();
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("via ") {
            if let Some(last) = out.last_mut() {
                last.via = rest.split_whitespace().next().map(str::to_owned);
            }
            continue;
        }
        let Some(open) = trimmed.find('[') else {
            continue;
        };
        let mut words = trimmed[..open].split_whitespace();
        if !line.starts_with(char::is_whitespace) {
            prefix = words.next().unwrap_or_default().to_owned();
        }
        let kind = words.next().unwrap_or_default().to_owned();
        let inside = &trimmed[open + 1
            ..trimmed[open..]
                .find(']')
                .map_or(trimmed.len(), |c| open + c)];
        let mut parts = inside.splitn(2, ' ');
        out.push(BirdRoute {
            prefix: prefix.clone(),
            protocol: parts.next().unwrap_or_default().to_owned(),
            via: None,
            kind,
            since: parts.next().unwrap_or_default().to_owned(),
        });
    }
    out
}

/// `examples/bird.conf` of this repository.
pub fn example_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bird.conf");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with each `(from, to)` replaced, every one of which must occur.
pub fn substitute(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        assert!(out.contains(from), "{from:?} is not in the configuration");
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_route() {
        let text = "BIRD 2.0.12 ready.\nTable master4:\n\
            198.51.100.7/32      unicast [r1v4 2026-12-06 23:19:26.712] * (100) [AS65001i]\n\
            \tvia 203.0.113.2 on core0\n\
            \x20                    unicast [r2v4 2026-12-06 23:19:27.001] (100) [AS65002i]\n\
            \tvia 203.0.113.6 on core1\n\
            Table members4:\n\
            198.51.100.8/29      blackhole [collecte4 23:19:25.860] * (10)\n";
        let r = parse_routes(text);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(
            r[0],
            BirdRoute {
                prefix: "198.51.100.7/32".into(),
                protocol: "r1v4".into(),
                via: Some("203.0.113.2".into()),
                kind: "unicast".into(),
                since: "2026-12-06 23:19:26.712".into(),
            }
        );
        assert_eq!(
            (
                r[1].prefix.as_str(),
                r[1].protocol.as_str(),
                r[1].via.as_deref()
            ),
            ("198.51.100.7/32", "r2v4", Some("203.0.113.6"))
        );
        assert_eq!(
            (
                r[2].prefix.as_str(),
                r[2].kind.as_str(),
                r[2].via.as_deref()
            ),
            ("198.51.100.8/29", "blackhole", None)
        );
    }
}
