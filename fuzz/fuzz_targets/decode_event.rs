//! `cargo fuzz run decode_event`: see `zoneagent_fuzz::oracles::event`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zoneagent_fuzz::oracles::event(data));
