//! The datapath's pinned tables: a second load reuses them; tables of
//! another size or layout version, or holding a former layout's maps, are
//! refused with a clear error before anything is pinned beside them; and
//! `remove_pins` removes the former layout's maps too.
use aya::maps::{Array, Map, MapData};
use collecte::datapath::{
    Datapath, DatapathError, LoadOptions, Mode, PINNED_MAPS, Sizing, remove_pins,
};
use router_common::{ABI_VERSION, Globals};
use tests::topology::Bpffs;

fn load(dir: &std::path::Path, max_members: u32) -> Result<Datapath, DatapathError> {
    Datapath::load_with(&LoadOptions {
        sizing: Sizing {
            max_members,
            route_groups: 64,
        },
        mode: Mode::Forward,
        pin_dir: Some(dir.to_path_buf()),
    })
}

/// The refusal's map and text.
fn refusal(r: Result<Datapath, DatapathError>) -> (&'static str, String) {
    match r {
        Err(e @ DatapathError::Layout { map, .. }) => (map, e.to_string()),
        Err(e) => panic!("expected a layout refusal, got: {e}"),
        Ok(_) => panic!("expected a layout refusal, the tables loaded"),
    }
}

fn set_abi_version(dir: &std::path::Path, version: u32) {
    let data = MapData::from_pin(dir.join("GLOBALS")).expect("pinned GLOBALS opens");
    let mut globals: Array<MapData, Globals> =
        Array::try_from(Map::Array(data)).expect("GLOBALS is an array of Globals");
    let mut g = globals.get(&0, 0).expect("GLOBALS reads");
    g.abi_version = version;
    globals.set(0, g, 0).expect("GLOBALS writes");
}

#[test]
fn pinned_tables_of_another_layout_are_refused() {
    tests::require_root();
    let fs = Bpffs::mount("pins-layout");
    let dir = fs.path.join("collecte");

    let dp = load(&dir, 1024).expect("first load creates and pins the tables");
    assert!(!dp.reused());
    drop(dp);
    for name in PINNED_MAPS {
        assert!(dir.join(name).exists(), "{name} is pinned");
    }
    let dp = load(&dir, 1024).expect("second load reuses the pins");
    assert!(dp.reused());
    drop(dp);

    // Another max_members: the maps it sizes (the attachments, checked
    // first, and the member lines) have another size.
    let (map, text) = refusal(load(&dir, 2048));
    assert!(["ATTACHMENTS", "MEMBER_LINES"].contains(&map), "{text}");
    assert!(text.contains("collecte stop --detach"), "{text}");

    // Tables of layout version 2 (MEMBERS and MEMBER_COUNTERS beside them).
    set_abi_version(&dir, 2);
    std::fs::remove_file(dir.join("MEMBER_LINES")).expect("unpin MEMBER_LINES");
    let (map, text) = refusal(load(&dir, 1024));
    assert_eq!(map, "GLOBALS", "{text}");
    assert!(
        text.contains(&format!(
            "layout version 2 (with no former map), this collecte reads version {ABI_VERSION}"
        )),
        "{text}"
    );
    assert!(
        !dir.join("MEMBER_LINES").exists(),
        "nothing is pinned beside refused tables"
    );

    // A former layout's map pinned there, whatever GLOBALS says.
    set_abi_version(&dir, ABI_VERSION);
    let globals = MapData::from_pin(dir.join("GLOBALS")).expect("pinned GLOBALS opens");
    globals
        .pin(dir.join("MEMBER_COUNTERS"))
        .expect("pin a stand-in for the former MEMBER_COUNTERS");
    let (map, text) = refusal(load(&dir, 1024));
    assert_eq!(map, "GLOBALS", "{text}");
    assert!(text.contains("with MEMBER_COUNTERS"), "{text}");

    // collecte stop --detach removes everything, the former map included.
    let removed = remove_pins(&dir).expect("pins removed");
    assert!(
        removed.contains(&dir.join("MEMBER_COUNTERS")),
        "removed {removed:?}"
    );
    assert!(!dir.exists(), "the pin directory is gone");
    let dp = load(&dir, 1024).expect("a fresh start after the removal");
    assert!(!dp.reused());
}

/// PPPoE sessions are pinned with the tables: a reload (a restarted
/// daemon) finds them, with the lines of their members; the PPPoE
/// programs' array is pinned too and refilled with each load's programs,
/// every one of which the verifier accepted (their verified instructions
/// are printed: the budget the tail calls keep out of the entry program).
#[test]
fn pppoe_sessions_survive_a_reload() {
    use router_common::pppoe::{Session, SessionKey, line_flags};
    tests::require_root();
    let fs = Bpffs::mount("pins-sessions");
    let dir = fs.path.join("collecte");
    let key = SessionKey {
        iface: 1,
        s_vlan: 10,
        c_vlan: 20,
        session_id: 7,
        mac: [2, 0, 0, 0, 0, 9],
        _pad: [0; 2],
    };
    let session = Session {
        member: 5,
        mru: 1492,
        _pad: 0,
    };
    let mut dp = load(&dir, 1024).expect("first load");
    dp.put_session(key, session).expect("put_session");
    let reserved = SessionKey {
        session_id: 0xffff,
        ..key
    };
    let err = dp
        .put_session(reserved, session)
        .expect_err("session id 0xffff is refused");
    assert!(err.to_string().contains("0xffff"), "{err}");
    drop(dp);
    assert!(dir.join("SESSIONS").exists() && dir.join("PPPOE_PROGS").exists());
    let mut dp = load(&dir, 1024).expect("reload");
    assert!(dp.reused());
    assert_eq!(dp.sessions().expect("sessions"), vec![(key, session)]);
    let line = dp.session_line(5).expect("line");
    assert_eq!((line.session_id, line.mru), (7, 1492));
    assert_ne!(line.flags & line_flags::PRESENT, 0);
    for (name, n) in dp.verified_instructions_each() {
        let n = n.unwrap_or_else(|| panic!("{name}: the kernel gives no verified instructions"));
        assert!(n > 0, "{name}");
        println!("verified_instructions {name} {n}");
    }
    dp.remove_session(&key).expect("remove_session");
    dp.remove_session(&key)
        .expect("an absent session is no error");
    assert!(dp.sessions().expect("sessions").is_empty());
    assert_eq!(dp.session_line(5).expect("line").flags, 0);
    drop(dp);
    let removed = remove_pins(&dir).expect("pins removed");
    assert!(removed.contains(&dir.join("PPPOE_PROGS")), "{removed:?}");
}
