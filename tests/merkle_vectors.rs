//! Runs every transparency-dev/merkle vector (tests/data/merkle) and the real
//! argon2020 Certificate Transparency proofs (tests/data/ct-argon2020)
//! through `bulwark::tlog::merkle`.
//!
//! # Vectors where our rules and transparency-dev/merkle's differ
//!
//! We follow c2sp.org/tlog-witness for size 0 (old size 0 with an empty
//! proof is consistent with any tree; a size-0 root must be SHA-256("")),
//! and our hashes are typed 32-byte values, so a "hash" of another length
//! is refused when decoded, before any proof math. transparency-dev/merkle
//! refuses every consistency proof from size 0 and compares roots as byte
//! strings of any length. Every vector's expected result still holds for us
//! except these, asserted explicitly in `vectors_that_disagree_*`:
//!
//! - `consistency/additional/size1-is-zero-and-size2-is-not-zero.json`
//!   (0 → 1, root1 = SHA-256(""), empty proof, wantErr): by the size-0 rule
//!   this is consistent for any 32-byte root2. It still fails for us, but
//!   only because its root2 is the 12-byte string "don't care 2"; with a
//!   real 32-byte root2 we accept what that library refuses.
//! - `consistency/additional/sizes-are-equal-one-and-proof-is-empty.json`
//!   (1 → 1, equal 12-byte roots, wantErr false): the library accepts equal
//!   byte strings; we refuse the roots as hashes (12 bytes, want 32).
//!
//! The other size-0 vectors agree for a reason worth stating:
//! `sizes-are-equal-zero-and-proof-is-empty` (equal but non-empty-tree
//! roots) and `size1-is-zero-and-does-not-equal-size2` fail for us because a
//! size-0 root must be SHA-256(""); `consistency-check-on-empty-tree-*`,
//! `sizes-match-but-proof-is-not-empty-and-sizes-are-zero`,
//! `consistency/1/size1-sub-@1` and `consistency/3/size1-XOR-@2` fail
//! because a proof from size 0 must be empty.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bulwark::tlog::merkle::{
    leaf_hash, verify_consistency, verify_inclusion, Hash, HashError, ProofError,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

/// Decodes a vector's base64 field into a typed hash. A value that is not 32
/// bytes is refused here, which is our behaviour for such input.
fn hash(s: &str) -> Result<Hash, HashError> {
    let bytes = STANDARD.decode(s).expect("vectors hold valid base64");
    Hash::from_slice(&bytes)
}

fn hashes(p: &Option<Vec<String>>) -> Result<Vec<Hash>, HashError> {
    p.iter().flatten().map(|s| hash(s)).collect()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(data_dir().join("merkle"))
        .unwrap()
        .display()
        .to_string()
}

const DISAGREE: &[&str] = &[
    "consistency/additional/size1-is-zero-and-size2-is-not-zero.json",
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
];

fn run_inclusion(v: &InclusionVector) -> Result<(), String> {
    let root = hash(&v.root).map_err(|e| e.to_string())?;
    let leaf = hash(&v.leaf_hash).map_err(|e| e.to_string())?;
    let proof = hashes(&v.proof).map_err(|e| e.to_string())?;
    verify_inclusion(v.leaf_idx, v.tree_size, &leaf, &proof, &root).map_err(|e| e.to_string())
}

fn run_consistency(v: &ConsistencyVector) -> Result<(), String> {
    let r1 = hash(&v.root1).map_err(|e| e.to_string())?;
    let r2 = hash(&v.root2).map_err(|e| e.to_string())?;
    let proof = hashes(&v.proof).map_err(|e| e.to_string())?;
    verify_consistency(v.size1, v.size2, &r1, &r2, &proof).map_err(|e| e.to_string())
}

#[test]
fn every_inclusion_vector_gives_its_expected_result() {
    let files = json_files(&data_dir().join("merkle/inclusion"));
    assert!(files.len() >= 90, "found only {} vectors", files.len());
    let (mut ok, mut err) = (0, 0);
    for f in &files {
        let v: InclusionVector =
            serde_json::from_slice(&std::fs::read(f).unwrap()).expect("vector parses");
        let got = run_inclusion(&v);
        assert_eq!(
            got.is_err(),
            v.want_err,
            "{}: want_err={} got {:?}",
            rel(f),
            v.want_err,
            got
        );
        if got.is_ok() {
            ok += 1
        } else {
            err += 1
        }
    }
    // The happy paths and the mutations both occur.
    assert!(ok >= 6 && err >= 80, "ok={ok} err={err}");
}

#[test]
fn every_consistency_vector_gives_its_expected_result() {
    let files = json_files(&data_dir().join("merkle/consistency"));
    assert!(files.len() >= 90, "found only {} vectors", files.len());
    let (mut ok, mut err) = (0, 0);
    for f in &files {
        let v: ConsistencyVector =
            serde_json::from_slice(&std::fs::read(f).unwrap()).expect("vector parses");
        let got = run_consistency(&v);
        if DISAGREE.contains(&rel(f).as_str()) {
            continue; // asserted below
        }
        assert_eq!(
            got.is_err(),
            v.want_err,
            "{}: want_err={} got {:?}",
            rel(f),
            v.want_err,
            got
        );
        if got.is_ok() {
            ok += 1
        } else {
            err += 1
        }
    }
    assert!(ok >= 5 && err >= 80, "ok={ok} err={err}");
}

fn consistency_vector(name: &str) -> ConsistencyVector {
    let p = data_dir().join("merkle").join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn vectors_that_disagree_size_zero_to_one_is_consistent_for_us() {
    let v = consistency_vector(DISAGREE[0]);
    assert_eq!((v.size1, v.size2, v.want_err), (0, 1, true));
    assert!(v.proof.as_ref().is_some_and(|p| p.is_empty()));
    // As written the vector fails for us too, but only because root2 is not
    // a hash at all.
    assert_eq!(hash(&v.root2), Err(HashError::Length(12)));
    let root1 = hash(&v.root1).unwrap();
    assert_eq!(root1, Hash::empty_tree());
    // With any real root2 the size-0 rule says consistent;
    // transparency-dev/merkle says error.
    let root2 = leaf_hash(b"any one-leaf tree");
    assert_eq!(verify_consistency(0, 1, &root1, &root2, &[]), Ok(()));
    // And a proof from size 0 must be empty.
    assert_eq!(
        verify_consistency(0, 1, &root1, &root2, &[root2]),
        Err(ProofError::WrongLength { want: 0, seen: 1 })
    );
}

#[test]
fn vectors_that_disagree_roots_that_are_not_hashes_are_refused() {
    let v = consistency_vector(DISAGREE[1]);
    assert_eq!((v.size1, v.size2, v.want_err), (1, 1, false));
    assert_eq!(v.root1, v.root2);
    // transparency-dev/merkle compares the 12-byte strings and accepts; we
    // refuse them as hashes.
    assert_eq!(hash(&v.root1), Err(HashError::Length(12)));
    // Equal real roots at equal sizes with an empty proof are consistent.
    let r = leaf_hash(b"x");
    assert_eq!(verify_consistency(1, 1, &r, &r, &[]), Ok(()));
}

#[test]
fn size_zero_roots_must_be_the_empty_tree_hash() {
    let empty = Hash::empty_tree();
    let other = leaf_hash(b"");
    assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));
    assert!(matches!(
        verify_consistency(0, 0, &other, &other, &[]),
        Err(ProofError::EmptyRoot { .. })
    ));
    assert!(matches!(
        verify_consistency(0, 5, &other, &other, &[]),
        Err(ProofError::EmptyRoot { .. })
    ));
    assert!(matches!(
        verify_consistency(0, 0, &empty, &other, &[]),
        Err(ProofError::EmptyRoot { .. })
    ));
}

// --- argon2020 ------------------------------------------------------------

fn ct_json(name: &str) -> serde_json::Value {
    let p = data_dir().join("ct-argon2020").join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ct_hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| Hash::from_base64(s.as_str().unwrap()).unwrap())
        .collect()
}

struct Argon {
    size: u64,
    root: Hash,
    leaf: Hash,
    index: u64,
    path: Vec<Hash>,
    old_size: u64,
    old_root: Hash,
    consistency: Vec<Hash>,
}

fn argon() -> Argon {
    let sth = ct_json("get-sth.json");
    let entries = ct_json("get-entries-start-10000-end-10.json");
    let proof = ct_json("get-proof-by-hash-tree-size-96.json");
    let cons = ct_json("get-sth-consistency-first-3654.json");
    let input = STANDARD
        .decode(entries["entries"][0]["leaf_input"].as_str().unwrap())
        .unwrap();
    Argon {
        size: sth["tree_size"].as_u64().unwrap(),
        root: Hash::from_base64(sth["sha256_root_hash"].as_str().unwrap()).unwrap(),
        leaf: leaf_hash(&input),
        index: proof["leaf_index"].as_u64().unwrap(),
        path: ct_hashes(&proof["audit_path"]),
        old_size: 3654490,
        old_root: Hash::from_base64("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=").unwrap(),
        consistency: ct_hashes(&cons["consistency"]),
    }
}

#[test]
fn argon2020_inclusion_proof_of_30_hashes_verifies() {
    let a = argon();
    assert_eq!((a.size, a.index, a.path.len()), (961984011, 10000, 30));
    assert_eq!(
        verify_inclusion(a.index, a.size, &a.leaf, &a.path, &a.root),
        Ok(())
    );
}

#[test]
fn argon2020_consistency_proof_of_30_hashes_verifies() {
    let a = argon();
    assert_eq!(a.consistency.len(), 30);
    assert_eq!(
        verify_consistency(a.old_size, a.size, &a.old_root, &a.root, &a.consistency),
        Ok(())
    );
}

fn shape(index: u64, size: u64) -> (u32, u32) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    (inner, index.checked_shr(inner).unwrap_or(0).count_ones())
}

fn cshape(old: u64, new: u64) -> (u64, (u32, u32)) {
    let shift = old.trailing_zeros();
    let index = (old - 1) >> shift;
    (index, shape(index, ((new - 1) >> shift) + 1))
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h.0[bit / 8] ^= 1 << (bit % 8);
    h
}

#[test]
fn argon2020_proofs_fail_after_any_one_bit_change() {
    let a = argon();
    for bit in 0..256 {
        assert!(verify_inclusion(a.index, a.size, &flip(&a.leaf, bit), &a.path, &a.root).is_err());
        assert!(verify_inclusion(a.index, a.size, &a.leaf, &a.path, &flip(&a.root, bit)).is_err());
        assert!(verify_consistency(
            a.old_size,
            a.size,
            &flip(&a.old_root, bit),
            &a.root,
            &a.consistency
        )
        .is_err());
        assert!(verify_consistency(
            a.old_size,
            a.size,
            &a.old_root,
            &flip(&a.root, bit),
            &a.consistency
        )
        .is_err());
    }
    for i in 0..30 {
        for bit in [0, 77, 255] {
            let mut p = a.path.clone();
            p[i] = flip(&p[i], bit);
            assert!(verify_inclusion(a.index, a.size, &a.leaf, &p, &a.root).is_err());
            let mut c = a.consistency.clone();
            c[i] = flip(&c[i], bit);
            assert!(
                verify_consistency(a.old_size, a.size, &a.old_root, &a.root, &c).is_err(),
                "consistency hash {i} bit {bit}"
            );
        }
    }
    for bit in 0..64 {
        let idx = a.index ^ (1 << bit);
        assert!(verify_inclusion(idx, a.size, &a.leaf, &a.path, &a.root).is_err());
        // A proof binds the size only through its shape (see
        // tests/merkle_props.rs): a flip that keeps the shape still verifies
        // (the signed checkpoint is what binds size to root); every other
        // flip fails.
        let size = a.size ^ (1 << bit);
        let same = a.index < size && shape(a.index, size) == shape(a.index, a.size);
        assert_eq!(
            verify_inclusion(a.index, size, &a.leaf, &a.path, &a.root).is_ok(),
            same,
            "size bit {bit}"
        );
        let old = a.old_size ^ (1 << bit);
        assert!(
            verify_consistency(old, a.size, &a.old_root, &a.root, &a.consistency).is_err(),
            "old size bit {bit}"
        );
        let same = a.old_size < size && cshape(a.old_size, size) == cshape(a.old_size, a.size);
        assert_eq!(
            verify_consistency(a.old_size, size, &a.old_root, &a.root, &a.consistency).is_ok(),
            same,
            "new size bit {bit}"
        );
    }
}
