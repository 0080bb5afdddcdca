//! Checkpoint verification: a Warg checkpoint is believed only when it is
//! signed by the operator key pinned in bulwark's configuration AND the
//! validated operator log grants that key the `commit` permission (the
//! reference client checks neither: it takes the key from the operator log
//! it was sent).
//!
//! Called by the Warg front on every checkpoint an upstream answers, before
//! the trust state sees it.

use super::error::{printable, WargVerifyError};
use super::logs::OperatorState;
use crate::warg::wire::{RegistryLen, SignedCheckpoint, TimestampedCheckpoint};
use warg_crypto::hash::{AnyHash, Hash, Sha256};
use warg_crypto::signing::{KeyID, PublicKey};
use warg_crypto::{Encode as _, Signable as _};

/// A checkpoint that passed [`verify_checkpoint`]. Only that function makes
/// one, so holding a `VerifiedCheckpoint` means the checks were done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    envelope: SignedCheckpoint,
    log_root: Hash<Sha256>,
    map_root: Hash<Sha256>,
}

impl VerifiedCheckpoint {
    /// The signed envelope exactly as the upstream sent it (clients check
    /// it again against the upstream's operator key: pass it through).
    pub fn envelope(&self) -> &SignedCheckpoint {
        &self.envelope
    }

    /// The number of leaves in the registry log at this checkpoint.
    pub fn log_length(&self) -> RegistryLen {
        self.envelope.as_ref().checkpoint.log_length
    }

    /// The registry log's root at this checkpoint.
    pub fn log_root(&self) -> &AnyHash {
        &self.envelope.as_ref().checkpoint.log_root
    }

    /// The registry map's root at this checkpoint.
    pub fn map_root(&self) -> &AnyHash {
        &self.envelope.as_ref().checkpoint.map_root
    }

    /// The signing time the upstream put in the checkpoint (seconds since
    /// the Unix epoch; not checked against any clock here).
    pub fn timestamp(&self) -> u64 {
        self.envelope.as_ref().timestamp
    }

    /// The ID of the key that signed it (the pinned operator key's).
    pub fn key_id(&self) -> &KeyID {
        self.envelope.key_id()
    }

    pub(super) fn log_root_hash(&self) -> &Hash<Sha256> {
        &self.log_root
    }

    pub(super) fn map_root_hash(&self) -> &Hash<Sha256> {
        &self.map_root
    }
}

/// Verifies `envelope` (a `GET /v1/fetch/checkpoint` answer):
///
/// 1. its `keyId` is the pinned key's ID (`sha256:` of the key's text);
/// 2. its roots are SHA-256 digests and its log length is at least 1;
/// 3. its signature verifies under `pinned_operator_key` over
///    `WARG-CHECKPOINT-SIGNATURE-V0:` ‖ encode(contents);
/// 4. `operator_log` holds no record at or past the checkpoint's length
///    (permissions are judged as of the checkpoint), and grants the key
///    `commit`.
///
/// The caller must still prove the operator log's head included in this
/// checkpoint ([`super::verify_inclusion`]) before trusting either.
pub fn verify_checkpoint(
    envelope: &SignedCheckpoint,
    pinned_operator_key: &PublicKey,
    operator_log: &OperatorState,
) -> Result<VerifiedCheckpoint, WargVerifyError> {
    let pinned_id = pinned_operator_key.fingerprint();
    if envelope.key_id() != &pinned_id {
        return Err(WargVerifyError::CheckpointKey {
            expected: pinned_id.to_string(),
            seen: printable(&envelope.key_id().to_string()),
        });
    }
    let contents: &TimestampedCheckpoint = envelope.as_ref();
    let log_root = sha256_root("log root", &contents.checkpoint.log_root)?;
    let map_root = sha256_root("map root", &contents.checkpoint.map_root)?;
    let log_length = contents.checkpoint.log_length;
    if log_length == 0 {
        return Err(WargVerifyError::EmptyCheckpoint);
    }
    super::guarded("checkpoint signature", || {
        TimestampedCheckpoint::verify(
            pinned_operator_key,
            &contents.encode(),
            envelope.signature(),
        )
        .map_err(|_| WargVerifyError::CheckpointSignature {
            key_id: pinned_id.to_string(),
        })
    })?;
    if let Some(last) = operator_log.records().last() {
        if last.registry_index >= log_length {
            return Err(WargVerifyError::OperatorAhead {
                registry_index: last.registry_index,
                log_length,
            });
        }
    }
    if !operator_log.key_can_commit(&pinned_id) {
        return Err(WargVerifyError::NotCommitter {
            key_id: pinned_id.to_string(),
            records: operator_log.records().len(),
        });
    }
    Ok(VerifiedCheckpoint {
        envelope: envelope.clone(),
        log_root,
        map_root,
    })
}

fn sha256_root(what: &'static str, value: &AnyHash) -> Result<Hash<Sha256>, WargVerifyError> {
    Hash::<Sha256>::try_from(value.clone()).map_err(|_| WargVerifyError::CheckpointDigest {
        what,
        seen: printable(&value.to_string()),
    })
}
