//! The HTTP server: accepts connections (plain or rustls TLS), speaks HTTP/1.1
//! and HTTP/2, applies the limits, and hands each request to a protocol front.
//!
//! `main.rs` builds an [`App`] from the configuration, adds the fronts
//! ([`App::add_front`]: the admin routes of `admin.rs` first, then the
//! protocol fronts), binds a [`Server`] and runs it until SIGTERM. The HTTP
//! types fronts use ([`Front`], [`ApiError`], the bodies) live in
//! `crate::http`, below both. Every request goes through the same steps, in
//! this order:
//!
//! 1. request id (`x-request-id`, kept if the client's is sane, else made up
//!    from a per-process random prefix and a counter; echoed on the
//!    response);
//! 2. routing: each front in the order added (the admin routes `/healthz`,
//!    `/readyz`, `/metrics` first), else a JSON 404;
//! 3. bearer-token authentication when tokens are configured (401; health
//!    probes, [`Front::is_probe`], exempt);
//! 4. the body limit from `Content-Length` (413);
//! 5. the concurrency limit: a request takes one of `server.max_concurrency`
//!    slots, or waits for one in a bounded first-come-first-served queue
//!    (`server.queue_length` requests, each for at most
//!    `server.queue_timeout`), else 503 with `Retry-After` (probes and
//!    metrics, [`Front::is_unlimited`], never wait); a request holds its
//!    slot until its response head is ready (bodies stream from disk in
//!    bounded chunks, so a slow reader costs a connection, not memory);
//! 6. the front, under the request timeout (504) and a panic guard (500);
//!    fronts read bodies with [`read_body_within`] (a per-route limit,
//!    enforced while reading; `server.max_body_bytes` while the body is
//!    read), and a body nobody reads is drained, never buffered;
//! 7. metrics and one log line.
//!
//! Limits below the request level: the head size and header count (431, by
//! hyper), the header read timeout for slow clients (connection closed), a
//! TLS handshake timeout, and the connection limits of [`conn`]: a cap on
//! open connections and per client address, slots kept for health probes,
//! the write timeout for clients that stop reading, and the HTTP/2 idle
//! timeout.

mod conn;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use self::conn::{Admission, ConnState, Timeouts, Watched};

use crate::config::Config;
use crate::federation::Federation;
use crate::metrics::Metrics;

use crate::http::{drain_body, ApiError, BoxError, Front, ReqBody, RequestId, ResBody};

/// Shared state of the server: configuration, routing table, metrics and
/// the fronts.
pub struct App {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The routing table.
    pub federation: Arc<Federation>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    fronts: Vec<Arc<dyn Front>>,
    concurrency: Arc<Semaphore>,
    /// Requests waiting for a concurrency slot.
    queued: AtomicUsize,
    /// SHA-256 of each accepted bearer token (compared in constant time).
    token_hashes: Vec<[u8; 32]>,
    /// Request ids made up here: a random prefix per process, then a
    /// counter (unique without a random draw per request).
    id_prefix: u64,
    id_next: AtomicU64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("origin", &self.config.origin)
            .field("fronts", &self.fronts.len())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Builds the state and creates the data directory.
    pub fn new(config: Config) -> anyhow::Result<App> {
        let federation = Federation::new(&config.upstreams)?;
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "{}: server.data_dir: cannot create {}",
                config.origin,
                config.server.data_dir.display()
            )
        })?;
        let token_hashes = config
            .server
            .tokens
            .iter()
            .map(|t| Sha256::digest(t.expose().as_bytes()).into())
            .collect();
        let metrics = Metrics::new();
        for u in &config.upstreams {
            metrics.register_upstream(&u.name);
        }
        Ok(App {
            concurrency: Arc::new(Semaphore::new(config.server.max_concurrency)),
            federation: Arc::new(federation),
            metrics: Arc::new(metrics),
            fronts: Vec::new(),
            queued: AtomicUsize::new(0),
            token_hashes,
            id_prefix: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
            id_next: AtomicU64::new(0),
            config: Arc::new(config),
        })
    }

    /// Adds a front (the admin routes first, then the protocol fronts);
    /// fronts are asked in the order added.
    pub fn add_front(&mut self, front: Arc<dyn Front>) {
        self.fronts.push(front);
    }

    /// The data directory.
    pub fn data_dir(&self) -> &PathBuf {
        &self.config.server.data_dir
    }

    fn authorized(&self, req: &Request<ReqBody>) -> bool {
        if self.token_hashes.is_empty() {
            return true;
        }
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return false;
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut any = false;
        for want in &self.token_hashes {
            let diff = want
                .iter()
                .zip(got.iter())
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            any |= diff == 0;
        }
        any
    }
}

/// Marks requests on a connection that holds a health-probe slot.
#[derive(Debug, Clone, Copy)]
struct ProbeSlot;

/// The route label of requests no front claims.
pub const ROUTE_UNMATCHED: &str = "unmatched";

enum Target {
    Front(Arc<dyn Front>, &'static str),
    Unmatched,
}

impl Target {
    fn route(&self) -> &'static str {
        match self {
            Target::Front(_, r) => r,
            Target::Unmatched => ROUTE_UNMATCHED,
        }
    }

    /// A health probe: no authentication, never queued.
    fn is_probe(&self) -> bool {
        matches!(self, Target::Front(f, r) if f.is_probe(r))
    }

    /// Outside the concurrency limit.
    fn is_unlimited(&self) -> bool {
        matches!(self, Target::Front(f, r) if f.is_unlimited(r))
    }
}

fn request_id<B>(app: &App, req: &Request<B>) -> String {
    if let Some(v) = req.headers().get("x-request-id") {
        let b = v.as_bytes();
        let sane = !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'));
        if sane {
            if let Ok(s) = v.to_str() {
                return s.to_string();
            }
        }
    }
    let n = app.id_next.fetch_add(1, Ordering::Relaxed);
    // The prefix and the counter as 32 lowercase hex digits.
    let mut id = String::with_capacity(32);
    for v in [app.id_prefix, n] {
        for shift in (0..16).rev() {
            let nibble = (v >> (shift * 4)) & 0xf;
            id.push(char::from(b"0123456789abcdef"[nibble as usize]));
        }
    }
    id
}

/// Why a request got no concurrency slot.
enum NoSlot {
    /// The queue was full.
    QueueFull,
    /// It waited `server.queue_timeout` in the queue.
    Timeout,
}

/// A concurrency slot: at once if one is free, else after waiting in the
/// bounded queue (`server.queue_length`, `server.queue_timeout`).
async fn slot(app: &App) -> Result<OwnedSemaphorePermit, NoSlot> {
    if let Ok(p) = app.concurrency.clone().try_acquire_owned() {
        return Ok(p);
    }
    let limits = &app.config.server;
    // Take a place in the queue, or leave at once when it is full.
    let place = app
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < limits.queue_length).then_some(n + 1)
        });
    if place.is_err() {
        return Err(NoSlot::QueueFull);
    }
    struct Leave<'a>(&'a AtomicUsize);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _leave = Leave(&app.queued);
    let _waiting = app.metrics.queued();
    // The semaphore is fair (first come, first served) and never closed.
    match tokio::time::timeout(
        limits.queue_timeout,
        app.concurrency.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(_)) | Err(_) => Err(NoSlot::Timeout),
    }
}

/// Handles one request through every step listed at the top of this file.
async fn handle<B>(app: Arc<App>, req: Request<B>) -> Response<ResBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let start = Instant::now();
    let id = request_id(&app, &req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let limits = &app.config.server;

    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    let limit = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(RequestId(id.clone()));
    let mut req = Request::from_parts(parts, Limited::new(body, limit).boxed_unsync());

    let target = app
        .fronts
        .iter()
        .find_map(|f| f.claim(&mut req).map(|r| Target::Front(f.clone(), r)))
        .unwrap_or(Target::Unmatched);
    let route = target.route();

    let probe_slot = req.extensions().get::<ProbeSlot>().is_some();
    let probe = target.is_probe();
    let early: Option<(ApiError, &str)> = if probe_slot && !probe {
        // A connection admitted into a slot kept for health probes while
        // every other slot was taken: it carries one probe, nothing else.
        Some((
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "server has its maximum of {} connections open; this connection may carry only /healthz or /readyz; retry shortly",
                    limits.max_connections
                ),
            ),
            "connections",
        ))
    } else if !probe && !app.authorized(&req) {
        Some((
            ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
            "unauthorized",
        ))
    } else {
        match declared_len {
            Some(n) if n > limits.max_body_bytes => Some((
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body of {n} bytes is larger than the limit of {} bytes",
                        limits.max_body_bytes
                    ),
                ),
                "body_too_large",
            )),
            _ => None,
        }
    };
    let mut guard = None;
    let early = match early {
        Some(e) => Some(e),
        None if target.is_unlimited() => None,
        None => match slot(&app).await {
            Ok(p) => {
                guard = Some(p);
                None
            }
            Err(why) => {
                let (detail, reason) = match why {
                    NoSlot::QueueFull => (
                        format!(
                            "its queue of {} waiting requests is full",
                            limits.queue_length
                        ),
                        "queue_full",
                    ),
                    NoSlot::Timeout => (
                        format!(
                            "this request waited server.queue_timeout ({}) for one",
                            humantime::format_duration(limits.queue_timeout)
                        ),
                        "queue_timeout",
                    ),
                };
                Some((
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "server is handling its maximum of {} requests and {detail}; retry shortly",
                            limits.max_concurrency
                        ),
                    ),
                    reason,
                ))
            }
        },
    };

    // Requests that hold a concurrency permit are the ones "in flight".
    let in_flight = guard.as_ref().map(|_| app.metrics.in_flight());
    let mut res = match early {
        Some((err, reason)) => {
            app.metrics.rejected(reason);
            let mut res = err.into_response();
            if res.status() == StatusCode::UNAUTHORIZED {
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            } else if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                if probe_slot {
                    res.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            } else if res.status() == StatusCode::PAYLOAD_TOO_LARGE {
                res.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            res
        }
        None => {
            let fut = async move {
                match target {
                    Target::Front(f, r) => f.handle(r, req).await,
                    Target::Unmatched => unmatched(req).await,
                }
            };
            let guarded = AssertUnwindSafe(fut).catch_unwind();
            match tokio::time::timeout(limits.request_timeout, guarded).await {
                Ok(Ok(res)) => res,
                Ok(Err(panic)) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(request_id = %id, route, panic = %what, "handler panicked");
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                        .into_response()
                }
                Err(_) => {
                    app.metrics.rejected("timeout");
                    ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!(
                            "request did not complete within server.request_timeout ({})",
                            humantime::format_duration(limits.request_timeout)
                        ),
                    )
                    .into_response()
                }
            }
        }
    };

    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    app.metrics.request(route, status, elapsed);
    tracing::info!(
        request_id = %id,
        %method,
        path = %path,
        route,
        status,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    // The concurrency permit and the in-flight mark end with the response
    // head: they bound the expensive part (verification, upstream fetches).
    // Bodies stream (blobs from disk, one chunk at a time), so a client that
    // reads its body slowly then holds only a connection and a chunk
    // (bounded by server.max_connections and server.write_timeout), not a
    // request slot.
    drop(in_flight);
    drop(guard);
    res
}

/// No front claims the request: drain its body without keeping it
/// (bounded by the limits, so the connection can be reused), then answer a
/// JSON 404.
async fn unmatched(req: Request<ReqBody>) -> Response<ResBody> {
    let (parts, body) = req.into_parts();
    if let Err(e) = drain_body(body).await {
        return e.into_response();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", parts.method, parts.uri.path()),
    )
    .into_response()
}

/// A bound, not yet running server.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    /// Loads TLS material (if configured) and binds `server.listen`.
    pub async fn bind(app: App) -> anyhow::Result<Server> {
        let tls = match &app.config.server.tls {
            None => None,
            Some(t) => Some(tls_acceptor(&t.cert, &t.key).with_context(|| {
                format!(
                    "{}: server.tls: cannot load certificate or key",
                    app.config.origin
                )
            })?),
        };
        let addr = app.config.server.listen;
        // Again here: `serve --listen` may have changed the address.
        app.config
            .server
            .check_exposure()
            .map_err(|m| anyhow::anyhow!("{}: server.listen: {m}", app.config.origin))?;
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{}: server.listen: cannot listen on {addr}",
                app.config.origin
            )
        })?;
        Ok(Server {
            app: Arc::new(app),
            listener,
            tls,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// in-flight requests finish within `server.shutdown_grace`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server { app, listener, tls } = self;
        let limits = &app.config.server;
        let admission = Admission::new(
            limits.max_connections,
            limits.probe_connections,
            limits.max_connections_per_peer,
        );
        // Every connection task holds a clone of `alive`; `stop` tells them
        // the server is shutting down.
        let (stop, stopping) = watch::channel(false);
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let admitted = match admission.admit(peer.ip()) {
                Ok(a) => a,
                Err(refused) => {
                    // Closed at once: no slot is held for it.
                    app.metrics.connection_closed(refused.reason());
                    tracing::debug!(%peer, reason = refused.reason(), "connection refused");
                    drop(stream);
                    continue;
                }
            };
            let app = app.clone();
            let tls = tls.clone();
            let stopping = stopping.clone();
            let alive = alive.clone();
            tokio::spawn(async move {
                let _open = app.metrics.connection_open();
                let state = ConnState::new(admitted.probe_only);
                serve_connection(app, stream, peer, tls, state, stopping).await;
                drop(admitted);
                drop(alive);
            });
        }
        drop(listener);
        drop(alive);
        let grace = app.config.server.shutdown_grace;
        tracing::info!(
            grace = %humantime::format_duration(grace),
            "shutting down: no new connections; letting in-flight requests finish"
        );
        let _ = stop.send(true);
        tokio::select! {
            _ = all_closed.recv() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace expired; closing remaining connections"),
        }
        Ok(())
    }
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

async fn serve_connection(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<ConnState>,
    stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut stream = Watched::new(stream, state.clone());
    let deadline = app.config.server.header_read_timeout;
    match tls {
        Some(acceptor) => {
            let tls_stream = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
            serve_io(app, tls_stream, h2, state, stopping).await;
        }
        None => {
            // Tell HTTP/2 with prior knowledge from HTTP/1 by the preface,
            // within the header read timeout so that a client dribbling
            // bytes cannot hold the connection here.
            let mut buf = Vec::with_capacity(H2_PREFACE.len());
            let sniff = async {
                let mut chunk = [0u8; 24];
                while buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&buf) {
                    let want = H2_PREFACE.len() - buf.len();
                    let n = stream.read(&mut chunk[..want]).await?;
                    if n == 0 {
                        return Ok::<bool, io::Error>(false);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Ok(true)
            };
            match tokio::time::timeout(deadline, sniff).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(%peer, "client too slow to send a request head; closed");
                    return;
                }
            }
            let h2 = buf == H2_PREFACE;
            stream.put_back(Bytes::from(buf));
            serve_io(app, stream, h2, state, stopping).await;
        }
    }
}

/// Most bytes HTTP/2 buffers for one stream before it stops taking data
/// from the response body (the h2 default is 400 KiB).
const H2_SEND_BUFFER: usize = 64 * 1024;
/// Most streams open at once on one HTTP/2 connection (at most
/// `server.max_concurrency`): with [`H2_SEND_BUFFER`] and one read chunk
/// per stream, a connection whose client stops reading holds at most about
/// 13 MiB until `server.write_timeout` closes it.
const H2_MAX_STREAMS: usize = 100;

async fn serve_io<I>(
    app: Arc<App>,
    io: I,
    h2: bool,
    state: Arc<ConnState>,
    stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &app.config.server;
    state.set_h2(h2);
    let svc_app = app.clone();
    let svc_state = state.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let app = svc_app.clone();
        let state = svc_state.clone();
        async move {
            let stream = state.request();
            if state.probe_only {
                req.extensions_mut().insert(ProbeSlot);
            }
            let res = handle(app, req).await;
            Ok::<_, Infallible>(res.map(|body| state.track(body, stream)))
        }
    });
    let io = TokioIo::new(io);
    let timeouts = Timeouts {
        write: limits.write_timeout,
        idle: limits.idle_timeout,
        probe: limits.header_read_timeout,
    };
    let metrics = &app.metrics;
    let result = if h2 {
        let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(
                u32::try_from(limits.max_concurrency.min(H2_MAX_STREAMS))
                    .unwrap_or(H2_MAX_STREAMS as u32)
                    .max(1),
            )
            .max_send_buf_size(H2_SEND_BUFFER)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        let c = b.serve_connection(io, service);
        conn::drive(
            c,
            |c| c.graceful_shutdown(),
            &state,
            timeouts,
            stopping,
            metrics,
        )
        .await
    } else {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            // A probe-slot connection carries one request.
            .keep_alive(!state.probe_only);
        let c = b.serve_connection(io, service);
        conn::drive(
            c,
            |c| c.graceful_shutdown(),
            &state,
            timeouts,
            stopping,
            metrics,
        )
        .await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Installs the SIGTERM and SIGINT handlers at once and returns a future
/// that completes on the first of them.
///
/// Installing them before the socket is bound matters: a signal that
/// arrives once clients can reach the server must start a graceful
/// shutdown, never the default action (which kills the process).
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{full, read_body};
    use bytes::Bytes;
    use futures_util::future::BoxFuture;
    use http_body_util::Full;
    use std::path::Path;

    struct Misbehaving;

    impl Front for Misbehaving {
        fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
            match req.uri().path() {
                "/panic" => Some("test.panic"),
                "/hang" => Some("test.hang"),
                "/echo" => Some("test.echo"),
                _ => None,
            }
        }

        fn handle<'a>(
            &'a self,
            route: &'static str,
            req: Request<ReqBody>,
        ) -> BoxFuture<'a, Response<ResBody>> {
            Box::pin(async move {
                match route {
                    "test.panic" => panic!("front bug"),
                    "test.hang" => std::future::pending().await,
                    _ => match read_body(req.into_body()).await {
                        Ok(b) => Response::new(full(b)),
                        Err(e) => e.into_response(),
                    },
                }
            })
        }
    }

    fn app(extra: &str) -> (Arc<App>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\ndata_dir = {:?}\n{extra}\n",
            dir.path().join("data")
        );
        let config = Config::parse(&text, "t.toml", Path::new(".")).unwrap();
        let mut app = App::new(config).unwrap();
        let fronts: Vec<Arc<dyn Front>> = vec![Arc::new(Misbehaving)];
        app.add_front(Arc::new(crate::admin::Admin::new(
            app.metrics.clone(),
            app.data_dir().clone(),
            fronts.clone(),
        )));
        app.add_front(fronts[0].clone());
        (Arc::new(app), dir)
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path).body(Full::new(Bytes::new())).unwrap()
    }

    async fn json(res: Response<ResBody>) -> serde_json::Value {
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let b = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_front_answers_500_json_without_details() {
        let (app, _d) = app("");
        let res = handle(app.clone(), get("/panic")).await;
        assert_eq!(res.status(), 500);
        let j = json(res).await;
        assert_eq!(j["message"], "internal error");
        // The server keeps serving.
        assert_eq!(handle(app, get("/healthz")).await.status(), 200);
    }

    #[tokio::test]
    async fn a_front_that_never_answers_times_out_with_504() {
        let (app, _d) = app("request_timeout = \"50ms\"");
        let res = handle(app, get("/hang")).await;
        assert_eq!(res.status(), 504);
        assert!(json(res).await["message"]
            .as_str()
            .unwrap()
            .contains("request_timeout"));
    }

    #[tokio::test]
    async fn fronts_read_bodies_within_the_limit_only() {
        let (app, _d) = app("max_body_bytes = 4");
        let ok = Request::post("/echo")
            .body(Full::new(Bytes::from_static(b"abcd")))
            .unwrap();
        let res = handle(app.clone(), ok).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            &res.into_body().collect().await.unwrap().to_bytes()[..],
            b"abcd"
        );
        // No Content-Length in a Full body request built this way, so the
        // limit is enforced while reading.
        let big = Request::post("/echo")
            .body(Full::new(Bytes::from_static(b"abcde")))
            .unwrap();
        assert_eq!(handle(app, big).await.status(), 413);
    }

    #[tokio::test]
    async fn client_request_ids_are_echoed_only_when_sane() {
        let (app, _d) = app("");
        let req = Request::get("/healthz")
            .header("x-request-id", "trace-42")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(
            handle(app.clone(), req).await.headers()["x-request-id"],
            "trace-42"
        );
        let req = Request::get("/healthz")
            .header("x-request-id", "bad id with spaces")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = handle(app, req).await;
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn api_error_carries_upstream_check_expected_and_seen() {
        let e = ApiError::new(StatusCode::BAD_GATEWAY, "checkpoint refused")
            .upstream("golang")
            .check("consistency", "root abc at size 10", "root def at size 10");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], 502);
        assert_eq!(v["upstream"], "golang");
        assert_eq!(v["check"], "consistency");
        assert_eq!(v["expected"], "root abc at size 10");
        assert_eq!(v["seen"], "root def at size 10");
        let plain = serde_json::to_value(ApiError::new(StatusCode::NOT_FOUND, "x")).unwrap();
        assert_eq!(plain, serde_json::json!({"status": 404, "message": "x"}));
    }
}
