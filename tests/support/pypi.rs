//! The real PyPI peers for tests: `pypiserver` (a simple-repository
//! server), `pip` and `uv`, from the Python environment `.ci/setup` makes
//! in `~/.cache/bulwark-tools/py` (or `$BULWARK_PY_DIR`).
//!
//! [`PypiServer`] runs pypiserver's own WSGI app on a port-0 socket
//! (`tests/support/run_pypiserver.py` prints the port); dropping it closes the
//! launcher's standard input, which ends it, and reaps it.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The Python environment's `bin` directory.
pub fn bin_dir() -> PathBuf {
    let root = std::env::var_os("BULWARK_PY_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/bulwark-tools/py"))
        })
        .expect("HOME or BULWARK_PY_DIR");
    let bin = root.join("bin");
    assert!(
        bin.join("python").exists() && bin.join("uv").exists(),
        "no Python environment with pypiserver, pip and uv at {} (run .ci/setup)",
        root.display()
    );
    bin
}

fn support(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// Writes a minimal wheel `NAME-VERSION-py3-none-any.whl` into `dir`.
pub fn make_wheel(dir: &Path, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    let status = Command::new(bin_dir().join("python"))
        .arg(support("mkwheel.py"))
        .arg(dir)
        .args([name, version])
        .args(requires)
        .status()
        .expect("run mkwheel.py");
    assert!(status.success(), "mkwheel.py failed");
    dir.join(format!("{name}-{version}-py3-none-any.whl"))
}

/// A running pypiserver.
pub struct PypiServer {
    child: Child,
    pub addr: SocketAddr,
}

impl PypiServer {
    /// Serves the packages in `dir`.
    pub fn start(dir: &Path) -> PypiServer {
        PypiServer::launch(dir, None, None, None)
    }

    /// Serves the packages in `dir`; while `status_file` exists, its text
    /// is every project's PEP 792 status on the pages.
    pub fn start_with_status_file(dir: &Path, status_file: &Path) -> PypiServer {
        PypiServer::launch(dir, None, None, Some(status_file))
    }

    /// Serves the packages in `dir` with pages that link every file on
    /// `files_base` (`http://host:port`): an index whose files live on a
    /// separate host.
    pub fn start_with_files_at(dir: &Path, files_base: &str) -> PypiServer {
        PypiServer::launch(dir, None, Some(files_base), None)
    }

    /// Serves the packages in `dir`, with the PEP 740 provenance objects
    /// in `provenance` (`<filename>.provenance`) through an Integrity API
    /// and `data-provenance` links (see `run_pypiserver.py`).
    pub fn start_with_provenance(dir: &Path, provenance: &Path) -> PypiServer {
        PypiServer::launch(dir, Some(provenance), None, None)
    }

    fn launch(
        dir: &Path,
        provenance: Option<&Path>,
        files_base: Option<&str>,
        status_file: Option<&Path>,
    ) -> PypiServer {
        let mut cmd = Command::new(bin_dir().join("python"));
        if let Some(base) = files_base {
            cmd.env("FILES_BASE", base);
        }
        if let Some(f) = status_file {
            cmd.env("STATUS_FILE", f);
        }
        let mut child = cmd
            .arg(support("run_pypiserver.py"))
            .arg(dir)
            .arg(provenance.unwrap_or(Path::new("")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pypiserver");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read pypiserver's port");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pypiserver did not start: {line:?}");
        };
        PypiServer { child, addr }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its simple index URL.
    pub fn index_url(&self) -> String {
        format!("http://{}/simple", self.addr)
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `python -m pip <subcommand>` of the environment with no cache, no
/// version check and no configuration of the user's, `home` as its home;
/// the caller adds the rest.
pub fn pip(home: &Path, subcommand: &str) -> Command {
    let mut c = Command::new(bin_dir().join("python"));
    c.args(["-m", "pip", subcommand, "--no-cache-dir"])
        .args(["--disable-pip-version-check", "--isolated"])
        .env("HOME", home)
        .env("PIP_CONFIG_FILE", "/dev/null");
    c
}

/// `uv pip <subcommand>` for the environment's Python with no cache and no
/// configuration of the user's, `home` as its home; the caller adds the
/// rest.
pub fn uv_pip(home: &Path, subcommand: &str) -> Command {
    let mut c = Command::new(bin_dir().join("uv"));
    c.args(["pip", subcommand, "--no-config"])
        .arg("--python")
        .arg(bin_dir().join("python"))
        .env("HOME", home)
        .env("UV_CACHE_DIR", home.join("uv-cache"));
    c
}

/// Two projects in `dir/packages`, alpha 1.0 needing beta >= 2 and beta
/// 2.0, served by a new pypiserver; returns it and beta's wheel.
pub fn alpha_needs_beta(dir: &Path) -> (PypiServer, PathBuf) {
    let pkgs = dir.join("packages");
    std::fs::create_dir_all(&pkgs).expect("packages dir");
    make_wheel(&pkgs, "alpha", "1.0", &["beta>=2"]);
    let beta = make_wheel(&pkgs, "beta", "2.0", &[]);
    (PypiServer::start(&pkgs), beta)
}
