//! npm: the registry API as the real `npm` client speaks it, every tarball
//! checked against its version's `dist.integrity` and every version's
//! `dist.signatures` against pinned registry keys.
//!
//! - [`config`]: `protocol = "npm"` upstreams, name patterns, `signatures`,
//!   `registry_keys` and the `attestations` policy;
//! - [`attestations`]: a version's attestations answer, checked;
//! - [`name`]: package names (`name`, `@scope/name`);
//! - [`packument`]: packuments parsed into one checked model, filtered,
//!   and written back full or abbreviated with tarball URLs pointing at
//!   bulwark;
//! - [`resolve`]: packuments and tarballs through the pipeline;
//! - [`saved`]: the last good packuments on disk, for restarts while the
//!   upstream is down;
//! - [`front`]: the routes under `/npm/`.

use std::sync::Arc;

use crate::config::ProtocolConfig;
use crate::ecosystem::{Ecosystem, EcosystemContext};
use crate::http::Front;

pub mod attestations;
pub mod config;
pub mod front;
pub mod name;
pub mod packument;
pub mod resolve;
pub mod saved;

/// The npm ecosystem (registered in `src/ecosystems.rs`).
pub struct Npm;

/// The one instance.
pub static ECOSYSTEM: Npm = Npm;

impl Ecosystem for Npm {
    fn config(&self) -> &'static dyn ProtocolConfig {
        &config::CONFIG
    }

    fn front(&self, ctx: &EcosystemContext) -> anyhow::Result<Option<Arc<dyn Front>>> {
        Ok(front::NpmFront::new(ctx)?.map(|f| Arc::new(f) as Arc<dyn Front>))
    }
}
