//! Configuration: one TOML file, every key optional, defaults that work.
//!
//! `load` reads the file; the pure [`parse`] does the work and is what the
//! tests call (the ripgrep pattern). [`RawConfig`] mirrors the file exactly
//! (unknown keys are refused, so a typo is an error, not a silent default);
//! [`Config`] is the checked result that the rest of the program uses.

use crate::logtext::Escaped;
use crate::model::name::{self, Name};
use crate::render::{RenderOptions, SoaFields};
use crate::validate::{MAX_TTL, ZoneDefaults};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Syntax(String),
    #[error("invalid config key `{key}`: {detail}")]
    Key { key: &'static str, detail: String },
}

fn key_err(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key,
        detail: detail.into(),
    }
}

/// How SOA serials advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SerialPolicy {
    /// `YYYYMMDDnn` (RFC 1912 §2.2), the default.
    #[default]
    Date,
    /// Seconds since the epoch.
    Unixtime,
    /// One more than the last serial.
    Increment,
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub soa: RawSoa,
    #[serde(default)]
    pub zone: RawZone,
    #[serde(default)]
    pub bind: RawBind,
    #[serde(default)]
    pub spool: RawSpool,
    #[serde(default)]
    pub socket: RawSocket,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub validate: RawValidate,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub verify: RawVerify,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub dnssec: RawDnssec,
    /// Fleet mode: the catalog zone secondaries follow (absent: off).
    #[serde(default)]
    pub catalog: Option<RawCatalog>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `address:port` to serve `/metrics` and `/healthz` on; unset: off.
    pub listen: Option<String>,
    /// Allow a `listen` address that is not loopback.
    pub allow_remote: Option<bool>,
}

/// `[catalog]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    pub zone: Option<String>,
    pub secondaries: Option<Vec<String>>,
    pub tsig_key_file: Option<PathBuf>,
    pub max_removal_share: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// Refuse zones that `named` serves with a warning (see
    /// [`ZoneDefaults::strict`]).
    pub strict: Option<bool>,
}

/// `[verify]`: the daemon's periodic comparison of what named serves with
/// the state.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// Seconds between verifications; 0 (the default): off.
    pub seconds: Option<u64>,
    /// Rewrite and reload the zones found drifted.
    pub repair: Option<bool>,
}

/// The daemon's periodic verification (`[verify]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Seconds between verifications; 0: off.
    pub seconds: u64,
    pub repair: bool,
}

/// `[api]`: where `zoneagent pull` reads the platform's zones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub url: Option<String>,
    pub token_file: Option<PathBuf>,
    pub resync_seconds: Option<u64>,
    pub max_removal_share: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub retries: Option<u32>,
    pub concurrency: Option<usize>,
    pub ca_file: Option<PathBuf>,
}

/// `[dnssec]`: signing by `named` itself (see [`crate::dnssec`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    /// The `dnssec-policy` every selected zone is signed with (`default`
    /// or a policy `named.conf` defines); unset: nothing is signed.
    pub policy: Option<String>,
    /// Where `named` keeps the zones' keys; it must be able to write there.
    pub key_directory: Option<PathBuf>,
    /// Sign only these domains (default: every zone).
    pub only: Option<Vec<String>>,
    /// Never sign these domains.
    pub except: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub spool: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub zones: Option<PathBuf>,
    pub include: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoa {
    pub mname: Option<String>,
    pub rname: Option<String>,
    pub refresh: Option<i64>,
    pub retry: Option<i64>,
    pub expire: Option<i64>,
    pub minimum: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub nameservers: Option<Vec<String>>,
    pub default_ttl: Option<i64>,
    pub serial: Option<SerialPolicy>,
    /// Extra text placed inside every zone's stanza in the include file
    /// (e.g. `allow-transfer { 192.0.2.53; };`).
    pub options: Option<String>,
    /// Most records a zone may have before it is held (not served).
    pub max_records: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBind {
    pub checkzone: Option<PathBuf>,
    pub checkconf: Option<PathBuf>,
    pub rndc: Option<Vec<String>>,
    /// Seconds to wait for `named` to serve a new serial after a reload.
    pub confirm_timeout: Option<f64>,
    /// Where the local `named` answers queries (`127.0.0.1:53`), to
    /// confirm the served serial.
    pub server: Option<String>,
    /// Seconds any one run of `rndc`, `named-checkzone` or
    /// `named-checkconf` may take before it is killed.
    pub tool_timeout: Option<f64>,
    /// named's own configuration (default `/etc/bind/named.conf`), which
    /// must include `paths.include`.
    pub named_conf: Option<PathBuf>,
    /// Talk to `named`'s control channel directly instead of running
    /// `rndc`: `"127.0.0.1:953"`, or `"rndc"` to take the address and key
    /// from the `rndc` argv (`-s`, `-p`, `-k`, `-c`) as `rndc` would.
    pub control: Option<String>,
    /// The key file for `control` (default: the one the `rndc` argv
    /// names, else `rndc`'s own default).
    pub control_key_file: Option<PathBuf>,
    /// New zones through `rndc addzone`, deleted ones through `delzone`,
    /// instead of the include and a reconfig (needs `allow-new-zones yes;`).
    pub add_zones: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub max_event_bytes: Option<u64>,
    pub rescan_seconds: Option<f64>,
    /// Bytes of spool files read in one dispatcher pass.
    pub max_pass_bytes: Option<u64>,
    /// Failed events kept in `failed/` (each with its report).
    pub failed_keep: Option<u64>,
    /// Days a failed event is kept in `failed/`.
    pub failed_max_age_days: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSocket {
    pub path: Option<PathBuf>,
    pub mode: Option<String>,
    pub allowed_uids: Option<Vec<u32>>,
    pub allowed_gids: Option<Vec<u32>>,
    /// Connections served at once; more are refused at once.
    pub max_connections: Option<u64>,
    /// The group the socket file is given to (producers' group).
    pub group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
}

/// How the daemon writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where the agent keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub spool: PathBuf,
    pub state: PathBuf,
    pub zones: PathBuf,
    pub include: PathBuf,
}

/// How the agent reaches BIND.
#[derive(Debug, Clone, PartialEq)]
pub struct BindConfig {
    pub checkzone: PathBuf,
    pub checkconf: PathBuf,
    /// argv prefix for `rndc`, e.g. `["rndc", "-s", "127.0.0.1", "-p", "953"]`.
    pub rndc: Vec<String>,
    pub confirm_timeout: f64,
    pub server: std::net::SocketAddr,
    /// Deadline of every tool run.
    pub tool_timeout: std::time::Duration,
    /// named's own configuration file.
    pub named_conf: PathBuf,
    /// How to reach `named`'s control channel without `rndc`, if at all.
    pub control: Control,
    /// New and deleted zones through `addzone`/`delzone`.
    pub add_zones: bool,
}

/// Signing by `named`'s own signer (`[dnssec]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnssecConfig {
    /// The `dnssec-policy` of the selected zones.
    pub policy: String,
    pub key_directory: PathBuf,
    /// A-label domains; empty: every zone is selected.
    pub only: BTreeSet<String>,
    /// A-label domains never selected.
    pub except: BTreeSet<String>,
}

/// How control commands reach `named`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Control {
    /// Run the `rndc` program for each command.
    #[default]
    Rndc,
    /// The agent's own client, at the address and with the key the `rndc`
    /// argv names (`control_key_file` overrides the key).
    FromRndc { key_file: Option<PathBuf> },
    /// The agent's own client at this address.
    At {
        addr: std::net::SocketAddr,
        key_file: Option<PathBuf>,
    },
}

/// The Unix socket source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// None: no socket is opened.
    pub path: Option<PathBuf>,
    pub mode: u32,
    /// Peers allowed besides the agent's own uid (empty: only that uid and
    /// root).
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
    /// Connections served at once; one more is answered `busy` and closed.
    pub max_connections: usize,
    /// The group the socket file is given to (`zoneagent-submit`): with a
    /// mode that gives others no write, the kernel lets only its members
    /// (and root and the agent) connect, so every peer that connects is
    /// allowed.
    pub group: Option<String>,
}

/// Bounds on the spool's work and what it keeps (`[spool]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Bytes of spool files one dispatcher pass reads before it stops and
    /// leaves the rest for the next pass (at least one file is read).
    pub max_pass_bytes: u64,
    /// Failed events kept in `failed/`, newest first.
    pub failed_keep: usize,
    /// Failed events older than this are removed from `failed/`.
    pub failed_max_age: std::time::Duration,
}

/// Default of `spool.max_pass_bytes`: 64 MiB.
pub const DEFAULT_MAX_PASS_BYTES: u64 = 64 * 1024 * 1024;
/// Default of `spool.failed_keep`.
pub const DEFAULT_FAILED_KEEP: usize = 10_000;
/// Default of `spool.failed_max_age_days`.
pub const DEFAULT_FAILED_MAX_AGE_DAYS: f64 = 30.0;
/// Default of `socket.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_pass_bytes: DEFAULT_MAX_PASS_BYTES,
            failed_keep: DEFAULT_FAILED_KEEP,
            failed_max_age: std::time::Duration::from_secs_f64(
                DEFAULT_FAILED_MAX_AGE_DAYS * 86400.0,
            ),
        }
    }
}

/// The platform's API, for `pull` (see [`crate::pull`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// Base URL, e.g. `https://admin.vps.org` (the `/api/v1/dns-zones/`
    /// path is added); `None`: `pull` needs `--api`.
    pub url: Option<String>,
    /// File holding the Bearer token (never logged).
    pub token_file: Option<PathBuf>,
    /// Periodic pull by the daemon; 0 is off (the default).
    pub resync_seconds: u64,
    /// A pull that would remove more than this share of the zones is
    /// refused without `--allow-mass-delete`.
    pub max_removal_share: f64,
    /// Per request, connect to last byte.
    pub timeout_seconds: f64,
    /// Retries of a 5xx or a timeout, with doubling backoff.
    pub retries: u32,
    /// Zone details fetched at once.
    pub concurrency: usize,
    /// PEM file of the CA certificates to trust for HTTPS instead of the
    /// Mozilla roots (a platform behind a private CA).
    pub ca_file: Option<PathBuf>,
}

/// The Prometheus endpoint (`[metrics]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` and `/healthz` are served; `None`: not at all.
    pub listen: Option<std::net::SocketAddr>,
}

/// Fleet mode: the catalog zone (RFC 9432) the agent writes and the
/// secondaries that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogConfig {
    /// The catalog zone's name.
    pub zone: Name,
    /// NOTIFY targets, allowed to transfer with the key.
    pub secondaries: Vec<std::net::SocketAddr>,
    /// The transfer key, as `tsig-keygen` writes it.
    pub tsig_key_file: PathBuf,
    /// The largest share of the zones one `sync` or `import` may remove
    /// without `--allow-mass-delete`.
    pub max_removal_share: f64,
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub paths: Paths,
    pub render: RenderOptions,
    pub zone: ZoneDefaults,
    pub serial: SerialPolicy,
    pub zone_options: String,
    pub bind: BindConfig,
    pub max_event_bytes: u64,
    pub rescan_seconds: f64,
    pub spool_limits: SpoolLimits,
    pub socket: SocketConfig,
    pub log_format: LogFormat,
    /// Most records a zone may have before it is held: every change of a
    /// zone rewrites its whole record, so this bounds the cost of one.
    pub max_records: usize,
    pub api: ApiConfig,
    pub verify: VerifyConfig,
    pub metrics: MetricsConfig,
    /// `None`: no zone is signed.
    pub dnssec: Option<DnssecConfig>,
    /// Fleet mode; `None`: the agent serves only its own `named`.
    pub catalog: Option<CatalogConfig>,
}

/// Default nameservers: the platform's own.
pub const DEFAULT_NAMESERVERS: [&str; 2] = ["ns1.vps.org.", "ns2.vps.org."];

impl Default for Config {
    fn default() -> Self {
        parse("").unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// Parses and checks configuration text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    check(raw)
}

fn u32_key(
    key: &'static str,
    value: Option<i64>,
    default: u32,
    max: i64,
) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if (0..=max).contains(&v) => {
            u32::try_from(v).map_err(|_| key_err(key, format!("must be between 0 and {max}")))
        }
        Some(v) => Err(key_err(
            key,
            format!("must be between 0 and {max}, got {v}"),
        )),
    }
}

fn host_key(key: &'static str, value: &str) -> Result<Name, ConfigError> {
    let n = name::parse_domain(value).map_err(|e| key_err(key, e))?;
    Ok(n)
}

/// Turns `hostmaster@example.net` into `hostmaster.example.net`; a name is
/// taken as is.
fn rname_key(value: &str) -> Result<Name, ConfigError> {
    let text = match value.split_once('@') {
        Some((local, domain)) => {
            if local.contains('.') {
                return Err(key_err(
                    "soa.rname",
                    "the mailbox's local part must not contain a dot",
                ));
            }
            format!("{local}.{domain}")
        }
        None => value.to_owned(),
    };
    host_key("soa.rname", &text)
}

fn check(raw: RawConfig) -> Result<Config, ConfigError> {
    let nameservers = match raw.zone.nameservers {
        Some(list) => list,
        None => DEFAULT_NAMESERVERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    };
    if nameservers.is_empty() {
        return Err(key_err(
            "zone.nameservers",
            "must list at least one nameserver",
        ));
    }
    let nameservers = nameservers
        .iter()
        .map(|n| host_key("zone.nameservers", n))
        .collect::<Result<Vec<_>, _>>()?;
    let mname = match raw.soa.mname {
        Some(m) => host_key("soa.mname", &m)?,
        None => nameservers[0].clone(),
    };
    let rname = rname_key(raw.soa.rname.as_deref().unwrap_or("hostmaster.vps.org."))?;
    let soa = SoaFields {
        mname,
        rname,
        refresh: u32_key("soa.refresh", raw.soa.refresh, 7200, MAX_TTL)?,
        retry: u32_key("soa.retry", raw.soa.retry, 3600, MAX_TTL)?,
        expire: u32_key("soa.expire", raw.soa.expire, 1_209_600, MAX_TTL)?,
        minimum: u32_key("soa.minimum", raw.soa.minimum, 300, MAX_TTL)?,
    };
    let default_ttl = u32_key("zone.default_ttl", raw.zone.default_ttl, 3600, MAX_TTL)?;

    let state = raw
        .paths
        .state
        .unwrap_or_else(|| PathBuf::from("/var/lib/zoneagent"));
    let paths = Paths {
        spool: raw
            .paths
            .spool
            .unwrap_or_else(|| PathBuf::from("/var/spool/zoneagent")),
        zones: raw
            .paths
            .zones
            .unwrap_or_else(|| PathBuf::from("/var/lib/bind/zoneagent")),
        include: raw
            .paths
            .include
            .unwrap_or_else(|| PathBuf::from("/var/lib/bind/zoneagent/named.conf.zoneagent")),
        state,
    };

    let rndc = raw.bind.rndc.unwrap_or_else(|| vec!["rndc".to_owned()]);
    if rndc.is_empty() || rndc[0].is_empty() {
        return Err(key_err("bind.rndc", "must name the rndc program first"));
    }
    let confirm_timeout = raw.bind.confirm_timeout.unwrap_or(10.0);
    if !(confirm_timeout > 0.0 && confirm_timeout <= 3600.0) {
        return Err(key_err(
            "bind.confirm_timeout",
            "must be between 0 and 3600 seconds",
        ));
    }
    let tool_timeout = raw.bind.tool_timeout.unwrap_or(60.0);
    if !(tool_timeout > 0.0 && tool_timeout <= 3600.0) {
        return Err(key_err(
            "bind.tool_timeout",
            "must be between 0 and 3600 seconds",
        ));
    }
    let bind = BindConfig {
        checkzone: raw
            .bind
            .checkzone
            .unwrap_or_else(|| PathBuf::from("named-checkzone")),
        checkconf: raw
            .bind
            .checkconf
            .unwrap_or_else(|| PathBuf::from("named-checkconf")),
        rndc,
        confirm_timeout,
        server: match raw.bind.server.as_deref() {
            None => std::net::SocketAddr::from(([127, 0, 0, 1], 53)),
            Some(s) => s.parse().map_err(|_| {
                key_err(
                    "bind.server",
                    format!(
                        "`{}` is not an address:port like \"127.0.0.1:53\"",
                        Escaped(s)
                    ),
                )
            })?,
        },
        tool_timeout: std::time::Duration::from_secs_f64(tool_timeout),
        named_conf: raw
            .bind
            .named_conf
            .unwrap_or_else(|| PathBuf::from("/etc/bind/named.conf")),
        control: match raw.bind.control.as_deref() {
            None => {
                if raw.bind.control_key_file.is_some() {
                    return Err(key_err(
                        "bind.control_key_file",
                        "needs bind.control (\"127.0.0.1:953\" or \"rndc\")",
                    ));
                }
                Control::Rndc
            }
            Some("rndc") => Control::FromRndc {
                key_file: raw.bind.control_key_file,
            },
            Some(s) => Control::At {
                addr: s.parse().map_err(|_| {
                    key_err(
                        "bind.control",
                        format!("`{s}` is not \"rndc\" or an address:port like \"127.0.0.1:953\""),
                    )
                })?,
                key_file: raw.bind.control_key_file,
            },
        },
        add_zones: raw.bind.add_zones.unwrap_or(false),
    };
    for (key, path) in [
        ("paths.zones", &paths.zones),
        ("paths.include", &paths.include),
    ] {
        let text = path.to_string_lossy();
        if text.contains(['"', '\\', '\n']) || !path.is_absolute() {
            return Err(key_err(
                key,
                "must be an absolute path without `\"`, `\\` or newlines (named.conf quotes it)",
            ));
        }
    }

    let zone_options = raw.zone.options.unwrap_or_default();
    if zone_options.contains('}') && !braces_balance(&zone_options) {
        return Err(key_err("zone.options", "braces must balance"));
    }

    let max_event_bytes = raw.spool.max_event_bytes.unwrap_or(16 * 1024 * 1024);
    if max_event_bytes == 0 {
        return Err(key_err("spool.max_event_bytes", "must be more than 0"));
    }
    let rescan_seconds = raw.spool.rescan_seconds.unwrap_or(5.0);
    if !(rescan_seconds > 0.0 && rescan_seconds <= 86400.0) {
        return Err(key_err(
            "spool.rescan_seconds",
            "must be between 0 and 86400",
        ));
    }

    let max_pass_bytes = raw.spool.max_pass_bytes.unwrap_or(DEFAULT_MAX_PASS_BYTES);
    if max_pass_bytes == 0 {
        return Err(key_err("spool.max_pass_bytes", "must be more than 0"));
    }
    let failed_keep = match raw.spool.failed_keep {
        None => DEFAULT_FAILED_KEEP,
        Some(n) => usize::try_from(n)
            .map_err(|_| key_err("spool.failed_keep", "is too large for this machine"))?,
    };
    let days = raw
        .spool
        .failed_max_age_days
        .unwrap_or(DEFAULT_FAILED_MAX_AGE_DAYS);
    if !(days > 0.0 && days <= 36500.0) {
        return Err(key_err(
            "spool.failed_max_age_days",
            "must be more than 0 and at most 36500",
        ));
    }
    let spool_limits = SpoolLimits {
        max_pass_bytes,
        failed_keep,
        failed_max_age: std::time::Duration::from_secs_f64(days * 86400.0),
    };

    let mode = match raw.socket.mode.as_deref() {
        None => 0o660,
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                key_err(
                    "socket.mode",
                    format!("`{}` is not an octal mode like \"0660\"", Escaped(m)),
                )
            })?,
    };
    let socket = SocketConfig {
        path: raw.socket.path,
        mode,
        allowed_uids: raw.socket.allowed_uids.unwrap_or_default(),
        allowed_gids: raw.socket.allowed_gids.unwrap_or_default(),
        max_connections: match raw.socket.max_connections {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=65536).contains(n))
                .ok_or_else(|| key_err("socket.max_connections", "must be 1 to 65536"))?,
        },
        group: match raw.socket.group {
            Some(g) if g.is_empty() || g.contains(['\n', '\0', ':']) => {
                return Err(key_err("socket.group", "must be a group name"));
            }
            g => g,
        },
    };

    let api = check_api(raw.api)?;
    let metrics = check_metrics(&raw.metrics)?;
    let dnssec = dnssec_keys(raw.dnssec)?;

    Ok(Config {
        paths,
        render: RenderOptions { soa, default_ttl },
        zone: ZoneDefaults {
            default_ttl,
            nameservers,
            strict: raw.validate.strict.unwrap_or(false),
        },
        serial: raw.zone.serial.unwrap_or_default(),
        zone_options,
        bind,
        max_event_bytes,
        rescan_seconds,
        spool_limits,
        socket,
        log_format: raw.log.format.unwrap_or_default(),
        max_records: u32_key("zone.max_records", raw.zone.max_records, 10_000, 1_000_000)? as usize,
        api,
        verify: VerifyConfig {
            seconds: raw.verify.seconds.unwrap_or(0),
            repair: raw.verify.repair.unwrap_or(false),
        },
        metrics,
        dnssec,
        catalog: raw.catalog.map(catalog_key).transpose()?,
    })
}
/// A secondary: `address[:port]` (port 53 by default), IPv6 in brackets
/// when a port is given.
fn secondary_key(s: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let err = || {
        key_err(
            "catalog.secondaries",
            format!("`{s}` is not an address like \"192.0.2.53\" or \"192.0.2.53:53\""),
        )
    };
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| err())
}

fn catalog_key(raw: RawCatalog) -> Result<CatalogConfig, ConfigError> {
    let zone = raw
        .zone
        .ok_or_else(|| key_err("catalog.zone", "must name the catalog zone"))?;
    let zone = host_key("catalog.zone", &zone)?;
    let secondaries = raw
        .secondaries
        .unwrap_or_default()
        .iter()
        .map(|s| secondary_key(s))
        .collect::<Result<Vec<_>, _>>()?;
    let tsig_key_file = raw.tsig_key_file.ok_or_else(|| {
        key_err(
            "catalog.tsig_key_file",
            "must name the transfer key file (tsig-keygen writes one)",
        )
    })?;
    let text = tsig_key_file.to_string_lossy();
    if text.contains(['"', '\\', '\n']) || !tsig_key_file.is_absolute() {
        return Err(key_err(
            "catalog.tsig_key_file",
            "must be an absolute path without `\"`, `\\` or newlines (named.conf quotes it)",
        ));
    }
    let max_removal_share = raw.max_removal_share.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&max_removal_share) {
        return Err(key_err(
            "catalog.max_removal_share",
            "must be between 0 and 1",
        ));
    }
    Ok(CatalogConfig {
        zone,
        secondaries,
        tsig_key_file,
        max_removal_share,
    })
}

fn check_metrics(raw: &RawMetrics) -> Result<MetricsConfig, ConfigError> {
    let Some(text) = raw.listen.as_deref() else {
        return Ok(MetricsConfig::default());
    };
    let addr: std::net::SocketAddr = text.parse().map_err(|_| {
        key_err(
            "metrics.listen",
            format!(
                "`{}` is not an address:port like \"127.0.0.1:9853\"",
                Escaped(text)
            ),
        )
    })?;
    // The metrics name zones' states and the agent's version: not for
    // everyone who can reach the host, unless the operator says so.
    if !addr.ip().is_loopback() && raw.allow_remote != Some(true) {
        return Err(key_err(
            "metrics.listen",
            format!(
                "{addr} is not a loopback address; set metrics.allow_remote = true to serve it"
            ),
        ));
    }
    Ok(MetricsConfig { listen: Some(addr) })
}

fn check_api(raw: RawApi) -> Result<ApiConfig, ConfigError> {
    if let Some(u) = &raw.url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(key_err(
            "api.url",
            format!("`{u}` is not an http:// or https:// URL"),
        ));
    }
    let max_removal_share = raw.max_removal_share.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&max_removal_share) {
        return Err(key_err("api.max_removal_share", "must be between 0 and 1"));
    }
    let timeout_seconds = raw.timeout_seconds.unwrap_or(30.0);
    if !(timeout_seconds > 0.0 && timeout_seconds <= 3600.0) {
        return Err(key_err("api.timeout_seconds", "must be between 0 and 3600"));
    }
    let concurrency = raw.concurrency.unwrap_or(4);
    if !(1..=64).contains(&concurrency) {
        return Err(key_err("api.concurrency", "must be between 1 and 64"));
    }
    Ok(ApiConfig {
        url: raw.url,
        token_file: raw.token_file,
        resync_seconds: raw.resync_seconds.unwrap_or(0),
        max_removal_share,
        timeout_seconds,
        retries: raw.retries.unwrap_or(3).min(10),
        concurrency,
        ca_file: raw.ca_file,
    })
}

/// Checks `[dnssec]`. The policy name goes into `named.conf` quoted, so it
/// is limited to what BIND's policy names look like; `none` and `insecure`
/// are BIND's words for "not signed" and are not a signing policy.
fn dnssec_keys(raw: RawDnssec) -> Result<Option<DnssecConfig>, ConfigError> {
    let Some(policy) = raw.policy else {
        if raw.only.is_some() || raw.except.is_some() || raw.key_directory.is_some() {
            return Err(key_err(
                "dnssec.policy",
                "must be set when other `dnssec` keys are",
            ));
        }
        return Ok(None);
    };
    let valid = !policy.is_empty()
        && policy.len() <= 64
        && policy
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid {
        return Err(key_err(
            "dnssec.policy",
            format!("`{policy}` is not a dnssec-policy name (letters, digits, `-`, `_`, `.`)"),
        ));
    }
    if policy == "none" || policy == crate::dnssec::INSECURE {
        return Err(key_err(
            "dnssec.policy",
            "`none` and `insecure` do not sign; leave `dnssec` out, or list the domain in `dnssec.except`",
        ));
    }
    let key_directory = raw
        .key_directory
        .unwrap_or_else(|| PathBuf::from("/var/lib/bind/keys"));
    let text = key_directory.to_string_lossy();
    if text.contains(['"', '\\', '\n']) || !key_directory.is_absolute() {
        return Err(key_err(
            "dnssec.key_directory",
            "must be an absolute path without `\"`, `\\` or newlines (named.conf quotes it)",
        ));
    }
    let domains = |key: &'static str, list: Option<Vec<String>>| {
        list.unwrap_or_default()
            .iter()
            .map(|d| host_key(key, d).map(|n| n.as_str().to_owned()))
            .collect::<Result<BTreeSet<String>, ConfigError>>()
    };
    Ok(Some(DnssecConfig {
        policy,
        key_directory,
        only: domains("dnssec.only", raw.only)?,
        except: domains("dnssec.except", raw.except)?,
    }))
}

fn braces_balance(s: &str) -> bool {
    let mut depth = 0i64;
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work() {
        let c = parse("").unwrap();
        assert_eq!(c.render.soa.mname.as_str(), "ns1.vps.org");
        assert_eq!(c.render.soa.rname.as_str(), "hostmaster.vps.org");
        assert_eq!(c.zone.default_ttl, 3600);
        assert_eq!(c.zone.nameservers.len(), 2);
        assert_eq!(c.serial, SerialPolicy::Date);
        assert_eq!(c.bind.rndc, ["rndc"]);
        assert_eq!(c.catalog, None);
        assert!(!c.zone.strict);
        assert_eq!(c.spool_limits, SpoolLimits::default());
        assert_eq!(c.socket.max_connections, DEFAULT_MAX_CONNECTIONS);
        let c = parse(
            "[spool]\nmax_pass_bytes = 1000\nfailed_keep = 5\nfailed_max_age_days = 0.5\n\
             [socket]\nmax_connections = 3",
        )
        .unwrap();
        assert_eq!(c.spool_limits.max_pass_bytes, 1000);
        assert_eq!(c.spool_limits.failed_keep, 5);
        assert_eq!(c.spool_limits.failed_max_age.as_secs(), 43200);
        assert_eq!(c.socket.max_connections, 3);
        assert_eq!(c.bind.tool_timeout, std::time::Duration::from_mins(1));
        assert_eq!(c.bind.named_conf, PathBuf::from("/etc/bind/named.conf"));
        assert_eq!(c.dnssec, None);
    }

    #[test]
    fn control_keys() {
        assert_eq!(parse("").unwrap().bind.control, Control::Rndc);
        let c = parse(
            "[bind]\ncontrol = \"127.0.0.1:953\"\ncontrol_key_file = \"/k\"\nadd_zones = true",
        )
        .unwrap();
        assert_eq!(
            c.bind.control,
            Control::At {
                addr: "127.0.0.1:953".parse().unwrap(),
                key_file: Some(PathBuf::from("/k"))
            }
        );
        assert!(c.bind.add_zones);
        assert_eq!(
            parse("[bind]\ncontrol = \"rndc\"").unwrap().bind.control,
            Control::FromRndc { key_file: None }
        );
        for bad in [
            "[bind]\ncontrol = \"localhost\"",
            "[bind]\ncontrol_key_file = \"/k\"",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("bind.control"), "{err}");
        }
    }

    #[test]
    fn metrics_are_off_by_default_and_loopback_unless_allowed() {
        assert_eq!(parse("").unwrap().metrics.listen, None);
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9853\"").unwrap();
        assert_eq!(c.metrics.listen, Some(([127, 0, 0, 1], 9853).into()));
        let c = parse("[metrics]\nlisten = \"[::1]:9853\"").unwrap();
        assert!(c.metrics.listen.unwrap().ip().is_loopback());
        let c = parse("[metrics]\nlisten = \"0.0.0.0:9853\"\nallow_remote = true").unwrap();
        assert_eq!(c.metrics.listen, Some(([0, 0, 0, 0], 9853).into()));
    }

    #[test]
    fn validate_table() {
        assert!(parse("[validate]\nstrict = true").unwrap().zone.strict);
        assert!(!parse("[validate]\nstrict = false").unwrap().zone.strict);
        let err = parse("[validate]\nstrictness = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("strictness"), "{err}");
        let err = parse("[validate]\nstrict = \"yes\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("strict"), "{err}");
    }

    #[test]
    fn dnssec_keys() {
        let c = parse(
            "[dnssec]\npolicy = \"default\"\nkey_directory = \"/var/lib/bind/k\"\n\
             only = [\"A.test.\", \"b.test\"]\nexcept = [\"b.test\"]",
        )
        .unwrap();
        let d = c.dnssec.unwrap();
        assert_eq!(d.policy, "default");
        assert_eq!(d.key_directory, PathBuf::from("/var/lib/bind/k"));
        assert!(d.only.contains("a.test"), "{:?}", d.only);
        assert!(d.except.contains("b.test"));
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
            [paths]
            spool = "/tmp/s"
            state = "/tmp/st"
            zones = "/tmp/z"
            include = "/tmp/i.conf"
            [soa]
            mname = "ns1.example.net"
            rname = "dns-admin@example.net"
            refresh = 100
            retry = 50
            expire = 1000
            minimum = 60
            [zone]
            nameservers = ["ns1.example.net", "ns2.example.net."]
            default_ttl = 600
            serial = "increment"
            options = "allow-transfer { none; };"
            [bind]
            rndc = ["rndc", "-p", "9530"]
            [socket]
            path = "/tmp/sock"
            mode = "0600"
            allowed_uids = [1000]
            "#,
        )
        .unwrap();
        assert_eq!(c.render.soa.rname.as_str(), "dns-admin.example.net");
        assert_eq!(c.render.soa.minimum, 60);
        assert_eq!(c.zone.default_ttl, 600);
        assert_eq!(c.serial, SerialPolicy::Increment);
        assert_eq!(c.socket.mode, 0o600);
        assert_eq!(c.paths.include, PathBuf::from("/tmp/i.conf"));
    }

    #[test]
    fn catalog_section() {
        let c = parse(
            "[catalog]\nzone = \"catalog.zoneagent.invalid\"\n\
             secondaries = [\"192.0.2.53\", \"127.0.0.1:5301\", \"[::1]:53\"]\n\
             tsig_key_file = \"/etc/bind/zoneagent-transfer.key\"\n",
        )
        .unwrap();
        let cat = c.catalog.unwrap();
        assert_eq!(cat.zone.as_str(), "catalog.zoneagent.invalid");
        assert_eq!(cat.secondaries[0].to_string(), "192.0.2.53:53");
        assert_eq!(cat.secondaries[1].port(), 5301);
        assert_eq!(cat.secondaries[2].to_string(), "[::1]:53");
        assert!((cat.max_removal_share - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[soa]\nrefresh = -1", "soa.refresh"),
            ("[zone]\ndefault_ttl = 2147483648", "zone.default_ttl"),
            ("[zone]\nnameservers = []", "zone.nameservers"),
            ("[zone]\nnameservers = [\"bad name\"]", "zone.nameservers"),
            ("[soa]\nrname = \"a.b@example.net\"", "soa.rname"),
            ("[socket]\nmode = \"999\"", "socket.mode"),
            ("[bind]\nrndc = []", "bind.rndc"),
            ("[spool]\nmax_pass_bytes = 0", "spool.max_pass_bytes"),
            (
                "[spool]\nfailed_max_age_days = 0",
                "spool.failed_max_age_days",
            ),
            ("[spool]\nfailed_keep = -1", "failed_keep"),
            ("[socket]\nmax_connections = 0", "socket.max_connections"),
            ("[api]\nurl = \"ftp://x\"", "api.url"),
            ("[api]\nmax_removal_share = 2.0", "api.max_removal_share"),
            ("[api]\nconcurrency = 0", "api.concurrency"),
            ("[bind]\ntool_timeout = 0", "bind.tool_timeout"),
            ("[metrics]\nlisten = \"9853\"", "metrics.listen"),
            (
                "[metrics]\nlisten = \"0.0.0.0:9853\"",
                "metrics.allow_remote",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        // Values quoted back in an error are escaped (they reach the log).
        let err = parse("[bind]\nserver = \"x\\n INFO forged\\u001b\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`x\\n INFO forged\\u{1b}`"), "{err}");
        let err = parse("[zone]\nnameserver = []").unwrap_err().to_string();
        assert!(err.contains("nameserver"), "{err}");
        for (text, key) in [
            ("[dnssec]\npolicy = \"x y\"", "dnssec.policy"),
            ("[dnssec]\npolicy = \"insecure\"", "dnssec.policy"),
            ("[dnssec]\nexcept = [\"a.test\"]", "dnssec.policy"),
            (
                "[dnssec]\npolicy = \"default\"\nkey_directory = \"keys\"",
                "dnssec.key_directory",
            ),
            (
                "[dnssec]\npolicy = \"default\"\nonly = [\"bad name\"]",
                "dnssec.only",
            ),
            ("[catalog]\ntsig_key_file = \"/k\"", "catalog.zone"),
            ("[catalog]\nzone = \"cat.invalid\"", "catalog.tsig_key_file"),
            (
                "[catalog]\nzone = \"c.invalid\"\ntsig_key_file = \"/k\"\nsecondaries = [\"x\"]",
                "catalog.secondaries",
            ),
            (
                "[catalog]\nzone = \"c.invalid\"\ntsig_key_file = \"/k\"\nmax_removal_share = 2.0",
                "catalog.max_removal_share",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = parse("[zone]\nnameserver = []").unwrap_err().to_string();
        assert!(err.contains("nameserver"), "{err}");
        let err = parse("[soa]\nrefresh = \"x\"").unwrap_err().to_string();
        assert!(err.contains("refresh"), "{err}");
    }
}
