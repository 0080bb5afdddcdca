//! Prometheus metrics, named for the questions an operator asks.
//!
//! One [`Metrics`] lives in the server's `App`; the server records requests,
//! the upstream client calls [`Metrics::observe_upstream_latency`], the
//! verifier [`Metrics::verification`] and [`Metrics::set_checkpoint_time`],
//! the stores [`Metrics::cache`]. `/metrics` serves [`Metrics::encode`].
//!
//! Label values are bounded: routes are static names chosen by the fronts,
//! upstreams come from configuration, checks are static names.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

// Routes are the fronts' static names: a request's series are found
// without an allocation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Verification {
    upstream: String,
    check: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    kind: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// All of bulwark's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    request_duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    queued: Gauge,
    rejected: Family<ReasonLabel, Counter>,
    upstream_latency: Family<UpstreamLabel, Histogram, fn() -> Histogram>,
    verifications: Family<Verification, Counter>,
    cache: Family<CacheLabel, Counter>,
    unvouched: Family<UpstreamLabel, Counter>,
    checkpoint_age: Family<UpstreamLabel, FloatGauge>,
    connections_open: Gauge,
    connections_closed: Family<ReasonLabel, Counter>,
    /// Unix time (seconds) of the newest verified checkpoint per upstream;
    /// the age gauge is computed from it at scrape time, so it keeps growing
    /// while no newer checkpoint is verified.
    checkpoint_times: Mutex<HashMap<String, f64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bulwark");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        let request_duration: Family<RouteLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response head, by route",
            request_duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled now (those counted against server.max_concurrency)",
            in_flight.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "http_requests_queued",
            "Requests waiting for one of the server.max_concurrency slots (server.queue_length)",
            queued.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_rejected_requests",
            "Requests refused before reaching a front (concurrency, body_too_large, unauthorized, timeout)",
            rejected.clone(),
        );
        let upstream_latency: Family<UpstreamLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_request_duration_seconds",
            "Latency of requests to upstream registries",
            upstream_latency.clone(),
        );
        let verifications = Family::<Verification, Counter>::default();
        registry.register(
            "verifications",
            "Verification outcomes by upstream, check and outcome (ok or fail)",
            verifications.clone(),
        );
        let cache = Family::<CacheLabel, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by kind and result (hit or miss)",
            cache.clone(),
        );
        let unvouched = Family::<UpstreamLabel, Counter>::default();
        registry.register(
            "unvouched_served",
            "Artifacts served with no verified attestation because the policy allows it \
             (attestations = \"if-present\"), by upstream",
            unvouched.clone(),
        );
        let checkpoint_age = Family::<UpstreamLabel, FloatGauge>::default();
        registry.register(
            "checkpoint_age_seconds",
            "Age of the newest verified checkpoint per upstream",
            checkpoint_age.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now (general and health-probe slots)",
            connections_open.clone(),
        );
        let connections_closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_closed_by_server",
            "Connections bulwark refused or closed itself, by reason (peer_limit, full, write_timeout, idle_timeout, probe_only)",
            connections_closed.clone(),
        );
        let build = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("build_info", "Version of this bulwark", build.clone());
        build
            .get_or_create(&vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )])
            .set(1);
        Metrics {
            registry,
            requests,
            request_duration,
            in_flight,
            queued,
            rejected,
            upstream_latency,
            verifications,
            cache,
            unvouched,
            checkpoint_age,
            connections_open,
            connections_closed,
            checkpoint_times: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the per-upstream series of a configured upstream, so that
    /// `/metrics` lists it (at zero) before its first request.
    /// (prometheus-client omits families that have no series yet.)
    pub fn register_upstream(&self, upstream: &str) {
        let _ = self.upstream_latency.get_or_create(&UpstreamLabel {
            upstream: upstream.to_string(),
        });
    }

    /// Records one answered request (called by the server).
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Marks a request as waiting in the queue; the guard marks it done
    /// when dropped.
    pub fn queued(&self) -> InFlight {
        self.queued.inc();
        InFlight(self.queued.clone())
    }

    /// Counts a request refused by the server itself.
    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Marks a client connection as open; the guard marks it closed when
    /// dropped.
    pub fn connection_open(&self) -> OpenConnection {
        self.connections_open.inc();
        OpenConnection(self.connections_open.clone())
    }

    /// Counts a connection bulwark refused or closed itself, by `reason`.
    pub fn connection_closed(&self, reason: &str) {
        self.connections_closed
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records the latency of one request to `upstream`.
    pub fn observe_upstream_latency(&self, upstream: &str, dur: Duration) {
        self.upstream_latency
            .get_or_create(&UpstreamLabel {
                upstream: upstream.to_string(),
            })
            .observe(dur.as_secs_f64());
    }

    /// Records the outcome of one verification `check` (e.g.
    /// `checkpoint_signature`, `consistency`, `inclusion`, `content_digest`,
    /// `witness_quorum`, `freshness`) for `upstream`.
    pub fn verification(&self, upstream: &str, check: &str, ok: bool) {
        self.verifications
            .get_or_create(&Verification {
                upstream: upstream.to_string(),
                check: check.to_string(),
                outcome: if ok { "ok" } else { "fail" }.to_string(),
            })
            .inc();
    }

    /// Counts an artifact of `upstream` served without a verified
    /// attestation, as its `if-present` policy allows.
    pub fn unvouched(&self, upstream: &str) {
        self.unvouched
            .get_or_create(&UpstreamLabel {
                upstream: upstream.to_string(),
            })
            .inc();
    }

    /// Records a cache lookup of `kind` (e.g. `blob`, `tile`, `checkpoint`).
    pub fn cache(&self, kind: &str, hit: bool) {
        self.cache
            .get_or_create(&CacheLabel {
                kind: kind.to_string(),
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    /// Records that the newest verified checkpoint of `upstream` is `secs`
    /// seconds old now (the reported age keeps growing from there).
    pub fn set_checkpoint_age(&self, upstream: &str, secs: f64) {
        let t = unix_now() - secs;
        self.set_checkpoint_unix(upstream, t);
    }

    /// Records the time of the newest verified checkpoint of `upstream`.
    pub fn set_checkpoint_time(&self, upstream: &str, time: SystemTime) {
        let t = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.set_checkpoint_unix(upstream, t);
    }

    fn set_checkpoint_unix(&self, upstream: &str, t: f64) {
        let mut m = self
            .checkpoint_times
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        m.insert(upstream.to_string(), t);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        {
            let now = unix_now();
            let m = self
                .checkpoint_times
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for (upstream, t) in m.iter() {
                self.checkpoint_age
                    .get_or_create(&UpstreamLabel {
                        upstream: upstream.clone(),
                    })
                    .set((now - t).max(0.0));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# encoding failed\n");
        }
        out
    }
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Decrements the open-connections gauge when dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_every_family_with_labels() {
        let m = Metrics::new();
        m.request("healthz", 200, Duration::from_millis(1));
        m.observe_upstream_latency("golang", Duration::from_millis(20));
        m.verification("golang", "inclusion", false);
        m.cache("tile", true);
        m.set_checkpoint_age("golang", 30.0);
        let open = m.connection_open();
        m.connection_closed("write_timeout");
        let text = m.encode();
        drop(open);
        assert!(m.encode().contains("bulwark_connections_open 0"));
        for want in [
            "bulwark_http_requests_total{route=\"healthz\",status=\"200\"} 1",
            "bulwark_upstream_request_duration_seconds_count{upstream=\"golang\"} 1",
            "bulwark_verifications_total{upstream=\"golang\",check=\"inclusion\",outcome=\"fail\"} 1",
            "bulwark_cache_lookups_total{kind=\"tile\",result=\"hit\"} 1",
            "bulwark_checkpoint_age_seconds{upstream=\"golang\"} 3",
            "bulwark_connections_open 1",
            "bulwark_connections_closed_by_server_total{reason=\"write_timeout\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
