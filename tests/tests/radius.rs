//! collecte's RADIUS client against a real FreeRADIUS (`tests::freeradius`):
//! PAP for each attribute combination, CHAP, refusals, unreachable and
//! failing-over servers, and accounting landing in the detail file.
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use collecte::radius::{
    AccessRequest, AcctKind, AcctRecord, Client, Credentials, NasPortType, RadiusError,
    calling_station_id, nas_port_id, packet::md5_of,
};
use router_core::config::{Config, RadiusConfig};
use tests::freeradius::{FreeRadius, REJECT_MESSAGE};

/// A `[radius]` configuration: the servers given, `timeout` and `retries`.
fn config(servers: &[SocketAddr], acct: &[SocketAddr], extra: &str) -> RadiusConfig {
    let list = |a: &[SocketAddr]| {
        a.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "[radius]\nservers = [{}]\naccounting_servers = [{}]\n\
         secret_file = \"/nonexistent/radius.secret\"\n{extra}",
        list(servers),
        list(acct)
    );
    Config::parse(&text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .radius
        .unwrap()
}

fn client_for(server: &FreeRadius) -> Client {
    let config = config(&[server.auth_addr()], &[server.acct_addr()], "");
    Client::new(&config, server.secret().as_bytes().to_vec()).unwrap()
}

fn pap(user: &str, password: &str) -> AccessRequest {
    AccessRequest {
        user: user.to_owned(),
        auth: Credentials::Pap {
            password: password.as_bytes().to_vec(),
        },
        nas_port_id: nas_port_id("acc0", 100, 200),
        nas_port_type: NasPortType::Ethernet,
        calling_station_id: calling_station_id([0x02, 0, 0, 0, 0x10, 0x01]),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn pap_accepts_each_attribute_combination() {
    let server = FreeRadius::start();
    let client = client_for(&server);
    let rt = runtime();
    for name in ["pap-v4", "pap-v6", "dual@isp"] {
        let user = server.user(name);
        let accept = rt
            .block_on(client.authenticate(&pap(name, &user.password)))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.log()));
        assert_eq!(accept.framed_ip, user.framed_ip, "{name}");
        assert_eq!(
            accept.framed_ipv6_prefix.map(|p| p.to_string()),
            user.framed_ipv6_prefix,
            "{name}"
        );
        assert_eq!(
            accept.delegated_ipv6_prefix.map(|p| p.to_string()),
            user.delegated_ipv6_prefix,
            "{name}"
        );
        assert_eq!(accept.session_timeout, user.session_timeout, "{name}");
    }
    // The values themselves, not only the users file's.
    let accept = rt
        .block_on(client.authenticate(&pap("dual@isp", "dual-pass")))
        .unwrap();
    assert_eq!(accept.framed_ip, Some(Ipv4Addr::new(198, 51, 100, 11)));
    assert_eq!(
        accept.framed_ipv6_prefix,
        Some("2001:db8:1:2::/64".parse().unwrap())
    );
    assert_eq!(
        accept.delegated_ipv6_prefix,
        Some("2001:db8:200::/56".parse().unwrap())
    );
    // FreeRADIUS saw the request's attributes.
    assert!(
        server.log().contains("Login OK: [dual@isp]"),
        "{}",
        server.log()
    );
}

#[test]
fn chap_accepts() {
    let server = FreeRadius::start();
    let client = client_for(&server);
    let challenge: Vec<u8> = (0..16).map(|i| i * 7 + 3).collect();
    let id = 0x2a;
    // RFC 1994: MD5(identifier + secret + challenge).
    let response = md5_of(&[&[id], b"chap-pass", &challenge]).to_vec();
    let req = AccessRequest {
        auth: Credentials::Chap {
            id,
            challenge: challenge.clone(),
            response,
        },
        ..pap("chap-user", "")
    };
    let accept = runtime()
        .block_on(client.authenticate(&req))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(accept.framed_ip, Some(Ipv4Addr::new(198, 51, 100, 12)));

    // A response to another challenge is refused.
    let wrong = AccessRequest {
        auth: Credentials::Chap {
            id,
            challenge,
            response: md5_of(&[&[id], b"wrong", &[0; 16]]).to_vec(),
        },
        ..req
    };
    let err = runtime().block_on(client.authenticate(&wrong)).unwrap_err();
    assert!(matches!(err, RadiusError::Rejected { .. }), "{err:?}");
}

#[test]
fn wrong_password_and_rejected_user_are_refused() {
    let server = FreeRadius::start();
    let client = client_for(&server);
    let rt = runtime();
    let err = rt
        .block_on(client.authenticate(&pap("pap-v4", "not-the-password")))
        .unwrap_err();
    assert!(
        matches!(err, RadiusError::Rejected { message: None }),
        "{err:?}"
    );
    let err = rt
        .block_on(client.authenticate(&pap("rejected", "rejected-pass")))
        .unwrap_err();
    match &err {
        RadiusError::Rejected { message } => {
            assert_eq!(message.as_deref(), Some(REJECT_MESSAGE));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(REJECT_MESSAGE), "{err}");
    let err = rt
        .block_on(client.authenticate(&pap("nobody", "x")))
        .unwrap_err();
    assert!(matches!(err, RadiusError::Rejected { .. }), "{err:?}");
}

#[test]
fn wrong_secret_is_not_an_answer() {
    let server = FreeRadius::start();
    let config = config(
        &[server.auth_addr()],
        &[],
        "timeout = \"300ms\"\nretries = 1\n",
    );
    let client = Client::new(&config, b"not-the-secret".to_vec()).unwrap();
    // FreeRADIUS answers (a Reject: the password decodes to garbage), but
    // its Response Authenticator does not check out with this secret.
    let err = runtime()
        .block_on(client.authenticate(&pap("pap-v4", "pap-v4-pass")))
        .unwrap_err();
    assert!(matches!(err, RadiusError::Unreachable { .. }), "{err:?}");
}

/// A UDP socket that never answers: counts the requests it got.
struct Silent(UdpSocket);

impl Silent {
    fn new() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        Silent(socket)
    }

    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }

    fn received(&self) -> usize {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while self.0.recv(&mut buf).is_ok() {
            n += 1;
        }
        n
    }
}

#[test]
fn no_answer_is_unreachable_after_each_try() {
    let silent = [Silent::new(), Silent::new()];
    let servers: Vec<SocketAddr> = silent.iter().map(Silent::addr).collect();
    let config = config(&servers, &servers, "timeout = \"200ms\"\nretries = 2\n");
    let client = Client::new(&config, b"secret".to_vec()).unwrap();
    let rt = runtime();
    let started = std::time::Instant::now();
    let err = rt
        .block_on(client.authenticate(&pap("pap-v4", "pap-v4-pass")))
        .unwrap_err();
    match &err {
        RadiusError::Unreachable {
            servers: listed,
            retries,
            timeout,
        } => {
            assert_eq!(listed, &servers);
            assert_eq!((*retries, *timeout), (2, Duration::from_millis(200)));
        }
        other => panic!("{other:?}"),
    }
    // Each server got `retries` requests, each waited out: 2 × 2 × 200 ms.
    assert_eq!(silent[0].received(), 2);
    assert_eq!(silent[1].received(), 2);
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert!(err.to_string().contains(&servers[0].to_string()), "{err}");

    let err = rt
        .block_on(client.account(&AcctRecord::default()))
        .unwrap_err();
    assert!(matches!(err, RadiusError::Unreachable { .. }), "{err:?}");
    assert_eq!(silent[0].received(), 2);
}

#[test]
fn second_server_answers_when_the_first_is_down() {
    let server = FreeRadius::start();
    let silent = Silent::new();
    // A closed port too: the kernel's "port unreachable" must not end the
    // try early or be taken for an answer.
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let config = config(
        &[silent.addr(), closed, server.auth_addr()],
        &[closed, server.acct_addr()],
        "timeout = \"200ms\"\nretries = 2\n",
    );
    let client = Client::new(&config, server.secret().as_bytes().to_vec()).unwrap();
    let rt = runtime();
    let accept = rt
        .block_on(client.authenticate(&pap("pap-v4", "pap-v4-pass")))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(accept.framed_ip, Some(Ipv4Addr::new(198, 51, 100, 10)));
    assert_eq!(silent.received(), 2);
    rt.block_on(client.account(&AcctRecord {
        session_id: "failover".into(),
        user: "pap-v4".into(),
        ..AcctRecord::default()
    }))
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    server.wait_detail(Duration::from_secs(5), |r| {
        r.get("Acct-Session-Id") == Some("failover")
    });
}

#[test]
fn accounting_lands_in_the_detail_file() {
    let server = FreeRadius::start();
    let client = client_for(&server);
    let rt = runtime();
    let base = AcctRecord {
        kind: AcctKind::Start,
        session_id: "00000001-acc0".into(),
        user: "dual@isp".into(),
        nas_port_id: nas_port_id("acc0", 100, 200),
        nas_port_type: NasPortType::Virtual,
        calling_station_id: calling_station_id([0x02, 0, 0, 0, 0x10, 0x01]),
        framed_ip: Some(Ipv4Addr::new(198, 51, 100, 11)),
        framed_ipv6_prefix: Some("2001:db8:1:2::/64".parse().unwrap()),
        delegated_ipv6_prefix: Some("2001:db8:200::/56".parse().unwrap()),
        ..AcctRecord::default()
    };
    let interim = AcctRecord {
        kind: AcctKind::Interim,
        session_time: 10,
        in_octets: 1_234,
        out_octets: 5_678,
        in_packets: 12,
        out_packets: 34,
        ..base.clone()
    };
    // Above 2^32 octets: Gigawords.
    let stop = AcctRecord {
        kind: AcctKind::Stop,
        session_time: 25,
        in_octets: 5_000_000_000,
        out_octets: (2 << 32) + 99,
        in_packets: 4_000_000,
        out_packets: 5_000_000,
        terminate_cause: Some(1),
        ..base.clone()
    };
    for rec in [&base, &interim, &stop] {
        rt.block_on(client.account(rec))
            .unwrap_or_else(|e| panic!("{:?}: {e}\n{}", rec.kind, server.log()));
    }
    let records = server.detail();
    assert_eq!(records.len(), 3, "{records:#?}");
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r.get("Acct-Status-Type").unwrap())
        .collect();
    assert_eq!(kinds, ["Start", "Interim-Update", "Stop"]);
    for r in &records {
        assert_eq!(r.get("Acct-Session-Id"), Some("00000001-acc0"));
        assert_eq!(r.get("User-Name"), Some("dual@isp"));
        assert_eq!(r.get("NAS-Identifier"), Some("collecte"));
        assert_eq!(r.get("NAS-Port-Id"), Some("acc0:100.200"));
        assert_eq!(r.get("NAS-Port-Type"), Some("Virtual"));
        assert_eq!(r.get("Calling-Station-Id"), Some("02:00:00:00:10:01"));
        assert_eq!(r.get("Framed-IP-Address"), Some("198.51.100.11"));
        assert_eq!(r.get("Framed-IPv6-Prefix"), Some("2001:db8:1:2::/64"));
        assert_eq!(r.get("Delegated-IPv6-Prefix"), Some("2001:db8:200::/56"));
        assert_eq!(r.get("Acct-Delay-Time"), Some("0"));
        assert!(r.get("Event-Timestamp").is_some(), "{r:?}");
    }
    let (i, s) = (&records[1], &records[2]);
    assert_eq!(i.number("Acct-Session-Time"), Some(10));
    assert_eq!(i.number("Acct-Input-Octets"), Some(1_234));
    assert_eq!(i.number("Acct-Output-Octets"), Some(5_678));
    assert_eq!(i.number("Acct-Input-Gigawords"), Some(0));
    assert_eq!(i.number("Acct-Input-Packets"), Some(12));
    assert_eq!(i.number("Acct-Output-Packets"), Some(34));
    let total =
        |octets: &str, giga: &str| (s.number(giga).unwrap() << 32) + s.number(octets).unwrap();
    assert_eq!(
        total("Acct-Input-Octets", "Acct-Input-Gigawords"),
        5_000_000_000
    );
    assert_eq!(s.number("Acct-Input-Gigawords"), Some(1));
    assert_eq!(
        total("Acct-Output-Octets", "Acct-Output-Gigawords"),
        (2 << 32) + 99
    );
    assert_eq!(s.number("Acct-Session-Time"), Some(25));
    assert_eq!(s.get("Acct-Terminate-Cause"), Some("User-Request"));
}

#[test]
fn server_inside_a_namespace() {
    tests::require_root();
    let ns = tests::Netns::new("radius");
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "lo"]);
    let server = FreeRadius::builder()
        .netns(ns.name(), "192.0.2.1".parse().unwrap())
        .client("192.0.2.0/24")
        .start();
    assert_eq!(server.auth_addr(), "192.0.2.1:1812".parse().unwrap());
    let client = client_for(&server);
    let accept = tests::netns::in_netns(ns.name(), || {
        runtime().block_on(client.authenticate(&pap("pap-v4", "pap-v4-pass")))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(accept.framed_ip, Some(Ipv4Addr::new(198, 51, 100, 10)));
    drop(server);
}
