//! The verification steps the Warg front runs on upstream answers before it
//! passes them on: checkpoint signatures under the pinned operator key,
//! inclusion bundles (exact proof counts and leaf positions, log and map
//! roots), consistency bundles (guarded against the reference crate's
//! panics), package and operator log validation, and the conversion of a
//! Warg consistency bundle into an RFC 9162 proof for the trust state.
//!
//! Called by `warg::front` only. The pure verifier of `warg::verify` (built
//! in parallel) covers the same ground; this module is the front's thin,
//! self-contained layer so the front does not depend on that API's shape.

use std::collections::HashMap;

use warg_crypto::hash::{AnyHash, Hash, Sha256};
use warg_crypto::signing::{KeyID, PublicKey};
use warg_crypto::Signable;
use warg_protocol::operator;
use warg_protocol::package;
use warg_protocol::{ProtoEnvelope, PublishedProtoEnvelope};
use warg_transparency::log::{LogData, Node};

use crate::tlog::Hash as TlogHash;
use crate::warg::wire::{
    self, InclusionResponse, LogId, LogLeaf, MapLeaf, PublishedRecord, RecordId, RegistryIndex,
    SignedCheckpoint, TimestampedCheckpoint, MAP_DEPTH,
};

/// Why an upstream answer was refused. The text says which check failed,
/// what was expected and what was seen.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CheckError {
    #[error("checkpoint key: expected the pinned operator key {expected}, checkpoint is signed by key {seen}")]
    WrongKey { expected: String, seen: String },
    #[error("checkpoint signature: does not verify under the pinned operator key {key}")]
    BadSignature { key: String },
    #[error("commit permission: operator log does not grant key {key} the `commit` permission")]
    NoCommitPermission { key: String },
    #[error("inclusion bundle: {0}")]
    Inclusion(String),
    #[error("consistency bundle: {0}")]
    Consistency(String),
    #[error("log validation: {0}")]
    Log(String),
    #[error("{0}")]
    Wire(String),
}

impl CheckError {
    /// A short name of the check, for error bodies and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            CheckError::WrongKey { .. } => "operator-key",
            CheckError::BadSignature { .. } => "checkpoint-signature",
            CheckError::NoCommitPermission { .. } => "commit-permission",
            CheckError::Inclusion(_) => "inclusion",
            CheckError::Consistency(_) => "consistency",
            CheckError::Log(_) => "log-validation",
            CheckError::Wire(_) => "wire",
        }
    }
}

/// The pinned operator key of an upstream.
#[derive(Debug, Clone)]
pub struct PinnedKey {
    pub key: PublicKey,
    pub key_id: KeyID,
}

impl PinnedKey {
    /// Parses `ecdsa-p256:<base64 SEC1 point>`.
    pub fn parse(text: &str) -> Result<PinnedKey, String> {
        let key: PublicKey = text
            .parse()
            .map_err(|e| format!("operator_key {text:?} is not a Warg public key: {e}"))?;
        let key_id = key.fingerprint();
        Ok(PinnedKey { key, key_id })
    }

    /// Checks a checkpoint envelope: signed by this key, and the signature
    /// verifies over the encoded contents.
    pub fn check_checkpoint(&self, cp: &SignedCheckpoint) -> Result<(), CheckError> {
        if cp.key_id() != &self.key_id {
            return Err(CheckError::WrongKey {
                expected: self.key_id.to_string(),
                seen: cp.key_id().to_string(),
            });
        }
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let encoded = warg_crypto::Encode::encode(contents);
        TimestampedCheckpoint::verify(&self.key, &encoded, cp.signature()).map_err(|_| {
            CheckError::BadSignature {
                key: self.key_id.to_string(),
            }
        })
    }
}

/// The 32 bytes of a SHA-256 Warg hash.
pub fn hash_bytes(h: &AnyHash) -> Result<[u8; 32], CheckError> {
    h.bytes()
        .try_into()
        .map_err(|_| CheckError::Wire(format!("hash {h} is not 32 bytes")))
}

fn same(a: &Hash<Sha256>, b: &AnyHash) -> bool {
    a.bytes() == b.bytes()
}

/// One record of a log as the upstream returned it, decoded.
#[derive(Debug, Clone)]
pub struct FetchedRecord {
    pub registry_index: RegistryIndex,
    pub record_id: RecordId,
}

/// A log bulwark fetched in full at one checkpoint and validated.
#[derive(Debug, Clone, Default)]
pub struct ValidatedLog {
    /// Every record, in order.
    pub records: Vec<FetchedRecord>,
    /// Content digests named by releases (`sha256:…`).
    pub releases: Vec<String>,
    /// The validated operator log state (operator log only).
    pub operator: Option<operator::LogState>,
}

impl ValidatedLog {
    /// The head record (the log's latest at that checkpoint).
    pub fn head(&self) -> Option<&FetchedRecord> {
        self.records.last()
    }
}

/// Which log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogKind {
    Operator,
    Package(LogId),
}

impl LogKind {
    pub fn log_id(&self) -> LogId {
        match self {
            LogKind::Operator => wire::operator_log_id(),
            LogKind::Package(id) => id.clone(),
        }
    }
}

/// Validates a whole log, from its first record, in order: signatures by
/// keys the log grants, `prev` chain, timestamps; registry indices strictly
/// increasing and below `log_length`.
pub fn validate_log(
    kind: &LogKind,
    records: &[PublishedRecord],
    log_length: u64,
) -> Result<ValidatedLog, CheckError> {
    let mut out = ValidatedLog::default();
    let mut last_index: Option<RegistryIndex> = None;
    let mut check_index = |i: RegistryIndex| -> Result<(), CheckError> {
        if i as u64 >= log_length || last_index.is_some_and(|l| i <= l) {
            return Err(CheckError::Log(format!(
                "record registry index {i} is out of order or not below the log length {log_length}"
            )));
        }
        last_index = Some(i);
        Ok(())
    };
    match kind {
        LogKind::Operator => {
            let mut state = operator::LogState::new();
            for r in records {
                let env: PublishedProtoEnvelope<operator::OperatorRecord> =
                    PublishedProtoEnvelope::try_from(r.envelope.clone())
                        .map_err(|e| CheckError::Log(format!("operator record: {e:#}")))?;
                check_index(env.registry_index)?;
                let id = RecordId::operator_record::<Sha256>(&env.envelope);
                state = state
                    .validate(&env.envelope)
                    .map_err(|e| CheckError::Log(format!("operator record {id}: {e}")))?;
                out.records.push(FetchedRecord {
                    registry_index: env.registry_index,
                    record_id: id,
                });
            }
            out.operator = Some(state);
        }
        LogKind::Package(log_id) => {
            let mut state = package::LogState::new();
            for r in records {
                let env: PublishedProtoEnvelope<package::PackageRecord> =
                    PublishedProtoEnvelope::try_from(r.envelope.clone())
                        .map_err(|e| CheckError::Log(format!("package record: {e:#}")))?;
                check_index(env.registry_index)?;
                let id = RecordId::package_record::<Sha256>(&env.envelope);
                state = validate_package(state, &env.envelope)
                    .map_err(|e| CheckError::Log(format!("log {log_id}: record {id}: {e}")))?;
                out.records.push(FetchedRecord {
                    registry_index: env.registry_index,
                    record_id: id,
                });
            }
            for rel in state.releases() {
                if let Some(c) = rel.content() {
                    out.releases.push(c.to_string());
                }
            }
        }
    }
    if out.records.is_empty() {
        return Err(CheckError::Log("the log has no records".into()));
    }
    Ok(out)
}

fn validate_package(
    state: package::LogState,
    env: &ProtoEnvelope<package::PackageRecord>,
) -> Result<package::LogState, String> {
    state.validate(env).map_err(|e| e.to_string())
}

/// Checks an inclusion answer against a verified checkpoint: exactly one
/// log proof per requested leaf, for the leaf's node at the checkpoint's
/// length, evaluating to its log root; exactly one map proof per leaf, at
/// most [`MAP_DEPTH`] peers, evaluating to its map root with the leaf's
/// record as its log's latest. `leafs` are (registry index, leaf).
pub fn check_inclusion(
    cp: &TimestampedCheckpoint,
    leafs: &[(RegistryIndex, LogLeaf)],
    resp: &InclusionResponse,
    check_map: bool,
) -> Result<(), CheckError> {
    let bad = |s: String| CheckError::Inclusion(s);
    let cp = &cp.checkpoint;
    let log = wire::decode_log_bundle(&resp.log, wire::DEFAULT_BUNDLE_LIMIT)
        .map_err(|e| bad(e.to_string()))?;
    let (data, cons, incs) = log.unbundle();
    if !cons.is_empty() {
        return Err(bad(format!(
            "expected no consistency proofs, saw {}",
            cons.len()
        )));
    }
    if incs.len() != leafs.len() {
        return Err(bad(format!(
            "expected {} log inclusion proofs, saw {}",
            leafs.len(),
            incs.len()
        )));
    }
    for (proof, (index, leaf)) in incs.iter().zip(leafs) {
        let node = wire::leaf_node(*index).map_err(|e| bad(e.to_string()))?;
        if proof.leaf() != node || proof.log_length() != cp.log_length {
            return Err(bad(format!(
                "expected a proof for node {} at log length {}, saw node {} at length {}",
                node.0,
                cp.log_length,
                proof.leaf().0,
                proof.log_length()
            )));
        }
        let root = proof
            .evaluate_value(&data, leaf)
            .map_err(|e| bad(format!("log proof for index {index}: {e}")))?;
        if !same(&root, &cp.log_root) {
            return Err(bad(format!(
                "log proof for index {index} evaluates to {root}, checkpoint log root is {}",
                cp.log_root
            )));
        }
    }
    if !check_map {
        return Ok(());
    }
    let map = wire::decode_map_bundle(&resp.map, wire::DEFAULT_BUNDLE_LIMIT)
        .map_err(|e| bad(e.to_string()))?;
    let proofs = map.unbundle();
    if proofs.len() != leafs.len() {
        return Err(bad(format!(
            "expected {} map inclusion proofs, saw {}",
            leafs.len(),
            proofs.len()
        )));
    }
    for (proof, (index, leaf)) in proofs.iter().zip(leafs) {
        if proof.peers.len() > MAP_DEPTH {
            return Err(bad(format!(
                "map proof has {} peers, at most {MAP_DEPTH} possible",
                proof.peers.len()
            )));
        }
        let root = proof.evaluate(
            &leaf.log_id,
            &MapLeaf {
                record_id: leaf.record_id.clone(),
            },
        );
        if !same(&root, &cp.map_root) {
            return Err(bad(format!(
                "map proof for index {index} (log {}) evaluates to {root}, checkpoint map root is {}",
                leaf.log_id, cp.map_root
            )));
        }
    }
    Ok(())
}

/// What a consistency bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistent {
    /// The log root at the old length.
    pub old_root: [u8; 32],
    /// The log root at the new length.
    pub new_root: [u8; 32],
    /// The same proof as an RFC 9162 hash list (for the trust state).
    pub rfc: Vec<TlogHash>,
}

/// Checks a consistency bundle for `from → to` and returns the old and new
/// log roots it proves, plus the same proof as an RFC 9162 hash list (for
/// the trust state). Guards: `0 < from <= to`, exactly one consistency
/// proof, for exactly these lengths, no inclusion proofs.
pub fn check_consistency(bytes: &[u8], from: u64, to: u64) -> Result<Consistent, CheckError> {
    let bad = |s: String| CheckError::Consistency(s);
    if from == 0 || from > to {
        return Err(bad(format!("cannot prove {from} → {to}")));
    }
    let bundle = wire::decode_log_bundle(bytes, wire::DEFAULT_BUNDLE_LIMIT)
        .map_err(|e| bad(e.to_string()))?;
    let (data, cons, incs) = bundle.unbundle();
    if cons.len() != 1 || !incs.is_empty() {
        return Err(bad(format!(
            "expected exactly one consistency proof and no inclusion proofs, saw {} and {}",
            cons.len(),
            incs.len()
        )));
    }
    let p = &cons[0];
    if p.old_length as u64 != from || p.new_length as u64 != to {
        return Err(bad(format!(
            "asked for {from} → {to}, the bundle proves {} → {}",
            p.old_length, p.new_length
        )));
    }
    let (old, new) = p.evaluate(&data).map_err(|e| bad(e.to_string()))?;
    let old: [u8; 32] = old
        .bytes()
        .try_into()
        .map_err(|_| bad("hash size".into()))?;
    let new: [u8; 32] = new
        .bytes()
        .try_into()
        .map_err(|_| bad("hash size".into()))?;
    let rfc = rfc_consistency_proof(&data, from, to)?;
    Ok(Consistent {
        old_root: old,
        new_root: new,
        rfc,
    })
}

/// Hashes of the subtrees of a log known from a bundle.
struct Known<'a, L: LogData<Sha256, LogLeaf>> {
    data: &'a L,
    budget: usize,
    memo: HashMap<(u64, u64), [u8; 32]>,
}

impl<L: LogData<Sha256, LogLeaf>> Known<'_, L> {
    /// The hash of the subtree over leaves `[lo, hi)` (RFC 6962 MTH; Warg's
    /// branch hash is the same `H(0x01 ‖ l ‖ r)`).
    fn mth(&mut self, lo: u64, hi: u64) -> Result<[u8; 32], CheckError> {
        if let Some(h) = self.memo.get(&(lo, hi)) {
            return Ok(*h);
        }
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            CheckError::Consistency("the bundle lacks hashes to rebuild the proof".into())
        })?;
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let idx = lo
                .checked_mul(2)
                .and_then(|x| x.checked_add(n - 1))
                .and_then(|x| usize::try_from(x).ok());
            if let Some(h) = idx.and_then(|i| self.data.hash_for(Node(i))) {
                let b: [u8; 32] = h
                    .bytes()
                    .try_into()
                    .map_err(|_| CheckError::Consistency("hash size".into()))?;
                self.memo.insert((lo, hi), b);
                return Ok(b);
            }
        }
        if n <= 1 {
            return Err(CheckError::Consistency(format!(
                "the bundle lacks the hash of leaf {lo}"
            )));
        }
        let k = split(n);
        let l = self.mth(lo, lo + k)?;
        let r = self.mth(lo + k, hi)?;
        let h = crate::tlog::merkle::node_hash(&TlogHash(l), &TlogHash(r)).0;
        self.memo.insert((lo, hi), h);
        Ok(h)
    }

    fn subproof(
        &mut self,
        m: u64,
        lo: u64,
        hi: u64,
        whole: bool,
        out: &mut Vec<TlogHash>,
    ) -> Result<(), CheckError> {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(TlogHash(self.mth(lo, hi)?));
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out)?;
            out.push(TlogHash(self.mth(lo + k, hi)?));
        } else {
            self.subproof(m - k, lo + k, hi, false, out)?;
            out.push(TlogHash(self.mth(lo, lo + k)?));
        }
        Ok(())
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1u64;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Rebuilds the RFC 9162 consistency proof `m → n` from the node hashes of
/// a Warg consistency bundle.
pub fn rfc_consistency_proof(
    data: &impl LogData<Sha256, LogLeaf>,
    m: u64,
    n: u64,
) -> Result<Vec<TlogHash>, CheckError> {
    let mut k = Known {
        data,
        budget: 4096,
        memo: HashMap::new(),
    };
    let mut out = Vec::new();
    if m > 0 && m < n {
        k.subproof(m, 0, n, true, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::verify_consistency;
    use warg_transparency::log::{LogBuilder, VecLog};

    fn leaf(i: u8) -> LogLeaf {
        let h: AnyHash = Hash::<Sha256>::of(&[i][..]).into();
        LogLeaf {
            log_id: h.clone().into(),
            record_id: h.into(),
        }
    }

    #[test]
    fn warg_consistency_bundles_convert_to_rfc9162_proofs_that_verify() {
        let mut log: VecLog<Sha256, LogLeaf> = VecLog::default();
        let mut roots = vec![None];
        for i in 0..40u8 {
            log.push(&leaf(i));
            let cp = log.checkpoint();
            roots.push(Some(hash_bytes(&cp.root().into()).unwrap()));
        }
        for n in 1..=40u64 {
            for m in 1..=n {
                let proof = log.prove_consistency(m as usize, n as usize);
                let bundle = wire::LogProofBundle::bundle(vec![proof], vec![], &log).unwrap();
                let bytes = bundle.encode();
                let Consistent {
                    old_root: old,
                    new_root: new,
                    rfc,
                } = check_consistency(&bytes, m, n).unwrap();
                assert_eq!(Some(old), roots[m as usize]);
                assert_eq!(Some(new), roots[n as usize]);
                verify_consistency(m, n, &TlogHash(old), &TlogHash(new), &rfc)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
            }
        }
    }

    #[test]
    fn empty_or_wrong_consistency_bundles_are_refused() {
        assert!(check_consistency(&[], 1, 2).is_err());
        assert!(check_consistency(&[], 0, 2).is_err());
        assert!(check_consistency(&[], 3, 2).is_err());
        let mut log: VecLog<Sha256, LogLeaf> = VecLog::default();
        for i in 0..5u8 {
            log.push(&leaf(i));
        }
        let proof = log.prove_consistency(2, 5);
        let bytes = wire::LogProofBundle::bundle(vec![proof], vec![], &log)
            .unwrap()
            .encode();
        assert!(check_consistency(&bytes, 3, 5).is_err());
    }
}
