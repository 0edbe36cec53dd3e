//! The command line: argument definitions and one function per command.
//!
//! Each command returns an exit code; `main` only sets up logging and exits
//! with it. Errors are printed here, once, with their cause chain.

use crate::config::{self, Config};
use crate::decide::Wanted;
use crate::deploy::{Deployer, Options};
use crate::error::{ApiError, EXIT_CONFIG, EXIT_FAILURE, EXIT_HELD, EXIT_INVALID_INPUT, EXIT_OK};
use crate::model::name;
use crate::model::zone::{self, Zone};
use crate::render;
use crate::serial::Now;
use crate::validate;
use clap::{Parser, Subcommand};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   failure at run time (a tool, the disk, a zone BIND refused)
  2   invalid input (zone, dump or event); also a pull or an import that
      would remove more than the allowed share of the zones (see
      --allow-mass-delete): nothing was changed
  3   a zone is held: named would refuse it, its last good version stays
      served and everything else was deployed
  78  invalid configuration";

/// Compiles DNS-hosting API zones into BIND9 zone files and deploys them.
#[derive(Debug, Parser)]
#[command(name = "zoneagent", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (TOML); every key has a default.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validates one zone (the API's zone detail JSON) and prints its zone
    /// file on stdout.
    Render {
        /// SOA serial to write (default 1, so the output depends on the
        /// input alone).
        #[arg(long, default_value_t = 1)]
        serial: u32,
        /// Print problems as JSON objects in the API's error shape.
        #[arg(long)]
        json: bool,
        /// Zone JSON file, or `-` for standard input.
        zone_json: PathBuf,
    },
    /// Makes a dump (a JSON array of zone details) the desired state: zones
    /// absent from it are removed, the rest deployed.
    Import {
        /// Print what would change (unified diffs) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print problems as JSON objects in the API's error shape.
        #[arg(long)]
        json: bool,
        /// Fleet mode: let the dump remove more than
        /// `catalog.max_removal_share` of the zones at once.
        #[arg(long)]
        allow_mass_delete: bool,
        /// The dump, or `-` for standard input.
        dump: PathBuf,
    },
    /// Re-renders, checks, installs and reloads zones from the state;
    /// unchanged zones are skipped.
    Rebuild {
        /// Only this zone (repeatable).
        #[arg(long = "zone", value_name = "DOMAIN")]
        zones: Vec<String>,
        /// Print a unified diff per changed zone and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write and reload every zone, changed or not.
        #[arg(long)]
        force: bool,
    },
    /// Runs the agent: takes events from the spool and the socket and
    /// deploys them until SIGTERM.
    Run {
        /// Drain the spool, deploy, and exit (non-zero if anything failed).
        #[arg(long)]
        once: bool,
    },
    /// Puts an event into the spool durably (tmp/, fsync, rename into new/).
    Submit {
        /// The event JSON file, or `-` for standard input (default).
        #[arg(default_value = "-")]
        event: PathBuf,
    },
    /// Reads existing BIND zone files (through named-checkzone) and prints
    /// them as a dump in the API's shape (what `import` takes) on stdout;
    /// what cannot be carried over is reported per record on stderr.
    Adopt {
        /// Print reports as JSON objects in the API's error shape.
        #[arg(long)]
        json: bool,
        /// Take the primary zones this named.conf lists.
        #[arg(long, value_name = "FILE")]
        named_conf: Option<PathBuf>,
        /// Zone files (`DOMAIN=FILE`, `DOMAIN.zone`, `db.DOMAIN`) or
        /// directories of them.
        #[arg(required_unless_present = "named_conf")]
        paths: Vec<PathBuf>,
    },
    /// Fetches every zone from the platform's API and applies them as one
    /// `sync` (zones the API no longer lists are removed).
    Pull {
        /// The API's base URL (default: api.url).
        #[arg(long = "api", value_name = "URL")]
        url: Option<String>,
        /// File holding the Bearer token (default: api.token_file).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Fetch and print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even when more than api.max_removal_share of the zones
        /// would be removed.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Print problems as JSON objects in the API's error shape.
        #[arg(long)]
        json: bool,
    },
    /// Compares what named serves (AXFR) with what the state renders,
    /// RRset by RRset, and reports the drift per zone.
    Verify {
        /// Only this zone (repeatable).
        #[arg(long = "zone", value_name = "DOMAIN")]
        zones: Vec<String>,
        /// One JSON object per zone.
        #[arg(long)]
        json: bool,
        /// Rewrite and reload drifted zones (as `rebuild --force`), with a
        /// serial above the served one.
        #[arg(long)]
        repair: bool,
        /// Sign the transfers with this TSIG key (a `tsig-keygen` file).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Checks the configuration against this machine, one line per check
    /// (ok, warn, FAIL, the config key, the fix); non-zero on any FAIL.
    Doctor {
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Shows every zone with its serial and what is pending.
    Status {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// DNSSEC: what named's signer serves for a zone.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
    },
    /// Fleet mode: the catalog zone secondaries follow.
    #[command(subcommand)]
    Catalog(CatalogCommand),
}

#[derive(Debug, Subcommand)]
pub enum DnssecCommand {
    /// Prints the zone's DS records (SHA-256) for the parent, from the
    /// KSK/CSK named serves; fails while the keys are not published yet.
    Ds {
        /// Print a `trust-anchors` clause (for `delv -a` or a validating
        /// named) instead of DS records.
        #[arg(long)]
        trust_anchor: bool,
        domain: String,
    },
    /// Tells named the parent now has the zone's DS (after the registrar
    /// took it): until then named treats the DS as absent, and a KSK
    /// rollover or a switch to unsigned removes keys without waiting.
    Published {
        /// The KSK/CSK's key tag, when the zone has more than one.
        #[arg(long)]
        key: Option<u16>,
        domain: String,
    },
    /// Tells named the parent no longer has the zone's DS (after it was
    /// removed at the registrar and its TTL has passed): a zone switched
    /// off then drops its keys.
    Withdrawn {
        /// The KSK/CSK's key tag, when the zone has more than one.
        #[arg(long)]
        key: Option<u16>,
        domain: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Prints the configuration a secondary needs to follow this primary
    /// (the key, the options and the catalog zone), ready to paste.
    SecondaryConf {
        /// Where the secondary transfers from: this primary's address as
        /// the secondary reaches it, with the port when it is not 53.
        #[arg(long, value_name = "ADDR[:PORT]")]
        primary: String,
        /// Where the secondary keeps the member zones (under /var/lib/bind
        /// or /var/cache/bind on Debian, for AppArmor).
        #[arg(
            long,
            value_name = "DIR",
            default_value = "/var/lib/bind/zoneagent-catalog"
        )]
        zone_directory: String,
    },
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::exec::set_default_timeout(config.bind.tool_timeout);
    init_logging(&config, matches!(cli.command, Command::Run { .. }));
    match cli.command {
        Command::Run { once } => crate::daemon::run(&config, cli.config.as_deref(), once),
        Command::Submit { event } => submit_cmd(&config, &event),
        Command::Render {
            serial,
            json,
            zone_json,
        } => render_cmd(&config, serial, json, &zone_json),
        Command::Import {
            dry_run,
            json,
            allow_mass_delete,
            dump,
        } => import_cmd(config, dry_run, json, allow_mass_delete, &dump),
        Command::Rebuild {
            zones,
            dry_run,
            force,
        } => rebuild_cmd(config, &zones, dry_run, force),
        Command::Status { json } => status_cmd(&config, json),
        Command::Catalog(CatalogCommand::SecondaryConf {
            primary,
            zone_directory,
        }) => secondary_conf_cmd(&config, &primary, &zone_directory),
        Command::Pull {
            url,
            token_file,
            dry_run,
            allow_mass_delete,
            json,
        } => crate::pull::run(
            &config,
            url,
            token_file,
            &crate::pull::PullOptions {
                dry_run,
                allow_mass_delete,
            },
            json,
        ),
        Command::Verify {
            zones,
            json,
            repair,
            key_file,
        } => crate::verify::run(&config, &zones, key_file.as_deref(), json, repair),
        Command::Adopt {
            json,
            named_conf,
            paths,
        } => crate::adopt::run(&config, json, named_conf.as_deref(), &paths),
        Command::Doctor { json } => crate::doctor::run(&config, json),
        Command::Dnssec {
            command:
                DnssecCommand::Ds {
                    trust_anchor,
                    domain,
                },
        } => ds_cmd(&config, &domain, trust_anchor),
        Command::Dnssec {
            command: DnssecCommand::Published { key, domain },
        } => checkds_cmd(&config, &domain, key, crate::dnssec::ParentDs::Published),
        Command::Dnssec {
            command: DnssecCommand::Withdrawn { key, domain },
        } => checkds_cmd(&config, &domain, key, crate::dnssec::ParentDs::Withdrawn),
    }
}

fn init_logging(config: &Config, daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ZONEAGENT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(if daemon { "info" } else { "warn" }));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::logtext::EscapingStderr { ansi })
        .with_target(false)
        .with_ansi(ansi);
    let _ = match config.log_format {
        crate::config::LogFormat::Json => builder.json().try_init(),
        // journald adds its own timestamps.
        crate::config::LogFormat::Text => builder.without_time().try_init(),
    };
}

fn submit_cmd(config: &Config, path: &Path) -> i32 {
    let text = match read_or_report(path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if let Err(e) = crate::model::event::decode_event(&text) {
        print_problems("error", &[e], false);
        return EXIT_INVALID_INPUT;
    }
    let spool = match crate::spool::Spool::open(&config.paths.spool, config.max_event_bytes) {
        Ok(s) => s,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    match spool.submit(text.as_bytes()) {
        Ok(name) => {
            println!("{}", spool.new_dir().join(name).display());
            EXIT_OK
        }
        Err(e) => {
            print_error(&e);
            EXIT_FAILURE
        }
    }
}

/// The clock, read once per command (the core never reads it).
pub fn now() -> Now {
    let now = chrono::Utc::now();
    Now {
        date: now.date_naive(),
        unix: now.timestamp(),
    }
}

fn open_deployer(config: Config) -> Result<Deployer, i32> {
    let mut deployer = Deployer::open(config).map_err(|e| {
        print_error(&e);
        EXIT_FAILURE
    })?;
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        deployer.on_progress = Some(progress_bar());
    }
    Ok(deployer)
}

/// A progress bar on stderr for long batches (only drawn on a terminal,
/// and only once a batch has more than a handful of zones).
fn progress_bar() -> crate::deploy::ProgressFn {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg:18} [{bar:40}] {pos}/{len} zones")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Box::new(move |step, done, total| {
        if total < 20 {
            return;
        }
        if bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_message(step.as_str());
        bar.set_length(total);
        bar.set_position(done);
        if step == crate::deploy::Step::Confirm {
            bar.finish_and_clear();
        }
    })
}

fn import_cmd(
    config: Config,
    dry_run: bool,
    json: bool,
    allow_mass_delete: bool,
    path: &Path,
) -> i32 {
    let text = match read_or_report(path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    // After the read: root may read a dump the agent's user cannot.
    if let Err(e) = crate::identity::ensure_state_owner(&config.paths.state) {
        print_error(&e);
        return EXIT_FAILURE;
    }
    let zones: Vec<Zone> = match zone::decode(&text) {
        Ok(z) => z,
        Err(e) => {
            print_problems("error", &[e], json);
            return EXIT_INVALID_INPUT;
        }
    };
    let mut deployer = match open_deployer(config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    // A zone the API itself would refuse is reported and keeps its state;
    // every other zone is applied, servable or not.
    let mut malformed = Vec::new();
    let mut changes: Vec<Wanted> = Vec::new();
    let wanted: BTreeSet<String> = zones.iter().map(|z| z.uuid.clone()).collect();
    for zone in zones {
        match validate::zone_well_formed(&zone) {
            Ok(()) => changes.push(Wanted::put(zone)),
            Err(errors) => malformed.push((zone.uuid, zone.domain, errors)),
        }
    }
    changes.extend(
        deployer
            .records()
            .iter()
            .filter(|(uuid, r)| r.zone.is_some() && !wanted.contains(uuid.as_str()))
            .map(|(uuid, _)| Wanted::delete(uuid)),
    );
    for (uuid, domain, errors) in &malformed {
        print_zone_problems("error", uuid, domain, errors, json);
    }
    if let Err(e) = deployer.check_removals(&changes, allow_mass_delete) {
        // A dry run changes nothing: it shows what the import would do.
        if !dry_run {
            print_problems("error", &[e], json);
            return EXIT_INVALID_INPUT;
        }
        print_problems("warning", &[e], json);
    }
    let options = Options {
        force: false,
        dry_run,
    };
    let code = finish(&mut deployer, changes, options, json);
    if malformed.is_empty() {
        code
    } else {
        EXIT_INVALID_INPUT
    }
}

fn rebuild_cmd(config: Config, only: &[String], dry_run: bool, force: bool) -> i32 {
    if let Err(e) = crate::identity::ensure_state_owner(&config.paths.state) {
        print_error(&e);
        return EXIT_FAILURE;
    }
    let mut wanted = BTreeSet::new();
    for d in only {
        match name::parse_domain(d) {
            Ok(n) => {
                wanted.insert(n.as_str().to_owned());
            }
            Err(e) => {
                print_problems("error", &[ApiError::validation("zone", e)], false);
                return EXIT_INVALID_INPUT;
            }
        }
    }
    let mut deployer = match open_deployer(config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let changes = deployer.everything(&wanted);
    if !wanted.is_empty() && changes.len() < wanted.len() {
        eprintln!("error: some --zone domains are not known to this agent");
        return EXIT_INVALID_INPUT;
    }
    finish(&mut deployer, changes, Options { force, dry_run }, false)
}

fn finish(deployer: &mut Deployer, changes: Vec<Wanted>, options: Options, json: bool) -> i32 {
    let report = match deployer.apply(changes, options, now()) {
        Ok(r) => r,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    for d in &report.diffs {
        let _ = out.write_all(d.diff.as_bytes());
    }
    for w in &report.warned {
        print_zone_problems("warning", &w.uuid, &w.domain, &w.warnings, json);
    }
    for h in &report.held {
        print_zone_problems("held", &h.uuid, &h.domain, &h.errors, json);
    }
    let verb = if options.dry_run {
        "would write"
    } else {
        "wrote"
    };
    let _ = writeln!(
        std::io::stderr(),
        "{verb} {} zone(s), {} unchanged, {} deleted, {} held{}",
        report.written.len(),
        report.unchanged,
        report.deleted.len(),
        deployer.held_count().max(report.held.len()),
        if report.pending.is_empty() {
            String::new()
        } else {
            format!(", {} waiting for named", report.pending.len())
        }
    );
    if let Some(e) = &report.reload_error {
        eprintln!(
            "warning: named was not told or did not confirm; the files are installed and the reload will be retried: {e}"
        );
    }
    if report.reload_error.is_some() {
        EXIT_FAILURE
    } else if !report.held.is_empty() || (!options.dry_run && deployer.held_count() > 0) {
        EXIT_HELD
    } else {
        EXIT_OK
    }
}

/// Prints one zone's problems, each naming the zone.
fn print_zone_problems(kind: &str, uuid: &str, domain: &str, errors: &[ApiError], json: bool) {
    let problems: Vec<ApiError> = errors
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.detail = format!("zone {domain} ({uuid}): {}", e.detail);
            e
        })
        .collect();
    print_problems(kind, &problems, json);
}

/// One zone in `status`.
#[derive(serde::Serialize)]
struct StatusRow<'a> {
    uuid: &'a str,
    domain: &'a str,
    /// `served`, `held` or `pending`.
    state: &'static str,
    records: usize,
    last_seq: Option<u64>,
    /// The serial `named` is given (a held zone's last good one).
    serial: Option<u32>,
    pending_reload: bool,
    #[serde(skip_serializing_if = "<[ApiError]>::is_empty")]
    errors: &'a [ApiError],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    held_by: &'a [String],
    #[serde(skip_serializing_if = "<[ApiError]>::is_empty")]
    warnings: &'a [ApiError],
    /// Zones `named` signs (or once signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    dnssec: Option<crate::dnssec::Status>,
}

/// How long `status` and `dnssec` wait for `named`'s answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What `named` serves of a signed zone's keys.
fn dnssec_status(
    config: &Config,
    domain: &str,
    signer: &crate::store::Signer,
) -> Option<crate::dnssec::Status> {
    let zone = name::parse_domain(domain).ok()?;
    let keys = crate::dnssec::probe::zone_keys(config.bind.server, &zone, PROBE_TIMEOUT).ok();
    Some(crate::dnssec::status(&zone, &signer.policy, keys.as_ref()))
}

fn checkds_cmd(
    config: &Config,
    domain: &str,
    key: Option<u16>,
    ds: crate::dnssec::ParentDs,
) -> i32 {
    let zone = match name::parse_domain(domain) {
        Ok(z) => z,
        Err(e) => {
            print_problems("error", &[ApiError::validation("domain", e)], false);
            return EXIT_INVALID_INPUT;
        }
    };
    let argv = crate::dnssec::checkds_argv(&config.bind.rndc, &zone, key, ds);
    match crate::exec::run(&argv).and_then(crate::bind::rndc::interpret) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(out.stdout.as_bytes());
            EXIT_OK
        }
        Err(e) => {
            print_error(&e);
            EXIT_FAILURE
        }
    }
}

fn ds_cmd(config: &Config, domain: &str, trust_anchor: bool) -> i32 {
    let zone = match name::parse_domain(domain) {
        Ok(z) => z,
        Err(e) => {
            print_problems("error", &[ApiError::validation("domain", e)], false);
            return EXIT_INVALID_INPUT;
        }
    };
    let store = crate::store::Store::open_read_only(&config.paths.state);
    let records = match store.load_all() {
        Ok(r) => r,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    let signer = records.values().find_map(|r| {
        let d = r.deployed.as_ref().filter(|d| d.domain == zone.as_str())?;
        r.zone.as_ref()?;
        Some((d, r.signer.as_ref()?))
    });
    let Some((_, signer)) = signer else {
        eprintln!(
            "error: {} is not a zone this agent has named sign",
            zone.as_str()
        );
        return EXIT_INVALID_INPUT;
    };
    let keys = match crate::dnssec::probe::zone_keys(config.bind.server, &zone, PROBE_TIMEOUT) {
        Ok(k) => k,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    if keys.sep.is_empty() || !keys.signed {
        eprintln!(
            "error: named serves no signed KSK/CSK for {} yet (policy {})",
            zone.as_str(),
            signer.policy
        );
        return EXIT_FAILURE;
    }
    match crate::dnssec::state(&signer.policy, Some(&keys)) {
        crate::dnssec::State::Signing => eprintln!(
            "warning: {} is still signing: named does not publish its CDS yet; \
             hand this DS to the parent once `status` says signed",
            zone.as_str()
        ),
        crate::dnssec::State::Unsigning | crate::dnssec::State::Unsigned => eprintln!(
            "warning: {} is being switched off: the parent should have no DS",
            zone.as_str()
        ),
        crate::dnssec::State::Signed | crate::dnssec::State::Unknown => {}
    }
    let ds = crate::dnssec::ds_records(&zone, &keys);
    let mut out = std::io::stdout().lock();
    let _ = if trust_anchor {
        out.write_all(crate::dnssec::trust_anchors(&ds).as_bytes())
    } else {
        ds.iter().try_for_each(|d| writeln!(out, "{d}"))
    };
    EXIT_OK
}

fn status_cmd(config: &Config, json: bool) -> i32 {
    // Read-only and lock-free: `status` works while the daemon runs.
    let store = crate::store::Store::open_read_only(&config.paths.state);
    let loaded = store.load_all().and_then(|records| {
        let pending: BTreeSet<String> = store.load_inflight()?.pending.into_iter().collect();
        Ok((records, pending))
    });
    let (records, pending) = match loaded {
        Ok(s) => s,
        Err(e) => {
            print_error(&e);
            return EXIT_FAILURE;
        }
    };
    let rows: Vec<StatusRow> = records
        .iter()
        .filter_map(|(uuid, r)| {
            let zone = r.zone.as_ref()?;
            let waiting = r
                .deployed
                .as_ref()
                .is_some_and(|d| pending.contains(&d.domain));
            let state = if r.is_held() {
                "held"
            } else if waiting || r.deployed.is_none() {
                "pending"
            } else {
                "served"
            };
            Some(StatusRow {
                uuid,
                domain: r
                    .deployed
                    .as_ref()
                    .map_or(zone.domain.as_str(), |d| d.domain.as_str()),
                state,
                records: zone.records.len(),
                last_seq: r.last_seq,
                serial: r.deployed.as_ref().map(|d| d.serial),
                pending_reload: waiting,
                errors: &r.held,
                held_by: &r.held_by,
                warnings: &r.warnings,
                dnssec: r
                    .signer
                    .as_ref()
                    .zip(r.deployed.as_ref())
                    .and_then(|(s, d)| dnssec_status(config, &d.domain, s)),
            })
        })
        .collect();
    let held = rows.iter().filter(|r| r.state == "held").count();
    let waiting = rows.iter().filter(|r| r.pending_reload).count();
    // Fleet mode: the catalog the secondaries follow.
    let catalog = config
        .catalog
        .as_ref()
        .and_then(|_| crate::deploy::read_catalog_state(&config.paths.state));
    let mut out = std::io::stdout().lock();
    if json {
        let mut doc = serde_json::json!({
            "zones": rows,
            "pending": waiting,
            "held": held,
        });
        if let Some(c) = &catalog {
            doc["catalog"] = serde_json::json!({
                "zone": c.zone, "serial": c.serial, "members": c.members,
            });
        }
        let _ = writeln!(out, "{doc}");
    } else {
        let _ = writeln!(
            out,
            "{:<40} {:>12} {:>8} {:>8}  UUID",
            "DOMAIN", "SERIAL", "RECORDS", "STATE"
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:<40} {:>12} {:>8} {:>8}  {}",
                r.domain,
                r.serial.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                r.records,
                r.state,
                r.uuid
            );
            for e in r.errors {
                let _ = writeln!(out, "    held: {e}");
            }
            if let Some(d) = &r.dnssec {
                let _ = writeln!(out, "    dnssec: {} ({})", d.state.as_str(), d.policy);
                for ds in &d.ds {
                    let _ = writeln!(out, "    {ds}");
                }
            }
        }
        let _ = writeln!(
            out,
            "{} zone(s), {held} held, {waiting} waiting for named",
            rows.len()
        );
        if let Some(c) = &catalog {
            let _ = writeln!(
                out,
                "catalog {} serial {}, {} member zone(s)",
                c.zone, c.serial, c.members
            );
        }
    }
    EXIT_OK
}

fn load_config(path: Option<&Path>) -> Result<Config, i32> {
    let result = match path {
        Some(p) => config::load(p),
        None => Ok(Config::default()),
    };
    result.map_err(|e| {
        print_error(&e);
        EXIT_CONFIG
    })
}

/// Prints an error and its chain of causes on stderr.
pub fn print_error(err: &dyn std::error::Error) {
    let mut msg = format!("error: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        let _ = write!(msg, "\n  caused by: {s}");
        source = s.source();
    }
    eprintln!("{msg}");
}

/// Reads a path, or standard input for `-`.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
    }
}

/// Reads a path (or stdin for `-`); a failure is printed and becomes the
/// exit code.
fn read_or_report(path: &Path) -> Result<String, i32> {
    read_input(path).map_err(|e| {
        print_error(&ReadError {
            path: path.to_owned(),
            source: e,
        });
        EXIT_FAILURE
    })
}

/// Prints problems on stderr, as text or as one JSON object per line.
pub fn print_problems(kind: &str, problems: &[ApiError], json: bool) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for p in problems {
        let _ = if json {
            writeln!(err, "{}", serde_json::to_string(p).unwrap_or_default())
        } else {
            writeln!(err, "{kind}: {p}")
        };
    }
}

fn render_cmd(config: &Config, serial: u32, json: bool, path: &Path) -> i32 {
    let text = match read_or_report(path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let zone = match zone::decode_zone(&text) {
        Ok(z) => z,
        Err(e) => {
            print_problems("error", &[e], json);
            return EXIT_INVALID_INPUT;
        }
    };
    match validate::validate(&zone, &config.zone) {
        Ok(valid) => {
            print_problems("warning", &valid.warnings, json);
            let out = render::render(&valid, &config.render, serial);
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return EXIT_FAILURE;
            }
            EXIT_OK
        }
        Err(problems) => {
            print_problems("error", &problems, json);
            EXIT_INVALID_INPUT
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to read {path}")]
struct ReadError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// `catalog secondary-conf`: the secondary's configuration on stdout.
fn secondary_conf_cmd(config: &Config, primary: &str, zone_directory: &str) -> i32 {
    let Some(cat) = &config.catalog else {
        eprintln!("error: fleet mode is off: set [catalog] in the configuration first");
        return EXIT_CONFIG;
    };
    let parsed = primary.parse::<std::net::SocketAddr>().or_else(|_| {
        primary
            .parse::<std::net::IpAddr>()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    });
    let Ok(primary) = parsed else {
        eprintln!("error: --primary `{primary}` is not an address like 192.0.2.1 or 192.0.2.1:53");
        return EXIT_INVALID_INPUT;
    };
    if zone_directory.contains(['"', '\\', '\n']) || !zone_directory.starts_with('/') {
        eprintln!(
            "error: --zone-directory must be an absolute path without `\"`, `\\` or newlines"
        );
        return EXIT_INVALID_INPUT;
    }
    let key = match crate::deploy::read_key(cat) {
        Ok(k) => k,
        Err(e) => {
            print_error(&e);
            return EXIT_CONFIG;
        }
    };
    let text = crate::catalog::secondary_conf(&crate::catalog::SecondaryConf {
        catalog: &cat.zone,
        primary,
        key: &key,
        zone_directory,
    });
    print!("{text}");
    EXIT_OK
}
