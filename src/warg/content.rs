//! Warg content through the pipeline's artifact service: the digests a
//! validated release names, proven included in a verified checkpoint, are
//! indexed under (upstream, epoch, `sha256:<hex>`); content is served only
//! under such an entry, from the store, else fetched, checked against the
//! digest ([`Rule::Sha256`]), stored and indexed. The blob store is shared
//! by digest across upstreams and protocols; the right to serve a digest is
//! per upstream and epoch.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::pipeline::artifacts::{Fill, Lookup, Rule};
use crate::pipeline::refusal::{unreachable_warning, verified_warning, Refusal};
use crate::store::index::{kinds, Entry};
use crate::store::{Blob, Digest as BlobDigest};
use crate::upstream::UpstreamRequest;
use crate::warg::checks::{LogKind, ValidatedLog};
use crate::warg::refuse::malformed;
use crate::warg::registry::{own, Registries, Registry};

/// Largest content blob fetched from an upstream.
const MAX_CONTENT: u64 = 512 * 1024 * 1024;
/// How long fetching one content blob may take.
const CONTENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Verified content to stream.
pub struct Content {
    pub blob: Blob,
    /// Set while the upstream's checkpoint cannot be confirmed (it cannot
    /// be reached, or the last verified one is stale).
    pub warning: Option<String>,
}

impl Registries {
    /// Records the content digests a validated, proven package log's
    /// releases name, for `reg` in `epoch` (durably; entries already there
    /// are kept).
    pub(crate) async fn index_releases(
        &self,
        reg: &Registry,
        epoch: u64,
        kind: &LogKind,
        len: u64,
        log: &ValidatedLog,
    ) -> Result<(), Refusal> {
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
                .map_err(|e| malformed(&reg.name, format!("release content digest {r}: {e}")))?;
            entries.push((d.to_string(), Entry::new(d, proof.clone())));
        }
        self.artifacts
            .index(&reg.name, epoch, kinds::WARG_CONTENT, entries)
            .await?;
        Ok(())
    }

    /// Whether a verified release of `reg` in `epoch` names `digest`.
    pub async fn content_named(
        &self,
        reg: &Registry,
        epoch: u64,
        digest: &BlobDigest,
    ) -> Result<bool, Refusal> {
        let entry = self
            .artifacts
            .entry(&reg.name, epoch, kinds::WARG_CONTENT, &digest.to_string())
            .await?;
        Ok(entry.is_some())
    }

    /// The content bytes of `digest`, only under an index entry of `reg`
    /// in its current epoch: from the store, else fetched, checked and
    /// stored. `None`: no verified release of `reg` names it.
    pub async fn content(
        &self,
        reg: &Registry,
        digest: &BlobDigest,
    ) -> Result<Option<Content>, Refusal> {
        let key = digest.to_string();
        let blob = match self
            .artifacts
            .lookup(&reg.name, kinds::WARG_CONTENT, &key)
            .await?
        {
            Lookup::Hit { blob, .. } => blob,
            Lookup::Named { epoch, entry } => {
                let path = format!("/content/sha256-{}", entry.digest.hex());
                // A verified fetch: the digest is one a proven release
                // names. Streamed into the store, hashed while written,
                // published only if it hashes to the digest.
                let request = own(UpstreamRequest::get(path))
                    .max_response_bytes(MAX_CONTENT)
                    .timeout(CONTENT_TIMEOUT);
                let (_, blob) = self
                    .artifacts
                    .fill(Fill {
                        upstream: &reg.name,
                        epoch,
                        kind: kinds::WARG_CONTENT,
                        key,
                        proof: entry.proof.clone(),
                        rule: Rule::Sha256(entry.digest),
                        client: &reg.client,
                        request,
                    })
                    .await?;
                blob
            }
            Lookup::Miss { .. } => return Ok(None),
        };
        // Say so when the upstream's checkpoint cannot be confirmed right
        // now; a trust state that cannot be read refuses rather than
        // serving without knowing.
        let v = self.trust().last_verified(&reg.name, reg.max_age).await?;
        let warning = if reg.unreachable.load(Ordering::Relaxed) {
            Some(unreachable_warning(&v))
        } else {
            verified_warning(&v)
        };
        Ok(Some(Content { blob, warning }))
    }
}
