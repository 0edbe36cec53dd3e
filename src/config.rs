//! Configuration: one TOML file, every key optional, defaults that work.
//!
//! `load` reads the file; the pure [`parse`] does the work and is what the
//! tests call (the ripgrep pattern). [`RawConfig`] mirrors the file exactly
//! (unknown keys are refused, so a typo is an error, not a silent default);
//! [`Config`] is the checked result that the rest of the program uses.

use crate::model::name::{self, Name};
use crate::render::{RenderOptions, SoaFields};
use crate::validate::{MAX_TTL, ZoneDefaults};
use serde::Deserialize;
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// Refuse zones that `named` serves with a warning (see
    /// [`ZoneDefaults::strict`]).
    pub strict: Option<bool>,
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
    /// `named`'s own configuration, read for the zones it declares itself
    /// (default `/etc/bind/named.conf` when it exists).
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSocket {
    pub path: Option<PathBuf>,
    pub mode: Option<String>,
    pub allowed_uids: Option<Vec<u32>>,
    pub allowed_gids: Option<Vec<u32>>,
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
    /// `named.conf`, read for the zones it declares itself.
    pub named_conf: Option<PathBuf>,
    /// How to reach `named`'s control channel without `rndc`, if at all.
    pub control: Control,
    /// New and deleted zones through `addzone`/`delzone`.
    pub add_zones: bool,
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
    pub socket: SocketConfig,
    pub log_format: LogFormat,
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
                    format!("`{s}` is not an address:port like \"127.0.0.1:53\""),
                )
            })?,
        },
        named_conf: raw.bind.named_conf,
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

    let mode = match raw.socket.mode.as_deref() {
        None => 0o660,
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                key_err(
                    "socket.mode",
                    format!("`{m}` is not an octal mode like \"0660\""),
                )
            })?,
    };
    let socket = SocketConfig {
        path: raw.socket.path,
        mode,
        allowed_uids: raw.socket.allowed_uids.unwrap_or_default(),
        allowed_gids: raw.socket.allowed_gids.unwrap_or_default(),
    };

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
        socket,
        log_format: raw.log.format.unwrap_or_default(),
    })
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
        assert!(!c.zone.strict);
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
    fn errors_name_the_key() {
        let cases = [
            ("[soa]\nrefresh = -1", "soa.refresh"),
            ("[zone]\ndefault_ttl = 2147483648", "zone.default_ttl"),
            ("[zone]\nnameservers = []", "zone.nameservers"),
            ("[zone]\nnameservers = [\"bad name\"]", "zone.nameservers"),
            ("[soa]\nrname = \"a.b@example.net\"", "soa.rname"),
            ("[socket]\nmode = \"999\"", "socket.mode"),
            ("[bind]\nrndc = []", "bind.rndc"),
        ];
        for (text, key) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = parse("[zone]\nnameserver = []").unwrap_err().to_string();
        assert!(err.contains("nameserver"), "{err}");
        let err = parse("[soa]\nrefresh = \"x\"").unwrap_err().to_string();
        assert!(err.contains("refresh"), "{err}");
    }
}
