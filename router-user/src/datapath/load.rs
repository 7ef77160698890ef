//! Loading the program: the embedded object's sizes, the maps pinned by a
//! previous run (reused after checking their layout, so that nothing is
//! ever misread) or created and pinned, and the slots a previous run
//! recorded.
use std::{collections::BTreeMap, time::Instant};

use aya::{
    Ebpf, EbpfLoader,
    maps::ProgramArray,
    maps::{MapData, MapError},
    programs::Xdp,
    util::nr_cpus,
};
use router_common::{
    ABI_VERSION, AttachKey, GATEWAY_ENTRIES, GatewayKey, Globals, IfaceAddrs, IfaceInfo,
    LEARN_EVENTS_BYTES, LearnedMac, MAX_IFACES, MAX_IFINDEX, MemberLine, RouteChunk,
    pppoe::{Session, SessionKey, SessionLine},
    reason, route,
};
use router_core::changes::{Edge, RecordedSlots, Uplinks};

use super::error::{DatapathError, map_err};
use super::mapped::{Mapped, Windowed};
use super::pins::{
    PINNED_MAPS, PPPOE_HANDOFF, PPPOE_PROGS, check_pinned_version, names_data, slot_name_text,
};
use super::{Datapath, Lagging, LoadOptions, Mode, PPPOE_PROGRAMS, PROGRAM, PROGRAM_NAME, Sizing};

macro_rules! take {
    ($ebpf:expr, $name:literal) => {{
        let map = $ebpf
            .take_map($name)
            .ok_or(DatapathError::MissingMap { map: $name })?;
        map.try_into().map_err(map_err($name))?
    }};
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
    pub(super) fn load_inner(
        opts: &LoadOptions,
        bench: Option<u32>,
    ) -> Result<Self, DatapathError> {
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
            .map_max_entries("MEMBER_LINES", lines)
            .map_max_entries("LEARNED", sizing.max_members)
            .map_max_entries("SESSIONS", sizing.max_members)
            .map_max_entries("SESSION_LINES", sizing.max_members);
        let mut reused = false;
        if let Some(dir) = pin_dir {
            std::fs::create_dir_all(dir).map_err(|source| DatapathError::PinDir {
                path: dir.clone(),
                source,
            })?;
            // Before anything is pinned beside them.
            check_pinned_version(dir)?;
            for name in PINNED_MAPS {
                if (*name == PPPOE_PROGS || *name == PPPOE_HANDOFF) && mode == Mode::Trace {
                    continue;
                }
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
            .ok_or(DatapathError::MissingProgram { name: PROGRAM_NAME })?
            .try_into()
            .map_err(DatapathError::Program)?;
        prog.load().map_err(DatapathError::Program)?;
        let pppoe_progs = fill_pppoe_progs(&mut ebpf)?;
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
            iface_addrs: take!(ebpf, "IFACE_ADDRS"),
            gateways: take!(ebpf, "GATEWAYS"),
            learned: Windowed::new(
                take_data(&mut ebpf, "LEARNED")?,
                "LEARNED",
                sizing.max_members as usize,
            ),
            learn_events: Some(take!(ebpf, "LEARN_EVENTS")),
            trace: take!(ebpf, "TRACE_VERDICT"),
            sessions: take!(ebpf, "SESSIONS"),
            session_lines: take!(ebpf, "SESSION_LINES"),
            _pppoe_progs: pppoe_progs,
            ebpf,
            mode,
            sizing,
            active: 0,
            last_flip: Instant::now(),
            lagging: Lagging::default(),
            uplinks: Uplinks::default(),
            edge: Edge::default(),
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
            dp.edge = Edge {
                icmp_rate: pinned.icmp_rate,
                icmp_burst: pinned.icmp_burst,
                router_lifetime: pinned.router_lifetime,
                ra_hop_limit: pinned.ra_hop_limit,
            };
        } else {
            dp.write_globals(Uplinks::default(), Edge::default())?;
        }
        Ok(dp)
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
}

/// Loads the PPPoE programs and puts them in `PPPOE_PROGS` (a pinned one
/// too, replacing a previous run's), where the entry program tail-calls
/// them.
fn fill_pppoe_progs(ebpf: &mut Ebpf) -> Result<ProgramArray<MapData>, DatapathError> {
    let mut array: ProgramArray<MapData> = take!(ebpf, "PPPOE_PROGS");
    for (name, index) in PPPOE_PROGRAMS {
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or(DatapathError::MissingProgram { name })?
            .try_into()
            .map_err(DatapathError::Program)?;
        prog.load().map_err(DatapathError::Program)?;
        let fd = prog.fd().map_err(DatapathError::Program)?;
        array.set(index, fd, 0).map_err(map_err("PPPOE_PROGS"))?;
    }
    Ok(array)
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

fn take_data(ebpf: &mut Ebpf, name: &'static str) -> Result<MapData, DatapathError> {
    match ebpf.take_map(name) {
        Some(aya::maps::Map::Array(data)) => Ok(data),
        Some(_) => Err(DatapathError::Layout {
            map: name,
            message: "is not an array".into(),
        }),
        None => Err(DatapathError::MissingMap { map: name }),
    }
}

/// Checks that every map (pinned by an earlier run, perhaps of another
/// version) has the layout this program expects, so that nothing is ever
/// misread.
fn check_layouts(ebpf: &Ebpf, sizing: &Sizing, lines: u32) -> Result<(), DatapathError> {
    use std::mem::size_of;

    use aya::maps::MapType::{Array, DevMap, Hash, PerCpuArray, ProgramArray, RingBuf};
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
            MAX_IFACES * reason::REASON_SLOTS,
        ),
        ("IFACE_ADDRS", Array, 4, size_of::<IfaceAddrs>(), MAX_IFACES),
        (
            "GATEWAYS",
            Hash,
            size_of::<GatewayKey>(),
            4,
            GATEWAY_ENTRIES,
        ),
        (
            "LEARNED",
            Array,
            4,
            size_of::<LearnedMac>(),
            sizing.max_members,
        ),
        ("LEARN_EVENTS", RingBuf, 0, 0, LEARN_EVENTS_BYTES),
        (
            "SESSIONS",
            Hash,
            size_of::<SessionKey>(),
            size_of::<Session>(),
            sizing.max_members,
        ),
        (
            "SESSION_LINES",
            Array,
            4,
            size_of::<SessionLine>(),
            sizing.max_members,
        ),
        ("PPPOE_PROGS", ProgramArray, 4, 4, 2),
    ];
    for (name, kind, key, value, entries) in expect {
        let map = ebpf
            .map(name)
            .ok_or(DatapathError::MissingMap { map: name })?;
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
        Map::Array(d)
        | Map::PerCpuArray(d)
        | Map::HashMap(d)
        | Map::DevMap(d)
        | Map::RingBuf(d)
        | Map::ProgramArray(d) => d,
        _ => {
            return Err(MapError::InvalidName {
                name: "unexpected map type".into(),
            });
        }
    };
    data.info()
}
