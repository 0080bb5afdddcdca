//! Warg (the Bytecode Alliance component registry protocol, API v1 as the
//! reference `warg-server` 0.10 speaks it).
//!
//! - [`wire`]: the request and response types, routes, error bodies and
//!   headers of the API, and guarded decoders for the untrusted bytes in it
//!   (JSON bodies, protobuf proof bundles). The types are the reference
//!   crates' own (`warg-api`, `warg-protocol`, `warg-transparency`).
//! - [`verify`]: the checks on everything an upstream sends (pinned-key
//!   checkpoints, operator and package log validation, inclusion and
//!   consistency proofs), pure and synchronous.
//!
//! The Warg front, verifier and upstream client build on `wire`;
//! `tests/support/WARG.md` records how the reference peers behave.

pub mod checks;
pub mod config;
pub mod front;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use crate::config::ProtocolConfig;
use crate::ecosystem::{Ecosystem, EcosystemContext};
use crate::server::Front;

/// The Warg ecosystem, registered in `src/ecosystems.rs`.
pub struct Warg;

/// The one instance.
pub static ECOSYSTEM: Warg = Warg;

impl Ecosystem for Warg {
    fn config(&self) -> &'static dyn ProtocolConfig {
        &config::CONFIG
    }

    fn front(&self, ctx: &EcosystemContext) -> anyhow::Result<Option<Arc<dyn Front>>> {
        Ok(front::WargFront::new(ctx)?.map(|f| Arc::new(f) as Arc<dyn Front>))
    }
}
