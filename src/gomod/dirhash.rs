//! The `h1:` hash of Go modules (golang.org/x/mod/sumdb/dirhash `Hash1`):
//!
//! ```text
//! h1:<base64 SHA-256 of the lines "<hex SHA-256 of file>  <file name>\n",
//!     one per file, sorted by name>
//! ```
//!
//! For a module zip the files are the zip's entries under the names stored
//! in it (`<module>@<version>/<path>`); for a go.mod it is the single file
//! `go.mod`. The GOPROXY front calls [`hash_module_zip`] and
//! [`hash_go_mod`] on upstream bytes before serving them, and compares the
//! result with the checksum database's record.
//!
//! Zip archives are untrusted: they are read by [`super::zipread`], which
//! accepts only the layout every zip reader agrees on (so the files hashed
//! are the files a client unpacks from the bytes served) and bounds the
//! size, the number of files and the declared and decompressed sizes; names
//! that Go's module zips never contain (absolute, `..`, backslashes,
//! duplicates, case-fold collisions, newlines, invalid UTF-8) are refused.

use super::module::ModuleVersion;
use super::zipread::{self, Source};
pub use super::zipread::{Limits, ZipError};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;

/// An `h1:` hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct H1(pub [u8; 32]);

/// Why an `h1:` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed h1 hash {0:?}: want \"h1:\" and 44 characters of canonical base64 of 32 bytes")]
pub struct H1ParseError(pub String);

impl H1 {
    /// Parses `h1:<base64>`; the base64 must be canonical (padded, no
    /// stray bits).
    pub fn parse(s: &str) -> Result<H1, H1ParseError> {
        let err = || H1ParseError(s.chars().take(64).collect());
        let b64 = s.strip_prefix("h1:").ok_or_else(err)?;
        if b64.len() != 44 {
            return Err(err());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| err())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| err())?;
        let h = H1(arr);
        // Non-canonical encodings (non-zero padding bits) decode too.
        if h.to_string() != s {
            return Err(err());
        }
        Ok(h)
    }
}

impl fmt::Display for H1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

impl fmt::Debug for H1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The `h1:` hash of a go.mod file's bytes.
pub fn hash_go_mod(data: &[u8]) -> H1 {
    hash_files(&[("go.mod".to_string(), sha256(data))])
}

/// The `h1:` hash of a module zip, checking that every entry lies under
/// `<module>@<version>/` as Go's module zips must.
pub fn hash_module_zip(data: &[u8], m: &ModuleVersion, limits: &Limits) -> Result<H1, ZipError> {
    hash_module_zip_source(data, m, limits)
}

/// The `h1:` hash of a zip, over its entries under the names stored in it,
/// as golang.org/x/mod/sumdb/dirhash `HashZip` computes it.
pub fn hash_zip(data: &[u8], limits: &Limits) -> Result<H1, ZipError> {
    hash_zip_source(data, None, limits)
}

/// The `h1:` hash of the module zip in `src` (a byte slice or a file),
/// read strictly by [`zipread`]: an archive that two zip readers could see
/// differently is refused, so the files hashed are the files any client
/// unpacks from these bytes.
pub fn hash_module_zip_source<S: Source + ?Sized>(
    src: &S,
    m: &ModuleVersion,
    limits: &Limits,
) -> Result<H1, ZipError> {
    hash_zip_source(src, Some(&format!("{}@{}/", m.path, m.version)), limits)
}

fn hash_zip_source<S: Source + ?Sized>(
    src: &S,
    prefix: Option<&str>,
    limits: &Limits,
) -> Result<H1, ZipError> {
    let entries = zipread::read_layout(src, limits)?;
    // Names are checked (and duplicates refused) before anything is
    // decompressed.
    let mut names = Vec::with_capacity(entries.len());
    let mut exact: std::collections::HashSet<&str> = Default::default();
    let mut folded: std::collections::HashMap<String, &str> = Default::default();
    for e in &entries {
        let name = check_name(&e.name, prefix, limits)?;
        names.push(name);
    }
    for name in &names {
        if !exact.insert(name.as_str()) {
            return Err(ZipError::DuplicateNames(name.clone()));
        }
        if let Some(other) = folded.insert(name.to_lowercase(), name.as_str()) {
            return Err(ZipError::CaseCollision(other.to_string(), name.clone()));
        }
    }
    let mut files = Vec::with_capacity(entries.len());
    for (e, name) in entries.iter().zip(names) {
        let mut hasher = Sha256::new();
        zipread::read_entry(src, e, |chunk| hasher.update(chunk))?;
        files.push((name, hasher.finalize().into()));
    }
    Ok(hash_files(&files))
}

/// Checks an entry name and returns it as a string.
fn check_name(raw: &[u8], prefix: Option<&str>, limits: &Limits) -> Result<String, ZipError> {
    let bad = |reason| ZipError::BadName {
        name: lossy(raw),
        reason,
    };
    if raw.len() > limits.max_name_len {
        return Err(bad("name too long"));
    }
    let name = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("control character (newline, NUL, ...)"));
    }
    if name.contains('\\') {
        return Err(bad("backslash"));
    }
    if name.starts_with('/') {
        return Err(bad("absolute path"));
    }
    // A trailing slash marks a directory entry; no other empty element.
    let body = name.strip_suffix('/').unwrap_or(name);
    for elem in body.split('/') {
        match elem {
            "" => return Err(bad("empty path element")),
            "." | ".." => return Err(bad("'.' or '..' path element")),
            _ => {}
        }
    }
    if let Some(prefix) = prefix {
        if !name.starts_with(prefix) {
            return Err(ZipError::OutsideModule {
                name: name.to_string(),
                prefix: prefix.to_string(),
            });
        }
    }
    Ok(name.to_string())
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).chars().take(256).collect()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// `Hash1` over (name, SHA-256 of content) pairs.
fn hash_files(files: &[(String, [u8; 32])]) -> H1 {
    let mut sorted: Vec<&(String, [u8; 32])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, digest) in sorted {
        h.update(hex::encode(digest).as_bytes());
        h.update(b"  ");
        h.update(name.as_bytes());
        h.update(b"\n");
    }
    H1(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn make_zip(files: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// What Go's dirhash.Hash1 computes, spelled out independently.
    fn reference(files: &[(&str, &[u8])]) -> String {
        let mut lines: Vec<String> = files
            .iter()
            .map(|(n, d)| format!("{}  {}\n", hex::encode(Sha256::digest(d)), n))
            .collect();
        lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
        let summary = Sha256::digest(lines.concat().as_bytes());
        format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(summary)
        )
    }

    #[test]
    fn go_mod_hash_matches_go() {
        let gomod = b"";
        assert_eq!(
            hash_go_mod(gomod).to_string(),
            reference(&[("go.mod", gomod)])
        );
        // A go.mod made by the fixture, hashed by Go's dirhash there.
        let m = b"module example.com/greet\n\ngo 1.19\n";
        assert_eq!(
            hash_go_mod(m).to_string(),
            "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg="
        );
    }

    #[test]
    fn zip_hash_is_over_sorted_names_whatever_the_order_and_compression() {
        let files: &[(&str, &[u8])] = &[
            ("x.com/m@v1.0.0/b.go", b"package m\n"),
            ("x.com/m@v1.0.0/a/z.go", b"package a\n"),
            ("x.com/m@v1.0.0/go.mod", b"module x.com/m\n"),
        ];
        let want = reference(files);
        let stored = make_zip(files, zip::CompressionMethod::Stored);
        let mut rev = files.to_vec();
        rev.reverse();
        let deflated = make_zip(&rev, zip::CompressionMethod::Deflated);
        let m = ModuleVersion::new("x.com/m", "v1.0.0").unwrap();
        for z in [stored, deflated] {
            assert_eq!(hash_zip(&z, &Limits::default()).unwrap().to_string(), want);
            assert_eq!(
                hash_module_zip(&z, &m, &Limits::default())
                    .unwrap()
                    .to_string(),
                want
            );
        }
    }

    #[test]
    fn refuses_entries_outside_the_module() {
        let z = make_zip(
            &[("x.com/other@v1.0.0/go.mod", b"")],
            zip::CompressionMethod::Stored,
        );
        let m = ModuleVersion::new("x.com/m", "v1.0.0").unwrap();
        assert!(matches!(
            hash_module_zip(&z, &m, &Limits::default()),
            Err(ZipError::OutsideModule { .. })
        ));
    }

    #[test]
    fn refuses_bad_names() {
        for name in [
            "/etc/passwd",
            "x.com/m@v1.0.0/../../evil",
            "x.com/m@v1.0.0/./a",
            "x.com/m@v1.0.0//a",
            "x.com/m@v1.0.0\\a",
            "x.com/m@v1.0.0/a\nb",
        ] {
            let z = make_zip(&[(name, b"x")], zip::CompressionMethod::Stored);
            assert!(
                matches!(
                    hash_zip(&z, &Limits::default()),
                    Err(ZipError::BadName { .. })
                ),
                "accepted {name:?}"
            );
        }
    }

    #[test]
    fn refuses_case_collisions() {
        let z = make_zip(
            &[("m@v1.0.0/README", b"a"), ("m@v1.0.0/readme", b"b")],
            zip::CompressionMethod::Stored,
        );
        assert!(matches!(
            hash_zip(&z, &Limits::default()),
            Err(ZipError::CaseCollision(..))
        ));
    }

    #[test]
    fn refuses_duplicate_names() {
        // ZipWriter refuses duplicates, so rename one entry in the bytes:
        // "m@v1/b" becomes "m@v1/a" in both the local and central headers.
        let mut z = make_zip(
            &[("m@v1/a", b"1"), ("m@v1/b", b"2")],
            zip::CompressionMethod::Stored,
        );
        let mut i = 0;
        while let Some(p) = z[i..].windows(6).position(|w| w == b"m@v1/b") {
            z[i + p + 5] = b'a';
            i += p + 6;
        }
        let r = hash_zip(&z, &Limits::default());
        assert!(matches!(&r, Err(ZipError::DuplicateNames(_))), "{r:?}");
    }

    #[test]
    fn bounds_total_uncompressed_size_and_file_count() {
        // A deflate bomb: 4 MiB of zeros compresses to a few KiB.
        let zeros = vec![0u8; 4 << 20];
        let z = make_zip(
            &[("m@v1/a", &zeros), ("m@v1/b", &zeros)],
            zip::CompressionMethod::Deflated,
        );
        assert!(z.len() < 64 << 10);
        let small = Limits {
            max_uncompressed_bytes: 6 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            hash_zip(&z, &small),
            Err(ZipError::UncompressedTooLarge { .. })
        ));
        assert!(hash_zip(&z, &Limits::default()).is_ok());
        let few = Limits {
            max_files: 1,
            ..Limits::default()
        };
        assert!(matches!(
            hash_zip(&z, &few),
            Err(ZipError::TooManyFiles { count: 2, max: 1 })
        ));
        let tiny = Limits {
            max_zip_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            hash_zip(&z, &tiny),
            Err(ZipError::TooLarge { .. })
        ));
    }

    /// A zip whose headers declare `declared` bytes for content of 10.
    fn zip_declaring(declared: u32) -> Vec<u8> {
        let data = b"0123456789";
        let mut z = make_zip(&[("m@v1/a", data)], zip::CompressionMethod::Deflated);
        // The uncompressed size is at offset 22 in the local header and 24
        // in the central header.
        for (sig, off) in [(&b"PK\x03\x04"[..], 22), (&b"PK\x01\x02"[..], 24)] {
            let p = z.windows(4).position(|w| w == sig).unwrap();
            assert_eq!(&z[p + off..p + off + 4], &10u32.to_le_bytes());
            z[p + off..p + off + 4].copy_from_slice(&declared.to_le_bytes());
        }
        z
    }

    #[test]
    fn refuses_entries_whose_declared_size_lies() {
        assert!(hash_zip(&zip_declaring(10), &Limits::default()).is_ok());
        for declared in [0, 9, 11, 1 << 20] {
            let r = hash_zip(&zip_declaring(declared), &Limits::default());
            assert!(
                matches!(
                    r,
                    Err(ZipError::Entry { .. } | ZipError::SizeMismatch { .. })
                ),
                "declared {declared}: {r:?}"
            );
        }
        // A declared size beyond the budget is refused before reading.
        let small = Limits {
            max_uncompressed_bytes: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            hash_zip(&zip_declaring(1 << 20), &small),
            Err(ZipError::UncompressedTooLarge { .. })
        ));
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for data in [&b""[..], b"PK", b"PK\x05\x06", &[0xffu8; 100]] {
            assert!(hash_zip(data, &Limits::default()).is_err());
        }
    }

    #[test]
    fn h1_parse_round_trips_and_is_canonical() {
        let s = "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg=";
        assert_eq!(H1::parse(s).unwrap().to_string(), s);
        for bad in [
            "",
            "h1:",
            "h2:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg=",
            "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZh=", // stray bits
            "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg",
            "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg==",
            "h1:AAAA",
        ] {
            assert!(H1::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn zip_hash_equals_the_reference_for_random_files(
            files in proptest::collection::btree_map("[a-zA-Z0-9_.-]{1,12}(/[a-z0-9]{1,5}){0,2}", proptest::collection::vec(0u8..=255, 0..300), 1..8),
            deflate: bool,
        ) {
            // Names that differ only in case are refused; keep one of each.
            let mut seen = std::collections::HashSet::new();
            let files: Vec<(String, Vec<u8>)> = files
                .into_iter()
                .map(|(n, d)| (format!("x.com/m@v1.0.0/{n}"), d))
                .filter(|(n, _)| seen.insert(n.to_lowercase()))
                .filter(|(n, _)| !n.split('/').any(|e| e == "." || e == ".."))
                .collect();
            let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
            let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
            let z = make_zip(&refs, method);
            let m = ModuleVersion::new("x.com/m", "v1.0.0").unwrap();
            proptest::prop_assert_eq!(hash_module_zip(&z, &m, &Limits::default()).unwrap().to_string(), reference(&refs));
        }

        #[test]
        fn zip_parsing_never_panics(data in proptest::collection::vec(0u8..=255, 0..600)) {
            let _ = hash_zip(&data, &Limits::default());
            // Nor on a real zip with a byte changed.
            let mut z = make_zip(&[("m@v1/a", b"hello")], zip::CompressionMethod::Deflated);
            if !data.is_empty() {
                let at = data[0] as usize % z.len();
                z[at] ^= data.get(1).copied().unwrap_or(1) | 1;
                let _ = hash_zip(&z, &Limits::default());
            }
        }
    }
}
