//! npm attestation answers (`/-/npm/v1/attestations/<name>@<version>`):
//! the publish attestation is a DSSE bundle signed by the registry's key
//! (a public-key bundle whose hint is the key ID from `keys.json`), logged in
//! Rekor v1 as a `dsse` 0.0.1 entry with an inclusion proof, a checkpoint and
//! a SET. No public store has one for a package and its tarball, so this
//! test makes one in the same formats with a test Rekor v1 log (built with
//! `bulwark::tlog`) and a test registry key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bulwark::sigstore::npm::NpmKeys;
use bulwark::sigstore::{
    input, verify_attestation, IdentityPolicy, Options, Refusal, TrustRoot, Verified,
};
use bulwark::tlog::merkle::{leaf_hash, prove_record, stored_hashes, tree_hash, Hash};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};
use std::time::SystemTime;

const PUBLISH: &str = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1";
const KEY_ID: &str = "SHA256:test-registry-key";
/// 2024-06-01T00:00:00Z
const INTEGRATED: i64 = 1_717_200_000;
const TARBALL: &[u8] = b"package/package.json {\"name\":\"test-pkg\",\"version\":\"1.0.0\"}";

struct Fixture {
    root: TrustRoot,
    answer: Value,
}

fn sign(key: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(msg);
    sig.to_der().as_bytes().to_vec()
}

fn keys_json(valid_until: Option<&str>) -> NpmKeys {
    let registry = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let spki = registry.verifying_key().to_public_key_der().unwrap();
    let mut window = json!({ "start": "2020-01-01T00:00:00.000Z" });
    if let Some(end) = valid_until {
        window["end"] = json!(end);
    }
    NpmKeys::from_json(
        &json!({ "keys": [{
            "keyId": KEY_ID,
            "keyUsage": "npm:attestations",
            "publicKey": {
                "rawBytes": STANDARD.encode(spki.as_bytes()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": window,
            },
        }]})
        .to_string(),
    )
    .unwrap()
}

fn fixture(tarball: &[u8]) -> Fixture {
    let registry = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let log_key = SigningKey::from_slice(&[0x17; 32]).unwrap();
    let log_spki = log_key
        .verifying_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec();
    let log_id: [u8; 32] = Sha256::digest(&log_spki).into();

    // The statement and its DSSE envelope, signed by the registry key.
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "pkg:npm/test-pkg@1.0.0", "digest": { "sha512": hex::encode(Sha512::digest(tarball)) } }],
        "predicateType": PUBLISH,
        "predicate": { "name": "test-pkg", "version": "1.0.0", "registry": "https://registry.example" },
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let payload_type = "application/vnd.in-toto+json";
    let pae = [
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .into_bytes(),
        payload.clone(),
    ]
    .concat();
    let sig = sign(&registry, &pae);

    // The dsse 0.0.1 entry body, as Rekor canonicalizes it.
    let pem = registry
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(b"envelope")) },
            "payloadHash": { "algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload)) },
            "signatures": [{ "signature": STANDARD.encode(&sig), "verifier": STANDARD.encode(pem.as_bytes()) }],
        },
    });
    let body = serde_json::to_vec(&body).unwrap();

    // A Rekor v1 shard: 40 other entries, then ours.
    let mut stored: Vec<Hash> = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..41u64 {
        let b = if i == 40 {
            body.clone()
        } else {
            format!("other {i}").into_bytes()
        };
        let l = leaf_hash(&b);
        stored.extend(stored_hashes(i, &l, stored.as_slice()).unwrap());
        leaves.push(l);
    }
    let (index, size) = (40u64, 41u64);
    let global = 900_000_040u64;
    let root = tree_hash(size, stored.as_slice()).unwrap();
    let proof = prove_record(size, index, stored.as_slice()).unwrap();
    let text = format!("rekor.test - 5\n{size}\n{root}\n");
    let mut raw = log_id[..4].to_vec();
    raw.extend(sign(&log_key, text.as_bytes()));
    let note = format!("{text}\n\u{2014} rekor.test {}\n", STANDARD.encode(raw));
    // The SET: the log's signature over the canonical JSON of the entry.
    let set_payload = format!(
        r#"{{"body":"{}","integratedTime":{INTEGRATED},"logID":"{}","logIndex":{global}}}"#,
        STANDARD.encode(&body),
        hex::encode(log_id)
    );
    let set = sign(&log_key, set_payload.as_bytes());

    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {
            "publicKey": { "hint": KEY_ID },
            "tlogEntries": [{
                "logIndex": global.to_string(),
                "logId": { "keyId": STANDARD.encode(log_id) },
                "kindVersion": { "kind": "dsse", "version": "0.0.1" },
                "integratedTime": INTEGRATED.to_string(),
                "inclusionPromise": { "signedEntryTimestamp": STANDARD.encode(set) },
                "inclusionProof": {
                    "logIndex": index.to_string(),
                    "rootHash": STANDARD.encode(root.0),
                    "treeSize": size.to_string(),
                    "hashes": proof.iter().map(|h| STANDARD.encode(h.0)).collect::<Vec<_>>(),
                    "checkpoint": { "envelope": note },
                },
                "canonicalizedBody": STANDARD.encode(&body),
            }],
        },
        "dsseEnvelope": {
            "payload": STANDARD.encode(&payload),
            "payloadType": payload_type,
            "signatures": [{ "sig": STANDARD.encode(&sig), "keyid": "" }],
        },
    });
    let trusted = json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://rekor.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": STANDARD.encode(&log_spki),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2020-01-01T00:00:00Z" },
            },
            "logId": { "keyId": STANDARD.encode(log_id) },
        }],
    });
    Fixture {
        root: TrustRoot::from_json(&trusted.to_string()).unwrap(),
        answer: json!({ "attestations": [{ "predicateType": PUBLISH, "bundle": bundle }] }),
    }
}

fn run(
    f: &Fixture,
    answer: &Value,
    keys: &NpmKeys,
    tarball: &[u8],
) -> Result<Vec<Verified>, Refusal> {
    let (format, atts) = input::parse(&serde_json::to_vec(answer).unwrap())?;
    assert_eq!(format, input::Format::NpmAttestations);
    let opts = Options {
        root: &f.root,
        identity: &IdentityPolicy::Report,
        witnesses: None,
        npm_keys: Some(keys),
        now: SystemTime::now(),
    };
    atts.iter()
        .map(|a| verify_attestation(a, tarball, &opts))
        .collect()
}

#[test]
fn npm_publish_attestation_verifies_under_the_registry_key() {
    let f = fixture(TARBALL);
    let v = run(&f, &f.answer, &keys_json(None), TARBALL).unwrap();
    assert_eq!(v[0].identity, format!("npm registry key {KEY_ID}"));
    assert_eq!(v[0].predicate_type.as_deref(), Some(PUBLISH));
    assert_eq!(v[0].subjects[0].name, "pkg:npm/test-pkg@1.0.0");
    assert_eq!(v[0].subjects[0].digests[0].0, "sha512");
    let e = &v[0].entries[0];
    assert_eq!(
        (e.proof_index, e.log_index, e.checkpoint.size),
        (40, 900_000_040, 41)
    );
    assert_eq!(e.kind, "dsse 0.0.1");
    assert_eq!(
        v[0].signing_time,
        Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(INTEGRATED as u64))
    );
}

#[test]
fn npm_refusals_name_the_check() {
    let f = fixture(TARBALL);
    let keys = keys_json(None);
    // Another tarball.
    let mut other = TARBALL.to_vec();
    other[3] ^= 1;
    assert_eq!(
        run(&f, &f.answer, &keys, &other).unwrap_err().check,
        "artifact digest"
    );
    // A key that had expired at the signing time.
    let expired = keys_json(Some("2024-01-01T00:00:00.000Z"));
    assert_eq!(
        run(&f, &f.answer, &expired, TARBALL).unwrap_err().check,
        "npm key validity"
    );
    // A hint naming a key the registry does not have.
    let mut a = f.answer.clone();
    a["attestations"][0]["bundle"]["verificationMaterial"]["publicKey"]["hint"] =
        json!("SHA256:unknown");
    assert_eq!(run(&f, &a, &keys, TARBALL).unwrap_err().check, "npm key");
    // The listed predicate type must be the statement's.
    let mut a = f.answer.clone();
    a["attestations"][0]["predicateType"] = json!("https://slsa.dev/provenance/v1");
    assert_eq!(
        run(&f, &a, &keys, TARBALL).unwrap_err().check,
        "predicate type"
    );
    // The DSSE signature, one bit off.
    let mut a = f.answer.clone();
    let sig = a["attestations"][0]["bundle"]["dsseEnvelope"]["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = STANDARD.decode(sig).unwrap();
    let n = raw.len();
    raw[n - 2] ^= 1;
    a["attestations"][0]["bundle"]["dsseEnvelope"]["signatures"][0]["sig"] =
        json!(STANDARD.encode(raw));
    let e = run(&f, &a, &keys, TARBALL).unwrap_err();
    assert!(["signature", "log entry body"].contains(&e.check), "{e}");
    // The SET, one bit off.
    let mut a = f.answer.clone();
    let set = &mut a["attestations"][0]["bundle"]["verificationMaterial"]["tlogEntries"][0]
        ["inclusionPromise"]["signedEntryTimestamp"];
    let mut raw = STANDARD.decode(set.as_str().unwrap()).unwrap();
    let n = raw.len();
    raw[n - 2] ^= 1;
    *set = json!(STANDARD.encode(raw));
    assert_eq!(
        run(&f, &a, &keys, TARBALL).unwrap_err().check,
        "inclusion promise"
    );
    // Without the registry keys a public-key bundle is refused.
    let (_, atts) = input::parse(&serde_json::to_vec(&f.answer).unwrap()).unwrap();
    let opts = Options {
        root: &f.root,
        identity: &IdentityPolicy::Report,
        witnesses: None,
        npm_keys: None,
        now: SystemTime::now(),
    };
    assert_eq!(
        verify_attestation(&atts[0], TARBALL, &opts)
            .unwrap_err()
            .check,
        "signing key"
    );
}

/// The real answer of the public registry for `@playwright/cli@0.1.1`
/// and its tarball (tests/data/sigstore/npm, see its README).
mod real {
    use super::*;
    use bulwark::npm::attestations::check_answer;
    use bulwark::npm::name::PackageName;
    use std::path::PathBuf;

    fn data(name: &str) -> Vec<u8> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sigstore/npm")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn answer() -> Value {
        serde_json::from_slice(&data("playwright-cli-0.1.1-attestations.json")).unwrap()
    }

    fn sha512() -> [u8; 64] {
        Sha512::digest(data("playwright-cli-0.1.1.tgz")).into()
    }

    fn check(
        answer: &Value,
        name: &str,
        version: &str,
        sha512: [u8; 64],
        identity: &IdentityPolicy,
    ) -> Result<bulwark::npm::attestations::CheckedAttestations, Refusal> {
        check_answer(
            &serde_json::to_vec(answer).unwrap(),
            &PackageName::parse(name).unwrap(),
            version,
            sha512,
            &NpmKeys::embedded().unwrap(),
            &TrustRoot::production().unwrap(),
            identity,
        )
    }

    #[test]
    fn the_real_answer_verifies_and_names_its_publisher() {
        let c = check(
            &answer(),
            "@playwright/cli",
            "0.1.1",
            sha512(),
            &IdentityPolicy::Report,
        )
        .unwrap();
        assert_eq!(c.publisher, "GitHub:microsoft/playwright-cli:publish.yml");
        assert_eq!(c.attestations.len(), 2);
        for a in &c.attestations {
            assert_eq!(a.entries[0].kind, "dsse 0.0.1");
            assert_eq!(
                a.entries[0].checkpoint.origin,
                "rekor.sigstore.dev - 1193050959916656506"
            );
        }
        // The publisher the operator expects, with and without the workflow.
        for spec in [
            "GitHub:microsoft/playwright-cli",
            "GitHub:microsoft/playwright-cli:publish.yml",
        ] {
            let p = IdentityPolicy::publisher(spec).unwrap();
            check(&answer(), "@playwright/cli", "0.1.1", sha512(), &p).unwrap();
        }
    }

    #[test]
    fn the_real_answer_is_refused_for_anything_else() {
        let report = IdentityPolicy::Report;
        // Another version, another package: the subject names neither.
        let e = check(&answer(), "@playwright/cli", "0.1.2", sha512(), &report).unwrap_err();
        assert_eq!(e.check, "subject", "{e}");
        let e = check(&answer(), "@playwright/test", "0.1.1", sha512(), &report).unwrap_err();
        assert_eq!(e.check, "subject", "{e}");
        // Another tarball.
        let mut other = sha512();
        other[0] ^= 1;
        let e = check(&answer(), "@playwright/cli", "0.1.1", other, &report).unwrap_err();
        assert_eq!(e.check, "artifact digest", "{e}");
        // Another source repository, or another workflow.
        for spec in [
            "GitHub:someone/playwright-cli",
            "GitHub:microsoft/playwright-cli:release.yml",
        ] {
            let p = IdentityPolicy::publisher(spec).unwrap();
            let e = check(&answer(), "@playwright/cli", "0.1.1", sha512(), &p).unwrap_err();
            assert_eq!(e.check, "publisher", "{spec}: {e}");
        }
        // Only one of the two attestations.
        for (drop, seen) in [(1, "no provenance"), (0, "no publish attestation")] {
            let mut a = answer();
            a["attestations"].as_array_mut().unwrap().remove(drop);
            let e = check(&a, "@playwright/cli", "0.1.1", sha512(), &report).unwrap_err();
            assert_eq!((e.check, e.seen.as_str()), ("attestation", seen), "{e}");
        }
        // The provenance's bundle under the publish attestation's listing
        // and the other way round: each must be what it is listed as.
        let mut a = answer();
        let list = a["attestations"].as_array_mut().unwrap();
        let t0 = list[0]["predicateType"].clone();
        list[0]["predicateType"] = list[1]["predicateType"].clone();
        list[1]["predicateType"] = t0;
        let e = check(&a, "@playwright/cli", "0.1.1", sha512(), &report).unwrap_err();
        assert_eq!(e.check, "predicate type", "{e}");
        // Not an attestations answer at all.
        let bundle = answer()["attestations"][0]["bundle"].clone();
        let e = check(&bundle, "@playwright/cli", "0.1.1", sha512(), &report).unwrap_err();
        assert_eq!(e.check, "format", "{e}");
    }
}
