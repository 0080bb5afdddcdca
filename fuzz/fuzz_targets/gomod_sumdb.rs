//! Fuzzes the Go checksum database's wire parsers (`gomod::sumdb`): lookup
//! answers, data tiles, record texts and lines, signed tree notes. No input
//! may panic, and what parses keeps its exact bytes.
#![no_main]

use bulwark::gomod::sumdb::{
    check_record_text, note_text, parse_data_tile, parse_data_tile_raw, parse_raw_record,
    parse_tree, Lookup, Record,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = Lookup::parse(data) {
        // The record and note are the body's own bytes, in order.
        let body = std::str::from_utf8(data).unwrap();
        assert!(body.starts_with(&format!("{}\n{}\n", l.id, l.record.text())));
        assert!(body.ends_with(&l.note));
        assert_eq!(Record::parse(l.record.text()).as_ref(), Ok(&l.record));
    }
    let (&w, rest) = match data.split_first() {
        Some(x) => x,
        None => return,
    };
    let width = usize::from(w) + 1;
    let first = (u64::from(w) << 8) & !0xff;
    if let Ok(records) = parse_data_tile_raw(rest, first, width) {
        assert_eq!(records.len(), width);
        for (i, (id, text)) in records.iter().enumerate() {
            assert_eq!(*id, first + i as u64);
            assert!(check_record_text(text).is_ok());
        }
    }
    let _ = parse_data_tile(rest, first, width);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = Record::parse(text) {
            assert_eq!(r.text(), text);
            assert_eq!(r.lines().len(), 2);
        }
        if let Ok((_, t, tail)) = parse_raw_record(text) {
            assert!(text.ends_with(tail));
            assert!(t.ends_with('\n'));
        }
        if let Ok(signed) = note_text(text) {
            assert!(text.starts_with(signed));
            if let Ok(cp) = parse_tree(signed) {
                assert!(cp.size <= i64::MAX as u64);
            }
        }
    }
});
