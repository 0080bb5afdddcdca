//! Criterion benchmarks of the transparency core's hot checks: verifying an
//! inclusion proof and a consistency proof in a tree of 2^30 leaves (30-hash
//! proofs). Target: at least 100,000 inclusion checks a second on one core.
//! Run with `cargo bench --bench tlog`; the `reference` benchmark is the
//! bare SHA-256 work the check needs, to report the check as a ratio of it.

use bulwark::tlog::merkle::{
    leaf_hash, node_hash, root_from_inclusion, verify_consistency, verify_inclusion, Hash,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const SIZE: u64 = 1 << 30;

fn fake(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

/// The old and new roots a consistency proof leads to (RFC 9162 2.1.4.2),
/// computed here so the benchmark can use arbitrary proof hashes.
fn consistency_roots(old: u64, new: u64, proof: &[Hash]) -> (Hash, Hash) {
    let shift = old.trailing_zeros();
    let index = (old - 1) >> shift;
    let size = ((new - 1) >> shift) + 1;
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    assert_ne!(index, 0, "pick an old size that is not a power of two");
    let (mut o, mut n) = (proof[0], proof[0]);
    for (i, p) in proof[1..=inner].iter().enumerate() {
        if (index >> i) & 1 == 1 {
            o = node_hash(p, &o);
            n = node_hash(p, &n);
        } else {
            n = node_hash(&n, p);
        }
    }
    for p in &proof[1 + inner..] {
        o = node_hash(p, &o);
        n = node_hash(p, &n);
    }
    (o, n)
}

fn bench(c: &mut Criterion) {
    let index = 123_456_789;
    let leaf = fake(u64::MAX);
    let path: Vec<Hash> = (0..30).map(fake).collect();
    let root = root_from_inclusion(index, SIZE, &leaf, &path).unwrap();
    assert_eq!(verify_inclusion(index, SIZE, &leaf, &path, &root), Ok(()));
    c.bench_function("verify_inclusion 2^30 (30 hashes)", |b| {
        b.iter(|| {
            verify_inclusion(
                black_box(index),
                black_box(SIZE),
                black_box(&leaf),
                black_box(&path),
                black_box(&root),
            )
        })
    });

    // old = 2^29 + 2^20 + 3: 1 seed + 29 path hashes + 1 border... find the
    // proof length by asking the verifier.
    let old = (1 << 29) + (1 << 20) + 3;
    let want = match verify_consistency(old, SIZE, &leaf, &leaf, &[]) {
        Err(bulwark::tlog::merkle::ProofError::WrongLength { want, .. }) => want,
        other => panic!("unexpected {other:?}"),
    };
    let proof: Vec<Hash> = (100..100 + want as u64).map(fake).collect();
    let (old_root, new_root) = consistency_roots(old, SIZE, &proof);
    assert_eq!(
        verify_consistency(old, SIZE, &old_root, &new_root, &proof),
        Ok(())
    );
    c.bench_function(&format!("verify_consistency 2^30 ({want} hashes)"), |b| {
        b.iter(|| {
            verify_consistency(
                black_box(old),
                black_box(SIZE),
                black_box(&old_root),
                black_box(&new_root),
                black_box(&proof),
            )
        })
    });

    // The reference run: the 30 RFC 9162 node hashes an inclusion check
    // cannot avoid (each SHA-256 over 65 bytes, two compressions), with no
    // proof logic around them. verify_inclusion's time over this one is the
    // cost of the proof logic itself; this one is the floor the CPU sets.
    c.bench_function("reference: 30 node hashes", |b| {
        b.iter(|| {
            let mut h = black_box(leaf);
            for p in black_box(&path) {
                h = node_hash(&h, p);
            }
            h
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
