//! The TOML schema: every table and field of the configuration file, with
//! its default. Checking a configuration is [`super::validate`]'s job,
//! reading one [`super::read`]'s.
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

use router_common::{MAX_IFACES, route};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pppoe::{PppoeConfig, RadiusConfig};
use super::routes::RoutesConfig;
use super::units::number_and_unit;
use crate::member::{MacAddr, Member};

/// Default `[datapath] pin_dir`.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/collecte";
/// Default `[datapath] max_members`.
pub const DEFAULT_MAX_MEMBERS: u32 = 65536;
/// Default `[metrics] listen`.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 9570));
/// Default `[datapath] state`: where the members added through the
/// provisioning API are kept (the daemon's state file).
pub const DEFAULT_STATE_PATH: &str = "/var/lib/collecte/state.json";
/// Default `[api] body_limit`: 256 MiB, room for a full sync of 1,000,000
/// members of up to ~260 bytes of JSON each (a typical member takes 100-150).
pub const DEFAULT_BODY_LIMIT: ByteSize = ByteSize(256 << 20);
/// Smallest `[api] body_limit`.
pub const MIN_BODY_LIMIT: ByteSize = ByteSize(1024);
/// Default `[log] level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Longest Linux interface name (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;
/// Most interfaces (uplinks and access together) the datapath has slots for:
/// slot 0 is reserved for "unknown interface".
pub const MAX_INTERFACES: usize = MAX_IFACES as usize - 1;
/// Most route groups: both halves of the prefix table, root groups included,
/// must stay addressable by a `u32` entry index.
pub const MAX_ROUTE_GROUPS: u32 = u32::MAX / 2 / route::GROUP_ENTRIES - route::FIRST_GROUP;

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
    /// `[edge]`.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// `[routes]`: the kernel table of member routes; none without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RoutesConfig>,
    /// `[pppoe]`: PPPoE access; none without it. Needs `[radius]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pppoe: Option<PppoeConfig>,
    /// `[radius]`: the RADIUS servers of PPPoE sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<RadiusConfig>,
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
    /// (the daemon's state file); its directory must be writable when the API
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
        let bad = || {
            format!(
                "invalid size {s:?}: expected a number of bytes with an optional unit \
                 (B, kB, MB, GB, KiB, MiB, GiB), e.g. \"256MiB\""
            )
        };
        let (n, unit) = number_and_unit(s).ok_or_else(bad)?;
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
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

/// Default `[edge] icmp_rate`.
pub const DEFAULT_ICMP_RATE: u32 = 1000;
/// Default `[edge] icmp_burst`.
pub const DEFAULT_ICMP_BURST: u32 = 100;
/// Default `[edge] router_lifetime`: RFC 4861's default, 3 × the default
/// MaxRtrAdvInterval.
pub const DEFAULT_ROUTER_LIFETIME: u32 = 1800;
/// Default `[edge] ra_interval`: RFC 4861's default MinRtrAdvInterval.
pub const DEFAULT_RA_INTERVAL: u32 = 200;
/// Default `[edge] ra_hop_limit`: the Cur Hop Limit advertised.
pub const DEFAULT_RA_HOP_LIMIT: u8 = 64;
/// Longest router lifetime an RA may carry (RFC 4861 §6.2.1).
pub const MAX_ROUTER_LIFETIME: u32 = 9000;
/// `ra_interval` bounds (RFC 4861 §6.2.1: MaxRtrAdvInterval 4..=1800 s).
pub const RA_INTERVAL_MIN: u32 = 4;
pub const RA_INTERVAL_MAX: u32 = 1800;
/// Largest `icmp_rate` and `icmp_burst`.
pub const MAX_ICMP_RATE: u32 = 1_000_000;

/// `[edge]`: what the fast path answers itself on members' lines (ARP and
/// NDP for the gateway addresses, router advertisements, echo replies) and
/// the ICMP errors it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Echo replies and ICMP errors (time exceeded, fragmentation needed,
    /// packet too big) the fast path sends, per second and per CPU; 0
    /// sends none (the packets go to the kernel as before).
    pub icmp_rate: u32,
    /// How many of them may go out at once, after a quiet time.
    pub icmp_burst: u32,
    /// Router lifetime of the router advertisements, in seconds: 0 or
    /// `ra_interval..=9000` (0: members do not take the router as their
    /// default router).
    pub router_lifetime: u32,
    /// Seconds between the unsolicited router advertisements sent on each
    /// attachment where an IPv6 member lives (4..=1800).
    pub ra_interval: u32,
    /// Cur Hop Limit of the router advertisements (0: unspecified).
    pub ra_hop_limit: u8,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            icmp_rate: DEFAULT_ICMP_RATE,
            icmp_burst: DEFAULT_ICMP_BURST,
            router_lifetime: DEFAULT_ROUTER_LIFETIME,
            ra_interval: DEFAULT_RA_INTERVAL,
            ra_hop_limit: DEFAULT_RA_HOP_LIMIT,
        }
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

/// `[[access]]`: an interface where members' lines arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Linux interface name.
    pub interface: String,
}
