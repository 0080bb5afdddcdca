//! Rekor checkpoints through the trust state: per log origin, persisted,
//! consistent with every checkpoint accepted before.
//!
//! A verified [`LogEntry`] carries a checkpoint the log's key signed. It is
//! offered to [`TrustState`] under the upstream name [`upstream_name`]
//! derives from its origin (Rekor v1 shards have one origin each):
//!
//! * first checkpoint of that origin: accepted;
//! * larger than the accepted one: the caller's [`ProofSource`] fetches a
//!   consistency proof (Rekor v1 `GET /api/v1/log/proof`, Rekor v2 from
//!   tiles, see [`tile_consistency_proof`]) and the trust state checks it; a
//!   proof that fails is evidence and quarantines the log;
//! * the same size: the roots must match (else a fork: quarantine);
//! * smaller (a bundle made before the latest accepted checkpoint): proven
//!   against the accepted one with a proof from its size to the accepted
//!   size ([`TrustState::prove_prefix`]).
//!
//! Extension lines of Rekor checkpoints are not bound (older Rekor v1
//! checkpoints carry a `Timestamp:` line that changes at every re-signing
//! of the same tree); they are stripped before the state sees them.

use super::verify::LogEntry;
use super::Refusal;
use crate::tlog::checkpoint::{parse_decimal, Checkpoint};
use crate::tlog::merkle::{self, Hash};
use crate::tlog::tile::{TileHashReader, TileReader};
use crate::verify::trust::{Accepted, Advance, ConsistencyProof, TrustError, TrustState};
use std::time::SystemTime;

/// The check name of a consistency proof that could not be had or was
/// malformed.
pub const CHECK_CONSISTENCY_PROOF: &str = "consistency proof";

/// Most hashes a consistency proof may carry (two 64-bit tree sizes).
pub const MAX_CONSISTENCY_HASHES: usize = 128;

/// Largest Rekor v1 proof answer read.
pub const MAX_PROOF_ANSWER: usize = 64 * 1024;

/// The trust-state upstream name of a log origin:
/// `rekor.sigstore.dev - 1193050959916656506` becomes
/// `sigstore:rekor.sigstore.dev/1193050959916656506`;
/// `log2025-1.rekor.sigstore.dev` becomes `sigstore:log2025-1.rekor.sigstore.dev`.
pub fn upstream_name(origin: &str) -> String {
    let mut name = String::from("sigstore:");
    for c in origin.replacen(" - ", "/", 1).chars() {
        name.push(if c.is_ascii_alphanumeric() || "./-_:".contains(c) {
            c
        } else {
            '_'
        });
    }
    name
}

/// The Rekor v1 tree ID of an origin `<host> - <tree id>`.
pub fn rekor_v1_tree_id(origin: &str) -> Option<u64> {
    parse_decimal(origin.rsplit_once(" - ")?.1)
}

/// Where a consistency proof comes from: the caller's I/O (an HTTP client
/// against Rekor, a mirror, a test log).
pub trait ProofSource {
    /// An RFC 9162 consistency proof from tree size `first` to tree size
    /// `second` (the larger, whose verified root is `second_root`) of the
    /// log that `entry` is in. The trust state checks it; the root lets a
    /// source authenticate tiles ([`tile_consistency_proof`]) or check
    /// the answer is about the right tree ([`parse_rekor_v1_proof`]).
    fn consistency(
        &mut self,
        entry: &LogEntry,
        first: u64,
        second: u64,
        second_root: &Hash,
    ) -> Result<Vec<Hash>, String>;
}

/// The request path of a Rekor v1 consistency proof.
pub fn rekor_v1_proof_path(entry: &LogEntry, first: u64, second: u64) -> Result<String, Refusal> {
    let tree = rekor_v1_tree_id(&entry.checkpoint.origin).ok_or_else(|| {
        Refusal::new(
            "checkpoint origin",
            "<host> - <tree id>",
            entry.checkpoint.origin.clone(),
        )
    })?;
    Ok(format!(
        "/api/v1/log/proof?firstSize={first}&lastSize={second}&treeID={tree}"
    ))
}

/// Parses a Rekor v1 consistency proof answer
/// (`{"rootHash": hex, "hashes": [hex, ...]}`) and checks that its root is
/// `want_root` (the root of the larger tree, already verified).
pub fn parse_rekor_v1_proof(body: &[u8], want_root: &Hash) -> Result<Vec<Hash>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        root_hash: String,
        #[serde(default)]
        hashes: Vec<String>,
    }
    if body.len() > MAX_PROOF_ANSWER {
        return Err(format!(
            "proof answer is {} bytes, more than {MAX_PROOF_ANSWER}",
            body.len()
        ));
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("proof answer: {e}"))?;
    if a.hashes.len() > MAX_CONSISTENCY_HASHES {
        return Err(format!(
            "proof has {} hashes, more than {MAX_CONSISTENCY_HASHES}",
            a.hashes.len()
        ));
    }
    let hex_hash = |s: &str| -> Result<Hash, String> {
        let b = hex::decode(s).map_err(|_| format!("proof hash {s:?} is not hex"))?;
        Hash::from_slice(&b).map_err(|e| format!("proof hash: {e}"))
    };
    let root = hex_hash(&a.root_hash)?;
    if root != *want_root {
        return Err(format!("proof answer is for root {root}, want {want_root}"));
    }
    a.hashes.iter().map(|h| hex_hash(h)).collect()
}

/// A consistency proof from tree size `old_size` to the tree of
/// `new_size` leaves with root `new_root` (from a verified checkpoint),
/// computed from c2sp.org/tlog-tiles tiles (Rekor v2). Every tile is
/// authenticated against the new tree before use.
pub fn tile_consistency_proof<R: TileReader + ?Sized>(
    reader: &R,
    new_size: u64,
    new_root: Hash,
    old_size: u64,
) -> Result<Vec<Hash>, String> {
    let hr = TileHashReader::new(new_size, new_root, reader);
    merkle::prove_tree(new_size, old_size, &hr).map_err(|e| e.to_string())
}

/// What recording a checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The first checkpoint of this log origin.
    First(Accepted),
    /// Proven to extend the accepted checkpoint of size `from`.
    Extended { from: u64, accepted: Accepted },
    /// The accepted checkpoint itself.
    Unchanged(Accepted),
    /// Older than the accepted checkpoint, and proven to be its prefix.
    Prefix { latest: Accepted },
}

/// The checkpoint as the trust state binds it: extension lines stripped.
fn bound(entry: &LogEntry) -> Checkpoint {
    Checkpoint {
        extensions: Vec::new(),
        ..entry.checkpoint.clone()
    }
}

fn trust_refusal(e: TrustError) -> Refusal {
    Refusal::new(
        e.check(),
        "a checkpoint consistent with the trust state",
        e.to_string(),
    )
}

/// Offers the checkpoint of a verified entry to the trust state. Rekor
/// checkpoints carry no signed time of their own, so freshness counts from
/// when bulwark accepted them.
pub fn record(
    state: &TrustState,
    entry: &LogEntry,
    source: &mut dyn ProofSource,
    now: SystemTime,
) -> Result<Recorded, Refusal> {
    let upstream = upstream_name(&entry.checkpoint.origin);
    let checkpoint = bound(entry);
    state.gate(&upstream).map_err(trust_refusal)?;
    let latest = state.latest(&upstream).map_err(trust_refusal)?;
    let fetch = |source: &mut dyn ProofSource, first: u64, second: u64, root: &Hash| {
        let hashes = source
            .consistency(entry, first, second, root)
            .map_err(|e| {
                Refusal::new(
                    CHECK_CONSISTENCY_PROOF,
                    format!(
                        "a proof from size {first} to {second} of {}",
                        entry.checkpoint.origin
                    ),
                    e,
                )
            })?;
        if hashes.len() > MAX_CONSISTENCY_HASHES {
            return Err(Refusal::new(
                CHECK_CONSISTENCY_PROOF,
                format!("at most {MAX_CONSISTENCY_HASHES} hashes"),
                format!("{}", hashes.len()),
            ));
        }
        Ok(hashes)
    };
    match latest {
        Some(l) if checkpoint.size < l.size => {
            let hashes = fetch(source, checkpoint.size, l.size, &l.root)?;
            let latest = state
                .prove_prefix(&upstream, &entry.note, &checkpoint, &hashes, now)
                .map_err(trust_refusal)?;
            Ok(Recorded::Prefix { latest })
        }
        Some(l) => {
            let hashes = if checkpoint.size > l.size {
                fetch(source, l.size, checkpoint.size, &checkpoint.root)?
            } else {
                Vec::new()
            };
            let proof = ConsistencyProof {
                from_size: l.size,
                hashes: &hashes,
            };
            let adv = state
                .advance_at(&upstream, &entry.note, &checkpoint, proof, None, now)
                .map_err(trust_refusal)?;
            Ok(match adv {
                Advance::First(a) => Recorded::First(a),
                Advance::Extended { from, accepted } => Recorded::Extended { from, accepted },
                Advance::Unchanged(a) => Recorded::Unchanged(a),
            })
        }
        None => {
            let adv = state
                .advance_at(
                    &upstream,
                    &entry.note,
                    &checkpoint,
                    ConsistencyProof::NONE,
                    None,
                    now,
                )
                .map_err(trust_refusal)?;
            Ok(Recorded::First(adv.accepted().clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_are_safe_and_distinct_per_shard() {
        assert_eq!(
            upstream_name("rekor.sigstore.dev - 1193050959916656506"),
            "sigstore:rekor.sigstore.dev/1193050959916656506"
        );
        assert_eq!(
            upstream_name("log2025-1.rekor.sigstore.dev"),
            "sigstore:log2025-1.rekor.sigstore.dev"
        );
        assert_ne!(
            upstream_name("rekor.sigstore.dev - 1193050959916656506"),
            upstream_name("rekor.sigstore.dev - 2605736670972794746")
        );
        assert_eq!(rekor_v1_tree_id("rekor.sigstore.dev - 42"), Some(42));
        assert_eq!(rekor_v1_tree_id("log2025-1.rekor.sigstore.dev"), None);
    }
}
