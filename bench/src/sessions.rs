//! PPPoE session setup (`sessions`): how many sessions per second the
//! daemon sets up, RADIUS included, against a real FreeRADIUS, with XDP on
//! its interfaces (the site of the end-to-end tests, `tests::pppoe_site`).
//!
//! Each batch dials `per_batch` clients at once from the trunk behind the
//! access interface (PADI, PADO, PADR, PADS, LCP, PAP checked by RADIUS,
//! IPv6CP): the batch's rate is its sessions over the wall time from the
//! first PADI to the last client's IPv6CP, each session then seen up in
//! `GET /v1/sessions`. The clients hang up (PADT) and the tables empty
//! before the next batch. The anchor is FreeRADIUS alone: the same number
//! of Access-Requests at once, from collecte's RADIUS client.
//!
//! The figures are the medians over the batches.
use std::{
    path::PathBuf,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use collecte::radius::{AccessRequest, Client, Credentials, NasPortType};
use router_core::config::RadiusConfig;
use tests::{
    freeradius::User,
    pppoe::PppoeClient,
    pppoe_site::{Site, SiteOptions},
    topology::{in_netns, wait_for},
};

pub mod figures;
pub use figures::figures;

/// What the part measures.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Batches (the figures are their medians).
    pub batches: usize,
    /// Sessions dialled at once in each batch.
    pub per_batch: usize,
}

/// The measurements.
#[derive(Clone, Debug, Default)]
pub struct SessionsResult {
    /// Sessions per second, per batch.
    pub rates: Vec<f64>,
    /// Access-Requests per second from collecte's client alone, per batch.
    pub radius_rates: Vec<f64>,
}

const PASSWORD: &str = "bench-pass";

fn user(i: usize) -> String {
    format!("bench{i}@isp")
}

/// Runs the part with the daemon `binary`.
pub fn run(
    plan: &Plan,
    binary: PathBuf,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<SessionsResult> {
    let n = plan.per_batch;
    if n == 0 || n > 2048 {
        bail!("sessions: per_batch {n} is not within 1..=2048");
    }
    let users: Vec<User> = (0..n)
        .map(|i| {
            User::new(&user(i), PASSWORD)
                .framed_ipv6_prefix(&format!("2001:db8:{:x}::/64", 0x1800 + i))
        })
        .collect();
    log(&format!(
        "sessions: {} batches of {n} PPPoE sessions (PAP, FreeRADIUS, IPv6CP)",
        plan.batches
    ));
    let site = Site::start(
        "bench-pppoe",
        SiteOptions {
            metrics_port: 9690,
            pppoe: "echo_interval = 30\n".into(),
            radius: "timeout = \"3s\"\nretries = 3\n".into(),
            users: Some(users),
            max_members: Some((n + 16) as u32),
            binary: Some(binary),
            ..SiteOptions::default()
        },
    );
    let mut result = SessionsResult::default();
    for b in 0..plan.batches {
        let rate = batch(&site, n).with_context(|| format!("batch {b}"))?;
        let radius = radius_alone(&site, n).with_context(|| format!("RADIUS batch {b}"))?;
        log(&format!(
            "  batch {b}: {rate:.0} sessions/s; RADIUS alone {radius:.0} requests/s"
        ));
        result.rates.push(rate);
        result.radius_rates.push(radius);
    }
    Ok(result)
}

/// One batch: `n` clients dial at once; their rate in sessions/s.
fn batch(site: &Site, n: usize) -> anyhow::Result<f64> {
    let trunk = site.topo.trunk.name().to_string();
    let go = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let go = go.clone();
            let trunk = trunk.clone();
            std::thread::spawn(move || {
                let mac = [2, 0, 0, 0x5e, (i >> 8) as u8, i as u8];
                let mut c = PppoeClient::open(&trunk, "t0", mac, &[]);
                c.timeout = Duration::from_secs(20);
                go.wait();
                let dialled = (|| {
                    c.discover()?;
                    c.lcp_pap(1492)?;
                    if !c.pap(&user(i), PASSWORD)? {
                        bail!("{} refused", user(i));
                    }
                    c.ipv6cp()?;
                    Ok(Instant::now())
                })();
                (c, dialled)
            })
        })
        .collect();
    go.wait();
    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    let mut last = start;
    let mut failed = Vec::new();
    for t in threads {
        let (c, dialled) = t.join().map_err(|_| anyhow::anyhow!("a client panicked"))?;
        match dialled {
            Ok(at) => last = last.max(at),
            Err(e) => failed.push(format!("{e:#}")),
        }
        clients.push(c);
    }
    let elapsed = last.duration_since(start).as_secs_f64();
    let up = wait_for(Duration::from_secs(20), || {
        let up = site
            .sessions()
            .iter()
            .filter(|s| s["state"] == "up")
            .count();
        (up == n).then_some(())
    });
    // Hang up, and wait for the tables to empty, before anything fails.
    for c in &mut clients {
        c.padt();
    }
    let empty = wait_for(Duration::from_secs(30), || {
        site.sessions().is_empty().then_some(())
    });
    if !failed.is_empty() {
        bail!("{} of {n} sessions failed: {}", failed.len(), failed[0]);
    }
    if up.is_none() {
        bail!("not every session showed up in GET /v1/sessions");
    }
    if empty.is_none() {
        bail!("sessions left after the PADTs");
    }
    Ok(n as f64 / elapsed)
}

/// `n` Access-Requests at once from collecte's RADIUS client, in the
/// router's namespace: requests/s.
fn radius_alone(site: &Site, n: usize) -> anyhow::Result<f64> {
    let radius = site.radius();
    let config = RadiusConfig {
        servers: vec![radius.auth_addr().to_string()],
        accounting_servers: vec![radius.acct_addr().to_string()],
        secret_file: radius.secret_file(),
        nas_identifier: "bench".into(),
        interim_interval: 300,
        timeout: router_core::config::Seconds(Duration::from_secs(3)),
        retries: 3,
    };
    let secret = radius.secret().as_bytes().to_vec();
    in_netns(site.topo.router.name(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let client = Arc::new(Client::new(&config, secret)?);
            let start = Instant::now();
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let req = AccessRequest {
                            user: user(i),
                            auth: Credentials::Pap {
                                password: PASSWORD.as_bytes().to_vec(),
                            },
                            nas_port_id: "acc1".into(),
                            nas_port_type: NasPortType::Ethernet,
                            calling_station_id: "02:00:00:5e:00:00".into(),
                        };
                        client.authenticate(&req).await
                    })
                })
                .collect();
            for t in tasks {
                t.await??;
            }
            Ok(n as f64 / start.elapsed().as_secs_f64())
        })
    })
}
