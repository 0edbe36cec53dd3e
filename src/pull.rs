//! `zoneagent pull`: fills the agent from the platform's API
//! (`GET /api/v1/dns-zones/`, then `GET /api/v1/dns-zones/{uuid}/` for each
//! zone) and applies the result as one `sync` event.
//!
//! The pure part reads the API's bodies ([`parse_list`], [`parse_detail`],
//! [`classify`]), resolves pagination links ([`resolve_next`]) and checks
//! the share of zones a sync would remove ([`check_removals`]). The shell
//! part speaks HTTP(S) with a blocking client (rustls) with bounded
//! concurrency and retries, and hands the sync to the one engine through
//! the spool.
//!
//! Ordering. When no daemon holds the state, `pull` holds its lock for the
//! whole pull (nobody applies anything meanwhile), applies the sync at
//! once, and then runs the dispatch passes for what arrived in the spool
//! during the pull, as `run --once` does: those events are set operations
//! on records and converge when applied on top of the pulled state. The
//! daemon's own periodic pull ([`Resync`]) does the same on its loop
//! thread right before its next pass: a zone whose state an event changed
//! while the fetch ran keeps that state, and the events still waiting
//! apply after the sync. When `pull` runs beside a daemon, it cannot apply
//! anything itself: the sync goes into the spool, with the zones an event
//! changed while the pull ran kept as they are; what remains is the moment
//! between that last look at the state and the sync's arrival in the
//! spool, where an event the daemon applies is overwritten until the next
//! event of its zone or the next pull.

use crate::config::{ApiConfig, Config};
use crate::error::ApiError;
use crate::model::event::{Body, Event};
use crate::model::zone::{self, Zone};
use crate::store::ZoneRecord;
use crate::validate::check_uuid;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The list endpoint, relative to the API's base URL.
pub const LIST_PATH: &str = "/api/v1/dns-zones/";
/// Most bytes read from one response.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// Most list pages followed (a loop of `next` links ends here).
const MAX_PAGES: usize = 100_000;
/// First wait before a retry; doubled each time, at most [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A Bearer token. Its `Debug` never shows it, so it cannot reach a log.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a pull failed. Each maps to the API's error shape
/// ([`PullError::to_api_error`]).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("no API URL: give --api URL or set api.url")]
    NoUrl,
    #[error("failed to read the token file {path}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the CA certificates in {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("the token file {path} is empty")]
    EmptyToken { path: PathBuf },
    #[error("the API refused the token (401) at {url}: {detail}")]
    Unauthorized { url: String, detail: String },
    #[error("the token lacks {} (403) at {url}: {detail}", permission.as_deref().unwrap_or("a permission"))]
    Forbidden {
        url: String,
        permission: Option<String>,
        detail: String,
    },
    #[error("the API answered {status} at {url}: {detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the API kept failing at {url} after {attempts} attempt(s): {last}")]
    Unavailable {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("the API's answer at {url} is malformed: {detail}")]
    Malformed {
        url: String,
        field: Option<String>,
        detail: String,
    },
    #[error(
        "the pull would remove {removed} of {current} zone(s), more than api.max_removal_share \
         ({share}); nothing changed (--allow-mass-delete to apply it)"
    )]
    MassDelete {
        removed: usize,
        current: usize,
        share: f64,
    },
    #[error(
        "the pulled zones make a sync event of {bytes} bytes, over spool.max_event_bytes ({max})"
    )]
    TooLarge { bytes: usize, max: u64 },
    #[error("failed to read the state")]
    State(#[source] crate::store::StoreError),
    #[error("failed to open the state")]
    Deploy(#[source] crate::deploy::DeployError),
    #[error("failed to put the sync into the spool")]
    Spool(#[source] std::io::Error),
    #[error("the fetch thread of the periodic pull panicked")]
    Panicked,
    #[error("failed to apply the sync")]
    Dispatch(#[source] crate::daemon::dispatch::DispatchError),
}

impl PullError {
    /// The error in the API's shape.
    pub fn to_api_error(&self) -> ApiError {
        let (code, field) = match self {
            PullError::NoUrl => ("config_error", Some("api.url".to_owned())),
            PullError::TokenFile { .. } | PullError::EmptyToken { .. } => {
                ("config_error", Some("api.token_file".to_owned()))
            }
            PullError::CaFile { .. } => ("config_error", Some("api.ca_file".to_owned())),
            PullError::Unauthorized { .. } => ("unauthorized", None),
            PullError::Forbidden { .. } => ("forbidden", Some("permission".to_owned())),
            PullError::Status { .. } => ("api_error", None),
            PullError::Unavailable { .. } => ("unavailable", None),
            PullError::Malformed { field, .. } => ("parse_error", field.clone()),
            PullError::MassDelete { .. } => ("mass_deletion_refused", Some("zones".to_owned())),
            PullError::TooLarge { .. } => ("too_large", Some("spool.max_event_bytes".to_owned())),
            PullError::State(_)
            | PullError::Deploy(_)
            | PullError::Spool(_)
            | PullError::Dispatch(_)
            | PullError::Panicked => ("internal_error", None),
        };
        let mut detail = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        ApiError {
            detail,
            error_code: code.to_owned(),
            field,
            record: None,
        }
    }
}

/// A zone as the list endpoint shows it (other fields are tolerated).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedZone {
    pub uuid: String,
    pub domain: String,
}

/// One page of the list: a plain array is one page without `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub zones: Vec<ListedZone>,
    pub next: Option<String>,
}

/// What a malformed body is: the field (JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub field: Option<String>,
    pub detail: String,
}

fn body_error(e: ApiError) -> BodyError {
    BodyError {
        field: e.field,
        detail: e.detail,
    }
}

/// Reads the list body: the spec's plain array, or a paginated object
/// (`count`, `next`, `results`). Each zone's uuid must be safe in a URL
/// path and a file name.
pub fn parse_list(body: &str) -> Result<ListPage, BodyError> {
    let value: serde_json::Value = zone::decode(body).map_err(body_error)?;
    let (results, next, prefix) = match value {
        serde_json::Value::Array(_) => (value, None, ""),
        serde_json::Value::Object(mut map) => {
            let Some(results) = map.remove("results") else {
                return Err(BodyError {
                    field: Some("results".to_owned()),
                    detail: "expected a JSON array of zones or a paginated object with \
                             `results`"
                        .to_owned(),
                });
            };
            let next = match map.remove("next") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s),
                Some(_) => {
                    return Err(BodyError {
                        field: Some("next".to_owned()),
                        detail: "must be a URL string or null".to_owned(),
                    });
                }
            };
            (results, next, "results")
        }
        _ => {
            return Err(BodyError {
                field: None,
                detail: "expected a JSON array of zones or a paginated object with `results`"
                    .to_owned(),
            });
        }
    };
    let zones: Vec<ListedZone> = serde_path_to_error::deserialize(results).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix, path.as_str()) {
            ("", ".") => None,
            ("", p) => Some(p.to_owned()),
            (pre, ".") => Some(pre.to_owned()),
            (pre, p) if p.starts_with('[') => Some(format!("{pre}{p}")),
            (pre, p) => Some(format!("{pre}.{p}")),
        };
        BodyError {
            field,
            detail: e.into_inner().to_string(),
        }
    })?;
    for (i, z) in zones.iter().enumerate() {
        if let Err(e) = check_uuid(&z.uuid) {
            let at = if prefix.is_empty() {
                format!("[{i}].uuid")
            } else {
                format!("{prefix}[{i}].uuid")
            };
            return Err(BodyError {
                field: Some(at),
                detail: e,
            });
        }
    }
    Ok(ListPage { zones, next })
}

/// Reads a zone detail body; it must be the zone that was asked for.
pub fn parse_detail(body: &str, uuid: &str) -> Result<Zone, BodyError> {
    let zone = zone::decode_zone(body).map_err(body_error)?;
    if zone.uuid != uuid {
        return Err(BodyError {
            field: Some("uuid".to_owned()),
            detail: format!("asked for zone {uuid}, got zone {}", zone.uuid),
        });
    }
    Ok(zone)
}

/// The scheme, host and port of an `http(s)://` URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + host_len])
}

/// The list URL for a base: `https://h` and `https://h/` get
/// [`LIST_PATH`]; a URL with a path is taken as the list endpoint itself.
pub fn list_url(base: &str) -> Option<String> {
    let o = origin(base)?;
    let path = &base[o.len()..];
    Some(if path.is_empty() || path == "/" {
        format!("{o}{LIST_PATH}")
    } else if path.ends_with('/') {
        base.to_owned()
    } else {
        format!("{base}/")
    })
}

/// Resolves a `next` link against the page it came from. The token is
/// sent with it, so a link to another origin is refused.
pub fn resolve_next(page: &str, next: &str) -> Result<String, String> {
    let base = origin(page).ok_or_else(|| format!("`{page}` is not an http(s) URL"))?;
    let url = if next.starts_with("http://") || next.starts_with("https://") {
        next.to_owned()
    } else if next.starts_with('/') {
        format!("{base}{next}")
    } else if next.starts_with('?') {
        let path_end = page.find('?').unwrap_or(page.len());
        format!("{}{next}", &page[..path_end])
    } else {
        return Err(format!(
            "`next` link `{next}` is neither absolute nor rooted"
        ));
    };
    if origin(&url) == Some(base) {
        Ok(url)
    } else {
        Err(format!(
            "`next` link `{next}` leaves {base}; the token is not sent elsewhere"
        ))
    }
}

/// A missing permission named in a 403 body (`dns:list`, `dns:read`, …).
fn permission_in(detail: &str) -> Option<String> {
    detail
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ';']))
        .find(|w| w.starts_with("dns:") && w.len() > 4)
        .map(str::to_owned)
}

/// What an answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: read the body.
    Ok,
    /// 404.
    NotFound,
    /// 5xx: try again.
    Retry(String),
    /// Any other answer: stop.
    Fail(PullErrorKind),
}

/// A final error answer, before it becomes a [`PullError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullErrorKind {
    Unauthorized(String),
    Forbidden(Option<String>, String),
    Status(u16, String),
}

/// Judges an HTTP answer (pure). The detail is the API's own `detail`
/// when the body is in its error shape.
pub fn classify(status: u16, body: &str) -> Verdict {
    let detail = serde_json::from_str::<ApiError>(body).map_or_else(
        |_| {
            let t = body.trim();
            if t.is_empty() {
                "(no body)".to_owned()
            } else {
                t.chars().take(200).collect()
            }
        },
        |e| e.detail,
    );
    match status {
        200..=299 => Verdict::Ok,
        401 => Verdict::Fail(PullErrorKind::Unauthorized(detail)),
        403 => Verdict::Fail(PullErrorKind::Forbidden(permission_in(&detail), detail)),
        404 => Verdict::NotFound,
        500..=599 => Verdict::Retry(format!("{status}: {detail}")),
        _ => Verdict::Fail(PullErrorKind::Status(status, detail)),
    }
}

/// The id prefix of the `sync` event a pull makes: the daemon does not
/// check its removals again (the pull did).
pub const SYNC_ID_PREFIX: &str = "pull-";

/// The share of the zones a pull may remove: `api.max_removal_share`, and
/// in fleet mode no more than `catalog.max_removal_share` (a deletion
/// there reaches every secondary).
fn removal_share(config: &Config) -> f64 {
    config
        .catalog
        .as_ref()
        .map_or(config.api.max_removal_share, |c| {
            c.max_removal_share.min(config.api.max_removal_share)
        })
}

/// How many zones a sync to `pulled` removes from `current`; refused when
/// that is more than `share` of them.
pub fn check_removals(
    current: &BTreeSet<String>,
    pulled: &BTreeSet<String>,
    share: f64,
) -> Result<usize, PullError> {
    let removed = current.difference(pulled).count();
    if crate::catalog::removes_too_many(current.len(), removed, share) {
        return Err(PullError::MassDelete {
            removed,
            current: current.len(),
            share,
        });
    }
    Ok(removed)
}

/// The HTTP side: one agent (connection pool, rustls), the token, retries.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    token: Option<Token>,
    retries: u32,
}

impl Client {
    /// A client with a whole-request timeout; redirects are not followed
    /// (the token must not go where the operator did not point it). HTTPS
    /// is rustls, with the Mozilla roots or the given CA certificates.
    pub fn new(
        token: Option<Token>,
        timeout: Duration,
        retries: u32,
        roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    ) -> Client {
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(roots) = roots {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("zoneagent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            token,
            retries,
        }
    }

    /// GET with retries of 5xx, timeouts and connection errors; `None`
    /// for a 404.
    fn get(&self, url: &str) -> Result<Option<String>, PullError> {
        let mut wait = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match self.get_once(url) {
                Ok((status, body)) => match classify(status, &body) {
                    Verdict::Ok => return Ok(Some(body)),
                    Verdict::NotFound => return Ok(None),
                    Verdict::Retry(why) => why,
                    Verdict::Fail(kind) => return Err(fail(url, kind)),
                },
                Err(why) => why,
            };
            if attempts > self.retries {
                return Err(PullError::Unavailable {
                    url: url.to_owned(),
                    attempts,
                    last,
                });
            }
            tracing::warn!(url, attempt = attempts, error = %last, "API request failed; retrying");
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    fn get_once(&self, url: &str) -> Result<(u16, String), String> {
        let mut req = self.agent.get(url).header("Accept", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", t.0));
        }
        let mut resp = req.call().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok((status, body))
    }

    /// Every zone of every list page.
    pub fn list(&self, first: &str) -> Result<Vec<ListedZone>, PullError> {
        let mut zones = Vec::new();
        let mut seen = BTreeSet::new();
        let mut url = first.to_owned();
        for _ in 0..MAX_PAGES {
            seen.insert(url.clone());
            let body = self.get(&url)?.ok_or_else(|| PullError::Status {
                url: url.clone(),
                status: 404,
                detail: "the zone list is not there".to_owned(),
            })?;
            let page = parse_list(&body).map_err(|e| malformed(&url, e))?;
            zones.extend(page.zones);
            match page.next {
                None => return Ok(zones),
                Some(next) => {
                    let n = resolve_next(&url, &next).map_err(|detail| PullError::Malformed {
                        url: url.clone(),
                        field: Some("next".to_owned()),
                        detail,
                    })?;
                    if seen.contains(&n) {
                        return Err(PullError::Malformed {
                            url,
                            field: Some("next".to_owned()),
                            detail: format!("`next` leads back to {n}, a page already read"),
                        });
                    }
                    url = n;
                }
            }
        }
        Err(PullError::Malformed {
            url,
            field: Some("next".to_owned()),
            detail: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// The details of the listed zones, `concurrency` at a time. A zone
    /// whose detail is 404 was deleted after the list: it is skipped and
    /// named in `skipped`. Any other failure fails the whole pull (a
    /// partial set would delete the zones missing from it).
    pub fn details(
        &self,
        list: &str,
        zones: &[ListedZone],
        concurrency: usize,
    ) -> Result<Pulled, PullError> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let results: Mutex<Vec<Option<DetailResult>>> =
            Mutex::new((0..zones.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..concurrency.clamp(1, zones.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= zones.len() || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let uuid = &zones[i].uuid;
                        let url = format!("{list}{uuid}/");
                        let r = self.get(&url).and_then(|body| {
                            body.map(|b| parse_detail(&b, uuid).map_err(|e| malformed(&url, e)))
                                .transpose()
                        });
                        if r.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if let Ok(mut all) = results.lock() {
                            all[i] = Some(r);
                        }
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_default();
        let mut pulled = Pulled::default();
        for (listed, r) in zones.iter().zip(results) {
            match r {
                Some(Ok(Some(zone))) => pulled.zones.push(zone),
                Some(Ok(None)) => pulled.skipped.push(ApiError::new(
                    "not_found",
                    Some("uuid"),
                    format!(
                        "zone {} ({}) was listed but its detail is 404: deleted meanwhile; skipped",
                        listed.domain, listed.uuid
                    ),
                )),
                Some(Err(e)) => return Err(e),
                // Not fetched because another one failed first.
                None => {}
            }
        }
        Ok(pulled)
    }
}

/// One zone's detail: the zone, `None` for a 404, or why it failed.
type DetailResult = Result<Option<Zone>, PullError>;

fn fail(url: &str, kind: PullErrorKind) -> PullError {
    let url = url.to_owned();
    match kind {
        PullErrorKind::Unauthorized(detail) => PullError::Unauthorized { url, detail },
        PullErrorKind::Forbidden(permission, detail) => PullError::Forbidden {
            url,
            permission,
            detail,
        },
        PullErrorKind::Status(status, detail) => PullError::Status {
            url,
            status,
            detail,
        },
    }
}

fn malformed(url: &str, e: BodyError) -> PullError {
    PullError::Malformed {
        url: url.to_owned(),
        field: e.field,
        detail: e.detail,
    }
}

/// What the API gave.
#[derive(Debug, Default)]
pub struct Pulled {
    pub zones: Vec<Zone>,
    /// Zones listed whose detail was gone.
    pub skipped: Vec<ApiError>,
}

/// Reads a token file (surrounding white space ignored).
pub fn read_token(path: &Path) -> Result<Token, PullError> {
    let text = std::fs::read_to_string(path).map_err(|source| PullError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let t = text.trim();
    if t.is_empty() {
        return Err(PullError::EmptyToken {
            path: path.to_owned(),
        });
    }
    Ok(Token(t.to_owned()))
}

/// Reads the CA certificates of a PEM file.
pub fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, PullError> {
    let err = |detail: String| PullError::CaFile {
        path: path.to_owned(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| err(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(err("no CERTIFICATE in it".to_owned()));
    }
    Ok(certs)
}

/// Lists and fetches every zone the API holds.
pub fn fetch(api: &ApiConfig, token: Option<Token>) -> Result<Pulled, PullError> {
    let base = api.url.as_deref().ok_or(PullError::NoUrl)?;
    let list = list_url(base).ok_or(PullError::NoUrl)?;
    let roots = api.ca_file.as_deref().map(read_ca_file).transpose()?;
    let client = Client::new(
        token,
        Duration::from_secs_f64(api.timeout_seconds),
        api.retries,
        roots,
    );
    let listed = client.list(&list)?;
    let mut unique = BTreeSet::new();
    let listed: Vec<ListedZone> = listed
        .into_iter()
        .filter(|z| unique.insert(z.uuid.clone()))
        .collect();
    client.details(&list, &listed, api.concurrency)
}

/// What a zone's state was, to tell whether an event changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    zone: Zone,
    last_seq: Option<u64>,
    recent_ids: Vec<String>,
}

fn fingerprints(records: &BTreeMap<String, ZoneRecord>) -> BTreeMap<String, Fingerprint> {
    records
        .iter()
        .filter_map(|(uuid, r)| {
            Some((
                uuid.clone(),
                Fingerprint {
                    zone: r.zone.clone()?,
                    last_seq: r.last_seq,
                    recent_ids: r.recent_ids.clone(),
                },
            ))
        })
        .collect()
}

/// Applies a pulled `sync` at once, under the state's lock: the events
/// still waiting in the spool arrived after the pull began, and the next
/// dispatch pass applies them on top of it. Returns what it did, counted
/// like a dispatch pass of one event.
fn apply_sync(
    deployer: &mut crate::deploy::Deployer,
    event: &Event,
) -> Result<crate::daemon::dispatch::Stats, PullError> {
    let mut stats = crate::daemon::dispatch::Stats {
        events: 1,
        ..Default::default()
    };
    let Body::Sync { zones } = &event.body else {
        return Ok(stats);
    };
    let sync = crate::state::sync_changes(deployer.records(), event, zones);
    for m in &sync.malformed {
        for e in &m.errors {
            tracing::warn!(zone = ?m.domain, error = ?e.to_string(), "pulled zone is malformed; it keeps its state");
        }
    }
    let report = deployer
        .apply(
            sync.changes,
            crate::deploy::Options::default(),
            crate::cli::now(),
        )
        .map_err(PullError::Deploy)?;
    stats.zones_written = report.written.len();
    stats.zones_deleted = report.deleted.len();
    stats.zones_held = report.held.len();
    stats.pending = report.pending.len();
    if sync.malformed.is_empty() {
        stats.applied = 1;
    } else {
        stats.failed = 1;
    }
    Ok(stats)
}

/// The zones of the sync when a daemon applied events during the pull: a
/// zone whose state changed since `before` keeps its current state (or
/// stays deleted), the others take the pulled copy. Returns the zones and
/// the uuids kept (pure).
fn merge_changed(
    pulled: Vec<Zone>,
    before: &BTreeMap<String, Fingerprint>,
    now: &BTreeMap<String, Fingerprint>,
) -> (Vec<Zone>, Vec<String>) {
    let changed: BTreeSet<&String> = before
        .keys()
        .chain(now.keys())
        .filter(|u| before.get(*u) != now.get(*u))
        .collect();
    let mut kept = Vec::new();
    let mut zones: Vec<Zone> = Vec::new();
    for z in pulled {
        if changed.contains(&z.uuid) {
            kept.push(z.uuid.clone());
        } else {
            zones.push(z);
        }
    }
    for u in &changed {
        if let Some(f) = now.get(*u) {
            zones.push(f.zone.clone());
            if !kept.contains(u) {
                kept.push((*u).clone());
            }
        }
    }
    (zones, kept)
}

/// Options of one pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub dry_run: bool,
    pub allow_mass_delete: bool,
}

/// What one pull did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub fetched: usize,
    pub skipped: Vec<ApiError>,
    pub removed: usize,
    /// The sync's name in the spool (none for a dry run).
    pub spooled: Option<String>,
    /// Applied here (no daemon was running): what the pass did.
    pub applied: Option<crate::daemon::dispatch::Stats>,
    /// The sync itself ended in `spool/failed/` (some zones refused).
    pub sync_failed: bool,
    /// Zones an event changed during the pull, which kept their state.
    pub kept: Vec<String>,
    /// Dry run: domains that would be added, removed, changed.
    pub would_add: Vec<String>,
    pub would_remove: Vec<String>,
    pub would_change: Vec<String>,
}

/// Pulls every zone and applies them as one `sync` (see the module docs
/// for the ordering).
pub fn pull(
    config: &Config,
    token: Option<Token>,
    options: &PullOptions,
) -> Result<Outcome, PullError> {
    use crate::deploy::{DeployError, Deployer};
    use crate::store::{Store, StoreError};
    let spool = crate::spool::Spool::open(&config.paths.spool, config.max_event_bytes)
        .map_err(PullError::Spool)?;
    // The name the sync will have: taken now, so it sorts before every
    // event that arrives while the pull runs.
    let name = crate::spool::unique_name().map_err(PullError::Spool)?;
    // Without a daemon, hold the state's lock for the whole pull: no one
    // applies events meanwhile, they wait in the spool behind the sync.
    let mut own = if options.dry_run {
        None
    } else {
        match Deployer::open(config.clone()) {
            Ok(d) => Some(d),
            Err(DeployError::Store(StoreError::Locked { .. })) => None,
            Err(e) => return Err(PullError::Deploy(e)),
        }
    };
    let reader = Store::open_read_only(&config.paths.state);
    let before = match &own {
        Some(d) => fingerprints(d.records()),
        None => fingerprints(&reader.load_all().map_err(PullError::State)?),
    };
    let pulled = fetch(&config.api, token)?;
    let mut outcome = Outcome {
        fetched: pulled.zones.len(),
        skipped: pulled.skipped,
        ..Outcome::default()
    };
    let now_states = match &own {
        Some(_) => before.clone(),
        None => fingerprints(&reader.load_all().map_err(PullError::State)?),
    };
    let current: BTreeSet<String> = now_states.keys().cloned().collect();
    let wanted: BTreeSet<String> = pulled.zones.iter().map(|z| z.uuid.clone()).collect();
    let share = if options.allow_mass_delete {
        1.0
    } else {
        removal_share(config)
    };
    outcome.removed = check_removals(&current, &wanted, share)?;
    if options.dry_run {
        for z in &pulled.zones {
            match now_states.get(&z.uuid) {
                None => outcome.would_add.push(z.domain.clone()),
                Some(f) if f.zone.records != z.records || f.zone.domain != z.domain => {
                    outcome.would_change.push(z.domain.clone());
                }
                Some(_) => {}
            }
        }
        for (u, f) in &now_states {
            if !wanted.contains(u) {
                outcome.would_remove.push(f.zone.domain.clone());
            }
        }
        return Ok(outcome);
    }
    let zones = if own.is_some() {
        pulled.zones
    } else {
        let (zones, kept) = merge_changed(pulled.zones, &before, &now_states);
        outcome.kept = kept;
        zones
    };
    let event = Event {
        id: format!("{SYNC_ID_PREFIX}{}", name.trim_end_matches(".json")),
        seq: None,
        body: Body::Sync { zones },
    };
    let bytes = serde_json::to_vec(&event).map_err(|e| PullError::Spool(e.into()))?;
    if bytes.len() as u64 > config.max_event_bytes {
        return Err(PullError::TooLarge {
            bytes: bytes.len(),
            max: config.max_event_bytes,
        });
    }
    if let Some(deployer) = &mut own {
        let first = apply_sync(deployer, &event)?;
        outcome.sync_failed = first.failed > 0;
        let now = crate::cli::now();
        if let Err(e) = deployer.recover(now) {
            tracing::warn!(error = %e, "cannot finish an interrupted install yet");
        }
        let mut total = first;
        loop {
            let stats = crate::daemon::dispatch::run_once(deployer, &spool, crate::cli::now())
                .map_err(PullError::Dispatch)?;
            total.events += stats.events;
            total.applied += stats.applied;
            total.failed += stats.failed;
            total.zones_written += stats.zones_written;
            total.zones_deleted += stats.zones_deleted;
            total.pending = stats.pending;
            if !stats.more {
                break;
            }
        }
        outcome.applied = Some(total);
    } else {
        // A daemon runs: it applies the sync in order with what arrives.
        spool.submit_as(&name, &bytes).map_err(PullError::Spool)?;
        outcome.spooled = Some(name.clone());
    }
    Ok(outcome)
}

/// The daemon's periodic pull (`api.resync_seconds`): the fetch runs on
/// a thread of its own so the loop keeps applying events; when it is done,
/// the loop thread turns it into a sync ([`Resync::poll`]) right before
/// its next dispatch pass. A zone an event changed while the fetch ran
/// keeps its state; the events still waiting sort after the sync, whose
/// spool name is the moment the fetch began. Nothing else applies between
/// the merge and the pass, so no event is lost or reordered.
pub struct Resync {
    next_at: Option<std::time::Instant>,
    running: Option<Running>,
}

struct Running {
    name: String,
    before: BTreeMap<String, Fingerprint>,
    thread: std::thread::JoinHandle<Result<Pulled, PullError>>,
}

impl Resync {
    /// Off unless the configuration asks for it; the first pull is at
    /// once.
    pub fn new(api: &ApiConfig) -> Resync {
        Resync {
            next_at: (api.resync_seconds > 0 && api.url.is_some()).then(std::time::Instant::now),
            running: None,
        }
    }

    /// How long the loop may sleep before [`Resync::poll`] has work.
    pub fn wait(&self) -> Option<Duration> {
        if self.running.is_some() {
            return Some(Duration::from_millis(100));
        }
        self.next_at
            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
    }

    /// Starts a fetch when one is due; turns a finished one into a sync
    /// in the spool. Errors are logged: the next one is tried at the next
    /// interval.
    pub fn poll(&mut self, deployer: &mut crate::deploy::Deployer) {
        let api = deployer.config.api.clone();
        // The configuration may have changed (SIGHUP): turned on, it pulls
        // at once; turned off, no new pull starts.
        let on = api.resync_seconds > 0 && api.url.is_some();
        if !on {
            self.next_at = None;
        } else if self.next_at.is_none() && self.running.is_none() {
            self.next_at = Some(std::time::Instant::now());
        }
        if self
            .running
            .as_ref()
            .is_some_and(|r| r.thread.is_finished())
            && let Some(r) = self.running.take()
        {
            let result = r
                .thread
                .join()
                .unwrap_or(Err(PullError::Panicked))
                .and_then(|pulled| finish_resync(deployer, &r.name, &r.before, pulled));
            match result {
                Ok(n) => tracing::info!(zones = n, "periodic pull handed to the engine"),
                Err(e) => {
                    tracing::error!(error = %crate::daemon::error_chain(&e), "periodic pull failed");
                }
            }
            self.next_at = (api.resync_seconds > 0)
                .then(|| std::time::Instant::now() + Duration::from_secs(api.resync_seconds));
        }
        let due = self.next_at.is_some_and(|t| std::time::Instant::now() >= t);
        if !due || self.running.is_some() {
            return;
        }
        let token = match api.token_file.as_deref().map(read_token).transpose() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %crate::daemon::error_chain(&e), "periodic pull cannot start");
                self.next_at = Some(
                    std::time::Instant::now() + Duration::from_secs(api.resync_seconds.max(1)),
                );
                return;
            }
        };
        let api = api.clone();
        self.running = Some(Running {
            name: format!("{}", std::process::id())
                + &chrono::Utc::now().timestamp_millis().to_string(),
            before: fingerprints(deployer.records()),
            thread: std::thread::spawn(move || fetch(&api, token)),
        });
    }
}

fn finish_resync(
    deployer: &mut crate::deploy::Deployer,
    name: &str,
    before: &BTreeMap<String, Fingerprint>,
    pulled: Pulled,
) -> Result<usize, PullError> {
    for s in &pulled.skipped {
        tracing::warn!(detail = %s.detail, "periodic pull");
    }
    let now = fingerprints(deployer.records());
    let current: BTreeSet<String> = now.keys().cloned().collect();
    let wanted: BTreeSet<String> = pulled.zones.iter().map(|z| z.uuid.clone()).collect();
    check_removals(&current, &wanted, removal_share(&deployer.config))?;
    let (zones, kept) = merge_changed(pulled.zones, before, &now);
    for u in &kept {
        tracing::info!(zone = %u, "an event changed this zone during the pull; its state is kept");
    }
    let n = zones.len();
    let event = Event {
        id: format!("{SYNC_ID_PREFIX}{}", name.trim_end_matches(".json")),
        seq: None,
        body: Body::Sync { zones },
    };
    let bytes = serde_json::to_vec(&event).map_err(|e| PullError::Spool(e.into()))?;
    if bytes.len() as u64 > deployer.config.max_event_bytes {
        return Err(PullError::TooLarge {
            bytes: bytes.len(),
            max: deployer.config.max_event_bytes,
        });
    }
    if apply_sync(deployer, &event)?.failed > 0 {
        tracing::warn!("the periodic pull had malformed zones; they keep their state");
    }
    Ok(n)
}

/// `zoneagent pull`: returns the exit code.
pub fn run(
    config: &Config,
    url: Option<String>,
    token_file: Option<PathBuf>,
    options: &PullOptions,
    json: bool,
) -> i32 {
    use crate::cli::print_problems;
    use crate::error::{EXIT_CONFIG, EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
    let mut config = config.clone();
    if let Some(u) = url {
        config.api.url = Some(u);
    }
    let token_file = token_file.or_else(|| config.api.token_file.clone());
    let token = match token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(e) => {
            print_problems("error", &[e.to_api_error()], json);
            return EXIT_CONFIG;
        }
    };
    if config.api.url.as_deref().and_then(list_url).is_none() {
        print_problems("error", &[PullError::NoUrl.to_api_error()], json);
        return EXIT_CONFIG;
    }
    let outcome = match pull(&config, token, options) {
        Ok(o) => o,
        Err(e) => {
            print_problems("error", &[e.to_api_error()], json);
            return match e {
                PullError::MassDelete { .. } | PullError::TooLarge { .. } => EXIT_INVALID_INPUT,
                _ => EXIT_FAILURE,
            };
        }
    };
    print_problems("warning", &outcome.skipped, json);
    for u in &outcome.kept {
        tracing::info!(zone = %u, "an event changed this zone during the pull; its state is kept");
    }
    if options.dry_run {
        for (verb, list) in [
            ("add", &outcome.would_add),
            ("change", &outcome.would_change),
            ("remove", &outcome.would_remove),
        ] {
            for d in list {
                println!("would {verb} {d}");
            }
        }
        eprintln!(
            "pulled {} zone(s), {} skipped: would add {}, change {}, remove {}",
            outcome.fetched,
            outcome.skipped.len(),
            outcome.would_add.len(),
            outcome.would_change.len(),
            outcome.would_remove.len()
        );
        return EXIT_OK;
    }
    match &outcome.applied {
        Some(stats) => {
            eprintln!(
                "pulled {} zone(s), {} skipped; applied {} event(s) with the sync: wrote {} zone(s), deleted {}{}",
                outcome.fetched,
                outcome.skipped.len(),
                stats.applied,
                stats.zones_written,
                stats.zones_deleted,
                if stats.pending > 0 {
                    format!(", {} waiting for named", stats.pending)
                } else {
                    String::new()
                }
            );
            if outcome.sync_failed {
                eprintln!(
                    "error: some zones were refused; see spool/failed/{}.error.json",
                    outcome.spooled.as_deref().unwrap_or_default()
                );
                return EXIT_INVALID_INPUT;
            }
        }
        None => eprintln!(
            "pulled {} zone(s), {} skipped; handed to the running agent as spool/new/{} ({} zone(s) kept their newer state)",
            outcome.fetched,
            outcome.skipped.len(),
            outcome.spooled.as_deref().unwrap_or_default(),
            outcome.kept.len()
        ),
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_plain_and_paginated() {
        let plain = r#"[{"uuid": "abc123-def456-ghi789", "domain": "example.com",
            "created_at": "2024-01-15T10:30:00Z", "record_count": 12}]"#;
        let p = parse_list(plain).unwrap();
        assert_eq!(p.zones[0].domain, "example.com");
        assert_eq!(p.next, None);
        let paged = r#"{"count": 3, "next": "/api/v1/dns-zones/?page=2", "previous": null,
            "results": [{"uuid": "a", "domain": "a.example"}]}"#;
        let p = parse_list(paged).unwrap();
        assert_eq!(p.next.as_deref(), Some("/api/v1/dns-zones/?page=2"));
        let last = r#"{"count": 3, "next": null, "results": []}"#;
        assert_eq!(parse_list(last).unwrap().next, None);
    }

    #[test]
    fn malformed_lists_name_what_is_wrong() {
        let cases = [
            (
                "{\"results\": [{\"uuid\": 1, \"domain\": \"x\"}]}",
                Some("results[0].uuid"),
            ),
            ("[{\"domain\": \"x\"}]", Some("[0]")),
            (
                "[{\"uuid\": \"../x\", \"domain\": \"x\"}]",
                Some("[0].uuid"),
            ),
            ("{\"count\": 1}", Some("results")),
            ("{\"results\": [], \"next\": 5}", Some("next")),
            ("\"zones\"", None),
            ("<html>", None),
        ];
        for (body, field) in cases {
            let e = parse_list(body).unwrap_err();
            assert_eq!(e.field.as_deref(), field, "{body}: {e:?}");
        }
    }

    #[test]
    fn detail_must_be_the_zone_asked_for() {
        let body = r#"{"uuid": "z1", "domain": "example.com", "records": []}"#;
        assert!(parse_detail(body, "z1").is_ok());
        assert_eq!(
            parse_detail(body, "z2").unwrap_err().field.as_deref(),
            Some("uuid")
        );
        let e = parse_detail(r#"{"uuid": "z1", "domain": "example.com"}"#, "z1").unwrap_err();
        assert!(e.detail.contains("records"), "{e:?}");
    }

    #[test]
    fn urls() {
        assert_eq!(
            list_url("https://admin.vps.org").as_deref(),
            Some("https://admin.vps.org/api/v1/dns-zones/")
        );
        assert_eq!(
            list_url("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080/api/v1/dns-zones/")
        );
        assert_eq!(
            list_url("https://h/custom/zones").as_deref(),
            Some("https://h/custom/zones/")
        );
        assert_eq!(list_url("ftp://h"), None);
        let page = "http://127.0.0.1:1/api/v1/dns-zones/?page=1";
        assert_eq!(
            resolve_next(page, "?page=2").unwrap(),
            "http://127.0.0.1:1/api/v1/dns-zones/?page=2"
        );
        assert_eq!(
            resolve_next(page, "/api/v1/dns-zones/?page=3").unwrap(),
            "http://127.0.0.1:1/api/v1/dns-zones/?page=3"
        );
        assert!(resolve_next(page, "http://127.0.0.1:1/x").is_ok());
        assert!(resolve_next(page, "https://evil.example/steal").is_err());
        assert!(resolve_next(page, "page=2").is_err());
    }

    #[test]
    fn classify_answers() {
        assert_eq!(classify(200, "[]"), Verdict::Ok);
        assert_eq!(classify(404, ""), Verdict::NotFound);
        assert!(matches!(classify(503, ""), Verdict::Retry(_)));
        let body = r#"{"detail": "Token lacks dns:list permission", "error_code": "forbidden"}"#;
        assert_eq!(
            classify(403, body),
            Verdict::Fail(PullErrorKind::Forbidden(
                Some("dns:list".to_owned()),
                "Token lacks dns:list permission".to_owned()
            ))
        );
        assert_eq!(
            classify(403, "nope"),
            Verdict::Fail(PullErrorKind::Forbidden(None, "nope".to_owned()))
        );
        assert!(matches!(
            classify(401, r#"{"detail": "Invalid API token", "error_code": "x"}"#),
            Verdict::Fail(PullErrorKind::Unauthorized(d)) if d == "Invalid API token"
        ));
    }

    #[test]
    fn removal_share() {
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(
            check_removals(&set(&["a", "b"]), &set(&["a"]), 0.5).unwrap(),
            1
        );
        assert!(check_removals(&set(&["a", "b", "c"]), &set(&["a"]), 0.5).is_err());
        assert!(check_removals(&set(&["a"]), &set(&[]), 0.5).is_err());
        assert_eq!(check_removals(&set(&[]), &set(&["a"]), 0.0).unwrap(), 0);
        assert_eq!(check_removals(&set(&["a"]), &set(&[]), 1.0).unwrap(), 1);
    }

    #[test]
    fn token_is_never_shown() {
        let t = Token("vps_secret".to_owned());
        assert!(!format!("{t:?}").contains("secret"));
        let c = Client::new(Some(t), Duration::from_secs(1), 0, None);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn events_during_a_pull_keep_their_state() {
        let z = |uuid: &str, n: usize| Zone {
            uuid: uuid.to_owned(),
            domain: format!("{uuid}.example"),
            created_at: None,
            records: (0..n)
                .map(|i| crate::model::zone::Record {
                    uuid: format!("{uuid}-{i}"),
                    record_type: "A".into(),
                    name: "@".into(),
                    value: Some(format!("192.0.2.{i}")),
                    ttl: None,
                    priority: None,
                    created_at: None,
                })
                .collect(),
        };
        let fp = |zone: Zone, seq: u64| Fingerprint {
            zone,
            last_seq: Some(seq),
            recent_ids: vec![],
        };
        let before: BTreeMap<String, Fingerprint> = [
            ("a".to_owned(), fp(z("a", 1), 1)),
            ("b".to_owned(), fp(z("b", 1), 2)),
            ("c".to_owned(), fp(z("c", 1), 3)),
        ]
        .into();
        // During the pull: b got a record, c was deleted, d was created.
        let now: BTreeMap<String, Fingerprint> = [
            ("a".to_owned(), fp(z("a", 1), 1)),
            ("b".to_owned(), fp(z("b", 2), 4)),
            ("d".to_owned(), fp(z("d", 1), 5)),
        ]
        .into();
        let pulled = vec![z("a", 3), z("b", 1), z("c", 1)];
        let (zones, mut kept) = merge_changed(pulled, &before, &now);
        kept.sort();
        assert_eq!(kept, ["b", "c", "d"]);
        let by: BTreeMap<&str, usize> = zones
            .iter()
            .map(|z| (z.uuid.as_str(), z.records.len()))
            .collect();
        assert_eq!(by, [("a", 3), ("b", 2), ("d", 1)].into());
    }
}
