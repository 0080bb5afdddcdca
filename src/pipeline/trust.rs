//! [`Trust`]: the async facade over the trust state.
//!
//! [`TrustState`] does blocking file I/O (reads of `state.redb` when its
//! memory mirror is out of date, fsynced writes). Here each call runs off
//! the async threads, so no ecosystem or front writes `spawn_blocking` for
//! the trust state. The gate of a request is answered from the state's
//! memory mirror while the file is unchanged (a `stat`, no transaction),
//! without leaving the async thread.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::tlog::{Checkpoint, Hash};
use crate::verify::trust::{
    Accepted, Advance, ConsistencyProof, Gated, TrustError, TrustState, Verified,
};

/// The trust state, for async code. Cheap to clone.
#[derive(Clone)]
pub struct Trust {
    state: TrustState,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").finish_non_exhaustive()
    }
}

/// A trust-state call that could not run to its end (its thread panicked
/// or the runtime is shutting down): a storage failure, so the request is
/// refused, never served.
fn join_failed(e: tokio::task::JoinError) -> TrustError {
    TrustError::Storage {
        op: "trust-state task",
        detail: e.to_string(),
    }
}

impl Trust {
    /// The facade over an open trust state.
    pub fn new(state: TrustState) -> Trust {
        Trust { state }
    }

    /// Opens `path` (usually `<data_dir>/state.redb`).
    pub async fn open(path: std::path::PathBuf) -> Result<Trust, TrustError> {
        tokio::task::spawn_blocking(move || TrustState::open(path))
            .await
            .map_err(join_failed)?
            .map(Trust::new)
    }

    /// The state itself, for synchronous code (the CLI, tests).
    pub fn state(&self) -> &TrustState {
        &self.state
    }

    /// Runs `f` on the trust state off the async threads.
    pub async fn run<T, F>(&self, f: F) -> Result<T, TrustError>
    where
        T: Send + 'static,
        F: FnOnce(&TrustState) -> Result<T, TrustError> + Send + 'static,
    {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(join_failed)?
    }

    /// The one quarantine gate of a request, and the upstream's current
    /// epoch (what was proven in an older epoch must not be served).
    pub async fn gate(&self, upstream: &str) -> Result<u64, TrustError> {
        if let Some(r) = self.state.gate_epoch_in_memory(upstream) {
            return r;
        }
        let name = upstream.to_string();
        self.run(move |s| s.gate_epoch(&name)).await
    }

    /// [`Trust::gate`], and whether the newest accepted checkpoint is
    /// fresh (at most `max_age` old; see [`TrustState::gate_fresh`]), in
    /// one look at the state (from memory while the file is unchanged).
    pub async fn gate_fresh(&self, upstream: &str, max_age: Duration) -> Result<Gated, TrustError> {
        if let Some(r) = self
            .state
            .gate_fresh_in_memory(upstream, SystemTime::now(), max_age)
        {
            return r;
        }
        let name = upstream.to_string();
        self.run(move |s| s.gate_fresh(&name, SystemTime::now(), max_age))
            .await
    }

    /// The newest accepted checkpoint of the current epoch.
    pub async fn latest(&self, upstream: &str) -> Result<Option<Accepted>, TrustError> {
        let name = upstream.to_string();
        self.run(move |s| s.latest(&name)).await
    }

    /// The newest verified checkpoint and whether it is older than
    /// `max_age` (see [`TrustState::last_verified`]).
    pub async fn last_verified(
        &self,
        upstream: &str,
        max_age: Duration,
    ) -> Result<Verified, TrustError> {
        if let Some(r) = self
            .state
            .last_verified_in_memory(upstream, SystemTime::now(), max_age)
        {
            return r;
        }
        let name = upstream.to_string();
        self.run(move |s| s.last_verified(&name, SystemTime::now(), max_age))
            .await
    }

    /// The checkpoint accepted at `size` in `epoch`, if any.
    pub async fn accepted_at(
        &self,
        upstream: &str,
        epoch: u64,
        size: u64,
    ) -> Result<Option<Accepted>, TrustError> {
        let name = upstream.to_string();
        self.run(move |s| s.accepted_at(&name, epoch, size)).await
    }

    /// Offers a checkpoint whose signature the caller verified (see
    /// [`TrustState::advance_at`]); `proof` is the consistency proof from
    /// `from_size`.
    pub async fn advance(&self, offer: Offer) -> Result<Advance, TrustError> {
        self.run(move |s| {
            s.advance_at(
                &offer.upstream,
                &offer.note,
                &offer.checkpoint,
                ConsistencyProof {
                    from_size: offer.from_size,
                    hashes: &offer.proof,
                },
                offer.signed_time,
                SystemTime::now(),
            )
        })
        .await
    }

    /// Checks a signed checkpoint older than the latest accepted one (see
    /// [`TrustState::prove_prefix`]); `proof` runs from it to the latest.
    pub async fn prove_prefix(
        &self,
        upstream: &str,
        note: Arc<[u8]>,
        checkpoint: Checkpoint,
        proof: Vec<Hash>,
    ) -> Result<Accepted, TrustError> {
        let name = upstream.to_string();
        self.run(move |s| s.prove_prefix(&name, &note, &checkpoint, &proof, SystemTime::now()))
            .await
    }
}

/// A checkpoint offered to [`Trust::advance`], owned so that it can cross
/// to the blocking thread.
#[derive(Debug, Clone)]
pub struct Offer {
    pub upstream: String,
    /// The signed note as the upstream sent it (kept as evidence).
    pub note: Vec<u8>,
    /// The checkpoint it signs, with the extension lines to bind.
    pub checkpoint: Checkpoint,
    /// The tree size the consistency proof starts from.
    pub from_size: u64,
    /// The consistency proof (empty for a first or unchanged checkpoint).
    pub proof: Vec<Hash>,
    /// The time the log (or its witnesses) signed, if the protocol has one.
    pub signed_time: Option<SystemTime>,
}
