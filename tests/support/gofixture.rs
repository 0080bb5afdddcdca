//! The Go test upstream: builds `tests/gofixture/sumdbfixture` (a GOPROXY and
//! a checksum database made from Go's own golang.org/x/mod code) once, starts
//! it on a loopback port, and runs the real `go` command against it.
//!
//! Used by the Go-module integration tests through `mod support;`. Needs the
//! Debian packages `golang-go` and `golang-golang-x-mod-dev`.
//!
//! The binary is cached under the Cargo target dir, keyed by the SHA-256 of
//! the fixture's source, so it is compiled once however many test processes
//! ask for it. A started fixture is killed and reaped when its [`GoFixture`]
//! is dropped; it also exits by itself when its standard input closes, so a
//! test process that dies leaves nothing behind.
#![allow(dead_code)] // each test binary uses a different part

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

/// Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod.
pub const DEBIAN_GOPATH: &str = "/usr/share/gocode";

const FIXTURE_SOURCE: &str = include_str!("../gofixture/sumdbfixture/main.go");

/// Which tiles `-tamper-tile` alters.
#[derive(Clone, Copy, Debug)]
pub enum TileKind {
    Hash,
    Data,
}

/// How to start the fixture. `modules` and `key` are required; everything
/// else is a way to misbehave on purpose.
#[derive(Clone, Debug, Default)]
pub struct FixtureOptions {
    /// Module sources: `<modules>/<module path>@<version>/go.mod` and files.
    pub modules: PathBuf,
    /// Signer key file (created with a fresh key if missing). Reuse it to
    /// restart the same database.
    pub key: PathBuf,
    /// Address to listen on (default `127.0.0.1:0`); pass a previous
    /// fixture's `addr` to restart it in place.
    pub listen: Option<SocketAddr>,
    /// Database name for a newly created key (default `sumdb.bulwark.test`).
    pub name: Option<String>,
    /// Serve the tree of only this many records (an older tree).
    pub tree_size: Option<u64>,
    /// Sign trees with another key of the same name.
    pub other_key: bool,
    pub tamper_tile: Option<TileKind>,
    /// `module@version`s whose true hash is logged but an altered zip served.
    pub serve_altered_zip: Vec<String>,
    /// `module@version`s whose true hash is logged but an altered go.mod served.
    pub serve_altered_mod: Vec<String>,
    /// `module@version`s whose altered content is logged (and served).
    pub log_altered: Vec<String>,
    /// `module@version`s whose true zip is logged but served behind a
    /// prefix of other local entries (offsets unchanged).
    pub serve_prefixed_zip: Vec<String>,
    /// Answer every GOPROXY route with this status (the usual body for a
    /// 2xx/3xx, "upstream's own body" for a 4xx/5xx).
    pub proxy_status: Option<u16>,
    /// The same for the checksum database's `/latest`, `/lookup`, `/tile`.
    pub sumdb_status: Option<u16>,
    /// Serve a `list`, `.info` and `@latest` of the wrong shape.
    pub bad_metadata: bool,
    /// `/lookup` answers carry the signed tree of the first N records.
    pub lookup_tree_size: Option<u64>,
    /// With `lookup_tree_size`: that tree's hash is forged (same key).
    pub lookup_tree_forged: bool,
    /// Answer GOPROXY requests for unknown module versions with this
    /// status instead of 404.
    pub unknown_status: Option<u16>,
    /// A file whose lines (once it exists) are appended to every signed
    /// tree note: cosignatures a test made.
    pub extra_signatures: Option<PathBuf>,
}

/// A running fixture.
pub struct GoFixture {
    child: Child,
    // Held open: the fixture exits when it closes.
    _stdin: ChildStdin,
    pub addr: SocketAddr,
    /// The verifier key of the database (`name+hash+key`).
    pub vkey: String,
    /// The database name (`/sumdb/<name>/...`).
    pub name: String,
}

impl GoFixture {
    /// Builds (once) and starts the fixture; panics with the reason if it
    /// cannot start.
    pub fn start(opts: &FixtureOptions) -> GoFixture {
        let mut cmd = Command::new(fixture_binary());
        cmd.arg("-modules")
            .arg(&opts.modules)
            .arg("-key")
            .arg(&opts.key);
        if let Some(addr) = opts.listen {
            cmd.arg("-listen").arg(addr.to_string());
        }
        if let Some(name) = &opts.name {
            cmd.arg("-name").arg(name);
        }
        if let Some(n) = opts.tree_size {
            cmd.arg("-tree-size").arg(n.to_string());
        }
        if opts.other_key {
            cmd.arg("-other-key");
        }
        if let Some(kind) = opts.tamper_tile {
            cmd.arg("-tamper-tile").arg(match kind {
                TileKind::Hash => "hash",
                TileKind::Data => "data",
            });
        }
        if let Some(code) = opts.proxy_status {
            cmd.arg("-proxy-status").arg(code.to_string());
        }
        if let Some(code) = opts.sumdb_status {
            cmd.arg("-sumdb-status").arg(code.to_string());
        }
        if opts.bad_metadata {
            cmd.arg("-bad-metadata");
        }
        if let Some(n) = opts.lookup_tree_size {
            cmd.arg("-lookup-tree-size").arg(n.to_string());
        }
        if opts.lookup_tree_forged {
            cmd.arg("-lookup-tree-forged");
        }
        if let Some(code) = opts.unknown_status {
            cmd.arg("-unknown-status").arg(code.to_string());
        }
        if let Some(f) = &opts.extra_signatures {
            cmd.arg("-extra-signatures").arg(f);
        }
        for (flag, list) in [
            ("-serve-altered-zip", &opts.serve_altered_zip),
            ("-serve-altered-mod", &opts.serve_altered_mod),
            ("-log-altered", &opts.log_altered),
            ("-serve-prefixed-zip", &opts.serve_prefixed_zip),
        ] {
            if !list.is_empty() {
                cmd.arg(flag).arg(list.join(","));
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sumdbfixture");
        let stdin = child.stdin.take().expect("fixture stdin");
        let stdout = child.stdout.take().expect("fixture stdout");
        let (mut addr, mut vkey, mut name) = (None, None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read fixture stdout");
            match line.split_once(' ') {
                Some(("addr", a)) => addr = Some(a.parse().expect("fixture address")),
                Some(("vkey", k)) => vkey = Some(k.to_string()),
                Some(("name", n)) => name = Some(n.to_string()),
                _ if line == "ready" => break,
                _ => panic!("unexpected fixture output {line:?}"),
            }
        }
        let started = (addr, vkey, name);
        let (Some(addr), Some(vkey), Some(name)) = started else {
            let _ = child.kill();
            let status = child.wait();
            panic!("sumdbfixture exited before it was ready: {status:?}");
        };
        GoFixture {
            child,
            _stdin: stdin,
            addr,
            vkey,
            name,
        }
    }

    /// The GOPROXY URL.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The checksum database's base URL (`/latest`, `/lookup/...`, `/tile/...`
    /// are below it).
    pub fn sumdb_url(&self) -> String {
        format!("http://{}/sumdb/{}", self.addr, self.name)
    }

    /// `GOSUMDB` naming this database and its explicit URL.
    pub fn gosumdb(&self) -> String {
        format!("{} {}", self.vkey, self.sumdb_url())
    }

    /// GET `path` (starting with `/`) from the fixture; returns status and body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        http_get(self.addr, path)
    }
}

impl Drop for GoFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compiled fixture, built on first use and cached under the target dir.
pub fn fixture_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_fixture)
}

fn build_fixture() -> PathBuf {
    let hash = hex::encode(Sha256::digest(FIXTURE_SOURCE.as_bytes()));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gofixture");
    let bin = dir.join(format!("sumdbfixture-{}", &hash[..16]));
    if bin.is_file() {
        return bin;
    }
    std::fs::create_dir_all(&dir).expect("create fixture build dir");
    // Build under a unique name, then rename: concurrent test processes may
    // build at once, and none may run a half-written binary.
    let tmp = tempfile::Builder::new()
        .prefix("sumdbfixture-build")
        .tempdir_in(&dir)
        .expect("fixture build temp dir");
    let out = tmp.path().join("sumdbfixture");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("go")
        .current_dir(manifest)
        .args(["build", "-o"])
        .arg(&out)
        .arg("./tests/gofixture/sumdbfixture")
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GOCACHE", dir.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOENV", "off")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("run `go build` (is Debian's golang-go installed?)");
    assert!(
        status.success(),
        "building the Go fixture failed ({status}); install golang-go and golang-golang-x-mod-dev"
    );
    std::fs::rename(&out, &bin).expect("install fixture binary");
    bin
}

/// Writes module `path@version` with `files` (name, content) under `root`,
/// the layout the fixture reads.
pub fn write_module(root: &Path, path: &str, version: &str, files: &[(&str, &str)]) {
    let dir = root.join(format!("{path}@{version}"));
    for (name, content) in files {
        let file = dir.join(name);
        std::fs::create_dir_all(file.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&file, content).expect("write module file");
    }
}

/// A `go` command isolated in `home`: its own GOPATH, module cache, build
/// cache and no user configuration, talking only to `proxy` and `gosumdb`.
pub fn go_command(home: &Path, proxy: &str, gosumdb: &str) -> Command {
    let mut cmd = Command::new("go");
    cmd.env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env("GOMODCACHE", home.join("gopath/pkg/mod"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOENV", "off")
        .env("GOWORK", "off")
        .env("GO111MODULE", "on")
        // The module cache is read-only by default; -modcacherw lets the
        // temporary directory be removed.
        .env("GOFLAGS", "-mod=mod -modcacherw")
        .env("GOPROXY", proxy)
        .env("GOSUMDB", gosumdb)
        // Go 1.21+ would otherwise try to download a newer toolchain.
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    for var in [
        "GONOSUMDB",
        "GONOSUMCHECK",
        "GOPRIVATE",
        "GONOPROXY",
        "GOINSECURE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A minimal HTTP/1.0 GET over loopback: HTTP/1.0 makes Go's server send the
/// body unchunked and close the connection after it.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to fixture");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a header");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = raw[split + 4..].to_vec();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "fixture sent a chunked body; http_get does not decode it"
    );
    (status, body)
}

/// The modules of the end-to-end Go tests under `mods`: example.com/greet
/// v1.0.0, and example.com/Hello v1.1.0, which requires it.
pub fn write_hello_world(mods: &Path) {
    write_module(
        mods,
        "example.com/greet",
        "v1.0.0",
        &[
            ("go.mod", "module example.com/greet\n\ngo 1.19\n"),
            (
                "greet.go",
                "package greet\n\nfunc Hello() string { return \"hello\" }\n",
            ),
        ],
    );
    write_module(
        mods,
        "example.com/Hello",
        "v1.1.0",
        &[
            (
                "go.mod",
                "module example.com/Hello\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n",
            ),
            (
                "hello.go",
                "package hello\n\nimport \"example.com/greet\"\n\nfunc Say() string { return greet.Hello() + \", world\" }\n",
            ),
        ],
    );
}

/// An app using example.com/Hello v1.1.0 in `app` (go.mod and main.go, no
/// go.sum).
pub fn write_hello_app(app: &Path) {
    std::fs::create_dir_all(app).expect("mkdir app");
    std::fs::write(
        app.join("go.mod"),
        "module example.com/app\n\ngo 1.19\n\nrequire example.com/Hello v1.1.0\n",
    )
    .expect("write go.mod");
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\thello \"example.com/Hello\"\n)\n\nfunc main() { fmt.Println(hello.Say()) }\n",
    )
    .expect("write main.go");
}
