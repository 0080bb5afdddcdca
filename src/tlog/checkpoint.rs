//! Checkpoints (c2sp.org/tlog-checkpoint): the signed body of a log's tree
//! head.
//!
//! ```text
//! <origin>\n
//! <decimal tree size>\n
//! <base64 root hash>\n
//! [<extension line>\n]...
//! ```
//!
//! sum.golang.org's tree notes are the same body with origin
//! `go.sum database tree`.
//!
//! [`Checkpoint::open`] verifies a signed checkpoint note (see
//! [`super::note`]) and parses its text in one step; [`super::policy`] adds
//! the witness quorum on top.

use super::merkle::{Hash, HashError};
use super::note::{self, NoteError, VerifiedNote, VerifierKey};
use std::fmt;

/// Upper bound on a checkpoint body. Real checkpoints are a few hundred
/// bytes; the bound keeps a hostile peer from making us hold more.
pub const MAX_CHECKPOINT_SIZE: usize = 16 * 1024;

/// A parsed checkpoint body.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines, in order, without their newlines.
    pub extensions: Vec<String>,
}

/// Why a checkpoint body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint is {0} bytes, more than the {MAX_CHECKPOINT_SIZE} allowed")]
    TooLarge(usize),
    #[error("checkpoint does not end in a newline")]
    NoFinalNewline,
    #[error("checkpoint has {0} lines, want at least 3")]
    TooFewLines(usize),
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    #[error("checkpoint has an empty extension line")]
    EmptyExtension,
    #[error("checkpoint size {0:?} is not a canonical decimal uint64")]
    BadSize(String),
    #[error("checkpoint root: {0}")]
    BadRoot(HashError),
    #[error(
        "checkpoint has control character {byte:#04x} at byte {offset}; only newline is allowed"
    )]
    ControlCharacter { offset: usize, byte: u8 },
}

/// Why a signed checkpoint was refused: its note or its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
}

impl Checkpoint {
    /// Parses a checkpoint body (the text of a signed note, without the
    /// signatures).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        if text.len() > MAX_CHECKPOINT_SIZE {
            return Err(CheckpointError::TooLarge(text.len()));
        }
        // A checkpoint is note text: no control character but newline.
        if let Some((offset, byte)) = text
            .bytes()
            .enumerate()
            .find(|&(_, b)| b < 0x20 && b != b'\n')
        {
            return Err(CheckpointError::ControlCharacter { offset, byte });
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::NoFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines(lines.len()));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_decimal(lines[1])
            .ok_or_else(|| CheckpointError::BadSize(lines[1].chars().take(32).collect()))?;
        let root = Hash::from_base64(lines[2]).map_err(CheckpointError::BadRoot)?;
        let mut extensions = Vec::with_capacity(lines.len() - 3);
        for ext in &lines[3..] {
            if ext.is_empty() {
                return Err(CheckpointError::EmptyExtension);
            }
            extensions.push((*ext).to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Verifies the signed checkpoint note `msg` under `keys` (see
    /// [`note::open`]: at least one known signature, no bad one) and parses
    /// its text. Which verified signer counts as the log is the caller's
    /// choice; [`super::policy::Policy::verify`] makes it from a policy.
    pub fn open(msg: &[u8], keys: &[VerifierKey]) -> Result<(Checkpoint, VerifiedNote), OpenError> {
        let note = note::open(msg, keys)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        Ok((checkpoint, note))
    }

    /// The checkpoint body as it is signed.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, self.root);
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

/// Parses a canonical decimal uint64: digits only, no sign, no leading zero
/// (except "0" itself), no overflow.
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Checkpoint({} @ {} = {})",
            self.origin, self.size, self.root
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::note::{sign, NoteError, SignatureKind, Signer};
    use proptest::prelude::*;

    const TESSERA_KEY: &str =
        "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

    // transparency-dev/tessera testdata/log (Apache-2.0); see
    // tests/data/tessera-checkpoints/README.md.
    const TESSERA: [&[u8]; 16] = [
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.0"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.1"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.2"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.3"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.4"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.5"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.6"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.7"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.8"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.9"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.10"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.11"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.12"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.13"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.14"),
        include_bytes!("../../tests/data/tessera-checkpoints/checkpoint.15"),
    ];

    // sum.golang.org's key and a tree note it signed (golang/mod, BSD-3).
    const SUMDB_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    const SUMDB_NOTE: &str = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n\u{2014} sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";

    // The C2SP signed-note example: a valid note, but not a checkpoint.
    const C2SP_KEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const C2SP_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    const ROOT: &str = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=";

    fn key(s: &str) -> VerifierKey {
        s.parse().unwrap()
    }

    fn flip_bit(msg: &[u8], bit: usize) -> Vec<u8> {
        let mut m = msg.to_vec();
        m[bit / 8] ^= 1 << (bit % 8);
        m
    }

    #[test]
    fn all_sixteen_tessera_checkpoints_verify() {
        let keys = [key(TESSERA_KEY)];
        for (size, msg) in TESSERA.iter().enumerate() {
            let (cp, note) = Checkpoint::open(msg, &keys).unwrap();
            assert_eq!(cp.origin, "example.com/log/testdata");
            assert_eq!(cp.size, size as u64);
            assert!(cp.extensions.is_empty());
            assert_eq!(note.verified.len(), 1);
            assert_eq!(note.verified[0].kind, SignatureKind::Ed25519);
            assert_eq!(note.verified[0].key_id, 0x33d7b496);
            assert_eq!(cp.to_text(), note.text);
        }
        let (first, _) = Checkpoint::open(TESSERA[0], &keys).unwrap();
        assert_eq!(first.root, Hash::empty_tree());
        let (last, _) = Checkpoint::open(TESSERA[15], &keys).unwrap();
        assert_eq!(last.root.to_base64(), ROOT);
    }

    #[test]
    fn every_one_bit_change_of_a_tessera_checkpoint_is_refused() {
        let keys = [key(TESSERA_KEY)];
        for msg in TESSERA {
            for bit in 0..msg.len() * 8 {
                assert!(
                    Checkpoint::open(&flip_bit(msg, bit), &keys).is_err(),
                    "bit {bit} of {:?}",
                    String::from_utf8_lossy(msg)
                );
            }
        }
    }

    #[test]
    fn sum_golang_org_tree_note_is_a_checkpoint() {
        let (cp, note) = Checkpoint::open(SUMDB_NOTE.as_bytes(), &[key(SUMDB_KEY)]).unwrap();
        assert_eq!(cp.origin, "go.sum database tree");
        assert_eq!(cp.size, 30055305);
        assert_eq!(
            cp.root.to_base64(),
            "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM="
        );
        assert_eq!(note.verified[0].name, "sum.golang.org");
        for bit in 0..SUMDB_NOTE.len() * 8 {
            let m = flip_bit(SUMDB_NOTE.as_bytes(), bit);
            assert!(
                Checkpoint::open(&m, &[key(SUMDB_KEY)]).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn the_c2sp_example_note_verifies_but_is_not_a_checkpoint() {
        let err = Checkpoint::open(C2SP_NOTE.as_bytes(), &[key(C2SP_KEY)]).unwrap_err();
        assert_eq!(err, OpenError::Checkpoint(CheckpointError::TooFewLines(1)));
        for bit in 0..C2SP_NOTE.len() * 8 {
            let m = flip_bit(C2SP_NOTE.as_bytes(), bit);
            assert!(Checkpoint::open(&m, &[key(C2SP_KEY)]).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_checkpoint_under_the_wrong_key_is_refused() {
        let err = Checkpoint::open(TESSERA[3], &[key(SUMDB_KEY)]).unwrap_err();
        assert!(matches!(err, OpenError::Note(NoteError::NotVerified(_))));
    }

    #[test]
    fn parses_extension_lines_in_order() {
        let text = format!("o\n7\n{ROOT}\next one\next two\n");
        let cp = Checkpoint::parse(&text).unwrap();
        assert_eq!(cp.extensions, vec!["ext one", "ext two"]);
        assert_eq!(cp.to_text(), text);
    }

    #[test]
    fn accepts_sizes_up_to_two_to_the_sixty_four_minus_one() {
        let cp = Checkpoint::parse(&format!("o\n18446744073709551615\n{ROOT}\n")).unwrap();
        assert_eq!(cp.size, u64::MAX);
    }

    #[test]
    fn refuses_malformed_checkpoints_with_a_clear_error() {
        let bad_size = |s: &str| CheckpointError::BadSize(s.to_string());
        let cases: Vec<(String, CheckpointError)> = vec![
            (format!("o\n1\n{ROOT}"), CheckpointError::NoFinalNewline),
            ("o\n1\n".into(), CheckpointError::TooFewLines(2)),
            ("\n".into(), CheckpointError::TooFewLines(1)),
            (format!("\n1\n{ROOT}\n"), CheckpointError::EmptyOrigin),
            (format!("o\n1\n{ROOT}\n\n"), CheckpointError::EmptyExtension),
            (
                format!("o\n1\n{ROOT}\na\n\nb\n"),
                CheckpointError::EmptyExtension,
            ),
            (
                format!("o\n18446744073709551616\n{ROOT}\n"),
                bad_size("18446744073709551616"),
            ),
            (
                format!("o\n99999999999999999999999\n{ROOT}\n"),
                bad_size("99999999999999999999999"),
            ),
            (format!("o\n01\n{ROOT}\n"), bad_size("01")),
            (format!("o\n00\n{ROOT}\n"), bad_size("00")),
            (format!("o\n+1\n{ROOT}\n"), bad_size("+1")),
            (format!("o\n-0\n{ROOT}\n"), bad_size("-0")),
            (format!("o\n 1\n{ROOT}\n"), bad_size(" 1")),
            (format!("o\n\n{ROOT}\n"), bad_size("")),
            (format!("o\n1\u{661}\n{ROOT}\n"), bad_size("1\u{661}")),
            (
                format!("o\r\n1\n{ROOT}\n"),
                CheckpointError::ControlCharacter {
                    offset: 1,
                    byte: b'\r',
                },
            ),
            (
                format!("o\n{}\n{ROOT}\n", "9".repeat(MAX_CHECKPOINT_SIZE)),
                CheckpointError::TooLarge(MAX_CHECKPOINT_SIZE + 48),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
        }
        // Root hashes of the wrong length or non-canonical base64.
        for root in [
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383c=",
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs",
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383ct=",
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs==",
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja_1nk427v383cs=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "",
        ] {
            let err = Checkpoint::parse(&format!("o\n1\n{root}\n")).unwrap_err();
            assert!(
                matches!(err, CheckpointError::BadRoot(_)),
                "{root}: {err:?}"
            );
        }
    }

    #[test]
    fn error_messages_say_what_was_seen() {
        let err = Checkpoint::parse(&format!("o\n01\n{ROOT}\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "checkpoint size \"01\" is not a canonical decimal uint64"
        );
    }

    #[test]
    fn a_checkpoint_signed_here_opens() {
        let s = Signer::from_seed("example.com/mine", &[4; 32]).unwrap();
        let cp = Checkpoint {
            origin: "example.com/mine".into(),
            size: 3,
            root: Hash([9; 32]),
            extensions: vec!["x".into()],
        };
        let msg = sign(&cp.to_text(), &[&s]).unwrap();
        let (back, _) = Checkpoint::open(&msg, &[s.verifier_key()]).unwrap();
        assert_eq!(back, cp);
    }

    proptest! {
        #[test]
        fn to_text_then_parse_round_trips(
            origin in "[!-~][ -~]{0,30}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extensions in proptest::collection::vec("[ -~]{1,20}", 0..4),
        ) {
            let cp = Checkpoint { origin, size, root: Hash(root), extensions };
            prop_assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = Checkpoint::parse(&text);
        }
    }
}
