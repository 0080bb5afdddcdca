//! Connection-level limits: which connections are admitted, and how long a
//! connection may go on without progress. Used by `server.rs` for every
//! accepted socket, plain or TLS, HTTP/1.1 or HTTP/2.
//!
//! Admission ([`Admission::admit`]), at accept time:
//!
//! - at most `server.max_connections_per_peer` connections per client IP
//!   address (one client cannot take every slot);
//! - `server.max_connections` general slots;
//! - when those are full, `server.probe_connections` more slots kept for
//!   health probes. A connection in a probe slot carries exactly one
//!   request, which must be `/healthz` or `/readyz` (anything else is a
//!   503), is closed after its answer, and lives at most
//!   `server.header_read_timeout`: it can neither serve other routes nor be
//!   held open by calling `/healthz` on it again and again;
//! - anything else is closed at once.
//!
//! Progress ([`ConnState`], watched by [`drive`]):
//!
//! - **write timeout**: a connection is closed when the client takes no
//!   response bytes for `server.write_timeout` while a response is waiting
//!   on it: a socket write pending that long, or a response body in
//!   progress of which nothing was sent that long (HTTP/1.1: no byte
//!   written to the socket; HTTP/2: no data taken from the body, which is
//!   how a client that withholds flow-control credit shows, even while it
//!   answers PINGs). A slow client that keeps taking bytes is never cut off.
//!   Response bodies therefore must not wait long on anything but the
//!   client (today they are in memory or read from local disk).
//! - **HTTP/2 idle timeout**: an HTTP/2 connection with no open stream for
//!   `server.idle_timeout` gets GOAWAY and is closed (PINGs do not count).
//!   Idle HTTP/1.1 connections are closed by hyper after
//!   `server.header_read_timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::http::{BoxError, ResBody};
use crate::metrics::Metrics;

/// Which connections are let in.
pub(super) struct Admission {
    general: Arc<Semaphore>,
    probes: Arc<Semaphore>,
    per_peer: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_peer: usize,
}

/// An admitted connection's slots, released when dropped.
pub(super) struct Admitted {
    _slot: OwnedSemaphorePermit,
    _peer: PeerSlot,
    /// Whether it holds a slot kept for health probes.
    pub probe_only: bool,
}

/// Why a connection was not admitted (the metrics label).
pub(super) enum Refused {
    PeerLimit,
    Full,
}

impl Refused {
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Refused::PeerLimit => "peer_limit",
            Refused::Full => "full",
        }
    }
}

struct PeerSlot {
    ip: IpAddr,
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub(super) fn new(
        max_connections: usize,
        probe_connections: usize,
        max_per_peer: usize,
    ) -> Self {
        Admission {
            general: Arc::new(Semaphore::new(max_connections)),
            probes: Arc::new(Semaphore::new(probe_connections)),
            per_peer: Arc::new(Mutex::new(HashMap::new())),
            max_per_peer,
        }
    }

    /// Admits a connection from `ip`, or says why not.
    pub(super) fn admit(&self, ip: IpAddr) -> Result<Admitted, Refused> {
        // IPv4 clients reaching an IPv6 socket count as their IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let peer = {
            let mut m = self.per_peer.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= self.max_per_peer {
                return Err(Refused::PeerLimit);
            }
            *n += 1;
            PeerSlot {
                ip,
                map: self.per_peer.clone(),
            }
        };
        if let Ok(slot) = self.general.clone().try_acquire_owned() {
            return Ok(Admitted {
                _slot: slot,
                _peer: peer,
                probe_only: false,
            });
        }
        match self.probes.clone().try_acquire_owned() {
            Ok(slot) => Ok(Admitted {
                _slot: slot,
                _peer: peer,
                probe_only: true,
            }),
            Err(_) => Err(Refused::Full),
        }
    }
}

/// The progress of one connection, shared by its socket wrapper
/// ([`Watched`]), its response bodies ([`ConnState::track`]) and its
/// watchdog ([`drive`]). Times are milliseconds since the connection began.
pub(crate) struct ConnState {
    start: Instant,
    /// Whether the connection speaks HTTP/2 (set once known).
    h2: AtomicBool,
    /// Whether it holds a probe slot (one probe request, then closed).
    pub(crate) probe_only: bool,
    /// Requests in progress: from their head to the end of their response.
    streams: AtomicUsize,
    /// Requests seen.
    requests: AtomicU64,
    /// Response bodies in progress.
    bodies: AtomicUsize,
    /// The last time response bytes went out (see the module docs).
    progress: AtomicU64,
    /// 1 + the time a socket write started waiting; 0 when none waits.
    pending_since: AtomicU64,
    /// The time the last stream ended (or the connection began).
    idle_since: AtomicU64,
}

impl ConnState {
    pub(super) fn new(probe_only: bool) -> Arc<ConnState> {
        Arc::new(ConnState {
            start: Instant::now(),
            h2: AtomicBool::new(false),
            probe_only,
            streams: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            bodies: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
            pending_since: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.progress.store(self.now(), Ordering::Relaxed);
    }

    pub(super) fn set_h2(&self, h2: bool) {
        self.h2.store(h2, Ordering::Relaxed);
    }

    /// Marks a request as started; it lasts until the guard (moved into
    /// its response body by [`ConnState::track`]) is dropped.
    pub(super) fn request(self: &Arc<Self>) -> StreamGuard {
        self.streams.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }

    /// Wraps a response body so that the connection knows it is in
    /// progress and when data is taken from it; `stream` ends with it.
    pub(super) fn track(self: &Arc<Self>, body: ResBody, stream: StreamGuard) -> ResBody {
        self.bodies.fetch_add(1, Ordering::AcqRel);
        self.touch();
        http_body_util::BodyExt::boxed_unsync(Tracked {
            inner: body,
            state: self.clone(),
            done: false,
            _stream: stream,
        })
    }
}

/// A request in progress on a connection.
pub(super) struct StreamGuard(Arc<ConnState>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let s = &self.0;
        if s.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.idle_since.store(s.now(), Ordering::Relaxed);
        }
    }
}

struct Tracked {
    inner: ResBody,
    state: Arc<ConnState>,
    done: bool,
    _stream: StreamGuard,
}

impl Tracked {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.state.bodies.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => self.state.touch(),
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The client socket, watched: records when writes make progress and when
/// one starts waiting on the client. Bytes read ahead (to tell HTTP/2 from
/// HTTP/1.1) can be put back in front of what it reads next.
pub(super) struct Watched<I> {
    inner: I,
    state: Arc<ConnState>,
    prefix: Bytes,
}

impl<I> Watched<I> {
    pub(super) fn new(inner: I, state: Arc<ConnState>) -> Self {
        Watched {
            inner,
            state,
            prefix: Bytes::new(),
        }
    }

    /// Has the next reads return `bytes` first.
    pub(super) fn put_back(&mut self, bytes: Bytes) {
        self.prefix = bytes;
    }

    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        let s = &self.state;
        match r {
            Poll::Ready(Ok(n)) if *n > 0 => {
                s.pending_since.store(0, Ordering::Relaxed);
                // On HTTP/2 the socket also carries PING answers and
                // other control frames: progress there is data taken
                // from a body (see Tracked).
                if !s.h2.load(Ordering::Relaxed) {
                    s.touch();
                }
            }
            Poll::Pending => {
                let now = s.now().saturating_add(1);
                let _ =
                    s.pending_since
                        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The connection timeouts [`drive`] enforces.
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    pub write: Duration,
    pub idle: Duration,
    /// The whole life of a probe-slot connection.
    pub probe: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs a hyper connection until it ends, the server shuts down
/// (`shutdown` turns true: graceful shutdown), or a limit of the module
/// documentation closes it. `graceful` starts the connection's own
/// graceful shutdown (GOAWAY on HTTP/2).
pub(super) async fn drive<C, E>(
    conn: C,
    mut graceful: impl FnMut(Pin<&mut C>),
    state: &ConnState,
    timeouts: Timeouts,
    mut shutdown: watch::Receiver<bool>,
    metrics: &Metrics,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    let tick = (timeouts.write.min(timeouts.idle).min(timeouts.probe) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (write, idle, probe) = (ms(timeouts.write), ms(timeouts.idle), ms(timeouts.probe));
    // When a graceful close was started and how long it may take.
    let mut closing: Option<u64> = None;
    let mut server_closing = *shutdown.borrow();
    if server_closing {
        graceful(conn.as_mut());
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            changed = shutdown.changed(), if !server_closing => {
                // The sender gone means the server is gone: close too.
                if changed.is_err() || *shutdown.borrow() {
                    server_closing = true;
                    graceful(conn.as_mut());
                }
            }
            _ = ticker.tick() => {
                let now = state.now();
                let pending = state.pending_since.load(Ordering::Relaxed);
                let stalled_write = pending != 0 && now.saturating_sub(pending - 1) > write;
                let stalled_body = state.bodies.load(Ordering::Acquire) > 0
                    && now.saturating_sub(state.progress.load(Ordering::Relaxed)) > write;
                if stalled_write || stalled_body {
                    metrics.connection_closed("write_timeout");
                    tracing::debug!("client took no response bytes within server.write_timeout; closed");
                    return Ok(());
                }
                if state.probe_only && now > probe {
                    metrics.connection_closed("probe_only");
                    return Ok(());
                }
                if let Some(since) = closing {
                    // A peer that will not finish a graceful close (it
                    // keeps a stream open without reading, say) is cut
                    // off once the write timeout has passed as well.
                    if now.saturating_sub(since) > write {
                        return Ok(());
                    }
                    continue;
                }
                let h2 = state.h2.load(Ordering::Relaxed);
                let idle_for = now.saturating_sub(state.idle_since.load(Ordering::Relaxed));
                let no_streams = state.streams.load(Ordering::Acquire) == 0;
                if h2 && no_streams && idle_for > idle {
                    metrics.connection_closed("idle_timeout");
                    closing = Some(now);
                    graceful(conn.as_mut());
                } else if state.probe_only && h2 && state.requests.load(Ordering::Acquire) > 0 {
                    // One probe per probe-slot connection.
                    closing = Some(now);
                    graceful(conn.as_mut());
                }
            }
        }
    }
}
