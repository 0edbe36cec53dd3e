//! Event application: what a zone looks like after an event, and a batch of
//! events folded into one change per zone.
//!
//! Pure. Each event gets a fate (applied, replay, duplicate or failed with
//! its reasons). Only a *malformed* event fails: one the API itself would
//! have refused (a field rule of [`validate::record_well_formed`] or
//! [`validate::zone_well_formed`]), or one that does not fit the zone (a
//! record for a zone that does not exist). A well-formed event is always
//! applied to the zone's desired state, even when the result is a zone
//! `named` would refuse: that zone is held later, by [`crate::decide`], and
//! no event is lost for it. `sync` events are not folded here: they span
//! zones and the daemon runs them alone.

use crate::decide::Wanted;
use crate::error::ApiError;
use crate::model::event::{Body, Event};
use crate::model::zone::Zone;
use crate::store::ZoneRecord;
use crate::validate;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// How many event ids a zone remembers for de-duplication.
pub const RECENT_IDS: usize = 4096;

/// What an event does to its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The zone becomes this (`None`: it is deleted).
    Changed(Option<Zone>),
    /// Nothing to change (the state already says so).
    NoOp,
}

fn not_found(field: &str, detail: String) -> ApiError {
    ApiError::new("not_found", Some(field), detail)
}

fn check_id(field: &str, value: &str) -> Result<(), ApiError> {
    validate::check_uuid(value).map_err(|e| ApiError::validation(field, e))
}

/// Whether two spellings name the same domain (case, trailing dot, IDNA).
fn same_domain(a: &str, b: &str) -> bool {
    match (
        crate::model::name::parse_domain(a),
        crate::model::name::parse_domain(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Applies one zone event to the zone as it is (`None`: no such zone).
pub fn apply(current: Option<&Zone>, event: &Event) -> Result<Outcome, ApiError> {
    match &event.body {
        Body::ZoneSnapshot { zone } => {
            check_id("zone.uuid", &zone.uuid)?;
            validate::zone_well_formed(zone).map_err(first_of)?;
            if current == Some(zone) {
                Ok(Outcome::NoOp)
            } else {
                Ok(Outcome::Changed(Some(zone.clone())))
            }
        }
        Body::ZoneCreated { zone } => {
            check_id("zone.uuid", &zone.uuid)?;
            crate::model::name::parse_domain(&zone.domain)
                .map_err(|e| ApiError::validation("domain", e))?;
            match current {
                None => Ok(Outcome::Changed(Some(Zone {
                    uuid: zone.uuid.clone(),
                    domain: zone.domain.clone(),
                    created_at: zone.created_at.clone(),
                    records: Vec::new(),
                }))),
                Some(z) if same_domain(&z.domain, &zone.domain) => Ok(Outcome::NoOp),
                Some(z) => Err(ApiError::new(
                    "conflict",
                    Some("zone.domain"),
                    format!(
                        "zone {} already exists with domain `{}`; use zone.snapshot to replace it",
                        zone.uuid, z.domain
                    ),
                )),
            }
        }
        Body::ZoneDeleted { zone_uuid } => {
            check_id("zone_uuid", zone_uuid)?;
            Ok(match current {
                None => Outcome::NoOp,
                Some(_) => Outcome::Changed(None),
            })
        }
        Body::RecordCreated { zone_uuid, record } | Body::RecordUpdated { zone_uuid, record } => {
            check_id("zone_uuid", zone_uuid)?;
            check_id("record.uuid", &record.uuid)?;
            let zone = current.ok_or_else(|| {
                not_found("zone_uuid", format!("zone {zone_uuid} does not exist"))
            })?;
            let origin = crate::model::name::parse_domain(&zone.domain)
                .map_err(|e| ApiError::validation("zone.domain", e))?;
            validate::record_well_formed(record, &origin).map_err(first_of)?;
            let mut zone = zone.clone();
            match zone.records.iter_mut().find(|r| r.uuid == record.uuid) {
                Some(existing) if existing == record => return Ok(Outcome::NoOp),
                Some(existing) => {
                    if matches!(event.body, Body::RecordCreated { .. }) {
                        return Err(ApiError::new(
                            "conflict",
                            Some("record.uuid"),
                            format!(
                                "record {} already exists with other data; use record.updated",
                                record.uuid
                            ),
                        ));
                    }
                    *existing = record.clone();
                }
                // An update for a record we never saw carries the whole
                // record, so it is created rather than lost.
                None => zone.records.push(record.clone()),
            }
            Ok(Outcome::Changed(Some(zone)))
        }
        Body::RecordDeleted {
            zone_uuid,
            record_uuid,
        } => {
            check_id("zone_uuid", zone_uuid)?;
            check_id("record_uuid", record_uuid)?;
            let zone = current.ok_or_else(|| {
                not_found("zone_uuid", format!("zone {zone_uuid} does not exist"))
            })?;
            if !zone.records.iter().any(|r| r.uuid == *record_uuid) {
                return Ok(Outcome::NoOp);
            }
            let mut zone = zone.clone();
            zone.records.retain(|r| r.uuid != *record_uuid);
            Ok(Outcome::Changed(Some(zone)))
        }
        Body::Sync { .. } => Err(ApiError::new(
            "invalid_event",
            Some("type"),
            "sync is not a single-zone event",
        )),
    }
}

/// The first of several problems, with the others' details appended, so
/// one event's failure report stays one error per field named.
fn first_of(errors: Vec<ApiError>) -> ApiError {
    let mut it = errors.into_iter();
    let Some(mut first) = it.next() else {
        return ApiError::new("validation_error", None, "invalid");
    };
    for e in it {
        first.detail = format!("{}; {}", first.detail, e);
    }
    first
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Applied,
    /// `seq` not newer than the zone's: skipped.
    Replay,
    /// `id` seen before: skipped.
    Duplicate,
    Failed(Vec<ApiError>),
}

/// What the agent remembers of a zone for ordering and de-duplication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    pub zone: Option<Zone>,
    pub last_seq: Option<u64>,
    pub recent_ids: Vec<String>,
}

/// One zone's result of folding a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// The desired zone after the batch (`None`: deleted or never existed).
    pub zone: Option<Zone>,
    pub last_seq: Option<u64>,
    /// Ids to remember, oldest first, at most [`RECENT_IDS`].
    pub recent_ids: Vec<String>,
    /// Ids of the applied events, in order.
    pub applied: Vec<String>,
    /// Whether anything (zone, seq or ids) changed.
    pub touched: bool,
}

/// Folds one zone's events, in order, into its memory. Returns the fate of
/// each event (same order) and the zone's new memory. Whether the result
/// can be served is not asked here.
pub fn fold(memory: &Memory, events: &[&Event]) -> (Vec<Fate>, Folded) {
    let mut zone = memory.zone.clone();
    let mut last_seq = memory.last_seq;
    let mut ids: Vec<String> = memory.recent_ids.clone();
    let mut seen: HashSet<String> = ids.iter().cloned().collect();
    let mut fates = Vec::with_capacity(events.len());
    let mut applied = Vec::new();
    for event in events {
        if seen.contains(&event.id) {
            fates.push(Fate::Duplicate);
            continue;
        }
        if let (Some(s), Some(last)) = (event.seq, last_seq)
            && s <= last
        {
            fates.push(Fate::Replay);
            continue;
        }
        let fate = match apply(zone.as_ref(), event) {
            Err(e) => Fate::Failed(vec![e]),
            Ok(Outcome::NoOp) => Fate::Applied,
            Ok(Outcome::Changed(next)) => {
                zone = next;
                Fate::Applied
            }
        };
        if fate == Fate::Applied {
            last_seq = match (last_seq, event.seq) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            seen.insert(event.id.clone());
            ids.push(event.id.clone());
            applied.push(event.id.clone());
        }
        fates.push(fate);
    }
    if ids.len() > RECENT_IDS {
        ids.drain(..ids.len() - RECENT_IDS);
    }
    let folded = Folded {
        zone,
        last_seq,
        recent_ids: ids,
        touched: !applied.is_empty(),
        applied,
    };
    (fates, folded)
}

/// The wanted change a zone's folded events make; `None` when they
/// changed nothing. A zone deleted before it ever existed here still
/// keeps its memory, so late replays of its events are recognised.
pub fn wanted(uuid: &str, folded: Folded) -> Option<Wanted> {
    if !folded.touched {
        return None;
    }
    Some(Wanted {
        uuid: uuid.to_owned(),
        zone: folded.zone,
        last_seq: folded.last_seq,
        recent_ids: Some(folded.recent_ids),
        events: folded.applied,
    })
}

/// A zone of a `sync` the API itself would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedZone {
    pub uuid: String,
    pub domain: String,
    pub errors: Vec<ApiError>,
}

/// What a `sync` event wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncChanges {
    /// Every well-formed zone of the sync, and a delete for every zone the
    /// sync does not name; zones whose last `seq` is newer than the sync's
    /// are left alone.
    pub changes: Vec<Wanted>,
    /// Zones of the sync that are not well-formed: they keep their state.
    pub malformed: Vec<MalformedZone>,
}

/// The changes a `sync` makes to the zones in `records`.
pub fn sync_changes(
    records: &BTreeMap<String, ZoneRecord>,
    event: &Event,
    zones: &[Zone],
) -> SyncChanges {
    let seq = event.seq;
    let newer = |last: Option<u64>| match (seq, last) {
        (Some(s), Some(l)) => s > l,
        _ => true,
    };
    let mut out = SyncChanges {
        changes: Vec::new(),
        malformed: Vec::new(),
    };
    let named: BTreeSet<&str> = zones.iter().map(|z| z.uuid.as_str()).collect();
    for zone in zones {
        if let Err(errors) = validate::zone_well_formed(zone) {
            out.malformed.push(MalformedZone {
                uuid: zone.uuid.clone(),
                domain: zone.domain.clone(),
                errors,
            });
            continue;
        }
        let last = records.get(&zone.uuid).and_then(|r| r.last_seq);
        if newer(last) {
            out.changes.push(Wanted {
                uuid: zone.uuid.clone(),
                zone: Some(zone.clone()),
                last_seq: seq.or(last),
                recent_ids: None,
                events: vec![event.id.clone()],
            });
        }
    }
    for (uuid, r) in records {
        if r.zone.is_some() && !named.contains(uuid.as_str()) && newer(r.last_seq) {
            out.changes.push(Wanted {
                uuid: uuid.clone(),
                zone: None,
                last_seq: seq.or(r.last_seq),
                recent_ids: None,
                events: vec![event.id.clone()],
            });
        }
    }
    out
}

/// The fate of a `sync`: applied, or failed naming its malformed zones
/// (every other zone was applied).
pub fn sync_fate(malformed: &[MalformedZone]) -> Fate {
    if malformed.is_empty() {
        return Fate::Applied;
    }
    let mut errors = vec![ApiError::new(
        "partially_applied",
        Some("zones"),
        format!(
            "sync applied to every zone but {} malformed one(s); those keep their last state",
            malformed.len()
        ),
    )];
    for m in malformed {
        for e in &m.errors {
            let mut e = e.clone();
            e.detail = format!("zone {} ({}): {}", m.domain, m.uuid, e.detail);
            errors.push(e);
        }
    }
    Fate::Failed(errors)
}

/// A batch of zone events folded: each event's fate (in the order given;
/// `None` only for `sync`, which is not folded here) and one wanted change
/// per zone they changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedBatch {
    pub fates: Vec<Option<Fate>>,
    pub changes: Vec<Wanted>,
}

/// Folds a batch of events zone by zone, each zone from the memory
/// `memory_of` gives for it.
pub fn fold_batch(events: &[&Event], mut memory_of: impl FnMut(&str) -> Memory) -> FoldedBatch {
    let by_zone = group_by_zone(events);
    let mut fates: Vec<Option<Fate>> = vec![None; events.len()];
    let mut changes = Vec::new();
    for (uuid, positions) in &by_zone {
        let memory = memory_of(uuid);
        let list: Vec<&Event> = positions.iter().map(|p| events[*p]).collect();
        let (zone_fates, folded) = fold(&memory, &list);
        for (p, fate) in positions.iter().zip(zone_fates) {
            fates[*p] = Some(fate);
        }
        if let Some(c) = wanted(uuid, folded) {
            changes.push(c);
        }
    }
    FoldedBatch { fates, changes }
}

/// Groups events by zone as indices into `events`, keeping each zone's
/// events in the order they must apply: arrival order, except that events
/// carrying a `seq` take the places of the zone's `seq` events in `seq`
/// order.
pub fn group_by_zone(events: &[&Event]) -> BTreeMap<String, Vec<usize>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(z) = e.zone_uuid() {
            groups.entry(z.to_owned()).or_default().push(i);
        }
    }
    for list in groups.values_mut() {
        let slots: Vec<usize> = (0..list.len())
            .filter(|i| events[list[*i]].seq.is_some())
            .collect();
        let mut sequenced: Vec<usize> = slots.iter().map(|i| list[*i]).collect();
        sequenced.sort_by_key(|i| events[*i].seq);
        for (slot, e) in slots.into_iter().zip(sequenced) {
            list[slot] = e;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::decode_event;

    fn ev(json: &str) -> Event {
        decode_event(json).unwrap()
    }

    fn a(id: &str, seq: u64, rec: &str, name: &str, value: &str) -> Event {
        ev(&format!(
            r#"{{"id":"{id}","seq":{seq},"type":"record.created","zone_uuid":"z","record":{{"uuid":"{rec}","record_type":"A","name":"{name}","value":"{value}"}}}}"#
        ))
    }

    #[test]
    fn fold_applies_skips_and_fails() {
        let created = ev(
            r#"{"id":"e1","seq":1,"type":"zone.created","zone":{"uuid":"z","domain":"example.com"}}"#,
        );
        let good = a("e2", 2, "r1", "www", "192.0.2.1");
        let bad_value = a("e3", 3, "r2", "www", "999.0.0.1");
        let cname = ev(
            r#"{"id":"e4","seq":4,"type":"record.created","zone_uuid":"z","record":{"uuid":"r3","record_type":"CNAME","name":"www","value":"x.example.net"}}"#,
        );
        let good2 = a("e5", 5, "r4", "mail", "192.0.2.2");
        let dup = a("e5", 6, "r5", "x", "192.0.2.3");
        let replay = a("e7", 2, "r6", "y", "192.0.2.4");
        let events = [&created, &good, &bad_value, &cname, &good2, &dup, &replay];
        let (fates, folded) = fold(&Memory::default(), &events);
        assert_eq!(fates[0], Fate::Applied);
        assert_eq!(fates[1], Fate::Applied);
        // A bad address is malformed: the API refuses it.
        assert!(matches!(&fates[2], Fate::Failed(e) if e[0].field.as_deref() == Some("value")));
        // A CNAME beside an A is well-formed: applied, the zone is held later.
        assert_eq!(fates[3], Fate::Applied);
        assert_eq!(fates[4], Fate::Applied);
        assert_eq!(fates[5], Fate::Duplicate);
        assert_eq!(fates[6], Fate::Replay);
        let zone = folded.zone.unwrap();
        let names: Vec<&str> = zone.records.iter().map(|r| r.uuid.as_str()).collect();
        assert_eq!(names, ["r1", "r3", "r4"]);
        assert_eq!(folded.last_seq, Some(5));
        assert_eq!(folded.recent_ids, ["e1", "e2", "e4", "e5"]);
        assert_eq!(folded.applied, ["e1", "e2", "e4", "e5"]);
    }

    #[test]
    fn record_events() {
        let zone = Zone {
            uuid: "z".into(),
            domain: "example.com".into(),
            created_at: None,
            records: vec![],
        };
        let mem = Memory {
            zone: Some(zone),
            ..Memory::default()
        };
        let c = a("e1", 1, "r1", "www", "192.0.2.1");
        let c_again = a("e2", 2, "r1", "www", "192.0.2.1");
        let c_other = a("e3", 3, "r1", "www", "192.0.2.9");
        let upd = ev(
            r#"{"id":"e4","seq":4,"type":"record.updated","zone_uuid":"z","record":{"uuid":"r1","record_type":"A","name":"www","value":"192.0.2.7"}}"#,
        );
        let del =
            ev(r#"{"id":"e5","seq":5,"type":"record.deleted","zone_uuid":"z","record_uuid":"r1"}"#);
        let del_again =
            ev(r#"{"id":"e6","seq":6,"type":"record.deleted","zone_uuid":"z","record_uuid":"r1"}"#);
        let (fates, folded) = fold(&mem, &[&c, &c_again, &c_other, &upd, &del, &del_again]);
        assert_eq!(fates[0], Fate::Applied);
        assert_eq!(fates[1], Fate::Applied);
        assert!(matches!(&fates[2], Fate::Failed(e) if e[0].error_code == "conflict"));
        assert_eq!(&fates[3..], [Fate::Applied, Fate::Applied, Fate::Applied]);
        assert!(folded.zone.unwrap().records.is_empty());
    }

    #[test]
    fn unknown_zone_and_delete() {
        let rec = a("e1", 1, "r1", "www", "192.0.2.1");
        let del = ev(r#"{"id":"e2","type":"zone.deleted","zone_uuid":"z"}"#);
        let (fates, folded) = fold(&Memory::default(), &[&rec, &del]);
        assert!(matches!(&fates[0], Fate::Failed(e) if e[0].error_code == "not_found"));
        assert_eq!(fates[1], Fate::Applied);
        assert_eq!(folded.zone, None);
    }

    #[test]
    fn seq_order_within_zone() {
        let e3 = a("c", 3, "r3", "c", "192.0.2.3");
        let e1 = a("a", 1, "r1", "a", "192.0.2.1");
        let plain = ev(r#"{"id":"p","type":"record.deleted","zone_uuid":"z","record_uuid":"r9"}"#);
        let e2 = a("b", 2, "r2", "b", "192.0.2.2");
        let events = [&e3, &plain, &e1, &e2];
        let groups = group_by_zone(&events);
        let ids: Vec<&str> = groups["z"].iter().map(|i| events[*i].id.as_str()).collect();
        assert_eq!(ids, ["a", "p", "b", "c"]);
    }
}
