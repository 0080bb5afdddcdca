//! The verified-artifact pipeline every ecosystem shares.
//!
//! - [`refusal`]: the one [`refusal::Refusal`] (upstream, check, expected,
//!   seen, status) that fronts render in their protocol's shape, and the
//!   one builder of the stale `Warning` header.
//! - [`trust`]: [`trust::Trust`], the async facade over the trust state
//!   (`verify::trust`); no caller runs trust-state calls on the async
//!   threads or writes `spawn_blocking` for them.
//! - [`artifacts`]: [`artifacts::Artifacts`], the artifact service: one
//!   quarantine gate, the artifact index, and the blob store. It answers a
//!   lookup from the index, and fills a miss by fetching the bytes (exact
//!   200 only, streamed), checking them by the ecosystem's hash rule,
//!   storing and indexing them.
//! - [`attest`]: the attestation policy (`attestations`, `publishers`,
//!   `sigstore_root`, `rekor_consistency`), the Rekor step and the
//!   never-downgrade verdict, for every ecosystem with Sigstore
//!   attestations.
//! - [`respond`]: [`respond::blob_response`], the one HTTP answer for a
//!   stored blob (ETag, 304, HEAD, Range, immutable caching).
//! - [`saved`]: [`saved::Saved`], the last good index document of each
//!   package (npm packuments, PyPI pages) on disk, for restarts while an
//!   upstream cannot be reached and for offline mode.
//!
//! Ecosystems (`gomod`, `warg`, ...) build on this; fronts only route and
//! shape answers.

pub mod artifacts;
pub mod attest;
pub mod refusal;
pub mod rekor;
pub mod release_age;
pub mod respond;
pub mod saved;
pub mod trust;
