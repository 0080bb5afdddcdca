//! bulwark's Warg front end to end: the real `bulwark` binary between the
//! real `warg` CLI and two real `warg-server` upstreams owning different
//! namespaces. Happy paths (download of both namespaces byte-identical,
//! `warg info`, `warg update`, publishing through bulwark), attacks by the
//! upstream itself (tampered content file, fork, new operator key) and by a
//! man-in-the-middle speaking the real wire format (emptied inclusion
//! bundle, rewritten record, replayed old checkpoint, broken checkpoint
//! signature), and offline serving. Needs the `warg-server` and `warg`
//! binaries (see `tests/support/warg.rs`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::thread;

use support::warg::{
    component, content_digest, http, HttpResponse, WargClient, WargServer, WargServerOptions,
};

fn bin() -> PathBuf {
    std::env::var_os("BULWARK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bulwark")))
}

/// One Warg upstream as bulwark's configuration names it.
struct Up<'a> {
    name: &'a str,
    url: String,
    key: &'a str,
    namespace: &'a str,
    default: bool,
    /// More lines of this `[[upstream]]` table (`publish = ...`, `token = ...`).
    extra: String,
}

/// The real bulwark binary, killed on drop.
struct Bulwark {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Bulwark {
    fn start(ups: &[Up<'_>]) -> Bulwark {
        let dir = tempfile::tempdir().unwrap();
        let mut config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nmax_checkpoint_age = \"1h\"\n\n",
            dir.path().join("data")
        );
        for u in ups {
            config.push_str(&format!(
                "[[upstream]]\nname = {:?}\nprotocol = \"warg\"\nurl = {:?}\noperator_key = {:?}\nnamespaces = [{:?}]\ndefault = {}\n{}\n\n",
                u.name, u.url, u.key, u.namespace, u.default, u.extra
            ));
        }
        let path = dir.path().join("bulwark.toml");
        std::fs::write(&path, config).unwrap();
        let support::serve::Spawned {
            child,
            addr,
            stderr,
        } = support::serve::spawn(&bin(), &path, "info,bulwark=debug");
        Bulwark {
            child,
            addr,
            stderr,
            dir,
            config: path,
        }
    }

    /// Stops bulwark and starts it again on the same configuration and
    /// data directory (a new port).
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let support::serve::Spawned {
            child,
            addr,
            stderr,
        } = support::serve::spawn(&bin(), &self.config, "info,bulwark=debug");
        self.child = child;
        self.addr = addr;
        self.stderr = stderr;
    }

    /// Points the configuration's upstream URL `from` at `to` and restarts
    /// (same data directory).
    fn move_upstream(&mut self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{text}");
        std::fs::write(&self.config, text.replace(from, to)).unwrap();
        self.restart();
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        http(self.addr, "POST", path, &h, Some(body))
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http(self.addr, "GET", path, headers, None)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether a blob with this `sha256:` digest is in the store.
    fn has_blob(&self, digest: &str) -> bool {
        let hex = digest.trim_start_matches("sha256:");
        find_file(&self.dir.path().join("data").join("blobs"), hex)
    }
}

fn find_file(dir: &Path, name: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            find_file(&p, name)
        } else {
            p.file_name().and_then(|n| n.to_str()) == Some(name)
        }
    })
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up<'a>(name: &'a str, server: &'a WargServer, ns: &'a str, default: bool) -> Up<'a> {
    Up {
        name,
        url: server.url(),
        key: &server.operator_key.public,
        namespace: ns,
        default,
        extra: NO_REUSE.to_string(),
    }
}

/// Most tests look at each checkpoint answer of the upstream as it comes:
/// no reuse of a verified checkpoint between requests.
const NO_REUSE: &str = "checkpoint_reuse = \"0s\"\n";

/// `u` with publishing through bulwark on (`publish = "forward"`).
fn forward(mut u: Up<'_>) -> Up<'_> {
    u.extra.push_str("publish = \"forward\"\n");
    u
}

fn body_text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Publishes `name@1.0.0` straight to `server` with a fresh client.
fn publish_direct(server: &WargServer, name: &str, bytes: &[u8]) {
    let c = WargClient::new(&server.url());
    let run = c.publish(name, "1.0.0", bytes);
    assert!(run.success, "publish {name}: {run:?}");
}

#[test]
fn two_upstreams_download_info_update_and_publish_through_bulwark() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let wasi = WargServer::start(&WargServerOptions::owning("wasi"));
    let hello = component(4096, 1);
    let http_pkg = component(5000, 2);
    publish_direct(&acme, "acme:hello", &hello);
    publish_direct(&wasi, "wasi:http", &http_pkg);

    let b = Bulwark::start(&[
        forward(up("acme-up", &acme, "acme", true)),
        forward(up("wasi-up", &wasi, "wasi", false)),
    ]);
    let client = WargClient::new(&b.url());
    let got = client
        .download("acme:hello", None)
        .unwrap_or_else(|r| panic!("download acme:hello: {r:?}\n{}", b.stderr()));
    assert_eq!(got, hello, "acme:hello byte-identical");
    let got = client
        .download("wasi:http", None)
        .unwrap_or_else(|r| panic!("download wasi:http: {r:?}\n{}", b.stderr()));
    assert_eq!(got, http_pkg, "wasi:http byte-identical");
    assert!(b.has_blob(&content_digest(&hello)));
    assert!(b.has_blob(&content_digest(&http_pkg)));

    let info = client.info(Some("acme:hello"));
    assert!(info.success, "info: {info:?}");
    assert!(info.stdout.contains("1.0.0"), "{info:?}");
    let update = client.update();
    assert!(update.success, "update: {update:?}\n{}", b.stderr());

    // Publishing through bulwark lands in the upstream owning the namespace.
    let new_acme = component(3000, 3);
    let run = client.publish("acme:pub", "1.0.0", &new_acme);
    assert!(
        run.success,
        "publish acme:pub via bulwark: {run:?}\n{}",
        b.stderr()
    );
    let new_wasi = component(3000, 4);
    let run = client.publish("wasi:pub", "1.0.0", &new_wasi);
    assert!(
        run.success,
        "publish wasi:pub via bulwark: {run:?}\n{}",
        b.stderr()
    );
    let direct_acme = WargClient::new(&acme.url());
    assert_eq!(direct_acme.download("acme:pub", None).unwrap(), new_acme);
    let direct_wasi = WargClient::new(&wasi.url());
    assert_eq!(direct_wasi.download("wasi:pub", None).unwrap(), new_wasi);
    assert!(
        direct_acme.download("wasi:pub", None).is_err(),
        "wasi:pub must not be in acme's registry"
    );
    // And back through bulwark with a second client.
    let second = WargClient::new(&b.url());
    assert_eq!(second.download("wasi:pub", None).unwrap(), new_wasi);
}

#[test]
fn header_less_request_for_another_namespace_gets_a_registry_hint() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let wasi = WargServer::start(&WargServerOptions::owning("wasi"));
    publish_direct(&wasi, "wasi:http", &component(100, 9));
    let b = Bulwark::start(&[
        up("acme-up", &acme, "acme", true),
        up("wasi-up", &wasi, "wasi", false),
    ]);
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}", body_text(&cp));
    assert_eq!(cp.header("content-type"), Some("application/json"));
    let len = cp.json()["contents"]["logLength"].as_u64().unwrap();
    let name: warg_protocol::registry::PackageName = "wasi:http".parse().unwrap();
    let log_id = warg_protocol::registry::LogId::package_log::<warg_crypto::hash::Sha256>(&name);
    let body = format!(r#"{{"logLength":{len},"packages":{{"{log_id}":null}}}}"#);
    let r = http(
        b.addr,
        "POST",
        "/v1/fetch/logs",
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 404, "{}", body_text(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("warg-registry-hint"), Some("wasi=wasi-up"));
    assert_eq!(
        body_text(&r),
        format!(r#"{{"status":404,"type":"log","id":"{log_id}"}}"#)
    );
    // A digest no verified release names is 404.
    let unknown = content_digest(b"nobody released this");
    let r = b.get(&format!("/v1/content/{unknown}"), &[]);
    assert_eq!(r.status, 404, "{}", body_text(&r));
}

#[test]
fn refuses_content_whose_digest_differs_and_stores_nothing() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(2048, 5);
    let digest = content_digest(&bytes);
    publish_direct(&acme, "acme:victim", &bytes);
    std::fs::write(acme.content_file(&digest), component(2048, 6)).unwrap();
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let client = WargClient::new(&b.url());
    let err = client
        .download("acme:victim", None)
        .expect_err("tampered content must not be served");
    assert!(!b.has_blob(&digest), "nothing stored");
    // The refusal names the check.
    let r = b.get(
        &format!(
            "/content/acme-up/sha256-{}",
            digest.trim_start_matches("sha256:")
        ),
        &[],
    );
    assert_eq!(r.status, 502, "{err:?}");
    assert!(
        body_text(&r).contains("content digest check failed"),
        "{}",
        body_text(&r)
    );
    assert!(!b.has_blob(&digest), "nothing stored");
}

#[test]
fn upstream_restarted_with_the_same_key_and_another_history_is_quarantined() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let first = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(first.status, 200, "{}", body_text(&first));
    publish_direct(&acme, "acme:one", &component(100, 1));
    let second = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(second.status, 200, "{}\n{}", body_text(&second), b.stderr());
    assert!(
        second.json()["contents"]["logLength"].as_u64()
            > first.json()["contents"]["logLength"].as_u64()
    );
    let acme = acme.restart_same_key(false);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    let text = body_text(&r);
    assert!(text.contains("fork"), "{text}");
    // Quarantined from now on, whatever the upstream says.
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502);
    assert!(body_text(&r).contains("quarantined"), "{}", body_text(&r));
    drop(acme);
}

#[test]
fn upstream_restarted_with_another_operator_key_is_refused() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    assert_eq!(b.get("/v1/fetch/checkpoint", &[]).status, 200);
    let acme = acme.restart_new_key(false);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("operator-key"), "{}", body_text(&r));
    drop(acme);
}

#[test]
fn verified_content_is_served_while_the_upstream_is_stopped() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(3333, 8);
    let digest = content_digest(&bytes);
    publish_direct(&acme, "acme:kept", &bytes);
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let client = WargClient::new(&b.url());
    assert_eq!(client.download("acme:kept", None).unwrap(), bytes);
    acme.stop();
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}", body_text(&cp));
    assert!(
        cp.header("warning")
            .is_some_and(|w| w.starts_with("110 bulwark")),
        "{:?}",
        cp.headers
    );
    let src = b.get(&format!("/v1/content/{digest}"), &[]);
    assert_eq!(src.status, 200, "{}", body_text(&src));
    let r = b.get(
        &format!(
            "/content/acme-up/sha256-{}",
            digest.trim_start_matches("sha256:")
        ),
        &[],
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.body, bytes);
    assert!(
        r.header("warning")
            .is_some_and(|w| w.starts_with("110 bulwark") && w.contains("unreachable")),
        "content served offline must say so: {:?}",
        r.headers
    );
    // A fresh client gets the whole download from what bulwark verified.
    let fresh = WargClient::new(&b.url());
    let got = fresh
        .download("acme:kept", None)
        .unwrap_or_else(|r| panic!("offline download: {r:?}\n{}", b.stderr()));
    assert_eq!(got, bytes);
    // Something bulwark never verified is not served from nowhere.
    let never = fresh.download("acme:never", None);
    assert!(never.is_err());
}

#[test]
fn offline_what_was_verified_is_served_with_the_stale_warning() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(3100, 9);
    let digest = content_digest(&bytes);
    publish_direct(&acme, "acme:kept", &bytes);
    let mut b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    assert_eq!(
        WargClient::new(&b.url())
            .download("acme:kept", None)
            .unwrap(),
        bytes
    );
    // `[server] offline = true`, the upstream still up: the stored content
    // (whose state is fresh) says it is served offline.
    b.move_upstream(
        "max_checkpoint_age = \"1h\"\n",
        "max_checkpoint_age = \"1h\"\noffline = true\n",
    );
    let hex = digest.trim_start_matches("sha256:");
    let r = b.get(&format!("/content/acme-up/sha256-{hex}"), &[]);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.body, bytes);
    assert!(
        r.header("warning")
            .is_some_and(|w| w.starts_with("110 bulwark") && w.contains("acme-up")),
        "content served offline must say so: {:?}",
        r.headers
    );
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}", body_text(&cp));
    assert!(cp.header("warning").is_some(), "{:?}", cp.headers);
    // What needs the upstream (package logs are not kept across a
    // restart) is refused, saying the mirror is offline.
    let r = WargClient::new(&b.url()).download("acme:kept", None);
    let e = r.expect_err("logs are not kept across a restart");
    assert!(e.stderr.contains("offline"), "{e:?}");
}

// ---- the man in the middle ----

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mitm {
    Pass,
    EmptyInclusion,
    RewriteRecord,
    ReplayCheckpoint,
    BreakSignature,
    FlipLedgerLeaf,
    RewriteIndex,
    /// fetch/logs answered with this status and a rewritten record,
    /// proof/inclusion with it and an emptied bundle.
    NonOk(u16),
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// What the proxy shares with its connection threads.
#[derive(Default)]
struct ProxyState {
    mode: Mutex<Option<Mitm>>,
    seen: Mutex<Vec<Seen>>,
    /// path → (status, body) answered instead of asking the upstream.
    overrides: Mutex<std::collections::HashMap<String, (u16, Vec<u8>)>>,
}

/// An HTTP/1.1 proxy in front of a warg-server that rewrites answers
/// according to its mode (or answers from its overrides); it records the
/// first checkpoint body it sees for replay, and every request.
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    first_checkpoint: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        *state.mode.lock().unwrap() = Some(Mitm::Pass);
        let first = Arc::new(Mutex::new(None));
        let (st, f) = (state.clone(), first.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (st, f) = (st.clone(), f.clone());
                thread::spawn(move || serve_conn(conn, upstream, st, f));
            }
        });
        Proxy {
            addr,
            state,
            first_checkpoint: first,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, m: Mitm) {
        *self.state.mode.lock().unwrap() = Some(m);
    }

    /// Answers `path` with `status` and `body` from now on.
    fn answer(&self, path: &str, status: u16, body: Vec<u8>) {
        self.state
            .overrides
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body));
    }

    fn clear_answers(&self) {
        self.state.overrides.lock().unwrap().clear();
    }

    /// Every request seen so far.
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests for `path` were seen so far.
    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

fn serve_conn(
    conn: TcpStream,
    upstream: SocketAddr,
    state: Arc<ProxyState>,
    first: Arc<Mutex<Option<Vec<u8>>>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut len = 0usize;
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut authorization = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                if k == "authorization" {
                    authorization = Some(v.clone());
                }
                if k == "content-type" {
                    headers.push((k, v));
                }
            }
        }
        state.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            authorization,
        });
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let forced = state.overrides.lock().unwrap().get(&path).cloned();
        let (status, out, ct) = match forced {
            Some((status, out)) => (status, out, "application/json".to_string()),
            None => {
                let hdrs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let resp = http(
                    upstream,
                    &method,
                    &path,
                    &hdrs,
                    (method == "POST").then_some(body.as_slice()),
                );
                let m = state.mode.lock().unwrap().unwrap_or(Mitm::Pass);
                let mut out = resp.body.clone();
                let mut status = resp.status;
                if resp.status == 200 {
                    out = rewrite(m, &path, out, &first);
                    if let Mitm::NonOk(s) = m {
                        if path == "/v1/fetch/logs" || path == "/v1/proof/inclusion" {
                            status = s;
                        }
                    }
                }
                let ct = resp
                    .header("content-type")
                    .unwrap_or("application/json")
                    .to_string();
                (status, out, ct)
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
            out.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&out).is_err() {
            return;
        }
    }
}

fn rewrite(m: Mitm, path: &str, body: Vec<u8>, first: &Mutex<Option<Vec<u8>>>) -> Vec<u8> {
    if path == "/v1/fetch/checkpoint" {
        let mut f = first.lock().unwrap();
        if f.is_none() {
            *f = Some(body.clone());
        }
    }
    match (m, path) {
        (Mitm::EmptyInclusion | Mitm::NonOk(_), "/v1/proof/inclusion") => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            v["log"] = serde_json::Value::String(String::new());
            serde_json::to_vec(&v).unwrap()
        }
        (Mitm::FlipLedgerLeaf, p) if p.starts_with("/v1/ledger/records/") => {
            let mut b = body;
            if let Some(x) = b.get_mut(40) {
                *x ^= 1;
            }
            b
        }
        (Mitm::ReplayCheckpoint, "/v1/fetch/checkpoint") => first.lock().unwrap().clone().unwrap(),
        (Mitm::BreakSignature, "/v1/fetch/checkpoint") => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            // Same key, a signature over something else: flip one byte of
            // `r` inside the DER (which stays well-formed).
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            let sig = v["signature"].as_str().unwrap().to_string();
            let der = sig.strip_prefix("ecdsa-p256:").unwrap();
            let mut bytes = b64.decode(der).unwrap();
            bytes[10] ^= 0x55;
            v["signature"] = serde_json::Value::String(format!("ecdsa-p256:{}", b64.encode(bytes)));
            serde_json::to_vec(&v).unwrap()
        }
        (Mitm::RewriteRecord | Mitm::NonOk(_), "/v1/fetch/logs") => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(pkgs) = v.get_mut("packages").and_then(|p| p.as_object_mut()) {
                for recs in pkgs.values_mut() {
                    for rec in recs.as_array_mut().into_iter().flatten() {
                        // Replace the record with a copy whose content
                        // bytes are the same record signed... by nobody:
                        // flip the last byte of its timestamp field.
                        use base64::Engine as _;
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let raw = rec["contentBytes"].as_str().unwrap();
                        let mut bytes = b64.decode(raw).unwrap();
                        if let Some(last) = bytes.last_mut() {
                            *last ^= 1;
                        }
                        rec["contentBytes"] = serde_json::Value::String(b64.encode(bytes));
                    }
                }
            }
            serde_json::to_vec(&v).unwrap()
        }
        (Mitm::RewriteIndex, "/v1/fetch/logs") => {
            // The first record of every package log of two or more records
            // claims the registry index just before its own (still in
            // order, and its signature does not cover the index).
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(pkgs) = v.get_mut("packages").and_then(|p| p.as_object_mut()) {
                for recs in pkgs.values_mut() {
                    if let Some(recs) = recs.as_array_mut().filter(|r| r.len() >= 2) {
                        let i = recs[0]["registryIndex"].as_u64().unwrap();
                        recs[0]["registryIndex"] = serde_json::json!(i - 1);
                    }
                }
            }
            serde_json::to_vec(&v).unwrap()
        }
        _ => body,
    }
}

/// bulwark behind the proxy, with one package published and downloaded once
/// in `Pass` mode (so bulwark accepted a checkpoint).
fn mitm_setup(seed: u64) -> (WargServer, Proxy, Bulwark, Vec<u8>) {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let proxy = Proxy::start(acme.addr);
    let bytes = component(1500, seed);
    let b = Bulwark::start(&[Up {
        name: "acme-up",
        url: proxy.url(),
        key: &acme.operator_key.public,
        namespace: "acme",
        default: true,
        extra: NO_REUSE.to_string(),
    }]);
    // First checkpoint (length 1) goes through unmodified and is recorded.
    assert_eq!(b.get("/v1/fetch/checkpoint", &[]).status, 200);
    publish_direct(&acme, "acme:mitm", &bytes);
    (acme, proxy, b, bytes)
}

#[test]
fn mitm_emptied_inclusion_bundle_is_refused() {
    let (_acme, proxy, b, bytes) = mitm_setup(11);
    proxy.set(Mitm::EmptyInclusion);
    let client = WargClient::new(&b.url());
    let err = client.download("acme:mitm", None).expect_err("refused");
    assert!(!b.has_blob(&content_digest(&bytes)));
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{err:?}");
    assert!(body_text(&r).contains("inclusion"), "{}", body_text(&r));
}

#[test]
fn mitm_rewritten_record_is_refused() {
    let (_acme, proxy, b, bytes) = mitm_setup(12);
    proxy.set(Mitm::RewriteRecord);
    let client = WargClient::new(&b.url());
    let err = client.download("acme:mitm", None).expect_err("refused");
    assert!(!b.has_blob(&content_digest(&bytes)));
    // The same fetch by hand: the refusal names the check.
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}", body_text(&cp));
    let len = cp.json()["contents"]["logLength"].as_u64().unwrap();
    let name: warg_protocol::registry::PackageName = "acme:mitm".parse().unwrap();
    let log_id = warg_protocol::registry::LogId::package_log::<warg_crypto::hash::Sha256>(&name);
    let body = format!(r#"{{"logLength":{len},"packages":{{"{log_id}":null}}}}"#);
    let r = http(
        b.addr,
        "POST",
        "/v1/fetch/logs",
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 502, "{err:?}: {}", body_text(&r));
    assert!(
        body_text(&r).contains("log-validation check failed"),
        "{}",
        body_text(&r)
    );
    let src = b.get(&format!("/v1/content/{}", content_digest(&bytes)), &[]);
    assert_eq!(src.status, 404, "an unverified release names no content");
}

#[test]
fn mitm_replayed_older_checkpoint_is_refused() {
    let (_acme, proxy, b, _bytes) = mitm_setup(13);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert!(r.json()["contents"]["logLength"].as_u64().unwrap() > 1);
    assert!(proxy.first_checkpoint.lock().unwrap().is_some());
    proxy.set(Mitm::ReplayCheckpoint);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("rewind"), "{}", body_text(&r));
}

#[test]
fn mitm_checkpoint_with_a_broken_signature_is_refused() {
    let (_acme, proxy, b, bytes) = mitm_setup(14);
    proxy.set(Mitm::BreakSignature);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(
        body_text(&r).contains("checkpoint-signature"),
        "{}",
        body_text(&r)
    );
    let client = WargClient::new(&b.url());
    assert!(client.download("acme:mitm", None).is_err());
    assert!(!b.has_blob(&content_digest(&bytes)));
}

#[test]
fn ledger_is_served_only_when_it_hashes_to_the_verified_root() {
    let (acme, proxy, b, _bytes) = mitm_setup(15);
    let direct = acme.get("/v1/ledger/records/0");
    assert_eq!(direct.status, 200);
    let sources = b.get("/v1/ledger", &[]);
    assert_eq!(sources.status, 200, "{}", body_text(&sources));
    assert_eq!(sources.header("content-type"), Some("application/json"));
    assert_eq!(
        sources.json()["sources"][0]["url"].as_str(),
        Some("v1/ledger/records/0")
    );
    // The monitor route answers from what bulwark verified.
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    let v = http(
        b.addr,
        "POST",
        "/v1/verify/checkpoint",
        &[("content-type", "application/json")],
        Some(&cp.body),
    );
    assert_eq!(v.status, 200, "{}", body_text(&v));
    assert_eq!(v.json()["checkpoint"], "verified", "{}", body_text(&v));
    assert_eq!(v.json()["signature"], "verified", "{}", body_text(&v));
    let mut forged = cp.json();
    forged["contents"]["timestamp"] = serde_json::json!(1);
    let v = http(
        b.addr,
        "POST",
        "/v1/verify/checkpoint",
        &[("content-type", "application/json")],
        Some(&serde_json::to_vec(&forged).unwrap()),
    );
    assert_eq!(v.json()["signature"], "invalid", "{}", body_text(&v));
    let via = b.get("/v1/ledger/records/0", &[]);
    assert_eq!(via.status, 200, "{}", body_text(&via));
    assert_eq!(
        via.header("content-type"),
        Some("application/vnd.warg.ledger.packed")
    );
    assert_eq!(via.body, direct.body[..via.body.len()].to_vec());
    assert!(!via.body.is_empty() && via.body.len() % 64 == 0);
    // A new checkpoint (a second package) and a tampered ledger page.
    publish_direct(&acme, "acme:second", &component(200, 16));
    proxy.set(Mitm::FlipLedgerLeaf);
    let r = b.get("/v1/ledger/records/0", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(
        body_text(&r).contains("ledger check failed"),
        "{}",
        body_text(&r)
    );
}

#[test]
fn mitm_rewritten_registry_index_of_a_non_head_record_is_refused() {
    let (acme, proxy, b, _) = mitm_setup(17);
    // A package log of two records: the first is not the head.
    let publisher = WargClient::new(&acme.url());
    let (one, two) = (component(900, 18), component(950, 19));
    for (v, bytes) in [("1.0.0", &one), ("1.1.0", &two)] {
        let run = publisher.publish("acme:two", v, bytes);
        assert!(run.success, "publish {v}: {run:?}");
    }
    let name: warg_protocol::registry::PackageName = "acme:two".parse().unwrap();
    let log_id = warg_protocol::registry::LogId::package_log::<warg_crypto::hash::Sha256>(&name);
    let fetch = |b: &Bulwark| {
        let cp = b.get("/v1/fetch/checkpoint", &[]);
        assert_eq!(cp.status, 200, "{}", body_text(&cp));
        let len = cp.json()["contents"]["logLength"].as_u64().unwrap();
        let body = format!(r#"{{"logLength":{len},"packages":{{"{log_id}":null}}}}"#);
        http(
            b.addr,
            "POST",
            "/v1/fetch/logs",
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    };
    proxy.set(Mitm::RewriteIndex);
    let r = fetch(&b);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    let text = body_text(&r);
    assert!(text.contains("acme-up"), "{text}");
    assert!(text.contains("inclusion check failed"), "{text}");
    assert!(text.contains("expected leaf"), "{text}");
    assert!(text.contains("in the verified ledger"), "{text}");
    let client = WargClient::new(&b.url());
    assert!(client.download("acme:two", Some("1.0.0")).is_err());
    assert!(!b.has_blob(&content_digest(&one)));
    // The honest path: both records served at their indexes, both releases
    // downloaded byte-identical.
    proxy.set(Mitm::Pass);
    let r = fetch(&b);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let recs = r.json()["packages"][log_id.to_string()].clone();
    assert_eq!(recs.as_array().map(Vec::len), Some(2), "{recs}");
    assert_eq!(client.download("acme:two", Some("1.0.0")).unwrap(), one);
    assert_eq!(client.download("acme:two", None).unwrap(), two);
}

// ---- issue 8: fail-open and exhaustion paths ----

fn log_id_of(name: &str) -> warg_protocol::registry::LogId {
    let name: warg_protocol::registry::PackageName = name.parse().unwrap();
    warg_protocol::registry::LogId::package_log::<warg_crypto::hash::Sha256>(&name)
}

fn logs_body(len: u64, log_id: &warg_protocol::registry::LogId) -> String {
    format!(r#"{{"logLength":{len},"packages":{{"{log_id}":null}}}}"#)
}

/// bulwark's current checkpoint length (asserting it answered 200).
fn checkpoint_len(b: &Bulwark) -> u64 {
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}\n{}", body_text(&cp), b.stderr());
    cp.json()["contents"]["logLength"].as_u64().unwrap()
}

/// The checkpoint JSON `cp`, changed by `f` and signed again with `key`
/// (the upstream's own operator key: validly signed).
fn resign(
    cp: &[u8],
    key: &support::warg::WargKey,
    f: impl FnOnce(&mut warg_protocol::registry::TimestampedCheckpoint),
) -> Vec<u8> {
    use warg_protocol::registry::TimestampedCheckpoint;
    use warg_protocol::SerdeEnvelope;
    let env: SerdeEnvelope<TimestampedCheckpoint> = serde_json::from_slice(cp).unwrap();
    let mut contents = env.into_contents();
    f(&mut contents);
    let private = warg_crypto::signing::PrivateKey::decode(key.private.clone()).unwrap();
    serde_json::to_vec(&SerdeEnvelope::signed_contents(&private, contents).unwrap()).unwrap()
}

#[test]
fn mitm_203_and_206_answers_with_a_forged_log_and_an_empty_bundle_are_refused() {
    let (_acme, proxy, b, bytes) = mitm_setup(21);
    let len = checkpoint_len(&b);
    let log_id = log_id_of("acme:mitm");
    for status in [203u16, 206] {
        proxy.set(Mitm::NonOk(status));
        let r = b.post("/v1/fetch/logs", &[], logs_body(len, &log_id).as_bytes());
        assert_eq!(r.status, 502, "fetch/logs {status}: {}", body_text(&r));
        let text = body_text(&r);
        assert!(text.contains("status check failed"), "{text}");
        assert!(text.contains(&status.to_string()), "{text}");
        let inc = format!(r#"{{"logLength":{len},"leafs":[1]}}"#);
        let r = b.post("/v1/proof/inclusion", &[], inc.as_bytes());
        assert_eq!(r.status, 502, "proof/inclusion {status}: {}", body_text(&r));
        let client = WargClient::new(&b.url());
        assert!(client.download("acme:mitm", None).is_err());
        assert!(!b.has_blob(&content_digest(&bytes)));
    }
    // An upstream error keeps its status, with bulwark's own body.
    proxy.set(Mitm::Pass);
    proxy.answer(
        "/v1/proof/consistency",
        500,
        b"<html>upstream broke: <script>x</script></html>".to_vec(),
    );
    let r = b.post("/v1/proof/consistency", &[], br#"{"from":1,"to":2}"#);
    assert_eq!(r.status, 500, "{}", body_text(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["status"], 500);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("acme-up") && !msg.contains("<script>"),
        "{msg}"
    );
}

#[test]
fn operator_signed_checkpoint_with_another_map_root_at_an_accepted_length_is_a_fork() {
    use warg_protocol::registry::{LogId, MapLeaf, RecordId};
    let (acme, proxy, mut b, _) = mitm_setup(22);
    let len = checkpoint_len(&b);
    // The genuine checkpoint at that length, and the operator log's head.
    let genuine = acme.get("/v1/fetch/checkpoint");
    assert_eq!(genuine.status, 200);
    let ops = acme.post_json(
        "/v1/fetch/logs",
        &format!(r#"{{"logLength":{len},"operator":null}}"#),
    );
    assert_eq!(ops.status, 200);
    let ops: warg_api::v1::fetch::FetchLogsResponse = serde_json::from_slice(&ops.body).unwrap();
    let head = ops.operator.into_iter().last().unwrap();
    let index = head.envelope.registry_index;
    let env: warg_protocol::PublishedProtoEnvelope<warg_protocol::operator::OperatorRecord> =
        head.envelope.try_into().unwrap();
    let record_id = RecordId::operator_record::<warg_crypto::hash::Sha256>(&env.envelope);
    let inc = acme.post_json(
        "/v1/proof/inclusion",
        &format!(r#"{{"logLength":{len},"leafs":[{index}]}}"#),
    );
    assert_eq!(inc.status, 200);
    let inc: warg_api::v1::proof::InclusionResponse = serde_json::from_slice(&inc.body).unwrap();
    // Another map (the operator head, plus a package head nobody else is
    // shown), its root signed by the operator key at the same log length
    // and log root.
    let operator = LogId::operator_log::<warg_crypto::hash::Sha256>();
    let hidden = log_id_of("acme:hidden");
    let map = warg_transparency::map::Map::<warg_crypto::hash::Sha256, LogId, MapLeaf>::default()
        .insert(
            operator.clone(),
            MapLeaf {
                record_id: record_id.clone(),
            },
        )
        .insert(hidden, MapLeaf { record_id });
    let proof = map.prove(operator).unwrap();
    let map_bundle = warg_transparency::map::MapProofBundle::bundle(vec![proof]).encode();
    let root: warg_crypto::hash::AnyHash = map.root().clone().into();
    let forged = resign(&genuine.body, &acme.operator_key, |c| {
        assert_eq!(c.checkpoint.log_length as u64, len);
        assert_ne!(c.checkpoint.map_root, root);
        c.checkpoint.map_root = root.clone();
    });
    proxy.answer("/v1/fetch/checkpoint", 200, forged);
    proxy.answer(
        "/v1/proof/inclusion",
        200,
        serde_json::to_vec(&warg_api::v1::proof::InclusionResponse {
            log: inc.log,
            map: map_bundle,
        })
        .unwrap(),
    );
    // A new process: nothing of the accepted checkpoint in memory.
    b.restart();
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("fork"), "{}", body_text(&r));
    proxy.clear_answers();
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("quarantine"), "{}", body_text(&r));
}

#[test]
fn far_future_checkpoint_timestamp_is_refused_and_does_not_block_later_ones() {
    let (acme, proxy, mut b, _) = mitm_setup(23);
    let genuine = acme.get("/v1/fetch/checkpoint");
    assert_eq!(genuine.status, 200);
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 24 * 3600;
    proxy.answer(
        "/v1/fetch/checkpoint",
        200,
        resign(&genuine.body, &acme.operator_key, |c| c.timestamp = far),
    );
    b.restart();
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("timestamp"), "{}", body_text(&r));
    // u64::MAX seconds: refused, not a panic (500).
    proxy.answer(
        "/v1/fetch/checkpoint",
        200,
        resign(&genuine.body, &acme.operator_key, |c| {
            c.timestamp = u64::MAX
        }),
    );
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("timestamp"), "{}", body_text(&r));
    // The honest checkpoints before and after it are accepted.
    proxy.clear_answers();
    let before = checkpoint_len(&b);
    publish_direct(&acme, "acme:later", &component(700, 24));
    assert!(checkpoint_len(&b) > before);
}

#[test]
fn a_quarantined_upstream_gets_nothing_through_on_any_route() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(1800, 25);
    let digest = content_digest(&bytes);
    let hex = digest.trim_start_matches("sha256:").to_string();
    let mut b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    // Log length 1 accepted: the restarted server's length-1 checkpoint
    // then differs from it (a fork, not a rewind).
    assert_eq!(checkpoint_len(&b), 1);
    publish_direct(&acme, "acme:q", &bytes);
    let client = WargClient::new(&b.url());
    assert_eq!(client.download("acme:q", None).unwrap(), bytes);
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200);
    let len = cp.json()["contents"]["logLength"].as_u64().unwrap();
    // Same key, another history: a fork.
    let acme = acme.restart_same_key(false);
    b.restart();
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert!(body_text(&r).contains("fork"), "{}", body_text(&r));
    let log_id = log_id_of("acme:q");
    let routes: Vec<(&str, String, Option<String>)> = vec![
        ("GET", "/v1/fetch/checkpoint".into(), None),
        (
            "POST",
            "/v1/fetch/logs".into(),
            Some(logs_body(len, &log_id)),
        ),
        (
            "POST",
            "/v1/fetch/names".into(),
            Some(format!(r#"{{"packages":["{log_id}"]}}"#)),
        ),
        (
            "POST",
            "/v1/proof/inclusion".into(),
            Some(format!(r#"{{"logLength":{len},"leafs":[1]}}"#)),
        ),
        (
            "POST",
            "/v1/proof/consistency".into(),
            Some(format!(r#"{{"from":1,"to":{len}}}"#)),
        ),
        ("GET", format!("/v1/content/{digest}"), None),
        ("GET", format!("/content/acme-up/sha256-{hex}"), None),
        ("GET", format!("/content/sha256-{hex}"), None),
        ("GET", "/v1/ledger".into(), None),
        ("GET", "/v1/ledger/records/0".into(), None),
        ("POST", "/v1/verify/checkpoint".into(), Some(body_text(&cp))),
        (
            "POST",
            format!("/v1/package/{log_id}/record"),
            Some("{}".into()),
        ),
        ("GET", format!("/v1/package/{log_id}/record/{digest}"), None),
        (
            "POST",
            format!("/v1/package/{log_id}/record/{digest}/content/{digest}"),
            Some("x".into()),
        ),
    ];
    for (method, path, body) in &routes {
        let r = http(
            b.addr,
            method,
            path,
            &[("content-type", "application/json")],
            body.as_ref().map(|b| b.as_bytes()),
        );
        let text = body_text(&r);
        assert_eq!(r.status, 502, "{method} {path}: {text}");
        assert!(
            text.contains("quarantine check failed") && text.contains("acme-up"),
            "{method} {path}: {text}"
        );
    }
    drop(acme);
}

#[test]
fn content_is_served_only_under_the_upstream_whose_release_names_it_even_after_a_restart() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let wasi = WargServer::start(&WargServerOptions::owning("wasi"));
    let bytes = component(2222, 26);
    let digest = content_digest(&bytes);
    let hex = digest.trim_start_matches("sha256:").to_string();
    publish_direct(&acme, "acme:shared", &bytes);
    let mut b = Bulwark::start(&[
        up("acme-up", &acme, "acme", true),
        up("wasi-up", &wasi, "wasi", false),
    ]);
    let client = WargClient::new(&b.url());
    assert_eq!(client.download("acme:shared", None).unwrap(), bytes);
    assert!(b.has_blob(&digest));
    let not_under_wasi = |b: &Bulwark| {
        // Stored, but no release of wasi-up names it.
        for (path, headers) in [
            (format!("/content/wasi-up/sha256-{hex}"), vec![]),
            (
                format!("/v1/content/{digest}"),
                vec![("warg-registry", "wasi-up")],
            ),
            (
                format!("/content/sha256-{hex}"),
                vec![("warg-registry", "wasi-up")],
            ),
        ] {
            let r = b.get(&path, &headers);
            assert_eq!(r.status, 404, "{path}: {}", body_text(&r));
            assert_ne!(r.body, bytes);
        }
    };
    not_under_wasi(&b);
    // Upstream gone, bulwark restarted: what it verified is still served,
    // from its index, under acme-up only.
    acme.stop();
    b.restart();
    let src = b.get(&format!("/v1/content/{digest}"), &[]);
    assert_eq!(src.status, 200, "{}\n{}", body_text(&src), b.stderr());
    let url = src.json()["contentSources"][&digest][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        url,
        format!("http://{}/content/acme-up/sha256-{hex}", b.addr)
    );
    let r = b.get(&format!("/content/acme-up/sha256-{hex}"), &[]);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.body, bytes);
    not_under_wasi(&b);
}

#[test]
fn publishing_is_off_by_default_and_never_carries_bulwarks_token() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let proxy = Proxy::start(acme.addr);
    let token = "bulwark-read-token-0123456789";
    let config = |publish: &str| Up {
        name: "acme-up",
        url: proxy.url(),
        key: &acme.operator_key.public,
        namespace: "acme",
        default: true,
        extra: format!("{NO_REUSE}token = {token:?}\n{publish}"),
    };
    let is_write = |s: &Seen| s.method == "POST" && s.path.starts_with("/v1/package/");
    let log_id = log_id_of("acme:nope");
    let publish_path = format!("/v1/package/{log_id}/record");
    let own = [("authorization", "Bearer client-own-credential")];

    // Default: refused with 403 and a reason, nothing written upstream.
    let off = Bulwark::start(&[config("")]);
    let run = WargClient::new(&off.url()).publish("acme:nope", "1.0.0", &component(500, 27));
    assert!(!run.success, "{run:?}");
    let r = off.post(&publish_path, &own, b"{}");
    assert_eq!(r.status, 403, "{}", body_text(&r));
    assert!(
        body_text(&r).contains("publish = \\\"off\\\""),
        "{}",
        body_text(&r)
    );
    assert!(!proxy.seen().iter().any(is_write), "{:?}", proxy.seen());
    // (bulwark's reads do carry its token: the check below can tell.)
    let bearer = format!("Bearer {token}");
    assert!(proxy
        .seen()
        .iter()
        .any(|s| s.authorization.as_deref() == Some(bearer.as_str())));
    drop(off);

    // Forward: the client's own credential, never bulwark's.
    let fwd = Bulwark::start(&[config("publish = \"forward\"\n")]);
    let r = fwd.post(&publish_path, &own, b"{}");
    assert!((400..500).contains(&r.status), "{}", body_text(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let writes: Vec<Seen> = proxy.seen().into_iter().filter(is_write).collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].authorization.as_deref(),
        Some("Bearer client-own-credential")
    );
    let bytes = component(600, 28);
    let run = WargClient::new(&fwd.url()).publish("acme:yes", "1.0.0", &bytes);
    assert!(run.success, "{run:?}\n{}", fwd.stderr());
    let writes: Vec<Seen> = proxy.seen().into_iter().filter(is_write).collect();
    assert!(writes.len() >= 3, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|s| s.authorization.as_deref() != Some(bearer.as_str())),
        "{writes:?}"
    );
    assert_eq!(
        WargClient::new(&acme.url())
            .download("acme:yes", None)
            .unwrap(),
        bytes
    );
}

#[test]
fn bogus_fetch_tokens_from_clients_do_not_open_the_breaker() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    publish_direct(&acme, "acme:one", &component(400, 29));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let len = checkpoint_len(&b);
    publish_direct(&acme, "acme:two", &component(400, 30));
    // Fetch tokens the upstream never issued (the reference server drops
    // the connection on them).
    let log_id = log_id_of("acme:one");
    for i in 0..12 {
        let bogus = content_digest(format!("no such record {i}").as_bytes());
        let body = format!(r#"{{"logLength":{len},"packages":{{"{log_id}":"{bogus}"}}}}"#);
        let r = b.post("/v1/fetch/logs", &[], body.as_bytes());
        assert_ne!(r.status, 200, "{}", body_text(&r));
    }
    assert!(
        acme.handler_panicked(),
        "the bogus tokens reached the server"
    );
    // A good client still gets the upstream's fresh state.
    let cp = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(cp.status, 200, "{}", body_text(&cp));
    assert!(cp.header("warning").is_none(), "{:?}", cp.headers);
    assert!(cp.json()["contents"]["logLength"].as_u64().unwrap() > len);
}

/// Issue 8 item 13: 200 `fetch/checkpoint` requests from 8 clients at once
/// share the upstream's answers (default `checkpoint_reuse`). Prints the
/// upstream request counts and the wall time.
#[test]
fn checkpoint_requests_share_one_upstream_fetch_and_verification() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    publish_direct(&acme, "acme:load", &component(300, 31));
    let proxy = Proxy::start(acme.addr);
    let b = Bulwark::start(&[Up {
        name: "acme-up",
        url: proxy.url(),
        key: &acme.operator_key.public,
        namespace: "acme",
        default: true,
        extra: String::new(),
    }]);
    let started = std::time::Instant::now();
    let addr = b.addr;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..25 {
                    let r = http(addr, "GET", "/v1/fetch/checkpoint", &[], None);
                    assert_eq!(r.status, 200, "{}", body_text(&r));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    let checkpoints = proxy.count("/v1/fetch/checkpoint");
    let all = proxy.seen().len();
    eprintln!(
        "200 fetch/checkpoint requests in {elapsed:?}: {checkpoints} upstream checkpoint fetches, {all} upstream requests in all"
    );
    // One fetch per reuse window (2 s), plus the first.
    let windows = elapsed.as_secs() as usize / 2 + 2;
    assert!(
        checkpoints <= windows,
        "{checkpoints} fetches in {elapsed:?}"
    );
    assert!(all <= 4 * windows, "{all} upstream requests in {elapsed:?}");
}

#[test]
fn after_a_rebase_nothing_proven_in_the_old_epoch_is_served() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    assert_eq!(checkpoint_len(&b), 1);
    let bytes = component(1900, 32);
    let digest = content_digest(&bytes);
    let hex = digest.trim_start_matches("sha256:").to_string();
    publish_direct(&acme, "acme:old", &bytes);
    let client = WargClient::new(&b.url());
    assert_eq!(client.download("acme:old", None).unwrap(), bytes);
    let len = checkpoint_len(&b);
    let log_id = log_id_of("acme:old");
    let logs = b.post("/v1/fetch/logs", &[], logs_body(len, &log_id).as_bytes());
    assert_eq!(logs.status, 200, "{}", body_text(&logs));
    // Another history under the same key: fork, quarantine; the operator
    // accepts the new history (a new epoch).
    let acme = acme.restart_same_key(false);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    let out = std::process::Command::new(bin())
        .args(["upstream", "clear", "acme-up", "--rebase", "--config"])
        .arg(&b.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(checkpoint_len(&b), 1, "the new history is accepted");
    // The old release is named by nothing verified in this epoch: its
    // stored bytes are not served, not advertised.
    assert!(b.has_blob(&digest));
    for path in [
        format!("/content/acme-up/sha256-{hex}"),
        format!("/v1/content/{digest}"),
        format!("/content/sha256-{hex}"),
    ] {
        let r = b.get(&path, &[]);
        assert_eq!(r.status, 404, "{path}: {}", body_text(&r));
    }
    // Nor the old log, even with the new upstream gone.
    acme.stop();
    let r = b.post("/v1/fetch/logs", &[], logs_body(len, &log_id).as_bytes());
    assert_ne!(r.status, 200, "{}", body_text(&r));
    assert_ne!(r.body, logs.body);
}

#[test]
fn a_client_choosing_old_log_lengths_does_not_make_bulwark_fetch_more_ledgers() {
    let (acme, proxy, b, _) = mitm_setup(33);
    let publisher = WargClient::new(&acme.url());
    let mut lens = Vec::new();
    for (version, seed) in [("1.0.0", 34), ("1.1.0", 35), ("1.2.0", 36)] {
        let run = publisher.publish("acme:many", version, &component(500, seed));
        assert!(run.success, "publish {version}: {run:?}");
        lens.push(checkpoint_len(&b));
    }
    // The log has two or more records (so its non-head records are proven
    // at their index in the verified ledger) at the last two lengths.
    let log_id = log_id_of("acme:many");
    for _ in 0..3 {
        for len in &lens[1..] {
            let r = b.post("/v1/fetch/logs", &[], logs_body(*len, &log_id).as_bytes());
            assert_eq!(r.status, 200, "{len}: {}", body_text(&r));
        }
    }
    // One ledger (the newest verified one) covers every older length.
    let pages: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/ledger/records/"))
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
}

#[test]
fn oversized_json_bodies_are_refused_from_their_declared_length_without_reading_them() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let log_id = log_id_of("acme:big");
    for (path, declared) in [
        ("/v1/fetch/logs".to_string(), 9u64 << 20),
        ("/v1/proof/inclusion".to_string(), 9 << 20),
        (format!("/v1/package/{log_id}/record"), 2 << 20),
    ] {
        // Only the head and a few bytes are sent: the answer must not wait
        // for (or buffer) the rest.
        let mut s = TcpStream::connect(b.addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n{{\"logLength\":",
            b.addr
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head)
            .unwrap_or_else(|e| panic!("{path}: no answer before the body: {e}"));
        assert_eq!(&head, b"HTTP/1.1 413", "{path}");
    }
}

/// The value of the series `series` (name and labels, as exposed) in a
/// `/metrics` text, if it is there.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn warg_verifications_content_cache_and_checkpoint_age_are_in_the_metrics() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(1500, 41);
    publish_direct(&acme, "acme:counted", &bytes);
    let bad = component(1600, 43);
    let bad_digest = content_digest(&bad);
    publish_direct(&acme, "acme:tampered", &bad);
    std::fs::write(acme.content_file(&bad_digest), component(1600, 44)).unwrap();
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let client = WargClient::new(&b.url());
    assert_eq!(client.download("acme:counted", None).unwrap(), bytes);
    assert!(client.download("acme:tampered", None).is_err());
    // The log grows: the next checkpoint is proven consistent with the
    // accepted one; a second client gets the content from the store.
    publish_direct(&acme, "acme:later", &component(700, 42));
    let second = WargClient::new(&b.url());
    assert_eq!(second.download("acme:counted", None).unwrap(), bytes);

    let m = body_text(&b.get("/metrics", &[]));
    let v = |check: &str, outcome: &str| {
        metric(
            &m,
            &format!(
                "bulwark_verifications_total{{upstream=\"acme-up\",check=\"{check}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    for check in [
        "checkpoint-signature",
        "consistency",
        "log-validation",
        "inclusion",
    ] {
        assert!(v(check, "ok").is_some_and(|n| n >= 1.0), "{check} in\n{m}");
        assert_eq!(v(check, "fail"), None, "{check} in\n{m}");
    }
    // Fetched once, checked once; the tampered file failed its check.
    assert_eq!(v("digest", "ok"), Some(1.0), "{m}");
    assert!(v("digest", "fail").is_some_and(|n| n >= 1.0), "{m}");
    let cache = |result: &str| {
        metric(
            &m,
            &format!("bulwark_cache_lookups_total{{kind=\"warg.content\",result=\"{result}\"}}"),
        )
    };
    assert!(cache("hit").is_some_and(|n| n >= 1.0), "{m}");
    assert!(cache("miss").is_some_and(|n| n >= 2.0), "{m}");
    let age = metric(&m, "bulwark_checkpoint_age_seconds{upstream=\"acme-up\"}")
        .unwrap_or_else(|| panic!("no checkpoint age in\n{m}"));
    assert!((0.0..600.0).contains(&age), "{age}");
}

/// A TLS listener whose certificate (self-signed, made here by rcgen) no
/// configured CA vouches for, as an interceptor's would be: every handshake
/// fails on bulwark's side. Runs until the test process ends.
fn untrusted_tls() -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut tcp) = conn else { break };
            let config = config.clone();
            thread::spawn(move || {
                if let Ok(mut tls) = rustls::ServerConnection::new(config) {
                    let _ = tls.complete_io(&mut tcp);
                }
            });
        }
    });
    addr
}

#[test]
fn a_tls_failure_is_refused_while_an_unreachable_upstream_gets_the_last_verified_checkpoint() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let bytes = component(1200, 51);
    publish_direct(&acme, "acme:tls", &bytes);
    let mut b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    assert_eq!(
        WargClient::new(&b.url())
            .download("acme:tls", None)
            .unwrap(),
        bytes
    );
    let verified = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(verified.status, 200, "{}", body_text(&verified));
    let url = acme.url();
    acme.stop();

    // The upstream's address now answers TLS with a certificate nobody
    // vouches for: that is not an absent upstream, and nothing verified
    // earlier stands in for its answer.
    let tls = format!("https://{}", untrusted_tls());
    b.move_upstream(&url, &tls);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 502, "{}", body_text(&r));
    assert_eq!(r.header("warning"), None, "{:?}", r.headers);
    let text = body_text(&r);
    assert!(
        text.contains("acme-up") && text.contains("tls check failed"),
        "{text}"
    );

    // Nobody listening at all: the last verified checkpoint, said so.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    b.move_upstream(&tls, &closed);
    let r = b.get("/v1/fetch/checkpoint", &[]);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.body, verified.body);
    assert!(
        r.header("warning")
            .is_some_and(|w| w.starts_with("110 bulwark") && w.contains("unreachable")),
        "{:?}",
        r.headers
    );
}

#[test]
fn content_a_verified_release_names_survives_restarts_stored_or_not() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let proxy = Proxy::start(acme.addr);
    let stored = component(1300, 61);
    let named = component(1400, 62);
    let (stored_hex, named_hex) = (
        content_digest(&stored)
            .trim_start_matches("sha256:")
            .to_string(),
        content_digest(&named)
            .trim_start_matches("sha256:")
            .to_string(),
    );
    publish_direct(&acme, "acme:stored", &stored);
    publish_direct(&acme, "acme:named", &named);
    let mut b = Bulwark::start(&[Up {
        url: proxy.url(),
        ..up("acme-up", &acme, "acme", true)
    }]);
    assert_eq!(
        WargClient::new(&b.url())
            .download("acme:stored", None)
            .unwrap(),
        stored
    );
    // acme:named's log is validated and proven (its release indexed), its
    // bytes never fetched.
    let len = checkpoint_len(&b);
    let logs = b.post(
        "/v1/fetch/logs",
        &[],
        logs_body(len, &log_id_of("acme:named")).as_bytes(),
    );
    assert_eq!(logs.status, 200, "{}", body_text(&logs));
    assert!(!b.has_blob(&content_digest(&named)));

    // Restarted, upstream up: the index still names it; bulwark fetches
    // and checks the bytes without validating any log again.
    b.restart();
    let fetched_logs = proxy.count("/v1/fetch/logs");
    let src = b.get(&format!("/v1/content/sha256:{named_hex}"), &[]);
    assert_eq!(src.status, 200, "{}", body_text(&src));
    let r = b.get(&format!("/content/acme-up/sha256-{named_hex}"), &[]);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.body, named);
    assert_eq!(proxy.count("/v1/fetch/logs"), fetched_logs);

    // Restarted with the upstream gone: both are served from the store.
    acme.stop();
    b.restart();
    for (hex, bytes) in [(&stored_hex, &stored), (&named_hex, &named)] {
        let r = b.get(&format!("/content/acme-up/sha256-{hex}"), &[]);
        assert_eq!(r.status, 200, "{}\n{}", body_text(&r), b.stderr());
        assert_eq!(&r.body, bytes);
    }
}

#[test]
fn content_of_an_old_epoch_is_served_again_only_once_the_new_epoch_proves_it() {
    let acme = WargServer::start(&WargServerOptions::owning("acme"));
    let b = Bulwark::start(&[up("acme-up", &acme, "acme", true)]);
    let bytes = component(1700, 71);
    let digest = content_digest(&bytes);
    let hex = digest.trim_start_matches("sha256:").to_string();
    publish_direct(&acme, "acme:again", &bytes);
    assert_eq!(
        WargClient::new(&b.url())
            .download("acme:again", None)
            .unwrap(),
        bytes
    );
    // Another history under the same key; the operator accepts it.
    let acme = acme.restart_same_key(false);
    assert_eq!(b.get("/v1/fetch/checkpoint", &[]).status, 502);
    let out = std::process::Command::new(bin())
        .args(["upstream", "clear", "acme-up", "--rebase", "--config"])
        .arg(&b.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(b.has_blob(&digest));
    let content = |b: &Bulwark| b.get(&format!("/content/acme-up/sha256-{hex}"), &[]).status;
    assert_eq!(content(&b), 404);
    // The new history releases the same bytes under another name: proven
    // in this epoch, the stored blob is served again.
    publish_direct(&acme, "acme:relaunched", &bytes);
    assert_eq!(content(&b), 404, "not before a log naming it is proven");
    assert_eq!(
        WargClient::new(&b.url())
            .download("acme:relaunched", None)
            .unwrap(),
        bytes
    );
    assert_eq!(content(&b), 200);
}
