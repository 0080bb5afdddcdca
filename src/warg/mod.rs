//! Warg (the Bytecode Alliance component registry protocol, API v1 as the
//! reference `warg-server` 0.10 speaks it).
//!
//! - [`wire`]: the request and response types, routes, error bodies and
//!   headers of the API, and guarded decoders for the untrusted bytes in it
//!   (JSON bodies, protobuf proof bundles). The types are the reference
//!   crates' own (`warg-api`, `warg-protocol`, `warg-transparency`).
//! - [`verify`]: the checks on everything an upstream sends (pinned-key
//!   checkpoints, operator and package log validation, inclusion and
//!   consistency proofs), pure and synchronous; [`checks`]: the adapters
//!   around it (pinned key, validated logs, consistency bundles as RFC 9162
//!   proofs).
//! - [`registry`]: the ecosystem's side of the pipeline, with
//!   [`follower`] (checkpoints), [`logs`], [`proofs`], [`ledger`],
//!   [`content`], [`publish`] and [`memory`]: everything that touches an
//!   upstream, the trust state or the content store. Failures are the
//!   pipeline's `Refusal` ([`refuse`]).
//! - [`front`]: routes and wire shapes only, calling [`registry::Registries`].
//!
//! `tests/support/WARG.md` records how the reference peers behave.

pub mod checks;
pub mod config;
pub mod content;
pub mod follower;
pub mod front;
pub mod ledger;
pub mod logs;
pub mod memory;
pub mod proofs;
pub mod publish;
pub mod refuse;
pub mod registry;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use crate::config::ProtocolConfig;
use crate::ecosystem::{Ecosystem, EcosystemContext};
use crate::http::Front;

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
