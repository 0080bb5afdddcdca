//! The shared state and protocol fronts of a mirror, opened once: behind
//! `serve`'s socket, or called in process by `sync` and `import`.

use std::sync::Arc;

use bulwark::ecosystem::EcosystemContext;
use bulwark::ecosystems::ECOSYSTEMS;
use bulwark::http::Front;
use bulwark::pipeline::artifacts::Artifacts;
use bulwark::pipeline::rekor::Rekor;
use bulwark::pipeline::trust::Trust;
use bulwark::server::App;
use bulwark::store::{ArtifactIndex, FsBlobConfig, FsBlobStore};

/// The shared state every front is built from: the trust state
/// (`<data_dir>/state.redb`), the blob store (`<data_dir>/blobs`) and the
/// artifact index (`<data_dir>/index.redb`), opened here, once.
pub async fn ecosystem_context(app: &App) -> anyhow::Result<EcosystemContext> {
    let data_dir = app.data_dir().clone();
    let trust = Trust::open(data_dir.join("state.redb")).await?;
    let blob_cfg = FsBlobConfig {
        memory_budget: app.config.server.blob_cache_bytes,
        memory_max_object: app.config.server.blob_cache_max_object,
        ..FsBlobConfig::default()
    };
    let blobs = FsBlobStore::open(data_dir.clone(), blob_cfg).await?;
    let index = {
        let path = data_dir.join("index.redb");
        tokio::task::spawn_blocking(move || ArtifactIndex::open(path)).await??
    };
    let artifacts = Artifacts::new(blobs, index, trust.clone(), app.metrics.clone());
    Ok(EcosystemContext {
        config: app.config.clone(),
        federation: app.federation.clone(),
        metrics: app.metrics.clone(),
        data_dir,
        rekor: Rekor::new(trust.clone(), app.config.server.offline),
        trust,
        artifacts,
    })
}

/// The protocol fronts, one per registered ecosystem that has upstreams,
/// in the order of `ECOSYSTEMS` (the order they are asked), sharing `ctx`.
/// `serve` puts them behind its socket; `sync` and `import` call them in
/// process, as a client would.
pub fn protocol_fronts(ctx: &EcosystemContext) -> anyhow::Result<Vec<Arc<dyn Front>>> {
    let mut fronts = Vec::new();
    for ecosystem in ECOSYSTEMS {
        if let Some(front) = ecosystem.front(ctx)? {
            fronts.push(front);
        }
    }
    Ok(fronts)
}
