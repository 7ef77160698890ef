//! A prefix in the trie's terms ([`Key`]), and the arithmetic of levels,
//! depth codes and entries that every part of the table shares.
use ipnet::IpNet;
use router_common::route;

/// Entries per group, as a `usize`.
pub(super) const GE: usize = route::GROUP_ENTRIES as usize;

/// A prefix in the trie's terms.
#[derive(Clone, Copy, Debug)]
pub(super) struct Key {
    pub(super) v6: bool,
    /// The address, left-aligned (an IPv4 address is in the top 32 bits), with
    /// host bits zero.
    pub(super) addr: u128,
    pub(super) len: u8,
}

impl Key {
    pub(super) fn of(prefix: IpNet) -> Key {
        let prefix = prefix.trunc();
        match prefix {
            IpNet::V4(p) => Key {
                v6: false,
                addr: u128::from(u32::from(p.network())) << 96,
                len: p.prefix_len(),
            },
            IpNet::V6(p) => Key {
                v6: true,
                addr: u128::from(p.network()),
                len: p.prefix_len(),
            },
        }
    }

    /// The prefix again (host bits cleared).
    pub(super) fn net(&self) -> IpNet {
        if self.v6 {
            IpNet::V6(ipnet::Ipv6Net::new(self.addr.into(), self.len).expect("a valid length"))
        } else {
            let a = (self.addr >> 96) as u32;
            IpNet::V4(ipnet::Ipv4Net::new(a.into(), self.len).expect("a valid length"))
        }
    }

    /// The level the prefix's entries live at.
    pub(super) fn level(&self) -> u32 {
        level_of(self.len)
    }

    /// Whether the length ends a level (the prefix is a single entry there).
    pub(super) fn aligned(&self) -> bool {
        self.len >= 16 && self.len.is_multiple_of(8)
    }

    /// Index of the root entry on the prefix's path.
    pub(super) fn root_index(&self) -> usize {
        let root = if self.v6 {
            route::ROOT6_GROUP
        } else {
            route::ROOT4_GROUP
        };
        root as usize * GE + (self.addr >> 112) as usize
    }

    /// The address byte resolved at `level >= 1`.
    pub(super) fn byte(&self, level: u32) -> usize {
        ((self.addr >> (112 - 8 * level)) & 0xff) as usize
    }

    /// How many entries the prefix covers at its level.
    pub(super) fn span(&self) -> usize {
        1 << (end_bits(self.level()) - u32::from(self.len))
    }

    /// Key of the side map for the prefix's first `len` bits.
    pub(super) fn side_key(&self, len: u8) -> (bool, u8, u128) {
        (self.v6, len, mask(self.addr, len))
    }
}

/// The address bits resolved by levels `0..=level`.
pub(super) fn end_bits(level: u32) -> u32 {
    16 + 8 * level
}

/// The level a prefix of length `len` lives at.
pub(super) fn level_of(len: u8) -> u32 {
    (u32::from(len).saturating_sub(16)).div_ceil(8)
}

/// Depth code of a leaf from a length-`len` prefix (0 is EMPTY).
pub(super) fn code(len: u8) -> u8 {
    len + 1
}

/// The first `len` bits of a left-aligned address.
pub(super) fn mask(addr: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l => addr & (u128::MAX << (128 - u32::from(l))),
    }
}

pub(super) fn is_ptr(v: u32) -> bool {
    v & route::PTR != 0
}

pub(super) fn group_of(v: u32) -> usize {
    (v & !route::PTR) as usize
}
