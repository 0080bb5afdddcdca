//! The npm front: the registry API under `/npm/`, as the real `npm`
//! client uses it (`npm config set registry http://bulwark/npm/`):
//!
//! - `GET /npm/<name>` (and `@scope%2fname`, `@scope/name`) — a packument
//!   from the upstream that owns the name, checked and filtered, full
//!   (`application/json`) or abbreviated (`Accept:
//!   application/vnd.npm.install-v1+json`), every tarball URL pointing at
//!   bulwark;
//! - `GET /npm/<name>/-/<bare-name>-<version>.tgz` — a tarball, served only
//!   once its bytes hash to the sha512 of its version's `dist.integrity`
//!   (and from the store afterwards, also with the upstream down);
//! - `GET /npm/-/npm/v1/attestations/<name>@<version>` (also at the root,
//!   `/-/npm/v1/attestations/...`, where a client that joins the
//!   registry-absolute path npm writes onto the host asks) — the
//!   version's attestations answer as the registry sent it, once verified
//!   (and from the store afterwards, also with the upstream down or after
//!   the registry dropped it); packuments point `dist.attestations.url`
//!   here for the versions the registry lists attestations for. Every
//!   tarball carries `Bulwark-Attestation: verified|none|off`;
//! - `GET /npm/-/npm/v1/keys` — the registry keys the `*` upstream's
//!   signatures are checked with, in the registry's own format, so that
//!   `npm audit signatures` checks against the keys bulwark pins.
//!
//! Routes and wire shapes only: packuments and tarballs come from
//! [`super::resolve`], which works through the pipeline. Errors are the
//! pipeline's JSON body plus npm's `error` field, which `npm` prints.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::ecosystem::EcosystemContext;
use crate::federation::Federation;
use crate::http::{client_authority, full, json_response, ApiError, Front, ReqBody, ResBody};
use crate::pipeline::refusal::{offline_warning, Refusal};
use crate::pipeline::respond::{blob_response, BlobResponse};
use crate::sigstore::npm::USAGE_SIGNATURES;

use super::config::{Signatures, PROTOCOL};
use super::name::{version_ok, PackageName};
use super::packument::{Urls, ABBREVIATED};
use super::resolve::NpmUpstream;
use crate::pipeline::attest::{Attestations, Vouched};

const PREFIX: &str = "/npm/";
const KEYS: &str = "/npm/-/npm/v1/keys";
const ATTESTATIONS: &str = "/npm/-/npm/v1/attestations/";
/// The same, at the root.
const ROOT_ATTESTATIONS: &str = "/-/npm/v1/attestations/";
/// Longest request path taken.
const MAX_PATH: usize = 1024;

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Keys,
    Packument(PackageName),
    Tarball(PackageName, String),
    Attestations(PackageName, String),
}

/// npm's escaping of a name in a path: `@scope%2fname` (`%40` for `@` by
/// some clients); no other escape is part of a package name.
fn unescape(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_string());
    }
    let s = segment
        .replace("%2f", "/")
        .replace("%2F", "/")
        .replace("%40", "@");
    (!s.contains('%')).then_some(s)
}

impl Route {
    fn parse(path: &str) -> Result<Route, String> {
        if path == KEYS {
            return Ok(Route::Keys);
        }
        if path.len() > MAX_PATH {
            return Err("path too long".into());
        }
        if let Some(spec) = path
            .strip_prefix(ATTESTATIONS)
            .or_else(|| path.strip_prefix(ROOT_ATTESTATIONS))
        {
            // `<name>@<version>`; a scoped name starts with its own `@`.
            let spec = unescape(spec).ok_or_else(|| format!("not a package spec: {spec:?}"))?;
            let (name, version) = spec
                .get(1..)
                .and_then(|s| s.split_once('@'))
                .map(|(n, v)| (format!("{}{n}", &spec[..1]), v))
                .filter(|(_, v)| version_ok(v))
                .ok_or_else(|| format!("expected <name>@<version>, saw {spec:?}"))?;
            let name = PackageName::parse(&name).map_err(|e| e.to_string())?;
            return Ok(Route::Attestations(name, version.to_string()));
        }
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let rest = unescape(rest).ok_or_else(|| format!("not a package path: {path:?}"))?;
        let mut parts = rest.split('/');
        let first = parts.next().unwrap_or("");
        let name = if first.starts_with('@') {
            format!("{first}/{}", parts.next().unwrap_or(""))
        } else {
            first.to_string()
        };
        let name = PackageName::parse(&name).map_err(|e| e.to_string())?;
        let tail: Vec<&str> = parts.collect();
        match tail.as_slice() {
            [] | [""] => Ok(Route::Packument(name)),
            ["-", file] => {
                let version = file
                    .strip_prefix(name.bare())
                    .and_then(|f| f.strip_prefix('-'))
                    .and_then(|f| f.strip_suffix(".tgz"))
                    .filter(|v| version_ok(v))
                    .ok_or_else(|| {
                        format!(
                            "expected a tarball {}-<version>.tgz, saw {file:?}",
                            name.bare()
                        )
                    })?;
                Ok(Route::Tarball(name.clone(), version.to_string()))
            }
            _ => Err(format!("no such route under {name}")),
        }
    }
}

/// The npm front (see the module documentation).
pub struct NpmFront {
    federation: Arc<Federation>,
    upstreams: HashMap<String, Arc<NpmUpstream>>,
    https: bool,
    /// `[server] offline`: everything served carries the stale `Warning`.
    offline: bool,
}

fn npm_error(e: ApiError) -> Response<ResBody> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut v = serde_json::to_value(&e).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("error".into(), serde_json::Value::String(e.message.clone()));
    }
    json_response(status, &v)
}

fn not_found(message: String) -> Box<ApiError> {
    Box::new(ApiError::new(StatusCode::NOT_FOUND, message))
}

fn refused(r: Refusal) -> Box<ApiError> {
    Box::new(r.api_error())
}

/// Whether `Accept` asks for the abbreviated document (with a non-zero
/// weight).
fn wants_abbreviated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            parts.next() == Some(ABBREVIATED)
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        })
    })
}

impl NpmFront {
    /// The front for every `npm` upstream, or `None` if there is none.
    pub fn new(ctx: &EcosystemContext) -> anyhow::Result<Option<NpmFront>> {
        let mut upstreams = HashMap::new();
        for u in ctx.upstreams(PROTOCOL) {
            upstreams.insert(u.name.clone(), Arc::new(NpmUpstream::new(ctx, u)?));
        }
        if upstreams.is_empty() {
            return Ok(None);
        }
        Ok(Some(NpmFront {
            federation: ctx.federation.clone(),
            upstreams,
            https: ctx.config.server.tls.is_some(),
            offline: ctx.config.server.offline,
        }))
    }

    fn owner(&self, name: &str) -> Option<&Arc<NpmUpstream>> {
        self.federation
            .route(PROTOCOL, name)
            .and_then(|u| self.upstreams.get(&u.name))
    }

    fn keys(&self) -> Result<Response<ResBody>, Box<ApiError>> {
        // The upstream every name nobody claims goes to.
        let up = self
            .owner("")
            .filter(|u| u.settings.signatures == Signatures::Required)
            .ok_or_else(|| {
                not_found("no npm upstream with registry signatures takes \"*\"".into())
            })?;
        let mut keys: Vec<serde_json::Value> = Vec::new();
        for k in up.settings.keys.keys() {
            if k.usage != USAGE_SIGNATURES || keys.iter().any(|x| x["keyid"] == k.key_id) {
                continue;
            }
            keys.push(serde_json::json!({
                "expires": k.valid_until.map(|t| humantime::format_rfc3339_millis(t).to_string()),
                "keyid": k.key_id,
                "keytype": "ecdsa-sha2-nistp256",
                "scheme": "ecdsa-sha2-nistp256",
                "key": base64::engine::general_purpose::STANDARD.encode(&k.spki),
            }));
        }
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "keys": keys }),
        ))
    }

    async fn answer(&self, req: Request<ReqBody>) -> Result<Response<ResBody>, Box<ApiError>> {
        let route = Route::parse(req.uri().path()).map_err(not_found)?;
        let (name, version, attestations) = match route {
            Route::Keys => return self.keys(),
            Route::Packument(n) => (n, None, false),
            Route::Tarball(n, v) => (n, Some(v), false),
            Route::Attestations(n, v) => (n, Some(v), true),
        };
        let up = self
            .owner(name.as_str())
            .ok_or_else(|| not_found(format!("no npm upstream serves {name}")))?;
        if let (Some(version), true) = (&version, attestations) {
            let body = up
                .attestations(&name, version)
                .await
                .map_err(refused)?
                .ok_or_else(|| {
                    not_found(format!(
                        "no verified attestations for {name}@{version} (the registry has none, \
                         or attestations are off for the package)"
                    ))
                })?;
            let mut res = Response::new(full(body));
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Vouched::Attested.mark(h);
            return Ok(res);
        }
        if let Some(version) = version {
            let (blob, digest, vouched) = up.tarball(&name, &version).await.map_err(refused)?;
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
            return Ok(res);
        }
        let abbreviated = wants_abbreviated(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let (p, warning) = up.packument(&name).await.map_err(refused)?;
        let warning = offline_warning(self.offline, &up.name, warning);
        let base = match client_authority(&req) {
            Some(a) => format!("{}://{a}", if self.https { "https" } else { "http" }),
            None => String::new(),
        };
        let tarball =
            |n: &PackageName, v: &str| format!("{base}{PREFIX}{n}/-/{}-{v}.tgz", n.bare());
        let attestations =
            |n: &PackageName, v: &str| format!("{base}{ATTESTATIONS}{}@{v}", n.escaped());
        let body = p.render_with(
            abbreviated,
            &Urls {
                tarball: &tarball,
                attestations: (up.mode(&name) != Attestations::Off).then_some(&attestations),
            },
        );
        let mut res = Response::new(full(body));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if abbreviated {
                ABBREVIATED
            } else {
                "application/json"
            }),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        if let Some(w) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
            h.insert(header::WARNING, w);
        }
        Ok(res)
    }
}

impl Front for NpmFront {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return None;
        }
        let path = req.uri().path();
        if path == KEYS {
            Some("npm.keys")
        } else if path.starts_with(ATTESTATIONS) || path.starts_with(ROOT_ATTESTATIONS) {
            Some("npm.attestations")
        } else if !path.starts_with(PREFIX) {
            None
        } else if path.contains("/-/") {
            Some("npm.tarball")
        } else {
            Some("npm.packument")
        }
    }

    fn handle<'a>(
        &'a self,
        _route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        async move {
            match self.answer(req).await {
                Ok(r) => r,
                Err(e) => npm_error(*e),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_routes() {
        let n = |s: &str| PackageName::parse(s).unwrap();
        for (path, want) in [
            ("/npm/left-pad", Route::Packument(n("left-pad"))),
            ("/npm/@acme%2fpad", Route::Packument(n("@acme/pad"))),
            ("/npm/@acme%2Fpad", Route::Packument(n("@acme/pad"))),
            ("/npm/%40acme%2fpad", Route::Packument(n("@acme/pad"))),
            ("/npm/@acme/pad", Route::Packument(n("@acme/pad"))),
            (
                "/npm/@acme/pad/-/pad-1.0.0-rc.1.tgz",
                Route::Tarball(n("@acme/pad"), "1.0.0-rc.1".into()),
            ),
            (
                "/npm/left-pad/-/left-pad-1.3.0.tgz",
                Route::Tarball(n("left-pad"), "1.3.0".into()),
            ),
            ("/npm/-/npm/v1/keys", Route::Keys),
            (
                "/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.1",
                Route::Attestations(n("@playwright/cli"), "0.1.1".into()),
            ),
            (
                "/-/npm/v1/attestations/@playwright/cli@0.1.1",
                Route::Attestations(n("@playwright/cli"), "0.1.1".into()),
            ),
            (
                "/npm/-/npm/v1/attestations/left-pad@1.3.0",
                Route::Attestations(n("left-pad"), "1.3.0".into()),
            ),
        ] {
            assert_eq!(Route::parse(path), Ok(want), "{path}");
        }
        for bad in [
            "/npm/",
            "/npm/@acme",
            "/npm/left-pad/-/other-1.0.0.tgz",
            "/npm/left-pad/-/left-pad-1.0.0.zip",
            "/npm/left-pad/-/left-pad-..%2f.tgz",
            "/npm/left-pad/1.0.0",
            "/npm/a%20b",
            "/npm/-/whoami",
            "/npm/-/npm/v1/attestations/left-pad",
            "/npm/-/npm/v1/attestations/@acme%2fpad",
            "/npm/-/npm/v1/attestations/left-pad@..%2f",
            "/-/npm/v1/attestations/@",
            "/-/npm/v1/attestations/",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn abbreviated_only_when_asked_for() {
        assert!(wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
        )));
        assert!(!wants_abbreviated(Some("application/json")));
        assert!(!wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json;q=0, application/json"
        )));
        assert!(!wants_abbreviated(None));
    }
}
