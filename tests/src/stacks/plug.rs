//! Plugging a [`Stacks`] site's members in, as CPEs come up on running
//! lines.
use std::time::Duration;

use crate::topology::wait_for;

use super::{Gateway6, Stacks, create::sysctl, plan::*};

impl Stacks {
    /// Brings every member's link up, as a CPE comes up: addresses, routes
    /// (and the static neighbours of [`Options::static_neighbours`]); then
    /// waits for the bridge to forward on every port.
    pub fn plug(&self) {
        for m in &self.members {
            let ns = &m.ns;
            let conf = format!("net.ipv6.conf.{MEMBER_DEV}");
            let ra = match self.opts.gateway6 {
                Gateway6::Static => "0",
                Gateway6::FromRa => "2",
            };
            sysctl(
                ns,
                &[
                    &format!("{conf}.accept_ra={ra}"),
                    &format!("{conf}.forwarding=0"),
                    &format!("{conf}.accept_dad=0"),
                ],
            );
            ns.ip(&["link", "set", MEMBER_DEV, "up"]);
            let h4 = format!("{}/32", m.spec.host4);
            let h6 = format!("{}/128", m.spec.host6);
            ns.ip(&["addr", "add", &h4, "dev", MEMBER_DEV]);
            ns.ip(&["addr", "add", &h6, "dev", MEMBER_DEV, "nodad"]);
            ns.ip(&[
                "route",
                "add",
                "default",
                "via",
                &ACC_GW4.to_string(),
                "dev",
                MEMBER_DEV,
                "onlink",
            ]);
            if self.opts.gateway6 == Gateway6::Static {
                ns.ip(&[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &ACC_LL6.to_string(),
                    "dev",
                    MEMBER_DEV,
                ]);
            }
            if self.opts.static_neighbours && m.tagged() {
                for gw in [
                    ACC_GW4.to_string(),
                    ACC_LL6.to_string(),
                    ACC_GW6.to_string(),
                ] {
                    ns.ip(&[
                        "neigh",
                        "replace",
                        &gw,
                        "lladdr",
                        ACC0_MAC,
                        "dev",
                        MEMBER_DEV,
                        "nud",
                        "permanent",
                    ]);
                }
            }
        }
        let forwarding = wait_for(Duration::from_secs(10), || {
            let out = self.switch.exec("bridge", &["link", "show"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ports = text.lines().filter(|l| l.contains("master br0")).count();
            let fwd = text
                .lines()
                .filter(|l| l.contains("master br0") && l.contains("state forwarding"))
                .count();
            (ports == self.members.len() + 1 && fwd == ports).then_some(())
        });
        assert!(
            forwarding.is_some(),
            "the bridge does not forward on every port:\n{}",
            String::from_utf8_lossy(&self.switch.exec("bridge", &["link", "show"]).stdout)
        );
    }
}
