//! Real Sigstore data (tests/data/sigstore, see its README): every file
//! verifies or is refused as the README says, through the library; one-byte
//! changes fail with the right check named; staging fails under the
//! production root; the witnessed Rekor v2 checkpoint and witness policies.

#[path = "support/pep740.rs"]
mod pep740;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bulwark::sigstore::npm::NpmKeys;
use bulwark::sigstore::{
    input, verify_attestation, ArtifactInput, IdentityPolicy, Options, Refusal, TrustRoot, Verified,
};
use bulwark::tlog::policy::Policy;
use serde_json::Value;
use std::path::PathBuf;
use std::time::SystemTime;

fn data(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn staging() -> TrustRoot {
    TrustRoot::from_json(std::str::from_utf8(&data("trust/trusted_root.staging.json")).unwrap())
        .unwrap()
}

/// The Rekor v2 DSSE bundle attests sigstore-python's `a.txt` (its subject
/// digest); the file beside it in the data set is not that file, so it is
/// checked against the subject's SHA-256.
const A_TXT_SHA256: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

fn a_txt() -> ArtifactInput<'static> {
    ArtifactInput::Sha256(hex::decode(A_TXT_SHA256).unwrap().try_into().unwrap())
}

fn run<'a>(
    root: &TrustRoot,
    identity: &IdentityPolicy,
    witnesses: Option<&Policy>,
    bundle: &[u8],
    artifact: impl Into<ArtifactInput<'a>>,
) -> Result<Vec<Verified>, Refusal> {
    let artifact = artifact.into();
    let keys = NpmKeys::embedded().unwrap();
    let (_, atts) = input::parse(bundle)?;
    let opts = Options {
        root,
        identity,
        witnesses,
        npm_keys: Some(&keys),
        now: SystemTime::now(),
    };
    atts.iter()
        .map(|a| verify_attestation(a, artifact, &opts))
        .collect()
}

fn prod(bundle: &str, artifact: &str) -> Result<Vec<Verified>, Refusal> {
    run(
        &TrustRoot::production().unwrap(),
        &IdentityPolicy::Report,
        None,
        &data(bundle),
        &data(artifact),
    )
}

fn refused(r: Result<Vec<Verified>, Refusal>) -> Refusal {
    match r {
        Ok(v) => panic!("verified, expected a refusal: {v:?}"),
        Err(e) => e,
    }
}

const TGZ: &str = "pypi/pypi_attestations-0.0.19.tar.gz";

#[test]
fn pypi_provenance_verifies_with_shard_local_index_and_publisher() {
    let v = prod("pypi/pypi_attestations-0.0.19.tar.gz.provenance", TGZ).unwrap();
    assert_eq!(v.len(), 1);
    let e = &v[0].entries[0];
    assert_eq!(
        e.checkpoint.origin,
        "rekor.sigstore.dev - 1193050959916656506"
    );
    assert!(
        e.proof_index < e.log_index,
        "Rekor v1 proofs use the shard-local index"
    );
    assert_eq!(e.kind, "dsse 0.0.1");
    assert_eq!(
        v[0].publisher.as_ref().unwrap().repository,
        "trailofbits/pypi-attestations"
    );
    assert_eq!(
        v[0].predicate_type.as_deref(),
        Some(pep740::publish_predicate().as_str())
    );
    assert!(v[0]
        .identity
        .starts_with("https://github.com/trailofbits/pypi-attestations/"));
    assert!(v[0].signing_time.is_some());
}

#[test]
fn pypi_attestation_objects_verify() {
    let publish = pep740::publish_predicate();
    assert!(publish.ends_with("/attestations/publish/v1"), "{publish}");
    for (att, artifact, predicate) in [
        (
            "pypi/pypi_attestations-0.0.19.tar.gz.publish.attestation",
            TGZ,
            publish.as_str(),
        ),
        (
            "pypi/pypi_attestations-0.0.19.tar.gz.slsa.attestation",
            TGZ,
            "https://slsa.dev/provenance/v1",
        ),
        (
            "pypi/gitlab_oidc_project-0.0.3.tar.gz.publish.attestation",
            "pypi/gitlab_oidc_project-0.0.3.tar.gz",
            publish.as_str(),
        ),
        (
            "pypi/pypi_attestation_models-0.0.4a2.tar.gz.attestation",
            "pypi/pypi_attestation_models-0.0.4a2.tar.gz",
            publish.as_str(),
        ),
    ] {
        let v = prod(att, artifact).unwrap_or_else(|e| panic!("{att}: {e}"));
        assert_eq!(v[0].predicate_type.as_deref(), Some(predicate), "{att}");
    }
    // Shards rotate, the key stays.
    let v = prod(
        "pypi/pypi_attestation_models-0.0.4a2.tar.gz.attestation",
        "pypi/pypi_attestation_models-0.0.4a2.tar.gz",
    )
    .unwrap();
    assert_eq!(
        v[0].entries[0].checkpoint.origin,
        "rekor.sigstore.dev - 2605736670972794746"
    );
}

#[test]
fn cosign_bundle_verifies() {
    let v = prod(
        "bundles/cosign-v3-blob.sigstore.json",
        "bundles/cosign-v3-blob.txt",
    )
    .unwrap();
    assert_eq!(v[0].entries[0].checkpoint.size, 616408488);
    assert_eq!(v[0].entries[0].kind, "hashedrekord 0.0.1");
    assert_eq!(v[0].predicate_type, None);
}

#[test]
fn staging_files_fail_under_production_and_pass_under_staging() {
    for (bundle, artifact) in [
        (
            "pypi/rfc8785-0.1.2-py3-none-any.whl.publish.attestation",
            "pypi/rfc8785-0.1.2-py3-none-any.whl",
        ),
        ("bundles/bundle_v3.txt.sigstore", "bundles/bundle_v3.txt"),
        (
            "bundles/a.dsse.staging-rekor-v2.txt.sigstore.json",
            "bundles/a.dsse.staging-rekor-v2.txt",
        ),
    ] {
        let e = refused(prod(bundle, artifact));
        assert_eq!(e.check, "log", "{bundle}: {e}");
        let bytes = data(artifact);
        let input = if bundle.starts_with("bundles/a.dsse") {
            a_txt()
        } else {
            ArtifactInput::Bytes(&bytes)
        };
        run(
            &staging(),
            &IdentityPolicy::Report,
            None,
            &data(bundle),
            input,
        )
        .unwrap_or_else(|e| panic!("{bundle} under staging: {e}"));
    }
}

#[test]
fn rekor_v2_bundle_verifies_with_its_ed25519_checkpoint() {
    let v = run(
        &staging(),
        &IdentityPolicy::Report,
        None,
        &data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json"),
        a_txt(),
    )
    .unwrap();
    let e = &v[0].entries[0];
    assert_eq!(e.checkpoint.origin, "log2025-alpha3.rekor.sigstage.dev");
    assert_eq!(e.checkpoint.size, 4026479);
    assert_eq!(e.proof_index, e.log_index);
    assert_eq!(e.kind, "hashedrekord 0.0.2");
    assert!(v[0].signing_time.is_some(), "RFC 3161 time");
}

const W1: &str = "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv";
const W2: &str = "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL";
const W3: &str =
    "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G";

fn v2_log_vkey() -> String {
    let root = staging();
    root.logs()
        .iter()
        .find(|l| l.host == "log2025-alpha3.rekor.sigstage.dev")
        .unwrap()
        .key
        .to_string()
}

fn witness_run(policy: &str) -> Result<Vec<Verified>, Refusal> {
    let policy = Policy::parse(policy).unwrap();
    run(
        &staging(),
        &IdentityPolicy::Report,
        Some(&policy),
        &data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json"),
        a_txt(),
    )
}

#[test]
fn witnessed_checkpoint_passes_two_of_three() {
    let policy = format!(
        "log {}\nwitness a {W1}\nwitness b {W2}\nwitness c {W3}\ngroup g 2 a b c\nquorum g\n",
        v2_log_vkey()
    );
    let v = witness_run(&policy).unwrap();
    assert_eq!(v[0].entries[0].cosigners.len(), 3);
}

#[test]
fn policy_naming_a_witness_that_did_not_sign_fails() {
    let stranger = bulwark::tlog::note::Signer::generate("witness.example").unwrap();
    let policy = format!(
        "log {}\nwitness a {W1}\nwitness x {}\ngroup g all a x\nquorum g\n",
        v2_log_vkey(),
        stranger.verifier_key()
    );
    let e = refused(witness_run(&policy));
    assert_eq!(e.check, "witness policy", "{e}");
}

#[test]
fn negative_bundles_are_refused_with_the_check_named() {
    for (bundle, artifact, root, check) in [
        (
            "bundles/bundle_no_checkpoint.txt.sigstore",
            "bundles/bundle_no_checkpoint.txt",
            true,
            "checkpoint",
        ),
        (
            "bundles/bundle_no_log_entry.txt.sigstore",
            "bundles/bundle_no_log_entry.txt",
            true,
            "transparency log entry",
        ),
        (
            "bundles/github-private-attestation.sigstore.json",
            "bundles/cosign-v3-blob.txt",
            false,
            "transparency log entry",
        ),
        (
            "bundles/bundle_cve_2022_36056.txt.sigstore",
            "bundles/bundle_cve_2022_36056.txt",
            true,
            "log entry body",
        ),
        (
            "bundles/bundle_invalid_version.txt.sigstore",
            "bundles/bundle_invalid_version.txt",
            true,
            "media type",
        ),
        // v0.1, an inclusion promise only: nothing for the trust state.
        (
            "bundles/dsse.sigstore.json",
            "bundles/cosign-v3-blob.txt",
            false,
            "inclusion proof",
        ),
    ] {
        let r = if root {
            staging()
        } else {
            TrustRoot::production().unwrap()
        };
        let e = refused(run(
            &r,
            &IdentityPolicy::Report,
            None,
            &data(bundle),
            &data(artifact),
        ));
        assert_eq!(e.check, check, "{bundle}: {e}");
    }
}

// ---------------------------------------------------------------------------
// One-byte changes.
// ---------------------------------------------------------------------------

/// Decodes base64 `s`, flips a bit of byte `at` (from the end if negative), re-encodes.
fn flip_b64(s: &str, at: isize) -> String {
    let mut b = STANDARD.decode(s).unwrap();
    let i = if at < 0 {
        (b.len() as isize + at) as usize
    } else {
        at as usize
    };
    b[i] ^= 0x01;
    STANDARD.encode(b)
}

fn cosign_json() -> Value {
    serde_json::from_slice(&data("bundles/cosign-v3-blob.sigstore.json")).unwrap()
}

fn cosign_with(v: &Value) -> Refusal {
    refused(run(
        &TrustRoot::production().unwrap(),
        &IdentityPolicy::Report,
        None,
        &serde_json::to_vec(v).unwrap(),
        &data("bundles/cosign-v3-blob.txt"),
    ))
}

#[test]
fn one_byte_change_to_the_artifact_fails() {
    let mut artifact = data("bundles/cosign-v3-blob.txt");
    artifact[0] ^= 1;
    let e = refused(run(
        &TrustRoot::production().unwrap(),
        &IdentityPolicy::Report,
        None,
        &data("bundles/cosign-v3-blob.sigstore.json"),
        &artifact,
    ));
    assert!(
        ["signature", "log entry body", "artifact digest"].contains(&e.check),
        "{e}"
    );
    let mut tgz = data(TGZ);
    tgz[100] ^= 1;
    let e = refused(run(
        &TrustRoot::production().unwrap(),
        &IdentityPolicy::Report,
        None,
        &data("pypi/pypi_attestations-0.0.19.tar.gz.provenance"),
        &tgz,
    ));
    assert_eq!(e.check, "artifact digest", "{e}");
}

#[test]
fn one_byte_change_to_the_signature_fails() {
    let mut v = cosign_json();
    let sig = v["messageSignature"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    v["messageSignature"]["signature"] = Value::String(flip_b64(&sig, -3));
    let e = cosign_with(&v);
    // The RFC 3161 timestamp covers the signature: it is the first to notice.
    assert!(
        ["signature", "log entry body", "timestamp"].contains(&e.check),
        "{e}"
    );
}

#[test]
fn one_byte_change_to_the_certificate_fails() {
    let mut v = cosign_json();
    let cert = v["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .unwrap()
        .to_string();
    // A byte inside the signature of the certificate.
    v["verificationMaterial"]["certificate"]["rawBytes"] = Value::String(flip_b64(&cert, -5));
    let e = cosign_with(&v);
    assert!(
        ["certificate chain", "certificate", "log entry body"].contains(&e.check),
        "{e}"
    );
}

#[test]
fn one_byte_change_to_the_body_fails_the_inclusion_proof() {
    let mut v = cosign_json();
    let e0 = &mut v["verificationMaterial"]["tlogEntries"][0];
    let body = e0["canonicalizedBody"].as_str().unwrap().to_string();
    e0["canonicalizedBody"] = Value::String(flip_b64(&body, 10));
    let e = cosign_with(&v);
    assert_eq!(e.check, "inclusion proof", "{e}");
}

#[test]
fn one_byte_change_to_the_proof_fails() {
    let mut v = cosign_json();
    let h = &mut v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][3];
    let s = h.as_str().unwrap().to_string();
    *h = Value::String(flip_b64(&s, 0));
    let e = cosign_with(&v);
    assert_eq!(e.check, "inclusion proof", "{e}");
}

#[test]
fn one_byte_change_to_the_checkpoint_fails() {
    let mut v = cosign_json();
    let cp = &mut v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        ["envelope"];
    let s = cp.as_str().unwrap().replace("616408488\n", "616408489\n");
    *cp = Value::String(s);
    let e = cosign_with(&v);
    assert_eq!(e.check, "checkpoint signature", "{e}");
}

// ---------------------------------------------------------------------------
// Identity policies.
// ---------------------------------------------------------------------------

#[test]
fn issuer_and_identity_pattern() {
    let root = TrustRoot::production().unwrap();
    let b = data("bundles/cosign-v3-blob.sigstore.json");
    let a = data("bundles/cosign-v3-blob.txt");
    let ok =
        IdentityPolicy::certificate("https://github.com/login/oauth", r".*@gmail\.com").unwrap();
    run(&root, &ok, None, &b, &a).unwrap();
    let wrong_issuer = IdentityPolicy::certificate("https://accounts.google.com", r".*").unwrap();
    assert_eq!(
        refused(run(&root, &wrong_issuer, None, &b, &a)).check,
        "issuer"
    );
    // Anchored: a pattern matching part of the SAN is not enough.
    let partial = IdentityPolicy::certificate("https://github.com/login/oauth", "gmail").unwrap();
    assert_eq!(
        refused(run(&root, &partial, None, &b, &a)).check,
        "identity"
    );
}

#[test]
fn publisher_policy() {
    let root = TrustRoot::production().unwrap();
    let b = data("pypi/pypi_attestations-0.0.19.tar.gz.publish.attestation");
    let a = data(TGZ);
    for good in [
        "GitHub:trailofbits/pypi-attestations",
        "GitHub:trailofbits/pypi-attestations:release.yml",
    ] {
        run(
            &root,
            &IdentityPolicy::publisher(good).unwrap(),
            None,
            &b,
            &a,
        )
        .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "GitHub:trailofbits/other",
        "GitHub:trailofbits/pypi-attestations:other.yml",
        "GitLab:trailofbits/pypi-attestations",
    ] {
        let e = refused(run(
            &root,
            &IdentityPolicy::publisher(bad).unwrap(),
            None,
            &b,
            &a,
        ));
        assert_eq!(e.check, "publisher", "{bad}: {e}");
    }
    let gl = data("pypi/gitlab_oidc_project-0.0.3.tar.gz.publish.attestation");
    let gla = data("pypi/gitlab_oidc_project-0.0.3.tar.gz");
    let v = run(&root, &IdentityPolicy::Report, None, &gl, &gla).unwrap();
    assert!(
        v[0].identity.starts_with("https://gitlab.com/"),
        "{}",
        v[0].identity
    );
}

#[test]
fn provenance_publisher_must_match_the_certificate() {
    let mut v: Value =
        serde_json::from_slice(&data("pypi/pypi_attestations-0.0.19.tar.gz.provenance")).unwrap();
    v["attestation_bundles"][0]["publisher"]["repository"] = Value::String("someone/else".into());
    let e = refused(run(
        &TrustRoot::production().unwrap(),
        &IdentityPolicy::Report,
        None,
        &serde_json::to_vec(&v).unwrap(),
        &data(TGZ),
    ));
    assert_eq!(e.check, "publisher", "{e}");
}

#[test]
fn unknown_and_empty_inputs_are_refused() {
    let root = TrustRoot::production().unwrap();
    let a = data(TGZ);
    for (input, check) in [
        (&b"not json"[..], "format"),
        (br#"{"hello":1}"#, "format"),
        (br#"{"attestations":[]}"#, "attestations"),
        (br#"{"version":1,"attestation_bundles":[]}"#, "attestations"),
        (br#"[1,2]"#, "format"),
    ] {
        let e = refused(run(&root, &IdentityPolicy::Report, None, input, &a));
        assert_eq!(e.check, check, "{}: {e}", String::from_utf8_lossy(input));
    }
}

#[test]
fn dsse_subject_must_be_the_artifact() {
    // The file beside the Rekor v2 bundle is not its subject (see the README).
    let e = refused(run(
        &staging(),
        &IdentityPolicy::Report,
        None,
        &data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json"),
        &data("bundles/a.dsse.staging-rekor-v2.txt"),
    ));
    assert_eq!(e.check, "artifact digest", "{e}");
    let mut digest: [u8; 32] = hex::decode(A_TXT_SHA256).unwrap().try_into().unwrap();
    digest[31] ^= 1;
    let e = refused(run(
        &staging(),
        &IdentityPolicy::Report,
        None,
        &data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json"),
        ArtifactInput::Sha256(digest),
    ));
    assert_eq!(e.check, "artifact digest", "{e}");
}

#[test]
fn a_retired_log_shard_signs_nothing_new() {
    // The staging root with the Rekor v2 shard's key retired before the
    // bundle was signed (2026-05-13).
    let mut root: Value = serde_json::from_slice(&data("trust/trusted_root.staging.json")).unwrap();
    for log in root["tlogs"].as_array_mut().unwrap() {
        if log["baseUrl"] == "https://log2025-alpha3.rekor.sigstage.dev" {
            log["publicKey"]["validFor"]["end"] = Value::String("2026-01-01T00:00:00Z".into());
        }
    }
    let root = TrustRoot::from_json(&root.to_string()).unwrap();
    let e = refused(run(
        &root,
        &IdentityPolicy::Report,
        None,
        &data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json"),
        a_txt(),
    ));
    assert_eq!(e.check, "log validity", "{e}");
}
