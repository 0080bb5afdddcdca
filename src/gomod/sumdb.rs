//! Wire formats of the Go checksum database (sum.golang.org and any database
//! built with golang.org/x/mod/sumdb), as its server writes them
//! (golang.org/x/mod/sumdb/server.go and tlog/note.go):
//!
//! - a **record**: the go.sum lines of one module version,
//!   `<path> <version> <h1>\n<path> <version>/go.mod <h1>\n`; its leaf hash in
//!   the log is the RFC 6962 leaf hash of exactly that text
//!   (`tlog.RecordHash`);
//! - `/lookup/<module>@<version>`: `<record id>\n<record text>\n` followed by
//!   the signed tree note;
//! - `/tile/<H>/data/<N>[.p/<W>]`: the records `N·2^H … N·2^H+W-1`, each
//!   written as `<id>\n<record text>\n` (so each ends in a blank line);
//! - `/latest`: the signed tree note, whose text is a checkpoint with origin
//!   `go.sum database tree`.
//!
//! Parsing only: the signatures on notes are checked by `crate::tlog`, and
//! whether a record is included in a tree is proven from hash tiles by the
//! Go-module verifier. Every parser here is bounded, fails closed with a
//! typed error, and never panics.

use super::dirhash::{H1ParseError, H1};
use super::module::{check_canonical_version, check_path, ModuleError, ModuleVersion};
use crate::tlog::checkpoint::{parse_decimal, Checkpoint, CheckpointError};
use crate::tlog::merkle::{leaf_hash, Hash};

/// The origin line of the checksum database's tree notes.
pub const TREE_ORIGIN: &str = "go.sum database tree";
/// Longest record text accepted (a real record is two lines of at most a
/// few hundred bytes).
pub const MAX_RECORD_TEXT: usize = 8 * 1024;
/// Longest `/lookup` response accepted: a record and a signed note.
pub const MAX_LOOKUP_SIZE: usize = 128 * 1024;
/// Longest signed tree note accepted (`/latest`).
pub const MAX_NOTE_SIZE: usize = 64 * 1024;
/// Largest data tile width: tiles of height 8 hold 256 records.
pub const MAX_TILE_WIDTH: usize = 256;

/// Why a checksum-database response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumdbError {
    #[error("{what} is {size} bytes, more than the {max} allowed")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
    #[error("malformed record id {0:?}: want a canonical decimal below 2^63")]
    BadId(String),
    #[error("record id {seen}, want {want}")]
    WrongId { want: u64, seen: u64 },
    #[error("record text is not terminated by a blank line")]
    UnterminatedRecord,
    #[error("malformed record text: {0}")]
    BadRecordText(&'static str),
    #[error("malformed record line {line:?}: {reason}")]
    BadRecordLine { line: String, reason: &'static str },
    #[error("record: {0}")]
    BadModule(#[from] ModuleError),
    #[error("record: {0}")]
    BadHash(#[from] H1ParseError),
    #[error("data tile holds {seen} records, want {want}")]
    WrongRecordCount { want: usize, seen: usize },
    #[error("data tile width {0} is not between 1 and {MAX_TILE_WIDTH}")]
    BadTileWidth(usize),
    #[error("signed note has no blank line before its signatures")]
    NoSignatures,
    #[error("tree note: {0}")]
    BadTree(#[from] CheckpointError),
    #[error("tree note origin {0:?}, want \"go.sum database tree\"")]
    WrongOrigin(String),
    #[error("tree size {0} does not fit in a signed 64-bit integer")]
    TreeTooLarge(u64),
}

/// One record of the database: the go.sum lines of one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub path: String,
    pub version: String,
    /// The `h1:` hash of the module zip.
    pub zip_hash: H1,
    /// The `h1:` hash of the go.mod file.
    pub mod_hash: H1,
    text: String,
}

impl Record {
    /// Parses a record text: exactly
    /// `<path> <version> <h1>\n<path> <version>/go.mod <h1>\n` with a valid
    /// module path and a canonical version.
    pub fn parse(text: &str) -> Result<Record, SumdbError> {
        check_record_text(text)?;
        let body = text
            .strip_suffix('\n')
            .ok_or(SumdbError::BadRecordText("no final newline"))?;
        let mut lines = body.split('\n');
        let (first, second) = match (lines.next(), lines.next(), lines.next()) {
            (Some(a), Some(b), None) => (a, b),
            _ => return Err(SumdbError::BadRecordText("want exactly two lines")),
        };
        let (path, version, zip_hash) = split_line(first)?;
        let (path2, version2, mod_hash) = split_line(second)?;
        let bad = |reason| SumdbError::BadRecordLine {
            line: second.chars().take(200).collect(),
            reason,
        };
        if path2 != path {
            return Err(bad("module path differs from the first line's"));
        }
        if version2.strip_suffix("/go.mod") != Some(version) {
            return Err(bad("want the first line's version followed by /go.mod"));
        }
        check_path(path)?;
        check_canonical_version(version)?;
        Ok(Record {
            path: path.to_string(),
            version: version.to_string(),
            zip_hash: H1::parse(zip_hash)?,
            mod_hash: H1::parse(mod_hash)?,
            text: text.to_string(),
        })
    }

    /// The record text as logged (its leaf hash is over these bytes).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The go.sum lines of the record, without newlines.
    pub fn lines(&self) -> Vec<&str> {
        self.text.lines().collect()
    }

    /// The record's leaf hash in the log (`tlog.RecordHash`).
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(self.text.as_bytes())
    }

    /// The module version the record is about.
    pub fn module(&self) -> ModuleVersion {
        ModuleVersion {
            path: self.path.clone(),
            version: self.version.clone(),
        }
    }
}

/// Splits `<path> <version> <hash>`.
fn split_line(line: &str) -> Result<(&str, &str, &str), SumdbError> {
    let mut f = line.split(' ');
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some(p), Some(v), Some(h), None) if !p.is_empty() && !v.is_empty() => Ok((p, v, h)),
        _ => Err(SumdbError::BadRecordLine {
            line: line.chars().take(200).collect(),
            reason: "want <path> <version> <hash> separated by single spaces",
        }),
    }
}

/// Go's `isValidRecordText`: UTF-8 (guaranteed by `&str`), no control
/// characters but newline, no blank line, a final newline; plus our bound.
pub fn check_record_text(text: &str) -> Result<(), SumdbError> {
    if text.len() > MAX_RECORD_TEXT {
        return Err(SumdbError::TooLarge {
            what: "record text",
            size: text.len(),
            max: MAX_RECORD_TEXT,
        });
    }
    if !text.ends_with('\n') {
        return Err(SumdbError::BadRecordText("no final newline"));
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err(SumdbError::BadRecordText("blank line"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(SumdbError::BadRecordText("control character"));
    }
    Ok(())
}

/// Reads `<id>\n<text>\n` from the front of `msg` (Go's `tlog.ParseRecord`)
/// and returns the id, the text (ending in its newline) and the rest.
pub fn parse_raw_record(msg: &str) -> Result<(u64, &str, &str), SumdbError> {
    let (id, rest) = msg.split_once('\n').ok_or(SumdbError::UnterminatedRecord)?;
    let id = parse_id(id)?;
    let end = rest.find("\n\n").ok_or(SumdbError::UnterminatedRecord)?;
    let (text, rest) = (&rest[..end + 1], &rest[end + 2..]);
    check_record_text(text)?;
    Ok((id, text, rest))
}

fn parse_id(s: &str) -> Result<u64, SumdbError> {
    match parse_decimal(s) {
        Some(id) if id <= i64::MAX as u64 => Ok(id),
        _ => Err(SumdbError::BadId(s.chars().take(32).collect())),
    }
}

/// A `/lookup/<module>@<version>` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The record's index in the log.
    pub id: u64,
    pub record: Record,
    /// The signed tree note that followed the record, unverified.
    pub note: String,
}

impl Lookup {
    /// Parses a lookup response body.
    pub fn parse(body: &[u8]) -> Result<Lookup, SumdbError> {
        if body.len() > MAX_LOOKUP_SIZE {
            return Err(SumdbError::TooLarge {
                what: "lookup response",
                size: body.len(),
                max: MAX_LOOKUP_SIZE,
            });
        }
        let body = std::str::from_utf8(body).map_err(|_| SumdbError::NotUtf8 {
            what: "lookup response",
        })?;
        let (id, text, note) = parse_raw_record(body)?;
        Ok(Lookup {
            id,
            record: Record::parse(text)?,
            note: note.to_string(),
        })
    }
}

/// Parses a data tile holding `width` records starting at record
/// `first_id` (tile N of height H starts at N·2^H), as (id, text) pairs:
/// every id must be the expected one, nothing may follow the last record.
pub fn parse_data_tile_raw(
    data: &[u8],
    first_id: u64,
    width: usize,
) -> Result<Vec<(u64, &str)>, SumdbError> {
    if width == 0 || width > MAX_TILE_WIDTH {
        return Err(SumdbError::BadTileWidth(width));
    }
    // Each record: an id of at most 19 digits, its text, three newlines.
    let max = width * (MAX_RECORD_TEXT + 22);
    if data.len() > max {
        return Err(SumdbError::TooLarge {
            what: "data tile",
            size: data.len(),
            max,
        });
    }
    let mut rest =
        std::str::from_utf8(data).map_err(|_| SumdbError::NotUtf8 { what: "data tile" })?;
    let mut out = Vec::with_capacity(width);
    while !rest.is_empty() {
        if out.len() == width {
            return Err(SumdbError::WrongRecordCount {
                want: width,
                seen: width + 1,
            });
        }
        let (id, text, tail) = parse_raw_record(rest)?;
        let want = first_id + out.len() as u64;
        if id != want {
            return Err(SumdbError::WrongId { want, seen: id });
        }
        out.push((id, text));
        rest = tail;
    }
    if out.len() != width {
        return Err(SumdbError::WrongRecordCount {
            want: width,
            seen: out.len(),
        });
    }
    Ok(out)
}

/// Like [`parse_data_tile_raw`], with each record parsed strictly.
pub fn parse_data_tile(
    data: &[u8],
    first_id: u64,
    width: usize,
) -> Result<Vec<Record>, SumdbError> {
    parse_data_tile_raw(data, first_id, width)?
        .into_iter()
        .map(|(_, text)| Record::parse(text))
        .collect()
}

/// The signed text of a note: everything up to and including the newline
/// before the last blank line (as golang.org/x/mod/sumdb/note splits it).
/// This does not verify anything; `crate::tlog` checks the signatures.
pub fn note_text(note: &str) -> Result<&str, SumdbError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(SumdbError::TooLarge {
            what: "signed note",
            size: note.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    let split = note.rfind("\n\n").ok_or(SumdbError::NoSignatures)?;
    Ok(&note[..split + 1])
}

/// Parses the text of a tree note: a checkpoint whose origin is
/// `go.sum database tree` and whose size fits Go's int64.
pub fn parse_tree(text: &str) -> Result<Checkpoint, SumdbError> {
    let cp = Checkpoint::parse(text)?;
    if cp.origin != TREE_ORIGIN {
        return Err(SumdbError::WrongOrigin(
            cp.origin.chars().take(64).collect(),
        ));
    }
    if cp.size > i64::MAX as u64 {
        return Err(SumdbError::TreeTooLarge(cp.size));
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A lookup answer of the fixture database (golang.org/x/mod/sumdb).
    const LOOKUP: &str = "1\n\
example.com/hello v1.1.0 h1:B5p0g56HnEiq+lItgmHMj0JbUNPdq9n8mnHaCbXGwpY=\n\
example.com/hello v1.1.0/go.mod h1:hMpuUz7ru5p+vHvyJ4PiVzm61SjdnrxaLfKJac6I+tM=\n\
\n\
go.sum database tree\n\
2\n\
TaGo5yB8D92smLTU/4WVFfJBst/u92SNUawf9BQL5VQ=\n\
\n\
— sumdb.bulwark.test LmI3GGndSpPKrMy/Q13eDDEpWQc/nHVYdcUbVHhfaqvFRyrd6afrLW9Q2sTqBv3tp6XG/qjMm4xa6n5SzVdZ6mGQTgo=\n";

    const GREET: &str =
        "example.com/greet v1.0.0 h1:pN/+iEkzWwBUHy86aw5Vd1WTEXw04KZ9W9CWdwfqofs=\n\
example.com/greet v1.0.0/go.mod h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg=\n";

    fn hello_text() -> &'static str {
        let start = LOOKUP.find('\n').unwrap() + 1;
        let end = LOOKUP.find("\n\n").unwrap() + 1;
        &LOOKUP[start..end]
    }

    #[test]
    fn parses_a_lookup_response() {
        let l = Lookup::parse(LOOKUP.as_bytes()).unwrap();
        assert_eq!(l.id, 1);
        assert_eq!(l.record.path, "example.com/hello");
        assert_eq!(l.record.version, "v1.1.0");
        assert_eq!(
            l.record.zip_hash.to_string(),
            "h1:B5p0g56HnEiq+lItgmHMj0JbUNPdq9n8mnHaCbXGwpY="
        );
        assert_eq!(l.record.lines().len(), 2);
        assert_eq!(l.record.text(), hello_text());
        let tree = parse_tree(note_text(&l.note).unwrap()).unwrap();
        assert_eq!(tree.size, 2);
        // The tree of two records is the node hash of their leaf hashes.
        let greet = Record::parse(GREET).unwrap();
        assert_eq!(
            crate::tlog::merkle::node_hash(&greet.leaf_hash(), &l.record.leaf_hash()),
            tree.root
        );
    }

    #[test]
    fn refuses_malformed_lookups() {
        let cases: Vec<(String, &str)> = vec![
            (LOOKUP.replacen("1\n", "01\n", 1), "leading zero id"),
            (LOOKUP.replacen("1\n", "+1\n", 1), "signed id"),
            (
                LOOKUP.replacen("1\n", "9223372036854775808\n", 1),
                "id ≥ 2^63",
            ),
            (
                LOOKUP.replacen("\n\n", "\n", 1),
                "no blank line after record",
            ),
            (
                LOOKUP.replacen("v1.1.0/go.mod", "v1.1.1/go.mod", 1),
                "versions differ",
            ),
            (
                LOOKUP.replacen(
                    "example.com/hello v1.1.0/go.mod",
                    "example.com/hellp v1.1.0/go.mod",
                    1,
                ),
                "paths differ",
            ),
            (LOOKUP.replacen(" h1:B5p", "  h1:B5p", 1), "double space"),
            (LOOKUP.replacen("h1:B5p0", "h1:B5p", 1), "short hash"),
            (
                LOOKUP.replacen("v1.1.0 h1", "v1.1 h1", 1),
                "non-canonical version",
            ),
            (
                LOOKUP.replacen(
                    "example.com/hello v1.1.0 h1",
                    "Example.com/hello v1.1.0 h1",
                    1,
                ),
                "bad path",
            ),
            (
                LOOKUP.replacen("GwpY=\n", "GwpY=\nextra line\n", 1),
                "three lines",
            ),
            (
                LOOKUP.replacen("GwpY=", "GwpY=\u{7}", 1),
                "control character",
            ),
            ("".to_string(), "empty"),
            ("1".to_string(), "no newline"),
        ];
        for (body, why) in cases {
            assert!(Lookup::parse(body.as_bytes()).is_err(), "accepted: {why}");
        }
        assert!(matches!(
            Lookup::parse(&vec![b'1'; MAX_LOOKUP_SIZE + 1]),
            Err(SumdbError::TooLarge { .. })
        ));
        assert!(matches!(
            Lookup::parse(b"1\n\xff\n\n"),
            Err(SumdbError::NotUtf8 { .. })
        ));
    }

    fn tile(records: &[(u64, &str)]) -> String {
        records
            .iter()
            .map(|(id, t)| format!("{id}\n{t}\n"))
            .collect()
    }

    #[test]
    fn parses_a_data_tile() {
        let data = tile(&[(256, GREET), (257, hello_text())]);
        let recs = parse_data_tile(data.as_bytes(), 256, 2).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].path, "example.com/greet");
        assert_eq!(recs[1].path, "example.com/hello");
        assert_eq!(recs[0].text(), GREET);
        assert_eq!(recs[0].leaf_hash(), leaf_hash(GREET.as_bytes()));
    }

    #[test]
    fn refuses_malformed_data_tiles() {
        let two = tile(&[(0, GREET), (1, hello_text())]);
        assert_eq!(
            parse_data_tile(two.as_bytes(), 0, 3),
            Err(SumdbError::WrongRecordCount { want: 3, seen: 2 })
        );
        assert_eq!(
            parse_data_tile(two.as_bytes(), 0, 1),
            Err(SumdbError::WrongRecordCount { want: 1, seen: 2 })
        );
        assert_eq!(
            parse_data_tile(two.as_bytes(), 1, 2),
            Err(SumdbError::WrongId { want: 1, seen: 0 })
        );
        let gap = tile(&[(0, GREET), (2, hello_text())]);
        assert_eq!(
            parse_data_tile(gap.as_bytes(), 0, 2),
            Err(SumdbError::WrongId { want: 1, seen: 2 })
        );
        let trailing = format!("{two}x");
        assert!(parse_data_tile(trailing.as_bytes(), 0, 2).is_err());
        let cut = &two[..two.len() - 1];
        assert!(parse_data_tile(cut.as_bytes(), 0, 2).is_err());
        assert_eq!(parse_data_tile(b"", 0, 0), Err(SumdbError::BadTileWidth(0)));
        assert_eq!(
            parse_data_tile(b"", 0, 257),
            Err(SumdbError::BadTileWidth(257))
        );
        // A raw record need not be a well-formed go.sum record.
        let odd = tile(&[(0, "any text\n")]);
        assert_eq!(
            parse_data_tile_raw(odd.as_bytes(), 0, 1),
            Ok(vec![(0, "any text\n")])
        );
        assert!(parse_data_tile(odd.as_bytes(), 0, 1).is_err());
    }

    #[test]
    fn parses_the_real_sum_golang_org_tree() {
        let note = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n\
— sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";
        let text = note_text(note).unwrap();
        assert!(text.ends_with("GGsM=\n"));
        let tree = parse_tree(text).unwrap();
        assert_eq!(tree.size, 30055305);
        assert_eq!(
            tree.root.to_base64(),
            "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM="
        );
    }

    #[test]
    fn refuses_other_origins_and_huge_trees() {
        let h = "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=";
        assert!(matches!(
            parse_tree(&format!("example.com/log\n1\n{h}\n")),
            Err(SumdbError::WrongOrigin(_))
        ));
        assert_eq!(
            parse_tree(&format!("go.sum database tree\n9223372036854775808\n{h}\n")),
            Err(SumdbError::TreeTooLarge(1 << 63))
        );
        assert!(parse_tree("go.sum database tree\n0x10\nAAAA\n").is_err());
        assert_eq!(note_text("no signatures\n"), Err(SumdbError::NoSignatures));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(0u8..=255, 0..400), width in 0usize..300) {
            let _ = Lookup::parse(&data);
            let _ = parse_data_tile(&data, 0, width);
            if let Ok(s) = std::str::from_utf8(&data) {
                let _ = note_text(s).and_then(parse_tree);
                let _ = Record::parse(s);
            }
        }

        #[test]
        fn any_single_byte_change_to_a_lookup_is_refused_or_changes_what_it_says(
            at in 0usize..LOOKUP.len(), byte in 0u8..=255
        ) {
            let mut body = LOOKUP.as_bytes().to_vec();
            proptest::prop_assume!(body[at] != byte);
            body[at] = byte;
            let orig = Lookup::parse(LOOKUP.as_bytes()).unwrap();
            if let Ok(l) = Lookup::parse(&body) {
                proptest::prop_assert!(l != orig);
                // The leaf hash always covers exactly the record text parsed.
                proptest::prop_assert_eq!(l.record.leaf_hash(), leaf_hash(l.record.text().as_bytes()));
            }
        }
    }
}
