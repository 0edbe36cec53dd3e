//! Deciding a batch: from the zones as they are, the wanted changes and the
//! configuration, what to write, check, install, hold, archive and reload.
//!
//! Pure: no file system, no process, no clock. What it needs to know of the
//! disk (does a zone's file exist, which serial does it carry) comes
//! through [`Disk`]; the time comes as [`Now`]. The deploy shell
//! ([`crate::deploy`]) carries a decision out and reports BIND's verdict
//! back through [`Decision::settle`], which is pure too.
//!
//! The rules:
//! - Every wanted zone becomes the zone's *desired* state, servable or not.
//! - A desired zone `named` would refuse ([`validate::validate`] fails), or
//!   whose domain another zone or `named.conf` already has, is *held*: its
//!   served file stays as it was (or it stays out of `named` if it never
//!   was served) and the reasons are kept with it. The moment a later
//!   change, a configuration change or a rebuild makes it servable, it is
//!   deployed like any other zone.
//! - A zone whose rendered content is unchanged keeps its file and serial.
//! - Files are archived and installed by zone identity: a deleted zone's
//!   file is moved away before another zone's file takes its domain.

use crate::config::SerialPolicy;
use crate::error::ApiError;
use crate::model::name::{self, Name};
use crate::model::zone::Zone;
use crate::render::{RenderOptions, RenderedZone};
use crate::serial::{self, Now};
use crate::state::Memory;
use crate::store::{Archived, Deployed, HELD_BY, ZoneRecord};
use crate::validate::{self, ZoneDefaults};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One wanted change for one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub uuid: String,
    /// The desired zone; `None`: the zone should not exist.
    pub zone: Option<Zone>,
    /// The highest event `seq` applied (`None`: keep what is known).
    pub last_seq: Option<u64>,
    /// Event ids to remember (`None`: keep what is known).
    pub recent_ids: Option<Vec<String>>,
    /// Ids of the events this change applies, named if the zone is held.
    pub events: Vec<String>,
}

impl Wanted {
    /// The zone should look like this, with nothing else to remember.
    pub fn put(zone: Zone) -> Wanted {
        Wanted {
            uuid: zone.uuid.clone(),
            zone: Some(zone),
            last_seq: None,
            recent_ids: None,
            events: Vec::new(),
        }
    }

    /// The zone should not exist.
    pub fn delete(uuid: &str) -> Wanted {
        Wanted {
            uuid: uuid.to_owned(),
            zone: None,
            last_seq: None,
            recent_ids: None,
            events: Vec::new(),
        }
    }
}

/// What the zones are before the batch: the per-zone records and the
/// indexes the deployer keeps beside them.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    pub records: &'a BTreeMap<String, ZoneRecord>,
    /// Served domain → the uuid whose file it is.
    pub served: &'a HashMap<String, String>,
    /// Zones whose desired state is held, by uuid.
    pub held: &'a BTreeSet<String>,
    /// Domains `named.conf` declares itself (operator zones): domain →
    /// where it is declared.
    pub reserved: &'a BTreeMap<String, String>,
    /// Domain → the highest serial a deleted zone served under it.
    pub floors: &'a HashMap<String, u32>,
    /// Domains whose install was interrupted: written whatever their hash.
    pub dirty: &'a HashSet<String>,
}

/// What the decision needs to know of the disk.
pub trait Disk {
    /// Whether `zones/<domain>.zone` exists.
    fn file_exists(&self, domain: &str) -> bool;
    /// The SOA serial in `zones/<domain>.zone`, if there is one.
    fn file_serial(&self, domain: &str) -> Option<u32>;
}

/// The configuration a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub zone: &'a ZoneDefaults,
    pub render: &'a RenderOptions,
    pub serial: SerialPolicy,
    /// [`crate::render::config_hash`] of `zone` and `render`.
    pub config_hash: &'a str,
    /// Write every zone, changed or not.
    pub force: bool,
    /// Most records a zone may have before it is held.
    pub max_records: usize,
}

/// A zone file to write, check and install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub uuid: String,
    pub origin: Name,
    pub serial: u32,
    pub text: String,
    pub hash: String,
    /// Whether `named` already has this domain (a reload, not a reconfig).
    pub known: bool,
    /// The zone's previous file under another domain, archived once this
    /// one is installed.
    pub replaces: Option<Archived>,
    /// What `named` will load with a warning.
    pub warnings: Vec<ApiError>,
    /// Ids of the events this file carries, named if BIND refuses it.
    pub events: Vec<String>,
}

impl Write {
    /// The A-label domain, also the file's name.
    pub fn domain(&self) -> &str {
        self.origin.as_str()
    }
}

/// A zone that leaves `named`: its file is archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub uuid: String,
    pub domain: String,
    pub serial: u32,
}

/// A zone whose desired state cannot be served, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub uuid: String,
    pub domain: String,
    pub errors: Vec<ApiError>,
    /// Ids of the events since the zone was last servable.
    pub events: Vec<String>,
}

/// A served zone with the warnings `named` gives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warned {
    pub uuid: String,
    pub domain: String,
    pub warnings: Vec<ApiError>,
}

/// What to do with a batch, before BIND's check.
#[derive(Debug, Default)]
pub struct Decision {
    /// Files to write, check and (if BIND takes them) install.
    pub writes: Vec<Write>,
    /// Zones deleted: their files leave `named`.
    pub removals: Vec<Removal>,
    /// Every record this batch changes, as it is once the batch is done;
    /// the records of `writes` still as if BIND took every file.
    pub records: BTreeMap<String, ZoneRecord>,
    /// Zones held by the decision itself.
    pub held: Vec<Held>,
    /// Zones whose content is unchanged.
    pub unchanged: usize,
}

/// A decision with BIND's verdict on its files.
#[derive(Debug, Default)]
pub struct Commit {
    /// Files BIND took: install them.
    pub install: Vec<Write>,
    /// Files to archive, before anything is installed.
    pub archive: Vec<Removal>,
    /// Records to save.
    pub records: BTreeMap<String, ZoneRecord>,
    /// Every zone held after this batch's changes.
    pub held: Vec<Held>,
    /// Installed zones with warnings.
    pub warned: Vec<Warned>,
    pub unchanged: usize,
}

/// Decides a batch. Later changes for the same uuid replace earlier ones.
pub fn decide(
    world: &World<'_>,
    disk: &dyn Disk,
    changes: Vec<Wanted>,
    settings: &Settings<'_>,
    now: Now,
) -> Decision {
    let mut last: BTreeMap<String, Wanted> = BTreeMap::new();
    for change in changes {
        last.insert(change.uuid.clone(), change);
    }
    // Who serves which domain once this batch is applied: domains of zones
    // deleted or moving to another domain are freed first.
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut freed: Vec<String> = Vec::new();
    // The serials of files leaving this batch: a zone taking the domain
    // must go past them.
    let mut leaving: HashMap<String, u32> = HashMap::new();
    for (uuid, change) in &last {
        let Some(d) = world.records.get(uuid).and_then(|r| r.deployed.as_ref()) else {
            continue;
        };
        let stays = change
            .zone
            .as_ref()
            .and_then(|z| name::parse_domain(&z.domain).ok())
            .is_some_and(|n| n.as_str() == d.domain);
        if !stays {
            freed.push(d.domain.clone());
            // A signer may have served past the file's serial.
            let signed = world
                .records
                .get(uuid)
                .and_then(|r| r.signer.as_ref()?.served);
            let serial = signed.map_or(d.serial, |s| serial::max(s, d.serial));
            leaving.insert(d.domain.clone(), serial);
        }
    }
    // Held zones that wait for a freed domain are decided again.
    if !freed.is_empty() {
        let freed: HashSet<&str> = freed.iter().map(String::as_str).collect();
        for uuid in world.held {
            if last.contains_key(uuid) {
                continue;
            }
            let Some(zone) = world.records.get(uuid).and_then(|r| r.zone.as_ref()) else {
                continue;
            };
            if name::parse_domain(&zone.domain).is_ok_and(|n| freed.contains(n.as_str())) {
                last.insert(uuid.clone(), Wanted::put(zone.clone()));
            }
        }
        for domain in freed {
            owner.insert(domain.to_owned(), String::new());
        }
    }
    let mut out = Decision::default();
    for (uuid, change) in last {
        let before = world.records.get(&uuid);
        let mut record = before.cloned().unwrap_or_else(ZoneRecord::empty);
        if let Some(seq) = change.last_seq {
            record.last_seq = Some(seq);
        }
        if let Some(ids) = change.recent_ids {
            record.recent_ids = ids;
        }
        match change.zone {
            None => {
                if let Some(d) = record.deployed.take() {
                    // A signer may have served past the file's serial.
                    let signed = record.signer.as_ref().and_then(|s| s.served);
                    let serial = signed.map_or(d.serial, |s| serial::max(s, d.serial));
                    out.removals.push(Removal {
                        uuid: uuid.clone(),
                        domain: d.domain.clone(),
                        serial,
                    });
                    record.archived = Some(Archived {
                        domain: d.domain,
                        serial,
                    });
                }
                let existed = before.is_some_and(|r| r.zone.is_some());
                if existed || change.last_seq.is_some() || !change.events.is_empty() {
                    record.zone = None;
                    record.held.clear();
                    record.held_by.clear();
                    record.warnings.clear();
                    out.records.insert(uuid, record);
                }
            }
            Some(zone) => {
                let events = change.events;
                let ctx = ZoneContext {
                    world,
                    disk,
                    settings,
                    now,
                    leaving: &leaving,
                };
                decide_zone(&ctx, &mut owner, &uuid, zone, &events, record, &mut out);
            }
        }
    }
    out
}

/// What deciding one zone reads.
struct ZoneContext<'a> {
    world: &'a World<'a>,
    disk: &'a dyn Disk,
    settings: &'a Settings<'a>,
    now: Now,
    /// Serials of files leaving in this batch, by domain.
    leaving: &'a HashMap<String, u32>,
}

/// Decides one wanted zone into `out`.
fn decide_zone(
    ctx: &ZoneContext<'_>,
    owner: &mut HashMap<String, String>,
    uuid: &str,
    zone: Zone,
    events: &[String],
    mut record: ZoneRecord,
    out: &mut Decision,
) {
    let (world, disk, settings) = (ctx.world, ctx.disk, ctx.settings);
    let settled = !settings.force
        && !record.is_held()
        && record.zone.as_ref() == Some(&zone)
        && record.deployed.as_ref().is_some_and(|d| {
            d.config_hash == settings.config_hash
                && !world.dirty.contains(&d.domain)
                && disk.file_exists(&d.domain)
        });
    record.zone = Some(zone);
    if settled {
        out.unchanged += 1;
        out.records.insert(uuid.to_owned(), record);
        return;
    }
    let zone = record.zone.as_ref().unwrap_or_else(|| unreachable!());
    let domain_shown = zone.domain.clone();
    let hold = |mut record: ZoneRecord, errors: Vec<ApiError>, out: &mut Decision| {
        record.held_by.extend(events.iter().cloned());
        if record.held_by.len() > HELD_BY {
            let extra = record.held_by.len() - HELD_BY;
            record.held_by.drain(..extra);
        }
        record.held.clone_from(&errors);
        out.held.push(Held {
            uuid: uuid.to_owned(),
            domain: record
                .deployed
                .as_ref()
                .map_or(domain_shown.clone(), |d| d.domain.clone()),
            errors,
            events: record.held_by.clone(),
        });
        out.records.insert(uuid.to_owned(), record);
    };
    if zone.records.len() > settings.max_records {
        let e = ApiError::new(
            "too_many_records",
            Some("records"),
            format!(
                "the zone has {} records; at most {} are served (zone.max_records)",
                zone.records.len(),
                settings.max_records
            ),
        );
        return hold(record, vec![e], out);
    }
    let valid = match validate::validate(zone, settings.zone) {
        Ok(v) => v,
        Err(errors) => return hold(record, errors, out),
    };
    let domain = valid.origin.as_str().to_owned();
    if let Some(place) = world.reserved.get(&domain) {
        let e = ApiError::new(
            "domain_conflict",
            Some("domain"),
            format!("`{domain}` is a zone of named's own configuration ({place})"),
        );
        return hold(record, vec![e], out);
    }
    let current = owner
        .get(&domain)
        .map(String::as_str)
        .or_else(|| world.served.get(&domain).map(String::as_str))
        .filter(|o| !o.is_empty());
    if let Some(other) = current.filter(|o| *o != uuid) {
        let e = ApiError::new(
            "domain_conflict",
            Some("domain"),
            format!("`{domain}` is already served by zone {other}"),
        );
        return hold(record, vec![e], out);
    }
    owner.insert(domain.clone(), uuid.to_owned());
    let rendered = RenderedZone::new(&valid, settings.render);
    let same_file = record.deployed.as_ref().is_some_and(|d| {
        d.domain == domain
            && d.content_hash == rendered.hash
            && !world.dirty.contains(&domain)
            && disk.file_exists(&domain)
    });
    record.held.clear();
    record.held_by.clear();
    record.warnings.clone_from(&valid.warnings);
    if same_file && !settings.force {
        if let Some(d) = record.deployed.as_mut() {
            settings.config_hash.clone_into(&mut d.config_hash);
        }
        out.unchanged += 1;
        out.records.insert(uuid.to_owned(), record);
        return;
    }
    // The serial moves past everything this domain served before: this
    // zone's own file, a deleted zone's, and whatever the file on disk says.
    let floor = [
        record.deployed.as_ref().map(|d| d.serial),
        record
            .archived
            .as_ref()
            .filter(|a| a.domain == domain)
            .map(|a| a.serial),
        world.floors.get(&domain).copied(),
        ctx.leaving.get(&domain).copied(),
        disk.file_serial(&domain),
        // What named's signer serves (inline signing runs ahead).
        record.signer.as_ref().and_then(|s| s.served),
    ]
    .into_iter()
    .flatten()
    .reduce(serial::max);
    let serial = serial::next(settings.serial, floor, ctx.now);
    let replaces = record
        .deployed
        .as_ref()
        .filter(|d| d.domain != domain)
        .map(|d| Archived {
            domain: d.domain.clone(),
            serial: d.serial,
        });
    let known = world.served.contains_key(&domain);
    out.writes.push(Write {
        uuid: uuid.to_owned(),
        text: rendered.with_serial(serial),
        hash: rendered.hash.clone(),
        origin: valid.origin,
        serial,
        known,
        replaces,
        warnings: valid.warnings,
        events: events.to_vec(),
    });
    record.deployed = Some(Deployed {
        domain,
        serial,
        content_hash: rendered.hash,
        config_hash: settings.config_hash.to_owned(),
    });
    out.records.insert(uuid.to_owned(), record);
}

impl Decision {
    /// Takes BIND's verdict: `refused` maps the uuid of each file BIND did
    /// not load to its reasons; `warnings` the uuid of loaded files to what
    /// BIND warned about. A refused zone is held with the reasons and keeps
    /// what it served before (`before`: the records as they were).
    pub fn settle(
        self,
        before: &BTreeMap<String, ZoneRecord>,
        refused: &HashMap<String, Vec<ApiError>>,
        bind_warnings: &HashMap<String, Vec<ApiError>>,
    ) -> Commit {
        let mut commit = Commit {
            archive: self.removals,
            records: self.records,
            held: self.held,
            unchanged: self.unchanged,
            ..Commit::default()
        };
        for mut write in self.writes {
            if let Some(errors) = refused.get(&write.uuid) {
                if let Some(record) = commit.records.get_mut(&write.uuid) {
                    let old = before.get(&write.uuid);
                    record.deployed = old.and_then(|r| r.deployed.clone());
                    record.warnings = old.map(|r| r.warnings.clone()).unwrap_or_default();
                    record.held.clone_from(errors);
                    let mut by = old.map(|r| r.held_by.clone()).unwrap_or_default();
                    by.extend(write.events.iter().cloned());
                    if by.len() > HELD_BY {
                        by.drain(..by.len() - HELD_BY);
                    }
                    record.held_by = by;
                    commit.held.push(Held {
                        uuid: write.uuid.clone(),
                        domain: write.domain().to_owned(),
                        errors: errors.clone(),
                        events: record.held_by.clone(),
                    });
                }
                continue;
            }
            // The agent's own warnings already carry named's words (the
            // oracle test holds them to it); BIND's lines are added only
            // for what the agent did not foresee.
            if let Some(extra) = bind_warnings
                .get(&write.uuid)
                .filter(|_| write.warnings.is_empty())
            {
                write.warnings.extend(extra.iter().cloned());
                if let Some(record) = commit.records.get_mut(&write.uuid) {
                    record.warnings.extend(extra.iter().cloned());
                }
            }
            if let Some(old) = &write.replaces {
                commit.archive.push(Removal {
                    uuid: write.uuid.clone(),
                    domain: old.domain.clone(),
                    serial: old.serial,
                });
            }
            if !write.warnings.is_empty() {
                commit.warned.push(Warned {
                    uuid: write.uuid.clone(),
                    domain: write.domain().to_owned(),
                    warnings: write.warnings.clone(),
                });
            }
            commit.install.push(write);
        }
        // A domain another file of this batch takes is not archived after
        // it is installed: the archive moves the old file first.
        commit
    }
}

/// Every zone's record, with the indexes a decision reads (who serves
/// which domain, which zones are held, the serial floors of deleted
/// zones). [`Zones::absorb`] is the one place that says how a carried-out
/// commit changes them; the deployer and the tests both go through it.
#[derive(Debug, Default, Clone)]
pub struct Zones {
    records: BTreeMap<String, ZoneRecord>,
    served: HashMap<String, String>,
    held: BTreeSet<String>,
    floors: HashMap<String, u32>,
    /// How many records have a desired zone (not deleted): kept here so a
    /// status line after each pass does not count every record.
    desired: usize,
}

/// How a commit changed what `named` has.
#[derive(Debug, Default)]
pub struct Absorbed {
    /// The set of served domains changed (the include must be rewritten).
    pub set_changed: bool,
    /// Installed zones `named` already had (reload).
    pub known: Vec<Name>,
    /// Installed zones new to `named` (reconfig).
    pub fresh: Vec<Name>,
    /// Domains that left `named`.
    pub left: Vec<String>,
}

impl Zones {
    /// Builds the indexes over `records`; `floors`: serials of archived
    /// files known from elsewhere (older archives on disk).
    pub fn new(records: BTreeMap<String, ZoneRecord>, mut floors: HashMap<String, u32>) -> Zones {
        let mut served = HashMap::new();
        let mut held = BTreeSet::new();
        for (uuid, r) in &records {
            if let Some(d) = &r.deployed {
                served.insert(d.domain.clone(), uuid.clone());
            }
            if r.is_held() {
                held.insert(uuid.clone());
            }
            if let Some(a) = &r.archived {
                let e = floors.entry(a.domain.clone()).or_insert(a.serial);
                *e = serial::max(*e, a.serial);
            }
        }
        let desired = records.values().filter(|r| r.zone.is_some()).count();
        Zones {
            records,
            served,
            held,
            floors,
            desired,
        }
    }

    /// How many zones are desired (not deleted).
    pub fn desired_count(&self) -> usize {
        self.desired
    }

    /// Every zone's record, by uuid (deleted zones' too).
    pub fn records(&self) -> &BTreeMap<String, ZoneRecord> {
        &self.records
    }

    /// The uuid of the zone whose file serves `domain`.
    pub fn served_by(&self, domain: &str) -> Option<&str> {
        self.served.get(domain).map(String::as_str)
    }

    /// Every served domain.
    pub fn served_domains(&self) -> impl Iterator<Item = &str> {
        self.served.keys().map(String::as_str)
    }

    /// How many domains are served.
    pub fn served_count(&self) -> usize {
        self.served.len()
    }

    /// How many zones are held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// What is remembered of a zone for folding its events.
    pub fn memory(&self, uuid: &str) -> Memory {
        self.records
            .get(uuid)
            .map(|r| Memory {
                zone: r.zone.clone(),
                last_seq: r.last_seq,
                recent_ids: r.recent_ids.clone(),
            })
            .unwrap_or_default()
    }

    /// Notes the serial `named` was seen serving for a signed zone: the
    /// next file's serial goes past it ([`crate::dnssec`]).
    pub fn note_served(&mut self, uuid: &str, served: u32) {
        if let Some(signer) = self.records.get_mut(uuid).and_then(|r| r.signer.as_mut()) {
            signer.served = Some(signer.served.map_or(served, |s| serial::max(s, served)));
        }
    }

    /// The world a decision sees.
    pub fn world<'a>(
        &'a self,
        reserved: &'a BTreeMap<String, String>,
        dirty: &'a HashSet<String>,
    ) -> World<'a> {
        World {
            records: &self.records,
            served: &self.served,
            held: &self.held,
            reserved,
            floors: &self.floors,
            dirty,
        }
    }

    /// Decides a batch and takes it in as if BIND loaded every file it
    /// writes: the engine without its shell, for dry reasoning about a
    /// sequence of batches (the tests of the order of events, the hostile
    /// corpus). Returns the commit; its records are those taken in.
    pub fn apply_unchecked(
        &mut self,
        disk: &dyn Disk,
        changes: Vec<Wanted>,
        settings: &Settings<'_>,
        reserved: &BTreeMap<String, String>,
        now: Now,
    ) -> Commit {
        let dirty = HashSet::new();
        let decision = decide(&self.world(reserved, &dirty), disk, changes, settings, now);
        let commit = decision.settle(&self.records, &HashMap::new(), &HashMap::new());
        let records = commit.records.clone();
        self.absorb(&commit.archive, &commit.install, records);
        commit
    }

    /// Takes in a commit whose files are archived and installed and whose
    /// records are saved.
    pub fn absorb(
        &mut self,
        archive: &[Removal],
        install: &[Write],
        records: BTreeMap<String, ZoneRecord>,
    ) -> Absorbed {
        let mut out = Absorbed::default();
        for r in archive {
            if self.served.get(&r.domain) == Some(&r.uuid) {
                self.served.remove(&r.domain);
                out.left.push(r.domain.clone());
                out.set_changed = true;
            }
            let e = self.floors.entry(r.domain.clone()).or_insert(r.serial);
            *e = serial::max(*e, r.serial);
        }
        for w in install {
            if w.known {
                out.known.push(w.origin.clone());
            } else {
                out.fresh.push(w.origin.clone());
            }
            if self
                .served
                .insert(w.domain().to_owned(), w.uuid.clone())
                .is_none()
            {
                out.set_changed = true;
            }
        }
        // A domain that left and came back in one batch is served again.
        out.left.retain(|d| !self.served.contains_key(d));
        for (uuid, record) in records {
            if record.is_held() {
                self.held.insert(uuid.clone());
            } else {
                self.held.remove(&uuid);
            }
            let now_desired = record.zone.is_some();
            let was_desired = self
                .records
                .insert(uuid, record)
                .is_some_and(|r| r.zone.is_some());
            self.desired = self.desired + usize::from(now_desired) - usize::from(was_desired);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::zone::Record;

    struct NoDisk;
    impl Disk for NoDisk {
        fn file_exists(&self, _: &str) -> bool {
            true
        }
        fn file_serial(&self, _: &str) -> Option<u32> {
            None
        }
    }

    fn defaults() -> ZoneDefaults {
        ZoneDefaults {
            default_ttl: 3600,
            nameservers: vec![name::parse_domain("ns1.example.net").unwrap()],
            strict: false,
        }
    }

    fn render() -> RenderOptions {
        RenderOptions {
            soa: crate::render::SoaFields {
                mname: name::parse_domain("ns1.example.net").unwrap(),
                rname: name::parse_domain("hostmaster.example.net").unwrap(),
                refresh: 1,
                retry: 2,
                expire: 3,
                minimum: 4,
            },
            default_ttl: 3600,
        }
    }

    fn zone(uuid: &str, domain: &str, records: &[(&str, &str, &str)]) -> Zone {
        Zone {
            uuid: uuid.into(),
            domain: domain.into(),
            created_at: None,
            records: records
                .iter()
                .enumerate()
                .map(|(i, (t, n, v))| Record {
                    uuid: format!("{uuid}-r{i}"),
                    record_type: (*t).into(),
                    name: (*n).into(),
                    value: Some((*v).into()),
                    ttl: None,
                    priority: None,
                    created_at: None,
                })
                .collect(),
        }
    }

    fn now() -> Now {
        Now {
            date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            unix: 0,
        }
    }

    struct Fixture {
        zones: Zones,
        reserved: BTreeMap<String, String>,
        dirty: HashSet<String>,
        defaults: ZoneDefaults,
        render: RenderOptions,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                zones: Zones::default(),
                reserved: BTreeMap::new(),
                dirty: HashSet::new(),
                defaults: defaults(),
                render: render(),
            }
        }

        fn decide(&self, changes: Vec<Wanted>) -> Decision {
            let settings = Settings {
                zone: &self.defaults,
                render: &self.render,
                serial: SerialPolicy::Increment,
                config_hash: "c",
                force: false,
                max_records: 3,
            };
            let world = self.zones.world(&self.reserved, &self.dirty);
            decide(&world, &NoDisk, changes, &settings, now())
        }

        /// Decides, lets BIND take every file, and keeps the result.
        fn run(&mut self, changes: Vec<Wanted>) -> Commit {
            let settings = Settings {
                zone: &self.defaults,
                render: &self.render,
                serial: SerialPolicy::Increment,
                config_hash: "c",
                force: false,
                max_records: 3,
            };
            self.zones
                .apply_unchecked(&NoDisk, changes, &settings, &self.reserved, now())
        }

        fn record(&self, uuid: &str) -> &ZoneRecord {
            &self.zones.records()[uuid]
        }
    }

    #[test]
    fn cname_beside_a_is_held_and_the_a_stays_served() {
        let mut f = Fixture::new();
        let c = f.run(vec![Wanted::put(zone(
            "z",
            "a.test",
            &[("A", "www", "192.0.2.1")],
        ))]);
        assert_eq!(c.install.len(), 1);
        let served = c.install[0].serial;
        let both = zone(
            "z",
            "a.test",
            &[("A", "www", "192.0.2.1"), ("CNAME", "www", "x.example.net")],
        );
        let c = f.run(vec![Wanted::put(both)]);
        assert!(c.install.is_empty());
        assert_eq!(c.held.len(), 1);
        assert_eq!(c.held[0].errors[0].field.as_deref(), Some("name"));
        let record = f.record("z");
        assert_eq!(record.deployed.as_ref().unwrap().serial, served);
        assert_eq!(record.zone.as_ref().unwrap().records.len(), 2);
        // Deleting the A makes the desired zone servable: deployed at once.
        let mut only_cname = zone("z", "a.test", &[("CNAME", "www", "x.example.net")]);
        only_cname.records[0].uuid = "z-r1".into();
        let c = f.run(vec![Wanted::put(only_cname)]);
        assert_eq!(c.install.len(), 1);
        assert!(c.held.is_empty());
        assert!(!f.record("z").is_held());
    }

    #[test]
    fn delete_and_recreate_a_domain_archives_the_old_file_first() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone("old", "v.test", &[]))]);
        let old_serial = f.record("old").deployed.as_ref().unwrap().serial;
        let c = f.run(vec![
            Wanted::delete("old"),
            Wanted::put(zone("new", "v.test", &[("A", "www", "192.0.2.99")])),
        ]);
        assert_eq!(c.archive.len(), 1);
        assert_eq!(c.archive[0].uuid, "old");
        assert_eq!(c.install.len(), 1);
        assert_eq!(c.install[0].uuid, "new");
        // named has the domain already: a reload, and a serial past the old.
        assert!(c.install[0].known);
        assert!(serial::Serial(c.install[0].serial) > serial::Serial(old_serial));
        assert_eq!(f.zones.served_by("v.test"), Some("new"));
    }

    #[test]
    fn a_held_zone_waits_for_its_domain() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone("a", "x.test", &[]))]);
        let c = f.run(vec![Wanted::put(zone("b", "x.test", &[]))]);
        assert_eq!(c.held[0].errors[0].error_code, "domain_conflict");
        // Deleting the first zone frees the domain: the second is served
        // with no change of its own.
        let c = f.run(vec![Wanted::delete("a")]);
        assert_eq!(c.install.len(), 1);
        assert_eq!(c.install[0].uuid, "b");
        assert_eq!(f.zones.served_by("x.test"), Some("b"));
    }

    #[test]
    fn named_conf_zones_are_never_taken() {
        let mut f = Fixture::new();
        f.reserved
            .insert("ops.test".into(), "/etc/bind/named.conf.local".into());
        let c = f.run(vec![Wanted::put(zone("a", "ops.test", &[]))]);
        assert!(c.install.is_empty());
        assert!(c.held[0].errors[0].detail.contains("named's own"));
    }

    #[test]
    fn unchanged_content_keeps_its_serial() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone(
            "a",
            "x.test",
            &[("A", "@", "192.0.2.1")],
        ))]);
        let mut w = Wanted::put(zone("a", "x.test", &[("A", "@", "192.0.2.1")]));
        w.last_seq = Some(9);
        let c = f.run(vec![w]);
        assert!(c.install.is_empty());
        assert_eq!(c.unchanged, 1);
        assert_eq!(f.record("a").last_seq, Some(9));
    }

    #[test]
    fn a_recreated_domain_never_reuses_a_serial_whatever_its_labels() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone("one", "a.zone.test", &[]))]);
        f.run(vec![Wanted::put(zone(
            "one",
            "a.zone.test",
            &[("A", "x", "192.0.2.1")],
        ))]);
        f.run(vec![Wanted::put(zone(
            "one",
            "a.zone.test",
            &[("A", "x", "192.0.2.2")],
        ))]);
        let last = f.record("one").deployed.as_ref().unwrap().serial;
        assert_eq!(last, 3);
        f.run(vec![Wanted::delete("one")]);
        // A later batch, another uuid: the floor is in the records.
        let c = f.run(vec![Wanted::put(zone("two", "a.zone.test", &[]))]);
        assert_eq!(c.install[0].serial, 4);
        // Another domain is not affected by it.
        let c = f.run(vec![Wanted::put(zone("three", "zone.test", &[]))]);
        assert_eq!(c.install[0].serial, 1);
    }

    #[test]
    fn a_zone_over_the_record_limit_is_held() {
        let mut f = Fixture::new();
        let four = [
            ("A", "a", "192.0.2.1"),
            ("A", "b", "192.0.2.2"),
            ("A", "c", "192.0.2.3"),
            ("A", "d", "192.0.2.4"),
        ];
        let c = f.run(vec![Wanted::put(zone("z", "big.test", &four))]);
        assert_eq!(c.held[0].errors[0].error_code, "too_many_records");
        let c = f.run(vec![Wanted::put(zone("z", "big.test", &four[..3]))]);
        assert_eq!(c.install.len(), 1);
    }

    #[test]
    fn a_signers_serial_is_the_floor() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone("a", "s.test", &[]))]);
        let mut r = f.record("a").clone();
        r.signer = Some(crate::store::Signer {
            policy: "default".into(),
            key_directory: "/k".into(),
            served: None,
        });
        f.zones.records.insert("a".into(), r);
        let file = f.record("a").deployed.as_ref().unwrap().serial;
        // named's signer serves past the file: the next file goes past it.
        f.zones.note_served("a", file + 5);
        f.zones.note_served("a", file + 2);
        let c = f.run(vec![Wanted::put(zone(
            "a",
            "s.test",
            &[("A", "www", "192.0.2.1")],
        ))]);
        assert_eq!(c.install[0].serial, file + 6);
        // A re-created domain starts past what the signer served last.
        f.zones.note_served("a", file + 10);
        let c = f.run(vec![Wanted::delete("a")]);
        assert_eq!(c.archive[0].serial, file + 10);
        let c = f.run(vec![Wanted::put(zone("b", "s.test", &[]))]);
        assert_eq!(c.install[0].serial, file + 11);
        // Deleted and re-created in one batch: past the signer too.
        let mut r = f.record("b").clone();
        r.signer = f.record("a").signer.clone();
        f.zones.records.insert("b".into(), r);
        f.zones.note_served("b", file + 20);
        let c = f.run(vec![
            Wanted::delete("b"),
            Wanted::put(zone("c", "s.test", &[("A", "www", "192.0.2.9")])),
        ]);
        assert_eq!(c.install[0].uuid, "c");
        assert_eq!(c.install[0].serial, file + 21);
    }

    #[test]
    fn refused_by_bind_is_held_with_the_old_file() {
        let mut f = Fixture::new();
        f.run(vec![Wanted::put(zone("a", "x.test", &[]))]);
        let before = f.zones.records().clone();
        let d = f.decide(vec![Wanted::put(zone(
            "a",
            "x.test",
            &[("A", "www", "192.0.2.1")],
        ))]);
        let refused = HashMap::from([(
            "a".to_owned(),
            vec![ApiError::new("bind_refused", None, "no")],
        )]);
        let c = d.settle(&before, &refused, &HashMap::new());
        assert!(c.install.is_empty());
        assert_eq!(c.records["a"].deployed, before["a"].deployed);
        assert!(c.records["a"].is_held());
        assert_eq!(c.records["a"].zone.as_ref().unwrap().records.len(), 1);
    }
}
