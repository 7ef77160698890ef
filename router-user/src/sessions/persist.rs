//! `sessions.json`: the established sessions, beside the member state
//! (in the directory of `[datapath] state`), written whole and atomically
//! (a temporary file, fsync, rename, fsync of the directory) at every Up
//! and Down.
//!
//! ```json
//! {"format":"collecte-sessions","version":1,"sessions":[RECORD, ...]}
//! ```
//!
//! A missing file is no session. A file that cannot be read or parsed is
//! logged and taken as no session by the daemon: the sessions it named are
//! then removed from the datapath, and their clients dial again (unlike the
//! API's members, nothing acknowledged to an operator is lost).
use std::{
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// `format` of the file.
pub const FORMAT: &str = "collecte-sessions";
/// `version` this collecte reads and writes.
pub const VERSION: u32 = 1;
/// The file's name, in the state file's directory.
pub const FILE_NAME: &str = "sessions.json";

/// Why `sessions.json` cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read the PPPoE sessions file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the PPPoE sessions file {} is damaged: {why}; its sessions are ended (their clients dial again)",
        path.display()
    )]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot write the PPPoE sessions file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize)]
struct FileOut<'a, R> {
    format: &'static str,
    version: u32,
    sessions: Vec<&'a R>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn<R> {
    format: String,
    version: u32,
    sessions: Vec<R>,
}

/// Where the sessions are kept, beside the state file `state`.
pub fn path_beside(state: &Path) -> PathBuf {
    match state.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(FILE_NAME),
        _ => PathBuf::from(FILE_NAME),
    }
}

/// The sessions (records of `R`, the [`Record`](super::Record)s) of the
/// file at `path`; none when it does not exist.
pub fn load<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let corrupt = |why: String| PersistError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let file: FileIn<R> = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.format != FORMAT {
        return Err(corrupt(format!(
            "format is {:?}, not {FORMAT:?}",
            file.format
        )));
    }
    if file.version != VERSION {
        return Err(corrupt(format!(
            "version {} (this collecte reads {VERSION})",
            file.version
        )));
    }
    Ok(file.sessions)
}

/// Writes `records` to `path`, atomically.
pub fn save<'a, R: Serialize + 'a>(
    path: &Path,
    records: impl Iterator<Item = &'a R>,
) -> Result<(), PersistError> {
    let err = |source| PersistError::Write {
        path: path.to_owned(),
        source,
    };
    let out = FileOut {
        format: FORMAT,
        version: VERSION,
        sessions: records.collect(),
    };
    let mut bytes = serde_json::to_vec(&out).expect("a session record serializes");
    bytes.push(b'\n');
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}
