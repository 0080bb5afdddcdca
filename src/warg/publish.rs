//! Client writes and record lookups, forwarded. bulwark's upstream `token`
//! is a read credential: it is never attached to a client's write. With
//! `publish = "forward"` a write goes through a client without that token,
//! carrying the client's own `Authorization` header; with `publish =
//! "off"` (the default) the front refuses it before its body is read.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};

use crate::pipeline::refusal::Refusal;
use crate::upstream::{UpstreamClient, UpstreamRequest};
use crate::warg::refuse::{expect_status, malformed};
use crate::warg::registry::{Registries, Registry};
use crate::warg::wire::{self, PackageRecord};

/// Largest record-state answer read from an upstream.
const MAX_RECORD_ANSWER: usize = 1024 * 1024;

/// The refusal of a write to an upstream whose `publish` is `"off"`.
pub fn publish_off(up: &str) -> Refusal {
    Refusal::new(
        up,
        "publish",
        StatusCode::FORBIDDEN,
        format!(
            "publishing through bulwark to upstream `{up}` is off (publish = \"off\"); \
             publish to the registry directly, or ask the operator to set publish = \"forward\""
        ),
    )
}

fn writer(reg: &Registry) -> Result<&UpstreamClient, Refusal> {
    reg.writer.as_ref().ok_or_else(|| publish_off(&reg.name))
}

/// The client's own `Authorization` header, if it sent one (the write
/// client has no token of its own to put in its place).
fn with_client_auth(request: UpstreamRequest, auth: Option<HeaderValue>) -> UpstreamRequest {
    match auth {
        Some(v) => request.header(header::AUTHORIZATION, v),
        None => request,
    }
}

/// A record-state answer, decoded (never the upstream's bytes verbatim).
fn record_state(up: &str, body: &[u8]) -> Result<PackageRecord, Refusal> {
    wire::decode_json::<PackageRecord>("record state", body, MAX_RECORD_ANSWER)
        .map_err(|e| malformed(up, e))
}

impl Registries {
    /// `POST /v1/package/{logId}/record` (at `path`): one signed record,
    /// forwarded with the client's own credential. Answers the record's
    /// state (202).
    pub async fn publish_record(
        &self,
        reg: &Registry,
        path: String,
        body: Bytes,
        auth: Option<HeaderValue>,
    ) -> Result<PackageRecord, Refusal> {
        let request = with_client_auth(
            UpstreamRequest::post(
                path,
                HeaderValue::from_static(wire::CONTENT_TYPE_JSON),
                body,
            )
            .max_response_bytes(MAX_RECORD_ANSWER as u64),
            auth,
        );
        let resp = writer(reg)?.send(request).await?;
        let resp = expect_status(&reg.name, "the publish", StatusCode::ACCEPTED, resp)?;
        record_state(&reg.name, &resp.body)
    }

    /// `POST …/record/{recordId}/content/{digest}` (at `path`): the content
    /// bytes of a record being published, forwarded (201). One upload at a
    /// time is held in memory.
    pub async fn upload_content(
        &self,
        reg: &Registry,
        path: String,
        content_type: HeaderValue,
        body: Bytes,
        auth: Option<HeaderValue>,
    ) -> Result<(), Refusal> {
        let writer = writer(reg)?;
        let request = with_client_auth(
            UpstreamRequest::post(path, content_type, body)
                .max_response_bytes(MAX_RECORD_ANSWER as u64),
            auth,
        );
        let resp = writer.send(request).await?;
        expect_status(&reg.name, "the content upload", StatusCode::CREATED, resp)?;
        Ok(())
    }

    /// Waits for the one upload slot (see `Registries::uploads`): held by the
    /// caller from reading the client's body until the upstream has it.
    pub async fn upload_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.uploads.acquire().await.ok()
    }

    /// `GET /v1/package/{logId}/record/{recordId}` (at `path`): the
    /// record's publishing state (a read: bulwark's read client).
    pub async fn record_state(
        &self,
        reg: &Registry,
        path: String,
    ) -> Result<PackageRecord, Refusal> {
        let request = UpstreamRequest::get(path).max_response_bytes(MAX_RECORD_ANSWER as u64);
        let resp = reg.client.send(request).await?;
        let resp = expect_status(&reg.name, "the record lookup", StatusCode::OK, resp)?;
        record_state(&reg.name, &resp.body)
    }
}
