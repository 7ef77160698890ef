//! The pin directory, without a loaded program: the names of the pinned
//! maps, the refusal of tables pinned by another layout version, the
//! userspace-only maps recording who holds each slot, and
//! [`remove_pins`], which takes the fast path away.
use std::path::{Path, PathBuf};

use aya::maps::{Array, MapData};
use router_common::{ABI_VERSION, Globals, SlotName};

use super::error::{DatapathError, map_err};

/// The maps that make the datapath's state, pinned under `pin_dir` by the
/// daemon. (`TRACE_VERDICT` is the tracer's scratch space, and
/// `ICMP_RATE`, the ICMP messages' pace, starts afresh with each program.)
pub const PINNED_MAPS: &[&str] = &[
    "GLOBALS",
    "IFINDEX_SLOT",
    "IFACES",
    "EGRESS",
    "ROUTES",
    "ATTACHMENTS",
    "MEMBER_LINES",
    "IFACE_COUNTERS",
    "IFACE_ADDRS",
    "GATEWAYS",
    "LEARNED",
    "LEARN_EVENTS",
    "SESSIONS",
    "SESSION_LINES",
    // The forwarding instance's tail calls (never the tracer's): each load
    // fills it with its own PPPoE programs, so that the program still
    // attached during a restart calls the new ones, never none.
    PPPOE_PROGS,
    // ... and what the entry program hands them: the old entry program and
    // the new PPPoE programs must share it during that time.
    PPPOE_HANDOFF,
];

/// The program array of the PPPoE programs, pinned by the forwarding
/// instance only.
pub const PPPOE_PROGS: &str = "PPPOE_PROGS";
/// The entry program's per-CPU word to the PPPoE program it tail-calls,
/// pinned with [`PPPOE_PROGS`] (and, like it, by the forwarding instance
/// only).
pub const PPPOE_HANDOFF: &str = "PPPOE_HANDOFF";

/// Maps that earlier layouts pinned and this one no longer has (ABI 2:
/// the member table and the counters apart). Their presence means pinned
/// tables of another version; `collecte stop --detach` removes them too.
const FORMER_PINNED_MAPS: &[&str] = &["MEMBERS", "MEMBER_COUNTERS"];

/// Refuses tables pinned under `dir` by a collecte of another layout
/// version, before anything is pinned beside them.
pub(super) fn check_pinned_version(dir: &Path) -> Result<(), DatapathError> {
    let former: Vec<&str> = FORMER_PINNED_MAPS
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    let path = dir.join("GLOBALS");
    let version = if path.exists() {
        pinned_version(&path)?
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

/// The layout version of the `GLOBALS` pinned at `path`. Every layout so
/// far starts `Globals` with the same six `u32`, the version last: the
/// values of versions 1 to 3 are 24 bytes long.
fn pinned_version(path: &Path) -> Result<u32, DatapathError> {
    const FORMER_LEN: usize = 24;
    let data = MapData::from_pin(path).map_err(map_err("GLOBALS"))?;
    let size = data.info().map_err(map_err("GLOBALS"))?.value_size() as usize;
    let map = aya::maps::Map::Array(data);
    if size == std::mem::size_of::<Globals>() {
        let globals: Array<MapData, Globals> = Array::try_from(map).map_err(map_err("GLOBALS"))?;
        return Ok(globals.get(&0, 0).map_err(map_err("GLOBALS"))?.abi_version);
    }
    if size == FORMER_LEN {
        let globals: Array<MapData, [u8; FORMER_LEN]> =
            Array::try_from(map).map_err(map_err("GLOBALS"))?;
        let v = globals.get(&0, 0).map_err(map_err("GLOBALS"))?;
        return Ok(u32::from_ne_bytes([v[20], v[21], v[22], v[23]]));
    }
    Err(DatapathError::Layout {
        map: "GLOBALS",
        message: format!(
            "the pinned GLOBALS holds {size} bytes, of no layout version this collecte knows (it reads version {ABI_VERSION})"
        ),
    })
}

/// Removes everything a daemon pinned under `pin_dir`: the XDP links (which
/// detaches the program from the interfaces once no process holds them) and
/// the maps. Returns what it removed.
pub fn remove_pins(pin_dir: &Path) -> Result<Vec<PathBuf>, DatapathError> {
    let io = |path: &Path| {
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
            detach_now(&path);
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

/// Detaches the link pinned at `path` at once (`BPF_LINK_DETACH`), so that
/// the program is off the interface when `remove_pins` returns: removing
/// the last reference alone releases the link later, from a kernel work
/// queue. Best effort: a kernel or link that refuses it is detached by the
/// removal of its pin, a moment later.
fn detach_now(path: &Path) {
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_LINK_DETACH: libc::c_long = 34;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // `union bpf_attr`: for BPF_OBJ_GET, the path's address then the fd
    // and flags; for BPF_LINK_DETACH, the link's fd. Unused bytes are zero.
    let mut attr = [0u64; 16];
    attr[0] = name.as_ptr() as u64;
    // SAFETY: `attr` is a zeroed bpf_attr whose pointer field points to a
    // NUL-terminated path that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return;
    }
    let mut attr = [0u64; 16];
    attr[0] = fd as u64;
    // SAFETY: a zeroed bpf_attr holding the link's fd; then the fd, which
    // this function owns, is closed.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        );
        libc::close(fd as libc::c_int);
    }
}

pub(super) fn slot_name(s: &str) -> SlotName {
    let mut n = SlotName::default();
    let b = s.as_bytes();
    let len = b.len().min(n.0.len());
    n.0[..len].copy_from_slice(&b[..len]);
    n
}

/// Opens (or creates and pins) a userspace-only map of slot names.
/// The pinned map `name` under `dir` of `entries` names, created if absent.
pub(super) fn names_data(
    dir: &Path,
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
        data.pin(&path).map_err(|source| DatapathError::PinMap {
            map: name,
            path: path.clone(),
            source,
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
pub(super) fn slot_name_text(n: &SlotName) -> Option<&str> {
    let len = n.0.iter().position(|b| *b == 0).unwrap_or(n.0.len());
    if len == 0 {
        return None;
    }
    std::str::from_utf8(&n.0[..len]).ok()
}
