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
    collections::HashSet,
    fs::{self, File, OpenOptions},
    io::{BufWriter, ErrorKind, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use router_core::{
    config::{Claims, Config, ConfigError, check_count, check_interface},
    member::{Member, MemberError, MemberIn, Origin},
    store::{
        MemberStore, MemberView,
        json::{MembersReader, ReadError},
    },
    tables::{Part, ReplaceCounts, Tables, TablesError},
};

/// `format` of the state file.
pub const FORMAT: &str = "collecte-state";
/// `version` of the state file this collecte reads and writes.
pub const VERSION: u32 = 1;

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

impl From<ReplaceCounts> for SyncCounts {
    fn from(c: ReplaceCounts) -> Self {
        SyncCounts {
            added: c.added,
            replaced: c.replaced,
            removed: c.removed,
            unchanged: c.unchanged,
        }
    }
}

/// An API write.
#[derive(Debug)]
pub enum Op {
    /// Create or replace one member.
    Put(Member),
    /// Delete one member.
    Delete(String),
    /// Replace every API member with those of the batch (read by
    /// [`MembersReader`], fields checked); `staged`, when given, holds
    /// their list as sent, written while it was read.
    Sync {
        members: MemberStore,
        staged: Option<Staged>,
    },
}

impl Op {
    /// A full sync of `members`, saved from the members themselves.
    pub fn sync(members: MemberStore) -> Op {
        Op::Sync {
            members,
            staged: None,
        }
    }
}

/// A full sync's member list written to the next state file while the
/// request body is still being read (the text of the list as sent, from
/// [`MembersReader::tee`]), so that saving the sync costs only its fsync.
/// The file has no name (`O_TMPFILE`) until [`Provisioning`] completes it
/// and puts it in place, once the sync is checked; dropped before, it
/// leaves nothing behind, even after a crash.
pub struct Staged {
    file: BufWriter<File>,
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").finish_non_exhaustive()
    }
}

impl Staged {
    /// Starts the next state file in `path`'s directory: its head, then
    /// the member list to come through [`Staged::write`]. `None` where the
    /// filesystem has no unnamed files: the sync is then saved from its
    /// members.
    pub fn create(path: &Path) -> Result<Option<Staged>, StateError> {
        use std::os::fd::FromRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        let err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        let dir = create_dir(path)?;
        let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| err(std::io::Error::new(ErrorKind::InvalidInput, e)))?;
        // SAFETY: a plain open(2) of a NUL-terminated path; the descriptor is
        // owned by the File below.
        let fd = unsafe {
            libc::open(
                c_dir.as_ptr(),
                libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL) => Ok(None),
                _ => Err(err(e)),
            };
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut staged = Staged {
            file: BufWriter::with_capacity(1 << 20, file),
            error: None,
        };
        staged.write(
            format!("{{\"format\":\"{FORMAT}\",\"version\":{VERSION},\"members\":").as_bytes(),
        );
        Ok(Some(staged))
    }

    /// Appends text of the member list; the first error is kept for the
    /// commit.
    pub fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none()
            && let Err(e) = self.file.write_all(bytes)
        {
            self.error = Some(e);
        }
    }

    /// Completes the file as revision `revision` and puts it in place of
    /// the state file at `path`: fsync, a name beside it, rename over it,
    /// fsync of the directory. On error, says whether the rename had
    /// happened.
    fn commit(mut self, path: &Path, revision: u64) -> Result<(), (StateError, bool)> {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        let err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        self.write(format!(",\"revision\":{revision}}}\n").as_bytes());
        if let Some(e) = self.error.take() {
            return Err((err(e), false));
        }
        let file = self
            .file
            .into_inner()
            .map_err(|e| (err(e.into_error()), false))?;
        file.sync_all().map_err(|e| (err(e), false))?;
        // The temporary name of whole writes: a leftover of a crash goes.
        let tmp = tmp_path(path);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err((err(e), false)),
        }
        let from =
            std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
        let to = std::ffi::CString::new(tmp.as_os_str().as_bytes())
            .map_err(|e| (err(std::io::Error::new(ErrorKind::InvalidInput, e)), false))?;
        // SAFETY: linkat(2) of two NUL-terminated paths (the unnamed file's
        // /proc link, as open(2) documents for O_TMPFILE).
        let linked = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if linked != 0 {
            return Err((err(std::io::Error::last_os_error()), false));
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err((err(e), false));
        }
        File::open(dir_of(path))
            .and_then(|d| d.sync_all())
            .map_err(|e| (err(e), true))
    }
}

/// The configuration's members, checked against the API members: the batch
/// [`Tables::update`] takes for them.
pub struct Checked {
    pub config_members: MemberStore,
}

/// Where the API members are saved, and how many writes were.
///
/// The members themselves, of both origins, live once in [`Tables`].
pub struct Provisioning {
    path: PathBuf,
    revision: u64,
    /// Changes in the journal beyond the state file; `usize::MAX` when the
    /// journal must be folded into the state file at the next write (an
    /// append failed and could not be undone).
    journaled: usize,
    /// The journal is folded into the state file once it holds this many
    /// changes, or as many as there are members.
    fold_after: usize,
}

impl Provisioning {
    /// Reads the state file of `config`: the provisioning state and the
    /// API members it holds. When the API is enabled, also makes sure the
    /// state can be written (creating its directory), so that the first
    /// write cannot be the first to find out. Check the members against the
    /// configuration's with [`check_config`].
    pub fn load(config: &Config) -> Result<(Provisioning, MemberStore), StateError> {
        let path = config.datapath.state.clone();
        let State {
            revision,
            members,
            journaled,
        } = read(&path)?;
        if config.api.listen.is_some() {
            check_writable(&path)?;
        }
        let p = Provisioning {
            path,
            revision,
            journaled,
            fold_after: FOLD_AFTER,
        };
        Ok((p, members))
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
            Op::Sync { members, staged } => self.sync(members, staged, config, tables),
        }
    }

    fn put(&mut self, m: Member, tables: &mut Tables) -> Result<(bool, Outcome), WriteError> {
        m.validate_fields().map_err(ConfigError::from)?;
        let old = tables.member(&m.id);
        if let Some((slot, cur)) = old {
            if cur.origin() == Origin::Config {
                return Err(WriteError::ConfigManaged(m.id));
            }
            if cur.same_as(m.as_in()) {
                return Ok((false, Outcome::Unchanged { slot }));
            }
        }
        let existed = old.is_some();
        let checked = tables
            .check_put(m.as_in(), Origin::Api)
            .map_err(tables_error)?;
        self.save_change(Change::Put(&m), tables)
            .map_err(WriteError::Persist)?;
        self.revision += 1;
        // Checked above: cannot fail.
        if let Some(old) = tables.commit_put(checked, m.as_in(), Origin::Api)? {
            drop_later(old);
        }
        let slot = tables.slot(&m.id).unwrap_or_default();
        let outcome = if existed {
            Outcome::Replaced { slot }
        } else {
            Outcome::Created { slot }
        };
        Ok((true, outcome))
    }

    fn delete(&mut self, id: &str, tables: &mut Tables) -> Result<(bool, Outcome), WriteError> {
        match tables.member(id) {
            Some((_, m)) if m.origin() == Origin::Config => {
                return Err(WriteError::ConfigManaged(id.to_owned()));
            }
            Some(_) => {}
            None => return Err(WriteError::NotFound(id.to_owned())),
        }
        self.save_change(Change::Delete(id), tables)
            .map_err(WriteError::Persist)?;
        self.revision += 1;
        // A removal only frees room: it fails only for a member the tables
        // never had.
        tables.remove_member(id)?;
        Ok((true, Outcome::Deleted))
    }

    fn sync(
        &mut self,
        batch: MemberStore,
        staged: Option<Staged>,
        config: &Config,
        tables: &mut Tables,
    ) -> Result<(bool, Outcome), WriteError> {
        let t = std::time::Instant::now();
        let lap = |what: &str| {
            let (rss_kib, peak_kib) = resident_kib();
            tracing::debug!(
                elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
                rss_kib,
                peak_kib,
                "full sync: {what}"
            )
        };
        // The configuration's members stay: the batch is checked against
        // them (its own members were checked one by one as they were read,
        // and its ids are unique).
        let access = config.access_interfaces();
        let config_members = || {
            tables
                .members()
                .filter(|(_, m)| m.origin() == Origin::Config)
        };
        let config_count = tables.store().count(Origin::Config);
        check_count(config_count + batch.len(), config.datapath.max_members)?;
        let mut claims = Claims::with_capacity(config_count + batch.len());
        // Numbers: the configuration's members first (by slot), then the
        // batch's, so that an overlap names the batch's member first.
        let mut config_slots = Vec::with_capacity(config_count);
        for (slot, m) in config_members() {
            if batch.number(m.id()).is_some() {
                return Err(WriteError::ConfigManaged(m.id().to_owned()));
            }
            for p in m.prefixes() {
                claims.add(config_slots.len() as u32, &p);
            }
            config_slots.push(slot);
        }
        let base = config_slots.len() as u32;
        for (n, m) in batch.iter() {
            check_interface_view(&m, &access)?;
            for p in m.prefixes() {
                claims.add(base + n, &p);
            }
        }
        if let Some(o) = claims.first_overlap() {
            drop(claims);
            let id = |i: u32| match i.checked_sub(base) {
                Some(n) => batch.get(n).map(|m| m.id().to_owned()),
                None => tables.id(config_slots[i as usize]).map(str::to_owned),
            };
            return Err(ConfigError::from(o.error(|i| id(i).unwrap_or_default())).into());
        }
        drop(claims);
        lap("validated");
        let parts = [Part::of(Origin::Api, &batch)];
        let checked = tables.check_replace(&parts).map_err(tables_error)?;
        let counts = SyncCounts::from(checked.counts());
        lap("tables checked");
        if counts.added == 0 && counts.replaced == 0 && counts.removed == 0 {
            drop_later(batch);
            return Ok((false, Outcome::Synced(counts)));
        }
        match staged {
            Some(staged) => {
                let revision = self.revision;
                staged
                    .commit(&self.path, revision + 1)
                    .map_err(|e| restore(&self.path, revision, tables, e))
                    .map_err(WriteError::Persist)?;
                self.fold_journal();
            }
            None => self
                .save(batch.iter().map(|(_, m)| Entry::View(m)), tables)
                .map_err(WriteError::Persist)?,
        }
        lap("state saved");
        self.revision += 1;
        // Checked above: cannot fail.
        let replaced = tables.commit_replace(checked, &parts);
        lap("tables computed");
        drop_later(batch);
        if let Some(old) = replaced? {
            drop_later(old);
        }
        Ok((true, Outcome::Synced(counts)))
    }

    /// Saves `api` as the next revision, whole; the journal is then folded
    /// in (removed). When the file was replaced but the directory could not
    /// be synced, the previous state (`tables`' API members) is written back
    /// (best effort) so that a refused write does not come back at restart.
    fn save<'a>(
        &mut self,
        api: impl Iterator<Item = Entry<'a>>,
        tables: &Tables,
    ) -> Result<(), StateError> {
        save_whole(&self.path, self.revision, tables, api)?;
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
    /// is written instead (from `tables`' API members with the change in
    /// place), so that a start never replays more than the file holds. On
    /// error nothing was saved.
    fn save_change(&mut self, change: Change<'_>, tables: &Tables) -> Result<(), StateError> {
        let (m, id) = match change {
            Change::Put(m) => (Some(m), m.id.as_str()),
            Change::Delete(id) => (None, id),
        };
        let api_count = tables.store().count(Origin::Api);
        if self.journaled >= self.fold_after.max(api_count) {
            let current = api_members(tables)
                .filter(|v| v.id() != id)
                .map(Entry::View);
            let new = current.chain(m.map(Entry::Owned));
            save_whole(&self.path, self.revision, tables, new)?;
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

/// This process's resident memory and its peak (`VmRSS`, `VmHWM`), in KiB;
/// zeros where /proc does not say.
pub fn resident_kib() -> (u64, u64) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The write error of a tables error: a broken rule is invalid input.
fn tables_error(e: TablesError) -> WriteError {
    match e {
        TablesError::Invalid(e) => WriteError::Invalid(e),
        other => WriteError::Tables(other),
    }
}

fn check_interface_view(m: &MemberView<'_>, access: &HashSet<&str>) -> Result<(), ConfigError> {
    let prefixes: Vec<ipnet::IpNet> = Vec::new();
    check_interface(
        MemberIn {
            id: m.id(),
            interface: m.interface(),
            s_vlan: m.s_vlan(),
            c_vlan: m.c_vlan(),
            mac: m.mac(),
            prefixes: &prefixes,
        },
        access,
    )
}

/// The API members of `tables`.
fn api_members(tables: &Tables) -> impl Iterator<Item = MemberView<'_>> + '_ {
    tables
        .members()
        .map(|(_, m)| m)
        .filter(|m| m.origin() == Origin::Api)
}

/// Checks that the configuration's members `config_members` (as
/// [`Config::read`] gives them: checked among themselves) and the API
/// members `api` form a valid set: ids, prefixes, interfaces and
/// `max_members`. The error names both members.
pub fn check_config<'a>(
    config: &Config,
    config_members: MemberStore,
    api: impl Iterator<Item = MemberView<'a>>,
    path: &Path,
) -> Result<Checked, StateError> {
    let mut api = api.peekable();
    if api.peek().is_none() {
        // The configuration's members were checked among themselves when
        // it was read.
        return Ok(Checked { config_members });
    }
    let access = config.access_interfaces();
    let n = config_members.end();
    let mut claims = Claims::with_capacity(config_members.len());
    for (i, m) in config_members.iter() {
        for p in m.prefixes() {
            claims.add(i, &p);
        }
    }
    let mut api_ids: Vec<&str> = Vec::new();
    let mut count = config_members.len();
    for m in api {
        count += 1;
        if config_members.number(m.id()).is_some() {
            return Err(conflict(
                path,
                m.id(),
                MemberError::DuplicateId {
                    member: m.id().to_owned(),
                }
                .into(),
                &config_members,
            ));
        }
        if let Err(e) = check_interface_view(&m, &access) {
            return Err(conflict(path, m.id(), e, &config_members));
        }
        for p in m.prefixes() {
            claims.add(n + api_ids.len() as u32, &p);
        }
        api_ids.push(m.id());
    }
    if let Err(e) = check_count(count, config.datapath.max_members) {
        let first = api_ids.first().copied().unwrap_or_default();
        return Err(conflict(path, first, e, &config_members));
    }
    if let Some(o) = claims.first_overlap() {
        let id = |i: u32| match i.checked_sub(n) {
            Some(k) => api_ids[k as usize].to_owned(),
            None => config_members
                .get(i)
                .map(|m| m.id().to_owned())
                .unwrap_or_default(),
        };
        // The later one is the API member when the two differ in origin.
        let e = o.error(id);
        let api_member = match &e {
            MemberError::Overlap { member, .. } => member.clone(),
            _ => String::new(),
        };
        return Err(conflict(path, &api_member, e.into(), &config_members));
    }
    Ok(Checked { config_members })
}

/// The conflict between API member `api_member` (kept in the state file at
/// `path`) and the configuration.
fn conflict(
    path: &Path,
    api_member: &str,
    e: ConfigError,
    config_members: &MemberStore,
) -> StateError {
    let kept = format!(
        "member {api_member:?} (added through the provisioning API, kept in {})",
        path.display()
    );
    let (other, why) = match &e {
        ConfigError::Member(MemberError::DuplicateId { member }) => (
            Some(member.clone()),
            format!(
                "member {member:?} is declared in the configuration file, and {kept} has \
                 the same id"
            ),
        ),
        ConfigError::Member(MemberError::Overlap {
            prefix,
            other_member,
            other_prefix,
            ..
        }) => (
            Some(other_member.clone()),
            format!(
                "{kept} has prefix {prefix}, which overlaps {other_prefix} of member \
                 {other_member:?}{}",
                if config_members.number(other_member).is_some() {
                    " of the configuration file"
                } else {
                    ""
                }
            ),
        ),
        other => (None, format!("{kept}: {other}")),
    };
    StateError::Conflict {
        api_member: api_member.to_owned(),
        config_member: other,
        why,
    }
}

/// Writes `new` as the state file of revision `revision + 1`. When the file
/// was replaced but the directory could not be synced, `tables`' API members
/// are written back (best effort) so that a refused write does not come
/// back at restart.
fn save_whole<'a>(
    path: &Path,
    revision: u64,
    tables: &Tables,
    new: impl Iterator<Item = Entry<'a>>,
) -> Result<(), StateError> {
    write_atomically(path, revision + 1, new).map_err(|e| restore(path, revision, tables, e))
}

/// The error of a state file write; when the new file was put in place but
/// could not be made durable, the previous state (`tables`' API members,
/// revision `revision`) is written back first (best effort), so that a
/// refused write does not come back at restart.
fn restore(
    path: &Path,
    revision: u64,
    tables: &Tables,
    (e, renamed): (StateError, bool),
) -> StateError {
    if renamed {
        let _ = write_atomically(path, revision, api_members(tables).map(Entry::View));
    }
    e
}

/// A member of the state file: stored, or given.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    View(MemberView<'a>),
    Owned(&'a Member),
}

impl Serialize for Entry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Entry::View(v) => v.serialize(s),
            Entry::Owned(m) => m.serialize(s),
        }
    }
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

/// Drops `value` on a thread of its own: freeing a large member set takes
/// a while, and nobody waits for it. Then gives the freed memory back to
/// the system (`malloc_trim`): the heap of a million-member sync would
/// otherwise stay resident until the next one.
pub fn drop_later<T: Send + 'static>(value: T) {
    // When no thread can be started, the value is dropped here instead.
    let _ = std::thread::Builder::new()
        .name("collecte-free".into())
        .spawn(move || {
            drop(value);
            // SAFETY: malloc_trim only releases free memory of the heap.
            unsafe { libc::malloc_trim(0) };
        });
}

/// Gives the heap's free memory back to the system, on a thread of its
/// own (see [`drop_later`]): after a large change was applied and freed.
pub fn trim_later() {
    drop_later(());
}

/// The API members as saved.
#[derive(Debug, Default)]
pub struct State {
    pub revision: u64,
    /// The members, of origin `api`.
    pub members: MemberStore,
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
        members,
        journaled: 0,
    };
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
        let members = &mut state.members;
        match (e.put, e.delete) {
            (Some(m), None) => {
                m.validate_fields()
                    .map_err(|e| corrupt(i + 1, e.to_string()))?;
                let stored = match members.number(&m.id) {
                    Some(n) => members.set(n, m.as_in(), Origin::Api),
                    None => members.push(m.as_in(), Origin::Api).map(drop),
                };
                stored.map_err(|e| corrupt(i + 1, e.to_string()))?;
            }
            (None, Some(id)) => match members.number(&id) {
                Some(n) => {
                    members.remove(n);
                }
                None => {
                    return Err(corrupt(
                        i + 1,
                        format!("it deletes {id:?}, which is absent"),
                    ));
                }
            },
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

/// The head of a state file: its keys other than `members`.
#[derive(Default)]
struct Head {
    format: Option<String>,
    version: Option<u64>,
    revision: Option<u64>,
}

/// Reads the state file alone, in pieces: (revision, members).
fn read_file(path: &Path) -> Result<(u64, MemberStore), StateError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((0, MemberStore::new())),
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
    let head = std::cell::RefCell::new(Head::default());
    let expected = file.metadata().map_or(0, |m| m.len() as usize / 100);
    let mut reader = MembersReader::new(Origin::Api, expected, |key, raw| {
        let mut h = head.borrow_mut();
        let bad = |e: serde_json::Error| ReadError::Syntax(format!("{key}: {e}"));
        match key {
            "format" => h.format = Some(serde_json::from_slice(raw).map_err(bad)?),
            "version" => {
                let v: u64 = serde_json::from_slice(raw).map_err(bad)?;
                h.version = Some(v);
                if v != u64::from(VERSION) {
                    // Members of another version are not read.
                    return Err(ReadError::Syntax("another version".into()));
                }
            }
            "revision" => h.revision = Some(serde_json::from_slice(raw).map_err(bad)?),
            other => {
                return Err(ReadError::Field {
                    field: other.to_owned(),
                    message: format!(
                        "unknown field `{other}`, expected one of `format`, `version`, \
                         `revision`, `members`"
                    ),
                    member: None,
                });
            }
        }
        if h.format.as_deref().is_some_and(|f| f != FORMAT) {
            return Err(ReadError::Syntax(format!(
                "its \"format\" is not {FORMAT:?}"
            )));
        }
        Ok(())
    });
    let mut piece = vec![0u8; 1 << 20];
    let read = loop {
        let n = match file.read(&mut piece) {
            Ok(0) => break reader.finish(),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Err(e) = reader.feed(&piece[..n]) {
            break Err(e);
        }
    };
    let head = head.take();
    if let Some(found) = head.version
        && found != u64::from(VERSION)
    {
        return Err(StateError::Version {
            path: path.to_owned(),
            found,
        });
    }
    if let Some(f) = &head.format
        && f != FORMAT
    {
        return Err(corrupt(format!("its \"format\" is not {FORMAT:?}")));
    }
    let members = read.map_err(|e| match e {
        ReadError::Invalid(MemberError::DuplicateId { member }) => {
            corrupt(format!("member {member:?} appears twice"))
        }
        other => corrupt(other.to_string()),
    })?;
    if head.format.is_none() {
        return Err(corrupt(format!("its \"format\" is not {FORMAT:?}")));
    }
    let Some(revision) = head.revision else {
        return Err(corrupt("it has no \"revision\"".into()));
    };
    if head.version.is_none() {
        return Err(corrupt("it has no \"version\"".into()));
    }
    Ok((revision, members))
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

/// Creates the directory of the state file `path` if needed (mode 0700),
/// and returns it.
fn create_dir(path: &Path) -> Result<&Path, StateError> {
    let dir = dir_of(path);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::Write {
            path: path.to_owned(),
            source,
        })?;
    Ok(dir)
}

/// Creates the state's directory if needed (mode 0700) and checks that a
/// file can be created in it.
fn check_writable(path: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    create_dir(path)?;
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
    members: impl Iterator<Item = Entry<'a>>,
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
        for (i, m) in members.enumerate() {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut w, &m)?;
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
    fn start(cfg: &Config) -> Result<(Provisioning, Tables), StateError> {
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
        let (changed, out) = p
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
        let (changed, _) = p.write(staged_sync(&path, list), &cfg, &mut t).unwrap();
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
        let (changed, _) = p.write(staged_sync(&path, list), &cfg, &mut t).unwrap();
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
}
