//! The PPPoE socket of one access interface: a receiving
//! [`PacketSocket`](crate::packet_socket::PacketSocket) (every frame, its
//! outer tag put back) under tokio, keeping only PPPoE frames (0x8863,
//! 0x8864, behind up to two tags).
use tokio::io::{Interest, unix::AsyncFd};

use crate::packet_socket::PacketSocket as RawSocket;
pub use crate::packet_socket::SocketError;

use super::frame;

/// A PPPoE packet socket bound to one interface (tokio).
pub struct PacketSocket {
    fd: AsyncFd<RawSocket>,
}

impl PacketSocket {
    /// Opens the socket of `interface` in the calling thread's namespace
    /// (within a tokio runtime).
    pub fn open(interface: &str) -> Result<PacketSocket, SocketError> {
        let raw = RawSocket::receiver(interface)?;
        // SAFETY: the socket owns its descriptor and always returns it;
        // the AsyncFd owns the socket, so it stays open until it drops.
        let fd =
            unsafe { AsyncFd::register_with_interest(raw, Interest::READABLE) }.map_err(|e| {
                SocketError::Open {
                    interface: interface.to_string(),
                    source: std::io::Error::from(e),
                }
            })?;
        Ok(PacketSocket { fd })
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.fd.get_ref().ifindex()
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        self.fd.get_ref().interface()
    }

    /// The next PPPoE frame, its outer tag back in place. Other frames are
    /// skipped.
    pub async fn recv(&self) -> Result<Vec<u8>, SocketError> {
        let recv_err = |source| SocketError::Recv {
            interface: self.interface().to_string(),
            source,
        };
        loop {
            let mut guard = self.fd.readable().await.map_err(recv_err)?;
            match guard.try_io(|fd| fd.get_ref().recv_frame()) {
                Ok(Ok(f)) if frame::is_pppoe(&f) => return Ok(f),
                Ok(Ok(_)) => continue,
                Ok(Err(source)) => return Err(recv_err(source)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one whole frame (tags in band), without waiting.
    pub fn send(&self, frame: &[u8]) -> Result<(), SocketError> {
        self.fd.get_ref().send(frame)
    }
}
