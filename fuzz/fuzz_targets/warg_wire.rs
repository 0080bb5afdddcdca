//! Fuzzes the Warg wire decoders (`warg::wire`) on every body bulwark reads
//! from an upstream or a client, the consistency-bundle conversion
//! (`warg::checks::check_consistency`) and route parsing: no input may
//! panic, and a decoded body re-encodes to JSON that decodes again.
#![no_main]

use bulwark::warg::checks::check_consistency;
use bulwark::warg::wire::{self, Route};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = wire::DEFAULT_JSON_LIMIT;

fn json<T: serde::de::DeserializeOwned + serde::Serialize>(what: &'static str, data: &[u8]) {
    if let Ok(v) = wire::decode_json::<T>(what, data, LIMIT) {
        let again = wire::encode_json(&v);
        assert!(
            wire::decode_json::<T>(what, &again, usize::MAX).is_ok(),
            "{what}: re-encoded body does not decode"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 12 {
        0 => json::<wire::SignedCheckpoint>("checkpoint", rest),
        1 => json::<wire::FetchLogsResponse>("fetch logs response", rest),
        2 => json::<wire::InclusionResponse>("inclusion response", rest),
        3 => json::<wire::ConsistencyResponse>("consistency response", rest),
        4 => json::<wire::FetchPackageNamesResponse>("fetch names response", rest),
        5 => json::<wire::PackageRecord>("record state", rest),
        6 => json::<wire::FetchLogsRequest>("fetch logs request", rest),
        7 => json::<wire::FetchError>("fetch logs error", rest),
        8 => {
            let _ = wire::decode_log_bundle(rest, wire::DEFAULT_BUNDLE_LIMIT);
        }
        9 => {
            let _ = wire::decode_map_bundle(rest, wire::DEFAULT_BUNDLE_LIMIT);
        }
        10 => {
            // Lengths from the first 16 bytes (any u64, the far end too).
            if rest.len() < 16 {
                return;
            }
            let (lens, bundle) = rest.split_at(16);
            let from = u64::from_le_bytes(lens[..8].try_into().unwrap());
            let to = u64::from_le_bytes(lens[8..].try_into().unwrap());
            if let Ok(c) = check_consistency(bundle, from, to) {
                assert!(from >= 1 && from <= to);
                assert!(c.rfc.len() <= 128, "an RFC 9162 proof has at most 2·64 hashes");
            }
        }
        _ => {
            if let Ok(path) = std::str::from_utf8(rest) {
                for m in [http::Method::GET, http::Method::POST] {
                    let _ = Route::parse(&m, path);
                }
                let _ = wire::parse_digest("content digest", path);
            }
        }
    }
});
