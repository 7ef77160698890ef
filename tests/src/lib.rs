//! Test support for collecte: network namespaces, veth topologies and packet
//! fixtures.
//!
//! Every test that needs the kernel runs in a namespace of its own
//! ([`Netns`]), created when the test starts and removed when it ends, so
//! tests run in parallel without seeing each other.
pub mod adverts;
pub mod api;
pub mod bgp;
pub mod bird;
pub mod daemon;
pub mod fixtures;
pub mod frames;
pub mod freeradius;
pub mod harness;
pub mod netns;
pub mod pppoe;
pub mod prometheus;
pub mod stacks;
pub mod tag_probe;
pub mod tagged;
pub mod topology;
pub mod traffic;
pub mod vlan_tc;
pub mod wire;

pub use netns::Netns;

/// Fails loudly (never skips) when the tests do not run as root: they need
/// namespaces and BPF.
pub fn require_root() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (namespaces, BPF): run them through `cargo xtask test` as root"
    );
}
