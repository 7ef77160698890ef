//! [`ConfigError`]: why a configuration is refused.
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use router_common::MAX_MEMBERS_LIMIT;

use super::schema::{DEFAULT_STATE_PATH, MAX_IFNAME_LEN, MAX_INTERFACES, MAX_ROUTE_GROUPS};
use crate::member::MemberError;

/// A configuration section holding interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `[[uplink]]`.
    Uplink,
    /// `[[access]]`.
    Access,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Uplink => "[[uplink]]",
            Section::Access => "[[access]]",
        })
    }
}

/// Why a configuration is refused. Every message names the member (by id)
/// or section, the field, and what is allowed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An error in the file `path` (wraps any other variant).
    #[error("{}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type or form.
    /// The message gives the line and column.
    #[error("{message}")]
    Toml { message: String },
    /// A member breaks a rule of its own fields, or its id or prefixes
    /// clash with another member's.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// A member on an interface that is not an `[[access]]` interface.
    #[error(
        "member {member:?}, interface: {interface:?} is not one of the [[access]] interfaces ({})",
        list_or_none(allowed)
    )]
    UnknownInterface {
        member: String,
        interface: String,
        allowed: Vec<String>,
    },
    /// More members than `max_members`.
    #[error(
        "[datapath] max_members: {count} members are configured but max_members is {max}; \
         raise max_members (at most {limit})",
        limit = MAX_MEMBERS_LIMIT
    )]
    TooManyMembers { count: usize, max: u32 },
    /// An interface declared twice (in `[[uplink]]` and/or `[[access]]`).
    #[error(
        "{second} interface: {interface:?} is already declared in {first}; \
         each interface may be declared once"
    )]
    DuplicateInterface {
        interface: String,
        first: Section,
        second: Section,
    },
    /// An interface name Linux would refuse.
    #[error(
        "{section} interface: {interface:?} {why}; interface names are 1-{max} bytes \
         without '/', ':' or whitespace",
        max = MAX_IFNAME_LEN
    )]
    BadInterface {
        section: Section,
        interface: String,
        why: &'static str,
    },
    /// More interfaces than the datapath has slots.
    #[error(
        "[[uplink]]/[[access]]: {count} interfaces are declared; at most {max} are supported",
        max = MAX_INTERFACES
    )]
    TooManyInterfaces { count: usize },
    /// `max_members` out of range.
    #[error(
        "[datapath] max_members: {value} is out of range; allowed are 1..={max}",
        max = MAX_MEMBERS_LIMIT
    )]
    BadMaxMembers { value: u32 },
    /// `route_groups` out of range.
    #[error(
        "[datapath] route_groups: {value} is out of range; allowed are 1..={max} \
         (or leave it out for max_members / 4 + 4096)",
        max = MAX_ROUTE_GROUPS
    )]
    BadRouteGroups { value: u32 },
    /// `pin_dir` unusable.
    #[error("[datapath] pin_dir: {} {why}", path.display())]
    BadPinDir { path: PathBuf, why: &'static str },
    /// `state` unusable.
    #[error(
        "[datapath] state: {} must be the absolute path of a file, e.g. {DEFAULT_STATE_PATH}",
        path.display()
    )]
    BadStatePath { path: PathBuf },
    /// A bad `[api]` setting.
    #[error("[api] {field}: {why}")]
    BadApi { field: &'static str, why: String },
    /// A bad `[edge]` setting.
    #[error("[edge] {field}: {why}")]
    BadEdge { field: &'static str, why: String },
    /// A bad `[routes]` setting.
    #[error("[routes] {field}: {why}")]
    BadRoutes { field: &'static str, why: String },
    /// A bad `[pppoe]` setting.
    #[error("[pppoe] {field}: {why}")]
    BadPppoe { field: &'static str, why: String },
    /// A bad `[radius]` setting.
    #[error("[radius] {field}: {why}")]
    BadRadius { field: &'static str, why: String },
    /// `[pppoe]` without `[radius]`.
    #[error(
        "[pppoe] needs a [radius] section: PPPoE sessions are authenticated by RADIUS \
         (servers and secret_file at least)"
    )]
    PppoeWithoutRadius,
    /// A gateway that is not a unicast address.
    #[error(
        "[[uplink]] {uplink:?}, {field}: {value} is not a unicast address; \
         the gateway must be a unicast neighbour on the uplink"
    )]
    BadGateway {
        uplink: String,
        field: &'static str,
        value: IpAddr,
    },
}

impl ConfigError {
    /// The error itself, without the [`ConfigError::InFile`] wrapping.
    pub fn innermost(&self) -> &ConfigError {
        match self {
            ConfigError::InFile { error, .. } => error.innermost(),
            other => other,
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none is declared".to_owned()
    } else {
        items.join(", ")
    }
}
