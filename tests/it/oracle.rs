//! `named` as the oracle for what is servable: every zone in [`CASES`] is
//! validated and rendered by the library, exactly as the agent would write
//! it, and loaded as a primary zone into one real private `named` with its
//! default options. The agent's verdict (served, or refused and so held)
//! must equal `named`'s, and every warning `named` logs for a zone must
//! have a matching agent warning. The agent's own checks before it installs
//! a file (`named-checkzone` with the default flags, and the batch
//! `named-checkconf -z` of [`conf::check_conf`]) must reach `named`'s
//! verdict too, with as many warnings as `named` logged; and a zone that
//! `[validate] strict` accepts must pass the strict flags.
//!
//! Zones the agent refuses are rendered through
//! [`validate::validate_unchecked`]: the same assembly with the servability
//! refusals left in, so `named` judges the file the agent would have
//! written. Each case also records what `named` 9.18 was measured to do
//! (`Expect`), so a change in BIND shows up here and the README's table
//! stays true. Loopback only; `named` is stopped by pid when the test ends.

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};
use support::named::PrivateNamed;
use zoneagent::bind::checkzone;
use zoneagent::bind::conf::{self, Stanza};
use zoneagent::config::Config;
use zoneagent::error::ApiError;
use zoneagent::exec;
use zoneagent::model::name::{Name, parse_domain};
use zoneagent::model::zone::decode_zone;
use zoneagent::render;
use zoneagent::validate::{self, ZoneDefaults};

/// The SOA serial of every rendered zone.
const SERIAL: u32 = 2_026_010_100;
/// How long `named` may take to load (or refuse) every zone.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// What `named` logs about a target, and the agent repeats in its warning.
const NAMED_PHRASES: [&str; 4] = [
    "has no address records",
    "is a CNAME (illegal)",
    "has no REQUIRED GLUE",
    "has no SIBLING GLUE",
];

/// What `named` 9.18 was measured to do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Loaded without a warning about the zone.
    Served,
    /// Loaded, with at least one warning.
    Warned,
    /// Not loaded.
    Refused,
}

/// One record: type, name, value, priority. `{d}` in a name or value is
/// the case's domain.
type Rec = (&'static str, &'static str, &'static str, Option<i64>);

struct Case {
    name: &'static str,
    expect: Expect,
    records: &'static [Rec],
    /// The platform's nameservers instead of the defaults (`{d}` allowed).
    nameservers: Option<&'static [&'static str]>,
}

const fn case(name: &'static str, expect: Expect, records: &'static [Rec]) -> Case {
    Case {
        name,
        expect,
        records,
        nameservers: None,
    }
}

use Expect::{Refused, Served, Warned};

const CASES: &[Case] = &[
    // Served cleanly.
    case("a-only", Served, &[("A", "@", "192.0.2.1", None)]),
    case(
        "mx-with-address",
        Served,
        &[
            ("MX", "@", "mail.{d}", Some(10)),
            ("A", "mail", "192.0.2.25", None),
        ],
    ),
    case(
        "mx-out-of-zone",
        Served,
        &[("MX", "@", "mail.example.net", Some(10))],
    ),
    case(
        "mx-uppercase-target",
        Served,
        &[
            ("MX", "@", "MAIL.{d}", Some(10)),
            ("A", "mail", "192.0.2.25", None),
        ],
    ),
    case(
        "srv-with-address",
        Served,
        &[
            ("SRV", "_sip._tcp", "5 5060 sip.{d}", Some(0)),
            ("AAAA", "sip", "2001:db8::5", None),
        ],
    ),
    case(
        "delegation-with-glue",
        Served,
        &[
            ("NS", "sub", "ns.sub.{d}", None),
            ("A", "ns.sub", "192.0.2.53", None),
        ],
    ),
    case(
        "delegation-out-of-zone",
        Served,
        &[("NS", "sub", "ns.example.net", None)],
    ),
    case(
        "mx-below-delegation",
        Served,
        &[
            ("MX", "@", "mail.sub.{d}", Some(10)),
            ("NS", "sub", "ns.example.net", None),
        ],
    ),
    case(
        "apex-ns-below-delegation",
        Served,
        &[
            ("NS", "@", "ns.sub.{d}", None),
            ("NS", "sub", "ns.example.net", None),
        ],
    ),
    case(
        "mx-wildcard-address",
        Served,
        &[
            ("MX", "@", "x.wild.{d}", Some(10)),
            ("A", "*.wild", "192.0.2.26", None),
        ],
    ),
    case("null-mx", Served, &[("MX", "@", ".", Some(0))]),
    // RFC 7505 §3 is broken, but named loads it without a word; the agent
    // warns.
    case(
        "null-mx-mixed",
        Served,
        &[
            ("MX", "@", ".", Some(0)),
            ("MX", "@", "mail.example.net", Some(10)),
        ],
    ),
    case(
        "srv-not-available",
        Served,
        &[("SRV", "_sip._tcp", "0 0 .", Some(0))],
    ),
    case(
        "underscore-where-named-allows",
        Served,
        &[
            ("TXT", "_dmarc", "v=DMARC1; p=none", None),
            ("SRV", "_xmpp._tcp", "5 5222 xmpp.example.net", Some(5)),
            ("NS", "_s", "ns.example.net", None),
            ("CNAME", "www", "_x.example.net", None),
        ],
    ),
    case("wildcard-a", Served, &[("A", "*", "192.0.2.1", None)]),
    case(
        "whitespace-srv",
        Served,
        &[(
            "SRV",
            "_xmpp._tcp",
            "  5   5222   xmpp.example.net  ",
            Some(5),
        )],
    ),
    case(
        "whitespace-mx",
        Served,
        &[("MX", "@", "  mail.example.net  ", Some(10))],
    ),
    case(
        "whitespace-caa",
        Served,
        &[("CAA", "@", "  0   issue   \"letsencrypt.org\"  ", None)],
    ),
    case(
        "ttl-mismatch",
        Served,
        &[
            ("A", "www", "192.0.2.1", None),
            ("A", "www", "192.0.2.2", None),
        ],
    ),
    case(
        "occluded-data",
        Served,
        &[
            ("NS", "sub", "ns.example.net", None),
            ("A", "a.sub", "192.0.2.1", None),
        ],
    ),
    case(
        "single-label-target",
        Served,
        &[("MX", "@", "mail", Some(10))],
    ),
    Case {
        name: "config-nameserver-in-zone",
        expect: Served,
        records: &[("A", "ns1", "192.0.2.53", None)],
        nameservers: Some(&["ns1.{d}", "ns2.example.net"]),
    },
    // Served with a warning.
    case(
        "api-spec-example",
        Warned,
        &[
            ("A", "@", "192.0.2.1", None),
            ("MX", "@", "mail.{d}", Some(10)),
        ],
    ),
    case(
        "mx-apex-without-address",
        Warned,
        &[("MX", "@", "@", Some(10))],
    ),
    case(
        "mx-target-text-only",
        Warned,
        &[
            ("MX", "@", "mail.{d}", Some(10)),
            ("TXT", "mail", "no address", None),
        ],
    ),
    case(
        "mx-target-nonexistent",
        Warned,
        &[("MX", "@", "nowhere.{d}", Some(10))],
    ),
    case(
        "mx-target-empty-non-terminal",
        Warned,
        &[
            ("MX", "@", "b.{d}", Some(10)),
            ("A", "a.b", "192.0.2.1", None),
        ],
    ),
    case(
        "mx-target-cname",
        Warned,
        &[
            ("MX", "@", "mail.{d}", Some(10)),
            ("CNAME", "mail", "mail.example.net", None),
        ],
    ),
    case(
        "mx-target-wildcard-cname",
        Warned,
        &[
            ("MX", "@", "x.wild.{d}", Some(10)),
            ("CNAME", "*.wild", "mail.example.net", None),
        ],
    ),
    case(
        "srv-target-without-address",
        Warned,
        &[("SRV", "_sip._tcp", "5 5060 sip.{d}", Some(0))],
    ),
    case(
        "srv-target-cname",
        Warned,
        &[
            ("SRV", "_sip._tcp", "5 5060 sip.{d}", Some(0)),
            ("CNAME", "sip", "sip.example.net", None),
        ],
    ),
    case(
        "delegation-without-glue",
        Warned,
        &[("NS", "sub", "ns.sub.{d}", None)],
    ),
    case(
        "delegation-target-without-address",
        Warned,
        &[
            ("NS", "sub", "ns.{d}", None),
            ("TXT", "ns", "no address", None),
        ],
    ),
    case(
        "delegation-target-cname",
        Warned,
        &[
            ("NS", "sub", "ns.{d}", None),
            ("CNAME", "ns", "ns.example.net", None),
        ],
    ),
    case(
        "delegation-sibling-without-glue",
        Warned,
        &[
            ("NS", "a", "ns.b.{d}", None),
            ("NS", "b", "ns.example.net", None),
        ],
    ),
    // Refused.
    case(
        "cname-and-other-data",
        Refused,
        &[
            ("CNAME", "www", "www.example.net", None),
            ("TXT", "www", "x", None),
        ],
    ),
    case(
        "cname-at-apex",
        Refused,
        &[("CNAME", "@", "example.net", None)],
    ),
    case(
        "cname-twice",
        Refused,
        &[
            ("CNAME", "www", "a.example.net", None),
            ("CNAME", "www", "b.example.net", None),
        ],
    ),
    case(
        "apex-ns-without-address",
        Refused,
        &[("NS", "@", "ns.{d}", None)],
    ),
    case(
        "apex-ns-cname",
        Refused,
        &[
            ("NS", "@", "ns.{d}", None),
            ("CNAME", "ns", "ns.example.net", None),
        ],
    ),
    Case {
        name: "config-nameserver-without-address",
        expect: Refused,
        records: &[("A", "@", "192.0.2.1", None)],
        nameservers: Some(&["ns1.{d}", "ns2.example.net"]),
    },
    Case {
        name: "config-nameserver-cname",
        expect: Refused,
        records: &[("CNAME", "ns1", "ns1.example.net", None)],
        nameservers: Some(&["ns1.{d}"]),
    },
    case(
        "a-owner-underscore",
        Refused,
        &[("A", "_x", "192.0.2.1", None)],
    ),
    case(
        "aaaa-owner-underscore",
        Refused,
        &[("AAAA", "_x", "2001:db8::1", None)],
    ),
    case(
        "mx-owner-underscore",
        Refused,
        &[("MX", "_x", "mail.example.net", Some(10))],
    ),
    case(
        "a-owner-leading-hyphen",
        Refused,
        &[("A", "-a", "192.0.2.1", None)],
    ),
    case(
        "wildcard-owner-underscore",
        Refused,
        &[("A", "*._x", "192.0.2.1", None)],
    ),
    case(
        "mx-target-underscore",
        Refused,
        &[("MX", "@", "_mail.example.net", Some(10))],
    ),
    case(
        "ns-target-underscore",
        Refused,
        &[("NS", "sub", "_ns.example.net", None)],
    ),
    case(
        "srv-target-underscore",
        Refused,
        &[("SRV", "_sip._tcp", "5 5060 _sip.example.net", Some(0))],
    ),
    case(
        "srv-target-underscore-in-zone",
        Refused,
        &[
            ("SRV", "_sip._tcp", "5 5060 _sip.{d}", Some(0)),
            ("TXT", "_sip", "x", None),
        ],
    ),
    case(
        "ns-at-wildcard",
        Refused,
        &[("NS", "*", "ns.example.net", None)],
    ),
];

/// A case after the agent has judged it.
struct Judged {
    domain: String,
    origin: Name,
    file: std::path::PathBuf,
    expect: Expect,
    /// `Ok(warnings)` or `Err(refusals)`, from [`validate::validate`].
    agent: Result<Vec<ApiError>, Vec<ApiError>>,
    /// Whether `[validate] strict` accepts the zone too.
    strict_ok: bool,
}

fn fill(text: &str, domain: &str) -> String {
    text.replace("{d}", domain)
}

fn zone_json(case: &Case, domain: &str) -> String {
    let records: Vec<serde_json::Value> = case
        .records
        .iter()
        .enumerate()
        .map(|(i, (rtype, name, value, priority))| {
            serde_json::json!({
                "uuid": format!("rec-{}", i + 1),
                "record_type": rtype,
                "name": fill(name, domain),
                "value": fill(value, domain),
                // Differing TTLs only where a case is about them.
                "ttl": if case.name == "ttl-mismatch" { 300 * (i + 1) } else { 3600 },
                "priority": priority,
            })
        })
        .collect();
    serde_json::json!({
        "uuid": format!("oracle-{}", case.name),
        "domain": domain,
        "created_at": "2026-01-01T00:00:00Z",
        "records": records,
    })
    .to_string()
}

/// The lines of named's log about `domain`: `zone DOMAIN/IN: …`.
fn zone_lines<'l>(log: &'l str, domain: &str) -> Vec<&'l str> {
    let tag = format!("zone {domain}/IN: ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

/// named's verdict on one zone from its log: `Some(true)` loaded,
/// `Some(false)` refused, `None` not decided yet.
fn named_loaded(log: &str, domain: &str) -> Option<bool> {
    let lines = zone_lines(log, domain);
    if lines
        .iter()
        .any(|l| l.contains(&format!("loaded serial {SERIAL}")))
    {
        Some(true)
    } else if lines.iter().any(|l| l.contains("not loaded due to errors")) {
        Some(false)
    } else {
        None
    }
}

/// The warnings named logged for a zone it loaded.
fn named_warnings<'l>(log: &'l str, domain: &str) -> Vec<&'l str> {
    zone_lines(log, domain)
        .into_iter()
        .filter(|l| l.contains(" warning: ") || l.contains(" error: "))
        .collect()
}

/// Why named refused a zone, in its words: what follows `failed: ` in
/// `loading from master file … failed: REASON`, or the phrase of an
/// integrity check.
fn named_reason<'l>(lines: &[&'l str]) -> Option<&'l str> {
    lines
        .iter()
        .find_map(|l| l.split_once(" failed: ").map(|(_, r)| r.trim()))
        .or_else(|| {
            lines
                .iter()
                .find_map(|l| NAMED_PHRASES.iter().copied().find(|p| l.contains(p)))
        })
}

/// Whether an agent warning says what a named warning line says: the same
/// target (named quotes it as `'name'`) and named's own phrase.
fn matches(named: &str, agent: &ApiError) -> bool {
    let quoted = named
        .split('\'')
        .nth(1)
        .map(|t| format!("`{}.`", t.trim_end_matches('.')));
    let phrase = NAMED_PHRASES.iter().find(|p| named.contains(*p));
    quoted.is_none_or(|q| agent.detail.contains(&q))
        && phrase.is_none_or(|p| agent.detail.contains(p))
}

#[test]
fn agent_and_named_agree_on_what_is_served() {
    assert!(CASES.len() >= 40, "the oracle covers at least 40 zones");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let zones_dir = tmp.path().join("zones");
    fs::create_dir_all(&zones_dir).expect("zones directory");
    let base = Config::default();

    let mut judged = Vec::with_capacity(CASES.len());
    let mut stanzas = Vec::with_capacity(CASES.len());
    for case in CASES {
        let domain = format!("{}.test", case.name);
        let zone = decode_zone(&zone_json(case, &domain))
            .unwrap_or_else(|e| panic!("{}: the case does not decode: {e}", case.name));
        validate::zone_well_formed(&zone)
            .unwrap_or_else(|e| panic!("{}: oracle cases must be well-formed: {e:?}", case.name));
        let defaults = ZoneDefaults {
            nameservers: case.nameservers.map_or_else(
                || base.zone.nameservers.clone(),
                |list| {
                    list.iter()
                        .map(|n| parse_domain(&fill(n, &domain)).expect("nameserver"))
                        .collect()
                },
            ),
            strict: false,
            ..base.zone.clone()
        };
        let strict_ok = validate::validate(
            &zone,
            &ZoneDefaults {
                strict: true,
                ..defaults.clone()
            },
        )
        .is_ok();
        let (agent, valid) = match validate::validate(&zone, &defaults) {
            Ok(v) => (Ok(v.warnings.clone()), v),
            Err(refused) => {
                let v = validate::validate_unchecked(&zone, &defaults).unwrap_or_else(|e| {
                    panic!("{}: well-formed but not renderable: {e:?}", case.name)
                });
                (Err(refused), v)
            }
        };
        let file = zones_dir.join(format!("{domain}.zone"));
        fs::write(&file, render::render(&valid, &base.render, SERIAL)).expect("write zone");
        let file = fs::canonicalize(&file).expect("zone file path");
        stanzas.push(Stanza {
            domain: domain.clone(),
            file: file.display().to_string(),
            extra: String::new(),
        });
        judged.push(Judged {
            origin: valid.origin.clone(),
            file,
            domain,
            expect: case.expect,
            agent,
            strict_ok,
        });
    }
    let include = tmp.path().join("zones.conf");
    fs::write(&include, conf::include_file(&stanzas, "")).expect("write include");

    let named = PrivateNamed::start(&tmp.path().join("named"), &include);
    let log_path = named.dir().join("named.log");
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let log = loop {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        if judged
            .iter()
            .all(|j| named_loaded(&log, &j.domain).is_some())
        {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "named did not load or refuse every zone within {LOAD_TIMEOUT:?}\n{}",
            named.log_tail(60)
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let mut failures = String::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for j in &judged {
        let loaded = named_loaded(&log, &j.domain) == Some(true);
        let warnings = named_warnings(&log, &j.domain);
        // The log is one witness; the served SOA is the other.
        let serving = named.soa_serial(&j.domain) == Some(SERIAL);
        if loaded != serving {
            let _ = writeln!(
                failures,
                "{}: named's log says loaded={loaded} but it serves={serving}",
                j.domain
            );
        }
        let named_kind = match (loaded, warnings.is_empty()) {
            (false, _) => Refused,
            (true, true) => Served,
            (true, false) => Warned,
        };
        *seen
            .entry(match named_kind {
                Served => "served",
                Warned => "warned",
                Refused => "refused",
            })
            .or_default() += 1;
        if named_kind != j.expect {
            let _ = writeln!(
                failures,
                "{}: named 9.18 was measured as {:?} but now is {named_kind:?}: {warnings:#?}",
                j.domain, j.expect
            );
        }
        match (&j.agent, loaded) {
            (Ok(agent), true) => {
                for w in &warnings {
                    if !agent.iter().any(|a| matches(w, a)) {
                        let _ = writeln!(
                            failures,
                            "{}: named warned `{w}` but the agent has no matching warning: \
                             {agent:#?}",
                            j.domain
                        );
                    }
                }
            }
            (Err(refused), false) => {
                let lines = zone_lines(&log, &j.domain);
                if let Some(reason) = named_reason(&lines)
                    && !refused.iter().any(|e| e.detail.contains(reason))
                {
                    let _ = writeln!(
                        failures,
                        "{}: named refused it for `{reason}`, which no agent refusal says: \
                         {refused:#?}",
                        j.domain
                    );
                }
                if refused.iter().any(|e| e.field.is_none()) {
                    let _ = writeln!(
                        failures,
                        "{}: a refusal does not name its field: {refused:#?}",
                        j.domain
                    );
                }
            }
            (Ok(_), false) => {
                let _ = writeln!(
                    failures,
                    "{}: the agent serves it, named refuses it:\n{}",
                    j.domain,
                    zone_lines(&log, &j.domain).join("\n")
                );
            }
            (Err(refused), true) => {
                let _ = writeln!(
                    failures,
                    "{}: the agent refuses it, named serves it: {refused:#?}",
                    j.domain
                );
            }
        }
    }
    tools_agree_with_named(&judged, &log, tmp.path(), &mut failures);
    assert!(failures.is_empty(), "agent and named disagree:\n{failures}");
    for kind in ["served", "warned", "refused"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 5,
            "the table needs zones of every kind; {kind}: {seen:?}"
        );
    }
}

/// The agent's own pre-install checks, `named-checkzone` with the default
/// flags and the batch `named-checkconf -z` over [`conf::check_conf`],
/// must give `named`'s verdict on every file, and their warnings must be
/// the ones `named` logged.
fn tools_agree_with_named(
    judged: &[Judged],
    log: &str,
    dir: &std::path::Path,
    failures: &mut String,
) {
    let stanzas: Vec<Stanza> = judged
        .iter()
        .map(|j| Stanza {
            domain: j.domain.clone(),
            file: j.file.display().to_string(),
            extra: String::new(),
        })
        .collect();
    let conf_path = dir.join("check.conf");
    fs::write(&conf_path, conf::check_conf(dir, &stanzas, false)).expect("write check conf");
    let output = exec::run(&checkzone::checkconf_argv(
        std::path::Path::new("named-checkconf"),
        &conf_path,
    ))
    .expect("named-checkconf runs (install bind9-utils)");
    let files: HashMap<Name, (String, u32)> = judged
        .iter()
        .map(|j| (j.origin.clone(), (j.file.display().to_string(), SERIAL)))
        .collect();
    let batch = checkzone::interpret_batch(&output, &files)
        .unwrap_or_else(|| panic!("named-checkconf failed without naming a zone: {output:?}"));
    for j in judged {
        let served = named_loaded(log, &j.domain) == Some(true);
        let named_count = if served {
            named_warnings(log, &j.domain).len()
        } else {
            0
        };
        let argv = checkzone::argv(
            std::path::Path::new("named-checkzone"),
            &j.origin,
            &j.file,
            false,
        );
        let one = exec::run(&argv).expect("named-checkzone runs (install bind9-utils)");
        let single = checkzone::interpret(&j.origin, SERIAL, one);
        let in_batch = !batch.problems.contains_key(&j.origin);
        let batch_warnings = batch.warnings.get(&j.origin).map_or(0, Vec::len);
        if single.is_ok() != served || in_batch != served {
            let _ = writeln!(
                failures,
                "{}: named served={served}, named-checkzone passed={}, named-checkconf \
                 passed={in_batch}: {single:?} {:?}",
                j.domain,
                single.is_ok(),
                batch.problems.get(&j.origin)
            );
        }
        if j.strict_ok {
            // What strict validation accepts, the strict flags pass.
            let argv = checkzone::argv(
                std::path::Path::new("named-checkzone"),
                &j.origin,
                &j.file,
                true,
            );
            let strict = exec::run(&argv).expect("named-checkzone runs");
            if let Err(e) = checkzone::interpret(&j.origin, SERIAL, strict) {
                let _ = writeln!(
                    failures,
                    "{}: strict validation accepts it, strict named-checkzone does not: {e}",
                    j.domain
                );
            }
        }
        if let Ok(w) = &single
            && (w.len() != named_count || batch_warnings != named_count)
        {
            let _ = writeln!(
                failures,
                "{}: named logged {named_count} warning(s), named-checkzone {} ({w:?}), \
                 named-checkconf {batch_warnings}",
                j.domain,
                w.len()
            );
        }
    }
}
