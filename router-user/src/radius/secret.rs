//! The shared secret: reading `[radius] secret_file`, refused if group or
//! others can access it, like the API token file ([`crate::api::auth`]).
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Why the secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("[radius] secret_file {}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Group or others can access the file.
    #[error(
        "[radius] secret_file {}: group or others can access it (mode {mode:04o}), and it holds \
         the RADIUS shared secret; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    /// The file holds no secret.
    #[error(
        "[radius] secret_file {}: it is empty; put the secret shared with the RADIUS servers \
         in it (one line)",
        path.display()
    )]
    Empty { path: PathBuf },
}

/// Reads the shared secret: the file's content without its trailing line
/// break. Refused when group or others can access the file, or when it is
/// empty.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    let read_err = |source| SecretError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Mode {
            path: path.to_owned(),
            mode,
        });
    }
    let mut raw = std::fs::read(path).map_err(read_err)?;
    while raw.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
        raw.pop();
    }
    if raw.is_empty() {
        return Err(SecretError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn secret_file_rules() {
        let dir = std::env::temp_dir().join(format!("collecte-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("radius.secret");
        let set = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };

        set("testing123\n", 0o600);
        assert_eq!(read_secret(&path).unwrap(), b"testing123");
        set("testing123", 0o400);
        assert_eq!(read_secret(&path).unwrap(), b"testing123");

        set("testing123\n", 0o640);
        let err = read_secret(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::Mode { mode: 0o640, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");

        set("\n", 0o600);
        let err = read_secret(&path).unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains("secret_file"), "{err}");

        let err = read_secret(&dir.join("absent")).unwrap_err();
        assert!(matches!(err, SecretError::Read { .. }), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
