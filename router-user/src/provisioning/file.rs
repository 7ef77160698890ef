//! The state file: its format, reading it in pieces, writing it whole and
//! atomically (or completing a sync's [`Staged`] file), and why it cannot
//! be used ([`StateError`]).
use std::{
    fs::{self, File, OpenOptions},
    io::{BufWriter, ErrorKind, Read as _, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use router_core::{
    member::{Member, MemberError, Origin},
    store::{
        MemberStore, MemberView,
        json::{MembersReader, ReadError},
    },
};
use serde::Serialize;

/// `format` of the state file.
pub const FORMAT: &str = "collecte-state";
/// `version` of the state file this collecte reads and writes.
pub const VERSION: u32 = 1;

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file or its journal cannot be read.
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
    /// The state file or its journal does not parse, or breaks a rule.
    #[error(
        "the state file {} is damaged: {why}; it holds the members added through the API, so \
         collecte does not start without it: repair or restore it (moving it away drops those \
         members)",
        path.display()
    )]
    Corrupt { path: PathBuf, why: String },
    /// A state file of another format version.
    #[error(
        "the state file {} has format version {found}; this collecte reads version {VERSION}: \
         run the collecte that wrote it, or convert the file",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
    /// The state file or its journal cannot be written.
    #[error("cannot write the state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A state file write that failed: the error, and whether the new file
/// had already replaced the old one (it could not be made durable).
#[derive(Debug)]
pub struct WriteFailed {
    pub error: StateError,
    pub renamed: bool,
}

impl WriteFailed {
    fn before_rename(error: StateError) -> WriteFailed {
        WriteFailed {
            error,
            renamed: false,
        }
    }
}

/// A full sync's member list written to the next state file while the
/// request body is still being read (the text of the list as sent, from
/// [`MembersReader::tee`]), so that saving the sync costs only its fsync.
/// The file has no name (`O_TMPFILE`) until
/// [`Provisioning`](super::Provisioning) completes it
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
    /// fsync of the directory.
    pub(super) fn commit(mut self, path: &Path, revision: u64) -> Result<(), WriteFailed> {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::ffi::OsStrExt as _;
        let err = |source| StateError::Write {
            path: path.to_owned(),
            source,
        };
        self.write(format!(",\"revision\":{revision}}}\n").as_bytes());
        if let Some(e) = self.error.take() {
            return Err(WriteFailed::before_rename(err(e)));
        }
        let file = self
            .file
            .into_inner()
            .map_err(|e| WriteFailed::before_rename(err(e.into_error())))?;
        file.sync_all()
            .map_err(|e| WriteFailed::before_rename(err(e)))?;
        // The temporary name of whole writes: a leftover of a crash goes.
        let tmp = tmp_path(path);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(WriteFailed::before_rename(err(e))),
        }
        let from =
            std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
        let to = std::ffi::CString::new(tmp.as_os_str().as_bytes()).map_err(|e| {
            WriteFailed::before_rename(err(std::io::Error::new(ErrorKind::InvalidInput, e)))
        })?;
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
            return Err(WriteFailed::before_rename(err(
                std::io::Error::last_os_error(),
            )));
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(WriteFailed::before_rename(err(e)));
        }
        File::open(dir_of(path))
            .and_then(|d| d.sync_all())
            .map_err(|e| WriteFailed {
                error: err(e),
                renamed: true,
            })
    }
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

/// The API members as saved.
#[derive(Debug, Default)]
pub struct State {
    pub revision: u64,
    /// The members, of origin `api`.
    pub members: MemberStore,
    /// Changes replayed from the journal.
    pub journaled: usize,
}

/// The head of a state file: its keys other than `members`.
#[derive(Default)]
struct Head {
    format: Option<String>,
    version: Option<u64>,
    revision: Option<u64>,
}

/// Reads the state file alone, in pieces (its journal is not replayed).
pub(super) fn read_file(path: &Path) -> Result<State, StateError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(State::default()),
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
    Ok(State {
        revision,
        members,
        journaled: 0,
    })
}

pub(super) fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

pub(super) fn dir_of(path: &Path) -> &Path {
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
pub(super) fn check_writable(path: &Path) -> Result<(), StateError> {
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
/// directory, fsync, rename over the file, fsync of the directory.
pub fn write_atomically<'a>(
    path: &Path,
    revision: u64,
    members: impl Iterator<Item = Entry<'a>>,
) -> Result<(), WriteFailed> {
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
        return Err(WriteFailed::before_rename(err(e)));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(WriteFailed::before_rename(err(e)));
    }
    File::open(dir_of(path))
        .and_then(|d| d.sync_all())
        .map_err(|e| WriteFailed {
            error: err(e),
            renamed: true,
        })
}
