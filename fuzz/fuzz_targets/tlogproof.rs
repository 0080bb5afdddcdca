//! Fuzzes the c2sp.org/tlog-proof@v1 parser: no input may panic, and every
//! accepted proof must print back to the same bytes.
#![no_main]

use bulwark::tlog::proof::TlogProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TlogProof::parse(data) {
        assert_eq!(p.to_bytes(), data, "accepted a non-canonical proof");
        let _ = p.unverified_checkpoint_body();
    }
});
