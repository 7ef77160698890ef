//! Validation: each section alone, then the whole configuration, and the
//! whole-set check of a member list ([`validate_members`]), which finds
//! overlaps with [`Claims`].
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};

use router_common::MAX_MEMBERS_LIMIT;

use super::claims::Claims;
use super::error::{ConfigError, Section};
use super::pppoe::{
    DEFAULT_AC_NAME, DEFAULT_ECHO_FAILURES, DEFAULT_ECHO_INTERVAL, DEFAULT_INTERIM_INTERVAL,
    DEFAULT_NAS_IDENTIFIER, DEFAULT_RADIUS_RETRIES, DEFAULT_RADIUS_TIMEOUT, MAX_ECHO_INTERVAL,
    MAX_MRU, MAX_NAME_LEN, MAX_RADIUS_RETRIES, MAX_RADIUS_TIMEOUT, MIN_INTERIM_INTERVAL, MIN_MRU,
    PppoeConfig, RadiusConfig, Seconds, split_host_port,
};
use super::routes::{RoutesConfig, check_table};
use super::schema::{
    ApiConfig, ApiEndpoint, Config, DEFAULT_BODY_LIMIT, DatapathConfig, EdgeConfig, MAX_ICMP_RATE,
    MAX_IFNAME_LEN, MAX_INTERFACES, MAX_ROUTE_GROUPS, MAX_ROUTER_LIFETIME, MIN_BODY_LIMIT,
    RA_INTERVAL_MAX, RA_INTERVAL_MIN, Uplink,
};
use crate::member::{Member, MemberError, MemberIn, Owner, check_mac, check_vlan};

impl RoutesConfig {
    /// Checks `[routes]` alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_table(i64::from(self.table))
            .map(drop)
            .map_err(|why| ConfigError::BadRoutes {
                field: "table",
                why,
            })
    }
}

impl Config {
    /// Checks every rule of the [configuration](super).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.datapath.validate()?;
        self.api.validate()?;
        self.edge.validate()?;
        if let Some(routes) = &self.routes {
            routes.validate()?;
        }
        if let Some(radius) = &self.radius {
            radius.validate()?;
        }

        let mut seen: HashMap<&str, Section> = HashMap::new();
        let declared = self
            .uplinks
            .iter()
            .map(|u| (Section::Uplink, u.interface.as_str()))
            .chain(
                self.access
                    .iter()
                    .map(|a| (Section::Access, a.interface.as_str())),
            );
        for (section, name) in declared {
            check_ifname(section, name)?;
            if let Some(first) = seen.insert(name, section) {
                return Err(ConfigError::DuplicateInterface {
                    interface: name.to_owned(),
                    first,
                    second: section,
                });
            }
        }
        if seen.len() > MAX_INTERFACES {
            return Err(ConfigError::TooManyInterfaces { count: seen.len() });
        }
        for uplink in &self.uplinks {
            uplink.validate()?;
        }
        if let Some(pppoe) = &self.pppoe {
            if self.radius.is_none() {
                return Err(ConfigError::PppoeWithoutRadius);
            }
            let access: Vec<&str> = self.access.iter().map(|a| a.interface.as_str()).collect();
            pppoe.validate(&access)?;
        }

        validate_members(
            &self.members,
            &self.access_interfaces(),
            self.datapath.max_members,
        )
    }

    /// Names of the `[[access]]` interfaces.
    pub fn access_interfaces(&self) -> HashSet<&str> {
        self.access.iter().map(|a| a.interface.as_str()).collect()
    }
}

impl EdgeConfig {
    /// Checks `[edge]` alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: String| Err(ConfigError::BadEdge { field, why });
        if self.icmp_rate > MAX_ICMP_RATE {
            return bad(
                "icmp_rate",
                format!(
                    "{} is out of range; allowed are 0..={MAX_ICMP_RATE} per second and CPU (0 sends none)",
                    self.icmp_rate
                ),
            );
        }
        if self.icmp_burst == 0 || self.icmp_burst > MAX_ICMP_RATE {
            return bad(
                "icmp_burst",
                format!(
                    "{} is out of range; allowed are 1..={MAX_ICMP_RATE}",
                    self.icmp_burst
                ),
            );
        }
        if !(RA_INTERVAL_MIN..=RA_INTERVAL_MAX).contains(&self.ra_interval) {
            return bad(
                "ra_interval",
                format!(
                    "{} is out of range; allowed are {RA_INTERVAL_MIN}..={RA_INTERVAL_MAX} seconds (RFC 4861 MaxRtrAdvInterval)",
                    self.ra_interval
                ),
            );
        }
        if self.router_lifetime != 0
            && !(self.ra_interval..=MAX_ROUTER_LIFETIME).contains(&self.router_lifetime)
        {
            return bad(
                "router_lifetime",
                format!(
                    "{} is out of range; allowed are 0 (not a default router) or ra_interval ({})..={MAX_ROUTER_LIFETIME} seconds (RFC 4861)",
                    self.router_lifetime, self.ra_interval
                ),
            );
        }
        Ok(())
    }
}

impl DatapathConfig {
    /// Checks `[datapath]` alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_members == 0 || self.max_members > MAX_MEMBERS_LIMIT {
            return Err(ConfigError::BadMaxMembers {
                value: self.max_members,
            });
        }
        if let Some(groups) = self.route_groups
            && (groups == 0 || groups > MAX_ROUTE_GROUPS)
        {
            return Err(ConfigError::BadRouteGroups { value: groups });
        }
        if !self.pin_dir.is_absolute() {
            return Err(ConfigError::BadPinDir {
                path: self.pin_dir.clone(),
                why: "must be an absolute path (on a bpffs mount)",
            });
        }
        if !self.state.is_absolute() || self.state.file_name().is_none() {
            return Err(ConfigError::BadStatePath {
                path: self.state.clone(),
            });
        }
        Ok(())
    }
}

impl ApiConfig {
    /// The parsed `listen`, `None` when the API is disabled.
    pub fn endpoint(&self) -> Result<Option<ApiEndpoint>, ConfigError> {
        self.listen
            .as_deref()
            .map(|l| {
                l.parse().map_err(|why| ConfigError::BadApi {
                    field: "listen",
                    why,
                })
            })
            .transpose()
    }

    /// Checks `[api]` alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoint()?.is_some() && self.token_file.is_none() {
            return Err(ConfigError::BadApi {
                field: "token_file",
                why: "is required when listen is set: the API accepts only requests \
                      bearing the token kept in that file"
                    .into(),
            });
        }
        if self.body_limit < MIN_BODY_LIMIT {
            return Err(ConfigError::BadApi {
                field: "body_limit",
                why: format!(
                    "{} is too small; allowed are {} bytes or more (default {})",
                    self.body_limit.0, MIN_BODY_LIMIT.0, DEFAULT_BODY_LIMIT
                ),
            });
        }
        Ok(())
    }
}

impl Uplink {
    fn owner(&self) -> Owner {
        Owner::Uplink(self.interface.clone())
    }

    /// Checks this uplink's own fields (not its interface's uniqueness).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_ifname(Section::Uplink, &self.interface)?;
        if let Some(vlan) = self.vlan {
            check_vlan(|| self.owner(), "vlan", vlan)?;
        }
        if let Some(mac) = self.gateway_mac {
            check_mac(|| self.owner(), "gateway_mac", mac)?;
        }
        if let Some(gw) = self.gateway4
            && (gw.is_unspecified() || gw.is_broadcast() || gw.is_multicast() || gw.is_loopback())
        {
            return Err(ConfigError::BadGateway {
                uplink: self.interface.clone(),
                field: "gateway4",
                value: gw.into(),
            });
        }
        if let Some(gw) = self.gateway6
            && (gw.is_unspecified() || gw.is_multicast() || gw.is_loopback())
        {
            return Err(ConfigError::BadGateway {
                uplink: self.interface.clone(),
                field: "gateway6",
                value: gw.into(),
            });
        }
        Ok(())
    }
}

/// Validates `members` against each other, the access interfaces and
/// `max_members`, in O(n log n) (see [`Claims`]).
///
/// When two members' prefixes overlap, the error names the later member (in
/// slice order) as `member` and the earlier as `other_member`.
pub fn validate_members<M: Borrow<Member>>(
    members: &[M],
    access_interfaces: &HashSet<&str>,
    max_members: u32,
) -> Result<(), ConfigError> {
    check_count(members.len(), max_members)?;
    let mut ids: HashSet<&str> = HashSet::with_capacity(members.len());
    let mut claims = Claims::with_capacity(members.len());
    for (i, member) in members.iter().map(Borrow::borrow).enumerate() {
        member.validate_fields()?;
        check_interface(member.as_in(), access_interfaces)?;
        if !ids.insert(&member.id) {
            return Err(MemberError::DuplicateId {
                member: member.id.clone(),
            }
            .into());
        }
        for net in &member.prefixes {
            claims.add(i as u32, net);
        }
    }
    match claims.first_overlap() {
        None => Ok(()),
        Some(o) => Err(o.error(|i| members[i as usize].borrow().id.clone()).into()),
    }
}

/// Checks that `member`'s interface is one of `access_interfaces`.
pub fn check_interface(
    member: MemberIn<'_>,
    access_interfaces: &HashSet<&str>,
) -> Result<(), ConfigError> {
    if access_interfaces.contains(member.interface) {
        return Ok(());
    }
    let mut allowed: Vec<String> = access_interfaces.iter().map(|s| (*s).to_owned()).collect();
    allowed.sort_unstable();
    Err(ConfigError::UnknownInterface {
        member: member.id.to_owned(),
        interface: member.interface.to_owned(),
        allowed,
    })
}

/// Checks that `count` members fit `max`.
pub fn check_count(count: usize, max: u32) -> Result<(), ConfigError> {
    if count > max as usize {
        return Err(ConfigError::TooManyMembers { count, max });
    }
    Ok(())
}

/// Linux's `dev_valid_name`.
fn check_ifname(section: Section, name: &str) -> Result<(), ConfigError> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_IFNAME_LEN {
        "is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "is not a valid name"
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        "contains '/', ':' or whitespace"
    } else {
        return Ok(());
    };
    Err(ConfigError::BadInterface {
        section,
        interface: name.to_owned(),
        why,
    })
}

impl PppoeConfig {
    /// Checks `[pppoe]` against the `[[access]]` interfaces.
    pub fn validate(&self, access: &[&str]) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: String| Err(ConfigError::BadPppoe { field, why });
        if self.interfaces.is_empty() {
            return bad(
                "interfaces",
                "is empty; name the [[access]] interfaces that accept PPPoE, e.g. [\"acc0\"]"
                    .into(),
            );
        }
        for (i, name) in self.interfaces.iter().enumerate() {
            if !access.contains(&name.as_str()) {
                let mut allowed: Vec<&str> = access.to_vec();
                allowed.sort_unstable();
                return bad(
                    "interfaces",
                    format!(
                        "{name:?} is not one of the [[access]] interfaces ({})",
                        if allowed.is_empty() {
                            "none is declared".to_owned()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                );
            }
            if self.interfaces[..i].contains(name) {
                return bad("interfaces", format!("{name:?} is listed twice"));
            }
        }
        if self.ac_name.is_empty() || self.ac_name.len() > MAX_NAME_LEN {
            return bad(
                "ac_name",
                format!("must be 1-{MAX_NAME_LEN} bytes (default {DEFAULT_AC_NAME:?})"),
            );
        }
        if !(MIN_MRU..=MAX_MRU).contains(&self.mru) {
            return bad(
                "mru",
                format!(
                    "{} is out of range; allowed are {MIN_MRU}..={MAX_MRU}: PPPoE over an \
                     Ethernet MTU of 1500 leaves 1492 bytes (RFC 2516), and RFC 4638's \
                     larger MRUs are not supported",
                    self.mru
                ),
            );
        }
        if !(1..=MAX_ECHO_INTERVAL).contains(&self.echo_interval) {
            return bad(
                "echo_interval",
                format!(
                    "{} is out of range; allowed are 1..={MAX_ECHO_INTERVAL} seconds \
                     (default {DEFAULT_ECHO_INTERVAL})",
                    self.echo_interval
                ),
            );
        }
        if self.echo_failures == 0 {
            return bad(
                "echo_failures",
                format!(
                    "0 would end every session at its first echo; allowed are 1 or more \
                     (default {DEFAULT_ECHO_FAILURES})"
                ),
            );
        }
        Ok(())
    }
}

impl RadiusConfig {
    /// Checks `[radius]` alone (the secret file is read by the daemon).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: String| Err(ConfigError::BadRadius { field, why });
        if self.servers.is_empty() {
            return bad(
                "servers",
                "is empty; name at least one RADIUS server, e.g. [\"127.0.0.1:1812\"]".into(),
            );
        }
        for (field, list) in [
            ("servers", &self.servers),
            ("accounting_servers", &self.accounting_servers),
        ] {
            for server in list {
                if let Err(why) = split_host_port(server) {
                    return bad(field, why);
                }
            }
        }
        if !self.secret_file.is_absolute() {
            return bad(
                "secret_file",
                format!(
                    "{} must be an absolute path, e.g. /etc/collecte/radius.secret",
                    self.secret_file.display()
                ),
            );
        }
        if self.nas_identifier.is_empty() || self.nas_identifier.len() > MAX_NAME_LEN {
            return bad(
                "nas_identifier",
                format!("must be 1-{MAX_NAME_LEN} bytes (default {DEFAULT_NAS_IDENTIFIER:?})"),
            );
        }
        if self.interim_interval < MIN_INTERIM_INTERVAL {
            return bad(
                "interim_interval",
                format!(
                    "{} is too short; allowed are {MIN_INTERIM_INTERVAL} seconds or more \
                     (default {DEFAULT_INTERIM_INTERVAL})",
                    self.interim_interval
                ),
            );
        }
        if self.timeout.0.is_zero() || self.timeout.0 > MAX_RADIUS_TIMEOUT {
            return bad(
                "timeout",
                format!(
                    "{} is out of range; allowed are 1ms..=60s (default {})",
                    self.timeout,
                    Seconds(DEFAULT_RADIUS_TIMEOUT)
                ),
            );
        }
        if !(1..=MAX_RADIUS_RETRIES).contains(&self.retries) {
            return bad(
                "retries",
                format!(
                    "{} is out of range; allowed are 1..={MAX_RADIUS_RETRIES} tries per server \
                     (default {DEFAULT_RADIUS_RETRIES})",
                    self.retries
                ),
            );
        }
        Ok(())
    }
}
