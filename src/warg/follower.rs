//! The Warg log follower: an upstream's checkpoint fetched once at a time
//! (single flight), reused for its `checkpoint_reuse`, checked (timestamp,
//! freshness, pinned key and signature, operator log validated and granting
//! `commit`, operator head included) and offered to the trust state with
//! the map root bound as an extension line and a consistency proof from
//! the last accepted one (a lost race with another advance is retried).
//! While the upstream cannot be reached, the last verified checkpoint
//! stands in, with a `Warning`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::pipeline::refusal::{unreachable_warning, Refusal};
use crate::pipeline::trust::Offer;
use crate::tlog::{Checkpoint as TlogCheckpoint, Hash as TlogHash};
use crate::upstream::{UpstreamError, UpstreamRequest};
use crate::verify::trust::TrustError;
use crate::warg::checks::{self, CheckError, LogKind};
use crate::warg::logs::validate;
use crate::warg::memory::Fresh;
use crate::warg::refuse::{expect_ok, from_check, malformed, refuse};
use crate::warg::registry::{own, to_len, Registries, Registry, MAX_JSON_ANSWER};
use crate::warg::verify::{self as wv, VerifiedCheckpoint};
use crate::warg::wire::{self, SignedCheckpoint, TimestampedCheckpoint};

/// Largest checkpoint answer read from an upstream (a signed checkpoint is
/// a few hundred bytes); also the largest a client may send to be judged.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// How often an advance that lost a race with another one (the trust
/// state moved on meanwhile: `StaleBase`) is tried again with a proof from
/// the new base.
const ADVANCE_ATTEMPTS: usize = 4;
/// The extension line binding a Warg checkpoint's map root in the trust
/// state: a second map root at an accepted log length is a fork.
const MAP_ROOT_LINE: &str = "map";

/// What bulwark says of a checkpoint a client asks it to judge
/// (`POST /v1/verify/checkpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// It has the roots of the checkpoint bulwark verified at its length.
    pub checkpoint: bool,
    /// The pinned operator key signed it.
    pub signature: bool,
}

impl Registries {
    /// The upstream's current checkpoint, verified and accepted by the
    /// trust state: one fetch at a time per upstream, reused for the
    /// upstream's `checkpoint_reuse` (every client within it shares one
    /// fetch, one verification and one trust-state decision). The warning
    /// is set when the upstream could not be reached and the last verified
    /// checkpoint stands in.
    pub async fn current_checkpoint(
        &self,
        reg: &Registry,
        epoch: u64,
    ) -> Result<(SignedCheckpoint, Option<String>), Refusal> {
        let mut fresh = reg.fresh.lock().await;
        if let Some(f) = fresh.as_ref() {
            if f.epoch == epoch && f.at.elapsed() < reg.reuse {
                return Ok((f.checkpoint.clone(), None));
            }
        }
        *fresh = None;
        let request = UpstreamRequest::get("/v1/fetch/checkpoint")
            .max_response_bytes(MAX_CHECKPOINT_BYTES as u64);
        let resp = match reg.client.send(own(request)).await {
            Ok(r) => r,
            Err(e) if e.is_unreachable() => {
                reg.unreachable.store(true, Ordering::Relaxed);
                return self.offline_checkpoint(reg, &e).await;
            }
            Err(e) => return Err(Refusal::from_upstream(&e)),
        };
        reg.unreachable.store(false, Ordering::Relaxed);
        let resp = expect_ok(&reg.name, "the checkpoint request", resp)?;
        let cp: SignedCheckpoint =
            wire::decode_json("checkpoint", &resp.body, MAX_CHECKPOINT_BYTES)
                .map_err(|e| malformed(&reg.name, e))?;
        self.accept_checkpoint(reg, epoch, &cp).await?;
        *fresh = Some(Fresh {
            at: Instant::now(),
            epoch,
            checkpoint: cp.clone(),
        });
        Ok((cp, None))
    }

    /// The last checkpoint the trust state accepted, with a `Warning`,
    /// when the upstream could not be reached (`e`); `e` itself when there
    /// is none.
    async fn offline_checkpoint(
        &self,
        reg: &Registry,
        e: &UpstreamError,
    ) -> Result<(SignedCheckpoint, Option<String>), Refusal> {
        let v = self
            .trust()
            .last_verified(&reg.name, reg.max_age)
            .await
            .map_err(|t| match t {
                TrustError::NoCheckpoint { .. } => Refusal::from_upstream(e),
                other => Refusal::from_trust(&other),
            })?;
        self.metrics()
            .set_checkpoint_age(&reg.name, v.age.as_secs_f64());
        let cp: SignedCheckpoint = wire::decode_json(
            "stored checkpoint",
            &v.checkpoint.note,
            MAX_CHECKPOINT_BYTES,
        )
        .map_err(|e| malformed(&reg.name, e))?;
        Ok((cp, Some(unreachable_warning(&v))))
    }

    /// Verifies a checkpoint envelope with `warg::verify`: the operator log
    /// at its length fetched and validated, the pinned key's signature and
    /// `commit` permission, the operator head included.
    pub(crate) async fn verify_envelope(
        &self,
        reg: &Registry,
        epoch: u64,
        cp: &SignedCheckpoint,
    ) -> Result<VerifiedCheckpoint, Refusal> {
        let len = cp.as_ref().checkpoint.log_length as u64;
        let records = self
            .fetch_records(reg, &LogKind::Operator, len)
            .await?
            .ok_or_else(|| {
                refuse(
                    &reg.name,
                    "log-validation",
                    "the upstream has no operator log",
                )
            })?;
        let log = self.verified(
            reg,
            "log-validation",
            validate(&LogKind::Operator, &records),
        )?;
        let opstate = log
            .operator
            .as_ref()
            .ok_or_else(|| refuse(&reg.name, "log-validation", "no operator state"))?;
        let vcp = self.verified(
            reg,
            "checkpoint-signature",
            wv::verify_checkpoint(cp, &reg.key.key, opstate),
        )?;
        self.prove_head(reg, &vcp, &LogKind::Operator, &log).await?;
        // Served only once every record is proven at its index: a longer
        // operator log is proven by `validated_log` when it is fetched.
        if log.records.len() == 1 {
            reg.memory()?
                .remember_log(epoch, LogKind::Operator, len, Arc::new(log));
        }
        Ok(vcp)
    }

    /// The full checks of a checkpoint, then the trust state.
    async fn accept_checkpoint(
        &self,
        reg: &Registry,
        epoch: u64,
        cp: &SignedCheckpoint,
    ) -> Result<(), Refusal> {
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let len = contents.checkpoint.log_length as u64;
        let signed = signed_time(&reg.name, contents).inspect_err(|_| {
            self.tally(reg, "timestamp", false);
        })?;
        // Freshness while the upstream answers (a time ahead of now is the
        // trust state's to refuse: `timestamp`).
        let age = SystemTime::now().duration_since(signed).unwrap_or_default();
        if age > reg.max_age {
            self.tally(reg, "freshness", false);
            return Err(refuse(
                &reg.name,
                "freshness",
                format!("checkpoint of length {len} is older than allowed"),
            )
            .expected_seen(
                format!("signed at most {}s ago", reg.max_age.as_secs()),
                format!("signed {}s ago", age.as_secs()),
            ));
        }
        let vcp = self.verify_envelope(reg, epoch, cp).await?;
        let root = TlogHash(
            checks::hash_bytes(&contents.checkpoint.log_root)
                .map_err(|e| from_check(&reg.name, &e))?,
        );
        let map_root = checks::hash_bytes(&contents.checkpoint.map_root)
            .map_err(|e| from_check(&reg.name, &e))?;
        let tcp = TlogCheckpoint {
            origin: format!("warg:{}", reg.key.key_id),
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
            let latest = self.trust().latest(&reg.name).await?;
            let (from, proof) = match latest.filter(|l| l.size < len && l.size > 0) {
                Some(l) => (
                    l.size,
                    self.consistency_hashes(reg, l.size, len, &root).await?,
                ),
                None => (0, Vec::new()),
            };
            let outcome = self
                .trust()
                .advance(Offer {
                    upstream: reg.name.clone(),
                    note: note.clone(),
                    checkpoint: tcp.clone(),
                    from_size: from,
                    proof,
                    signed_time: Some(signed),
                })
                .await;
            match outcome {
                Ok(_) => {
                    if from > 0 {
                        self.tally(reg, "consistency", true);
                    }
                    break;
                }
                Err(TrustError::StaleBase { .. }) if attempt < ADVANCE_ATTEMPTS => continue,
                Err(e) => {
                    // A verdict on the upstream (fork, rewind, …), not a
                    // storage failure of bulwark's own.
                    if !matches!(e, TrustError::Storage { .. }) {
                        self.tally(reg, e.check(), false);
                    }
                    return Err(Refusal::from_trust(&e));
                }
            }
        }
        self.metrics().set_checkpoint_time(&reg.name, signed);
        reg.memory()?.remember_checkpoint(epoch, vcp);
        Ok(())
    }

    /// The consistency proof `from → to` from the upstream, checked and
    /// converted to RFC 9162 hashes for the trust state (which judges
    /// whether it links the accepted root to this one, and quarantines with
    /// evidence if it does not). A malformed bundle is a refusal, not
    /// evidence.
    async fn consistency_hashes(
        &self,
        reg: &Registry,
        from: u64,
        to: u64,
        root: &TlogHash,
    ) -> Result<Vec<TlogHash>, Refusal> {
        let body = wire::encode_json(&wire::ConsistencyRequest {
            from: to_len(from),
            to: to_len(to),
        });
        let request = UpstreamRequest::post_json_idempotent("/v1/proof/consistency", body);
        let resp = self.post_json(reg, own(request)).await?;
        let resp = expect_ok(
            &reg.name,
            &format!("the consistency proof {from} → {to}"),
            resp,
        )?;
        let c: wire::ConsistencyResponse =
            wire::decode_json("consistency response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| malformed(&reg.name, e))?;
        let converted = checks::check_consistency(&c.proof, from, to).map_err(|e| {
            self.tally(reg, e.check(), false);
            from_check(&reg.name, &e)
        })?;
        if converted.new_root != root.0 {
            self.tally(reg, "consistency", false);
            return Err(from_check(
                &reg.name,
                &CheckError::Consistency(format!(
                    "the proof {from} → {to} does not end at the checkpoint's log root"
                )),
            )
            .expected_seen(hex::encode(root.0), hex::encode(converted.new_root)));
        }
        Ok(converted.rfc)
    }

    /// A verified checkpoint of length `len`: memory, else one the trust
    /// state accepted at that length (in the current epoch), verified again.
    pub async fn checkpoint_at(
        &self,
        reg: &Registry,
        epoch: u64,
        len: u64,
    ) -> Result<VerifiedCheckpoint, Refusal> {
        if let Some(cp) = reg.memory()?.checkpoint(len) {
            return Ok(cp);
        }
        if let Some(a) = self.trust().accepted_at(&reg.name, epoch, len).await? {
            let cp: SignedCheckpoint =
                wire::decode_json("stored checkpoint", &a.note, MAX_CHECKPOINT_BYTES)
                    .map_err(|e| malformed(&reg.name, e))?;
            let vcp = self.verify_envelope(reg, epoch, &cp).await?;
            reg.memory()?.remember_checkpoint(epoch, vcp.clone());
            return Ok(vcp);
        }
        Err(refuse(
            &reg.name,
            "checkpoint",
            format!("log length {len} is not a checkpoint bulwark has verified"),
        ))
    }

    /// `POST /v1/verify/checkpoint`, judged from what bulwark verified: the
    /// checkpoint holds if it has the roots of the checkpoint bulwark
    /// verified at that length, the signature if the pinned key made it.
    pub async fn judge_checkpoint(
        &self,
        reg: &Registry,
        epoch: u64,
        cp: &SignedCheckpoint,
    ) -> Judgement {
        use warg_crypto::{Encode as _, Signable as _};
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let signature = cp.key_id() == &reg.key.key_id
            && TimestampedCheckpoint::verify(&reg.key.key, &contents.encode(), cp.signature())
                .is_ok();
        let len = contents.checkpoint.log_length as u64;
        let checkpoint = matches!(
            self.checkpoint_at(reg, epoch, len).await,
            Ok(v) if v.log_root() == &contents.checkpoint.log_root
                && v.map_root() == &contents.checkpoint.map_root
        );
        Judgement {
            checkpoint,
            signature,
        }
    }
}

/// The checkpoint's signed time. A timestamp past what a clock can hold
/// (`u64::MAX` seconds) is refused, never a panic.
fn signed_time(up: &str, contents: &TimestampedCheckpoint) -> Result<SystemTime, Refusal> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(contents.timestamp))
        .ok_or_else(|| {
            refuse(
                up,
                "timestamp",
                format!(
                    "checkpoint of length {} carries timestamp {}, past any time this clock can hold",
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
        let r = signed_time("up", &contents).unwrap_err();
        assert_eq!(r.status, http::StatusCode::BAD_GATEWAY);
        assert_eq!(r.check, "timestamp");
        assert!(r.message.contains("past any time this clock can hold"));
    }
}
