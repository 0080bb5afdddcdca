//! The Warg verifier: the checks bulwark makes on everything an upstream
//! Warg registry sends before any of it is served or cached. Pure and
//! synchronous: bytes and parsed API types in, verified values or a
//! [`WargVerifyError`] out; no I/O, no clock.
//!
//! Called by the Warg front (`src/warg/front*`), which fetches checkpoints,
//! logs and proofs from upstreams and asks this module whether to believe
//! them:
//!
//! - [`verify_checkpoint`]: the checkpoint is signed by the pinned operator
//!   key, and the (validated) operator log grants that key `commit`.
//! - [`OperatorState`] / [`PackageState`]: the records of a log validated in
//!   order with the reference validator (signatures by keys the log
//!   grants, previous-record chain, non-decreasing timestamps, release and
//!   yank rules), incrementally and transactionally; a package state names
//!   the content digests its releases name.
//! - [`verify_log_inclusion`], [`verify_map_inclusion`]: proof bundles prove
//!   exactly the leaves asked about (count, node, log length) and evaluate to
//!   the verified checkpoint's roots.
//! - [`verify_consistency`]: a newer checkpoint extends the verified one.
//!
//! The reference crates (`warg-protocol`, `warg-crypto`,
//! `warg-transparency` 0.10) do the decoding, hashing, signature and proof
//! arithmetic; every call into them on untrusted bytes is preceded by the
//! checks that keep it from panicking (`tests/support/WARG.md` §6 lists the
//! panics), and wrapped in [`std::panic::catch_unwind`] as a last resort.

mod checkpoint;
mod error;
mod logs;
mod proofs;
#[cfg(test)]
mod tests;

pub use checkpoint::{verify_checkpoint, VerifiedCheckpoint};
pub use error::WargVerifyError;
pub use logs::{
    LeafRef, OperatorState, PackageState, VerifiedRecord, VerifiedRelease, MAX_LOG_RECORDS,
};
pub use proofs::{
    verify_consistency, verify_consistency_from, verify_inclusion, verify_log_inclusion,
    verify_map_inclusion,
};
pub use warg_crypto::signing::{KeyID, PublicKey};

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic inside the reference crates into a refusal.
/// Only a last resort: the callers check their inputs first.
fn guarded<T>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, WargVerifyError>,
) -> Result<T, WargVerifyError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(WargVerifyError::Panicked { what }))
}
