//! TEMPORARY: stand-ins for the trust-state and upstream API landing on
//! main (`gate`, `epoch`, `advance_at`, `probe`); removed at the merge.
use std::time::SystemTime;

use crate::tlog::Checkpoint;
use crate::upstream::UpstreamRequest;
use crate::verify::trust::{Advance, ConsistencyProof, Status, TrustError, TrustState};

pub(super) trait TrustShim {
    fn gate(&self, upstream: &str) -> Result<(), TrustError>;
    fn epoch(&self, upstream: &str) -> Result<u64, TrustError>;
    fn advance_at(
        &self,
        upstream: &str,
        note: &[u8],
        cp: &Checkpoint,
        proof: ConsistencyProof<'_>,
        signed: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<Advance, TrustError>;
}

impl TrustShim for TrustState {
    fn gate(&self, upstream: &str) -> Result<(), TrustError> {
        match self.status(upstream)? {
            Status::Quarantined(q) => Err(TrustError::Quarantined {
                upstream: upstream.to_string(),
                check: q.check,
                reason: q.reason,
                since: q.since,
                evidence: q.evidence,
            }),
            _ => Ok(()),
        }
    }
    fn epoch(&self, upstream: &str) -> Result<u64, TrustError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|u| u.name == upstream)
            .map_or(0, |u| u.epoch))
    }
    fn advance_at(
        &self,
        upstream: &str,
        note: &[u8],
        cp: &Checkpoint,
        proof: ConsistencyProof<'_>,
        _signed: Option<SystemTime>,
        now: SystemTime,
    ) -> Result<Advance, TrustError> {
        self.advance(upstream, note, cp, proof, now)
    }
}

pub(super) trait ProbeShim {
    fn probe(self) -> Self;
}

impl ProbeShim for UpstreamRequest {
    fn probe(self) -> Self {
        self
    }
}
