//! Test support for the provisioning API: a router namespace with veth
//! interfaces and a `collecte run` whose API is on, a token, a state file
//! that outlives the daemon (for kill-and-restart tests), and a small
//! blocking HTTP/1.1 client that reaches into the namespace.
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt as _, net::UnixStream},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    Netns,
    daemon::Daemon,
    topology::{Bpffs, in_netns},
};

/// The token the sites use.
pub const TOKEN: &str = "0123456789abcdef-test-token-0123456789";

/// A free TCP port on 127.0.0.1 inside namespace `ns`.
pub fn free_port(ns: &str) -> u16 {
    in_netns(ns, || {
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .expect("bind port 0")
            .local_addr()
            .unwrap()
            .port()
    })
}

/// Where a client connects.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// TCP inside a namespace.
    Tcp { ns: String, addr: SocketAddr },
    /// A Unix socket (not namespaced).
    Unix(PathBuf),
}

impl Endpoint {
    /// The `--api` argument of `collecte member`.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Tcp { addr, .. } => format!("http://{addr}"),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

/// An HTTP answer.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `X-Collecte-Revision`.
    pub fn revision(&self) -> Option<u64> {
        self.header("x-collecte-revision")
            .map(|v| v.parse().expect("numeric revision"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request.
pub struct Req<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// `None`: no Authorization header.
    pub auth: Option<String>,
    pub content_type: Option<&'a str>,
    pub body: Option<Vec<u8>>,
}

/// A blocking HTTP/1.1 client, one connection per request.
#[derive(Clone, Debug)]
pub struct Client {
    pub endpoint: Endpoint,
    pub token: String,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Client {
        Client {
            endpoint,
            token: TOKEN.into(),
        }
    }

    /// A request with the right token, and a JSON content type when there
    /// is a body.
    pub fn req<'a>(&self, method: &'a str, path: &'a str, body: Option<Vec<u8>>) -> Req<'a> {
        Req {
            method,
            path,
            auth: Some(format!("Bearer {}", self.token)),
            content_type: body.as_ref().map(|_| "application/json"),
            body,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.req("GET", path, None)).expect("GET")
    }

    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req("PUT", path, Some(body.to_string().into_bytes())))
            .expect("PUT")
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send(self.req("DELETE", path, None)).expect("DELETE")
    }

    /// Sends a request; Err when the connection fails (daemon gone).
    pub fn send(&self, r: Req<'_>) -> std::io::Result<Resp> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
            r.method, r.path
        );
        if let Some(a) = &r.auth {
            head += &format!("Authorization: {a}\r\n");
        }
        if let Some(ct) = r.content_type {
            head += &format!("Content-Type: {ct}\r\n");
        }
        let body = r.body.unwrap_or_default();
        if !body.is_empty() || matches!(r.method, "PUT" | "POST") {
            head += &format!("Content-Length: {}\r\n", body.len());
        }
        head += "\r\n";
        let mut raw = Vec::new();
        match &self.endpoint {
            Endpoint::Tcp { ns, addr } => {
                let addr = *addr;
                let mut s = in_netns(ns, move || {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                })?;
                s.set_read_timeout(Some(Duration::from_secs(60)))?;
                exchange(&mut s, head.as_bytes(), &body, &mut raw)?;
            }
            Endpoint::Unix(p) => {
                let mut s = UnixStream::connect(p)?;
                s.set_read_timeout(Some(Duration::from_secs(60)))?;
                exchange(&mut s, head.as_bytes(), &body, &mut raw)?;
            }
        }
        parse_response(&raw)
    }
}

fn exchange<S: Read + Write>(
    s: &mut S,
    head: &[u8],
    body: &[u8],
    raw: &mut Vec<u8>,
) -> std::io::Result<()> {
    s.write_all(head)?;
    // A server may answer (413) and close before reading a whole body.
    let _ = s.write_all(body);
    s.read_to_end(raw).map(|_| ())
}

fn parse_response(raw: &[u8]) -> std::io::Result<Resp> {
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no complete HTTP head"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let nl = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[at..at + nl])
                    .map_err(|_| bad("bad chunk size"))?
                    .trim(),
                16,
            )
            .map_err(|_| bad("bad chunk size"))?;
            at += nl + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(at..at + size).ok_or_else(|| bad("short chunk"))?);
            at += size + 2;
        }
        out
    } else if let Some((_, len)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        rest.get(..len).ok_or_else(|| bad("short body"))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// What a [`Site`]'s configuration holds.
#[derive(Clone, Debug)]
pub struct SiteOptions {
    /// Extra `[[member]]` tables (TOML).
    pub members: String,
    /// `[api] listen`: `None` for TCP on a free port.
    pub unix_socket: bool,
    /// `[api] body_limit`, when set.
    pub body_limit: Option<String>,
    pub max_members: u32,
    /// More sections (TOML), appended to the configuration.
    pub extra: String,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            members: CONFIG_MEMBERS.into(),
            unix_socket: false,
            body_limit: None,
            max_members: 64,
            extra: String::new(),
        }
    }
}

/// Two members of the configuration file: alice (untagged on acc0) and
/// carol (QinQ on acc1).
pub const CONFIG_MEMBERS: &str = r#"
[[member]]
id = "alice"
interface = "acc0"
mac = "02:00:00:00:01:01"
prefixes = ["198.51.100.7/32", "2001:db8:1001::/48"]

[[member]]
id = "carol"
interface = "acc1"
s_vlan = 10
c_vlan = 102
prefixes = ["198.51.100.32/28"]
"#;

/// A router namespace (up0, acc0, acc1 on veth pairs whose peers stay in
/// it), a working directory with token and state file, and the daemon.
pub struct Site {
    pub ns: Netns,
    /// Holds token, state and configuration; outlives daemon restarts.
    pub dir: PathBuf,
    pub options: SiteOptions,
    pub metrics: SocketAddr,
    pub endpoint: Endpoint,
    pub daemon: Option<Daemon>,
    /// The site's own bpffs for the daemon's pins (see [`Bpffs`]).
    pub bpffs: Bpffs,
}

impl Site {
    /// Builds the namespace and files; does not start the daemon.
    pub fn new(tag: &str, options: SiteOptions) -> Site {
        crate::require_root();
        let ns = Netns::new(tag);
        ns.veth("up0", "02:00:00:00:00:10", "gw0", "02:00:00:00:00:01");
        ns.veth("acc0", "02:00:00:00:00:20", "m0", "02:00:00:00:01:01");
        ns.veth("acc1", "02:00:00:00:00:21", "t0", "02:00:00:00:00:2f");
        let dir = std::env::temp_dir().join(format!("collecte-api-{}", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("site directory");
        let token = dir.join("api.token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(ns.name())));
        let endpoint = if options.unix_socket {
            Endpoint::Unix(dir.join("api.sock"))
        } else {
            let port = loop {
                let p = free_port(ns.name());
                if p != metrics.port() {
                    break p;
                }
            };
            Endpoint::Tcp {
                ns: ns.name().to_string(),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            }
        };
        let bpffs = Bpffs::mount(ns.name());
        Site {
            ns,
            dir,
            options,
            metrics,
            endpoint,
            daemon: None,
            bpffs,
        }
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.join("api.token")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state").join("state.json")
    }

    pub fn pin_dir(&self) -> String {
        format!("{}/collecte", self.bpffs.path.display())
    }

    /// The configuration, with `members` as the `[[member]]` tables.
    pub fn config_with(&self, members: &str) -> String {
        let listen = match &self.endpoint {
            Endpoint::Tcp { addr, .. } => addr.to_string(),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
        };
        let mut s = format!(
            "[datapath]\npin_dir = \"{}\"\nmax_members = {}\nroute_groups = 64\nstate = \"{}\"\n\n\
             [metrics]\nlisten = \"{}\"\n\n[api]\nlisten = \"{listen}\"\ntoken_file = \"{}\"\n",
            self.pin_dir(),
            self.options.max_members,
            self.state_file().display(),
            self.metrics,
            self.token_file().display(),
        );
        if let Some(limit) = &self.options.body_limit {
            s += &format!("body_limit = \"{limit}\"\n");
        }
        s += "\n[[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\n\
              gateway_mac = \"02:00:00:00:00:01\"\n\n\
              [[access]]\ninterface = \"acc0\"\n\n[[access]]\ninterface = \"acc1\"\n";
        s += members;
        s += &self.options.extra;
        s
    }

    pub fn config(&self) -> String {
        self.config_with(&self.options.members)
    }

    pub fn client(&self) -> Client {
        Client::new(self.endpoint.clone())
    }

    /// Starts the daemon and waits until its API answers `/v1/health`.
    pub fn start(&mut self) -> &mut Daemon {
        assert!(self.daemon.is_none(), "a daemon is already running");
        let mut d = Daemon::start(&self.ns, &self.config(), self.metrics);
        let client = self.client();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            d.assert_alive();
            if let Ok(r) = client.send(Req {
                method: "GET",
                path: "/v1/health",
                auth: None,
                content_type: None,
                body: None,
            }) && r.status == 200
                && r.json()["attached"] == Value::Bool(true)
            {
                break;
            }
            assert!(
                Instant::now() < end,
                "the API did not come up within 30 s; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.daemon = Some(d);
        self.daemon.as_mut().unwrap()
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon running")
    }

    /// SIGKILLs the daemon and waits for it to be gone.
    pub fn kill9(&mut self) {
        let mut d = self.daemon.take().expect("daemon running");
        d.stop(libc::SIGKILL, Duration::from_secs(10));
    }

    /// Runs the daemon binary in the namespace with `config` until it exits
    /// (for configurations it must refuse).
    pub fn run_once(&self, config: &str) -> Output {
        let path = self.dir.join("once.toml");
        std::fs::write(&path, config).unwrap();
        let bin = crate::daemon::binary();
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.ns.name()])
            .arg(&bin)
            .args(["run", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start collecte");
        let end = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                panic!("collecte run did not exit although its configuration is refused");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// `collecte member ARGS --api ... --token-file ...`, run in the
    /// namespace.
    pub fn cli(&self, args: &[&str]) -> Output {
        let bin = crate::daemon::binary();
        let url = self.endpoint.url();
        let token = self.token_file();
        let mut all: Vec<&str> = vec!["member"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--api", &url, "--token-file", token.to_str().unwrap()]);
        self.ns.exec(bin.to_str().unwrap(), &all)
    }

    /// The state file's journal.
    pub fn journal_file(&self) -> PathBuf {
        collecte::provisioning::journal_path(&self.state_file())
    }

    /// The bytes of the state file and of its journal (empty when absent).
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.state_file()).unwrap_or_default();
        bytes.extend(b"\n--journal--\n");
        bytes.extend(std::fs::read(self.journal_file()).unwrap_or_default());
        bytes
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(self.daemon.take());
        // The datapath stays pinned after the daemon exits: its bpffs goes
        // (with the pins) when the site is dropped.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("site files kept in {}", self.dir.display());
        }
    }
}

/// Reads the API members of a state file and its journal, as the daemon
/// does at start: (revision, id -> member).
pub fn read_state(path: &Path) -> (u64, std::collections::BTreeMap<String, Value>) {
    let state = collecte::provisioning::read(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let members = state
        .members
        .iter()
        .map(|(_, m)| (m.id().to_owned(), serde_json::to_value(m).expect("member")))
        .collect();
    (state.revision, members)
}
