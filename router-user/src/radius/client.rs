//! The RADIUS client: Access-Request (PAP or CHAP) and Accounting-Request
//! over UDP, the servers tried in order, each `timeout` × `retries`.
//!
//! Each exchange uses a socket of its own (an ephemeral port), a random
//! identifier and a random Request Authenticator; an answer counts only if
//! it comes from the server asked, carries the request's identifier and
//! its Response Authenticator (and Message-Authenticator, when present)
//! checks out. Anything else is ignored (and logged) while the try waits.
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, Instant, SystemTime};

use ipnet::Ipv6Net;
use rand::RngCore as _;
use router_core::config::{RadiusConfig, split_host_port};
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::attribute::{self as attr, AttributeError};
use super::packet::{Code, Packet, PacketError, hide_password};

/// Why a RADIUS exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum RadiusError {
    /// The server refused the user (Access-Reject), with its Reply-Message.
    #[error("RADIUS refused the user (Access-Reject){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected { message: Option<String> },
    /// No server answered (each tried `retries` times, `timeout` each).
    #[error(
        "no RADIUS server answered ({}), each tried {retries} times with a timeout of {timeout:?}; \
         are they running, and do they know this NAS as a client with this secret?",
        list(servers)
    )]
    Unreachable {
        servers: Vec<SocketAddr>,
        retries: u32,
        timeout: Duration,
    },
    /// The server answered an Access-Challenge, which PPP authentication
    /// cannot relay.
    #[error("RADIUS answered an Access-Challenge; collecte supports PAP and CHAP only")]
    Challenged,
    /// A server name that does not resolve.
    #[error("[radius] {field}: {server:?} does not resolve: {why}")]
    Resolve {
        field: &'static str,
        server: String,
        why: String,
    },
    /// No server configured.
    #[error("[radius] servers: none is configured")]
    NoServers,
    /// An empty secret.
    #[error("[radius] secret_file: the secret is empty")]
    EmptySecret,
    /// A request that cannot be encoded (a field too long).
    #[error("RADIUS request: {0}")]
    Encode(#[from] PacketError),
    /// An Access-Accept with a value that cannot be read.
    #[error("RADIUS Access-Accept: {0}")]
    Attribute(#[from] AttributeError),
    /// The socket failed.
    #[error("RADIUS socket: {0}")]
    Io(#[from] std::io::Error),
}

fn list(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// NAS-Port-Type (RFC 2865 §5.41).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NasPortType {
    /// Virtual (5).
    Virtual,
    /// Ethernet (15).
    #[default]
    Ethernet,
}

impl NasPortType {
    /// The attribute's value.
    pub fn value(self) -> u32 {
        match self {
            NasPortType::Virtual => 5,
            NasPortType::Ethernet => 15,
        }
    }
}

/// What the client proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// PAP: the password, sent hidden in User-Password.
    Pap { password: Vec<u8> },
    /// CHAP-MD5: the CHAP identifier, the challenge sent to the client and
    /// its 16-byte response (CHAP-Password, CHAP-Challenge).
    Chap {
        id: u8,
        challenge: Vec<u8>,
        response: Vec<u8>,
    },
}

/// An Access-Request. NAS-Identifier comes from the configuration;
/// Service-Type is Framed and Framed-Protocol PPP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    /// User-Name.
    pub user: String,
    /// User-Password, or CHAP-Password and CHAP-Challenge.
    pub auth: Credentials,
    /// NAS-Port-Id: the interface and tags ([`nas_port_id`]).
    pub nas_port_id: String,
    /// NAS-Port-Type.
    pub nas_port_type: NasPortType,
    /// Calling-Station-Id: the client's MAC ([`calling_station_id`]).
    pub calling_station_id: String,
}

/// What an Access-Accept grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    /// Framed-IP-Address.
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed-IPv6-Prefix (RFC 3162).
    pub framed_ipv6_prefix: Option<Ipv6Net>,
    /// Delegated-IPv6-Prefix (RFC 4818).
    pub delegated_ipv6_prefix: Option<Ipv6Net>,
    /// Session-Timeout, in seconds.
    pub session_timeout: Option<u32>,
    /// Acct-Interim-Interval, in seconds, when the server sets one.
    pub interim_interval: Option<u32>,
    /// Reply-Message(s), joined by line breaks.
    pub reply_message: Option<String>,
    /// Class values, to be sent back in accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
}

/// Acct-Status-Type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AcctKind {
    #[default]
    Start,
    Interim,
    Stop,
}

impl AcctKind {
    fn value(self) -> u32 {
        match self {
            AcctKind::Start => attr::ACCT_STATUS_START,
            AcctKind::Interim => attr::ACCT_STATUS_INTERIM,
            AcctKind::Stop => attr::ACCT_STATUS_STOP,
        }
    }
}

/// An Accounting-Request. "Input" is what the NAS received from the client
/// (its upstream), "output" what it sent to it. Octets above 2^32 go in the
/// Gigawords attributes; packet counts are sent modulo 2^32.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcctRecord {
    pub kind: AcctKind,
    /// Acct-Session-Id: unique per session, the same in Start, Interim and Stop.
    pub session_id: String,
    pub user: String,
    pub nas_port_id: String,
    pub nas_port_type: NasPortType,
    pub calling_station_id: String,
    pub framed_ip: Option<Ipv4Addr>,
    pub framed_ipv6_prefix: Option<Ipv6Net>,
    pub delegated_ipv6_prefix: Option<Ipv6Net>,
    /// Acct-Session-Time, in seconds.
    pub session_time: u32,
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    /// Acct-Terminate-Cause (RFC 2866 §5.10), in a Stop.
    pub terminate_cause: Option<u32>,
    /// The Access-Accept's Class values.
    pub class: Vec<Vec<u8>>,
}

/// NAS-Port-Id of a line: `acc0`, `acc0:200` (one tag) or `acc0:100.200`
/// (S-tag, C-tag); 0 means no tag.
pub fn nas_port_id(ifname: &str, s_vlan: u16, c_vlan: u16) -> String {
    match (s_vlan, c_vlan) {
        (0, 0) => ifname.to_owned(),
        (0, c) => format!("{ifname}:{c}"),
        (s, c) => format!("{ifname}:{s}.{c}"),
    }
}

/// Calling-Station-Id of a MAC: `aa:bb:cc:dd:ee:ff`.
pub fn calling_station_id(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// A RADIUS client for the configured servers.
#[derive(Debug)]
pub struct Client {
    auth_servers: Vec<SocketAddr>,
    acct_servers: Vec<SocketAddr>,
    secret: Vec<u8>,
    nas_identifier: String,
    timeout: Duration,
    retries: u32,
}

impl Client {
    /// A client for `config`'s servers (resolved now) with the shared
    /// `secret` (read by [`super::read_secret`]).
    pub fn new(config: &RadiusConfig, secret: Vec<u8>) -> Result<Client, RadiusError> {
        if config.servers.is_empty() {
            return Err(RadiusError::NoServers);
        }
        if secret.is_empty() {
            return Err(RadiusError::EmptySecret);
        }
        Ok(Client {
            auth_servers: resolve("servers", &config.servers)?,
            acct_servers: resolve("accounting_servers", &config.accounting_servers())?,
            secret,
            nas_identifier: config.nas_identifier.clone(),
            timeout: config.timeout.0,
            retries: config.retries,
        })
    }

    /// Sends an Access-Request: `Ok` with what an Access-Accept grants,
    /// [`RadiusError::Rejected`] on an Access-Reject,
    /// [`RadiusError::Unreachable`] when no server answered.
    pub async fn authenticate(&self, req: &AccessRequest) -> Result<Accept, RadiusError> {
        let servers = self.auth_servers.clone();
        let answer = self
            .exchange(&servers, |id| self.access_request(id, req))
            .await?;
        match answer.code {
            Code::AccessAccept => accept_of(&answer),
            Code::AccessReject => Err(RadiusError::Rejected {
                message: reply_message(&answer),
            }),
            _ => Err(RadiusError::Challenged),
        }
    }

    /// Sends an Accounting-Request and waits for its Accounting-Response.
    /// Acct-Delay-Time counts the seconds since this call when a try is
    /// repeated.
    pub async fn account(&self, rec: &AcctRecord) -> Result<(), RadiusError> {
        let servers = self.acct_servers.clone();
        let event = SystemTime::now();
        let started = Instant::now();
        self.exchange(&servers, |id| {
            self.accounting_request(id, rec, event, started.elapsed())
        })
        .await
        .map(drop)
    }

    /// Encodes an Access-Request with identifier `id`: the bytes, and the
    /// Request Authenticator an answer is checked against.
    pub fn access_request(
        &self,
        id: u8,
        req: &AccessRequest,
    ) -> Result<(Vec<u8>, [u8; 16]), RadiusError> {
        let mut authenticator = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut authenticator);
        let mut p = Packet::new(Code::AccessRequest, id, authenticator);
        p.push(attr::USER_NAME, req.user.as_bytes())?;
        match &req.auth {
            Credentials::Pap { password } => {
                p.push(
                    attr::USER_PASSWORD,
                    hide_password(password, &self.secret, &authenticator)?,
                )?;
            }
            Credentials::Chap {
                id,
                challenge,
                response,
            } => {
                let mut value = vec![*id];
                value.extend_from_slice(response);
                p.push(attr::CHAP_PASSWORD, value)?;
                p.push(attr::CHAP_CHALLENGE, challenge.as_slice())?;
            }
        }
        self.push_nas(&mut p, &req.nas_port_id, req.nas_port_type)?;
        p.push(attr::CALLING_STATION_ID, req.calling_station_id.as_bytes())?;
        // Computed by encode_request (RFC 3579 §3.2).
        p.push(attr::MESSAGE_AUTHENTICATOR, [0u8; 16])?;
        Ok((p.encode_request(&self.secret)?, authenticator))
    }

    /// Encodes an Accounting-Request with identifier `id` for an event at
    /// `event`, sent `delay` after it.
    pub fn accounting_request(
        &self,
        id: u8,
        rec: &AcctRecord,
        event: SystemTime,
        delay: Duration,
    ) -> Result<(Vec<u8>, [u8; 16]), RadiusError> {
        let mut p = Packet::new(Code::AccountingRequest, id, [0; 16]);
        let u32_attr = |p: &mut Packet, kind, v: u32| p.push(kind, attr::encode_u32(v));
        u32_attr(&mut p, attr::ACCT_STATUS_TYPE, rec.kind.value())?;
        p.push(attr::ACCT_SESSION_ID, rec.session_id.as_bytes())?;
        p.push(attr::USER_NAME, rec.user.as_bytes())?;
        self.push_nas(&mut p, &rec.nas_port_id, rec.nas_port_type)?;
        p.push(attr::CALLING_STATION_ID, rec.calling_station_id.as_bytes())?;
        if let Some(ip) = rec.framed_ip {
            p.push(attr::FRAMED_IP_ADDRESS, ip.octets())?;
        }
        if let Some(net) = rec.framed_ipv6_prefix {
            p.push(attr::FRAMED_IPV6_PREFIX, attr::encode_ipv6_prefix(net))?;
        }
        if let Some(net) = rec.delegated_ipv6_prefix {
            p.push(attr::DELEGATED_IPV6_PREFIX, attr::encode_ipv6_prefix(net))?;
        }
        for class in &rec.class {
            p.push(attr::CLASS, class.as_slice())?;
        }
        if rec.kind != AcctKind::Start {
            u32_attr(&mut p, attr::ACCT_SESSION_TIME, rec.session_time)?;
            for (octets, low, high) in [
                (
                    rec.in_octets,
                    attr::ACCT_INPUT_OCTETS,
                    attr::ACCT_INPUT_GIGAWORDS,
                ),
                (
                    rec.out_octets,
                    attr::ACCT_OUTPUT_OCTETS,
                    attr::ACCT_OUTPUT_GIGAWORDS,
                ),
            ] {
                u32_attr(&mut p, low, octets as u32)?;
                u32_attr(&mut p, high, (octets >> 32) as u32)?;
            }
            u32_attr(&mut p, attr::ACCT_INPUT_PACKETS, rec.in_packets as u32)?;
            u32_attr(&mut p, attr::ACCT_OUTPUT_PACKETS, rec.out_packets as u32)?;
        }
        if let Some(cause) = rec.terminate_cause {
            u32_attr(&mut p, attr::ACCT_TERMINATE_CAUSE, cause)?;
        }
        let stamp = event
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        u32_attr(&mut p, attr::EVENT_TIMESTAMP, stamp)?;
        u32_attr(&mut p, attr::ACCT_DELAY_TIME, delay.as_secs() as u32)?;
        let bytes = p.encode_accounting(&self.secret)?;
        let authenticator = bytes[4..20].try_into().expect("16 bytes");
        Ok((bytes, authenticator))
    }

    fn push_nas(
        &self,
        p: &mut Packet,
        nas_port_id: &str,
        port_type: NasPortType,
    ) -> Result<(), PacketError> {
        p.push(attr::NAS_IDENTIFIER, self.nas_identifier.as_bytes())?;
        p.push(attr::NAS_PORT_ID, nas_port_id.as_bytes())?;
        p.push(attr::NAS_PORT_TYPE, attr::encode_u32(port_type.value()))?;
        p.push(
            attr::SERVICE_TYPE,
            attr::encode_u32(attr::SERVICE_TYPE_FRAMED),
        )?;
        p.push(
            attr::FRAMED_PROTOCOL,
            attr::encode_u32(attr::FRAMED_PROTOCOL_PPP),
        )
    }

    /// Tries `servers` in order, each `retries` times: the first answer that
    /// checks out. `encode` builds the request for an identifier (again for
    /// each try: accounting's delay changes).
    async fn exchange(
        &self,
        servers: &[SocketAddr],
        encode: impl Fn(u8) -> Result<(Vec<u8>, [u8; 16]), RadiusError>,
    ) -> Result<Packet, RadiusError> {
        let mut buf = vec![0u8; 4096];
        for server in servers {
            let bind: SocketAddr = if server.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(bind).await?;
            socket.connect(server).await?;
            let mut id = rand::random::<u8>();
            for attempt in 0..self.retries {
                id = id.wrapping_add(1);
                let (request, authenticator) = encode(id)?;
                if let Err(e) = socket.send(&request).await {
                    // ICMP unreachable from a previous try surfaces here.
                    debug!(%server, attempt, "RADIUS send failed: {e}");
                }
                let deadline = tokio::time::Instant::now() + self.timeout;
                loop {
                    let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
                    let len = match received {
                        Err(_) => break,
                        Ok(Err(e)) => {
                            // Connection refused (nobody on the port): wait
                            // out the try rather than spin on the error.
                            debug!(%server, attempt, "RADIUS receive failed: {e}");
                            tokio::time::sleep_until(deadline).await;
                            break;
                        }
                        Ok(Ok(len)) => len,
                    };
                    let answer = &buf[..len];
                    if answer.len() < 2 || answer[1] != id {
                        debug!(%server, "RADIUS answer to another identifier ignored");
                        continue;
                    }
                    match Packet::decode_response(answer, &authenticator, &self.secret) {
                        Ok(packet) => return Ok(packet),
                        Err(e) => warn!(%server, "RADIUS answer ignored: {e}"),
                    }
                }
                debug!(%server, attempt, "RADIUS server did not answer in time");
            }
        }
        Err(RadiusError::Unreachable {
            servers: servers.to_vec(),
            retries: self.retries,
            timeout: self.timeout,
        })
    }
}

fn resolve(field: &'static str, servers: &[String]) -> Result<Vec<SocketAddr>, RadiusError> {
    servers
        .iter()
        .map(|s| {
            let err = |why: String| RadiusError::Resolve {
                field,
                server: s.clone(),
                why,
            };
            let (host, port) = split_host_port(s).map_err(err)?;
            (host, port)
                .to_socket_addrs()
                .map_err(|e| err(e.to_string()))?
                .next()
                .ok_or_else(|| err("no address".into()))
        })
        .collect()
}

fn reply_message(p: &Packet) -> Option<String> {
    let parts: Vec<String> = p
        .get_all(attr::REPLY_MESSAGE)
        .map(attr::decode_text)
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// Reads what an Access-Accept grants.
pub fn accept_of(p: &Packet) -> Result<Accept, RadiusError> {
    let mut accept = Accept {
        reply_message: reply_message(p),
        class: p.get_all(attr::CLASS).map(<[u8]>::to_vec).collect(),
        ..Accept::default()
    };
    if let Some(v) = p.get(attr::FRAMED_IP_ADDRESS) {
        accept.framed_ip = Some(attr::decode_ipv4(attr::FRAMED_IP_ADDRESS, v)?);
    }
    if let Some(v) = p.get(attr::FRAMED_IPV6_PREFIX) {
        accept.framed_ipv6_prefix = Some(attr::decode_ipv6_prefix(attr::FRAMED_IPV6_PREFIX, v)?);
    }
    if let Some(v) = p.get(attr::DELEGATED_IPV6_PREFIX) {
        accept.delegated_ipv6_prefix =
            Some(attr::decode_ipv6_prefix(attr::DELEGATED_IPV6_PREFIX, v)?);
    }
    if let Some(v) = p.get(attr::SESSION_TIMEOUT) {
        accept.session_timeout = Some(attr::decode_u32(attr::SESSION_TIMEOUT, v)?);
    }
    if let Some(v) = p.get(attr::ACCT_INTERIM_INTERVAL) {
        accept.interim_interval = Some(attr::decode_u32(attr::ACCT_INTERIM_INTERVAL, v)?);
    }
    Ok(accept)
}
