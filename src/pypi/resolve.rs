//! The PyPI ecosystem's side of the pipeline, per upstream: index pages
//! fetched, checked and kept briefly (the last good copy is served, with
//! the pipeline's `Warning`, while the upstream cannot be reached), and
//! files resolved to the `sha256` their project page gives, fetched and
//! checked by the artifact service.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue};

use crate::config::UpstreamConfig;
use crate::ecosystem::EcosystemContext;
use crate::pipeline::artifacts::{Artifacts, Fill, Lookup, Rule};
use crate::pipeline::refusal::{stale_warning, Refusal};
use crate::store::{Blob, Digest};
use crate::upstream::{UpstreamClient, UpstreamRequest};

use super::name::ProjectName;
use super::simple::{
    parse_list_html, parse_list_json, parse_project_html, parse_project_json, DistFile,
    ProjectList, ProjectPage, JSON_V1,
};

/// The artifact kind of a distribution file (key: `<project>/<filename>`).
pub const FILE_KIND: &str = "pypi.file";
/// How long a checked index page is reused.
const PAGE_TTL: Duration = Duration::from_secs(30);
/// Byte budget of each page cache, per upstream.
const PAGE_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest index page read (big projects list tens of thousands of files).
pub const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;
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
    /// The file client: the index's origin (file URLs are resolved against
    /// the page they are on).
    files: UpstreamClient,
    /// The configured `url`, with a trailing slash.
    base: url::Url,
    pages: moka::future::Cache<String, (Arc<ProjectPage>, u32)>,
    /// The last good page of each project, served only while the upstream
    /// cannot be reached.
    stale: moka::future::Cache<String, (Arc<ProjectPage>, u32)>,
    artifacts: Artifacts,
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
        let origin = base.origin().ascii_serialization();
        let options = |url: &str| ctx.upstream_options(u, url);
        Ok(PypiUpstream {
            name: u.name.clone(),
            index: UpstreamClient::new(options(u.url.trim_end_matches('/')))?,
            files: UpstreamClient::new(options(&origin))?,
            base,
            pages: page_cache(Some(PAGE_TTL)),
            stale: page_cache(None),
            artifacts: ctx.artifacts.clone(),
        })
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
            Err(r) if r.is_unreachable() => match self.stale.get(&key).await {
                Some((p, _)) => Ok((
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
        Ok((page, weight))
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

    /// The path on the upstream's origin of a file listed on `project`'s
    /// page; a file on another origin is refused (no client for it).
    fn file_path(&self, project: &ProjectName, f: &DistFile) -> Result<String, Refusal> {
        let page = self
            .base
            .join(&format!("{project}/"))
            .map_err(|e| refusal(&self.name, "file URL", e))?;
        let url = page
            .join(&f.url)
            .map_err(|e| refusal(&self.name, "file URL", format!("{:?}: {e}", f.url)))?;
        if url.origin() != self.base.origin() {
            return Err(refusal(
                &self.name,
                "file URL",
                format!(
                    "{} is not on the index's origin {}",
                    url,
                    self.base.origin().ascii_serialization()
                ),
            ));
        }
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// A distribution file: the verified copy if there is one, else the
    /// bytes whose SHA-256 is the one the project's page gives, fetched,
    /// checked, stored and indexed. The digest is returned for `ETag`.
    pub async fn file(
        &self,
        project: &ProjectName,
        filename: &str,
    ) -> Result<(Blob, Digest), Refusal> {
        let key = format!("{project}/{filename}");
        let epoch = match self.artifacts.lookup(&self.name, FILE_KIND, &key).await? {
            Lookup::Hit { entry, blob, .. } => return Ok((blob, entry.digest)),
            other => other.epoch(),
        };
        let (page, _) = self.page(project).await?;
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
        let path = self.file_path(project, f)?;
        let digest = Digest::from_bytes(sha.0);
        let (_, blob) = self
            .artifacts
            .fill(Fill {
                upstream: &self.name,
                epoch,
                kind: FILE_KIND,
                key,
                proof: format!("sha256 given by the index page of {project}"),
                rule: Rule::Sha256(digest),
                client: &self.files,
                request: UpstreamRequest::get(path).max_response_bytes(MAX_FILE_BYTES),
            })
            .await?;
        Ok((blob, digest))
    }
}
