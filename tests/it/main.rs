//! The integration tests, one binary with shared support (`support/`):
//! the real `zoneagent` binary and library against private `named`
//! instances on loopback ports, a stand-in API on 127.0.0.1, and the
//! property and corpus tests of the pure core. `scripts/test.sh` runs the
//! proof modules (`crash`, `hostile_*`, `fuzz_regressions`) on their own
//! with `--nocapture`, so their figures are printed.

mod support;

/// The fuzz targets' oracles, replayed on stable Rust (`fuzz_regressions`)
/// and shared with the round-trip property (`roundtrip`).
#[path = "../../fuzz/src/oracles.rs"]
#[allow(dead_code)]
mod fuzz_oracles;

mod add_zones;
mod adopt;
mod control;
mod crash;
mod daemon;
mod disk;
mod dnssec;
mod docs;
mod e2e;
mod fleet;
mod fuzz_regressions;
mod hostile_corpus;
mod hostile_daemon;
mod hostile_identity;
mod hostile_spool;
mod metrics;
mod named_harness;
mod ops;
mod oracle;
mod order;
mod pull;
mod roundtrip;
mod verify;
