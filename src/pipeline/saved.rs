//! The last good index document of each package (an npm packument, a
//! PyPI project page), kept on disk so that what was verified keeps being
//! servable after a restart while the upstream cannot be reached (and in
//! offline mode, after `bulwark import`):
//! `<data_dir>/<ecosystem>/<upstream>/<epoch>/<file>` holds the document,
//! written durably (temporary file, fsync, rename, fsync of the directory)
//! when it changed. An ecosystem only reads it while the upstream cannot
//! be reached, and then puts it through the same parse and checks as a
//! fresh answer. A new epoch (`upstream clear --rebase`) starts from an
//! empty directory.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The saved documents of one upstream of one ecosystem.
#[derive(Debug, Clone)]
pub struct Saved {
    root: PathBuf,
    /// Largest document read back.
    max_bytes: u64,
    /// The SHA-256 of the document last written per file, to skip
    /// rewriting an unchanged one.
    written: moka::sync::Cache<String, [u8; 32]>,
}

/// A name usable as one path component: kept if it is plain, else
/// hex-encoded.
fn file_part(s: &str) -> String {
    if !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
    {
        s.to_string()
    } else {
        format!("x-{}", hex::encode(s.as_bytes()))
    }
}

/// Whether `file` is one path component that names no special entry.
fn file_ok(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('.')
        && file.len() <= 255
        && !file.bytes().any(|c| c == b'/' || c == b'\\' || c == 0)
}

impl Saved {
    /// The directory of `upstream` of `ecosystem` under `data_dir`;
    /// documents of more than `max_bytes` are not read back.
    pub fn new(data_dir: &Path, ecosystem: &str, upstream: &str, max_bytes: u64) -> Saved {
        Saved {
            root: data_dir
                .join(file_part(ecosystem))
                .join(file_part(upstream)),
            max_bytes,
            written: moka::sync::Cache::new(100_000),
        }
    }

    fn path(&self, epoch: u64, file: &str) -> std::io::Result<PathBuf> {
        if !file_ok(file) {
            return Err(std::io::Error::other(format!(
                "{file:?} is not a saved document's file name"
            )));
        }
        Ok(self.root.join(epoch.to_string()).join(file))
    }

    /// Keeps `body` as the last good document `file` (one path component)
    /// of `epoch` (blocking I/O).
    pub fn save(&self, epoch: u64, file: &str, body: &[u8]) -> std::io::Result<()> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(body).into();
        let key = format!("{epoch}/{file}");
        if self.written.get(&key) == Some(digest) {
            return Ok(());
        }
        let path = self.path(epoch, file)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{file}.{}.tmp", hex::encode(&digest[..8])));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        self.written.insert(key, digest);
        Ok(())
    }

    /// The last good document `file` of `epoch`, if one was kept
    /// (blocking I/O; at most `max_bytes` read).
    pub fn load(&self, epoch: u64, file: &str) -> std::io::Result<Option<Vec<u8>>> {
        let f = match std::fs::File::open(self.path(epoch, file)?) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut body = Vec::new();
        f.take(self.max_bytes + 1).read_to_end(&mut body)?;
        if body.len() as u64 > self.max_bytes {
            return Err(std::io::Error::other("saved document over the size limit"));
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_document_is_read_back_per_epoch_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let s = Saved::new(dir.path(), "npm", "up/../x", 8);
        assert_eq!(s.load(1, "a.json").unwrap(), None);
        s.save(1, "a.json", b"{\"a\":1}").unwrap();
        s.save(1, "a.json", b"{\"a\":2}").unwrap();
        assert_eq!(
            s.load(1, "a.json").unwrap().as_deref(),
            Some(&b"{\"a\":2}"[..])
        );
        assert_eq!(s.load(2, "a.json").unwrap(), None);
        s.save(1, "big", b"123456789").unwrap();
        assert!(s.load(1, "big").is_err());
        for bad in ["", ".x", "a/b", "..", "a\\b"] {
            assert!(s.save(1, bad, b"x").is_err(), "{bad:?}");
        }
        // Nothing escapes the upstream's directory.
        assert_eq!(dir.path().join("npm").read_dir().unwrap().count(), 1);
    }
}
