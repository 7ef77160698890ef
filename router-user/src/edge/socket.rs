//! A packet socket that writes whole Ethernet frames, tags in band, out
//! of one interface (`AF_PACKET`, `SOCK_RAW`, bound to the interface with
//! protocol 0: it receives nothing). Opening one needs CAP_NET_RAW.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

/// A packet socket could not be opened or could not send.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "cannot open a packet socket on {interface}: {source} (sending frames needs CAP_NET_RAW)"
    )]
    Open {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind a packet socket to {interface} (ifindex {ifindex}): {source}")]
    Bind {
        interface: String,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot send a frame on {interface}: {source}")]
    Send {
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// A packet socket bound to one interface.
pub struct PacketSocket {
    fd: OwnedFd,
    interface: String,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a socket that sends on `interface` (ifindex `ifindex`), in the
    /// calling thread's network namespace.
    pub fn open(interface: &str, ifindex: u32) -> Result<PacketSocket, SocketError> {
        // Protocol 0: the socket is bound for sending and receives nothing.
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(SocketError::Open {
                interface: interface.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: a descriptor just returned by socket(2), owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(SocketError::Bind {
                interface: interface.to_string(),
                ifindex,
                source: io::Error::last_os_error(),
            });
        }
        Ok(PacketSocket {
            fd,
            interface: interface.to_string(),
            ifindex,
        })
    }

    /// The ifindex it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends `frame` as it is, without waiting (a full queue is an error).
    pub fn send(&self, frame: &[u8]) -> Result<(), SocketError> {
        // SAFETY: `frame` is a valid buffer of its length.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(SocketError::Send {
                interface: self.interface.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}
