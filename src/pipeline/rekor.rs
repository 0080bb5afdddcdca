//! Rekor, followed: every Rekor entry an ecosystem verified (a PEP 740
//! attestation, an npm provenance) has its checkpoint recorded in the trust
//! state under the log's origin (`sigstore::log::record`), proven
//! consistent with everything accepted of that log before. The consistency
//! proofs come from the log itself: Rekor v1's
//! `GET /api/v1/log/proof`, Rekor v2's c2sp.org/tlog-tiles tiles (under
//! `/api/v2/`)
//! (authenticated against the verified checkpoint before use).
//!
//! A proof the log answers wrongly (or not with its success answer)
//! refuses the artifact; a proof that fails to verify is evidence and
//! quarantines the log. A log that cannot be reached at all (DNS, connect,
//! timeout) leaves the checkpoint unproven: [`Consistency::Deferred`], and
//! the ecosystem's policy decides (`rekor_consistency`): refuse, or serve
//! on the entry's inclusion proof and signed checkpoint alone, marked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::StatusCode;

use crate::sigstore::log::{
    parse_rekor_v1_proof, record, rekor_v1_proof_path, tile_consistency_proof, ProofSource,
    CHECK_CONSISTENCY_PROOF, MAX_PROOF_ANSWER,
};
use crate::sigstore::root::RekorVersion;
use crate::sigstore::verify::LogEntry;
use crate::tlog::merkle::Hash;
use crate::tlog::tile::{Dialect, Tile, TileReader};
use crate::upstream::{UpstreamClient, UpstreamOptions, UpstreamRequest};

use super::refusal::Refusal;
use super::trust::Trust;

/// Where a Rekor v2 log serves its c2sp.org/tlog-tiles resources, below
/// its base URL (`/api/v2/checkpoint`, `/api/v2/tile/0/000`).
const REKOR_V2_PREFIX: &str = "/api/v2";
/// Largest tile answer read (a full tile of hashes is 8 KiB).
const MAX_TILE_BYTES: u64 = 64 * 1024;

/// What recording an entry's checkpoint established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Recorded: consistent with everything accepted of its log.
    Proven,
    /// Not recorded: the log could not be reached for the consistency
    /// proof. The entry's inclusion in its signed checkpoint is verified;
    /// that the checkpoint extends what bulwark accepted is not.
    Deferred,
}

/// The Rekor logs bulwark has talked to, one client each (by base URL).
#[derive(Clone)]
pub struct Rekor {
    trust: Trust,
    /// `[server] offline`: no log is contacted (a proof is then deferred
    /// or refused, as for a log that cannot be reached).
    offline: bool,
    clients: Arc<Mutex<HashMap<String, UpstreamClient>>>,
}

impl std::fmt::Debug for Rekor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rekor").finish_non_exhaustive()
    }
}

impl Rekor {
    pub fn new(trust: Trust, offline: bool) -> Rekor {
        Rekor {
            trust,
            offline,
            clients: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn client(&self, entry: &LogEntry) -> Result<UpstreamClient, String> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| "Rekor clients: lock poisoned".to_string())?;
        if let Some(c) = clients.get(&entry.log_url) {
            return Ok(c.clone());
        }
        let name = format!("rekor {}", entry.log_url);
        let mut o = UpstreamOptions::new(name, entry.log_url.clone());
        // A client waits on these proofs: a log that does not answer must
        // not hold it for long, nor every request after it (one failure
        // opens the breaker for a minute; an open breaker is unreachable).
        o.connect_timeout = std::time::Duration::from_secs(3);
        o.request_timeout = std::time::Duration::from_secs(15);
        o.retries = 0;
        o.breaker_threshold = 1;
        o.breaker_cooldown = std::time::Duration::from_secs(60);
        o.offline = self.offline;
        let c = UpstreamClient::new(o)
            .map_err(|e| format!("Rekor client for {}: {e}", entry.log_url))?;
        clients.insert(entry.log_url.clone(), c.clone());
        Ok(c)
    }

    /// Records the checkpoint of each entry, in order. `upstream` is the
    /// upstream whose artifact the entries vouch for (it names the
    /// refusal). [`Consistency::Deferred`] if any entry's log could not be
    /// reached for its proof.
    pub async fn record(
        &self,
        upstream: &str,
        entries: &[LogEntry],
    ) -> Result<Consistency, Refusal> {
        let mut outcome = Consistency::Proven;
        for entry in entries {
            let client = self.client(entry).map_err(|e| {
                Refusal::bad_answer(
                    upstream,
                    "transparency log",
                    format!("upstream {upstream}: {e}"),
                )
            })?;
            let handle = tokio::runtime::Handle::current();
            let e = entry.clone();
            let now = SystemTime::now();
            let recorded = self
                .trust
                .run(move |state| {
                    let mut source = HttpProofs {
                        client,
                        handle,
                        unreachable: std::cell::Cell::new(false),
                    };
                    let r = record(state, &e, &mut source, now);
                    Ok((r, source.unreachable.get()))
                })
                .await
                .map_err(|e| Refusal::from_trust(&e))?;
            let (recorded, unreachable) = recorded;
            match recorded {
                Err(r) if unreachable && r.check == CHECK_CONSISTENCY_PROOF => {
                    outcome = Consistency::Deferred;
                }
                Ok(_recorded) => {}
                Err(r) => {
                    let status = if r.check == "quarantine" || r.check == "fork" {
                        StatusCode::FORBIDDEN
                    } else {
                        StatusCode::BAD_GATEWAY
                    };
                    return Err(Refusal::new(
                        upstream,
                        r.check,
                        status,
                        format!(
                            "upstream {upstream}: Rekor log {} (origin {}): {r}",
                            entry.log_url, entry.checkpoint.origin
                        ),
                    )
                    .expected_seen(r.expected, r.seen));
                }
            }
        }
        Ok(outcome)
    }
}

/// Consistency proofs fetched from the log, on a blocking thread (the
/// trust state runs `record` there).
struct HttpProofs {
    client: UpstreamClient,
    handle: tokio::runtime::Handle,
    /// Set when a request could not reach the log at all.
    unreachable: std::cell::Cell<bool>,
}

impl HttpProofs {
    fn get(&self, path: String, max: u64) -> Result<bytes::Bytes, String> {
        let res = self
            .handle
            .block_on(
                self.client
                    .send(UpstreamRequest::get(path.clone()).max_response_bytes(max)),
            )
            .map_err(|e| {
                if e.is_unreachable() {
                    self.unreachable.set(true);
                }
                e.to_string()
            })?;
        if res.status != StatusCode::OK {
            return Err(format!("{}: status {}, want 200", res.url, res.status));
        }
        Ok(res.body)
    }
}

impl ProofSource for HttpProofs {
    fn consistency(
        &mut self,
        entry: &LogEntry,
        first: u64,
        second: u64,
        second_root: &Hash,
    ) -> Result<Vec<Hash>, String> {
        match entry.version {
            RekorVersion::V1 => {
                let path = rekor_v1_proof_path(entry, first, second).map_err(|r| r.to_string())?;
                let body = self.get(path, MAX_PROOF_ANSWER as u64)?;
                parse_rekor_v1_proof(&body, second_root)
            }
            RekorVersion::V2 => tile_consistency_proof(self, second, *second_root, first),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TileFetch(String);

impl TileReader for HttpProofs {
    type Error = TileFetch;

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TileFetch> {
        tiles
            .iter()
            .map(|t| {
                self.get(
                    format!("{REKOR_V2_PREFIX}/{}", t.path(Dialect::Tiles)),
                    MAX_TILE_BYTES,
                )
                .map(|b| b.to_vec())
                .map_err(TileFetch)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}
