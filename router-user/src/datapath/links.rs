//! Attaching the program to interfaces and detaching it: XDP links,
//! pinned so that they outlive the process, and taken over atomically by
//! the next run.
use aya::programs::{
    XdpMode,
    links::{FdLink, PinnedLink},
    xdp::{XdpLink, XdpLinkId},
};

use super::error::DatapathError;
use super::{Attach, Datapath, LinkId};

impl Datapath {
    /// Detaches the program from an interface.
    pub fn detach(&mut self, link: XdpLinkId) -> Result<(), DatapathError> {
        self.program().detach(link).map_err(DatapathError::Program)
    }

    /// Attaches the program to `interface`. When pinned, the XDP link is
    /// pinned too, so that it outlives this process, and an existing pinned
    /// link on that interface is taken over: its program is replaced
    /// atomically, with no instant without a program.
    pub fn attach(&mut self, interface: &str, mode: Attach) -> Result<LinkId, DatapathError> {
        let mode = match mode {
            Attach::Native => XdpMode::Driver,
            Attach::Generic => XdpMode::Skb,
        };
        let Some(dir) = self.link_dir.clone() else {
            return self.attach_plain(interface, mode);
        };
        let pin = dir.join(interface);
        if pin.exists() {
            let taken = PinnedLink::from_pin(&pin)
                .map_err(|e| e.to_string())
                .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| e.to_string()))
                .and_then(|l| self.program().attach_to_link(l).map_err(|e| e.to_string()));
            match taken {
                Ok(id) => return Ok(id),
                Err(e) => {
                    // The interface went away since (the link is defunct),
                    // or the pin is not a link: start afresh.
                    tracing::warn!(interface, error = %e, "cannot take over the pinned XDP link; attaching anew");
                    let _ = std::fs::remove_file(&pin);
                }
            }
        }
        let id = self.attach_plain(interface, mode)?;
        let pin_err = |message: String| DatapathError::LinkPin {
            interface: interface.to_string(),
            message,
        };
        let link = self
            .program()
            .take_link(id)
            .map_err(DatapathError::Program)?;
        let fd = FdLink::try_from(link).map_err(|e| pin_err(e.to_string()))?;
        let pinned = fd
            .pin(&pin)
            .map_err(|e| pin_err(format!("pinning at {}: {e}", pin.display())))?;
        let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(e.to_string()))?;
        self.program()
            .attach_to_link(link)
            .map_err(DatapathError::Program)
    }

    /// Detaches the program from `interface` and removes its pinned link.
    pub fn detach_pinned(
        &mut self,
        interface: &str,
        link: Option<XdpLinkId>,
    ) -> Result<(), DatapathError> {
        if let Some(dir) = &self.link_dir {
            let _ = std::fs::remove_file(dir.join(interface));
        }
        match link {
            Some(l) => self.detach(l),
            None => Ok(()),
        }
    }

    fn attach_plain(&mut self, interface: &str, mode: XdpMode) -> Result<XdpLinkId, DatapathError> {
        let mode_name = match mode {
            XdpMode::Driver => "native",
            XdpMode::Skb => "generic",
            _ => "default",
        };
        self.program()
            .attach(interface, mode)
            .map_err(|source| DatapathError::Attach {
                interface: interface.to_string(),
                mode: mode_name,
                source,
            })
    }
}
