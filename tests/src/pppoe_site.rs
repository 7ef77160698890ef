//! A PPPoE site for the end-to-end tests: the [`Topology`] (core behind
//! `up0`, alice on `acc0`, the trunk behind `acc1` where the PPPoE clients'
//! raw sockets live), a real FreeRADIUS in the router namespace
//! ([`crate::freeradius`]), and `collecte run` with `[pppoe] interfaces =
//! ["acc1"]`, `[radius]` and the API.
//!
//! ```text
//!  core ── up0 [router: collecte, XDP; FreeRADIUS on 127.0.0.1] acc0 ── alice
//!                                                               acc1 ── trunk: PppoeClient(s)
//! ```
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::unix::fs::PermissionsExt as _,
    time::Duration,
};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::{
    api::{self, Client, Endpoint},
    daemon::{Daemon, Metrics},
    freeradius::{DetailRecord, FreeRadius, User},
    pppoe::PppoeClient,
    topology::{Settings, Topology, alice, wait_for},
};

/// The users of the PPPoE tests (prefixes inside the core's routes to
/// the members, 198.51.100.0/24 and 2001:db8:1000::/36).
pub fn users() -> Vec<User> {
    vec![
        User::new("v4@isp", "v4-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 40)),
        User::new("dual@isp", "dual-pass")
            .framed_ip(Ipv4Addr::new(198, 51, 100, 41))
            .framed_ipv6_prefix("2001:db8:1500::/64")
            .delegated_ipv6_prefix("2001:db8:1600::/56"),
        User::new("chap@isp", "chap-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 42)),
        User::new("q1@isp", "q1-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 43)),
        User::new("q2@isp", "q2-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 44)),
        // alice's address: refused as an overlap.
        User::new("thief@isp", "thief-pass").framed_ip(Ipv4Addr::new(198, 51, 100, 7)),
        User::new("short@isp", "short-pass")
            .framed_ip(Ipv4Addr::new(198, 51, 100, 45))
            .session_timeout(3),
        User::new("rejected", "rejected-pass").rejected("account disabled"),
    ]
}

/// A running PPPoE site.
pub struct Site {
    pub daemon: Daemon,
    pub api: Client,
    pub radius: Option<FreeRadius>,
    pub topo: Topology,
}

/// What varies between sites.
pub struct SiteOptions {
    pub metrics_port: u16,
    /// `[pppoe]` lines beyond `interfaces`.
    pub pppoe: String,
    /// Extra `[radius]` lines.
    pub radius: String,
    /// No FreeRADIUS: `[radius]` points at a port nobody answers on.
    pub unreachable: bool,
    /// FreeRADIUS's users ([`users`] by default).
    pub users: Option<Vec<User>>,
    /// `[datapath] max_members` (64 by default).
    pub max_members: Option<u32>,
    /// Another build of collecte (the benchmarks' release build).
    pub binary: Option<std::path::PathBuf>,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            metrics_port: 9640,
            pppoe: "echo_interval = 1\necho_failures = 3\n".into(),
            radius: "interim_interval = 10\ntimeout = \"2s\"\nretries = 2\n".into(),
            unreachable: false,
            users: None,
            max_members: None,
            binary: None,
        }
    }
}

impl Site {
    pub fn start(tag: &str, opts: SiteOptions) -> Site {
        let topo = Topology::new(tag);
        let radius = (!opts.unreachable).then(|| {
            FreeRadius::builder()
                .users(opts.users.clone().unwrap_or_else(users))
                .netns(topo.router.name(), IpAddr::V4(Ipv4Addr::LOCALHOST))
                .start()
        });
        let dir = std::env::temp_dir().join(topo.router.name());
        std::fs::create_dir_all(&dir).expect("daemon directory");
        let token = dir.join("api.token");
        std::fs::write(&token, format!("{}\n", api::TOKEN)).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let api_port = loop {
            let p = api::free_port(topo.router.name());
            if p != opts.metrics_port {
                break p;
            }
        };
        let settings = Settings {
            metrics_port: opts.metrics_port,
            ..Settings::default()
        };
        let mut config = topo.config(&settings, &[alice()]);
        if let Some(n) = opts.max_members {
            // IPv6 /64s apart from each other take a few trie groups each.
            let groups = n * 8 + 64;
            config = config.replace(
                "max_members = 64\nroute_groups = 64",
                &format!("max_members = {n}\nroute_groups = {groups}"),
            );
        }
        config += &format!(
            "\n[api]\nlisten = \"127.0.0.1:{api_port}\"\ntoken_file = {:?}\n",
            token.display().to_string()
        );
        config += &format!("\n[pppoe]\ninterfaces = [\"acc1\"]\n{}\n", opts.pppoe);
        match &radius {
            Some(r) => config += &format!("\n{}\n", r.radius_section(&opts.radius)),
            None => {
                let secret = dir.join("radius.secret");
                std::fs::write(&secret, "nobody-answers\n").unwrap();
                std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
                config += &format!(
                    "\n[radius]\nservers = [\"127.0.0.1:1\"]\nsecret_file = {:?}\n{}\n",
                    secret.display().to_string(),
                    opts.radius
                );
            }
        }
        let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, opts.metrics_port));
        let mut daemon = match &opts.binary {
            Some(bin) => Daemon::start_binary(bin, &topo.router, &config, metrics),
            None => Daemon::start(&topo.router, &config, metrics),
        };
        daemon.wait_ready(1, Duration::from_secs(30));
        let api = Client::new(Endpoint::Tcp {
            ns: topo.router.name().to_string(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, api_port)),
        });
        // The uplink gateway resolved: the fast path forwards.
        let resolved = wait_for(Duration::from_secs(10), || {
            topo.router_neighbour(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        });
        assert!(resolved.is_some(), "the uplink gateway never resolved");
        Site {
            daemon,
            api,
            radius,
            topo,
        }
    }

    /// A client on the trunk (behind acc1) with MAC `02:00:00:00:5e:NN`
    /// and `tags` ((TPID, VLAN), outer first).
    pub fn client(&self, n: u8, tags: &[(u16, u16)]) -> PppoeClient {
        PppoeClient::open(self.topo.trunk.name(), "t0", [2, 0, 0, 0, 0x5e, n], tags)
    }

    /// The metrics now.
    pub fn metrics(&self) -> Metrics {
        self.daemon.metrics()
    }

    /// `GET /v1/sessions`'s sessions.
    pub fn sessions(&self) -> Vec<Value> {
        let r = self.api.get("/v1/sessions");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["sessions"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `GET /v1/sessions` has `n` sessions up.
    pub fn wait_up(&self, n: usize) -> Vec<Value> {
        let got = wait_for(Duration::from_secs(10), || {
            let s = self.sessions();
            let up: Vec<Value> = s.into_iter().filter(|s| s["state"] == "up").collect();
            (up.len() == n).then_some(up)
        });
        got.unwrap_or_else(|| {
            panic!(
                "not {n} session(s) up: {:?}\nlog:\n{}",
                self.sessions(),
                self.daemon.log()
            )
        })
    }

    /// The member `id` in `GET /v1/members/{id}`: its status and body.
    pub fn member(&self, id: &str) -> (u16, Value) {
        let r = self
            .api
            .get(&format!("/v1/members/{}", id.replace('@', "%40")));
        let v = if r.status == 200 {
            r.json()
        } else {
            Value::Null
        };
        (r.status, v)
    }

    /// Waits until member `id` is gone from the tables.
    pub fn wait_member_gone(&self, id: &str) {
        let gone = wait_for(Duration::from_secs(10), || {
            (self.member(id).0 == 404).then_some(())
        });
        assert!(
            gone.is_some(),
            "member {id} still in the tables\nlog:\n{}",
            self.daemon.log()
        );
    }

    /// Waits up to `timeout` for a detail record that `pred` accepts,
    /// while client `c` answers the router's echoes (a client that stops
    /// reading loses its session after `echo_failures` echoes).
    pub fn wait_detail(
        &self,
        c: &mut PppoeClient,
        timeout: Duration,
        pred: impl Fn(&DetailRecord) -> bool,
    ) -> DetailRecord {
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.radius().detail().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                std::time::Instant::now() < end,
                "no such accounting record within {timeout:?}; detail file:\n{:#?}\nlog:\n{}",
                self.radius().detail(),
                self.daemon.log()
            );
            let _ = c.recv_ip(Duration::from_millis(200));
        }
    }

    /// The FreeRADIUS of the site.
    pub fn radius(&self) -> &FreeRadius {
        self.radius.as_ref().expect("a FreeRADIUS")
    }
}

/// Discovery, LCP (PAP), PAP, IPCP: the address the session got.
pub fn dial_pap(c: &mut PppoeClient, user: &str, password: &str) -> Result<Ipv4Addr> {
    c.discover()?;
    c.lcp_pap(1492)?;
    if !c.pap(user, password)? {
        bail!("PAP refused");
    }
    Ok(c.ipcp()?.0)
}

/// Discovery, LCP (CHAP), CHAP, IPCP.
pub fn dial_chap(c: &mut PppoeClient, user: &str, password: &str) -> Result<Ipv4Addr> {
    c.discover()?;
    c.lcp(1492)?;
    if !c.chap(user, password)? {
        bail!("CHAP refused");
    }
    Ok(c.ipcp()?.0)
}
