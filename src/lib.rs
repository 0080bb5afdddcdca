//! bulwark: an edge proxy and mirror for package registries.
#![forbid(unsafe_code)]

pub mod admin;
pub mod airgap;
pub mod config;
pub mod ecosystem;
pub mod ecosystems;
pub mod federation;
pub mod gomod;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod npm;
pub mod pattern;
pub mod pipeline;
pub mod pypi;
pub mod server;
pub mod sigstore;
pub mod store;
pub mod tlog;
pub mod upstream;
pub mod verify;
pub mod warg;
