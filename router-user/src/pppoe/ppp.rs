//! PPP in a PPPoE session (RFC 1661): the protocol field, and the packets
//! of the control protocols (LCP, IPCP, IPv6CP share the format: code,
//! identifier, length, data; Configure packets carry type-length-value
//! options).

/// PPP protocol numbers.
pub const LCP: u16 = 0xc021;
pub const PAP: u16 = 0xc023;
pub const CHAP: u16 = 0xc223;
pub const IPCP: u16 = 0x8021;
pub const IPV6CP: u16 = 0x8057;
pub const IPV4: u16 = 0x0021;
pub const IPV6: u16 = 0x0057;

/// Control protocol codes (RFC 1661 5; IPCP and IPv6CP use 1 to 7).
pub const CONFIGURE_REQUEST: u8 = 1;
pub const CONFIGURE_ACK: u8 = 2;
pub const CONFIGURE_NAK: u8 = 3;
pub const CONFIGURE_REJECT: u8 = 4;
pub const TERMINATE_REQUEST: u8 = 5;
pub const TERMINATE_ACK: u8 = 6;
pub const CODE_REJECT: u8 = 7;
pub const PROTOCOL_REJECT: u8 = 8;
pub const ECHO_REQUEST: u8 = 9;
pub const ECHO_REPLY: u8 = 10;
pub const DISCARD_REQUEST: u8 = 11;

/// LCP options.
pub const OPT_MRU: u8 = 1;
pub const OPT_AUTH: u8 = 3;
pub const OPT_MAGIC: u8 = 5;

/// A PPP payload that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PppError {
    #[error("PPP payload of {len} bytes is too short for its headers")]
    Short { len: usize },
    #[error("control packet length {length} is below 4 or beyond the {available} bytes present")]
    Length { length: usize, available: usize },
    #[error("option {kind} has length {length}, below 2 or beyond the packet")]
    Option { kind: u8, length: usize },
}

/// Splits a session payload into its protocol and the rest.
pub fn split(payload: &[u8]) -> Result<(u16, &[u8]), PppError> {
    if payload.len() < 2 {
        return Err(PppError::Short { len: payload.len() });
    }
    Ok((u16::from_be_bytes([payload[0], payload[1]]), &payload[2..]))
}

/// A control packet (LCP, IPCP, IPv6CP, and the PAP/CHAP header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub code: u8,
    pub id: u8,
    /// The data, as long as the packet's length says.
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Packet<'a>, PppError> {
        if b.len() < 4 {
            return Err(PppError::Short { len: b.len() });
        }
        let length = u16::from_be_bytes([b[2], b[3]]) as usize;
        if length < 4 || length > b.len() {
            return Err(PppError::Length {
                length,
                available: b.len(),
            });
        }
        Ok(Packet {
            code: b[0],
            id: b[1],
            data: &b[4..length],
        })
    }
}

/// A session payload: `protocol`, then a control packet.
pub fn encode(protocol: u16, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + data.len());
    out.extend_from_slice(&protocol.to_be_bytes());
    out.push(code);
    out.push(id);
    out.extend_from_slice(&((4 + data.len()) as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// A Configure option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub kind: u8,
    pub value: Vec<u8>,
}

impl Opt {
    pub fn new(kind: u8, value: &[u8]) -> Opt {
        Opt {
            kind,
            value: value.to_vec(),
        }
    }

    /// The value as a big-endian u16 (MRU, protocol).
    pub fn u16(&self) -> Option<u16> {
        (self.value.len() >= 2).then(|| u16::from_be_bytes([self.value[0], self.value[1]]))
    }

    /// The value as a big-endian u32 (magic number), if exactly 4 bytes.
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(&self.value[..])
            .ok()
            .map(u32::from_be_bytes)
    }
}

/// Reads the options of a Configure packet's data.
pub fn parse_options(data: &[u8]) -> Result<Vec<Opt>, PppError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let kind = rest[0];
        let length = *rest.get(1).ok_or(PppError::Option { kind, length: 1 })? as usize;
        if length < 2 || length > rest.len() {
            return Err(PppError::Option { kind, length });
        }
        out.push(Opt::new(kind, &rest[2..length]));
        rest = &rest[length..];
    }
    Ok(out)
}

/// Writes options as Configure data.
pub fn encode_options(opts: &[Opt]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in opts {
        out.push(o.kind);
        out.push((2 + o.value.len()) as u8);
        out.extend_from_slice(&o.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lcp_configure_request_reads_and_writes_byte_exact() {
        // RFC 1661: MRU 1492, Auth CHAP-MD5 (c223 05), Magic 0x01020304.
        let bytes = [
            0xc0, 0x21, 0x01, 0x07, 0x00, 0x13, 0x01, 0x04, 0x05, 0xd4, 0x03, 0x05, 0xc2, 0x23,
            0x05, 0x05, 0x06, 0x01, 0x02, 0x03, 0x04,
        ];
        let (proto, rest) = split(&bytes).unwrap();
        assert_eq!(proto, LCP);
        let p = Packet::parse(rest).unwrap();
        assert_eq!((p.code, p.id), (CONFIGURE_REQUEST, 7));
        let opts = parse_options(p.data).unwrap();
        assert_eq!(opts[0].u16(), Some(1492));
        assert_eq!(opts[1], Opt::new(OPT_AUTH, &[0xc2, 0x23, 0x05]));
        assert_eq!(opts[2].u32(), Some(0x01020304));
        assert_eq!(
            encode(LCP, CONFIGURE_REQUEST, 7, &encode_options(&opts)),
            bytes
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert_eq!(
            Packet::parse(&[1, 1, 0, 9, 0]),
            Err(PppError::Length {
                length: 9,
                available: 5
            })
        );
        assert_eq!(
            parse_options(&[1, 9, 0]),
            Err(PppError::Option { kind: 1, length: 9 })
        );
        assert_eq!(
            parse_options(&[5, 0]),
            Err(PppError::Option { kind: 5, length: 0 })
        );
        // Trailing bytes past the length (padding) are not data.
        assert_eq!(
            Packet::parse(&[9, 1, 0, 4, 0, 0]).unwrap().data,
            &[] as &[u8]
        );
    }
}
