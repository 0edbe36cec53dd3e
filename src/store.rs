//! The state store: one JSON file per zone under `state/zones/<uuid>.json`,
//! and the lock that keeps a second agent off the same state directory.
//!
//! A zone's state is the zone as last accepted (the API's own JSON), the
//! last event `seq` applied to it, and what was deployed from it: the
//! serial, the hash of the rendered content without the serial, the domain
//! its file is named after, and whether `named` still has to load it. Every
//! write is atomic and durable ([`crate::fsutil`]).

use crate::fsutil;
use crate::model::zone::Zone;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The version of the state file format; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// What the agent knows about one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneState {
    pub format_version: u32,
    /// The zone as last accepted.
    pub zone: Zone,
    /// The highest event `seq` applied to this zone.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// Ids of the latest events applied, for de-duplication.
    #[serde(default)]
    pub recent_ids: Vec<String>,
    /// What is installed for `named`, if anything.
    #[serde(default)]
    pub deployed: Option<Deployed>,
}

/// The installed file of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// The A-label domain; the file is `zones/<domain>.zone`.
    pub domain: String,
    pub serial: u32,
    /// SHA-256 of the rendered file with serial 0.
    pub content_hash: String,
    /// The rendering configuration the file was made with
    /// ([`crate::render::config_hash`]): when it and the zone are
    /// unchanged, the file is too, without validating or rendering again.
    #[serde(default)]
    pub config_hash: String,
    /// The file is installed but `named` has not confirmed loading it.
    /// Kept in `state/pending.json` (one small file for the whole set)
    /// rather than in every zone's file, so confirming a batch of 10,000
    /// zones writes one file, not 10,000.
    #[serde(default, skip_serializing)]
    pub pending_reload: bool,
}

/// What is kept of a deleted zone, so a late replay of its events cannot
/// bring it back: `state/tombstones/<uuid>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub format_version: u32,
    pub domain: String,
    #[serde(default)]
    pub last_seq: Option<u64>,
    #[serde(default)]
    pub recent_ids: Vec<String>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to access state file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {path} is not valid: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "another zoneagent holds the lock on {path}; only one instance may use a state directory"
    )]
    Locked { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The state directory, locked for this process.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// `None` for a read-only view ([`Store::open_read_only`]).
    lock: Option<Flock<File>>,
}

impl Store {
    /// Opens (creating if needed) the state directory and takes its lock
    /// without waiting: a second instance fails at once.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let zones = dir.join("zones");
        fsutil::ensure_dir(&zones).map_err(io_err(&zones))?;
        let lock_path = dir.join("lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                StoreError::Locked {
                    path: lock_path.clone(),
                }
            } else {
                StoreError::Io {
                    path: lock_path.clone(),
                    source: errno.into(),
                }
            }
        })?;
        Ok(Store {
            dir: dir.to_owned(),
            lock: Some(lock),
        })
    }

    /// A view for reading only (`status`), without the lock, so it works
    /// while the daemon runs. Every file it reads is replaced atomically,
    /// so each is whole, old or new.
    pub fn open_read_only(dir: &Path) -> Store {
        Store {
            dir: dir.to_owned(),
            lock: None,
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn zone_path(&self, uuid: &str) -> PathBuf {
        self.dir.join("zones").join(format!("{uuid}.json"))
    }

    /// Loads every zone's state, keyed by uuid.
    pub fn load_all(&self) -> Result<BTreeMap<String, ZoneState>, StoreError> {
        let dir = self.dir.join("zones");
        let mut files = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            // Nothing deployed yet (a read-only view does not create it).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            // Temporary files of an interrupted write are left over from a
            // crash: the rename never happened, so they are not state.
            if name.starts_with('.') {
                if self.lock.is_some() {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            if let Some(uuid) = name.strip_suffix(".json") {
                files.push((uuid.to_owned(), path.clone()));
            }
        }
        // Reading and parsing 10,000 files is most of a no-op rebuild: use
        // every core.
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let chunk = files.len().div_ceil(threads).max(1);
        let parts: Vec<Result<Vec<(String, ZoneState)>, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|(uuid, path)| Ok((uuid.clone(), read_state(path)?)))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut out = BTreeMap::new();
        for part in parts {
            out.extend(part?);
        }
        Ok(out)
    }

    /// Writes one zone's state durably.
    pub fn save(&self, uuid: &str, state: &ZoneState) -> Result<(), StoreError> {
        self.save_batch(&[(uuid, state)])
    }

    /// Writes many zones' states durably and atomically each, with one
    /// flush for all ([`fsutil::write_atomic_batch`]).
    pub fn save_batch(&self, states: &[(&str, &ZoneState)]) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let mut files = Vec::with_capacity(states.len());
        for (uuid, state) in states {
            let path = self.zone_path(uuid);
            let bytes = serde_json::to_vec(state).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            files.push((path, bytes));
        }
        fsutil::write_atomic_batch(&files).map_err(|(path, source)| StoreError::Io { path, source })
    }

    /// Removes one zone's state durably.
    pub fn remove(&self, uuid: &str) -> Result<(), StoreError> {
        let path = self.zone_path(uuid);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        self.sync()
    }

    /// Writes a deleted zone's tombstone durably.
    pub fn save_tombstone(&self, uuid: &str, tombstone: &Tombstone) -> Result<(), StoreError> {
        let dir = self.dir.join("tombstones");
        fsutil::ensure_dir(&dir).map_err(io_err(&dir))?;
        let path = dir.join(format!("{uuid}.json"));
        let bytes = serde_json::to_vec(tombstone).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Loads every tombstone, keyed by uuid.
    pub fn load_tombstones(&self) -> Result<BTreeMap<String, Tombstone>, StoreError> {
        let dir = self.dir.join("tombstones");
        let mut out = BTreeMap::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err(&dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(uuid) = name
                .strip_suffix(".json")
                .filter(|_| !name.starts_with('.'))
            else {
                continue;
            };
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            let t: Tombstone = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            out.insert(uuid.to_owned(), t);
        }
        Ok(out)
    }

    /// Records, durably, the domains `named` has not confirmed loading
    /// (none: the file is removed).
    pub fn save_pending(&self, domains: &[&str]) -> Result<(), StoreError> {
        if domains.is_empty() {
            self.remove_list("pending.json")
        } else {
            self.write_list("pending.json", domains)
        }
    }

    /// The domains `named` has not confirmed loading.
    pub fn load_pending(&self) -> Result<Vec<String>, StoreError> {
        self.read_list("pending.json")
    }

    /// Records, durably, the domains whose files are about to be replaced or
    /// archived. Until [`Store::clear_installing`], a crash leaves the
    /// state and those files possibly out of step, and they are written
    /// again at the next start whatever their content hash says.
    pub fn mark_installing(&self, domains: &[&str]) -> Result<(), StoreError> {
        self.write_list("installing.json", domains)
    }

    /// The domains of an install that did not finish (see
    /// [`Store::mark_installing`]).
    pub fn load_installing(&self) -> Result<Vec<String>, StoreError> {
        self.read_list("installing.json")
    }

    /// Records that an install finished: state and files agree.
    pub fn clear_installing(&self) -> Result<(), StoreError> {
        self.remove_list("installing.json")
    }

    /// Writes a list of names as a JSON array, atomically and durably.
    fn write_list(&self, file: &str, names: &[&str]) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        let bytes = serde_json::to_vec(names).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// Reads a list written by [`Store::write_list`]; none: empty.
    fn read_list(&self, file: &str) -> Result<Vec<String>, StoreError> {
        let path = self.dir.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Removes a list durably (no file: nothing to do).
    fn remove_list(&self, file: &str) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        match fs::remove_file(&path) {
            Ok(()) => fsutil::sync_dir(&self.dir).map_err(io_err(&self.dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Makes removals in the state directory durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let dir = self.dir.join("zones");
        fsutil::sync_dir(&dir).map_err(io_err(&dir))
    }
}

fn read_state(path: &Path) -> Result<ZoneState, StoreError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let state: ZoneState = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if state.format_version != FORMAT_VERSION {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "format_version {} is not supported (expected {FORMAT_VERSION})",
                state.format_version
            ),
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(domain: &str) -> ZoneState {
        ZoneState {
            format_version: FORMAT_VERSION,
            zone: Zone {
                uuid: "z1".into(),
                domain: domain.into(),
                created_at: None,
                records: vec![],
            },
            last_seq: Some(4),
            recent_ids: vec!["e1".into()],
            deployed: Some(Deployed {
                domain: domain.into(),
                serial: 2_026_112_600,
                content_hash: "ab".into(),
                config_hash: "cd".into(),
                pending_reload: false,
            }),
        }
    }

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save("z1", &state("example.com")).unwrap();
        fs::write(dir.path().join("zones/.z2.json.99.tmp"), "{torn").unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all["z1"], state("example.com"));
        assert!(!dir.path().join("zones/.z2.json.99.tmp").exists());
        store.remove("z1").unwrap();
        assert!(store.load_all().unwrap().is_empty());
    }

    #[test]
    fn second_instance_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another zoneagent"));
    }

    #[test]
    fn corrupt_state_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("zones/bad.json"), "{}").unwrap();
        let err = store.load_all().unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
    }
}
