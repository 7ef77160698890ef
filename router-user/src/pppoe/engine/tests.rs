//! The engine driven by scripted frames: a client written here from the
//! codecs (themselves checked byte for byte against RFC frames).
use std::time::Duration;

use super::*;
use std::net::Ipv6Addr;

use dhcproto::{
    Decodable as _, Encodable as _,
    v6::{DhcpOption, DhcpOptions, IAPD, Message, MessageType, OptionCode},
};

use crate::pppoe::{
    dhcpv6::{self, link_local},
    frame::Frame,
};

const US: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const IFINDEX: u32 = 3;

fn settings() -> Settings {
    Settings {
        ac_name: "test-ac".into(),
        echo_interval: Duration::from_secs(10),
        echo_failures: 2,
        ..Settings::default()
    }
}

fn engine() -> Engine {
    Engine::with_seed(
        settings(),
        vec![Port {
            ifindex: IFINDEX,
            ifname: "acc0".into(),
            iface_slot: 1,
            mac: US,
            gateway_ipv4: Some(Ipv4Addr::new(198, 51, 100, 1)),
        }],
        42,
    )
}

fn grant() -> Grant {
    Grant {
        ipv4: Some(Ipv4Addr::new(100, 64, 7, 9)),
        ipv6_prefix: None,
        delegated: Some("2001:db8:700::/56".parse().unwrap()),
    }
}

use std::net::Ipv4Addr;

/// A scripted client on one line.
struct Client {
    line: Line,
    sid: u16,
    now: Instant,
}

impl Client {
    fn new(s_vlan: u16, c_vlan: u16) -> Client {
        Client {
            line: Line {
                ifindex: IFINDEX,
                s_vlan,
                c_vlan,
                mac: CLIENT,
            },
            sid: 0,
            now: Instant::now(),
        }
    }

    fn disc(&self, dst: [u8; 6], code: u8, sid: u16, tags: &Tags) -> Vec<u8> {
        frame::build(
            dst,
            CLIENT,
            &self.line,
            Stage::Discovery,
            code,
            sid,
            &tags.encode(),
        )
    }

    fn sess(&self, payload: &[u8]) -> Vec<u8> {
        frame::build(US, CLIENT, &self.line, Stage::Session, 0, self.sid, payload)
    }

    fn session(&self) -> SessionRef {
        SessionRef {
            line: self.line,
            session_id: self.sid,
        }
    }

    fn feed(&self, e: &mut Engine, f: &[u8]) -> Vec<Action> {
        e.on_frame(self.now, IFINDEX, f)
    }

    /// PADI → PADO → PADR → PADS; returns the actions of the PADR.
    fn discover(&mut self, e: &mut Engine) -> Vec<Action> {
        let mut t = Tags::default();
        t.push(discovery::SERVICE_NAME, b"")
            .push(discovery::HOST_UNIQ, &[1, 2, 3, 4])
            .push(discovery::RELAY_SESSION_ID, b"relay");
        let a = self.feed(e, &self.disc(BROADCAST, discovery::PADI, 0, &t));
        let pado = frames(&a);
        assert_eq!(pado.len(), 1);
        let p = frame::parse(IFINDEX, &pado[0]).unwrap();
        assert_eq!((p.code, p.session_id, p.dst), (discovery::PADO, 0, CLIENT));
        assert_eq!(
            (p.line.s_vlan, p.line.c_vlan, p.line.mac),
            (self.line.s_vlan, self.line.c_vlan, US),
            "the PADO carries the PADI's tags"
        );
        let got = Tags::parse(p.payload).unwrap();
        assert_eq!(got.get(discovery::AC_NAME), Some(&b"test-ac"[..]));
        assert_eq!(got.get(discovery::SERVICE_NAME), Some(&b""[..]));
        assert_eq!(got.get(discovery::HOST_UNIQ), Some(&[1, 2, 3, 4][..]));
        assert_eq!(got.get(discovery::RELAY_SESSION_ID), Some(&b"relay"[..]));
        let cookie = got
            .get(discovery::AC_COOKIE)
            .expect("an AC-Cookie")
            .to_vec();
        t.push(discovery::AC_COOKIE, &cookie);
        let a = self.feed(e, &self.disc(US, discovery::PADR, 0, &t));
        let f = frames(&a);
        let pads = frame::parse(IFINDEX, &f[0]).unwrap();
        assert_eq!(pads.code, discovery::PADS);
        assert_eq!(
            (pads.line.s_vlan, pads.line.c_vlan),
            (self.line.s_vlan, self.line.c_vlan)
        );
        assert!(pads.session_id != 0 && pads.session_id != 0xffff);
        let got = Tags::parse(pads.payload).unwrap();
        assert_eq!(got.get(discovery::HOST_UNIQ), Some(&[1, 2, 3, 4][..]));
        assert_eq!(got.get(discovery::RELAY_SESSION_ID), Some(&b"relay"[..]));
        self.sid = pads.session_id;
        a
    }

    /// LCP with our options `opts`; returns our Configure-Request seen.
    fn lcp(&mut self, e: &mut Engine, their_req: &[u8], opts: &[Opt]) -> Vec<Action> {
        let theirs = Packet::parse(&their_req[2..]).unwrap();
        let mut a = self.feed(
            e,
            &self.sess(&ppp::encode(
                ppp::LCP,
                ppp::CONFIGURE_ACK,
                theirs.id,
                theirs.data,
            )),
        );
        a.extend(self.feed(
            e,
            &self.sess(&ppp::encode(
                ppp::LCP,
                ppp::CONFIGURE_REQUEST,
                1,
                &ppp::encode_options(opts),
            )),
        ));
        a
    }
}

fn frames(a: &[Action]) -> Vec<Vec<u8>> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send { ifindex, frame } => {
                assert_eq!(*ifindex, IFINDEX);
                Some(frame.clone())
            }
            _ => None,
        })
        .collect()
}

/// The session payloads (protocol first) among the actions.
fn payloads(a: &[Action]) -> Vec<Vec<u8>> {
    frames(a)
        .iter()
        .filter_map(|f| {
            let p: Frame = frame::parse(IFINDEX, f).unwrap();
            (p.stage == Stage::Session).then(|| p.payload.to_vec())
        })
        .collect()
}

fn find(a: &[Action], proto: u16, code: u8) -> Option<Vec<u8>> {
    payloads(a)
        .into_iter()
        .find(|p| u16::from_be_bytes([p[0], p[1]]) == proto && p[2] == code)
}

fn client_lcp_opts(magic: u32) -> Vec<Opt> {
    vec![
        Opt::new(ppp::OPT_MRU, &1492u16.to_be_bytes()),
        Opt::new(ppp::OPT_MAGIC, &magic.to_be_bytes()),
    ]
}

/// Discovery and LCP, the client Nak'ing CHAP to PAP when `pap`. Returns
/// the actions of the last frame (LCP open).
fn to_auth(e: &mut Engine, c: &mut Client, pap: bool) -> Vec<Action> {
    let a = c.discover(e);
    let ours = find(&a, ppp::LCP, ppp::CONFIGURE_REQUEST).expect("our LCP request with the PADS");
    let opts = ppp::parse_options(Packet::parse(&ours[2..]).unwrap().data).unwrap();
    assert_eq!(opts[0], Opt::new(ppp::OPT_MRU, &1492u16.to_be_bytes()));
    assert_eq!(
        opts[1],
        Opt::new(ppp::OPT_AUTH, &[0xc2, 0x23, 5]),
        "CHAP-MD5 first"
    );
    assert_eq!(opts[2].kind, ppp::OPT_MAGIC);
    let ours = if pap {
        let id = ours[3];
        let a = c.feed(
            e,
            &c.sess(&ppp::encode(
                ppp::LCP,
                ppp::CONFIGURE_NAK,
                id,
                &ppp::encode_options(&[Opt::new(ppp::OPT_AUTH, &[0xc0, 0x23])]),
            )),
        );
        let again = find(&a, ppp::LCP, ppp::CONFIGURE_REQUEST).expect("a new request");
        let opts = ppp::parse_options(Packet::parse(&again[2..]).unwrap().data).unwrap();
        assert_eq!(
            opts[1],
            Opt::new(ppp::OPT_AUTH, &[0xc0, 0x23]),
            "the Nak to PAP is honoured"
        );
        assert_ne!(again[3], id, "a new identifier");
        again
    } else {
        ours
    };
    let a = c.lcp(e, &ours, &client_lcp_opts(0x1111_2222));
    let ack = find(&a, ppp::LCP, ppp::CONFIGURE_ACK).expect("our Ack");
    assert_eq!(
        &ack[6..],
        &ppp::encode_options(&client_lcp_opts(0x1111_2222))[..]
    );
    let v = e.sessions().next().unwrap();
    assert_eq!(v.state, SessionState::Auth);
    assert_eq!(v.peer_magic, 0x1111_2222);
    a
}

/// Authenticated by PAP, then IPCP and IPv6CP to Up. Returns the session.
fn to_up(e: &mut Engine, c: &mut Client) -> SessionRef {
    to_auth(e, c, true);
    let pap = auth_pap(b"bob", b"pw");
    let a = c.feed(e, &c.sess(&pap));
    assert_eq!(
        a,
        vec![Action::Authenticate {
            session: c.session(),
            request: AuthRequest::Pap {
                user: "bob".into(),
                password: b"pw".to_vec()
            }
        }]
    );
    let a = e.on_auth(c.now, c.session(), Ok(grant()));
    assert_eq!(
        find(&a, ppp::PAP, auth::PAP_ACK).unwrap()[3],
        7,
        "the Ack answers the request's id"
    );
    let ipcp = find(&a, ppp::IPCP, ppp::CONFIGURE_REQUEST).expect("our IPCP request");
    assert_eq!(
        &ipcp[6..],
        &[3, 6, 198, 51, 100, 1],
        "our address: the port's gateway"
    );
    let v6 = find(&a, ppp::IPV6CP, ppp::CONFIGURE_REQUEST).expect("our IPv6CP request");
    assert_eq!(&v6[6..], &[1, 10, 0, 0, 0, 0xff, 0xfe, 0, 0, 0xaa]);
    // IPCP: 0.0.0.0 is Nak'ed to the grant, then acknowledged.
    let req = |addr: [u8; 4], id| {
        ppp::encode(
            ppp::IPCP,
            ppp::CONFIGURE_REQUEST,
            id,
            &[3, 6, addr[0], addr[1], addr[2], addr[3]],
        )
    };
    let a = c.feed(e, &c.sess(&req([0; 4], 1)));
    assert_eq!(
        payloads(&a),
        vec![ppp::encode(
            ppp::IPCP,
            ppp::CONFIGURE_NAK,
            1,
            &[3, 6, 100, 64, 7, 9]
        )]
    );
    let a = c.feed(e, &c.sess(&req([100, 64, 7, 9], 2)));
    assert_eq!(find(&a, ppp::IPCP, ppp::CONFIGURE_ACK).unwrap()[3], 2);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Up { .. })),
        "not before our request is acked"
    );
    let mut ack = ipcp.clone();
    ack[2] = ppp::CONFIGURE_ACK;
    let a = c.feed(e, &c.sess(&ack));
    assert_eq!(
        a,
        vec![Action::Up {
            session: c.session()
        }]
    );
    // IPv6CP: the client's identifier is accepted.
    let a = c.feed(
        e,
        &c.sess(&ppp::encode(
            ppp::IPV6CP,
            ppp::CONFIGURE_REQUEST,
            1,
            &[1, 10, 0, 0, 0, 0, 0, 0, 0, 9],
        )),
    );
    assert!(find(&a, ppp::IPV6CP, ppp::CONFIGURE_ACK).is_some());
    let mut ack = v6.clone();
    ack[2] = ppp::CONFIGURE_ACK;
    let a = c.feed(e, &c.sess(&ack));
    assert!(a.is_empty(), "Up only once: {a:?}");
    let v = e.sessions().next().unwrap();
    assert_eq!(v.state, SessionState::Up);
    assert!(v.ipv4_open && v.ipv6_open);
    assert_eq!(v.user, Some("bob"));
    c.session()
}

fn auth_pap(user: &[u8], pw: &[u8]) -> Vec<u8> {
    let mut d = vec![user.len() as u8];
    d.extend_from_slice(user);
    d.push(pw.len() as u8);
    d.extend_from_slice(pw);
    ppp::encode(ppp::PAP, auth::PAP_REQUEST, 7, &d)
}

#[test]
fn discovery_works_untagged_on_802_1q_and_on_qinq() {
    for (s, c) in [(0, 0), (0, 200), (100, 200)] {
        let mut e = engine();
        let mut cl = Client::new(s, c);
        cl.discover(&mut e);
        let v = e.sessions().next().unwrap();
        assert_eq!(v.session.line, cl.line);
        assert_eq!(v.state, SessionState::Lcp);
        assert_eq!(
            v.session.nas_port_id("acc0"),
            match (s, c) {
                (0, 0) => "acc0".to_string(),
                (0, c) => format!("acc0:{c}"),
                (s, c) => format!("acc0:{s}.{c}"),
            }
        );
        assert_eq!(e.counters().pads, 1);
    }
}

#[test]
fn a_padr_without_the_cookie_is_ignored_and_ids_are_unique() {
    let mut e = engine();
    let c = Client::new(0, 0);
    let mut t = Tags::default();
    t.push(discovery::SERVICE_NAME, b"");
    assert!(
        c.feed(&mut e, &c.disc(US, discovery::PADR, 0, &t))
            .is_empty()
    );
    t.push(discovery::AC_COOKIE, &[0; 16]);
    assert!(
        c.feed(&mut e, &c.disc(US, discovery::PADR, 0, &t))
            .is_empty()
    );
    assert_eq!(e.counters().ignored, 2);
    // Two clients get two ids.
    let mut a = Client::new(0, 0);
    a.discover(&mut e);
    let mut b = Client::new(0, 0);
    b.line.mac = [2, 0, 0, 0, 0, 2];
    // (the scripted client signs with CLIENT; a second MAC needs its own frames)
    let mut t = Tags::default();
    t.push(discovery::SERVICE_NAME, b"");
    let padi = frame::build(
        BROADCAST,
        b.line.mac,
        &b.line,
        Stage::Discovery,
        discovery::PADI,
        0,
        &t.encode(),
    );
    let pado = frames(&e.on_frame(b.now, IFINDEX, &padi));
    let cookie = Tags::parse(frame::parse(IFINDEX, &pado[0]).unwrap().payload)
        .unwrap()
        .get(discovery::AC_COOKIE)
        .unwrap()
        .to_vec();
    t.push(discovery::AC_COOKIE, &cookie);
    let padr = frame::build(
        US,
        b.line.mac,
        &b.line,
        Stage::Discovery,
        discovery::PADR,
        0,
        &t.encode(),
    );
    let pads = frames(&e.on_frame(b.now, IFINDEX, &padr));
    let sid = frame::parse(IFINDEX, &pads[0]).unwrap().session_id;
    assert_ne!(sid, a.sid);
    assert_eq!(e.sessions().count(), 2);
}

#[test]
fn malformed_and_foreign_frames_are_counted_not_answered() {
    let mut e = engine();
    let c = Client::new(0, 0);
    let mut bad = c.disc(BROADCAST, discovery::PADI, 0, &Tags::default());
    bad[14] = 0x22; // version/type
    assert!(c.feed(&mut e, &bad).is_empty());
    assert!(c.feed(&mut e, &bad[..16]).is_empty());
    assert_eq!(e.counters().malformed, 2);
    // A session frame of no session.
    assert!(
        c.feed(&mut e, &c.sess(&[0xc0, 0x21, 9, 1, 0, 8, 0, 0, 0, 0]))
            .is_empty()
    );
    assert_eq!(e.counters().unknown_session, 1);
    // Another interface.
    assert!(
        e.on_frame(
            c.now,
            99,
            &c.disc(BROADCAST, discovery::PADI, 0, &Tags::default())
        )
        .is_empty()
    );
    // A PADI without a Service-Name.
    assert!(
        c.feed(
            &mut e,
            &c.disc(BROADCAST, discovery::PADI, 0, &Tags::default())
        )
        .is_empty()
    );
    assert_eq!(e.counters().ignored, 2);
}

#[test]
fn lcp_rejects_unknown_options_and_naks_a_looped_back_magic() {
    let mut e = engine();
    let mut c = Client::new(0, 200);
    let a = c.discover(&mut e);
    let ours = find(&a, ppp::LCP, ppp::CONFIGURE_REQUEST).unwrap();
    let our_magic = ppp::parse_options(Packet::parse(&ours[2..]).unwrap().data).unwrap()[2]
        .u32()
        .unwrap();
    let accm = Opt::new(2, &[0, 0, 0, 0]);
    let mut opts = client_lcp_opts(5);
    opts.push(accm.clone());
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(
            ppp::LCP,
            ppp::CONFIGURE_REQUEST,
            3,
            &ppp::encode_options(&opts),
        )),
    );
    assert_eq!(
        payloads(&a),
        vec![ppp::encode(
            ppp::LCP,
            ppp::CONFIGURE_REJECT,
            3,
            &ppp::encode_options(&[accm])
        )]
    );
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(
            ppp::LCP,
            ppp::CONFIGURE_REQUEST,
            4,
            &ppp::encode_options(&client_lcp_opts(our_magic)),
        )),
    );
    let nak = find(&a, ppp::LCP, ppp::CONFIGURE_NAK).expect("the same magic is Nak'ed");
    let o = ppp::parse_options(&nak[6..]).unwrap();
    assert_eq!(o[0].kind, ppp::OPT_MAGIC);
    assert_ne!(o[0].u32(), Some(our_magic));
    // An unknown LCP code gets a Code-Reject.
    let a = c.feed(&mut e, &c.sess(&ppp::encode(ppp::LCP, 0x42, 9, &[])));
    let rej = find(&a, ppp::LCP, ppp::CODE_REJECT).unwrap();
    assert_eq!(&rej[6..], &[0x42, 9, 0, 4]);
}

#[test]
fn pap_to_up_then_a_padt_from_the_client_ends_it_once() {
    let mut e = engine();
    let mut c = Client::new(100, 200);
    let s = to_up(&mut e, &mut c);
    let mut t = Tags::default();
    t.push(discovery::HOST_UNIQ, &[1, 2, 3, 4]);
    let a = c.feed(&mut e, &c.disc(US, discovery::PADT, c.sid, &t));
    assert_eq!(
        a,
        vec![Action::Down {
            session: s,
            cause: TerminateCause::UserRequest
        }]
    );
    assert!(
        c.feed(&mut e, &c.disc(US, discovery::PADT, c.sid, &t))
            .is_empty()
    );
    assert_eq!(e.sessions().count(), 0);
}

#[test]
fn chap_md5_is_asked_for_and_handed_to_authentication() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    let a = to_auth(&mut e, &mut c, false);
    let ch = find(&a, ppp::CHAP, auth::CHAP_CHALLENGE).expect("a challenge once LCP opens");
    let pkt = Packet::parse(&ch[2..]).unwrap();
    let (challenge, name) = auth::parse_chap_value(pkt.data).unwrap();
    assert_eq!((challenge.len(), name.as_str()), (16, "test-ac"));
    let resp = auth::chap_md5_response(pkt.id, b"secret", &challenge);
    let a = c.feed(
        &mut e,
        &c.sess(&auth::chap_value(
            auth::CHAP_RESPONSE,
            pkt.id,
            &resp,
            "carol",
        )),
    );
    assert_eq!(
        a,
        vec![Action::Authenticate {
            session: c.session(),
            request: AuthRequest::Chap {
                user: "carol".into(),
                id: pkt.id,
                challenge: challenge.clone(),
                response: resp.to_vec()
            }
        }]
    );
    let a = e.on_auth(c.now, c.session(), Ok(grant()));
    assert_eq!(find(&a, ppp::CHAP, auth::CHAP_SUCCESS).unwrap()[3], pkt.id);
    // Unanswered, the challenge is sent again after the restart timer.
    let mut e2 = engine();
    let mut c2 = Client::new(0, 0);
    to_auth(&mut e2, &mut c2, false);
    let a = e2.on_tick(c2.now + Duration::from_secs(3));
    assert_eq!(find(&a, ppp::CHAP, auth::CHAP_CHALLENGE).unwrap()[3], {
        let v = e2.sessions.values().next().unwrap();
        v.chap_id
    });
}

#[test]
fn a_refused_password_sends_a_nak_a_terminate_and_a_padt() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    to_auth(&mut e, &mut c, true);
    c.feed(&mut e, &c.sess(&auth_pap(b"bob", b"wrong")));
    let a = e.on_auth(c.now, c.session(), Err("wrong password".into()));
    let nak = find(&a, ppp::PAP, auth::PAP_NAK).unwrap();
    assert_eq!(&nak[7..], b"wrong password");
    assert!(find(&a, ppp::LCP, ppp::TERMINATE_REQUEST).is_some());
    let padt = frames(&a)
        .into_iter()
        .find(|f| frame::parse(IFINDEX, f).unwrap().code == discovery::PADT)
        .expect("a PADT");
    assert_eq!(frame::parse(IFINDEX, &padt).unwrap().session_id, c.sid);
    assert_eq!(
        a.last(),
        Some(&Action::Down {
            session: c.session(),
            cause: TerminateCause::AuthFail
        })
    );
    assert_eq!(e.sessions().count(), 0);
    // A late outcome is ignored.
    assert!(e.on_auth(c.now, c.session(), Ok(grant())).is_empty());
}

#[test]
fn without_ipv4_in_the_grant_ipcp_is_protocol_rejected() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    to_auth(&mut e, &mut c, true);
    c.feed(&mut e, &c.sess(&auth_pap(b"v6", b"pw")));
    let g = Grant {
        ipv4: None,
        ..grant()
    };
    let a = e.on_auth(c.now, c.session(), Ok(g));
    assert!(find(&a, ppp::IPCP, ppp::CONFIGURE_REQUEST).is_none());
    let req = ppp::encode(ppp::IPCP, ppp::CONFIGURE_REQUEST, 1, &[3, 6, 0, 0, 0, 0]);
    let a = c.feed(&mut e, &c.sess(&req));
    let rej = find(&a, ppp::LCP, ppp::PROTOCOL_REJECT).unwrap();
    assert_eq!(&rej[6..], &req[..], "the rejected protocol and packet");
    // CCP too.
    let a = c.feed(&mut e, &c.sess(&[0x80, 0xfd, 1, 1, 0, 4]));
    assert_eq!(
        &find(&a, ppp::LCP, ppp::PROTOCOL_REJECT).unwrap()[6..8],
        &[0x80, 0xfd]
    );
}

#[test]
fn ipv6cp_naks_a_zero_or_equal_identifier() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    to_auth(&mut e, &mut c, true);
    c.feed(&mut e, &c.sess(&auth_pap(b"bob", b"pw")));
    e.on_auth(c.now, c.session(), Ok(grant()));
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(
            ppp::IPV6CP,
            ppp::CONFIGURE_REQUEST,
            1,
            &[1, 10, 0, 0, 0, 0, 0, 0, 0, 0],
        )),
    );
    assert_eq!(
        payloads(&a),
        vec![ppp::encode(
            ppp::IPV6CP,
            ppp::CONFIGURE_NAK,
            1,
            &[1, 10, 0, 0, 0, 0xff, 0xfe, 0, 0, 1]
        )],
        "Nak'ed to the client MAC's EUI-64"
    );
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(
            ppp::IPV6CP,
            ppp::CONFIGURE_REQUEST,
            2,
            &[1, 10, 0, 0, 0, 0xff, 0xfe, 0, 0, 0xaa],
        )),
    );
    assert!(
        find(&a, ppp::IPV6CP, ppp::CONFIGURE_NAK).is_some(),
        "ours is not theirs"
    );
}

/// The DHCPv6 message the server answers in the actions.
fn dhcp_answer(a: &[Action]) -> Message {
    let p = payloads(a)
        .into_iter()
        .find(|p| p[..2] == [0x00, 0x57])
        .expect("an IPv6 answer");
    let u = dhcpv6::parse_udp6(&p[2..]).expect("UDP over IPv6 with a right checksum");
    assert_eq!(u.src, link_local(0x0000_00ff_fe00_00aa));
    assert_eq!(u.dst, "fe80::9".parse::<Ipv6Addr>().unwrap());
    assert_eq!((u.src_port, u.dst_port), (547, 546));
    Message::from_bytes(u.payload).unwrap()
}

#[test]
fn dhcpv6_delegates_the_granted_prefix_over_the_session() {
    let mut e = engine();
    let mut c = Client::new(0, 200);
    to_up(&mut e, &mut c);
    let msg = |t, extra: Vec<DhcpOption>| {
        let mut m = Message::new_with_id(t, [7, 8, 9]);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        o.insert(DhcpOption::IAPD(IAPD {
            id: 1,
            t1: 0,
            t2: 0,
            opts: DhcpOptions::new(),
        }));
        for x in extra {
            o.insert(x);
        }
        let ip = dhcpv6::udp6(
            "fe80::9".parse().unwrap(),
            dhcpv6::SERVERS,
            546,
            547,
            1,
            &m.to_vec().unwrap(),
        );
        let mut p = vec![0x00, 0x57];
        p.extend_from_slice(&ip);
        p
    };
    let adv = dhcp_answer(&c.feed(&mut e, &c.sess(&msg(MessageType::Solicit, vec![]))));
    assert_eq!(
        (adv.msg_type(), adv.xid()),
        (MessageType::Advertise, [7, 8, 9])
    );
    let Some(DhcpOption::ServerId(server)) = adv.opts().get(OptionCode::ServerId) else {
        panic!("no Server-Id in {adv:?}");
    };
    assert_eq!(*server, dhcpv6::duid_ll(US));
    let Some(DhcpOption::IAPD(pd)) = adv.opts().get(OptionCode::IAPD) else {
        panic!("no IA_PD in {adv:?}");
    };
    let Some(DhcpOption::IAPrefix(prefix)) = pd.opts.get(OptionCode::IAPrefix) else {
        panic!("no IA Prefix in {pd:?}");
    };
    assert_eq!(
        (prefix.prefix_len, prefix.prefix_ip),
        (56, "2001:db8:700::".parse().unwrap())
    );
    let rep = dhcp_answer(&c.feed(
        &mut e,
        &c.sess(&msg(
            MessageType::Request,
            vec![DhcpOption::ServerId(server.clone())],
        )),
    ));
    assert_eq!(rep.msg_type(), MessageType::Reply);
    assert!(rep.opts().get(OptionCode::IAPD).is_some());
    let rc = dhcp_answer(&c.feed(
        &mut e,
        &c.sess(&msg(MessageType::Solicit, vec![DhcpOption::RapidCommit])),
    ));
    assert_eq!(rc.msg_type(), MessageType::Reply);
    assert!(rc.opts().get(OptionCode::RapidCommit).is_some());
    assert_eq!(e.counters().dhcpv6_replies, 3);
}

#[test]
fn echoes_are_answered_and_unanswered_ones_end_the_session() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    let s = to_up(&mut e, &mut c);
    // The client's echo is answered with our magic.
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(
            ppp::LCP,
            ppp::ECHO_REQUEST,
            5,
            &[0x11, 0x11, 0x22, 0x22, 1, 2],
        )),
    );
    let rep = find(&a, ppp::LCP, ppp::ECHO_REPLY).unwrap();
    assert_eq!(rep[3], 5);
    assert_eq!(&rep[10..], &[1, 2]);
    let t0 = c.now;
    assert!(e.on_tick(t0 + Duration::from_secs(9)).is_empty());
    let a = e.on_tick(t0 + Duration::from_secs(10));
    let req = find(&a, ppp::LCP, ppp::ECHO_REQUEST).expect("an echo after echo_interval");
    // Answered: the count starts again.
    let mut reply = req.clone();
    reply[2] = ppp::ECHO_REPLY;
    c.feed(&mut e, &c.sess(&reply));
    assert!(
        find(
            &e.on_tick(t0 + Duration::from_secs(20)),
            ppp::LCP,
            ppp::ECHO_REQUEST
        )
        .is_some()
    );
    assert!(
        find(
            &e.on_tick(t0 + Duration::from_secs(30)),
            ppp::LCP,
            ppp::ECHO_REQUEST
        )
        .is_some()
    );
    let a = e.on_tick(t0 + Duration::from_secs(40));
    assert_eq!(
        a.last(),
        Some(&Action::Down {
            session: s,
            cause: TerminateCause::LostCarrier
        })
    );
    assert!(
        frames(&a)
            .iter()
            .any(|f| frame::parse(IFINDEX, f).unwrap().code == discovery::PADT)
    );
    assert!(e.on_tick(t0 + Duration::from_secs(50)).is_empty());
}

#[test]
fn terminate_and_a_client_terminate_request_end_sessions() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    let s = to_up(&mut e, &mut c);
    let a = e.terminate(s, TerminateCause::AdminReset);
    assert!(find(&a, ppp::LCP, ppp::TERMINATE_REQUEST).is_some());
    assert_eq!(
        a.last(),
        Some(&Action::Down {
            session: s,
            cause: TerminateCause::AdminReset
        })
    );
    assert!(e.terminate(s, TerminateCause::AdminReset).is_empty());
    let mut e = engine();
    let s = to_up(&mut e, &mut c);
    let a = c.feed(
        &mut e,
        &c.sess(&ppp::encode(ppp::LCP, ppp::TERMINATE_REQUEST, 4, &[])),
    );
    assert_eq!(find(&a, ppp::LCP, ppp::TERMINATE_ACK).unwrap()[3], 4);
    assert_eq!(
        a.last(),
        Some(&Action::Down {
            session: s,
            cause: TerminateCause::UserRequest
        })
    );
}

#[test]
fn lcp_gives_up_after_max_configure() {
    let mut e = engine();
    let mut c = Client::new(0, 0);
    let s = {
        c.discover(&mut e);
        c.session()
    };
    let mut t = c.now;
    for _ in 1..10 {
        t += Duration::from_secs(3);
        assert!(find(&e.on_tick(t), ppp::LCP, ppp::CONFIGURE_REQUEST).is_some());
    }
    t += Duration::from_secs(3);
    let a = e.on_tick(t);
    assert_eq!(
        a.last(),
        Some(&Action::Down {
            session: s,
            cause: TerminateCause::LostService
        })
    );
}

#[test]
fn a_persisted_session_is_restored_and_resumes_echoes() {
    let mut e = engine();
    let mut c = Client::new(100, 200);
    let s = to_up(&mut e, &mut c);
    let p = e.persisted(s).expect("an Up session persists");
    let json = serde_json::to_string(&p).unwrap();
    let back: Persisted = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(p.user, "bob");
    assert_eq!(p.peer_magic, 0x1111_2222);
    assert_eq!(p.peer_ifid, 9);
    let mut e2 = engine();
    let t = c.now + Duration::from_secs(100);
    assert_eq!(e2.restore(t, back), Some(s));
    let v = e2.sessions().next().unwrap();
    assert_eq!(
        (v.state, v.mru, v.user),
        (SessionState::Up, 1492, Some("bob"))
    );
    let a = e2.on_tick(t + Duration::from_secs(10));
    let req = find(&a, ppp::LCP, ppp::ECHO_REQUEST).unwrap();
    assert_eq!(&req[6..10], &p.our_magic.to_be_bytes());
    // The client's echo is answered, and a new PADR cannot take its id.
    let a = c.feed(
        &mut e2,
        &c.sess(&ppp::encode(ppp::LCP, ppp::ECHO_REQUEST, 1, &[0, 0, 0, 1])),
    );
    assert!(find(&a, ppp::LCP, ppp::ECHO_REPLY).is_some());
    assert!(e2.used.contains(&(IFINDEX, s.session_id)));
    // Not Up: nothing to persist.
    let mut e3 = engine();
    let mut c3 = Client::new(0, 0);
    c3.discover(&mut e3);
    assert_eq!(e3.persisted(c3.session()), None);
}

#[test]
fn a_retransmitted_padr_gets_the_same_session_and_services_are_checked() {
    let mut e = engine();
    let mut c = Client::new(0, 200);
    c.discover(&mut e);
    let first = c.sid;
    // The same PADR again (our PADS was lost): the same id, no new session.
    let mut t = Tags::default();
    t.push(discovery::SERVICE_NAME, b"")
        .push(discovery::HOST_UNIQ, &[1, 2, 3, 4])
        .push(
            discovery::AC_COOKIE,
            &discovery::cookie(&e.cookie_key, &c.line),
        );
    let a = c.feed(&mut e, &c.disc(US, discovery::PADR, 0, &t));
    let f = frames(&a);
    let pads = frame::parse(IFINDEX, &f[0]).unwrap();
    assert_eq!((pads.code, pads.session_id), (discovery::PADS, first));
    assert_eq!(e.sessions().count(), 1);
    // A service we do not offer is not answered; one we offer is.
    let mut e = Engine::with_seed(
        Settings {
            service_names: vec!["internet".into()],
            ..settings()
        },
        engine().ports.clone(),
        7,
    );
    let mut t = Tags::default();
    t.push(discovery::SERVICE_NAME, b"voip");
    assert!(
        c.feed(&mut e, &c.disc(BROADCAST, discovery::PADI, 0, &t))
            .is_empty()
    );
    let mut t = Tags::default();
    t.push(discovery::SERVICE_NAME, b"internet");
    let pado = frames(&c.feed(&mut e, &c.disc(BROADCAST, discovery::PADI, 0, &t)));
    let got = Tags::parse(frame::parse(IFINDEX, &pado[0]).unwrap().payload).unwrap();
    assert_eq!(got.get(discovery::SERVICE_NAME), Some(&b"internet"[..]));
    assert_eq!(e.counters().ignored, 1);
}
