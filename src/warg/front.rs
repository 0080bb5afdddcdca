//! The Warg API v1 front: bulwark as the home registry of Warg clients,
//! federating namespaces to upstream Warg registries and serving only what
//! it verified.
//!
//! `main.rs` builds it with [`WargFront::new`] (sharing the server's trust
//! state and blob store) and adds it to the server. Per request:
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
//! - **Checkpoints** are checked (pinned key, signature, operator log
//!   validated and granting `commit`, operator head included) and offered to
//!   the trust state with a consistency proof from the last accepted one
//!   (fork → quarantine with evidence; rewind refused); too old → refused.
//! - **Logs** returned are validated in full from their first record, and
//!   each log's head proven included (log and map) in the checkpoint the
//!   client asked about; the records returned must be records of that
//!   validated log at their registry index.
//! - **Proofs** the client asks for are checked before they are returned
//!   (count and positions, roots of verified checkpoints).
//! - **Content**: `contentSources` point at bulwark's own
//!   `/content/<upstream>/sha256-<hex>`; bulwark fetches the bytes, checks
//!   their SHA-256 against a digest a validated release names, stores them,
//!   and only then serves them. A digest no verified release names is 404.
//! - **Offline**: when an upstream does not answer, its last verified
//!   checkpoint and stored content are served with a `Warning` header.
//! - **Publishing** is forwarded to the owning upstream unchanged.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use indexmap::IndexMap;

use crate::config::{Config, Protocol};
use crate::federation::Federation;
use crate::server::{full, read_body, read_body_within, Front, ReqBody, ResBody};
use crate::store::{Digest as BlobDigest, FsBlobStore};
use crate::tlog::{Checkpoint as TlogCheckpoint, Hash as TlogHash};
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamOptions, UpstreamRequest};
use crate::verify::trust::{ConsistencyProof, TrustError, TrustState};
use crate::warg::checks::{self, CheckError, LogKind, PinnedKey, ValidatedLog};
use crate::warg::verify::{
    self as wv, LeafRef, OperatorState, PackageState, VerifiedCheckpoint, WargVerifyError,
};
use crate::warg::wire::{
    self, ContentSource, ContentSourcesResponse, FetchLogsRequest, FetchLogsResponse,
    FetchPackageNamesRequest, FetchPackageNamesResponse, InclusionRequest, InclusionResponse,
    LogId, LogLeaf, PackageName, PublishRecordRequest, RegistryIndex, Route, SignedCheckpoint,
    TimestampedCheckpoint,
};

/// Largest content blob fetched from an upstream.
const MAX_CONTENT: u64 = 512 * 1024 * 1024;
/// Most records bulwark reads from one log to validate it.
const MAX_LOG_RECORDS: usize = 100_000;
/// Leaves a ledger page holds (the reference server's limit).
const LEDGER_PAGE: u64 = 1000;
/// The longest registry log bulwark verifies for the ledger routes.
const MAX_LEDGER: u64 = 1_000_000;
/// Most verified ledgers (one per checkpoint log length) kept per upstream;
/// together they also hold at most `MAX_LEDGER` leaves, beyond the newest.
const MAX_LEDGERS: usize = 4;
/// Most verified answers kept per upstream for offline serving.
const MAX_OFFLINE_ANSWERS: usize = 4096;
/// The route prefix of bulwark's own content URLs.
const CONTENT_PREFIX: &str = "/content/";

/// A refusal or pass-through answer: status, JSON body, extra headers.
struct Answer {
    status: StatusCode,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    content_type: &'static str,
    /// Streamed content (a stored blob) sent instead of `body`.
    stream: Option<ResBody>,
}

impl Answer {
    fn json(status: StatusCode, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            body: body.into(),
            headers: Vec::new(),
            content_type: wire::CONTENT_TYPE_JSON,
            stream: None,
        }
    }

    fn message(status: StatusCode, msg: impl AsRef<str>) -> Answer {
        Answer::json(status, wire::message_body(status.as_u16(), msg.as_ref()))
    }

    fn header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response<ResBody> {
        let mut res = Response::new(self.stream.unwrap_or_else(|| full(self.body)));
        *res.status_mut() = self.status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
        res
    }
}

fn refuse(up: &str, e: impl std::fmt::Display) -> Answer {
    tracing::warn!(upstream = up, "warg: refused: {e}");
    Answer::message(
        StatusCode::BAD_GATEWAY,
        format!("bulwark refused the answer of upstream `{up}`: {e}"),
    )
}

fn check_refusal(up: &str, e: &CheckError) -> Answer {
    refuse(up, format!("{} check failed: {e}", e.check()))
}

/// A short name of the `warg::verify` check that failed (an adapter: the
/// verifier's error has no such method).
fn verify_check(e: &WargVerifyError) -> &'static str {
    use WargVerifyError as E;
    match e {
        E::CheckpointKey { .. } => "operator-key",
        E::CheckpointSignature { .. } => "checkpoint-signature",
        E::NotCommitter { .. } => "commit-permission",
        E::TimestampRewind { .. } | E::Rewind { .. } => "rewind",
        E::ConsistencyLengths { .. } | E::ConsistencyRoot { .. } => "consistency",
        E::TooManyRecords { .. }
        | E::RecordOrder { .. }
        | E::FetchToken { .. }
        | E::RecordDecode { .. }
        | E::RecordInvalid { .. } => "log-validation",
        E::NothingToProve { .. }
        | E::ProofCount { .. }
        | E::ProofKind { .. }
        | E::ProofLength { .. }
        | E::IndexPastLog { .. }
        | E::ProofLeaf { .. }
        | E::ProofUnusable { .. }
        | E::MapPeers { .. }
        | E::RootMismatch { .. }
        | E::Bundle(_) => "inclusion",
        _ => "checkpoint",
    }
}

fn verify_refusal(up: &str, e: &WargVerifyError) -> Answer {
    refuse(up, format!("{} check failed: {e}", verify_check(e)))
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

fn trust_refusal(e: &TrustError) -> Answer {
    tracing::warn!("warg: trust state refused: {e}");
    Answer::message(StatusCode::BAD_GATEWAY, format!("bulwark refused: {e}"))
}

fn upstream_failure(up: &str, e: &UpstreamError) -> Answer {
    Answer::message(
        StatusCode::BAD_GATEWAY,
        format!("upstream `{up}` failed: {e}"),
    )
}

/// Whether an upstream error means it did not answer (offline mode).
fn unreachable(e: &UpstreamError) -> bool {
    !matches!(
        e,
        UpstreamError::Status { .. } | UpstreamError::TooLarge { .. }
    )
}

/// What bulwark verified about one upstream (memory; the trust state holds
/// the checkpoints durably).
#[derive(Default)]
struct Verified {
    /// Verified checkpoints by log length (the newest envelope per length).
    checkpoints: BTreeMap<u64, VerifiedCheckpoint>,
    /// Validated logs by (log, log length).
    logs: HashMap<(LogKind, u64), Arc<ValidatedLog>>,
    /// Content digests (`sha256:…`) named by validated releases.
    content: HashSet<String>,
    /// Verified leaves by registry index.
    leaves: HashMap<RegistryIndex, LogLeaf>,
    /// The whole registry log by verified length, its root checked (the
    /// longest few, see `MAX_LEDGERS`).
    ledgers: BTreeMap<u64, Arc<Vec<LogLeaf>>>,
    /// Verified answers to fetch-logs and proof requests, by (kind,
    /// SHA-256 of the request body): served, with a `Warning`, while the
    /// upstream does not answer.
    answers: HashMap<(&'static str, [u8; 32]), Bytes>,
}

struct Upstream {
    name: String,
    client: UpstreamClient,
    key: PinnedKey,
    max_age: Duration,
    verified: Mutex<Verified>,
    /// Held while a ledger is fetched, so each is fetched and hashed once.
    ledger_fetch: tokio::sync::Mutex<()>,
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
    /// Log ID → package name, learnt from names seen.
    names: Mutex<HashMap<LogId, PackageName>>,
    https: bool,
}

impl WargFront {
    /// The front over `config`'s Warg upstreams, sharing the server's trust
    /// state and blob store; `None` when no Warg upstream is configured.
    pub fn new(
        config: &Config,
        federation: Arc<Federation>,
        trust: TrustState,
        blobs: FsBlobStore,
    ) -> anyhow::Result<Option<WargFront>> {
        let mut upstreams = Vec::new();
        let mut default = None;
        for u in config
            .upstreams
            .iter()
            .filter(|u| u.protocol == Protocol::Warg)
        {
            let key_text = u.operator_key.as_deref().ok_or_else(|| {
                anyhow::anyhow!("upstream {}: a Warg upstream needs operator_key", u.name)
            })?;
            let key = PinnedKey::parse(key_text)
                .map_err(|e| anyhow::anyhow!("upstream {}: {e}", u.name))?;
            let mut opts = UpstreamOptions::new(u.name.clone(), u.url.clone());
            opts.bearer_token = u.token.as_ref().map(|t| t.expose().to_string());
            opts.extra_ca_pem = u.ca_file.clone();
            opts.max_response_bytes = MAX_CONTENT;
            // Warg answers change every few seconds (checkpoints): never
            // remember a 404 (a package may be published a moment later).
            opts.negative_ttl = Duration::ZERO;
            opts.retries = 1;
            if u.default {
                default = Some(upstreams.len());
            }
            upstreams.push(Arc::new(Upstream {
                name: u.name.clone(),
                client: UpstreamClient::new(opts)?,
                key,
                max_age: u.checkpoint_age_bound(&config.server),
                verified: Mutex::new(Verified::default()),
                unreachable: AtomicBool::new(false),
                ledger_fetch: tokio::sync::Mutex::new(()),
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
            names: Mutex::new(HashMap::new()),
            https: config.server.tls.is_some(),
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
        match self.federation.warg_owner(namespace) {
            Some(u) => self.upstream(&u.name),
            None => self.default_upstream(),
        }
    }

    async fn blobs(&self) -> Result<&FsBlobStore, Answer> {
        Ok(&self.blobs)
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
        match route {
            Route::WellKnown => Answer {
                status: StatusCode::NOT_FOUND,
                body: Bytes::new(),
                headers: Vec::new(),
                content_type: "text/plain",
                stream: None,
            },
            Route::FetchCheckpoint => match self.or_default(up) {
                Ok(up) => self.fetch_checkpoint(&up).await,
                Err(a) => a,
            },
            Route::FetchLogs => self.fetch_logs(up, req).await,
            Route::FetchNames => match self.or_default(up) {
                Ok(up) => self.fetch_names(&up, req).await,
                Err(a) => a,
            },
            Route::ProveInclusion => match self.or_default(up) {
                Ok(up) => self.prove_inclusion(&up, req).await,
                Err(a) => a,
            },
            Route::ProveConsistency => match self.or_default(up) {
                Ok(up) => self.prove_consistency(&up, req).await,
                Err(a) => a,
            },
            Route::ContentSources { digest } => match self.or_default(up) {
                Ok(up) => {
                    let host = req
                        .headers()
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("localhost")
                        .to_string();
                    self.content_sources(&up, &digest.to_string(), &host).await
                }
                Err(a) => a,
            },
            Route::ContentFile { digest } => match self.or_default(up) {
                Ok(up) => self.content(&up, &digest.to_string()).await,
                Err(a) => a,
            },
            Route::Ledger => match self.or_default(up) {
                Ok(up) => self.ledger_sources(&up).await,
                Err(a) => a,
            },
            Route::LedgerRecords { start } => match self.or_default(up) {
                Ok(up) => self.ledger_records(&up, start).await,
                Err(a) => a,
            },
            Route::VerifyCheckpoint => match self.or_default(up) {
                Ok(up) => self.verify_checkpoint(&up, req).await,
                Err(a) => a,
            },
            Route::PublishRecord { log_id } => self.publish(up, &log_id, req).await,
            Route::GetRecord { log_id, .. } | Route::UploadContent { log_id, .. } => {
                let up = match up {
                    Some(u) => u,
                    None => match self.route_log(&log_id).await {
                        Ok(u) => u,
                        Err(a) => return a,
                    },
                };
                self.pass_through(&up, req).await
            }
        }
    }

    // ---- upstream calls ----

    async fn post_json(
        &self,
        up: &Upstream,
        path: &str,
        body: Vec<u8>,
    ) -> Result<crate::upstream::UpstreamResponse, UpstreamError> {
        up.client
            .send(UpstreamRequest::post_json_idempotent(path, body))
            .await
    }

    /// Forwards a request as is (minus `Warg-Registry`) and passes the
    /// answer back.
    async fn pass_through(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let ct = req.headers().get(header::CONTENT_TYPE).cloned();
        // A GET's body is not forwarded: drain it, never buffer it.
        let body = if method == Method::GET {
            crate::server::drain_body(req.into_body())
                .await
                .map(|()| Bytes::new())
        } else {
            read_body(req.into_body()).await
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => return body_error(e),
        };
        let request = if method == Method::GET {
            UpstreamRequest::get(path)
        } else {
            UpstreamRequest::post(
                path,
                ct.unwrap_or(HeaderValue::from_static("application/json")),
                body,
            )
        };
        match up.client.send(request).await {
            Ok(r) => {
                let ct = r.content_type().unwrap_or("");
                let content_type = if ct.starts_with(wire::CONTENT_TYPE_LEDGER) {
                    wire::CONTENT_TYPE_LEDGER
                } else if ct.starts_with("application/json") || r.body.is_empty() {
                    wire::CONTENT_TYPE_JSON
                } else {
                    "text/plain; charset=utf-8"
                };
                Answer {
                    status: r.status,
                    body: r.body,
                    headers: Vec::new(),
                    content_type,
                    stream: None,
                }
            }
            Err(e) => upstream_failure(&up.name, &e),
        }
    }

    // ---- checkpoints ----

    /// Fetches, checks and accepts the upstream's current checkpoint.
    /// `Ok((envelope, warning))`: the warning is set when the upstream did
    /// not answer and the last verified checkpoint stands in.
    async fn current_checkpoint(
        &self,
        up: &Upstream,
    ) -> Result<(SignedCheckpoint, Option<String>), Answer> {
        let resp = match up.client.get("/v1/fetch/checkpoint").await {
            Ok(r) => r,
            Err(e) if unreachable(&e) => {
                up.unreachable.store(true, Ordering::Relaxed);
                return self.offline_checkpoint(up, &e).await;
            }
            Err(e) => return Err(upstream_failure(&up.name, &e)),
        };
        up.unreachable.store(false, Ordering::Relaxed);
        if resp.status != StatusCode::OK {
            return Err(refuse(
                &up.name,
                format!("checkpoint request answered {}", resp.status),
            ));
        }
        let cp: SignedCheckpoint = wire::decode_json("checkpoint", &resp.body, 64 * 1024)
            .map_err(|e| refuse(&up.name, e))?;
        self.accept_checkpoint(up, &cp).await?;
        Ok((cp, None))
    }

    async fn offline_checkpoint(
        &self,
        up: &Upstream,
        e: &UpstreamError,
    ) -> Result<(SignedCheckpoint, Option<String>), Answer> {
        let trust = self.trust.clone();
        let name = up.name.clone();
        let max_age = up.max_age;
        let v = tokio::task::spawn_blocking(move || {
            trust.last_verified(&name, SystemTime::now(), max_age)
        })
        .await
        .map_err(|j| Answer::message(StatusCode::INTERNAL_SERVER_ERROR, j.to_string()))?
        .map_err(|t| match t {
            TrustError::NoCheckpoint { .. } => upstream_failure(&up.name, e),
            other => trust_refusal(&other),
        })?;
        let cp: SignedCheckpoint =
            wire::decode_json("stored checkpoint", &v.checkpoint.note, 64 * 1024)
                .map_err(|e| refuse(&up.name, e))?;
        let warning = v.warning().unwrap_or_else(|| {
            format!(
                "110 bulwark \"Response is Stale: upstream {} is unreachable; last verified checkpoint of size {}\"",
                up.name, v.checkpoint.size
            )
        });
        Ok((cp, Some(warning)))
    }

    /// Verifies a checkpoint envelope with `warg::verify`: the operator log
    /// at its length fetched and validated, the pinned key's signature and
    /// `commit` permission, the operator head included.
    async fn verify_envelope(
        &self,
        up: &Upstream,
        cp: &SignedCheckpoint,
    ) -> Result<VerifiedCheckpoint, Answer> {
        let len = cp.as_ref().checkpoint.log_length as u64;
        let records = self
            .fetch_records(up, &LogKind::Operator, len)
            .await?
            .ok_or_else(|| refuse(&up.name, "the upstream has no operator log"))?;
        let log =
            validate(&LogKind::Operator, &records).map_err(|e| verify_refusal(&up.name, &e))?;
        let opstate = log
            .operator
            .as_ref()
            .ok_or_else(|| refuse(&up.name, "no operator state"))?;
        let vcp = wv::verify_checkpoint(cp, &up.key.key, opstate)
            .map_err(|e| verify_refusal(&up.name, &e))?;
        self.prove_head(up, &vcp, &LogKind::Operator, &log).await?;
        // Served only once every record is proven at its index: a longer
        // operator log is proven by `validated_log` when it is fetched.
        if log.records.len() == 1 {
            self.remember_log(up, LogKind::Operator, len, Arc::new(log))?;
        }
        Ok(vcp)
    }

    /// The full checks of a checkpoint, then the trust state.
    async fn accept_checkpoint(&self, up: &Upstream, cp: &SignedCheckpoint) -> Result<(), Answer> {
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let len = contents.checkpoint.log_length as u64;
        // Freshness while the upstream answers.
        let ts = SystemTime::UNIX_EPOCH + Duration::from_secs(contents.timestamp);
        let age = SystemTime::now().duration_since(ts).unwrap_or_default();
        if age > up.max_age {
            return Err(refuse(
                &up.name,
                format!(
                    "freshness check failed: checkpoint of length {len} was signed {}s ago, more than the {}s allowed",
                    age.as_secs(),
                    up.max_age.as_secs()
                ),
            ));
        }
        let vcp = self.verify_envelope(up, cp).await?;
        // Trust state: consistency from the last accepted checkpoint.
        let root = TlogHash(
            checks::hash_bytes(&contents.checkpoint.log_root)
                .map_err(|e| check_refusal(&up.name, &e))?,
        );
        let tcp = TlogCheckpoint {
            origin: format!("warg:{}", up.key.key_id),
            size: len,
            root,
            extensions: Vec::new(),
        };
        let latest = {
            let trust = self.trust.clone();
            let name = up.name.clone();
            tokio::task::spawn_blocking(move || trust.latest(&name))
                .await
                .map_err(|j| Answer::message(StatusCode::INTERNAL_SERVER_ERROR, j.to_string()))?
                .map_err(|e| trust_refusal(&e))?
        };
        let mut proof_hashes = Vec::new();
        let mut from = 0;
        if let Some(l) = latest.filter(|l| l.size < len && l.size > 0) {
            let body = wire::encode_json(&wire::ConsistencyRequest {
                from: to_len(l.size),
                to: to_len(len),
            });
            let resp = self
                .post_json(up, "/v1/proof/consistency", body)
                .await
                .map_err(|e| upstream_failure(&up.name, &e))?;
            if resp.status != StatusCode::OK {
                return Err(refuse(
                    &up.name,
                    format!(
                        "consistency proof {} → {len} answered {}",
                        l.size, resp.status
                    ),
                ));
            }
            let c: wire::ConsistencyResponse =
                wire::decode_json("consistency response", &resp.body, wire::DEFAULT_JSON_LIMIT)
                    .map_err(|e| refuse(&up.name, e))?;
            // A malformed bundle is a refusal, not evidence: the bundle is
            // checked (counts, lengths) and converted for the trust state,
            // which judges whether it links the accepted root to this one
            // (and quarantines with evidence if it does not).
            let converted = checks::check_consistency(&c.proof, l.size, len)
                .map_err(|e| check_refusal(&up.name, &e))?;
            if converted.new_root != root.0 {
                return Err(check_refusal(
                    &up.name,
                    &CheckError::Consistency(format!(
                        "the proof {} → {len} does not end at the checkpoint's log root",
                        l.size
                    )),
                ));
            }
            proof_hashes = converted.rfc;
            from = l.size;
        }
        let note = wire::encode_json(cp);
        let trust = self.trust.clone();
        let name = up.name.clone();
        tokio::task::spawn_blocking(move || {
            trust.advance(
                &name,
                &note,
                &tcp,
                ConsistencyProof {
                    from_size: from,
                    hashes: &proof_hashes,
                },
                SystemTime::now(),
            )
        })
        .await
        .map_err(|j| Answer::message(StatusCode::INTERNAL_SERVER_ERROR, j.to_string()))?
        .map_err(|e| trust_refusal(&e))?;
        self.remember_checkpoint(up, vcp)
    }

    fn remember_checkpoint(&self, up: &Upstream, vcp: VerifiedCheckpoint) -> Result<(), Answer> {
        let mut v = up.verified.lock().map_err(|_| poisoned())?;
        v.checkpoints.insert(vcp.log_length() as u64, vcp);
        // Keep memory bounded: the last 64 lengths.
        while v.checkpoints.len() > 64 {
            v.checkpoints.pop_first();
        }
        Ok(())
    }

    /// A verified checkpoint of length `len`: memory, else one the trust
    /// state accepted at that length, verified again.
    async fn checkpoint_at(&self, up: &Upstream, len: u64) -> Result<VerifiedCheckpoint, Answer> {
        if let Some(cp) = up
            .verified
            .lock()
            .map_err(|_| poisoned())?
            .checkpoints
            .get(&len)
        {
            return Ok(cp.clone());
        }
        let trust = self.trust.clone();
        let name = up.name.clone();
        let hist = tokio::task::spawn_blocking(move || trust.history(&name, 1024))
            .await
            .map_err(|j| Answer::message(StatusCode::INTERNAL_SERVER_ERROR, j.to_string()))?
            .map_err(|e| trust_refusal(&e))?;
        if let Some(a) = hist.into_iter().find(|a| a.size == len) {
            let cp: SignedCheckpoint = wire::decode_json("stored checkpoint", &a.note, 64 * 1024)
                .map_err(|e| refuse(&up.name, e))?;
            let vcp = self.verify_envelope(up, &cp).await?;
            self.remember_checkpoint(up, vcp.clone())?;
            return Ok(vcp);
        }
        Err(refuse(
            &up.name,
            format!("log length {len} is not a checkpoint bulwark has verified"),
        ))
    }

    async fn fetch_checkpoint(&self, up: &Upstream) -> Answer {
        match self.current_checkpoint(up).await {
            Ok((cp, warning)) => {
                let a = Answer::json(StatusCode::OK, wire::encode_json(&cp));
                match warning {
                    Some(w) => a.header("warning", w),
                    None => a,
                }
            }
            Err(a) => a,
        }
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
            let resp = self
                .post_json(up, "/v1/fetch/logs", wire::encode_json(&req))
                .await
                .map_err(|e| upstream_failure(&up.name, &e))?;
            if resp.status == StatusCode::NOT_FOUND {
                if let LogKind::Package(_) = kind {
                    return Ok(None);
                }
            }
            if resp.status != StatusCode::OK {
                return Err(refuse(
                    &up.name,
                    format!(
                        "fetching the log {} answered {}",
                        kind.log_id(),
                        resp.status
                    ),
                ));
            }
            let mut body: FetchLogsResponse =
                wire::decode_json("fetch logs response", &resp.body, wire::DEFAULT_JSON_LIMIT)
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
        let resp = self
            .post_json(up, "/v1/proof/inclusion", body)
            .await
            .map_err(|e| upstream_failure(&up.name, &e))?;
        if resp.status != StatusCode::OK {
            return Err(refuse(
                &up.name,
                format!("inclusion proof answered {}", resp.status),
            ));
        }
        let inc: InclusionResponse =
            wire::decode_json("inclusion response", &resp.body, wire::DEFAULT_JSON_LIMIT)
                .map_err(|e| refuse(&up.name, e))?;
        wv::verify_inclusion(vcp, &[leaf], &inc).map_err(|e| verify_refusal(&up.name, &e))
    }

    /// Proves every record of a validated log but its head (see
    /// `prove_head`) included in `vcp` at its registry index: leaf `i` of
    /// the verified ledger at `vcp`'s length must be the log ID and record
    /// ID of the record claiming registry index `i`.
    async fn prove_indexes(
        &self,
        up: &Upstream,
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
        let leaves = self.verified_ledger(up, len, vcp.log_root()).await?;
        let log_id = kind.log_id();
        for r in rest {
            let i = r.registry_index;
            let seen = leaves.get(i);
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
        kind: LogKind,
        len: u64,
        log: Arc<ValidatedLog>,
    ) -> Result<(), Answer> {
        let mut v = up.verified.lock().map_err(|_| poisoned())?;
        v.content.extend(log.releases.iter().cloned());
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
        if v.logs.len() > 4096 {
            v.logs.clear();
        }
        v.logs.insert((kind, len), log);
        Ok(())
    }

    /// A whole log at `vcp`'s length, validated, its head proven included.
    /// `None`: the upstream has no such log.
    async fn validated_log(
        &self,
        up: &Upstream,
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
        self.prove_indexes(up, vcp, kind, &log).await?;
        let log = Arc::new(log);
        self.remember_log(up, kind.clone(), len, log.clone())?;
        Ok(Some(log))
    }

    /// Learns package names (from a fetch-names answer).
    fn learn(&self, names: impl IntoIterator<Item = (LogId, PackageName)>) {
        if let Ok(mut m) = self.names.lock() {
            for (id, name) in names {
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
            let Ok(resp) = self.post_json(up, "/v1/fetch/names", body.clone()).await else {
                continue;
            };
            if resp.status != StatusCode::OK {
                continue;
            }
            let Ok(r) = wire::decode_json::<FetchPackageNamesResponse>(
                "fetch names response",
                &resp.body,
                wire::DEFAULT_JSON_LIMIT,
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
            wire::DEFAULT_JSON_LIMIT,
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
                // plus the hint, as the reference client expects.
                for log_id in request.packages.keys() {
                    if let Some(name) = self.name_of(log_id).await {
                        if let Some(owner) = self.owner(name.namespace()) {
                            if owner.name != home.name {
                                let (status, body) = wire::log_not_found(log_id);
                                let mut a = Answer::json(
                                    StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
                                    body,
                                );
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
        let resp = match self.post_json(&up, "/v1/fetch/logs", body.to_vec()).await {
            Ok(r) => r,
            Err(e) => return self.offline_answer(&up, "logs", &body, &e),
        };
        if resp.status != StatusCode::OK {
            return Answer::json(resp.status, resp.body);
        }
        let answer: FetchLogsResponse =
            match wire::decode_json("fetch logs response", &resp.body, wire::DEFAULT_JSON_LIMIT) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let cp = match self.checkpoint_at(&up, request.log_length as u64).await {
            Ok(c) => c,
            Err(a) => return a,
        };
        if !answer.operator.is_empty() {
            if let Err(a) = self
                .check_returned(&up, &LogKind::Operator, &answer.operator, &cp)
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
                .check_returned(&up, &LogKind::Package(log_id.clone()), records, &cp)
                .await
            {
                return a;
            }
        }
        self.remember_answer(&up, "logs", &body, &resp.body);
        Answer::json(StatusCode::OK, resp.body)
    }

    /// Every returned record must be a record of the validated log, at its
    /// registry index (where `validated_log` proved it included in `cp`).
    async fn check_returned(
        &self,
        up: &Upstream,
        kind: &LogKind,
        records: &[wire::PublishedRecord],
        cp: &VerifiedCheckpoint,
    ) -> Result<(), Answer> {
        let log = self
            .validated_log(up, kind, cp)
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

    async fn fetch_names(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        let a = self.pass_through(up, req).await;
        if a.status != StatusCode::OK {
            return a;
        }
        let r = match wire::decode_json::<FetchPackageNamesResponse>(
            "fetch names response",
            &a.body,
            wire::DEFAULT_JSON_LIMIT,
        ) {
            Ok(r) => r,
            Err(e) => return refuse(&up.name, e),
        };
        // A name is only passed on if it hashes to the log ID it answers.
        let mut names = Vec::new();
        for (id, n) in r.packages {
            if let Some(n) = n {
                if wire::package_log_id(&n) != id {
                    return refuse(
                        &up.name,
                        format!("name check failed: package name {n} does not hash to log {id}"),
                    );
                }
                names.push((id, n));
            }
        }
        self.learn(names);
        a
    }

    // ---- proofs ----

    async fn prove_inclusion(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        let (body, request) =
            match read_json::<InclusionRequest>(req, "inclusion request", wire::DEFAULT_JSON_LIMIT)
                .await
            {
                Ok(v) => v,
                Err(a) => return a,
            };
        let resp = match self
            .post_json(up, "/v1/proof/inclusion", body.to_vec())
            .await
        {
            Ok(r) => r,
            Err(e) => return self.offline_answer(up, "inclusion", &body, &e),
        };
        if resp.status != StatusCode::OK {
            return Answer::json(resp.status, resp.body);
        }
        let inc: InclusionResponse =
            match wire::decode_json("inclusion response", &resp.body, wire::DEFAULT_JSON_LIMIT) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let cp = match self.checkpoint_at(up, request.log_length as u64).await {
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
        self.remember_answer(up, "inclusion", &body, &resp.body);
        Answer::json(StatusCode::OK, resp.body)
    }

    async fn prove_consistency(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        let (body, request) = match read_json::<wire::ConsistencyRequest>(
            req,
            "consistency request",
            wire::DEFAULT_JSON_LIMIT,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let resp = match self
            .post_json(up, "/v1/proof/consistency", body.to_vec())
            .await
        {
            Ok(r) => r,
            Err(e) => return self.offline_answer(up, "consistency", &body, &e),
        };
        if resp.status != StatusCode::OK {
            return Answer::json(resp.status, resp.body);
        }
        let c: wire::ConsistencyResponse =
            match wire::decode_json("consistency response", &resp.body, wire::DEFAULT_JSON_LIMIT) {
                Ok(r) => r,
                Err(e) => return refuse(&up.name, e),
            };
        let (old, new) = match (
            self.checkpoint_at(up, request.from as u64).await,
            self.checkpoint_at(up, request.to as u64).await,
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), _) | (_, Err(a)) => return a,
        };
        match wv::verify_consistency(&old, &new, &c.proof) {
            Ok(()) => {
                self.remember_answer(up, "consistency", &body, &resp.body);
                Answer::json(StatusCode::OK, resp.body)
            }
            Err(e) => verify_refusal(&up.name, &e),
        }
    }

    // ---- ledger ----

    /// `GET /v1/ledger` for the current verified checkpoint, in the
    /// reference server's shape (relative URLs, 1000 leaves a source).
    async fn ledger_sources(&self, up: &Upstream) -> Answer {
        let (cp, warning) = match self.current_checkpoint(up).await {
            Ok(c) => c,
            Err(a) => return a,
        };
        let len = cp.as_ref().checkpoint.log_length;
        let step = LEDGER_PAGE as usize;
        let sources = (0..len)
            .step_by(step)
            .map(|first| wire::LedgerSource {
                first_registry_index: first,
                last_registry_index: (first + step).min(len) - 1,
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
    async fn ledger_records(&self, up: &Upstream, start: RegistryIndex) -> Answer {
        let (cp, _) = match self.current_checkpoint(up).await {
            Ok(c) => c,
            Err(a) => return a,
        };
        let len = cp.as_ref().checkpoint.log_length as u64;
        let leaves = match self
            .verified_ledger(up, len, &cp.as_ref().checkpoint.log_root)
            .await
        {
            Ok(l) => l,
            Err(a) => return a,
        };
        let from = (start as u64).min(len);
        let to = (from + LEDGER_PAGE).min(len);
        let mut body = Vec::with_capacity(((to - from) * 64) as usize);
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
        }
    }

    async fn verified_ledger(
        &self,
        up: &Upstream,
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
        use warg_transparency::log::{LogBuilder, VecLog};
        let mut log: VecLog<warg_crypto::hash::Sha256, LogLeaf> = VecLog::default();
        let mut leaves = Vec::new();
        while (leaves.len() as u64) < len {
            let path = format!("/v1/ledger/records/{}", leaves.len());
            let resp = up
                .client
                .get(&path)
                .await
                .map_err(|e| upstream_failure(&up.name, &e))?;
            if resp.status != StatusCode::OK || resp.body.is_empty() || resp.body.len() % 64 != 0 {
                return Err(refuse(
                    &up.name,
                    format!(
                        "ledger page {path} answered {} with {} bytes (expected a non-empty multiple of 64)",
                        resp.status,
                        resp.body.len()
                    ),
                ));
            }
            for chunk in resp.body.chunks_exact(64) {
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
        v.ledgers.insert(len, leaves.clone());
        // Keep the longest: evict the shortest while over either bound.
        while v.ledgers.len() > 1
            && (v.ledgers.len() > MAX_LEDGERS || v.ledgers.keys().sum::<u64>() > MAX_LEDGER)
        {
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
    async fn verify_checkpoint(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        use warg_crypto::{Encode as _, Signable as _};
        use wire::VerificationState as V;
        let (_, cp) = match read_json::<SignedCheckpoint>(req, "checkpoint", 64 * 1024).await {
            Ok(v) => v,
            Err(a) => return a,
        };
        let contents: &TimestampedCheckpoint = cp.as_ref();
        let signature = if cp.key_id() == &up.key.key_id
            && TimestampedCheckpoint::verify(&up.key.key, &contents.encode(), cp.signature())
                .is_ok()
        {
            V::Verified
        } else {
            V::Invalid
        };
        let len = contents.checkpoint.log_length as u64;
        let checkpoint = match self.checkpoint_at(up, len).await {
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

    fn remember_answer(&self, up: &Upstream, kind: &'static str, request: &[u8], answer: &Bytes) {
        let key = (kind, *BlobDigest::of(request).as_bytes());
        if let Ok(mut v) = up.verified.lock() {
            if v.answers.len() >= MAX_OFFLINE_ANSWERS {
                v.answers.clear();
            }
            v.answers.insert(key, answer.clone());
        }
    }

    /// The upstream failed: a verified answer to the same request, with a
    /// `Warning`, if it did not answer at all and bulwark has one (and the
    /// upstream is not quarantined); else the failure.
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
        if let Ok(crate::verify::trust::Status::Quarantined(_)) = self.trust.status(&up.name) {
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
                format!(
                    "110 bulwark \"Response is Stale: upstream {} is unreachable; answer verified earlier\"",
                    up.name
                ),
            ),
            None => upstream_failure(&up.name, e),
        }
    }

    // ---- content ----

    fn is_verified_content(&self, up: &Upstream, digest: &str) -> bool {
        up.verified
            .lock()
            .map(|v| v.content.contains(digest))
            .unwrap_or(false)
    }

    async fn content_sources(&self, up: &Upstream, digest: &str, host: &str) -> Answer {
        let known = self.is_verified_content(up, digest) || self.stored(digest).await;
        if !known {
            let parsed = match wire::parse_digest("content digest", digest) {
                Ok(d) => d,
                Err(e) => return Answer::message(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let err = wire::ContentError::ContentDigestNotFound(parsed);
            return Answer::json(StatusCode::NOT_FOUND, wire::encode_json(&err));
        }
        let scheme = if self.https { "https" } else { "http" };
        // The client's own Host (bulwark's address as the client reaches
        // it); anything but a host[:port] is not echoed into a URL.
        let sane = !host.is_empty()
            && host.len() <= 255
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !sane {
            return Answer::message(
                StatusCode::BAD_REQUEST,
                "the Host header is not a host[:port]",
            );
        }
        let hex = digest.trim_start_matches("sha256:");
        let url = format!("{scheme}://{host}{CONTENT_PREFIX}{}/sha256-{hex}", up.name);
        let Ok(parsed) = wire::parse_digest("content digest", digest) else {
            return Answer::message(StatusCode::BAD_REQUEST, "bad digest");
        };
        let mut sources = IndexMap::new();
        sources.insert(
            parsed,
            vec![ContentSource::HttpGet {
                url,
                accept_ranges: false,
                size: None,
            }],
        );
        Answer::json(
            StatusCode::OK,
            wire::encode_json(&ContentSourcesResponse {
                content_sources: sources,
            }),
        )
    }

    async fn stored(&self, digest: &str) -> bool {
        let Ok(d) = BlobDigest::parse(digest) else {
            return false;
        };
        match self.blobs().await {
            Ok(b) => b.contains(&d).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// The content bytes: from the store, else fetched, checked, stored.
    async fn content(&self, up: &Upstream, digest: &str) -> Answer {
        let d = match BlobDigest::parse(digest) {
            Ok(d) => d,
            Err(e) => return Answer::message(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let blobs = match self.blobs().await {
            Ok(b) => b,
            Err(a) => return a,
        };
        let quarantine = {
            let trust = self.trust.clone();
            let name = up.name.clone();
            tokio::task::spawn_blocking(move || trust.status(&name)).await
        };
        if let Ok(Ok(crate::verify::trust::Status::Quarantined(q))) = quarantine {
            return Answer::message(
                StatusCode::BAD_GATEWAY,
                format!(
                    "upstream `{}` is quarantined (evidence #{}): {}",
                    up.name, q.evidence, q.reason
                ),
            );
        }
        if let Ok(Some(blob)) = blobs.get_stream(&d).await {
            return stored_octets(blob);
        }
        if !self.is_verified_content(up, digest) {
            let err = wire::ContentError::ContentDigestNotFound(
                match wire::parse_digest("content digest", digest) {
                    Ok(p) => p,
                    Err(e) => return Answer::message(StatusCode::BAD_REQUEST, e.to_string()),
                },
            );
            return Answer::json(StatusCode::NOT_FOUND, wire::encode_json(&err));
        }
        let path = format!("/content/sha256-{}", digest.trim_start_matches("sha256:"));
        let resp = match up
            .client
            .send(
                UpstreamRequest::get(path)
                    .max_response_bytes(MAX_CONTENT)
                    .timeout(Duration::from_secs(600)),
            )
            .await
        {
            Ok(r) if r.status == StatusCode::OK => r,
            Ok(r) => return refuse(&up.name, format!("content {digest} answered {}", r.status)),
            Err(e) => return upstream_failure(&up.name, &e),
        };
        let got = BlobDigest::of(&resp.body);
        if got != d {
            return refuse(
                &up.name,
                format!(
                    "content digest check failed: the verified release names {digest}, the upstream sent bytes hashing to sha256:{}; nothing stored",
                    got.hex()
                ),
            );
        }
        if let Err(e) = blobs.put(&d, resp.body.clone()).await {
            return Answer::message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        octets(resp.body)
    }

    async fn content_route(&self, path: &str) -> Option<Answer> {
        let rest = path.strip_prefix(CONTENT_PREFIX)?;
        let (name, file) = rest.split_once('/')?;
        let up = self.upstream(name)?.clone();
        let hex = file.strip_prefix("sha256-")?;
        let digest = format!("sha256:{hex}");
        wire::parse_digest("content digest", &digest).ok()?;
        let mut a = self.content(&up, &digest).await;
        if a.status == StatusCode::OK {
            // Offline: say so when the upstream's checkpoint cannot be
            // confirmed right now.
            let trust = self.trust.clone();
            let n = up.name.clone();
            let max_age = up.max_age;
            if let Ok(Ok(v)) = tokio::task::spawn_blocking(move || {
                trust.last_verified(&n, SystemTime::now(), max_age)
            })
            .await
            {
                let warning = v.warning().or_else(|| {
                    up.unreachable.load(Ordering::Relaxed).then(|| {
                        format!(
                            "110 bulwark \"Response is Stale: upstream {} is unreachable; content verified against its last verified checkpoint of size {}\"",
                            up.name, v.checkpoint.size
                        )
                    })
                });
                if let Some(w) = warning {
                    a = a.header("warning", w);
                }
            }
        }
        Some(a)
    }

    // ---- publishing ----

    async fn publish(
        &self,
        up: Option<Arc<Upstream>>,
        log_id: &LogId,
        req: Request<ReqBody>,
    ) -> Answer {
        let (parts, body) = req.into_parts();
        // A publish request is a JSON document: bounded while it is read.
        let body = match read_body_within(body, wire::DEFAULT_JSON_LIMIT).await {
            Ok(b) => b,
            Err(e) => return body_error(e),
        };
        let up = match up {
            Some(u) => u,
            None => {
                let name = wire::decode_json::<PublishRecordRequest>(
                    "publish request",
                    &body,
                    wire::DEFAULT_JSON_LIMIT,
                )
                .ok()
                .map(|r| r.package_name.into_owned());
                match name {
                    Some(n) if &wire::package_log_id(&n) == log_id => {
                        self.learn([(log_id.clone(), n.clone())]);
                        match self.owner(n.namespace()) {
                            Some(u) => u.clone(),
                            None => {
                                return Answer::message(
                                    StatusCode::NOT_FOUND,
                                    "no upstream owns this namespace",
                                )
                            }
                        }
                    }
                    _ => match self.route_log(log_id).await {
                        Ok(u) => u,
                        Err(a) => return a,
                    },
                }
            }
        };
        let req = Request::from_parts(parts, crate::server::full(body));
        self.pass_through(&up, req).await
    }
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

fn octets(bytes: Bytes) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: bytes,
        headers: Vec::new(),
        content_type: "application/octet-stream",
        stream: None,
    }
}

/// Stored content, streamed from the store.
fn stored_octets(blob: crate::store::Blob) -> Answer {
    let mut a = octets(Bytes::new());
    a.stream = Some(crate::server::stream_body(blob.len(), blob.into_stream()));
    a
}

/// The answer for a client body that could not be read: the body reader's
/// own status (413 over the limit), else 400.
fn body_error(e: crate::server::ApiError) -> Answer {
    Answer::message(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.message,
    )
}

/// Reads a client's JSON request body and decodes it (at most `limit`
/// bytes): [`body_error`] for a body that cannot be read, 400 for one that
/// is not the expected JSON. Returns the raw body too (it is forwarded).
async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<ReqBody>,
    what: &'static str,
    limit: usize,
) -> Result<(Bytes, T), Answer> {
    let body = read_body_within(req.into_body(), limit)
        .await
        .map_err(body_error)?;
    let value = wire::decode_json(what, &body, limit)
        .map_err(|e| Answer::message(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((body, value))
}

fn poisoned() -> Answer {
    Answer::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal state lock poisoned",
    )
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
                    Some(a) => a.into_response(),
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
