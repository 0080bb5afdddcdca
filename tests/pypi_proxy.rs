//! PyPI through bulwark, end to end, with the real `pip` and `uv` against
//! the real `pypiserver` over loopback (`attestations = "off"`: files are
//! checked against the sha256 of the upstream's index page).
//!
//! - pip and uv install a project and its dependency through bulwark, each
//!   with an empty cache; the pages bulwark writes point every file at
//!   itself, in the format the client asked for;
//! - what was verified is served after a restart with the upstream gone;
//! - a file whose bytes differ from the index's sha256 is refused (check
//!   `digest`) and nothing is stored;
//! - an index that lists a file twice with two digests is refused.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::http::{get, send};
use support::pypi::{alpha_needs_beta, make_wheel, pip, uv_pip, PypiServer};
use support::serve::Running as Bulwark;

const UPSTREAM: &str = "py";

fn start(config: &Path) -> Bulwark {
    support::serve::start(config, "bulwark=info")
}

fn write_config(dir: &Path, index_url: &str) -> PathBuf {
    let file = dir.join("bulwark.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"pypi\"\nurl = \"{index_url}\"\n\
             namespaces = []\ndefault = true\nattestations = \"off\"\n",
            dir.join("data").display()
        ),
    )
    .expect("write config");
    file
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pip install` into `target` through bulwark, with no cache and no
/// configuration of the user's.
fn pip_install(home: &Path, index: &str, target: &Path, what: &str) -> Output {
    pip(home, "install")
        .args(["--index-url", index, "--target"])
        .arg(target)
        .arg(what)
        .output()
        .expect("run pip")
}

fn uv_install(home: &Path, index: &str, target: &Path, what: &str) -> Output {
    uv_pip(home, "install")
        .args(["--no-cache", "--index-url", index, "--target"])
        .arg(target)
        .arg(what)
        .output()
        .expect("run uv")
}

#[test]
fn pip_and_uv_install_through_bulwark_and_verified_files_outlive_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, beta) = alpha_needs_beta(dir.path());
    let config = write_config(dir.path(), &upstream.index_url());
    let b = start(&config);
    let index = format!("http://{}/pypi/simple/", b.0.addr);

    // A page in each format, every file URL pointing at bulwark.
    let json = send(
        b.0.addr,
        "GET",
        "/pypi/simple/Alpha/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    assert_eq!(json.status, 200, "{}", String::from_utf8_lossy(&json.body));
    assert_eq!(
        json.header("content-type").as_deref(),
        Some("application/vnd.pypi.simple.v1+json")
    );
    let j = json.json();
    assert_eq!(j["name"], "alpha");
    assert_eq!(
        j["files"][0]["url"],
        "/pypi/files/alpha/alpha-1.0-py3-none-any.whl"
    );
    assert_eq!(
        j["files"][0]["hashes"]["sha256"].as_str().unwrap().len(),
        64
    );
    let html = get(b.0.addr, "/pypi/simple/beta/");
    assert_eq!(html.status, 200);
    let text = String::from_utf8_lossy(&html.body);
    assert!(
        text.contains("href=\"/pypi/files/beta/beta-2.0-py3-none-any.whl#sha256="),
        "{text}"
    );

    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let pip_target = dir.path().join("pip-target");
    assert_success(
        "pip install",
        &pip_install(&home, &index, &pip_target, "alpha"),
    );
    assert!(pip_target.join("alpha/__init__.py").exists());
    assert!(pip_target.join("beta/__init__.py").exists());
    let uv_target = dir.path().join("uv-target");
    assert_success(
        "uv pip install",
        &uv_install(&home, &index, &uv_target, "alpha"),
    );
    assert!(uv_target.join("beta/__init__.py").exists());

    // The upstream goes away and bulwark restarts: verified files are
    // still served, with their digest as ETag; a file never fetched is not.
    drop(upstream);
    drop(b);
    let b = start(&config);
    let r = get(b.0.addr, "/pypi/files/beta/beta-2.0-py3-none-any.whl");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(&beta).unwrap());
    assert!(r.header("etag").is_some_and(|e| e.starts_with("\"sha256:")));
    let r = get(b.0.addr, "/pypi/files/gamma/gamma-1.0-py3-none-any.whl");
    assert_ne!(r.status, 200);
}

#[test]
fn a_file_whose_bytes_differ_from_the_index_sha256_is_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    let wheel = make_wheel(&pkgs, "alpha", "1.0", &[]);
    let upstream = PypiServer::start(&pkgs);
    let b = start(&write_config(dir.path(), &upstream.index_url()));
    // bulwark reads the page (and keeps it briefly)...
    assert_eq!(get(b.0.addr, "/pypi/simple/alpha/").status, 200);
    // ...then the upstream serves other bytes under that name.
    let mut bytes = std::fs::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wheel, &bytes).unwrap();
    let before = support::serve::stored_objects(&dir.path().join("data"));
    let r = get(b.0.addr, "/pypi/files/alpha/alpha-1.0-py3-none-any.whl");
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["upstream"], UPSTREAM, "{j}");
    assert_eq!(j["check"], "digest", "{j}");
    assert_ne!(j["expected"], j["seen"], "{j}");
    assert_eq!(
        support::serve::stored_objects(&dir.path().join("data")),
        before
    );
}

#[test]
fn a_wheels_core_metadata_is_read_out_of_the_verified_wheel_and_outlives_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    make_wheel(&pkgs, "delta", "2.0", &["alpha>=1"]);
    let upstream = PypiServer::start(&pkgs);
    let b = start(&write_config(dir.path(), &upstream.index_url()));
    let path = "/pypi/files/delta/delta-2.0-py3-none-any.whl.metadata";
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "Metadata-Version: 2.1\nName: delta\nVersion: 2.0\nRequires-Dist: alpha>=1\n"
    );
    // Only wheels carry it.
    std::fs::write(pkgs.join("delta-2.1.tar.gz"), b"not really").unwrap();
    let r = get(b.0.addr, "/pypi/files/delta/delta-2.1.tar.gz.metadata");
    assert_ne!(r.status, 200, "{}", r.text());
    drop(upstream);
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Requires-Dist: alpha>=1"));
}

#[test]
fn files_on_another_origin_are_fetched_only_from_a_configured_file_origin() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    let wheel = make_wheel(&pkgs, "epsilon", "1.0", &[]);
    let files_host = PypiServer::start(&pkgs);
    let index = PypiServer::start_with_files_at(&pkgs, &files_host.url());
    let path = "/pypi/files/epsilon/epsilon-1.0-py3-none-any.whl";

    // Not configured: the page does not choose where bulwark connects.
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let b = start(&write_config(&plain, &index.index_url()));
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 502, "{}", r.text());
    let j = r.json();
    assert_eq!(j["check"], "file URL", "{j}");
    assert_eq!(j["seen"], files_host.url(), "{j}");
    drop(b);

    // Configured: fetched there and checked against the index's sha256.
    let config = write_config(dir.path(), &index.index_url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("file_origins = [\"{}\"]\n", files_host.url()));
    std::fs::write(&config, text).unwrap();
    let b = start(&config);
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, std::fs::read(&wheel).unwrap());
}

#[test]
fn a_file_younger_than_min_release_age_is_hidden_and_refused_whatever_the_index_says() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    let wheel = make_wheel(&pkgs, "zeta", "1.0", &[]);
    let upstream = PypiServer::start(&pkgs);
    let config = write_config(dir.path(), &upstream.index_url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("min_release_age = \"1h\"\n");
    std::fs::write(&config, text).unwrap();
    let path = "/pypi/files/zeta/zeta-1.0-py3-none-any.whl";
    let json = [("Accept", "application/vnd.pypi.simple.v1+json")];

    let b = start(&config);
    let page = send(b.0.addr, "GET", "/pypi/simple/zeta/", &json);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.json()["files"],
        serde_json::json!([]),
        "{}",
        page.text()
    );
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 403, "{}", r.text());
    let first = r.json();
    assert_eq!(first["check"], "min release age", "{first}");
    drop(b);

    // The first sighting is kept across restarts: the file is no older to
    // bulwark for being asked again.
    let b = start(&config);
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 403, "{}", r.text());
    let again = r.json();
    let at = |j: &serde_json::Value| {
        let s = j["seen"].as_str().unwrap().to_string();
        s.split(" (").next().unwrap().to_string()
    };
    assert_eq!(at(&again), at(&first), "{again} / {first}");
    drop(b);

    // The index swaps the file: another sha256 than first seen is refused.
    let mut bytes = std::fs::read(&wheel).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wheel, &bytes).unwrap();
    let b = start(&config);
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["check"], "first seen digest", "{}", r.text());
}

#[test]
fn files_of_a_project_its_index_quarantines_are_not_served_stored_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    make_wheel(&pkgs, "eta", "1.0", &[]);
    make_wheel(&pkgs, "eta", "1.1", &[]);
    let status = dir.path().join("status");
    let upstream = PypiServer::start_with_status_file(&pkgs, &status);
    let config = write_config(dir.path(), &upstream.index_url());
    let stored = "/pypi/files/eta/eta-1.0-py3-none-any.whl";
    let b = start(&config);
    assert_eq!(get(b.0.addr, stored).status, 200);
    drop(b);

    // The index quarantines the project (PEP 792).
    std::fs::write(&status, "quarantined").unwrap();
    let b = start(&config);
    let page = send(
        b.0.addr,
        "GET",
        "/pypi/simple/eta/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    assert_eq!(
        page.json()["project-status"]["status"],
        "quarantined",
        "{}",
        page.text()
    );
    for path in [stored, "/pypi/files/eta/eta-1.1-py3-none-any.whl"] {
        let r = get(b.0.addr, path);
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["check"], "project status", "{}", r.text());
    }
}

/// A fake index that misbehaves on purpose: it answers every request with
/// one fixed PEP 503 page listing one file twice, with two digests.
#[test]
fn an_index_listing_a_file_twice_with_two_digests_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let page = format!(
        "<a href=\"/p/alpha-1.0.tar.gz#sha256={}\">alpha-1.0.tar.gz</a>\n\
         <a href=\"/q/alpha-1.0.tar.gz#sha256={}\">alpha-1.0.tar.gz</a>\n",
        "1".repeat(64),
        "2".repeat(64)
    );
    let server = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let b = start(&write_config(dir.path(), &format!("http://{addr}/simple")));
    let r = get(b.0.addr, "/pypi/simple/alpha/");
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["check"], "index page", "{j}");
    assert!(j["message"].as_str().unwrap().contains("twice"), "{j}");
    drop(b);
    server.join().unwrap();
}
