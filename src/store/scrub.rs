//! `bulwark store verify`: the scrub of the blob store and the artifact
//! index together.

use super::blobs::{FsBlobConfig, FsBlobStore, VerifyReport};
use super::digest::Digest;
use super::index::{ArtifactIndex, IndexError};
use super::StoreError;

/// What [`scrub`] did.
#[derive(Debug)]
pub struct ScrubReport {
    /// The blobs re-hashed, and those moved aside.
    pub blobs: VerifyReport,
    /// How many artifact-index entries naming a corrupt blob were dropped,
    /// or why the index could not be changed (a running `bulwark serve`
    /// holds it open: then its entries stay, and the server, finding the
    /// blob gone, fetches and checks the content anew when it is asked for).
    pub index: Result<u64, IndexError>,
}

/// `bulwark store verify`: re-hashes every blob under `data_dir` (see
/// [`FsBlobStore::verify_all`]), moves aside those that no longer hash to
/// their name, and drops the artifact-index entries
/// (`<data_dir>/index.redb`) that name them.
pub async fn scrub(data_dir: &std::path::Path) -> Result<ScrubReport, StoreError> {
    let store = FsBlobStore::open(data_dir, FsBlobConfig::default()).await?;
    let blobs = store.verify_all().await?;
    let corrupt: Vec<Digest> = blobs.corrupt.iter().map(|(d, _, _)| *d).collect();
    let path = data_dir.join("index.redb");
    let index = tokio::task::spawn_blocking(move || {
        if corrupt.is_empty() || !path.exists() {
            return Ok(0);
        }
        ArtifactIndex::open(&path)?.remove_digests(&corrupt)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?;
    Ok(ScrubReport { blobs, index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::Entry;
    use bytes::Bytes;

    #[tokio::test]
    async fn scrub_moves_corrupt_blobs_aside_and_drops_their_index_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path(), FsBlobConfig::default())
            .await
            .unwrap();
        let (good, bad) = (Bytes::from(vec![1u8; 5000]), Bytes::from(vec![2u8; 5000]));
        let (dg, db) = (Digest::of(&good), Digest::of(&bad));
        store.put(&dg, good).await.unwrap();
        store.put(&db, bad).await.unwrap();
        let path = dir.path().join("index.redb");
        {
            let idx = ArtifactIndex::open(&path).unwrap();
            let entries = [
                ("good".to_string(), Entry::new(dg, "r1")),
                ("bad".to_string(), Entry::new(db, "r2")),
            ];
            idx.put_all("up", 0, "test.kind", &entries).unwrap();
        }
        std::fs::write(store.path_of(&db), b"flipped bits").unwrap();

        let report = scrub(dir.path()).await.unwrap();
        assert_eq!(report.blobs.ok, 1);
        assert_eq!(report.blobs.corrupt.len(), 1);
        assert_eq!(report.blobs.corrupt[0].0, db);
        assert_eq!(report.index.unwrap(), 1);
        assert!(!store.path_of(&db).exists());
        let idx = ArtifactIndex::open(&path).unwrap();
        assert!(idx.get("up", 0, "test.kind", "bad").unwrap().is_none());
        assert_eq!(
            idx.get("up", 0, "test.kind", "good")
                .unwrap()
                .unwrap()
                .digest,
            dg
        );
    }
}
