//! Authentication over PPP: PAP (RFC 1334 2.2) and CHAP with MD5
//! (RFC 1994 4), their packets, and MD5 itself (RFC 1321) for the AC
//! cookie and for checking a CHAP response where a secret is known
//! (tests).
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

const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// MD5 (RFC 1321).
pub fn md5(input: &[u8]) -> [u8; 16] {
    // K[i] = floor(|sin(i + 1)| * 2^32).
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32);
    let mut msg = input.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
    let (mut a0, mut b0, mut c0, mut d0) =
        (0x67452301u32, 0xefcdab89u32, 0x98badcfeu32, 0x10325476u32);
    for chunk in msg.chunks(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes(chunk[4 * i..4 * i + 4].try_into().expect("4 bytes"))
        });
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in [a0, b0, c0, d0].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_gives_the_rfc_1321_test_suite() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(b"abcdefghijklmnopqrstuvwxyz")),
            "c3fcd3d76192e4007dfb496cca67e13b"
        );
        assert_eq!(
            hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

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
