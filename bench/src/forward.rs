//! Forwarding throughput over veth: gen → router → sink, three namespaces.
//!
//! The generator is `bench_gen` run in live-frames mode on `g0` (each frame
//! gets a random member's address; `XDP_TX` sends it to the router's `r0`).
//! The router forwards to `r1`, whose peer `s0` counts with `bench_sink`
//! (an XDP program there is also what lets a redirect into `r1` deliver).
//! Mpps is the sink's count over a fixed time. Everything runs on one CPU:
//! the generator's thread, pinned, and the softirqs it raises.
//!
//! Routers: collecte (the production program, loaded and filled through
//! router-user's datapath API and attached to `r0`), the kernel's
//! `ip_forward` with the same member routes (no XDP on `r0`, GRO on so that
//! veth takes the frames), and the minimal XDP forward (no lookup).
use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, ensure};
use collecte::{
    datapath::{Attach, Datapath, Mode, Sizing, bench_conf, bench_pack4},
    neighbors,
};

use crate::{
    frames::{self, REMOTE4},
    ns::{self, Netns},
    population::{self, Attachment, Spec, mac_text},
    progs::{self, Progs},
    stats::median,
};

/// Set when the generator could not get a real-time priority.
pub static REALTIME_FAILED: AtomicBool = AtomicBool::new(false);

const G0: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const R0: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const R1: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const S0: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
/// The kernel's next hop for member routes: the sink.
const NEXT_HOP: &str = "192.168.255.2";

pub struct Options {
    pub small: usize,
    pub large: usize,
    pub reps: usize,
    pub secs: f64,
    pub warmup: f64,
    pub batch: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Per case (`collecte.small`, `collecte.large`, `kernel.small`,
    /// `kernel.large`, `minimal`): Mpps of every repetition.
    pub samples: BTreeMap<String, Vec<f64>>,
    pub medians: BTreeMap<String, f64>,
    /// Seconds to add the member routes to the kernel (small, large).
    pub kernel_insert_s: BTreeMap<String, f64>,
    /// Seconds to build collecte's tables and apply them (small, large).
    pub collecte_load_s: BTreeMap<String, f64>,
    /// ns per packet above the generator's ceiling, per case.
    pub router_ns: BTreeMap<String, f64>,
}

struct Topology {
    generator: Netns,
    rtr: Netns,
    sink: Netns,
}

fn topology() -> anyhow::Result<Topology> {
    let t = Topology {
        generator: Netns::new("gen")?,
        rtr: Netns::new("rtr")?,
        sink: Netns::new("sink")?,
    };
    t.rtr.ip(&[
        "link",
        "add",
        "r0",
        "address",
        &mac_text(R0),
        "type",
        "veth",
        "peer",
        "name",
        "g0",
        "address",
        &mac_text(G0),
        "netns",
        t.generator.name(),
    ])?;
    t.rtr.ip(&[
        "link",
        "add",
        "r1",
        "address",
        &mac_text(R1),
        "type",
        "veth",
        "peer",
        "name",
        "s0",
        "address",
        &mac_text(S0),
        "netns",
        t.sink.name(),
    ])?;
    t.rtr.ip(&["link", "set", "r0", "up"])?;
    t.rtr.ip(&["link", "set", "r1", "up"])?;
    t.generator.ip(&["link", "set", "g0", "up"])?;
    t.sink.ip(&["link", "set", "s0", "up"])?;
    Ok(t)
}

/// Which router is in place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Router {
    Collecte(usize),
    Kernel,
    Minimal,
    /// No router: a counting program on `r0` (the generator's ceiling).
    Ceiling,
}

pub fn run(opts: &Options, specs: &[Spec], log: &mut dyn FnMut(&str)) -> anyhow::Result<Results> {
    let mut res = Results::default();
    // The generator (and the softirqs it raises) run on the last CPU; this
    // thread keeps time on CPU 0.
    ns::pin_to_cpu(0)?;
    let t = topology()?;
    let g0 = t.generator.ifindex("g0")?;
    let r1 = t.rtr.ifindex("r1")?;

    // The sink.
    let mut sink = Progs::load(progs::Sizes::default())?;
    {
        let _in = t.sink.enter()?;
        sink.attach(progs::SINK, "s0")?;
    }

    // The generator: random destinations among the first n members.
    let packed = bench_pack4(
        &specs[..opts.large]
            .iter()
            .map(Spec::host4)
            .collect::<Vec<_>>(),
    );
    let mut generator = Progs::load(progs::Sizes {
        addresses: packed.len() as u32,
        ..Default::default()
    })?;
    generator.set_addresses(&packed)?;
    let (frame, _, dst) = frames::ipv4(R0, G0, None, REMOTE4, [0; 4]);

    // collecte at both sizes, loaded side by side.
    let mut dps: BTreeMap<usize, Datapath> = BTreeMap::new();
    {
        let _in = t.rtr.enter()?;
        let links = neighbors::snapshot_blocking()?.links;
        for n in [opts.small, opts.large] {
            log(&format!("forwarding: loading collecte with {n} members"));
            let specs = &specs[..n];
            let members = specs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    population::member(
                        i,
                        s,
                        Attachment {
                            interface: "r1",
                            tags: None,
                            mac: S0,
                        },
                    )
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let groups = population::route_groups(specs)?;
            let dir = std::env::temp_dir();
            let setup = population::Setup {
                uplink: "r0",
                gateway_mac: G0,
                access: &["r1"],
                max_members: population::max_members(n),
                route_groups: groups,
                pin_dir: &dir,
                state: &dir.join("unused-state.json"),
                metrics: "127.0.0.1:9570",
            };
            let config = population::config(&setup, members)?;
            // Timed as the kernel's route insertion is: from the member
            // list to tables in force.
            let started = Instant::now();
            let mut tables = population::tables(&config, &links)?;
            let full = tables.full_state().into_owned();
            let mut dp = Datapath::load(
                Sizing {
                    max_members: setup.max_members,
                    route_groups: groups,
                },
                Mode::Forward,
            )?;
            for (name, iface) in tables.interfaces() {
                dp.set_iface(iface.slot, name, &iface.info, None)?;
            }
            dp.apply_full(&full)?;
            res.collecte_load_s
                .insert(size_key(opts, n).into(), started.elapsed().as_secs_f64());
            dps.insert(n, dp);
        }
    }

    // The generator's ceiling: frames counted (and dropped) on r0.
    let mut ceiling = Progs::load(progs::Sizes::default())?;

    // The minimal forward.
    let mut minimal = Progs::load(progs::Sizes::default())?;
    {
        // A DEVMAP resolves its ifindex in the writer's namespace.
        let _in = t.rtr.enter()?;
        minimal.set_fwd(r1, S0, R1)?;
    }

    // The kernel: forwarding on, no reverse-path filter, the sink as next
    // hop of every member route.
    t.rtr.sysctl("net.ipv4.ip_forward", "1")?;
    for dev in ["all", "default", "r0", "r1"] {
        t.rtr
            .sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
    }
    t.rtr.ip(&["addr", "add", "203.0.113.1/24", "dev", "r0"])?;
    t.rtr
        .ip(&["addr", "add", "192.168.255.1/30", "dev", "r1"])?;
    t.rtr.ip(&[
        "neigh",
        "replace",
        NEXT_HOP,
        "lladdr",
        &mac_text(S0),
        "dev",
        "r1",
        "nud",
        "permanent",
    ])?;
    t.rtr.exec("ethtool", &["-K", "r0", "gro", "on"])?;

    // Kernel at the small size first (its routes are a prefix of the large
    // set), then everything at the large size, interleaved.
    let mut kernel_routes_in = 0usize;
    let mut add_routes =
        |upto: usize, res: &mut Results, log: &mut dyn FnMut(&str)| -> anyhow::Result<()> {
            let mut cmds = String::new();
            for s in &specs[kernel_routes_in..upto] {
                cmds.push_str(&format!("route add {} via {NEXT_HOP} dev r1\n", s.v4));
            }
            log(&format!(
                "forwarding: adding {} member routes to the kernel",
                upto - kernel_routes_in
            ));
            let started = Instant::now();
            t.rtr.ip_batch(&cmds)?;
            let took = started.elapsed().as_secs_f64();
            let key = size_key(opts, upto);
            let before: f64 = res.kernel_insert_s.values().copied().fold(0.0, f64::max);
            res.kernel_insert_s.insert(key.into(), before + took);
            kernel_routes_in = upto;
            Ok(())
        };
    add_routes(opts.small, &mut res, log)?;
    let routes = t
        .rtr
        .ip(&["-4", "route", "show", "via", NEXT_HOP])?
        .lines()
        .count();
    ensure!(
        routes == opts.small,
        "the kernel holds {routes} member routes, not {}",
        opts.small
    );

    let mut env = Env {
        t: &t,
        g0,
        frame,
        dst,
        generator: &mut generator,
        sink: &mut sink,
        minimal: &mut minimal,
        ceiling: &mut ceiling,
        dps: &mut dps,
        batch: opts.batch,
        secs: opts.secs,
        warmup: opts.warmup,
    };
    log(&format!(
        "forwarding: kernel ip_forward, {} routes",
        opts.small
    ));
    for _ in 0..opts.reps {
        let mpps = env.measure(Router::Kernel, opts.small)?;
        res.samples
            .entry("kernel.small".into())
            .or_default()
            .push(mpps);
    }
    add_routes(opts.large, &mut res, log)?;
    let cases = [
        ("collecte.small", Router::Collecte(opts.small), opts.small),
        ("collecte.large", Router::Collecte(opts.large), opts.large),
        ("kernel.large", Router::Kernel, opts.large),
        ("minimal", Router::Minimal, opts.large),
        ("ceiling", Router::Ceiling, opts.large),
    ];
    log("forwarding: collecte, kernel and minimal forward, interleaved");
    for rep in 0..opts.reps {
        for k in 0..cases.len() {
            let (key, router, n) = cases[(k + rep) % cases.len()];
            let mpps = env.measure(router, n)?;
            res.samples.entry(key.into()).or_default().push(mpps);
        }
    }
    for (k, v) in &res.samples {
        res.medians.insert(k.clone(), median(v));
    }
    // Per packet, above the generator's ceiling (same repetition): what the
    // router and its egress hop add.
    if let Some(ceiling) = res.samples.get("ceiling").cloned() {
        for key in [
            "collecte.small",
            "collecte.large",
            "kernel.large",
            "minimal",
        ] {
            if let Some(v) = res.samples.get(key) {
                let ns: Vec<f64> = v
                    .iter()
                    .zip(&ceiling)
                    .map(|(m, c)| 1e3 / m - 1e3 / c)
                    .collect();
                res.router_ns.insert(key.into(), median(&ns));
            }
        }
    }
    Ok(res)
}

fn size_key(opts: &Options, n: usize) -> &'static str {
    if n == opts.small { "small" } else { "large" }
}

struct Env<'a> {
    t: &'a Topology,
    g0: u32,
    frame: frames::Frame,
    dst: u32,
    generator: &'a mut Progs,
    sink: &'a mut Progs,
    minimal: &'a mut Progs,
    ceiling: &'a mut Progs,
    dps: &'a mut BTreeMap<usize, Datapath>,
    batch: u32,
    secs: f64,
    warmup: f64,
}

impl Env<'_> {
    /// Puts `router` in place, generates frames to random destinations
    /// among the first `n` members, and returns the sink's Mpps.
    fn measure(&mut self, router: Router, n: usize) -> anyhow::Result<f64> {
        self.generator
            .set_conf(&bench_conf(&self.frame, self.dst, 4, 0, n as u32))?;
        let link = {
            let _in = self.t.rtr.enter()?;
            match router {
                Router::Collecte(n) => {
                    let dp = self.dps.get_mut(&n).context("no datapath of that size")?;
                    Some(Attached::Collecte(n, dp.attach("r0", Attach::Native)?))
                }
                Router::Minimal => Some(Attached::Minimal(self.minimal.attach(progs::FWD, "r0")?)),
                Router::Ceiling => Some(Attached::Ceiling(self.ceiling.attach(progs::SINK, "r0")?)),
                Router::Kernel => None,
            }
        };
        let result = self.generate(router == Router::Ceiling);
        {
            let _in = self.t.rtr.enter()?;
            match link {
                Some(Attached::Collecte(n, l)) => {
                    if let Some(dp) = self.dps.get_mut(&n) {
                        dp.detach(l)?;
                    }
                }
                Some(Attached::Minimal(l)) => self.minimal.detach(progs::FWD, l)?,
                Some(Attached::Ceiling(l)) => self.ceiling.detach(progs::SINK, l)?,
                None => {}
            }
        }
        let mpps = result?;
        if mpps <= 0.0 {
            let show = |ns: &Netns| ns.ip(&["-s", "link", "show"]).unwrap_or_default();
            anyhow::bail!(
                "{router:?}: no frame reached the sink\n--- gen\n{}--- router\n{}--- sink\n{}",
                show(&self.t.generator),
                show(&self.t.rtr),
                show(&self.t.sink)
            );
        }
        Ok(mpps)
    }

    fn generate(&mut self, at_router: bool) -> anyhow::Result<f64> {
        let stop = AtomicBool::new(false);
        let file = self.t.generator.file()?;
        let (frame, g0, batch) = (self.frame, self.g0, self.batch);
        let generator = &mut *self.generator;
        let sink = if at_router {
            &mut *self.ceiling
        } else {
            &mut *self.sink
        };
        std::thread::scope(|s| {
            let stop = &stop;
            let h = s.spawn(move || -> anyhow::Result<u64> {
                ns::setns(&file)?;
                ns::pin_to_cpu(ns::measure_cpu())?;
                if !ns::realtime(true) {
                    REALTIME_FAILED.store(true, Ordering::Relaxed);
                }
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    generator.live(progs::GEN, &frame, g0, 1 << 16, batch)?;
                    sent += 1 << 16;
                }
                Ok(sent)
            });
            let wait = |secs: f64| {
                let until = Instant::now() + Duration::from_secs_f64(secs);
                while Instant::now() < until && !h.is_finished() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            };
            wait(self.warmup);
            let c0 = sink.count(progs::SEEN);
            let t0 = Instant::now();
            wait(self.secs);
            let c1 = sink.count(progs::SEEN);
            let dt = t0.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let sent = h
                .join()
                .map_err(|_| anyhow::anyhow!("the generator thread panicked"))??;
            ensure!(sent > 0, "the generator sent nothing");
            Ok((c1? - c0?) as f64 / dt / 1e6)
        })
    }
}

enum Attached {
    Collecte(usize, aya::programs::xdp::XdpLinkId),
    Minimal(aya::programs::xdp::XdpLinkId),
    Ceiling(aya::programs::xdp::XdpLinkId),
}
