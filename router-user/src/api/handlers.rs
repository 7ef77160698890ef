//! The endpoints: health, list, show, put, delete and full sync. Each
//! takes the router's lock off the async threads; writes go through
//! `Router::provision` and carry the state's revision.
use std::path::PathBuf;

use axum::{
    extract::{Path as UrlPath, Request, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use router_core::member::{self, Origin};
use serde::Serialize;
use tracing::info;

use super::body::{json_body, parse_member, read_sync_body};
use super::error::{ApiError, json};
use crate::{
    provisioning::{Op, Outcome, SyncCounts},
    router::{Router, Shared, fmt_mac, lock},
};

/// The header carrying the state's revision in write answers.
pub const REVISION_HEADER: &str = "x-collecte-revision";

/// A member as the API shows it: the configuration's fields, its slot,
/// its origin and, for a member without `mac`, the CPE MAC learned.
#[derive(Serialize)]
struct MemberOut<M> {
    #[serde(flatten)]
    member: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<u32>,
    origin: Origin,
    /// The CPE MAC the datapath learned, for a member without `mac`.
    #[serde(skip_serializing_if = "Option::is_none")]
    learned_mac: Option<String>,
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
    /// Members of established PPPoE sessions.
    session_members: usize,
    revision: u64,
    /// Every member route withdrawn by the operator.
    drained: bool,
    /// Member routes in the kernel table, when `[routes]` exports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    routes_exported: Option<u64>,
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
    router: &Shared,
    f: impl FnOnce(&mut Router) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let router = router.clone();
    blocking(move || f(&mut lock(&router))).await
}

/// Runs `f` off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request failed: {e}")))
}

fn with_revision(mut resp: Response, revision: u64) -> Response {
    resp.headers_mut()
        .insert(REVISION_HEADER, HeaderValue::from(revision));
    resp
}

pub(super) async fn health(State(router): State<Shared>) -> Response {
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
            session_members: store.count(Origin::Session),
            revision: r.provisioning().revision(),
            drained: r.routes().is_some_and(|h| h.drained()),
            routes_exported: r.routes().and_then(|h| h.table().map(|_| h.exported())),
        }
    })
    .await;
    match out {
        Ok(h) => json(StatusCode::OK, serde_json::to_vec(&h).expect("serializes")),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn list(State(router): State<Shared>) -> Response {
    let out = on_router(&router, |r| {
        let mut members: Vec<MemberOut<_>> = r
            .tables()
            .members()
            .map(|(slot, member)| MemberOut {
                member,
                slot: Some(slot),
                origin: member.origin(),
                learned_mac: r.tables().learned_mac(slot).map(fmt_mac),
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

pub(super) async fn show(
    State(router): State<Shared>,
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
            learned_mac: r.tables().learned_mac(slot).map(fmt_mac),
        })
        .expect("serializes"))
    })
    .await;
    match out.and_then(|r| r) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn put_member(
    State(router): State<Shared>,
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
            let learned = r
                .tables()
                .slot(&member.id)
                .and_then(|s| r.tables().learned_mac(s));
            Ok::<_, ApiError>((member, outcome, r.provisioning().revision(), learned))
        })
        .await??;
        Ok::<_, ApiError>(out)
    }
    .await;
    let (member, outcome, revision, learned) = match result {
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
        learned_mac: learned.map(fmt_mac),
    })
    .expect("serializes");
    with_revision(json(status, body), revision)
}

pub(super) async fn delete_member(
    State(router): State<Shared>,
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

pub(super) async fn sync(
    router: Shared,
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
