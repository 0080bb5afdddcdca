//! The registry log (the ledger): every leaf fetched, and the whole hashed
//! to the root of a verified checkpoint, before any of it is used, either
//! to serve `GET /v1/ledger/records/{start}` or to prove a log's records
//! at their registry indexes.

use std::sync::Arc;

use bytes::Bytes;

use crate::pipeline::refusal::Refusal;
use crate::upstream::UpstreamRequest;
use crate::warg::refuse::{expect_ok, refuse, CHECK_SIZE, CHECK_WIRE};
use crate::warg::registry::{own, Registries, Registry};
use crate::warg::verify::VerifiedCheckpoint;
use crate::warg::wire::{LogLeaf, RegistryIndex};

/// Leaves a ledger page holds (the reference server's limit).
pub const LEDGER_PAGE: u64 = 1000;
/// Bytes of one packed ledger leaf (log ID and record ID).
const LEDGER_LEAF_BYTES: u64 = 64;
/// The longest registry log bulwark verifies for the ledger routes.
const MAX_LEDGER: u64 = 1_000_000;

/// A verified ledger length (for `GET /v1/ledger`).
pub struct LedgerLength {
    pub len: u64,
    /// Set while the upstream cannot be reached and the last verified
    /// checkpoint stands in.
    pub warning: Option<String>,
}

impl Registries {
    /// The ledger length of the current verified checkpoint.
    pub async fn ledger_length(&self, reg: &Registry, epoch: u64) -> Result<LedgerLength, Refusal> {
        let (cp, warning) = self.current_checkpoint(reg, epoch).await?;
        let len = cp.as_ref().checkpoint.log_length as u64;
        if len > MAX_LEDGER {
            return Err(too_long(&reg.name, len));
        }
        Ok(LedgerLength { len, warning })
    }

    /// Leaves `start..` (one page) of the registry log at the current
    /// verified checkpoint, packed (log ID, record ID), served only once
    /// the whole log up to that length hashes to its verified root.
    pub async fn ledger_page(
        &self,
        reg: &Registry,
        epoch: u64,
        start: RegistryIndex,
    ) -> Result<Bytes, Refusal> {
        let (cp, _) = self.current_checkpoint(reg, epoch).await?;
        let len = cp.as_ref().checkpoint.log_length as u64;
        let leaves = self
            .verified_ledger(reg, epoch, len, &cp.as_ref().checkpoint.log_root)
            .await?;
        let from = (start as u64).min(len);
        let to = from.saturating_add(LEDGER_PAGE).min(len);
        let mut body = Vec::with_capacity(((to - from) * LEDGER_LEAF_BYTES) as usize);
        for leaf in leaves
            .iter()
            .skip(usize::try_from(from).unwrap_or(usize::MAX))
            .take(usize::try_from(to - from).unwrap_or(0))
        {
            body.extend_from_slice(leaf.log_id.as_ref());
            body.extend_from_slice(leaf.record_id.as_ref());
        }
        Ok(body.into())
    }

    /// A verified ledger whose first `vcp.log_length()` leaves are the
    /// registry log at `vcp`: a remembered one at least that long (the
    /// trust state proved every accepted checkpoint extends the earlier
    /// ones), else the one at the newest verified checkpoint. A client
    /// choosing old log lengths therefore never makes bulwark fetch
    /// another ledger.
    pub(crate) async fn ledger_covering(
        &self,
        reg: &Registry,
        epoch: u64,
        vcp: &VerifiedCheckpoint,
    ) -> Result<Arc<Vec<LogLeaf>>, Refusal> {
        let len = vcp.log_length() as u64;
        let newest = {
            let m = reg.memory()?;
            if let Some(l) = m.ledger_from(len) {
                return Ok(l);
            }
            m.newest_checkpoint_after(len)
        };
        match newest {
            Some(n) => {
                self.verified_ledger(reg, epoch, n.log_length() as u64, n.log_root())
                    .await
            }
            None => self.verified_ledger(reg, epoch, len, vcp.log_root()).await,
        }
    }

    /// The registry log at length `len`, every leaf fetched and the whole
    /// hashed to `root` before any of it is used. Extends the longest
    /// verified ledger shorter than `len` (its leaves are a prefix) rather
    /// than fetching from the start.
    async fn verified_ledger(
        &self,
        reg: &Registry,
        epoch: u64,
        len: u64,
        root: &warg_crypto::hash::AnyHash,
    ) -> Result<Arc<Vec<LogLeaf>>, Refusal> {
        if let Some(leaves) = reg.memory()?.ledger(len) {
            return Ok(leaves);
        }
        let _fetching = reg.ledger_fetch.lock().await;
        if let Some(leaves) = reg.memory()?.ledger(len) {
            return Ok(leaves);
        }
        if len > MAX_LEDGER {
            return Err(too_long(&reg.name, len));
        }
        let prefix = reg.memory()?.ledger_before(len);
        use warg_transparency::log::{LogBuilder, VecLog};
        let mut log: VecLog<warg_crypto::hash::Sha256, LogLeaf> = VecLog::default();
        // Grown as verified pages arrive, never sized by the upstream's word.
        let mut leaves = Vec::new();
        for leaf in prefix.iter().flat_map(|p| p.iter()) {
            log.push(leaf);
            leaves.push(leaf.clone());
        }
        while (leaves.len() as u64) < len {
            let path = format!("/v1/ledger/records/{}", leaves.len());
            let request = own(UpstreamRequest::get(path.clone()))
                .max_response_bytes(LEDGER_PAGE * LEDGER_LEAF_BYTES);
            let resp = reg.client.send(request).await?;
            let resp = expect_ok(&reg.name, &format!("ledger page {path}"), resp)?;
            if resp.body.is_empty() || !(resp.body.len() as u64).is_multiple_of(LEDGER_LEAF_BYTES) {
                return Err(refuse(
                    &reg.name,
                    CHECK_WIRE,
                    format!(
                        "ledger page {path} answered {} bytes (expected a non-empty multiple of 64)",
                        resp.body.len()
                    ),
                ));
            }
            for chunk in resp.body.chunks_exact(LEDGER_LEAF_BYTES as usize) {
                if leaves.len() as u64 == len {
                    break;
                }
                let (l, r) = chunk.split_at(32);
                let mk = |b: &[u8]| {
                    warg_crypto::hash::AnyHash::new(
                        warg_crypto::hash::HashAlgorithm::Sha256,
                        b.to_vec(),
                    )
                };
                let leaf = LogLeaf {
                    log_id: mk(l).into(),
                    record_id: mk(r).into(),
                };
                log.push(&leaf);
                leaves.push(leaf);
            }
        }
        let got = log.checkpoint().root();
        let ok = got.bytes() == root.bytes();
        self.tally(reg, "ledger", ok);
        if !ok {
            return Err(refuse(
                &reg.name,
                "ledger",
                format!(
                    "the {len} leaves of the registry log hash to {got}, the verified checkpoint's log root is {root}"
                ),
            )
            .expected_seen(root.to_string(), got.to_string()));
        }
        let leaves = Arc::new(leaves);
        reg.memory()?.remember_ledger(epoch, len, leaves.clone());
        Ok(leaves)
    }
}

fn too_long(up: &str, len: u64) -> Refusal {
    refuse(
        up,
        CHECK_SIZE,
        format!("the log of {len} leaves is longer than the {MAX_LEDGER} bulwark verifies"),
    )
}
