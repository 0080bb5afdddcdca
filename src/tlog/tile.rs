//! Tiles: the static form in which tiled logs publish their Merkle tree and
//! entries, and a hash reader that authenticates tiles before using them.
//!
//! Two dialects share one tiling (height 8, so a full tile holds 256 hashes):
//!
//! ```text
//! c2sp.org/tlog-tiles:  tile/<L>/<N>[.p/<W>]      tile/entries/<N>[.p/<W>]
//! sum.golang.org:       tile/8/<L>/<N>[.p/<W>]    tile/8/data/<N>[.p/<W>]
//! ```
//!
//! `<N>` is written in 3-digit groups, all but the last prefixed with `x`
//! (1234067 is `x001/x234/067`); `.p/<W>` marks a partial tile of W < 256
//! hashes. The tile at level L, number N, holds the hashes of the nodes at
//! tree level 8·L numbered N·256 … N·256+W−1; the levels between are
//! recomputed by hashing. For a tree of size s the tile (L, N) has width
//! min(256, ⌊s / 256^L⌋ − 256·N).
//!
//! Entry bundles (tlog-tiles) are entries each preceded by a big-endian
//! uint16 length; sum.golang.org's data tiles are record texts each followed
//! by a blank line.
//!
//! [`TileHashReader`] answers [`HashReader`] requests from tiles only,
//! authenticating every tile against a signed tree (size and root) before
//! any of its hashes is used, as golang.org/x/mod/sumdb/tlog does: the tiles
//! covering the tree's complete subtrees must hash to the root, and every
//! other (full) tile must hash to its entry in the tile above. So inclusion
//! and consistency proofs ([`super::merkle::prove_record`],
//! [`super::merkle::prove_tree`], [`super::merkle::tree_hash`]) can be
//! computed from tiles alone.
//!
//! Called by the Go checksum-database front, the tiled-log verifier and the
//! proxy's tile routes (via [`parse_tile_path`]).

use super::merkle::{
    node_hash, split_stored_hash_index, stored_hash_index, subtree_nodes, Hash, HashReader,
    TreeError, HASH_SIZE, MAX_TREE_SIZE,
};
use std::collections::HashMap;
use std::fmt;

/// Tile height: a tile spans 8 tree levels.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;
/// Longest tile path [`parse_tile_path`] reads (real ones are under 40).
pub const MAX_TILE_PATH: usize = 96;
/// Largest data tile or entry bundle [`parse_entry_bundle`] and
/// [`parse_data_tile`] accept: 256 entries of the largest uint16 length.
pub const MAX_BUNDLE_SIZE: usize = TILE_WIDTH as usize * (2 + u16::MAX as usize);

/// A hash tile: `width` hashes at tree level `8·level`, starting with node
/// number `n·256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub level: u32,
    pub n: u64,
    /// 1..=256; 256 is a full tile.
    pub width: u32,
}

/// An entry bundle (tlog-tiles) or data tile (sum.golang.org): `width`
/// entries starting with entry `n·256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bundle {
    pub n: u64,
    /// 1..=256; 256 is a full bundle.
    pub width: u32,
}

/// Which path layout a log uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// c2sp.org/tlog-tiles: `tile/<L>/<N>`, `tile/entries/<N>`.
    Tiles,
    /// sum.golang.org: `tile/8/<L>/<N>`, `tile/8/data/<N>`.
    SumDb,
}

/// A parsed tile path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    Hashes(Tile),
    Entries(Bundle),
}

/// Why a tile path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    #[error("tile path is {0} bytes, more than the {MAX_TILE_PATH} allowed")]
    TooLong(usize),
    #[error("tile path {path:?}: {why}")]
    Malformed { path: String, why: &'static str },
    #[error("tile path {0:?} names a tile beyond the largest supported tree")]
    OutOfRange(String),
}

impl Tile {
    /// Width of the tile (level, n) in the tree of `size` leaves, or None if
    /// that tree has no such tile.
    pub fn width_in_tree(level: u32, n: u64, size: u64) -> Option<u32> {
        if level >= 8 {
            return None;
        }
        let nodes = size >> (TILE_HEIGHT * level);
        let start = n.checked_mul(u64::from(TILE_WIDTH))?;
        if start >= nodes {
            return None;
        }
        Some((nodes - start).min(u64::from(TILE_WIDTH)) as u32)
    }

    /// The tile (level, n) as it is in the tree of `size` leaves.
    pub fn in_tree(level: u32, n: u64, size: u64) -> Option<Tile> {
        Tile::width_in_tree(level, n, size).map(|width| Tile { level, n, width })
    }

    /// The narrowest tile holding what is needed to compute the stored hash
    /// at `index`, and the range of its hashes (start..end, in hashes) that
    /// hash to it. A hash at tree level 8·L + j is the tree hash of 2^j
    /// consecutive hashes in a level-L tile.
    pub fn for_index(index: u64) -> (Tile, std::ops::Range<usize>) {
        let (level, n) = split_stored_hash_index(index);
        let tl = level / TILE_HEIGHT;
        let j = level % TILE_HEIGHT;
        // Bottom-row position of the node's first hash.
        let first = n << j;
        let tn = first >> TILE_HEIGHT;
        let start = (first & u64::from(TILE_WIDTH - 1)) as usize;
        let end = start + (1usize << j);
        (
            Tile {
                level: tl,
                n: tn,
                width: end as u32,
            },
            start..end,
        )
    }

    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile's path in `dialect`.
    pub fn path(&self, dialect: Dialect) -> String {
        let mut s = match dialect {
            Dialect::Tiles => format!("tile/{}/", self.level),
            Dialect::SumDb => format!("tile/8/{}/", self.level),
        };
        push_n(&mut s, self.n, self.width);
        s
    }
}

impl Bundle {
    /// The bundle holding entry `index` in the tree of `size` leaves.
    pub fn for_entry(index: u64, size: u64) -> Option<Bundle> {
        if index >= size {
            return None;
        }
        let n = index >> TILE_HEIGHT;
        let width = Tile::width_in_tree(0, n, size)?;
        Some(Bundle { n, width })
    }

    /// Index of the bundle's first entry.
    pub fn start(&self) -> u64 {
        self.n << TILE_HEIGHT
    }

    pub fn path(&self, dialect: Dialect) -> String {
        let mut s = String::from(match dialect {
            Dialect::Tiles => "tile/entries/",
            Dialect::SumDb => "tile/8/data/",
        });
        push_n(&mut s, self.n, self.width);
        s
    }
}

/// Appends `<N>[.p/<W>]`.
fn push_n(s: &mut String, n: u64, width: u32) {
    let mut groups = Vec::new();
    let mut m = n;
    loop {
        groups.push(m % 1000);
        m /= 1000;
        if m == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        if i + 1 < groups.len() {
            s.push_str(&format!("x{g:03}/"));
        } else {
            s.push_str(&format!("{g:03}"));
        }
    }
    if width != TILE_WIDTH {
        s.push_str(&format!(".p/{width}"));
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path(Dialect::Tiles))
    }
}

/// Parses a tile path (without a leading slash) strictly: only the
/// canonical spelling of each tile is accepted (no leading zeros, no empty
/// or extra groups, W in 1..=255), and only tiles of trees up to
/// [`MAX_TREE_SIZE`] leaves.
pub fn parse_tile_path(dialect: Dialect, path: &str) -> Result<TilePath, TilePathError> {
    if path.len() > MAX_TILE_PATH {
        return Err(TilePathError::TooLong(path.len()));
    }
    let bad = |why| TilePathError::Malformed {
        path: path.to_string(),
        why,
    };
    let rest = match dialect {
        Dialect::Tiles => path.strip_prefix("tile/"),
        Dialect::SumDb => path.strip_prefix("tile/8/"),
    }
    .ok_or_else(|| {
        bad(match dialect {
            Dialect::Tiles => "want prefix tile/",
            Dialect::SumDb => "want prefix tile/8/",
        })
    })?;
    let (kind, rest) = rest.split_once('/').ok_or_else(|| bad("no tile number"))?;
    let level = match (dialect, kind) {
        (Dialect::Tiles, "entries") | (Dialect::SumDb, "data") => None,
        _ => Some(parse_small(kind, 63).ok_or_else(|| bad("level is not 0..63"))?),
    };
    let (num, width) = match rest.split_once(".p/") {
        Some((num, w)) => {
            let w = parse_small(w, TILE_WIDTH - 1)
                .filter(|&w| w >= 1)
                .ok_or_else(|| bad("partial width is not 1..255"))?;
            (num, w)
        }
        None => (rest, TILE_WIDTH),
    };
    let n = parse_n(num).ok_or_else(|| bad("tile number is not x-prefixed 3-digit groups"))?;
    // Refuse tiles no supported tree has, before anyone does math on them.
    let level_for_range = level.unwrap_or(0);
    let in_range = level_for_range < 8
        && n.checked_add(1)
            .and_then(|m| m.checked_mul(1u64 << (TILE_HEIGHT * (level_for_range + 1) - 1)))
            .is_some_and(|end_half| end_half <= MAX_TREE_SIZE / 2);
    if !in_range {
        return Err(TilePathError::OutOfRange(path.to_string()));
    }
    let parsed = match level {
        Some(level) => TilePath::Hashes(Tile { level, n, width }),
        None => TilePath::Entries(Bundle { n, width }),
    };
    Ok(parsed)
}

/// A decimal with no sign, no leading zero (except "0"), at most `max`.
fn parse_small(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok().filter(|&v| v <= max)
}

/// `x001/x234/067` → 1234067; canonical only (no `x000` leading group).
fn parse_n(s: &str) -> Option<u64> {
    let groups: Vec<&str> = s.split('/').collect();
    if groups.len() > 7 {
        return None;
    }
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { *g } else { g.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if i == 0 && !last && digits == "000" {
            return None;
        }
        let v: u64 = digits.parse().ok()?;
        n = n.checked_mul(1000)?.checked_add(v)?;
    }
    Some(n)
}

// ---------------------------------------------------------------------------
// Entry bundles and data tiles.
// ---------------------------------------------------------------------------

/// Why an entry bundle or data tile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is {0} bytes, more than the {MAX_BUNDLE_SIZE} allowed")]
    TooLarge(usize),
    #[error("bundle width {0} is not 1..=256")]
    BadWidth(u32),
    #[error("bundle entry {entry} is truncated: want {want} bytes, {seen} left")]
    Truncated {
        entry: usize,
        want: usize,
        seen: usize,
    },
    #[error("bundle has {seen} bytes after its {want} entries")]
    TrailingData { want: u32, seen: usize },
    #[error("bundle has {seen} entries, want {want}")]
    WrongCount { want: u32, seen: usize },
    #[error("data tile record {0} is not valid record text")]
    BadRecord(usize),
    #[error("entry {entry} is {len} bytes, more than a uint16 length allows")]
    EntryTooLarge { entry: usize, len: usize },
}

fn check_bundle(data: &[u8], width: u32) -> Result<(), BundleError> {
    if data.len() > MAX_BUNDLE_SIZE {
        return Err(BundleError::TooLarge(data.len()));
    }
    if width == 0 || width > TILE_WIDTH {
        return Err(BundleError::BadWidth(width));
    }
    Ok(())
}

/// Splits a tlog-tiles entry bundle of `width` entries, each a big-endian
/// uint16 length then that many bytes. Exactly `width` entries and no
/// trailing bytes.
pub fn parse_entry_bundle(data: &[u8], width: u32) -> Result<Vec<&[u8]>, BundleError> {
    check_bundle(data, width)?;
    let mut out = Vec::with_capacity(width as usize);
    let mut rest = data;
    for entry in 0..width as usize {
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => {
                return Err(BundleError::Truncated {
                    entry,
                    want: 2,
                    seen: rest.len(),
                })
            }
        };
        if tail.len() < len {
            return Err(BundleError::Truncated {
                entry,
                want: len,
                seen: tail.len(),
            });
        }
        let (e, tail) = tail.split_at(len);
        out.push(e);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BundleError::TrailingData {
            want: width,
            seen: rest.len(),
        });
    }
    Ok(out)
}

/// Builds a tlog-tiles entry bundle.
pub fn format_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, BundleError> {
    let mut out = Vec::new();
    for (entry, e) in entries.iter().enumerate() {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| BundleError::EntryTooLarge {
            entry,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits a sum.golang.org data tile of `width` records. Each record text
/// is UTF-8 without control characters other than newline, ends in a
/// newline, has no blank line, and is followed by a blank line (the blank
/// line after the last record may be missing; the record hashes the same).
/// Returns the record texts, each with its final newline: the leaf hash of
/// a record is `leaf_hash(text)`.
pub fn parse_data_tile(data: &[u8], width: u32) -> Result<Vec<&[u8]>, BundleError> {
    check_bundle(data, width)?;
    let mut out = Vec::with_capacity(width as usize);
    let mut rest = data;
    while !rest.is_empty() {
        if out.len() == width as usize {
            return Err(BundleError::TrailingData {
                want: width,
                seen: rest.len(),
            });
        }
        let (text, tail) = match rest.windows(2).position(|w| w == b"\n\n") {
            Some(i) => (&rest[..i + 1], &rest[i + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        if !valid_record_text(text) {
            return Err(BundleError::BadRecord(out.len()));
        }
        out.push(text);
        rest = tail;
    }
    if out.len() != width as usize {
        return Err(BundleError::WrongCount {
            want: width,
            seen: out.len(),
        });
    }
    Ok(out)
}

fn valid_record_text(text: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(text) else {
        return false;
    };
    s.ends_with('\n') && !s.contains("\n\n") && !s.chars().any(|c| c < ' ' && c != '\n')
}

// ---------------------------------------------------------------------------
// Authenticated hash reading.
// ---------------------------------------------------------------------------

/// Fetches tiles (from a cache, a file tree or the network; the caller's
/// business). Tiles are requested at their width in the tree being read.
pub trait TileReader {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Returns the data of each tile, in order. Lengths are checked by the
    /// caller.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, Self::Error>;
    /// Called with tiles after they were authenticated; only now may they be
    /// cached persistently.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]);
}

/// Why hashes could not be read from tiles.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("reading tiles: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
    #[error("stored hash {index} is not in the tree of size {size}")]
    NotInTree { index: u64, size: u64 },
    #[error("tile reader returned {seen} tiles, want {want}")]
    WrongCount { want: usize, seen: usize },
    #[error("tile {tile} is {seen} bytes, want {want}")]
    WrongLength {
        tile: String,
        want: usize,
        seen: usize,
    },
    #[error("tiles hash to root {seen}, but the tree of size {size} has root {want}")]
    RootMismatch { size: u64, want: Hash, seen: Hash },
    #[error("tile {tile} hashes to {seen}, but its parent tile says {want}")]
    ParentMismatch {
        tile: String,
        want: Hash,
        seen: Hash,
    },
    #[error("internal tile planning error: {0}")]
    Plan(&'static str),
}

/// A [`HashReader`] over the tree of `size` leaves with root `root` (taken
/// from a verified checkpoint) that reads tiles through a [`TileReader`]
/// and authenticates all of them before returning any hash.
pub struct TileHashReader<'a, R: TileReader + ?Sized> {
    size: u64,
    root: Hash,
    reader: &'a R,
}

impl<'a, R: TileReader + ?Sized> TileHashReader<'a, R> {
    pub fn new(size: u64, root: Hash, reader: &'a R) -> Self {
        TileHashReader { size, root, reader }
    }
}

/// The tree hash of a power-of-two run of hashes (a subtree inside a tile).
fn tile_hash(hashes: &[u8]) -> Hash {
    if hashes.len() <= HASH_SIZE {
        let mut h = Hash::default();
        h.0.copy_from_slice(&hashes[..HASH_SIZE.min(hashes.len())]);
        return h;
    }
    let mid = hashes.len() / 2;
    node_hash(&tile_hash(&hashes[..mid]), &tile_hash(&hashes[mid..]))
}

/// The hash at stored index `index` from the data of `tile`, which must be
/// the tile [`Tile::for_index`] names (at least as wide).
fn hash_from_tile(tile: &Tile, data: &[u8], index: u64) -> Result<Hash, TileError> {
    let (want, range) = Tile::for_index(index);
    if want.level != tile.level || want.n != tile.n || want.width > tile.width {
        return Err(TileError::Plan("hash looked up in the wrong tile"));
    }
    let bytes = data
        .get(range.start * HASH_SIZE..range.end * HASH_SIZE)
        .ok_or(TileError::Plan("tile data shorter than its width"))?;
    Ok(tile_hash(bytes))
}

struct Plan {
    tiles: Vec<Tile>,
    at: HashMap<(u32, u64), usize>,
}

impl Plan {
    fn add(&mut self, t: Tile) -> usize {
        if let Some(&i) = self.at.get(&(t.level, t.n)) {
            return i;
        }
        self.tiles.push(t);
        self.at.insert((t.level, t.n), self.tiles.len() - 1);
        self.tiles.len() - 1
    }
}

impl<R: TileReader + ?Sized> HashReader for TileHashReader<'_, R> {
    type Error = TileError;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TileError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.size;
        if size > MAX_TREE_SIZE {
            return Err(TreeError::TooLarge(size).into());
        }
        let in_tree = |l: u32, n: u64| Tile::in_tree(l, n, size);
        let mut plan = Plan {
            tiles: Vec::new(),
            at: HashMap::new(),
        };

        // 1. The tiles holding the tree's complete subtrees: together they
        //    must hash to the root, which authenticates them.
        let mut roots = Vec::new();
        subtree_nodes(0, size, &mut roots);
        let root_indexes: Vec<u64> = roots
            .iter()
            .map(|&(l, n)| stored_hash_index(l, n))
            .collect();
        let mut root_tiles = Vec::with_capacity(roots.len());
        for &x in &root_indexes {
            let (t, _) = Tile::for_index(x);
            let t = in_tree(t.level, t.n).ok_or(TileError::Plan("subtree tile not in tree"))?;
            root_tiles.push(plan.add(t));
        }
        let authenticated_by_root = plan.tiles.len();

        // 2. The tiles holding the requested hashes, each with the chain of
        //    parents up to one already planned (parents first).
        let mut index_tiles = Vec::with_capacity(indexes.len());
        for &x in indexes {
            let (level, n) = split_stored_hash_index(x);
            let covered = n
                .checked_add(1)
                .and_then(|m| m.checked_mul(1u64 << level.min(63)));
            if level >= 63 || covered.is_none_or(|c| c > size) {
                return Err(TileError::NotInTree { index: x, size });
            }
            let (t, _) = Tile::for_index(x);
            let mut chain = Vec::new();
            let mut k = 0;
            loop {
                if k >= 8 {
                    return Err(TileError::Plan("no authenticated ancestor tile"));
                }
                let p = in_tree(t.level + k, t.n >> (TILE_HEIGHT * k))
                    .ok_or(TileError::Plan("ancestor tile not in tree"))?;
                if plan.at.contains_key(&(p.level, p.n)) {
                    break;
                }
                if !p.is_full() {
                    return Err(TileError::Plan("partial tile outside the tree's subtrees"));
                }
                chain.push(p);
                k += 1;
            }
            for p in chain.into_iter().rev() {
                plan.add(p);
            }
            let i = *plan
                .at
                .get(&(t.level, t.n))
                .ok_or(TileError::Plan("lost the tile of a requested hash"))?;
            index_tiles.push(i);
        }

        // 3. Fetch, then check every length.
        let data = self
            .reader
            .read_tiles(&plan.tiles)
            .map_err(|e| TileError::Read(Box::new(e)))?;
        if data.len() != plan.tiles.len() {
            return Err(TileError::WrongCount {
                want: plan.tiles.len(),
                seen: data.len(),
            });
        }
        for (t, d) in plan.tiles.iter().zip(&data) {
            let want = t.width as usize * HASH_SIZE;
            if d.len() != want {
                return Err(TileError::WrongLength {
                    tile: t.to_string(),
                    want,
                    seen: d.len(),
                });
            }
        }

        // 4. Authenticate the subtree tiles against the root. Every hash in
        //    those (partial) tiles is part of some complete subtree.
        let mut folded: Option<Hash> = None;
        for (i, &x) in root_indexes.iter().enumerate().rev() {
            let j = root_tiles[i];
            let h = hash_from_tile(&plan.tiles[j], &data[j], x)?;
            folded = Some(match folded {
                None => h,
                Some(right) => node_hash(&h, &right),
            });
        }
        let seen = folded.unwrap_or_else(Hash::empty_tree);
        if seen != self.root {
            return Err(TileError::RootMismatch {
                size,
                want: self.root,
                seen,
            });
        }

        // 5. Authenticate every other tile (all full) against the hash its
        //    parent tile holds for it.
        for i in authenticated_by_root..plan.tiles.len() {
            let t = plan.tiles[i];
            let parent = *plan
                .at
                .get(&(t.level + 1, t.n >> TILE_HEIGHT))
                .ok_or(TileError::Plan("lost a parent tile"))?;
            let want = hash_from_tile(
                &plan.tiles[parent],
                &data[parent],
                stored_hash_index(TILE_HEIGHT * (t.level + 1), t.n),
            )?;
            let seen = tile_hash(&data[i]);
            if seen != want {
                return Err(TileError::ParentMismatch {
                    tile: t.to_string(),
                    want,
                    seen,
                });
            }
        }

        self.reader.save_tiles(&plan.tiles, &data);

        indexes
            .iter()
            .zip(index_tiles)
            .map(|(&x, j)| hash_from_tile(&plan.tiles[j], &data[j], x))
            .collect()
    }
}

/// The data of `tile` (its `width` hashes at level 8·L) from stored hashes:
/// what a log or mirror serves at the tile's path.
pub fn read_tile_data<R: HashReader + ?Sized>(tile: &Tile, r: &R) -> Result<Vec<u8>, R::Error> {
    if tile.level >= 8 || tile.width == 0 || tile.width > TILE_WIDTH {
        return Err(TreeError::TooLarge(u64::MAX).into());
    }
    let start = tile.n << TILE_HEIGHT;
    let last = (start + u64::from(tile.width)) << (TILE_HEIGHT * tile.level);
    if last > MAX_TREE_SIZE {
        return Err(TreeError::TooLarge(last).into());
    }
    let indexes: Vec<u64> = (0..u64::from(tile.width))
        .map(|i| stored_hash_index(TILE_HEIGHT * tile.level, start + i))
        .collect();
    let hashes = r.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::ShortRead {
            want: indexes.len(),
            seen: hashes.len(),
        }
        .into());
    }
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_tile_numbers_in_x_prefixed_groups() {
        let t = Tile {
            level: 2,
            n: 1234067,
            width: 3,
        };
        assert_eq!(t.path(Dialect::Tiles), "tile/2/x001/x234/067.p/3");
        assert_eq!(t.path(Dialect::SumDb), "tile/8/2/x001/x234/067.p/3");
        let b = Bundle { n: 0, width: 256 };
        assert_eq!(b.path(Dialect::Tiles), "tile/entries/000");
        assert_eq!(b.path(Dialect::SumDb), "tile/8/data/000");
        let b = Bundle { n: 1000, width: 5 };
        assert_eq!(b.path(Dialect::Tiles), "tile/entries/x001/000.p/5");
    }

    #[test]
    fn parses_the_canonical_paths_it_formats() {
        for d in [Dialect::Tiles, Dialect::SumDb] {
            for (level, n, width) in [(0, 0, 256), (0, 0, 1), (1, 999, 255), (3, 1234067, 17)] {
                let t = Tile { level, n, width };
                assert_eq!(parse_tile_path(d, &t.path(d)), Ok(TilePath::Hashes(t)));
            }
            let b = Bundle { n: 1234, width: 9 };
            assert_eq!(parse_tile_path(d, &b.path(d)), Ok(TilePath::Entries(b)));
        }
    }

    #[test]
    fn refuses_non_canonical_and_foreign_tile_paths() {
        for p in [
            "tile/0/0",
            "tile/0/0000",
            "tile/00/000",
            "tile/64/000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x001",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/07",
            "tile/0/000.p/",
            "tile/0/000/",
            "tile/0/+01",
            "tile/0/x01/000",
            "tile/8/0/000",
            "tile/data/000",
            "tile/entries/000.p/1/2",
            "/tile/0/000",
            "tile/0/x001/x002/x003/x004/x005/x006/x007/008",
            "tile/7/001",
        ] {
            assert!(parse_tile_path(Dialect::Tiles, p).is_err(), "{p}");
        }
        for p in [
            "tile/0/000",
            "tile/8/entries/000",
            "tile/7/0/000",
            "tile/8/00/000",
        ] {
            assert!(parse_tile_path(Dialect::SumDb, p).is_err(), "{p}");
        }
        let long = format!("tile/0/{}", "x001/".repeat(30));
        assert_eq!(
            parse_tile_path(Dialect::Tiles, &long),
            Err(TilePathError::TooLong(long.len()))
        );
    }

    #[test]
    fn tile_widths_follow_the_spec_example() {
        // A tree of 70,000: 273 full level-0 tiles, a partial of 112, one
        // full level-1 tile, a partial of 17, and a level-2 tile of width 1.
        let s = 70_000;
        assert_eq!(Tile::width_in_tree(0, 272, s), Some(256));
        assert_eq!(Tile::width_in_tree(0, 273, s), Some(112));
        assert_eq!(Tile::width_in_tree(0, 274, s), None);
        assert_eq!(Tile::width_in_tree(1, 0, s), Some(256));
        assert_eq!(Tile::width_in_tree(1, 1, s), Some(17));
        assert_eq!(Tile::width_in_tree(2, 0, s), Some(1));
        assert_eq!(Tile::width_in_tree(3, 0, s), None);
        assert_eq!(Tile::width_in_tree(1, 0, 256), Some(1));
    }

    #[test]
    fn entry_bundles_are_bounded_and_exact() {
        let b = format_entry_bundle(&[&b"one"[..], b"two", b""]).unwrap();
        assert_eq!(
            parse_entry_bundle(&b, 3).unwrap(),
            vec![&b"one"[..], b"two", b""]
        );
        assert!(matches!(
            parse_entry_bundle(&b, 4),
            Err(BundleError::Truncated { entry: 3, .. })
        ));
        assert!(matches!(
            parse_entry_bundle(&b, 2),
            Err(BundleError::TrailingData { .. })
        ));
        assert!(matches!(
            parse_entry_bundle(&[0, 9, 1], 1),
            Err(BundleError::Truncated {
                want: 9,
                seen: 1,
                ..
            })
        ));
        assert_eq!(parse_entry_bundle(&b, 0), Err(BundleError::BadWidth(0)));
        assert_eq!(parse_entry_bundle(&b, 257), Err(BundleError::BadWidth(257)));
        let big = vec![0u8; 70_000];
        assert!(matches!(
            format_entry_bundle(&[big]),
            Err(BundleError::EntryTooLarge { .. })
        ));
    }

    #[test]
    fn data_tiles_split_at_blank_lines() {
        let d = b"a v1 h1:x\na v1/go.mod h1:y\n\nb v2 h1:z\nb v2/go.mod h1:w\n\n";
        let recs = parse_data_tile(d, 2).unwrap();
        assert_eq!(recs[0], b"a v1 h1:x\na v1/go.mod h1:y\n");
        assert_eq!(recs[1], b"b v2 h1:z\nb v2/go.mod h1:w\n");
        // The last blank line may be missing.
        assert_eq!(parse_data_tile(&d[..d.len() - 1], 2).unwrap(), recs);
        assert!(parse_data_tile(d, 3).is_err());
        assert!(parse_data_tile(d, 1).is_err());
        assert!(parse_data_tile(b"a\tb\n\n", 1).is_err());
        assert!(parse_data_tile(b"no newline", 1).is_err());
        assert!(parse_data_tile(b"\xff\n\n", 1).is_err());
    }
}
