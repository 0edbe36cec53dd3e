//! Deploying: the shell that carries out what [`crate::decide`] decides.
//!
//! For a batch of wanted zones: decide (pure), write the files to check,
//! let BIND check them ([`crate::check`]), settle the decision with BIND's
//! verdict (pure), then carry it out in an order that survives a crash at
//! any instant: mark the touched domains, archive the files of deleted
//! zones (before any other zone's file can take their domain), rename the
//! checked files into place and touch their mtime (`named` skips a reload
//! when the file is not newer than its last load), save the records
//! durably, rewrite the include file when the set of zones changed, then
//! one `rndc reconfig` and/or `rndc reload` and a check that the new
//! serials are served. A held zone keeps its served file; its desired
//! state and the reasons are saved with it. When `named` cannot be
//! reached, everything stays installed and the zones are marked pending;
//! [`Deployer::retry_pending`] finishes the job later. In fleet mode the
//! catalog zone follows the set of served zones ([`fleet`]): written once
//! per batch that changed the set, and reloaded after the batch's zones
//! are confirmed.

use crate::bind::{conf, control, named_conf, rndc};
use crate::check::{self, CheckError};
use crate::config::{Config, Control};
use crate::decide::{self, Commit, Disk, Held, Removal, Wanted, Warned, Write, Zones};
use crate::dnssec;
use crate::error::ApiError;
use crate::exec;
use crate::fsutil;
use crate::model::name::{self, Name};
use crate::render;
use crate::serial::{self, Now};
use crate::state::Memory;
use crate::store::{Inflight, Store, StoreError, ZoneRecord};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

mod fleet;
pub use fleet::{CatalogState, FleetError, read_key, read_state as read_catalog_state};

/// How to run a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Write every zone even when its content is unchanged.
    pub force: bool,
    /// Decide, render and diff, but change nothing.
    pub dry_run: bool,
}

/// A domain and the serial written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub domain: String,
    pub serial: u32,
}

/// A unified diff of one zone's file (dry runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub domain: String,
    pub diff: String,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<Written>,
    /// Zones whose content did not change.
    pub unchanged: usize,
    /// Domains removed (their files archived).
    pub deleted: Vec<String>,
    /// Zones of this batch whose desired state cannot be served, and why.
    pub held: Vec<Held>,
    /// Zones installed that `named` loads with warnings.
    pub warned: Vec<Warned>,
    pub diffs: Vec<Diff>,
    /// Domains installed but not (yet) confirmed served by `named`.
    pub pending: Vec<String>,
    /// Why `named` could not be told, when it could not.
    pub reload_error: Option<String>,
    /// The catalog zone, when this batch wrote it (fleet mode).
    pub catalog: Option<Written>,
}

/// Failures that stop a whole batch: nothing the batch was about is lost,
/// it can simply be tried again.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("failed to write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The deploy engine: configuration, the locked store, every zone's record
/// in memory and the indexes over them.
pub struct Deployer {
    pub config: Config,
    store: Store,
    /// Every zone's record and the indexes over them.
    zones: Zones,
    /// Domains installed but not confirmed served. Kept in
    /// `state/inflight.json` (one small file for the whole set) rather than
    /// in every zone's record, so confirming 10,000 zones writes one file.
    pending: BTreeSet<String>,
    /// Zones `named.conf` declares itself: domain → where.
    reserved: BTreeMap<String, String>,
    /// Told of each step of a batch: (step, done, total). The CLI draws a
    /// progress bar with it on a terminal.
    pub on_progress: Option<ProgressFn>,
    /// Domains whose installed file this process has read the serial of.
    disk_read: RefCell<HashSet<String>>,
    /// Domains whose install was interrupted by a crash: written again
    /// whatever their hash says.
    dirty: HashSet<String>,
    /// What `state/inflight.json` says now: written before each install,
    /// brought in line with `dirty` and `pending` after the reload.
    inflight: Inflight,
    /// Whether the include file was compared with the state since open
    /// (or since the config changed).
    include_checked: bool,
    /// Fleet mode: the transfer key and the catalog's state.
    fleet: Option<fleet::Fleet>,
    /// How `named` is told: the kept control connection, once made.
    teller: Teller,
}

/// How commands reach `named`: the `rndc` program, or the agent's own
/// control-channel client over one kept connection ([`control`]).
#[derive(Default)]
struct Teller {
    /// The client and the configuration it was made from.
    client: Option<(Control, control::Client)>,
    /// Domains `named` has through `rndc addzone`: kept in its new-zone
    /// database, so never listed in the include file too (named refuses a
    /// zone it has twice: `already exists`).
    added: BTreeSet<String>,
    /// The domains the include file lists, once read or written, and the
    /// options it was written with.
    listed: Option<(BTreeSet<String>, String)>,
    /// What the last include rewrite changed.
    change: IncludeChange,
    /// Domains `named` may still have that no zone serves any more: each
    /// gets a `delzone` until `named` takes it.
    to_delete: BTreeSet<String>,
    /// `named` refused an `addzone` (no `allow-new-zones`): new zones go
    /// through the include for the rest of this run.
    addzone_refused: bool,
}

/// What the last include rewrite changed, for [`Deployer::reload`].
#[derive(Debug, Default)]
struct IncludeChange {
    /// Zones were listed or options changed: only a reconfig loads them.
    /// (Zones the include no longer lists are deleted one by one.)
    grew: bool,
}

/// Most new zones of one batch given to `named` one `addzone` each; a
/// larger batch (an import) goes through the include and one reconfig.
const MAX_ADDZONE: usize = 64;

/// Why `named` did not take a command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TellError {
    #[error(transparent)]
    Tool(#[from] exec::ToolError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error("failed to read the control channel's key")]
    Key(#[from] control::KeyError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

impl TellError {
    /// Which refusal it is, whichever way the command went.
    fn says(&self, words: &str) -> bool {
        match self {
            TellError::Tool(e) => rndc::says(e, words),
            TellError::Control(control::ControlError::Refused { message, .. }) => {
                message.contains(words)
            }
            _ => false,
        }
    }

    /// `named` itself refused (as opposed to not being reached).
    fn refused(&self) -> bool {
        matches!(
            self,
            TellError::Tool(exec::ToolError::Failed(_))
                | TellError::Control(control::ControlError::Refused { .. })
        )
    }
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("config", &self.config)
            .field("zones", &self.zones.records().len())
            .finish_non_exhaustive()
    }
}

/// A progress callback: (step, done, total).
pub type ProgressFn = Box<dyn FnMut(Step, u64, u64)>;

/// The steps of a batch, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Render,
    Check,
    Install,
    Confirm,
}

impl Step {
    /// A word for the step.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Render => "rendering",
            Step::Check => "checking",
            Step::Install => "installing",
            Step::Confirm => "waiting for named",
        }
    }
}

/// What `named` must be told after a batch.
#[derive(Debug, Default)]
struct Reload {
    /// The include changed or zones are new to named.
    reconfig: bool,
    /// Zones of this batch `named` already has.
    known: Vec<Name>,
    /// Zones of this batch `named` does not have yet (the reconfig loads
    /// them).
    fresh: Vec<Name>,
}

/// The disk as [`decide`] sees it.
struct ZonesDir<'a> {
    dir: &'a Path,
    dirty: &'a HashSet<String>,
    read: &'a RefCell<HashSet<String>>,
}

impl Disk for ZonesDir<'_> {
    fn file_exists(&self, domain: &str) -> bool {
        !self.dirty.contains(domain) && self.dir.join(format!("{domain}.zone")).is_file()
    }

    /// Read once per process: after that, this process is the file's only
    /// writer and the record knows its serial.
    fn file_serial(&self, domain: &str) -> Option<u32> {
        if !self.read.borrow_mut().insert(domain.to_owned()) {
            return None;
        }
        fs::read_to_string(self.dir.join(format!("{domain}.zone")))
            .ok()
            .and_then(|t| soa_serial(&t))
    }
}

impl Deployer {
    /// Opens the state directory (taking its lock) and loads every zone's
    /// record.
    pub fn open(config: Config) -> Result<Deployer, DeployError> {
        let store = Store::open(&config.paths.state)?;
        let records = store.load_all()?;
        let inflight = store.load_inflight()?;
        let pending: BTreeSet<String> = inflight.pending.iter().cloned().collect();
        let dirty: HashSet<String> = inflight.installing.iter().cloned().collect();
        if !dirty.is_empty() {
            tracing::warn!(
                zones = dirty.len(),
                "an install was interrupted; those zones are written again"
            );
        }
        clean_leftovers(&config.paths.zones);
        let added: BTreeSet<String> = store.load_added()?.into_iter().collect();
        let zones = Zones::new(records, archived_serials(&config.paths.zones));
        let fleet = fleet::Fleet::open_for(&config, &zones)?;
        let pending = pending
            .into_iter()
            .filter(|d| zones.served_by(d).is_some())
            .collect();
        let mut deployer = Deployer {
            config,
            store,
            zones,
            pending,
            reserved: BTreeMap::new(),
            on_progress: None,
            disk_read: RefCell::new(HashSet::new()),
            include_checked: false,
            dirty,
            inflight,
            fleet,
            teller: Teller {
                added,
                ..Teller::default()
            },
        };
        deployer.read_named_conf();
        deployer.reserve_catalog();
        Ok(deployer)
    }

    /// Every zone's record, by uuid (deleted zones' too).
    pub fn records(&self) -> &BTreeMap<String, ZoneRecord> {
        self.zones.records()
    }

    /// What is remembered of a zone for folding its events.
    pub fn memory(&self, uuid: &str) -> Memory {
        self.zones.memory(uuid)
    }

    /// The desired zones (those not deleted).
    pub fn zone_count(&self) -> usize {
        self.zones.desired_count()
    }

    /// How many zones are held.
    pub fn held_count(&self) -> usize {
        self.zones.held_count()
    }

    /// Domains installed but not confirmed served (the catalog's too).
    pub fn pending(&self) -> Vec<String> {
        self.pending
            .iter()
            .cloned()
            .chain(self.catalog_pending())
            .collect()
    }

    /// Fleet mode's guard against emptying the fleet by accident: whether
    /// `changes` may remove the zones they remove (see
    /// [`crate::catalog::removal_allowed`]). Always allowed outside fleet
    /// mode and with `allow` (`--allow-mass-delete`).
    pub fn check_removals(&self, changes: &[Wanted], allow: bool) -> Result<(), ApiError> {
        let Some(cat) = self.config.catalog.as_ref().filter(|_| !allow) else {
            return Ok(());
        };
        let records = self.records();
        let removed = changes
            .iter()
            .filter(|w| w.zone.is_none())
            .filter(|w| records.get(&w.uuid).is_some_and(|r| r.zone.is_some()))
            .map(|w| w.uuid.as_str())
            .collect::<HashSet<_>>()
            .len();
        crate::catalog::removal_allowed(self.zone_count(), removed, cat.max_removal_share)
    }

    /// Each domain installed but not confirmed served, with the serial it
    /// waits for.
    pub fn pending_serials(&self) -> Vec<(String, u32)> {
        self.pending
            .iter()
            .filter_map(|d| {
                let uuid = self.zones.served_by(d)?;
                let serial = self.records().get(uuid)?.deployed.as_ref()?.serial;
                Some((d.clone(), serial))
            })
            .collect()
    }

    /// Reads the zones `named.conf` declares itself (`bind.named_conf`,
    /// or `/etc/bind/named.conf` when it exists); a customer zone of the
    /// same name is held, never given to `named`. Called at start and on
    /// SIGHUP.
    pub fn read_named_conf(&mut self) {
        let conf = self.config.bind.named_conf.clone();
        if !conf.is_file() {
            tracing::debug!(conf = %conf.display(), "no named.conf to read zones from");
            return;
        }
        let argv = named_conf::argv(&self.config.bind.checkconf, &conf);
        match exec::run(&argv) {
            Ok(out) => {
                if let Some(d) = &self.config.dnssec
                    && !dnssec::policy_defined(&out.stdout, &d.policy)
                {
                    tracing::warn!(policy = %d.policy, conf = %conf.display(), "dnssec.policy is neither built in nor defined in named.conf: named will refuse its configuration");
                }
                let zones = named_conf::declared_zones(&out.stdout);
                self.reserved = named_conf::foreign_zones(&zones, &self.config.paths.zones, &conf);
                tracing::debug!(zones = self.reserved.len(), conf = %conf.display(), "zones named.conf declares");
            }
            Err(e) => {
                tracing::warn!(conf = %conf.display(), error = %e, "cannot read named's configuration; its own zones are not known");
            }
        }
    }

    /// The catalog's name is no customer's: a zone of that name is held.
    fn reserve_catalog(&mut self) {
        if let Some(cat) = &self.config.catalog {
            self.reserved.insert(
                cat.zone.as_str().to_owned(),
                "the catalog zone of zoneagent's [catalog]".to_owned(),
            );
        }
    }

    /// Writes again the zones of an interrupted install (see
    /// [`Store::mark_installing`]); a no-op when there are none.
    pub fn recover(&mut self, now: Now) -> Result<Report, DeployError> {
        if self.dirty.is_empty() {
            return Ok(Report::default());
        }
        let changes = self
            .records()
            .values()
            .filter(|r| {
                r.deployed
                    .as_ref()
                    .is_some_and(|d| self.dirty.contains(&d.domain))
            })
            .filter_map(|r| r.zone.clone().map(Wanted::put))
            .collect();
        // A domain no record serves got its file from a batch whose records
        // were never saved: nothing owns the file (the events are still in
        // the spool and write it again), so it goes.
        for d in &self.dirty {
            if self.zones.served_by(d).is_none() {
                let file = self.zone_file(d);
                match fs::remove_file(&file) {
                    Ok(()) => {
                        tracing::info!(domain = %d, "removed the file of an install that never finished");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&file)(e)),
                }
            }
        }
        let report = self.apply(changes, Options::default(), now)?;
        // Dirty domains no zone has any more (deleted meanwhile) are done.
        self.dirty.clear();
        self.settle_inflight();
        Ok(report)
    }

    /// Every desired zone, wanted again as it is: after a configuration
    /// change, or for `rebuild`. `only`: these A-label domains.
    pub fn everything(&self, only: &BTreeSet<String>) -> Vec<Wanted> {
        self.records()
            .values()
            .filter_map(|r| r.zone.as_ref())
            .filter(|z| {
                only.is_empty()
                    || name::parse_domain(&z.domain).is_ok_and(|n| only.contains(n.as_str()))
            })
            .map(|z| Wanted::put(z.clone()))
            .collect()
    }

    /// Replaces the configuration (SIGHUP); the include file is compared
    /// again at the next batch, since per-zone options may have changed.
    pub fn set_config(&mut self, mut config: Config) {
        if config.catalog != self.config.catalog {
            match fleet::Fleet::open_for(&config, &self.zones) {
                Ok(f) => self.fleet = f,
                Err(e) => {
                    tracing::error!(error = %e, "the new [catalog] cannot be used; keeping the old one");
                    config.catalog.clone_from(&self.config.catalog);
                }
            }
        }
        self.config = config;
        // Per-zone options (signing) may have changed: the include is looked
        // at afresh, and a rewrite then reconfigures named.
        self.include_checked = false;
        self.teller.listed = None;
        self.read_named_conf();
        self.reserve_catalog();
    }

    /// Path of a domain's zone file.
    pub fn zone_file(&self, domain: &str) -> PathBuf {
        self.config.paths.zones.join(format!("{domain}.zone"))
    }

    fn progress(&mut self, step: Step, done: u64, total: u64) {
        if let Some(f) = self.on_progress.as_mut() {
            f(step, done, total);
        }
    }

    /// Applies a batch of wanted zones. Per-zone outcomes (held, warned)
    /// are in the [`Report`]; an `Err` means the batch did nothing durable
    /// and can be retried as a whole.
    pub fn apply(
        &mut self,
        changes: Vec<Wanted>,
        options: Options,
        now: Now,
    ) -> Result<Report, DeployError> {
        let started = Instant::now();
        let config_hash = render::config_hash(&self.config.render, &self.config.zone);
        self.note_signed_serials(&changes);
        let decision = {
            let world = self.zones.world(&self.reserved, &self.dirty);
            let disk = ZonesDir {
                dir: &self.config.paths.zones,
                dirty: &self.dirty,
                read: &self.disk_read,
            };
            let settings = decide::Settings {
                zone: &self.config.zone,
                render: &self.config.render,
                serial: self.config.serial,
                config_hash: &config_hash,
                force: options.force,
                max_records: self.config.max_records,
            };
            decide::decide(&world, &disk, changes, &settings, now)
        };
        let total = decision.writes.len() as u64;
        self.progress(Step::Render, total, total);
        if options.dry_run {
            return Ok(self.dry_run(decision));
        }
        let zones_dir = self.config.paths.zones.clone();
        fsutil::ensure_dir(&zones_dir).map_err(io_err(&zones_dir))?;
        let rendered_at = Instant::now();
        self.progress(Step::Check, 0, total);
        // What a crash must find in inflight.json is written while BIND
        // checks: every file of the decision may be installed.
        let early = self.inflight_for(
            decision
                .writes
                .iter()
                .map(Write::domain)
                .chain(decision.removals.iter().map(|r| r.domain.as_str())),
            decision.writes.iter().map(Write::domain),
        );
        let write_early = !covers(&self.inflight, &early);
        let store = &self.store;
        let (verdict, marked) = check::check(&self.config, &decision.writes, || {
            write_early.then(|| store.save_inflight(&early))
        });
        if let Some(marked) = marked {
            marked?;
            self.inflight = early;
        }
        let verdict = verdict?;
        let checked_at = Instant::now();
        let mut refused = verdict.refused;
        for (uuid, problems) in self.policy_refusals(&decision) {
            refused.entry(uuid).or_default().extend(problems);
        }
        let mut commit = decision.settle(self.records(), &refused, &verdict.warnings);
        dnssec::mark_signers(&mut commit.records, self.config.dnssec.as_ref());
        // A record that comes out as it was is not saved again: a no-op
        // rebuild writes nothing.
        let before = self.zones.records();
        commit
            .records
            .retain(|uuid, record| before.get(uuid) != Some(record));
        self.progress(Step::Install, 0, commit.install.len() as u64);
        let (mut report, reload) = self.carry_out(commit, now)?;
        let saved_at = Instant::now();
        self.reload(&reload, &mut report);
        if !report.written.is_empty() || !report.deleted.is_empty() {
            crate::metrics::deploy_phases(started, rendered_at, checked_at, saved_at);
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis();
            tracing::info!(
                zones = report.written.len(),
                deleted = report.deleted.len(),
                held = report.held.len(),
                render_ms = ms(started, rendered_at),
                check_ms = ms(rendered_at, checked_at),
                install_and_save_ms = ms(checked_at, saved_at),
                reload_and_confirm_ms = ms(saved_at, Instant::now()),
                "deployed"
            );
        }
        for h in &report.held {
            let esc = crate::logtext::Escaped;
            let _zone = tracing::warn_span!("zone", domain = %esc(&h.domain), uuid = %esc(&h.uuid))
                .entered();
            tracing::warn!(
                events = %esc(&h.events.join(",")),
                errors = %esc(&crate::error::ApiErrors(h.errors.clone()).to_string()),
                "zone held: named would refuse it; its last good version stays served"
            );
        }
        Ok(report)
    }

    /// The serial `named`'s signer serves now for the signed zones of
    /// this batch: their next file's serial must go past it, or named
    /// would take the file's content under a serial of its own and the
    /// confirmation could not tell the change is served.
    fn note_signed_serials(&mut self, changes: &[Wanted]) {
        let signed: Vec<(&str, &str)> = changes
            .iter()
            .filter_map(|c| {
                let r = self.zones.records().get(&c.uuid)?;
                r.signer.as_ref()?;
                Some((c.uuid.as_str(), r.deployed.as_ref()?.domain.as_str()))
            })
            .collect();
        if signed.is_empty() {
            return;
        }
        let served = dnssec::probe::served_serials(
            self.config.bind.server,
            signed.iter().map(|(_, d)| *d),
            Duration::from_secs(2),
        );
        let noted: Vec<(String, u32)> = signed
            .iter()
            .filter_map(|(uuid, d)| Some(((*uuid).to_owned(), *served.get(*d)?)))
            .collect();
        for (uuid, serial) in noted {
            self.zones.note_served(&uuid, serial);
        }
    }

    /// Files `named` would refuse under their zone's signing policy,
    /// which its checker does not see; their checked files are dropped.
    fn policy_refusals(
        &self,
        decision: &decide::Decision,
    ) -> HashMap<String, Vec<crate::error::ApiError>> {
        let mut out = HashMap::new();
        for w in &decision.writes {
            let Some(record) = decision.records.get(&w.uuid) else {
                continue;
            };
            let signer = dnssec::signer(
                self.config.dnssec.as_ref(),
                w.domain(),
                record.signer.as_ref(),
            );
            let (Some(signer), Some(zone)) = (signer, record.zone.as_ref()) else {
                continue;
            };
            let problems =
                dnssec::policy_problems(&signer.policy, zone, self.config.zone.default_ttl);
            if !problems.is_empty() {
                let _ = fs::remove_file(check::temp_file(&self.config.paths.zones, w.domain()));
                out.insert(w.uuid.clone(), problems);
            }
        }
        out
    }

    /// What a batch would do, without doing it.
    fn dry_run(&self, decision: decide::Decision) -> Report {
        let mut report = Report {
            unchanged: decision.unchanged,
            held: decision.held,
            deleted: decision.removals.into_iter().map(|r| r.domain).collect(),
            ..Report::default()
        };
        for w in &decision.writes {
            let old = fs::read_to_string(self.zone_file(w.domain())).unwrap_or_default();
            let diff = similar::TextDiff::from_lines(&old, &w.text)
                .unified_diff()
                .header(
                    &format!("a/{}.zone", w.domain()),
                    &format!("b/{}.zone", w.domain()),
                )
                .to_string();
            report.diffs.push(Diff {
                domain: w.domain().to_owned(),
                diff,
            });
            report.written.push(Written {
                domain: w.domain().to_owned(),
                serial: w.serial,
            });
        }
        report
    }

    /// Carries out a settled decision: files, records, include. Returns
    /// the report so far; the reload comes after.
    fn carry_out(&mut self, commit: Commit, now: Now) -> Result<(Report, Reload), DeployError> {
        // From here until the records are saved, a crash leaves files and
        // records out of step, and named without the new files: say so
        // durably first (usually written already, while BIND checked).
        if !commit.install.is_empty() || !commit.archive.is_empty() {
            let needed = self.inflight_for(
                commit
                    .install
                    .iter()
                    .map(Write::domain)
                    .chain(commit.archive.iter().map(|r| r.domain.as_str())),
                commit.install.iter().map(Write::domain),
            );
            if !covers(&self.inflight, &needed) {
                self.store.save_inflight(&needed)?;
                self.inflight = needed;
            }
        }
        // Archive first: a file is moved away by the identity of the zone
        // that leaves, before another zone's file can take its domain.
        let installing: HashSet<&str> = commit.install.iter().map(Write::domain).collect();
        for r in &commit.archive {
            self.archive(r, installing.contains(r.domain.as_str()))?;
        }
        self.install(&commit.install)?;
        let saves: Vec<(&str, &ZoneRecord)> = commit
            .records
            .iter()
            .map(|(u, r)| (u.as_str(), r))
            .collect();
        self.store.save_batch(&saves)?;
        let mut report = Report {
            unchanged: commit.unchanged,
            held: commit.held,
            warned: commit.warned,
            ..Report::default()
        };
        for r in &commit.archive {
            report.deleted.push(r.domain.clone());
        }
        for w in &commit.install {
            self.pending.insert(w.domain().to_owned());
            report.written.push(Written {
                domain: w.domain().to_owned(),
                serial: w.serial,
            });
        }
        let absorbed = self
            .zones
            .absorb(&commit.archive, &commit.install, commit.records);
        for d in &absorbed.left {
            self.pending.remove(d);
        }
        // Files and records agree again; inflight.json catches up after the
        // reload (until then it only says more than is needed).
        for w in &commit.install {
            self.dirty.remove(w.domain());
        }
        for r in &commit.archive {
            self.dirty.remove(&r.domain);
        }
        // Fleet mode: the catalog follows the set of zones, before the
        // include (which names its file) is written.
        self.update_catalog(absorbed.set_changed, now, &mut report)?;
        // The include only changes with the set of zones (or at the first
        // batch, which makes sure it matches the records).
        let include_changed = if absorbed.set_changed || !self.include_checked {
            self.include_checked = true;
            self.write_include()?
        } else {
            false
        };
        let reload = Reload {
            reconfig: include_changed || !absorbed.fresh.is_empty(),
            known: absorbed.known,
            fresh: absorbed.fresh,
        };
        Ok((report, reload))
    }

    /// Renames checked files into place, newest mtime, one directory sync.
    fn install(&self, writes: &[Write]) -> Result<(), DeployError> {
        use nix::sys::stat::{UtimensatFlags, utimensat};
        use nix::sys::time::TimeSpec;
        if writes.is_empty() {
            return Ok(());
        }
        let zones = &self.config.paths.zones;
        let dir = fs::File::open(zones).map_err(io_err(zones))?;
        for w in writes {
            crate::progress::beat();
            let name = format!("{}.zone", w.domain());
            let tmp = check::temp_file(zones, w.domain());
            let path = self.zone_file(w.domain());
            fs::rename(&tmp, &path).map_err(io_err(&path))?;
            // One syscall, relative to the directory: the mtime must be
            // "now", after named's last load, or named skips the reload.
            utimensat(
                &dir,
                name.as_str(),
                &TimeSpec::UTIME_NOW,
                &TimeSpec::UTIME_NOW,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| io_err(&path)(e.into()))?;
        }
        fsutil::sync_dir(zones).map_err(io_err(zones))
    }

    /// Moves a leaving zone's file into `zones/.archive/` (never over an
    /// earlier archived file), by identity: the file at the domain's path
    /// is the leaving zone's only while no other zone serves the domain.
    /// `taken`: another file of this batch takes the domain; the rename
    /// into place comes after this one.
    fn archive(&self, leaving: &Removal, taken: bool) -> Result<(), DeployError> {
        let owner = self.zones.served_by(&leaving.domain);
        if owner.is_some_and(|o| o != leaving.uuid) && !taken {
            // Another zone already serves this domain: its file, not ours.
            return Ok(());
        }
        let path = self.zone_file(&leaving.domain);
        if !path.exists() {
            return Ok(());
        }
        let dir = self.config.paths.zones.join(".archive");
        fsutil::ensure_dir(&dir).map_err(io_err(&dir))?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let base = format!("{}.zone.{}.{stamp}", leaving.domain, leaving.serial);
        let mut target = dir.join(&base);
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{base}.{n}"));
            n += 1;
        }
        fs::rename(&path, &target).map_err(io_err(&target))?;
        // named's files beside it (signed copy, journals) go with it.
        for suffix in dnssec::NAMED_FILES {
            let mut from = path.clone().into_os_string();
            from.push(suffix);
            let mut to = target.clone().into_os_string();
            to.push(suffix);
            if Path::new(&from).exists() {
                fs::rename(&from, &to).map_err(io_err(Path::new(&to)))?;
            }
        }
        // named's journal of the file (ixfr-from-differences, fleet mode)
        // belongs to the file that left: a zone that takes the domain later
        // starts without it.
        let _ = fs::remove_file(
            self.config
                .paths
                .zones
                .join(format!("{}.zone.jnl", leaving.domain)),
        );
        fsutil::sync_dir(&dir).map_err(io_err(&dir))?;
        Ok(())
    }

    /// Rewrites the include file when the set of zones changed; returns
    /// whether it did. With `bind.add_zones`, a few new zones go to
    /// `named` by `rndc addzone` instead and are never listed here: the
    /// include keeps the zones it lists, and `named`'s new-zone database
    /// the added ones, so a restart of `named` serves the same set.
    fn write_include(&mut self) -> Result<bool, DeployError> {
        let path = self.config.paths.include.clone();
        let options = self.config.zone_options.clone();
        // What the include's text depends on besides its zones: rewritten
        // (and named reconfigured) when it changes.
        let signature = format!(
            "{}\n{}\n{:?}",
            self.config.paths.zones.display(),
            options,
            self.fleet_include()
        );
        let (mut listed, old_signature, first) = match self.teller.listed.take() {
            Some((listed, signature)) => (listed, signature, false),
            None => (
                fs::read_to_string(&path)
                    .map(|t| conf::listed_domains(&t))
                    .unwrap_or_default(),
                String::new(),
                true,
            ),
        };
        // The catalog's stanza is fleet mode's, not a member's.
        if let Some(cat) = &self.config.catalog {
            listed.remove(cat.zone.as_str());
        }
        let added = &self.teller.added;
        let homeless = |d: &str| !listed.contains(d) && !added.contains(d);
        // Served domains with neither home. After the first look at the
        // include, every served domain has one, and a domain comes to be
        // served only by an install of this batch (so it is pending): no
        // scan of every zone.
        let fresh: Vec<String> = self
            .pending
            .iter()
            .filter(|d| self.zones.served_by(d).is_some() && homeless(d))
            .cloned()
            .collect();
        // At the first look, a served domain the include does not list and
        // that is not pending has lost its home (the include was replaced):
        // named may have it from its configuration, so only the include and
        // a reconfig are safe for it, never addzone.
        let lost: Vec<String> = if first {
            self.zones
                .served_domains()
                .filter(|d| homeless(d) && !self.pending.contains(*d))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        let mut grew = signature != old_signature;
        if !lost.is_empty() {
            listed.extend(lost);
            grew = true;
        }
        // In fleet mode every member carries the replication settings of
        // the include: new zones go through it.
        let add = self.config.bind.add_zones
            && !self.teller.addzone_refused
            && self.config.catalog.is_none();
        if add && fresh.len() <= MAX_ADDZONE {
            if !fresh.is_empty() {
                // Durable before `named` hears of them: after a crash the
                // include still never lists a zone named has by addzone.
                self.teller.added.extend(fresh);
                self.save_added()?;
            }
        } else if !fresh.is_empty() {
            listed.extend(fresh);
            grew = true;
        }
        // Both homes together hold more than is served only when zones
        // left: then (and only then) look for them.
        let mut shrank = false;
        if listed.len() + self.teller.added.len() > self.zones.served_count() {
            let gone: Vec<String> = listed
                .iter()
                .filter(|d| self.zones.served_by(d).is_none())
                .cloned()
                .collect();
            for d in &gone {
                listed.remove(d);
            }
            shrank = !gone.is_empty();
            self.teller.to_delete.extend(gone);
            let unserved: Vec<String> = self
                .teller
                .added
                .iter()
                .filter(|d| self.zones.served_by(d).is_none())
                .cloned()
                .collect();
            self.teller.to_delete.extend(unserved);
        }
        if !grew && !shrank && !first {
            self.teller.listed = Some((listed, signature));
            return Ok(false);
        }
        let stanzas: Vec<conf::Stanza> = listed
            .iter()
            .map(|domain| conf::Stanza {
                domain: domain.clone(),
                file: self.zone_file(domain).to_string_lossy().into_owned(),
                extra: dnssec::stanza_options(
                    self.config.dnssec.as_ref(),
                    self.zones
                        .served_by(domain)
                        .and_then(|u| self.records().get(u)?.signer.as_ref()),
                ),
            })
            .collect();
        let fleet = self.fleet_include();
        let text = conf::fleet_include_file(&stanzas, &options, fleet.as_ref());
        self.teller.listed = Some((listed, signature));
        if fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        fsutil::ensure_dir(fsutil::parent(&path)).map_err(io_err(&path))?;
        fsutil::write_atomic(&path, text.as_bytes()).map_err(io_err(&path))?;
        // At a first look (start, new configuration) the rewrite may carry
        // any change, per-zone options included: only a reconfig is sure to
        // load it.
        self.teller.change = IncludeChange {
            grew: grew || first,
        };
        Ok(true)
    }

    fn save_added(&self) -> Result<(), StoreError> {
        let added: Vec<&str> = self.teller.added.iter().map(String::as_str).collect();
        self.store.save_added(&added)
    }

    /// Sends one command to `named`: over the control channel when
    /// `bind.control` is set, else by running `rndc`.
    fn tell(&mut self, command: &rndc::Command) -> Result<(), TellError> {
        let wanted = &self.config.bind.control;
        if *wanted == Control::Rndc {
            exec::run(&rndc::argv(&self.config.bind.rndc, command)).and_then(rndc::interpret)?;
            return Ok(());
        }
        if self.teller.client.as_ref().is_none_or(|(c, _)| c != wanted) {
            let endpoint = control_endpoint(wanted, &self.config.bind.rndc)?;
            let client = control::Client::new(endpoint, control::Timeouts::default());
            self.teller.client = Some((wanted.clone(), client));
        }
        let Some((_, client)) = self.teller.client.as_mut() else {
            unreachable!("made above");
        };
        match client.command(&command.line()) {
            Ok(_) => Ok(()),
            Err(e) => {
                if !e.is_transport() {
                    return Err(e.into());
                }
                // The key may have changed on disk: read it again next time.
                self.teller.client = None;
                Err(e.into())
            }
        }
    }

    /// Tells `named`, then confirms the served serials of every zone that
    /// waits for it (this batch's and any left pending before). Zones left
    /// pending by an earlier batch get both a reconfig and a reload, since
    /// it is not known which of the two they missed.
    fn reload(&mut self, reload: &Reload, report: &mut Report) {
        self.reload_zones(reload, report);
        self.reload_catalog(report);
        self.settle_inflight();
    }

    /// What `inflight.json` must say before files of these domains change
    /// (and these are installed), besides what is dirty or pending already.
    fn inflight_for<'a>(
        &'a self,
        touched: impl Iterator<Item = &'a str>,
        installs: impl Iterator<Item = &'a str>,
    ) -> Inflight {
        let installing: BTreeSet<&str> = touched
            .chain(self.dirty.iter().map(String::as_str))
            .collect();
        let pending: BTreeSet<&str> = self
            .pending
            .iter()
            .map(String::as_str)
            .chain(installs)
            .collect();
        Inflight {
            installing: installing.into_iter().map(str::to_owned).collect(),
            pending: pending.into_iter().map(str::to_owned).collect(),
        }
    }

    /// Brings `inflight.json` in line with what is still dirty or pending,
    /// when it says more. A lost update only costs one more write or reload
    /// after a crash.
    fn settle_inflight(&mut self) {
        let now = self.inflight_for(std::iter::empty(), std::iter::empty());
        if now == self.inflight {
            return;
        }
        match self.store.save_inflight(&now) {
            Ok(()) => self.inflight = now,
            Err(e) => tracing::warn!(error = %e, "could not record confirmed reloads"),
        }
    }

    /// [`Self::reload`] for the zones of the batch and those pending.
    fn reload_zones(&mut self, reload: &Reload, report: &mut Report) {
        let change = std::mem::take(&mut self.teller.change);
        let mut known: Vec<Name> = reload.known.clone();
        // Fresh zones listed in the include need the reconfig; the include
        // losing zones alone does not (they are deleted one by one).
        let mut reconfig = reload.reconfig
            && (change.grew
                || reload
                    .fresh
                    .iter()
                    .any(|n| !self.teller.added.contains(n.as_str())));
        let mut adds: Vec<Name> = reload
            .fresh
            .iter()
            .filter(|n| self.teller.added.contains(n.as_str()))
            .cloned()
            .collect();
        let this_batch: HashSet<&str> = reload
            .known
            .iter()
            .chain(&reload.fresh)
            .map(Name::as_str)
            .collect();
        for domain in &self.pending {
            if !this_batch.contains(domain.as_str())
                && let Ok(n) = name::parse_domain(domain)
            {
                if self.teller.added.contains(domain) {
                    adds.push(n.clone());
                } else {
                    reconfig = true;
                }
                known.push(n);
            }
        }
        // A domain deleted and served again since is not deleted.
        let deletes: Vec<String> = self
            .teller
            .to_delete
            .iter()
            .filter(|d| self.zones.served_by(d).is_none())
            .cloned()
            .collect();
        self.teller
            .to_delete
            .retain(|d| self.zones.served_by(d).is_none());
        let reload_started = Instant::now();
        let told = reconfig || !adds.is_empty() || !deletes.is_empty() || !known.is_empty();
        if let Err(e) = self.tell_all(reconfig, &adds, &deletes, &known) {
            crate::metrics::rndc_failed();
            report.reload_error = Some(e.to_string());
        }
        if told {
            crate::metrics::phase(crate::metrics::Phase::Reload, reload_started.elapsed());
        }
        if self.pending.is_empty() {
            return;
        }
        let waiting = self.pending_serials();
        self.progress(Step::Confirm, 0, waiting.len() as u64);
        let confirm_started = Instant::now();
        let confirmed = if report.reload_error.is_none() {
            confirm_serials(
                self.config.bind.server,
                &waiting,
                Duration::from_secs_f64(self.config.bind.confirm_timeout),
            )
        } else {
            BTreeSet::new()
        };
        crate::metrics::phase(crate::metrics::Phase::Confirm, confirm_started.elapsed());
        let served = confirmed.iter().filter_map(|d| self.zones.served_by(d));
        crate::metrics::served(served, SystemTime::now());
        self.pending.retain(|d| !confirmed.contains(d));
        report.pending = self.pending.iter().cloned().collect();
        if report.reload_error.is_none() && !report.pending.is_empty() {
            report.reload_error = Some(format!(
                "named did not serve the new serial of {} zone(s) within {} s",
                report.pending.len(),
                self.config.bind.confirm_timeout
            ));
        }
    }

    /// Tells `named` what a batch changed: reconfig, then `addzone` and
    /// `delzone`, then `reload` of the zones it had.
    fn tell_all(
        &mut self,
        mut reconfig: bool,
        adds: &[Name],
        deletes: &[String],
        known: &[Name],
    ) -> Result<(), TellError> {
        let mut known = known.to_vec();
        let mut added_changed = false;
        for zone in adds {
            if self.teller.addzone_refused {
                break;
            }
            let file = self.zone_file(zone.as_str()).to_string_lossy().into_owned();
            let signer = self
                .zones
                .served_by(zone.as_str())
                .and_then(|u| self.records().get(u)?.signer.as_ref());
            let options = format!(
                "{} {}",
                self.config.zone_options,
                dnssec::stanza_options(self.config.dnssec.as_ref(), signer)
            );
            let config = conf::addzone_config(&file, &options);
            match self.tell(&rndc::Command::AddZone {
                zone: zone.clone(),
                config,
            }) {
                Ok(()) => known.retain(|k| k != zone),
                // It has it already (from before a crash, or a re-created
                // domain whose delzone is still to come): reload its file.
                Err(e) if e.says("already exists") => {
                    if !known.contains(zone) {
                        known.push(zone.clone());
                    }
                }
                Err(e) if e.refused() => {
                    tracing::warn!(error = %e, "named refused addzone; new zones go through the include and a reconfig");
                    self.teller.addzone_refused = true;
                }
                Err(e) => return Err(e),
            }
        }
        if self.teller.addzone_refused && !adds.is_empty() {
            // Move every added zone that named does not have yet into the
            // include: those of this batch (and earlier pending ones).
            for zone in adds {
                self.teller.added.remove(zone.as_str());
            }
            self.save_added().map_err(DeployError::from)?;
            self.teller.listed = None;
            reconfig |= self.write_include()?;
            self.teller.change = IncludeChange::default();
        }
        if reconfig {
            self.tell(&rndc::Command::Reconfig)?;
        }
        for domain in deletes {
            let Ok(zone) = name::parse_domain(domain) else {
                continue;
            };
            match self.tell(&rndc::Command::DelZone(zone)) {
                Ok(()) => {}
                Err(e) if e.says("not found") => {}
                // The include no longer lists it: a reconfig drops it.
                Err(e) if e.refused() && !self.teller.added.contains(domain) => {
                    tracing::warn!(zone = %domain, error = %e, "named refused delzone; reconfig");
                    self.tell(&rndc::Command::Reconfig)?;
                }
                Err(e) => return Err(e),
            }
            self.teller.to_delete.remove(domain);
            added_changed |= self.teller.added.remove(domain);
        }
        if added_changed && let Err(e) = self.save_added() {
            tracing::warn!(error = %e, "could not record deleted zones; delzone is repeated later");
        }
        match known.len() {
            0 => Ok(()),
            1 => self.tell(&rndc::Command::Reload(known[0].clone())),
            _ => self.tell(&rndc::Command::ReloadAll),
        }
    }

    /// Tells `named` to read its configuration again: at start, when it
    /// answers for none of the zones the agent installed.
    pub(crate) fn reconfigure(&mut self) -> Result<(), TellError> {
        self.tell(&rndc::Command::Reconfig)
    }

    /// Retries `rndc` for zones installed but not confirmed served.
    pub fn retry_pending(&mut self) -> Report {
        let mut report = Report::default();
        self.reload(&Reload::default(), &mut report);
        report
    }
}

/// Whether `on_disk` says all `needed` says (both sorted, as
/// [`Deployer::inflight_for`] and [`Store::load_inflight`] give them).
fn covers(on_disk: &Inflight, needed: &Inflight) -> bool {
    let within =
        |small: &[String], big: &[String]| small.iter().all(|d| big.binary_search(d).is_ok());
    within(&needed.installing, &on_disk.installing) && within(&needed.pending, &on_disk.pending)
}

/// Where the control channel is and its key, for `bind.control`.
fn control_endpoint(
    wanted: &Control,
    rndc_argv: &[String],
) -> Result<control::Endpoint, control::KeyError> {
    let (addr, key_file) = match wanted {
        Control::Rndc => unreachable!("no control channel configured"),
        Control::FromRndc { key_file } => (None, key_file),
        Control::At { addr, key_file } => (Some(*addr), key_file),
    };
    let key = match key_file {
        Some(path) => control::load_key(path, None)?,
        None => control::endpoint_from_rndc_argv(rndc_argv)?.key,
    };
    let addr = match addr {
        Some(a) => a,
        None => control::endpoint_from_rndc_argv(rndc_argv)?.addr,
    };
    Ok(control::Endpoint { addr, key })
}

/// The last serial of each domain in `zones/.archive/`, from the file
/// names `<domain>.zone.<serial>.<stamp>[.<n>]` read from the right, so a
/// domain with a `zone` label is never split. Archives written before the
/// records kept their own floor ([`ZoneRecord::archived`]).
fn archived_serials(zones: &Path) -> HashMap<String, u32> {
    let mut out: HashMap<String, u32> = HashMap::new();
    let Ok(entries) = fs::read_dir(zones.join(".archive")) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((domain, serial)) = parse_archive_name(name) else {
            continue;
        };
        let e = out.entry(domain.to_owned()).or_insert(serial);
        *e = serial::max(*e, serial);
    }
    out
}

/// `<domain>.zone.<serial>.<stamp>[.<n>]` → (domain, serial): the last
/// `.zone.` followed only by two or three numbers ends the domain.
fn parse_archive_name(name: &str) -> Option<(&str, u32)> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.rmatch_indices(".zone.").find_map(|(at, sep)| {
        let parts: Vec<&str> = name[at + sep.len()..].split('.').collect();
        let fits = (2..=3).contains(&parts.len()) && parts.iter().all(|p| numeric(p));
        let serial = parts[0].parse().ok().filter(|_| fits)?;
        (at > 0).then(|| (&name[..at], serial))
    })
}

/// Removes what a killed run can leave in the zones directory: temporary
/// zone files and batch check configurations. Only called with the state
/// lock held, so no other agent is writing them.
fn clean_leftovers(zones: &Path) {
    let Ok(entries) = fs::read_dir(zones) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let temporary = name.starts_with('.')
            && (name.ends_with(".zone.new")
                || (name.starts_with(".check.") && name.ends_with(".conf")));
        if temporary {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The serial in a zone file's SOA record, if it can be found: the third
/// field after `SOA`.
pub fn soa_serial(text: &str) -> Option<u32> {
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or_default();
        let mut tokens = line
            .split_whitespace()
            .skip_while(|t| !t.eq_ignore_ascii_case("SOA"));
        if tokens.next().is_some() {
            let rest: Vec<&str> = tokens.filter(|t| *t != "(").collect();
            return rest.get(2).and_then(|s| s.parse().ok());
        }
    }
    None
}

pub use crate::bind::confirm::confirm_serials;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_read_from_the_right() {
        assert_eq!(
            parse_archive_name("a.zone.test.zone.3.1700000000"),
            Some(("a.zone.test", 3))
        );
        assert_eq!(
            parse_archive_name("x.test.zone.2026120101.1700000000.2"),
            Some(("x.test", 2_026_120_101))
        );
        // A crafted domain cannot plant a floor for another one.
        assert_eq!(
            parse_archive_name("victim.test.zone.9.9.zone.1.2"),
            Some(("victim.test.zone.9.9", 1))
        );
        assert_eq!(parse_archive_name("junk"), None);
    }

    #[test]
    fn inflight_covers_only_what_it_says() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let on_disk = Inflight {
            installing: list(&["a.test", "c.test"]),
            pending: list(&["a.test", "b.test", "c.test"]),
        };
        let needed = |installing: &[&str], pending: &[&str]| Inflight {
            installing: list(installing),
            pending: list(pending),
        };
        assert!(covers(&on_disk, &needed(&[], &[])));
        assert!(covers(
            &on_disk,
            &needed(&["c.test"], &["b.test", "c.test"])
        ));
        assert!(!covers(&on_disk, &needed(&["b.test"], &["b.test"])));
        assert!(!covers(&on_disk, &needed(&["a.test"], &["d.test"])));
        assert!(!covers(&Inflight::default(), &needed(&[], &["a.test"])));
    }

    #[test]
    fn finds_soa_serial() {
        let ours = "; c\n$ORIGIN a.\n$TTL 1\n@\t3600\tIN\tSOA\tns. h. 2026112601 1 2 3 4\n";
        assert_eq!(soa_serial(ours), Some(2_026_112_601));
        let theirs = "@ IN SOA ns. h. ( 42 ; serial\n 1 2 3 4 )\n";
        assert_eq!(soa_serial(theirs), Some(42));
        assert_eq!(soa_serial("nothing"), None);
    }
}
