//! Interfaces, addresses and neighbours, read from the kernel over rtnetlink.
//!
//! Everything here runs in the network namespace of the calling thread: the
//! netlink socket is opened there. This is only the I/O: what the tables
//! need of an interface is plain data, [`LinkInfo`] (router-core's).
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv6Addr},
};

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlag, AddressHeaderFlag},
    link::{LinkAttribute, LinkFlag},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlag, NeighbourState},
};
use router_core::tables::LinkInfo;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket cannot be opened or bound.
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// A request (a dump, a neighbour resolution) failed.
    #[error("netlink request for {what} failed: {source}")]
    Request {
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// The runtime of a one-off snapshot cannot start.
    #[error("cannot start the netlink runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The interfaces and addresses of the namespace at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// By interface name.
    pub links: BTreeMap<String, LinkInfo>,
    /// Every address configured on any interface.
    pub addresses: Vec<IpAddr>,
    /// The addresses of each interface, by name, in the kernel's order.
    pub link_addresses: BTreeMap<String, Vec<IpAddr>>,
    /// Resolved neighbours: (ifindex, address) -> MAC.
    pub neighbours: BTreeMap<(u32, IpAddr), [u8; 6]>,
    /// Each interface's IPv6 link-local address (by ifindex): the lowest
    /// one past duplicate address detection (not tentative, not failed).
    pub link_local6: BTreeMap<u32, Ipv6Addr>,
    /// The link each interface is tied to (`IFLA_LINK`: a veth's peer), by
    /// ifindex, when it has one.
    pub link_peers: BTreeMap<u32, LinkPeer>,
}

/// The interface a link is tied to (a veth's peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkPeer {
    /// Its ifindex, in its own namespace.
    pub ifindex: u32,
    /// It lives in another network namespace (`IFLA_LINK_NETNSID`).
    pub elsewhere: bool,
}

impl Snapshot {
    /// The MAC of `addr` on interface `ifindex`, when the kernel has resolved it.
    pub fn neighbour(&self, ifindex: u32, addr: IpAddr) -> Option<[u8; 6]> {
        self.neighbours.get(&(ifindex, addr)).copied()
    }
}

/// Reads every interface and address of the calling thread's namespace.
pub async fn snapshot(handle: &rtnetlink::Handle) -> Result<Snapshot, NetlinkError> {
    let mut out = Snapshot::default();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut links = handle.link().get().execute();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(|source| NetlinkError::Request {
            what: "the interface list".into(),
            source: Box::new(source),
        })?
    {
        let mut name = None;
        let mut peer = None;
        let mut elsewhere = false;
        let mut info = LinkInfo {
            ifindex: msg.header.index,
            mac: [0; 6],
            mtu: 0,
            up: msg.header.flags.contains(&LinkFlag::Up),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Mtu(m) => info.mtu = *m,
                LinkAttribute::Address(a) if a.len() == 6 => info.mac.copy_from_slice(a),
                LinkAttribute::Link(p) => peer = Some(*p),
                LinkAttribute::NetnsId(_) => elsewhere = true,
                _ => {}
            }
        }
        if let Some(ifindex) = peer.filter(|p| *p != 0 && (*p != msg.header.index || elsewhere)) {
            out.link_peers
                .insert(msg.header.index, LinkPeer { ifindex, elsewhere });
        }
        if let Some(name) = name {
            names.insert(info.ifindex, name.clone());
            out.links.insert(name, info);
        }
    }
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|source| NetlinkError::Request {
            what: "the address list".into(),
            source: Box::new(source),
        })?
    {
        let mut settled = !msg.header.flags.iter().any(|f| {
            matches!(
                f,
                AddressHeaderFlag::Tentative | AddressHeaderFlag::Dadfailed
            )
        });
        for attr in &msg.attributes {
            if let AddressAttribute::Flags(flags) = attr {
                settled &= !flags
                    .iter()
                    .any(|f| matches!(f, AddressFlag::Tentative | AddressFlag::Dadfailed));
            }
        }
        for attr in &msg.attributes {
            if let AddressAttribute::Address(a) = attr {
                if !out.addresses.contains(a) {
                    out.addresses.push(*a);
                }
                if let Some(name) = names.get(&msg.header.index) {
                    out.link_addresses.entry(name.clone()).or_default().push(*a);
                }
            }
            if let AddressAttribute::Address(IpAddr::V6(a)) = attr
                && a.is_unicast_link_local()
                && settled
            {
                let lowest = out.link_local6.entry(msg.header.index).or_insert(*a);
                *lowest = (*lowest).min(*a);
            }
        }
    }
    let mut neighs = handle.neighbours().get().execute();
    while let Some(msg) = neighs
        .try_next()
        .await
        .map_err(|source| NetlinkError::Request {
            what: "the neighbour table".into(),
            source: Box::new(source),
        })?
    {
        let usable = matches!(
            msg.header.state,
            NeighbourState::Reachable
                | NeighbourState::Stale
                | NeighbourState::Delay
                | NeighbourState::Probe
                | NeighbourState::Permanent
                | NeighbourState::Noarp
        );
        let mut dst = None;
        let mut mac = None;
        for attr in &msg.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    dst = Some(IpAddr::V4(*a))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    dst = Some(IpAddr::V6(*a))
                }
                NeighbourAttribute::LinkLocalAddress(l) if l.len() == 6 => {
                    let mut m = [0u8; 6];
                    m.copy_from_slice(l);
                    mac = Some(m);
                }
                _ => {}
            }
        }
        if let (true, Some(dst), Some(mac)) = (usable, dst, mac) {
            out.neighbours.insert((msg.header.ifindex, dst), mac);
        }
    }
    Ok(out)
}

/// Asks the kernel to resolve `addr` on interface `ifindex` (a neighbour
/// entry with `NTF_USE`, as a packet to it would), without sending traffic.
pub async fn resolve(
    handle: &rtnetlink::Handle,
    ifindex: u32,
    addr: IpAddr,
) -> Result<(), NetlinkError> {
    let mut req = handle.neighbours().add(ifindex, addr).replace();
    let msg = req.message_mut();
    msg.header.state = NeighbourState::None;
    msg.header.flags = vec![NeighbourFlag::Use];
    req.execute().await.map_err(|source| NetlinkError::Request {
        what: format!("resolving {addr} on ifindex {ifindex}"),
        source: Box::new(source),
    })
}

/// Netlink multicast groups whose messages change what the datapath needs:
/// links, neighbours, and addresses.
const GROUPS: u32 = rtnetlink::constants::RTMGRP_LINK
    | rtnetlink::constants::RTMGRP_NEIGH
    | rtnetlink::constants::RTMGRP_IPV4_IFADDR
    | rtnetlink::constants::RTMGRP_IPV6_IFADDR;

/// A netlink connection for requests, plus a stream that yields once per
/// link, neighbour or address change. Spawns the connection's task on the
/// current runtime.
pub fn connect()
-> Result<(rtnetlink::Handle, tokio::sync::mpsc::UnboundedReceiver<()>), NetlinkError> {
    use netlink_sys::{AsyncSocket as _, SocketAddr};
    let (mut conn, handle, mut messages) =
        rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, GROUPS))
        .map_err(NetlinkError::Socket)?;
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while messages.next().await.is_some() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    Ok((handle, rx))
}

/// Opens a netlink connection in the calling thread's namespace and takes a
/// [`snapshot`], on a runtime of its own.
pub fn snapshot_blocking() -> Result<Snapshot, NetlinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NetlinkError::Runtime)?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(conn);
        let snap = snapshot(&handle).await;
        task.abort();
        snap
    })
}
