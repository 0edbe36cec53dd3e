//! The command line: argument definitions and one function per command.
//!
//! Each command returns an exit code; `main` only sets up logging and exits
//! with it. Errors are printed here, once, with their cause chain.

use crate::config::{self, Config};
use crate::error::{ApiError, EXIT_CONFIG, EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::model::zone;
use crate::render;
use crate::validate;
use clap::{Parser, Subcommand};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   failure at run time (a tool, the disk, a zone BIND refused)
  2   invalid input (zone, dump or event)
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
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Render {
            serial,
            json,
            zone_json,
        } => render_cmd(&config, serial, json, &zone_json),
    }
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
    let text = match read_input(path) {
        Ok(t) => t,
        Err(e) => {
            print_error(&ReadError {
                path: path.to_owned(),
                source: e,
            });
            return EXIT_FAILURE;
        }
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
