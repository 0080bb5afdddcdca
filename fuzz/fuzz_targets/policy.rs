//! Fuzzes the tlog-policy parser (`tlog::policy`) with arbitrary text, and
//! evaluates what parses against a fixed checkpoint.
#![no_main]

use bulwark::tlog::policy::Policy;
use libfuzzer_sys::fuzz_target;

// checkpoint.3 of the Tessera test log (see tests/data/tessera-checkpoints).
const CHECKPOINT: &[u8] = include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.3");

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = Policy::parse(text) {
            // The canonical form parses back to the same policy.
            assert_eq!(Policy::parse(&p.to_string()).unwrap(), p);
            let _ = p.verify(CHECKPOINT, 1_800_000_000);
        }
    }
});
