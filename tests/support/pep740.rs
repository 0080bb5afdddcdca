//! What the real PEP 740 test attestations say about themselves, read
//! straight from their JSON (not through bulwark's parser), so tests can
//! compare bulwark's report with the signed statement without writing the
//! registry's own identifiers into the tests.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::path::PathBuf;

/// The `predicateType` of the in-toto statement inside a PEP 740
/// attestation object under `tests/data/sigstore/`.
pub fn predicate_type(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore")
        .join(rel);
    let text = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let att: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let statement = STANDARD
        .decode(att["envelope"]["statement"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&statement).unwrap();
    statement["predicateType"].as_str().unwrap().to_string()
}

/// The PEP 740 publish predicate, as the signed attestations carry it.
pub fn publish_predicate() -> String {
    predicate_type("pypi/pypi_attestations-0.0.19.tar.gz.publish.attestation")
}
