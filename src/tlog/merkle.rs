//! RFC 9162 (Certificate Transparency v2, section 2.1) Merkle tree hashing and
//! proof verification.
//!
//! Leaves are hashed as SHA-256(0x00 ‖ data) and interior nodes as
//! SHA-256(0x01 ‖ left ‖ right). The tree over n leaves splits at k, the
//! largest power of two smaller than n.
//!
//! Size-0 rule (c2sp.org/tlog-witness): the empty tree's root is SHA-256 of
//! the empty string; a consistency proof from size 0 to any size is the empty
//! proof, and it is always valid. (transparency-dev/merkle instead refuses
//! every consistency proof from size 0; tests/merkle_vectors.rs lists the
//! vectors where that matters.)
//!
//! Three groups of functions:
//! - verification: [`verify_inclusion`], [`verify_consistency`];
//! - the RFC 9162 definitions over a list of leaf hashes:
//!   [`tree_hash_from_leaves`], [`inclusion_proof_from_leaves`],
//!   [`consistency_proof_from_leaves`] (simple, O(n), the reference);
//! - the same from *stored hashes* (golang.org/x/mod/sumdb/tlog's layout, see
//!   [`stored_hash_index`]) read through a [`HashReader`]: [`tree_hash`],
//!   [`prove_record`], [`prove_tree`], and [`stored_hashes`] for appending.
//!   These read at most O(log n) hashes, so they work over tiles
//!   (`tile::TileHashReader`) as well as over a full in-memory list.
//!
//! Called by the tile reader, the offline proof bundles, the verifier layer
//! and `bulwark verify`.

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
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    // inner is 64 when the paths split at the top bit; a plain shift by 64
    // would panic (debug) or wrap (release).
    let border = index.checked_shr(inner).unwrap_or(0).count_ones() as usize;
    let inner = inner as usize;
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

/// Largest power of two strictly smaller than `n` (n ≥ 2): the RFC 9162
/// split point `k` of a tree of `n` leaves.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

// ---------------------------------------------------------------------------
// The RFC 9162 definitions (section 2.1.1–2.1.4) over a list of leaf hashes.
// ---------------------------------------------------------------------------

/// MTH(D[n]): the root of the tree whose leaf hashes are `leaves`.
/// The empty list has the empty tree's root, SHA-256 of the empty string.
pub fn tree_hash_from_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::empty_tree(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &tree_hash_from_leaves(&leaves[..k]),
                &tree_hash_from_leaves(&leaves[k..]),
            )
        }
    }
}

/// PATH(m, D[n]): the inclusion proof for leaf `index` among `leaves`,
/// ordered from the leaf's sibling up to the root's child.
///
/// PATH(0, {d0}) = {}; for n > 1 with split k:
/// PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])      if m < k,
///               = PATH(m − k, D[k:n]) : MTH(D[0:k])  if m ≥ k.
pub fn inclusion_proof_from_leaves(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, TreeError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split_point(d.len() as u64) as usize;
        if m < k {
            path(m, &d[..k], out);
            out.push(tree_hash_from_leaves(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(tree_hash_from_leaves(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index as usize, leaves, &mut out);
    Ok(out)
}

/// PROOF(m, D[n]): the consistency proof from the first `old_size` leaves to
/// all of `leaves`.
///
/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true), where
/// SUBPROOF(m, D[m], true) = {}, SUBPROOF(m, D[m], false) = {MTH(D[m])}, and
/// for m < n with split k:
/// SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])          if m ≤ k,
///                      = SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k])  if m > k.
///
/// Old size 0 and old size n have the empty proof (size-0 rule above).
pub fn consistency_proof_from_leaves(
    old_size: u64,
    leaves: &[Hash],
) -> Result<Vec<Hash>, TreeError> {
    let size = leaves.len() as u64;
    if old_size > size {
        return Err(TreeError::SizeOrder {
            old: old_size,
            new: size,
        });
    }
    fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
        if m == d.len() {
            if !b {
                out.push(tree_hash_from_leaves(d));
            }
            return;
        }
        let k = split_point(d.len() as u64) as usize;
        if m <= k {
            subproof(m, &d[..k], b, out);
            out.push(tree_hash_from_leaves(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(tree_hash_from_leaves(&d[..k]));
        }
    }
    let mut out = Vec::new();
    if old_size > 0 {
        subproof(old_size as usize, leaves, true, &mut out);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Stored hashes (golang.org/x/mod/sumdb/tlog's layout).
// ---------------------------------------------------------------------------

/// Largest tree the stored-hash functions accept: 2^62 leaves. Every stored
/// hash index of such a tree fits in a u64 with room to spare; no real log
/// comes near it.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// Why a tree hash or proof could not be computed from stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder { old: u64, new: u64 },
    #[error("tree size {0} is larger than the {MAX_TREE_SIZE} supported")]
    TooLarge(u64),
    #[error("hash reader returned {seen} hashes, want {want}")]
    ShortRead { want: usize, seen: usize },
    #[error("stored hash {index} is not available ({stored} hashes stored)")]
    NotStored { index: u64, stored: u64 },
}

/// The position of the hash of node (`level`, `n`) — the n-th node of that
/// level, covering leaves [n·2^level, (n+1)·2^level) — in the stored-hash
/// sequence.
///
/// Hashes are stored in the order a log computes them while appending: leaf
/// m's hash, then the hashes of the subtrees that leaf m completes, lowest
/// first (one per trailing 1 bit of m). Leaves 0..m−1 store
/// Σ(1 + trailing_ones(j)) = 2m − popcount(m) hashes, so node (level, n),
/// completed by its last leaf m = (n+1)·2^level − 1, is at
/// 2m − popcount(m) + level.
///
/// Defined for level < 64 and (n+1)·2^level ≤ 2^63 (every node of a tree of
/// at most 2^63 leaves); outside that domain the result is meaningless but
/// the function does not panic.
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    let level = level.min(63);
    let m = (n.wrapping_add(1) << level).wrapping_sub(1);
    m.wrapping_mul(2)
        .wrapping_sub(u64::from(m.count_ones()))
        .wrapping_add(u64::from(level))
}

/// The inverse of [`stored_hash_index`]: the (level, n) of the node stored
/// at `index`. Total on u64.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    // Find the leaf m whose hashes start at or before index: the first hash
    // stored with leaf m is at 2m − popcount(m), which lies in
    // [2m − 64, 2m], so m is within 64 of index/2.
    let first = |m: u128| 2 * m - u128::from((m as u64).count_ones());
    let index = u128::from(index);
    let mut m = index / 2;
    let mut at = first(m);
    loop {
        let next = at + 1 + u128::from((m as u64).trailing_ones());
        if next > index {
            break;
        }
        m += 1;
        at = next;
    }
    // The hash is the (index − at)-th stored with leaf m: level 0 is the
    // leaf, level l the subtree of 2^l leaves that m completes.
    let level = (index - at) as u32;
    (level, (m as u64) >> level)
}

/// Number of hashes stored for a tree of `n` leaves: 2n − popcount(n).
pub fn stored_hash_count(n: u64) -> u64 {
    let n = n.min(MAX_TREE_SIZE);
    2 * n - u64::from(n.count_ones())
}

/// Reads stored hashes by their [`stored_hash_index`].
pub trait HashReader {
    type Error: From<TreeError>;
    /// Returns the hashes at `indexes`, in the same order, exactly one per
    /// index (the callers check the count). Indexes come sorted increasing.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

/// A complete in-memory list of stored hashes.
impl HashReader for [Hash] {
    type Error = TreeError;
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TreeError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or(TreeError::NotStored {
                        index: i,
                        stored: self.len() as u64,
                    })
            })
            .collect()
    }
}

/// Reads `indexes` and checks the reader returned one hash for each.
fn read_exact<R: HashReader + ?Sized>(r: &R, indexes: &[u64]) -> Result<Vec<Hash>, R::Error> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::ShortRead {
            want: indexes.len(),
            seen: hashes.len(),
        }
        .into());
    }
    Ok(hashes)
}

/// The hashes to store when appending leaf `n` (0-based) whose leaf hash is
/// `leaf`, to be stored from `stored_hash_index(0, n)` on: the leaf hash,
/// then one node hash per subtree that leaf n completes (one per trailing 1
/// bit of n), lowest first. Reads the left siblings from `r`.
pub fn stored_hashes<R: HashReader + ?Sized>(
    n: u64,
    leaf: &Hash,
    r: &R,
) -> Result<Vec<Hash>, R::Error> {
    if n >= MAX_TREE_SIZE {
        return Err(TreeError::TooLarge(n).into());
    }
    let completed = n.trailing_ones();
    // The left sibling at level l is node (l, (n >> l) − 1); (n >> l) is odd.
    let indexes: Vec<u64> = (0..completed)
        .rev()
        .map(|l| stored_hash_index(l, (n >> l) - 1))
        .collect();
    let siblings = read_exact(r, &indexes)?;
    let mut out = Vec::with_capacity(1 + completed as usize);
    let mut h = *leaf;
    out.push(h);
    for left in siblings.iter().rev() {
        h = node_hash(left, &h);
        out.push(h);
    }
    Ok(out)
}

/// The complete subtrees (level, n) whose hashes, folded right to left with
/// [`node_hash`], give MTH(D[lo:hi]) — largest (leftmost) first. Requires
/// lo to be a multiple of the largest power of two ≤ hi − lo, which holds
/// for every range the RFC 9162 recursion produces.
pub(crate) fn subtree_nodes(mut lo: u64, hi: u64, out: &mut Vec<(u32, u64)>) {
    while lo < hi {
        let level = (63 - (hi - lo).leading_zeros()).min(lo.trailing_zeros());
        out.push((level, lo >> level));
        lo += 1 << level;
    }
}

/// MTH of each range in `ranges`, from one call to `r`.
fn hashes_of_ranges<R: HashReader + ?Sized>(
    ranges: &[(u64, u64)],
    r: &R,
) -> Result<Vec<Hash>, R::Error> {
    let mut nodes = Vec::new();
    let mut counts = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let before = nodes.len();
        subtree_nodes(lo, hi, &mut nodes);
        counts.push(nodes.len() - before);
    }
    let indexes: Vec<u64> = nodes
        .iter()
        .map(|&(l, n)| stored_hash_index(l, n))
        .collect();
    let hashes = read_exact(r, &indexes)?;
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for c in counts {
        let part = &hashes[at..at + c];
        at += c;
        let mut iter = part.iter().rev();
        let mut h = match iter.next() {
            Some(h) => *h,
            None => Hash::empty_tree(),
        };
        for left in iter {
            h = node_hash(left, &h);
        }
        out.push(h);
    }
    Ok(out)
}

/// MTH of the first `n` leaves, from at most 1 + log2(n) stored hashes.
/// Size 0 has the empty tree's root.
pub fn tree_hash<R: HashReader + ?Sized>(n: u64, r: &R) -> Result<Hash, R::Error> {
    if n > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge(n).into());
    }
    if n == 0 {
        return Ok(Hash::empty_tree());
    }
    let h = hashes_of_ranges(&[(0, n)], r)?;
    Ok(h[0])
}

/// The leaf ranges whose MTHs form PATH(index, D[0:size]), in proof order.
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The leaf ranges whose MTHs form PROOF(old, D[0:new]), 0 < old < new, in
/// proof order.
fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut lo, mut hi, mut b) = (0, new, true);
    // Invariant: lo < old ≤ hi.
    loop {
        if old == hi {
            if !b {
                out.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if old <= lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            b = false;
        }
    }
    out.reverse();
    out
}

/// The inclusion proof for leaf `n` in the tree of `t` leaves, from stored
/// hashes (same result as [`inclusion_proof_from_leaves`]).
pub fn prove_record<R: HashReader + ?Sized>(t: u64, n: u64, r: &R) -> Result<Vec<Hash>, R::Error> {
    if t > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge(t).into());
    }
    if n >= t {
        return Err(TreeError::IndexOutOfRange { index: n, size: t }.into());
    }
    hashes_of_ranges(&inclusion_ranges(n, t), r)
}

/// The consistency proof from the tree of `n` leaves to the tree of `t`
/// leaves, from stored hashes (same result as
/// [`consistency_proof_from_leaves`]). Empty for n = 0 and n = t.
pub fn prove_tree<R: HashReader + ?Sized>(t: u64, n: u64, r: &R) -> Result<Vec<Hash>, R::Error> {
    if t > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge(t).into());
    }
    if n > t {
        return Err(TreeError::SizeOrder { old: n, new: t }.into());
    }
    if n == 0 || n == t {
        return Ok(Vec::new());
    }
    hashes_of_ranges(&consistency_ranges(n, t), r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_hash_index_matches_append_order() {
        // Leaf 0: (0,0). Leaf 1: (0,1),(1,0). Leaf 2: (0,2). Leaf 3:
        // (0,3),(1,1),(2,0).
        let order = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
        ];
        for (i, &(l, n)) in order.iter().enumerate() {
            assert_eq!(stored_hash_index(l, n), i as u64, "({l},{n})");
            assert_eq!(split_stored_hash_index(i as u64), (l, n));
        }
    }

    #[test]
    fn split_inverts_stored_hash_index_everywhere_tried() {
        for index in (0..5000).chain([u64::MAX / 2, u64::MAX - 70, u64::MAX]) {
            let (l, n) = split_stored_hash_index(index);
            if index < u64::MAX - 70 {
                assert_eq!(stored_hash_index(l, n), index, "{index}");
            }
        }
        for n in [0, 1, 2, 3, 1000, MAX_TREE_SIZE - 1] {
            for l in 0..8 {
                let i = stored_hash_index(l, n >> l);
                assert_eq!(split_stored_hash_index(i), (l, n >> l));
            }
        }
    }

    #[test]
    fn stored_hash_count_is_next_leaf_index() {
        for n in 0..300u64 {
            assert_eq!(stored_hash_count(n), stored_hash_index(0, n));
        }
    }

    #[test]
    fn empty_tree_hash_is_sha256_of_nothing() {
        let none: &[Hash] = &[];
        assert_eq!(
            tree_hash(0, none).unwrap().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(tree_hash_from_leaves(&[]), Hash::empty_tree());
    }

    #[test]
    fn refuses_sizes_beyond_the_supported_maximum() {
        let none: &[Hash] = &[];
        assert_eq!(
            tree_hash(u64::MAX, none),
            Err(TreeError::TooLarge(u64::MAX))
        );
        assert_eq!(
            prove_record(u64::MAX, 0, none),
            Err(TreeError::TooLarge(u64::MAX))
        );
        assert_eq!(
            prove_tree(u64::MAX, 1, none),
            Err(TreeError::TooLarge(u64::MAX))
        );
        assert!(stored_hashes(u64::MAX, &Hash::default(), none).is_err());
    }

    #[test]
    fn verification_refuses_sizes_near_2_64_without_panicking() {
        let h = Hash::default();
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &h, &[h; 64], &h).is_err());
        assert!(verify_inclusion(u64::MAX, u64::MAX, &h, &[], &h).is_err());
        assert!(verify_consistency(u64::MAX - 1, u64::MAX, &h, &h, &[h; 3]).is_err());
        assert!(verify_consistency(1 << 63, u64::MAX, &h, &h, &[h; 64]).is_err());
        // Paths that split at the top bit (inner = 64).
        let big = (1u64 << 63) + 1;
        assert!(verify_inclusion(0, big, &h, &[h; 64], &h).is_err());
        assert!(verify_inclusion(1 << 63, big, &h, &[h; 1], &h).is_err());
        assert!(verify_consistency(1, big, &h, &h, &[h; 64]).is_err());
        assert!(verify_consistency(3, u64::MAX, &h, &h, &[h; 64]).is_err());
    }
}
