//! Sigstore trust material: a `trusted_root.json` (Fulcio CAs, CT logs,
//! TSAs and Rekor logs, each with a validity period).
//!
//! The production root (sigstore/root-signing `targets/trusted_root.json`)
//! is compiled in; an operator can load another file (staging, a private
//! Sigstore). Keys are pinned: nothing is fetched. Besides the
//! `sigstore-verify` verifier built from it, every Rekor log gets a
//! signed-note verifier key for [`crate::tlog`] so bulwark checks
//! checkpoints itself:
//!
//! * Rekor v1 (ECDSA P-256): key name = the log's host, key ID =
//!   SHA-256(DER SPKI)\[:4\]; checkpoint origin `<host> - <tree id>` (one
//!   origin per shard, the key stays).
//! * Rekor v2 (Ed25519, a C2SP tiled log): key name = origin = the host,
//!   key ID as c2sp.org/signed-note computes it.

use super::Refusal;
use crate::tlog::note::{VerifierKey, TYPE_ECDSA};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::Verifier;
use std::time::SystemTime;

/// The production trusted root, as distributed by sigstore/root-signing.
pub const PRODUCTION_TRUSTED_ROOT: &str = include_str!("trusted_root.production.json");

/// Largest trusted root file accepted, in bytes (the real ones are < 10 KiB).
pub const MAX_TRUSTED_ROOT: usize = 1 << 20;

/// Most Rekor logs a trusted root may list.
pub const MAX_LOGS: usize = 256;

/// Rekor API generation, from the log key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekorVersion {
    /// Rekor v1: ECDSA P-256 checkpoints, `/api/v1/log/proof` consistency.
    V1,
    /// Rekor v2: Ed25519 C2SP checkpoints, tiles.
    V2,
}

/// One Rekor log of the trusted root.
#[derive(Debug, Clone)]
pub struct RekorLog {
    /// Its base URL (from the root, or an operator override).
    pub url: String,
    /// The URL's host: the checkpoint key name.
    pub host: String,
    /// SHA-256 log ID as bundles cite it.
    pub log_id: [u8; 32],
    pub version: RekorVersion,
    /// Signed-note verifier for its checkpoints.
    pub key: VerifierKey,
    /// Validity period of the key (`None` end: still valid).
    pub valid_from: Option<SystemTime>,
    pub valid_until: Option<SystemTime>,
}

impl RekorLog {
    /// Whether `origin` is a checkpoint origin of this log.
    pub fn accepts_origin(&self, origin: &str) -> bool {
        match self.version {
            RekorVersion::V2 => origin == self.host,
            RekorVersion::V1 => origin
                .strip_prefix(&self.host)
                .and_then(|rest| rest.strip_prefix(" - "))
                .is_some_and(|tree| crate::tlog::checkpoint::parse_decimal(tree).is_some()),
        }
    }
}

/// A parsed trusted root.
pub struct TrustRoot {
    pub(crate) verifier: Verifier,
    logs: Vec<RekorLog>,
    /// Rekor logs whose key type bulwark cannot check checkpoints with.
    unsupported: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustRoot")
            .field("logs", &self.logs)
            .finish_non_exhaustive()
    }
}

fn root_refusal(seen: impl Into<String>) -> Refusal {
    Refusal::new("trusted root", "a valid Sigstore trusted_root.json", seen)
}

pub(crate) fn to_system_time(t: jiff::Timestamp) -> SystemTime {
    SystemTime::from(t)
}

impl TrustRoot {
    /// The embedded production root.
    pub fn production() -> Result<TrustRoot, Refusal> {
        TrustRoot::from_json(PRODUCTION_TRUSTED_ROOT)
    }

    /// Parses a `trusted_root.json`.
    pub fn from_json(text: &str) -> Result<TrustRoot, Refusal> {
        super::provider::install();
        if text.len() > MAX_TRUSTED_ROOT {
            return Err(root_refusal(format!(
                "{} bytes, more than {MAX_TRUSTED_ROOT}",
                text.len()
            )));
        }
        let root = TrustedRoot::from_json(text).map_err(|e| root_refusal(e.to_string()))?;
        if root.tlogs.len() > MAX_LOGS {
            return Err(root_refusal(format!(
                "{} transparency logs, more than {MAX_LOGS}",
                root.tlogs.len()
            )));
        }
        let verifier = Verifier::new(&root).map_err(|e| root_refusal(e.to_string()))?;
        let mut logs = Vec::new();
        let mut unsupported = Vec::new();
        for log in &root.tlogs {
            let log_id: [u8; 32] = log.log_id.key_id.as_bytes().try_into().map_err(|_| {
                root_refusal(format!(
                    "log {} has a log ID that is not 32 bytes",
                    log.base_url
                ))
            })?;
            let host = host_of(&log.base_url).ok_or_else(|| {
                root_refusal(format!("log base URL {:?} has no host", log.base_url))
            })?;
            let der = log.public_key.raw_bytes.as_bytes();
            let (version, key) = match log.public_key.key_details.as_str() {
                "PKIX_ECDSA_P256_SHA_256" => {
                    let id: [u8; 32] = Sha256::digest(der).into();
                    let mut raw = vec![TYPE_ECDSA];
                    raw.extend_from_slice(der);
                    let vkey = format!(
                        "{host}+{:02x}{:02x}{:02x}{:02x}+{}",
                        id[0],
                        id[1],
                        id[2],
                        id[3],
                        STANDARD.encode(raw)
                    );
                    let key = vkey
                        .parse::<VerifierKey>()
                        .map_err(|e| root_refusal(format!("log {host}: ECDSA key: {e}")))?;
                    (RekorVersion::V1, key)
                }
                "PKIX_ED25519" => {
                    // DER SPKI of an Ed25519 key: 12-byte prefix ‖ 32-byte key.
                    const PREFIX: [u8; 12] = [
                        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                    ];
                    let key: &[u8; 32] = der
                        .strip_prefix(&PREFIX[..])
                        .and_then(|k| k.try_into().ok())
                        .ok_or_else(|| {
                            root_refusal(format!("log {host}: Ed25519 key is not a 44-byte SPKI"))
                        })?;
                    let key = VerifierKey::new_ed25519(&host, key)
                        .map_err(|e| root_refusal(format!("log {host}: Ed25519 key: {e}")))?;
                    (RekorVersion::V2, key)
                }
                other => {
                    unsupported.push((log_id, other.to_string()));
                    continue;
                }
            };
            let window = log.public_key.valid_for;
            logs.push(RekorLog {
                url: log.base_url.clone(),
                host,
                log_id,
                version,
                key,
                valid_from: window.map(|w| to_system_time(w.start)),
                valid_until: window.and_then(|w| w.end.map(to_system_time)),
            });
        }
        Ok(TrustRoot {
            verifier,
            logs,
            unsupported,
        })
    }

    /// The Rekor logs bulwark can check checkpoints of.
    pub fn logs(&self) -> &[RekorLog] {
        &self.logs
    }

    /// The log a bundle cites by its log ID.
    pub fn log(&self, log_id: &[u8]) -> Result<&RekorLog, Refusal> {
        if let Some(log) = self.logs.iter().find(|l| l.log_id[..] == *log_id) {
            return Ok(log);
        }
        let seen = hex::encode(log_id);
        match self.unsupported.iter().find(|(id, _)| id[..] == *log_id) {
            Some((_, details)) => Err(Refusal::new(
                "log key",
                "an ECDSA P-256 (Rekor v1) or Ed25519 (Rekor v2) log key",
                format!("log {seen} with a {details} key"),
            )),
            None => Err(Refusal::new(
                "log",
                "a Rekor log of the trusted root",
                format!("unknown log ID {seen}"),
            )),
        }
    }

    /// Points the log with this host at another base URL (a mirror of the
    /// log, or a test log). The key stays the root's.
    pub fn override_url(&mut self, host: &str, url: &str) -> Result<(), Refusal> {
        let log = self
            .logs
            .iter_mut()
            .find(|l| l.host == host)
            .ok_or_else(|| {
                Refusal::new(
                    "log",
                    format!("a log with host {host} in the trusted root"),
                    "none",
                )
            })?;
        log.url = url.to_string();
        Ok(())
    }
}

/// The host of an `https://host[:port][/path]` URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty() && crate::tlog::note::is_valid_name(host)).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_root_has_both_rekor_generations() {
        let root = TrustRoot::production().unwrap();
        let v1 = root
            .logs()
            .iter()
            .find(|l| l.host == "rekor.sigstore.dev")
            .unwrap();
        assert_eq!(v1.version, RekorVersion::V1);
        assert_eq!(v1.key.key_id(), 0xc0d23d6a);
        assert!(v1.accepts_origin("rekor.sigstore.dev - 1193050959916656506"));
        assert!(!v1.accepts_origin("rekor.sigstore.dev - x"));
        let v2 = root
            .logs()
            .iter()
            .find(|l| l.host == "log2025-1.rekor.sigstore.dev")
            .unwrap();
        assert_eq!(v2.version, RekorVersion::V2);
        assert_eq!(
            v2.key.to_string(),
            "log2025-1.rekor.sigstore.dev+cf119915+AbfK5adZJxsI323FwGD2AJJ9F4i89cfDuLdGJBIYntuO"
        );
        assert_eq!(v2.key.key_id().to_be_bytes(), v2.log_id[..4]);
    }

    #[test]
    fn log_url_can_be_overridden_key_stays() {
        let mut root = TrustRoot::production().unwrap();
        let key = root.logs()[0].key.clone();
        let host = root.logs()[0].host.clone();
        root.override_url(&host, "http://127.0.0.1:8080").unwrap();
        assert_eq!(root.logs()[0].url, "http://127.0.0.1:8080");
        assert_eq!(root.logs()[0].key, key);
        assert_eq!(
            root.override_url("nope.example", "http://x")
                .unwrap_err()
                .check,
            "log"
        );
        assert_eq!(
            TrustRoot::from_json("{}").unwrap_err().check,
            "trusted root"
        );
    }
}
