//! Forwarding throughput over veth: gen → router → sink, three namespaces,
//! with an all-XDP generator that this kernel allows (no live frames).
//!
//! The generator is a loop of frames. `bench_loop` on the sink's `s0`
//! counts each frame that arrives, makes it a new frame (a random member's
//! address, as the old live-frames generator did) and redirects it into
//! `g0`, whose peer is the router's `r0`: the router forwards it to `r1`,
//! whose peer is `s0` again. Frames are seeded once (an AF_PACKET burst on
//! `g0`) and circulate, a fixed number in flight, until `LOOP_STOP` drains
//! them. Nothing is ever an skb on the XDP cases' path, so no case pays
//! veth's copy of an skb into an XDP buffer (the kernel's case builds its
//! own skbs, as a NIC driver would).
//!
//! The generator alone (the ceiling) is the same loop with `bench_loop` on
//! `r0` itself: it counts, regenerates and redirects into `g0`, one veth
//! hop and one program per frame. Every router case adds its program (or
//! the kernel's stack) and one more veth hop (`r1` → `s0`): 1/Mpps −
//! 1/ceiling is what the router and its egress hop add per packet.
//! Everything runs in the softirq of one CPU (the one the seeds were sent
//! from); timekeeping stays on CPU 0.
//!
//! Routers: collecte (the production program, loaded and filled through
//! router-user's datapath API and attached to `r0`), the kernel's
//! `ip_forward` with the same member routes (no XDP on `r0`, GRO on so that
//! veth takes the redirected frames), and the minimal XDP forward (no
//! lookup). [`figures()`] turns its results into the report's figures.
mod figures;

use std::{
    collections::BTreeMap,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, ensure};
use collecte::{
    datapath::{
        Attach, Datapath, Mode, Sizing,
        bench::{bench_conf, bench_pack4},
    },
    netlink,
};

pub use self::figures::figures;
use crate::{
    frames::{self, REMOTE4},
    ns::{self, Netns},
    population::{self, Attachment, Spec, mac_text},
    progs::{self, Progs},
    stats::median,
};

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
    /// Frames circulating in the loop (at most 256: a veth ring's size).
    pub inflight: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Per case (`collecte.small`, `collecte.large`, `kernel.small`,
    /// `kernel.large`, `minimal`, `ceiling`): Mpps of every repetition.
    pub samples: BTreeMap<String, Vec<f64>>,
    pub medians: BTreeMap<String, f64>,
    /// Seconds to add the member routes to the kernel (small, large).
    pub kernel_insert_s: BTreeMap<String, f64>,
    /// Seconds to build collecte's tables and apply them (small, large).
    pub collecte_load_s: BTreeMap<String, f64>,
    /// Frames seeded into the loop, and the fewest still circulating at
    /// the end of a measurement.
    pub inflight: usize,
    pub fewest_left: usize,
    /// ns per packet above the generator alone, per case.
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
    /// No router: the loop closes on `r0` (the generator alone).
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

    // The generator: `bench_loop`, on s0 (and on r0 for the ceiling),
    // drawing random destinations among the first n members and sending
    // into g0.
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
    {
        // A DEVMAP resolves its ifindex in the writer's namespace.
        let _in = t.generator.enter()?;
        generator.set_loop_egress(g0)?;
    }
    generator.set_loop_stop(true)?;
    {
        let _in = t.sink.enter()?;
        generator.attach(progs::LOOP, "s0")?;
    }
    let (frame, _, dst) = frames::ipv4(R0, G0, None, REMOTE4, [0; 4]);
    // The seeds: the same frame to the first member, checksum complete.
    let (seed, _, _) = frames::ipv4(R0, G0, None, REMOTE4, specs[0].host4());

    // collecte at both sizes, loaded side by side.
    let mut dps: BTreeMap<usize, Datapath> = BTreeMap::new();
    {
        let _in = t.rtr.enter()?;
        let links = netlink::snapshot_blocking()?.links;
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
        seed,
        dst,
        generator: &mut generator,
        minimal: &mut minimal,
        dps: &mut dps,
        inflight: opts.inflight,
        left: Vec::new(),
        secs: opts.secs,
        warmup: opts.warmup,
    };
    log(&format!(
        "forwarding: kernel ip_forward, {} routes",
        opts.small
    ));
    // With the generator alone between repetitions, so that each has its
    // own ceiling.
    for _ in 0..opts.reps {
        for (key, router) in [
            ("kernel.small", Router::Kernel),
            ("ceiling.kernel-small", Router::Ceiling),
        ] {
            let mpps = env.measure(router, opts.small)?;
            res.samples.entry(key.into()).or_default().push(mpps);
        }
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
    res.inflight = opts.inflight;
    res.fewest_left = env.left.iter().copied().min().unwrap_or(0);
    // Per packet, above the generator alone (same repetition): what the
    // router and its egress hop add.
    for (key, ceiling) in [
        ("collecte.small", "ceiling"),
        ("collecte.large", "ceiling"),
        ("kernel.large", "ceiling"),
        ("minimal", "ceiling"),
        ("kernel.small", "ceiling.kernel-small"),
    ] {
        if let (Some(v), Some(c)) = (res.samples.get(key), res.samples.get(ceiling)) {
            let ns: Vec<f64> = v.iter().zip(c).map(|(m, c)| 1e3 / m - 1e3 / c).collect();
            res.router_ns.insert(key.into(), median(&ns));
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
    seed: frames::Frame,
    dst: u32,
    generator: &'a mut Progs,
    minimal: &'a mut Progs,
    dps: &'a mut BTreeMap<usize, Datapath>,
    inflight: usize,
    secs: f64,
    warmup: f64,
    /// Per measurement, the frames still circulating when it ended.
    left: Vec<usize>,
}

impl Env<'_> {
    /// Puts `router` in place, runs the loop with random destinations
    /// among the first `n` members, and returns the frames per second the
    /// generator saw come back, in Mpps.
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
                Router::Ceiling => {
                    Some(Attached::Ceiling(self.generator.attach(progs::LOOP, "r0")?))
                }
                Router::Kernel => None,
            }
        };
        let drained_before = self.generator.count(progs::DRAINED);
        let result = self.circulate();
        // Drain whatever still circulates before the router goes.
        let stopped = self.generator.set_loop_stop(true);
        std::thread::sleep(Duration::from_millis(50));
        let drained_after = self.generator.count(progs::DRAINED);
        {
            let _in = self.t.rtr.enter()?;
            match link {
                Some(Attached::Collecte(n, l)) => {
                    if let Some(dp) = self.dps.get_mut(&n) {
                        dp.detach(l)?;
                    }
                }
                Some(Attached::Minimal(l)) => self.minimal.detach(progs::FWD, l)?,
                Some(Attached::Ceiling(l)) => self.generator.detach(progs::LOOP, l)?,
                None => {}
            }
        }
        stopped?;
        let mpps = result?;
        // Frames that were still circulating at the end: a loop that lost
        // frames on the way ran with fewer in flight than it was seeded
        // with (the rate hardly depends on it, but a loop that died would).
        let left = drained_after? - drained_before?;
        self.left.push(left as usize);
        if mpps <= 0.0 {
            let show = |ns: &Netns| ns.ip(&["-s", "link", "show"]).unwrap_or_default();
            anyhow::bail!(
                "{router:?}: no frame came round the loop\n--- gen\n{}--- router\n{}--- sink\n{}",
                show(&self.t.generator),
                show(&self.t.rtr),
                show(&self.t.sink)
            );
        }
        Ok(mpps)
    }

    /// Seeds the loop from the measuring CPU (the softirqs that carry it
    /// stay there), lets it settle, and counts the frames that come round
    /// in `secs`.
    fn circulate(&mut self) -> anyhow::Result<f64> {
        self.generator.set_loop_stop(false)?;
        let file = self.t.generator.file()?;
        let (seed, g0, inflight) = (self.seed, self.g0, self.inflight);
        std::thread::scope(|s| {
            s.spawn(move || -> anyhow::Result<()> {
                ns::setns(&file)?;
                ns::pin_to_cpu(ns::measure_cpu())?;
                send_burst(g0, &seed, inflight)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the seeding thread panicked"))?
        })?;
        std::thread::sleep(Duration::from_secs_f64(self.warmup));
        let c0 = self.generator.count(progs::SEEN)?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(self.secs));
        let c1 = self.generator.count(progs::SEEN)?;
        let dt = t0.elapsed().as_secs_f64();
        Ok((c1 - c0) as f64 / dt / 1e6)
    }
}

/// Sends `count` copies of `frame` out of interface `ifindex` (of the
/// calling thread's namespace) through an AF_PACKET socket.
fn send_burst(ifindex: u32, frame: &[u8], count: usize) -> anyhow::Result<()> {
    // SAFETY: a plain socket call; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    ensure!(
        fd >= 0,
        "socket(AF_PACKET): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&frame[..6]);
    for i in 0..count {
        // SAFETY: frame and sll outlive the call; lengths are theirs.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        ensure!(
            sent == frame.len() as isize,
            "seeding the loop (frame {i} of {count}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

enum Attached {
    Collecte(usize, aya::programs::xdp::XdpLinkId),
    Minimal(aya::programs::xdp::XdpLinkId),
    Ceiling(aya::programs::xdp::XdpLinkId),
}
