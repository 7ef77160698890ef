//! The types the engine and its caller share (re-exported by the
//! [`pppoe`](super) module).
use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

/// What every session of the engine shares (the `[pppoe]` section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// AC-Name in PADO and PADS, and our name in CHAP challenges.
    pub ac_name: String,
    /// Service names offered; empty offers any (a PADI asking for another
    /// one is ignored). The empty Service-Name (any service) is always
    /// accepted.
    pub service_names: Vec<String>,
    /// Our MRU (LCP option 1), and the most we accept from a client.
    pub mru: u16,
    /// Time between LCP Echo-Requests on an established session.
    pub echo_interval: Duration,
    /// Unanswered Echo-Requests after which a session ends (LostCarrier).
    pub echo_failures: u32,
    /// Our IPCP address when the port has no IPv4 gateway address.
    pub fallback_ipv4: Ipv4Addr,
    /// Restart timer of Configure-Requests, CHAP challenges and
    /// Terminate-Requests (RFC 1661: 3 s).
    pub restart_interval: Duration,
    /// Configure-Requests sent without an answer before giving up
    /// (RFC 1661 Max-Configure: 10).
    pub max_configure: u32,
    /// Authentication offered first: CHAP-MD5 (a client's Nak to PAP is
    /// honoured) or PAP.
    pub auth: AuthProtocol,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            ac_name: "collecte".to_string(),
            service_names: Vec::new(),
            mru: 1492,
            echo_interval: Duration::from_secs(30),
            echo_failures: 3,
            fallback_ipv4: Ipv4Addr::new(100, 64, 0, 1),
            restart_interval: Duration::from_secs(3),
            max_configure: 10,
            auth: AuthProtocol::Chap,
        }
    }
}

/// An authentication protocol of LCP option 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthProtocol {
    /// PAP (RFC 1334), protocol 0xc023.
    Pap,
    /// CHAP with MD5 (RFC 1994), protocol 0xc223, algorithm 5.
    Chap,
}

/// An access interface where PPPoE is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub ifindex: u32,
    pub ifname: String,
    /// Interface slot in the datapath ([`router_common::pppoe::SessionKey::iface`]).
    pub iface_slot: u16,
    /// The interface's MAC: the source of our frames, our DUID and IPv6
    /// interface identifier.
    pub mac: [u8; 6],
    /// Our IPCP address: the interface's gateway IPv4 address, if any
    /// (else [`Settings::fallback_ipv4`]).
    pub gateway_ipv4: Option<Ipv4Addr>,
}

/// Where a client is: the port, its tags (0 = no tag) and its MAC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Line {
    pub ifindex: u32,
    /// Outer tag (802.1ad S-tag, TPID 0x88a8), 0 for none.
    pub s_vlan: u16,
    /// Inner tag (C-tag), or the single 802.1Q tag, 0 for none.
    pub c_vlan: u16,
    /// The client's MAC.
    pub mac: [u8; 6],
}

/// One session: its line and its session id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SessionRef {
    pub line: Line,
    pub session_id: u16,
}

impl SessionRef {
    /// The datapath's key of this session, on the port of slot `iface_slot`.
    pub fn key(&self, iface_slot: u16) -> router_common::pppoe::SessionKey {
        router_common::pppoe::SessionKey {
            iface: iface_slot,
            s_vlan: self.line.s_vlan,
            c_vlan: self.line.c_vlan,
            session_id: self.session_id,
            mac: self.line.mac,
            _pad: [0; 2],
        }
    }

    /// NAS-Port-Id: the interface and tags, `acc0`, `acc0:200` (one tag)
    /// or `acc0:100.200` (S-tag.C-tag).
    pub fn nas_port_id(&self, ifname: &str) -> String {
        match (self.line.s_vlan, self.line.c_vlan) {
            (0, 0) => ifname.to_string(),
            (0, c) => format!("{ifname}:{c}"),
            (s, c) => format!("{ifname}:{s}.{c}"),
        }
    }

    /// Calling-Station-Id: the client's MAC, `02:00:00:00:00:01`.
    pub fn calling_station_id(&self) -> String {
        let m = self.line.mac;
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Credentials to check (with RADIUS): [`Action::Authenticate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    Pap {
        user: String,
        password: Vec<u8>,
    },
    /// CHAP-MD5: RADIUS checks `response` = MD5(id, secret, challenge).
    Chap {
        user: String,
        id: u8,
        challenge: Vec<u8>,
        response: Vec<u8>,
    },
}

impl AuthRequest {
    /// The User-Name.
    pub fn user(&self) -> &str {
        match self {
            AuthRequest::Pap { user, .. } | AuthRequest::Chap { user, .. } => user,
        }
    }
}

/// What an accepted session gets (from the Access-Accept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Framed-IP-Address: given by IPCP. None: IPCP is refused.
    pub ipv4: Option<Ipv4Addr>,
    /// Framed-IPv6-Prefix (its /64 is advertised if it is one).
    pub ipv6_prefix: Option<Ipv6Net>,
    /// Delegated-IPv6-Prefix: handed out by DHCPv6 as IA_PD.
    pub delegated: Option<Ipv6Net>,
}

impl Grant {
    /// Does the session get IPv6 (IPv6CP is accepted)?
    pub fn has_ipv6(&self) -> bool {
        self.ipv6_prefix.is_some() || self.delegated.is_some()
    }
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this whole Ethernet frame (tags included) on `ifindex`.
    Send { ifindex: u32, frame: Vec<u8> },
    /// Check these credentials, then call [`Engine::on_auth`](super::Engine::on_auth).
    Authenticate {
        session: SessionRef,
        request: AuthRequest,
    },
    /// Authenticated and a network protocol opened: forward its data now.
    /// Emitted once per session.
    Up { session: SessionRef },
    /// The session ended (its frames have been sent). Emitted once per
    /// session, after an `Up` or not.
    Down {
        session: SessionRef,
        cause: TerminateCause,
    },
}

/// Why a session ended: RFC 2866 Acct-Terminate-Cause values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TerminateCause {
    /// The client ended it (PADT, LCP Terminate-Request).
    UserRequest,
    /// Echo-Requests went unanswered.
    LostCarrier,
    /// The negotiation failed (no answer to Configure-Requests, options
    /// that cannot be agreed).
    LostService,
    IdleTimeout,
    SessionTimeout,
    /// An operator ended it.
    AdminReset,
    AdminReboot,
    PortError,
    NasError,
    /// The daemon ended it (e.g. shutting down the interface).
    NasRequest,
    NasReboot,
    ServiceUnavailable,
    /// Authentication failed (RFC 2866 has no such value: sent as
    /// User-Error).
    AuthFail,
}

impl TerminateCause {
    /// The Acct-Terminate-Cause value (RFC 2866 5.10).
    pub fn code(self) -> u32 {
        match self {
            TerminateCause::UserRequest => 1,
            TerminateCause::LostCarrier => 2,
            TerminateCause::LostService => 3,
            TerminateCause::IdleTimeout => 4,
            TerminateCause::SessionTimeout => 5,
            TerminateCause::AdminReset => 6,
            TerminateCause::AdminReboot => 7,
            TerminateCause::PortError => 8,
            TerminateCause::NasError => 9,
            TerminateCause::NasRequest => 10,
            TerminateCause::NasReboot => 11,
            TerminateCause::ServiceUnavailable => 15,
            TerminateCause::AuthFail => 17,
        }
    }
}

/// A session's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionState {
    /// PADS sent, LCP negotiating.
    Lcp,
    /// LCP open, waiting for credentials or for their check.
    Auth,
    /// Authenticated, no network protocol open yet.
    Network,
    /// Up: an NCP is open, data flows.
    Up,
}

impl SessionState {
    /// Its name in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Lcp => "lcp",
            SessionState::Auth => "auth",
            SessionState::Network => "network",
            SessionState::Up => "up",
        }
    }
}

/// A session as [`Engine::sessions`](super::Engine::sessions) shows it.
#[derive(Clone, Debug)]
pub struct SessionView<'a> {
    pub session: SessionRef,
    pub ifname: &'a str,
    pub iface_slot: u16,
    pub state: SessionState,
    /// The User-Name, once credentials arrived.
    pub user: Option<&'a str>,
    /// The MRU both directions can carry: the smaller of ours and the
    /// client's (TCP MSS clamping uses it).
    pub mru: u16,
    pub our_magic: u32,
    pub peer_magic: u32,
    pub grant: Option<&'a Grant>,
    pub ipv4_open: bool,
    pub ipv6_open: bool,
    pub started: Instant,
    /// Start time, Unix seconds.
    pub started_unix: u64,
}

/// What an established session needs to resume after a restart
/// ([`Engine::persisted`](super::Engine::persisted), [`Engine::restore`](super::Engine::restore)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub session: SessionRef,
    pub user: String,
    pub our_magic: u32,
    pub peer_magic: u32,
    /// Our MRU and the client's.
    pub our_mru: u16,
    pub peer_mru: u16,
    pub grant: Grant,
    /// IPv6CP interface identifiers, ours and the client's (0: none).
    pub our_ifid: u64,
    pub peer_ifid: u64,
    pub ipv4_open: bool,
    pub ipv6_open: bool,
    /// Start time, Unix seconds.
    pub started_unix: u64,
}

/// What the engine ignored or answered, for the daemon's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub padi: u64,
    pub pado: u64,
    pub padr: u64,
    pub pads: u64,
    pub padt_received: u64,
    pub padt_sent: u64,
    /// Frames that could not be parsed (bad header, length, tags).
    pub malformed: u64,
    /// Well-formed frames that were not for us or made no sense now
    /// (another port's MAC, unknown service, wrong cookie, PADO from a
    /// client...).
    pub ignored: u64,
    /// Session frames of no known session.
    pub unknown_session: u64,
    pub echo_requests_sent: u64,
    pub echo_replies_received: u64,
    /// Protocol-Rejects sent (unknown PPP protocols, IPCP without IPv4...).
    pub protocol_rejects: u64,
    pub dhcpv6_replies: u64,
}
