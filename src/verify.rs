//! `zoneagent verify`: compares what `named` serves with what the state
//! says it should, RRset by RRset, and repairs drifted zones.
//!
//! The expected side is the state's zone run through the library's own
//! [`crate::validate::validate`] and [`crate::render::render`] (with the
//! serial the state recorded), read back by hickory's zone-file parser;
//! the served side is an AXFR from `bind.server` decoded by hickory. Both
//! become [`RrSets`] (owner, type → TTL and RDATA in hickory's
//! presentation), so the comparison ([`compare`]) is pure and sees only
//! DNS data, never formatting. The SOA is compared by its serial alone
//! (the rest is the agent's configuration). Repair goes through the
//! normal deploy path, forced, as `rebuild --zone D --force` does; a zone
//! `named` changed itself (dynamic update) is frozen first, so its
//! journal is written into the file and the new serial comes out above
//! the served one, and thawed after.

use crate::config::Config;
use crate::model::name::{self, Name};
use crate::store::{Store, ZoneRecord};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{self, RecordType};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Owner (lower case, absolute) and type → TTL and the RDATA set.
pub type RrSets = BTreeMap<(String, String), RrSet>;

/// One RRset: its TTL and RDATA in presentation form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RrSet {
    pub ttl: u32,
    pub rdata: BTreeSet<String>,
}

/// One RRset that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub owner: String,
    pub rtype: String,
    /// What the state says (`None`: the RRset is extra).
    pub expected: Option<RrSet>,
    /// What named serves (`None`: the RRset is missing).
    pub served: Option<RrSet>,
}

/// The installed file against what the state renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Same,
    Edited,
    Missing,
}

/// What verify found for one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneReport {
    pub uuid: String,
    pub domain: String,
    pub state_serial: Option<u32>,
    pub served_serial: Option<u32>,
    pub file: FileState,
    pub missing: Vec<Difference>,
    pub extra: Vec<Difference>,
    pub different: Vec<Difference>,
    /// The transfer failed (named does not serve the zone, refused it, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_error: Option<String>,
    /// The state's zone does not validate (held): nothing to compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// After `--repair`: whether the zone now verifies clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<bool>,
}

impl ZoneReport {
    /// Whether named serves something other than the state.
    pub fn drifted(&self) -> bool {
        self.held.is_none()
            && (self.file != FileState::Same
                || self.state_serial != self.served_serial
                || self.transfer_error.is_some()
                || !self.missing.is_empty()
                || !self.extra.is_empty()
                || !self.different.is_empty())
    }
}

/// Why verify could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("failed to read the state")]
    State(#[source] crate::store::StoreError),
    #[error("`{input}` is not a zone name: {detail}")]
    BadZone { input: String, detail: String },
    #[error("no zone {0} in the state")]
    Unknown(String),
    #[error("failed to open the state for repair")]
    Deploy(#[source] crate::deploy::DeployError),
}

/// Puts hickory records into [`RrSets`], SOA aside: its serial is
/// returned, its other fields are the agent's configuration.
fn collect<'a>(records: impl IntoIterator<Item = &'a rr::Record>) -> (RrSets, Option<u32>) {
    let mut sets = RrSets::new();
    let mut serial = None;
    for r in records {
        if let rr::RData::SOA(soa) = &r.data {
            serial = Some(soa.serial);
            continue;
        }
        let key = (
            r.name.to_ascii().to_ascii_lowercase(),
            r.record_type().to_string(),
        );
        let set = sets.entry(key).or_insert_with(|| RrSet {
            ttl: r.ttl,
            rdata: BTreeSet::new(),
        });
        set.ttl = set.ttl.min(r.ttl);
        set.rdata.insert(r.data.to_string());
    }
    (sets, serial)
}

/// Reads a zone file's text (pure): the RRsets and the SOA serial.
pub fn parse_zone_text(text: &str, origin: &Name) -> Result<(RrSets, Option<u32>), String> {
    let origin = rr::Name::from_ascii(origin.to_absolute()).map_err(|e| e.to_string())?;
    let (_, sets) = hickory_proto::serialize::txt::Parser::new(text, None, Some(origin))
        .parse()
        .map_err(|e| e.to_string())?;
    let records: Vec<rr::Record> = sets
        .values()
        .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>())
        .collect();
    Ok(collect(&records))
}

/// The RRsets that are missing, extra or different (pure).
pub fn compare(expected: &RrSets, served: &RrSets) -> [Vec<Difference>; 3] {
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let mut different = Vec::new();
    let keys: BTreeSet<&(String, String)> = expected.keys().chain(served.keys()).collect();
    for key in keys {
        let (e, s) = (expected.get(key), served.get(key));
        let d = Difference {
            owner: key.0.clone(),
            rtype: key.1.clone(),
            expected: e.cloned(),
            served: s.cloned(),
        };
        match (e, s) {
            (Some(_), None) => missing.push(d),
            (None, Some(_)) => extra.push(d),
            (Some(a), Some(b)) if a != b => different.push(d),
            _ => {}
        }
    }
    [missing, extra, different]
}

/// A TSIG key (RFC 8945) as BIND's key files write it.
#[derive(Clone)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsigKey({} {}, <secret>)", self.name, self.algorithm)
    }
}

/// Reads `key "NAME" { algorithm ALG; secret "BASE64"; };` (the output of
/// `tsig-keygen`; the first key of the file).
pub fn parse_key_file(text: &str) -> Result<TsigKey, String> {
    use crate::adopt::{statements, tokens, value};
    let toks = tokens(text);
    let mut pos = 0;
    let key = statements(&toks, &mut pos)
        .into_iter()
        .find(|s| s.words.first().is_some_and(|w| w == "key"))
        .ok_or("no `key` statement")?;
    let name = key.words.get(1).ok_or("the key has no name")?.clone();
    let algorithm = value(&key.block, "algorithm")
        .ok_or("the key has no algorithm")?
        .to_ascii_lowercase();
    let secret = value(&key.block, "secret").ok_or("the key has no secret")?;
    let secret = data_encoding::BASE64
        .decode(secret.as_bytes())
        .map_err(|e| format!("the secret is not base64: {e}"))?;
    Ok(TsigKey {
        name,
        algorithm,
        secret,
    })
}

fn signer(key: &TsigKey) -> Result<rr::TSigner, String> {
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    let algorithm =
        TsigAlgorithm::from_name(rr::Name::from_ascii(&key.algorithm).map_err(|e| e.to_string())?);
    let name = rr::Name::from_ascii(&key.name).map_err(|e| e.to_string())?;
    // RFC 8945 §10: 300 s of fudge is the recommended value.
    rr::TSigner::new(key.secret.clone(), algorithm, name, 300).map_err(|e| e.to_string())
}

/// The AXFR query for a zone, signed when there is a key; with the
/// verifier of the signed answers.
fn axfr_query(
    id: u16,
    zone: &Name,
    key: Option<&TsigKey>,
) -> Result<(Vec<u8>, Option<rr::TSigVerifier>), String> {
    let name = rr::Name::from_ascii(zone.to_absolute()).map_err(|e| e.to_string())?;
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name, RecordType::AXFR));
    let mut verifier = None;
    if let Some(key) = key {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (tsig, v) = signer(key)?
            .sign_message(&msg, now)
            .map_err(|e| e.to_string())?;
        msg.signature = Some(tsig);
        verifier = v;
    }
    Ok((msg.to_vec().map_err(|e| e.to_string())?, verifier))
}

/// Transfers a zone over TCP (RFC 5936): messages until the closing SOA.
/// With a key, the query is signed and every answer's TSIG verified.
pub fn axfr(
    server: SocketAddr,
    zone: &Name,
    timeout: Duration,
    key: Option<&TsigKey>,
) -> Result<Vec<rr::Record>, String> {
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let (query, mut verifier) = axfr_query(id, zone, key)?;
    let mut conn = TcpStream::connect_timeout(&server, timeout)
        .map_err(|e| format!("connect to {server}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(query.len()).map_err(|e| e.to_string())?;
    conn.write_all(&len.to_be_bytes())
        .and_then(|()| conn.write_all(&query))
        .map_err(|e| format!("send: {e}"))?;
    let mut records = Vec::new();
    let mut soas = 0;
    // Bounded: a zone of millions of records still ends; a server that
    // never sends the closing SOA hits the read timeout.
    for _ in 0..1_000_000 {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len)
            .map_err(|e| format!("read: {e}"))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut buf)
            .map_err(|e| format!("read: {e}"))?;
        let msg = match verifier.as_mut() {
            Some(v) => v
                .verify(&buf)
                .map_err(|e| format!("TSIG of the answer does not verify: {e}"))?
                .into_message(),
            None => Message::from_vec(&buf).map_err(|e| format!("bad response: {e}"))?,
        };
        if msg.metadata.id != id {
            return Err("response with another id".to_owned());
        }
        if msg.metadata.response_code != ResponseCode::NoError {
            return Err(format!("transfer refused: {}", msg.metadata.response_code));
        }
        if msg.answers.is_empty() {
            return Err("empty transfer".to_owned());
        }
        for r in msg.answers {
            if r.record_type() == RecordType::SOA {
                soas += 1;
                if soas == 2 {
                    return Ok(records);
                }
            }
            records.push(r);
        }
    }
    Err("transfer did not end".to_owned())
}

/// Verifies one zone of the state against what named serves and the file
/// on disk.
pub fn verify_zone(
    config: &Config,
    key: Option<&TsigKey>,
    uuid: &str,
    state: &ZoneRecord,
) -> ZoneReport {
    let domain = state
        .deployed
        .as_ref()
        .map(|d| d.domain.clone())
        .or_else(|| state.zone.as_ref().map(|z| z.domain.clone()))
        .unwrap_or_default();
    let mut report = ZoneReport {
        uuid: uuid.to_owned(),
        domain: domain.clone(),
        state_serial: state.deployed.as_ref().map(|d| d.serial),
        served_serial: None,
        file: FileState::Same,
        missing: Vec::new(),
        extra: Vec::new(),
        different: Vec::new(),
        transfer_error: None,
        held: None,
        repaired: None,
    };
    let Some(zone) = state.zone.as_ref() else {
        report.held = Some("deleted".to_owned());
        return report;
    };
    let valid = match crate::validate::validate(zone, &config.zone) {
        Ok(v) => v,
        Err(errors) => {
            report.held = Some(crate::error::ApiErrors(errors).to_string());
            return report;
        }
    };
    let Some(serial) = report.state_serial else {
        report.held = Some("never deployed".to_owned());
        return report;
    };
    let text = crate::render::render(&valid, &config.render, serial);
    let (expected, _) = match parse_zone_text(&text, &valid.origin) {
        Ok(p) => p,
        Err(e) => {
            report.held = Some(format!("the rendered zone cannot be read back: {e}"));
            return report;
        }
    };
    let path = config.paths.zones.join(format!("{domain}.zone"));
    report.file = match std::fs::read_to_string(&path) {
        Ok(disk) if disk == text => FileState::Same,
        Ok(_) => FileState::Edited,
        Err(_) => FileState::Missing,
    };
    let timeout = Duration::from_secs_f64(config.bind.confirm_timeout.min(30.0));
    match axfr(config.bind.server, &valid.origin, timeout, key) {
        Ok(records) => {
            let (served, serial) = collect(&records);
            report.served_serial = serial;
            let [m, x, d] = compare(&expected, &served);
            report.missing = m;
            report.extra = x;
            report.different = d;
        }
        Err(e) => report.transfer_error = Some(e),
    }
    report
}

/// The states to verify: all, or those of the named domains; deleted
/// zones are not.
fn select(
    states: BTreeMap<String, ZoneRecord>,
    only: &[String],
) -> Result<Vec<(String, ZoneRecord)>, VerifyError> {
    let mut wanted = BTreeSet::new();
    for d in only {
        let n = name::parse_domain(d).map_err(|detail| VerifyError::BadZone {
            input: d.clone(),
            detail,
        })?;
        wanted.insert(n.as_str().to_owned());
    }
    // The A-label domain of a record's desired zone (none once deleted).
    let domain_of = |s: &ZoneRecord| {
        s.zone
            .as_ref()
            .and_then(|z| name::parse_domain(&z.domain).ok())
    };
    let picked: Vec<(String, ZoneRecord)> = states
        .into_iter()
        .filter(|(_, s)| {
            domain_of(s).is_some_and(|n| wanted.is_empty() || wanted.contains(n.as_str()))
        })
        .collect();
    for w in &wanted {
        if !picked
            .iter()
            .any(|(_, s)| domain_of(s).is_some_and(|n| n.as_str() == w))
        {
            return Err(VerifyError::Unknown(w.clone()));
        }
    }
    Ok(picked)
}

/// Verifies the zones (all, or `only`) without the state's lock.
pub fn verify(
    config: &Config,
    key: Option<&TsigKey>,
    only: &[String],
) -> Result<Vec<ZoneReport>, VerifyError> {
    let states = Store::open_read_only(&config.paths.state)
        .load_all()
        .map_err(VerifyError::State)?;
    Ok(select(states, only)?
        .iter()
        .map(|(uuid, s)| verify_zone(config, key, uuid, s))
        .collect())
}

fn rndc(config: &Config, args: &[&str]) -> Result<(), String> {
    let mut command: Vec<std::ffi::OsString> = config.bind.rndc.iter().map(Into::into).collect();
    command.extend(args.iter().map(Into::into));
    match crate::exec::run(&command) {
        Ok(o) if o.success => Ok(()),
        Ok(o) => Err(o.stderr.trim().to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Rewrites and reloads the drifted zones through the normal deploy path
/// (forced), then verifies them again. Needs the state's lock (no daemon
/// running).
pub fn repair(
    config: &Config,
    key: Option<&TsigKey>,
    reports: &mut [ZoneReport],
) -> Result<(), VerifyError> {
    let mut deployer =
        crate::deploy::Deployer::open(config.clone()).map_err(VerifyError::Deploy)?;
    repair_with(&mut deployer, key, reports)
}

/// [`repair`] through a deployer that is already open (the daemon's).
pub fn repair_with(
    deployer: &mut crate::deploy::Deployer,
    key: Option<&TsigKey>,
    reports: &mut [ZoneReport],
) -> Result<(), VerifyError> {
    use crate::decide::Wanted;
    use crate::deploy::Options;
    let config = &deployer.config.clone();
    for report in reports.iter_mut().filter(|r| r.drifted()) {
        let Some(state) = deployer.records().get(&report.uuid).cloned() else {
            continue;
        };
        let Some(zone) = state.zone.clone() else {
            continue;
        };
        // A zone named changed itself (a dynamic update) serves a serial
        // of its own: freezing it stops updates and writes the journal
        // into the file (thawed after the deploy).
        let dynamic = report
            .served_serial
            .zip(report.state_serial)
            .is_some_and(|(s, t)| s != t);
        let frozen = dynamic && rndc(config, &["freeze", &report.domain]).is_ok();
        // The deploy goes above the serial of the installed file; when named
        // serves a higher one than the state's, the file is first written
        // with the state's content and the served serial, so the new serial
        // comes out above what named (and its secondaries) have.
        if let (Some(served), Some(ours)) = (report.served_serial, report.state_serial)
            && crate::serial::Serial(served) > crate::serial::Serial(ours)
            && let Ok(valid) = crate::validate::validate(&zone, &config.zone)
        {
            let text = crate::render::render(&valid, &config.render, served);
            let path = config.paths.zones.join(format!("{}.zone", report.domain));
            if let Err(e) = crate::fsutil::write_atomic(&path, text.as_bytes()) {
                tracing::warn!(zone = %report.domain, error = %e, "cannot raise the serial floor");
            }
        }
        let change = Wanted::put(zone);
        let result = deployer.apply(
            vec![change],
            Options {
                force: true,
                dry_run: false,
            },
            crate::cli::now(),
        );
        if frozen && let Err(e) = rndc(config, &["thaw", &report.domain]) {
            tracing::warn!(zone = %report.domain, error = %e, "rndc thaw failed");
        }
        if let Err(e) = result {
            tracing::error!(zone = %report.domain, error = %crate::daemon::error_chain(&e), "repair failed");
            report.repaired = Some(false);
            continue;
        }
        // A thawed zone is loaded again in the background: give named the
        // confirm timeout to serve the repaired version.
        let deadline = std::time::Instant::now()
            + Duration::from_secs_f64(config.bind.confirm_timeout.min(30.0));
        let repaired = loop {
            let again = deployer
                .records()
                .get(&report.uuid)
                .map(|s| verify_zone(config, key, &report.uuid, s));
            let clean = again.is_some_and(|a| !a.drifted());
            if clean || std::time::Instant::now() >= deadline {
                break clean;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        report.repaired = Some(repaired);
    }
    Ok(())
}

fn show_set(s: Option<&RrSet>) -> String {
    s.map_or_else(
        || "(none)".to_owned(),
        |s| {
            format!(
                "{} {}",
                s.ttl,
                s.rdata.iter().cloned().collect::<Vec<_>>().join(" | ")
            )
        },
    )
}

/// `zoneagent verify`: returns the exit code (1 when drift remains).
pub fn run(
    config: &Config,
    only: &[String],
    key_file: Option<&std::path::Path>,
    json: bool,
    fix: bool,
) -> i32 {
    use crate::error::{EXIT_CONFIG, EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
    let key = match key_file.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_key_file(&t))
            .map_err(|e| format!("cannot read the TSIG key {}: {e}", p.display()))
    }) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_CONFIG;
        }
    };
    let key = key.as_ref();
    let mut reports = match verify(config, key, only) {
        Ok(r) => r,
        Err(e) => {
            crate::cli::print_error(&e);
            return if matches!(e, VerifyError::BadZone { .. } | VerifyError::Unknown(_)) {
                EXIT_INVALID_INPUT
            } else {
                EXIT_FAILURE
            };
        }
    };
    if fix
        && reports.iter().any(ZoneReport::drifted)
        && let Err(e) = repair(config, key, &mut reports)
    {
        crate::cli::print_error(&e);
        return EXIT_FAILURE;
    }
    let mut out = std::io::stdout().lock();
    for r in &reports {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
            continue;
        }
        if let Some(h) = &r.held {
            let _ = writeln!(out, "{}: not compared ({h})", r.domain);
            continue;
        }
        if !r.drifted() {
            let _ = writeln!(
                out,
                "{}: ok (serial {})",
                r.domain,
                r.state_serial.unwrap_or(0)
            );
            continue;
        }
        let serial = |s: Option<u32>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let _ = writeln!(
            out,
            "{}: DRIFT (served serial {}, state {}, file {:?}){}",
            r.domain,
            serial(r.served_serial),
            serial(r.state_serial),
            r.file,
            match r.repaired {
                Some(true) => " - repaired",
                Some(false) => " - NOT repaired",
                None => "",
            }
        );
        if let Some(e) = &r.transfer_error {
            let _ = writeln!(out, "  transfer failed: {e}");
        }
        for (what, list) in [
            ("missing", &r.missing),
            ("extra", &r.extra),
            ("different", &r.different),
        ] {
            for d in list {
                let _ = writeln!(
                    out,
                    "  {what} {} {}: state {} / served {}",
                    d.owner,
                    d.rtype,
                    show_set(d.expected.as_ref()),
                    show_set(d.served.as_ref())
                );
            }
        }
    }
    let drifted = reports
        .iter()
        .filter(|r| r.drifted() && r.repaired != Some(true))
        .count();
    eprintln!("{} zone(s) verified, {drifted} drifted", reports.len());
    if drifted > 0 { EXIT_FAILURE } else { EXIT_OK }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        name::parse_domain("example.com").unwrap()
    }

    #[test]
    fn zone_text_to_rrsets() {
        let text = "$ORIGIN example.com.\n$TTL 300\n\
            @ IN SOA ns1 hm 42 1 2 3 4\n@ NS ns1.vps.org.\n\
            www A 192.0.2.1\nwww A 192.0.2.2\nWWW.example.com. 60 TXT \"a\" \"b\"\n";
        let (sets, serial) = parse_zone_text(text, &origin()).unwrap();
        assert_eq!(serial, Some(42));
        let a = &sets[&("www.example.com.".to_owned(), "A".to_owned())];
        assert_eq!(a.rdata.len(), 2);
        assert!(sets.contains_key(&("www.example.com.".to_owned(), "TXT".to_owned())));
    }

    #[test]
    fn key_files() {
        let text =
            "key \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0\";\n};\n";
        let k = parse_key_file(text).unwrap();
        assert_eq!(
            (k.name.as_str(), k.algorithm.as_str()),
            ("xfr-key", "hmac-sha256")
        );
        assert_eq!(k.secret, b"secretsecret");
        assert!(!format!("{k:?}").contains("c2Vj"));
        assert!(signer(&k).is_ok());
        assert!(parse_key_file("options { };").is_err());
        assert!(parse_key_file("key \"k\" { algorithm hmac-sha256; secret \"!!\"; };").is_err());
    }

    #[test]
    fn differences_by_kind() {
        let (a, _) = parse_zone_text(
            "$TTL 60\nx A 192.0.2.1\ny A 192.0.2.2\nz A 192.0.2.3\n",
            &origin(),
        )
        .unwrap();
        let (b, _) = parse_zone_text(
            "$TTL 60\nx A 192.0.2.1\ny A 192.0.2.9\nw A 192.0.2.4\n",
            &origin(),
        )
        .unwrap();
        let [missing, extra, different] = compare(&a, &b);
        assert_eq!(missing[0].owner, "z.example.com.");
        assert_eq!(extra[0].owner, "w.example.com.");
        assert_eq!(different[0].owner, "y.example.com.");
        assert_eq!(compare(&a, &a), [vec![], vec![], vec![]]);
        // A TTL change is a difference too.
        let (c, _) = parse_zone_text(
            "$TTL 61\nx A 192.0.2.1\ny A 192.0.2.2\nz A 192.0.2.3\n",
            &origin(),
        )
        .unwrap();
        assert_eq!(compare(&a, &c)[2].len(), 3);
    }

    #[test]
    fn the_rendered_zone_reads_back() {
        let config = Config::default();
        let zone = crate::model::zone::decode_zone(
            r#"{"uuid": "z", "domain": "example.com", "records": [
            {"uuid": "r1", "record_type": "TXT", "name": "t", "value": "say \"hi\"; ok"},
            {"uuid": "r2", "record_type": "CAA", "name": "@", "value": "0 issue \"ca.example\""},
            {"uuid": "r3", "record_type": "SRV", "name": "_s._tcp", "value": "1 2 t.example.net", "priority": 5},
            {"uuid": "r4", "record_type": "MX", "name": "@", "value": "mx.example.net", "priority": 10}]}"#,
        )
        .unwrap();
        let valid = crate::validate::validate(&zone, &config.zone).unwrap();
        let text = crate::render::render(&valid, &config.render, 7);
        let (sets, serial) = parse_zone_text(&text, &valid.origin).unwrap();
        assert_eq!(serial, Some(7));
        assert_eq!(sets.len(), 5, "{sets:?}");
    }
}

/// The daemon's periodic verification (`[verify] seconds`): the transfers
/// run on a thread of their own so the loop keeps applying events; the
/// result is logged, counted in the metrics and, with `[verify] repair`,
/// repaired on the loop thread through the daemon's own deployer.
#[derive(Debug, Default)]
pub struct Periodic {
    next_at: Option<std::time::Instant>,
    running: Option<std::thread::JoinHandle<Result<Vec<ZoneReport>, VerifyError>>>,
}

impl Periodic {
    /// Off unless `[verify] seconds` is set; the first run is one interval
    /// after start (a start has just deployed what the state holds).
    pub fn new(config: &Config) -> Periodic {
        Periodic {
            next_at: (config.verify.seconds > 0)
                .then(|| std::time::Instant::now() + Duration::from_secs(config.verify.seconds)),
            running: None,
        }
    }

    /// How long the loop may sleep before [`Periodic::poll`] has work.
    pub fn wait(&self) -> Option<Duration> {
        if self.running.is_some() {
            return Some(Duration::from_millis(200));
        }
        self.next_at
            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
    }

    /// Starts a verification when one is due; takes in a finished one.
    pub fn poll(&mut self, deployer: &mut crate::deploy::Deployer) {
        let seconds = deployer.config.verify.seconds;
        if seconds == 0 {
            self.next_at = None;
        } else if self.next_at.is_none() && self.running.is_none() {
            self.next_at = Some(std::time::Instant::now() + Duration::from_secs(seconds));
        }
        if self
            .running
            .as_ref()
            .is_some_and(std::thread::JoinHandle::is_finished)
            && let Some(handle) = self.running.take()
        {
            match handle.join() {
                Ok(Ok(mut reports)) => Self::take_in(deployer, &mut reports),
                Ok(Err(e)) => {
                    tracing::error!(error = %crate::daemon::error_chain(&e), "periodic verification failed");
                }
                Err(_) => tracing::error!("periodic verification panicked"),
            }
            self.next_at =
                (seconds > 0).then(|| std::time::Instant::now() + Duration::from_secs(seconds));
        }
        let due = self.next_at.is_some_and(|t| std::time::Instant::now() >= t);
        if due && self.running.is_none() {
            self.next_at = None;
            let config = deployer.config.clone();
            self.running = Some(std::thread::spawn(move || verify(&config, None, &[])));
        }
    }

    fn take_in(deployer: &mut crate::deploy::Deployer, reports: &mut [ZoneReport]) {
        let drifted = reports.iter().filter(|r| r.drifted()).count();
        for r in reports.iter().filter(|r| r.drifted()) {
            tracing::warn!(
                zone = %crate::logtext::Escaped(&r.domain),
                missing = r.missing.len(),
                extra = r.extra.len(),
                different = r.different.len(),
                served_serial = ?r.served_serial,
                state_serial = ?r.state_serial,
                "named serves something other than the state"
            );
        }
        let mut repaired = 0;
        if drifted > 0 && deployer.config.verify.repair {
            if let Err(e) = repair_with(deployer, None, reports) {
                tracing::error!(error = %crate::daemon::error_chain(&e), "repair of drifted zones failed");
            }
            repaired = reports.iter().filter(|r| r.repaired == Some(true)).count();
        }
        tracing::info!(
            zones = reports.len(),
            drifted,
            repaired,
            "periodic verification done"
        );
        crate::metrics::verified(drifted, repaired);
    }
}
