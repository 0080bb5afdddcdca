//! A strict reader of Go module zips: it accepts only the one layout that
//! every zip reader sees the same way, so the files bulwark hashes (`h1:`)
//! are the files any client unpacks from the bytes bulwark serves.
//!
//! Zip archives can be read two ways: from the end (the end-of-central-
//! directory record, then the central directory, then each entry's local
//! header) or from the start (local header after local header, as streaming
//! readers do). A hostile archive can make the two disagree: a prefix or a
//! gap holding other entries, trailing data, a second end record, local
//! headers whose name, method or sizes differ from the central directory's,
//! data descriptors that disagree, a deflate stream that ends before the
//! entry does. This reader refuses all of that. It accepts an archive only
//! if:
//!
//! - it ends with exactly one end-of-central-directory record (a comment may
//!   follow it, but may not hold another end record), on disk 0, preceded
//!   by a zip64 end record and locator only when a field says so (then the
//!   32-bit fields are either the zip64 sentinel or equal to the zip64
//!   values);
//! - the entry count is at most [`Limits::max_files`] and the central
//!   directory at most [`Limits::max_directory_bytes`], both checked from
//!   the end record before the directory is read;
//! - the local entries tile the archive from offset 0 with no gap and no
//!   overlap, in central-directory order, each being a local header, the
//!   compressed data, and (when flag bit 3 says so) a data descriptor with
//!   its signature; the central directory follows the last entry directly
//!   and the end record(s) follow it directly;
//! - each local header agrees with its central header: same flags, method
//!   and name bytes, and the same CRC-32 and sizes (or, with a data
//!   descriptor, zeros in the local header and the same values in the
//!   descriptor);
//! - each entry is stored (method 0, sizes equal) or deflated (method 8),
//!   not encrypted, a regular file or directory (no Unix symlink or
//!   device), without zip64 extra fields or 32-bit sentinel sizes,
//!   with well-formed extra fields; the total uncompressed size is at most
//!   [`Limits::max_uncompressed_bytes`] (checked from the central
//!   directory before anything is decompressed);
//! - reading an entry ([`read_entry`]) consumes exactly its compressed
//!   bytes (a deflate stream ends exactly there), yields exactly its
//!   uncompressed size, and matches its CRC-32.
//!
//! Go's own module zips (golang.org/x/mod/zip, archive/zip) have this
//! layout. [`super::dirhash`] hashes entries read through this module; it
//! is pure and never panics, and reads through a [`Source`] so the archive
//! may be a byte slice or a file on disk.

use std::io;

/// Bounds on a module zip. The defaults are Go's own (golang.org/x/mod/zip
/// `MaxZipFile`: 500 MiB compressed and 500 MiB uncompressed) plus a file
/// count, a central-directory size and a name length that no real module
/// comes near.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_zip_bytes: u64,
    pub max_uncompressed_bytes: u64,
    pub max_files: usize,
    pub max_directory_bytes: u64,
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_zip_bytes: 500 << 20,
            max_uncompressed_bytes: 500 << 20,
            max_files: 200_000,
            max_directory_bytes: 64 << 20,
            max_name_len: 4096,
        }
    }
}

/// Why a zip archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("module zip is {size} bytes, more than the {max} allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("module zip has {count} files, more than the {max} allowed")]
    TooManyFiles { count: u64, max: usize },
    #[error("module zip central directory is {size} bytes, more than the {max} allowed")]
    DirectoryTooLarge { size: u64, max: u64 },
    #[error("module zip contents exceed {max} bytes uncompressed")]
    UncompressedTooLarge { max: u64 },
    #[error("module zip entry {name:?}: declared {declared} bytes, decompressed to {actual}")]
    SizeMismatch {
        name: String,
        declared: u64,
        actual: u64,
    },
    #[error("module zip entry {name:?}: CRC-32 {declared:08x} declared, {actual:08x} computed")]
    Crc {
        name: String,
        declared: u32,
        actual: u32,
    },
    #[error("module zip has two entries named {0:?}")]
    DuplicateNames(String),
    #[error("module zip entries {0:?} and {1:?} differ only in case")]
    CaseCollision(String, String),
    #[error("module zip entry name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("module zip entry {name:?} is outside {prefix:?}")]
    OutsideModule { name: String, prefix: String },
    #[error("module zip entry {0:?} is encrypted")]
    Encrypted(String),
    #[error("module zip layout at byte {offset}: {reason}")]
    Layout { offset: u64, reason: String },
    #[error("module zip entry {name:?}: {reason}")]
    Entry { name: String, reason: String },
    #[error("reading module zip: {0}")]
    Io(#[from] io::Error),
}

fn layout(offset: u64, reason: impl Into<String>) -> ZipError {
    ZipError::Layout {
        offset,
        reason: reason.into(),
    }
}

/// Random access to the archive's bytes.
pub trait Source {
    /// The archive's length in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; an error if that runs past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        buf.copy_from_slice(self.get(start..end).ok_or_else(short)?);
        Ok(())
    }
}

/// A zip archive in a file (its length taken once, when wrapped).
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    pub fn new(file: std::fs::File) -> io::Result<FileSource> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt as _;
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(short());
        }
        self.file.read_exact_at(buf, offset)
    }
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the zip")
}

const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_END: u32 = 0x0605_4b50;
const SIG_END64: u32 = 0x0606_4b50;
const SIG_LOCATOR64: u32 = 0x0706_4b50;
const SIG_DESCRIPTOR: u32 = 0x0807_4b50;
const LOCAL_LEN: u64 = 30;
const CENTRAL_LEN: usize = 46;
const END_LEN: u64 = 22;
const END64_LEN: u64 = 56;
const LOCATOR64_LEN: u64 = 20;
const DESCRIPTOR_LEN: u64 = 16;
/// Flag bits a module zip may carry: deflate options (1, 2), data
/// descriptor (3), UTF-8 names (11).
const ALLOWED_FLAGS: u16 = 0b0000_1000_0000_1110;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;

/// One entry as the central directory and its local header agree on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name bytes (not yet checked: see `dirhash`).
    pub name: Vec<u8>,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Where the compressed data starts.
    pub data_offset: u64,
}

impl Entry {
    /// The name for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name)
            .chars()
            .take(256)
            .collect()
    }
}

/// Little-endian reads from a buffer, each length-checked.
struct Le<'a>(&'a [u8]);

impl Le<'_> {
    fn u16(&self, at: usize) -> u16 {
        match self.0.get(at..at + 2) {
            Some(b) => u16::from_le_bytes([b[0], b[1]]),
            None => 0,
        }
    }
    fn u32(&self, at: usize) -> u32 {
        match self.0.get(at..at + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }
    fn u64(&self, at: usize) -> u64 {
        match self
            .0
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
        {
            Some(b) => u64::from_le_bytes(b),
            None => 0,
        }
    }
}

fn read_vec<S: Source + ?Sized>(src: &S, offset: u64, len: u64) -> Result<Vec<u8>, ZipError> {
    if offset.checked_add(len).is_none_or(|e| e > src.size()) {
        return Err(layout(offset, format!("{len} bytes needed past the end")));
    }
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| layout(offset, "too long"))?];
    src.read_at(offset, &mut buf)?;
    Ok(buf)
}

/// Where the central directory is, per the end record(s).
struct Directory {
    offset: u64,
    size: u64,
    count: u64,
    /// Where the directory must end: the first end record.
    end: u64,
}

fn find_directory<S: Source + ?Sized>(src: &S, limits: &Limits) -> Result<Directory, ZipError> {
    let len = src.size();
    if len < END_LEN {
        return Err(layout(0, "shorter than an end-of-central-directory record"));
    }
    // The end record is followed only by its comment (at most 65535
    // bytes): find the one record whose comment runs exactly to the end.
    let window = (END_LEN + 0xffff).min(len);
    let tail = read_vec(src, len - window, window)?;
    let mut found = None;
    for i in (0..=tail.len() - END_LEN as usize).rev() {
        let r = Le(&tail[i..]);
        if r.u32(0) == SIG_END && (r.u16(20) as usize) == tail.len() - i - END_LEN as usize {
            found = Some(i);
            break;
        }
    }
    let at = found.ok_or_else(|| layout(len, "no end-of-central-directory record at the end"))?;
    let end_pos = len - window + at as u64;
    let comment = &tail[at + END_LEN as usize..];
    if comment.windows(4).any(|w| w == SIG_END.to_le_bytes()) {
        return Err(layout(
            end_pos,
            "the archive comment holds a second end-of-central-directory record",
        ));
    }
    let r = Le(&tail[at..]);
    let (disk, cd_disk) = (r.u16(4), r.u16(6));
    let (count_disk, count) = (r.u16(8), r.u16(10));
    let (cd_size, cd_offset) = (r.u32(12), r.u32(16));
    if disk != 0 || cd_disk != 0 || count_disk != count {
        return Err(layout(end_pos, "spans several disks"));
    }
    let zip64 = count == 0xffff || cd_size == u32::MAX || cd_offset == u32::MAX;
    let dir = if zip64 {
        if end_pos < LOCATOR64_LEN + END64_LEN {
            return Err(layout(end_pos, "zip64 fields without a zip64 end record"));
        }
        let loc_pos = end_pos - LOCATOR64_LEN;
        let loc = read_vec(src, loc_pos, LOCATOR64_LEN)?;
        let l = Le(&loc);
        if l.u32(0) != SIG_LOCATOR64 || l.u32(4) != 0 || l.u32(16) != 1 {
            return Err(layout(
                loc_pos,
                "no zip64 end locator before the end record",
            ));
        }
        let e64_pos = l.u64(8);
        if e64_pos.checked_add(END64_LEN) != Some(loc_pos) {
            return Err(layout(
                loc_pos,
                "the zip64 end record is not directly before its locator",
            ));
        }
        let e64 = read_vec(src, e64_pos, END64_LEN)?;
        let e = Le(&e64);
        if e.u32(0) != SIG_END64 || e.u64(4) != END64_LEN - 12 {
            return Err(layout(e64_pos, "malformed zip64 end record"));
        }
        if e.u32(16) != 0 || e.u32(20) != 0 || e.u64(24) != e.u64(32) {
            return Err(layout(e64_pos, "spans several disks"));
        }
        let (count64, size64, offset64) = (e.u64(32), e.u64(40), e.u64(48));
        if (count != 0xffff && u64::from(count) != count64)
            || (cd_size != u32::MAX && u64::from(cd_size) != size64)
            || (cd_offset != u32::MAX && u64::from(cd_offset) != offset64)
        {
            return Err(layout(
                end_pos,
                "the end record and the zip64 end record disagree",
            ));
        }
        Directory {
            offset: offset64,
            size: size64,
            count: count64,
            end: e64_pos,
        }
    } else {
        Directory {
            offset: u64::from(cd_offset),
            size: u64::from(cd_size),
            count: u64::from(count),
            end: end_pos,
        }
    };
    if dir.count > limits.max_files as u64 {
        return Err(ZipError::TooManyFiles {
            count: dir.count,
            max: limits.max_files,
        });
    }
    if dir.size > limits.max_directory_bytes {
        return Err(ZipError::DirectoryTooLarge {
            size: dir.size,
            max: limits.max_directory_bytes,
        });
    }
    match dir.offset.checked_add(dir.size) {
        Some(e) if e == dir.end => {}
        Some(e) if e < dir.end => {
            return Err(layout(
                dir.offset,
                format!(
                    "{} bytes before the end record are not where it places them (a prefix, or a gap after the central directory)",
                    dir.end - e
                ),
            ))
        }
        _ => {
            return Err(layout(
                dir.offset,
                format!(
                    "the central directory ({} bytes at {}) runs past the end record at {}",
                    dir.size, dir.offset, dir.end
                ),
            ))
        }
    }
    if dir.count.saturating_mul(CENTRAL_LEN as u64) > dir.size {
        return Err(layout(
            dir.offset,
            format!("{} entries cannot fit in {} bytes", dir.count, dir.size),
        ));
    }
    Ok(dir)
}

/// Checks that `extra` is a sequence of (id, length, data) fields filling
/// it exactly, none of them zip64.
fn check_extra(extra: &[u8], at: u64) -> Result<(), ZipError> {
    let mut rest = extra;
    while !rest.is_empty() {
        let r = Le(rest);
        if rest.len() < 4 {
            return Err(layout(at, "truncated extra field"));
        }
        let (id, n) = (r.u16(0), r.u16(2) as usize);
        if id == 0x0001 {
            return Err(layout(at, "zip64 extra field in an entry"));
        }
        rest = rest
            .get(4 + n..)
            .ok_or_else(|| layout(at, "extra field runs past its header"))?;
    }
    Ok(())
}

/// Reads and checks the archive's layout (see the module documentation)
/// and returns its entries in order. Nothing is decompressed.
pub fn read_layout<S: Source + ?Sized>(src: &S, limits: &Limits) -> Result<Vec<Entry>, ZipError> {
    let size = src.size();
    if size > limits.max_zip_bytes {
        return Err(ZipError::TooLarge {
            size,
            max: limits.max_zip_bytes,
        });
    }
    let dir = find_directory(src, limits)?;
    let cd = read_vec(src, dir.offset, dir.size)?;
    let mut entries = Vec::with_capacity(usize::try_from(dir.count).unwrap_or(0));
    let mut pos = 0usize; // in `cd`
    let mut next_local = 0u64; // where the next local header must start
    let mut total: u64 = 0;
    for _ in 0..dir.count {
        let at = dir.offset + pos as u64;
        let h = cd
            .get(pos..pos + CENTRAL_LEN)
            .ok_or_else(|| layout(at, "central directory truncated"))?;
        let c = Le(h);
        if c.u32(0) != SIG_CENTRAL {
            return Err(layout(at, "no central directory header"));
        }
        let flags = c.u16(8);
        let method = c.u16(10);
        let (crc, csize, usize_) = (c.u32(16), c.u32(20), c.u32(24));
        let (name_len, extra_len, comment_len) =
            (c.u16(28) as usize, c.u16(30) as usize, c.u16(32) as usize);
        let (disk, local) = (c.u16(34), c.u32(42));
        let (made_by, external) = (c.u16(4), c.u32(38));
        let var = pos + CENTRAL_LEN;
        let name = cd
            .get(var..var + name_len)
            .ok_or_else(|| layout(at, "central directory truncated"))?
            .to_vec();
        let shown = || {
            String::from_utf8_lossy(&name)
                .chars()
                .take(256)
                .collect::<String>()
        };
        if name_len > limits.max_name_len {
            return Err(ZipError::BadName {
                name: shown(),
                reason: "name too long",
            });
        }
        let extra = cd
            .get(var + name_len..var + name_len + extra_len)
            .ok_or_else(|| layout(at, "central directory truncated"))?;
        check_extra(extra, at)?;
        pos = var + name_len + extra_len + comment_len;
        if pos > cd.len() {
            return Err(layout(at, "central directory truncated"));
        }
        if flags & (FLAG_ENCRYPTED | 1 << 6 | 1 << 13) != 0 {
            return Err(ZipError::Encrypted(shown()));
        }
        if flags & !ALLOWED_FLAGS != 0 {
            return Err(layout(at, format!("unsupported flags {flags:#06x}")));
        }
        if method != METHOD_STORED && method != METHOD_DEFLATED {
            return Err(layout(
                at,
                format!("unsupported compression method {method}"),
            ));
        }
        if csize == u32::MAX || usize_ == u32::MAX || local == u32::MAX {
            return Err(layout(at, "zip64 sizes or offsets in an entry"));
        }
        if disk != 0 {
            return Err(layout(at, "entry on another disk"));
        }
        // A Unix file type other than a regular file or directory (a
        // symlink, a device...) unpacks differently by reader.
        let unix_type = (external >> 16) & 0o170000;
        if made_by >> 8 == 3 && ![0, 0o100000, 0o040000].contains(&unix_type) {
            return Err(ZipError::Entry {
                name: shown(),
                reason: format!("not a regular file (Unix mode {:o})", external >> 16),
            });
        }
        if method == METHOD_STORED && csize != usize_ {
            return Err(layout(at, "stored entry with different sizes"));
        }
        total = total.saturating_add(u64::from(usize_));
        if total > limits.max_uncompressed_bytes {
            return Err(ZipError::UncompressedTooLarge {
                max: limits.max_uncompressed_bytes,
            });
        }
        // The local header must start where the previous entry ended.
        if u64::from(local) != next_local {
            return Err(layout(
                u64::from(local),
                format!(
                    "entry {:?} starts at {local}, want {next_local} (right after the previous entry): a prefix, gap or overlap",
                    shown()
                ),
            ));
        }
        let lh_len = LOCAL_LEN + name_len as u64;
        let lh = read_vec(src, next_local, LOCAL_LEN)?;
        let l = Le(&lh);
        let l_extra_len = u64::from(l.u16(28));
        if l.u32(0) != SIG_LOCAL {
            return Err(layout(next_local, "no local header"));
        }
        let mismatch = |what: &str| {
            layout(
                next_local,
                format!(
                    "local header of {:?} differs from the central directory in its {what}",
                    shown()
                ),
            )
        };
        if l.u16(6) != flags {
            return Err(mismatch("flags"));
        }
        if l.u16(8) != method {
            return Err(mismatch("method"));
        }
        if usize::from(l.u16(26)) != name_len {
            return Err(mismatch("name"));
        }
        let l_name = read_vec(src, next_local + LOCAL_LEN, name_len as u64)?;
        if l_name != name {
            return Err(mismatch("name"));
        }
        let l_extra = read_vec(src, next_local + lh_len, l_extra_len)?;
        check_extra(&l_extra, next_local)?;
        let (l_crc, l_csize, l_usize) = (l.u32(14), l.u32(18), l.u32(22));
        let descriptor = flags & FLAG_DESCRIPTOR != 0;
        let zeros = (l_crc, l_csize, l_usize) == (0, 0, 0);
        if (l_crc, l_csize, l_usize) != (crc, csize, usize_) && !(descriptor && zeros) {
            return Err(mismatch("CRC-32 or sizes"));
        }
        let data_offset = next_local + lh_len + l_extra_len;
        let mut end = data_offset
            .checked_add(u64::from(csize))
            .ok_or_else(|| layout(data_offset, "entry runs past the end"))?;
        if descriptor {
            let d = read_vec(src, end, DESCRIPTOR_LEN)?;
            let d = Le(&d);
            if d.u32(0) != SIG_DESCRIPTOR {
                return Err(layout(end, "data descriptor without its signature"));
            }
            if (d.u32(4), d.u32(8), d.u32(12)) != (crc, csize, usize_) {
                return Err(layout(
                    end,
                    format!(
                        "data descriptor of {:?} differs from the central directory",
                        shown()
                    ),
                ));
            }
            end += DESCRIPTOR_LEN;
        }
        if end > dir.offset {
            return Err(layout(
                data_offset,
                format!("entry {:?} overlaps the central directory", shown()),
            ));
        }
        next_local = end;
        entries.push(Entry {
            name,
            method,
            crc32: crc,
            compressed_size: u64::from(csize),
            uncompressed_size: u64::from(usize_),
            data_offset,
        });
    }
    if pos != cd.len() {
        return Err(layout(
            dir.offset + pos as u64,
            "bytes after the last central directory header",
        ));
    }
    if next_local != dir.offset {
        return Err(layout(
            next_local,
            format!(
                "{} bytes between the last entry and the central directory",
                dir.offset - next_local
            ),
        ));
    }
    Ok(entries)
}

/// Decompresses `entry` into `sink` in chunks, checking that exactly its
/// compressed bytes are consumed, exactly its uncompressed size comes out,
/// and its CRC-32 matches.
pub fn read_entry<S: Source + ?Sized>(
    src: &S,
    entry: &Entry,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), ZipError> {
    const CHUNK: usize = 64 * 1024;
    let fail = |reason: String| ZipError::Entry {
        name: entry.display_name(),
        reason,
    };
    let mut crc = crc32fast::Hasher::new();
    let mut input = vec![0u8; CHUNK];
    let mut read: u64 = 0; // compressed bytes read from `src`
    let mut out_total: u64 = 0;
    if entry.method == METHOD_STORED {
        while read < entry.compressed_size {
            let n = (entry.compressed_size - read).min(CHUNK as u64) as usize;
            src.read_at(entry.data_offset + read, &mut input[..n])?;
            crc.update(&input[..n]);
            sink(&input[..n]);
            read += n as u64;
        }
        out_total = read;
    } else {
        let mut output = vec![0u8; CHUNK];
        let mut z = flate2::Decompress::new(false);
        let (mut have, mut used) = (0usize, 0usize); // bytes in `input`
        loop {
            if used == have && read < entry.compressed_size {
                let n = (entry.compressed_size - read).min(CHUNK as u64) as usize;
                src.read_at(entry.data_offset + read, &mut input[..n])?;
                read += n as u64;
                (have, used) = (n, 0);
            }
            let (in0, out0) = (z.total_in(), z.total_out());
            let status = z
                .decompress(
                    &input[used..have],
                    &mut output,
                    flate2::FlushDecompress::None,
                )
                .map_err(|e| fail(format!("deflate: {e}")))?;
            let consumed = (z.total_in() - in0) as usize;
            let produced = (z.total_out() - out0) as usize;
            used += consumed;
            out_total += produced as u64;
            if out_total > entry.uncompressed_size {
                return Err(ZipError::SizeMismatch {
                    name: entry.display_name(),
                    declared: entry.uncompressed_size,
                    actual: out_total,
                });
            }
            crc.update(&output[..produced]);
            sink(&output[..produced]);
            match status {
                flate2::Status::StreamEnd => break,
                _ if consumed == 0 && produced == 0 => {
                    if used == have && read == entry.compressed_size {
                        return Err(fail(
                            "the deflate stream is cut short by the entry's compressed size"
                                .to_string(),
                        ));
                    }
                    if used < have {
                        return Err(fail("the deflate stream makes no progress".to_string()));
                    }
                }
                _ => {}
            }
        }
        if z.total_in() != entry.compressed_size {
            return Err(fail(format!(
                "the deflate stream ends after {} of its {} compressed bytes",
                z.total_in(),
                entry.compressed_size
            )));
        }
    }
    if out_total != entry.uncompressed_size {
        return Err(ZipError::SizeMismatch {
            name: entry.display_name(),
            declared: entry.uncompressed_size,
            actual: out_total,
        });
    }
    let actual = crc.finalize();
    if actual != entry.crc32 {
        return Err(ZipError::Crc {
            name: entry.display_name(),
            declared: entry.crc32,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// One entry of a hand-built archive.
    struct E<'a> {
        name: &'a str,
        data: &'a [u8],
        deflate: bool,
        /// Sizes and CRC in a data descriptor after the data, zeros in the
        /// local header (as Go's archive/zip writes every file).
        descriptor: bool,
    }

    fn e<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
        E {
            name,
            data,
            deflate: true,
            descriptor: true,
        }
    }

    /// A built archive and where its parts are, for tampering.
    struct Built {
        bytes: Vec<u8>,
        locals: Vec<usize>,
        centrals: Vec<usize>,
        cd_offset: usize,
        end: usize,
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn build(entries: &[E<'_>]) -> Built {
        let mut out = Vec::new();
        let mut locals = Vec::new();
        let mut metas = Vec::new();
        for en in entries {
            let comp = if en.deflate {
                deflate(en.data)
            } else {
                en.data.to_vec()
            };
            let crc = crc32fast::hash(en.data);
            let flags: u16 = if en.descriptor { FLAG_DESCRIPTOR } else { 0 };
            let method = if en.deflate {
                METHOD_DEFLATED
            } else {
                METHOD_STORED
            };
            let (lc, ls, lu) = if en.descriptor {
                (0, 0, 0)
            } else {
                (crc, comp.len() as u32, en.data.len() as u32)
            };
            locals.push(out.len());
            let offset = out.len() as u32;
            out.extend_from_slice(&SIG_LOCAL.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&lc.to_le_bytes());
            out.extend_from_slice(&ls.to_le_bytes());
            out.extend_from_slice(&lu.to_le_bytes());
            out.extend_from_slice(&(en.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(en.name.as_bytes());
            out.extend_from_slice(&comp);
            if en.descriptor {
                out.extend_from_slice(&SIG_DESCRIPTOR.to_le_bytes());
                out.extend_from_slice(&crc.to_le_bytes());
                out.extend_from_slice(&(comp.len() as u32).to_le_bytes());
                out.extend_from_slice(&(en.data.len() as u32).to_le_bytes());
            }
            metas.push((
                flags,
                method,
                crc,
                comp.len() as u32,
                en.data.len() as u32,
                offset,
            ));
        }
        let cd_offset = out.len();
        let mut centrals = Vec::new();
        for (en, (flags, method, crc, cs, us, offset)) in entries.iter().zip(metas) {
            centrals.push(out.len());
            out.extend_from_slice(&SIG_CENTRAL.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&cs.to_le_bytes());
            out.extend_from_slice(&us.to_le_bytes());
            out.extend_from_slice(&(en.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(en.name.as_bytes());
        }
        let end = out.len();
        let n = entries.len() as u16;
        out.extend_from_slice(&SIG_END.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&((end - cd_offset) as u32).to_le_bytes());
        out.extend_from_slice(&(cd_offset as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        Built {
            bytes: out,
            locals,
            centrals,
            cd_offset,
            end,
        }
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn add32(b: &mut [u8], at: usize, delta: u32) {
        let v = get32(b, at);
        put32(b, at, v + delta);
    }

    fn get32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Every entry read out, by name.
    fn read_all(z: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ZipError> {
        let entries = read_layout(z, &Limits::default())?;
        let mut out = Vec::new();
        for en in &entries {
            let mut data = Vec::new();
            read_entry(z, en, |c| data.extend_from_slice(c))?;
            out.push((en.display_name(), data));
        }
        Ok(out)
    }

    fn two() -> Built {
        build(&[
            e("m@v1.0.0/a.go", b"package a\n"),
            E {
                deflate: false,
                descriptor: false,
                ..e("m@v1.0.0/b.txt", b"plain")
            },
        ])
    }

    fn refused(z: &[u8], what: &str) {
        let r = read_all(z);
        assert!(r.is_err(), "{what}: accepted {r:?}");
    }

    #[test]
    fn reads_archives_laid_out_as_go_and_the_zip_crate_write_them() {
        let z = two();
        let got = read_all(&z.bytes).unwrap();
        assert_eq!(
            got,
            vec![
                ("m@v1.0.0/a.go".to_string(), b"package a\n".to_vec()),
                ("m@v1.0.0/b.txt".to_string(), b"plain".to_vec()),
            ]
        );
        // The zip crate's own writer (local sizes, no descriptors).
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, method) in [
            ("m/a", zip::CompressionMethod::Deflated),
            ("m/b", zip::CompressionMethod::Stored),
            ("m/empty", zip::CompressionMethod::Deflated),
        ] {
            let o = zip::write::SimpleFileOptions::default().compression_method(method);
            w.start_file(name, o).unwrap();
            if name != "m/empty" {
                w.write_all(b"hello hello hello").unwrap();
            }
        }
        let z = w.finish().unwrap().into_inner();
        let got = read_all(&z).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("m/empty".to_string(), Vec::new()));
        // An empty archive is fine too.
        assert_eq!(read_all(&build(&[]).bytes).unwrap(), vec![]);
    }

    #[test]
    fn refuses_a_prefix_before_the_first_entry() {
        // A prefix the zip crate and Go's reader skip (they derive the
        // base offset from the end record), while a reader going from the
        // start sees another file first.
        let honest = two().bytes;
        let evil = build(&[e("m@v1.0.0/a.go", b"package evil\n")]);
        let mut z = evil.bytes[..evil.cd_offset].to_vec();
        z.extend_from_slice(&honest);
        assert!(zip::ZipArchive::new(std::io::Cursor::new(&z)).is_ok());
        refused(&z, "prefix");
        // Also with the offsets moved to match: a gap at the start.
        let mut z = two();
        let pad = 7;
        for c in z.centrals.clone() {
            let v = get32(&z.bytes, c + 42);
            put32(&mut z.bytes, c + 42, v + pad);
        }
        let end = z.end;
        let v = get32(&z.bytes, end + 16);
        put32(&mut z.bytes, end + 16, v + pad);
        let mut padded = vec![0u8; pad as usize];
        padded.extend_from_slice(&z.bytes);
        refused(&padded, "gap at the start");
    }

    #[test]
    fn refuses_trailing_data_and_a_second_end_record() {
        let mut z = two().bytes;
        z.extend_from_slice(b"trailing");
        refused(&z, "trailing data");
        // A comment holding another end record.
        let z0 = two();
        let mut z = z0.bytes.clone();
        let inner = z[z0.end..].to_vec();
        let at = z.len() - 2;
        z[at..].copy_from_slice(&(inner.len() as u16).to_le_bytes());
        z.extend_from_slice(&inner);
        refused(&z, "second end record in the comment");
        // A harmless comment is fine.
        let mut z = z0.bytes.clone();
        let at = z.len() - 2;
        z[at..].copy_from_slice(&5u16.to_le_bytes());
        z.extend_from_slice(b"hello");
        assert!(read_all(&z).is_ok());
    }

    #[test]
    fn refuses_gaps_and_overlaps_between_entries() {
        // Bytes between the two entries, offsets adjusted: a gap.
        let z = two();
        let second = z.locals[1];
        let mut g = z.bytes[..second].to_vec();
        g.extend_from_slice(b"hidden");
        g.extend_from_slice(&z.bytes[second..]);
        let shift = 6;
        let c1 = z.centrals[1] + shift;
        add32(&mut g, c1 + 42, shift as u32);
        let end = z.end + shift;
        add32(&mut g, end + 16, shift as u32);
        refused(&g, "gap between entries");
        // Both central entries pointing at the first local header.
        let mut o = z.bytes.clone();
        put32(&mut o, z.centrals[1] + 42, 0);
        refused(&o, "overlap");
        // Bytes between the last entry and the central directory.
        let mut t = z.bytes[..z.cd_offset].to_vec();
        t.extend_from_slice(b"xx");
        t.extend_from_slice(&z.bytes[z.cd_offset..]);
        let end = z.end + 2;
        add32(&mut t, end + 16, 2);
        refused(&t, "gap before the central directory");
        // Bytes between the central directory and the end record.
        let mut u = z.bytes[..z.end].to_vec();
        u.extend_from_slice(b"yy");
        u.extend_from_slice(&z.bytes[z.end..]);
        refused(&u, "gap before the end record");
    }

    #[test]
    fn refuses_local_headers_that_disagree_with_the_central_directory() {
        let z = two();
        // Same length, other name in the local header.
        let mut n = z.bytes.clone();
        n[z.locals[0] + 30 + 9] = b'X';
        refused(&n, "local name");
        // Other method in the local header.
        let mut m = z.bytes.clone();
        m[z.locals[1] + 8] = 8;
        refused(&m, "local method");
        // Other sizes in a local header without a descriptor.
        let mut s = z.bytes.clone();
        put32(&mut s, z.locals[1] + 22, 4);
        refused(&s, "local size");
        // A data descriptor that disagrees.
        let mut d = z.bytes.clone();
        let desc = z.locals[1] - 16;
        add32(&mut d, desc + 12, 1);
        refused(&d, "descriptor size");
        let mut d = z.bytes.clone();
        put32(&mut d, desc, 0);
        refused(&d, "descriptor signature");
        // Different flags.
        let mut f = z.bytes.clone();
        f[z.locals[1] + 6] |= 1 << 1;
        refused(&f, "flags");
    }

    #[test]
    fn refuses_a_deflate_stream_shorter_than_its_entry() {
        // The compressed data is followed by a byte inside the entry:
        // sizes are bumped everywhere so the layout itself holds.
        let z = build(&[E {
            descriptor: false,
            ..e("m/a", b"hello")
        }]);
        let data_end = z.cd_offset;
        let mut b = z.bytes[..data_end].to_vec();
        b.push(0xAA);
        b.extend_from_slice(&z.bytes[data_end..]);
        add32(&mut b, z.locals[0] + 18, 1);
        let c = z.centrals[0] + 1;
        add32(&mut b, c + 20, 1);
        let end = z.end + 1;
        add32(&mut b, end + 16, 1);
        let r = read_all(&b);
        assert!(
            matches!(&r, Err(ZipError::Entry { reason, .. }) if reason.contains("ends after")),
            "{r:?}"
        );
    }

    #[test]
    fn refuses_wrong_sizes_and_crc() {
        let z = two();
        // Central and descriptor both claim one more byte.
        let mut b = z.bytes.clone();
        let desc = z.locals[1] - 16;
        add32(&mut b, desc + 12, 1);
        add32(&mut b, z.centrals[0] + 24, 1);
        assert!(matches!(read_all(&b), Err(ZipError::SizeMismatch { .. })));
        let mut c = z.bytes.clone();
        put32(&mut c, desc + 4, 1);
        put32(&mut c, z.centrals[0] + 16, 1);
        assert!(matches!(read_all(&c), Err(ZipError::Crc { .. })));
    }

    #[test]
    fn caps_the_entry_count_and_directory_before_reading_them() {
        let z = two();
        let mut b = z.bytes.clone();
        let end = z.end;
        b[end + 8..end + 12].copy_from_slice(&[0xfe, 0xff, 0xfe, 0xff]);
        let few = Limits {
            max_files: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            read_layout(&b[..], &few),
            Err(ZipError::TooManyFiles { count: 0xfffe, .. })
        ));
        let small = Limits {
            max_directory_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            read_layout(&z.bytes[..], &small),
            Err(ZipError::DirectoryTooLarge { .. })
        ));
        let tiny = Limits {
            max_uncompressed_bytes: 12,
            ..Limits::default()
        };
        assert!(matches!(
            read_layout(&z.bytes[..], &tiny),
            Err(ZipError::UncompressedTooLarge { max: 12 })
        ));
    }

    #[test]
    fn reads_a_consistent_zip64_end_record_and_refuses_a_disagreeing_one() {
        let z = two();
        let mut b = z.bytes[..z.end].to_vec();
        let e64 = b.len() as u64;
        b.extend_from_slice(&SIG_END64.to_le_bytes());
        b.extend_from_slice(&44u64.to_le_bytes());
        b.extend_from_slice(&[45, 0, 45, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&((z.end - z.cd_offset) as u64).to_le_bytes());
        b.extend_from_slice(&(z.cd_offset as u64).to_le_bytes());
        b.extend_from_slice(&SIG_LOCATOR64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&e64.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let mut end = z.bytes[z.end..].to_vec();
        end[8..12].copy_from_slice(&[0xff; 4]);
        b.extend_from_slice(&end);
        assert_eq!(read_all(&b).unwrap().len(), 2);
        // The zip64 record says 1 entry.
        let mut c = b.clone();
        let at = e64 as usize + 24;
        c[at..at + 16].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        refused(&c, "zip64 count");
    }

    #[test]
    fn refuses_encryption_zip64_extras_and_other_methods() {
        let z = two();
        let mut enc = z.bytes.clone();
        enc[z.locals[1] + 6] |= 1;
        enc[z.centrals[1] + 8] |= 1;
        assert!(matches!(read_all(&enc), Err(ZipError::Encrypted(_))));
        let mut m = z.bytes.clone();
        m[z.locals[1] + 8] = 12;
        m[z.centrals[1] + 10] = 12;
        refused(&m, "bzip2");
        let mut big = z.bytes.clone();
        put32(&mut big, z.centrals[1] + 42, u32::MAX);
        refused(&big, "sentinel offset");
        // A symlink made on Unix; a regular file's mode is fine.
        let mut link = z.bytes.clone();
        link[z.centrals[0] + 5] = 3;
        put32(&mut link, z.centrals[0] + 38, 0o120777 << 16);
        refused(&link, "symlink");
        let mut file = z.bytes.clone();
        file[z.centrals[0] + 5] = 3;
        put32(&mut file, z.centrals[0] + 38, 0o100644 << 16);
        assert!(read_all(&file).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_mutated_archives(
            at in 0usize..400, xor in 1u8..=255, cut in 0usize..400,
        ) {
            let z = two().bytes;
            let mut b = z.clone();
            let i = at % b.len();
            b[i] ^= xor;
            let _ = read_all(&b);
            let _ = read_all(&z[..cut.min(z.len())]);
        }
    }
}
