//! The dispatcher: one pass over the spool. Reads every waiting event,
//! folds them per zone, deploys the result as one batch, and only then
//! removes the applied events and moves the malformed ones to `failed/`.
//!
//! Every well-formed event is applied to its zone's desired state and
//! leaves the spool once that state is durable, whether or not the zone
//! can be served: a zone `named` would refuse is held by the deploy step,
//! never failed here. So the result does not depend on how the events
//! happen to be cut into passes.

use crate::deploy::{DeployError, Deployer, Options, Report};
use crate::error::ApiError;
use crate::logtext::Escaped;
use crate::model::event::{self, Body, Event};
use crate::serial::Now;
use crate::spool::{Entry, GROUP_SUFFIX, Spool};
use crate::state::{self, Fate};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub events: usize,
    pub applied: usize,
    pub replays: usize,
    pub duplicates: usize,
    pub failed: usize,
    pub zones_written: usize,
    pub zones_deleted: usize,
    /// Zones of this pass that are held (named would refuse them).
    pub zones_held: usize,
    /// Zones installed but not confirmed served.
    pub pending: usize,
    /// The pass stopped at its limit: more events wait.
    pub more: bool,
}

/// Why a pass stopped: nothing was lost, the events stay in `new/`.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("failed to read or update the spool")]
    Spool(#[source] std::io::Error),
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

struct Item {
    /// The spool file the event came from.
    name: String,
    /// For a group file: the line number and the line's bytes.
    line: Option<(usize, Vec<u8>)>,
    event: Event,
    fate: Option<Fate>,
}

/// Most events taken in one pass: a backlog is worked off in bounded
/// passes, so memory stays bounded. Large, since each pass pays for its
/// zones once (render, check, install, one reload): a burst of 100,000
/// events over 10,000 zones is one pass of 10,000 zones, not five.
pub const MAX_PASS_EVENTS: usize = 100_000;
/// Most spool files read in one pass.
const MAX_PASS_FILES: usize = 5000;

fn decode(bytes: &[u8]) -> Result<Event, ApiError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ApiError::new("parse_error", None, format!("not valid UTF-8: {e}")))
        .and_then(event::decode_event)
}

/// Processes what waits in the spool (at most [`MAX_PASS_EVENTS`]).
pub fn run_once(deployer: &mut Deployer, spool: &Spool, now: Now) -> Result<Stats, DispatchError> {
    let mut stats = Stats::default();
    let names = spool
        .names(MAX_PASS_FILES + 1)
        .map_err(DispatchError::Spool)?;
    stats.more = names.len() > MAX_PASS_FILES;
    let mut items = Vec::new();
    let mut groups = Vec::new();
    // Bytes read in this pass: a backlog of large files is worked off in
    // passes of at most `spool.max_pass_bytes`, so memory stays bounded.
    let mut bytes_read = 0u64;
    for name in names.into_iter().take(MAX_PASS_FILES) {
        // Decoding a large backlog is work too: the watchdog is fed here.
        crate::progress::beat();
        if stats.events >= MAX_PASS_EVENTS || bytes_read >= spool.max_pass_bytes() {
            stats.more = true;
            break;
        }
        let entry = spool.read_entry(name);
        bytes_read += entry.size();
        match entry {
            Entry::Refused { name, reason } => {
                stats.events += 1;
                tracing::warn!(file = %Escaped(&name), reason = %Escaped(&reason), "refused spool entry");
                let e = ApiError::new("refused", None, format!("spool entry {reason}"));
                spool
                    .fail(&name, None, &[e])
                    .map_err(DispatchError::Spool)?;
                stats.failed += 1;
            }
            Entry::Ready { name, bytes } if name.ends_with(GROUP_SUFFIX) => {
                for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    stats.events += 1;
                    match decode(line) {
                        Ok(event) => items.push(Item {
                            name: name.clone(),
                            line: Some((i, line.to_vec())),
                            event,
                            fate: None,
                        }),
                        Err(e) => {
                            spool
                                .fail_line(&name, i, line, None, &[e])
                                .map_err(DispatchError::Spool)?;
                            stats.failed += 1;
                        }
                    }
                }
                groups.push(name);
            }
            Entry::Ready { name, bytes } => {
                stats.events += 1;
                match decode(&bytes) {
                    Ok(event) => items.push(Item {
                        name,
                        line: None,
                        event,
                        fate: None,
                    }),
                    Err(e) => {
                        tracing::warn!(file = %Escaped(&name), error = %Escaped(&e.to_string()), "undecodable event");
                        spool
                            .fail(&name, None, &[e])
                            .map_err(DispatchError::Spool)?;
                        stats.failed += 1;
                    }
                }
            }
        }
    }
    // A sync spans zones: it runs alone, between the events before and
    // after it.
    let mut start = 0;
    while start < items.len() {
        let end = items[start..]
            .iter()
            .position(|i| matches!(i.event.body, Body::Sync { .. }))
            .map_or(items.len(), |p| start + p);
        if end > start {
            zone_events(deployer, &mut items[start..end], now, &mut stats)?;
        }
        if end < items.len() {
            sync_event(deployer, &mut items[end], now, &mut stats)?;
        }
        start = end + 1;
    }
    let mut done = Vec::new();
    for item in &items {
        let _span = tracing::info_span!("event", id = %Escaped(&item.event.id), zone = %Escaped(item.event.zone_uuid().unwrap_or("*")), r#type = item.event.type_name()).entered();
        match &item.fate {
            Some(Fate::Failed(errors)) => {
                tracing::warn!(errors = %Escaped(&crate::error::ApiErrors(errors.clone()).to_string()), "event failed");
                match &item.line {
                    Some((i, bytes)) => {
                        spool.fail_line(&item.name, *i, bytes, Some(&item.event.id), errors)
                    }
                    None => spool.fail(&item.name, Some(&item.event.id), errors),
                }
                .map_err(DispatchError::Spool)?;
                stats.failed += 1;
            }
            Some(Fate::Replay) => {
                tracing::info!(seq = item.event.seq, "replay skipped");
                stats.replays += 1;
                done.push(item.name.clone());
            }
            Some(Fate::Duplicate) => {
                tracing::info!("duplicate id skipped");
                stats.duplicates += 1;
                done.push(item.name.clone());
            }
            Some(Fate::Applied) | None => {
                tracing::debug!("applied");
                stats.applied += 1;
                done.push(item.name.clone());
            }
        }
    }
    // A group file leaves the spool once every line of it is done.
    done.retain(|n| !n.ends_with(GROUP_SUFFIX));
    done.extend(groups);
    spool.remove(&done).map_err(DispatchError::Spool)?;
    stats.pending = deployer.pending().len();
    Ok(stats)
}

fn zone_events(
    deployer: &mut Deployer,
    items: &mut [Item],
    now: Now,
    stats: &mut Stats,
) -> Result<(), DispatchError> {
    let events: Vec<&Event> = items.iter().map(|i| &i.event).collect();
    let batch = state::fold_batch(&events, |uuid| {
        crate::progress::beat();
        deployer.memory(uuid)
    });
    let fates = batch.fates;
    for item in items.iter() {
        crate::metrics::arrived_event(&item.name, item.event.zone_uuid());
    }
    let report = deployer.apply(batch.changes, Options::default(), now)?;
    crate::metrics::settle_after(deployer);
    count(&report, stats);
    for (item, fate) in items.iter_mut().zip(fates) {
        item.fate = fate;
    }
    Ok(())
}

fn count(report: &Report, stats: &mut Stats) {
    stats.zones_written += report.written.len();
    stats.zones_deleted += report.deleted.len();
    stats.zones_held += report.held.len();
    if let Some(e) = &report.reload_error {
        tracing::warn!(error = %e, pending = report.pending.len(), "named not confirmed; will retry");
    }
}

fn sync_event(
    deployer: &mut Deployer,
    item: &mut Item,
    now: Now,
    stats: &mut Stats,
) -> Result<(), DispatchError> {
    let Body::Sync { zones } = &item.event.body else {
        return Ok(());
    };
    let sync = state::sync_changes(deployer.records(), &item.event, zones);
    let changes = sync.changes;
    // Fleet mode: a sync that would remove too many zones at once is
    // refused into failed/ with the share named; replaying it past the
    // guard (`import --allow-mass-delete` of the same zones) is the
    // operator's call. A pull's own sync (`pull-…`) was checked by the
    // pull against the same share, or let through by its
    // `--allow-mass-delete`.
    let pulled = item.event.id.starts_with(crate::pull::SYNC_ID_PREFIX);
    if let Err(e) = deployer.check_removals(&changes, pulled) {
        tracing::error!(error = %e, "sync refused");
        item.fate = Some(Fate::Failed(vec![e]));
        return Ok(());
    }
    let report = deployer.apply(changes, Options::default(), now)?;
    count(&report, stats);
    item.fate = Some(state::sync_fate(&sync.malformed));
    Ok(())
}
