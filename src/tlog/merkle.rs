//! RFC 9162 (Certificate Transparency v2, section 2.1) Merkle tree hashing and
//! proof verification.
//!
//! Leaves are hashed as SHA-256(0x00 ‖ data) and interior nodes as
//! SHA-256(0x01 ‖ left ‖ right). The tree over n leaves splits at k, the
//! largest power of two smaller than n.
//!
//! Size-0 rule (c2sp.org/tlog-witness): the empty tree's root is SHA-256 of
//! the empty string; a consistency proof from size 0 to any size is the empty
//! proof, and it is always valid.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

/// Size of a SHA-256 hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 tree hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

/// A hash that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("hash is not canonical standard base64: {0:?}")]
    Base64(String),
    #[error("hash has {0} bytes, want 32")]
    Length(usize),
}

impl Hash {
    /// The root of the empty tree: SHA-256 of the empty string.
    pub fn empty_tree() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Decodes a 32-byte hash from canonical standard base64 (with padding).
    pub fn from_base64(s: &str) -> Result<Hash, HashError> {
        // A 32-byte value is 44 base64 characters; refuse anything else
        // before decoding so a huge input costs nothing.
        if s.len() != 44 {
            return Err(HashError::Base64(truncate(s)));
        }
        let bytes = STANDARD
            .decode(s)
            .map_err(|_| HashError::Base64(truncate(s)))?;
        Hash::from_slice(&bytes)
    }

    /// Copies a hash out of a slice that must be exactly 32 bytes long.
    pub fn from_slice(b: &[u8]) -> Result<Hash, HashError> {
        let arr: [u8; HASH_SIZE] = b.try_into().map_err(|_| HashError::Length(b.len()))?;
        Ok(Hash(arr))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_base64())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder { old: u64, new: u64 },
    #[error("proof has {seen} hashes, want {want}")]
    WrongLength { want: usize, seen: usize },
    #[error("proof leads to root {seen}, want {want}")]
    RootMismatch { want: Hash, seen: Hash },
    #[error("proof leads to old root {seen}, want {want}")]
    OldRootMismatch { want: Hash, seen: Hash },
    #[error("equal sizes need an empty proof and equal roots")]
    EqualSizes,
    #[error("the empty tree's root must be {want}, saw {seen}")]
    EmptyRoot { want: Hash, seen: Hash },
}

/// Number of hashes in an inclusion proof for `index` in a tree of `size`.
fn inclusion_len(index: u64, size: u64) -> (usize, usize) {
    // inner: levels where the path and the last leaf's path diverge;
    // border: the remaining right-border levels.
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

/// Computes the root that an inclusion proof leads to (RFC 9162 2.1.3.2).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = inclusion_len(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongLength {
            want: inner + border,
            seen: proof.len(),
        });
    }
    let mut h = *leaf;
    for (i, p) in proof[..inner].iter().enumerate() {
        if (index >> i) & 1 == 0 {
            h = node_hash(&h, p);
        } else {
            h = node_hash(p, &h);
        }
    }
    for p in &proof[inner..] {
        h = node_hash(p, &h);
    }
    Ok(h)
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size`
/// leaves with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let seen = root_from_inclusion(index, size, leaf, proof)?;
    if seen != *root {
        return Err(ProofError::RootMismatch { want: *root, seen });
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with `new_root` extends the
/// tree of `old_size` leaves with `old_root` (RFC 9162 2.1.4.2).
///
/// Size 0 (c2sp.org/tlog-witness): from old size 0 the only valid proof is
/// the empty one, and `old_root` must be the empty tree's root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                want: 0,
                seen: proof.len(),
            });
        }
        let want = Hash::empty_tree();
        if *old_root != want {
            return Err(ProofError::EmptyRoot {
                want,
                seen: *old_root,
            });
        }
        if new_size == 0 && *new_root != want {
            return Err(ProofError::EmptyRoot {
                want,
                seen: *new_root,
            });
        }
        return Ok(());
    }
    if old_size == new_size {
        if !proof.is_empty() || old_root != new_root {
            return Err(ProofError::EqualSizes);
        }
        return Ok(());
    }
    // Strip the levels where old_size's subtree is a complete left child.
    let shift = old_size.trailing_zeros();
    let index = (old_size - 1) >> shift;
    let size = ((new_size - 1) >> shift) + 1;
    let (inner, border) = inclusion_len(index, size);
    // When old_size is a power of two (index == 0 after the shift) the old
    // root is itself the first node of the path and is not in the proof.
    let start = usize::from(index != 0);
    let want = start + inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongLength {
            want,
            seen: proof.len(),
        });
    }
    let (seed, rest) = if index != 0 {
        (proof[0], &proof[1..])
    } else {
        (*old_root, proof)
    };
    // Old root: fold the left siblings of the path (bits that are 1) and
    // the border; new root: fold all of them.
    let mut old_h = seed;
    let mut new_h = seed;
    for (i, p) in rest[..inner].iter().enumerate() {
        if (index >> i) & 1 == 1 {
            old_h = node_hash(p, &old_h);
            new_h = node_hash(p, &new_h);
        } else {
            new_h = node_hash(&new_h, p);
        }
    }
    for p in &rest[inner..] {
        old_h = node_hash(p, &old_h);
        new_h = node_hash(p, &new_h);
    }
    if old_h != *old_root {
        return Err(ProofError::OldRootMismatch {
            want: *old_root,
            seen: old_h,
        });
    }
    if new_h != *new_root {
        return Err(ProofError::RootMismatch {
            want: *new_root,
            seen: new_h,
        });
    }
    Ok(())
}
