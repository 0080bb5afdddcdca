//! Fuzzes the tile path parser (both dialects) and the entry-bundle and
//! data-tile parsers: no input may panic, every accepted path must format
//! back to itself, and every accepted bundle must re-encode to itself.
#![no_main]

use bulwark::tlog::tile::{
    format_entry_bundle, parse_data_tile, parse_entry_bundle, parse_tile_path, Dialect, TilePath,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (&width, rest) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    let width = u32::from(width) + 1;
    if let Ok(s) = std::str::from_utf8(rest) {
        for d in [Dialect::Tiles, Dialect::SumDb] {
            if let Ok(p) = parse_tile_path(d, s) {
                let again = match p {
                    TilePath::Hashes(t) => t.path(d),
                    TilePath::Entries(b) => b.path(d),
                };
                assert_eq!(again, s, "accepted a non-canonical path");
            }
        }
    }
    if let Ok(entries) = parse_entry_bundle(rest, width) {
        assert_eq!(entries.len() as u32, width);
        assert_eq!(format_entry_bundle(&entries).unwrap(), rest);
    }
    if let Ok(records) = parse_data_tile(rest, width) {
        assert_eq!(records.len() as u32, width);
    }
});
