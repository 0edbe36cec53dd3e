//! The API's error shape and the process exit codes.
//!
//! Everything a machine reads about a rejected input uses the shape the
//! platform's REST API already speaks: `detail`, `error_code`, `field`, plus
//! the uuid of the record at fault when there is one. This module owns that
//! shape and nothing else; it does no I/O.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The process exits 0 on success.
pub const EXIT_OK: i32 = 0;
/// Something failed at run time (a tool, the disk, a zone BIND refused).
pub const EXIT_FAILURE: i32 = 1;
/// The input (a zone, a dump, an event) was invalid.
pub const EXIT_INVALID_INPUT: i32 = 2;
/// Some zone is held: its desired state is one `named` would refuse, so
/// its last good version stays served (everything else was deployed).
pub const EXIT_HELD: i32 = 3;
/// The configuration was invalid: retrying cannot help (systemd's
/// `RestartPreventExitStatus=` names this code).
pub const EXIT_CONFIG: i32 = 78;

/// One problem with an input, in the API's error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Human-readable message.
    pub detail: String,
    /// Machine-readable category, e.g. `validation_error`.
    pub error_code: String,
    /// The field at fault (`domain`, `name`, `records[3].ttl`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The uuid of the record at fault, when the problem is in a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl ApiError {
    /// A `validation_error` on `field`.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            error_code: "validation_error".to_owned(),
            field: Some(field.into()),
            record: None,
        }
    }

    /// An error with its own code, e.g. `parse_error`, `not_found`.
    pub fn new(error_code: &str, field: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            error_code: error_code.to_owned(),
            field: field.map(str::to_owned),
            record: None,
        }
    }

    /// Attributes the error to a record.
    #[must_use]
    pub fn in_record(mut self, uuid: &str) -> Self {
        self.record = Some(uuid.to_owned());
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(record) = &self.record {
            write!(f, "record {record}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{} ({})", self.detail, self.error_code)
    }
}

impl std::error::Error for ApiError {}

/// Every problem found in one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrors(pub Vec<ApiError>);

impl fmt::Display for ApiErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiErrors {}
