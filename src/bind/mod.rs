//! BIND's tools as data: argv builders and interpreters of what the tools
//! print. Nothing here runs a process; [`crate::exec`] does.

pub mod checkzone;
