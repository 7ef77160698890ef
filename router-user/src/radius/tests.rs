//! The codec and the client's encodings, byte for byte: RFC 2865 §7.1's
//! example, the IPv6 prefix encodings, Message-Authenticator, accounting
//! and its Gigawords. Against a real server: tests/tests/radius.rs.
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use router_core::config::{RadiusConfig, Seconds};

use super::attribute::{self as attr, AttributeError};
use super::client::accept_of;
use super::packet::{Code, Packet, PacketError, hide_password, hmac_md5, md5_of, unhide_password};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 2865 §7.1: user nemo, password arctangent, secret xyzzy5461.
const RFC_SECRET: &[u8] = b"xyzzy5461";
const RFC_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
     01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
     04 06 c0 a8 01 10 05 06 00 00 00 03";
const RFC_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
     06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";

fn rfc_authenticator() -> [u8; 16] {
    hex(RFC_REQUEST)[4..20].try_into().unwrap()
}

#[test]
fn rfc2865_access_request_bytes() {
    let ra = rfc_authenticator();
    let mut p = Packet::new(Code::AccessRequest, 0, ra);
    p.push(attr::USER_NAME, "nemo").unwrap();
    p.push(
        attr::USER_PASSWORD,
        hide_password(b"arctangent", RFC_SECRET, &ra).unwrap(),
    )
    .unwrap();
    p.push(4, [192, 168, 1, 16]).unwrap();
    p.push(5, attr::encode_u32(3)).unwrap();
    assert_eq!(p.encode().unwrap(), hex(RFC_REQUEST));
    assert_eq!(Packet::decode(&hex(RFC_REQUEST)).unwrap(), p);
    let hidden = p.get(attr::USER_PASSWORD).unwrap();
    assert_eq!(unhide_password(hidden, RFC_SECRET, &ra), b"arctangent");
}

#[test]
fn rfc2865_response_authenticator() {
    let ra = rfc_authenticator();
    let accept = Packet::decode_response(&hex(RFC_ACCEPT), &ra, RFC_SECRET).unwrap();
    assert_eq!(accept.code, Code::AccessAccept);
    assert_eq!(accept.get(14), Some(&[192, 168, 1, 3][..]));
    // What a server computes is the same.
    let mut unsigned = accept.clone();
    unsigned.authenticator = [0; 16];
    assert_eq!(
        unsigned.encode_response(&ra, RFC_SECRET).unwrap(),
        hex(RFC_ACCEPT)
    );
    // Another secret, another request, or a changed byte: refused.
    assert_eq!(
        Packet::decode_response(&hex(RFC_ACCEPT), &ra, b"wrong"),
        Err(PacketError::BadAuthenticator)
    );
    let mut other = ra;
    other[0] ^= 1;
    assert_eq!(
        Packet::decode_response(&hex(RFC_ACCEPT), &other, RFC_SECRET),
        Err(PacketError::BadAuthenticator)
    );
    let mut changed = hex(RFC_ACCEPT);
    changed[37] = 4;
    assert_eq!(
        Packet::decode_response(&changed, &ra, RFC_SECRET),
        Err(PacketError::BadAuthenticator)
    );
}

#[test]
fn password_hiding_blocks() {
    let ra = [7u8; 16];
    let secret = b"s3cret";
    // Padded to 16, 32, then 128 bytes at most.
    for (len, hidden_len) in [(0, 16), (1, 16), (16, 16), (17, 32), (128, 128)] {
        let password: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let hidden = hide_password(&password, secret, &ra).unwrap();
        assert_eq!(hidden.len(), hidden_len, "{len}");
        assert_eq!(unhide_password(&hidden, secret, &ra), password);
        // The first block is the password XOR MD5(secret + RA); the second
        // chains on the first block's ciphertext.
        let b1 = md5_of(&[secret, &ra]);
        let mut first = password.clone();
        first.resize(16, 0);
        let c1: Vec<u8> = first.iter().zip(b1).map(|(p, b)| p ^ b).collect();
        assert_eq!(hidden[..16], c1[..]);
        if hidden_len > 16 {
            let b2 = md5_of(&[secret, &hidden[..16]]);
            assert_eq!(hidden[16] ^ b2[0], password[16]);
        }
    }
    assert!(matches!(
        hide_password(&[b'x'; 129], secret, &ra),
        Err(PacketError::TooLong { .. })
    ));
}

#[test]
fn message_authenticator_in_requests_and_answers() {
    let secret = b"testing123";
    let ra = [3u8; 16];
    let mut req = Packet::new(Code::AccessRequest, 9, ra);
    req.push(attr::USER_NAME, "bob").unwrap();
    req.push(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]).unwrap();
    let bytes = req.encode_request(secret).unwrap();
    // HMAC-MD5 over the packet with the attribute zeroed (RFC 3579 §3.2).
    let mut zeroed = bytes.clone();
    zeroed[27..43].fill(0);
    assert_eq!(bytes[25..27], [attr::MESSAGE_AUTHENTICATOR, 18]);
    assert_eq!(bytes[27..43], hmac_md5(secret, &zeroed));
    assert_eq!(bytes[4..20], ra);

    let mut answer = Packet::new(Code::AccessAccept, 9, [0; 16]);
    answer.push(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]).unwrap();
    answer
        .push(attr::FRAMED_IP_ADDRESS, [192, 0, 2, 1])
        .unwrap();
    let wire = answer.encode_response(&ra, secret).unwrap();
    assert!(Packet::decode_response(&wire, &ra, secret).is_ok());
    // A Message-Authenticator that does not match, under a valid Response
    // Authenticator (a server with a bug, or a forger knowing only MD5's
    // trick): refused.
    let mut forged = wire.clone();
    forged[22] ^= 0xff;
    forged[4..20].copy_from_slice(&ra);
    let digest = md5_of(&[&forged, secret]);
    forged[4..20].copy_from_slice(&digest);
    assert_eq!(
        Packet::decode_response(&forged, &ra, secret),
        Err(PacketError::BadMessageAuthenticator)
    );
}

#[test]
fn malformed_packets() {
    assert!(matches!(
        Packet::decode(&[2, 0, 0]),
        Err(PacketError::Truncated { .. })
    ));
    let mut p = hex(RFC_ACCEPT);
    p[3] = 19;
    assert_eq!(
        Packet::decode(&p),
        Err(PacketError::BadLength { declared: 19 })
    );
    let mut p = hex(RFC_ACCEPT);
    p[21] = 1;
    assert!(matches!(
        Packet::decode(&p),
        Err(PacketError::BadAttribute { kind: 6, .. })
    ));
    let mut p = hex(RFC_ACCEPT);
    p[3] = 0x30;
    assert!(matches!(
        Packet::decode(&p),
        Err(PacketError::Truncated { .. })
    ));
    // UDP padding past the Length field is ignored.
    let mut p = hex(RFC_ACCEPT);
    p.extend_from_slice(&[0, 0, 0]);
    assert_eq!(Packet::decode(&p).unwrap().attributes.len(), 3);
    let mut big = Packet::new(Code::AccessRequest, 0, [0; 16]);
    assert!(matches!(
        big.push(attr::USER_NAME, vec![b'x'; 254]),
        Err(PacketError::TooLong { .. })
    ));
    for _ in 0..17 {
        big.push(attr::CLASS, vec![0; 253]).unwrap();
    }
    assert!(matches!(big.encode(), Err(PacketError::TooLong { .. })));
}

#[test]
fn ipv6_prefix_encodings() {
    // RFC 3162 §2.3 / RFC 4818 §3: reserved, length, significant bytes.
    let net = "2001:db8::/32".parse().unwrap();
    assert_eq!(
        attr::encode_ipv6_prefix(net),
        [0, 32, 0x20, 0x01, 0x0d, 0xb8]
    );
    assert_eq!(
        attr::decode_ipv6_prefix(97, &[0, 32, 0x20, 0x01, 0x0d, 0xb8]),
        Ok(net)
    );
    let net = "2001:db8:100::/56".parse().unwrap();
    assert_eq!(
        attr::encode_ipv6_prefix(net),
        [0, 56, 0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 0x00]
    );
    // The full 16 bytes, as some servers send.
    let mut full = vec![0, 56];
    full.extend_from_slice(&net.network().octets());
    assert_eq!(attr::decode_ipv6_prefix(123, &full), Ok(net));
    assert_eq!(attr::encode_ipv6_prefix("::/0".parse().unwrap()), [0, 0]);
    assert!(matches!(
        attr::decode_ipv6_prefix(97, &[0, 129]),
        Err(AttributeError::BadPrefix { .. })
    ));
    assert!(matches!(
        attr::decode_ipv6_prefix(97, &[0, 64, 0x20, 0x01]),
        Err(AttributeError::BadSize { .. })
    ));
    assert!(matches!(
        attr::decode_ipv6_prefix(97, &[0, 16, 0x20, 0x01, 0xff]),
        Err(AttributeError::BadPrefix { .. })
    ));
}

fn config() -> RadiusConfig {
    RadiusConfig {
        servers: vec!["127.0.0.1:1812".into()],
        accounting_servers: vec![],
        secret_file: "/etc/collecte/radius.secret".into(),
        nas_identifier: "collecte".into(),
        interim_interval: 300,
        timeout: Seconds(Duration::from_secs(3)),
        retries: 3,
    }
}

fn client() -> Client {
    Client::new(&config(), b"testing123".to_vec()).unwrap()
}

fn attrs(p: &Packet) -> Vec<u8> {
    p.attributes.iter().map(|(k, _)| *k).collect()
}

#[test]
fn access_request_attributes() {
    let req = AccessRequest {
        user: "dual@isp".into(),
        auth: Credentials::Pap {
            password: b"dual-pass".to_vec(),
        },
        nas_port_id: nas_port_id("acc0", 100, 200),
        nas_port_type: NasPortType::Virtual,
        calling_station_id: calling_station_id([0x02, 0, 0, 0xaa, 0xbb, 0x0c]),
    };
    let (bytes, ra) = client().access_request(42, &req).unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        (p.code, p.identifier, p.authenticator),
        (Code::AccessRequest, 42, ra)
    );
    assert_eq!(
        attrs(&p),
        [
            attr::USER_NAME,
            attr::USER_PASSWORD,
            attr::NAS_IDENTIFIER,
            attr::NAS_PORT_ID,
            attr::NAS_PORT_TYPE,
            attr::SERVICE_TYPE,
            attr::FRAMED_PROTOCOL,
            attr::CALLING_STATION_ID,
            attr::MESSAGE_AUTHENTICATOR,
        ]
    );
    assert_eq!(p.get(attr::USER_NAME), Some(&b"dual@isp"[..]));
    let hidden = p.get(attr::USER_PASSWORD).unwrap();
    assert_eq!(unhide_password(hidden, b"testing123", &ra), b"dual-pass");
    assert_eq!(p.get(attr::NAS_PORT_ID), Some(&b"acc0:100.200"[..]));
    assert_eq!(p.get(attr::NAS_PORT_TYPE), Some(&[0, 0, 0, 5][..]));
    assert_eq!(p.get(attr::SERVICE_TYPE), Some(&[0, 0, 0, 2][..]));
    assert_eq!(p.get(attr::FRAMED_PROTOCOL), Some(&[0, 0, 0, 1][..]));
    assert_eq!(
        p.get(attr::CALLING_STATION_ID),
        Some(&b"02:00:00:aa:bb:0c"[..])
    );
    assert_eq!(nas_port_id("acc0", 0, 200), "acc0:200");
    assert_eq!(nas_port_id("acc0", 0, 0), "acc0");

    let chap = AccessRequest {
        auth: Credentials::Chap {
            id: 7,
            challenge: vec![1; 16],
            response: vec![2; 16],
        },
        ..req
    };
    let (bytes, _) = client().access_request(1, &chap).unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.get(attr::USER_PASSWORD), None);
    let mut expected = vec![7];
    expected.extend_from_slice(&[2; 16]);
    assert_eq!(p.get(attr::CHAP_PASSWORD), Some(&expected[..]));
    assert_eq!(p.get(attr::CHAP_CHALLENGE), Some(&[1; 16][..]));
}

#[test]
fn accounting_request_gigawords_and_authenticator() {
    let rec = AcctRecord {
        kind: AcctKind::Stop,
        session_id: "0000002a".into(),
        user: "pap-v4".into(),
        nas_port_id: "acc0".into(),
        calling_station_id: "02:00:00:00:00:01".into(),
        framed_ip: Some(Ipv4Addr::new(198, 51, 100, 10)),
        session_time: 61,
        in_octets: 5_000_000_000,
        out_octets: (3 << 32) + 7,
        in_packets: 10,
        out_packets: (1 << 32) + 5,
        terminate_cause: Some(1),
        ..AcctRecord::default()
    };
    let event = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (bytes, ra) = client()
        .accounting_request(5, &rec, event, Duration::from_secs(4))
        .unwrap();
    // Request Authenticator = MD5(packet with 16 zero bytes + secret).
    let mut zeroed = bytes.clone();
    zeroed[4..20].fill(0);
    assert_eq!(ra, md5_of(&[&zeroed, b"testing123"]));
    let p = Packet::decode(&bytes).unwrap();
    let u32_of = |kind| attr::decode_u32(kind, p.get(kind).unwrap()).unwrap();
    assert_eq!(u32_of(attr::ACCT_STATUS_TYPE), attr::ACCT_STATUS_STOP);
    assert_eq!(u32_of(attr::ACCT_INPUT_OCTETS), 705_032_704);
    assert_eq!(u32_of(attr::ACCT_INPUT_GIGAWORDS), 1);
    assert_eq!(u32_of(attr::ACCT_OUTPUT_OCTETS), 7);
    assert_eq!(u32_of(attr::ACCT_OUTPUT_GIGAWORDS), 3);
    assert_eq!(u32_of(attr::ACCT_INPUT_PACKETS), 10);
    assert_eq!(u32_of(attr::ACCT_OUTPUT_PACKETS), 5);
    assert_eq!(u32_of(attr::ACCT_SESSION_TIME), 61);
    assert_eq!(u32_of(attr::ACCT_TERMINATE_CAUSE), 1);
    assert_eq!(u32_of(attr::EVENT_TIMESTAMP), 1_800_000_000);
    assert_eq!(u32_of(attr::ACCT_DELAY_TIME), 4);
    assert_eq!(p.get(attr::ACCT_SESSION_ID), Some(&b"0000002a"[..]));
    assert_eq!(
        p.get(attr::FRAMED_IP_ADDRESS),
        Some(&[198, 51, 100, 10][..])
    );
    assert_eq!(p.get(attr::MESSAGE_AUTHENTICATOR), None);

    // A Start has no counters.
    let start = AcctRecord {
        kind: AcctKind::Start,
        terminate_cause: None,
        ..rec
    };
    let (bytes, _) = client()
        .accounting_request(6, &start, event, Duration::ZERO)
        .unwrap();
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.get(attr::ACCT_INPUT_OCTETS), None);
    assert_eq!(p.get(attr::ACCT_TERMINATE_CAUSE), None);
    assert_eq!(p.get(attr::ACCT_STATUS_TYPE), Some(&[0, 0, 0, 1][..]));
}

#[test]
fn accept_attributes() {
    let mut p = Packet::new(Code::AccessAccept, 0, [0; 16]);
    p.push(attr::FRAMED_IP_ADDRESS, [198, 51, 100, 11]).unwrap();
    p.push(
        attr::FRAMED_IPV6_PREFIX,
        attr::encode_ipv6_prefix("2001:db8:1:2::/64".parse().unwrap()),
    )
    .unwrap();
    p.push(
        attr::DELEGATED_IPV6_PREFIX,
        attr::encode_ipv6_prefix("2001:db8:200::/56".parse().unwrap()),
    )
    .unwrap();
    p.push(attr::SESSION_TIMEOUT, attr::encode_u32(3600))
        .unwrap();
    p.push(attr::REPLY_MESSAGE, "welcome").unwrap();
    p.push(attr::CLASS, [1, 2]).unwrap();
    let accept = accept_of(&p).unwrap();
    assert_eq!(
        accept,
        Accept {
            framed_ip: Some(Ipv4Addr::new(198, 51, 100, 11)),
            framed_ipv6_prefix: Some("2001:db8:1:2::/64".parse().unwrap()),
            delegated_ipv6_prefix: Some("2001:db8:200::/56".parse().unwrap()),
            session_timeout: Some(3600),
            interim_interval: None,
            reply_message: Some("welcome".into()),
            class: vec![vec![1, 2]],
        }
    );
    let mut bad = Packet::new(Code::AccessAccept, 0, [0; 16]);
    bad.push(attr::FRAMED_IP_ADDRESS, [1, 2, 3]).unwrap();
    assert!(matches!(accept_of(&bad), Err(RadiusError::Attribute(_))));
}

#[test]
fn client_settings() {
    let mut c = config();
    c.servers = vec!["[::1]:1812".into(), "127.0.0.2:1645".into()];
    assert_eq!(
        c.accounting_servers(),
        ["[::1]:1813".to_owned(), "127.0.0.2:1813".to_owned()]
    );
    assert!(Client::new(&c, b"x".to_vec()).is_ok());
    assert!(matches!(
        Client::new(&c, Vec::new()),
        Err(RadiusError::EmptySecret)
    ));
    c.servers = vec!["no-such-host.invalid:1812".into()];
    let err = Client::new(&c, b"x".to_vec()).unwrap_err();
    assert!(
        matches!(
            err,
            RadiusError::Resolve {
                field: "servers",
                ..
            }
        ),
        "{err:?}"
    );
    let err = RadiusError::Rejected {
        message: Some("account disabled".into()),
    };
    assert_eq!(
        err.to_string(),
        "RADIUS refused the user (Access-Reject): account disabled"
    );
}
