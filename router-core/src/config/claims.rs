//! [`Claims`]: the prefixes of a member set, sorted to find an overlap
//! between two members in O(n log n).
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::member::MemberError;

/// The prefixes of a member set, each with the number of its member, to
/// find overlaps in O(n log n): the prefixes of each family are sorted by
/// (first address, length), and as CIDR prefixes are either nested or
/// disjoint, any overlap shows between two neighbours.
#[derive(Debug, Default)]
pub struct Claims {
    v4: Vec<(u32, u8, u32)>,
    /// The address as four big-endian words (24 bytes a claim, where a
    /// `u128` would align it to 32).
    v6: Vec<([u32; 4], u8, u32)>,
}

/// Two overlapping prefixes found by [`Claims::first_overlap`]: `member`
/// is the later of the two members (by number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlapFound {
    pub member: u32,
    pub prefix: IpNet,
    pub other: u32,
    pub other_prefix: IpNet,
}

impl OverlapFound {
    /// The member error, with the members' ids.
    pub fn error(&self, id: impl Fn(u32) -> String) -> MemberError {
        MemberError::Overlap {
            member: id(self.member),
            prefix: self.prefix,
            other_member: id(self.other),
            other_prefix: self.other_prefix,
        }
    }
}

impl Claims {
    /// Room for about `members` members of one prefix per family.
    pub fn with_capacity(members: usize) -> Claims {
        Claims {
            v4: Vec::with_capacity(members),
            v6: Vec::with_capacity(members),
        }
    }

    /// Member number `member` claims `net` (without host bits).
    pub fn add(&mut self, member: u32, net: &IpNet) {
        match net {
            IpNet::V4(n) => self.v4.push((n.network().into(), n.prefix_len(), member)),
            IpNet::V6(n) => self
                .v6
                .push((words(n.network().into()), n.prefix_len(), member)),
        }
    }

    /// Sorts the claims and returns the first two that overlap.
    pub fn first_overlap(&mut self) -> Option<OverlapFound> {
        fn first<T: Ord + Copy>(
            claims: &mut [(T, u8, u32)],
            last: impl Fn(T, u8) -> T,
            net: impl Fn(T, u8) -> IpNet,
        ) -> Option<OverlapFound> {
            claims.sort_unstable();
            claims
                .windows(2)
                .find(|w| w[1].0 <= last(w[0].0, w[0].1))
                .map(|w| {
                    let (a, b) = (w[0], w[1]);
                    let (later, earlier) = if a.2 > b.2 { (a, b) } else { (b, a) };
                    OverlapFound {
                        member: later.2,
                        prefix: net(later.0, later.1),
                        other: earlier.2,
                        other_prefix: net(earlier.0, earlier.1),
                    }
                })
        }
        first(
            &mut self.v4,
            |start, len| start | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0),
            |start, len| IpNet::V4(Ipv4Net::new(start.into(), len).expect("valid length")),
        )
        .or_else(|| {
            first(
                &mut self.v6,
                |start, len| {
                    words(unwords(start) | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
                },
                |start, len| {
                    IpNet::V6(Ipv6Net::new(unwords(start).into(), len).expect("valid length"))
                },
            )
        })
    }
}

/// A 128-bit address as four big-endian words: they sort as the address.
fn words(a: u128) -> [u32; 4] {
    [
        (a >> 96) as u32,
        (a >> 64) as u32,
        (a >> 32) as u32,
        a as u32,
    ]
}

fn unwords(w: [u32; 4]) -> u128 {
    (u128::from(w[0]) << 96)
        | (u128::from(w[1]) << 64)
        | (u128::from(w[2]) << 32)
        | u128::from(w[3])
}
