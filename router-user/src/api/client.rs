//! `collecte member ...`: a small client of the provisioning API (see
//! [`crate::api`]), over TCP (`--api http://127.0.0.1:9571`) or a Unix
//! socket (`--api unix:/run/collecte/api.sock`).
//!
//! It knows nothing of the command line: the CLI turns its arguments into
//! [`Options`] and a [`Request`], and prints what [`run`] returns.
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::{Method, Request as HttpRequest, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::error::ApiError;

/// Why a `collecte member` request failed. The messages are the client's
/// own, or the API's (with the member and field it names).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--api` is not a URL the client can use.
    #[error("--api {api}: {why}")]
    Target { api: String, why: &'static str },
    /// The token file cannot be read.
    #[error("reading the API token from {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The API cannot be reached.
    #[error("connecting to the API at {api}")]
    Connect {
        api: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection does not speak HTTP.
    #[error("talking HTTP to the API")]
    Handshake(#[source] hyper::Error),
    /// The request could not be built.
    #[error("building the request")]
    Build(#[source] axum::http::Error),
    /// The request could not be sent.
    #[error("sending the request to the API")]
    Send(#[source] hyper::Error),
    /// The answer could not be read.
    #[error("reading the API's answer")]
    Receive(#[source] hyper::Error),
    /// The answer is not the JSON it should be.
    #[error("the API's answer")]
    Answer(#[source] serde_json::Error),
    /// The API refused the token (401).
    #[error("the API refused the token of {} (401 unauthorized)", token_file.display())]
    Unauthorized { token_file: PathBuf },
    /// The API refused the request, and said why.
    #[error("{}", refusal_text(error, member.as_deref(), field.as_deref(), *status))]
    Refused {
        status: StatusCode,
        error: String,
        member: Option<String>,
        field: Option<String>,
    },
    /// The API refused the request with an answer that is not its JSON.
    #[error("the API answered {status}: {body}")]
    Unreadable { status: StatusCode, body: String },
    /// A member file cannot be read.
    #[error("reading {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `.json` member file that does not parse.
    #[error("{} is not valid JSON", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A `.toml` member file that does not parse.
    #[error("{} is not valid TOML", path.display())]
    Toml {
        path: PathBuf,
        #[source]
        source: TomlError,
    },
    /// A member file of another extension that parses as neither.
    #[error("{} is neither JSON nor TOML", path.display())]
    NeitherJsonNorToml {
        path: PathBuf,
        #[source]
        source: TomlError,
    },
    /// A member file that parses but does not hold what the request needs.
    #[error("{}: {why}", path.display())]
    FileShape { path: PathBuf, why: &'static str },
    /// The client's runtime cannot start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Why a file is not TOML the client can send.
#[derive(Debug, thiserror::Error)]
pub enum TomlError {
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    #[error(transparent)]
    Convert(#[from] serde_json::Error),
}

/// The API's refusal, as the client prints it: its message, the member
/// and field it names, and the status.
fn refusal_text(
    error: &str,
    member: Option<&str>,
    field: Option<&str>,
    status: StatusCode,
) -> String {
    let mut text = error.to_owned();
    let mut what = Vec::new();
    if let Some(m) = member {
        what.push(format!("member {m}"));
    }
    if let Some(f) = field {
        what.push(format!("field {f}"));
    }
    if !what.is_empty() {
        text = format!("{text} [{}]", what.join(", "));
    }
    format!("{text} ({status})")
}

/// Where the API is, with which token, and how to print its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `http://HOST:PORT`, `HOST:PORT` or `unix:/PATH`.
    pub api: String,
    /// The file holding the bearer token.
    pub token_file: PathBuf,
    /// Print the API's JSON instead of a table.
    pub json: bool,
}

/// What to ask the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Every member.
    List,
    /// One member.
    Show { id: String },
    /// Create or replace an API member, whole.
    Set { id: String, member: MemberSource },
    /// Delete an API member.
    Delete { id: String },
    /// Replace every API member with those of a file.
    Sync { file: PathBuf },
    /// Drain (withdraw every member route) or undrain.
    Drain { drained: bool },
    /// The member routes' state.
    Routes,
    /// Every PPPoE session.
    Sessions,
    /// One PPPoE session, by id (its User-Name).
    Session { id: String },
}

/// Where the member of a [`Request::Set`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberSource {
    /// A JSON or TOML file: a `[[member]]` table's fields, or one
    /// `[[member]]`.
    File(PathBuf),
    /// Fields as given; the API checks them.
    Fields(MemberFields),
}

/// A member's fields as the command line gives them: unchecked text, so
/// that the API's checks (and messages) are the only ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberFields {
    pub interface: Option<String>,
    pub s_vlan: Option<u16>,
    pub c_vlan: Option<u16>,
    pub mac: Option<String>,
    pub prefixes: Vec<String>,
}

impl MemberFields {
    /// The request body for member `id`.
    fn body(&self, id: &str) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), id.into());
        if let Some(i) = &self.interface {
            m.insert("interface".into(), i.clone().into());
        }
        if let Some(v) = self.s_vlan {
            m.insert("s_vlan".into(), v.into());
        }
        if let Some(v) = self.c_vlan {
            m.insert("c_vlan".into(), v.into());
        }
        if let Some(v) = &self.mac {
            m.insert("mac".into(), v.clone().into());
        }
        m.insert("prefixes".into(), self.prefixes.clone().into());
        Value::Object(m)
    }
}

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
    pub fn parse(s: &str) -> Result<Target, ClientError> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(ClientError::Target {
                    api: s.to_owned(),
                    why: "give the socket's path, e.g. unix:/run/collecte/api.sock",
                });
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if s.starts_with("https://") {
            return Err(ClientError::Target {
                api: s.to_owned(),
                why: "collecte's API speaks plain HTTP; reach it through a Unix socket, \
                      an SSH tunnel or a TLS proxy",
            });
        }
        let rest = s.strip_prefix("http://").unwrap_or(s);
        let hostport = rest.trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
            return Err(ClientError::Target {
                api: s.to_owned(),
                why: "expected http://HOST:PORT or unix:/PATH",
            });
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
    pub fn with_token_file(target: Target, path: &Path) -> Result<Client, ClientError> {
        let token = std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
            path: path.to_owned(),
            source,
        })?;
        Ok(Client::new(target, token.trim().to_string()))
    }

    /// Sends one request (a fresh connection each time).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let (host, sender) = match &self.target {
            Target::Tcp(hostport) => {
                let stream = tokio::net::TcpStream::connect(hostport)
                    .await
                    .map_err(|source| ClientError::Connect {
                        api: hostport.clone(),
                        source,
                    })?;
                (hostport.clone(), handshake(stream).await?)
            }
            Target::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|source| ClientError::Connect {
                        api: format!("unix:{}", path.display()),
                        source,
                    })?;
                ("localhost".to_string(), handshake(stream).await?)
            }
        };
        let mut sender = sender;
        let mut req = HttpRequest::builder()
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
            .map_err(ClientError::Build)?;
        let resp = sender.send_request(req).await.map_err(ClientError::Send)?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(ClientError::Receive)?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ClientError::Handshake)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The error of a non-2xx answer, as the API words it.
fn refusal(answer: &Answer, token_file: &Path) -> ClientError {
    if answer.status == StatusCode::UNAUTHORIZED {
        return ClientError::Unauthorized {
            token_file: token_file.to_owned(),
        };
    }
    match serde_json::from_slice::<ApiError>(&answer.body) {
        Ok(e) => ClientError::Refused {
            status: answer.status,
            error: e.error,
            member: e.member,
            field: e.field,
        },
        Err(_) => ClientError::Unreadable {
            status: answer.status,
            body: String::from_utf8_lossy(&answer.body).into_owned(),
        },
    }
}

/// Reads a member (for `set --file`) from JSON or TOML: the member's table
/// itself, or a file with exactly one `[[member]]`.
pub fn read_member_file(path: &Path) -> Result<Value, ClientError> {
    let value = read_structured(path)?;
    let value = match value {
        Value::Object(mut map) if map.contains_key("member") && !map.contains_key("interface") => {
            match map.remove("member") {
                Some(Value::Array(mut list)) if list.len() == 1 => list.remove(0),
                Some(Value::Object(one)) => Value::Object(one),
                _ => {
                    return Err(ClientError::FileShape {
                        path: path.to_owned(),
                        why: "expected one member, or exactly one [[member]]",
                    });
                }
            }
        }
        Value::Object(map) => Value::Object(map),
        _ => {
            return Err(ClientError::FileShape {
                path: path.to_owned(),
                why: "expected a member (a table/object)",
            });
        }
    };
    Ok(value)
}

/// Reads members (for `sync`) from JSON (`{"members": [...]}` or `[...]`)
/// or TOML (`[[member]]` tables).
pub fn read_members_file(path: &Path) -> Result<Value, ClientError> {
    let value = read_structured(path)?;
    let list = match value {
        Value::Array(list) => list,
        Value::Object(mut map) => match map.remove("members").or_else(|| map.remove("member")) {
            Some(Value::Array(list)) if map.is_empty() => list,
            None if map.is_empty() => Vec::new(),
            _ => {
                return Err(ClientError::FileShape {
                    path: path.to_owned(),
                    why: "expected {\"members\": [...]}, a JSON array of members, or [[member]] tables only",
                });
            }
        },
        _ => {
            return Err(ClientError::FileShape {
                path: path.to_owned(),
                why: "expected a list of members",
            });
        }
    };
    Ok(json!({ "members": list }))
}

fn read_structured(path: &Path) -> Result<Value, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_toml = |text: &str| -> Result<Value, TomlError> {
        let v: toml::Value = toml::from_str(text)?;
        Ok(serde_json::to_value(v)?)
    };
    match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|source| ClientError::Json {
            path: path.to_owned(),
            source,
        }),
        "toml" => from_toml(&text).map_err(|source| ClientError::Toml {
            path: path.to_owned(),
            source,
        }),
        _ => serde_json::from_str(&text)
            .or_else(|_| from_toml(&text))
            .map_err(|source| ClientError::NeitherJsonNorToml {
                path: path.to_owned(),
                source,
            }),
    }
}

/// Runs `request`: the text to print on success (a table, or the API's
/// JSON with `options.json`).
pub fn run(options: &Options, request: &Request) -> Result<String, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)?;
    rt.block_on(run_async(options, request))
}

async fn run_async(options: &Options, request: &Request) -> Result<String, ClientError> {
    let target = Target::parse(&options.api)?;
    let client = Client::with_token_file(target, &options.token_file)?;
    let token_file = options.token_file.as_path();
    let call = |method: Method, path: String, body: Option<Value>| {
        let client = &client;
        async move {
            let body = body.map(|b| serde_json::to_vec(&b).expect("JSON serializes"));
            let answer = client.request(method, &path, body).await?;
            if !answer.status.is_success() {
                return Err(refusal(&answer, token_file));
            }
            Ok::<_, ClientError>(answer)
        }
    };
    let parse = |a: &Answer| serde_json::from_slice::<Value>(&a.body).map_err(ClientError::Answer);
    let pretty = |v: &Value| {
        let mut text = serde_json::to_string_pretty(v).expect("JSON serializes");
        text.push('\n');
        text
    };
    let member_path = |id: &str| format!("/v1/members/{}", encode_id(id));
    let out = match request {
        Request::List => {
            let a = call(Method::GET, "/v1/members".into(), None).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                let empty = Vec::new();
                let members = v["members"].as_array().unwrap_or(&empty);
                table(members)
            }
        }
        Request::Show { id } => {
            let a = call(Method::GET, member_path(id), None).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                details(&v)
            }
        }
        Request::Set { id, member } => {
            let body = match member {
                MemberSource::File(f) => read_member_file(f)?,
                MemberSource::Fields(fields) => fields.body(id),
            };
            let a = call(Method::PUT, member_path(id), Some(body)).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                let what = if a.status == StatusCode::CREATED {
                    "created"
                } else {
                    "replaced"
                };
                format!("{what} {id} (slot {})\n", v["slot"])
            }
        }
        Request::Delete { id } => {
            call(Method::DELETE, member_path(id), None).await?;
            if options.json {
                format!("{}\n", json!({ "deleted": id }))
            } else {
                format!("deleted {id}\n")
            }
        }
        Request::Drain { drained } => {
            let a = call(
                Method::PUT,
                "/v1/drain".into(),
                Some(json!({ "drained": drained })),
            )
            .await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else if *drained {
                format!(
                    "drained: every member route leaves table {} (forwarding goes on)\n",
                    v["table"]
                )
            } else {
                format!(
                    "undrained: the member routes return to table {}\n",
                    v["table"]
                )
            }
        }
        Request::Routes => {
            let a = call(Method::GET, "/v1/drain".into(), None).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                routes_text(&v)
            }
        }
        Request::Sessions => {
            let a = call(Method::GET, "/v1/sessions".into(), None).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else if v["pppoe"] == Value::Bool(false) {
                "no PPPoE session: [pppoe] is not configured\n".into()
            } else {
                let empty = Vec::new();
                session_table(v["sessions"].as_array().unwrap_or(&empty))
            }
        }
        Request::Session { id } => {
            let path = format!("/v1/sessions/{}", encode_id(id));
            let a = call(Method::GET, path, None).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                session_details(&v)
            }
        }
        Request::Sync { file } => {
            let body = read_members_file(file)?;
            let a = call(Method::PUT, "/v1/members".into(), Some(body)).await?;
            let v = parse(&a)?;
            if options.json {
                pretty(&v)
            } else {
                format!(
                    "synced: {} added, {} replaced, {} removed, {} unchanged; {} API members (revision {})\n",
                    v["added"],
                    v["replaced"],
                    v["removed"],
                    v["unchanged"],
                    v["members"],
                    v["revision"]
                )
            }
        }
    };
    Ok(out)
}

/// The member routes' state as a line.
fn routes_text(v: &Value) -> String {
    match v["table"].as_u64() {
        None => "no member route is exported (no [routes] in the configuration)\n".into(),
        Some(t) => format!(
            "table {t}: {} member route(s) exported, {}\n",
            v["exported"],
            if v["drained"] == Value::Bool(true) {
                "drained"
            } else {
                "not drained"
            }
        ),
    }
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
    aligned(&COLUMNS, members)
}

const SESSION_COLUMNS: [(&str, &str); 9] = [
    ("ID", "id"),
    ("STATE", "state"),
    ("INTERFACE", "interface"),
    ("S-VLAN", "s_vlan"),
    ("C-VLAN", "c_vlan"),
    ("MAC", "mac"),
    ("SESSION", "session_id"),
    ("MRU", "mru"),
    ("ADDRESSES", "addresses"),
];

/// PPPoE sessions as an aligned table.
pub fn session_table(sessions: &[Value]) -> String {
    aligned(&SESSION_COLUMNS, sessions)
}

/// One PPPoE session as `key: value` lines, its counters included.
pub fn session_details(s: &Value) -> String {
    let mut out: String = SESSION_COLUMNS
        .iter()
        .chain(&[
            ("STARTED", "started"),
            ("SLOT", "slot"),
            ("ACCT ID", "acct_session_id"),
        ])
        .map(|(h, k)| {
            format!(
                "{:<12} {}\n",
                format!("{}:", h.to_ascii_lowercase()),
                cell(&s[*k])
            )
        })
        .collect();
    for k in [
        "rx_packets",
        "rx_bytes",
        "tx_packets",
        "tx_bytes",
        "spoofed_packets",
    ] {
        out.push_str(&format!(
            "{:<12} {}\n",
            format!("{k}:"),
            cell(&s["counters"][k])
        ));
    }
    out
}

/// `rows` as an aligned table of `columns` (header, JSON key).
fn aligned(columns: &[(&str, &str)], rows: &[Value]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|m| columns.iter().map(|(_, k)| cell(&m[*k])).collect())
        .collect();
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.len()).collect();
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
    line(columns.iter().map(|(h, _)| *h).collect());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// One member as `key: value` lines: the table's columns, then, for a
/// member without `mac`, the CPE MAC the router learned (`-`: none yet).
pub fn details(m: &Value) -> String {
    let learned = m["mac"].is_null().then_some(("LEARNED MAC", "learned_mac"));
    COLUMNS
        .iter()
        .copied()
        .chain(learned)
        .map(|(h, k)| {
            format!(
                "{:<12} {}\n",
                format!("{}:", h.to_ascii_lowercase()),
                cell(&m[k])
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
        assert_eq!(encode_id("pat@isp.example"), "pat%40isp.example");
    }

    #[test]
    fn renders_sessions() {
        let sessions = vec![
            json!({"id":"pat@isp.example","state":"up","interface":"acc0",
            "c_vlan":100,"mac":"02:00:00:00:5e:01","session_id":1,"mru":1492,
            "addresses":["198.51.100.9/32"],"started":1,"slot":3,
            "counters":{"rx_packets":2,"rx_bytes":168,"tx_packets":1,"tx_bytes":84,"spoofed_packets":0}}),
        ];
        let t = session_table(&sessions);
        assert!(t.lines().next().unwrap().starts_with("ID "), "{t}");
        assert!(t.contains("pat@isp.example  up"), "{t}");
        let d = session_details(&sessions[0]);
        assert!(d.contains("rx_bytes:    168"), "{d}");
        assert!(d.contains("c-vlan:      100"), "{d}");
    }
}
