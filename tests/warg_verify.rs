//! bulwark's Warg verifier (`bulwark::warg::verify`) against data made by
//! the real peers: a real `warg-server` 0.10 registry, packages published to
//! it with the real `warg` CLI, and its checkpoints, logs and proofs fetched
//! over HTTP. The genuine data verifies; each tampering an upstream or a
//! man in the middle could do (emptied or altered proof bundles, proofs for
//! another leaf, a rewritten record, a broken or foreign signature, an
//! operator log that does not grant `commit`, an older checkpoint given as
//! newer) is refused with an error naming the check, and never panics.
//!
//! The registry is set up once per test binary (publishing takes about 5 s
//! a release) and its answers captured as bytes; the server is stopped
//! after capture. Needs the `warg-server` and `warg` binaries (see
//! `tests/support/warg.rs`).

mod support;

use base64::Engine as _;
use bulwark::warg::verify::{
    self, LeafRef, OperatorState, PackageState, PublicKey, VerifiedCheckpoint, WargVerifyError,
};
use bulwark::warg::wire::{
    self, FetchLogsResponse, InclusionResponse, PackageName, PublishedProtoEnvelopeBody, RecordId,
    SignedCheckpoint, TimestampedCheckpoint,
};
use proptest::prelude::*;
use prost::Message as _;
use std::sync::OnceLock;
use support::warg::{
    component, content_digest, WargClient, WargKey, WargServer, WargServerOptions,
};
use warg_crypto::hash::AnyHash;
use warg_crypto::signing::PrivateKey;
use warg_protocol::operator::{OperatorEntry, OperatorRecord};
use warg_protocol::{ProtoEnvelope, PublishedProtoEnvelope};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// Everything the tests need from one real registry, as the server sent it.
struct Snapshot {
    /// The operator key the registry was started with (what bulwark pins).
    operator_key: WargKey,
    /// The checkpoint before any publish (log length 1: the operator init).
    first: SignedCheckpoint,
    /// The checkpoint after two releases of `acme:hello` (log length 3).
    latest: SignedCheckpoint,
    /// `POST /v1/fetch/logs` at the latest length, operator and package.
    logs_body: Vec<u8>,
    /// `POST /v1/proof/inclusion` for the operator head and the package head.
    inclusion_body: Vec<u8>,
    /// `POST /v1/proof/consistency` from 1 to 3.
    consistency_body: Vec<u8>,
    /// The content of the two releases.
    contents: [Vec<u8>; 2],
    /// A second, independent registry: its checkpoint and operator log.
    other_key: WargKey,
    other_checkpoint: SignedCheckpoint,
    other_logs_body: Vec<u8>,
}

fn package_name() -> PackageName {
    "acme:hello".parse().unwrap()
}

fn checkpoint_of(server: &WargServer) -> SignedCheckpoint {
    let resp = server.get("/v1/fetch/checkpoint");
    assert_eq!(resp.status, 200, "{resp:?}");
    wire::decode_json("checkpoint", &resp.body, wire::DEFAULT_JSON_LIMIT).unwrap()
}

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let server = WargServer::start(&WargServerOptions::owning("acme"));
        let first = checkpoint_of(&server);
        assert_eq!(first.as_ref().checkpoint.log_length, 1);
        let client = WargClient::new(&server.url());
        let contents = [component(300, 1), component(700, 2)];
        for (version, content) in ["1.0.0", "1.1.0"].iter().zip(&contents) {
            let run = client.publish("acme:hello", version, content);
            assert!(run.success, "{run:?}");
        }
        let latest = checkpoint_of(&server);
        assert_eq!(latest.as_ref().checkpoint.log_length, 3);
        let log_id = wire::package_log_id(&package_name());
        let logs = server.post_json(
            "/v1/fetch/logs",
            &format!(r#"{{"logLength":3,"packages":{{"{log_id}":null}}}}"#),
        );
        assert_eq!(logs.status, 200, "{logs:?}");
        // Operator init at 0, the package's records at 1 and 2.
        let inclusion = server.post_json("/v1/proof/inclusion", r#"{"logLength":3,"leafs":[0,2]}"#);
        assert_eq!(inclusion.status, 200, "{inclusion:?}");
        let consistency = server.post_json("/v1/proof/consistency", r#"{"from":1,"to":3}"#);
        assert_eq!(consistency.status, 200, "{consistency:?}");

        let other = WargServer::start(&WargServerOptions::owning("acme"));
        let other_checkpoint = checkpoint_of(&other);
        let other_logs = other.post_json("/v1/fetch/logs", r#"{"logLength":1}"#);
        assert_eq!(other_logs.status, 200, "{other_logs:?}");

        Snapshot {
            operator_key: server.operator_key.clone(),
            first,
            latest,
            logs_body: logs.body,
            inclusion_body: inclusion.body,
            consistency_body: consistency.body,
            contents,
            other_key: other.operator_key.clone(),
            other_checkpoint,
            other_logs_body: other_logs.body,
        }
        // Both servers stop here.
    })
}

impl Snapshot {
    fn pinned(&self) -> PublicKey {
        self.operator_key.public.parse().unwrap()
    }

    fn logs(&self) -> FetchLogsResponse {
        wire::decode_json("logs", &self.logs_body, wire::DEFAULT_JSON_LIMIT).unwrap()
    }

    fn operator_bodies(&self) -> Vec<PublishedProtoEnvelopeBody> {
        self.logs()
            .operator
            .into_iter()
            .map(|r| r.envelope)
            .collect()
    }

    fn package_bodies(&self) -> Vec<PublishedProtoEnvelopeBody> {
        let log_id = wire::package_log_id(&package_name());
        self.logs()
            .packages
            .swap_remove(&log_id)
            .expect("package log")
            .into_iter()
            .map(|r| r.envelope)
            .collect()
    }

    fn operator(&self) -> OperatorState {
        let mut state = OperatorState::new();
        state
            .validate_published(&self.logs().operator)
            .expect("operator log validates");
        state
    }

    fn package(&self) -> PackageState {
        let mut state = PackageState::for_name(&package_name());
        state
            .validate(&self.package_bodies())
            .expect("package log validates");
        state
    }

    fn latest(&self) -> VerifiedCheckpoint {
        verify::verify_checkpoint(&self.latest, &self.pinned(), &self.operator())
            .expect("latest checkpoint verifies")
    }

    fn first(&self) -> VerifiedCheckpoint {
        verify::verify_checkpoint(&self.first, &self.pinned(), &self.operator())
            .expect("first checkpoint verifies")
    }

    /// The operator head and the package head, as the inclusion request
    /// asked for them.
    fn heads(&self) -> Vec<LeafRef> {
        vec![
            self.operator().head_leaf().unwrap(),
            self.package().head_leaf().unwrap(),
        ]
    }

    fn inclusion(&self) -> InclusionResponse {
        wire::decode_json("inclusion", &self.inclusion_body, wire::DEFAULT_JSON_LIMIT).unwrap()
    }

    fn consistency_bundle(&self) -> Vec<u8> {
        let resp: wire::ConsistencyResponse = wire::decode_json(
            "consistency",
            &self.consistency_body,
            wire::DEFAULT_JSON_LIMIT,
        )
        .unwrap();
        resp.proof
    }
}

/// The log proof bundle message (warg/transparency/proofs.proto), to tamper
/// with real bundles in the real wire format.
#[derive(Clone, PartialEq, prost::Message)]
struct LogProofBundle {
    #[prost(uint32, tag = "1")]
    log_length: u32,
    #[prost(uint32, repeated, tag = "2")]
    consistent_lengths: Vec<u32>,
    #[prost(uint32, repeated, tag = "3")]
    included_indices: Vec<u32>,
    #[prost(message, repeated, tag = "4")]
    hashes: Vec<HashEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HashEntry {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "2")]
    hash: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MapProofBundle {
    #[prost(message, repeated, tag = "1")]
    proofs: Vec<MapInclusionProof>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MapInclusionProof {
    #[prost(message, repeated, tag = "1")]
    hashes: Vec<OptionalHash>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OptionalHash {
    #[prost(bytes = "vec", optional, tag = "1")]
    hash: Option<Vec<u8>>,
}

fn tamper_log_bundle(bytes: &[u8], f: impl FnOnce(&mut LogProofBundle)) -> Vec<u8> {
    let mut bundle = LogProofBundle::decode(bytes).unwrap();
    f(&mut bundle);
    bundle.encode_to_vec()
}

fn tamper_map_bundle(bytes: &[u8], f: impl FnOnce(&mut MapProofBundle)) -> Vec<u8> {
    let mut bundle = MapProofBundle::decode(bytes).unwrap();
    f(&mut bundle);
    bundle.encode_to_vec()
}

/// A checkpoint envelope with `contents` signed by `key`.
fn sign_checkpoint(key: &WargKey, contents: TimestampedCheckpoint) -> SignedCheckpoint {
    let private = PrivateKey::decode(key.private.clone()).unwrap();
    SignedCheckpoint::signed_contents(&private, contents).unwrap()
}

/// An operator record signed by `signer`, as published at `index`.
fn operator_record(
    signer: &WargKey,
    prev: Option<RecordId>,
    entries: Vec<OperatorEntry>,
    index: usize,
) -> PublishedProtoEnvelopeBody {
    let private = PrivateKey::decode(signer.private.clone()).unwrap();
    let record = OperatorRecord {
        prev,
        version: 0,
        timestamp: std::time::SystemTime::now(),
        entries,
    };
    let envelope = ProtoEnvelope::signed_contents(&private, record).unwrap();
    PublishedProtoEnvelope {
        envelope,
        registry_index: index,
    }
    .into()
}

fn record_json(body: &PublishedProtoEnvelopeBody) -> serde_json::Value {
    serde_json::to_value(body).unwrap()
}

fn record_from_json(value: serde_json::Value) -> PublishedProtoEnvelopeBody {
    serde_json::from_value(value).unwrap()
}

// ---------------------------------------------------------------------------
// The genuine data verifies.

#[test]
fn real_registry_checkpoints_logs_and_proofs_verify() {
    let s = snapshot();
    let operator = s.operator();
    assert_eq!(operator.records().len(), 1);
    assert_eq!(operator.records()[0].registry_index, 0);
    assert!(operator.key_can_commit(&s.pinned().fingerprint()));
    assert!(operator.namespace_state("acme").is_some());

    let latest = s.latest();
    assert_eq!(latest.log_length(), 3);
    assert_eq!(latest.envelope(), &s.latest);
    assert_eq!(latest.key_id().to_string(), s.operator_key.key_id);

    let package = s.package();
    let indices: Vec<usize> = package.records().iter().map(|r| r.registry_index).collect();
    assert_eq!(indices, [1, 2]);
    let releases = package.releases();
    assert_eq!(releases.len(), 2);
    for (release, (version, content)) in releases
        .iter()
        .zip(["1.0.0", "1.1.0"].iter().zip(&s.contents))
    {
        assert_eq!(release.version.to_string(), *version);
        let digest: AnyHash = content_digest(content).parse().unwrap();
        assert_eq!(release.content.as_ref(), Some(&digest));
        assert_eq!(package.release_naming(&digest).as_ref(), Some(release));
    }
    let unknown: AnyHash = content_digest(b"not published").parse().unwrap();
    assert_eq!(package.release_naming(&unknown), None);

    verify::verify_inclusion(&latest, &s.heads(), &s.inclusion()).expect("inclusion verifies");
    verify::verify_consistency(&s.first(), &latest, &s.consistency_bundle())
        .expect("consistency verifies");
    // A checkpoint is consistent with itself without a proof.
    verify::verify_consistency(&latest, &latest, &[]).expect("same checkpoint");
}

#[test]
fn logs_validate_incrementally_page_by_page() {
    let s = snapshot();
    let bodies = s.package_bodies();
    let mut state = PackageState::for_name(&package_name());
    state.validate(&bodies[..1]).unwrap();
    assert_eq!(state.releases().len(), 1);
    state.validate(&bodies[1..]).unwrap();
    assert_eq!(state.releases().len(), 2);
    assert_eq!(state.head_leaf(), s.package().head_leaf());
    // The same page again: registry indices must go forward.
    let err = state.validate(&bodies[1..]).unwrap_err();
    assert!(matches!(err, WargVerifyError::RecordOrder { .. }), "{err}");
    // A refused batch leaves the state as it was.
    assert_eq!(state.records().len(), 2);
}

#[test]
fn error_bodies_have_the_warg_message_shape() {
    let err = WargVerifyError::EmptyCheckpoint;
    let body: serde_json::Value = serde_json::from_slice(&err.body(502)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": 502, "message": err.to_string()})
    );
}

// ---------------------------------------------------------------------------
// Log inclusion.

#[test]
fn refuses_an_emptied_log_inclusion_bundle() {
    let s = snapshot();
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &[]).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofCount {
            what: "log inclusion",
            expected: 2,
            seen: 0
        }
    );
    // Emptied of hashes but keeping its proofs: a hash is missing.
    let stripped = tamper_log_bundle(&s.inclusion().log, |b| b.hashes.clear());
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &stripped).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::ProofUnusable { .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_log_bundle_with_a_proof_dropped() {
    let s = snapshot();
    let dropped = tamper_log_bundle(&s.inclusion().log, |b| {
        b.included_indices.pop();
    });
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &dropped).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofCount {
            what: "log inclusion",
            expected: 2,
            seen: 1
        }
    );
}

#[test]
fn refuses_a_log_bundle_with_a_hash_changed() {
    let s = snapshot();
    let changed = tamper_log_bundle(&s.inclusion().log, |b| b.hashes[0].hash[0] ^= 1);
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &changed).unwrap_err();
    assert!(matches!(err, WargVerifyError::RootMismatch { .. }), "{err}");
    assert!(err.to_string().contains("evaluates to root"), "{err}");
}

#[test]
fn refuses_a_log_bundle_for_a_different_leaf() {
    let s = snapshot();
    // The proofs are for registry indices 0 and 2; claim 0 and 1.
    let mut leaves = s.heads();
    let package = s.package();
    leaves[1] = LeafRef {
        registry_index: 1,
        log_id: package.log_id().clone(),
        record_id: package.records()[0].record_id.clone(),
    };
    let err = verify::verify_log_inclusion(&s.latest(), &leaves, &s.inclusion().log).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofLeaf {
            position: 1,
            registry_index: 1,
            expected: 2,
            seen: 4
        }
    );
    // The proofs in another order than asked.
    let swapped = tamper_log_bundle(&s.inclusion().log, |b| b.included_indices.reverse());
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &swapped).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::ProofLeaf { position: 0, .. }),
        "{err}"
    );
    // The right node, but another record at it.
    let mut leaves = s.heads();
    leaves[1].record_id = package.records()[0].record_id.clone();
    let err = verify::verify_log_inclusion(&s.latest(), &leaves, &s.inclusion().log).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::RootMismatch { position: 1, .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_log_bundle_for_another_log_length() {
    let s = snapshot();
    let shorter = tamper_log_bundle(&s.inclusion().log, |b| b.log_length = 2);
    let err = verify::verify_log_inclusion(&s.latest(), &s.heads(), &shorter).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofLength {
            what: "log inclusion",
            expected: 3,
            seen: 2
        }
    );
    // A leaf past the checkpoint is refused before the bundle is read.
    let mut leaves = s.heads();
    leaves[1].registry_index = 3;
    let err = verify::verify_log_inclusion(&s.latest(), &leaves, &s.inclusion().log).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::IndexPastLog { index: 3, .. }),
        "{err}"
    );
    let err = verify::verify_log_inclusion(&s.latest(), &[], &s.inclusion().log).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::NothingToProve { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Map inclusion.

#[test]
fn refuses_emptied_or_altered_map_bundles() {
    let s = snapshot();
    let latest = s.latest();
    let map = s.inclusion().map;
    let err = verify::verify_map_inclusion(&latest, &s.heads(), &[]).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofCount {
            what: "map inclusion",
            expected: 2,
            seen: 0
        }
    );
    let changed = tamper_map_bundle(&map, |b| {
        let peer = b.proofs[1]
            .hashes
            .iter_mut()
            .find_map(|h| h.hash.as_mut())
            .expect("a non-empty peer");
        peer[0] ^= 1;
    });
    let err = verify::verify_map_inclusion(&latest, &s.heads(), &changed).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::RootMismatch { position: 1, .. }),
        "{err}"
    );
    // A record that is not the log's head is not what the map holds.
    let mut leaves = s.heads();
    leaves[1].record_id = s.package().records()[0].record_id.clone();
    let err = verify::verify_map_inclusion(&latest, &leaves, &map).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::RootMismatch { position: 1, .. }),
        "{err}"
    );
    // More peers than the map is deep (the reference evaluation would
    // underflow `256 - peers`).
    let deep = tamper_map_bundle(&map, |b| {
        b.proofs[0].hashes = vec![OptionalHash { hash: None }; 257];
    });
    let err = verify::verify_map_inclusion(&latest, &s.heads(), &deep).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::MapPeers {
            position: 0,
            limit: 256,
            seen: 257
        }
    );
}

// ---------------------------------------------------------------------------
// Records.

#[test]
fn refuses_a_record_with_one_byte_changed() {
    let s = snapshot();
    let bodies = s.package_bodies();
    // Change one hex digit of the content digest the second record releases:
    // still a well-formed record, no longer the one that was signed.
    let mut json = record_json(&bodies[1]);
    let mut bytes = B64.decode(json["contentBytes"].as_str().unwrap()).unwrap();
    let hex = content_digest(&s.contents[1]);
    let hex = hex.strip_prefix("sha256:").unwrap().as_bytes();
    let at = bytes
        .windows(hex.len())
        .position(|w| w == hex)
        .expect("record names the content digest");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    json["contentBytes"] = B64.encode(&bytes).into();
    let rewritten = record_from_json(json);

    let mut state = PackageState::for_name(&package_name());
    state.validate(&bodies[..1]).unwrap();
    let err = state
        .validate(std::slice::from_ref(&rewritten))
        .unwrap_err();
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
    assert!(err.to_string().contains("signature"), "{err}");

    // And a byte that breaks the protobuf is a decode error, not a panic.
    let mut json = record_json(&bodies[0]);
    json["contentBytes"] = B64.encode([0xff, 0xff, 0xff]).into();
    let err = PackageState::for_name(&package_name())
        .validate(&[record_from_json(json)])
        .unwrap_err();
    assert!(matches!(err, WargVerifyError::RecordDecode { .. }), "{err}");
}

#[test]
fn refuses_records_out_of_chain() {
    let s = snapshot();
    let bodies = s.package_bodies();
    // The second record alone: it names a previous record the state lacks.
    let err = PackageState::for_name(&package_name())
        .validate(&bodies[1..])
        .unwrap_err();
    assert!(
        matches!(err, WargVerifyError::RecordInvalid { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("previous hash"), "{err}");
}

#[test]
fn refuses_a_fetch_token_that_is_not_the_record_id() {
    let s = snapshot();
    let mut logs = s.logs();
    logs.operator[0].fetch_token = format!("sha256:{}", "0".repeat(64));
    let err = OperatorState::new()
        .validate_published(&logs.operator)
        .unwrap_err();
    assert!(matches!(err, WargVerifyError::FetchToken { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Checkpoints.

#[test]
fn refuses_a_checkpoint_with_a_broken_signature() {
    let s = snapshot();
    let mut json = serde_json::to_value(&s.latest).unwrap();
    // The signature of another checkpoint by the same key.
    json["signature"] = serde_json::to_value(s.first.signature()).unwrap();
    let broken: SignedCheckpoint = serde_json::from_value(json.clone()).unwrap();
    let err = verify::verify_checkpoint(&broken, &s.pinned(), &s.operator()).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::CheckpointSignature {
            key_id: s.operator_key.key_id.clone()
        }
    );
    // Contents changed under a genuine signature.
    json["signature"] = serde_json::to_value(s.latest.signature()).unwrap();
    json["contents"]["logLength"] = 4.into();
    let changed: SignedCheckpoint = serde_json::from_value(json).unwrap();
    let err = verify::verify_checkpoint(&changed, &s.pinned(), &s.operator()).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::CheckpointSignature { .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_checkpoint_signed_by_a_key_that_is_not_pinned() {
    let s = snapshot();
    // The other registry's genuine checkpoint, judged with our pinned key.
    let err =
        verify::verify_checkpoint(&s.other_checkpoint, &s.pinned(), &s.operator()).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::CheckpointKey {
            expected: s.operator_key.key_id.clone(),
            seen: s.other_key.key_id.clone()
        }
    );
    // The same contents re-signed by a stranger.
    let stranger = WargKey::generate();
    let forged = sign_checkpoint(&stranger, s.latest.as_ref().clone());
    let err = verify::verify_checkpoint(&forged, &s.pinned(), &s.operator()).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::CheckpointKey { .. }),
        "{err}"
    );
    // A stranger's signature under the pinned key's ID.
    let mut json = serde_json::to_value(&forged).unwrap();
    json["keyId"] = s.operator_key.key_id.clone().into();
    let forged: SignedCheckpoint = serde_json::from_value(json).unwrap();
    let err = verify::verify_checkpoint(&forged, &s.pinned(), &s.operator()).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::CheckpointSignature { .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_checkpoint_key_the_operator_log_does_not_grant_commit() {
    let s = snapshot();
    // Our genuine checkpoint, judged with the other registry's operator log
    // (valid, but granting only the other operator key).
    let logs: FetchLogsResponse =
        wire::decode_json("logs", &s.other_logs_body, wire::DEFAULT_JSON_LIMIT).unwrap();
    let mut other = OperatorState::new();
    other.validate_published(&logs.operator).unwrap();
    let err = verify::verify_checkpoint(&s.latest, &s.pinned(), &other).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::NotCommitter {
            key_id: s.operator_key.key_id.clone(),
            records: 1
        }
    );
    // With no operator log at all.
    let err = verify::verify_checkpoint(&s.latest, &s.pinned(), &OperatorState::new()).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::NotCommitter { records: 0, .. }),
        "{err}"
    );

    // An operator log whose init key is the pinned one but which revokes
    // its `commit`: a checkpoint signed with it is refused.
    let key = WargKey::generate();
    let public: PublicKey = key.public.parse().unwrap();
    let init = operator_record(
        &key,
        None,
        vec![OperatorEntry::Init {
            hash_algorithm: warg_crypto::hash::HashAlgorithm::Sha256,
            key: public.clone(),
        }],
        0,
    );
    let mut state = OperatorState::new();
    state.validate(&[init]).unwrap();
    let init_id = state.records()[0].record_id.clone();
    let revoke = operator_record(
        &key,
        Some(init_id),
        vec![OperatorEntry::RevokeFlat {
            key_id: public.fingerprint(),
            permissions: vec!["commit".parse().unwrap()],
        }],
        1,
    );
    let checkpoint = sign_checkpoint(&key, s.latest.as_ref().clone());
    verify::verify_checkpoint(&checkpoint, &public, &state).expect("granted after init");
    state.validate(&[revoke]).unwrap();
    let err = verify::verify_checkpoint(&checkpoint, &public, &state).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::NotCommitter { records: 2, .. }),
        "{err}"
    );
}

#[test]
fn refuses_an_operator_log_not_started_by_its_init_key() {
    // Init names key A but is signed by key B: the reference validator
    // grants B and knows only A's public key, so B's signature is refused.
    let a = WargKey::generate();
    let b = WargKey::generate();
    let init = operator_record(
        &b,
        None,
        vec![OperatorEntry::Init {
            hash_algorithm: warg_crypto::hash::HashAlgorithm::Sha256,
            key: a.public.parse().unwrap(),
        }],
        0,
    );
    let err = OperatorState::new().validate(&[init]).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::RecordInvalid { .. }),
        "{err}"
    );
}

#[test]
fn refuses_an_operator_log_ahead_of_the_checkpoint() {
    let s = snapshot();
    // The genuine first checkpoint (length 1) with an operator state that
    // holds a record at index 1 is refused: permissions are judged as of
    // the checkpoint.
    let mut bodies = s.operator_bodies();
    let key = &s.operator_key;
    let head = s.operator().records()[0].record_id.clone();
    bodies.push(operator_record(
        key,
        Some(head),
        vec![OperatorEntry::DefineNamespace {
            namespace: "later".into(),
        }],
        1,
    ));
    let mut state = OperatorState::new();
    state.validate(&bodies).unwrap();
    let err = verify::verify_checkpoint(&s.first, &s.pinned(), &state).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::OperatorAhead {
            registry_index: 1,
            log_length: 1
        }
    );
}

// ---------------------------------------------------------------------------
// Consistency.

#[test]
fn refuses_an_older_checkpoint_given_as_newer() {
    let s = snapshot();
    let (first, latest) = (s.first(), s.latest());
    let err = verify::verify_consistency(&latest, &first, &s.consistency_bundle()).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::Rewind {
            old_length: 3,
            new_length: 1
        }
    );
    // Same length, signed earlier: a replay.
    let mut older = latest.envelope().as_ref().clone();
    older.timestamp -= 10;
    let key = &s.operator_key;
    let older = verify::verify_checkpoint(&sign_checkpoint(key, older), &s.pinned(), &s.operator())
        .unwrap();
    let err = verify::verify_consistency(&latest, &older, &[]).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::TimestampRewind { .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_fork_and_bad_consistency_bundles() {
    let s = snapshot();
    let (first, latest) = (s.first(), s.latest());
    let bundle = s.consistency_bundle();
    // A verified root of length 1 other than the upstream's: a fork.
    let elsewhere: AnyHash =
        wire::parse_digest("t", &format!("sha256:{}", "ab".repeat(32))).unwrap();
    let err = verify::verify_consistency_from(1, &elsewhere, &latest, &bundle).unwrap_err();
    assert!(
        matches!(
            err,
            WargVerifyError::ConsistencyRoot {
                which: "old log",
                log_length: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = verify::verify_consistency_from(3, &elsewhere, &latest, &[]).unwrap_err();
    assert!(
        matches!(
            err,
            WargVerifyError::ConsistencyRoot {
                which: "log",
                log_length: 3,
                ..
            }
        ),
        "{err}"
    );
    // Emptied.
    let err = verify::verify_consistency(&first, &latest, &[]).unwrap_err();
    assert_eq!(
        err,
        WargVerifyError::ProofCount {
            what: "consistency",
            expected: 1,
            seen: 0
        }
    );
    // Lengths that would make the reference evaluation panic.
    for (old, new) in [(0u32, 3u32), (5, 3), (2, 3)] {
        let bad = tamper_log_bundle(&bundle, |b| {
            b.consistent_lengths = vec![old];
            b.log_length = new;
        });
        let err = verify::verify_consistency(&first, &latest, &bad).unwrap_err();
        assert!(
            matches!(err, WargVerifyError::ConsistencyLengths { .. }),
            "{err}"
        );
    }
    let err = verify::verify_consistency_from(0, first.log_root(), &latest, &bundle).unwrap_err();
    assert_eq!(err, WargVerifyError::ConsistencyFromZero);
    // A hash changed.
    let changed = tamper_log_bundle(&bundle, |b| {
        let last = b.hashes.len() - 1;
        b.hashes[last].hash[0] ^= 1;
    });
    let err = verify::verify_consistency(&first, &latest, &changed).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::ConsistencyRoot { .. }),
        "{err}"
    );
    // Hashes missing.
    let stripped = tamper_log_bundle(&bundle, |b| b.hashes.clear());
    let err = verify::verify_consistency(&first, &latest, &stripped).unwrap_err();
    assert!(
        matches!(err, WargVerifyError::ProofUnusable { .. }),
        "{err}"
    );
    // An inclusion bundle given as a consistency proof.
    let err = verify::verify_consistency(&first, &latest, &s.inclusion().log).unwrap_err();
    assert!(matches!(err, WargVerifyError::ProofKind { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Hostile bytes never panic.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bundles_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = snapshot();
        let (first, latest) = (s.first(), s.latest());
        let heads = s.heads();
        prop_assert!(verify::verify_log_inclusion(&latest, &heads, &bytes).is_err());
        prop_assert!(verify::verify_map_inclusion(&latest, &heads, &bytes).is_err());
        prop_assert!(verify::verify_consistency(&first, &latest, &bytes).is_err());
    }

    #[test]
    fn arbitrary_structured_log_bundles_never_panic(
        log_length in 0u32..8,
        consistent in proptest::collection::vec(0u32..8, 0..3),
        included in proptest::collection::vec(0u32..20, 0..3),
        hashes in proptest::collection::vec((0u32..20, proptest::collection::vec(any::<u8>(), 31..34)), 0..12),
    ) {
        let s = snapshot();
        let (first, latest) = (s.first(), s.latest());
        let bundle = LogProofBundle {
            log_length,
            consistent_lengths: consistent,
            included_indices: included,
            hashes: hashes.into_iter().map(|(index, hash)| HashEntry { index, hash }).collect(),
        }
        .encode_to_vec();
        let _ = verify::verify_log_inclusion(&latest, &s.heads(), &bundle);
        let _ = verify::verify_consistency(&first, &latest, &bundle);
        // The genuine bundle stays the only one that verifies here.
        if bundle != s.consistency_bundle() {
            prop_assert!(verify::verify_consistency(&first, &latest, &bundle).is_err());
        }
    }

    #[test]
    fn arbitrary_record_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = snapshot();
        let mut json = record_json(&s.package_bodies()[0]);
        json["contentBytes"] = B64.encode(&bytes).into();
        let body = record_from_json(json);
        prop_assert!(PackageState::for_name(&package_name()).validate(std::slice::from_ref(&body)).is_err());
        prop_assert!(OperatorState::new().validate(&[body]).is_err());
    }

    #[test]
    fn mutated_real_records_are_refused_or_unchanged(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let s = snapshot();
        let bodies = s.package_bodies();
        let mut json = record_json(&bodies[0]);
        let mut bytes = B64.decode(json["contentBytes"].as_str().unwrap()).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        json["contentBytes"] = B64.encode(&bytes).into();
        let body = record_from_json(json);
        prop_assert!(PackageState::for_name(&package_name()).validate(&[body]).is_err());
    }
}

#[test]
fn operator_and_package_logs_are_told_apart() {
    let s = snapshot();
    // A package record fed to the operator validator, and the reverse.
    assert!(OperatorState::new()
        .validate(&s.package_bodies()[..1])
        .is_err());
    assert!(PackageState::for_name(&package_name())
        .validate(&s.operator_bodies())
        .is_err());
    // The hash function of records is sha256 (record IDs are their
    // fetch tokens).
    let ids: Vec<String> = s
        .logs()
        .operator
        .iter()
        .map(|r| r.fetch_token.clone())
        .collect();
    assert_eq!(ids, [s.operator().records()[0].record_id.to_string()]);
}
