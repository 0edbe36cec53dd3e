//! The spool: a maildir of change events, the one queue the engine reads.
//!
//! Producers write a file into `tmp/`, fsync it and rename it into `new/`
//! (`zoneagent submit` and the socket do exactly that). The engine reads
//! `new/` in order of arrival; an event leaves `new/` only after the state
//! it changed is durable: removed when applied, moved to `failed/` beside a
//! `<name>.error.json` report when refused. Entries that are not regular
//! files (symlinks, FIFOs, devices) or that are larger than the limit are
//! refused from their `lstat` alone, never opened.
//!
//! Arrival is the inode's change time (ctime), which the rename into
//! `new/` sets and which no producer can set back, then the name: so junk
//! named to sort first, or with a forged mtime, waits its turn like
//! everything else. `failed/` is pruned by count and by age
//! ([`Spool::prune_failed`]).

use crate::config::SpoolLimits;
use crate::error::ApiError;
use crate::fsutil;
use nix::fcntl::OFlag;
use serde::Serialize;
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often [`Spool::names`] prunes `failed/` once limits are set.
const PRUNE_INTERVAL: Duration = Duration::from_mins(10);

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    max_bytes: u64,
    limits: SpoolLimits,
    /// When `failed/` was last pruned; `None` until [`Spool::with_limits`]
    /// turns periodic pruning on (a CLI `submit` never prunes).
    pruned: Option<Arc<Mutex<Option<Instant>>>>,
}

/// The suffix of a failure report in `failed/`.
const REPORT_SUFFIX: &str = ".error.json";

/// An entry of `new/` as listed: its name and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Arrival {
    /// The inode's change time (seconds, nanoseconds): set by the rename
    /// into `new/`, not settable by a producer.
    changed: (i64, i64),
    name: String,
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

    /// Bytes read into memory for this entry (0 for a refused one): what a
    /// pass counts against `spool.max_pass_bytes` ([`Spool::max_pass_bytes`]).
    pub fn size(&self) -> u64 {
        match self {
            Entry::Ready { bytes, .. } => bytes.len() as u64,
            Entry::Refused { .. } => 0,
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
/// in nanoseconds, zero-padded, then the pid, a counter and a random part
/// (so nobody who can write `tmp/` can plant something at the name first).
pub fn unique_name() -> io::Result<String> {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let token = fsutil::random_token()?;
    Ok(format!(
        "{nanos:020}.{}.{n:06}.{token}.json",
        std::process::id()
    ))
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
            limits: SpoolLimits::default(),
            pruned: None,
        })
    }

    /// Sets the bounds of `[spool]` and turns on pruning of `failed/` by
    /// them, at most every ten minutes, from [`Spool::names`] (the
    /// daemon's spool; the caller prunes once at start with
    /// [`Spool::prune_failed`]).
    #[must_use]
    pub fn with_limits(self, limits: SpoolLimits) -> Spool {
        Spool {
            limits,
            pruned: Some(Arc::new(Mutex::new(Some(Instant::now())))),
            ..self
        }
    }

    /// `spool.max_pass_bytes`: a pass reads entries until their
    /// [`Entry::size`] adds up to this, then stops and leaves the rest in
    /// `new/` for the next pass (always reading at least one), so the
    /// memory a pass holds is bounded by this plus one event.
    pub fn max_pass_bytes(&self) -> u64 {
        self.limits.max_pass_bytes
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
        let names: Vec<String> = events
            .iter()
            .map(|_| unique_name())
            .collect::<io::Result<_>>()?;
        let files: Vec<(PathBuf, &[u8])> = names
            .iter()
            .zip(events)
            .map(|(n, b)| (tmp_dir.join(n), *b))
            .collect();
        if let Err((_, e)) = fsutil::write_batch_new(&files) {
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

    /// The names in `new/` in order of arrival (oldest first, see the
    /// module docs), at most `limit`. With limits set, prunes `failed/`
    /// first when that is due.
    pub fn names(&self, limit: usize) -> io::Result<Vec<String>> {
        self.prune_if_due();
        // readdir is no snapshot: an entry renamed in while the directory
        // is listed may be missed while a later one is seen, and applying
        // event k+1 before k would turn k into a "replay". A second listing
        // sees every entry that existed when the first one ended, so the
        // entries it adds below the first listing's last name are exactly
        // what the first one skipped; those above it wait for the next
        // pass.
        let mut names = self.list(&HashSet::new())?;
        // (In arrival order: an entry that arrived before the last one
        // seen is one the first listing skipped.)
        if let Some(last) = names.iter().max().cloned() {
            let seen: HashSet<String> = names.iter().map(|a| a.name.clone()).collect();
            names.extend(self.list(&seen)?.into_iter().filter(|a| *a < last));
        }
        names.sort_unstable();
        names.truncate(limit);
        Ok(names.into_iter().map(|a| a.name).collect())
    }

    /// `new/` but the names in `skip`, with each entry's arrival time (its
    /// `lstat`; entries gone meanwhile are left out).
    fn list(&self, skip: &HashSet<String>) -> io::Result<Vec<Arrival>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.new_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || skip.contains(&name) {
                continue;
            }
            // DirEntry::metadata is an lstat: a link's own ctime.
            match entry.metadata() {
                Ok(m) => names.push(Arrival {
                    changed: (m.ctime(), m.ctime_nsec()),
                    name,
                }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(names)
    }

    /// Prunes `failed/` by the limits when [`PRUNE_INTERVAL`] has passed.
    fn prune_if_due(&self) {
        let Some(pruned) = &self.pruned else {
            return;
        };
        let mut last = pruned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < PRUNE_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        // A prune that fails must not hold up the events: say so and go on.
        match self.prune_failed(
            SystemTime::now(),
            self.limits.failed_keep,
            self.limits.failed_max_age,
        ) {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned spool/failed"),
            Err(e) => tracing::warn!(error = %e, "cannot prune spool/failed"),
        }
    }

    /// Removes failed events (each with its report) from `failed/`: all
    /// but the `keep` newest, and every one that failed more than
    /// `max_age` before `now`. A failed event's time is the latest change
    /// time (ctime) of its files, which the move into `failed/` and the
    /// report set and no producer can forge. Returns how many events were
    /// removed. Stray temporary files count as events of their own.
    pub fn prune_failed(
        &self,
        now: SystemTime,
        keep: usize,
        max_age: Duration,
    ) -> io::Result<usize> {
        let dir = self.failed_dir();
        let mut events: std::collections::HashMap<String, (SystemTime, Vec<PathBuf>)> =
            std::collections::HashMap::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let changed = SystemTime::UNIX_EPOCH
                + Duration::new(
                    u64::try_from(meta.ctime()).unwrap_or(0),
                    u32::try_from(meta.ctime_nsec()).unwrap_or(0),
                );
            let key = name.strip_suffix(REPORT_SUFFIX).unwrap_or(&name).to_owned();
            let slot = events
                .entry(key)
                .or_insert((SystemTime::UNIX_EPOCH, Vec::new()));
            slot.0 = slot.0.max(changed);
            slot.1.push(entry.path());
        }
        let mut by_age: Vec<(SystemTime, String, Vec<PathBuf>)> = events
            .into_iter()
            .map(|(key, (time, paths))| (time, key, paths))
            .collect();
        // Newest first.
        by_age.sort_unstable_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
        let mut removed = 0;
        for (i, (time, _, paths)) in by_age.iter().enumerate() {
            let too_old = now.duration_since(*time).unwrap_or_default() > max_age;
            if i < keep && !too_old {
                continue;
            }
            for path in paths {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            removed += 1;
        }
        if removed > 0 {
            fsutil::sync_dir(&dir)?;
        }
        Ok(removed)
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
        let name = unique_name()?.replace(".json", GROUP_SUFFIX);
        let tmp = self.root.join("tmp").join(&name);
        let result = fsutil::write_batch_new(&[(tmp.clone(), &bytes)])
            .map_err(|(_, e)| e)
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
        let path = self.failed_dir().join(format!("{name}{REPORT_SUFFIX}"));
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
                // One entry that cannot go (a directory a producer made)
                // must not stop the cleaning of the rest.
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(
                        file = %crate::logtext::Escaped(&name),
                        error = %e,
                        "cannot remove a file from spool/tmp"
                    ),
                }
            }
        }
        Ok(removed)
    }
}

fn process_alive(pid: i32) -> bool {
    // Not a single process (0 and negatives name process groups): never
    // "ours", left to the age rule.
    if pid <= 0 {
        return true;
    }
    pid == i32::try_from(std::process::id()).unwrap_or(0)
        || alive_by_signal(nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            None,
        ))
}

/// What `kill(pid, 0)` says about a process: only ESRCH means it is gone.
/// EPERM means it lives and belongs to another user (a producer writing
/// `tmp/` as itself), whose in-flight file must be kept.
fn alive_by_signal(result: nix::Result<()>) -> bool {
    !matches!(result, Err(nix::errno::Errno::ESRCH))
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

    /// With limits set, listing `new/` prunes `failed/` once an interval
    /// has passed since the last prune, and not again before the next.
    #[test]
    fn names_prunes_failed_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            failed_keep: 1,
            ..SpoolLimits::default()
        };
        let spool = Spool::open(dir.path(), 100).unwrap().with_limits(limits);
        for i in 0..3 {
            let name = spool.submit(format!("bad {i}").as_bytes()).unwrap();
            spool
                .fail(&name, None, &[ApiError::new("parse_error", None, "x")])
                .unwrap();
        }
        let count = || fs::read_dir(spool.failed_dir()).unwrap().count();
        spool.names(10).unwrap();
        assert_eq!(count(), 6, "not due yet: opened just now");
        let pruned = spool.pruned.as_ref().unwrap();
        *pruned.lock().unwrap() = Instant::now().checked_sub(PRUNE_INTERVAL);
        spool.names(10).unwrap();
        assert_eq!(count(), 2, "due: the newest event and its report are left");
    }

    #[test]
    fn clean_tmp_goes_on_past_what_it_cannot_remove() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100).unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(tmp.join("0-a-directory")).unwrap();
        fs::File::open(tmp.join("0-a-directory"))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH)
            .unwrap();
        fs::write(tmp.join("1-old.json"), b"x").unwrap();
        fs::File::options()
            .write(true)
            .open(tmp.join("1-old.json"))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(spool.clean_tmp(Duration::from_hours(1)).unwrap(), 1);
        assert!(tmp.join("0-a-directory").is_dir());
        assert!(!tmp.join("1-old.json").exists());
    }

    #[test]
    fn a_process_of_another_user_is_alive() {
        use nix::errno::Errno;
        assert!(alive_by_signal(Ok(())));
        assert!(alive_by_signal(Err(Errno::EPERM)), "EPERM: alive, not ours");
        assert!(!alive_by_signal(Err(Errno::ESRCH)));
        assert!(process_alive(0) && process_alive(-1));
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
