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

use super::merkle::{Hash, HashError};
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
}

impl Checkpoint {
    /// Parses a checkpoint body (the text of a signed note, without the
    /// signatures).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        if text.len() > MAX_CHECKPOINT_SIZE {
            return Err(CheckpointError::TooLarge(text.len()));
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
