//! `cargo fuzz run state_fold`: see `zoneagent_fuzz::oracles::fold`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zoneagent_fuzz::oracles::fold(data));
