//! The Warg API v1 front: bulwark as the home registry of Warg clients,
//! federating namespaces to upstream Warg registries and serving only what
//! it verified.
//!
//! `main.rs` builds it with [`WargFront::new`] (sharing the server's trust
//! state, blob store and artifact index) and adds it to the server. Per
//! request:
//!
//! - **Routing**: the `Warg-Registry` header names an upstream by its
//!   configured name; without it, the upstream that owns the package's
//!   namespace, else the configured default. Fetch-logs requests name
//!   packages by log ID only: the front keeps a log ID → package name index
//!   (from names it has seen, and `POST /v1/fetch/names` to the upstreams),
//!   and answers a header-less request for another upstream's package like
//!   the reference server answers a missing log, plus
//!   `warg-registry-hint: <namespace>=<upstream>`. The header is never sent
//!   upstream (the reference server answers 501 to it).
//! - **One gate per request** ([`WargFront::admit`]): a quarantined upstream,
//!   or one whose trust state cannot be read, gets nothing through on any
//!   route; what bulwark remembers of an upstream belongs to its trust
//!   epoch and is dropped when the epoch changes.
//! - **Upstream statuses**: only the exact success status takes the
//!   verified path (`answer::expect_status`); an upstream 4xx/5xx keeps its
//!   status with bulwark's own body, anything else is a 502.
//! - **Checkpoints** (`checkpoint`) are fetched once at a time per
//!   upstream and reused briefly, checked (timestamp, pinned key,
//!   signature, operator log validated and granting `commit`, operator head
//!   included) and offered to the trust state with the map root bound and
//!   a consistency proof from the last accepted one (fork → quarantine with
//!   evidence; rewind refused); too old → refused.
//! - **Logs** returned are validated in full from their first record, and
//!   each log's head proven included (log and map) in the checkpoint the
//!   client asked about; the records returned must be records of that
//!   validated log at their registry index (the verified ledger).
//! - **Proofs** the client asks for are checked before they are returned
//!   (count and positions, roots of verified checkpoints).
//! - **Content** (`content`): `contentSources` point at bulwark's own
//!   `/content/<upstream>/sha256-<hex>`, only for a digest the artifact
//!   index names for that upstream (a proven release of it); bulwark
//!   fetches the bytes, checks their SHA-256, stores them, and only then
//!   serves them.
//! - **Offline**: when an upstream does not answer, its last verified
//!   checkpoint, verified answers and indexed content are served with a
//!   `Warning` header.
//! - **Publishing** (`publish`): refused unless the upstream's `publish =
//!   "forward"`, then forwarded with the client's own credential only.

mod answer;
mod checkpoint;
mod content;
mod publish;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use indexmap::IndexMap;

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::server::{Front, ReqBody, ResBody};
use crate::store::{ArtifactIndex, Digest as BlobDigest, FsBlobStore};
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamOptions, UpstreamRequest};
use crate::verify::trust::TrustState;
use crate::warg::checks::{CheckError, LogKind, PinnedKey, ValidatedLog};
use crate::warg::config::{WargPublish, WargSettings, PROTOCOL};
use crate::warg::verify::{
    self as wv, LeafRef, OperatorState, PackageState, VerifiedCheckpoint, WargVerifyError,
};
use crate::warg::wire::{
    self, FetchLogsRequest, FetchLogsResponse, FetchPackageNamesRequest, FetchPackageNamesResponse,
    InclusionRequest, InclusionResponse, LogId, LogLeaf, PackageName, RegistryIndex, Route,
};

use answer::{
    check_refusal, expect_ok, poisoned, read_json, refuse, task_failed, trust_refusal, unreachable,
    upstream_failure, verify_refusal, Answer,
};

/// Largest JSON answer read from an upstream on the log and proof routes
/// (the decoders' limit too).
const MAX_JSON_ANSWER: usize = wire::DEFAULT_JSON_LIMIT;
/// Largest JSON request read from a client on the fetch and proof routes.
const MAX_JSON_REQUEST: usize = wire::DEFAULT_JSON_LIMIT;
/// Most records bulwark reads from one log to validate it.
const MAX_LOG_RECORDS: usize = 100_000;
/// Most package logs of one client request whose names bulwark looks up
/// (each unknown name is a question to every upstream).
const MAX_NAME_LOOKUPS: usize = 16;
/// Most bytes of `fetch/logs` answers bulwark reads for one log (all pages).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// Leaves a ledger page holds (the reference server's limit).
const LEDGER_PAGE: u64 = 1000;
/// Bytes of one packed ledger leaf (log ID and record ID).
const LEDGER_LEAF_BYTES: u64 = 64;
/// The longest registry log bulwark verifies for the ledger routes.
const MAX_LEDGER: u64 = 1_000_000;
/// Verified ledgers kept per upstream: the longest only (an older
/// length's leaves are a prefix of it), so at most `MAX_LEDGER` leaves.
const MAX_LEDGERS: usize = 1;
/// Most validated log records kept in memory per upstream, over all logs.
const MAX_CACHED_RECORDS: usize = 200_000;
/// Most verified leaves (registry index → leaf) kept per upstream.
const MAX_CACHED_LEAVES: usize = 200_000;
/// Most bytes of verified answers kept per upstream for offline serving.
const MAX_OFFLINE_BYTES: usize = 32 * 1024 * 1024;
/// The route prefix of bulwark's own content URLs.
const CONTENT_PREFIX: &str = "/content/";

/// Marks a request bulwark itself chose (path and body built from verified
/// state, not from a client's input): only failures of these count toward
/// the upstream's circuit breaker.
fn own(request: UpstreamRequest) -> UpstreamRequest {
    request.probe()
}

/// Validates a whole log with `warg::verify`, from its first record.
fn validate(
    kind: &LogKind,
    records: &[wire::PublishedRecord],
) -> Result<ValidatedLog, WargVerifyError> {
    let mut out = ValidatedLog::default();
    match kind {
        LogKind::Operator => {
            let mut s = OperatorState::new();
            s.validate_published(records)?;
            out.records = s.records().to_vec();
            out.operator = Some(s);
        }
        LogKind::Package(id) => {
            let mut s = PackageState::new(id.clone());
            s.validate_published(records)?;
            out.records = s.records().to_vec();
            out.releases = s
                .releases()
                .into_iter()
                .filter_map(|r| r.content.map(|c| c.to_string()))
                .collect();
        }
    }
    Ok(out)
}

/// What bulwark verified about one upstream in one trust epoch (memory;
/// the trust state holds the checkpoints durably, the artifact index the
/// content digests). Dropped whole when the epoch changes.
#[derive(Default)]
struct Verified {
    /// The trust epoch all of this was proven in.
    epoch: Option<u64>,
    /// Verified checkpoints by log length (the newest envelope per length).
    checkpoints: BTreeMap<u64, VerifiedCheckpoint>,
    /// Validated logs by (log, log length).
    logs: HashMap<(LogKind, u64), Arc<ValidatedLog>>,
    /// Records held by `logs`, over all of them (see `MAX_CACHED_RECORDS`).
    log_records: usize,
    /// Verified leaves by registry index.
    leaves: HashMap<RegistryIndex, LogLeaf>,
    /// The registry log by verified length, its root checked (the newest
    /// few, see `MAX_LEDGERS`).
    ledgers: BTreeMap<u64, Arc<Vec<LogLeaf>>>,
    /// Verified answers to fetch-logs and proof requests, by (kind,
    /// SHA-256 of the request body), oldest first: served, with a
    /// `Warning`, while the upstream does not answer.
    answers: IndexMap<(&'static str, [u8; 32]), Bytes>,
    /// Bytes held by `answers` (see `MAX_OFFLINE_BYTES`).
    answer_bytes: usize,
}

struct Upstream {
    name: String,
    /// Reads (with the upstream's configured `token`).
    client: UpstreamClient,
    /// Client writes (`publish = "forward"`): no token of bulwark's; the
    /// client's own `Authorization` is sent.
    writer: Option<UpstreamClient>,
    publish: WargPublish,
    key: PinnedKey,
    max_age: Duration,
    /// How long a verified checkpoint is reused (`checkpoint_reuse`).
    reuse: Duration,
    verified: Mutex<Verified>,
    /// Held while a ledger is fetched, so each is fetched and hashed once.
    ledger_fetch: tokio::sync::Mutex<()>,
    /// The last verified checkpoint; held while one is fetched (single
    /// flight per upstream).
    fresh: tokio::sync::Mutex<Option<checkpoint::Fresh>>,
    /// Whether the last checkpoint request found the upstream unreachable
    /// (content served meanwhile says so in a `Warning`).
    unreachable: AtomicBool,
}

/// The Warg front. See the module documentation.
pub struct WargFront {
    federation: Arc<Federation>,
    upstreams: Vec<Arc<Upstream>>,
    default: Option<usize>,
    trust: TrustState,
    blobs: FsBlobStore,
    index: ArtifactIndex,
    /// Log ID → package name, learnt from names seen (names are checked to
    /// hash to their log ID, so they are the same for every upstream).
    names: Mutex<HashMap<LogId, PackageName>>,
    https: bool,
    /// Content uploads forwarded upstream are held in memory whole (the
    /// upstream client sends whole bodies); one at a time bounds that
    /// memory by `server.max_body_bytes` whatever the number of clients.
    uploads: tokio::sync::Semaphore,
}

impl WargFront {
    /// The front over `config`'s Warg upstreams, sharing the server's trust
    /// state, blob store and artifact index; `None` when no Warg upstream
    /// is configured.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<Option<WargFront>> {
        let (config, federation) = (&ctx.config, ctx.federation.clone());
        let (trust, blobs, index) = (
            ctx.trust.state().clone(),
            ctx.blobs.clone(),
            ctx.index.clone(),
        );
        let mut upstreams = Vec::new();
        let mut default = None;
        for u in ctx.upstreams(PROTOCOL) {
            let settings = u.settings::<WargSettings>().ok_or_else(|| {
                anyhow::anyhow!("upstream {}: a Warg upstream needs operator_key", u.name)
            })?;
            let key = PinnedKey::parse(&settings.operator_key)
                .map_err(|e| anyhow::anyhow!("upstream {}: {e}", u.name))?;
            let mut opts = UpstreamOptions::new(u.name.clone(), u.url.clone());
            opts.extra_ca_pem = u.ca_file.clone();
            // Each route asks for less (`max_response_bytes`); this is the
            // cap of anything that does not.
            opts.max_response_bytes = MAX_JSON_ANSWER as u64;
            // Warg answers change every few seconds (checkpoints): never
            // remember a 404 (a package may be published a moment later).
            opts.negative_ttl = Duration::ZERO;
            opts.retries = 1;
            let writer = match settings.publish {
                WargPublish::Forward => {
                    let mut w = opts.clone();
                    // Writes are the client's: its failures are its own.
                    w.breaker_threshold = 0;
                    w.retries = 0;
                    Some(UpstreamClient::new(w)?)
                }
                WargPublish::Off => None,
            };
            opts.bearer_token = u.token.as_ref().map(|t| t.expose().to_string());
            if u.default {
                default = Some(upstreams.len());
            }
            upstreams.push(Arc::new(Upstream {
                name: u.name.clone(),
                client: UpstreamClient::new(opts)?,
                writer,
                publish: settings.publish,
                key,
                max_age: u.checkpoint_age_bound(&config.server),
                reuse: settings.checkpoint_reuse,
                verified: Mutex::new(Verified::default()),
                unreachable: AtomicBool::new(false),
                ledger_fetch: tokio::sync::Mutex::new(()),
                fresh: tokio::sync::Mutex::new(None),
            }));
        }
        if upstreams.is_empty() {
            return Ok(None);
        }
        if default.is_none() && upstreams.len() == 1 {
            default = Some(0);
        }
        Ok(Some(WargFront {
            federation,
            upstreams,
            default,
            trust,
            blobs,
            index,
            names: Mutex::new(HashMap::new()),
            https: config.server.tls.is_some(),
            uploads: tokio::sync::Semaphore::new(1),
        }))
    }

    fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    fn default_upstream(&self) -> Option<&Arc<Upstream>> {
        self.default.and_then(|i| self.upstreams.get(i))
    }

    /// The upstream owning `namespace`: explicit claim, else the default.
    fn owner(&self, namespace: &str) -> Option<&Arc<Upstream>> {
        match self.federation.owner(PROTOCOL, namespace) {
            Some(u) => self.upstream(&u.name),
            None => self.default_upstream(),
        }
    }

    /// The one gate of every request for `up`: refused when the upstream
    /// is quarantined or its trust state cannot be read. Returns the
    /// upstream's current trust epoch; what bulwark remembers of an older
    /// epoch is dropped here.
    async fn admit(&self, up: &Upstream) -> Result<u64, Answer> {
        let trust = self.trust.clone();
        let name = up.name.clone();
        let epoch = tokio::task::spawn_blocking(move || {
            // Boxed: a trust error is large.
            trust.gate(&name).map_err(Box::new)?;
            trust.epoch(&name).map_err(Box::new)
        })
        .await
        .map_err(task_failed)?
        .map_err(|e| trust_refusal(&up.name, &e))?;
        let mut v = up.verified.lock().map_err(|_| poisoned())?;
        if v.epoch != Some(epoch) {
            *v = Verified {
                epoch: Some(epoch),
                ..Verified::default()
            };
        }
        Ok(epoch)
    }

    /// The upstream a request is for: its `Warg-Registry` header, else the
    /// default. `Err` for a header naming no Warg upstream.
    fn by_header(&self, req: &Request<ReqBody>) -> Result<Option<Arc<Upstream>>, Answer> {
        match req.headers().get(wire::REGISTRY_HEADER_NAME) {
            Some(v) => {
                let name = v.to_str().unwrap_or("");
                match self.upstream(name) {
                    Some(u) => Ok(Some(u.clone())),
                    None => Err(Answer::message(
                        StatusCode::NOT_FOUND,
                        format!("bulwark has no Warg upstream named `{name}`"),
                    )),
                }
            }
            None => Ok(None),
        }
    }

    fn or_default(&self, up: Option<Arc<Upstream>>) -> Result<Arc<Upstream>, Answer> {
        up.or_else(|| self.default_upstream().cloned())
            .ok_or_else(|| {
                Answer::message(
                    StatusCode::NOT_FOUND,
                    "no Warg-Registry header and no default Warg upstream is configured",
                )
            })
    }

    async fn handle_route(&self, route: Route, req: Request<ReqBody>) -> Answer {
        let up = match self.by_header(&req) {
            Ok(u) => u,
            Err(a) => return a,
        };
        // Routes whose upstream is known now pass the gate here; the others
        // (the upstream depends on the body or on a lookup) in their handler.
        let known = match route {
            Route::WellKnown
            | Route::FetchLogs
            | Route::PublishRecord { .. }
            | Route::GetRecord { .. }
            | Route::UploadContent { .. } => None,
            _ => match self.or_default(up.clone()) {
                Ok(u) => match self.admit(&u).await {
                    Ok(epoch) => Some((u, epoch)),
                    Err(a) => return a,
                },
                Err(a) => return a,
            },
        };
        match (route, known) {
            (Route::WellKnown, _) => Answer {
                status: StatusCode::NOT_FOUND,
                body: Bytes::new(),
                headers: Vec::new(),
                content_type: "text/plain",
                stream: None,
                blob: None,
            },
            (Route::FetchLogs, _) => self.fetch_logs(up, req).await,
            (Route::PublishRecord { log_id }, _) => self.publish(up, &log_id, req).await,
            (Route::GetRecord { log_id, .. }, _) | (Route::UploadContent { log_id, .. }, _) => {
                let up = match up {
                    Some(u) => u,
                    None => match self.route_log(&log_id).await {
                        Ok(u) => u,
                        Err(a) => return a,
                    },
                };
                if req.method() == Method::GET {
                    self.record(&up, req).await
                } else {
                    self.upload(&up, req).await
                }
            }
            (_, None) => Answer::message(StatusCode::NOT_FOUND, "no upstream"),
            (Route::FetchCheckpoint, Some((up, epoch))) => self.fetch_checkpoint(&up, epoch).await,
            (Route::FetchNames, Some((up, _))) => self.fetch_names(&up, req).await,
            (Route::ProveInclusion, Some((up, epoch))) => {
                self.prove_inclusion(&up, epoch, req).await
            }
            (Route::ProveConsistency, Some((up, epoch))) => {
                self.prove_consistency(&up, epoch, req).await
            }
            (Route::ContentSources { digest }, Some((up, epoch))) => {
                let authority = content::client_authority(&req);
                self.content_sources(&up, epoch, &digest, authority).await
            }
            (Route::ContentFile { digest }, Some((up, epoch))) => {
                self.content(&up, epoch, &digest).await
            }
            (Route::Ledger, Some((up, epoch))) => self.ledger_sources(&up, epoch).await,
            (Route::LedgerRecords { start }, Some((up, epoch))) => {
                self.ledger_records(&up, epoch, start).await
            }
            (Route::VerifyCheckpoint, Some((up, epoch))) => {
                self.verify_checkpoint(&up, epoch, req).await
            }
        }
    }

    // ---- upstream calls ----

    /// A read-only JSON POST with a route's answer cap.
    async fn post_json(
        &self,
        up: &Upstream,
        request: UpstreamRequest,
    ) -> Result<crate::upstream::UpstreamResponse, UpstreamError> {
        up.client
            .send(request.max_response_bytes(MAX_JSON_ANSWER as u64))
            .await
    }

    // ---- logs ----

    /// Every record of a log at length `len`, paged. `None`: the upstream
    /// has no such log.
    async fn fetch_records(
        &self,
        up: &Upstream,
        kind: &LogKind,
        len: u64,
    ) -> Result<Option<Vec<wire::PublishedRecord>>, Answer> {
        let mut records = Vec::new();
        let mut token: Option<String> = None;
        let mut bytes: u64 = 0;
        loop {
            let mut packages = IndexMap::new();
            let operator = match kind {
                LogKind::Operator => token.clone().map(Into::into),
                LogKind::Package(id) => {
                    packages.insert(id.clone(), token.clone());
                    None
                }
            };
            let req = FetchLogsRequest {
                log_length: to_len(len),
                limit: Some(wire::MAX_FETCH_LIMIT),
                operator,
                packages: std::borrow::Cow::Owned(packages),
            };
            let mut request =
                UpstreamRequest::post_json_idempotent("/v1/fetch/logs", wire::encode_json(&req));
            // The operator log is bulwark's own business; a package log is
            // one a client named.
            if *kind == LogKind::Operator {
                request = own(request);
            }
            let resp = self
                .post_json(up, request)
                .await
                .map_err(|e| upstream_failure(&up.name, &e))?;
            if resp.status == StatusCode::NOT_FOUND && matches!(kind, LogKind::Package(_)) {
                return Ok(None);
            }
            let what = format!("fetching the log {}", kind.log_id());
            let resp = expect_ok(&up.name, &what, resp)?;
            bytes = bytes.saturating_add(resp.body.len() as u64);
            if bytes > MAX_LOG_BYTES {
                return Err(refuse(
                    &up.name,
                    format!(
                        "log {} is larger than the {MAX_LOG_BYTES} bytes bulwark validates",
                        kind.log_id()
                    ),
                ));
            }
            let mut body: FetchLogsResponse =
                wire::decode_json("fetch logs response", &resp.body, MAX_JSON_ANSWER)
                    .map_err(|e| refuse(&up.name, e))?;
            let page = match kind {
                LogKind::Operator => std::mem::take(&mut body.operator),
                LogKind::Package(id) => body.packages.swap_remove(id).unwrap_or_default(),
            };
            let more = body.more && !page.is_empty();
            token = page.last().map(|r| r.fetch_token.clone()).or(token);
            records.extend(page);
            if records.len() > MAX_LOG_RECORDS {
                return Err(refuse(&up.name, "log longer than bulwark validates"));
            }
            if !more {
                break;
            }
        }
        Ok(Some(records))
    }

    /// Proves a validated log's head included (log and map) in `vcp`.
    async fn prove_head(
        &self,
        up: &Upstream,
        vcp: &VerifiedCheckpoint,
        kind: &LogKind,
        log: &ValidatedLog,
    ) -> Result<(), Answer> {
        let head = log
            .head()
            .cloned()
            .ok_or_else(|| refuse(&up.name, "empty log"))?;
        let leaf = LeafRef {
            registry_index: head.registry_index,
            log_id: kind.log_id(),
            record_id: head.record_id.clone(),
        };
        let body = wire::encode_json(&InclusionRequest {
            log_length: vcp.log_length(),
            leafs: vec![head.registry_index],
        });
        let mut request = UpstreamRequest::post_json_idempotent("/v1/proof/inclusion", body);
        if *kind == LogKind::Operator {
            request = own(request);
        }
        let resp = self
            .post_json(up, request)
            .await
            .map_err(|e| upstream_failure(&up.name, &e))?;
        let resp = expect_ok(&up.name, "the inclusion proof", resp)?;
        let inc: InclusionResponse =
            wire::decode_json("inclusion response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| refuse(&up.name, e))?;
        wv::verify_inclusion(vcp, &[leaf], &inc).map_err(|e| verify_refusal(&up.name, &e))
    }

    /// Proves every record of a validated log but its head (see
    /// `prove_head`) included in `vcp` at its registry index: leaf `i` of a
    /// verified ledger at least as long as `vcp`'s log must be the log ID
    /// and record ID of the record claiming registry index `i` (every
    /// accepted checkpoint extends the earlier ones, so an older length's
    /// leaves are a prefix of a newer verified ledger's).
    async fn prove_indexes(
        &self,
        up: &Upstream,
        epoch: u64,
        vcp: &VerifiedCheckpoint,
        kind: &LogKind,
        log: &ValidatedLog,
    ) -> Result<(), Answer> {
        let Some((_head, rest)) = log.records.split_last() else {
            return Ok(());
        };
        if rest.is_empty() {
            return Ok(());
        }
        let len = vcp.log_length() as u64;
        let leaves = self.ledger_covering(up, epoch, vcp).await?;
        let log_id = kind.log_id();
        for r in rest {
            let i = r.registry_index;
            let seen = if (i as u64) < len {
                leaves.get(i)
            } else {
                None
            };
            if seen.is_some_and(|l| l.log_id == log_id && l.record_id == r.record_id) {
                continue;
            }
            let seen = match seen {
                Some(l) => format!("leaf ({}, {})", l.log_id, l.record_id),
                None => "no such leaf".to_string(),
            };
            return Err(refuse(
                &up.name,
                format!(
                    "inclusion check failed: record {} of log {log_id} claims registry index {i}; \
                     expected leaf ({log_id}, {}) there in the verified ledger at log length \
                     {len}, seen {seen}",
                    r.record_id, r.record_id
                ),
            ));
        }
        Ok(())
    }

    fn remember_log(
        &self,
        up: &Upstream,
        epoch: u64,
        kind: LogKind,
        len: u64,
        log: Arc<ValidatedLog>,
    ) -> Result<(), Answer> {
        let mut v = up.verified.lock().map_err(|_| poisoned())?;
        // Proven in another epoch than the current one: not kept.
        if v.epoch != Some(epoch) {
            return Ok(());
        }
        if v.leaves.len() + log.records.len() > MAX_CACHED_LEAVES {
            v.leaves.clear();
        }
        let log_id = kind.log_id();
        for r in &log.records {
            v.leaves.insert(
                r.registry_index,
                LogLeaf {
                    log_id: log_id.clone(),
                    record_id: r.record_id.clone(),
                },
            );
        }
        if v.log_records + log.records.len() > MAX_CACHED_RECORDS {
            v.logs.clear();
            v.log_records = 0;
        }
        v.log_records += log.records.len();
        if let Some(old) = v.logs.insert((kind, len), log) {
            v.log_records -= old.records.len();
        }
        Ok(())
    }

    /// A whole log at `vcp`'s length, validated, its head proven included
    /// and every other record proven at its index; a package log's release
    /// digests recorded in the artifact index. `None`: the upstream has no
    /// such log.
    async fn validated_log(
        &self,
        up: &Upstream,
        epoch: u64,
        kind: &LogKind,
        vcp: &VerifiedCheckpoint,
    ) -> Result<Option<Arc<ValidatedLog>>, Answer> {
        let len = vcp.log_length() as u64;
        let key = (kind.clone(), len);
        if let Some(l) = up.verified.lock().map_err(|_| poisoned())?.logs.get(&key) {
            return Ok(Some(l.clone()));
        }
        let Some(records) = self.fetch_records(up, kind, len).await? else {
            return Ok(None);
        };
        let log = validate(kind, &records).map_err(|e| verify_refusal(&up.name, &e))?;
        self.prove_head(up, vcp, kind, &log).await?;
        self.prove_indexes(up, epoch, vcp, kind, &log).await?;
        self.index_releases(up, epoch, kind, len, &log).await?;
        let log = Arc::new(log);
        self.remember_log(up, epoch, kind.clone(), len, log.clone())?;
        Ok(Some(log))
    }

    /// Learns package names (from a fetch-names answer).
    fn learn(&self, names: impl IntoIterator<Item = (LogId, PackageName)>) {
        if let Ok(mut m) = self.names.lock() {
            for (id, name) in names {
                if m.len() >= MAX_CACHED_LEAVES {
                    m.clear();
                }
                m.insert(id, name);
            }
        }
    }

    /// The name of a package log: the index, else ask every upstream.
    async fn name_of(&self, log_id: &LogId) -> Option<PackageName> {
        if let Some(n) = self.names.lock().ok()?.get(log_id) {
            return Some(n.clone());
        }
        let body = wire::encode_json(&FetchPackageNamesRequest {
            packages: std::borrow::Cow::Owned(vec![log_id.clone()]),
        });
        for up in &self.upstreams {
            // A quarantined upstream is not asked (a name is checked
            // against its log ID either way).
            if self.admit(up).await.is_err() {
                continue;
            }
            let request = UpstreamRequest::post_json_idempotent("/v1/fetch/names", body.clone());
            let Ok(resp) = self.post_json(up, request).await else {
                continue;
            };
            if resp.status != StatusCode::OK {
                continue;
            }
            let Ok(r) = wire::decode_json::<FetchPackageNamesResponse>(
                "fetch names response",
                &resp.body,
                MAX_JSON_ANSWER,
            ) else {
                continue;
            };
            if let Some(Some(name)) = r.packages.get(log_id) {
                // Trust the name only if it hashes to the log ID.
                if &wire::package_log_id(name) == log_id {
                    self.learn([(log_id.clone(), name.clone())]);
                    return Some(name.clone());
                }
            }
        }
        None
    }

    /// The upstream owning a package log (by its name's namespace).
    async fn route_log(&self, log_id: &LogId) -> Result<Arc<Upstream>, Answer> {
        match self.name_of(log_id).await {
            Some(name) => self.owner(name.namespace()).cloned().ok_or_else(|| {
                Answer::message(StatusCode::NOT_FOUND, "no upstream owns this namespace")
            }),
            None => self.or_default(None),
        }
    }

    async fn fetch_logs(&self, up: Option<Arc<Upstream>>, req: Request<ReqBody>) -> Answer {
        let (body, request) = match read_json::<FetchLogsRequest>(
            req,
            "fetch logs request",
            MAX_JSON_REQUEST,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let up = match up {
            Some(u) => u,
            None => {
                let home = match self.or_default(None) {
                    Ok(u) => u,
                    Err(a) => return a,
                };
                // A package of another upstream's namespace: missing log
                // plus the hint, as the reference client expects. A name
                // unknown here costs a question to every upstream, so one
                // request may cause only a few.
                for log_id in request.packages.keys().take(MAX_NAME_LOOKUPS) {
                    if let Some(name) = self.name_of(log_id).await {
                        if let Some(owner) = self.owner(name.namespace()) {
                            if owner.name != home.name {
                                let mut a = missing_log(log_id);
                                if let Ok(h) = wire::registry_hint(name.namespace(), &owner.name) {
                                    a = a.header(wire::REGISTRY_HINT_HEADER_NAME, h);
                                }
                                return a;
                            }
                        }
                    }
                }
                home
            }
        };
        let epoch = match self.admit(&up).await {
            Ok(e) => e,
            Err(a) => return a,
        };
        // The client chose this body: not a probe.
        let forwarded = UpstreamRequest::post_json_idempotent("/v1/fetch/logs", body.clone());
        let resp = match self.post_json(&up, forwarded).await {
            Ok(r) => r,
            Err(e) => return self.offline_answer(&up, "logs", &body, &e),
        };
        if resp.status == StatusCode::NOT_FOUND {
            // The one upstream error body the client needs as is (a new
            // package is initialised on it): re-encoded by bulwark, and only
            // for a log the client asked about.
            if let Ok(wire::FetchError::LogNotFound(id)) =
                wire::decode_json("fetch logs error", &resp.body, 64 * 1024)
            {
                if request.packages.contains_key(&id) {
                    return missing_log(&id);
                }
            }
        }
        let resp = match expect_ok(&up.name, "the fetch-logs request", resp) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let answer: FetchLogsResponse =
            match wire::decode_json("fetch logs response", &resp.body, MAX_JSON_ANSWER) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let cp = match self
            .checkpoint_at(&up, epoch, request.log_length as u64)
            .await
        {
            Ok(c) => c,
            Err(a) => return a,
        };
        if !answer.operator.is_empty() {
            if let Err(a) = self
                .check_returned(&up, epoch, &LogKind::Operator, &answer.operator, &cp)
                .await
            {
                return a;
            }
        }
        for (log_id, records) in &answer.packages {
            if records.is_empty() {
                continue;
            }
            if let Err(a) = self
                .check_returned(&up, epoch, &LogKind::Package(log_id.clone()), records, &cp)
                .await
            {
                return a;
            }
        }
        self.remember_answer(&up, epoch, "logs", &body, &resp.body);
        Answer::json(StatusCode::OK, resp.body)
    }

    /// Every returned record must be a record of the validated log, at its
    /// registry index (where `validated_log` proved it included in `cp`).
    async fn check_returned(
        &self,
        up: &Upstream,
        epoch: u64,
        kind: &LogKind,
        records: &[wire::PublishedRecord],
        cp: &VerifiedCheckpoint,
    ) -> Result<(), Answer> {
        let log = self
            .validated_log(up, epoch, kind, cp)
            .await?
            .ok_or_else(|| refuse(&up.name, format!("log {} vanished", kind.log_id())))?;
        let ids: HashMap<RegistryIndex, &wire::RecordId> = log
            .records
            .iter()
            .map(|r| (r.registry_index, &r.record_id))
            .collect();
        for r in records {
            let id = record_id(kind, r).map_err(|e| check_refusal(&up.name, &e))?;
            if ids.get(&r.envelope.registry_index) != Some(&&id) {
                return Err(check_refusal(
                    &up.name,
                    &CheckError::Log(format!(
                        "record {id} at registry index {} is not the validated record of log {} at that index",
                        r.envelope.registry_index,
                        kind.log_id()
                    )),
                ));
            }
        }
        Ok(())
    }

    /// `POST /v1/fetch/names`: a name is passed on only if it hashes to the
    /// log ID it answers; the answer is re-encoded.
    async fn fetch_names(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        let (body, _) = match read_json::<FetchPackageNamesRequest>(
            req,
            "fetch names request",
            MAX_JSON_REQUEST,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let request = UpstreamRequest::post_json_idempotent("/v1/fetch/names", body);
        let resp = match self.post_json(up, request).await {
            Ok(r) => r,
            Err(e) => return upstream_failure(&up.name, &e),
        };
        let resp = match expect_ok(&up.name, "the fetch-names request", resp) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let r = match wire::decode_json::<FetchPackageNamesResponse>(
            "fetch names response",
            &resp.body,
            MAX_JSON_ANSWER,
        ) {
            Ok(r) => r,
            Err(e) => return refuse(&up.name, e),
        };
        let mut names = Vec::new();
        for (id, n) in &r.packages {
            if let Some(n) = n {
                if &wire::package_log_id(n) != id {
                    return refuse(
                        &up.name,
                        format!("name check failed: package name {n} does not hash to log {id}"),
                    );
                }
                names.push((id.clone(), n.clone()));
            }
        }
        self.learn(names);
        Answer::json(StatusCode::OK, wire::encode_json(&r))
    }

    // ---- proofs ----

    async fn prove_inclusion(&self, up: &Upstream, epoch: u64, req: Request<ReqBody>) -> Answer {
        let (body, request) =
            match read_json::<InclusionRequest>(req, "inclusion request", MAX_JSON_REQUEST).await {
                Ok(v) => v,
                Err(a) => return a,
            };
        let forwarded = UpstreamRequest::post_json_idempotent("/v1/proof/inclusion", body.clone());
        let resp = match self.post_json(up, forwarded).await {
            Ok(r) => r,
            Err(e) => return self.offline_answer(up, "inclusion", &body, &e),
        };
        let resp = match expect_ok(&up.name, "the inclusion proof", resp) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let inc: InclusionResponse =
            match wire::decode_json("inclusion response", &resp.body, MAX_JSON_ANSWER) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let cp = match self
            .checkpoint_at(up, epoch, request.log_length as u64)
            .await
        {
            Ok(c) => c,
            Err(a) => return a,
        };
        let leafs = {
            let Ok(v) = up.verified.lock() else {
                return poisoned();
            };
            let mut leafs = Vec::new();
            for i in &request.leafs {
                match v.leaves.get(i) {
                    Some(l) => leafs.push(LeafRef {
                        registry_index: *i,
                        log_id: l.log_id.clone(),
                        record_id: l.record_id.clone(),
                    }),
                    None => {
                        return refuse(
                            &up.name,
                            format!("bulwark has not verified a record at registry index {i}"),
                        )
                    }
                }
            }
            leafs
        };
        if let Err(e) = wv::verify_inclusion(&cp, &leafs, &inc) {
            return verify_refusal(&up.name, &e);
        }
        self.remember_answer(up, epoch, "inclusion", &body, &resp.body);
        Answer::json(StatusCode::OK, resp.body)
    }

    async fn prove_consistency(&self, up: &Upstream, epoch: u64, req: Request<ReqBody>) -> Answer {
        let (body, request) = match read_json::<wire::ConsistencyRequest>(
            req,
            "consistency request",
            MAX_JSON_REQUEST,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let forwarded =
            UpstreamRequest::post_json_idempotent("/v1/proof/consistency", body.clone());
        let resp = match self.post_json(up, forwarded).await {
            Ok(r) => r,
            Err(e) => return self.offline_answer(up, "consistency", &body, &e),
        };
        let resp = match expect_ok(&up.name, "the consistency proof", resp) {
            Ok(r) => r,
            Err(a) => return a,
        };
        let c: wire::ConsistencyResponse =
            match wire::decode_json("consistency response", &resp.body, MAX_JSON_ANSWER) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let (old, new) = match (
            self.checkpoint_at(up, epoch, request.from as u64).await,
            self.checkpoint_at(up, epoch, request.to as u64).await,
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), _) | (_, Err(a)) => return a,
        };
        match wv::verify_consistency(&old, &new, &c.proof) {
            Ok(()) => {
                self.remember_answer(up, epoch, "consistency", &body, &resp.body);
                Answer::json(StatusCode::OK, resp.body)
            }
            Err(e) => verify_refusal(&up.name, &e),
        }
    }

    // ---- ledger ----

    /// `GET /v1/ledger` for the current verified checkpoint, in the
    /// reference server's shape (relative URLs, 1000 leaves a source).
    async fn ledger_sources(&self, up: &Upstream, epoch: u64) -> Answer {
        let (cp, warning) = match self.current_checkpoint(up, epoch).await {
            Ok(c) => c,
            Err(a) => return a,
        };
        let len = cp.as_ref().checkpoint.log_length;
        if len as u64 > MAX_LEDGER {
            return refuse(
                &up.name,
                format!("the log of {len} leaves is longer than bulwark verifies"),
            );
        }
        let step = LEDGER_PAGE as usize;
        let sources = (0..len)
            .step_by(step)
            .map(|first| wire::LedgerSource {
                first_registry_index: first,
                last_registry_index: first.saturating_add(step).min(len) - 1,
                url: format!("v1/ledger/records/{first}"),
                content_type: wire::LedgerSourceContentType::Packed,
                accept_ranges: false,
            })
            .collect();
        let a = Answer::json(
            StatusCode::OK,
            wire::encode_json(&wire::LedgerSourcesResponse {
                hash_algorithm: warg_crypto::hash::HashAlgorithm::Sha256,
                sources,
            }),
        );
        match warning {
            Some(w) => a.header("warning", w),
            None => a,
        }
    }

    /// `GET /v1/ledger/records/{start}`: leaves of the registry log up to
    /// the current verified checkpoint, served only once the whole log up
    /// to that length hashes to its verified root.
    async fn ledger_records(&self, up: &Upstream, epoch: u64, start: RegistryIndex) -> Answer {
        let (cp, _) = match self.current_checkpoint(up, epoch).await {
            Ok(c) => c,
            Err(a) => return a,
        };
        let len = cp.as_ref().checkpoint.log_length as u64;
        let leaves = match self
            .verified_ledger(up, epoch, len, &cp.as_ref().checkpoint.log_root)
            .await
        {
            Ok(l) => l,
            Err(a) => return a,
        };
        let from = (start as u64).min(len);
        let to = from.saturating_add(LEDGER_PAGE).min(len);
        let mut body = Vec::with_capacity(((to - from) * LEDGER_LEAF_BYTES) as usize);
        for leaf in leaves
            .iter()
            .skip(usize::try_from(from).unwrap_or(usize::MAX))
            .take(usize::try_from(to - from).unwrap_or(0))
        {
            body.extend_from_slice(leaf.log_id.as_ref());
            body.extend_from_slice(leaf.record_id.as_ref());
        }
        Answer {
            status: StatusCode::OK,
            body: body.into(),
            headers: Vec::new(),
            content_type: wire::CONTENT_TYPE_LEDGER,
            stream: None,
            blob: None,
        }
    }

    /// A verified ledger whose first `vcp.log_length()` leaves are the
    /// registry log at `vcp`: a cached one at least that long (the trust
    /// state proved every accepted checkpoint extends the earlier ones),
    /// else the one at the newest verified checkpoint. A client choosing
    /// old log lengths therefore never makes bulwark fetch another ledger.
    async fn ledger_covering(
        &self,
        up: &Upstream,
        epoch: u64,
        vcp: &VerifiedCheckpoint,
    ) -> Result<Arc<Vec<LogLeaf>>, Answer> {
        let len = vcp.log_length() as u64;
        let newest = {
            let v = up.verified.lock().map_err(|_| poisoned())?;
            if let Some((_, l)) = v.ledgers.range(len..).next_back() {
                return Ok(l.clone());
            }
            v.checkpoints
                .last_key_value()
                .filter(|(l, _)| **l > len)
                .map(|(_, c)| c.clone())
        };
        match newest {
            Some(n) => {
                self.verified_ledger(up, epoch, n.log_length() as u64, n.log_root())
                    .await
            }
            None => self.verified_ledger(up, epoch, len, vcp.log_root()).await,
        }
    }

    /// The registry log at length `len`, every leaf fetched and the whole
    /// hashed to `root` before any of it is used. Extends the longest
    /// verified ledger shorter than `len` (its leaves are a prefix) rather
    /// than fetching from the start.
    async fn verified_ledger(
        &self,
        up: &Upstream,
        epoch: u64,
        len: u64,
        root: &warg_crypto::hash::AnyHash,
    ) -> Result<Arc<Vec<LogLeaf>>, Answer> {
        let cached = |up: &Upstream| -> Result<Option<Arc<Vec<LogLeaf>>>, Answer> {
            let v = up.verified.lock().map_err(|_| poisoned())?;
            Ok(v.ledgers.get(&len).cloned())
        };
        if let Some(leaves) = cached(up)? {
            return Ok(leaves);
        }
        let _fetching = up.ledger_fetch.lock().await;
        if let Some(leaves) = cached(up)? {
            return Ok(leaves);
        }
        if len > MAX_LEDGER {
            return Err(refuse(
                &up.name,
                format!("the log of {len} leaves is longer than bulwark verifies"),
            ));
        }
        let prefix = {
            let v = up.verified.lock().map_err(|_| poisoned())?;
            v.ledgers.range(..len).next_back().map(|(_, l)| l.clone())
        };
        use warg_transparency::log::{LogBuilder, VecLog};
        let mut log: VecLog<warg_crypto::hash::Sha256, LogLeaf> = VecLog::default();
        // Grown as verified pages arrive, never sized by the upstream's word.
        let mut leaves = Vec::new();
        for leaf in prefix.iter().flat_map(|p| p.iter()) {
            log.push(leaf);
            leaves.push(leaf.clone());
        }
        while (leaves.len() as u64) < len {
            let path = format!("/v1/ledger/records/{}", leaves.len());
            let request = own(UpstreamRequest::get(path.clone()))
                .max_response_bytes(LEDGER_PAGE * LEDGER_LEAF_BYTES);
            let resp = up
                .client
                .send(request)
                .await
                .map_err(|e| upstream_failure(&up.name, &e))?;
            let resp = expect_ok(&up.name, &format!("ledger page {path}"), resp)?;
            if resp.body.is_empty() || !(resp.body.len() as u64).is_multiple_of(LEDGER_LEAF_BYTES) {
                return Err(refuse(
                    &up.name,
                    format!(
                        "ledger page {path} answered {} bytes (expected a non-empty multiple of 64)",
                        resp.body.len()
                    ),
                ));
            }
            for chunk in resp.body.chunks_exact(LEDGER_LEAF_BYTES as usize) {
                if leaves.len() as u64 == len {
                    break;
                }
                let (l, r) = chunk.split_at(32);
                let mk = |b: &[u8]| {
                    warg_crypto::hash::AnyHash::new(
                        warg_crypto::hash::HashAlgorithm::Sha256,
                        b.to_vec(),
                    )
                };
                let leaf = LogLeaf {
                    log_id: mk(l).into(),
                    record_id: mk(r).into(),
                };
                log.push(&leaf);
                leaves.push(leaf);
            }
        }
        let got = log.checkpoint().root();
        if got.bytes() != root.bytes() {
            return Err(refuse(
                &up.name,
                format!(
                    "ledger check failed: the {len} leaves hash to {got}, the verified checkpoint's log root is {root}"
                ),
            ));
        }
        let leaves = Arc::new(leaves);
        let mut v = up.verified.lock().map_err(|_| poisoned())?;
        if v.epoch != Some(epoch) {
            return Ok(leaves);
        }
        v.ledgers.insert(len, leaves.clone());
        // Keep the longest: evict the shortest while over the bound.
        while v.ledgers.len() > MAX_LEDGERS {
            v.ledgers.pop_first();
        }
        Ok(leaves)
    }

    // ---- monitor ----

    /// `POST /v1/verify/checkpoint`, answered by bulwark from what it
    /// verified: the checkpoint is `verified` if it has the roots of the
    /// checkpoint bulwark verified at that length, else `invalid` (as the
    /// reference server answers for a length it has no checkpoint of); the
    /// signature is `verified` if the pinned key signed it, else `invalid`.
    async fn verify_checkpoint(&self, up: &Upstream, epoch: u64, req: Request<ReqBody>) -> Answer {
        use warg_crypto::{Encode as _, Signable as _};
        use wire::VerificationState as V;
        let (_, cp) = match read_json::<wire::SignedCheckpoint>(
            req,
            "checkpoint",
            checkpoint::MAX_CHECKPOINT_BYTES,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let contents: &wire::TimestampedCheckpoint = cp.as_ref();
        let signature = if cp.key_id() == &up.key.key_id
            && wire::TimestampedCheckpoint::verify(&up.key.key, &contents.encode(), cp.signature())
                .is_ok()
        {
            V::Verified
        } else {
            V::Invalid
        };
        let len = contents.checkpoint.log_length as u64;
        let checkpoint = match self.checkpoint_at(up, epoch, len).await {
            Ok(v)
                if v.log_root() == &contents.checkpoint.log_root
                    && v.map_root() == &contents.checkpoint.map_root =>
            {
                V::Verified
            }
            _ => V::Invalid,
        };
        Answer::json(
            StatusCode::OK,
            wire::encode_json(&wire::CheckpointVerificationResponse {
                checkpoint,
                signature,
                retry_after: None,
            }),
        )
    }

    // ---- offline ----

    fn remember_answer(
        &self,
        up: &Upstream,
        epoch: u64,
        kind: &'static str,
        request: &[u8],
        answer: &Bytes,
    ) {
        if answer.len() > MAX_OFFLINE_BYTES / 4 {
            return;
        }
        let key = (kind, *BlobDigest::of(request).as_bytes());
        if let Ok(mut v) = up.verified.lock() {
            // Proven in another epoch than the current one: not kept.
            if v.epoch != Some(epoch) {
                return;
            }
            if let Some(old) = v.answers.shift_remove(&key) {
                v.answer_bytes -= old.len();
            }
            while v.answer_bytes + answer.len() > MAX_OFFLINE_BYTES {
                match v.answers.shift_remove_index(0) {
                    Some((_, old)) => v.answer_bytes -= old.len(),
                    None => break,
                }
            }
            v.answer_bytes += answer.len();
            v.answers.insert(key, answer.clone());
        }
    }

    /// The upstream failed: a verified answer to the same request (in the
    /// current epoch; the request passed the gate), with a `Warning`, if
    /// it did not answer at all and bulwark has one; else the failure.
    fn offline_answer(
        &self,
        up: &Upstream,
        kind: &'static str,
        request: &[u8],
        e: &UpstreamError,
    ) -> Answer {
        if !unreachable(e) {
            return upstream_failure(&up.name, e);
        }
        let key = (kind, *BlobDigest::of(request).as_bytes());
        let cached = up
            .verified
            .lock()
            .ok()
            .and_then(|v| v.answers.get(&key).cloned());
        match cached {
            Some(body) => Answer::json(StatusCode::OK, body).header(
                "warning",
                crate::pipeline::refusal::stale_warning(
                    &up.name,
                    "unreachable; answer verified earlier",
                ),
            ),
            None => upstream_failure(&up.name, e),
        }
    }
}

/// The reference server's missing-log answer (the client initialises a
/// new package on it), in bulwark's own bytes.
fn missing_log(log_id: &LogId) -> Answer {
    let (status, body) = wire::log_not_found(log_id);
    Answer::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
        body,
    )
}

fn record_id(kind: &LogKind, r: &wire::PublishedRecord) -> Result<wire::RecordId, CheckError> {
    use warg_crypto::hash::Sha256;
    use warg_protocol::{operator, package, PublishedProtoEnvelope};
    Ok(match kind {
        LogKind::Operator => {
            let env: PublishedProtoEnvelope<operator::OperatorRecord> =
                PublishedProtoEnvelope::try_from(r.envelope.clone())
                    .map_err(|e| CheckError::Log(format!("operator record: {e:#}")))?;
            wire::RecordId::operator_record::<Sha256>(&env.envelope)
        }
        LogKind::Package(_) => {
            let env: PublishedProtoEnvelope<package::PackageRecord> =
                PublishedProtoEnvelope::try_from(r.envelope.clone())
                    .map_err(|e| CheckError::Log(format!("package record: {e:#}")))?;
            wire::RecordId::package_record::<Sha256>(&env.envelope)
        }
    })
}

/// A log length as the API types hold it (lengths come from checkpoints
/// that were `usize` on the wire, so this never saturates in practice).
fn to_len(n: u64) -> wire::RegistryLen {
    wire::RegistryLen::try_from(n).unwrap_or(wire::RegistryLen::MAX)
}

impl Front for WargFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        let path = req.uri().path();
        if req.method() == Method::GET {
            if let Some(rest) = path.strip_prefix(CONTENT_PREFIX) {
                if let Some((name, _)) = rest.split_once('/') {
                    if self.upstream(name).is_some() {
                        return Some("warg.content_bytes");
                    }
                }
            }
        }
        Some(match Route::parse(req.method(), path)? {
            Route::FetchCheckpoint => "warg.fetch_checkpoint",
            Route::FetchLogs => "warg.fetch_logs",
            Route::FetchNames => "warg.fetch_names",
            Route::ProveConsistency => "warg.proof_consistency",
            Route::ProveInclusion => "warg.proof_inclusion",
            Route::ContentSources { .. } => "warg.content_sources",
            Route::ContentFile { .. } => "warg.content_file",
            Route::Ledger | Route::LedgerRecords { .. } => "warg.ledger",
            Route::VerifyCheckpoint => "warg.verify_checkpoint",
            Route::PublishRecord { .. } => "warg.publish",
            Route::GetRecord { .. } => "warg.record",
            Route::UploadContent { .. } => "warg.upload",
            Route::WellKnown => "warg.well_known",
        })
    }

    fn handle<'a>(
        &'a self,
        route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        Box::pin(async move {
            if route == "warg.content_bytes" {
                let path = req.uri().path().to_string();
                return match self.content_route(&path).await {
                    Some(a) => a.into_response_for(req.headers(), req.method()),
                    None => {
                        Answer::message(StatusCode::NOT_FOUND, "no such content").into_response()
                    }
                };
            }
            let Some(r) = Route::parse(req.method(), req.uri().path()) else {
                return Answer::message(StatusCode::NOT_FOUND, "not found").into_response();
            };
            self.handle_route(r, req).await.into_response()
        })
    }
}
