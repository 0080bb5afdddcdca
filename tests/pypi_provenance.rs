//! PEP 740 provenance of real PyPI files (tests/data/sigstore, see its
//! README) checked against the files by `pypi::provenance`: the real
//! provenance verifies for its own file; another file, another name, a
//! publisher outside the policy and a changed byte are refused, each
//! naming the check.

use std::path::PathBuf;
use std::time::SystemTime;

use bulwark::pypi::provenance::verify_provenance;
use bulwark::sigstore::{IdentityPolicy, Options, TrustRoot};
use sha2::{Digest, Sha256};

fn data(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FILE: &str = "pypi_attestations-0.0.19.tar.gz";

fn check(
    provenance: &[u8],
    filename: &str,
    bytes: &[u8],
    identity: &IdentityPolicy,
) -> Result<bulwark::pypi::provenance::VerifiedProvenance, bulwark::sigstore::Refusal> {
    let root = TrustRoot::production().unwrap();
    let opts = Options {
        root: &root,
        identity,
        witnesses: None,
        npm_keys: None,
        now: SystemTime::now(),
    };
    verify_provenance(provenance, filename, Sha256::digest(bytes).into(), &opts)
}

#[test]
fn a_real_provenance_verifies_for_its_own_file_and_names_its_publisher() {
    let prov = data(&format!("pypi/{FILE}.provenance"));
    let file = data(&format!("pypi/{FILE}"));
    let v = check(&prov, FILE, &file, &IdentityPolicy::Report).unwrap();
    assert!(!v.attestations.is_empty());
    assert_eq!(v.publishers.len(), 1);
    assert_eq!(v.publishers[0].kind, "GitHub");
    assert!(v.attestations.iter().all(|a| !a.entries.is_empty()));
    // Another spelling of the same file name is the same distribution.
    check(
        &prov,
        "PyPI.Attestations-0.0.19.tar.gz",
        &file,
        &IdentityPolicy::Report,
    )
    .unwrap();
    // The publisher the provenance states satisfies a policy naming it.
    let repo = &v.publishers[0].repository;
    let policy = IdentityPolicy::publisher(&format!("GitHub:{repo}")).unwrap();
    check(&prov, FILE, &file, &policy).unwrap();
}

#[test]
fn a_provenance_is_refused_for_other_bytes_another_file_or_another_publisher() {
    let prov = data(&format!("pypi/{FILE}.provenance"));
    let file = data(&format!("pypi/{FILE}"));
    let mut changed = file.clone();
    changed[100] ^= 1;
    let e = check(&prov, FILE, &changed, &IdentityPolicy::Report).unwrap_err();
    assert_eq!(e.check, "artifact digest", "{e}");
    // The real bytes under another file's name.
    let e = check(
        &prov,
        "pypi_attestations-0.0.20.tar.gz",
        &file,
        &IdentityPolicy::Report,
    )
    .unwrap_err();
    assert_eq!(e.check, "subject", "{e}");
    // Another file's bytes and name.
    let other = data("pypi/rfc8785-0.1.2-py3-none-any.whl");
    let e = check(
        &prov,
        "rfc8785-0.1.2-py3-none-any.whl",
        &other,
        &IdentityPolicy::Report,
    )
    .unwrap_err();
    assert_eq!(e.check, "artifact digest", "{e}");
    // A publisher the policy does not name.
    let policy = IdentityPolicy::publisher("GitHub:someone/else").unwrap();
    let e = check(&prov, FILE, &file, &policy).unwrap_err();
    assert_eq!(e.check, "publisher", "{e}");
    // A single attestation is not a provenance object.
    let att = data(&format!("pypi/{FILE}.publish.attestation"));
    let e = check(&att, FILE, &file, &IdentityPolicy::Report).unwrap_err();
    assert_eq!(e.check, "format", "{e}");
}
