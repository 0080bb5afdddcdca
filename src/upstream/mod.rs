//! The HTTP client bulwark uses to talk to one upstream registry.
//!
//! Protocol fronts (Warg, Go modules) and the verifier's fetchers call
//! [`UpstreamClient`]; nothing here knows about registries' formats. One
//! client serves one configured upstream (`[[upstream]]` in the federation
//! file): every request goes to its base URL, carries its bearer token if one
//! is configured, and is bounded by its limits:
//!
//! - **Connecting**: names resolve with hickory-resolver (system
//!   configuration, the OS resolver if that cannot be read, or one given
//!   nameserver); TLS is rustls with the ring provider, web PKI roots plus an
//!   optional extra CA; HTTP/2 or HTTP/1.1 by ALPN; plain `http://` is allowed.
//!   A connect timeout covers lookup, TCP and handshake.
//! - **Each attempt** has a request timeout covering headers and the whole
//!   body, and the body is read frame by frame into at most
//!   `max_response_bytes`: one byte over and the attempt fails with
//!   [`UpstreamError::TooLarge`] (a larger Content-Length fails before any
//!   body is read).
//! - **Idempotent requests** (GETs, and POSTs marked read-only with
//!   [`UpstreamRequest::post_json_idempotent`], as Warg's fetch endpoints
//!   are) are retried up to `retries` times with exponential backoff and
//!   jitter on connect/DNS errors, timeouts, broken exchanges and 502/503/504,
//!   never on other statuses; they are **coalesced**: while one is in flight,
//!   identical requests (same method, path, caller headers, body hash and size
//!   cap) wait for it and share its outcome, errors included; and a 404 is
//!   remembered for `negative_ttl`, so a flood of requests for a missing
//!   object reaches the upstream once per TTL.
//! - **Other requests** (publishing) are sent exactly once.
//! - **A circuit breaker** stops sending to an upstream after
//!   `breaker_threshold` of bulwark's own requests ([`UpstreamRequest::probe`])
//!   in a row failed (connect/DNS/TLS errors, timeouts, broken exchanges,
//!   502/503/504 after retries): for `breaker_cooldown` requests fail at once
//!   with [`UpstreamError::CircuitOpen`]; then one of bulwark's own requests
//!   probes, and its outcome closes the breaker or opens it again. Requests
//!   a client chose never count, so a client cannot open the breaker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bulwark::upstream::UpstreamError> {
//! use bulwark::upstream::{UpstreamClient, UpstreamOptions};
//! let client = UpstreamClient::new(UpstreamOptions::new("golang", "https://proxy.golang.org"))?;
//! let list = client.get("/golang.org/x/mod/@v/list").await?.error_for_status()?;
//! println!("{}", String::from_utf8_lossy(&list.body));
//! # Ok(()) }
//! ```
//!
//! Every attempt that reaches the network is reported to the optional
//! [`LatencyHook`] (upstream name, duration, status or `None` on error), so
//! the server's metrics stay decoupled from this module.

mod breaker;
mod connect;
mod error;

pub use error::{TimeoutPhase, UpstreamError};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use breaker::Breaker;
use connect::{ConnectError, Connector, Dns};

/// Called once per upstream attempt that went to the network: the
/// upstream's name, how long the attempt took (until the last body byte or
/// the error), and the HTTP status if one was received.
pub type LatencyHook = Arc<dyn Fn(&str, Duration, Option<u16>) + Send + Sync>;

/// The longest pause between two retries, whatever the attempt number.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How many bytes of 404 answers (bodies, headers and keys, roughly) are
/// remembered at most.
const NEGATIVE_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// How one upstream is reached. Build with [`UpstreamOptions::new`] and
/// override fields as needed.
#[derive(Clone)]
pub struct UpstreamOptions {
    /// The upstream's configured name; it appears in every error and metric.
    pub name: String,
    /// `http://` or `https://` URL, optionally with a path prefix that every
    /// request path is appended to. No query, no user info.
    pub base_url: String,
    /// Deadline for DNS lookup, TCP connect and TLS handshake together.
    pub connect_timeout: Duration,
    /// Deadline for one attempt, from sending the request to the last byte
    /// of the response body.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes (per request; see
    /// [`UpstreamRequest::max_response_bytes`] to change it for one).
    pub max_response_bytes: u64,
    /// How many times an idempotent request is tried again after a
    /// retryable failure (0: tried once).
    pub retries: u32,
    /// Backoff before the first retry; it doubles on each further retry (up
    /// to 10 s), and each pause is jittered between half and all of it.
    pub retry_backoff: Duration,
    /// How long a 404 for an idempotent request is remembered; zero turns
    /// negative caching off.
    pub negative_ttl: Duration,
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub bearer_token: Option<String>,
    /// A PEM file of extra CA certificates trusted besides the web PKI roots.
    pub extra_ca_pem: Option<PathBuf>,
    /// Resolve names through this nameserver only (UDP and TCP), instead of
    /// the system configuration.
    pub dns: Option<SocketAddr>,
    /// Receives the latency of every attempt.
    pub latency_hook: Option<LatencyHook>,
    /// After this many requests in a row fail, the upstream is not asked
    /// again for `breaker_cooldown`; zero turns the breaker off.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one request probes.
    pub breaker_cooldown: Duration,
    /// Never contact the upstream: every request fails at once with
    /// [`UpstreamError::Offline`] (`[server] offline = true`).
    pub offline: bool,
}

impl UpstreamOptions {
    /// Options with bulwark's defaults: connect 10 s, request 60 s, 64 MiB
    /// bodies, 2 retries from 200 ms, 404s remembered 30 s, breaker opening
    /// for 10 s after 5 failed requests in a row, no token, no extra CA,
    /// system DNS.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        UpstreamOptions {
            name: name.into(),
            base_url: base_url.into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 64 * 1024 * 1024,
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            negative_ttl: Duration::from_secs(30),
            bearer_token: None,
            extra_ca_pem: None,
            dns: None,
            latency_hook: None,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(10),
            offline: false,
        }
    }
}

impl fmt::Debug for UpstreamOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamOptions")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("negative_ttl", &self.negative_ttl)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("extra_ca_pem", &self.extra_ca_pem)
            .field("dns", &self.dns)
            .field("latency_hook", &self.latency_hook.as_ref().map(|_| "<fn>"))
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("offline", &self.offline)
            .finish()
    }
}

/// A request to send to the upstream, relative to its base URL.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
    idempotent: bool,
    max_response_bytes: Option<u64>,
    timeout: Option<Duration>,
    probe: bool,
}

impl UpstreamRequest {
    /// A GET: retried, coalesced, 404s negatively cached.
    pub fn get(path_and_query: impl Into<String>) -> Self {
        UpstreamRequest {
            method: Method::GET,
            path_and_query: path_and_query.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            idempotent: true,
            max_response_bytes: None,
            timeout: None,
            probe: false,
        }
    }

    /// A POST that changes state upstream (a publish): sent exactly once,
    /// never retried, never coalesced.
    pub fn post(
        path_and_query: impl Into<String>,
        content_type: HeaderValue,
        body: impl Into<Bytes>,
    ) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type);
        UpstreamRequest {
            method: Method::POST,
            path_and_query: path_and_query.into(),
            headers,
            body: body.into(),
            idempotent: false,
            max_response_bytes: None,
            timeout: None,
            probe: false,
        }
    }

    /// A read-only POST with a JSON body (Warg's `fetch/logs`,
    /// `fetch/checkpoint`, `proof/*`): treated like a GET, keyed by the
    /// SHA-256 of its body for coalescing and negative caching, and retried.
    pub fn post_json_idempotent(path_and_query: impl Into<String>, body: impl Into<Bytes>) -> Self {
        let mut req = Self::post(
            path_and_query,
            HeaderValue::from_static("application/json"),
            body,
        );
        req.idempotent = true;
        req
    }

    /// Adds a request header. Headers are part of the coalescing key. An
    /// `Authorization` header is replaced by the upstream's bearer token
    /// when one is configured.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Overrides the upstream's body size cap for this request (a Go module
    /// zip may be allowed more than a JSON document).
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_response_bytes = Some(limit);
        self
    }

    /// Overrides the upstream's per-attempt request timeout for this
    /// request (a large download may need longer than a JSON document).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the request as bulwark's own (a checkpoint, `/latest` or tile
    /// fetch, the lookup of a record it verifies): only such requests count
    /// toward the circuit breaker. Never mark a request whose path or body
    /// a client chose.
    pub fn probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// Whether this request is retried and coalesced.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }
}

/// A complete upstream response: the body has been read in full and is
/// within the size cap.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// The configured name of the upstream that answered.
    pub upstream: Arc<str>,
    /// The URL requested.
    pub url: Arc<str>,
    pub status: StatusCode,
    /// HTTP/1.1 or HTTP/2, as negotiated.
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl UpstreamResponse {
    /// The response if its status is 2xx, else [`UpstreamError::Status`].
    pub fn error_for_status(self) -> Result<Self, UpstreamError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(UpstreamError::Status {
                upstream: self.upstream.to_string(),
                url: self.url.to_string(),
                code: self.status.as_u16(),
            })
        }
    }

    /// The response's `Content-Type`, if present and printable.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE)?.to_str().ok()
    }
}

/// How an upstream's status is taken, the same on every route of every
/// front: only the exact success answer of the route (`200` almost
/// everywhere) may take the verified path; an upstream `4xx`/`5xx` is the
/// upstream's failure, whose status the client may be told (never its
/// body); anything else (`203`, `206`, `3xx`, another `2xx`) is a
/// misbehaving upstream, refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// The route's success answer.
    Success,
    /// An upstream 4xx or 5xx.
    Failure(StatusCode),
    /// Any other status: refused as unexpected.
    Unexpected(StatusCode),
}

impl StatusClass {
    /// Classifies `status` for a route whose success answer is `expected`.
    pub fn of(status: StatusCode, expected: StatusCode) -> StatusClass {
        if status == expected {
            StatusClass::Success
        } else if status.is_client_error() || status.is_server_error() {
            StatusClass::Failure(status)
        } else {
            StatusClass::Unexpected(status)
        }
    }
}

/// A response whose body is still on the wire: for large downloads that
/// must never be held whole in memory (module zips, Warg content). See
/// [`UpstreamClient::send_streaming`].
pub struct UpstreamStream {
    /// The configured name of the upstream that answered.
    pub upstream: Arc<str>,
    /// The URL requested.
    pub url: Arc<str>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The length the upstream announced, already checked against the cap.
    pub declared_len: Option<u64>,
    /// The body, in the chunks it arrives in. It fails (never ends short)
    /// when more than the cap arrives, when no byte arrives for the
    /// request timeout, or when the exchange breaks; each error names the
    /// upstream and the URL.
    pub body: futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl fmt::Debug for UpstreamStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamStream")
            .field("upstream", &self.upstream)
            .field("url", &self.url)
            .field("status", &self.status)
            .field("declared_len", &self.declared_len)
            .finish_non_exhaustive()
    }
}

/// Counters of what the client did, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Attempts that went to the network (retries count separately).
    pub attempts: u64,
    /// Idempotent requests that joined a fetch already in flight.
    pub coalesced: u64,
    /// Idempotent requests answered from the 404 cache.
    pub negative_hits: u64,
    /// Callers waiting right now on an in-flight idempotent fetch.
    pub waiting: u64,
    /// Distinct idempotent fetches in flight right now.
    pub in_flight: u64,
    /// Requests refused at once because the circuit breaker was open.
    pub breaker_rejections: u64,
    /// Whether the breaker is open (or half-open, probing) right now.
    pub breaker_open: bool,
}

/// The client for one upstream. Cheap to clone; clones share connections,
/// in-flight fetches and the 404 cache.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

type Outcome = Result<UpstreamResponse, UpstreamError>;
type SharedFetch = Shared<BoxFuture<'static, Outcome>>;

struct Inner {
    name: Arc<str>,
    base_url: String,
    /// `scheme://authority` of the base URL.
    origin: String,
    /// The base URL's path without its trailing `/` (often empty).
    prefix: String,
    request_timeout: Duration,
    max_response_bytes: u64,
    retries: u32,
    retry_backoff: Duration,
    authorization: Option<HeaderValue>,
    latency_hook: Option<LatencyHook>,
    http: Client<Connector, Full<Bytes>>,
    in_flight: Mutex<HashMap<Key, SharedFetch>>,
    negative: Option<moka::sync::Cache<Key, UpstreamResponse>>,
    breaker: Option<Breaker>,
    offline: bool,
    attempts: AtomicU64,
    coalesced: AtomicU64,
    negative_hits: AtomicU64,
    waiting: AtomicU64,
}

/// What makes two idempotent requests the same for coalescing and the 404
/// cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    method: Method,
    path_and_query: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body_sha256: [u8; 32],
    max_response_bytes: u64,
    timeout: Duration,
}

/// A request checked against the base URL, with the client's own headers.
struct Prepared {
    method: Method,
    uri: Uri,
    url: Arc<str>,
    headers: HeaderMap,
    body: Bytes,
    max_response_bytes: u64,
    timeout: Duration,
    /// Counts toward the circuit breaker (see [`UpstreamRequest::probe`]).
    probe: bool,
}

impl UpstreamClient {
    /// Builds the client: checks the base URL, loads the extra CA, sets up
    /// DNS and the connection pool. Must be called inside a tokio runtime.
    pub fn new(options: UpstreamOptions) -> Result<Self, UpstreamError> {
        let config_err = |reason: String| UpstreamError::Config {
            upstream: options.name.clone(),
            reason,
        };
        let base: Uri = options
            .base_url
            .parse()
            .map_err(|e| config_err(format!("base URL {:?}: {e}", options.base_url)))?;
        let scheme = match base.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            _ => {
                return Err(config_err(format!(
                    "base URL {:?} must start with http:// or https://",
                    options.base_url
                )))
            }
        };
        let authority = base
            .authority()
            .ok_or_else(|| config_err(format!("base URL {:?} has no host", options.base_url)))?;
        if authority.as_str().contains('@') {
            return Err(config_err(format!(
                "base URL {:?} carries credentials; use bearer_token instead",
                options.base_url
            )));
        }
        if base.query().is_some() {
            return Err(config_err(format!(
                "base URL {:?} must not have a query",
                options.base_url
            )));
        }
        if options.max_response_bytes == 0 {
            return Err(config_err("max_response_bytes must be above 0".into()));
        }
        let authorization = match &options.bearer_token {
            None => None,
            Some(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    config_err("bearer_token contains characters not allowed in a header".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };

        let tls = connect::tls_config(options.extra_ca_pem.as_deref()).map_err(config_err)?;
        let dns = match options.dns {
            Some(ns) => Dns::with_nameserver(ns).map_err(config_err)?,
            None => Dns::system(),
        };
        let connector = Connector::new(dns, tls, options.connect_timeout);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);

        let negative = (!options.negative_ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .weigher(|key: &Key, response: &UpstreamResponse| {
                    let headers: usize = response
                        .headers
                        .iter()
                        .map(|(n, v)| n.as_str().len() + v.len())
                        .sum();
                    let size = key.path_and_query.len() + response.body.len() + headers + 256;
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .max_capacity(NEGATIVE_CACHE_BYTES)
                .time_to_live(options.negative_ttl)
                .build()
        });
        let breaker = (options.breaker_threshold > 0)
            .then(|| Breaker::new(options.breaker_threshold, options.breaker_cooldown));
        if authorization.is_some() && scheme == "http" && !is_loopback(authority.host()) {
            tracing::warn!(
                upstream = %options.name,
                base_url = %options.base_url,
                "a bearer token will be sent over plain http"
            );
        }

        Ok(UpstreamClient {
            inner: Arc::new(Inner {
                name: Arc::from(options.name.as_str()),
                origin: format!("{scheme}://{authority}"),
                prefix: base.path().trim_end_matches('/').to_string(),
                base_url: options.base_url,
                request_timeout: options.request_timeout,
                max_response_bytes: options.max_response_bytes,
                retries: options.retries,
                retry_backoff: options.retry_backoff,
                authorization,
                latency_hook: options.latency_hook,
                http,
                in_flight: Mutex::new(HashMap::new()),
                negative,
                breaker,
                offline: options.offline,
                attempts: AtomicU64::new(0),
                coalesced: AtomicU64::new(0),
                negative_hits: AtomicU64::new(0),
                waiting: AtomicU64::new(0),
            }),
        })
    }

    /// The upstream's configured name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The base URL as configured.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The full URL a path maps to (the base URL's path prefix, then
    /// `path_and_query`, which must start with `/`).
    pub fn url_for(&self, path_and_query: &str) -> Result<String, UpstreamError> {
        self.inner.uri_for(path_and_query).map(|u| u.to_string())
    }

    /// The path (and query) to pass to [`get`](Self::get) for an absolute
    /// URL that lies under this upstream's base URL (same scheme, host, port
    /// and path prefix), e.g. a content URL the upstream handed out; `None`
    /// for any other URL, which this client will not fetch (its token must
    /// not travel elsewhere).
    pub fn path_of(&self, url: &str) -> Option<String> {
        let rest = url.strip_prefix(self.inner.origin.as_str())?;
        let rest = rest.strip_prefix(self.inner.prefix.as_str())?;
        if !rest.starts_with('/') || rest.starts_with("//") {
            return None;
        }
        self.inner.uri_for(rest).ok()?;
        Some(rest.to_string())
    }

    /// GETs `path_and_query` (retried, coalesced, 404s cached).
    pub async fn get(&self, path_and_query: &str) -> Result<UpstreamResponse, UpstreamError> {
        self.send(UpstreamRequest::get(path_and_query)).await
    }

    /// POSTs `body` once, without retries or coalescing (for publishing).
    pub async fn post(
        &self,
        path_and_query: &str,
        content_type: HeaderValue,
        body: impl Into<Bytes>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send(UpstreamRequest::post(path_and_query, content_type, body))
            .await
    }

    /// POSTs a JSON `body` to a read-only endpoint: retried, coalesced by
    /// body hash, 404s cached, like a GET.
    pub async fn post_json_idempotent(
        &self,
        path_and_query: &str,
        body: impl Into<Bytes>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        self.send(UpstreamRequest::post_json_idempotent(path_and_query, body))
            .await
    }

    /// Sends `request`. Any HTTP answer is `Ok` (use
    /// [`UpstreamResponse::error_for_status`] to refuse non-2xx); `Err` means
    /// no acceptable answer was received.
    /// Sends a request and returns as soon as the response head is in,
    /// with the body still streaming (bounded by the size cap while it is
    /// read): for downloads too large to hold in memory. Through the
    /// circuit breaker like [`send`](Self::send) (its health is judged at
    /// the head); an idempotent request is retried while no head came back;
    /// never coalesced or negatively cached (callers that want one download
    /// per object single-flight it themselves).
    pub async fn send_streaming(
        &self,
        request: UpstreamRequest,
    ) -> Result<UpstreamStream, UpstreamError> {
        self.inner.send_streaming(&request).await
    }

    pub async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, UpstreamError> {
        let prepared = self.inner.prepare(&request)?;
        if !request.idempotent {
            return self.inner.guarded(&prepared, false).await;
        }
        let key = Key::of(&request, &prepared);
        if let Some(cached) = self.inner.negative.as_ref().and_then(|c| c.get(&key)) {
            self.inner.negative_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached);
        }
        let fetch = self.inner.join_or_start(key, prepared);
        self.inner.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = DecrementOnDrop(&self.inner.waiting);
        fetch.await
    }

    /// What the client has done so far.
    pub fn stats(&self) -> UpstreamStats {
        let inner = &self.inner;
        UpstreamStats {
            attempts: inner.attempts.load(Ordering::Relaxed),
            coalesced: inner.coalesced.load(Ordering::Relaxed),
            negative_hits: inner.negative_hits.load(Ordering::Relaxed),
            waiting: inner.waiting.load(Ordering::Relaxed),
            in_flight: inner.in_flight.lock().map_or(0, |m| m.len() as u64),
            breaker_rejections: inner.breaker.as_ref().map_or(0, Breaker::rejections),
            breaker_open: inner.breaker.as_ref().is_some_and(Breaker::is_open),
        }
    }
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

struct DecrementOnDrop<'a>(&'a AtomicU64);

impl Drop for DecrementOnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Removes a finished fetch from the in-flight map, also if its task
/// panicked or was cancelled.
struct InFlightEntry {
    inner: Arc<Inner>,
    key: Option<Key>,
}

impl Drop for InFlightEntry {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut map) = self.inner.in_flight.lock() {
                map.remove(&key);
            }
        }
    }
}

impl Key {
    fn of(request: &UpstreamRequest, prepared: &Prepared) -> Self {
        let mut headers: Vec<(HeaderName, HeaderValue)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        headers.sort_by(|a, b| (a.0.as_str(), a.1.as_bytes()).cmp(&(b.0.as_str(), b.1.as_bytes())));
        Key {
            method: request.method.clone(),
            path_and_query: request.path_and_query.clone(),
            headers,
            body_sha256: Sha256::digest(&request.body).into(),
            max_response_bytes: prepared.max_response_bytes,
            timeout: prepared.timeout,
        }
    }
}

impl Inner {
    fn uri_for(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let invalid = |reason: &str| UpstreamError::InvalidRequest {
            upstream: self.name.to_string(),
            path: path_and_query.to_string(),
            reason: reason.to_string(),
        };
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return Err(invalid("must start with a single '/'"));
        }
        if path_and_query.contains('#') {
            return Err(invalid("must not contain a fragment"));
        }
        let url = format!("{}{}{}", self.origin, self.prefix, path_and_query);
        url.parse::<Uri>()
            .map_err(|e| invalid(&format!("not a valid URL path: {e}")))
    }

    fn prepare(&self, request: &UpstreamRequest) -> Result<Prepared, UpstreamError> {
        let uri = self.uri_for(&request.path_and_query)?;
        if self.offline {
            return Err(UpstreamError::Offline {
                upstream: self.name.to_string(),
                url: uri.to_string(),
            });
        }
        let mut headers = request.headers.clone();
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("bulwark/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        Ok(Prepared {
            method: request.method.clone(),
            url: Arc::from(uri.to_string()),
            uri,
            headers,
            body: request.body.clone(),
            max_response_bytes: request
                .max_response_bytes
                .unwrap_or(self.max_response_bytes),
            timeout: request.timeout.unwrap_or(self.request_timeout),
            probe: request.probe,
        })
    }

    /// Returns the in-flight fetch for `key`, starting it if there is none.
    /// The fetch runs in its own task, so it finishes (and feeds the 404
    /// cache) even if the caller that started it goes away.
    fn join_or_start(self: &Arc<Self>, key: Key, prepared: Prepared) -> SharedFetch {
        let Ok(mut map) = self.in_flight.lock() else {
            // A poisoned lock only means a panic elsewhere; fetch alone.
            let inner = self.clone();
            return async move { inner.guarded(&prepared, true).await }
                .boxed()
                .shared();
        };
        if let Some(fetch) = map.get(&key) {
            self.coalesced.fetch_add(1, Ordering::Relaxed);
            return fetch.clone();
        }
        let entry = InFlightEntry {
            inner: self.clone(),
            key: Some(key.clone()),
        };
        let inner = self.clone();
        let prepared_url = prepared.url.clone();
        let task = tokio::spawn(async move {
            let entry = entry;
            let outcome = inner.guarded(&prepared, true).await;
            if let (Ok(response), Some(cache), Some(key)) =
                (&outcome, &inner.negative, entry.key.as_ref())
            {
                if response.status == StatusCode::NOT_FOUND {
                    // Cached before the in-flight entry goes (when `entry`
                    // drops), so no request slips between the two.
                    cache.insert(key.clone(), response.clone());
                }
            }
            drop(entry);
            outcome
        });
        let name = self.name.clone();
        let url = prepared_url;
        let fetch = async move {
            task.await.unwrap_or_else(|e| {
                Err(UpstreamError::Protocol {
                    upstream: name.to_string(),
                    url: url.to_string(),
                    reason: format!("the fetch task ended abnormally: {e}"),
                })
            })
        }
        .boxed()
        .shared();
        map.insert(key, fetch.clone());
        fetch
    }

    /// Sends a request through the circuit breaker: refused at once while
    /// it is open, and its final outcome (after retries, when `retry`)
    /// recorded.
    async fn guarded(&self, prepared: &Prepared, retry: bool) -> Outcome {
        let permit = self.admit(prepared)?;
        let outcome = if retry {
            self.with_retries(prepared).await
        } else {
            self.attempt(prepared).await
        };
        self.record(permit, outcome.as_ref().map(|r| r.status));
        outcome
    }

    /// Admits a request through the circuit breaker (`None`: no breaker),
    /// or refuses it at once while the breaker is open.
    fn admit(&self, prepared: &Prepared) -> Result<Option<breaker::Permit<'_>>, UpstreamError> {
        let Some(breaker) = &self.breaker else {
            return Ok(None);
        };
        breaker
            .admit(prepared.probe)
            .map(Some)
            .map_err(|open| UpstreamError::CircuitOpen {
                upstream: self.name.to_string(),
                url: prepared.url.to_string(),
                failures: open.failures,
                retry_in: open.retry_in,
            })
    }

    /// Records a request's final outcome (its status, or its error) with
    /// the breaker: 502-504 and failures of the exchange are unhealthy.
    fn record(
        &self,
        permit: Option<breaker::Permit<'_>>,
        outcome: Result<StatusCode, &UpstreamError>,
    ) {
        let Some(permit) = permit else {
            return;
        };
        let healthy = match outcome {
            Ok(status) => !matches!(status.as_u16(), 502..=504),
            Err(e) => !e.counts_against_upstream(),
        };
        if let Some(opened) = permit.record(healthy) {
            tracing::error!(
                upstream = %self.name,
                failures = opened.failures,
                cooldown = ?opened.retry_in,
                "upstream keeps failing; not asking it again until the cooldown ends"
            );
        }
    }

    /// Tries an idempotent request up to `1 + retries` times.
    async fn with_retries(&self, prepared: &Prepared) -> Outcome {
        let mut attempt = 0u32;
        loop {
            let outcome = self.attempt(prepared).await;
            if !retryable(outcome.as_ref().map(|r| r.status)) || attempt >= self.retries {
                return outcome;
            }
            let pause = backoff(self.retry_backoff, attempt);
            tracing::warn!(
                upstream = %self.name,
                url = %prepared.url,
                attempt = attempt + 1,
                outcome = %match &outcome {
                    Ok(r) => format!("HTTP {}", r.status.as_u16()),
                    Err(e) => e.to_string(),
                },
                ?pause,
                "upstream attempt failed; retrying"
            );
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// One request on the network, bounded by the request timeout, reported
    /// to the latency hook.
    async fn attempt(&self, prepared: &Prepared) -> Outcome {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = match tokio::time::timeout(prepared.timeout, self.exchange(prepared)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(UpstreamError::Timeout {
                upstream: self.name.to_string(),
                url: prepared.url.to_string(),
                phase: TimeoutPhase::Request,
                after: prepared.timeout,
            }),
        };
        let elapsed = started.elapsed();
        if let Some(hook) = &self.latency_hook {
            hook(
                &self.name,
                elapsed,
                outcome.as_ref().ok().map(|r| r.status.as_u16()),
            );
        }
        tracing::debug!(
            upstream = %self.name,
            method = %prepared.method,
            url = %prepared.url,
            ?elapsed,
            status = outcome.as_ref().ok().map(|r| r.status.as_u16()),
            "upstream attempt"
        );
        outcome
    }

    async fn send_streaming(
        &self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamStream, UpstreamError> {
        let prepared = self.prepare(request)?;
        let permit = self.admit(&prepared)?;
        let mut attempt = 0u32;
        let outcome = loop {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = match tokio::time::timeout(prepared.timeout, self.head(&prepared)).await {
                Ok(o) => o,
                Err(_) => Err(UpstreamError::Timeout {
                    upstream: self.name.to_string(),
                    url: prepared.url.to_string(),
                    phase: TimeoutPhase::Request,
                    after: prepared.timeout,
                }),
            };
            if let Some(hook) = &self.latency_hook {
                let status = outcome.as_ref().ok().map(|r| r.status.as_u16());
                hook(&self.name, started.elapsed(), status);
            }
            let again = request.idempotent && retryable(outcome.as_ref().map(|r| r.status));
            if !again || attempt >= self.retries {
                break outcome;
            }
            tokio::time::sleep(backoff(self.retry_backoff, attempt)).await;
            attempt += 1;
        };
        self.record(permit, outcome.as_ref().map(|r| r.status));
        outcome
    }

    /// One exchange up to the response head; the body streams afterwards,
    /// capped at `max_response_bytes` and idle-bounded by the request
    /// timeout per chunk.
    async fn head(&self, prepared: &Prepared) -> Result<UpstreamStream, UpstreamError> {
        let (parts, body, declared) = self.response_head(prepared).await?;
        let limit = prepared.max_response_bytes;
        let what = format!("upstream {} ({})", self.name, prepared.url);
        let idle = prepared.timeout;
        let state = (body, 0u64, what, false);
        let stream =
            futures_util::stream::unfold(state, move |(mut body, seen, what, done)| async move {
                if done {
                    return None;
                }
                let fail = |msg: String| std::io::Error::other(msg);
                loop {
                    let frame = match tokio::time::timeout(idle, body.frame()).await {
                        Err(_) => {
                            let e = fail(format!("{what}: no body bytes for {idle:?}"));
                            return Some((Err(e), (body, seen, what, true)));
                        }
                        Ok(None) => return None,
                        Ok(Some(Err(e))) => {
                            let e = fail(format!("{what}: reading the body: {}", error_chain(&e)));
                            return Some((Err(e), (body, seen, what, true)));
                        }
                        Ok(Some(Ok(frame))) => frame,
                    };
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let seen = seen.saturating_add(data.len() as u64);
                    if seen > limit {
                        let e = fail(format!(
                            "{what}: body is larger than the {limit} bytes allowed"
                        ));
                        return Some((Err(e), (body, seen, what, true)));
                    }
                    return Some((Ok(data), (body, seen, what, false)));
                }
            });
        Ok(UpstreamStream {
            upstream: self.name.clone(),
            url: prepared.url.clone(),
            status: parts.status,
            headers: parts.headers,
            declared_len: declared,
            body: futures_util::StreamExt::boxed(stream),
        })
    }

    /// Sends the request and takes the response head: the announced length
    /// (refused at once when over the cap) and the body still to read.
    async fn response_head(
        &self,
        prepared: &Prepared,
    ) -> Result<(http::response::Parts, hyper::body::Incoming, Option<u64>), UpstreamError> {
        let mut request = http::Request::new(Full::new(prepared.body.clone()));
        *request.method_mut() = prepared.method.clone();
        *request.uri_mut() = prepared.uri.clone();
        *request.headers_mut() = prepared.headers.clone();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.classify(&prepared.url, &e))?;
        let (parts, body) = response.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared {
            if len > prepared.max_response_bytes {
                return Err(UpstreamError::TooLarge {
                    upstream: self.name.to_string(),
                    url: prepared.url.to_string(),
                    limit: prepared.max_response_bytes,
                    declared: Some(len),
                });
            }
        }
        Ok((parts, body, declared))
    }

    async fn exchange(&self, prepared: &Prepared) -> Outcome {
        let (parts, mut body, declared) = self.response_head(prepared).await?;
        let limit = prepared.max_response_bytes;
        let too_large = |declared| UpstreamError::TooLarge {
            upstream: self.name.to_string(),
            url: prepared.url.to_string(),
            limit,
            declared,
        };
        // Preallocate what was announced (already checked against the cap),
        // but never more than 1 MiB on the upstream's word alone.
        let initial = declared.unwrap_or(0).min(limit).min(1 << 20);
        let mut buf = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| UpstreamError::Protocol {
                upstream: self.name.to_string(),
                url: prepared.url.to_string(),
                reason: format!("reading the response body: {}", error_chain(&e)),
            })?;
            if let Ok(data) = frame.into_data() {
                let total = (buf.len() as u64).saturating_add(data.len() as u64);
                if total > limit {
                    return Err(too_large(declared));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(UpstreamResponse {
            upstream: self.name.clone(),
            url: prepared.url.clone(),
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: buf.freeze(),
        })
    }

    /// Turns hyper-util's error into ours, finding the connector's error in
    /// its source chain when there is one.
    fn classify(&self, url: &str, err: &hyper_util::client::legacy::Error) -> UpstreamError {
        let upstream = self.name.to_string();
        let url = url.to_string();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(c) = e.downcast_ref::<ConnectError>() {
                return match c.clone() {
                    ConnectError::Dns { host, reason } => UpstreamError::Dns {
                        upstream,
                        url,
                        host,
                        reason,
                    },
                    ConnectError::Timeout { after, .. } => UpstreamError::Timeout {
                        upstream,
                        url,
                        phase: TimeoutPhase::Connect,
                        after,
                    },
                    ConnectError::Tls { reason, .. } => UpstreamError::Tls {
                        upstream,
                        url,
                        reason,
                    },
                    other @ (ConnectError::Connect { .. } | ConnectError::BadUri { .. }) => {
                        UpstreamError::Connect {
                            upstream,
                            url,
                            reason: other.to_string(),
                        }
                    }
                };
            }
            source = e.source();
        }
        if err.is_connect() {
            UpstreamError::Connect {
                upstream,
                url,
                reason: error_chain(err),
            }
        } else {
            UpstreamError::Protocol {
                upstream,
                url,
                reason: error_chain(err),
            }
        }
    }
}

/// Whether an idempotent request may be tried again after this outcome (its
/// status, or its error): 502-504, connection failures, timeouts and broken
/// exchanges.
fn retryable(outcome: Result<StatusCode, &UpstreamError>) -> bool {
    match outcome {
        Ok(status) => matches!(status.as_u16(), 502..=504),
        Err(e) => e.is_retryable(),
    }
}

/// The pause before retry number `attempt + 1`: `base * 2^attempt` (at most
/// [`MAX_BACKOFF`]), jittered to between half and all of it so that many
/// clients do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_BACKOFF);
    let half = full / 2;
    let span = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
    let jitter = if span == 0 {
        0
    } else {
        OsRng.next_u64() % span.saturating_add(1)
    };
    half + Duration::from_nanos(jitter)
}

/// Whether `host` (from a URI authority) is a loopback address or
/// `localhost`.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error and its causes, joined with ": ".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..4u32 {
            let full = base * 2u32.pow(attempt);
            for _ in 0..50 {
                let pause = backoff(base, attempt);
                assert!(pause >= full / 2 && pause <= full, "{attempt}: {pause:?}");
            }
        }
        for attempt in [10, 31, 32, u32::MAX] {
            let pause = backoff(base, attempt);
            assert!(
                pause >= MAX_BACKOFF / 2 && pause <= MAX_BACKOFF,
                "{pause:?}"
            );
        }
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "[2001:db8::1]"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
