//! A packet socket bound to one interface (`AF_PACKET`, `SOCK_RAW`): whole
//! Ethernet frames, tags in band, written out of the interface and, for a
//! receiving socket, read from it. Opening one needs CAP_NET_RAW.
//!
//! The kernel takes a received frame's outer tag out of the data
//! (`skb_vlan_untag`) before packet sockets see it; with `PACKET_AUXDATA`
//! it tells which (`tp_vlan_tci`, `tp_vlan_tpid`), and
//! [`PacketSocket::recv_frame`] puts it back, so the frame reads as it was
//! on the wire.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_8021Q: u16 = 0x8100;
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

/// A packet socket could not be opened, or could not receive or send.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("no interface {interface}")]
    NoInterface { interface: String },
    #[error("cannot open a packet socket on {interface}: {source} (it needs CAP_NET_RAW)")]
    Open {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set {option} on the packet socket of {interface}: {source}")]
    Option {
        interface: String,
        option: &'static str,
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
    #[error("cannot receive on the packet socket of {interface}: {source}")]
    Recv {
        interface: String,
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

/// A non-blocking packet socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    interface: String,
    ifindex: u32,
}

impl PacketSocket {
    /// A socket that sends on `interface` (ifindex `ifindex`) and receives
    /// nothing, in the calling thread's network namespace.
    pub fn sender(interface: &str, ifindex: u32) -> Result<PacketSocket, SocketError> {
        let s = PacketSocket::unbound(interface, ifindex)?;
        // Protocol 0: bound for sending only.
        s.bind(0)?;
        Ok(s)
    }

    /// A socket that also receives every frame arriving on `interface`
    /// (not those it sends), with their outer tag reported, in the calling
    /// thread's network namespace.
    pub fn receiver(interface: &str) -> Result<PacketSocket, SocketError> {
        let no_interface = || SocketError::NoInterface {
            interface: interface.to_string(),
        };
        let cname = std::ffi::CString::new(interface).map_err(|_| no_interface())?;
        // SAFETY: a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(no_interface());
        }
        let s = PacketSocket::unbound(interface, ifindex)?;
        s.set_option(PACKET_AUXDATA, "PACKET_AUXDATA")?;
        s.set_option(PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING")?;
        // Nothing was received before this bind names the interface, so no
        // frame of another interface slips in.
        s.bind(ETH_P_ALL)?;
        Ok(s)
    }

    /// Protocol 0: the socket receives nothing until bound.
    fn unbound(interface: &str, ifindex: u32) -> Result<PacketSocket, SocketError> {
        // SAFETY: socket(2) with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(SocketError::Open {
                interface: interface.to_string(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(PacketSocket {
            // SAFETY: a descriptor just returned by socket(2), owned here.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
            interface: interface.to_string(),
            ifindex,
        })
    }

    fn set_option(&self, opt: libc::c_int, option: &'static str) -> Result<(), SocketError> {
        let one: libc::c_int = 1;
        // SAFETY: an int option of its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                opt,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SocketError::Option {
                interface: self.interface.clone(),
                option,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    fn bind(&self, protocol: u16) -> Result<(), SocketError> {
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = self.ifindex as i32;
        // SAFETY: `addr` is a sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(SocketError::Bind {
                interface: self.interface.clone(),
                ifindex: self.ifindex,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
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

    /// The next received frame, its outer tag back in place, without
    /// waiting (`WouldBlock` when there is none).
    pub fn recv_frame(&self) -> io::Result<Vec<u8>> {
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
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
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
                ETH_P_8021Q
            };
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&a.tp_vlan_tci.to_be_bytes());
            buf.splice(12..12, tag);
        }
        Ok(buf)
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
