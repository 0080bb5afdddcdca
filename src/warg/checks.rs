//! The Warg ecosystem's adapters around `warg::verify`: the pinned key parsed
//! from configuration, the validated-log record the front caches, and the
//! conversion of a Warg consistency bundle (node hashes by in-order index)
//! into the RFC 9162 proof the trust state checks (Warg's interior hash is
//! RFC 6962's `H(0x01 ‖ l ‖ r)`, so the same subtree hashes verify there).
//!
//! Called by the Warg ecosystem modules (`follower`, `logs`, `registry`)
//! only; all other verification is `warg::verify`'s.

use std::collections::HashMap;

use warg_crypto::hash::{AnyHash, Sha256};
use warg_crypto::signing::{KeyID, PublicKey};
use warg_transparency::log::{LogData, Node};

use crate::tlog::Hash as TlogHash;
use crate::warg::wire::{self, LogId, LogLeaf};

/// Why an upstream answer was refused. The text says which check failed,
/// what was expected and what was seen.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CheckError {
    #[error("consistency bundle: {0}")]
    Consistency(String),
    #[error("log validation: {0}")]
    Log(String),
    #[error("{0}")]
    Wire(String),
}

impl CheckError {
    /// A short name of the check, for error bodies and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            CheckError::Consistency(_) => "consistency",
            CheckError::Log(_) => "log-validation",
            CheckError::Wire(_) => "wire",
        }
    }
}

/// The pinned operator key of an upstream.
#[derive(Debug, Clone)]
pub struct PinnedKey {
    pub key: PublicKey,
    pub key_id: KeyID,
}

impl PinnedKey {
    /// Parses `ecdsa-p256:<base64 SEC1 point>`.
    pub fn parse(text: &str) -> Result<PinnedKey, String> {
        let key: PublicKey = text
            .parse()
            .map_err(|e| format!("operator_key {text:?} is not a Warg public key: {e}"))?;
        let key_id = key.fingerprint();
        Ok(PinnedKey { key, key_id })
    }
}

/// The 32 bytes of a SHA-256 Warg hash.
pub fn hash_bytes(h: &AnyHash) -> Result<[u8; 32], CheckError> {
    h.bytes()
        .try_into()
        .map_err(|_| CheckError::Wire(format!("hash {h} is not 32 bytes")))
}

/// One validated record: its registry index and record ID.
pub type FetchedRecord = crate::warg::verify::VerifiedRecord;

/// A log bulwark fetched in full at one checkpoint and validated.
#[derive(Debug, Clone, Default)]
pub struct ValidatedLog {
    /// Every record, in order.
    pub records: Vec<FetchedRecord>,
    /// Content digests named by releases (`sha256:…`).
    pub releases: Vec<String>,
    /// The validated operator log state (operator log only).
    pub operator: Option<crate::warg::verify::OperatorState>,
}

impl ValidatedLog {
    /// The head record (the log's latest at that checkpoint).
    pub fn head(&self) -> Option<&FetchedRecord> {
        self.records.last()
    }
}

/// Which log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogKind {
    Operator,
    Package(LogId),
}

impl LogKind {
    pub fn log_id(&self) -> LogId {
        match self {
            LogKind::Operator => wire::operator_log_id(),
            LogKind::Package(id) => id.clone(),
        }
    }
}

/// What a consistency bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistent {
    /// The log root at the old length.
    pub old_root: [u8; 32],
    /// The log root at the new length.
    pub new_root: [u8; 32],
    /// The same proof as an RFC 9162 hash list (for the trust state).
    pub rfc: Vec<TlogHash>,
}

/// Checks a consistency bundle for `from → to` and returns the old and new
/// log roots it proves, plus the same proof as an RFC 9162 hash list (for
/// the trust state). Guards: `0 < from <= to`, exactly one consistency
/// proof, for exactly these lengths, no inclusion proofs.
pub fn check_consistency(bytes: &[u8], from: u64, to: u64) -> Result<Consistent, CheckError> {
    let bad = |s: String| CheckError::Consistency(s);
    if from == 0 || from > to {
        return Err(bad(format!("cannot prove {from} → {to}")));
    }
    let bundle = wire::decode_log_bundle(bytes, wire::DEFAULT_BUNDLE_LIMIT)
        .map_err(|e| bad(e.to_string()))?;
    let (data, cons, incs) = bundle.unbundle();
    if cons.len() != 1 || !incs.is_empty() {
        return Err(bad(format!(
            "expected exactly one consistency proof and no inclusion proofs, saw {} and {}",
            cons.len(),
            incs.len()
        )));
    }
    let p = &cons[0];
    if p.old_length as u64 != from || p.new_length as u64 != to {
        return Err(bad(format!(
            "asked for {from} → {to}, the bundle proves {} → {}",
            p.old_length, p.new_length
        )));
    }
    let (old, new) = p.evaluate(&data).map_err(|e| bad(e.to_string()))?;
    let old: [u8; 32] = old
        .bytes()
        .try_into()
        .map_err(|_| bad("hash size".into()))?;
    let new: [u8; 32] = new
        .bytes()
        .try_into()
        .map_err(|_| bad("hash size".into()))?;
    let rfc = rfc_consistency_proof(&data, from, to)?;
    Ok(Consistent {
        old_root: old,
        new_root: new,
        rfc,
    })
}

/// Hashes of the subtrees of a log known from a bundle.
struct Known<'a, L: LogData<Sha256, LogLeaf>> {
    data: &'a L,
    budget: usize,
    memo: HashMap<(u64, u64), [u8; 32]>,
}

impl<L: LogData<Sha256, LogLeaf>> Known<'_, L> {
    /// The hash of the subtree over leaves `[lo, hi)` (RFC 6962 MTH; Warg's
    /// branch hash is the same `H(0x01 ‖ l ‖ r)`).
    fn mth(&mut self, lo: u64, hi: u64) -> Result<[u8; 32], CheckError> {
        if let Some(h) = self.memo.get(&(lo, hi)) {
            return Ok(*h);
        }
        self.budget = self.budget.checked_sub(1).ok_or_else(|| {
            CheckError::Consistency("the bundle lacks hashes to rebuild the proof".into())
        })?;
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let idx = lo
                .checked_mul(2)
                .and_then(|x| x.checked_add(n - 1))
                .and_then(|x| usize::try_from(x).ok());
            if let Some(h) = idx.and_then(|i| self.data.hash_for(Node(i))) {
                let b: [u8; 32] = h
                    .bytes()
                    .try_into()
                    .map_err(|_| CheckError::Consistency("hash size".into()))?;
                self.memo.insert((lo, hi), b);
                return Ok(b);
            }
        }
        if n <= 1 {
            return Err(CheckError::Consistency(format!(
                "the bundle lacks the hash of leaf {lo}"
            )));
        }
        let k = split(n);
        let l = self.mth(lo, lo + k)?;
        let r = self.mth(lo + k, hi)?;
        let h = crate::tlog::merkle::node_hash(&TlogHash(l), &TlogHash(r)).0;
        self.memo.insert((lo, hi), h);
        Ok(h)
    }

    fn subproof(
        &mut self,
        m: u64,
        lo: u64,
        hi: u64,
        whole: bool,
        out: &mut Vec<TlogHash>,
    ) -> Result<(), CheckError> {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(TlogHash(self.mth(lo, hi)?));
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, whole, out)?;
            out.push(TlogHash(self.mth(lo + k, hi)?));
        } else {
            self.subproof(m - k, lo + k, hi, false, out)?;
            out.push(TlogHash(self.mth(lo, lo + k)?));
        }
        Ok(())
    }
}

/// The largest power of two smaller than `n` (n ≥ 2; 1 below that).
/// Constant time, whatever `n` (no doubling loop that can overflow).
fn split(n: u64) -> u64 {
    if n <= 2 {
        return 1;
    }
    // 2^(bits of n-1, minus one): the largest power of two below n.
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Rebuilds the RFC 9162 consistency proof `m → n` from the node hashes of
/// a Warg consistency bundle.
pub fn rfc_consistency_proof(
    data: &impl LogData<Sha256, LogLeaf>,
    m: u64,
    n: u64,
) -> Result<Vec<TlogHash>, CheckError> {
    let mut k = Known {
        data,
        budget: 4096,
        memo: HashMap::new(),
    };
    let mut out = Vec::new();
    if m > 0 && m < n {
        k.subproof(m, 0, n, true, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::verify_consistency;
    use warg_crypto::hash::Hash;
    use warg_transparency::log::{LogBuilder, VecLog};

    fn leaf(i: u8) -> LogLeaf {
        let h: AnyHash = Hash::<Sha256>::of(&[i][..]).into();
        LogLeaf {
            log_id: h.clone().into(),
            record_id: h.into(),
        }
    }

    #[test]
    fn warg_consistency_bundles_convert_to_rfc9162_proofs_that_verify() {
        let mut log: VecLog<Sha256, LogLeaf> = VecLog::default();
        let mut roots = vec![None];
        for i in 0..40u8 {
            log.push(&leaf(i));
            let cp = log.checkpoint();
            roots.push(Some(hash_bytes(&cp.root().into()).unwrap()));
        }
        for n in 1..=40u64 {
            for m in 1..=n {
                let proof = log.prove_consistency(m as usize, n as usize);
                let bundle = wire::LogProofBundle::bundle(vec![proof], vec![], &log).unwrap();
                let bytes = bundle.encode();
                let Consistent {
                    old_root: old,
                    new_root: new,
                    rfc,
                } = check_consistency(&bytes, m, n).unwrap();
                assert_eq!(Some(old), roots[m as usize]);
                assert_eq!(Some(new), roots[n as usize]);
                verify_consistency(m, n, &TlogHash(old), &TlogHash(new), &rfc)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
            }
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below_n_for_every_n() {
        for n in 2..=4096u64 {
            let k = split(n);
            assert!(k.is_power_of_two() && k < n && k * 2 >= n, "{n}: {k}");
        }
        // Past 2^63 the old doubling loop never ended.
        assert_eq!(split((1 << 63) + 1), 1 << 63);
        assert_eq!(split(u64::MAX), 1 << 63);
        assert_eq!(split(1 << 63), 1 << 62);
    }

    #[test]
    fn empty_or_wrong_consistency_bundles_are_refused() {
        assert!(check_consistency(&[], 1, 2).is_err());
        assert!(check_consistency(&[], 0, 2).is_err());
        assert!(check_consistency(&[], 3, 2).is_err());
        let mut log: VecLog<Sha256, LogLeaf> = VecLog::default();
        for i in 0..5u8 {
            log.push(&leaf(i));
        }
        let proof = log.prove_consistency(2, 5);
        let bytes = wire::LogProofBundle::bundle(vec![proof], vec![], &log)
            .unwrap()
            .encode();
        assert!(check_consistency(&bytes, 3, 5).is_err());
    }
}
