//! Checkpoints: fetched once per upstream at a time (single flight), kept
//! for the upstream's `checkpoint_reuse`, checked (timestamp, pinned key, operator log,
//! operator head included), and offered to the trust state with the map
//! root bound as an extension line; a lost race with another advance is
//! retried.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::StatusCode;

use super::answer::{
    check_refusal, expect_ok, refuse, task_failed, trust_refusal, unreachable, upstream_failure,
    verify_refusal, Answer,
};
use super::{to_len, validate, Upstream, WargFront};
use crate::tlog::{Checkpoint as TlogCheckpoint, Hash as TlogHash};
use crate::upstream::{UpstreamError, UpstreamRequest};
use crate::verify::trust::{ConsistencyProof, TrustError};
use crate::warg::checks::{self, CheckError, LogKind};
use crate::warg::verify::{self as wv, VerifiedCheckpoint};
use crate::warg::wire::{self, SignedCheckpoint, TimestampedCheckpoint};

/// Largest checkpoint answer read from an upstream (a signed checkpoint is
/// a few hundred bytes).
pub(super) const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// How often an advance that lost a race with another one (the trust
/// state moved on meanwhile: `StaleBase`) is tried again with a proof from
/// the new base.
const ADVANCE_ATTEMPTS: usize = 4;
/// The extension line binding a Warg checkpoint's map root in the trust
/// state: a second map root at an accepted log length is a fork.
const MAP_ROOT_LINE: &str = "map";

/// The last checkpoint bulwark verified for an upstream, and when.
pub(super) struct Fresh {
    at: Instant,
    epoch: u64,
    checkpoint: SignedCheckpoint,
}

impl WargFront {
    /// The upstream's current checkpoint, verified and accepted by the trust
    /// state: one fetch at a time per upstream, reused for
    /// the upstream's `checkpoint_reuse` (every client within it shares one
    /// fetch, one verification and one trust-state decision). `Ok((envelope, warning))`: the warning is set
    /// when the upstream did not answer and the last verified checkpoint
    /// stands in.
    pub(super) async fn current_checkpoint(
        &self,
        up: &Upstream,
        epoch: u64,
    ) -> Result<(SignedCheckpoint, Option<String>), Answer> {
        let mut fresh = up.fresh.lock().await;
        if let Some(f) = fresh.as_ref() {
            if f.epoch == epoch && f.at.elapsed() < up.reuse {
                return Ok((f.checkpoint.clone(), None));
            }
        }
        *fresh = None;
        let request = UpstreamRequest::get("/v1/fetch/checkpoint")
            .max_response_bytes(MAX_CHECKPOINT_BYTES as u64);
        let resp = match up.client.send(super::own(request)).await {
            Ok(r) => r,
            Err(e) if unreachable(&e) => {
                up.unreachable.store(true, Ordering::Relaxed);
                return self.offline_checkpoint(up, &e).await;
            }
            Err(e) => return Err(upstream_failure(&up.name, &e)),
        };
        up.unreachable.store(false, Ordering::Relaxed);
        let resp = expect_ok(&up.name, "the checkpoint request", resp)?;
        let cp: SignedCheckpoint =
            wire::decode_json("checkpoint", &resp.body, MAX_CHECKPOINT_BYTES)
                .map_err(|e| refuse(&up.name, e))?;
        self.accept_checkpoint(up, epoch, &cp).await?;
        *fresh = Some(Fresh {
            at: Instant::now(),
            epoch,
            checkpoint: cp.clone(),
        });
        Ok((cp, None))
    }

    async fn offline_checkpoint(
        &self,
        up: &Upstream,
        e: &UpstreamError,
    ) -> Result<(SignedCheckpoint, Option<String>), Answer> {
        let trust = self.trust.clone();
        let name = up.name.clone();
        let max_age = up.max_age;
        let v = tokio::task::spawn_blocking(move || {
            // Boxed: a trust error is large.
            trust
                .last_verified(&name, SystemTime::now(), max_age)
                .map_err(Box::new)
        })
        .await
        .map_err(task_failed)?
        .map_err(|t| match *t {
            TrustError::NoCheckpoint { .. } => upstream_failure(&up.name, e),
            other => trust_refusal(&up.name, &other),
        })?;
        let cp: SignedCheckpoint = wire::decode_json(
            "stored checkpoint",
            &v.checkpoint.note,
            MAX_CHECKPOINT_BYTES,
        )
        .map_err(|e| refuse(&up.name, e))?;
        let warning = crate::pipeline::refusal::unreachable_warning(&v);
        Ok((cp, Some(warning)))
    }

    /// Verifies a checkpoint envelope with `warg::verify`: the operator log
    /// at its length fetched and validated, the pinned key's signature and
    /// `commit` permission, the operator head included.
    pub(super) async fn verify_envelope(
        &self,
        up: &Upstream,
        epoch: u64,
        cp: &SignedCheckpoint,
    ) -> Result<VerifiedCheckpoint, Answer> {
        let len = cp.as_ref().checkpoint.log_length as u64;
        let records = self
            .fetch_records(up, &LogKind::Operator, len)
            .await?
            .ok_or_else(|| refuse(&up.name, "the upstream has no operator log"))?;
        let log =
            validate(&LogKind::Operator, &records).map_err(|e| verify_refusal(&up.name, &e))?;
        let opstate = log
            .operator
            .as_ref()
            .ok_or_else(|| refuse(&up.name, "no operator state"))?;
        let vcp = wv::verify_checkpoint(cp, &up.key.key, opstate)
            .map_err(|e| verify_refusal(&up.name, &e))?;
        self.prove_head(up, &vcp, &LogKind::Operator, &log).await?;
        // Served only once every record is proven at its index: a longer
        // operator log is proven by `validated_log` when it is fetched.
        if log.records.len() == 1 {
            self.remember_log(up, epoch, LogKind::Operator, len, Arc::new(log))?;
        }
        Ok(vcp)
    }

    /// The full checks of a checkpoint, then the trust state.
    async fn accept_checkpoint(
        &self,
        up: &Upstream,
        epoch: u64,
        cp: &SignedCheckpoint,
    ) -> Result<(), Answer> {
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let len = contents.checkpoint.log_length as u64;
        let signed = signed_time(&up.name, contents)?;
        // Freshness while the upstream answers (a time ahead of now is the
        // trust state's to refuse: `timestamp`).
        let age = SystemTime::now().duration_since(signed).unwrap_or_default();
        if age > up.max_age {
            return Err(refuse(
                &up.name,
                format!(
                    "freshness check failed: checkpoint of length {len} was signed {}s ago, more than the {}s allowed",
                    age.as_secs(),
                    up.max_age.as_secs()
                ),
            ));
        }
        let vcp = self.verify_envelope(up, epoch, cp).await?;
        let root = TlogHash(
            checks::hash_bytes(&contents.checkpoint.log_root)
                .map_err(|e| check_refusal(&up.name, &e))?,
        );
        let map_root = checks::hash_bytes(&contents.checkpoint.map_root)
            .map_err(|e| check_refusal(&up.name, &e))?;
        let tcp = TlogCheckpoint {
            origin: format!("warg:{}", up.key.key_id),
            size: len,
            root,
            extensions: vec![format!("{MAP_ROOT_LINE} {}", hex::encode(map_root))],
        };
        let note = wire::encode_json(cp);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // No lock is held here: the proof is fetched, then offered; if
            // another advance moved the state on meanwhile, the trust state
            // says `StaleBase` and the proof is fetched again.
            let latest = {
                let trust = self.trust.clone();
                let name = up.name.clone();
                tokio::task::spawn_blocking(move || trust.latest(&name).map_err(Box::new))
                    .await
                    .map_err(task_failed)?
                    .map_err(|e| trust_refusal(&up.name, &e))?
            };
            let (from, proof_hashes) = match latest.filter(|l| l.size < len && l.size > 0) {
                Some(l) => (
                    l.size,
                    self.consistency_hashes(up, l.size, len, &root).await?,
                ),
                None => (0, Vec::new()),
            };
            let trust = self.trust.clone();
            let name = up.name.clone();
            let (note, tcp) = (note.clone(), tcp.clone());
            let outcome = tokio::task::spawn_blocking(move || {
                trust
                    .advance_at(
                        &name,
                        &note,
                        &tcp,
                        ConsistencyProof {
                            from_size: from,
                            hashes: &proof_hashes,
                        },
                        Some(signed),
                        SystemTime::now(),
                    )
                    .map_err(Box::new)
            })
            .await
            .map_err(task_failed)?;
            match outcome {
                Ok(_) => break,
                Err(e)
                    if matches!(*e, TrustError::StaleBase { .. }) && attempt < ADVANCE_ATTEMPTS =>
                {
                    continue
                }
                Err(e) => return Err(trust_refusal(&up.name, &e)),
            }
        }
        self.remember_checkpoint(up, epoch, vcp)
    }

    /// The consistency proof `from → to` from the upstream, checked and
    /// converted to RFC 9162 hashes for the trust state (which judges
    /// whether it links the accepted root to this one, and quarantines with
    /// evidence if it does not). A malformed bundle is a refusal, not
    /// evidence.
    async fn consistency_hashes(
        &self,
        up: &Upstream,
        from: u64,
        to: u64,
        root: &TlogHash,
    ) -> Result<Vec<TlogHash>, Answer> {
        let body = wire::encode_json(&wire::ConsistencyRequest {
            from: to_len(from),
            to: to_len(to),
        });
        let request = UpstreamRequest::post_json_idempotent("/v1/proof/consistency", body)
            .max_response_bytes(super::MAX_JSON_ANSWER as u64);
        let resp = up
            .client
            .send(super::own(request))
            .await
            .map_err(|e| upstream_failure(&up.name, &e))?;
        let resp = expect_ok(
            &up.name,
            &format!("the consistency proof {from} → {to}"),
            resp,
        )?;
        let c: wire::ConsistencyResponse =
            wire::decode_json("consistency response", &resp.body, super::MAX_JSON_ANSWER)
                .map_err(|e| refuse(&up.name, e))?;
        let converted = checks::check_consistency(&c.proof, from, to)
            .map_err(|e| check_refusal(&up.name, &e))?;
        if converted.new_root != root.0 {
            return Err(check_refusal(
                &up.name,
                &CheckError::Consistency(format!(
                    "the proof {from} → {to} does not end at the checkpoint's log root"
                )),
            ));
        }
        Ok(converted.rfc)
    }

    pub(super) fn remember_checkpoint(
        &self,
        up: &Upstream,
        epoch: u64,
        vcp: VerifiedCheckpoint,
    ) -> Result<(), Answer> {
        let mut v = up.verified.lock().map_err(|_| super::answer::poisoned())?;
        // Proven in another epoch than the current one: not kept.
        if v.epoch != Some(epoch) {
            return Ok(());
        }
        v.checkpoints.insert(vcp.log_length() as u64, vcp);
        // Keep memory bounded: the last 64 lengths.
        while v.checkpoints.len() > 64 {
            v.checkpoints.pop_first();
        }
        Ok(())
    }

    /// A verified checkpoint of length `len`: memory, else one the trust
    /// state accepted at that length (in the current epoch), verified again.
    pub(super) async fn checkpoint_at(
        &self,
        up: &Upstream,
        epoch: u64,
        len: u64,
    ) -> Result<VerifiedCheckpoint, Answer> {
        if let Some(cp) = up
            .verified
            .lock()
            .map_err(|_| super::answer::poisoned())?
            .checkpoints
            .get(&len)
        {
            return Ok(cp.clone());
        }
        let trust = self.trust.clone();
        let name = up.name.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            trust.accepted_at(&name, epoch, len).map_err(Box::new)
        })
        .await
        .map_err(task_failed)?
        .map_err(|e| trust_refusal(&up.name, &e))?;
        if let Some(a) = accepted {
            let cp: SignedCheckpoint =
                wire::decode_json("stored checkpoint", &a.note, MAX_CHECKPOINT_BYTES)
                    .map_err(|e| refuse(&up.name, e))?;
            let vcp = self.verify_envelope(up, epoch, &cp).await?;
            self.remember_checkpoint(up, epoch, vcp.clone())?;
            return Ok(vcp);
        }
        Err(refuse(
            &up.name,
            format!("log length {len} is not a checkpoint bulwark has verified"),
        ))
    }

    pub(super) async fn fetch_checkpoint(&self, up: &Upstream, epoch: u64) -> Answer {
        match self.current_checkpoint(up, epoch).await {
            Ok((cp, warning)) => {
                let a = Answer::json(StatusCode::OK, wire::encode_json(&cp));
                match warning {
                    Some(w) => a.header("warning", w),
                    None => a,
                }
            }
            Err(a) => a,
        }
    }
}

/// The checkpoint's signed time. A timestamp past what a clock can hold
/// (`u64::MAX` seconds) is refused, never a panic.
fn signed_time(up: &str, contents: &TimestampedCheckpoint) -> Result<SystemTime, Answer> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(contents.timestamp))
        .ok_or_else(|| {
            refuse(
                up,
                format!(
                    "timestamp check failed: checkpoint of length {} carries timestamp {}, past any time this clock can hold",
                    contents.checkpoint.log_length, contents.timestamp
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_past_any_clock_is_refused_not_a_panic() {
        let h =
            warg_crypto::hash::AnyHash::new(warg_crypto::hash::HashAlgorithm::Sha256, vec![0; 32]);
        let contents = TimestampedCheckpoint {
            checkpoint: wire::Checkpoint {
                log_root: h.clone(),
                log_length: 3,
                map_root: h,
            },
            timestamp: u64::MAX,
        };
        let a = signed_time("up", &contents).unwrap_err();
        assert_eq!(a.status, StatusCode::BAD_GATEWAY);
        assert!(String::from_utf8_lossy(&a.body).contains("timestamp check failed"));
    }
}
