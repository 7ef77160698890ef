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
//! | `GET /v1/drain` | 200 `{"drained":false,"table":100,"exported":6}` |
//! | `PUT /v1/drain` + `{"drained":true}` | 200 the new state; 409 without `[routes]` (see `drain`) |
//! | `GET /v1/sessions` | 200 `{"pppoe":true,"sessions":[SESSION, ...]}` (see `sessions`) |
//! | `GET /v1/sessions/{id}` | 200 `SESSION` (id: the User-Name); 404 |
//!
//! `MEMBER` is the `[[member]]` table of the configuration as JSON plus
//! `"slot"` (its counter slot), `"origin"` (`"config"`, `"api"` or
//! `"session"`, a PPPoE session's, which the API may not change) and,
//! for a member without `mac` whose CPE the datapath has seen,
//! `"learned_mac"` (the MAC its downstream traffic goes to). A
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
//! turned into new tables, saved to the state file (see [`crate::provisioning`]),
//! applied to the datapath, and only then answered: an acknowledged change
//! survives `kill -9` and power loss.
//!
//! # Layout
//! - this module: starting, reloading and stopping the server;
//! - `auth`: the bearer token;
//! - `handlers`: the endpoints;
//! - `body`: request bodies, the streamed sync body included;
//! - `drain`: `/v1/drain`, withdrawing the member routes;
//! - `sessions`: `/v1/sessions`, the PPPoE sessions;
//! - `error`: [`ApiError`], the error answers;
//! - [`client`]: `collecte member`, a client of the API.
use std::{
    io::ErrorKind,
    os::unix::fs::{FileTypeExt as _, PermissionsExt as _},
    path::PathBuf,
    sync::{Arc, RwLock},
};

use axum::{
    Router as Http,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware,
    routing::get,
};
use router_core::config::{ApiConfig, ApiEndpoint, ConfigError};
use tracing::{error, info, warn};

use crate::router::{Shared, lock};

mod auth;
mod body;
pub mod client;
mod drain;
mod error;
mod handlers;
mod sessions;

use auth::{Auth, require_token};
pub use auth::{MIN_TOKEN_LEN, TokenError, constant_time_eq, read_token};
pub use error::ApiError;
pub use handlers::REVISION_HEADER;
use handlers::{delete_member, health, list, put_member, show, sync};

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[api]` is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The token file is not usable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The listener cannot be bound.
    #[error("cannot listen for the API on {endpoint}: {why}; choose another [api] listen")]
    Listen { endpoint: String, why: String },
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
    pub fn spawn(self, router: Shared) -> Running {
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
fn app(router: Shared, auth: Arc<Auth>, body_limit: usize, state: Arc<PathBuf>) -> Http {
    Http::new()
        .route("/v1/health", get(health))
        .route(
            "/v1/members",
            get(list).put(move |State(router): State<Shared>, req: Request| {
                sync(router, req, body_limit, state.as_ref().clone())
            }),
        )
        .route(
            "/v1/members/{id}",
            get(show).put(put_member).delete(delete_member),
        )
        .route("/v1/drain", get(drain::get_drain).put(drain::put_drain))
        .route("/v1/sessions", get(sessions::list_sessions))
        .route("/v1/sessions/{id}", get(sessions::show_session))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; the API has /v1/health, /v1/members, /v1/members/{id}, /v1/drain, /v1/sessions and /v1/sessions/{id}",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .with_state(router)
        .layer(middleware::from_fn_with_state(auth, require_token))
        .layer(DefaultBodyLimit::max(body_limit))
}
