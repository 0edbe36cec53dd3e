//! Durable file writes: temp file, fsync, rename, directory fsync.
//!
//! A crash at any instant leaves either the old or the new version of a
//! file, never a torn one, and once a write returns it survives power loss.
//!
//! No write here ever follows a symbolic link. Files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`; temporary names carry 96 random bits from
//! the OS, so nobody can plant a link at a name before it is used; and a
//! file written under a name the caller chose first unlinks whatever is
//! there (a link is removed, not followed). Renames replace a link at the
//! destination rather than write through it.

use nix::fcntl::OFlag;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How often a temporary name is drawn again when it is taken: with 96
/// random bits a clash means someone is squatting the directory.
const TEMP_ATTEMPTS: usize = 8;

/// Writes `bytes` to `path` atomically and durably: a temporary file in the
/// same directory is written and fsynced, renamed over `path`, and the
/// directory is fsynced so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, true)
}

/// Like [`write_atomic`]; with `sync_dir` false the directory fsync is left
/// to the caller, who syncs once for a batch of files ([`sync_dir`]).
pub fn write_atomic_with(path: &Path, bytes: &[u8], sync_dir_after: bool) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path)?;
    let result = (|| {
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
/// Whatever is at `path` is replaced, never followed.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = create_replacing(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `path` for writing, failing if anything (a file, a link, a
/// FIFO) is already there: `O_CREAT|O_EXCL|O_NOFOLLOW`. The mode is the
/// usual 0666 less the umask, so `named` can read zone files through the
/// group as before.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
}

/// Unlinks whatever is at `path`, then creates it with [`create_new`]. A
/// link planted at the name is removed, not followed; one planted again in
/// between makes the create fail instead.
fn create_replacing(path: &Path) -> io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    create_new(path)
}

/// A new temporary file beside `path` under a random hidden name, created
/// with [`create_new`].
fn create_temp(path: &Path) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = temp_path(path)?;
        match create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
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

/// 96 random bits from the OS as 24 hex digits, for names nobody can guess.
pub fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes.iter().fold(String::with_capacity(24), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// A hidden temporary name beside `path` with a random part:
/// `.<name>.<random>.tmp`.
fn temp_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(parent(path).join(format!(".{name}.{}.tmp", random_token()?)))
}

/// Creates a directory and its parents.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Writes many files durably without renaming them: each is written, then
/// one `syncfs` per directory flushes them all (far cheaper than an fsync
/// each), falling back to an fsync each where `syncfs` fails. Whatever is
/// at each path is replaced, never followed (for names the caller reuses,
/// like the deployer's `.<domain>.zone.new`). Returns the failing path with
/// its error.
pub fn write_batch_unrenamed(files: &[(PathBuf, &[u8])]) -> Result<(), (PathBuf, io::Error)> {
    write_batch(files, create_replacing)
}

/// The first half of [`write_batch_unrenamed`]: writes the files (whatever
/// is at each path is replaced, never followed) without making them
/// durable, so [`sync_files`] can run while something else reads them.
pub fn write_batch_unsynced(files: &[(PathBuf, &[u8])]) -> Result<(), (PathBuf, io::Error)> {
    for (path, bytes) in files {
        create_replacing(path)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| (path.clone(), e))?;
    }
    Ok(())
}

/// Makes written files durable: an fsync each for one or two, else one
/// `syncfs` per directory (an fsync each where it fails).
pub fn sync_files(paths: &[&Path]) -> Result<(), (PathBuf, io::Error)> {
    let fsync = |path: &Path| {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| (path.to_owned(), e))
    };
    if paths.len() <= 2 {
        return paths.iter().try_for_each(|p| fsync(p));
    }
    let mut dirs: Vec<&Path> = paths.iter().map(|p| parent(p)).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        let d = File::open(dir).map_err(|e| (dir.to_owned(), e))?;
        if nix::unistd::syncfs(&d).is_err() {
            for path in paths.iter().filter(|p| parent(p) == dir) {
                fsync(path)?;
            }
        }
    }
    Ok(())
}

/// Like [`write_batch_unrenamed`], but every file must be new: a name that
/// is taken (by anything, a link included) fails the batch. For the
/// spool's `tmp/`, where producers write too.
pub fn write_batch_new(files: &[(PathBuf, &[u8])]) -> Result<(), (PathBuf, io::Error)> {
    write_batch(files, create_new)
}

fn write_batch(
    files: &[(PathBuf, &[u8])],
    create: fn(&Path) -> io::Result<File>,
) -> Result<(), (PathBuf, io::Error)> {
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut next = files.iter();
    write_durably(&paths, |_| {
        let (path, bytes) = next.next().expect("one per path");
        let mut file = create(path)?;
        file.write_all(bytes)?;
        Ok((path.clone(), file))
    })
}

/// Creates and writes a file for each of `paths` with `write` (which
/// returns the path it wrote, in the same directory, and the file), then
/// makes them durable: an fsync each for one or two, else one `syncfs` per
/// directory (an fsync each where it fails). Each file is closed once
/// written, so a batch of any size holds one descriptor at a time.
fn write_durably(
    paths: &[&Path],
    mut write: impl FnMut(&Path) -> io::Result<(PathBuf, File)>,
) -> Result<(), (PathBuf, io::Error)> {
    fn err(path: &Path) -> impl FnOnce(io::Error) -> (PathBuf, io::Error) + '_ {
        move |e| (path.to_owned(), e)
    }
    if paths.len() <= 2 {
        for path in paths {
            write(path)
                .and_then(|(_, f)| f.sync_all())
                .map_err(err(path))?;
        }
        return Ok(());
    }
    let mut written = Vec::with_capacity(paths.len());
    for path in paths {
        written.push(write(path).map_err(err(path))?.0);
    }
    let written: Vec<&Path> = written.iter().map(PathBuf::as_path).collect();
    sync_files(&written)
}

/// Writes many files atomically and durably with one flush: every file is
/// written to a new random temporary name, the file system is synced once
/// (as in [`write_batch_unrenamed`]), all are renamed into place, and each
/// directory is fsynced once. After a crash each file is old or new.
pub fn write_atomic_batch(files: &[(PathBuf, Vec<u8>)]) -> Result<(), (PathBuf, io::Error)> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let targets: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let mut next = files.iter();
    let result = write_durably(&targets, |path| {
        let (_, bytes) = next.next().expect("one per path");
        let (tmp, mut file) = create_temp(path)?;
        temps.push(tmp.clone());
        file.write_all(bytes)?;
        Ok((tmp, file))
    });
    if let Err(e) = result {
        for t in &temps {
            let _ = fs::remove_file(t);
        }
        return Err(e);
    }
    for (tmp, (path, _)) in temps.iter().zip(files) {
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
