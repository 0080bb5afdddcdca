//! PyPI with PEP 740 attestations, end to end: the real `pypiserver`
//! serving real attested distributions (tests/data/sigstore/pypi, signed
//! on the production Sigstore instance and logged in Rekor), with the
//! Integrity API it lacks added in front of it
//! (`tests/support/run_pypiserver.py`), the real `pip`, and bulwark's
//! real binary in between.
//!
//! - `attestations = "required"` (the default): an attested sdist is
//!   served (`pip download` prepares it, `uv pip install` builds and installs
//!   another) once its provenance verified; the
//!   page points at bulwark's Integrity API, which serves that provenance;
//!   the Rekor checkpoint is in the trust state; an unattested file is
//!   refused (check `attestation`), also to pip; with the upstream gone,
//!   the attested file and its provenance are still served;
//! - `if-present`: an unattested file is served marked
//!   `Bulwark-Attestation: none` and counted; once a project was seen
//!   attested, its unattested file is refused (`attestation downgrade`)
//!   until an operator accepts it with `bulwark upstream publishers`;
//! - refusals: a provenance of another file, a publisher other than the
//!   configured one, a second checkpoint of the same Rekor log that the
//!   log will not prove consistent with the first (and, when the log cannot
//!   be reached at all, `rekor_consistency` decides); a Rekor entry of
//!   another artifact, a tampered inclusion proof or checkpoint, a staging
//!   attestation under the production root — nothing of them stored.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::http::{get, send};
use support::pypi::{make_wheel, pip, uv_pip, PypiServer};
use support::serve::Running as Bulwark;

const UPSTREAM: &str = "py";
/// An attested sdist with the whole Integrity API answer beside it.
const ATTESTED: &str = "pypi_attestations-0.0.19.tar.gz";
/// An attested sdist (GitLab publisher) of the same Rekor log shard.
const GITLAB: &str = "gitlab_oidc_project-0.0.3.tar.gz";
/// An attested sdist of an older Rekor shard (another log origin).
const MODELS: &str = "pypi_attestation_models-0.0.4a2.tar.gz";
/// The trust-state name of the Rekor shard of ATTESTED and GITLAB.
const SHARD: &str = "sigstore:rekor.sigstore.dev/1193050959916656506";

impl Bulwark {
    fn stderr(&self) -> String {
        self.0.stderr.lock().unwrap().clone()
    }
}

fn start(config: &Path) -> Bulwark {
    support::serve::start(config, "bulwark=info")
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore/pypi")
        .join(name)
}

/// A PEP 740 provenance object holding one attestation by `publisher`.
fn provenance_of(attestation: &str, publisher: serde_json::Value) -> Vec<u8> {
    let att: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data(attestation)).unwrap()).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "version": 1,
        "attestation_bundles": [{"publisher": publisher, "attestations": [att]}],
    }))
    .unwrap()
}

/// The GitLab-published sdist's provenance, with the publisher its
/// certificate names.
fn gitlab_provenance() -> Vec<u8> {
    provenance_of(
        &format!("{GITLAB}.publish.attestation"),
        serde_json::json!({"kind": "GitLab", "repository": "facutuesca/gitlab-oidc-project",
                           "workflow_filepath": ".gitlab-ci.yml", "environment": null}),
    )
}

/// The packages and provenance objects of the upstream: every real
/// attested file with its provenance, and `extra` files without.
struct Upstream {
    packages: PathBuf,
    provenance: PathBuf,
}

fn upstream_dirs(root: &Path) -> Upstream {
    let u = Upstream {
        packages: root.join("packages"),
        provenance: root.join("provenance"),
    };
    std::fs::create_dir_all(&u.packages).unwrap();
    std::fs::create_dir_all(&u.provenance).unwrap();
    for f in [ATTESTED, GITLAB, MODELS] {
        std::fs::copy(data(f), u.packages.join(f)).unwrap();
    }
    std::fs::copy(
        data(&format!("{ATTESTED}.provenance")),
        u.provenance.join(format!("{ATTESTED}.provenance")),
    )
    .unwrap();
    std::fs::write(
        u.provenance.join(format!("{GITLAB}.provenance")),
        gitlab_provenance(),
    )
    .unwrap();
    std::fs::write(
        u.provenance.join(format!("{MODELS}.provenance")),
        provenance_of(
            &format!("{MODELS}.attestation"),
            serde_json::json!({"kind": "GitHub", "repository": "trailofbits/pypi-attestation-models",
                               "workflow": "release.yml", "environment": null}),
        ),
    )
    .unwrap();
    u
}

fn write_config(dir: &Path, upstream: &PypiServer, extra: &str) -> PathBuf {
    let file = dir.join("bulwark.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"pypi\"\nurl = \"{}\"\n\
             namespaces = []\ndefault = true\n{extra}\n",
            dir.join("data").display(),
            upstream.index_url(),
        ),
    )
    .expect("write config");
    file
}

/// `rekor_urls` sending the production Rekor log to a closed local port.
fn no_rekor() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("rekor_urls = {{ \"rekor.sigstore.dev\" = \"http://{dead}\" }}")
}

fn file_path(project: &str, filename: &str) -> String {
    format!("/pypi/files/{project}/{filename}")
}

/// The checkpoint size the trust state accepted for `log`, if any.
fn accepted_size(data_dir: &Path, log: &str) -> Option<u64> {
    let state = bulwark::verify::trust::TrustState::open(data_dir.join("state.redb")).unwrap();
    state.latest(log).unwrap().map(|a| a.size)
}

#[test]
fn required_serves_attested_files_with_their_provenance_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream_dirs(dir.path());
    make_wheel(&up.packages, "plain", "1.0", &[]);
    let upstream = PypiServer::start_with_provenance(&up.packages, &up.provenance);
    // Tests use no network: the production Rekor log is "reached" at a
    // closed local port.
    let config = write_config(dir.path(), &upstream, &no_rekor());
    let b = start(&config);
    let addr = b.0.addr;

    // The page points at bulwark's Integrity API for attested files only.
    let page = send(
        addr,
        "GET",
        "/pypi/simple/pypi-attestations/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let files = page.json()["files"].clone();
    assert_eq!(
        files[0]["provenance"],
        format!("/pypi/provenance/pypi-attestations/{ATTESTED}"),
        "{files}"
    );
    let plain = send(
        addr,
        "GET",
        "/pypi/simple/plain/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    assert!(
        plain.json()["files"][0].get("provenance").is_none(),
        "{}",
        plain.text()
    );

    // The attested file: served, marked verified, its bytes the real ones.
    let r = get(addr, &file_path("pypi-attestations", ATTESTED));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), b.stderr());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    assert_eq!(r.body, std::fs::read(data(ATTESTED)).unwrap());
    // Its provenance, from bulwark's Integrity API: the upstream's, verified.
    let p = get(
        addr,
        &format!("/pypi/provenance/pypi-attestations/{ATTESTED}"),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(
        p.body,
        std::fs::read(data(&format!("{ATTESTED}.provenance"))).unwrap()
    );
    // The Rekor checkpoint of its entry is in the trust state.
    assert_eq!(
        accepted_size(&dir.path().join("data"), SHARD),
        Some(31550402)
    );

    // The real pip fetches another attested sdist (of another Rekor shard)
    // through bulwark and prepares it.
    let out_dir = dir.path().join("pip-out");
    let out = pip(dir.path(), "download")
        .args(["--no-deps", "--no-build-isolation", "--index-url"])
        .arg(format!("http://{addr}/pypi/simple/"))
        .arg("-d")
        .arg(&out_dir)
        .arg("pypi-attestation-models==0.0.4a2")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip download: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        b.stderr()
    );
    assert_eq!(
        std::fs::read(out_dir.join(MODELS)).unwrap(),
        std::fs::read(data(MODELS)).unwrap()
    );

    // The real uv installs the GitLab-published sdist (its Rekor checkpoint
    // is older than the accepted one: proven a prefix, which needs the log,
    // unreachable here, so the default rekor_consistency =
    // "when-reachable" defers that proof).
    let out = uv_pip(dir.path(), "install")
        .args([
            "--no-cache",
            "--no-deps",
            "--no-build-isolation",
            "--index-url",
        ])
        .arg(format!("http://{addr}/pypi/simple/"))
        .arg("--target")
        .arg(dir.path().join("uv-target"))
        .arg("gitlab-oidc-project==0.0.3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uv pip install: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        b.stderr()
    );

    // An unattested wheel is refused, to pip as to anyone, with the reason.
    let r = get(addr, &file_path("plain", "plain-1.0-py3-none-any.whl"));
    assert_eq!(r.status, 403, "{}", r.text());
    let e = r.json();
    assert_eq!(e["check"], "attestation", "{e}");
    assert_eq!(e["upstream"], UPSTREAM);
    assert!(e["seen"].as_str().unwrap().contains("lists none"), "{e}");
    let out = pip(dir.path(), "install")
        .args(["--index-url"])
        .arg(format!("http://{addr}/pypi/simple/"))
        .arg("--target")
        .arg(dir.path().join("pip-target"))
        .arg("plain")
        .output()
        .unwrap();
    assert!(!out.status.success(), "pip installed an unattested wheel");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With the upstream gone, what was verified is still served.
    drop(upstream);
    let r = get(addr, &file_path("pypi-attestations", ATTESTED));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    let p = get(
        addr,
        &format!("/pypi/provenance/pypi-attestations/{ATTESTED}"),
    );
    assert_eq!(p.status, 200, "{}", p.text());
}

#[test]
fn if_present_marks_unattested_files_and_never_downgrades_an_attested_project() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream_dirs(dir.path());
    make_wheel(&up.packages, "plain", "1.0", &[]);
    // A later release of the attested project, uploaded without provenance
    // (the stolen-token upload).
    make_wheel(&up.packages, "pypi_attestations", "0.0.20", &[]);
    let upstream = PypiServer::start_with_provenance(&up.packages, &up.provenance);
    let config = write_config(
        dir.path(),
        &upstream,
        &format!("attestations = \"if-present\"\n{}", no_rekor()),
    );
    let b = start(&config);
    let addr = b.0.addr;

    let r = get(addr, &file_path("plain", "plain-1.0-py3-none-any.whl"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("none"));
    let again = get(addr, &file_path("plain", "plain-1.0-py3-none-any.whl"));
    assert_eq!(again.header("bulwark-attestation").as_deref(), Some("none"));
    let metrics = get(addr, "/metrics").text();
    assert!(
        metrics.contains(&format!(
            "bulwark_unvouched_served_total{{upstream=\"{UPSTREAM}\"}} 2"
        )),
        "{metrics}"
    );

    let r = get(addr, &file_path("pypi-attestations", ATTESTED));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), b.stderr());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));

    let later = "pypi_attestations-0.0.20-py3-none-any.whl";
    let r = get(addr, &file_path("pypi-attestations", later));
    assert_eq!(r.status, 403, "{}", r.text());
    let e = r.json();
    assert_eq!(e["check"], "attestation downgrade", "{e}");
    assert!(
        e["expected"]
            .as_str()
            .unwrap()
            .contains("GitHub:trailofbits/pypi-attestations:release.yml"),
        "{e}"
    );
    assert_eq!(e["seen"], "no attestation");

    // The operator looks, then accepts unattested releases of the project.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["upstream", "publishers", UPSTREAM])
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = cli(&["PyPI_Attestations"]);
    assert!(
        shown.contains("GitHub:trailofbits/pypi-attestations:release.yml"),
        "{shown}"
    );
    assert!(shown.contains(ATTESTED), "{shown}");
    cli(&["pypi-attestations", "--accept-unattested"]);
    let r = get(addr, &file_path("pypi-attestations", later));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("none"));
}

#[test]
fn a_wrong_provenance_another_publisher_or_an_unprovable_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream_dirs(dir.path());
    // The gitlab project's provenance is swapped for another file's.
    std::fs::copy(
        up.provenance.join(format!("{MODELS}.provenance")),
        up.provenance.join(format!("{GITLAB}.provenance")),
    )
    .unwrap();
    let upstream = PypiServer::start_with_provenance(&up.packages, &up.provenance);
    // The models project must come from another repository; the Rekor log
    // of the production shard is asked for proofs at a place that has none.
    let config = write_config(
        dir.path(),
        &upstream,
        &format!(
            "publishers = {{ \"pypi-attestation-*\" = \"GitHub:someone/else\" }}\n\
             rekor_urls = {{ \"rekor.sigstore.dev\" = \"{}/rekor\" }}",
            upstream.url()
        ),
    );
    let b = start(&config);
    let addr = b.0.addr;
    let data_dir = dir.path().join("data");

    let r = get(addr, &file_path("gitlab-oidc-project", GITLAB));
    assert_eq!(r.status, 403, "{}", r.text());
    let e = r.json();
    assert!(
        ["artifact digest", "subject"].contains(&e["check"].as_str().unwrap()),
        "{e}"
    );

    let r = get(addr, &file_path("pypi-attestation-models", MODELS));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["check"], "publisher", "{}", r.text());

    // The first checkpoint of a log is accepted; a second one of the same
    // log needs a consistency proof the log does not give: refused.
    let r = get(addr, &file_path("pypi-attestations", ATTESTED));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), b.stderr());
    drop(b);
    drop(upstream);
    // Restore the gitlab project's own provenance and ask again.
    std::fs::write(
        up.provenance.join(format!("{GITLAB}.provenance")),
        gitlab_provenance(),
    )
    .unwrap();
    let upstream = PypiServer::start_with_provenance(&up.packages, &up.provenance);
    let config = write_config(
        dir.path(),
        &upstream,
        &format!(
            "rekor_urls = {{ \"rekor.sigstore.dev\" = \"{}/rekor\" }}",
            upstream.url()
        ),
    );
    let b = start(&config);
    let r = get(b.0.addr, &file_path("gitlab-oidc-project", GITLAB));
    assert_eq!(r.status, 502, "{}", r.text());
    let e = r.json();
    assert_eq!(e["check"], "consistency proof", "{e}");
    assert!(e["seen"].as_str().unwrap().contains("404"), "{e}");
    // Nothing of it was stored; the accepted checkpoint is unchanged.
    let r = get(b.0.addr, &file_path("gitlab-oidc-project", GITLAB));
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(accepted_size(&data_dir, SHARD), Some(31550402));
    drop(b);

    // A log that cannot be reached at all: refused under
    // rekor_consistency = "required"...
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let rekor = format!("rekor_urls = {{ \"rekor.sigstore.dev\" = \"http://{dead}\" }}");
    let config = write_config(
        dir.path(),
        &upstream,
        &format!("{rekor}\nrekor_consistency = \"required\""),
    );
    let b = start(&config);
    let r = get(b.0.addr, &file_path("gitlab-oidc-project", GITLAB));
    assert_eq!(r.status, 502, "{}", r.text());
    let e = r.json();
    assert_eq!(e["check"], "consistency proof", "{e}");
    assert_eq!(e["seen"], "unreachable", "{e}");
    drop(b);
    // ...and by default served on its inclusion proof and signed
    // checkpoint, the deferral counted; the checkpoint is not recorded.
    let config = write_config(dir.path(), &upstream, &rekor);
    let b = start(&config);
    let r = get(b.0.addr, &file_path("gitlab-oidc-project", GITLAB));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), b.stderr());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    let metrics = get(b.0.addr, "/metrics").text();
    assert!(
        metrics.contains("check=\"rekor consistency deferred\""),
        "{metrics}"
    );
    assert_eq!(accepted_size(&data_dir, SHARD), Some(31550402));
}

/// Each attack is refused with its check named, and nothing is stored.
#[test]
fn tampered_provenance_and_a_staging_attestation_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream_dirs(dir.path());
    let wheel = "rfc8785-0.1.2-py3-none-any.whl";
    std::fs::copy(data(wheel), up.packages.join(wheel)).unwrap();
    // Signed on the staging instance: not under the production root.
    std::fs::write(
        up.provenance.join(format!("{wheel}.provenance")),
        provenance_of(
            &format!("{wheel}.publish.attestation"),
            serde_json::json!({"kind": "GitHub", "repository": "trailofbits/rfc8785.py",
                               "workflow": "release.yml", "environment": null}),
        ),
    )
    .unwrap();
    let upstream = PypiServer::start_with_provenance(&up.packages, &up.provenance);
    let b = start(&write_config(dir.path(), &upstream, &no_rekor()));
    let data_dir = dir.path().join("data");
    let before = support::serve::stored_objects(&data_dir);

    let r = get(b.0.addr, &file_path("rfc8785", wheel));
    assert_eq!(r.status, 403, "{}", r.text());
    let staging = r.json()["check"].as_str().unwrap().to_string();

    let real: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data(&format!("{ATTESTED}.provenance"))).unwrap())
            .unwrap();
    let other: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data(&format!("{GITLAB}.publish.attestation"))).unwrap(),
    )
    .unwrap();
    let att = "/attestation_bundles/0/attestations/0";
    let entry = format!("{att}/verification_material/transparency_entries/0");
    let mut refusals = Vec::new();
    for (what, tamper) in [
        (
            "a Rekor entry of another artifact",
            Box::new(|p: &mut serde_json::Value| {
                *p.pointer_mut(&format!("{att}/verification_material/transparency_entries"))
                    .unwrap() = other["verification_material"]["transparency_entries"].clone();
            }) as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "a tampered inclusion proof",
            Box::new(|p: &mut serde_json::Value| {
                let h = p
                    .pointer_mut(&format!("{entry}/inclusionProof/hashes/0"))
                    .unwrap();
                let mut s = h.as_str().unwrap().to_string();
                s.replace_range(
                    0..4,
                    if s.starts_with("AAAA") {
                        "BBBB"
                    } else {
                        "AAAA"
                    },
                );
                *h = serde_json::Value::String(s);
            }),
        ),
        (
            "a tampered checkpoint",
            Box::new(|p: &mut serde_json::Value| {
                let c = p
                    .pointer_mut(&format!("{entry}/inclusionProof/checkpoint/envelope"))
                    .unwrap();
                let s = c.as_str().unwrap().replacen("31550402", "31550403", 1);
                *c = serde_json::Value::String(s);
            }),
        ),
    ] {
        let mut p = real.clone();
        tamper(&mut p);
        std::fs::write(
            up.provenance.join(format!("{ATTESTED}.provenance")),
            serde_json::to_vec(&p).unwrap(),
        )
        .unwrap();
        let r = get(b.0.addr, &file_path("pypi-attestations", ATTESTED));
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        let e = r.json();
        assert_eq!(e["upstream"], UPSTREAM, "{what}: {e}");
        assert!(!e["expected"].as_str().unwrap().is_empty(), "{what}: {e}");
        refusals.push((what, e["check"].as_str().unwrap().to_string()));
    }
    assert_eq!(
        support::serve::stored_objects(&data_dir),
        before,
        "something refused was stored"
    );
    assert_eq!(accepted_size(&data_dir, SHARD), None);
    // The staging instance's log is not in the production root; the other
    // artifact's entry carries its own time, outside the certificate's
    // validity; the altered proof and checkpoint no longer verify.
    assert_eq!(staging, "log");
    assert_eq!(
        refusals,
        [
            (
                "a Rekor entry of another artifact",
                "certificate chain".to_string()
            ),
            ("a tampered inclusion proof", "inclusion proof".to_string()),
            ("a tampered checkpoint", "checkpoint signature".to_string()),
        ]
    );
}
