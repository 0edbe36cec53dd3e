//! Deploying: validated zones become files `named` serves.
//!
//! For a batch of changes: validate, plan, render with the next serial,
//! write temporary files, check them with BIND's own loader (one
//! `named-checkzone` for one zone, one `named-checkconf -z` for many),
//! rename the good ones into place and touch their mtime (`named` skips a
//! reload when the file is not newer than its last load), archive the files
//! of deleted zones, rewrite the include file, save the state durably, then
//! one `rndc reconfig` and/or `rndc reload` and a check that the new serials
//! are served. A zone BIND refuses keeps its old file and state. When
//! `named` cannot be reached, everything stays installed and the zones are
//! marked pending; [`Deployer::retry_pending`] finishes the job later.

use crate::bind::{checkzone, conf, rndc};
use crate::config::Config;
use crate::error::ApiError;
use crate::exec::{self, ToolError};
use crate::fsutil;
use crate::model::name::Name;
use crate::model::zone::Zone;
use crate::plan::{self, Candidate};
use crate::render;
use crate::serial::{self, Now};
use crate::store::{Deployed, FORMAT_VERSION, Store, StoreError, Tombstone, ZoneState};
use crate::validate;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// One wanted change.
#[derive(Debug, Clone)]
pub enum Change {
    /// The zone should look like this (create or replace). `seq` and
    /// `recent_ids` (when given) are recorded with it.
    Put {
        zone: Zone,
        seq: Option<u64>,
        recent_ids: Option<Vec<String>>,
    },
    /// The zone should not exist.
    Delete {
        uuid: String,
        seq: Option<u64>,
        recent_ids: Option<Vec<String>>,
    },
}

/// How to run a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Write every zone even when its content is unchanged.
    pub force: bool,
    /// Plan, render and diff, but change nothing.
    pub dry_run: bool,
}

/// A zone refused, with every reason in the API's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub uuid: String,
    pub domain: String,
    pub errors: Vec<ApiError>,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Report {
    /// Domains written, with their new serials.
    pub written: Vec<(String, u32)>,
    /// Zones whose content did not change.
    pub unchanged: usize,
    /// Domains removed (their files archived).
    pub deleted: Vec<String>,
    pub rejected: Vec<Rejection>,
    /// Unified diffs per written zone (dry runs).
    pub diffs: Vec<(String, String)>,
    /// Domains installed but not (yet) confirmed served by `named`.
    pub pending: Vec<String>,
    /// Why `named` could not be told, when it could not.
    pub reload_error: Option<String>,
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
    #[error("failed to check zones")]
    Check(#[source] ToolError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The deploy engine: configuration, the locked store and the state of
/// every zone in memory.
pub struct Deployer {
    pub config: Config,
    pub store: Store,
    pub states: BTreeMap<String, ZoneState>,
    /// What is remembered of deleted zones.
    pub tombstones: BTreeMap<String, Tombstone>,
    /// Told of each step of a batch: (step, done, total). The CLI draws a
    /// progress bar with it on a terminal.
    pub on_progress: Option<ProgressFn>,
    /// Domains whose installed file this process has read the serial of.
    disk_read: HashSet<String>,
    /// Domains whose install was interrupted by a crash: written again
    /// whatever their hash says.
    dirty: HashSet<String>,
    /// Whether the include file was compared with the state since open
    /// (or since the config changed).
    include_checked: bool,
}

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("config", &self.config)
            .field("zones", &self.states.len())
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

/// A zone rendered for installing.
struct Rendered {
    candidate: Candidate,
    serial: u32,
    text: String,
    /// Whether `named` already has this zone (a reload, not a reconfig).
    known: bool,
    /// A previous file under another domain, to archive.
    old_domain: Option<String>,
}

impl Deployer {
    /// Opens the state directory (taking its lock) and loads every zone's
    /// state.
    pub fn open(config: Config) -> Result<Deployer, DeployError> {
        let store = Store::open(&config.paths.state)?;
        let mut states = store.load_all()?;
        let pending: HashSet<String> = store.load_pending()?.into_iter().collect();
        for d in states.values_mut().filter_map(|s| s.deployed.as_mut()) {
            d.pending_reload = pending.contains(&d.domain);
        }
        let tombstones = store.load_tombstones()?;
        let dirty: HashSet<String> = store.load_installing()?.into_iter().collect();
        if !dirty.is_empty() {
            tracing::warn!(
                zones = dirty.len(),
                "an install was interrupted; those zones are written again"
            );
        }
        clean_leftovers(&config.paths.zones);
        Ok(Deployer {
            config,
            store,
            states,
            tombstones,
            on_progress: None,
            disk_read: HashSet::new(),
            include_checked: false,
            dirty,
        })
    }

    /// Writes again the zones of an interrupted install (see
    /// [`Store::mark_installing`]); a no-op when there are none.
    pub fn recover(&mut self, now: Now) -> Result<Report, DeployError> {
        if self.dirty.is_empty() {
            return Ok(Report::default());
        }
        let changes = self
            .states
            .values()
            .filter(|s| {
                s.deployed
                    .as_ref()
                    .is_some_and(|d| self.dirty.contains(&d.domain))
            })
            .map(|s| Change::Put {
                zone: s.zone.clone(),
                seq: s.last_seq,
                recent_ids: None,
            })
            .collect();
        let report = self.apply(changes, Options::default(), now)?;
        // Dirty domains no zone has any more (deleted meanwhile) are done.
        self.dirty.clear();
        self.store.clear_installing()?;
        Ok(report)
    }

    /// Whether a wanted zone is exactly what is deployed, with the same
    /// configuration, its file in place and no interrupted install: then
    /// its file cannot change and it need not be validated or rendered.
    fn settled(&self, zone: &Zone, config_hash: &str) -> bool {
        let Some(state) = self.states.get(&zone.uuid) else {
            return false;
        };
        let Some(d) = state.deployed.as_ref() else {
            return false;
        };
        d.config_hash == config_hash
            && state.zone == *zone
            && !self.dirty.contains(&d.domain)
            && self.zone_file(&d.domain).is_file()
    }

    /// Replaces the configuration (SIGHUP); the include file is compared
    /// again at the next batch, since per-zone options may have changed.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
        self.include_checked = false;
    }

    /// Path of a domain's zone file.
    pub fn zone_file(&self, domain: &str) -> PathBuf {
        self.config.paths.zones.join(format!("{domain}.zone"))
    }

    /// Applies a batch of changes. Per-zone problems are reported in the
    /// [`Report`]; an `Err` means the batch did nothing durable and can be
    /// retried as a whole.
    pub fn apply(
        &mut self,
        changes: Vec<Change>,
        options: Options,
        now: Now,
    ) -> Result<Report, DeployError> {
        let mut report = Report::default();
        let started = Instant::now();
        // Last word wins for each uuid within a batch.
        let mut last: BTreeMap<String, Change> = BTreeMap::new();
        for change in changes {
            let uuid = match &change {
                Change::Put { zone, .. } => zone.uuid.clone(),
                Change::Delete { uuid, .. } => uuid.clone(),
            };
            last.insert(uuid, change);
        }
        let config_hash = render::config_hash(&self.config.render, &self.config.zone);
        let mut settled = Vec::new();
        let mut candidates = Vec::new();
        let mut deletes = BTreeSet::new();
        let mut delete_memory: HashMap<String, (Option<u64>, Option<Vec<String>>)> = HashMap::new();
        for (uuid, change) in last {
            match change {
                Change::Delete {
                    seq, recent_ids, ..
                } => {
                    delete_memory.insert(uuid.clone(), (seq, recent_ids));
                    deletes.insert(uuid);
                }
                Change::Put {
                    zone,
                    seq,
                    recent_ids,
                } if !options.force && self.settled(&zone, &config_hash) => {
                    settled.push((uuid, seq, recent_ids));
                }
                Change::Put {
                    zone,
                    seq,
                    recent_ids,
                } => match validate::validate(&zone, &self.config.zone) {
                    Ok(valid) => {
                        let hash = render::content_hash(&valid, &self.config.render);
                        candidates.push(Candidate {
                            zone,
                            seq,
                            recent_ids,
                            valid,
                            hash,
                        });
                    }
                    Err(errors) => report.rejected.push(Rejection {
                        uuid,
                        domain: zone.domain.clone(),
                        errors,
                    }),
                },
            }
        }
        let zones_dir = self.config.paths.zones.clone();
        let plan = plan::plan(
            &self.states,
            candidates,
            &deletes,
            options.force,
            &|domain| {
                !self.dirty.contains(domain) && zones_dir.join(format!("{domain}.zone")).is_file()
            },
        );
        for (uuid, errors) in plan.rejected {
            let domain = self
                .states
                .get(&uuid)
                .map(|s| s.zone.domain.clone())
                .unwrap_or_default();
            report.rejected.push(Rejection {
                uuid,
                domain,
                errors,
            });
        }
        report.unchanged = plan.unchanged.len() + settled.len();

        // A zone created again after a delete must not reuse the serials of
        // its earlier life: secondaries may still remember them.
        let archived = if plan
            .write
            .iter()
            .any(|c| !self.states.contains_key(c.uuid()))
        {
            self.archived_serials()
        } else {
            HashMap::new()
        };
        let total = plan.write.len() as u64;
        let mut rendered: Vec<Rendered> = Vec::with_capacity(plan.write.len());
        for c in plan.write {
            let floor = [
                archived.get(c.domain()).copied(),
                self.disk_serial(c.domain()),
            ]
            .into_iter()
            .flatten()
            .reduce(serial::max);
            rendered.push(self.render_one(c, floor, now));
            self.progress(Step::Render, rendered.len() as u64, total);
        }

        if options.dry_run {
            for r in &rendered {
                let path = self.zone_file(r.candidate.domain());
                let old = fs::read_to_string(&path).unwrap_or_default();
                let diff = similar::TextDiff::from_lines(&old, &r.text)
                    .unified_diff()
                    .header(
                        &format!("a/{}.zone", r.candidate.domain()),
                        &format!("b/{}.zone", r.candidate.domain()),
                    )
                    .to_string();
                report.diffs.push((r.candidate.domain().to_owned(), diff));
                report
                    .written
                    .push((r.candidate.domain().to_owned(), r.serial));
            }
            report.deleted = plan.delete.iter().filter_map(|(_, d)| d.clone()).collect();
            return Ok(report);
        }

        fsutil::ensure_dir(&zones_dir).map_err(io_err(&zones_dir))?;
        let rendered_at = Instant::now();
        self.progress(Step::Check, 0, total);
        let (good, refused) = self.check(rendered)?;
        let checked_at = Instant::now();
        self.progress(Step::Install, 0, good.len() as u64);
        report.rejected.extend(refused);
        // From here until the state is saved, a crash leaves files and
        // state out of step: say so durably first.
        let touched: Vec<&str> = good
            .iter()
            .map(|r| r.candidate.domain())
            .chain(good.iter().filter_map(|r| r.old_domain.as_deref()))
            .chain(plan.delete.iter().filter_map(|(_, d)| d.as_deref()))
            .chain(self.dirty.iter().map(String::as_str))
            .collect();
        let marked = !touched.is_empty();
        if marked {
            self.store.mark_installing(&touched)?;
        }
        self.install(&good)?;

        // State files to write, all with one flush.
        let mut writes: Vec<String> = Vec::new();
        // Settled zones (same zone, same configuration) may carry a new seq
        // or event ids.
        for (uuid, seq, ids) in settled {
            let Some(state) = self.states.get_mut(&uuid) else {
                continue;
            };
            let ids_changed = ids.as_ref().is_some_and(|ids| *ids != state.recent_ids);
            if (seq.is_some() && state.last_seq != seq) || ids_changed {
                state.last_seq = seq.or(state.last_seq);
                if let Some(ids) = ids {
                    state.recent_ids = ids;
                }
                writes.push(uuid);
            }
        }
        // Unchanged zones may still carry a new body, seq or event ids.
        for c in &plan.unchanged {
            let Some(state) = self.states.get_mut(c.uuid()) else {
                continue;
            };
            let ids_changed = c
                .recent_ids
                .as_ref()
                .is_some_and(|ids| *ids != state.recent_ids);
            let stale_config = state
                .deployed
                .as_ref()
                .is_some_and(|d| d.config_hash != config_hash);
            if state.zone != c.zone
                || (c.seq.is_some() && state.last_seq != c.seq)
                || ids_changed
                || stale_config
            {
                if let Some(d) = state.deployed.as_mut() {
                    d.config_hash.clone_from(&config_hash);
                }
                state.zone = c.zone.clone();
                state.last_seq = c.seq.or(state.last_seq);
                if let Some(ids) = &c.recent_ids {
                    state.recent_ids.clone_from(ids);
                }
                writes.push(c.uuid().to_owned());
            }
        }
        let mut reload_known = Vec::new();
        let mut fresh = Vec::new();
        for r in &good {
            let uuid = r.candidate.uuid().to_owned();
            let previous = self.states.get(&uuid);
            let last_seq = r
                .candidate
                .seq
                .or_else(|| previous.and_then(|s| s.last_seq));
            let recent_ids = r
                .candidate
                .recent_ids
                .clone()
                .or_else(|| previous.map(|s| s.recent_ids.clone()))
                .unwrap_or_default();
            let state = ZoneState {
                format_version: FORMAT_VERSION,
                zone: r.candidate.zone.clone(),
                last_seq,
                recent_ids,
                deployed: Some(Deployed {
                    domain: r.candidate.domain().to_owned(),
                    serial: r.serial,
                    content_hash: r.candidate.hash.clone(),
                    config_hash: config_hash.clone(),
                    pending_reload: true,
                }),
            };
            writes.push(uuid.clone());
            self.states.insert(uuid, state);
            report
                .written
                .push((r.candidate.domain().to_owned(), r.serial));
            if r.known {
                reload_known.push(r.candidate.valid.origin.clone());
            } else {
                fresh.push(r.candidate.valid.origin.clone());
            }
        }
        let batch: Vec<(&str, &ZoneState)> = writes
            .iter()
            .filter_map(|u| self.states.get(u).map(|s| (u.as_str(), s)))
            .collect();
        self.store.save_batch(&batch)?;
        if !good.is_empty() {
            self.save_pending()?;
        }
        for (uuid, domain) in &plan.delete {
            if let Some(domain) = domain {
                let serial = self
                    .states
                    .get(uuid)
                    .and_then(|s| s.deployed.as_ref())
                    .map_or(0, |d| d.serial);
                self.archive(domain, serial)?;
                report.deleted.push(domain.clone());
            }
            if let Some(old) = self.states.get(uuid) {
                let (seq, ids) = delete_memory.remove(uuid).unwrap_or_default();
                let tombstone = Tombstone {
                    format_version: FORMAT_VERSION,
                    domain: old.zone.domain.clone(),
                    last_seq: seq.or(old.last_seq),
                    recent_ids: ids.unwrap_or_else(|| old.recent_ids.clone()),
                };
                self.store.save_tombstone(uuid, &tombstone)?;
                self.tombstones.insert(uuid.clone(), tombstone);
            }
            self.states.remove(uuid);
            let path = self.store.dir().join("zones").join(format!("{uuid}.json"));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        for r in &good {
            if let Some(old) = &r.old_domain {
                self.archive(old, r.serial)?;
            }
        }
        self.store.sync()?;
        if marked {
            for r in &good {
                self.dirty.remove(r.candidate.domain());
            }
            if self.dirty.is_empty() {
                self.store.clear_installing()?;
            } else {
                let rest: Vec<&str> = self.dirty.iter().map(String::as_str).collect();
                self.store.mark_installing(&rest)?;
            }
        }
        // The include only changes with the set of zones (or at the first
        // batch, which makes sure it matches the state).
        let set_changed = !fresh.is_empty()
            || !plan.delete.is_empty()
            || good.iter().any(|r| r.old_domain.is_some());
        let include_changed = if set_changed || !self.include_checked {
            self.include_checked = true;
            self.write_include()?
        } else {
            false
        };
        let saved_at = Instant::now();

        let reconfig = include_changed || !fresh.is_empty();
        self.reload(reconfig, &reload_known, &fresh, &mut report);
        if !good.is_empty() || !plan.delete.is_empty() {
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_millis();
            tracing::info!(
                zones = good.len(),
                deleted = plan.delete.len(),
                render_ms = ms(started, rendered_at),
                check_ms = ms(rendered_at, checked_at),
                install_and_save_ms = ms(checked_at, saved_at),
                reload_and_confirm_ms = ms(saved_at, Instant::now()),
                "deployed"
            );
        }
        Ok(report)
    }

    /// The last serial of each domain in `zones/.archive/`.
    fn archived_serials(&self) -> HashMap<String, u32> {
        let mut out: HashMap<String, u32> = HashMap::new();
        let Ok(entries) = fs::read_dir(self.config.paths.zones.join(".archive")) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((domain, rest)) = name.split_once(".zone.") else {
                continue;
            };
            let Some(serial) = rest.split('.').next().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let e = out.entry(domain.to_owned()).or_insert(serial);
            *e = serial::max(*e, serial);
        }
        out
    }

    fn progress(&mut self, step: Step, done: u64, total: u64) {
        if let Some(f) = self.on_progress.as_mut() {
            f(step, done, total);
        }
    }

    /// The serial in a domain's installed file, read once per process: after
    /// that, this process is the file's only writer and the state knows.
    fn disk_serial(&mut self, domain: &str) -> Option<u32> {
        if !self.disk_read.insert(domain.to_owned()) {
            return None;
        }
        fs::read_to_string(self.zone_file(domain))
            .ok()
            .and_then(|t| soa_serial(&t))
    }

    /// `floor`: the highest serial known besides the state's (the file on
    /// disk, an archived file of the same domain).
    fn render_one(&self, candidate: Candidate, floor: Option<u32>, now: Now) -> Rendered {
        crate::progress::beat();
        let domain = candidate.domain().to_owned();
        let previous = self
            .states
            .get(candidate.uuid())
            .and_then(|s| s.deployed.as_ref());
        let old_domain = previous
            .filter(|d| d.domain != domain)
            .map(|d| d.domain.clone());
        let state_serial = previous.filter(|d| d.domain == domain).map(|d| d.serial);
        let deployed = [state_serial, floor]
            .into_iter()
            .flatten()
            .reduce(serial::max);
        let serial = serial::next(self.config.serial, deployed, now);
        let text = render::render(&candidate.valid, &self.config.render, serial);
        Rendered {
            candidate,
            serial,
            text,
            known: previous.is_some_and(|d| d.domain == domain),
            old_domain,
        }
    }

    /// Writes the temporary files and checks them; returns the zones that
    /// passed and the refusals.
    fn check(
        &self,
        rendered: Vec<Rendered>,
    ) -> Result<(Vec<Rendered>, Vec<Rejection>), DeployError> {
        let mut refused = Vec::new();
        if rendered.is_empty() {
            return Ok((rendered, refused));
        }
        let files: Vec<(PathBuf, &[u8])> = rendered
            .iter()
            .map(|r| (self.temp_file(r.candidate.domain()), r.text.as_bytes()))
            .collect();
        fsutil::write_batch_unrenamed(&files).map_err(|(p, e)| io_err(&p)(e))?;
        let problems: HashMap<Name, Vec<String>> = if rendered.len() == 1 {
            self.check_one(&rendered[0], &files[0].0)?
        } else {
            match self.check_batch(&rendered, &files) {
                Ok(p) => p,
                // named-checkconf failed in a way no zone is named in: fall
                // back to one named-checkzone per zone rather than hold
                // every zone of the batch back.
                Err(DeployError::Check(e)) => {
                    tracing::warn!(error = %e, "batch check failed; checking zones one by one");
                    let mut all = HashMap::new();
                    for (r, (path, _)) in rendered.iter().zip(&files) {
                        all.extend(self.check_one(r, path)?);
                    }
                    all
                }
                Err(e) => return Err(e),
            }
        };
        let mut good = Vec::new();
        for r in rendered {
            match problems.get(&r.candidate.valid.origin) {
                None => good.push(r),
                Some(lines) => {
                    let _ = fs::remove_file(self.temp_file(r.candidate.domain()));
                    refused.push(Rejection {
                        uuid: r.candidate.uuid().to_owned(),
                        domain: r.candidate.domain().to_owned(),
                        errors: vec![ApiError::new(
                            "bind_rejected",
                            None,
                            format!("named-checkzone refused the zone: {}", lines.join(" | ")),
                        )],
                    });
                }
            }
        }
        Ok((good, refused))
    }

    /// `named-checkzone` on one file: its refusal lines, if any.
    fn check_one(
        &self,
        r: &Rendered,
        path: &Path,
    ) -> Result<HashMap<Name, Vec<String>>, DeployError> {
        let origin = &r.candidate.valid.origin;
        let argv = checkzone::argv(&self.config.bind.checkzone, origin, path);
        let output = exec::run(&argv).map_err(DeployError::Check)?;
        match checkzone::interpret(origin, r.serial, output) {
            Ok(()) => Ok(HashMap::new()),
            Err(ToolError::Failed(f)) => Ok(HashMap::from([(
                origin.clone(),
                f.output
                    .stdout
                    .lines()
                    .chain(f.output.stderr.lines())
                    .map(str::to_owned)
                    .filter(|l| !l.is_empty())
                    .collect(),
            )])),
            Err(e) => Err(DeployError::Check(e)),
        }
    }

    /// `named-checkconf -z` over a batch; a large batch is split over the
    /// machine's cores (the check is a full load by BIND, the costliest
    /// step of a big import).
    fn check_batch(
        &self,
        rendered: &[Rendered],
        files: &[(PathBuf, &[u8])],
    ) -> Result<HashMap<Name, Vec<String>>, DeployError> {
        const PER_PROCESS_MIN: usize = 500;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let parts = (rendered.len() / PER_PROCESS_MIN).clamp(1, cores);
        let chunk = rendered.len().div_ceil(parts);
        let (checkconf, zones_dir) = (&self.config.bind.checkconf, &self.config.paths.zones);
        let results: Vec<Result<HashMap<Name, Vec<String>>, DeployError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = rendered
                    .chunks(chunk)
                    .zip(files.chunks(chunk))
                    .enumerate()
                    .map(|(n, (r, f))| s.spawn(move || check_part(checkconf, zones_dir, n, r, f)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
        let mut problems = HashMap::new();
        for r in results {
            problems.extend(r?);
        }
        Ok(problems)
    }

    fn temp_file(&self, domain: &str) -> PathBuf {
        self.config.paths.zones.join(format!(".{domain}.zone.new"))
    }

    /// Renames checked files into place, newest mtime, one directory sync.
    fn install(&self, good: &[Rendered]) -> Result<(), DeployError> {
        use nix::sys::stat::{UtimensatFlags, utimensat};
        use nix::sys::time::TimeSpec;
        let dir =
            fs::File::open(&self.config.paths.zones).map_err(io_err(&self.config.paths.zones))?;
        for r in good {
            crate::progress::beat();
            let name = format!("{}.zone", r.candidate.domain());
            let tmp = self.temp_file(r.candidate.domain());
            let path = self.zone_file(r.candidate.domain());
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
        if !good.is_empty() {
            fsutil::sync_dir(&self.config.paths.zones).map_err(io_err(&self.config.paths.zones))?;
        }
        Ok(())
    }

    /// Moves a zone file into `zones/.archive/`, never overwriting an
    /// earlier archived file.
    fn archive(&self, domain: &str, serial: u32) -> Result<(), DeployError> {
        let path = self.zone_file(domain);
        if !path.exists() {
            return Ok(());
        }
        let dir = self.config.paths.zones.join(".archive");
        fsutil::ensure_dir(&dir).map_err(io_err(&dir))?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut target = dir.join(format!("{domain}.zone.{serial}.{stamp}"));
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{domain}.zone.{serial}.{stamp}.{n}"));
            n += 1;
        }
        fs::rename(&path, &target).map_err(io_err(&target))?;
        fsutil::sync_dir(&dir).map_err(io_err(&dir))?;
        Ok(())
    }

    /// Rewrites the include file when the set of zones changed; returns
    /// whether it did.
    fn write_include(&self) -> Result<bool, DeployError> {
        let stanzas: Vec<conf::Stanza> = self
            .states
            .values()
            .filter_map(|s| s.deployed.as_ref())
            .map(|d| conf::Stanza {
                domain: d.domain.clone(),
                file: self.zone_file(&d.domain).to_string_lossy().into_owned(),
            })
            .collect();
        let text = conf::include_file(&stanzas, &self.config.zone_options);
        let path = &self.config.paths.include;
        if fs::read_to_string(path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        fsutil::ensure_dir(fsutil::parent(path)).map_err(io_err(path))?;
        fsutil::write_atomic(path, text.as_bytes()).map_err(io_err(path))?;
        Ok(true)
    }

    /// Tells `named`, then confirms the served serials of every zone that
    /// waits for it (this batch's and any left pending before).
    ///
    /// `changed`: zones of this batch `named` already has (reloaded);
    /// `fresh`: zones of this batch it does not have yet (the reconfig
    /// loads them). Zones left pending by an earlier batch get both, since
    /// it is not known which of the two they missed.
    fn reload(&mut self, reconfig: bool, changed: &[Name], fresh: &[Name], report: &mut Report) {
        let mut known: Vec<Name> = changed.to_vec();
        let mut reconfig = reconfig;
        let this_batch: HashSet<&str> = changed.iter().chain(fresh).map(Name::as_str).collect();
        for s in self.states.values() {
            if let Some(d) = s.deployed.as_ref().filter(|d| d.pending_reload)
                && !this_batch.contains(d.domain.as_str())
                && let Ok(n) = crate::model::name::parse_domain(&d.domain)
            {
                reconfig = true;
                known.push(n);
            }
        }
        let prefix = &self.config.bind.rndc;
        let mut commands = Vec::new();
        if reconfig {
            commands.push(rndc::Command::Reconfig);
        }
        match known.len() {
            0 => {}
            1 => commands.push(rndc::Command::Reload(known[0].clone())),
            _ => commands.push(rndc::Command::ReloadAll),
        }
        for command in &commands {
            let result = exec::run(&rndc::argv(prefix, command)).and_then(rndc::interpret);
            if let Err(e) = result {
                report.reload_error = Some(e.to_string());
                break;
            }
        }
        let waiting: Vec<(String, u32)> = self
            .states
            .values()
            .filter_map(|s| s.deployed.as_ref())
            .filter(|d| d.pending_reload)
            .map(|d| (d.domain.clone(), d.serial))
            .collect();
        if waiting.is_empty() {
            return;
        }
        self.progress(Step::Confirm, 0, waiting.len() as u64);
        let confirmed = if report.reload_error.is_none() {
            confirm_serials(
                self.config.bind.server,
                &waiting,
                Duration::from_secs_f64(self.config.bind.confirm_timeout),
            )
        } else {
            BTreeSet::new()
        };
        for state in self.states.values_mut() {
            let Some(d) = state.deployed.as_mut().filter(|d| d.pending_reload) else {
                continue;
            };
            if confirmed.contains(&d.domain) {
                d.pending_reload = false;
            } else {
                report.pending.push(d.domain.clone());
            }
        }
        // A lost confirmation only costs one more reload later.
        if let Err(e) = self.save_pending() {
            tracing::warn!(error = %e, "could not record confirmed reloads");
        }
        if report.reload_error.is_none() && !report.pending.is_empty() {
            report.reload_error = Some(format!(
                "named did not serve the new serial of {} zone(s) within {} s",
                report.pending.len(),
                self.config.bind.confirm_timeout
            ));
        }
    }

    /// Writes the set of zones waiting for `named`.
    fn save_pending(&self) -> Result<(), StoreError> {
        let pending: Vec<&str> = self
            .states
            .values()
            .filter_map(|s| s.deployed.as_ref())
            .filter(|d| d.pending_reload)
            .map(|d| d.domain.as_str())
            .collect();
        self.store.save_pending(&pending)
    }

    /// Retries `rndc` for zones installed but not confirmed served.
    pub fn retry_pending(&mut self) -> Report {
        let mut report = Report::default();
        self.reload(false, &[], &[], &mut report);
        report
    }

    /// Domains installed but not confirmed served.
    pub fn pending(&self) -> Vec<String> {
        self.states
            .values()
            .filter_map(|s| s.deployed.as_ref())
            .filter(|d| d.pending_reload)
            .map(|d| d.domain.clone())
            .collect()
    }
}

/// One `named-checkconf -z` over part of a batch.
fn check_part(
    checkconf: &Path,
    zones_dir: &Path,
    part: usize,
    rendered: &[Rendered],
    files: &[(PathBuf, &[u8])],
) -> Result<HashMap<Name, Vec<String>>, DeployError> {
    let stanzas: Vec<conf::Stanza> = rendered
        .iter()
        .zip(files)
        .map(|(r, (path, _))| conf::Stanza {
            domain: r.candidate.domain().to_owned(),
            file: path.to_string_lossy().into_owned(),
        })
        .collect();
    let conf_path = zones_dir.join(format!(".check.{}.{part}.conf", std::process::id()));
    fs::write(&conf_path, conf::check_conf(zones_dir, &stanzas)).map_err(io_err(&conf_path))?;
    let argv = checkzone::checkconf_argv(checkconf, &conf_path);
    let output = exec::run(&argv);
    let _ = fs::remove_file(&conf_path);
    let output = output.map_err(DeployError::Check)?;
    let expected: HashMap<Name, (String, u32)> = rendered
        .iter()
        .zip(&stanzas)
        .map(|(r, s)| (r.candidate.valid.origin.clone(), (s.file.clone(), r.serial)))
        .collect();
    match checkzone::interpret_batch(&output, &expected) {
        Some(problems) => Ok(problems),
        None => Err(DeployError::Check(ToolError::failed(
            output,
            "failed without naming a zone",
        ))),
    }
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
    fn finds_soa_serial() {
        let ours = "; c\n$ORIGIN a.\n$TTL 1\n@\t3600\tIN\tSOA\tns. h. 2026112601 1 2 3 4\n";
        assert_eq!(soa_serial(ours), Some(2_026_112_601));
        let theirs = "@ IN SOA ns. h. ( 42 ; serial\n 1 2 3 4 )\n";
        assert_eq!(soa_serial(theirs), Some(42));
        assert_eq!(soa_serial("nothing"), None);
    }
}
