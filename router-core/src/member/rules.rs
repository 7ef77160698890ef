//! The rules one member's fields follow (id, VLANs, MAC, prefixes), and
//! [`MemberError`], what breaking one of them says.
//!
//! `[[uplink]]` tables follow the same VLAN and MAC rules: their errors
//! name an [`Owner`], a member or an uplink.
use std::fmt;

use ipnet::IpNet;

use super::mac::MacAddr;

/// Lowest usable VLAN id.
pub const VLAN_MIN: u16 = 1;
/// Highest usable VLAN id (4095 is reserved).
pub const VLAN_MAX: u16 = 4094;
/// Longest member id.
pub const MAX_ID_LEN: usize = 64;
/// Most prefixes one member may have.
pub const MAX_PREFIXES: usize = 1024;

/// What a field belongs to: a member (by id) or an uplink (by interface).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `[[member]]` with this id.
    Member(String),
    /// `[[uplink]]` with this interface.
    Uplink(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Member(id) => write!(f, "member {id:?}"),
            Owner::Uplink(interface) => write!(f, "[[uplink]] {interface:?}"),
        }
    }
}

/// Why a member is refused on its own (or, for [`MemberError::Overlap`] and
/// [`MemberError::DuplicateId`], beside another member). Every message
/// names the member (by id) and the field, and says what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// A prefix with host bits set or in a reserved range.
    #[error("member {member:?}, prefixes: {prefix} {why}")]
    BadPrefix {
        member: String,
        prefix: String,
        why: String,
    },
    /// Two prefixes overlap, of two members or of the same one.
    #[error(
        "member {member:?}, prefixes: {prefix} overlaps {other_prefix} {}",
        overlap_tail(member, other_member)
    )]
    Overlap {
        member: String,
        prefix: IpNet,
        other_member: String,
        other_prefix: IpNet,
    },
    /// Two members with the same id.
    #[error("member {member:?}, id: declared more than once; member ids must be unique")]
    DuplicateId { member: String },
    /// A VLAN id outside 1..=4094.
    #[error(
        "{member_or_section}, {field}: {value} is not a usable VLAN id; allowed are {min}..={max}",
        min = VLAN_MIN,
        max = VLAN_MAX
    )]
    BadVlan {
        member_or_section: Owner,
        field: &'static str,
        value: u16,
    },
    /// `s_vlan` without `c_vlan`.
    #[error(
        "member {member:?}, s_vlan: an outer tag needs an inner tag; set c_vlan too \
         (or use c_vlan alone for a single 802.1Q tag)"
    )]
    SVlanWithoutCVlan { member: String },
    /// A member id that is empty, too long or has a forbidden character.
    #[error(
        "member id {id:?} {why}; ids are 1-{max} characters of A-Z a-z 0-9 _ . - @",
        max = MAX_ID_LEN
    )]
    BadId { id: String, why: String },
    /// A multicast or all-zero MAC.
    #[error("{member_or_section}, {field}: {value} is {why}; a unicast MAC address is required")]
    BadMac {
        member_or_section: Owner,
        field: &'static str,
        value: MacAddr,
        why: &'static str,
    },
    /// A member without prefixes.
    #[error("member {member:?}, prefixes: a member needs at least one prefix")]
    NoPrefixes { member: String },
    /// A member with more than [`MAX_PREFIXES`] prefixes.
    #[error(
        "member {member:?}, prefixes: {count} prefixes are listed; a member has at most \
         {max}; aggregate them into shorter prefixes",
        max = MAX_PREFIXES
    )]
    TooManyPrefixes { member: String, count: usize },
}

fn overlap_tail(member: &str, other: &str) -> String {
    if member == other {
        "of the same member; a member's prefixes must be disjoint".to_owned()
    } else {
        format!("of member {other:?}; prefixes of different members must not overlap")
    }
}

/// Checks a member id alone: 1-[`MAX_ID_LEN`] characters of
/// `[A-Za-z0-9_.@-]` (`@` for the User-Name of a PPPoE session's member,
/// such as `alice@isp.example`).
pub fn validate_id(id: &str) -> Result<(), MemberError> {
    let why = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_ID_LEN {
        format!("is {} characters long", id.len())
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')))
    {
        format!("contains {c:?}")
    } else {
        return Ok(());
    };
    Err(MemberError::BadId {
        id: id.to_owned(),
        why,
    })
}

/// Checks a VLAN id: in `VLAN_MIN..=VLAN_MAX`.
pub fn check_vlan(
    owner: impl FnOnce() -> Owner,
    field: &'static str,
    value: u16,
) -> Result<(), MemberError> {
    if (VLAN_MIN..=VLAN_MAX).contains(&value) {
        Ok(())
    } else {
        Err(MemberError::BadVlan {
            member_or_section: owner(),
            field,
            value,
        })
    }
}

/// Checks a MAC: unicast, not all zeros.
pub fn check_mac(
    owner: impl FnOnce() -> Owner,
    field: &'static str,
    mac: MacAddr,
) -> Result<(), MemberError> {
    let why = if mac.is_zero() {
        "all zeros"
    } else if mac.is_multicast() {
        "a multicast (group) address"
    } else {
        return Ok(());
    };
    Err(MemberError::BadMac {
        member_or_section: owner(),
        field,
        value: mac,
        why,
    })
}

/// Checks member `id`'s prefixes: at least one, at most [`MAX_PREFIXES`],
/// no host bits, no reserved range, no overlap among them.
pub fn check_prefixes(id: &str, prefixes: &[IpNet]) -> Result<(), MemberError> {
    if prefixes.is_empty() {
        return Err(MemberError::NoPrefixes {
            member: id.to_owned(),
        });
    }
    if prefixes.len() > MAX_PREFIXES {
        return Err(MemberError::TooManyPrefixes {
            member: id.to_owned(),
            count: prefixes.len(),
        });
    }
    for net in prefixes {
        check_prefix(id, net)?;
    }
    match prefixes {
        [_] => Ok(()),
        // The usual pair: one of each family cannot overlap.
        [a, b] if a.addr().is_ipv4() != b.addr().is_ipv4() => Ok(()),
        _ => check_own_overlap(id, prefixes),
    }
}

/// Overlap among a member's own prefixes: sort, compare neighbours.
fn check_own_overlap(id: &str, prefixes: &[IpNet]) -> Result<(), MemberError> {
    let mut own: Vec<(PrefixKey, u128, usize)> = prefixes
        .iter()
        .enumerate()
        .map(|(i, net)| {
            let (key, end) = PrefixKey::of(net);
            (key, end, i)
        })
        .collect();
    own.sort_unstable();
    for pair in own.windows(2) {
        let (a, a_end, ai) = pair[0];
        let (b, _, bi) = pair[1];
        if a.family == b.family && b.start <= a_end {
            // Name the one listed later as the culprit.
            let (later, earlier) = if ai < bi { (bi, ai) } else { (ai, bi) };
            return Err(MemberError::Overlap {
                member: id.to_owned(),
                prefix: prefixes[later],
                other_member: id.to_owned(),
                other_prefix: prefixes[earlier],
            });
        }
    }
    Ok(())
}

fn check_prefix(id: &str, net: &IpNet) -> Result<(), MemberError> {
    if net.addr() != net.network() {
        return Err(MemberError::BadPrefix {
            member: id.to_owned(),
            prefix: net.to_string(),
            why: format!("has host bits set; did you mean {}?", net.trunc()),
        });
    }
    let (key, end) = PrefixKey::of(net);
    for r in &RESERVED {
        if r.family == key.family && key.start <= r.last() && r.start <= end {
            return Err(MemberError::BadPrefix {
                member: id.to_owned(),
                prefix: net.to_string(),
                why: format!(
                    "overlaps {} ({}), which is never routed to a member; \
                     use unicast addresses",
                    r.text, r.label
                ),
            });
        }
    }
    Ok(())
}

/// Parses a member prefix, `address/length`, with the error message every
/// reader of prefixes gives.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>().map_err(|_| {
        format!(
            "invalid prefix {s:?}: expected address/length, \
             e.g. 198.51.100.7/32 or 2001:db8:100::/48"
        )
    })
}

/// A range no member prefix may touch: the datapath hands these to the
/// kernel, or they are not unicast.
struct Reserved {
    family: u8,
    start: u128,
    len: u8,
    text: &'static str,
    label: &'static str,
}

impl Reserved {
    fn last(&self) -> u128 {
        let bits = if self.family == 4 { 32 } else { 128 };
        self.start
            | u128::MAX
                .checked_shr(128 - bits + u32::from(self.len))
                .unwrap_or(0)
    }
}

const RESERVED: [Reserved; 8] = {
    const fn v4(start: u32, len: u8, text: &'static str, label: &'static str) -> Reserved {
        Reserved {
            family: 4,
            start: start as u128,
            len,
            text,
            label,
        }
    }
    const fn v6(start: u128, len: u8, text: &'static str, label: &'static str) -> Reserved {
        Reserved {
            family: 6,
            start,
            len,
            text,
            label,
        }
    }
    [
        v4(0x0000_0000, 8, "0.0.0.0/8", "\"this network\""),
        v4(0x7f00_0000, 8, "127.0.0.0/8", "loopback"),
        v4(0xa9fe_0000, 16, "169.254.0.0/16", "link-local"),
        v4(0xe000_0000, 4, "224.0.0.0/4", "multicast"),
        v4(0xf000_0000, 4, "240.0.0.0/4", "reserved and broadcast"),
        v6(
            0,
            8,
            "::/8",
            "reserved: unspecified, loopback and IPv4-mapped",
        ),
        v6(0xfe80 << 112, 10, "fe80::/10", "link-local"),
        v6(0xff00 << 112, 8, "ff00::/8", "multicast"),
    ]
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PrefixKey {
    family: u8,
    start: u128,
    len: u8,
}

impl PrefixKey {
    /// The key of `net` (assumed without host bits) and its last address.
    fn of(net: &IpNet) -> (PrefixKey, u128) {
        let (family, start, end) = match net {
            IpNet::V4(n) => (
                4,
                u128::from(u32::from(n.network())),
                u128::from(u32::from(n.broadcast())),
            ),
            IpNet::V6(n) => (6, u128::from(n.network()), u128::from(n.broadcast())),
        };
        let key = PrefixKey {
            family,
            start,
            len: net.prefix_len(),
        };
        (key, end)
    }
}
