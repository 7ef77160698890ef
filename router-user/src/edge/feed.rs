//! The router's side of the advertisements' [`Source`]: the attachments
//! from the router's tables, the access interfaces from the kernel's view
//! the daemon last read (a [`watch`] of its [`Snapshot`]s), the settings
//! from the running configuration.
use std::sync::Arc;

use tokio::sync::watch;

use super::adverts::{AccessInterface, Feed, Settings, Source};
use crate::{
    netlink::Snapshot,
    router::{Shared, lock},
};

/// [`Source`] over the daemon's router.
pub struct RouterFeed {
    router: Shared,
    system: watch::Receiver<Arc<Snapshot>>,
}

impl RouterFeed {
    pub fn new(router: Shared, system: watch::Receiver<Arc<Snapshot>>) -> RouterFeed {
        RouterFeed { router, system }
    }
}

impl Source for RouterFeed {
    fn poll(&mut self) -> Feed {
        let system = self.system.borrow_and_update().clone();
        let mut r = lock(&self.router);
        let changes = r.take_ipv6_attachment_changes();
        let config = r.config();
        let settings = Settings::of(&config.edge);
        let interfaces = config
            .access
            .iter()
            .filter_map(|a| {
                let slot = r.tables().interfaces().get(&a.interface)?.slot;
                let link = system.links.get(&a.interface)?;
                Some(AccessInterface {
                    slot: slot as u16,
                    name: a.interface.clone(),
                    ifindex: link.ifindex,
                    mac: link.mac,
                    mtu: link.mtu,
                    up: link.up,
                    link_local: system.link_local6.get(&link.ifindex).copied(),
                })
            })
            .collect();
        Feed {
            changes,
            interfaces,
            settings,
        }
    }
}
