//! The provisioning API: an HTTP/1.1 JSON API with which a provisioning
//! system changes the members of a running router, configured in `[api]`.
//!
//! ```toml
//! [api]
//! listen = "127.0.0.1:9571"            # or "unix:/run/collecte/api.sock"
//! token_file = "/etc/collecte/api.token"
//! body_limit = "256MiB"                # default; or a number of bytes
//! ```
//!
//! # Endpoints
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/health` (no token) | 200 `{"status":"ok","attached":true,"interfaces":3,"attached_interfaces":3,"members":N,"config_members":N,"api_members":N,"revision":R}` |
//! | `GET /v1/members` | 200 `{"revision":R,"members":[MEMBER, ...]}`, by id |
//! | `GET /v1/members/{id}` | 200 `MEMBER`; 404 |
//! | `PUT /v1/members/{id}` + member | 201 created, 200 replaced (or unchanged), with `MEMBER` |
//! | `DELETE /v1/members/{id}` | 204; 404 |
//! | `PUT /v1/members` + `{"members":[...]}` | 200 `{"revision":R,"members":N,"added":a,"replaced":r,"removed":d,"unchanged":u}` |
//!
//! `MEMBER` is the `[[member]]` table of the configuration as JSON plus
//! `"slot"` (its counter slot) and `"origin"` (`"config"` or `"api"`). A
//! request body is a member in the configuration's shape; in a PUT of one
//! member the `id` may be left out, and must equal the path's when present.
//! Write answers carry the header `X-Collecte-Revision`, the number of
//! changes saved so far (also in the state file).
//!
//! Every request but `GET /v1/health` needs `Authorization: Bearer TOKEN`,
//! the content of `token_file` (read at start and on SIGHUP; it must not be
//! readable by group or others). Without it: 401 `{"error":"unauthorized"}`,
//! whatever the request. Tokens are compared in constant time.
//!
//! # Errors
//! `{"error": "...", "member": "...", "field": "..."}` (`member` and
//! `field` when known): 400 bad input (malformed JSON, unknown field, wrong
//! type, invalid value, id mismatch), 404 unknown member or endpoint, 405,
//! 409 a prefix overlapping another member's, a member of the configuration
//! file, or no room left (`max_members`, `route_groups`), 413 body over
//! `body_limit`, 415 a body that is not `application/json`, 500 the state
//! could not be saved. A refused request changes nothing.
//!
//! # Consistency
//! Writes are serialized. Each is validated against the whole member set,
//! turned into new tables, saved to the state file (see [`crate::state`]),
//! applied to the datapath, and only then answered: an acknowledged change
//! survives `kill -9` and power loss.
use std::{
    io::ErrorKind,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use axum::{
    Router as Http,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, Path as UrlPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use router_core::{
    config::{ApiConfig, ApiEndpoint, ConfigError},
    member::{self, Member, MemberError, Origin, Owner},
    routes::RouteError,
    store::{
        MemberStore,
        json::{MembersReader, ReadError},
    },
    tables::TablesError,
};

use crate::{
    provisioning::{Op, Outcome, Staged, SyncCounts, WriteError},
    router::{Router, lock},
};

pub mod client;

/// The header carrying the state's revision in write answers.
pub const REVISION_HEADER: &str = "x-collecte-revision";
/// Shortest accepted token.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[api] token_file {}: cannot read it: {source}", path.display())]
    TokenRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "[api] token_file {}: group or others can access it (mode {mode:04o}), and it holds the \
         API's secret; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TokenMode { path: PathBuf, mode: u32 },
    #[error(
        "[api] token_file {}: {why}; put one token of at least {MIN_TOKEN_LEN} printable ASCII \
         characters in it, e.g. `openssl rand -hex 32`",
        path.display()
    )]
    TokenBad { path: PathBuf, why: &'static str },
    #[error("cannot listen for the API on {endpoint}: {why}; choose another [api] listen")]
    Listen { endpoint: String, why: String },
}

/// The expected bearer token.
struct Auth {
    token: RwLock<Vec<u8>>,
}

impl Auth {
    fn check(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
        else {
            return false;
        };
        let token = self.token.read().unwrap_or_else(|p| p.into_inner());
        constant_time_eq(given.as_bytes(), &token)
    }
}

/// Compares two byte strings in a time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// Reads a token file, refusing one that group or others can access.
pub fn read_token(path: &Path) -> Result<Vec<u8>, StartError> {
    let read_err = |source| StartError::TokenRead {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StartError::TokenMode {
            path: path.to_owned(),
            mode,
        });
    }
    let raw = std::fs::read(path).map_err(read_err)?;
    let token = raw.trim_ascii();
    let bad = |why| StartError::TokenBad {
        path: path.to_owned(),
        why,
    };
    if token.is_empty() {
        return Err(bad("it is empty"));
    }
    if !token.iter().all(|c| c.is_ascii_graphic()) {
        return Err(bad("it holds spaces, line breaks or non-ASCII characters"));
    }
    if token.len() < MIN_TOKEN_LEN {
        return Err(bad("the token is too short"));
    }
    Ok(token.to_vec())
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

/// The API, bound but not serving yet.
pub struct Prepared {
    listener: Listener,
    auth: Arc<Auth>,
    endpoint: ApiEndpoint,
    body_limit: usize,
}

/// The serving API.
pub struct Running {
    auth: Arc<Auth>,
    endpoint: ApiEndpoint,
    body_limit: usize,
    task: tokio::task::JoinHandle<()>,
    socket: Option<PathBuf>,
}

/// Reads the token and binds the listener of `config`; `None` when the API
/// is disabled.
pub async fn prepare(config: &ApiConfig) -> Result<Option<Prepared>, StartError> {
    let Some(endpoint) = config.endpoint()? else {
        return Ok(None);
    };
    config.validate()?;
    let token_file = config
        .token_file
        .as_deref()
        .expect("validate() requires token_file with listen");
    let token = read_token(token_file)?;
    let listen_err = |why: String| StartError::Listen {
        endpoint: endpoint.to_string(),
        why,
    };
    let listener = match &endpoint {
        ApiEndpoint::Tcp(addr) => Listener::Tcp(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| listen_err(e.to_string()))?,
        ),
        ApiEndpoint::Unix(path) => {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_socket() => {
                    // A socket left by a collecte that did not exit cleanly,
                    // unless someone still answers on it.
                    if std::os::unix::net::UnixStream::connect(path).is_ok() {
                        return Err(listen_err("another process is listening on it".into()));
                    }
                    std::fs::remove_file(path).map_err(|e| listen_err(e.to_string()))?;
                }
                Ok(_) => return Err(listen_err("the path exists and is not a socket".into())),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(listen_err(e.to_string())),
            }
            let l = tokio::net::UnixListener::bind(path).map_err(|e| listen_err(e.to_string()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| listen_err(e.to_string()))?;
            Listener::Unix(l, path.clone())
        }
    };
    Ok(Some(Prepared {
        listener,
        auth: Arc::new(Auth {
            token: RwLock::new(token),
        }),
        endpoint,
        body_limit: usize::try_from(config.body_limit.0).unwrap_or(usize::MAX),
    }))
}

impl Prepared {
    /// Serves the API on a task of its own.
    pub fn spawn(self, router: Arc<Mutex<Router>>) -> Running {
        // Where the state file is: fixed while running.
        let state = Arc::new(lock(&router).provisioning().path().to_owned());
        let app = app(router, self.auth.clone(), self.body_limit, state);
        let (task, socket) = match self.listener {
            Listener::Tcp(l) => (
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(l, app).await {
                        error!(error = %e, "the API server stopped");
                    }
                }),
                None,
            ),
            Listener::Unix(l, path) => (
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(l, app).await {
                        error!(error = %e, "the API server stopped");
                    }
                }),
                Some(path),
            ),
        };
        info!(listen = %self.endpoint, "serving the provisioning API");
        Running {
            auth: self.auth,
            endpoint: self.endpoint,
            body_limit: self.body_limit,
            task,
            socket,
        }
    }
}

impl Running {
    /// After a configuration reload: reads the token again (keeping the old
    /// one if the file is unusable) and warns about settings that need a
    /// restart.
    pub fn reload(&self, config: &ApiConfig) {
        match config.endpoint() {
            Ok(Some(e)) if e == self.endpoint => {}
            _ => warn!(
                listen = %self.endpoint,
                "[api] listen changed: restart collecte to apply it; the API stays where it is"
            ),
        }
        if usize::try_from(config.body_limit.0).ok() != Some(self.body_limit) {
            warn!("[api] body_limit changed: restart collecte to apply it");
        }
        let Some(path) = config.token_file.as_deref() else {
            warn!("[api] token_file was removed: the API keeps the token it has");
            return;
        };
        match read_token(path) {
            Ok(token) => {
                *self.auth.token.write().unwrap_or_else(|p| p.into_inner()) = token;
                info!(token_file = %path.display(), "API token read again");
            }
            Err(e) => error!(error = %e, "keeping the previous API token"),
        }
    }

    /// Stops serving and removes the socket file.
    pub fn stop(self) {
        self.task.abort();
        if let Some(path) = self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The API's routes.
fn app(
    router: Arc<Mutex<Router>>,
    auth: Arc<Auth>,
    body_limit: usize,
    state: Arc<PathBuf>,
) -> Http {
    Http::new()
        .route("/v1/health", get(health))
        .route(
            "/v1/members",
            get(list).put(
                move |State(router): State<Arc<Mutex<Router>>>, req: Request| {
                    sync(router, req, body_limit, state.as_ref().clone())
                },
            ),
        )
        .route(
            "/v1/members/{id}",
            get(show).put(put_member).delete(delete_member),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; the API has /v1/health, /v1/members and /v1/members/{id}",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .with_state(router)
        .layer(middleware::from_fn_with_state(auth, require_token))
        .layer(DefaultBodyLimit::max(body_limit))
}

async fn require_token(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/v1/health" || auth.check(req.headers()) {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// An error answer: `{"error", "member"?, "field"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            member: None,
            field: None,
        }
    }

    fn member(mut self, id: impl Into<String>) -> ApiError {
        self.member = Some(id.into());
        self
    }

    fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    fn internal(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).expect("an error serializes");
        json(self.status, body)
    }
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        let e = match e {
            ConfigError::InFile { error, .. } => *error,
            e => e,
        };
        let text = e.to_string();
        let bad = |member: &str, field: &str| {
            ApiError::new(StatusCode::BAD_REQUEST, text.clone())
                .member(member)
                .field(field)
        };
        match e {
            ConfigError::Member(e) => e.into(),
            ConfigError::UnknownInterface { member, .. } => bad(&member, "interface"),
            ConfigError::TooManyMembers { .. } => {
                ApiError::new(StatusCode::CONFLICT, text).field("max_members")
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, text),
        }
    }
}

impl From<MemberError> for ApiError {
    fn from(e: MemberError) -> ApiError {
        let text = e.to_string();
        let bad = |member: &str, field: &str| {
            ApiError::new(StatusCode::BAD_REQUEST, text.clone())
                .member(member)
                .field(field)
        };
        match &e {
            MemberError::BadPrefix { member, .. } | MemberError::NoPrefixes { member } => {
                bad(member, "prefixes")
            }
            MemberError::Overlap {
                member,
                other_member,
                ..
            } if member != other_member => ApiError::new(StatusCode::CONFLICT, text)
                .member(member)
                .field("prefixes"),
            MemberError::Overlap { member, .. } => bad(member, "prefixes"),
            MemberError::DuplicateId { member } => bad(member, "id"),
            MemberError::BadId { id, .. } => bad(id, "id"),
            MemberError::SVlanWithoutCVlan { member } => bad(member, "s_vlan"),
            MemberError::BadVlan {
                member_or_section: Owner::Member(member),
                field,
                ..
            }
            | MemberError::BadMac {
                member_or_section: Owner::Member(member),
                field,
                ..
            } => bad(member, field),
            MemberError::BadVlan { .. }
            | MemberError::BadMac { .. }
            | MemberError::TooManyPrefixes { .. } => ApiError::new(StatusCode::BAD_REQUEST, text),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> ApiError {
        let text = e.to_string();
        match e {
            WriteError::ConfigManaged(id) => ApiError::new(StatusCode::CONFLICT, text).member(id),
            WriteError::NotFound(id) => ApiError::new(StatusCode::NOT_FOUND, text).member(id),
            WriteError::Invalid(e) => e.into(),
            WriteError::Tables(TablesError::SlotsExhausted { member, .. }) => {
                ApiError::new(StatusCode::CONFLICT, text)
                    .member(member)
                    .field("max_members")
            }
            WriteError::Tables(TablesError::Route {
                member,
                source: RouteError::GroupsExhausted { .. },
            }) => ApiError::new(StatusCode::CONFLICT, text)
                .member(member)
                .field("prefixes"),
            WriteError::Tables(TablesError::UnknownMember(id)) => {
                ApiError::new(StatusCode::NOT_FOUND, text).member(id)
            }
            WriteError::Tables(_) | WriteError::Persist(_) | WriteError::Datapath(_) => {
                ApiError::internal(text)
            }
        }
    }
}

/// A member as the API shows it.
#[derive(Serialize)]
struct MemberOut<M> {
    #[serde(flatten)]
    member: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<u32>,
    origin: Origin,
}

#[derive(Serialize)]
struct ListOut<M> {
    revision: u64,
    members: Vec<MemberOut<M>>,
}

#[derive(Serialize)]
struct HealthOut {
    status: &'static str,
    attached: bool,
    interfaces: usize,
    attached_interfaces: usize,
    members: usize,
    config_members: usize,
    api_members: usize,
    revision: u64,
}

#[derive(Serialize)]
struct SyncOut {
    revision: u64,
    members: usize,
    #[serde(flatten)]
    counts: SyncCounts,
}

/// Runs `f` on the router, off the async threads.
async fn on_router<T: Send + 'static>(
    router: &Arc<Mutex<Router>>,
    f: impl FnOnce(&mut Router) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let router = router.clone();
    blocking(move || f(&mut lock(&router))).await
}

fn with_revision(mut resp: Response, revision: u64) -> Response {
    resp.headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    resp
}

async fn health(State(router): State<Arc<Mutex<Router>>>) -> Response {
    let out = on_router(&router, |r| {
        let store = r.tables().store();
        let interfaces = r.tables().interfaces().len();
        let attached = r.attached_count();
        HealthOut {
            status: if attached == interfaces {
                "ok"
            } else {
                "degraded"
            },
            attached: interfaces > 0 && attached == interfaces,
            interfaces,
            attached_interfaces: attached,
            members: r.tables().len(),
            config_members: store.count(Origin::Config),
            api_members: store.count(Origin::Api),
            revision: r.provisioning().revision(),
        }
    })
    .await;
    match out {
        Ok(h) => json(StatusCode::OK, serde_json::to_vec(&h).expect("serializes")),
        Err(e) => e.into_response(),
    }
}

async fn list(State(router): State<Arc<Mutex<Router>>>) -> Response {
    let out = on_router(&router, |r| {
        let mut members: Vec<MemberOut<_>> = r
            .tables()
            .members()
            .map(|(slot, member)| MemberOut {
                member,
                slot: Some(slot),
                origin: member.origin(),
            })
            .collect();
        members.sort_unstable_by(|a, b| a.member.id().cmp(b.member.id()));
        let revision = r.provisioning().revision();
        let body = serde_json::to_vec(&ListOut { revision, members }).expect("serializes");
        (revision, body)
    })
    .await;
    match out {
        Ok((revision, body)) => with_revision(json(StatusCode::OK, body), revision),
        Err(e) => e.into_response(),
    }
}

fn path_id(
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    let UrlPath(id) = id.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    member::validate_id(&id).map_err(ApiError::from)?;
    Ok(id)
}

async fn show(
    State(router): State<Arc<Mutex<Router>>>,
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let id = match path_id(id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let out = on_router(&router, move |r| {
        let Some((slot, member)) = r.tables().member(&id) else {
            return Err(
                ApiError::new(StatusCode::NOT_FOUND, format!("no member has id {id:?}")).member(id),
            );
        };
        Ok(serde_json::to_vec(&MemberOut {
            member,
            slot: Some(slot),
            origin: member.origin(),
        })
        .expect("serializes"))
    })
    .await;
    match out.and_then(|r| r) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

/// Refuses a write request whose body is not declared as JSON.
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body must be JSON sent as Content-Type: application/json (got {:?})",
                content_type
            ),
        ));
    }
    Ok(())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than [api] body_limit; raise it in the configuration",
    )
}

/// The body of a write request, after its content type is checked.
async fn json_body(req: Request) -> Result<Bytes, ApiError> {
    check_json(req.headers())?;
    Bytes::from_request(req, &()).await.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::new(
                status,
                format!("cannot read the request body: {}", e.body_text()),
            )
        }
    })
}

/// Deserializes `T`, naming the field at fault.
fn decode<'de, T: Deserialize<'de>>(
    de: impl serde::Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(inner);
        }
        let inner = inner.to_string();
        // The path names unknown fields too ("members[3].colour").
        let field = path;
        let mut err = ApiError::new(StatusCode::BAD_REQUEST, inner);
        if field != "." && !field.is_empty() {
            err.error = format!("{}: {}", field, err.error);
            err = err.field(field);
        }
        err
    })
}

fn malformed(e: serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
}

/// A member from the body of `PUT /v1/members/{id}`.
fn parse_member(id: &str, body: &[u8]) -> Result<Member, ApiError> {
    let bad = |msg: String| ApiError::new(StatusCode::BAD_REQUEST, msg).member(id);
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let mut err = malformed(e);
        err.member = Some(id.to_string());
        err
    })?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(bad(
            "the body must be a JSON object: a member as in [[member]]".into(),
        ));
    };
    match map.get("id") {
        None => {
            map.insert("id".into(), id.into());
        }
        Some(serde_json::Value::String(s)) if s == id => {}
        Some(other) => {
            return Err(bad(format!(
                "the body's id {other} differs from the path's {id:?}; leave it out or make them equal"
            ))
            .field("id"));
        }
    }
    decode::<Member>(serde_json::Value::Object(map)).map_err(|mut e| {
        e.member = Some(id.to_string());
        e
    })
}

/// The answer to a member list that cannot be read.
impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> ApiError {
        match e {
            ReadError::Syntax(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            ReadError::Field {
                field,
                message,
                member,
            } => {
                let mut err = ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"));
                if field != "." {
                    err = err.field(field);
                }
                err.member = member;
                err
            }
            ReadError::Invalid(e) => e.into(),
        }
    }
}

/// The reader of a full sync's body: `members` is its only key.
fn sync_reader(expected: usize) -> MembersReader<'static> {
    MembersReader::new(Origin::Api, expected, |key, _| {
        Err(ReadError::Field {
            field: key.to_owned(),
            message: format!("unknown field `{key}`, expected `members`"),
            member: None,
        })
    })
}

/// A full sync's body, read as it arrives: `{"members": [...]}`, each
/// member checked on its own (the set is checked under the lock). The body
/// is never held whole: members are parsed on a blocking thread while the
/// rest comes in.
async fn read_sync_body(
    req: Request,
    limit: usize,
    state: PathBuf,
) -> Result<(MemberStore, Option<Staged>), ApiError> {
    use futures::StreamExt as _;
    check_json(req.headers())?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // About 120 bytes of JSON per member.
    let expected = declared.map_or(0, |n| (n / 120) as usize);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let parser = tokio::task::spawn_blocking(move || {
        // The member list goes to the next state file as it is read.
        let mut staged = Staged::create(&state).map_err(ApiError::internal)?;
        let mut reader = sync_reader(expected).tee(|text| {
            if let Some(s) = staged.as_mut() {
                s.write(text);
            }
        });
        while let Some(piece) = rx.blocking_recv() {
            reader.feed(&piece)?;
        }
        let members = reader.finish()?;
        Ok::<_, ApiError>((members, staged))
    });
    let mut body = req.into_body().into_data_stream();
    let mut total = 0usize;
    let mut failed = None;
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                failed = Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                ));
                break;
            }
        };
        total += piece.len();
        if total > limit {
            failed = Some(too_large());
            break;
        }
        if tx.send(piece).await.is_err() {
            // The parser stopped: its error says why.
            break;
        }
    }
    drop(tx);
    let parsed = parser
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))?;
    if let Some(e) = failed {
        return Err(e);
    }
    parsed
}

/// Runs `f` off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))
}

async fn put_member(
    State(router): State<Arc<Mutex<Router>>>,
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Response {
    let result = async {
        let id = path_id(id)?;
        let body = json_body(req).await?;
        let out = blocking(move || {
            let member = parse_member(&id, &body)?;
            let mut r = lock(&router);
            let outcome = r.provision(Op::Put(member.clone()))?;
            Ok::<_, ApiError>((member, outcome, r.provisioning().revision()))
        })
        .await??;
        Ok::<_, ApiError>(out)
    }
    .await;
    let (member, outcome, revision) = match result {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let (status, slot, what) = match outcome {
        Outcome::Created { slot } => (StatusCode::CREATED, slot, "created"),
        Outcome::Replaced { slot } => (StatusCode::OK, slot, "replaced"),
        Outcome::Unchanged { slot } => (StatusCode::OK, slot, "unchanged"),
        _ => unreachable!("a PUT creates, replaces or leaves alone"),
    };
    info!(member = %member.id, slot, revision, "API: member {what}");
    let body = serde_json::to_vec(&MemberOut {
        member: &member,
        slot: Some(slot),
        origin: Origin::Api,
    })
    .expect("serializes");
    with_revision(json(status, body), revision)
}

async fn delete_member(
    State(router): State<Arc<Mutex<Router>>>,
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let result = async {
        let id = path_id(id)?;
        let out = on_router(&router, move |r| {
            r.provision(Op::Delete(id.clone()))?;
            Ok::<_, ApiError>((id, r.provisioning().revision()))
        })
        .await??;
        Ok::<_, ApiError>(out)
    }
    .await;
    match result {
        Ok((id, revision)) => {
            info!(member = %id, revision, "API: member deleted");
            with_revision(StatusCode::NO_CONTENT.into_response(), revision)
        }
        Err(e) => e.into_response(),
    }
}

async fn sync(
    router: Arc<Mutex<Router>>,
    req: Request,
    body_limit: usize,
    state: PathBuf,
) -> Response {
    let result = async {
        let t = std::time::Instant::now();
        let (members, staged) = read_sync_body(req, body_limit, state).await?;
        let (rss_kib, peak_kib) = crate::alloc::resident_kib();
        tracing::debug!(
            elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
            members = members.len(),
            rss_kib,
            peak_kib,
            "full sync: body read"
        );
        let out = blocking(move || {
            let mut r = lock(&router);
            let outcome = r.provision(Op::Sync { members, staged })?;
            let Outcome::Synced(counts) = outcome else {
                unreachable!("a sync syncs")
            };
            Ok::<_, ApiError>(SyncOut {
                revision: r.provisioning().revision(),
                members: r.tables().store().count(Origin::Api),
                counts,
            })
        })
        .await??;
        Ok::<_, ApiError>(out)
    }
    .await;
    match result {
        Ok(out) => {
            info!(
                added = out.counts.added,
                replaced = out.counts.replaced,
                removed = out.counts.removed,
                unchanged = out.counts.unchanged,
                revision = out.revision,
                "API: full sync"
            );
            let revision = out.revision;
            with_revision(
                json(
                    StatusCode::OK,
                    serde_json::to_vec(&out).expect("serializes"),
                ),
                revision,
            )
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abcdefabcdefabcd", b"abcdefabcdefabcd"));
        assert!(!constant_time_eq(b"abcdefabcdefabcd", b"abcdefabcdefabce"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn member_bodies() {
        let m = parse_member(
            "bob",
            br#"{"interface":"acc0","prefixes":["198.51.100.8/29"]}"#,
        )
        .unwrap();
        assert_eq!(m.id, "bob");
        let e = parse_member("bob", br#"{"id":"carol","interface":"acc0"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
        let e = parse_member("bob", br#"{"interface":"acc0","colour":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"), "{e:?}");
        assert_eq!(e.member.as_deref(), Some("bob"));
        let e = parse_member("bob", br#"{"interface":"acc0","s_vlan":"ten"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("s_vlan"), "{e:?}");
        let e = parse_member("bob", br#"{"interface":"acc0","s_vlan":70000}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("s_vlan"), "{e:?}");
        let e = parse_member("bob", br#"{"interface":"acc0","prefixes":["x"]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("prefixes"), "{e:?}");
        let e = parse_member("bob", br#"{"interface":"acc0","mac":"zz"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mac"), "{e:?}");
        let e = parse_member("bob", br#"{"prefixes":[]}"#).unwrap_err();
        assert!(e.error.contains("interface"), "{e:?}");
        let e = parse_member("bob", b"{").unwrap_err();
        assert!(e.error.starts_with("malformed JSON"), "{e:?}");
        let e = parse_member("bob", b"[1]").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn sync_bodies() {
        let parse_sync = |body: &[u8]| -> Result<MemberStore, ApiError> {
            let mut r = sync_reader(0);
            r.feed(body)?;
            Ok(r.finish()?)
        };
        let ok = parse_sync(
            br#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.8/29"]}]}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        let e = parse_sync(br#"{"members":[{"id":"a","interface":"acc0","prefixes":["198.51.100.8/29"]},{"id":"b","interface":"acc0","c_vlan":true}]}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("members[1].c_vlan"), "{e:?}");
        assert_eq!(e.member.as_deref(), Some("b"));
        let e = parse_sync(br#"{"members":[],"extra":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("extra"), "{e:?}");
        let e = parse_sync(br#"{"members":[]} x"#).unwrap_err();
        assert!(e.error.starts_with("malformed JSON"), "{e:?}");
        let e = parse_sync(br#"{"members":[{"id":"a","interface":"acc0","x":1}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("members[0].x"), "{e:?}");
    }

    #[test]
    fn a_million_members_fit_the_default_body_limit() {
        // A member with every field, a long id and two prefixes: more than
        // a provisioning system typically sends.
        let m = Member {
            id: "member-0000000000000000000000000000000000000000999999".into(),
            interface: "acc-trunk-1234".into(),
            s_vlan: Some(4094),
            c_vlan: Some(4094),
            mac: Some("02:ab:cd:ef:01:23".parse().unwrap()),
            prefixes: vec![
                "203.0.113.255/32".parse().unwrap(),
                "2001:db8:ffff:ffff::/64".parse().unwrap(),
            ],
        };
        let one = serde_json::to_vec(&m).unwrap().len() + 1;
        let total = one * 1_000_000 + r#"{"members":[]}"#.len();
        assert!(
            (total as u64) < router_core::config::DEFAULT_BODY_LIMIT.0,
            "{one} bytes per member: {total} bytes"
        );
    }

    #[test]
    fn config_errors_map_to_statuses() {
        let m = Member {
            id: "a".into(),
            interface: "acc0".into(),
            s_vlan: Some(5),
            c_vlan: None,
            mac: None,
            prefixes: vec!["198.51.100.0/24".parse().unwrap()],
        };
        let e = ApiError::from(m.validate_fields().unwrap_err());
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::BAD_REQUEST, Some("s_vlan"))
        );
        let overlap = MemberError::Overlap {
            member: "b".into(),
            prefix: "198.51.100.7/32".parse().unwrap(),
            other_member: "a".into(),
            other_prefix: "198.51.100.0/24".parse().unwrap(),
        };
        let e = ApiError::from(overlap);
        assert_eq!(
            (e.status, e.member.as_deref(), e.field.as_deref()),
            (StatusCode::CONFLICT, Some("b"), Some("prefixes"))
        );
    }
}
