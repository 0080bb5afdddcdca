//! The Warg front's answers: the response type, refusals rendered in
//! Warg's `{"status","message"}` shape, and bounded reading of client
//! request bodies.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::http::{full, read_body_within, ReqBody, ResBody};
use crate::pipeline::refusal::{Refusal, CHECK_DIGEST};
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

    /// With a `Warning` header, if there is one (what is served from what
    /// bulwark verified earlier while the upstream cannot confirm it).
    pub fn warning(self, warning: Option<String>) -> Answer {
        match warning {
            Some(w) => self.header("warning", w),
            None => self,
        }
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

/// What Warg calls a check in its messages (the digest a Warg release
/// names is its content digest).
fn check_words(check: &'static str) -> &'static str {
    match check {
        CHECK_DIGEST => "content digest",
        c => c,
    }
}

/// A refusal in Warg's `{"status","message"}` shape, its status kept. The
/// message names the upstream, the check, and what was expected and seen
/// (where the check has them and the text does not say them already).
pub(super) fn refusal(r: &Refusal) -> Answer {
    let prefix = format!("upstream {}: ", r.upstream);
    let detail = r.message.strip_prefix(&prefix).unwrap_or(&r.message);
    let mut text = if r.is_not_found() {
        format!("upstream `{}`: {detail}", r.upstream)
    } else {
        tracing::warn!(upstream = r.upstream, check = r.check, "warg: refused: {r}");
        format!(
            "bulwark refused upstream `{}`: {} check failed: {detail}",
            r.upstream,
            check_words(r.check)
        )
    };
    if let (Some(e), Some(s)) = (&r.expected, &r.seen) {
        if !(detail.contains(e.as_str()) && detail.contains(s.as_str())) {
            text.push_str(&format!(" (expected {e}; seen {s})"));
        }
    }
    Answer::message(r.status, text)
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

/// Stored content, streamed from the store.
pub(super) fn stored_octets(blob: crate::store::Blob, digest: crate::store::Digest) -> Answer {
    let mut a = octets(Bytes::new());
    a.blob = Some(Box::new((blob, digest)));
    a
}

/// The answer for a client body that could not be read: the body reader's
/// own status (413 over the limit), else 400.
pub(super) fn body_error(e: crate::http::ApiError) -> Answer {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(a: &Answer) -> String {
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["status"], a.status.as_u16());
        v["message"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_refusal_names_upstream_check_expected_and_seen_in_wargs_shape() {
        let r = Refusal::bad_answer("acme-up", "ledger", "upstream acme-up: leaves differ")
            .expected_seen("root A", "root B");
        let a = refusal(&r);
        assert_eq!(a.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            message(&a),
            "bulwark refused upstream `acme-up`: ledger check failed: leaves differ (expected root A; seen root B)"
        );
        let r = Refusal::bad_answer("acme-up", CHECK_DIGEST, "upstream acme-up: bytes differ");
        assert!(message(&refusal(&r)).contains("content digest check failed"));
    }

    #[test]
    fn an_upstream_error_status_is_kept() {
        let r = Refusal::from_upstream(&crate::upstream::UpstreamError::Status {
            upstream: "acme-up".into(),
            url: "http://x/v1/proof/consistency".into(),
            code: 500,
        });
        let a = refusal(&r);
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(message(&a).contains("acme-up"));
    }
}
