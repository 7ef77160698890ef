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
//! [routes]                           # optional: export the member prefixes
//! table = 100                        # kernel table: 1..=4294967295 except 253-255
//!
//! [edge]                             # what the fast path answers on members' lines
//! icmp_rate = 1000                   # default: echo replies and ICMP errors per second and CPU (0: none)
//! icmp_burst = 100                   # default
//! router_lifetime = 1800             # default: seconds, 0 or ra_interval..=9000
//! ra_interval = 200                  # default: seconds between unsolicited RAs (4..=1800)
//! ra_hop_limit = 64                  # default
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
//! id = "alice"                       # 1-64 chars of [A-Za-z0-9_.@-], unique
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
//! - `edge`: [`DEFAULT_ICMP_RATE`], [`DEFAULT_ICMP_BURST`],
//!   [`DEFAULT_ROUTER_LIFETIME`], [`DEFAULT_RA_INTERVAL`],
//!   [`DEFAULT_RA_HOP_LIMIT`].
//!
//! # Rules
//! [`Config::validate`] checks, and every [`ConfigError`] names the member or
//! section and the field at fault and says what is allowed:
//! - `max_members` is in `1..=MAX_MEMBERS_LIMIT`, `route_groups` in
//!   `1..=MAX_ROUTE_GROUPS`, `pin_dir` is absolute.
//! - `[routes] table` is in `1..=4294967295`, and not 253, 254 or 255
//!   (the kernel's default, main and local tables).
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
//! - `[pppoe]` needs `[radius]`; its interfaces are `[[access]]` interfaces,
//!   each listed once (the other rules of both: [`pppoe`]).
//!
//! Several members may share one attachment (interface, s_vlan, c_vlan): a
//! shared untagged segment is legitimate.
//!
//! The whole-set check [`validate_members`] runs in O(n log n) ([`Claims`]);
//! the provisioning API checks one member against the running set with the
//! prefix table itself ([`crate::tables::Tables::check_put`]).
//!
//! # Layout
//! - [`schema`]: the tables and fields, and their defaults;
//! - [`read`]: reading a file, the `[[member]]` tables in batches;
//! - [`validate`]: the rules, section by section and for the whole set;
//! - [`claims`]: the overlap search of the whole-set check;
//! - [`routes`]: `[routes]`, the kernel table of member routes;
//! - [`pppoe`]: `[pppoe]` and `[radius]`, PPPoE access and its RADIUS
//!   servers (their fields, defaults and rules are documented there);
//! - [`error`]: why a configuration is refused ([`ConfigError`]).
//!
//! The rules of one member's own fields are the member model's
//! ([`crate::member`]); [`ConfigError::Member`] carries them.
pub mod claims;
pub mod error;
pub mod pppoe;
pub mod read;
pub mod routes;
pub mod schema;
pub mod units;
pub mod validate;

#[cfg(test)]
mod tests;

pub use claims::{Claims, OverlapFound};
pub use error::{ConfigError, Section};
pub use pppoe::{
    DEFAULT_AC_NAME, DEFAULT_ECHO_FAILURES, DEFAULT_ECHO_INTERVAL, DEFAULT_INTERIM_INTERVAL,
    DEFAULT_MRU, DEFAULT_NAS_IDENTIFIER, DEFAULT_RADIUS_RETRIES, DEFAULT_RADIUS_TIMEOUT, MAX_MRU,
    MIN_INTERIM_INTERVAL, MIN_MRU, PppoeConfig, RadiusConfig, Seconds, split_host_port,
};
pub use routes::{RESERVED_TABLES, RoutesConfig};
pub use schema::{
    Access, ApiConfig, ApiEndpoint, ByteSize, Config, DEFAULT_BODY_LIMIT, DEFAULT_ICMP_BURST,
    DEFAULT_ICMP_RATE, DEFAULT_LOG_LEVEL, DEFAULT_MAX_MEMBERS, DEFAULT_METRICS_LISTEN,
    DEFAULT_PIN_DIR, DEFAULT_RA_HOP_LIMIT, DEFAULT_RA_INTERVAL, DEFAULT_ROUTER_LIFETIME,
    DEFAULT_STATE_PATH, DatapathConfig, EdgeConfig, LogConfig, MAX_ICMP_RATE, MAX_IFNAME_LEN,
    MAX_INTERFACES, MAX_ROUTE_GROUPS, MAX_ROUTER_LIFETIME, MIN_BODY_LIMIT, MetricsConfig,
    RA_INTERVAL_MAX, RA_INTERVAL_MIN, Uplink, XdpMode,
};
pub use validate::{check_count, check_interface, validate_members};
