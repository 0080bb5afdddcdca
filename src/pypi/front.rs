//! The PyPI front: the simple repository API under `/pypi/`, as `pip` and
//! `uv` use it (`--index-url http://bulwark/pypi/simple/`):
//!
//! - `GET /pypi/simple/` — the project list of the `default = true`
//!   upstream;
//! - `GET /pypi/simple/<project>/` — a project page, from the upstream that
//!   owns the project, checked and written anew in the format the client's
//!   `Accept` asks for (PEP 691 JSON or PEP 503 HTML), every file URL
//!   pointing at bulwark;
//! - `GET /pypi/files/<project>/<filename>` — a file, served only once its
//!   bytes hash to the `sha256` the project's page gives and its PEP 740
//!   provenance verified as the upstream's `attestations` policy asks
//!   (and from the store afterwards, also with the upstream down); the
//!   `Bulwark-Attestation` header says what vouches for it: `verified`,
//!   `none` (`if-present` let it through) or `off`;
//! - `GET /pypi/files/<project>/<wheel>.metadata` — the wheel's core
//!   metadata (PEP 658), read out of the verified wheel;
//! - `GET /pypi/provenance/<project>/<filename>` — bulwark's Integrity
//!   API: the file's verified provenance (the page's `provenance` URLs
//!   point here).
//!
//! Routes and wire shapes only: pages and files come from
//! [`super::resolve`], which works through the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::http::{full, ApiError, Front, ReqBody, ResBody};
use crate::pipeline::refusal::{offline_warning, Refusal};
use crate::pipeline::respond::{blob_response, BlobResponse};

use super::config::Attestations;
use super::config::PROTOCOL;
use super::name::ProjectName;
use super::resolve::PypiUpstream;
use super::simple::{check_filename, Format, Links};

const SIMPLE: &str = "/pypi/simple/";
const FILES: &str = "/pypi/files/";
const PROVENANCE: &str = "/pypi/provenance/";
/// A wheel's core metadata is at its URL plus this (PEP 658).
const METADATA_SUFFIX: &str = ".metadata";

/// The PyPI front (see the module documentation).
pub struct PypiFront {
    federation: Arc<Federation>,
    upstreams: HashMap<String, Arc<PypiUpstream>>,
    /// The `default = true` upstream, which serves the project list.
    default: Option<Arc<PypiUpstream>>,
    /// `[server] offline`: everything served carries the stale `Warning`.
    offline: bool,
}

impl PypiFront {
    /// The front for every `pypi` upstream, or `None` if there is none.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<Option<PypiFront>> {
        let mut upstreams = HashMap::new();
        let mut default = None;
        for u in ctx.upstreams(PROTOCOL) {
            let up = Arc::new(PypiUpstream::new(ctx, u)?);
            if u.default {
                default = Some(up.clone());
            }
            upstreams.insert(u.name.clone(), up);
        }
        if upstreams.is_empty() {
            return Ok(None);
        }
        Ok(Some(PypiFront {
            federation: ctx.federation.clone(),
            upstreams,
            default,
            offline: ctx.config.server.offline,
        }))
    }

    fn owner(&self, project: &ProjectName) -> Result<&Arc<PypiUpstream>, Box<ApiError>> {
        self.federation
            .route(PROTOCOL, project.as_str())
            .and_then(|u| self.upstreams.get(&u.name))
            .ok_or_else(|| not_found(format!("no pypi upstream serves project {project}")))
    }

    fn default_upstream(&self) -> Result<&Arc<PypiUpstream>, Box<ApiError>> {
        self.default.as_ref().ok_or_else(|| {
            not_found("no pypi upstream is default = true: there is no project list".into())
        })
    }

    /// The offline rule ([`offline_warning`]) on an answer of `upstream`.
    fn offline_header(&self, upstream: &str, res: &mut Response<ResBody>) {
        if let Some(w) = offline_warning(self.offline, upstream, None)
            .and_then(|w| HeaderValue::from_str(&w).ok())
        {
            res.headers_mut().insert(header::WARNING, w);
        }
    }

    async fn answer(
        &self,
        route: &'static str,
        req: Request<ReqBody>,
    ) -> Result<Response<ResBody>, Box<ApiError>> {
        let path = req.uri().path().to_string();
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let format = Format::negotiate(accept.as_deref());
        match route {
            "pypi.list" => {
                let up = self.default_upstream()?;
                let list = up.list().await.map_err(refused)?;
                let body = list.render(format, |p| format!("{SIMPLE}{p}/"));
                let warning = offline_warning(self.offline, &up.name, None);
                Ok(page_response(format, body, warning))
            }
            "pypi.project" => {
                let name = path
                    .strip_prefix(SIMPLE)
                    .map(|r| r.trim_end_matches('/'))
                    .unwrap_or("");
                let project = ProjectName::parse(name).map_err(|e| not_found(e.to_string()))?;
                let up = self.owner(&project)?;
                let (page, warning) = up.page(&project).await.map_err(refused)?;
                let attested = up.mode(&project) != Attestations::Off;
                let young = up
                    .too_young(&project, page.files.iter())
                    .await
                    .map_err(refused)?;
                let body = page.render(format, |f| {
                    if young.contains_key(&f.filename) {
                        return None;
                    }
                    Some(Links {
                        file: format!("{FILES}{project}/{}", f.filename),
                        provenance: (attested && f.provenance.is_some())
                            .then(|| format!("{PROVENANCE}{project}/{}", f.filename)),
                    })
                });
                let warning = offline_warning(self.offline, &up.name, warning);
                Ok(page_response(format, body, warning))
            }
            "pypi.provenance" => {
                let (project, filename) = file_path(&path, PROVENANCE)?;
                let up = self.owner(&project)?;
                match up.provenance(&project, filename).await.map_err(refused)? {
                    Some(body) => {
                        let mut res = Response::new(full(body));
                        res.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        self.offline_header(&up.name, &mut res);
                        Ok(res)
                    }
                    None => Err(not_found(format!(
                        "upstream {}: no verified provenance for {filename}",
                        up.name
                    ))),
                }
            }
            _ => {
                let (project, filename) = file_path(&path, FILES)?;
                let up = self.owner(&project)?;
                if let Some(wheel) = filename.strip_suffix(METADATA_SUFFIX) {
                    let body = up.metadata(&project, wheel).await.map_err(refused)?;
                    let mut res = Response::new(full(body));
                    res.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    self.offline_header(&up.name, &mut res);
                    return Ok(res);
                }
                let (blob, digest, vouched) = up.file(&project, filename).await.map_err(refused)?;
                let mut res = blob_response(
                    req.headers(),
                    req.method(),
                    blob,
                    &digest,
                    BlobResponse {
                        content_type: "application/octet-stream",
                        immutable: true,
                        warning: offline_warning(self.offline, &up.name, None),
                    },
                );
                vouched.mark(res.headers_mut());
                Ok(res)
            }
        }
    }
}

/// `<prefix><project>/<filename>`, both checked.
fn file_path<'p>(path: &'p str, prefix: &str) -> Result<(ProjectName, &'p str), Box<ApiError>> {
    let rest = path.strip_prefix(prefix).unwrap_or("");
    let (name, filename) = rest.split_once('/').unwrap_or((rest, ""));
    let project = ProjectName::parse(name).map_err(|e| not_found(e.to_string()))?;
    check_filename(filename).map_err(|e| not_found(e.to_string()))?;
    Ok((project, filename))
}

fn not_found(message: String) -> Box<ApiError> {
    Box::new(ApiError::new(StatusCode::NOT_FOUND, message))
}

fn refused(r: Refusal) -> Box<ApiError> {
    Box::new(r.api_error())
}

fn page_response(format: Format, body: Vec<u8>, warning: Option<String>) -> Response<ResBody> {
    let mut res = Response::new(full(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Some(w) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        h.insert(header::WARNING, w);
    }
    res
}

impl Front for PypiFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let path = req.uri().path();
        if path == SIMPLE {
            Some("pypi.list")
        } else if path.starts_with(SIMPLE) {
            Some("pypi.project")
        } else if path.starts_with(FILES) {
            Some("pypi.file")
        } else if path.starts_with(PROVENANCE) {
            Some("pypi.provenance")
        } else {
            None
        }
    }

    fn handle<'a>(
        &'a self,
        route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        async move {
            match self.answer(route, req).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        .boxed()
    }
}
