//! Fuzzes the Sigstore input parser (`sigstore::input::parse`: bundles
//! v0.1-v0.3, PEP 740 attestation and provenance objects, npm attestation
//! answers) with arbitrary bytes, and verifies whatever parses against the
//! embedded production root (every path must refuse or verify, never panic).
#![no_main]

use bulwark::sigstore::{input, verify_attestation, IdentityPolicy, Options, TrustRoot};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

static ROOT: OnceLock<TrustRoot> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if let Ok((_, atts)) = input::parse(data) {
        assert!(!atts.is_empty() && atts.len() <= input::MAX_ATTESTATIONS);
        let root = ROOT.get_or_init(|| TrustRoot::production().unwrap());
        let opts = Options {
            root,
            identity: &IdentityPolicy::Report,
            witnesses: None,
            npm_keys: None,
            now: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        };
        for a in &atts {
            let _ = verify_attestation(a, &b"artifact"[..], &opts);
        }
    }
});
