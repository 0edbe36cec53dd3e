//! The agent's Prometheus metrics: one process-wide registry and the small
//! recording functions the deploy shell and the dispatcher call.
//!
//! Recording is a few atomic operations and never fails, so it happens
//! whether or not `[metrics] listen` is set; the daemon serves the registry
//! over HTTP (see [`crate::daemon::http`]) only when it is. Nothing here
//! does I/O or reads configuration: the core stays pure, and the shell
//! calls in with what it measured.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

/// What became of an event (`zoneagent_events_total{fate}`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FateLabels {
    fate: &'static str,
}

/// A step of a deploy (`zoneagent_deploy_duration_seconds{phase}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Decide and render the zone files.
    Render,
    /// `named-checkzone` on the new files.
    Check,
    /// Rename into place, save the records, write the include.
    Install,
    /// `rndc reload` / `reconfig`.
    Reload,
    /// Waiting for `named` to serve the new serials.
    Confirm,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Render => "render",
            Phase::Check => "check",
            Phase::Install => "install",
            Phase::Reload => "reload",
            Phase::Confirm => "confirm",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// How many events of a pass met each fate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub applied: usize,
    pub replays: usize,
    pub duplicates: usize,
    pub failed: usize,
}

/// How many zones are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneCounts {
    /// Desired zones `named` serves as they are (neither held nor pending).
    pub served: usize,
    /// Zones `named` would refuse; their last good version stays served.
    pub held: usize,
    /// Zones installed but not confirmed served yet.
    pub pending: usize,
}

type HistogramFn = fn() -> Histogram;

fn deploy_buckets() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Metrics {
    registry: Registry,
    events: Family<FateLabels, Counter>,
    deploy_duration: Family<PhaseLabels, Histogram, HistogramFn>,
    zones: Family<StateLabels, Gauge>,
    spool_depth: Gauge,
    rndc_failures: Counter,
    last_deploy: Gauge<f64, AtomicU64>,
    event_to_served: Histogram,
    drifted: Gauge,
    repairs: Counter,
    /// Zones (by uuid) with events waiting to be served, and when the
    /// oldest of them arrived in the spool.
    arrivals: Mutex<HashMap<String, SystemTime>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zoneagent");
        let events = Family::<FateLabels, Counter>::default();
        registry.register(
            "events",
            "Events taken from the spool, by what became of them",
            events.clone(),
        );
        let deploy_duration =
            Family::<PhaseLabels, Histogram, HistogramFn>::new_with_constructor(deploy_buckets);
        registry.register_with_unit(
            "deploy_duration",
            "Time spent in each phase of a deploy",
            Unit::Seconds,
            deploy_duration.clone(),
        );
        let zones = Family::<StateLabels, Gauge>::default();
        registry.register(
            "zones",
            "Desired zones: served, held (named would refuse them) or pending (installed, not confirmed)",
            zones.clone(),
        );
        let spool_depth = Gauge::default();
        registry.register(
            "spool_depth",
            "Files waiting in spool/new",
            spool_depth.clone(),
        );
        let rndc_failures = Counter::default();
        registry.register(
            "rndc_failures",
            "rndc runs that failed or timed out",
            rndc_failures.clone(),
        );
        let last_deploy = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_deploy_timestamp",
            "When zone files were last installed or archived (Unix time)",
            Unit::Seconds,
            last_deploy.clone(),
        );
        let event_to_served = Histogram::new(exponential_buckets(0.005, 2.0, 16));
        registry.register_with_unit(
            "event_to_served",
            "From an event's arrival in the spool until named serves its zone's new serial",
            Unit::Seconds,
            event_to_served.clone(),
        );
        let drifted = Gauge::default();
        registry.register(
            "drifted_zones",
            "Zones whose served data differed from the state at the last periodic verification",
            drifted.clone(),
        );
        let repairs = Counter::default();
        registry.register(
            "drift_repairs",
            "Drifted zones rewritten and reloaded by the periodic verification",
            repairs.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The agent's version; always 1",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        // Every label value exists from the start, so a scrape shows zeros
        // rather than missing series.
        for fate in ["applied", "replay", "duplicate", "failed"] {
            events.get_or_create(&FateLabels { fate }).inc_by(0);
        }
        for state in ["served", "held", "pending"] {
            zones.get_or_create(&StateLabels { state }).set(0);
        }
        Metrics {
            registry,
            events,
            deploy_duration,
            zones,
            spool_depth,
            rndc_failures,
            last_deploy,
            event_to_served,
            drifted,
            repairs,
            arrivals: Mutex::new(HashMap::new()),
        }
    }
}

/// Counts the events of one dispatcher pass.
pub fn events(counts: EventCounts) {
    let m = &*METRICS;
    for (fate, n) in [
        ("applied", counts.applied),
        ("replay", counts.replays),
        ("duplicate", counts.duplicates),
        ("failed", counts.failed),
    ] {
        m.events
            .get_or_create(&FateLabels { fate })
            .inc_by(n as u64);
    }
}

/// Records how long one phase of a deploy took.
pub fn phase(phase: Phase, took: Duration) {
    METRICS
        .deploy_duration
        .get_or_create(&PhaseLabels {
            phase: phase.label(),
        })
        .observe(took.as_secs_f64());
}

/// Records the render, check and install phases of a deploy that changed
/// files, from the instants each ended (`started` is the beginning), and
/// that files were deployed now.
pub fn deploy_phases(
    started: std::time::Instant,
    rendered: std::time::Instant,
    checked: std::time::Instant,
    installed: std::time::Instant,
) {
    let between = |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a);
    phase(Phase::Render, between(started, rendered));
    phase(Phase::Check, between(rendered, checked));
    phase(Phase::Install, between(checked, installed));
    deployed(SystemTime::now());
}

/// Records that zone files were installed or archived now.
pub fn deployed(at: SystemTime) {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    METRICS.last_deploy.set(secs);
}

/// Records a periodic verification: how many zones drifted, how many of
/// them were repaired.
pub fn verified(drifted: usize, repaired: usize) {
    METRICS
        .drifted
        .set(i64::try_from(drifted).unwrap_or(i64::MAX));
    METRICS.repairs.inc_by(repaired as u64);
}

/// Counts one failed `rndc` run.
pub fn rndc_failed() {
    METRICS.rndc_failures.inc();
}

/// Sets the zone gauges.
pub fn zones(counts: ZoneCounts) {
    let m = &*METRICS;
    for (state, n) in [
        ("served", counts.served),
        ("held", counts.held),
        ("pending", counts.pending),
    ] {
        m.zones
            .get_or_create(&StateLabels { state })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Sets the spool depth (files in `spool/new`).
pub fn spool_depth(files: usize) {
    METRICS
        .spool_depth
        .set(i64::try_from(files).unwrap_or(i64::MAX));
}

/// Notes that events for zone `uuid` arrived at `at`; the oldest arrival
/// not yet served is kept.
pub fn arrived(uuid: &str, at: SystemTime) {
    let mut a = METRICS
        .arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    a.entry(uuid.to_owned())
        .and_modify(|t| *t = (*t).min(at))
        .or_insert(at);
}

/// Observes the arrival-to-served time of every zone in `uuids`, which
/// `named` now serves.
pub fn served<'a>(uuids: impl IntoIterator<Item = &'a str>, now: SystemTime) {
    let m = &*METRICS;
    let mut a = m
        .arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for uuid in uuids {
        if let Some(at) = a.remove(uuid) {
            let took = now.duration_since(at).unwrap_or_default();
            m.event_to_served.observe(took.as_secs_f64());
        }
    }
}

/// Forgets the arrivals of zones that will not be served by a reload: their
/// events changed nothing, or the zone is held. `waiting` says whether a
/// zone still waits for `named` (then its arrival is kept).
pub fn settle(waiting: impl Fn(&str) -> bool) {
    let mut a = METRICS
        .arrivals
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    a.retain(|uuid, _| waiting(uuid));
}

/// Notes the arrival of an event of zone `uuid` read from spool file
/// `spool_name` (the time is read from the name, else now).
pub fn arrived_event(spool_name: &str, uuid: Option<&str>) {
    if let Some(uuid) = uuid {
        arrived(uuid, arrival_of(spool_name).unwrap_or_else(SystemTime::now));
    }
}

/// After a batch: keeps the arrivals of the zones that still wait for
/// `named`, forgets the rest (see [`settle`]).
pub fn settle_after(deployer: &crate::deploy::Deployer) {
    let pending: std::collections::HashSet<String> = deployer.pending().into_iter().collect();
    let records = deployer.records();
    settle(|uuid| {
        records
            .get(uuid)
            .and_then(|r| r.deployed.as_ref())
            .is_some_and(|d| pending.contains(&d.domain))
    });
}

/// When an event arrived, from its spool file's name (which starts with the
/// time in nanoseconds, see [`crate::spool::unique_name`]); `None` for
/// names written by others.
pub fn arrival_of(spool_name: &str) -> Option<SystemTime> {
    let digits = spool_name.split('.').next()?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u64 = digits.parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// The registry in the OpenMetrics text format.
pub fn encode() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_is_read_from_the_spool_name() {
        let t = arrival_of("00000001700000000123.42.000001.abcd.json").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_nanos(1_700_000_000_123)
        );
        assert_eq!(arrival_of("event-7.json"), None);
        assert_eq!(arrival_of(""), None);
    }

    #[test]
    fn encoding_names_follow_the_conventions() {
        events(EventCounts {
            applied: 2,
            ..EventCounts::default()
        });
        phase(Phase::Check, Duration::from_millis(3));
        let text = encode();
        for name in [
            "zoneagent_events_total{fate=\"applied\"}",
            "zoneagent_events_total{fate=\"failed\"}",
            "zoneagent_deploy_duration_seconds_bucket{",
            "zoneagent_zones{state=\"held\"}",
            "zoneagent_spool_depth ",
            "zoneagent_rndc_failures_total ",
            "zoneagent_last_deploy_timestamp_seconds ",
            "zoneagent_event_to_served_seconds_count ",
            "zoneagent_build_info{version=\"",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
