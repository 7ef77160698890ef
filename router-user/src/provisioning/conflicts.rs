//! Members of the configuration file against members of the API: a
//! configuration (at start, or reloaded) must not conflict with an
//! acknowledged API member, and the error names both.
use std::{collections::HashSet, path::Path};

use router_core::{
    config::{Claims, Config, ConfigError, check_count, check_interface},
    member::{MemberError, MemberIn},
    store::{MemberStore, MemberView},
};

/// The configuration conflicts with an API member (same id, overlapping
/// prefixes, an access interface it no longer declares, too many members).
#[derive(Debug, thiserror::Error)]
#[error(
    "{why}; an acknowledged API member is never dropped silently: change the configuration \
     file, or delete the API member first (collecte member delete {api_member})"
)]
pub struct ConflictError {
    /// The API member.
    pub api_member: String,
    /// The configuration's member it conflicts with, when there is one.
    pub config_member: Option<String>,
    pub why: String,
}

/// The configuration's members, checked against the API members: the batch
/// [`Tables::update`](router_core::tables::Tables::update) takes for them.
pub struct Checked {
    pub config_members: MemberStore,
}

/// Checks that the configuration's members `config_members` (as
/// [`Config::read`] gives them: checked among themselves) and the API
/// members `api` form a valid set: ids, prefixes, interfaces and
/// `max_members`. The error names both members.
pub fn check_config<'a>(
    config: &Config,
    config_members: MemberStore,
    api: impl Iterator<Item = MemberView<'a>>,
    path: &Path,
) -> Result<Checked, ConflictError> {
    let mut api = api.peekable();
    if api.peek().is_none() {
        // The configuration's members were checked among themselves when
        // it was read.
        return Ok(Checked { config_members });
    }
    let access = config.access_interfaces();
    let n = config_members.end();
    let mut claims = Claims::with_capacity(config_members.len());
    for (i, m) in config_members.iter() {
        for p in m.prefixes() {
            claims.add(i, &p);
        }
    }
    let mut api_ids: Vec<&str> = Vec::new();
    let mut count = config_members.len();
    for m in api {
        count += 1;
        if config_members.number(m.id()).is_some() {
            return Err(conflict(
                path,
                m.id(),
                MemberError::DuplicateId {
                    member: m.id().to_owned(),
                }
                .into(),
                &config_members,
            ));
        }
        if let Err(e) = check_interface_view(&m, &access) {
            return Err(conflict(path, m.id(), e, &config_members));
        }
        for p in m.prefixes() {
            claims.add(n + api_ids.len() as u32, &p);
        }
        api_ids.push(m.id());
    }
    if let Err(e) = check_count(count, config.datapath.max_members) {
        let first = api_ids.first().copied().unwrap_or_default();
        return Err(conflict(path, first, e, &config_members));
    }
    if let Some(o) = claims.first_overlap() {
        let id = |i: u32| match i.checked_sub(n) {
            Some(k) => api_ids[k as usize].to_owned(),
            None => config_members
                .get(i)
                .map(|m| m.id().to_owned())
                .unwrap_or_default(),
        };
        // The later one is the API member when the two differ in origin.
        let e = o.error(id);
        let api_member = match &e {
            MemberError::Overlap { member, .. } => member.clone(),
            _ => String::new(),
        };
        return Err(conflict(path, &api_member, e.into(), &config_members));
    }
    Ok(Checked { config_members })
}

/// The conflict between API member `api_member` (kept in the state file at
/// `path`) and the configuration.
fn conflict(
    path: &Path,
    api_member: &str,
    e: ConfigError,
    config_members: &MemberStore,
) -> ConflictError {
    let kept = format!(
        "member {api_member:?} (added through the provisioning API, kept in {})",
        path.display()
    );
    let (other, why) = match &e {
        ConfigError::Member(MemberError::DuplicateId { member }) => (
            Some(member.clone()),
            format!(
                "member {member:?} is declared in the configuration file, and {kept} has \
                 the same id"
            ),
        ),
        ConfigError::Member(MemberError::Overlap {
            prefix,
            other_member,
            other_prefix,
            ..
        }) => (
            Some(other_member.clone()),
            format!(
                "{kept} has prefix {prefix}, which overlaps {other_prefix} of member \
                 {other_member:?}{}",
                if config_members.number(other_member).is_some() {
                    " of the configuration file"
                } else {
                    ""
                }
            ),
        ),
        other => (None, format!("{kept}: {other}")),
    };
    ConflictError {
        api_member: api_member.to_owned(),
        config_member: other,
        why,
    }
}

pub(super) fn check_interface_view(
    m: &MemberView<'_>,
    access: &HashSet<&str>,
) -> Result<(), ConfigError> {
    let prefixes: Vec<ipnet::IpNet> = Vec::new();
    check_interface(
        MemberIn {
            id: m.id(),
            interface: m.interface(),
            s_vlan: m.s_vlan(),
            c_vlan: m.c_vlan(),
            mac: m.mac(),
            prefixes: &prefixes,
        },
        access,
    )
}
