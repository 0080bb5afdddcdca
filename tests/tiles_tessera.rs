//! Proves everything about the real Tessera log in tests/data/tessera-log
//! from its tiles alone: every checkpoint root recomputed from the entry
//! bundles, inclusion of every entry and consistency between every pair of
//! sizes through `TileHashReader`, and a one-bit change to any tile refused.
//! Also a synthetic multi-level tree, to exercise tiles above level 0.

use bulwark::tlog::merkle::{
    leaf_hash, prove_record, prove_tree, stored_hashes, tree_hash, tree_hash_from_leaves,
    verify_consistency, verify_inclusion, Hash, HashReader,
};
use bulwark::tlog::tile::{
    parse_entry_bundle, parse_tile_path, read_tile_data, Bundle, Dialect, Tile, TileError,
    TileHashReader, TilePath, TileReader,
};
use bulwark::tlog::Checkpoint;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

const SIZES: u64 = 15;

fn log_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tessera-log")
}

fn checkpoint(size: u64) -> Checkpoint {
    let note = std::fs::read_to_string(log_dir().join(format!("checkpoint.{size}"))).unwrap();
    // The body ends at the blank line before the signatures.
    let body_end = note.find("\n\n").unwrap() + 1;
    let c = Checkpoint::parse(&note[..body_end]).unwrap();
    assert_eq!(c.size, size);
    c
}

/// Reads tile files from the log directory, optionally with one bit flipped
/// in one tile; records what was saved.
#[derive(Default)]
struct DirTiles {
    flip: Option<(Tile, usize)>,
    saved: RefCell<Vec<Tile>>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading {0}: {1}")]
struct ReadErr(String, std::io::Error);

impl TileReader for DirTiles {
    type Error = ReadErr;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, ReadErr> {
        tiles
            .iter()
            .map(|t| {
                let p = t.path(Dialect::Tiles);
                let mut d = std::fs::read(log_dir().join(&p)).map_err(|e| ReadErr(p, e))?;
                if let Some((ft, bit)) = self.flip {
                    if ft == *t {
                        d[bit / 8] ^= 1 << (bit % 8);
                    }
                }
                Ok(d)
            })
            .collect()
    }
    fn save_tiles(&self, tiles: &[Tile], _: &[Vec<u8>]) {
        self.saved.borrow_mut().extend_from_slice(tiles);
    }
}

fn entries(size: u64) -> Vec<Vec<u8>> {
    let b = Bundle::for_entry(size - 1, size).unwrap();
    let path = b.path(Dialect::Tiles);
    assert_eq!(
        parse_tile_path(Dialect::Tiles, &path),
        Ok(TilePath::Entries(b))
    );
    let data = std::fs::read(log_dir().join(&path)).unwrap();
    parse_entry_bundle(&data, b.width)
        .unwrap()
        .into_iter()
        .map(|e| e.to_vec())
        .collect()
}

#[test]
fn every_checkpoint_root_is_recomputed_from_the_entry_bundles() {
    assert_eq!(checkpoint(0).root, Hash::empty_tree());
    for size in 1..=SIZES {
        let leaves: Vec<Hash> = entries(size).iter().map(|e| leaf_hash(e)).collect();
        assert_eq!(leaves.len() as u64, size);
        assert_eq!(
            tree_hash_from_leaves(&leaves),
            checkpoint(size).root,
            "size {size}"
        );
        // The level-0 tile holds exactly those leaf hashes.
        let tile = Tile::in_tree(0, 0, size).unwrap();
        let data = std::fs::read(log_dir().join(tile.path(Dialect::Tiles))).unwrap();
        let flat: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
        assert_eq!(data, flat);
    }
}

#[test]
fn inclusion_of_every_entry_is_proven_from_tiles_alone() {
    for size in 1..=SIZES {
        let c = checkpoint(size);
        let tiles = DirTiles::default();
        let r = TileHashReader::new(size, c.root, &tiles);
        let es = entries(size);
        for (i, e) in es.iter().enumerate() {
            let p = prove_record(size, i as u64, &r).unwrap();
            assert_eq!(
                verify_inclusion(i as u64, size, &leaf_hash(e), &p, &c.root),
                Ok(()),
                "entry {i} in {size}"
            );
        }
        // Size 1 needs no hashes: its proof is empty.
        assert_eq!(tiles.saved.borrow().is_empty(), size == 1);
    }
}

#[test]
fn consistency_between_every_pair_of_sizes_is_proven_from_tiles_alone() {
    for new in 0..=SIZES {
        let cn = checkpoint(new);
        let tiles = DirTiles::default();
        let r = TileHashReader::new(new, cn.root, &tiles);
        for old in 0..=new {
            let co = checkpoint(old);
            assert_eq!(tree_hash(old, &r).unwrap(), co.root, "{old} in {new}");
            let p = prove_tree(new, old, &r).unwrap();
            assert_eq!(
                verify_consistency(old, new, &co.root, &cn.root, &p),
                Ok(()),
                "{old} -> {new}"
            );
        }
    }
}

#[test]
fn a_one_bit_change_to_any_tile_fails_authentication() {
    for size in 1..=SIZES {
        let c = checkpoint(size);
        let tile = Tile::in_tree(0, 0, size).unwrap();
        for bit in 0..(size as usize * 256) {
            let tiles = DirTiles {
                flip: Some((tile, bit)),
                ..Default::default()
            };
            let r = TileHashReader::new(size, c.root, &tiles);
            let got = r.read_hashes(&[0]);
            assert!(
                matches!(got, Err(TileError::RootMismatch { .. })),
                "size {size} bit {bit}: {got:?}"
            );
            assert!(
                tiles.saved.borrow().is_empty(),
                "saved an unauthenticated tile"
            );
        }
    }
}

#[test]
fn a_wrong_root_or_missing_tile_is_refused() {
    let c = checkpoint(7);
    let tiles = DirTiles::default();
    let wrong = leaf_hash(b"not the root");
    let r = TileHashReader::new(7, wrong, &tiles);
    assert!(matches!(
        r.read_hashes(&[0]),
        Err(TileError::RootMismatch { .. })
    ));
    // A tree the directory has no tiles for.
    let r = TileHashReader::new(300, c.root, &tiles);
    assert!(matches!(r.read_hashes(&[0]), Err(TileError::Read(_))));
    // An index beyond the tree.
    let r = TileHashReader::new(7, c.root, &tiles);
    assert!(matches!(
        r.read_hashes(&[bulwark::tlog::merkle::stored_hash_index(0, 7)]),
        Err(TileError::NotInTree { .. })
    ));
}

// --- a synthetic tree with tiles on three levels ---------------------------

/// Serves tiles computed from a full stored-hash list, optionally corrupting
/// one tile.
struct MemTiles {
    stored: Vec<Hash>,
    corrupt: Option<(u32, u64)>,
    reads: RefCell<usize>,
}

impl TileReader for MemTiles {
    type Error = bulwark::tlog::merkle::TreeError;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, Self::Error> {
        *self.reads.borrow_mut() += tiles.len();
        tiles
            .iter()
            .map(|t| {
                let mut d = read_tile_data(t, self.stored.as_slice())?;
                if self.corrupt == Some((t.level, t.n)) {
                    d[5] ^= 0x10;
                }
                Ok(d)
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

fn build(n: u64) -> (Vec<Hash>, Vec<Hash>) {
    let mut stored: Vec<Hash> = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..n {
        let l = leaf_hash(format!("entry {i}").as_bytes());
        leaves.push(l);
        let add = stored_hashes(i, &l, stored.as_slice()).unwrap();
        stored.extend(add);
    }
    (stored, leaves)
}

#[test]
fn tiles_on_three_levels_give_the_same_proofs_as_stored_hashes() {
    let size: u64 = 256 * 256 + 256 * 3 + 17; // full level-1 tile, partials on 0, 1, 2
    let (stored, leaves) = build(size);
    let root = tree_hash(size, stored.as_slice()).unwrap();
    let tiles = MemTiles {
        stored: stored.clone(),
        corrupt: None,
        reads: RefCell::new(0),
    };
    let r = TileHashReader::new(size, root, &tiles);
    for i in [0, 1, 255, 256, 40_000, 65_535, 65_536, 65_600, size - 1] {
        let p = prove_record(size, i, &r).unwrap();
        assert_eq!(p, prove_record(size, i, stored.as_slice()).unwrap());
        assert_eq!(
            verify_inclusion(i, size, &leaves[i as usize], &p, &root),
            Ok(())
        );
    }
    for old in [1, 255, 256, 257, 65_536, 65_537, size - 1] {
        let p = prove_tree(size, old, &r).unwrap();
        assert_eq!(p, prove_tree(size, old, stored.as_slice()).unwrap());
        let old_root = tree_hash(old, &r).unwrap();
        assert_eq!(old_root, tree_hash(old, stored.as_slice()).unwrap());
        assert_eq!(verify_consistency(old, size, &old_root, &root, &p), Ok(()));
    }
    // Corrupting a full level-0 tile far from the right edge is caught by
    // its parent; corrupting the level-1 full tile by its parent, too.
    let leaf_index = stored_hash_index_of_leaf(1000);
    for corrupt in [(0u32, 3u64), (1, 0)] {
        let bad = MemTiles {
            stored: stored.clone(),
            corrupt: Some(corrupt),
            reads: RefCell::new(0),
        };
        let r = TileHashReader::new(size, root, &bad);
        let got = r.read_hashes(&[leaf_index]);
        assert!(
            matches!(got, Err(TileError::ParentMismatch { .. })),
            "{corrupt:?}: {got:?}"
        );
    }
    // And a partial tile on the right edge by the root.
    let bad = MemTiles {
        stored,
        corrupt: Some((2, 0)),
        reads: RefCell::new(0),
    };
    let r = TileHashReader::new(size, root, &bad);
    assert!(matches!(
        r.read_hashes(&[leaf_index]),
        Err(TileError::RootMismatch { .. })
    ));
}

fn stored_hash_index_of_leaf(i: u64) -> u64 {
    bulwark::tlog::merkle::stored_hash_index(0, i)
}

#[test]
fn tile_widths_match_checkpoints_and_files() {
    for size in 1..=SIZES {
        let t = Tile::in_tree(0, 0, size).unwrap();
        assert_eq!(t.width as u64, size);
        assert!(log_dir().join(t.path(Dialect::Tiles)).exists());
        assert_eq!(
            parse_tile_path(Dialect::Tiles, &t.path(Dialect::Tiles)),
            Ok(TilePath::Hashes(t))
        );
    }
}
