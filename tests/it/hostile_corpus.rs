//! The hostile event corpus, judged without BIND, a spool or a daemon.
//!
//! `testdata/events/hostile/` holds one event per `NNN-name.json` file
//! (written by `generate.py` there) and `MANIFEST.tsv` saying what must
//! become of each. This test takes every row, decodes the bytes the way the
//! dispatcher does (`std::str::from_utf8`, then
//! [`zoneagent::model::event::decode_event`]), folds the event with
//! [`zoneagent::state::fold`] into the memory of the context the README
//! describes (built by folding `context/*.json`), and hands the result to
//! the real [`zoneagent::decide::decide`], as the deployer does; `sync`
//! goes through the real [`zoneagent::state::sync_changes`].
//!
//! `failed` rows are malformed events (they land in `failed/`); `held`
//! rows are well-formed events applied to the desired state whose zone
//! `named` would refuse, so the zone is held and its reasons name the
//! field. For every `applied` row it also checks that the event took
//! effect and that each resulting zone renders to text in which no line
//! starts with `$` but `$ORIGIN` and `$TTL`, and every record line is
//! `owner<TAB>ttl<TAB>IN<TAB>type<TAB>rdata` with nothing outside quotes
//! that a zone-file parser would take as a comment, a continuation or a
//! second record.
//!
//! Rows whose note starts with `BUG:` state the correct behaviour the code
//! does not have yet: they are printed as known failures and do not fail
//! the test. Set `HOSTILE_CORPUS_VERBOSE=1` to print every row's outcome,
//! and `HOSTILE_CORPUS_DUMP=DIR` to write the rendered zones of `applied`
//! rows into DIR as `<row>.<origin>.zone` (for a manual `named-checkzone`).
//! Known failures are printed to stderr: see them with `-- --nocapture`.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use support::hostile::{corpus_dir, manifest, names_field};
use zoneagent::config::Config;
use zoneagent::decide::{self, Commit, Disk, Wanted, Zones};
use zoneagent::error::ApiError;
use zoneagent::model::event::{Body, Event, decode_event};
use zoneagent::model::zone::Zone;
use zoneagent::render;
use zoneagent::serial::Now;
use zoneagent::state::{self, Fate, Memory};
use zoneagent::validate::{self, MAX_TTL};

/// The serial the `applied` zones are rendered with.
const SERIAL: u32 = 2_026_010_100;
/// The corpus must stay at least this big.
const MIN_EVENTS: usize = 120;
const EXPECTATIONS: [&str; 5] = ["failed", "held", "applied", "replay", "duplicate"];
const RECORD_TYPES: [&str; 9] = ["SOA", "NS", "A", "AAAA", "CNAME", "MX", "SRV", "TXT", "CAA"];

/// Every zone file exists; none has a serial of its own.
struct Files;

impl Disk for Files {
    fn file_exists(&self, _: &str) -> bool {
        true
    }
    fn file_serial(&self, _: &str) -> Option<u32> {
        None
    }
}

/// The state every event is judged against: what the deployer would hold
/// after the context events.
#[derive(Clone)]
struct Context {
    config: Config,
    zones: Zones,
}

fn now() -> Now {
    Now {
        date: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        unix: 1_767_225_600,
    }
}

impl Context {
    /// Folds `context/*.json` one event per dispatcher pass.
    fn build() -> Context {
        let dir = corpus_dir().join("context");
        let mut names: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("read context/")
            .map(|e| e.expect("context entry").path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "context/ holds three events");
        let mut ctx = Context {
            config: Config::default(),
            zones: Zones::default(),
        };
        for path in names {
            let text = fs::read_to_string(&path).expect("read context event");
            let event = decode_event(&text).expect("context event decodes");
            let uuid = event
                .zone_uuid()
                .expect("context events are zone events")
                .to_owned();
            let (fates, folded) = state::fold(&ctx.memory(&uuid), &[&event]);
            assert_eq!(fates, [Fate::Applied], "{}", path.display());
            let commit = ctx.decide(state::wanted(&uuid, folded).into_iter().collect());
            assert!(commit.held.is_empty(), "{}", path.display());
        }
        // The context the README promises.
        let hostile = ctx.memory("hostile-zone");
        assert_eq!(hostile.last_seq, Some(100));
        assert_eq!(
            hostile
                .zone
                .as_ref()
                .map(|z| (z.domain.as_str(), z.records.len())),
            Some(("hostile.example", 4))
        );
        let gone = ctx.memory("gone-zone");
        assert_eq!((gone.zone.is_none(), gone.last_seq), (true, Some(50)));
        assert_eq!(gone.recent_ids.len(), 2);
        ctx
    }

    fn memory(&self, uuid: &str) -> Memory {
        self.zones.memory(uuid)
    }

    /// The real decision, with BIND taking every file; the zones keep it.
    fn decide(&mut self, changes: Vec<Wanted>) -> Commit {
        let hash = render::config_hash(&self.config.render, &self.config.zone);
        let settings = decide::Settings {
            zone: &self.config.zone,
            render: &self.config.render,
            serial: self.config.serial,
            config_hash: &hash,
            force: false,
            max_records: self.config.max_records,
        };
        self.zones
            .apply_unchecked(&Files, changes, &settings, &BTreeMap::new(), now())
    }

    /// What a decided batch means for the corpus: the desired zones it
    /// touched, or the reasons a zone is held.
    fn outcome(&self, changes: Vec<Wanted>) -> Actual {
        let uuids: Vec<String> = changes.iter().map(|c| c.uuid.clone()).collect();
        // Each event is judged against the context, not against the rows
        // before it.
        let commit = self.clone().decide(changes);
        let held: Vec<ApiError> = commit.held.iter().flat_map(|h| h.errors.clone()).collect();
        if !held.is_empty() {
            return Actual::Held(held);
        }
        Actual::Applied(
            uuids
                .iter()
                .filter_map(|u| commit.records.get(u)?.zone.clone())
                .collect(),
        )
    }
}

/// What became of one event.
#[derive(Debug)]
enum Actual {
    /// With the zones that exist afterwards among those it touched.
    Applied(Vec<Zone>),
    /// Applied, but a zone it touched is held, for these reasons.
    Held(Vec<ApiError>),
    Replay,
    Duplicate,
    Failed(Vec<ApiError>),
    Panicked(String),
}

impl Actual {
    fn name(&self) -> &'static str {
        match self {
            Actual::Applied(_) => "applied",
            Actual::Held(_) => "held",
            Actual::Replay => "replay",
            Actual::Duplicate => "duplicate",
            Actual::Failed(_) => "failed",
            Actual::Panicked(_) => "panicked",
        }
    }

    fn summary(&self) -> String {
        match self {
            Actual::Failed(errors) | Actual::Held(errors) => {
                let mut s = format!("{}:", self.name());
                for e in errors {
                    let detail: String = e.detail.chars().take(120).collect();
                    let _ = write!(
                        s,
                        " [{} field={} {}]",
                        e.error_code,
                        e.field.as_deref().unwrap_or("-"),
                        detail.escape_debug()
                    );
                }
                s
            }
            Actual::Panicked(m) => format!("panicked: {m}"),
            other => other.name().to_owned(),
        }
    }
}

/// Decodes like `daemon::dispatch::run_once`.
fn decode(bytes: &[u8]) -> Result<Event, ApiError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ApiError::new("parse_error", None, format!("not valid UTF-8: {e}")))
        .and_then(decode_event)
}

fn judge(ctx: &Context, bytes: &[u8]) -> (Actual, Option<Event>) {
    let event = match decode(bytes) {
        Ok(e) => e,
        Err(e) => return (Actual::Failed(vec![e]), None),
    };
    let actual = match &event.body {
        Body::Sync { zones } => judge_sync(ctx, &event, zones),
        _ => judge_zone_event(ctx, &event),
    };
    (actual, Some(event))
}

fn judge_zone_event(ctx: &Context, event: &Event) -> Actual {
    let uuid = event.zone_uuid().unwrap_or_default();
    let (fates, folded) = state::fold(&ctx.memory(uuid), &[event]);
    assert_eq!(fates.len(), 1, "one fate per event");
    match fates.into_iter().next() {
        Some(Fate::Replay) => Actual::Replay,
        Some(Fate::Duplicate) => Actual::Duplicate,
        Some(Fate::Failed(errors)) => Actual::Failed(errors),
        Some(Fate::Applied) | None => {
            ctx.outcome(state::wanted(uuid, folded).into_iter().collect())
        }
    }
}

/// Runs a sync the way `daemon::dispatch` does.
fn judge_sync(ctx: &Context, event: &Event, zones: &[Zone]) -> Actual {
    let sync = state::sync_changes(ctx.zones.records(), event, zones);
    if let Fate::Failed(errors) = state::sync_fate(&sync.malformed) {
        return Actual::Failed(errors);
    }
    ctx.outcome(sync.changes)
}

/// Checks that the event did what it says to the zone it touched.
fn check_effect(ctx: &Context, event: &Event, zones: &[Zone]) -> Vec<String> {
    let mut problems = Vec::new();
    let find = |uuid: &str| zones.iter().find(|z| z.uuid == uuid);
    match &event.body {
        Body::ZoneSnapshot { zone } => {
            if find(&zone.uuid) != Some(zone) {
                problems.push("the zone is not the snapshot".to_owned());
            }
        }
        Body::ZoneCreated { zone } => match find(&zone.uuid) {
            Some(z) if ctx.memory(&zone.uuid).zone.is_none() && !z.records.is_empty() => {
                problems.push("a created zone must start empty".to_owned());
            }
            Some(_) => {}
            None => problems.push("the zone was not created".to_owned()),
        },
        Body::ZoneDeleted { zone_uuid } => {
            if find(zone_uuid).is_some() {
                problems.push("the zone still exists".to_owned());
            }
        }
        Body::RecordCreated { zone_uuid, record } | Body::RecordUpdated { zone_uuid, record } => {
            match find(zone_uuid) {
                Some(z) if z.records.iter().any(|r| r == record) => {}
                _ => problems.push("the zone does not hold the record".to_owned()),
            }
        }
        Body::RecordDeleted {
            zone_uuid,
            record_uuid,
        } => {
            if let Some(z) = find(zone_uuid) {
                if z.records.iter().any(|r| r.uuid == *record_uuid) {
                    problems.push("the record still exists".to_owned());
                }
            } else if ctx.memory(zone_uuid).zone.is_some() {
                problems.push("the zone disappeared".to_owned());
            }
        }
        Body::Sync { zones: wanted } => {
            for w in wanted {
                if find(&w.uuid) != Some(w) {
                    problems.push(format!("zone {} is not as the sync says", w.uuid));
                }
            }
        }
    }
    problems
}

/// Validates and renders a zone, and checks that the text is safe.
fn check_rendered(ctx: &Context, zone: &Zone, dump: Option<(&Path, &str)>) -> Vec<String> {
    let valid = match validate::validate(zone, &ctx.config.zone) {
        Ok(v) => v,
        Err(e) => return vec![format!("applied zone {} is not servable: {e:?}", zone.uuid)],
    };
    let text = render::render(&valid, &ctx.config.render, SERIAL);
    if let Some((dir, row)) = dump {
        let path = dir.join(format!("{row}.{}.zone", valid.origin.as_str()));
        fs::write(&path, &text).expect("write dump");
    }
    check_zone_text(&text, valid.origin.as_str())
}

fn check_zone_text(text: &str, origin: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_graphic() || matches!(c, ' ' | '\t' | '\n')))
    {
        problems.push(format!("the text holds {c:?}"));
    }
    if !text.ends_with('\n') {
        problems.push("the text does not end with a newline".to_owned());
    }
    let mut directives = Vec::new();
    let mut soa = 0;
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('$') {
            match rest.split_once(' ') {
                Some(("ORIGIN", name)) if name == format!("{origin}.") && directives.is_empty() => {
                    directives.push("ORIGIN");
                }
                Some(("TTL", ttl))
                    if directives == ["ORIGIN"]
                        && ttl.parse::<u32>().is_ok_and(|t| i64::from(t) <= MAX_TTL) =>
                {
                    directives.push("TTL");
                }
                _ => problems.push(format!("line {at}: directive {line:?}")),
            }
            continue;
        }
        if directives != ["ORIGIN", "TTL"] {
            problems.push(format!("line {at}: record before $ORIGIN and $TTL"));
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 5 {
            problems.push(format!(
                "line {at}: {} tab-separated fields: {line:?}",
                cols.len()
            ));
            continue;
        }
        let (owner, ttl, class, rtype, rdata) = (cols[0], cols[1], cols[2], cols[3], cols[4]);
        let owner_ok = owner == "@"
            || (!owner.is_empty()
                && !owner.starts_with('.')
                && !owner.ends_with('.')
                && owner
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*')));
        if !owner_ok {
            problems.push(format!("line {at}: owner {owner:?}"));
        }
        if !ttl.parse::<u32>().is_ok_and(|t| i64::from(t) <= MAX_TTL) {
            problems.push(format!("line {at}: ttl {ttl:?}"));
        }
        if class != "IN" {
            problems.push(format!("line {at}: class {class:?}"));
        }
        if !RECORD_TYPES.contains(&rtype) {
            problems.push(format!("line {at}: type {rtype:?}"));
        }
        if rtype == "SOA" {
            soa += 1;
        }
        if let Err(e) = check_rdata(rdata) {
            problems.push(format!("line {at}: rdata {rdata:?}: {e}"));
        }
    }
    if soa != 1 {
        problems.push(format!("{soa} SOA records"));
    }
    problems
}

/// RDATA must be one line of tokens: outside quotes nothing that starts a
/// comment or a multi-line group, every quote closed, every backslash
/// escaping something.
fn check_rdata(rdata: &str) -> Result<(), String> {
    if rdata.is_empty() || rdata.starts_with(' ') || rdata.ends_with(' ') {
        return Err("empty or padded".to_owned());
    }
    let bytes = rdata.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let next = bytes.get(i + 1).ok_or("a trailing backslash")?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(i + 1..i + 4).ok_or("a short \\DDD")?;
                    if !digits.iter().all(u8::is_ascii_digit) {
                        return Err("a short \\DDD".to_owned());
                    }
                    i += 4;
                } else {
                    i += 2;
                }
                continue;
            }
            b'"' => quoted = !quoted,
            b';' | b'(' | b')' if !quoted => {
                return Err(format!("{:?} outside quotes", char::from(bytes[i])));
            }
            b'$' if !quoted => return Err("`$` outside quotes".to_owned()),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err("an unclosed quote".to_owned());
    }
    Ok(())
}

#[test]
fn hostile_corpus() {
    let dir = corpus_dir();
    let rows = manifest();
    let ctx = Context::build();
    let verbose = std::env::var_os("HOSTILE_CORPUS_VERBOSE").is_some();
    let dump = std::env::var_os("HOSTILE_CORPUS_DUMP").map(PathBuf::from);

    // The manifest and the directory name the same files.
    let on_disk: BTreeSet<String> = fs::read_dir(&dir)
        .expect("read corpus dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| {
            let b = n.as_bytes();
            b.len() > 9
                && b[..3].iter().all(u8::is_ascii_digit)
                && b[3] == b'-'
                && Path::new(n).extension().is_some_and(|e| e == "json")
        })
        .collect();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.file.clone()).collect();
    assert_eq!(
        listed.len(),
        rows.len(),
        "a file is listed twice in MANIFEST.tsv"
    );
    assert_eq!(
        on_disk, listed,
        "MANIFEST.tsv and the NNN-*.json files differ"
    );
    assert!(rows.len() >= MIN_EVENTS, "only {} events", rows.len());

    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let quiet = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    for row in &rows {
        assert!(
            EXPECTATIONS.contains(&row.expect.as_str()),
            "{}: expect {:?}",
            row.file,
            row.expect
        );
        assert!(
            matches!(row.expect.as_str(), "failed" | "held") || row.field == "-",
            "{}: only `failed` and `held` rows name a field",
            row.file
        );
        *counts.entry(row.expect.clone()).or_default() += 1;
        let bytes = fs::read(dir.join(&row.file)).expect("read event");
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let (actual, event) = judge(&ctx, &bytes);
            let mut problems = Vec::new();
            if let (Actual::Applied(zones), Some(event)) = (&actual, &event) {
                problems.extend(check_effect(&ctx, event, zones));
                for zone in zones {
                    let dump = dump
                        .as_deref()
                        .map(|d| (d, row.file.trim_end_matches(".json")));
                    problems.extend(check_rendered(&ctx, zone, dump));
                }
            }
            (actual, problems)
        }));
        let (actual, problems) = outcome.unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            (Actual::Panicked(msg), Vec::new())
        });
        let mut wrong = Vec::new();
        if actual.name() != row.expect {
            wrong.push(format!("expected {}, got {}", row.expect, actual.summary()));
        } else if let Actual::Failed(errors) | Actual::Held(errors) = &actual
            && !names_field(errors, &row.field)
        {
            wrong.push(format!(
                "expected field {}, got {}",
                row.field,
                actual.summary()
            ));
        }
        wrong.extend(problems);
        if verbose {
            eprintln!("{:<50} {}", row.file, actual.summary());
        }
        match (wrong.is_empty(), row.known_bug()) {
            (true, false) => {}
            (true, true) => fixed.push(row.file.clone()),
            (false, true) => known.push(format!(
                "{}: {}\n    note: {}",
                row.file,
                wrong.join("; "),
                row.note
            )),
            (false, false) => failures.push(format!("{}: {}", row.file, wrong.join("; "))),
        }
    }
    panic::set_hook(quiet);

    eprintln!(
        "hostile corpus: {} events ({})",
        rows.len(),
        counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !known.is_empty() {
        eprintln!(
            "{} known failures (BUG rows, not failing the test):",
            known.len()
        );
        for k in &known {
            eprintln!("  KNOWN BUG {k}");
        }
    }
    for f in &fixed {
        eprintln!("  BUG row now behaves as expected (drop its BUG: mark): {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n  {}",
        failures.len(),
        rows.len(),
        failures.join("\n  ")
    );
}

#[test]
fn field_matching() {
    let e = |field: Option<&str>, detail: &str| ApiError::new("parse_error", field, detail);
    assert!(names_field(&[e(Some("record.ttl"), "x")], "record.ttl"));
    assert!(!names_field(&[e(None, "x")], "record.ttl"));
    assert!(names_field(&[e(None, "x")], "-"));
    assert!(names_field(
        &[e(Some("record"), "missing field `name`")],
        "record.name"
    ));
    assert!(names_field(
        &[e(None, "missing field `zone_uuid`")],
        "zone_uuid"
    ));
    assert!(!names_field(
        &[e(None, "missing field `name`")],
        "record.name"
    ));
    assert!(names_field(
        &[e(None, "duplicate field `id` at line 1")],
        "id"
    ));
    assert!(!names_field(&[e(None, "invalid type: null")], "type"));
    assert!(names_field(
        &[e(Some("zone.records[4]"), "missing field `name`")],
        "zone.records[4].name"
    ));
}

#[test]
fn zone_text_checks_catch_injection() {
    let good = "; c\n$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\nx\t60\tIN\tTXT\t\"a;b\\\"(\"\n";
    assert_eq!(check_zone_text(good, "a.example"), Vec::<String>::new());
    for bad in [
        "$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\n$INCLUDE /etc/passwd\n",
        "$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\nx\t60\tIN\tTXT\t\"a\" ; b\n",
        "$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\nx y\t60\tIN\tA\t192.0.2.1\n",
        "$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\nx\t60\tIN\tTXT\t\"a\n",
        "$ORIGIN a.example.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\nx\t60\tIN\tA\t192.0.2.1\t(\n",
        "$ORIGIN evil.\n$TTL 60\n@\t60\tIN\tSOA\tns. h. 1 2 3 4 5\n",
    ] {
        assert!(!check_zone_text(bad, "a.example").is_empty(), "{bad:?}");
    }
}
