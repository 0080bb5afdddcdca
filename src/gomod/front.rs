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
//! - `@v/list`, `.info` and `@latest` are unsigned metadata: passed through
//!   with a short cache. They never lead to unverified bytes, since every
//!   `.mod`/`.zip` is checked on its own.
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

use crate::config::{Config, Protocol};
use crate::federation::Federation;
use crate::gomod::dirhash::{self, Limits};
use crate::gomod::module::{unescape_path, unescape_version, ModuleVersion, ProxyRequest};
use crate::gomod::verifier::{GoIndex, SumdbVerifier, VerifyError};
use crate::metrics::Metrics;
use crate::server::{full, stream_body, ApiError, Front, ReqBody, ResBody};
use crate::store::{Blob, FsBlobStore};
use crate::tlog::note::VerifierKey;
use crate::upstream::{UpstreamClient, UpstreamOptions, UpstreamRequest};
use crate::verify::trust::TrustState;

/// How long unsigned metadata (`list`, `.info`, `@latest`) is cached.
const META_TTL: Duration = Duration::from_secs(30);
/// Largest go.mod fetched.
const MAX_MOD_BYTES: u64 = 16 * 1024 * 1024;

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
    /// Builds the front for every `gomod` upstream of `config`.
    pub fn new(
        config: &Config,
        federation: Arc<Federation>,
        metrics: Arc<Metrics>,
        trust: TrustState,
        blobs: FsBlobStore,
        index: GoIndex,
    ) -> anyhow::Result<GoFront> {
        let mut by_upstream = HashMap::new();
        let mut by_sumdb = HashMap::new();
        for u in config
            .upstreams
            .iter()
            .filter(|u| u.protocol == Protocol::Gomod)
        {
            let Some(sdb) = &u.sumdb else {
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
                meta: moka::future::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(META_TTL)
                    .build(),
                meta_stale: moka::future::Cache::builder().max_capacity(10_000).build(),
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
        let u = self.federation.route_go(req.module_path())?;
        let g = self.by_upstream.get(&u.name)?;
        Some((g.clone(), req))
    }

    async fn sumdb(&self, g: &GoUpstream, rest: &str) -> Result<Response<ResBody>, ApiError> {
        let v = &g.verifier;
        if rest == "supported" {
            return Ok(ok_bytes(Bytes::new(), "text/plain; charset=utf-8", None));
        }
        if rest == "latest" {
            let (a, warning) = match v.refresh().await {
                Ok(a) => (a, None),
                Err(e) if e.is_unreachable() => {
                    let (a, w) = v.current().await.map_err(|e| api(g, e))?;
                    let w = w.unwrap_or_else(|| {
                        format!(
                            "110 bulwark \"Response is Stale: upstream {} unreachable; last verified tree of size {}\"",
                            g.name, a.size
                        )
                    });
                    (a, Some(w))
                }
                Err(e) => return Err(api(g, e)),
            };
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
        if let Some(b) = v.stored_file(kind, m).await.map_err(|e| api(g, e))? {
            self.metrics.cache("gomod.module", true);
            return Ok(ok_blob(b, ctype, warning));
        }
        self.metrics.cache("gomod.module", false);
        let max = if kind == "zip" {
            self.limits.max_zip_bytes
        } else {
            MAX_MOD_BYTES
        };
        let res = g
            .proxy
            .send(UpstreamRequest::get(format!("/{}", req.to_path())).max_response_bytes(max))
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| api(g, VerifyError::Upstream(e)))?;
        let body = res.body;
        let (expected, seen) = if kind == "zip" {
            let data = body.clone();
            let mv = m.clone();
            let limits = self.limits;
            let h =
                tokio::task::spawn_blocking(move || dirhash::hash_module_zip(&data, &mv, &limits))
                    .await
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            match h {
                Ok(h) => (rec.record.zip_hash, h.to_string()),
                Err(e) => {
                    self.metrics.verification(&g.name, "h1", false);
                    return Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        format!("upstream {}: zip of {m}: {e}; not served", g.name),
                    )
                    .upstream(&g.name)
                    .check(
                        "h1",
                        rec.record.zip_hash.to_string(),
                        "an unreadable zip",
                    ));
                }
            }
        } else {
            (rec.record.mod_hash, dirhash::hash_go_mod(&body).to_string())
        };
        if expected.to_string() != seen {
            self.metrics.verification(&g.name, "h1", false);
            let e = VerifyError::Hash {
                what: if kind == "zip" { "zip" } else { "go.mod" },
                module: m.to_string(),
                expected: expected.to_string(),
                seen,
            };
            tracing::error!(upstream = %g.name, module = %m, "{e}");
            return Err(api(g, e));
        }
        self.metrics.verification(&g.name, "h1", true);
        v.store_file(kind, m, body.clone())
            .await
            .map_err(|e| api(g, e))?;
        Ok(ok_bytes(body, ctype, warning))
    }

    async fn metadata(
        &self,
        g: &GoUpstream,
        req: &ProxyRequest,
    ) -> Result<Response<ResBody>, ApiError> {
        let path = format!("/{}", req.to_path());
        let ctype = if matches!(req, ProxyRequest::List { .. }) {
            "text/plain; charset=utf-8"
        } else {
            "application/json"
        };
        if let Some(b) = g.meta.get(&path).await {
            self.metrics.cache("gomod.meta", true);
            return Ok(ok_bytes(b, ctype, None));
        }
        self.metrics.cache("gomod.meta", false);
        let res = match g
            .proxy
            .send(UpstreamRequest::get(path.clone()).max_response_bytes(MAX_MOD_BYTES))
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(r) => r,
            Err(e) => {
                let e = VerifyError::Upstream(e);
                if e.is_unreachable() {
                    if let Some(b) = g.meta_stale.get(&path).await {
                        let w = format!(
                            "110 bulwark \"Response is Stale: upstream {} unreachable\"",
                            g.name
                        );
                        return Ok(ok_bytes(b, ctype, Some(w)));
                    }
                }
                return Err(api(g, e));
            }
        };
        g.meta.insert(path.clone(), res.body.clone()).await;
        g.meta_stale.insert(path, res.body.clone()).await;
        Ok(ok_bytes(res.body, ctype, None))
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

/// A stored blob, streamed from the store.
fn ok_blob(blob: Blob, ctype: &'static str, warning: Option<String>) -> Response<ResBody> {
    let mut res = ok_bytes(Bytes::new(), ctype, warning);
    *res.body_mut() = stream_body(blob.len(), blob.into_stream());
    res
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

/// The path with `%XX` escapes decoded (the `go` command writes `!` as
/// `%21`); `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_string());
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Front for GoFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return None;
        }
        let path = percent_decode(req.uri().path())?;
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
            let Some(path) = percent_decode(req.uri().path()) else {
                return ApiError::new(StatusCode::NOT_FOUND, "bad path").into_response();
            };
            let r = if let Some((g, rest)) = self.sumdb_route(&path) {
                self.sumdb(&g, rest).await
            } else if let Some((g, preq)) = self.proxy_route(&path) {
                match preq {
                    ProxyRequest::Mod(_) | ProxyRequest::Zip(_) => {
                        self.module_file(&g, &preq).await
                    }
                    _ => self.metadata(&g, &preq).await,
                }
            } else {
                Err(ApiError::new(StatusCode::NOT_FOUND, "not routed"))
            };
            r.unwrap_or_else(ApiError::into_response)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decode_turns_go_escapes_back_into_bang() {
        assert_eq!(
            percent_decode("/example.com/%21hello/@v/v1.1.0.zip").as_deref(),
            Some("/example.com/!hello/@v/v1.1.0.zip")
        );
        assert_eq!(percent_decode("/plain").as_deref(), Some("/plain"));
    }

    #[test]
    fn percent_decode_refuses_malformed_escapes_and_invalid_utf8() {
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%zz"), None);
        assert_eq!(percent_decode("/a%ff"), None);
    }
}
