//! A router in a namespace of its own, with the real XDP program loaded twice
//! (the forwarding instance and the tracer's), fed from a configuration, for
//! table-driven fixture tests run through `BPF_PROG_TEST_RUN`.
use std::collections::BTreeMap;

use collecte::{
    datapath::{Datapath, Mode, Sizing},
    netlink,
};
use router_common::{MemberCounters, reason};
use router_core::{config::Config, tables::Tables};

use crate::{Netns, frames};

/// The interfaces every fixture topology has, as (name, MAC, MTU): veth
/// pairs whose peers (`<name>p`) stay idle.
pub const IFACES: &[(&str, &str, u32)] = &[
    ("up0", "02:00:00:00:00:10", 1500),
    ("up1", "02:00:00:00:00:11", 1500),
    ("acc0", "02:00:00:00:00:20", 1500),
    ("acc1", "02:00:00:00:00:21", 1508),
];

/// Addresses of the router itself.
pub const ROUTER_ADDRESSES: &[(&str, &str)] = &[
    ("up0", "192.0.2.2/24"),
    ("up0", "2001:db8::2/64"),
    ("acc0", "198.51.100.1/32"),
    ("acc0", "2001:db8:ff::1/128"),
    ("acc0", "fe80::1/64"),
    ("acc1", "198.51.100.2/32"),
    ("acc1", "2001:db8:ff::2/128"),
    ("acc1", "fe80::1/64"),
];

/// One row of a fixture table.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub name: String,
    pub ingress: &'static str,
    pub input: Vec<u8>,
    /// Expected XDP action (see `collecte::datapath::action`).
    pub action: u32,
    /// Expected reason (see `router_common::reason`).
    pub reason: u32,
    /// Expected frame after the program; for pass and drop, the input.
    pub output: Vec<u8>,
    /// Expected egress interface of forwards.
    pub egress: Option<&'static str>,
    /// Expected change of each member's counters (all others: none).
    pub members: Vec<(&'static str, MemberCounters)>,
}

pub struct Harness {
    /// Dropped last: the thread leaves and removes the namespace.
    _ns: Netns,
    forward: Datapath,
    trace: Datapath,
    tables: Tables,
    ifindex: BTreeMap<String, u32>,
    slots: BTreeMap<String, u32>,
    /// The forwarding instance's CPE MAC reports, once taken.
    learn_events: Option<collecte::datapath::LearnEvents>,
}

impl Harness {
    /// Creates the namespace and interfaces, enters it, and loads both
    /// program instances with the tables of `config_toml`.
    pub fn new(tag: &str, config_toml: &str) -> Harness {
        Self::with_slots(tag, config_toml, BTreeMap::new())
    }

    /// [`Harness::new`], with the member slots given (member id → slot), as
    /// a daemon restarting over its pins gives them back.
    pub fn with_slots(
        tag: &str,
        config_toml: &str,
        member_slots: BTreeMap<String, u32>,
    ) -> Harness {
        crate::require_root();
        let mut ns = Netns::new(tag);
        for (name, mac, mtu) in IFACES {
            let peer = format!("{name}p");
            ns.veth(name, mac, &peer, "02:00:00:00:ee:ee");
            ns.ip(&["link", "set", name, "mtu", &mtu.to_string()]);
        }
        for (dev, addr) in ROUTER_ADDRESSES {
            ns.ip(&["addr", "add", addr, "dev", dev, "nodad"]);
        }
        ns.enter();
        let config = Config::parse(config_toml).expect("fixture configuration is valid");
        let system = netlink::snapshot_blocking().expect("netlink snapshot");
        let mut tables = Tables::with_slots(
            config.datapath.max_members,
            config.datapath.route_groups(),
            member_slots.clone(),
            BTreeMap::new(),
        );
        tables
            .set_interfaces(&config, &system.links, &BTreeMap::new())
            .expect("interfaces");
        tables.set_link_addresses(&system.link_addresses);
        tables.sync(&config.members).expect("tables");
        for (id, slot) in &member_slots {
            assert_eq!(tables.slot(id), Some(*slot), "member {id} got its slot");
        }
        tables.set_locals(&system.addresses).expect("locals");
        let sizing = Sizing {
            max_members: config.datapath.max_members,
            route_groups: config.datapath.route_groups(),
        };
        let full = tables.full_state().into_owned();
        let mut ifindex = BTreeMap::new();
        let mut slots = BTreeMap::new();
        let mut load = |mode| {
            let mut dp = Datapath::load(sizing, mode).expect("program loads and verifies");
            for (name, iface) in tables.interfaces() {
                dp.set_iface(iface.slot, name, &iface.info, None)
                    .expect("interface installs");
                dp.set_iface_addrs(iface.slot, &iface.addrs, &iface.gateways)
                    .expect("interface addresses install");
                ifindex.insert(name.clone(), iface.info.ifindex);
                slots.insert(name.clone(), iface.slot);
            }
            dp.apply_full(&full).expect("tables apply");
            dp
        };
        let forward = load(Mode::Forward);
        let trace = load(Mode::Trace);
        // Interfaces of the topology that the configuration leaves out: their
        // frames meet the datapath's "unknown interface" slot 0. When exactly
        // one is left out, slot 0's counters are checked under its name, so
        // rows can use it as their ingress; otherwise under "(unknown)".
        let unconfigured: Vec<&str> = IFACES
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| !slots.contains_key(*name))
            .collect();
        for name in &unconfigured {
            let link = system.links.get(*name).expect("topology interface exists");
            ifindex.insert(name.to_string(), link.ifindex);
        }
        let unknown = match unconfigured.as_slice() {
            [only] => only.to_string(),
            _ => "(unknown)".to_string(),
        };
        slots.insert(unknown, router_common::IFACE_SLOT_UNKNOWN);
        Harness {
            _ns: ns,
            forward,
            trace,
            tables,
            ifindex,
            slots,
            learn_events: None,
        }
    }

    fn all_counters(
        &self,
    ) -> (
        BTreeMap<String, [u64; reason::COUNT as usize]>,
        BTreeMap<String, MemberCounters>,
    ) {
        let ifaces = self
            .slots
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    self.forward.iface_counters(*s).expect("iface counters"),
                )
            })
            .collect();
        // All at once, as a scrape reads them; each also on its own.
        let slots: Vec<u32> = self.tables.members().map(|(slot, _)| slot).collect();
        let all = self
            .forward
            .member_counters_many(&slots)
            .expect("member counters");
        let members = self
            .tables
            .members()
            .zip(all)
            .map(|((slot, m), c)| {
                let id = m.id();
                let alone = self.forward.member_counters(slot).expect("member counters");
                assert_eq!(
                    c, alone,
                    "member {id}: counters read alone and with the others"
                );
                (id.to_string(), c)
            })
            .collect();
        (ifaces, members)
    }

    /// Makes the member set `members`: the tables' changes applied to both
    /// instances, as the daemon applies them (into the inactive half, then
    /// a flip).
    pub fn sync_members(&mut self, members: &[router_core::member::Member]) {
        self.tables.sync(members).expect("members fit");
        let changes = self.tables.take_changes();
        self.trace.apply(changes.clone()).expect("tracer apply");
        self.forward.apply(changes).expect("apply");
    }

    /// Makes members PPPoE members (`member_flags::PPPOE`, in both halves
    /// of both instances): those of `sessions` (member id, session id,
    /// MRU) with their session in the datapath (keyed by the member's
    /// attachment and MAC), those of `without` with none.
    pub fn pppoe(&mut self, sessions: &[(&str, u16, u16)], without: &[&str]) {
        let full = self.tables.full_state().into_owned();
        let ids = sessions
            .iter()
            .map(|(id, _, _)| *id)
            .chain(without.iter().copied());
        let mut members = Vec::new();
        for id in ids {
            let slot = self
                .tables
                .slot(id)
                .expect("a PPPoE member of the configuration");
            let (_, mut info) = *full
                .members
                .iter()
                .find(|(s, _)| *s == slot)
                .expect("the member's info");
            info.flags |= router_common::member_flags::PPPOE;
            members.push((slot, info));
        }
        let changes = router_core::changes::Changes {
            members,
            uplinks: full.uplinks,
            edge: full.edge,
            ..Default::default()
        };
        for dp in [&mut self.forward, &mut self.trace] {
            // Twice: into both halves.
            dp.apply(changes.clone()).expect("PPPoE flag applies");
            dp.apply(changes.clone()).expect("PPPoE flag applies");
        }
        for (id, session_id, mru) in sessions {
            let (key, session) = self.session_of(id, *session_id, *mru);
            for dp in [&mut self.forward, &mut self.trace] {
                dp.put_session(key, session).expect("put_session");
                // Idempotent.
                dp.put_session(key, session).expect("put_session again");
            }
        }
    }

    /// The datapath key and value of member `id`'s session `session_id`.
    fn session_of(
        &mut self,
        id: &str,
        session_id: u16,
        mru: u16,
    ) -> (
        router_common::pppoe::SessionKey,
        router_common::pppoe::Session,
    ) {
        let slot = self.tables.slot(id).expect("member");
        let full = self.tables.full_state();
        let (_, info) = *full
            .members
            .iter()
            .find(|(s, _)| *s == slot)
            .expect("the member's info");
        let key = router_common::pppoe::SessionKey {
            iface: info.iface as u16,
            s_vlan: info.s_vlan,
            c_vlan: info.c_vlan,
            session_id,
            mac: info.mac,
            _pad: [0; 2],
        };
        let session = router_common::pppoe::Session {
            member: slot,
            mru,
            _pad: 0,
        };
        (key, session)
    }

    /// The forwarding instance's sessions; the tracer's must be the same.
    pub fn sessions(
        &self,
    ) -> Vec<(
        router_common::pppoe::SessionKey,
        router_common::pppoe::Session,
    )> {
        let all = self.forward.sessions().expect("sessions");
        assert_eq!(all, self.trace.sessions().expect("tracer sessions"));
        all
    }

    /// Removes member `id`'s session `session_id` from both instances.
    pub fn remove_session(&mut self, id: &str, session_id: u16) {
        let (key, _) = self.session_of(id, session_id, 0);
        for dp in [&mut self.forward, &mut self.trace] {
            dp.remove_session(&key).expect("remove_session");
        }
    }

    /// Runs `frame` arriving on `ingress` through the forwarding instance:
    /// the action and the frame as it leaves.
    pub fn run(&mut self, ingress: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        let (out, _) = self
            .forward
            .run(frame, self.ifindex[ingress])
            .expect("test run");
        (out.action, out.frame)
    }

    /// The CPE MACs the forwarding instance reported since the last call,
    /// as (member id, MAC).
    pub fn learn_events(&mut self) -> Vec<(String, [u8; 6])> {
        if self.learn_events.is_none() {
            self.learn_events = self.forward.take_learn_events();
        }
        let ring = self.learn_events.as_mut().expect("LEARN_EVENTS");
        ring.drain()
            .into_iter()
            .map(|(slot, mac)| {
                let id = self.tables.id(slot).expect("a member's slot");
                (id.to_string(), mac)
            })
            .collect()
    }

    /// Member `id`'s CPE sends from `mac`: the tables learn it, and both
    /// instances get the change, as the daemon does with a report.
    pub fn learn(&mut self, id: &str, mac: [u8; 6]) -> router_core::tables::learned::Learned {
        let slot = self.tables.slot(id).expect("member");
        let learned = self.tables.learn(slot, mac);
        let changes = self.tables.take_changes();
        self.trace.apply(changes.clone()).expect("tracer apply");
        self.forward.apply(changes).expect("apply");
        learned
    }

    /// The forwarding instance's counter of `reason` on interface `iface`,
    /// summed over the CPUs.
    pub fn counter(&self, iface: &str, reason: u32) -> u64 {
        self.forward
            .iface_counters(self.slots[iface])
            .expect("iface counters")[reason as usize]
    }

    /// Runs one fixture through both instances; returns what went wrong.
    pub fn check(&mut self, f: &Fixture) -> Vec<String> {
        let mut errors = Vec::new();
        let ifindex = self.ifindex[f.ingress];
        let (if_before, m_before) = self.all_counters();
        let out = match self.forward.run(&f.input, ifindex) {
            Ok((out, _)) => out,
            Err(e) => return vec![format!("the test run failed: {e}")],
        };
        let (if_after, m_after) = self.all_counters();
        if out.action != f.action {
            errors.push(format!("action {} (expected {})", out.action, f.action));
        }
        if out.frame != f.output {
            errors.push(format!(
                "output frame differs\n   got      {}\n   expected {}",
                hex(&out.frame),
                hex(&f.output)
            ));
        }
        if f.action == collecte::datapath::action::REDIRECT {
            let l3 = l3_offset(&out.frame);
            frames::assert_ipv4_checksum(&out.frame, l3);
        }
        // An answer's checksums and lengths, checked on their own.
        if out.action == collecte::datapath::action::TX {
            let padded = f.reason == reason::REPLY_ARP || f.reason == reason::REPLY_ECHO;
            if let Err(e) = crate::wire::check_frame(&out.frame, true, padded) {
                errors.push(format!("the answer is inconsistent: {e}"));
            }
        }
        // Interface counters: exactly one step, on the ingress interface.
        for (name, after) in &if_after {
            for (r, a) in after.iter().enumerate() {
                let want = u64::from(name == f.ingress && r as u32 == f.reason);
                let got = a - if_before[name][r];
                if got != want {
                    errors.push(format!(
                        "counter {name}/{:?} moved by {got} (expected {want})",
                        reason::NAMES[r]
                    ));
                }
            }
        }
        for (id, after) in &m_after {
            let before = &m_before[id];
            let got = MemberCounters {
                rx_packets: after.rx_packets - before.rx_packets,
                rx_bytes: after.rx_bytes - before.rx_bytes,
                tx_packets: after.tx_packets - before.tx_packets,
                tx_bytes: after.tx_bytes - before.tx_bytes,
                spoofed_packets: after.spoofed_packets - before.spoofed_packets,
            };
            let want = f
                .members
                .iter()
                .find(|(m, _)| m == id)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            if got != want {
                errors.push(format!(
                    "member {id} counters moved by {got:?} (expected {want:?})"
                ));
            }
        }
        // The tracer's instance agrees, says why, and counts nothing.
        let (t_out, verdict) = self.trace.run(&f.input, ifindex).expect("trace run");
        let verdict = verdict.expect("trace verdict");
        if t_out.action != out.action || t_out.frame != out.frame {
            errors.push("the tracer's instance did something else".into());
        }
        if verdict.reason != f.reason {
            errors.push(format!(
                "reason {:?} (expected {:?})",
                reason::NAMES.get(verdict.reason as usize),
                reason::NAMES[f.reason as usize]
            ));
        }
        if let Some(e) = f.egress
            && verdict.egress != self.slots[e]
        {
            errors.push(format!("egress slot {} (expected {e})", verdict.egress));
        }
        let (if_after2, m_after2) = self.all_counters();
        if if_after2 != if_after || m_after2 != m_after {
            errors.push("the tracer's instance moved a counter".into());
        }
        errors
    }

    /// Runs a table; panics listing every failed row.
    pub fn run_table(&mut self, table: &[Fixture]) {
        let mut failures = Vec::new();
        for f in table {
            let errors = self.check(f);
            if !errors.is_empty() {
                failures.push(format!("{}:\n  {}", f.name, errors.join("\n  ")));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} fixtures failed:\n{}",
            failures.len(),
            table.len(),
            failures.join("\n")
        );
    }
}

fn l3_offset(frame: &[u8]) -> usize {
    let mut off = 12;
    while frame.len() >= off + 2 {
        let t = u16::from_be_bytes([frame[off], frame[off + 1]]);
        if t == frames::ETH_P_8021Q || t == frames::ETH_P_8021AD || t == frames::ETH_P_9100 {
            off += 4;
        } else {
            break;
        }
    }
    off + 2
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
