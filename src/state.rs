//! Event application: what a zone looks like after an event, and a batch of
//! events folded into one change per zone.
//!
//! Pure. Each event gets a fate (applied, replay, duplicate or failed with
//! its reasons); an event that fails leaves its zone as it was before it,
//! so the events behind it still apply. `sync` events are not folded here:
//! they span zones and the daemon runs them alone.

use crate::error::ApiError;
use crate::model::event::{Body, Event};
use crate::model::zone::Zone;
use crate::validate::{self, ZoneDefaults};
use std::collections::{BTreeMap, HashSet};

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
            if current == Some(zone) {
                Ok(Outcome::NoOp)
            } else {
                Ok(Outcome::Changed(Some(zone.clone())))
            }
        }
        Body::ZoneCreated { zone } => {
            check_id("zone.uuid", &zone.uuid)?;
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
    /// The zone after the batch (`None`: deleted or never existed).
    pub zone: Option<Zone>,
    pub last_seq: Option<u64>,
    /// Ids to remember, oldest first, at most [`RECENT_IDS`].
    pub recent_ids: Vec<String>,
    /// Whether anything (zone, seq or ids) changed.
    pub touched: bool,
}

/// Folds one zone's events, in order, into its memory. Returns the fate of
/// each event (same order) and the zone's new memory. The final zone is
/// validated; if it is invalid, the events are applied again one by one,
/// each validated, and those that break the zone fail.
pub fn fold(memory: &Memory, events: &[&Event], defaults: &ZoneDefaults) -> (Vec<Fate>, Folded) {
    let (fates, folded) = fold_with(memory, events, defaults, false);
    let valid = folded
        .zone
        .as_ref()
        .is_none_or(|z| validate::validate(z, defaults).is_ok());
    if valid {
        (fates, folded)
    } else {
        fold_with(memory, events, defaults, true)
    }
}

fn fold_with(
    memory: &Memory,
    events: &[&Event],
    defaults: &ZoneDefaults,
    validate_each: bool,
) -> (Vec<Fate>, Folded) {
    let mut zone = memory.zone.clone();
    let mut last_seq = memory.last_seq;
    let mut ids: Vec<String> = memory.recent_ids.clone();
    let mut seen: HashSet<String> = ids.iter().cloned().collect();
    let mut fates = Vec::with_capacity(events.len());
    let mut touched = false;
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
                let check = if let (Some(z), true) = (&next, validate_each) {
                    validate::validate(z, defaults).err()
                } else {
                    None
                };
                match check {
                    Some(errors) => Fate::Failed(errors),
                    None => {
                        zone = next;
                        Fate::Applied
                    }
                }
            }
        };
        if fate == Fate::Applied {
            touched = true;
            last_seq = match (last_seq, event.seq) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            seen.insert(event.id.clone());
            ids.push(event.id.clone());
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
        touched,
    };
    (fates, folded)
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
    use crate::model::name::parse_domain;

    fn defaults() -> ZoneDefaults {
        ZoneDefaults {
            default_ttl: 3600,
            nameservers: vec![parse_domain("ns1.example.net").unwrap()],
            strict: false,
        }
    }

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
        let (fates, folded) = fold(&Memory::default(), &events, &defaults());
        assert_eq!(fates[0], Fate::Applied);
        assert_eq!(fates[1], Fate::Applied);
        assert!(matches!(&fates[2], Fate::Failed(e) if e[0].field.as_deref() == Some("value")));
        assert!(matches!(&fates[3], Fate::Failed(e) if e[0].field.as_deref() == Some("name")));
        assert_eq!(fates[4], Fate::Applied);
        assert_eq!(fates[5], Fate::Duplicate);
        assert_eq!(fates[6], Fate::Replay);
        let zone = folded.zone.unwrap();
        let names: Vec<&str> = zone.records.iter().map(|r| r.uuid.as_str()).collect();
        assert_eq!(names, ["r1", "r4"]);
        assert_eq!(folded.last_seq, Some(5));
        assert_eq!(folded.recent_ids, ["e1", "e2", "e5"]);
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
        let (fates, folded) = fold(
            &mem,
            &[&c, &c_again, &c_other, &upd, &del, &del_again],
            &defaults(),
        );
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
        let (fates, folded) = fold(&Memory::default(), &[&rec, &del], &defaults());
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
