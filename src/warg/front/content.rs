//! Content: served and advertised only under an (upstream, epoch, digest)
//! entry of the artifact index, which bulwark writes when a validated
//! release of that upstream, proven included in a verified checkpoint,
//! names the digest. The blob store is shared by digest across upstreams
//! and protocols; the right to serve a digest is per upstream.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::{header, Request, StatusCode};
use indexmap::IndexMap;

use super::answer::{
    refuse, status_rule, stored_octets, task_failed, trust_refusal, upstream_failure, Answer,
};
use super::{Upstream, WargFront, CONTENT_PREFIX};
use crate::server::ReqBody;
use crate::store::index::{kinds, Entry};
use crate::store::{Digest as BlobDigest, StoreError};
use crate::upstream::UpstreamRequest;
use crate::warg::checks::{LogKind, ValidatedLog};
use crate::warg::wire::{self, ContentSource, ContentSourcesResponse};
use warg_crypto::hash::AnyHash;

/// Largest content blob fetched from an upstream.
const MAX_CONTENT: u64 = 512 * 1024 * 1024;
/// Longest host name echoed into a content URL.
const MAX_AUTHORITY: usize = 255;

impl WargFront {
    /// Records the content digests a validated, proven package log's
    /// releases name, for `up` in `epoch` (durably; nothing is written when
    /// every digest is recorded already).
    pub(super) async fn index_releases(
        &self,
        up: &Upstream,
        epoch: u64,
        kind: &LogKind,
        len: u64,
        log: &ValidatedLog,
    ) -> Result<(), Answer> {
        if log.releases.is_empty() {
            return Ok(());
        }
        let head = log
            .head()
            .map(|h| {
                format!(
                    "head record {} at registry index {}",
                    h.record_id, h.registry_index
                )
            })
            .unwrap_or_default();
        let proof = format!(
            "a release of package log {} ({head}), validated and proven included in the checkpoint of log length {len}",
            kind.log_id()
        );
        let mut entries = Vec::new();
        for r in &log.releases {
            let d = BlobDigest::parse(r)
                .map_err(|e| refuse(&up.name, format!("release content digest {r}: {e}")))?;
            entries.push((d.to_string(), Entry::new(d, proof.clone())));
        }
        let index = self.index.clone();
        let name = up.name.clone();
        tokio::task::spawn_blocking(move || {
            index.put_all(&name, epoch, kinds::WARG_CONTENT, &entries)
        })
        .await
        .map_err(task_failed)?
        .map_err(|e| index_failure(&up.name, &e))?;
        Ok(())
    }

    /// The index entry naming `digest` for `up` in `epoch`. `Err` (refuse)
    /// when the index cannot be read.
    async fn indexed(
        &self,
        up: &Upstream,
        epoch: u64,
        digest: &BlobDigest,
    ) -> Result<Option<Entry>, Answer> {
        let index = self.index.clone();
        let name = up.name.clone();
        let key = digest.to_string();
        tokio::task::spawn_blocking(move || index.get(&name, epoch, kinds::WARG_CONTENT, &key))
            .await
            .map_err(task_failed)?
            .map_err(|e| index_failure(&up.name, &e))
    }

    /// A client's content digest, if an index entry of `up` in `epoch` names
    /// it: else bulwark's answer (400 for a digest that is not SHA-256,
    /// Warg's content-not-found 404, or the index refusal).
    async fn indexed_digest(
        &self,
        up: &Upstream,
        epoch: u64,
        digest: &AnyHash,
    ) -> Result<BlobDigest, Answer> {
        let d = BlobDigest::parse(&digest.to_string())
            .map_err(|e| Answer::message(StatusCode::BAD_REQUEST, e.to_string()))?;
        match self.indexed(up, epoch, &d).await? {
            Some(_) => Ok(d),
            None => Err(not_found(digest)),
        }
    }

    /// `GET /v1/content/{digest}`: bulwark's own content URL, only for a
    /// digest a verified release of this upstream names.
    pub(super) async fn content_sources(
        &self,
        up: &Upstream,
        epoch: u64,
        digest: &AnyHash,
        authority: Option<String>,
    ) -> Answer {
        let d = match self.indexed_digest(up, epoch, digest).await {
            Ok(d) => d,
            Err(a) => return a,
        };
        let Some(authority) = authority else {
            return Answer::message(
                StatusCode::BAD_REQUEST,
                "the request names no authority (HTTP/2 :authority or HTTP/1.1 Host) that is a host[:port]",
            );
        };
        let scheme = if self.https { "https" } else { "http" };
        let url = format!(
            "{scheme}://{authority}{CONTENT_PREFIX}{}/sha256-{}",
            up.name,
            d.hex()
        );
        let mut sources = IndexMap::new();
        sources.insert(
            digest.clone(),
            vec![ContentSource::HttpGet {
                url,
                accept_ranges: false,
                size: None,
            }],
        );
        Answer::json(
            StatusCode::OK,
            wire::encode_json(&ContentSourcesResponse {
                content_sources: sources,
            }),
        )
    }

    /// The content bytes, only under an index entry of this upstream in the
    /// current epoch: from the store, else fetched, checked, stored.
    pub(super) async fn content(&self, up: &Upstream, epoch: u64, digest: &AnyHash) -> Answer {
        let d = match self.indexed_digest(up, epoch, digest).await {
            Ok(d) => d,
            Err(a) => return a,
        };
        if let Ok(Some(blob)) = self.blobs.get_stream(&d).await {
            return stored_octets(blob, d);
        }
        let path = format!("/content/sha256-{}", d.hex());
        // A verified fetch: the digest is one a proven release names.
        let request = UpstreamRequest::get(path)
            .max_response_bytes(MAX_CONTENT)
            .timeout(Duration::from_secs(600));
        // Streamed into the store, hashed while written, and published
        // only if it hashes to the digest: never whole in memory.
        let resp = match up.client.send_streaming(super::own(request)).await {
            Ok(r) => r,
            Err(e) => return upstream_failure(&up.name, &e),
        };
        let what = format!("content {d}");
        if let Err(a) = status_rule(&up.name, &what, StatusCode::OK, resp.status, "") {
            return a;
        }
        match self.blobs.put_stream(&d, resp.body).await {
            Ok(_) => {}
            Err(StoreError::DigestMismatch { expected, seen }) => {
                return refuse(
                    &up.name,
                    format!(
                        "content digest check failed: the verified release names {expected}, the upstream sent bytes hashing to {seen}; nothing stored"
                    ),
                );
            }
            Err(StoreError::Body { source, .. }) => {
                return Answer::message(StatusCode::BAD_GATEWAY, source.to_string());
            }
            Err(e) => return Answer::message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
        match self.blobs.get_stream(&d).await {
            Ok(Some(blob)) => stored_octets(blob, d),
            Ok(None) => Answer::message(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("content {d} vanished from the store after it was written"),
            ),
            Err(e) => Answer::message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }

    /// `GET /content/<upstream>/sha256-<hex>` (the URLs `contentSources`
    /// hands out), with a `Warning` while the upstream cannot confirm its
    /// checkpoint.
    pub(super) async fn content_route(&self, path: &str) -> Option<Answer> {
        let rest = path.strip_prefix(CONTENT_PREFIX)?;
        let (name, file) = rest.split_once('/')?;
        let up = self.upstream(name)?.clone();
        let hex = file.strip_prefix("sha256-")?;
        let digest = wire::parse_digest("content digest", &format!("sha256:{hex}")).ok()?;
        let epoch = match self.admit(&up).await {
            Ok(e) => e,
            Err(a) => return Some(a),
        };
        let mut a = self.content(&up, epoch, &digest).await;
        if a.status == StatusCode::OK {
            // Offline: say so when the upstream's checkpoint cannot be
            // confirmed right now.
            let trust = self.trust.clone();
            let n = up.name.clone();
            let max_age = up.max_age;
            let v = match tokio::task::spawn_blocking(move || {
                trust
                    .last_verified(&n, SystemTime::now(), max_age)
                    .map_err(Box::new)
            })
            .await
            {
                Ok(Ok(v)) => v,
                // The state cannot be read, or changed since the gate:
                // refuse rather than serve without knowing.
                Ok(Err(e)) => return Some(trust_refusal(&up.name, &e)),
                Err(e) => return Some(task_failed(e)),
            };
            {
                let warning = if up.unreachable.load(Ordering::Relaxed) {
                    Some(crate::pipeline::refusal::unreachable_warning(&v))
                } else {
                    crate::pipeline::refusal::verified_warning(&v)
                };
                if let Some(w) = warning {
                    a = a.header("warning", w);
                }
            }
        }
        Some(a)
    }
}

fn not_found(digest: &AnyHash) -> Answer {
    let err = wire::ContentError::ContentDigestNotFound(digest.clone());
    Answer::json(StatusCode::NOT_FOUND, wire::encode_json(&err))
}

fn index_failure(up: &str, e: &crate::store::IndexError) -> Answer {
    tracing::error!(upstream = up, "warg: {e}");
    Answer::message(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "bulwark cannot read what it verified for upstream `{up}` (nothing is served): {e}"
        ),
    )
}

/// The authority a client reached bulwark by: the request URI's (HTTP/2
/// `:authority`, or an absolute-form HTTP/1.1 target), else the `Host`
/// header; only a plain `host[:port]` is echoed into a URL.
pub(super) fn client_authority(req: &Request<ReqBody>) -> Option<String> {
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
mod tests {
    use super::*;
    use crate::server::full;

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
