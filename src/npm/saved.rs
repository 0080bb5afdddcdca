//! The last good packument of each package, kept on disk so that what was
//! verified keeps being installable after a restart while the upstream is
//! down: `<data_dir>/npm/<upstream>/<epoch>/<escaped name>.json` holds the
//! upstream's own full document (an exact 200 that parsed), written
//! durably (temporary file, fsync, rename, fsync of the directory) when it
//! changed. It is only ever read while the upstream cannot be reached, and
//! then goes through the same parse and checks as a fresh answer (the
//! registry signatures, `min_release_age`). A new epoch (`upstream clear
//! --rebase`) starts from an empty directory.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::name::PackageName;
use super::packument::MAX_PACKUMENT_BYTES;

/// The saved packuments of one upstream.
#[derive(Debug, Clone)]
pub struct Saved {
    root: PathBuf,
    /// The SHA-256 of the document last written per package, to skip
    /// rewriting an unchanged one.
    written: moka::sync::Cache<String, [u8; 32]>,
}

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

impl Saved {
    /// The directory of `upstream` under `data_dir`.
    pub fn new(data_dir: &Path, upstream: &str) -> Saved {
        Saved {
            root: data_dir.join("npm").join(file_part(upstream)),
            written: moka::sync::Cache::new(100_000),
        }
    }

    fn path(&self, epoch: u64, name: &PackageName) -> PathBuf {
        // `@scope/name` → `@scope%2fname`: one file name, no directory.
        self.root
            .join(epoch.to_string())
            .join(format!("{}.json", name.escaped()))
    }

    /// Keeps `body` as the last good packument of `name` (blocking I/O).
    pub fn save(&self, epoch: u64, name: &PackageName, body: &[u8]) -> std::io::Result<()> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(body).into();
        let key = format!("{epoch}/{name}");
        if self.written.get(&key) == Some(digest) {
            return Ok(());
        }
        let path = self.path(epoch, name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.escaped(),
            hex::encode(&digest[..8])
        ));
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

    /// The last good packument of `name` in `epoch`, if one was kept
    /// (blocking I/O; at most [`MAX_PACKUMENT_BYTES`] read).
    pub fn load(&self, epoch: u64, name: &PackageName) -> std::io::Result<Option<Vec<u8>>> {
        let f = match std::fs::File::open(self.path(epoch, name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut body = Vec::new();
        f.take(MAX_PACKUMENT_BYTES + 1).read_to_end(&mut body)?;
        if body.len() as u64 > MAX_PACKUMENT_BYTES {
            return Err(std::io::Error::other("saved packument over the size limit"));
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_packument_is_read_back_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let s = Saved::new(dir.path(), "up/../x");
        let n = PackageName::parse("@acme/pad").unwrap();
        assert_eq!(s.load(1, &n).unwrap(), None);
        s.save(1, &n, b"{\"a\":1}").unwrap();
        s.save(1, &n, b"{\"a\":2}").unwrap();
        assert_eq!(s.load(1, &n).unwrap().as_deref(), Some(&b"{\"a\":2}"[..]));
        assert_eq!(s.load(2, &n).unwrap(), None);
        // Nothing escapes the upstream's directory.
        assert!(dir.path().join("npm").read_dir().unwrap().count() == 1);
        let again = Saved::new(dir.path(), "up/../x");
        assert_eq!(
            again.load(1, &n).unwrap().as_deref(),
            Some(&b"{\"a\":2}"[..])
        );
    }
}
