//! The agent daemon: event sources (the spool watched with inotify and a
//! timer, the Unix socket), the dispatch loop, signals, the metrics
//! endpoint and systemd.
//!
//! One thread runs the loop and does every deploy, so deploys never overlap
//! and events that arrive during one are batched into the next: the first
//! event after idle is deployed at once, a burst costs one render, one check
//! and one reload per zone. The loop blocks on one channel of [`Wake`]s.
//! Everything that feeds it is I/O and runs on a small tokio runtime (two
//! workers): the socket's connections, the signals, the timer that wakes the
//! loop for rescans and retries, the metrics endpoint and the systemd
//! watchdog. Two blocking steps keep threads of their own: the socket's
//! committer (decode and fsync) and inotify (`notify`'s thread). SIGTERM
//! stops accepting and exits after the deploy in flight; SIGHUP reloads the
//! configuration.

pub mod dispatch;
pub(crate) mod http;
pub mod socket;
pub mod systemd;
pub mod watch;

use crate::cli::now;
use crate::config::{self, Config};
use crate::deploy::Deployer;
use crate::error::{EXIT_CONFIG, EXIT_FAILURE, EXIT_HELD, EXIT_OK};
use crate::spool::Spool;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Why the loop should look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something may have arrived in the spool.
    Spool,
    /// Stop after the deploy in flight.
    Terminate,
    /// Re-read the configuration.
    Reload,
    /// The timer the loop armed ran out (rescan, retry, resync).
    Timer,
}

/// Longest wait between retries of a failed deploy or reload.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the daemon (or, with `once`, drains the spool and exits). Returns
/// the exit code.
pub fn run(config: &Config, config_path: Option<&Path>, once: bool) -> i32 {
    let reconfigure = match crate::doctor::check_at_start(config) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let spool = match Spool::open(&config.paths.spool, config.max_event_bytes) {
        Ok(s) => s.with_limits(config.spool_limits),
        Err(e) => {
            tracing::error!(path = %config.paths.spool.display(), error = %e, "cannot open the spool");
            return EXIT_FAILURE;
        }
    };
    match spool.clean_tmp(Duration::from_hours(1)) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed temporary files of dead writers"),
        Err(e) => tracing::warn!(error = %e, "cannot clean spool/tmp"),
    }
    let l = config.spool_limits;
    match spool.prune_failed(
        std::time::SystemTime::now(),
        l.failed_keep,
        l.failed_max_age,
    ) {
        Ok(0) => {}
        Ok(n) => tracing::info!(events = n, "pruned spool/failed"),
        Err(e) => tracing::warn!(error = %e, "cannot prune spool/failed"),
    }
    let mut deployer = match Deployer::open(config.clone()) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot open the state");
            return EXIT_FAILURE;
        }
    };
    match deployer.recover(now()) {
        Ok(r) if !r.written.is_empty() => {
            tracing::info!(
                zones = r.written.len(),
                "zones of an interrupted install written again"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot finish an interrupted install yet");
        }
    }
    if reconfigure && let Err(e) = deployer.reconfigure() {
        tracing::warn!(error = %error_chain(&e), "cannot reconfigure named yet");
    }
    let notifier = std::sync::Arc::new(systemd::Notifier::from_env());
    let idle = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Wake>();
    let mut _watcher = None;
    let mut io = None;
    if !once {
        match watch::watch(&spool.new_dir(), tx.clone()) {
            Ok(w) => _watcher = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; relying on the rescan timer");
            }
        }
        match Io::start(config, &spool, &tx, &idle, &notifier) {
            Ok(started) => io = Some(started),
            Err(code) => return code,
        }
    }
    notifier.notify("READY=1");
    record_zones(&deployer);
    tracing::info!(
        zones = deployer.zone_count(),
        held = deployer.held_count(),
        spool = %config.paths.spool.display(),
        socket = config.socket.path.as_ref().filter(|_| !once).map(|p| p.display().to_string()),
        metrics = config.metrics.listen.filter(|_| !once).map(|a| a.to_string()),
        "zoneagent ready"
    );

    let mut failures = 0usize;
    let mut backoff = Duration::ZERO;
    let mut retry_at: Option<Instant> = None;
    let mut any_failed = false;
    let mut more = false;
    let mut resync = crate::pull::Resync::new(&config.api);
    let mut verifier = crate::verify::Periodic::new(config);
    // run --once waits for confirmation once: in the deploy of its first
    // pass, or, when that pass has no events, in one retry of the pending
    // reloads.
    let mut waited = false;
    loop {
        crate::progress::beat();
        let due = retry_at.is_none_or(|t| Instant::now() >= t);
        if !once {
            resync.poll(&mut deployer);
            verifier.poll(&mut deployer);
        }
        if due {
            match dispatch::run_once(&mut deployer, &spool, now()) {
                Ok(stats) => {
                    crate::metrics::events(crate::metrics::EventCounts {
                        applied: stats.applied,
                        replays: stats.replays,
                        duplicates: stats.duplicates,
                        failed: stats.failed,
                    });
                    if stats.events > 0 {
                        tracing::info!(
                            events = stats.events,
                            applied = stats.applied,
                            replays = stats.replays,
                            duplicates = stats.duplicates,
                            failed = stats.failed,
                            zones_written = stats.zones_written,
                            zones_deleted = stats.zones_deleted,
                            zones_held = stats.zones_held,
                            pending = stats.pending,
                            "batch done"
                        );
                    }
                    any_failed |= stats.failed > 0;
                    more = stats.more;
                    let may_wait = !once || (!waited && stats.events == 0);
                    waited = true;
                    if stats.pending > 0 && may_wait {
                        let r = deployer.retry_pending();
                        if r.pending.is_empty() {
                            backoff = Duration::ZERO;
                            retry_at = None;
                        } else {
                            backoff = next_backoff(backoff);
                            retry_at = Some(Instant::now() + backoff);
                            tracing::warn!(
                                pending = r.pending.len(),
                                retry_in_ms =
                                    u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                                "named has not loaded every zone yet"
                            );
                        }
                    } else {
                        backoff = Duration::ZERO;
                        retry_at = None;
                    }
                    failures += stats.failed;
                    record_zones(&deployer);
                    notifier.notify(&format!(
                        "STATUS=zones={} held={} pending_reloads={} failed_events_total={failures}",
                        deployer.zone_count(),
                        deployer.held_count(),
                        deployer.pending().len()
                    ));
                    if once && stats.events == 0 {
                        break;
                    }
                }
                Err(e) => {
                    backoff = next_backoff(backoff);
                    retry_at = Some(Instant::now() + backoff);
                    tracing::error!(
                        error = %error_chain(&e),
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "batch failed; events stay in the spool"
                    );
                    notifier.notify(&format!("STATUS=error, retrying in {backoff:?}: {e}"));
                    if once {
                        return EXIT_FAILURE;
                    }
                }
            }
        }
        if once || more {
            // A pass stopped at its limit: go on at once, not at the next
            // rescan.
            more = false;
            continue;
        }
        let mut wait = Duration::from_secs_f64(deployer.config.rescan_seconds);
        if let Some(t) = retry_at {
            wait = wait.min(t.saturating_duration_since(Instant::now()));
        }
        if let Some(t) = resync.wait() {
            wait = wait.min(t);
        }
        if let Some(t) = verifier.wait() {
            wait = wait.min(t);
        }
        let mut stop = false;
        idle.store(true, std::sync::atomic::Ordering::Relaxed);
        let received = match &io {
            Some(io) => {
                io.wake_in(wait);
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            }
            None => rx.recv_timeout(wait),
        };
        idle.store(false, std::sync::atomic::Ordering::Relaxed);
        match received {
            Ok(w) => {
                // Take every wake-up that is already there: one pass serves
                // them all.
                for w in std::iter::once(w).chain(rx.try_iter()) {
                    match w {
                        Wake::Spool | Wake::Timer => {}
                        Wake::Terminate => stop = true,
                        Wake::Reload => {
                            if reload_config(&mut deployer, config_path) {
                                rebuild_all(&mut deployer);
                            }
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        if stop {
            notifier.notify("STOPPING=1");
            tracing::info!("stopping");
            break;
        }
    }
    if let Some(io) = io {
        io.stop();
    }
    if let Some(path) = &config.socket.path {
        let _ = std::fs::remove_file(path);
    }
    if once && !deployer.pending().is_empty() {
        explain_unconfirmed(&deployer);
    }
    if once && (any_failed || !deployer.pending().is_empty()) {
        EXIT_FAILURE
    } else if once && deployer.held_count() > 0 {
        tracing::warn!(
            held = deployer.held_count(),
            "zones are held: named would refuse them (see `zoneagent status`)"
        );
        EXIT_HELD
    } else {
        EXIT_OK
    }
}

/// Says why reloads are still unconfirmed at the end of `run --once`.
fn explain_unconfirmed(deployer: &Deployer) {
    let zones = deployer.pending_serials();
    let why = crate::bind::confirm::explain_pending(
        deployer.config.bind.server,
        &zones,
        Duration::from_secs(1),
    );
    for line in why.lines() {
        tracing::error!(unconfirmed = zones.len(), "{line}");
    }
}

fn next_backoff(b: Duration) -> Duration {
    if b.is_zero() {
        Duration::from_millis(500)
    } else {
        (b * 2).min(MAX_BACKOFF)
    }
}

/// Re-renders every zone after a configuration change (nameservers, SOA,
/// TTL, rules): zones whose file comes out the same are left alone, and
/// held zones the new configuration makes servable are deployed.
fn rebuild_all(deployer: &mut Deployer) {
    let changes = deployer.everything(&std::collections::BTreeSet::new());
    match deployer.apply(changes, crate::deploy::Options::default(), now()) {
        Ok(r) => tracing::info!(
            written = r.written.len(),
            unchanged = r.unchanged,
            held = r.held.len(),
            "rebuilt after the configuration change"
        ),
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "rebuild after the configuration change failed; the next change retries");
        }
    }
}

/// Re-reads the configuration; returns whether it was taken.
fn reload_config(deployer: &mut Deployer, path: Option<&Path>) -> bool {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no config file to re-read");
        return false;
    };
    match config::load(path) {
        Ok(new) => {
            if new.paths != deployer.config.paths || new.socket != deployer.config.socket {
                tracing::warn!(
                    "SIGHUP: changes to [paths] and [socket] take effect at the next start"
                );
            }
            crate::exec::set_default_timeout(new.bind.tool_timeout);
            let paths = deployer.config.paths.clone();
            let socket = deployer.config.socket.clone();
            deployer.set_config(Config {
                paths,
                socket,
                ..new
            });
            tracing::info!(path = %path.display(), "configuration reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "SIGHUP: configuration refused; keeping the old one");
            false
        }
    }
}

/// The daemon's I/O: a tokio runtime with every task that feeds the loop,
/// and the timer the loop arms before it waits.
struct Io {
    runtime: tokio::runtime::Runtime,
    timer: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

impl Io {
    /// Starts the runtime and, on it, the socket, the signals, the timer,
    /// the metrics endpoint and the watchdog. A source that cannot start is
    /// fatal: the exit code is returned.
    fn start(
        config: &Config,
        spool: &Spool,
        tx: &mpsc::Sender<Wake>,
        idle: &std::sync::Arc<std::sync::atomic::AtomicBool>,
        notifier: &std::sync::Arc<systemd::Notifier>,
    ) -> Result<Io, i32> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("io")
            .enable_all()
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the I/O runtime");
                EXIT_FAILURE
            })?;
        let context = runtime.enter();
        if let Err(e) = socket::start(
            &config.socket,
            spool.clone(),
            config.max_event_bytes,
            tx.clone(),
        ) {
            tracing::error!(error = %e, "cannot open the socket");
            return Err(EXIT_CONFIG);
        }
        if let Some(addr) = config.metrics.listen {
            let health = http::Health::new(std::sync::Arc::clone(idle));
            match http::start(addr, spool.clone(), health) {
                Ok(bound) => tracing::info!(listen = %bound, "serving /metrics and /healthz"),
                Err(e) => {
                    tracing::error!(listen = %addr, error = %e, "cannot listen on metrics.listen");
                    return Err(EXIT_CONFIG);
                }
            }
        }
        if let Err(e) = signals(tx.clone()) {
            tracing::error!(error = %e, "cannot install signal handlers");
            return Err(EXIT_FAILURE);
        }
        notifier.spawn_watchdog(std::sync::Arc::clone(idle));
        let (timer, deadline) = tokio::sync::watch::channel(None);
        runtime.spawn(wake_at(deadline, tx.clone()));
        drop(context);
        Ok(Io { runtime, timer })
    }

    /// Arms the timer: one [`Wake::Timer`] after `wait`, unless the loop
    /// arms it again first.
    fn wake_in(&self, wait: Duration) {
        self.timer
            .send_replace(Some(tokio::time::Instant::now() + wait));
    }

    /// Stops every task; connections in flight are closed.
    fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// Sends [`Wake::Timer`] when the deadline the loop armed passes; a new
/// deadline replaces the old one.
async fn wake_at(
    mut deadline: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
    tx: mpsc::Sender<Wake>,
) {
    loop {
        let at = *deadline.borrow_and_update();
        if let Some(at) = at {
            tokio::select! {
                () = tokio::time::sleep_until(at) => {
                    if tx.send(Wake::Timer).is_err() {
                        return;
                    }
                    if deadline.changed().await.is_err() {
                        return;
                    }
                }
                changed = deadline.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        } else if deadline.changed().await.is_err() {
            return;
        }
    }
}

/// Turns SIGTERM and SIGINT into [`Wake::Terminate`], SIGHUP into
/// [`Wake::Reload`], on the current runtime.
fn signals(tx: mpsc::Sender<Wake>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let wake = tokio::select! {
                _ = term.recv() => Wake::Terminate,
                _ = int.recv() => Wake::Terminate,
                _ = hup.recv() => Wake::Reload,
            };
            if tx.send(wake).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Sets the zone gauges from the deployer.
fn record_zones(deployer: &Deployer) {
    let held = deployer.held_count();
    let pending = deployer.pending().len();
    crate::metrics::zones(crate::metrics::ZoneCounts {
        served: deployer.zone_count().saturating_sub(held + pending),
        held,
        pending,
    });
}

/// An error with its causes on one line, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
