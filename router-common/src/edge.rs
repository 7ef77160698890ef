//! What the fast path answers for itself on members' lines, tagged ones
//! included (the kernel has no subinterface for a member's tags): ARP and
//! Neighbor Solicitations for the gateway addresses, Router Solicitations,
//! echo requests to the gateway, and the ICMP errors of forwarding. And the
//! CPE MACs it learns for members that have none configured.
//!
//! # The tables
//! - `IFACE_ADDRS`, an array by interface slot of [`IfaceAddrs`]: the
//!   addresses the interface's answers come from.
//! - `GATEWAYS`, a hash of [`GatewayKey`] (interface slot, family,
//!   address): every address of an access interface, which its members
//!   may use as their gateway. Its value (a `u32`, 1) is not read.
//! - `ICMP_RATE`, a per-CPU array of one `u64`: the generic cell rate
//!   algorithm's theoretical arrival time, in `bpf_ktime_get_ns`
//!   nanoseconds, of the echo replies and ICMP errors the CPU sends
//!   (`[edge] icmp_rate` and `icmp_burst`, in `Globals`).
//! - `LEARNED`, an array by member slot of [`LearnedMac`]: the last CPE MAC
//!   the datapath reported for a member without a configured MAC.
//! - `LEARN_EVENTS`, a ring buffer of [`LearnEvent`]s: the reports.

/// Address families, as [`GatewayKey::family`] has them.
pub mod family {
    pub const V4: u16 = 4;
    pub const V6: u16 = 6;
}

/// [`IfaceAddrs::flags`] bits: which of its addresses are set.
pub mod addr_flags {
    /// `v4` is set.
    pub const V4: u32 = 1 << 0;
    /// `v6` (a global IPv6 address) is set.
    pub const V6: u32 = 1 << 1;
    /// `link_local` is set.
    pub const LINK_LOCAL: u32 = 1 << 2;
}

/// An interface's own addresses, as the sources of what the fast path sends
/// from it: ICMP errors (`v4`, `v6`), echo replies and ARP replies (which
/// answer for the address asked), Router Advertisements (`link_local`).
/// When the interface has several of a kind, the lowest.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceAddrs {
    /// IPv4 address, network byte order.
    pub v4: [u8; 4],
    /// [`addr_flags`] bits.
    pub flags: u32,
    /// Global IPv6 address.
    pub v6: [u8; 16],
    /// IPv6 link-local address (fe80::/10).
    pub link_local: [u8; 16],
}

/// Most addresses of one access interface that `GATEWAYS` holds (the
/// lowest ones); [`GATEWAY_ENTRIES`] has room for every interface's.
pub const MAX_GATEWAYS_PER_IFACE: usize = 16;
/// Entries of `GATEWAYS`.
pub const GATEWAY_ENTRIES: u32 = super::MAX_IFACES * MAX_GATEWAYS_PER_IFACE as u32;

/// Key of `GATEWAYS`: an address of an access interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayKey {
    /// Interface slot.
    pub iface: u16,
    /// [`family`]: 4 or 6.
    pub family: u16,
    /// The address, network byte order; an IPv4 one in the first 4 bytes,
    /// the rest zero.
    pub addr: [u8; 16],
}

impl GatewayKey {
    pub const fn v4(iface: u16, a: [u8; 4]) -> Self {
        GatewayKey {
            iface,
            family: family::V4,
            addr: [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    }

    pub const fn v6(iface: u16, addr: [u8; 16]) -> Self {
        GatewayKey {
            iface,
            family: family::V6,
            addr,
        }
    }
}

/// [`LearnedMac::flags`]: the entry holds a MAC.
pub const LEARNED_VALID: u16 = 1;

/// The value of `LEARNED` at a member's slot: the last CPE MAC the
/// datapath reported for it. Userspace clears it when the slot's member
/// goes or gets a configured MAC, and reads it at start (the learned MACs
/// survive a restart).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnedMac {
    pub mac: [u8; 6],
    /// [`LEARNED_VALID`] when `mac` is set.
    pub flags: u16,
}

impl LearnedMac {
    /// The learned MAC, if any.
    pub const fn get(&self) -> Option<[u8; 6]> {
        if self.flags & LEARNED_VALID != 0 {
            Some(self.mac)
        } else {
            None
        }
    }
}

/// One record of `LEARN_EVENTS`: member `slot`'s frames come from `mac`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnEvent {
    pub slot: u32,
    pub mac: [u8; 6],
    pub _pad: u16,
}

/// Bytes of `LEARN_EVENTS` (a power of two, a multiple of the page size):
/// room for about 2,700 reports (24 bytes each with the ring's header)
/// that the daemon has not read yet. `LEARNED` is written only once a
/// report is in the ring, so a report that finds it full is made again by
/// the member's next frame.
pub const LEARN_EVENTS_BYTES: u32 = 64 * 1024;

const _: () = assert!(core::mem::size_of::<IfaceAddrs>() == 40);
const _: () = assert!(core::mem::size_of::<GatewayKey>() == 20);
const _: () = assert!(core::mem::size_of::<LearnedMac>() == 8);
const _: () = assert!(core::mem::size_of::<LearnEvent>() == 12);
