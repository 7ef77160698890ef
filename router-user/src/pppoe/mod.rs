//! PPPoE access (RFC 2516) and the PPP negotiation over it: a sans-IO
//! [`Engine`] that turns received frames, RADIUS outcomes and clock ticks
//! into [`Action`]s (frames to send, credentials to check, sessions up or
//! down), and the packet [`socket`] that carries the frames.
//!
//! One file per job: [`frame`] (Ethernet, tags and the PPPoE header),
//! [`discovery`] (PADI/PADO/PADR/PADS/PADT tags), [`ppp`] (the packets of
//! LCP, IPCP and IPv6CP and their options), [`negotiation`] (one control
//! protocol's Configure exchange and restart timer), [`auth`] (PAP,
//! CHAP-MD5), [`ncp`] (LCP, IPCP and IPv6CP option policy), [`dhcpv6`]
//! (prefix delegation over the session), [`engine`] (every session's
//! state; one session's in `session`), [`socket`] (AF_PACKET).
//!
//! The engine does no I/O and reads no clock but the Unix time a session
//! starts: the caller passes `now`. The types the engine and its caller
//! share are in `types`, re-exported here.

pub mod auth;
pub mod dhcpv6;
pub mod discovery;
pub mod engine;
pub mod frame;
pub mod ncp;
pub mod negotiation;
pub mod ppp;
mod rng;
mod session;
pub mod socket;
mod types;

pub use engine::Engine;
pub use types::*;
