//! [`DatapathError`]: what failed when loading the program, touching a map,
//! attaching or running it.
use std::path::PathBuf;

use aya::{
    maps::{MapError, xdp::XdpMapError},
    pin::PinError,
    programs::ProgramError,
};
use router_common::{MAX_IFACES, MAX_IFINDEX};

/// Bytes of an Ethernet header: the kernel's test run refuses shorter data.
pub const ETH_HLEN: usize = 14;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The object could not be loaded (rights, kernel features).
    #[error(
        "cannot load the XDP program: {0}. collecte needs root (or CAP_BPF and CAP_NET_ADMIN) and a kernel with BTF and XDP (5.15 or later)"
    )]
    Load(#[source] aya::EbpfError),
    /// The verifier or the kernel refused the program, or a call on it.
    #[error(
        "the kernel refused the XDP program: {0}. Check `dmesg` and that the kernel is 5.15 or later"
    )]
    Program(#[source] ProgramError),
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    /// The embedded object lacks a map this collecte uses.
    #[error("map {map}: missing from the program object")]
    MissingMap { map: &'static str },
    /// The embedded object lacks the XDP program.
    #[error("map program: the object has no program named {name}")]
    MissingProgram { name: &'static str },
    /// An interface could not be made a redirect target (`EGRESS`).
    #[error("map EGRESS: interface {interface} (ifindex {ifindex}): {source}")]
    Egress {
        interface: String,
        ifindex: u32,
        #[source]
        source: XdpMapError,
    },
    /// A member slot at or beyond `max_members`.
    #[error("map MEMBER_LINES: member slot {slot} is beyond max_members = {max_members}")]
    SlotBeyond { slot: u32, max_members: u32 },
    /// A userspace-only map (`MEMBER_IDS`, `IFACE_NAMES`) could not be pinned.
    #[error("map {map}: cannot pin at {}: {source}", path.display())]
    PinMap {
        map: &'static str,
        path: PathBuf,
        #[source]
        source: PinError,
    },
    /// An ifindex beyond what `IFINDEX_SLOT` covers.
    #[error(
        "interface {interface} has ifindex {ifindex}, beyond the {MAX_IFINDEX} the datapath can classify; recreate the interface or restart the network namespace"
    )]
    IfindexTooLarge { interface: String, ifindex: u32 },
    /// An interface slot outside `1..MAX_IFACES`.
    #[error("interface slot {0} is out of range (at most {MAX_IFACES} interfaces)")]
    IfaceSlot(u32),
    /// The program could not be attached to an interface.
    #[error("cannot attach XDP to {interface} in {mode} mode: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    /// The kernel's test run failed.
    #[error("cannot run the program on a packet: {0}")]
    TestRun(#[source] ProgramError),
    /// A frame the kernel's test run refuses: shorter than [`ETH_HLEN`].
    #[error(
        "frame of {len} bytes is shorter than an Ethernet header ({ETH_HLEN} bytes), which the kernel's test run refuses"
    )]
    FrameTooShort { len: usize },
    /// A frame the test run would give the program only part of.
    #[error("frame of {len} bytes is larger than the kernel's test run accepts (at most {max})")]
    FrameTooLarge { len: usize, max: usize },
    /// The possible CPUs could not be counted.
    #[error("cannot count the CPUs: {0}")]
    Cpus(String),
    /// The member lines would not fit one array map.
    #[error(
        "max_members = {max_members} needs {bytes} bytes of member lines (64 bytes per member and possible CPU) on this machine's {cpus} possible CPUs, beyond the 4 GiB a kernel array map can hold; lower [datapath] max_members"
    )]
    TooLarge {
        max_members: u32,
        cpus: usize,
        bytes: u64,
    },
    /// The pin directory could not be created or cleaned.
    #[error(
        "cannot create the pin directory {path}: {source}; is bpffs mounted there (mount -t bpf bpf /sys/fs/bpf)?"
    )]
    PinDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A map (pinned, or being mapped) does not have the layout this
    /// collecte reads.
    #[error(
        "map {map}: {message}. The pinned tables were made by another version or configuration of collecte and cannot be read safely: restore the previous [datapath] sizes, or run `collecte stop --detach` (which stops the fast path) and start again"
    )]
    Layout { map: &'static str, message: String },
    /// A PPPoE session id the protocol does not allow.
    #[error(
        "map SESSIONS: session id {session_id:#06x} is reserved (0 and 0xffff are never a session's)"
    )]
    SessionId { session_id: u16 },
    /// An XDP link could not be pinned.
    #[error("cannot pin the XDP link of {interface}: {message}")]
    LinkPin { interface: String, message: String },
}

/// The error of a map operation on `map`.
pub(super) fn map_err(map: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |source| DatapathError::Map { map, source }
}
