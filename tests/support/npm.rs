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
    let out = npm.run(pkg, &registry.url(), "publish-cache", &["publish"]);
    assert_success("npm publish", &out);
}
