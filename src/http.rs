//! The HTTP primitives every front and the server share: the body types,
//! the JSON error body ([`ApiError`]), bounded request-body readers, the
//! streamed response body, and the [`Front`] trait a protocol front (and the
//! admin routes) implements.
//!
//! A layer below both `server.rs` (which runs fronts) and the fronts
//! (which answer requests): it imports neither.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Frame, SizeHint};
use serde::Serialize;

/// Errors carried by bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body as fronts see it: streaming, already bounded by
/// `server.max_body_bytes` (reading past it fails; see [`read_body`]).
pub type ReqBody = UnsyncBoxBody<Bytes, BoxError>;
/// A response body.
pub type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// The request id, in the request's extensions for fronts to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A protocol front (Warg, Go modules, ...): claims requests by route and
/// answers them. Fronts call only the layers below them (federation, verify,
/// store, upstream), never sockets.
pub trait Front: Send + Sync + 'static {
    /// The route label (a static name such as `"warg.fetch_logs"`, used in
    /// metrics and logs) if this front answers `req`, else `None`.
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str>;

    /// [`Front::route`] for a request that is handed to [`Front::handle`]
    /// when claimed (the server routes with this): a front may leave what
    /// it parsed to decide in the request's extensions, for `handle` to
    /// take instead of parsing the request again. `handle` must still
    /// answer a request routed with `route` alone.
    fn claim(&self, req: &mut Request<ReqBody>) -> Option<&'static str> {
        self.route(req)
    }

    /// Answers a request this front claimed under `route`. Errors are
    /// responses too (see [`ApiError`]); a panic becomes a 500.
    fn handle<'a>(
        &'a self,
        route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>>;

    /// Whether the front can serve (e.g. its trust state is open); `/readyz`
    /// reports the first `Err`.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether `route` is a health probe: answered without authentication,
    /// never queued, and the only route a connection in a slot kept for
    /// probes may carry.
    fn is_probe(&self, _route: &'static str) -> bool {
        false
    }

    /// Whether `route` is outside the request concurrency limit (probes
    /// and metrics scrapes, which must answer when the server is busy).
    fn is_unlimited(&self, route: &'static str) -> bool {
        self.is_probe(route)
    }
}

/// A JSON error body: `{"status","message"}` plus, where relevant, which
/// upstream, which check, and what was expected and seen.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// What went wrong, in a sentence.
    pub message: String,
    /// The upstream involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The verification check that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// What the check expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What it saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status.as_u16(),
            message: message.into(),
            upstream: None,
            check: None,
            expected: None,
            seen: None,
        }
    }

    /// Names the upstream.
    pub fn upstream(mut self, name: impl Into<String>) -> ApiError {
        self.upstream = Some(name.into());
        self
    }

    /// Names the failed check with what it expected and what it saw.
    pub fn check(
        mut self,
        check: impl Into<String>,
        expected: impl Into<String>,
        seen: impl Into<String>,
    ) -> ApiError {
        // A check with no values to compare (an unreachable upstream, say)
        // leaves the fields out rather than sending empty strings.
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        self.check = Some(check.into());
        self.expected = nonempty(expected.into());
        self.seen = nonempty(seen.into());
        self
    }

    /// The response carrying this error.
    pub fn into_response(self) -> Response<ResBody> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, &self)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with `value` as JSON and `content-type: application/json`.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<ResBody> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"status":500,"message":"response could not be encoded"}"#.to_vec()
    });
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Reads a whole request body (bounded by `server.max_body_bytes`); a body
/// over the limit is a 413 [`ApiError`], a broken one a 400. Routes with a
/// smaller limit of their own use [`read_body_within`].
pub async fn read_body(body: ReqBody) -> Result<Bytes, ApiError> {
    read_body_within(body, usize::MAX).await
}

/// Reads a whole request body of at most `limit` bytes (and at most
/// `server.max_body_bytes`), checking the limit against the declared length
/// before reading and against the bytes while reading: never more than
/// `limit` bytes are held. Over a limit: 413; a broken body: 400.
pub async fn read_body_within(mut body: ReqBody, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = |seen: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body of {seen} bytes is larger than this route's limit of {limit} bytes"
            ),
        )
    };
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return Err(too_large(declared.to_string()));
    }
    // What the client declared (already within the limit) is allocated
    // once, so a large body is never copied while it grows.
    let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_read_error)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit.saturating_sub(buf.len()) {
                return Err(too_large(format!("at least {}", buf.len() + data.len())));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads a request body to its end and throws it away, holding one frame
/// at a time (bounded by `server.max_body_bytes`, so a keep-alive
/// connection can carry the next request). Over the limit: 413.
pub async fn drain_body(mut body: ReqBody) -> Result<(), ApiError> {
    while let Some(frame) = body.frame().await {
        frame.map_err(body_read_error)?;
    }
    Ok(())
}

fn body_read_error(e: BoxError) -> ApiError {
    if e.is::<http_body_util::LengthLimitError>() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than server.max_body_bytes",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {e}"),
        )
    }
}

/// A response body of exactly `len` bytes taken from `stream` chunk by
/// chunk as the client reads (`Content-Length: len`): memory stays at one
/// chunk whatever `len` is. A stream that fails, or yields more or fewer
/// than `len` bytes, aborts the response (the client never sees a short
/// body as complete).
pub fn stream_body(len: u64, stream: BoxStream<'static, Result<Bytes, io::Error>>) -> ResBody {
    StreamBody { stream, left: len }.boxed_unsync()
}

struct StreamBody {
    stream: BoxStream<'static, Result<Bytes, io::Error>>,
    left: u64,
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match futures_util::ready!(self.stream.as_mut().poll_next_unpin(cx)) {
            Some(Ok(chunk)) => {
                let n = chunk.len() as u64;
                if n > self.left {
                    return Poll::Ready(Some(Err("response body longer than its length".into())));
                }
                self.left -= n;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(Some(Err(format!(
                "response body ended {} bytes before its length",
                self.left
            )
            .into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Longest host name echoed into a URL bulwark writes for its clients.
const MAX_AUTHORITY: usize = 255;

/// The authority a client reached bulwark by: the request URI's (HTTP/2
/// `:authority`, or an absolute-form HTTP/1.1 target), else the `Host`
/// header; only a plain `host[:port]` is echoed into a URL.
pub fn client_authority(req: &Request<ReqBody>) -> Option<String> {
    let text = match req.uri().authority() {
        Some(a) => a.as_str().to_string(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_string(),
    };
    sane_authority(&text).then_some(text)
}

fn sane_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_AUTHORITY
        && !host.starts_with(['.', '-', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        && host.parse::<http::uri::Authority>().is_ok()
}

#[cfg(test)]
mod authority_tests {
    use super::*;

    fn req(uri: &str, host: Option<&str>) -> Request<ReqBody> {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        b.body(full(bytes::Bytes::new())).unwrap()
    }

    #[test]
    fn content_urls_use_the_uri_authority_then_host_and_only_sane_ones() {
        // HTTP/2: the URI carries the authority, no Host header.
        assert_eq!(
            client_authority(&req("http://mirror.example:8443/v1/content/x", None)).as_deref(),
            Some("mirror.example:8443")
        );
        // HTTP/1.1 origin form: the Host header.
        assert_eq!(
            client_authority(&req("/v1/content/x", Some("127.0.0.1:9000"))).as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(client_authority(&req("/v1/content/x", None)), None);
        for bad in [
            "evil.example/x",
            "a b",
            "user@host",
            "",
            "-x",
            "host:port:1",
        ] {
            assert_eq!(
                client_authority(&req("/v1/content/x", Some(bad))),
                None,
                "{bad:?}"
            );
        }
    }
}
