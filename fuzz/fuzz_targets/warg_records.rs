//! Fuzzes Warg record validation (`warg::verify`) on what an upstream's
//! `fetch/logs` answer can carry: the operator log and each package log
//! are validated from their first record as bulwark does, then a checkpoint
//! is checked against a pinned key and the validated operator log, and
//! consistency from a fuzzed length and root. No input may panic; a
//! validated log's records are as many as the input's.
#![no_main]

use bulwark::warg::verify::{verify_checkpoint, OperatorState, PackageState, PublicKey};
use bulwark::warg::wire::{self, FetchLogsResponse, SignedCheckpoint};
use libfuzzer_sys::fuzz_target;

/// Any valid key: a fuzzed checkpoint is checked against it.
const PINNED: &str = "ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW";

fuzz_target!(|data: &[u8]| {
    // `<checkpoint JSON> 0x00 <fetch logs JSON> 0x00 <consistency bundle>`.
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(cp), Some(logs)) = (parts.next(), parts.next()) else {
        return;
    };
    let bundle = parts.next().unwrap_or_default();
    let Ok(logs) = wire::decode_json::<FetchLogsResponse>("logs", logs, wire::DEFAULT_JSON_LIMIT)
    else {
        return;
    };
    let mut operator = OperatorState::new();
    if operator.validate_published(&logs.operator).is_ok() {
        assert_eq!(operator.records().len(), logs.operator.len());
    }
    for (log_id, records) in &logs.packages {
        let mut p = PackageState::new(log_id.clone());
        if p.validate_published(records).is_ok() {
            assert_eq!(p.records().len(), records.len());
            let _ = p.releases();
            let _ = p.head_leaf();
        }
    }
    let Ok(cp) = wire::decode_json::<SignedCheckpoint>("checkpoint", cp, 64 * 1024) else {
        return;
    };
    let key: PublicKey = PINNED.parse().unwrap();
    if let Ok(v) = verify_checkpoint(&cp, &key, &operator) {
        let _ = bulwark::warg::verify::verify_consistency_from(1, v.log_root(), &v, bundle);
    }
});
