//! `zoneagent adopt`: turns existing BIND zone files into a dump in the
//! API's shape (a JSON array of zone details, what `import` takes).
//!
//! The files are read through BIND's own parser: `named-checkzone -D -s
//! full` prints every RR in canonical text, one per line, with `$INCLUDE`,
//! `$ORIGIN`, `$TTL` and relative names resolved. This module maps those
//! lines to API records ([`map_zone`], pure) and holds the thin part that
//! runs the tool ([`compile`]). Nothing is dropped silently: an RR that has
//! no API form (another type, the apex SOA and NS the agent writes itself,
//! a value the API would refuse) comes back as a report in the API's error
//! shape beside the zone.

use crate::error::ApiError;
use crate::exec::{self, ToolError};
use crate::model::name::{self, Name, RESERVED_ZONES};
use crate::model::record::txt_chunks;
use crate::model::zone::{Record, Zone};
use crate::validate::{self, ZoneDefaults};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The types the API holds.
const API_TYPES: [&str; 8] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA"];

/// One zone read from its file: the zone in the API's shape and what could
/// not be carried over as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub zone: Zone,
    /// One report per RR not adopted or adopted in another form.
    pub reports: Vec<ApiError>,
}

/// A zone file to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub domain: Name,
    pub file: PathBuf,
    /// The directory relative `$INCLUDE` paths are resolved against
    /// (`named`'s `directory`, or the file's own directory).
    pub directory: PathBuf,
}

/// Why adopting stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("failed to load zone {domain} from {file}")]
    Load {
        domain: String,
        file: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("failed to read the configuration {file}")]
    Conf {
        file: PathBuf,
        #[source]
        source: ToolError,
    },
    #[error("failed to list {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot tell the zone of {path}: name it `DOMAIN=FILE` or call the file `DOMAIN.zone`")]
    NoDomain { path: PathBuf },
    #[error("`{input}` is not a zone name: {detail}")]
    BadDomain { input: String, detail: String },
    #[error("zone {domain} is given twice ({first} and {second})")]
    Twice {
        domain: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// One RR of BIND's canonical output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CanonicalRr<'a> {
    owner: &'a str,
    ttl: i64,
    rtype: &'a str,
    rdata: &'a str,
}

/// Splits one line of `named-checkzone -D -s full` output: owner, TTL,
/// class, type, then the RDATA as printed.
fn parse_line(line: &str) -> Option<CanonicalRr<'_>> {
    let mut rest = line.trim_start();
    let mut fields = [""; 4];
    for f in &mut fields {
        let end = rest.find(char::is_whitespace)?;
        *f = &rest[..end];
        rest = rest[end..].trim_start();
    }
    let [owner, ttl, _class, rtype] = fields;
    Some(CanonicalRr {
        owner,
        ttl: ttl.parse().ok()?,
        rtype,
        rdata: rest.trim_end(),
    })
}

/// Reads the quoted character-strings of a TXT RDATA in presentation form
/// (RFC 1035 §5.1: `\"`, `\\` and `\DDD` escapes).
fn character_strings(rdata: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = rdata.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("a character-string has no closing quote".to_owned()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let digits = bytes
                                .get(i + 1..i + 4)
                                .filter(|d| d.iter().all(u8::is_ascii_digit));
                            if let Some(d) = digits {
                                let n: u16 = std::str::from_utf8(d)
                                    .ok()
                                    .and_then(|t| t.parse().ok())
                                    .unwrap_or(256);
                                s.push(
                                    u8::try_from(n)
                                        .map_err(|_| format!("escape `\\{n}` is over 255"))?,
                                );
                                i += 4;
                            } else {
                                let c = bytes.get(i + 1).ok_or("a lone `\\` ends the RDATA")?;
                                s.push(*c);
                                i += 2;
                            }
                        }
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(s);
            }
            _ => return Err(format!("unquoted text in TXT RDATA `{rdata}`")),
        }
    }
    Ok(out)
}

/// A hostname from canonical RDATA as the API writes it: without the
/// trailing dot (values are absolute either way), `.` kept for the root.
fn host(text: &str) -> String {
    if text == "." {
        text.to_owned()
    } else {
        text.strip_suffix('.').unwrap_or(text).to_owned()
    }
}

/// The stable id of an adopted zone: the same domain always gets the same
/// uuid, so adopting twice gives the same dump.
pub fn zone_uuid(domain: &Name) -> String {
    format!("adopted-{}", short_hash(&[domain.as_str()]))
}

/// The stable id of an adopted record, from its zone, owner, type and data
/// (not its TTL: a TTL change keeps the record's identity).
fn record_uuid(domain: &Name, record: &Record) -> String {
    let priority = record.priority.map(|p| p.to_string()).unwrap_or_default();
    format!(
        "adopted-{}",
        short_hash(&[
            domain.as_str(),
            &record.name,
            &record.record_type,
            record.value.as_deref().unwrap_or_default(),
            &priority,
        ])
    )
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    crate::render::hex(&h.finalize()[..12])
}

/// The report for an RR that was not adopted (or adopted in another form).
fn report(code: &str, domain: &Name, rr: &CanonicalRr<'_>, why: &str) -> ApiError {
    ApiError::new(
        code,
        Some("records"),
        format!(
            "zone {domain}: `{} {} {} {}` {why}",
            rr.owner, rr.ttl, rr.rtype, rr.rdata
        ),
    )
}

/// Maps BIND's canonical text of one zone to the API's zone: every RR of
/// the eight API types becomes a record (validated with the library's own
/// rules), every other RR a report. Records come sorted by name, type and
/// value, so the same file always gives the same zone.
pub fn map_zone(domain: &Name, canonical: &str, defaults: &ZoneDefaults) -> Adopted {
    let mut reports = Vec::new();
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    for line in canonical.lines() {
        if line.trim().is_empty() || line.starts_with(';') {
            continue;
        }
        let Some(rr) = parse_line(line) else {
            reports.push(ApiError::new(
                "parse_error",
                Some("records"),
                format!("zone {domain}: cannot read `{line}`"),
            ));
            continue;
        };
        let owner = match name::parse_owner(rr.owner, domain) {
            Ok(o) => o,
            Err(e) => {
                reports.push(report(
                    "not_adopted",
                    domain,
                    &rr,
                    &format!("has an owner the API refuses: {e}"),
                ));
                continue;
            }
        };
        let apex = &owner == domain;
        if rr.rtype == "SOA" {
            reports.push(report(
                "not_adopted",
                domain,
                &rr,
                "is the apex SOA; the agent writes its own (see [soa] and zone.serial)",
            ));
            continue;
        }
        if rr.rtype == "NS" && apex {
            reports.push(report(
                "not_adopted",
                domain,
                &rr,
                "is an apex NS; the agent writes the apex NS set from zone.nameservers",
            ));
            continue;
        }
        if !API_TYPES.contains(&rr.rtype) {
            reports.push(report(
                "unsupported_type",
                domain,
                &rr,
                &format!(
                    "is of type {}, which the API does not hold; not adopted",
                    rr.rtype
                ),
            ));
            continue;
        }
        let (priority, value) = match rr.rtype {
            "MX" | "SRV" => {
                let Some((p, rest)) = rr.rdata.split_once(char::is_whitespace) else {
                    reports.push(report("parse_error", domain, &rr, "has no priority"));
                    continue;
                };
                let Ok(p) = p.parse::<i64>() else {
                    reports.push(report(
                        "parse_error",
                        domain,
                        &rr,
                        "has no numeric priority",
                    ));
                    continue;
                };
                let rest = rest.trim();
                let value = if rr.rtype == "MX" {
                    host(rest)
                } else {
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    match fields.as_slice() {
                        [w, port, target] => format!("{w} {port} {}", host(target)),
                        _ => {
                            reports.push(report(
                                "parse_error",
                                domain,
                                &rr,
                                "is not `priority weight port target`",
                            ));
                            continue;
                        }
                    }
                };
                (Some(p), value)
            }
            "CNAME" | "NS" => (None, host(rr.rdata)),
            "TXT" => {
                let strings = match character_strings(rr.rdata) {
                    Ok(s) => s,
                    Err(e) => {
                        reports.push(report("parse_error", domain, &rr, &e));
                        continue;
                    }
                };
                let joined: Vec<u8> = strings.concat();
                let Ok(text) = String::from_utf8(joined.clone()) else {
                    reports.push(report(
                        "not_adopted",
                        domain,
                        &rr,
                        "holds bytes that are not UTF-8; the API's TXT value is text",
                    ));
                    continue;
                };
                // The agent splits at 255 octets (RFC 1035 §3.3.14); any
                // other split is served differently after adoption.
                if !txt_chunks(&joined).eq(strings.iter().map(Vec::as_slice)) {
                    reports.push(report(
                        "change_of_form",
                        domain,
                        &rr,
                        &format!(
                            "has {} character-string(s) split elsewhere than at 255 octets; \
                             adopted as their concatenation, served re-split at 255",
                            strings.len()
                        ),
                    ));
                }
                (None, text)
            }
            _ => (None, rr.rdata.to_owned()),
        };
        let mut record = Record {
            uuid: String::new(),
            record_type: rr.rtype.to_owned(),
            name: owner.relative_to(domain),
            value: Some(value),
            ttl: Some(rr.ttl),
            priority,
            created_at: None,
        };
        record.uuid = record_uuid(domain, &record);
        if let Err(errors) = validate::validate_record(&record, domain, defaults.default_ttl) {
            let why = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            reports.push(report(
                "not_adopted",
                domain,
                &rr,
                &format!("is refused by the API's rules: {why}"),
            ));
            continue;
        }
        if seen.insert(record.uuid.clone()) {
            records.push(record);
        }
    }
    records.sort_by(|a, b| {
        (&a.name, &a.record_type, &a.value, a.priority).cmp(&(
            &b.name,
            &b.record_type,
            &b.value,
            b.priority,
        ))
    });
    let zone = Zone {
        uuid: zone_uuid(domain),
        domain: domain.as_str().to_owned(),
        created_at: None,
        records,
    };
    // Zone-wide rules (a CNAME beside other data, a target without an
    // address): errors make `import` hold the zone, warnings are served.
    let zone_wide = match validate::validate(&zone, defaults) {
        Ok(valid) => valid.warnings,
        Err(errors) => errors,
    };
    for mut e in zone_wide {
        e.detail = format!("zone {domain}: {}", e.detail);
        reports.push(e);
    }
    Adopted { zone, reports }
}

/// The argv that prints a zone file in canonical text: every name
/// absolute (`-s full`), no network lookups (`-i none`), relative
/// `$INCLUDE` paths taken from `directory` (`-w`), names BIND would only
/// warn about kept (`-k warn`), output on stdout.
pub fn compile_argv(checkzone: &Path, source: &Source) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![checkzone.into()];
    for a in [
        "-D", "-s", "full", "-i", "none", "-k", "warn", "-o", "-", "-w",
    ] {
        v.push(a.into());
    }
    v.push(source.directory.clone().into());
    v.push(source.domain.to_absolute().into());
    v.push(source.file.clone().into());
    v
}

/// Loads one zone file through `named-checkzone` and maps it.
pub fn compile(
    checkzone: &Path,
    source: &Source,
    defaults: &ZoneDefaults,
) -> Result<Adopted, AdoptError> {
    let argv = compile_argv(checkzone, source);
    let load_err = |e| AdoptError::Load {
        domain: source.domain.as_str().to_owned(),
        file: source.file.clone(),
        source: e,
    };
    let out = exec::run(&argv).map_err(load_err)?;
    if !out.success {
        return Err(load_err(ToolError::failed(out, "could not load the zone")));
    }
    Ok(map_zone(&source.domain, &out.stdout, defaults))
}

/// The domain a zone file's name gives: `example.com.zone`,
/// `example.com.db`, `db.example.com`.
pub fn domain_from_file_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".zone")
        .or_else(|| file_name.strip_suffix(".db"))
        .or_else(|| file_name.strip_prefix("db."))
        .filter(|d| !d.is_empty())
}

fn parse_domain(input: &str) -> Result<Name, AdoptError> {
    name::parse_domain(input).map_err(|detail| AdoptError::BadDomain {
        input: input.to_owned(),
        detail,
    })
}

/// The sources named on the command line: `DOMAIN=FILE`, a file whose name
/// gives its domain, or a directory (its files named like zones; other
/// files, such as `$INCLUDE`d fragments, are left to the zones that
/// include them).
pub fn sources_from_paths(args: &[PathBuf]) -> Result<Vec<Source>, AdoptError> {
    let mut out = Vec::new();
    for arg in args {
        let text = arg.to_string_lossy();
        if let Some((domain, file)) = text.split_once('=').filter(|_| !arg.exists()) {
            out.push(source(parse_domain(domain)?, PathBuf::from(file)));
        } else if arg.is_dir() {
            let list_err = |source| AdoptError::List {
                path: arg.clone(),
                source,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(arg)
                .map_err(list_err)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(list_err)?;
            files.sort();
            for f in files.into_iter().filter(|f| f.is_file()) {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(d) = domain_from_file_name(&name) {
                    out.push(source(parse_domain(d)?, f));
                }
            }
        } else {
            let name = arg
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = domain_from_file_name(&name)
                .ok_or_else(|| AdoptError::NoDomain { path: arg.clone() })?;
            out.push(source(parse_domain(d)?, arg.clone()));
        }
    }
    no_twice(&out)?;
    Ok(out)
}

fn source(domain: Name, file: PathBuf) -> Source {
    let directory = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    Source {
        domain,
        file,
        directory,
    }
}

fn no_twice(sources: &[Source]) -> Result<(), AdoptError> {
    let mut seen: std::collections::HashMap<&Name, &Path> = std::collections::HashMap::new();
    for s in sources {
        if let Some(first) = seen.insert(&s.domain, &s.file) {
            return Err(AdoptError::Twice {
                domain: s.domain.as_str().to_owned(),
                first: first.to_owned(),
                second: s.file.clone(),
            });
        }
    }
    Ok(())
}

/// A primary zone a `named.conf` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfZone {
    pub name: String,
    pub file: String,
}

/// What `named-checkconf -p` says about primary zones: `options {
/// directory }` and each `zone` of `type primary` (or `master`) with its
/// `file`, in views too. Secondary, forward, hint and other zones are not
/// this server's data and are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfZones {
    pub directory: Option<String>,
    pub zones: Vec<ConfZone>,
}

/// A token of named.conf syntax (also key files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Word(String),
    Open,
    Close,
    End,
}

pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            ';' => out.push(Token::End),
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => s.extend(chars.next()),
                        c => s.push(c),
                    }
                }
                out.push(Token::Word(s));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    out
}

/// One statement: its words and, if it has one, its block.
#[derive(Debug, Default)]
pub(crate) struct Statement {
    pub(crate) words: Vec<String>,
    pub(crate) block: Vec<Statement>,
}

pub(crate) fn statements(tokens: &[Token], pos: &mut usize) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current = Statement::default();
    while let Some(t) = tokens.get(*pos) {
        *pos += 1;
        match t {
            Token::Word(w) => current.words.push(w.clone()),
            Token::Open => current.block = statements(tokens, pos),
            Token::End => out.push(std::mem::take(&mut current)),
            Token::Close => break,
        }
    }
    if !current.words.is_empty() {
        out.push(current);
    }
    out
}

pub(crate) fn value<'a>(block: &'a [Statement], key: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|s| s.words.first().is_some_and(|w| w == key))
        .and_then(|s| s.words.get(1))
        .map(String::as_str)
}
fn walk(list: &[Statement], out: &mut ConfZones) {
    for s in list {
        match s.words.first().map(String::as_str) {
            Some("options") => {
                if let Some(d) = value(&s.block, "directory") {
                    out.directory = Some(d.to_owned());
                }
            }
            Some("view") => walk(&s.block, out),
            Some("zone") => {
                let kind = value(&s.block, "type");
                if matches!(kind, Some("primary" | "master"))
                    && let (Some(name), Some(file)) = (s.words.get(1), value(&s.block, "file"))
                {
                    out.zones.push(ConfZone {
                        name: name.clone(),
                        file: file.to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
}

/// Reads `named-checkconf -p` output (pure).
pub fn primary_zones(canonical_conf: &str) -> ConfZones {
    let toks = tokens(canonical_conf);
    let mut pos = 0;
    let top = statements(&toks, &mut pos);
    let mut out = ConfZones::default();
    walk(&top, &mut out);
    out
}

/// The primary zones of a `named.conf`, read through `named-checkconf -p`.
/// named's own default zones (`localhost`, …) are skipped with a report.
pub fn sources_from_named_conf(
    checkconf: &Path,
    conf: &Path,
) -> Result<(Vec<Source>, Vec<ApiError>), AdoptError> {
    let argv: Vec<OsString> = vec![checkconf.into(), "-p".into(), conf.into()];
    let conf_err = |source| AdoptError::Conf {
        file: conf.to_owned(),
        source,
    };
    let out = exec::run(&argv).map_err(conf_err)?;
    if !out.success {
        return Err(conf_err(ToolError::failed(
            out,
            "refused the configuration",
        )));
    }
    let parsed = primary_zones(&out.stdout);
    let directory = parsed.directory.map_or_else(
        || {
            conf.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_owned)
        },
        PathBuf::from,
    );
    let mut sources = Vec::new();
    let mut reports = Vec::new();
    for z in parsed.zones {
        let plain = z
            .name
            .strip_suffix('.')
            .unwrap_or(&z.name)
            .to_ascii_lowercase();
        if RESERVED_ZONES.contains(&plain.as_str()) {
            reports.push(ApiError::new(
                "not_adopted",
                Some("zone"),
                format!("zone {plain}: one of named's own default zones; not adopted"),
            ));
            continue;
        }
        let domain = match name::parse_domain(&z.name) {
            Ok(d) => d,
            Err(e) => {
                reports.push(ApiError::new(
                    "not_adopted",
                    Some("zone"),
                    format!("zone {}: {e}; not adopted", z.name),
                ));
                continue;
            }
        };
        sources.push(Source {
            domain,
            file: directory.join(&z.file),
            directory: directory.clone(),
        });
    }
    no_twice(&sources)?;
    Ok((sources, reports))
}

/// `zoneagent adopt`: loads every source, prints the dump on stdout and
/// the reports on stderr. Returns the exit code: a zone BIND cannot load
/// stops everything (no partial dump, which `import` would read as "delete
/// the rest").
pub fn run(
    config: &crate::config::Config,
    json: bool,
    named_conf: Option<&Path>,
    paths: &[PathBuf],
) -> i32 {
    use crate::cli::{print_error, print_problems};
    use crate::error::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
    let mut reports = Vec::new();
    let mut sources = Vec::new();
    if let Some(conf) = named_conf {
        match sources_from_named_conf(&config.bind.checkconf, conf) {
            Ok((s, r)) => {
                sources.extend(s);
                reports.extend(r);
            }
            Err(e) => {
                print_error(&e);
                return EXIT_INVALID_INPUT;
            }
        }
    }
    match sources_from_paths(paths) {
        Ok(s) => sources.extend(s),
        Err(e) => {
            print_error(&e);
            return EXIT_INVALID_INPUT;
        }
    }
    if let Err(e) = no_twice(&sources) {
        print_error(&e);
        return EXIT_INVALID_INPUT;
    }
    let mut zones = Vec::new();
    for s in &sources {
        match compile(&config.bind.checkzone, s, &config.zone) {
            Ok(a) => {
                reports.extend(a.reports);
                zones.push(a.zone);
            }
            Err(e) => {
                print_problems("warning", &reports, json);
                print_error(&e);
                return EXIT_INVALID_INPUT;
            }
        }
    }
    zones.sort_by(|a, b| a.domain.cmp(&b.domain));
    print_problems("warning", &reports, json);
    let mut text = match serde_json::to_string_pretty(&zones) {
        Ok(t) => t,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    text.push('\n');
    let mut out = std::io::stdout().lock();
    if std::io::Write::write_all(&mut out, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out))
        .is_err()
    {
        return EXIT_FAILURE;
    }
    let records: usize = zones.iter().map(|z| z.records.len()).sum();
    eprintln!(
        "adopted {} zone(s), {records} record(s); {} report(s)",
        zones.len(),
        reports.len()
    );
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ZoneDefaults {
        crate::config::Config::default().zone
    }

    const CANONICAL: &str = "\
example.com.\t\t\t600 IN SOA\tns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
example.com.\t\t\t600 IN NS\tns1.example.com.
example.com.\t\t\t600 IN MX\t10 mail.example.com.
example.com.\t\t\t600 IN TXT\t\"v=spf1\" \" -all\"
example.com.\t\t\t600 IN TXT\t\"one\"
example.com.\t\t\t600 IN CAA\t0 issue \"letsencrypt.org\"
4.3.example.com.\t\t600 IN PTR\thost.example.com.
_sip._tcp.example.com.\t600 IN SRV\t10 5 5060 sip.example.com.
x.dept.example.com.\t600 IN TXT\t\"quote\\\"d\" \"\\\\back\"
ftp.example.com.\t\t600 IN CNAME\twww.example.com.
mail.example.com.\t\t600 IN AAAA\t2001:db8::1
sub.example.com.\t\t600 IN NS\tns.other.net.
www.example.com.\t\t300 IN A\t192.0.2.1
";

    #[test]
    fn maps_every_api_type_and_reports_the_rest() {
        let domain = name::parse_domain("example.com").unwrap();
        let a = map_zone(&domain, CANONICAL, &defaults());
        let got: Vec<(String, String, String, Option<i64>)> = a
            .zone
            .records
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.record_type.clone(),
                    r.value.clone().unwrap(),
                    r.priority,
                )
            })
            .collect();
        let want = [
            ("@", "CAA", "0 issue \"letsencrypt.org\"", None),
            ("@", "MX", "mail.example.com", Some(10)),
            ("@", "TXT", "one", None),
            ("@", "TXT", "v=spf1 -all", None),
            ("_sip._tcp", "SRV", "5 5060 sip.example.com", Some(10)),
            ("ftp", "CNAME", "www.example.com", None),
            ("mail", "AAAA", "2001:db8::1", None),
            ("sub", "NS", "ns.other.net", None),
            ("www", "A", "192.0.2.1", None),
            ("x.dept", "TXT", "quote\"d\\back", None),
        ];
        let want: Vec<(String, String, String, Option<i64>)> = want
            .iter()
            .map(|(n, t, v, p)| ((*n).to_owned(), (*t).to_owned(), (*v).to_owned(), *p))
            .collect();
        assert_eq!(got, want);
        let codes: Vec<&str> = a.reports.iter().map(|r| r.error_code.as_str()).collect();
        // SOA, apex NS, PTR, two TXT split elsewhere than at 255.
        assert_eq!(
            codes.iter().filter(|c| **c == "not_adopted").count(),
            2,
            "{:?}",
            a.reports
        );
        assert_eq!(
            codes.iter().filter(|c| **c == "unsupported_type").count(),
            1
        );
        assert_eq!(codes.iter().filter(|c| **c == "change_of_form").count(), 2);
        assert!(a.reports.iter().any(|r| r.detail.contains("PTR")));
        // Stable: the same input gives the same uuids.
        assert_eq!(map_zone(&domain, CANONICAL, &defaults()), a);
        assert!(
            a.zone
                .records
                .iter()
                .all(|r| validate::check_uuid(&r.uuid).is_ok())
        );
    }

    #[test]
    fn txt_split_at_255_is_the_same_form() {
        let domain = name::parse_domain("example.com").unwrap();
        let line = format!("t.example.com. 60 IN TXT \"{}\" \"b\"\n", "a".repeat(255));
        let a = map_zone(&domain, &line, &defaults());
        assert!(a.reports.is_empty(), "{:?}", a.reports);
        assert_eq!(a.zone.records[0].value.as_deref().map(str::len), Some(256));
        let bin = "t.example.com. 60 IN TXT \"\\200\"\n";
        let a = map_zone(&domain, bin, &defaults());
        assert!(a.zone.records.is_empty());
        assert_eq!(a.reports[0].error_code, "not_adopted");
    }

    #[test]
    fn character_strings_unescape() {
        assert_eq!(
            character_strings(r#""a\"b" "\065\\" """#).unwrap(),
            vec![b"a\"b".to_vec(), b"A\\".to_vec(), Vec::new()]
        );
        assert!(character_strings("\"open").is_err());
        assert!(character_strings("bare").is_err());
    }

    #[test]
    fn file_names_give_domains() {
        assert_eq!(
            domain_from_file_name("example.com.zone"),
            Some("example.com")
        );
        assert_eq!(domain_from_file_name("db.example.com"), Some("example.com"));
        assert_eq!(domain_from_file_name("example.org.db"), Some("example.org"));
        assert_eq!(domain_from_file_name("include.txt"), None);
    }

    #[test]
    fn named_conf_primary_zones() {
        let conf = r#"options {
	directory "/var/cache/bind";
};
zone "example.com" {
	type master;
	file "db.example.com";
};
zone "sec.example" {
	type secondary;
	file "sec.db";
	primaries {
		192.0.2.1;
	};
};
view "v" {
	zone "x\"y.example" IN {
		type primary;
		file "/etc/bind/in db";
	};
};
"#;
        let z = primary_zones(conf);
        assert_eq!(z.directory.as_deref(), Some("/var/cache/bind"));
        assert_eq!(
            z.zones,
            vec![
                ConfZone {
                    name: "example.com".into(),
                    file: "db.example.com".into()
                },
                ConfZone {
                    name: "x\"y.example".into(),
                    file: "/etc/bind/in db".into()
                },
            ]
        );
    }
}
