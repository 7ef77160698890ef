//! PPPoE sessions in the fast path (RFC 2516): the tables that let the
//! program take a session's IP packets out of their PPPoE and PPP headers
//! on the way up, and put them in on the way down.
//!
//! The daemon negotiates every session (discovery, LCP, authentication,
//! IPCP, IPv6CP); once a session is up, its member is an ordinary member
//! (with [`member_flags::PPPOE`](crate::member_flags::PPPOE) set) and the
//! session is written here:
//! - `SESSIONS` (hash, [`SessionKey`] → [`Session`]): an upstream session
//!   frame is looked up by where it came from and its session id;
//! - `SESSION_LINES` (array, by member slot, [`SessionLine`]): a
//!   downstream packet to a PPPoE member gets its session id and MRU.
//!
//! Both maps are pinned like the member tables, so that a restart keeps
//! established sessions forwarding.

/// Ethertype of PPPoE discovery frames (PADI, PADO, PADR, PADS, PADT).
pub const ETH_P_PPPOE_DISCOVERY: u16 = 0x8863;
/// Ethertype of PPPoE session frames.
pub const ETH_P_PPPOE_SESSION: u16 = 0x8864;
/// PPPoE version and type byte (both 1), and the code of session frames.
pub const VER_TYPE: u8 = 0x11;
pub const CODE_SESSION: u8 = 0x00;
/// The PPPoE header: version/type, code, session id, length.
pub const PPPOE_HLEN: usize = 6;
/// The PPP protocol field that follows it in a session frame.
pub const PPP_PROTO_LEN: usize = 2;
/// PPP protocol numbers carried in the fast path.
pub const PPP_IPV4: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;

/// Key of `SESSIONS`: one session, as its frames arrive.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// Interface slot of the access interface.
    pub iface: u16,
    /// Outer tag (S-tag) VLAN id, 0 for none.
    pub s_vlan: u16,
    /// Inner tag (C-tag, or the single 802.1Q tag) VLAN id, 0 for none.
    pub c_vlan: u16,
    /// PPPoE session id, in host order (never 0 nor 0xffff).
    pub session_id: u16,
    /// The client's MAC.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Value of `SESSIONS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// The session's member slot.
    pub member: u32,
    /// The negotiated MRU: TCP SYNs are clamped to MRU − 40 (IPv4) or
    /// MRU − 60 (IPv6).
    pub mru: u16,
    pub _pad: u16,
}

/// [`SessionLine::flags`] bits.
pub mod line_flags {
    /// The entry holds a session.
    pub const PRESENT: u16 = 1 << 0;
}

/// Value of `SESSION_LINES` at a member slot: what a downstream packet
/// to a PPPoE member needs beyond the member's [`MemberFwd`](crate::MemberFwd)
/// (interface, tags and the client's MAC).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionLine {
    /// PPPoE session id, host order.
    pub session_id: u16,
    /// The negotiated MRU.
    pub mru: u16,
    /// [`line_flags`] bits.
    pub flags: u16,
    pub _pad: u16,
}

/// TCP MSS for a session of MRU `mru`: the MRU less the IPv4 (20) or IPv6
/// (40) header and the TCP header (20).
pub const fn clamped_mss(mru: u16, ipv6: bool) -> u16 {
    let overhead = if ipv6 { 60 } else { 40 };
    mru.saturating_sub(overhead)
}

const _: () = assert!(core::mem::size_of::<SessionKey>() == 16);
const _: () = assert!(core::mem::size_of::<Session>() == 8);
const _: () = assert!(core::mem::size_of::<SessionLine>() == 8);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), integers only, no padding (size asserts above).
    unsafe impl aya::Pod for super::SessionKey {}
    unsafe impl aya::Pod for super::Session {}
    unsafe impl aya::Pod for super::SessionLine {}
}
