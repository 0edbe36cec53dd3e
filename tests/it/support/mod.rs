//! Shared helpers for the integration tests: a private `named`, the agent
//! binary in a temporary environment, the crash harness, the hostile
//! corpus's manifest, a stand-in for the platform's API. Not every module
//! uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod agent;
pub mod api;
pub mod crash;
pub mod hostile;
pub mod named;
