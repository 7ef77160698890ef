//! What the server accepts of a client's options: LCP (MRU, magic
//! number), IPCP (RFC 1332: the IP address, Nak'ed to the grant; DNS and
//! compression rejected) and IPv6CP (RFC 5072: the interface identifier).
use std::net::Ipv4Addr;

use super::{
    auth::CHAP_MD5,
    negotiation::Verdict,
    ppp::{self, OPT_AUTH, OPT_MAGIC, OPT_MRU, Opt},
    types::AuthProtocol,
};

/// IPCP option IP-Address.
pub const IPCP_ADDRESS: u8 = 3;
/// IPv6CP option Interface-Identifier.
pub const IPV6CP_IFID: u8 = 1;
/// The least MRU a client may ask for (RFC 1661 leaves it open; IPv6
/// needs 1280, IPv4 576, PPP itself 64).
pub const MIN_MRU: u16 = 64;

/// Our LCP options: MRU, authentication, magic.
pub fn lcp_options(mru: u16, auth: Option<AuthProtocol>, magic: u32) -> Vec<Opt> {
    let mut v = vec![Opt::new(OPT_MRU, &mru.to_be_bytes())];
    match auth {
        Some(AuthProtocol::Chap) => {
            let p = ppp::CHAP.to_be_bytes();
            v.push(Opt::new(OPT_AUTH, &[p[0], p[1], CHAP_MD5]));
        }
        Some(AuthProtocol::Pap) => v.push(Opt::new(OPT_AUTH, &ppp::PAP.to_be_bytes())),
        None => {}
    }
    if magic != 0 {
        v.push(Opt::new(OPT_MAGIC, &magic.to_be_bytes()));
    }
    v
}

/// The authentication protocol an LCP option 3 value names.
pub fn auth_of(value: &[u8]) -> Option<AuthProtocol> {
    match value {
        [0xc0, 0x23] => Some(AuthProtocol::Pap),
        [0xc2, 0x23, CHAP_MD5] => Some(AuthProtocol::Chap),
        _ => None,
    }
}

/// The verdict on a client's LCP option. `our_magic`: a client whose
/// magic equals ours is looped back, and is Nak'ed to `fresh_magic`.
pub fn lcp_verdict(o: &Opt, max_mru: u16, our_magic: u32, fresh_magic: u32) -> Verdict {
    match o.kind {
        OPT_MRU => match o.u16() {
            Some(m) if o.value.len() == 2 && m >= MIN_MRU => Verdict::Ack,
            Some(_) if o.value.len() == 2 => {
                Verdict::Nak(Opt::new(OPT_MRU, &max_mru.to_be_bytes()))
            }
            _ => Verdict::Reject,
        },
        OPT_MAGIC => match o.u32() {
            Some(0) => Verdict::Nak(Opt::new(OPT_MAGIC, &fresh_magic.to_be_bytes())),
            Some(m) if m == our_magic => {
                Verdict::Nak(Opt::new(OPT_MAGIC, &fresh_magic.to_be_bytes()))
            }
            Some(_) => Verdict::Ack,
            None => Verdict::Reject,
        },
        // A client asking us to authenticate ourselves, and everything else
        // (ACCM, PFC, ACFC, ... mean nothing over PPPoE).
        _ => Verdict::Reject,
    }
}

/// The verdict on a client's IPCP option, the grant giving `granted`.
pub fn ipcp_verdict(o: &Opt, granted: Ipv4Addr) -> Verdict {
    match o.kind {
        IPCP_ADDRESS if o.value.len() == 4 => {
            if o.value == granted.octets() {
                Verdict::Ack
            } else {
                Verdict::Nak(Opt::new(IPCP_ADDRESS, &granted.octets()))
            }
        }
        _ => Verdict::Reject,
    }
}

/// The verdict on a client's IPv6CP option: its interface identifier is
/// accepted when non-zero and not ours, else Nak'ed to `suggested`.
pub fn ipv6cp_verdict(o: &Opt, ours: u64, suggested: u64) -> Verdict {
    match o.kind {
        IPV6CP_IFID if o.value.len() == 8 => {
            let id = u64::from_be_bytes(o.value[..].try_into().expect("8 bytes"));
            if id != 0 && id != ours {
                Verdict::Ack
            } else {
                Verdict::Nak(Opt::new(IPV6CP_IFID, &suggested.to_be_bytes()))
            }
        }
        _ => Verdict::Reject,
    }
}

/// The modified EUI-64 interface identifier of `mac` (RFC 4291 A).
pub fn eui64(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcp_options_and_verdicts() {
        let o = lcp_options(1492, Some(AuthProtocol::Chap), 0x01020304);
        assert_eq!(
            ppp::encode_options(&o),
            [1, 4, 0x05, 0xd4, 3, 5, 0xc2, 0x23, 5, 5, 6, 1, 2, 3, 4]
        );
        assert_eq!(
            ppp::encode_options(&lcp_options(1400, Some(AuthProtocol::Pap), 0)),
            [1, 4, 0x05, 0x78, 3, 4, 0xc0, 0x23]
        );
        assert_eq!(auth_of(&[0xc0, 0x23]), Some(AuthProtocol::Pap));
        assert_eq!(auth_of(&[0xc2, 0x23, 0x80]), None, "MS-CHAP is not offered");
        let v = |o: Opt| lcp_verdict(&o, 1492, 7, 9);
        assert_eq!(v(Opt::new(OPT_MRU, &1500u16.to_be_bytes())), Verdict::Ack);
        assert_eq!(
            v(Opt::new(OPT_MRU, &[0, 10])),
            Verdict::Nak(Opt::new(OPT_MRU, &1492u16.to_be_bytes()))
        );
        assert_eq!(v(Opt::new(OPT_MAGIC, &5u32.to_be_bytes())), Verdict::Ack);
        assert_eq!(
            v(Opt::new(OPT_MAGIC, &7u32.to_be_bytes())),
            Verdict::Nak(Opt::new(OPT_MAGIC, &9u32.to_be_bytes())),
            "looped back"
        );
        assert_eq!(v(Opt::new(2, &[0; 4])), Verdict::Reject, "ACCM");
        assert_eq!(v(Opt::new(7, &[])), Verdict::Reject, "PFC");
    }

    #[test]
    fn ipcp_and_ipv6cp_verdicts() {
        let g = Ipv4Addr::new(100, 64, 1, 2);
        assert_eq!(
            ipcp_verdict(&Opt::new(3, &[0; 4]), g),
            Verdict::Nak(Opt::new(3, &g.octets()))
        );
        assert_eq!(ipcp_verdict(&Opt::new(3, &g.octets()), g), Verdict::Ack);
        assert_eq!(ipcp_verdict(&Opt::new(129, &[0; 4]), g), Verdict::Reject);
        assert_eq!(
            ipv6cp_verdict(&Opt::new(1, &5u64.to_be_bytes()), 4, 6),
            Verdict::Ack
        );
        assert_eq!(
            ipv6cp_verdict(&Opt::new(1, &4u64.to_be_bytes()), 4, 6),
            Verdict::Nak(Opt::new(1, &6u64.to_be_bytes()))
        );
        assert_eq!(
            ipv6cp_verdict(&Opt::new(1, &[0; 8]), 4, 6),
            Verdict::Nak(Opt::new(1, &6u64.to_be_bytes()))
        );
        assert_eq!(eui64([0x02, 0, 0, 0, 0, 1]), 0x0000_00ff_fe00_0001);
    }
}
