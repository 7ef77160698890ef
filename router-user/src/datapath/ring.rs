//! The datapath's reports of CPE MACs (`LEARN_EVENTS`, a ring buffer), as
//! the daemon reads them.
use std::os::fd::{AsRawFd, RawFd};

use aya::maps::{MapData, RingBuf};
use router_common::LearnEvent;

/// The datapath's reports of CPE MACs, readable when the file descriptor
/// is (an `epoll` or tokio's `AsyncFd` waits on it).
pub struct LearnEvents {
    pub(super) ring: RingBuf<MapData>,
}

impl LearnEvents {
    /// The reports waiting, in order: (member slot, MAC).
    pub fn drain(&mut self) -> Vec<(u32, [u8; 6])> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            if item.len() < std::mem::size_of::<LearnEvent>() {
                continue;
            }
            let slot = u32::from_ne_bytes([item[0], item[1], item[2], item[3]]);
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&item[4..10]);
            out.push((slot, mac));
        }
        out
    }
}

impl AsRawFd for LearnEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}
