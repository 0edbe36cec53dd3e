//! Running external programs (BIND's tools) and keeping what they said.
//!
//! A failed tool keeps its argv, exit status and output, shown fenced, so an
//! operator reads `named-checkzone`'s own words. Every run has a deadline: a
//! hung `rndc` or checker is killed with its whole process group and
//! reported as [`ToolError::TimedOut`], which callers treat like any other
//! failed run (retried later, never taken as a verdict on a zone). This
//! module knows nothing about what the tools mean; `crate::bind` interprets
//! their output.

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The deadline of [`run`] until [`set_default_timeout`] changes it (the
/// default of `bind.tool_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_mins(1);

/// [`run`]'s deadline in milliseconds, set from `bind.tool_timeout`.
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(60_000);

/// What a finished program printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub argv: Vec<OsString>,
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A program that could not be started, that failed, or that did not
/// finish in time.
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
    #[error("{0}")]
    TimedOut(Box<ToolTimeout>),
}

/// A program that ran and failed, or whose output was wrong.
#[derive(Debug)]
pub struct ToolFailure {
    pub output: ToolOutput,
    /// Why its output is taken as a failure.
    pub reason: String,
}

/// A program killed at its deadline, with what it had printed by then.
#[derive(Debug)]
pub struct ToolTimeout {
    pub argv: Vec<OsString>,
    pub timeout: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.output;
        write!(f, "`{}` {}", show_argv(&o.argv), self.reason)?;
        match o.code {
            Some(c) => write!(f, " (exit status {c})")?,
            None => write!(f, " (killed by a signal)")?,
        }
        fenced(f, &o.stdout, &o.stderr)
    }
}

impl fmt::Display for ToolTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` did not finish within {:?} and was killed (bind.tool_timeout)",
            show_argv(&self.argv),
            self.timeout
        )?;
        fenced(f, &self.stdout, &self.stderr)
    }
}

fn fenced(f: &mut fmt::Formatter<'_>, stdout: &str, stderr: &str) -> fmt::Result {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        let text = text.trim_end();
        if !text.is_empty() {
            write!(f, "\n---- {name} ----\n{text}\n---- end ----")?;
        }
    }
    Ok(())
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

/// Sets the deadline [`run`] uses (from `bind.tool_timeout`).
pub fn set_default_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// The deadline [`run`] uses.
pub fn default_timeout() -> Duration {
    Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
}

/// [`run_with_timeout`] with the configured `bind.tool_timeout`.
pub fn run(argv: &[OsString]) -> Result<ToolOutput, ToolError> {
    run_with_timeout(argv, default_timeout())
}

/// Runs `argv` with no standard input and captures its output. A program
/// still running after `timeout` is killed, with every process it started
/// (it runs in a process group of its own), and reported as
/// [`ToolError::TimedOut`].
pub fn run_with_timeout(argv: &[OsString], timeout: Duration) -> Result<ToolOutput, ToolError> {
    let spawn_err = |source| ToolError::Spawn {
        argv: argv.to_vec(),
        source,
    };
    let (program, rest) = argv.split_first().ok_or_else(|| {
        spawn_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ))
    })?;
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too, and a
        // Ctrl-C meant for the agent does not reach a tool mid-write.
        .process_group(0)
        .spawn()
        .map_err(spawn_err)?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    // Waits for the exit without reaping (WNOWAIT): until `child.wait()`
    // below, the pid and the group id stay this child's, so the kill can
    // never hit an unrelated process.
    let (exited_tx, exited_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = exited_tx.send(waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ));
    });
    // A tool working on a large batch (named-checkconf -z over 100,000
    // zones takes tens of seconds) is progress for the watchdog: the wait is
    // bounded by the timeout, not by it.
    let mut timed_out = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match exited_rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(_) => break false,
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => crate::progress::beat(),
            Err(_) => break true,
        }
    };
    // A tool that exited but left a child holding its pipes open is as
    // hung as one that never exited.
    let mut out = stdout.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    let mut err = stderr.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    if timed_out || out.is_err() || err.is_err() {
        timed_out = true;
        let _ = killpg(pid, Signal::SIGKILL);
        // The pipes close once the group is gone; bound the wait anyway.
        if out.is_err() {
            out = stdout.recv_timeout(Duration::from_secs(1));
        }
        if err.is_err() {
            err = stderr.recv_timeout(Duration::from_secs(1));
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    let text = |r: Result<Vec<u8>, mpsc::RecvTimeoutError>| {
        String::from_utf8_lossy(&r.unwrap_or_default()).into_owned()
    };
    let (stdout, stderr) = (text(out), text(err));
    if timed_out {
        return Err(ToolError::TimedOut(Box::new(ToolTimeout {
            argv: argv.to_vec(),
            timeout,
            stdout,
            stderr,
        })));
    }
    Ok(ToolOutput {
        argv: argv.to_vec(),
        success: status.success(),
        code: status.code(),
        stdout,
        stderr,
    })
}

/// Reads a pipe to its end on a thread; the bytes arrive on the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn captures_output_and_status() {
        let out = run_with_timeout(
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(!out.success);
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn a_hung_tool_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-ran");
        // The grandchild would write the marker after the deadline.
        let script = format!(
            "echo started; (sleep 2; touch {}) & sleep 30",
            marker.display()
        );
        let started = Instant::now();
        let err = run_with_timeout(&argv(&["sh", "-c", &script]), Duration::from_millis(300))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let ToolError::TimedOut(t) = &err else {
            panic!("not a timeout: {err}");
        };
        assert_eq!(t.stdout, "started\n");
        let msg = err.to_string();
        assert!(msg.contains("`sh -c echo started;"), "{msg}");
        assert!(msg.contains("bind.tool_timeout"), "{msg}");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the tool's child outlived the timeout");
    }

    #[test]
    fn a_tool_whose_child_keeps_the_pipe_open_times_out() {
        let err = run_with_timeout(
            &argv(&["sh", "-c", "sleep 30 & exit 0"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(err, ToolError::TimedOut(_)), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run(&argv(&["/nonexistent/tool"])).unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }));
    }
}
