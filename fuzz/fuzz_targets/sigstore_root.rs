//! Fuzzes the Sigstore trust-material parsers: `trusted_root.json`
//! (`sigstore::TrustRoot::from_json`) and the npm registry `keys.json`
//! (`sigstore::npm::NpmKeys::from_json`).
#![no_main]

use bulwark::sigstore::npm::NpmKeys;
use bulwark::sigstore::TrustRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TrustRoot::from_json(text);
        let _ = NpmKeys::from_json(text);
    }
});
