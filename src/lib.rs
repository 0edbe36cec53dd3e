//! zoneagent: compiles the DNS-hosting API's zones into BIND9 zone files and
//! deploys them.
//!
//! The functional core (`model`, `validate`, `render`, `serial`, `config`
//! parsing) does no I/O; the shell modules around it read files, run BIND's
//! tools and talk to `named`.

pub mod adopt;
pub mod bind;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decide;
pub mod deploy;
pub mod dnssec;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod fsutil;
pub mod identity;
pub(crate) mod logtext;
pub(crate) mod metrics;
pub mod model;
pub mod progress;
pub mod pull;
pub mod render;
pub mod serial;
pub mod spool;
pub mod state;
pub mod store;
pub mod validate;
pub mod verify;
