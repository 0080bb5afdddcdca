//! The real npm peers for tests: the `verdaccio` registry server (installed
//! by `.ci/setup` into `~/.cache/bulwark-tools/verdaccio`, or
//! `$BULWARK_VERDACCIO_DIR`) and the `npm` client from the machine's Node.
//!
//! [`Verdaccio`] runs verdaccio's own server on a port-0 socket
//! (`tests/support/run_verdaccio.js` prints the port) with its storage in a
//! test directory; dropping it closes the launcher's standard input, which
//! ends it, and reaps it. [`Npm`] runs `npm` with its own home, user
//! configuration and cache, so nothing of the machine's is used.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The directory holding `node_modules/verdaccio`.
pub fn verdaccio_dir() -> PathBuf {
    let dir = std::env::var_os("BULWARK_VERDACCIO_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/bulwark-tools/verdaccio"))
        })
        .expect("HOME or BULWARK_VERDACCIO_DIR");
    assert!(
        dir.join("node_modules/verdaccio/package.json").exists(),
        "no verdaccio at {} (run .ci/setup)",
        dir.display()
    );
    dir
}

/// A running verdaccio.
pub struct Verdaccio {
    child: Child,
    pub addr: SocketAddr,
    /// Its storage directory (`<name>/<file>.tgz`, `<name>/package.json`).
    pub storage: PathBuf,
}

impl Verdaccio {
    /// Starts verdaccio with its storage and configuration under `dir`;
    /// anyone may publish (tests publish with any token).
    pub fn start(dir: &Path) -> Verdaccio {
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).expect("verdaccio storage");
        let config = dir.join("verdaccio.yaml");
        std::fs::write(
            &config,
            format!(
                "storage: {}\nauth:\n  htpasswd:\n    file: {}\n    max_users: -1\nuplinks: {{}}\n\
                 packages:\n  '**':\n    access: $all\n    publish: $anonymous\n    unpublish: $anonymous\n\
                 log: {{ type: stdout, format: pretty, level: error }}\n",
                storage.display(),
                dir.join("htpasswd").display()
            ),
        )
        .expect("write verdaccio config");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/run_verdaccio.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg(&config)
            .env("NODE_PATH", verdaccio_dir().join("node_modules"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start verdaccio (node)");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let mut addr = None;
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(a) = line.trim().strip_prefix("listening on ") {
                addr = a.parse().ok();
                break;
            }
            line.clear();
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("verdaccio did not start: {line:?}");
        };
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Verdaccio {
            child,
            addr,
            storage,
        }
    }

    /// Its registry URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The stored tarball of `name@version`.
    pub fn tarball(&self, name: &str, version: &str) -> PathBuf {
        let bare = name.rsplit('/').next().unwrap_or(name);
        self.storage
            .join(name)
            .join(format!("{bare}-{version}.tgz"))
    }
}

impl Drop for Verdaccio {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `npm` with its own home, user configuration and cache under `home`.
pub struct Npm {
    pub home: PathBuf,
}

impl Npm {
    /// A client whose files are all under `home` (created); `cache`
    /// names its cache directory (a new name is a fresh cache).
    pub fn new(home: &Path) -> Npm {
        std::fs::create_dir_all(home).expect("npm home");
        std::fs::write(home.join(".npmrc"), "").expect("npmrc");
        Npm {
            home: home.to_path_buf(),
        }
    }

    /// Runs `npm args...` in `cwd` against `registry` with the cache
    /// `home/<cache>`.
    pub fn run(&self, cwd: &Path, registry: &str, cache: &str, args: &[&str]) -> Output {
        std::fs::create_dir_all(cwd).expect("npm cwd");
        Command::new("npm")
            .args(args)
            .arg("--registry")
            .arg(registry)
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env("npm_config_userconfig", self.home.join(".npmrc"))
            .env("npm_config_globalconfig", self.home.join("global-npmrc"))
            .env("npm_config_cache", self.home.join(cache))
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_fetch_retries", "0")
            .env_remove("NODE_OPTIONS")
            .output()
            .expect("run npm")
    }

    /// Adds a (meaningless) token for `registry`, which verdaccio takes
    /// for anonymous publishing.
    pub fn login(&self, registry_addr: SocketAddr) {
        std::fs::write(
            self.home.join(".npmrc"),
            format!("//{registry_addr}/:_authToken=test-token\n"),
        )
        .expect("npmrc");
    }
}

/// Writes a package `name@version` with `deps` into `dir/<name>` and
/// returns its directory.
pub fn make_package(dir: &Path, name: &str, version: &str, deps: &[(&str, &str)]) -> PathBuf {
    let pkg = dir.join(name.replace('/', "__")).join(version);
    std::fs::create_dir_all(&pkg).expect("package dir");
    let deps: serde_json::Map<String, serde_json::Value> = deps
        .iter()
        .map(|(n, r)| (n.to_string(), serde_json::Value::String(r.to_string())))
        .collect();
    let manifest = serde_json::json!({
        "name": name,
        "version": version,
        "main": "index.js",
        "license": "MIT",
        "dependencies": deps,
    });
    std::fs::write(pkg.join("package.json"), manifest.to_string()).expect("package.json");
    std::fs::write(
        pkg.join("index.js"),
        format!("module.exports = {:?};\n", format!("{name}@{version}")),
    )
    .expect("index.js");
    pkg
}

/// Asserts a command succeeded, showing its output if not.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publishes the package in `pkg` to verdaccio with `npm publish`.
pub fn publish(npm: &Npm, registry: &Verdaccio, pkg: &Path) {
    npm.login(registry.addr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pkg.join("package.json")).expect("package.json"))
            .expect("package.json");
    // npm wants a tag for a prerelease.
    let prerelease = manifest["version"]
        .as_str()
        .is_some_and(|v| v.contains('-'));
    let args: &[&str] = if prerelease {
        &["publish", "--tag", "next"]
    } else {
        &["publish"]
    };
    let out = npm.run(pkg, &registry.url(), "publish-cache", args);
    assert_success("npm publish", &out);
}

/// Publishes the tarball file `tgz` as it is (`npm publish <file>.tgz`).
pub fn publish_tarball(npm: &Npm, registry: &Verdaccio, tgz: &Path) {
    npm.login(registry.addr);
    let cwd = npm.home.join("publish-tarball");
    let out = npm.run(
        &cwd,
        &registry.url(),
        "publish-cache",
        &["publish", &tgz.display().to_string()],
    );
    assert_success("npm publish <tarball>", &out);
}

/// How the [`SigningRegistry`] signs one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// With key `i` of [`test_key`], over the right message.
    Key(u8),
    /// With key `i`, over another version's message (a signature that
    /// does not verify).
    Wrong(u8),
    /// No signature.
    None,
}

/// Test registry key `i` (a fixed P-256 key) and its key ID.
pub fn test_key(i: u8) -> (p256::ecdsa::SigningKey, String) {
    let key = p256::ecdsa::SigningKey::from_slice(&[0x40 + i; 32]).expect("test key");
    (key, format!("SHA256:bulwark-test-key-{i}"))
}

/// A `keys.json` (the shape Sigstore's TUF repository distributes npm's
/// keys in) with test keys `(i, valid_from, valid_until)`.
pub fn keys_json(keys: &[(u8, &str, Option<&str>)]) -> String {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey as _;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(i, start, end)| {
            let (k, id) = test_key(*i);
            let spki = k.verifying_key().to_public_key_der().expect("spki");
            let mut window = serde_json::json!({ "start": start });
            if let Some(end) = end {
                window["end"] = serde_json::json!(end);
            }
            serde_json::json!({
                "keyId": id,
                "keyUsage": "npm:signatures",
                "publicKey": {
                    "rawBytes": base64::engine::general_purpose::STANDARD.encode(spki.as_bytes()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": window,
                },
            })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Attestations answers by `<name>@<version>`.
pub type Answers = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>;

/// A registry in front of verdaccio that adds what a private registry
/// lacks: `dist.signatures` on every version of every packument (ECDSA
/// P-256 over `<name>@<version>:<integrity>`, base64 DER, as the public
/// registry signs), made with test keys chosen per version. Everything
/// else is verdaccio's own answer (verdaccio writes tarball URLs on this
/// registry's address, from the Host header it is sent).
pub struct SigningRegistry {
    pub addr: SocketAddr,
    /// Attestations answers by `<name>@<version>`: served at
    /// `/-/npm/v1/attestations/<name>@<version>` (404 for the others),
    /// and listed in `dist.attestations` of their versions, as the public
    /// registry does. Tests may change them while it runs.
    pub attestations: Answers,
    /// When set, attestations are answered only for a scoped name written
    /// `@scope/name` (a registry that does not take `@scope%2fname`).
    pub plain_scoped_names: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SigningRegistry {
    /// Serves in front of `upstream`; `sign(name, version)` says how each
    /// version is signed.
    pub fn start(
        upstream: SocketAddr,
        sign: impl Fn(&str, &str) -> Sign + Send + Sync + 'static,
    ) -> SigningRegistry {
        SigningRegistry::edited(upstream, sign, |_| {})
    }

    /// Like [`SigningRegistry::start`], and every `time` of every
    /// packument says 2015 (a registry claiming its versions are old).
    pub fn backdated(
        upstream: SocketAddr,
        sign: impl Fn(&str, &str) -> Sign + Send + Sync + 'static,
    ) -> SigningRegistry {
        SigningRegistry::edited(upstream, sign, |doc| {
            if let Some(t) = doc.get_mut("time").and_then(|t| t.as_object_mut()) {
                for v in t.values_mut() {
                    *v = serde_json::json!("2015-01-01T00:00:00.000Z");
                }
            }
        })
    }

    /// Like [`SigningRegistry::start`], and `edit` changes every signed
    /// packument before it is sent.
    pub fn edited(
        upstream: SocketAddr,
        sign: impl Fn(&str, &str) -> Sign + Send + Sync + 'static,
        edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
    ) -> SigningRegistry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sign = std::sync::Arc::new(sign);
        let edit = std::sync::Arc::new(edit);
        let attestations = Answers::default();
        let answers = attestations.clone();
        let plain_scoped_names = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let plain = plain_scoped_names.clone();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (sign, edit, answers) = (sign.clone(), edit.clone(), answers.clone());
                let plain = plain.load(std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve_signed(conn, addr, upstream, &*sign, &*edit, &answers, plain)
                });
            }
        });
        SigningRegistry {
            addr,
            attestations,
            plain_scoped_names,
            stop,
            thread: Some(thread),
        }
    }

    /// Its registry URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for SigningRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_signed(
    mut conn: std::net::TcpStream,
    me: SocketAddr,
    upstream: SocketAddr,
    sign: &(dyn Fn(&str, &str) -> Sign + Send + Sync),
    edit: &(dyn Fn(&mut serde_json::Value) + Send + Sync),
    answers: &Answers,
    plain_scoped_names: bool,
) {
    use std::io::{Read, Write};
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut line = head.lines().next().unwrap_or("").split(' ');
    let (method, path) = (line.next().unwrap_or(""), line.next().unwrap_or("/"));
    let accept = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("accept")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "application/json".into());
    if let Some(spec) = path.strip_prefix("/-/npm/v1/attestations/") {
        let escaped = spec.contains("%2f") || spec.contains("%2F");
        let spec = spec.replace("%2f", "/").replace("%2F", "/");
        let answer = if escaped && plain_scoped_names {
            None
        } else {
            answers.lock().unwrap().get(&spec).cloned()
        };
        let _ = match answer {
            Some(body) => write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .and_then(|_| conn.write_all(&body)),
            None => conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
        };
        return;
    }
    // Forward with this registry's address as Host.
    let Ok(mut up) = std::net::TcpStream::connect(upstream) else {
        return;
    };
    let _ = write!(
        up,
        "{method} {path} HTTP/1.0\r\nHost: {me}\r\nAccept: {accept}\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = up.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let status_line = String::from_utf8_lossy(&raw[..split])
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let body = &raw[split + 4..];
    let signed = (status_line.contains(" 200 ") && !path.contains("/-/"))
        .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
        .flatten()
        .map(|mut doc| {
            add_signatures(&mut doc, sign);
            list_attestations(&mut doc, me, answers);
            edit(&mut doc);
            serde_json::to_vec(&doc).expect("json")
        });
    match signed {
        Some(body) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
        None => {
            let _ = conn.write_all(&raw);
        }
    }
}

/// `dist.attestations` of the versions with an answer, as the public
/// registry lists them.
fn list_attestations(doc: &mut serde_json::Value, me: SocketAddr, answers: &Answers) {
    let name = doc["name"].as_str().unwrap_or("").to_string();
    let answers = answers.lock().unwrap();
    let Some(versions) = doc.get_mut("versions").and_then(|v| v.as_object_mut()) else {
        return;
    };
    for (version, m) in versions.iter_mut() {
        if answers.contains_key(&format!("{name}@{version}")) {
            m["dist"]["attestations"] = serde_json::json!({
                "url": format!("http://{me}/-/npm/v1/attestations/{}@{version}", name.replace('/', "%2f")),
                "provenance": { "predicateType": "https://slsa.dev/provenance/v1" },
            });
        }
    }
}

fn add_signatures(doc: &mut serde_json::Value, sign: &(dyn Fn(&str, &str) -> Sign + Send + Sync)) {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    let name = doc["name"].as_str().unwrap_or("").to_string();
    let Some(versions) = doc.get_mut("versions").and_then(|v| v.as_object_mut()) else {
        return;
    };
    for (version, m) in versions.iter_mut() {
        let integrity = m["dist"]["integrity"].as_str().unwrap_or("").to_string();
        let (i, message) = match sign(&name, version) {
            Sign::None => continue,
            Sign::Key(i) => (i, format!("{name}@{version}:{integrity}")),
            Sign::Wrong(i) => (i, format!("{name}@0.0.0-other:{integrity}")),
        };
        let (key, id) = test_key(i);
        let sig: p256::ecdsa::Signature = key.sign(message.as_bytes());
        m["dist"]["signatures"] = serde_json::json!([{
            "keyid": id,
            "sig": base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes()),
        }]);
    }
}

/// `tests/support/npm_verify.js` (what `npm audit signatures` checks per
/// package) with npm's own libraries.
pub fn npm_verify(client: &Npm, registry: &str, specs: &[&str]) -> Output {
    let root = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .expect("npm root -g");
    let root = String::from_utf8_lossy(&root.stdout).trim().to_string();
    Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/npm_verify.js"))
        .arg(registry)
        .arg(client.home.join("verify-cache"))
        .args(specs)
        .env("NODE_PATH", Path::new(&root).join("npm/node_modules"))
        .output()
        .expect("run node")
}

/// An empty npm project (a `package.json` naming nothing) in `dir`,
/// created.
pub fn empty_project(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("project dir");
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"p\",\"version\":\"1.0.0\"}",
    )
    .expect("package.json");
    dir.to_path_buf()
}
