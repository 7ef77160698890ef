//! The PPPoE packet socket of one access interface: `AF_PACKET`,
//! `SOCK_RAW`, protocol `ETH_P_ALL`, bound to the interface, keeping only
//! PPPoE frames (0x8863, 0x8864, behind up to two tags).
//!
//! The kernel takes a received frame's outer tag out of the data
//! (`skb_vlan_untag`) before packet sockets see it; with `PACKET_AUXDATA`
//! it tells which (`tp_vlan_tci`, `tp_vlan_tpid`), and [`PacketSocket::recv`]
//! puts it back, so the engine sees the frame as it was on the wire.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use tokio::io::{Interest, unix::AsyncFd};

use super::frame;

const ETH_P_ALL: u16 = 0x0003;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `struct tpacket_auxdata` (linux/if_packet.h).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// The socket could not be opened, or could not receive or send.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("no interface {interface} for PPPoE")]
    NoInterface { interface: String },
    #[error("cannot open a PPPoE packet socket on {interface}: {source} (it needs CAP_NET_RAW)")]
    Open {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {option} on the PPPoE socket of {interface}: {source}")]
    Option {
        interface: String,
        option: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind the PPPoE socket to {interface} (ifindex {ifindex}): {source}")]
    Bind {
        interface: String,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot receive on the PPPoE socket of {interface}: {source}")]
    Recv {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot send a PPPoE frame on {interface}: {source}")]
    Send {
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// A PPPoE packet socket bound to one interface (tokio).
pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
    interface: String,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens the socket of `interface` in the calling thread's namespace
    /// (within a tokio runtime).
    pub fn open(interface: &str) -> Result<PacketSocket, SocketError> {
        let cname = std::ffi::CString::new(interface).map_err(|_| SocketError::NoInterface {
            interface: interface.to_string(),
        })?;
        // SAFETY: a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(SocketError::NoInterface {
                interface: interface.to_string(),
            });
        }
        let open_err = |source| SocketError::Open {
            interface: interface.to_string(),
            source,
        };
        // Protocol 0: nothing is received until the bind below names the
        // interface, so no frame of another interface slips in.
        // SAFETY: socket(2) with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(open_err(io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just returned by socket(2), owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        for (opt, option) in [
            (PACKET_AUXDATA, "PACKET_AUXDATA"),
            (PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING"),
        ] {
            let one: libc::c_int = 1;
            // SAFETY: an int option of its size.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(SocketError::Option {
                    interface: interface.to_string(),
                    option,
                    source: io::Error::last_os_error(),
                });
            }
        }
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SocketError::Bind {
                interface: interface.to_string(),
                ifindex,
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: the OwnedFd is owned by the AsyncFd, open until it drops.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| open_err(io::Error::from(e)))?;
        Ok(PacketSocket {
            fd,
            interface: interface.to_string(),
            ifindex,
        })
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The next PPPoE frame, its outer tag back in place. Other frames are
    /// skipped.
    pub async fn recv(&self) -> Result<Vec<u8>, SocketError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| SocketError::Recv {
                    interface: self.interface.clone(),
                    source,
                })?;
            match guard.try_io(|fd| recv_frame(fd.get_ref().as_raw_fd())) {
                Ok(Ok(f)) if frame::is_pppoe(&f) => return Ok(f),
                Ok(Ok(_)) => continue,
                Ok(Err(source)) => {
                    return Err(SocketError::Recv {
                        interface: self.interface.clone(),
                        source,
                    });
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one whole frame (tags in band), without waiting.
    pub fn send(&self, frame: &[u8]) -> Result<(), SocketError> {
        // SAFETY: `frame` is a valid buffer of its length.
        let n = unsafe {
            libc::send(
                self.fd.get_ref().as_raw_fd(),
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

/// One recvmsg(2), the outer tag put back from the auxiliary data.
fn recv_frame(fd: libc::c_int) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; its pointers are set below to
    // buffers that outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&cbuf);
    // SAFETY: `msg` describes valid buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    let mut aux = None;
    // SAFETY: the control buffer was filled by recvmsg; the CMSG macros
    // walk it within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                aux = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(c) as *const TpacketAuxdata
                ));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if let Some(a) = aux
        && a.tp_status & TP_STATUS_VLAN_VALID != 0
        && buf.len() >= 12
    {
        let tpid = if a.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
            a.tp_vlan_tpid
        } else {
            frame::ETH_P_8021Q
        };
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&a.tp_vlan_tci.to_be_bytes());
        buf.splice(12..12, tag);
    }
    Ok(buf)
}
