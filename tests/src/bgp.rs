//! A BGP site: a core BIRD in a namespace of its own, and collecte
//! routers, each an API [`Site`] with its own BIRD configured from
//! `examples/bird.conf`, linked to the core by a veth.
//!
//! ```text
//!   core: BIRD, AS 64496                 router i: collecte + BIRD, AS 64497+i
//!   core{i} 203.0.113.{4i+1}/30 ──────── bgp0 203.0.113.{4i+2}/30
//!           2001:db8:ffff:{i}::1/64           2001:db8:ffff:{i}::2/64
//!   sessions r{i}v4, r{i}v6                   sessions core4, core6
//!                                             kernel table 100 → members4/6
//! ```
//!
//! The core imports what the routers announce (into master4 / master6)
//! and installs nothing: the tests read its BIRD tables.
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crate::{
    Netns,
    api::{Site, SiteOptions},
    bird::{Bird, BirdRoute, example_config, substitute},
};

/// The kernel table collecte exports to (as in `examples/bird.conf`).
pub const TABLE: u32 = 100;

/// `[routes]` for collecte.
pub fn routes_section() -> String {
    format!("\n[routes]\ntable = {TABLE}\n")
}

/// Addresses of router `i`'s link: (core v4, router v4, core v6, router v6).
pub fn link_addresses(i: u32) -> (String, String, String, String) {
    (
        format!("203.0.113.{}", 4 * i + 1),
        format!("203.0.113.{}", 4 * i + 2),
        // As BIRD prints them (`2001:db8:ffff::1` for router 0).
        v6(&format!("2001:db8:ffff:{i}::1")),
        v6(&format!("2001:db8:ffff:{i}::2")),
    )
}

/// An IPv6 address in its canonical text.
fn v6(text: &str) -> String {
    text.parse::<std::net::Ipv6Addr>()
        .expect("an IPv6 address")
        .to_string()
}

fn no_dad(ns: &Netns) {
    let out = ns.exec(
        "sysctl",
        &[
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ],
    );
    assert!(out.status.success(), "sysctl: {out:?}");
}

/// The core: a namespace and, once [`Core::start`]ed, its BIRD.
pub struct Core {
    pub bird: Option<Bird>,
    pub ns: Netns,
}

/// A collecte router with its BIRD.
pub struct Router {
    pub bird: Option<Bird>,
    pub site: Site,
    pub index: u32,
}

impl Core {
    pub fn new(tag: &str) -> Core {
        crate::require_root();
        let ns = Netns::new(&format!("{tag}-core"));
        no_dad(&ns);
        Core { bird: None, ns }
    }

    /// Starts the core's BIRD with a session pair per router of `routers`.
    pub fn start(&mut self, routers: u32) {
        let mut conf = String::from(
            "log stderr all;\nrouter id 203.0.113.1;\ntimeformat route iso long ms;\n\
             protocol device {\n}\n",
        );
        for i in 0..routers {
            let (c4, r4, c6, r6) = link_addresses(i);
            let asn = 64497 + i;
            for (name, family, local, peer) in [("v4", "ipv4", &c4, &r4), ("v6", "ipv6", &c6, &r6)]
            {
                conf += &format!(
                    "protocol bgp r{i}{name} {{\n  local {local} as 64496;\n  \
                     neighbor {peer} as {asn};\n  connect delay time 1;\n  \
                     connect retry time 1;\n  error wait time 1, 2;\n  \
                     {family} {{ import all; export none; }};\n}}\n"
                );
            }
        }
        self.bird = Some(Bird::start(&self.ns, "core", &conf));
    }

    pub fn bird(&self) -> &Bird {
        self.bird.as_ref().expect("core BIRD started")
    }

    /// Every path the core has, by prefix, both families.
    pub fn paths(&self) -> BTreeMap<String, Vec<BirdRoute>> {
        let mut out: BTreeMap<String, Vec<BirdRoute>> = BTreeMap::new();
        for table in ["master4", "master6"] {
            for r in self.bird().routes(table) {
                out.entry(r.prefix.clone()).or_default().push(r);
            }
        }
        out
    }

    /// The next hops the core has for each prefix, sorted.
    pub fn next_hops(&self) -> BTreeMap<String, Vec<String>> {
        self.paths()
            .into_iter()
            .map(|(p, routes)| {
                let mut hops: Vec<String> = routes.into_iter().filter_map(|r| r.via).collect();
                hops.sort();
                (p, hops)
            })
            .collect()
    }

    /// Polls until `want` holds of the core's next hops; panics with what
    /// it has after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.next_hops();
            if want(&now) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "the core did not get {what} within {timeout:?}; it has {now:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Router {
    /// Router `i` of `core`: an API site with `[routes]`, linked to the
    /// core. Neither collecte nor BIRD runs yet.
    pub fn new(core: &Core, tag: &str, i: u32, options: SiteOptions) -> Router {
        let mut options = options;
        options.extra += &routes_section();
        let site = Site::new(&format!("{tag}-r{i}"), options);
        no_dad(&site.ns);
        let peer = format!("core{i}");
        site.ns.ip(&[
            "link",
            "add",
            "bgp0",
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            core.ns.name(),
        ]);
        let (c4, r4, c6, r6) = link_addresses(i);
        site.ns
            .ip(&["addr", "add", &format!("{r4}/30"), "dev", "bgp0"]);
        site.ns
            .ip(&["addr", "add", &format!("{r6}/64"), "dev", "bgp0", "nodad"]);
        site.ns.ip(&["link", "set", "bgp0", "up"]);
        core.ns
            .ip(&["addr", "add", &format!("{c4}/30"), "dev", &peer]);
        core.ns
            .ip(&["addr", "add", &format!("{c6}/64"), "dev", &peer, "nodad"]);
        core.ns.ip(&["link", "set", &peer, "up"]);
        Router {
            bird: None,
            site,
            index: i,
        }
    }

    /// This router's address on its link, as the core sees it as next hop.
    pub fn next_hop4(&self) -> String {
        link_addresses(self.index).1
    }

    pub fn next_hop6(&self) -> String {
        link_addresses(self.index).3
    }

    /// Starts the router's BIRD: `examples/bird.conf` with this router's
    /// addresses and AS, logging to stderr.
    pub fn start_bird(&mut self) {
        let (c4, r4, c6, r6) = link_addresses(self.index);
        let asn = (64497 + self.index).to_string();
        let conf = substitute(
            &example_config(),
            &[
                ("log syslog all;", "log stderr all;"),
                ("router id 192.0.2.2;", &format!("router id {r4};")),
                (
                    "local 192.0.2.2 as 64497;",
                    &format!("local {r4} as {asn};"),
                ),
                (
                    "neighbor 192.0.2.1 as 64496;",
                    &format!("neighbor {c4} as 64496;"),
                ),
                (
                    "local 2001:db8::2 as 64497;",
                    &format!("local {r6} as {asn};"),
                ),
                (
                    "neighbor 2001:db8::1 as 64496;",
                    &format!("neighbor {c6} as 64496;"),
                ),
            ],
        );
        assert!(conf.contains(&format!("kernel table {TABLE};")));
        self.bird = Some(Bird::start(
            &self.site.ns,
            &format!("r{}", self.index),
            &conf,
        ));
    }

    pub fn bird(&self) -> &Bird {
        self.bird.as_ref().expect("router BIRD started")
    }

    /// The routes of protocol 150 in the router's table, both families:
    /// `ip route show table 100 proto 150` as (type, prefix) lines.
    pub fn kernel_routes(&self) -> Vec<String> {
        kernel_routes(&self.site.ns, TABLE, Some(150))
    }
}

/// `ip [-6] route show table TABLE [proto PROTO]` of `ns`, both families:
/// one `TYPE PREFIX proto P` line per route, sorted.
pub fn kernel_routes(ns: &Netns, table: u32, proto: Option<u8>) -> Vec<String> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let t = table.to_string();
        let p = proto.map(|p| p.to_string());
        let mut args = vec![family, "-d", "route", "show", "table", &t];
        if let Some(p) = &p {
            args.extend(["proto", p]);
        }
        let mut full = vec!["-n", ns.name()];
        full.extend_from_slice(&args);
        let run = std::process::Command::new("ip")
            .args(&full)
            .output()
            .expect("run ip");
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        let err = String::from_utf8_lossy(&run.stderr);
        // A table that does not exist (yet, any more) holds nothing.
        if !run.status.success() && !err.contains("FIB table does not exist") {
            panic!("ip {full:?}: {err}");
        }
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (kind, prefix) = (w[0], w[1]);
            // (ip leaves the protocol out when it filters on it.)
            let proto = w
                .iter()
                .position(|x| *x == "proto")
                .map(|i| w[i + 1].to_owned())
                .or_else(|| p.clone())
                .unwrap_or_else(|| "?".into());
            let prefix = if prefix.contains('/') {
                prefix.to_owned()
            } else if family == "-4" {
                format!("{prefix}/32")
            } else {
                format!("{prefix}/128")
            };
            out.push(format!("{kind} {prefix} proto {proto}"));
        }
    }
    out.sort();
    out
}
