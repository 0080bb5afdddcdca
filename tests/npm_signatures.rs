//! npm registry signatures through bulwark (`signatures = "required"`),
//! end to end: the real `npm` client, the real `verdaccio` registry, and in
//! front of it a registry layer that adds `dist.signatures` made with test
//! keys in the public registry's format (verdaccio signs nothing). bulwark
//! pins the test keys with `registry_keys` (a `keys.json` in the shape
//! Sigstore's TUF repository distributes npm's keys in).
//!
//! - a version whose signature does not verify, whose key was not valid at
//!   its publish time, or whose key is not pinned is removed from the
//!   packument (and its dist-tag dropped), its tarball refused naming the
//!   check, and the failures are counted in the metrics;
//! - a tarball URL on another host is fetched by its path from the
//!   configured registry, never from that host;
//! - npm installs the versions whose signatures verify, and a scoped
//!   package from the internal registry `@acme/*` routes to (unsigned,
//!   `signatures = "off"`);
//! - `/-/npm/v1/keys` answers the pinned keys in the registry's format,
//!   and npm's own signature check (pacote with `verifySignatures`, what
//!   `npm audit signatures` runs per package) passes through bulwark under
//!   them. `npm audit signatures` itself first fetches the public
//!   registry's keys from Sigstore's TUF CDN, which tests cannot reach.

mod support;

use std::path::{Path, PathBuf};

use support::http::{get, metric};
use support::npm::{
    assert_success, empty_project, keys_json, make_package, npm_verify, publish, test_key, Npm,
    Sign, SigningRegistry, Verdaccio,
};

const UPSTREAM: &str = "signed-registry";

fn write_config(dir: &Path, url: &str, internal: &str) -> PathBuf {
    std::fs::write(
        dir.join("npm-keys.json"),
        keys_json(&[
            (1, "2020-01-01T00:00:00.000Z", None),
            (
                2,
                "2020-01-01T00:00:00.000Z",
                Some("2021-01-01T00:00:00.000Z"),
            ),
        ]),
    )
    .unwrap();
    let file = dir.join("bulwark.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"npm\"\nurl = \"{url}\"\n\
             namespaces = [\"*\"]\nsignatures = \"required\"\nregistry_keys = \"npm-keys.json\"\n\
             attestations = \"off\"\n\n\
             [[upstream]]\nname = \"internal\"\nprotocol = \"npm\"\nurl = \"{internal}\"\n\
             namespaces = [\"@acme/*\"]\nsignatures = \"off\"\nattestations = \"off\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

#[test]
fn versions_whose_registry_signature_fails_are_removed_and_the_rest_installs() {
    let dir = tempfile::tempdir().unwrap();
    let verdaccio = Verdaccio::start(&dir.path().join("verdaccio"));
    let publisher = Npm::new(&dir.path().join("publisher"));
    let pkgs = dir.path().join("packages");
    for (name, version, deps) in [
        ("signed", "1.0.0", vec![]),
        ("signed", "1.1.0", vec![]),
        ("expired", "1.0.0", vec![]),
        ("unknown", "1.0.0", vec![]),
        ("foreign", "1.0.0", vec![]),
        ("@acme/app", "1.0.0", vec![("signed", "^1.0.0")]),
    ] {
        publish(
            &publisher,
            &verdaccio,
            &make_package(&pkgs, name, version, &deps),
        );
    }
    // `foreign`'s signed packument points its tarball at another host
    // (where nothing listens).
    let upstream = SigningRegistry::edited(
        verdaccio.addr,
        |name, version| match (name, version) {
            ("signed", "1.1.0") => Sign::Wrong(1),
            ("expired", _) => Sign::Key(2),
            ("unknown", _) => Sign::Key(3),
            _ => Sign::Key(1),
        },
        |doc| {
            if doc["name"] == "foreign" {
                doc["versions"]["1.0.0"]["dist"]["tarball"] =
                    serde_json::json!("http://127.0.0.1:9/foreign/-/foreign-1.0.0.tgz");
            }
        },
    );
    // `@acme/*` goes to the internal registry (verdaccio itself, unsigned,
    // signatures = "off"); every other name to the signing one.
    let b = support::serve::start(
        &write_config(dir.path(), &upstream.url(), &verdaccio.url()),
        "bulwark=info",
    );

    // The packument keeps only the version whose signature verifies; the
    // `latest` tag (1.1.0) is dropped; signatures are served as signed.
    let r = get(b.0.addr, "/npm/signed");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let versions: Vec<&String> = j["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["1.0.0"], "{j}");
    assert!(j["dist-tags"].get("latest").is_none(), "{j}");
    assert_eq!(
        j["versions"]["1.0.0"]["dist"]["signatures"][0]["keyid"],
        test_key(1).1
    );

    // Each removed version's tarball is refused, naming the check.
    for (path, seen) in [
        ("/npm/signed/-/signed-1.1.0.tgz", "does not verify"),
        ("/npm/expired/-/expired-1.0.0.tgz", "npm key validity"),
        ("/npm/unknown/-/unknown-1.0.0.tgz", "unpinned"),
    ] {
        let r = get(b.0.addr, path);
        assert_eq!(r.status, 502, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["upstream"], UPSTREAM, "{j}");
        assert_eq!(j["check"], "npm registry signature", "{j}");
        assert!(j["seen"].as_str().unwrap().contains(seen), "{path}: {j}");
        assert!(!j["expected"].as_str().unwrap().is_empty(), "{j}");
    }
    // A tarball URL naming another host is fetched by its path from the
    // registry bulwark is configured with (never from that host), and
    // checked against the signed integrity as any other.
    let r = get(b.0.addr, "/npm/foreign/-/foreign-1.0.0.tgz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.body,
        std::fs::read(verdaccio.tarball("foreign", "1.0.0")).unwrap()
    );
    // The scoped package comes from the internal registry, unsigned.
    let r = get(b.0.addr, "/npm/@acme%2fapp");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert!(
        j["versions"]["1.0.0"]["dist"].get("signatures").is_none(),
        "{j}"
    );
    let series = "bulwark_verifications_total{upstream=\"signed-registry\",check=\"npm registry signature\",outcome=\"fail\"}";
    let fails = metric(b.0.addr, series);
    assert!(fails >= 3, "failed signature checks counted: {fails}");

    // The keys bulwark pins, in the registry's format.
    let keys = get(b.0.addr, "/npm/-/npm/v1/keys").json();
    let ids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [test_key(1).1, test_key(2).1]);
    assert!(keys["keys"][0]["expires"].is_null());
    assert!(keys["keys"][1]["expires"]
        .as_str()
        .unwrap()
        .starts_with("2021-01-01"));

    // npm installs what verifies (a scoped package and its dependency)...
    let client = Npm::new(&dir.path().join("client"));
    let registry = format!("http://{}/npm/", b.0.addr);
    let project = empty_project(&dir.path().join("project"));
    let out = client.run(&project, &registry, "cache", &["install", "@acme/app"]);
    assert_success("npm install", &out);
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join("node_modules/signed/package.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["version"], "1.0.0");
    // npm's own signature verification (pacote, as `npm audit
    // signatures` runs it) accepts bulwark's packuments under the keys
    // bulwark answers.
    let out = npm_verify(&client, &registry, &["signed@1.0.0"]);
    assert_success("pacote verifySignatures", &out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("verified signed@1.0.0 {}", test_key(1).1)),
        "{text}"
    );
    // ...and not what does not.
    let out = client.run(&project, &registry, "cache", &["install", "expired"]);
    assert!(!out.status.success());
    assert!(!project.join("node_modules/expired").exists());
}
