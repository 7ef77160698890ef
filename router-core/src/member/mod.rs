//! A member of the association: its id, its attachment (interface, tags,
//! MAC) and its prefixes, with the rules its fields follow.
//!
//! This module owns the member model and its own rules, and imports nothing
//! from the rest of the crate. The rules about a set of members (known
//! interfaces, room, prefixes of different members) belong to the
//! configuration's validation and to the tables.
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod mac;
mod rules;

pub use mac::{MacAddr, MacParseError};
pub use rules::{
    MAX_ID_LEN, MAX_PREFIXES, MemberError, Owner, VLAN_MAX, VLAN_MIN, check_mac, check_prefixes,
    check_vlan, parse_prefix, validate_id,
};

/// Where a member comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `[[member]]` of the configuration file.
    Config,
    /// Added through the provisioning API (kept in the state file).
    Api,
    /// A PPPoE session's member, put by the session manager when RADIUS
    /// accepts the session and removed when it ends. Its id is the
    /// session's User-Name, its MAC the client's. Neither the API's sync
    /// nor the state file touch it: sessions are persisted on their own.
    Session,
}

/// `[[member]]`: one member, its attachment and its addresses.
///
/// Serializes back to the same shape as the configuration table (absent
/// options are omitted, prefixes are strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Unique id: 1-64 characters of `[A-Za-z0-9_.@-]`.
    pub id: String,
    /// One of the `[[access]]` interfaces.
    pub interface: String,
    /// Outer tag (802.1ad S-tag); requires `c_vlan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_vlan: Option<u16>,
    /// Inner tag (C-tag); alone, a single 802.1Q tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_vlan: Option<u16>,
    /// The member's CPE MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The member's addresses, IPv4 and IPv6, without host bits.
    #[serde(default, with = "prefix_list")]
    pub prefixes: Vec<IpNet>,
}

impl Member {
    /// The member's fields, borrowed: the form every check and table takes.
    pub fn as_in(&self) -> MemberIn<'_> {
        MemberIn {
            id: &self.id,
            interface: &self.interface,
            s_vlan: self.s_vlan,
            c_vlan: self.c_vlan,
            mac: self.mac,
            prefixes: &self.prefixes,
        }
    }

    /// Checks everything about this member that depends neither on the
    /// interfaces nor on other members: [`MemberIn::validate_fields`].
    pub fn validate_fields(&self) -> Result<(), MemberError> {
        self.as_in().validate_fields()
    }
}

/// A member's fields, borrowed from a [`Member`] or from a request body
/// being read (the member store's JSON reader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIn<'a> {
    pub id: &'a str,
    pub interface: &'a str,
    pub s_vlan: Option<u16>,
    pub c_vlan: Option<u16>,
    pub mac: Option<MacAddr>,
    pub prefixes: &'a [IpNet],
}

impl MemberIn<'_> {
    fn owner(&self) -> Owner {
        Owner::Member(self.id.to_owned())
    }

    /// An owned copy.
    pub fn to_member(&self) -> Member {
        Member {
            id: self.id.to_owned(),
            interface: self.interface.to_owned(),
            s_vlan: self.s_vlan,
            c_vlan: self.c_vlan,
            mac: self.mac,
            prefixes: self.prefixes.to_vec(),
        }
    }

    /// Checks everything about this member that depends neither on the
    /// interfaces nor on other members: id, VLANs, MAC, and prefixes (at
    /// least one, at most [`MAX_PREFIXES`], host bits, reserved ranges,
    /// overlap among its own prefixes).
    pub fn validate_fields(&self) -> Result<(), MemberError> {
        validate_id(self.id)?;
        if let Some(v) = self.s_vlan {
            check_vlan(|| self.owner(), "s_vlan", v)?;
        }
        if let Some(v) = self.c_vlan {
            check_vlan(|| self.owner(), "c_vlan", v)?;
        }
        if self.s_vlan.is_some() && self.c_vlan.is_none() {
            return Err(MemberError::SVlanWithoutCVlan {
                member: self.id.to_owned(),
            });
        }
        if let Some(mac) = self.mac {
            check_mac(|| self.owner(), "mac", mac)?;
        }
        check_prefixes(self.id, self.prefixes)
    }
}

/// Serde for `prefixes`: a list of "address/length" strings. (ipnet's own
/// serde support is a feature this workspace does not enable.)
mod prefix_list {
    use ipnet::IpNet;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::rules::parse_prefix;

    pub fn serialize<S: Serializer>(prefixes: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(prefixes.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        let raw = Vec::<String>::deserialize(deserializer)?;
        raw.iter()
            .map(|s| parse_prefix(s).map_err(D::Error::custom))
            .collect()
    }
}
