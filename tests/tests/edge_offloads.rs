//! Issue 13, "Tags that the NIC takes away": `collecte run` turns off the
//! VLAN offloads that would hide tags from XDP on every access interface
//! and tagged uplink (and tx VLAN insertion on a veth peer in its own
//! namespace), logs it, leaves an untagged uplink alone, turns them off
//! again when someone turns them back on, keeps the originals across a
//! restart, and `collecte stop --detach` restores them.
//!
//! ```text
//!  core                       router                           wire
//! ┌──────────┐   ┌────────────────────────────────────┐   ┌─────────┐
//! │ gw0      ├───┤ up0  untagged uplink (left alone)  │   │         │
//! │ gw1      ├───┤ up1  uplink, VLAN 200               │   │         │
//! └──────────┘   │ acc0 access ───────────────────────┼───┤ w0      │
//!                │ acc1 access ── acc1p (its peer,     │   └─────────┘
//!                │                 same namespace)     │
//!                └────────────────────────────────────┘
//! ```
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tests::{
    Netns,
    adverts::{feature_on, features},
    daemon::Daemon,
    topology::{Bpffs, wait_for},
};

const SEC: Duration = Duration::from_secs(1);
const METRICS: u16 = 9631;
/// As `ethtool -k` names them: `rx-vlan-offload` is the kernel's
/// `rx-vlan-hw-parse`, `tx-vlan-offload` its `tx-vlan-hw-insert`.
const RX: [&str; 2] = ["rx-vlan-offload", "rx-vlan-stag-hw-parse"];
const PEER_TX: [&str; 2] = ["tx-vlan-offload", "tx-vlan-stag-hw-insert"];

struct Site {
    core: Netns,
    router: Netns,
    wire: Netns,
    bpffs: Bpffs,
}

fn veth(a_ns: &Netns, a: &str, b_ns: &Netns, b: &str) {
    a_ns.ip(&[
        "link",
        "add",
        a,
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        b_ns.name(),
    ]);
    a_ns.ip(&["link", "set", a, "up"]);
    b_ns.ip(&["link", "set", b, "up"]);
}

fn site() -> Site {
    tests::require_root();
    let core = Netns::new("offl-core");
    let router = Netns::new("offl-rtr");
    let wire = Netns::new("offl-wire");
    veth(&router, "up0", &core, "gw0");
    veth(&router, "up1", &core, "gw1");
    veth(&router, "acc0", &wire, "w0");
    router.ip(&[
        "link", "add", "acc1", "type", "veth", "peer", "name", "acc1p",
    ]);
    router.ip(&["link", "set", "acc1", "up"]);
    router.ip(&["link", "set", "acc1p", "up"]);
    let bpffs = Bpffs::mount(router.name());
    Site {
        core,
        router,
        wire,
        bpffs,
    }
}

fn config(s: &Site) -> String {
    let state = std::env::temp_dir()
        .join(s.router.name())
        .join("state.json");
    format!(
        "[datapath]\npin_dir = \"{}/collecte\"\nmax_members = 64\nroute_groups = 64\nstate = \"{}\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:{METRICS}\"\n\n\
         [[uplink]]\ninterface = \"up0\"\ngateway4 = \"192.0.2.1\"\ngateway_mac = \"02:00:00:00:00:01\"\n\n\
         [[uplink]]\ninterface = \"up1\"\ngateway6 = \"2001:db8::1\"\ngateway_mac = \"02:00:00:00:00:02\"\nvlan = 200\n\n\
         [[access]]\ninterface = \"acc0\"\n\n[[access]]\ninterface = \"acc1\"\n\n\
         [[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/32\"]\n\n\
         [[member]]\nid = \"bob\"\ninterface = \"acc1\"\nc_vlan = 101\nprefixes = [\"198.51.100.16/29\"]\n",
        s.bpffs.path.display(),
        state.display()
    )
}

fn start(s: &Site) -> Daemon {
    let metrics = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), METRICS);
    let mut d = Daemon::start(&s.router, &config(s), metrics);
    d.wait_ready(2, 30 * SEC);
    d
}

fn all_on(ns: &Netns, dev: &str, names: &[&str]) -> bool {
    let f = features(ns, dev);
    names.iter().all(|n| f.get(*n).is_some_and(|(on, _)| *on))
}

fn all_off(ns: &Netns, dev: &str, names: &[&str]) -> bool {
    let f = features(ns, dev);
    names.iter().all(|n| f.get(*n).is_some_and(|(on, _)| !*on))
}

/// The log lines about interface `dev` (tracing writes `interface=dev`).
fn lines_about<'a>(log: &'a str, dev: &str) -> Vec<&'a str> {
    let key = format!("interface={dev} ");
    log.lines().filter(|l| l.contains(&key)).collect()
}

#[test]
fn offloads_go_off_at_attach_and_come_back_on_detach() {
    let s = site();
    // A veth starts with both receive offloads on, and tx insertion on.
    for dev in ["up0", "up1", "acc0", "acc1"] {
        assert!(
            all_on(&s.router, dev, &RX),
            "{dev}: {:?}",
            features(&s.router, dev)
        );
    }
    assert!(all_on(&s.router, "acc1p", &PEER_TX));

    let mut d = start(&s);
    for dev in ["up1", "acc0", "acc1"] {
        assert!(
            all_off(&s.router, dev, &RX),
            "{dev} still hides tags: {:?}\nlog:\n{}",
            features(&s.router, dev),
            d.log()
        );
        let log = d.log();
        let lines = lines_about(&log, dev);
        assert!(
            lines.iter().any(|l| l.contains("turned VLAN offloads off")
                && l.contains("rx-vlan-hw-parse,rx-vlan-stag-hw-parse")),
            "no log line of the change on {dev}:\n{}",
            d.log()
        );
    }
    // The untagged uplink is left as it was, and not even logged.
    assert!(
        all_on(&s.router, "up0", &RX),
        "{:?}",
        features(&s.router, "up0")
    );
    assert!(
        lines_about(&d.log(), "up0")
            .iter()
            .all(|l| !l.contains("offload"))
    );
    // acc1's peer is here: its tx VLAN insertion goes off, logged.
    assert!(
        all_off(&s.router, "acc1p", &PEER_TX),
        "{:?}",
        features(&s.router, "acc1p")
    );
    assert!(
        lines_about(&d.log(), "acc1p")
            .iter()
            .any(|l| l.contains("tx VLAN insertion off on the veth peer")
                && l.contains("peer_of=acc1")),
        "{}",
        d.log()
    );
    // acc0's and up1's peers are in other namespaces: untouched, and said
    // once.
    assert!(all_on(&s.wire, "w0", &PEER_TX));
    assert!(all_on(&s.core, "gw1", &PEER_TX));
    for dev in ["acc0", "up1"] {
        let log = d.log();
        let warned: Vec<&str> = lines_about(&log, dev)
            .into_iter()
            .filter(|l| l.contains("peer is in another network namespace"))
            .collect();
        assert_eq!(warned.len(), 1, "{dev}:\n{}", d.log());
    }
    let record = d.config_path.with_file_name("state.json.offloads");
    let text =
        std::fs::read_to_string(&record).unwrap_or_else(|e| panic!("{}: {e}", record.display()));
    for dev in ["acc0", "acc1", "acc1p", "up1"] {
        assert!(
            text.contains(&format!("\"{dev}\"")),
            "{dev} not in the record:\n{text}"
        );
    }
    assert!(!text.contains("\"up0\""), "{text}");

    // Turned back on by hand: off again at the next resync (the change is
    // a link event).
    let out = s.router.exec("ethtool", &["-K", "acc0", "rxvlan", "on"]);
    assert!(out.status.success());
    let off_again = wait_for(10 * SEC, || {
        (!feature_on(&s.router, "acc0", "rx-vlan-offload")).then_some(())
    });
    assert!(off_again.is_some(), "rxvlan stays on on acc0:\n{}", d.log());

    // A stop leaves them off (the datapath goes on forwarding); a restart
    // finds them off and keeps the originals recorded.
    d.stop(libc::SIGTERM, 10 * SEC);
    assert!(all_off(&s.router, "acc0", &RX));
    d.restart();
    d.wait_ready(2, 30 * SEC);
    d.stop(libc::SIGTERM, 10 * SEC);

    let out = d.stop_detach();
    for dev in ["up1", "acc0", "acc1"] {
        assert!(
            all_on(&s.router, dev, &RX),
            "{dev} not restored: {:?}\n{out}",
            features(&s.router, dev)
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("restored") && l.ends_with(&format!(" on {dev}"))),
            "{out}"
        );
    }
    assert!(all_on(&s.router, "acc1p", &PEER_TX), "{out}");
    assert!(all_on(&s.router, "up0", &RX));
    assert!(
        !record.exists(),
        "the record stays after the restore:\n{out}"
    );
    // Nothing left to restore: a second detach says nothing of it.
    let again = d.stop_detach();
    assert!(!again.contains("restored"), "{again}");
}
