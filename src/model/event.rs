//! Change events: the wire format producers write into the spool or send
//! over the socket, one JSON object per file or per line.
//!
//! Every event has an `id` (applied at most once) and may have a `seq`, the
//! producer's monotonically increasing number. Unknown extra fields are
//! tolerated, so producers can add fields before agents know them.

use super::zone::{Record, Zone};
use serde::{Deserialize, Serialize};

/// One change event. Decode with [`decode_event`], which checks the
/// envelope first so that every error names its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unique id; an id seen before is not applied again.
    pub id: String,
    /// The producer's sequence number; an event not newer than what its
    /// zone already applied is a replay and is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub body: Body,
}

/// What an event says, by its `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Body {
    /// Create or replace a zone wholesale.
    #[serde(rename = "zone.snapshot")]
    ZoneSnapshot { zone: Zone },
    /// Create an empty zone (SOA and NS only).
    #[serde(rename = "zone.created")]
    ZoneCreated { zone: ZoneHeader },
    /// Remove a zone from `named` and archive its file.
    #[serde(rename = "zone.deleted")]
    ZoneDeleted { zone_uuid: String },
    /// Add a record.
    #[serde(rename = "record.created")]
    RecordCreated { zone_uuid: String, record: Record },
    /// Replace the record with this uuid (the full record after PUT or
    /// PATCH).
    #[serde(rename = "record.updated")]
    RecordUpdated { zone_uuid: String, record: Record },
    /// Remove a record.
    #[serde(rename = "record.deleted")]
    RecordDeleted {
        zone_uuid: String,
        record_uuid: String,
    },
    /// The complete desired set of zones: zones absent from it are deleted.
    #[serde(rename = "sync")]
    Sync { zones: Vec<Zone> },
}

/// A zone without its records, as `zone.created` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneHeader {
    pub uuid: String,
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Event {
    /// The zone the event is about; `None` for `sync`.
    pub fn zone_uuid(&self) -> Option<&str> {
        match &self.body {
            Body::ZoneSnapshot { zone } => Some(&zone.uuid),
            Body::ZoneCreated { zone } => Some(&zone.uuid),
            Body::ZoneDeleted { zone_uuid }
            | Body::RecordCreated { zone_uuid, .. }
            | Body::RecordUpdated { zone_uuid, .. }
            | Body::RecordDeleted { zone_uuid, .. } => Some(zone_uuid),
            Body::Sync { .. } => None,
        }
    }

    /// The `type` as written on the wire.
    pub fn type_name(&self) -> &'static str {
        match &self.body {
            Body::ZoneSnapshot { .. } => "zone.snapshot",
            Body::ZoneCreated { .. } => "zone.created",
            Body::ZoneDeleted { .. } => "zone.deleted",
            Body::RecordCreated { .. } => "record.created",
            Body::RecordUpdated { .. } => "record.updated",
            Body::RecordDeleted { .. } => "record.deleted",
            Body::Sync { .. } => "sync",
        }
    }
}

/// The fields every event has. `type` must be a string: serde would
/// otherwise take a number as the index of a variant.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct WithZone<T> {
    zone: T,
}

#[derive(Deserialize)]
struct WithZoneUuid {
    zone_uuid: String,
}

#[derive(Deserialize)]
struct WithRecord {
    zone_uuid: String,
    record: Record,
}

#[derive(Deserialize)]
struct WithRecordUuid {
    zone_uuid: String,
    record_uuid: String,
}

#[derive(Deserialize)]
struct WithZones {
    zones: Vec<Zone>,
}

/// Decodes one event: the envelope (`id`, `seq`, `type`), then the body
/// its type calls for, each with the JSON path of any error as `field`
/// (`record.ttl`, `zones[3].records[0].value`).
pub fn decode_event(json: &str) -> Result<Event, crate::error::ApiError> {
    use super::zone::decode;
    // serde reads a struct from an array too; an event is an object.
    if !json.trim_start().starts_with('{') {
        return Err(crate::error::ApiError::new(
            "parse_error",
            None,
            "an event must be one JSON object",
        ));
    }
    let envelope: Envelope = decode(json)?;
    if let Err(e) = crate::validate::check_uuid(&envelope.id) {
        return Err(crate::error::ApiError::validation("id", e));
    }
    let body = match envelope.kind.as_str() {
        "zone.snapshot" => Body::ZoneSnapshot {
            zone: decode::<WithZone<Zone>>(json)?.zone,
        },
        "zone.created" => Body::ZoneCreated {
            zone: decode::<WithZone<ZoneHeader>>(json)?.zone,
        },
        "zone.deleted" => Body::ZoneDeleted {
            zone_uuid: decode::<WithZoneUuid>(json)?.zone_uuid,
        },
        "record.created" | "record.updated" => {
            let w: WithRecord = decode(json)?;
            if envelope.kind == "record.created" {
                Body::RecordCreated {
                    zone_uuid: w.zone_uuid,
                    record: w.record,
                }
            } else {
                Body::RecordUpdated {
                    zone_uuid: w.zone_uuid,
                    record: w.record,
                }
            }
        }
        "record.deleted" => {
            let w: WithRecordUuid = decode(json)?;
            Body::RecordDeleted {
                zone_uuid: w.zone_uuid,
                record_uuid: w.record_uuid,
            }
        }
        "sync" => Body::Sync {
            zones: decode::<WithZones>(json)?.zones,
        },
        other => {
            return Err(crate::error::ApiError::new(
                "parse_error",
                Some("type"),
                format!(
                    "unknown event type `{}`; expected one of zone.snapshot, zone.created, \
                     zone.deleted, record.created, record.updated, record.deleted, sync",
                    other.escape_debug()
                ),
            ));
        }
    };
    Ok(Event {
        id: envelope.id,
        seq: envelope.seq,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples_parse() {
        let lines = [
            r#"{"id": "evt-7f3a", "seq": 1042, "type": "record.created", "zone_uuid": "abc123-def456-ghi789",
 "record": {"uuid": "rec-003", "record_type": "A", "name": "www", "value": "192.0.2.1",
            "ttl": 3600, "priority": null, "created_at": "2026-01-18T16:45:00Z"}}"#,
            r#"{"id": "evt-7f3b", "seq": 1043, "type": "record.deleted", "zone_uuid": "abc123-def456-ghi789",
 "record_uuid": "rec-002"}"#,
            r#"{"id": "evt-7f3c", "seq": 1044, "type": "zone.snapshot",
 "zone": {"uuid": "xyz789-uvw456-rst123", "domain": "myapp.io", "created_at": "2024-06-20T14:15:00Z",
          "record_count": 0, "records": []}}"#,
        ];
        let events: Vec<Event> = lines.iter().map(|l| decode_event(l).unwrap()).collect();
        assert_eq!(events[0].type_name(), "record.created");
        assert_eq!(events[1].zone_uuid(), Some("abc123-def456-ghi789"));
        assert_eq!(events[2].seq, Some(1044));
    }

    #[test]
    fn bad_events_name_the_field() {
        let cases = [
            (r#"{"id": "e", "type": "zone.exploded"}"#, None),
            (
                r#"{"id": "e", "type": "record.deleted", "zone_uuid": "z"}"#,
                None,
            ),
            (
                r#"{"id": "e", "seq": -1, "type": "zone.deleted", "zone_uuid": "z"}"#,
                Some("seq"),
            ),
            (
                r#"{"id": "../x", "type": "zone.deleted", "zone_uuid": "z"}"#,
                Some("id"),
            ),
            (r#"{"type": "zone.deleted", "zone_uuid": "z"}"#, None),
            ("[1, 2]", None),
            ("{", None),
        ];
        for (json, field) in cases {
            let err = decode_event(json).unwrap_err();
            if let Some(f) = field {
                assert_eq!(err.field.as_deref(), Some(f), "{json}: {err}");
            }
        }
    }
}
