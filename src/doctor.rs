//! `zoneagent doctor`: checks a configuration against the machine it runs
//! on, one line per check (`ok`, `warn`, `FAIL`), each naming the config key
//! and the fix; and [`preflight`], the subset `run` does at start so that a
//! wrong `bind.server` stops the agent instead of stalling every deploy.
//!
//! It reads and asks; it never writes a file or changes `named`.

use crate::bind::confirm::{self, Probe, ZoneAnswer};
use crate::bind::query::VersionAnswer;
use crate::bind::rndc;
use crate::config::Config;
use crate::error::{EXIT_FAILURE, EXIT_OK};
use crate::exec;
use nix::unistd::{AccessFlags, Gid, Group, Uid, User, access};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one question to `named` may take in a check.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound for one tool run in a check (below `bind.tool_timeout` when
/// that is longer: the doctor is interactive).
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Served zones asked about: enough to see that `named` has them.
const SAMPLE: usize = 8;
/// Where Debian's AppArmor profile lets `named` write (BIND-NOTES.md).
const APPARMOR_DIRS: [&str; 2] = ["/var/lib/bind", "/var/cache/bind"];

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        })
    }
}

/// One check: what was looked at (a config key), what was found, and what
/// to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub level: Level,
    pub key: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(key: &'static str, detail: impl Into<String>) -> Check {
        Check {
            level: Level::Ok,
            key,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(key: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Warn,
            key,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(key: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            level: Level::Fail,
            key,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {:<15} {}", self.level, self.key, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// Runs every check and prints them, as text lines or one JSON document.
/// Exits non-zero when any check fails.
pub fn run(config: &Config, json: bool) -> i32 {
    let checks = checks(config);
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({
            "checks": checks,
            "failures": checks.iter().filter(|c| c.level == Level::Fail).count(),
            "warnings": checks.iter().filter(|c| c.level == Level::Warn).count(),
        });
        let _ = writeln!(out, "{doc}");
    } else {
        for c in &checks {
            let _ = writeln!(out, "{c}");
        }
    }
    if failed { EXIT_FAILURE } else { EXIT_OK }
}

/// Every check, in the order an operator fixes them.
pub fn checks(config: &Config) -> Vec<Check> {
    let mut checks = vec![
        dir_check("paths.spool", &config.paths.spool),
        dir_check("paths.state", &config.paths.state),
        dir_check("paths.zones", &config.paths.zones),
        include_writable(&config.paths.include),
        bind_can_read(config),
        tool_check("bind.checkzone", &config.bind.checkzone),
        tool_check("bind.checkconf", &config.bind.checkconf),
        rndc_check(config).check,
    ];
    checks.push(server_check(config).check);
    checks.extend(named_conf_checks(config));
    checks.push(socket_check(config));
    checks.push(apparmor_check(config));
    checks
}

/// What `run` learns at start about `named`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// `rndc` works and `named` answers at `bind.server`.
    Ready,
    /// `rndc` works and `named` answers at `bind.server`, but has not loaded
    /// the zones the agent installed (a crash came before the reconfig, or
    /// the include was replaced): start, and reconfigure it.
    NotLoaded { detail: String },
    /// Neither `rndc` nor `bind.server` answers: `named` is down (boot
    /// order, a restart). Start anyway and retry.
    NamedDown { detail: String },
    /// `named` answers at `bind.server` but `rndc` does not: reloads will
    /// fail until `bind.rndc` is fixed; start anyway and retry.
    RndcFailing { detail: String },
    /// `rndc` works but `bind.server` does not answer, or answers for none
    /// of the served zones: a configuration error.
    Misconfigured { key: &'static str, detail: String },
}

/// The fatal subset of the checks, for `run`.
pub fn preflight(config: &Config) -> Preflight {
    let rndc = rndc_check(config);
    let server = server_check(config);
    match (rndc.works, server.check.level != Level::Fail) {
        (true, true) if server.check.level == Level::Warn => Preflight::NotLoaded {
            detail: server.check.detail,
        },
        (true, true) => Preflight::Ready,
        (true, false) => Preflight::Misconfigured {
            key: "bind.server",
            detail: format!(
                "{} while rndc reaches named; set bind.server to where named listens (listen-on in named.conf)",
                server.check.detail
            ),
        },
        (false, true) => Preflight::RndcFailing {
            detail: rndc.check.detail,
        },
        (false, false) => Preflight::NamedDown {
            detail: format!("{}; {}", rndc.check.detail, server.check.detail),
        },
    }
}

/// [`preflight`] for `run`: stops at a configuration error (exit 78, naming the key); a `named` that
/// is down is only a warning: the agent starts and retries. `Ok(true)`: named
/// has not loaded the installed zones, and the agent reconfigures it.
pub fn check_at_start(config: &Config) -> Result<bool, i32> {
    match preflight(config) {
        Preflight::Ready => Ok(false),
        Preflight::NotLoaded { detail } => {
            tracing::warn!(key = "bind.server", %detail, "named has not loaded the installed zones; reconfiguring it");
            Ok(true)
        }
        Preflight::NamedDown { detail } => {
            tracing::warn!(%detail, "named is down; starting anyway, reloads are retried");
            Ok(false)
        }
        Preflight::RndcFailing { detail } => {
            tracing::warn!(key = "bind.rndc", %detail, "named answers but rndc fails; reloads are retried");
            Ok(false)
        }
        Preflight::Misconfigured { key, detail } => {
            tracing::error!(key, %detail, "invalid configuration: {key}");
            Err(crate::error::EXIT_CONFIG)
        }
    }
}

fn dir_check(key: &'static str, path: &Path) -> Check {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => Check::fail(
            key,
            format!("{shown} is not a directory"),
            format!("point {key} at a directory"),
        ),
        Ok(_) if access(path, AccessFlags::W_OK | AccessFlags::X_OK).is_err() => Check::fail(
            key,
            format!("{shown} is not writable by uid {}", Uid::effective()),
            format!(
                "chown it to the agent's user (install -d -o zoneagent -g bind -m 0750 {shown})"
            ),
        ),
        Ok(_) => Check::ok(key, format!("{shown} exists and is writable")),
        Err(_) => match nearest_ancestor(path) {
            Some(a) if access(&a, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() => Check::warn(
                key,
                format!("{shown} does not exist yet (the agent creates it)"),
                "systemd-tmpfiles --create zoneagent.conf, or let the first run create it",
            ),
            _ => Check::fail(
                key,
                format!(
                    "{shown} does not exist and cannot be created by uid {}",
                    Uid::effective()
                ),
                format!("install -d -o zoneagent -g bind -m 0750 {shown}"),
            ),
        },
    }
}

fn nearest_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|a| a.is_dir())
        .map(Path::to_owned)
}

fn include_writable(include: &Path) -> Check {
    let key = "paths.include";
    let shown = include.display();
    let Some(dir) = include.parent() else {
        return Check::fail(
            key,
            format!("{shown} has no directory"),
            "use an absolute path",
        );
    };
    if !dir.is_dir() {
        return Check::fail(
            key,
            format!("{} does not exist", dir.display()),
            format!("install -d -o zoneagent -g bind -m 0750 {}", dir.display()),
        );
    }
    // The file is replaced by a rename, so its directory must be writable.
    if access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
        return Check::fail(
            key,
            format!(
                "{} is not writable by uid {}",
                dir.display(),
                Uid::effective()
            ),
            "the include is written beside itself and renamed: its directory must be the agent's",
        );
    }
    if !include.exists() {
        return Check::warn(
            key,
            format!(
                "{shown} does not exist: named fails to start while it includes a missing file"
            ),
            format!("create it empty: install -m 0640 -o zoneagent -g bind /dev/null {shown}"),
        );
    }
    Check::ok(key, format!("{shown} exists and its directory is writable"))
}

/// Whether `user` (with its groups) may read `path` and search every
/// directory above it, by the mode bits.
fn readable_by(path: &Path, uid: Uid, gids: &[Gid]) -> bool {
    let allowed = |p: &Path, bits: u32| {
        let Ok(m) = std::fs::metadata(p) else {
            return false;
        };
        let mode = m.mode();
        if uid.is_root() {
            return true;
        }
        let shift = if m.uid() == uid.as_raw() {
            6
        } else if gids.iter().any(|g| g.as_raw() == m.gid()) {
            3
        } else {
            0
        };
        (mode >> shift) & bits == bits
    };
    let searchable = path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .all(|a| allowed(a, 0o1));
    let bits = if path.is_dir() { 0o5 } else { 0o4 };
    searchable && allowed(path, bits)
}

fn bind_can_read(config: &Config) -> Check {
    let key = "paths.zones";
    let Ok(Some(user)) = User::from_name("bind") else {
        return Check::warn(
            key,
            "there is no `bind` user to check the zone files against",
            "install bind9, or check by hand that named's user can read paths.zones",
        );
    };
    let name = std::ffi::CString::new("bind").unwrap_or_default();
    let gids = nix::unistd::getgrouplist(&name, user.gid).unwrap_or_else(|_| vec![user.gid]);
    let mut unreadable = Vec::new();
    if config.paths.zones.is_dir() {
        if !readable_by(&config.paths.zones, user.uid, &gids) {
            unreadable.push(config.paths.zones.clone());
        }
        let files = std::fs::read_dir(&config.paths.zones)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "zone"));
        for f in files {
            if !readable_by(&f, user.uid, &gids) {
                unreadable.push(f);
            }
        }
    }
    if config.paths.include.exists() && !readable_by(&config.paths.include, user.uid, &gids) {
        unreadable.push(config.paths.include.clone());
    }
    if unreadable.is_empty() {
        return Check::ok(
            key,
            "the zone files and the include are readable by the bind user",
        );
    }
    let shown: Vec<String> = unreadable
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    Check::fail(
        key,
        format!(
            "{} path(s) not readable by the bind user (named): {}",
            unreadable.len(),
            shown.join(", ")
        ),
        "give group bind read access (chgrp bind, chmod g+rX) along the whole path",
    )
}

fn tool_check(key: &'static str, program: &Path) -> Check {
    let argv: Vec<OsString> = vec![program.into(), "-v".into()];
    match exec::run_with_timeout(&argv, TOOL_TIMEOUT) {
        Ok(out) if out.success => {
            Check::ok(key, format!("{} {}", program.display(), out.stdout.trim()))
        }
        Ok(out) => Check::fail(
            key,
            format!("`{} -v` failed: {}", program.display(), out.stderr.trim()),
            "install bind9-utils, or point the key at the program",
        ),
        Err(e) => Check::fail(
            key,
            e.to_string(),
            "install bind9-utils, or point the key at the program",
        ),
    }
}

struct RndcCheck {
    works: bool,
    check: Check,
}

/// One `rndc` command as `bind.rndc` names it, within the doctor's time.
fn run_rndc(config: &Config, command: &rndc::Command) -> Result<exec::ToolOutput, exec::ToolError> {
    let argv = rndc::argv(&config.bind.rndc, command);
    let timeout = config.bind.tool_timeout.min(TOOL_TIMEOUT);
    exec::run_with_timeout(&argv, timeout).and_then(rndc::interpret)
}

fn rndc_check(config: &Config) -> RndcCheck {
    let key = "bind.rndc";
    let argv = rndc::argv(&config.bind.rndc, &rndc::Command::Status);
    match run_rndc(config, &rndc::Command::Status) {
        Ok(out) => {
            let version = out.stdout.lines().next().unwrap_or("").trim().to_owned();
            RndcCheck {
                works: true,
                check: Check::ok(
                    key,
                    format!("`{}` works: {version}", exec::show_argv(&argv)),
                ),
            }
        }
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            let said = match &e {
                exec::ToolError::Failed(f) => f.output.stderr.trim().replace('\n', " "),
                _ => String::new(),
            };
            RndcCheck {
                works: false,
                check: Check::fail(
                    key,
                    format!("{first} {said}").trim_end().to_owned(),
                    "check that named runs and that bind.rndc names its control channel and key (-s, -p, -k or -c)",
                ),
            }
        }
    }
}

struct ServerCheck {
    check: Check,
}

/// A few domains the agent has installed and `named` has confirmed: the
/// `<domain>.zone` files in `paths.zones` (a directory listing, cheap even
/// with many zones), less the reloads still pending.
fn served_sample(config: &Config) -> Vec<String> {
    let store = crate::store::Store::open_read_only(&config.paths.state);
    // Zones waiting for named (pending), or whose install a crash cut short
    // (installing), may not be loaded yet: named not serving them says
    // nothing about bind.server.
    let inflight = store.load_inflight().unwrap_or_default();
    let pending: BTreeSet<String> = inflight
        .pending
        .into_iter()
        .chain(inflight.installing)
        .collect();
    let Ok(dir) = std::fs::read_dir(&config.paths.zones) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let domain = name.strip_suffix(".zone")?;
            (!domain.starts_with('.') && e.file_type().ok()?.is_file()).then(|| domain.to_owned())
        })
        .filter(|d| !pending.contains(d))
        .take(SAMPLE)
        .collect()
}

fn server_check(config: &Config) -> ServerCheck {
    let key = "bind.server";
    let server = config.bind.server;
    let sample = served_sample(config);
    if !sample.is_empty() {
        let c = confirm::served(server, &sample, QUERY_TIMEOUT);
        let serving = c
            .outcome
            .values()
            .filter(|a| matches!(a, ZoneAnswer::Serial(_)))
            .count();
        let check = if serving > 0 {
            Check::ok(
                key,
                format!(
                    "named answers at {server} for {serving} of {} served zone(s) asked",
                    sample.len()
                ),
            )
        } else if c.any_answer() {
            not_serving(config, &sample, &confirm::explain(&c))
        } else {
            no_answer(server, c.unreachable)
        };
        return ServerCheck { check };
    }
    let check = match confirm::probe_version(server, QUERY_TIMEOUT) {
        Probe::Answered(VersionAnswer::Text(v)) => Check::ok(
            key,
            format!(
                "named answers at {server} (version.bind: {v}); no zone deployed yet to ask about"
            ),
        ),
        Probe::Answered(VersionAnswer::Rcode(r)) => Check::ok(
            key,
            format!(
                "named answers at {server} (version.bind: {r}); no zone deployed yet to ask about"
            ),
        ),
        Probe::NoAnswer { unreachable } => no_answer(server, unreachable),
    };
    ServerCheck { check }
}

/// `bind.server` answers but serves none of the zones asked. Either it is
/// another server (a resolver, another named), or named has not loaded the
/// zones yet: a crash between an install and its reconfig leaves files named
/// never heard of, and the agent reconfigures it at start. `rndc
/// zonestatus` tells the two apart: the named rndc reaches has the zone (the
/// address is wrong) or does not (a warning: the agent starts and loads it).
fn not_serving(config: &Config, sample: &[String], explained: &str) -> Check {
    let key = "bind.server";
    let server = config.bind.server;
    let asked = format!(
        "{server} answers, but for none of the served zones asked: {}",
        one_line(explained)
    );
    let status = sample
        .first()
        .and_then(|d| crate::model::name::parse_domain(d).ok())
        .map(|zone| {
            let said = run_rndc(config, &rndc::Command::ZoneStatus(zone.clone()));
            (zone, said)
        });
    match status {
        Some((zone, Err(e))) if rndc::says(&e, "not found") => Check::warn(
            key,
            format!("{asked}; rndc says named has no zone {zone} yet"),
            "nothing to fix if the agent is about to start: it reconfigures named at start",
        ),
        _ => Check::fail(
            key,
            asked,
            "set bind.server to the named that loads paths.include",
        ),
    }
}

fn no_answer(server: SocketAddr, unreachable: bool) -> Check {
    let why = if unreachable {
        "connection refused (ICMP port unreachable): nothing listens there".to_owned()
    } else {
        format!("no reply within {QUERY_TIMEOUT:?}")
    };
    Check::fail(
        "bind.server",
        format!("nothing answers DNS queries at {server}: {why}"),
        "set bind.server to an address:port in named's listen-on",
    )
}

fn one_line(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join("; ")
}

fn named_conf_checks(config: &Config) -> Vec<Check> {
    let key = "bind.named_conf";
    let conf = &config.bind.named_conf;
    if !conf.is_file() {
        return vec![Check::fail(
            key,
            format!("{} does not exist", conf.display()),
            "set bind.named_conf to named's configuration file",
        )];
    }
    let mut checks = Vec::new();
    let argv: Vec<OsString> = vec![
        config.bind.checkconf.clone().into(),
        "-p".into(),
        conf.clone().into(),
    ];
    let timeout = config.bind.tool_timeout.min(TOOL_TIMEOUT);
    checks.push(match exec::run_with_timeout(&argv, timeout) {
        Ok(out) if out.success => Check::ok(
            key,
            format!("`named-checkconf -p {}` accepts it", conf.display()),
        ),
        Ok(out) => Check::fail(
            key,
            format!(
                "named-checkconf refuses {}: {}",
                conf.display(),
                one_line(format!("{}{}", out.stdout, out.stderr).trim())
            ),
            "fix named's configuration: named will not restart with it",
        ),
        Err(e) => Check::warn(key, one_line(&e.to_string()), "check bind.checkconf"),
    });
    let wanted = std::fs::canonicalize(&config.paths.include)
        .unwrap_or_else(|_| config.paths.include.clone());
    let mut seen = Vec::new();
    let found = includes(conf, &mut seen, 0)
        .iter()
        .any(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()) == wanted);
    let line = format!("include \"{}\";", config.paths.include.display());
    checks.push(if found {
        Check::ok(
            "paths.include",
            format!(
                "named's configuration includes {}",
                config.paths.include.display()
            ),
        )
    } else {
        Check::fail(
            "paths.include",
            format!(
                "{} is not included by {} or the files it includes",
                config.paths.include.display(),
                conf.display()
            ),
            format!("add `{line}` to named.conf.local, then rndc reconfig"),
        )
    });
    checks
}

/// Every file `include`d from `conf`, recursively (named.conf(5): `include
/// "file";`, relative paths from the including file's directory).
fn includes(conf: &Path, seen: &mut Vec<PathBuf>, depth: usize) -> Vec<PathBuf> {
    if depth > 16 || seen.iter().any(|s| s == conf) {
        return Vec::new();
    }
    seen.push(conf.to_owned());
    let Ok(text) = std::fs::read_to_string(conf) else {
        return Vec::new();
    };
    let text = strip_comments(&text);
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("include") {
        let before_ok = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == ';' || c == '{' || c == '}');
        rest = &rest[i + "include".len()..];
        let trimmed = rest.trim_start();
        if !before_ok || !trimmed.starts_with('"') {
            continue;
        }
        let Some(end) = trimmed[1..].find('"') else {
            break;
        };
        let mut path = PathBuf::from(&trimmed[1..=end]);
        if path.is_relative()
            && let Some(dir) = conf.parent()
        {
            path = dir.join(path);
        }
        found.extend(includes(&path, seen, depth + 1));
        found.push(path);
    }
    found
}

/// named.conf text without its comments (`//`, `#`, `/* */`), strings kept.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) | ('#', _) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

fn socket_check(config: &Config) -> Check {
    let key = "socket.path";
    let Some(path) = &config.socket.path else {
        return Check::ok(key, "no socket configured (producers use the spool)");
    };
    if let Ok(Some(bind)) = Group::from_name("bind")
        && config.socket.allowed_gids.contains(&bind.gid.as_raw())
    {
        return Check::warn(
            "socket.allowed_gids",
            "group bind may submit: its members can also read rndc.key",
            "give producers their own group (zoneagent-submit) and list that instead",
        );
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => Check::fail(
            key,
            format!("{} exists and is not a socket", path.display()),
            "remove it or choose another socket.path",
        ),
        Ok(m) if m.mode() & 0o777 != config.socket.mode => Check::warn(
            "socket.mode",
            format!(
                "{} has mode {:04o}, configured {:04o}",
                path.display(),
                m.mode() & 0o777,
                config.socket.mode
            ),
            "restart the agent to recreate the socket",
        ),
        Ok(_) => Check::ok(
            key,
            format!(
                "{} is a socket with mode {:04o}",
                path.display(),
                config.socket.mode
            ),
        ),
        Err(_) => match path.parent() {
            Some(dir) if dir.is_dir() => Check::ok(
                key,
                format!("{} is created by `run` (not running now)", path.display()),
            ),
            _ => Check::warn(
                key,
                format!("the directory of {} does not exist", path.display()),
                "under systemd RuntimeDirectory=zoneagent creates /run/zoneagent",
            ),
        },
    }
}

fn apparmor_check(config: &Config) -> Check {
    let key = "paths.zones";
    let outside: Vec<&PathBuf> = [&config.paths.zones, &config.paths.include]
        .into_iter()
        .filter(|p| !APPARMOR_DIRS.iter().any(|d| p.starts_with(d)))
        .collect();
    if outside.is_empty() {
        return Check::ok(
            key,
            "zones lie where named's AppArmor profile lets it read and write",
        );
    }
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let profile = Path::new("/etc/apparmor.d/usr.sbin.named").exists();
    let shown: Vec<String> = outside.iter().map(|p| p.display().to_string()).collect();
    if enabled && profile {
        Check::warn(
            key,
            format!(
                "{} lie outside /var/lib/bind and /var/cache/bind, where named's AppArmor profile may deny access",
                shown.join(", ")
            ),
            "move them under /var/lib/bind, or allow them in /etc/apparmor.d/local/usr.sbin.named",
        )
    } else {
        Check::ok(
            key,
            format!(
                "{} lie outside /var/lib/bind, but AppArmor does not confine named here",
                shown.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_level_key_and_fix() {
        let c = Check::fail("bind.server", "nothing answers", "set it");
        assert_eq!(
            c.to_string(),
            "FAIL bind.server     nothing answers; fix: set it"
        );
        assert_eq!(Check::ok("k", "d").to_string(), "ok   k               d");
        assert_eq!(
            Check::warn("k", "d", "f").to_string(),
            "warn k               d; fix: f"
        );
    }

    #[test]
    fn follows_includes_and_skips_comments() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("named.conf");
        let local = dir.path().join("named.conf.local");
        std::fs::write(
            &main,
            "options { directory \"/x\"; };\n// include \"/commented.conf\";\n/* include \"/c2\"; */\ninclude \"named.conf.local\";\n",
        )
        .unwrap();
        std::fs::write(
            &local,
            "# local\ninclude \"/var/lib/bind/zoneagent/named.conf.zoneagent\";\n",
        )
        .unwrap();
        let found = includes(&main, &mut Vec::new(), 0);
        assert_eq!(
            found,
            [
                PathBuf::from("/var/lib/bind/zoneagent/named.conf.zoneagent"),
                local.clone()
            ]
        );
    }

    #[test]
    fn readable_by_follows_mode_bits() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.zone");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let nobody = Uid::from_raw(65_534);
        assert!(!readable_by(&f, nobody, &[]));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(readable_by(&f, nobody, &[]));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!readable_by(&f, nobody, &[]));
    }
}
