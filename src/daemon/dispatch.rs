//! The dispatcher: one pass over the spool. Reads every waiting event,
//! folds them per zone, deploys the result as one batch, and only then
//! removes the applied events and moves the refused ones to `failed/`.
//!
//! A zone BIND refuses after folding several events is retried one event
//! at a time, so only the event that broke it fails.

use crate::deploy::{Change, DeployError, Deployer, Options, Report};
use crate::error::ApiError;
use crate::model::event::{self, Body, Event};
use crate::serial::Now;
use crate::spool::{Entry, GROUP_SUFFIX, Spool};
use crate::state::{self, Fate, Memory};

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
/// passes, so the loop stays responsive and memory stays bounded.
pub const MAX_PASS_EVENTS: usize = 20_000;
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
    for name in names.into_iter().take(MAX_PASS_FILES) {
        if stats.events >= MAX_PASS_EVENTS {
            stats.more = true;
            break;
        }
        match spool.read_entry(name) {
            Entry::Refused { name, reason } => {
                stats.events += 1;
                tracing::warn!(file = %name, %reason, "refused spool entry");
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
                        tracing::warn!(file = %name, error = %e, "undecodable event");
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
        let _span = tracing::info_span!("event", id = %item.event.id, zone = item.event.zone_uuid().unwrap_or("*")).entered();
        match &item.fate {
            Some(Fate::Failed(errors)) => {
                tracing::warn!(r#type = item.event.type_name(), errors = %crate::error::ApiErrors(errors.clone()), "event failed");
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
                tracing::debug!(r#type = item.event.type_name(), "applied");
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

fn memory_of(deployer: &Deployer, uuid: &str) -> Memory {
    if let Some(s) = deployer.states.get(uuid) {
        Memory {
            zone: Some(s.zone.clone()),
            last_seq: s.last_seq,
            recent_ids: s.recent_ids.clone(),
        }
    } else if let Some(t) = deployer.tombstones.get(uuid) {
        Memory {
            zone: None,
            last_seq: t.last_seq,
            recent_ids: t.recent_ids.clone(),
        }
    } else {
        Memory::default()
    }
}

/// The change that brings the deployer from `memory` to `folded`.
fn change_for(uuid: &str, existed: bool, folded: state::Folded) -> Option<Change> {
    if !folded.touched {
        return None;
    }
    match folded.zone {
        Some(zone) => Some(Change::Put {
            zone,
            seq: folded.last_seq,
            recent_ids: Some(folded.recent_ids),
        }),
        None if existed => Some(Change::Delete {
            uuid: uuid.to_owned(),
            seq: folded.last_seq,
            recent_ids: Some(folded.recent_ids),
        }),
        None => None,
    }
}

fn zone_events(
    deployer: &mut Deployer,
    items: &mut [Item],
    now: Now,
    stats: &mut Stats,
) -> Result<(), DispatchError> {
    let events: Vec<&Event> = items.iter().map(|i| &i.event).collect();
    let by_zone = state::group_by_zone(&events);
    let mut fates: Vec<Option<Fate>> = vec![None; items.len()];
    let mut changes = Vec::new();
    for (uuid, positions) in &by_zone {
        let memory = memory_of(deployer, uuid);
        let existed = memory.zone.is_some();
        let list: Vec<&Event> = positions.iter().map(|p| events[*p]).collect();
        let (zone_fates, folded) = state::fold(&memory, &list, &deployer.config.zone);
        for (p, fate) in positions.iter().zip(zone_fates) {
            fates[*p] = Some(fate);
        }
        if let Some(c) = change_for(uuid, existed, folded) {
            changes.push(c);
        }
    }
    let report = deployer.apply(changes, Options::default(), now)?;
    count(&report, stats);
    for rejection in report.rejected {
        let Some(positions) = by_zone.get(&rejection.uuid) else {
            continue;
        };
        let applied: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|p| fates[*p] == Some(Fate::Applied))
            .collect();
        if applied.len() <= 1 {
            for p in applied {
                fates[p] = Some(Fate::Failed(rejection.errors.clone()));
            }
            continue;
        }
        // Several events together were refused: apply them one at a time.
        for p in applied {
            let memory = memory_of(deployer, &rejection.uuid);
            let existed = memory.zone.is_some();
            let (f, folded) = state::fold(&memory, &[&items[p].event], &deployer.config.zone);
            let mut fate = f.into_iter().next().unwrap_or(Fate::Applied);
            if fate == Fate::Applied
                && let Some(c) = change_for(&rejection.uuid, existed, folded)
            {
                let r = deployer.apply(vec![c], Options::default(), now)?;
                count(&r, stats);
                if let Some(rej) = r.rejected.into_iter().next() {
                    fate = Fate::Failed(rej.errors);
                }
            }
            fates[p] = Some(fate);
        }
    }
    for (item, fate) in items.iter_mut().zip(fates) {
        item.fate = fate;
    }
    Ok(())
}

fn count(report: &Report, stats: &mut Stats) {
    stats.zones_written += report.written.len();
    stats.zones_deleted += report.deleted.len();
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
    let seq = item.event.seq;
    let newer = |last: Option<u64>| match (seq, last) {
        (Some(s), Some(l)) => s > l,
        _ => true,
    };
    let wanted: std::collections::BTreeSet<&str> = zones.iter().map(|z| z.uuid.as_str()).collect();
    let mut changes: Vec<Change> = deployer
        .states
        .iter()
        .filter(|(uuid, s)| !wanted.contains(uuid.as_str()) && newer(s.last_seq))
        .map(|(uuid, _)| Change::Delete {
            uuid: uuid.clone(),
            seq,
            recent_ids: None,
        })
        .collect();
    for zone in zones {
        let last = deployer
            .states
            .get(&zone.uuid)
            .map(|s| s.last_seq)
            .or_else(|| deployer.tombstones.get(&zone.uuid).map(|t| t.last_seq))
            .flatten();
        if newer(last) {
            changes.push(Change::Put {
                zone: zone.clone(),
                seq: seq.or(last),
                recent_ids: None,
            });
        }
    }
    let report = deployer.apply(changes, Options::default(), now)?;
    count(&report, stats);
    item.fate = Some(if report.rejected.is_empty() {
        Fate::Applied
    } else {
        let mut errors = vec![ApiError::new(
            "partially_applied",
            Some("zones"),
            format!(
                "sync applied to every zone but {}; those keep their last good version",
                report.rejected.len()
            ),
        )];
        for r in report.rejected {
            for mut e in r.errors {
                e.detail = format!("zone {} ({}): {}", r.domain, r.uuid, e.detail);
                errors.push(e);
            }
        }
        Fate::Failed(errors)
    });
    Ok(())
}
