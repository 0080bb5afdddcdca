//! Publishing routes (`POST /v1/package/{logId}/record`, content uploads)
//! and record lookups: which upstream a write is for, and bounded reading
//! of the client's body. A write to an upstream whose `publish` is `"off"`
//! (the default) is refused with 403 before its body is read (uploads) or
//! sent anywhere; the ecosystem forwards the rest with the client's own
//! credential (`warg::publish`).

use http::{header, HeaderValue, Request, StatusCode};

use super::answer::{body_error, refusal, Answer};
use super::WargFront;
use crate::http::{drain_body, read_body, read_body_within, ReqBody};
use crate::warg::publish::publish_off;
use crate::warg::registry::Registry;
use crate::warg::wire::{self, LogId, PackageRecord, PublishRecordRequest};

/// Largest publish request read from a client (one signed record).
const MAX_PUBLISH_REQUEST: usize = 1024 * 1024;

impl WargFront {
    /// `POST /v1/package/{logId}/record`.
    pub(super) async fn publish(
        &self,
        up: Option<std::sync::Arc<Registry>>,
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
                        self.warg.learn([(log_id.clone(), n.clone())]);
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
        if !up.publishes() {
            return refusal(&publish_off(&up.name));
        }
        let path = parts.uri.path().to_string();
        let auth = parts.headers.get(header::AUTHORIZATION).cloned();
        match self.warg.publish_record(&up, path, body, auth).await {
            Ok(r) => record_answer(StatusCode::ACCEPTED, &r),
            Err(r) => refusal(&r),
        }
    }

    /// `POST …/record/{recordId}/content/{digest}`: the content bytes of a
    /// record being published (the server's body limit bounds them).
    pub(super) async fn upload(&self, up: &Registry, req: Request<ReqBody>) -> Answer {
        if let Err(a) = self.admit(up).await {
            return a;
        }
        // Refused before the body is read.
        if !up.publishes() {
            return refusal(&publish_off(&up.name));
        }
        // One buffered upload at a time; held until the upstream has the
        // bytes.
        let Some(_slot) = self.warg.upload_slot().await else {
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
        let auth = parts.headers.get(header::AUTHORIZATION).cloned();
        let path = parts.uri.path().to_string();
        match self.warg.upload_content(up, path, ct, body, auth).await {
            Ok(()) => Answer::json(StatusCode::CREATED, bytes::Bytes::new()),
            Err(r) => refusal(&r),
        }
    }

    /// `GET /v1/package/{logId}/record/{recordId}`: the record's
    /// publishing state, re-encoded.
    pub(super) async fn record(&self, up: &Registry, req: Request<ReqBody>) -> Answer {
        if let Err(a) = self.admit(up).await {
            return a;
        }
        let (parts, body) = req.into_parts();
        // A GET's body is not forwarded: drained, never buffered.
        if let Err(e) = drain_body(body).await {
            return body_error(e);
        }
        match self
            .warg
            .record_state(up, parts.uri.path().to_string())
            .await
        {
            Ok(r) => record_answer(StatusCode::OK, &r),
            Err(r) => refusal(&r),
        }
    }
}

/// A record-state answer in bulwark's own bytes.
fn record_answer(status: StatusCode, r: &PackageRecord) -> Answer {
    Answer::json(status, wire::encode_json(r))
}
