//! The RADIUS packet (RFC 2865 §3): its header, its attributes as type and
//! raw value, and the cryptography around it: the Request and Response
//! Authenticators, the hiding of User-Password (§5.2), the accounting
//! Request Authenticator (RFC 2866 §3) and Message-Authenticator (RFC 3579
//! §3.2). No I/O.
use hmac::{Hmac, Mac as _};
use md5::{Digest as _, Md5};

use super::attribute::MESSAGE_AUTHENTICATOR;

/// Length of the header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// Largest packet (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Longest attribute value.
pub const MAX_VALUE_LEN: usize = 253;
/// Longest password PAP may hide (RFC 2865 §5.2).
pub const MAX_PASSWORD_LEN: usize = 128;

/// A packet's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    /// Any other code.
    Other(u8),
}

impl Code {
    /// The code's number.
    pub fn number(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::Other(n) => n,
        }
    }

    /// The code of `number`.
    pub fn from_number(number: u8) -> Code {
        match number {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            n => Code::Other(n),
        }
    }
}

/// Why bytes are not a usable RADIUS packet.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than its header, or than its Length field says.
    #[error(
        "truncated RADIUS packet: {len} bytes, the header needs 20 and the Length field says {declared}"
    )]
    Truncated { len: usize, declared: usize },
    /// A Length field outside 20..=4096.
    #[error("RADIUS Length field {declared} is outside 20..=4096")]
    BadLength { declared: usize },
    /// An attribute whose length runs past the packet or is below 2.
    #[error("RADIUS attribute {kind} at offset {offset} has a bad length {len}")]
    BadAttribute { kind: u8, offset: usize, len: usize },
    /// A value too long for one attribute, or a packet grown past 4096 bytes.
    #[error("RADIUS {what} is too long ({len} bytes, at most {max})")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The answer's Response Authenticator does not match: a wrong secret, or
    /// not an answer to this request.
    #[error("the Response Authenticator does not match: is the shared secret the server's?")]
    BadAuthenticator,
    /// The Message-Authenticator does not match, or is not 16 bytes.
    #[error("the Message-Authenticator does not match: is the shared secret the server's?")]
    BadMessageAuthenticator,
}

/// A packet: the header's fields and the attributes in order. The length is
/// computed when encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// `(type, value)` in order; a value is at most 253 bytes.
    pub attributes: Vec<(u8, Vec<u8>)>,
}

type HmacMd5 = Hmac<Md5>;

impl Packet {
    /// An empty packet.
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Packet {
        Packet {
            code,
            identifier,
            authenticator,
            attributes: Vec::new(),
        }
    }

    /// Appends an attribute.
    pub fn push(&mut self, kind: u8, value: impl Into<Vec<u8>>) -> Result<(), PacketError> {
        let value = value.into();
        if value.len() > MAX_VALUE_LEN {
            return Err(PacketError::TooLong {
                what: "attribute value",
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        self.attributes.push((kind, value));
        Ok(())
    }

    /// The first value of attribute `kind`.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of attribute `kind`, in order.
    pub fn get_all(&self, kind: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// The wire bytes, as they are (no authenticator computed).
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.push(self.code.number());
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.authenticator);
        for (kind, value) in &self.attributes {
            if value.len() > MAX_VALUE_LEN {
                return Err(PacketError::TooLong {
                    what: "attribute value",
                    len: value.len(),
                    max: MAX_VALUE_LEN,
                });
            }
            out.push(*kind);
            out.push((value.len() + 2) as u8);
            out.extend_from_slice(value);
        }
        if out.len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong {
                what: "packet",
                len: out.len(),
                max: MAX_PACKET_LEN,
            });
        }
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }

    /// Parses a packet; bytes past its Length field (UDP padding) are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::Truncated {
                len: bytes.len(),
                declared: HEADER_LEN,
            });
        }
        let declared = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&declared) {
            return Err(PacketError::BadLength { declared });
        }
        if bytes.len() < declared {
            return Err(PacketError::Truncated {
                len: bytes.len(),
                declared,
            });
        }
        let mut packet = Packet::new(
            Code::from_number(bytes[0]),
            bytes[1],
            bytes[4..20].try_into().expect("16 bytes"),
        );
        let mut at = HEADER_LEN;
        while at < declared {
            let kind = bytes[at];
            let len = bytes.get(at + 1).map_or(0, |l| usize::from(*l));
            if len < 2 || at + len > declared {
                return Err(PacketError::BadAttribute {
                    kind,
                    offset: at,
                    len,
                });
            }
            packet
                .attributes
                .push((kind, bytes[at + 2..at + len].to_vec()));
            at += len;
        }
        Ok(packet)
    }

    /// Encodes an Access-Request (or Status-Server): when the packet holds a
    /// Message-Authenticator attribute (any value), it is computed over the
    /// packet with the Request Authenticator in place.
    pub fn encode_request(&self, secret: &[u8]) -> Result<Vec<u8>, PacketError> {
        let mut bytes = self.encode()?;
        if let Some(at) = find_attribute(&bytes, MESSAGE_AUTHENTICATOR) {
            bytes[at..at + 16].fill(0);
            let mac = hmac_md5(secret, &bytes);
            bytes[at..at + 16].copy_from_slice(&mac);
        }
        Ok(bytes)
    }

    /// Encodes an Accounting-Request: its Request Authenticator is the MD5 of
    /// the packet with 16 zero bytes in its place, then the secret (RFC 2866
    /// §3). The packet's own `authenticator` is ignored.
    pub fn encode_accounting(&self, secret: &[u8]) -> Result<Vec<u8>, PacketError> {
        let mut bytes = self.encode()?;
        bytes[4..20].fill(0);
        let digest = md5_of(&[&bytes, secret]);
        bytes[4..20].copy_from_slice(&digest);
        Ok(bytes)
    }

    /// Encodes an answer (Access-Accept/Reject/Challenge, Accounting-Response)
    /// to a request whose authenticator was `request_authenticator`: the
    /// Message-Authenticator if present, then the Response Authenticator
    /// (what a server does; the tests use it).
    pub fn encode_response(
        &self,
        request_authenticator: &[u8; 16],
        secret: &[u8],
    ) -> Result<Vec<u8>, PacketError> {
        let mut bytes = self.encode()?;
        bytes[4..20].copy_from_slice(request_authenticator);
        if let Some(at) = find_attribute(&bytes, MESSAGE_AUTHENTICATOR) {
            bytes[at..at + 16].fill(0);
            let mac = hmac_md5(secret, &bytes);
            bytes[at..at + 16].copy_from_slice(&mac);
        }
        let digest = md5_of(&[&bytes, secret]);
        bytes[4..20].copy_from_slice(&digest);
        Ok(bytes)
    }

    /// Parses an answer to a request whose authenticator was
    /// `request_authenticator`, checking its Response Authenticator and, when
    /// it carries one, its Message-Authenticator.
    pub fn decode_response(
        bytes: &[u8],
        request_authenticator: &[u8; 16],
        secret: &[u8],
    ) -> Result<Packet, PacketError> {
        let packet = Packet::decode(bytes)?;
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let mut copy = bytes[..len].to_vec();
        copy[4..20].copy_from_slice(request_authenticator);
        let expected = md5_of(&[&copy, secret]);
        if !constant_time_eq(&expected, &packet.authenticator) {
            return Err(PacketError::BadAuthenticator);
        }
        if packet
            .get(MESSAGE_AUTHENTICATOR)
            .is_some_and(|v| v.len() != 16)
        {
            return Err(PacketError::BadMessageAuthenticator);
        }
        if let Some(at) = find_attribute(&copy, MESSAGE_AUTHENTICATOR) {
            let given: [u8; 16] = copy[at..at + 16].try_into().expect("16 bytes");
            copy[at..at + 16].fill(0);
            if !constant_time_eq(&hmac_md5(secret, &copy), &given) {
                return Err(PacketError::BadMessageAuthenticator);
            }
        }
        Ok(packet)
    }
}

/// Hides a PAP password (RFC 2865 §5.2): padded with zeros to a multiple of
/// 16 bytes, then XORed block by block with MD5(secret + previous block),
/// the first previous block being the Request Authenticator.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, PacketError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PacketError::TooLong {
            what: "User-Password",
            len: password.len(),
            max: MAX_PASSWORD_LEN,
        });
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded_len, 0);
    let mut previous: [u8; 16] = *request_authenticator;
    for block in out.chunks_mut(16) {
        let b = md5_of(&[secret, &previous]);
        for (c, k) in block.iter_mut().zip(b) {
            *c ^= k;
        }
        previous.copy_from_slice(block);
    }
    Ok(out)
}

/// Reverses [`hide_password`] (what a server does; the tests use it). The
/// zero padding is removed.
pub fn unhide_password(hidden: &[u8], secret: &[u8], request_authenticator: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hidden.len());
    let mut previous: [u8; 16] = *request_authenticator;
    for block in hidden.chunks(16) {
        let b = md5_of(&[secret, &previous]);
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        previous = [0; 16];
        previous[..block.len()].copy_from_slice(block);
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

/// The MD5 of the concatenation of `parts`.
pub fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    md5.finalize().into()
}

/// HMAC-MD5 of `data` keyed with `key`.
pub fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut mac = HmacMd5::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Where the value of the first attribute `kind` starts in encoded `bytes`.
fn find_attribute(bytes: &[u8], kind: u8) -> Option<usize> {
    let mut at = HEADER_LEN;
    while at + 2 <= bytes.len() {
        let len = usize::from(bytes[at + 1]);
        if len < 2 {
            return None;
        }
        if bytes[at] == kind && len == 18 && at + len <= bytes.len() {
            return Some(at + 2);
        }
        at += len;
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
