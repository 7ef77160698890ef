use std::collections::BTreeSet;

use ipnet::IpNet;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    normalize(list.iter().map(|s| net(s)).collect())
}

/// Applies `step` as a kernel that accepts everything.
fn accept(e: &mut Exporter, step: Step) -> Ops {
    let Step::Apply(ops) = step else {
        panic!("expected an apply, got {step:?}")
    };
    let applied = e.applied(&ops, &[]);
    assert_eq!(
        (applied.added, applied.removed),
        (ops.add.len(), ops.remove.len())
    );
    ops
}

#[test]
fn diff_adds_the_missing_and_removes_the_stale() {
    let installed: BTreeSet<IpNet> = nets(&["198.51.100.7/32", "198.51.100.8/29", "2001:db8::/48"])
        .into_iter()
        .collect();
    let target = nets(&[
        "198.51.100.8/29",
        "2001:db8::/48",
        "2001:db8:1::/48",
        "10.0.0.0/8",
    ]);
    let ops = diff(&installed, &target);
    assert_eq!(ops.add, nets(&["10.0.0.0/8", "2001:db8:1::/48"]));
    assert_eq!(ops.remove, nets(&["198.51.100.7/32"]));
    assert_eq!(ops.len(), 3);
    assert!(diff(&installed, &normalize(installed.iter().copied().collect())).is_empty());
    assert_eq!(diff(&BTreeSet::new(), &target).add, target);
    assert_eq!(diff(&installed, &[]).remove.len(), 3);
}

/// A /32 and a /31 of one address, and the same address in both families'
/// orders, are distinct routes.
#[test]
fn diff_tells_prefix_lengths_and_families_apart() {
    let installed: BTreeSet<IpNet> = nets(&["192.0.2.0/32", "::/128"]).into_iter().collect();
    let ops = diff(&installed, &nets(&["192.0.2.0/31", "::/127"]));
    assert_eq!(ops.add, nets(&["192.0.2.0/31", "::/127"]));
    assert_eq!(ops.remove, nets(&["192.0.2.0/32", "::/128"]));
}

#[test]
fn diff_matches_set_differences_on_random_sets() {
    let mut rng = StdRng::seed_from_u64(14);
    let pick = |rng: &mut StdRng| -> IpNet {
        if rng.gen_bool(0.5) {
            let len = rng.gen_range(24..=32);
            ipnet::Ipv4Net::new(rng.gen_range(0u32..64).into(), len)
                .unwrap()
                .trunc()
                .into()
        } else {
            let len = rng.gen_range(120..=128);
            ipnet::Ipv6Net::new(rng.gen_range(0u128..64).into(), len)
                .unwrap()
                .trunc()
                .into()
        }
    };
    for _ in 0..500 {
        let a: BTreeSet<IpNet> = (0..rng.gen_range(0..40)).map(|_| pick(&mut rng)).collect();
        let b: BTreeSet<IpNet> = (0..rng.gen_range(0..40)).map(|_| pick(&mut rng)).collect();
        let target: Vec<IpNet> = b.iter().copied().collect();
        let ops = diff(&a, &target);
        assert_eq!(ops.add, b.difference(&a).copied().collect::<Vec<_>>());
        assert_eq!(ops.remove, a.difference(&b).copied().collect::<Vec<_>>());
    }
}

#[test]
fn delta_between_two_prefix_lists() {
    let d = Delta::between(
        &nets(&["198.51.100.7/32", "2001:db8:1::/48"]),
        &nets(&["198.51.100.7/32", "2001:db8:2::/48"]),
    );
    assert_eq!(d.remove, nets(&["2001:db8:1::/48"]));
    assert_eq!(d.add, nets(&["2001:db8:2::/48"]));
    assert!(Delta::between(&nets(&["10.0.0.0/8"]), &nets(&["10.0.0.0/8"])).is_empty());
}

/// The reconciliation at start: stale routes of ours go, missing ones come,
/// and what is right stays untouched.
#[test]
fn start_reconciles_the_dumped_table_with_the_members() {
    let mut e = Exporter::new(false);
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(&["198.51.100.99/32", "198.51.100.7/32"]));
    assert_eq!(e.installed(), 2);
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(vec![net("2001:db8:1::/48"), net("198.51.100.7/32")]);
    let Step::Apply(ops) = e.next_step() else {
        panic!("expected an apply")
    };
    assert_eq!(ops.add, nets(&["2001:db8:1::/48"]));
    assert_eq!(ops.remove, nets(&["198.51.100.99/32"]));
    let a = e.applied(&ops, &[]);
    assert_eq!((a.added, a.removed, e.installed()), (1, 1, 2));
    assert_eq!(e.next_step(), Step::Idle);
}

/// A restart over a table that is already right changes nothing.
#[test]
fn a_table_already_right_needs_no_change() {
    let mut e = Exporter::new(false);
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(&["198.51.100.7/32", "2001:db8:1::/48"]));
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(&["2001:db8:1::/48", "198.51.100.7/32"]));
    assert_eq!(e.next_step(), Step::Idle);
}

fn running(installed: &[&str]) -> Exporter {
    let mut e = Exporter::new(false);
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(installed));
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(installed));
    assert_eq!(e.next_step(), Step::Idle);
    e
}

#[test]
fn single_writes_are_coalesced_last_change_winning() {
    let mut e = running(&["198.51.100.7/32"]);
    // Created, deleted and created again; one removed; one that came and went.
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32", "10.0.0.2/32"]),
    });
    e.members_changed(Delta {
        remove: nets(&["10.0.0.1/32", "198.51.100.7/32"]),
        add: vec![],
    });
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32"]),
    });
    e.members_changed(Delta {
        remove: nets(&["10.0.0.2/32"]),
        add: vec![],
    });
    let step = e.next_step();
    let ops = accept(&mut e, step);
    assert_eq!(ops.add, nets(&["10.0.0.1/32"]));
    assert_eq!(ops.remove, nets(&["198.51.100.7/32"]));
    assert_eq!(e.installed(), 1);
    assert_eq!(e.next_step(), Step::Idle);
}

#[test]
fn a_full_sync_takes_the_whole_set_and_supersedes_queued_changes() {
    let mut e = running(&["198.51.100.7/32", "198.51.100.8/32"]);
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32"]),
    });
    e.resync();
    // Queued after the request: the snapshot to come holds it.
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.2/32"]),
    });
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(&["10.0.0.2/32", "198.51.100.7/32"]));
    // A change after the snapshot goes on top of it.
    e.members_changed(Delta {
        remove: nets(&["198.51.100.7/32"]),
        add: nets(&["10.0.0.3/32"]),
    });
    let step = e.next_step();
    let ops = accept(&mut e, step);
    assert_eq!(ops.add, nets(&["10.0.0.2/32", "10.0.0.3/32"]));
    assert_eq!(ops.remove, nets(&["198.51.100.7/32", "198.51.100.8/32"]));
    assert_eq!(e.next_step(), Step::Idle);
}

#[test]
fn drain_withdraws_everything_and_undrain_takes_the_set_again() {
    let mut e = running(&["198.51.100.7/32", "2001:db8:1::/48"]);
    assert!(e.set_drained(true));
    assert!(!e.set_drained(true), "no change");
    assert_eq!(e.withdrawal(), Some(Withdrawal::Drained));
    // Writes while drained change nothing in the kernel.
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32"]),
    });
    let step = e.next_step();
    let ops = accept(&mut e, step);
    assert_eq!(ops.remove, nets(&["198.51.100.7/32", "2001:db8:1::/48"]));
    assert!(ops.add.is_empty());
    assert_eq!((e.installed(), e.next_step()), (0, Step::Idle));
    assert!(e.set_drained(false));
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(&["10.0.0.1/32", "198.51.100.7/32", "2001:db8:1::/48"]));
    let step = e.next_step();
    assert_eq!(accept(&mut e, step).add.len(), 3);
    assert_eq!(e.installed(), 3);
}

#[test]
fn a_detached_datapath_withdraws_until_it_is_back() {
    let mut e = running(&["198.51.100.7/32"]);
    assert!(e.set_detached(vec!["acc1".into(), "acc0".into(), "acc1".into()]));
    assert_eq!(
        e.withdrawal(),
        Some(Withdrawal::Detached(vec!["acc0".into(), "acc1".into()]))
    );
    let step = e.next_step();
    assert_eq!(accept(&mut e, step).remove.len(), 1);
    // Drained as well: still withdrawn when the datapath returns.
    e.set_drained(true);
    assert!(!e.set_detached(vec![]), "still withdrawn, drained");
    assert_eq!(e.next_step(), Step::Idle);
    assert!(e.set_drained(false));
    assert_eq!(e.next_step(), Step::Snapshot);
}

#[test]
fn drained_at_start_removes_what_a_previous_run_left() {
    let mut e = Exporter::new(true);
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(&["198.51.100.7/32"]));
    let step = e.next_step();
    assert_eq!(accept(&mut e, step).remove, nets(&["198.51.100.7/32"]));
    assert_eq!(e.next_step(), Step::Idle);
}

#[test]
fn another_route_on_a_prefix_is_a_conflict_reported_once() {
    let mut e = running(&[]);
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32", "10.0.0.2/32"]),
    });
    let Step::Apply(ops) = e.next_step() else {
        panic!()
    };
    let refused = [(net("10.0.0.1/32"), true, Failure::Exists)];
    let a = e.applied(&ops, &refused);
    assert_eq!((a.added, a.conflicts.clone()), (1, nets(&["10.0.0.1/32"])));
    // Ours after all, or another's? A dump tells.
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(&["10.0.0.2/32"]));
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(&["10.0.0.1/32", "10.0.0.2/32"]));
    let Step::Apply(ops) = e.next_step() else {
        panic!()
    };
    assert_eq!(ops.add, nets(&["10.0.0.1/32"]));
    // Another's: known now, not reported again, no dump again.
    let a = e.applied(&ops, &refused);
    assert!(a.conflicts.is_empty() && a.errors.is_empty(), "{a:?}");
    assert_eq!((e.next_step(), e.installed()), (Step::Idle, 1));
    // Once it leaves the member set, a later add is new again.
    e.members_changed(Delta {
        remove: nets(&["10.0.0.1/32"]),
        add: vec![],
    });
    assert_eq!(e.next_step(), Step::Idle, "not ours to remove");
}

#[test]
fn a_removal_of_a_route_already_gone_counts_as_done() {
    let mut e = running(&["10.0.0.1/32"]);
    e.members_changed(Delta {
        remove: nets(&["10.0.0.1/32"]),
        add: vec![],
    });
    let Step::Apply(ops) = e.next_step() else {
        panic!()
    };
    let a = e.applied(&ops, &[(net("10.0.0.1/32"), false, Failure::Missing)]);
    assert_eq!((a.removed, e.installed()), (1, 0));
    assert_eq!(e.next_step(), Step::Idle);
}

#[test]
fn other_refusals_wait_for_a_retry_then_resync() {
    let mut e = running(&[]);
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.1/32", "10.0.0.2/32"]),
    });
    let Step::Apply(ops) = e.next_step() else {
        panic!()
    };
    let a = e.applied(&ops, &[(net("10.0.0.2/32"), true, Failure::Other(12))]);
    assert_eq!(a.errors, vec![(net("10.0.0.2/32"), true, 12)]);
    assert_eq!(a.added, 1);
    assert!(e.failed());
    assert_eq!(e.next_step(), Step::Idle, "waits for the retry");
    e.retry();
    assert_eq!(e.next_step(), Step::Snapshot);
    e.snapshot(nets(&["10.0.0.1/32", "10.0.0.2/32"]));
    let step = e.next_step();
    assert_eq!(accept(&mut e, step).add, nets(&["10.0.0.2/32"]));
}

#[test]
fn a_lost_exchange_dumps_again_after_the_retry() {
    let mut e = running(&["10.0.0.1/32"]);
    e.lost();
    e.members_changed(Delta {
        remove: vec![],
        add: nets(&["10.0.0.2/32"]),
    });
    assert_eq!(e.next_step(), Step::Idle);
    e.retry();
    assert_eq!(e.next_step(), Step::Dump);
    e.dumped(nets(&["10.0.0.1/32"]));
    assert_eq!(e.next_step(), Step::Snapshot);
}
