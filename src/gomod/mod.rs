//! Go modules: the GOPROXY protocol and the Go checksum database
//! (sum.golang.org's dialect of a transparency log).
//!
//! So far the pure pieces: module paths and versions with their case
//! encoding and GOPROXY request paths ([`module`]), the `h1:` hash of module
//! zips and go.mod files ([`dirhash`]), and the checksum database's wire
//! formats ([`sumdb`]). The GOPROXY front and the verifier build on these.

pub mod config;
pub mod dirhash;
pub mod front;
pub mod module;
pub mod service;
pub mod sumdb;
pub mod verifier;
pub mod zipread;

use std::sync::Arc;

use crate::config::ProtocolConfig;
use crate::ecosystem::{Ecosystem, EcosystemContext};
use crate::http::Front;

/// The Go modules ecosystem, registered in `src/ecosystems.rs`.
pub struct Go;

/// The one instance.
pub static ECOSYSTEM: Go = Go;

impl Ecosystem for Go {
    fn config(&self) -> &'static dyn ProtocolConfig {
        &config::CONFIG
    }

    fn front(&self, ctx: &EcosystemContext) -> anyhow::Result<Option<Arc<dyn Front>>> {
        let front = front::GoFront::new(ctx)?;
        if front.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(front)))
    }
}
