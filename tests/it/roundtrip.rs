//! Round trip through BIND: any zone that validation accepts renders to a
//! file that `named-compilezone` loads cleanly (no warnings, under the
//! strict flags of a primary zone) and that means exactly the RRsets the
//! validated zone holds, and those the generated input meant.
//!
//! A second, pure property checks that no string in a record, however
//! hostile, gets past validation and then breaks the file's layout.
//!
//! These tests need BIND's `named-compilezone` (Debian: bind9-utils) and
//! fail, never skip, without it. `PROPTEST_CASES` sets the number of cases
//! for both properties.

// The file-layout check is the fuzz targets' own, shared so the two
// cannot drift apart.
#[path = "roundtrip/oracle.rs"]
mod oracle;
use crate::fuzz_oracles as oracles;
#[path = "roundtrip/zones.rs"]
mod zones;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use zoneagent::error::ApiError;
use zoneagent::model::zone::{Record, Zone};
use zoneagent::render::{RenderOptions, SoaFields, render};
use zoneagent::validate::{ValidatedZone, ZoneDefaults, validate};

use oracle::{Bytes, Rd, Rr};
use zones::{Case, config_name};

/// Cases for the BIND round trip: each spawns `named-compilezone` (about
/// 10 ms), so the default keeps the test to a few seconds.
const ROUND_TRIP_CASES: u32 = 200;
/// Cases for the pure layout property.
const LAYOUT_CASES: u32 = 1000;

/// `PROPTEST_CASES` if set, else `default_cases`. Failures are kept in
/// `tests/it/roundtrip/proptest-regressions.txt` and replayed first.
fn config(default_cases: u32) -> Config {
    let from_env = std::env::var_os("PROPTEST_CASES").is_some();
    Config {
        cases: if from_env {
            Config::default().cases
        } else {
            default_cases
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/roundtrip/proptest-regressions.txt",
        ))),
        // Shrinking spawns BIND once per step; bound it.
        max_shrink_iters: 4096,
        max_global_rejects: 4096,
        ..Config::default()
    }
}

/// What a case came to.
enum Outcome {
    /// Validation refused the zone; nothing to render.
    Rejected(Vec<ApiError>),
    /// Rendered, loaded by BIND and compared: this many records.
    RoundTripped(usize),
}

/// Validates, renders, loads with BIND and compares both ways.
fn round_trip(case: &Case, dir: &Path) -> Result<Outcome, String> {
    let validated = match validate(&case.zone, &case.defaults) {
        Ok(v) => v,
        Err(errors) => return Ok(Outcome::Rejected(errors)),
    };
    let text = render(&validated, &case.options, case.serial);
    let file = dir.join("zone.db");
    std::fs::write(&file, &text).map_err(|e| format!("writing {}: {e}", file.display()))?;
    let context = |msg: String| format!("{msg}\n---- rendered file ----\n{text}---- end ----");

    let origin = validated.origin.as_str();
    let dump = oracle::compile(origin, case.serial, &file).map_err(context)?;
    let loaded = oracle::parse_dump(&dump).map_err(context)?;
    let expected = oracle::from_validated(&validated, &case.options, case.serial)?;
    let problems: Vec<String> = [
        oracle::diff(
            "BIND loaded something other than the validated zone",
            &expected,
            &loaded,
        ),
        oracle::diff(
            "BIND loaded something other than the input meant",
            &case.intended,
            &loaded,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(Outcome::RoundTripped(loaded.len()))
    } else {
        Err(context(problems.join("")))
    }
}

/// A short name for why a zone was refused, for the summary.
fn reason(errors: &[ApiError]) -> String {
    let e = &errors[0];
    let detail: String = e
        .detail
        .split_whitespace()
        .filter(|w| !w.contains('`'))
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}: {detail}", e.field.as_deref().unwrap_or("-"))
}

#[test]
fn validated_zones_load_in_bind_as_the_same_rrsets() {
    oracle::require_compilezone();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let accepted = RefCell::new(0_usize);
    let records = RefCell::new(0_usize);
    let rejected: RefCell<BTreeMap<String, usize>> = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(config(ROUND_TRIP_CASES));
    let result = runner.run(&zones::case(), |case| {
        match round_trip(&case, dir.path()).map_err(TestCaseError::fail)? {
            Outcome::RoundTripped(n) => {
                *accepted.borrow_mut() += 1;
                *records.borrow_mut() += n;
                Ok(())
            }
            Outcome::Rejected(errors) => {
                *rejected.borrow_mut().entry(reason(&errors)).or_default() += 1;
                Err(TestCaseError::reject("validation refused the zone"))
            }
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let accepted = accepted.into_inner();
    let rejected = rejected.into_inner();
    let refused: usize = rejected.values().sum();
    eprintln!(
        "round trip: {accepted} zones ({} records) loaded identically, {refused} refused by \
         validation, in {:.1?}",
        records.into_inner(),
        started.elapsed()
    );
    for (why, n) in &rejected {
        eprintln!("  refused {n:4}× {why}");
    }
    // The generator is built to be mostly valid; if validation starts
    // refusing most of it, this test is no longer testing much.
    assert!(
        refused <= accepted,
        "validation refused {refused} zones against {accepted} accepted: fix the generator"
    );
}

/// Renders one zone and expects it to round-trip.
fn assert_round_trips(case: &Case) {
    oracle::require_compilezone();
    let dir = tempfile::tempdir().expect("a temporary directory");
    match round_trip(case, dir.path()) {
        Ok(Outcome::RoundTripped(_)) => {}
        Ok(Outcome::Rejected(errors)) => panic!("validation refused the zone: {errors:#?}"),
        Err(e) => panic!("{e}"),
    }
}

/// A record of a fixed case: `(type, name, value, ttl, priority)`.
type FixedRecord<'a> = (&'a str, &'a str, &'a str, Option<i64>, Option<i64>);

/// A fixed case: `records` in zone `example.com`, and `intended` what they
/// mean, SOA and platform NS aside.
fn fixed_case(records: &[FixedRecord<'_>], intended: &[(&str, u32, &str, Rd)]) -> Case {
    let default_ttl = 3600;
    let defaults = ZoneDefaults {
        default_ttl,
        nameservers: vec![config_name("ns1.example.net")],
        // Matches the strict named-compilezone flags of oracle.rs.
        strict: true,
    };
    let options = RenderOptions {
        soa: SoaFields {
            mname: config_name("ns1.example.net"),
            rname: config_name("hostmaster.example.net"),
            refresh: 7200,
            retry: 3600,
            expire: 1_209_600,
            minimum: 300,
        },
        default_ttl,
    };
    let serial = 2_024_010_101;
    let mut want: std::collections::BTreeSet<Rr> = intended
        .iter()
        .map(|(owner, ttl, rtype, rdata)| Rr {
            owner: (*owner).to_owned(),
            ttl: *ttl,
            rtype: (*rtype).to_owned(),
            rdata: rdata.clone(),
        })
        .collect();
    want.insert(Rr {
        owner: "example.com.".to_owned(),
        ttl: default_ttl,
        rtype: "NS".to_owned(),
        rdata: Rd::Host("ns1.example.net.".to_owned()),
    });
    let origin = config_name("example.com");
    want.insert(oracle::soa(&origin, &options, serial));
    Case {
        zone: Zone {
            uuid: "fixed".to_owned(),
            domain: "example.com".to_owned(),
            created_at: None,
            records: records
                .iter()
                .enumerate()
                .map(|(i, (rtype, name, value, ttl, priority))| Record {
                    uuid: format!("r{i}"),
                    record_type: (*rtype).to_owned(),
                    name: (*name).to_owned(),
                    value: Some((*value).to_owned()),
                    ttl: *ttl,
                    priority: *priority,
                    created_at: None,
                })
                .collect(),
        },
        defaults,
        options,
        serial,
        intended: want,
    }
}

fn txt(s: &str) -> Rd {
    Rd::Txt(Bytes(s.as_bytes().to_vec()))
}

/// Text that would end the string, the line or the record, start a
/// comment, a directive or a multi-line group if written unescaped, placed
/// on and around the 255-octet character-string boundaries.
#[test]
fn nasty_txt_round_trips() {
    let directive = "\"; $INCLUDE /etc/passwd\n$ORIGIN evil.\r\n@ IN NS evil. (\0\u{7f}é😀\\";
    let mut at_boundary = "a".repeat(253);
    at_boundary.push_str("\\\"é\\\"");
    at_boundary.push_str(&"\\".repeat(260));
    at_boundary.push_str("\n;)");
    let backslashes = "\\".repeat(700);
    let quotes = "\"".repeat(511);
    let values = [
        "",
        " ",
        "\"",
        "\\",
        "\\\"",
        "\\065",
        "\u{2028}\u{85}\u{feff}\t",
        directive,
        &at_boundary,
        &backslashes,
        &quotes,
    ];
    let owners = ["@", "_nasty", "*.Wild", "TXT.example.com.", "_a._b"];
    let records: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| ("TXT", owners[i % owners.len()], *v, Some(60), None))
        .collect();
    let absolute = [
        "example.com.",
        "_nasty.example.com.",
        "*.wild.example.com.",
        "txt.example.com.",
        "_a._b.example.com.",
    ];
    let intended: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (absolute[i % absolute.len()], 60, "TXT", txt(v)))
        .collect();
    assert_round_trips(&fixed_case(&records, &intended));
}

/// CAA values quoted with every escape the API accepts, bare, empty and
/// longer than one character-string.
#[test]
fn nasty_caa_round_trips() {
    let long = format!("0 issue \"{}\"", "x;\\\"".repeat(100));
    let caa = |flags, tag: &str, value: &[u8]| Rd::Caa {
        flags,
        tag: tag.to_owned(),
        value: Bytes(value.to_vec()),
    };
    let records = [
        (
            "CAA",
            "@",
            r#"0 issue "letsencrypt.org; validationmethods=dns-01""#,
            None,
            None,
        ),
        (
            "CAA",
            "@",
            r#"128 ISSUEWILD "\000\255\"\\\n;(""#,
            None,
            None,
        ),
        (
            "CAA",
            "@",
            "0 iodef mailto:security@example.com",
            None,
            None,
        ),
        ("caa", "@", r#"0 tbs """#, None, Some(-5)),
        ("CAA", "_c", long.as_str(), Some(0), None),
        (
            "CAA",
            "_c",
            "  000   issue   \"é\"  ",
            Some(2_147_483_647),
            None,
        ),
    ];
    let apex = "example.com.";
    let intended = [
        (
            apex,
            3600,
            "CAA",
            caa(0, "issue", b"letsencrypt.org; validationmethods=dns-01"),
        ),
        (apex, 3600, "CAA", caa(128, "issuewild", b"\x00\xff\"\\n;(")),
        (
            apex,
            3600,
            "CAA",
            caa(0, "iodef", b"mailto:security@example.com"),
        ),
        (apex, 3600, "CAA", caa(0, "tbs", b"")),
        // One RRset, one TTL: the lowest (RFC 2181 §5.2).
        (
            "_c.example.com.",
            0,
            "CAA",
            caa(0, "issue", "x;\"".repeat(100).as_bytes()),
        ),
        ("_c.example.com.", 0, "CAA", caa(0, "issue", "é".as_bytes())),
    ];
    assert_round_trips(&fixed_case(&records, &intended));
}

/// A name that exists only through a wildcard is a host for MX and SRV
/// (RFC 4592 §3.3.1): validation and BIND's integrity checks agree.
#[test]
fn targets_answered_by_a_wildcard_round_trip() {
    let records = [
        ("A", "*.wild", "192.0.2.1", None, None),
        ("AAAA", "*.Wild", "2001:DB8::1", None, None),
        ("MX", "mx", "foo.wild.example.com", None, Some(10)),
        (
            "SRV",
            "_s._tcp",
            "2 3 bar.wild.example.com.",
            Some(5),
            Some(1),
        ),
    ];
    let intended = [
        (
            "*.wild.example.com.",
            3600,
            "A",
            Rd::A([192, 0, 2, 1].into()),
        ),
        (
            "*.wild.example.com.",
            3600,
            "AAAA",
            Rd::Aaaa("2001:db8::1".parse().expect("an IPv6 address")),
        ),
        (
            "mx.example.com.",
            3600,
            "MX",
            Rd::Mx {
                preference: 10,
                exchange: "foo.wild.example.com.".to_owned(),
            },
        ),
        (
            "_s._tcp.example.com.",
            5,
            "SRV",
            Rd::Srv {
                priority: 1,
                weight: 2,
                port: 3,
                target: "bar.wild.example.com.".to_owned(),
            },
        ),
    ];
    assert_round_trips(&fixed_case(&records, &intended));
}

/// Found by the property at fbcc318, where validation accepted it: an NS
/// record at a wildcard owner, which BIND refuses (`*.example.com: invalid
/// NS owner name (wildcard)`, RFC 4592 §4.2). Fixed in 78524d0.
#[test]
fn wildcard_ns_owner_is_refused() {
    let case = fixed_case(&[("NS", "*", "www", None, None)], &[]);
    if validate(&case.zone, &case.defaults).is_ok() {
        oracle::require_compilezone();
        let dir = tempfile::tempdir().expect("a temporary directory");
        panic!(
            "validation accepted a zone that BIND does not load cleanly: {}",
            round_trip(&case, dir.path()).err().unwrap_or_default()
        );
    }
}

// ---- Layout: hostile strings ----------------------------------------------

/// Strings that break zone files, whole or spliced into plausible input.
fn hostile() -> impl Strategy<Value = String> {
    let plausible = select(vec![
        "",
        "www",
        "_dmarc",
        "@",
        "*",
        "*.a",
        "a.b",
        "example.com",
        "x.example.com.",
        "1 2 ",
        "0 issue ",
        "0 issue \"",
        "10 ",
        "192.0.2.1",
        "::1",
        "mail.example.net",
        "xn--caf-dma",
    ]);
    let nasty = || vec(zones::nasty_char(), 0..8).prop_map(|c| c.into_iter().collect::<String>());
    prop_oneof![
        2 => any::<String>(),
        2 => vec(zones::nasty_char(), 0..40).prop_map(|c| c.into_iter().collect()),
        4 => (plausible, nasty(), any::<Index>(), nasty()).prop_map(|(p, n, at, tail)| {
            let mut at = at.index(p.len() + 1);
            while !p.is_char_boundary(at) {
                at -= 1;
            }
            format!("{}{n}{}{tail}", &p[..at], &p[at..])
        }),
        2 => zones::txt_value(),
    ]
}

/// A zone where every string may be hostile; the plausible choice keeps
/// enough of them valid.
fn hostile_zone() -> impl Strategy<Value = Zone> {
    // TXT and CAA carry arbitrary text, so most hostile values go there.
    let rtype = prop_oneof![
        6 => select(vec!["A", "AAAA", "CNAME", "MX", "NS", "SRV", "Srv"]).prop_map(str::to_owned),
        8 => select(vec!["TXT", "txt", "CAA"]).prop_map(str::to_owned),
        1 => hostile(),
    ];
    // Names UTS #46 maps to something valid: fullwidth letters, the
    // ideographic full stop, a title-case digraph, sharp s.
    let name = prop_oneof![
        3 => select(vec![
            "@", "www", "_x", "*", "a.example.com.", "ＷＷＷ", "a\u{3002}b", "ǅ", "straße", "café",
        ])
        .prop_map(str::to_owned),
        3 => hostile(),
    ];
    let record = (
        rtype,
        name,
        prop::option::weighted(0.95, hostile()),
        prop::option::of(any::<i64>().prop_map(|t| t.rem_euclid(1 << 32))),
        prop::option::of(0_i64..70_000),
    )
        .prop_map(|(record_type, name, value, ttl, priority)| Record {
            uuid: String::new(),
            record_type,
            name,
            value,
            ttl,
            priority,
            created_at: None,
        });
    let domain = prop_oneof![
        9 => Just("example.com".to_owned()),
        1 => hostile(),
    ];
    let uuid = prop_oneof![
        9 => Just("zone-1".to_owned()),
        1 => hostile(),
    ];
    (uuid, domain, vec(record, 1..6)).prop_map(|(uuid, domain, mut records)| {
        for (i, r) in records.iter_mut().enumerate() {
            r.uuid = format!("r{i}");
        }
        Zone {
            uuid,
            domain,
            created_at: None,
            records,
        }
    })
}

#[test]
fn no_accepted_string_breaks_the_file_layout() {
    let started = Instant::now();
    let defaults = ZoneDefaults {
        default_ttl: 3600,
        nameservers: vec![config_name("ns1.example.net")],
        // Matches the strict named-compilezone flags of oracle.rs.
        strict: true,
    };
    let options = RenderOptions {
        soa: SoaFields {
            mname: config_name("ns1.example.net"),
            rname: config_name("hostmaster.example.net"),
            refresh: 7200,
            retry: 3600,
            expire: 1_209_600,
            minimum: 300,
        },
        default_ttl: 3600,
    };
    let generated = RefCell::new(0_usize);
    let accepted = RefCell::new(0_usize);
    let mut runner = TestRunner::new(config(LAYOUT_CASES));
    let result = runner.run(&hostile_zone(), |zone| {
        *generated.borrow_mut() += zone.records.len();
        let Some(validated) = accepted_part(zone, &defaults) else {
            return Ok(());
        };
        // The platform's apex NS is not from the input.
        *accepted.borrow_mut() += validated.record_count() - defaults.nameservers.len();
        let text = render(&validated, &options, 1);
        oracles::check_layout(&text, &validated, defaults.default_ttl).map_err(|e| {
            TestCaseError::fail(format!("{e}\n---- rendered file ----\n{text}---- end ----"))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (generated, accepted) = (generated.into_inner(), accepted.into_inner());
    eprintln!(
        "layout: {} hostile zones, {accepted} of {generated} records accepted and rendered \
         (the rest refused), in {:.1?}",
        runner.config().cases,
        started.elapsed()
    );
    assert!(
        accepted * 20 >= generated,
        "only {accepted} of {generated} records were accepted: the generator tests little"
    );
}

/// Validates `zone`, dropping the records validation names until what is
/// left passes; `None` if the zone itself (domain, uuid) is refused. Every
/// accepted hostile string then reaches the renderer, rather than a whole
/// zone being refused for one bad record.
fn accepted_part(mut zone: Zone, defaults: &ZoneDefaults) -> Option<ValidatedZone> {
    loop {
        let errors = match validate(&zone, defaults) {
            Ok(v) => return Some(v),
            Err(errors) => errors,
        };
        let bad: HashSet<&str> = errors.iter().filter_map(|e| e.record.as_deref()).collect();
        let before = zone.records.len();
        zone.records.retain(|r| !bad.contains(r.uuid.as_str()));
        if zone.records.len() == before {
            return None;
        }
    }
}
