//! `collecte member ...`: a small client of the provisioning API (see
//! [`crate::api`]), over TCP (`--api http://127.0.0.1:9571`) or a Unix
//! socket (`--api unix:/run/collecte/api.sock`).
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::ApiError;
use crate::cli::{MemberArgs, MemberCommand};

/// Where the API is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `HOST:PORT`.
    Tcp(String),
    /// A Unix socket.
    Unix(PathBuf),
}

impl Target {
    /// Parses `http://HOST:PORT[/]`, `HOST:PORT` or `unix:/PATH`.
    pub fn parse(s: &str) -> anyhow::Result<Target> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                bail!("--api {s}: give the socket's path, e.g. unix:/run/collecte/api.sock");
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if s.starts_with("https://") {
            bail!(
                "--api {s}: collecte's API speaks plain HTTP; reach it through a Unix socket, \
                 an SSH tunnel or a TLS proxy"
            );
        }
        let rest = s.strip_prefix("http://").unwrap_or(s);
        let hostport = rest.trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
            bail!("--api {s}: expected http://HOST:PORT or unix:/PATH");
        }
        Ok(Target::Tcp(hostport.to_string()))
    }
}

/// An API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A client of one API with one token.
pub struct Client {
    target: Target,
    token: String,
}

impl Client {
    pub fn new(target: Target, token: String) -> Client {
        Client { target, token }
    }

    /// Reads the token from `path`.
    pub fn with_token_file(target: Target, path: &Path) -> anyhow::Result<Client> {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("reading the API token from {}", path.display()))?;
        Ok(Client::new(target, token.trim().to_string()))
    }

    /// Sends one request (a fresh connection each time).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let (host, sender) = match &self.target {
            Target::Tcp(hostport) => {
                let stream = tokio::net::TcpStream::connect(hostport)
                    .await
                    .with_context(|| format!("connecting to the API at {hostport}"))?;
                (hostport.clone(), handshake(stream).await?)
            }
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("connecting to the API at unix:{}", path.display()))?;
                ("localhost".to_string(), handshake(stream).await?)
            }
        };
        let mut sender = sender;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("building the request")?;
        let resp = sender
            .send_request(req)
            .await
            .context("sending the request to the API")?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the API's answer")?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

async fn handshake<S>(
    stream: S,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("talking HTTP to the API")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The error of a non-2xx answer, as the API words it.
fn refusal(answer: &Answer, token_file: &Path) -> anyhow::Error {
    if answer.status == StatusCode::UNAUTHORIZED {
        return anyhow!(
            "the API refused the token of {} (401 unauthorized)",
            token_file.display()
        );
    }
    match serde_json::from_slice::<ApiError>(&answer.body) {
        Ok(e) => {
            let mut text = e.error;
            let mut what = Vec::new();
            if let Some(m) = e.member {
                what.push(format!("member {m}"));
            }
            if let Some(f) = e.field {
                what.push(format!("field {f}"));
            }
            if !what.is_empty() {
                text = format!("{text} [{}]", what.join(", "));
            }
            anyhow!("{text} ({})", answer.status)
        }
        Err(_) => anyhow!(
            "the API answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ),
    }
}

/// Reads a member (for `set --file`) from JSON or TOML: the member's table
/// itself, or a file with exactly one `[[member]]`.
pub fn read_member_file(path: &Path) -> anyhow::Result<Value> {
    let value = read_structured(path)?;
    let value = match value {
        Value::Object(mut map) if map.contains_key("member") && !map.contains_key("interface") => {
            match map.remove("member") {
                Some(Value::Array(mut list)) if list.len() == 1 => list.remove(0),
                Some(Value::Object(one)) => Value::Object(one),
                _ => bail!(
                    "{}: expected one member, or exactly one [[member]]",
                    path.display()
                ),
            }
        }
        Value::Object(map) => Value::Object(map),
        _ => bail!("{}: expected a member (a table/object)", path.display()),
    };
    Ok(value)
}

/// Reads members (for `sync`) from JSON (`{"members": [...]}` or `[...]`)
/// or TOML (`[[member]]` tables).
pub fn read_members_file(path: &Path) -> anyhow::Result<Value> {
    let value = read_structured(path)?;
    let list = match value {
        Value::Array(list) => list,
        Value::Object(mut map) => match map.remove("members").or_else(|| map.remove("member")) {
            Some(Value::Array(list)) if map.is_empty() => list,
            None if map.is_empty() => Vec::new(),
            _ => bail!(
                "{}: expected {{\"members\": [...]}}, a JSON array of members, or [[member]] tables only",
                path.display()
            ),
        },
        _ => bail!("{}: expected a list of members", path.display()),
    };
    Ok(json!({ "members": list }))
}

fn read_structured(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_toml = |text: &str| -> anyhow::Result<Value> {
        let v: toml::Value = toml::from_str(text)?;
        Ok(serde_json::to_value(v)?)
    };
    match ext.as_str() {
        "json" => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display())),
        "toml" => from_toml(&text).with_context(|| format!("{} is not valid TOML", path.display())),
        _ => serde_json::from_str(&text)
            .map_err(anyhow::Error::from)
            .or_else(|_| from_toml(&text))
            .with_context(|| format!("{} is neither JSON nor TOML", path.display())),
    }
}

/// `collecte member ...`.
pub fn run(args: &MemberArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &MemberArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.api)?;
    let client = Client::with_token_file(target, &args.token_file)?;
    let token_file = args.token_file.as_path();
    let call = |method: Method, path: String, body: Option<Value>| {
        let client = &client;
        async move {
            let body = body.map(|b| serde_json::to_vec(&b).expect("JSON serializes"));
            let answer = client.request(method, &path, body).await?;
            if !answer.status.is_success() {
                return Err(refusal(&answer, token_file));
            }
            Ok::<_, anyhow::Error>(answer)
        }
    };
    let member_path = |id: &str| format!("/v1/members/{}", encode_id(id));
    match &args.command {
        MemberCommand::List => {
            let a = call(Method::GET, "/v1/members".into(), None).await?;
            let v: Value = serde_json::from_slice(&a.body).context("the API's answer")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let empty = Vec::new();
                let members = v["members"].as_array().unwrap_or(&empty);
                print!("{}", table(members));
            }
        }
        MemberCommand::Show { id } => {
            let a = call(Method::GET, member_path(id), None).await?;
            let v: Value = serde_json::from_slice(&a.body).context("the API's answer")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", details(&v));
            }
        }
        MemberCommand::Set {
            id,
            interface,
            s_vlan,
            c_vlan,
            mac,
            prefix,
            file,
        } => {
            let body = match file {
                Some(f) => read_member_file(f)?,
                None => {
                    let mut m = serde_json::Map::new();
                    m.insert("id".into(), id.clone().into());
                    if let Some(i) = interface {
                        m.insert("interface".into(), i.clone().into());
                    }
                    if let Some(v) = s_vlan {
                        m.insert("s_vlan".into(), (*v).into());
                    }
                    if let Some(v) = c_vlan {
                        m.insert("c_vlan".into(), (*v).into());
                    }
                    if let Some(v) = mac {
                        m.insert("mac".into(), v.clone().into());
                    }
                    m.insert("prefixes".into(), prefix.clone().into());
                    Value::Object(m)
                }
            };
            let a = call(Method::PUT, member_path(id), Some(body)).await?;
            let v: Value = serde_json::from_slice(&a.body).context("the API's answer")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let what = if a.status == StatusCode::CREATED {
                    "created"
                } else {
                    "replaced"
                };
                println!("{what} {id} (slot {})", v["slot"]);
            }
        }
        MemberCommand::Delete { id } => {
            call(Method::DELETE, member_path(id), None).await?;
            if args.json {
                println!("{}", json!({ "deleted": id }));
            } else {
                println!("deleted {id}");
            }
        }
        MemberCommand::Sync { file } => {
            let body = read_members_file(file)?;
            let a = call(Method::PUT, "/v1/members".into(), Some(body)).await?;
            let v: Value = serde_json::from_slice(&a.body).context("the API's answer")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "synced: {} added, {} replaced, {} removed, {} unchanged; {} API members (revision {})",
                    v["added"],
                    v["replaced"],
                    v["removed"],
                    v["unchanged"],
                    v["members"],
                    v["revision"]
                );
            }
        }
    }
    Ok(())
}

/// Percent-encodes what a path segment cannot hold (valid ids need none).
fn encode_id(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

const COLUMNS: [(&str, &str); 8] = [
    ("ID", "id"),
    ("ORIGIN", "origin"),
    ("SLOT", "slot"),
    ("INTERFACE", "interface"),
    ("S-VLAN", "s_vlan"),
    ("C-VLAN", "c_vlan"),
    ("MAC", "mac"),
    ("PREFIXES", "prefixes"),
];

/// Members as an aligned table.
pub fn table(members: &[Value]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| COLUMNS.iter().map(|(_, k)| cell(&m[*k])).collect())
        .collect();
    let mut widths: Vec<usize> = COLUMNS.iter().map(|(h, _)| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(COLUMNS.iter().map(|(h, _)| *h).collect());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// One member as `key: value` lines.
pub fn details(m: &Value) -> String {
    COLUMNS
        .iter()
        .map(|(h, k)| {
            format!(
                "{:<10} {}\n",
                format!("{}:", h.to_ascii_lowercase()),
                cell(&m[*k])
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("http://127.0.0.1:9571").unwrap(),
            Target::Tcp("127.0.0.1:9571".into())
        );
        assert_eq!(
            Target::parse("http://[::1]:80/").unwrap(),
            Target::Tcp("[::1]:80".into())
        );
        assert_eq!(
            Target::parse("localhost:9571").unwrap(),
            Target::Tcp("localhost:9571".into())
        );
        assert_eq!(
            Target::parse("unix:/run/collecte/api.sock").unwrap(),
            Target::Unix("/run/collecte/api.sock".into())
        );
        for bad in ["https://x:1", "http://x", "unix:", "http://x:1/v1"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_a_table() {
        let members = vec![
            json!({"id":"alice","origin":"config","slot":0,"interface":"acc0",
            "prefixes":["198.51.100.7/32","2001:db8::/48"]}),
        ];
        let t = table(&members);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID     ORIGIN  SLOT"), "{t}");
        assert!(lines[1].contains("alice  config  0"), "{t}");
        assert!(lines[1].ends_with("198.51.100.7/32,2001:db8::/48"), "{t}");
        assert_eq!(encode_id("a b/c"), "a%20b%2Fc");
    }
}
