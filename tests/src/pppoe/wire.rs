//! The test client's own encoding of PPPoE and PPP (RFC 2516, 1661, 1334,
//! 1994, 1332, 5072), written apart from collecte's so that it checks the
//! engine rather than agreeing with it.
use std::{io::Write, process::Command};

pub const PADI: u8 = 0x09;
pub const PADO: u8 = 0x07;
pub const PADR: u8 = 0x19;
pub const PADS: u8 = 0x65;
pub const PADT: u8 = 0xa7;
pub const TAG_SERVICE_NAME: u16 = 0x0101;
pub const TAG_AC_NAME: u16 = 0x0102;
pub const TAG_HOST_UNIQ: u16 = 0x0103;
pub const TAG_AC_COOKIE: u16 = 0x0104;

pub const LCP: u16 = 0xc021;
pub const PAP: u16 = 0xc023;
pub const CHAP: u16 = 0xc223;
pub const IPCP: u16 = 0x8021;
pub const IPV6CP: u16 = 0x8057;
pub const IPV4: u16 = 0x0021;
pub const IPV6: u16 = 0x0057;

pub const CONF_REQ: u8 = 1;
pub const CONF_ACK: u8 = 2;
pub const CONF_NAK: u8 = 3;
pub const CONF_REJ: u8 = 4;
pub const TERM_REQ: u8 = 5;
pub const TERM_ACK: u8 = 6;
pub const ECHO_REQ: u8 = 9;
pub const ECHO_REP: u8 = 10;

/// A PPPoE frame as received: tags of the line, code, session, payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pppoe {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// (TPID, VLAN id), outer first.
    pub tags: Vec<(u16, u16)>,
    pub ethertype: u16,
    pub code: u8,
    pub session: u16,
    pub payload: Vec<u8>,
}

/// Reads a PPPoE frame (None for anything else).
pub fn parse(f: &[u8]) -> Option<Pppoe> {
    let mut off = 12;
    let mut tags = Vec::new();
    let et = loop {
        let t = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
        if t == 0x8100 || t == 0x88a8 {
            tags.push((
                t,
                u16::from_be_bytes([*f.get(off + 2)?, *f.get(off + 3)?]) & 0xfff,
            ));
            off += 4;
        } else {
            break t;
        }
    };
    if et != 0x8863 && et != 0x8864 {
        return None;
    }
    let h = f.get(off + 2..off + 8)?;
    if h[0] != 0x11 {
        return None;
    }
    let len = u16::from_be_bytes([h[4], h[5]]) as usize;
    Some(Pppoe {
        dst: f[..6].try_into().ok()?,
        src: f[6..12].try_into().ok()?,
        tags,
        ethertype: et,
        code: h[1],
        session: u16::from_be_bytes([h[2], h[3]]),
        payload: f.get(off + 8..off + 8 + len)?.to_vec(),
    })
}

/// A PPPoE frame.
pub fn frame(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    code: u8,
    session: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x11, code];
    p.extend_from_slice(&session.to_be_bytes());
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(payload);
    crate::frames::ether(dst, src, tags, ethertype, &p)
}

/// Discovery tags as (type, value).
pub fn tags(list: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, v) in list {
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The value of tag `t` in a discovery payload.
pub fn tag(payload: &[u8], t: u16) -> Option<Vec<u8>> {
    let mut i = 0;
    while i + 4 <= payload.len() {
        let ty = u16::from_be_bytes([payload[i], payload[i + 1]]);
        let len = u16::from_be_bytes([payload[i + 2], payload[i + 3]]) as usize;
        let v = payload.get(i + 4..i + 4 + len)?;
        if ty == t {
            return Some(v.to_vec());
        }
        i += 4 + len;
    }
    None
}

/// A PPP control packet with its protocol field.
pub fn ctl(proto: u16, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    let mut p = proto.to_be_bytes().to_vec();
    p.extend_from_slice(&[code, id]);
    p.extend_from_slice(&((data.len() + 4) as u16).to_be_bytes());
    p.extend_from_slice(data);
    p
}

/// A PPP control packet read from a session payload: (protocol, code,
/// id, data).
pub fn parse_ctl(p: &[u8]) -> Option<(u16, u8, u8, Vec<u8>)> {
    let proto = u16::from_be_bytes([*p.first()?, *p.get(1)?]);
    let len = u16::from_be_bytes([*p.get(4)?, *p.get(5)?]) as usize;
    Some((proto, p[2], p[3], p.get(6..2 + len)?.to_vec()))
}

/// Configure options (type, value).
pub fn opts(list: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, v) in list {
        out.push(*t);
        out.push((v.len() + 2) as u8);
        out.extend_from_slice(v);
    }
    out
}

/// Configure options read back.
pub fn parse_opts(mut d: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while d.len() >= 2 && d[1] >= 2 && d[1] as usize <= d.len() {
        out.push((d[0], d[2..d[1] as usize].to_vec()));
        d = &d[d[1] as usize..];
    }
    out
}

/// MD5, by the system's `md5sum` (an implementation collecte does not
/// share).
pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum (coreutils) runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to md5sum");
    let out = child.wait_with_output().expect("md5sum output");
    let hex = String::from_utf8_lossy(&out.stdout);
    let mut d = [0u8; 16];
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("md5sum's hex");
    }
    d
}

/// The modified EUI-64 of `mac`.
pub fn eui64(mac: [u8; 6]) -> [u8; 8] {
    [
        mac[0] ^ 2,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]
}
