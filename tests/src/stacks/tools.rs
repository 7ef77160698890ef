//! The tools the stacks tests drive between real IP stacks — ping,
//! iperf3, traceroute — each run bounded by `timeout(1)`, returning the
//! command line and its whole output with the parsed result, so that a
//! failing assertion can show what ran and what it printed; and a plain
//! TCP transfer between two namespaces, with the path MTU a host learnt.
use std::{
    fmt,
    io::{Read, Write},
    net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    Netns,
    topology::{in_netns, wait_for},
};

/// A command that ran in a namespace, and what it printed.
#[derive(Clone, Debug)]
pub struct Ran {
    pub ns: String,
    pub cmd: String,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "$ ip netns exec {} {}   ({})",
            self.ns,
            self.cmd,
            if self.success { "ok" } else { "failed" }
        )?;
        write!(f, "{}{}", self.stdout, self.stderr)
    }
}

/// Runs `timeout SECS program args` in `ns`.
pub fn run_bounded(ns: &Netns, secs: u32, program: &str, args: &[&str]) -> Ran {
    let secs_s = secs.to_string();
    let mut full = vec![secs_s.as_str(), program];
    full.extend_from_slice(args);
    let out = ns.exec("timeout", &full);
    Ran {
        ns: ns.name().to_string(),
        cmd: format!("{program} {}", args.join(" ")),
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `ping` statistics.
#[derive(Clone, Debug)]
pub struct Ping {
    pub sent: u32,
    pub received: u32,
    pub ran: Ran,
}

/// `ping -c COUNT` of `target` (an address, or `fe80::1%m0`) from `ns`,
/// 50 ms apart, each reply awaited 1 s at most.
pub fn ping(ns: &Netns, target: &str, count: u32, extra: &[&str]) -> Ping {
    let count_s = count.to_string();
    let mut args = vec!["-n", "-c", &count_s, "-i", "0.05", "-W", "1"];
    args.extend_from_slice(extra);
    args.push(target);
    // timeout(1), not -w: with a deadline ping stops at the first error.
    let ran = run_bounded(ns, count / 10 + 5, "ping", &args);
    let stats = ran
        .stdout
        .lines()
        .find(|l| l.contains("packets transmitted"));
    let n: Vec<u32> = stats
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    Ping {
        sent: n.first().copied().unwrap_or(0),
        received: n.get(1).copied().unwrap_or(0),
        ran,
    }
}

/// Pings `target` from `ns` once a try until a reply comes, for at most
/// `timeout` (the first packets of a flow may resolve neighbours or wait
/// for the daemon to bring a gateway to the datapath). Returns the last
/// try.
pub fn ping_until(ns: &Netns, target: &str, timeout: Duration) -> Ping {
    let mut last = None;
    wait_for(timeout, || {
        let p = ping(ns, target, 1, &[]);
        let answered = p.received == 1;
        last = Some(p);
        answered.then_some(())
    });
    last.expect("one try at least")
}

/// What an iperf3 test moved.
#[derive(Clone, Debug)]
pub struct Iperf {
    /// Bytes the receiving side got.
    pub bytes: u64,
    pub bits_per_second: f64,
    pub ran: Ran,
}

/// An iperf3 TCP test: a one-off server on `server_addr:port` in
/// `server_ns`, a client in `client_ns`. `client_args` add to the client's
/// (`-t 2`, `-R`, `-n 1M`, `-B ADDR`, ...). Err: the client's run, failed
/// or unreadable.
pub fn iperf3(
    client_ns: &Netns,
    server_ns: &Netns,
    server_addr: IpAddr,
    port: u16,
    client_args: &[&str],
) -> Result<Iperf, Ran> {
    let port_s = port.to_string();
    let addr_s = server_addr.to_string();
    let mut srv = Command::new("ip")
        .args(["netns", "exec", server_ns.name(), "timeout", "60"])
        .args(["iperf3", "-s", "-1", "-B", &addr_s, "-p", &port_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 is missing: install the Debian package `iperf3`");
    let listening = wait_for(Duration::from_secs(5), || {
        let out = server_ns.exec("ss", &["-Hltn", &format!("sport = :{port}")]);
        (!out.stdout.is_empty()).then_some(())
    });
    if listening.is_none() {
        let _ = srv.kill();
        let _ = srv.wait();
        panic!(
            "iperf3 -s on {addr_s}:{port} in {} did not listen",
            server_ns.name()
        );
    }
    let mut args = vec![
        "-J",
        "-c",
        &addr_s,
        "-p",
        &port_s,
        "--connect-timeout",
        "3000",
    ];
    args.extend_from_slice(client_args);
    let ran = run_bounded(client_ns, 40, "iperf3", &args);
    let _ = srv.kill();
    let _ = srv.wait();
    if !ran.success {
        return Err(ran);
    }
    let Ok(j) = serde_json::from_str::<serde_json::Value>(&ran.stdout) else {
        return Err(ran);
    };
    let r = &j["end"]["sum_received"];
    match (r["bytes"].as_u64(), r["bits_per_second"].as_f64()) {
        (Some(bytes), Some(bits_per_second)) => Ok(Iperf {
            bytes,
            bits_per_second,
            ran,
        }),
        _ => Err(ran),
    }
}

/// A traceroute: each hop's answering address (None: no answer).
#[derive(Clone, Debug)]
pub struct Trace {
    pub hops: Vec<Option<IpAddr>>,
    pub ran: Ran,
}

/// `traceroute -n -q 1` to `target` from `ns` (UDP probes, `-6` for IPv6),
/// at most `max_hops` hops, 2 s per probe.
pub fn traceroute(ns: &Netns, target: IpAddr, max_hops: u32) -> Trace {
    let max = max_hops.to_string();
    let target_s = target.to_string();
    let mut args = vec!["-n", "-q", "1", "-w", "2", "-m", &max];
    if target.is_ipv6() {
        args.insert(0, "-6");
    }
    args.push(&target_s);
    let ran = run_bounded(ns, 30, "traceroute", &args);
    let hops = ran
        .stdout
        .lines()
        .skip_while(|l| l.starts_with("traceroute"))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.next()?.parse::<u32>().ok()?;
            Some(w.next().and_then(|a| a.parse().ok()))
        })
        .collect();
    Trace { hops, ran }
}

/// Sends `bytes` bytes over one TCP connection from `from_ns` to a receiver
/// listening on `to` in `to_ns`, which reads to the end. Returns the bytes
/// received, or why the transfer did not complete within `timeout`. Plain
/// sockets: no MSS clamping, the kernels' defaults (path-MTU discovery on).
pub fn tcp_transfer(
    from_ns: &Netns,
    to_ns: &Netns,
    to: SocketAddr,
    bytes: usize,
    timeout: Duration,
) -> Result<usize, String> {
    let listener = in_netns(to_ns.name(), || TcpListener::bind(to))
        .map_err(|e| format!("bind {to} in {}: {e}", to_ns.name()))?;
    let receiver = std::thread::spawn(move || -> Result<usize, String> {
        let (mut conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        conn.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got += n,
                Err(e) => return Err(format!("receiver: {e} after {got} bytes")),
            }
        }
    });
    let sent = in_netns(from_ns.name(), || TcpStream::connect_timeout(&to, timeout))
        .map_err(|e| format!("connect to {to} from {}: {e}", from_ns.name()))
        .and_then(|mut conn| {
            conn.set_write_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            let chunk = vec![0x5au8; 65536];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                conn.write_all(&chunk[..n])
                    .map_err(|e| format!("sender: {e} with {left} bytes left"))?;
                left -= n;
            }
            conn.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))
        });
    if let Err(e) = sent {
        // Unblock the receiver's accept, if it is still waiting.
        let _ = in_netns(to_ns.name(), || {
            TcpStream::connect_timeout(&to, Duration::from_secs(1))
        });
        let _ = receiver.join();
        return Err(e);
    }
    receiver
        .join()
        .map_err(|_| "receiver thread panicked".to_string())?
}

/// The path MTU `ns` has learnt towards `dst` (`ip route get`'s `mtu`), if
/// any, with the route as printed.
pub fn learnt_mtu(ns: &Netns, dst: IpAddr) -> (Option<u32>, String) {
    let out = ns.ip(&["route", "get", &dst.to_string()]);
    let w: Vec<&str> = out.split_whitespace().collect();
    let mtu = w
        .iter()
        .position(|x| *x == "mtu")
        .and_then(|i| w.get(i + 1)?.parse().ok());
    (mtu, out)
}
