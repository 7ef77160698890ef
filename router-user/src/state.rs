//! The member set as the provisioning API sees it, and the persistent state
//! that keeps the members added through the API.
//!
//! # One set, two origins
//! Members from the configuration file (origin `config`) and members from
//! the API (origin `api`) form one set, validated together with the rules of
//! [`crate::config`] (unique ids, disjoint prefixes, known access interfaces,
//! at most `max_members`). The configuration file wins for the ids it names:
//! the API refuses to create, replace or delete a `config` member, and a full
//! sync replaces only the `api` members. A configuration reload replaces only
//! the `config` members; when the new file conflicts with a persisted API
//! member (same id, overlapping prefixes, an access interface it no longer
//! declares, too many members), the reload is refused and the running set
//! stays; at start the same conflict refuses to start. Either way the error
//! names both members: an acknowledged API member is never dropped silently.
//!
//! # The state file
//! `[datapath] state` (default [`crate::config::DEFAULT_STATE_PATH`]) holds
//! the `api` members:
//!
//! ```json
//! {"format":"collecte-state","version":1,"revision":7,"members":[
//! {"id":"bob","interface":"acc0","c_vlan":101,"prefixes":["198.51.100.16/29"]}
//! ]}
//! ```
//!
//! `revision` counts the API writes that changed something.
//!
//! A full sync writes the whole file atomically (a temporary file in the
//! same directory, fsync, rename, fsync of the directory). A single `PUT`
//! or `DELETE` appends one line to the journal beside it,
//! `<state>.journal`, and fdatasyncs it:
//!
//! ```json
//! {"revision":8,"put":{"id":"carol","interface":"acc0","prefixes":["198.51.100.24/32"]}}
//! {"revision":9,"delete":"bob"}
//! ```
//!
//! so that a single write costs the same with ten members or a million.
//! Once the journal holds as many changes as there are members (at least
//! [`FOLD_AFTER`]), the next write folds it into the file and removes it. A
//! start reads the file, then replays the journal's lines above the file's
//! revision, which must follow each other.
//!
//! Every write is saved *before* the API answers, so after a crash at any
//! instant the file and journal hold the last acknowledged state, or that
//! state plus the one write that was in flight (a journal line cut short by
//! the crash is dropped at the next start). A missing file is an empty set
//! (first start); a file or journal that cannot be read or parsed, or a
//! file of another format version, refuses the start: it is never taken for
//! an empty set.
//!
//! # A write
//! validate (against the whole set) → check that the [`Tables`] can take it
//! → save it → change the tables in place → the caller applies the
//! [`Changes`](crate::datapath::Changes) to the datapath → the API answers.
//! When any step before the tables change fails, nothing has changed.
use std::{
    collections::{BTreeMap, HashSet},
    fs::{self, File, OpenOptions},
    io::{BufWriter, ErrorKind, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, ConfigError, Member, MemberSet, validate_members},
    members::{Tables, TablesError},
};

/// `format` of the state file.
pub const FORMAT: &str = "collecte-state";
/// `version` of the state file this collecte reads and writes.
pub const VERSION: u32 = 1;

/// Where a member comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `[[member]]` of the configuration file.
    Config,
    /// Added through the provisioning API (kept in the state file).
    Api,
}

/// Why the state file cannot be used, or the configuration and the API
/// members conflict.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot read the state file {}: {source}; it holds the members added through the API, \
         so collecte does not start without it: fix its permissions, or set [datapath] state",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state file {} is damaged: {why}; it holds the members added through the API, so \
         collecte does not start without it: repair or restore it (moving it away drops those \
         members)",
        path.display()
    )]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "the state file {} has format version {found}; this collecte reads version {VERSION}: \
         run the collecte that wrote it, or convert the file",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{why}; an acknowledged API member is never dropped silently: change the configuration \
         file, or delete the API member first (collecte member delete {api_member})"
    )]
    Conflict {
        /// The API member.
        api_member: String,
        /// The configuration's member it conflicts with, when there is one.
        config_member: Option<String>,
        why: String,
    },
}

/// Why an API write was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The member belongs to the configuration file.
    #[error(
        "member {0:?} is managed by the configuration file; change it there and reload \
         (SIGHUP), the API may not create, replace or delete it"
    )]
    ConfigManaged(String),
    #[error("no member has id {0:?}")]
    NotFound(String),
    /// The request would break a rule of the member set.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The tables have no room for it.
    #[error(transparent)]
    Tables(#[from] TablesError),
    /// The state file could not be saved.
    #[error("the change was not made: {0}")]
    Persist(#[source] StateError),
    /// Saved, but the datapath could not be updated.
    #[error(
        "the change is saved but the datapath could not be updated: {0}; the whole tables are \
         written again at the next resync (within 30 s)"
    )]
    Datapath(String),
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created {
        slot: u32,
    },
    Replaced {
        slot: u32,
    },
    /// The member was already exactly so: nothing was written.
    Unchanged {
        slot: u32,
    },
    Deleted,
    Synced(SyncCounts),
}

/// What a full sync did, by member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    pub added: usize,
    pub replaced: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// An API write.
#[derive(Clone, Debug)]
pub enum Op {
    /// Create or replace one member.
    Put(Member),
    /// Delete one member.
    Delete(String),
    /// Replace every API member.
    Sync(Vec<Member>),
}

/// A configuration that [`Provisioning::check_config`] found compatible with
/// the API members.
pub struct Checked {
    set: MemberSet,
    config_ids: HashSet<String>,
}

/// The API members, where they are saved, and the validator of the whole
/// member set (configuration and API members together).
pub struct Provisioning {
    path: PathBuf,
    revision: u64,
    api: BTreeMap<String, Member>,
    config_ids: HashSet<String>,
    set: MemberSet,
    /// Changes in the journal beyond the state file; `usize::MAX` when the
    /// journal must be folded into the state file at the next write (an
    /// append failed and could not be undone).
    journaled: usize,
    /// The journal is folded into the state file once it holds this many
    /// changes, or as many as there are members.
    fold_after: usize,
}

impl Provisioning {
    /// Reads the state file of `config` and checks its members against the
    /// configuration's. When the API is enabled, also makes sure the state
    /// can be written (creating its directory), so that the first write
    /// cannot be the first to find out.
    pub fn load(config: &Config) -> Result<Provisioning, StateError> {
        let path = config.datapath.state.clone();
        let State {
            revision,
            members,
            journaled,
        } = read(&path)?;
        if config.api.listen.is_some() {
            check_writable(&path)?;
        }
        let mut p = Provisioning {
            path,
            revision,
            api: members,
            config_ids: HashSet::new(),
            set: MemberSet::default(),
            journaled,
            fold_after: FOLD_AFTER,
        };
        let checked = p.check_config(config)?;
        p.accept(checked);
        Ok(p)
    }

    /// Checks that `config`'s members and the API members form a valid set.
    pub fn check_config(&self, config: &Config) -> Result<Checked, StateError> {
        let mut set = config.member_set().map_err(|e| StateError::Conflict {
            api_member: String::new(),
            config_member: None,
            why: e.to_string(),
        })?;
        let config_ids: HashSet<String> = config.members.iter().map(|m| m.id.clone()).collect();
        for m in self.api.values() {
            if let Err(e) = set.insert(m) {
                return Err(self.conflict(m, &config_ids, e));
            }
        }
        Ok(Checked { set, config_ids })
    }

    fn conflict(&self, m: &Member, config_ids: &HashSet<String>, e: ConfigError) -> StateError {
        let kept = format!(
            "member {:?} (added through the provisioning API, kept in {})",
            m.id,
            self.path.display()
        );
        let (other, why) = match &e {
            ConfigError::DuplicateId { member } => (
                Some(member.clone()),
                format!(
                    "member {member:?} is declared in the configuration file, and {kept} has \
                     the same id"
                ),
            ),
            ConfigError::Overlap {
                prefix,
                other_member,
                other_prefix,
                ..
            } => (
                Some(other_member.clone()),
                format!(
                    "{kept} has prefix {prefix}, which overlaps {other_prefix} of member \
                     {other_member:?}{}",
                    if config_ids.contains(other_member) {
                        " of the configuration file"
                    } else {
                        ""
                    }
                ),
            ),
            other => (None, format!("{kept}: {other}")),
        };
        StateError::Conflict {
            api_member: m.id.clone(),
            config_member: other,
            why,
        }
    }

    /// Makes a checked configuration the one the API validates against.
    pub fn accept(&mut self, checked: Checked) {
        self.set = checked.set;
        self.config_ids = checked.config_ids;
    }

    /// Every member, the configuration's first.
    pub fn all_members(&self, config: &Config) -> Vec<Member> {
        let mut all = Vec::with_capacity(config.members.len() + self.api.len());
        all.extend(config.members.iter().cloned());
        all.extend(self.api.values().cloned());
        all
    }

    /// The origin of member `id`, if it exists.
    pub fn origin(&self, id: &str) -> Option<Origin> {
        if self.config_ids.contains(id) {
            Some(Origin::Config)
        } else if self.api.contains_key(id) {
            Some(Origin::Api)
        } else {
            None
        }
    }

    /// The API members, by id.
    pub fn api_members(&self) -> &BTreeMap<String, Member> {
        &self.api
    }

    /// Number of configuration members.
    pub fn config_count(&self) -> usize {
        self.config_ids.len()
    }

    /// The number of saved writes so far.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates `op` against the whole set, checks that `tables` can take
    /// it, saves the new API members, then changes `tables` (whose pending
    /// changes the caller applies to the datapath). Returns what was done,
    /// and whether `tables` changed. On error nothing has changed.
    pub fn write(
        &mut self,
        op: Op,
        config: &Config,
        tables: &mut Tables,
    ) -> Result<(bool, Outcome), WriteError> {
        match op {
            Op::Put(m) => self.put(m, tables),
            Op::Delete(id) => self.delete(&id, tables),
            Op::Sync(members) => self.sync(members, config, tables),
        }
    }

    fn put(&mut self, m: Member, tables: &mut Tables) -> Result<(bool, Outcome), WriteError> {
        if self.config_ids.contains(&m.id) {
            return Err(WriteError::ConfigManaged(m.id));
        }
        let old = self.api.get(&m.id).cloned();
        if let Some(old) = &old
            && *old == m
        {
            let slot = tables.slot(&m.id).unwrap_or_default();
            return Ok((false, Outcome::Unchanged { slot }));
        }
        // Validate (and index) the new member; undone below on failure.
        self.set.replace(&m)?;
        let undo = |set: &mut MemberSet| match &old {
            Some(o) => {
                set.replace(o).expect("the old member fitted the others");
            }
            None => {
                set.remove(&m.id);
            }
        };
        let checked = match tables.check_member(&m) {
            Ok(c) => c,
            Err(e) => {
                undo(&mut self.set);
                return Err(e.into());
            }
        };
        if let Err(e) = self.save_change(Change::Put(&m)) {
            undo(&mut self.set);
            return Err(WriteError::Persist(e));
        }
        self.revision += 1;
        // Checked above: cannot fail.
        if let Some(old) = tables.commit_member(checked, &m)? {
            drop_later(old);
        }
        let slot = tables.slot(&m.id).unwrap_or_default();
        self.api.insert(m.id.clone(), m);
        let outcome = match old {
            Some(_) => Outcome::Replaced { slot },
            None => Outcome::Created { slot },
        };
        Ok((true, outcome))
    }

    fn delete(&mut self, id: &str, tables: &mut Tables) -> Result<(bool, Outcome), WriteError> {
        if self.config_ids.contains(id) {
            return Err(WriteError::ConfigManaged(id.to_owned()));
        }
        if !self.api.contains_key(id) {
            return Err(WriteError::NotFound(id.to_owned()));
        }
        self.save_change(Change::Delete(id))
            .map_err(WriteError::Persist)?;
        self.api.remove(id);
        self.set.remove(id);
        self.revision += 1;
        // A removal only frees room: it fails only for a member the tables
        // never had.
        tables.remove_member(id)?;
        Ok((true, Outcome::Deleted))
    }

    fn sync(
        &mut self,
        members: Vec<Member>,
        config: &Config,
        tables: &mut Tables,
    ) -> Result<(bool, Outcome), WriteError> {
        let t = std::time::Instant::now();
        let lap = |what: &str| {
            tracing::debug!(
                elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
                "full sync: {what}"
            )
        };
        if let Some(m) = members.iter().find(|m| self.config_ids.contains(&m.id)) {
            return Err(WriteError::ConfigManaged(m.id.clone()));
        }
        // The whole set at once, the configuration's members first, so that
        // an error names the new member first; then the validator of later
        // single writes, in bulk.
        let set = {
            let all: Vec<&Member> = config.members.iter().chain(&members).collect();
            let access = config.access_interfaces();
            validate_members(&all, &access, config.datapath.max_members)?;
            MemberSet::from_valid(access, config.datapath.max_members, &all)
        };
        lap("validated");
        let api: BTreeMap<String, Member> =
            members.into_iter().map(|m| (m.id.clone(), m)).collect();
        let mut counts = SyncCounts::default();
        for (id, m) in &api {
            match self.api.get(id) {
                None => counts.added += 1,
                Some(old) if old == m => counts.unchanged += 1,
                Some(_) => counts.replaced += 1,
            }
        }
        counts.removed = self.api.keys().filter(|id| !api.contains_key(*id)).count();
        lap("compared");
        if api == self.api {
            return Ok((false, Outcome::Synced(counts)));
        }
        let all: Vec<&Member> = config.members.iter().chain(api.values()).collect();
        let checked = tables.check_sync(&all)?;
        lap("tables checked");
        self.save(api.values()).map_err(WriteError::Persist)?;
        lap("state saved");
        self.revision += 1;
        // Checked above: cannot fail.
        let synced = tables.commit_sync(checked, &all);
        lap("tables computed");
        drop(all);
        // The replaced sets are freed off the answer's path.
        drop_later((
            std::mem::replace(&mut self.api, api),
            std::mem::replace(&mut self.set, set),
        ));
        if let Some(old) = synced? {
            drop_later(old);
        }
        Ok((true, Outcome::Synced(counts)))
    }

    /// Saves `api` as the next revision, whole; the journal is then folded
    /// in (removed). When the file was replaced but the directory could not
    /// be synced, the previous state is written back (best effort) so that
    /// a refused write does not come back at restart.
    fn save<'a>(&mut self, api: impl IntoIterator<Item = &'a Member>) -> Result<(), StateError> {
        save_whole(&self.path, self.revision, &self.api, api)?;
        self.fold_journal();
        Ok(())
    }

    /// Removes the journal, whose changes the state file now holds. Its
    /// entries are at or below the file's revision, so a journal that cannot
    /// be removed is harmless: it is skipped at the next start, and tried
    /// again at the next write.
    fn fold_journal(&mut self) {
        let journal = journal_path(&self.path);
        match fs::remove_file(&journal) {
            Ok(()) => self.journaled = 0,
            Err(e) if e.kind() == ErrorKind::NotFound => self.journaled = 0,
            Err(e) => {
                tracing::warn!(journal = %journal.display(), error = %e, "cannot remove the state journal; it is retried at the next write");
                self.journaled = usize::MAX;
            }
        }
    }

    /// Saves one member's change as the next revision: one line appended to
    /// the journal, then fdatasync. Once the journal holds as many changes
    /// as there are members (at least [`FOLD_AFTER`]), the whole state file
    /// is written instead, so that a start never replays more than the file
    /// holds. On error nothing was saved.
    fn save_change(&mut self, change: Change<'_>) -> Result<(), StateError> {
        let (m, id) = match change {
            Change::Put(m) => (Some(m), m.id.as_str()),
            Change::Delete(id) => (None, id),
        };
        if self.journaled >= self.fold_after.max(self.api.len()) {
            // The file is written from the current members with the change
            // in place: no copy of the whole set.
            let new = with_member(&self.api, m, id);
            save_whole(&self.path, self.revision, &self.api, new)?;
            self.fold_journal();
            return Ok(());
        }
        let line = JournalEntry {
            revision: self.revision + 1,
            put: m,
            delete: m.is_none().then_some(id),
        };
        let mut bytes = serde_json::to_vec(&line).expect("a member serializes");
        bytes.push(b'\n');
        self.append(&bytes)?;
        self.journaled += 1;
        Ok(())
    }

    /// Appends `bytes` to the journal (opened for this write alone, so that
    /// a journal moved or replaced meanwhile is never written blind), then
    /// fdatasync. On error the journal is as it was.
    fn append(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let path = journal_path(&self.path);
        let err = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let open = |create| {
            OpenOptions::new()
                .append(true)
                .create_new(create)
                .mode(0o600)
                .open(&path)
        };
        let mut file = match open(false) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir_of(&self.path))
                    .map_err(err)?;
                let f = open(true).map_err(err)?;
                // The journal's name must survive a crash too.
                File::open(dir_of(&self.path))
                    .and_then(|d| d.sync_all())
                    .map_err(err)?;
                f
            }
            Err(e) => return Err(err(e)),
        };
        let len = file.metadata().map_err(err)?.len();
        if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_data()) {
            // Take the line back: a later append must not follow a torn one.
            if file.set_len(len).and_then(|()| file.sync_data()).is_err() {
                self.journaled = usize::MAX;
            }
            return Err(err(e));
        }
        Ok(())
    }
}

/// Writes `new` as the state file of revision `revision + 1`. When the file
/// was replaced but the directory could not be synced, `current` is written
/// back (best effort) so that a refused write does not come back at restart.
fn save_whole<'a>(
    path: &Path,
    revision: u64,
    current: &BTreeMap<String, Member>,
    new: impl IntoIterator<Item = &'a Member>,
) -> Result<(), StateError> {
    write_atomically(path, revision + 1, new).map_err(|(e, renamed)| {
        if renamed {
            let _ = write_atomically(path, revision, current.values());
        }
        e
    })
}

/// One member's change, as the journal saves it.
enum Change<'a> {
    Put(&'a Member),
    Delete(&'a str),
}

/// Changes the journal may hold before it is folded into the state file,
/// at the least.
pub const FOLD_AFTER: usize = 4096;

/// A line of the journal: a member created or replaced (`put`), or deleted.
#[derive(Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(
        serialize = "M: Serialize, S: Serialize",
        deserialize = "M: Deserialize<'de>, S: Deserialize<'de>"
    )
)]
struct JournalEntry<M, S> {
    revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    put: Option<M>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delete: Option<S>,
}

/// The journal of the state file at `path`: `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.journal"))
}

/// The members of `api` by id, with member `id` replaced by `m` (or left
/// out when `m` is `None`).
fn with_member<'a>(
    api: &'a BTreeMap<String, Member>,
    m: Option<&'a Member>,
    id: &str,
) -> Vec<&'a Member> {
    let mut out = Vec::with_capacity(api.len() + 1);
    let mut pending = m;
    for x in api.values() {
        if let Some(p) = pending
            && p.id < x.id
        {
            out.push(p);
            pending = None;
        }
        if x.id != id {
            out.push(x);
        }
    }
    out.extend(pending);
    out
}

/// Drops `value` on a thread of its own: freeing a large member set takes
/// a while, and nobody waits for it.
pub fn drop_later<T: Send + 'static>(value: T) {
    // When no thread can be started, the value is dropped here instead.
    let _ = std::thread::Builder::new()
        .name("collecte-free".into())
        .spawn(move || drop(value));
}

/// The state file as it is read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    version: u64,
    revision: u64,
    members: Vec<Member>,
}

/// The head of a state file of any version.
#[derive(Deserialize)]
struct Head {
    format: Option<String>,
    version: Option<u64>,
}

/// The API members as saved.
#[derive(Debug, Default)]
pub struct State {
    pub revision: u64,
    pub members: BTreeMap<String, Member>,
    /// Changes replayed from the journal.
    pub journaled: usize,
}

/// Reads a state file and replays its journal. A missing file is revision
/// 0 with no member. A journal line cut short by a crash (the write it
/// saved was never acknowledged) is dropped, from the file too, so that the
/// next line does not follow it.
pub fn read(path: &Path) -> Result<State, StateError> {
    let (revision, members) = read_file(path)?;
    let mut state = State {
        revision,
        members: BTreeMap::new(),
        journaled: 0,
    };
    for m in members {
        state.members.insert(m.id.clone(), m);
    }
    let journal = journal_path(path);
    let bytes = match fs::read(&journal) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(state),
        Err(source) => {
            return Err(StateError::Read {
                path: journal,
                source,
            });
        }
    };
    let corrupt = |line: usize, why: String| StateError::Corrupt {
        path: journal.clone(),
        why: format!("line {line}: {why}"),
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for (i, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let e: JournalEntry<Member, String> =
            serde_json::from_slice(line).map_err(|e| corrupt(i + 1, e.to_string()))?;
        if e.revision <= state.revision {
            // Already in the state file (it was written after the line).
            continue;
        }
        if e.revision != state.revision + 1 {
            return Err(corrupt(
                i + 1,
                format!(
                    "revision {} follows revision {}",
                    e.revision, state.revision
                ),
            ));
        }
        match (e.put, e.delete) {
            (Some(m), None) => {
                state.members.insert(m.id.clone(), m);
            }
            (None, Some(id)) => {
                if state.members.remove(&id).is_none() {
                    return Err(corrupt(
                        i + 1,
                        format!("it deletes {id:?}, which is absent"),
                    ));
                }
            }
            _ => {
                return Err(corrupt(
                    i + 1,
                    "a line has exactly one of \"put\" and \"delete\"".into(),
                ));
            }
        }
        state.revision = e.revision;
        state.journaled += 1;
    }
    if complete < bytes.len() {
        tracing::warn!(journal = %journal.display(), "dropping the last line of the state journal, cut short by a crash: its write was never acknowledged");
        OpenOptions::new()
            .write(true)
            .open(&journal)
            .and_then(|f| {
                f.set_len(complete as u64)?;
                f.sync_all()
            })
            .map_err(|source| StateError::Write {
                path: journal.clone(),
                source,
            })?;
    }
    Ok(state)
}

/// Reads the state file alone: (revision, members).
fn read_file(path: &Path) -> Result<(u64, Vec<Member>), StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let corrupt = |why: String| StateError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("it is not a JSON object: {e}")))?;
    if head.format.as_deref() != Some(FORMAT) {
        return Err(corrupt(format!("its \"format\" is not {FORMAT:?}")));
    }
    match head.version {
        Some(v) if v == u64::from(VERSION) => {}
        Some(found) => {
            return Err(StateError::Version {
                path: path.to_owned(),
                found,
            });
        }
        None => return Err(corrupt("it has no \"version\"".into())),
    }
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    debug_assert_eq!(file.format, FORMAT);
    debug_assert_eq!(file.version, u64::from(VERSION));
    let mut ids = HashSet::with_capacity(file.members.len());
    for m in &file.members {
        if !ids.insert(m.id.as_str()) {
            return Err(corrupt(format!("member {:?} appears twice", m.id)));
        }
    }
    Ok((file.revision, file.members))
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Creates the state's directory if needed (mode 0700) and checks that a
/// file can be created in it.
fn check_writable(path: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = dir_of(path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let tmp = tmp_path(path);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    fs::remove_file(&tmp).map_err(err)
}

/// Writes the state file atomically: a temporary file in the same
/// directory, fsync, rename over the file, fsync of the directory. On error,
/// says whether the rename had happened.
pub fn write_atomically<'a>(
    path: &Path,
    revision: u64,
    members: impl IntoIterator<Item = &'a Member>,
) -> Result<(), (StateError, bool)> {
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = tmp_path(path);
    let written = (|| -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir_of(path))?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        // One member per line, for people who read the file.
        write!(
            w,
            "{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"revision\":{revision},\"members\":["
        )?;
        for (i, m) in members.into_iter().enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut w, m)?;
        }
        w.write_all(b"\n]}\n")?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err((err(e), false));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err((err(e), false));
    }
    File::open(dir_of(path))
        .and_then(|d| d.sync_all())
        .map_err(|e| (err(e), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;
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

    fn tables(config: &Config, p: &Provisioning) -> Tables {
        let mut t = Tables::new(8, 64);
        t.set_interfaces(config, &BTreeMap::new(), &BTreeMap::new())
            .unwrap();
        t.sync(&p.all_members(config)).unwrap();
        t.take_changes();
        t
    }

    const ALICE: &str =
        "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/32\"]\n";

    #[test]
    fn a_write_saves_the_members_in_order_with_one_replaced() {
        let api: BTreeMap<String, Member> = [("a", ".1/32"), ("c", ".3/32")]
            .into_iter()
            .map(|(id, p)| (id.to_string(), member(id, &format!("198.51.100{p}"))))
            .collect();
        let ids = |v: Vec<&Member>| {
            v.iter()
                .map(|m| format!("{}{}", m.id, m.prefixes[0]))
                .collect::<Vec<_>>()
        };
        let b = member("b", "198.51.100.2/32");
        assert_eq!(
            ids(with_member(&api, Some(&b), "b")),
            ["a198.51.100.1/32", "b198.51.100.2/32", "c198.51.100.3/32"]
        );
        let c = member("c", "198.51.100.9/32");
        assert_eq!(
            ids(with_member(&api, Some(&c), "c")),
            ["a198.51.100.1/32", "c198.51.100.9/32"]
        );
        let z = member("z", "198.51.100.26/32");
        assert_eq!(
            ids(with_member(&api, Some(&z), "z")),
            ["a198.51.100.1/32", "c198.51.100.3/32", "z198.51.100.26/32"]
        );
        assert_eq!(ids(with_member(&api, None, "a")), ["c198.51.100.3/32"]);
    }

    #[test]
    fn missing_file_is_empty_and_writes_round_trip() {
        let dir = tmpdir("rt");
        let path = dir.join("sub/state.json");
        let cfg = config(&path, ALICE);
        let mut p = Provisioning::load(&cfg).unwrap();
        assert_eq!(p.revision(), 0);
        assert!(p.api_members().is_empty());
        let mut t = tables(&cfg, &p);
        let (changed, out) = p
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
        let (changed, out) = p
            .write(Op::Put(member("bob", "198.51.100.8/32")), &cfg, &mut t)
            .unwrap();
        assert!(!changed);
        assert!(t.take_changes().members.is_empty());
        assert!(matches!(out, Outcome::Unchanged { .. }));
        assert_eq!(p.revision(), 1);
        let again = Provisioning::load(&cfg).unwrap();
        assert_eq!(again.revision(), 1);
        assert_eq!(again.api_members(), p.api_members());
        assert_eq!(again.origin("alice"), Some(Origin::Config));
        assert_eq!(again.origin("bob"), Some(Origin::Api));
        assert!(!tmp_path(&path).exists());
        p.write(
            Op::Sync(vec![member("carol", "198.51.100.9/32")]),
            &cfg,
            &mut t,
        )
        .unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(!journal_path(&path).exists());
        assert_eq!(Provisioning::load(&cfg).unwrap().revision(), 2);
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
            let err = Provisioning::load(&cfg).err().expect(text);
            assert!(err.to_string().contains(what), "{text}: {err}");
            assert!(err.to_string().contains("state.json"), "{err}");
        }
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn configuration_conflicts_name_both_members() {
        let dir = tmpdir("conflict");
        let path = dir.join("state.json");
        let mut api = BTreeMap::new();
        api.insert("bob".to_string(), member("bob", "198.51.100.0/29"));
        write_atomically(&path, 3, api.values()).unwrap();
        let err = Provisioning::load(&config(&path, ALICE)).err().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("\"alice\"") && text.contains("\"bob\"") && text.contains("overlaps"),
            "{text}"
        );
        let same_id = ALICE.replace("alice", "bob").replace(".7/", ".9/");
        let err = Provisioning::load(&config(&path, &same_id)).err().unwrap();
        assert!(err.to_string().contains("same id"), "{err}");
        // A compatible configuration loads, with the revision.
        let p = Provisioning::load(&config(&path, "")).unwrap();
        assert_eq!(p.revision(), 3);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn refused_writes_change_nothing() {
        let dir = tmpdir("refused");
        let path = dir.join("state.json");
        let cfg = config(&path, ALICE);
        let mut p = Provisioning::load(&cfg).unwrap();
        let mut t = tables(&cfg, &p);
        // A whole write: no journal yet.
        p.write(
            Op::Sync(vec![member("bob", "198.51.100.8/32")]),
            &cfg,
            &mut t,
        )
        .unwrap();
        t.take_changes();
        let saved = |path: &Path| {
            let s = read(path).unwrap();
            let journal = fs::read(journal_path(path)).unwrap_or_default();
            (
                s.revision,
                s.members,
                fs::read(path).unwrap_or_default(),
                journal,
            )
        };
        let before = saved(&path);
        let slots: Vec<(String, u32)> = t.members().map(|(id, s, _)| (id.into(), s)).collect();
        // Nothing reached the tables either.
        let untouched = |t: &mut Tables, dbg: &str| {
            let now: Vec<(String, u32)> = t.members().map(|(id, s, _)| (id.into(), s)).collect();
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
            Op::Sync(vec![
                member("x", "198.51.100.9/32"),
                member("x", "198.51.100.10/32"),
            ]),
            Op::Sync(vec![member("alice", "198.51.100.9/32")]),
        ];
        for op in cases {
            let dbg = format!("{op:?}");
            assert!(p.write(op, &cfg, &mut t).is_err(), "{dbg}");
            assert_eq!(saved(&path), before, "{dbg}");
            untouched(&mut t, &dbg);
            assert_eq!(p.revision(), 1);
            assert_eq!(p.api_members().len(), 1);
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
        assert_eq!(p.origin("dave"), None);
        assert_eq!(p.revision(), 1);
        fs::remove_dir(&journal).unwrap();
        assert_eq!(saved(&path), before);
        fs::create_dir(tmp_path(&path)).unwrap();
        let e = p
            .write(
                Op::Sync(vec![member("dave", "198.51.100.20/32")]),
                &cfg,
                &mut t,
            )
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
        let mut p = Provisioning::load(&cfg).unwrap();
        p.fold_after = 3;
        let mut t = tables(&cfg, &p);
        let mut w = |p: &mut Provisioning, op| p.write(op, &cfg, &mut t).unwrap();
        w(&mut p, Op::Put(member("bob", "198.51.100.8/32")));
        w(&mut p, Op::Put(member("carol", "198.51.100.9/32")));
        w(&mut p, Op::Delete("bob".into()));
        // Three changes: the state file is not written, the journal is.
        assert!(!path.exists());
        let lines = fs::read_to_string(&journal).unwrap();
        assert_eq!(lines.lines().count(), 3, "{lines}");
        assert!(lines.ends_with('\n'));
        let s = read(&path).unwrap();
        assert_eq!((s.revision, s.journaled), (3, 3));
        assert_eq!(&s.members, p.api_members());
        // The fourth folds the journal into the file.
        w(&mut p, Op::Put(member("dave", "198.51.100.10/32")));
        assert!(!journal.exists());
        let s = read(&path).unwrap();
        assert_eq!((s.revision, s.journaled), (4, 0));
        assert_eq!(&s.members, p.api_members());
        // A restart replays the journal after the file.
        w(&mut p, Op::Put(member("carol", "198.51.100.11/32")));
        let again = Provisioning::load(&cfg).unwrap();
        assert_eq!(again.revision(), 5);
        assert_eq!(again.api_members(), p.api_members());
        assert_eq!(
            again.api_members()["carol"].prefixes,
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
        let mut p = Provisioning::load(&cfg).unwrap();
        let mut t = tables(&cfg, &p);
        p.write(Op::Put(member("bob", "198.51.100.8/32")), &cfg, &mut t)
            .unwrap();
        let good = fs::read_to_string(&journal).unwrap();
        // A crash in the middle of the second append.
        let torn = format!("{good}{{\"revision\":2,\"put\":{{\"id\":\"ca");
        fs::write(&journal, &torn).unwrap();
        let mut p = Provisioning::load(&cfg).unwrap();
        assert_eq!(p.revision(), 1);
        assert_eq!(
            fs::read_to_string(&journal).unwrap(),
            good,
            "cut at the last line"
        );
        // The next append follows a whole line.
        let mut t = tables(&cfg, &p);
        p.write(Op::Put(member("carol", "198.51.100.9/32")), &cfg, &mut t)
            .unwrap();
        let s = read(&path).unwrap();
        assert_eq!(s.revision, 2);
        assert_eq!(s.members.len(), 2);
        // Lines already in the state file are skipped; a missing revision or
        // a damaged line refuses the start, naming the journal and the line.
        write_atomically(&path, 1, [&member("bob", "198.51.100.8/32")]).unwrap();
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
            let err = Provisioning::load(&cfg).err().expect(&bad).to_string();
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
        let mut p = Provisioning::load(&cfg).unwrap();
        let mut t = tables(&cfg, &p);
        p.write(
            Op::Sync(vec![
                member("bob", "198.51.100.8/32"),
                member("carol", "198.51.100.9/32"),
            ]),
            &cfg,
            &mut t,
        )
        .unwrap();
        let bob = t.slot("bob").unwrap();
        let (changed, out) = p
            .write(
                Op::Sync(vec![
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
}
