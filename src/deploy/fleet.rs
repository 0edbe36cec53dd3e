//! Fleet mode's shell: the transfer key read at start, the catalog zone's
//! state (`state/catalog.json`), and the catalog's check, install and
//! reload after a batch changed the set of served zones.
//!
//! The catalog is one more zone file, handled like the others: rendered
//! ([`crate::catalog`]), given a serial past its last one
//! ([`serial::next`]), checked by `named-checkzone`, renamed into place
//! with a fresh mtime. Its state is saved after the install; a crash in
//! between costs one extra serial at the next batch, never a step back.
//! `named` is told only after the batch's own zones are confirmed served,
//! so a secondary that reads a new member can transfer it at once.

use super::{DeployError, Deployer, Report, Written, confirm_serials, io_err, soa_serial};
use crate::bind::{conf, rndc};
use crate::catalog::{self, RenderedCatalog, TsigKey};
use crate::check;
use crate::config::{CatalogConfig, Config};
use crate::decide::{Write, Zones};
use crate::exec;
use crate::fsutil;
use crate::model::name::{self, Name};
use crate::serial::{self, Now};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version of `state/catalog.json`.
const FORMAT_VERSION: u32 = 1;

/// Stands for the catalog where a zone uuid is expected (the check): no
/// API uuid looks like this.
const CATALOG_UUID: &str = "zoneagent:catalog";

/// What is kept of the catalog between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogState {
    pub format_version: u32,
    pub zone: String,
    pub serial: u32,
    /// [`RenderedCatalog::hash`] of the installed file.
    pub content_hash: String,
    pub members: usize,
}

/// Fleet mode as the deployer runs it.
#[derive(Debug)]
pub(super) struct Fleet {
    key: TsigKey,
    state: Option<CatalogState>,
    state_path: PathBuf,
    /// Whether the catalog was compared with the served set since open.
    checked: bool,
    /// A catalog serial installed and not yet confirmed served; `known`:
    /// `named` had the catalog before (a reload, not the reconfig, loads
    /// the new file).
    pending: Option<(u32, bool)>,
}

/// Why fleet mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("failed to read the transfer key {path}")]
    KeyRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the transfer key {path}")]
    KeyParse {
        path: PathBuf,
        #[source]
        source: catalog::KeyError,
    },
    #[error(
        "catalog.zone `{zone}` is already served as the customer zone {uuid}; pick another name"
    )]
    Taken { zone: String, uuid: String },
    #[error("state file {path} is not valid")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The catalog's state as saved (`state/catalog.json`), for `status`.
pub fn read_state(state_dir: &Path) -> Option<CatalogState> {
    let bytes = fs::read(state_dir.join("catalog.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Reads the key file of `[catalog]`.
pub fn read_key(config: &CatalogConfig) -> Result<TsigKey, FleetError> {
    let path = &config.tsig_key_file;
    let text = fs::read_to_string(path).map_err(|source| FleetError::KeyRead {
        path: path.clone(),
        source,
    })?;
    catalog::parse_key(&text).map_err(|source| FleetError::KeyParse {
        path: path.clone(),
        source,
    })
}

impl Fleet {
    /// Fleet mode for `config`, if it is on: refused when the catalog's
    /// name is a zone already served (two stanzas of one name would make
    /// named refuse the whole include).
    pub(super) fn open_for(config: &Config, zones: &Zones) -> Result<Option<Fleet>, FleetError> {
        let Some(c) = &config.catalog else {
            return Ok(None);
        };
        if let Some(uuid) = zones.served_by(c.zone.as_str()) {
            return Err(FleetError::Taken {
                zone: c.zone.as_str().to_owned(),
                uuid: uuid.to_owned(),
            });
        }
        Fleet::open(c, &config.paths.state).map(Some)
    }

    /// Reads the key and the catalog's state; the catalog is checked
    /// against the served zones at the first batch.
    pub(super) fn open(config: &CatalogConfig, state_dir: &Path) -> Result<Fleet, FleetError> {
        let key = read_key(config)?;
        let state_path = state_dir.join("catalog.json");
        let state = match fs::read(&state_path) {
            Ok(bytes) => Some(serde_json::from_slice::<CatalogState>(&bytes).map_err(
                |source| FleetError::State {
                    path: state_path.clone(),
                    source,
                },
            )?)
            .filter(|s| s.zone == config.zone.as_str()),
            Err(_) => None,
        };
        // Whatever an earlier run installed is confirmed once (it may have
        // stopped between the install and the reload).
        let pending = state.as_ref().map(|s| (s.serial, true));
        Ok(Fleet {
            key,
            state,
            state_path,
            checked: false,
            pending,
        })
    }
}

impl Deployer {
    /// The include's fleet part, when fleet mode is on.
    pub(super) fn fleet_include(&self) -> Option<conf::Fleet> {
        let (cat, fleet) = self.config.catalog.as_ref().zip(self.fleet.as_ref())?;
        Some(conf::Fleet {
            key_file: cat.tsig_key_file.to_string_lossy().into_owned(),
            key_name: fleet.key.name.clone(),
            also_notify: cat
                .secondaries
                .iter()
                .map(|s| catalog::server_entry(*s, &fleet.key.name))
                .collect(),
            catalog: conf::Stanza {
                domain: cat.zone.as_str().to_owned(),
                file: self
                    .zone_file(cat.zone.as_str())
                    .to_string_lossy()
                    .into_owned(),
                extra: String::new(),
            },
        })
    }

    /// After a batch's files and records are in place: writes the catalog
    /// again when the set of served zones changed (or at the first batch),
    /// unless it is unchanged or would go out empty while the state holds
    /// zones.
    pub(super) fn update_catalog(
        &mut self,
        set_changed: bool,
        now: Now,
        report: &mut Report,
    ) -> Result<(), DeployError> {
        let Some(cat) = self.config.catalog.clone() else {
            return Ok(());
        };
        let Some(fleet) = self.fleet.as_mut() else {
            return Ok(());
        };
        if fleet.checked && !set_changed {
            return Ok(());
        }
        fleet.checked = true;
        let members: Vec<Name> = self
            .zones
            .served_domains()
            .filter_map(|d| name::parse_domain(d).ok())
            .collect();
        let rendered = RenderedCatalog::new(
            &cat.zone,
            &self.config.render.soa,
            self.config.render.default_ttl,
            &members,
        );
        let path = self.zone_file(cat.zone.as_str());
        let on_disk = fs::read_to_string(&path).ok();
        let (last_hash, last_serial) = match self.fleet.as_ref().and_then(|f| f.state.as_ref()) {
            Some(s) => (Some(s.content_hash.as_str()), Some(s.serial)),
            None => (None, None),
        };
        if on_disk.is_some() && last_hash == Some(rendered.hash.as_str()) {
            return Ok(());
        }
        let desired = self
            .zones
            .records()
            .values()
            .filter(|r| r.zone.is_some())
            .count();
        if !catalog::publishable(rendered.members, desired) {
            tracing::error!(
                catalog = cat.zone.as_str(),
                zones = desired,
                "no zone is served although the state holds zones: the catalog is left as it \
                 was, since an empty one would remove every zone from every secondary"
            );
            return Ok(());
        }
        let floor = [last_serial, on_disk.as_deref().and_then(soa_serial)]
            .into_iter()
            .flatten()
            .reduce(serial::max);
        let serial = serial::next(self.config.serial, floor, now);
        let write = Write {
            uuid: CATALOG_UUID.to_owned(),
            origin: cat.zone.clone(),
            serial,
            text: rendered.with_serial(serial),
            hash: rendered.hash.clone(),
            known: on_disk.is_some(),
            replaces: None,
            warnings: Vec::new(),
            events: Vec::new(),
        };
        let verdict = check::check(&self.config, std::slice::from_ref(&write), || ()).0?;
        if let Some(errors) = verdict.refused.get(CATALOG_UUID) {
            let text = crate::error::ApiErrors(errors.clone()).to_string();
            tracing::error!(catalog = cat.zone.as_str(), errors = %text, "catalog refused; the old one stays served");
            report.reload_error = Some(format!("the catalog zone was refused: {text}"));
            return Ok(());
        }
        self.install(std::slice::from_ref(&write))?;
        let state = CatalogState {
            format_version: FORMAT_VERSION,
            zone: cat.zone.as_str().to_owned(),
            serial,
            content_hash: rendered.hash,
            members: rendered.members,
        };
        let Some(fleet) = self.fleet.as_mut() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
        fsutil::write_atomic(&fleet.state_path, &bytes).map_err(io_err(&fleet.state_path))?;
        fleet.state = Some(state);
        fleet.pending = Some((serial, on_disk.is_some()));
        report.catalog = Some(Written {
            domain: cat.zone.as_str().to_owned(),
            serial,
        });
        Ok(())
    }

    /// Tells `named` of a new catalog (after the batch's zones are
    /// confirmed) and confirms its serial; left pending otherwise.
    pub(super) fn reload_catalog(&mut self, report: &mut Report) {
        let (Some(cat), Some(fleet)) = (self.config.catalog.as_ref(), self.fleet.as_mut()) else {
            return;
        };
        let Some((serial, known)) = fleet.pending else {
            return;
        };
        let domain = cat.zone.as_str().to_owned();
        if report.reload_error.is_some() {
            report.pending.push(domain);
            return;
        }
        if known {
            let argv = rndc::argv(
                &self.config.bind.rndc,
                &rndc::Command::Reload(cat.zone.clone()),
            );
            if let Err(e) = exec::run(&argv).and_then(rndc::interpret) {
                report.reload_error = Some(e.to_string());
                report.pending.push(domain);
                return;
            }
        }
        let confirmed = confirm_serials(
            self.config.bind.server,
            &[(domain.clone(), serial)],
            Duration::from_secs_f64(self.config.bind.confirm_timeout),
        );
        if confirmed.contains(&domain) {
            fleet.pending = None;
        } else {
            // Next time a reload, whatever named had before.
            fleet.pending = Some((serial, true));
            report.pending.push(domain);
            report.reload_error.get_or_insert_with(|| {
                "named did not serve the catalog's new serial in time".to_owned()
            });
        }
    }

    /// The catalog's domain while its new serial waits for `named`.
    pub(super) fn catalog_pending(&self) -> Option<String> {
        let pending = self.fleet.as_ref()?.pending.is_some();
        let cat = self.config.catalog.as_ref()?;
        pending.then(|| cat.zone.as_str().to_owned())
    }
}
