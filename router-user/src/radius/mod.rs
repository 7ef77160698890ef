//! RADIUS for PPPoE sessions: authentication (RFC 2865, PAP and CHAP-MD5)
//! and accounting (RFC 2866), with Message-Authenticator (RFC 3579) and the
//! IPv6 attributes (RFC 3162 Framed-IPv6-Prefix, RFC 4818
//! Delegated-IPv6-Prefix).
//!
//! - [`packet`]: the packet codec and its authenticators, no I/O;
//! - [`attribute`]: attribute numbers and value encodings;
//! - [`client`]: the UDP client over the `[radius]` servers;
//! - [`secret`]: reading the shared secret's file.
//!
//! ```no_run
//! # async fn f(config: &router_core::config::RadiusConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use collecte::radius::{AccessRequest, Client, Credentials, NasPortType, read_secret};
//! let client = Client::new(config, read_secret(&config.secret_file)?)?;
//! let accept = client
//!     .authenticate(&AccessRequest {
//!         user: "alice@isp".into(),
//!         auth: Credentials::Pap { password: b"secret".to_vec() },
//!         nas_port_id: collecte::radius::nas_port_id("acc0", 100, 200),
//!         nas_port_type: NasPortType::Ethernet,
//!         calling_station_id: collecte::radius::calling_station_id([2, 0, 0, 0, 0, 1]),
//!     })
//!     .await?;
//! println!("{:?}", accept.framed_ip);
//! # Ok(()) }
//! ```
pub mod attribute;
pub mod client;
pub mod packet;
pub mod secret;

#[cfg(test)]
mod tests;

pub use client::{
    Accept, AccessRequest, AcctKind, AcctRecord, Client, Credentials, NasPortType, RadiusError,
    calling_station_id, nas_port_id,
};
pub use secret::{SecretError, read_secret};
