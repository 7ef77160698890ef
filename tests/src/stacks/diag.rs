//! What a failing test of a [`Stacks`] site prints: the state of every
//! namespace (links with their counters, neighbours, routes), the switch's
//! forwarding database, the members' tc counters, and the daemon's
//! non-zero datapath reasons, member counters and last log lines.
use crate::{Netns, daemon::Daemon};

use super::{MEMBER_DEV, Stacks};

/// `program args` in `ns`, with its output (stderr too), as a section.
fn section(ns: &Netns, program: &str, args: &[&str]) -> String {
    let out = ns.exec(program, args);
    let mut s = format!("--- {}: {program} {}\n", ns.name(), args.join(" "));
    s += &String::from_utf8_lossy(&out.stdout);
    s += &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        s += &format!("({})\n", out.status);
    }
    s
}

impl Stacks {
    /// Everything needed to debug a failed step (see the module's doc).
    pub fn diagnose(&self, daemon: Option<&Daemon>) -> String {
        let mut s = String::from("\n======== site state ========\n");
        s += &section(&self.router, "ip", &["-s", "link"]);
        s += &section(&self.router, "ip", &["addr"]);
        s += &section(&self.router, "ip", &["neigh"]);
        s += &section(&self.switch, "ip", &["-s", "link"]);
        s += &section(
            &self.switch,
            "bridge",
            &["fdb", "show", "br", "br0", "dynamic"],
        );
        s += &section(&self.core, "ip", &["-s", "link", "show", "gw0"]);
        s += &section(&self.core, "ip", &["neigh"]);
        for m in &self.members {
            s += &section(&m.ns, "ip", &["-s", "link", "show", MEMBER_DEV]);
            s += &section(&m.ns, "ip", &["addr", "show", MEMBER_DEV]);
            s += &section(&m.ns, "ip", &["neigh"]);
            s += &section(&m.ns, "ip", &["route"]);
            s += &section(&m.ns, "ip", &["-6", "route"]);
            s += &format!(
                "--- {} tc ({}): {:?}\n",
                m.id(),
                m.tc.place(),
                m.tc.counts()
            );
        }
        if let Some(d) = daemon {
            s += &daemon_state(d);
        }
        s
    }
}

/// The daemon's non-zero datapath reasons and member counters, and the
/// end of its log.
pub fn daemon_state(d: &Daemon) -> String {
    let mut s = String::from("--- collecte /metrics (non-zero datapath and member samples)\n");
    match d.try_scrape() {
        Ok(text) => {
            for line in text.lines().filter(|l| {
                (l.starts_with("collecte_datapath_packets_total")
                    || l.starts_with("collecte_member_"))
                    && !l.ends_with(" 0")
            }) {
                s += line;
                s.push('\n');
            }
        }
        Err(e) => s += &format!("(scrape failed: {e})\n"),
    }
    let log = d.log();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    s += "--- collecte log (last 30 lines)\n";
    for l in tail.iter().rev() {
        s += l;
        s.push('\n');
    }
    s
}
