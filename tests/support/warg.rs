//! The Warg test peers: the real `warg-server` and `warg` (warg-cli) 0.10
//! binaries, started on loopback with throw-away state.
//!
//! Used by the Warg integration tests through `mod support;`. How the peers
//! are driven, and what they answer, is written down in `tests/support/WARG.md`.
//!
//! - [`WargServer`] runs `warg-server` with memory storage, an operator key
//!   generated here (so the test knows the public key bulwark pins), one
//!   namespace and a content directory, on `127.0.0.1:0`; it reads the bound
//!   address from the server's own `listening on ...` log line. Restarting
//!   with the same key and fresh memory forks the history; restarting with
//!   another key changes the operator.
//! - [`WargClient`] runs the `warg` CLI with its own HOME, config, cache and a
//!   flat-file keyring (no OS keyring, no prompts).
//!
//! The binaries are found in `$BULWARK_WARG_BIN_DIR`,
//! `~/.cache/bulwark-tools/bin` (where `.ci/setup` installs them) or
//! `~/.cargo/bin`.
//!
//! A started server runs under a small `sh` wrapper that kills it when the
//! wrapper's standard input closes: [`WargServer`]'s `Drop` closes it and
//! waits, and a test process that dies without unwinding closes it too, so no
//! server outlives its test.
#![allow(dead_code)] // each test binary uses a different part

use base64::Engine as _;
use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{mpsc, Arc};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// The directory holding `warg-server` and `warg`.
pub fn bin_dir() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("BULWARK_WARG_BIN_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HOME") {
        // Where `.ci/setup` installs them by default.
        candidates.push(Path::new(&home).join(".cache/bulwark-tools/bin"));
        candidates.push(Path::new(&home).join(".cargo/bin"));
    }
    for dir in &candidates {
        if dir.join("warg-server").is_file() && dir.join("warg").is_file() {
            return dir.clone();
        }
    }
    panic!(
        "warg-server and warg not found in {candidates:?}; run `bash .ci/setup` \
         (it installs them into ~/.cache/bulwark-tools/bin), or install them with \
         `cargo install --locked --root DIR warg-server@0.10.0 warg-cli@0.10.0` \
         and set BULWARK_WARG_BIN_DIR=DIR/bin"
    );
}

/// A Warg operator (or package signing) key: ECDSA P-256, in the text forms
/// the reference crates use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WargKey {
    /// `ecdsa-p256:<base64 of the 32-byte scalar>` (what `warg-server
    /// --operator-key-file` and the flat-file keyring hold).
    pub private: String,
    /// `ecdsa-p256:<base64 of the SEC1 compressed point>`: what bulwark pins.
    pub public: String,
    /// `sha256:<hex of SHA-256(public)>`: the `keyId` of envelopes and
    /// checkpoints signed with it.
    pub key_id: String,
}

impl WargKey {
    /// A fresh random key.
    pub fn generate() -> WargKey {
        WargKey::from_signing_key(&SigningKey::random(&mut rand_core::OsRng))
    }

    /// Parses `ecdsa-p256:<base64>` private key text.
    pub fn from_private(text: &str) -> WargKey {
        let b64 = text
            .strip_prefix("ecdsa-p256:")
            .expect("private key starts with ecdsa-p256:");
        let bytes = B64.decode(b64).expect("private key is base64");
        WargKey::from_signing_key(&SigningKey::from_slice(&bytes).expect("P-256 scalar"))
    }

    fn from_signing_key(key: &SigningKey) -> WargKey {
        let private = format!("ecdsa-p256:{}", B64.encode(key.to_bytes()));
        let point = VerifyingKey::from(key).to_encoded_point(true);
        let public = format!("ecdsa-p256:{}", B64.encode(point.as_bytes()));
        let key_id = format!("sha256:{}", hex::encode(Sha256::digest(public.as_bytes())));
        WargKey {
            private,
            public,
            key_id,
        }
    }
}

/// How to start a [`WargServer`]. The default is a fresh registry owning
/// namespace `acme`, with a new operator key, on a new port.
#[derive(Clone, Debug)]
pub struct WargServerOptions {
    /// The namespace the operator log defines (`--namespace`); packages may
    /// only be published in it. `None` defines none.
    pub namespace: Option<String>,
    /// The operator key; `None` generates one.
    pub operator_key: Option<WargKey>,
    /// Address to listen on (default `127.0.0.1:0`); pass a previous server's
    /// `addr` to restart it in place.
    pub listen: Option<SocketAddr>,
    /// Content directory (`--content-dir`: uploads land in `<dir>/files`);
    /// `None` makes a fresh one. Pass a stopped server's directory to keep
    /// its content files.
    pub content_dir: Option<PathBuf>,
    /// `--content-base-url`: where `contentSources` point (default the
    /// server's own address).
    pub content_base_url: Option<String>,
}

impl Default for WargServerOptions {
    fn default() -> Self {
        WargServerOptions {
            namespace: Some("acme".to_string()),
            operator_key: None,
            listen: None,
            content_dir: None,
            content_base_url: None,
        }
    }
}

impl WargServerOptions {
    /// A fresh registry owning `namespace`.
    pub fn owning(namespace: &str) -> WargServerOptions {
        WargServerOptions {
            namespace: Some(namespace.to_string()),
            ..WargServerOptions::default()
        }
    }
}

/// Runs `warg-server` (`$2...`) in the background with stdin from
/// /dev/null, stdout to the pipe the test reads, stderr to the file `$1`;
/// gives up its own stdout and stderr (so the pipe reaches EOF when the
/// server exits and no job notices are printed), and kills the server
/// once its own stdin closes.
const WRAPPER: &str = r#"err=$1; shift; "$@" </dev/null 2>"$err" & pid=$!; exec >/dev/null 2>&1; read -r _ || true; kill -9 "$pid"; wait "$pid"; exit 0"#;

/// A running `warg-server` with memory storage.
pub struct WargServer {
    wrapper: Child,
    // Held open: the wrapper kills the server when it closes.
    stdin: Option<ChildStdin>,
    /// The bound loopback address.
    pub addr: SocketAddr,
    /// The operator key the server signs with.
    pub operator_key: WargKey,
    /// The namespace it defines.
    pub namespace: Option<String>,
    content_base_url: Option<String>,
    // Shared with a restarted server that keeps the content.
    content: Arc<ContentDir>,
    log_path: PathBuf,
    stderr_path: PathBuf,
    // Key file and logs.
    _dir: tempfile::TempDir,
}

/// A content directory: one the test gave, or a temporary one.
#[derive(Debug)]
enum ContentDir {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl ContentDir {
    fn path(&self) -> &Path {
        match self {
            ContentDir::Given(p) => p,
            ContentDir::Temp(t) => t.path(),
        }
    }
}

impl WargServer {
    /// Starts a server and returns once it accepts connections (the listener
    /// is bound and the operator log initialised before the server logs
    /// `listening on`). Panics with the server's log if it cannot start.
    pub fn start(opts: &WargServerOptions) -> WargServer {
        WargServer::start_inner(opts, None)
    }

    fn start_inner(opts: &WargServerOptions, content: Option<Arc<ContentDir>>) -> WargServer {
        let dir = tempfile::Builder::new()
            .prefix("warg-server")
            .tempdir()
            .expect("server temp dir");
        let key = opts.operator_key.clone().unwrap_or_else(WargKey::generate);
        let key_file = dir.path().join("operator.key");
        // No trailing newline: the server base64-decodes the file's text as is.
        std::fs::write(&key_file, &key.private).expect("write operator key");
        let content = content.unwrap_or_else(|| {
            Arc::new(match &opts.content_dir {
                Some(given) => ContentDir::Given(given.clone()),
                None => ContentDir::Temp(
                    tempfile::Builder::new()
                        .prefix("warg-content")
                        .tempdir()
                        .expect("content temp dir"),
                ),
            })
        });
        let content_dir = content.path().to_path_buf();
        let log_path = dir.path().join("server.log");
        let stderr_path = dir.path().join("server.stderr");
        let listen = opts
            .listen
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("loopback address"));

        let mut args: Vec<String> = vec![
            bin_dir().join("warg-server").display().to_string(),
            "--listen".into(),
            listen.to_string(),
            "--content-dir".into(),
            content_dir.display().to_string(),
            "--data-store".into(),
            "memory".into(),
            "--operator-key-file".into(),
            key_file.display().to_string(),
        ];
        if let Some(ns) = &opts.namespace {
            args.extend(["--namespace".into(), ns.clone()]);
        }
        if let Some(url) = &opts.content_base_url {
            args.extend(["--content-base-url".into(), url.clone()]);
        }

        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("warg-server-wrapper")
            .arg(&stderr_path)
            .args(&args)
            // The server's configuration comes from flags only.
            .env_remove("WARG_OPERATOR_KEY")
            .env_remove("WARG_NAMESPACE")
            .env_remove("WARG_CONTENT_BASE_URL")
            .env_remove("WARG_AUTHORIZED_KEYS_FILE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh for warg-server");
        let stdin = wrapper.stdin.take().expect("wrapper stdin");
        let stdout = wrapper.stdout.take().expect("wrapper stdout");

        // Copy the server's log to a file for the whole run (the server logs
        // every request; an unread pipe would block it) and report the bound
        // address, or EOF if the server died first.
        let (tx, rx) = mpsc::channel();
        let mut log = std::fs::File::create(&log_path).expect("create server log");
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut reader = BufReader::new(stdout);
            let mut raw = Vec::new();
            // Byte lines, so a non-UTF-8 line cannot stop the draining.
            while matches!(reader.read_until(b'\n', &mut raw), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&raw).trim_end().to_string();
                raw.clear();
                let _ = writeln!(log, "{line}");
                if let Some(addr) = listening_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Some(addr));
                    }
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send(None);
            }
        });
        match rx.recv() {
            Ok(Some(addr)) => WargServer {
                wrapper,
                stdin: Some(stdin),
                addr,
                operator_key: key,
                namespace: opts.namespace.clone(),
                content_base_url: opts.content_base_url.clone(),
                content,
                log_path,
                stderr_path,
                _dir: dir,
            },
            _ => {
                drop(stdin);
                let _ = wrapper.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("warg-server exited before listening; its log:\n{log}\nstderr:\n{err}");
            }
        }
    }

    /// The registry URL clients are configured with (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The content directory given to the server.
    pub fn content_dir(&self) -> &Path {
        self.content.path()
    }

    /// Where the server keeps the content with `digest` (`sha256:<hex>`):
    /// `<content dir>/files/sha256-<hex>`, served at `/content/sha256-<hex>`.
    pub fn content_file(&self, digest: &str) -> PathBuf {
        self.content_dir()
            .join("files")
            .join(digest.replace(':', "-"))
    }

    /// Everything the server logged so far (its standard output: one line
    /// per request), then its standard error (panics of request handlers).
    pub fn log(&self) -> String {
        let out = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!("{out}{err}")
    }

    /// Whether a request handler of the server panicked (the reference
    /// server does on some unknown fetch tokens; the connection is dropped
    /// without a response).
    pub fn handler_panicked(&self) -> bool {
        std::fs::read_to_string(&self.stderr_path)
            .unwrap_or_default()
            .contains("panicked at")
    }

    /// Kills the server and waits until it is gone (its port is free).
    pub fn stop(mut self) {
        self.kill();
    }

    /// Kills this server and starts another on the same address with the
    /// same operator key and fresh memory: the new operator log has a new
    /// init record (new timestamp), so its history forks from this one.
    /// `keep_content` keeps the content files.
    pub fn restart_same_key(self, keep_content: bool) -> WargServer {
        let key = self.operator_key.clone();
        self.restart_with(Some(key), keep_content)
    }

    /// Kills this server and starts another on the same address with a new
    /// operator key.
    pub fn restart_new_key(self, keep_content: bool) -> WargServer {
        self.restart_with(Some(WargKey::generate()), keep_content)
    }

    fn restart_with(mut self, key: Option<WargKey>, keep_content: bool) -> WargServer {
        self.kill();
        let opts = WargServerOptions {
            namespace: self.namespace.clone(),
            operator_key: key,
            listen: Some(self.addr),
            content_dir: None,
            content_base_url: self.content_base_url.clone(),
        };
        let content = if keep_content {
            Some(self.content.clone())
        } else {
            None
        };
        WargServer::start_inner(&opts, content)
    }

    fn kill(&mut self) {
        if let Some(stdin) = self.stdin.take() {
            drop(stdin);
            let _ = self.wrapper.wait();
        }
    }

    /// GET `path` (starting with `/`).
    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, &[], None)
    }

    /// POST `body` as `application/json` to `path`.
    pub fn post_json(&self, path: &str, body: &str) -> HttpResponse {
        http(
            self.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    }
}

impl Drop for WargServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address in `warg-server`'s `listening on 127.0.0.1:PORT` log line
/// (the line may carry ANSI colour codes before the message).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on ")?;
    rest.trim().parse().ok()
}

/// A response read by [`http`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A minimal HTTP/1.0 request over loopback: HTTP/1.0 makes the server send
/// the body unchunked and close the connection after it.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to server");
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send request head");
    if let Some(body) = body {
        s.write_all(body).expect("send request body");
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a header");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "server sent a chunked body; http() does not decode it"
    );
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The `warg` CLI in a home of its own: config in
/// `<home>/config/warg/config.json`, a flat-file keyring in
/// `<home>/config/warg/keyring/`, registries, content and namespace map under
/// `<home>/cache/warg/`. Federation hints are followed without a prompt and
/// packages are initialised on first release without a prompt.
pub struct WargClient {
    home: tempfile::TempDir,
    /// The home registry URL.
    pub registry: String,
    /// The package signing key (`warg key new` made it, or the one given).
    pub key: WargKey,
}

/// The outcome of one `warg` run.
#[derive(Debug)]
pub struct WargRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for WargRun {
    fn from(out: Output) -> WargRun {
        WargRun {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl WargClient {
    /// A client whose home registry is `registry` (`http://127.0.0.1:PORT`;
    /// the CLI allows plain HTTP to loopback only), with a new signing key.
    /// Runs `warg config` (which fetches the registry's
    /// `/.well-known/wasm-pkg/registry.json`, so the registry must be up)
    /// and `warg key new`.
    pub fn new(registry: &str) -> WargClient {
        let home = tempfile::Builder::new()
            .prefix("warg-client")
            .tempdir()
            .expect("client home");
        std::fs::create_dir_all(home.path().join("work")).expect("client work dir");
        let mut client = WargClient {
            home,
            registry: registry.to_string(),
            key: WargKey {
                private: String::new(),
                public: String::new(),
                key_id: String::new(),
            },
        };
        client.run_ok(&[
            "config",
            "--registry",
            registry,
            "--keyring-backend",
            "flat-file",
        ]);
        let out = client.run_ok(&["key", "new"]);
        let field = |name: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("`warg key new` printed no {name:?}: {out:?}"))
        };
        let (key_id, public) = (field("Key ID:"), field("Public Key:"));
        let keyring = client.keyring_file();
        let private = std::fs::read_to_string(&keyring)
            .unwrap_or_else(|e| panic!("read flat-file keyring {keyring:?}: {e}"));
        client.key = WargKey::from_private(private.trim());
        assert_eq!(client.key.public, public, "derived public key");
        assert_eq!(client.key.key_id, key_id, "derived key ID");
        client
    }

    /// A client like [`WargClient::new`] that signs with `key` (written into
    /// the flat-file keyring: `warg key set` only reads a terminal).
    pub fn with_key(registry: &str, key: &WargKey) -> WargClient {
        let mut client = WargClient::new(registry);
        std::fs::write(client.keyring_file(), &key.private).expect("write keyring entry");
        client.key = key.clone();
        client
    }

    /// The client's HOME (config, keyring, caches below it).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The flat-file keyring entry of the default signing key.
    pub fn keyring_file(&self) -> PathBuf {
        self.home
            .path()
            .join("config/warg/keyring/service=warg-signing-key&user=default")
    }

    /// The client's config file.
    pub fn config_file(&self) -> PathBuf {
        self.home.path().join("config/warg/config.json")
    }

    /// A `warg` command with this client's environment (HOME, XDG dirs, no
    /// proxies, working directory inside the home so no stray
    /// `warg-config.json` is found).
    pub fn command(&self, args: &[&str]) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new(bin_dir().join("warg"));
        cmd.args(args)
            .current_dir(home.join("work"))
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs `warg ARGS` and returns what happened.
    pub fn run(&self, args: &[&str]) -> WargRun {
        self.command(args).output().expect("run warg").into()
    }

    /// Runs `warg ARGS`; panics with its output if it fails.
    pub fn run_ok(&self, args: &[&str]) -> WargRun {
        let run = self.run(args);
        assert!(
            run.success,
            "`warg {}` failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run
    }

    /// `warg publish release --name NAME --version VERSION FILE`: initialises
    /// the package if it has no log yet, uploads the content and waits until
    /// the record is in a checkpoint (the server checkpoints every 5 s).
    pub fn publish(&self, name: &str, version: &str, content: &[u8]) -> WargRun {
        let file = self
            .home
            .path()
            .join("work")
            .join(format!("{}-{version}.wasm", name.replace(':', "-")));
        std::fs::write(&file, content).expect("write content to publish");
        let file = file.display().to_string();
        self.run(&[
            "publish",
            "release",
            "--name",
            name,
            "--version",
            version,
            &file,
        ])
    }

    /// `warg download NAME [--version V] -o FILE`, returning the downloaded
    /// bytes, or the failed run.
    pub fn download(&self, name: &str, version: Option<&str>) -> Result<Vec<u8>, WargRun> {
        let out = self
            .home
            .path()
            .join("work")
            .join(format!("download-{}.wasm", name.replace(':', "-")));
        let _ = std::fs::remove_file(&out);
        let out_arg = out.display().to_string();
        let mut args = vec!["download", name, "-o", &out_arg];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        let run = self.run(&args);
        if !run.success {
            return Err(run);
        }
        Ok(std::fs::read(&out).expect("read downloaded file"))
    }

    /// `warg info [NAME]`.
    pub fn info(&self, name: Option<&str>) -> WargRun {
        let mut args = vec!["info"];
        args.extend(name);
        self.run(&args)
    }

    /// `warg update`: brings every package log in client storage to the
    /// latest checkpoint (consistency proof from the last one it saw).
    pub fn update(&self) -> WargRun {
        self.run(&["update"])
    }

    /// `warg clear`: empties the content cache, so the next download
    /// fetches the bytes again.
    pub fn clear_content(&self) -> WargRun {
        self.run(&["clear"])
    }

    /// `warg reset`: forgets every log, checkpoint and namespace mapping.
    pub fn reset(&self) -> WargRun {
        self.run(&["reset"])
    }
}

/// A valid WebAssembly component of exactly `size` bytes (at least 27): the
/// component preamble `\0asm\x0d\x00\x01\x00` followed by one custom section
/// named `bulwark-test` whose payload is filled from `seed` (different seeds
/// give different digests).
pub fn component(size: usize, seed: u64) -> Vec<u8> {
    const PREAMBLE: &[u8] = b"\0asm\x0d\x00\x01\x00";
    const NAME: &[u8] = b"bulwark-test";
    let name_field = leb128_len(NAME.len() as u64) + NAME.len();
    // size = preamble + section id + section length (LEB128 padded to its
    // full 5 bytes, which the format allows, so every size is reachable) +
    // the section.
    let section_len = size
        .checked_sub(PREAMBLE.len() + 1 + 5)
        .filter(|len| *len >= name_field && *len <= u32::MAX as usize)
        .unwrap_or_else(|| panic!("no component of {size} bytes"));
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(PREAMBLE);
    out.push(0); // custom section
    let mut len = section_len as u64;
    for i in 0..5 {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        out.push(if i < 4 { byte | 0x80 } else { byte });
    }
    leb128(&mut out, NAME.len() as u64);
    out.extend_from_slice(NAME);
    // xorshift64*: cheap, deterministic filler.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let n = (size - out.len()).min(8);
        out.extend_from_slice(&v[..n]);
    }
    assert_eq!(out.len(), size);
    out
}

fn leb128_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `sha256:<hex>`: how Warg names content.
pub fn content_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
