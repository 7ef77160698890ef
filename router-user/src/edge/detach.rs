//! The edge's part of `collecte stop --detach`: once the fast path is
//! gone, a final router advertisement with a Router Lifetime of 0 on each
//! attachment where a member with an IPv6 prefix lives (RFC 4861 6.2.5),
//! so that members stop sending through a router that no longer forwards;
//! then the VLAN offloads put back ([`super::tags::restore`]).
//!
//! A daemon's plain stop (SIGTERM) sends none: the datapath goes on
//! forwarding, and the router stays the members' default router.
use std::{collections::BTreeSet, time::Duration};

use router_core::{config::Config, store::MemberView};

use super::ra::{Advert, Tags, attachment_mtu};
use crate::{netlink::Snapshot, packet_socket::PacketSocket};

/// Final advertisements a second, at most.
pub const FINAL_RATE: u64 = 20_000;

/// What the final advertisements did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalAdverts {
    /// Advertisements sent, per access interface (in the configuration's
    /// order; interfaces without an IPv6 member left out).
    pub sent: Vec<(String, u64)>,
    /// Interfaces skipped or failed, with why.
    pub problems: Vec<String>,
}

/// Sends a final advertisement on every attachment of `members` with an
/// IPv6 prefix, on the access interfaces of `config` as `system` has them.
pub fn final_adverts<'a>(
    config: &Config,
    members: impl Iterator<Item = MemberView<'a>>,
    system: &Snapshot,
) -> FinalAdverts {
    // (access interface's index in the configuration, tags).
    let mut attachments: BTreeSet<(usize, Tags)> = BTreeSet::new();
    for m in members {
        if !m.prefixes().any(|p| matches!(p, ipnet::IpNet::V6(_))) {
            continue;
        }
        let Some(i) = config
            .access
            .iter()
            .position(|a| a.interface == m.interface())
        else {
            continue;
        };
        let (s_vlan, c_vlan) = m.tags();
        attachments.insert((i, Tags { s_vlan, c_vlan }));
    }
    let mut out = FinalAdverts::default();
    let batch = (FINAL_RATE / 100).max(1);
    let mut in_batch = 0;
    for (i, access) in config.access.iter().enumerate() {
        let name = &access.interface;
        let mine: Vec<Tags> = attachments
            .range(
                (i, Tags::default())
                    ..=(
                        i,
                        Tags {
                            s_vlan: u16::MAX,
                            c_vlan: u16::MAX,
                        },
                    ),
            )
            .map(|(_, t)| *t)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let Some(link) = system.links.get(name) else {
            out.problems.push(format!("{name}: no such interface"));
            continue;
        };
        let Some(source) = system.link_local6.get(&link.ifindex).copied() else {
            out.problems
                .push(format!("{name}: no IPv6 link-local address"));
            continue;
        };
        if !link.up {
            out.problems.push(format!("{name}: down"));
            continue;
        }
        let socket = match PacketSocket::sender(name, link.ifindex) {
            Ok(s) => s,
            Err(e) => {
                out.problems.push(e.to_string());
                continue;
            }
        };
        let mut sent = 0;
        let mut failed = None;
        for tags in mine {
            let advert = Advert {
                mac: link.mac,
                source,
                tags,
                hop_limit: config.edge.ra_hop_limit,
                lifetime: 0,
                mtu: attachment_mtu(link.mtu, tags),
            };
            match socket.send(&advert.frame()) {
                Ok(()) => sent += 1,
                Err(e) => failed = Some(e.to_string()),
            }
            in_batch += 1;
            if in_batch == batch {
                // Paced: FINAL_RATE a second at most.
                std::thread::sleep(Duration::from_millis(10));
                in_batch = 0;
            }
        }
        out.sent.push((name.clone(), sent));
        if let Some(e) = failed {
            out.problems.push(e);
        }
    }
    out
}
