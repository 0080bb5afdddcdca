//! Shared helpers for the integration tests.

pub mod airgap;
pub mod gofixture;
pub mod http;
pub mod npm;
pub mod pypi;
pub mod serve;
pub mod warg;
