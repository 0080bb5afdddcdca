//! Tests of bulwark's upstream HTTP client (`bulwark::upstream`) against a
//! real local upstream: a hyper server on 127.0.0.1:0 (plain or TLS with a
//! CA made here by rcgen) that counts the requests it receives and can hold
//! its answers until the test releases them. DNS is tested through a real
//! dnsmasq on loopback when the `dnsmasq` binary (Debian `dnsmasq-base`) is
//! installed.

use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulwark::upstream::{
    TimeoutPhase, UpstreamClient, UpstreamError, UpstreamOptions, UpstreamRequest,
};
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::StreamExt;
use http::header::{HeaderValue, AUTHORIZATION};
use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

/// A hang in a test becomes a failure after this long (it is not a timing
/// assertion: every test finishes long before it when the code is right).
const HANG_GUARD: Duration = Duration::from_secs(60);

type Body = BoxBody<Bytes, Infallible>;
type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// Gets the request and its 1-based number among all requests received.
type Handler = Arc<dyn Fn(Request<Incoming>, usize) -> HandlerFuture + Send + Sync>;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

/// The local test upstream. Dropping it stops the server and its
/// connections.
struct TestUpstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestUpstream {
    async fn start(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let counter = counter.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        let fut = handler(req, n);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            // A client that refuses our certificate ends here.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        });
        TestUpstream { addr, hits, server }
    }

    async fn plain(handler: Handler) -> Self {
        Self::start(handler, None).await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Holds answers until released, and tells the test when the first request
/// arrived.
#[derive(Clone)]
struct Gate {
    arrived: Arc<Notify>,
    open: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            arrived: Arc::new(Notify::new()),
            open: Arc::new(Semaphore::new(0)),
        }
    }

    async fn pass(&self) {
        self.arrived.notify_one();
        let _ = self.open.acquire().await;
    }

    fn release(&self) {
        self.open.close();
    }
}

fn options(upstream: &TestUpstream) -> UpstreamOptions {
    let mut o = UpstreamOptions::new("test-upstream", upstream.url());
    o.retry_backoff = Duration::from_millis(1);
    o
}

async fn guarded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .expect("test hung")
}

/// Starts 50 identical GETs, releases the upstream only once all 50 wait on
/// the one fetch, and returns their outcomes.
async fn fifty_gets_through_a_gate(
    client: &UpstreamClient,
    gate: &Gate,
    path: &str,
) -> Vec<Result<bulwark::upstream::UpstreamResponse, UpstreamError>> {
    let requests = join_all((0..50).map(|_| client.get(path)));
    let release = async {
        gate.arrived.notified().await;
        while client.stats().waiting < 50 {
            tokio::task::yield_now().await;
        }
        gate.release();
    };
    let (outcomes, ()) = guarded(async { tokio::join!(requests, release) }).await;
    outcomes
}

#[tokio::test]
async fn fifty_concurrent_gets_for_one_slow_object_make_one_upstream_request() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |req: Request<Incoming>, _| {
        let g = g.clone();
        Box::pin(async move {
            g.pass().await;
            full(StatusCode::OK, format!("object at {}", req.uri().path()))
        })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();

    let outcomes = fifty_gets_through_a_gate(&client, &gate, "/slow/object").await;

    assert_eq!(upstream.hits(), 1, "upstream saw more than one request");
    assert_eq!(outcomes.len(), 50);
    for outcome in outcomes {
        let response = outcome.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(&response.body[..], b"object at /slow/object");
    }
    let stats = client.stats();
    assert_eq!(stats.coalesced, 49);
    assert_eq!(stats.attempts, 1);
    assert_eq!((stats.waiting, stats.in_flight), (0, 0));

    // The finished fetch is not kept: the next request goes upstream again.
    let again = guarded(client.get("/slow/object")).await.unwrap();
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn fifty_concurrent_gets_for_one_missing_object_make_one_upstream_request() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |_, _| {
        let g = g.clone();
        Box::pin(async move {
            g.pass().await;
            full(StatusCode::NOT_FOUND, "no such object")
        })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();

    let outcomes = fifty_gets_through_a_gate(&client, &gate, "/missing").await;

    assert_eq!(upstream.hits(), 1);
    for outcome in outcomes {
        let response = outcome.unwrap();
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        assert_eq!(&response.body[..], b"no such object");
        let err = response.error_for_status().unwrap_err();
        assert_eq!(err.http_status(), 404);
    }
}

#[tokio::test]
async fn coalesced_requests_share_an_error() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut o = UpstreamOptions::new("gone", format!("http://{addr}"));
    o.retries = 0;
    let client = UpstreamClient::new(o).unwrap();

    let outcomes = guarded(join_all((0..10).map(|_| client.get("/x")))).await;

    assert_eq!(client.stats().attempts, 1);
    for outcome in outcomes {
        match outcome.unwrap_err() {
            e @ UpstreamError::Connect { .. } => {
                assert_eq!(e.http_status(), 502);
                let text = e.to_string();
                assert!(text.contains("upstream gone"), "{text}");
                assert!(text.contains(&format!("http://{addr}/x")), "{text}");
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_breaker_stops_asking_an_upstream_that_keeps_failing() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::SERVICE_UNAVAILABLE, "down") })
    }))
    .await;
    let mut o = options(&upstream);
    o.retries = 1;
    o.breaker_threshold = 2;
    o.breaker_cooldown = Duration::from_secs(3600);
    let client = UpstreamClient::new(o).unwrap();

    // Requests a client chose (not marked as probes) that fail say nothing
    // about the upstream's health: they never open the breaker.
    for i in 0..5 {
        let response = guarded(client.get(&format!("/client-{i}"))).await.unwrap();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(!client.stats().breaker_open);
    assert_eq!(upstream.hits(), 10);

    // bulwark's own requests do.
    for _ in 0..2 {
        let response = guarded(client.send(UpstreamRequest::get("/x").probe()))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(upstream.hits(), 14, "two probes, each retried once");
    assert!(client.stats().breaker_open);

    // Any request, even a publish, is now refused without reaching it.
    let err = guarded(client.get("/y")).await.unwrap_err();
    assert!(
        matches!(err, UpstreamError::CircuitOpen { failures: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 502);
    let err = guarded(client.post("/p", HeaderValue::from_static("text/plain"), "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(upstream.hits(), 14);
    assert_eq!(client.stats().breaker_rejections, 2);
}

#[tokio::test]
async fn a_404_within_the_negative_ttl_does_not_reach_the_upstream() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::NOT_FOUND, "missing") })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();

    let first = guarded(client.get("/nope")).await.unwrap();
    let second = guarded(client.get("/nope")).await.unwrap();
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    assert_eq!(second.status, StatusCode::NOT_FOUND);
    assert_eq!(&second.body[..], b"missing");
    assert_eq!(upstream.hits(), 1);
    assert_eq!(client.stats().negative_hits, 1);

    // Another path is another object.
    guarded(client.get("/other")).await.unwrap();
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn without_a_negative_ttl_every_404_reaches_the_upstream() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::NOT_FOUND, "missing") })
    }))
    .await;
    let mut o = options(&upstream);
    o.negative_ttl = Duration::ZERO;
    let client = UpstreamClient::new(o).unwrap();

    guarded(client.get("/nope")).await.unwrap();
    guarded(client.get("/nope")).await.unwrap();
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn a_200_is_not_negatively_cached() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::OK, "here") })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();
    guarded(client.get("/x")).await.unwrap();
    guarded(client.get("/x")).await.unwrap();
    assert_eq!(upstream.hits(), 2);
}

/// What the latency hook was called with (upstream, status).
type Observed = (String, Option<u16>);

#[tokio::test]
async fn retries_503_twice_then_returns_the_200() {
    let upstream = TestUpstream::plain(Arc::new(|_, n| {
        Box::pin(async move {
            if n <= 2 {
                full(StatusCode::SERVICE_UNAVAILABLE, "busy")
            } else {
                full(StatusCode::OK, "finally")
            }
        })
    }))
    .await;
    let seen: Arc<Mutex<Vec<Observed>>> = Arc::default();
    let mut o = options(&upstream);
    o.retries = 2;
    let s = seen.clone();
    o.latency_hook = Some(Arc::new(move |name: &str, _: Duration, status| {
        s.lock().unwrap().push((name.to_string(), status));
    }));
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/flaky")).await.unwrap();

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"finally");
    assert_eq!(upstream.hits(), 3);
    let name = "test-upstream".to_string();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (name.clone(), Some(503)),
            (name.clone(), Some(503)),
            (name, Some(200))
        ]
    );
}

#[tokio::test]
async fn gives_up_after_the_configured_retries() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::BAD_GATEWAY, "down") })
    }))
    .await;
    let mut o = options(&upstream);
    o.retries = 3;
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/down")).await.unwrap();

    assert_eq!(response.status, StatusCode::BAD_GATEWAY);
    assert_eq!(upstream.hits(), 4);
    let err = response.error_for_status().unwrap_err();
    assert!(matches!(err, UpstreamError::Status { code: 502, .. }));
    assert_eq!(err.http_status(), 502);
}

#[tokio::test]
async fn does_not_retry_a_4xx() {
    for status in [
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let upstream = TestUpstream::plain(Arc::new(move |_, _| {
            Box::pin(async move { full(status, "no") })
        }))
        .await;
        let mut o = options(&upstream);
        o.retries = 3;
        let client = UpstreamClient::new(o).unwrap();
        let response = guarded(client.get("/x")).await.unwrap();
        assert_eq!(response.status, status);
        assert_eq!(upstream.hits(), 1, "{status} was retried");
    }
}

#[tokio::test]
async fn a_publishing_post_is_sent_once_even_on_503() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::SERVICE_UNAVAILABLE, "busy") })
    }))
    .await;
    let mut o = options(&upstream);
    o.retries = 3;
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.post(
        "/v1/package/record",
        HeaderValue::from_static("application/json"),
        r#"{"record":1}"#,
    ))
    .await
    .unwrap();

    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn idempotent_posts_are_coalesced_by_body_and_carry_it() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |req: Request<Incoming>, _| {
        let g = g.clone();
        Box::pin(async move {
            let content_type = req.headers()["content-type"].to_str().unwrap().to_string();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            g.pass().await;
            let mut echo = content_type.into_bytes();
            echo.push(b' ');
            echo.extend_from_slice(&body);
            full(StatusCode::OK, echo)
        })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();

    let same =
        join_all((0..10).map(|_| client.post_json_idempotent("/v1/fetch/logs", r#"{"a":1}"#)));
    let release = async {
        gate.arrived.notified().await;
        while client.stats().waiting < 10 {
            tokio::task::yield_now().await;
        }
        gate.release();
    };
    let (outcomes, ()) = guarded(async { tokio::join!(same, release) }).await;
    assert_eq!(upstream.hits(), 1);
    for outcome in outcomes {
        assert_eq!(&outcome.unwrap().body[..], br#"application/json {"a":1}"#);
    }

    // A different body is a different request.
    let other = guarded(client.post_json_idempotent("/v1/fetch/logs", r#"{"a":2}"#))
        .await
        .unwrap();
    assert_eq!(&other.body[..], br#"application/json {"a":2}"#);
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn sends_the_bearer_token_and_the_base_path() {
    let upstream = TestUpstream::plain(Arc::new(|req: Request<Incoming>, _| {
        Box::pin(async move {
            let auth = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let target = req.uri().path_and_query().unwrap().to_string();
            full(StatusCode::OK, format!("{auth}|{target}"))
        })
    }))
    .await;
    let mut o = UpstreamOptions::new("private", format!("{}/mirror/", upstream.url()));
    o.bearer_token = Some("s3cret".into());
    assert!(
        !format!("{o:?}").contains("s3cret"),
        "Debug shows the token"
    );
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/golang.org/x/mod/@v/list?x=1"))
        .await
        .unwrap();
    assert_eq!(
        &response.body[..],
        b"Bearer s3cret|/mirror/golang.org/x/mod/@v/list?x=1"
    );
    assert_eq!(
        client.url_for("/a").unwrap(),
        format!("{}/mirror/a", upstream.url())
    );
}

#[tokio::test]
async fn maps_only_urls_under_the_base_url_to_paths() {
    let client =
        UpstreamClient::new(UpstreamOptions::new("u", "https://registry.example/v1/")).unwrap();
    assert_eq!(
        client
            .path_of("https://registry.example/v1/content/sha256:ab?x=1")
            .as_deref(),
        Some("/content/sha256:ab?x=1")
    );
    for url in [
        "https://registry.example/v2/content",
        "https://registry.example/v1content",
        "http://registry.example/v1/content",
        "https://registry.example:8443/v1/content",
        "https://registry.example.evil/v1/content",
        "https://other.example/v1/content",
    ] {
        assert_eq!(client.path_of(url), None, "{url}");
    }
}

#[tokio::test]
async fn refuses_paths_that_would_leave_the_upstream() {
    let client = UpstreamClient::new(UpstreamOptions::new("u", "http://127.0.0.1:9")).unwrap();
    for path in [
        "http://elsewhere.example/x",
        "//elsewhere.example/x",
        "x",
        "/a#frag",
        "/a b",
    ] {
        let err = client.get(path).await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::InvalidRequest { .. }),
            "{path}: {err:?}"
        );
    }
    assert_eq!(client.stats().attempts, 0);
}

#[tokio::test]
async fn refuses_bad_base_urls() {
    for base in [
        "ftp://host/",
        "http://user:pw@host/",
        "http://host/?q=1",
        "not a url",
    ] {
        let err = UpstreamClient::new(UpstreamOptions::new("u", base)).unwrap_err();
        assert!(
            matches!(err, UpstreamError::Config { .. }),
            "{base}: {err:?}"
        );
    }
}

/// A streaming body of `chunks` chunks of 64 KiB that counts what it
/// produced and notifies `dropped` when hyper lets go of it.
fn counted_stream(chunks: usize, produced: Arc<AtomicUsize>, dropped: Arc<Notify>) -> Body {
    struct OnDrop(Arc<Notify>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.notify_one();
        }
    }
    let guard = OnDrop(dropped);
    let stream = futures_util::stream::iter(0..chunks).map(move |_| {
        let _keep = &guard;
        produced.fetch_add(64 * 1024, Ordering::SeqCst);
        Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 64 * 1024])))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

#[tokio::test]
async fn stops_reading_a_streamed_body_over_the_cap() {
    const TOTAL_CHUNKS: usize = 4096; // 256 MiB if anyone read it all
    let produced = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(Notify::new());
    let (p, d) = (produced.clone(), dropped.clone());
    let upstream = TestUpstream::plain(Arc::new(move |_, _| {
        let body = counted_stream(TOTAL_CHUNKS, p.clone(), d.clone());
        Box::pin(async move { Response::new(body) })
    }))
    .await;
    let mut o = options(&upstream);
    o.max_response_bytes = 256 * 1024;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/huge")).await.unwrap_err();
    match &err {
        UpstreamError::TooLarge {
            limit, declared, ..
        } => {
            assert_eq!(*limit, 256 * 1024);
            assert_eq!(*declared, None);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("262144 bytes"), "{err}");
    // The client hung up: the server's body is dropped long before its end.
    guarded(dropped.notified()).await;
    let sent = produced.load(Ordering::SeqCst);
    assert!(
        sent < TOTAL_CHUNKS * 64 * 1024 / 4,
        "upstream produced {sent} bytes: the client kept reading"
    );
    assert_eq!(upstream.hits(), 1, "TooLarge must not be retried");
}

#[tokio::test]
async fn refuses_a_declared_content_length_over_the_cap() {
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async { full(StatusCode::OK, vec![0u8; 1001]) })
    }))
    .await;
    let mut o = options(&upstream);
    o.max_response_bytes = 1000;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/big")).await.unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::TooLarge {
                limit: 1000,
                declared: Some(1001),
                ..
            }
        ),
        "{err:?}"
    );
    // A per-request cap can allow it, and exactly the cap is fine.
    let ok = guarded(client.send(UpstreamRequest::get("/big").max_response_bytes(1001)))
        .await
        .unwrap();
    assert_eq!(ok.body.len(), 1001);
}

#[tokio::test]
async fn a_silent_upstream_times_out() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |_, _| {
        let g = g.clone();
        Box::pin(async move {
            g.pass().await;
            full(StatusCode::OK, "too late")
        })
    }))
    .await;
    let mut o = options(&upstream);
    o.request_timeout = Duration::from_millis(200);
    o.retries = 0;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/slow")).await.unwrap_err();
    gate.release();

    match &err {
        UpstreamError::Timeout { after, phase, .. } => {
            assert_eq!(*after, Duration::from_millis(200));
            assert_eq!(*phase, TimeoutPhase::Request);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(err.is_timeout());
    assert_eq!(err.http_status(), 504);
}

#[tokio::test]
async fn a_timed_out_get_is_retried() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |_, n| {
        let g = g.clone();
        Box::pin(async move {
            if n == 1 {
                g.pass().await;
            }
            full(StatusCode::OK, format!("answer {n}"))
        })
    }))
    .await;
    let mut o = options(&upstream);
    o.request_timeout = Duration::from_millis(200);
    o.retries = 1;
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/x")).await.unwrap();
    gate.release();
    assert_eq!(&response.body[..], b"answer 2");
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn resolves_localhost_with_the_system_configuration() {
    // hickory answers `localhost` itself (RFC 6761); no query leaves the host.
    let upstream = TestUpstream::plain(hello()).await;
    let client = UpstreamClient::new(UpstreamOptions::new(
        "local",
        format!("http://localhost:{}", upstream.addr.port()),
    ))
    .unwrap();
    let response = guarded(client.get("/")).await.unwrap();
    assert_eq!(&response.body[..], b"hello over HTTP/1.1");
    assert_eq!(response.version, Version::HTTP_11);
}

#[tokio::test]
async fn a_nameserver_that_never_answers_times_out_the_connect() {
    // Bound, so queries are delivered, but never read: no answer comes.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut o = UpstreamOptions::new("mute-dns", "http://registry.test");
    o.dns = Some(silent.local_addr().unwrap());
    o.connect_timeout = Duration::from_millis(300);
    o.retries = 0;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/")).await.unwrap_err();
    match &err {
        UpstreamError::Timeout { phase, after, .. } => {
            assert_eq!(*phase, TimeoutPhase::Connect);
            assert_eq!(*after, Duration::from_millis(300));
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert_eq!(err.http_status(), 504);
}

#[tokio::test]
async fn a_per_request_timeout_overrides_the_default() {
    let gate = Gate::new();
    let g = gate.clone();
    let upstream = TestUpstream::plain(Arc::new(move |_, _| {
        let g = g.clone();
        Box::pin(async move {
            g.pass().await;
            full(StatusCode::OK, "late")
        })
    }))
    .await;
    let mut o = options(&upstream);
    o.retries = 0;
    let client = UpstreamClient::new(o).unwrap();

    let request = UpstreamRequest::get("/slow").timeout(Duration::from_millis(150));
    let err = guarded(client.send(request)).await.unwrap_err();
    gate.release();
    assert!(
        matches!(err, UpstreamError::Timeout { after, .. } if after == Duration::from_millis(150)),
        "{err:?}"
    );
}

// ---- TLS ----

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A CA and a server certificate for `names` signed by it.
fn pki(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bulwark test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

fn hello() -> Handler {
    Arc::new(|req: Request<Incoming>, _| {
        Box::pin(async move { full(StatusCode::OK, format!("hello over {:?}", req.version())) })
    })
}

#[tokio::test]
async fn trusts_an_upstream_signed_by_the_extra_ca_and_speaks_http2() {
    let pki = pki(&["127.0.0.1"]);
    let upstream = TestUpstream::start(hello(), Some(pki.server.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let mut o = UpstreamOptions::new("tls", format!("https://{}", upstream.addr));
    o.extra_ca_pem = Some(ca_file);
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/")).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.version, Version::HTTP_2);
    assert_eq!(&response.body[..], b"hello over HTTP/2.0");
}

#[tokio::test]
async fn refuses_an_upstream_whose_ca_is_not_trusted() {
    let pki = pki(&["127.0.0.1"]);
    let upstream = TestUpstream::start(hello(), Some(pki.server.clone())).await;
    let mut o = UpstreamOptions::new("tls", format!("https://{}", upstream.addr));
    o.retries = 3;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/")).await.unwrap_err();
    match &err {
        UpstreamError::Tls { reason, .. } => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert_eq!(upstream.hits(), 0);
    assert_eq!(
        client.stats().attempts,
        1,
        "a TLS failure must not be retried"
    );
}

#[tokio::test]
async fn refuses_an_extra_ca_file_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.pem");
    std::fs::write(&file, "not a certificate\n").unwrap();
    let mut o = UpstreamOptions::new("tls", "https://127.0.0.1:1");
    o.extra_ca_pem = Some(file);
    let err = UpstreamClient::new(o).unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
}

// ---- DNS through a real dnsmasq ----

/// dnsmasq on 127.0.0.1:<port>, killed on drop.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_dnsmasq() -> Option<&'static str> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

impl Dnsmasq {
    /// Starts dnsmasq answering `name` with 127.0.0.1 and nothing else;
    /// returns once it says it has started (its sockets are bound by then).
    fn start(binary: &str, name: &str) -> Self {
        // A free port for both UDP and TCP; dnsmasq binds it right after.
        let port = loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break port;
            }
        };
        let mut child = Command::new(binary)
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--log-facility=-",
                "--pid-file=",
                &format!("--address=/{name}/127.0.0.1"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start dnsmasq");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let started = line.contains("started");
                    log.push(line);
                    if started {
                        break;
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("dnsmasq exited before starting: {}", log.join("\n"));
                }
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

#[tokio::test]
async fn resolves_the_upstream_through_the_configured_nameserver() {
    let Some(binary) = find_dnsmasq() else {
        eprintln!("SKIPPED: dnsmasq not installed (Debian package dnsmasq-base)");
        return;
    };
    let dns = Dnsmasq::start(binary, "upstream.test");
    let pki = pki(&["upstream.test"]);
    let upstream = TestUpstream::start(hello(), Some(pki.server.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let mut o = UpstreamOptions::new(
        "by-name",
        format!("https://upstream.test:{}", upstream.addr.port()),
    );
    o.extra_ca_pem = Some(ca_file);
    o.dns = Some(dns.addr);
    let client = UpstreamClient::new(o).unwrap();

    let response = guarded(client.get("/")).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"hello over HTTP/2.0");
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn reports_a_name_the_nameserver_does_not_know_as_a_dns_error() {
    let Some(binary) = find_dnsmasq() else {
        eprintln!("SKIPPED: dnsmasq not installed (Debian package dnsmasq-base)");
        return;
    };
    let dns = Dnsmasq::start(binary, "upstream.test");
    let mut o = UpstreamOptions::new("unknown", "http://nowhere.test:8080");
    o.dns = Some(dns.addr);
    o.retries = 0;
    let client = UpstreamClient::new(o).unwrap();

    let err = guarded(client.get("/")).await.unwrap_err();
    match &err {
        UpstreamError::Dns { host, .. } => assert_eq!(host, "nowhere.test"),
        other => panic!("expected a DNS error, got {other:?}"),
    }
    assert_eq!(err.http_status(), 502);
}

#[tokio::test]
async fn a_streamed_download_is_capped_while_it_is_read() {
    use futures_util::StreamExt as _;
    // 3 MiB in 64 KiB frames, with no Content-Length: the cap can only be
    // enforced while reading.
    let upstream = TestUpstream::plain(Arc::new(|_, _| {
        Box::pin(async {
            let chunks = (0..48).map(|i| {
                Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(vec![
                    i as u8;
                    64 * 1024
                ])))
            });
            let body = StreamBody::new(futures_util::stream::iter(chunks));
            Response::new(BodyExt::boxed(body))
        })
    }))
    .await;
    let client = UpstreamClient::new(options(&upstream)).unwrap();

    // Within the cap: every byte, in order, never gathered whole.
    let mut got = guarded(client.send_streaming(UpstreamRequest::get("/blob")))
        .await
        .unwrap();
    assert_eq!(got.status, StatusCode::OK);
    let mut n = 0usize;
    while let Some(chunk) = got.body.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.iter().all(|&b| b == (n / (64 * 1024)) as u8));
        n += chunk.len();
    }
    assert_eq!(n, 3 << 20);

    // Over the cap: the stream fails, it never just ends short.
    let mut got =
        guarded(client.send_streaming(UpstreamRequest::get("/blob").max_response_bytes(1 << 20)))
            .await
            .unwrap();
    let mut n = 0usize;
    let err = loop {
        match got.body.next().await {
            Some(Ok(c)) => n += c.len(),
            Some(Err(e)) => break e,
            None => panic!("the stream ended short instead of failing"),
        }
    };
    assert!(n <= 1 << 20);
    let msg = err.to_string();
    assert!(
        msg.contains("larger than") && msg.contains("/blob"),
        "{msg}"
    );
}
