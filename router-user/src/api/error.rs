//! [`ApiError`], the API's error answers, and how every error of a
//! request becomes one: status, message, member and field.
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use router_core::{
    config::ConfigError,
    member::{MemberError, Owner},
    routes::RouteError,
    store::json::ReadError,
    tables::TablesError,
};
use serde::{Deserialize, Serialize};

use crate::provisioning::WriteError;

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
    pub(super) fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            member: None,
            field: None,
        }
    }

    pub(super) fn member(mut self, id: impl Into<String>) -> ApiError {
        self.member = Some(id.into());
        self
    }

    pub(super) fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub(super) fn internal(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).expect("an error serializes");
        json(self.status, body)
    }
}

pub(super) fn json(status: StatusCode, body: Vec<u8>) -> Response {
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
            WriteError::SessionManaged(id) => ApiError::new(StatusCode::CONFLICT, text).member(id),
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

#[cfg(test)]
mod tests {
    use router_core::member::Member;

    use super::*;

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
