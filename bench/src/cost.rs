//! Program cost with BPF_PROG_TEST_RUN: the bench build of the real
//! datapath (tables built and applied through router-user's API), the
//! randomiser, the floor and the LPM-trie anchor, interleaved repetition by
//! repetition so that drift hits all of them alike. [`figures()`] turns its
//! results into the report's figures.
mod figures;

use std::{collections::BTreeMap, time::Instant};

use anyhow::{Context as _, bail, ensure};
use collecte::{
    datapath::{
        Datapath, Sizing, action,
        bench::{BENCH_CONF_LEN, bench_conf, bench_pack4},
    },
    netlink,
};
use router_common::reason;

pub use self::figures::figures;
use crate::{
    frames::{self, Frame, REMOTE4, REMOTE6},
    ns::{self, Netns},
    population::{self, Attachment, C_VLAN, CPE_PLAIN, CPE_QINQ, S_VLAN, Spec},
    progs::{self, Progs},
    stats::median,
};

pub const UP0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const ACC0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
pub const ACC1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x21];
pub const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0e, 0x01];

/// The paths measured, each with random and with hot (one) addresses.
pub const PATHS: &[(&str, &str)] = &[
    ("down4", "downstream IPv4"),
    ("down6", "downstream IPv6"),
    ("up4", "upstream IPv4 with the source check"),
    ("push", "downstream IPv4 to a QinQ member (push 2 tags)"),
    ("pop", "upstream IPv4 from a QinQ member (pop 2 tags)"),
    ("arp", "ARP request for the gateway answered (ARP reply)"),
    (
        "icmp6",
        "downstream IPv6 with hop limit 1 (ICMPv6 time exceeded built and sent back)",
    ),
    (
        "sess_up",
        "upstream IPv4 out of a PPPoE session (tail call, decapsulated)",
    ),
    (
        "sess_down",
        "downstream IPv4 into a PPPoE session (tail call, encapsulated)",
    ),
];

/// Paths through the one PPPoE session of the population (member m0): hot
/// only, the randomiser drawing the session member's address alone.
pub const SESSION_PATHS: &[&str] = &["sess_up", "sess_down"];
/// The session's id and MRU.
const SESSION_ID: u16 = 0x0101;
const SESSION_MRU: u16 = 1492;

/// Whether the cost of path `path` is measured for `kind` ("rand", "hot").
pub fn measured(path: &str, kind: &str) -> bool {
    kind == "hot" || !SESSION_PATHS.contains(&path)
}

/// The router's addresses in the bench namespace: acc0's (the members'
/// gateway, which the ARP path asks for) and up0's (the source of the
/// ICMP errors towards the core).
const ROUTER_ADDRESSES: [(&str, &str); 3] = [
    ("acc0", "192.0.2.1/32"),
    ("up0", "192.0.2.2/24"),
    ("up0", "2001:db8::2/64"),
];
const ACC0_GW4: [u8; 4] = [192, 0, 2, 1];

pub struct Options {
    pub sizes: Vec<usize>,
    pub reps: usize,
    pub repeat: u32,
}

/// Medians of one table size, in ns per packet.
#[derive(Clone, Debug, Default)]
pub struct SizeResult {
    /// The timed runs had a real-time priority.
    pub realtime: bool,
    pub members: usize,
    /// Per measurement key (`floor`, `P.down4.rand`, `R.down4.hot`,
    /// `L.lpm4`...): every repetition's mean ns/run.
    pub samples: BTreeMap<String, Vec<f64>>,
    /// Derived figures: `lookup4`, `lpm4`, `lookup6`, `lpm6`, `array`, `floor`,
    /// `whole.<path>.<rand|hot>`, `rand.<path>.<rand|hot>` (randomiser cost
    /// above the floor).
    pub derived: BTreeMap<String, f64>,
    /// Seconds to build the tables and apply them to the datapath.
    pub build_s: f64,
    pub apply_s: f64,
    pub groups_used: u32,
}

enum Runner {
    Product,
    Bench(&'static str),
}

struct Case {
    key: String,
    runner: Runner,
    conf: [u8; BENCH_CONF_LEN],
    frame: Frame,
    ifindex: u32,
    /// Product: the interface slot and reason every run must count.
    expect: Option<(u32, u32)>,
}

pub fn run(
    opts: &Options,
    specs: &[Spec],
    log: &mut dyn FnMut(&str),
) -> Vec<anyhow::Result<SizeResult>> {
    population::each_size(&opts.sizes, specs, "program cost", log, |specs, _| {
        one_size(opts, specs)
    })
}

fn one_size(opts: &Options, specs: &[Spec]) -> anyhow::Result<SizeResult> {
    let n = specs.len();
    let ns = Netns::new("cost")?;
    for (name, mac) in [("up0", UP0_MAC), ("acc0", ACC0_MAC), ("acc1", ACC1_MAC)] {
        let peer = format!("{name}p");
        ns.ip(&[
            "link",
            "add",
            name,
            "address",
            &population::mac_text(mac),
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ns.ip(&["link", "set", name, "up"])?;
        ns.ip(&["link", "set", &peer, "up"])?;
    }
    for (dev, addr) in ROUTER_ADDRESSES {
        ns.ip(&["addr", "add", addr, "dev", dev, "nodad"])?;
    }
    let _inside = ns.enter()?;
    ns::pin_to_cpu(ns::measure_cpu())?;
    let system = netlink::snapshot_blocking().context("reading the namespace's interfaces")?;
    let links = system.links;

    // Members: 3 in 4 plain on acc0, 1 in 4 QinQ on acc1.
    let qinq = |i: usize| i % 4 == 3;
    let mut members = Vec::with_capacity(n);
    for (i, s) in specs.iter().enumerate() {
        let at = if qinq(i) {
            Attachment {
                interface: "acc1",
                tags: Some((S_VLAN, C_VLAN)),
                mac: CPE_QINQ,
            }
        } else {
            Attachment {
                interface: "acc0",
                tags: None,
                mac: CPE_PLAIN,
            }
        };
        members.push(population::member(i, s, at)?);
    }
    let groups = population::route_groups(specs)?;
    let dir = std::env::temp_dir();
    let setup = population::Setup {
        uplink: "up0",
        gateway_mac: GW_MAC,
        access: &["acc0", "acc1"],
        max_members: population::max_members(n),
        route_groups: groups,
        pin_dir: &dir,
        state: &dir.join("unused-state.json"),
        metrics: "127.0.0.1:9570",
    };
    let mut config = population::config(&setup, members)?;
    // Answers at any rate (the bench gives the burst back before each
    // measurement: see `Datapath::bench_setup`).
    config.edge.icmp_rate = router_core::config::MAX_ICMP_RATE;
    config.edge.icmp_burst = router_core::config::MAX_ICMP_RATE;
    config
        .validate()
        .context("the generated configuration is invalid")?;

    let t = Instant::now();
    let mut tables = population::tables(&config, &links)?;
    tables.set_link_addresses(&system.link_addresses);
    let full = tables.full_state().into_owned();
    let build_s = t.elapsed().as_secs_f64();
    let groups_used = tables.routes().groups_used();
    let sizing = Sizing {
        max_members: setup.max_members,
        route_groups: groups,
    };

    // Addresses: plain IPv4 | plain IPv6 | QinQ IPv4; IPv4 four to an
    // entry. Regions are (first entry, addresses).
    // Member m0 is the PPPoE session's, out of the plain regions.
    let plain = |i: usize| i != 0 && !qinq(i);
    let plain4: Vec<[u8; 4]> = specs
        .iter()
        .enumerate()
        .filter(|(i, _)| plain(*i))
        .map(|(_, s)| s.host4())
        .collect();
    let plain6: Vec<[u8; 16]> = specs
        .iter()
        .enumerate()
        .filter(|(i, _)| plain(*i))
        .map(|(_, s)| s.host6())
        .collect();
    let qinq4: Vec<[u8; 4]> = specs
        .iter()
        .enumerate()
        .filter(|(i, _)| qinq(*i))
        .map(|(_, s)| s.host4())
        .collect();
    ensure!(!qinq4.is_empty(), "too few members for a QinQ one");
    let (p4, q4) = (bench_pack4(&plain4), bench_pack4(&qinq4));
    let s4 = bench_pack4(&[specs[0].host4()]);
    let regions = [
        (0u32, plain4.len() as u32),
        (p4.len() as u32, plain6.len() as u32),
        ((p4.len() + plain6.len()) as u32, qinq4.len() as u32),
        ((p4.len() + plain6.len() + q4.len()) as u32, 1),
    ];
    let addrs: Vec<[u8; 16]> = [p4, plain6, q4, s4].concat();

    let mut dp = Datapath::load_bench(sizing, addrs.len() as u32)
        .context("loading the bench build of the datapath")?;
    let slot = |name: &str| -> anyhow::Result<u32> {
        tables
            .interfaces()
            .get(name)
            .map(|i| i.slot)
            .with_context(|| format!("no slot for {name}"))
    };
    for (name, iface) in tables.interfaces() {
        dp.set_iface(iface.slot, name, &iface.info, None)?;
        dp.set_iface_addrs(iface.slot, &iface.addrs, &iface.gateways)?;
    }
    let t = Instant::now();
    dp.apply_full(&full)?;
    let apply_s = t.elapsed().as_secs_f64();
    dp.bench_addresses(&addrs)?;
    session(&mut dp, &tables, &full)?;

    // The probes' inputs, after the others in bench-ebpf's BENCH_ADDRS:
    // each plain member's IPv4 address, then its slot.
    let mut probe_addrs = Vec::with_capacity(regions[0].1 as usize);
    for (i, s) in specs.iter().enumerate().filter(|(i, _)| plain(*i)) {
        let slot = tables
            .slot(&format!("m{i}"))
            .with_context(|| format!("no slot for member m{i}"))?;
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&s.host4());
        a[4..8].copy_from_slice(&slot.to_ne_bytes());
        probe_addrs.push(a);
    }
    let probe_region = (addrs.len() as u32, probe_addrs.len() as u32);
    let mut bench = Progs::load(progs::Sizes {
        addresses: (addrs.len() + probe_addrs.len()) as u32,
        lpm4: n as u32,
        lpm6: n as u32,
        route_chunks: 2 * sizing.route_half() / router_common::route::CHUNK,
        members: 2 * sizing.max_members,
        counters: sizing.max_members,
    })?;
    bench.set_addresses(&[addrs.as_slice(), probe_addrs.as_slice()].concat())?;
    bench.fill_probes(&full, sizing.max_members)?;
    bench.fill_chase()?;
    bench.insert_lpm4(specs.iter().enumerate().map(|(i, s)| (s.v4, i as u32)))?;
    bench.insert_lpm6(specs.iter().enumerate().map(|(i, s)| (s.v6, i as u32)))?;

    let ifindex = |name: &str| {
        links
            .get(name)
            .map(|l| l.ifindex)
            .with_context(|| format!("no interface {name}"))
    };
    let (up0, acc0, acc1) = (ifindex("up0")?, ifindex("acc0")?, ifindex("acc1")?);
    let (down4, _, d4) = frames::ipv4(UP0_MAC, GW_MAC, None, REMOTE4, [0; 4]);
    let (down6, _, d6) = frames::ipv6(UP0_MAC, GW_MAC, REMOTE6, [0; 16]);
    let (up4, s4, _) = frames::ipv4(ACC0_MAC, CPE_PLAIN, None, [0; 4], REMOTE4);
    let (pop, sq, _) = frames::ipv4(ACC1_MAC, CPE_QINQ, Some((S_VLAN, C_VLAN)), [0; 4], REMOTE4);
    let (arp, spa) = frames::arp_request(CPE_PLAIN, ACC0_GW4);
    let (mut expired6, _, e6) = frames::ipv6(UP0_MAC, GW_MAC, REMOTE6, [0; 16]);
    frames::set_hop_limit6(&mut expired6, 1);
    let (sess_up, ss) = frames::session4(ACC0_MAC, CPE_PLAIN, SESSION_ID, REMOTE4);
    let down = (slot("up0")?, reason::FWD_DOWNSTREAM);
    // (path, frame, ingress, address offset, length, region, expected)
    let paths = [
        ("down4", down4, up0, d4, 4, regions[0], down),
        ("down6", down6, up0, d6, 16, regions[1], down),
        (
            "up4",
            up4,
            acc0,
            s4,
            4,
            regions[0],
            (slot("acc0")?, reason::FWD_UPSTREAM),
        ),
        ("push", down4, up0, d4, 4, regions[2], down),
        (
            "pop",
            pop,
            acc1,
            sq,
            4,
            regions[2],
            (slot("acc1")?, reason::FWD_UPSTREAM),
        ),
        (
            "arp",
            arp,
            acc0,
            spa,
            4,
            regions[0],
            (slot("acc0")?, reason::REPLY_ARP),
        ),
        (
            "icmp6",
            expired6,
            up0,
            e6,
            16,
            regions[1],
            (slot("up0")?, reason::REPLY_TIME_EXCEEDED),
        ),
        (
            "sess_up",
            sess_up,
            acc0,
            ss,
            4,
            regions[3],
            (slot("acc0")?, reason::FWD_UPSTREAM),
        ),
        ("sess_down", down4, up0, d4, 4, regions[3], down),
    ];
    let mut cases = vec![Case {
        key: "floor".into(),
        runner: Runner::Bench(progs::FLOOR),
        conf: bench_conf(&down4, d4, 4, 0, 1),
        frame: down4,
        ifindex: up0,
        expect: None,
    }];
    for (path, frame, ingress, offset, len, (first, count), expect) in paths {
        for (kind, count) in [("rand", count), ("hot", 1)] {
            if !measured(path, kind) {
                continue;
            }
            let conf = bench_conf(&frame, offset, len, first, count);
            for (who, runner, expect) in [
                ("P", Runner::Product, Some(expect)),
                ("R", Runner::Bench(progs::RANDOMISE), None),
            ] {
                cases.push(Case {
                    key: format!("{who}.{path}.{kind}"),
                    runner,
                    conf,
                    frame,
                    ifindex: ingress,
                    expect,
                });
            }
        }
    }
    for (key, prog, frame, offset, len, (first, count)) in [
        ("L.lpm4", progs::LPM4, down4, d4, 4, regions[0]),
        ("L.lpm6", progs::LPM6, down6, d6, 16, regions[1]),
        ("T.lookup4", progs::LOOKUP4, down4, d4, 4, regions[0]),
        ("T.lookup6", progs::LOOKUP6, down6, d6, 16, regions[1]),
        ("A.array", progs::ARRAY, down4, d4, 4, regions[0]),
    ] {
        cases.push(Case {
            key: key.into(),
            runner: Runner::Bench(prog),
            conf: bench_conf(&frame, offset, len, first, count),
            frame,
            ifindex: up0,
            expect: None,
        });
    }

    let probe_conf = bench_conf(&down4, d4, 16, probe_region.0, probe_region.1);
    for (key, prog) in [
        ("R.probe", progs::RANDOMISE),
        ("Q.trie", progs::PROBE_TRIE),
        ("Q.members", progs::PROBE_MEMBERS),
        ("Q.counters", progs::PROBE_COUNTERS),
        ("Q.flat", progs::PROBE_FLAT),
        ("Q.chain", progs::PROBE_CHAIN),
        ("Q.line", progs::PROBE_LINE),
        ("Q.chainline", progs::PROBE_CHAIN_LINE),
        ("Q.chase", progs::PROBE_CHASE),
    ] {
        cases.push(Case {
            key: key.into(),
            runner: Runner::Bench(prog),
            conf: probe_conf,
            frame: down4,
            ifindex: up0,
            expect: None,
        });
    }

    // Every case does what it should on every run before anything is timed.
    for c in &cases {
        check(&mut dp, &mut bench, c).with_context(|| format!("checking {}", c.key))?;
    }

    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let realtime = ns::realtime(true);
    let timed = time_cases(&mut dp, &mut bench, &cases, opts, &mut samples);
    ns::realtime(false);
    timed?;

    let mut derived = BTreeMap::new();
    let s = |k: &str| samples.get(k).cloned().unwrap_or_default();
    let diff = |a: &str, b: &str| -> f64 {
        let (a, b) = (s(a), s(b));
        median(&a.iter().zip(&b).map(|(x, y)| x - y).collect::<Vec<_>>())
    };
    derived.insert("floor".into(), median(&s("floor")));
    derived.insert("lookup4".into(), diff("T.lookup4", "R.down4.rand"));
    derived.insert("lpm4".into(), diff("L.lpm4", "R.down4.rand"));
    derived.insert("array".into(), diff("A.array", "R.down4.rand"));
    derived.insert("lookup6".into(), diff("T.lookup6", "R.down6.rand"));
    derived.insert("lpm6".into(), diff("L.lpm6", "R.down6.rand"));
    for q in [
        "trie",
        "members",
        "counters",
        "flat",
        "chain",
        "line",
        "chainline",
    ] {
        derived.insert(format!("probe.{q}"), diff(&format!("Q.{q}"), "R.probe"));
    }
    derived.insert(
        "probe.chase".into(),
        diff("Q.chase", "floor") / f64::from(progs::CHASE_HOPS),
    );
    for (path, _) in PATHS {
        for kind in ["rand", "hot"] {
            if !measured(path, kind) {
                continue;
            }
            let (p, r, f) = (
                s(&format!("P.{path}.{kind}")),
                s(&format!("R.{path}.{kind}")),
                s("floor"),
            );
            let whole: Vec<f64> = p
                .iter()
                .zip(&r)
                .zip(&f)
                .map(|((p, r), f)| p - r + f)
                .collect();
            derived.insert(format!("whole.{path}.{kind}"), median(&whole));
            let rand: Vec<f64> = r.iter().zip(&f).map(|(r, f)| r - f).collect();
            derived.insert(format!("rand.{path}.{kind}"), median(&rand));
        }
    }
    Ok(SizeResult {
        realtime,
        members: n,
        samples,
        derived,
        build_s,
        apply_s,
        groups_used,
    })
}

/// Makes member m0 a PPPoE member (in both halves) with a session from
/// the plain members' CPE MAC on acc0, untagged.
fn session(
    dp: &mut Datapath,
    tables: &router_core::tables::Tables,
    full: &router_core::changes::FullState<'_>,
) -> anyhow::Result<()> {
    let slot = tables.slot("m0").context("no slot for member m0")?;
    let (_, mut info) = *full
        .members
        .iter()
        .find(|(s, _)| *s == slot)
        .context("no info for member m0")?;
    info.flags |= router_common::member_flags::PPPOE;
    let changes = router_core::changes::Changes {
        members: vec![(slot, info)],
        uplinks: full.uplinks,
        edge: full.edge,
        ..Default::default()
    };
    dp.apply(changes.clone())?;
    dp.apply(changes)?;
    let key = router_common::pppoe::SessionKey {
        iface: info.iface as u16,
        s_vlan: 0,
        c_vlan: 0,
        session_id: SESSION_ID,
        mac: CPE_PLAIN,
        _pad: [0; 2],
    };
    let session = router_common::pppoe::Session {
        member: slot,
        mru: SESSION_MRU,
        _pad: 0,
    };
    dp.put_session(key, session)?;
    Ok(())
}

/// The timed repetitions, each case once per repetition.
fn time_cases(
    dp: &mut Datapath,
    bench: &mut Progs,
    cases: &[Case],
    opts: &Options,
    samples: &mut BTreeMap<String, Vec<f64>>,
) -> anyhow::Result<()> {
    for rep in 0..opts.reps {
        // Start each repetition at another case, so that no case always
        // follows the same one.
        for k in 0..cases.len() {
            let c = &cases[(k + rep * 7) % cases.len()];
            let ns = measure(dp, bench, c, opts.repeat)?;
            samples.entry(c.key.clone()).or_default().push(ns);
        }
    }
    Ok(())
}

fn run_case(
    dp: &mut Datapath,
    bench: &mut Progs,
    c: &Case,
    repeat: u32,
) -> anyhow::Result<(u32, f64)> {
    let (act, d) = match c.runner {
        Runner::Product => {
            dp.bench_setup(&c.conf)?;
            dp.bench_run(&c.frame, c.ifindex, repeat)?
        }
        Runner::Bench(name) => {
            bench.set_conf(&c.conf)?;
            bench.run(name, &c.frame, c.ifindex, repeat)?
        }
    };
    Ok((act, d.as_nanos() as f64))
}

fn measure(dp: &mut Datapath, bench: &mut Progs, c: &Case, repeat: u32) -> anyhow::Result<f64> {
    let (act, ns) = run_case(dp, bench, c, repeat)?;
    if act == action::ABORTED {
        bail!("{}: the program aborted (bench setup refused)", c.key);
    }
    Ok(ns)
}

/// Runs a case 1000 times and checks what every run did: the datapath's
/// counters, the anchor's hits, the randomiser's action.
fn check(dp: &mut Datapath, bench: &mut Progs, c: &Case) -> anyhow::Result<()> {
    const N: u32 = 1000;
    match (&c.runner, c.expect) {
        (Runner::Product, Some((slot, why))) => {
            let before = dp.iface_counters(slot)?;
            let (act, _) = run_case(dp, bench, c, N)?;
            let after = dp.iface_counters(slot)?;
            let moved: Vec<(usize, u64)> = after
                .iter()
                .zip(before.iter())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(r, (a, b))| (r, a - b))
                .collect();
            let want = reason::TABLE[why as usize].1;
            ensure!(
                act == want && moved == vec![(why as usize, u64::from(N))],
                "expected {N} x {:?} and action {want}; got action {act} and counters {:?}",
                reason::NAMES[why as usize],
                moved
                    .iter()
                    .map(|(r, k)| (reason::NAMES[*r], *k))
                    .collect::<Vec<_>>()
            );
        }
        (Runner::Bench(name), _)
            if [
                progs::LPM4,
                progs::LPM6,
                progs::LOOKUP4,
                progs::LOOKUP6,
                progs::ARRAY,
            ]
            .contains(name)
                || name.starts_with("probe_") =>
        {
            let before = bench.count(progs::HITS)?;
            run_case(dp, bench, c, N)?;
            let hits = bench.count(progs::HITS)? - before;
            ensure!(hits == u64::from(N), "{hits} of {N} lookups found a prefix");
        }
        (Runner::Bench(_), _) => {
            let (act, _) = run_case(dp, bench, c, N)?;
            ensure!(act == action::DROP, "action {act}");
        }
        (Runner::Product, None) => {}
    }
    Ok(())
}
