//! The control plane: the real daemon (`collecte run`, release build) with
//! its provisioning API, members provisioned the way an operator does it —
//! through the API — and traffic really going through the XDP fast path.
//!
//! Topology (namespaces of their own):
//!
//! ```text
//! core (gw0, "internet" 203.0.113.1) ── up0 [router: collecte] acc0 ── m0 (member m0)
//! ```
//!
//! Per member count N: a full sync of N members into an empty table, an
//! identical re-sync, single `PUT`s onto the N-member table (and `GET
//! /v1/health` on the same connection), then two full syncs that change
//! every member but the flow's (MAC and IPv6 prefix) while two paced,
//! sequenced UDP flows (member → internet, internet → member) cross the
//! router; the receivers take the kernel's arrival timestamps
//! (`SO_TIMESTAMPNS`). Then a scrape and the daemon's peak RSS.
//! [`figures()`] turns its results into the report's figures.
mod figures;
pub mod routes;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket},
    os::fd::AsRawFd as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use ipnet::Ipv6Net;

pub use self::figures::figures;
use crate::{
    ns::Netns,
    population::{self, CPE_PLAIN, Spec},
    scrape::{self, Daemon},
    stats::median,
};

const API: &str = "127.0.0.1:9571";
const TOKEN: &str = "bench-token-0123456789abcdef";
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0e, 0x01];
const UP0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const ACC0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
/// The MAC every member but the flow's gets in the "changed" member set.
const CPE_OTHER: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x03];
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const ROUTER_ACC: &str = "198.18.0.1";

/// The control-plane part of the plan.
pub struct Plan {
    pub sizes: Vec<usize>,
    pub puts: usize,
    pub put_secs: f64,
    pub rate: u32,
    pub margin_ms: u64,
}

pub struct Options {
    pub sizes: Vec<usize>,
    /// Most single PUTs per size, and the time they may take.
    pub puts: usize,
    pub put_secs: f64,
    /// Packets per second of each flow.
    pub rate: u32,
    /// Flow time before and after each sync under traffic.
    pub margin: Duration,
    pub work: PathBuf,
    pub binary: PathBuf,
}

/// One sync under traffic.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TrafficSync {
    pub sync_s: f64,
    /// Longest gap between consecutive arrivals during the sync, per flow
    /// (upstream, downstream), ms.
    pub max_gap_ms: [f64; 2],
    /// Same, outside the sync: median, p99, max, per flow, ms.
    pub idle_gap_median_ms: [f64; 2],
    pub idle_gap_p99_ms: [f64; 2],
    pub idle_gap_max_ms: [f64; 2],
    /// Longest gap between consecutive sends (from the packets' own send
    /// timestamps) during the sync, per flow, ms: the sender's part.
    pub send_gap_ms: [f64; 2],
    /// Largest one-way delay during the sync above the median delay outside
    /// it, per flow, ms.
    pub delay_excess_ms: [f64; 2],
    /// The same outside the syncs: what the machine adds by itself.
    pub idle_delay_excess_ms: [f64; 2],
    pub sent: [u64; 2],
    pub lost: [u64; 2],
    pub reordered: [u64; 2],
    /// When the longest gap during the sync started, ms after the sync
    /// request, per flow.
    pub max_gap_at_ms: [f64; 2],
    /// CPU time the hypervisor took from this VM during the flows (steal,
    /// /proc/stat), ms summed over CPUs.
    pub steal_ms: f64,
    /// Datagrams the router's kernel forwarded meanwhile (IPv4
    /// ForwDatagrams): 0 when XDP forwarded everything.
    pub kernel_forwarded: u64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SizeResult {
    pub members: usize,
    /// Full sync into the empty table (every member added).
    pub initial_sync_s: f64,
    /// An identical re-sync (nothing changes).
    pub identical_sync_s: f64,
    pub puts: usize,
    pub put_per_s: f64,
    pub health_per_s: f64,
    pub traffic: Vec<TrafficSync>,
    /// Median of the changing syncs.
    pub change_sync_s: f64,
    pub scrape_s: f64,
    pub hwm_kib: u64,
    pub rss_kib: u64,
    pub body_bytes: usize,
}

pub fn run(
    opts: &Options,
    specs: &[Spec],
    log: &mut dyn FnMut(&str),
) -> Vec<anyhow::Result<SizeResult>> {
    population::each_size(
        &opts.sizes,
        specs,
        "control plane (members through the API)",
        log,
        |specs, log| one(opts, specs, log),
    )
}

struct Site {
    core: Netns,
    router: Netns,
    member: Netns,
}

fn site(tag: &str, flow: &Spec) -> anyhow::Result<Site> {
    let core = Netns::new(&format!("{tag}-core"))?;
    let router = Netns::new(&format!("{tag}-rtr"))?;
    let member = Netns::new(&format!("{tag}-mem"))?;
    for ns in [&core, &router, &member] {
        for kv in [
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ] {
            let (k, v) = kv.split_once('=').expect("k=v");
            ns.sysctl(k, v)?;
        }
    }
    // Forwarding on: a packet XDP handed to the kernel would be forwarded
    // (and counted in ForwDatagrams), not lost.
    router.sysctl("net.ipv4.ip_forward", "1")?;
    let mac = population::mac_text;
    for (here, here_mac, there, there_mac, peer) in [
        ("up0", UP0_MAC, "gw0", GW_MAC, &core),
        ("acc0", ACC0_MAC, "m0", CPE_PLAIN, &member),
    ] {
        router.ip(&[
            "link",
            "add",
            here,
            "address",
            &mac(here_mac),
            "type",
            "veth",
            "peer",
            "name",
            there,
            "address",
            &mac(there_mac),
            "netns",
            peer.name(),
        ])?;
        router.ip(&["link", "set", here, "up"])?;
        peer.ip(&["link", "set", there, "up"])?;
        // NAPI on the peer so that redirected frames are delivered;
        // checksums computed by the hosts (XDP cannot finish them).
        peer.exec("ethtool", &["-K", there, "gro", "on", "tx", "off"])?;
    }
    let host = Ipv4Addr::from(flow.host4()).to_string();
    core.ip(&["addr", "add", "192.0.2.1/24", "dev", "gw0"])?;
    core.ip(&["addr", "add", &format!("{REMOTE}/32"), "dev", "lo"])?;
    core.ip(&["route", "add", &flow.v4.to_string(), "via", "192.0.2.2"])?;
    router.ip(&["addr", "add", "192.0.2.2/24", "dev", "up0"])?;
    router.ip(&["addr", "add", &format!("{ROUTER_ACC}/32"), "dev", "acc0"])?;
    router.ip(&["route", "add", &flow.v4.to_string(), "dev", "acc0"])?;
    router.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
    member.ip(&["addr", "add", &format!("{host}/32"), "dev", "m0"])?;
    member.ip(&["route", "add", ROUTER_ACC, "dev", "m0", "scope", "link"])?;
    member.ip(&["route", "add", "default", "via", ROUTER_ACC, "dev", "m0"])?;
    Ok(Site {
        core,
        router,
        member,
    })
}

/// Member `i` as JSON; `changed`: another MAC and its IPv6 prefix moved to
/// another /12 (a renumbering).
fn member_json(out: &mut String, i: usize, s: &Spec, changed: bool) {
    use std::fmt::Write as _;
    let (mac, v6) = if changed {
        let net = u128::from(s.v6.network()) + (0x0010u128 << 112);
        (
            CPE_OTHER,
            Ipv6Net::new(net.into(), s.v6.prefix_len()).expect("valid prefix"),
        )
    } else {
        (CPE_PLAIN, s.v6)
    };
    let _ = write!(
        out,
        "{{\"id\":\"m{i}\",\"interface\":\"acc0\",\"mac\":\"{}\",\"prefixes\":[\"{}\",\"{}\"]}}",
        population::mac_text(mac),
        s.v4,
        v6
    );
}

/// A full sync body; member 0 (the flows') never changes.
fn sync_body(specs: &[Spec], changed: bool) -> Vec<u8> {
    let mut out = String::with_capacity(specs.len() * 120 + 16);
    out.push_str("{\"members\":[");
    for (i, s) in specs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        member_json(&mut out, i, s, changed && i != 0);
    }
    out.push_str("]}");
    out.into_bytes()
}

/// The state file `state` and the files the daemon keeps beside it: its
/// journal and the drain state.
fn state_files(state: &std::path::Path) -> [PathBuf; 3] {
    let beside = |ext: &str| {
        let mut name = state.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    [state.to_owned(), beside(".journal"), beside(".drain")]
}

/// The daemon of one run, its API answering.
struct Running {
    s: Site,
    daemon: Daemon,
    http: Http,
    pid: u32,
    /// Its state file and configuration file, removed by the caller.
    state: PathBuf,
    path: PathBuf,
}

/// Starts the release daemon with no member for `specs.len()` members
/// (`tag` names its namespaces and files), `[routes] table = routes` when
/// given; returns once its API answers.
fn launch(
    opts: &Options,
    specs: &[Spec],
    tag: &str,
    routes: Option<u32>,
) -> anyhow::Result<Running> {
    let n = specs.len();
    crate::ns::unpin()?;
    let flow = specs[0];
    let s = site(tag, &flow)?;

    let pin_dir = PathBuf::from(format!(
        "/sys/fs/bpf/clt-bench-{}-{tag}",
        std::process::id()
    ));
    let state = opts.work.join(format!("control-state-{tag}.json"));
    // A previous run's state, journal and drain state would be restored.
    for f in state_files(&state) {
        let _ = std::fs::remove_file(f);
    }
    let token = opts.work.join("control-token");
    std::fs::write(&token, TOKEN)?;
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    // Room for both member sets' prefixes at once.
    let mut both: Vec<Spec> = specs.to_vec();
    both.extend(specs.iter().map(|s| {
        Spec {
            v4: s.v4,
            v6: Ipv6Net::new(
                (u128::from(s.v6.network()) + (0x0010u128 << 112)).into(),
                s.v6.prefix_len(),
            )
            .expect("valid prefix"),
        }
    }));
    let setup = population::Setup {
        uplink: "up0",
        gateway_mac: GW_MAC,
        access: &["acc0"],
        max_members: population::max_members(n),
        route_groups: population::route_groups(&both)?,
        pin_dir: &pin_dir,
        state: &state,
        metrics: scrape::METRICS,
    };
    drop(both);
    let mut config = population::config(&setup, Vec::new())?;
    config.api.listen = Some(API.into());
    config.api.token_file = Some(token.clone());
    // Where a sync's time goes, in the log.
    config.log.level = "collecte=debug".into();
    config.routes = routes.map(|table| router_core::config::RoutesConfig { table });
    let path = opts.work.join(format!("control-{tag}.toml"));
    std::fs::write(&path, population::config_toml(&config)?)?;
    let logfile = opts.work.join(format!("control-{tag}.log"));
    let mut daemon = Daemon::spawn(&opts.binary, &path, &s.router, &logfile, pin_dir)?;
    let pid = daemon.child.id();

    // Ready when the API answers.
    let entered = s.router.enter()?;
    let started = Instant::now();
    let mut http = loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "collecte exited ({status}); see {}:\n{}",
                logfile.display(),
                scrape::tail(&logfile)
            );
        }
        if let Ok(c) = Http::connect() {
            break c;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the API did not answer within 60 s; see {}",
            logfile.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(entered);
    let (code, _) = http.request("GET", "/v1/health", None)?;
    ensure!(code == 200, "health answered {code}");
    Ok(Running {
        s,
        daemon,
        http,
        pid,
        state,
        path,
    })
}

fn one(opts: &Options, specs: &[Spec], log: &mut dyn FnMut(&str)) -> anyhow::Result<SizeResult> {
    let n = specs.len();
    let flow = specs[0];
    let Running {
        s,
        daemon,
        mut http,
        pid,
        state,
        path,
    } = launch(opts, specs, &format!("c{n}"), None)?;

    let body_a = sync_body(specs, false);
    let body_b = sync_body(specs, true);
    let sync = |http: &mut Http, body: &[u8]| -> anyhow::Result<(f64, String)> {
        let t = Instant::now();
        let (code, text) = http.request("PUT", "/v1/members", Some(body))?;
        let took = t.elapsed().as_secs_f64();
        ensure!(code == 200, "the full sync answered {code}: {text}");
        Ok((took, text))
    };

    log(&format!("  full sync of {n} members into the empty table"));
    let (initial_sync_s, text) = sync(&mut http, &body_a)?;
    ensure!(
        text.contains(&format!("\"added\":{n}")),
        "unexpected answer: {text}"
    );
    let (identical_sync_s, text) = sync(&mut http, &body_a)?;
    ensure!(
        text.contains(&format!("\"unchanged\":{n}")),
        "unexpected answer: {text}"
    );
    log(&format!(
        "  initial {initial_sync_s:.3} s, identical {identical_sync_s:.3} s"
    ));

    // Single PUTs: members 1.. get the other MAC, one request each.
    let mut put_times = Vec::new();
    let t = Instant::now();
    let mut i = 1;
    while put_times.len() < opts.puts
        && (t.elapsed().as_secs_f64() < opts.put_secs || put_times.len() < 3)
    {
        let k = 1 + (i - 1) % (n - 1).max(1);
        let mut body = String::new();
        // Every PUT changes its member: the other set's version of it.
        member_json(
            &mut body,
            k,
            &specs[k],
            ((i - 1) / (n - 1).max(1)).is_multiple_of(2),
        );
        let t0 = Instant::now();
        let (code, text) =
            http.request("PUT", &format!("/v1/members/m{k}"), Some(body.as_bytes()))?;
        put_times.push(t0.elapsed().as_secs_f64());
        ensure!(code == 200, "PUT answered {code}: {text}");
        i += 1;
    }
    let puts = put_times.len();
    let put_per_s = puts as f64 / put_times.iter().sum::<f64>();
    let t = Instant::now();
    for _ in 0..puts.max(100) {
        let (code, _) = http.request("GET", "/v1/health", None)?;
        ensure!(code == 200, "health answered {code}");
    }
    let health_per_s = puts.max(100) as f64 / t.elapsed().as_secs_f64();
    log(&format!(
        "  {puts} PUTs: {put_per_s:.1}/s (GET health {health_per_s:.0}/s)"
    ));
    // Back to set A exactly.
    sync(&mut http, &body_a)?;

    // Syncs under traffic: A -> B, B -> A.
    let mut traffic = Vec::new();
    for body in [&body_b, &body_a] {
        let r = under_traffic(opts, &s, &flow, || sync(&mut http, body).map(|r| r.0))?;
        log(&format!(
            "  sync under traffic {:.3} s: longest gap {:.2}/{:.2} ms at {:.1}/{:.1} ms (sender {:.2}/{:.2}, delay excess {:.2}/{:.2}, idle max {:.2}/{:.2}, steal {:.0} ms) (idle p99 {:.3}/{:.3}), lost {}/{}, kernel forwarded {}",
            r.sync_s,
            r.max_gap_ms[0],
            r.max_gap_ms[1],
            r.max_gap_at_ms[0],
            r.max_gap_at_ms[1],
            r.send_gap_ms[0],
            r.send_gap_ms[1],
            r.delay_excess_ms[0],
            r.delay_excess_ms[1],
            r.idle_gap_max_ms[0],
            r.idle_gap_max_ms[1],
            r.steal_ms,
            r.idle_gap_p99_ms[0],
            r.idle_gap_p99_ms[1],
            r.lost[0],
            r.lost[1],
            r.kernel_forwarded
        ));
        traffic.push(r);
    }
    let change_sync_s = median(&traffic.iter().map(|t| t.sync_s).collect::<Vec<_>>());

    let entered = s.router.enter()?;
    let t = Instant::now();
    let metrics = scrape::get_metrics()?;
    let scrape_s = t.elapsed().as_secs_f64();
    drop(entered);
    ensure!(
        metrics
            .lines()
            .any(|l| l == format!("collecte_members {n}")),
        "the scrape lacks collecte_members {n}"
    );
    let hwm_kib = scrape::vm_hwm(pid)?;
    let rss_kib = scrape::status_kib(pid, "VmRSS:")?;
    drop(http);
    drop(daemon);
    for f in state_files(&state) {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_file(&path);
    Ok(SizeResult {
        members: n,
        initial_sync_s,
        identical_sync_s,
        puts,
        put_per_s,
        health_per_s,
        traffic,
        change_sync_s,
        scrape_s,
        hwm_kib,
        rss_kib,
        body_bytes: body_a.len(),
    })
}

/// A keep-alive HTTP/1.1 connection to the API.
struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    /// Connects from the calling thread's namespace.
    fn connect() -> anyhow::Result<Http> {
        let s = TcpStream::connect(API)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        Ok(Http {
            r: BufReader::new(s),
        })
    }

    /// One request: (status, body).
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, String)> {
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n");
        if let Some(b) = body {
            head += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        head += "\r\n";
        let s = self.r.get_mut();
        s.write_all(head.as_bytes())?;
        if let Some(b) = body {
            s.write_all(b)?;
        }
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().context("bad content-length")?;
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).context("bad chunk")?;
                let mut chunk = vec![0; size + 2];
                self.r.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..size]);
            }
        } else {
            out.resize(len, 0);
            self.r.read_exact(&mut out)?;
        }
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }
}

const MAGIC: &[u8; 4] = b"CLTb";

fn realtime_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// A UDP socket bound in `ns`.
fn udp(ns: &Netns, addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let _in = ns.enter()?;
    let s = UdpSocket::bind(addr).with_context(|| format!("binding {addr}"))?;
    let size: libc::c_int = 16 << 20;
    let on: libc::c_int = 1;
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        );
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    s.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(s)
}

/// Sends sequenced datagrams at `rate` until `stop`, each carrying its
/// sequence number and send time; returns how many it sent.
fn sender(s: UdpSocket, to: SocketAddr, rate: u32, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        crate::ns::realtime(true);
        let mut buf = [0u8; 64];
        buf[..4].copy_from_slice(MAGIC);
        let period = 1_000_000_000i64 / rate as i64;
        let mut next = monotonic_ns();
        let mut seq: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let now = monotonic_ns();
            if now < next {
                let ts = libc::timespec {
                    tv_sec: next / 1_000_000_000,
                    tv_nsec: next % 1_000_000_000,
                };
                unsafe {
                    libc::clock_nanosleep(
                        libc::CLOCK_MONOTONIC,
                        libc::TIMER_ABSTIME,
                        &ts,
                        std::ptr::null_mut(),
                    )
                };
                continue;
            }
            buf[4..12].copy_from_slice(&seq.to_be_bytes());
            buf[12..20].copy_from_slice(&realtime_ns().to_be_bytes());
            loop {
                match s.send_to(&buf, to) {
                    Ok(_) => break,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.raw_os_error() == Some(libc::ENOBUFS) =>
                    {
                        std::thread::sleep(Duration::from_micros(20))
                    }
                    Err(e) => panic!("send to {to}: {e}"),
                }
            }
            seq += 1;
            next += period;
        }
        seq
    })
}

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// One received datagram: (sequence, send time, kernel arrival time), ns.
type Arrival = (u64, i64, i64);

/// Receives until `stop` and 200 ms of silence.
fn receiver(s: UdpSocket, stop: Arc<AtomicBool>) -> JoinHandle<Vec<Arrival>> {
    std::thread::spawn(move || {
        crate::ns::realtime(true);
        let mut out = Vec::with_capacity(1 << 20);
        let mut buf = [0u8; 256];
        let mut cbuf = [0u8; 128];
        let mut last = Instant::now();
        loop {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = cbuf.len();
            let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
            if n < 0 {
                if stop.load(Ordering::Relaxed) && last.elapsed() > Duration::from_millis(200) {
                    break;
                }
                continue;
            }
            if n < 20 || &buf[..4] != MAGIC {
                continue;
            }
            last = Instant::now();
            let mut at = None;
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS
                    {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        at = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            let seq = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
            let sent = i64::from_be_bytes(buf[12..20].try_into().expect("8 bytes"));
            out.push((seq, sent, at.unwrap_or_else(realtime_ns)));
        }
        out
    })
}

/// Steal ticks of all CPUs (/proc/stat).
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(8).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn kernel_forwarded(router: &Netns) -> anyhow::Result<u64> {
    let snmp = router.exec("cat", &["/proc/net/snmp"])?;
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip: "));
    let names: Vec<&str> = ip.next().context("Ip: names")?.split_whitespace().collect();
    let values: Vec<&str> = ip
        .next()
        .context("Ip: values")?
        .split_whitespace()
        .collect();
    let i = names
        .iter()
        .position(|n| *n == "ForwDatagrams")
        .context("ForwDatagrams")?;
    values[i].parse().context("ForwDatagrams value")
}

/// Runs `f` (a sync) while an upstream and a downstream flow cross the
/// router.
fn under_traffic(
    opts: &Options,
    s: &Site,
    flow: &Spec,
    f: impl FnOnce() -> anyhow::Result<f64>,
) -> anyhow::Result<TrafficSync> {
    let host = Ipv4Addr::from(flow.host4());
    let up_rx = udp(&s.core, SocketAddr::from((REMOTE, 7000)))?;
    let down_rx = udp(&s.member, SocketAddr::from((host, 7000)))?;
    let up_tx = udp(&s.member, SocketAddr::from((host, 7001)))?;
    let down_tx = udp(&s.core, SocketAddr::from((REMOTE, 7001)))?;
    // Neighbours resolved before the clock starts.
    up_tx.send_to(b"warm", (REMOTE, 7009))?;
    down_tx.send_to(b"warm", (host, 7009))?;
    std::thread::sleep(Duration::from_millis(100));
    let fwd_before = kernel_forwarded(&s.router)?;
    let steal_before = steal_ticks();
    let stop_rx = Arc::new(AtomicBool::new(false));
    let stop_tx = Arc::new(AtomicBool::new(false));
    let rx = [
        receiver(up_rx, stop_rx.clone()),
        receiver(down_rx, stop_rx.clone()),
    ];
    let tx = [
        sender(
            up_tx,
            SocketAddr::from((REMOTE, 7000)),
            opts.rate,
            stop_tx.clone(),
        ),
        sender(
            down_tx,
            SocketAddr::from((host, 7000)),
            opts.rate,
            stop_tx.clone(),
        ),
    ];
    std::thread::sleep(opts.margin);
    let t0 = realtime_ns();
    let synced = f();
    let t1 = realtime_ns();
    std::thread::sleep(opts.margin);
    stop_tx.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = tx
        .into_iter()
        .map(|h| h.join().expect("sender thread"))
        .collect();
    stop_rx.store(true, Ordering::Relaxed);
    let got: Vec<Vec<Arrival>> = rx
        .into_iter()
        .map(|h| h.join().expect("receiver thread"))
        .collect();
    let sync_s = synced?;
    let fwd_after = kernel_forwarded(&s.router)?;
    let steal = steal_ticks().saturating_sub(steal_before);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut r = TrafficSync {
        sync_s,
        steal_ms: steal as f64 * 1000.0 / hz,
        kernel_forwarded: fwd_after.saturating_sub(fwd_before),
        ..Default::default()
    };
    for k in 0..2 {
        let a = &got[k];
        r.sent[k] = sent[k];
        let mut seen = vec![false; sent[k] as usize];
        for &(seq, _, _) in a {
            if let Some(s) = seen.get_mut(seq as usize) {
                *s = true;
            }
        }
        r.lost[k] = seen.iter().filter(|s| !**s).count() as u64;
        r.reordered[k] = a.windows(2).filter(|w| w[1].0 < w[0].0).count() as u64;
        let mut max_in_gap = 0f64;
        let mut out_gaps = Vec::new();
        let mut send_gap = 0f64;
        for w in a.windows(2) {
            let gap = (w[1].2 - w[0].2) as f64 / 1e6;
            // A gap belongs to the sync when it overlaps it.
            if w[1].2 >= t0 && w[0].2 <= t1 {
                if gap > max_in_gap {
                    max_in_gap = gap;
                    r.max_gap_at_ms[k] = (w[0].2 - t0) as f64 / 1e6;
                }
                send_gap = send_gap.max((w[1].1 - w[0].1) as f64 / 1e6);
            } else {
                out_gaps.push(gap);
            }
        }
        let delays_out: Vec<f64> = a
            .iter()
            .filter(|x| x.2 < t0 || x.2 > t1)
            .map(|x| (x.2 - x.1) as f64 / 1e6)
            .collect();
        let base = median(&delays_out);
        let worst = a
            .iter()
            .filter(|x| x.2 >= t0 && x.2 <= t1)
            .map(|x| (x.2 - x.1) as f64 / 1e6)
            .fold(0f64, f64::max);
        r.delay_excess_ms[k] = (worst - base).max(0.0);
        let worst_out = delays_out.iter().copied().fold(0f64, f64::max);
        r.idle_delay_excess_ms[k] = (worst_out - base).max(0.0);
        r.max_gap_ms[k] = max_in_gap;
        r.send_gap_ms[k] = send_gap;
        out_gaps.sort_by(|a, b| a.total_cmp(b));
        r.idle_gap_median_ms[k] = median(&out_gaps);
        r.idle_gap_p99_ms[k] = out_gaps
            .get(((out_gaps.len() as f64) * 0.99) as usize)
            .copied()
            .unwrap_or(f64::NAN);
        r.idle_gap_max_ms[k] = out_gaps.last().copied().unwrap_or(f64::NAN);
        ensure!(!a.is_empty(), "flow {k} received nothing");
    }
    Ok(r)
}
