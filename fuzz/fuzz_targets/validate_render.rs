//! `cargo fuzz run validate_render`: see `zoneagent_fuzz::oracles::zone`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zoneagent_fuzz::oracles::zone(data));
