//! Proof checks against a verified checkpoint: log inclusion of record
//! leaves, map inclusion of log heads, and consistency between two
//! checkpoints.
//!
//! Stricter than the reference client, which zips the proofs of a bundle
//! with the leaves it asked about and so accepts an emptied bundle: here a
//! bundle must hold exactly one proof per leaf, in request order, each for
//! the leaf's own node at the checkpoint's length, before anything is
//! evaluated. The guards before each reference call are the ones
//! `tests/support/WARG.md` §6 lists.
//!
//! Called by the Warg front after `POST /v1/proof/inclusion` and
//! `POST /v1/proof/consistency` answers from an upstream.

use super::checkpoint::VerifiedCheckpoint;
use super::error::WargVerifyError;
use super::logs::LeafRef;
use crate::warg::wire::{
    self, InclusionResponse, LogLeaf, MapLeaf, RegistryLen, DEFAULT_BUNDLE_LIMIT, MAP_DEPTH,
};
use warg_crypto::hash::{AnyHash, Hash, Sha256};

/// Checks both halves of an inclusion answer (`POST /v1/proof/inclusion`
/// with `leafs` = the registry indices of `leaves`, in order): the log
/// bundle proves every leaf in the checkpoint's log, the map bundle proves
/// every leaf's record is its log's head in the checkpoint's map.
pub fn verify_inclusion(
    checkpoint: &VerifiedCheckpoint,
    leaves: &[LeafRef],
    response: &InclusionResponse,
) -> Result<(), WargVerifyError> {
    verify_log_inclusion(checkpoint, leaves, &response.log)?;
    verify_map_inclusion(checkpoint, leaves, &response.map)
}

/// Checks a log proof bundle (`log` of an inclusion answer, after base64)
/// proves exactly `leaves`: one inclusion proof per leaf, in order, proof
/// `k` for node `2 · leaves[k].registry_index` at the checkpoint's log
/// length, no consistency proofs; each evaluates, from the leaf hash of
/// `LogLeaf { log_id, record_id }`, to the checkpoint's log root.
pub fn verify_log_inclusion(
    checkpoint: &VerifiedCheckpoint,
    leaves: &[LeafRef],
    log_bundle: &[u8],
) -> Result<(), WargVerifyError> {
    const WHAT: &str = "log inclusion";
    if leaves.is_empty() {
        return Err(WargVerifyError::NothingToProve { what: WHAT });
    }
    let log_length = checkpoint.log_length();
    let mut nodes = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        if leaf.registry_index >= log_length {
            return Err(WargVerifyError::IndexPastLog {
                index: leaf.registry_index,
                log_length,
            });
        }
        nodes.push(wire::leaf_node(leaf.registry_index)?);
    }
    let bundle = wire::decode_log_bundle(log_bundle, DEFAULT_BUNDLE_LIMIT)?;
    let (data, consistency, inclusions) = bundle.unbundle();
    if !consistency.is_empty() {
        return Err(WargVerifyError::ProofKind {
            what: WHAT,
            kind: "consistency",
            expected: 0,
            seen: consistency.len(),
        });
    }
    if inclusions.len() != leaves.len() {
        return Err(WargVerifyError::ProofCount {
            what: WHAT,
            expected: leaves.len(),
            seen: inclusions.len(),
        });
    }
    let root = checkpoint.log_root_hash();
    for (position, ((leaf, node), proof)) in leaves.iter().zip(&nodes).zip(&inclusions).enumerate()
    {
        if proof.log_length() != log_length {
            return Err(WargVerifyError::ProofLength {
                what: WHAT,
                expected: log_length,
                seen: proof.log_length() as u64,
            });
        }
        if proof.leaf() != *node {
            return Err(WargVerifyError::ProofLeaf {
                position,
                registry_index: leaf.registry_index,
                expected: node.index() as u64,
                seen: proof.leaf().index() as u64,
            });
        }
        let value = LogLeaf {
            log_id: leaf.log_id.clone(),
            record_id: leaf.record_id.clone(),
        };
        // The leaf exists at the proof's length (index < length), so the
        // walk reaches a balanced root; missing hashes are an error, not a
        // panic, in `evaluate_value`.
        let found = super::guarded(WHAT, || {
            proof
                .evaluate_value(&data, &value)
                .map_err(|e| WargVerifyError::ProofUnusable {
                    what: WHAT,
                    position,
                    detail: e.to_string(),
                })
        })?;
        if &found != root {
            return Err(root_mismatch(WHAT, position, leaf, root, &found));
        }
    }
    Ok(())
}

/// Checks a map proof bundle (`map` of an inclusion answer, after base64)
/// proves exactly `leaves`: one proof per leaf, in order, at most 256 peers
/// each, each evaluating `MapLeaf { record_id }` at key `log_id` to the
/// checkpoint's map root. The map holds each log's head only, so every
/// leaf must be the head of its log at the checkpoint.
pub fn verify_map_inclusion(
    checkpoint: &VerifiedCheckpoint,
    leaves: &[LeafRef],
    map_bundle: &[u8],
) -> Result<(), WargVerifyError> {
    const WHAT: &str = "map inclusion";
    if leaves.is_empty() {
        return Err(WargVerifyError::NothingToProve { what: WHAT });
    }
    let proofs = wire::decode_map_bundle(map_bundle, DEFAULT_BUNDLE_LIMIT)?.unbundle();
    if proofs.len() != leaves.len() {
        return Err(WargVerifyError::ProofCount {
            what: WHAT,
            expected: leaves.len(),
            seen: proofs.len(),
        });
    }
    let root = checkpoint.map_root_hash();
    for (position, (leaf, proof)) in leaves.iter().zip(&proofs).enumerate() {
        // `evaluate` computes `256 - peers.len()`.
        if proof.peers.len() > MAP_DEPTH {
            return Err(WargVerifyError::MapPeers {
                position,
                limit: MAP_DEPTH,
                seen: proof.peers.len(),
            });
        }
        let value = MapLeaf {
            record_id: leaf.record_id.clone(),
        };
        let found = super::guarded(WHAT, || Ok(proof.evaluate(&leaf.log_id, &value)))?;
        if &found != root {
            return Err(root_mismatch(WHAT, position, leaf, root, &found));
        }
    }
    Ok(())
}

/// Checks `new` extends `old`: [`verify_consistency_from`] from `old`'s
/// length and root, and `new` is not signed earlier than `old` (a replayed
/// older checkpoint of the same length is refused too).
pub fn verify_consistency(
    old: &VerifiedCheckpoint,
    new: &VerifiedCheckpoint,
    proof_bundle: &[u8],
) -> Result<(), WargVerifyError> {
    if new.log_length() < old.log_length() {
        return Err(WargVerifyError::Rewind {
            old_length: old.log_length(),
            new_length: new.log_length(),
        });
    }
    if new.timestamp() < old.timestamp() {
        return Err(WargVerifyError::TimestampRewind {
            old: old.timestamp(),
            new: new.timestamp(),
        });
    }
    verify_consistency_from(old.log_length(), old.log_root(), new, proof_bundle)
}

/// Checks the log of `new` extends a verified log of `old_length` leaves
/// with root `old_root`, by the proof bundle of `POST /v1/proof/consistency
/// {"from": old_length, "to": new.log_length()}` (after base64):
///
/// - `old_length` must be at least 1 and at most `new`'s length (smaller is
///   a rewind);
/// - equal lengths need no proof (`proof_bundle` is not read): the roots
///   must be equal, else the upstream forked;
/// - otherwise the bundle must hold exactly one consistency proof, from
///   `old_length` to `new`'s length, and no inclusion proofs; it must
///   evaluate to `old_root` and `new`'s root.
pub fn verify_consistency_from(
    old_length: RegistryLen,
    old_root: &AnyHash,
    new: &VerifiedCheckpoint,
    proof_bundle: &[u8],
) -> Result<(), WargVerifyError> {
    const WHAT: &str = "consistency";
    let new_length = new.log_length();
    if old_length == 0 {
        return Err(WargVerifyError::ConsistencyFromZero);
    }
    if new_length < old_length {
        return Err(WargVerifyError::Rewind {
            old_length,
            new_length,
        });
    }
    if new_length == old_length {
        if new.log_root() != old_root {
            return Err(WargVerifyError::ConsistencyRoot {
                which: "log",
                log_length: new_length,
                expected: old_root.to_string(),
                seen: new.log_root().to_string(),
            });
        }
        return Ok(());
    }
    let bundle = wire::decode_log_bundle(proof_bundle, DEFAULT_BUNDLE_LIMIT)?;
    let (data, proofs, inclusions) = bundle.unbundle();
    if !inclusions.is_empty() {
        return Err(WargVerifyError::ProofKind {
            what: WHAT,
            kind: "inclusion",
            expected: 0,
            seen: inclusions.len(),
        });
    }
    let [proof] = proofs.as_slice() else {
        return Err(WargVerifyError::ProofCount {
            what: WHAT,
            expected: 1,
            seen: proofs.len(),
        });
    };
    // `evaluate` panics for old_length > new_length or old_length == 0:
    // both are pinned to the checked values here.
    if proof.old_length != old_length || proof.new_length != new_length {
        return Err(WargVerifyError::ConsistencyLengths {
            expected_old: old_length,
            expected_new: new_length,
            seen_old: proof.old_length as u64,
            seen_new: proof.new_length as u64,
        });
    }
    let (found_old, found_new) = super::guarded(WHAT, || {
        proof
            .evaluate(&data)
            .map_err(|e| WargVerifyError::ProofUnusable {
                what: WHAT,
                position: 0,
                detail: e.to_string(),
            })
    })?;
    let found_old = AnyHash::from(found_old);
    if &found_old != old_root {
        return Err(WargVerifyError::ConsistencyRoot {
            which: "old log",
            log_length: old_length,
            expected: old_root.to_string(),
            seen: found_old.to_string(),
        });
    }
    if &found_new != new.log_root_hash() {
        return Err(WargVerifyError::ConsistencyRoot {
            which: "new log",
            log_length: new_length,
            expected: new.log_root().to_string(),
            seen: AnyHash::from(found_new).to_string(),
        });
    }
    Ok(())
}

fn root_mismatch(
    what: &'static str,
    position: usize,
    leaf: &LeafRef,
    expected: &Hash<Sha256>,
    seen: &Hash<Sha256>,
) -> WargVerifyError {
    WargVerifyError::RootMismatch {
        what,
        position,
        leaf: leaf.describe(),
        expected: AnyHash::from(expected).to_string(),
        seen: AnyHash::from(seen).to_string(),
    }
}
