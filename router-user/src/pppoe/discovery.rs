//! PPPoE discovery (RFC 2516 5): the codes and the tags of PADI, PADO,
//! PADR, PADS and PADT payloads.

use super::{auth, types::Line};

/// Discovery codes.
pub const PADI: u8 = 0x09;
pub const PADO: u8 = 0x07;
pub const PADR: u8 = 0x19;
pub const PADS: u8 = 0x65;
pub const PADT: u8 = 0xa7;

/// Tag types (RFC 2516 appendix A).
pub const END_OF_LIST: u16 = 0x0000;
pub const SERVICE_NAME: u16 = 0x0101;
pub const AC_NAME: u16 = 0x0102;
pub const HOST_UNIQ: u16 = 0x0103;
pub const AC_COOKIE: u16 = 0x0104;
pub const RELAY_SESSION_ID: u16 = 0x0110;
pub const SERVICE_NAME_ERROR: u16 = 0x0201;
pub const GENERIC_ERROR: u16 = 0x0203;

/// A discovery payload that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag {tag:#06x} of length {length} runs past the payload's {available} bytes")]
    Truncated {
        tag: u16,
        length: usize,
        available: usize,
    },
}

/// The tags of a discovery payload, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(pub Vec<(u16, Vec<u8>)>);

impl Tags {
    /// Reads the tags of `payload` (up to End-Of-List).
    pub fn parse(payload: &[u8]) -> Result<Tags, TagError> {
        let mut tags = Vec::new();
        let mut rest = payload;
        while rest.len() >= 4 {
            let tag = u16::from_be_bytes([rest[0], rest[1]]);
            let length = u16::from_be_bytes([rest[2], rest[3]]) as usize;
            if tag == END_OF_LIST {
                break;
            }
            let Some(value) = rest.get(4..4 + length) else {
                return Err(TagError::Truncated {
                    tag,
                    length,
                    available: rest.len() - 4,
                });
            };
            tags.push((tag, value.to_vec()));
            rest = &rest[4 + length..];
        }
        Ok(Tags(tags))
    }

    /// The first value of tag `tag`.
    pub fn get(&self, tag: u16) -> Option<&[u8]> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| &v[..])
    }

    /// Appends a tag.
    pub fn push(&mut self, tag: u16, value: &[u8]) -> &mut Tags {
        self.0.push((tag, value.to_vec()));
        self
    }

    /// Appends tag `tag` of `from` if it has one (echoing a request's tag).
    pub fn echo(&mut self, from: &Tags, tag: u16) -> &mut Tags {
        if let Some(v) = from.get(tag) {
            self.push(tag, v);
        }
        self
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (t, v) in &self.0 {
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

/// The AC-Cookie of `line` under `key`: a keyed hash, so that a PADR
/// proves its sender saw our PADO without the engine keeping state per
/// PADI.
pub fn cookie(key: &[u8], line: &Line) -> [u8; 16] {
    let mut m = key.to_vec();
    m.extend_from_slice(&line.ifindex.to_be_bytes());
    m.extend_from_slice(&line.s_vlan.to_be_bytes());
    m.extend_from_slice(&line.c_vlan.to_be_bytes());
    m.extend_from_slice(&line.mac);
    auth::md5(&m)
}

/// Is the Service-Name of `tags` one of `offered` (any when empty)? The
/// empty name (any service) is always accepted; a PADI or PADR without the
/// tag is not (RFC 2516 5.1).
pub fn service_ok(offered: &[String], tags: &Tags) -> bool {
    match tags.get(SERVICE_NAME) {
        None => false,
        Some([]) => true,
        Some(name) => offered.is_empty() || offered.iter().any(|s| s.as_bytes() == name),
    }
}

/// The tags of a PADO (with `cookie`) or PADS answering `req`:
/// Service-Name, AC-Name, AC-Cookie, and the request's Host-Uniq and
/// Relay-Session-Id.
pub fn reply_tags(req: &Tags, ac_name: &str, cookie: Option<&[u8; 16]>) -> Tags {
    let mut t = Tags::default();
    t.echo(req, SERVICE_NAME).push(AC_NAME, ac_name.as_bytes());
    if let Some(c) = cookie {
        t.push(AC_COOKIE, c);
    }
    t.echo(req, HOST_UNIQ).echo(req, RELAY_SESSION_ID);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padi_payload_reads_and_writes_byte_exact() {
        // Service-Name "" and Host-Uniq 0xdeadbeef, as a PADI carries them.
        let bytes = [
            0x01, 0x01, 0x00, 0x00, 0x01, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef,
        ];
        let tags = Tags::parse(&bytes).unwrap();
        assert_eq!(tags.get(SERVICE_NAME), Some(&[][..]));
        assert_eq!(tags.get(HOST_UNIQ), Some(&[0xde, 0xad, 0xbe, 0xef][..]));
        assert_eq!(tags.encode(), bytes);
        let mut reply = Tags::default();
        reply
            .push(AC_NAME, b"ac")
            .echo(&tags, SERVICE_NAME)
            .echo(&tags, RELAY_SESSION_ID);
        assert_eq!(
            reply.encode(),
            [0x01, 0x02, 0, 2, b'a', b'c', 0x01, 0x01, 0, 0]
        );
    }

    #[test]
    fn a_truncated_tag_is_refused_and_end_of_list_stops() {
        assert_eq!(
            Tags::parse(&[0x01, 0x03, 0x00, 0x08, 1, 2]),
            Err(TagError::Truncated {
                tag: 0x0103,
                length: 8,
                available: 2
            })
        );
        let t = Tags::parse(&[0, 0, 0, 0, 0x01, 0x01, 0, 0]).unwrap();
        assert!(t.0.is_empty());
    }
}
