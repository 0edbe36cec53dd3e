//! BIND's tools as data: argv builders, the files we write for `named`, and
//! interpreters of what the tools print. Nothing here runs a process or
//! touches a file; [`crate::exec`] and [`crate::deploy`] do. The one
//! exception is [`confirm`], the UDP exchange with the local `named`.

pub mod checkzone;
pub mod conf;
pub mod confirm;
pub mod control;
pub mod named_conf;
pub mod query;
pub mod rndc;
