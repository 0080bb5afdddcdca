//! The Warg front's answers: the response type, every refusal, the one rule
//! for upstream statuses, and bounded reading of client request bodies.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::server::{full, read_body_within, ReqBody, ResBody};
use crate::upstream::{StatusClass, UpstreamError, UpstreamResponse};
use crate::verify::trust::TrustError;
use crate::warg::checks::CheckError;
use crate::warg::verify::WargVerifyError;
use crate::warg::wire;

/// A refusal or an answer: status, body, extra headers.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    /// Streamed content (a stored blob) sent instead of `body`.
    pub stream: Option<ResBody>,
    /// A stored blob and its digest, answered by
    /// [`crate::pipeline::respond::blob_response`] (ETag, 304, HEAD, Range).
    /// (Boxed: `Answer` is the error type of many functions.)
    pub blob: Option<Box<(crate::store::Blob, crate::store::Digest)>>,
}

impl Answer {
    pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            body: body.into(),
            headers: Vec::new(),
            content_type: wire::CONTENT_TYPE_JSON,
            stream: None,
            blob: None,
        }
    }

    /// Warg's `{"status","message"}` error shape.
    pub fn message(status: StatusCode, msg: impl AsRef<str>) -> Answer {
        Answer::json(status, wire::message_body(status.as_u16(), msg.as_ref()))
    }

    pub fn header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    /// The response to a request with these headers and method (they
    /// matter to a stored blob only).
    pub fn into_response_for(
        self,
        headers: &http::HeaderMap,
        method: &http::Method,
    ) -> Response<ResBody> {
        use crate::pipeline::respond::{blob_response, BlobResponse};
        let Some(stored) = self.blob else {
            return self.into_response();
        };
        let (blob, digest) = *stored;
        let opts = BlobResponse {
            content_type: self.content_type,
            immutable: true,
            warning: None,
        };
        let mut res = blob_response(headers, method, blob, &digest, opts);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
        res
    }

    pub fn into_response(self) -> Response<ResBody> {
        if self.blob.is_some() {
            return self.into_response_for(&http::HeaderMap::new(), &http::Method::GET);
        }
        let mut res = Response::new(self.stream.unwrap_or_else(|| full(self.body)));
        *res.status_mut() = self.status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(name, v);
            }
        }
        res
    }
}

/// 502: the upstream's answer failed a check.
pub(super) fn refuse(up: &str, e: impl std::fmt::Display) -> Answer {
    tracing::warn!(upstream = up, "warg: refused: {e}");
    Answer::message(
        StatusCode::BAD_GATEWAY,
        format!("bulwark refused the answer of upstream `{up}`: {e}"),
    )
}

pub(super) fn check_refusal(up: &str, e: &CheckError) -> Answer {
    refuse(up, format!("{} check failed: {e}", e.check()))
}

/// A short name of the `warg::verify` check that failed (an adapter: the
/// verifier's error has no such method).
fn verify_check(e: &WargVerifyError) -> &'static str {
    use WargVerifyError as E;
    match e {
        E::CheckpointKey { .. } => "operator-key",
        E::CheckpointSignature { .. } => "checkpoint-signature",
        E::NotCommitter { .. } => "commit-permission",
        E::TimestampRewind { .. } | E::Rewind { .. } => "rewind",
        E::ConsistencyLengths { .. } | E::ConsistencyRoot { .. } => "consistency",
        E::TooManyRecords { .. }
        | E::RecordOrder { .. }
        | E::FetchToken { .. }
        | E::RecordDecode { .. }
        | E::RecordInvalid { .. } => "log-validation",
        E::NothingToProve { .. }
        | E::ProofCount { .. }
        | E::ProofKind { .. }
        | E::ProofLength { .. }
        | E::IndexPastLog { .. }
        | E::ProofLeaf { .. }
        | E::ProofUnusable { .. }
        | E::MapPeers { .. }
        | E::RootMismatch { .. }
        | E::Bundle(_) => "inclusion",
        _ => "checkpoint",
    }
}

pub(super) fn verify_refusal(up: &str, e: &WargVerifyError) -> Answer {
    refuse(up, format!("{} check failed: {e}", verify_check(e)))
}

/// The trust state refused (or could not be read): 502 naming the check,
/// 503 when the state could not be read (never served on a read error).
pub(super) fn trust_refusal(up: &str, e: &TrustError) -> Answer {
    tracing::warn!(
        upstream = up,
        check = e.check(),
        "warg: trust state refused: {e}"
    );
    let status = match e {
        TrustError::Storage { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    Answer::message(
        status,
        format!(
            "bulwark refused upstream `{up}`: {} check failed: {e}",
            e.check()
        ),
    )
}

pub(super) fn upstream_failure(up: &str, e: &UpstreamError) -> Answer {
    Answer::message(
        StatusCode::BAD_GATEWAY,
        format!("upstream `{up}` failed: {e}"),
    )
}

/// Whether an upstream error means it did not answer (offline mode).
pub(super) fn unreachable(e: &UpstreamError) -> bool {
    !matches!(
        e,
        UpstreamError::Status { .. } | UpstreamError::TooLarge { .. }
    )
}

/// Most characters of an upstream's own error message quoted back.
const QUOTED_MESSAGE: usize = 200;

/// The one rule for upstream statuses on every Warg route: only `expected`
/// (200 on every read route) takes the verified path. An upstream 4xx/5xx
/// keeps its status with bulwark's own `{"status","message"}` body (the
/// upstream's `message`, if it sent one, quoted and cut short); any other
/// status (another 2xx, 1xx, 3xx) is a 502 refusal.
pub(super) fn expect_status(
    up: &str,
    what: &str,
    expected: StatusCode,
    resp: UpstreamResponse,
) -> Result<UpstreamResponse, Answer> {
    let s = resp.status;
    let quoted = upstream_message(&resp.body)
        .map(|m| format!(" (the upstream said: {m:?})"))
        .unwrap_or_default();
    status_rule(up, what, expected, s, &quoted).map(|()| resp)
}

/// [`expect_status`] on a status alone (a streamed answer), `quoted` being
/// what the upstream said, if anything.
pub(super) fn status_rule(
    up: &str,
    what: &str,
    expected: StatusCode,
    s: StatusCode,
    quoted: &str,
) -> Result<(), Answer> {
    match StatusClass::of(s, expected) {
        StatusClass::Success => return Ok(()),
        StatusClass::Failure(_) => {
            tracing::info!(
                upstream = up,
                status = s.as_u16(),
                "warg: {what} answered {s}"
            );
            return Err(Answer::message(
                s,
                format!("upstream `{up}` answered {s} to {what}{quoted}"),
            ));
        }
        StatusClass::Unexpected(_) => {}
    }
    Err(refuse(
        up,
        format!("status check failed: {what} answered {s}, expected {expected}"),
    ))
}

/// [`expect_status`] with 200.
pub(super) fn expect_ok(
    up: &str,
    what: &str,
    resp: UpstreamResponse,
) -> Result<UpstreamResponse, Answer> {
    expect_status(up, what, StatusCode::OK, resp)
}

/// The printable `message` of an upstream's `{"status","message"}` body,
/// cut to [`QUOTED_MESSAGE`] characters.
fn upstream_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        message: String,
    }
    let m: M = wire::decode_json("upstream error", body, 64 * 1024).ok()?;
    let text: String = m
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(QUOTED_MESSAGE)
        .collect();
    (!text.is_empty()).then_some(text)
}

pub(super) fn octets(bytes: Bytes) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: bytes,
        headers: Vec::new(),
        content_type: "application/octet-stream",
        stream: None,
        blob: None,
    }
}

/// Stored content (immutable: named by its digest), streamed from the
/// store.
pub(super) fn stored_octets(blob: crate::store::Blob, digest: crate::store::Digest) -> Answer {
    let mut a = octets(Bytes::new());
    a.blob = Some(Box::new((blob, digest)));
    a
}

pub(super) fn poisoned() -> Answer {
    Answer::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal state lock poisoned",
    )
}

pub(super) fn task_failed(e: impl std::fmt::Display) -> Answer {
    Answer::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal task failed: {e}"),
    )
}

/// The answer for a client body that could not be read: the body reader's
/// own status (413 over the limit), else 400.
pub(super) fn body_error(e: crate::server::ApiError) -> Answer {
    Answer::message(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.message,
    )
}

/// Reads a client's JSON request body (at most `limit` bytes, checked
/// against the declared length before reading and while reading: see
/// `server::read_body_within`) and decodes it: 400 for a body that is not
/// the expected JSON. Returns the raw body too (it is forwarded).
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    req: http::Request<ReqBody>,
    what: &'static str,
    limit: usize,
) -> Result<(Bytes, T), Answer> {
    let body = read_body_within(req.into_body(), limit)
        .await
        .map_err(body_error)?;
    let value = wire::decode_json(what, &body, limit)
        .map_err(|e| Answer::message(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((body, value))
}
