use super::key::{end_bits, group_of, is_ptr};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The naive longest-prefix match the trie must agree with.
#[derive(Default)]
struct Reference {
    rules: BTreeMap<IpNet, u32>,
}

impl Reference {
    fn lookup(&self, addr: IpAddr) -> u32 {
        self.rules
            .iter()
            .filter(|(p, _)| p.contains(&addr))
            .max_by_key(|(p, _)| p.prefix_len())
            .map_or(route::EMPTY, |(_, v)| *v)
    }
}

/// Addresses around the edges of `p`: first, last, and their neighbours.
fn boundaries(p: IpNet) -> Vec<IpAddr> {
    match p {
        IpNet::V4(p) => {
            let (a, b) = (u32::from(p.network()), u32::from(p.broadcast()));
            [a, b, a.wrapping_sub(1), b.wrapping_add(1)]
                .into_iter()
                .map(|x| IpAddr::V4(Ipv4Addr::from(x)))
                .collect()
        }
        IpNet::V6(p) => {
            let (a, b) = (u128::from(p.network()), u128::from(p.broadcast()));
            [a, b, a.wrapping_sub(1), b.wrapping_add(1)]
                .into_iter()
                .map(|x| IpAddr::V6(Ipv6Addr::from(x)))
                .collect()
        }
    }
}

/// Checks the structure: every allocated group is reachable once, no
/// group could be collapsed, nothing points below the deepest level, the
/// freed groups are clear, and the counters add up.
fn check_structure(t: &RouteTable) {
    let mut seen = BTreeSet::new();
    let mut stack = Vec::new();
    for (root, max) in [
        (route::ROOT4_GROUP, route::MAX_V4_LEVELS),
        (route::ROOT6_GROUP, route::MAX_V6_LEVELS),
    ] {
        for i in root as usize * GE..(root as usize + 256) * GE {
            stack.push((i, 0u32, max));
        }
    }
    while let Some((i, level, max)) = stack.pop() {
        let e = t.entries[i];
        if !is_ptr(e) {
            continue;
        }
        assert!(level < max, "pointer at the deepest level, entry {i}");
        let g = group_of(e);
        assert!(g >= route::FIRST_GROUP as usize, "pointer to a root group");
        assert!(seen.insert(g), "group {g} reached twice");
        let base = g * GE;
        let (v, d) = (t.entries[base], t.depth[base]);
        let collapsible = !is_ptr(v)
            && u32::from(d) <= end_bits(level) + 1
            && t.entries[base..base + GE].iter().all(|&x| x == v)
            && t.depth[base..base + GE].iter().all(|&x| x == d);
        assert!(!collapsible, "group {g} should have been collapsed");
        for j in base..base + GE {
            stack.push((j, level + 1, max));
        }
    }
    assert_eq!(seen.len(), t.groups_used() as usize);
    assert!(t.groups_used() <= t.groups_total());
    let allocated = t.entries.len() / GE - route::FIRST_GROUP as usize;
    assert_eq!(allocated, t.used as usize + t.free.len());
    for Reverse(g) in t.free.iter() {
        let base = *g as usize * GE;
        assert!(t.entries[base..base + GE].iter().all(|&x| x == 0));
        assert!(!seen.contains(&(*g as usize)));
    }
}

/// Applies `take_dirty` to `mirror`, checking that every reported entry
/// is reported once, in order, and really changed unless its group was
/// allocated since the last call (then the whole group is reported).
fn apply_dirty(t: &mut RouteTable, mirror: &mut Vec<u32>) {
    let dirty = t.take_dirty();
    assert!(
        dirty.windows(2).all(|w| w[0].0 < w[1].0),
        "unsorted or repeated"
    );
    // Sorted and unique: a group is reported whole iff 256 of its entries are.
    let mut per_group: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, _) in &dirty {
        *per_group.entry(*i as usize / GE).or_default() += 1;
    }
    for (i, v) in dirty {
        let i = i as usize;
        if i >= mirror.len() {
            mirror.resize(i + 1, route::EMPTY);
        }
        if mirror[i] == v {
            let g = i / GE;
            assert!(
                g >= route::FIRST_GROUP as usize && per_group[&g] == GE,
                "entry {i} reported but unchanged, and its group is not reported whole"
            );
        }
        mirror[i] = v;
    }
}

fn assert_mirror(t: &RouteTable, mirror: &[u32]) {
    let n = mirror.len().max(t.entries().len());
    for i in 0..n {
        let want = t.entries().get(i).copied().unwrap_or(route::EMPTY);
        let got = mirror.get(i).copied().unwrap_or(route::EMPTY);
        assert_eq!(got, want, "entry {i}: dirty updates missed a change");
    }
}

/// A random prefix near one of a few seeds, so that prefixes nest and
/// overlap; lengths mix all values with the level-ending ones.
fn random_prefix(rng: &mut StdRng, seeds4: &[u32], seeds6: &[u128]) -> IpNet {
    let aligned = rng.gen_bool(0.3);
    if rng.gen_bool(0.5) {
        let seed = seeds4[rng.gen_range(0..seeds4.len())];
        // Mostly near the seed; sometimes the seed itself.
        let noise = rng.r#gen::<u32>() >> rng.gen_range(0..=31u32);
        let addr = if rng.gen_bool(0.1) {
            seed
        } else {
            seed ^ noise
        };
        // Prefixes up to /16 rewrite up to 65536 root entries: fewer of them.
        let len = if aligned {
            [16, 24, 32][rng.gen_range(0..3)]
        } else if rng.gen_bool(0.15) {
            rng.gen_range(0..=16)
        } else {
            rng.gen_range(17..=32)
        };
        IpNet::new(IpAddr::V4(Ipv4Addr::from(addr)), len)
            .unwrap()
            .trunc()
    } else {
        let seed = seeds6[rng.gen_range(0..seeds6.len())];
        let shift = rng.gen_range(0..=127u32);
        let addr = seed ^ (rng.r#gen::<u128>() >> shift);
        let len = if aligned {
            16 + 8 * rng.gen_range(0..=14u8)
        } else if rng.gen_bool(0.05) {
            rng.gen_range(0..=16)
        } else {
            rng.gen_range(17..=128)
        };
        IpNet::new(IpAddr::V6(Ipv6Addr::from(addr)), len)
            .unwrap()
            .trunc()
    }
}

fn random_addr(rng: &mut StdRng, seeds4: &[u32], seeds6: &[u128]) -> IpAddr {
    if rng.gen_bool(0.5) {
        let seed = seeds4[rng.gen_range(0..seeds4.len())];
        let shift = rng.gen_range(0..=31u32);
        IpAddr::V4(Ipv4Addr::from(seed ^ (rng.r#gen::<u32>() >> shift)))
    } else {
        let seed = seeds6[rng.gen_range(0..seeds6.len())];
        let shift = rng.gen_range(0..=127u32);
        IpAddr::V6(Ipv6Addr::from(seed ^ (rng.r#gen::<u128>() >> shift)))
    }
}

fn check_lookups(
    t: &RouteTable,
    r: &Reference,
    rng: &mut StdRng,
    seeds4: &[u32],
    seeds6: &[u128],
    all_boundaries: bool,
) {
    for _ in 0..200 {
        let a = random_addr(rng, seeds4, seeds6);
        assert_eq!(t.lookup(a), r.lookup(a), "lookup {a}");
    }
    let rules: Vec<IpNet> = r.rules.keys().copied().collect();
    let sample: Vec<IpNet> = if all_boundaries {
        rules
    } else {
        (0..40.min(rules.len()))
            .map(|_| rules[rng.gen_range(0..rules.len())])
            .collect()
    };
    for p in sample {
        for a in boundaries(p) {
            assert_eq!(t.lookup(a), r.lookup(a), "lookup {a} at the edge of {p}");
        }
        assert_eq!(t.get(p), r.rules.get(&p).copied(), "get {p}");
    }
}

/// Random inserts, replaces and removes against the reference, checking
/// lookups, structure and dirty tracking as it goes, then removal of all.
fn randomized(seed: u64, groups: u32, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let seeds4: Vec<u32> = (0..4).map(|_| rng.r#gen()).collect();
    let seeds6: Vec<u128> = (0..4).map(|_| rng.r#gen()).collect();
    let mut t = RouteTable::new(groups);
    let mut r = Reference::default();
    let mut mirror = t.entries().to_vec();
    let mut exhausted = 0;
    for op in 0..ops {
        let existing: Vec<IpNet> = r.rules.keys().copied().collect();
        let remove = !existing.is_empty() && rng.gen_bool(0.4);
        if remove {
            let p = if rng.gen_bool(0.95) {
                existing[rng.gen_range(0..existing.len())]
            } else {
                random_prefix(&mut rng, &seeds4, &seeds6)
            };
            let res = t.remove(p);
            if r.rules.remove(&p).is_some() {
                assert_eq!(res, Ok(()), "remove {p}");
            } else {
                assert_eq!(res, Err(RouteError::NotFound { prefix: p }));
            }
        } else {
            let p = if !existing.is_empty() && rng.gen_bool(0.15) {
                existing[rng.gen_range(0..existing.len())]
            } else {
                random_prefix(&mut rng, &seeds4, &seeds6)
            };
            let leaf = if rng.gen_bool(0.1) {
                route::LOCAL
            } else {
                route::member_leaf(rng.gen_range(0..20))
            };
            // Only an insert with fewer free groups than levels can fail.
            let free = t.groups_total() - t.groups_used();
            let before = (free < route::MAX_V6_LEVELS).then(|| t.entries().to_vec());
            let (used, len) = (t.groups_used(), t.len());
            match t.insert(p, leaf) {
                Ok(()) => {
                    r.rules.insert(p, leaf);
                }
                Err(RouteError::GroupsExhausted { needed, free, .. }) => {
                    exhausted += 1;
                    assert!(needed > free);
                    assert_eq!(free, t.groups_total() - t.groups_used());
                    let before = before.expect("failed with enough free groups");
                    assert_eq!(t.entries(), &before[..], "failed insert changed entries");
                    assert_eq!((t.groups_used(), t.len()), (used, len));
                    assert!(t.take_dirty().is_empty(), "failed insert wrote entries");
                }
                Err(e) => panic!("insert {p}: {e}"),
            }
        }
        assert_eq!(t.len(), r.rules.len());
        apply_dirty(&mut t, &mut mirror);
        if op % 25 == 0 {
            check_lookups(&t, &r, &mut rng, &seeds4, &seeds6, op % 500 == 0);
            check_structure(&t);
            assert_mirror(&t, &mirror);
        }
    }
    check_lookups(&t, &r, &mut rng, &seeds4, &seeds6, true);
    check_structure(&t);
    if groups < 100 {
        assert!(exhausted > 0, "the small table never ran out of groups");
    }

    // Remove everything, in random order.
    let mut all: Vec<IpNet> = r.rules.keys().copied().collect();
    while !all.is_empty() {
        let p = all.swap_remove(rng.gen_range(0..all.len()));
        assert_eq!(t.remove(p), Ok(()));
        r.rules.remove(&p);
        if all.len().is_multiple_of(50) {
            check_lookups(&t, &r, &mut rng, &seeds4, &seeds6, false);
            check_structure(&t);
        }
    }
    assert!(t.is_empty());
    assert_eq!(t.groups_used(), 0);
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
    assert!(t.depth.iter().all(|&d| d == 0));
    apply_dirty(&mut t, &mut mirror);
    assert_mirror(&t, &mirror);
    check_structure(&t);
}

#[test]
fn randomized_against_reference() {
    for seed in 0..3 {
        randomized(seed, 100_000, 1500);
    }
}

/// `groups_needed` is exact for a batch of insertions, and bounds the
/// groups allocated at every step of any mix of those insertions with
/// removals.
#[test]
fn groups_needed_bounds_a_batch() {
    for seed in 20..40 {
        let mut rng = StdRng::seed_from_u64(seed);
        let seeds4: Vec<u32> = (0..3).map(|_| rng.r#gen()).collect();
        let seeds6: Vec<u128> = (0..3).map(|_| rng.r#gen()).collect();
        let mut t = RouteTable::new(1_000_000);
        let mut existing = Vec::new();
        for _ in 0..300 {
            let p = random_prefix(&mut rng, &seeds4, &seeds6);
            t.insert(p, route::member_leaf(1)).unwrap();
            existing.push(p);
        }
        existing.sort();
        existing.dedup();
        let inserts: Vec<IpNet> = (0..60)
            .map(|_| random_prefix(&mut rng, &seeds4, &seeds6))
            .collect();
        let bound = t.groups_needed(inserts.iter().copied());

        // Insertions alone allocate exactly that.
        let mut only = t.clone();
        let start = only.groups_used();
        for p in &inserts {
            only.insert(*p, route::member_leaf(2)).unwrap();
        }
        assert_eq!(u64::from(only.groups_used() - start), bound, "seed {seed}");

        // Mixed with removals, in a random order, never more than that
        // beyond what the removals freed: the groups in use never exceed
        // the start plus the bound.
        let mut ops: Vec<(bool, IpNet)> = inserts.iter().map(|p| (true, *p)).collect();
        let removed = rng.gen_range(0..existing.len());
        ops.extend(existing[..removed].iter().map(|p| (false, *p)));
        ops.shuffle(&mut rng);
        let start = t.groups_used();
        for (insert, p) in ops {
            if insert {
                t.insert(p, route::member_leaf(2)).unwrap();
            } else if let Err(e) = t.remove(p) {
                // Removed already: inserted again and removed, or the
                // same prefix twice.
                assert!(matches!(e, RouteError::NotFound { .. }));
            }
            assert!(
                u64::from(t.groups_used()) <= u64::from(start) + bound,
                "seed {seed}: {} groups in use, {start} + {bound} bound",
                t.groups_used()
            );
        }
    }
}

#[test]
fn randomized_with_few_groups() {
    for seed in 10..13 {
        randomized(seed, 40, 1200);
    }
}

/// Many member-like prefixes (level-ending lengths) in a dense region,
/// with shorter pools over them.
#[test]
fn randomized_dense_pools() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut t = RouteTable::new(10_000);
    let mut r = Reference::default();
    let pools = [net("10.0.0.0/14"), net("10.1.0.0/16"), net("2001:db8::/44")];
    for (i, p) in pools.iter().enumerate() {
        t.insert(*p, route::member_leaf(1000 + i as u32)).unwrap();
        r.rules.insert(*p, route::member_leaf(1000 + i as u32));
    }
    let mut mirror = Vec::new();
    apply_dirty(&mut t, &mut mirror);
    for step in 0..2500 {
        let p = if rng.gen_bool(0.5) {
            let a = 0x0a00_0000u32 | rng.gen_range(0..1 << 18);
            let len = [32, 32, 30, 28, 24, 20][rng.gen_range(0..6)];
            IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), len)
                .unwrap()
                .trunc()
        } else {
            let a = 0x2001_0db8_0000_0000_0000_0000_0000_0000u128
                | (u128::from(rng.gen_range(0..1u32 << 20)) << 64)
                | u128::from(rng.gen_range(0..4u8));
            let len = [64, 64, 56, 60, 48, 128][rng.gen_range(0..6)];
            IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), len)
                .unwrap()
                .trunc()
        };
        if r.rules.contains_key(&p) && rng.gen_bool(0.6) {
            t.remove(p).unwrap();
            r.rules.remove(&p);
        } else {
            let leaf = route::member_leaf(rng.gen_range(0..500));
            t.insert(p, leaf).unwrap();
            r.rules.insert(p, leaf);
        }
        apply_dirty(&mut t, &mut mirror);
        if step % 500 == 0 {
            let rules: Vec<IpNet> = r.rules.keys().copied().collect();
            for _ in 0..200 {
                let q = rules[rng.gen_range(0..rules.len())];
                for a in boundaries(q) {
                    assert_eq!(t.lookup(a), r.lookup(a), "lookup {a} at the edge of {q}");
                }
            }
            check_structure(&t);
            assert_mirror(&t, &mirror);
        }
    }
    for q in r.rules.keys() {
        for a in boundaries(*q) {
            assert_eq!(t.lookup(a), r.lookup(a), "lookup {a} at the edge of {q}");
        }
    }
    for q in r.rules.keys().copied().collect::<Vec<_>>() {
        t.remove(q).unwrap();
    }
    assert_eq!(t.groups_used(), 0);
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
    apply_dirty(&mut t, &mut mirror);
    assert_mirror(&t, &mirror);
}

#[test]
fn slash24_then_slash32_inside() {
    let mut t = RouteTable::new(16);
    t.insert(net("192.0.2.0/24"), 7).unwrap();
    assert_eq!(t.groups_used(), 1);
    t.insert(net("192.0.2.9/32"), 8).unwrap();
    assert_eq!(t.groups_used(), 2);
    assert_eq!(t.lookup(ip("192.0.2.9")), 8);
    assert_eq!(t.lookup(ip("192.0.2.8")), 7);
    assert_eq!(t.lookup(ip("192.0.2.255")), 7);
    assert_eq!(t.lookup(ip("192.0.3.0")), route::EMPTY);
    assert_eq!(t.lookup(ip("192.0.1.255")), route::EMPTY);
    assert_eq!(t.len(), 2);

    t.remove(net("192.0.2.9/32")).unwrap();
    assert_eq!(t.lookup(ip("192.0.2.9")), 7);
    // The /32's group held nothing else: it went back into the /24 entry.
    assert_eq!(t.groups_used(), 1);
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.remove(net("192.0.2.9/32")),
        Err(RouteError::NotFound {
            prefix: net("192.0.2.9/32")
        })
    );

    t.remove(net("192.0.2.0/24")).unwrap();
    assert_eq!(t.lookup(ip("192.0.2.9")), route::EMPTY);
    assert_eq!(t.groups_used(), 0);
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
}

#[test]
fn ipv6_48_with_56_and_64_inside() {
    let mut t = RouteTable::new(64);
    t.insert(net("2001:db8:1::/48"), 1).unwrap();
    t.insert(net("2001:db8:1:100::/56"), 2).unwrap();
    t.insert(net("2001:db8:1:142::/64"), 3).unwrap();
    // bytes 2..5 for the /48, 6 for the /56, 7 for the /64.
    assert_eq!(t.groups_used(), 6);
    assert_eq!(t.lookup(ip("2001:db8:1::1")), 1);
    assert_eq!(t.lookup(ip("2001:db8:1:ff::1")), 1);
    assert_eq!(t.lookup(ip("2001:db8:1:100::")), 2);
    assert_eq!(t.lookup(ip("2001:db8:1:1ff:ffff:ffff:ffff:ffff")), 2);
    assert_eq!(t.lookup(ip("2001:db8:1:200::")), 1);
    assert_eq!(t.lookup(ip("2001:db8:1:142::42")), 3);
    assert_eq!(t.lookup(ip("2001:db8:1:141::42")), 2);
    assert_eq!(t.lookup(ip("2001:db8:1:143::")), 2);
    assert_eq!(t.lookup(ip("2001:db8:2::")), route::EMPTY);

    // Removing the /56 leaves the /64 inside it and the /48 around it.
    t.remove(net("2001:db8:1:100::/56")).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:100::")), 1);
    assert_eq!(t.lookup(ip("2001:db8:1:141::42")), 1);
    assert_eq!(t.lookup(ip("2001:db8:1:142::42")), 3);
    assert_eq!(t.groups_used(), 6);
    t.remove(net("2001:db8:1:142::/64")).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:142::42")), 1);
    assert_eq!(t.groups_used(), 4);
    assert_eq!(t.get(net("2001:db8:1::/48")), Some(1));
    t.remove(net("2001:db8:1::/48")).unwrap();
    assert_eq!(t.groups_used(), 0);
    assert!(t.is_empty());
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
}

#[test]
fn ipv6_slash128() {
    let mut t = RouteTable::new(64);
    let p = net("2001:db8::42/128");
    t.insert(p, route::LOCAL).unwrap();
    assert_eq!(t.groups_used(), route::MAX_V6_LEVELS);
    assert_eq!(t.lookup(ip("2001:db8::42")), route::LOCAL);
    assert_eq!(t.lookup(ip("2001:db8::43")), route::EMPTY);
    assert_eq!(t.lookup(ip("2001:db8::41")), route::EMPTY);
    assert_eq!(t.get(p), Some(route::LOCAL));
    // A /127 next to it shares every group.
    t.insert(net("2001:db8::40/127"), 5).unwrap();
    assert_eq!(t.groups_used(), route::MAX_V6_LEVELS);
    assert_eq!(t.lookup(ip("2001:db8::41")), 5);
    assert_eq!(t.lookup(ip("2001:db8::42")), route::LOCAL);
    t.remove(p).unwrap();
    assert_eq!(t.lookup(ip("2001:db8::42")), route::EMPTY);
    t.remove(net("2001:db8::40/127")).unwrap();
    assert_eq!(t.groups_used(), 0);
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
}

#[test]
fn default_routes() {
    let mut t = RouteTable::new(64);
    t.insert(net("0.0.0.0/0"), 9).unwrap();
    t.insert(net("::/0"), 10).unwrap();
    assert_eq!(t.groups_used(), 0);
    assert_eq!(t.lookup(ip("1.2.3.4")), 9);
    assert_eq!(t.lookup(ip("255.255.255.255")), 9);
    assert_eq!(t.lookup(ip("2001:db8::1")), 10);
    assert_eq!(t.lookup(ip("::")), 10);
    t.insert(net("10.0.0.0/8"), 1).unwrap();
    t.insert(net("10.1.2.3/32"), 2).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.3")), 2);
    assert_eq!(t.lookup(ip("10.1.2.4")), 1);
    assert_eq!(t.lookup(ip("11.0.0.0")), 9);
    // Replacing the default reaches into the groups below the /8.
    t.insert(net("0.0.0.0/0"), 11).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t.lookup(ip("11.0.0.0")), 11);
    assert_eq!(t.lookup(ip("10.1.2.4")), 1);
    t.remove(net("10.0.0.0/8")).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.4")), 11);
    assert_eq!(t.lookup(ip("10.1.2.3")), 2);
    t.remove(net("10.1.2.3/32")).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.3")), 11);
    assert_eq!(t.groups_used(), 0);
    t.remove(net("0.0.0.0/0")).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.3")), route::EMPTY);
    assert_eq!(t.lookup(ip("2001:db8::1")), 10);
    t.remove(net("::/0")).unwrap();
    assert!(t.entries().iter().all(|&e| e == route::EMPTY));
}

/// 256 /24s with one leaf make a uniform group, but of prefixes longer
/// than its parent entry: it must stay, so that each can be removed.
#[test]
fn uniform_group_of_longer_prefixes_stays() {
    let mut t = RouteTable::new(16);
    for i in 0..256 {
        t.insert(net(&format!("198.51.{i}.0/24")), 4).unwrap();
    }
    assert_eq!(t.groups_used(), 1);
    // A /32 inside one of them, removed: its group collapses, and the
    // check of the /24s' group above must keep it.
    t.insert(net("198.51.7.7/32"), 5).unwrap();
    assert_eq!(t.groups_used(), 2);
    t.remove(net("198.51.7.7/32")).unwrap();
    assert_eq!(t.groups_used(), 1);
    assert_eq!(t.get(net("198.51.7.0/24")), Some(4));
    t.remove(net("198.51.7.0/24")).unwrap();
    assert_eq!(t.lookup(ip("198.51.7.1")), route::EMPTY);
    assert_eq!(t.lookup(ip("198.51.8.1")), 4);
    // A /16 with the same leaf under them: removing them all collapses.
    t.insert(net("198.51.0.0/16"), 4).unwrap();
    assert_eq!(t.lookup(ip("198.51.7.1")), 4);
    for i in 0..256 {
        if i != 7 {
            t.remove(net(&format!("198.51.{i}.0/24"))).unwrap();
        }
    }
    assert_eq!(t.groups_used(), 0);
    assert_eq!(t.lookup(ip("198.51.200.1")), 4);
    assert_eq!(t.len(), 1);
}

#[test]
fn host_bits_are_cleared() {
    let mut t = RouteTable::new(16);
    t.insert(net("192.0.2.77/24"), 3).unwrap();
    assert_eq!(t.get(net("192.0.2.0/24")), Some(3));
    assert_eq!(t.lookup(ip("192.0.2.1")), 3);
    t.remove(net("192.0.2.1/24")).unwrap();
    assert!(t.is_empty());
}

#[test]
fn bad_leaves_are_refused() {
    let mut t = RouteTable::new(16);
    let p = net("192.0.2.0/24");
    assert_eq!(
        t.insert(p, route::EMPTY),
        Err(RouteError::BadLeaf {
            prefix: p,
            leaf: route::EMPTY
        })
    );
    assert_eq!(
        t.insert(p, route::PTR | 3),
        Err(RouteError::BadLeaf {
            prefix: p,
            leaf: route::PTR | 3
        })
    );
    assert!(t.is_empty());
    assert!(t.take_dirty().is_empty());
    assert_eq!(t.groups_used(), 0);
}

#[test]
fn exhaustion_changes_nothing() {
    let mut t = RouteTable::new(3);
    t.insert(net("10.0.0.1/32"), 1).unwrap();
    assert_eq!(t.groups_used(), 2);
    t.take_dirty();
    let before = t.entries().to_vec();
    // A /32 in another /16 needs two more groups; one is left.
    let p = net("10.1.0.1/32");
    let err = t.insert(p, 2).unwrap_err();
    assert_eq!(
        err,
        RouteError::GroupsExhausted {
            prefix: p,
            needed: 2,
            free: 1
        }
    );
    assert!(err.to_string().contains("route_groups"), "{err}");
    assert_eq!(t.entries(), &before[..]);
    assert!(t.take_dirty().is_empty());
    assert_eq!((t.len(), t.groups_used()), (1, 2));
    assert_eq!(t.lookup(ip("10.1.0.1")), route::EMPTY);
    assert_eq!(t.get(p), None);
    let p6 = net("2001:db8::/64");
    assert_eq!(
        t.insert(p6, 2),
        Err(RouteError::GroupsExhausted {
            prefix: p6,
            needed: 6,
            free: 1
        })
    );
    assert_eq!(t.entries(), &before[..]);
    // Replacing an existing prefix needs no group; nor does one sharing
    // the path; a /24 needs exactly the one left.
    t.insert(net("10.0.0.1/32"), 5).unwrap();
    t.insert(net("10.0.0.2/32"), 6).unwrap();
    t.insert(net("10.1.0.0/24"), 7).unwrap();
    assert_eq!(t.groups_used(), 3);
    assert_eq!(t.lookup(ip("10.0.0.1")), 5);
    assert_eq!(t.lookup(ip("10.1.0.9")), 7);
    // Freed groups are reused.
    t.remove(net("10.1.0.0/24")).unwrap();
    assert_eq!(t.groups_used(), 2);
    t.insert(net("10.2.0.0/24"), 8).unwrap();
    assert_eq!(t.entries().len(), route::half_entries(3) as usize);
}

#[test]
fn dirty_reports_exactly_the_changes() {
    let mut t = RouteTable::new(16);
    let start = t.entries().to_vec();
    assert!(t.take_dirty().is_empty());
    t.insert(net("10.0.0.0/8"), 1).unwrap();
    t.insert(net("10.0.0.5/32"), 2).unwrap();
    let dirty = t.take_dirty();
    let mut copy = start.clone();
    copy.resize(t.entries().len(), route::EMPTY);
    for &(i, v) in &dirty {
        assert_ne!(copy[i as usize], v);
        copy[i as usize] = v;
    }
    assert_eq!(copy, t.entries());
    // 256 root entries for the /8, the pointer replacing one of them, the
    // two new groups filled with the /8's leaf, then the /32.
    assert_eq!(dirty.len(), 256 + 256 + 256);
    assert!(dirty.windows(2).all(|w| w[0].0 < w[1].0));

    // A change undone before the next call is not reported.
    t.insert(net("10.0.0.6/32"), 3).unwrap();
    t.remove(net("10.0.0.6/32")).unwrap();
    assert!(t.take_dirty().is_empty());

    // Replacing a leaf reports just its entries.
    t.insert(net("10.0.0.5/32"), 4).unwrap();
    let g = group_of(t.entries()[group_of(t.entries()[0x0a00]) * GE]);
    assert_eq!(t.take_dirty(), vec![((g * GE + 5) as u32, 4)]);

    // New groups are reported whole, even their entries that stay EMPTY:
    // the root pointer, two groups, of which one entry is the /32.
    t.insert(net("172.16.0.1/32"), 5).unwrap();
    let dirty = t.take_dirty();
    assert_eq!(dirty.len(), 1 + 2 * GE);
    assert_eq!(dirty[0].0, 0xac10);
    assert!(is_ptr(dirty[0].1));
    let new: Vec<usize> = dirty[1..].iter().map(|&(i, _)| i as usize / GE).collect();
    assert!(new.iter().all(|&g| g >= route::FIRST_GROUP as usize));
    assert_eq!(dirty.iter().filter(|&&(_, v)| v == 5).count(), 1);
    // Removing it frees both: the /32's entry, the pointer to the second
    // group and the root pointer go back to EMPTY, and only they are
    // reported.
    t.remove(net("172.16.0.1/32")).unwrap();
    let dirty = t.take_dirty();
    assert_eq!(dirty.len(), 3);
    assert_eq!(dirty[0].0, 0xac10);
    assert!(dirty.iter().all(|&(_, v)| v == route::EMPTY));
    assert!(t.take_dirty().is_empty());
}

#[test]
fn lookup_matches_the_datapath_layout() {
    let mut t = RouteTable::new(16);
    t.insert(net("203.0.113.7/32"), 42).unwrap();
    let e = t.entries();
    let root = e[0xcb00];
    assert!(is_ptr(root));
    let l1 = e[group_of(root) * GE + 113];
    assert!(is_ptr(l1));
    assert_eq!(e[group_of(l1) * GE + 7], 42);
    assert!(group_of(root) >= route::FIRST_GROUP as usize);

    t.insert(net("2001:db8:ab00::/40"), 43).unwrap();
    let e = t.entries();
    let root = e[route::ROOT6_GROUP as usize * GE + 0x2001];
    let l1 = e[group_of(root) * GE + 0x0d];
    let l2 = e[group_of(l1) * GE + 0xb8];
    assert_eq!(e[group_of(l2) * GE + 0xab], 43);
    assert_eq!(t.lookup(ip("2001:db8:abff::1")), 43);
}

/// A million IPv4 /32s and a million IPv6 /56 and /64 prefixes fit in
/// the groups a million-member router is given, and come out again.
/// (Their cost is measured by `cargo xtask bench`, not here.)
#[test]
fn a_million_members_fit() {
    const N: u32 = 1_000_000;
    let mut t = RouteTable::new(40_000);
    for i in 0..N {
        let a = Ipv4Addr::from(0x6440_0000u32 + i); // from 100.64.0.0
        t.insert(IpNet::from(IpAddr::V4(a)), route::member_leaf(i))
            .unwrap();
    }
    for i in 0..N {
        // /56 and /64 pools, from 2001:db8::/32.
        let (base, len, shift) = if i % 2 == 0 {
            (0x2001_0db8_0000_0000u64, 64, 0)
        } else {
            (0x2001_0db8_8000_0000u64, 56, 8)
        };
        let hi = base + (u64::from(i / 2) << shift);
        let a = Ipv6Addr::from(u128::from(hi) << 64);
        let p = IpNet::new(IpAddr::V6(a), len).unwrap();
        t.insert(p, route::member_leaf(i)).unwrap();
    }
    assert_eq!(t.len(), 2 * N as usize);
    assert!(t.groups_used() <= 40_000);
    assert_eq!(t.lookup(ip("100.64.0.0")), route::member_leaf(0));
    assert_eq!(t.lookup(ip("100.79.66.63")), route::member_leaf(N - 1));
    assert_eq!(t.lookup(ip("100.79.66.64")), route::EMPTY);
    assert_eq!(t.lookup(ip("2001:db8::1")), route::member_leaf(0));
    assert_eq!(t.lookup(ip("2001:db8:8000:0100::1")), route::member_leaf(3));
    for i in 0..N {
        let a = Ipv4Addr::from(0x6440_0000u32 + i);
        t.remove(IpNet::from(IpAddr::V4(a))).unwrap();
    }
    assert_eq!(t.lookup(ip("100.64.0.0")), route::EMPTY);
    assert_eq!(t.len(), N as usize);
}
