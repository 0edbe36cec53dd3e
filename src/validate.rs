//! Validation: an API [`Zone`] becomes a [`ValidatedZone`], or every problem
//! in it is reported in the API's error shape.
//!
//! This is the gate between what users type and what BIND loads. It sorts
//! problems into three kinds, which the deploy pipeline treats differently:
//!
//! - **Malformed** ([`record_well_formed`], [`zone_well_formed`]): what the
//!   API itself answers with 400, field by field: uuid syntax, unknown
//!   record type, name syntax, TTL range, missing or out-of-range priority,
//!   a value that does not parse for its type (addresses, SRV `weight port
//!   target`, CAA `flags tag value`, TXT too long for one record, a
//!   hostname target written as an address literal or with a bad label).
//!   Such an event fails; it never reaches a zone.
//! - **Refused by `named`** ([`validate`] returns `Err` for a well-formed
//!   zone): what `named` 9.18 will not load as a primary zone with its
//!   default options: a CNAME beside other data, at the apex or twice
//!   (RFC 1034 §3.6.2, RFC 2181 §10.1), an apex NS target inside the zone
//!   without an address or that is a CNAME, BIND's `check-names primary
//!   fail` (`_` or a bad hyphen in an A, AAAA or MX owner, or in an NS, MX
//!   or SRV target) and NS at a wildcard (RFC 4592 §4.2). The zone is held:
//!   the last good file stays served.
//! - **Served with a warning** ([`ValidatedZone::warnings`]): what `named`
//!   loads and only warns about (an in-zone MX or SRV target without an
//!   address or that is a CNAME, a delegation without glue, a null MX beside
//!   other MX), plus what the agent resolved itself (differing TTLs in an
//!   RRset, duplicates, data hidden below a delegation).
//!
//! With [`ZoneDefaults::strict`] (`[validate] strict = true`), the target
//! and null-MX warnings are refusals instead, as the stricter
//! `named-checkzone -m fail -M fail -S fail` would have it. Each rule's
//! verdict is measured against a real `named` by `tests/it/oracle.rs`. Pure:
//! no I/O, no clock.

use crate::error::ApiError;
use crate::model::name::{self, Name};
use crate::model::record::{MAX_CHARACTER_STRING, RData, RecordType};
use crate::model::zone::{Record, Zone};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Largest TTL (RFC 2181 §8); BIND silently loads anything larger as 0.
pub const MAX_TTL: i64 = 2_147_483_647;
/// Largest RDATA BIND 9.18 loads from a zone file: RDLENGTH is 16 bits
/// (RFC 1035 §3.2.1), but `named` refuses anything over 65,510 octets
/// ("ran out of space"), measured with TXT and CAA.
const MAX_RDATA: usize = 65_510;
/// The `uuid` under which the platform's own apex NS records are grouped:
/// empty, which no record uuid can be.
const FROM_CONFIG: &str = "";

/// What a zone gets from configuration rather than from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDefaults {
    /// TTL for records whose `ttl` is absent or null, and for the SOA and
    /// the platform's apex NS records.
    pub default_ttl: u32,
    /// The platform's nameservers, rendered as the apex NS RRset.
    pub nameservers: Vec<Name>,
    /// Refuse what `named` only warns about (in-zone MX, SRV and delegation
    /// targets without an address or that are CNAMEs, a null MX beside
    /// other MX): an operator's opt-in, `[validate] strict`.
    pub strict: bool,
}

/// One RRset: every record of one type at one owner name, with one TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrSet {
    pub owner: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    /// Sorted, without duplicates.
    pub rdata: Vec<RData>,
}

/// A zone that passed validation: the only input render and deploy accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedZone {
    pub uuid: String,
    pub origin: Name,
    /// Sorted by owner (DNSSEC canonical order), then type; the apex NS
    /// RRset, including the platform's nameservers, is always present.
    pub rrsets: Vec<RrSet>,
    /// What `named` loads but warns about (in its words: `has no address
    /// records`, `is a CNAME (illegal)`, `has no REQUIRED GLUE`), and what
    /// was resolved rather than refused (differing TTLs in an RRset, exact
    /// duplicates), in the API's error shape with `field` and record uuid.
    pub warnings: Vec<ApiError>,
}

impl ValidatedZone {
    /// Number of resource records, SOA excluded.
    pub fn record_count(&self) -> usize {
        self.rrsets.iter().map(|s| s.rdata.len()).sum()
    }
}

/// Checks an identifier that is used in file names and logs: the zone's
/// and each record's `uuid`.
pub fn check_uuid(uuid: &str) -> Result<(), String> {
    let ok = !uuid.is_empty()
        && uuid.len() <= 128
        && uuid != "."
        && uuid != ".."
        && !uuid.starts_with('.')
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(
            "must be 1 to 128 characters of letters, digits, `-`, `_`, `.` and `:`, \
             not starting with `.`"
                .to_owned(),
        )
    }
}

/// What the well-formedness pass leaves: the parsed records and every
/// problem the API itself would answer with 400.
struct Parsed<'a> {
    origin: Option<Name>,
    records: Vec<(Rr, &'a str)>,
    malformed: Vec<ApiError>,
}

/// The API's own field rules over a whole zone; stops at the domain only
/// when it cannot be parsed (nothing else can be checked without it).
fn parse_zone(zone: &Zone, default_ttl: u32) -> Parsed<'_> {
    let mut malformed = Vec::new();
    if let Err(e) = check_uuid(&zone.uuid) {
        malformed.push(ApiError::validation("uuid", e));
    }
    let origin = match name::parse_domain(&zone.domain) {
        Ok(o) => o,
        Err(e) => {
            malformed.push(ApiError::validation("domain", e));
            return Parsed {
                origin: None,
                records: Vec::new(),
                malformed,
            };
        }
    };
    let mut records = Vec::with_capacity(zone.records.len());
    let mut seen_uuids = HashSet::with_capacity(zone.records.len());
    for record in &zone.records {
        if !seen_uuids.insert(record.uuid.as_str()) {
            malformed.push(
                ApiError::validation("uuid", "two records in the zone have this uuid")
                    .in_record(&record.uuid),
            );
        }
        match validate_record(record, &origin, default_ttl) {
            Ok(rr) => records.push((rr, record.uuid.as_str())),
            Err(mut e) => malformed.append(&mut e),
        }
    }
    Parsed {
        origin: Some(origin),
        records,
        malformed,
    }
}

/// The API's 400 rules for one record: uuid, type, name and TTL syntax,
/// priority, and the value parsed for its type. Nothing here depends on the
/// other records of the zone or on what `named` would make of them.
pub fn record_well_formed(record: &Record, origin: &Name) -> Result<(), Vec<ApiError>> {
    validate_record(record, origin, 0).map(|_| ())
}

/// The API's 400 rules for a whole zone: its uuid and domain, record uuids
/// unique, and [`record_well_formed`] for every record. A zone that fails
/// here is malformed; one that passes is part of the source of truth even
/// when [`validate`] refuses it (the zone is then held, not failed).
pub fn zone_well_formed(zone: &Zone) -> Result<(), Vec<ApiError>> {
    let parsed = parse_zone(zone, 0);
    if parsed.malformed.is_empty() {
        Ok(())
    } else {
        Err(parsed.malformed)
    }
}

/// The outcome of every check on a zone, kept apart by kind.
struct Checked {
    zone: Option<ValidatedZone>,
    /// The API's 400 rules.
    malformed: Vec<ApiError>,
    /// What `named` would refuse (and, with `strict`, what the operator
    /// chose to refuse too).
    refused: Vec<ApiError>,
}

fn check_zone(zone: &Zone, defaults: &ZoneDefaults) -> Checked {
    let Parsed {
        origin,
        mut records,
        malformed,
    } = parse_zone(zone, defaults.default_ttl);
    let Some(origin) = origin else {
        return Checked {
            zone: None,
            malformed,
            refused: Vec::new(),
        };
    };
    for ns in &defaults.nameservers {
        let rr = Rr {
            owner: origin.clone(),
            ttl: defaults.default_ttl,
            data: RData::Ns(ns.clone()),
        };
        records.push((rr, FROM_CONFIG));
    }
    let mut refused = Vec::new();
    check_names(&origin, &records, &mut refused);
    let (rrsets, warnings) = assemble(&origin, records, defaults.strict, &mut refused);
    Checked {
        zone: Some(ValidatedZone {
            uuid: zone.uuid.clone(),
            origin,
            rrsets,
            warnings,
        }),
        malformed,
        refused,
    }
}

/// Validates a whole zone. `Ok` means `named` 9.18 loads the rendered file
/// as a primary zone with its default options (what it only warns about is
/// in [`ValidatedZone::warnings`]); `Err` holds every problem found, not
/// just the first: the API's 400 rules ([`zone_well_formed`]) and what
/// `named` would refuse. With [`ZoneDefaults::strict`], more is refused.
pub fn validate(zone: &Zone, defaults: &ZoneDefaults) -> Result<ValidatedZone, Vec<ApiError>> {
    let Checked {
        zone,
        mut malformed,
        mut refused,
    } = check_zone(zone, defaults);
    malformed.append(&mut refused);
    match zone {
        Some(z) if malformed.is_empty() => Ok(z),
        _ => Err(malformed),
    }
}

/// The zone as [`validate`] assembles it, with what `named` would refuse
/// left in: only the API's 400 rules make it fail. For tests that let
/// `named` judge exactly the file the agent would write; never deployed.
#[doc(hidden)]
pub fn validate_unchecked(
    zone: &Zone,
    defaults: &ZoneDefaults,
) -> Result<ValidatedZone, Vec<ApiError>> {
    let checked = check_zone(zone, defaults);
    match checked.zone {
        Some(z) if checked.malformed.is_empty() => Ok(z),
        _ => Err(checked.malformed),
    }
}

/// One validated resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    pub owner: Name,
    pub ttl: u32,
    pub data: RData,
}

/// Parses one record by the API's 400 rules (what [`record_well_formed`]
/// checks); returns every problem in it. `default_ttl` is used when the
/// record gives none.
pub fn validate_record(
    record: &Record,
    origin: &Name,
    default_ttl: u32,
) -> Result<Rr, Vec<ApiError>> {
    let mut errors = Vec::new();
    let mut err = |field: &str, detail: String| {
        errors.push(ApiError::validation(field, detail).in_record(&record.uuid));
    };
    if let Err(e) = check_uuid(&record.uuid) {
        err("uuid", e);
    }
    let rtype = RecordType::parse(&record.record_type);
    if rtype.is_none() {
        err(
            "record_type",
            format!(
                "`{}` is not a supported record type; expected one of A, AAAA, CNAME, MX, \
                 TXT, NS, SRV, CAA",
                record.record_type
            ),
        );
    }
    let owner = match name::parse_owner(&record.name, origin) {
        Ok(o) => Some(o),
        Err(e) => {
            err("name", e);
            None
        }
    };
    let ttl = match record.ttl {
        None => Some(default_ttl),
        Some(t) => match u32::try_from(t) {
            Ok(t) if i64::from(t) <= MAX_TTL => Some(t),
            _ => {
                err(
                    "ttl",
                    format!("must be between 0 and {MAX_TTL} (RFC 2181 §8), got {t}"),
                );
                None
            }
        },
    };
    let needs_priority = matches!(rtype, Some(RecordType::Mx | RecordType::Srv));
    let priority = match (record.priority, needs_priority) {
        (None, true) => {
            let t = rtype.map_or("", RecordType::as_str);
            err("priority", format!("{t} records require a priority value"));
            None
        }
        (Some(p), true) => {
            let valid = u16::try_from(p).ok();
            if valid.is_none() {
                err("priority", format!("must be between 0 and 65535, got {p}"));
            }
            valid
        }
        // A priority on another type is meaningless and not rendered.
        (_, false) => None,
    };
    let data = match (&record.value, rtype) {
        (None, _) => {
            err("value", "is required and must not be null".to_owned());
            None
        }
        (Some(_), None) => None,
        (Some(value), Some(rtype)) => {
            match parse_rdata(rtype, value, priority, origin, needs_priority) {
                Ok(d) => d,
                Err(e) => {
                    err("value", e);
                    None
                }
            }
        }
    };
    match (errors.is_empty(), owner, ttl, data) {
        (true, Some(owner), Some(ttl), Some(data)) => Ok(Rr { owner, ttl, data }),
        _ => Err(errors),
    }
}

/// BIND's `check-names primary fail` (ARM, `check-names`; on by default for
/// a primary zone) and the NS-at-a-wildcard rule (RFC 4592 §4.2): `named`
/// refuses the whole zone for either, so they are servability rules, not the
/// API's. Names are checked per record so the refusal names it.
fn check_names(origin: &Name, records: &[(Rr, &str)], refused: &mut Vec<ApiError>) {
    for (rr, uuid) in records {
        let rtype = rr.data.record_type();
        let shown = rr.owner.relative_to(origin);
        if rtype == RecordType::Ns && rr.owner.is_wildcard() {
            refused.push(attribute(
                ApiError::validation(
                    "name",
                    format!(
                        "`{shown}`: NS records cannot be at a wildcard name (RFC 4592 §4.2); \
                         named refuses the zone (invalid NS owner name (wildcard))"
                    ),
                ),
                uuid,
            ));
        }
        if matches!(rtype, RecordType::A | RecordType::Aaaa | RecordType::Mx)
            && !rr.owner.is_hostname(true)
        {
            refused.push(attribute(
                ApiError::validation(
                    "name",
                    format!(
                        "{} record names must be hostnames (letters, digits and hyphens, \
                         starting and ending with a letter or digit; no `_`): `{shown}`; \
                         named refuses the zone (bad owner name (check-names))",
                        rtype.as_str(),
                    ),
                ),
                uuid,
            ));
        }
        let host_target = match &rr.data {
            RData::Ns(t) | RData::Mx { exchange: t, .. } | RData::Srv { target: t, .. } => Some(t),
            _ => None,
        };
        if let Some(t) = host_target.filter(|t| !t.is_root() && !t.is_hostname(false)) {
            let from_config = *uuid == FROM_CONFIG;
            let mut e = ApiError::validation(
                if from_config { "nameservers" } else { "value" },
                format!(
                    "{} target `{}` of `{shown}` is not a hostname (letters, digits and \
                     hyphens, starting and ending with a letter or digit; no `_`); named \
                     refuses the zone (bad name (check-names))",
                    rtype.as_str(),
                    t.to_absolute()
                ),
            );
            if !from_config {
                e = e.in_record(uuid);
            }
            refused.push(e);
        }
    }
}

/// Parses a value for its type. `Ok(None)` only when `priority` is missing
/// (already reported).
fn parse_rdata(
    rtype: RecordType,
    value: &str,
    priority: Option<u16>,
    origin: &Name,
    needs_priority: bool,
) -> Result<Option<RData>, String> {
    if needs_priority && priority.is_none() {
        // Still check the value so every problem is reported at once.
        parse_rdata(rtype, value, Some(0), origin, needs_priority)?;
        return Ok(None);
    }
    let data = match rtype {
        RecordType::A => RData::A(parse_ipv4(value)?),
        RecordType::Aaaa => RData::Aaaa(parse_ipv6(value)?),
        RecordType::Cname => {
            if looks_like_address(value) {
                return Err(format!(
                    "`{value}` is an address; a CNAME points at a name (use an A record for addresses)"
                ));
            }
            RData::Cname(name::parse_target(value, origin, false)?)
        }
        RecordType::Ns => RData::Ns(host_target(value, origin, false)?),
        RecordType::Mx => RData::Mx {
            preference: priority.unwrap_or_default(),
            // RFC 7505: a null MX is `0 .`. The value is only the exchange
            // (the preference is `priority`), so blanks around it mean
            // nothing.
            exchange: host_target(value.trim_matches(is_blank), origin, true)?,
        },
        RecordType::Srv => {
            // Blanks between, before and after the fields are layout, as
            // in a zone file (RFC 1035 §5.1); the fields themselves are not
            // changed.
            let fields: Vec<&str> = value.split(is_blank).filter(|f| !f.is_empty()).collect();
            if fields.len() != 3 {
                return Err(format!(
                    "SRV value must be `weight port target` separated by spaces, got `{}`",
                    value.escape_debug()
                ));
            }
            let weight = parse_u16(fields[0], "SRV weight")?;
            let port = parse_u16(fields[1], "SRV port")?;
            // RFC 2782: a target of `.` means the service is not available.
            let target = host_target(fields[2], origin, true)?;
            RData::Srv {
                priority: priority.unwrap_or_default(),
                weight,
                port,
                target,
            }
        }
        RecordType::Txt => {
            let bytes = value.as_bytes().to_vec();
            let wire: usize = bytes.len().div_ceil(MAX_CHARACTER_STRING).max(1) + bytes.len();
            if wire > MAX_RDATA {
                return Err(format!(
                    "TXT value is {} bytes; at most {} fit in one record",
                    bytes.len(),
                    MAX_RDATA - MAX_RDATA.div_ceil(MAX_CHARACTER_STRING + 1)
                ));
            }
            RData::Txt(bytes)
        }
        RecordType::Caa => parse_caa(value)?,
    };
    Ok(Some(data))
}

/// Whether a target is written as an IPv4 address (BIND refuses those as
/// MX and NS targets: "MX is an address").
fn looks_like_address(value: &str) -> bool {
    value
        .strip_suffix('.')
        .unwrap_or(value)
        .parse::<Ipv4Addr>()
        .is_ok()
}

/// A target for NS, MX and SRV. An address literal is refused as the
/// API's field rule (the value names a host, RFC 1035 §3.3.9, RFC 2782),
/// although `named` only warns (`MX is an address`, `NS record … appears
/// to be an address`): written without a dot it would be a name in the
/// zone, and either way it is never what the user meant. Whether the name
/// is a hostname (no `_`) is `named`'s check-names, see [`check_names`].
fn host_target(value: &str, origin: &Name, allow_root: bool) -> Result<Name, String> {
    let target = name::parse_target(value, origin, allow_root)?;
    if looks_like_address(value) {
        return Err(format!(
            "`{value}` is an address; the target must be a hostname that has the address"
        ));
    }
    Ok(target)
}

/// A blank between fields of a value: space or tab (RFC 1035 §5.1).
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn parse_ipv4(value: &str) -> Result<Ipv4Addr, String> {
    // std's parser already refuses leading zeros (`010.0.0.1` is ambiguous:
    // octal to some resolvers) and anything trailing.
    value.parse::<Ipv4Addr>().map_err(|_| {
        format!(
            "`{}` is not an IPv4 address (dotted quad like 192.0.2.1)",
            value.escape_debug()
        )
    })
}

fn parse_ipv6(value: &str) -> Result<Ipv6Addr, String> {
    value.parse::<Ipv6Addr>().map_err(|_| {
        format!(
            "`{}` is not an IPv6 address (no prefix length, no zone index)",
            value.escape_debug()
        )
    })
}

fn parse_u16(s: &str, what: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} must be a number from 0 to 65535, got `{s}`"
        ));
    }
    s.parse::<u16>()
        .map_err(|_| format!("{what} must be a number from 0 to 65535, got `{s}`"))
}

/// Parses `flags tag value` (RFC 8659 §4.1); the value is quoted (with `\"`,
/// `\\` and `\DDD` escapes) or a single bare word.
fn parse_caa(value: &str) -> Result<RData, String> {
    // Blanks around and between the fields are layout (RFC 1035 §5.1).
    let rest = value.trim_matches(is_blank);
    let (flags, rest) = rest.split_once(is_blank).ok_or_else(|| {
        "CAA value must be `flags tag value`, e.g. `0 issue \"letsencrypt.org\"`".to_owned()
    })?;
    if flags.is_empty() || !flags.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "CAA flags must be a number from 0 to 255, got `{flags}`"
        ));
    }
    let flags: u8 = flags
        .parse()
        .map_err(|_| format!("CAA flags must be a number from 0 to 255, got `{flags}`"))?;
    if flags & 0x7f != 0 {
        return Err(format!(
            "CAA flags must be 0 or 128 (issuer critical); the other bits are reserved \
             (RFC 8659 §4.1), got {flags}"
        ));
    }
    let rest = rest.trim_start_matches(is_blank);
    let (tag, rest) = rest
        .split_once(is_blank)
        .ok_or_else(|| "CAA value must be `flags tag value`: the value is missing".to_owned())?;
    if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "CAA tag must be 1 to 15 letters and digits (RFC 8659 §4.1), got `{tag}`"
        ));
    }
    let rest = rest.trim_start_matches(is_blank);
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        let (bytes, after) = unquote(quoted)?;
        if !after.trim_matches(is_blank).is_empty() {
            return Err(format!(
                "CAA value has text after its closing quote: `{}`",
                after.escape_debug()
            ));
        }
        bytes
    } else {
        if rest.is_empty() {
            return Err("CAA value must be `flags tag value`: the value is missing".to_owned());
        }
        if let Some(c) = rest
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '\\')
        {
            return Err(format!(
                "an unquoted CAA value must be one word without {c:?}; quote it"
            ));
        }
        rest.as_bytes().to_vec()
    };
    if value.len() + tag.len() + 2 > MAX_RDATA {
        return Err("CAA value is too long for one record".to_owned());
    }
    Ok(RData::Caa {
        flags,
        tag: tag.to_ascii_lowercase(),
        value,
    })
}

/// Reads a quoted string up to its closing quote; returns its bytes and
/// what follows the quote.
fn unquote(s: &str) -> Result<(Vec<u8>, &str), String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok((out, &s[i + 1..])),
            b'\\' => {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let n = u32::from(d[0] - b'0') * 100
                        + u32::from(d[1] - b'0') * 10
                        + u32::from(d[2] - b'0');
                    let b = u8::try_from(n).map_err(|_| format!("escape `\\{n}` is over 255"))?;
                    out.push(b);
                    i += 4;
                } else if let Some(&c) = bytes.get(i + 1) {
                    out.push(c);
                    i += 2;
                } else {
                    break;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("CAA value has an opening quote but no closing quote".to_owned())
}

struct Set<'a> {
    /// Each TTL seen, with the first record that had it.
    ttls: BTreeMap<u32, &'a str>,
    rdata: BTreeMap<RData, &'a str>,
    duplicates: usize,
    /// The last record that duplicated another.
    duplicate: &'a str,
}

/// Attributes an error to a record, unless it came from configuration.
fn attribute(e: ApiError, uuid: &str) -> ApiError {
    if uuid == FROM_CONFIG {
        e
    } else {
        e.in_record(uuid)
    }
}

/// Groups records into RRsets, collapses duplicates, settles TTLs and checks
/// the rules that involve more than one record.
fn assemble<'a>(
    origin: &Name,
    records: Vec<(Rr, &'a str)>,
    strict: bool,
    errors: &mut Vec<ApiError>,
) -> (Vec<RrSet>, Vec<ApiError>) {
    let mut warnings = Vec::new();
    let mut sets: BTreeMap<(Name, RecordType), Set<'a>> = BTreeMap::new();
    for (rr, uuid) in records {
        let set = sets
            .entry((rr.owner, rr.data.record_type()))
            .or_insert_with(|| Set {
                ttls: BTreeMap::new(),
                rdata: BTreeMap::new(),
                duplicates: 0,
                duplicate: FROM_CONFIG,
            });
        set.ttls.entry(rr.ttl).or_insert(uuid);
        match set.rdata.entry(rr.data) {
            // The first record stands; later ones are the duplicates.
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(uuid);
            }
            std::collections::btree_map::Entry::Occupied(_) => {
                set.duplicates += 1;
                set.duplicate = uuid;
            }
        }
    }

    check_cnames(origin, &sets, errors);
    check_null_mx(origin, &sets, strict, errors, &mut warnings);
    check_targets(origin, &sets, strict, errors, &mut warnings);

    let rrsets = sets
        .into_iter()
        .map(|((owner, rtype), set)| {
            let ttl = set.ttls.keys().next().copied().unwrap_or(0);
            let shown = owner.relative_to(origin);
            if set.ttls.len() > 1 {
                let (_, highest) = set.ttls.iter().next_back().unwrap_or((&0, &FROM_CONFIG));
                let all: Vec<u32> = set.ttls.keys().copied().collect();
                let e = ApiError::new(
                    "ttl_mismatch",
                    Some("ttl"),
                    format!(
                        "{shown} {}: records have TTLs {all:?}; the RRset is served with the \
                         lowest, {ttl} (RFC 2181 §5.2)",
                        rtype.as_str(),
                    ),
                );
                warnings.push(attribute(e, highest));
            }
            if set.duplicates > 0 {
                let uuid = set.duplicate;
                warnings.push(attribute(
                    ApiError::new(
                        "duplicate_record",
                        Some("value"),
                        format!(
                            "{shown} {}: {} exact duplicate(s) collapsed into one record",
                            rtype.as_str(),
                            set.duplicates
                        ),
                    ),
                    uuid,
                ));
            }
            RrSet {
                owner,
                rtype,
                ttl,
                rdata: set.rdata.into_keys().collect(),
            }
        })
        .collect();
    (rrsets, warnings)
}

/// RFC 7505 §3: a null MX (`0 .`) says the domain accepts no mail, so it
/// must be the only MX at its name. `named` loads a zone that breaks this
/// (measured), so it is a warning, and an error only with `strict`.
fn check_null_mx(
    origin: &Name,
    sets: &BTreeMap<(Name, RecordType), Set<'_>>,
    strict: bool,
    errors: &mut Vec<ApiError>,
    warnings: &mut Vec<ApiError>,
) {
    for ((owner, rtype), set) in sets {
        if *rtype != RecordType::Mx {
            continue;
        }
        for (data, uuid) in &set.rdata {
            let RData::Mx {
                preference,
                exchange,
            } = data
            else {
                continue;
            };
            if !exchange.is_root() {
                continue;
            }
            let shown = owner.relative_to(origin);
            if set.rdata.len() > 1 {
                let detail = format!(
                    "`{shown}` has a null MX (`.`, no mail accepted) and other MX records; \
                     a null MX must be the only one (RFC 7505 §3)"
                );
                if strict {
                    errors.push(attribute(ApiError::validation("value", detail), uuid));
                } else {
                    warnings.push(attribute(
                        ApiError::new("null_mx_mixed", Some("value"), detail),
                        uuid,
                    ));
                }
            } else if *preference != 0 {
                warnings.push(attribute(
                    ApiError::new(
                        "null_mx_priority",
                        Some("priority"),
                        format!("`{shown}`: a null MX should have priority 0 (RFC 7505 §3)"),
                    ),
                    uuid,
                ));
            }
        }
    }
}

/// RFC 1034 §3.6.2 and RFC 2181 §10.1: a CNAME is alone at its name, there
/// is at most one, and there is none at the apex (which always has SOA and
/// NS).
fn check_cnames(
    origin: &Name,
    sets: &BTreeMap<(Name, RecordType), Set<'_>>,
    errors: &mut Vec<ApiError>,
) {
    for ((owner, rtype), set) in sets {
        if *rtype != RecordType::Cname {
            continue;
        }
        let uuid = set.rdata.values().next().copied().unwrap_or_default();
        let shown = owner.relative_to(origin);
        if owner == origin {
            errors.push(
                ApiError::validation(
                    "name",
                    "a CNAME is not allowed at the zone apex, which always has SOA and NS records; \
                     named refuses the zone (CNAME and other data)",
                )
                .in_record(uuid),
            );
            continue;
        }
        if set.rdata.len() > 1 {
            for uuid in set.rdata.values().skip(1) {
                errors.push(
                    ApiError::validation(
                        "name",
                        format!(
                            "`{shown}` already has a CNAME; a name can have only one; named \
                             refuses the zone (multiple RRs of singleton type)"
                        ),
                    )
                    .in_record(uuid),
                );
            }
        }
        let others: Vec<&str> = RecordType::ALL
            .into_iter()
            .filter(|t| *t != RecordType::Cname && sets.contains_key(&(owner.clone(), *t)))
            .map(RecordType::as_str)
            .collect();
        if !others.is_empty() {
            errors.push(
                ApiError::validation(
                    "name",
                    format!(
                        "`{shown}` has {} records, so it cannot have a CNAME too (RFC 1034 \
                         §3.6.2); named refuses the zone (CNAME and other data)",
                        others.join(", ")
                    ),
                )
                .in_record(uuid),
            );
        }
    }
}

/// Names that exist in the zone: every owner and every name between an
/// owner and the apex (empty non-terminals, RFC 4592 §2.2.2).
fn existing_names(origin: &Name, sets: &BTreeMap<(Name, RecordType), Set<'_>>) -> HashSet<Name> {
    let mut nodes = HashSet::new();
    nodes.insert(origin.clone());
    for (owner, _) in sets.keys() {
        let mut n = owner.clone();
        while n != *origin && nodes.insert(n.clone()) {
            match n.parent() {
                Some(p) => n = p,
                None => break,
            }
        }
    }
    nodes
}

/// The delegation point at or above `name` (below the apex), if any.
fn cut_above(origin: &Name, name: &Name, cuts: &HashSet<&Name>) -> Option<Name> {
    if cuts.is_empty() {
        return None;
    }
    let mut n = name.clone();
    let mut found = None;
    while n.is_below(origin) {
        if cuts.contains(&n) {
            found = Some(n.clone());
        }
        n = n.parent()?;
    }
    found
}

/// What `named`'s integrity check (`check-integrity yes`, in-zone names
/// only, as `named-checkzone -i local`) finds at a target, in its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetProblem {
    /// `has no address records (A or AAAA)`
    NoAddress,
    /// `is a CNAME (illegal)`: RFC 2181 §10.3.
    Cname,
    /// `has no REQUIRED GLUE address records (A or AAAA)`: the target is
    /// at or below the delegation that names it (RFC 1034 §4.2.1).
    RequiredGlue,
    /// `has no SIBLING GLUE address records (A or AAAA)`: the target is
    /// below another delegation of this zone (`check-sibling yes`).
    SiblingGlue,
}

impl TargetProblem {
    fn code(self) -> &'static str {
        match self {
            Self::NoAddress => "no_address_records",
            Self::Cname => "target_is_cname",
            Self::RequiredGlue | Self::SiblingGlue => "missing_glue",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::NoAddress => "has no address records (A or AAAA) in the zone",
            Self::Cname => "is a CNAME (illegal); it must name the host itself (RFC 2181 §10.3)",
            Self::RequiredGlue => {
                "has no REQUIRED GLUE address records (A or AAAA) (RFC 1034 §4.2.1)"
            }
            Self::SiblingGlue => "has no SIBLING GLUE address records (A or AAAA)",
        }
    }
}

/// The zone's names and delegations, for looking targets up as `named`
/// does.
struct Lookup<'s, 'a> {
    origin: &'s Name,
    sets: &'s BTreeMap<(Name, RecordType), Set<'a>>,
    nodes: HashSet<Name>,
    cuts: HashSet<&'s Name>,
}

impl Lookup<'_, '_> {
    fn has(&self, n: &Name, t: RecordType) -> bool {
        self.sets.contains_key(&(n.clone(), t))
    }

    fn has_address(&self, n: &Name) -> bool {
        self.has(n, RecordType::A) || self.has(n, RecordType::Aaaa)
    }

    /// An authoritative in-zone name: what an address lookup finds there,
    /// wildcards included (RFC 4592 §3.3.1: a name that does not exist is
    /// answered by the wildcard at its closest encloser).
    fn address_at(&self, target: &Name) -> Option<TargetProblem> {
        let node = if self.nodes.contains(target) {
            target.clone()
        } else {
            let mut encloser = target.clone();
            while !self.nodes.contains(&encloser) {
                match encloser.parent() {
                    Some(p) => encloser = p,
                    None => break,
                }
            }
            encloser.child("*")
        };
        if self.has(&node, RecordType::Cname) {
            Some(TargetProblem::Cname)
        } else if self.has_address(&node) {
            None
        } else {
            Some(TargetProblem::NoAddress)
        }
    }

    /// What `named` reports for an NS, MX or SRV target of `owner`.
    fn check(&self, owner: &Name, rtype: RecordType, target: &Name) -> Option<TargetProblem> {
        if target.is_root() || !target.is_in(self.origin) {
            // `-i local`: out-of-zone names are not looked up.
            return None;
        }
        let target_cut = cut_above(self.origin, target, &self.cuts);
        let delegation = rtype == RecordType::Ns && owner != self.origin;
        match target_cut {
            Some(cut) if delegation && cut == *owner => {
                (!self.has_address(target)).then_some(TargetProblem::RequiredGlue)
            }
            Some(_) if delegation => {
                (!self.has_address(target)).then_some(TargetProblem::SiblingGlue)
            }
            // The child zone answers for it; named does not look further.
            Some(_) => None,
            None => self.address_at(target),
        }
    }
}

/// Targets of NS, MX and SRV records inside the zone, looked up the way
/// `named` does when it loads a primary zone (measured with 9.18, see the
/// README): a problem at an apex NS target makes `named` refuse the zone;
/// at a delegation, MX or SRV target it only warns (`check-mx warn`,
/// `check-mx-cname warn`, `check-srv-cname warn`, glue checks), so it is a
/// warning here, and an error only with `strict`. Data hidden below a
/// delegation is kept but reported, since no resolver will ever see it;
/// `named` does not check it.
fn check_targets(
    origin: &Name,
    sets: &BTreeMap<(Name, RecordType), Set<'_>>,
    strict: bool,
    errors: &mut Vec<ApiError>,
    warnings: &mut Vec<ApiError>,
) {
    let lookup = Lookup {
        origin,
        sets,
        nodes: existing_names(origin, sets),
        // Delegation points: NS RRsets below the apex.
        cuts: sets
            .keys()
            .filter(|(owner, t)| *t == RecordType::Ns && owner != origin)
            .map(|(owner, _)| owner)
            .collect(),
    };
    let ns_targets: HashSet<&Name> = sets
        .iter()
        .filter(|((_, t), _)| *t == RecordType::Ns)
        .flat_map(|(_, set)| set.rdata.keys().filter_map(RData::target))
        .collect();
    for ((owner, rtype), set) in sets {
        let shown = owner.relative_to(origin);
        let mut served = true;
        if let Some(cut) = cut_above(origin, owner, &lookup.cuts) {
            let hidden = match rtype {
                RecordType::Ns => cut != *owner,
                // Addresses below a cut are glue when an NS names them.
                RecordType::A | RecordType::Aaaa => !ns_targets.contains(owner),
                _ => true,
            };
            if hidden {
                served = false;
                let uuid = set.rdata.values().next().copied().unwrap_or_default();
                warnings.push(
                    ApiError::new(
                        "occluded",
                        Some("name"),
                        format!(
                            "{shown} {} is at or below the delegation `{}` and will not be \
                             served (RFC 1034 §4.2.1)",
                            rtype.as_str(),
                            cut.relative_to(origin)
                        ),
                    )
                    .in_record(uuid),
                );
            }
        }
        for (data, uuid) in &set.rdata {
            if let Some(t) = data.target().filter(|t| t.labels().count() == 1) {
                warnings.push(attribute(
                    ApiError::new(
                        "single_label_target",
                        Some("value"),
                        format!(
                            "{shown} {}: target `{}` is a top-level name; hostnames in values are \
                             absolute, so write `{}` if a name in this zone is meant",
                            rtype.as_str(),
                            t.to_absolute(),
                            origin.child(t.as_str()).to_absolute()
                        ),
                    ),
                    uuid,
                ));
            }
        }
        if !served || !matches!(rtype, RecordType::Ns | RecordType::Mx | RecordType::Srv) {
            continue;
        }
        for (data, uuid) in &set.rdata {
            let Some(target) = data.target() else {
                continue;
            };
            let Some(problem) = lookup.check(owner, *rtype, target) else {
                continue;
            };
            let from_config = *uuid == FROM_CONFIG;
            let field = if from_config { "nameservers" } else { "value" };
            let detail = format!(
                "{} target `{}` of `{shown}` {}",
                rtype.as_str(),
                target.to_absolute(),
                problem.words()
            );
            if *rtype == RecordType::Ns && owner == origin {
                errors.push(attribute(
                    ApiError::validation(field, format!("{detail}; named refuses the zone")),
                    uuid,
                ));
            } else if strict {
                errors.push(attribute(
                    ApiError::validation(
                        field,
                        format!("{detail}; refused by `[validate] strict` (named only warns)"),
                    ),
                    uuid,
                ));
            } else {
                warnings.push(attribute(
                    ApiError::new(
                        problem.code(),
                        Some(field),
                        format!("{detail}; named serves the zone and warns"),
                    ),
                    uuid,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::name::parse_domain;

    fn record(uuid: &str, rtype: &str, name: &str, value: &str, priority: Option<i64>) -> Record {
        Record {
            uuid: uuid.to_owned(),
            record_type: rtype.to_owned(),
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ttl: Some(3600),
            priority,
            created_at: None,
        }
    }

    fn zone(records: Vec<Record>) -> Zone {
        Zone {
            uuid: "zone-1".to_owned(),
            domain: "example.com".to_owned(),
            created_at: None,
            records,
        }
    }

    fn defaults(strict: bool) -> ZoneDefaults {
        ZoneDefaults {
            default_ttl: 3600,
            nameservers: vec![parse_domain("ns1.example.net").unwrap()],
            strict,
        }
    }

    /// The API's 400 rules: the field named, the record attributed.
    #[test]
    fn malformed_records_name_their_field() {
        let origin = parse_domain("example.com").unwrap();
        let cases = [
            (record("r", "A", "www", "192.0.2.300", None), "value"),
            (record("r", "AAAA", "www", "2001:db8::1/64", None), "value"),
            (record("r", "MX", "@", "mail.example.net", None), "priority"),
            (
                record("r", "MX", "@", "mail.example.net", Some(70_000)),
                "priority",
            ),
            (record("r", "MX", "@", "192.0.2.1", Some(10)), "value"),
            (record("r", "NS", "sub", "192.0.2.1.", None), "value"),
            (record("r", "CNAME", "www", "192.0.2.1", None), "value"),
            (record("r", "SRV", "_s._tcp", "5 5060", Some(1)), "value"),
            (
                record("r", "SRV", "_s._tcp", "5 99999 h.example", Some(1)),
                "value",
            ),
            (record("r", "CAA", "@", "0 issue \"open", None), "value"),
            (record("r", "SPF", "@", "v=spf1", None), "record_type"),
            (
                record("r", "A", "www.example.net.", "192.0.2.1", None),
                "name",
            ),
            (record("bad uuid", "A", "www", "192.0.2.1", None), "uuid"),
        ];
        for (rec, field) in cases {
            let errors = record_well_formed(&rec, &origin).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.field.as_deref() == Some(field)
                        && e.record.as_deref() == Some(&rec.uuid)),
                "{rec:?}: {errors:?}"
            );
        }
        let mut ttl = record("r", "A", "www", "192.0.2.1", None);
        ttl.ttl = Some(MAX_TTL + 1);
        let errors = record_well_formed(&ttl, &origin).unwrap_err();
        assert_eq!(errors[0].field.as_deref(), Some("ttl"));
    }

    /// check-names and NS at a wildcard are named's rules: well-formed for
    /// the API, refused by `validate` (the zone is held).
    #[test]
    fn named_rules_are_not_the_apis() {
        let cases = [
            (record("r", "A", "_x", "192.0.2.1", None), "name"),
            (record("r", "MX", "_x", "mail.example.net", Some(1)), "name"),
            (
                record("r", "MX", "@", "_mail.example.net", Some(1)),
                "value",
            ),
            (
                record("r", "SRV", "_s._tcp", "0 1 -h.example.net", Some(1)),
                "value",
            ),
            (record("r", "NS", "sub", "ns_1.example.net", None), "value"),
            (record("r", "NS", "*", "ns.example.net", None), "name"),
        ];
        for (rec, field) in cases {
            let z = zone(vec![rec]);
            assert_eq!(zone_well_formed(&z), Ok(()), "{z:?}");
            let errors = validate(&z, &defaults(false)).unwrap_err();
            assert!(
                errors
                    .iter()
                    .all(|e| e.field.as_deref() == Some(field) && e.record.as_deref() == Some("r")),
                "{errors:?}"
            );
            assert!(validate_unchecked(&z, &defaults(false)).is_ok());
        }
    }

    /// The API's own example zone is served, with named's warning; strict
    /// refuses it.
    #[test]
    fn api_example_is_served_with_a_warning() {
        let z = zone(vec![
            record("rec-001", "A", "@", "192.0.2.1", None),
            record("rec-002", "MX", "@", "mail.example.com", Some(10)),
        ]);
        let served = validate(&z, &defaults(false)).unwrap();
        assert_eq!(served.warnings.len(), 1, "{:?}", served.warnings);
        let w = &served.warnings[0];
        assert_eq!(w.record.as_deref(), Some("rec-002"));
        assert_eq!(w.field.as_deref(), Some("value"));
        assert!(w.detail.contains("has no address records"), "{w:?}");
        let refused = validate(&z, &defaults(true)).unwrap_err();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].record.as_deref(), Some("rec-002"));
    }

    /// An apex NS target inside the zone needs an address whether the API
    /// or the configuration put it there.
    #[test]
    fn apex_ns_without_address_is_refused() {
        let user = zone(vec![record("r", "NS", "@", "ns.example.com", None)]);
        let errors = validate(&user, &defaults(false)).unwrap_err();
        assert_eq!(errors[0].record.as_deref(), Some("r"));
        let mut platform = defaults(false);
        platform.nameservers = vec![parse_domain("ns1.example.com").unwrap()];
        let errors = validate(&zone(vec![]), &platform).unwrap_err();
        assert_eq!(errors[0].field.as_deref(), Some("nameservers"));
        assert_eq!(errors[0].record, None);
    }

    #[test]
    fn blanks_between_fields_are_layout() {
        let origin = parse_domain("example.com").unwrap();
        let srv = record(
            "r",
            "SRV",
            "_x._tcp",
            "  5   5222   xmpp.example.net  ",
            Some(5),
        );
        let rr = validate_record(&srv, &origin, 3600).unwrap();
        assert_eq!(
            rr.data,
            RData::Srv {
                priority: 5,
                weight: 5,
                port: 5222,
                target: parse_domain("xmpp.example.net").unwrap(),
            }
        );
        let mx = record("r", "MX", "@", "\tmail.example.net  ", Some(1));
        let rr = validate_record(&mx, &origin, 3600).unwrap();
        assert_eq!(
            rr.data.target(),
            Some(&parse_domain("mail.example.net").unwrap())
        );
        let caa = record("r", "CAA", "@", " 0  issue   \"ca.example\" ", None);
        let rr = validate_record(&caa, &origin, 3600).unwrap();
        assert_eq!(
            rr.data,
            RData::Caa {
                flags: 0,
                tag: "issue".to_owned(),
                value: b"ca.example".to_vec(),
            }
        );
        // A newline is not a blank: it stays part of the target and fails.
        let nl = record("r", "SRV", "_x._tcp", "5 5222 xmpp.example.net\n", Some(5));
        assert!(validate_record(&nl, &origin, 3600).is_err());
    }

    #[test]
    fn zone_rules() {
        let mut z = zone(vec![
            record("r", "A", "a", "192.0.2.1", None),
            record("r", "A", "b", "192.0.2.2", None),
        ]);
        let errors = zone_well_formed(&z).unwrap_err();
        assert_eq!(errors[0].field.as_deref(), Some("uuid"));
        z.records.clear();
        z.domain = "bad domain".to_owned();
        let errors = zone_well_formed(&z).unwrap_err();
        assert_eq!(errors[0].field.as_deref(), Some("domain"));
    }
}
