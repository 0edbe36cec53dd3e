//! A liveness heartbeat: long-running steps (rendering, checking and
//! installing zones one by one, waiting for serials) advance a counter, and
//! the systemd watchdog is only fed while it moves. A daemon stuck in one
//! step stops feeding it; a daemon busy with a large batch does not.

use std::sync::atomic::{AtomicU64, Ordering};

static HEARTBEAT: AtomicU64 = AtomicU64::new(0);

/// Records that work advanced.
pub fn beat() {
    HEARTBEAT.fetch_add(1, Ordering::Relaxed);
}

/// The current count.
pub fn count() -> u64 {
    HEARTBEAT.load(Ordering::Relaxed)
}
