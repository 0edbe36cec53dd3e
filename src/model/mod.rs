//! Wire and domain types: what the API sends and what it means.

pub mod event;
pub mod name;
pub mod record;
pub mod zone;
