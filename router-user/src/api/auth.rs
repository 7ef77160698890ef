//! The bearer token: reading its file (refused if group or others can
//! access it), checking it in constant time, and the middleware that
//! refuses every request but `GET /v1/health` without it.
use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::error::ApiError;

/// Shortest accepted token.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("[api] token_file {}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Group or others can access the file.
    #[error(
        "[api] token_file {}: group or others can access it (mode {mode:04o}), and it holds the \
         API's secret; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    /// The file holds no usable token.
    #[error(
        "[api] token_file {}: {why}; put one token of at least {MIN_TOKEN_LEN} printable ASCII \
         characters in it, e.g. `openssl rand -hex 32`",
        path.display()
    )]
    Bad { path: PathBuf, why: &'static str },
}

/// The expected bearer token.
pub(super) struct Auth {
    pub(super) token: RwLock<Vec<u8>>,
}

impl Auth {
    pub(super) fn check(&self, headers: &HeaderMap) -> bool {
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
pub fn read_token(path: &Path) -> Result<Vec<u8>, TokenError> {
    let read_err = |source| TokenError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Mode {
            path: path.to_owned(),
            mode,
        });
    }
    let raw = std::fs::read(path).map_err(read_err)?;
    let token = raw.trim_ascii();
    let bad = |why| TokenError::Bad {
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

pub(super) async fn require_token(
    State(auth): State<Arc<Auth>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/v1/health" || auth.check(req.headers()) {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
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
}
