//! systemd's notification protocol (`sd_notify(3)`): `READY=1`, `STATUS=`,
//! `WATCHDOG=1`, `STOPPING=1` as datagrams to `$NOTIFY_SOCKET`. Without
//! that variable every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, if there is one.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// Half the watchdog interval, when systemd asked for pings.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (the shell's job: the
    /// daemon calls this once at start).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()?
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path).ok()?
            };
            let sock = UnixDatagram::unbound().ok()?;
            // A full queue at the manager must never stall the event loop.
            sock.set_nonblocking(true).ok()?;
            Some((sock, addr))
        });
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|_| {
                std::env::var("WATCHDOG_PID")
                    .ok()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_none_or(|p| p == std::process::id())
            })
            .map(|us| Duration::from_micros(us / 2));
        Notifier { socket, watchdog }
    }

    /// Feeds the watchdog from a task on the current tokio runtime while
    /// [`crate::progress`] moves or the loop is idle (`idle` is set by the
    /// loop while it waits for work): a busy daemon is alive, a daemon stuck
    /// inside one step is not. Must be called within the runtime's context.
    pub fn spawn_watchdog(
        self: &std::sync::Arc<Self>,
        idle: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let me = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let mut last = crate::progress::count();
            let mut tick = tokio::time::interval(interval);
            // The first tick is at once; the first ping comes one interval in.
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = crate::progress::count();
                if now != last || idle.load(std::sync::atomic::Ordering::Relaxed) {
                    me.notify("WATCHDOG=1");
                }
                last = now;
            }
        });
    }

    /// Sends one notification (e.g. `READY=1`); errors are ignored, as the
    /// protocol asks.
    pub fn notify(&self, state: &str) {
        if let Some((sock, addr)) = &self.socket {
            let _ = sock.send_to_addr(state.as_bytes(), addr);
        }
    }
}
