//! The spool: a maildir of change events, the one queue the engine reads.
//!
//! Producers write a file into `tmp/`, fsync it and rename it into `new/`
//! (`zoneagent submit` and the socket do exactly that). The engine reads
//! `new/` in name order; an event leaves `new/` only after the state it
//! changed is durable: removed when applied, moved to `failed/` beside a
//! `<name>.error.json` report when refused. Entries that are not regular
//! files (symlinks, FIFOs, devices) or that are larger than the limit are
//! refused from their `lstat` alone, never opened.

use crate::error::ApiError;
use crate::fsutil;
use nix::fcntl::OFlag;
use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    max_bytes: u64,
}

/// One entry of `new/`.
#[derive(Debug)]
pub enum Entry {
    /// A regular file within the size limit, with its bytes.
    Ready { name: String, bytes: Vec<u8> },
    /// Not something to read; why.
    Refused { name: String, reason: String },
}

impl Entry {
    /// The file name in `new/`.
    pub fn name(&self) -> &str {
        match self {
            Entry::Ready { name, .. } | Entry::Refused { name, .. } => name,
        }
    }
}

/// The report written beside a failed event.
#[derive(Debug, Serialize)]
struct FailureReport<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    errors: &'a [ApiError],
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The ending of a group file written by the socket: one event per line.
pub const GROUP_SUFFIX: &str = ".ndjson";

/// A new file name that sorts after earlier ones from this host: the time
/// in nanoseconds, zero-padded, then the pid and a counter.
pub fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}.{}.{n:06}.json", std::process::id())
}

impl Spool {
    /// Opens a spool, creating `tmp/`, `new/` and `failed/`.
    pub fn open(root: &Path, max_bytes: u64) -> io::Result<Spool> {
        for d in ["tmp", "new", "failed"] {
            fs::create_dir_all(root.join(d))?;
        }
        Ok(Spool {
            root: root.to_owned(),
            max_bytes,
        })
    }

    /// The `new/` directory (watched for arrivals).
    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }

    /// The `failed/` directory.
    pub fn failed_dir(&self) -> PathBuf {
        self.root.join("failed")
    }

    /// Submits one event durably; returns its name in `new/`.
    pub fn submit(&self, bytes: &[u8]) -> io::Result<String> {
        let mut names = self.submit_batch(&[bytes])?;
        Ok(names.pop().unwrap_or_default())
    }

    /// Submits many events with one flush for all (group commit): each is
    /// written to `tmp/`, the file system is synced once, all are renamed
    /// into `new/` and `new/` is fsynced. When this returns, every event is
    /// durable in `new/`.
    pub fn submit_batch(&self, events: &[&[u8]]) -> io::Result<Vec<String>> {
        let tmp_dir = self.root.join("tmp");
        let new_dir = self.new_dir();
        let names: Vec<String> = events.iter().map(|_| unique_name()).collect();
        let files: Vec<(PathBuf, &[u8])> = names
            .iter()
            .zip(events)
            .map(|(n, b)| (tmp_dir.join(n), *b))
            .collect();
        if let Err((_, e)) = fsutil::write_batch_unrenamed(&files) {
            for (p, _) in &files {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        for name in &names {
            fs::rename(tmp_dir.join(name), new_dir.join(name))?;
        }
        fsutil::sync_dir(&new_dir)?;
        Ok(names)
    }

    /// Submits one event durably under a name the caller chose (from
    /// [`unique_name`] taken earlier), so that it sorts where that moment
    /// sorts: `pull` names its sync at the moment the pull began, and the
    /// events that arrived meanwhile apply after it.
    pub fn submit_as(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.root.join("tmp").join(name);
        let result = fsutil::write_synced(&tmp, bytes)
            .and_then(|()| fs::rename(&tmp, self.new_dir().join(name)))
            .and_then(|()| fsutil::sync_dir(&self.new_dir()));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Lists `new/` in name order and reads what is safe to read, at most
    /// `limit` entries (the oldest).
    pub fn scan(&self, limit: usize) -> io::Result<Vec<Entry>> {
        Ok(self
            .names(limit)?
            .into_iter()
            .map(|n| self.read_entry(n))
            .collect())
    }

    /// The names in `new/`, oldest first, at most `limit`.
    pub fn names(&self, limit: usize) -> io::Result<Vec<String>> {
        // readdir is no snapshot: an entry renamed in while the directory
        // is listed may be missed while a later one is seen, and applying
        // event k+1 before k would turn k into a "replay". A second listing
        // sees every entry that existed when the first one ended, so the
        // entries it adds below the first listing's last name are exactly
        // what the first one skipped; those above it wait for the next
        // pass.
        let first = self.list()?;
        let mut names = first.clone();
        if let Some(last) = first.iter().max() {
            let seen: std::collections::HashSet<&String> = first.iter().collect();
            names.extend(
                self.list()?
                    .into_iter()
                    .filter(|n| n < last && !seen.contains(n)),
            );
        }
        names.sort_unstable();
        names.truncate(limit);
        Ok(names)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.new_dir())? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Reads one entry of `new/`, refusing what is not safe to read.
    pub fn read_entry(&self, name: String) -> Entry {
        let path = self.new_dir().join(&name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                return Entry::Refused {
                    name,
                    reason: format!("cannot stat: {e}"),
                };
            }
        };
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            Some("a symbolic link")
        } else if ft.is_fifo() {
            Some("a FIFO")
        } else if ft.is_socket() {
            Some("a socket")
        } else if ft.is_block_device() || ft.is_char_device() {
            Some("a device")
        } else if ft.is_dir() {
            Some("a directory")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Entry::Refused {
                name,
                reason: format!("is {kind}, not a regular file; it was not opened"),
            };
        }
        if meta.len() > self.max_bytes {
            return Entry::Refused {
                name,
                reason: format!(
                    "is {} bytes, over the limit of {} (spool.max_event_bytes); it was not opened",
                    meta.len(),
                    self.max_bytes
                ),
            };
        }
        // O_NOFOLLOW and O_NONBLOCK: should the entry be swapped for a link
        // or a FIFO after the lstat, the open fails or does not hang, and
        // the fstat below catches it.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
            .open(&path);
        let result = opened.and_then(|f| {
            let m = f.metadata()?;
            if !m.is_file() || m.len() > self.max_bytes {
                return Err(io::Error::other(
                    "changed into something else while being read",
                ));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(m.len()).unwrap_or(0));
            f.take(self.max_bytes + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > self.max_bytes {
                return Err(io::Error::other(
                    "grew over the size limit while being read",
                ));
            }
            Ok(bytes)
        });
        match result {
            Ok(bytes) => Entry::Ready { name, bytes },
            Err(e) => Entry::Refused {
                name,
                reason: format!("could not be read safely: {e}"),
            },
        }
    }

    /// Writes a group of events as one file (`.ndjson`, one event per
    /// line) durably into `new/`: the socket's group commit. Three file
    /// system operations for the whole group instead of three per event.
    pub fn submit_group(&self, events: &[&[u8]]) -> io::Result<String> {
        let mut bytes = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum());
        for e in events {
            bytes.extend_from_slice(e);
            bytes.push(b'\n');
        }
        let name = unique_name().replace(".json", GROUP_SUFFIX);
        let tmp = self.root.join("tmp").join(&name);
        let result = fsutil::write_synced(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, self.new_dir().join(&name)))
            .and_then(|()| fsutil::sync_dir(&self.new_dir()));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| name)
    }

    /// Moves one line of a group file to `failed/` as an event file of its
    /// own, with its report (the group file is removed once all its lines
    /// are done). Idempotent: after a crash the same line gets the same
    /// name.
    pub fn fail_line(
        &self,
        group: &str,
        line: usize,
        bytes: &[u8],
        id: Option<&str>,
        errors: &[ApiError],
    ) -> io::Result<()> {
        let failed = self.failed_dir();
        let name = format!("{}.{line}.json", group.trim_end_matches(GROUP_SUFFIX));
        fsutil::write_atomic_with(&failed.join(&name), bytes, false)?;
        self.write_report(&name, id, errors)?;
        fsutil::sync_dir(&failed)
    }

    /// Writes `failed/<name>.error.json` (the caller syncs `failed/`).
    fn write_report(&self, name: &str, id: Option<&str>, errors: &[ApiError]) -> io::Result<()> {
        let report = FailureReport {
            file: name,
            id,
            errors,
        };
        let mut text = serde_json::to_string_pretty(&report).map_err(io::Error::other)?;
        text.push('\n');
        let path = self.failed_dir().join(format!("{name}.error.json"));
        fsutil::write_atomic_with(&path, text.as_bytes(), false)
    }

    /// Removes applied events, durably.
    pub fn remove(&self, names: &[String]) -> io::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let dir = self.new_dir();
        for n in names {
            match fs::remove_file(dir.join(n)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        fsutil::sync_dir(&dir)
    }

    /// Moves an event to `failed/` with a report beside it. The report is
    /// written first, so a crash leaves the event either still in `new/`
    /// or in `failed/` with its report.
    pub fn fail(&self, name: &str, id: Option<&str>, errors: &[ApiError]) -> io::Result<()> {
        let failed = self.failed_dir();
        self.write_report(name, id, errors)?;
        fs::rename(self.new_dir().join(name), failed.join(name))?;
        fsutil::sync_dir(&failed)?;
        fsutil::sync_dir(&self.new_dir())
    }

    /// Removes temporary files left by writers that died: ours (any age,
    /// when `ours_only_pid` is not running) and anything older than `age`.
    pub fn clean_tmp(&self, age: Duration) -> io::Result<usize> {
        let dir = self.root.join("tmp");
        let mut removed = 0;
        let now = SystemTime::now();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours_dead = name
                .split('.')
                .nth(1)
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !process_alive(pid));
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| now.duration_since(m).unwrap_or_default() > age);
            if ours_dead || old {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn process_alive(pid: i32) -> bool {
    pid == i32::try_from(std::process::id()).unwrap_or(0)
        || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_scan_remove_fail() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100).unwrap();
        let a = spool.submit(b"{\"a\":1}").unwrap();
        let names = spool.submit_batch(&[b"1", b"2", b"3"]).unwrap();
        assert!(a < names[0] && names[0] < names[1]);
        std::os::unix::fs::symlink("/etc/passwd", spool.new_dir().join("zz-link")).unwrap();
        nix::unistd::mkfifo(
            &spool.new_dir().join("zz-fifo"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        fs::write(spool.new_dir().join("zz-big"), vec![b'x'; 101]).unwrap();
        let entries = spool.scan(usize::MAX).unwrap();
        assert_eq!(entries.len(), 7);
        assert!(matches!(&entries[0], Entry::Ready { bytes, .. } if bytes == b"{\"a\":1}"));
        for e in &entries[4..] {
            assert!(matches!(e, Entry::Refused { .. }), "{e:?}");
        }
        spool.remove(std::slice::from_ref(&a)).unwrap();
        spool
            .fail("zz-link", None, &[ApiError::new("refused", None, "link")])
            .unwrap();
        assert!(spool.failed_dir().join("zz-link").is_symlink());
        let report = fs::read_to_string(spool.failed_dir().join("zz-link.error.json")).unwrap();
        assert!(report.contains("\"error_code\": \"refused\""), "{report}");
        assert_eq!(spool.scan(usize::MAX).unwrap().len(), 5);
        assert_eq!(spool.scan(2).unwrap().len(), 2);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    /// readdir is no snapshot: a scan must never see an event without the
    /// ones a sequential producer wrote before it (found by the crash test;
    /// before the second listing, several scans a run had gaps).
    #[test]
    fn scan_never_skips_an_earlier_event() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let junk: Vec<Vec<u8>> = (0..1500)
            .map(|i| format!("{{\"junk\":{i}}}").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = junk.iter().map(Vec::as_slice).collect();
        spool.submit_batch(&refs).unwrap();
        let stop = AtomicBool::new(false);
        let (scans, gaps) = std::thread::scope(|s| {
            s.spawn(|| {
                for seq in 0..1500u32 {
                    spool
                        .submit(format!("{{\"seq\":{seq}}}").as_bytes())
                        .unwrap();
                }
                stop.store(true, Ordering::Relaxed);
            });
            let (mut scans, mut gaps) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let seen: std::collections::HashSet<u64> = spool
                    .scan(usize::MAX)
                    .unwrap()
                    .into_iter()
                    .filter_map(|e| match e {
                        Entry::Ready { bytes, .. } => {
                            serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["seq"]
                                .as_u64()
                        }
                        Entry::Refused { .. } => None,
                    })
                    .collect();
                scans += 1;
                if let Some(max) = seen.iter().max()
                    && (0..*max).any(|k| !seen.contains(&k))
                {
                    gaps += 1;
                }
            }
            (scans, gaps)
        });
        assert!(scans > 0);
        assert_eq!(
            gaps, 0,
            "{gaps} of {scans} scans saw an event without an earlier one"
        );
    }
}
