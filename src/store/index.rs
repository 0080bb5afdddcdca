//! The artifact index: which content digest each upstream's verified
//! records name, and what proved it. Owned by the store layer, one redb
//! file, `<data_dir>/index.redb`.
//!
//! A key is `(upstream, epoch, kind, key)`:
//!
//! - `upstream`: the configured upstream name. An entry of one upstream is
//!   never an answer for another: the blob store is shared by digest, the
//!   right to serve a digest is not.
//! - `epoch`: the upstream's trust-state epoch the proof was made in
//!   ([`crate::verify::trust::TrustState::epoch`]). Lookups name the
//!   current epoch, so after `bulwark upstream clear --rebase` nothing
//!   proven in an older epoch is found (and [`ArtifactIndex::remove_before`]
//!   can delete it).
//! - `kind`: what the key names, one constant per ecosystem use (see
//!   [`kinds`]), e.g. Warg content by digest, later Go `.zip`/`.mod` by
//!   module version.
//! - `key`: the artifact's name within that kind.
//!
//! The value is the [`Entry`]: the digest and a short text saying what
//! proved it (which record of which log, at which checkpoint). Writes are
//! committed with immediate durability before they return, so everything
//! verified is still served after a crash or restart; a write of entries
//! that are all present already writes nothing (no fsync).
//!
//! Writes are group-committed: the writes that arrive while a commit is
//! being flushed wait for it, and the first of them then commits them all
//! in one transaction, one flush; each returns only after the flush that
//! made its own entries durable (nothing is acknowledged before its
//! fsync). Concurrent fills (parallel downloads, several clients) share
//! their flushes instead of queueing one flush each.
//!
//! A memory mirror answers repeated lookups without a redb transaction: a
//! byte-weighed cache ([`MIRROR_BYTES`]) of entries read or written by this
//! process, filled after a read and after a write commits, and purged
//! after a deletion commits (a lookup that raced with a deletion does not
//! put back what was deleted). redb lets one process open the file, so the
//! mirror sees every write. A miss in the mirror reads the file.
//!
//! The API is synchronous (redb); async callers try [`ArtifactIndex::get_cached`]
//! (memory only, never blocks) and run [`ArtifactIndex::get`] on the
//! blocking pool when it has no answer.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::digest::Digest;

/// The kinds of keys, one definition each.
pub mod kinds {
    /// Warg content: key `sha256:<hex>`, named by a release record of a
    /// package log proven included in a verified checkpoint.
    pub const WARG_CONTENT: &str = "warg.content";
    /// Go module zip: key `<module>@<version>` → the zip's sha256; proof: its sumdb record (`id N in tree S: <zip h1> <mod h1>`).
    pub const GOMOD_ZIP: &str = "gomod.zip";
    /// Go module go.mod: key `<module>@<version>` → the file's sha256; proof: as `GOMOD_ZIP`.
    pub const GOMOD_MOD: &str = "gomod.mod";
    /// Go checksum-database tile: key its path (`tile/8/...`) → the tile bytes' sha256.
    pub const GOMOD_TILE: &str = "gomod.tile";
    /// Go checksum-database record: key `<module>@<version>` → the record text's sha256 (no blob: the text is rebuilt from the proof, as `GOMOD_ZIP`).
    pub const GOMOD_RECORD: &str = "gomod.record";
}

const SCHEMA_VERSION: u64 = 1;
/// (upstream, epoch, kind, key) → encoded [`Entry`].
const ENTRIES: TableDefinition<(&str, u64, &str, &str), &[u8]> = TableDefinition::new("entries");

/// Longest proof text kept per entry.
pub const MAX_PROOF_TEXT: usize = 1024;
/// Longest upstream, kind or key.
pub const MAX_KEY_PART: usize = 1024;
/// Byte budget of the memory mirror: each entry counts its key, its proof
/// text and [`MIRROR_ENTRY_OVERHEAD`] (about 100,000 entries of typical
/// size).
pub const MIRROR_BYTES: u64 = 32 * 1024 * 1024;
/// What one mirrored entry costs beyond its key and proof text.
const MIRROR_ENTRY_OVERHEAD: usize = 160;

/// The mirror's key: (upstream, epoch, kind, key) encoded by
/// [`encode_mirror_key`].
type MirrorKey = Box<[u8]>;

/// What the index holds for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The content digest the verified record names.
    pub digest: Digest,
    /// What proved it (for operators: which record, which checkpoint).
    pub proof: String,
    /// When bulwark recorded it.
    pub at: SystemTime,
}

impl Entry {
    /// An entry recorded now.
    pub fn new(digest: Digest, proof: impl Into<String>) -> Entry {
        let mut proof = proof.into();
        if proof.len() > MAX_PROOF_TEXT {
            let mut end = MAX_PROOF_TEXT;
            while !proof.is_char_boundary(end) {
                end -= 1;
            }
            proof.truncate(end);
        }
        Entry {
            digest,
            proof,
            at: SystemTime::now(),
        }
    }

    /// 32 digest bytes, 8 bytes of milliseconds since the epoch (big
    /// endian), then the proof text.
    fn encode(&self) -> Vec<u8> {
        let ms = self
            .at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut out = Vec::with_capacity(40 + self.proof.len());
        out.extend_from_slice(self.digest.as_bytes());
        out.extend_from_slice(&ms.to_be_bytes());
        out.extend_from_slice(self.proof.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Entry, IndexError> {
        let bad = || IndexError::Corrupt(format!("an entry of {} bytes", bytes.len()));
        let (digest, rest) = bytes.split_at_checked(32).ok_or_else(bad)?;
        let (ms, proof) = rest.split_at_checked(8).ok_or_else(bad)?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| bad())?;
        let ms = u64::from_be_bytes(ms.try_into().map_err(|_| bad())?);
        Ok(Entry {
            digest: Digest::from_bytes(digest),
            proof: String::from_utf8_lossy(proof).into_owned(),
            at: SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }
}

/// Why the index could not answer. A caller refuses to serve on any of
/// these (never "not found").
#[derive(Debug, Clone, thiserror::Error)]
pub enum IndexError {
    #[error("artifact index: {op}: {detail}")]
    Storage { op: &'static str, detail: String },
    #[error("artifact index: corrupt: {0}")]
    Corrupt(String),
    #[error("artifact index: {what} of {len} bytes is longer than the {MAX_KEY_PART} allowed")]
    Input { what: &'static str, len: usize },
}

fn storage<E: std::fmt::Display>(op: &'static str) -> impl FnOnce(E) -> IndexError {
    move |e| IndexError::Storage {
        op,
        detail: e.to_string(),
    }
}

fn check_part(what: &'static str, s: &str) -> Result<(), IndexError> {
    if s.len() > MAX_KEY_PART {
        return Err(IndexError::Input { what, len: s.len() });
    }
    Ok(())
}

/// The artifact index. Cheap to clone (shared database and mirror).
#[derive(Clone)]
pub struct ArtifactIndex {
    db: Arc<redb::Database>,
    mirror: moka::sync::Cache<MirrorKey, Entry>,
    /// Bumped after every deletion commits; a read that saw another value
    /// when it began does not fill the mirror.
    deletions: Arc<AtomicU64>,
    group: Arc<Group>,
}

/// The group commit of writes (see the module documentation).
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    /// Signalled when a commit finished (its writes have their outcome).
    done: Condvar,
    /// How many write transactions were committed (for tests).
    commits: AtomicU64,
}

#[derive(Default)]
struct GroupState {
    /// Writes waiting for the next commit.
    queue: Vec<Arc<Write>>,
    /// Whether a thread is committing a batch now.
    committing: bool,
}

/// One `put_all` waiting in the group: what to write, and its outcome
/// once the commit that holds it is durable.
struct Write {
    upstream: String,
    epoch: u64,
    kind: String,
    entries: Vec<(String, Entry)>,
    outcome: Mutex<Option<Result<usize, IndexError>>>,
}

/// The batch a leader commits. Dropped when the commit is over (or its
/// thread panicked): lets the next leader in, and fails every write of
/// the batch left without an outcome, so no writer waits forever.
struct Lead<'a> {
    group: &'a Group,
    batch: Vec<Arc<Write>>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        for w in &self.batch {
            let mut o = w.outcome.lock().unwrap_or_else(|p| p.into_inner());
            if o.is_none() {
                *o = Some(Err(IndexError::Storage {
                    op: "commit",
                    detail: "the thread committing this write failed".into(),
                }));
            }
        }
        let mut state = self.group.state.lock().unwrap_or_else(|p| p.into_inner());
        state.committing = false;
        drop(state);
        self.group.done.notify_all();
    }
}

impl Write {
    fn outcome(&self) -> Option<Result<usize, IndexError>> {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Writes the mirror key of (upstream, epoch, kind, key) to `out`: the
/// upstream and the kind length-prefixed, the epoch, then the key, so no
/// two tuples share an encoding.
fn encode_mirror_key(out: &mut Vec<u8>, upstream: &str, epoch: u64, kind: &str, key: &str) {
    out.clear();
    for part in [upstream, kind] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
}

fn mirror_key(upstream: &str, epoch: u64, kind: &str, key: &str) -> MirrorKey {
    let mut out = Vec::with_capacity(24 + upstream.len() + kind.len() + key.len());
    encode_mirror_key(&mut out, upstream, epoch, kind, key);
    out.into_boxed_slice()
}

impl std::fmt::Debug for ArtifactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactIndex")
    }
}

impl ArtifactIndex {
    /// Opens (creating if needed) the index file, usually
    /// `<data_dir>/index.redb`, for this process alone: it fails while
    /// another process (a running `bulwark serve`) has it open. So the
    /// memory mirror sees every write, and a commit is one flush (redb's
    /// checksummed commit; a file shared with writers in other processes
    /// needs two).
    pub fn open(path: impl AsRef<Path>) -> Result<ArtifactIndex, IndexError> {
        let path = path.as_ref();
        let mode = redb::ConcurrencyMode::ExclusiveWriter;
        let db = crate::store::versioned::open(path, SCHEMA_VERSION, mode, |txn| {
            txn.open_table(ENTRIES)?;
            Ok(())
        })
        .map_err(|(op, detail)| IndexError::Storage { op, detail })?;
        let mirror = moka::sync::Cache::builder()
            .max_capacity(MIRROR_BYTES)
            .weigher(|k: &MirrorKey, v: &Entry| {
                let n = k.len() + v.proof.len() + MIRROR_ENTRY_OVERHEAD;
                u32::try_from(n).unwrap_or(u32::MAX)
            })
            .build();
        Ok(ArtifactIndex {
            db: Arc::new(db),
            mirror,
            deletions: Arc::new(AtomicU64::new(0)),
            group: Arc::new(Group::default()),
        })
    }

    /// The entry for `(upstream, epoch, kind, key)` if the memory mirror
    /// holds it; `None` says nothing (ask [`ArtifactIndex::get`]). Never
    /// blocks: callable on the async threads.
    pub fn get_cached(&self, upstream: &str, epoch: u64, kind: &str, key: &str) -> Option<Entry> {
        // The key is encoded into a buffer of this thread, kept from one
        // lookup to the next: a hit allocates nothing.
        thread_local! {
            static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        KEY.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                encode_mirror_key(&mut buf, upstream, epoch, kind, key);
                self.mirror.get(&buf[..])
            }
            Err(_) => self.mirror.get(&mirror_key(upstream, epoch, kind, key)),
        })
    }

    /// The entry for `(upstream, epoch, kind, key)`, if one was recorded:
    /// from the memory mirror, else from the file (and then mirrored).
    pub fn get(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &str,
        key: &str,
    ) -> Result<Option<Entry>, IndexError> {
        check_part("upstream", upstream)?;
        check_part("kind", kind)?;
        check_part("key", key)?;
        let mkey = mirror_key(upstream, epoch, kind, key);
        if let Some(e) = self.mirror.get(&mkey) {
            return Ok(Some(e));
        }
        let seen = self.deletions.load(Ordering::Acquire);
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
        let found = match t
            .get((upstream, epoch, kind, key))
            .map_err(storage("read"))?
        {
            Some(v) => Entry::decode(v.value())?,
            None => return Ok(None),
        };
        drop(t);
        drop(txn);
        if self.deletions.load(Ordering::Acquire) == seen {
            self.mirror.insert(mkey, found.clone());
        }
        Ok(Some(found))
    }

    /// Records every `(key, entry)` of one `(upstream, epoch, kind)`,
    /// durably before it returns, all in one transaction (shared with the
    /// writes of other threads that wait for the same flush: see the
    /// module documentation). Keys already present keep their first entry
    /// (what first proved them); when every key is present nothing is
    /// written. Returns how many entries were new.
    pub fn put_all(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &str,
        entries: &[(String, Entry)],
    ) -> Result<usize, IndexError> {
        check_part("upstream", upstream)?;
        check_part("kind", kind)?;
        for (key, _) in entries {
            check_part("key", key)?;
        }
        let missing: Vec<(String, Entry)> = {
            let txn = self.db.begin_read().map_err(storage("begin read"))?;
            let t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
            let mut missing = Vec::new();
            for e in entries {
                if t.get((upstream, epoch, kind, e.0.as_str()))
                    .map_err(storage("read"))?
                    .is_none()
                {
                    missing.push(e.clone());
                }
            }
            missing
        };
        if missing.is_empty() {
            return Ok(0);
        }
        let write = Arc::new(Write {
            upstream: upstream.to_string(),
            epoch,
            kind: kind.to_string(),
            entries: missing,
            outcome: Mutex::new(None),
        });
        let group = &self.group;
        let mut state = group.state.lock().unwrap_or_else(|p| p.into_inner());
        state.queue.push(write.clone());
        loop {
            if let Some(outcome) = write.outcome() {
                return outcome;
            }
            if !state.committing {
                // Lead: commit everything queued (our own write included,
                // since ours has no outcome yet and no other leader runs).
                state.committing = true;
                let batch = std::mem::take(&mut state.queue);
                drop(state);
                let lead = Lead { group, batch };
                let outcomes = self.commit_batch(&lead.batch);
                for (w, o) in lead.batch.iter().zip(outcomes) {
                    *w.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(o);
                }
                drop(lead);
                state = group.state.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state = group.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Writes `batch` in one durable transaction; the outcome of each write
    /// (all fail if the commit fails). Entries are mirrored once durable.
    fn commit_batch(&self, batch: &[Arc<Write>]) -> Vec<Result<usize, IndexError>> {
        let mut written: Vec<Vec<&(String, Entry)>> = Vec::with_capacity(batch.len());
        let committed: Result<(), IndexError> = (|| {
            let txn = self.db.begin_write().map_err(storage("begin write"))?;
            {
                let mut t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
                for w in batch {
                    let (upstream, epoch, kind) = (w.upstream.as_str(), w.epoch, w.kind.as_str());
                    let mut new = Vec::new();
                    for e in &w.entries {
                        let key = e.0.as_str();
                        let present = t
                            .get((upstream, epoch, kind, key))
                            .map_err(storage("read"))?
                            .is_some();
                        if !present {
                            t.insert((upstream, epoch, kind, key), e.1.encode().as_slice())
                                .map_err(storage("write"))?;
                            new.push(e);
                        }
                    }
                    written.push(new);
                }
            }
            txn.commit().map_err(storage("commit"))?;
            self.group.commits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })();
        match committed {
            Ok(()) => batch
                .iter()
                .zip(&written)
                .map(|(w, new)| {
                    // Mirrored once durable.
                    for (key, entry) in new {
                        self.mirror.insert(
                            mirror_key(&w.upstream, w.epoch, &w.kind, key),
                            entry.clone(),
                        );
                    }
                    Ok(new.len())
                })
                .collect(),
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Deletes every entry (of any upstream, epoch and kind) that names
    /// one of `digests`: the scrub (`bulwark store verify`) found those
    /// blobs corrupt. Returns how many were deleted. Reads the whole index.
    pub fn remove_digests(&self, digests: &[Digest]) -> Result<u64, IndexError> {
        if digests.is_empty() {
            return Ok(0);
        }
        type Key = (String, u64, String, String);
        let keys: Vec<Key> = {
            let txn = self.db.begin_read().map_err(storage("begin read"))?;
            let t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
            let mut keys = Vec::new();
            for item in t.iter().map_err(storage("read"))? {
                let (k, v) = item.map_err(storage("read"))?;
                let names = v
                    .value()
                    .get(..32)
                    .is_some_and(|d| digests.iter().any(|x| x.as_bytes() == d));
                if names {
                    let (u, e, kind, key) = k.value();
                    keys.push((u.to_string(), e, kind.to_string(), key.to_string()));
                }
            }
            keys
        };
        self.remove_keys(&keys)?;
        Ok(keys.len() as u64)
    }

    /// Deletes `keys` in one durable transaction, then from the mirror.
    fn remove_keys(&self, keys: &[(String, u64, String, String)]) -> Result<(), IndexError> {
        if keys.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(storage("begin write"))?;
        {
            let mut t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
            for (u, e, kind, key) in keys {
                t.remove((u.as_str(), *e, kind.as_str(), key.as_str()))
                    .map_err(storage("delete"))?;
            }
        }
        txn.commit().map_err(storage("commit"))?;
        self.deletions.fetch_add(1, Ordering::AcqRel);
        for (u, e, kind, key) in keys {
            self.mirror.invalidate(&mirror_key(u, *e, kind, key));
        }
        Ok(())
    }

    /// Deletes every entry of `upstream` from epochs before `epoch`.
    /// Returns how many were deleted.
    pub fn remove_before(&self, upstream: &str, epoch: u64) -> Result<u64, IndexError> {
        check_part("upstream", upstream)?;
        if epoch == 0 {
            return Ok(0);
        }
        let keys: Vec<(String, u64, String, String)> = {
            let txn = self.db.begin_read().map_err(storage("begin read"))?;
            let t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
            let range = t
                .range((upstream, 0u64, "", "")..(upstream, epoch, "", ""))
                .map_err(storage("read"))?;
            let mut keys = Vec::new();
            for item in range {
                let (k, _) = item.map_err(storage("read"))?;
                let (_, e, kind, key) = k.value();
                keys.push((upstream.to_string(), e, kind.to_string(), key.to_string()));
            }
            keys
        };
        self.remove_keys(&keys)?;
        Ok(keys.len() as u64)
    }

    /// Every `(key, entry)` of `(upstream, epoch, kind)`, in key order
    /// (what `bulwark export` carries across an air gap).
    pub fn list(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &str,
    ) -> Result<Vec<(String, Entry)>, IndexError> {
        check_part("upstream", upstream)?;
        check_part("kind", kind)?;
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let t = txn.open_table(ENTRIES).map_err(storage("open table"))?;
        let range = t
            .range((upstream, epoch, kind, "")..)
            .map_err(storage("read"))?;
        let mut out = Vec::new();
        for item in range {
            let (k, v) = item.map_err(storage("read"))?;
            let (u, e, k_kind, key) = k.value();
            if u != upstream || e != epoch || k_kind != kind {
                break;
            }
            out.push((key.to_string(), Entry::decode(v.value())?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: &[u8]) -> Entry {
        Entry::new(Digest::of(b), format!("release naming {} bytes", b.len()))
    }

    #[test]
    fn entries_are_per_upstream_epoch_and_kind_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let d = Digest::of(b"x");
        {
            let idx = ArtifactIndex::open(&path).unwrap();
            let n = idx
                .put_all("a", 1, kinds::WARG_CONTENT, &[(d.to_string(), entry(b"x"))])
                .unwrap();
            assert_eq!(n, 1);
            // Present already: nothing new.
            let n = idx
                .put_all("a", 1, kinds::WARG_CONTENT, &[(d.to_string(), entry(b"x"))])
                .unwrap();
            assert_eq!(n, 0);
        }
        let idx = ArtifactIndex::open(&path).unwrap();
        let got = idx
            .get("a", 1, kinds::WARG_CONTENT, &d.to_string())
            .unwrap()
            .unwrap();
        assert_eq!(got.digest, d);
        assert_eq!(got.proof, "release naming 1 bytes");
        assert!(idx
            .get("b", 1, kinds::WARG_CONTENT, &d.to_string())
            .unwrap()
            .is_none());
        assert!(idx
            .get("a", 2, kinds::WARG_CONTENT, &d.to_string())
            .unwrap()
            .is_none());
        assert!(idx.get("a", 1, "go.zip", &d.to_string()).unwrap().is_none());
    }

    #[test]
    fn remove_before_drops_only_older_epochs_of_that_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let idx = ArtifactIndex::open(dir.path().join("index.redb")).unwrap();
        for (up, epoch, b) in [
            ("a", 0, b"0"),
            ("a", 1, b"1"),
            ("a", 2, b"2"),
            ("b", 0, b"3"),
        ] {
            let d = Digest::of(b);
            idx.put_all(up, epoch, kinds::WARG_CONTENT, &[(d.to_string(), entry(b))])
                .unwrap();
        }
        assert_eq!(idx.remove_before("a", 2).unwrap(), 2);
        let has = |up: &str, epoch: u64, b: &[u8]| {
            idx.get(up, epoch, kinds::WARG_CONTENT, &Digest::of(b).to_string())
                .unwrap()
                .is_some()
        };
        assert!(!has("a", 0, b"0"));
        assert!(!has("a", 1, b"1"));
        assert!(has("a", 2, b"2"));
        assert!(has("b", 0, b"3"));
    }

    #[test]
    fn the_mirror_answers_lookups_and_forgets_what_was_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let idx = ArtifactIndex::open(dir.path().join("index.redb")).unwrap();
        let (x, y) = (Digest::of(b"x"), Digest::of(b"y"));
        let k = |d: &Digest| d.to_string();
        idx.put_all("a", 1, kinds::WARG_CONTENT, &[(k(&x), entry(b"x"))])
            .unwrap();
        idx.put_all("a", 2, kinds::WARG_CONTENT, &[(k(&y), entry(b"y"))])
            .unwrap();
        // Written entries are mirrored at once.
        let got = idx.get_cached("a", 1, kinds::WARG_CONTENT, &k(&x)).unwrap();
        assert_eq!(got.digest, x);
        // A reopened index mirrors what it reads.
        drop(idx);
        let idx = ArtifactIndex::open(dir.path().join("index.redb")).unwrap();
        assert!(idx
            .get_cached("a", 1, kinds::WARG_CONTENT, &k(&x))
            .is_none());
        assert!(idx
            .get("a", 1, kinds::WARG_CONTENT, &k(&x))
            .unwrap()
            .is_some());
        assert!(idx
            .get_cached("a", 1, kinds::WARG_CONTENT, &k(&x))
            .is_some());
        // Deleted entries are gone from the mirror too.
        assert_eq!(idx.remove_before("a", 2).unwrap(), 1);
        assert!(idx
            .get_cached("a", 1, kinds::WARG_CONTENT, &k(&x))
            .is_none());
        assert!(idx
            .get("a", 1, kinds::WARG_CONTENT, &k(&x))
            .unwrap()
            .is_none());
        assert!(idx
            .get("a", 2, kinds::WARG_CONTENT, &k(&y))
            .unwrap()
            .is_some());
    }

    #[test]
    fn remove_digests_drops_every_entry_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let idx = ArtifactIndex::open(dir.path().join("index.redb")).unwrap();
        let (bad, good) = (Digest::of(b"bad"), Digest::of(b"good"));
        idx.put_all(
            "a",
            1,
            "go.zip",
            &[
                ("m@v1".into(), Entry::new(bad, "r1")),
                ("m@v2".into(), Entry::new(good, "r2")),
            ],
        )
        .unwrap();
        idx.put_all(
            "b",
            3,
            kinds::WARG_CONTENT,
            &[(bad.to_string(), Entry::new(bad, "r3"))],
        )
        .unwrap();
        assert_eq!(idx.remove_digests(&[bad]).unwrap(), 2);
        assert!(idx.get("a", 1, "go.zip", "m@v1").unwrap().is_none());
        assert!(idx.get_cached("a", 1, "go.zip", "m@v1").is_none());
        assert!(idx
            .get("b", 3, kinds::WARG_CONTENT, &bad.to_string())
            .unwrap()
            .is_none());
        assert_eq!(
            idx.get("a", 1, "go.zip", "m@v2").unwrap().unwrap().digest,
            good
        );
        assert_eq!(idx.remove_digests(&[bad]).unwrap(), 0);
    }

    #[test]
    fn corrupt_entries_are_errors_not_misses() {
        assert!(Entry::decode(&[0u8; 39]).is_err());
        let e = entry(b"y");
        let back = Entry::decode(&e.encode()).unwrap();
        assert_eq!(back.digest, e.digest);
        assert_eq!(back.proof, e.proof);
    }

    #[test]
    fn one_process_at_a_time_opens_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let idx = ArtifactIndex::open(&path).unwrap();
        // A second opener (the CLI while `serve` runs) is refused, so the
        // mirror of the first sees every write.
        match ArtifactIndex::open(&path) {
            Err(IndexError::Storage { op: "open", .. }) => {}
            other => panic!("want an open error, got {:?}", other.map(|_| ())),
        }
        drop(idx);
        ArtifactIndex::open(&path).unwrap();
    }

    #[test]
    fn writes_that_wait_for_a_commit_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let idx = ArtifactIndex::open(&path).unwrap();
        const WRITERS: usize = 6;
        // Hold redb's write lock: the first writer leads and blocks in
        // its commit; the others queue behind it.
        let held = idx.db.begin_write().unwrap();
        let threads: Vec<_> = (0..WRITERS)
            .map(|i| {
                let writer = idx.clone();
                let t = std::thread::spawn(move || {
                    let b = format!("blob {i}");
                    let e = Entry::new(Digest::of(b.as_bytes()), "r");
                    writer.put_all("a", 1, kinds::GOMOD_MOD, &[(format!("m{i}@v1"), e)])
                });
                // Writer 0 leads (it took an empty queue and blocks in its
                // commit) before writers 1..=i queue up behind it.
                let queued = i;
                loop {
                    let st = idx.group.state.lock().unwrap();
                    if st.committing && st.queue.len() == queued {
                        break;
                    }
                    drop(st);
                    std::thread::yield_now();
                }
                t
            })
            .collect();
        // Nothing is acknowledged before its commit.
        assert!(threads.iter().all(|t| !t.is_finished()));
        drop(held);
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), 1);
        }
        // Writer 0's commit, then one commit for the five that waited.
        assert_eq!(idx.group.commits.load(Ordering::Relaxed), 2);
        drop(idx);
        let idx = ArtifactIndex::open(&path).unwrap();
        for i in 0..WRITERS {
            let b = format!("blob {i}");
            let got = idx
                .get("a", 1, kinds::GOMOD_MOD, &format!("m{i}@v1"))
                .unwrap();
            assert_eq!(got.unwrap().digest, Digest::of(b.as_bytes()));
        }
    }

    const CHILD_DIR: &str = "BULWARK_INDEX_CRASH_DIR";

    #[test]
    #[ignore = "child process of a crash test"]
    fn crash_child_writes_entries_from_many_threads() {
        let Ok(dir) = std::env::var(CHILD_DIR) else {
            return;
        };
        let idx = ArtifactIndex::open(std::path::Path::new(&dir).join("index.redb")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let idx = idx.clone();
                std::thread::spawn(move || {
                    for n in 0.. {
                        let key = format!("t{t}n{n}");
                        let e = Entry::new(Digest::of(key.as_bytes()), "r");
                        idx.put_all("a", 1, kinds::GOMOD_ZIP, &[(key.clone(), e)])
                            .unwrap();
                        // Acknowledged: printed only after put_all returned.
                        println!("ACKED {key}");
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        unreachable!("the parent kills this process");
    }

    #[test]
    fn every_acknowledged_group_write_survives_a_kill() {
        use crate::store::test_child::{test_name, ChildTest};
        let dir = tempfile::tempdir().unwrap();
        let name = test_name(
            module_path!(),
            "crash_child_writes_entries_from_many_threads",
        );
        let mut child = ChildTest::spawn(&name, &[(CHILD_DIR, dir.path().to_str().unwrap())]);
        let acked: Vec<String> = (0..200).map(|_| child.wait_for("ACKED ")).collect();
        child.kill();
        let idx = ArtifactIndex::open(dir.path().join("index.redb")).unwrap();
        for key in &acked {
            let got = idx.get("a", 1, kinds::GOMOD_ZIP, key).unwrap();
            assert_eq!(
                got.map(|e| e.digest),
                Some(Digest::of(key.as_bytes())),
                "{key} was acknowledged"
            );
        }
    }
}
