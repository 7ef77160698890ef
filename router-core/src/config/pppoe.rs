//! `[pppoe]` and `[radius]`: PPPoE access, its sessions authenticated and
//! accounted by RADIUS.
//!
//! ```toml
//! [pppoe]
//! interfaces = ["acc0"]          # [[access]] interfaces that accept PPPoE discovery
//! ac_name = "collecte"           # default: the AC-Name tag of PADO/PADS
//! mru = 1492                     # default; 576..=1492
//! echo_interval = 30             # default: seconds between LCP echo requests
//! echo_failures = 3              # default: unanswered echoes before the session ends
//!
//! [radius]
//! servers = ["127.0.0.1:1812"]              # tried in order
//! accounting_servers = ["127.0.0.1:1813"]   # default: the servers' hosts, port 1813
//! secret_file = "/etc/collecte/radius.secret"   # required; mode 0600, like the API token
//! nas_identifier = "collecte"   # default
//! interim_interval = 300        # default: seconds between Interim-Updates (10 or more)
//! timeout = "3s"                # default: wait for an answer, per try
//! retries = 3                   # default: tries per server
//! ```
//!
//! The MRU stops at 1492: a PPPoE session over an Ethernet of MTU 1500 has
//! 1500 − 8 bytes for PPP, and the larger MRUs of RFC 4638 (PPP-Max-Payload)
//! are not negotiated. The rules are checked in [`super::validate`].
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::number_and_unit;

/// Default `[pppoe] ac_name`.
pub const DEFAULT_AC_NAME: &str = "collecte";
/// Default `[pppoe] mru`.
pub const DEFAULT_MRU: u16 = 1492;
/// Smallest `[pppoe] mru` (RFC 1661's default MRU is 1500; 576 is the
/// smallest IPv4 datagram every host takes).
pub const MIN_MRU: u16 = 576;
/// Largest `[pppoe] mru`: 1500 − the 6-byte PPPoE header − the 2-byte PPP
/// protocol (RFC 2516; RFC 4638's larger payloads are not supported).
pub const MAX_MRU: u16 = 1492;
/// Default `[pppoe] echo_interval`, in seconds.
pub const DEFAULT_ECHO_INTERVAL: u32 = 30;
/// Largest `[pppoe] echo_interval`, in seconds.
pub const MAX_ECHO_INTERVAL: u32 = 3600;
/// Default `[pppoe] echo_failures`.
pub const DEFAULT_ECHO_FAILURES: u32 = 3;
/// Default `[radius] nas_identifier`.
pub const DEFAULT_NAS_IDENTIFIER: &str = "collecte";
/// Default `[radius] interim_interval`, in seconds.
pub const DEFAULT_INTERIM_INTERVAL: u32 = 300;
/// Smallest `[radius] interim_interval`, in seconds (RFC 2869 advises 60 or
/// more; 10 lets tests see an Interim-Update quickly).
pub const MIN_INTERIM_INTERVAL: u32 = 10;
/// Default `[radius] timeout`.
pub const DEFAULT_RADIUS_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest `[radius] timeout`.
pub const MAX_RADIUS_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `[radius] retries`.
pub const DEFAULT_RADIUS_RETRIES: u32 = 3;
/// Largest `[radius] retries`.
pub const MAX_RADIUS_RETRIES: u32 = 20;
/// The RADIUS accounting port (RFC 2866), for the default accounting servers.
pub const ACCOUNTING_PORT: u16 = 1813;
/// Longest `nas_identifier` or `ac_name`: one RADIUS attribute or PPPoE tag
/// of text fits 253 bytes.
pub const MAX_NAME_LEN: usize = 253;

/// `[pppoe]`: the access interfaces where PPPoE sessions are set up, and the
/// settings of their discovery and LCP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PppoeConfig {
    /// `[[access]]` interfaces that answer PPPoE discovery (PADI).
    pub interfaces: Vec<String>,
    /// The AC-Name tag of PADO and PADS.
    #[serde(default = "default_ac_name")]
    pub ac_name: String,
    /// The MRU offered in LCP (576..=1492).
    #[serde(default = "default_mru")]
    pub mru: u16,
    /// Seconds between LCP echo requests on an idle session (1..=3600).
    #[serde(default = "default_echo_interval")]
    pub echo_interval: u32,
    /// Unanswered echo requests after which the session ends (1 or more).
    #[serde(default = "default_echo_failures")]
    pub echo_failures: u32,
}

impl PppoeConfig {
    /// `echo_interval` as a duration.
    pub fn echo_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.echo_interval))
    }
}

/// `[radius]`: the servers that authenticate and account PPPoE sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    /// Authentication servers, `HOST:PORT` (`[v6]:PORT` for IPv6), tried in
    /// order.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Accounting servers, `HOST:PORT`, tried in order; empty (the default)
    /// for the `servers`' hosts on port 1813. Read it through
    /// [`RadiusConfig::accounting_servers`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounting_servers: Vec<String>,
    /// The file holding the shared secret: mode 0600 or stricter, not empty.
    /// Read by the daemon, like the API token file.
    pub secret_file: PathBuf,
    /// The NAS-Identifier of every request.
    #[serde(default = "default_nas_identifier")]
    pub nas_identifier: String,
    /// Seconds between accounting Interim-Updates (10 or more).
    #[serde(default = "default_interim_interval")]
    pub interim_interval: u32,
    /// How long to wait for an answer before trying again.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Tries per server before the next server (1..=20).
    #[serde(default = "default_retries")]
    pub retries: u32,
}

impl RadiusConfig {
    /// The accounting servers: `accounting_servers`, or each of `servers`
    /// with port 1813 when it is empty.
    pub fn accounting_servers(&self) -> Vec<String> {
        if !self.accounting_servers.is_empty() {
            return self.accounting_servers.clone();
        }
        self.servers
            .iter()
            .filter_map(|s| split_host_port(s).ok())
            .map(|(host, _)| {
                if host.contains(':') {
                    format!("[{host}]:{ACCOUNTING_PORT}")
                } else {
                    format!("{host}:{ACCOUNTING_PORT}")
                }
            })
            .collect()
    }

    /// `interim_interval` as a duration.
    pub fn interim_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interim_interval))
    }
}

fn default_ac_name() -> String {
    DEFAULT_AC_NAME.to_owned()
}
fn default_mru() -> u16 {
    DEFAULT_MRU
}
fn default_echo_interval() -> u32 {
    DEFAULT_ECHO_INTERVAL
}
fn default_echo_failures() -> u32 {
    DEFAULT_ECHO_FAILURES
}
fn default_nas_identifier() -> String {
    DEFAULT_NAS_IDENTIFIER.to_owned()
}
fn default_interim_interval() -> u32 {
    DEFAULT_INTERIM_INTERVAL
}
fn default_timeout() -> Seconds {
    Seconds(DEFAULT_RADIUS_TIMEOUT)
}
fn default_retries() -> u32 {
    DEFAULT_RADIUS_RETRIES
}

/// A duration written as `"3s"`, `"1500ms"`, `"1m"` or a number of
/// seconds (`3`). Serializes as a string (`"3s"` or `"1500ms"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid duration {s:?}: expected a number with a unit ms, s or m, \
                 e.g. \"3s\" or \"500ms\""
            )
        };
        let (n, unit) = number_and_unit(s).ok_or_else(bad)?;
        let ms = match unit {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            _ => None,
        }
        .ok_or_else(bad)?;
        Ok(Seconds(Duration::from_millis(ms)))
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"3s\" or \"500ms\", or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|v| Seconds(Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: it is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Splits `HOST:PORT` (`[V6]:PORT` for an IPv6 address) into its host and a
/// non-zero port. The error says what is wrong.
pub fn split_host_port(s: &str) -> Result<(&str, u16), String> {
    let bad =
        |why: &str| format!("{s:?} {why}; write HOST:PORT, e.g. 127.0.0.1:1812 or [::1]:1812");
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
            .ok_or_else(|| bad("has a bracketed host that is not an IPv6 address"))?,
        None if host.contains(':') => return Err(bad("has an IPv6 address without brackets")),
        None => host,
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '[' || c == ']')
    {
        return Err(bad("has a host with spaces, '/' or brackets"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host, p)),
        _ => Err(bad("has a port that is not in 1..=65535")),
    }
}
