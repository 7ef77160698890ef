//! The PPPoE engine and its packet socket on one end of a veth, the test
//! client on the other, in a namespace of their own (no XDP, no RADIUS:
//! the test answers `Authenticate` itself, password "secret"), on
//! untagged, 802.1Q and QinQ lines:
//!
//! ```text
//!   engine + PacketSocket ── acc0 ═══ veth ═══ cli0 ── PppoeClient (tags in its frames)
//!   capture (RawPort) ────── acc0
//! ```
use std::{
    fs::File,
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use collecte::pppoe::{
    Action, AuthRequest, Engine, Grant, Port, SessionRef, Settings, TerminateCause, auth,
    frame::{self, Stage},
    socket::PacketSocket,
};
use tests::{Netns, frames, pppoe::PppoeClient, tagged::RawPort};

const ACC_MAC: &str = "02:00:00:00:0a:01";
const CLI_MAC: &str = "02:00:00:00:0c:01";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const GRANTED: Ipv4Addr = Ipv4Addr::new(100, 64, 7, 9);

fn grant() -> Grant {
    Grant {
        ipv4: Some(GRANTED),
        ipv6_prefix: None,
        delegated: Some("2001:db8:700::/56".parse().unwrap()),
    }
}

/// The test's own check of credentials: password "secret".
fn check(req: &AuthRequest) -> Result<Grant, String> {
    let ok = match req {
        AuthRequest::Pap { password, .. } => password == b"secret",
        AuthRequest::Chap {
            id,
            challenge,
            response,
            ..
        } => auth::chap_md5_response(*id, b"secret", challenge)[..] == response[..],
    };
    if ok {
        Ok(grant())
    } else {
        Err("wrong password".into())
    }
}

/// The engine running over a PacketSocket on `acc0`, in a thread of the
/// namespace. Up, Down and Authenticate actions are recorded.
struct Server {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Action>>>,
    terminate: mpsc::Sender<(SessionRef, TerminateCause)>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &str) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (terminate, cmds) = mpsc::channel::<(SessionRef, TerminateCause)>();
        let (ready_tx, ready) = mpsc::channel();
        let ns = ns.to_string();
        let (stop2, events2) = (stop.clone(), events.clone());
        let thread = std::thread::spawn(move || {
            let target = File::open(format!("/run/netns/{ns}")).expect("open netns");
            // SAFETY: setns(2) on a namespace file, for this thread only.
            let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {ns}");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let sock = PacketSocket::open("acc0").expect("PPPoE socket on acc0");
                let ifindex = sock.ifindex();
                let settings = Settings {
                    ac_name: "collecte-test".into(),
                    echo_interval: Duration::from_millis(700),
                    echo_failures: 3,
                    restart_interval: Duration::from_secs(1),
                    ..Settings::default()
                };
                let port = Port {
                    ifindex,
                    ifname: "acc0".into(),
                    iface_slot: 1,
                    mac: frames::mac(ACC_MAC),
                    gateway_ipv4: Some(GATEWAY),
                };
                let mut engine = Engine::new(settings, vec![port]);
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                ready_tx.send(()).expect("ready");
                while !stop2.load(Ordering::Relaxed) {
                    let mut actions = tokio::select! {
                        f = sock.recv() => engine.on_frame(Instant::now(), ifindex, &f.expect("recv")),
                        _ = tick.tick() => {
                            let mut a = Vec::new();
                            while let Ok((s, cause)) = cmds.try_recv() {
                                a.extend(engine.terminate(s, cause));
                            }
                            a.extend(engine.on_tick(Instant::now()));
                            a
                        }
                    };
                    while !actions.is_empty() {
                        let mut more = Vec::new();
                        for a in actions {
                            match &a {
                                Action::Send { frame, .. } => sock.send(frame).expect("send"),
                                Action::Authenticate { session, request } => {
                                    more.extend(engine.on_auth(Instant::now(), *session, check(request)));
                                    events2.lock().unwrap().push(a.clone());
                                }
                                _ => events2.lock().unwrap().push(a.clone()),
                            }
                        }
                        actions = more;
                    }
                }
            });
        });
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the server starts");
        Server {
            stop,
            events,
            terminate,
            thread: Some(thread),
        }
    }

    /// Waits for an event satisfying `pred`.
    fn wait(&self, what: &str, pred: impl Fn(&Action) -> bool) -> Action {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if let Some(a) = self.events.lock().unwrap().iter().find(|a| pred(a)) {
                return a.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no {what} from the engine; events: {:?}",
            self.events.lock().unwrap()
        );
    }

    fn count(&self, pred: impl Fn(&Action) -> bool) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|a| pred(a))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The loop wakes at its next tick (50 ms).
            let _ = t.join();
        }
    }
}

/// A namespace with the veth, the server, a capture on acc0 and the client
/// with `tags`.
fn setup(tag: &str, tags: &[(u16, u16)]) -> (Netns, Server, RawPort, PppoeClient) {
    tests::require_root();
    let ns = Netns::new(tag);
    ns.veth("acc0", ACC_MAC, "cli0", CLI_MAC);
    let capture = RawPort::open(ns.name(), "acc0");
    let server = Server::start(ns.name());
    let client = PppoeClient::open(ns.name(), "cli0", frames::mac(CLI_MAC), tags);
    (ns, server, capture, client)
}

const UNTAGGED: &[(u16, u16)] = &[];
const DOT1Q: &[(u16, u16)] = &[(0x8100, 200)];
const QINQ: &[(u16, u16)] = &[(0x88a8, 100), (0x8100, 200)];

fn is_up(a: &Action) -> bool {
    matches!(a, Action::Up { .. })
}

/// PAP, IPCP, IPv6CP, DHCPv6-PD, data both ways byte-exact, echoes both
/// ways, then a PADT from the client.
fn whole_negotiation(tag: &str, tags: &[(u16, u16)]) {
    let (_ns, server, capture, mut c) = setup(tag, tags);
    let sid = c.discover().expect("discovery");
    assert!(sid != 0 && sid != 0xffff);
    c.lcp_pap(1492).expect("LCP, CHAP Nak'ed to PAP");
    assert_eq!(c.server_mru, 1492);
    assert!(
        c.pap("alice@isp", "secret").expect("PAP"),
        "the right password is accepted"
    );
    let (addr, gw) = c.ipcp().expect("IPCP");
    assert_eq!((addr, gw), (GRANTED, GATEWAY));
    let Action::Up { session } = server.wait("Up", is_up) else {
        unreachable!()
    };
    let (s_vlan, c_vlan) = match tags {
        [] => (0, 0),
        [(_, c)] => (0, *c),
        [(_, s), (_, c)] => (*s, *c),
        _ => unreachable!("at most two tags"),
    };
    assert_eq!(
        (
            session.line.s_vlan,
            session.line.c_vlan,
            session.line.mac,
            session.session_id
        ),
        (s_vlan, c_vlan, frames::mac(CLI_MAC), sid)
    );
    let (ours, theirs) = c.ipv6cp().expect("IPv6CP");
    assert_eq!(ours, u64::from_be_bytes([0, 0, 0, 0xff, 0xfe, 0, 0x0c, 1]));
    assert_eq!(
        theirs,
        u64::from_be_bytes([0, 0, 0, 0xff, 0xfe, 0, 0x0a, 1])
    );
    let (prefix, len) = c.dhcpv6_pd().expect("DHCPv6-PD");
    assert_eq!(
        (prefix, len),
        ("2001:db8:700::".parse::<Ipv6Addr>().unwrap(), 56)
    );
    assert_eq!(server.count(is_up), 1, "Up once");

    // Upstream data: the frame on acc0 is the client's, byte for byte.
    capture.drain();
    let ip = frames::ipv4_udp(GRANTED, Ipv4Addr::new(192, 0, 2, 1), 64, b"upstream");
    c.send_ipv4(&ip);
    let sent = c.session_frame(&[&[0x00, 0x21][..], &ip].concat());
    let seen = capture
        .recv_matching(Duration::from_secs(2), |f| f == &sent[..])
        .expect("the session frame crosses byte-exact");
    assert_eq!(seen, sent);
    // Downstream: a session frame the server side builds reaches the
    // client's IP layer byte-exact.
    let down = frames::ipv4_udp(Ipv4Addr::new(192, 0, 2, 1), GRANTED, 63, b"downstream");
    let f = frame::build(
        frames::mac(CLI_MAC),
        frames::mac(ACC_MAC),
        &session.line,
        Stage::Session,
        0,
        sid,
        &[&[0x00, 0x21][..], &down].concat(),
    );
    capture.send(&f);
    assert_eq!(
        c.recv_ip(Duration::from_secs(2))
            .expect("downstream packet"),
        down
    );

    // Echo both ways: ours answered; the server's answered by the client
    // while it waits, and the session stays.
    c.echo().expect("echo answered");
    let before = c.echoes_answered;
    let _ = c.recv_ip(Duration::from_millis(1600));
    assert!(c.echoes_answered > before, "the server sends Echo-Requests");
    assert_eq!(server.count(|a| matches!(a, Action::Down { .. })), 0);

    c.padt();
    let down = server.wait("Down", |a| matches!(a, Action::Down { .. }));
    assert_eq!(
        down,
        Action::Down {
            session,
            cause: TerminateCause::UserRequest
        }
    );
}

#[test]
fn the_whole_negotiation_untagged() {
    whole_negotiation("ppe-u", UNTAGGED);
}

#[test]
fn the_whole_negotiation_on_802_1q() {
    whole_negotiation("ppe-q", DOT1Q);
}

#[test]
fn the_whole_negotiation_on_qinq() {
    whole_negotiation("ppe-qq", QINQ);
}

/// CHAP, IPCP, then the server ends the session: Terminate-Request and
/// PADT reach the client.
fn chap_then_server_padt(tag: &str, tags: &[(u16, u16)]) {
    let (_ns, server, _capture, mut c) = setup(tag, tags);
    c.discover().expect("discovery");
    c.lcp(1400).expect("LCP");
    assert!(c.chap("bob", "secret").expect("CHAP"));
    c.ipcp().expect("IPCP");
    let Action::Up { session } = server.wait("Up", is_up) else {
        unreachable!()
    };
    server
        .terminate
        .send((session, TerminateCause::AdminReset))
        .unwrap();
    c.expect_padt(Duration::from_secs(3))
        .expect("the server's PADT");
    server.wait("Down", |a| {
        *a == Action::Down {
            session,
            cause: TerminateCause::AdminReset,
        }
    });
}

#[test]
fn chap_then_a_padt_from_the_server_untagged() {
    chap_then_server_padt("ppc-u", UNTAGGED);
}

#[test]
fn chap_then_a_padt_from_the_server_on_qinq() {
    chap_then_server_padt("ppc-qq", QINQ);
}

#[test]
fn a_wrong_password_is_refused_and_the_session_ended() {
    for (tag, tags) in [("ppw-q", DOT1Q), ("ppw-c", UNTAGGED)] {
        let (_ns, server, _capture, mut c) = setup(tag, tags);
        c.discover().expect("discovery");
        if tag == "ppw-q" {
            c.lcp_pap(1492).expect("LCP");
            assert!(
                !c.pap("alice@isp", "nope").expect("a PAP answer"),
                "refused"
            );
        } else {
            c.lcp(1492).expect("LCP");
            assert!(!c.chap("bob", "nope").expect("a CHAP answer"), "refused");
        }
        c.expect_padt(Duration::from_secs(3))
            .expect("the server ends it");
        server.wait("Down(AuthFail)", |a| {
            matches!(
                a,
                Action::Down {
                    cause: TerminateCause::AuthFail,
                    ..
                }
            )
        });
        assert_eq!(server.count(is_up), 0);
    }
}

#[test]
fn unanswered_echoes_end_the_session() {
    let (_ns, server, _capture, mut c) = setup("ppe-e", DOT1Q);
    c.discover().expect("discovery");
    c.lcp_pap(1492).expect("LCP");
    assert!(c.pap("alice@isp", "secret").unwrap());
    c.ipcp().expect("IPCP");
    server.wait("Up", is_up);
    c.answer_echoes = false;
    // 3 echoes 700 ms apart, then the end.
    c.expect_padt(Duration::from_secs(5))
        .expect("a PADT after the echoes");
    server.wait("Down(LostCarrier)", |a| {
        matches!(
            a,
            Action::Down {
                cause: TerminateCause::LostCarrier,
                ..
            }
        )
    });
}
