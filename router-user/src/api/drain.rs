//! `/v1/drain`: withdraw every member route (`{"drained": true}`) while
//! forwarding goes on, or announce them again (`{"drained": false}`).
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/drain` | 200 `{"drained":false,"table":100,"exported":6}` |
//! | `PUT /v1/drain` + `{"drained":true}` | 200 the new state (the routes follow in the background: `exported` is what the table holds now) |
//!
//! 409 when `[routes]` is not configured: nothing is exported, so nothing
//! can be drained. The state is saved before the answer (see
//! [`crate::routes`]).
use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse as _, Response},
};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::{
    body::json_body,
    error::{ApiError, json},
};
use crate::{
    router::{Shared, lock},
    routes::{DrainError, Handle},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainIn {
    drained: bool,
}

#[derive(Serialize)]
struct DrainOut {
    drained: bool,
    table: Option<u32>,
    exported: u64,
}

fn state(h: &Handle) -> DrainOut {
    DrainOut {
        drained: h.drained(),
        table: h.table(),
        exported: h.exported(),
    }
}

impl From<DrainError> for ApiError {
    fn from(e: DrainError) -> ApiError {
        let status = match e {
            DrainError::NotExported => StatusCode::CONFLICT,
            DrainError::Unreadable { .. } | DrainError::Write { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

/// The body of `PUT /v1/drain`.
fn parse(body: &[u8]) -> Result<bool, ApiError> {
    let shape = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body is {\"drained\": true} or {\"drained\": false}",
        )
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(shape());
    }
    serde_json::from_value::<DrainIn>(value)
        .map(|d| d.drained)
        .map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{e}; the body is {{\"drained\": true}} or {{\"drained\": false}}"),
                )
                .field("drained")
            }
        })
}

/// The routes' handle, off the async threads.
async fn handle(router: Shared) -> Result<Handle, ApiError> {
    tokio::task::spawn_blocking(move || lock(&router).routes().cloned())
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))?
        .ok_or_else(|| ApiError::internal("the member routes are not running"))
}

pub(super) async fn get_drain(State(router): State<Shared>) -> Response {
    match handle(router).await {
        Ok(h) => json(
            StatusCode::OK,
            serde_json::to_vec(&state(&h)).expect("serializes"),
        ),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn put_drain(State(router): State<Shared>, req: Request) -> Response {
    let result = async {
        let drained = parse(&json_body(req).await?)?;
        let h = handle(router).await?;
        // Saved (fsync) off the async threads; the routes follow in the
        // background.
        let out = tokio::task::spawn_blocking(move || {
            h.set_drained(drained)?;
            Ok::<_, ApiError>(state(&h))
        })
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))??;
        Ok::<_, ApiError>(out)
    }
    .await;
    match result {
        Ok(out) => {
            info!(drained = out.drained, "API: drain state set");
            json(
                StatusCode::OK,
                serde_json::to_vec(&out).expect("serializes"),
            )
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(parse(br#"{"drained":true}"#).unwrap());
        assert!(!parse(br#"{"drained": false}"#).unwrap());
        for (bad, words) in [
            (&br#"{"drained":1}"#[..], "invalid type"),
            (br#"{}"#, "missing field `drained`"),
            (br#"{"drained":true,"why":"x"}"#, "unknown field `why`"),
            (br#"{"drained":"#, "malformed JSON"),
            (br#"[true]"#, "the body is {\"drained\": true}"),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.error.contains(words),
                "{}: {}",
                String::from_utf8_lossy(bad),
                e.error
            );
        }
        assert_eq!(
            parse(br#"{}"#).unwrap_err().field.as_deref(),
            Some("drained")
        );
        let e = ApiError::from(DrainError::NotExported);
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.error.contains("[routes]"), "{}", e.error);
    }
}
