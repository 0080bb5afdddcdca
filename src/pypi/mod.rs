//! PyPI: the simple repository API (PEP 503 HTML, PEP 691 JSON) as the
//! real `pip` and `uv` speak it, and the PEP 740 provenance PyPI publishes
//! for attested files.
//!
//! - [`config`]: `protocol = "pypi"` upstreams and their `attestations`
//!   policy;
//! - [`name`]: project names and their PEP 503 normal form;
//! - [`simple`]: index pages (the project list and project pages) parsed
//!   from either format into one checked model, and written back in
//!   either format with every file URL pointing at bulwark;
//! - [`filename`], [`provenance`]: distribution file names and PEP 740
//!   provenance checked against a file's name and sha256;
//! - [`resolve`]: pages and files through the pipeline;
//! - [`saved`]: the last good page of each project, on disk;
//! - [`front`]: the routes under `/pypi/`.

use std::sync::Arc;

use crate::config::ProtocolConfig;
use crate::ecosystem::{Ecosystem, EcosystemContext};
use crate::http::Front;

pub mod config;
pub mod filename;
pub mod front;
pub mod name;
pub mod provenance;
pub mod resolve;
pub mod saved;
pub mod simple;

/// The PyPI ecosystem (registered in `src/ecosystems.rs`).
pub struct Pypi;

/// The one instance.
pub static ECOSYSTEM: Pypi = Pypi;

impl Ecosystem for Pypi {
    fn config(&self) -> &'static dyn ProtocolConfig {
        &config::CONFIG
    }

    fn front(&self, ctx: &EcosystemContext) -> anyhow::Result<Option<Arc<dyn Front>>> {
        Ok(front::PypiFront::new(ctx)?.map(|f| Arc::new(f) as Arc<dyn Front>))
    }
}
