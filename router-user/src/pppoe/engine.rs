//! The engine: every session's discovery, LCP, authentication, IPCP,
//! IPv6CP and DHCPv6 state, driven by frames, RADIUS outcomes and ticks.
//!
//! A session is created by a PADR (after a PADO carrying its AC-Cookie),
//! negotiates LCP (our Configure-Request goes with the PADS), then
//! authenticates (CHAP challenge from us, or the client's PAP request),
//! waits for [`Engine::on_auth`], then opens IPCP and/or IPv6CP as the
//! grant allows: the first one open makes it Up. It ends once, with a
//! `Down`: PADT or Terminate-Request from the client, echo failures,
//! authentication failure, negotiation timeout, or [`Engine::terminate`].
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use super::{
    auth, dhcpv6,
    discovery::{self, Tags},
    frame::{self, BROADCAST, Stage},
    ncp,
    negotiation::Cp,
    ppp::{self, Opt, Packet},
    session::{DEFAULT_MRU, Sess},
    types::{
        Action, AuthProtocol, AuthRequest, Counters, Grant, Line, Persisted, Port, SessionRef,
        SessionState, SessionView, Settings, TerminateCause,
    },
};

/// Random bytes in a CHAP challenge.
const CHALLENGE_LEN: usize = 16;

/// Every PPPoE session of the daemon (sans-IO).
pub struct Engine {
    settings: Settings,
    ports: Vec<Port>,
    sessions: BTreeMap<SessionRef, Sess>,
    /// Session ids in use, by ifindex.
    used: HashSet<(u32, u16)>,
    /// The next session id to try, by ifindex.
    next_id: HashMap<u32, u16>,
    rng: super::rng::Rng,
    cookie_key: Vec<u8>,
    counters: Counters,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// An engine serving `ports`, seeded from the OS for magic numbers,
    /// cookies and challenges.
    pub fn new(settings: Settings, ports: Vec<Port>) -> Engine {
        let mut seed = [0u8; 8];
        // SAFETY: getrandom(2) fills the buffer given with its length.
        let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), seed.len(), 0) };
        let mut seed = u64::from_ne_bytes(seed);
        if n != 8 {
            // No entropy source: the clock still differs between runs.
            seed ^= SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
        }
        Engine::with_seed(settings, ports, seed)
    }

    /// An engine whose random numbers come from `seed` (tests).
    pub fn with_seed(settings: Settings, ports: Vec<Port>, seed: u64) -> Engine {
        let mut rng = super::rng::Rng(seed | 1);
        let cookie_key = rng.bytes(16);
        Engine {
            settings,
            ports,
            sessions: BTreeMap::new(),
            used: HashSet::new(),
            next_id: HashMap::new(),
            rng,
            cookie_key,
            counters: Counters::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The port of `ifindex`.
    pub fn port(&self, ifindex: u32) -> Option<&Port> {
        self.ports.iter().find(|p| p.ifindex == ifindex)
    }

    /// What was ignored or answered so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// A frame received on `ifindex` (tags in place).
    pub fn on_frame(&mut self, now: Instant, ifindex: u32, bytes: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(port) = self.ports.iter().position(|p| p.ifindex == ifindex) else {
            self.counters.ignored += 1;
            return out;
        };
        let f = match frame::parse(ifindex, bytes) {
            Ok(f) => f,
            Err(_) => {
                self.counters.malformed += 1;
                return out;
            }
        };
        let mac = self.ports[port].mac;
        if f.line.mac == mac || f.line.mac[0] & 1 != 0 {
            // Our own frame, or a multicast source: never a client.
            self.counters.ignored += 1;
            return out;
        }
        match f.stage {
            Stage::Discovery => {
                if f.dst != mac && f.dst != BROADCAST {
                    self.counters.ignored += 1;
                    return out;
                }
                let tags = match Tags::parse(f.payload) {
                    Ok(t) => t,
                    Err(_) => {
                        self.counters.malformed += 1;
                        return out;
                    }
                };
                match f.code {
                    discovery::PADI => self.on_padi(port, f.line, &tags, &mut out),
                    discovery::PADR if f.dst == mac => {
                        self.on_padr(now, port, f.line, &tags, &mut out)
                    }
                    discovery::PADT if f.dst == mac => {
                        let s = SessionRef {
                            line: f.line,
                            session_id: f.session_id,
                        };
                        self.counters.padt_received += 1;
                        if self.sessions.contains_key(&s) {
                            self.end(s, TerminateCause::UserRequest, false, false, &mut out);
                        } else {
                            self.counters.unknown_session += 1;
                        }
                    }
                    _ => self.counters.ignored += 1,
                }
            }
            Stage::Session => {
                let s = SessionRef {
                    line: f.line,
                    session_id: f.session_id,
                };
                if f.dst != mac || f.code != 0 {
                    self.counters.ignored += 1;
                } else if !self.sessions.contains_key(&s) {
                    self.counters.unknown_session += 1;
                } else {
                    self.on_session(now, s, f.payload, &mut out);
                }
            }
        }
        out
    }

    /// RADIUS answered (or failed): `Ok(grant)` acknowledges the
    /// credentials and goes on to IPCP/IPv6CP; `Err(message)` sends
    /// PAP Authenticate-Nak or CHAP Failure with `message`, then LCP
    /// Terminate-Request and PADT, and the session is Down (AuthFail).
    /// A grant with neither IPv4 nor IPv6 ends the session
    /// (ServiceUnavailable) after the Ack. An outcome for a session that is
    /// gone or not waiting is ignored.
    pub fn on_auth(
        &mut self,
        now: Instant,
        session: SessionRef,
        outcome: Result<Grant, String>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(s) = self.sessions.get_mut(&session) else {
            return out;
        };
        if !s.auth_pending {
            return out;
        }
        s.auth_pending = false;
        let reply = match (&outcome, s.auth) {
            (Ok(_), AuthProtocol::Pap) => auth::pap_reply(auth::PAP_ACK, s.pap_id, "welcome"),
            (Err(m), AuthProtocol::Pap) => auth::pap_reply(auth::PAP_NAK, s.pap_id, m),
            (Ok(_), AuthProtocol::Chap) => {
                auth::chap_result(auth::CHAP_SUCCESS, s.chap_id, "welcome")
            }
            (Err(m), AuthProtocol::Chap) => auth::chap_result(auth::CHAP_FAILURE, s.chap_id, m),
        };
        out.push(self.send(session, &reply));
        let grant = match outcome {
            Ok(g) => g,
            Err(_) => {
                self.end(session, TerminateCause::AuthFail, true, true, &mut out);
                return out;
            }
        };
        if grant.ipv4.is_none() && !grant.has_ipv6() {
            self.end(
                session,
                TerminateCause::ServiceUnavailable,
                true,
                true,
                &mut out,
            );
            return out;
        }
        let ours4 = self.ports[self.sessions[&session].port]
            .gateway_ipv4
            .unwrap_or(self.settings.fallback_ipv4);
        let first = self.rng.next_u64() as u8;
        let s = self.sessions.get_mut(&session).expect("checked above");
        s.state = SessionState::Network;
        let mut payloads = Vec::new();
        if grant.ipv4.is_some() {
            let mut cp = Cp::new(
                ppp::IPCP,
                vec![Opt::new(ncp::IPCP_ADDRESS, &ours4.octets())],
                first,
            );
            payloads.push(cp.request(now));
            s.ipcp = Some(cp);
        }
        if grant.has_ipv6() {
            let opt = Opt::new(ncp::IPV6CP_IFID, &s.our_ifid.to_be_bytes());
            let mut cp = Cp::new(ppp::IPV6CP, vec![opt], first);
            payloads.push(cp.request(now));
            s.ipv6cp = Some(cp);
        }
        s.grant = Some(grant);
        for p in payloads {
            out.push(self.send(session, &p));
        }
        out
    }

    /// Echoes, retransmissions and timeouts due at `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let restart = self.settings.restart_interval;
        let max = self.settings.max_configure;
        let keys: Vec<SessionRef> = self.sessions.keys().copied().collect();
        for k in keys {
            let mut payloads = Vec::new();
            let mut end = None;
            {
                let s = self.sessions.get_mut(&k).expect("a key just listed");
                if s.lcp.due(now, restart) {
                    if s.lcp.tries >= max {
                        end = Some(TerminateCause::LostService);
                    } else {
                        payloads.push(s.lcp.request(now));
                    }
                }
                if s.state == SessionState::Auth
                    && s.auth == AuthProtocol::Chap
                    && !s.auth_pending
                    && s.chap_sent_at.is_some_and(|t| now >= t + restart)
                {
                    if s.chap_tries >= max {
                        end = Some(TerminateCause::LostService);
                    } else {
                        s.chap_sent_at = Some(now);
                        s.chap_tries += 1;
                        payloads.push(auth::chap_value(
                            auth::CHAP_CHALLENGE,
                            s.chap_id,
                            &s.challenge,
                            &self.settings.ac_name,
                        ));
                    }
                }
                for cp in [&mut s.ipcp, &mut s.ipv6cp] {
                    if let Some(c) = cp
                        && c.due(now, restart)
                    {
                        if c.tries >= max {
                            // The client does not want this protocol.
                            *cp = None;
                        } else {
                            payloads.push(c.request(now));
                        }
                    }
                }
                if s.state == SessionState::Network && s.ipcp.is_none() && s.ipv6cp.is_none() {
                    end = Some(TerminateCause::LostService);
                }
                if let Some(t) = s.next_echo
                    && now >= t
                {
                    if s.unanswered >= self.settings.echo_failures {
                        end = Some(TerminateCause::LostCarrier);
                    } else {
                        s.unanswered += 1;
                        s.echo_id = s.echo_id.wrapping_add(1);
                        s.next_echo = Some(now + self.settings.echo_interval);
                        self.counters.echo_requests_sent += 1;
                        payloads.push(ppp::encode(
                            ppp::LCP,
                            ppp::ECHO_REQUEST,
                            s.echo_id,
                            &s.our_magic.to_be_bytes(),
                        ));
                    }
                }
            }
            if let Some(cause) = end {
                self.end(k, cause, true, true, &mut out);
            } else {
                for p in payloads {
                    out.push(self.send(k, &p));
                }
            }
        }
        out
    }

    /// Ends a session: LCP Terminate-Request and PADT, then Down. Nothing
    /// for a session that is gone.
    pub fn terminate(&mut self, session: SessionRef, cause: TerminateCause) -> Vec<Action> {
        let mut out = Vec::new();
        if self.sessions.contains_key(&session) {
            self.end(session, cause, true, true, &mut out);
        }
        out
    }

    /// Every session.
    pub fn sessions(&self) -> impl Iterator<Item = SessionView<'_>> {
        self.sessions.iter().map(|(k, s)| SessionView {
            session: *k,
            ifname: &self.ports[s.port].ifname,
            iface_slot: self.ports[s.port].iface_slot,
            state: s.state,
            user: s.user.as_deref(),
            mru: s.mru(),
            our_magic: s.our_magic,
            peer_magic: s.peer_magic,
            grant: s.grant.as_ref(),
            ipv4_open: s.ipcp.as_ref().is_some_and(Cp::is_open),
            ipv6_open: s.ipv6cp.as_ref().is_some_and(Cp::is_open),
            started: s.started,
            started_unix: s.started_unix,
        })
    }

    /// What an established (Up) session needs to resume after a restart.
    pub fn persisted(&self, session: SessionRef) -> Option<Persisted> {
        self.sessions.get(&session)?.persisted(session)
    }

    /// Resumes an established session (as Up, no `Up` action): its echoes
    /// restart from `now`. `None` when its interface is not one of the
    /// engine's ports any more: the caller ends it.
    pub fn restore(&mut self, now: Instant, p: Persisted) -> Option<SessionRef> {
        let port = self
            .ports
            .iter()
            .position(|x| x.ifindex == p.session.line.ifindex)?;
        let ours4 = self.ports[port]
            .gateway_ipv4
            .unwrap_or(self.settings.fallback_ipv4);
        let session = p.session;
        let sess = Sess::restored(port, &self.settings, ours4, p, now);
        self.used.insert((session.line.ifindex, session.session_id));
        self.sessions.insert(session, sess);
        Some(session)
    }

    /// A session frame carrying `payload` (protocol field first).
    fn send(&self, s: SessionRef, payload: &[u8]) -> Action {
        let port = &self.ports[self.sessions[&s].port];
        Action::Send {
            ifindex: port.ifindex,
            frame: frame::build(
                s.line.mac,
                port.mac,
                &s.line,
                Stage::Session,
                0,
                s.session_id,
                payload,
            ),
        }
    }

    /// A discovery frame to `line`.
    fn discovery(&self, port: usize, line: &Line, code: u8, sid: u16, tags: &Tags) -> Action {
        let p = &self.ports[port];
        Action::Send {
            ifindex: p.ifindex,
            frame: frame::build(
                line.mac,
                p.mac,
                line,
                Stage::Discovery,
                code,
                sid,
                &tags.encode(),
            ),
        }
    }

    /// Ends session `s`: Terminate-Request (if `lcp_term`), PADT (if
    /// `padt`), then Down.
    fn end(
        &mut self,
        s: SessionRef,
        cause: TerminateCause,
        lcp_term: bool,
        padt: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(sess) = self.sessions.get(&s) else {
            return;
        };
        if lcp_term {
            let id = sess.lcp.id.wrapping_add(1);
            out.push(self.send(
                s,
                &ppp::encode(ppp::LCP, ppp::TERMINATE_REQUEST, id, b"bye"),
            ));
        }
        if padt {
            let mut tags = Tags::default();
            if let Some(h) = &sess.host_uniq {
                tags.push(discovery::HOST_UNIQ, h);
            }
            out.push(self.discovery(sess.port, &s.line, discovery::PADT, s.session_id, &tags));
            self.counters.padt_sent += 1;
        }
        self.sessions.remove(&s);
        self.used.remove(&(s.line.ifindex, s.session_id));
        out.push(Action::Down { session: s, cause });
    }

    fn on_padi(&mut self, port: usize, line: Line, tags: &Tags, out: &mut Vec<Action>) {
        self.counters.padi += 1;
        if !discovery::service_ok(&self.settings.service_names, tags) {
            self.counters.ignored += 1;
            return;
        }
        let t = discovery::reply_tags(
            tags,
            &self.settings.ac_name,
            Some(&discovery::cookie(&self.cookie_key, &line)),
        );
        out.push(self.discovery(port, &line, discovery::PADO, 0, &t));
        self.counters.pado += 1;
    }

    fn on_padr(
        &mut self,
        now: Instant,
        port: usize,
        line: Line,
        tags: &Tags,
        out: &mut Vec<Action>,
    ) {
        self.counters.padr += 1;
        if !discovery::service_ok(&self.settings.service_names, tags)
            || tags.get(discovery::AC_COOKIE)
                != Some(&discovery::cookie(&self.cookie_key, &line)[..])
        {
            self.counters.ignored += 1;
            return;
        }
        let host_uniq = tags.get(discovery::HOST_UNIQ).map(<[u8]>::to_vec);
        // A retransmitted PADR (our PADS was lost): the same session again.
        let again = self.sessions.iter().find(|(k, s)| {
            k.line == line && s.state == SessionState::Lcp && s.host_uniq == host_uniq
        });
        if let Some((k, _)) = again {
            let t = discovery::reply_tags(tags, &self.settings.ac_name, None);
            out.push(self.discovery(port, &line, discovery::PADS, k.session_id, &t));
            self.counters.pads += 1;
            return;
        }
        let Some(id) = self.allocate(line.ifindex) else {
            // Every id of the port is in use.
            self.counters.ignored += 1;
            return;
        };
        let s = SessionRef {
            line,
            session_id: id,
        };
        let our_magic = self.rng.magic();
        let first = self.rng.next_u64() as u8;
        let mut sess = Sess::new(
            port,
            &self.settings,
            our_magic,
            ncp::eui64(self.ports[port].mac),
            Cp::new(ppp::LCP, Vec::new(), first),
            now,
        );
        sess.host_uniq = host_uniq;
        sess.started_unix = unix_now();
        sess.lcp.ours = sess.lcp_options();
        let req = sess.lcp.request(now);
        self.used.insert((line.ifindex, id));
        self.sessions.insert(s, sess);
        let t = discovery::reply_tags(tags, &self.settings.ac_name, None);
        out.push(self.discovery(port, &line, discovery::PADS, id, &t));
        self.counters.pads += 1;
        out.push(self.send(s, &req));
    }

    /// A free session id on `ifindex` (never 0 nor 0xffff).
    fn allocate(&mut self, ifindex: u32) -> Option<u16> {
        let next = self.next_id.entry(ifindex).or_insert(1);
        for _ in 0..0xfffe {
            let id = *next;
            *next = if id >= 0xfffe { 1 } else { id + 1 };
            if !self.used.contains(&(ifindex, id)) {
                return Some(id);
            }
        }
        None
    }

    fn on_session(&mut self, now: Instant, s: SessionRef, payload: &[u8], out: &mut Vec<Action>) {
        let Ok((proto, rest)) = ppp::split(payload) else {
            self.counters.malformed += 1;
            return;
        };
        match proto {
            ppp::LCP => self.on_lcp(now, s, rest, out),
            ppp::PAP => self.on_pap(s, rest, out),
            ppp::CHAP => self.on_chap(s, rest, out),
            ppp::IPCP | ppp::IPV6CP => self.on_ncp(now, s, proto, payload, rest, out),
            ppp::IPV6 => self.on_ipv6(s, rest, out),
            // Data that reached the daemon (not forwarded): nothing to do.
            ppp::IPV4 => {}
            _ => self.protocol_reject(s, payload, out),
        }
    }

    /// Protocol-Reject of the session payload `payload` (protocol first),
    /// once LCP is open (RFC 1661 5.7).
    fn protocol_reject(&mut self, s: SessionRef, payload: &[u8], out: &mut Vec<Action>) {
        let sess = self.sessions.get_mut(&s).expect("a known session");
        if !sess.lcp.is_open() {
            return;
        }
        sess.echo_id = sess.echo_id.wrapping_add(1);
        let id = sess.echo_id;
        let keep = payload.len().min(usize::from(sess.mru()) - 8);
        self.counters.protocol_rejects += 1;
        let p = ppp::encode(ppp::LCP, ppp::PROTOCOL_REJECT, id, &payload[..keep]);
        out.push(self.send(s, &p));
    }

    fn on_lcp(&mut self, now: Instant, s: SessionRef, rest: &[u8], out: &mut Vec<Action>) {
        let Ok(pkt) = Packet::parse(rest) else {
            self.counters.malformed += 1;
            return;
        };
        let fresh = self.rng.magic();
        let max_mru = self.settings.mru;
        let sess = self.sessions.get_mut(&s).expect("a known session");
        let was_open = sess.lcp.is_open();
        let mut payloads = Vec::new();
        let mut end = None;
        match pkt.code {
            ppp::CONFIGURE_REQUEST => {
                let Ok(opts) = ppp::parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                let our_magic = sess.our_magic;
                let ans = sess.lcp.answer(
                    pkt.id,
                    pkt.data,
                    &opts,
                    |o| ncp::lcp_verdict(o, max_mru, our_magic, fresh),
                    &[],
                );
                if sess.lcp.peer_acked {
                    sess.peer_mru = DEFAULT_MRU;
                    for o in &opts {
                        match o.kind {
                            ppp::OPT_MRU => sess.peer_mru = o.u16().unwrap_or(DEFAULT_MRU),
                            ppp::OPT_MAGIC => sess.peer_magic = o.u32().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                payloads.push(ans);
                if was_open && !sess.lcp.ours_acked {
                    payloads.push(sess.lcp.request(now));
                }
            }
            ppp::CONFIGURE_ACK => {
                sess.lcp.on_ack(pkt.id, pkt.data);
            }
            ppp::CONFIGURE_NAK | ppp::CONFIGURE_REJECT if sess.lcp.answers_ours(pkt.id) => {
                let Ok(opts) = ppp::parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                let nak = pkt.code == ppp::CONFIGURE_NAK;
                for o in &opts {
                    match (o.kind, nak) {
                        (ppp::OPT_MRU, true) => {
                            if let Some(m) =
                                o.u16().filter(|m| (ncp::MIN_MRU..=max_mru).contains(m))
                            {
                                sess.our_mru = m;
                            }
                        }
                        (ppp::OPT_MRU, false) => sess.our_mru = max_mru.min(DEFAULT_MRU),
                        (ppp::OPT_AUTH, true) => match ncp::auth_of(&o.value) {
                            Some(a) => sess.auth = a,
                            None => end = Some(TerminateCause::AuthFail),
                        },
                        (ppp::OPT_AUTH, false) => end = Some(TerminateCause::AuthFail),
                        (ppp::OPT_MAGIC, _) => sess.our_magic = fresh,
                        _ => {}
                    }
                }
                let mut ours = sess.lcp_options();
                if !nak {
                    // Rejected options are left out of the next request.
                    ours.retain(|x| {
                        !opts.iter().any(|o| o.kind == x.kind) || x.kind == ppp::OPT_AUTH
                    });
                }
                sess.lcp.ours = ours;
                payloads.push(sess.lcp.request(now));
            }
            ppp::CONFIGURE_NAK | ppp::CONFIGURE_REJECT => {}
            ppp::TERMINATE_REQUEST => {
                payloads.push(ppp::encode(ppp::LCP, ppp::TERMINATE_ACK, pkt.id, &[]));
                end = Some(TerminateCause::UserRequest);
            }
            ppp::TERMINATE_ACK | ppp::DISCARD_REQUEST | ppp::CODE_REJECT => {}
            ppp::PROTOCOL_REJECT => match pkt.data.get(..2) {
                Some([0x80, 0x21]) => sess.ipcp = None,
                Some([0x80, 0x57]) => sess.ipv6cp = None,
                _ => {}
            },
            ppp::ECHO_REQUEST if was_open => {
                // A request carrying our own magic is our own, looped back.
                if pkt.data.get(..4) != Some(&sess.our_magic.to_be_bytes()[..]) {
                    let mut d = sess.our_magic.to_be_bytes().to_vec();
                    d.extend_from_slice(pkt.data.get(4..).unwrap_or(&[]));
                    payloads.push(ppp::encode(ppp::LCP, ppp::ECHO_REPLY, pkt.id, &d));
                }
            }
            ppp::ECHO_REPLY => {
                sess.unanswered = 0;
                self.counters.echo_replies_received += 1;
            }
            ppp::ECHO_REQUEST => {}
            _ => {
                sess.echo_id = sess.echo_id.wrapping_add(1);
                let keep = rest.len().min(usize::from(sess.mru()) - 8);
                payloads.push(ppp::encode(
                    ppp::LCP,
                    ppp::CODE_REJECT,
                    sess.echo_id,
                    &rest[..keep],
                ));
            }
        }
        // LCP just opened: authentication starts, echoes are scheduled.
        let mut challenge = None;
        if !was_open && sess.lcp.is_open() && sess.state == SessionState::Lcp {
            sess.state = SessionState::Auth;
            sess.next_echo = Some(now + self.settings.echo_interval);
            if sess.auth == AuthProtocol::Chap {
                sess.chap_id = sess.chap_id.wrapping_add(fresh as u8);
                sess.challenge = self.rng.bytes(CHALLENGE_LEN);
                sess.chap_sent_at = Some(now);
                sess.chap_tries = 1;
                challenge = Some(auth::chap_value(
                    auth::CHAP_CHALLENGE,
                    sess.chap_id,
                    &sess.challenge,
                    &self.settings.ac_name,
                ));
            }
        }
        for p in payloads {
            out.push(self.send(s, &p));
        }
        if let Some(c) = challenge {
            out.push(self.send(s, &c));
        }
        if let Some(cause) = end {
            let term = cause != TerminateCause::UserRequest;
            self.end(s, cause, term, true, out);
        }
    }

    fn on_pap(&mut self, s: SessionRef, rest: &[u8], out: &mut Vec<Action>) {
        let sess = self.sessions.get_mut(&s).expect("a known session");
        let Ok(pkt) = Packet::parse(rest) else {
            self.counters.malformed += 1;
            return;
        };
        if sess.auth != AuthProtocol::Pap || pkt.code != auth::PAP_REQUEST {
            self.counters.ignored += 1;
            return;
        }
        let Ok((user, password)) = auth::parse_pap_request(pkt.data) else {
            self.counters.malformed += 1;
            return;
        };
        sess.pap_id = pkt.id;
        match sess.state {
            SessionState::Auth if !sess.auth_pending => {
                sess.auth_pending = true;
                sess.user = Some(user.clone());
                out.push(Action::Authenticate {
                    session: s,
                    request: AuthRequest::Pap { user, password },
                });
            }
            // The client did not hear our Ack: say it again.
            SessionState::Network | SessionState::Up => {
                let p = auth::pap_reply(auth::PAP_ACK, pkt.id, "welcome");
                out.push(self.send(s, &p));
            }
            _ => {}
        }
    }

    fn on_chap(&mut self, s: SessionRef, rest: &[u8], out: &mut Vec<Action>) {
        let sess = self.sessions.get_mut(&s).expect("a known session");
        let Ok(pkt) = Packet::parse(rest) else {
            self.counters.malformed += 1;
            return;
        };
        if sess.auth != AuthProtocol::Chap
            || pkt.code != auth::CHAP_RESPONSE
            || pkt.id != sess.chap_id
        {
            self.counters.ignored += 1;
            return;
        }
        let Ok((response, user)) = auth::parse_chap_value(pkt.data) else {
            self.counters.malformed += 1;
            return;
        };
        match sess.state {
            SessionState::Auth if !sess.auth_pending => {
                sess.auth_pending = true;
                sess.user = Some(user.clone());
                out.push(Action::Authenticate {
                    session: s,
                    request: AuthRequest::Chap {
                        user,
                        id: pkt.id,
                        challenge: sess.challenge.clone(),
                        response,
                    },
                });
            }
            SessionState::Network | SessionState::Up => {
                let p = auth::chap_result(auth::CHAP_SUCCESS, pkt.id, "welcome");
                out.push(self.send(s, &p));
            }
            _ => {}
        }
    }

    fn on_ncp(
        &mut self,
        now: Instant,
        s: SessionRef,
        proto: u16,
        payload: &[u8],
        rest: &[u8],
        out: &mut Vec<Action>,
    ) {
        let sess = self.sessions.get_mut(&s).expect("a known session");
        // Before authentication, network protocols are silently discarded
        // (RFC 1661 3.5).
        if !matches!(sess.state, SessionState::Network | SessionState::Up) {
            return;
        }
        let granted4 = sess.grant.as_ref().and_then(|g| g.ipv4);
        let v4 = proto == ppp::IPCP;
        if (v4 && sess.ipcp.is_none()) || (!v4 && sess.ipv6cp.is_none()) {
            self.protocol_reject(s, payload, out);
            return;
        }
        let Ok(pkt) = Packet::parse(rest) else {
            self.counters.malformed += 1;
            return;
        };
        let suggested = {
            let id = ncp::eui64(s.line.mac);
            if id != sess.our_ifid {
                id
            } else {
                self.rng.next_u64() | 1
            }
        };
        let our_ifid = sess.our_ifid;
        let cp = if v4 { &mut sess.ipcp } else { &mut sess.ipv6cp };
        let cp = cp.as_mut().expect("checked above");
        let mut payloads = Vec::new();
        match pkt.code {
            ppp::CONFIGURE_REQUEST => {
                let Ok(opts) = ppp::parse_options(pkt.data) else {
                    self.counters.malformed += 1;
                    return;
                };
                let ans = if v4 {
                    let g = granted4.expect("IPCP exists only with an IPv4 grant");
                    let hint = if opts.iter().any(|o| o.kind == ncp::IPCP_ADDRESS) {
                        Vec::new()
                    } else {
                        vec![Opt::new(ncp::IPCP_ADDRESS, &g.octets())]
                    };
                    cp.answer(pkt.id, pkt.data, &opts, |o| ncp::ipcp_verdict(o, g), &hint)
                } else {
                    let ans = cp.answer(
                        pkt.id,
                        pkt.data,
                        &opts,
                        |o| ncp::ipv6cp_verdict(o, our_ifid, suggested),
                        &[],
                    );
                    if cp.peer_acked
                        && let Some(o) = opts.iter().find(|o| o.kind == ncp::IPV6CP_IFID)
                    {
                        sess.peer_ifid =
                            u64::from_be_bytes(o.value[..].try_into().expect("8 bytes"));
                    }
                    ans
                };
                payloads.push(ans);
            }
            ppp::CONFIGURE_ACK => {
                cp.on_ack(pkt.id, pkt.data);
            }
            ppp::CONFIGURE_NAK if cp.answers_ours(pkt.id) => payloads.push(cp.request(now)),
            ppp::CONFIGURE_REJECT if cp.answers_ours(pkt.id) => {
                if let Ok(opts) = ppp::parse_options(pkt.data) {
                    cp.ours.retain(|x| !opts.iter().any(|o| o.kind == x.kind));
                }
                payloads.push(cp.request(now));
            }
            ppp::TERMINATE_REQUEST => {
                cp.ours_acked = false;
                cp.peer_acked = false;
                payloads.push(ppp::encode(proto, ppp::TERMINATE_ACK, pkt.id, &[]));
            }
            ppp::CONFIGURE_NAK | ppp::CONFIGURE_REJECT | ppp::TERMINATE_ACK | ppp::CODE_REJECT => {}
            _ => {
                cp.id = cp.id.wrapping_add(1);
                payloads.push(ppp::encode(proto, ppp::CODE_REJECT, cp.id, rest));
            }
        }
        let opened = cp.is_open();
        let mut up = false;
        if opened && sess.state == SessionState::Network {
            sess.state = SessionState::Up;
            up = true;
        }
        for p in payloads {
            out.push(self.send(s, &p));
        }
        if up {
            out.push(Action::Up { session: s });
        }
    }

    /// An IPv6 packet for the daemon: DHCPv6 to the servers' address is
    /// answered.
    fn on_ipv6(&mut self, s: SessionRef, ip: &[u8], out: &mut Vec<Action>) {
        let sess = &self.sessions[&s];
        if !matches!(sess.state, SessionState::Up | SessionState::Network) {
            return;
        }
        let Some(grant) = sess.grant.as_ref().filter(|g| g.has_ipv6()) else {
            return;
        };
        let reply = match dhcpv6::serve(
            ip,
            self.ports[sess.port].mac,
            sess.our_ifid,
            grant.delegated,
        ) {
            dhcpv6::Served::NotDhcp => return,
            dhcpv6::Served::Malformed => {
                self.counters.malformed += 1;
                return;
            }
            dhcpv6::Served::NotForUs => {
                self.counters.ignored += 1;
                return;
            }
            dhcpv6::Served::Reply(r) => r,
        };
        let mut payload = ppp::IPV6.to_be_bytes().to_vec();
        payload.extend_from_slice(&reply);
        self.counters.dhcpv6_replies += 1;
        out.push(self.send(s, &payload));
    }
}

#[cfg(test)]
mod tests;
