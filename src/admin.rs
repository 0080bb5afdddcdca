//! The admin routes every bulwark answers: `/healthz` (the process is alive),
//! `/readyz` (configuration loaded, data directory writable, every front
//! ready) and `/metrics` (Prometheus text).
//!
//! An ordinary front ([`Admin`]), added first by `main.rs` so it is asked
//! before any protocol front. Its probes (`/healthz`, `/readyz`) skip
//! authentication and the queue; none of its routes counts against the
//! concurrency limit.
//!
//! `/healthz` and `/readyz` answer without authentication (orchestrators
//! probe them); `/readyz` writes and fsyncs a probe file, so its result is
//! kept for [`READY_TTL`] and computed by one caller at a time: however
//! often it is called, the data directory sees at most one probe per
//! [`READY_TTL`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::http::{full, json_response, ApiError, Front, ReqBody, ResBody};
use crate::metrics::Metrics;

/// Route label of `/healthz`.
pub const ROUTE_HEALTHZ: &str = "healthz";
/// Route label of `/readyz`.
pub const ROUTE_READYZ: &str = "readyz";
/// Route label of `/metrics`.
pub const ROUTE_METRICS: &str = "metrics";

/// The admin route label for `path`, if it is one.
pub fn route(path: &str) -> Option<&'static str> {
    match path {
        "/healthz" => Some(ROUTE_HEALTHZ),
        "/readyz" => Some(ROUTE_READYZ),
        "/metrics" => Some(ROUTE_METRICS),
        _ => None,
    }
}

#[derive(Serialize)]
struct Status<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The admin front.
pub struct Admin {
    metrics: Arc<Metrics>,
    data_dir: PathBuf,
    /// The protocol fronts whose readiness `/readyz` reports.
    fronts: Vec<Arc<dyn Front>>,
    ready: ReadyCache,
}

impl Admin {
    /// The admin routes over `metrics`, probing `data_dir` and `fronts`.
    pub fn new(metrics: Arc<Metrics>, data_dir: PathBuf, fronts: Vec<Arc<dyn Front>>) -> Admin {
        Admin {
            metrics,
            data_dir,
            fronts,
            ready: ReadyCache::default(),
        }
    }
}

impl Front for Admin {
    fn route(&self, req: &Request<ReqBody>) -> Option<&'static str> {
        route(req.uri().path())
    }

    fn handle<'a>(
        &'a self,
        route: &'static str,
        req: Request<ReqBody>,
    ) -> BoxFuture<'a, Response<ResBody>> {
        Box::pin(handle(self, route, req))
    }

    fn is_probe(&self, route: &'static str) -> bool {
        route == ROUTE_HEALTHZ || route == ROUTE_READYZ
    }

    fn is_unlimited(&self, _route: &'static str) -> bool {
        true
    }
}

/// Answers an admin route.
async fn handle(app: &Admin, route: &'static str, req: Request<ReqBody>) -> Response<ResBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} accepts GET only", req.uri().path()),
        )
        .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    match route {
        ROUTE_HEALTHZ => json_response(
            StatusCode::OK,
            &Status {
                status: "ok",
                reason: None,
            },
        ),
        ROUTE_READYZ => match readiness(app).await {
            Ok(()) => json_response(
                StatusCode::OK,
                &Status {
                    status: "ready",
                    reason: None,
                },
            ),
            Err(reason) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &Status {
                    status: "not ready",
                    reason: Some(reason),
                },
            ),
        },
        _ => {
            let mut res = Response::new(full(app.metrics.encode()));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
    }
}

/// How long a `/readyz` result is reused.
pub const READY_TTL: Duration = Duration::from_secs(1);

/// The last readiness result and when it was computed.
#[derive(Debug, Default)]
struct ReadyCache(tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>);

/// Readiness, from the cache while it is fresh; otherwise computed once
/// (concurrent callers wait for that one result).
async fn readiness(app: &Admin) -> Result<(), String> {
    let mut last = app.ready.0.lock().await;
    if let Some((at, r)) = last.as_ref() {
        if at.elapsed() < READY_TTL {
            app.metrics.cache("readyz", true);
            return r.clone();
        }
    }
    app.metrics.cache("readyz", false);
    let r = probe(app).await;
    *last = Some((Instant::now(), r.clone()));
    r
}

/// The data directory takes a write (a probe file written, synced and
/// removed) and every front reports ready.
async fn probe(app: &Admin) -> Result<(), String> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let dir = app.data_dir.clone();
    let probe = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        let path = dir.join(format!(".readyz-{}-{n}", std::process::id()));
        let mut f = std::fs::File::create(&path)?;
        f.write_all(b"ok")?;
        f.sync_all()?;
        drop(f);
        std::fs::remove_file(&path)
    })
    .await;
    match probe {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(format!(
                "data directory {} is not writable: {e}",
                app.data_dir.display()
            ))
        }
        Err(e) => return Err(format!("readiness probe failed: {e}")),
    }
    app.fronts.iter().try_for_each(|f| f.ready())
}
