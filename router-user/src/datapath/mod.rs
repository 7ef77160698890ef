//! The only module that touches aya and the kernel maps.
//!
//! [`Datapath`] loads the XDP program embedded in the binary, owns its maps,
//! writes table changes ([`Changes`](router_core::changes::Changes)) into them, reads counters, runs packets
//! through the program (`BPF_PROG_TEST_RUN`) and attaches it to interfaces.
//!
//! Members, routes and attachments are double-buffered: a change is written
//! into the inactive half, then `GLOBALS.active` flips, so a packet sees
//! either the whole old or the whole new table. The half that just became
//! inactive receives the same change at the next apply.
//!
//! A member's forwarding data lives in its member lines (`MEMBER_LINES`,
//! one 64-byte line per CPU and slot, beside that CPU's counters of the
//! member): a change is written into the inactive half's copy in every
//! CPU's line, and counters are summed over the CPUs' lines. The lines are
//! reached through short-lived mappings of at most [`COUNTER_WINDOW`]
//! slots per CPU, so that the process never holds the whole array.
//!
//! # Layout
//! - this module: [`Datapath`] and the types of its API;
//! - `load`: loading the program, reusing or creating the pinned maps;
//! - `pins`: the pin directory without a program ([`remove_pins`]);
//! - `mapped`: memory-mapped array maps;
//! - `write`: interfaces, applies and flips, the whole state;
//! - `counters`: member and interface counters;
//! - `learn`: the CPE MACs the datapath learns (its reports, and what it
//!   keeps by member slot); `ring`: the reports' ring, as the daemon reads
//!   it;
//! - `links`: attaching to and detaching from interfaces;
//! - `run`: the kernel's test run on one frame;
//! - `sessions`: PPPoE sessions (`SESSIONS`, `SESSION_LINES`);
//! - `bench` (feature `bench`): the bench build, for the `bench` crate;
//! - `error`: [`DatapathError`].
use std::{
    os::fd::AsFd as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::{Array, DevMap, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::Xdp,
    programs::xdp::XdpLinkId,
};
use router_common::{
    AttachKey, GatewayKey, Globals, IfaceAddrs, IfaceInfo, LearnedMac, MemberLine, SlotName,
    TraceVerdict, member_line_index,
    pppoe::{Session, SessionKey, SessionLine},
    route,
};
use router_core::changes::{Attachment, Edge, Uplinks};

#[cfg(feature = "bench")]
pub mod bench;
mod counters;
mod error;
mod learn;
mod links;
mod load;
mod mapped;
mod pins;
mod ring;
mod run;
mod sessions;
mod write;

pub use error::{DatapathError, ETH_HLEN};
pub use mapped::COUNTER_WINDOW;
use mapped::{Mapped, Window, Windowed};
pub use pins::{PINNED_MAPS, remove_pins};
pub use ring::LearnEvents;

/// The XDP object built by `build.rs` from `router-ebpf`.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/router"));

const PROGRAM_NAME: &str = "collecte";

/// The PPPoE programs the entry program tail-calls, by their index in
/// `PPPOE_PROGS` (see router-ebpf's `pppoe`).
const PPPOE_PROGRAMS: [(&str, u32); 2] = [("pppoe_up", 0), ("pppoe_down", 1)];

/// How long a half stays untouched after it stops being active, so that
/// packets already inside the program finish reading it. An XDP program run
/// lasts microseconds.
const GRACE: Duration = Duration::from_millis(2);

/// Table sizes fixed when the program is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizing {
    pub max_members: u32,
    pub route_groups: u32,
}

impl Sizing {
    /// Entries in one half of `ROUTES`.
    pub fn route_half(&self) -> u32 {
        route::half_entries(self.route_groups)
    }
}

/// Which instance of the program to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The forwarding datapath: counts, redirects.
    Forward,
    /// The tracer's instance: takes its ingress interface from a map, records
    /// its verdict, never counts and never redirects.
    Trace,
}

/// What one run of the program did to a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// The XDP action (`XDP_PASS` = 2, `XDP_DROP` = 1, `XDP_TX` = 3,
    /// `XDP_REDIRECT` = 4, ...).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// The XDP action codes, as the kernel defines them.
pub mod action {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;

    pub fn name(action: u32) -> &'static str {
        match action {
            ABORTED => "aborted",
            DROP => "drop",
            PASS => "pass",
            TX => "reply",
            REDIRECT => "forward",
            _ => "unknown",
        }
    }
}

/// The loaded program and its maps.
pub struct Datapath {
    ebpf: Ebpf,
    mode: Mode,
    sizing: Sizing,
    globals: Array<MapData, Globals>,
    ifindex_slot: Array<MapData, u32>,
    ifaces: Array<MapData, IfaceInfo>,
    egress: DevMap<MapData>,
    /// The prefix table, as a flat array of entries (both halves).
    routes: Windowed<u32>,
    attachments: HashMap<MapData, AttachKey, u32>,
    /// `MEMBER_LINES`, reached through [`Window`]s.
    lines: MapData,
    iface_counters: PerCpuArray<MapData, u64>,
    iface_addrs: Array<MapData, IfaceAddrs>,
    gateways: HashMap<MapData, GatewayKey, u32>,
    /// `LEARNED`, by member slot.
    learned: Windowed<LearnedMac>,
    /// `LEARN_EVENTS`, until the daemon takes it.
    learn_events: Option<RingBuf<MapData>>,
    trace: Array<MapData, TraceVerdict>,
    sessions: HashMap<MapData, SessionKey, Session>,
    /// By member slot.
    session_lines: Array<MapData, SessionLine>,
    /// Held so that the tail calls' targets stay (a program array loses
    /// its entries when no user reference is left).
    _pppoe_progs: ProgramArray<MapData>,
    active: u32,
    last_flip: Instant,
    /// Changes the inactive half has not received yet.
    lagging: Lagging,
    /// Uplink slots in force.
    uplinks: Uplinks,
    /// `[edge]` settings in force.
    edge: Edge,
    ncpus: usize,
    /// The tables were reused from pins.
    reused: bool,
    /// Pinned only: who holds each member slot and interface slot.
    member_ids: Option<Windowed<SlotName>>,
    iface_names: Option<Mapped<SlotName>>,
    /// Pinned only: where XDP links are pinned.
    link_dir: Option<PathBuf>,
}

/// Where and how to load the program.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub sizing: Sizing,
    pub mode: Mode,
    /// Reuse (or create and pin) the state maps under this bpffs directory.
    pub pin_dir: Option<PathBuf>,
}

impl Datapath {
    /// Whether the tables came from a previous run's pins.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The instructions the verifier went through to accept the program
    /// (`bpf_prog_info.verified_insns`), if the kernel says.
    pub fn verified_instructions(&mut self) -> Option<u32> {
        self.program()
            .info()
            .ok()
            .and_then(|i| i.verified_instruction_count())
    }

    /// [`Datapath::verified_instructions`] of each program: the entry
    /// program (`collecte`) and the PPPoE programs it tail-calls.
    pub fn verified_instructions_each(&self) -> Vec<(&'static str, Option<u32>)> {
        [PROGRAM_NAME]
            .into_iter()
            .chain(PPPOE_PROGRAMS.iter().map(|(n, _)| *n))
            .map(|name| {
                let n = self
                    .ebpf
                    .program(name)
                    .and_then(|p| p.info().ok())
                    .and_then(|i| i.verified_instruction_count());
                (name, n)
            })
            .collect()
    }

    pub fn sizing(&self) -> Sizing {
        self.sizing
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub(super) fn program(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .expect("the program was checked at load time")
    }

    /// CPU `cpu`'s lines of slots `first..end`.
    fn line_window(
        &self,
        cpu: u32,
        first: u32,
        end: u32,
        write: bool,
    ) -> Result<Window<MemberLine>, DatapathError> {
        let start = member_line_index(cpu, self.sizing.max_members, first) as usize;
        Window::map(
            self.lines.fd().as_fd(),
            "MEMBER_LINES",
            start,
            (end - first) as usize,
            write,
        )
    }

    fn slot_error(&self, slot: u32) -> DatapathError {
        DatapathError::SlotBeyond {
            slot,
            max_members: self.sizing.max_members,
        }
    }
}

/// How the program is attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// In the driver (native XDP): the fast path.
    Native,
    /// In the kernel's generic hook, after the socket buffer is built:
    /// works on any interface, much more slowly.
    Generic,
}

/// An attachment of the program, to detach it by.
pub type LinkId = XdpLinkId;

/// What the inactive half still lacks after an apply: the member slots and
/// route entries (indices within a half) that the apply changed, whose
/// values the active half holds, and the attachments with their values.
#[derive(Clone, Debug, Default)]
struct Lagging {
    members: Vec<u32>,
    routes: Vec<u32>,
    attachments: Vec<(Attachment, Option<u32>)>,
}
