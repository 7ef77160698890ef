//! Reading a configuration: the whole file at once ([`Config::from_file`]),
//! or, for a large one, its `[[member]]` tables a batch at a time straight
//! into a [`MemberStore`] ([`Config::read`]).
use std::path::Path;

use serde::Deserialize;

use super::claims::Claims;
use super::error::ConfigError;
use super::schema::Config;
use super::validate::check_count;
use crate::member::{Member, Origin};
use crate::store::MemberStore;

/// Reading.
impl Config {
    /// Parses and validates a configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Toml {
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file. Errors name the file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|error| ConfigError::InFile {
            path: path.to_owned(),
            error: Box::new(error),
        })
    }

    /// [`Config::from_file`] for a large file: the configuration without
    /// its members, and its members kept compactly ([`MemberStore`], origin
    /// `config`). The `[[member]]` tables are parsed a batch at a time while
    /// the file is read, so that a million of them never exist as one TOML
    /// document or as `Member`s. Any error (or any construct this reading
    /// does not follow, such as a multi-line string) falls back to
    /// [`Config::from_file`], whose errors are therefore the ones reported.
    pub fn read(path: &Path) -> Result<(Config, MemberStore), ConfigError> {
        match read_in_batches(path) {
            Ok(Some(split)) => Ok(split),
            Ok(None) | Err(_) => {
                let mut config = Config::from_file(path)?;
                let members = std::mem::take(&mut config.members);
                let mut store = MemberStore::with_capacity(members.len());
                for m in &members {
                    store
                        .push(m.as_in(), Origin::Config)
                        .map_err(|e| ConfigError::InFile {
                            path: path.to_owned(),
                            error: Box::new(ConfigError::Toml {
                                message: e.to_string(),
                            }),
                        })?;
                }
                Ok((config, store))
            }
        }
    }
}

/// [`Config::read`]'s reading: `None` when the file needs the whole-file
/// reading (a construct not followed here, or an error anywhere: the
/// whole-file reading then reports it the usual way).
pub(super) fn read_in_batches(path: &Path) -> std::io::Result<Option<(Config, MemberStore)>> {
    use std::io::BufRead as _;
    /// `[[member]]` tables parsed at once.
    const BATCH: usize = 1024;
    #[derive(Deserialize)]
    struct Batch {
        member: Vec<Member>,
    }
    let reader = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut head = String::new();
    let mut batch = String::new();
    let mut in_batch = 0usize;
    let mut in_member = false;
    let mut store = MemberStore::new();
    let flush = |batch: &mut String, in_batch: &mut usize, store: &mut MemberStore| -> bool {
        if *in_batch == 0 {
            return true;
        }
        let parsed: Result<Batch, _> = toml::from_str(batch);
        batch.clear();
        *in_batch = 0;
        let Ok(parsed) = parsed else {
            return false;
        };
        parsed
            .member
            .iter()
            .all(|m| m.validate_fields().is_ok() && store.push(m.as_in(), Origin::Config).is_ok())
    };
    for line in reader.lines() {
        let line = line?;
        if line.contains("\"\"\"") || line.contains("'''") {
            return Ok(None);
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            // A table header: [[member]] starts a member table, anything else
            // ends it. (A nested array spilling over lines would break the
            // TOML of its table, which falls back.)
            let bare: String = trimmed
                .split('#')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            in_member = bare == "[[member]]";
            if in_member {
                if in_batch == BATCH && !flush(&mut batch, &mut in_batch, &mut store) {
                    return Ok(None);
                }
                in_batch += 1;
                batch.push_str("[[member]]\n");
                continue;
            }
        }
        let to = if in_member { &mut batch } else { &mut head };
        to.push_str(&line);
        to.push('\n');
    }
    if !flush(&mut batch, &mut in_batch, &mut store) {
        return Ok(None);
    }
    let Ok(config) = toml::from_str::<Config>(&head) else {
        return Ok(None);
    };
    if !config.members.is_empty() || config.validate().is_err() {
        return Ok(None);
    }
    if check_count(store.len(), config.datapath.max_members).is_err() {
        return Ok(None);
    }
    let access = config.access_interfaces();
    let mut claims = Claims::with_capacity(store.len());
    for (n, m) in store.iter() {
        if !access.contains(m.interface()) {
            return Ok(None);
        }
        for p in m.prefixes() {
            claims.add(n, &p);
        }
    }
    if claims.first_overlap().is_some() {
        return Ok(None);
    }
    Ok(Some((config, store)))
}
