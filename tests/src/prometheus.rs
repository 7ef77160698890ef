//! A real Prometheus server (Debian's `prometheus`) in a test's namespace:
//! its own configuration and data directory, a 1 s scrape of one target,
//! queried over its HTTP API; stopped and removed on drop.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{Netns, topology::in_netns};

/// `prometheus` scraping one target every second.
pub struct Prometheus {
    child: Option<Child>,
    ns: String,
    dir: PathBuf,
    /// Its HTTP API, inside the namespace.
    pub addr: SocketAddr,
    /// The scrape job's name.
    pub job: &'static str,
}

impl Prometheus {
    /// Starts it in `ns`, listening on `addr`, scraping `target`
    /// (`HOST:PORT`, inside the namespace too) as job `collecte`.
    pub fn start(ns: &Netns, addr: SocketAddr, target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("{}.prometheus", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("prometheus directory");
        let job = "collecte";
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "prometheus"])
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus is missing: install the Debian package `prometheus`");
        let mut p = Prometheus {
            child: Some(child),
            ns: ns.name().to_string(),
            dir,
            addr,
            job,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("prometheus exited ({status}); its log:\n{}", p.log());
            }
            if matches!(p.get("/-/ready"), Ok((200, _))) {
                return p;
            }
            assert!(
                Instant::now() < end,
                "prometheus not ready after 30 s; its log:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// GET `path` (already encoded): (status, body).
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(&self.ns, self.addr, path)
    }

    /// GET an API path with query parameters; the `data` of a successful
    /// answer, or what went wrong.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let (status, body) = self.get(&format!("{path}?{}", query.join("&")))?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("{path}: HTTP {status}, not JSON ({e}): {body}"))?;
        if status != 200 || json["status"] != "success" {
            return Err(format!("{path} {params:?}: HTTP {status}: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// An instant query's result vector (or scalar, as one element).
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/query", &[("query", expr)])?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            Some("scalar") | Some("string") => Ok(vec![data["result"].clone()]),
            other => Err(format!("{expr}: unexpected result type {other:?}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- prometheus log ----\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes everything but the unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// An HTTP/1.0 GET inside namespace `ns`: (status, body).
pub fn http_get(ns: &str, addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = in_netns(ns, || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
    })
    .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "answer is not UTF-8".to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("no header/body separator")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}
