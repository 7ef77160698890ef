//! The collecte configuration: its TOML schema, its defaults and its
//! validation.
//!
//! The daemon reads one TOML file. Every table rejects unknown keys, so a
//! typo is an error rather than a silently ignored setting.
//!
//! ```toml
//! [datapath]
//! pin_dir = "/sys/fs/bpf/collecte"   # default
//! max_members = 65536                # default 65536, at most router_common::MAX_MEMBERS_LIMIT
//! route_groups = 20480               # default: max_members / 4 + 4096 (see below)
//! state = "/var/lib/collecte/state.json"  # default: the members added through the API
//!
//! [metrics]
//! listen = "127.0.0.1:9570"          # default
//!
//! [api]                              # optional, off unless `listen` is set
//! listen = "127.0.0.1:9571"
//! token_file = "/etc/collecte/api.token"  # required with listen; mode 0600
//! body_limit = "256MiB"              # default; or a number of bytes
//!
//! [log]
//! level = "info"                     # default
//!
//! [[uplink]]                         # faces the core
//! interface = "core0"
//! gateway4 = "192.0.2.1"             # optional
//! gateway6 = "2001:db8::1"           # optional
//! gateway_mac = "02:00:00:00:00:01"  # optional: static next-hop MAC
//! vlan = 200                         # optional 802.1Q tag on the uplink
//!
//! [[access]]                         # where members' lines arrive
//! interface = "acc0"
//!
//! [[member]]
//! id = "alice"                       # 1-64 chars of [A-Za-z0-9_.-], unique
//! interface = "acc0"                 # one of the [[access]] interfaces
//! s_vlan = 10                        # optional outer tag (802.1ad); needs c_vlan
//! c_vlan = 101                       # optional inner tag; alone it is a single 802.1Q tag
//! mac = "02:00:00:00:01:01"          # optional: the member's router (CPE) MAC
//! prefixes = ["198.51.100.7/32", "2001:db8:100::/48"]
//! ```
//!
//! # Defaults
//! - `datapath.pin_dir`: [`DEFAULT_PIN_DIR`].
//! - `datapath.max_members`: [`DEFAULT_MAX_MEMBERS`].
//! - `datapath.route_groups`: `max_members / 4 + 4096`, capped at
//!   [`MAX_ROUTE_GROUPS`] (see [`DatapathConfig::default_route_groups`]). A
//!   route group is 256 entries (1 KiB) of the prefix table; the 512 root
//!   groups come on top of this number.
//! - `metrics.listen`: [`DEFAULT_METRICS_LISTEN`].
//! - `datapath.state`: [`DEFAULT_STATE_PATH`].
//! - `api`: disabled (no `listen`); `api.body_limit`: [`DEFAULT_BODY_LIMIT`].
//! - `log.level`: [`DEFAULT_LOG_LEVEL`].
//!
//! # Rules
//! [`Config::validate`] checks, and every [`ConfigError`] names the member or
//! section and the field at fault and says what is allowed:
//! - `max_members` is in `1..=MAX_MEMBERS_LIMIT`, `route_groups` in
//!   `1..=MAX_ROUTE_GROUPS`, `pin_dir` is absolute.
//! - Interface names are valid Linux names, each is declared once across
//!   `[[uplink]]` and `[[access]]`, and there are at most [`MAX_INTERFACES`].
//! - VLAN ids are in `1..=4094`; a member's `s_vlan` needs a `c_vlan`.
//! - MACs (member and gateway) are unicast and not all zeros; gateways are
//!   unicast addresses.
//! - Member ids are unique; a member's interface is an `[[access]]`
//!   interface; a member has at least one prefix; prefixes have no host bits
//!   set, avoid reserved ranges (multicast, loopback, link-local, ...) and
//!   overlap no other prefix, of the same member or another.
//! - There are at most `max_members` members.
//!
//! Several members may share one attachment (interface, s_vlan, c_vlan): a
//! shared untagged segment is legitimate.
//!
//! The whole-set check [`validate_members`] runs in O(n log n) ([`Claims`]);
//! the provisioning API checks one member against the running set with the
//! prefix table itself ([`crate::members::Tables::check_put`]).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use router_common::{MAX_IFACES, MAX_MEMBERS_LIMIT, route};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::members::{MemberStore, Origin};

/// Default `[datapath] pin_dir`.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/collecte";
/// Default `[datapath] max_members`.
pub const DEFAULT_MAX_MEMBERS: u32 = 65536;
/// Default `[metrics] listen`.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 9570));
/// Default `[datapath] state`: where the members added through the
/// provisioning API are kept (see [`crate::state`]).
pub const DEFAULT_STATE_PATH: &str = "/var/lib/collecte/state.json";
/// Default `[api] body_limit`: 256 MiB, room for a full sync of 1,000,000
/// members of up to ~260 bytes of JSON each (a typical member takes 100-150).
pub const DEFAULT_BODY_LIMIT: ByteSize = ByteSize(256 << 20);
/// Smallest `[api] body_limit`.
pub const MIN_BODY_LIMIT: ByteSize = ByteSize(1024);
/// Default `[log] level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Lowest usable VLAN id.
pub const VLAN_MIN: u16 = 1;
/// Highest usable VLAN id (4095 is reserved).
pub const VLAN_MAX: u16 = 4094;
/// Longest member id.
pub const MAX_ID_LEN: usize = 64;
/// Most prefixes one member may have.
pub const MAX_PREFIXES: usize = 1024;
/// Longest Linux interface name (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;
/// Most interfaces (uplinks and access together) the datapath has slots for:
/// slot 0 is reserved for "unknown interface".
pub const MAX_INTERFACES: usize = MAX_IFACES as usize - 1;
/// Most route groups: both halves of the prefix table, root groups included,
/// must stay addressable by a `u32` entry index.
pub const MAX_ROUTE_GROUPS: u32 = u32::MAX / 2 / route::GROUP_ENTRIES - route::FIRST_GROUP;

// ---------------------------------------------------------------------------
// Configuration types
// ---------------------------------------------------------------------------

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[datapath]`.
    #[serde(default)]
    pub datapath: DatapathConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiConfig,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[[uplink]]` tables.
    #[serde(rename = "uplink", default, skip_serializing_if = "Vec::is_empty")]
    pub uplinks: Vec<Uplink>,
    /// `[[access]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<Access>,
    /// `[[member]]` tables.
    #[serde(rename = "member", default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// `[datapath]`: sizes and location of the kernel maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatapathConfig {
    /// bpffs directory where the program and maps are pinned.
    pub pin_dir: PathBuf,
    /// Member slots per half of the member table.
    pub max_members: u32,
    /// Allocatable groups of 256 prefix-table entries (1 KiB each) per half;
    /// `None` for [`DatapathConfig::default_route_groups`]. Read it through
    /// [`DatapathConfig::route_groups`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_groups: Option<u32>,
    /// How the XDP program attaches to the interfaces.
    pub xdp_mode: XdpMode,
    /// The file keeping the members added through the provisioning API
    /// (see [`crate::state`]); its directory must be writable when the API
    /// is enabled.
    pub state: PathBuf,
}

/// `[datapath] xdp_mode`: how the XDP program attaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver (fast); fails where the NIC's driver has no XDP support.
    #[default]
    Native,
    /// In the generic network stack (slow, works everywhere).
    Generic,
    /// Native, falling back to generic with a warning.
    Auto,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            max_members: DEFAULT_MAX_MEMBERS,
            route_groups: None,
            xdp_mode: XdpMode::Native,
            state: PathBuf::from(DEFAULT_STATE_PATH),
        }
    }
}

impl DatapathConfig {
    /// The default number of route groups for `max_members` members:
    /// `max_members / 4 + 4096`, capped at [`MAX_ROUTE_GROUPS`].
    ///
    /// A member's prefix needs at most a few groups below the root, but
    /// members of one pool share most of them; a quarter of a group per
    /// member plus a fixed 4 MiB reserve covers dense pools of /32s and /48s
    /// with room to spare.
    pub const fn default_route_groups(max_members: u32) -> u32 {
        let groups = (max_members / 4).saturating_add(4096);
        if groups > MAX_ROUTE_GROUPS {
            MAX_ROUTE_GROUPS
        } else {
            groups
        }
    }

    /// The configured number of route groups, or the default for
    /// `max_members`.
    pub fn route_groups(&self) -> u32 {
        self.route_groups
            .unwrap_or_else(|| Self::default_route_groups(self.max_members))
    }

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

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address the metrics HTTP server listens on.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: DEFAULT_METRICS_LISTEN,
        }
    }
}

/// `[api]`: the provisioning API, disabled unless `listen` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the API listens: `ADDRESS:PORT` (TCP) or `unix:/ABSOLUTE/PATH`
    /// (a Unix socket); read it through [`ApiConfig::endpoint`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// File holding the bearer token clients must present; required with
    /// `listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted (413 beyond).
    pub body_limit: ByteSize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: None,
            token_file: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Where the provisioning API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for ApiEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiEndpoint::Tcp(a) => write!(f, "{a}"),
            ApiEndpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for ApiEndpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() || path.file_name().is_none() {
                return Err(format!(
                    "{s:?} is not a usable socket path; write unix:/ABSOLUTE/PATH, \
                     e.g. unix:/run/collecte/api.sock"
                ));
            }
            return Ok(ApiEndpoint::Unix(path));
        }
        s.parse().map(ApiEndpoint::Tcp).map_err(|_| {
            format!(
                "{s:?} is neither ADDRESS:PORT nor unix:/PATH; \
                 e.g. 127.0.0.1:9571 or unix:/run/collecte/api.sock"
            )
        })
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

/// A number of bytes, written in the configuration as an integer or as a
/// string with a unit: `"256MiB"`, `"1 GiB"`, `"500kB"`, `"1048576"` (units
/// B, kB/KB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024),
/// case-insensitive). Serializes as an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let bad = || {
            format!(
                "invalid size {s:?}: expected a number of bytes with an optional unit \
                 (B, kB, MB, GB, KiB, MiB, GiB), e.g. \"256MiB\""
            )
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "mb" => 1000 * 1000,
            "gb" => 1000 * 1000 * 1000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(bad)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes, or a size such as \"256MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: it is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter directive, e.g. `info` or `collecte=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

/// `[[uplink]]`: an interface facing the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    /// Linux interface name.
    pub interface: String,
    /// IPv4 next hop for upstream traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway4: Option<Ipv4Addr>,
    /// IPv6 next hop for upstream traffic (may be link-local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// Static next-hop MAC, instead of resolving the gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_mac: Option<MacAddr>,
    /// 802.1Q tag on the uplink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
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

/// `[[access]]`: an interface where members' lines arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Linux interface name.
    pub interface: String,
}

/// `[[member]]`: one member, its attachment and its addresses.
///
/// Serializes back to the same shape as the configuration table (absent
/// options are omitted, prefixes are strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Unique id: 1-64 characters of `[A-Za-z0-9_.-]`.
    pub id: String,
    /// One of the `[[access]]` interfaces.
    pub interface: String,
    /// Outer tag (802.1ad S-tag); requires `c_vlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_vlan: Option<u16>,
    /// Inner tag (C-tag); alone, a single 802.1Q tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_vlan: Option<u16>,
    /// The member's CPE MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The member's addresses, IPv4 and IPv6, without host bits.
    #[serde(default, with = "prefix_list")]
    pub prefixes: Vec<IpNet>,
}

impl Member {
    /// The member's fields, borrowed: the form every check and table takes.
    pub fn as_in(&self) -> MemberIn<'_> {
        MemberIn {
            id: &self.id,
            interface: &self.interface,
            s_vlan: self.s_vlan,
            c_vlan: self.c_vlan,
            mac: self.mac,
            prefixes: &self.prefixes,
        }
    }

    /// Checks everything about this member that depends neither on the
    /// interfaces nor on other members: [`MemberIn::validate_fields`].
    pub fn validate_fields(&self) -> Result<(), ConfigError> {
        self.as_in().validate_fields()
    }
}

/// A member's fields, borrowed from a [`Member`] or from a request body
/// being read (see [`crate::members::json`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIn<'a> {
    pub id: &'a str,
    pub interface: &'a str,
    pub s_vlan: Option<u16>,
    pub c_vlan: Option<u16>,
    pub mac: Option<MacAddr>,
    pub prefixes: &'a [IpNet],
}

impl MemberIn<'_> {
    fn owner(&self) -> Owner {
        Owner::Member(self.id.to_owned())
    }

    /// An owned copy.
    pub fn to_member(&self) -> Member {
        Member {
            id: self.id.to_owned(),
            interface: self.interface.to_owned(),
            s_vlan: self.s_vlan,
            c_vlan: self.c_vlan,
            mac: self.mac,
            prefixes: self.prefixes.to_vec(),
        }
    }

    /// Checks everything about this member that depends neither on the
    /// interfaces nor on other members: id, VLANs, MAC, and prefixes (at
    /// least one, at most [`MAX_PREFIXES`], host bits, reserved ranges,
    /// overlap among its own prefixes).
    pub fn validate_fields(&self) -> Result<(), ConfigError> {
        check_id(self.id)?;
        if let Some(v) = self.s_vlan {
            check_vlan(|| self.owner(), "s_vlan", v)?;
        }
        if let Some(v) = self.c_vlan {
            check_vlan(|| self.owner(), "c_vlan", v)?;
        }
        if self.s_vlan.is_some() && self.c_vlan.is_none() {
            return Err(ConfigError::SVlanWithoutCVlan {
                member: self.id.to_owned(),
            });
        }
        if let Some(mac) = self.mac {
            check_mac(|| self.owner(), "mac", mac)?;
        }
        if self.prefixes.is_empty() {
            return Err(ConfigError::NoPrefixes {
                member: self.id.to_owned(),
            });
        }
        if self.prefixes.len() > MAX_PREFIXES {
            return Err(ConfigError::TooManyPrefixes {
                member: self.id.to_owned(),
                count: self.prefixes.len(),
            });
        }
        for net in self.prefixes {
            self.check_prefix(net)?;
        }
        match self.prefixes {
            [_] => Ok(()),
            // The usual pair: one of each family cannot overlap.
            [a, b] if a.addr().is_ipv4() != b.addr().is_ipv4() => Ok(()),
            _ => self.check_own_overlap(),
        }
    }

    /// Overlap among the member's own prefixes: sort, compare neighbours.
    fn check_own_overlap(&self) -> Result<(), ConfigError> {
        let mut own: Vec<(PrefixKey, u128, usize)> = self
            .prefixes
            .iter()
            .enumerate()
            .map(|(i, net)| {
                let (key, end) = PrefixKey::of(net);
                (key, end, i)
            })
            .collect();
        own.sort_unstable();
        for pair in own.windows(2) {
            let (a, a_end, ai) = pair[0];
            let (b, _, bi) = pair[1];
            if a.family == b.family && b.start <= a_end {
                // Name the one listed later as the culprit.
                let (later, earlier) = if ai < bi { (bi, ai) } else { (ai, bi) };
                return Err(ConfigError::Overlap {
                    member: self.id.to_owned(),
                    prefix: self.prefixes[later],
                    other_member: self.id.to_owned(),
                    other_prefix: self.prefixes[earlier],
                });
            }
        }
        Ok(())
    }

    fn check_prefix(&self, net: &IpNet) -> Result<(), ConfigError> {
        if net.addr() != net.network() {
            return Err(ConfigError::BadPrefix {
                member: self.id.to_owned(),
                prefix: net.to_string(),
                why: format!("has host bits set; did you mean {}?", net.trunc()),
            });
        }
        let (key, end) = PrefixKey::of(net);
        for r in &RESERVED {
            if r.family == key.family && key.start <= r.last() && r.start <= end {
                return Err(ConfigError::BadPrefix {
                    member: self.id.to_owned(),
                    prefix: net.to_string(),
                    why: format!(
                        "overlaps {} ({}), which is never routed to a member; \
                         use unicast addresses",
                        r.text, r.label
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A range no member prefix may touch: the datapath hands these to the
/// kernel, or they are not unicast.
struct Reserved {
    family: u8,
    start: u128,
    len: u8,
    text: &'static str,
    label: &'static str,
}

impl Reserved {
    fn last(&self) -> u128 {
        let bits = if self.family == 4 { 32 } else { 128 };
        self.start
            | u128::MAX
                .checked_shr(128 - bits + u32::from(self.len))
                .unwrap_or(0)
    }
}

const RESERVED: [Reserved; 8] = {
    const fn v4(start: u32, len: u8, text: &'static str, label: &'static str) -> Reserved {
        Reserved {
            family: 4,
            start: start as u128,
            len,
            text,
            label,
        }
    }
    const fn v6(start: u128, len: u8, text: &'static str, label: &'static str) -> Reserved {
        Reserved {
            family: 6,
            start,
            len,
            text,
            label,
        }
    }
    [
        v4(0x0000_0000, 8, "0.0.0.0/8", "\"this network\""),
        v4(0x7f00_0000, 8, "127.0.0.0/8", "loopback"),
        v4(0xa9fe_0000, 16, "169.254.0.0/16", "link-local"),
        v4(0xe000_0000, 4, "224.0.0.0/4", "multicast"),
        v4(0xf000_0000, 4, "240.0.0.0/4", "reserved and broadcast"),
        v6(
            0,
            8,
            "::/8",
            "reserved: unspecified, loopback and IPv4-mapped",
        ),
        v6(0xfe80 << 112, 10, "fe80::/10", "link-local"),
        v6(0xff00 << 112, 8, "ff00::/8", "multicast"),
    ]
};

/// Reading and validating.
impl Config {
    /// Parses and validates a configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Toml {
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file. Errors name the file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|error| ConfigError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// [`Config::from_file`] for a large file: the configuration without
    /// its members, and its members kept compactly ([`MemberStore`], origin
    /// `config`). The `[[member]]` tables are parsed a batch at a time while
    /// the file is read, so that a million of them never exist as one TOML
    /// document or as `Member`s. Any error (or any construct this reading
    /// does not follow, such as a multi-line string) falls back to
    /// [`Config::from_file`], whose errors are therefore the ones reported.
    pub fn read(path: &Path) -> Result<(Config, MemberStore), ConfigError> {
        match read_in_batches(path) {
            Ok(Some(split)) => Ok(split),
            Ok(None) | Err(_) => {
                let mut config = Config::from_file(path)?;
                let members = std::mem::take(&mut config.members);
                let mut store = MemberStore::with_capacity(members.len());
                for m in &members {
                    store
                        .push(m.as_in(), Origin::Config)
                        .map_err(|e| ConfigError::InFile {
                            path: path.to_owned(),
                            error: Box::new(ConfigError::Toml {
                                message: e.to_string(),
                            }),
                        })?;
                }
                Ok((config, store))
            }
        }
    }

    /// Checks every rule of the [module documentation](self).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.datapath.validate()?;
        self.api.validate()?;

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

/// [`Config::read`]'s reading: `None` when the file needs the whole-file
/// reading (a construct not followed here, or an error anywhere: the
/// whole-file reading then reports it the usual way).
fn read_in_batches(path: &Path) -> std::io::Result<Option<(Config, MemberStore)>> {
    use std::io::BufRead as _;
    /// `[[member]]` tables parsed at once.
    const BATCH: usize = 1024;
    #[derive(Deserialize)]
    struct Batch {
        member: Vec<Member>,
    }
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut head = String::new();
    let mut batch = String::new();
    let mut in_batch = 0usize;
    let mut in_member = false;
    let mut store = MemberStore::new();
    let flush = |batch: &mut String, in_batch: &mut usize, store: &mut MemberStore| -> bool {
        if *in_batch == 0 {
            return true;
        }
        let parsed: Result<Batch, _> = toml::from_str(batch);
        batch.clear();
        *in_batch = 0;
        let Ok(parsed) = parsed else {
            return false;
        };
        parsed
            .member
            .iter()
            .all(|m| m.validate_fields().is_ok() && store.push(m.as_in(), Origin::Config).is_ok())
    };
    for line in reader.lines() {
        let line = line?;
        if line.contains("\"\"\"") || line.contains("'''") {
            return Ok(None);
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            // A table header: [[member]] starts a member table, anything else
            // ends it. (A nested array spilling over lines would break the
            // TOML of its table, which falls back.)
            let bare: String = trimmed
                .split('#')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            in_member = bare == "[[member]]";
            if in_member {
                if in_batch == BATCH && !flush(&mut batch, &mut in_batch, &mut store) {
                    return Ok(None);
                }
                in_batch += 1;
                batch.push_str("[[member]]\n");
                continue;
            }
        }
        let to = if in_member { &mut batch } else { &mut head };
        to.push_str(&line);
        to.push('\n');
    }
    if !flush(&mut batch, &mut in_batch, &mut store) {
        return Ok(None);
    }
    let Ok(config) = toml::from_str::<Config>(&head) else {
        return Ok(None);
    };
    if !config.members.is_empty() || config.validate().is_err() {
        return Ok(None);
    }
    if check_count(store.len(), config.datapath.max_members).is_err() {
        return Ok(None);
    }
    let access = config.access_interfaces();
    let mut claims = Claims::with_capacity(store.len());
    for (n, m) in store.iter() {
        if !access.contains(m.interface()) {
            return Ok(None);
        }
        for p in m.prefixes() {
            claims.add(n, &p);
        }
    }
    if claims.first_overlap().is_some() {
        return Ok(None);
    }
    Ok(Some((config, store)))
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
            return Err(ConfigError::DuplicateId {
                member: member.id.clone(),
            });
        }
        for net in &member.prefixes {
            claims.add(i as u32, net);
        }
    }
    match claims.first_overlap() {
        None => Ok(()),
        Some(o) => Err(o.error(|i| members[i as usize].borrow().id.clone())),
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

/// The prefixes of a member set, each with the number of its member, to
/// find overlaps in O(n log n): the prefixes of each family are sorted by
/// (first address, length), and as CIDR prefixes are either nested or
/// disjoint, any overlap shows between two neighbours.
#[derive(Debug, Default)]
pub struct Claims {
    v4: Vec<(u32, u8, u32)>,
    /// The address as four big-endian words (24 bytes a claim, where a
    /// `u128` would align it to 32).
    v6: Vec<([u32; 4], u8, u32)>,
}

/// Two overlapping prefixes found by [`Claims::first_overlap`]: `member`
/// is the later of the two members (by number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlapFound {
    pub member: u32,
    pub prefix: IpNet,
    pub other: u32,
    pub other_prefix: IpNet,
}

impl OverlapFound {
    /// The configuration error, with the members' ids.
    pub fn error(&self, id: impl Fn(u32) -> String) -> ConfigError {
        ConfigError::Overlap {
            member: id(self.member),
            prefix: self.prefix,
            other_member: id(self.other),
            other_prefix: self.other_prefix,
        }
    }
}

impl Claims {
    /// Room for about `members` members of one prefix per family.
    pub fn with_capacity(members: usize) -> Claims {
        Claims {
            v4: Vec::with_capacity(members),
            v6: Vec::with_capacity(members),
        }
    }

    /// Member number `member` claims `net` (without host bits).
    pub fn add(&mut self, member: u32, net: &IpNet) {
        match net {
            IpNet::V4(n) => self.v4.push((n.network().into(), n.prefix_len(), member)),
            IpNet::V6(n) => self
                .v6
                .push((words(n.network().into()), n.prefix_len(), member)),
        }
    }

    /// Sorts the claims and returns the first two that overlap.
    pub fn first_overlap(&mut self) -> Option<OverlapFound> {
        fn first<T: Ord + Copy>(
            claims: &mut [(T, u8, u32)],
            last: impl Fn(T, u8) -> T,
            net: impl Fn(T, u8) -> IpNet,
        ) -> Option<OverlapFound> {
            claims.sort_unstable();
            claims
                .windows(2)
                .find(|w| w[1].0 <= last(w[0].0, w[0].1))
                .map(|w| {
                    let (a, b) = (w[0], w[1]);
                    let (later, earlier) = if a.2 > b.2 { (a, b) } else { (b, a) };
                    OverlapFound {
                        member: later.2,
                        prefix: net(later.0, later.1),
                        other: earlier.2,
                        other_prefix: net(earlier.0, earlier.1),
                    }
                })
        }
        first(
            &mut self.v4,
            |start, len| start | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0),
            |start, len| IpNet::V4(Ipv4Net::new(start.into(), len).expect("valid length")),
        )
        .or_else(|| {
            first(
                &mut self.v6,
                |start, len| {
                    words(unwords(start) | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
                },
                |start, len| {
                    IpNet::V6(Ipv6Net::new(unwords(start).into(), len).expect("valid length"))
                },
            )
        })
    }
}

/// A 128-bit address as four big-endian words: they sort as the address.
fn words(a: u128) -> [u32; 4] {
    [
        (a >> 96) as u32,
        (a >> 64) as u32,
        (a >> 32) as u32,
        a as u32,
    ]
}

fn unwords(w: [u32; 4]) -> u128 {
    (u128::from(w[0]) << 96)
        | (u128::from(w[1]) << 64)
        | (u128::from(w[2]) << 32)
        | u128::from(w[3])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PrefixKey {
    family: u8,
    start: u128,
    len: u8,
}

impl PrefixKey {
    /// The key of `net` (assumed without host bits) and its last address.
    fn of(net: &IpNet) -> (PrefixKey, u128) {
        let (family, start, end) = match net {
            IpNet::V4(n) => (
                4,
                u128::from(u32::from(n.network())),
                u128::from(u32::from(n.broadcast())),
            ),
            IpNet::V6(n) => (6, u128::from(n.network()), u128::from(n.broadcast())),
        };
        let key = PrefixKey {
            family,
            start,
            len: net.prefix_len(),
        };
        (key, end)
    }
}

// ---------------------------------------------------------------------------
// Field checks
// ---------------------------------------------------------------------------

/// Checks a member id alone: 1-[`MAX_ID_LEN`] characters of
/// `[A-Za-z0-9_.-]`.
pub fn validate_id(id: &str) -> Result<(), ConfigError> {
    check_id(id)
}

fn check_id(id: &str) -> Result<(), ConfigError> {
    let why = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_ID_LEN {
        format!("is {} characters long", id.len())
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        format!("contains {c:?}")
    } else {
        return Ok(());
    };
    Err(ConfigError::BadId {
        id: id.to_owned(),
        why,
    })
}

fn check_vlan(
    owner: impl FnOnce() -> Owner,
    field: &'static str,
    value: u16,
) -> Result<(), ConfigError> {
    if (VLAN_MIN..=VLAN_MAX).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::BadVlan {
            member_or_section: owner(),
            field,
            value,
        })
    }
}

fn check_mac(
    owner: impl FnOnce() -> Owner,
    field: &'static str,
    mac: MacAddr,
) -> Result<(), ConfigError> {
    let why = if mac.is_zero() {
        "all zeros"
    } else if mac.is_multicast() {
        "a multicast (group) address"
    } else {
        return Ok(());
    };
    Err(ConfigError::BadMac {
        member_or_section: owner(),
        field,
        value: mac,
        why,
    })
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

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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

/// What a field belongs to: a member (by id) or an uplink (by interface).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `[[member]]` with this id.
    Member(String),
    /// `[[uplink]]` with this interface.
    Uplink(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Member(id) => write!(f, "member {id:?}"),
            Owner::Uplink(interface) => write!(f, "[[uplink]] {interface:?}"),
        }
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
    /// A prefix with host bits set or in a reserved range.
    #[error("member {member:?}, prefixes: {prefix} {why}")]
    BadPrefix {
        member: String,
        prefix: String,
        why: String,
    },
    /// Two prefixes overlap, of two members or of the same one.
    #[error(
        "member {member:?}, prefixes: {prefix} overlaps {other_prefix} {}",
        overlap_tail(member, other_member)
    )]
    Overlap {
        member: String,
        prefix: IpNet,
        other_member: String,
        other_prefix: IpNet,
    },
    /// Two members with the same id.
    #[error("member {member:?}, id: declared more than once; member ids must be unique")]
    DuplicateId { member: String },
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
    /// A VLAN id outside 1..=4094.
    #[error(
        "{member_or_section}, {field}: {value} is not a usable VLAN id; allowed are {min}..={max}",
        min = VLAN_MIN,
        max = VLAN_MAX
    )]
    BadVlan {
        member_or_section: Owner,
        field: &'static str,
        value: u16,
    },
    /// `s_vlan` without `c_vlan`.
    #[error(
        "member {member:?}, s_vlan: an outer tag needs an inner tag; set c_vlan too \
         (or use c_vlan alone for a single 802.1Q tag)"
    )]
    SVlanWithoutCVlan { member: String },
    /// More members than `max_members`.
    #[error(
        "[datapath] max_members: {count} members are configured but max_members is {max}; \
         raise max_members (at most {limit})",
        limit = MAX_MEMBERS_LIMIT
    )]
    TooManyMembers { count: usize, max: u32 },
    /// A member id that is empty, too long or has a forbidden character.
    #[error(
        "member id {id:?} {why}; ids are 1-{max} characters of A-Z a-z 0-9 _ . -",
        max = MAX_ID_LEN
    )]
    BadId { id: String, why: String },
    /// A multicast or all-zero MAC.
    #[error("{member_or_section}, {field}: {value} is {why}; a unicast MAC address is required")]
    BadMac {
        member_or_section: Owner,
        field: &'static str,
        value: MacAddr,
        why: &'static str,
    },
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
    /// A member without prefixes.
    #[error("member {member:?}, prefixes: a member needs at least one prefix")]
    NoPrefixes { member: String },
    /// A member with more than [`MAX_PREFIXES`] prefixes.
    #[error(
        "member {member:?}, prefixes: {count} prefixes are listed; a member has at most \
         {max}; aggregate them into shorter prefixes",
        max = MAX_PREFIXES
    )]
    TooManyPrefixes { member: String, count: usize },
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

fn overlap_tail(member: &str, other: &str) -> String {
    if member == other {
        "of the same member; a member's prefixes must be disjoint".to_owned()
    } else {
        format!("of member {other:?}; prefixes of different members must not overlap")
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none is declared".to_owned()
    } else {
        items.join(", ")
    }
}

// ---------------------------------------------------------------------------
// MacAddr
// ---------------------------------------------------------------------------

/// An Ethernet MAC address. Parses `02:00:00:00:01:01` or `02-00-00-00-01-01`
/// in any case; displays (and serializes) as lowercase with colons.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// All zeros.
    pub const fn is_zero(self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0
    }

    /// The group bit is set (multicast, broadcast included).
    pub const fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Neither multicast nor all zeros: usable as a station's address.
    pub const fn is_unicast(self) -> bool {
        !self.is_zero() && !self.is_multicast()
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

/// A string that is not a MAC address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MAC address {input:?}: expected six two-digit hex octets separated by ':' or '-', \
     e.g. 02:00:00:00:01:01"
)]
pub struct MacParseError {
    /// The refused text.
    pub input: String,
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError {
            input: s.to_owned(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 17 {
            return Err(err());
        }
        let sep = bytes[2];
        if sep != b':' && sep != b'-' {
            return Err(err());
        }
        let hex = |c: u8| -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        };
        let mut octets = [0u8; 6];
        for (i, octet) in octets.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && bytes[at - 1] != sep {
                return Err(err());
            }
            let hi = hex(bytes[at]).ok_or_else(err)?;
            let lo = hex(bytes[at + 1]).ok_or_else(err)?;
            *octet = hi << 4 | lo;
        }
        Ok(MacAddr(octets))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MacAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MAC address such as \"02:00:00:00:01:01\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MacAddr, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Serde for `prefixes`: a list of "address/length" strings. (ipnet's own
/// serde support is a feature this workspace does not enable.)
mod prefix_list {
    use ipnet::IpNet;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(prefixes: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(prefixes.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        let raw = Vec::<String>::deserialize(deserializer)?;
        raw.iter()
            .map(|s| super::parse_prefix(s).map_err(D::Error::custom))
            .collect()
    }
}

/// Parses a member prefix, `address/length`, with the error message every
/// reader of prefixes gives.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        format!(
            "invalid prefix {s:?}: expected address/length, \
             e.g. 198.51.100.7/32 or 2001:db8:100::/48"
        )
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};

    const BASE: &str = r#"
[[uplink]]
interface = "core0"

[[access]]
interface = "acc0"

[[access]]
interface = "acc1"
"#;

    /// `BASE` plus `extra`, parsed and validated.
    fn parse_with(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}\n{extra}"))
    }

    fn member(id: &str, prefixes: &[&str]) -> Member {
        Member {
            id: id.to_owned(),
            interface: "acc0".to_owned(),
            s_vlan: None,
            c_vlan: None,
            mac: None,
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    const FULL: &str = r#"
[datapath]
pin_dir = "/sys/fs/bpf/test"
max_members = 1000
route_groups = 5000

[metrics]
listen = "[::1]:9100"

[api]
listen = "127.0.0.1:9571"
token_file = "/etc/collecte/token"

[log]
level = "collecte=debug,info"

[[uplink]]
interface = "core0"
gateway4 = "192.0.2.1"
gateway6 = "fe80::1"
gateway_mac = "02:00:00:00:00:01"
vlan = 200

[[access]]
interface = "acc0"

[[member]]
id = "alice"
interface = "acc0"
s_vlan = 10
c_vlan = 101
mac = "02-00-00-00-01-0A"
prefixes = ["198.51.100.7/32", "2001:db8:100::/48"]

[[member]]
id = "bob.b-2_"
interface = "acc0"
prefixes = ["198.51.100.8/29"]
"#;

    #[test]
    fn full_example_parses_and_round_trips() {
        let config = Config::parse(FULL).unwrap();
        assert_eq!(config.datapath.pin_dir, Path::new("/sys/fs/bpf/test"));
        assert_eq!(config.datapath.max_members, 1000);
        assert_eq!(config.datapath.route_groups(), 5000);
        assert_eq!(config.metrics.listen, "[::1]:9100".parse().unwrap());
        assert_eq!(config.api.listen.as_deref(), Some("127.0.0.1:9571"));
        assert_eq!(
            config.api.token_file.as_deref(),
            Some(Path::new("/etc/collecte/token"))
        );
        assert_eq!(config.log.level, "collecte=debug,info");
        let up = &config.uplinks[0];
        assert_eq!(up.interface, "core0");
        assert_eq!(up.gateway4, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(up.gateway6, Some("fe80::1".parse().unwrap()));
        assert_eq!(up.gateway_mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(up.vlan, Some(200));
        assert_eq!(
            config.access,
            vec![Access {
                interface: "acc0".into()
            }]
        );
        let alice = &config.members[0];
        assert_eq!(alice.s_vlan, Some(10));
        assert_eq!(alice.c_vlan, Some(101));
        assert_eq!(alice.mac, Some(MacAddr([2, 0, 0, 0, 1, 0x0a])));
        assert_eq!(
            alice.prefixes,
            vec![net("198.51.100.7/32"), net("2001:db8:100::/48")]
        );
        assert_eq!(config.members[1].id, "bob.b-2_");

        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("mac = \"02:00:00:00:01:0a\""), "{text}");
        let again = Config::parse(&text).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn member_serializes_in_config_shape() {
        let mut m = member("carol", &["203.0.113.0/28", "2001:db8:200::/56"]);
        m.c_vlan = Some(7);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "carol",
                "interface": "acc0",
                "c_vlan": 7,
                "prefixes": ["203.0.113.0/28", "2001:db8:200::/56"],
            })
        );
        let back: Member = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn defaults_applied() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.datapath.pin_dir, Path::new(DEFAULT_PIN_DIR));
        assert_eq!(config.datapath.max_members, 65536);
        assert_eq!(config.datapath.route_groups, None);
        assert_eq!(config.datapath.route_groups(), 65536 / 4 + 4096);
        assert_eq!(config.metrics.listen, "127.0.0.1:9570".parse().unwrap());
        assert_eq!(config.api, ApiConfig::default());
        assert!(config.api.listen.is_none() && config.api.token_file.is_none());
        assert_eq!(config.log.level, "info");
        assert!(config.uplinks.is_empty() && config.access.is_empty() && config.members.is_empty());
        assert_eq!(config, Config::default());

        let config = Config::parse("[datapath]\nmax_members = 1000\n").unwrap();
        assert_eq!(config.datapath.pin_dir, Path::new(DEFAULT_PIN_DIR));
        assert_eq!(config.datapath.route_groups(), 1000 / 4 + 4096);
        assert_eq!(
            DatapathConfig::default_route_groups(MAX_MEMBERS_LIMIT),
            MAX_ROUTE_GROUPS
        );
    }

    #[test]
    fn unknown_field_rejected() {
        for (text, key) in [
            ("[datapath]\nmax_member = 5\n", "max_member"),
            ("[metrics]\nlisten = \"127.0.0.1:1\"\nport = 3\n", "port"),
            (
                "[[uplink]]\ninterface = \"core0\"\ngateway = \"192.0.2.1\"\n",
                "gateway",
            ),
            ("[bogus]\n", "bogus"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
            assert!(err.to_string().contains(key), "{err}");
        }
        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefix = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
        assert!(err.to_string().contains("prefix"), "{err}");
    }

    #[test]
    fn toml_error_has_position() {
        let err = Config::parse("[datapath]\nmax_members = \"many\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
        assert!(err.to_string().contains("line 2"), "{err}");

        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7\"]\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
        assert!(
            err.to_string().contains("invalid prefix \"198.51.100.7\""),
            "{err}"
        );

        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nmac = \"02:00:00:00:01\"\nprefixes = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
        assert!(err.to_string().contains("invalid MAC address"), "{err}");
    }

    #[test]
    fn io_error_names_file() {
        let path = Path::new("/nonexistent/collecte-test.toml");
        let err = Config::from_file(path).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/collecte-test.toml"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_name_file() {
        let dir = std::env::temp_dir().join(format!("collecte-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[datapath]\nmax_members = 0\n").unwrap();
        let err = Config::from_file(&path).unwrap_err();
        assert!(matches!(err, ConfigError::InFile { .. }), "{err:?}");
        assert!(
            matches!(err.innermost(), ConfigError::BadMaxMembers { value: 0 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("bad.toml"), "{err}");
        assert!(err.to_string().contains("max_members"), "{err}");

        let good = dir.join("good.toml");
        std::fs::write(&good, FULL).unwrap();
        assert_eq!(
            Config::from_file(&good).unwrap(),
            Config::parse(FULL).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_prefix_host_bits() {
        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/24\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadPrefix { member, prefix, .. }
            if member == "alice" && prefix == "198.51.100.7/24"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("alice") && msg.contains("prefixes"), "{msg}");
        assert!(
            msg.contains("198.51.100.7/24 has host bits set; did you mean 198.51.100.0/24?"),
            "{msg}"
        );

        let err = member("bob", &["2001:db8:100:1::/48"])
            .validate_fields()
            .unwrap_err();
        assert!(
            err.to_string().contains("did you mean 2001:db8:100::/48?"),
            "{err}"
        );
    }

    #[test]
    fn bad_prefix_reserved() {
        for p in [
            "224.0.0.1/32",
            "0.0.0.0/0",
            "127.0.0.1/32",
            "169.254.1.0/24",
            "fe80::/64",
            "ff02::1/128",
            "::1/128",
            "::ffff:198.51.100.7/128",
        ] {
            let err = member("alice", &[p]).validate_fields().unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadPrefix { member, .. } if member == "alice"),
                "{p}: {err:?}"
            );
            assert!(
                err.to_string().contains("never routed to a member"),
                "{err}"
            );
        }
        for p in [
            "10.0.0.0/8",
            "100.64.0.1/32",
            "2001:db8::/32",
            "fc00::/7",
            "223.255.255.0/24",
        ] {
            member("alice", &[p]).validate_fields().unwrap();
        }
    }

    #[test]
    fn overlap_between_members() {
        let err = parse_with(
            r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.0/24"]

[[member]]
id = "bob"
interface = "acc1"
prefixes = ["2001:db8::/48", "198.51.100.128/25"]
"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, prefix, other_member, other_prefix }
                if member == "bob" && *prefix == net("198.51.100.128/25")
                && other_member == "alice" && *other_prefix == net("198.51.100.0/24")),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"bob\"") && msg.contains("\"alice\"") && msg.contains("prefixes"),
            "{msg}"
        );

        // The wider prefix coming second is caught too.
        let members = [
            member("a", &["2001:db8:1:2::/64"]),
            member("b", &["2001:db8::/32"]),
        ];
        let err = validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, other_member, .. }
            if member == "b" && other_member == "a"),
            "{err:?}"
        );
    }

    #[test]
    fn overlap_within_member() {
        let err = member(
            "alice",
            &["198.51.100.0/24", "2001:db8::/48", "198.51.100.7/32"],
        )
        .validate_fields()
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, prefix, other_member, other_prefix }
                if member == "alice" && other_member == "alice"
                && *prefix == net("198.51.100.7/32") && *other_prefix == net("198.51.100.0/24")),
            "{err:?}"
        );
        assert!(err.to_string().contains("same member"), "{err}");

        let err = member("alice", &["2001:db8::/48", "2001:db8::/48"])
            .validate_fields()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Overlap { .. }), "{err:?}");
    }

    #[test]
    fn disjoint_neighbours_accepted() {
        let members = [
            member("a", &["198.51.100.0/25", "2001:db8::/48"]),
            member("b", &["198.51.100.128/25", "2001:db8:1::/48"]),
            member("c", &["198.51.101.0/24", "2001:db8:0:ffff::/64"]),
        ];
        let err = validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, other_member, .. }
            if member == "c" && other_member == "a"),
            "{err:?}"
        );

        let members = [
            member("a", &["198.51.100.0/25", "2001:db8::/48"]),
            member("b", &["198.51.100.128/25", "2001:db8:1::/48"]),
            member("c", &["198.51.101.0/24", "2001:db8:2::/47"]),
        ];
        validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap();

        // Prefixes of the two families never collide.
        let mut claims = Claims::default();
        claims.add(0, &net("10.0.0.0/8"));
        claims.add(1, &net("::a00:0/104"));
        assert_eq!(claims.first_overlap(), None);
        claims.add(2, &net("::a00:0/112"));
        assert_eq!(
            claims.first_overlap().map(|o| (o.member, o.other)),
            Some((2, 1))
        );
    }

    #[test]
    fn duplicate_id() {
        let err = parse_with(
            r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.7/32"]

[[member]]
id = "alice"
interface = "acc1"
prefixes = ["198.51.100.8/32"]
"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::DuplicateId { member } if member == "alice"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("\"alice\"") && err.to_string().contains("unique"),
            "{err}"
        );
    }

    #[test]
    fn unknown_interface() {
        // An uplink is not an access interface.
        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"core0\"\nprefixes = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownInterface { member, interface, allowed }
            if member == "alice" && interface == "core0" && allowed == &["acc0", "acc1"]),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"alice\"") && msg.contains("interface") && msg.contains("acc0, acc1"),
            "{msg}"
        );
    }

    #[test]
    fn bad_vlan() {
        for (field, value) in [
            ("c_vlan", 0u16),
            ("c_vlan", 4095),
            ("s_vlan", 4095),
            ("s_vlan", 0),
        ] {
            let mut m = member("alice", &["198.51.100.7/32"]);
            m.c_vlan = Some(100);
            match field {
                "c_vlan" => m.c_vlan = Some(value),
                _ => m.s_vlan = Some(value),
            }
            let err = m.validate_fields().unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadVlan { member_or_section: Owner::Member(id), field: f, value: v }
                if id == "alice" && *f == field && *v == value),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("alice") && msg.contains(field) && msg.contains("1..=4094"),
                "{msg}"
            );
        }

        let err = Config::parse("[[uplink]]\ninterface = \"core0\"\nvlan = 4095\n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadVlan { member_or_section: Owner::Uplink(i), field: "vlan", value: 4095 }
            if i == "core0"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("[[uplink]] \"core0\", vlan"), "{msg}");

        let mut m = member("alice", &["198.51.100.7/32"]);
        m.s_vlan = Some(4094);
        m.c_vlan = Some(1);
        m.validate_fields().unwrap();
    }

    #[test]
    fn s_vlan_without_c_vlan() {
        let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\ns_vlan = 10\nprefixes = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::SVlanWithoutCVlan { member } if member == "alice"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("alice") && msg.contains("s_vlan") && msg.contains("c_vlan"),
            "{msg}"
        );
    }

    #[test]
    fn too_many_members() {
        let text = format!(
            "[datapath]\nmax_members = 2\n{BASE}{}",
            (0..3)
                .map(|i| format!("[[member]]\nid = \"m{i}\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.{i}/32\"]\n"))
                .collect::<String>()
        );
        let err = Config::parse(&text).unwrap_err();
        assert!(
            matches!(err, ConfigError::TooManyMembers { count: 3, max: 2 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("max_members"), "{err}");
    }

    #[test]
    fn bad_id() {
        let long = "x".repeat(65);
        for (id, why) in [
            ("", "is empty"),
            (long.as_str(), "65 characters"),
            ("al ice", "' '"),
            ("alice/1", "'/'"),
            ("élise", "'é'"),
        ] {
            let err = member(id, &["198.51.100.7/32"])
                .validate_fields()
                .unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadId { id: i, .. } if i == id),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(why) && msg.contains("A-Z a-z 0-9 _ . -"),
                "{msg}"
            );
            assert!(msg.contains(&format!("{id:?}")), "{msg}");
        }
        member(&"x".repeat(64), &["198.51.100.7/32"])
            .validate_fields()
            .unwrap();
        member("A.b-c_9", &["198.51.100.7/32"])
            .validate_fields()
            .unwrap();
    }

    #[test]
    fn bad_mac() {
        let mut m = member("alice", &["198.51.100.7/32"]);
        m.mac = Some("01:00:5e:00:00:01".parse().unwrap());
        let err = m.validate_fields().unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadMac { member_or_section: Owner::Member(id), field: "mac", .. }
            if id == "alice"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("alice") && msg.contains("mac") && msg.contains("multicast"),
            "{msg}"
        );

        m.mac = Some(MacAddr::BROADCAST);
        assert!(matches!(
            m.validate_fields(),
            Err(ConfigError::BadMac { .. })
        ));

        let err = Config::parse(
            "[[uplink]]\ninterface = \"core0\"\ngateway_mac = \"00:00:00:00:00:00\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadMac { member_or_section: Owner::Uplink(i), field: "gateway_mac", .. }
            if i == "core0"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("core0") && msg.contains("gateway_mac") && msg.contains("all zeros"),
            "{msg}"
        );
    }

    #[test]
    fn mac_parse_and_display() {
        let mac: MacAddr = "02:AB:cd:00:01:ff".parse().unwrap();
        assert_eq!(mac, MacAddr([0x02, 0xab, 0xcd, 0x00, 0x01, 0xff]));
        assert_eq!(mac.to_string(), "02:ab:cd:00:01:ff");
        assert_eq!("02-AB-CD-00-01-FF".parse::<MacAddr>().unwrap(), mac);
        assert!(mac.is_unicast() && !mac.is_multicast() && !mac.is_zero());
        assert!(MacAddr::ZERO.is_zero() && !MacAddr::ZERO.is_unicast());
        assert!(MacAddr::BROADCAST.is_multicast());
        for bad in [
            "",
            "02:00:00:00:01",
            "02:00:00:00:01:01:01",
            "02:00-00:00:01:01",
            "02.00.00.00.01.01",
            "0g:00:00:00:01:01",
            "+2:00:00:00:01:01",
            "0200:00:00:01:01:",
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("02:00:00:00:01:01"), "{err}");
        }
    }

    #[test]
    fn duplicate_interface() {
        let err =
            Config::parse("[[uplink]]\ninterface = \"eth0\"\n[[access]]\ninterface = \"eth0\"\n")
                .unwrap_err();
        assert!(
            matches!(&err, ConfigError::DuplicateInterface { interface, first: Section::Uplink, second: Section::Access }
            if interface == "eth0"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"eth0\"") && msg.contains("[[uplink]]") && msg.contains("[[access]]"),
            "{msg}"
        );

        let err =
            Config::parse("[[access]]\ninterface = \"acc0\"\n[[access]]\ninterface = \"acc0\"\n")
                .unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::DuplicateInterface {
                    first: Section::Access,
                    second: Section::Access,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn bad_interface_name_and_count() {
        for name in ["", "an-interface-name", "eth0:1", "a b", ".."] {
            let err = Config::parse(&format!("[[access]]\ninterface = {name:?}\n")).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadInterface { section: Section::Access, interface, .. }
                if interface == name),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains("[[access]] interface"), "{err}");
        }
        let text: String = (0..MAX_INTERFACES + 1)
            .map(|i| format!("[[access]]\ninterface = \"acc{i}\"\n"))
            .collect();
        let err = Config::parse(&text).unwrap_err();
        assert!(
            matches!(err, ConfigError::TooManyInterfaces { count: 64 }),
            "{err:?}"
        );
        let text: String = (0..MAX_INTERFACES)
            .map(|i| format!("[[access]]\ninterface = \"acc{i}\"\n"))
            .collect();
        Config::parse(&text).unwrap();
    }

    #[test]
    fn bad_max_members() {
        for value in [0, MAX_MEMBERS_LIMIT + 1] {
            let err = Config::parse(&format!("[datapath]\nmax_members = {value}\n")).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadMaxMembers { value: v } if v == value),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("[datapath] max_members")
                    && msg.contains(&format!("1..={MAX_MEMBERS_LIMIT}")),
                "{msg}"
            );
        }
        Config::parse(&format!("[datapath]\nmax_members = {MAX_MEMBERS_LIMIT}\n")).unwrap();
    }

    #[test]
    fn bad_route_groups() {
        for value in [0, MAX_ROUTE_GROUPS + 1] {
            let err = Config::parse(&format!("[datapath]\nroute_groups = {value}\n")).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadRouteGroups { value: v } if v == value),
                "{err:?}"
            );
            assert!(err.to_string().contains("[datapath] route_groups"), "{err}");
        }
        // Both halves of the largest table stay addressable.
        assert!(2 * u64::from(route::half_entries(MAX_ROUTE_GROUPS)) <= u64::from(u32::MAX));
    }

    #[test]
    fn bad_pin_dir() {
        let err = Config::parse("[datapath]\npin_dir = \"relative/dir\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::BadPinDir { .. }), "{err:?}");
        assert!(err.to_string().contains("pin_dir"), "{err}");
    }

    #[test]
    fn state_path_and_api_settings() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.datapath.state, Path::new(DEFAULT_STATE_PATH));
        assert_eq!(config.api.body_limit, DEFAULT_BODY_LIMIT);
        assert_eq!(config.api.endpoint().unwrap(), None);

        let err = Config::parse("[datapath]\nstate = \"state.json\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::BadStatePath { .. }), "{err:?}");

        let config = Config::parse(
            "[api]\nlisten = \"unix:/run/collecte/api.sock\"\ntoken_file = \"/t\"\nbody_limit = \"1 GiB\"\n",
        )
        .unwrap();
        assert_eq!(
            config.api.endpoint().unwrap(),
            Some(ApiEndpoint::Unix("/run/collecte/api.sock".into()))
        );
        assert_eq!(config.api.body_limit, ByteSize(1 << 30));
        let config =
            Config::parse("[api]\nlisten = \"[::1]:80\"\ntoken_file = \"/t\"\nbody_limit = 4096\n")
                .unwrap();
        assert_eq!(
            config.api.endpoint().unwrap(),
            Some(ApiEndpoint::Tcp("[::1]:80".parse().unwrap()))
        );
        assert_eq!(config.api.body_limit, ByteSize(4096));
        let text = toml::to_string(&config).unwrap();
        assert_eq!(Config::parse(&text).unwrap(), config);

        for (text, field) in [
            ("[api]\nlisten = \"127.0.0.1:1\"\n", "token_file"),
            (
                "[api]\nlisten = \"localhost\"\ntoken_file = \"/t\"\n",
                "listen",
            ),
            (
                "[api]\nlisten = \"unix:rel.sock\"\ntoken_file = \"/t\"\n",
                "listen",
            ),
            ("[api]\nbody_limit = 10\n", "body_limit"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadApi { field: f, .. } if f == field),
                "{text}: {err:?}"
            );
        }
        let err = Config::parse("[api]\nbody_limit = \"12 parsecs\"\n").unwrap_err();
        assert!(err.to_string().contains("invalid size"), "{err}");
    }

    #[test]
    fn byte_sizes() {
        for (text, bytes) in [
            ("0", 0),
            ("512B", 512),
            ("256MiB", 256 << 20),
            ("256 mib", 256 << 20),
            ("2kB", 2000),
            ("3MB", 3_000_000),
            ("1GiB", 1 << 30),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "MiB", "-1", "1.5MiB", "99999999999999GiB", "1 TB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(DEFAULT_BODY_LIMIT.to_string(), "256MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn bad_gateway() {
        let err = Config::parse("[[uplink]]\ninterface = \"core0\"\ngateway4 = \"224.0.0.1\"\n")
            .unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadGateway { uplink, field: "gateway4", .. } if uplink == "core0"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("core0") && err.to_string().contains("gateway4"),
            "{err}"
        );
        let err =
            Config::parse("[[uplink]]\ninterface = \"core0\"\ngateway6 = \"::\"\n").unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::BadGateway {
                    field: "gateway6",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn no_prefixes() {
        for prefixes in ["prefixes = []\n", ""] {
            let err = parse_with(&format!(
                "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\n{prefixes}"
            ))
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::NoPrefixes { member } if member == "alice"),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("alice") && msg.contains("prefixes"), "{msg}");
        }
    }

    #[test]
    fn shared_attachment_allowed() {
        let config = parse_with(
            r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.7/32"]

[[member]]
id = "bob"
interface = "acc0"
prefixes = ["198.51.100.8/32"]

[[member]]
id = "carol"
interface = "acc1"
s_vlan = 10
c_vlan = 20
prefixes = ["198.51.100.9/32"]

[[member]]
id = "dave"
interface = "acc1"
s_vlan = 10
c_vlan = 20
prefixes = ["198.51.100.10/32"]
"#,
        )
        .unwrap();
        assert_eq!(config.members.len(), 4);
    }

    #[test]
    fn many_members_validate() {
        const N: u32 = 100_000;
        let members: Vec<Member> = (0..N)
            .map(|i| {
                let v4 = Ipv4Addr::from(0x0a00_0000 + i); // 10.0.0.0 + i
                let v6 = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
                Member {
                    id: format!("m{i}"),
                    interface: "acc0".to_owned(),
                    s_vlan: Some((i % 4094 + 1) as u16),
                    c_vlan: Some(((i / 4094) % 4094 + 1) as u16),
                    mac: None,
                    prefixes: vec![
                        IpNet::V4(Ipv4Net::new(v4, 32).unwrap()),
                        IpNet::V6(Ipv6Net::new(v6, 64).unwrap()),
                    ],
                }
            })
            .collect();
        let access = HashSet::from(["acc0"]);
        validate_members(&members, &access, N).unwrap();
        let err = validate_members(&members, &access, N - 1).unwrap_err();
        assert!(matches!(err, ConfigError::TooManyMembers { count, .. } if count == N as usize));

        // One member in the middle overlapping another deep in the table.
        let mut bad = members.clone();
        bad[70_000].prefixes.push(net("10.0.0.0/24"));
        let err = validate_members(&bad, &access, N).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, other_member, other_prefix, .. }
            if member == "m70000" && other_member == "m0" && *other_prefix == net("10.0.0.0/32")),
            "{err:?}"
        );

        let mut bad = members;
        bad[N as usize - 1].prefixes[1] = net("2001:db8:0:1234::/64");
        let err = validate_members(&bad, &access, N).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Overlap { member, other_member, .. }
            if member == "m99999" && other_member == "m4660"),
            "{err:?}"
        );
    }

    /// `Config::read` gives what `Config::from_file` gives, member for
    /// member, or the same error, whatever the file's layout.
    #[test]
    fn reading_in_batches_agrees_with_the_whole_file() {
        let dir = std::env::temp_dir().join(format!("collecte-config-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        let many: String = (0..3000)
            .map(|i| {
                format!(
                    "[[member]] # {i}\nid = \"m{i}\"\ninterface = \"acc0\"\nprefixes = [\n  \"10.{}.{}.0/24\",\n]\n\n",
                    i / 256,
                    i % 256
                )
            })
            .collect();
        let cases = [
            FULL.to_string(),
            FULL.replace('\n', "\r\n"),
            // Members before the interfaces and settings after them.
            format!(
                "[[member]]\nid = \"z\"\ninterface = \"acc0\"\nprefixes = [\"203.0.113.9/32\"]\n{FULL}"
            ),
            format!(
                "[[access]]\ninterface = \"acc0\"\n[datapath]\nmax_members = 4000\n{many}[log]\nlevel = \"warn\"\n"
            ),
            // Constructs read the whole-file way.
            FULL.replace(
                "level = \"collecte=debug,info\"",
                "level = \"\"\"collecte=debug,info\"\"\"",
            ),
            FULL.replace("[[member]]\nid = \"alice\"", "[[ member ]]\nid = \"alice\""),
            // Errors: the whole-file reading's.
            FULL.replace("bob.b-2_", "alice"),
            FULL.replace("198.51.100.8/29", "198.51.100.0/29"),
            FULL.replace(
                "interface = \"acc0\"\nprefixes = [\"198.51.100.8/29\"]",
                "interface = \"acc9\"\nprefixes = [\"198.51.100.8/29\"]",
            ),
            FULL.replace("max_members = 1000", "max_members = 1"),
            FULL.replace(
                "prefixes = [\"198.51.100.8/29\"]",
                "prefixes = [\"198.51.100.8/29\"\ncolour = 1",
            ),
            FULL.replace(
                "[[member]]\nid = \"bob.b-2_\"",
                "[member.x]\nid = \"bob.b-2_\"",
            ),
            format!(
                "{FULL}\n[[member]]\nid = \"x\"\ninterface = \"acc0\"\nprefixes = [\n[\"198.51.100.99/32\"]]\n"
            ),
        ];
        for (k, text) in cases.iter().enumerate() {
            std::fs::write(&path, text).unwrap();
            // The valid ones without a multi-line string are read in
            // batches, not the whole-file way.
            let batched = k < 4 || k == 5;
            assert_eq!(
                read_in_batches(&path).unwrap().is_some(),
                batched,
                "case {k}"
            );
            let whole = Config::from_file(&path);
            let read = Config::read(&path);
            match (whole, read) {
                (Ok(mut w), Ok((c, members))) => {
                    let wm = std::mem::take(&mut w.members);
                    assert_eq!(w, c, "case {k}");
                    let rm: Vec<Member> = members.iter().map(|(_, m)| m.to_member()).collect();
                    assert_eq!(wm, rm, "case {k}");
                }
                (Err(w), Err(r)) => assert_eq!(w.to_string(), r.to_string(), "case {k}"),
                (w, r) => panic!("case {k}: {w:?} vs {:?}", r.map(|(c, _)| c)),
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
