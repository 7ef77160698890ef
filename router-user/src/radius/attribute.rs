//! The attributes collecte sends and reads, by number (RFC 2865, 2866,
//! 2869, 3162, 3579, 4818), and their value encodings: text, integer,
//! address, IPv6 prefix.
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_PROTOCOL: u8 = 7;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const REPLY_MESSAGE: u8 = 18;
pub const CLASS: u8 = 25;
pub const SESSION_TIMEOUT: u8 = 27;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_DELAY_TIME: u8 = 41;
pub const ACCT_INPUT_OCTETS: u8 = 42;
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_SESSION_TIME: u8 = 46;
pub const ACCT_INPUT_PACKETS: u8 = 47;
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const CHAP_CHALLENGE: u8 = 60;
pub const NAS_PORT_TYPE: u8 = 61;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
pub const NAS_PORT_ID: u8 = 87;
pub const FRAMED_IPV6_PREFIX: u8 = 97;
pub const DELEGATED_IPV6_PREFIX: u8 = 123;

/// Service-Type Framed.
pub const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol PPP.
pub const FRAMED_PROTOCOL_PPP: u32 = 1;
/// Acct-Status-Type values.
pub const ACCT_STATUS_START: u32 = 1;
pub const ACCT_STATUS_STOP: u32 = 2;
pub const ACCT_STATUS_INTERIM: u32 = 3;

/// Why an attribute's value cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// A value of the wrong size for its type.
    #[error("RADIUS attribute {kind}: {len} bytes, expected {expected}")]
    BadSize {
        kind: u8,
        len: usize,
        expected: &'static str,
    },
    /// An IPv6 prefix with a length above 128 or bits set past it.
    #[error("RADIUS attribute {kind}: {why}")]
    BadPrefix { kind: u8, why: &'static str },
}

/// A 32-bit integer value.
pub fn encode_u32(value: u32) -> Vec<u8> {
    value.to_be_bytes().to_vec()
}

/// Reads a 32-bit integer value.
pub fn decode_u32(kind: u8, value: &[u8]) -> Result<u32, AttributeError> {
    <[u8; 4]>::try_from(value)
        .map(u32::from_be_bytes)
        .map_err(|_| AttributeError::BadSize {
            kind,
            len: value.len(),
            expected: "4",
        })
}

/// Reads an IPv4 address value.
pub fn decode_ipv4(kind: u8, value: &[u8]) -> Result<Ipv4Addr, AttributeError> {
    <[u8; 4]>::try_from(value)
        .map(Ipv4Addr::from)
        .map_err(|_| AttributeError::BadSize {
            kind,
            len: value.len(),
            expected: "4",
        })
}

/// An IPv6 prefix value (RFC 3162 §2.3, RFC 4818 §3): a reserved zero byte,
/// the prefix length, then the prefix's significant bytes only.
pub fn encode_ipv6_prefix(net: Ipv6Net) -> Vec<u8> {
    let bytes = usize::from(net.prefix_len()).div_ceil(8);
    let mut out = vec![0, net.prefix_len()];
    out.extend_from_slice(&net.network().octets()[..bytes]);
    out
}

/// Reads an IPv6 prefix value: 2 to 18 bytes, the address bytes past the
/// prefix length absent or zero (some servers always send 16).
pub fn decode_ipv6_prefix(kind: u8, value: &[u8]) -> Result<Ipv6Net, AttributeError> {
    if value.len() < 2 || value.len() > 18 {
        return Err(AttributeError::BadSize {
            kind,
            len: value.len(),
            expected: "2..=18",
        });
    }
    let len = value[1];
    if len > 128 {
        return Err(AttributeError::BadPrefix {
            kind,
            why: "prefix length above 128",
        });
    }
    let given = &value[2..];
    if given.len() < usize::from(len).div_ceil(8) {
        return Err(AttributeError::BadSize {
            kind,
            len: value.len(),
            expected: "2 + the prefix length's bytes",
        });
    }
    let mut octets = [0u8; 16];
    octets[..given.len()].copy_from_slice(given);
    let addr = Ipv6Addr::from(octets);
    let net = Ipv6Net::new(addr, len).map_err(|_| AttributeError::BadPrefix {
        kind,
        why: "prefix length above 128",
    })?;
    if net.network() != addr {
        return Err(AttributeError::BadPrefix {
            kind,
            why: "bits set past the prefix length",
        });
    }
    Ok(net)
}

/// Reads a text value (invalid UTF-8 replaced).
pub fn decode_text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}
