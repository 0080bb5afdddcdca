//! The last good packument of each package, kept on disk so that what was
//! verified keeps being installable after a restart while the upstream is
//! down: `<data_dir>/npm/<upstream>/<epoch>/<escaped name>.json` holds the
//! upstream's own full document (an exact 200 that parsed), written
//! durably (temporary file, fsync, rename, fsync of the directory) when it
//! changed. It is only ever read while the upstream cannot be reached, and
//! then goes through the same parse and checks as a fresh answer (the
//! registry signatures, `min_release_age`). A new epoch (`upstream clear
//! --rebase`) starts from an empty directory.

use std::path::Path;

use super::name::PackageName;
use super::packument::MAX_PACKUMENT_BYTES;

/// The saved packuments of one upstream (the pipeline's
/// [`crate::pipeline::saved::Saved`], one file per package).
#[derive(Debug, Clone)]
pub struct Saved(crate::pipeline::saved::Saved);

fn file(name: &PackageName) -> String {
    // `@scope/name` → `@scope%2fname`: one file name, no directory.
    format!("{}.json", name.escaped())
}

impl Saved {
    /// The directory of `upstream` under `data_dir`.
    pub fn new(data_dir: &Path, upstream: &str) -> Saved {
        Saved(crate::pipeline::saved::Saved::new(
            data_dir,
            "npm",
            upstream,
            MAX_PACKUMENT_BYTES,
        ))
    }

    /// Keeps `body` as the last good packument of `name` (blocking I/O).
    pub fn save(&self, epoch: u64, name: &PackageName, body: &[u8]) -> std::io::Result<()> {
        self.0.save(epoch, &file(name), body)
    }

    /// The last good packument of `name` in `epoch`, if one was kept
    /// (blocking I/O; at most [`MAX_PACKUMENT_BYTES`] read).
    pub fn load(&self, epoch: u64, name: &PackageName) -> std::io::Result<Option<Vec<u8>>> {
        self.0.load(epoch, &file(name))
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
