//! Durable file writes: temp file, fsync, rename, directory fsync.
//!
//! A crash at any instant leaves either the old or the new version of a
//! file, never a torn one, and once a write returns it survives power loss.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically and durably: a temporary file in the
/// same directory is written and fsynced, renamed over `path`, and the
/// directory is fsynced so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, true)
}

/// Like [`write_atomic`]; with `sync_dir` false the directory fsync is left
/// to the caller, who syncs once for a batch of files ([`sync_dir`]).
pub fn write_atomic_with(path: &Path, bytes: &[u8], sync_dir_after: bool) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if sync_dir_after {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// Writes a file and fsyncs it, without renaming (for files renamed later).
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// fsyncs a directory, making renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A hidden temporary name beside `path`, unique to this process.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Creates a directory and its parents.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Writes many files durably without renaming them: each is written, then
/// one `syncfs` per directory flushes them all (far cheaper than an fsync
/// each), falling back to an fsync each where `syncfs` fails. Returns the
/// failing path with its error.
pub fn write_batch_unrenamed(files: &[(PathBuf, &[u8])]) -> Result<(), (PathBuf, io::Error)> {
    if files.len() <= 2 {
        for (path, bytes) in files {
            write_synced(path, bytes).map_err(|e| (path.clone(), e))?;
        }
        return Ok(());
    }
    for (path, bytes) in files {
        fs::write(path, bytes).map_err(|e| (path.clone(), e))?;
    }
    let mut dirs: Vec<&Path> = files.iter().map(|(p, _)| parent(p)).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let f = File::open(dir).map_err(|e| (dir.to_owned(), e))?;
        if nix::unistd::syncfs(&f).is_err() {
            for (path, _) in files.iter().filter(|(p, _)| parent(p) == dir) {
                File::open(path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| (path.clone(), e))?;
            }
        }
    }
    Ok(())
}

/// Writes many files atomically and durably with one flush: every file is
/// written to a temporary name, the file system is synced once
/// ([`write_batch_unrenamed`]), all are renamed into place, and each
/// directory is fsynced once. After a crash each file is old or new.
pub fn write_atomic_batch(files: &[(PathBuf, Vec<u8>)]) -> Result<(), (PathBuf, io::Error)> {
    let temps: Vec<(PathBuf, &[u8])> = files
        .iter()
        .map(|(p, b)| (temp_path(p), b.as_slice()))
        .collect();
    if let Err(e) = write_batch_unrenamed(&temps) {
        for (t, _) in &temps {
            let _ = fs::remove_file(t);
        }
        return Err(e);
    }
    for ((tmp, _), (path, _)) in temps.iter().zip(files) {
        fs::rename(tmp, path).map_err(|e| (path.clone(), e))?;
    }
    let mut dirs: Vec<&Path> = files.iter().map(|(p, _)| parent(p)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        sync_dir(dir).map_err(|e| (dir.to_owned(), e))?;
    }
    Ok(())
}
