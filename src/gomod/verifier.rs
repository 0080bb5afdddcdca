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
//! and keeps bytes in the blob store, named in the shared artifact index
//! ([`ArtifactIndex`], `<data_dir>/index.redb`) under the kinds
//! `gomod.tile`, `gomod.record`, `gomod.mod` and `gomod.zip` of the trust
//! epoch they were proven in; an entry is written only after the thing it
//! names was verified and its blob stored (fsynced).
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

use crate::gomod::module::ModuleVersion;
use crate::gomod::sumdb::{self, Record};
use crate::metrics::Metrics;
use crate::pipeline::artifacts::Artifacts;
use crate::pipeline::refusal::{unreachable_warning, verified_warning, Refusal};
use crate::pipeline::trust::{Offer, Trust};
use crate::store::index::{kinds, Entry};
use crate::store::{Digest, IndexError, StoreError};
use crate::tlog::merkle::{leaf_hash, prove_tree, stored_hash_index, HashReader, HASH_SIZE};
use crate::tlog::note::VerifierKey;
use crate::tlog::policy::Policy;
use crate::tlog::tile::{
    parse_tile_path, read_tile_data, Dialect, Tile, TileError, TileHashReader, TilePath, TileReader,
};
use crate::tlog::Checkpoint;
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamRequest, UpstreamResponse};
use crate::verify::trust::{Accepted, Gated, TrustError, Verified};

/// How long a tree fetched from `/latest` and accepted is used again
/// before the database is asked anew: concurrent and repeated requests for
/// `/sumdb/<name>/latest` (and freshness checks) cost one upstream round
/// trip per upstream in this time.
pub const LATEST_TTL: Duration = Duration::from_secs(5);

/// Largest tile fetched (a full hash tile is 8 KiB; a data tile is bounded
/// by [`sumdb::MAX_TILE_WIDTH`] records).
const MAX_TILE_BYTES: u64 = (sumdb::MAX_TILE_WIDTH * (sumdb::MAX_RECORD_TEXT + 22)) as u64;

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
    #[error("zip: {module}: {detail}")]
    Zip { module: String, detail: String },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("index: {0}")]
    Index(String),
    /// One outcome shared by the requests that waited for it (the single
    /// flight of `/latest`).
    #[error(transparent)]
    Shared(Arc<VerifyError>),
    /// Refused by the pipeline (its index or blob store).
    #[error(transparent)]
    Refused(Refusal),
}

impl VerifyError {
    /// The check name (metrics label and the JSON error's `check`).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Shared(e) => e.check(),
            VerifyError::Refused(r) => r.check,
            VerifyError::Upstream(UpstreamError::Status { .. }) => "upstream-status",
            VerifyError::Upstream(UpstreamError::Offline { .. }) => {
                crate::pipeline::refusal::CHECK_OFFLINE
            }
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
            VerifyError::Zip { .. } => "zip",
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
            VerifyError::Zip { detail, .. } => Some((
                "a module zip that every zip reader reads the same way".into(),
                detail.clone(),
            )),
            VerifyError::Format { what, detail } => {
                Some((format!("a well-formed {what}"), detail.clone()))
            }
            VerifyError::Upstream(UpstreamError::Status { code, .. }) => {
                Some(("status 200".into(), format!("status {code}")))
            }
            _ => None,
        }
    }

    /// Whether the upstream could not be reached (or timed out): the only
    /// errors after which verified state may be served offline.
    pub fn is_unreachable(&self) -> bool {
        match self {
            VerifyError::Shared(e) => e.is_unreachable(),
            VerifyError::Upstream(e) => e.is_unreachable(),
            VerifyError::Refused(r) => r.is_unreachable(),
            _ => false,
        }
    }

    /// Whether the upstream said the thing does not exist (404/410).
    pub fn is_not_found(&self) -> bool {
        match self {
            VerifyError::Shared(e) => e.is_not_found(),
            VerifyError::Refused(r) => r.is_not_found(),
            VerifyError::Upstream(UpstreamError::Status { code, .. }) => {
                *code == 404 || *code == 410
            }
            _ => false,
        }
    }

    /// The HTTP status for a client: an upstream's 4xx or 5xx is kept
    /// (`go` falls through to the next proxy on 404 and 410), the body
    /// being bulwark's own; any other failure of the upstream is 502.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::Shared(e) => e.http_status(),
            VerifyError::Refused(r) => r.status.as_u16(),
            VerifyError::Upstream(e) => match e {
                UpstreamError::Status { code, .. } if (400..=599).contains(code) => *code,
                e => e.http_status(),
            },
            // bulwark cannot read or write its own state: it refuses.
            VerifyError::Store(_) | VerifyError::Index(_) => 503,
            VerifyError::Trust(e) if matches!(**e, TrustError::Storage { .. }) => 503,
            _ => 502,
        }
    }

    /// The one [`Refusal`] for it (`upstream` names the upstream where
    /// the error itself does not).
    pub fn refusal(&self, upstream: &str) -> Refusal {
        match self {
            VerifyError::Shared(e) => e.refusal(upstream),
            VerifyError::Refused(r) => r.clone(),
            VerifyError::Upstream(e) => Refusal::from_upstream(e),
            VerifyError::Store(e) => Refusal::from_store(upstream, e),
            VerifyError::Trust(e) => {
                let mut r = Refusal::from_trust(e);
                if r.upstream.is_empty() {
                    r.upstream = upstream.to_string();
                }
                r
            }
            e => {
                let status = http::StatusCode::from_u16(e.http_status())
                    .unwrap_or(http::StatusCode::BAD_GATEWAY);
                let r = Refusal::new(
                    upstream,
                    e.check(),
                    status,
                    format!("upstream {upstream}: {e}"),
                );
                match e.expected_seen() {
                    Some((expected, seen)) => r.expected_seen(expected, seen),
                    None => r,
                }
            }
        }
    }
}

/// The upstream's answer if it is exactly 200 ([`Refusal::status_rule`]:
/// an upstream 4xx or 5xx keeps its status for the client, never its body;
/// any other status is refused). Every buffered Go upstream answer takes
/// this path.
pub fn expect_200(res: UpstreamResponse) -> Result<UpstreamResponse, VerifyError> {
    Refusal::status_rule(&res.upstream, &res.url, res.status, http::StatusCode::OK)
        .map_err(VerifyError::Refused)?;
    Ok(res)
}

impl From<Refusal> for VerifyError {
    fn from(r: Refusal) -> VerifyError {
        VerifyError::Refused(r)
    }
}

impl From<IndexError> for VerifyError {
    fn from(e: IndexError) -> VerifyError {
        VerifyError::Index(e.to_string())
    }
}

impl From<TrustError> for VerifyError {
    fn from(e: TrustError) -> VerifyError {
        VerifyError::Trust(Box::new(e))
    }
}

/// A record proven included in an accepted tree.
#[derive(Debug, Clone)]
pub struct VerifiedRecord {
    pub id: u64,
    /// The size of the tree it was proven included in.
    pub size: u64,
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
    trust: Trust,
    artifacts: Artifacts,
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
        artifacts: Artifacts,
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
            trust: artifacts.trust().clone(),
            artifacts,
            metrics,
            max_age,
            latest: tokio::sync::Mutex::new(None),
        })
    }

    /// The upstream's configured name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The one quarantine gate of a request ([`Trust::gate`], from
    /// memory): nothing of a quarantined upstream is served, from any
    /// route, and nothing is served while the trust state cannot be read.
    /// Returns the upstream's current epoch.
    pub async fn gate(&self) -> Result<u64, VerifyError> {
        Ok(self.trust.gate(&self.upstream).await?)
    }

    /// The trust state's current epoch of this upstream (past the gate).
    async fn epoch(&self) -> Result<u64, VerifyError> {
        self.gate().await
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
                    let w = verified_warning(&v);
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
                let w = unreachable_warning(&v);
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
        let v = self.last_verified().await?;
        if v.stale {
            return Err(TrustError::Stale {
                upstream: self.upstream.clone(),
                size: v.checkpoint.size,
                age: v.age,
                max_age: self.max_age,
            }
            .into());
        }
        self.gauge_age(&v);
        Ok(v.checkpoint)
    }

    /// The newest verified tree and whether it is stale ([`Trust::last_verified`],
    /// from memory while the trust state is unchanged).
    async fn last_verified(&self) -> Result<Verified, VerifyError> {
        Ok(self
            .trust
            .last_verified(&self.upstream, self.max_age)
            .await?)
    }

    fn gauge_age(&self, v: &Verified) {
        self.metrics
            .set_checkpoint_age(&self.upstream, v.age.as_secs_f64());
    }

    /// The one quarantine gate of a request for a stored module file,
    /// and whether the accepted tree is fresh, in one look at the trust
    /// state ([`Trust::gate_fresh`], from memory).
    pub async fn gate_fresh(&self) -> Result<Gated, TrustError> {
        self.trust.gate_fresh(&self.upstream, self.max_age).await
    }

    /// The `Warning` (if any) for serving something verified in the
    /// epoch `gated` names (from [`Self::gate_fresh`]), or a refusal, as
    /// [`Self::current`] decides; no more work while the accepted tree is
    /// fresh.
    pub async fn serving_warning(&self, gated: Gated) -> Result<Option<String>, VerifyError> {
        if gated.fresh {
            return Ok(None);
        }
        Ok(self.current().await?.1)
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
            let latest = self.trust.latest(&self.upstream).await?;
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
                let a = self
                    .trust
                    .prove_prefix(&self.upstream, Arc::from(note), cp.clone(), proof)
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
            let adv = self
                .trust
                .advance(Offer {
                    upstream: self.upstream.clone(),
                    note: note.to_vec(),
                    checkpoint: cp.clone(),
                    from_size: from,
                    proof,
                    signed_time,
                })
                .await
                .map_err(VerifyError::from);
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
            self.store_tiles(epoch, cp.size, candidate_tiles).await?;
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
        self.store_tiles(epoch, size, verified).await?;
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
    ) -> (Result<T, VerifyError>, Vec<(String, Bytes)>) {
        let fetcher = Fetcher {
            upstream: self.upstream.clone(),
            epoch,
            client: self.client.clone(),
            artifacts: self.artifacts.clone(),
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
                    FetchError::Refused(r) => VerifyError::Refused(r),
                },
                Err(other) => VerifyError::Tiles(format!("reading tiles: {other}")),
            },
            e => VerifyError::Tiles(e.to_string()),
        });
        let verified =
            std::mem::take(&mut *fetcher.verified.lock().unwrap_or_else(|p| p.into_inner()));
        (out, verified)
    }

    /// Stores tiles authenticated against the accepted tree of `size` (or
    /// one proven its prefix) and indexes the new ones in one transaction,
    /// after their blobs are on disk.
    async fn store_tiles(
        &self,
        epoch: u64,
        size: u64,
        tiles: Vec<(String, Bytes)>,
    ) -> Result<(), VerifyError> {
        let mut entries = Vec::with_capacity(tiles.len());
        for (path, data) in tiles {
            if self
                .artifacts
                .entry(&self.upstream, epoch, kinds::GOMOD_TILE, &path)
                .await?
                .is_some()
            {
                continue;
            }
            let d = Digest::of(&data);
            self.artifacts.blobs().put(&d, data).await?;
            entries.push((path, Entry::new(d, format!("tile of tree {size}"))));
        }
        if !entries.is_empty() {
            self.artifacts
                .index(&self.upstream, epoch, kinds::GOMOD_TILE, entries)
                .await?;
        }
        Ok(())
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
        if let Some((_, b)) = self
            .indexed_small(epoch, kinds::GOMOD_TILE, &canonical)
            .await?
        {
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
                self.store_tiles(epoch, size, vec![(canonical, data.clone())])
                    .await?;
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
                self.store_tiles(epoch, size, vec![(canonical, res.body.clone())])
                    .await?;
                Ok((res.body, warning))
            }
        }
    }

    /// A small stored blob (a tile, a record) indexed under `kind` and `key`
    /// in `epoch`, read whole, with its entry. An entry whose blob is gone
    /// is a miss (fetched and verified again).
    async fn indexed_small(
        &self,
        epoch: u64,
        kind: &str,
        key: &str,
    ) -> Result<Option<(Entry, Bytes)>, VerifyError> {
        let Some(e) = self
            .artifacts
            .entry(&self.upstream, epoch, kind, key)
            .await?
        else {
            return Ok(None);
        };
        let b = self.artifacts.small_blob(&self.upstream, &e.digest).await?;
        Ok(b.map(|b| (e, b)))
    }

    /// Looks `m` up: from the index if it was verified before in the
    /// current epoch, else from the database with its inclusion proven from
    /// tiles in the tree the lookup names (accepted first, or proven a
    /// prefix of the accepted tree), and indexed (kind `gomod.record`). The
    /// caller has passed the gate.
    pub async fn lookup(&self, m: &ModuleVersion) -> Result<VerifiedRecord, VerifyError> {
        self.lookup_and(m, true).await
    }

    /// [`Self::lookup`] for filling `m`'s `.mod` or `.zip`: a record looked
    /// up now is not indexed on its own, since the file's index entry
    /// carries it as its proof ([`record_proof`]); one index transaction
    /// per file instead of two.
    pub async fn lookup_for_file(&self, m: &ModuleVersion) -> Result<VerifiedRecord, VerifyError> {
        self.lookup_and(m, false).await
    }

    async fn lookup_and(
        &self,
        m: &ModuleVersion,
        index: bool,
    ) -> Result<VerifiedRecord, VerifyError> {
        let key = module_key(m);
        let epoch = self.epoch().await?;
        // The record's own entry (its digest checked), else the entry of
        // a file it proved.
        for kind in [kinds::GOMOD_RECORD, kinds::GOMOD_MOD, kinds::GOMOD_ZIP] {
            let Some(e) = self
                .artifacts
                .entry(&self.upstream, epoch, kind, &key)
                .await?
            else {
                continue;
            };
            let digest = (kind == kinds::GOMOD_RECORD).then_some(&e.digest);
            if let Some(v) = decode_record(m, &e.proof, digest, epoch) {
                self.metrics.cache("gomod.record", true);
                return Ok(v);
            }
        }
        self.metrics.cache("gomod.record", false);
        let r = self.lookup_remote(m, epoch).await;
        if !matches!(&r, Err(e) if e.is_unreachable() || e.is_not_found()) {
            let check = match &r {
                Ok(_) => "inclusion",
                Err(e) => e.check(),
            };
            self.metrics.verification(&self.upstream, check, r.is_ok());
        }
        let rec = r?;
        if index {
            // The record's text is rebuilt from its key and entry (see
            // [`decode_record`]): indexing it costs one transaction, no blob.
            let entry = Entry::new(Digest::of(rec.record.text().as_bytes()), record_proof(&rec));
            self.artifacts
                .index(
                    &self.upstream,
                    epoch,
                    kinds::GOMOD_RECORD,
                    vec![(key, entry)],
                )
                .await?;
        }
        Ok(rec)
    }

    async fn lookup_remote(
        &self,
        m: &ModuleVersion,
        epoch: u64,
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
        Ok(VerifiedRecord {
            id,
            size,
            epoch,
            record: lookup.record,
            cached: false,
        })
    }
}

/// Which file of a module version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModFile {
    /// `<version>.mod`, the go.mod file.
    Mod,
    /// `<version>.zip`, the module zip.
    Zip,
}

impl ModFile {
    /// Its kind in the artifact index.
    pub fn index_kind(self) -> &'static str {
        match self {
            ModFile::Mod => kinds::GOMOD_MOD,
            ModFile::Zip => kinds::GOMOD_ZIP,
        }
    }

    /// Its name in refusals (`go.mod`, `zip`).
    pub fn what(self) -> &'static str {
        match self {
            ModFile::Mod => "go.mod",
            ModFile::Zip => "zip",
        }
    }

    /// The h1 hash the checksum-database record names for it.
    pub fn h1(self, record: &Record) -> &crate::gomod::dirhash::H1 {
        match self {
            ModFile::Mod => &record.mod_hash,
            ModFile::Zip => &record.zip_hash,
        }
    }
}

/// The index key of a module version: `<module>@<version>`.
pub fn module_key(m: &ModuleVersion) -> String {
    format!("{}@{}", m.path, m.version)
}

/// The proof text of the index entries a record proved (the record's
/// own, and its `.mod`'s and `.zip`'s): its id, the size of the tree it was
/// proven included in, and its two hashes, from which its text is rebuilt
/// (see [`decode_record`]).
pub fn record_proof(rec: &VerifiedRecord) -> String {
    let r = &rec.record;
    format!(
        "id {} in tree {}: {} {}",
        rec.id, rec.size, r.zip_hash, r.mod_hash
    )
}

/// The record of `m` from the proof text of an index entry it proved: the
/// text (exactly the two go.sum lines a record is) rebuilt from `m` and the
/// hashes in the proof; for the record's own entry it must hash to the
/// entry's `digest`. `None` for anything else (then it is looked up again).
pub fn decode_record(
    m: &ModuleVersion,
    proof: &str,
    digest: Option<&Digest>,
    epoch: u64,
) -> Option<VerifiedRecord> {
    let mut words = proof.split(' ');
    let (Some("id"), Some(id), Some("in"), Some("tree"), Some(size), Some(zip), Some(m_h1), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return None;
    };
    let size = size.strip_suffix(':')?;
    let (p, v) = (&m.path, &m.version);
    let text = format!("{p} {v} {zip}\n{p} {v}/go.mod {m_h1}\n");
    if digest.is_some_and(|d| *d != Digest::of(text.as_bytes())) {
        return None;
    }
    Some(VerifiedRecord {
        id: id.parse().ok()?,
        size: size.parse().ok()?,
        epoch,
        record: Record::parse(&text).ok()?,
        cached: true,
    })
}

/// Reads tiles for a [`TileHashReader`] (on a blocking thread): stored
/// verified tiles first, else from the database. Remembers the tiles the
/// reader authenticated so the caller stores them.
pub struct Fetcher {
    upstream: String,
    epoch: u64,
    client: UpstreamClient,
    artifacts: Artifacts,
    handle: tokio::runtime::Handle,
    verified: Mutex<Vec<(String, Bytes)>>,
}

/// A tile fetch error, kept typed so an unreachable upstream is told apart.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Refused(Refusal),
}

impl Fetcher {
    /// One tile: stored and verified before, else from the database.
    async fn read_tile(&self, t: &Tile) -> Result<Vec<u8>, FetchError> {
        let path = t.path(Dialect::SumDb);
        let stored = self
            .artifacts
            .entry(&self.upstream, self.epoch, kinds::GOMOD_TILE, &path)
            .await
            .map_err(|e| FetchError::Store(e.to_string()))?;
        if let Some(e) = stored {
            if let Some(b) = self
                .artifacts
                .small_blob(&self.upstream, &e.digest)
                .await
                .map_err(|e| FetchError::Store(e.to_string()))?
            {
                return Ok(b.to_vec());
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
            VerifyError::Refused(r) => FetchError::Refused(r),
            e => FetchError::Store(e.to_string()),
        })?;
        Ok(res.body.to_vec())
    }
}

impl TileReader for Fetcher {
    type Error = FetchError;

    /// The tiles a proof needs, fetched concurrently (a proof across a
    /// large tree needs one tile per level).
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, FetchError> {
        self.handle.block_on(futures_util::future::try_join_all(
            tiles.iter().map(|t| self.read_tile(t)),
        ))
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        for (t, d) in tiles.iter().zip(data) {
            v.push((t.path(Dialect::SumDb), Bytes::copy_from_slice(d)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREET: &str =
        "example.com/greet v1.0.0 h1:pN/+iEkzWwBUHy86aw5Vd1WTEXw04KZ9W9CWdwfqofs=\n\
example.com/greet v1.0.0/go.mod h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg=\n";

    #[test]
    fn a_record_reads_back_from_the_proof_of_what_it_proved_and_anything_else_is_a_miss() {
        let rec = VerifiedRecord {
            id: 7,
            size: 40,
            epoch: 3,
            record: Record::parse(GREET).unwrap(),
            cached: false,
        };
        let m = rec.record.module();
        let proof = record_proof(&rec);
        let digest = Digest::of(GREET.as_bytes());
        for d in [Some(&digest), None] {
            let v = decode_record(&m, &proof, d, 3).unwrap();
            assert_eq!((v.id, v.size, v.epoch, v.cached), (7, 40, 3, true));
            assert_eq!(v.record.text(), GREET);
        }
        assert_eq!(module_key(&m), "example.com/greet@v1.0.0");
        assert_eq!(
            ModFile::Zip.h1(&rec.record).to_string(),
            "h1:pN/+iEkzWwBUHy86aw5Vd1WTEXw04KZ9W9CWdwfqofs="
        );
        assert_eq!(
            ModFile::Mod.h1(&rec.record).to_string(),
            "h1:qmCUdUgvYzVx/QpXPHPcbrzaJCOfJUUeUlhKWag7bZg="
        );
        // A record entry whose digest the rebuilt text does not hash to
        // (another module's key, or another digest): a miss, never another
        // record.
        let other = ModuleVersion::new("example.com/other", "v1.0.0").unwrap();
        assert!(decode_record(&other, &proof, Some(&digest), 3).is_none());
        assert!(decode_record(&m, &proof, Some(&Digest::of(b"x")), 3).is_none());
        for bad in [
            String::new(),
            "id 7".to_string(),
            proof.replace("id 7", "id x"),
            proof.replace("tree 40:", "tree 40"),
            proof.replace(
                "h1:pN/+iEkzWwBUHy86aw5Vd1WTEXw04KZ9W9CWdwfqofs=",
                "h1:short",
            ),
            format!("{proof} more"),
        ] {
            assert!(decode_record(&m, &bad, None, 3).is_none(), "{bad}");
        }
    }
}
