//! Fuzzes the lockfile parsers `bulwark sync` reads (`airgap::lockfile`):
//! `requirements.txt`, `pylock.toml`, `uv.lock` and `package-lock.json`.
//! No input may panic, and every entry taken is within the parsers'
//! bounds: a checked project or package name, a version, and file names
//! that pass the simple API's file name check.
#![no_main]

use bulwark::airgap::lockfile::{parse, Entry, Kind, MAX_ENTRIES};
use bulwark::pypi::simple::check_filename;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Kind::detect("lockfile", text);
    for kind in [Kind::Requirements, Kind::Pylock, Kind::UvLock, Kind::PackageLock] {
        let Ok(entries) = parse(kind, text) else {
            continue;
        };
        assert!(entries.len() <= MAX_ENTRIES);
        for e in entries {
            match e {
                Entry::Pypi(p) => {
                    assert!(!p.version.is_empty());
                    for f in &p.files {
                        assert!(check_filename(&f.filename).is_ok());
                    }
                }
                Entry::Npm(p) => assert!(!p.version.is_empty()),
                Entry::Refused { what, .. } => assert!(what.len() <= 200),
            }
        }
    }
});
