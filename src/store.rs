//! The state store: one JSON file per zone under `state/zones/<uuid>.json`,
//! and the lock that keeps a second agent off the same state directory.
//!
//! A zone's state is the zone as last accepted (the API's own JSON), the
//! last event `seq` applied to it, and what was deployed from it: the
//! serial, the hash of the rendered content without the serial, the domain
//! its file is named after, and whether `named` still has to load it. Every
//! write is atomic and durable ([`crate::fsutil`]).

use crate::error::ApiError;
use crate::fsutil;
use crate::model::zone::Zone;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The version of the state file format; bumped on incompatible change.
/// Version 1 kept deleted zones in `state/tombstones/`; it is still read.
pub const FORMAT_VERSION: u32 = 2;

/// `state/inflight.json`: what a crash may leave half done.
const INFLIGHT: &str = "inflight.json";
/// Where `installing` and `pending` were kept before `inflight.json`.
const LEGACY_INSTALLING: &str = "installing.json";
const LEGACY_PENDING: &str = "pending.json";

/// What a crash may leave half done, in one small file written once per
/// batch, before anything it names changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    /// Domains whose files may be replaced or archived while their records
    /// are not saved yet: after a crash they are written again whatever
    /// their content hash says.
    #[serde(default)]
    pub installing: Vec<String>,
    /// Domains whose new file `named` may not have loaded: reloaded and
    /// confirmed after a crash.
    #[serde(default)]
    pub pending: Vec<String>,
}

impl Inflight {
    pub fn is_empty(&self) -> bool {
        self.installing.is_empty() && self.pending.is_empty()
    }
}

/// Everything the agent knows about one zone, in one shape: what the API
/// wants (desired), what `named` is given (served), why the two differ
/// (held), and what is remembered for ordering and de-duplication. A
/// deleted zone keeps its record without a desired zone, so late replays
/// of its events are recognised and a re-created domain never reuses a
/// serial of its earlier life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRecord {
    pub format_version: u32,
    /// The desired zone, as the API holds it; `None` once deleted.
    #[serde(default)]
    pub zone: Option<Zone>,
    /// The highest event `seq` applied to this zone.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// Ids of the latest events applied, for de-duplication.
    #[serde(default)]
    pub recent_ids: Vec<String>,
    /// What is installed for `named`, if anything (the served zone).
    #[serde(default)]
    pub deployed: Option<Deployed>,
    /// Why the desired zone is not served: what `named` would refuse in
    /// it. Empty when the desired zone is what is served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<ApiError>,
    /// Ids of the events applied since the desired zone was last
    /// servable: those that caused the hold (at most [`HELD_BY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_by: Vec<String>,
    /// What `named` loads with a warning in the served zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ApiError>,
    /// The file this zone served last before it was deleted: its serial is
    /// the floor for any zone that takes the domain again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<Archived>,
    /// Signing by `named` ([`crate::dnssec`]): set once the zone was given
    /// a signing policy, and kept after it is switched off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Signer>,
}

/// How `named` signs a zone, and what it was seen serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The zone's `dnssec-policy` (`insecure` once switched off).
    pub policy: String,
    /// Where `named` keeps the zone's keys.
    pub key_directory: PathBuf,
    /// The highest SOA serial `named` was seen serving for the signed
    /// zone; the signer may run ahead of the file, and the next file's
    /// serial must go past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<u32>,
}

/// How many causing event ids a held zone keeps.
pub const HELD_BY: usize = 64;

impl ZoneRecord {
    /// A record with nothing in it yet.
    pub fn empty() -> ZoneRecord {
        ZoneRecord {
            format_version: FORMAT_VERSION,
            zone: None,
            last_seq: None,
            recent_ids: Vec::new(),
            deployed: None,
            held: Vec::new(),
            held_by: Vec::new(),
            warnings: Vec::new(),
            archived: None,
            signer: None,
        }
    }

    /// Whether the desired zone cannot be served as it is.
    pub fn is_held(&self) -> bool {
        !self.held.is_empty()
    }
}

/// The last file of a deleted zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archived {
    pub domain: String,
    pub serial: u32,
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
}

/// What version 1 kept of a deleted zone (`state/tombstones/<uuid>.json`).
#[derive(Debug, Deserialize)]
struct LegacyTombstone {
    #[serde(default)]
    last_seq: Option<u64>,
    #[serde(default)]
    recent_ids: Vec<String>,
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
    /// The lists `inflight.json` replaced were read: the next save removes
    /// them (once, not at every save).
    legacy_lists: std::sync::atomic::AtomicBool,
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
            legacy_lists: std::sync::atomic::AtomicBool::new(true),
            dir: dir.to_owned(),
            lock: Some(lock),
        })
    }

    /// A view for reading only (`status`), without the lock, so it works
    /// while the daemon runs. Every file it reads is replaced atomically,
    /// so each is whole, old or new.
    pub fn open_read_only(dir: &Path) -> Store {
        Store {
            legacy_lists: std::sync::atomic::AtomicBool::new(true),
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
    pub fn load_all(&self) -> Result<BTreeMap<String, ZoneRecord>, StoreError> {
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
        let parts: Vec<Result<Vec<(String, ZoneRecord)>, StoreError>> = std::thread::scope(|s| {
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
        // Deleted zones of format version 1, unless a newer record exists.
        for (uuid, record) in self.load_legacy_tombstones()? {
            out.entry(uuid).or_insert(record);
        }
        Ok(out)
    }

    /// Writes many zones' records durably and atomically each, with one
    /// flush for all ([`fsutil::write_atomic_batch`]).
    pub fn save_batch(&self, records: &[(&str, &ZoneRecord)]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut files = Vec::with_capacity(records.len());
        for (uuid, record) in records {
            let path = self.zone_path(uuid);
            let bytes = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            files.push((path, bytes));
        }
        fsutil::write_atomic_batch(&files).map_err(|(path, source)| StoreError::Io { path, source })
    }

    /// Deleted zones as format version 1 kept them.
    fn load_legacy_tombstones(&self) -> Result<BTreeMap<String, ZoneRecord>, StoreError> {
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
            let t: LegacyTombstone =
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            let mut record = ZoneRecord::empty();
            record.last_seq = t.last_seq;
            record.recent_ids = t.recent_ids;
            out.insert(uuid.to_owned(), record);
        }
        Ok(out)
    }

    /// What a crash may have left half done, from `state/inflight.json`
    /// (and the two files that held it before, `installing.json` and
    /// `pending.json`, merged in).
    pub fn load_inflight(&self) -> Result<Inflight, StoreError> {
        let path = self.dir.join(INFLIGHT);
        let mut inflight: Inflight = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Inflight::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let installing = self.read_list_if_there(LEGACY_INSTALLING)?;
        let pending = self.read_list_if_there(LEGACY_PENDING)?;
        self.legacy_lists.store(
            installing.is_some() || pending.is_some(),
            std::sync::atomic::Ordering::Relaxed,
        );
        inflight.installing.extend(installing.unwrap_or_default());
        inflight.pending.extend(pending.unwrap_or_default());
        inflight.installing.sort_unstable();
        inflight.installing.dedup();
        inflight.pending.sort_unstable();
        inflight.pending.dedup();
        Ok(inflight)
    }

    /// Writes `inflight.json` atomically and durably, before the files it
    /// names change. Empty, the file is removed without a directory sync:
    /// if a crash undoes the removal, what it names is only written or
    /// reloaded once more (nothing becomes in flight but through this
    /// durable write).
    pub fn save_inflight(&self, inflight: &Inflight) -> Result<(), StoreError> {
        let path = self.dir.join(INFLIGHT);
        if inflight.is_empty() {
            self.remove_list_unsynced(INFLIGHT)?;
        } else {
            let bytes = serde_json::to_vec(inflight).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))?;
        }
        // Their content is in the one just written.
        if self
            .legacy_lists
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.remove_list_unsynced(LEGACY_INSTALLING)?;
            self.remove_list_unsynced(LEGACY_PENDING)?;
        }
        Ok(())
    }

    /// Records, durably, the domains `named` has through `rndc addzone`
    /// (kept in its own new-zone database, so never in the include file).
    pub fn save_added(&self, domains: &[&str]) -> Result<(), StoreError> {
        if domains.is_empty() {
            self.remove_list("added.json")
        } else {
            self.write_list("added.json", domains)
        }
    }

    /// The domains `named` has through `rndc addzone`.
    pub fn load_added(&self) -> Result<Vec<String>, StoreError> {
        self.read_list("added.json")
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
        Ok(self.read_list_if_there(file)?.unwrap_or_default())
    }

    /// Reads a list written by [`Store::write_list`], `None` when there is
    /// no such file.
    fn read_list_if_there(&self, file: &str) -> Result<Option<Vec<String>>, StoreError> {
        let path = self.dir.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
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

    /// Removes a list, leaving the removal's durability to the next
    /// directory sync (no file: nothing to do).
    fn remove_list_unsynced(&self, file: &str) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

fn read_state(path: &Path) -> Result<ZoneRecord, StoreError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut state: ZoneRecord = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    // Version 1 is this shape without the desired/served split: its zone
    // was both.
    if state.format_version == 1 {
        state.format_version = FORMAT_VERSION;
    }
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

    fn state(domain: &str) -> ZoneRecord {
        ZoneRecord {
            zone: Some(Zone {
                uuid: "z1".into(),
                domain: domain.into(),
                created_at: None,
                records: vec![],
            }),
            last_seq: Some(4),
            recent_ids: vec!["e1".into()],
            deployed: Some(Deployed {
                domain: domain.into(),
                serial: 2_026_112_600,
                content_hash: "ab".into(),
                config_hash: "cd".into(),
            }),
            ..ZoneRecord::empty()
        }
    }

    #[test]
    fn save_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save_batch(&[("z1", &state("example.com"))]).unwrap();
        fs::write(dir.path().join("zones/.z2.json.99.tmp"), "{torn").unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all["z1"], state("example.com"));
        assert!(!dir.path().join("zones/.z2.json.99.tmp").exists());
    }

    #[test]
    fn inflight_merges_the_older_lists_and_is_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.load_inflight().unwrap().is_empty());
        fs::write(dir.path().join(LEGACY_PENDING), r#"["b.test","a.test"]"#).unwrap();
        fs::write(dir.path().join(LEGACY_INSTALLING), r#"["c.test"]"#).unwrap();
        let written = Inflight {
            installing: vec!["c.test".into(), "d.test".into()],
            pending: vec!["a.test".into()],
        };
        fs::write(
            dir.path().join(INFLIGHT),
            serde_json::to_vec(&written).unwrap(),
        )
        .unwrap();
        let loaded = store.load_inflight().unwrap();
        assert_eq!(loaded.installing, ["c.test", "d.test"]);
        assert_eq!(loaded.pending, ["a.test", "b.test"]);
        store.save_inflight(&loaded).unwrap();
        assert!(!dir.path().join(LEGACY_PENDING).exists());
        assert!(!dir.path().join(LEGACY_INSTALLING).exists());
        assert_eq!(store.load_inflight().unwrap(), loaded);
        store.save_inflight(&Inflight::default()).unwrap();
        assert!(!dir.path().join(INFLIGHT).exists());
    }

    #[test]
    fn reads_format_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(
            dir.path().join("zones/z1.json"),
            r#"{"format_version":1,"zone":{"uuid":"z1","domain":"a.test","records":[]},"last_seq":3,"recent_ids":["e"],"deployed":{"domain":"a.test","serial":7,"content_hash":"h","config_hash":"c"}}"#,
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("tombstones")).unwrap();
        fs::write(
            dir.path().join("tombstones/gone.json"),
            r#"{"format_version":1,"domain":"b.test","last_seq":9,"recent_ids":[]}"#,
        )
        .unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all["z1"].deployed.as_ref().unwrap().serial, 7);
        assert_eq!(all["z1"].format_version, FORMAT_VERSION);
        assert_eq!(all["gone"].zone, None);
        assert_eq!(all["gone"].last_seq, Some(9));
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
