//! The checksum-database follower of one Go-module upstream: it accepts
//! signed trees from the upstream's checksum database (pinned key, optional
//! witness policy, consistency with the tree last accepted proven from
//! tiles, recorded in the trust state), looks module versions up and proves
//! their records included in an accepted tree, and keeps what it verified
//! (records, tiles, module bytes) so it can be served again, also offline.
//!
//! Called by the Go-modules front ([`super::front`]). It talks to the
//! database only through an [`UpstreamClient`], writes trust decisions only
//! through [`TrustState::advance`], and keeps bytes in the blob store; its
//! own index (which tile path, record or module file names which blob) is a
//! small redb file, `<data_dir>/gomod.redb`, written only after the thing it
//! names was verified.
//!
//! Every tile is authenticated before use by [`TileHashReader`] against the
//! signed tree being read: the consistency proof from the accepted tree to a
//! new one and the leaf hash of a looked-up record are both read from tiles
//! authenticated against the new (signature-checked) tree, and the proof is
//! then checked against the accepted root by the trust state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use redb::{ReadableDatabase, TableDefinition};

use crate::gomod::module::ModuleVersion;
use crate::gomod::sumdb::{self, Record};
use crate::metrics::Metrics;
use crate::store::{Blob, Digest, FsBlobStore, StoreError};
use crate::tlog::merkle::{leaf_hash, prove_tree, stored_hash_index, HashReader, HASH_SIZE};
use crate::tlog::note::VerifierKey;
use crate::tlog::policy::Policy;
use crate::tlog::tile::{
    parse_tile_path, read_tile_data, Dialect, Tile, TileError, TileHashReader, TilePath, TileReader,
};
use crate::tlog::Checkpoint;
use crate::upstream::UpstreamError;
use crate::upstream::{UpstreamClient, UpstreamRequest};
use crate::verify::trust::{Accepted, ConsistencyProof, TrustError, TrustState, Verified};

/// (upstream, key) → blob digest. Keys: `tile/8/...` (a verified tile),
/// `mod:<module>@<version>` and `zip:<module>@<version>` (verified module
/// files).
const BLOBS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("gomod_blobs");
/// (upstream, `<module>@<version>`) → `<id>\n<record text>` of a record
/// proven included in an accepted tree.
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("gomod_records");

/// Largest tile fetched (a full hash tile is 8 KiB; a data tile is bounded
/// by [`sumdb::MAX_TILE_WIDTH`] records).
const MAX_TILE_BYTES: u64 = (sumdb::MAX_TILE_WIDTH * (sumdb::MAX_RECORD_TEXT + 22)) as u64;

/// The shared index of verified Go-module objects (`<data_dir>/gomod.redb`).
#[derive(Clone)]
pub struct GoIndex {
    db: Arc<redb::Database>,
}

impl GoIndex {
    /// Opens or creates the index file.
    pub fn open(path: &std::path::Path) -> Result<GoIndex, VerifyError> {
        let db = redb::Database::create(path).map_err(|e| VerifyError::Index(e.to_string()))?;
        let txn = db.begin_write().map_err(idx)?;
        txn.open_table(BLOBS).map_err(idx)?;
        txn.open_table(RECORDS).map_err(idx)?;
        txn.commit().map_err(idx)?;
        Ok(GoIndex { db: Arc::new(db) })
    }

    fn get(
        &self,
        table: TableDefinition<(&str, &str), &[u8]>,
        up: &str,
        key: &str,
    ) -> Option<Vec<u8>> {
        let txn = self.db.begin_read().ok()?;
        let t = txn.open_table(table).ok()?;
        let v = t.get((up, key)).ok()??;
        Some(v.value().to_vec())
    }

    fn put(
        &self,
        table: TableDefinition<(&str, &str), &[u8]>,
        up: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), VerifyError> {
        let txn = self.db.begin_write().map_err(idx)?;
        {
            let mut t = txn.open_table(table).map_err(idx)?;
            t.insert((up, key), value).map_err(idx)?;
        }
        txn.commit().map_err(idx)
    }
}

fn idx(e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Index(e.to_string())
}

/// Why something from the checksum database was not accepted. The text
/// names the check, and what was expected and seen.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("signature: the signed tree is not signed by the pinned key {key}: {detail}")]
    Signature { key: String, detail: String },
    #[error("witness policy: {0}")]
    Policy(String),
    #[error("format: {what}: {detail}")]
    Format { what: &'static str, detail: String },
    #[error("tiles: {0}")]
    Tiles(String),
    #[error("inclusion: record {id} of {module}: expected leaf hash {expected} (from tiles of the tree of size {size}), the record hashes to {seen}")]
    Inclusion {
        module: String,
        id: u64,
        size: u64,
        expected: String,
        seen: String,
    },
    #[error("lookup: asked for {expected}, the database answered a record of {seen}")]
    WrongRecord { expected: String, seen: String },
    #[error("h1: {what} of {module}: the checksum database says {expected}, the upstream's bytes hash to {seen}")]
    Hash {
        what: &'static str,
        module: String,
        expected: String,
        seen: String,
    },
    #[error("offline: {0}")]
    Offline(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(String),
}

impl VerifyError {
    /// The check name (metrics label and the JSON error's `check`).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Upstream(_) => "upstream",
            VerifyError::Trust(e) => e.check(),
            VerifyError::Signature { .. } => "signature",
            VerifyError::Policy(_) => "witness-policy",
            VerifyError::Format { .. } => "format",
            VerifyError::Tiles(_) => "tiles",
            VerifyError::Inclusion { .. } => "inclusion",
            VerifyError::WrongRecord { .. } => "lookup",
            VerifyError::Hash { .. } => "h1",
            VerifyError::Offline(_) => "offline",
            VerifyError::Store(_) => "store",
            VerifyError::Index(_) => "index",
        }
    }

    /// (expected, seen) where the check has them.
    pub fn expected_seen(&self) -> Option<(String, String)> {
        match self {
            VerifyError::Inclusion { expected, seen, .. }
            | VerifyError::WrongRecord { expected, seen }
            | VerifyError::Hash { expected, seen, .. } => Some((expected.clone(), seen.clone())),
            VerifyError::Trust(TrustError::Fork { expected, seen, .. }) => {
                Some((expected.to_string(), seen.to_string()))
            }
            VerifyError::Trust(TrustError::Rewind { expected, seen, .. }) => {
                Some((format!("size >= {expected}"), format!("size {seen}")))
            }
            VerifyError::Trust(TrustError::Inconsistent {
                old_size,
                old_root,
                new_size,
                new_root,
                error,
                ..
            }) => Some((
                format!(
                    "tree {new_size} ({new_root}) extends accepted tree {old_size} ({old_root})"
                ),
                format!("consistency proof from tiles: {error}"),
            )),
            VerifyError::Trust(TrustError::OriginChanged { expected, seen, .. }) => {
                Some((expected.clone(), seen.clone()))
            }
            VerifyError::Trust(TrustError::Stale {
                size, age, max_age, ..
            }) => Some((
                format!(
                    "a tree at most {} old",
                    humantime::format_duration(*max_age)
                ),
                format!(
                    "tree {size} accepted {} ago",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                ),
            )),
            _ => None,
        }
    }

    /// Whether the upstream could not be reached (or timed out): the only
    /// errors after which verified state may be served offline.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            VerifyError::Upstream(
                UpstreamError::Connect { .. }
                    | UpstreamError::Dns { .. }
                    | UpstreamError::Timeout { .. }
                    | UpstreamError::CircuitOpen { .. }
                    | UpstreamError::Protocol { .. }
            )
        )
    }

    /// Whether the upstream said the thing does not exist (404/410).
    pub fn is_not_found(&self) -> bool {
        matches!(self, VerifyError::Upstream(UpstreamError::Status { code, .. }) if *code == 404 || *code == 410)
    }

    /// The HTTP status for a client.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::Upstream(e) => match e {
                UpstreamError::Status { code, .. } if *code == 404 || *code == 410 => 404,
                e => e.http_status(),
            },
            VerifyError::Store(_) | VerifyError::Index(_) => 500,
            VerifyError::Offline(_) => 503,
            _ => 502,
        }
    }
}

/// A record proven included in an accepted tree.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    pub id: u64,
    pub record: Record,
    /// Served from the index, not looked up now.
    pub cached: bool,
}

/// The checksum-database follower of one upstream.
pub struct SumdbVerifier {
    upstream: String,
    /// The database name (`sum.golang.org`).
    pub name: String,
    key: VerifierKey,
    policy: Option<Policy>,
    client: UpstreamClient,
    trust: TrustState,
    blobs: FsBlobStore,
    index: GoIndex,
    metrics: Arc<Metrics>,
    max_age: Duration,
    /// Serialises tree acceptance (one consistency proof at a time).
    advance_lock: tokio::sync::Mutex<()>,
}

impl SumdbVerifier {
    /// A follower for `upstream`'s checksum database at `client`'s base URL.
    /// A witness policy must list the pinned key as a log key.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        upstream: &str,
        name: &str,
        key: VerifierKey,
        policy: Option<Policy>,
        client: UpstreamClient,
        trust: TrustState,
        blobs: FsBlobStore,
        index: GoIndex,
        metrics: Arc<Metrics>,
        max_age: Duration,
    ) -> Result<SumdbVerifier, String> {
        if let Some(p) = &policy {
            let pinned = p.log_keys().iter().any(|k| {
                k.name() == key.name()
                    && k.key_id() == key.key_id()
                    && k.public_key() == key.public_key()
            });
            if !pinned {
                return Err(format!(
                    "upstream {upstream}: witness policy does not list the pinned sumdb key {} as a log",
                    key.name()
                ));
            }
        }
        Ok(SumdbVerifier {
            upstream: upstream.to_string(),
            name: name.to_string(),
            key,
            policy,
            client,
            trust,
            blobs,
            index,
            metrics,
            max_age,
            advance_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The upstream's configured name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Fetches `/latest` and accepts it; returns the accepted checkpoint.
    pub async fn refresh(&self) -> Result<Accepted, VerifyError> {
        let res = self
            .client
            .send(UpstreamRequest::get("/latest").max_response_bytes(sumdb::MAX_NOTE_SIZE as u64))
            .await?
            .error_for_status()?;
        self.accept_note(&res.body).await
    }

    /// The newest verified tree for serving: a fresh one, or (upstream
    /// unreachable) the last one with a `Warning` value. A tree older than
    /// `max_checkpoint_age` is refreshed first; if the upstream answers but
    /// cannot be verified, it is refused.
    pub async fn current(&self) -> Result<(Accepted, Option<String>), VerifyError> {
        let now = SystemTime::now();
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        let max = self.max_age;
        let v = blocking(move || trust.last_verified(&up, now, max)).await;
        match v {
            Ok(v) if !v.stale => {
                self.gauge_age(&v);
                Ok((v.checkpoint, None))
            }
            Ok(v) => match self.refresh().await {
                Ok(a) => Ok((a, None)),
                Err(e) if e.is_unreachable() => {
                    self.gauge_age(&v);
                    let w = v.warning();
                    Ok((v.checkpoint, w))
                }
                Err(e) => Err(e),
            },
            Err(TrustError::NoCheckpoint { .. }) => Ok((self.refresh().await?, None)),
            Err(e) => Err(e.into()),
        }
    }

    fn gauge_age(&self, v: &Verified) {
        self.metrics
            .set_checkpoint_age(&self.upstream, v.age.as_secs_f64());
    }

    /// Accepts a signed tree note: signature (and witness policy), then
    /// consistency with the accepted tree from authenticated tiles, then
    /// the trust state's rules.
    pub async fn accept_note(&self, note: &[u8]) -> Result<Accepted, VerifyError> {
        let r = self.accept_note_inner(note).await;
        let check = match &r {
            Ok(_) => "checkpoint",
            Err(e) => e.check(),
        };
        if !matches!(&r, Err(e) if e.is_unreachable()) {
            self.metrics.verification(&self.upstream, check, r.is_ok());
        }
        r
    }

    async fn accept_note_inner(&self, note: &[u8]) -> Result<Accepted, VerifyError> {
        let cp = self.open_note(note)?;
        let _guard = self.advance_lock.lock().await;
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        let latest = blocking(move || trust.latest(&up)).await?;
        let mut proof = Vec::new();
        let mut from = 0;
        // Tiles read here are authenticated against the candidate tree,
        // which is signed but not yet known to be consistent with what was
        // accepted: they are kept aside and stored only once the trust
        // state accepts the tree (a refused fork must leave nothing behind).
        let mut candidate_tiles = Vec::new();
        if let Some(old) = &latest {
            if cp.size > old.size {
                from = old.size;
                let (size, root) = (cp.size, cp.root);
                let old_size = old.size;
                let (p, tiles) = self
                    .with_unsaved_tiles(size, root, move |r| prove_tree(size, old_size, r))
                    .await;
                proof = p?;
                candidate_tiles = tiles;
            }
        }
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        let note = note.to_vec();
        let adv = blocking(move || {
            trust.advance(
                &up,
                &note,
                &cp,
                ConsistencyProof {
                    from_size: from,
                    hashes: &proof,
                },
                SystemTime::now(),
            )
        })
        .await?;
        for (path, data) in candidate_tiles {
            self.store_tile(&path, Bytes::from(data)).await?;
        }
        let a = adv.accepted().clone();
        self.metrics.set_checkpoint_age(&self.upstream, 0.0);
        self.metrics
            .set_checkpoint_time(&self.upstream, a.first_accepted);
        Ok(a)
    }

    /// Checks a tree note's signature (and policy) and parses the tree.
    fn open_note(&self, note: &[u8]) -> Result<Checkpoint, VerifyError> {
        if note.len() > sumdb::MAX_NOTE_SIZE {
            return Err(VerifyError::Format {
                what: "signed tree",
                detail: format!("{} bytes, more than {}", note.len(), sumdb::MAX_NOTE_SIZE),
            });
        }
        let text = if let Some(p) = &self.policy {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let v = p
                .verify(note, now)
                .map_err(|e| VerifyError::Policy(e.to_string()))?;
            // The policy may list other log keys (of the same name, even):
            // the pinned key itself must have signed.
            Checkpoint::open(note, std::slice::from_ref(&self.key)).map_err(|e| {
                VerifyError::Signature {
                    key: format!("{}+{:08x}", self.key.name(), self.key.key_id()),
                    detail: e.to_string(),
                }
            })?;
            v.text
        } else {
            let (_, v) = Checkpoint::open(note, std::slice::from_ref(&self.key)).map_err(|e| {
                VerifyError::Signature {
                    key: format!("{}+{:08x}", self.key.name(), self.key.key_id()),
                    detail: e.to_string(),
                }
            })?;
            v.text
        };
        sumdb::parse_tree(&text).map_err(|e| VerifyError::Format {
            what: "signed tree",
            detail: e.to_string(),
        })
    }

    /// Runs `f` over a hash reader of the tree (`size`, `root`), which must
    /// be an accepted tree, reading authenticated tiles (from the index,
    /// else from the database); tiles authenticated on the way are stored.
    async fn with_tiles<T: Send + 'static>(
        &self,
        size: u64,
        root: crate::tlog::Hash,
        f: impl FnOnce(&TileHashReader<'_, Fetcher>) -> Result<T, TileError> + Send + 'static,
    ) -> Result<T, VerifyError> {
        let (out, verified) = self.with_unsaved_tiles(size, root, f).await;
        for (path, data) in verified {
            self.store_tile(&path, Bytes::from(data)).await?;
        }
        out
    }

    /// [`Self::with_tiles`] without storing anything: returns the tiles
    /// authenticated against (`size`, `root`) on the way, for the caller to
    /// store once that tree is accepted.
    async fn with_unsaved_tiles<T: Send + 'static>(
        &self,
        size: u64,
        root: crate::tlog::Hash,
        f: impl FnOnce(&TileHashReader<'_, Fetcher>) -> Result<T, TileError> + Send + 'static,
    ) -> (Result<T, VerifyError>, Vec<(String, Vec<u8>)>) {
        let fetcher = Fetcher {
            upstream: self.upstream.clone(),
            client: self.client.clone(),
            blobs: self.blobs.clone(),
            index: self.index.clone(),
            handle: tokio::runtime::Handle::current(),
            verified: Mutex::new(Vec::new()),
        };
        let joined = tokio::task::spawn_blocking(move || {
            let out = {
                let reader = TileHashReader::new(size, root, &fetcher);
                f(&reader)
            };
            (out, fetcher)
        })
        .await;
        let (out, fetcher) = match joined {
            Ok(v) => v,
            Err(e) => {
                return (
                    Err(VerifyError::Tiles(format!("tile task failed: {e}"))),
                    Vec::new(),
                )
            }
        };
        let out = out.map_err(|e| match e {
            TileError::Read(inner) => match inner.downcast::<FetchError>() {
                Ok(fe) => match *fe {
                    FetchError::Upstream(u) => VerifyError::Upstream(u),
                    FetchError::Store(s) => VerifyError::Index(s),
                },
                Err(other) => VerifyError::Tiles(format!("reading tiles: {other}")),
            },
            e => VerifyError::Tiles(e.to_string()),
        });
        let verified =
            std::mem::take(&mut *fetcher.verified.lock().unwrap_or_else(|p| p.into_inner()));
        (out, verified)
    }

    async fn store_tile(&self, path: &str, data: Bytes) -> Result<(), VerifyError> {
        if self.index.get(BLOBS, &self.upstream, path).is_some() {
            return Ok(());
        }
        let d = Digest::of(&data);
        self.blobs.put(&d, data).await?;
        self.index.put(BLOBS, &self.upstream, path, d.as_bytes())
    }

    /// A verified tile by its sumdb path (`tile/8/...`), from the store or
    /// fetched and authenticated against the newest accepted tree. Data
    /// tiles are checked record by record against the authenticated leaf
    /// hashes.
    pub async fn tile(&self, path: &str) -> Result<(Bytes, Option<String>), VerifyError> {
        let parsed = parse_tile_path(Dialect::SumDb, path).map_err(|e| VerifyError::Format {
            what: "tile path",
            detail: e.to_string(),
        })?;
        let canonical = match parsed {
            TilePath::Hashes(t) => t.path(Dialect::SumDb),
            TilePath::Entries(b) => b.path(Dialect::SumDb),
        };
        // Quarantine refuses even stored tiles.
        let (tree, warning) = self.current().await?;
        if let Some(b) = self.blob_for(&canonical).await? {
            self.metrics.cache("gomod.tile", true);
            return Ok((b, warning));
        }
        self.metrics.cache("gomod.tile", false);
        let (size, root) = (tree.size, tree.root);
        match parsed {
            TilePath::Hashes(t) => {
                let covered = (t.n.saturating_mul(256).saturating_add(u64::from(t.width)))
                    .checked_shl(8 * t.level)
                    .unwrap_or(u64::MAX);
                if t.level >= 8 || covered > size {
                    return Err(VerifyError::Upstream(UpstreamError::Status {
                        upstream: self.upstream.clone(),
                        url: path.to_string(),
                        code: 404,
                    }));
                }
                let data = self
                    .with_tiles(size, root, move |r| read_tile_data(&t, r))
                    .await?;
                let data = Bytes::from(data);
                self.store_tile(&canonical, data.clone()).await?;
                Ok((data, warning))
            }
            TilePath::Entries(b) => {
                let start = b.start();
                if start.saturating_add(u64::from(b.width)) > size {
                    return Err(VerifyError::Upstream(UpstreamError::Status {
                        upstream: self.upstream.clone(),
                        url: path.to_string(),
                        code: 404,
                    }));
                }
                let res = self
                    .client
                    .send(
                        UpstreamRequest::get(format!("/{canonical}"))
                            .max_response_bytes(MAX_TILE_BYTES),
                    )
                    .await?
                    .error_for_status()?;
                let records = sumdb::parse_data_tile_raw(&res.body, start, b.width as usize)
                    .map_err(|e| VerifyError::Format {
                        what: "data tile",
                        detail: e.to_string(),
                    })?;
                let indexes: Vec<u64> = (0..u64::from(b.width))
                    .map(|i| stored_hash_index(0, start + i))
                    .collect();
                let want = self
                    .with_tiles(size, root, move |r| r.read_hashes(&indexes))
                    .await?;
                for ((id, text), w) in records.iter().zip(&want) {
                    let seen = leaf_hash(text.as_bytes());
                    if seen != *w {
                        return Err(VerifyError::Inclusion {
                            module: format!("data tile {canonical}"),
                            id: *id,
                            size,
                            expected: w.to_string(),
                            seen: seen.to_string(),
                        });
                    }
                }
                self.store_tile(&canonical, res.body.clone()).await?;
                Ok((res.body, warning))
            }
        }
    }

    fn blob_digest(&self, key: &str) -> Option<Digest> {
        let d = self.index.get(BLOBS, &self.upstream, key)?;
        let arr = <[u8; 32]>::try_from(d.as_slice()).ok()?;
        Some(Digest::from_bytes(arr))
    }

    /// A small stored blob (a tile), read whole.
    async fn blob_for(&self, key: &str) -> Result<Option<Bytes>, VerifyError> {
        let Some(d) = self.blob_digest(key) else {
            return Ok(None);
        };
        Ok(self.blobs.get(&d).await?)
    }

    /// Looks `m` up: from the index if it was verified before (the upstream
    /// must not be quarantined), else from the database with its inclusion
    /// proven from tiles in the tree the lookup names (accepted first).
    pub async fn lookup(&self, m: &ModuleVersion) -> Result<VerifiedRecord, VerifyError> {
        let key = format!("{}@{}", m.path, m.version);
        if let Some(raw) = self.index.get(RECORDS, &self.upstream, &key) {
            // Refuse a quarantined upstream even for stored records.
            let trust = self.trust.clone();
            let up = self.upstream.clone();
            let status = blocking(move || trust.status(&up)).await?;
            if let crate::verify::trust::Status::Quarantined(_) = status {
                let trust = self.trust.clone();
                let up = self.upstream.clone();
                let max = self.max_age;
                blocking(move || trust.last_verified(&up, SystemTime::now(), max)).await?;
            }
            if let Some(v) = decode_record(&raw) {
                self.metrics.cache("gomod.record", true);
                return Ok(v);
            }
        }
        self.metrics.cache("gomod.record", false);
        let r = self.lookup_remote(m, &key).await;
        if !matches!(&r, Err(e) if e.is_unreachable() || e.is_not_found()) {
            let check = match &r {
                Ok(_) => "inclusion",
                Err(e) => e.check(),
            };
            self.metrics.verification(&self.upstream, check, r.is_ok());
        }
        r
    }

    async fn lookup_remote(
        &self,
        m: &ModuleVersion,
        key: &str,
    ) -> Result<VerifiedRecord, VerifyError> {
        let res = self
            .client
            .send(
                UpstreamRequest::get(format!("/lookup/{}", m.escaped()))
                    .max_response_bytes(sumdb::MAX_LOOKUP_SIZE as u64),
            )
            .await?
            .error_for_status()?;
        let lookup = sumdb::Lookup::parse(&res.body).map_err(|e| VerifyError::Format {
            what: "lookup response",
            detail: e.to_string(),
        })?;
        let got = lookup.record.module();
        if got.path != m.path || got.version != m.version {
            return Err(VerifyError::WrongRecord {
                expected: m.to_string(),
                seen: got.to_string(),
            });
        }
        let tree = self.accept_note(lookup.note.as_bytes()).await?;
        let id = lookup.id;
        if id >= tree.size {
            return Err(VerifyError::Inclusion {
                module: m.to_string(),
                id,
                size: tree.size,
                expected: format!("record id < {}", tree.size),
                seen: format!("record id {id}"),
            });
        }
        let want = self
            .with_tiles(tree.size, tree.root, move |r| {
                r.read_hashes(&[stored_hash_index(0, id)])
            })
            .await?;
        let seen = lookup.record.leaf_hash();
        let expected = want.first().copied().unwrap_or_default();
        if seen != expected {
            return Err(VerifyError::Inclusion {
                module: m.to_string(),
                id,
                size: tree.size,
                expected: expected.to_string(),
                seen: seen.to_string(),
            });
        }
        let mut raw = format!("{id}\n").into_bytes();
        raw.extend_from_slice(lookup.record.text().as_bytes());
        self.index.put(RECORDS, &self.upstream, key, &raw)?;
        Ok(VerifiedRecord {
            id,
            record: lookup.record,
            cached: false,
        })
    }

    /// A verified module file (`kind` is `mod` or `zip`) from the store,
    /// opened for streaming.
    pub async fn stored_file(
        &self,
        kind: &str,
        m: &ModuleVersion,
    ) -> Result<Option<Blob>, VerifyError> {
        let Some(d) = self.blob_digest(&format!("{kind}:{}@{}", m.path, m.version)) else {
            return Ok(None);
        };
        Ok(self.blobs.get_stream(&d).await?)
    }

    /// Stores a module file whose h1 matched the verified record.
    pub async fn store_file(
        &self,
        kind: &str,
        m: &ModuleVersion,
        data: Bytes,
    ) -> Result<(), VerifyError> {
        let d = Digest::of(&data);
        self.blobs.put(&d, data).await?;
        self.index.put(
            BLOBS,
            &self.upstream,
            &format!("{kind}:{}@{}", m.path, m.version),
            d.as_bytes(),
        )
    }
}

fn decode_record(raw: &[u8]) -> Option<VerifiedRecord> {
    let s = std::str::from_utf8(raw).ok()?;
    let (id, text) = s.split_once('\n')?;
    Some(VerifiedRecord {
        id: id.parse().ok()?,
        record: Record::parse(text).ok()?,
        cached: true,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TrustError> + Send + 'static,
) -> Result<T, TrustError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TrustError::Storage {
            op: "task",
            detail: e.to_string(),
        })?
}

/// Reads tiles for a [`TileHashReader`] (on a blocking thread): stored
/// verified tiles first, else from the database. Remembers the tiles the
/// reader authenticated so the caller stores them.
pub struct Fetcher {
    upstream: String,
    client: UpstreamClient,
    blobs: FsBlobStore,
    index: GoIndex,
    handle: tokio::runtime::Handle,
    verified: Mutex<Vec<(String, Vec<u8>)>>,
}

/// A tile fetch error, kept typed so an unreachable upstream is told apart.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("{0}")]
    Store(String),
}

impl TileReader for Fetcher {
    type Error = FetchError;

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, FetchError> {
        self.handle.block_on(async {
            let mut out = Vec::with_capacity(tiles.len());
            for t in tiles {
                let path = t.path(Dialect::SumDb);
                if let Some(d) = self.index.get(BLOBS, &self.upstream, &path) {
                    if let Ok(arr) = <[u8; 32]>::try_from(d.as_slice()) {
                        if let Some(b) = self
                            .blobs
                            .get(&Digest::from_bytes(arr))
                            .await
                            .map_err(|e| FetchError::Store(e.to_string()))?
                        {
                            out.push(b.to_vec());
                            continue;
                        }
                    }
                }
                let res = self
                    .client
                    .send(
                        UpstreamRequest::get(format!("/{path}"))
                            .max_response_bytes(u64::from(t.width) * HASH_SIZE as u64),
                    )
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(FetchError::Upstream)?;
                out.push(res.body.to_vec());
            }
            Ok(out)
        })
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        for (t, d) in tiles.iter().zip(data) {
            v.push((t.path(Dialect::SumDb), d.clone()));
        }
    }
}
