//! The member set as the provisioning API sees it, and the persistent state
//! that keeps the members added through the API.
//!
//! # One set, two origins
//! Members from the configuration file (origin `config`) and members from
//! the API (origin `api`) form one set, validated together with the rules of
//! the configuration (unique ids, disjoint prefixes, known access interfaces,
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
//! `[datapath] state` (default
//! [`DEFAULT_STATE_PATH`](router_core::config::DEFAULT_STATE_PATH)) holds
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
//! [`Changes`](router_core::changes::Changes) to the datapath → the API answers.
//! When any step before the tables change fails, nothing has changed.
//!
//! # Layout
//! - this module: the write flow ([`Provisioning`], [`Op`], [`Outcome`],
//!   [`WriteError`]);
//! - `file`: the state file, read in pieces and written atomically, and a
//!   sync's [`Staged`] file;
//! - `journal`: the journal of single writes;
//! - `conflicts`: the configuration's members against the API's.
//!
//! Nothing here touches the datapath: the caller applies the tables'
//! changes.
use std::{
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
};

use router_core::{
    config::{Claims, Config, ConfigError, check_count},
    member::{Member, Origin},
    store::{MemberStore, MemberView},
    tables::{Part, ReplaceCounts, Tables, TablesError},
};
use serde::{Deserialize, Serialize};

use crate::alloc;

mod conflicts;
mod file;
mod journal;

#[cfg(test)]
mod tests;

pub use conflicts::{Checked, ConflictError, check_config};
pub use file::{Entry, FORMAT, Staged, State, StateError, VERSION, WriteFailed, write_atomically};
pub use journal::journal_path;

/// Why an API write was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The member belongs to the configuration file.
    #[error(
        "member {0:?} is managed by the configuration file; change it there and reload \
         (SIGHUP), the API may not create, replace or delete it"
    )]
    ConfigManaged(String),
    /// The member is a PPPoE session's.
    #[error(
        "member {0:?} is a PPPoE session's member (its User-Name); it comes and goes with the \
         session, the API may not create, replace or delete it"
    )]
    SessionManaged(String),
    /// No member has this id.
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
    /// [`MembersReader`](router_core::store::json::MembersReader), fields
    /// checked); `staged`, when given, holds
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

/// What a write did, and whether it changed the tables (a write that
/// changes nothing saves nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub changed: bool,
    pub outcome: Outcome,
}

impl Written {
    fn changed(outcome: Outcome) -> Written {
        Written {
            changed: true,
            outcome,
        }
    }

    fn unchanged(outcome: Outcome) -> Written {
        Written {
            changed: false,
            outcome,
        }
    }
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
            file::check_writable(&path)?;
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
    ) -> Result<Written, WriteError> {
        match op {
            Op::Put(m) => self.put(m, tables),
            Op::Delete(id) => self.delete(&id, tables),
            Op::Sync { members, staged } => self.sync(members, staged, config, tables),
        }
    }

    fn put(&mut self, m: Member, tables: &mut Tables) -> Result<Written, WriteError> {
        m.validate_fields().map_err(ConfigError::from)?;
        let old = tables.member(&m.id);
        if let Some((slot, cur)) = old {
            match cur.origin() {
                Origin::Config => return Err(WriteError::ConfigManaged(m.id)),
                Origin::Session => return Err(WriteError::SessionManaged(m.id)),
                Origin::Api => {}
            }
            if cur.same_as(m.as_in()) {
                return Ok(Written::unchanged(Outcome::Unchanged { slot }));
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
            alloc::drop_later(old);
        }
        let slot = tables.slot(&m.id).unwrap_or_default();
        let outcome = if existed {
            Outcome::Replaced { slot }
        } else {
            Outcome::Created { slot }
        };
        Ok(Written::changed(outcome))
    }

    fn delete(&mut self, id: &str, tables: &mut Tables) -> Result<Written, WriteError> {
        match tables.member(id) {
            Some((_, m)) if m.origin() == Origin::Config => {
                return Err(WriteError::ConfigManaged(id.to_owned()));
            }
            Some((_, m)) if m.origin() == Origin::Session => {
                return Err(WriteError::SessionManaged(id.to_owned()));
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
        Ok(Written::changed(Outcome::Deleted))
    }

    fn sync(
        &mut self,
        batch: MemberStore,
        staged: Option<Staged>,
        config: &Config,
        tables: &mut Tables,
    ) -> Result<Written, WriteError> {
        let t = std::time::Instant::now();
        let lap = |what: &str| {
            let (rss_kib, peak_kib) = alloc::resident_kib();
            tracing::debug!(
                elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
                rss_kib,
                peak_kib,
                "full sync: {what}"
            )
        };
        // The configuration's members and the PPPoE sessions' stay: the
        // batch is checked against them (its own members were checked one
        // by one as they were read, and its ids are unique).
        let access = config.access_interfaces();
        let config_members = || tables.members().filter(|(_, m)| m.origin() != Origin::Api);
        let config_count =
            tables.store().count(Origin::Config) + tables.store().count(Origin::Session);
        check_count(config_count + batch.len(), config.datapath.max_members)?;
        let mut claims = Claims::with_capacity(config_count + batch.len());
        // Numbers: the configuration's members first (by slot), then the
        // batch's, so that an overlap names the batch's member first.
        let mut config_slots = Vec::with_capacity(config_count);
        for (slot, m) in config_members() {
            if batch.number(m.id()).is_some() {
                let id = m.id().to_owned();
                return Err(match m.origin() {
                    Origin::Session => WriteError::SessionManaged(id),
                    _ => WriteError::ConfigManaged(id),
                });
            }
            for p in m.prefixes() {
                claims.add(config_slots.len() as u32, &p);
            }
            config_slots.push(slot);
        }
        let base = config_slots.len() as u32;
        for (n, m) in batch.iter() {
            conflicts::check_interface_view(&m, &access)?;
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
            alloc::drop_later(batch);
            return Ok(Written::unchanged(Outcome::Synced(counts)));
        }
        match staged {
            Some(staged) => {
                let revision = self.revision;
                staged
                    .commit(&self.path, revision + 1)
                    .map_err(|failed| restore(&self.path, revision, tables, failed))
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
        alloc::drop_later(batch);
        if let Some(old) = replaced? {
            alloc::drop_later(old);
        }
        Ok(Written::changed(Outcome::Synced(counts)))
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
        let journal = journal::journal_path(&self.path);
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
        let line = journal::JournalEntry {
            revision: self.revision + 1,
            put: m,
            delete: m.is_none().then_some(id),
        };
        let mut bytes = serde_json::to_vec(&line).expect("a member serializes");
        bytes.push(b'\n');
        if let Err(failed) = journal::append(&self.path, &bytes) {
            if failed.torn {
                self.journaled = usize::MAX;
            }
            return Err(failed.error);
        }
        self.journaled += 1;
        Ok(())
    }
}

/// The write error of a tables error: a broken rule is invalid input.
fn tables_error(e: TablesError) -> WriteError {
    match e {
        TablesError::Invalid(e) => WriteError::Invalid(e),
        other => WriteError::Tables(other),
    }
}

/// The API members of `tables`.
fn api_members(tables: &Tables) -> impl Iterator<Item = MemberView<'_>> + '_ {
    tables
        .members()
        .map(|(_, m)| m)
        .filter(|m| m.origin() == Origin::Api)
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
    write_atomically(path, revision + 1, new)
        .map_err(|failed| restore(path, revision, tables, failed))
}

/// The error of a state file write; when the new file was put in place but
/// could not be made durable, the previous state (`tables`' API members,
/// revision `revision`) is written back first (best effort), so that a
/// refused write does not come back at restart.
fn restore(path: &Path, revision: u64, tables: &Tables, failed: WriteFailed) -> StateError {
    if failed.renamed {
        let _ = write_atomically(path, revision, api_members(tables).map(Entry::View));
    }
    failed.error
}

/// One member's change, as the journal saves it.
enum Change<'a> {
    Put(&'a Member),
    Delete(&'a str),
}

/// Changes the journal may hold before it is folded into the state file,
/// at the least.
pub const FOLD_AFTER: usize = 4096;

/// Reads a state file and replays its journal. A missing file is revision
/// 0 with no member. A journal line cut short by a crash (the write it
/// saved was never acknowledged) is dropped, from the file too, so that the
/// next line does not follow it.
pub fn read(path: &Path) -> Result<State, StateError> {
    let mut state = file::read_file(path)?;
    journal::replay(path, &mut state)?;
    Ok(state)
}
