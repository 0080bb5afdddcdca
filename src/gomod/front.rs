//! The Go-modules front: answers the GOPROXY protocol for module paths the
//! federation routes to a `gomod` upstream, and each configured checksum
//! database under `/sumdb/<name>/...`, so the real `go` command works with
//! `GOPROXY=<bulwark>` and `GOSUMDB=<verifier key>`.
//!
//! Routing and wire shapes only: request paths are percent-decoded once,
//! segment by segment, then parsed and validated (every path sent upstream
//! is re-encoded from the parsed module path and version); the answer or
//! the [`Refusal`] comes from the upstream's [`GoUpstream`] (the pipeline
//! and the checksum-database follower), and is rendered here: the body
//! streamed, a `Warning` header when it is served from a stale verified
//! state, a refusal as the JSON error naming the upstream, the check, and
//! what was expected and seen (a 4xx or 5xx of the upstream keeps its
//! status, so `go` falls through to the next proxy on 404 and 410).
//!
//! - `.mod`, `.zip`: verified against the checksum database
//!   ([`GoUpstream::module_file`]).
//! - `@v/list`, `.info`, `@latest`: unsigned metadata, shape-checked
//!   ([`GoUpstream::metadata`]).
//! - `/sumdb/<name>/supported|latest|lookup/...|tile/8/...`: only signed
//!   trees bulwark accepted, records it proved, tiles it authenticated.
//!
//! Built by the Go ecosystem (`gomod::ECOSYSTEM`) from the shared
//! [`EcosystemContext`].

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{header, HeaderValue, Request, Response, StatusCode};

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::gomod::config::PROTOCOL;
use crate::gomod::module::{
    decode_request_path, unescape_path, unescape_version, ModuleVersion, ProxyRequest,
};
use crate::gomod::service::{Answer, GoUpstream};
use crate::gomod::verifier::ModFile;
use crate::http::{full, stream_body, ApiError, Front, ReqBody, ResBody};
use crate::pipeline::refusal::{offline_warning, Refusal};
use crate::pipeline::respond::{blob_response, BlobResponse};

/// The Go-modules front (see the module documentation).
pub struct GoFront {
    federation: Arc<Federation>,
    by_upstream: HashMap<String, Arc<GoUpstream>>,
    by_sumdb: HashMap<String, Arc<GoUpstream>>,
    /// `[server] offline`: everything served carries the stale `Warning`.
    offline: bool,
}

impl GoFront {
    /// Builds the front for every `gomod` upstream of the configuration.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<GoFront> {
        let mut by_upstream = HashMap::new();
        let mut by_sumdb = HashMap::new();
        for u in ctx.upstreams(PROTOCOL) {
            let g = Arc::new(GoUpstream::new(ctx, u)?);
            by_sumdb.insert(g.sumdb_name().to_string(), g.clone());
            by_upstream.insert(u.name.clone(), g);
        }
        Ok(GoFront {
            federation: ctx.federation.clone(),
            by_upstream,
            by_sumdb,
            offline: ctx.config.server.offline,
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

    /// `/sumdb/<name>/<rest>`, past the gate.
    async fn sumdb(&self, g: &GoUpstream, rest: &str) -> Result<Answer, ApiError> {
        if rest == "supported" {
            return Ok(Answer {
                body: crate::store::Blob::from_bytes(bytes::Bytes::new()),
                content_type: "text/plain; charset=utf-8",
                warning: None,
                digest: None,
            });
        }
        if rest == "latest" {
            return g.sumdb_latest().await.map_err(refused);
        }
        if let Some(mv) = rest.strip_prefix("lookup/") {
            let (p, ver) = mv.rsplit_once('@').ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "lookup: want <module>@<version>")
            })?;
            let m = unescape_path(p)
                .and_then(|p| unescape_version(ver).map(|v| (p, v)))
                .and_then(|(p, v)| ModuleVersion::new(&p, &v))
                .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
            return g.sumdb_lookup(&m).await.map_err(refused);
        }
        if rest.starts_with("tile/") {
            return g.sumdb_tile(rest).await.map_err(refused);
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such checksum-database route",
        ))
    }

    /// A GOPROXY request of a routed module.
    async fn proxy(&self, g: &GoUpstream, req: &ProxyRequest) -> Result<Answer, ApiError> {
        let file = match req {
            ProxyRequest::Mod(m) => Some((ModFile::Mod, m)),
            ProxyRequest::Zip(m) => Some((ModFile::Zip, m)),
            _ => None,
        };
        let r = match file {
            // The pipeline's lookup is this request's gate.
            Some((file, m)) => g.module_file(file, m, req.to_path()).await,
            None => match g.gate().await {
                Ok(_) => g.metadata(req).await,
                Err(r) => Err(r),
            },
        };
        r.map_err(refused)
    }
}

/// An answer as an HTTP response: a module file through the pipeline's
/// blob response (`ETag`, `If-None-Match`, `Range`, `HEAD`, immutable);
/// other in-memory bodies whole, stored blobs streamed from the store.
fn respond(parts: &http::request::Parts, a: Answer) -> Response<ResBody> {
    if let Some(digest) = a.digest {
        return blob_response(
            &parts.headers,
            &parts.method,
            a.body,
            &digest,
            BlobResponse {
                content_type: a.content_type,
                immutable: true,
                warning: a.warning,
            },
        );
    }
    let body = match a.body.in_memory() {
        Some(b) => full(b.clone()),
        None => stream_body(a.body.len(), a.body.into_stream()),
    };
    let mut res = Response::new(body);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    if let Some(w) = a.warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        res.headers_mut().insert(header::WARNING, w);
    }
    res
}

/// A refusal as the JSON error naming the upstream, the check, and what
/// was expected and seen.
fn refused(r: Refusal) -> ApiError {
    if r.status == StatusCode::BAD_GATEWAY {
        tracing::warn!(upstream = %r.upstream, check = r.check, "refused: {r}");
    }
    r.api_error()
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
            let (parts, _body) = req.into_parts();
            let path = match decode_request_path(parts.uri.path()) {
                Ok(p) => p,
                Err(e) => {
                    return ApiError::new(StatusCode::NOT_FOUND, e.to_string()).into_response()
                }
            };
            // One quarantine gate per request, on every route, before
            // anything (cached or not) of the upstream is served.
            let (r, upstream) = if let Some((g, rest)) = self.sumdb_route(&path) {
                let r = match g.gate().await {
                    Ok(_) => self.sumdb(&g, rest).await,
                    Err(r) => Err(refused(r)),
                };
                (r, g.name().to_string())
            } else if let Some((g, preq)) = self.proxy_route(&path) {
                (self.proxy(&g, &preq).await, g.name().to_string())
            } else {
                (
                    Err(ApiError::new(StatusCode::NOT_FOUND, "not routed")),
                    String::new(),
                )
            };
            // Offline, nothing is confirmed with the upstream: what was
            // verified is served, always with the stale `Warning`.
            let r = r.map(|mut a| {
                a.warning = offline_warning(self.offline, &upstream, a.warning.take());
                a
            });
            r.map(|a| respond(&parts, a))
                .unwrap_or_else(ApiError::into_response)
        }
        .boxed()
    }
}
