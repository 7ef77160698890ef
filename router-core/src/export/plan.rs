//! What the exported routes are and how they change, as plain data: the
//! protocol number, a set of changes and the diff that makes it, a change
//! of the member set, a refusal of the kernel.
use std::collections::BTreeSet;

use ipnet::IpNet;

/// The route protocol (`rtm_protocol`) of the member routes: 150.
///
/// Chosen outside every number with a meaning: the kernel's own (0–4,
/// and `redirect`, `kernel`, `boot`, `static`, `ra`), those iproute2 and
/// Linux's `rtnetlink.h` name (8–18, 42 babel, 99 openr, 186–192), FRR's
/// (186–198, zebra 11), BIRD's (12), Calico's (80) and 248. BIRD's `kernel`
/// protocol sees it as `krt_source = 150`; name it for iproute2 with
/// `echo "150 collecte" > /etc/iproute2/rt_protos.d/collecte.conf`.
pub const PROTO: u8 = 150;

/// Changes to make to the kernel table: routes to add and routes to
/// remove, each sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ops {
    pub add: Vec<IpNet>,
    pub remove: Vec<IpNet>,
}

impl Ops {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Routes added and removed.
    pub fn len(&self) -> usize {
        self.add.len() + self.remove.len()
    }
}

/// What turns `installed` into `target`, both sorted and without
/// duplicates: one merge walk, O(n).
pub fn diff<'a>(installed: impl IntoIterator<Item = &'a IpNet>, target: &[IpNet]) -> Ops {
    let mut ops = Ops::default();
    let mut have = installed.into_iter().peekable();
    let mut want = target.iter().peekable();
    loop {
        match (have.peek(), want.peek()) {
            (None, None) => break,
            (Some(h), None) => {
                ops.remove.push(**h);
                have.next();
            }
            (None, Some(w)) => {
                ops.add.push(**w);
                want.next();
            }
            (Some(h), Some(w)) => match (*h).cmp(*w) {
                std::cmp::Ordering::Less => {
                    ops.remove.push(**h);
                    have.next();
                }
                std::cmp::Ordering::Greater => {
                    ops.add.push(**w);
                    want.next();
                }
                std::cmp::Ordering::Equal => {
                    have.next();
                    want.next();
                }
            },
        }
    }
    ops
}

/// Sorts and deduplicates a member set's prefixes (a target for [`diff`]).
pub fn normalize(mut prefixes: Vec<IpNet>) -> Vec<IpNet> {
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// A change of the member set: the prefixes that left it and those that
/// joined it (one write: a member created, replaced or deleted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub remove: Vec<IpNet>,
    pub add: Vec<IpNet>,
}

impl Delta {
    /// A member's prefixes going from `old` to `new` (prefixes in both
    /// stay).
    pub fn between(old: &[IpNet], new: &[IpNet]) -> Delta {
        let old_set: BTreeSet<&IpNet> = old.iter().collect();
        let new_set: BTreeSet<&IpNet> = new.iter().collect();
        Delta {
            remove: old_set.difference(&new_set).map(|p| **p).collect(),
            add: new_set.difference(&old_set).map(|p| **p).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// Why the kernel refused one route change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// An add found a route for the prefix already there (`EEXIST`): of
    /// another protocol, or one of ours the exporter did not know of.
    Exists,
    /// A removal found no such route of ours (`ESRCH`, `ENOENT`): it is
    /// gone already.
    Missing,
    /// Any other error (its errno).
    Other(i32),
}
