//! Fuzzes the Go module zip reader (`gomod::zipread`) and the `h1:` hash
//! over it (`gomod::dirhash::hash_zip`): no input may panic; whatever the
//! strict reader accepts is laid out with no gap or overlap and reads the
//! same (names and contents) through the `zip` crate, a second reader.
#![no_main]

use bulwark::gomod::dirhash::{hash_zip, Limits};
use bulwark::gomod::zipread::{read_entry, read_layout};
use libfuzzer_sys::fuzz_target;
use std::io::Read as _;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_zip_bytes: 1 << 20,
        max_uncompressed_bytes: 4 << 20,
        max_files: 1000,
        max_directory_bytes: 1 << 20,
        max_name_len: 4096,
    };
    let hashed = hash_zip(data, &limits);
    let Ok(entries) = read_layout(data, &limits) else {
        assert!(hashed.is_err(), "hashed a zip the strict reader refuses");
        return;
    };
    let mut contents = Vec::with_capacity(entries.len());
    let mut last = 0;
    for e in &entries {
        assert!(e.data_offset >= last, "entries out of order");
        last = e.data_offset + e.compressed_size;
        let mut out = Vec::new();
        match read_entry(data, e, |c| out.extend_from_slice(c)) {
            Ok(()) => contents.push(Some(out)),
            Err(_) => contents.push(None),
        }
    }
    // A second reader that opens the archive sees the same files.
    let Ok(mut z) = zip::ZipArchive::new(std::io::Cursor::new(data)) else {
        return;
    };
    assert_eq!(z.len(), entries.len(), "the zip crate sees another entry count");
    for (i, (e, mine)) in entries.iter().zip(&contents).enumerate() {
        let Ok(mut f) = z.by_index(i) else {
            continue;
        };
        assert_eq!(f.name_raw(), &e.name[..], "entry {i} named differently");
        let mut theirs = Vec::new();
        if let (Some(mine), Ok(_)) = (mine, (&mut f).take(8 << 20).read_to_end(&mut theirs)) {
            assert_eq!(&theirs, mine, "entry {i} reads differently");
        }
    }
});
