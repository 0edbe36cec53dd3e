//! Running external programs (BIND's tools) and keeping what they said.
//!
//! A failed tool keeps its argv, exit status and output, shown fenced, so an
//! operator reads `named-checkzone`'s own words. This module knows nothing
//! about what the tools mean; `crate::bind` interprets their output.

use std::ffi::OsString;
use std::fmt;
use std::process::{Command, Stdio};

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub argv: Vec<OsString>,
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A program that could not be started, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("failed to start `{}`", show_argv(.argv))]
    Spawn {
        argv: Vec<OsString>,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(Box<ToolFailure>),
}

/// A program that ran and failed, or whose output was wrong.
#[derive(Debug)]
pub struct ToolFailure {
    pub output: ToolOutput,
    /// Why its output is taken as a failure.
    pub reason: String,
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.output;
        write!(f, "`{}` {}", show_argv(&o.argv), self.reason)?;
        match o.code {
            Some(c) => write!(f, " (exit status {c})")?,
            None => write!(f, " (killed by a signal)")?,
        }
        for (name, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = text.trim_end();
            if !text.is_empty() {
                write!(f, "\n---- {name} ----\n{text}\n---- end ----")?;
            }
        }
        Ok(())
    }
}

impl ToolError {
    /// Wraps an output judged to be a failure.
    pub fn failed(output: ToolOutput, reason: impl Into<String>) -> Self {
        Self::Failed(Box::new(ToolFailure {
            output,
            reason: reason.into(),
        }))
    }
}

/// argv as a shell would show it.
pub fn show_argv(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `argv` to completion with no standard input and captures its output.
pub fn run(argv: &[OsString]) -> Result<ToolOutput, ToolError> {
    let (program, rest) = argv.split_first().ok_or_else(|| ToolError::Spawn {
        argv: argv.to_vec(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"),
    })?;
    let out = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            argv: argv.to_vec(),
            source,
        })?;
    Ok(ToolOutput {
        argv: argv.to_vec(),
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
