//! End-to-end proof that the Go test upstream is real: the real `go` command
//! (Debian's golang-go) downloads and builds modules from the fixture's
//! GOPROXY and checks them against its checksum database, and each of the
//! fixture's misbehaviours is caught by the `go` command itself. bulwark's
//! own pure pieces (`gomod::dirhash`, `gomod::sumdb`) are checked against the
//! same bytes.
//!
//! These tests run the `go` command straight against the fixture; the tests
//! of bulwark's GOPROXY front put bulwark in between.

mod support;

use bulwark::gomod::module::{ModuleVersion, ProxyRequest};
use bulwark::gomod::{dirhash, sumdb};
use std::process::Output;
use support::gofixture::{go_command, write_module, FixtureOptions, GoFixture, TileKind};

const GREET: &str = "example.com/greet";
const HELLO: &str = "example.com/Hello"; // upper case: exercises the !h encoding

/// Two modules, Hello v1.1.0 depending on greet v1.0.0, and an app using Hello.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mods = tmp.path().join("mods");
        write_module(
            &mods,
            GREET,
            "v1.0.0",
            &[
                ("go.mod", "module example.com/greet\n\ngo 1.19\n"),
                (
                    "greet.go",
                    "package greet\n\nfunc Hello() string { return \"hello\" }\n",
                ),
                ("LICENSE", "Public domain, for tests.\n"),
            ],
        );
        write_module(
            &mods,
            HELLO,
            "v1.1.0",
            &[
                (
                    "go.mod",
                    "module example.com/Hello\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n",
                ),
                (
                    "hello.go",
                    "package hello\n\nimport \"example.com/greet\"\n\nfunc Say() string { return greet.Hello() + \", world\" }\n",
                ),
                ("sub/doc.go", "// Package sub is empty.\npackage sub\n"),
            ],
        );
        let app = tmp.path().join("app");
        std::fs::create_dir_all(&app).expect("mkdir app");
        std::fs::write(
            app.join("go.mod"),
            "module example.com/app\n\ngo 1.19\n\nrequire example.com/Hello v1.1.0\n",
        )
        .expect("write app go.mod");
        std::fs::write(
            app.join("main.go"),
            "package main\n\nimport (\n\t\"fmt\"\n\n\thello \"example.com/Hello\"\n)\n\nfunc main() { fmt.Println(hello.Say()) }\n",
        )
        .expect("write app main.go");
        World { tmp }
    }

    fn options(&self) -> FixtureOptions {
        FixtureOptions {
            modules: self.tmp.path().join("mods"),
            key: self.tmp.path().join("sumdb.key"),
            ..FixtureOptions::default()
        }
    }

    fn app(&self) -> std::path::PathBuf {
        self.tmp.path().join("app")
    }

    /// Runs `go args...` in the app directory against `fx`, with a go
    /// home (GOPATH, caches) of the given name.
    fn go(&self, fx: &GoFixture, home: &str, args: &[&str]) -> Output {
        self.go_with_sumdb(fx, &fx.gosumdb(), home, args)
    }

    /// Like [`World::go`] with an explicit `GOSUMDB`.
    fn go_with_sumdb(&self, fx: &GoFixture, gosumdb: &str, home: &str, args: &[&str]) -> Output {
        let home = self.tmp.path().join(home);
        std::fs::create_dir_all(&home).expect("mkdir go home");
        go_command(&home, &fx.proxy_url(), gosumdb)
            .current_dir(self.app())
            .args(args)
            .output()
            .expect("run go")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn assert_refused(what: &str, out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "{what} succeeded but should have been refused\nstderr: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{what}: want {needle:?} in the error, got:\n{stderr}"
    );
}

/// The database's go.sum lines for module@version (escaped), via /lookup.
fn lookup_lines(fx: &GoFixture, escaped: &str) -> Vec<String> {
    let (status, body) = fx.get(&format!("/sumdb/{}/lookup/{escaped}", fx.name));
    assert_eq!(status, 200, "lookup {escaped}: {}", text(&body));
    let lookup = sumdb::Lookup::parse(&body).expect("parse lookup response");
    lookup
        .record
        .lines()
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn go_builds_a_module_with_a_dependency_and_go_sum_equals_the_database() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());

    let build = world.go(&fx, "home", &["build", "-o", "app.bin", "."]);
    assert_success("go build", &build);
    let run = std::process::Command::new(world.app().join("app.bin"))
        .output()
        .expect("run built app");
    assert_eq!(text(&run.stdout), "hello, world\n");

    let mut want = lookup_lines(&fx, "example.com/!hello@v1.1.0");
    want.extend(lookup_lines(&fx, "example.com/greet@v1.0.0"));
    want.sort();
    let go_sum = std::fs::read_to_string(world.app().join("go.sum")).expect("read go.sum");
    let mut got: Vec<String> = go_sum.lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, want, "go.sum lines differ from the database's records");
    assert_eq!(got.len(), 4);
}

#[test]
fn h1_hashes_computed_by_bulwark_equal_go_and_the_database() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());

    for (module, escaped, version) in [
        (HELLO, "example.com/!hello", "v1.1.0"),
        (GREET, "example.com/greet", "v1.0.0"),
    ] {
        let out = world.go(
            &fx,
            "home",
            &["mod", "download", "-json", &format!("{module}@{version}")],
        );
        assert_success("go mod download", &out);
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("download json");
        let go_sum = info["Sum"].as_str().expect("Sum");
        let go_mod_sum = info["GoModSum"].as_str().expect("GoModSum");

        let (status, zip) = fx.get(&format!("/{escaped}/@v/{version}.zip"));
        assert_eq!(status, 200);
        let (status, gomod) = fx.get(&format!("/{escaped}/@v/{version}.mod"));
        assert_eq!(status, 200);
        let mv = ModuleVersion::new(module, version).expect("module version");
        let zip_h1 =
            dirhash::hash_module_zip(&zip, &mv, &dirhash::Limits::default()).expect("hash zip");
        let mod_h1 = dirhash::hash_go_mod(&gomod);
        assert_eq!(zip_h1.to_string(), go_sum);
        assert_eq!(mod_h1.to_string(), go_mod_sum);

        // The zip Go downloaded is byte-for-byte what the fixture served.
        let cached = std::fs::read(info["Zip"].as_str().expect("Zip path")).expect("cached zip");
        assert_eq!(cached, zip);

        let (status, body) = fx.get(&format!("/sumdb/{}/lookup/{escaped}@{version}", fx.name));
        assert_eq!(status, 200);
        let lookup = sumdb::Lookup::parse(&body).expect("lookup");
        assert_eq!(lookup.record.path, module);
        assert_eq!(lookup.record.version, version);
        assert_eq!(lookup.record.zip_hash, zip_h1);
        assert_eq!(lookup.record.mod_hash, mod_h1);
    }
}

#[test]
fn sumdb_wire_formats_of_the_real_server_parse() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());

    let (status, latest) = fx.get(&format!("/sumdb/{}/latest", fx.name));
    assert_eq!(status, 200);
    let latest = std::str::from_utf8(&latest).expect("utf-8 note");
    let tree = sumdb::parse_tree(sumdb::note_text(latest).expect("note text")).expect("tree note");
    assert_eq!(tree.size, 2, "two modules logged at start-up");

    // Records are logged in (path, version) order: Hello < greet (upper case first).
    let (status, tile) = fx.get(&format!("/sumdb/{}/tile/8/data/000.p/2", fx.name));
    assert_eq!(status, 200);
    let records = sumdb::parse_data_tile(&tile, 0, 2).expect("data tile");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].path, HELLO);
    assert_eq!(records[1].path, GREET);

    // The leaf hashes of the data tile are the level-0 hash tile.
    let (status, hashes) = fx.get(&format!("/sumdb/{}/tile/8/0/000.p/2", fx.name));
    assert_eq!(status, 200);
    assert_eq!(hashes.len(), 64);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.leaf_hash().0.as_slice(), &hashes[32 * i..32 * (i + 1)]);
    }
    let root = bulwark::tlog::merkle::node_hash(&records[0].leaf_hash(), &records[1].leaf_hash());
    assert_eq!(root, tree.root);

    let (status, body) = fx.get(&format!(
        "/sumdb/{}/lookup/example.com/greet@v1.0.0",
        fx.name
    ));
    assert_eq!(status, 200);
    let lookup = sumdb::Lookup::parse(&body).expect("lookup");
    assert_eq!(lookup.id, 1);
    assert_eq!(lookup.record, records[1]);
    assert_eq!(
        sumdb::parse_tree(sumdb::note_text(&lookup.note).expect("note text")).expect("note"),
        tree
    );
}

#[test]
fn go_refuses_a_zip_altered_after_it_was_logged() {
    let world = World::new();
    let mut opts = world.options();
    opts.serve_altered_zip = vec![format!("{GREET}@v1.0.0")];
    let fx = GoFixture::start(&opts);
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_refused("altered zip", &out, "verifying module: checksum mismatch");
}

#[test]
fn go_refuses_a_go_mod_altered_after_it_was_logged() {
    let world = World::new();
    let mut opts = world.options();
    opts.serve_altered_mod = vec![format!("{GREET}@v1.0.0")];
    let fx = GoFixture::start(&opts);
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_refused(
        "altered go.mod",
        &out,
        "verifying go.mod: checksum mismatch",
    );
}

#[test]
fn go_refuses_a_tree_signed_by_another_key() {
    let world = World::new();
    let mut opts = world.options();
    opts.other_key = true;
    let fx = GoFixture::start(&opts);
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_refused(
        "foreign signature",
        &out,
        "note has no verifiable signatures",
    );
}

#[test]
fn go_refuses_a_hash_tile_altered_in_transit() {
    let world = World::new();
    let mut opts = world.options();
    opts.tamper_tile = Some(TileKind::Hash);
    let fx = GoFixture::start(&opts);
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_refused("altered tile", &out, "downloaded inconsistent tile");
}

#[test]
fn go_detects_a_fork_when_the_database_restarts_with_other_records() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_success("first download", &out);
    let addr = fx.addr;
    drop(fx);

    // Same key, same address, same size, other records: a fork. The go
    // command remembers the tree it saw under GOPATH/pkg/sumdb and must
    // notice.
    let mut opts = world.options();
    opts.log_altered = vec![format!("{HELLO}@v1.1.0")];
    opts.listen = Some(addr);
    let fx = GoFixture::start(&opts);
    assert_eq!(fx.addr, addr, "restarted in place");
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", &format!("{HELLO}@v1.1.0")],
    );
    assert_refused("forked database", &out, "server misbehavior detected");
}

#[test]
fn data_tile_tampering_changes_what_the_fixture_serves() {
    // The go command never reads data tiles, so check the fixture itself:
    // with -tamper-tile data the records no longer hash to the hash tile.
    let world = World::new();
    let mut opts = world.options();
    opts.tamper_tile = Some(TileKind::Data);
    let fx = GoFixture::start(&opts);
    let (_, tile) = fx.get(&format!("/sumdb/{}/tile/8/data/000.p/2", fx.name));
    let (_, hashes) = fx.get(&format!("/sumdb/{}/tile/8/0/000.p/2", fx.name));
    let records = sumdb::parse_data_tile(&tile, 0, 2).expect("still well-formed");
    assert_ne!(records[0].leaf_hash().0.as_slice(), &hashes[..32]);
    assert_eq!(records[1].leaf_hash().0.as_slice(), &hashes[32..64]);
}

#[test]
fn an_older_tree_can_be_served_on_purpose() {
    let world = World::new();
    let mut opts = world.options();
    opts.tree_size = Some(1);
    let fx = GoFixture::start(&opts);
    let (_, latest) = fx.get(&format!("/sumdb/{}/latest", fx.name));
    let tree = sumdb::note_text(std::str::from_utf8(&latest).expect("utf-8"))
        .and_then(sumdb::parse_tree)
        .expect("tree note");
    assert_eq!(tree.size, 1);
}

#[test]
fn bulwark_request_paths_use_the_same_case_encoding_as_go() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    // Added while the database runs: logged when first looked up.
    write_module(
        &world.tmp.path().join("mods"),
        HELLO,
        "v1.2.0-RC.1",
        &[
            ("go.mod", "module example.com/Hello\n\ngo 1.19\n"),
            ("hello.go", "package hello\n"),
        ],
    );
    let out = world.go(
        &fx,
        "home",
        &["mod", "download", "-json", &format!("{HELLO}@v1.2.0-RC.1")],
    );
    assert_success("go mod download", &out);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("download json");

    let mv = ModuleVersion::new(HELLO, "v1.2.0-RC.1").expect("module version");
    let zip_path = ProxyRequest::Zip(mv.clone()).to_path();
    assert_eq!(zip_path, "example.com/!hello/@v/v1.2.0-!r!c.1.zip");
    let (status, zip) = fx.get(&format!("/{zip_path}"));
    assert_eq!(status, 200);
    let h1 = dirhash::hash_module_zip(&zip, &mv, &dirhash::Limits::default()).expect("hash");
    assert_eq!(Some(h1.to_string().as_str()), info["Sum"].as_str());

    let (status, body) = fx.get(&format!("/sumdb/{}/lookup/{}", fx.name, mv.escaped()));
    assert_eq!(status, 200, "{}", text(&body));
    let lookup = sumdb::Lookup::parse(&body).expect("lookup");
    assert_eq!(lookup.record.module(), mv);
    assert_eq!(lookup.record.zip_hash, h1);
    assert_eq!(lookup.id, 2, "a third module, logged after the two others");
    let tree = sumdb::parse_tree(sumdb::note_text(&lookup.note).expect("note")).expect("tree");
    assert_eq!(tree.size, 3, "the tree grew by the new record");
}

#[test]
fn go_reaches_the_database_through_the_proxy_when_gosumdb_names_no_url() {
    // GOSUMDB with only the key: the go command asks the GOPROXY for
    // /sumdb/<name>/supported and then uses /sumdb/<name>/... on it. This is
    // how clients will reach the database through bulwark.
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let vkey = fx.vkey.clone();
    let out = world.go_with_sumdb(&fx, &vkey, "home", &["build", "-o", "app.bin", "."]);
    assert_success("go build with GOSUMDB=<key>", &out);
    let go_sum = std::fs::read_to_string(world.app().join("go.sum")).expect("read go.sum");
    for line in lookup_lines(&fx, "example.com/greet@v1.0.0") {
        assert!(go_sum.contains(&line), "go.sum lacks {line:?}");
    }
    // The go command cached the tree under the database's name.
    let cached = world
        .tmp
        .path()
        .join("home/gopath/pkg/sumdb")
        .join(&fx.name)
        .join("latest");
    assert!(cached.is_file(), "no cached tree at {}", cached.display());
}
