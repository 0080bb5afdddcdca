//! Property tests for `bulwark::tlog::merkle`: proofs generated for random
//! trees verify, any mutation of index, size, root or a proof hash fails, and
//! generation from stored hashes equals the RFC 9162 recursive definition.

use bulwark::tlog::merkle::{
    consistency_proof_from_leaves, inclusion_proof_from_leaves, leaf_hash, prove_record,
    prove_tree, stored_hash_count, stored_hashes, tree_hash, tree_hash_from_leaves,
    verify_consistency, verify_inclusion, Hash,
};
use proptest::prelude::*;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Builds the stored-hash list the way a log appends.
fn stored(leaves: &[Hash]) -> Vec<Hash> {
    let mut s: Vec<Hash> = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        let add = stored_hashes(i as u64, l, s.as_slice()).unwrap();
        s.extend(add);
    }
    assert_eq!(s.len() as u64, stored_hash_count(leaves.len() as u64));
    s
}

/// (inner, border) of RFC 9162's inclusion verification for `index` in
/// `size`. Two sizes with the same shape make verification compute the same
/// root from the same proof: a proof binds the tree size only through its
/// shape, and the size is authenticated by the signed checkpoint that pairs
/// it with the root. So a size mutation must fail exactly when it changes
/// the shape.
fn shape(index: u64, size: u64) -> (u32, u32) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    (inner, index.checked_shr(inner).unwrap_or(0).count_ones())
}

/// The shape of a consistency proof from `old` to `new`.
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
fn stored_generation_equals_the_recursive_definition_for_small_trees() {
    let all = leaves(70);
    let s = stored(&all);
    for t in 0..=70u64 {
        let d = &all[..t as usize];
        assert_eq!(
            tree_hash(t, s.as_slice()).unwrap(),
            tree_hash_from_leaves(d)
        );
        for n in 0..t {
            assert_eq!(
                prove_record(t, n, s.as_slice()).unwrap(),
                inclusion_proof_from_leaves(n, d).unwrap(),
                "record {n} in {t}"
            );
        }
        for n in 0..=t {
            assert_eq!(
                prove_tree(t, n, s.as_slice()).unwrap(),
                consistency_proof_from_leaves(n, d).unwrap(),
                "tree {n} in {t}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_proofs_verify_and_equal_the_definition(
        size in 1u64..600, a in any::<u64>(), b in any::<u64>()
    ) {
        let all = leaves(size);
        let s = stored(&all);
        let root = tree_hash_from_leaves(&all);
        prop_assert_eq!(tree_hash(size, s.as_slice()).unwrap(), root);

        let index = a % size;
        let p = prove_record(size, index, s.as_slice()).unwrap();
        prop_assert_eq!(&p, &inclusion_proof_from_leaves(index, &all).unwrap());
        prop_assert_eq!(verify_inclusion(index, size, &all[index as usize], &p, &root), Ok(()));

        let old = b % (size + 1);
        let old_root = tree_hash_from_leaves(&all[..old as usize]);
        let c = prove_tree(size, old, s.as_slice()).unwrap();
        prop_assert_eq!(&c, &consistency_proof_from_leaves(old, &all).unwrap());
        prop_assert_eq!(verify_consistency(old, size, &old_root, &root, &c), Ok(()));
    }

    #[test]
    fn any_mutation_of_an_inclusion_proof_fails(
        size in 2u64..600, a in any::<u64>(), m in any::<u64>(), bit in 0usize..256
    ) {
        let all = leaves(size);
        let root = tree_hash_from_leaves(&all);
        let index = a % size;
        let leaf = all[index as usize];
        let p = inclusion_proof_from_leaves(index, &all).unwrap();

        let other = m % size;
        if other != index {
            prop_assert!(verify_inclusion(other, size, &leaf, &p, &root).is_err());
        }
        let other_size = 1 + m % 1200;
        if other_size != size {
            let r = verify_inclusion(index, other_size, &leaf, &p, &root);
            let same = index < other_size && shape(index, other_size) == shape(index, size);
            prop_assert_eq!(r.is_ok(), same);
        }
        prop_assert!(verify_inclusion(index, size, &leaf, &p, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion(index, size, &flip(&leaf, bit), &p, &root).is_err());
        if !p.is_empty() {
            let i = (m as usize) % p.len();
            let mut q = p.clone();
            q[i] = flip(&q[i], bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &q, &root).is_err());
            let mut q = p.clone();
            q.remove(i);
            prop_assert!(verify_inclusion(index, size, &leaf, &q, &root).is_err());
        }
        let mut q = p.clone();
        q.push(root);
        prop_assert!(verify_inclusion(index, size, &leaf, &q, &root).is_err());
    }

    #[test]
    fn any_mutation_of_a_consistency_proof_fails(
        size in 2u64..600, a in any::<u64>(), m in any::<u64>(), bit in 0usize..256
    ) {
        let all = leaves(size);
        let root = tree_hash_from_leaves(&all);
        let old = 1 + a % (size - 1); // 0 < old < size: a non-trivial proof
        let old_root = tree_hash_from_leaves(&all[..old as usize]);
        let p = consistency_proof_from_leaves(old, &all).unwrap();
        prop_assert!(!p.is_empty());

        let other_old = m % (size + 1);
        if other_old != old {
            prop_assert!(verify_consistency(other_old, size, &old_root, &root, &p).is_err());
        }
        let other_size = 1 + m % 1200;
        if other_size != size {
            let r = verify_consistency(old, other_size, &old_root, &root, &p);
            let same = old < other_size && cshape(old, other_size) == cshape(old, size);
            prop_assert_eq!(r.is_ok(), same);
        }
        prop_assert!(verify_consistency(old, size, &flip(&old_root, bit), &root, &p).is_err());
        prop_assert!(verify_consistency(old, size, &old_root, &flip(&root, bit), &p).is_err());
        let i = (m as usize) % p.len();
        let mut q = p.clone();
        q[i] = flip(&q[i], bit);
        prop_assert!(verify_consistency(old, size, &old_root, &root, &q).is_err());
        let mut q = p.clone();
        q.remove(i);
        prop_assert!(verify_consistency(old, size, &old_root, &root, &q).is_err());
        let mut q = p.clone();
        q.push(root);
        prop_assert!(verify_consistency(old, size, &old_root, &root, &q).is_err());
    }
}

/// Serves all-zero tiles of the requested widths: enough to drive the tile
/// planner through any tree size up to authentication (which then fails).
struct ZeroTiles;

impl bulwark::tlog::tile::TileReader for ZeroTiles {
    type Error = std::io::Error;
    fn read_tiles(
        &self,
        tiles: &[bulwark::tlog::tile::Tile],
    ) -> Result<Vec<Vec<u8>>, std::io::Error> {
        Ok(tiles
            .iter()
            .map(|t| vec![0; t.width as usize * 32])
            .collect())
    }
    fn save_tiles(&self, _: &[bulwark::tlog::tile::Tile], _: &[Vec<u8>]) {
        panic!("saved unauthenticated tiles");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn verification_and_generation_never_panic(
        index in any::<u64>(), size in any::<u64>(), len in 0usize..70, shift in 0u32..64
    ) {
        let h = leaf_hash(b"x");
        let p = vec![h; len];
        let size_small = size >> shift;
        for (i, s) in [(index, size), (index >> shift, size_small), (index % size.max(1), size)] {
            let _ = verify_inclusion(i, s, &h, &p, &h);
            let _ = verify_consistency(i, s, &h, &h, &p);
            let none: &[Hash] = &[];
            let _ = prove_record(s, i, none);
            let _ = prove_tree(s, i, none);
            let _ = tree_hash(s, none);
        }
        use bulwark::tlog::merkle::{stored_hash_index, HashReader};
        use bulwark::tlog::tile::TileHashReader;
        let t = size_small.min(bulwark::tlog::merkle::MAX_TREE_SIZE);
        let r = TileHashReader::new(t, h, &ZeroTiles);
        let leaf = stored_hash_index(0, index % t.max(1));
        prop_assert!(r.read_hashes(&[leaf, index >> shift]).is_err());
        if t > 0 {
            prop_assert!(prove_record(t, index % t, &r).is_err() || t == 1);
        }
    }
}
