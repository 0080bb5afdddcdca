//! The air gap for Go modules, end to end with the real `bulwark` binary,
//! the real `go` command and the Go fixture (Go's own checksum-database
//! code): an "outside" bulwark in front of the fixture `sync`s from a real
//! `go.sum` and `export`s a tar; an "inside" bulwark with `[server] offline
//! = true` `import`s it (verifying it again under its own pinned key and
//! trust state) and serves `go build` with nothing upstream reachable.
//! Tampered bundles are refused on import with the check named and nothing
//! of the bad artifact stored; a forked bundle quarantines the upstream.
//!
//! Needs the Debian packages `golang-go` and `golang-golang-x-mod-dev`.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bulwark::gomod::sumdb;
use support::airgap::{cli, dead_url, rewrite_tar, text};
use support::gofixture::{
    go_command, write_hello_app, write_hello_world, FixtureOptions, GoFixture,
};
use support::http::{get, Reply};
use support::npm::assert_success;
use support::serve::Running as Bulwark;

const GREET: &str = "example.com/greet";
const HELLO: &str = "example.com/Hello";
const UPSTREAM: &str = "fixture";
const GREET_ZIP: &str = "/example.com/greet/@v/v1.0.0.zip";
const HELLO_ZIP: &str = "/example.com/!hello/@v/v1.1.0.zip";
/// The bundle member of greet's zip.
const GREET_ZIP_MEMBER: &str = "gomod/fixture/proxy/example.com/greet/@v/v1.0.0.zip";

/// Modules Hello v1.1.0 → greet v1.0.0, and an app using Hello.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mods = tmp.path().join("mods");
        write_hello_world(&mods);
        let w = World { tmp };
        w.app("app");
        w
    }

    /// A fresh copy of the app (go.mod and main.go, no go.sum) in `dir`.
    fn app(&self, dir: &str) -> PathBuf {
        let app = self.path(dir);
        write_hello_app(&app);
        app
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn options(&self, key: &str) -> FixtureOptions {
        FixtureOptions {
            modules: self.path("mods"),
            key: self.path(key),
            ..FixtureOptions::default()
        }
    }

    /// A config `<side>.toml` with data dir `<side>-data`, its Go upstream
    /// at `url` (proxy) pinned to `vkey`.
    fn config(&self, side: &str, url: &str, name: &str, vkey: &str, server: &str) -> PathBuf {
        let file = self.path(&format!("{side}.toml"));
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server}\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"gomod\"\nurl = \"{url}\"\n\
             namespaces = [\"*\"]\nsumdb = {{ name = \"{name}\", url = \"{url}/sumdb/{name}\", key = \"{vkey}\" }}\n",
            self.path(&format!("{side}-data")).display(),
        );
        std::fs::write(&file, toml).expect("write config");
        file
    }

    fn outside(&self, fx: &GoFixture, side: &str) -> PathBuf {
        self.config(side, &fx.proxy_url(), &fx.name, &fx.vkey, "")
    }

    /// The inside: offline, its upstream's URL a port nothing listens on.
    fn inside(&self, name: &str, vkey: &str) -> PathBuf {
        self.inside_at("inside", name, vkey)
    }

    /// [`World::inside`] with its own config and data dir `side`.
    fn inside_at(&self, side: &str, name: &str, vkey: &str) -> PathBuf {
        self.config(side, &dead_url(), name, vkey, "offline = true")
    }
}

/// A running `bulwark serve`, killed and reaped on drop.
impl Bulwark {
    fn start(config: &Path) -> Bulwark {
        support::serve::start(config, "warn")
    }

    fn url(&self) -> String {
        format!("http://{}", self.0.addr)
    }

    fn get(&self, path: &str) -> Reply {
        get(self.0.addr, path)
    }
}

fn lookup_lines(fx: &GoFixture, escaped: &str) -> Vec<String> {
    let (status, body) = fx.get(&format!("/sumdb/{}/lookup/{escaped}", fx.name));
    assert_eq!(status, 200);
    let l = sumdb::Lookup::parse(&body).expect("lookup");
    l.record.lines().iter().map(|s| s.to_string()).collect()
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Outside: a go.sum made by the real `go` through the outside bulwark,
/// then `sync` (from a fresh store) and `export`. Returns the bundle.
fn outside_bundle(world: &World, fx: &GoFixture) -> PathBuf {
    let warm = world.outside(fx, "warm");
    {
        let b = Bulwark::start(&warm);
        let home = world.path("home-outside");
        let out = go_command(&home, &b.url(), &fx.vkey)
            .current_dir(world.path("app"))
            .args(["mod", "tidy"])
            .output()
            .expect("go");
        assert_success("go mod tidy through the outside bulwark", &out);
    }
    let config = world.outside(fx, "outside");
    let gosum = world.path("app/go.sum");
    let out = cli(&["sync", "--progress", "plain"], &config, &[&gosum]);
    assert_success("sync", &out);
    assert_eq!(
        text(&out.stdout).lines().next(),
        Some("verified: 2, already there: 0, refused: 0"),
        "{}",
        text(&out.stdout)
    );
    let bundle = world.path("bundle.tar");
    let out = cli(&["export"], &config, &[Path::new("--out"), &bundle]);
    assert_success("export", &out);
    bundle
}

#[test]
fn go_sync_export_import_then_go_builds_inside_with_nothing_reachable() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let mut want = lookup_lines(&fx, "example.com/!hello@v1.1.0");
    want.extend(lookup_lines(&fx, "example.com/greet@v1.0.0"));
    want.sort();
    assert_eq!(sorted_lines(&world.path("app/go.sum")), want);

    // A second sync finds everything verified already.
    let outside = world.path("outside.toml");
    let out = cli(
        &["sync", "--progress", "none"],
        &outside,
        &[&world.path("app/go.sum")],
    );
    assert_success("second sync", &out);
    assert!(text(&out.stdout).starts_with("verified: 0, already there: 2, refused: 0"));

    // A go.sum pinning another hash is refused, naming the check.
    let bad = world.path("bad/go.sum");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    let forged = std::fs::read_to_string(world.path("app/go.sum"))
        .unwrap()
        .replacen("h1:", "h1:AAAA", 1);
    std::fs::write(&bad, forged).unwrap();
    let out = cli(&["sync", "--progress", "none"], &outside, &[&bad]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains(": lockfile: "),
        "{}",
        text(&out.stdout)
    );

    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx); // nothing upstream is reachable from here on

    let inside = world.inside(&name, &vkey);
    let out = cli(&["import", "--progress", "plain"], &inside, &[&bundle]);
    assert_success("import", &out);
    assert!(
        text(&out.stdout).starts_with("verified: 2, already there: 0, refused: 0"),
        "{}",
        text(&out.stdout)
    );
    // Re-import is a no-op.
    let out = cli(&["import", "--progress", "none"], &inside, &[&bundle]);
    assert_success("re-import", &out);
    assert!(text(&out.stdout).starts_with("verified: 0, already there: 2, refused: 0"));

    // The real go command through the offline inside bulwark.
    let b = Bulwark::start(&inside);
    let app = world.app("app-inside");
    let home = world.path("home-inside");
    let out = go_command(&home, &b.url(), &vkey)
        .current_dir(&app)
        .args(["build", "-o", "app.bin", "."])
        .output()
        .expect("go");
    assert_success("go build through the inside bulwark", &out);
    let run = Command::new(app.join("app.bin")).output().expect("run app");
    assert_eq!(text(&run.stdout), "hello, world\n");
    assert_eq!(sorted_lines(&app.join("go.sum")), want);
    let out = go_command(&world.path("home-inside2"), &b.url(), &vkey)
        .current_dir(&app)
        .args(["mod", "download", "-json", &format!("{GREET}@v1.0.0")])
        .output()
        .expect("go");
    assert_success("go mod download through the inside bulwark", &out);

    // Served with the stale Warning; what was never imported is refused
    // with check `offline`.
    let zip = b.get(HELLO_ZIP);
    assert_eq!(zip.status, 200);
    let w = zip.header("warning").expect("Warning header offline");
    assert!(w.starts_with("110 bulwark") && w.contains(UPSTREAM), "{w}");
    let r = b.get("/example.com/other/@v/v1.0.0.zip");
    assert_eq!(r.json()["check"], "offline", "{}", text(&r.body));
    assert!(r.json()["message"]
        .as_str()
        .unwrap_or_default()
        .contains("offline"));
}

#[test]
fn import_refuses_an_altered_blob_and_stores_none_of_it() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);

    let bad = world.path("altered.tar");
    rewrite_tar(&bundle, &bad, |name, mut data| {
        if name == GREET_ZIP_MEMBER {
            // Inside the last file's data, not the zip's directory.
            let at = data.len() / 3;
            data[at] ^= 0x20;
        }
        data
    });
    import_refuses_greet_alone(&world.inside(&name, &vkey), &bad, &["h1", "zip"]);
}

/// Imports `bad` into `inside`: greet is refused with one of `checks`,
/// Hello verified; then greet is not served (nothing of it was stored)
/// and Hello is.
fn import_refuses_greet_alone(inside: &Path, bad: &Path, checks: &[&str]) {
    let out = cli(&["import", "--progress", "none"], inside, &[bad]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("verified: 1, already there: 0, refused: 1"),
        "{stdout}"
    );
    assert!(
        checks
            .iter()
            .any(|c| stdout.contains(&format!("refused {GREET}@v1.0.0: {c}: "))),
        "{stdout}"
    );
    let b = Bulwark::start(inside);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    let r = b.get(GREET_ZIP);
    assert_eq!(r.json()["check"], "offline", "{}", text(&r.body));
}

#[test]
fn import_refuses_a_tree_signed_by_another_key() {
    let world = World::new();
    let honest = GoFixture::start(&world.options("sumdb.key"));
    let (name, vkey) = (honest.name.clone(), honest.vkey.clone());
    drop(honest);
    // Another key of the same name signs the database the bundle carries.
    let other = GoFixture::start(&world.options("other.key"));
    assert_eq!(other.name, name);
    assert_ne!(other.vkey, vkey);
    let bundle = outside_bundle(&world, &other);
    drop(other);

    let inside = world.inside(&name, &vkey);
    let out = cli(&["import", "--progress", "none"], &inside, &[&bundle]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains(": signature: "), "{stdout}");
    assert!(
        stdout.starts_with("verified: 0, already there: 0"),
        "{stdout}"
    );
}

#[test]
fn import_of_a_forked_history_quarantines_the_upstream() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);
    let inside = world.inside(&name, &vkey);
    assert_success(
        "import",
        &cli(&["import", "--progress", "none"], &inside, &[&bundle]),
    );

    // The same key signs a history whose greet record differs: a fork.
    let mut opts = world.options("sumdb.key");
    opts.log_altered = vec![format!("{GREET}@v1.0.0")];
    let forked = GoFixture::start(&opts);
    let list = world.path("list.txt");
    std::fs::write(
        &list,
        format!("gomod {GREET} v1.0.0\ngomod {HELLO} v1.1.0\n"),
    )
    .unwrap();
    let config = world.outside(&forked, "forked");
    assert_success(
        "sync from the forked database",
        &cli(&["sync", "--progress", "none"], &config, &[&list]),
    );
    let forked_bundle = world.path("forked.tar");
    assert_success(
        "export",
        &cli(&["export"], &config, &[Path::new("--out"), &forked_bundle]),
    );
    drop(forked);

    let out = cli(
        &["import", "--progress", "none"],
        &inside,
        &[&forked_bundle],
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(": fork: ") || stdout.contains(": consistency: "),
        "{stdout}"
    );
    let out = cli(&["upstream", "list"], &inside, &[]);
    assert!(
        text(&out.stdout).contains("QUARANTINED"),
        "{}",
        text(&out.stdout)
    );
    // Nothing is served from it now, even what was verified before.
    let b = Bulwark::start(&inside);
    assert_eq!(b.get(HELLO_ZIP).json()["check"], "quarantine");
}

#[test]
fn import_refuses_a_dropped_or_truncated_tile_and_stores_nothing() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);
    let is_tile = |n: &str| n.starts_with("gomod/fixture/sumdb/tile/");
    let mut tiles = 0;
    rewrite_tar(&bundle, &world.path("probe.tar"), |n, d| {
        tiles += usize::from(is_tile(n));
        d
    });
    assert!(tiles > 0, "the bundle carries no tile");

    for (side, edit) in [("dropped", 0usize), ("truncated", 1)] {
        let bad = world.path(&format!("{side}.tar"));
        // Dropped: the member renamed out of the sumdb layout. Truncated:
        // its last hash cut off.
        let mut ar = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
        let mut out = tar::Builder::new(std::fs::File::create(&bad).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut n = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if is_tile(&n) {
                if edit == 0 {
                    n = format!("dropped/{n}");
                } else {
                    data.truncate(data.len().saturating_sub(32));
                }
            }
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            out.append_data(&mut h, &n, &data[..]).unwrap();
        }
        out.finish().unwrap();
        let inside = world.inside_at(side, &name, &vkey);
        let out = cli(&["import", "--progress", "none"], &inside, &[&bad]);
        assert!(!out.status.success(), "{side}: {}", text(&out.stdout));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("verified: 0, already there: 0, refused: 2"),
            "{side}: {stdout}"
        );
        // The missing tile is named (the bundle answers 404 for it); a
        // short one fails the tile check.
        let named = if edit == 0 {
            "sumdb/tile/8/0/000.p/2: answered HTTP 404"
        } else {
            ": tiles: "
        };
        assert!(stdout.contains(named), "{side}: {stdout}");
        let b = Bulwark::start(&inside);
        for path in [HELLO_ZIP, GREET_ZIP] {
            let r = b.get(path);
            assert_eq!(r.json()["check"], "offline", "{side}: {}", text(&r.body));
        }
    }
}

/// The blobs under `<data>/blobs/sha256`, each checked to hash to its name.
/// The member names of a tar, sorted.
fn member_names(tar_file: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(tar_file).expect("open tar"));
    let mut out: Vec<String> = ar
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

fn stored_blobs(data: &Path) -> Vec<String> {
    use sha2::Digest as _;
    let mut out = Vec::new();
    let Ok(shards) = std::fs::read_dir(data.join("blobs/sha256")) else {
        return out;
    };
    for shard in shards {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                name,
                "a stored blob does not hash to its name"
            );
            out.push(name);
        }
    }
    out.sort();
    out
}

#[test]
fn an_import_killed_anywhere_then_run_again_ends_with_the_same_store() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);

    let clean = world.inside_at("clean", &name, &vkey);
    assert_success(
        "import",
        &cli(&["import", "--progress", "none"], &clean, &[&bundle]),
    );
    let want = stored_blobs(&world.path("clean-data"));
    assert!(!want.is_empty());

    // SIGKILL at spread points of the import (from before it opens the
    // store to after it wrote everything), each followed by a check that
    // only whole blobs are stored, then one complete run.
    let killed = world.inside_at("killed", &name, &vkey);
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["import", "--progress", "none", "--config"])
            .arg(&killed)
            .arg(&bundle)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start import");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        stored_blobs(&world.path("killed-data"));
    }
    let out = cli(&["import", "--progress", "none"], &killed, &[&bundle]);
    assert_success("import after kills", &out);
    assert!(
        text(&out.stdout).contains("refused: 0"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(stored_blobs(&world.path("killed-data")), want);
    let b = Bulwark::start(&killed);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    assert_eq!(b.get(GREET_ZIP).status, 200);
}

/// A world whose outside synced the app (its fixture stopped again): the
/// outside's config, and the checksum database's name and key.
fn synced_outside() -> (World, PathBuf, String, String) {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    outside_bundle(&world, &fx);
    let config = world.outside(&fx, "outside");
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    (world, config, name, vkey)
}

/// `export --sign-key` signs the manifest with the operator's key
/// (`bulwark keygen`); `import --manifest-key` takes the bundle only when
/// that signature verifies and every member is the one the manifest lists,
/// before anything of it is stored.
#[test]
fn a_signed_manifest_is_required_and_checked_on_import() {
    let (world, config, name, vkey) = synced_outside();

    // The operator's key, and a stranger's.
    let keygen = |file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["keygen", "bundles.example/outside", "--out"])
            .arg(world.path(file))
            .output()
            .expect("keygen");
        assert_success("keygen", &out);
        text(&out.stdout).trim().to_string()
    };
    let key = keygen("outside.key");
    let stranger = keygen("stranger.key");
    assert_ne!(key, stranger);
    // keygen never overwrites a key.
    let again = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["keygen", "bundles.example/outside", "--out"])
        .arg(world.path("outside.key"))
        .output()
        .unwrap();
    assert!(!again.status.success());

    let bundle = world.path("signed.tar");
    let key_file = world.path("outside.key");
    let out = cli(
        &["export"],
        &config,
        &[
            Path::new("--out"),
            &bundle,
            Path::new("--sign-key"),
            &key_file,
        ],
    );
    assert_success("export --sign-key", &out);

    let import = |side: &str, bundle: &Path, key: &str| {
        let inside = world.inside_at(side, &name, &vkey);
        let out = cli(
            &["import", "--progress", "none", "--manifest-key", key],
            &inside,
            &[bundle],
        );
        (out, world.path(&format!("{side}-data")))
    };
    // Under the stranger's key: refused, nothing stored.
    let (out, data) = import("stranger", &bundle, &stranger);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bundle refused: manifest: manifest signature"),
        "{err}"
    );
    assert!(stored_blobs(&data).is_empty());
    // One member changed on the way, under the right key: refused before
    // anything is verified or stored, naming the member.
    let altered = world.path("altered.tar");
    rewrite_tar(&bundle, &altered, |member, mut data| {
        if member == GREET_ZIP_MEMBER {
            let at = data.len() / 3;
            data[at] ^= 0x20;
        }
        data
    });
    let (out, data) = import("altered", &altered, &key);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("member {GREET_ZIP_MEMBER}: expected sha256")),
        "{err}"
    );
    assert!(stored_blobs(&data).is_empty());
    // A member added on the way.
    let added = world.path("added.tar");
    {
        let mut ar = tar::Archive::new(std::fs::File::open(&bundle).unwrap());
        let mut out = tar::Builder::new(std::fs::File::create(&added).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let path = e.path().unwrap().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.append_data(&mut h, path, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        out.append_data(&mut h, "gomod/fixture/proxy/extra", &b"x"[..])
            .unwrap();
        out.finish().unwrap();
    }
    let (out, _) = import("added", &added, &key);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("gomod/fixture/proxy/extra is not in the signed manifest"),
        "{}",
        text(&out.stderr)
    );
    // The bundle as signed: imported.
    let (out, data) = import("inside", &bundle, &key);
    assert_success("import --manifest-key", &out);
    assert!(!stored_blobs(&data).is_empty());
}

/// `export --since` carries only what was verified since then, and
/// `--from` only what the lockfiles name (with the tree and the proofs
/// they need).
#[test]
fn export_since_a_time_or_from_lockfiles_carries_only_those() {
    let (world, config, name, vkey) = synced_outside();
    let members = |bundle: &Path| -> Vec<String> {
        let mut ar = tar::Archive::new(std::fs::File::open(bundle).unwrap());
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .filter(|n| n.contains("/proxy/"))
            .collect()
    };
    let export = |name: &str, extra: &[&str]| {
        let bundle = world.path(name);
        let mut tail: Vec<&Path> = vec![Path::new("--out"), &bundle];
        tail.extend(extra.iter().map(Path::new));
        let out = cli(&["export"], &config, &tail);
        assert_success("export", &out);
        members(&bundle)
    };
    let all = export("all.tar", &[]);
    assert_eq!(all.len(), 4, "{all:?}");
    // Each record's inclusion also comes in the C2SP form, which
    // `bulwark verify proof` checks under the log's key.
    let proof = {
        let mut ar = tar::Archive::new(std::fs::File::open(world.path("all.tar")).unwrap());
        let mut e = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| {
                e.path().unwrap().to_string_lossy()
                    == format!("gomod/{UPSTREAM}/tlog-proof/{GREET}@v1.0.0")
            })
            .expect("a tlog-proof member");
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        data
    };
    let parsed = bulwark::tlog::proof::TlogProof::parse(&proof).unwrap();
    let entry = parsed.extra.clone().unwrap();
    assert!(String::from_utf8_lossy(&entry).starts_with(&format!("{GREET} v1.0.0 h1:")));
    for (file, bytes) in [
        ("greet.tlog-proof", proof.clone()),
        ("greet.entry", entry.clone()),
        (
            "log.policy",
            format!("log {vkey}\nquorum none\n").into_bytes(),
        ),
        ("other.entry", b"example.com/other v1.0.0 h1:x\n".to_vec()),
    ] {
        std::fs::write(world.path(file), bytes).unwrap();
    }
    let verify = |entry: &str| {
        Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["verify", "proof", "--policy"])
            .arg(world.path("log.policy"))
            .arg("--entry")
            .arg(world.path(entry))
            .arg(world.path("greet.tlog-proof"))
            .output()
            .unwrap()
    };
    assert_success("bulwark verify proof", &verify("greet.entry"));
    assert!(!verify("other.entry").status.success());
    assert_eq!(export("past.tar", &["--since", "2020-01-01"]), all);
    assert!(export("future.tar", &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    let list = world.path("greet.list");
    std::fs::write(&list, format!("gomod {GREET} v1.0.0\n")).unwrap();
    let greet = export("greet.tar", &["--from", list.to_str().unwrap()]);
    assert_eq!(greet.len(), 2, "{greet:?}");
    assert!(
        greet.iter().all(|m| m.contains("/example.com/greet/")),
        "{greet:?}"
    );
    // It carries what proves them: an offline inside imports it.
    let inside = world.inside(&name, &vkey);
    let out = cli(
        &["import", "--progress", "none"],
        &inside,
        &[&world.path("greet.tar")],
    );
    assert_success("import of a --from bundle", &out);
    assert_eq!(
        text(&out.stdout).lines().next(),
        Some("verified: 1, already there: 0, refused: 0")
    );
    // A time that is not one is refused.
    let bundle = world.path("bad.tar");
    let out = cli(
        &["export"],
        &config,
        &[
            Path::new("--out"),
            &bundle,
            Path::new("--since"),
            Path::new("last week"),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--since \"last week\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_import_and_sync_run_inside_a_running_serve_which_serves_at_once() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let first = outside_bundle(&world, &fx);
    // The outside keeps serving while it exports.
    let bundle = world.path("while-serving.tar");
    {
        let outside = world.path("outside.toml");
        let _b = Bulwark::start(&outside);
        let out = cli(&["export"], &outside, &[Path::new("--out"), &bundle]);
        assert_success("export from the running outside", &out);
        assert!(
            text(&out.stderr).contains("running in the bulwark serve"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(&format!("wrote {}", bundle.display())),
            "{}",
            text(&out.stdout)
        );
    }
    assert_eq!(member_names(&bundle), member_names(&first));
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);

    let inside = world.inside(&name, &vkey);
    let b = Bulwark::start(&inside);
    let r = b.get(GREET_ZIP);
    assert_eq!(r.json()["check"], "offline", "{}", text(&r.body));
    // The running serve holds the data directory: import runs in it.
    let out = cli(&["import", "--progress", "plain"], &inside, &[&bundle]);
    assert_success("import into the running serve", &out);
    assert!(
        text(&out.stderr).contains("running in the bulwark serve"),
        "{}",
        text(&out.stderr)
    );
    // Its progress lines come back, then its summary.
    assert!(
        text(&out.stderr).contains(&format!("verified {GREET}@v1.0.0")),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("verified: 2, already there: 0, refused: 0"),
        "{}",
        text(&out.stdout)
    );
    // Served at once, without a restart, to the real go command.
    assert_eq!(b.get(GREET_ZIP).status, 200);
    let app = world.app("app-running");
    let out = go_command(&world.path("home-running"), &b.url(), &vkey)
        .current_dir(&app)
        .args(["build", "-o", "app.bin", "."])
        .output()
        .expect("go");
    assert_success("go build through the running inside", &out);
    // sync runs in it too: everything the go.sum names is there already.
    let out = cli(
        &["sync", "--progress", "none"],
        &inside,
        &[&world.path("app/go.sum")],
    );
    assert_success("sync in the running serve", &out);
    assert!(
        text(&out.stdout).starts_with("verified: 0, already there: 2, refused: 0"),
        "{}",
        text(&out.stdout)
    );
    // A refusal inside the serve is the command's exit status.
    let bad = world.path("altered.tar");
    rewrite_tar(&bundle, &bad, |member, data| {
        if member == format!("gomod/{UPSTREAM}/sumdb/latest") {
            let mut t = data.clone();
            let at = t.len() - 10;
            t[at] ^= 0x01;
            return t;
        }
        data
    });
    let out = cli(&["import", "--progress", "none"], &inside, &[&bad]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(": signature: "),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(b.get(GREET_ZIP).status, 200, "the serve kept serving");
    // A serve killed leaves its socket behind: the next import runs in
    // its own process, and finds everything there.
    drop(b);
    let out = cli(&["import", "--progress", "none"], &inside, &[&bundle]);
    assert_success("import after the serve died", &out);
    assert!(!text(&out.stderr).contains("running in the bulwark serve"));
    assert!(text(&out.stdout).starts_with("verified: 0, already there: 2, refused: 0"));
}

#[test]
fn import_refuses_a_module_whose_tlog_proof_does_not_prove_it() {
    let world = World::new();
    let fx = GoFixture::start(&world.options("sumdb.key"));
    let bundle = outside_bundle(&world, &fx);
    let (name, vkey) = (fx.name.clone(), fx.vkey.clone());
    drop(fx);

    let member = format!("gomod/{UPSTREAM}/tlog-proof/{GREET}@v1.0.0");
    let bad = world.path("bad-proof.tar");
    let mut seen = false;
    rewrite_tar(&bundle, &bad, |name, data| {
        if name != member {
            return data;
        }
        seen = true;
        // Claim another index for the same record.
        let mut p = bulwark::tlog::proof::TlogProof::parse(&data).expect("tlog-proof");
        p.index += 1;
        p.to_bytes()
    });
    assert!(seen, "the bundle has {member}");
    import_refuses_greet_alone(&world.inside(&name, &vkey), &bad, &["tlog-proof"]);
}

#[test]
fn a_later_bundle_is_proven_consistent_with_what_the_inside_imported_before() {
    let world = World::new();
    // The database logs Hello (record 0), then greet (record 1); first it
    // serves the tree of Hello alone.
    let mut opts = world.options("sumdb.key");
    opts.tree_size = Some(1);
    let older = GoFixture::start(&opts);
    let (addr, name, vkey) = (older.addr, older.name.clone(), older.vkey.clone());
    let config = world.outside(&older, "outside");
    let inside = world.inside(&name, &vkey);
    let mut fx = Some(older);
    let mut trees = Vec::new();
    for (n, (module, version)) in [(HELLO, "v1.1.0"), (GREET, "v1.0.0")].iter().enumerate() {
        if n == 1 {
            // The same database, its whole tree.
            drop(fx.take());
            let mut opts = world.options("sumdb.key");
            opts.listen = Some(addr);
            fx = Some(GoFixture::start(&opts));
        }
        let list = world.path(&format!("list{n}.txt"));
        std::fs::write(&list, format!("gomod {module} {version}\n")).unwrap();
        assert_success(
            "sync",
            &cli(&["sync", "--progress", "none"], &config, &[&list]),
        );
        let bundle = world.path(&format!("bundle{n}.tar"));
        assert_success(
            "export",
            &cli(
                &["export"],
                &config,
                &[Path::new("--out"), &bundle, Path::new("--from"), &list],
            ),
        );
        let out = cli(&["import", "--progress", "none"], &inside, &[&bundle]);
        assert_success("import", &out);
        assert!(
            text(&out.stdout).starts_with("verified: 1, already there: 0, refused: 0"),
            "{}",
            text(&out.stdout)
        );
        let out = cli(&["upstream", "list"], &inside, &[]);
        trees.push(text(&out.stdout));
    }
    assert!(trees[0].contains("size 1 "), "{}", trees[0]);
    assert!(trees[1].contains("size 2 "), "{}", trees[1]);
    drop(fx);
    let b = Bulwark::start(&inside);
    assert_eq!(b.get(GREET_ZIP).status, 200);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
}
