//! `collecte top`'s data: one GET of a metrics endpoint, a strict parser of
//! the Prometheus text format (version 0.0.4), and the rates between two
//! scrapes. Everything but [`fetch`] is pure.
//!
//! The parser is strict on purpose: a line it cannot read is an error
//! naming the line, never skipped, so that `top` never shows a partial
//! picture as if it were whole. (The `prometheus-parse` crate splits label
//! lists on `,` and `=` without reading quotes or escapes, and ignores the
//! lines it does not understand.)
use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{TcpStream, ToSocketAddrs as _},
    time::Duration,
};

/// What can go wrong between the URL and a [`Snapshot`].
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// `--metrics` is not an `http://HOST:PORT/PATH` URL.
    #[error("--metrics {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The host name does not resolve.
    #[error("{url}: cannot resolve {host}: {source}")]
    Resolve {
        url: String,
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// No address of the host accepted the connection.
    #[error("cannot reach {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection failed or timed out during the exchange.
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// The server answered with another status than 200.
    #[error("{url} answered {status:?}")]
    Status { url: String, status: String },
    /// The answer is not HTTP as expected.
    #[error("{url}: bad HTTP answer: {reason}")]
    Http { url: String, reason: String },
    /// The body is not the Prometheus text format.
    #[error("{url}: line {line}: {reason}")]
    Parse {
        url: String,
        line: usize,
        reason: String,
    },
}

/// A metrics endpoint: `http://HOST:PORT/PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given.
    pub url: String,
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PATH]` (port 80 and path `/metrics` by
    /// default; an IPv6 host in brackets).
    pub fn parse(url: &str) -> Result<Endpoint, ScrapeError> {
        let bad = |reason: &str| ScrapeError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if url.starts_with("https://") {
            return Err(bad(
                "collecte serves its metrics over plain HTTP; use http://HOST:PORT/metrics (through an SSH tunnel if needed)",
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("expected http://HOST:PORT/metrics"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("expected :PORT after the IPv6 address"))?,
                    ),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("bad port {p:?}")))?,
        };
        if path.contains(char::is_whitespace) {
            return Err(bad("the path contains white space"));
        }
        Ok(Endpoint {
            url: url.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// GETs the endpoint (HTTP/1.1, one connection per scrape), within
/// `timeout` for the connection and each read.
pub fn fetch(ep: &Endpoint, timeout: Duration) -> Result<String, ScrapeError> {
    let url = || ep.url.clone();
    let addrs: Vec<_> = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|source| ScrapeError::Resolve {
            url: url(),
            host: ep.host.clone(),
            source,
        })?
        .collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(ScrapeError::Connect {
        url: url(),
        source: last,
    })?;
    let io = |source| ScrapeError::Io { url: url(), source };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let host = if ep.host.contains(':') {
        format!("[{}]:{}", ep.host, ep.port)
    } else {
        format!("{}:{}", ep.host, ep.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: text/plain\r\nUser-Agent: collecte-top/{}\r\nConnection: close\r\n\r\n",
        ep.path,
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    http_body(&raw).map_err(|reason| match reason {
        HttpError::Status(status) => ScrapeError::Status { url: url(), status },
        HttpError::Malformed(reason) => ScrapeError::Http { url: url(), reason },
    })
}

enum HttpError {
    Status(String),
    Malformed(String),
}

/// The body of a whole HTTP/1.x answer (`Content-Length`, chunked, or up
/// to the end of the connection), if its status is 200.
fn http_body(raw: &[u8]) -> Result<String, HttpError> {
    let bad = |s: &str| HttpError::Malformed(s.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("the answer ends before its headers do"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut words = status.splitn(3, ' ');
    if !words.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err(bad(&format!("not an HTTP/1 status line: {status:?}")));
    }
    if words.next() != Some("200") {
        return Err(HttpError::Status(status.to_string()));
    }
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(&format!("bad header line {line:?}")))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if name == "content-length" {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| bad(&format!("bad Content-Length {value:?}")))?,
            );
        }
    }
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked encoding"))?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or_else(|| bad(&format!("the body ends after {} of {n} bytes", body.len())))?
            .to_vec()
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = size.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        if rest.get(size..size + 2)? != b"\r\n" {
            return None;
        }
        rest = &rest[size + 2..];
    }
}

/// One sample of the text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order of the line.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole exposition. The error is the first line at fault, with
/// its number (from 1) and what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<Sample>, (usize, String)> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            comment_line(comment).map_err(|e| (n, e))?;
            continue;
        }
        samples.push(sample_line(line).map_err(|e| (n, e))?);
    }
    Ok(samples)
}

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(ok_first)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

/// `# HELP name text`, `# TYPE name type`, or any other comment.
fn comment_line(comment: &str) -> Result<(), String> {
    let mut words = comment.split_whitespace();
    match words.next() {
        Some("HELP") => {
            let name = words.next().ok_or("HELP without a metric name")?;
            if !is_name(name, true) {
                return Err(format!("bad metric name {name:?} in HELP"));
            }
        }
        Some("TYPE") => {
            let name = words.next().ok_or("TYPE without a metric name")?;
            if !is_name(name, true) {
                return Err(format!("bad metric name {name:?} in TYPE"));
            }
            let kind = words.next().ok_or("TYPE without a type")?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("unknown metric type {kind:?}"));
            }
            if let Some(extra) = words.next() {
                return Err(format!("unexpected {extra:?} after the type"));
            }
        }
        _ => {}
    }
    Ok(())
}

fn sample_line(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label without '='")?;
            let lname = rest[..eq].trim();
            if !is_name(lname, false) {
                return Err(format!("bad label name {lname:?}"));
            }
            if labels.iter().any(|(n, _)| n == lname) {
                return Err(format!("label {lname:?} given twice"));
            }
            let after = rest[eq + 1..].trim_start();
            let quoted = after
                .strip_prefix('"')
                .ok_or_else(|| format!("the value of label {lname:?} is not quoted"))?;
            let (value, after) = label_value(quoted).ok_or_else(|| {
                format!("the value of label {lname:?} is not closed or has a bad escape")
            })?;
            labels.push((lname.to_string(), value));
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' after label {lname:?}"));
            }
        }
    }
    if rest.trim().is_empty() {
        return Err("no value".to_string());
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("expected white space before the value".to_string());
    }
    let mut words = rest.split_whitespace();
    let value = words.next().ok_or("no value")?;
    let value = parse_value(value).ok_or_else(|| format!("bad value {value:?}"))?;
    if let Some(ts) = words.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("bad timestamp {ts:?}"));
    }
    if let Some(extra) = words.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A label value after its opening quote: the value, and what follows its
/// closing quote. Escapes: `\\`, `\"`, `\n`.
fn label_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                'n' => value.push('\n'),
                _ => return None,
            },
            '"' => return Some((value, &s[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        // Rust also reads "inf", "infinity" and "nan" in any case: the
        // format does not.
        s if s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// A member's counters, as `collecte_member_*_total` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemberCounters {
    /// Upload: from the member.
    pub rx_packets: f64,
    pub rx_bytes: f64,
    /// Download: to the member.
    pub tx_packets: f64,
    pub tx_bytes: f64,
    pub spoofed_packets: f64,
}

/// What one scrape says, in the terms `top` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// `collecte_members`, when present.
    pub members_gauge: Option<f64>,
    /// `collecte_build_info`'s version, when present.
    pub version: Option<String>,
    pub members: BTreeMap<String, MemberCounters>,
    /// `collecte_datapath_packets_total` by (interface, action, reason).
    pub datapath: BTreeMap<(String, String, String), f64>,
}

impl Snapshot {
    /// The collecte families among `samples`; other metrics are ignored.
    pub fn from_samples(samples: &[Sample]) -> Snapshot {
        let mut s = Snapshot::default();
        for sample in samples {
            let v = sample.value;
            match sample.name.as_str() {
                "collecte_members" => s.members_gauge = Some(v),
                "collecte_build_info" => s.version = sample.label("version").map(str::to_string),
                "collecte_datapath_packets_total" => {
                    let (Some(i), Some(a), Some(r)) = (
                        sample.label("interface"),
                        sample.label("action"),
                        sample.label("reason"),
                    ) else {
                        continue;
                    };
                    s.datapath
                        .insert((i.to_string(), a.to_string(), r.to_string()), v);
                }
                name => {
                    let Some(what) = name
                        .strip_prefix("collecte_member_")
                        .and_then(|n| n.strip_suffix("_total"))
                    else {
                        continue;
                    };
                    let Some(id) = sample.label("member") else {
                        continue;
                    };
                    let c = s.members.entry(id.to_string()).or_default();
                    match what {
                        "receive_packets" => c.rx_packets = v,
                        "receive_bytes" => c.rx_bytes = v,
                        "transmit_packets" => c.tx_packets = v,
                        "transmit_bytes" => c.tx_bytes = v,
                        "spoofed_packets" => c.spoofed_packets = v,
                        _ => {}
                    }
                }
            }
        }
        s
    }

    /// Members in the datapath: the gauge, else the members reported.
    pub fn member_count(&self) -> usize {
        self.members_gauge
            .map(|g| g as usize)
            .unwrap_or(self.members.len())
    }
}

/// Fetches and parses one scrape.
pub fn scrape(ep: &Endpoint, timeout: Duration) -> Result<Snapshot, ScrapeError> {
    let text = fetch(ep, timeout)?;
    let samples = parse(&text).map_err(|(line, reason)| ScrapeError::Parse {
        url: ep.url.clone(),
        line,
        reason,
    })?;
    Ok(Snapshot::from_samples(&samples))
}

/// A member's rates between two scrapes, per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberRates {
    pub id: String,
    /// Download (to the member), bits and packets per second.
    pub down_bps: f64,
    pub down_pps: f64,
    /// Upload (from the member).
    pub up_bps: f64,
    pub up_pps: f64,
    pub spoofed_pps: f64,
}

impl MemberRates {
    /// Download and upload, bits per second.
    pub fn total_bps(&self) -> f64 {
        self.down_bps + self.up_bps
    }
}

/// Packets per second of one (interface, action, reason).
#[derive(Clone, Debug, PartialEq)]
pub struct ReasonRate {
    pub interface: String,
    pub action: String,
    pub reason: String,
    pub pps: f64,
}

/// Rates between two snapshots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    /// Every member of the later snapshot, in id order.
    pub members: Vec<MemberRates>,
    /// The non-zero (interface, action, reason) rates, busiest first.
    pub reasons: Vec<ReasonRate>,
}

/// The increase of a counter from `a` to `b`: a counter that went down was
/// reset (a new member in a reused slot, a datapath recreated), and counts
/// from zero, as Prometheus's `rate()` takes it.
fn increase(a: f64, b: f64) -> f64 {
    if b >= a { b - a } else { b }
}

/// Rates from `prev` to `cur`, `dt` apart. A member absent from `prev`
/// is new, and its counters started at zero.
pub fn rates(prev: &Snapshot, cur: &Snapshot, dt: Duration) -> Rates {
    let secs = dt.as_secs_f64();
    if secs <= 0.0 {
        return Rates::default();
    }
    let per_sec = |a: f64, b: f64| increase(a, b) / secs;
    let members = cur
        .members
        .iter()
        .map(|(id, c)| {
            let p = prev.members.get(id).copied().unwrap_or_default();
            MemberRates {
                id: id.clone(),
                down_bps: 8.0 * per_sec(p.tx_bytes, c.tx_bytes),
                down_pps: per_sec(p.tx_packets, c.tx_packets),
                up_bps: 8.0 * per_sec(p.rx_bytes, c.rx_bytes),
                up_pps: per_sec(p.rx_packets, c.rx_packets),
                spoofed_pps: per_sec(p.spoofed_packets, c.spoofed_packets),
            }
        })
        .collect();
    let mut reasons: Vec<ReasonRate> = cur
        .datapath
        .iter()
        .filter_map(|(key, &v)| {
            let pps = per_sec(prev.datapath.get(key).copied().unwrap_or(0.0), v);
            (pps > 0.0).then(|| ReasonRate {
                interface: key.0.clone(),
                action: key.1.clone(),
                reason: key.2.clone(),
                pps,
            })
        })
        .collect();
    reasons.sort_by(|a, b| {
        b.pps.total_cmp(&a.pps).then_with(|| {
            (&a.interface, &a.action, &a.reason).cmp(&(&b.interface, &b.action, &b.reason))
        })
    });
    Rates { members, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ep = Endpoint::parse("http://127.0.0.1:9570/metrics").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.path.as_str()),
            ("127.0.0.1", 9570, "/metrics")
        );
        let ep = Endpoint::parse("http://[::1]:9570").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.path.as_str()),
            ("::1", 9570, "/metrics")
        );
        let ep = Endpoint::parse("http://router.example/m").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.path.as_str()),
            ("router.example", 80, "/m")
        );
        for (bad, why) in [
            ("https://x:1/metrics", "plain HTTP"),
            ("127.0.0.1:9570", "expected http://"),
            ("http://:9570/metrics", "no host"),
            ("http://h:0/metrics", "bad port"),
            ("http://h:99999/metrics", "bad port"),
            ("http://[::1/metrics", "unclosed"),
            ("http://h:1/a b", "white space"),
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn http_answers() {
        let body = |raw: &str| {
            http_body(raw.as_bytes()).map_err(|e| match e {
                HttpError::Status(s) => format!("status {s}"),
                HttpError::Malformed(s) => s,
            })
        };
        assert_eq!(
            body("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap(),
            "abc"
        );
        assert_eq!(
            body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
                .unwrap(),
            "abcde"
        );
        assert_eq!(body("HTTP/1.0 200 OK\r\n\r\nall").unwrap(), "all");
        assert_eq!(
            body("HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(),
            "status HTTP/1.1 404 Not Found"
        );
        assert!(
            body("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
                .unwrap_err()
                .contains("3 of 9")
        );
        assert!(body("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(
            body("SSH-2.0-OpenSSH\r\n\r\n")
                .unwrap_err()
                .contains("status line")
        );
        assert!(
            body("HTTP/1.1 200 OK\r\n")
                .unwrap_err()
                .contains("before its headers")
        );
    }

    /// A real exchange with a server on the loopback that answers in
    /// chunks, then a closed port.
    #[test]
    fn fetch_over_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            let req = String::from_utf8_lossy(&req[..n]).into_owned();
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n13\r\ncollecte_members 2\n\r\n0\r\n\r\n")
                .unwrap();
            req
        });
        let ep = Endpoint::parse(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
        let snap = scrape(&ep, Duration::from_secs(5)).unwrap();
        assert_eq!(snap.members_gauge, Some(2.0));
        let req = server.join().unwrap();
        assert!(req.starts_with("GET /metrics HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{req}"
        );

        // Nothing listens there any more.
        let e = fetch(&ep, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, ScrapeError::Connect { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot reach {}", ep.url)),
            "{e}"
        );
    }

    #[test]
    fn parses_the_text_format() {
        let text = "# HELP collecte_members Members in the datapath.\n\
                    # TYPE collecte_members gauge\n\
                    collecte_members 3\n\
                    # a comment\n\
                    \n\
                    x{a=\"1\",b=\"q\\\"uo\\\\te\\n\", } 1.5e3 1700000000000\n\
                    y{} +Inf\n\
                    z -Inf\n\
                    w NaN\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "collecte_members");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(
            s[1].labels,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "q\"uo\\te\n".to_string())
            ]
        );
        assert_eq!(s[1].value, 1500.0);
        assert_eq!(s[2].value, f64::INFINITY);
        assert_eq!(s[3].value, f64::NEG_INFINITY);
        assert!(s[4].value.is_nan());
        // A comma and a brace inside a value are part of it.
        let s = parse("m{v=\"a,b}c\"} 1\n").unwrap();
        assert_eq!(s[0].label("v"), Some("a,b}c"));
    }

    #[test]
    fn refuses_what_is_not_the_text_format() {
        for (text, line, why) in [
            ("ok 1\n1bad 2\n", 2, "bad metric name"),
            ("m{a=1} 1", 1, "not quoted"),
            ("m{a=\"1} 1", 1, "not closed"),
            ("m{a=\"\\t\"} 1", 1, "bad escape"),
            ("m{a=\"1\" b=\"2\"} 1", 1, "expected ','"),
            ("m{a=\"1\",a=\"2\"} 1", 1, "given twice"),
            ("m{1a=\"1\"} 1", 1, "bad label name"),
            ("m", 1, "no value"),
            ("m{a=\"1\"}1", 1, "white space"),
            ("m one", 1, "bad value"),
            ("m inf", 1, "bad value"),
            ("m 1 soon", 1, "bad timestamp"),
            ("m 1 2 3", 1, "unexpected"),
            ("\n# TYPE m countr\n", 2, "unknown metric type"),
            ("# HELP\n", 1, "without a metric name"),
            ("<html>\n", 1, "bad metric name"),
        ] {
            let (n, e) = parse(text).unwrap_err();
            assert_eq!(n, line, "{text:?}: {e}");
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    /// The daemon's own text, as `metrics::render_chunks` writes it.
    #[test]
    fn reads_the_daemons_metrics() {
        use router_common::{MemberCounters as C, reason};
        let mut s = crate::metrics::Snapshot::default();
        s.push_member(
            "alice",
            C {
                rx_packets: 1,
                rx_bytes: 2,
                tx_packets: 3,
                tx_bytes: 4,
                spoofed_packets: 5,
            },
        );
        let mut counts = [0u64; reason::COUNT as usize];
        counts[reason::DROP_SPOOFED as usize] = 7;
        s.interfaces = vec![("acc0".into(), counts)];
        let text: Vec<u8> = crate::metrics::render_chunks(s).flatten().collect();
        let snap = Snapshot::from_samples(&parse(std::str::from_utf8(&text).unwrap()).unwrap());
        assert_eq!(snap.members_gauge, Some(1.0));
        assert_eq!(snap.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(
            snap.members["alice"],
            MemberCounters {
                rx_packets: 1.0,
                rx_bytes: 2.0,
                tx_packets: 3.0,
                tx_bytes: 4.0,
                spoofed_packets: 5.0
            }
        );
        assert_eq!(snap.datapath.len(), reason::COUNT as usize);
        assert_eq!(
            snap.datapath[&("acc0".into(), "drop".into(), "spoofed".into())],
            7.0
        );
    }

    #[test]
    fn rates_between_scrapes() {
        let counters = |rx: f64, tx: f64, sp: f64| MemberCounters {
            rx_packets: rx,
            rx_bytes: rx * 100.0,
            tx_packets: tx,
            tx_bytes: tx * 1000.0,
            spoofed_packets: sp,
        };
        let key = |i: &str, a: &str, r: &str| (i.to_string(), a.to_string(), r.to_string());
        let mut a = Snapshot::default();
        a.members.insert("alice".into(), counters(10.0, 20.0, 0.0));
        a.members.insert("bob".into(), counters(500.0, 500.0, 50.0));
        a.datapath
            .insert(key("up0", "forward", "downstream"), 100.0);
        a.datapath.insert(key("acc0", "pass", "not-ip"), 7.0);
        a.datapath.insert(key("acc0", "drop", "spoofed"), 1.0);
        let mut b = Snapshot::default();
        b.members.insert("alice".into(), counters(30.0, 60.0, 0.0));
        // bob's counters went down: reset, counted from zero.
        b.members.insert("bob".into(), counters(4.0, 2.0, 2.0));
        // carol is new: from zero.
        b.members.insert("carol".into(), counters(2.0, 0.0, 0.0));
        b.datapath
            .insert(key("up0", "forward", "downstream"), 300.0);
        b.datapath.insert(key("acc0", "pass", "not-ip"), 7.0);
        b.datapath.insert(key("acc0", "drop", "spoofed"), 5.0);
        let r = rates(&a, &b, Duration::from_secs(2));
        let ids: Vec<&str> = r.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["alice", "bob", "carol"]);
        assert_eq!(
            r.members[0],
            MemberRates {
                id: "alice".into(),
                down_bps: 20.0 * 1000.0 * 8.0,
                down_pps: 20.0,
                up_bps: 10.0 * 100.0 * 8.0,
                up_pps: 10.0,
                spoofed_pps: 0.0,
            }
        );
        assert_eq!(
            (
                r.members[1].up_pps,
                r.members[1].down_pps,
                r.members[1].spoofed_pps
            ),
            (2.0, 1.0, 1.0)
        );
        assert_eq!(r.members[2].up_bps, 800.0);
        assert_eq!(r.members[0].total_bps(), 168_000.0);
        // Busiest first; the reason that did not move is left out.
        assert_eq!(
            r.reasons,
            vec![
                ReasonRate {
                    interface: "up0".into(),
                    action: "forward".into(),
                    reason: "downstream".into(),
                    pps: 100.0
                },
                ReasonRate {
                    interface: "acc0".into(),
                    action: "drop".into(),
                    reason: "spoofed".into(),
                    pps: 2.0
                },
            ]
        );
        assert_eq!(rates(&a, &b, Duration::ZERO), Rates::default());
    }
}
