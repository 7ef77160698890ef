//! Interfaces, addresses and neighbours, read from the kernel over rtnetlink.
//!
//! Everything here runs in the network namespace of the calling thread: the
//! netlink socket is opened there.
use std::{collections::BTreeMap, net::IpAddr};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressAttribute,
    link::{LinkAttribute, LinkFlag},
};

#[derive(Debug, thiserror::Error)]
pub enum NeighborError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("netlink request for {what} failed: {source}")]
    Request {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot start the netlink runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What the datapath needs to know of a kernel interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub up: bool,
}

/// The interfaces and addresses of the namespace at one instant.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// By interface name.
    pub links: BTreeMap<String, LinkInfo>,
    /// Every address configured on any interface.
    pub addresses: Vec<IpAddr>,
}

/// Reads every interface and address of the calling thread's namespace.
pub async fn snapshot(handle: &rtnetlink::Handle) -> Result<Snapshot, NeighborError> {
    let mut out = Snapshot::default();
    let mut links = handle.link().get().execute();
    while let Some(msg) = links.try_next().await.map_err(|source| NeighborError::Request {
        what: "the interface list".into(),
        source,
    })? {
        let mut name = None;
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
                _ => {}
            }
        }
        if let Some(name) = name {
            out.links.insert(name, info);
        }
    }
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs.try_next().await.map_err(|source| NeighborError::Request {
        what: "the address list".into(),
        source,
    })? {
        for attr in &msg.attributes {
            if let AddressAttribute::Address(a) = attr
                && !out.addresses.contains(a)
            {
                out.addresses.push(*a);
            }
        }
    }
    Ok(out)
}

/// Opens a netlink connection in the calling thread's namespace and takes a
/// [`snapshot`], on a runtime of its own.
pub fn snapshot_blocking() -> Result<Snapshot, NeighborError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NeighborError::Runtime)?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NeighborError::Socket)?;
        let task = tokio::spawn(conn);
        let snap = snapshot(&handle).await;
        task.abort();
        snap
    })
}
