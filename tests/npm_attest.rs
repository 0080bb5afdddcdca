//! npm attestations through bulwark, end to end: the real `npm` client,
//! the real `verdaccio` registry holding the real tarball of
//! `@playwright/cli@0.1.1`, and in front of it a registry layer that adds
//! what a private registry lacks: `dist.signatures` made with a test key,
//! and the public registry's real attestations answer for that version
//! (its publish attestation signed by the registry's key, its SLSA
//! provenance by Fulcio for the source repository's workflow, both in the
//! production Rekor; tests/data/sigstore/npm). No test reaches the
//! network: the production Rekor is pointed at a closed local port, so its
//! consistency proofs are deferred (`rekor_consistency = "when-reachable"`).
//!
//! - an attested version installs with `npm install`; its tarball is
//!   marked `Bulwark-Attestation: verified`, its packument points
//!   `dist.attestations.url` at bulwark, and bulwark serves the verified
//!   answer (also at the root path npm joins onto the registry host), also
//!   after the registry dropped it and with the registry gone;
//! - `if-present`: its unattested dependencies are served marked `none`
//!   and counted;
//! - refused, with the check named and nothing stored: the same answer
//!   for another tarball (`artifact digest`), a later version without
//!   attestations (`attestation downgrade`), a package whose policy is
//!   `required` without any (`attestation`), and a provenance from another
//!   source repository than the configured publisher (`publisher`); the
//!   downgrade until an operator accepts it (`bulwark upstream publishers`);
//! - `min_release_age` counts from the Rekor time of the attestations when
//!   that is earlier than bulwark's first sighting, never from the
//!   packument's `time`.

mod support;

use std::path::{Path, PathBuf};

use support::http::{get, metric};
use support::npm::{
    assert_success, empty_project, make_package, publish, publish_tarball, test_key, Npm, Sign,
    SigningRegistry, Verdaccio,
};
use support::serve::Running as Bulwark;

const UPSTREAM: &str = "reg";
const CLI: &str = "@playwright/cli";
const PLAYWRIGHT: &str = "1.59.0-alpha-1771104257000";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore/npm")
        .join(name)
}

/// The embedded registry keys (the publish attestation's key among them)
/// plus test key 1 for `dist.signatures`.
fn keys_file(dir: &Path) -> PathBuf {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey as _;
    let mut keys: serde_json::Value =
        serde_json::from_str(bulwark::sigstore::npm::NPM_KEYS).unwrap();
    let (k, id) = test_key(1);
    let spki = k.verifying_key().to_public_key_der().unwrap();
    keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "keyId": id,
            "keyUsage": "npm:signatures",
            "publicKey": {
                "rawBytes": base64::engine::general_purpose::STANDARD.encode(spki.as_bytes()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": { "start": "2010-01-01T00:00:00.000Z" },
            },
        }));
    let path = dir.join("npm-keys.json");
    std::fs::write(&path, keys.to_string()).unwrap();
    path
}

fn write_config(dir: &Path, url: &str, policy: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    keys_file(dir);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let file = dir.join("bulwark.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"npm\"\nurl = \"{url}\"\n\
             namespaces = [\"*\"]\nregistry_keys = \"npm-keys.json\"\n\
             rekor_urls = {{ \"rekor.sigstore.dev\" = \"http://{dead}\" }}\n{policy}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

fn tarball(name: &str, version: &str) -> String {
    let bare = name.rsplit('/').next().unwrap();
    format!("/npm/{name}/-/{bare}-{version}.tgz")
}

/// Asserts a refusal: status 403 and the check, naming the upstream.
fn refused(b: &Bulwark, path: &str, check: &str) -> serde_json::Value {
    let r = get(b.0.addr, path);
    assert_eq!(r.status, 403, "{path}: {}", r.text());
    let j = r.json();
    assert_eq!(j["upstream"], UPSTREAM, "{j}");
    assert_eq!(j["check"], check, "{path}: {j}");
    assert!(!j["expected"].as_str().unwrap_or("").is_empty(), "{j}");
    assert!(!j["seen"].as_str().unwrap_or("").is_empty(), "{j}");
    j
}

/// verdaccio with the real attested tarball, its dependencies and our own
/// versions, behind a layer signing every version with test key 1 (and
/// saying every version is from 2015 if `backdated`) and answering the
/// real attestations for `@playwright/cli@0.1.1` and, for another tarball,
/// `@playwright/cli@0.1.2`.
fn registry(dir: &Path, backdated: bool) -> (Verdaccio, SigningRegistry, Vec<u8>) {
    let verdaccio = Verdaccio::start(&dir.join("verdaccio"));
    let publisher = Npm::new(&dir.join("publisher"));
    let pkgs = dir.join("packages");
    // The real attested tarball, as it is, and its dependencies (ours).
    publish_tarball(&publisher, &verdaccio, &data("playwright-cli-0.1.1.tgz"));
    for (name, version) in [
        ("minimist", "1.2.8"),
        ("playwright", PLAYWRIGHT),
        (CLI, "0.1.2"),
        (CLI, "0.1.3"),
        ("strict-tool", "1.0.0"),
    ] {
        publish(
            &publisher,
            &verdaccio,
            &make_package(&pkgs, name, version, &[]),
        );
    }
    // verdaccio keeps the bytes it was given: the tarball is the attested one.
    assert_eq!(
        std::fs::read(verdaccio.tarball(CLI, "0.1.1")).unwrap(),
        std::fs::read(data("playwright-cli-0.1.1.tgz")).unwrap()
    );
    let upstream = if backdated {
        SigningRegistry::backdated(verdaccio.addr, |_, _| Sign::Key(1))
    } else {
        SigningRegistry::start(verdaccio.addr, |_, _| Sign::Key(1))
    };
    let answer = std::fs::read(data("playwright-cli-0.1.1-attestations.json")).unwrap();
    {
        let mut a = upstream.attestations.lock().unwrap();
        a.insert(format!("{CLI}@0.1.1"), answer.clone());
        // The same answer for another tarball.
        a.insert(format!("{CLI}@0.1.2"), answer.clone());
    }
    (verdaccio, upstream, answer)
}

#[test]
fn attested_versions_install_with_their_attestations_and_the_policy_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (verdaccio, upstream, answer) = registry(dir.path(), false);
    // A provenance from another repository than the configured publisher
    // is refused, and nothing is stored.
    let other = dir.path().join("other");
    let b = support::serve::start(
        &write_config(
            &other,
            &upstream.url(),
            "publishers = { \"@playwright/cli\" = \"GitHub:someone/playwright-cli\" }",
        ),
        "bulwark=info",
    );
    let j = refused(&b, &tarball(CLI, "0.1.1"), "publisher");
    assert!(
        j["seen"]
            .as_str()
            .unwrap()
            .contains("microsoft/playwright-cli"),
        "{j}"
    );
    assert_eq!(support::serve::stored_objects(&other.join("data")), 0);
    drop(b);

    let main = dir.path().join("main");
    let b = support::serve::start(
        &write_config(
            &main,
            &upstream.url(),
            "attestations = \"if-present\"\n\
             package_attestations = { \"strict-*\" = \"required\" }\n\
             publishers = { \"@playwright/cli\" = \"GitHub:microsoft/playwright-cli:publish.yml\" }",
        ),
        "bulwark=info",
    );
    let addr = b.0.addr;

    // The packument points dist.attestations at bulwark for the versions
    // the registry lists attestations for.
    let p = get(addr, "/npm/@playwright%2fcli").json();
    assert_eq!(
        p["versions"]["0.1.1"]["dist"]["attestations"]["url"],
        format!("http://{addr}/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.1"),
        "{p}"
    );
    assert_eq!(
        p["versions"]["0.1.1"]["dist"]["attestations"]["provenance"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert!(p["versions"]["0.1.3"]["dist"].get("attestations").is_none());

    // npm installs the attested version and its (unattested) dependencies.
    let client = Npm::new(&dir.path().join("client"));
    let registry = format!("http://{addr}/npm/");
    let project = empty_project(&dir.path().join("project"));
    let out = client.run(
        &project,
        &registry,
        "cache-1",
        &["install", "--ignore-scripts", &format!("{CLI}@0.1.1")],
    );
    assert_success("npm install @playwright/cli@0.1.1", &out);
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join("node_modules/@playwright/cli/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(installed["version"], "0.1.1");
    assert!(project.join("node_modules/minimist/package.json").exists());

    // What vouches for each tarball.
    let r = get(addr, &tarball(CLI, "0.1.1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    let r = get(addr, &tarball("minimist", "1.2.8"));
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("none"));
    assert!(
        metric(
            b.0.addr,
            &format!("bulwark_unvouched_served_total{{upstream=\"{UPSTREAM}\"}}")
        ) >= 2
    );
    let series = |check: &str, outcome: &str| {
        format!(
            "bulwark_verifications_total{{upstream=\"{UPSTREAM}\",check=\"{check}\",outcome=\"{outcome}\"}}"
        )
    };
    assert_eq!(metric(b.0.addr, &series("attestation", "ok")), 1);
    assert!(metric(b.0.addr, &series("rekor consistency deferred", "fail")) >= 1);

    // bulwark serves the verified answer, where npm's clients ask for it.
    for path in [
        "/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.1",
        "/-/npm/v1/attestations/@playwright/cli@0.1.1",
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.body, answer, "{path}");
    }
    let r = get(addr, "/npm/-/npm/v1/attestations/minimist@1.2.8");
    assert_eq!(r.status, 404, "{}", r.text());

    // Refusals, each naming its check, nothing of them stored.
    let before = support::serve::stored_objects(&main.join("data"));
    refused(&b, &tarball(CLI, "0.1.2"), "artifact digest");
    refused(&b, &tarball(CLI, "0.1.3"), "attestation downgrade");
    refused(&b, &tarball("strict-tool", "1.0.0"), "attestation");
    refused(
        &b,
        "/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.2",
        "artifact digest",
    );
    assert_eq!(
        support::serve::stored_objects(&main.join("data")),
        before,
        "something refused was stored"
    );

    // The operator looks at the package's ledger, then accepts its
    // unattested versions from now on.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["upstream", "publishers", UPSTREAM])
            .args(args)
            .arg("--config")
            .arg(main.join("bulwark.toml"))
            .output()
            .unwrap();
        assert_success("bulwark upstream publishers", &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = cli(&[CLI]);
    assert!(
        shown.contains("GitHub:microsoft/playwright-cli:publish.yml"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{CLI}@0.1.1")), "{shown}");
    cli(&[CLI, "--accept-unattested"]);
    let r = get(addr, &tarball(CLI, "0.1.3"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("none"));

    // The registry drops the attestations, then goes away: what was
    // verified is still served, with its answer.
    upstream.attestations.lock().unwrap().clear();
    let r = get(addr, "/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.1");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(upstream);
    drop(verdaccio);
    let r = get(addr, &tarball(CLI, "0.1.1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    assert_eq!(
        r.body,
        std::fs::read(data("playwright-cli-0.1.1.tgz")).unwrap()
    );
    let r = get(addr, "/-/npm/v1/attestations/@playwright/cli@0.1.1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, answer);
}

/// `min_release_age` counts from a time bulwark can trust: its own first
/// sighting, or the Rekor time of the version's verified attestations
/// (the registry's publish attestation is logged when the version is
/// published), never the packument's `time`.
#[test]
fn min_release_age_counts_from_the_rekor_time_of_the_attestations() {
    let dir = tempfile::tempdir().unwrap();
    // The packument says every version is from 2015; the registry takes
    // attestation requests only for `@scope/name`, not `@scope%2fname`.
    let (_verdaccio, upstream, _) = registry(dir.path(), true);
    upstream
        .plain_scoped_names
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The attestations were logged on 2026-02-14: older than 7 days.
    let week = dir.path().join("week");
    let b = support::serve::start(
        &write_config(
            &week,
            &upstream.url(),
            "attestations = \"if-present\"\nmin_release_age = \"7d\"",
        ),
        "bulwark=info",
    );
    // Every version is new to this bulwark: all are held back at first.
    let p = get(b.0.addr, "/npm/@playwright%2fcli").json();
    assert!(p["versions"].as_object().unwrap().is_empty(), "{p}");
    // The attested version is served on its Rekor time...
    let r = get(b.0.addr, &tarball(CLI, "0.1.1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    // ...and shown from now on.
    let p = get(b.0.addr, "/npm/@playwright%2fcli").json();
    let versions: Vec<&String> = p["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["0.1.1"], "{p}");
    // An unattested version has only bulwark's first sighting (and one of
    // a package seen attested is a downgrade first).
    refused(&b, &tarball("minimist", "1.2.8"), "min release age");
    refused(&b, &tarball(CLI, "0.1.3"), "attestation downgrade");
    drop(b);

    // A year: the Rekor time says new, whatever the packument says.
    let year = dir.path().join("year");
    let b = support::serve::start(
        &write_config(
            &year,
            &upstream.url(),
            "attestations = \"if-present\"\nmin_release_age = \"365d\"",
        ),
        "bulwark=info",
    );
    let j = refused(&b, &tarball(CLI, "0.1.1"), "min release age");
    assert!(
        j["seen"].as_str().unwrap().contains("2026-02-14"),
        "the Rekor time is named: {j}"
    );
    assert_eq!(support::serve::stored_objects(&year.join("data")), 0);
}

/// The verified attestations cross the air gap in the bundle and are
/// verified again inside, under the inside's own keys and root, with
/// nothing reachable; an altered answer in the bundle is refused.
#[test]
fn attestations_cross_the_air_gap_and_are_verified_again_inside() {
    use support::airgap::{alter_member, assert_summary, cli, dead_url, text};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (verdaccio, upstream, answer) = registry(d, false);
    let policy = "attestations = \"if-present\"\n\
                  package_attestations = { \"@playwright/*\" = \"required\" }";
    let outside = write_config(&d.join("outside"), &upstream.url(), policy);
    {
        let b = support::serve::start(&outside, "bulwark=info");
        for (name, version) in [(CLI, "0.1.1"), ("minimist", "1.2.8")] {
            let r = get(b.0.addr, &tarball(name, version));
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let bundle = d.join("bundle.tar");
    let out = cli(&["export"], &outside, &[Path::new("--out"), &bundle]);
    assert_success("export", &out);
    assert!(
        text(&out.stdout).contains("2 tarball(s), 1 attestations answer(s)"),
        "{}",
        text(&out.stdout)
    );
    drop(upstream);
    drop(verdaccio);

    // The inside: its upstream unreachable, offline, the same policy.
    let inside = |name: &str| {
        let config = write_config(&d.join(name), &dead_url(), policy);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replacen("[server]\n", "[server]\noffline = true\n", 1),
        )
        .unwrap();
        config
    };
    let config = inside("inside");
    let out = cli(&["import", "--progress", "none"], &config, &[&bundle]);
    assert_summary(&out, 2, 0, 0);
    let b = support::serve::start(&config, "bulwark=info");
    let r = get(b.0.addr, &tarball(CLI, "0.1.1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("bulwark-attestation").as_deref(), Some("verified"));
    let r = get(
        b.0.addr,
        "/npm/-/npm/v1/attestations/@playwright%2fcli@0.1.1",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, answer);
    drop(b);

    // One bit of the answer changed on the way: the attested version is
    // refused on import (and nothing of it stored), the rest goes in.
    let altered = d.join("altered.tar");
    alter_member(
        &bundle,
        &altered,
        "npm/reg/packument/-/npm/v1/attestations/@playwright%2fcli@0.1.1",
    );
    let config = inside("altered-inside");
    let out = cli(&["import", "--progress", "none"], &config, &[&altered]);
    assert_summary(&out, 1, 0, 1);
    assert!(
        text(&out.stdout).contains(&format!("refused {CLI}@0.1.1: ")),
        "{}",
        text(&out.stdout)
    );
    let b = support::serve::start(&config, "bulwark=info");
    let r = get(b.0.addr, &tarball(CLI, "0.1.1"));
    assert_ne!(r.status, 200, "{}", r.text());
}
