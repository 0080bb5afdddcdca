//! The filesystem blob store: content named by SHA-256 digest under the data
//! directory, with a bounded memory tier for hot blobs ([`super::hot`]).
//!
//! Called by the protocol fronts (through the verifier) to keep verified
//! content and to serve it again; `FsBlobStore` implements
//! [`BlobStore`](super::BlobStore).
//!
//! Layout under `<data_dir>/blobs/`:
//!
//! ```text
//! sha256/ab/abcd…   one file per blob, named by its 64 hex digits
//! tmp/              writes in progress: <hex>.<pid>.<random>.tmp
//! corrupt/          stored files found not to hash to their name
//! ```
//!
//! How a write stays safe:
//!
//! 1. The bytes go to a new, uniquely named file in `tmp/` (same filesystem
//!    as `sha256/`, so the final rename is atomic), hashed as they are
//!    written. The writer holds an exclusive `flock` on its temporary file.
//! 2. The file is fsynced; only if its digest is the expected one is it
//!    renamed to `sha256/ab/<hex>`, and the shard directory is fsynced.
//!    A blob is therefore never visible under a digest it does not hash to.
//! 3. Any failure, a dropped future or a crash leaves at most a file in
//!    `tmp/`, which is never read as a blob. Opening the store removes
//!    every temporary file no live writer holds locked.
//! 4. Concurrent writers of one digest each write their own temporary file;
//!    rename is atomic and replaces equal bytes with equal bytes, so readers
//!    see either no blob or a good one.
//!
//! Reads are bounded by `max_blob_size` (checked on the file's length when
//! it is opened). Blobs are hashed once, while written; content served to
//! clients is read with [`FsBlobStore::get_stream`], which streams the file
//! in chunks of [`READ_CHUNK`] bytes (reads from any offset:
//! see [`Blob::range`]), so serving a blob costs one chunk of memory
//! whatever its size, and no re-hash. Blobs of at most `memory_max_object`
//! are read whole instead, when the memory tier's byte budget has room,
//! and kept there ([`HotBlobs`]), so a hot blob costs no file access; the
//! budget counts every buffer of the tier while it lives, cached or still
//! being sent, so it bounds the tier's memory whatever the clients do.
//! [`FsBlobStore::get`] (small metadata such as tiles, read whole)
//! re-hashes what it reads from disk when `verify_on_read` is set: a file
//! that does not hash to its name is moved to `corrupt/` and reported,
//! never served. [`FsBlobStore::verify_all`] (`bulwark store
//! verify`) is the scrub: it re-hashes every blob.

use super::hot::HotBlobs;
use super::read::READ_CHUNK;
use super::{Blob, BlobStore, ByteStream, Digest, StoreError, Stored};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use rand_core::RngCore;
use sha2::{Digest as _, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Streamed bodies are written in batches of about this many bytes.
const WRITE_BATCH: usize = 256 * 1024;

/// Settings of the filesystem blob store.
#[derive(Debug, Clone)]
pub struct FsBlobConfig {
    /// Largest blob accepted by `put` and read by `get`, in bytes.
    /// Default 512 MiB (Go module zips may be up to 500 MiB).
    pub max_blob_size: u64,
    /// Byte budget of the memory tier ([`HotBlobs`]): every buffer it
    /// holds, cached or still being sent; 0 turns it off. Default 64 MiB
    /// (`server.blob_cache_bytes`).
    pub memory_budget: u64,
    /// Largest blob kept in the memory tier (and read whole when the
    /// budget has room); larger blobs are streamed from their file. At
    /// most half of `memory_budget`. Default 16 MiB
    /// (`server.blob_cache_max_object`).
    pub memory_max_object: u64,
    /// Re-hash blobs read whole from disk by `get` (small metadata such as
    /// tiles) before returning them. Default true. Content opened with
    /// `get_stream` is never re-hashed: it was hashed while written, and
    /// `bulwark store verify` re-hashes everything on demand.
    pub verify_on_read: bool,
}

impl Default for FsBlobConfig {
    fn default() -> Self {
        FsBlobConfig {
            max_blob_size: 512 * 1024 * 1024,
            memory_budget: super::hot::DEFAULT_BUDGET,
            memory_max_object: super::hot::DEFAULT_MAX_OBJECT,
            verify_on_read: true,
        }
    }
}

/// What [`FsBlobStore::verify_all`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs that hash to their names.
    pub ok: u64,
    /// Blobs that did not: (name, what they hash to, where they were moved).
    pub corrupt: Vec<(Digest, Digest, PathBuf)>,
    /// Files under `sha256/` whose names are not digests (left alone).
    pub unknown: Vec<PathBuf>,
}

/// The filesystem blob store. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FsBlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    objects: PathBuf,
    tmp: PathBuf,
    corrupt: PathBuf,
    cfg: FsBlobConfig,
    hot: HotBlobs,
}

impl std::fmt::Debug for FsBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsBlobStore")
            .field("objects", &self.inner.objects)
            .field("cfg", &self.inner.cfg)
            .finish()
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

impl FsBlobStore {
    /// Opens (creating if needed) the blob store under `<data_dir>/blobs`,
    /// and removes temporary files left by writers that no longer run.
    pub async fn open(
        data_dir: impl Into<PathBuf>,
        cfg: FsBlobConfig,
    ) -> Result<FsBlobStore, StoreError> {
        let root = data_dir.into().join("blobs");
        let objects = root.join("sha256");
        let tmp = root.join("tmp");
        let corrupt = root.join("corrupt");
        let (o, t, c) = (objects.clone(), tmp.clone(), corrupt.clone());
        let removed = blocking(move || {
            for dir in [&o, &t, &c] {
                fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            }
            sync_dir(&root).map_err(io_err("fsync directory", &root))?;
            create_shards(&o)?;
            remove_stale_temps(&t)
        })
        .await?;
        if removed > 0 {
            tracing::info!(
                dir = %tmp.display(),
                removed,
                "removed temporary files of interrupted blob writes"
            );
        }
        let hot = HotBlobs::new(cfg.memory_budget, cfg.memory_max_object);
        Ok(FsBlobStore {
            inner: Arc::new(Inner {
                objects,
                tmp,
                corrupt,
                cfg,
                hot,
            }),
        })
    }

    /// Where the blob named `digest` lives (whether or not it exists).
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.inner.objects, digest)
    }

    /// The SHA-512 of the stored blob `digest` (npm names tarballs by
    /// it), read in chunks.
    pub fn sha512_of(&self, digest: &Digest) -> io::Result<[u8; 64]> {
        use sha2::Digest as _;
        let mut f = File::open(self.path_of(digest))?;
        let mut h = sha2::Sha512::new();
        io::copy(&mut f, &mut h)?;
        Ok(h.finalize().into())
    }

    /// The directory of writes in progress.
    pub fn temp_dir(&self) -> &Path {
        &self.inner.tmp
    }

    /// The store's settings.
    pub fn config(&self) -> &FsBlobConfig {
        &self.inner.cfg
    }

    /// Keeps a copy of a whole blob in the memory tier if it belongs
    /// there and the budget has room.
    fn remember(&self, digest: &Digest, bytes: &Bytes) {
        self.inner.hot.offer(digest, bytes);
    }

    /// Opens the blob's file and checks its length against the limit;
    /// `None` if it is not stored. Runs on the blocking pool.
    fn open_file(inner: &Inner, d: &Digest) -> Result<Option<(File, PathBuf, u64)>, StoreError> {
        let path = blob_path(&inner.objects, d);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let limit = inner.cfg.max_blob_size;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        if len > limit {
            return Err(StoreError::TooLarge {
                digest: *d,
                limit,
                seen: len,
            });
        }
        Ok(Some((file, path, len)))
    }

    /// Reads a whole opened file of `len` bytes (at most the limit) and,
    /// if `verify`, re-hashes it. Runs on the blocking pool.
    fn read_whole(
        inner: &Inner,
        d: &Digest,
        mut file: File,
        path: &Path,
        len: u64,
        verify: bool,
    ) -> Result<Bytes, StoreError> {
        let limit = inner.cfg.max_blob_size;
        // `len` is at most the configured limit, so this allocation is
        // bounded; `take` keeps a file that grew after the stat bounded.
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        (&mut file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(io_err("read", path))?;
        if buf.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                digest: *d,
                limit,
                seen: buf.len() as u64,
            });
        }
        if verify {
            let seen = Digest::of(&buf);
            if seen != *d {
                let moved_to = move_aside(&inner.corrupt, path, d)?;
                tracing::error!(
                    digest = %d,
                    seen = %seen,
                    moved_to = %moved_to.display(),
                    "stored blob does not hash to its name; moved aside"
                );
                return Err(StoreError::Corrupt {
                    digest: *d,
                    seen,
                    moved_to,
                });
            }
        }
        Ok(Bytes::from(buf))
    }

    /// Reads and (if configured) verifies one blob from disk.
    async fn read(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        let inner = self.inner.clone();
        let d = *digest;
        blocking(move || match FsBlobStore::open_file(&inner, &d)? {
            None => Ok(None),
            Some((file, path, len)) => {
                let verify = inner.cfg.verify_on_read;
                FsBlobStore::read_whole(&inner, &d, file, &path, len, verify).map(Some)
            }
        })
        .await
    }

    /// See [`BlobStore::get`]. Reads the whole blob into memory: meant for
    /// small objects (tiles, records); serve content with
    /// [`FsBlobStore::get_stream`].
    pub async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, StoreError> {
        if let Some(b) = self.inner.hot.get(digest) {
            return Ok(Some(b));
        }
        let found = self.read(digest).await?;
        if let Some(b) = &found {
            self.remember(digest, b);
        }
        Ok(found)
    }

    /// See [`BlobStore::get_stream`]: a blob of at most
    /// `memory_max_object` from the memory tier, or read whole into it when
    /// its budget has room; any other as a stream over its file, read
    /// chunk by chunk as the consumer asks (never more than [`READ_CHUNK`]
    /// bytes at a time).
    pub async fn get_stream(&self, digest: &Digest) -> Result<Option<Blob>, StoreError> {
        if let Some(b) = self.inner.hot.get(digest) {
            return Ok(Some(Blob::from_bytes(b)));
        }
        let inner = self.inner.clone();
        let d = *digest;
        let opened = blocking(move || {
            let Some((file, path, len)) = FsBlobStore::open_file(&inner, &d)? else {
                return Ok(None);
            };
            if let Some(reservation) = inner.hot.reserve(len) {
                // Not re-hashed: content was hashed while written (the
                // scrub, `bulwark store verify`, re-hashes it on demand).
                let buf = FsBlobStore::read_reserved(file, &path, len)?;
                return Ok(Some(Err((buf, reservation))));
            }
            Ok(Some(Ok((file, path, len))))
        })
        .await?;
        match opened {
            None => Ok(None),
            Some(Err((buf, reservation))) => {
                let bytes = self.inner.hot.keep(digest, buf, reservation);
                Ok(Some(Blob::from_bytes(bytes)))
            }
            Some(Ok((file, path, len))) => Ok(Some(Blob::from_file(file, path, len))),
        }
    }

    /// Reads the `len` bytes of an opened blob file (whose length was just
    /// checked against the limit) into a buffer of the memory tier; a file
    /// that is not `len` bytes long now is an error, never a short blob.
    /// Runs on the blocking pool.
    fn read_reserved(file: File, path: &Path, len: u64) -> Result<Vec<u8>, StoreError> {
        let want = usize::try_from(len).map_err(|_| StoreError::Io {
            op: "read",
            path: path.to_path_buf(),
            source: io::Error::other("blob length does not fit in memory"),
        })?;
        let mut buf = Vec::with_capacity(want);
        file.take(len.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(io_err("read", path))?;
        if buf.len() != want {
            return Err(io_err("read", path)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "content store: {} is {} bytes, not the {len} it had when opened",
                    path.display(),
                    buf.len()
                ),
            )));
        }
        Ok(buf)
    }

    /// Re-hashes every stored blob (`bulwark store verify`): a file that
    /// does not hash to its name is moved to `corrupt/` and listed. Reads
    /// each file in [`READ_CHUNK`]-byte pieces; runs on the blocking pool.
    pub async fn verify_all(&self) -> Result<VerifyReport, StoreError> {
        let inner = self.inner.clone();
        let report = blocking(move || {
            let mut report = VerifyReport::default();
            let objects = &inner.objects;
            for shard in fs::read_dir(objects).map_err(io_err("list", objects))? {
                let shard = shard.map_err(io_err("list", objects))?.path();
                if !shard.is_dir() {
                    continue;
                }
                for entry in fs::read_dir(&shard).map_err(io_err("list", &shard))? {
                    let path = entry.map_err(io_err("list", &shard))?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    let Ok(d) = Digest::parse_hex(name) else {
                        report.unknown.push(path);
                        continue;
                    };
                    let mut file = File::open(&path).map_err(io_err("open", &path))?;
                    let mut hasher = Sha256::new();
                    let mut buf = vec![0u8; READ_CHUNK];
                    loop {
                        let n = file.read(&mut buf).map_err(io_err("read", &path))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                    }
                    let seen = Digest::from_bytes(hasher.finalize().into());
                    if seen == d {
                        report.ok += 1;
                    } else {
                        let moved_to = move_aside(&inner.corrupt, &path, &d)?;
                        report.corrupt.push((d, seen, moved_to));
                    }
                }
            }
            Ok(report)
        })
        .await?;
        // Nor served from memory.
        for (d, _, _) in &report.corrupt {
            self.inner.hot.invalidate(d);
        }
        Ok(report)
    }

    /// See [`BlobStore::contains`].
    pub async fn contains(&self, digest: &Digest) -> Result<bool, StoreError> {
        if self.inner.hot.contains(digest) {
            return Ok(true);
        }
        let path = self.path_of(digest);
        tokio::fs::try_exists(&path)
            .await
            .map_err(io_err("stat", &path))
    }

    /// See [`BlobStore::put`].
    pub async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<Stored, StoreError> {
        let limit = self.inner.cfg.max_blob_size;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                digest: *digest,
                limit,
                seen: bytes.len() as u64,
            });
        }
        let inner = self.inner.clone();
        let d = *digest;
        let b = bytes.clone();
        let stored = blocking(move || {
            let seen = Digest::of(&b);
            if seen != d {
                return Err(StoreError::DigestMismatch { expected: d, seen });
            }
            let target = blob_path(&inner.objects, &d);
            if target.exists() {
                return Ok(Stored::Existing);
            }
            let mut temp = TempBlob::create(&inner.tmp, &d.hex())?;
            temp.file
                .write_all(&b)
                .map_err(io_err("write", &temp.path))?;
            temp.publish(&inner.objects, &d, false)
        })
        .await?;
        self.remember(digest, &bytes);
        Ok(stored)
    }

    /// See [`BlobStore::put_stream`].
    pub async fn put_stream(
        &self,
        digest: &Digest,
        body: ByteStream<'_>,
    ) -> Result<Stored, StoreError> {
        if self.contains(digest).await? {
            return Ok(Stored::Existing);
        }
        let inner = self.inner.clone();
        let d = *digest;
        let writer = blocking(move || StreamWriter::create(&inner.tmp, &d)).await?;
        let (w, _) = self.fill(writer, body, d).await?;
        let objects = self.inner.objects.clone();
        blocking(move || w.finish(&objects, &d, false)).await
    }

    /// Writes a body into a temporary file in batches, bounded by
    /// `max_blob_size` while it is read; `label` names the blob in errors.
    async fn fill(
        &self,
        writer: StreamWriter,
        mut body: ByteStream<'_>,
        label: Digest,
    ) -> Result<(StreamWriter, u64), StoreError> {
        let limit = self.inner.cfg.max_blob_size;
        let mut writer = Some(writer);
        let mut buf = BytesMut::new();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| StoreError::Body {
                digest: label,
                received,
                source,
            })?;
            received = received.saturating_add(chunk.len() as u64);
            if received > limit {
                return Err(StoreError::TooLarge {
                    digest: label,
                    limit,
                    seen: received,
                });
            }
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_BATCH {
                let batch = buf.split().freeze();
                writer = Some(write_batch(writer.take(), batch).await?);
            }
        }
        let w = write_batch(writer.take(), buf.freeze()).await?;
        Ok((w, received))
    }
}

/// Writes one batch on the blocking pool and hands the writer back. If the
/// calling future is dropped meanwhile, the writer (and its temporary file)
/// is dropped when the batch finishes.
/// Bytes written to a temporary file of the store and hashed on the way,
/// but not in the store: for content whose check needs the whole file
/// (a Go module zip's `h1:` reads its central directory first). The caller
/// reads it ([`Spooled::reader`]), checks it, and then either publishes it
/// ([`FsBlobStore::publish_spooled`]) or drops it, which removes the file.
/// Nothing unverified is ever visible under a digest.
#[derive(Debug)]
pub struct Spooled {
    writer: StreamWriter,
    digest: Digest,
    len: u64,
    /// Whether the file was fsynced ([`FsBlobStore::sync_spooled`]).
    synced: bool,
}

impl Spooled {
    /// The SHA-256 of the spooled bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// How many bytes were spooled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was spooled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new handle on the file for reading (use positional reads).
    pub fn reader(&self) -> Result<File, StoreError> {
        self.writer
            .temp
            .file
            .try_clone()
            .map_err(io_err("reopen", &self.writer.temp.path))
    }
}

impl FsBlobStore {
    /// Writes a stream to a temporary file, hashing it (bounded by
    /// `max_blob_size` while it is read); see [`Spooled`].
    pub async fn spool(&self, body: ByteStream<'_>) -> Result<Spooled, StoreError> {
        let inner = self.inner.clone();
        let writer = blocking(move || StreamWriter::spool(&inner.tmp)).await?;
        // Not known yet: errors name the all-zero digest.
        let (w, len) = self.fill(writer, body, Digest::from_bytes([0; 32])).await?;
        let digest = Digest::from_bytes(w.hasher.clone().finalize().into());
        Ok(Spooled {
            writer: w,
            digest,
            len,
            synced: false,
        })
    }

    /// fsyncs spooled bytes before they are checked (it may run while the
    /// check reads them): publishing them then only renames them into
    /// place and fsyncs the directory. Bytes that fail their check are
    /// removed all the same.
    pub async fn sync_spooled(&self, spooled: &mut Spooled) -> Result<(), StoreError> {
        let file = spooled.reader()?;
        let path = spooled.writer.temp.path.clone();
        blocking(move || file.sync_all().map_err(io_err("fsync", &path))).await?;
        spooled.synced = true;
        Ok(())
    }

    /// Publishes checked spooled bytes under their digest (fsync unless
    /// [`FsBlobStore::sync_spooled`] did, rename, fsync the directory).
    pub async fn publish_spooled(&self, spooled: Spooled) -> Result<Stored, StoreError> {
        let objects = self.inner.objects.clone();
        let d = spooled.digest;
        let synced = spooled.synced;
        blocking(move || spooled.writer.finish(&objects, &d, synced)).await
    }
}

async fn write_batch(w: Option<StreamWriter>, batch: Bytes) -> Result<StreamWriter, StoreError> {
    let mut w = w.ok_or_else(|| StoreError::Task("blob writer lost".to_string()))?;
    if batch.is_empty() {
        return Ok(w);
    }
    blocking(move || {
        w.write(&batch)?;
        Ok(w)
    })
    .await
}

impl BlobStore for FsBlobStore {
    fn get<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<Option<Bytes>, StoreError>> {
        Box::pin(FsBlobStore::get(self, digest))
    }

    fn get_stream<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<Blob>, StoreError>> {
        Box::pin(FsBlobStore::get_stream(self, digest))
    }

    fn contains<'a>(&'a self, digest: &'a Digest) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(FsBlobStore::contains(self, digest))
    }

    fn put<'a>(
        &'a self,
        digest: &'a Digest,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Stored, StoreError>> {
        Box::pin(FsBlobStore::put(self, digest, bytes))
    }

    fn put_stream<'a>(
        &'a self,
        digest: &'a Digest,
        body: ByteStream<'a>,
    ) -> BoxFuture<'a, Result<Stored, StoreError>> {
        Box::pin(FsBlobStore::put_stream(self, digest, body))
    }
}

fn blob_path(objects: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    objects.join(&hex[..2]).join(hex)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates the 256 shard directories (`sha256/00` to `sha256/ff`) that
/// are missing, and makes their names durable (one fsync of `objects`,
/// only if one was created): a first write into a shard then costs no
/// directory creation and no fsync of `objects` on its way.
fn create_shards(objects: &Path) -> Result<(), StoreError> {
    let mut created = false;
    for i in 0..=255u8 {
        let shard = objects.join(format!("{i:02x}"));
        match fs::create_dir(&shard) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", &shard)(e)),
        }
    }
    if created {
        sync_dir(objects).map_err(io_err("fsync directory", objects))?;
    }
    Ok(())
}

/// Removes every file in `tmp` whose writer is gone (its `flock` can be
/// taken). Returns how many were removed.
fn remove_stale_temps(tmp: &Path) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in fs::read_dir(tmp).map_err(io_err("list", tmp))? {
        let path = entry.map_err(io_err("list", tmp))?.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // The lock API is in std since Rust 1.89; redb 4.5 already needs
        // 1.90, so the crate's real minimum is above the declared one.
        #[allow(clippy::incompatible_msrv)]
        let free = file.try_lock().is_ok();
        if free {
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove stale temporary file", &path)(e)),
            }
        }
    }
    if removed > 0 {
        sync_dir(tmp).map_err(io_err("fsync directory", tmp))?;
    }
    Ok(removed)
}

/// Moves a stored file that failed verification into `corrupt/`.
fn move_aside(corrupt: &Path, path: &Path, digest: &Digest) -> Result<PathBuf, StoreError> {
    let to = corrupt.join(format!(
        "{}.{:016x}",
        digest.hex(),
        rand_core::OsRng.next_u64()
    ));
    fs::rename(path, &to).map_err(io_err("move corrupt blob", path))?;
    Ok(to)
}

/// A temporary file in `tmp/`, locked by this writer and removed on drop
/// unless it was published.
#[derive(Debug)]
struct TempBlob {
    file: File,
    path: PathBuf,
    published: bool,
}

impl TempBlob {
    /// A fresh, locked temporary file named after `stem` (the digest it
    /// should hash to, or `spool` while that is not known yet).
    fn create(tmp: &Path, stem: &str) -> Result<TempBlob, StoreError> {
        let pid = std::process::id();
        let mut last = None;
        for _ in 0..8 {
            let name = format!("{stem}.{pid}.{:016x}.tmp", rand_core::OsRng.next_u64());
            let path = tmp.join(name);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    // A cleaner may hold the lock for an instant before it
                    // removes the file; then try another name.
                    #[allow(clippy::incompatible_msrv)]
                    let locked = file.try_lock().is_ok();
                    if locked {
                        return Ok(TempBlob {
                            file,
                            path,
                            published: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(io_err("create temporary file", &path)(e)),
            }
        }
        Err(StoreError::Io {
            op: "create temporary file",
            path: tmp.to_path_buf(),
            source: last
                .unwrap_or_else(|| io::Error::other("could not lock a fresh temporary file")),
        })
    }

    /// fsyncs the file (unless the caller did: `synced`), renames it to
    /// its digest's path and fsyncs the shard directory. The caller has
    /// checked that the bytes hash to `digest`.
    fn publish(
        mut self,
        objects: &Path,
        digest: &Digest,
        synced: bool,
    ) -> Result<Stored, StoreError> {
        if !synced {
            self.file.sync_all().map_err(io_err("fsync", &self.path))?;
        }
        let target = blob_path(objects, digest);
        let shard = target.parent().unwrap_or(objects);
        match fs::create_dir(shard) {
            Ok(()) => sync_dir(objects).map_err(io_err("fsync directory", objects))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create directory", shard)(e)),
        }
        if target.exists() {
            // Another writer got there first; its bytes are equal to ours.
            return Ok(Stored::Existing);
        }
        fs::rename(&self.path, &target).map_err(io_err("rename into place", &self.path))?;
        self.published = true;
        sync_dir(shard).map_err(io_err("fsync directory", shard))?;
        Ok(Stored::New)
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A temporary file being written chunk by chunk while it is hashed.
#[derive(Debug)]
struct StreamWriter {
    temp: TempBlob,
    hasher: Sha256,
}

impl StreamWriter {
    fn spool(tmp: &Path) -> Result<StreamWriter, StoreError> {
        Ok(StreamWriter {
            temp: TempBlob::create(tmp, "spool")?,
            hasher: Sha256::new(),
        })
    }

    fn create(tmp: &Path, digest: &Digest) -> Result<StreamWriter, StoreError> {
        Ok(StreamWriter {
            temp: TempBlob::create(tmp, &digest.hex())?,
            hasher: Sha256::new(),
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(chunk);
        self.temp
            .file
            .write_all(chunk)
            .map_err(io_err("write", &self.temp.path))
    }

    /// Publishes the file if it hashes to `digest` (fsynced first unless
    /// `synced`).
    fn finish(self, objects: &Path, digest: &Digest, synced: bool) -> Result<Stored, StoreError> {
        let seen = Digest::from_bytes(self.hasher.finalize().into());
        if seen != *digest {
            // Dropping `temp` removes the file.
            return Err(StoreError::DigestMismatch {
                expected: *digest,
                seen,
            });
        }
        self.temp.publish(objects, digest, synced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_child::{test_name, ChildTest};
    use futures_util::stream;

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(dir) else {
            return out;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn pattern(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    fn chunks(b: &Bytes, size: usize) -> ByteStream<'static> {
        let parts: Vec<Result<Bytes, io::Error>> = b
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(stream::iter(parts))
    }

    async fn open(dir: &Path) -> FsBlobStore {
        FsBlobStore::open(dir, FsBlobConfig::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn stores_blobs_under_their_sharded_digest_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let b = Bytes::from_static(b"hello, bulwark");
        let d = Digest::of(&b);
        assert!(!store.contains(&d).await.unwrap());
        assert_eq!(store.put(&d, b.clone()).await.unwrap(), Stored::New);
        assert_eq!(store.put(&d, b.clone()).await.unwrap(), Stored::Existing);
        let hex = d.hex();
        let want = dir.path().join("blobs/sha256").join(&hex[..2]).join(&hex);
        assert_eq!(store.path_of(&d), want);
        assert_eq!(fs::read(&want).unwrap(), b.as_ref());
        assert!(store.contains(&d).await.unwrap());
        assert_eq!(store.get(&d).await.unwrap(), Some(b));
        assert_eq!(store.get(&Digest::of(b"other")).await.unwrap(), None);
        assert!(files_under(store.temp_dir()).is_empty());
    }

    #[tokio::test]
    async fn open_creates_every_shard_so_a_first_write_creates_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let objects = dir.path().join("blobs/sha256");
        let shards: Vec<String> = fs::read_dir(&objects)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(shards.len(), 256, "{shards:?}");
        assert!(objects.join("00").is_dir() && objects.join("ff").is_dir());
        // A shard removed behind the store's back is made again by a write.
        let b = Bytes::from_static(b"into a removed shard");
        let d = Digest::of(&b);
        fs::remove_dir(objects.join(&d.hex()[..2])).unwrap();
        assert_eq!(store.put(&d, b.clone()).await.unwrap(), Stored::New);
        assert_eq!(fs::read(store.path_of(&d)).unwrap(), b.as_ref());
        // And a reopen puts every missing shard back.
        let other = if &d.hex()[..2] == "7f" { "80" } else { "7f" };
        fs::remove_dir(objects.join(other)).unwrap();
        drop(store);
        open(dir.path()).await;
        assert!(objects.join(other).is_dir());
    }

    #[tokio::test]
    async fn refuses_content_whose_digest_differs() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let claimed = Digest::of(b"the real content");
        let offered = Bytes::from_static(b"something else");
        let err = store.put(&claimed, offered.clone()).await.unwrap_err();
        match &err {
            StoreError::DigestMismatch { expected, seen } => {
                assert_eq!(*expected, claimed);
                assert_eq!(*seen, Digest::of(&offered));
            }
            other => panic!("want DigestMismatch, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&claimed.to_string()), "{msg}");
        assert!(msg.contains(&Digest::of(&offered).to_string()), "{msg}");

        // The streaming path refuses it too, after writing it to a
        // temporary file.
        let err = store
            .put_stream(&claimed, chunks(&offered, 3))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");

        assert!(!store.contains(&claimed).await.unwrap());
        assert_eq!(store.get(&claimed).await.unwrap(), None);
        assert!(files_under(&dir.path().join("blobs/sha256")).is_empty());
        assert!(files_under(store.temp_dir()).is_empty());
    }

    #[tokio::test]
    async fn streams_a_ten_mebibyte_component_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let big = pattern(10 * 1024 * 1024, 7);
        let d = Digest::of(&big);
        assert_eq!(
            store.put_stream(&d, chunks(&big, 64 * 1024)).await.unwrap(),
            Stored::New
        );
        assert_eq!(store.get(&d).await.unwrap().unwrap(), big);
        // Already stored: the body is not even read.
        let never: ByteStream<'static> = Box::pin(stream::pending());
        assert_eq!(store.put_stream(&d, never).await.unwrap(), Stored::Existing);
    }

    #[tokio::test]
    async fn refuses_bodies_over_the_size_limit_and_failed_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FsBlobConfig {
            max_blob_size: 1000,
            ..FsBlobConfig::default()
        };
        let store = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let big = pattern(1001, 1);
        let d = Digest::of(&big);
        let err = store.put(&d, big.clone()).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooLarge {
                    limit: 1000,
                    seen: 1001,
                    ..
                }
            ),
            "{err}"
        );
        let err = store.put_stream(&d, chunks(&big, 100)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { limit: 1000, .. }),
            "{err}"
        );

        let ok = pattern(500, 2);
        let d2 = Digest::of(&ok);
        let failing: ByteStream<'static> = Box::pin(stream::iter(vec![
            Ok(ok.slice(..200)),
            Err(io::Error::other("upstream reset")),
        ]));
        let err = store.put_stream(&d2, failing).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Body { received: 200, .. }),
            "{err}"
        );
        assert!(!store.contains(&d).await.unwrap());
        assert!(!store.contains(&d2).await.unwrap());
        assert!(files_under(&dir.path().join("blobs/sha256")).is_empty());
        assert!(files_under(store.temp_dir()).is_empty());
    }

    #[tokio::test]
    async fn refuses_to_read_a_stored_file_over_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let b = pattern(2000, 3);
        let d = Digest::of(&b);
        open(dir.path()).await.put(&d, b).await.unwrap();
        let cfg = FsBlobConfig {
            max_blob_size: 1999,
            ..FsBlobConfig::default()
        };
        let small = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let err = small.get(&d).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooLarge {
                    limit: 1999,
                    seen: 2000,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_stored_file_that_no_longer_matches_is_moved_aside_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let b = pattern(4096, 9);
        let d = Digest::of(&b);
        store.put(&d, b).await.unwrap();
        // Tamper with the file, then read through a store with a cold
        // memory tier.
        fs::write(store.path_of(&d), b"tampered").unwrap();
        let cold = open(dir.path()).await;
        let err = cold.get(&d).await.unwrap_err();
        match &err {
            StoreError::Corrupt {
                digest,
                seen,
                moved_to,
            } => {
                assert_eq!(*digest, d);
                assert_eq!(*seen, Digest::of(b"tampered"));
                assert!(moved_to.starts_with(dir.path().join("blobs/corrupt")));
                assert_eq!(fs::read(moved_to).unwrap(), b"tampered");
            }
            other => panic!("want Corrupt, got {other:?}"),
        }
        assert_eq!(cold.get(&d).await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_tier_keeps_small_blobs_and_skips_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FsBlobConfig {
            memory_max_object: 100,
            ..FsBlobConfig::default()
        };
        let store = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let small = pattern(100, 4);
        let large = pattern(101, 5);
        let (ds, dl) = (Digest::of(&small), Digest::of(&large));
        store.put(&ds, small.clone()).await.unwrap();
        store.put(&dl, large.clone()).await.unwrap();
        fs::remove_file(store.path_of(&ds)).unwrap();
        fs::remove_file(store.path_of(&dl)).unwrap();
        assert_eq!(store.get(&ds).await.unwrap(), Some(small));
        assert_eq!(store.get(&dl).await.unwrap(), None);
    }

    /// A store whose memory tier takes blobs of at most 1 MiB, so that
    /// larger test blobs are streamed from their files.
    async fn open_small_tier(dir: &Path) -> FsBlobStore {
        let cfg = FsBlobConfig {
            memory_max_object: 1024 * 1024,
            ..FsBlobConfig::default()
        };
        FsBlobStore::open(dir, cfg).await.unwrap()
    }

    async fn collect(blob: Blob) -> Result<(Vec<usize>, Vec<u8>), io::Error> {
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        let mut s = blob.into_stream();
        while let Some(chunk) = s.next().await {
            let chunk = chunk?;
            sizes.push(chunk.len());
            all.extend_from_slice(&chunk);
        }
        Ok((sizes, all))
    }

    #[tokio::test]
    async fn large_blobs_stream_from_disk_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_small_tier(dir.path()).await;
        let big = pattern(3 * 1024 * 1024 + 5, 21);
        let d = Digest::of(&big);
        store.put(&d, big.clone()).await.unwrap();
        let blob = store.get_stream(&d).await.unwrap().unwrap();
        assert_eq!(blob.len(), big.len() as u64);
        assert!(blob.in_memory().is_none(), "a large blob was read whole");
        let (sizes, all) = collect(blob).await.unwrap();
        assert!(sizes.iter().all(|&n| n > 0 && n <= READ_CHUNK), "{sizes:?}");
        assert_eq!(all, big);
        // Small blobs come whole, from memory.
        let small = pattern(1000, 22);
        let ds = Digest::of(&small);
        store.put(&ds, small.clone()).await.unwrap();
        let blob = store.get_stream(&ds).await.unwrap().unwrap();
        assert_eq!(blob.in_memory(), Some(&small));
        assert_eq!(
            store
                .get_stream(&Digest::of(b"nope"))
                .await
                .unwrap()
                .map(|b| b.len()),
            None
        );
    }

    #[tokio::test]
    async fn hot_blobs_up_to_the_object_limit_are_served_from_memory_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        // The defaults keep a module zip of a few MiB in memory.
        let store = open(dir.path()).await;
        let zip = pattern(3 * 1024 * 1024 + 155, 25);
        let d = Digest::of(&zip);
        store.put_stream(&d, chunks(&zip, 64 * 1024)).await.unwrap();
        let first = store.get_stream(&d).await.unwrap().unwrap();
        assert_eq!(first.in_memory(), Some(&zip));
        fs::remove_file(store.path_of(&d)).unwrap();
        let again = store.get_stream(&d).await.unwrap().unwrap();
        assert_eq!(again.in_memory(), Some(&zip), "a hit reads no file");

        // A budget held by blobs still in use: the next blob streams from
        // its file instead of growing memory past the budget.
        let cfg = FsBlobConfig {
            memory_budget: 4 * 1024 * 1024,
            memory_max_object: 2 * 1024 * 1024,
            ..FsBlobConfig::default()
        };
        let small = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let mut held = Vec::new();
        let mut streamed = 0;
        for i in 0..4u8 {
            let b = pattern(1536 * 1024, 40 + i);
            let d = Digest::of(&b);
            small.put_stream(&d, chunks(&b, 64 * 1024)).await.unwrap();
            let blob = small.get_stream(&d).await.unwrap().unwrap();
            if blob.in_memory().is_none() {
                streamed += 1;
                assert_eq!(collect(blob).await.unwrap().1, b);
            } else {
                held.push(blob);
            }
        }
        assert!(
            held.len() <= 2,
            "{} blobs of 1.5 MiB in a 4 MiB budget",
            held.len()
        );
        assert!(streamed >= 2);
    }

    #[tokio::test]
    async fn a_streamed_blob_whose_file_shrank_fails_instead_of_ending_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_small_tier(dir.path()).await;
        let big = pattern(2 * 1024 * 1024, 23);
        let d = Digest::of(&big);
        store.put(&d, big.clone()).await.unwrap();
        let blob = store.get_stream(&d).await.unwrap().unwrap();
        // Truncated after it was opened (the length was already taken).
        OpenOptions::new()
            .write(true)
            .open(store.path_of(&d))
            .unwrap()
            .set_len(100_000)
            .unwrap();
        let err = collect(blob).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    #[tokio::test]
    async fn streaming_refuses_a_stored_file_over_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let b = pattern(2 * 1024 * 1024, 24);
        let d = Digest::of(&b);
        open(dir.path()).await.put(&d, b).await.unwrap();
        let cfg = FsBlobConfig {
            max_blob_size: 1024 * 1024,
            ..FsBlobConfig::default()
        };
        let small = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let err = small.get_stream(&d).await.unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn verify_all_moves_aside_what_no_longer_hashes_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let good = pattern(200_000, 30);
        let bad = pattern(300_000, 31);
        let (dg, db) = (Digest::of(&good), Digest::of(&bad));
        store.put(&dg, good).await.unwrap();
        store.put(&db, bad).await.unwrap();
        fs::write(store.path_of(&db), b"tampered").unwrap();
        let report = store.verify_all().await.unwrap();
        assert_eq!(report.ok, 1);
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].0, db);
        assert_eq!(report.corrupt[0].1, Digest::of(b"tampered"));
        assert!(!store.path_of(&db).exists());
        assert!(store.get_stream(&db).await.unwrap().is_none());
        assert_eq!(store.verify_all().await.unwrap().corrupt.len(), 0);
    }

    #[tokio::test]
    async fn the_memory_tier_is_bounded_by_bytes_not_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FsBlobConfig {
            memory_budget: 64 * 1024,
            memory_max_object: 16 * 1024,
            ..FsBlobConfig::default()
        };
        let store = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        for i in 0..64u8 {
            let b = pattern(16 * 1024, i);
            store.put(&Digest::of(&b), b).await.unwrap();
        }
        let held = store.inner.hot.weighted_size();
        assert!(held <= 64 * 1024, "memory tier holds {held} bytes");
        assert!(store.inner.hot.entry_count() <= 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twenty_concurrent_writers_of_one_digest_leave_one_good_blob() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FsBlobConfig {
            memory_budget: 0,
            ..FsBlobConfig::default()
        };
        let store = FsBlobStore::open(dir.path(), cfg).await.unwrap();
        let b = pattern(3 * 1024 * 1024 + 17, 11);
        let d = Digest::of(&b);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (store, b) = (store.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    store.put(&d, b).await
                } else {
                    store.put_stream(&d, chunks(&b, 100_000)).await
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stored = files_under(&dir.path().join("blobs/sha256"));
        assert_eq!(stored, vec![store.path_of(&d)]);
        assert_eq!(Digest::of(&fs::read(&stored[0]).unwrap()), d);
        assert!(files_under(store.temp_dir()).is_empty());
        assert_eq!(store.get(&d).await.unwrap(), Some(b));
    }

    #[tokio::test]
    async fn open_removes_stale_temporary_files_but_not_locked_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let stale = store.temp_dir().join("stale.1.0.tmp");
        fs::write(&stale, b"half a blob").unwrap();
        let live = store.temp_dir().join("live.2.0.tmp");
        let held = File::create(&live).unwrap();
        #[allow(clippy::incompatible_msrv)]
        held.try_lock().unwrap();
        open(dir.path()).await;
        assert!(!stale.exists());
        assert!(live.exists(), "a temp file a live writer holds was removed");
        drop(held);
        open(dir.path()).await;
        assert!(!live.exists());
    }

    const CHILD_DIR: &str = "BULWARK_TEST_BLOB_CHILD_DIR";
    const HALF: usize = 2 * 1024 * 1024;

    /// The blob the crash test writes: 4 MiB.
    fn crash_blob() -> Bytes {
        pattern(2 * HALF, 42)
    }

    /// Child half of `a_blob_write_killed_midway_leaves_no_blob`: streams
    /// the first half of the blob, says so, then waits to be killed.
    #[tokio::test]
    #[ignore = "child process of a crash test"]
    async fn crash_child_writes_half_a_blob() {
        let Ok(dir) = std::env::var(CHILD_DIR) else {
            return;
        };
        let store = FsBlobStore::open(&dir, FsBlobConfig::default())
            .await
            .unwrap();
        let b = crash_blob();
        let d = Digest::of(&b);
        let first: Vec<Result<Bytes, io::Error>> = b[..HALF]
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        // After the first half has been taken (and written: it is a whole
        // number of write batches), report and then stall forever.
        let report = stream::once(async {
            println!("HALF-WRITTEN");
            None
        })
        .filter_map(|x: Option<Result<Bytes, io::Error>>| async move { x });
        let body = stream::iter(first).chain(report).chain(stream::pending());
        let _ = store.put_stream(&d, Box::pin(body)).await;
        unreachable!("the parent kills this process");
    }

    #[test]
    fn a_blob_write_killed_midway_leaves_no_blob() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let name = test_name(module_path!(), "crash_child_writes_half_a_blob");
        let mut child = ChildTest::spawn(&name, &[(CHILD_DIR, data)]);
        child.wait_for("HALF-WRITTEN");
        // The write is really in progress: half the bytes are in a
        // temporary file.
        let temps = files_under(&dir.path().join("blobs/tmp"));
        assert_eq!(temps.len(), 1, "{temps:?}");
        assert_eq!(fs::metadata(&temps[0]).unwrap().len(), HALF as u64);
        child.kill();

        let d = Digest::of(&crash_blob());
        assert!(files_under(&dir.path().join("blobs/sha256")).is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = open(dir.path()).await;
            assert!(!store.contains(&d).await.unwrap());
            assert_eq!(store.get(&d).await.unwrap(), None);
            assert!(files_under(store.temp_dir()).is_empty());
            // And the store still works for that digest.
            assert_eq!(store.put(&d, crash_blob()).await.unwrap(), Stored::New);
        });
    }
}
