//! The PyPI ecosystem's side of the pipeline, per upstream: index pages
//! fetched, checked and kept briefly (the last good copy is served, with
//! the pipeline's `Warning`, while the upstream cannot be reached), and
//! files resolved to the `sha256` their project page gives, vouched for by
//! their PEP 740 provenance as the upstream's policy asks (verified with
//! the Sigstore core, its Rekor checkpoints recorded through the trust
//! state, its publishers judged by the never-downgrade ledger), then
//! fetched and checked by the artifact service. The verified provenance is
//! stored and indexed beside the file.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{header, HeaderValue};

use crate::config::UpstreamConfig;
use crate::ecosystem::EcosystemContext;
use crate::pipeline::artifacts::{Artifacts, Fill, Lookup, Rule};
use crate::pipeline::attest::{
    accept, judge, mark_unattested, refused, stored_vouched, Kinds, Vouched,
};
use crate::pipeline::refusal::{stale_warning, Refusal};
use crate::pipeline::rekor::Rekor;
use crate::pipeline::release_age::{release_age_ok, TooYoung};
use crate::pipeline::trust::Trust;
use crate::sigstore::{IdentityPolicy, Options};
use crate::store::{Blob, Digest};
use crate::upstream::{UpstreamClient, UpstreamRequest};

use super::config::{Attestations, PypiSettings};
use super::name::ProjectName;
use super::provenance::verify_provenance;
use super::saved::SavedPages;
use super::simple::{
    parse_list_html, parse_list_json, parse_project_html, parse_project_json, CoreMetadata,
    DistFile, ProjectList, ProjectPage, JSON_V1, MAX_PAGE_BYTES,
};

/// The artifact kind of a distribution file (key: `<project>/<filename>`).
pub const FILE_KIND: &str = "pypi.file";
/// The artifact kind of a file's verified PEP 740 provenance (same key).
pub const PROVENANCE_KIND: &str = "pypi.provenance";
/// The artifact kind marking a file served unattested under
/// `attestations = "if-present"` (same key; the digest is the file's).
pub const UNATTESTED_KIND: &str = "pypi.unattested";
/// Where the attestation outcomes of files are recorded.
const KINDS: Kinds = Kinds {
    attested: PROVENANCE_KIND,
    unattested: UNATTESTED_KIND,
};
/// The artifact kind of a wheel's core metadata (PEP 658), taken from the
/// verified wheel (same key as the wheel).
pub const METADATA_KIND: &str = "pypi.metadata";
/// The index kind recording when bulwark first saw a file (same key;
/// digest: the sha256 the page gave then; the entry's time is the first
/// sighting): `min_release_age`.
pub const SEEN_KIND: &str = "pypi.first-seen";
/// The check name of a file of a project its index marks `quarantined`.
pub const CHECK_PROJECT_STATUS: &str = "project status";
/// Largest `METADATA` read out of a wheel.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;
/// Largest provenance answer read.
const MAX_PROVENANCE_BYTES: u64 = crate::sigstore::input::MAX_INPUT as u64;
/// How long a checked index page is reused.
const PAGE_TTL: Duration = Duration::from_secs(30);
/// Byte budget of each page cache, per upstream.
const PAGE_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest distribution file fetched.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// What bulwark asks an index for: JSON first (PEP 691), HTML otherwise.
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

fn page_cache(ttl: Option<Duration>) -> moka::future::Cache<String, (Arc<ProjectPage>, u32)> {
    let b = moka::future::Cache::builder()
        .weigher(|k: &String, v: &(Arc<ProjectPage>, u32)| {
            u32::try_from(k.len())
                .unwrap_or(u32::MAX)
                .saturating_add(v.1)
        })
        .max_capacity(PAGE_CACHE_BYTES);
    match ttl {
        Some(t) => b.time_to_live(t).build(),
        None => b.build(),
    }
}

/// One `pypi` upstream.
pub struct PypiUpstream {
    pub name: String,
    /// The index client (its base is the configured `url`).
    index: UpstreamClient,
    /// The file clients, one per origin files may come from: the index's
    /// own first, then `file_origins` (file URLs are resolved against the
    /// page they are on).
    files: Vec<(url::Origin, UpstreamClient)>,
    /// The configured `url`, with a trailing slash.
    base: url::Url,
    pages: moka::future::Cache<String, (Arc<ProjectPage>, u32)>,
    /// The last good page of each project, served only while the upstream
    /// cannot be reached.
    stale: moka::future::Cache<String, (Arc<ProjectPage>, u32)>,
    /// The last good pages, on disk (restarts, offline mode).
    saved: SavedPages,
    artifacts: Artifacts,
    trust: Trust,
    rekor: Rekor,
    settings: Arc<PypiSettings>,
}

/// A verified provenance, as fetched.
struct Attested {
    body: bytes::Bytes,
    publishers: Vec<String>,
    rekor: Vec<String>,
}

impl std::fmt::Debug for PypiUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PypiUpstream")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn refusal(up: &str, check: &'static str, e: impl std::fmt::Display) -> Refusal {
    Refusal::bad_answer(up, check, format!("upstream {up}: {check}: {e}"))
}

impl PypiUpstream {
    /// The upstream of `u`, with its clients.
    pub fn new(ctx: &EcosystemContext, u: &UpstreamConfig) -> anyhow::Result<PypiUpstream> {
        let mut base = url::Url::parse(&u.url)
            .map_err(|e| anyhow::anyhow!("upstream {}: url {:?}: {e}", u.name, u.url))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let options = |url: &str| ctx.upstream_options(u, url);
        let settings = u.settings_arc::<PypiSettings>().ok_or_else(|| {
            anyhow::anyhow!("upstream {}: not a pypi upstream's settings", u.name)
        })?;
        let mut files = Vec::new();
        for o in std::iter::once(&base).chain(&settings.file_origins) {
            let origin = o.origin();
            if files.iter().any(|(seen, _)| *seen == origin) {
                continue;
            }
            let client = UpstreamClient::new(options(&origin.ascii_serialization()))?;
            files.push((origin, client));
        }
        Ok(PypiUpstream {
            name: u.name.clone(),
            index: UpstreamClient::new(options(u.url.trim_end_matches('/')))?,
            files,
            base,
            pages: page_cache(Some(PAGE_TTL)),
            stale: page_cache(None),
            saved: SavedPages::new(&ctx.data_dir, &u.name),
            artifacts: ctx.artifacts.clone(),
            trust: ctx.trust.clone(),
            rekor: ctx.rekor.clone(),
            settings,
        })
    }

    /// The `attestations` mode for `project`.
    pub fn mode(&self, project: &ProjectName) -> Attestations {
        self.settings.mode(project)
    }

    /// A project's page, checked: from the short cache, else from the
    /// upstream; while the upstream cannot be reached, the last good page
    /// with a `Warning`.
    pub async fn page(
        &self,
        project: &ProjectName,
    ) -> Result<(Arc<ProjectPage>, Option<String>), Refusal> {
        let key = project.as_str().to_string();
        if let Some((p, _)) = self.pages.get(&key).await {
            return Ok((p, None));
        }
        match self.fetch_page(project).await {
            Ok((page, weight)) => {
                let page = Arc::new(page);
                self.pages.insert(key.clone(), (page.clone(), weight)).await;
                self.stale.insert(key, (page.clone(), weight)).await;
                Ok((page, None))
            }
            Err(r) if r.is_unreachable() => match self.stale_page(project).await? {
                Some(p) => Ok((
                    p,
                    Some(stale_warning(
                        &self.name,
                        "unreachable; index page checked earlier",
                    )),
                )),
                None => Err(r),
            },
            Err(r) => Err(r),
        }
    }

    async fn get_index(&self, path: String) -> Result<(bool, bytes::Bytes), Refusal> {
        let req = UpstreamRequest::get(path)
            .header(header::ACCEPT, HeaderValue::from_static(ACCEPT))
            .max_response_bytes(MAX_PAGE_BYTES);
        let res = self.index.send(req).await?;
        Refusal::status_rule(&self.name, &res.url, res.status, http::StatusCode::OK)?;
        let json = res
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.trim().starts_with(JSON_V1));
        Ok((json, res.body))
    }

    async fn fetch_page(&self, project: &ProjectName) -> Result<(ProjectPage, u32), Refusal> {
        let (json, body) = self.get_index(format!("/{project}/")).await?;
        let weight = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let page = if json {
            parse_project_json(&body, project)
        } else {
            parse_project_html(&body, project)
        }
        .map_err(|e| refusal(&self.name, "index page", e))?;
        let epoch = self.artifacts.trust().gate(&self.name).await?;
        self.saved.keep(&self.name, epoch, &page).await;
        Ok((page, weight))
    }

    /// The last good page of `project`: in memory, else on disk (checked
    /// again).
    async fn stale_page(&self, project: &ProjectName) -> Result<Option<Arc<ProjectPage>>, Refusal> {
        let key = project.as_str().to_string();
        if let Some((p, _)) = self.stale.get(&key).await {
            return Ok(Some(p));
        }
        let epoch = self.artifacts.trust().gate(&self.name).await?;
        let loaded = self.saved.read(epoch, project).await;
        let Some((page, weight)) = loaded.map_err(|e| refusal(&self.name, "index page", e))? else {
            return Ok(None);
        };
        let page = Arc::new(page);
        self.stale.insert(key, (page.clone(), weight)).await;
        Ok(Some(page))
    }

    /// The project list.
    pub async fn list(&self) -> Result<ProjectList, Refusal> {
        let (json, body) = self.get_index("/".to_string()).await?;
        if json {
            parse_list_json(&body)
        } else {
            parse_list_html(&body)
        }
        .map_err(|e| refusal(&self.name, "index page", e))
    }

    /// The client and path of a URL on `project`'s page (a file's, a
    /// provenance's): on the index's origin or one of `file_origins`;
    /// another origin is refused.
    fn origin_path(
        &self,
        project: &ProjectName,
        written: &str,
        what: &'static str,
    ) -> Result<(&UpstreamClient, String), Refusal> {
        let page = self
            .base
            .join(&format!("{project}/"))
            .map_err(|e| refusal(&self.name, what, e))?;
        let url = page
            .join(written)
            .map_err(|e| refusal(&self.name, what, format!("{written:?}: {e}")))?;
        let origin = url.origin();
        let Some((_, client)) = self.files.iter().find(|(o, _)| *o == origin) else {
            let allowed: Vec<String> = self
                .files
                .iter()
                .map(|(o, _)| o.ascii_serialization())
                .collect();
            return Err(refusal(
                &self.name,
                what,
                format!("{url} is not on the index's origin or a file_origins entry"),
            )
            .expected_seen(allowed.join(", "), origin.ascii_serialization()));
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        Ok((client, path))
    }

    /// `min_release_age`: records the first sighting of every file of the
    /// page with a sha256 (one durable index transaction for the new ones)
    /// and returns the files that may not be served yet, with why. Empty
    /// when the upstream sets no minimum.
    pub async fn too_young<'f>(
        &self,
        project: &ProjectName,
        files: impl IntoIterator<Item = &'f DistFile>,
    ) -> Result<HashMap<String, TooYoung>, Refusal> {
        let Some(min) = self.settings.min_release_age else {
            return Ok(HashMap::new());
        };
        let epoch = self
            .artifacts
            .trust()
            .gate(&self.name)
            .await
            .map_err(|e| Refusal::from_trust(&e))?;
        let mut digests = HashMap::new();
        let sightings: Vec<(String, Digest, String)> = files
            .into_iter()
            .filter_map(|f| {
                let sha = f.sha256?;
                let d = Digest::from_bytes(sha.0);
                digests.insert(f.filename.clone(), d);
                Some((
                    format!("{project}/{}", f.filename),
                    d,
                    format!("first seen with sha256 {d}"),
                ))
            })
            .collect();
        let seen = self
            .artifacts
            .first_seen(&self.name, epoch, SEEN_KIND, sightings)
            .await?;
        let now = SystemTime::now();
        let mut young = HashMap::new();
        for (filename, d) in digests {
            let key = format!("{project}/{filename}");
            if let Some(first) = seen.get(&key) {
                if let Err(why) = release_age_ok(first, &d, min, now) {
                    young.insert(filename, why);
                }
            }
        }
        Ok(young)
    }

    /// PEP 792: the files of a project its index marks `quarantined` are
    /// not served (stored ones included, while such a page is known).
    fn not_quarantined(&self, page: &ProjectPage) -> Result<(), Refusal> {
        match &page.status {
            Some(st) if st.status == "quarantined" => Err(Refusal::new(
                &self.name,
                CHECK_PROJECT_STATUS,
                http::StatusCode::FORBIDDEN,
                format!(
                    "upstream {}: project {} is quarantined by its index{}",
                    self.name,
                    page.name,
                    st.reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(": {r}"))
                ),
            )
            .expected_seen("a project that is not quarantined", "quarantined")),
            _ => Ok(()),
        }
    }

    /// The page entry of `filename` and its index sha256.
    async fn listed(
        &self,
        project: &ProjectName,
        filename: &str,
    ) -> Result<(DistFile, [u8; 32]), Refusal> {
        let (page, _) = self.page(project).await?;
        self.not_quarantined(&page)?;
        let Some(f) = page.files.iter().find(|f| f.filename == filename) else {
            return Err(Refusal::new(
                &self.name,
                "index",
                http::StatusCode::NOT_FOUND,
                format!(
                    "upstream {}: {filename} is not listed on the page of {project}",
                    self.name
                ),
            ));
        };
        let Some(sha) = f.sha256 else {
            return Err(refusal(
                &self.name,
                "index hash",
                format!("the page of {project} gives no sha256 for {filename}"),
            )
            .expected_seen("a sha256 for the file", "none"));
        };
        Ok((f.clone(), sha.0))
    }

    /// A distribution file: the verified copy if there is one, else the
    /// bytes whose SHA-256 is the one the project's page gives, vouched for
    /// as the policy asks ([`PypiUpstream::vouch`]), fetched, checked,
    /// stored and indexed. The digest is returned for `ETag`.
    pub async fn file(
        &self,
        project: &ProjectName,
        filename: &str,
    ) -> Result<(Blob, Digest, Vouched), Refusal> {
        let key = format!("{project}/{filename}");
        let mode = self.mode(project);
        let (epoch, stored) = match self.artifacts.lookup(&self.name, FILE_KIND, &key).await? {
            Lookup::Hit { epoch, entry, blob } => {
                if let Some((page, _)) = self.pages.get(project.as_str()).await {
                    self.not_quarantined(&page)?;
                }
                if let Some(v) =
                    stored_vouched(&self.artifacts, &self.name, epoch, KINDS, &key, mode).await?
                {
                    return Ok((blob, entry.digest, v));
                }
                (epoch, Some((blob, entry.digest)))
            }
            other => (other.epoch(), None),
        };
        let (f, sha) = self.listed(project, filename).await?;
        if let Some(why) = self.too_young(project, [&f]).await?.remove(filename) {
            return Err(Refusal::new(
                &self.name,
                why.check,
                http::StatusCode::FORBIDDEN,
                format!("upstream {}: {filename}: {}", self.name, why.check),
            )
            .expected_seen(why.expected, why.seen));
        }
        let digest = Digest::from_bytes(sha);
        let attested = match mode {
            Attestations::Off => None,
            _ => self.vouch(project, &f, sha, mode).await?,
        };
        let (blob, digest) = match stored {
            Some((blob, stored)) if stored == digest => (blob, stored),
            Some((_, stored)) => {
                return Err(refusal(
                    &self.name,
                    "index hash",
                    format!("{filename} was stored with another sha256 than the page gives now"),
                )
                .expected_seen(stored.to_string(), digest.to_string()))
            }
            None => {
                let (client, path) = self.origin_path(project, &f.url, "file URL")?;
                let (_, blob) = self
                    .artifacts
                    .fill(Fill {
                        upstream: &self.name,
                        epoch,
                        kind: FILE_KIND,
                        key: key.clone(),
                        proof: format!("sha256 given by the index page of {project}"),
                        rule: Rule::Sha256(digest),
                        client,
                        request: UpstreamRequest::get(path).max_response_bytes(MAX_FILE_BYTES),
                    })
                    .await?;
                (blob, digest)
            }
        };
        let vouched = match attested {
            Some(a) => {
                self.keep_provenance(epoch, key, a).await?;
                Vouched::Attested
            }
            None if mode == Attestations::Off => Vouched::IndexOnly,
            None => {
                mark_unattested(
                    &self.artifacts,
                    &self.name,
                    epoch,
                    KINDS,
                    key,
                    digest,
                    "PEP 740 provenance",
                )
                .await?
            }
        };
        Ok((blob, digest, vouched))
    }

    /// Stores and indexes a verified provenance beside its file.
    async fn keep_provenance(&self, epoch: u64, key: String, a: Attested) -> Result<(), Refusal> {
        let proof = format!(
            "PEP 740 provenance verified: publishers {}; Rekor {}",
            a.publishers.join(", "),
            a.rekor.join(", ")
        );
        self.artifacts
            .put_proven(&self.name, epoch, PROVENANCE_KIND, key, a.body, proof)
            .await?;
        Ok(())
    }

    /// A wheel's core metadata (PEP 658): its `*.dist-info/METADATA`, read
    /// out of the wheel once the wheel itself is verified (and so served
    /// under the wheel's policy), stored and indexed. If the page gives the
    /// metadata's sha256 (PEP 714), the bytes must have it.
    pub async fn metadata(
        &self,
        project: &ProjectName,
        filename: &str,
    ) -> Result<bytes::Bytes, Refusal> {
        let key = format!("{project}/{filename}");
        let (epoch, stored) = self
            .artifacts
            .proven(&self.name, METADATA_KIND, &key)
            .await?;
        if let Some(b) = stored {
            return Ok(b);
        }
        let (_, digest, _) = self.file(project, filename).await?;
        let path = self.artifacts.blobs().path_of(&digest);
        let up = self.name.clone();
        let wheel = filename.to_string();
        let body = tokio::task::spawn_blocking(move || wheel_metadata(&path, &wheel))
            .await
            .map_err(|e| refusal(&up, "core metadata", format!("task: {e}")))?
            .map_err(|e| refusal(&self.name, "core metadata", format!("{filename}: {e}")))?;
        // The page's claim about the metadata, when the page can be had.
        if let Ok((page, _)) = self.page(project).await {
            if let Some(f) = page.files.iter().find(|f| f.filename == filename) {
                if let CoreMetadata::Present(Some(want)) = f.core_metadata {
                    let seen = Digest::of(&body);
                    let want = Digest::from_bytes(want.0);
                    if seen != want {
                        return Err(refusal(
                            &self.name,
                            "core metadata",
                            format!(
                                "the page's core-metadata sha256 for {filename} is not that of \
                                 the METADATA inside the verified wheel"
                            ),
                        )
                        .expected_seen(want.to_string(), seen.to_string()));
                    }
                }
            }
        }
        self.artifacts
            .put_proven(
                &self.name,
                epoch,
                METADATA_KIND,
                key,
                body.clone(),
                format!("METADATA inside the verified {filename}"),
            )
            .await?;
        Ok(body)
    }

    /// A file's verified provenance (bulwark's Integrity API): the stored
    /// one, else fetched and verified against the index's sha256 now, and
    /// kept. `None`: the upstream lists none for the file.
    pub async fn provenance(
        &self,
        project: &ProjectName,
        filename: &str,
    ) -> Result<Option<bytes::Bytes>, Refusal> {
        let key = format!("{project}/{filename}");
        let mode = self.mode(project);
        if mode == Attestations::Off {
            return Ok(None);
        }
        let (epoch, stored) = self
            .artifacts
            .proven(&self.name, PROVENANCE_KIND, &key)
            .await?;
        if stored.is_some() {
            return Ok(stored);
        }
        let (f, sha) = self.listed(project, filename).await?;
        if f.provenance.is_none() {
            return Ok(None);
        }
        let Some(a) = self.vouch(project, &f, sha, mode).await? else {
            return Ok(None);
        };
        let body = a.body.clone();
        self.keep_provenance(epoch, key, a).await?;
        Ok(Some(body))
    }

    /// Vouches for a file as `mode` asks, before its bytes are fetched
    /// (the provenance binds the file name and the index's sha256, which
    /// the bytes are then checked against):
    ///
    /// - with a provenance URL on the page: the provenance is fetched (from
    ///   the index's origin, exact 200) and verified (Sigstore core, the
    ///   configured publisher), each attestation's Rekor checkpoint is
    ///   recorded through the trust state, and its publishers judged by
    ///   the ledger;
    /// - without: refused under `required`; under `if-present` judged by
    ///   the ledger (refused once the project was seen attested).
    async fn vouch(
        &self,
        project: &ProjectName,
        f: &DistFile,
        sha: [u8; 32],
        mode: Attestations,
    ) -> Result<Option<Attested>, Refusal> {
        let Some(url) = &f.provenance else {
            if mode == Attestations::Required {
                return Err(Refusal::new(
                    &self.name,
                    "attestation",
                    http::StatusCode::FORBIDDEN,
                    format!(
                        "upstream {}: {} has no PEP 740 provenance and attestations = \"required\"",
                        self.name, f.filename
                    ),
                )
                .expected_seen(
                    "a PEP 740 provenance for the file",
                    "the index page lists none",
                ));
            }
            self.judge(project, &[], &f.filename).await?;
            return Ok(None);
        };
        let (client, path) = self.origin_path(project, url, "provenance URL")?;
        let res = client
            .send(UpstreamRequest::get(path).max_response_bytes(MAX_PROVENANCE_BYTES))
            .await?;
        Refusal::status_rule(&self.name, &res.url, res.status, http::StatusCode::OK)?;
        let body = res.body;
        let identity = self
            .settings
            .publisher(project)
            .map_or(IdentityPolicy::Report, |p| p.policy.clone());
        let settings = self.settings.clone();
        let (b, filename) = (body.clone(), f.filename.clone());
        let verified = tokio::task::spawn_blocking(move || {
            let opts = Options {
                root: &settings.policy.root,
                identity: &identity,
                witnesses: None,
                npm_keys: None,
                now: SystemTime::now(),
            };
            verify_provenance(&b, &filename, sha, &opts)
        })
        .await
        .map_err(|e| refusal(&self.name, "provenance", format!("verification task: {e}")))?;
        let what = format!("the PEP 740 provenance of {}", f.filename);
        let metrics = self.artifacts.metrics();
        let verified = verified.map_err(|r| refused(metrics, &self.name, &what, r))?;
        let rekor = accept(
            &self.rekor,
            metrics,
            &self.name,
            &f.filename,
            &verified.attestations,
            self.settings.policy.rekor_consistency_required,
        )
        .await?;
        let publishers: Vec<String> = verified
            .publishers
            .iter()
            .map(crate::sigstore::Publisher::id)
            .collect();
        self.judge(project, &publishers, &f.filename).await?;
        Ok(Some(Attested {
            body,
            publishers,
            rekor,
        }))
    }

    /// Never downgrade: the ledger's verdict on a file of `project`
    /// attested by `publishers` (empty: unattested).
    async fn judge(
        &self,
        project: &ProjectName,
        publishers: &[String],
        filename: &str,
    ) -> Result<(), Refusal> {
        judge(
            &self.trust,
            &self.name,
            project.as_str(),
            publishers,
            filename,
            "a PEP 740 attestation",
        )
        .await
    }
}

/// The `METADATA` file of the wheel at `path`: the one entry
/// `<something>.dist-info/METADATA` at the top of the archive, at most
/// [`MAX_METADATA_BYTES`].
fn wheel_metadata(path: &std::path::Path, filename: &str) -> Result<bytes::Bytes, String> {
    use std::io::Read as _;
    if !filename.ends_with(".whl") {
        return Err("core metadata is served for wheels only".into());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("open the stored wheel: {e}"))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut found: Option<usize> = None;
    for i in 0..zip.len() {
        let name = zip
            .name_for_index(i)
            .ok_or_else(|| format!("zip entry {i} has no name"))?;
        let is_metadata = name
            .as_ref()
            .map_err(|e| format!("zip entry {i}: {e}"))?
            .strip_suffix(".dist-info/METADATA")
            .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'));
        if is_metadata {
            if found.is_some() {
                return Err("more than one *.dist-info/METADATA".into());
            }
            found = Some(i);
        }
    }
    let i = found.ok_or("no *.dist-info/METADATA")?;
    let entry = zip
        .by_index(i)
        .map_err(|e| format!("METADATA entry: {e}"))?;
    if entry.size() > MAX_METADATA_BYTES {
        return Err(format!(
            "METADATA is {} bytes, more than {MAX_METADATA_BYTES}",
            entry.size()
        ));
    }
    let mut out = Vec::new();
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("read METADATA: {e}"))?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(format!("METADATA is more than {MAX_METADATA_BYTES} bytes"));
    }
    Ok(bytes::Bytes::from(out))
}
