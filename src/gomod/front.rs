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

    /// What a request path asks of which upstream, if this front answers
    /// it: the path percent-decoded once, then a checksum-database route
    /// or a parsed GOPROXY request of a routed module.
    fn resolve(&self, raw: &str) -> Option<Routed> {
        let path = decode_request_path(raw).ok()?;
        if let Some(rest) = path.strip_prefix("/sumdb/") {
            if let Some((name, rest)) = rest.split_once('/') {
                if let Some(g) = self.by_sumdb.get(name) {
                    return Some(Routed::Sumdb(g.clone(), rest.to_string()));
                }
            }
        }
        let req = ProxyRequest::parse(&path).ok()?;
        let u = self.federation.route(PROTOCOL, req.module_path())?;
        let g = self.by_upstream.get(&u.name)?;
        Some(Routed::Proxy(g.clone(), req))
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
            Some((file, m)) => g.module_file(file, m).await,
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

/// What [`GoFront::resolve`] found: kept in a claimed request's
/// extensions, so that its path is parsed once.
#[derive(Clone)]
enum Routed {
    /// `/sumdb/<name>/<rest>` of this upstream's checksum database.
    Sumdb(Arc<GoUpstream>, String),
    /// A GOPROXY request of a module routed to this upstream.
    Proxy(Arc<GoUpstream>, ProxyRequest),
}

impl Routed {
    fn label(&self) -> &'static str {
        match self {
            Routed::Sumdb(..) => "gomod.sumdb",
            Routed::Proxy(_, ProxyRequest::Mod(_)) => "gomod.mod",
            Routed::Proxy(_, ProxyRequest::Zip(_)) => "gomod.zip",
            Routed::Proxy(..) => "gomod.meta",
        }
    }
}

fn get_or_head(req: &Request<ReqBody>) -> bool {
    req.method() == http::Method::GET || req.method() == http::Method::HEAD
}

impl Front for GoFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        if !get_or_head(req) {
            return None;
        }
        self.resolve(req.uri().path()).map(|r| r.label())
    }

    fn claim(&self, req: &mut Request<ReqBody>) -> Option<&'static str> {
        if !get_or_head(req) {
            return None;
        }
        let routed = self.resolve(req.uri().path())?;
        let label = routed.label();
        req.extensions_mut().insert(routed);
        Some(label)
    }

    fn handle<'a>(
        &'a self,
        _route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        async move {
            let (mut parts, _body) = req.into_parts();
            let routed = match parts.extensions.remove::<Routed>() {
                Some(r) => Some(r),
                None => self.resolve(parts.uri.path()),
            };
            // One quarantine gate per request, on every route, before
            // anything (cached or not) of the upstream is served.
            let (r, g) = match &routed {
                Some(Routed::Sumdb(g, rest)) => {
                    let r = match g.gate().await {
                        Ok(_) => self.sumdb(g, rest).await,
                        Err(r) => Err(refused(r)),
                    };
                    (r, g)
                }
                Some(Routed::Proxy(g, preq)) => (self.proxy(g, preq).await, g),
                None => return ApiError::new(StatusCode::NOT_FOUND, "not routed").into_response(),
            };
            // Offline, nothing is confirmed with the upstream: what was
            // verified is served, always with the stale `Warning`.
            let r = r.map(|mut a| {
                a.warning = offline_warning(self.offline, g.name(), a.warning.take());
                a
            });
            r.map(|a| respond(&parts, a))
                .unwrap_or_else(ApiError::into_response)
        }
        .boxed()
    }
}
