//! `rndc`: the argv for each control command and the reading of its answer.
//!
//! `rndc reload ZONE` answers `zone reload queued` even when the load later
//! fails, so a reload is only done when the new serial is served (see
//! [`super::query`]); this module only judges whether `named` took the
//! command.

use crate::exec::{ToolError, ToolOutput};
use crate::model::name::Name;
use std::ffi::OsString;

/// A control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Re-read the configuration: loads new zones, drops removed ones.
    Reconfig,
    /// Reload one zone from its file.
    Reload(Name),
    /// Reload every zone whose file changed.
    ReloadAll,
    /// Is the server up?
    Status,
    /// What named has of one zone (fails with `not found` when it has none).
    ZoneStatus(Name),
    /// Load a new zone at once (`allow-new-zones yes;`): `config` is the
    /// zone's configuration, `{ type primary; file "…"; };`.
    AddZone { zone: Name, config: String },
    /// Remove a zone at once.
    DelZone(Name),
}

impl Command {
    /// The words of the command, as `rndc` takes them after its options.
    pub fn words(&self) -> Vec<&str> {
        match self {
            Command::Reconfig => vec!["reconfig"],
            Command::Reload(zone) => vec!["reload", zone.as_str()],
            Command::ReloadAll => vec!["reload"],
            Command::Status => vec!["status"],
            Command::ZoneStatus(zone) => vec!["zonestatus", zone.as_str()],
            Command::AddZone { zone, config } => vec!["addzone", zone.as_str(), config],
            Command::DelZone(zone) => vec!["delzone", zone.as_str()],
        }
    }

    /// The command line as the control channel carries it: `rndc` joins
    /// its arguments with spaces.
    pub fn line(&self) -> String {
        self.words().join(" ")
    }
}

/// argv for a command, after the configured prefix (`rndc -s … -p … -k …`).
pub fn argv(prefix: &[String], command: &Command) -> Vec<OsString> {
    let mut v: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    v.extend(command.words().into_iter().map(OsString::from));
    v
}

/// Whether `named` accepted the command.
pub fn interpret(output: ToolOutput) -> Result<ToolOutput, ToolError> {
    if output.success {
        Ok(output)
    } else {
        Err(ToolError::failed(
            output,
            "was refused or could not reach named",
        ))
    }
}

/// Whether `rndc` failed saying `words` (`not found`, `already exists`) on
/// either of its outputs.
pub fn says(error: &ToolError, words: &str) -> bool {
    match error {
        ToolError::Failed(f) => f.output.stderr.contains(words) || f.output.stdout.contains(words),
        _ => false,
    }
}
