//! Property tests for the Sigstore parsers (`bulwark::sigstore::input`,
//! `TrustRoot::from_json`, `NpmKeys::from_json`) and the verifier behind
//! them: on arbitrary bytes and on mutations of the real data they refuse
//! or verify, never panic; sizes are bounded before anything is parsed.

use bulwark::sigstore::npm::NpmKeys;
use bulwark::sigstore::{input, verify_attestation, IdentityPolicy, Options, TrustRoot};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

fn data(rel: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sigstore")
            .join(rel),
    )
    .unwrap()
}

const REAL: &[&str] = &[
    "pypi/pypi_attestations-0.0.19.tar.gz.provenance",
    "pypi/gitlab_oidc_project-0.0.3.tar.gz.publish.attestation",
    "bundles/cosign-v3-blob.sigstore.json",
    "bundles/a.dsse.staging-rekor-v2.txt.sigstore.json",
    "bundles/bundle_no_checkpoint.txt.sigstore",
    "bundles/dsse.sigstore.json",
];

fn corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| REAL.iter().map(|p| data(p)).collect())
}

fn root() -> &'static TrustRoot {
    static R: OnceLock<TrustRoot> = OnceLock::new();
    R.get_or_init(|| TrustRoot::production().unwrap())
}

/// Parses and, for what parses, verifies: must return, never panic.
fn exercise(bytes: &[u8]) {
    if let Ok((_, atts)) = input::parse(bytes) {
        assert!(!atts.is_empty() && atts.len() <= input::MAX_ATTESTATIONS);
        let keys = NpmKeys::embedded().unwrap();
        let opts = Options {
            root: root(),
            identity: &IdentityPolicy::Report,
            witnesses: None,
            npm_keys: Some(&keys),
            now: SystemTime::now(),
        };
        for a in &atts {
            let _ = verify_attestation(a, &b"artifact"[..], &opts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = TrustRoot::from_json(s);
            let _ = NpmKeys::from_json(s);
        }
    }

    #[test]
    fn mutated_real_inputs_never_panic(
        which in 0..REAL.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut b = corpus()[which].clone();
        for (at, byte) in edits {
            let i = at.index(b.len());
            b[i] = byte;
        }
        if let Some(c) = cut {
            b.truncate(c.index(b.len()));
        }
        exercise(&b);
    }

    #[test]
    fn mutated_trust_roots_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0x20u8..0x7f), 1..6),
    ) {
        let mut b = bulwark::sigstore::root::PRODUCTION_TRUSTED_ROOT.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(b.len());
            b[i] = byte;
        }
        let _ = TrustRoot::from_json(std::str::from_utf8(&b).unwrap());
    }
}

#[test]
fn size_is_bounded_before_parsing() {
    let big = vec![b' '; input::MAX_INPUT + 1];
    let e = input::parse(&big).unwrap_err();
    assert_eq!(e.check, "format");
    assert!(e.seen.contains(&(input::MAX_INPUT + 1).to_string()), "{e}");
    let huge_root = " ".repeat(bulwark::sigstore::root::MAX_TRUSTED_ROOT + 1);
    assert_eq!(
        TrustRoot::from_json(&huge_root).unwrap_err().check,
        "trusted root"
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let depth = 100_000;
    let mut s =
        String::from(r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":"#);
    s.push_str(&"[".repeat(depth));
    s.push_str(&"]".repeat(depth));
    s.push('}');
    assert_eq!(input::parse(s.as_bytes()).unwrap_err().check, "format");
}

#[test]
fn attestation_count_is_bounded() {
    let one = r#"{"predicateType":"p","bundle":{}}"#;
    let list = vec![one; input::MAX_ATTESTATIONS + 1].join(",");
    let e = input::parse(format!(r#"{{"attestations":[{list}]}}"#).as_bytes()).unwrap_err();
    assert_eq!(e.check, "format", "{e}");
    // A long inclusion proof is refused before any hashing.
    let mut v: serde_json::Value =
        serde_json::from_slice(&data("bundles/cosign-v3-blob.sigstore.json")).unwrap();
    let hashes = vec![serde_json::Value::String("A".repeat(43) + "="); 65];
    v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] =
        serde_json::Value::Array(hashes);
    let (_, atts) = input::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
    let keys = NpmKeys::embedded().unwrap();
    let opts = Options {
        root: root(),
        identity: &IdentityPolicy::Report,
        witnesses: None,
        npm_keys: Some(&keys),
        now: SystemTime::now(),
    };
    let e = verify_attestation(&atts[0], &data("bundles/cosign-v3-blob.txt"), &opts).unwrap_err();
    assert_eq!(e.check, "inclusion proof", "{e}");
    assert!(e.expected.contains("at most 64"), "{e}");
}
