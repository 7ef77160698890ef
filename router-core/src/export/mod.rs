//! The member routes exported to a kernel routing table (`[routes]`), for a
//! routing daemon to announce: which routes to add and which to remove.
//!
//! One route per member prefix, of type `blackhole` and protocol [`PROTO`],
//! in the table of `[routes] table`. The table is not consulted for
//! forwarding (no `ip rule` points at it): it is only where BIRD or FRR
//! learn what this router serves.
//!
//! Nothing here touches the kernel: `collecte::routes` does the netlink
//! I/O and drives an [`Exporter`], the state machine that says what to do
//! next (dump the table, take the members' prefixes, apply changes).
//!
//! # Layout
//! - `plan`: [`PROTO`], [`Ops`] (what to change), [`diff`], [`Delta`]
//!   (a change of the member set), [`Failure`];
//! - `exporter`: [`Exporter`], what is installed, what is wanted, and the
//!   next [`Step`].
mod exporter;
mod plan;

#[cfg(test)]
mod tests;

pub use exporter::{Applied, Exporter, Step, Withdrawal};
pub use plan::{Delta, Failure, Ops, PROTO, diff, normalize};
