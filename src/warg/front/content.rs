//! Content routes: `GET /v1/content/{digest}` (`contentSources` pointing
//! at bulwark's own `/content/<upstream>/sha256-<hex>`, only for a digest
//! a verified release of that upstream names), and the bytes themselves
//! (from the ecosystem, which serves them only under such an entry).

use http::StatusCode;
use indexmap::IndexMap;

use super::answer::{refusal, stored_octets, Answer};
use super::{WargFront, CONTENT_PREFIX};
use crate::store::Digest as BlobDigest;
use crate::warg::registry::Registry;
use crate::warg::wire::{self, ContentSource, ContentSourcesResponse};
use warg_crypto::hash::AnyHash;

impl WargFront {
    /// `GET /v1/content/{digest}`: bulwark's own content URL, only for a
    /// digest a verified release of this upstream names.
    pub(super) async fn content_sources(
        &self,
        up: &Registry,
        epoch: u64,
        digest: &AnyHash,
        authority: Option<String>,
    ) -> Answer {
        let d = match sha256(digest) {
            Ok(d) => d,
            Err(a) => return a,
        };
        match self.warg.content_named(up, epoch, &d).await {
            Ok(true) => {}
            Ok(false) => return not_found(digest),
            Err(r) => return refusal(&r),
        }
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

    /// The content bytes, streamed, with a `Warning` while the upstream
    /// cannot confirm its checkpoint; Warg's content-not-found 404 for a
    /// digest no verified release of this upstream names.
    pub(super) async fn content(&self, up: &Registry, digest: &AnyHash) -> Answer {
        let d = match sha256(digest) {
            Ok(d) => d,
            Err(a) => return a,
        };
        match self.warg.content(up, &d).await {
            Ok(Some(c)) => stored_octets(c.blob, d).warning(c.warning),
            Ok(None) => not_found(digest),
            Err(r) => refusal(&r),
        }
    }

    /// `GET /content/<upstream>/sha256-<hex>` (the URLs `contentSources`
    /// hands out). `None`: not such a URL.
    pub(super) async fn content_route(&self, path: &str) -> Option<Answer> {
        let rest = path.strip_prefix(CONTENT_PREFIX)?;
        let (name, file) = rest.split_once('/')?;
        let up = self.upstream(name)?.clone();
        let hex = file.strip_prefix("sha256-")?;
        let digest = wire::parse_digest("content digest", &format!("sha256:{hex}")).ok()?;
        if let Err(a) = self.admit(&up).await {
            return Some(a);
        }
        Some(self.content(&up, &digest).await)
    }
}

/// A client's content digest as a store digest: 400 for one that is not
/// SHA-256.
fn sha256(digest: &AnyHash) -> Result<BlobDigest, Answer> {
    BlobDigest::parse(&digest.to_string())
        .map_err(|e| Answer::message(StatusCode::BAD_REQUEST, e.to_string()))
}

fn not_found(digest: &AnyHash) -> Answer {
    let err = wire::ContentError::ContentDigestNotFound(digest.clone());
    Answer::json(StatusCode::NOT_FOUND, wire::encode_json(&err))
}
