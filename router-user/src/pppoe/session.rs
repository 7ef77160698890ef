//! One session's state, as the engine keeps it, and its persisted form.
use std::{net::Ipv4Addr, time::Instant};

use super::{
    ncp,
    negotiation::Cp,
    ppp::{self, Opt},
    types::{AuthProtocol, Grant, Persisted, SessionRef, SessionState, Settings},
};

/// The MRU of a client that does not negotiate one (RFC 1661 6.1).
pub(super) const DEFAULT_MRU: u16 = 1500;

/// One session's state.
#[derive(Clone, Debug)]
pub(super) struct Sess {
    pub(super) port: usize,
    pub(super) state: SessionState,
    pub(super) host_uniq: Option<Vec<u8>>,
    pub(super) lcp: Cp,
    pub(super) our_magic: u32,
    pub(super) peer_magic: u32,
    pub(super) our_mru: u16,
    pub(super) peer_mru: u16,
    pub(super) auth: AuthProtocol,
    pub(super) chap_id: u8,
    pub(super) challenge: Vec<u8>,
    pub(super) chap_sent_at: Option<Instant>,
    pub(super) chap_tries: u32,
    /// Credentials handed out in an `Authenticate`, not answered yet.
    pub(super) auth_pending: bool,
    /// Identifier of the PAP request to answer.
    pub(super) pap_id: u8,
    pub(super) user: Option<String>,
    pub(super) grant: Option<Grant>,
    pub(super) ipcp: Option<Cp>,
    pub(super) ipv6cp: Option<Cp>,
    pub(super) our_ifid: u64,
    pub(super) peer_ifid: u64,
    pub(super) next_echo: Option<Instant>,
    pub(super) unanswered: u32,
    pub(super) echo_id: u8,
    pub(super) started: Instant,
    pub(super) started_unix: u64,
}

impl Sess {
    /// A session in LCP on port index `port`, with our magic, IPv6
    /// interface id and LCP state; its start time `now` (Unix time 0 until
    /// set).
    pub(super) fn new(
        port: usize,
        settings: &Settings,
        our_magic: u32,
        our_ifid: u64,
        lcp: Cp,
        now: Instant,
    ) -> Sess {
        Sess {
            port,
            state: SessionState::Lcp,
            host_uniq: None,
            lcp,
            our_magic,
            peer_magic: 0,
            our_mru: settings.mru,
            peer_mru: DEFAULT_MRU,
            auth: settings.auth,
            chap_id: 0,
            challenge: Vec::new(),
            chap_sent_at: None,
            chap_tries: 0,
            auth_pending: false,
            pap_id: 0,
            user: None,
            grant: None,
            ipcp: None,
            ipv6cp: None,
            our_ifid,
            peer_ifid: 0,
            next_echo: None,
            unanswered: 0,
            echo_id: 0,
            started: now,
            started_unix: 0,
        }
    }

    pub(super) fn mru(&self) -> u16 {
        self.our_mru.min(self.peer_mru)
    }

    pub(super) fn lcp_options(&self) -> Vec<Opt> {
        ncp::lcp_options(self.our_mru, Some(self.auth), self.our_magic)
    }

    /// What an Up session needs to resume after a restart.
    pub(super) fn persisted(&self, session: SessionRef) -> Option<Persisted> {
        if self.state != SessionState::Up {
            return None;
        }
        Some(Persisted {
            session,
            user: self.user.clone()?,
            our_magic: self.our_magic,
            peer_magic: self.peer_magic,
            our_mru: self.our_mru,
            peer_mru: self.peer_mru,
            grant: self.grant.clone()?,
            our_ifid: self.our_ifid,
            peer_ifid: self.peer_ifid,
            ipv4_open: self.ipcp.as_ref().is_some_and(Cp::is_open),
            ipv6_open: self.ipv6cp.as_ref().is_some_and(Cp::is_open),
            started_unix: self.started_unix,
        })
    }

    /// An Up session resumed from `p` at `now` on port index `port`, our
    /// IPCP address `ours4`.
    pub(super) fn restored(
        port: usize,
        settings: &Settings,
        ours4: Ipv4Addr,
        p: Persisted,
        now: Instant,
    ) -> Sess {
        let opened = |protocol, opt: Opt, open: bool| {
            open.then(|| {
                let mut c = Cp::new(protocol, vec![opt], 0);
                c.ours_acked = true;
                c.peer_acked = true;
                c
            })
        };
        let mut lcp = Cp::new(
            ppp::LCP,
            ncp::lcp_options(p.our_mru, Some(settings.auth), p.our_magic),
            0,
        );
        lcp.ours_acked = true;
        lcp.peer_acked = true;
        let mut sess = Sess::new(port, settings, p.our_magic, p.our_ifid, lcp, now);
        sess.state = SessionState::Up;
        sess.peer_magic = p.peer_magic;
        sess.our_mru = p.our_mru;
        sess.peer_mru = p.peer_mru;
        sess.user = Some(p.user);
        sess.ipcp = opened(
            ppp::IPCP,
            Opt::new(ncp::IPCP_ADDRESS, &ours4.octets()),
            p.ipv4_open,
        );
        sess.ipv6cp = opened(
            ppp::IPV6CP,
            Opt::new(ncp::IPV6CP_IFID, &p.our_ifid.to_be_bytes()),
            p.ipv6_open,
        );
        sess.grant = Some(p.grant);
        sess.peer_ifid = p.peer_ifid;
        sess.next_echo = Some(now + settings.echo_interval);
        sess.started_unix = p.started_unix;
        sess
    }
}
