//! The redb files bulwark keeps (`state.redb`, `index.redb`), stamped with
//! a schema version, so that a newer file is never read by an older
//! bulwark. Each file says who may write it ([`redb::ConcurrencyMode`]):
//! the trust state in multi-writer mode (the CLI changes it while `serve`
//! runs), the artifact index by one process at a time (a commit is then
//! one flush instead of the two a file shared with other writers needs).

use std::path::Path;

use redb::{ReadableTable, TableDefinition};

/// "schema_version" → version.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a file could not be opened: the operation and what went wrong.
pub type OpenError = (&'static str, String);

/// Opens (creating if needed) the redb file at `path` in `mode`, records
/// `schema_version` in a new file and refuses a file of another version;
/// `tables` then opens (creates) the caller's tables in the same write
/// transaction.
pub fn open(
    path: &Path,
    schema_version: u64,
    mode: redb::ConcurrencyMode,
    tables: impl Fn(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<redb::Database, OpenError> {
    if !path.exists() {
        create_whole(path, schema_version, mode, &tables)?;
    }
    let db = builder(mode)
        .create(path)
        .map_err(|e| ("open", format!("{}: {e}", path.display())))?;
    let txn = db
        .begin_write()
        .map_err(|e| ("begin write", e.to_string()))?;
    {
        let mut meta = txn
            .open_table(META)
            .map_err(|e| ("open table", e.to_string()))?;
        let version = meta
            .get("schema_version")
            .map_err(|e| ("read schema version", e.to_string()))?
            .map(|v| v.value());
        match version {
            None => {
                meta.insert("schema_version", schema_version)
                    .map_err(|e| ("write schema version", e.to_string()))?;
            }
            Some(v) if v == schema_version => {}
            Some(v) => {
                return Err((
                    "open",
                    format!(
                        "{}: schema version {v}, this bulwark reads {schema_version}",
                        path.display()
                    ),
                ))
            }
        }
        tables(&txn).map_err(|e| ("open table", e.to_string()))?;
    }
    txn.commit().map_err(|e| ("commit", e.to_string()))?;
    Ok(db)
}

fn builder(mode: redb::ConcurrencyMode) -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(mode);
    builder
}

/// Creates a new file at `path` whole: made and stamped under a name of
/// this process, fsynced, then linked into place (never over a file
/// another process put there meanwhile). A process killed while creating
/// leaves no half-made file at `path` (which redb would refuse to open).
fn create_whole(
    path: &Path,
    schema_version: u64,
    mode: redb::ConcurrencyMode,
    tables: &impl Fn(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<(), OpenError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new.{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    // A leftover of this process id was never linked into place.
    let _ = std::fs::remove_file(&tmp);
    let made = (|| {
        let db = builder(mode)
            .create(&tmp)
            .map_err(|e| ("open", format!("{}: {e}", tmp.display())))?;
        let txn = db
            .begin_write()
            .map_err(|e| ("begin write", e.to_string()))?;
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| ("open table", e.to_string()))?;
            meta.insert("schema_version", schema_version)
                .map_err(|e| ("write schema version", e.to_string()))?;
            tables(&txn).map_err(|e| ("open table", e.to_string()))?;
        }
        txn.commit().map_err(|e| ("commit", e.to_string()))?;
        drop(db);
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error("fsync", &tmp, e))?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("link", path, e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error("fsync directory", dir, e))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    made
}

fn io_error(op: &'static str, p: &Path, e: std::io::Error) -> OpenError {
    (op, format!("{}: {e}", p.display()))
}

/// How long a redb file must have been left alone before what was read
/// from it may be kept in memory: longer than the file system's timestamp
/// granularity, so a write after the read always changes the stamp.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// What identifies one state of a file: its modification time, length and
/// inode. Every commit to a redb file (by this process or by the CLI in
/// another) writes the file and so changes its stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    mtime: std::time::SystemTime,
    len: u64,
    ino: u64,
}

impl Stamp {
    /// The stamp of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<Stamp> {
        Stamp::from_metadata(&std::fs::metadata(path)?)
    }

    /// The stamp of an open file now (`fstat`: no path lookup).
    pub fn of_file(file: &std::fs::File) -> std::io::Result<Stamp> {
        Stamp::from_metadata(&file.metadata()?)
    }

    fn from_metadata(m: &std::fs::Metadata) -> std::io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        Ok(Stamp {
            mtime: m.modified()?,
            len: m.len(),
            ino: m.ino(),
        })
    }

    /// Whether the file had been left alone for [`SETTLE`] when stamped at
    /// `now`: only then may what is read after it be kept in memory.
    fn settled(&self, now: std::time::SystemTime) -> bool {
        now.duration_since(self.mtime).is_ok_and(|age| age > SETTLE)
    }
}

/// A memory mirror of rows read from one redb file, kept coherent with the
/// file whoever writes it: every read first stats the file (one `fstat` of
/// a handle opened with the mirror, no path lookup, no transaction) and
/// drops the whole mirror when its stamp moved. redb writes its file in
/// place, so the handle sees every commit, by this process or another;
/// it stays on the file the database has open.
/// Rows read while the file was being written are not kept. At most `cap`
/// rows are kept; a full mirror starts again empty.
pub struct Mirror<K, V> {
    path: std::path::PathBuf,
    /// The file, opened read-only when the mirror was made (`None` if it
    /// could not be: then every stamp stats the path).
    file: Option<std::fs::File>,
    cap: usize,
    inner: std::sync::RwLock<MirrorInner<K, V>>,
}

struct MirrorInner<K, V> {
    stamp: Option<Stamp>,
    rows: std::collections::HashMap<K, V>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Mirror<K, V> {
    /// An empty mirror of the file at `path`, holding at most `cap` rows.
    pub fn new(path: impl Into<std::path::PathBuf>, cap: usize) -> Mirror<K, V> {
        let path = path.into();
        Mirror {
            file: std::fs::File::open(&path).ok(),
            path,
            cap,
            inner: std::sync::RwLock::new(MirrorInner {
                stamp: None,
                rows: std::collections::HashMap::new(),
            }),
        }
    }

    /// The file's stamp now, to pass to [`Mirror::get`] and then to
    /// [`Mirror::keep`] after reading the file; `None` if it cannot be read
    /// (then nothing is kept and every read goes to the file).
    pub fn stamp(&self) -> Option<Stamp> {
        match &self.file {
            Some(f) => Stamp::of_file(f).ok(),
            None => Stamp::of(&self.path).ok(),
        }
    }

    /// The row kept for `key`, if the file has not changed since it was
    /// read (`stamp` from [`Mirror::stamp`], taken just now).
    pub fn get<Q>(&self, stamp: Option<Stamp>, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let stamp = stamp?;
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        if inner.stamp != Some(stamp) {
            return None;
        }
        inner.rows.get(key).cloned()
    }

    /// Keeps `value` for `key`, read from the file after `stamp` was taken,
    /// if the file had settled then; drops every row of an older state.
    pub fn keep(&self, stamp: Option<Stamp>, key: K, value: V) {
        let Some(stamp) = stamp else { return };
        if !stamp.settled(std::time::SystemTime::now()) {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.stamp != Some(stamp) {
            inner.rows.clear();
            inner.stamp = Some(stamp);
        }
        if inner.rows.len() >= self.cap {
            inner.rows.clear();
        }
        inner.rows.insert(key, value);
    }

    /// Drops every row (after this process wrote the file).
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.rows.clear();
        inner.stamp = None;
    }
}

impl<K, V> std::fmt::Debug for Mirror<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("path", &self.path)
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_forgets_everything_when_the_file_changes_and_keeps_nothing_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let m: Mirror<String, u32> = Mirror::new(&path, 2);
        // Just written: not settled, nothing kept.
        let s = m.stamp();
        m.keep(s, "a".into(), 1);
        assert_eq!(m.get(m.stamp(), "a"), None);
        // Settled (backdate the file): kept.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let s = m.stamp();
        m.keep(s, "a".into(), 1);
        assert_eq!(m.get(m.stamp(), "a"), Some(1));
        // Any write changes the stamp: forgotten.
        std::fs::write(&path, b"two!").unwrap();
        assert_eq!(m.get(m.stamp(), "a"), None);
        // Bounded: a full mirror starts again.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let s = m.stamp();
        m.keep(s, "a".into(), 1);
        m.keep(s, "b".into(), 2);
        m.keep(s, "c".into(), 3);
        assert_eq!(m.get(s, "a"), None);
        assert_eq!(m.get(s, "c"), Some(3));
        m.clear();
        assert_eq!(m.get(s, "c"), None);
    }
}
