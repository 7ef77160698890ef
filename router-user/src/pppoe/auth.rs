//! Authentication over PPP: PAP (RFC 1334 2.2) and CHAP with MD5
//! (RFC 1994 4), their packets, and the MD5 digest (the md-5 crate) for
//! the AC cookie and for checking a CHAP response where a secret is known
//! (tests).
use md5::{Digest as _, Md5};

use super::ppp::{self, Packet};

/// PAP codes.
pub const PAP_REQUEST: u8 = 1;
pub const PAP_ACK: u8 = 2;
pub const PAP_NAK: u8 = 3;
/// CHAP codes.
pub const CHAP_CHALLENGE: u8 = 1;
pub const CHAP_RESPONSE: u8 = 2;
pub const CHAP_SUCCESS: u8 = 3;
pub const CHAP_FAILURE: u8 = 4;
/// CHAP algorithm MD5 (LCP option 3 data after the protocol).
pub const CHAP_MD5: u8 = 5;

/// A PAP or CHAP packet that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{what} field runs past the end of the packet")]
    Truncated { what: &'static str },
}

/// A PAP Authenticate-Request: peer id and password.
pub fn parse_pap_request(data: &[u8]) -> Result<(String, Vec<u8>), AuthError> {
    let ulen = *data
        .first()
        .ok_or(AuthError::Truncated { what: "Peer-ID" })? as usize;
    let user = data
        .get(1..1 + ulen)
        .ok_or(AuthError::Truncated { what: "Peer-ID" })?;
    let plen = *data
        .get(1 + ulen)
        .ok_or(AuthError::Truncated { what: "Password" })? as usize;
    let pw = data
        .get(2 + ulen..2 + ulen + plen)
        .ok_or(AuthError::Truncated { what: "Password" })?;
    Ok((String::from_utf8_lossy(user).into_owned(), pw.to_vec()))
}

/// A PAP Authenticate-Ack or -Nak with `message`.
pub fn pap_reply(code: u8, id: u8, message: &str) -> Vec<u8> {
    let mut data = vec![message.len().min(255) as u8];
    data.extend_from_slice(&message.as_bytes()[..message.len().min(255)]);
    ppp::encode(ppp::PAP, code, id, &data)
}

/// A CHAP Challenge or Response: value and name.
pub fn parse_chap_value(data: &[u8]) -> Result<(Vec<u8>, String), AuthError> {
    let vlen = *data.first().ok_or(AuthError::Truncated { what: "Value" })? as usize;
    let value = data
        .get(1..1 + vlen)
        .ok_or(AuthError::Truncated { what: "Value" })?;
    Ok((
        value.to_vec(),
        String::from_utf8_lossy(&data[1 + vlen..]).into_owned(),
    ))
}

/// A CHAP Challenge (or Response) packet with `value` and `name`.
pub fn chap_value(code: u8, id: u8, value: &[u8], name: &str) -> Vec<u8> {
    let mut data = vec![value.len() as u8];
    data.extend_from_slice(value);
    data.extend_from_slice(name.as_bytes());
    ppp::encode(ppp::CHAP, code, id, &data)
}

/// A CHAP Success or Failure with `message`.
pub fn chap_result(code: u8, id: u8, message: &str) -> Vec<u8> {
    ppp::encode(ppp::CHAP, code, id, message.as_bytes())
}

/// The CHAP-MD5 response: MD5(id, secret, challenge).
pub fn chap_md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut m = vec![id];
    m.extend_from_slice(secret);
    m.extend_from_slice(challenge);
    md5(&m)
}

/// Reads a PAP or CHAP packet.
pub fn packet(b: &[u8]) -> Result<Packet<'_>, ppp::PppError> {
    Packet::parse(b)
}

/// MD5 (RFC 1321), by the md-5 crate.
pub fn md5(input: &[u8]) -> [u8; 16] {
    Md5::digest(input).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pap_and_chap_packets_read_and_write_byte_exact() {
        let req = [1, 5, 0, 14, 3, b'b', b'o', b'b', 4, b'p', b'a', b's', b's'];
        // The length field says 14 but 13 bytes are here: refused.
        assert!(Packet::parse(&req).is_err());
        let req = [1, 5, 0, 13, 3, b'b', b'o', b'b', 4, b'p', b'a', b's', b's'];
        let p = Packet::parse(&req).unwrap();
        assert_eq!(
            parse_pap_request(p.data).unwrap(),
            ("bob".to_string(), b"pass".to_vec())
        );
        assert_eq!(
            parse_pap_request(&[3, b'b']),
            Err(AuthError::Truncated { what: "Peer-ID" })
        );
        assert_eq!(
            pap_reply(PAP_ACK, 5, "ok"),
            [0xc0, 0x23, 2, 5, 0, 7, 2, b'o', b'k']
        );
        let ch = chap_value(CHAP_CHALLENGE, 9, &[0xaa, 0xbb], "ac");
        assert_eq!(ch, [0xc2, 0x23, 1, 9, 0, 9, 2, 0xaa, 0xbb, b'a', b'c']);
        let p = Packet::parse(&ch[2..]).unwrap();
        assert_eq!(
            parse_chap_value(p.data).unwrap(),
            (vec![0xaa, 0xbb], "ac".to_string())
        );
        assert_eq!(
            chap_result(CHAP_FAILURE, 9, "no"),
            [0xc2, 0x23, 4, 9, 0, 6, b'n', b'o']
        );
        // RFC 1994: MD5 over id, secret, challenge.
        let mut m = vec![9u8];
        m.extend_from_slice(b"secret");
        m.extend_from_slice(&[0xaa, 0xbb]);
        assert_eq!(chap_md5_response(9, b"secret", &[0xaa, 0xbb]), md5(&m));
    }
}
