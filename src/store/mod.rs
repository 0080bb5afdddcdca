//! The store layer: the one place that owns bytes on disk.
//!
//! - [`blobs`]: the content-addressed blob store ([`BlobStore`], with the
//!   filesystem backend [`FsBlobStore`]). Protocol fronts put content here
//!   only through the verifier, and read it back by digest.
//! - [`digest`]: the `sha256:<hex>` names of blobs.
//! - [`index`]: the artifact index ([`ArtifactIndex`], `<data_dir>/index.redb`):
//!   per (upstream, epoch, kind, key), the digest a verified record names
//!   and what proved it. A front serves a stored blob only under an entry.
//!
//! Trust state (accepted checkpoints, evidence, quarantine) lives in
//! `verify::trust`, which owns its redb file; nothing here writes it.
//!
//! The [`BlobStore`] trait is object safe (`Arc<dyn BlobStore>`) so an
//! S3-compatible backend can sit beside the filesystem one. Its contract,
//! which every backend must keep:
//!
//! - A blob is visible under a digest only if its bytes hash to that digest:
//!   `put` checks before anything becomes visible and refuses a mismatch
//!   with [`StoreError::DigestMismatch`], which names both digests.
//! - A put that fails or is interrupted (error, dropped future, crash)
//!   leaves nothing visible.
//! - Concurrent puts of one digest are safe: all succeed and one good blob
//!   remains.
//! - Reads are bounded: a blob larger than the backend's size limit is
//!   refused, never read into memory. Content served to clients is read
//!   with [`BlobStore::get_stream`], whose memory cost does not grow with
//!   the blob's size.

pub mod blobs;
pub mod digest;
pub mod hot;
pub mod index;
mod read;
mod scrub;
#[cfg(test)]
pub(crate) mod test_child;
pub mod versioned;

pub use blobs::{FsBlobConfig, FsBlobStore, Spooled, VerifyReport};
pub use digest::{Digest, DigestError};
pub use index::{ArtifactIndex, IndexError};
pub use read::{file_stream, ByteStream, READ_BUDGET, READ_CHUNK};
pub use scrub::{scrub, ScrubReport};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::path::PathBuf;

/// A stored blob opened for reading: its length, and its bytes either
/// already in memory (small blobs), as an open file read chunk by chunk on
/// demand, or as a stream of chunks.
///
/// [`Blob::range`] narrows it to a byte range without reading what it
/// skips (a file is read from the range's first byte), so HTTP `Range`
/// answers and `HEAD` cost no reads of unwanted bytes.
pub struct Blob {
    len: u64,
    body: BlobBody,
}

enum BlobBody {
    Memory(Bytes),
    /// `len` bytes of `file` from `offset`.
    File {
        file: std::fs::File,
        path: PathBuf,
        offset: u64,
    },
    Stream(ByteStream<'static>),
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("len", &self.len)
            .field("in_memory", &matches!(self.body, BlobBody::Memory(_)))
            .finish()
    }
}

impl Blob {
    /// A blob held in memory.
    pub fn from_bytes(bytes: Bytes) -> Blob {
        Blob {
            len: bytes.len() as u64,
            body: BlobBody::Memory(bytes),
        }
    }

    /// A blob of `len` bytes read from `stream`; the stream yields exactly
    /// `len` bytes or fails.
    pub fn from_stream(len: u64, stream: ByteStream<'static>) -> Blob {
        Blob {
            len,
            body: BlobBody::Stream(stream),
        }
    }

    /// The first `len` bytes of an open file (of at least that length),
    /// read chunk by chunk when streamed; `path` names it in errors.
    pub(crate) fn from_file(file: std::fs::File, path: PathBuf, len: u64) -> Blob {
        Blob {
            len,
            body: BlobBody::File {
                file,
                path,
                offset: 0,
            },
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its bytes if they are in memory (small blobs).
    pub fn in_memory(&self) -> Option<&Bytes> {
        match &self.body {
            BlobBody::Memory(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes `start..start + len` of the blob (clamped to its end).
    /// Nothing is read: a file is later read from `start`, bytes in memory
    /// are shared. (A blob that is only a stream skips what it must, as
    /// it streams.)
    pub fn range(self, start: u64, len: u64) -> Blob {
        let start = start.min(self.len);
        let len = len.min(self.len - start);
        let body = match self.body {
            BlobBody::Memory(b) => {
                // start + len <= b.len(), which is a usize.
                let (s, e) = (start as usize, (start + len) as usize);
                BlobBody::Memory(b.slice(s..e))
            }
            BlobBody::File { file, path, offset } => BlobBody::File {
                file,
                path,
                offset: offset + start,
            },
            BlobBody::Stream(s) => BlobBody::Stream(skip_stream(s, start)),
        };
        Blob { len, body }
    }

    /// Its bytes as a stream of chunks (at most [`READ_CHUNK`] bytes each
    /// when read from a file).
    pub fn into_stream(self) -> ByteStream<'static> {
        match self.body {
            BlobBody::Memory(b) => Box::pin(futures_util::stream::once(async move { Ok(b) })),
            BlobBody::File { file, path, offset } => {
                read::file_stream(file, path, offset, self.len)
            }
            BlobBody::Stream(s) => s,
        }
    }
}

/// `stream` without its first `skip` bytes.
fn skip_stream(stream: ByteStream<'static>, skip: u64) -> ByteStream<'static> {
    use futures_util::StreamExt as _;
    if skip == 0 {
        return stream;
    }
    Box::pin(
        stream
            .scan(skip, |left, chunk| {
                let out = chunk.map(|mut c| {
                    let drop = usize::try_from(*left).unwrap_or(usize::MAX).min(c.len());
                    *left -= drop as u64;
                    bytes::Buf::advance(&mut c, drop);
                    c
                });
                std::future::ready(Some(out))
            })
            .filter(|c| std::future::ready(!matches!(c, Ok(b) if b.is_empty()))),
    )
}

/// What a successful put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The blob was written by this call.
    New,
    /// A blob with this digest was already stored (by an earlier or a
    /// concurrent put); nothing was written.
    Existing,
}

/// Content-addressed blob storage. See the module documentation for the
/// contract every backend keeps.
pub trait BlobStore: Send + Sync + 'static {
    /// The blob named `digest`, or `None` if it is not stored. The bytes
    /// returned hash to `digest`.
    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>>;

    /// The blob named `digest` opened for reading, or `None` if it is not
    /// stored; the memory it costs does not grow with its size. Its bytes
    /// are the ones that hashed to `digest` when they were stored.
    fn get_stream<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<Blob>, StoreError>>;

    /// Whether a blob named `digest` is stored.
    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Stores `bytes` under `digest` if they hash to it; otherwise stores
    /// nothing and fails with [`StoreError::DigestMismatch`].
    fn put<'a>(
        &'a self,
        digest: &'a Digest,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Stored, StoreError>>;

    /// Stores a body that arrives in chunks (large content), hashing it as
    /// it is written. Nothing becomes visible unless the whole body arrived,
    /// stayed within the size limit, and hashes to `digest`. If `digest` is
    /// already stored the body is not read and the result is
    /// [`Stored::Existing`].
    fn put_stream<'a>(
        &'a self,
        digest: &'a Digest,
        body: ByteStream<'a>,
    ) -> BoxFuture<'a, Result<Stored, StoreError>>;
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bytes offered for a digest hash to a different one.
    #[error("content store: bytes for {expected} hash to {seen}; nothing was stored")]
    DigestMismatch { expected: Digest, seen: Digest },
    /// A blob is (or would be) larger than the configured limit.
    #[error(
        "content store: blob {digest} is at least {seen} bytes, more than the {limit} allowed"
    )]
    TooLarge {
        digest: Digest,
        limit: u64,
        seen: u64,
    },
    /// A stored file does not hash to its name (disk corruption or
    /// tampering). It was moved aside to `moved_to` and is not served.
    #[error(
        "content store: stored blob {digest} hashes to {seen}; moved aside to {}",
        moved_to.display()
    )]
    Corrupt {
        digest: Digest,
        seen: Digest,
        moved_to: PathBuf,
    },
    /// The body stream handed to `put_stream` failed.
    #[error("content store: body for {digest} failed after {received} bytes: {source}")]
    Body {
        digest: Digest,
        received: u64,
        source: std::io::Error,
    },
    /// A filesystem operation failed.
    #[error("content store: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A blocking task of the store panicked or was cancelled.
    #[error("content store: background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// A short stable name for the check or operation that failed, for
    /// metrics labels ("digest", "size", "corrupt", "body", "io", "task").
    pub fn check(&self) -> &'static str {
        match self {
            StoreError::DigestMismatch { .. } => "digest",
            StoreError::TooLarge { .. } => "size",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::Body { .. } => "body",
            StoreError::Io { .. } => "io",
            StoreError::Task(_) => "task",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ranged_blob_reads_only_its_range_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FsBlobConfig {
            memory_max_object: 0,
            ..FsBlobConfig::default()
        };
        let store = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let data: Vec<u8> = (0..3 * READ_CHUNK as u32 + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        let d = Digest::of(&data);
        store.put(&d, Bytes::from(data.clone())).await.unwrap();
        let blob = store.get_stream(&d).await.unwrap().unwrap();
        assert!(blob.in_memory().is_none());
        let start = READ_CHUNK as u64 + 3;
        let part = blob.range(start, 2 * READ_CHUNK as u64);
        assert_eq!(part.len(), 2 * READ_CHUNK as u64);
        // Exactly the range's bytes, read from its first byte on.
        use futures_util::StreamExt as _;
        let mut got = Vec::new();
        let mut s = part.into_stream();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, &data[start as usize..start as usize + 2 * READ_CHUNK]);
        // Memory blobs slice without copying; a range past the end is empty.
        let m = Blob::from_bytes(Bytes::from_static(b"0123456789")).range(8, 5);
        assert_eq!(m.in_memory().unwrap().as_ref(), b"89");
        assert_eq!(
            Blob::from_bytes(Bytes::from_static(b"01"))
                .range(5, 1)
                .len(),
            0
        );
    }
}
