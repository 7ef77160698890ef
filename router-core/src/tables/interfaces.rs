//! The configured interfaces as the datapath sees them: their slots (kept
//! by name), what the kernel says of them ([`LinkInfo`]), and the uplinks
//! upstream traffic leaves by.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use router_common::{GatewayKey, IfaceAddrs, IfaceInfo, MAX_IFACES, iface_flags, kind};

use crate::changes::Uplinks;
use crate::config::Config;

/// What the datapath needs to know of a kernel interface (the daemon reads
/// it over netlink; the tracer may make it up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub up: bool,
}

/// A configured interface and what the datapath knows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub slot: u32,
    pub info: IfaceInfo,
    /// The link is up.
    pub up: bool,
    /// Position in the configuration (uplinks first).
    pub order: usize,
    /// Its own addresses, as the sources of what the datapath sends from
    /// it (see `Tables::set_link_addresses`).
    pub addrs: IfaceAddrs,
    /// On an access interface, its addresses: its members' gateways.
    pub gateways: Vec<GatewayKey>,
}

/// What the interfaces are planned from: the configuration, what the
/// kernel says of each interface (by name), and the resolved MAC of each
/// uplink gateway address.
#[derive(Clone, Copy, Debug)]
pub struct InterfaceSources<'a> {
    pub config: &'a Config,
    pub links: &'a BTreeMap<String, LinkInfo>,
    pub gateway_macs: &'a BTreeMap<IpAddr, [u8; 6]>,
}

/// Every interface slot is taken.
#[derive(Clone, Copy, Debug)]
pub(super) struct NoFreeSlot;

/// The interfaces `sources` declare: those of `current` keep their slots,
/// new ones get the slot a previous run gave them (`reserved`, by name) if
/// it is free, else the lowest free one. Interfaces without a [`LinkInfo`]
/// are kept with ifindex 0 and match no frame.
pub(super) fn plan(
    current: &BTreeMap<String, Interface>,
    reserved: &BTreeMap<String, u32>,
    sources: InterfaceSources<'_>,
) -> Result<BTreeMap<String, Interface>, NoFreeSlot> {
    let InterfaceSources {
        config,
        links,
        gateway_macs,
    } = sources;
    let mut wanted: Vec<(String, IfaceInfo, bool)> = Vec::new();
    let link = |name: &str| links.get(name).copied();
    for up in &config.uplinks {
        let mut info = base_info(link(&up.interface), kind::UPLINK);
        info.vlan = up.vlan.unwrap_or(0);
        let static_mac = up.gateway_mac.map(|m| m.0);
        let resolve = |gw: Option<IpAddr>| {
            static_mac.or_else(|| gw.and_then(|g| gateway_macs.get(&g).copied()))
        };
        if up.gateway4.is_some()
            && let Some(mac) = resolve(up.gateway4.map(IpAddr::V4))
        {
            info.gw4_mac = mac;
            info.flags |= iface_flags::GW4_VALID;
        }
        if up.gateway6.is_some()
            && let Some(mac) = resolve(up.gateway6.map(IpAddr::V6))
        {
            info.gw6_mac = mac;
            info.flags |= iface_flags::GW6_VALID;
        }
        let is_up = link(&up.interface).is_some_and(|l| l.up);
        wanted.push((up.interface.clone(), info, is_up));
    }
    for acc in &config.access {
        let is_up = link(&acc.interface).is_some_and(|l| l.up);
        wanted.push((
            acc.interface.clone(),
            base_info(link(&acc.interface), kind::ACCESS),
            is_up,
        ));
    }
    let names: BTreeSet<&str> = wanted.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut ifaces = current.clone();
    ifaces.retain(|name, _| names.contains(name.as_str()));
    for (order, (name, info, up)) in wanted.into_iter().enumerate() {
        let slot = match ifaces.get(&name) {
            Some(i) => i.slot,
            None => match reserved.get(&name) {
                Some(s) if !ifaces.values().any(|i| i.slot == *s) => *s,
                _ => free_slot(&ifaces, reserved)?,
            },
        };
        ifaces.insert(
            name.clone(),
            Interface {
                name,
                slot,
                info,
                up,
                order,
                addrs: IfaceAddrs::default(),
                gateways: Vec::new(),
            },
        );
    }
    Ok(ifaces)
}

fn free_slot(
    ifaces: &BTreeMap<String, Interface>,
    reserved: &BTreeMap<String, u32>,
) -> Result<u32, NoFreeSlot> {
    let mut used: BTreeSet<u32> = ifaces.values().map(|i| i.slot).collect();
    used.extend(reserved.values());
    (1..MAX_IFACES)
        .find(|s| !used.contains(s))
        .ok_or(NoFreeSlot)
}

/// The first uplink (in configuration order) that is up and has a
/// resolved gateway carries each family.
pub(super) fn pick_uplinks(ifaces: &BTreeMap<String, Interface>) -> Uplinks {
    let mut ups: Vec<&Interface> = ifaces
        .values()
        .filter(|i| i.info.kind == kind::UPLINK && i.up)
        .collect();
    ups.sort_by_key(|i| i.order);
    let first = |flag| {
        ups.iter()
            .find(|i| i.info.flags & flag != 0)
            .map_or(0, |i| i.slot)
    };
    Uplinks {
        v4: first(iface_flags::GW4_VALID),
        v6: first(iface_flags::GW6_VALID),
    }
}

/// The slot of `interface` if it is an access interface.
pub(super) fn access_slot(ifaces: &BTreeMap<String, Interface>, interface: &str) -> Option<u32> {
    ifaces
        .get(interface)
        .filter(|i| i.info.kind == kind::ACCESS)
        .map(|i| i.slot)
}

/// The names of the access interfaces.
pub(super) fn access_names(ifaces: &BTreeMap<String, Interface>) -> Vec<String> {
    ifaces
        .values()
        .filter(|i| i.info.kind == kind::ACCESS)
        .map(|i| i.name.clone())
        .collect()
}

fn base_info(link: Option<LinkInfo>, kind: u8) -> IfaceInfo {
    let link = link.unwrap_or(LinkInfo {
        ifindex: 0,
        mac: [0; 6],
        mtu: 0,
        up: false,
    });
    IfaceInfo {
        ifindex: link.ifindex,
        mtu: link.mtu.min(u16::MAX as u32) as u16,
        mac: link.mac,
        kind,
        ..IfaceInfo::default()
    }
}
