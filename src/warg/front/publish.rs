//! Publishing (`POST /v1/package/{logId}/record`, content uploads) and
//! record lookups. bulwark's upstream `token` is a read credential: it is
//! never attached to a client's write. With `publish = "forward"` a write
//! goes to the upstream owning the namespace through a client without that
//! token, carrying the client's own `Authorization` header; with
//! `publish = "off"` (the default) it is refused with 403 before its body
//! is read.

use http::{header, HeaderValue, Request, StatusCode};

use super::answer::{body_error, expect_ok, expect_status, refuse, upstream_failure, Answer};
use super::{Upstream, WargFront};
use crate::server::{drain_body, read_body, read_body_within, ReqBody};
use crate::upstream::UpstreamRequest;
use crate::warg::config::WargPublish;
use crate::warg::wire::{self, LogId, PackageRecord, PublishRecordRequest};

/// Largest publish request read from a client (one signed record).
pub(super) const MAX_PUBLISH_REQUEST: usize = 1024 * 1024;
/// Largest record-state answer read from an upstream.
const MAX_RECORD_ANSWER: usize = 1024 * 1024;

impl WargFront {
    /// `POST /v1/package/{logId}/record`.
    pub(super) async fn publish(
        &self,
        up: Option<std::sync::Arc<Upstream>>,
        log_id: &LogId,
        req: Request<ReqBody>,
    ) -> Answer {
        // One signed record: bounded while it is read. The upstream is the
        // header's, else the owner of the body's package name, else the
        // log's known owner.
        let (parts, body) = req.into_parts();
        let body = match read_body_within(body, MAX_PUBLISH_REQUEST).await {
            Ok(b) => b,
            Err(e) => return body_error(e),
        };
        let up = match up {
            Some(u) => u,
            None => {
                let name = wire::decode_json::<PublishRecordRequest>(
                    "publish request",
                    &body,
                    MAX_PUBLISH_REQUEST,
                )
                .ok()
                .map(|r| r.package_name.into_owned());
                match name {
                    Some(n) if &wire::package_log_id(&n) == log_id => {
                        self.learn([(log_id.clone(), n.clone())]);
                        match self.owner(n.namespace()) {
                            Some(u) => u.clone(),
                            None => {
                                return Answer::message(
                                    StatusCode::NOT_FOUND,
                                    "no upstream owns this namespace",
                                )
                            }
                        }
                    }
                    _ => match self.route_log(log_id).await {
                        Ok(u) => u,
                        Err(a) => return a,
                    },
                }
            }
        };
        if let Err(a) = self.admit(&up).await {
            return a;
        }
        let Some(writer) = writer(&up) else {
            return publish_off(&up.name);
        };
        let path = parts.uri.path().to_string();
        let request = with_client_auth(
            UpstreamRequest::post(
                path,
                HeaderValue::from_static(wire::CONTENT_TYPE_JSON),
                body,
            )
            .max_response_bytes(MAX_RECORD_ANSWER as u64),
            &parts.headers,
        );
        let resp = match writer.send(request).await {
            Ok(r) => r,
            Err(e) => return upstream_failure(&up.name, &e),
        };
        match expect_status(&up.name, "the publish", StatusCode::ACCEPTED, resp) {
            Ok(r) => record_answer(&up.name, StatusCode::ACCEPTED, &r.body),
            Err(a) => a,
        }
    }

    /// `POST …/record/{recordId}/content/{digest}`: the content bytes of a
    /// record being published (the server's body limit bounds them).
    pub(super) async fn upload(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        if let Err(a) = self.admit(up).await {
            return a;
        }
        // Refused before the body is read.
        let Some(writer) = writer(up) else {
            return publish_off(&up.name);
        };
        // One buffered upload at a time (see `WargFront::uploads`); held
        // until the upstream has the bytes.
        let Ok(_permit) = self.uploads.acquire().await else {
            return Answer::message(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        };
        let (parts, body) = req.into_parts();
        let body = match read_body(body).await {
            Ok(b) => b,
            Err(e) => return body_error(e),
        };
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let request = with_client_auth(
            UpstreamRequest::post(parts.uri.path().to_string(), ct, body)
                .max_response_bytes(MAX_RECORD_ANSWER as u64),
            &parts.headers,
        );
        let resp = match writer.send(request).await {
            Ok(r) => r,
            Err(e) => return upstream_failure(&up.name, &e),
        };
        match expect_status(&up.name, "the content upload", StatusCode::CREATED, resp) {
            Ok(_) => Answer::json(StatusCode::CREATED, bytes::Bytes::new()),
            Err(a) => a,
        }
    }

    /// `GET /v1/package/{logId}/record/{recordId}`: the record's publishing
    /// state (a read: bulwark's read client), decoded and re-encoded.
    pub(super) async fn record(&self, up: &Upstream, req: Request<ReqBody>) -> Answer {
        if let Err(a) = self.admit(up).await {
            return a;
        }
        let (parts, body) = req.into_parts();
        // A GET's body is not forwarded: drained, never buffered.
        if let Err(e) = drain_body(body).await {
            return body_error(e);
        }
        let request = UpstreamRequest::get(parts.uri.path().to_string())
            .max_response_bytes(MAX_RECORD_ANSWER as u64);
        let resp = match up.client.send(request).await {
            Ok(r) => r,
            Err(e) => return upstream_failure(&up.name, &e),
        };
        match expect_ok(&up.name, "the record lookup", resp) {
            Ok(r) => record_answer(&up.name, StatusCode::OK, &r.body),
            Err(a) => a,
        }
    }
}

/// The write client of an upstream (`publish = "forward"`), else `None`.
fn writer(up: &Upstream) -> Option<&crate::upstream::UpstreamClient> {
    match up.publish {
        WargPublish::Forward => up.writer.as_ref(),
        WargPublish::Off => None,
    }
}

fn publish_off(up: &str) -> Answer {
    Answer::message(
        StatusCode::FORBIDDEN,
        format!(
            "publishing through bulwark to upstream `{up}` is off (publish = \"off\"); \
             publish to the registry directly, or ask the operator to set publish = \"forward\""
        ),
    )
}

/// The client's own `Authorization` header, if it sent one (the write
/// client has no token of its own to put in its place).
fn with_client_auth(request: UpstreamRequest, headers: &http::HeaderMap) -> UpstreamRequest {
    match headers.get(header::AUTHORIZATION) {
        Some(v) => request.header(header::AUTHORIZATION, v.clone()),
        None => request,
    }
}

/// A record-state answer, decoded and re-encoded (never the upstream's
/// bytes verbatim).
fn record_answer(up: &str, status: StatusCode, body: &[u8]) -> Answer {
    match wire::decode_json::<PackageRecord>("record state", body, MAX_RECORD_ANSWER) {
        Ok(r) => Answer::json(status, wire::encode_json(&r)),
        Err(e) => refuse(up, e),
    }
}
