//! The checksum-database follower of one Go-module upstream: it accepts
//! signed trees from the upstream's checksum database (pinned key, optional
//! witness policy, consistency with the tree last accepted proven from
//! tiles, recorded in the trust state), looks module versions up and proves
//! their records included in an accepted tree, and keeps what it verified
//! (records, tiles, module bytes) so it can be served again, also offline.
//!
//! Called by the Go-modules front ([`super::front`]), which passes every
//! request through [`SumdbVerifier::gate`] first. It talks to the database
//! only through an [`UpstreamClient`] (its own requests, `/latest`, tiles
//! and lookups, marked [`UpstreamRequest::probe`]), writes trust decisions
//! only through [`TrustState::advance_at`] and [`TrustState::prove_prefix`],
//! and keeps bytes in the blob store; its own index (which tile path,
//! record or module file names which blob, per trust epoch) is a small redb
//! file, `<data_dir>/gomod.redb`, written only after the thing it names was
//! verified.
//!
//! Every tile is authenticated before use by [`TileHashReader`] against the
//! signed tree being read: the consistency proof from the accepted tree to a
//! new one and the leaf hash of a looked-up record are both read from tiles
//! authenticated against the new (signature-checked) tree, and the proof is
//! then checked against the accepted root by the trust state. A tree older
//! than the accepted one (a lagging replica's `/latest` or lookup) is proven
//! a prefix of the accepted tree from the accepted tree's tiles, as Go's own
//! client does. Network reads come first; the trust state then decides in
//! one transaction, and a lost race with a concurrent advance is retried.
//! With a witness policy, the tree's signed time is the newest time its
//! quorum cosigned it (freshness is measured from it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use redb::{ReadableDatabase, TableDefinition};

use crate::gomod::module::ModuleVersion;
use crate::gomod::sumdb::{self, Record};
use crate::metrics::Metrics;
use crate::store::{Blob, Digest, FsBlobStore, Spooled, StoreError};
use crate::tlog::merkle::{leaf_hash, prove_tree, stored_hash_index, HashReader, HASH_SIZE};
use crate::tlog::note::VerifierKey;
use crate::tlog::policy::Policy;
use crate::tlog::tile::{
    parse_tile_path, read_tile_data, Dialect, Tile, TileError, TileHashReader, TilePath, TileReader,
};
use crate::tlog::Checkpoint;
use crate::upstream::{
    StatusClass, UpstreamClient, UpstreamError, UpstreamRequest, UpstreamResponse,
};
use crate::verify::trust::{Accepted, ConsistencyProof, TrustError, TrustState, Verified};

/// (upstream, epoch, key) → blob digest. Keys: `tile/8/...` (a verified
/// tile), `mod:<module>@<version>` and `zip:<module>@<version>` (verified
/// module files). The epoch is the trust state's epoch the thing was
/// proven in: after `upstream clear --rebase` nothing of an older epoch is
/// served.
const BLOBS: TableDefinition<(&str, u64, &str), &[u8]> = TableDefinition::new("gomod_blobs_e");
/// (upstream, epoch, `<module>@<version>`) → `<id>\n<record text>` of a
/// record proven included in a tree accepted in that epoch.
const RECORDS: TableDefinition<(&str, u64, &str), &[u8]> = TableDefinition::new("gomod_records_e");
/// How long a tree fetched from `/latest` and accepted is used again
/// before the database is asked anew: concurrent and repeated requests for
/// `/sumdb/<name>/latest` (and freshness checks) cost one upstream round
/// trip per upstream in this time.
pub const LATEST_TTL: Duration = Duration::from_secs(5);

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

    /// The value under (`up`, `epoch`, `key`); a read error is an error
    /// (never taken for "not stored", which would refetch silently).
    fn get(
        &self,
        table: TableDefinition<(&str, u64, &str), &[u8]>,
        up: &str,
        epoch: u64,
        key: &str,
    ) -> Result<Option<Vec<u8>>, VerifyError> {
        let txn = self.db.begin_read().map_err(idx)?;
        let t = txn.open_table(table).map_err(idx)?;
        Ok(t.get((up, epoch, key))
            .map_err(idx)?
            .map(|v| v.value().to_vec()))
    }

    fn put(
        &self,
        table: TableDefinition<(&str, u64, &str), &[u8]>,
        up: &str,
        epoch: u64,
        key: &str,
        value: &[u8],
    ) -> Result<(), VerifyError> {
        let txn = self.db.begin_write().map_err(idx)?;
        {
            let mut t = txn.open_table(table).map_err(idx)?;
            t.insert((up, epoch, key), value).map_err(idx)?;
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
    Trust(Box<TrustError>),
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
    #[error("status: {url} answered {code}; only 200 is accepted")]
    Status { url: String, code: u16 },
    #[error("zip: {module}: {detail}")]
    Zip { module: String, detail: String },
    #[error("offline: {0}")]
    Offline(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(String),
    /// One outcome shared by the requests that waited for it (the single
    /// flight of `/latest`).
    #[error(transparent)]
    Shared(Arc<VerifyError>),
}

impl VerifyError {
    /// The check name (metrics label and the JSON error's `check`).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Shared(e) => e.check(),
            VerifyError::Upstream(UpstreamError::Status { .. }) => "upstream-status",
            VerifyError::Upstream(_) if self.is_unreachable() => "unreachable",
            VerifyError::Upstream(_) => "upstream",
            VerifyError::Trust(e) => e.check(),
            VerifyError::Signature { .. } => "signature",
            VerifyError::Policy(_) => "witness",
            VerifyError::Format { .. } => "format",
            VerifyError::Tiles(_) => "tiles",
            VerifyError::Inclusion { .. } => "inclusion",
            VerifyError::WrongRecord { .. } => "lookup",
            VerifyError::Hash { .. } => "h1",
            VerifyError::Status { .. } => "upstream-status",
            VerifyError::Zip { .. } => "zip",
            VerifyError::Offline(_) => "offline",
            VerifyError::Store(_) => "store",
            VerifyError::Index(_) => "index",
        }
    }

    /// (expected, seen) where the check has them.
    pub fn expected_seen(&self) -> Option<(String, String)> {
        match self {
            VerifyError::Shared(e) => e.expected_seen(),
            VerifyError::Inclusion { expected, seen, .. }
            | VerifyError::WrongRecord { expected, seen }
            | VerifyError::Hash { expected, seen, .. } => Some((expected.clone(), seen.clone())),
            VerifyError::Status { code, .. } => {
                Some(("status 200".into(), format!("status {code}")))
            }
            VerifyError::Zip { detail, .. } => Some((
                "a module zip that every zip reader reads the same way".into(),
                detail.clone(),
            )),
            VerifyError::Format { what, detail } => {
                Some((format!("a well-formed {what}"), detail.clone()))
            }
            VerifyError::Trust(e) => trust_expected_seen(e),
            VerifyError::Upstream(UpstreamError::Status { code, .. }) => {
                Some(("status 200".into(), format!("status {code}")))
            }
            _ => None,
        }
    }

    /// Whether the upstream could not be reached (or timed out): the only
    /// errors after which verified state may be served offline.
    pub fn is_unreachable(&self) -> bool {
        if let VerifyError::Shared(e) = self {
            return e.is_unreachable();
        }
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
        if let VerifyError::Shared(e) = self {
            return e.is_not_found();
        }
        matches!(self, VerifyError::Upstream(UpstreamError::Status { code, .. }) if *code == 404 || *code == 410)
    }

    /// The HTTP status for a client: an upstream's 4xx or 5xx is kept
    /// (`go` falls through to the next proxy on 404 and 410), the body
    /// being bulwark's own; any other failure of the upstream is 502.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::Shared(e) => e.http_status(),
            VerifyError::Upstream(e) => match e {
                UpstreamError::Status { code, .. } if (400..=599).contains(code) => *code,
                e => e.http_status(),
            },
            // bulwark cannot read or write its own state: it refuses.
            VerifyError::Store(_) | VerifyError::Index(_) => 503,
            VerifyError::Trust(e) if matches!(**e, TrustError::Storage { .. }) => 503,
            VerifyError::Offline(_) => 503,
            _ => 502,
        }
    }
}

/// The upstream's answer if it is exactly 200; an upstream 4xx or 5xx as
/// [`UpstreamError::Status`] (its status is kept for the client, never its
/// body); any other status (203, 206, 3xx...) as [`VerifyError::Status`],
/// a refusal. Every Go route takes an upstream answer through here.
pub fn expect_200(res: UpstreamResponse) -> Result<UpstreamResponse, VerifyError> {
    status_200(&res.upstream, &res.url, res.status)?;
    Ok(res)
}

/// The rule of [`expect_200`] on a status alone (for streamed answers).
pub fn status_200(upstream: &str, url: &str, status: http::StatusCode) -> Result<(), VerifyError> {
    match StatusClass::of(status, http::StatusCode::OK) {
        StatusClass::Success => Ok(()),
        StatusClass::Failure(code) => Err(VerifyError::Upstream(UpstreamError::Status {
            upstream: upstream.to_string(),
            url: url.to_string(),
            code: code.as_u16(),
        })),
        StatusClass::Unexpected(code) => Err(VerifyError::Status {
            url: url.to_string(),
            code: code.as_u16(),
        }),
    }
}

impl From<TrustError> for VerifyError {
    fn from(e: TrustError) -> VerifyError {
        VerifyError::Trust(Box::new(e))
    }
}

/// (expected, seen) of a trust-state refusal, where it has them.
fn trust_expected_seen(e: &TrustError) -> Option<(String, String)> {
    match e {
        TrustError::Fork { expected, seen, .. } => Some((expected.to_string(), seen.to_string())),
        TrustError::Rewind { expected, seen, .. } => {
            Some((format!("size >= {expected}"), format!("size {seen}")))
        }
        TrustError::Inconsistent {
            old_size,
            old_root,
            new_size,
            new_root,
            error,
            ..
        } => Some((
            format!("tree {new_size} ({new_root}) extends accepted tree {old_size} ({old_root})"),
            format!("consistency proof from tiles: {error}"),
        )),
        TrustError::OriginChanged { expected, seen, .. } => Some((expected.clone(), seen.clone())),
        TrustError::Stale {
            size, age, max_age, ..
        } => Some((
            format!(
                "a tree at most {} old",
                humantime::format_duration(*max_age)
            ),
            format!(
                "tree {size} fresh since {} ago",
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
        )),
        TrustError::Time { detail, .. } => Some((
            format!(
                "a signed time at most {} ahead and not before the accepted one's",
                humantime::format_duration(crate::verify::trust::MAX_CLOCK_SKEW)
            ),
            detail.to_string(),
        )),
        _ => None,
    }
}

/// A record proven included in an accepted tree.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    pub id: u64,
    /// The trust-state epoch it was proven in.
    pub epoch: u64,
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
    /// The single flight of `/latest` and its outcome, kept [`LATEST_TTL`].
    latest: tokio::sync::Mutex<Option<LatestMemo>>,
}

/// The outcome of the last `/latest` fetch.
struct LatestMemo {
    /// When it finished.
    at: Instant,
    /// The epoch it was accepted in.
    epoch: u64,
    result: Result<Accepted, Arc<VerifyError>>,
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
            latest: tokio::sync::Mutex::new(None),
        })
    }

    /// The upstream's configured name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The one quarantine gate of a request (see [`TrustState::gate`]):
    /// nothing of a quarantined upstream is served, from any route, and
    /// nothing is served while the trust state cannot be read.
    pub async fn gate(&self) -> Result<(), VerifyError> {
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        blocking(move || trust.gate(&up).map_err(Box::new)).await
    }

    /// The trust state's current epoch of this upstream.
    async fn epoch(&self) -> Result<u64, VerifyError> {
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        blocking(move || trust.epoch(&up).map_err(Box::new)).await
    }

    /// The database's `/latest`, accepted (or proven a prefix of the
    /// accepted tree); returns the newest accepted tree. One fetch at a
    /// time per upstream: requests that arrive meanwhile share its
    /// outcome, and a success is reused for [`LATEST_TTL`].
    pub async fn refresh(&self) -> Result<Accepted, VerifyError> {
        let asked = Instant::now();
        let epoch = self.epoch().await?;
        let mut memo = self.latest.lock().await;
        if let Some(m) = &*memo {
            let waited_for_it = m.at >= asked;
            let recent = m.result.is_ok() && m.at.elapsed() < LATEST_TTL;
            if m.epoch == epoch && (waited_for_it || recent) {
                return m.result.clone().map_err(VerifyError::Shared);
            }
        }
        let result = self.refresh_now().await.map_err(Arc::new);
        *memo = Some(LatestMemo {
            at: Instant::now(),
            epoch,
            result: result.clone(),
        });
        result.map_err(VerifyError::Shared)
    }

    async fn refresh_now(&self) -> Result<Accepted, VerifyError> {
        let res = self
            .client
            .send(
                UpstreamRequest::get("/latest")
                    .max_response_bytes(sumdb::MAX_NOTE_SIZE as u64)
                    .probe(),
            )
            .await?;
        let res = expect_200(res)?;
        self.accept_note(&res.body).await
    }

    /// The newest verified tree for serving: a fresh one, or the last one
    /// with a `Warning` value when the upstream cannot be reached. A tree
    /// older than `max_checkpoint_age` is refreshed first; if the upstream
    /// answers but cannot be verified, or shows nothing fresh, it is
    /// refused.
    pub async fn current(&self) -> Result<(Accepted, Option<String>), VerifyError> {
        let v = self.last_verified().await;
        match v {
            Ok(v) if !v.stale => {
                self.gauge_age(&v);
                Ok((v.checkpoint, None))
            }
            Ok(v) => match self.refresh().await {
                Ok(_) => Ok((self.fresh().await?, None)),
                Err(e) if e.is_unreachable() => {
                    self.gauge_age(&v);
                    let w = crate::pipeline::refusal::verified_warning(&v);
                    Ok((v.checkpoint, w))
                }
                Err(e) => Err(e),
            },
            Err(VerifyError::Trust(e)) if matches!(*e, TrustError::NoCheckpoint { .. }) => {
                Ok((self.refresh().await?, None))
            }
            Err(e) => Err(e),
        }
    }

    /// What `/sumdb/<name>/latest` serves: the newest accepted tree after
    /// asking the database (at most once per [`LATEST_TTL`]); refused when
    /// it is stale and the database answers, served with a `Warning` when
    /// the database cannot be reached.
    pub async fn latest_for_serving(&self) -> Result<(Accepted, Option<String>), VerifyError> {
        match self.refresh().await {
            Ok(_) => Ok((self.fresh().await?, None)),
            Err(e) if e.is_unreachable() => {
                let v = self.last_verified().await?;
                let w = crate::pipeline::refusal::unreachable_warning(&v);
                Ok((v.checkpoint, Some(w)))
            }
            Err(e) => Err(e),
        }
    }

    /// The newest accepted tree if it is fresh, after the upstream
    /// answered: freshness has one definition (the trust state's), and a
    /// tree the upstream merely shows again stays stale, so a stale tree
    /// while the upstream answers is refused (check `freshness`).
    async fn fresh(&self) -> Result<Accepted, VerifyError> {
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        let max = self.max_age;
        let v = blocking(move || {
            trust
                .check_fresh(&up, SystemTime::now(), max)
                .map_err(Box::new)
        })
        .await?;
        self.gauge_age(&v);
        Ok(v.checkpoint)
    }

    async fn last_verified(&self) -> Result<Verified, VerifyError> {
        let trust = self.trust.clone();
        let up = self.upstream.clone();
        let max = self.max_age;
        blocking(move || {
            trust
                .last_verified(&up, SystemTime::now(), max)
                .map_err(Box::new)
        })
        .await
    }

    fn gauge_age(&self, v: &Verified) {
        self.metrics
            .set_checkpoint_age(&self.upstream, v.age.as_secs_f64());
    }

    /// Accepts a signed tree note: signature (and witness policy), then
    /// consistency with the accepted tree from authenticated tiles, then
    /// the trust state's rules. Returns the newest accepted tree.
    pub async fn accept_note(&self, note: &[u8]) -> Result<Accepted, VerifyError> {
        self.accept_tree(note).await.map(|(_, a)| a)
    }

    /// [`Self::accept_note`], also returning the note's own tree: the
    /// accepted one, or an older one proven a prefix of it.
    async fn accept_tree(&self, note: &[u8]) -> Result<(Checkpoint, Accepted), VerifyError> {
        let r = self.accept_tree_inner(note).await;
        let check = match &r {
            Ok(_) => "checkpoint",
            Err(e) => e.check(),
        };
        if !matches!(&r, Err(e) if e.is_unreachable()) {
            self.metrics.verification(&self.upstream, check, r.is_ok());
        }
        r
    }

    /// How many times a tree is offered again after another request
    /// advanced the trust state between our read of it and our offer.
    const LOST_RACES: usize = 3;

    async fn accept_tree_inner(&self, note: &[u8]) -> Result<(Checkpoint, Accepted), VerifyError> {
        let (cp, signed_time) = self.open_note(note)?;
        let epoch = self.epoch().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let trust = self.trust.clone();
            let up = self.upstream.clone();
            let latest = blocking(move || trust.latest(&up).map_err(Box::new)).await?;
            // Everything read from the network is read first; the trust
            // state then decides in one transaction, and a lost race (the
            // accepted tree moved meanwhile) is retried.
            if let Some(old) = latest.as_ref().filter(|old| cp.size < old.size) {
                // An older tree (a lagging replica): prove it a prefix of
                // the accepted tree, from tiles authenticated against the
                // accepted tree, and go on with the accepted tree.
                let (size, root, small) = (old.size, old.root, cp.size);
                let proof = self
                    .with_tiles(epoch, size, root, move |r| prove_tree(size, small, r))
                    .await?;
                let trust = self.trust.clone();
                let up = self.upstream.clone();
                let (note, c) = (note.to_vec(), cp.clone());
                let a = blocking(move || {
                    trust
                        .prove_prefix(&up, &note, &c, &proof, SystemTime::now())
                        .map_err(Box::new)
                })
                .await?;
                return Ok((cp, a));
            }
            let mut proof = Vec::new();
            let from = latest.as_ref().map_or(0, |old| old.size);
            // Tiles read here are authenticated against the candidate tree,
            // which is signed but not yet known to be consistent with what
            // was accepted: they are kept aside and stored only once the
            // trust state accepts the tree (a refused fork must leave
            // nothing behind).
            let mut candidate_tiles = Vec::new();
            if latest.is_some() && cp.size > from {
                let (size, root) = (cp.size, cp.root);
                let (p, tiles) = self
                    .with_unsaved_tiles(epoch, size, root, move |r| prove_tree(size, from, r))
                    .await;
                proof = p?;
                candidate_tiles = tiles;
            }
            let trust = self.trust.clone();
            let up = self.upstream.clone();
            let (note_bytes, c) = (note.to_vec(), cp.clone());
            let adv = blocking(move || {
                trust
                    .advance_at(
                        &up,
                        &note_bytes,
                        &c,
                        ConsistencyProof {
                            from_size: from,
                            hashes: &proof,
                        },
                        signed_time,
                        SystemTime::now(),
                    )
                    .map_err(Box::new)
            })
            .await;
            let adv = match adv {
                Ok(adv) => adv,
                Err(VerifyError::Trust(e))
                    if matches!(*e, TrustError::StaleBase { .. } | TrustError::Rewind { .. })
                        && attempt < Self::LOST_RACES =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            for (path, data) in candidate_tiles {
                self.store_tile(epoch, &path, Bytes::from(data)).await?;
            }
            let a = adv.accepted().clone();
            if !matches!(adv, crate::verify::trust::Advance::Unchanged(_)) {
                self.metrics
                    .set_checkpoint_time(&self.upstream, a.first_accepted);
            }
            return Ok((cp, a));
        }
    }

    /// Checks a tree note's signature (and policy) and parses the tree.
    /// With a witness policy, also returns the newest time at which its
    /// quorum cosigned the tree (freshness is measured from it).
    fn open_note(&self, note: &[u8]) -> Result<(Checkpoint, Option<SystemTime>), VerifyError> {
        if note.len() > sumdb::MAX_NOTE_SIZE {
            return Err(VerifyError::Format {
                what: "signed tree",
                detail: format!("{} bytes, more than {}", note.len(), sumdb::MAX_NOTE_SIZE),
            });
        }
        let (text, signed_time) = if let Some(p) = &self.policy {
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
            let t = v
                .quorum_time
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            (v.text, t)
        } else {
            let (_, v) = Checkpoint::open(note, std::slice::from_ref(&self.key)).map_err(|e| {
                VerifyError::Signature {
                    key: format!("{}+{:08x}", self.key.name(), self.key.key_id()),
                    detail: e.to_string(),
                }
            })?;
            (v.text, None)
        };
        let cp = sumdb::parse_tree(&text).map_err(|e| VerifyError::Format {
            what: "signed tree",
            detail: e.to_string(),
        })?;
        Ok((cp, signed_time))
    }

    /// Runs `f` over a hash reader of the tree (`size`, `root`), which must
    /// be an accepted tree (or one proven a prefix of it), reading
    /// authenticated tiles (from the index of `epoch`, else from the
    /// database); tiles authenticated on the way are stored.
    async fn with_tiles<T: Send + 'static>(
        &self,
        epoch: u64,
        size: u64,
        root: crate::tlog::Hash,
        f: impl FnOnce(&TileHashReader<'_, Fetcher>) -> Result<T, TileError> + Send + 'static,
    ) -> Result<T, VerifyError> {
        let (out, verified) = self.with_unsaved_tiles(epoch, size, root, f).await;
        for (path, data) in verified {
            self.store_tile(epoch, &path, Bytes::from(data)).await?;
        }
        out
    }

    /// [`Self::with_tiles`] without storing anything: returns the tiles
    /// authenticated against (`size`, `root`) on the way, for the caller to
    /// store once that tree is accepted.
    async fn with_unsaved_tiles<T: Send + 'static>(
        &self,
        epoch: u64,
        size: u64,
        root: crate::tlog::Hash,
        f: impl FnOnce(&TileHashReader<'_, Fetcher>) -> Result<T, TileError> + Send + 'static,
    ) -> (Result<T, VerifyError>, Vec<(String, Vec<u8>)>) {
        let fetcher = Fetcher {
            upstream: self.upstream.clone(),
            epoch,
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
                    FetchError::Status { url, code } => VerifyError::Status { url, code },
                },
                Err(other) => VerifyError::Tiles(format!("reading tiles: {other}")),
            },
            e => VerifyError::Tiles(e.to_string()),
        });
        let verified =
            std::mem::take(&mut *fetcher.verified.lock().unwrap_or_else(|p| p.into_inner()));
        (out, verified)
    }

    async fn store_tile(&self, epoch: u64, path: &str, data: Bytes) -> Result<(), VerifyError> {
        if self
            .index
            .get(BLOBS, &self.upstream, epoch, path)?
            .is_some()
        {
            return Ok(());
        }
        let d = Digest::of(&data);
        self.blobs.put(&d, data).await?;
        self.index
            .put(BLOBS, &self.upstream, epoch, path, d.as_bytes())
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
        let epoch = self.epoch().await?;
        let (tree, warning) = self.current().await?;
        if let Some(b) = self.blob_for(epoch, &canonical).await? {
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
                    .with_tiles(epoch, size, root, move |r| read_tile_data(&t, r))
                    .await?;
                let data = Bytes::from(data);
                self.store_tile(epoch, &canonical, data.clone()).await?;
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
                            .max_response_bytes(MAX_TILE_BYTES)
                            .probe(),
                    )
                    .await?;
                let res = expect_200(res)?;
                let records = sumdb::parse_data_tile_raw(&res.body, start, b.width as usize)
                    .map_err(|e| VerifyError::Format {
                        what: "data tile",
                        detail: e.to_string(),
                    })?;
                let indexes: Vec<u64> = (0..u64::from(b.width))
                    .map(|i| stored_hash_index(0, start + i))
                    .collect();
                let want = self
                    .with_tiles(epoch, size, root, move |r| r.read_hashes(&indexes))
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
                self.store_tile(epoch, &canonical, res.body.clone()).await?;
                Ok((res.body, warning))
            }
        }
    }

    /// The digest of the blob stored under `key` in `epoch`.
    fn blob_digest(&self, epoch: u64, key: &str) -> Result<Option<Digest>, VerifyError> {
        let Some(d) = self.index.get(BLOBS, &self.upstream, epoch, key)? else {
            return Ok(None);
        };
        let arr = <[u8; 32]>::try_from(d.as_slice())
            .map_err(|_| VerifyError::Index(format!("{key}: malformed digest")))?;
        Ok(Some(Digest::from_bytes(arr)))
    }

    /// A small stored blob (a tile) of `epoch`, read whole.
    async fn blob_for(&self, epoch: u64, key: &str) -> Result<Option<Bytes>, VerifyError> {
        let Some(d) = self.blob_digest(epoch, key)? else {
            return Ok(None);
        };
        Ok(self.blobs.get(&d).await?)
    }

    /// Looks `m` up: from the index if it was verified before in the
    /// current epoch, else from the database with its inclusion proven from
    /// tiles in the tree the lookup names (accepted first, or proven a
    /// prefix of the accepted tree). The caller has passed the gate.
    pub async fn lookup(&self, m: &ModuleVersion) -> Result<VerifiedRecord, VerifyError> {
        let key = format!("{}@{}", m.path, m.version);
        let epoch = self.epoch().await?;
        if let Some(raw) = self.index.get(RECORDS, &self.upstream, epoch, &key)? {
            if let Some(v) = decode_record(&raw, epoch) {
                self.metrics.cache("gomod.record", true);
                return Ok(v);
            }
        }
        self.metrics.cache("gomod.record", false);
        let r = self.lookup_remote(m, epoch, &key).await;
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
        epoch: u64,
        key: &str,
    ) -> Result<VerifiedRecord, VerifyError> {
        let res = self
            .client
            .send(
                // Not a probe: the client chose the module.
                UpstreamRequest::get(format!("/lookup/{}", m.escaped()))
                    .max_response_bytes(sumdb::MAX_LOOKUP_SIZE as u64),
            )
            .await?;
        let res = expect_200(res)?;
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
        let (tree, latest) = self.accept_tree(lookup.note.as_bytes()).await?;
        let id = lookup.id;
        // The note's tree is accepted or proven a prefix of the accepted
        // one; a record beyond it (a lagging note) is proven in the
        // accepted tree, as Go's own client does.
        let (size, root) = if id < tree.size {
            (tree.size, tree.root)
        } else {
            (latest.size, latest.root)
        };
        if id >= size {
            return Err(VerifyError::Inclusion {
                module: m.to_string(),
                id,
                size,
                expected: format!("record id < {size}"),
                seen: format!("record id {id}"),
            });
        }
        let want = self
            .with_tiles(epoch, size, root, move |r| {
                r.read_hashes(&[stored_hash_index(0, id)])
            })
            .await?;
        let seen = lookup.record.leaf_hash();
        let expected = want.first().copied().unwrap_or_default();
        if seen != expected {
            return Err(VerifyError::Inclusion {
                module: m.to_string(),
                id,
                size,
                expected: expected.to_string(),
                seen: seen.to_string(),
            });
        }
        let mut raw = format!("{id}\n").into_bytes();
        raw.extend_from_slice(lookup.record.text().as_bytes());
        self.index.put(RECORDS, &self.upstream, epoch, key, &raw)?;
        Ok(VerifiedRecord {
            id,
            epoch,
            record: lookup.record,
            cached: false,
        })
    }

    /// A verified module file (`kind` is `mod` or `zip`) stored in the
    /// current epoch, opened for streaming, with its digest.
    pub async fn stored_file(
        &self,
        kind: &str,
        m: &ModuleVersion,
    ) -> Result<Option<(Digest, Blob)>, VerifyError> {
        let epoch = self.epoch().await?;
        let key = format!("{kind}:{}@{}", m.path, m.version);
        let Some(d) = self.blob_digest(epoch, &key)? else {
            return Ok(None);
        };
        Ok(self.blobs.get_stream(&d).await?.map(|b| (d, b)))
    }

    /// The blob store (spooling large downloads).
    pub fn blobs(&self) -> &FsBlobStore {
        &self.blobs
    }

    /// Publishes a spooled module file whose h1 matched the record verified
    /// in `epoch`, indexes it, and opens it for streaming (with its digest).
    pub async fn store_spooled(
        &self,
        kind: &str,
        m: &ModuleVersion,
        epoch: u64,
        spooled: Spooled,
    ) -> Result<(Digest, Blob), VerifyError> {
        let d = spooled.digest();
        self.blobs.publish_spooled(spooled).await?;
        self.index.put(
            BLOBS,
            &self.upstream,
            epoch,
            &format!("{kind}:{}@{}", m.path, m.version),
            d.as_bytes(),
        )?;
        let blob = self.blobs.get_stream(&d).await?.ok_or_else(|| {
            VerifyError::Store(StoreError::Task(format!(
                "blob {d} vanished after publishing"
            )))
        })?;
        Ok((d, blob))
    }

    /// Stores a module file whose h1 matched the record verified in
    /// `epoch`; returns its digest.
    pub async fn store_file(
        &self,
        kind: &str,
        m: &ModuleVersion,
        epoch: u64,
        data: Bytes,
    ) -> Result<Digest, VerifyError> {
        let d = Digest::of(&data);
        self.blobs.put(&d, data).await?;
        self.index.put(
            BLOBS,
            &self.upstream,
            epoch,
            &format!("{kind}:{}@{}", m.path, m.version),
            d.as_bytes(),
        )?;
        Ok(d)
    }
}

fn decode_record(raw: &[u8], epoch: u64) -> Option<VerifiedRecord> {
    let s = std::str::from_utf8(raw).ok()?;
    let (id, text) = s.split_once('\n')?;
    Some(VerifiedRecord {
        id: id.parse().ok()?,
        epoch,
        record: Record::parse(text).ok()?,
        cached: true,
    })
}

/// Runs a trust-state call on the blocking pool. (Its error is boxed: the
/// trust state's errors are large.)
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Box<TrustError>> + Send + 'static,
) -> Result<T, VerifyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| {
            VerifyError::from(TrustError::Storage {
                op: "task",
                detail: e.to_string(),
            })
        })?
        .map_err(VerifyError::Trust)
}

/// Reads tiles for a [`TileHashReader`] (on a blocking thread): stored
/// verified tiles first, else from the database. Remembers the tiles the
/// reader authenticated so the caller stores them.
pub struct Fetcher {
    upstream: String,
    epoch: u64,
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
    #[error("{url} answered {code}")]
    Status { url: String, code: u16 },
}

impl TileReader for Fetcher {
    type Error = FetchError;

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, FetchError> {
        self.handle.block_on(async {
            let mut out = Vec::with_capacity(tiles.len());
            for t in tiles {
                let path = t.path(Dialect::SumDb);
                let stored = self
                    .index
                    .get(BLOBS, &self.upstream, self.epoch, &path)
                    .map_err(|e| FetchError::Store(e.to_string()))?;
                if let Some(d) = stored {
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
                            .max_response_bytes(u64::from(t.width) * HASH_SIZE as u64)
                            .probe(),
                    )
                    .await
                    .map_err(FetchError::Upstream)?;
                let res = expect_200(res).map_err(|e| match e {
                    VerifyError::Upstream(u) => FetchError::Upstream(u),
                    VerifyError::Status { url, code } => FetchError::Status { url, code },
                    e => FetchError::Store(e.to_string()),
                })?;
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
