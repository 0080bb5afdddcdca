//! bulwark: an edge proxy and mirror for package registries.
#![forbid(unsafe_code)]

pub mod gomod;
pub mod tlog;
pub mod warg;
