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
}

/// argv for a command, after the configured prefix (`rndc -s … -p … -k …`).
pub fn argv(prefix: &[String], command: &Command) -> Vec<OsString> {
    let mut v: Vec<OsString> = prefix.iter().map(OsString::from).collect();
    match command {
        Command::Reconfig => v.push("reconfig".into()),
        Command::Reload(zone) => {
            v.push("reload".into());
            v.push(zone.as_str().into());
        }
        Command::ReloadAll => v.push("reload".into()),
        Command::Status => v.push("status".into()),
    }
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
