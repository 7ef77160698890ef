//! PPPoE frames on the wire: the Ethernet header with no tag, one 802.1Q
//! tag or an 802.1ad S-tag over an 802.1Q C-tag, then the PPPoE header
//! (RFC 2516 4): version/type, code, session id, length, payload.
use router_common::pppoe::{ETH_P_PPPOE_DISCOVERY, ETH_P_PPPOE_SESSION, PPPOE_HLEN, VER_TYPE};

use super::types::Line;

pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// A frame that is not a well-formed PPPoE frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is shorter than its headers")]
    Short { len: usize },
    #[error("ethertype {ethertype:#06x} is not PPPoE")]
    NotPppoe { ethertype: u16 },
    #[error("tags not handled: {tpid:#06x} where none, 802.1Q or 802.1ad + 802.1Q were expected")]
    Tags { tpid: u16 },
    #[error("PPPoE version/type {0:#04x} is not 0x11")]
    Version(u8),
    #[error("PPPoE length {length} exceeds the {available} bytes after the header")]
    Length { length: usize, available: usize },
}

/// Which PPPoE stage a frame belongs to (its ethertype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Discovery,
    Session,
}

impl Stage {
    pub fn ethertype(self) -> u16 {
        match self {
            Stage::Discovery => ETH_P_PPPOE_DISCOVERY,
            Stage::Session => ETH_P_PPPOE_SESSION,
        }
    }
}

/// A parsed PPPoE frame, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: [u8; 6],
    /// The sender's line (ifindex as given to [`parse`]).
    pub line: Line,
    pub stage: Stage,
    pub code: u8,
    pub session_id: u16,
    /// The payload, as long as the PPPoE length says (padding dropped).
    pub payload: &'a [u8],
}

fn be16(b: &[u8], off: usize) -> Result<u16, FrameError> {
    b.get(off..off + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(FrameError::Short { len: b.len() })
}

/// Parses a frame received on `ifindex`, tags in place.
pub fn parse(ifindex: u32, b: &[u8]) -> Result<Frame<'_>, FrameError> {
    if b.len() < 14 {
        return Err(FrameError::Short { len: b.len() });
    }
    let mut dst = [0; 6];
    dst.copy_from_slice(&b[..6]);
    let mut mac = [0; 6];
    mac.copy_from_slice(&b[6..12]);
    let (mut s_vlan, mut c_vlan) = (0, 0);
    let mut off = 12;
    let mut et = be16(b, off)?;
    if et == ETH_P_8021AD {
        s_vlan = be16(b, off + 2)? & 0x0fff;
        off += 4;
        et = be16(b, off)?;
        if et != ETH_P_8021Q {
            return Err(FrameError::Tags { tpid: et });
        }
    }
    if et == ETH_P_8021Q {
        c_vlan = be16(b, off + 2)? & 0x0fff;
        off += 4;
        et = be16(b, off)?;
        if et == ETH_P_8021Q || et == ETH_P_8021AD {
            return Err(FrameError::Tags { tpid: et });
        }
    }
    let stage = match et {
        ETH_P_PPPOE_DISCOVERY => Stage::Discovery,
        ETH_P_PPPOE_SESSION => Stage::Session,
        _ => return Err(FrameError::NotPppoe { ethertype: et }),
    };
    off += 2;
    let h = b
        .get(off..off + PPPOE_HLEN)
        .ok_or(FrameError::Short { len: b.len() })?;
    if h[0] != VER_TYPE {
        return Err(FrameError::Version(h[0]));
    }
    let length = u16::from_be_bytes([h[4], h[5]]) as usize;
    let rest = &b[off + PPPOE_HLEN..];
    if length > rest.len() {
        return Err(FrameError::Length {
            length,
            available: rest.len(),
        });
    }
    Ok(Frame {
        dst,
        line: Line {
            ifindex,
            s_vlan,
            c_vlan,
            mac,
        },
        stage,
        code: h[1],
        session_id: u16::from_be_bytes([h[2], h[3]]),
        payload: &rest[..length],
    })
}

/// Builds a frame from `src` to `dst` on `line`'s tags (S-tag 0x88a8 and
/// C-tag 0x8100, or one 0x8100 tag, or none).
pub fn build(
    dst: [u8; 6],
    src: [u8; 6],
    line: &Line,
    stage: Stage,
    code: u8,
    session_id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(30 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if line.s_vlan != 0 {
        f.extend_from_slice(&ETH_P_8021AD.to_be_bytes());
        f.extend_from_slice(&line.s_vlan.to_be_bytes());
    }
    if line.s_vlan != 0 || line.c_vlan != 0 {
        f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        f.extend_from_slice(&line.c_vlan.to_be_bytes());
    }
    f.extend_from_slice(&stage.ethertype().to_be_bytes());
    f.push(VER_TYPE);
    f.push(code);
    f.extend_from_slice(&session_id.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Is `frame` a PPPoE frame (after up to two tags)? The socket's filter.
pub fn is_pppoe(frame: &[u8]) -> bool {
    let mut off = 12;
    for _ in 0..3 {
        match frame
            .get(off..off + 2)
            .map(|s| u16::from_be_bytes([s[0], s[1]]))
        {
            Some(ETH_P_8021Q | ETH_P_8021AD) => off += 4,
            Some(ETH_P_PPPOE_DISCOVERY | ETH_P_PPPOE_SESSION) => return true,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const US: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];

    #[test]
    fn a_qinq_session_frame_is_built_and_parsed_back_byte_exact() {
        let line = Line {
            ifindex: 7,
            s_vlan: 100,
            c_vlan: 200,
            mac: CLIENT,
        };
        let f = build(
            US,
            CLIENT,
            &line,
            Stage::Session,
            0,
            0x1234,
            &[0xc0, 0x21, 9],
        );
        let want = [
            2, 0, 0, 0, 0, 0xaa, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 100, 0x81, 0, 0, 200, 0x88, 0x64,
            0x11, 0, 0x12, 0x34, 0, 3, 0xc0, 0x21, 9,
        ];
        assert_eq!(f, want);
        let p = parse(7, &f).unwrap();
        assert_eq!(p.line, line);
        assert_eq!(p.dst, US);
        assert_eq!((p.stage, p.code, p.session_id), (Stage::Session, 0, 0x1234));
        assert_eq!(p.payload, &[0xc0, 0x21, 9]);
        assert!(is_pppoe(&f));
    }

    #[test]
    fn ethernet_padding_is_dropped_and_a_long_length_refused() {
        let line = Line {
            ifindex: 1,
            c_vlan: 5,
            ..Line::default()
        };
        let mut f = build(BROADCAST, CLIENT, &line, Stage::Discovery, 9, 0, &[1, 2]);
        f.extend_from_slice(&[0; 20]);
        let p = parse(1, &f).unwrap();
        assert_eq!(p.payload, &[1, 2]);
        assert_eq!(p.line.c_vlan, 5);
        let n = f.len();
        f[22] = 0xff; // length high byte (offset 18 + 4)
        assert!(matches!(parse(1, &f[..n]), Err(FrameError::Length { .. })));
    }

    #[test]
    fn other_frames_are_refused_with_what_is_wrong() {
        let mut ip = vec![0u8; 60];
        ip[12] = 0x08;
        assert_eq!(
            parse(1, &ip),
            Err(FrameError::NotPppoe { ethertype: 0x0800 })
        );
        assert!(!is_pppoe(&ip));
        let mut qq = vec![0u8; 60];
        qq[12..14].copy_from_slice(&[0x88, 0xa8]);
        qq[16..18].copy_from_slice(&[0x88, 0x63]);
        assert_eq!(parse(1, &qq), Err(FrameError::Tags { tpid: 0x8863 }));
        assert_eq!(parse(1, &[0; 10]), Err(FrameError::Short { len: 10 }));
    }
}
