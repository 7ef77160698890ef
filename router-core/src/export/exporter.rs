//! [`Exporter`]: what the kernel table holds of ours, what the members
//! want, and what to do next, as a state machine without I/O.
//!
//! The driver (`collecte::routes`) feeds it events — member-set changes
//! ([`Exporter::members_changed`]), a request for a full resync, drain and
//! detachment — then asks [`Exporter::next_step`] for the next [`Step`] until it
//! is [`Step::Idle`], doing each step's I/O and reporting its result:
//!
//! - [`Step::Dump`]: the kernel's contents are unknown (at start, after a
//!   failed exchange): dump the table, then [`Exporter::dumped`];
//! - [`Step::Snapshot`]: take every member prefix (under the router's lock,
//!   so that the changes already queued are in it), then
//!   [`Exporter::snapshot`];
//! - [`Step::Apply`]: send these changes, then [`Exporter::applied`] with
//!   the routes the kernel refused.
//!
//! Single writes reach the kernel as their own small changes; a full sync,
//! a reload, an undrain or a start take the whole set and diff it against
//! what is installed. Changes that arrive while a step runs are coalesced
//! into the next one.
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::plan::{Delta, Failure, Ops, diff, normalize};

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing until the next event.
    Idle,
    /// Dump the table's routes of our protocol.
    Dump,
    /// Take every member prefix.
    Snapshot,
    /// Send these changes.
    Apply(Ops),
}

/// Why every route is withdrawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// The operator drained the router.
    Drained,
    /// The datapath is not attached to these interfaces: this router would
    /// not forward what it announces.
    Detached(Vec<String>),
}

/// What an [`Exporter::applied`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
    /// Adds refused because a route for the prefix is there already, not
    /// ours: reported once per prefix, not retried until a full resync.
    pub conflicts: Vec<IpNet>,
    /// Other refusals: (prefix, was an add, errno). The next full resync
    /// retries them, after [`Exporter::retry`].
    pub errors: Vec<(IpNet, bool, i32)>,
}

/// The state of the exported routes.
#[derive(Clone, Debug)]
pub struct Exporter {
    /// Our routes in the kernel table, when `known`.
    installed: BTreeSet<IpNet>,
    known: bool,
    /// The whole member set must be taken before the next apply.
    want_full: bool,
    /// The whole member set, taken and not applied yet (sorted).
    target: Option<Vec<IpNet>>,
    /// Member-set changes since the last step, in order: (prefix, joined).
    changes: Vec<(IpNet, bool)>,
    drained: bool,
    detached: Vec<String>,
    /// Prefixes whose add found another route there.
    conflicts: BTreeSet<IpNet>,
    /// A step failed: nothing until [`Exporter::retry`].
    failed: bool,
}

impl Exporter {
    /// At start: nothing is known of the kernel table.
    pub fn new(drained: bool) -> Exporter {
        Exporter {
            installed: BTreeSet::new(),
            known: false,
            want_full: true,
            target: None,
            changes: Vec::new(),
            drained,
            detached: Vec::new(),
            conflicts: BTreeSet::new(),
            failed: false,
        }
    }

    /// Our routes in the kernel table, as far as known.
    pub fn installed(&self) -> usize {
        self.installed.len()
    }

    /// Whether the routes are withdrawn, and why.
    pub fn withdrawal(&self) -> Option<Withdrawal> {
        if self.drained {
            Some(Withdrawal::Drained)
        } else if !self.detached.is_empty() {
            Some(Withdrawal::Detached(self.detached.clone()))
        } else {
            None
        }
    }

    /// Drains or undrains; returns whether that changed anything.
    pub fn set_drained(&mut self, drained: bool) -> bool {
        let before = self.withdrawal();
        self.drained = drained;
        self.withdrawal_changed(before)
    }

    /// The interfaces the datapath is found detached from (none: all
    /// attached); returns whether the withdrawal changed.
    pub fn set_detached(&mut self, mut detached: Vec<String>) -> bool {
        detached.sort_unstable();
        detached.dedup();
        let before = self.withdrawal();
        self.detached = detached;
        self.withdrawal_changed(before)
    }

    fn withdrawal_changed(&mut self, before: Option<Withdrawal>) -> bool {
        let now = self.withdrawal();
        if now.is_some() {
            // Withdrawn: changes are moot; the return takes the whole set.
            self.changes.clear();
            self.target = None;
            self.want_full = true;
        }
        now != before
    }

    /// The member set changed (a single write).
    pub fn members_changed(&mut self, delta: Delta) {
        for p in &delta.remove {
            self.conflicts.remove(p);
        }
        if self.withdrawal().is_some() {
            return;
        }
        if let Some(target) = &mut self.target {
            // Taken already: the change comes after it.
            for p in delta.remove {
                if let Ok(i) = target.binary_search(&p) {
                    target.remove(i);
                }
            }
            for p in delta.add {
                if let Err(i) = target.binary_search(&p) {
                    target.insert(i, p);
                }
            }
            return;
        }
        if self.want_full {
            // The snapshot to come holds it.
            return;
        }
        self.changes
            .extend(delta.remove.into_iter().map(|p| (p, false)));
        self.changes
            .extend(delta.add.into_iter().map(|p| (p, true)));
    }

    /// The whole member set must be taken again (a full sync, a reload).
    pub fn resync(&mut self) {
        self.want_full = true;
        self.target = None;
        self.changes.clear();
    }

    /// The table's routes of our protocol, as dumped.
    pub fn dumped(&mut self, routes: Vec<IpNet>) {
        self.installed = routes.into_iter().collect();
        self.known = true;
        // Changes are relative to a state the dump replaced.
        self.resync();
    }

    /// Every member prefix, taken while no change could come in between.
    pub fn snapshot(&mut self, prefixes: Vec<IpNet>) {
        self.target = Some(normalize(prefixes));
        self.want_full = false;
        self.changes.clear();
    }

    /// An exchange with the kernel failed as a whole: what it holds is
    /// unknown. Nothing happens until [`Exporter::retry`].
    pub fn lost(&mut self) {
        self.known = false;
        self.failed = true;
        self.resync();
    }

    /// Whether a failure waits for [`Exporter::retry`].
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Tries again after a failure (the driver waits first).
    pub fn retry(&mut self) {
        self.failed = false;
    }

    /// The next step.
    pub fn next_step(&mut self) -> Step {
        if self.failed {
            return Step::Idle;
        }
        if !self.known {
            return Step::Dump;
        }
        if self.withdrawal().is_some() {
            if self.installed.is_empty() {
                return Step::Idle;
            }
            return Step::Apply(Ops {
                add: Vec::new(),
                remove: self.installed.iter().copied().collect(),
            });
        }
        if let Some(target) = self.target.take() {
            let ops = diff(&self.installed, &target);
            return if ops.is_empty() {
                Step::Idle
            } else {
                Step::Apply(ops)
            };
        }
        if self.want_full {
            return Step::Snapshot;
        }
        if self.changes.is_empty() {
            return Step::Idle;
        }
        // The last change of each prefix wins.
        let last: BTreeMap<IpNet, bool> = self.changes.drain(..).collect();
        let mut ops = Ops::default();
        for (p, joined) in last {
            match (joined, self.installed.contains(&p)) {
                (true, false) => ops.add.push(p),
                (false, true) => ops.remove.push(p),
                _ => {}
            }
        }
        if ops.is_empty() {
            Step::Idle
        } else {
            Step::Apply(ops)
        }
    }

    /// `ops` were sent; the kernel refused `failures` (prefix, was an add,
    /// why), and made every other change.
    pub fn applied(&mut self, ops: &Ops, failures: &[(IpNet, bool, Failure)]) -> Applied {
        let refused = |add: bool| -> BTreeMap<IpNet, Failure> {
            failures
                .iter()
                .filter(|(_, a, _)| *a == add)
                .map(|(p, _, f)| (*p, *f))
                .collect()
        };
        let (refused_adds, refused_removes) = (refused(true), refused(false));
        let mut out = Applied::default();
        for p in &ops.add {
            match refused_adds.get(p) {
                None => {
                    self.installed.insert(*p);
                    self.conflicts.remove(p);
                    out.added += 1;
                }
                Some(Failure::Exists) => {
                    if self.conflicts.insert(*p) {
                        // Ours, unknown to us, or another's: a dump tells.
                        out.conflicts.push(*p);
                        self.known = false;
                        self.resync();
                    }
                }
                Some(Failure::Missing) => out.errors.push((*p, true, ESRCH)),
                Some(Failure::Other(errno)) => out.errors.push((*p, true, *errno)),
            }
        }
        for p in &ops.remove {
            match refused_removes.get(p) {
                None | Some(Failure::Missing) => {
                    self.installed.remove(p);
                    out.removed += 1;
                }
                Some(Failure::Exists) => out.errors.push((*p, false, EEXIST)),
                Some(Failure::Other(errno)) => out.errors.push((*p, false, *errno)),
            }
        }
        if !out.errors.is_empty() {
            self.failed = true;
            self.resync();
        }
        out
    }
}

/// The errnos a [`Failure`] stands for, when reported back as errors.
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
