//! [`Artifacts`]: the artifact service every ecosystem serves content
//! through.
//!
//! An artifact is named by `(upstream, kind, key)`: the kind is an
//! ecosystem's constant (`store::index::kinds`), the key its own name for
//! the artifact (a module version, a content digest). The service:
//!
//! 1. passes one quarantine gate and learns the upstream's current epoch
//!    ([`Trust::gate`], from memory);
//! 2. looks the artifact up in the artifact index of that epoch: a hit
//!    streams the stored blob, which was checked once, when it was written;
//! 3. on a miss, when the ecosystem has proven the record that names the
//!    artifact, fetches the bytes from the upstream (an exact 200 only,
//!    streamed to a spool file, never whole in memory), checks them by the
//!    ecosystem's [`Rule`] (off the async threads), publishes them (fsync,
//!    rename), records the index entry (fsynced) and streams them out.
//!
//! Nothing is indexed before its bytes passed the rule, except digests a
//! verified record names (Warg content), which the rule of their fill then
//! checks. Every failure is a [`Refusal`].

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::pipeline::refusal::{Refusal, CHECK_DIGEST};
use crate::pipeline::trust::Trust;
use crate::store::index::Entry;
use crate::store::{ArtifactIndex, Blob, Digest, FsBlobStore, StoreError};
use crate::upstream::{UpstreamClient, UpstreamRequest, UpstreamStream};

/// The artifact service (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct Artifacts {
    blobs: FsBlobStore,
    index: ArtifactIndex,
    trust: Trust,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts").finish_non_exhaustive()
    }
}

/// What the index says about an artifact in the upstream's current epoch.
#[derive(Debug)]
pub enum Lookup {
    /// Verified and stored: stream `blob`.
    Hit {
        epoch: u64,
        entry: Entry,
        blob: Blob,
    },
    /// A verified record names its digest, but the bytes are not stored
    /// yet: fill it with [`Rule::Sha256`] of `entry.digest`.
    Named { epoch: u64, entry: Entry },
    /// Not known in this epoch.
    Miss { epoch: u64 },
}

impl Lookup {
    /// The upstream's epoch the answer is about.
    pub fn epoch(&self) -> u64 {
        match self {
            Lookup::Hit { epoch, .. } | Lookup::Named { epoch, .. } | Lookup::Miss { epoch } => {
                *epoch
            }
        }
    }
}

/// A check run on the spooled bytes (a file handle for positional reads,
/// and their length), off the async threads.
pub type Check = Box<dyn FnOnce(std::fs::File, u64) -> Result<(), Refusal> + Send>;

/// How the bytes of an artifact are checked before they are stored.
pub enum Rule {
    /// Their SHA-256 must be this digest (checked while they are written).
    Sha256(Digest),
    /// Their SHA-512 must be this digest (an npm `dist.integrity`),
    /// checked on the spooled file as check [`CHECK_DIGEST`].
    Sha512([u8; 64]),
    /// The ecosystem's own rule (Go's `h1:` of a module zip, say) on the
    /// spooled file; `check` names it for metrics.
    Check { check: &'static str, run: Check },
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Sha256(d) => write!(f, "Sha256({d})"),
            Rule::Sha512(d) => write!(f, "Sha512({})", hex::encode(d)),
            Rule::Check { check, .. } => write!(f, "Check({check})"),
        }
    }
}

/// A miss to fill: which artifact, what proves it, how to check it, and
/// where to fetch it.
pub struct Fill<'a> {
    pub upstream: &'a str,
    /// The epoch [`Artifacts::lookup`] answered for.
    pub epoch: u64,
    pub kind: &'static str,
    pub key: String,
    /// What proved the record naming it (kept in the index entry, at most
    /// `store::index::MAX_PROOF_TEXT` bytes).
    pub proof: String,
    pub rule: Rule,
    /// The upstream client to fetch with, and the request (its response
    /// cap bounds the bytes read).
    pub client: &'a UpstreamClient,
    pub request: UpstreamRequest,
}

/// An upstream's answer to a fill's request, its body not read yet
/// ([`Artifacts::fetch`]).
pub struct Fetched(UpstreamStream);

/// [`Rule::Sha512`] as a check of the spooled file (positional reads in
/// bounded chunks).
fn sha512_check(upstream: &str, want: [u8; 64]) -> Check {
    let upstream = upstream.to_string();
    Box::new(move |file, len| {
        use sha2::Digest as _;
        use std::os::unix::fs::FileExt as _;
        let mut h = sha2::Sha512::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        while at < len {
            let n = file.read_at(&mut buf, at).map_err(|e| {
                Refusal::new(
                    &upstream,
                    "store",
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!("upstream {upstream}: reading the spooled bytes: {e}"),
                )
            })?;
            let Some(chunk) = buf.get(..n).filter(|_| n > 0) else {
                break;
            };
            h.update(chunk);
            at += n as u64;
        }
        let seen: [u8; 64] = h.finalize().into();
        if seen == want {
            return Ok(());
        }
        Err(Refusal::bad_answer(
            &upstream,
            CHECK_DIGEST,
            format!("upstream {upstream}: the bytes do not hash to the sha512 their record names"),
        )
        .expected_seen(
            format!("sha512:{}", hex::encode(want)),
            format!("sha512:{}", hex::encode(seen)),
        ))
    })
}

fn task_failed(upstream: &str, e: tokio::task::JoinError) -> Refusal {
    Refusal::new(
        upstream,
        "store",
        http::StatusCode::SERVICE_UNAVAILABLE,
        format!("upstream {upstream}: storage task failed: {e}"),
    )
}

impl Artifacts {
    /// The service over a blob store, an artifact index and the trust state.
    pub fn new(
        blobs: FsBlobStore,
        index: ArtifactIndex,
        trust: Trust,
        metrics: Arc<Metrics>,
    ) -> Artifacts {
        Artifacts {
            blobs,
            index,
            trust,
            metrics,
        }
    }

    /// The trust state.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The blob store, for an ecosystem's own verified state (tiles,
    /// records) kept beside its artifacts.
    pub fn blobs(&self) -> &FsBlobStore {
        &self.blobs
    }

    /// The artifact index itself, for reading it whole (what `bulwark
    /// export` carries).
    pub fn artifact_index(&self) -> &ArtifactIndex {
        &self.index
    }

    /// One artifact: gate, then the index of the current epoch, then the
    /// blob (see [`Lookup`]).
    pub async fn lookup(&self, upstream: &str, kind: &str, key: &str) -> Result<Lookup, Refusal> {
        let epoch = self.trust.gate(upstream).await?;
        self.lookup_in(upstream, epoch, kind, key).await
    }

    /// [`Artifacts::lookup`] for a caller that passed the gate itself,
    /// which answered `epoch` (the upstream's current epoch).
    pub async fn lookup_in(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &str,
        key: &str,
    ) -> Result<Lookup, Refusal> {
        let entry = self.entry(upstream, epoch, kind, key).await?;
        let Some(entry) = entry else {
            self.metrics.cache(kind, false);
            return Ok(Lookup::Miss { epoch });
        };
        match self.blobs.get_stream(&entry.digest).await {
            Ok(Some(blob)) => {
                self.metrics.cache(kind, true);
                Ok(Lookup::Hit { epoch, entry, blob })
            }
            Ok(None) => {
                self.metrics.cache(kind, false);
                Ok(Lookup::Named { epoch, entry })
            }
            Err(e) => Err(Refusal::from_store(upstream, &e)),
        }
    }

    /// The index entry of `(upstream, epoch, kind, key)`, if any.
    pub async fn entry(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &str,
        key: &str,
    ) -> Result<Option<Entry>, Refusal> {
        // A hit in the index's memory mirror costs no blocking-pool hop.
        if let Some(e) = self.index.get_cached(upstream, epoch, kind, key) {
            return Ok(Some(e));
        }
        let index = self.index.clone();
        let (u, k, key) = (upstream.to_string(), kind.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || index.get(&u, epoch, &k, &key))
            .await
            .map_err(|e| task_failed(upstream, e))?
            .map_err(|e| Refusal::from_index(upstream, &e))
    }

    /// Records digests that verified records name (keys already present
    /// keep their first entry), in one durable transaction.
    pub async fn index(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &'static str,
        entries: Vec<(String, Entry)>,
    ) -> Result<usize, Refusal> {
        let index = self.index.clone();
        let u = upstream.to_string();
        tokio::task::spawn_blocking(move || index.put_all(&u, epoch, kind, &entries))
            .await
            .map_err(|e| task_failed(upstream, e))?
            .map_err(|e| Refusal::from_index(upstream, &e))
    }

    /// Stores small bytes the ecosystem itself proved (a tile authenticated
    /// against an accepted tree, a record proven included) and indexes
    /// them under `(upstream, epoch, kind, key)`.
    pub async fn put_proven(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &'static str,
        key: String,
        bytes: bytes::Bytes,
        proof: String,
    ) -> Result<Entry, Refusal> {
        let digest = Digest::of(&bytes);
        self.blobs
            .put(&digest, bytes)
            .await
            .map_err(|e| Refusal::from_store(upstream, &e))?;
        let entry = Entry::new(digest, proof);
        self.index(upstream, epoch, kind, vec![(key, entry.clone())])
            .await?;
        Ok(entry)
    }

    /// The stored bytes of a digest, read whole: for small things (tiles,
    /// records) only; content is streamed from [`Lookup::Hit`].
    pub async fn small_blob(
        &self,
        upstream: &str,
        digest: &Digest,
    ) -> Result<Option<bytes::Bytes>, Refusal> {
        self.blobs
            .get(digest)
            .await
            .map_err(|e| Refusal::from_store(upstream, &e))
    }

    /// The current epoch (after the quarantine gate) and the small proven
    /// bytes stored under `(kind, key)` (a provenance, an attestations
    /// answer, a METADATA), if any.
    pub async fn proven(
        &self,
        upstream: &str,
        kind: &str,
        key: &str,
    ) -> Result<(u64, Option<bytes::Bytes>), Refusal> {
        let epoch = self
            .trust
            .gate(upstream)
            .await
            .map_err(|e| Refusal::from_trust(&e))?;
        let Some(e) = self.entry(upstream, epoch, kind, key).await? else {
            return Ok((epoch, None));
        };
        Ok((epoch, self.small_blob(upstream, &e.digest).await?))
    }

    /// Sends a fill's request ahead, for a caller that proves the record
    /// naming the artifact meanwhile and then hands the answer to
    /// [`Artifacts::fill_fetched`]: nothing of it is kept unless it passes
    /// the fill's rule.
    pub async fn fetch(
        &self,
        client: &UpstreamClient,
        request: UpstreamRequest,
    ) -> Result<Fetched, Refusal> {
        Ok(Fetched(client.send_streaming(request).await?))
    }

    /// Fills a miss (see the module documentation): fetch, check, store,
    /// index; returns the entry and the blob to stream.
    pub async fn fill(&self, fill: Fill<'_>) -> Result<(Entry, Blob), Refusal> {
        self.fill_fetched(fill, None).await
    }

    /// [`Artifacts::fill`] with the answer to `fill.request` already
    /// fetched ([`Artifacts::fetch`]) when `fetched` is given.
    pub async fn fill_fetched(
        &self,
        fill: Fill<'_>,
        fetched: Option<Fetched>,
    ) -> Result<(Entry, Blob), Refusal> {
        let Fill {
            upstream,
            epoch,
            kind,
            key,
            proof,
            rule,
            client,
            request,
        } = fill;
        let res = match fetched {
            Some(Fetched(res)) => res,
            None => client.send_streaming(request).await?,
        };
        Refusal::status_rule(upstream, &res.url, res.status, http::StatusCode::OK)?;
        let store = |e: StoreError| Refusal::from_store(upstream, &e);
        // SHA-256 is checked while the bytes are written; every other rule
        // on the spooled file.
        let on_spool = match rule {
            Rule::Sha256(want) => Err(want),
            Rule::Sha512(want) => Ok((CHECK_DIGEST, sha512_check(upstream, want))),
            Rule::Check { check, run } => Ok((check, run)),
        };
        let digest = match on_spool {
            Err(want) => {
                match self.blobs.put_stream(&want, res.body).await {
                    Err(e @ StoreError::DigestMismatch { .. }) => {
                        self.metrics.verification(upstream, "digest", false);
                        let r = store(e);
                        tracing::warn!(upstream, check = r.check, key, "refused: {r}");
                        return Err(r);
                    }
                    r => r.map_err(store)?,
                };
                self.metrics.verification(upstream, "digest", true);
                want
            }
            Ok((check, run)) => {
                let mut spooled = self.blobs.spool(res.body).await.map_err(store)?;
                let file = spooled.reader().map_err(store)?;
                let len = spooled.len();
                // The spooled bytes are fsynced while they are checked
                // (they are published only if they pass).
                let (checked, synced) = tokio::join!(
                    tokio::task::spawn_blocking(move || run(file, len)),
                    self.blobs.sync_spooled(&mut spooled)
                );
                let checked = checked.map_err(|e| task_failed(upstream, e))?;
                if let Err(r) = checked {
                    self.metrics.verification(upstream, check, false);
                    tracing::warn!(upstream, check = r.check, key, "refused: {r}");
                    return Err(r);
                }
                self.metrics.verification(upstream, check, true);
                synced.map_err(store)?;
                let digest = spooled.digest();
                // The bytes checked out: their index entry is committed
                // while they are made durable, each with its own fsyncs
                // (a crash between the two leaves either an orphan blob or
                // an entry naming a digest not stored yet, which `lookup`
                // answers as `Named`: fetched and checked again).
                let entry = Entry::new(digest, proof);
                let (published, indexed) = tokio::join!(
                    self.blobs.publish_spooled(spooled),
                    self.index(upstream, epoch, kind, vec![(key, entry.clone())])
                );
                published.map_err(store)?;
                indexed?;
                return self.stored(upstream, entry).await;
            }
        };
        let entry = Entry::new(digest, proof);
        self.index(upstream, epoch, kind, vec![(key, entry.clone())])
            .await?;
        self.stored(upstream, entry).await
    }

    /// The blob of a just-stored entry, to stream out.
    async fn stored(&self, upstream: &str, entry: Entry) -> Result<(Entry, Blob), Refusal> {
        let store = |e: StoreError| Refusal::from_store(upstream, &e);
        let digest = entry.digest;
        let blob = self
            .blobs
            .get_stream(&digest)
            .await
            .map_err(store)?
            .ok_or_else(|| {
                Refusal::new(
                    upstream,
                    "store",
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "upstream {upstream}: blob {digest} vanished right after it was stored"
                    ),
                )
            })?;
        Ok((entry, blob))
    }
}
