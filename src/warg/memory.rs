//! What bulwark remembers, in memory, of one Warg upstream in one trust
//! epoch: verified checkpoints, validated logs, verified leaves and
//! ledgers, and verified answers kept for offline serving. Every map is
//! bounded. The trust state holds the checkpoints durably and the artifact
//! index the content digests; this is only what saves refetching and
//! re-proving.
//!
//! Owned by each `registry::Registry`; no I/O here. Everything is
//! dropped whole when the upstream's trust epoch changes
//! ([`Memory::enter`]), and nothing proven in another epoch than the
//! current one is kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use indexmap::IndexMap;

use crate::store::Digest as BlobDigest;
use crate::warg::checks::{LogKind, ValidatedLog};
use crate::warg::verify::VerifiedCheckpoint;
use crate::warg::wire::{LogLeaf, RegistryIndex, SignedCheckpoint};

/// Verified checkpoints kept (the newest log lengths).
const MAX_CHECKPOINTS: usize = 64;
/// Most validated log records kept, over all logs.
const MAX_CACHED_RECORDS: usize = 200_000;
/// Most verified leaves (registry index → leaf) kept.
pub(crate) const MAX_CACHED_LEAVES: usize = 200_000;
/// Verified ledgers kept: the longest only (an older length's leaves are
/// a prefix of it), so at most `ledger::MAX_LEDGER` leaves.
const MAX_LEDGERS: usize = 1;
/// Most bytes of verified answers kept for offline serving.
const MAX_OFFLINE_BYTES: usize = 32 * 1024 * 1024;

/// The last checkpoint the follower verified for an upstream, and when
/// (reused for the upstream's `checkpoint_reuse`).
pub struct Fresh {
    pub at: Instant,
    pub epoch: u64,
    pub checkpoint: SignedCheckpoint,
}

/// Which kind of verified answer (the client route it answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerKind {
    Logs,
    Inclusion,
    Consistency,
}

/// See the module documentation.
#[derive(Default)]
pub struct Memory {
    /// The trust epoch all of this was proven in.
    epoch: Option<u64>,
    /// Verified checkpoints by log length (the newest envelope per length).
    checkpoints: BTreeMap<u64, VerifiedCheckpoint>,
    /// Validated logs by (log, log length).
    logs: HashMap<(LogKind, u64), Arc<ValidatedLog>>,
    /// Records held by `logs`, over all of them.
    log_records: usize,
    /// Verified leaves by registry index.
    leaves: HashMap<RegistryIndex, LogLeaf>,
    /// The registry log by verified length, its root checked.
    ledgers: BTreeMap<u64, Arc<Vec<LogLeaf>>>,
    /// Verified answers by (kind, SHA-256 of the request body), oldest
    /// first.
    answers: IndexMap<(AnswerKind, [u8; 32]), Bytes>,
    /// Bytes held by `answers`.
    answer_bytes: usize,
}

impl Memory {
    /// Moves to `epoch`: what was remembered of another epoch is dropped.
    pub fn enter(&mut self, epoch: u64) {
        if self.epoch != Some(epoch) {
            *self = Memory {
                epoch: Some(epoch),
                ..Memory::default()
            };
        }
    }

    /// Whether `epoch` is the current one (only its proofs are kept).
    fn current(&self, epoch: u64) -> bool {
        self.epoch == Some(epoch)
    }

    pub fn checkpoint(&self, len: u64) -> Option<VerifiedCheckpoint> {
        self.checkpoints.get(&len).cloned()
    }

    /// The newest verified checkpoint longer than `len`.
    pub fn newest_checkpoint_after(&self, len: u64) -> Option<VerifiedCheckpoint> {
        self.checkpoints
            .last_key_value()
            .filter(|(l, _)| **l > len)
            .map(|(_, c)| c.clone())
    }

    pub fn remember_checkpoint(&mut self, epoch: u64, vcp: VerifiedCheckpoint) {
        if !self.current(epoch) {
            return;
        }
        self.checkpoints.insert(vcp.log_length() as u64, vcp);
        while self.checkpoints.len() > MAX_CHECKPOINTS {
            self.checkpoints.pop_first();
        }
    }

    pub fn log(&self, kind: &LogKind, len: u64) -> Option<Arc<ValidatedLog>> {
        self.logs.get(&(kind.clone(), len)).cloned()
    }

    /// Keeps a validated, proven log and its records as verified leaves.
    pub fn remember_log(&mut self, epoch: u64, kind: LogKind, len: u64, log: Arc<ValidatedLog>) {
        if !self.current(epoch) {
            return;
        }
        if self.leaves.len() + log.records.len() > MAX_CACHED_LEAVES {
            self.leaves.clear();
        }
        let log_id = kind.log_id();
        for r in &log.records {
            self.leaves.insert(
                r.registry_index,
                LogLeaf {
                    log_id: log_id.clone(),
                    record_id: r.record_id.clone(),
                },
            );
        }
        if self.log_records + log.records.len() > MAX_CACHED_RECORDS {
            self.logs.clear();
            self.log_records = 0;
        }
        self.log_records += log.records.len();
        if let Some(old) = self.logs.insert((kind, len), log) {
            self.log_records -= old.records.len();
        }
    }

    /// The verified leaf at registry index `i`.
    pub fn leaf(&self, i: RegistryIndex) -> Option<&LogLeaf> {
        self.leaves.get(&i)
    }

    pub fn ledger(&self, len: u64) -> Option<Arc<Vec<LogLeaf>>> {
        self.ledgers.get(&len).cloned()
    }

    /// A verified ledger at least `len` long.
    pub fn ledger_from(&self, len: u64) -> Option<Arc<Vec<LogLeaf>>> {
        self.ledgers
            .range(len..)
            .next_back()
            .map(|(_, l)| l.clone())
    }

    /// The longest verified ledger shorter than `len` (a prefix of it).
    pub fn ledger_before(&self, len: u64) -> Option<Arc<Vec<LogLeaf>>> {
        self.ledgers
            .range(..len)
            .next_back()
            .map(|(_, l)| l.clone())
    }

    pub fn remember_ledger(&mut self, epoch: u64, len: u64, leaves: Arc<Vec<LogLeaf>>) {
        if !self.current(epoch) {
            return;
        }
        self.ledgers.insert(len, leaves);
        // Keep the longest: evict the shortest while over the bound.
        while self.ledgers.len() > MAX_LEDGERS {
            self.ledgers.pop_first();
        }
    }

    /// Keeps a verified answer to `request` for offline serving.
    pub fn remember_answer(
        &mut self,
        epoch: u64,
        kind: AnswerKind,
        request: &[u8],
        answer: &Bytes,
    ) {
        if !self.current(epoch) || answer.len() > MAX_OFFLINE_BYTES / 4 {
            return;
        }
        let key = (kind, *BlobDigest::of(request).as_bytes());
        if let Some(old) = self.answers.shift_remove(&key) {
            self.answer_bytes -= old.len();
        }
        while self.answer_bytes + answer.len() > MAX_OFFLINE_BYTES {
            match self.answers.shift_remove_index(0) {
                Some((_, old)) => self.answer_bytes -= old.len(),
                None => break,
            }
        }
        self.answer_bytes += answer.len();
        self.answers.insert(key, answer.clone());
    }

    /// The verified answer to `request`, if one is kept.
    pub fn answer(&self, kind: AnswerKind, request: &[u8]) -> Option<Bytes> {
        let key = (kind, *BlobDigest::of(request).as_bytes());
        self.answers.get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_another_epoch_are_not_kept_and_an_epoch_change_drops_all() {
        let mut m = Memory::default();
        m.enter(1);
        let a = Bytes::from_static(b"{}");
        m.remember_answer(1, AnswerKind::Logs, b"req", &a);
        m.remember_answer(2, AnswerKind::Inclusion, b"req", &a);
        assert_eq!(m.answer(AnswerKind::Logs, b"req"), Some(a.clone()));
        assert_eq!(m.answer(AnswerKind::Inclusion, b"req"), None);
        m.enter(2);
        assert_eq!(m.answer(AnswerKind::Logs, b"req"), None);
    }

    #[test]
    fn offline_answers_stay_within_their_byte_bound() {
        let mut m = Memory::default();
        m.enter(0);
        let big = Bytes::from(vec![0u8; MAX_OFFLINE_BYTES / 4]);
        for i in 0..8u8 {
            m.remember_answer(0, AnswerKind::Logs, &[i], &big);
        }
        assert!(m.answer_bytes <= MAX_OFFLINE_BYTES);
        assert_eq!(m.answer(AnswerKind::Logs, &[0]), None);
        assert!(m.answer(AnswerKind::Logs, &[7]).is_some());
    }
}
