//! Reading stored blob files: chunks of at most [`READ_CHUNK`] bytes, read
//! on the blocking pool only when the consumer asks, all streams together
//! within [`READ_BUDGET`] bytes of chunks alive at once.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;

/// A body to store or serve, chunk by chunk. A chunk error aborts it.
pub type ByteStream<'a> = BoxStream<'a, Result<Bytes, std::io::Error>>;

/// Blobs are read from disk in chunks of at most this many bytes: the
/// memory one streamed response holds (besides the server's small write
/// buffer), whatever the blob's size and the client's speed; all streams
/// together hold at most [`READ_BUDGET`].
pub const READ_CHUNK: usize = 256 * 1024;

/// Bytes of read chunks alive at once in this process, all streamed blobs
/// together (a chunk lives until the server has written it to its client).
/// A stream whose next chunk would exceed it waits for room, so memory
/// stays bounded whatever the number of clients and their speed.
pub const READ_BUDGET: usize = 64 * 1024 * 1024;
/// [`READ_BUDGET`] in permits of this many bytes.
const BUDGET_UNIT: usize = 1024;
static CHUNK_BUDGET: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(READ_BUDGET / BUDGET_UNIT);

/// A read chunk and its share of [`READ_BUDGET`], given back when the
/// chunk's last `Bytes` handle is dropped.
struct Chunk {
    buf: Vec<u8>,
    _budget: tokio::sync::SemaphorePermit<'static>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// The `len` bytes of an opened blob file from `offset`, in chunks of at
/// most [`READ_CHUNK`] bytes, each read (on the blocking pool, straight into
/// the chunk handed on) only when the consumer asks for it, within
/// [`READ_BUDGET`]. A file that ends early fails the stream (it never
/// yields a short blob as if it were whole); bytes outside the range are
/// never read.
pub fn file_stream(file: File, path: PathBuf, offset: u64, len: u64) -> ByteStream<'static> {
    let state = (Arc::new(file), Arc::new(path), offset, len);
    Box::pin(futures_util::stream::try_unfold(
        state,
        |(file, path, at, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
            let units = u32::try_from(want.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
            let budget = CHUNK_BUDGET
                .acquire_many(units)
                .await
                .map_err(io::Error::other)?;
            let (f, p) = (file.clone(), path.clone());
            let buf = tokio::task::spawn_blocking(move || read_at(&f, &p, at, want, left))
                .await
                .map_err(io::Error::other)??;
            let n = buf.len() as u64;
            let chunk = Bytes::from_owner(Chunk {
                buf,
                _budget: budget,
            });
            Ok(Some((chunk, (file, path, at + n, left - n))))
        },
    ))
}

/// Reads `want` bytes of `file` from `at` (fewer only at its end, which is
/// then an error: `left` bytes were still owed). The buffer is not zeroed
/// first: the read fills it.
fn read_at(file: &File, path: &Path, at: u64, want: usize, left: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    // The file handle belongs to this one stream: seeking it is safe.
    let mut f = file;
    f.seek(SeekFrom::Start(at))?;
    let mut buf = Vec::with_capacity(want);
    f.take(want as u64).read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "content store: {} ended {left} bytes before its length",
                path.display()
            ),
        ));
    }
    Ok(buf)
}
