//! Rekor checkpoints through the trust state, on two test logs built here
//! with `bulwark::tlog` and our own keys, speaking the real formats:
//!
//! * a Rekor v1 log: ECDSA P-256 checkpoints with origin `<host> - <tree
//!   id>` and the `GET /api/v1/log/proof?firstSize=&lastSize=&treeID=`
//!   answer (`{"rootHash": hex, "hashes": [hex...]}`);
//! * a Rekor v2 log: Ed25519 C2SP checkpoints and c2sp.org/tlog-tiles tiles,
//!   served by path; the consistency proof is computed from the tiles.
//!
//! Entries are offered as bundle `tlogEntries` JSON (parsed by the same
//! types as real bundles) and go through `verify_log_entry` (inclusion proof,
//! checkpoint signature by the trusted root's key) before `log::record`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bulwark::sigstore::log::{self, ProofSource, Recorded};
use bulwark::sigstore::verify::{verify_log_entry, LogEntry};
use bulwark::sigstore::{IdentityPolicy, Options, Refusal, TrustRoot};
use bulwark::tlog::merkle::{leaf_hash, prove_record, prove_tree, stored_hashes, tree_hash, Hash};
use bulwark::tlog::note::Signer;
use bulwark::tlog::tile::{read_tile_data, Dialect, Tile, TileReader};
use bulwark::verify::trust::TrustState;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::SystemTime;

const V1_HOST: &str = "rekor.test";
const V1_TREE: u64 = 77;
const V2_HOST: &str = "log.test";

/// One in-memory log; `v1` picks the Rekor generation.
struct TestLog {
    v1: bool,
    ecdsa: p256::ecdsa::SigningKey,
    ed25519: Signer,
    bodies: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
    stored: Vec<Hash>,
    /// Served files of the v2 log (`checkpoint`, `tile/...`), by path.
    files: HashMap<String, Vec<u8>>,
}

impl TestLog {
    fn new(v1: bool, seed: u8) -> TestLog {
        TestLog {
            v1,
            ecdsa: p256::ecdsa::SigningKey::from_slice(&[seed.max(1); 32]).unwrap(),
            ed25519: Signer::from_seed(V2_HOST, &[seed; 32]).unwrap(),
            bodies: Vec::new(),
            leaves: Vec::new(),
            stored: Vec::new(),
            files: HashMap::new(),
        }
    }

    fn spki(&self) -> Vec<u8> {
        if self.v1 {
            self.ecdsa
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec()
        } else {
            let mut der = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            der.extend_from_slice(self.ed25519.verifier_key().public_key());
            der
        }
    }

    fn log_id(&self) -> [u8; 32] {
        Sha256::digest(self.spki()).into()
    }

    fn origin(&self) -> String {
        if self.v1 {
            format!("{V1_HOST} - {V1_TREE}")
        } else {
            V2_HOST.to_string()
        }
    }

    fn body(i: usize, tag: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{{"entry":{i},"tag":"{tag}"}}}}"#
        )
        .into_bytes()
    }

    fn append(&mut self, n: usize, tag: &str) {
        for _ in 0..n {
            let i = self.leaves.len();
            let body = Self::body(i, tag);
            let leaf = leaf_hash(&body);
            self.bodies.push(body);
            let add = stored_hashes(i as u64, &leaf, self.stored.as_slice()).unwrap();
            self.stored.extend(add);
            self.leaves.push(leaf);
        }
        if !self.v1 {
            self.publish_tiles();
        }
    }

    fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn root_at(&self, size: u64) -> Hash {
        tree_hash(size, self.stored.as_slice()).unwrap()
    }

    /// The signed checkpoint of the current tree.
    fn checkpoint(&self) -> Vec<u8> {
        let text = format!(
            "{}\n{}\n{}\n",
            self.origin(),
            self.size(),
            self.root_at(self.size())
        );
        if self.v1 {
            let sig: p256::ecdsa::Signature = self.ecdsa.sign(text.as_bytes());
            let mut raw = self.log_id()[..4].to_vec();
            raw.extend_from_slice(sig.to_der().as_bytes());
            format!("{text}\n\u{2014} {V1_HOST} {}\n", STANDARD.encode(raw)).into_bytes()
        } else {
            bulwark::tlog::note::sign(&text, &[&self.ed25519]).unwrap()
        }
    }

    /// The bundle `tlogEntries` item for entry `i` under the current checkpoint.
    fn entry_json(&self, i: usize) -> serde_json::Value {
        let size = self.size();
        let proof = prove_record(size, i as u64, self.stored.as_slice()).unwrap();
        json!({
            "logIndex": (i as u64 + 1_000_000).to_string(),
            "logId": { "keyId": STANDARD.encode(self.log_id()) },
            "kindVersion": { "kind": "hashedrekord", "version": "0.0.1" },
            "inclusionProof": {
                "logIndex": i.to_string(),
                "rootHash": STANDARD.encode(self.root_at(size).0),
                "treeSize": size.to_string(),
                "hashes": proof.iter().map(|h| STANDARD.encode(h.0)).collect::<Vec<_>>(),
                "checkpoint": { "envelope": String::from_utf8(self.checkpoint()).unwrap() },
            },
            "canonicalizedBody": STANDARD.encode(&self.bodies[i]),
        })
    }

    /// What Rekor v1 answers to `GET /api/v1/log/proof?...`.
    fn v1_proof_answer(&self, path: &str) -> (u16, Vec<u8>) {
        let query = path.strip_prefix("/api/v1/log/proof?").unwrap_or("");
        let mut args = HashMap::new();
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                args.insert(k, v.parse::<u64>().unwrap_or(u64::MAX));
            }
        }
        let (Some(&first), Some(&last), Some(&tree)) = (
            args.get("firstSize"),
            args.get("lastSize"),
            args.get("treeID"),
        ) else {
            return (400, b"{\"code\":400,\"message\":\"bad query\"}".to_vec());
        };
        if tree != V1_TREE || last > self.size() || first > last {
            return (400, b"{\"code\":400,\"message\":\"bad sizes\"}".to_vec());
        }
        let hashes = prove_tree(last, first, self.stored.as_slice()).unwrap();
        let body = json!({
            "rootHash": self.root_at(last).to_hex(),
            "hashes": hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        });
        (200, serde_json::to_vec(&body).unwrap())
    }

    /// Publishes the tiles of the current tree (and its checkpoint) by path.
    fn publish_tiles(&mut self) {
        let size = self.size();
        for level in 0..4u32 {
            let width_all = size >> (8 * level);
            let mut n = 0u64;
            while n * 256 < width_all {
                if let Some(t) = Tile::in_tree(level, n, size) {
                    let data = read_tile_data(&t, self.stored.as_slice()).unwrap();
                    self.files.insert(t.path(Dialect::Tiles), data);
                }
                n += 1;
            }
        }
        let cp = self.checkpoint();
        self.files.insert("checkpoint".into(), cp);
    }
}

/// Tiles fetched by their c2sp.org/tlog-tiles path.
struct ServedTiles<'a>(&'a HashMap<String, Vec<u8>>);

#[derive(Debug, thiserror::Error)]
#[error("404 {0}")]
struct NotFound(String);

impl TileReader for ServedTiles<'_> {
    type Error = NotFound;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, NotFound> {
        tiles
            .iter()
            .map(|t| {
                let p = t.path(Dialect::Tiles);
                self.0.get(&p).cloned().ok_or(NotFound(p))
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// The caller's proof fetching, against one test log.
struct Source<'a>(&'a TestLog);

impl ProofSource for Source<'_> {
    fn consistency(
        &mut self,
        entry: &LogEntry,
        first: u64,
        second: u64,
        root: &Hash,
    ) -> Result<Vec<Hash>, String> {
        if self.0.v1 {
            let path = log::rekor_v1_proof_path(entry, first, second).map_err(|r| r.to_string())?;
            let (status, body) = self.0.v1_proof_answer(&path);
            if status != 200 {
                return Err(format!("status {status}"));
            }
            log::parse_rekor_v1_proof(&body, root)
        } else {
            log::tile_consistency_proof(&ServedTiles(&self.0.files), second, *root, first)
        }
    }
}

fn root_for(logs: &[&TestLog]) -> TrustRoot {
    let tlogs: Vec<_> = logs
        .iter()
        .map(|l| {
            json!({
                "baseUrl": format!("https://{}", if l.v1 { V1_HOST } else { V2_HOST }),
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(l.spki()),
                    "keyDetails": if l.v1 { "PKIX_ECDSA_P256_SHA_256" } else { "PKIX_ED25519" },
                    "validFor": { "start": "2020-01-01T00:00:00Z" },
                },
                "logId": { "keyId": STANDARD.encode(l.log_id()) },
            })
        })
        .collect();
    let root = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs,
    });
    TrustRoot::from_json(&root.to_string()).unwrap()
}

fn entry(log: &TestLog, root: &TrustRoot, i: usize) -> Result<LogEntry, Refusal> {
    let e = serde_json::from_value(log.entry_json(i)).unwrap();
    let opts = Options {
        root,
        identity: &IdentityPolicy::Report,
        witnesses: None,
        npm_keys: None,
        now: SystemTime::now(),
    };
    verify_log_entry(&e, &opts)
}

fn record(state: &TrustState, e: &LogEntry, log: &TestLog) -> Result<Recorded, Refusal> {
    log::record(state, e, &mut Source(log), SystemTime::now())
}

fn scenario(v1: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.redb");
    let mut log = TestLog::new(v1, 7);
    let root = root_for(&[&log]);
    let upstream = log::upstream_name(&log.origin());

    // First checkpoint, then one proven to extend it.
    log.append(300, "a");
    let old = entry(&log, &root, 5).unwrap();
    assert_eq!(old.proof_index, 5);
    assert_eq!(old.log_index, 1_000_005);
    let state = TrustState::open(&path).unwrap();
    assert!(matches!(record(&state, &old, &log).unwrap(), Recorded::First(a) if a.size == 300));
    log.append(700, "a");
    let new = entry(&log, &root, 900).unwrap();
    match record(&state, &new, &log).unwrap() {
        Recorded::Extended { from, accepted } => assert_eq!((from, accepted.size), (300, 1000)),
        other => panic!("{other:?}"),
    }
    // The same checkpoint again changes nothing.
    assert!(matches!(
        record(&state, &new, &log).unwrap(),
        Recorded::Unchanged(_)
    ));
    // An older bundle (made at size 300) is proven a prefix of the accepted tree.
    match record(&state, &old, &log).unwrap() {
        Recorded::Prefix { latest } => assert_eq!(latest.size, 1000),
        other => panic!("{other:?}"),
    }
    drop(state);

    // Restart: the accepted checkpoint persisted.
    let state = TrustState::open(&path).unwrap();
    assert_eq!(state.latest(&upstream).unwrap().unwrap().size, 1000);
    assert!(matches!(
        record(&state, &new, &log).unwrap(),
        Recorded::Unchanged(_)
    ));

    // A proof source that cannot answer: refused, nothing changes.
    log.append(24, "a");
    let next = entry(&log, &root, 1010).unwrap();
    struct Down;
    impl ProofSource for Down {
        fn consistency(
            &mut self,
            _: &LogEntry,
            _: u64,
            _: u64,
            _: &Hash,
        ) -> Result<Vec<Hash>, String> {
            Err("connection refused".into())
        }
    }
    let e = log::record(&state, &next, &mut Down, SystemTime::now()).unwrap_err();
    assert_eq!(e.check, "consistency proof", "{e}");
    assert_eq!(state.latest(&upstream).unwrap().unwrap().size, 1000);
    assert!(state.gate(&upstream).is_ok());
    assert!(matches!(
        record(&state, &next, &log).unwrap(),
        Recorded::Extended { from: 1000, .. }
    ));

    // A fork: the same key signs a different history (entries 500.. differ).
    let mut fork = TestLog::new(v1, 7);
    fork.append(500, "a");
    fork.append(524, "b");
    let forked = entry(&fork, &root, 3).unwrap();
    assert_eq!(forked.checkpoint.size, 1024);
    let e = record(&state, &forked, &fork).unwrap_err();
    assert_eq!(e.check, "fork", "{e}");
    assert!(state.evidence(&upstream).unwrap().len() == 1);
    // Quarantined: even the honest log's checkpoint is now refused.
    let e = record(&state, &next, &log).unwrap_err();
    assert_eq!(e.check, "quarantine", "{e}");
    drop(state);
    let state = TrustState::open(&path).unwrap();
    assert!(
        state.gate(&upstream).is_err(),
        "quarantine survives a restart"
    );
}

#[test]
fn rekor_v1_log_consistency_fork_and_restart() {
    scenario(true);
}

#[test]
fn rekor_v2_tiled_log_consistency_fork_and_restart() {
    scenario(false);
}

/// A rewind: a log presenting an older tree that is not a prefix of the
/// accepted one (and a larger tree not extending it) is refused with the
/// evidence kept.
fn rewinds_and_forks_ahead(v1: bool) {
    let dir = tempfile::tempdir().unwrap();
    let state = TrustState::open(dir.path().join("t.redb")).unwrap();
    let mut log = TestLog::new(v1, 9);
    let root = root_for(&[&log]);
    log.append(600, "a");
    record(&state, &entry(&log, &root, 1).unwrap(), &log).unwrap();

    // An older tree from another history: not a prefix of the accepted
    // tree (the log's proof endpoint answers for its real history) → evidence.
    let mut other = TestLog::new(v1, 9);
    other.append(400, "z");
    let e = record(&state, &entry(&other, &root, 1).unwrap(), &log).unwrap_err();
    assert_eq!(e.check, "consistency", "{e}");
    assert!(state.gate(&log::upstream_name(&log.origin())).is_err());

    // A larger tree not extending the accepted one → evidence.
    let dir = tempfile::tempdir().unwrap();
    let state = TrustState::open(dir.path().join("t.redb")).unwrap();
    record(&state, &entry(&log, &root, 1).unwrap(), &log).unwrap();
    let mut ahead = TestLog::new(v1, 9);
    ahead.append(800, "y");
    let e = record(&state, &entry(&ahead, &root, 1).unwrap(), &ahead).unwrap_err();
    assert_eq!(e.check, "consistency", "{e}");
}

#[test]
fn rekor_v1_rewind_and_fork_ahead_are_evidence() {
    rewinds_and_forks_ahead(true);
}

#[test]
fn rekor_v2_rewind_and_fork_ahead_are_evidence() {
    rewinds_and_forks_ahead(false);
}

#[test]
fn entry_checks_before_the_trust_state() {
    let mut log = TestLog::new(true, 3);
    log.append(20, "a");
    let root = root_for(&[&log]);
    let opts = Options {
        root: &root,
        identity: &IdentityPolicy::Report,
        witnesses: None,
        npm_keys: None,
        now: SystemTime::now(),
    };
    // The global logIndex is not the proof's index: a proof at the global
    // index fails.
    let mut j = log.entry_json(4);
    j["inclusionProof"]["logIndex"] = json!("5");
    let e = verify_log_entry(&serde_json::from_value(j).unwrap(), &opts).unwrap_err();
    assert_eq!(e.check, "inclusion proof", "{e}");
    // A checkpoint signed by another key.
    let mut stranger = TestLog::new(true, 4);
    stranger.append(20, "a");
    let mut j = log.entry_json(4);
    j["inclusionProof"]["checkpoint"]["envelope"] =
        json!(String::from_utf8(stranger.checkpoint()).unwrap());
    let e = verify_log_entry(&serde_json::from_value(j).unwrap(), &opts).unwrap_err();
    assert_eq!(e.check, "checkpoint signature", "{e}");
    // An unknown log.
    let e = verify_log_entry(
        &serde_json::from_value(stranger.entry_json(1)).unwrap(),
        &opts,
    )
    .unwrap_err();
    assert_eq!(e.check, "log", "{e}");
}
