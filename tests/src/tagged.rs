//! Raw Ethernet ports: AF_PACKET sockets that send and receive whole frames
//! on one interface of a namespace. They emulate the tagged (802.1Q) and
//! double-tagged (802.1ad + 802.1Q) member hosts this kernel cannot
//! terminate, and capture what really crosses a link (the core side).
//!
//! # Receiving tags
//! On receive the kernel moves a frame's OUTER tag out of the packet into
//! the skb's metadata (`skb_vlan_untag`, unconditionally, before packet
//! sockets see it), whatever the interface's offloads. [`RawPort`] asks for
//! `PACKET_AUXDATA` and puts the tag back where it was (TPID from
//! `tp_vlan_tpid`, TCI from `tp_vlan_tci`), so [`RawPort::recv`] returns
//! the frame exactly as it was on the wire. An inner tag stays in the data.
use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use crate::{frames, topology::in_netns};

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

/// An AF_PACKET socket bound to one interface: sends frames as given and
/// receives every frame arriving on the interface (not the ones it sends).
pub struct RawPort {
    fd: OwnedFd,
    name: String,
}

fn check(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("{what}: {}", io::Error::last_os_error()),
        ))
    } else {
        Ok(rc)
    }
}

impl RawPort {
    /// Opens a port on interface `dev` of namespace `ns`.
    pub fn open(ns: &str, dev: &str) -> RawPort {
        let name = format!("{ns}/{dev}");
        let fd = in_netns(ns, || -> io::Result<OwnedFd> {
            // Protocol 0: receives nothing until bound, so no frame of
            // another interface slips in.
            let fd = check(
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) },
                "socket(AF_PACKET)",
            )?;
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let cname = std::ffi::CString::new(dev).unwrap();
            let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
            if ifindex == 0 {
                return Err(io::Error::other(format!("no interface {dev} in {ns}")));
            }
            let one: libc::c_int = 1;
            for opt in [PACKET_AUXDATA, PACKET_IGNORE_OUTGOING] {
                check(
                    unsafe {
                        libc::setsockopt(
                            fd.as_raw_fd(),
                            libc::SOL_PACKET,
                            opt,
                            &one as *const _ as *const libc::c_void,
                            size_of::<libc::c_int>() as libc::socklen_t,
                        )
                    },
                    "setsockopt(SOL_PACKET)",
                )?;
            }
            let bufsize: libc::c_int = 4 << 20;
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    &bufsize as *const _ as *const libc::c_void,
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_ALL.to_be();
            sll.sll_ifindex = ifindex as i32;
            check(
                unsafe {
                    libc::bind(
                        fd.as_raw_fd(),
                        &sll as *const _ as *const libc::sockaddr,
                        size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                    )
                },
                "bind(AF_PACKET)",
            )?;
            Ok(fd)
        })
        .unwrap_or_else(|e| panic!("raw port {name}: {e}"));
        RawPort { fd, name }
    }

    /// Sends one whole frame (no padding is added).
    pub fn send(&self, frame: &[u8]) {
        loop {
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                )
            };
            if n >= 0 {
                assert_eq!(n as usize, frame.len(), "short send on {}", self.name);
                return;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) || e.kind() == io::ErrorKind::WouldBlock {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            panic!("send on {}: {e}", self.name);
        }
    }

    /// Receives the next frame within `timeout`, rebuilt as it was on the
    /// wire (outer tag restored from the auxiliary data).
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        let mut cbuf = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = size_of_val(&cbuf);
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return None;
            }
            panic!("recvmsg on {}: {e}", self.name);
        }
        buf.truncate(n as usize);
        let mut aux = None;
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
                frames::ETH_P_8021Q
            };
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&a.tp_vlan_tci.to_be_bytes());
            buf.splice(12..12, tag);
        }
        Some(buf)
    }

    /// The first frame satisfying `pred` before `timeout`; others are
    /// discarded.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let f = self.recv(left)?;
            if pred(&f) {
                return Some(f);
            }
        }
    }

    /// Every frame satisfying `pred` that arrives within `window`.
    pub fn collect(&self, window: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let end = Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.recv(left) {
                Some(f) if pred(&f) => out.push(f),
                Some(_) => {}
                None => return out,
            }
        }
    }

    /// Discards whatever is queued.
    pub fn drain(&self) {
        while self.recv(Duration::ZERO).is_some() {}
    }
}

/// Offset of the IP header in `frame` (after up to two tags), and its
/// EtherType.
pub fn l3(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    loop {
        let t = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().unwrap());
        if t == frames::ETH_P_8021Q || t == frames::ETH_P_8021AD || t == frames::ETH_P_9100 {
            off += 4;
            continue;
        }
        return Some((off + 2, t));
    }
}

/// Does `frame` carry an IP packet whose UDP payload contains `marker`?
pub fn carries(frame: &[u8], marker: &[u8]) -> bool {
    frame.windows(marker.len()).any(|w| w == marker)
}

/// A tagged member host: its MAC and tags, on a raw port of the trunk.
/// It answers nothing: the tests send and check frames themselves.
pub struct TaggedMember {
    pub port: RawPort,
    pub mac: [u8; 6],
    /// Tags as on the wire, outer first: (TPID, VLAN id).
    pub tags: Vec<(u16, u16)>,
    /// The router's access interface MAC (the member's gateway).
    pub router_mac: [u8; 6],
    pub addr4: Ipv4Addr,
    pub addr6: Ipv6Addr,
}

impl TaggedMember {
    /// Opens the member's port on `dev` of namespace `ns`.
    pub fn open(
        ns: &str,
        dev: &str,
        spec: &crate::topology::MemberSpec,
        router_mac: &str,
    ) -> TaggedMember {
        TaggedMember {
            port: RawPort::open(ns, dev),
            mac: spec.mac_bytes(),
            tags: spec.tags(),
            router_mac: frames::mac(router_mac),
            addr4: spec.host4,
            addr6: spec.host6,
        }
    }

    /// The frame this member puts on the wire for IP packet `ip`.
    pub fn frame(&self, ip: &[u8]) -> Vec<u8> {
        let et = if ip[0] >> 4 == 6 {
            frames::ETH_P_IPV6
        } else {
            frames::ETH_P_IP
        };
        frames::ether(self.router_mac, self.mac, &self.tags, et, ip)
    }

    /// Sends IP packet `ip` to the router.
    pub fn send_ip(&self, ip: &[u8]) {
        self.port.send(&self.frame(ip));
    }

    /// Is `frame` addressed to this member (its MAC and its exact tags)?
    pub fn is_mine(&self, frame: &[u8]) -> bool {
        if frame.len() < 14 || frame[..6] != self.mac {
            return false;
        }
        let mut off = 12;
        for (tpid, vid) in &self.tags {
            let Some(t) = frame.get(off..off + 4) else {
                return false;
            };
            if u16::from_be_bytes([t[0], t[1]]) != *tpid
                || u16::from_be_bytes([t[2], t[3]]) & 0x0fff != *vid
            {
                return false;
            }
            off += 4;
        }
        matches!(l3(frame), Some((o, _)) if o == off + 2)
    }

    /// The next frame for this member that satisfies `pred`.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        self.port
            .recv_matching(timeout, |f| self.is_mine(f) && pred(f))
    }
}
