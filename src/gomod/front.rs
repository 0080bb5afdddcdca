//! The Go-modules front: answers the GOPROXY protocol for module paths the
//! federation routes to a `gomod` upstream, and proxies each configured
//! checksum database under `/sumdb/<name>/...`, so the real `go` command
//! works with `GOPROXY=<bulwark>` and `GOSUMDB=<verifier key>`.
//!
//! - `.mod` and `.zip` are served only after the module's record was proven
//!   included in an accepted tree ([`SumdbVerifier::lookup`]) and the bytes'
//!   `h1:` hash equals the record's; verified bytes are stored and served
//!   from the store afterwards (also with the upstream unreachable, then
//!   with a `Warning` header if the accepted tree is older than
//!   `max_checkpoint_age`).
//! - `@v/list`, `.info` and `@latest` are unsigned metadata: only an exact
//!   200 whose body has the route's shape (one canonical version per line;
//!   JSON with a canonical `Version` and an RFC 3339 `Time`) is passed on,
//!   re-serialised from what was checked, with a short byte-weighed cache.
//!   They never lead to unverified bytes, since every `.mod`/`.zip` is
//!   checked on its own.
//! - Every upstream answer other than 200 is refused: a 4xx or 5xx keeps
//!   its status (`go` falls through to the next proxy on 404 and 410) with
//!   bulwark's own body, anything else (203, 206, 3xx...) is a 502.
//! - Request paths are percent-decoded once, segment by segment, then
//!   parsed and validated; every path sent upstream is re-encoded from the
//!   parsed module path and version.
//! - `/sumdb/<name>/supported|latest|lookup/...|tile/8/...` answer from the
//!   verifier: only signed trees bulwark accepted, records it proved, tiles
//!   it authenticated.
//!
//! Built by `protocol_fronts` in src/main.rs; calls only the verifier (and
//! through it the trust state and blob store) and [`UpstreamClient`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::gomod::config::{GoSettings, PROTOCOL};
use crate::gomod::dirhash::{self, Limits};
use crate::gomod::module::{
    decode_request_path, parse_list, unescape_path, unescape_version, Info, ModuleVersion,
    ProxyRequest, MAX_INFO_BYTES, MAX_LIST_BYTES, MAX_MOD_BYTES,
};
use crate::gomod::verifier::{expect_200, status_200, GoIndex, SumdbVerifier, VerifyError};
use crate::gomod::zipread;
use crate::metrics::Metrics;
use crate::pipeline::respond::{blob_response, BlobResponse};
use crate::server::{full, ApiError, Front, ReqBody, ResBody};
use crate::store::{Blob, Digest};
use crate::tlog::note::VerifierKey;
use crate::upstream::{UpstreamClient, UpstreamOptions, UpstreamRequest};

/// How long unsigned metadata (`list`, `.info`, `@latest`) is cached.
const META_TTL: Duration = Duration::from_secs(30);
/// Byte budget of each metadata cache (the fresh one and the one served
/// while the upstream is unreachable), per upstream.
const META_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// A metadata cache weighed by the bytes of its keys and values.
fn meta_cache(ttl: Option<Duration>) -> moka::future::Cache<String, Bytes> {
    let b = moka::future::Cache::builder()
        .weigher(|k: &String, v: &Bytes| u32::try_from(k.len() + v.len() + 64).unwrap_or(u32::MAX))
        .max_capacity(META_CACHE_BYTES);
    match ttl {
        Some(t) => b.time_to_live(t).build(),
        None => b.build(),
    }
}

/// One gomod upstream: its GOPROXY client and its checksum-database verifier.
struct GoUpstream {
    name: String,
    proxy: UpstreamClient,
    verifier: SumdbVerifier,
    meta: moka::future::Cache<String, Bytes>,
    /// The last answer to each metadata request, served only while the
    /// upstream cannot be reached (with a `Warning`).
    meta_stale: moka::future::Cache<String, Bytes>,
}

/// The Go-modules front (see the module documentation).
pub struct GoFront {
    federation: Arc<Federation>,
    metrics: Arc<Metrics>,
    by_upstream: HashMap<String, Arc<GoUpstream>>,
    by_sumdb: HashMap<String, Arc<GoUpstream>>,
    limits: Limits,
}

impl GoFront {
    /// Builds the front for every `gomod` upstream of the configuration,
    /// with the Go index at `<data_dir>/gomod.redb`.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<GoFront> {
        let (config, federation, metrics) =
            (&ctx.config, ctx.federation.clone(), ctx.metrics.clone());
        let (trust, blobs) = (ctx.trust.state().clone(), ctx.blobs.clone());
        let index = GoIndex::open(&ctx.data_dir.join("gomod.redb"))?;
        let mut by_upstream = HashMap::new();
        let mut by_sumdb = HashMap::new();
        for u in ctx.upstreams(PROTOCOL) {
            let Some(GoSettings { sumdb: sdb }) = u.settings::<GoSettings>() else {
                anyhow::bail!("upstream {}: protocol gomod needs sumdb", u.name);
            };
            let key: VerifierKey = sdb
                .key
                .parse()
                .map_err(|e| anyhow::anyhow!("upstream {}: sumdb.key: {e}", u.name))?;
            let policy = u.witness_policy.as_ref().map(|w| w.policy.clone());
            let options = |url: &str| {
                let mut o = UpstreamOptions::new(u.name.clone(), url.to_string());
                o.bearer_token = u.token.as_ref().map(|t| t.0.clone());
                o.extra_ca_pem = u.ca_file.clone();
                let m = metrics.clone();
                o.latency_hook = Some(Arc::new(move |name: &str, d: Duration, _| {
                    m.observe_upstream_latency(name, d)
                }));
                o
            };
            let proxy = UpstreamClient::new(options(&u.url))?;
            let sumdb_client = UpstreamClient::new(options(&sdb.url))?;
            let verifier = SumdbVerifier::new(
                &u.name,
                &sdb.name,
                key,
                policy,
                sumdb_client,
                trust.clone(),
                blobs.clone(),
                index.clone(),
                metrics.clone(),
                u.checkpoint_age_bound(&config.server),
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            let g = Arc::new(GoUpstream {
                name: u.name.clone(),
                proxy,
                verifier,
                meta: meta_cache(Some(META_TTL)),
                meta_stale: meta_cache(None),
            });
            by_sumdb.insert(sdb.name.clone(), g.clone());
            by_upstream.insert(u.name.clone(), g);
        }
        Ok(GoFront {
            federation,
            metrics,
            by_upstream,
            by_sumdb,
            limits: Limits::default(),
        })
    }

    /// Whether any gomod upstream is configured.
    pub fn is_empty(&self) -> bool {
        self.by_upstream.is_empty()
    }

    fn sumdb_route<'p>(&self, path: &'p str) -> Option<(Arc<GoUpstream>, &'p str)> {
        let rest = path.strip_prefix("/sumdb/")?;
        let (name, rest) = rest.split_once('/')?;
        let g = self.by_sumdb.get(name)?;
        Some((g.clone(), rest))
    }

    fn proxy_route(&self, path: &str) -> Option<(Arc<GoUpstream>, ProxyRequest)> {
        let req = ProxyRequest::parse(path).ok()?;
        let u = self.federation.route(PROTOCOL, req.module_path())?;
        let g = self.by_upstream.get(&u.name)?;
        Some((g.clone(), req))
    }

    async fn sumdb(&self, g: &GoUpstream, rest: &str) -> Result<Response<ResBody>, ApiError> {
        let v = &g.verifier;
        if rest == "supported" {
            return Ok(ok_bytes(Bytes::new(), "text/plain; charset=utf-8", None));
        }
        if rest == "latest" {
            let (a, warning) = v.latest_for_serving().await.map_err(|e| api(g, e))?;
            return Ok(ok_bytes(
                Bytes::from(a.note),
                "text/plain; charset=utf-8",
                warning,
            ));
        }
        if let Some(mv) = rest.strip_prefix("lookup/") {
            let (p, ver) = mv.rsplit_once('@').ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "lookup: want <module>@<version>")
            })?;
            let m = unescape_path(p)
                .and_then(|p| unescape_version(ver).map(|v| (p, v)))
                .and_then(|(p, v)| ModuleVersion::new(&p, &v))
                .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
            let rec = v.lookup(&m).await.map_err(|e| api(g, e))?;
            let (mut tree, mut warning) = v.current().await.map_err(|e| api(g, e))?;
            if rec.id >= tree.size {
                tree = v.refresh().await.map_err(|e| api(g, e))?;
                warning = None;
            }
            let mut body = format!("{}\n{}\n", rec.id, rec.record.text()).into_bytes();
            body.extend_from_slice(&tree.note);
            return Ok(ok_bytes(
                Bytes::from(body),
                "text/plain; charset=utf-8",
                warning,
            ));
        }
        if rest.starts_with("tile/") {
            let (data, warning) = v.tile(rest).await.map_err(|e| api(g, e))?;
            return Ok(ok_bytes(data, "application/octet-stream", warning));
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such checksum-database route",
        ))
    }

    async fn module_file(
        &self,
        g: &GoUpstream,
        req: &ProxyRequest,
        http: &http::request::Parts,
    ) -> Result<Response<ResBody>, ApiError> {
        let (m, kind) = match req {
            ProxyRequest::Mod(m) => (m, "mod"),
            ProxyRequest::Zip(m) => (m, "zip"),
            _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "not a module file")),
        };
        let v = &g.verifier;
        let rec = v.lookup(m).await.map_err(|e| api(g, e))?;
        // Refuses a quarantined upstream and a stale tree the upstream
        // answers about; warns when serving offline.
        let (_, warning) = v.current().await.map_err(|e| api(g, e))?;
        let ctype = if kind == "zip" {
            "application/zip"
        } else {
            "text/plain; charset=utf-8"
        };
        if let Some((d, b)) = v.stored_file(kind, m).await.map_err(|e| api(g, e))? {
            self.metrics.cache("gomod.module", true);
            return Ok(ok_blob(http, b, &d, ctype, warning));
        }
        self.metrics.cache("gomod.module", false);
        let request = UpstreamRequest::get(format!("/{}", req.to_path()));
        if kind == "zip" {
            // A zip may be hundreds of MiB: it streams to a spool file of
            // the store, is hashed there, and is published only if its h1
            // matches; never whole in memory.
            let res = g
                .proxy
                .send_streaming(request.max_response_bytes(self.limits.max_zip_bytes))
                .await
                .map_err(VerifyError::Upstream)
                .and_then(|r| {
                    status_200(&r.upstream, &r.url, r.status)?;
                    Ok(r)
                })
                .map_err(|e| api(g, e))?;
            let spooled = v
                .blobs()
                .spool(res.body)
                .await
                .map_err(|e| api(g, e.into()))?;
            let file = spooled.reader().map_err(|e| api(g, e.into()))?;
            let mv = m.clone();
            let limits = self.limits;
            let h = tokio::task::spawn_blocking(move || {
                let src = zipread::FileSource::new(file)?;
                Ok::<_, std::io::Error>(dirhash::hash_module_zip_source(&src, &mv, &limits))
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let seen = match h {
                Ok(h) => h.to_string(),
                Err(e) => {
                    self.metrics.verification(&g.name, "zip", false);
                    let e = VerifyError::Zip {
                        module: m.to_string(),
                        detail: e.to_string(),
                    };
                    tracing::error!(upstream = %g.name, module = %m, "{e}");
                    return Err(api(g, e));
                }
            };
            self.check_h1(g, m, "zip", rec.record.zip_hash.to_string(), seen)
                .map_err(|e| api(g, e))?;
            let (d, blob) = v
                .store_spooled(kind, m, rec.epoch, spooled)
                .await
                .map_err(|e| api(g, e))?;
            return Ok(ok_blob(http, blob, &d, ctype, warning));
        }
        let res = g
            .proxy
            .send(request.max_response_bytes(MAX_MOD_BYTES))
            .await
            .map_err(VerifyError::Upstream)
            .and_then(expect_200)
            .map_err(|e| api(g, e))?;
        let body = res.body;
        let seen = dirhash::hash_go_mod(&body).to_string();
        self.check_h1(g, m, "go.mod", rec.record.mod_hash.to_string(), seen)
            .map_err(|e| api(g, e))?;
        let d = v
            .store_file(kind, m, rec.epoch, body.clone())
            .await
            .map_err(|e| api(g, e))?;
        Ok(ok_blob(http, Blob::from_bytes(body), &d, ctype, warning))
    }

    /// The `h1:` rule: the hash of what the upstream sent must be the one
    /// the included record names; counted either way.
    fn check_h1(
        &self,
        g: &GoUpstream,
        m: &ModuleVersion,
        what: &'static str,
        expected: String,
        seen: String,
    ) -> Result<(), VerifyError> {
        if expected != seen {
            self.metrics.verification(&g.name, "h1", false);
            let e = VerifyError::Hash {
                what,
                module: m.to_string(),
                expected,
                seen,
            };
            tracing::error!(upstream = %g.name, module = %m, "{e}");
            return Err(e);
        }
        self.metrics.verification(&g.name, "h1", true);
        Ok(())
    }

    /// `@v/list`, `.info` and `@latest`: unsigned, but only an exact 200
    /// whose body has the route's shape is passed on (re-serialised from
    /// what was checked), cached briefly; the last good answer is served
    /// with a `Warning` while the upstream cannot be reached.
    async fn metadata(
        &self,
        g: &GoUpstream,
        req: &ProxyRequest,
    ) -> Result<Response<ResBody>, ApiError> {
        let path = format!("/{}", req.to_path());
        let (ctype, max) = match req {
            ProxyRequest::List { .. } => ("text/plain; charset=utf-8", MAX_LIST_BYTES),
            _ => ("application/json", MAX_INFO_BYTES),
        };
        if let Some(b) = g.meta.get(&path).await {
            self.metrics.cache("gomod.meta", true);
            return Ok(ok_bytes(b, ctype, None));
        }
        self.metrics.cache("gomod.meta", false);
        let res = g
            .proxy
            .send(UpstreamRequest::get(path.clone()).max_response_bytes(max))
            .await
            .map_err(VerifyError::Upstream)
            .and_then(expect_200)
            .and_then(|r| checked_metadata(req, &r.body));
        let body = match res {
            Ok(b) => b,
            Err(e) => {
                if e.is_unreachable() {
                    if let Some(b) = g.meta_stale.get(&path).await {
                        let w = crate::pipeline::refusal::stale_warning(&g.name, "unreachable");
                        return Ok(ok_bytes(b, ctype, Some(w)));
                    }
                }
                return Err(api(g, e));
            }
        };
        g.meta.insert(path.clone(), body.clone()).await;
        g.meta_stale.insert(path, body.clone()).await;
        Ok(ok_bytes(body, ctype, None))
    }
}

/// The body served for a metadata answer: parsed for the route's shape
/// and re-serialised from what was checked.
fn checked_metadata(req: &ProxyRequest, body: &[u8]) -> Result<Bytes, VerifyError> {
    let format = |what: &'static str| {
        move |e: crate::gomod::module::ModuleError| VerifyError::Format {
            what,
            detail: e.to_string(),
        }
    };
    match req {
        ProxyRequest::List { .. } => {
            let versions = parse_list(body).map_err(format("version list"))?;
            let mut out = String::new();
            for v in versions {
                out.push_str(&v);
                out.push('\n');
            }
            Ok(Bytes::from(out))
        }
        ProxyRequest::Info { version, .. } => Ok(Bytes::from(
            Info::parse(body, Some(version))
                .map_err(format("version info"))?
                .to_json(),
        )),
        _ => Ok(Bytes::from(
            Info::parse(body, None)
                .map_err(format("latest version info"))?
                .to_json(),
        )),
    }
}

fn ok_bytes(body: Bytes, ctype: &'static str, warning: Option<String>) -> Response<ResBody> {
    let mut res = Response::new(full(body));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Some(w) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        res.headers_mut().insert(header::WARNING, w);
    }
    res
}

/// A stored module file (immutable: a version's files never change), with
/// ETag, 304, HEAD and Range (see [`blob_response`]).
fn ok_blob(
    http: &http::request::Parts,
    blob: Blob,
    digest: &Digest,
    content_type: &'static str,
    warning: Option<String>,
) -> Response<ResBody> {
    let opts = BlobResponse {
        content_type,
        immutable: true,
        warning,
    };
    blob_response(&http.headers, &http.method, blob, digest, opts)
}

/// A verification or upstream failure as a client error naming the
/// upstream, the check, and what was expected and seen.
fn api(g: &GoUpstream, e: VerifyError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let message = match &e {
        VerifyError::Upstream(_) | VerifyError::Trust(_) => format!("{e}"),
        _ => format!("upstream {}: {e}", g.name),
    };
    let mut err = ApiError::new(status, message).upstream(&g.name);
    if !e.is_not_found() {
        let (exp, seen) = e.expected_seen().unwrap_or_default();
        err = err.check(e.check(), exp, seen);
        if status == StatusCode::BAD_GATEWAY {
            tracing::warn!(upstream = %g.name, check = e.check(), "refused: {e}");
        }
    }
    err
}

impl Front for GoFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = decode_request_path(req.uri().path()).ok()?;
        let path = path.as_str();
        if self.sumdb_route(path).is_some() {
            return Some("gomod.sumdb");
        }
        match self.proxy_route(path)?.1 {
            ProxyRequest::Mod(_) => Some("gomod.mod"),
            ProxyRequest::Zip(_) => Some("gomod.zip"),
            _ => Some("gomod.meta"),
        }
    }

    fn handle<'a>(
        &'a self,
        _route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        async move {
            let (http, _) = req.into_parts();
            let path = match decode_request_path(http.uri.path()) {
                Ok(p) => p,
                Err(e) => {
                    return ApiError::new(StatusCode::NOT_FOUND, e.to_string()).into_response()
                }
            };
            // One quarantine gate per request, on every route, before
            // anything (cached or not) of the upstream is served.
            let r = if let Some((g, rest)) = self.sumdb_route(&path) {
                match g.verifier.gate().await {
                    Ok(()) => self.sumdb(&g, rest).await,
                    Err(e) => Err(api(&g, e)),
                }
            } else if let Some((g, preq)) = self.proxy_route(&path) {
                match g.verifier.gate().await {
                    Err(e) => Err(api(&g, e)),
                    Ok(()) => match preq {
                        ProxyRequest::Mod(_) | ProxyRequest::Zip(_) => {
                            self.module_file(&g, &preq, &http).await
                        }
                        _ => self.metadata(&g, &preq).await,
                    },
                }
            } else {
                Err(ApiError::new(StatusCode::NOT_FOUND, "not routed"))
            };
            r.unwrap_or_else(ApiError::into_response)
        }
        .boxed()
    }
}
