//! Tags that the NIC takes away: at attach, every access interface and
//! tagged uplink is made to hand XDP its frames' VLAN tags (see
//! [`super::offload`] for which offloads and why), each change logged and
//! recorded ([`super::record`]); `collecte stop --detach` puts them back
//! ([`restore`]).
//!
//! The RX-metadata kfunc (`bpf_xdp_metadata_rx_vlan_tag`) would let the
//! program read a stripped tag instead, but it needs a device-bound
//! program, one per interface, which aya 0.14 cannot load: offloads are
//! turned off instead. A veth whose peer lives in another namespace
//! cannot be reached from here: that is warned about, once.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use router_core::config::Config;
use tracing::{info, warn};

use super::{
    ethtool::{Ethtool, EthtoolError},
    offload::{PEER_TX_TAG_FEATURES, RX_TAG_FEATURES, fixed_consequence, plan},
    record::{self, RecordError},
};
use crate::netlink::{LinkPeer, Snapshot};

/// The offloads could not be checked, changed or recorded.
#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    #[error(transparent)]
    Ethtool(#[from] EthtoolError),
    #[error(
        "cannot record the VLAN offloads collecte turns off (so that `collecte stop --detach` can restore them): {0}"
    )]
    Record(#[from] RecordError),
}

/// An interface whose frames' tags XDP must see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub interface: String,
    /// `access` or `tagged uplink`, for the logs.
    pub role: &'static str,
}

/// The access interfaces and the tagged uplinks of `config` (an untagged
/// uplink is left as it is).
pub fn targets(config: &Config) -> Vec<Target> {
    let access = config.access.iter().map(|a| Target {
        interface: a.interface.clone(),
        role: "access",
    });
    let uplinks = config
        .uplinks
        .iter()
        .filter(|u| u.vlan.is_some())
        .map(|u| Target {
            interface: u.interface.clone(),
            role: "tagged uplink",
        });
    access.chain(uplinks).collect()
}

/// Keeps the targets' offloads off, and remembers what it warned about.
pub struct TagOffloads {
    record: PathBuf,
    namespace: String,
    /// (interface, ifindex, what) already warned about.
    warned: BTreeSet<(String, u32, String)>,
}

impl TagOffloads {
    /// For a daemon whose state file is `state`.
    pub fn new(state: &Path) -> Result<TagOffloads, TagsError> {
        Ok(TagOffloads {
            record: record::path_for(state),
            namespace: record::namespace_id()?,
            warned: BTreeSet::new(),
        })
    }

    /// Where the changes are recorded.
    pub fn record_path(&self) -> &Path {
        &self.record
    }

    fn warn_once(&mut self, interface: &str, ifindex: u32, what: &str) -> bool {
        self.warned
            .insert((interface.to_string(), ifindex, what.to_string()))
    }

    /// Turns off, on every target present in `system`, the offloads that
    /// hide tags from XDP (and on a veth peer in this namespace, its tx
    /// VLAN insertion); logs each change, and warns once about what it
    /// cannot change. Cheap when nothing changes (a few ioctls per
    /// interface): run it after every resync, it catches new interfaces
    /// and offloads turned back on by hand. Fails only when a change
    /// cannot be recorded (nothing is changed then).
    pub fn ensure(&mut self, targets: &[Target], system: &Snapshot) -> Result<(), TagsError> {
        let eth = Ethtool::open()?;
        for t in targets {
            let Some(link) = system.links.get(&t.interface) else {
                continue;
            };
            self.turn_off(
                &eth,
                &t.interface,
                link.ifindex,
                t.role,
                RX_TAG_FEATURES,
                None,
            )?;
            self.veth_peer(&eth, t, link.ifindex, system)?;
        }
        Ok(())
    }

    /// Turns `unwanted` off on `interface`, recording the originals first.
    fn turn_off(
        &mut self,
        eth: &Ethtool,
        interface: &str,
        ifindex: u32,
        role: &str,
        unwanted: &[&str],
        peer_of: Option<&str>,
    ) -> Result<(), TagsError> {
        let features = match eth.features(interface) {
            Ok(f) => f,
            Err(e) => {
                if self.warn_once(interface, ifindex, "features") {
                    warn!(interface = %interface, error = %e, "cannot read the interface's offload features; if the NIC strips VLAN tags, tagged members will not work on it");
                }
                return Ok(());
            }
        };
        let p = plan(&features, unwanted);
        for f in &p.fixed_on {
            if self.warn_once(interface, ifindex, f) {
                warn!(interface = %interface, role = %role, feature = %f, "offload is on and cannot be changed ([fixed]): {}", fixed_consequence(f));
            }
        }
        if p.turn_off.is_empty() {
            return Ok(());
        }
        let ns = self.namespace.clone();
        record::update(&self.record, |r| {
            for f in &p.turn_off {
                r.note(&ns, interface, f, true);
            }
        })?;
        let off: Vec<(&str, bool)> = p.turn_off.iter().map(|f| (f.as_str(), false)).collect();
        match eth.set_features(interface, &off) {
            Ok(()) => match peer_of {
                None => info!(
                    interface = %interface, role = %role,
                    features = %p.turn_off.join(","),
                    "turned VLAN offloads off, so that XDP sees the frames' tags; `collecte stop --detach` turns them back on"
                ),
                Some(of) => info!(
                    interface = %interface, peer_of = %of,
                    features = %p.turn_off.join(","),
                    "turned tx VLAN insertion off on the veth peer, so that the tags it sends reach XDP in the frames; `collecte stop --detach` turns it back on"
                ),
            },
            Err(e) => {
                if self.warn_once(interface, ifindex, "set") {
                    warn!(interface = %interface, role = %role, error = %e, "cannot turn VLAN offloads off: tagged members may not work on this interface");
                }
            }
        }
        Ok(())
    }

    /// A veth's peer decides whether tags reach this side's XDP: turns its
    /// tx VLAN insertion off when it is in this namespace, warns once when
    /// it is not (netlink says where it is: `IFLA_LINK_NETNSID`).
    fn veth_peer(
        &mut self,
        eth: &Ethtool,
        t: &Target,
        ifindex: u32,
        system: &Snapshot,
    ) -> Result<(), TagsError> {
        if eth.driver(&t.interface).ok().as_deref() != Some("veth") {
            return Ok(());
        }
        let here = match system.link_peers.get(&ifindex) {
            Some(LinkPeer {
                ifindex: peer,
                elsewhere: false,
            }) => system
                .links
                .iter()
                .find(|(_, l)| l.ifindex == *peer)
                .map(|(name, _)| (name.clone(), *peer)),
            _ => None,
        };
        match here {
            Some((name, peer)) => self.turn_off(
                eth,
                &name,
                peer,
                "veth peer",
                PEER_TX_TAG_FEATURES,
                Some(&t.interface),
            ),
            None => {
                if self.warn_once(&t.interface, ifindex, "veth peer") {
                    warn!(
                        interface = %t.interface, role = %t.role,
                        "this veth's peer is in another network namespace, out of collecte's reach: turn its tx VLAN insertion off there (ethtool -K PEER txvlan off tx-vlan-stag-hw-insert off), or the outer tag of tagged members' frames never reaches XDP"
                    );
                }
                Ok(())
            }
        }
    }
}

/// What [`restore`] did, one line per interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub lines: Vec<String>,
}

/// Turns back on what the daemon (of the state file `state`) turned off in
/// this namespace, and removes it from the record. An interface that no
/// longer exists is dropped from the record with a line saying so; one
/// that refuses stays recorded.
pub fn restore(state: &Path) -> Result<Restored, TagsError> {
    let path = record::path_for(state);
    let ns = record::namespace_id()?;
    let recorded = record::read(&path)?
        .namespaces
        .remove(&ns)
        .unwrap_or_default();
    let mut out = Restored::default();
    if recorded.is_empty() {
        return Ok(out);
    }
    let eth = Ethtool::open()?;
    let mut done = Vec::new();
    for (interface, features) in &recorded {
        let wanted: Vec<(&str, bool)> = features.iter().map(|(f, v)| (f.as_str(), *v)).collect();
        let names = features.keys().cloned().collect::<Vec<_>>().join(",");
        if ifindex(interface).is_none() {
            out.lines.push(format!(
                "interface {interface} no longer exists: {names} not restored"
            ));
            done.push(interface.clone());
            continue;
        }
        match eth.set_features(interface, &wanted) {
            Ok(()) => {
                out.lines.push(format!("restored {names} on {interface}"));
                done.push(interface.clone());
            }
            Err(e) => out.lines.push(format!(
                "cannot restore {names} on {interface}: {e}; still recorded in {}",
                path.display()
            )),
        }
    }
    record::update(&path, |r| {
        if let Some(mine) = r.namespaces.get_mut(&ns) {
            for i in &done {
                mine.remove(i);
            }
            if mine.is_empty() {
                r.namespaces.remove(&ns);
            }
        }
    })?;
    Ok(out)
}

fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
