//! A PPPoE client for the tests (blocking): this kernel has no PPP, so no
//! pppd. It speaks over a [`RawPort`] (AF_PACKET, outer tag restored from
//! `PACKET_AUXDATA`) on a veth of a namespace, writing its S/C tags in its
//! frames, with an encoding of its own ([`wire`]: never collecte's).
//!
//! Each step is callable alone: [`PppoeClient::discover`],
//! [`PppoeClient::lcp`] (or [`PppoeClient::lcp_pap`], which Naks CHAP to
//! PAP), [`PppoeClient::pap`] / [`PppoeClient::chap`],
//! [`PppoeClient::ipcp`], [`PppoeClient::ipv6cp`],
//! [`PppoeClient::dhcpv6_pd`], data with [`PppoeClient::send_ipv4`],
//! [`PppoeClient::send_ipv6`] and [`PppoeClient::recv_ip`], and
//! [`PppoeClient::echo`], [`PppoeClient::padt`],
//! [`PppoeClient::expect_padt`]. While it waits, it answers the server's
//! LCP Echo-Requests (unless [`PppoeClient::answer_echoes`] is off) and
//! keeps the frames it was not waiting for, for the next step.
pub mod wire;

use std::{
    collections::VecDeque,
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use etherparse::{IpNumber, Ipv6Header, UdpHeader};

use crate::tagged::RawPort;
use wire::*;

/// A DHCPv6 message: its type and its options (code, value).
pub type Dhcpv6Message = (u8, Vec<(u16, Vec<u8>)>);

/// A client on one line.
pub struct PppoeClient {
    pub port: RawPort,
    pub mac: [u8; 6],
    /// Tags written in its frames, (TPID, VLAN id), outer first.
    pub tags: Vec<(u16, u16)>,
    /// The server (learned from the PADO).
    pub server: [u8; 6],
    /// The session id (from the PADS; 0 before).
    pub session: u16,
    pub magic: u32,
    /// The server's magic number (from its LCP request).
    pub server_magic: u32,
    /// The MRU the server asked for.
    pub server_mru: u16,
    /// How long each step waits for an answer.
    pub timeout: Duration,
    /// Answer the server's LCP Echo-Requests while waiting.
    pub answer_echoes: bool,
    /// Echo-Requests answered so far.
    pub echoes_answered: u32,
    id: u8,
    backlog: VecDeque<Pppoe>,
}

impl PppoeClient {
    /// A client with MAC `mac` and `tags` on interface `dev` of namespace
    /// `ns`.
    pub fn open(ns: &str, dev: &str, mac: [u8; 6], tags: &[(u16, u16)]) -> PppoeClient {
        PppoeClient {
            port: RawPort::open(ns, dev),
            mac,
            tags: tags.to_vec(),
            server: [0xff; 6],
            session: 0,
            magic: 0x5eed_0000 | u32::from(mac[5]),
            server_magic: 0,
            server_mru: 0,
            timeout: Duration::from_secs(5),
            answer_echoes: true,
            echoes_answered: 0,
            id: 0,
            backlog: VecDeque::new(),
        }
    }

    fn next_id(&mut self) -> u8 {
        self.id = self.id.wrapping_add(1);
        self.id
    }

    /// Sends a raw frame.
    pub fn send_raw(&self, frame: &[u8]) {
        self.port.send(frame);
    }

    /// The next frame on the wire, whatever it is (the backlog is not read).
    pub fn recv_raw(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.port.recv(timeout)
    }

    /// A session frame of ours carrying `payload` (protocol first).
    pub fn session_frame(&self, payload: &[u8]) -> Vec<u8> {
        frame(
            self.server,
            self.mac,
            &self.tags,
            0x8864,
            0,
            self.session,
            payload,
        )
    }

    fn send_session(&self, payload: &[u8]) {
        self.port.send(&self.session_frame(payload));
    }

    fn disc(&self, dst: [u8; 6], code: u8, session: u16, payload: &[u8]) {
        self.port.send(&frame(
            dst, self.mac, &self.tags, 0x8863, code, session, payload,
        ));
    }

    /// Is `p` for us: our MAC, our tags exactly?
    fn mine(&self, p: &Pppoe) -> bool {
        p.dst == self.mac && p.tags == self.tags
    }

    /// The first PPPoE frame for us satisfying `pred` within `timeout`
    /// (backlog first); others are kept, echo requests answered.
    pub fn wait(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Pppoe) -> bool,
    ) -> Option<Pppoe> {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i);
        }
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let f = self.port.recv(left)?;
            let Some(p) = parse(&f) else { continue };
            if !self.mine(&p) {
                continue;
            }
            if self.answer_echoes
                && p.ethertype == 0x8864
                && p.session == self.session
                && let Some((LCP, ECHO_REQ, id, data)) = parse_ctl(&p.payload)
            {
                let mut d = self.magic.to_be_bytes().to_vec();
                d.extend_from_slice(data.get(4..).unwrap_or(&[]));
                self.send_session(&ctl(LCP, ECHO_REP, id, &d));
                self.echoes_answered += 1;
                continue;
            }
            if pred(&p) {
                return Some(p);
            }
            self.backlog.push_back(p);
            if self.backlog.len() > 256 {
                self.backlog.pop_front();
            }
        }
    }

    /// The next control packet of `proto` in our session: (code, id, data).
    fn wait_ctl(&mut self, proto: u16) -> Result<(u8, u8, Vec<u8>)> {
        let sid = self.session;
        let p = self
            .wait(self.timeout, |p| {
                p.ethertype == 0x8864
                    && p.session == sid
                    && parse_ctl(&p.payload).is_some_and(|c| c.0 == proto)
            })
            .with_context(|| format!("no {proto:#06x} packet from the server"))?;
        let (_, code, id, data) = parse_ctl(&p.payload).expect("checked");
        Ok((code, id, data))
    }

    /// PADI → PADO → PADR → PADS: the session id.
    pub fn discover(&mut self) -> Result<u16> {
        let uniq = self.mac[2..].to_vec();
        let padi = tags(&[(TAG_SERVICE_NAME, b""), (TAG_HOST_UNIQ, &uniq)]);
        self.disc([0xff; 6], PADI, 0, &padi);
        let pado = self
            .wait(self.timeout, |p| p.ethertype == 0x8863 && p.code == PADO)
            .context("no PADO")?;
        if tag(&pado.payload, TAG_HOST_UNIQ).as_deref() != Some(&uniq[..]) {
            bail!("the PADO does not echo our Host-Uniq");
        }
        tag(&pado.payload, TAG_AC_NAME).context("the PADO has no AC-Name")?;
        let cookie = tag(&pado.payload, TAG_AC_COOKIE).unwrap_or_default();
        self.server = pado.src;
        let mut list: Vec<(u16, &[u8])> = vec![(TAG_SERVICE_NAME, b""), (TAG_HOST_UNIQ, &uniq)];
        if !cookie.is_empty() {
            list.push((TAG_AC_COOKIE, &cookie));
        }
        self.disc(self.server, PADR, 0, &tags(&list));
        let pads = self
            .wait(self.timeout, |p| p.ethertype == 0x8863 && p.code == PADS)
            .context("no PADS")?;
        if pads.session == 0 {
            bail!("PADS with session id 0 (refused)");
        }
        self.session = pads.session;
        Ok(pads.session)
    }

    /// LCP with our MRU `mru`, accepting the server's authentication.
    pub fn lcp(&mut self, mru: u16) -> Result<()> {
        self.lcp_with(mru, false)
    }

    /// LCP with our MRU `mru`, Nak'ing CHAP to PAP.
    pub fn lcp_pap(&mut self, mru: u16) -> Result<()> {
        self.lcp_with(mru, true)
    }

    fn lcp_with(&mut self, mru: u16, pap: bool) -> Result<()> {
        let mine = opts(&[(1, &mru.to_be_bytes()), (5, &self.magic.to_be_bytes())]);
        let id = self.next_id();
        self.send_session(&ctl(LCP, CONF_REQ, id, &mine));
        let (mut acked, mut acking) = (false, false);
        let end = Instant::now() + self.timeout;
        while !(acked && acking) {
            if Instant::now() > end {
                bail!("LCP did not open (acked {acked}, acking {acking})");
            }
            let (code, rid, data) = self.wait_ctl(LCP)?;
            match code {
                CONF_REQ => {
                    let o = parse_opts(&data);
                    let auth = o.iter().find(|x| x.0 == 3).map(|x| x.1.clone());
                    if pap && auth.as_deref() != Some(&[0xc0, 0x23][..]) {
                        self.send_session(&ctl(LCP, CONF_NAK, rid, &opts(&[(3, &[0xc0, 0x23])])));
                        continue;
                    }
                    for (t, v) in &o {
                        match (t, v.len()) {
                            (1, 2) => self.server_mru = u16::from_be_bytes([v[0], v[1]]),
                            (5, 4) => {
                                self.server_magic = u32::from_be_bytes([v[0], v[1], v[2], v[3]])
                            }
                            _ => {}
                        }
                    }
                    self.send_session(&ctl(LCP, CONF_ACK, rid, &data));
                    acking = true;
                }
                CONF_ACK if rid == self.id => {
                    if data != mine {
                        bail!("the server's Configure-Ack changes our options");
                    }
                    acked = true;
                }
                CONF_NAK | CONF_REJ => {
                    bail!("the server refused our LCP options: code {code} {data:?}")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// PAP: `Ok(true)` on Authenticate-Ack, `Ok(false)` on -Nak.
    pub fn pap(&mut self, user: &str, password: &str) -> Result<bool> {
        let mut d = vec![user.len() as u8];
        d.extend_from_slice(user.as_bytes());
        d.push(password.len() as u8);
        d.extend_from_slice(password.as_bytes());
        let id = self.next_id();
        self.send_session(&ctl(PAP, 1, id, &d));
        let (code, rid, _) = self.wait_ctl(PAP)?;
        if rid != id {
            bail!("PAP answer to id {rid}, not {id}");
        }
        Ok(code == 2)
    }

    /// CHAP-MD5: answers the server's challenge; `Ok(true)` on Success.
    pub fn chap(&mut self, user: &str, password: &str) -> Result<bool> {
        let (code, id, data) = self.wait_ctl(CHAP)?;
        if code != 1 || data.is_empty() {
            bail!("expected a CHAP challenge, got code {code}");
        }
        let challenge = &data[1..1 + data[0] as usize];
        let mut m = vec![id];
        m.extend_from_slice(password.as_bytes());
        m.extend_from_slice(challenge);
        let mut d = vec![16];
        d.extend_from_slice(&md5(&m));
        d.extend_from_slice(user.as_bytes());
        self.send_session(&ctl(CHAP, 2, id, &d));
        let (code, rid, _) = self.wait_ctl(CHAP)?;
        if rid != id {
            bail!("CHAP result for id {rid}, not {id}");
        }
        Ok(code == 3)
    }

    /// IPCP, starting from 0.0.0.0: the address the server gives, and
    /// the server's own.
    pub fn ipcp(&mut self) -> Result<(Ipv4Addr, Ipv4Addr)> {
        let mut addr = [0u8; 4];
        let mut server = None;
        let id = self.next_id();
        self.send_session(&ctl(IPCP, CONF_REQ, id, &opts(&[(3, &addr)])));
        let mut acked = false;
        let end = Instant::now() + self.timeout;
        while !(acked && server.is_some()) {
            if Instant::now() > end {
                bail!("IPCP did not open");
            }
            let (code, rid, data) = self.wait_ctl(IPCP)?;
            match code {
                CONF_REQ => {
                    let o = parse_opts(&data);
                    match o.iter().find(|x| x.0 == 3 && x.1.len() == 4) {
                        Some((_, v)) => server = Some(Ipv4Addr::new(v[0], v[1], v[2], v[3])),
                        None => bail!("the server's IPCP request has no address"),
                    }
                    self.send_session(&ctl(IPCP, CONF_ACK, rid, &data));
                }
                CONF_NAK if rid == self.id => {
                    let o = parse_opts(&data);
                    let (_, v) = o
                        .iter()
                        .find(|x| x.0 == 3)
                        .context("IPCP Nak without an address")?;
                    addr.copy_from_slice(&v[..4]);
                    let id = self.next_id();
                    self.send_session(&ctl(IPCP, CONF_REQ, id, &opts(&[(3, &addr)])));
                }
                CONF_ACK if rid == self.id => acked = true,
                CONF_REJ => bail!("IPCP options rejected: {data:?}"),
                _ => {}
            }
        }
        Ok((Ipv4Addr::from(addr), server.expect("loop condition")))
    }

    /// IPv6CP with our EUI-64: (ours as agreed, the server's).
    pub fn ipv6cp(&mut self) -> Result<(u64, u64)> {
        let mut ours = eui64(self.mac);
        let mut server = None;
        let id = self.next_id();
        self.send_session(&ctl(IPV6CP, CONF_REQ, id, &opts(&[(1, &ours)])));
        let mut acked = false;
        let end = Instant::now() + self.timeout;
        while !(acked && server.is_some()) {
            if Instant::now() > end {
                bail!("IPv6CP did not open");
            }
            let (code, rid, data) = self.wait_ctl(IPV6CP)?;
            match code {
                CONF_REQ => {
                    let o = parse_opts(&data);
                    let (_, v) = o
                        .iter()
                        .find(|x| x.0 == 1 && x.1.len() == 8)
                        .context("no interface id")?;
                    server = Some(u64::from_be_bytes(v[..].try_into().expect("8")));
                    self.send_session(&ctl(IPV6CP, CONF_ACK, rid, &data));
                }
                CONF_NAK if rid == self.id => {
                    let o = parse_opts(&data);
                    let (_, v) = o
                        .iter()
                        .find(|x| x.0 == 1)
                        .context("IPv6CP Nak without an id")?;
                    ours.copy_from_slice(&v[..8]);
                    let id = self.next_id();
                    self.send_session(&ctl(IPV6CP, CONF_REQ, id, &opts(&[(1, &ours)])));
                }
                CONF_ACK if rid == self.id => acked = true,
                CONF_REJ => bail!("IPv6CP options rejected"),
                _ => {}
            }
        }
        Ok((u64::from_be_bytes(ours), server.expect("loop condition")))
    }

    /// Our link-local address (EUI-64).
    pub fn link_local(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[8..].copy_from_slice(&eui64(self.mac));
        a.into()
    }

    fn dhcpv6_send(&self, msg: &[u8]) {
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: (8 + msg.len()) as u16,
            next_header: IpNumber::UDP,
            hop_limit: 1,
            source: self.link_local().octets(),
            destination: [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2],
        };
        let udp = UdpHeader::with_ipv6_checksum(546, 547, &h, msg).expect("UDP");
        let mut ip = Vec::new();
        h.write(&mut ip).expect("IPv6");
        udp.write(&mut ip).expect("UDP");
        ip.extend_from_slice(msg);
        self.send_ipv6(&ip);
    }

    /// The next DHCPv6 message to us in the session: (type, options).
    fn dhcpv6_recv(&mut self, xid: [u8; 3]) -> Result<Dhcpv6Message> {
        let sid = self.session;
        let p = self
            .wait(self.timeout, |p| {
                p.ethertype == 0x8864
                    && p.session == sid
                    && p.payload.len() > 2 + 48
                    && p.payload[..2] == [0, 0x57]
                    && p.payload[2 + 6] == 17
                    && p.payload[2 + 40..2 + 44] == [2, 0x23, 2, 0x22]
            })
            .context("no DHCPv6 answer")?;
        let ip = &p.payload[2..];
        let (h, rest) = Ipv6Header::from_slice(ip).context("IPv6 header")?;
        let (udp, data) = UdpHeader::from_slice(rest).context("UDP header")?;
        let data = &data[..udp.length as usize - 8];
        let want = udp.calc_checksum_ipv6(&h, data).context("checksum")?;
        if want != udp.checksum {
            bail!("DHCPv6 answer with a wrong UDP checksum");
        }
        if data[1..4] != xid {
            bail!("DHCPv6 answer to another transaction");
        }
        let mut o = Vec::new();
        let mut d = &data[4..];
        while d.len() >= 4 {
            let c = u16::from_be_bytes([d[0], d[1]]);
            let l = u16::from_be_bytes([d[2], d[3]]) as usize;
            o.push((c, d.get(4..4 + l).context("DHCPv6 option length")?.to_vec()));
            d = &d[4 + l..];
        }
        Ok((data[0], o))
    }

    /// DHCPv6 Solicit → Advertise → Request → Reply for one IA_PD: the
    /// delegated prefix and its length.
    pub fn dhcpv6_pd(&mut self) -> Result<(Ipv6Addr, u8)> {
        let duid: Vec<u8> = [&[0, 3, 0, 1][..], &self.mac].concat();
        let opt =
            |c: u16, v: &[u8]| [&c.to_be_bytes()[..], &(v.len() as u16).to_be_bytes(), v].concat();
        let ia_pd = opt(25, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let solicit = [
            &[1, 0xa, 0xb, 0xc][..],
            &opt(1, &duid),
            &opt(8, &[0, 0]),
            &ia_pd,
        ]
        .concat();
        self.dhcpv6_send(&solicit);
        let (t, o) = self.dhcpv6_recv([0xa, 0xb, 0xc])?;
        if t != 2 {
            bail!("expected an Advertise, got DHCPv6 type {t}");
        }
        let server = o
            .iter()
            .find(|x| x.0 == 2)
            .context("Advertise without Server-Id")?
            .1
            .clone();
        let request = [
            &[3, 0xa, 0xb, 0xd][..],
            &opt(1, &duid),
            &opt(2, &server),
            &opt(8, &[0, 0]),
            &ia_pd,
        ]
        .concat();
        self.dhcpv6_send(&request);
        let (t, o) = self.dhcpv6_recv([0xa, 0xb, 0xd])?;
        if t != 7 {
            bail!("expected a Reply, got DHCPv6 type {t}");
        }
        let ia = &o
            .iter()
            .find(|x| x.0 == 25)
            .context("Reply without IA_PD")?
            .1;
        let mut d = ia.get(12..).context("short IA_PD")?;
        while d.len() >= 4 {
            let c = u16::from_be_bytes([d[0], d[1]]);
            let l = u16::from_be_bytes([d[2], d[3]]) as usize;
            let v = d.get(4..4 + l).context("IA_PD option length")?;
            if c == 26 && l >= 25 {
                let p: [u8; 16] = v[9..25].try_into().expect("16");
                return Ok((p.into(), v[8]));
            }
            if c == 13 {
                bail!(
                    "IA_PD status {}: {}",
                    u16::from_be_bytes([v[0], v[1]]),
                    String::from_utf8_lossy(&v[2..])
                );
            }
            d = &d[4 + l..];
        }
        bail!("IA_PD without a prefix")
    }

    /// Sends an IPv4 packet in the session.
    pub fn send_ipv4(&self, ip: &[u8]) {
        self.send_session(&[&IPV4.to_be_bytes()[..], ip].concat());
    }

    /// Sends an IPv6 packet in the session.
    pub fn send_ipv6(&self, ip: &[u8]) {
        self.send_session(&[&IPV6.to_be_bytes()[..], ip].concat());
    }

    /// The next IP packet (IPv4 or IPv6) in the session, without its PPP
    /// protocol field.
    pub fn recv_ip(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let sid = self.session;
        let p = self.wait(timeout, |p| {
            p.ethertype == 0x8864
                && p.session == sid
                && (p.payload.starts_with(&[0, 0x21]) || p.payload.starts_with(&[0, 0x57]))
        })?;
        Some(p.payload[2..].to_vec())
    }

    /// An LCP Echo-Request, answered with the server's magic.
    pub fn echo(&mut self) -> Result<()> {
        let id = self.next_id();
        self.send_session(&ctl(LCP, ECHO_REQ, id, &self.magic.to_be_bytes()));
        loop {
            let (code, rid, data) = self.wait_ctl(LCP)?;
            if code == ECHO_REP && rid == id {
                if data.get(..4) != Some(&self.server_magic.to_be_bytes()[..]) {
                    bail!("Echo-Reply without the server's magic number");
                }
                return Ok(());
            }
        }
    }

    /// Ends the session with a PADT.
    pub fn padt(&mut self) {
        self.disc(self.server, PADT, self.session, &[]);
    }

    /// Waits for the server's PADT of our session (an LCP
    /// Terminate-Request before it is acknowledged).
    pub fn expect_padt(&mut self, timeout: Duration) -> Result<()> {
        let sid = self.session;
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let p = self
                .wait(left, |p| {
                    p.session == sid
                        && (p.ethertype == 0x8863
                            || parse_ctl(&p.payload).is_some_and(|c| c.0 == LCP && c.1 == TERM_REQ))
                })
                .context("no PADT from the server")?;
            if p.ethertype == 0x8863 {
                if p.code != PADT {
                    bail!("discovery code {:#04x} instead of a PADT", p.code);
                }
                return Ok(());
            }
            let (_, _, id, _) = parse_ctl(&p.payload).expect("checked");
            self.send_session(&ctl(LCP, TERM_ACK, id, &[]));
        }
    }
}
