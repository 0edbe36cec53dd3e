//! Order independence, as a property: random event sequences over a few
//! zones, with conflicts that appear and are later resolved (a CNAME beside
//! an A record, an `_` owner that check-names refuses, an MX whose target
//! has no address yet), are folded and decided by the real pure pipeline
//! ([`zoneagent::state::fold_batch`], [`zoneagent::decide::decide`],
//! [`zoneagent::decide::Decision::settle`], [`zoneagent::decide::Zones`]),
//! once all at once and then cut into random batches with the zones'
//! events interleaved anew. The served result must not depend on the cut:
//! - no well-formed event ever fails;
//! - the desired zones end the same;
//! - a zone whose final desired state is servable serves exactly that
//!   (same content), and one whose final state is not is held.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use zoneagent::config::Config;
use zoneagent::decide::{self, Disk, Zones};
use zoneagent::model::event::{Event, decode_event};
use zoneagent::serial::Now;
use zoneagent::state::{self, Fate};
use zoneagent::validate;

const ZONES: [(&str, &str); 3] = [("z0", "a.test"), ("z1", "b.test"), ("z2", "c.test")];

/// The records the generator picks from: (uuid suffix, type, name, values).
const POOL: [(&str, &str, &str, &[&str]); 7] = [
    ("a-www", "A", "www", &["192.0.2.1", "192.0.2.2"]),
    ("c-www", "CNAME", "www", &["x.example.net", "y.example.net"]),
    ("mx", "MX", "@", &["mail", "mx2"]),
    ("a-mail", "A", "mail", &["192.0.2.25"]),
    ("txt", "TXT", "@", &["v=spf1 -all", "hello"]),
    ("a-bad", "A", "_bad", &["192.0.2.9"]),
    (
        "srv",
        "SRV",
        "_sip._tcp",
        &["5 5060 sip", "  5   5061  sip  "],
    ),
];

/// One step the generator may take; applied to the model only when it is
/// something the API itself could emit next.
#[derive(Debug, Clone)]
struct Step {
    zone: usize,
    /// 0: zone created/deleted; 1..: a record of the pool.
    what: usize,
    value: usize,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0..ZONES.len(), 0..=POOL.len() * 2, 0..2usize).prop_map(|(zone, what, value)| Step {
            zone,
            what,
            value,
        }),
        5..40,
    )
}

/// Turns steps into a sequence of events the API could have emitted, in
/// order, with unique ids and increasing seqs.
fn events(steps: &[Step]) -> Vec<Event> {
    let mut exists = [false; 3];
    let mut records: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); 3];
    let mut out = Vec::new();
    let mut seq = 0u64;
    for step in steps {
        let (uuid, domain) = ZONES[step.zone];
        seq += 1;
        let id = format!("e{seq}");
        let json = if step.what == 0 || !exists[step.zone] {
            if exists[step.zone] {
                exists[step.zone] = false;
                records[step.zone].clear();
                format!(r#"{{"id":"{id}","seq":{seq},"type":"zone.deleted","zone_uuid":"{uuid}"}}"#)
            } else {
                exists[step.zone] = true;
                format!(
                    r#"{{"id":"{id}","seq":{seq},"type":"zone.created","zone":{{"uuid":"{uuid}","domain":"{domain}"}}}}"#
                )
            }
        } else {
            let slot = (step.what - 1) % POOL.len();
            let (suffix, rtype, name, values) = POOL[slot];
            let rec = format!("{uuid}-{suffix}");
            let present = records[step.zone].get(&slot).copied();
            match present {
                Some(_) if step.what > POOL.len() => {
                    records[step.zone].remove(&slot);
                    format!(
                        r#"{{"id":"{id}","seq":{seq},"type":"record.deleted","zone_uuid":"{uuid}","record_uuid":"{rec}"}}"#
                    )
                }
                _ => {
                    let value = values[step.value % values.len()];
                    let kind = if present.is_some() {
                        "record.updated"
                    } else {
                        "record.created"
                    };
                    records[step.zone].insert(slot, step.value);
                    let priority = if matches!(rtype, "MX" | "SRV") {
                        "10"
                    } else {
                        "null"
                    };
                    let value = serde_json::to_string(value).expect("json");
                    format!(
                        r#"{{"id":"{id}","seq":{seq},"type":"{kind}","zone_uuid":"{uuid}","record":{{"uuid":"{rec}","record_type":"{rtype}","name":"{name}","value":{value},"ttl":300,"priority":{priority}}}}}"#
                    )
                }
            }
        };
        out.push(decode_event(&json).expect("generated events decode"));
    }
    out
}

struct Files;

impl Disk for Files {
    fn file_exists(&self, _: &str) -> bool {
        true
    }
    fn file_serial(&self, _: &str) -> Option<u32> {
        None
    }
}

fn now() -> Now {
    Now {
        date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
        unix: 1_796_083_200,
    }
}

/// Runs the batches through the real pipeline, BIND taking every file the
/// decision writes; returns the zones and every fate.
fn run(config: &Config, batches: &[Vec<&Event>]) -> (Zones, Vec<Fate>) {
    let mut zones = Zones::default();
    let mut fates = Vec::new();
    let hash = zoneagent::render::config_hash(&config.render, &config.zone);
    let settings = decide::Settings {
        zone: &config.zone,
        render: &config.render,
        serial: config.serial,
        config_hash: &hash,
        force: false,
        max_records: config.max_records,
    };
    for batch in batches {
        let folded = state::fold_batch(batch, |uuid| zones.memory(uuid));
        fates.extend(folded.fates.into_iter().flatten());
        zones.apply_unchecked(&Files, folded.changes, &settings, &BTreeMap::new(), now());
    }
    (zones, fates)
}

/// Reorders events so that each zone's keep their order but the zones
/// interleave as `picks` says.
fn interleave<'a>(events: &'a [Event], picks: &[usize]) -> Vec<&'a Event> {
    let mut queues: Vec<std::collections::VecDeque<&Event>> =
        vec![std::collections::VecDeque::new(); 3];
    for e in events {
        let z = ZONES
            .iter()
            .position(|(u, _)| Some(*u) == e.zone_uuid())
            .expect("a generated zone");
        queues[z].push_back(e);
    }
    let mut out = Vec::with_capacity(events.len());
    let mut picks = picks.iter().cycle();
    while out.len() < events.len() {
        let z = picks.next().copied().unwrap_or(0) % 3;
        if let Some(e) = queues[z].pop_front() {
            out.push(e);
        } else if let Some(q) = queues.iter_mut().find(|q| !q.is_empty()) {
            out.extend(q.pop_front());
        }
    }
    out
}

/// Cuts `events` into batches at the given points.
fn cut<'a>(events: &[&'a Event], cuts: &BTreeSet<usize>) -> Vec<Vec<&'a Event>> {
    let mut out = vec![Vec::new()];
    for (i, e) in events.iter().enumerate() {
        if cuts.contains(&i) && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
        }
        out.last_mut().expect("a batch").push(*e);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn served_result_does_not_depend_on_batching(
        steps in steps(),
        picks in prop::collection::vec(0..3usize, 1..40),
        cuts in prop::collection::btree_set(0..40usize, 0..20),
    ) {
        let config = Config::default();
        let events = events(&steps);
        let all: Vec<&Event> = events.iter().collect();
        let (once, once_fates) = run(&config, &[all]);
        prop_assert!(once_fates.iter().all(|f| *f == Fate::Applied), "{once_fates:?}");

        let order = interleave(&events, &picks);
        let (batched, fates) = run(&config, &cut(&order, &cuts));
        prop_assert!(fates.iter().all(|f| *f == Fate::Applied), "{fates:?}");
        prop_assert_eq!(fates.len(), events.len());

        for (uuid, _) in ZONES {
            let a = once.records().get(uuid);
            let b = batched.records().get(uuid);
            let desired = a.and_then(|r| r.zone.clone());
            prop_assert_eq!(&desired, &b.and_then(|r| r.zone.clone()), "desired {}", uuid);
            let servable = desired
                .as_ref()
                .is_some_and(|z| validate::validate(z, &config.zone).is_ok());
            let hash = |r: Option<&zoneagent::store::ZoneRecord>| {
                r.and_then(|r| r.deployed.as_ref()).map(|d| d.content_hash.clone())
            };
            let held = |r: Option<&zoneagent::store::ZoneRecord>| r.is_some_and(zoneagent::store::ZoneRecord::is_held);
            if servable {
                prop_assert_eq!(hash(a), hash(b), "served content of {}", uuid);
                prop_assert!(!held(a) && !held(b), "{} is servable but held", uuid);
            } else if desired.is_some() {
                prop_assert!(held(a) && held(b), "{} is not servable but not held", uuid);
            } else {
                prop_assert_eq!(hash(b), None, "deleted {} still served", uuid);
            }
        }
    }
}
