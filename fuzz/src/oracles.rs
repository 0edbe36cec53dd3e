//! The checks behind zoneagent's fuzz targets, one function per target.
//!
//! Each takes the raw input bytes, runs them through the code under test
//! and panics when a property fails; an input the code rightly refuses is
//! not a failure. The same file is compiled into the cargo-fuzz targets
//! (`fuzz/src/lib.rs`) and into the stable-Rust replay test
//! (`tests/it/fuzz_regressions.rs`, which includes it by path), so it uses
//! only `std`, `serde_json` and `zoneagent`.
//!
//! - [`event`]: bytes → UTF-8 → `decode_event`; never panics, and an event
//!   that decodes serializes and decodes back to itself.
//! - [`zone`]: bytes → UTF-8 → `decode_zone` → `validate` under
//!   `Config::default()`; validation is deterministic, and a valid zone
//!   renders deterministically to a file of the template's exact layout,
//!   and the zone written back out the API's way validates to the same
//!   RRsets.
//! - [`fold`]: bytes → UTF-8 → one event per line, batches separated by an
//!   empty line → `group_by_zone` and `fold` per zone, memory carried from
//!   batch to batch; deterministic, every event gets a fate, the zone
//!   after each batch validates and renders, and a batch folded again is
//!   all duplicates where it applied.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::OnceLock;

use zoneagent::config::Config;
use zoneagent::model::event::{Event, decode_event};
use zoneagent::model::record::RData;
use zoneagent::model::zone::{Record, Zone, decode_zone};
use zoneagent::render::{content_hash, render};
use zoneagent::state::{self, Fate, Memory, RECENT_IDS};
use zoneagent::validate::{ValidatedZone, validate};

/// The serial the zones are rendered with: not 0, so the SOA line of a
/// render differs from the one `content_hash` uses.
const SERIAL: u32 = 2_026_010_100;

/// Panics with the message clipped to a readable length.
macro_rules! fail {
    ($($arg:tt)*) => {
        panic!("{}", clip(&format!($($arg)*)))
    };
}

/// `assert!` with the message clipped to a readable length.
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            fail!($($arg)*);
        }
    };
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default)
}

/// `decode_event` never panics; an event that decodes serializes with
/// `serde_json` and that JSON decodes to the same event.
pub fn event(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = decode_event(text) else {
        return;
    };
    let json = serde_json::to_string(&event)
        .unwrap_or_else(|e| fail!("a decoded event does not serialize: {e}\n{event:?}"));
    match decode_event(&json) {
        Ok(again) => check!(
            again == event,
            "an event changed through serialize and decode:\n  before {event:?}\n  after  \
             {again:?}\n  json   {json}"
        ),
        Err(e) => fail!("a decoded event serializes to JSON that does not decode: {e}\n{json}"),
    }
}

/// Validation is deterministic; a valid zone renders to the same bytes
/// every time, in the exact layout, with a stable content hash, and
/// round-trips through the API's form.
pub fn zone(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(zone) = decode_zone(text) else {
        return;
    };
    let defaults = &config().zone;
    let first = validate(&zone, defaults);
    let second = validate(&zone, defaults);
    check!(
        first == second,
        "validation is not deterministic:\n  first  {first:?}\n  second {second:?}"
    );
    let Ok(validated) = first else {
        return;
    };
    check_rendering(&validated);
    check_revalidation(&validated);
}

/// At most the first 4000 characters of `s`, so that a failure on a
/// 64 KiB input prints a readable message (the input itself is saved).
fn clip(s: &str) -> String {
    const MAX: usize = 4000;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &s[..end], s.len()),
    }
}

/// Render, layout, determinism and content hash of a validated zone.
pub fn check_rendering(validated: &ValidatedZone) {
    let options = &config().render;
    let text = render(validated, options, SERIAL);
    let again = render(validated, options, SERIAL);
    check!(text == again, "rendering twice gave different bytes");
    if let Err(e) = check_layout(&text, validated, options.default_ttl) {
        fail!("rendered file breaks the layout: {e}\n---- rendered file ----\n{text}---- end ----");
    }
    // The serial is the only difference between renders, and only in the
    // SOA line.
    let unserialed = render(validated, options, 0);
    let (a, b): (Vec<&str>, Vec<&str>) = (text.lines().collect(), unserialed.lines().collect());
    check!(a.len() == b.len(), "the serial changed the number of lines");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if i == 4 {
            let x = x.replacen(&format!(" {SERIAL} "), " 0 ", 1);
            check!(x == *y, "SOA lines differ beyond the serial: {x:?} / {y:?}");
        } else {
            check!(
                x == y,
                "line {} depends on the serial: {x:?} / {y:?}",
                i + 1
            );
        }
    }
    let hash = content_hash(validated, options);
    check!(
        hash.len() == 64
            && hash
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "content hash is not 64 lower-case hex digits: {hash:?}"
    );
    check!(
        hash == content_hash(&validated.clone(), options),
        "content hash is not stable"
    );
}

/// The validated zone, written back the way the API writes records
/// (absolute names, the value forms validation accepts), validates again
/// to the same RRsets: what validation accepts, it accepts in its own
/// normal form, with the same meaning.
pub fn check_revalidation(validated: &ValidatedZone) {
    let defaults = &config().zone;
    let Some(exported) = export(validated) else {
        return;
    };
    match validate(&exported, defaults) {
        Ok(again) => {
            check!(
                again.origin == validated.origin,
                "origin changed on revalidation: {:?} -> {:?}",
                validated.origin,
                again.origin
            );
            check!(
                again.rrsets == validated.rrsets,
                "revalidating the zone's own normal form changed its RRsets:\n  before \
                 {:?}\n  after  {:?}\n  input  {exported:?}",
                validated.rrsets,
                again.rrsets
            );
        }
        Err(errors) => {
            fail!("the zone's own normal form does not validate: {errors:?}\n  input {exported:?}")
        }
    }
}

/// The zone as the API would send it back; `None` when a TXT value is not
/// UTF-8 (the API cannot carry it, and validation only makes TXT data
/// from strings).
fn export(zone: &ValidatedZone) -> Option<Zone> {
    let nameservers = &config().zone.nameservers;
    let mut records = Vec::new();
    for set in &zone.rrsets {
        for data in &set.rdata {
            // The platform's own apex NS records come from configuration.
            if set.owner == zone.origin && matches!(data, RData::Ns(n) if nameservers.contains(n)) {
                continue;
            }
            let (value, priority) = match data {
                RData::A(ip) => (ip.to_string(), None),
                RData::Aaaa(ip) => (ip.to_string(), None),
                RData::Cname(n) | RData::Ns(n) => (n.to_absolute(), None),
                RData::Mx {
                    preference,
                    exchange,
                } => (exchange.to_absolute(), Some(i64::from(*preference))),
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => (
                    format!("{weight} {port} {}", target.to_absolute()),
                    Some(i64::from(*priority)),
                ),
                RData::Txt(bytes) => (String::from_utf8(bytes.clone()).ok()?, None),
                RData::Caa { flags, tag, value } => {
                    let mut v = format!("{flags} {tag} \"");
                    for &b in value {
                        match b {
                            b'"' | b'\\' => {
                                v.push('\\');
                                v.push(char::from(b));
                            }
                            0x20..=0x7e => v.push(char::from(b)),
                            _ => {
                                let _ = write!(v, "\\{b:03}");
                            }
                        }
                    }
                    v.push('"');
                    (v, None)
                }
            };
            records.push(Record {
                uuid: format!("r{}", records.len()),
                record_type: set.rtype.as_str().to_owned(),
                name: if set.owner == zone.origin {
                    "@".to_owned()
                } else {
                    set.owner.to_absolute()
                },
                value: Some(value),
                ttl: Some(i64::from(set.ttl)),
                priority,
                created_at: None,
            });
        }
    }
    Some(Zone {
        uuid: zone.uuid.clone(),
        domain: zone.origin.as_str().to_owned(),
        created_at: None,
        records,
    })
}

/// Folds batches of events, one per line, batches separated by an empty
/// line, carrying each zone's memory from batch to batch as the daemon
/// does.
pub fn fold(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut memories: BTreeMap<String, Memory> = BTreeMap::new();
    for batch in text.split("\n\n") {
        let events: Vec<Event> = batch
            .lines()
            .filter_map(|line| decode_event(line).ok())
            .collect();
        let refs: Vec<&Event> = events.iter().collect();
        let groups = state::group_by_zone(&refs);
        let grouped: usize = groups.values().map(Vec::len).sum();
        let zonal = refs.iter().filter(|e| e.zone_uuid().is_some()).count();
        check!(grouped == zonal, "group_by_zone lost or duplicated events");
        for (uuid, indices) in groups {
            let mut sorted = indices.clone();
            sorted.sort_unstable();
            sorted.dedup();
            check!(sorted.len() == indices.len(), "an event is grouped twice");
            let batch: Vec<&Event> = indices.iter().map(|i| refs[*i]).collect();
            check!(
                batch.iter().all(|e| e.zone_uuid() == Some(uuid.as_str())),
                "group_by_zone put an event under another zone"
            );
            let memory = memories.get(&uuid).cloned().unwrap_or_default();
            let next = fold_zone(&uuid, &memory, &batch);
            memories.insert(uuid, next);
        }
    }
}

/// Folds one zone's batch and checks the result; returns the new memory.
fn fold_zone(uuid: &str, memory: &Memory, batch: &[&Event]) -> Memory {
    let defaults = &config().zone;
    let (fates, folded) = state::fold(memory, batch);
    let (fates2, folded2) = state::fold(memory, batch);
    check!(
        fates == fates2 && folded == folded2,
        "folding is not deterministic"
    );
    check!(fates.len() == batch.len(), "not every event got a fate");
    let applied: Vec<&Event> = batch
        .iter()
        .zip(&fates)
        .filter(|(_, f)| **f == Fate::Applied)
        .map(|(e, _)| *e)
        .collect();
    check!(
        folded.touched != applied.is_empty(),
        "touched is {} with {} events applied",
        folded.touched,
        applied.len()
    );
    for (event, fate) in batch.iter().zip(&fates) {
        if let Fate::Failed(errors) = fate {
            check!(
                !errors.is_empty(),
                "event {} failed with no error",
                event.id
            );
        }
    }
    check!(
        folded.recent_ids.len() <= RECENT_IDS,
        "{} recent ids kept, at most {RECENT_IDS} allowed",
        folded.recent_ids.len()
    );
    let unique: HashSet<&String> = folded.recent_ids.iter().collect();
    check!(
        unique.len() == folded.recent_ids.len(),
        "an id is remembered twice: {:?}",
        folded.recent_ids
    );
    if let Some(last) = memory.last_seq {
        check!(
            folded.last_seq.is_some_and(|s| s >= last),
            "last_seq went back from {last} to {:?}",
            folded.last_seq
        );
    }
    for event in &applied {
        if let Some(seq) = event.seq {
            check!(
                folded.last_seq.is_some_and(|s| s >= seq),
                "applied seq {seq} but last_seq is {:?}",
                folded.last_seq
            );
        }
    }
    if let Some(zone) = &folded.zone {
        check!(
            zone.uuid == uuid,
            "zone {uuid}'s fold produced zone {}",
            zone.uuid
        );
        // Every event is well-formed once applied, so the desired zone is
        // too; whether named would serve it is the deploy step's question.
        if let Err(errors) = zoneagent::validate::zone_well_formed(zone) {
            fail!("a folded zone is not well-formed: {errors:?}\n{zone:?}");
        }
        if let Ok(validated) = validate(zone, defaults) {
            check_rendering(&validated);
        }
    }
    let next = Memory {
        zone: folded.zone,
        last_seq: folded.last_seq,
        recent_ids: folded.recent_ids,
    };
    // The same batch again: whatever applied is now a duplicate, and (ids
    // permitting) nothing that applied applies twice.
    if memory.recent_ids.len() + applied.len() <= RECENT_IDS {
        let (again, _) = state::fold(&next, batch);
        for ((event, first), second) in batch.iter().zip(&fates).zip(&again) {
            if *first == Fate::Applied {
                check!(
                    *second == Fate::Duplicate,
                    "event {} applied and then, folded again, was {second:?}",
                    event.id
                );
            }
        }
    }
    next
}

/// Checks `text`, rendered from `zone` with `$TTL default_ttl`: printable
/// ASCII, tab and newline only; two comment lines, `$ORIGIN`, `$TTL`, the
/// SOA, then one `owner<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata` line per record,
/// the rdata the number of tokens its type calls for.
pub fn check_layout(text: &str, zone: &ValidatedZone, default_ttl: u32) -> Result<(), String> {
    if let Some(b) = text
        .bytes()
        .find(|b| !matches!(b, b'\t' | b'\n' | 0x20..=0x7e))
    {
        return Err(format!(
            "byte {b:#04x} outside printable ASCII, tab and newline"
        ));
    }
    let body = text
        .strip_suffix('\n')
        .ok_or("the file does not end with a newline")?;
    let lines: Vec<&str> = body.split('\n').collect();
    let want = 5 + zone.record_count();
    if lines.len() != want {
        return Err(format!(
            "{} lines, expected 2 comments, $ORIGIN, $TTL, SOA and {} records",
            lines.len(),
            zone.record_count()
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        let wrong = |why: &str| Err(format!("line {}: {why}: {line:?}", i + 1));
        if line.starts_with('$') && i != 2 && i != 3 {
            return wrong("a directive");
        }
        match i {
            0 | 1 if !line.starts_with(';') => return wrong("expected a comment"),
            2 if *line != format!("$ORIGIN {}", zone.origin.to_absolute()) => {
                return wrong("expected $ORIGIN");
            }
            3 if *line != format!("$TTL {default_ttl}") => return wrong("expected $TTL"),
            0..=3 => {}
            _ => {
                if let Err(e) = record_line(line, i == 4) {
                    return wrong(&e);
                }
            }
        }
    }
    Ok(())
}

/// `owner<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata`.
fn record_line(line: &str, soa: bool) -> Result<(), String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [owner, ttl, class, rtype, rdata] = cols.as_slice() else {
        return Err(format!("{} tab-separated columns, expected 5", cols.len()));
    };
    let owner_ok = *owner == "@"
        || (!owner.is_empty()
            && owner.split('.').all(|l| {
                !l.is_empty()
                    && (l == "*"
                        || l.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                        }))
            }));
    if !owner_ok {
        return Err("the owner is not `@` or a relative name".to_owned());
    }
    if ttl.is_empty() || !ttl.bytes().all(|b| b.is_ascii_digit()) || ttl.parse::<u32>().is_err() {
        return Err("the TTL is not a number".to_owned());
    }
    if *class != "IN" {
        return Err("the class is not IN".to_owned());
    }
    let tokens = tokens(rdata)?;
    let quoted = tokens.iter().filter(|t| t.starts_with('"')).count();
    let n = tokens.len();
    let ok = match *rtype {
        "SOA" => soa && n == 7 && quoted == 0,
        "A" | "AAAA" | "CNAME" | "NS" => n == 1 && quoted == 0,
        "MX" => n == 2 && quoted == 0,
        "SRV" => n == 4 && quoted == 0,
        "TXT" => n >= 1 && quoted == n,
        "CAA" => n == 3 && quoted == 1 && tokens[2].starts_with('"'),
        _ => return Err(format!("unknown type {rtype}")),
    };
    if !ok || (soa != (*rtype == "SOA")) {
        return Err(format!("{n} rdata tokens ({quoted} quoted) for {rtype}"));
    }
    Ok(())
}

/// Splits rdata on single spaces into bare words (letters, digits, `.`,
/// `:`, `-`, `_`) and quoted strings whose escapes are all `\"`, `\\` or
/// `\DDD` with DDD at most 255.
fn tokens(rdata: &str) -> Result<Vec<&str>, String> {
    let b = rdata.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("an unterminated quoted string".to_owned()),
                    Some(b'"') => break,
                    Some(b'\\') => match b.get(i + 1) {
                        Some(b'"' | b'\\') => i += 2,
                        Some(b'0'..=b'2')
                            if b.get(i + 2..i + 4)
                                .is_some_and(|d| d.iter().all(u8::is_ascii_digit)) =>
                        {
                            let n: u32 = rdata[i + 1..i + 4].parse().unwrap_or(999);
                            if n > 255 {
                                return Err(format!("escape \\{n}"));
                            }
                            i += 4;
                        }
                        _ => return Err("a backslash escape other than \\\" \\\\ \\DDD".to_owned()),
                    },
                    Some(_) => i += 1,
                }
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                if !(b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b':' | b'-' | b'_')) {
                    return Err(format!("{:?} outside quotes", char::from(b[i])));
                }
                i += 1;
            }
        }
        out.push(&rdata[start..i]);
        match b.get(i) {
            None => {}
            Some(b' ') if i + 1 < b.len() => i += 1,
            Some(_) => return Err("tokens not separated by one space".to_owned()),
        }
    }
    if out.is_empty() {
        return Err("empty rdata".to_owned());
    }
    Ok(out)
}
