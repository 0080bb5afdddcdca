//! npm through bulwark, end to end, with the real `npm` client against the
//! real `verdaccio` registry over loopback (`signatures = "off"`: tarballs
//! are checked against the sha512 of the packument's `dist.integrity`).
//!
//! - npm installs a package with a dependency and a scoped dependency
//!   through bulwark with an empty cache; the packuments bulwark writes,
//!   full and abbreviated, point every tarball at bulwark;
//! - with the upstream stopped, the verified tarballs still install, also
//!   after a restart (the packuments from the last good copy bulwark kept,
//!   with a `Warning`; the tarballs from the store);
//! - `min_release_age`: a version bulwark first saw less than that long
//!   ago is hidden and its tarball refused, whatever the packument's
//!   `time` claims, and the first sighting survives a restart;
//! - a tarball whose bytes differ from `dist.integrity` is refused (check
//!   `digest`, naming the upstream, the expected and the seen sha512) and
//!   nothing is stored.

mod support;

use std::path::{Path, PathBuf};

use support::http::{get, send};
use support::npm::{
    assert_success, empty_project, make_package, publish, Npm, Sign, SigningRegistry, Verdaccio,
};
use support::serve::{stored_objects, Running as Bulwark};

const UPSTREAM: &str = "verdaccio";

impl Bulwark {
    fn registry(&self) -> String {
        format!("http://{}/npm/", self.0.addr)
    }
}

fn start(config: &Path) -> Bulwark {
    support::serve::start(config, "bulwark=info")
}

fn write_config(dir: &Path, url: &str) -> PathBuf {
    write_config_with(dir, url, "")
}

fn write_config_with(dir: &Path, url: &str, extra: &str) -> PathBuf {
    let file = dir.join("bulwark.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"npm\"\nurl = \"{url}\"\n\
             namespaces = [\"*\"]\nsignatures = \"off\"\nattestations = \"off\"\n{extra}\n",
            dir.join("data").display()
        ),
    )
    .expect("write config");
    file
}

#[test]
fn npm_installs_through_bulwark_and_verified_tarballs_outlive_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Verdaccio::start(&dir.path().join("verdaccio"));
    let publisher = Npm::new(&dir.path().join("publisher"));
    let pkgs = dir.path().join("packages");
    for (name, version, deps) in [
        ("@acme/pad", "1.0.0", vec![]),
        ("beta", "2.0.0", vec![]),
        (
            "alpha",
            "1.0.0",
            vec![("beta", "^2.0.0"), ("@acme/pad", "^1.0.0")],
        ),
    ] {
        publish(
            &publisher,
            &upstream,
            &make_package(&pkgs, name, version, &deps),
        );
    }
    let config = write_config(dir.path(), &upstream.url());
    let b = start(&config);

    // Abbreviated (what npm install asks for) and full packuments, scoped
    // names in both spellings, every tarball on bulwark.
    for path in ["/npm/@acme%2fpad", "/npm/@acme/pad"] {
        let r = send(
            b.0.addr,
            "GET",
            path,
            &[(
                "Accept",
                "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
            )],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/vnd.npm.install-v1+json")
        );
        let j = r.json();
        assert_eq!(j["dist-tags"]["latest"], "1.0.0");
        assert_eq!(
            j["versions"]["1.0.0"]["dist"]["tarball"],
            format!("http://{}/npm/@acme/pad/-/pad-1.0.0.tgz", b.0.addr)
        );
        assert!(j["versions"]["1.0.0"]["dist"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha512-"));
        assert!(j.get("time").is_none(), "{j}");
    }
    let full = get(b.0.addr, "/npm/alpha");
    assert_eq!(full.status, 200);
    assert_eq!(
        full.header("content-type").as_deref(),
        Some("application/json")
    );
    let j = full.json();
    assert!(j["time"].get("1.0.0").is_some(), "{j}");
    assert_eq!(j["versions"]["1.0.0"]["dependencies"]["beta"], "^2.0.0");
    assert!(!full.text().contains(&upstream.addr.to_string()));

    let client = Npm::new(&dir.path().join("client"));
    let project = empty_project(&dir.path().join("project"));
    let out = client.run(&project, &b.registry(), "cache-1", &["install", "alpha"]);
    assert_success("npm install", &out);
    for (name, version) in [
        ("alpha", "1.0.0"),
        ("beta", "2.0.0"),
        ("@acme/pad", "1.0.0"),
    ] {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(project.join("node_modules").join(name).join("package.json"))
                .unwrap_or_else(|e| panic!("{name} not installed: {e}")),
        )
        .unwrap();
        assert_eq!(m["version"], version);
    }
    let lock = std::fs::read_to_string(project.join("package-lock.json")).unwrap();
    assert!(
        lock.contains(&format!("http://{}/npm/beta/-/beta-2.0.0.tgz", b.0.addr)),
        "{lock}"
    );

    // The upstream goes away: a fresh install still works from what was
    // verified.
    drop(upstream);
    let project2 = empty_project(&dir.path().join("project2"));
    let out = client.run(&project2, &b.registry(), "cache-2", &["install", "alpha"]);
    assert_success("npm install with the upstream down", &out);
    assert!(project2.join("node_modules/@acme/pad/index.js").exists());

    // After a restart with the upstream down, the packuments come from the
    // last good copy bulwark kept (checked again), with a Warning, and the
    // tarballs from the store (ETag = digest, Range): npm still installs.
    drop(b);
    let b = start(&config);
    let r = get(b.0.addr, "/npm/alpha");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("warning")
            .is_some_and(|w| w.starts_with("110 bulwark") && w.contains(UPSTREAM)),
        "{}",
        r.head
    );
    let project3 = empty_project(&dir.path().join("project3"));
    let out = client.run(&project3, &b.registry(), "cache-3", &["install", "alpha"]);
    assert_success("npm install after a restart with the upstream down", &out);
    assert!(project3.join("node_modules/beta/index.js").exists());
    let r = get(b.0.addr, "/npm/beta/-/beta-2.0.0.tgz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("etag").is_some_and(|e| e.starts_with("\"sha256:")));
    assert_eq!(&r.body[..2], &[0x1f, 0x8b], "a gzip tarball");
    let part = send(
        b.0.addr,
        "GET",
        "/npm/beta/-/beta-2.0.0.tgz",
        &[("Range", "bytes=0-1")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, [0x1f, 0x8b]);
    let r = get(b.0.addr, "/npm/gamma/-/gamma-1.0.0.tgz");
    assert_ne!(r.status, 200);
    let r = get(b.0.addr, "/npm/gamma");
    assert_eq!(r.status, 502, "never seen, upstream down: {}", r.text());
    assert_eq!(r.json()["check"], "unreachable");
}

#[test]
fn a_tarball_whose_bytes_differ_from_dist_integrity_is_refused_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Verdaccio::start(&dir.path().join("verdaccio"));
    let publisher = Npm::new(&dir.path().join("publisher"));
    let pkg = make_package(&dir.path().join("packages"), "@acme/pad", "1.0.0", &[]);
    publish(&publisher, &upstream, &pkg);
    let b = start(&write_config(dir.path(), &upstream.url()));
    assert_eq!(get(b.0.addr, "/npm/@acme%2fpad").status, 200);

    // The registry's storage is edited after publishing: the tarball no
    // longer hashes to the integrity its packument names.
    let stored = upstream.tarball("@acme/pad", "1.0.0");
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();

    let before = stored_objects(&dir.path().join("data"));
    let r = get(b.0.addr, "/npm/@acme/pad/-/pad-1.0.0.tgz");
    assert_eq!(r.status, 502, "{}", r.text());
    let j = r.json();
    assert_eq!(j["upstream"], UPSTREAM, "{j}");
    assert_eq!(j["check"], "digest", "{j}");
    assert!(
        j["expected"].as_str().unwrap().starts_with("sha512:"),
        "{j}"
    );
    assert!(j["seen"].as_str().unwrap().starts_with("sha512:"), "{j}");
    assert_ne!(j["expected"], j["seen"], "{j}");
    assert!(j["error"].as_str().is_some(), "npm's error field: {j}");
    assert_eq!(stored_objects(&dir.path().join("data")), before);

    // And npm, asking through bulwark, gets no package.
    let client = Npm::new(&dir.path().join("client"));
    let project = empty_project(&dir.path().join("project"));
    let out = client.run(&project, &b.registry(), "cache", &["install", "@acme/pad"]);
    assert!(!out.status.success());
    assert!(!project.join("node_modules/@acme/pad").exists());
}

#[test]
fn a_version_younger_than_min_release_age_is_hidden_whatever_the_packument_time_says() {
    let dir = tempfile::tempdir().unwrap();
    let verdaccio = Verdaccio::start(&dir.path().join("verdaccio"));
    let publisher = Npm::new(&dir.path().join("publisher"));
    let pkg = make_package(&dir.path().join("packages"), "fresh", "1.0.0", &[]);
    publish(&publisher, &verdaccio, &pkg);
    // The registry claims every version is from 2015.
    let upstream = SigningRegistry::backdated(verdaccio.addr, |_, _| Sign::None);
    let raw = get(upstream.addr, "/fresh").json();
    assert_eq!(raw["time"]["1.0.0"], "2015-01-01T00:00:00.000Z");
    let config = write_config_with(dir.path(), &upstream.url(), "min_release_age = \"1h\"");
    let b = start(&config);

    let r = get(b.0.addr, "/npm/fresh");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert!(j["versions"].as_object().unwrap().is_empty(), "{j}");
    assert!(j["dist-tags"].get("latest").is_none(), "{j}");
    let refused = |b: &Bulwark| {
        let r = get(b.0.addr, "/npm/fresh/-/fresh-1.0.0.tgz");
        // A policy refusal, as for PyPI files.
        assert_eq!(r.status, 403, "{}", r.text());
        let j = r.json();
        assert_eq!(j["check"], "min release age", "{j}");
        assert_eq!(j["upstream"], UPSTREAM, "{j}");
        assert!(j["expected"].as_str().unwrap().contains("1h"), "{j}");
        j["seen"].as_str().unwrap().to_string()
    };
    let seen = refused(&b);
    assert!(seen.starts_with("first seen at "), "{seen}");
    let client = Npm::new(&dir.path().join("client"));
    let project = empty_project(&dir.path().join("project"));
    let out = client.run(
        &project,
        &b.registry(),
        "cache",
        &["install", "fresh@1.0.0"],
    );
    assert!(!out.status.success());

    // The first sighting is durable: after a restart it is the same time.
    drop(b);
    let b = start(&config);
    let again = refused(&b);
    let at = |s: &str| s.split(" (").next().unwrap().to_string();
    assert_eq!(at(&again), at(&seen));
}
