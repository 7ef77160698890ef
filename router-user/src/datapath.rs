//! The only module that touches aya and the kernel maps.
//!
//! [`Datapath`] loads the XDP program embedded in the binary, owns its maps,
//! writes table changes ([`Changes`]) into them, reads counters, runs packets
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
use std::{
    collections::BTreeMap,
    os::fd::{AsFd as _, AsRawFd as _},
    path::PathBuf,
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMap, HashMap, MapData, MapError, PerCpuArray, PerCpuValues},
    programs::links::{FdLink, PinnedLink},
    programs::xdp::{XdpLink, XdpLinkId},
    programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode},
    util::nr_cpus,
};
use router_common::{
    ABI_VERSION, AttachKey, Globals, IfaceInfo, MAX_IFACES, MAX_IFINDEX, MemberCounters, MemberFwd,
    MemberLine, RouteChunk, SlotName, TraceVerdict, member_line_index, reason, route,
};
use router_core::changes::{Attachment, Changes, FullState, RecordedSlots, SlotIds, Uplinks};

/// The XDP object built by `build.rs` from `router-ebpf`.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/router"));
const PROGRAM_NAME: &str = "collecte";

/// How long a half stays untouched after it stops being active, so that
/// packets already inside the program finish reading it. An XDP program run
/// lasts microseconds.
const GRACE: Duration = Duration::from_millis(2);

/// Bytes of an Ethernet header: the kernel's test run refuses shorter data.
pub const ETH_HLEN: usize = 14;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "cannot load the XDP program: {0}. collecte needs root (or CAP_BPF and CAP_NET_ADMIN) and a kernel with BTF and XDP (5.15 or later)"
    )]
    Load(#[source] aya::EbpfError),
    #[error(
        "the kernel refused the XDP program: {0}. Check `dmesg` and that the kernel is 5.15 or later"
    )]
    Program(#[source] ProgramError),
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("map {map}: {message}")]
    Devmap { map: &'static str, message: String },
    #[error(
        "interface {interface} has ifindex {ifindex}, beyond the {MAX_IFINDEX} the datapath can classify; recreate the interface or restart the network namespace"
    )]
    IfindexTooLarge { interface: String, ifindex: u32 },
    #[error("interface slot {0} is out of range (at most {MAX_IFACES} interfaces)")]
    IfaceSlot(u32),
    #[error("cannot attach XDP to {interface} in {mode} mode: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("cannot run the program on a packet: {0}")]
    TestRun(#[source] ProgramError),
    #[error(
        "frame of {len} bytes is shorter than an Ethernet header ({ETH_HLEN} bytes), which the kernel's test run refuses"
    )]
    FrameTooShort { len: usize },
    #[error("frame of {len} bytes is larger than the kernel's test run accepts (at most {max})")]
    FrameTooLarge { len: usize, max: usize },
    #[error("cannot count the CPUs: {0}")]
    Cpus(String),
    #[error(
        "max_members = {max_members} needs {bytes} bytes of member lines (64 bytes per member and possible CPU) on this machine's {cpus} possible CPUs, beyond the 4 GiB a kernel array map can hold; lower [datapath] max_members"
    )]
    TooLarge {
        max_members: u32,
        cpus: usize,
        bytes: u64,
    },
    #[error(
        "cannot create the pin directory {path}: {source}; is bpffs mounted there (mount -t bpf bpf /sys/fs/bpf)?"
    )]
    PinDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "map {map}: {message}. The pinned tables were made by another version or configuration of collecte and cannot be read safely: restore the previous [datapath] sizes, or run `collecte stop --detach` (which stops the fast path) and start again"
    )]
    Layout { map: &'static str, message: String },
    #[error("cannot pin the XDP link of {interface}: {message}")]
    LinkPin { interface: String, message: String },
}

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> DatapathError {
    move |source| DatapathError::Map { map, source }
}

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
    /// The XDP action (`XDP_PASS` = 2, `XDP_DROP` = 1, `XDP_REDIRECT` = 4, ...).
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
            TX => "tx",
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
    trace: Array<MapData, TraceVerdict>,
    active: u32,
    last_flip: Instant,
    /// Changes the inactive half has not received yet.
    lagging: Lagging,
    /// Uplink slots in force.
    uplinks: Uplinks,
    ncpus: usize,
    /// The tables were reused from pins.
    reused: bool,
    /// Pinned only: who holds each member slot and interface slot.
    member_ids: Option<Windowed<SlotName>>,
    iface_names: Option<Mapped<SlotName>>,
    /// Pinned only: where XDP links are pinned.
    link_dir: Option<PathBuf>,
}

macro_rules! take {
    ($ebpf:expr, $name:literal) => {{
        let map = $ebpf.take_map($name).ok_or(DatapathError::Devmap {
            map: $name,
            message: "missing from the program object".into(),
        })?;
        map.try_into().map_err(map_err($name))?
    }};
}

/// The maps that make the datapath's state, pinned under `pin_dir` by the
/// daemon. (`TRACE_VERDICT` is the tracer's scratch space.)
pub const PINNED_MAPS: &[&str] = &[
    "GLOBALS",
    "IFINDEX_SLOT",
    "IFACES",
    "EGRESS",
    "ROUTES",
    "ATTACHMENTS",
    "MEMBER_LINES",
    "IFACE_COUNTERS",
];

/// Maps that earlier layouts pinned and this one no longer has (ABI 2:
/// the member table and the counters apart). Their presence means pinned
/// tables of another version; `collecte stop --detach` removes them too.
const FORMER_PINNED_MAPS: &[&str] = &["MEMBERS", "MEMBER_COUNTERS"];

/// Where and how to load the program.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub sizing: Sizing,
    pub mode: Mode,
    /// Reuse (or create and pin) the state maps under this bpffs directory.
    pub pin_dir: Option<PathBuf>,
}

impl Datapath {
    /// Loads a fresh instance of the program with empty tables.
    pub fn load(sizing: Sizing, mode: Mode) -> Result<Self, DatapathError> {
        Self::load_with(&LoadOptions {
            sizing,
            mode,
            pin_dir: None,
        })
    }

    /// Loads the program. With a `pin_dir`, the state maps pinned there by a
    /// previous run are reused (after checking their layout) — counters and
    /// tables carry on — or created and pinned.
    pub fn load_with(opts: &LoadOptions) -> Result<Self, DatapathError> {
        Self::load_inner(opts, None)
    }

    /// [`Datapath::load_with`], or with `bench` = `Some(addresses)` the bench
    /// build (see [`Datapath::load_bench`]).
    fn load_inner(opts: &LoadOptions, bench: Option<u32>) -> Result<Self, DatapathError> {
        let LoadOptions {
            sizing,
            mode,
            pin_dir,
        } = opts;
        let (sizing, mode) = (*sizing, *mode);
        let trace: u8 = (mode == Mode::Trace).into();
        let bench_on: u8 = bench.is_some().into();
        let ncpus = nr_cpus().map_err(|(_, e)| DatapathError::Cpus(e.to_string()))?;
        let lines = line_entries(sizing.max_members, ncpus)?;
        let mut loader = EbpfLoader::new();
        if let Some(addresses) = bench {
            loader.map_max_entries("BENCH_ADDRS", addresses.max(1));
        }
        loader
            .override_global("TRACE", &trace, true)
            .override_global("BENCH", &bench_on, true)
            .map_max_entries("ROUTES", 2 * sizing.route_half() / route::CHUNK)
            .map_max_entries("ATTACHMENTS", 2 * sizing.max_members + 2 * MAX_IFACES)
            .map_max_entries("MEMBER_LINES", lines);
        let mut reused = false;
        if let Some(dir) = pin_dir {
            std::fs::create_dir_all(dir).map_err(|source| DatapathError::PinDir {
                path: dir.clone(),
                source,
            })?;
            // Before anything is pinned beside them.
            check_pinned_version(dir)?;
            for name in PINNED_MAPS {
                let path = dir.join(name);
                reused |= path.exists();
                loader.map_pin_path(name, path);
            }
        }
        let mut ebpf = loader.load(PROGRAM).map_err(DatapathError::Load)?;
        if pin_dir.is_some() {
            check_layouts(&ebpf, &sizing, lines)?;
        }
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DatapathError::Devmap {
                map: "program",
                message: "the object has no program named collecte".into(),
            })?
            .try_into()
            .map_err(DatapathError::Program)?;
        prog.load().map_err(DatapathError::Program)?;
        let mut dp = Datapath {
            globals: take!(ebpf, "GLOBALS"),
            ifindex_slot: take!(ebpf, "IFINDEX_SLOT"),
            ifaces: take!(ebpf, "IFACES"),
            egress: take!(ebpf, "EGRESS"),
            routes: Windowed::new(
                take_data(&mut ebpf, "ROUTES")?,
                "ROUTES",
                (2 * sizing.route_half()) as usize,
            ),
            attachments: take!(ebpf, "ATTACHMENTS"),
            lines: lines_data(take_data(&mut ebpf, "MEMBER_LINES")?)?,
            iface_counters: take!(ebpf, "IFACE_COUNTERS"),
            trace: take!(ebpf, "TRACE_VERDICT"),
            ebpf,
            mode,
            sizing,
            active: 0,
            last_flip: Instant::now(),
            lagging: Lagging::default(),
            uplinks: Uplinks::default(),
            ncpus,
            reused: false,
            member_ids: None,
            iface_names: None,
            link_dir: None,
        };
        if let Some(dir) = pin_dir {
            dp.member_ids = Some(Windowed::new(
                names_data(dir, "MEMBER_IDS", sizing.max_members)?,
                "MEMBER_IDS",
                sizing.max_members as usize,
            ));
            dp.iface_names = Some(Mapped::new(
                names_data(dir, "IFACE_NAMES", MAX_IFACES)?,
                "IFACE_NAMES",
            )?);
            let links = dir.join("links");
            std::fs::create_dir_all(&links).map_err(|source| DatapathError::PinDir {
                path: links.clone(),
                source,
            })?;
            dp.link_dir = Some(links);
        }
        let pinned = dp.globals.get(&0, 0).map_err(map_err("GLOBALS"))?;
        if reused && pinned.abi_version != 0 {
            if pinned.abi_version != ABI_VERSION {
                return Err(DatapathError::Layout {
                    map: "GLOBALS",
                    message: format!(
                        "the pinned tables have layout version {}, this collecte reads version {ABI_VERSION}",
                        pinned.abi_version
                    ),
                });
            }
            // Carry on from the pinned state: the active half keeps
            // forwarding until the first apply, which writes the other half
            // whole.
            dp.reused = true;
            dp.active = pinned.active;
            dp.uplinks = Uplinks {
                v4: pinned.uplink4,
                v6: pinned.uplink6,
            };
        } else {
            dp.write_globals(Uplinks::default())?;
        }
        Ok(dp)
    }

    /// Whether the tables came from a previous run's pins.
    pub fn reused(&self) -> bool {
        self.reused
    }

    pub fn sizing(&self) -> Sizing {
        self.sizing
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn program(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .expect("the program was checked at load time")
    }

    fn write_globals(&mut self, uplinks: Uplinks) -> Result<(), DatapathError> {
        let g = Globals {
            active: self.active,
            max_members: self.sizing.max_members,
            route_half: self.sizing.route_half(),
            uplink4: uplinks.v4,
            uplink6: uplinks.v6,
            abi_version: ABI_VERSION,
        };
        self.globals.set(0, g, 0).map_err(map_err("GLOBALS"))
    }

    /// Installs interface `slot`. `previous_ifindex` is the ifindex the slot
    /// had, whose classification entry is removed when it differs.
    pub fn set_iface(
        &mut self,
        slot: u32,
        name: &str,
        info: &IfaceInfo,
        previous_ifindex: Option<u32>,
    ) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if info.ifindex >= MAX_IFINDEX {
            return Err(DatapathError::IfindexTooLarge {
                interface: name.to_string(),
                ifindex: info.ifindex,
            });
        }
        if self.mode == Mode::Forward {
            self.egress
                .set(slot, info.ifindex, None, 0)
                .map_err(|e| DatapathError::Devmap {
                    map: "EGRESS",
                    message: format!("interface {name} (ifindex {}): {e}", info.ifindex),
                })?;
        }
        self.ifaces.set(slot, info, 0).map_err(map_err("IFACES"))?;
        if let Some(names) = self.iface_names.as_mut()
            && let Some(n) = names.as_mut_slice().get_mut(slot as usize)
        {
            *n = slot_name(name);
        }
        if let Some(old) = previous_ifindex
            && old != info.ifindex
            && old < MAX_IFINDEX
        {
            self.ifindex_slot
                .set(old, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.ifindex_slot
            .set(info.ifindex, slot, 0)
            .map_err(map_err("IFINDEX_SLOT"))
    }

    /// Removes interface `slot` from the datapath.
    pub fn clear_iface(&mut self, slot: u32, ifindex: u32) -> Result<(), DatapathError> {
        if slot == 0 || slot >= MAX_IFACES {
            return Err(DatapathError::IfaceSlot(slot));
        }
        if ifindex < MAX_IFINDEX {
            self.ifindex_slot
                .set(ifindex, 0, 0)
                .map_err(map_err("IFINDEX_SLOT"))?;
        }
        self.ifaces
            .set(slot, IfaceInfo::default(), 0)
            .map_err(map_err("IFACES"))
    }

    /// Applies `changes`: writes them (and whatever the inactive half still
    /// lacks) into the inactive half, then makes it active.
    pub fn apply(&mut self, mut changes: Changes) -> Result<(), DatapathError> {
        let half = 1 - self.active;
        // The inactive half was active until `last_flip`.
        let since = self.last_flip.elapsed();
        if since < GRACE {
            std::thread::sleep(GRACE - since);
        }
        let zero = std::mem::take(&mut changes.zero_counters);
        self.zero_member_counters(&zero)?;
        let ids = std::mem::take(&mut changes.ids);
        self.write_ids(&ids)?;
        // What the half missed at the last apply (copied from the active
        // half, which has it), then this change.
        let lagging = std::mem::take(&mut self.lagging);
        self.catch_up(half, &lagging)?;
        self.write_half(half, &changes)?;
        self.flip(half, changes.uplinks)?;
        // Only where the other half lacks this change, not its values.
        self.lagging = Lagging {
            members: changes.members.iter().map(|(slot, _)| *slot).collect(),
            routes: changes.routes.iter().map(|(i, _)| *i).collect(),
            attachments: changes.attachments,
        };
        Ok(())
    }

    /// Brings `half` up to date with the other (active) half where the
    /// last apply changed it.
    fn catch_up(&mut self, half: u32, lag: &Lagging) -> Result<(), DatapathError> {
        let (to, from) = ((half & 1) as usize, (1 - (half & 1)) as usize);
        self.each_line(lag.members.iter().map(|s| (*s, ())), |line, ()| {
            // SAFETY: `line` points at a line of a live read-write window;
            // the program never writes `fwd`.
            unsafe {
                let fwd = std::ptr::addr_of!((*line).fwd[from]).read_volatile();
                std::ptr::addr_of_mut!((*line).fwd[to]).write_volatile(fwd);
            }
        })?;
        let route_half = self.sizing.route_half() as usize;
        self.routes.copy_between(
            from * route_half,
            to * route_half,
            lag.routes.iter().map(|&i| i as usize),
        )?;
        self.write_attachments(half, lag.attachments.iter().copied())
    }

    /// Makes `half` active.
    fn flip(&mut self, half: u32, uplinks: Uplinks) -> Result<(), DatapathError> {
        self.active = half;
        self.uplinks = uplinks;
        self.write_globals(uplinks)?;
        self.last_flip = Instant::now();
        Ok(())
    }

    /// Replaces the whole table contents with `full` (from
    /// `Tables::full_state`), whatever the halves held before (a restart
    /// over pinned tables): writes the inactive half whole, flips, then
    /// writes the other half whole too.
    pub fn apply_full(&mut self, full: &FullState<'_>) -> Result<(), DatapathError> {
        self.zero_member_counters(&full.zero_counters)?;
        if let Some(names) = self.member_ids.as_ref() {
            names.fill(0, names.len, SlotName::default())?;
        }
        self.write_ids(&full.ids)?;
        for _ in 0..2 {
            let since = self.last_flip.elapsed();
            if since < GRACE {
                std::thread::sleep(GRACE - since);
            }
            let half = 1 - self.active;
            self.write_full_half(half, full)?;
            self.flip(half, full.uplinks)?;
        }
        self.lagging = Lagging::default();
        Ok(())
    }

    fn write_full_half(&mut self, half: u32, full: &FullState<'_>) -> Result<(), DatapathError> {
        // Routes: the roots and every allocated group. Groups beyond are
        // unreachable, whatever they hold.
        let base = (half * self.sizing.route_half()) as usize;
        self.routes.copy_in(base, &full.routes)?;
        self.write_members(
            half,
            full.members
                .iter()
                .map(|(slot, m)| (*slot, MemberFwd::from_info(m))),
        )?;
        // Attachments: exactly `full.attachments` in this half.
        let wanted: std::collections::HashSet<Attachment> =
            full.attachments.iter().map(|(k, _)| *k).collect();
        let stale: Vec<AttachKey> = self
            .attachments
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.half == half as u16)
            .filter(|k| {
                !wanted.contains(&Attachment {
                    iface: k.iface,
                    s_vlan: k.s_vlan,
                    c_vlan: k.c_vlan,
                })
            })
            .collect();
        for key in stale {
            match self.attachments.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => {}
                Err(MapError::SyscallError(ref e)) if is_enoent(&e.io_error) => {}
                Err(e) => return Err(map_err("ATTACHMENTS")(e)),
            }
        }
        self.write_attachments(half, full.attachments.iter().map(|(k, v)| (*k, Some(*v))))
    }

    fn write_ids(&mut self, ids: &SlotIds) -> Result<(), DatapathError> {
        if let Some(names) = self.member_ids.as_ref() {
            names.write(
                ids.iter()
                    .map(|(slot, id)| (slot as usize, slot_name(id.unwrap_or("")))),
            )?;
        }
        Ok(())
    }

    /// Slots recorded by a previous run (pinned only): member id -> slot and
    /// interface name -> slot.
    pub fn recorded_slots(&self) -> Result<RecordedSlots, DatapathError> {
        let mut members = Vec::new();
        if let Some(m) = &self.member_ids {
            m.read(|slot, n| {
                if let Some(name) = slot_name_text(&n) {
                    members.push((name.to_string(), slot as u32));
                }
            })?;
        }
        let mut ifaces = BTreeMap::new();
        if let Some(m) = &self.iface_names {
            for (slot, n) in m.as_slice().iter().enumerate() {
                if let Some(name) = slot_name_text(n) {
                    ifaces.insert(name.to_string(), slot as u32);
                }
            }
        }
        Ok(RecordedSlots { members, ifaces })
    }

    fn write_half(&mut self, half: u32, c: &Changes) -> Result<(), DatapathError> {
        self.write_members(
            half,
            c.members
                .iter()
                .map(|(slot, m)| (*slot, MemberFwd::from_info(m))),
        )?;
        let route_base = (half * self.sizing.route_half()) as usize;
        self.routes.write(
            c.routes
                .iter()
                .map(|&(index, v)| (route_base + index as usize, v)),
        )?;
        self.write_attachments(half, c.attachments.iter().map(|(k, v)| (*k, *v)))
    }

    /// Writes attachments of `half` (`None` removes).
    fn write_attachments(
        &mut self,
        half: u32,
        attachments: impl IntoIterator<Item = (Attachment, Option<u32>)>,
    ) -> Result<(), DatapathError> {
        for (
            Attachment {
                iface,
                s_vlan,
                c_vlan,
            },
            v,
        ) in attachments
        {
            let key = AttachKey {
                iface,
                half: half as u16,
                s_vlan,
                c_vlan,
            };
            match v {
                Some(v) => self
                    .attachments
                    .insert(key, v, 0)
                    .map_err(map_err("ATTACHMENTS"))?,
                None => match self.attachments.remove(&key) {
                    Ok(()) | Err(MapError::KeyNotFound) => {}
                    Err(MapError::SyscallError(ref e)) if is_enoent(&e.io_error) => {}
                    Err(e) => return Err(map_err("ATTACHMENTS")(e)),
                },
            }
        }
        Ok(())
    }

    fn sum<T: aya::Pod + Default + Copy>(values: &PerCpuValues<T>, add: impl Fn(&mut T, &T)) -> T {
        let mut total = T::default();
        for v in values.iter() {
            add(&mut total, v);
        }
        total
    }

    /// A member's counters, summed over CPUs.
    pub fn member_counters(&self, slot: u32) -> Result<MemberCounters, DatapathError> {
        Ok(self.member_counters_many(&[slot])?[0])
    }

    /// The counters of each of `slots`, summed over CPUs, in the same order.
    ///
    /// Read through short-lived memory mappings of at most
    /// [`COUNTER_WINDOW`] slots per CPU: a scrape of a million members reads
    /// memory instead of making a system call per member, and holds only
    /// one window in the process at a time.
    pub fn member_counters_many(
        &self,
        slots: &[u32],
    ) -> Result<Vec<MemberCounters>, DatapathError> {
        if let Some(&bad) = slots.iter().find(|&&s| s >= self.sizing.max_members) {
            return Err(self.slot_error(bad));
        }
        let mut out = vec![MemberCounters::default(); slots.len()];
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_unstable_by_key(|&i| slots[i]);
        for group in order.chunk_by(|&a, &b| slots[a] / COUNTER_WINDOW == slots[b] / COUNTER_WINDOW)
        {
            let first = slots[group[0]];
            let end = slots[group[group.len() - 1]] + 1;
            for cpu in 0..self.ncpus as u32 {
                let window = self.line_window(cpu, first, end, false)?;
                for &i in group {
                    let c = window.counters((slots[i] - first) as usize);
                    let t = &mut out[i];
                    t.rx_packets += c.rx_packets;
                    t.rx_bytes += c.rx_bytes;
                    t.tx_packets += c.tx_packets;
                    t.tx_bytes += c.tx_bytes;
                    t.spoofed_packets += c.spoofed_packets;
                }
            }
        }
        Ok(out)
    }

    /// An interface's packet counters per [`reason`], summed over CPUs.
    pub fn iface_counters(
        &self,
        slot: u32,
    ) -> Result<[u64; reason::COUNT as usize], DatapathError> {
        let mut out = [0u64; reason::COUNT as usize];
        for (r, total) in out.iter_mut().enumerate() {
            let values = self
                .iface_counters
                .get(&(slot * reason::COUNT + r as u32), 0)
                .map_err(map_err("IFACE_COUNTERS"))?;
            *total = Self::sum(&values, |t, v| *t += v);
        }
        Ok(out)
    }

    /// Zeroes the counters of `slots` on every CPU, leaving their
    /// forwarding data alone.
    fn zero_member_counters<'a>(
        &mut self,
        slots: impl IntoIterator<Item = &'a u32>,
    ) -> Result<(), DatapathError> {
        self.each_line(slots.into_iter().map(|s| (*s, ())), |line, ()| {
            // SAFETY: `line` points at a line of a live read-write window.
            unsafe {
                std::ptr::addr_of_mut!((*line).counters).write_volatile(MemberCounters::default())
            }
        })
    }

    /// Writes each member's forwarding data as half `half` of its line, on
    /// every CPU, leaving the counters alone. Later values for a slot win.
    fn write_members(
        &mut self,
        half: u32,
        members: impl IntoIterator<Item = (u32, MemberFwd)>,
    ) -> Result<(), DatapathError> {
        let half = (half & 1) as usize;
        self.each_line(members, |line, fwd| {
            // SAFETY: `line` points at a line of a live read-write window;
            // the program never writes `fwd`, and reads this half only once
            // it is active.
            unsafe { std::ptr::addr_of_mut!((*line).fwd[half]).write_volatile(*fwd) }
        })
    }

    /// Calls `f` on every CPU's line of each slot of `items`, in order,
    /// through read-write windows of at most [`COUNTER_WINDOW`] slots:
    /// consecutive items in one window share its mappings, so that a whole
    /// table in slot order costs a few mappings, and one change one page
    /// per CPU.
    fn each_line<X>(
        &mut self,
        items: impl IntoIterator<Item = (u32, X)>,
        mut f: impl FnMut(*mut MemberLine, &X),
    ) -> Result<(), DatapathError> {
        let mut batch: Vec<(u32, X)> = Vec::new();
        let mut last = 0;
        for (slot, x) in items {
            if slot >= self.sizing.max_members {
                return Err(self.slot_error(slot));
            }
            // A batch is one window's worth of slots, none below its first.
            if let Some(&(first, _)) = batch.first()
                && (slot / COUNTER_WINDOW != first / COUNTER_WINDOW || slot < first)
            {
                self.write_lines(&batch, last + 1, &mut f)?;
                batch.clear();
            }
            last = if batch.is_empty() {
                slot
            } else {
                last.max(slot)
            };
            batch.push((slot, x));
        }
        if !batch.is_empty() {
            self.write_lines(&batch, last + 1, &mut f)?;
        }
        Ok(())
    }

    /// [`Datapath::each_line`] for one window: slots from `batch[0]` to
    /// `end` (exclusive).
    fn write_lines<X>(
        &self,
        batch: &[(u32, X)],
        end: u32,
        f: &mut impl FnMut(*mut MemberLine, &X),
    ) -> Result<(), DatapathError> {
        let first = batch[0].0;
        for cpu in 0..self.ncpus as u32 {
            let window = self.line_window(cpu, first, end, true)?;
            for (slot, x) in batch {
                f(window.ptr((slot - first) as usize), x);
            }
        }
        Ok(())
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
        DatapathError::Devmap {
            map: "MEMBER_LINES",
            message: format!(
                "member slot {slot} is beyond max_members = {}",
                self.sizing.max_members
            ),
        }
    }

    /// Runs the program once on `frame` as if it arrived on `ingress_ifindex`.
    /// In [`Mode::Forward`] the interface must exist in the caller's network
    /// namespace; in [`Mode::Trace`] it need not, and the verdict is returned
    /// too.
    ///
    /// The kernel's test run takes frames of [`ETH_HLEN`] bytes or more
    /// ([`DatapathError::FrameTooShort`] otherwise, without running), and
    /// gives the program at most PAGE_SIZE − 256 (`XDP_PACKET_HEADROOM`) −
    /// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` bytes: 3520 with
    /// 4 KiB pages on x86-64. Kernels since 5.18 put the rest of a larger
    /// frame in fragments, which this program (not fragment-aware) never
    /// sees: such a run's verdict is about part of the frame, and is
    /// refused as [`DatapathError::FrameTooLarge`], with the limit measured
    /// from the run itself. Older kernels refuse such a frame outright
    /// ([`DatapathError::TestRun`], EINVAL).
    pub fn run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
    ) -> Result<(RunResult, Option<TraceVerdict>), DatapathError> {
        if frame.len() < ETH_HLEN {
            return Err(DatapathError::FrameTooShort { len: frame.len() });
        }
        if self.mode == Mode::Trace {
            let t = TraceVerdict {
                ingress_ifindex,
                ..TraceVerdict::default()
            };
            self.trace.set(0, t, 0).map_err(map_err("TRACE_VERDICT"))?;
        }
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        if self.mode == Mode::Forward {
            ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        }
        // Room for pushed tags.
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx_out = [0u8; 24];
        let result = self
            .program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ctx_out: Some(&mut ctx_out),
                ..TestRunOptions::default()
            })
            .map_err(DatapathError::TestRun)?;
        // What the program saw and left: the context's data..data_end. The
        // output also holds the fragments the program never saw, which the
        // program did not change: the frame's first `len - fragments` bytes
        // are what the kernel gave it.
        let field = |at: usize| u32::from_ne_bytes(ctx_out[at..at + 4].try_into().unwrap());
        let linear = field(4).saturating_sub(field(0)) as usize;
        let size = result.data_size_out as usize;
        if size > linear {
            return Err(DatapathError::FrameTooLarge {
                len: frame.len(),
                max: frame.len().saturating_sub(size - linear),
            });
        }
        out.truncate(size);
        let verdict = if self.mode == Mode::Trace {
            Some(self.trace.get(&0, 0).map_err(map_err("TRACE_VERDICT"))?)
        } else {
            None
        };
        Ok((
            RunResult {
                action: result.return_value,
                frame: out,
            },
            verdict,
        ))
    }

    /// Detaches the program from an interface.
    pub fn detach(&mut self, link: XdpLinkId) -> Result<(), DatapathError> {
        self.program().detach(link).map_err(DatapathError::Program)
    }

    /// Attaches the program to `interface`. When pinned, the XDP link is
    /// pinned too, so that it outlives this process, and an existing pinned
    /// link on that interface is taken over: its program is replaced
    /// atomically, with no instant without a program.
    pub fn attach(&mut self, interface: &str, mode: Attach) -> Result<LinkId, DatapathError> {
        let mode = match mode {
            Attach::Native => XdpMode::Driver,
            Attach::Generic => XdpMode::Skb,
        };
        let Some(dir) = self.link_dir.clone() else {
            return self.attach_plain(interface, mode);
        };
        let pin = dir.join(interface);
        if pin.exists() {
            let taken = PinnedLink::from_pin(&pin)
                .map_err(|e| e.to_string())
                .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| e.to_string()))
                .and_then(|l| self.program().attach_to_link(l).map_err(|e| e.to_string()));
            match taken {
                Ok(id) => return Ok(id),
                Err(e) => {
                    // The interface went away since (the link is defunct),
                    // or the pin is not a link: start afresh.
                    tracing::warn!(interface, error = %e, "cannot take over the pinned XDP link; attaching anew");
                    let _ = std::fs::remove_file(&pin);
                }
            }
        }
        let id = self.attach_plain(interface, mode)?;
        let pin_err = |message: String| DatapathError::LinkPin {
            interface: interface.to_string(),
            message,
        };
        let link = self
            .program()
            .take_link(id)
            .map_err(DatapathError::Program)?;
        let fd = FdLink::try_from(link).map_err(|e| pin_err(e.to_string()))?;
        let pinned = fd
            .pin(&pin)
            .map_err(|e| pin_err(format!("pinning at {}: {e}", pin.display())))?;
        let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(e.to_string()))?;
        self.program()
            .attach_to_link(link)
            .map_err(DatapathError::Program)
    }

    /// Detaches the program from `interface` and removes its pinned link.
    pub fn detach_pinned(
        &mut self,
        interface: &str,
        link: Option<XdpLinkId>,
    ) -> Result<(), DatapathError> {
        if let Some(dir) = &self.link_dir {
            let _ = std::fs::remove_file(dir.join(interface));
        }
        match link {
            Some(l) => self.detach(l),
            None => Ok(()),
        }
    }

    fn attach_plain(&mut self, interface: &str, mode: XdpMode) -> Result<XdpLinkId, DatapathError> {
        let mode_name = match mode {
            XdpMode::Driver => "native",
            XdpMode::Skb => "generic",
            _ => "default",
        };
        self.program()
            .attach(interface, mode)
            .map_err(|source| DatapathError::Attach {
                interface: interface.to_string(),
                mode: mode_name,
                source,
            })
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

/// An array map shared with the kernel through `mmap` (`BPF_F_MMAPABLE`):
/// writing an element is a plain store, so whole tables are written at
/// memory speed.
struct Mapped<T> {
    ptr: *mut T,
    len: usize,
    bytes: usize,
    _map: MapData,
}

// SAFETY: the mapping is owned by this value and only reached through
// `&mut self`.
unsafe impl<T> Send for Mapped<T> {}

impl<T: aya::Pod> Mapped<T> {
    fn new(map: MapData, name: &'static str) -> Result<Self, DatapathError> {
        let info = map.info().map_err(map_err(name))?;
        let size = std::mem::size_of::<T>();
        if info.value_size() as usize != size || !size.is_multiple_of(8) {
            return Err(DatapathError::Layout {
                map: name,
                message: format!("value size {} where {size} was expected", info.value_size()),
            });
        }
        let len = info.max_entries() as usize;
        let page = 4096;
        let bytes = (len * size).div_ceil(page) * page;
        // SAFETY: a shared read-write mapping of the map's memory, which
        // the kernel allows for BPF_F_MMAPABLE arrays; its length is the
        // map's size rounded up to a page.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(DatapathError::Layout {
                map: name,
                message: format!(
                    "cannot map it into memory: {}",
                    std::io::Error::last_os_error()
                ),
            });
        }
        Ok(Mapped {
            ptr: ptr.cast(),
            len,
            bytes,
            _map: map,
        })
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: `len` elements of `T` (no padding between them: the size
        // is a multiple of 8, the kernel's element stride) live at `ptr`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn as_slice(&self) -> &[T] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Member slots of `MEMBER_LINES` reached through one mapping (per CPU).
pub const COUNTER_WINDOW: u32 = 1 << 16;

/// A mapping of `len` elements of an array map from element `first` on,
/// unmapped when dropped.
struct Window<T> {
    base: *mut libc::c_void,
    bytes: usize,
    /// Byte offset of element `first` from `base`.
    skip: usize,
    len: usize,
    writable: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T: aya::Pod> Window<T> {
    /// Maps elements `first..first + len` of the array map `fd`, read-only
    /// or, with `write`, read-write.
    fn map(
        fd: std::os::fd::BorrowedFd<'_>,
        name: &'static str,
        first: usize,
        len: usize,
        writable: bool,
    ) -> Result<Self, DatapathError> {
        let page = 4096;
        let size = std::mem::size_of::<T>();
        let start = first * size;
        let offset = start / page * page;
        let bytes = (start + len * size).div_ceil(page) * page - offset;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a shared mapping of whole pages of the map's memory
        // (BPF_F_MMAPABLE), within its size: the caller asks for elements
        // that exist.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(DatapathError::Layout {
                map: name,
                message: format!(
                    "cannot map it into memory: {}",
                    std::io::Error::last_os_error()
                ),
            });
        }
        Ok(Window {
            base,
            bytes,
            skip: start - offset,
            len,
            writable,
            _t: std::marker::PhantomData,
        })
    }

    /// A pointer to element `first + i`. The program may be writing to
    /// it: access it through raw pointers, once per field.
    fn ptr(&self, i: usize) -> *mut T {
        assert!(i < self.len);
        // SAFETY: within the mapping; the kernel's element stride is the
        // size of `T` (a multiple of 8), so the element is aligned.
        unsafe {
            self.base
                .cast::<u8>()
                .add(self.skip + i * std::mem::size_of::<T>())
                .cast::<T>()
        }
    }
}

impl<T: aya::Pod> Window<T> {
    /// Element `first + i`, read once (the program may be writing it).
    fn get(&self, i: usize) -> T {
        // SAFETY: `ptr` is an aligned element within the mapping.
        unsafe { self.ptr(i).read_volatile() }
    }

    /// Writes element `first + i` (a writable window only).
    fn set(&self, i: usize, value: T) {
        assert!(self.writable);
        // SAFETY: `ptr` is an aligned element within the mapping, mapped
        // writable.
        unsafe { self.ptr(i).write_volatile(value) }
    }
}

/// Bytes of an array map mapped at once by [`Windowed`].
const WINDOW_BYTES: usize = 4 << 20;

/// Writes of a [`Windowed`] table taken at a time.
const WRITE_BATCH: usize = 64 * 1024;

/// An array map (`BPF_F_MMAPABLE`) of `len` elements, written and read
/// through short-lived mappings of at most [`WINDOW_BYTES`]: the process
/// holds only what it is writing or reading, not the whole table.
struct Windowed<T> {
    map: MapData,
    name: &'static str,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: aya::Pod> Windowed<T> {
    fn new(map: MapData, name: &'static str, len: usize) -> Self {
        Windowed {
            map,
            name,
            len,
            _t: std::marker::PhantomData,
        }
    }

    /// Elements per window.
    fn per_window() -> usize {
        (WINDOW_BYTES / std::mem::size_of::<T>()).max(1)
    }

    fn window(&self, first: usize, len: usize, writable: bool) -> Result<Window<T>, DatapathError> {
        if first + len > self.len {
            return Err(DatapathError::Layout {
                map: self.name,
                message: format!(
                    "elements {first}..{} are beyond its {}",
                    first + len,
                    self.len
                ),
            });
        }
        Window::map(self.map.fd().as_fd(), self.name, first, len, writable)
    }

    /// Writes `(index, value)` pairs, in any order (a later one wins).
    /// They are taken [`WRITE_BATCH`] at a time, each batch sorted so that
    /// it maps each window once: a whole table's worth (a million ids at
    /// start-up) is never copied whole.
    fn write(&self, mut items: impl Iterator<Item = (usize, T)>) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut batch: Vec<(usize, T)> = Vec::new();
        loop {
            batch.clear();
            batch.extend(items.by_ref().take(WRITE_BATCH));
            if batch.is_empty() {
                return Ok(());
            }
            // Stable: a later write of an index stays later.
            batch.sort_by_key(|&(i, _)| i);
            for group in batch.chunk_by(|a, b| a.0 / per == b.0 / per) {
                let first = group[0].0;
                let end = group[group.len() - 1].0 + 1;
                let w = self.window(first, end - first, true)?;
                for (i, v) in group {
                    w.set(i - first, *v);
                }
            }
        }
    }

    /// Writes `values` from element `first` on.
    fn copy_in(&self, first: usize, values: &[T]) -> Result<(), DatapathError> {
        let per = Self::per_window();
        for (k, chunk) in values.chunks(per).enumerate() {
            let at = first + k * per;
            let w = self.window(at, chunk.len(), true)?;
            for (i, v) in chunk.iter().enumerate() {
                w.set(i, *v);
            }
        }
        Ok(())
    }

    /// Writes `value` into elements `first..first + len`.
    fn fill(&self, first: usize, len: usize, value: T) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut at = first;
        while at < first + len {
            let n = per.min(first + len - at);
            let w = self.window(at, n, true)?;
            for i in 0..n {
                w.set(i, value);
            }
            at += n;
        }
        Ok(())
    }

    /// Copies each element `from + i` to `to + i`, for the offsets `i`
    /// given in increasing order.
    fn copy_between(
        &self,
        from: usize,
        to: usize,
        offsets: impl Iterator<Item = usize>,
    ) -> Result<(), DatapathError> {
        let offsets: Vec<usize> = offsets.collect();
        let per = Self::per_window();
        for group in offsets.chunk_by(|a, b| a / per == b / per && a < b) {
            let (first, end) = (group[0], group[group.len() - 1] + 1);
            let src = self.window(from + first, end - first, false)?;
            let dst = self.window(to + first, end - first, true)?;
            for &i in group {
                dst.set(i - first, src.get(i - first));
            }
        }
        Ok(())
    }

    /// Calls `f` with every element.
    fn read(&self, mut f: impl FnMut(usize, T)) -> Result<(), DatapathError> {
        let per = Self::per_window();
        let mut at = 0;
        while at < self.len {
            let n = per.min(self.len - at);
            let w = self.window(at, n, false)?;
            for i in 0..n {
                f(at + i, w.get(i));
            }
            at += n;
        }
        Ok(())
    }
}

impl Window<MemberLine> {
    /// The counters of line `first + i`, read once (the program keeps
    /// writing them).
    fn counters(&self, i: usize) -> MemberCounters {
        // SAFETY: `ptr` is an aligned line within the mapping.
        unsafe { std::ptr::addr_of!((*self.ptr(i)).counters).read_volatile() }
    }
}

impl<T> Drop for Window<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped.
        unsafe { libc::munmap(self.base, self.bytes) };
    }
}

impl<T> Drop for Mapped<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

/// `MEMBER_LINES`, checked to hold lines.
fn lines_data(data: MapData) -> Result<MapData, DatapathError> {
    let info = data.info().map_err(map_err("MEMBER_LINES"))?;
    let size = std::mem::size_of::<MemberLine>();
    if info.value_size() as usize != size {
        return Err(DatapathError::Layout {
            map: "MEMBER_LINES",
            message: format!("value size {} where {size} was expected", info.value_size()),
        });
    }
    Ok(data)
}

/// Refuses tables pinned under `dir` by a collecte of another layout
/// version, before anything is pinned beside them.
fn check_pinned_version(dir: &std::path::Path) -> Result<(), DatapathError> {
    let former: Vec<&str> = FORMER_PINNED_MAPS
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    let path = dir.join("GLOBALS");
    let version = if path.exists() {
        let data = MapData::from_pin(&path).map_err(map_err("GLOBALS"))?;
        let globals: Array<MapData, Globals> =
            Array::try_from(aya::maps::Map::Array(data)).map_err(map_err("GLOBALS"))?;
        globals.get(&0, 0).map_err(map_err("GLOBALS"))?.abi_version
    } else {
        0
    };
    if (version != 0 && version != ABI_VERSION) || !former.is_empty() {
        return Err(DatapathError::Layout {
            map: "GLOBALS",
            message: format!(
                "the pinned tables have layout version {version} (with {}), this collecte reads version {ABI_VERSION}",
                if former.is_empty() {
                    "no former map".to_string()
                } else {
                    former.join(", ")
                }
            ),
        });
    }
    Ok(())
}

fn take_data(ebpf: &mut Ebpf, name: &'static str) -> Result<MapData, DatapathError> {
    match ebpf.take_map(name) {
        Some(aya::maps::Map::Array(data)) => Ok(data),
        Some(_) => Err(DatapathError::Layout {
            map: name,
            message: "is not an array".into(),
        }),
        None => Err(DatapathError::Devmap {
            map: name,
            message: "missing from the program object".into(),
        }),
    }
}

/// Checks that every map (pinned by an earlier run, perhaps of another
/// version) has the layout this program expects, so that nothing is ever
/// misread.
fn check_layouts(ebpf: &Ebpf, sizing: &Sizing, lines: u32) -> Result<(), DatapathError> {
    use std::mem::size_of;

    use aya::maps::MapType::{Array, DevMap, Hash, PerCpuArray};
    let expect: &[(&'static str, aya::maps::MapType, usize, usize, u32)] = &[
        ("GLOBALS", Array, 4, size_of::<Globals>(), 1),
        ("IFINDEX_SLOT", Array, 4, 4, MAX_IFINDEX),
        ("IFACES", Array, 4, size_of::<IfaceInfo>(), MAX_IFACES),
        ("EGRESS", DevMap, 4, 8, MAX_IFACES),
        (
            "ROUTES",
            Array,
            4,
            size_of::<RouteChunk>(),
            2 * sizing.route_half() / route::CHUNK,
        ),
        (
            "ATTACHMENTS",
            Hash,
            size_of::<AttachKey>(),
            4,
            2 * sizing.max_members + 2 * MAX_IFACES,
        ),
        ("MEMBER_LINES", Array, 4, size_of::<MemberLine>(), lines),
        (
            "IFACE_COUNTERS",
            PerCpuArray,
            4,
            8,
            MAX_IFACES * reason::COUNT,
        ),
    ];
    for (name, kind, key, value, entries) in expect {
        let map = ebpf.map(name).ok_or(DatapathError::Devmap {
            map: name,
            message: "missing from the program object".into(),
        })?;
        let info = map_info(map).map_err(map_err(name))?;
        let pinned_kind = info.map_type().map_err(map_err(name))?;
        if pinned_kind != *kind
            || info.key_size() as usize != *key
            || info.value_size() as usize != *value
            || info.max_entries() != *entries
        {
            return Err(DatapathError::Layout {
                map: name,
                message: format!(
                    "the pinned map is a {pinned_kind:?} map with key size {}, value size {} and {} entries; this configuration needs a {kind:?} map with {key}, {value} and {entries}",
                    info.key_size(),
                    info.value_size(),
                    info.max_entries()
                ),
            });
        }
    }
    Ok(())
}

/// Entries of `MEMBER_LINES`: `max_members` per possible CPU, 64 bytes
/// each, in one array map, which the kernel limits to 4 GiB (less a page):
/// 1M members fit up to 63 possible CPUs, 65,536 up to 1023.
fn line_entries(max_members: u32, cpus: usize) -> Result<u32, DatapathError> {
    let entries = max_members as u64 * cpus as u64;
    let bytes = entries * std::mem::size_of::<MemberLine>() as u64;
    if bytes >= (4 << 30) - 4096 {
        return Err(DatapathError::TooLarge {
            max_members,
            cpus,
            bytes,
        });
    }
    Ok(entries as u32)
}

fn map_info(map: &aya::maps::Map) -> Result<aya::maps::MapInfo, MapError> {
    use aya::maps::Map;
    let data = match map {
        Map::Array(d) | Map::PerCpuArray(d) | Map::HashMap(d) | Map::DevMap(d) => d,
        _ => {
            return Err(MapError::InvalidName {
                name: "unexpected map type".into(),
            });
        }
    };
    data.info()
}

/// Removes everything a daemon pinned under `pin_dir`: the XDP links (which
/// detaches the program from the interfaces once no process holds them) and
/// the maps. Returns what it removed.
pub fn remove_pins(pin_dir: &std::path::Path) -> Result<Vec<PathBuf>, DatapathError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| DatapathError::PinDir { path, source }
    };
    let mut removed = Vec::new();
    if !pin_dir.exists() {
        return Ok(removed);
    }
    let links = pin_dir.join("links");
    if links.exists() {
        for e in std::fs::read_dir(&links).map_err(io(&links))? {
            let path = e.map_err(io(&links))?.path();
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed.push(path);
        }
        std::fs::remove_dir(&links).map_err(io(&links))?;
    }
    let names = PINNED_MAPS
        .iter()
        .chain(FORMER_PINNED_MAPS)
        .chain(&["MEMBER_IDS", "IFACE_NAMES"]);
    for name in names {
        let path = pin_dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed.push(path);
        }
    }
    let _ = std::fs::remove_dir(pin_dir);
    Ok(removed)
}

/// aya reports a missing key on delete as the syscall's ENOENT.
fn is_enoent(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

fn slot_name(s: &str) -> SlotName {
    let mut n = SlotName::default();
    let b = s.as_bytes();
    let len = b.len().min(n.0.len());
    n.0[..len].copy_from_slice(&b[..len]);
    n
}

/// Opens (or creates and pins) a userspace-only map of slot names.
/// The pinned map `name` under `dir` of `entries` names, created if absent.
fn names_data(
    dir: &std::path::Path,
    name: &'static str,
    entries: u32,
) -> Result<MapData, DatapathError> {
    let path = dir.join(name);
    let data = if path.exists() {
        MapData::from_pin(&path).map_err(map_err(name))?
    } else {
        let obj = aya_obj::Map::new_from_params(
            aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            4,
            std::mem::size_of::<SlotName>() as u32,
            entries,
            1 << 10, // BPF_F_MMAPABLE
        );
        let data = MapData::create(obj, name, None).map_err(map_err(name))?;
        data.pin(&path).map_err(|e| DatapathError::Devmap {
            map: name,
            message: format!("cannot pin at {}: {e}", path.display()),
        })?;
        data
    };
    let info = data.info().map_err(map_err(name))?;
    if info.max_entries() != entries
        || info.value_size() as usize != std::mem::size_of::<SlotName>()
    {
        return Err(DatapathError::Layout {
            map: name,
            message: format!(
                "the pinned map has {} entries of {} bytes where {entries} of {} were expected",
                info.max_entries(),
                info.value_size(),
                std::mem::size_of::<SlotName>()
            ),
        });
    }
    Ok(data)
}

/// The name recorded in a slot, if any.
fn slot_name_text(n: &SlotName) -> Option<&str> {
    let len = n.0.iter().position(|b| *b == 0).unwrap_or(n.0.len());
    if len == 0 {
        return None;
    }
    std::str::from_utf8(&n.0[..len]).ok()
}

// ---- Bench build (used by the `bench` crate only) ----
//
// The program's rodata global `BENCH` set to 1: before parsing, each run
// restores the frame from a template and writes a random address from
// `BENCH_ADDRS` into it (router-ebpf/src/bench.rs). Nothing above depends on
// this block; production instances load with `BENCH = 0`.

/// Length of every bench frame.
pub const BENCH_FRAME_LEN: usize = 64;
/// Bytes of `BENCH_CONF`'s value: count, offset, address length, first
/// (`u32` each), then the frame.
pub const BENCH_CONF_LEN: usize = 16 + BENCH_FRAME_LEN;

/// The value of `BENCH_CONF` (router-ebpf/src/bench.rs): each run starts
/// from `frame` with one of `count` addresses from entry `first` of
/// `BENCH_ADDRS` written at byte `offset`. With `addr_len` 16 an entry is
/// one address; with 4, four IPv4 addresses (see [`bench_pack4`]).
pub fn bench_conf(
    frame: &[u8; BENCH_FRAME_LEN],
    offset: u32,
    addr_len: u32,
    first: u32,
    count: u32,
) -> [u8; BENCH_CONF_LEN] {
    let mut conf = [0u8; BENCH_CONF_LEN];
    conf[0..4].copy_from_slice(&count.to_ne_bytes());
    conf[4..8].copy_from_slice(&offset.to_ne_bytes());
    conf[8..12].copy_from_slice(&addr_len.to_ne_bytes());
    conf[12..16].copy_from_slice(&first.to_ne_bytes());
    conf[16..].copy_from_slice(frame);
    conf
}

/// IPv4 addresses (network byte order) packed four to a `BENCH_ADDRS`
/// entry.
pub fn bench_pack4(addresses: &[[u8; 4]]) -> Vec<[u8; 16]> {
    addresses
        .chunks(4)
        .map(|c| {
            let mut e = [0u8; 16];
            for (i, a) in c.iter().enumerate() {
                e[4 * i..4 * i + 4].copy_from_slice(a);
            }
            e
        })
        .collect()
}

impl Datapath {
    /// Loads the bench build of the forwarding program (empty tables, no
    /// pins), with room for `addresses` entries in `BENCH_ADDRS`.
    pub fn load_bench(sizing: Sizing, addresses: u32) -> Result<Self, DatapathError> {
        let opts = LoadOptions {
            sizing,
            mode: Mode::Forward,
            pin_dir: None,
        };
        Self::load_inner(&opts, Some(addresses))
    }

    fn bench_map(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, DatapathError> {
        self.ebpf.map_mut(name).ok_or(DatapathError::Devmap {
            map: name,
            message: "missing from the program object".into(),
        })
    }

    /// Writes `BENCH_ADDRS` from entry 0 (see [`bench_conf`]).
    pub fn bench_addresses(&mut self, addresses: &[[u8; 16]]) -> Result<(), DatapathError> {
        let mut map: Array<&mut MapData, [u8; 16]> = self
            .bench_map("BENCH_ADDRS")?
            .try_into()
            .map_err(map_err("BENCH_ADDRS"))?;
        for (i, a) in addresses.iter().enumerate() {
            map.set(i as u32, a, 0).map_err(map_err("BENCH_ADDRS"))?;
        }
        Ok(())
    }

    /// Writes `BENCH_CONF` (see [`bench_conf`]).
    pub fn bench_setup(&mut self, conf: &[u8; BENCH_CONF_LEN]) -> Result<(), DatapathError> {
        let mut map: Array<&mut MapData, [u8; BENCH_CONF_LEN]> = self
            .bench_map("BENCH_CONF")?
            .try_into()
            .map_err(map_err("BENCH_CONF"))?;
        map.set(0, conf, 0).map_err(map_err("BENCH_CONF"))
    }

    /// Runs the program `repeat` times on `frame` arriving on
    /// `ingress_ifindex` (which must exist in the caller's namespace), without
    /// copying the frame back: the action of the last run and the kernel's
    /// mean time per run.
    pub fn bench_run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
        repeat: u32,
    ) -> Result<(u32, Duration), DatapathError> {
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
        let result = self
            .program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(DatapathError::TestRun)?;
        Ok((result.return_value, result.duration))
    }
}
// ---- end of the bench build ----
