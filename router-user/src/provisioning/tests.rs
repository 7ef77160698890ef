use super::file::{dir_of, tmp_path};
use super::*;
use ipnet::IpNet;
use router_core::store::json::MembersReader;
use router_core::tables::{InterfaceSources, batch_of};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("collecte-state-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn config(state: &Path, members: &str) -> Config {
    Config::parse(&format!(
        "[datapath]\nstate = \"{}\"\nmax_members = 8\n[[access]]\ninterface = \"acc0\"\n{members}",
        state.display()
    ))
    .unwrap()
}

fn member(id: &str, prefix: &str) -> Member {
    Member {
        id: id.into(),
        interface: "acc0".into(),
        s_vlan: None,
        c_vlan: None,
        mac: None,
        prefixes: vec![prefix.parse().unwrap()],
    }
}

/// The provisioning and tables of a start with `cfg`, made as the
/// daemon makes them.
fn start(cfg: &Config) -> Result<(Provisioning, Tables), Box<dyn std::error::Error>> {
    let (p, api) = Provisioning::load(cfg)?;
    let config_members = batch_of(&cfg.members, Origin::Config).unwrap();
    let checked = check_config(cfg, config_members, api.iter().map(|(_, m)| m), p.path())?;
    let mut t = Tables::new(8, 64);
    let none = BTreeMap::new();
    t.update(
        InterfaceSources {
            config: cfg,
            links: &BTreeMap::new(),
            gateway_macs: &none,
        },
        &[
            Part::of(Origin::Config, &checked.config_members),
            Part::of(Origin::Api, &api),
        ],
        &[],
    )
    .unwrap();
    t.take_changes();
    Ok((p, t))
}

/// The members of a store, by id.
fn by_id<'a>(members: impl Iterator<Item = MemberView<'a>>) -> BTreeMap<String, Member> {
    members
        .map(|m| (m.id().to_owned(), m.to_member()))
        .collect()
}

/// The API members of `t`, by id.
fn api_of(t: &Tables) -> BTreeMap<String, Member> {
    by_id(api_members(t))
}

fn origin(t: &Tables, id: &str) -> Option<Origin> {
    t.member(id).map(|(_, m)| m.origin())
}

fn sync(members: Vec<Member>) -> Op {
    Op::sync(batch_of(&members, Origin::Api).unwrap())
}

const ALICE: &str =
    "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/32\"]\n";

#[test]
fn missing_file_is_empty_and_writes_round_trip() {
    let dir = tmpdir("rt");
    let path = dir.join("sub/state.json");
    let cfg = config(&path, ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    assert_eq!(p.revision(), 0);
    assert!(api_of(&t).is_empty());
    let Written {
        changed,
        outcome: out,
    } = p
        .write(Op::Put(member("bob", "198.51.100.8/32")), &cfg, &mut t)
        .unwrap();
    assert!(changed);
    assert!(t.slot("bob").is_some());
    assert!(matches!(out, Outcome::Created { .. }));
    assert_eq!(p.revision(), 1);
    // A single write goes to the journal; a sync writes the file.
    let mode = |f: &Path| fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal_path(&path)), 0o600);
    assert_eq!(mode(dir_of(&path)), 0o700);
    t.take_changes();
    let Written {
        changed,
        outcome: out,
    } = p
        .write(Op::Put(member("bob", "198.51.100.8/32")), &cfg, &mut t)
        .unwrap();
    assert!(!changed);
    assert!(t.take_changes().members.is_empty());
    assert!(matches!(out, Outcome::Unchanged { .. }));
    assert_eq!(p.revision(), 1);
    let (again, again_t) = start(&cfg).unwrap();
    assert_eq!(again.revision(), 1);
    assert_eq!(api_of(&again_t), api_of(&t));
    assert_eq!(origin(&again_t, "alice"), Some(Origin::Config));
    assert_eq!(origin(&again_t, "bob"), Some(Origin::Api));
    assert!(!tmp_path(&path).exists());
    p.write(sync(vec![member("carol", "198.51.100.9/32")]), &cfg, &mut t)
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(!journal_path(&path).exists());
    assert_eq!(Provisioning::load(&cfg).unwrap().0.revision(), 2);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn unreadable_files_refuse() {
    let dir = tmpdir("bad");
    let path = dir.join("state.json");
    let cfg = config(&path, "");
    for (text, what) in [
        ("", "damaged"),
        ("{", "damaged"),
        ("[]", "damaged"),
        ("{\"format\":\"x\",\"version\":1}", "damaged"),
        (
            "{\"format\":\"collecte-state\",\"version\":2,\"members\":[]}",
            "format version 2",
        ),
        (
            "{\"format\":\"collecte-state\",\"version\":1,\"revision\":1,\"members\":[{\"id\":\"a\"}]}",
            "damaged",
        ),
    ] {
        fs::write(&path, text).unwrap();
        let err = start(&cfg).err().expect(text);
        assert!(err.to_string().contains(what), "{text}: {err}");
        assert!(err.to_string().contains("state.json"), "{err}");
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn configuration_conflicts_name_both_members() {
    let dir = tmpdir("conflict");
    let path = dir.join("state.json");
    let bob = member("bob", "198.51.100.0/29");
    write_atomically(&path, 3, [Entry::Owned(&bob)].into_iter()).unwrap();
    let err = start(&config(&path, ALICE)).err().unwrap();
    let text = err.to_string();
    assert!(
        text.contains("\"alice\"") && text.contains("\"bob\"") && text.contains("overlaps"),
        "{text}"
    );
    let same_id = ALICE.replace("alice", "bob").replace(".7/", ".9/");
    let err = start(&config(&path, &same_id)).err().unwrap();
    assert!(err.to_string().contains("same id"), "{err}");
    let other_iface = config(&path, "").clone();
    let mut other_iface = other_iface;
    other_iface.access[0].interface = "acc1".into();
    let err = start(&other_iface).err().unwrap();
    assert!(
        err.to_string().contains("\"bob\"") && err.to_string().contains("acc0"),
        "{err}"
    );
    // A compatible configuration loads, with the revision.
    let (p, t) = start(&config(&path, "")).unwrap();
    assert_eq!(p.revision(), 3);
    assert_eq!(origin(&t, "bob"), Some(Origin::Api));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn refused_writes_change_nothing() {
    let dir = tmpdir("refused");
    let path = dir.join("state.json");
    let cfg = config(&path, ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    // A whole write: no journal yet.
    p.write(sync(vec![member("bob", "198.51.100.8/32")]), &cfg, &mut t)
        .unwrap();
    t.take_changes();
    let saved = |path: &Path| {
        let s = read(path).unwrap();
        let journal = fs::read(journal_path(path)).unwrap_or_default();
        (
            s.revision,
            by_id(s.members.iter().map(|(_, m)| m)),
            fs::read(path).unwrap_or_default(),
            journal,
        )
    };
    let before = saved(&path);
    let slots: Vec<(String, u32)> = t.members().map(|(s, m)| (m.id().into(), s)).collect();
    // Nothing reached the tables either.
    let untouched = |t: &mut Tables, dbg: &str| {
        let now: Vec<(String, u32)> = t.members().map(|(s, m)| (m.id().into(), s)).collect();
        assert_eq!(now, slots, "{dbg}");
        let c = t.take_changes();
        assert!(c.members.is_empty() && c.routes.is_empty(), "{dbg}");
    };
    let cases = [
        Op::Put(member("alice", "198.51.100.9/32")),
        Op::Put(member("carol", "198.51.100.7/32")),
        Op::Put(member("bob", "198.51.100.0/24")),
        Op::Delete("alice".into()),
        Op::Delete("nobody".into()),
        sync(vec![
            member("x", "198.51.100.16/29"),
            member("y", "198.51.100.17/32"),
        ]),
        sync(vec![member("alice", "198.51.100.9/32")]),
        sync(vec![member("x", "198.51.100.7/32")]),
        sync(
            (0..8)
                .map(|i| member(&format!("n{i}"), &format!("198.51.100.{}/32", 20 + i)))
                .collect(),
        ),
        Op::Put(Member {
            interface: "acc9".into(),
            ..member("carol", "198.51.100.9/32")
        }),
    ];
    for op in cases {
        let dbg = format!("{op:?}");
        assert!(p.write(op, &cfg, &mut t).is_err(), "{dbg}");
        assert_eq!(saved(&path), before, "{dbg}");
        untouched(&mut t, &dbg);
        assert_eq!(p.revision(), 1);
        assert_eq!(api_of(&t).len(), 1);
    }
    // The validator still knows bob's prefix.
    assert!(
        p.write(Op::Put(member("carol", "198.51.100.8/32")), &cfg, &mut t)
            .is_err()
    );
    // A write that cannot be saved changes nothing either (a directory
    // where the journal, or the temporary file of a whole write, goes
    // stops even root).
    let journal = journal_path(&path);
    assert!(!journal.exists());
    fs::create_dir(&journal).unwrap();
    let e = p
        .write(Op::Put(member("dave", "198.51.100.20/32")), &cfg, &mut t)
        .unwrap_err();
    untouched(&mut t, "unsaved put");
    assert!(matches!(e, WriteError::Persist(_)), "{e}");
    assert!(e.to_string().contains("cannot write the state file"), "{e}");
    assert!(e.to_string().contains("state.json.journal"), "{e}");
    assert_eq!(origin(&t, "dave"), None);
    assert_eq!(p.revision(), 1);
    fs::remove_dir(&journal).unwrap();
    assert_eq!(saved(&path), before);
    fs::create_dir(tmp_path(&path)).unwrap();
    let e = p
        .write(sync(vec![member("dave", "198.51.100.20/32")]), &cfg, &mut t)
        .unwrap_err();
    untouched(&mut t, "unsaved sync");
    assert!(matches!(e, WriteError::Persist(_)), "{e}");
    assert_eq!(p.revision(), 1);
    assert_eq!(saved(&path), before);
    fs::remove_dir(tmp_path(&path)).unwrap();
    p.write(Op::Put(member("dave", "198.51.100.20/32")), &cfg, &mut t)
        .unwrap();
    assert!(t.slot("dave").is_some());
    assert_eq!(p.revision(), 2);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn single_writes_go_to_the_journal_and_are_folded_in() {
    let dir = tmpdir("journal");
    let path = dir.join("state.json");
    let journal = journal_path(&path);
    let cfg = config(&path, ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    p.fold_after = 3;
    let w = |p: &mut Provisioning, t: &mut Tables, op| p.write(op, &cfg, t).unwrap();
    w(&mut p, &mut t, Op::Put(member("bob", "198.51.100.8/32")));
    w(&mut p, &mut t, Op::Put(member("carol", "198.51.100.9/32")));
    w(&mut p, &mut t, Op::Delete("bob".into()));
    // Three changes: the state file is not written, the journal is.
    assert!(!path.exists());
    let lines = fs::read_to_string(&journal).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.ends_with('\n'));
    let s = read(&path).unwrap();
    assert_eq!((s.revision, s.journaled), (3, 3));
    assert_eq!(by_id(s.members.iter().map(|(_, m)| m)), api_of(&t));
    // The fourth folds the journal into the file.
    w(&mut p, &mut t, Op::Put(member("dave", "198.51.100.10/32")));
    assert!(!journal.exists());
    let s = read(&path).unwrap();
    assert_eq!((s.revision, s.journaled), (4, 0));
    assert_eq!(by_id(s.members.iter().map(|(_, m)| m)), api_of(&t));
    assert_eq!(api_of(&t).len(), 2);
    // A restart replays the journal after the file.
    w(&mut p, &mut t, Op::Put(member("carol", "198.51.100.11/32")));
    let (again, again_t) = start(&cfg).unwrap();
    assert_eq!(again.revision(), 5);
    assert_eq!(api_of(&again_t), api_of(&t));
    assert_eq!(
        api_of(&again_t)["carol"].prefixes,
        vec!["198.51.100.11/32".parse::<IpNet>().unwrap()]
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_journal_line_cut_short_is_dropped_and_a_gap_refuses() {
    let dir = tmpdir("torn");
    let path = dir.join("state.json");
    let journal = journal_path(&path);
    let cfg = config(&path, "");
    let (mut p, mut t) = start(&cfg).unwrap();
    p.write(Op::Put(member("bob", "198.51.100.8/32")), &cfg, &mut t)
        .unwrap();
    let good = fs::read_to_string(&journal).unwrap();
    // A crash in the middle of the second append.
    let torn = format!("{good}{{\"revision\":2,\"put\":{{\"id\":\"ca");
    fs::write(&journal, &torn).unwrap();
    let (mut p, mut t) = start(&cfg).unwrap();
    assert_eq!(p.revision(), 1);
    assert_eq!(
        fs::read_to_string(&journal).unwrap(),
        good,
        "cut at the last line"
    );
    // The next append follows a whole line.
    p.write(Op::Put(member("carol", "198.51.100.9/32")), &cfg, &mut t)
        .unwrap();
    let s = read(&path).unwrap();
    assert_eq!(s.revision, 2);
    assert_eq!(s.members.len(), 2);
    // Lines already in the state file are skipped; a missing revision or
    // a damaged line refuses the start, naming the journal and the line.
    let bob = member("bob", "198.51.100.8/32");
    write_atomically(&path, 1, [Entry::Owned(&bob)].into_iter()).unwrap();
    assert_eq!(read(&path).unwrap().revision, 2);
    let text = fs::read_to_string(&journal).unwrap();
    for (bad, why) in [
        (
            text.replace("\"revision\":2", "\"revision\":3"),
            "revision 3 follows revision 1",
        ),
        (format!("{text}{{}}\n"), "line 3"),
        (
            format!("{text}{{\"revision\":3,\"delete\":\"nobody\"}}\n"),
            "absent",
        ),
    ] {
        fs::write(&journal, &bad).unwrap();
        let err = start(&cfg).err().expect(&bad).to_string();
        assert!(
            err.contains(why) && err.contains("state.json.journal"),
            "{err}"
        );
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sync_keeps_unchanged_slots() {
    let dir = tmpdir("sync");
    let path = dir.join("state.json");
    let cfg = config(&path, ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    p.write(
        sync(vec![
            member("bob", "198.51.100.8/32"),
            member("carol", "198.51.100.9/32"),
        ]),
        &cfg,
        &mut t,
    )
    .unwrap();
    let bob = t.slot("bob").unwrap();
    let Written {
        changed,
        outcome: out,
    } = p
        .write(
            sync(vec![
                member("bob", "198.51.100.8/32"),
                member("dave", "198.51.100.10/32"),
            ]),
            &cfg,
            &mut t,
        )
        .unwrap();
    assert!(changed);
    assert_eq!(
        out,
        Outcome::Synced(SyncCounts {
            added: 1,
            replaced: 0,
            removed: 1,
            unchanged: 1
        })
    );
    assert_eq!(t.slot("bob"), Some(bob));
    assert_eq!(t.slot("carol"), None);
    assert!(t.slot("alice").is_some());
    assert_eq!(p.revision(), 2);
    let _ = fs::remove_dir_all(dir);
}

/// The files of `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A sync with its member list staged as it was read.
fn staged_sync(path: &Path, list: &str) -> Op {
    let mut staged = Staged::create(path).unwrap();
    assert!(staged.is_some(), "O_TMPFILE on the test's filesystem");
    let mut r = MembersReader::new(Origin::Api, 0, |_, _| Ok(()))
        .tee(|text| staged.as_mut().unwrap().write(text));
    r.feed(format!("{{\"members\":{list}}}").as_bytes())
        .unwrap();
    let members = r.finish().unwrap();
    Op::Sync { members, staged }
}

#[test]
fn a_staged_sync_becomes_the_state_file_or_goes() {
    let dir = tmpdir("staged");
    let path = dir.join("state.json");
    let cfg = config(&path, ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    let list = "[\n  {\"id\":\"bob\",\"interface\":\"acc0\",\"prefixes\":[\"198.51.100.8/32\"]} ,\n{\"id\":\"carol\",\"interface\":\"acc0\",\"prefixes\":[\"198.51.100.9/32\"]}]";
    let Written { changed, .. } = p.write(staged_sync(&path, list), &cfg, &mut t).unwrap();
    assert!(changed);
    assert_eq!(
        files(&dir),
        ["state.json"],
        "the staged file took its place"
    );
    let s = read(&path).unwrap();
    assert_eq!(s.revision, 1);
    assert_eq!(by_id(s.members.iter().map(|(_, m)| m)), api_of(&t));
    assert_eq!(api_of(&t).len(), 2);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(list), "{text}");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Unchanged, or refused: the staged file goes, the state stays.
    let before = fs::read(&path).unwrap();
    let Written { changed, .. } = p.write(staged_sync(&path, list), &cfg, &mut t).unwrap();
    assert!(!changed);
    let clash = "[{\"id\":\"dave\",\"interface\":\"acc0\",\"prefixes\":[\"198.51.100.7/32\"]}]";
    assert!(p.write(staged_sync(&path, clash), &cfg, &mut t).is_err());
    assert_eq!(files(&dir), ["state.json"]);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(p.revision(), 1);
    // A restart reads it.
    let (again, again_t) = start(&cfg).unwrap();
    assert_eq!(again.revision(), 1);
    assert_eq!(api_of(&again_t), api_of(&t));
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn the_api_leaves_session_members_alone() {
    let dir = tmpdir("sessions");
    let cfg = config(&dir.join("state.json"), ALICE);
    let (mut p, mut t) = start(&cfg).unwrap();
    let pat = Member {
        mac: Some(router_core::member::MacAddr([2, 0, 0, 0, 0x5e, 1])),
        ..member("pat@isp.example", "198.51.100.9/32")
    };
    let checked = t.check_put(pat.as_in(), Origin::Session).unwrap();
    t.commit_put(checked, pat.as_in(), Origin::Session).unwrap();
    t.take_changes();
    // Neither replaced nor deleted through the API.
    let err = p
        .write(
            Op::Put(member("pat@isp.example", "198.51.100.10/32")),
            &cfg,
            &mut t,
        )
        .unwrap_err();
    assert!(
        matches!(&err, WriteError::SessionManaged(id) if id == "pat@isp.example"),
        "{err}"
    );
    assert!(err.to_string().contains("PPPoE session"), "{err}");
    let err = p
        .write(Op::Delete("pat@isp.example".into()), &cfg, &mut t)
        .unwrap_err();
    assert!(matches!(err, WriteError::SessionManaged(_)), "{err}");
    // A sync naming it is refused; one overlapping its prefix too; one
    // without it leaves it in place.
    let err = p
        .write(
            sync(vec![member("pat@isp.example", "198.51.100.11/32")]),
            &cfg,
            &mut t,
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::SessionManaged(_)), "{err}");
    let err = p
        .write(sync(vec![member("bob", "198.51.100.9/32")]), &cfg, &mut t)
        .unwrap_err();
    assert!(err.to_string().contains("pat@isp.example"), "{err}");
    p.write(sync(vec![member("bob", "198.51.100.8/32")]), &cfg, &mut t)
        .unwrap();
    assert_eq!(origin(&t, "pat@isp.example"), Some(Origin::Session));
    assert_eq!(origin(&t, "bob"), Some(Origin::Api));
    // The state file holds the API's members only.
    let (_, api) = Provisioning::load(&cfg).unwrap();
    let ids: Vec<String> = api.iter().map(|(_, m)| m.id().to_owned()).collect();
    assert_eq!(ids, ["bob"]);
    fs::remove_dir_all(&dir).unwrap();
}
