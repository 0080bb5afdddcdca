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
}

/// The real bulwark binary, killed on drop.
struct Bulwark {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
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
                "[[upstream]]\nname = {:?}\nprotocol = \"warg\"\nurl = {:?}\noperator_key = {:?}\nnamespaces = [{:?}]\ndefault = {}\n\n",
                u.name, u.url, u.key, u.namespace, u.default
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
        }
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
    }
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
        up("acme-up", &acme, "acme", true),
        up("wasi-up", &wasi, "wasi", false),
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
}

/// An HTTP/1.1 proxy in front of a warg-server that rewrites answers
/// according to its mode; it records the first checkpoint body it sees for
/// replay.
struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mitm>>,
    first_checkpoint: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mitm::Pass));
        let first = Arc::new(Mutex::new(None));
        let (m, f) = (mode.clone(), first.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (m, f) = (m.clone(), f.clone());
                thread::spawn(move || serve_conn(conn, upstream, m, f));
            }
        });
        Proxy {
            addr,
            mode,
            first_checkpoint: first,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, m: Mitm) {
        *self.mode.lock().unwrap() = m;
    }
}

fn serve_conn(
    conn: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mitm>>,
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
                if k == "content-type" {
                    headers.push((k, v));
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
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
        let m = *mode.lock().unwrap();
        let mut out = resp.body.clone();
        if resp.status == 200 {
            out = rewrite(m, &path, out, &first);
        }
        let ct = resp
            .header("content-type")
            .unwrap_or("application/json")
            .to_string();
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
            resp.status,
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
        (Mitm::EmptyInclusion, "/v1/proof/inclusion") => {
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
        (Mitm::RewriteRecord, "/v1/fetch/logs") => {
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
