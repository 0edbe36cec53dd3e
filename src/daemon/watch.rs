//! Watching `spool/new` with inotify (through `notify`). A notification is
//! only a hint to scan: inotify can overflow or miss events, so the daemon
//! also rescans on a timer and at start.

use super::Wake;
use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::sync::mpsc::Sender;

/// Starts watching `dir`; the watcher lives as long as the returned value.
pub fn watch(dir: &Path, wake: Sender<Wake>) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Errors (an overflow) are hints too: scan.
        let _ = res;
        let _ = wake.send(Wake::Spool);
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
