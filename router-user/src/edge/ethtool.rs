//! An interface's offload features, read and changed with the
//! `SIOCETHTOOL` ioctl (what `ethtool -k` / `-K` do): the feature names
//! (string set `ETH_SS_FEATURES`), `ETHTOOL_GFEATURES` and
//! `ETHTOOL_SFEATURES`; and the interface's driver (`ETHTOOL_GDRVINFO`).
//!
//! Only the I/O: what to change is decided by [`super::offload`]. Runs in
//! the calling thread's network namespace (the socket is opened there).
//! Reading needs no privilege; changing needs CAP_NET_ADMIN.
use std::{
    ffi::{CStr, c_void},
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use super::offload::Feature;

/// An ioctl on an interface failed.
#[derive(Debug, thiserror::Error)]
pub enum EthtoolError {
    /// No socket to issue the ioctl on.
    #[error("cannot open a socket for ethtool requests: {0}")]
    Socket(#[source] io::Error),
    /// The name is too long for an interface name.
    #[error("interface name {0:?} is longer than 15 bytes")]
    Name(String),
    /// The kernel refused or failed a request.
    #[error("interface {interface}: ethtool {request} failed: {source}")]
    Request {
        interface: String,
        request: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel changed fewer features than asked.
    #[error("interface {interface}: the driver did not apply {features:?}")]
    NotApplied {
        interface: String,
        features: Vec<String>,
    },
}

const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// A socket for ethtool requests in the calling thread's namespace.
pub struct Ethtool {
    fd: OwnedFd,
}

#[repr(C)]
struct Ifreq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut c_void,
    _pad: [u8; 16],
}

impl Ethtool {
    pub fn open() -> Result<Ethtool, EthtoolError> {
        // SAFETY: socket(2) with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(EthtoolError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just returned by socket(2), owned here.
        Ok(Ethtool {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Issues ethtool command `data` (a buffer starting with its `cmd`) on
    /// `interface`; returns the ioctl's non-negative result.
    fn ioctl(
        &self,
        interface: &str,
        request: &'static str,
        data: &mut [u32],
    ) -> Result<i32, EthtoolError> {
        let mut ifr = Ifreq {
            name: [0; libc::IFNAMSIZ],
            data: data.as_mut_ptr().cast(),
            _pad: [0; 16],
        };
        if interface.len() >= libc::IFNAMSIZ {
            return Err(EthtoolError::Name(interface.to_string()));
        }
        ifr.name[..interface.len()].copy_from_slice(interface.as_bytes());
        // SAFETY: `ifr` names the interface and points at `data`, a buffer
        // laid out as the command in its first word expects, of the size
        // that command's counts announce (set by the callers).
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
        if rc < 0 {
            return Err(EthtoolError::Request {
                interface: interface.to_string(),
                request,
                source: io::Error::last_os_error(),
            });
        }
        Ok(rc)
    }

    /// How many strings string set `set` has on `interface`.
    fn set_len(&self, interface: &str, set: u32) -> Result<usize, EthtoolError> {
        // struct ethtool_sset_info: cmd, reserved, sset_mask (u64), data[1].
        let mask = (1u64 << set).to_ne_bytes();
        let word = |b: &[u8]| u32::from_ne_bytes(b.try_into().expect("4 bytes"));
        let mut buf = [ETHTOOL_GSSET_INFO, 0, word(&mask[..4]), word(&mask[4..]), 0];
        self.ioctl(interface, "ETHTOOL_GSSET_INFO", &mut buf)?;
        // The mask comes back with the sets the driver has: without ours,
        // it has none of its strings.
        let mut back = [0u8; 8];
        back[..4].copy_from_slice(&buf[2].to_ne_bytes());
        back[4..].copy_from_slice(&buf[3].to_ne_bytes());
        Ok(if u64::from_ne_bytes(back) & (1 << set) != 0 {
            buf[4] as usize
        } else {
            0
        })
    }

    /// The strings of set `set`.
    fn strings(&self, interface: &str, set: u32) -> Result<Vec<String>, EthtoolError> {
        let n = self.set_len(interface, set)?;
        // struct ethtool_gstrings: cmd, string_set, len, data[len * 32].
        let mut buf = vec![0u32; 3 + n * ETH_GSTRING_LEN / 4];
        buf[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, set, n as u32]);
        self.ioctl(interface, "ETHTOOL_GSTRINGS", &mut buf)?;
        let n = (buf[2] as usize).min(n);
        let bytes: Vec<u8> = buf[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
        Ok(bytes
            .chunks(ETH_GSTRING_LEN)
            .take(n)
            .map(|s| {
                CStr::from_bytes_until_nul(s)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| String::from_utf8_lossy(s).into_owned())
            })
            .collect())
    }

    /// Every feature of `interface`, by name.
    pub fn features(&self, interface: &str) -> Result<Vec<Feature>, EthtoolError> {
        let names = self.strings(interface, ETH_SS_FEATURES)?;
        let blocks = names.len().div_ceil(32);
        // struct ethtool_gfeatures: cmd, size, then per block of 32
        // features: available, requested, active, never_changed.
        let mut buf = vec![0u32; 2 + 4 * blocks];
        buf[..2].copy_from_slice(&[ETHTOOL_GFEATURES, blocks as u32]);
        self.ioctl(interface, "ETHTOOL_GFEATURES", &mut buf)?;
        Ok(names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let b = &buf[2 + 4 * (i / 32)..][..4];
                let bit = 1u32 << (i % 32);
                Feature {
                    name,
                    active: b[2] & bit != 0,
                    changeable: b[0] & bit != 0 && b[3] & bit == 0,
                }
            })
            .collect())
    }

    /// Sets each named feature of `interface` to its value, then checks
    /// that the kernel did.
    pub fn set_features(
        &self,
        interface: &str,
        wanted: &[(&str, bool)],
    ) -> Result<(), EthtoolError> {
        let names = self.strings(interface, ETH_SS_FEATURES)?;
        let blocks = names.len().div_ceil(32);
        // struct ethtool_sfeatures: cmd, size, then per block: valid,
        // requested.
        let mut buf = vec![0u32; 2 + 2 * blocks];
        buf[..2].copy_from_slice(&[ETHTOOL_SFEATURES, blocks as u32]);
        let mut unknown = Vec::new();
        for (name, on) in wanted {
            let Some(i) = names.iter().position(|n| n == name) else {
                unknown.push(name.to_string());
                continue;
            };
            let bit = 1u32 << (i % 32);
            buf[2 + 2 * (i / 32)] |= bit;
            if *on {
                buf[3 + 2 * (i / 32)] |= bit;
            }
        }
        if !unknown.is_empty() {
            return Err(EthtoolError::NotApplied {
                interface: interface.to_string(),
                features: unknown,
            });
        }
        self.ioctl(interface, "ETHTOOL_SFEATURES", &mut buf)?;
        let now = self.features(interface)?;
        let missed: Vec<String> = wanted
            .iter()
            .filter(|(name, on)| !now.iter().any(|f| f.name == *name && f.active == *on))
            .map(|(name, _)| name.to_string())
            .collect();
        if missed.is_empty() {
            Ok(())
        } else {
            Err(EthtoolError::NotApplied {
                interface: interface.to_string(),
                features: missed,
            })
        }
    }

    /// The driver's name (`ethtool -i`).
    pub fn driver(&self, interface: &str) -> Result<String, EthtoolError> {
        // struct ethtool_drvinfo: cmd, driver[32], version[32],
        // fw_version[32], bus_info[32], erom_version[32], reserved2[12],
        // then five u32 counts: 196 bytes.
        let mut buf = [0u32; 49];
        buf[0] = ETHTOOL_GDRVINFO;
        self.ioctl(interface, "ETHTOOL_GDRVINFO", &mut buf)?;
        let bytes: Vec<u8> = buf[1..9].iter().flat_map(|w| w.to_ne_bytes()).collect();
        Ok(CStr::from_bytes_until_nul(&bytes)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}
