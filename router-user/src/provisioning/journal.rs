//! The journal beside the state file, `<state>.journal`: one line per
//! single write (`PUT` or `DELETE`), appended and fdatasynced, replayed
//! over the file at start.
use std::{
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use router_core::member::{Member, Origin};
use serde::{Deserialize, Serialize};

use super::file::{State, StateError, dir_of};

/// A line of the journal: a member created or replaced (`put`), or deleted.
#[derive(Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(
        serialize = "M: Serialize, S: Serialize",
        deserialize = "M: Deserialize<'de>, S: Deserialize<'de>"
    )
)]
pub(super) struct JournalEntry<M, S> {
    pub(super) revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) put: Option<M>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) delete: Option<S>,
}

/// The journal of the state file at `path`: `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.journal"))
}

/// A journal append that failed.
#[derive(Debug)]
pub(super) struct AppendFailed {
    pub(super) error: StateError,
    /// The line could not be taken back: the journal may end with part of
    /// it, and must be folded into the state file at the next write.
    pub(super) torn: bool,
}

/// Appends `bytes` to the journal (opened for this write alone, so that
/// a journal moved or replaced meanwhile is never written blind), then
/// fdatasync. On error the journal is as it was, unless
/// [`AppendFailed::torn`].
pub(super) fn append(state: &Path, bytes: &[u8]) -> Result<(), AppendFailed> {
    let path = journal_path(state);
    let err = |source| AppendFailed {
        error: StateError::Write {
            path: path.clone(),
            source,
        },
        torn: false,
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
                .create(dir_of(state))
                .map_err(err)?;
            let f = open(true).map_err(err)?;
            // The journal's name must survive a crash too.
            File::open(dir_of(state))
                .and_then(|d| d.sync_all())
                .map_err(err)?;
            f
        }
        Err(e) => return Err(err(e)),
    };
    let len = file.metadata().map_err(err)?.len();
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_data()) {
        // Take the line back: a later append must not follow a torn one.
        let mut failed = err(e);
        failed.torn = file.set_len(len).and_then(|()| file.sync_data()).is_err();
        return Err(failed);
    }
    Ok(())
}

/// Replays the journal of the state file at `path` onto `state` (read
/// from the file): its lines above the file's revision, which must follow
/// each other. A line cut short by a crash (the write it saved was never
/// acknowledged) is dropped, from the journal too, so that the next line
/// does not follow it.
pub(super) fn replay(path: &Path, state: &mut State) -> Result<(), StateError> {
    let journal = journal_path(path);
    let bytes = match fs::read(&journal) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
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
    Ok(())
}
