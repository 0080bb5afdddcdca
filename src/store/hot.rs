//! The memory tier of the blob store: verified blobs kept in memory so
//! that a cache hit costs no file access, within a hard byte budget.
//!
//! Used by [`FsBlobStore`](super::FsBlobStore) for every blob of at most
//! `max_object` bytes: content served with `get_stream` and small metadata
//! read with `get`. What it holds was hashed when it was written (and, for
//! `get`, re-hashed when read); it is never re-hashed here.
//!
//! The budget counts every byte buffer this tier allocates for as long as
//! the buffer lives, not only while it is cached: each buffer carries its
//! share of the budget ([`Reservation`]) and gives it back when its last
//! handle is dropped. A blob evicted from the cache while a slow client is
//! still being sent it keeps counting until that response ends. So the
//! memory of this tier is at most `budget` bytes whatever the number of
//! clients, their speed and the blobs' sizes: when the budget is taken, a
//! blob is streamed from its file instead (in bounded chunks, see
//! [`READ_BUDGET`](super::READ_BUDGET)), never read whole beyond it.
//!
//! The cache itself is weighed by bytes (plus a fixed overhead per entry),
//! holds at most the budget less `max_object` (room to fill one more blob),
//! and evicts the least valuable entries (moka's TinyLFU: frequency and
//! recency) when full.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Digest;

/// Default budget of the tier (`server.blob_cache_bytes`): 64 MiB.
pub const DEFAULT_BUDGET: u64 = 64 * 1024 * 1024;
/// Default largest blob of the tier (`server.blob_cache_max_object`):
/// 16 MiB.
pub const DEFAULT_MAX_OBJECT: u64 = 16 * 1024 * 1024;
// The defaults leave room to fill one more blob (see `HotBlobs::new`).
const _: () = assert!(DEFAULT_MAX_OBJECT <= DEFAULT_BUDGET / 2);

/// What one entry costs beyond its bytes (key and bookkeeping), so that
/// many tiny blobs cannot exceed the budget.
const ENTRY_OVERHEAD: u64 = 128;
/// The budget in permits of this many bytes.
const UNIT: u64 = 1024;

/// The memory tier (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct HotBlobs {
    cache: moka::sync::Cache<Digest, Bytes>,
    budget: Arc<Semaphore>,
    max_object: u64,
}

impl std::fmt::Debug for HotBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotBlobs")
            .field("max_object", &self.max_object)
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// A share of the tier's budget, held while a blob's buffer is filled and
/// then for as long as the buffer lives.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    len: u64,
}

/// A buffer of the tier and the budget it holds (given back on drop).
struct HotBuf {
    buf: Vec<u8>,
    _reservation: Reservation,
}

impl AsRef<[u8]> for HotBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

fn units(len: u64) -> u32 {
    u32::try_from(len.saturating_add(ENTRY_OVERHEAD).div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl HotBlobs {
    /// A tier of at most `budget` bytes holding blobs of at most
    /// `max_object` bytes (at most half the budget); a `budget` or a
    /// `max_object` of 0 turns it off.
    pub fn new(budget: u64, max_object: u64) -> HotBlobs {
        let permits = usize::try_from(budget / UNIT)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let budget = permits as u64 * UNIT;
        // The cache stays `max_object` below the budget, so that a blob
        // can always be filled once buffers evicted while still in use
        // are dropped: a full cache never starves new hot blobs (it evicts
        // only when something is inserted).
        let max_object = max_object.min(budget / 2);
        let capacity = budget - max_object;
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_: &Digest, v: &Bytes| {
                u32::try_from(u64::from(units(v.len() as u64)) * UNIT).unwrap_or(u32::MAX)
            })
            .build();
        HotBlobs {
            cache,
            budget: Arc::new(Semaphore::new(permits)),
            max_object,
        }
    }

    /// The cached bytes of `digest`, if any (no I/O, no await).
    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.cache.get(digest)
    }

    /// Whether `digest` is cached.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.cache.contains_key(digest)
    }

    /// Budget for a buffer of `len` bytes, if a blob of that size belongs
    /// in this tier and the budget has room now (never waits).
    pub fn reserve(&self, len: u64) -> Option<Reservation> {
        if len > self.max_object {
            return None;
        }
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(units(len))
            .ok()?;
        Some(Reservation {
            _permit: permit,
            len,
        })
    }

    /// Keeps `buf` (the whole blob `digest`, filled under `reservation`)
    /// and returns it as shared bytes; the reservation lives as long as
    /// they do. A buffer whose length is not the one reserved is returned
    /// uncached.
    pub fn keep(&self, digest: &Digest, buf: Vec<u8>, reservation: Reservation) -> Bytes {
        let exact = buf.len() as u64 == reservation.len;
        let bytes = Bytes::from_owner(HotBuf {
            buf,
            _reservation: reservation,
        });
        if exact {
            self.cache.insert(*digest, bytes.clone());
        }
        bytes
    }

    /// Keeps a copy of `bytes` (the whole blob `digest`) if it belongs in
    /// this tier and the budget has room; otherwise does nothing.
    pub fn offer(&self, digest: &Digest, bytes: &[u8]) {
        if self.contains(digest) {
            return;
        }
        if let Some(r) = self.reserve(bytes.len() as u64) {
            self.keep(digest, bytes.to_vec(), r);
        }
    }

    /// Forgets `digest` (its file was found corrupt).
    pub fn invalidate(&self, digest: &Digest) {
        self.cache.invalidate(digest);
    }

    /// Bytes the cache holds (entries weighed with their overhead), after
    /// pending evictions ran.
    #[cfg(test)]
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    /// Entries the cache holds, after pending evictions ran.
    #[cfg(test)]
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Bytes of the budget free now (in whole units), after pending
    /// evictions ran.
    #[cfg(test)]
    pub fn available(&self) -> u64 {
        // Evicted entries are dropped by moka's housekeeping.
        self.cache.run_pending_tasks();
        self.budget.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u8) -> Digest {
        Digest::of(&[i])
    }

    #[test]
    fn a_kept_blob_is_served_from_memory_and_holds_its_budget_while_alive() {
        let hot = HotBlobs::new(64 * 1024, 16 * 1024);
        let before = hot.available();
        let r = hot.reserve(10_000).unwrap();
        let b = hot.keep(&d(1), vec![7; 10_000], r);
        assert_eq!(hot.get(&d(1)).unwrap(), b);
        assert!(hot.available() < before);
        // Evicted while still in use: it keeps counting until dropped.
        hot.invalidate(&d(1));
        assert!(hot.get(&d(1)).is_none());
        assert!(hot.available() < before);
        drop(b);
        assert_eq!(hot.available(), before);
    }

    #[test]
    fn nothing_beyond_the_budget_or_the_largest_object_is_reserved() {
        let hot = HotBlobs::new(100 * 1024, 40 * 1024);
        assert!(hot.reserve(40 * 1024 + 1).is_none(), "over max_object");
        let a = hot.reserve(40 * 1024).unwrap();
        let _b = hot.reserve(40 * 1024).unwrap();
        // About 18 KiB left: a third 40 KiB buffer must wait for one of them.
        assert!(hot.reserve(40 * 1024).is_none());
        drop(a);
        assert!(hot.reserve(40 * 1024).is_some());
        // At most half the budget per object.
        assert!(HotBlobs::new(64 * 1024, 40 * 1024)
            .reserve(33 * 1024)
            .is_none());
        // Off.
        let off = HotBlobs::new(0, 1024);
        assert!(off.reserve(1).is_none());
        off.offer(&d(2), b"x");
        assert!(off.get(&d(2)).is_none());
    }

    #[test]
    fn many_blobs_never_hold_more_than_the_budget() {
        let budget = 64 * 1024;
        let hot = HotBlobs::new(budget, 16 * 1024);
        let mut held = Vec::new();
        for i in 0..64u8 {
            hot.offer(&d(i), &[i; 16 * 1024]);
            if let Some(b) = hot.get(&d(i)) {
                held.push(b);
            }
        }
        // Whatever is cached or still referenced fits the budget.
        let live: u64 = held.iter().map(|b| b.len() as u64 + ENTRY_OVERHEAD).sum();
        assert!(live <= budget, "{live} bytes alive");
        assert!(hot.weighted_size() <= budget);
        assert!(hot.entry_count() <= 4);
    }

    #[test]
    fn a_short_buffer_is_not_cached() {
        let hot = HotBlobs::new(64 * 1024, 16 * 1024);
        let r = hot.reserve(100).unwrap();
        let b = hot.keep(&d(3), vec![1; 99], r);
        assert_eq!(b.len(), 99);
        assert!(hot.get(&d(3)).is_none());
    }
}
