//! The oracles behind zoneagent's fuzz targets, shared with the stable-Rust
//! replay test (`tests/it/fuzz_regressions.rs` includes `oracles.rs` by path).

pub mod oracles;
