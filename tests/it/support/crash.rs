//! Helpers for the crash and outage tests (`tests/it/crash.rs`): a seeded
//! random source, an independent model of what the events make of each
//! zone, a SOA poller over UDP, a log of serials that must never go
//! backwards, and readers for what the agent leaves on disk.
//!
//! The model knows nothing of the agent's code: it applies the events the
//! test generates, in the order the test generates them, to a map from
//! record uuid to record.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use zoneagent::bind::{checkzone, query};
use zoneagent::model::name::{Name, parse_domain};
use zoneagent::serial::Serial;

/// Config for these tests: the test's own address may transfer the zones,
/// so that the served content can be compared with the model; an idle
/// daemon rescans (and sends `STATUS=`) twice a second.
pub const CONFIG: &str = "[zone]\noptions = \"allow-transfer { 127.0.0.1; };\"\n\
                          [spool]\nrescan_seconds = 0.5\n";

/// xorshift64*: tiny, seeded, good enough to pick kill moments and events.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Zero is the one state xorshift never leaves.
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// An index into a collection of `len` (> 0) items.
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).expect("index fits usize")
    }

    /// True with the given probability in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration in `lo..hi` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

/// The seed: `$name` when set (decimal or 0x-hex), else `default`.
pub fn seed(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| {
            s.strip_prefix("0x")
                .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
        })
        .unwrap_or(default)
}

/// A record as `dig` prints it: owner (absolute), TTL, type, RDATA.
pub type ServedRecord = (String, i64, String, String);

/// A record as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub rtype: String,
    pub name: String,
    pub value: String,
    pub ttl: i64,
}

impl Rec {
    fn json(&self, uuid: &str) -> Value {
        json!({"uuid": uuid, "record_type": self.rtype, "name": self.name,
               "value": self.value, "ttl": self.ttl, "priority": null})
    }

    /// The record as `dig` prints it.
    fn served(&self, domain: &str) -> ServedRecord {
        let owner = if self.name == "@" {
            format!("{domain}.")
        } else {
            format!("{}.{domain}.", self.name)
        };
        let rdata = if self.rtype == "TXT" {
            format!("\"{}\"", self.value)
        } else {
            self.value.clone()
        };
        (owner, self.ttl, self.rtype.clone(), rdata)
    }
}

/// One zone of the model.
#[derive(Debug, Clone)]
pub struct ModelZone {
    pub uuid: String,
    pub domain: String,
    /// The last `seq` given to an event of this zone.
    pub seq: u64,
    pub records: BTreeMap<String, Rec>,
    /// Ids of the events applied to this zone, in order.
    pub ids: Vec<String>,
    index: usize,
    next_record: u64,
    next_value: u64,
}

/// Owners the records are spread over, so RRsets have several records.
const NAMES: [&str; 6] = ["@", "www", "h1", "h2", "h3", "mail"];
const TTL: i64 = 300;

impl ModelZone {
    fn fresh(&mut self, rtype: &str, rng: &mut XorShift) -> Rec {
        // Every value is new within the zone: no two records collapse.
        self.next_value += 1;
        let n = self.next_value;
        let value = if rtype == "A" {
            format!("10.{}.{}.{}", self.index % 250, n / 250, 1 + n % 250)
        } else {
            format!("tok-{n} zone={} v={}", self.index, rng.below(1_000_000))
        };
        Rec {
            rtype: rtype.to_owned(),
            name: NAMES[rng.index(NAMES.len())].to_owned(),
            value,
            ttl: TTL,
        }
    }

    fn record_uuid(&mut self) -> String {
        self.next_record += 1;
        format!("{}-r{}", self.uuid, self.next_record)
    }

    /// What `named` should serve besides the SOA and NS records.
    pub fn served(&self) -> BTreeSet<ServedRecord> {
        self.records
            .values()
            .map(|r| r.served(&self.domain))
            .collect()
    }

    /// The records as the state file should hold them, by uuid.
    pub fn state_records(&self) -> BTreeMap<String, Rec> {
        self.records.clone()
    }
}

/// The zones and the events that describe them.
#[derive(Debug, Clone)]
pub struct Model {
    pub zones: Vec<ModelZone>,
    prefix: String,
    next_id: u64,
}

impl Model {
    /// `count` zones `z000.<prefix>.test`, … (not created yet).
    pub fn new(prefix: &str, count: usize) -> Model {
        let zones = (0..count)
            .map(|i| ModelZone {
                uuid: format!("{prefix}-zone-{i:03}"),
                domain: format!("z{i:03}.{prefix}.test"),
                seq: 0,
                records: BTreeMap::new(),
                ids: Vec::new(),
                index: i,
                next_record: 0,
                next_value: 0,
            })
            .collect();
        Model {
            zones,
            prefix: prefix.to_owned(),
            next_id: 0,
        }
    }

    fn envelope(&mut self, z: usize, kind: &str) -> Value {
        self.next_id += 1;
        let id = format!("{}-evt-{:05}", self.prefix, self.next_id);
        let zone = &mut self.zones[z];
        zone.seq += 1;
        zone.ids.push(id.clone());
        json!({"id": id, "seq": zone.seq, "type": kind})
    }

    /// A `zone.snapshot` creating zone `z` with an A and a TXT record.
    pub fn snapshot(&mut self, z: usize, rng: &mut XorShift) -> Value {
        let mut e = self.envelope(z, "zone.snapshot");
        let zone = &mut self.zones[z];
        zone.records.clear();
        for rtype in ["A", "TXT"] {
            let uuid = zone.record_uuid();
            let rec = zone.fresh(rtype, rng);
            zone.records.insert(uuid, rec);
        }
        let records: Vec<Value> = zone.records.iter().map(|(u, r)| r.json(u)).collect();
        e["zone"] = json!({"uuid": zone.uuid, "domain": zone.domain,
            "created_at": "2026-01-01T00:00:00Z", "records": records});
        e
    }

    /// A random valid record event for zone `z` (which must exist):
    /// `record.created` of a new record, `record.updated` of an existing
    /// one (new value, sometimes a new name), or `record.deleted`.
    pub fn record_event(&mut self, z: usize, rng: &mut XorShift) -> Value {
        let roll = if self.zones[z].records.len() < 2 {
            0
        } else {
            rng.below(100)
        };
        if roll < 40 {
            let mut e = self.envelope(z, "record.created");
            let zone = &mut self.zones[z];
            let uuid = zone.record_uuid();
            let rec = zone.fresh(if rng.chance(50) { "A" } else { "TXT" }, rng);
            e["zone_uuid"] = json!(zone.uuid);
            e["record"] = rec.json(&uuid);
            zone.records.insert(uuid, rec);
            e
        } else if roll < 75 {
            let mut e = self.envelope(z, "record.updated");
            let zone = &mut self.zones[z];
            let keys: Vec<String> = zone.records.keys().cloned().collect();
            let uuid = keys[rng.index(keys.len())].clone();
            let old = zone.records[&uuid].clone();
            let mut rec = zone.fresh(&old.rtype, rng);
            if rng.chance(70) {
                rec.name = old.name;
            }
            e["zone_uuid"] = json!(zone.uuid);
            e["record"] = rec.json(&uuid);
            zone.records.insert(uuid, rec);
            e
        } else {
            let mut e = self.envelope(z, "record.deleted");
            let zone = &mut self.zones[z];
            let keys: Vec<String> = zone.records.keys().cloned().collect();
            let uuid = keys[rng.index(keys.len())].clone();
            zone.records.remove(&uuid);
            e["zone_uuid"] = json!(zone.uuid);
            e["record_uuid"] = json!(uuid);
            e
        }
    }
}

/// One entry of the stream a producer submits.
#[derive(Debug, Clone)]
pub struct Submission {
    pub bytes: Vec<u8>,
    /// A deliberate re-send of an earlier event (same id, same bytes).
    pub duplicate: bool,
}

/// The records of a state file's `zone.records`, by uuid.
pub fn state_records(state: &Value) -> BTreeMap<String, Rec> {
    state["zone"]["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["uuid"].as_str().unwrap_or_default().to_owned(),
                        Rec {
                            rtype: r["record_type"].as_str().unwrap_or_default().to_owned(),
                            name: r["name"].as_str().unwrap_or_default().to_owned(),
                            value: r["value"].as_str().unwrap_or_default().to_owned(),
                            ttl: r["ttl"].as_i64().unwrap_or(-1),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Asks `named` for the SOA of many zones at once over UDP, with the
/// library's hickory-proto messages: a connected socket, a random id per
/// query, and only the authoritative answer to the question asked counts.
pub struct SoaPoller {
    socket: UdpSocket,
    names: Vec<Name>,
}

impl SoaPoller {
    pub fn new(port: u16, domains: &[String]) -> SoaPoller {
        assert!(!domains.is_empty() && domains.len() <= 1000);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .expect("connect UDP");
        let names = domains
            .iter()
            .map(|d| parse_domain(d).expect("domain"))
            .collect();
        SoaPoller { socket, names }
    }

    /// One round: a query per zone, answers read for at most `wait`.
    /// `None` where no serial came back (refused, not loaded, lost). Late
    /// answers from earlier rounds carry ids no longer in flight and are
    /// ignored, so the observations of one zone are in the order they were
    /// made.
    pub fn poll(&mut self, wait: Duration) -> Vec<Option<u32>> {
        let n = self.names.len();
        let mut in_flight: HashMap<u16, usize> = HashMap::with_capacity(n);
        for (i, name) in self.names.iter().enumerate() {
            let id = loop {
                let id = rand::random::<u16>();
                if !in_flight.contains_key(&id) {
                    break id;
                }
            };
            in_flight.insert(id, i);
            let _ = self.socket.send(&query::soa_query(id, name));
        }
        let mut out = vec![None; n];
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        while !in_flight.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = self
                .socket
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            let Ok(len) = self.socket.recv(&mut buf) else {
                continue;
            };
            let Some(response) = query::parse_response(&buf[..len]) else {
                continue;
            };
            let id = response.id();
            let Some(&i) = in_flight.get(&id) else {
                continue;
            };
            let Some(answer) = response.soa_answer(id, &self.names[i]) else {
                continue;
            };
            in_flight.remove(&id);
            if let query::Answer::Serial(s) = answer {
                out[i] = Some(s);
            }
        }
        out
    }

    /// Polls until every zone answers with a serial (or `timeout`).
    pub fn poll_all(&mut self, timeout: Duration) -> Vec<Option<u32>> {
        let deadline = Instant::now() + timeout;
        let mut best = vec![None; self.names.len()];
        loop {
            for (b, s) in best.iter_mut().zip(self.poll(Duration::from_millis(200))) {
                if s.is_some() {
                    *b = s;
                }
            }
            if best.iter().all(Option::is_some) || Instant::now() >= deadline {
                return best;
            }
        }
    }
}

/// Serials seen over time, per key; a step backwards (RFC 1982) is a
/// violation.
#[derive(Debug, Default)]
pub struct SerialLog {
    last: HashMap<String, u32>,
    pub observations: u64,
    pub violations: Vec<String>,
}

impl SerialLog {
    pub fn observe(&mut self, key: &str, serial: u32) {
        self.observations += 1;
        if let Some(&prev) = self.last.get(key) {
            let forward = Serial(serial)
                .partial_cmp(&Serial(prev))
                .is_some_and(std::cmp::Ordering::is_ge);
            if !forward {
                self.violations
                    .push(format!("{key}: serial went from {prev} to {serial}"));
                return;
            }
        }
        self.last.insert(key.to_owned(), serial);
    }

    pub fn last(&self, key: &str) -> Option<u32> {
        self.last.get(key).copied()
    }
}

/// Reads every `state/zones/<uuid>.json` (hidden temporaries skipped):
/// uuid → JSON. A file that does not parse is reported in `torn`.
pub fn read_states(state_dir: &Path, torn: &mut Vec<String>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for name in super::agent::list(&state_dir.join("zones")) {
        let Some(uuid) = name
            .strip_suffix(".json")
            .filter(|_| !name.starts_with('.'))
        else {
            continue;
        };
        let path = state_dir.join("zones").join(&name);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                out.insert(uuid.to_owned(), v);
            }
            Err(e) => torn.push(format!("{}: {e}", path.display())),
        }
    }
    out
}

/// The serial a state file records for its deployed zone.
pub fn state_serial(state: &Value) -> Option<u32> {
    state["deployed"]["serial"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
}

/// Reads every `zones/<domain>.zone`: domain → SOA serial. A file without
/// a readable SOA serial or a final newline is reported in `torn`.
pub fn read_zone_serials(zones_dir: &Path, torn: &mut Vec<String>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for name in super::agent::list(zones_dir) {
        let Some(domain) = name
            .strip_suffix(".zone")
            .filter(|_| !name.starts_with('.'))
        else {
            continue;
        };
        let path = zones_dir.join(&name);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        match zoneagent::deploy::soa_serial(&text) {
            Some(s) if text.ends_with('\n') => {
                out.insert(domain.to_owned(), s);
            }
            _ => torn.push(format!(
                "{}: no SOA serial or no final newline ({} bytes)",
                path.display(),
                text.len()
            )),
        }
    }
    out
}

/// Hidden entries of a directory (temporaries a crash may leave), except
/// the names in `allowed`.
pub fn hidden_files(dir: &Path, allowed: &[&str]) -> Vec<String> {
    super::agent::list(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') && !allowed.contains(&n.as_str()))
        .collect()
}

/// `named-checkzone` with the strict flags on one file, judged the way
/// the agent judges it (the exact `loaded serial` line and `OK`).
pub fn strict_check(domain: &str, file: &Path, serial: u32) -> Result<(), String> {
    let name = parse_domain(domain)?;
    let argv = checkzone::argv(Path::new("named-checkzone"), &name, file, true);
    let output = zoneagent::exec::run(&argv).map_err(|e| e.to_string())?;
    checkzone::interpret(&name, serial, output)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The zones an include file lists: domain → file.
pub fn include_zones(include: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(include).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("zone \"") {
            current = rest.split('"').next().map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("file \"")
            && let Some(d) = current.take()
        {
            out.insert(d, rest.split('"').next().unwrap_or_default().to_owned());
        }
    }
    out
}

/// A zone transfer from the private `named`: the SOA serial and the other
/// records but SOA and NS, as (owner, TTL, type, RDATA). `None` if the
/// transfer failed.
pub fn axfr(port: u16, domain: &str) -> Option<(u32, BTreeSet<ServedRecord>)> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(["+noall", "+answer", "+time=3", "+tries=1", "AXFR", domain])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut serial = None;
    let mut records = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let mut t = line.split_whitespace();
        let (Some(owner), Some(ttl), Some(_class), Some(rtype)) =
            (t.next(), t.next(), t.next(), t.next())
        else {
            return None;
        };
        let rdata: Vec<&str> = t.collect();
        match rtype {
            "SOA" => serial = rdata.get(2).and_then(|s| s.parse().ok()),
            "NS" => {}
            _ => {
                records.insert((
                    owner.to_ascii_lowercase(),
                    ttl.parse().ok()?,
                    rtype.to_owned(),
                    rdata.join(" "),
                ));
            }
        }
    }
    Some((serial?, records))
}

/// Compares the agent's final word on every zone with the model; returns
/// one line per difference and how many events were verified (those of
/// the zones without a difference). `states` are the state files by uuid,
/// `served` the SOA serials `named` serves (same order as `model.zones`).
pub fn compare_final(
    model: &Model,
    states: &BTreeMap<String, Value>,
    served: &[Option<u32>],
    port: u16,
    zones_dir: &Path,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut torn = Vec::new();
    let files = read_zone_serials(zones_dir, &mut torn);
    problems.extend(torn);
    let mut verified = 0;
    for (zone, served) in model.zones.iter().zip(served) {
        let before = problems.len();
        check_zone(
            zone,
            states,
            *served,
            port,
            zones_dir,
            &files,
            &mut problems,
        );
        if problems.len() == before {
            verified += zone.ids.len();
        }
    }
    (problems, verified)
}

fn check_zone(
    zone: &ModelZone,
    states: &BTreeMap<String, Value>,
    served: Option<u32>,
    port: u16,
    zones_dir: &Path,
    files: &BTreeMap<String, u32>,
    problems: &mut Vec<String>,
) {
    {
        let Some(state) = states.get(&zone.uuid) else {
            problems.push(format!("{}: no state file", zone.domain));
            return;
        };
        let got = state_records(state);
        let want = zone.state_records();
        if got != want {
            let missing: Vec<&String> = want
                .keys()
                .filter(|k| got.get(*k) != want.get(*k))
                .collect();
            let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
            problems.push(format!(
                "{}: state records differ from the model: wrong or missing {missing:?}, extra {extra:?}",
                zone.domain
            ));
        }
        if state["last_seq"].as_u64() != Some(zone.seq) {
            problems.push(format!(
                "{}: state last_seq {} but the last event had seq {}",
                zone.domain, state["last_seq"], zone.seq
            ));
        }
        let ids: Vec<&str> = state["recent_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids != zone.ids {
            problems.push(format!(
                "{}: applied event ids differ from the events sent (each exactly once, in order): \
                 state {ids:?}, sent {:?}",
                zone.domain, zone.ids
            ));
        }
        let Some(serial) = state_serial(state) else {
            problems.push(format!("{}: state has no deployed serial", zone.domain));
            return;
        };
        if served != Some(serial) {
            problems.push(format!(
                "{}: named serves serial {served:?}, the state says {serial}",
                zone.domain
            ));
        }
        let file = zones_dir.join(format!("{}.zone", zone.domain));
        if files.get(&zone.domain) != Some(&serial) {
            problems.push(format!(
                "{}: zone file serial {:?}, the state says {serial}",
                zone.domain,
                files.get(&zone.domain)
            ));
        }
        if let Err(e) = strict_check(&zone.domain, &file, serial) {
            problems.push(format!(
                "{}: strict named-checkzone refused the file: {e}",
                zone.domain
            ));
        }
        match axfr(port, &zone.domain) {
            None => problems.push(format!("{}: zone transfer failed", zone.domain)),
            Some((s, records)) => {
                if s != serial {
                    problems.push(format!(
                        "{}: transfer has serial {s}, the state says {serial}",
                        zone.domain
                    ));
                }
                let want = zone.served();
                if records != want {
                    let missing: Vec<_> = want.difference(&records).collect();
                    let extra: Vec<_> = records.difference(&want).collect();
                    problems.push(format!(
                        "{}: served records differ from the model: missing {missing:?}, extra {extra:?}",
                        zone.domain
                    ));
                }
            }
        }
    }
}

/// The spool's and the zone directory's leftovers: anything in `tmp/` or
/// `failed/` (with the failure reports' contents), hidden temporaries in
/// the zone and state directories.
pub fn leftovers(root: &Path, zones_dir: &Path, state_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let spool = root.join("spool");
    for sub in ["new", "tmp"] {
        let left = super::agent::list(&spool.join(sub));
        if !left.is_empty() {
            problems.push(format!("spool/{sub} is not empty: {left:?}"));
        }
    }
    let failed = super::agent::list(&spool.join("failed"));
    if !failed.is_empty() {
        let reports: Vec<String> = failed
            .iter()
            .filter(|f| f.ends_with(".error.json"))
            .map(|f| fs::read_to_string(spool.join("failed").join(f)).unwrap_or_default())
            .collect();
        problems.push(format!(
            "spool/failed is not empty: {failed:?}\n{}",
            reports.join("\n")
        ));
    }
    let zones_hidden = hidden_files(zones_dir, &[".archive"]);
    if !zones_hidden.is_empty() {
        problems.push(format!(
            "temporary files left in {}: {zones_hidden:?}",
            zones_dir.display()
        ));
    }
    let state_hidden = hidden_files(&state_dir.join("zones"), &[]);
    if !state_hidden.is_empty() {
        problems.push(format!(
            "temporary files left in {}/zones: {state_hidden:?}",
            state_dir.display()
        ));
    }
    problems
}

/// `zoneagent status --json` (run while no daemon holds the lock).
pub fn status(env: &super::agent::Env) -> Result<Value, String> {
    let out = env.run(&["status", "--json"]);
    if !out.status.success() {
        return Err(super::agent::show(&out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", super::agent::show(&out)))
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Paths the monitor reads while the agent runs.
#[derive(Debug, Clone)]
pub struct Watched {
    pub state: PathBuf,
    pub zones: PathBuf,
    pub port: u16,
    pub domains: Vec<String>,
}

/// Counts a daemon log's WARN and ERROR lines and lists the distinct
/// messages (their `key=value` fields dropped), for the printed summary.
pub fn log_summary(text: &str) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some(level) = ["WARN", "ERROR"].into_iter().find(|l| line.starts_with(l)) else {
            continue;
        };
        let rest = line
            .split_once("}: ")
            .map_or(&line[level.len()..], |(_, m)| m);
        // The message ends where the first `key=value` field begins.
        let message = rest
            .split_whitespace()
            .take_while(|w| !w.contains('='))
            .collect::<Vec<_>>()
            .join(" ");
        *kinds.entry(format!("{level} {message}")).or_default() += 1;
    }
    if kinds.is_empty() {
        return "no WARN or ERROR lines".to_owned();
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} × {}", k.chars().take(160).collect::<String>()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `zones` and `pending_reloads` of a `STATUS=` notification.
pub fn parse_status(message: &str) -> Option<(usize, usize)> {
    let field = |key: &str| {
        message
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    Some((field("STATUS=zones=")?, field("pending_reloads=")?))
}

/// The next `STATUS=` the daemon sends after this call began: notifications
/// already queued (read without blocking) are skipped.
pub fn fresh_status(daemon: &mut super::agent::Daemon) -> String {
    loop {
        let asked = Instant::now();
        let message = daemon.wait_for("STATUS=");
        if asked.elapsed() >= Duration::from_millis(100) {
            return message;
        }
    }
}

/// Waits until the daemon has nothing left to do, judged from outside
/// only: `spool/new` empty, every zone served with the serial its state
/// file records, then two fresh `STATUS=` notifications saying
/// `pending_reloads=0` for `domains.len()` zones (so `named`'s loading
/// is confirmed, not just done).
pub fn settled(
    env: &super::agent::Env,
    daemon: &mut super::agent::Daemon,
    uuids: &[String],
    domains: &[String],
    secs: u64,
) -> Result<(), String> {
    let mut poller = SoaPoller::new(env.named.port(), domains);
    let mut last = String::new();
    let served = super::agent::eventually(secs, || {
        if !super::agent::list(&env.spool().join("new")).is_empty() {
            "spool/new is not empty".clone_into(&mut last);
            return false;
        }
        let states = read_states(&env.root.join("state"), &mut Vec::new());
        let served = poller.poll(Duration::from_millis(200));
        let behind: Vec<&String> = uuids
            .iter()
            .zip(domains)
            .zip(&served)
            .filter(|((u, _), s)| s.is_none() || states.get(*u).and_then(state_serial) != **s)
            .map(|((_, d), _)| d)
            .collect();
        last = format!("zones not served with their state serial: {behind:?}");
        behind.is_empty()
    });
    if !served {
        return Err(last);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut zeros = 0;
    while zeros < 2 {
        if Instant::now() >= deadline {
            return Err(format!("the daemon still says {last}"));
        }
        last = fresh_status(daemon);
        zeros = match parse_status(&last) {
            Some((z, 0)) if z == domains.len() => zeros + 1,
            _ => 0,
        };
    }
    Ok(())
}
