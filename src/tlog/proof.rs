//! Offline inclusion proofs (c2sp.org/tlog-proof@v1): an entry's index, its
//! Merkle inclusion proof and the signed checkpoint (with cosignatures) it
//! is proven against, in one text file (`.tlog-proof`).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64 opaque data>]
//! index <decimal>
//! <base64 hash>            (zero or more, leaf's sibling first)
//!
//! <checkpoint note, verbatim, with its signature lines>
//! ```
//!
//! This file parses and produces the format and checks the Merkle part
//! ([`TlogProof::verify_inclusion_in`]). The checkpoint note's signatures and
//! the witness policy are checked by the caller (the signed-note and policy
//! modules) on [`TlogProof::checkpoint_note`], which is kept byte for byte.
//! Called by `bulwark verify proof` and the verifier layer.

use super::checkpoint::{parse_decimal, Checkpoint};
use super::merkle::{verify_inclusion, Hash, HashError, ProofError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest proof file accepted. A checkpoint with 100 signatures and a
/// 64-hash proof are well under 32 KiB; the rest is room for `extra`.
pub const MAX_PROOF_SIZE: usize = 256 * 1024;
/// Most hashes an inclusion proof can have (a tree of 2^64 leaves).
pub const MAX_PROOF_HASHES: usize = 64;

/// A parsed c2sp.org/tlog-proof@v1 bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data (`extra` line), if present.
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling up.
    pub hashes: Vec<Hash>,
    /// The checkpoint note exactly as it appears in the bundle: body, blank
    /// line, signature lines. Not verified here.
    pub checkpoint_note: Vec<u8>,
}

/// Why a proof bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    #[error("proof is {0} bytes, more than the {MAX_PROOF_SIZE} allowed")]
    TooLarge(usize),
    #[error("proof line {line} is not UTF-8")]
    NotUtf8 { line: usize },
    #[error("proof starts with {0:?}, want {HEADER:?}")]
    BadHeader(String),
    #[error("proof extra data is not canonical standard base64")]
    BadExtra,
    #[error("proof line {line} is {seen:?}, want \"index <decimal>\"")]
    MissingIndex { line: usize, seen: String },
    #[error("proof index {0:?} is not a canonical decimal uint64")]
    BadIndex(String),
    #[error("proof line {line}: {err}")]
    BadHash { line: usize, err: HashError },
    #[error("proof has more than {MAX_PROOF_HASHES} hashes")]
    TooManyHashes,
    #[error("proof ends before the blank line and checkpoint")]
    MissingCheckpoint,
    #[error("proof checkpoint note has no blank line before its signatures")]
    BadCheckpointNote,
}

/// Splits off the next line (without its newline); None at the end of input
/// or if the rest has no newline.
fn next_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = data.iter().position(|&b| b == b'\n')?;
    Some((&data[..i], &data[i + 1..]))
}

fn excerpt(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned()
}

impl TlogProof {
    /// Parses a proof bundle.
    pub fn parse(data: &[u8]) -> Result<TlogProof, TlogProofError> {
        if data.len() > MAX_PROOF_SIZE {
            return Err(TlogProofError::TooLarge(data.len()));
        }
        let mut line_no = 1;
        let (header, mut rest) = next_line(data).ok_or(TlogProofError::MissingCheckpoint)?;
        if header != HEADER.as_bytes() {
            return Err(TlogProofError::BadHeader(excerpt(header)));
        }

        let (mut line, mut after) = next_line(rest).ok_or(TlogProofError::MissingCheckpoint)?;
        line_no += 1;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix(b"extra ") {
            extra = Some(STANDARD.decode(b64).map_err(|_| TlogProofError::BadExtra)?);
            rest = after;
            (line, after) = next_line(rest).ok_or(TlogProofError::MissingCheckpoint)?;
            line_no += 1;
        }

        let digits = line
            .strip_prefix(b"index ")
            .ok_or_else(|| TlogProofError::MissingIndex {
                line: line_no,
                seen: excerpt(line),
            })?;
        let digits =
            std::str::from_utf8(digits).map_err(|_| TlogProofError::BadIndex(excerpt(digits)))?;
        let index = parse_decimal(digits)
            .ok_or_else(|| TlogProofError::BadIndex(excerpt(digits.as_bytes())))?;
        rest = after;

        let mut hashes = Vec::new();
        loop {
            let (line, after) = next_line(rest).ok_or(TlogProofError::MissingCheckpoint)?;
            line_no += 1;
            rest = after;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(TlogProofError::TooManyHashes);
            }
            let s =
                std::str::from_utf8(line).map_err(|_| TlogProofError::NotUtf8 { line: line_no })?;
            let h = Hash::from_base64(s)
                .map_err(|err| TlogProofError::BadHash { line: line_no, err })?;
            hashes.push(h);
        }

        if rest.is_empty() {
            return Err(TlogProofError::MissingCheckpoint);
        }
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint_note: rest.to_vec(),
        })
    }

    /// The proof in its text form; `parse(&p.to_bytes()) == p` for any proof
    /// whose checkpoint note is non-empty.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 45 * self.hashes.len() + self.checkpoint_note.len());
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        if let Some(extra) = &self.extra {
            out.extend_from_slice(b"extra ");
            out.extend_from_slice(STANDARD.encode(extra).as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(format!("index {}\n", self.index).as_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h.to_base64().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint_note);
        out
    }

    /// The checkpoint body (the note's text up to and including the newline
    /// before the blank line), UNVERIFIED: only for display or for handing
    /// to the note verifier's output comparison. Use the checkpoint that the
    /// signed-note verifier returns for anything that matters.
    pub fn unverified_checkpoint_body(&self) -> Result<&str, TlogProofError> {
        let note = &self.checkpoint_note;
        let end = note
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or(TlogProofError::BadCheckpointNote)?;
        std::str::from_utf8(&note[..end + 1]).map_err(|_| TlogProofError::BadCheckpointNote)
    }

    /// Checks that the entry with leaf hash `leaf_hash` is at
    /// [`TlogProof::index`] in the tree `checkpoint` describes. The caller
    /// must have verified `checkpoint` (signatures, policy) from
    /// [`TlogProof::checkpoint_note`].
    pub fn verify_inclusion_in(
        &self,
        leaf_hash: &Hash,
        checkpoint: &Checkpoint,
    ) -> Result<(), ProofError> {
        verify_inclusion(
            self.index,
            checkpoint.size,
            leaf_hash,
            &self.hashes,
            &checkpoint.root,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{inclusion_proof_from_leaves, leaf_hash, tree_hash_from_leaves};

    const NOTE: &str = "example.com/fancylog\n5\nROOT\n\n\u{2014} example.com/fancylog AAAA\n";

    fn sample() -> (TlogProof, Checkpoint, Hash) {
        let leaves: Vec<Hash> = (0..5u8).map(|i| leaf_hash(&[i])).collect();
        let root = tree_hash_from_leaves(&leaves);
        let note = NOTE.replace("ROOT", &root.to_base64());
        let cp = Checkpoint::parse(&note[..note.find("\n\n").unwrap() + 1]).unwrap();
        let p = TlogProof {
            extra: Some(b"age-v1.2.1-darwin-arm64.tar.gz".to_vec()),
            index: 3,
            hashes: inclusion_proof_from_leaves(3, &leaves).unwrap(),
            checkpoint_note: note.into_bytes(),
        };
        (p, cp, leaves[3])
    }

    #[test]
    fn round_trips_and_verifies_the_merkle_part() {
        let (p, cp, leaf) = sample();
        let text = p.to_bytes();
        assert!(text.starts_with(b"c2sp.org/tlog-proof@v1\nextra YWdl"));
        let q = TlogProof::parse(&text).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.unverified_checkpoint_body().unwrap(), cp.to_text());
        assert_eq!(q.verify_inclusion_in(&leaf, &cp), Ok(()));
        assert!(q.verify_inclusion_in(&leaf_hash(b"other"), &cp).is_err());
        let mut wrong = q.clone();
        wrong.index = 2;
        assert!(wrong.verify_inclusion_in(&leaf, &cp).is_err());
    }

    #[test]
    fn extra_is_optional_and_may_be_empty() {
        let (mut p, _, _) = sample();
        p.extra = None;
        assert_eq!(TlogProof::parse(&p.to_bytes()).unwrap(), p);
        p.extra = Some(Vec::new());
        let t = p.to_bytes();
        assert!(t.starts_with(b"c2sp.org/tlog-proof@v1\nextra \nindex 3\n"));
        assert_eq!(TlogProof::parse(&t).unwrap(), p);
    }

    #[test]
    fn refuses_malformed_bundles_with_what_was_wrong() {
        let (p, _, _) = sample();
        let good = String::from_utf8(p.to_bytes()).unwrap();
        type Want = fn(&TlogProofError) -> bool;
        let cases: Vec<(String, Want)> = vec![
            (good.replacen("tlog-proof@v1", "tlog-proof@v2", 1), |e| {
                matches!(e, TlogProofError::BadHeader(_))
            }),
            (good.replacen("extra YWdl", "extra !!!", 1), |e| {
                matches!(e, TlogProofError::BadExtra)
            }),
            (good.replacen("index 3", "index 03", 1), |e| {
                matches!(e, TlogProofError::BadIndex(_))
            }),
            (
                good.replacen("index 3", "index 18446744073709551616", 1),
                |e| matches!(e, TlogProofError::BadIndex(_)),
            ),
            (good.replacen("index 3", "idx 3", 1), |e| {
                matches!(e, TlogProofError::MissingIndex { .. })
            }),
            (good.replacen("\n\nexample.com", "\nexample.com", 1), |e| {
                matches!(e, TlogProofError::BadHash { .. })
            }),
            (good[..good.find("\n\n").unwrap() + 2].to_string(), |e| {
                matches!(e, TlogProofError::MissingCheckpoint)
            }),
            (good[..good.find("\n\n").unwrap() + 1].to_string(), |e| {
                matches!(e, TlogProofError::MissingCheckpoint)
            }),
        ];
        for (text, want) in cases {
            let got = TlogProof::parse(text.as_bytes());
            assert!(got.as_ref().is_err_and(want), "{text:?}: {got:?}");
        }
        // A hash of the wrong length.
        let short = good.replacen(&p.hashes[0].to_base64(), "AAAA", 1);
        assert!(matches!(
            TlogProof::parse(short.as_bytes()),
            Err(TlogProofError::BadHash { line: 4, .. })
        ));
        // 65 hashes.
        let mut many = p.clone();
        many.hashes = vec![Hash::default(); 65];
        assert_eq!(
            TlogProof::parse(&many.to_bytes()),
            Err(TlogProofError::TooManyHashes)
        );
        // Too large.
        let big = vec![b'a'; MAX_PROOF_SIZE + 1];
        assert_eq!(
            TlogProof::parse(&big),
            Err(TlogProofError::TooLarge(MAX_PROOF_SIZE + 1))
        );
    }
}
