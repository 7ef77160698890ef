//! The drain state, kept beside the state file so that it survives a
//! restart: `<state>.drain` (e.g. `/var/lib/collecte/state.json.drain`),
//! `{"drained":true}` or `{"drained":false}`, written atomically (a
//! temporary file, fsync, rename, fsync of the directory). No file: not
//! drained.
use std::{
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Why the drain state cannot be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The file exists and cannot be read or parsed: never taken for "not
    /// drained".
    #[error(
        "drain state {}: {why}; fix or remove it (removing it undrains)",
        path.display()
    )]
    Unreadable { path: PathBuf, why: String },
    /// The new state could not be saved: it did not change.
    #[error("cannot save the drain state to {}: {source}; it did not change", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nothing is exported, so there is nothing to drain.
    #[error(
        "no member route is exported: the configuration has no [routes] section, so there is \
         nothing to drain; add [routes] table = N and reload"
    )]
    NotExported,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainFile {
    drained: bool,
}

/// The drain state's file for the state file `state`.
pub fn drain_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".drain");
    state.with_file_name(name)
}

/// Reads the drain state (no file: not drained).
pub fn read_drained(path: &Path) -> Result<bool, DrainError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(DrainError::Unreadable {
                path: path.to_owned(),
                why: e.to_string(),
            });
        }
    };
    serde_json::from_slice::<DrainFile>(&text)
        .map(|f| f.drained)
        .map_err(|e| DrainError::Unreadable {
            path: path.to_owned(),
            why: format!("expected {{\"drained\": true|false}}: {e}"),
        })
}

/// Saves the drain state atomically.
pub fn write_drained(path: &Path, drained: bool) -> Result<(), DrainError> {
    let err = |source| DrainError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut text = serde_json::to_vec(&DrainFile { drained }).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_and_a_bad_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("collecte-drain-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = drain_path(&dir.join("state").join("state.json"));
        assert_eq!(path, dir.join("state").join("state.json.drain"));
        assert!(!read_drained(&path).unwrap(), "no file: not drained");
        write_drained(&path, true).unwrap();
        assert!(read_drained(&path).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"drained\":true}\n");
        write_drained(&path, false).unwrap();
        assert!(!read_drained(&path).unwrap());
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("state.json.drain")]
        );
        for bad in ["", "{\"drained\":1}", "{\"drained\":true,\"x\":1}", "yes"] {
            fs::write(&path, bad).unwrap();
            let e = read_drained(&path).unwrap_err().to_string();
            assert!(
                e.contains("state.json.drain") && e.contains("remove it"),
                "{e}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
