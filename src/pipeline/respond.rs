//! The one answer for stored, verified content: [`blob_response`] turns a
//! blob opened from the store into an HTTP response with the semantics of
//! immutable, content-addressed bytes. Called by every front that serves a
//! stored blob (Go `.mod`/`.zip`, Warg content, ...).
//!
//! - `ETag` is the quoted digest (`"sha256:<hex>"`): the bytes under it can
//!   never change. `If-None-Match` naming it (or `*`) is a 304 without a
//!   body.
//! - `HEAD` gets the headers of the `GET` answer and no body; nothing of
//!   the blob is read.
//! - `Range` (GET only, RFC 9110 §14): one `bytes=` range is a 206 with
//!   `Content-Range`, reading only that range; an unsatisfiable or
//!   malformed byte range is a 416 with `Content-Range: bytes */<len>`;
//!   several ranges, or a unit other than bytes, are answered with the
//!   whole blob (200), as RFC 9110 allows. `If-Range` that does not name
//!   this ETag also gets the whole blob.
//! - `Cache-Control: public, max-age=31536000, immutable` when the caller
//!   says its protocol allows it; `Accept-Ranges: bytes`; the caller's
//!   `Content-Type` and optional `Warning` (stale answers).

use std::fmt::Write as _;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::http::{full, stream_body, ResBody};
use crate::store::{Blob, Digest};

/// What the caller says about a blob it serves.
#[derive(Debug, Clone)]
pub struct BlobResponse {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Whether the protocol lets clients and caches keep the answer
    /// forever (`Cache-Control: immutable`).
    pub immutable: bool,
    /// A `Warning` header value (the last verified state, served while the
    /// upstream is away).
    pub warning: Option<String>,
}

/// The `Cache-Control` of immutable content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The response for `blob` (named `digest`) to a request with `method`
/// and `req_headers`; see the module documentation.
pub fn blob_response(
    req_headers: &HeaderMap,
    method: &Method,
    blob: Blob,
    digest: &Digest,
    opts: BlobResponse,
) -> Response<ResBody> {
    let mut etag = String::with_capacity(80);
    let _ = write!(etag, "\"{digest}\"");
    let len = blob.len();
    let mut res = Response::new(full(bytes::Bytes::new()));
    {
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        if opts.immutable {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        }
        if let Some(w) = opts.warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
            h.insert(header::WARNING, w);
        }
    }
    if let Some(inm) = req_headers.get(header::IF_NONE_MATCH) {
        if etag_matches(inm.as_bytes(), &etag) {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
    }
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(opts.content_type),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let range = if method == Method::GET {
        requested_range(req_headers, &etag, len)
    } else {
        Wanted::Whole
    };
    let (status, blob) = match range {
        Wanted::Whole => (StatusCode::OK, blob),
        Wanted::Part { start, end } => {
            let v = format!("bytes {start}-{end}/{len}");
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(header::CONTENT_RANGE, v);
            }
            (
                StatusCode::PARTIAL_CONTENT,
                blob.range(start, end - start + 1),
            )
        }
        Wanted::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.remove(header::CONTENT_TYPE);
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            return res;
        }
    };
    if method == Method::HEAD {
        // The length the GET answer would have; no byte is read.
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.len()));
        *res.status_mut() = status;
        return res;
    }
    *res.status_mut() = status;
    *res.body_mut() = match blob.in_memory() {
        Some(b) => full(b.clone()),
        None => stream_body(blob.len(), blob.into_stream()),
    };
    res
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, as RFC
/// 9110 §13.1.2 asks) or is `*`.
fn etag_matches(value: &[u8], etag: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Whole,
    /// Bytes `start..=end`, within the blob.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// What a GET's `Range` (and `If-Range`) ask of a blob of `len` bytes.
fn requested_range(headers: &HeaderMap, etag: &str, len: u64) -> Wanted {
    let Some(range) = headers.get(header::RANGE) else {
        return Wanted::Whole;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        // Only a strong match of our ETag keeps the range (a date never
        // matches: there is no Last-Modified).
        if if_range.as_bytes() != etag.as_bytes() {
            return Wanted::Whole;
        }
    }
    let Ok(range) = range.to_str() else {
        return Wanted::Unsatisfiable;
    };
    let Some((unit, spec)) = range.split_once('=') else {
        return Wanted::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Wanted::Whole;
    }
    if spec.contains(',') {
        return Wanted::Whole;
    }
    parse_byte_range(spec.trim(), len)
}

/// One `first-last`, `first-` or `-suffix` byte range against `len`.
fn parse_byte_range(spec: &str, len: u64) -> Wanted {
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::Unsatisfiable;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // The last `n` bytes.
        return match num(last) {
            Some(n) if n > 0 && len > 0 => Wanted::Part {
                start: len - n.min(len),
                end: len - 1,
            },
            _ => Wanted::Unsatisfiable,
        };
    }
    let Some(start) = num(first) else {
        return Wanted::Unsatisfiable;
    };
    let end = if last.is_empty() {
        len.saturating_sub(1)
    } else {
        match num(last) {
            Some(e) if e >= start => e.min(len.saturating_sub(1)),
            _ => return Wanted::Unsatisfiable,
        }
    };
    if start >= len {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt as _;

    const BODY: &[u8] = b"0123456789";

    fn answer(method: Method, headers: &[(&str, &str)]) -> Response<ResBody> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let blob = Blob::from_bytes(Bytes::from_static(BODY));
        blob_response(
            &h,
            &method,
            blob,
            &Digest::of(BODY),
            BlobResponse {
                content_type: "application/zip",
                immutable: true,
                warning: None,
            },
        )
    }

    async fn body(res: Response<ResBody>) -> Vec<u8> {
        res.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    fn etag() -> String {
        format!("\"{}\"", Digest::of(BODY))
    }

    #[tokio::test]
    async fn a_whole_blob_carries_its_digest_as_etag_and_immutable() {
        let res = answer(Method::GET, &[]);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::ETAG], etag().as_str());
        assert_eq!(res.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(res.headers()[header::ACCEPT_RANGES], "bytes");
        assert_eq!(body(res).await, BODY);
    }

    #[tokio::test]
    async fn if_none_match_naming_the_digest_is_304_without_a_body() {
        for inm in [etag(), format!("\"x\", W/{}", etag()), "*".to_string()] {
            let res = answer(Method::GET, &[("if-none-match", &inm)]);
            assert_eq!(res.status(), 304, "{inm}");
            assert_eq!(res.headers()[header::ETAG], etag().as_str());
            assert!(body(res).await.is_empty());
        }
        let res = answer(Method::GET, &[("if-none-match", "\"sha256:00\"")]);
        assert_eq!(res.status(), 200);
    }

    #[tokio::test]
    async fn ranges_are_served_as_206_or_refused_as_416() {
        let cases: &[(&str, u16, &[u8], Option<&str>)] = &[
            ("bytes=2-4", 206, b"234", Some("bytes 2-4/10")),
            ("bytes=7-", 206, b"789", Some("bytes 7-9/10")),
            ("bytes=-3", 206, b"789", Some("bytes 7-9/10")),
            ("bytes=-30", 206, BODY, Some("bytes 0-9/10")),
            ("bytes=8-100", 206, b"89", Some("bytes 8-9/10")),
            ("bytes=10-", 416, b"", Some("bytes */10")),
            ("bytes=5-2", 416, b"", Some("bytes */10")),
            ("bytes=x-2", 416, b"", Some("bytes */10")),
            ("bytes=-0", 416, b"", Some("bytes */10")),
            ("bytes=0-1,4-5", 200, BODY, None),
            ("lines=1-2", 200, BODY, None),
        ];
        for (range, status, want, cr) in cases {
            let res = answer(Method::GET, &[("range", range)]);
            assert_eq!(res.status(), *status, "{range}");
            assert_eq!(
                res.headers()
                    .get(header::CONTENT_RANGE)
                    .map(|v| v.to_str().unwrap()),
                *cr,
                "{range}"
            );
            assert_eq!(body(res).await, *want, "{range}");
        }
    }

    #[tokio::test]
    async fn if_range_not_naming_the_etag_gets_the_whole_blob() {
        let res = answer(
            Method::GET,
            &[("range", "bytes=0-1"), ("if-range", "\"sha256:00\"")],
        );
        assert_eq!(res.status(), 200);
        let tag = etag();
        let res = answer(Method::GET, &[("range", "bytes=0-1"), ("if-range", &tag)]);
        assert_eq!(res.status(), 206);
        assert_eq!(body(res).await, b"01");
    }

    #[tokio::test]
    async fn head_has_the_get_headers_and_no_body() {
        let res = answer(Method::HEAD, &[("range", "bytes=0-1")]);
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_LENGTH], "10");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/zip");
        assert!(body(res).await.is_empty());
    }
}
