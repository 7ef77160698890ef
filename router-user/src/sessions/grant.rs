//! What an Access-Accept makes of a session: the engine's [`Grant`] and
//! the session's [`Member`].
use ipnet::{IpNet, Ipv4Net};
use router_core::member::{MacAddr, Member};

use crate::pppoe::{Grant, SessionRef};
use crate::radius::Accept;

/// Why an Access-Accept gives no usable member.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Neither Framed-IP-Address, Framed-IPv6-Prefix nor
    /// Delegated-IPv6-Prefix.
    #[error(
        "RADIUS accepted {user:?} without Framed-IP-Address, Framed-IPv6-Prefix or \
         Delegated-IPv6-Prefix: the session would have no address"
    )]
    NoAddress { user: String },
}

/// The engine's grant of `accept`.
pub fn grant_of(accept: &Accept) -> Grant {
    Grant {
        ipv4: accept.framed_ip,
        ipv6_prefix: accept.framed_ipv6_prefix,
        delegated: accept.delegated_ipv6_prefix,
    }
}

/// The member of session `session` of `user` on `interface`, with the
/// prefixes `accept` grants: `Framed-IP-Address` as a /32,
/// `Framed-IPv6-Prefix` and `Delegated-IPv6-Prefix` (host bits cleared).
/// Its fields are not validated here: the caller checks the member like
/// any put.
pub fn member_of(
    user: &str,
    interface: &str,
    session: &SessionRef,
    accept: &Accept,
) -> Result<Member, GrantError> {
    let mut prefixes = Vec::new();
    if let Some(v4) = accept.framed_ip {
        prefixes.push(IpNet::V4(Ipv4Net::from(v4)));
    }
    for p in [accept.framed_ipv6_prefix, accept.delegated_ipv6_prefix]
        .into_iter()
        .flatten()
    {
        prefixes.push(IpNet::V6(p.trunc()));
    }
    if prefixes.is_empty() {
        return Err(GrantError::NoAddress {
            user: user.to_owned(),
        });
    }
    let tag = |v: u16| (v != 0).then_some(v);
    Ok(Member {
        id: user.to_owned(),
        interface: interface.to_owned(),
        s_vlan: tag(session.line.s_vlan),
        c_vlan: tag(session.line.c_vlan),
        mac: Some(MacAddr(session.line.mac)),
        prefixes,
    })
}
