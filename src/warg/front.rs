//! The Warg API v1 front: bulwark as the home registry of Warg clients,
//! federating namespaces to upstream Warg registries. Routing and wire
//! shapes only: everything that touches an upstream, the trust state or
//! the content store is the Warg ecosystem's ([`crate::warg::registry`]
//! and the modules beside it), on the shared pipeline.
//!
//! `main.rs` builds it with [`WargFront::new`] and adds it to the server.
//! Per request:
//!
//! - **Routing**: the `Warg-Registry` header names an upstream by its
//!   configured name; without it, the upstream that owns the package's
//!   namespace, else the configured default. Fetch-logs requests name
//!   packages by log ID only: names come from the ecosystem's log ID →
//!   package name index, and a header-less request for another upstream's
//!   package is answered like the reference server answers a missing log,
//!   plus `warg-registry-hint: <namespace>=<upstream>`. The header is never
//!   sent upstream (the reference server answers 501 to it).
//! - **One gate per request** ([`Registries::gate`]): a quarantined upstream, or
//!   one whose trust state cannot be read, gets nothing through on any
//!   route.
//! - **Client bodies** are read within their limits and decoded once; the
//!   ecosystem's answers are encoded in the reference server's shapes.
//! - **Refusals** (the pipeline's [`crate::pipeline::refusal::Refusal`])
//!   are rendered in Warg's `{"status","message"}` shape, naming the
//!   upstream, the check, and what was expected and seen
//!   (`answer::refusal`).
//! - **Offline**: what the ecosystem serves from what it verified earlier
//!   carries its `Warning` header.

mod answer;
mod content;
mod publish;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::http::{client_authority, Front, ReqBody, ResBody};
use crate::pipeline::refusal::offline_warning;
use crate::warg::config::PROTOCOL;
use crate::warg::follower::MAX_CHECKPOINT_BYTES;
use crate::warg::ledger::LEDGER_PAGE;
use crate::warg::logs::Logs;
use crate::warg::registry::{Registries, Registry, Served};
use crate::warg::wire::{
    self, FetchLogsRequest, FetchPackageNamesRequest, InclusionRequest, LogId, RegistryIndex, Route,
};

use answer::{read_json, refusal, Answer};

/// Largest JSON request read from a client on the fetch and proof routes.
const MAX_JSON_REQUEST: usize = wire::DEFAULT_JSON_LIMIT;
/// Most package logs of one client request whose names bulwark looks up
/// (each unknown name is a question to every upstream).
const MAX_NAME_LOOKUPS: usize = 16;
/// The route prefix of bulwark's own content URLs.
const CONTENT_PREFIX: &str = "/content/";

/// The Warg front. See the module documentation.
pub struct WargFront {
    federation: Arc<Federation>,
    warg: Registries,
    https: bool,
    /// `[server] offline`: everything served carries the stale `Warning`.
    offline: bool,
}

impl WargFront {
    /// The front over the configuration's Warg upstreams, on the
    /// pipeline (the context's artifact service, trust state and metrics);
    /// `None` when no Warg upstream is configured.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<Option<WargFront>> {
        Ok(Registries::new(ctx)?.map(|warg| WargFront {
            federation: ctx.federation.clone(),
            warg,
            https: ctx.config.server.tls.is_some(),
            offline: ctx.config.server.offline,
        }))
    }

    fn upstream(&self, name: &str) -> Option<&Arc<Registry>> {
        self.warg.registry(name)
    }

    /// The upstream owning `namespace`: explicit claim, else the default.
    fn owner(&self, namespace: &str) -> Option<&Arc<Registry>> {
        match self.federation.owner(PROTOCOL, namespace) {
            Some(u) => self.upstream(&u.name),
            None => self.warg.default_registry(),
        }
    }

    /// The one gate of every request for `reg` (see [`Registries::gate`]).
    async fn admit(&self, reg: &Registry) -> Result<u64, Answer> {
        self.warg.gate(reg).await.map_err(|r| refusal(&r))
    }

    /// The upstream a request is for: its `Warg-Registry` header, else the
    /// default. `Err` for a header naming no Warg upstream.
    fn by_header(&self, req: &Request<ReqBody>) -> Result<Option<Arc<Registry>>, Answer> {
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

    fn or_default(&self, up: Option<Arc<Registry>>) -> Result<Arc<Registry>, Answer> {
        up.or_else(|| self.warg.default_registry().cloned())
            .ok_or_else(|| {
                Answer::message(
                    StatusCode::NOT_FOUND,
                    "no Warg-Registry header and no default Warg upstream is configured",
                )
            })
    }

    /// The upstream owning a package log (by its name's namespace).
    async fn route_log(&self, log_id: &LogId) -> Result<Arc<Registry>, Answer> {
        match self.warg.name_of(log_id).await {
            Some(name) => self.owner(name.namespace()).cloned().ok_or_else(|| {
                Answer::message(StatusCode::NOT_FOUND, "no upstream owns this namespace")
            }),
            None => self.or_default(None),
        }
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
                let authority = client_authority(&req);
                self.content_sources(&up, epoch, &digest, authority).await
            }
            (Route::ContentFile { digest }, Some((up, _))) => self.content(&up, &digest).await,
            (Route::Ledger, Some((up, epoch))) => self.ledger_sources(&up, epoch).await,
            (Route::LedgerRecords { start }, Some((up, epoch))) => {
                self.ledger_records(&up, epoch, start).await
            }
            (Route::VerifyCheckpoint, Some((up, epoch))) => {
                self.verify_checkpoint(&up, epoch, req).await
            }
        }
    }

    /// The offline rule ([`offline_warning`]) on a served answer of
    /// `upstream` that has no `Warning` yet.
    fn offline(&self, a: Answer, upstream: Option<&str>) -> Answer {
        let warned = a
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("warning"));
        match upstream {
            Some(u) if a.status.is_success() && !warned => {
                let w = offline_warning(self.offline, u, None);
                a.warning(w)
            }
            _ => a,
        }
    }

    // ---- checkpoints ----

    async fn fetch_checkpoint(&self, up: &Registry, epoch: u64) -> Answer {
        match self.warg.current_checkpoint(up, epoch).await {
            Ok((cp, warning)) => {
                Answer::json(StatusCode::OK, wire::encode_json(&cp)).warning(warning)
            }
            Err(r) => refusal(&r),
        }
    }

    /// `POST /v1/verify/checkpoint`, answered by bulwark from what it
    /// verified: the checkpoint is `verified` if it has the roots of the
    /// checkpoint bulwark verified at that length, else `invalid` (as the
    /// reference server answers for a length it has no checkpoint of); the
    /// signature is `verified` if the pinned key signed it, else `invalid`.
    async fn verify_checkpoint(&self, up: &Registry, epoch: u64, req: Request<ReqBody>) -> Answer {
        use wire::VerificationState as V;
        let (_, cp) = match read_json::<wire::SignedCheckpoint>(
            req,
            "checkpoint",
            MAX_CHECKPOINT_BYTES,
        )
        .await
        {
            Ok(v) => v,
            Err(a) => return a,
        };
        let j = self.warg.judge_checkpoint(up, epoch, &cp).await;
        let state = |ok: bool| if ok { V::Verified } else { V::Invalid };
        Answer::json(
            StatusCode::OK,
            wire::encode_json(&wire::CheckpointVerificationResponse {
                checkpoint: state(j.checkpoint),
                signature: state(j.signature),
                retry_after: None,
            }),
        )
    }

    // ---- logs and names ----

    async fn fetch_logs(&self, up: Option<Arc<Registry>>, req: Request<ReqBody>) -> Answer {
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
                    if let Some(name) = self.warg.name_of(log_id).await {
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
        match self.warg.fetch_logs(&up, epoch, body, &request).await {
            Ok(Logs::Verified(served)) => served_json(served),
            Ok(Logs::Missing(id)) => missing_log(&id),
            Err(r) => refusal(&r),
        }
    }

    /// `POST /v1/fetch/names`: the checked answer, re-encoded.
    async fn fetch_names(&self, up: &Registry, req: Request<ReqBody>) -> Answer {
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
        match self.warg.fetch_names(up, body).await {
            Ok(r) => Answer::json(StatusCode::OK, wire::encode_json(&r)),
            Err(r) => refusal(&r),
        }
    }

    // ---- proofs ----

    async fn prove_inclusion(&self, up: &Registry, epoch: u64, req: Request<ReqBody>) -> Answer {
        let (body, request) =
            match read_json::<InclusionRequest>(req, "inclusion request", MAX_JSON_REQUEST).await {
                Ok(v) => v,
                Err(a) => return a,
            };
        match self.warg.prove_inclusion(up, epoch, body, &request).await {
            Ok(served) => served_json(served),
            Err(r) => refusal(&r),
        }
    }

    async fn prove_consistency(&self, up: &Registry, epoch: u64, req: Request<ReqBody>) -> Answer {
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
        match self.warg.prove_consistency(up, epoch, body, &request).await {
            Ok(served) => served_json(served),
            Err(r) => refusal(&r),
        }
    }

    // ---- ledger ----

    /// `GET /v1/ledger` for the current verified checkpoint, in the
    /// reference server's shape (relative URLs, 1000 leaves a source).
    async fn ledger_sources(&self, up: &Registry, epoch: u64) -> Answer {
        let l = match self.warg.ledger_length(up, epoch).await {
            Ok(l) => l,
            Err(r) => return refusal(&r),
        };
        let step = LEDGER_PAGE as usize;
        let len = usize::try_from(l.len).unwrap_or(usize::MAX);
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
        Answer::json(
            StatusCode::OK,
            wire::encode_json(&wire::LedgerSourcesResponse {
                hash_algorithm: warg_crypto::hash::HashAlgorithm::Sha256,
                sources,
            }),
        )
        .warning(l.warning)
    }

    /// `GET /v1/ledger/records/{start}`: packed leaves, once the whole log
    /// hashes to its verified root.
    async fn ledger_records(&self, up: &Registry, epoch: u64, start: RegistryIndex) -> Answer {
        match self.warg.ledger_page(up, epoch, start).await {
            Ok(body) => Answer {
                status: StatusCode::OK,
                body,
                headers: Vec::new(),
                content_type: wire::CONTENT_TYPE_LEDGER,
                stream: None,
                blob: None,
            },
            Err(r) => refusal(&r),
        }
    }
}

/// A verified JSON answer, with its `Warning` when it stands in for an
/// upstream that cannot be reached.
fn served_json(s: Served) -> Answer {
    Answer::json(StatusCode::OK, s.body).warning(s.warning)
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
                let upstream = path
                    .strip_prefix(CONTENT_PREFIX)
                    .and_then(|r| r.split_once('/'))
                    .map(|(name, _)| name.to_string());
                return match self.content_route(&path).await {
                    Some(a) => self
                        .offline(a, upstream.as_deref())
                        .into_response_for(req.headers(), req.method()),
                    None => {
                        Answer::message(StatusCode::NOT_FOUND, "no such content").into_response()
                    }
                };
            }
            let Some(r) = Route::parse(req.method(), req.uri().path()) else {
                return Answer::message(StatusCode::NOT_FOUND, "not found").into_response();
            };
            let upstream = match self.by_header(&req) {
                Ok(Some(u)) => Some(u.name.clone()),
                _ => self.warg.default_registry().map(|u| u.name.clone()),
            };
            let a = self.handle_route(r, req).await;
            self.offline(a, upstream.as_deref()).into_response()
        })
    }
}
