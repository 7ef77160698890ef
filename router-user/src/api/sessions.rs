//! `GET /v1/sessions` and `GET /v1/sessions/{id}`: the PPPoE sessions, up
//! or in negotiation (see [`crate::sessions`]). A session's id is its
//! member's, the User-Name; one in negotiation before its credentials has
//! none and shows only in the list.
use axum::{
    extract::{Path as UrlPath, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::error::{ApiError, json};
use crate::{
    router::{Shared, lock},
    sessions::SessionOut,
};

#[derive(Serialize)]
struct ListOut {
    /// Whether `[pppoe]` is configured.
    pppoe: bool,
    sessions: Vec<SessionOut>,
}

async fn view(router: &Shared) -> Result<(bool, Vec<SessionOut>), ApiError> {
    let router = router.clone();
    tokio::task::spawn_blocking(move || {
        let r = lock(&router);
        (r.sessions().enabled(), r.sessions_view())
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request failed: {e}")))
}

pub(super) async fn list_sessions(State(router): State<Shared>) -> Response {
    match view(&router).await {
        Ok((pppoe, sessions)) => json(
            StatusCode::OK,
            serde_json::to_vec(&ListOut { pppoe, sessions }).expect("serializes"),
        ),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn show_session(
    State(router): State<Shared>,
    id: Result<UrlPath<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let id = match id {
        Ok(UrlPath(id)) => id,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    match view(&router).await {
        Ok((_, sessions)) => match sessions.into_iter().find(|s| s.id.as_deref() == Some(&id)) {
            Some(s) => json(StatusCode::OK, serde_json::to_vec(&s).expect("serializes")),
            None => ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no PPPoE session has id (User-Name) {id:?}"),
            )
            .member(id)
            .into_response(),
        },
        Err(e) => e.into_response(),
    }
}
