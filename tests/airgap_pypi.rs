//! The air gap for PyPI, end to end with the real `bulwark` binary, the
//! real `uv` and `pip` and the real `pypiserver` over loopback: an
//! "outside" bulwark `sync`s from a `requirements.txt` with `--hash` lines
//! and a `pylock.toml` (both written by the real `uv pip compile`) and
//! `export`s a tar; an "inside" bulwark with `[server] offline = true`
//! `import`s it (every page checked and every file hashed again by its own
//! PyPI pipeline) and serves `pip download` and `uv pip install` with
//! nothing upstream reachable; a `uv.lock` written by the real `uv lock`
//! syncs too. A requirements or pylock hash that is not the index's is
//! refused (`lockfile`), and an altered file in the bundle is refused on
//! import (`digest`) with nothing of it stored. A real attested sdist
//! (`attestations = "required"`) carries its PEP 740 provenance, which the
//! inside verifies again; an altered provenance is refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;
use support::airgap::{alter_member, assert_refused, assert_summary, cli, dead_url, text, twice};
use support::http::get;
use support::npm::assert_success;
use support::pypi::{alpha_needs_beta, bin_dir, pip, uv_pip, PypiServer};
use support::serve::{stored_objects, Running as Bulwark};

const UPSTREAM: &str = "py";
const BETA_MEMBER: &str = "pypi/py/files/beta/beta-2.0-py3-none-any.whl";

/// A config `<side>.toml` with data dir `<side>-data` and its PyPI
/// upstream at `url` (`attestations = "off"`).
fn config(dir: &Path, side: &str, url: &str, server: &str) -> PathBuf {
    config_with(dir, side, url, server, "attestations = \"off\"")
}

/// [`config`] with `upstream` as the rest of the upstream's table.
fn config_with(dir: &Path, side: &str, url: &str, server: &str, upstream: &str) -> PathBuf {
    let file = dir.join(format!("{side}.toml"));
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server}\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"pypi\"\nurl = \"{url}\"\n\
             namespaces = []\ndefault = true\n{upstream}\n",
            dir.join(format!("{side}-data")).display()
        ),
    )
    .expect("write config");
    file
}

/// The inside: offline, its upstream a port nothing listens on.
fn inside(dir: &Path, side: &str) -> PathBuf {
    inside_with(dir, side, "attestations = \"off\"")
}

fn inside_with(dir: &Path, side: &str, upstream: &str) -> PathBuf {
    let url = format!("{}/simple", dead_url());
    config_with(dir, side, &url, "offline = true", upstream)
}

/// `uv pip compile` of `alpha` against `index` into `out` (its format by
/// its name), with hashes.
fn uv_compile(dir: &Path, index: &str, out: &Path) {
    let input = dir.join("requirements.in");
    std::fs::write(&input, "alpha\n").unwrap();
    let o = uv_pip(&dir.join("home"), "compile")
        .args(["--generate-hashes", "--index-url", index])
        .arg(&input)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run uv");
    assert_success("uv pip compile", &o);
}

/// `uv lock` of a project depending on `alpha` against `index`; returns
/// its `uv.lock`.
fn uv_lock(dir: &Path, index: &str) -> PathBuf {
    let project = dir.join("uv-project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"app\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\
         dependencies = [\"alpha\"]\n",
    )
    .unwrap();
    let o = Command::new(bin_dir().join("uv"))
        .args(["lock", "--no-config", "--index-url", index, "--python"])
        .arg(bin_dir().join("python"))
        .current_dir(&project)
        .env("HOME", dir.join("home"))
        .env("UV_CACHE_DIR", dir.join("uv-lock-cache"))
        .output()
        .expect("run uv");
    assert_success("uv lock", &o);
    project.join("uv.lock")
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Outside: lockfiles written by uv against pypiserver, `sync` of both,
/// then `export`. Returns the bundle and the wheels.
struct Outside {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    beta: PathBuf,
}

fn outside() -> (Outside, PypiServer) {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, beta) = alpha_needs_beta(dir.path());
    let req = dir.path().join("requirements.txt");
    let pylock = dir.path().join("pylock.toml");
    uv_compile(dir.path(), &upstream.index_url(), &req);
    uv_compile(dir.path(), &upstream.index_url(), &pylock);
    let lines = std::fs::read_to_string(&req).unwrap();
    assert!(lines.contains("--hash=sha256:"), "{lines}");

    let config = config(dir.path(), "outside", &upstream.index_url(), "");
    let out = cli(&["sync", "--progress", "plain"], &config, &[&req]);
    assert_success("sync requirements.txt", &out);
    assert_summary(&out, 2, 0, 0);
    // The pylock.toml and the uv.lock name the same files: all there,
    // resumed.
    let uvlock = uv_lock(dir.path(), &upstream.index_url());
    for lock in [&pylock, &uvlock] {
        let out = cli(&["sync", "--progress", "none"], &config, &[lock]);
        assert_summary(&out, 0, 2, 0);
    }
    let bundle = dir.path().join("bundle.tar");
    let out = cli(&["export"], &config, &[Path::new("--out"), &bundle]);
    assert_success("export", &out);
    assert!(
        text(&out.stdout).contains("upstream py: 2 page(s), 2 file(s)"),
        "{}",
        text(&out.stdout)
    );
    (Outside { dir, bundle, beta }, upstream)
}

#[test]
fn pypi_sync_export_import_then_pip_and_uv_install_inside_with_nothing_reachable() {
    let (world, upstream) = outside();
    let dir = world.dir.path();

    // A requirements.txt pinning another sha256 is refused, naming the
    // check, and nothing of it is stored.
    let bad = dir.join("bad/requirements.txt");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(
        &bad,
        format!(
            "beta==2.0 \\\n    --hash=sha256:{}\n",
            "0".repeat(64) // not beta's
        ),
    )
    .unwrap();
    let fresh = config(dir, "fresh", &upstream.index_url(), "");
    let out = cli(&["sync", "--progress", "none"], &fresh, &[&bad]);
    assert_refused(&out, "refused beta==2.0: lockfile: ");
    assert_eq!(stored_objects(&dir.join("fresh-data")), 0);
    // So is a pylock.toml naming beta's wheel with another sha256.
    let pylock = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    let beta_sha = sha256_hex(&world.beta);
    assert!(pylock.contains(&beta_sha), "{pylock}");
    let bad_lock = dir.join("bad/pylock.toml");
    std::fs::write(&bad_lock, pylock.replace(&beta_sha, &"1".repeat(64))).unwrap();
    let out = cli(&["sync", "--progress", "none"], &fresh, &[&bad_lock]);
    assert_refused(&out, "refused beta==2.0: lockfile: ");
    assert!(
        !text(&out.stdout).contains("refused alpha"),
        "{}",
        text(&out.stdout)
    );
    // An unpinned line is refused with its reason, not guessed.
    std::fs::write(&bad, "beta>=1\n").unwrap();
    let out = cli(&["sync", "--progress", "none"], &fresh, &[&bad]);
    assert_refused(&out, "not pinned");
    drop(upstream); // nothing upstream is reachable from here on

    let inside = inside(dir, "inside");
    twice("import", &inside, &world.bundle, 2);

    let b: Bulwark = support::serve::start(&inside, "warn");
    let index = format!("http://{}/pypi/simple/", b.0.addr);
    // Pages and files are served with the stale Warning; what was never
    // imported is refused with check `offline`.
    let page = get(b.0.addr, "/pypi/simple/beta/");
    assert_eq!(page.status, 200, "{}", page.text());
    let w = page.header("warning").expect("Warning on the page offline");
    assert!(w.starts_with("110 bulwark") && w.contains(UPSTREAM), "{w}");
    let file = get(b.0.addr, "/pypi/files/beta/beta-2.0-py3-none-any.whl");
    assert_eq!(file.status, 200);
    assert_eq!(file.body, std::fs::read(&world.beta).unwrap());
    assert!(file.header("warning").is_some());
    let r = get(b.0.addr, "/pypi/simple/gamma/");
    assert_eq!(r.json()["check"], "offline", "{}", r.text());

    let home = dir.join("home-inside");
    std::fs::create_dir_all(&home).unwrap();
    let dl = dir.join("pip-download");
    let out = pip(&home, "download")
        .args(["--index-url", &index, "--dest"])
        .arg(&dl)
        .arg("alpha==1.0")
        .output()
        .expect("run pip");
    assert_success("pip download through the offline inside", &out);
    assert_eq!(
        sha256_hex(&dl.join("beta-2.0-py3-none-any.whl")),
        sha256_hex(&world.beta)
    );
    let target = dir.join("uv-target");
    let out = uv_pip(&home, "install")
        .args(["--no-cache", "--index-url", &index, "--target"])
        .arg(&target)
        .arg("alpha")
        .output()
        .expect("run uv");
    assert_success("uv pip install through the offline inside", &out);
    assert!(target.join("alpha/__init__.py").exists());
    assert!(target.join("beta/__init__.py").exists());
}

#[test]
fn import_refuses_an_altered_file_and_stores_none_of_it() {
    let (world, upstream) = outside();
    drop(upstream);
    let dir = world.dir.path();
    let bad = dir.join("altered.tar");
    alter_member(&world.bundle, &bad, BETA_MEMBER);

    let inside = inside(dir, "inside");
    let out = cli(&["import", "--progress", "none"], &inside, &[&bad]);
    assert_refused(&out, "refused beta beta-2.0-py3-none-any.whl: digest: ");
    assert_summary(&out, 1, 0, 1);
    // Only alpha's wheel was stored.
    assert_eq!(stored_objects(&dir.join("inside-data")), 1);
}

/// A real attested sdist (tests/data/sigstore/pypi: signed on the
/// production Sigstore instance, logged in Rekor) and its provenance.
const ATTESTED: &str = "pypi_attestations-0.0.19.tar.gz";
const ATTESTED_PROVENANCE: &str =
    "pypi/py/provenance/pypi-attestations/pypi_attestations-0.0.19.tar.gz";

#[test]
fn an_attested_file_carries_its_provenance_and_is_verified_again_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigstore/pypi");
    let (pkgs, provs) = (d.join("packages"), d.join("provenance"));
    std::fs::create_dir_all(&pkgs).unwrap();
    std::fs::create_dir_all(&provs).unwrap();
    std::fs::copy(data.join(ATTESTED), pkgs.join(ATTESTED)).unwrap();
    let prov = format!("{ATTESTED}.provenance");
    std::fs::copy(data.join(&prov), provs.join(&prov)).unwrap();
    let upstream = PypiServer::start_with_provenance(&pkgs, &provs);
    // attestations = "required" (the default); the Rekor log is never
    // reachable (its first checkpoint needs no consistency proof).
    let rekor = format!(
        "rekor_urls = {{ \"rekor.sigstore.dev\" = \"{}\" }}",
        dead_url()
    );
    let outside = config_with(d, "outside", &upstream.index_url(), "", &rekor);
    let list = d.join("packages.list");
    std::fs::write(
        &list,
        "# ecosystem name version\npypi pypi-attestations 0.0.19\n",
    )
    .unwrap();
    twice("sync", &outside, &list, 1);
    let bundle = d.join("bundle.tar");
    let out = cli(&["export"], &outside, &[Path::new("--out"), &bundle]);
    assert_success("export", &out);
    assert!(
        text(&out.stdout).contains("1 page(s), 1 file(s), 1 provenance(s)"),
        "{}",
        text(&out.stdout)
    );
    drop(upstream);

    // A provenance altered in the bundle: its inclusion proof no longer
    // leads to the logged root; refused, nothing stored.
    let bad = d.join("altered.tar");
    alter_member(&bundle, &bad, ATTESTED_PROVENANCE);
    let other = inside_with(d, "other", &rekor);
    let out = cli(&["import", "--progress", "none"], &other, &[&bad]);
    assert_refused(&out, &format!("refused pypi-attestations {ATTESTED}: "));
    assert_eq!(stored_objects(&d.join("other-data")), 0);

    let inside = inside_with(d, "inside", &rekor);
    twice("import", &inside, &bundle, 1);
    let b: Bulwark = support::serve::start(&inside, "warn");
    let r = get(
        b.0.addr,
        &format!("/pypi/files/pypi-attestations/{ATTESTED}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    assert_eq!(r.body, std::fs::read(data.join(ATTESTED)).unwrap());
    let p = get(
        b.0.addr,
        &format!("/pypi/provenance/pypi-attestations/{ATTESTED}"),
    );
    assert_eq!(p.status, 200, "{}", p.text());
}
