//! The air gap for npm, end to end with the real `bulwark` binary, the
//! real `npm` client and the real `verdaccio` (behind the tests' signing
//! registry, which adds registry signatures with test keys): an "outside"
//! bulwark `sync`s from the `package-lock.json` the real `npm install
//! --package-lock-only` wrote and `export`s a tar; an "inside" bulwark
//! with `[server] offline = true` `import`s it, checking every version's
//! registry signature under its own pinned keys and every tarball against
//! its `dist.integrity` again, and serves the real `npm install` (fresh
//! cache) with nothing upstream reachable. A lockfile integrity that is
//! not the verified one is refused (`lockfile`); a bundle whose
//! signatures the inside's keys do not verify, or with an altered
//! tarball, is refused on import with the check named and nothing of it
//! stored.

mod support;

use std::path::{Path, PathBuf};

use support::airgap::{alter_member, assert_refused, assert_summary, cli, dead_url, text, twice};
use support::http::send;
use support::npm::{
    assert_success, keys_json, make_package, publish, Npm, Sign, SigningRegistry, Verdaccio,
};
use support::serve::{stored_objects, Running as Bulwark};

const UPSTREAM: &str = "reg";
const BETA_MEMBER: &str = "npm/reg/tarball/beta/-/beta-2.0.0.tgz";
/// A package: name, version, dependencies.
type Package = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
/// alpha → beta, @acme/pad.
const PACKAGES: [Package; 3] = [
    ("@acme/pad", "1.0.0", &[]),
    ("beta", "2.0.0", &[]),
    (
        "alpha",
        "1.0.0",
        &[("beta", "^2.0.0"), ("@acme/pad", "^1.0.0")],
    ),
];

/// A config `<side>.toml` (data dir `<side>-data`) whose npm upstream at
/// `url` pins test key `key`.
fn config(dir: &Path, side: &str, url: &str, key: u8, server: &str) -> PathBuf {
    let keys = dir.join(format!("keys-{key}.json"));
    std::fs::write(&keys, keys_json(&[(key, "2020-01-01T00:00:00.000Z", None)])).unwrap();
    let file = dir.join(format!("{side}.toml"));
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server}\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"npm\"\nurl = \"{url}\"\n\
             namespaces = [\"*\"]\nsignatures = \"required\"\nregistry_keys = \"{}\"\n\
             attestations = \"off\"\n",
            dir.join(format!("{side}-data")).display(),
            keys.display()
        ),
    )
    .unwrap();
    file
}

/// The inside: offline, its upstream a port nothing listens on.
fn inside(dir: &Path, side: &str, key: u8) -> PathBuf {
    let url = format!("{}/", dead_url());
    config(dir, side, &url, key, "offline = true")
}

fn project(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"app\",\"version\":\"1.0.0\",\"dependencies\":{\"alpha\":\"^1.0.0\"}}",
    )
    .unwrap();
    dir.to_path_buf()
}

/// Outside: a signed registry with alpha → beta, @acme/pad; the lockfile
/// npm writes against it; `sync` of it and `export`.
struct World {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    lock: PathBuf,
}

fn outside() -> World {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let upstream = Verdaccio::start(&d.join("verdaccio"));
    let signing = SigningRegistry::start(upstream.addr, |_, _| Sign::Key(1));
    let publisher = Npm::new(&d.join("publisher"));
    let pkgs = d.join("packages");
    for (name, version, deps) in PACKAGES {
        publish(
            &publisher,
            &upstream,
            &make_package(&pkgs, name, version, deps),
        );
    }
    let app = project(&d.join("app"));
    let client = Npm::new(&d.join("client"));
    let out = client.run(
        &app,
        &signing.url(),
        "cache-lock",
        &["install", "--package-lock-only"],
    );
    assert_success("npm install --package-lock-only", &out);
    let lock = app.join("package-lock.json");

    let config = config(d, "outside", &signing.url(), 1, "");
    twice("sync", &config, &lock, 3);

    // A lockfile pinning another integrity is refused, nothing stored.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    doc["packages"]["node_modules/beta"]["integrity"] =
        serde_json::json!(format!("sha512-{}", "A".repeat(86) + "=="));
    let bad = d.join("bad/package-lock.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, doc.to_string()).unwrap();
    let fresh = self::config(d, "fresh", &signing.url(), 1, "");
    let out = cli(&["sync", "--progress", "none"], &fresh, &[&bad]);
    assert_refused(&out, "refused beta@2.0.0: lockfile: ");
    assert_eq!(stored_objects(&d.join("fresh-data")), 2);

    let bundle = d.join("bundle.tar");
    let out = cli(&["export"], &config, &[Path::new("--out"), &bundle]);
    assert_success("export", &out);
    assert!(
        text(&out.stdout).contains("upstream reg: 3 packument(s), 3 tarball(s)"),
        "{}",
        text(&out.stdout)
    );
    World { dir, bundle, lock }
}

#[test]
fn npm_sync_export_import_then_npm_installs_inside_with_nothing_reachable() {
    let world = outside(); // the registries are stopped when it returns
    let d = world.dir.path();

    // Another side pinning another registry key verifies nothing of it.
    let stranger = inside(d, "stranger", 2);
    let out = cli(
        &["import", "--progress", "none"],
        &stranger,
        &[&world.bundle],
    );
    assert_refused(&out, "refused beta@2.0.0: npm registry signature: ");
    assert_eq!(stored_objects(&d.join("stranger-data")), 0);

    let inside = inside(d, "inside", 1);
    twice("import", &inside, &world.bundle, 3);

    let b: Bulwark = support::serve::start(&inside, "warn");
    let registry = format!("http://{}/npm/", b.0.addr);
    // Served with the stale Warning; what was never imported is refused
    // with check `offline`.
    let p = send(b.0.addr, "GET", "/npm/alpha", &[]);
    assert_eq!(p.status, 200, "{}", p.text());
    let w = p.header("warning").expect("Warning offline");
    assert!(w.starts_with("110 bulwark") && w.contains(UPSTREAM), "{w}");
    let t = send(b.0.addr, "GET", "/npm/beta/-/beta-2.0.0.tgz", &[]);
    assert_eq!(t.status, 200, "{}", t.text());
    assert!(
        t.header("warning").is_some_and(|w| w.contains(UPSTREAM)),
        "{:?}",
        t.header("warning")
    );
    let r = send(b.0.addr, "GET", "/npm/gamma", &[]);
    assert_eq!(r.json()["check"], "offline", "{}", r.text());

    // The real npm install from the lockfile, fresh cache, its registry
    // host replaced by the inside's.
    let app = project(&d.join("app-inside"));
    std::fs::copy(&world.lock, app.join("package-lock.json")).unwrap();
    let client = Npm::new(&d.join("client-inside"));
    let out = client.run(
        &app,
        &registry,
        "cache-inside",
        &["install", "--replace-registry-host=always"],
    );
    assert_success("npm install through the offline inside", &out);
    for name in ["alpha", "beta", "@acme/pad"] {
        assert!(
            app.join("node_modules")
                .join(name)
                .join("package.json")
                .exists(),
            "{name} not installed"
        );
    }
}

#[test]
fn import_refuses_an_altered_tarball_and_stores_none_of_it() {
    let world = outside();
    let d = world.dir.path();
    let bad = d.join("altered.tar");
    alter_member(&world.bundle, &bad, BETA_MEMBER);

    let inside = inside(d, "inside", 1);
    let out = cli(&["import", "--progress", "none"], &inside, &[&bad]);
    assert_refused(&out, "refused beta@2.0.0: digest: ");
    assert_summary(&out, 2, 0, 1);
    assert_eq!(stored_objects(&d.join("inside-data")), 2);
}
