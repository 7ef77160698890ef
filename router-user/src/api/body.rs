//! Request bodies: JSON only, a member in the `[[member]]` shape (a
//! `PUT` of one member), and a full sync's member list, read as it arrives
//! and written to the next state file meanwhile.
use std::path::PathBuf;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode, header},
};
use router_core::{
    member::{Member, Origin},
    store::{
        MemberStore,
        json::{MembersReader, ReadError},
    },
};
use serde::Deserialize;

use super::error::ApiError;
use crate::provisioning::Staged;

/// Refuses a write request whose body is not declared as JSON.
pub(super) fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

pub(super) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is larger than [api] body_limit; raise it in the configuration",
    )
}

/// The body of a write request, after its content type is checked.
pub(super) async fn json_body(req: Request) -> Result<Bytes, ApiError> {
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
pub(super) fn parse_member(id: &str, body: &[u8]) -> Result<Member, ApiError> {
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
pub(super) async fn read_sync_body(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
