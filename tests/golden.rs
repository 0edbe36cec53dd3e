//! Golden tests for the zone compiler: one test per directory under
//! `testdata/render/`.
//!
//! A case directory holds:
//!
//! - `zone.json`: the zone detail body as `GET /api/v1/dns-zones/{uuid}/`
//!   returns it (required);
//! - `config.toml`: configuration read with [`zoneagent::config::parse`]
//!   (optional; the defaults otherwise);
//! - exactly one of `expected.zone` (the zone validates: the bytes
//!   [`zoneagent::render::render`] writes with the serial [`SERIAL`]) and
//!   `expected.errors.json` (it does not: the pretty-printed array of
//!   problems that decoding or validation returned);
//! - `expected.warnings.json` beside `expected.zone` when, and only when,
//!   validation returned warnings.
//!
//! Any other file, a missing `zone.json`, or an expected file that the
//! outcome does not call for ("orphaned") fails the case. Every
//! `expected.zone` must also load under the real `named-checkzone`, run
//! with the flags of [`zoneagent::bind::checkzone::argv`] for the case's
//! `[validate] strict` (by default: what `named` itself checks when it
//! loads a primary zone) and judged by
//! [`zoneagent::bind::checkzone::interpret`]; when `named-checkzone` warns,
//! validation must have warned too (served with warnings is
//! `expected.zone` plus `expected.warnings.json`; refused is
//! `expected.errors.json`). Without BIND's tools the case fails rather than
//! skips.
//!
//! Bless with `SNAPSHOTS=overwrite cargo test --test golden`: expected files
//! are rewritten to what the code produces now and stale ones are removed;
//! review the result with `git diff testdata/`.

use libtest_mimic::{Arguments, Failed, Trial};
use similar::TextDiff;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zoneagent::bind::checkzone;
use zoneagent::config::{self, Config};
use zoneagent::error::ApiError;
use zoneagent::exec::{self, ToolError};
use zoneagent::model::name::Name;
use zoneagent::model::zone::decode_zone;
use zoneagent::render;
use zoneagent::validate::{self, ValidatedZone};

/// The SOA serial every golden zone is rendered with.
const SERIAL: u32 = 2_026_010_100;

const ZONE_JSON: &str = "zone.json";
const CONFIG_TOML: &str = "config.toml";
const EXPECTED_ZONE: &str = "expected.zone";
const EXPECTED_ERRORS: &str = "expected.errors.json";
const EXPECTED_WARNINGS: &str = "expected.warnings.json";
/// Every file name a case directory may hold.
const KNOWN_FILES: [&str; 5] = [
    ZONE_JSON,
    CONFIG_TOML,
    EXPECTED_ZONE,
    EXPECTED_ERRORS,
    EXPECTED_WARNINGS,
];

/// The program checked against; found on `PATH`.
const CHECKZONE: &str = "named-checkzone";

/// Whether expected files are compared or (re)written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Compare,
    Overwrite,
}

fn main() {
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials()).exit();
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/render")
}

/// One trial per case directory, plus a failing trial for anything in
/// `testdata/render/` that is not a case, for an unknown `SNAPSHOTS` value,
/// or for an empty suite.
fn trials() -> Vec<Trial> {
    let mode = match std::env::var("SNAPSHOTS").as_deref() {
        Err(_) | Ok("" | "compare") => Ok(Mode::Compare),
        Ok("overwrite") => Ok(Mode::Overwrite),
        Ok(other) => Err(format!(
            "SNAPSHOTS={other:?} is not understood: unset it to compare, or set \
             SNAPSHOTS=overwrite to rewrite the expected files"
        )),
    };
    let mode = match mode {
        Ok(m) => m,
        Err(msg) => return vec![failing("snapshots-mode", msg)],
    };
    let dir = cases_dir();
    let mut entries = match fs::read_dir(&dir).and_then(Iterator::collect::<Result<Vec<_>, _>>) {
        Ok(e) => e,
        Err(e) => {
            return vec![failing(
                "cases",
                format!("cannot list {}: {e}", dir.display()),
            )];
        }
    };
    entries.sort_by_key(fs::DirEntry::file_name);
    let mut trials = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            trials.push(Trial::test(name, move || run_case(&path, mode)));
        } else {
            trials.push(failing(
                &format!("stray/{name}"),
                format!(
                    "{} is not a case directory; cases are testdata/render/<case>/",
                    path.display()
                ),
            ));
        }
    }
    if trials.is_empty() {
        trials.push(failing(
            "cases",
            format!("no case directories in {}", dir.display()),
        ));
    }
    trials
}

fn failing(name: &str, msg: String) -> Trial {
    Trial::test(name, move || Err(Failed::from(msg)))
}

/// Runs one case; every problem in it is reported, not only the first.
fn run_case(dir: &Path, mode: Mode) -> Result<(), Failed> {
    let files = case_files(dir)?;
    let has = |f: &str| files.contains(f);
    if !has(ZONE_JSON) {
        return Err(format!("{}: no {ZONE_JSON} in the case", dir.display()).into());
    }
    if has(EXPECTED_ZONE) && has(EXPECTED_ERRORS) {
        return Err(format!(
            "{}: orphaned expected file: a case has {EXPECTED_ZONE} (valid) or \
             {EXPECTED_ERRORS} (invalid), not both; delete the wrong one",
            dir.display()
        )
        .into());
    }
    let config = if has(CONFIG_TOML) {
        config::parse(&read_text(&dir.join(CONFIG_TOML))?)
            .map_err(|e| format!("{}: {CONFIG_TOML}: {e}", dir.display()))?
    } else {
        Config::default()
    };
    let json = read_text(&dir.join(ZONE_JSON))?;

    let mut problems = Vec::new();
    match compile(&json, &config) {
        Ok(zone) => {
            let text = render::render(&zone, &config.render, SERIAL);
            let zone_ok = snapshot(dir, EXPECTED_ZONE, &text, mode, &mut problems);
            if zone.warnings.is_empty() {
                orphan(
                    dir,
                    EXPECTED_WARNINGS,
                    "validation returned no warnings",
                    mode,
                    &mut problems,
                );
            } else {
                snapshot(
                    dir,
                    EXPECTED_WARNINGS,
                    &pretty(&zone.warnings)?,
                    mode,
                    &mut problems,
                );
            }
            orphan(
                dir,
                EXPECTED_ERRORS,
                "the zone is valid",
                mode,
                &mut problems,
            );
            // Check the bytes on disk, which are what the suite vouches for;
            // when they are missing or stale, check what would be blessed.
            let (what, bytes) = if zone_ok {
                let bytes = fs::read(dir.join(EXPECTED_ZONE))
                    .map_err(|e| format!("cannot read {EXPECTED_ZONE}: {e}"))?;
                (EXPECTED_ZONE, bytes)
            } else {
                ("the rendered zone (not blessed)", text.into_bytes())
            };
            match run_checkzone(&zone.origin, &bytes, config.zone.strict) {
                Err(e) => problems.push(format!("{what} does not pass named-checkzone: {e}")),
                Ok(named) if !named.is_empty() && zone.warnings.is_empty() => {
                    problems.push(format!(
                        "named-checkzone warned about {what} but validation did not:\n{}",
                        named.join("\n")
                    ));
                }
                Ok(_) => {}
            }
        }
        Err(errors) => {
            snapshot(dir, EXPECTED_ERRORS, &pretty(&errors)?, mode, &mut problems);
            let why = "the zone is invalid";
            orphan(dir, EXPECTED_ZONE, why, mode, &mut problems);
            orphan(dir, EXPECTED_WARNINGS, why, mode, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n{}", dir.display(), problems.join("\n\n")).into())
    }
}

/// The file names in a case; anything unknown (a directory included) fails.
fn case_files(dir: &Path) -> Result<BTreeSet<String>, Failed> {
    let mut files = BTreeSet::new();
    let mut unexpected = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in rd {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && KNOWN_FILES.contains(&name.as_str()) {
            files.insert(name);
        } else {
            unexpected.push(name);
        }
    }
    if unexpected.is_empty() {
        Ok(files)
    } else {
        unexpected.sort();
        Err(format!(
            "{}: unexpected file(s) {unexpected:?}; a case holds only {KNOWN_FILES:?}",
            dir.display()
        )
        .into())
    }
}

/// Decodes and validates, as `zoneagent render` does.
fn compile(json: &str, config: &Config) -> Result<ValidatedZone, Vec<ApiError>> {
    let zone = decode_zone(json).map_err(|e| vec![e])?;
    validate::validate(&zone, &config.zone)
}

fn pretty(problems: &[ApiError]) -> Result<String, Failed> {
    let mut s = serde_json::to_string_pretty(problems)
        .map_err(|e| format!("cannot serialize problems: {e}"))?;
    s.push('\n');
    Ok(s)
}

fn read_text(path: &Path) -> Result<String, Failed> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// Compares `actual` with the expected file, or writes it. Returns whether
/// the file on disk now holds `actual`.
fn snapshot(dir: &Path, file: &str, actual: &str, mode: Mode, problems: &mut Vec<String>) -> bool {
    let path = dir.join(file);
    if mode == Mode::Overwrite {
        let stale = fs::read(&path).ok().as_deref() != Some(actual.as_bytes());
        if stale && let Err(e) = fs::write(&path, actual) {
            problems.push(format!("cannot write {}: {e}", path.display()));
            return false;
        }
        return true;
    }
    let expected = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problems.push(format!(
                "{file} is missing; bless it with `SNAPSHOTS=overwrite cargo test --test golden` \
                 and review it. It would be:\n{actual}"
            ));
            return false;
        }
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", path.display()));
            return false;
        }
    };
    if expected == actual.as_bytes() {
        return true;
    }
    let expected = String::from_utf8_lossy(&expected);
    let mut msg = format!(
        "{file} differs from the output (`-` expected, `+` actual); if the change is \
         intended, bless it with `SNAPSHOTS=overwrite cargo test --test golden`:\n"
    );
    let diff = TextDiff::from_lines(expected.as_ref(), actual);
    let _ = write!(
        msg,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("{file} (expected)"), "actual")
    );
    if expected.replace('\t', " ") == actual.replace('\t', " ") {
        msg.push_str("(the only differences are tabs against spaces)\n");
    }
    problems.push(msg);
    false
}

/// An expected file the outcome does not call for: an error when
/// comparing, removed when blessing.
fn orphan(dir: &Path, file: &str, why: &str, mode: Mode, problems: &mut Vec<String>) {
    let path = dir.join(file);
    if !path.exists() {
        return;
    }
    match mode {
        Mode::Compare => problems.push(format!(
            "orphaned expected file {file}: {why}; bless with \
             `SNAPSHOTS=overwrite cargo test --test golden` to remove it"
        )),
        Mode::Overwrite => {
            if let Err(e) = fs::remove_file(&path) {
                problems.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
    }
}

/// Loads `bytes` as the zone `origin` with named-checkzone as `named` does
/// (or strict); returns the warnings it printed.
fn run_checkzone(origin: &Name, bytes: &[u8], strict: bool) -> Result<Vec<String>, String> {
    let mut file = tempfile::Builder::new()
        .prefix("golden-")
        .suffix(".zone")
        .tempfile()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write {}: {e}", file.path().display()))?;
    let argv = checkzone::argv(Path::new(CHECKZONE), origin, file.path(), strict);
    let output = exec::run(&argv).map_err(|e| match e {
        ToolError::Spawn { source, .. } => format!(
            "cannot run `{CHECKZONE}` ({source}); the golden tests need BIND's tools: \
             install bind9-utils (`apt-get install bind9-utils`)"
        ),
        failed @ ToolError::Failed(_) => failed.to_string(),
    })?;
    checkzone::interpret(origin, SERIAL, output).map_err(|e| e.to_string())
}
