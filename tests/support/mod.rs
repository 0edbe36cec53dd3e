//! Shared helpers for integration tests. Each test binary that declares
//! `mod support;` compiles all of it and uses only a part, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

pub mod agent;
pub mod crash;
pub mod hostile;
pub mod named;
