//! End-to-end tests of the server through the real `bulwark` binary: start-up
//! on port 0, admin routes, clean SIGTERM shutdown, configuration errors,
//! `check-config`, and the limits (body size, header floods, slow clients,
//! bearer tokens, the concurrency limit), plus HTTP/2 with prior knowledge.
//!
//! Abusive clients speak raw bytes over `std::net::TcpStream`; nothing here
//! waits on a clock to synchronise: tests poll `/metrics` for the state they
//! need, and only assert outcomes.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The binary under test. `BULWARK_BIN` overrides it (useful when several
/// worktrees share one target directory and its `target/debug/bulwark`).
fn bin() -> PathBuf {
    std::env::var_os("BULWARK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bulwark")))
}
const GO_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
/// A valid P-256 public key (the curve's generator point, compressed).
const WARG_KEY: &str = "ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW";
/// Bounds every blocking read so a broken server fails a test instead of
/// hanging it (a guard, not synchronisation).
const IO_GUARD: Duration = Duration::from_secs(30);

/// A running bulwark, killed when dropped.
struct Bulwark {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Bulwark {
    /// Starts bulwark with `server_extra` lines added to `[server]` and
    /// `rest` appended (upstreams).
    fn start(server_extra: &str, rest: &str) -> Bulwark {
        Bulwark::start_in(tempfile::tempdir().unwrap(), server_extra, rest)
    }

    /// Like [`Bulwark::start`], with the config written into `dir`.
    fn start_in(dir: tempfile::TempDir, server_extra: &str, rest: &str) -> Bulwark {
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{server_extra}\n\n{rest}",
            dir.path().join("data")
        );
        let path = dir.path().join("bulwark.toml");
        std::fs::write(&path, config).unwrap();
        let support::serve::Spawned {
            child,
            addr,
            stderr,
        } = support::serve::spawn(&bin(), &path, "info");
        Bulwark {
            child,
            addr,
            stderr,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Response {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: bulwark\r\nConnection: close\r\n\r\n"
        ))
    }

    fn request(&self, raw: &str) -> Response {
        exchange(self.addr, raw.as_bytes())
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(IO_GUARD)).unwrap();
        s
    }

    /// The value of an unlabelled metric line `name value`.
    fn metric(&self, name: &str) -> Option<f64> {
        let m = self.get("/metrics");
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Polls `/metrics` until `name` reads `want`.
    fn wait_for_metric(&self, name: &str, want: f64) {
        for _ in 0..2000 {
            if self.metric(name) == Some(want) {
                return;
            }
            thread::yield_now();
            thread::sleep(Duration::from_millis(5));
        }
        panic!("{name} never reached {want}");
    }

    fn terminate(&mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> ExitStatus {
        // Bounded wait: a server that ignores SIGTERM fails the test.
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "bulwark did not exit after SIGTERM; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        serde_json::from_str(&self.body).unwrap()
    }
}

fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_GUARD)).unwrap();
    s.write_all(raw).unwrap();
    read_response(&mut s).expect("no response")
}

/// Reads one response to the end of the connection (requests say
/// `Connection: close`); `None` if the server closed without answering.
fn read_response(s: &mut TcpStream) -> Option<Response> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Option<Response> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let start = nl + 2;
            out.extend_from_slice(rest.get(start..start + size)?);
            rest = rest.get(start + size + 2..)?;
        }
        body = out;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn run(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn warg_upstream(name: &str, namespaces: &str) -> String {
    format!(
        "[[upstream]]\nname = \"{name}\"\nprotocol = \"warg\"\nurl = \"http://127.0.0.1:9\"\noperator_key = \"{WARG_KEY}\"\nnamespaces = {namespaces}\n\n"
    )
}

fn go_upstream(name: &str, patterns: &str) -> String {
    format!(
        "[[upstream]]\nname = \"{name}\"\nprotocol = \"gomod\"\nurl = \"http://127.0.0.1:9\"\nnamespaces = {patterns}\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n\n"
    )
}

#[test]
fn starts_and_serves_healthz_readyz_and_metrics() {
    let b = Bulwark::start("", &go_upstream("golang", "[\"*\"]"));
    let h = b.request(
        "GET /healthz HTTP/1.1\r\nHost: b\r\nx-request-id: abc-123\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.header("x-request-id"), Some("abc-123"));

    let r = b.get("/readyz");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));

    let m = b.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    // Families with series so far (verification, cache and checkpoint-age
    // families appear with their first observation; see metrics.rs tests).
    for family in [
        "# TYPE bulwark_http_requests counter",
        "# TYPE bulwark_http_request_duration_seconds histogram",
        "# TYPE bulwark_http_requests_in_flight gauge",
        "# TYPE bulwark_upstream_request_duration_seconds histogram",
        "# TYPE bulwark_build_info gauge",
    ] {
        assert!(m.body.contains(family), "no {family} in\n{}", m.body);
    }
    for series in [
        "bulwark_http_requests_total{route=\"healthz\",status=\"200\"} 1",
        "bulwark_http_requests_total{route=\"readyz\",status=\"200\"} 1",
        "bulwark_upstream_request_duration_seconds_count{upstream=\"golang\"} 0",
    ] {
        assert!(m.body.contains(series), "no {series} in\n{}", m.body);
    }
}

#[test]
fn readyz_fails_when_the_data_directory_is_not_writable() {
    let b = Bulwark::start("", "");
    let data = b._dir.path().join("data");
    std::fs::remove_dir_all(&data).unwrap();
    // A file where the directory was: nothing can be created inside it.
    std::fs::write(&data, b"not a directory").unwrap();
    let r = b.get("/readyz");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("not writable"));
    assert_eq!(b.get("/healthz").status, 200);
}

#[test]
fn unknown_route_is_a_json_404() {
    let b = Bulwark::start("", "");
    let r = b.get("/no/such/thing");
    assert_eq!(r.status, 404);
    let j = r.json();
    assert_eq!(j["status"], 404);
    assert!(j["message"].as_str().unwrap().contains("/no/such/thing"));
}

#[test]
fn sigterm_stops_cleanly_with_exit_status_zero() {
    let mut b = Bulwark::start("", "");
    assert_eq!(b.get("/healthz").status, 200);
    let status = b.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let mut b = Bulwark::start("request_timeout = \"60s\"", "");
    // A request whose body is still arriving keeps a handler busy.
    let mut slow = b.connect();
    slow.write_all(
        b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    b.wait_for_metric("bulwark_http_requests_in_flight", 1.0);
    let kill = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // The process must not exit while the request is unfinished; finishing
    // the body gets a complete answer.
    assert!(b.child.try_wait().unwrap().is_none());
    slow.write_all(b"67890").unwrap();
    let r = read_response(&mut slow).expect("in-flight request answered");
    assert_eq!(r.status, 404);
    let status = b.wait_exit();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn bad_config_is_refused_naming_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(
        dir.path(),
        "bad.toml",
        "[server]\nlisten = \"localhost-ish\"\n",
    );
    for cmd in ["serve", "check-config"] {
        let args: Vec<&str> = if cmd == "serve" {
            vec!["serve", "--config", p.to_str().unwrap()]
        } else {
            vec!["check-config", p.to_str().unwrap()]
        };
        let (status, _, err) = run(&args);
        assert_eq!(status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("bad.toml"), "{cmd}: {err}");
        assert!(err.contains("server.listen"), "{cmd}: {err}");
        assert!(err.contains("localhost-ish"), "{cmd}: {err}");
    }
    let p = write_config(
        dir.path(),
        "typo.toml",
        &format!(
            "[[upstream]]\nname = \"golang\"\nprotocol = \"gomod\"\nurl = \"https://proxy.golang.org\"\nnamespace = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n"
        ),
    );
    let (status, _, err) = run(&["check-config", p.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("typo.toml: upstream[0]") && err.contains("unknown field `namespace`"),
        "{err}"
    );
}

#[test]
fn mistyped_sumdb_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(
        dir.path(),
        "k.toml",
        &format!(
            "[[upstream]]\nname = \"golang\"\nprotocol = \"gomod\"\nurl = \"https://proxy.golang.org\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{}\" }}\n",
            GO_KEY.replace("Ac4z", "Ac5z")
        ),
    );
    let (status, _, err) = run(&["check-config", p.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("k.toml: upstream[0].sumdb.key") && err.contains("does not match"),
        "{err}"
    );
}

#[test]
fn overlapping_namespaces_are_refused_naming_both_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let text = warg_upstream("internal", "[\"acme\", \"tools\"]")
        + &warg_upstream("other", "[\"wasi\", \"acme\"]");
    let p = write_config(dir.path(), "x.toml", &text);
    let (status, _, err) = run(&["serve", "--config", p.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains(
            "x.toml: upstream[1].namespaces: \"acme\" is already owned by upstream \"internal\""
        ),
        "{err}"
    );
}

#[test]
fn check_config_prints_the_routing_table() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("federation/default.toml");
    let (status, out, err) = run(&["check-config", shipped.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("gomod"))
        .unwrap_or_else(|| panic!("no gomod row in\n{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["gomod", "*", "golang", "https://proxy.golang.org"]);
    assert!(out.contains(GO_KEY), "{out}");

    let corp = Path::new(env!("CARGO_MANIFEST_DIR")).join("federation/example-corporate.toml");
    let (status, out, err) = run(&["check-config", corp.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    for (proto, ns, up) in [
        ("warg", "acme", "warg.internal.acme.example"),
        ("warg", "wasi", "bytecodealliance"),
        (
            "gomod",
            "github.com/acme/*",
            "goproxy.internal.acme.example",
        ),
        ("gomod", "*", "golang"),
    ] {
        assert!(
            out.lines().any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() >= 3 && c[0] == proto && c[1] == ns && c[2] == up
            }),
            "no row {proto} {ns} {up} in\n{out}"
        );
    }
}

#[test]
fn oversized_request_body_gets_413() {
    let b = Bulwark::start("max_body_bytes = 1000", "");
    // Declared too large: refused before the body is read.
    let r = b.request(&format!(
        "POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}",
        "x".repeat(5000)
    ));
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["status"], 413);
    // Streamed without a length: refused once it passes the limit.
    let chunk = "y".repeat(600);
    let r = b.request(&format!(
        "POST /upload HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    ));
    assert_eq!(r.status, 413, "{r:?}");
    // A body within the limit is fine.
    let r = b.request(
        "POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert_eq!(r.status, 404);
}

/// 431 or a closed connection, never a served request.
fn refused_head(r: Option<Response>) {
    if let Some(r) = r {
        assert_eq!(r.status, 431, "{r:?}");
    }
}

fn send_ignoring_reset(addr: SocketAddr, raw: &[u8]) -> Option<Response> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_GUARD)).unwrap();
    // The server may close mid-write; what it answered (if anything) counts.
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

#[test]
fn header_floods_are_refused_and_others_still_served() {
    let b = Bulwark::start("max_headers = 50\nmax_header_bytes = 8192", "");
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: b\r\n");
    for i in 0..5000 {
        many.push_str(&format!("x-flood-{i}: {i}\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    refused_head(send_ignoring_reset(b.addr, many.as_bytes()));

    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: b\r\nx-huge: {}\r\nConnection: close\r\n\r\n",
        "h".repeat(200_000)
    );
    refused_head(send_ignoring_reset(b.addr, huge.as_bytes()));

    // Just over the header count, a real 431.
    let mut over = String::from("GET /healthz HTTP/1.1\r\nHost: b\r\n");
    for i in 0..60 {
        over.push_str(&format!("x-h-{i}: v\r\n"));
    }
    over.push_str("Connection: close\r\n\r\n");
    let r = send_ignoring_reset(b.addr, over.as_bytes()).expect("an answer");
    assert_eq!(r.status, 431);

    assert_eq!(b.get("/healthz").status, 200);
}

#[test]
fn a_client_sending_one_byte_a_second_is_cut_off_while_others_are_served() {
    let b = Bulwark::start("header_read_timeout = \"1s\"", "");
    let request = b"GET /healthz HTTP/1.1\r\nHost: slowloris\r\nConnection: close\r\n\r\n";
    let mut slow = b.connect();
    let closed = Arc::new(AtomicBool::new(false));
    let mut reader = slow.try_clone().unwrap();
    let flag = closed.clone();
    let watcher = thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // The read guard expiring is not the server closing.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        flag.store(true, Ordering::SeqCst);
        got
    });
    let mut sent = 0;
    let mut normal_checked = false;
    for &byte in request.iter() {
        if closed.load(Ordering::SeqCst) {
            break;
        }
        if slow.write_all(&[byte]).is_err() {
            break;
        }
        sent += 1;
        if !normal_checked {
            // While the slow client holds its connection, others are served.
            assert_eq!(b.get("/healthz").status, 200);
            normal_checked = true;
        }
        // The abusive client's pace, not synchronisation.
        thread::sleep(Duration::from_secs(1));
    }
    let _ = slow.shutdown(std::net::Shutdown::Write);
    let answer = watcher.join().unwrap();
    assert!(normal_checked);
    assert!(
        sent < request.len(),
        "the slow client sent its whole request ({sent} bytes) without being cut off"
    );
    // Cut off, not served: no 200 went back to it.
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains(" 200 "), "slow client was served: {text}");
}

#[test]
fn bearer_tokens_guard_everything_but_health() {
    let token = "test-token-0123456789abcdef";
    let b = Bulwark::start(&format!("tokens = [\"{token}\"]"), "");
    assert_eq!(b.get("/healthz").status, 200);
    let r = b.get("/metrics");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["status"], 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = b.request("GET /metrics HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer wrong-token-0123456789\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 401);
    let r = b.request(&format!(
        "GET /metrics HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 200);
    let r = b.request(&format!(
        "GET /elsewhere HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(r.status, 404);
}

#[test]
fn saturated_server_answers_503_at_once_and_recovers() {
    let b = Bulwark::start("max_concurrency = 1\nrequest_timeout = \"60s\"", "");
    let mut busy = b.connect();
    busy.write_all(
        b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    b.wait_for_metric("bulwark_http_requests_in_flight", 1.0);

    let r = b.get("/anything");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["status"], 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    // Probes are not subject to the limit.
    assert_eq!(b.get("/healthz").status, 200);

    busy.write_all(b"67890").unwrap();
    assert_eq!(read_response(&mut busy).unwrap().status, 404);
    b.wait_for_metric("bulwark_http_requests_in_flight", 0.0);
    assert_eq!(b.get("/anything").status, 404);
}

#[test]
fn requests_beyond_max_concurrency_wait_in_a_bounded_queue() {
    let b = Bulwark::start(
        "max_concurrency = 1\nqueue_length = 1\nqueue_timeout = \"60s\"\nrequest_timeout = \"60s\"",
        "",
    );
    // The one slot is held by a request whose body has not all arrived.
    let mut busy = b.connect();
    busy.write_all(
        b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    b.wait_for_metric("bulwark_http_requests_in_flight", 1.0);

    // The next request waits in the queue...
    let mut waiting = b.connect();
    waiting
        .write_all(b"GET /queued HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .unwrap();
    b.wait_for_metric("bulwark_http_requests_queued", 1.0);
    // ...the queue holds one: another gets 503 at once, with Retry-After.
    let r = b.get("/anything");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("queue of 1 waiting requests is full"));
    // Health probes never queue.
    assert_eq!(b.get("/healthz").status, 200);
    assert_eq!(b.get("/readyz").status, 200);

    // When the slot frees, the waiting request is served.
    busy.write_all(b"67890").unwrap();
    assert_eq!(read_response(&mut busy).unwrap().status, 404);
    let r = read_response(&mut waiting).unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    b.wait_for_metric("bulwark_http_requests_queued", 0.0);
    b.wait_for_metric("bulwark_http_requests_in_flight", 0.0);
    let m = b.get("/metrics").body;
    assert!(
        m.contains("bulwark_http_rejected_requests_total{reason=\"queue_full\"} 1"),
        "{m}"
    );
}

#[test]
fn a_request_that_waits_queue_timeout_gets_503() {
    let b = Bulwark::start(
        "max_concurrency = 1\nqueue_timeout = \"100ms\"\nrequest_timeout = \"60s\"",
        "",
    );
    let mut busy = b.connect();
    busy.write_all(
        b"POST /upload HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    b.wait_for_metric("bulwark_http_requests_in_flight", 1.0);
    let r = b.get("/anything");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("server.queue_timeout (100ms)"));
    busy.write_all(b"67890").unwrap();
    assert_eq!(read_response(&mut busy).unwrap().status, 404);
    assert_eq!(b.get("/anything").status, 404);
}

#[test]
fn speaks_http2_with_prior_knowledge() {
    let b = Bulwark::start("", "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use http_body_util::BodyExt;
        let stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(format!("http://{}/healthz", b.addr))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        assert_eq!(res.version(), http::Version::HTTP_2);
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"status":"ok"}"#);
    });
}

/// Sends GET /healthz over TLS offering `alpn`, returns (version, status).
async fn tls_get(addr: SocketAddr, ca_pem: &str, alpn: &[u8]) -> (http::Version, u16) {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(tls);
    let req = http::Request::get("https://localhost/healthz")
        .header("host", "localhost")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = if alpn == b"h2" {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    (res.version(), res.status().as_u16())
}

#[test]
fn serves_tls_with_http1_and_http2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    // Relative paths: resolved against the config file's directory.
    let b = Bulwark::start_in(
        dir,
        "[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"",
        "",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(
            tls_get(b.addr, &cert_pem, b"http/1.1").await,
            (http::Version::HTTP_11, 200)
        );
        assert_eq!(
            tls_get(b.addr, &cert_pem, b"h2").await,
            (http::Version::HTTP_2, 200)
        );
    });
    // Plain HTTP on the TLS port is not served.
    let mut s = b.connect();
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(parse_response(&buf).is_none_or(|r| r.status != 200));
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_id() {
    let b = Bulwark::start("log_format = \"json\"", "");
    let r = b.request("GET /healthz HTTP/1.1\r\nHost: b\r\nx-request-id: log-check-7\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    // The log line is written before the response; poll the captured stderr.
    let mut found = None;
    for _ in 0..2000 {
        let text = b.stderr.lock().unwrap().clone();
        if let Some(line) = text.lines().find(|l| l.contains("log-check-7")) {
            found = Some(line.to_string());
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let line = found.expect("request logged");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["request_id"], "log-check-7");
    assert_eq!(v["status"], 200);
    assert_eq!(v["route"], "healthz");
    let all = b.stderr.lock().unwrap().clone();
    for l in all.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "not JSON: {l}"
        );
    }
}

#[test]
fn serve_without_a_config_file_runs_on_the_embedded_defaults() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let guard = Kill(&mut child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let r = exchange(
        addr,
        b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    // The embedded default keeps its state under ./bulwark-data.
    assert!(cwd.path().join("bulwark-data").is_dir());
    drop(guard);
}

// ---- connection limits, streaming and memory (issue 8: 7, 8, 9, 16) ----

/// bulwark's peak resident set (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

const MIB: u64 = 1024 * 1024;

/// Polls `/metrics` until the labelled series `series` (the whole text
/// before the value) reads at least `want`.
fn wait_for_series_at_least(b: &Bulwark, series: &str, want: f64) {
    for _ in 0..4000 {
        // Connections being closed may still hold a slot: retry.
        let Some(m) = send_ignoring_reset(
            b.addr,
            b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        ) else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        let v = m
            .body
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if v.is_some_and(|v| v >= want) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("{series} never reached {want}");
}

#[test]
fn a_non_loopback_listen_without_tokens_is_refused_unless_explicitly_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let open = write_config(
        dir.path(),
        "open.toml",
        &format!("[server]\nlisten = \"0.0.0.0:0\"\ndata_dir = {data:?}\n"),
    );
    for args in [
        vec!["check-config", open.to_str().unwrap()],
        vec!["serve", "--config", open.to_str().unwrap()],
    ] {
        let (status, _, err) = run(&args);
        assert_eq!(status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("open.toml: server.listen") && err.contains("allow_unauthenticated"),
            "{args:?}: {err}"
        );
    }
    // The address given on the command line is checked too.
    let local = write_config(
        dir.path(),
        "local.toml",
        &format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\n"),
    );
    let (status, _, err) = run(&[
        "serve",
        "--config",
        local.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("allow_unauthenticated"), "{err}");
    // Said explicitly, or with tokens: accepted.
    for (name, extra) in [
        ("explicit.toml", "allow_unauthenticated = true"),
        ("tokens.toml", "tokens = [\"test-token-0123456789abcdef\"]"),
    ] {
        let p = write_config(
            dir.path(),
            name,
            &format!("[server]\nlisten = \"0.0.0.0:0\"\ndata_dir = {data:?}\n{extra}\n"),
        );
        let (status, _, err) = run(&["check-config", p.to_str().unwrap()]);
        assert!(status.success(), "{name}: {err}");
    }
}

#[test]
fn readyz_probes_the_data_directory_at_most_once_per_second() {
    let b = Bulwark::start("", "");
    let started = std::time::Instant::now();
    for _ in 0..30 {
        assert_eq!(b.get("/readyz").status, 200);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m = b.get("/metrics").body;
    let count = |result: &str| -> f64 {
        let series = format!("bulwark_cache_lookups_total{{kind=\"readyz\",result=\"{result}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (hits, misses) = (count("hit"), count("miss"));
    assert_eq!(hits + misses, 30.0, "{m}");
    // One probe of the disk per second at most (plus the first).
    assert!(
        misses <= elapsed.ceil() + 1.0,
        "{misses} probes in {elapsed}s"
    );
}

#[test]
fn idle_http2_connections_get_goaway_and_are_closed() {
    let b = Bulwark::start("idle_timeout = \"1s\"", "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The client answers PINGs (hyper's h2 does) but opens no stream.
        let stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
        let (_send, conn) =
            hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .unwrap();
        // The connection ends because the server closed it; the guard only
        // keeps a broken server from hanging the test.
        let ended = tokio::time::timeout(IO_GUARD, conn).await;
        assert!(ended.is_ok(), "idle HTTP/2 connection was never closed");
    });
    wait_for_series_at_least(
        &b,
        "bulwark_connections_closed_by_server_total{reason=\"idle_timeout\"}",
        1.0,
    );
}

/// An HTTP/2 connection from `local` that made one request and now sits
/// idle (answering PINGs), as an attacker holding slots would.
async fn held_h2_connection(
    addr: SocketAddr,
    local: &str,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{addr}/healthz"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    send
}

/// Sends `raw` from the loopback address `local` and reads until the server
/// closes; returns every byte received.
async fn exchange_from(addr: SocketAddr, local: &str, raw: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let _ = s.write_all(raw).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(IO_GUARD, s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "server neither answered nor closed");
    buf
}

#[test]
fn held_connections_cannot_take_the_health_probes_slots_or_every_slot_of_a_peer() {
    let b = Bulwark::start(
        "max_connections = 6\nmax_connections_per_peer = 3\nprobe_connections = 2\nidle_timeout = \"60s\"",
        "",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // One client address holds its three connections...
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(held_h2_connection(b.addr, "127.0.0.1").await);
        }
        // ...and gets no fourth: closed without an answer.
        let got = exchange_from(
            b.addr,
            "127.0.0.1",
            b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            parse_response(&got).is_none(),
            "a fourth connection of one peer was served"
        );
        // Another address takes the remaining general slots.
        for _ in 0..3 {
            held.push(held_h2_connection(b.addr, "127.0.0.2").await);
        }
        // Every general slot is taken: health probes still answer, from a
        // slot kept for them, and nothing else is served there.
        let probe = b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";
        let got = exchange_from(b.addr, "127.0.0.3", probe).await;
        let r = parse_response(&got).expect("healthz answered while full");
        assert_eq!(r.status, 200, "{r:?}");
        let got = exchange_from(
            b.addr,
            "127.0.0.3",
            b"GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(parse_response(&got).expect("readyz answered").status, 200);
        let got = exchange_from(
            b.addr,
            "127.0.0.4",
            b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        .await;
        let r = parse_response(&got).expect("an answer");
        assert_eq!(r.status, 503, "{r:?}");
        // A probe slot carries one request: a client that tries to keep it
        // by asking /healthz again and again gets one answer, then EOF.
        let twice = [&probe[..], &probe[..], &probe[..]].concat();
        let got = exchange_from(b.addr, "127.0.0.5", &twice).await;
        let text = String::from_utf8_lossy(&got);
        assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
        drop(held);
    });
    // Closes the held connections (their tasks live on this runtime).
    drop(rt);
    wait_for_series_at_least(
        &b,
        "bulwark_connections_closed_by_server_total{reason=\"peer_limit\"}",
        1.0,
    );
}

/// Six clients POST 60 MiB each at once to `path` (all sent, or until the
/// server answers and closes).
fn six_big_posts(addr: SocketAddr, method: &str, path: &str, headers: &str) {
    const BODY: usize = 60 * 1024 * 1024;
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: b\r\n{headers}Content-Length: {BODY}\r\nConnection: close\r\n\r\n"
            );
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(IO_GUARD)).unwrap();
                s.set_write_timeout(Some(IO_GUARD)).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                let chunk = vec![b'{'; 64 * 1024];
                let mut sent = 0;
                while sent < BODY {
                    // The server may answer early and close.
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                parse_response(&buf).map(|r| r.status)
            })
        })
        .collect();
    for t in threads {
        if let Some(status) = t.join().unwrap() {
            assert!(
                matches!(status, 400 | 404 | 405 | 413 | 502 | 503),
                "{method} {path}: {status}"
            );
        }
    }
}

#[test]
fn large_request_bodies_are_never_buffered_whole() {
    let mut warg = warg_upstream("internal", "[\"acme\"]");
    warg = warg.replace(
        "namespaces",
        "default = true\npublish = \"forward\"\nnamespaces",
    );
    let b = Bulwark::start(
        "max_body_bytes = 67108864\nrequest_timeout = \"60s\"",
        &(warg + &go_upstream("golang", "[\"*\"]")),
    );
    let pid = b.child.id();
    let before = peak_rss(pid);
    // Unmatched: drained, then a 404.
    six_big_posts(b.addr, "POST", "/nothing/here", "");
    // A Go route (with a body it never reads).
    six_big_posts(b.addr, "GET", "/example.com/m/@v/list", "");
    // Warg JSON routes: bounded while read.
    six_big_posts(
        b.addr,
        "POST",
        "/v1/fetch/logs",
        "Content-Type: application/json\r\n",
    );
    let log = "sha256:".to_string() + &"ab".repeat(32);
    six_big_posts(
        b.addr,
        "POST",
        &format!("/v1/package/{log}/record"),
        "Content-Type: application/json\r\n",
    );
    // Content uploads, forwarded upstream: held whole, one at a time.
    six_big_posts(
        b.addr,
        "POST",
        &format!("/v1/package/{log}/record/{log}/content/{log}"),
        "Content-Type: application/octet-stream\r\n",
    );
    let peak = peak_rss(pid);
    assert!(
        peak < 128 * MIB,
        "bulwark's peak RSS went from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
    assert_eq!(b.get("/healthz").status, 200);
}

/// A Go module of about `mib` MiB of random (incompressible) bytes behind
/// the Go fixture, and a bulwark in front of it with `server_extra`.
fn big_module(mib: u64, server_extra: &str) -> (support::gofixture::GoFixture, Bulwark, String) {
    use support::gofixture::{write_module, FixtureOptions, GoFixture};
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("mods");
    write_module(
        &mods,
        "example.com/big",
        "v1.0.0",
        &[("go.mod", "module example.com/big\n\ngo 1.19\n")],
    );
    let mut random = std::fs::File::open("/dev/urandom").unwrap().take(mib * MIB);
    let mut out = std::fs::File::create(mods.join("example.com/big@v1.0.0/big.bin")).unwrap();
    std::io::copy(&mut random, &mut out).unwrap();
    let fx = GoFixture::start(&FixtureOptions {
        modules: mods,
        key: dir.path().join("sumdb.key"),
        ..FixtureOptions::default()
    });
    let upstream = format!(
        "[[upstream]]\nname = \"fixture\"\nprotocol = \"gomod\"\nurl = \"{}\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"{}\", url = \"{}\", key = \"{}\" }}\n",
        fx.proxy_url(),
        fx.name,
        fx.sumdb_url(),
        fx.vkey
    );
    let b = Bulwark::start_in(dir, server_extra, &upstream);
    (fx, b, "/example.com/big/@v/v1.0.0.zip".to_string())
}

/// Sends a GET for `path` and reads the response head (and whatever body
/// bytes came with it); returns the stream, the status and the
/// Content-Length.
fn open_download(addr: SocketAddr, path: &str) -> (TcpStream, u16, u64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_GUARD)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // One byte at a time up to the end of the head: nothing of the body
    // is taken.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection closed in the head"
        );
        head.push(byte[0]);
    }
    let r = parse_response(&head).unwrap();
    let len = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (s, r.status, len)
}

#[test]
fn a_large_verified_blob_streams_to_slow_readers_in_bounded_memory() {
    let (fx, b, path) = big_module(100, "write_timeout = \"2s\"");
    let zip_len = fx.get(&path).1.len() as u64;
    assert!(zip_len > 100 * MIB);
    // First download: fetched, verified, stored (and read in full).
    let (mut s, status, len) = open_download(b.addr, &path);
    assert_eq!((status, len), (200, zip_len));
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break,
            k => n += k as u64,
        }
    }
    assert_eq!(n, zip_len);

    // Sixteen clients that take one byte a second, served from the store.
    let mut slow: Vec<TcpStream> = (0..16)
        .map(|_| {
            let (s, status, len) = open_download(b.addr, &path);
            assert_eq!((status, len), (200, zip_len));
            s
        })
        .collect();
    for _ in 0..2 {
        for s in &mut slow {
            let mut one = [0u8; 1];
            assert_eq!(s.read(&mut one).unwrap(), 1);
        }
        // The slow clients' pace, not synchronisation.
        thread::sleep(Duration::from_secs(1));
    }
    let peak = peak_rss(b.child.id());
    assert!(
        peak < 256 * MIB,
        "bulwark's peak RSS reached {} MiB serving a {} MiB blob to 16 slow readers",
        peak / MIB,
        zip_len / MIB
    );

    // An HTTP/2 client that withholds flow-control credit (it never reads
    // the body) while its connection answers PINGs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (h2_ended, _held_response) = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(b.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        let ended = tokio::spawn(conn);
        let req = http::Request::get(format!("http://{}{path}", b.addr))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        (ended, res)
    });

    // A client that keeps reading, slowly, for longer than the write
    // timeout is not cut off...
    let (mut honest, status, _) = open_download(b.addr, &path);
    assert_eq!(status, 200);
    let mut got = 0u64;
    let mut small = vec![0u8; 256 * 1024];
    for _ in 0..25 {
        let k = honest.read(&mut small).unwrap();
        assert!(
            k > 0,
            "a client that keeps reading was cut off after {got} bytes"
        );
        got += k as u64;
        thread::sleep(Duration::from_millis(200));
    }
    drop(honest);
    // ...while the ones that stopped taking bytes were closed.
    wait_for_series_at_least(
        &b,
        "bulwark_connections_closed_by_server_total{reason=\"write_timeout\"}",
        17.0,
    );
    let closed = rt.block_on(async { tokio::time::timeout(IO_GUARD, h2_ended).await });
    assert!(
        closed.is_ok(),
        "the stalled HTTP/2 connection is still open"
    );
    for mut s in slow {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(
            (rest.len() as u64) < zip_len - 2,
            "a stalled client got the whole blob"
        );
    }
}

#[test]
fn store_verify_rehashes_every_blob_and_moves_aside_the_corrupt_ones() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "b.toml",
        &format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\n"),
    );
    // Two blobs in the store's layout (blobs/sha256/ab/abcd…); one is then
    // altered on disk.
    let mut names = Vec::new();
    for content in [&b"a good blob"[..], &b"a blob altered on disk"[..]] {
        let hex = hex::encode(sha2::Sha256::digest(content));
        let shard = data.join("blobs/sha256").join(&hex[..2]);
        std::fs::create_dir_all(&shard).unwrap();
        std::fs::write(shard.join(&hex), content).unwrap();
        names.push(hex);
    }
    let altered = data
        .join("blobs/sha256")
        .join(&names[1][..2])
        .join(&names[1]);
    std::fs::write(&altered, b"tampered").unwrap();
    let (status, out, err) = run(&["store", "verify", "--config", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains(&format!("corrupt sha256:{}", names[1])),
        "{out}"
    );
    assert!(out.contains("1 blob(s) ok, 1 corrupt"), "{out}");
    assert!(!altered.exists());
    let (status, out, _) = run(&["store", "verify", "--config", config.to_str().unwrap()]);
    assert!(status.success(), "{out}");
    assert!(out.contains("1 blob(s) ok, 0 corrupt"), "{out}");
}
