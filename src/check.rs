//! BIND's verdict on rendered zone files, before any is installed: one
//! `named-checkzone` for one zone, `named-checkconf -z` over the machine's
//! cores for many. Shell: it writes the files to check and runs the tools;
//! what their output means is [`crate::bind::checkzone`]'s.

use crate::bind::{checkzone, conf};
use crate::config::Config;
use crate::decide::Write;
use crate::error::ApiError;
use crate::exec::{self, ToolError};
use crate::model::name::Name;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why the check could not be made at all (nothing was decided).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("failed to write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to check zones")]
    Tool(#[source] ToolError),
}

/// What BIND said of each file, by zone uuid.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Files BIND would not load, with its own words.
    pub refused: HashMap<String, Vec<ApiError>>,
    /// Files BIND loads with warnings, in its own words.
    pub warnings: HashMap<String, Vec<ApiError>>,
}

/// Lines of BIND's output about one zone.
#[derive(Debug, Default)]
struct Lines {
    problems: HashMap<Name, Vec<String>>,
    warnings: HashMap<Name, Vec<String>>,
}

impl Lines {
    fn extend(&mut self, other: Lines) {
        self.problems.extend(other.problems);
        self.warnings.extend(other.warnings);
    }
}

/// The temporary file a zone is written to before it is checked.
pub fn temp_file(zones: &Path, domain: &str) -> PathBuf {
    zones.join(format!(".{domain}.zone.new"))
}

/// Writes every file of `writes` to its temporary name and checks them.
/// Refused files are removed again; the others wait to be installed.
/// `beside` runs while BIND reads the files (on another thread), as their
/// flush to disk does: the deployer writes what a crash must find there.
pub fn check<R: Send>(
    config: &Config,
    writes: &[Write],
    beside: impl FnOnce() -> R + Send,
) -> (Result<Verdict, CheckError>, R) {
    if writes.is_empty() {
        return (Ok(Verdict::default()), beside());
    }
    let zones = &config.paths.zones;
    let files: Vec<(PathBuf, &[u8])> = writes
        .iter()
        .map(|w| (temp_file(zones, w.domain()), w.text.as_bytes()))
        .collect();
    if let Err((path, source)) = crate::fsutil::write_batch_unsynced(&files) {
        return (Err(CheckError::Io { path, source }), beside());
    }
    // Every file is durable before any is installed; the flush and
    // `beside` take no time of their own while BIND reads.
    let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    let (lines, synced, beside) = std::thread::scope(|s| {
        let flush = s.spawn(|| (crate::fsutil::sync_files(&paths), beside()));
        let lines = read_by_bind(config, writes, &files);
        let (synced, beside) = flush.join().expect("the flush does not panic");
        (lines, synced, beside)
    });
    let verdict = synced
        .map_err(|(path, source)| CheckError::Io { path, source })
        .and(lines)
        .map(|lines| verdict_of(zones, writes, &lines));
    (verdict, beside)
}

/// BIND's lines about each file, per zone: refused files are removed.
fn verdict_of(zones: &Path, writes: &[Write], lines: &Lines) -> Verdict {
    let mut verdict = Verdict::default();
    for w in writes {
        if let Some(warned) = lines.warnings.get(&w.origin) {
            verdict.warnings.insert(
                w.uuid.clone(),
                warned
                    .iter()
                    .map(|l| ApiError::new("bind_warning", None, format!("named: {l}")))
                    .collect(),
            );
        }
        if let Some(lines) = lines.problems.get(&w.origin) {
            let _ = fs::remove_file(temp_file(zones, w.domain()));
            verdict.refused.insert(
                w.uuid.clone(),
                vec![ApiError::new(
                    "bind_refused",
                    None,
                    format!("named-checkzone refused the zone: {}", lines.join(" | ")),
                )],
            );
        }
    }
    verdict
}

/// BIND's loader on the written files: `named-checkzone` for one,
/// `named-checkconf -z` over the cores for more.
fn read_by_bind(
    config: &Config,
    writes: &[Write],
    files: &[(PathBuf, &[u8])],
) -> Result<Lines, CheckError> {
    if writes.len() == 1 {
        check_one(config, &writes[0], &files[0].0)
    } else {
        match check_batch(config, writes, files) {
            // named-checkconf failed in a way no zone is named in: fall
            // back to one named-checkzone per zone rather than hold every
            // zone of the batch back.
            Err(CheckError::Tool(e)) => {
                tracing::warn!(error = %e, "batch check failed; checking zones one by one");
                let mut all = Lines::default();
                for (w, (path, _)) in writes.iter().zip(files) {
                    all.extend(check_one(config, w, path)?);
                }
                Ok(all)
            }
            other => other,
        }
    }
}

/// `named-checkzone` on one file: its refusal or warning lines.
fn check_one(config: &Config, w: &Write, path: &Path) -> Result<Lines, CheckError> {
    let argv = checkzone::argv(&config.bind.checkzone, &w.origin, path, config.zone.strict);
    let output = exec::run(&argv).map_err(CheckError::Tool)?;
    let mut lines = Lines::default();
    match checkzone::interpret(&w.origin, w.serial, output) {
        Ok(warnings) => {
            if !warnings.is_empty() {
                lines.warnings.insert(w.origin.clone(), warnings);
            }
        }
        Err(ToolError::Failed(f)) => {
            lines.problems.insert(
                w.origin.clone(),
                f.output
                    .stdout
                    .lines()
                    .chain(f.output.stderr.lines())
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty())
                    .collect(),
            );
        }
        Err(e) => return Err(CheckError::Tool(e)),
    }
    Ok(lines)
}

/// `named-checkconf -z` over a batch; a large batch is split over the
/// machine's cores (the check is a full load by BIND, the costliest step
/// of a big import).
fn check_batch(
    config: &Config,
    writes: &[Write],
    files: &[(PathBuf, &[u8])],
) -> Result<Lines, CheckError> {
    const PER_PROCESS_MIN: usize = 500;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let parts = (writes.len() / PER_PROCESS_MIN).clamp(1, cores);
    let chunk = writes.len().div_ceil(parts);
    let (checkconf, zones_dir) = (&config.bind.checkconf, &config.paths.zones);
    let strict = config.zone.strict;
    let results: Vec<Result<Lines, CheckError>> = std::thread::scope(|s| {
        let handles: Vec<_> = writes
            .chunks(chunk)
            .zip(files.chunks(chunk))
            .enumerate()
            .map(|(n, (w, f))| s.spawn(move || check_part(checkconf, zones_dir, strict, n, w, f)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut lines = Lines::default();
    for r in results {
        lines.extend(r?);
    }
    Ok(lines)
}

/// One `named-checkconf -z` over part of a batch.
fn check_part(
    checkconf: &Path,
    zones_dir: &Path,
    strict: bool,
    part: usize,
    writes: &[Write],
    files: &[(PathBuf, &[u8])],
) -> Result<Lines, CheckError> {
    crate::progress::beat();
    let stanzas: Vec<conf::Stanza> = writes
        .iter()
        .zip(files)
        .map(|(w, (path, _))| conf::Stanza {
            domain: w.domain().to_owned(),
            file: path.to_string_lossy().into_owned(),
            extra: String::new(),
        })
        .collect();
    let conf_path = zones_dir.join(format!(".check.{}.{part}.conf", std::process::id()));
    // Written without following a link someone may have planted there.
    let text = conf::check_conf(zones_dir, &stanzas, strict);
    crate::fsutil::write_synced(&conf_path, text.as_bytes()).map_err(|source| CheckError::Io {
        path: conf_path.clone(),
        source,
    })?;
    let argv = checkzone::checkconf_argv(checkconf, &conf_path);
    let output = exec::run(&argv);
    let _ = fs::remove_file(&conf_path);
    let output = output.map_err(CheckError::Tool)?;
    let expected: HashMap<Name, (String, u32)> = writes
        .iter()
        .zip(&stanzas)
        .map(|(w, s)| (w.origin.clone(), (s.file.clone(), w.serial)))
        .collect();
    match checkzone::interpret_batch(&output, &expected) {
        Some(verdict) => Ok(Lines {
            problems: verdict.problems,
            warnings: verdict.warnings,
        }),
        None => Err(CheckError::Tool(ToolError::failed(
            output,
            "failed without naming a zone",
        ))),
    }
}
