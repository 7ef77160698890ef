//! The file that records the offloads collecte turned off
//! ([`super::offload::Record`]), so that `collecte stop --detach` — a
//! process of its own, after the daemon — can turn them back on.
//!
//! It lives beside the state file, as `<state>.offloads` (by default
//! `/var/lib/collecte/state.json.offloads`): interface settings are not
//! BPF objects, and bpffs only holds those. Interfaces are named per
//! network namespace, so entries are kept per namespace (its nsfs inode
//! number, what `ls -Li /proc/self/ns/net` shows): daemons of different
//! namespaces sharing a state directory keep apart. Every change is a
//! read, change and atomic replace (a temporary file, fsynced, renamed,
//! the directory fsynced) under an exclusive `flock` of the directory, so
//! that concurrent daemons lose nothing; the file goes when nothing is
//! recorded.
use std::{
    fs,
    io::{self, Write as _},
    os::{fd::AsRawFd, unix::fs::DirBuilderExt as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

use super::offload::{RECORD_FORMAT, RECORD_VERSION, Record};

/// The record file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is not a record of collecte's offload changes: {source}; move it away (the offloads it names then stay as they are)"
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} is a record of format {format:?} version {version}; this collecte reads {RECORD_FORMAT:?} version {RECORD_VERSION}"
    )]
    Version {
        path: PathBuf,
        format: String,
        version: u32,
    },
    #[error("cannot tell this process's network namespace: {0}")]
    Namespace(#[source] io::Error),
}

/// Where the record of a daemon whose state file is `state` lives.
pub fn path_for(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".offloads");
    state.with_file_name(name)
}

/// The calling thread's network namespace, as the record names it.
pub fn namespace_id() -> Result<String, RecordError> {
    let m = fs::metadata("/proc/thread-self/ns/net").map_err(RecordError::Namespace)?;
    Ok(m.ino().to_string())
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the record at `path` (empty when there is none).
pub fn read(path: &Path) -> Result<Record, RecordError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Record::default()),
        Err(e) => return Err(io_error("read", path)(e)),
    };
    let r: Record = serde_json::from_str(&text).map_err(|source| RecordError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if r.format != RECORD_FORMAT || r.version != RECORD_VERSION {
        return Err(RecordError::Version {
            path: path.to_path_buf(),
            format: r.format,
            version: r.version,
        });
    }
    Ok(r)
}

/// Changes the record at `path` with `f`, under the directory's lock, and
/// saves it if `f` changed it. The directory is created (mode 0700) if
/// needed.
pub fn update<T>(path: &Path, f: impl FnOnce(&mut Record) -> T) -> Result<T, RecordError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_error("create the directory", &dir))?;
    let lock = fs::File::open(&dir).map_err(io_error("open", &dir))?;
    // SAFETY: flock on a descriptor owned by `lock`; released when it closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io_error("lock", &dir)(io::Error::last_os_error()));
    }
    let mut record = read(path)?;
    let before = record.clone();
    let out = f(&mut record);
    if record != before {
        if record.is_empty() {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("remove", path)(e)),
            }
        } else {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(path.file_name().unwrap_or_default());
            tmp_name.push(".tmp");
            let tmp = dir.join(tmp_name);
            let text = serde_json::to_vec_pretty(&record).expect("a record serializes");
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(io_error("create", &tmp))?;
            file.write_all(&text)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(io_error("write", &tmp))?;
            fs::rename(&tmp, path).map_err(io_error("replace", path))?;
        }
        lock.sync_all().map_err(io_error("sync", &dir))?;
    }
    drop(lock);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_sits_beside_the_state_file() {
        assert_eq!(
            path_for(Path::new("/var/lib/collecte/state.json")),
            Path::new("/var/lib/collecte/state.json.offloads")
        );
    }

    #[test]
    fn updates_are_saved_and_an_empty_record_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("collecte-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = path_for(&dir.join("sub/state.json"));
        assert_eq!(read(&path).unwrap(), Record::default());
        update(&path, |r| r.note("1", "acc0", "rx-vlan-hw-parse", true)).unwrap();
        let mode = fs::metadata(dir.join("sub")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(read(&path).unwrap().namespaces["1"]["acc0"]["rx-vlan-hw-parse"]);
        let taken = update(&path, |r| r.take("1")).unwrap();
        assert_eq!(taken["acc0"].len(), 1);
        assert!(!path.exists(), "an empty record is removed");
        fs::write(&path, "not json").unwrap();
        let e = update(&path, |r| r.take("1")).unwrap_err();
        assert!(e.to_string().contains("is not a record"), "{e}");
        fs::write(&path, r#"{"format":"collecte-offloads","version":9}"#).unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_namespace_is_a_number() {
        assert!(namespace_id().unwrap().parse::<u64>().is_ok());
    }
}
