//! bulwark: an edge proxy and mirror for package registries.
#![forbid(unsafe_code)]

pub mod tlog;
pub mod store;
pub mod verify;
