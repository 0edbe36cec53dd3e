//! Watching `spool/new` with inotify (through `notify`). A notification is
//! only a hint to scan: inotify can overflow or miss events, so the daemon
//! also rescans on a timer and at start.

use super::Wake;
use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};
use std::path::Path;
use std::sync::mpsc::Sender;

/// Starts watching `dir`; the watcher lives as long as the returned value.
pub fn watch(dir: &Path, wake: Sender<Wake>) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only arrivals matter: our own reads and removals must not wake
        // the loop (opening the directory to scan it is an event too).
        // Errors (an overflow) are hints as well: scan.
        let arrival = match &res {
            Ok(e) => matches!(
                e.kind,
                EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) | EventKind::Any
            ),
            Err(_) => true,
        };
        if arrival {
            let _ = wake.send(Wake::Spool);
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
