//! bulwark: an edge proxy and mirror for package registries.
#![forbid(unsafe_code)]

pub mod store;
pub mod tlog;
pub mod verify;
