//! `bulwark verify bundle` through the binary on the real Sigstore data in
//! tests/data/sigstore (see its README): exit 0 with the per-attestation
//! report, exit 1 with one line naming the check, exit 2 for usage errors.

#[path = "support/pep740.rs"]
mod pep740;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn bulwark(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg("verify")
        .arg("bundle")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bulwark");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            input.write_all(bytes).expect("write stdin");
        }
    }
    child.wait_with_output().expect("bulwark output")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn staging() -> String {
    data("trust/trusted_root.staging.json")
}

#[test]
fn pypi_provenance_verifies_and_reports() {
    let o = bulwark(
        &[
            "--artifact",
            &data("pypi/pypi_attestations-0.0.19.tar.gz"),
            "--publisher",
            "GitHub:trailofbits/pypi-attestations:release.yml",
            &data("pypi/pypi_attestations-0.0.19.tar.gz.provenance"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let s = out(&o);
    for want in [
        "log origin: rekor.sigstore.dev - 1193050959916656506",
        "proof index: ",
        "checkpoint size: ",
        "signing time: 2024-12-04T23:14:01Z",
        "identity: https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19",
        format!("predicate type: {}", pep740::publish_predicate()).as_str(),
        "subject: pypi_attestations-0.0.19.tar.gz sha256:9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3",
        "consistency not checked offline",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
}

#[test]
fn every_positive_file_verifies_from_a_file_and_stdin() {
    let prod: &[(&str, &str)] = &[
        (
            "pypi/pypi_attestations-0.0.19.tar.gz.publish.attestation",
            "pypi/pypi_attestations-0.0.19.tar.gz",
        ),
        (
            "pypi/pypi_attestations-0.0.19.tar.gz.slsa.attestation",
            "pypi/pypi_attestations-0.0.19.tar.gz",
        ),
        (
            "pypi/gitlab_oidc_project-0.0.3.tar.gz.publish.attestation",
            "pypi/gitlab_oidc_project-0.0.3.tar.gz",
        ),
        (
            "pypi/pypi_attestation_models-0.0.4a2.tar.gz.attestation",
            "pypi/pypi_attestation_models-0.0.4a2.tar.gz",
        ),
        (
            "bundles/cosign-v3-blob.sigstore.json",
            "bundles/cosign-v3-blob.txt",
        ),
    ];
    for (bundle, artifact) in prod {
        let o = bulwark(&["--artifact", &data(artifact), &data(bundle)], None);
        assert_eq!(o.status.code(), Some(0), "{bundle}: {}", err(&o));
    }
    let bytes = std::fs::read(data("bundles/cosign-v3-blob.sigstore.json")).unwrap();
    let o = bulwark(
        &["--artifact", &data("bundles/cosign-v3-blob.txt"), "-"],
        Some(&bytes),
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("checkpoint size: 616408488"));
}

#[test]
fn staging_files_fail_under_production_pass_under_staging() {
    for (bundle, artifact) in [
        (
            "pypi/rfc8785-0.1.2-py3-none-any.whl.publish.attestation",
            "pypi/rfc8785-0.1.2-py3-none-any.whl",
        ),
        ("bundles/bundle_v3.txt.sigstore", "bundles/bundle_v3.txt"),
    ] {
        let o = bulwark(&["--artifact", &data(artifact), &data(bundle)], None);
        assert_eq!(o.status.code(), Some(1), "{bundle}");
        assert!(
            err(&o).starts_with("verification failed: log: "),
            "{}",
            err(&o)
        );
        assert_eq!(err(&o).lines().count(), 1);
        let o = bulwark(
            &[
                "--artifact",
                &data(artifact),
                "--trusted-root",
                &staging(),
                &data(bundle),
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{bundle}: {}", err(&o));
    }
}

#[test]
fn witness_policy_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let root =
        bulwark::sigstore::TrustRoot::from_json(&std::fs::read_to_string(staging()).unwrap())
            .unwrap();
    let log = root
        .logs()
        .iter()
        .find(|l| l.host == "log2025-alpha3.rekor.sigstage.dev")
        .unwrap();
    let w = [
        "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
        "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL",
        "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G",
    ];
    let good = dir.path().join("good.txt");
    std::fs::write(
        &good,
        format!(
            "log {}\nwitness a {}\nwitness b {}\nwitness c {}\ngroup g 2 a b c\nquorum g\n",
            log.key, w[0], w[1], w[2]
        ),
    )
    .unwrap();
    let stranger = bulwark::tlog::note::Signer::generate("witness.example").unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        format!(
            "log {}\nwitness a {}\nwitness x {}\ngroup g all a x\nquorum g\n",
            log.key,
            w[0],
            stranger.verifier_key()
        ),
    )
    .unwrap();
    let artifact = write_a_txt(dir.path());
    let bundle = data("bundles/a.dsse.staging-rekor-v2.txt.sigstore.json");
    let o = bulwark(
        &[
            "--artifact",
            artifact.to_str().unwrap(),
            "--trusted-root",
            &staging(),
            "--policy",
            good.to_str().unwrap(),
            &bundle,
        ],
        None,
    );
    // The data set lacks the file the statement names (see the README), so
    // the run ends at the subject check, which comes after the log and
    // witness checks: under the 2-of-3 policy those passed.
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: artifact digest: "),
        "{}",
        err(&o)
    );
    let o = bulwark(
        &[
            "--artifact",
            artifact.to_str().unwrap(),
            "--trusted-root",
            &staging(),
            "--policy",
            bad.to_str().unwrap(),
            &bundle,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: witness policy: "),
        "{}",
        err(&o)
    );
}

/// The file beside the Rekor v2 bundle (not its subject; see the README).
fn write_a_txt(dir: &Path) -> PathBuf {
    let p = dir.join("a.txt");
    std::fs::copy(data("bundles/a.dsse.staging-rekor-v2.txt"), &p).unwrap();
    p
}

#[test]
fn negative_files_exit_1_naming_the_check() {
    for (bundle, artifact, root, check) in [
        (
            "bundles/bundle_no_checkpoint.txt.sigstore",
            "bundles/bundle_no_checkpoint.txt",
            true,
            "checkpoint",
        ),
        (
            "bundles/bundle_no_log_entry.txt.sigstore",
            "bundles/bundle_no_log_entry.txt",
            true,
            "transparency log entry",
        ),
        (
            "bundles/github-private-attestation.sigstore.json",
            "bundles/cosign-v3-blob.txt",
            false,
            "transparency log entry",
        ),
        (
            "bundles/bundle_cve_2022_36056.txt.sigstore",
            "bundles/bundle_cve_2022_36056.txt",
            true,
            "log entry body",
        ),
        (
            "bundles/bundle_invalid_version.txt.sigstore",
            "bundles/bundle_invalid_version.txt",
            true,
            "media type",
        ),
        (
            "bundles/dsse.sigstore.json",
            "bundles/cosign-v3-blob.txt",
            false,
            "inclusion proof",
        ),
    ] {
        let mut args = vec!["--artifact".to_string(), data(artifact)];
        if root {
            args.push("--trusted-root".into());
            args.push(staging());
        }
        args.push(data(bundle));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = bulwark(&args, None);
        assert_eq!(o.status.code(), Some(1), "{bundle}: {}", err(&o));
        let e = err(&o);
        assert!(
            e.starts_with(&format!("verification failed: {check}: expected ")),
            "{bundle}: {e}"
        );
        assert!(e.contains(", seen "), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(out(&o).is_empty());
    }
}

#[test]
fn tampered_artifact_and_identity_mismatch_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut tgz = std::fs::read(data("pypi/pypi_attestations-0.0.19.tar.gz")).unwrap();
    tgz[1000] ^= 1;
    let p = dir.path().join("x.tar.gz");
    std::fs::write(&p, tgz).unwrap();
    let o = bulwark(
        &[
            "--artifact",
            p.to_str().unwrap(),
            &data("pypi/pypi_attestations-0.0.19.tar.gz.provenance"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: artifact digest: "),
        "{}",
        err(&o)
    );

    let o = bulwark(
        &[
            "--artifact",
            &data("bundles/cosign-v3-blob.txt"),
            "--issuer",
            "https://github.com/login/oauth",
            "--identity",
            "someone@example\\.com",
            &data("bundles/cosign-v3-blob.sigstore.json"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: identity: "),
        "{}",
        err(&o)
    );
    let o = bulwark(
        &[
            "--artifact",
            &data("pypi/pypi_attestations-0.0.19.tar.gz"),
            "--publisher",
            "GitHub:evil/repo",
            &data("pypi/pypi_attestations-0.0.19.tar.gz.provenance"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: publisher: "),
        "{}",
        err(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let bundle = data("bundles/cosign-v3-blob.sigstore.json");
    let artifact = data("bundles/cosign-v3-blob.txt");
    for args in [
        vec![bundle.as_str()], // no --artifact
        vec![
            "--artifact",
            artifact.as_str(),
            "--issuer",
            "x",
            bundle.as_str(),
        ], // --issuer without --identity
        vec![
            "--artifact",
            artifact.as_str(),
            "--publisher",
            "Nope:a/b",
            bundle.as_str(),
        ],
        vec![
            "--artifact",
            artifact.as_str(),
            "--issuer",
            "x",
            "--identity",
            "(",
            bundle.as_str(),
        ],
        vec!["--artifact", "/nonexistent", bundle.as_str()],
        vec![
            "--artifact",
            artifact.as_str(),
            "--trusted-root",
            "/nonexistent",
            bundle.as_str(),
        ],
        vec![
            "--artifact",
            artifact.as_str(),
            "--trusted-root",
            artifact.as_str(),
            bundle.as_str(),
        ],
    ] {
        let o = bulwark(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
    }
    // An empty attestations answer fails (exit 1: nothing verified).
    let o = bulwark(
        &["--artifact", &artifact, "-"],
        Some(br#"{"attestations":[]}"#),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).starts_with("verification failed: attestations: "),
        "{}",
        err(&o)
    );
}
