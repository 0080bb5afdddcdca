//! Why the Warg verifier refused something: one variant per check, each
//! saying what was expected and what was seen.
//!
//! Built by the checks in [`super`]; read by the Warg front, which sends the
//! `Display` text to clients as the `message` of Warg's
//! `{"status","message"}` error body ([`WargVerifyError::body`]).

use super::super::wire::{self, RegistryIndex, RegistryLen, WireError};
use thiserror::Error;

/// A refusal by the Warg verifier.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WargVerifyError {
    /// The checkpoint names a signing key other than the pinned operator key.
    #[error("checkpoint: signed by key {seen}, expected the pinned operator key {expected}")]
    CheckpointKey { expected: String, seen: String },

    /// The checkpoint's signature does not verify under the pinned key.
    #[error("checkpoint: signature does not verify under the pinned operator key {key_id}")]
    CheckpointSignature { key_id: String },

    /// The validated operator log does not grant the signing key `commit`.
    #[error(
        "checkpoint: the operator log (validated to {records} records) does not grant key \
         {key_id} the `commit` permission"
    )]
    NotCommitter { key_id: String, records: usize },

    /// A root in the checkpoint is not a SHA-256 digest.
    #[error("checkpoint: {what} must be a sha256 digest of 32 bytes, saw {seen}")]
    CheckpointDigest { what: &'static str, seen: String },

    /// The operator log given to judge the checkpoint holds records the
    /// checkpoint does not cover.
    #[error(
        "checkpoint: the operator log holds a record at registry index {registry_index}, past \
         the checkpoint's log length {log_length}"
    )]
    OperatorAhead {
        registry_index: RegistryIndex,
        log_length: RegistryLen,
    },

    /// A newer checkpoint signed earlier than the verified one.
    #[error(
        "consistency: the new checkpoint's timestamp {new} is earlier than the verified \
         checkpoint's {old} (a replayed older checkpoint)"
    )]
    TimestampRewind { old: u64, new: u64 },

    /// A checkpoint of length 0 (a Warg log starts with the operator init
    /// record, so a signed checkpoint always has at least one leaf).
    #[error("checkpoint: log length must be at least 1, saw 0")]
    EmptyCheckpoint,

    /// More log records than the verifier keeps for one log.
    #[error("{log} log: more than {limit} records (saw {seen})")]
    TooManyRecords {
        log: &'static str,
        limit: usize,
        seen: usize,
    },

    /// A record's registry index does not come after the previous record's.
    #[error("{log} log: record {position} has registry index {seen}, expected more than {after}")]
    RecordOrder {
        log: &'static str,
        position: usize,
        after: RegistryIndex,
        seen: RegistryIndex,
    },

    /// A record's fetch token is not its record ID.
    #[error(
        "{log} log: record {position} has fetch token {seen:?}, expected its record id {expected}"
    )]
    FetchToken {
        log: &'static str,
        position: usize,
        expected: String,
        seen: String,
    },

    /// A record's protobuf contents do not decode.
    #[error(
        "{log} log: record {position} (registry index {registry_index}) does not decode: {detail}"
    )]
    RecordDecode {
        log: &'static str,
        position: usize,
        registry_index: RegistryIndex,
        detail: String,
    },

    /// A record decoded but the log's rules refuse it (signature, key,
    /// permission, previous-record chain, timestamp, release/yank rules).
    #[error(
        "{log} log: record {position} (registry index {registry_index}, {record_id}) refused: \
         {detail}"
    )]
    RecordInvalid {
        log: &'static str,
        position: usize,
        registry_index: RegistryIndex,
        record_id: String,
        detail: String,
    },

    /// A proof bundle is too large or not valid protobuf.
    #[error("{0}")]
    Bundle(#[from] WireError),

    /// No leaves were asked about: nothing to prove.
    #[error("{what}: no leaves to prove (an inclusion check needs at least one)")]
    NothingToProve { what: &'static str },

    /// The bundle holds another number of proofs than leaves were asked about
    /// (an emptied bundle is one of these).
    #[error("{what}: expected {expected} proofs (one per requested leaf), saw {seen}")]
    ProofCount {
        what: &'static str,
        expected: usize,
        seen: usize,
    },

    /// A log proof bundle holds consistency proofs where inclusion proofs
    /// were expected, or the reverse.
    #[error("{what}: expected {expected} {kind} proofs, saw {seen}")]
    ProofKind {
        what: &'static str,
        kind: &'static str,
        expected: usize,
        seen: usize,
    },

    /// A log proof is for another log length than the checkpoint's.
    #[error("{what}: proof is for log length {seen}, expected {expected}")]
    ProofLength {
        what: &'static str,
        expected: RegistryLen,
        seen: u64,
    },

    /// A registry index at or past the checkpoint's log length.
    #[error("log inclusion: registry index {index} is not in a log of length {log_length}")]
    IndexPastLog {
        index: RegistryIndex,
        log_length: RegistryLen,
    },

    /// Proof `position` is for another leaf node than the one asked about.
    #[error(
        "log inclusion: proof {position} is for log node {seen}, expected node {expected} \
         (registry index {registry_index})"
    )]
    ProofLeaf {
        position: usize,
        registry_index: RegistryIndex,
        expected: u64,
        seen: u64,
    },

    /// A proof could not be evaluated (a hash it needs is missing, or its
    /// shape is impossible).
    #[error("{what}: proof {position} cannot be evaluated: {detail}")]
    ProofUnusable {
        what: &'static str,
        position: usize,
        detail: String,
    },

    /// A map proof with more peers than the map is deep.
    #[error("map inclusion: proof {position} has {seen} peers, at most {limit} allowed")]
    MapPeers {
        position: usize,
        limit: usize,
        seen: usize,
    },

    /// A proof evaluated to another root than the checkpoint's.
    #[error(
        "{what}: proof {position} ({leaf}) evaluates to root {seen}, the checkpoint's is {expected}"
    )]
    RootMismatch {
        what: &'static str,
        position: usize,
        leaf: String,
        expected: String,
        seen: String,
    },

    /// A consistency check asked from a longer log to a shorter one: a
    /// rewind (an older checkpoint given as newer).
    #[error(
        "consistency: the new checkpoint's log length {new_length} is smaller than the \
         verified length {old_length} (a rewind)"
    )]
    Rewind {
        old_length: RegistryLen,
        new_length: RegistryLen,
    },

    /// A consistency check from length 0.
    #[error("consistency: the old log length must be at least 1, saw 0")]
    ConsistencyFromZero,

    /// The consistency proof is not for the lengths asked about.
    #[error(
        "consistency: proof is from length {seen_old} to {seen_new}, expected from \
         {expected_old} to {expected_new}"
    )]
    ConsistencyLengths {
        expected_old: RegistryLen,
        expected_new: RegistryLen,
        seen_old: u64,
        seen_new: u64,
    },

    /// Same length, different roots; or a consistency proof whose old root
    /// is not the verified one: two histories (a fork), or a bad proof.
    #[error(
        "consistency: the {which} root at log length {log_length} is {seen}, expected {expected} \
         (the upstream's history differs from the verified one)"
    )]
    ConsistencyRoot {
        which: &'static str,
        log_length: RegistryLen,
        expected: String,
        seen: String,
    },

    /// A reference-crate call panicked on hostile input despite the checks
    /// before it; the panic was caught and the input refused.
    #[error("{what}: refused input that made the reference implementation panic")]
    Panicked { what: &'static str },
}

impl WargVerifyError {
    /// The `{"status":…,"message":…}` body that reports this refusal to a
    /// Warg client, with the status the front chose (bulwark answers 502
    /// for an upstream that fails verification).
    pub fn body(&self, status: u16) -> Vec<u8> {
        wire::message_body(status, &self.to_string())
    }
}

/// At most 100 characters of an untrusted string, for error messages.
pub(super) fn printable(s: &str) -> String {
    s.chars().take(100).collect()
}
