//! The Warg ecosystem's side of the pipeline: [`Registries`], which the Warg
//! front calls for everything that touches an upstream, the trust state or
//! the content store, and one [`Registry`] per configured Warg upstream.
//!
//! - `follower`: the log follower (checkpoints fetched, checked, offered
//!   to the trust state; offline checkpoints).
//! - `logs`: logs fetched in full, validated, proven included; the records
//!   a client asks for, checked before they are returned; package names.
//! - `proofs`: the proofs a client asks for, checked before they are
//!   returned.
//! - `ledger`: the registry log, hashed to a verified root.
//! - `content`: release digests indexed, content served through the
//!   pipeline's artifact service.
//! - `publish`: client writes forwarded (`publish = "forward"`).
//! - `memory`: what is remembered per upstream and epoch.
//!
//! Every failure is a [`Refusal`]; the front renders it.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use crate::ecosystem::EcosystemContext;
use crate::metrics::Metrics;
use crate::pipeline::artifacts::Artifacts;
use crate::pipeline::refusal::{stale_warning, Refusal};
use crate::pipeline::trust::Trust;
use crate::upstream::UpstreamResponse;
use crate::upstream::{UpstreamClient, UpstreamError, UpstreamOptions, UpstreamRequest};
use crate::warg::checks::{CheckError, PinnedKey};
use crate::warg::config::{WargPublish, WargSettings, PROTOCOL};
use crate::warg::memory::{AnswerKind, Fresh, Memory};
use crate::warg::refuse::{from_check, from_verify, poisoned, verify_check};
use crate::warg::verify::WargVerifyError;
use crate::warg::wire::{self, LogId, PackageName};

/// Largest JSON answer read from an upstream on the log and proof
/// exchanges (the decoders' limit too).
pub(crate) const MAX_JSON_ANSWER: usize = wire::DEFAULT_JSON_LIMIT;

/// One Warg upstream: its configuration, clients and memory.
pub struct Registry {
    /// The configured name.
    pub name: String,
    /// Reads (with the upstream's configured `token`).
    pub(crate) client: UpstreamClient,
    /// Client writes (`publish = "forward"`): no token of bulwark's; the
    /// client's own `Authorization` is sent.
    pub(crate) writer: Option<UpstreamClient>,
    pub(crate) key: PinnedKey,
    pub(crate) max_age: Duration,
    /// How long a verified checkpoint is reused (`checkpoint_reuse`).
    pub(crate) reuse: Duration,
    memory: Mutex<Memory>,
    /// Held while a ledger is fetched, so each is fetched and hashed once.
    pub(crate) ledger_fetch: tokio::sync::Mutex<()>,
    /// The last verified checkpoint; held while one is fetched (single
    /// flight per upstream).
    pub(crate) fresh: tokio::sync::Mutex<Option<Fresh>>,
    /// Whether the last checkpoint request found the upstream unreachable
    /// (content served meanwhile says so in a `Warning`).
    pub(crate) unreachable: AtomicBool,
}

impl Registry {
    /// Whether client writes are forwarded to this upstream (`publish =
    /// "forward"`).
    pub fn publishes(&self) -> bool {
        self.writer.is_some()
    }

    /// bulwark's memory of this upstream (see [`Memory`]).
    pub(crate) fn memory(&self) -> Result<MutexGuard<'_, Memory>, Refusal> {
        self.memory.lock().map_err(|_| poisoned(&self.name))
    }
}

/// The Warg ecosystem service (see the module documentation).
pub struct Registries {
    registries: Vec<Arc<Registry>>,
    default: Option<usize>,
    pub(crate) artifacts: Artifacts,
    /// Log ID → package name, learnt from names seen (names are checked to
    /// hash to their log ID, so they are the same for every upstream).
    pub(crate) names: Mutex<HashMap<LogId, PackageName>>,
    /// Content uploads forwarded upstream are held in memory whole (the
    /// upstream client sends whole bodies); one at a time bounds that
    /// memory by `server.max_body_bytes` whatever the number of clients.
    pub(crate) uploads: tokio::sync::Semaphore,
}

impl Registries {
    /// The service over the configuration's Warg upstreams, on the
    /// pipeline's artifact service (and its trust state and metrics);
    /// `None` when no Warg upstream is configured.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<Option<Registries>> {
        let mut registries = Vec::new();
        let mut default = None;
        for u in ctx.upstreams(PROTOCOL) {
            let settings = u.settings::<WargSettings>().ok_or_else(|| {
                anyhow::anyhow!("upstream {}: a Warg upstream needs operator_key", u.name)
            })?;
            let key = PinnedKey::parse(&settings.operator_key)
                .map_err(|e| anyhow::anyhow!("upstream {}: {e}", u.name))?;
            let mut opts = UpstreamOptions::new(u.name.clone(), u.url.clone());
            opts.extra_ca_pem = u.ca_file.clone();
            opts.offline = ctx.config.server.offline;
            // Each exchange asks for less (`max_response_bytes`); this is
            // the cap of anything that does not.
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
                default = Some(registries.len());
            }
            registries.push(Arc::new(Registry {
                name: u.name.clone(),
                client: UpstreamClient::new(opts)?,
                writer,
                key,
                max_age: u.checkpoint_age_bound(&ctx.config.server),
                reuse: settings.checkpoint_reuse,
                memory: Mutex::new(Memory::default()),
                unreachable: AtomicBool::new(false),
                ledger_fetch: tokio::sync::Mutex::new(()),
                fresh: tokio::sync::Mutex::new(None),
            }));
        }
        if registries.is_empty() {
            return Ok(None);
        }
        if default.is_none() && registries.len() == 1 {
            default = Some(0);
        }
        Ok(Some(Registries {
            registries,
            default,
            artifacts: ctx.artifacts.clone(),
            names: Mutex::new(HashMap::new()),
            uploads: tokio::sync::Semaphore::new(1),
        }))
    }

    /// The upstream configured as `name`.
    pub fn registry(&self, name: &str) -> Option<&Arc<Registry>> {
        self.registries.iter().find(|u| u.name == name)
    }

    /// The default upstream (`default = true`, or the only one).
    pub fn default_registry(&self) -> Option<&Arc<Registry>> {
        self.default.and_then(|i| self.registries.get(i))
    }

    pub(crate) fn registries(&self) -> &[Arc<Registry>] {
        &self.registries
    }

    pub(crate) fn trust(&self) -> &Trust {
        self.artifacts.trust()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        self.artifacts.metrics()
    }

    /// The one gate of every request for `reg`: refused when the upstream
    /// is quarantined or its trust state cannot be read (answered from the
    /// trust state's memory). Returns the upstream's current trust epoch;
    /// what bulwark remembers of an older epoch is dropped here.
    pub async fn gate(&self, reg: &Registry) -> Result<u64, Refusal> {
        let epoch = self.trust().gate(&reg.name).await?;
        reg.memory()?.enter(epoch);
        Ok(epoch)
    }

    // ---- metrics ----

    /// Counts one outcome of the verification `check` for `reg`.
    pub(crate) fn tally(&self, reg: &Registry, check: &'static str, ok: bool) {
        self.metrics().verification(&reg.name, check, ok);
    }

    /// Counts a `warg::verify` outcome (`check` when it passed, the check
    /// that failed otherwise) and turns a failure into a refusal.
    pub(crate) fn verified<T>(
        &self,
        reg: &Registry,
        check: &'static str,
        r: Result<T, WargVerifyError>,
    ) -> Result<T, Refusal> {
        self.counted(reg, check, r, verify_check, from_verify)
    }

    /// [`Self::verified`] for the adapters of `warg::checks`.
    pub(crate) fn checked<T>(
        &self,
        reg: &Registry,
        check: &'static str,
        r: Result<T, CheckError>,
    ) -> Result<T, Refusal> {
        self.counted(reg, check, r, CheckError::check, from_check)
    }

    /// Counts an outcome (`check` when it passed, `failed(e)` otherwise)
    /// and turns a failure into a refusal with `refuse`.
    fn counted<T, E>(
        &self,
        reg: &Registry,
        check: &'static str,
        r: Result<T, E>,
        failed: impl Fn(&E) -> &'static str,
        refuse: impl Fn(&str, &E) -> Refusal,
    ) -> Result<T, Refusal> {
        match r {
            Ok(v) => {
                self.tally(reg, check, true);
                Ok(v)
            }
            Err(e) => {
                self.tally(reg, failed(&e), false);
                Err(refuse(&reg.name, &e))
            }
        }
    }

    // ---- upstream exchanges ----

    /// A client's request failed upstream (`e`): when the upstream could
    /// not be reached, the verified answer to the same request (current
    /// epoch: the request passed the gate) with a `Warning`, if bulwark
    /// has one; else the failure.
    pub(crate) fn offline(
        &self,
        reg: &Registry,
        kind: AnswerKind,
        request: &[u8],
        e: &UpstreamError,
    ) -> Result<Served, Refusal> {
        if !e.is_unreachable() {
            return Err(Refusal::from_upstream(e));
        }
        match reg.memory()?.answer(kind, request) {
            Some(body) => Ok(Served {
                body,
                warning: Some(stale_warning(
                    &reg.name,
                    "unreachable; answer verified earlier",
                )),
            }),
            None => Err(Refusal::from_upstream(e)),
        }
    }

    /// A read-only JSON POST with the JSON answer cap.
    pub(crate) async fn post_json(
        &self,
        reg: &Registry,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, UpstreamError> {
        reg.client
            .send(request.max_response_bytes(MAX_JSON_ANSWER as u64))
            .await
    }
}

/// A verified answer to a client's request (its JSON bytes as the
/// upstream sent them, every part checked), with a `Warning` when it is
/// one bulwark verified earlier and the upstream cannot be reached now.
pub struct Served {
    pub body: Bytes,
    pub warning: Option<String>,
}

/// Marks a request bulwark itself chose (path and body built from verified
/// state, not from a client's input): only failures of these count toward
/// the upstream's circuit breaker.
pub(crate) fn own(request: UpstreamRequest) -> UpstreamRequest {
    request.probe()
}

/// A log length as the API types hold it (lengths come from checkpoints
/// that were `usize` on the wire, so this never saturates in practice).
pub(crate) fn to_len(n: u64) -> wire::RegistryLen {
    wire::RegistryLen::try_from(n).unwrap_or(wire::RegistryLen::MAX)
}
