//! The API's zone and record bodies, exactly as the REST API serializes
//! them (`GET /api/v1/dns-zones/{uuid}/`).
//!
//! These are wire types: they accept what the API sends (unknown extra fields
//! such as `record_count` are tolerated) and carry it unchanged. Nothing here
//! is trusted; [`crate::validate`] turns a [`Zone`] into a
//! [`crate::validate::ValidatedZone`].

use serde::{Deserialize, Serialize};

/// A zone as `GET /api/v1/dns-zones/{uuid}/` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// Unique zone identifier.
    pub uuid: String,
    /// The zone's domain name (may be Unicode; validation converts it).
    pub domain: String,
    /// Creation timestamp (ISO 8601), carried, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The zone's records: required, so a body without them (the list
    /// endpoint's) can never empty a zone by accident.
    pub records: Vec<Record>,
}

/// A record as the API serializes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Unique record identifier.
    pub uuid: String,
    /// One of A, AAAA, CNAME, MX, TXT, NS, SRV, CAA.
    pub record_type: String,
    /// `@`, a name relative to the zone, or a name inside it.
    pub name: String,
    /// The record's data; `null` is carried so validation can name it.
    pub value: Option<String>,
    /// Time to live in seconds; `null` or absent means the default.
    #[serde(default)]
    pub ttl: Option<i64>,
    /// Priority, required for MX and SRV.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Creation timestamp (ISO 8601), carried, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// Decodes a zone detail body, naming the JSON path of a type error
/// (`records[2].ttl`) in the API's error shape.
pub fn decode_zone(json: &str) -> Result<Zone, crate::error::ApiError> {
    decode(json)
}

/// Decodes any wire type with [`serde_path_to_error`], so that a type error
/// names the field it is in.
/// Anything after the value but white space is an error: a file holding
/// two events must not lose the second silently.
pub fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, crate::error::ApiError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path == "?" {
            None
        } else {
            Some(path.as_str())
        };
        crate::error::ApiError::new("parse_error", field, inner.to_string())
    })?;
    de.end().map_err(|e| {
        crate::error::ApiError::new(
            "parse_error",
            None,
            format!("unexpected data after the JSON value: {e}"),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_example_parses_as_is() {
        let json = r#"{
          "uuid": "abc123-def456-ghi789", "domain": "example.com",
          "created_at": "2024-01-15T10:30:00Z", "record_count": 5,
          "records": [
            {"uuid": "rec-001", "record_type": "A", "name": "@", "value": "192.0.2.1",
             "ttl": 3600, "priority": null, "created_at": "2024-01-15T10:30:00Z"},
            {"uuid": "rec-002", "record_type": "MX", "name": "@", "value": "mail.example.com",
             "ttl": 3600, "priority": 10, "created_at": "2024-01-15T10:32:00Z"}
          ]}"#;
        let zone = decode_zone(json).unwrap();
        assert_eq!(zone.records.len(), 2);
        assert_eq!(zone.records[1].priority, Some(10));
    }

    #[test]
    fn type_errors_name_the_field() {
        let json = r#"{"uuid": "z", "domain": "example.com", "records": [
            {"uuid": "r", "record_type": "A", "name": "@", "value": "192.0.2.1", "ttl": "x"}]}"#;
        let err = decode_zone(json).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("records[0].ttl"));
        assert_eq!(err.error_code, "parse_error");
        let err = decode_zone(r#"{"uuid": "z"}"#).unwrap_err();
        assert!(err.detail.contains("domain"), "{err}");
    }
}
