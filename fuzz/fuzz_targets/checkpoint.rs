//! Fuzzes the checkpoint parser (`tlog::checkpoint`) with arbitrary text,
//! and `Checkpoint::open` with arbitrary bytes.
#![no_main]

use bulwark::tlog::checkpoint::Checkpoint;
use bulwark::tlog::note::VerifierKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            // A parsed checkpoint prints back to its text.
            assert_eq!(cp.to_text(), text);
        }
    }
    let key: VerifierKey =
        "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
            .parse()
            .unwrap();
    let _ = Checkpoint::open(data, &[key]);
});
