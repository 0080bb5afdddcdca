//! Unit tests of the Warg verifier against the reference provers: logs and
//! maps built with `warg-transparency` (`VecLog`, `Map`), proofs bundled by
//! the reference `bundle` functions, checkpoints signed with `warg-crypto`.
//! Every honest proof must verify; the same proof asked about another leaf
//! or length must not. (The tests against a running `warg-server` are in
//! `tests/warg_verify.rs`.)

use super::*;
use crate::warg::wire::{
    self, Checkpoint, LogId, LogLeaf, LogProofBundle, MapLeaf, MapProofBundle, RecordId,
    SignedCheckpoint, TimestampedCheckpoint,
};
use proptest::prelude::*;
use std::time::SystemTime;
use warg_crypto::hash::{AnyHash, Hash, HashAlgorithm, Sha256};
use warg_crypto::signing::{generate_p256_pair, PrivateKey};
use warg_protocol::operator::{OperatorEntry, OperatorRecord};
use warg_protocol::package::{PackageEntry, PackageRecord};
use warg_protocol::{ProtoEnvelope, PublishedProtoEnvelope};
use warg_transparency::log::{LogBuilder, LogData, Node, VecLog};
use warg_transparency::map::Map;

/// A registry of `n` leaves: the operator init record at 0, then one
/// record each of `n - 1` made-up package logs.
struct Registry {
    private: PrivateKey,
    public: PublicKey,
    operator: OperatorState,
    log: VecLog<Sha256, LogLeaf>,
    leaves: Vec<LeafRef>,
    /// `roots[k]` is the log root at length `k + 1`.
    roots: Vec<Hash<Sha256>>,
    map: Map<Sha256, LogId, MapLeaf>,
}

impl Registry {
    fn new(n: usize) -> Registry {
        let (public, private) = generate_p256_pair();
        let init = OperatorRecord {
            prev: None,
            version: 0,
            timestamp: SystemTime::now(),
            entries: vec![OperatorEntry::Init {
                hash_algorithm: HashAlgorithm::Sha256,
                key: public.clone(),
            }],
        };
        let envelope = ProtoEnvelope::signed_contents(&private, init).unwrap();
        let mut operator = OperatorState::new();
        operator
            .validate(&[PublishedProtoEnvelope {
                envelope,
                registry_index: 0,
            }
            .into()])
            .unwrap();
        let mut registry = Registry {
            private,
            public,
            leaves: vec![operator.head_leaf().unwrap()],
            operator,
            log: VecLog::default(),
            roots: Vec::new(),
            map: Map::default(),
        };
        let first = registry.leaves[0].clone();
        registry.push(&first);
        for i in 1..n {
            let leaf = LeafRef {
                registry_index: i,
                log_id: LogId::from(AnyHash::from(Hash::<Sha256>::of(
                    format!("log {i}").as_str(),
                ))),
                record_id: RecordId::from(AnyHash::from(Hash::<Sha256>::of(
                    format!("record {i}").as_str(),
                ))),
            };
            registry.push(&leaf);
            registry.leaves.push(leaf);
        }
        registry
    }

    fn push(&mut self, leaf: &LeafRef) {
        self.log.push(&LogLeaf {
            log_id: leaf.log_id.clone(),
            record_id: leaf.record_id.clone(),
        });
        self.roots.push(self.log.checkpoint().root());
        self.map = self.map.insert(
            leaf.log_id.clone(),
            MapLeaf {
                record_id: leaf.record_id.clone(),
            },
        );
    }

    fn len(&self) -> usize {
        self.leaves.len()
    }

    fn checkpoint(&self) -> VerifiedCheckpoint {
        let contents = TimestampedCheckpoint {
            checkpoint: Checkpoint {
                log_root: self.log.checkpoint().root().into(),
                log_length: self.len(),
                map_root: self.map.root().into(),
            },
            timestamp: 1_800_000_000,
        };
        let envelope = SignedCheckpoint::signed_contents(&self.private, contents).unwrap();
        verify_checkpoint(&envelope, &self.public, &self.operator).unwrap()
    }

    fn log_bundle(&self, indices: &[usize]) -> Vec<u8> {
        let proofs = indices
            .iter()
            .map(|&i| self.log.prove_inclusion(Node(2 * i), self.len()))
            .collect();
        LogProofBundle::bundle(vec![], proofs, &self.log)
            .unwrap()
            .encode()
    }

    fn map_bundle(&self, indices: &[usize]) -> Vec<u8> {
        let proofs = indices
            .iter()
            .map(|&i| self.map.prove(self.leaves[i].log_id.clone()).unwrap())
            .collect();
        MapProofBundle::bundle(proofs).encode()
    }

    fn consistency_bundle(&self, old: usize) -> Vec<u8> {
        let proof = self.log.prove_consistency(old, self.len());
        LogProofBundle::bundle(vec![proof], vec![], &self.log)
            .unwrap()
            .encode()
    }
}

fn leaves_at(registry: &Registry, indices: &[usize]) -> Vec<LeafRef> {
    indices
        .iter()
        .map(|&i| registry.leaves[i].clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn honest_inclusion_proofs_verify_and_other_leaves_do_not(
        n in 1usize..40,
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..5),
    ) {
        let registry = Registry::new(n);
        let checkpoint = registry.checkpoint();
        let indices: Vec<usize> = picks.iter().map(|p| p.index(n)).collect();
        let leaves = leaves_at(&registry, &indices);
        let log = registry.log_bundle(&indices);
        let map = registry.map_bundle(&indices);
        prop_assert_eq!(verify_log_inclusion(&checkpoint, &leaves, &log), Ok(()));
        prop_assert_eq!(verify_map_inclusion(&checkpoint, &leaves, &map), Ok(()));

        // The same bundles asked about another leaf.
        if n > 1 {
            let mut other = leaves.clone();
            other[0] = registry.leaves[(indices[0] + 1) % n].clone();
            prop_assert!(verify_log_inclusion(&checkpoint, &other, &log).is_err());
            prop_assert!(verify_map_inclusion(&checkpoint, &other, &map).is_err());
        }
        // One proof fewer, or one more.
        let fewer = &leaves[..leaves.len() - 1];
        if !fewer.is_empty() {
            let refused = matches!(
                verify_log_inclusion(&checkpoint, fewer, &log),
                Err(WargVerifyError::ProofCount { .. })
            );
            prop_assert!(refused);
        }
        let mut more = leaves.clone();
        more.push(leaves[0].clone());
        let refused = matches!(
            verify_map_inclusion(&checkpoint, &more, &map),
            Err(WargVerifyError::ProofCount { .. })
        );
        prop_assert!(refused);
    }

    #[test]
    fn honest_consistency_proofs_verify_and_other_lengths_do_not(n in 2usize..40, old in any::<prop::sample::Index>()) {
        let registry = Registry::new(n);
        let checkpoint = registry.checkpoint();
        let old = old.index(n - 1) + 1; // 1..n
        let old_root = AnyHash::from(&registry.roots[old - 1]);
        let bundle = registry.consistency_bundle(old);
        prop_assert_eq!(verify_consistency_from(old, &old_root, &checkpoint, &bundle), Ok(()));
        // The root of another length, or another length with its root.
        let other = if old == 1 { 2 } else { old - 1 };
        let other_root = AnyHash::from(&registry.roots[other - 1]);
        prop_assert!(verify_consistency_from(old, &other_root, &checkpoint, &bundle).is_err());
        if other < n {
            prop_assert!(verify_consistency_from(other, &other_root, &checkpoint, &bundle).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_check(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let registry = Registry::new(5);
        let checkpoint = registry.checkpoint();
        let leaves = leaves_at(&registry, &[0, 4]);
        prop_assert!(verify_log_inclusion(&checkpoint, &leaves, &bytes).is_err());
        prop_assert!(verify_map_inclusion(&checkpoint, &leaves, &bytes).is_err());
        prop_assert!(verify_consistency_from(2, &AnyHash::from(&registry.roots[1]), &checkpoint, &bytes).is_err());
    }
}

#[test]
fn a_single_leaf_log_proves_its_only_leaf() {
    let registry = Registry::new(1);
    let checkpoint = registry.checkpoint();
    let leaves = leaves_at(&registry, &[0]);
    assert_eq!(
        verify_log_inclusion(&checkpoint, &leaves, &registry.log_bundle(&[0])),
        Ok(())
    );
    assert_eq!(
        verify_map_inclusion(&checkpoint, &leaves, &registry.map_bundle(&[0])),
        Ok(())
    );
}

#[test]
fn a_checkpoint_with_non_sha256_roots_is_refused() {
    let registry = Registry::new(2);
    let contents = TimestampedCheckpoint {
        checkpoint: Checkpoint {
            log_root: wire::parse_digest("t", &format!("sha256:{}", "00".repeat(32))).unwrap(),
            log_length: 2,
            map_root: "sha256:00".parse().unwrap(),
        },
        timestamp: 1,
    };
    let envelope = SignedCheckpoint::signed_contents(&registry.private, contents).unwrap();
    assert_eq!(
        verify_checkpoint(&envelope, &registry.public, &registry.operator),
        Err(WargVerifyError::CheckpointDigest {
            what: "map root",
            seen: "sha256:00".into()
        })
    );
}

#[test]
fn a_checkpoint_of_length_zero_is_refused() {
    let registry = Registry::new(1);
    let mut contents = registry.checkpoint().envelope().as_ref().clone();
    contents.checkpoint.log_length = 0;
    let envelope = SignedCheckpoint::signed_contents(&registry.private, contents).unwrap();
    assert_eq!(
        verify_checkpoint(&envelope, &registry.public, &registry.operator),
        Err(WargVerifyError::EmptyCheckpoint)
    );
}

/// Package records signed by `private`, chained, at registry indices from
/// `first_index`, with the given timestamps.
fn package_records(
    private: &PrivateKey,
    first_index: usize,
    records: Vec<(SystemTime, Vec<PackageEntry>)>,
    mut prev: Option<RecordId>,
) -> Vec<wire::PublishedProtoEnvelopeBody> {
    let mut out = Vec::new();
    for (offset, (timestamp, entries)) in records.into_iter().enumerate() {
        let record = PackageRecord {
            prev: prev.clone(),
            version: 0,
            timestamp,
            entries,
        };
        let envelope = ProtoEnvelope::signed_contents(private, record).unwrap();
        prev = Some(RecordId::package_record::<Sha256>(&envelope));
        out.push(
            PublishedProtoEnvelope {
                envelope,
                registry_index: first_index + offset,
            }
            .into(),
        );
    }
    out
}

fn digest(text: &str) -> AnyHash {
    Hash::<Sha256>::of(text).into()
}

#[test]
fn yanked_releases_name_no_content() {
    let (public, private) = generate_p256_pair();
    let now = SystemTime::now();
    let v1: warg_protocol::Version = "1.0.0".parse().unwrap();
    let v2: warg_protocol::Version = "2.0.0".parse().unwrap();
    let records = package_records(
        &private,
        3,
        vec![
            (
                now,
                vec![
                    PackageEntry::Init {
                        hash_algorithm: HashAlgorithm::Sha256,
                        key: public.clone(),
                    },
                    PackageEntry::Release {
                        version: v1.clone(),
                        content: digest("one"),
                    },
                ],
            ),
            (
                now,
                vec![PackageEntry::Release {
                    version: v2.clone(),
                    content: digest("two"),
                }],
            ),
            (
                now,
                vec![PackageEntry::Yank {
                    version: v1.clone(),
                }],
            ),
        ],
        None,
    );
    let mut state = PackageState::new(LogId::from(digest("some log")));
    state.validate(&records).unwrap();
    assert_eq!(state.release_naming(&digest("one")), None);
    let two = state.release_naming(&digest("two")).unwrap();
    assert_eq!(two.version, v2);
    assert_eq!(two.record.registry_index, 4);
    let one = state.release(&v1).unwrap();
    assert_eq!(one.content, None);
    assert_eq!(one.record.registry_index, 3);
    assert_eq!(state.releases().len(), 2);
    assert_eq!(state.head_leaf().unwrap().registry_index, 5);
}

#[test]
fn package_records_going_back_in_time_or_by_ungranted_keys_are_refused() {
    let (public, private) = generate_p256_pair();
    let now = SystemTime::now();
    let init = vec![PackageEntry::Init {
        hash_algorithm: HashAlgorithm::Sha256,
        key: public.clone(),
    }];
    let release = |v: &str| {
        vec![PackageEntry::Release {
            version: v.parse().unwrap(),
            content: digest(v),
        }]
    };
    let earlier = now - std::time::Duration::from_secs(60);
    let records = package_records(
        &private,
        1,
        vec![(now, init.clone()), (earlier, release("1.0.0"))],
        None,
    );
    let mut state = PackageState::new(LogId::from(digest("log")));
    let err = state.validate(&records).unwrap_err();
    assert!(
        err.to_string()
            .contains("record has lower timestamp than previous"),
        "{err}"
    );
    assert!(state.records().is_empty(), "nothing of the batch kept");

    // A second key the log never granted: refused.
    state.validate(&records[..1]).unwrap();
    let (_, stranger) = generate_p256_pair();
    let head = state.records()[0].record_id.clone();
    let foreign = package_records(&stranger, 2, vec![(now, release("1.0.0"))], Some(head));
    let err = state.validate(&foreign).unwrap_err();
    assert!(
        matches!(
            err,
            WargVerifyError::RecordInvalid {
                position: 1,
                registry_index: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(state.records().len(), 1);
}
