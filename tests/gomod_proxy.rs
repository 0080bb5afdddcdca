//! bulwark's Go-modules front end to end: the real `bulwark` binary between
//! the real `go` command and a real checksum database + GOPROXY (the Go
//! fixture built from golang.org/x/mod). The `go` command is given
//! `GOPROXY=<bulwark>` and `GOSUMDB=<verifier key>` with no URL, so it
//! reaches the database through bulwark's `/sumdb/<name>/...` routes.
//!
//! Covers: downloads and builds with go.sum equal to the database; each
//! attack refused with the failed check named and nothing served or kept;
//! quarantine and refusals surviving a restart of bulwark until
//! `bulwark upstream clear`; serving verified modules with the upstream
//! stopped; coalescing of concurrent requests for a missing object.
//!
//! Needs the Debian packages `golang-go` and `golang-golang-x-mod-dev`.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use bulwark::gomod::sumdb;
use support::gofixture::{
    go_command, write_hello_app, write_hello_world, write_module, FixtureOptions, GoFixture,
    TileKind,
};
use support::http::{get, Reply};

const GREET: &str = "example.com/greet";
const HELLO: &str = "example.com/Hello";
const UPSTREAM: &str = "fixture";

/// Modules Hello v1.1.0 → greet v1.0.0, and an app using Hello.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mods = tmp.path().join("mods");
        write_hello_world(&mods);
        write_hello_app(&tmp.path().join("app"));
        World { tmp }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn options(&self) -> FixtureOptions {
        FixtureOptions {
            modules: self.path("mods"),
            key: self.path("sumdb.key"),
            ..FixtureOptions::default()
        }
    }

    /// Writes bulwark's config for `fx` (data dir under the world).
    fn config(&self, fx: &GoFixture) -> PathBuf {
        self.config_with(fx, "")
    }

    /// Like [`World::config`] with extra `[server]` lines.
    fn config_with(&self, fx: &GoFixture, server: &str) -> PathBuf {
        let file = self.path("bulwark.toml");
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server}\n\
             [[upstream]]\nname = \"{UPSTREAM}\"\nprotocol = \"gomod\"\nurl = \"{}\"\n\
             namespaces = [\"*\"]\nsumdb = {{ name = \"{}\", url = \"{}\", key = \"{}\" }}\n",
            self.path("data").display(),
            fx.proxy_url(),
            fx.name,
            fx.sumdb_url(),
            fx.vkey
        );
        std::fs::write(&file, toml).expect("write config");
        file
    }

    /// Rewrites the config (same data dir) with extra `[server]` lines,
    /// for a fixture that is gone: its URLs are kept from the last config.
    fn config_with_fixture_url(&self, name: &str, vkey: &str, server: &str) -> PathBuf {
        let file = self.path("bulwark.toml");
        let old = std::fs::read_to_string(&file).expect("read config");
        assert!(old.contains(name) && old.contains(vkey));
        let (_, upstream) = old.split_once("[[upstream]]").expect("upstream section");
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server}\n[[upstream]]{upstream}",
            self.path("data").display(),
        );
        std::fs::write(&file, toml).expect("write config");
        file
    }

    /// Runs `go args...` in the app directory through bulwark.
    fn go(&self, b: &Bulwark, fx: &GoFixture, home: &str, args: &[&str]) -> Output {
        let home = self.path(home);
        std::fs::create_dir_all(&home).expect("mkdir home");
        go_command(&home, &b.url(), &fx.vkey)
            .current_dir(self.path("app"))
            .args(args)
            .output()
            .expect("run go")
    }
}

/// A running `bulwark serve`, killed and reaped on drop.
struct Bulwark {
    child: Child,
    addr: SocketAddr,
}

impl Bulwark {
    fn start(config: &Path) -> Bulwark {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bulwark");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("listening on ") {
                        break a.parse().expect("address");
                    }
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("bulwark exited before listening");
                }
            }
        };
        Bulwark { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn get(&self, path: &str) -> Reply {
        get(self.addr, path)
    }
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Asserts a JSON refusal with `status` naming the upstream and `check`.
fn assert_refused(r: &Reply, status: u16, check: &str) {
    assert_eq!(r.status, status, "body: {}", text(&r.body));
    let j = r.json();
    assert_eq!(j["upstream"], UPSTREAM, "{j}");
    assert_eq!(j["check"], check, "{j}");
}

fn bulwark_cli(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run bulwark cli")
}

fn lookup_lines(fx: &GoFixture, escaped: &str) -> Vec<String> {
    let (status, body) = fx.get(&format!("/sumdb/{}/lookup/{escaped}", fx.name));
    assert_eq!(status, 200);
    let l = sumdb::Lookup::parse(&body).expect("lookup");
    l.record.lines().iter().map(|s| s.to_string()).collect()
}

const GREET_ZIP: &str = "/example.com/greet/@v/v1.0.0.zip";
const GREET_MOD: &str = "/example.com/greet/@v/v1.0.0.mod";
const HELLO_ZIP: &str = "/example.com/!hello/@v/v1.1.0.zip";

#[test]
fn go_builds_through_bulwark_and_go_sum_equals_the_database() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));

    let out = world.go(&b, &fx, "home", &["build", "-o", "app.bin", "."]);
    assert_success("go build through bulwark", &out);
    let run = Command::new(world.path("app/app.bin"))
        .output()
        .expect("run app");
    assert_eq!(text(&run.stdout), "hello, world\n");

    let mut want = lookup_lines(&fx, "example.com/!hello@v1.1.0");
    want.extend(lookup_lines(&fx, "example.com/greet@v1.0.0"));
    want.sort();
    let mut got: Vec<String> = std::fs::read_to_string(world.path("app/go.sum"))
        .expect("go.sum")
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, want);

    // go mod download in a fresh home: served from what bulwark verified.
    let out = world.go(
        &b,
        &fx,
        "home2",
        &["mod", "download", "-json", &format!("{GREET}@v1.0.0")],
    );
    assert_success("go mod download", &out);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        info["Sum"].as_str(),
        want.iter()
            .find(|l| l.starts_with("example.com/greet v1.0.0 "))
            .and_then(|l| l.split(' ').nth(2))
    );

    // The upstream was asked for the zip only once.
    let (_, n) = fx.get(&format!("/_stats?path={GREET_ZIP}"));
    assert_eq!(
        text(&n).trim(),
        "1",
        "greet zip fetched from upstream more than once"
    );
}

#[test]
fn refuses_a_zip_altered_after_it_was_logged_and_keeps_nothing() {
    let world = World::new();
    let mut opts = world.options();
    opts.serve_altered_zip = vec![format!("{GREET}@v1.0.0")];
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));

    let r = b.get(GREET_ZIP);
    assert_refused(&r, 502, "h1");
    let j = r.json();
    assert_ne!(j["expected"], j["seen"]);
    let out = world.go(
        &b,
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert!(!out.status.success(), "go downloaded an altered zip");
    assert!(
        text(&out.stderr).contains("502 Bad Gateway"),
        "{}",
        text(&out.stderr)
    );

    // Nothing was kept: with the upstream gone it is still refused.
    drop(fx);
    assert_ne!(b.get(GREET_ZIP).status, 200);
}

#[test]
fn refuses_a_go_mod_altered_after_it_was_logged() {
    let world = World::new();
    let mut opts = world.options();
    opts.serve_altered_mod = vec![format!("{GREET}@v1.0.0")];
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));

    assert_refused(&b.get(GREET_MOD), 502, "h1");
    let out = world.go(
        &b,
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert!(!out.status.success(), "go downloaded an altered go.mod");
    drop(fx);
    assert_ne!(b.get(GREET_MOD).status, 200);
}

#[test]
fn refuses_a_tree_signed_by_another_key() {
    let world = World::new();
    let mut opts = world.options();
    opts.other_key = true;
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));

    let r = b.get(&format!("/sumdb/{}/latest", fx.name));
    assert_refused(&r, 502, "signature");
    assert_refused(&b.get(GREET_ZIP), 502, "signature");
    let out = bulwark_cli(&["upstream", "list"], &world.path("bulwark.toml"));
    assert!(
        text(&out.stdout).contains("no checkpoint"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn refuses_hash_and_data_tiles_altered_in_transit() {
    let world = World::new();
    let mut opts = world.options();
    opts.tamper_tile = Some(TileKind::Hash);
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));
    assert_refused(&b.get(GREET_ZIP), 502, "tiles");
    drop(b);
    drop(fx);

    let world = World::new();
    let mut opts = world.options();
    opts.tamper_tile = Some(TileKind::Data);
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));
    // Hash tiles are honest: the module verifies; the data tile does not.
    assert_eq!(b.get(GREET_ZIP).status, 200);
    assert_refused(
        &b.get(&format!("/sumdb/{}/tile/8/data/000.p/2", fx.name)),
        502,
        "inclusion",
    );
}

#[test]
fn fork_quarantines_across_restarts_until_cleared() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    let addr = fx.addr;
    drop(fx);

    // Same key, different records: a fork of the database.
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.log_altered = vec![format!("{GREET}@v1.0.0")];
    let forked = GoFixture::start(&opts);
    let r = b.get(&format!("/sumdb/{}/latest", forked.name));
    assert_refused(&r, 502, "fork");
    // Everything from it is refused now, even what was verified before.
    assert_refused(&b.get(HELLO_ZIP), 502, "quarantine");
    assert_refused(&b.get(GREET_ZIP), 502, "quarantine");

    // Still quarantined after a restart of bulwark.
    drop(b);
    let b = Bulwark::start(&config);
    assert_refused(&b.get(HELLO_ZIP), 502, "quarantine");
    let out = bulwark_cli(&["upstream", "list"], &config);
    assert!(
        text(&out.stdout).contains("QUARANTINED"),
        "{}",
        text(&out.stdout)
    );

    // The operator clears it; the honest database is back.
    drop(forked);
    let mut opts = world.options();
    opts.listen = Some(addr);
    let _honest = GoFixture::start(&opts);
    let out = bulwark_cli(&["upstream", "clear", UPSTREAM], &config);
    assert_success("upstream clear", &out);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    assert_eq!(b.get(GREET_ZIP).status, 200);
    let out = bulwark_cli(&["upstream", "list"], &config);
    assert!(
        text(&out.stdout).contains("active"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn tiles_of_a_refused_fork_are_never_kept_or_served() {
    let world = World::new();
    // bulwark accepts the honest tree of size 1 (Hello's record).
    let mut opts = world.options();
    opts.tree_size = Some(1);
    let fx = GoFixture::start(&opts);
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    let name = fx.name.clone();
    assert_eq!(b.get(&format!("/sumdb/{name}/latest")).status, 200);
    let addr = fx.addr;
    drop(fx);

    // The same key signs a tree of size 2 whose first record differs: not
    // consistent with size 1. Proving that reads tiles of the forked tree.
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.log_altered = vec![format!("{HELLO}@v1.1.0")];
    let forked = GoFixture::start(&opts);
    // greet's lookup carries the forked tree (bulwark asks /latest at most
    // once per a few seconds; lookups carry their own tree).
    let refused = b.get(GREET_ZIP);
    assert_refused(&refused, 502, "consistency");
    let j = refused.json();
    for field in ["expected", "seen"] {
        assert!(
            !j[field].as_str().unwrap_or_default().is_empty(),
            "{field} missing: {j}"
        );
    }
    drop(forked);

    // The honest database of size 2 is back and the operator clears the
    // quarantine: the honest tree is accepted, and the level-0 tile bulwark
    // serves is the honest one, never the forked tile it read while
    // checking the fork.
    let mut opts = world.options();
    opts.listen = Some(addr);
    let honest = GoFixture::start(&opts);
    assert_success(
        "upstream clear",
        &bulwark_cli(&["upstream", "clear", UPSTREAM], &config),
    );
    assert_eq!(b.get(GREET_ZIP).status, 200);
    assert_eq!(b.get(&format!("/sumdb/{name}/latest")).status, 200);
    let tile = format!("/sumdb/{name}/tile/8/0/000.p/2");
    let (status, want) = honest.get(&tile);
    assert_eq!(status, 200);
    let got = b.get(&tile);
    assert_eq!(got.status, 200, "{}", text(&got.body));
    assert_eq!(got.body, want, "bulwark served a tile of the refused fork");
}

/// Writes `policy` next to the config and points the upstream at it.
fn with_witness_policy(world: &World, config: &Path, policy: &str) {
    let file = world.path("witness.policy");
    std::fs::write(&file, policy).expect("write policy");
    let mut toml = std::fs::read_to_string(config).expect("read config");
    toml.push_str(&format!("witness_policy = \"{}\"\n", file.display()));
    std::fs::write(config, toml).expect("write config");
}

#[test]
fn a_witness_policy_refuses_trees_without_its_quorum() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    // The database's trees carry no cosignatures: a policy that wants one
    // witness refuses every tree, and nothing is served.
    let witness = bulwark::tlog::note::Signer::generate("witness.example/w").expect("key");
    with_witness_policy(
        &world,
        &config,
        &format!(
            "log {}\nwitness w {}\nquorum w\n",
            fx.vkey,
            witness.verifier_key()
        ),
    );
    let b = Bulwark::start(&config);
    assert_refused(
        &b.get(&format!("/sumdb/{}/latest", fx.name)),
        502,
        "witness",
    );
    assert_refused(&b.get(GREET_ZIP), 502, "witness");
}

#[test]
fn a_witness_policy_with_quorum_none_accepts_the_pinned_log_alone() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    with_witness_policy(&world, &config, &format!("log {}\nquorum none\n", fx.vkey));
    let b = Bulwark::start(&config);
    assert_eq!(b.get(&format!("/sumdb/{}/latest", fx.name)).status, 200);
    assert_eq!(b.get(GREET_ZIP).status, 200);
}

#[test]
fn a_lagging_database_is_proven_a_prefix_and_the_accepted_tree_served() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    let latest = b.get(&format!("/sumdb/{}/latest", fx.name));
    assert!(text(&latest.body).starts_with("go.sum database tree\n2\n"));
    let addr = fx.addr;
    drop(fx);
    drop(b);

    // A replica behind: /latest and lookups carry the tree of size 1.
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.tree_size = Some(1);
    let old = GoFixture::start(&opts);
    let b = Bulwark::start(&config);
    // Proven a prefix of the accepted tree from tiles; the accepted tree
    // is served, not rewound.
    let latest = b.get(&format!("/sumdb/{}/latest", old.name));
    assert_eq!(latest.status, 200, "{}", text(&latest.body));
    assert!(text(&latest.body).starts_with("go.sum database tree\n2\n"));
    // greet (record 1) is beyond the lagging tree: proven in the accepted one.
    assert_eq!(b.get(GREET_ZIP).status, 200);
    let out = world.go(
        &b,
        &old,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert_success("go mod download from a lagging database", &out);
    let out = bulwark_cli(&["upstream", "list"], &config);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("active") && listed.contains("size 2 "),
        "{listed}"
    );
}

#[test]
fn a_lagging_lookup_answer_is_served_and_a_forged_older_tree_quarantines() {
    let world = World::new();
    let mut opts = world.options();
    opts.lookup_tree_size = Some(1);
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));
    let latest = b.get(&format!("/sumdb/{}/latest", fx.name));
    assert!(text(&latest.body).starts_with("go.sum database tree\n2\n"));
    // Hello (record 0) is in the lagging tree, greet (record 1) only in
    // the accepted one: both are proven and served.
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    assert_eq!(b.get(GREET_ZIP).status, 200);
    drop(b);
    drop(fx);

    // The same key signs an older tree that is no prefix of the log.
    let world = World::new();
    let mut opts = world.options();
    opts.lookup_tree_size = Some(1);
    opts.lookup_tree_forged = true;
    let fx = GoFixture::start(&opts);
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    assert_eq!(b.get(&format!("/sumdb/{}/latest", fx.name)).status, 200);
    assert_refused(&b.get(GREET_ZIP), 502, "consistency");
    assert_refused(&b.get(HELLO_ZIP), 502, "quarantine");
    let out = bulwark_cli(&["upstream", "list"], &config);
    assert!(
        text(&out.stdout).contains("QUARANTINED"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn upstream_stopped_serves_verified_modules_and_refuses_unverified() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let out = world.go(
        &b,
        &fx,
        "home",
        &["mod", "download", "-json", &format!("{HELLO}@v1.1.0")],
    );
    assert_success("go mod download", &out);
    let vkey = fx.vkey.clone();
    let name = fx.name.clone();
    drop(fx);

    // A fresh go home, the upstream gone: still served, from the store.
    let home = world.path("offline");
    std::fs::create_dir_all(&home).expect("mkdir");
    let out = go_command(&home, &b.url(), &vkey)
        .current_dir(world.path("app"))
        .args(["mod", "download", "-json", &format!("{HELLO}@v1.1.0")])
        .output()
        .expect("go");
    assert_success("offline go mod download", &out);
    drop(b);

    // Restarted with a 1ms bound, every tree is stale: with the upstream
    // gone, what was verified is served with a Warning saying so.
    let b = Bulwark::start(&world.config_with_fixture_url(
        &name,
        &vkey,
        "max_checkpoint_age = \"1ms\"",
    ));
    let zip = b.get(HELLO_ZIP);
    assert_eq!(zip.status, 200);
    let w = zip
        .header("warning")
        .unwrap_or_else(|| panic!("no Warning header offline: {}", zip.head));
    assert!(w.starts_with("110 bulwark") && w.contains(UPSTREAM), "{w}");
    let latest = b.get(&format!("/sumdb/{name}/latest"));
    assert_eq!(latest.status, 200);
    assert!(latest.header("warning").is_some());
    assert!(text(&latest.body).starts_with("go.sum database tree\n"));
    // Never verified: refused.
    let r = b.get(GREET_ZIP);
    assert_ne!(r.status, 200);
    assert!(r.json()["upstream"] == UPSTREAM, "{}", text(&r.body));
}

#[test]
fn a_stale_tree_is_refused_while_the_upstream_answers() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    assert_eq!(b.get(HELLO_ZIP).status, 200);
    drop(b);
    // The database answers, but shows nothing newer than a tree accepted
    // longer ago than the bound: a replay proves nothing about now.
    let b = Bulwark::start(&world.config_with(&fx, "max_checkpoint_age = \"1ms\""));
    assert_refused(&b.get(HELLO_ZIP), 502, "freshness");
    assert_refused(
        &b.get(&format!("/sumdb/{}/latest", fx.name)),
        502,
        "freshness",
    );
}

#[test]
fn concurrent_requests_for_a_missing_object_reach_the_upstream_once() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let path = "/example.com/missing/@v/v1.0.0.info";
    let addr = b.addr;
    let threads: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || get(addr, path).status))
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), 404);
    }
    let (_, n) = fx.get(&format!("/_stats?path={path}"));
    assert_eq!(text(&n).trim(), "1");
}

#[test]
fn a_grown_tree_is_accepted_by_a_consistency_proof_from_tiles_and_tampered_tiles_refused() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    assert_eq!(b.get(&format!("/sumdb/{}/latest", fx.name)).status, 200);
    let addr = fx.addr;
    drop(fx);

    // One more module, logged after the others: the tree grows to 3.
    write_module(
        &world.path("mods"),
        "example.com/zzz",
        "v1.0.0",
        &[("go.mod", "module example.com/zzz\n\ngo 1.19\n")],
    );
    // Tiles altered in transit: the consistency proof cannot be read.
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.tamper_tile = Some(TileKind::Hash);
    let tampered = GoFixture::start(&opts);
    // zzz's lookup carries the grown tree.
    assert_refused(&b.get("/example.com/zzz/@v/v1.0.0.zip"), 502, "tiles");
    let out = bulwark_cli(&["upstream", "list"], &config);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("active") && listed.contains("size 2 "),
        "{listed}"
    );
    drop(tampered);

    // Honest tiles: the grown tree is proven consistent and accepted.
    let mut opts = world.options();
    opts.listen = Some(addr);
    let grown = GoFixture::start(&opts);
    assert_eq!(b.get("/example.com/zzz/@v/v1.0.0.zip").status, 200);
    let latest = b.get(&format!("/sumdb/{}/latest", grown.name));
    assert_eq!(latest.status, 200, "{}", text(&latest.body));
    assert!(text(&latest.body).starts_with("go.sum database tree\n3\n"));
    let out = bulwark_cli(&["upstream", "list"], &config);
    assert!(
        text(&out.stdout).contains("size 3 "),
        "{}",
        text(&out.stdout)
    );
}

/// Every Go route bulwark serves for `fx`, with the module greet.
fn every_route(fx: &GoFixture) -> Vec<String> {
    let db = format!("/sumdb/{}", fx.name);
    vec![
        "/example.com/greet/@v/list".to_string(),
        "/example.com/greet/@v/v1.0.0.info".to_string(),
        "/example.com/greet/@latest".to_string(),
        GREET_MOD.to_string(),
        GREET_ZIP.to_string(),
        format!("{db}/latest"),
        format!("{db}/lookup/example.com/greet@v1.0.0"),
        format!("{db}/tile/8/0/000.p/2"),
    ]
}

#[test]
fn only_an_exact_200_from_the_upstream_takes_the_verified_path() {
    // A 203 or 206 with the usual (here even honest) body is refused on
    // every route: the reference client treats any 2xx as success.
    for code in [203, 206] {
        let world = World::new();
        let mut opts = world.options();
        opts.proxy_status = Some(code);
        opts.sumdb_status = Some(code);
        let fx = GoFixture::start(&opts);
        let b = Bulwark::start(&world.config(&fx));
        for route in every_route(&fx) {
            let r = b.get(&route);
            assert_eq!(r.status, 502, "{code} on {route}: {}", text(&r.body));
            let j = r.json();
            assert_eq!(j["check"], "upstream-status", "{route}: {j}");
            assert_eq!(j["seen"], format!("status {code}"), "{route}: {j}");
        }
    }
}

#[test]
fn an_upstream_4xx_or_5xx_keeps_its_status_with_bulwarks_own_body() {
    for code in [404, 410, 403, 500] {
        let world = World::new();
        let mut opts = world.options();
        opts.proxy_status = Some(code);
        opts.sumdb_status = Some(code);
        let fx = GoFixture::start(&opts);
        let b = Bulwark::start(&world.config(&fx));
        for route in every_route(&fx) {
            let r = b.get(&route);
            assert_eq!(r.status, code, "{route}: {}", text(&r.body));
            assert!(
                !text(&r.body).contains("upstream's own body"),
                "{route}: passed the upstream's body on"
            );
            assert_eq!(r.json()["upstream"], UPSTREAM, "{route}");
        }
    }
}

#[test]
fn refuses_metadata_of_the_wrong_shape_and_reserialises_good_metadata() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let list = b.get("/example.com/greet/@v/list");
    assert_eq!(list.status, 200);
    assert_eq!(text(&list.body), "v1.0.0\n");
    let info = b.get("/example.com/greet/@v/v1.0.0.info");
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["Version"], "v1.0.0");
    assert_eq!(info.json()["Time"], "2026-01-02T03:04:05Z");
    drop(b);
    drop(fx);

    let world = World::new();
    let mut opts = world.options();
    opts.bad_metadata = true;
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));
    for route in [
        "/example.com/greet/@v/list",
        "/example.com/greet/@v/v1.0.0.info",
        "/example.com/greet/@latest",
    ] {
        assert_refused(&b.get(route), 502, "format");
    }
    // Verified module files do not depend on the metadata.
    assert_eq!(b.get(GREET_ZIP).status, 200);
}

#[test]
fn refuses_a_zip_that_readers_from_the_start_and_from_the_end_see_differently() {
    let world = World::new();
    let mut opts = world.options();
    opts.serve_prefixed_zip = vec![format!("{GREET}@v1.0.0")];
    let fx = GoFixture::start(&opts);
    // The attack is real: the `go` command itself accepts this zip, since
    // its reader skips the prefix and the files hash as logged.
    let home = world.path("direct");
    std::fs::create_dir_all(&home).expect("mkdir");
    let out = go_command(&home, &fx.proxy_url(), &fx.gosumdb())
        .current_dir(world.path("app"))
        .args(["mod", "download", &format!("{GREET}@v1.0.0")])
        .output()
        .expect("go");
    assert_success("go mod download straight from the fixture", &out);

    let b = Bulwark::start(&world.config(&fx));
    let r = b.get(GREET_ZIP);
    assert_refused(&r, 502, "zip");
    let j = r.json();
    assert!(
        j["seen"].as_str().unwrap_or_default().contains("prefix"),
        "{j}"
    );
    let out = world.go(
        &b,
        &fx,
        "home",
        &["mod", "download", &format!("{GREET}@v1.0.0")],
    );
    assert!(!out.status.success(), "go downloaded a prefixed zip");
    // Nothing was kept.
    drop(fx);
    assert_ne!(b.get(GREET_ZIP).status, 200);
}

#[test]
fn request_paths_are_decoded_once_and_re_encoded_for_the_upstream() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let seen = |path: &str| {
        let (_, n) = fx.get(&format!("/_stats?path={}", path.replace('%', "%25")));
        text(&n).trim().to_string()
    };
    // An escaped slash would move segment boundaries: refused, not asked.
    let r = b.get("/example.com%2Fgreet/@v/list");
    assert_eq!(r.status, 404, "{}", text(&r.body));
    assert_eq!(seen("/example.com/greet/@v/list"), "0");
    // `%2e%2e` is `..`, which no module path or version allows.
    assert_eq!(b.get("/example.com/%2e%2e/greet/@v/list").status, 404);
    assert_eq!(b.get("/example.com/greet/@v/%2e%2e.info").status, 404);
    // A version holding `%` reaches the upstream as the same version:
    // `%2541` is decoded once to `%41` and sent as `%2541` again.
    let r = b.get("/example.com/greet/@v/v1.0.0%2541.info");
    assert_eq!(r.status, 404, "{}", text(&r.body));
    assert_eq!(seen("/example.com/greet/@v/v1.0.0%41.info"), "1");
    assert_eq!(seen("/example.com/greet/@v/v1.0.0A.info"), "0");
    let r = b.get("/example.com/greet/@v/%252e%252e.info");
    assert_eq!(r.status, 404, "{}", text(&r.body));
    assert_eq!(seen("/example.com/greet/@v/%2e%2e.info"), "1");
}

#[test]
fn a_quarantined_upstream_gets_nothing_through_on_any_route() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    // Everything answers (and is cached or stored) before the fork.
    for route in every_route(&fx) {
        assert_eq!(b.get(&route).status, 200, "{route}");
    }
    let addr = fx.addr;
    drop(fx);
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.log_altered = vec![format!("{HELLO}@v1.1.0")];
    let forked = GoFixture::start(&opts);
    // Hello's lookup carries a tree of the accepted size with another root.
    assert_refused(&b.get(HELLO_ZIP), 502, "fork");
    let mut routes = every_route(&forked);
    routes.push(format!("/sumdb/{}/supported", forked.name));
    routes.push(HELLO_ZIP.to_string());
    for route in routes {
        let r = b.get(&route);
        assert_refused(&r, 502, "quarantine");
    }
}

#[test]
fn client_chosen_requests_that_fail_do_not_open_the_circuit_breaker() {
    let world = World::new();
    let mut opts = world.options();
    opts.unknown_status = Some(502);
    let fx = GoFixture::start(&opts);
    let b = Bulwark::start(&world.config(&fx));
    // More failures in a row than the breaker's threshold (5), each for a
    // version a client made up.
    for i in 0..7 {
        let r = b.get(&format!("/example.com/greet/@v/v0.0.{i}.info"));
        assert_eq!(r.status, 502, "{}", text(&r.body));
        assert_eq!(r.json()["check"], "upstream-status");
    }
    let r = b.get("/example.com/greet/@v/v1.0.0.info");
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(b.get(GREET_ZIP).status, 200);
}

#[test]
fn latest_is_fetched_once_for_many_concurrent_and_repeated_requests() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let path = format!("/sumdb/{}/latest", fx.name);
    let addr = b.addr;
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || get(addr, &p).status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), 200);
    }
    for _ in 0..20 {
        assert_eq!(b.get(&path).status, 200);
    }
    let (_, n) = fx.get(&format!("/_stats?path=/sumdb/{}/latest", fx.name));
    let n: u32 = text(&n).trim().parse().expect("count");
    assert!(n <= 2, "/latest fetched {n} times for 40 requests");
}

#[test]
fn freshness_under_a_witness_policy_is_the_newest_quorum_cosignature_time() {
    use bulwark::tlog::note::{add_signatures, Signer};
    let world = World::new();
    let sigs = world.path("cosignatures");
    let mut opts = world.options();
    opts.extra_signatures = Some(sigs.clone());
    let fx = GoFixture::start(&opts);
    let (_, note) = fx.get(&format!("/sumdb/{}/latest", fx.name));
    let witness = Signer::generate("witness.example/w").expect("key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // Two witnesses cosigned two hours ago, one of them again now: with a
    // quorum of both, the quorum was last met two hours ago.
    let other = Signer::generate("witness.example/v").expect("key");
    let old_w = witness.cosigner(now - 7200).expect("cosigner");
    let new_w = witness.cosigner(now).expect("cosigner");
    let old_v = other.cosigner(now - 7200).expect("cosigner");
    let cosigned = add_signatures(&note, &[&old_w, &old_v]).expect("cosign");
    std::fs::write(&sigs, &cosigned[note.len()..]).expect("write cosignatures");
    let config = world.config_with(&fx, "max_checkpoint_age = \"1h\"");
    with_witness_policy(
        &world,
        &config,
        &format!(
            "log {}\nwitness w {}\nwitness v {}\ngroup both all w v\nquorum both\n",
            fx.vkey,
            witness.cosigner(0).expect("key").verifier_key(),
            other.cosigner(0).expect("key").verifier_key()
        ),
    );
    let b = Bulwark::start(&config);
    // The upstream answers with a tree its quorum last vouched for 2h ago.
    assert_refused(&b.get(GREET_ZIP), 502, "freshness");
    drop(b);

    // w cosigns again now, v does not: the quorum still dates from 2h ago.
    let cosigned = add_signatures(&note, &[&new_w, &old_v]).expect("cosign");
    std::fs::write(&sigs, &cosigned[note.len()..]).expect("write cosignatures");
    let b = Bulwark::start(&config);
    assert_refused(&b.get(HELLO_ZIP), 502, "freshness");
    drop(b);

    // Both cosign now: fresh.
    let new_v = other.cosigner(now).expect("cosigner");
    let cosigned = add_signatures(&note, &[&new_w, &new_v]).expect("cosign");
    std::fs::write(&sigs, &cosigned[note.len()..]).expect("write cosignatures");
    let b = Bulwark::start(&config);
    let r = b.get(HELLO_ZIP);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert_eq!(r.header("warning"), None, "{}", r.head);
}

#[test]
fn after_a_rebase_nothing_proven_in_the_old_epoch_is_served() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let b = Bulwark::start(&config);
    let name = fx.name.clone();
    let tile = format!("/sumdb/{name}/tile/8/0/000.p/2");
    assert_eq!(b.get(GREET_ZIP).status, 200);
    assert_eq!(b.get(&tile).status, 200);
    let addr = fx.addr;
    drop(fx);
    drop(b);

    // The database was reset with other records; the operator starts a
    // new epoch for it.
    let mut opts = world.options();
    opts.listen = Some(addr);
    opts.log_altered = vec![format!("{GREET}@v1.0.0")];
    let reset = GoFixture::start(&opts);
    assert_success(
        "upstream clear --rebase",
        &bulwark_cli(&["upstream", "clear", UPSTREAM, "--rebase"], &config),
    );
    let b = Bulwark::start(&config);
    let (_, want_zip) = reset.get(GREET_ZIP);
    let got = b.get(GREET_ZIP);
    assert_eq!(got.status, 200, "{}", text(&got.body));
    assert!(
        got.body == want_zip,
        "served the zip proven in the old epoch"
    );
    let (_, want_tile) = reset.get(&tile);
    let got = b.get(&tile);
    assert_eq!(got.status, 200, "{}", text(&got.body));
    assert!(got.body == want_tile, "served a tile of the old epoch");
}

/// The value of one series in bulwark's `/metrics` (0 when absent).
fn metric(b: &Bulwark, series: &str) -> f64 {
    let m = b.get("/metrics");
    assert_eq!(m.status, 200);
    text(&m.body)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn after_a_restart_with_the_upstream_down_a_zip_a_mod_and_a_lookup_are_served() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let lookup = format!("/sumdb/{}/lookup/{GREET}@v1.0.0", fx.name);
    let b = Bulwark::start(&config);
    let first: Vec<Reply> = [GREET_ZIP, GREET_MOD, lookup.as_str()]
        .iter()
        .map(|p| b.get(p))
        .collect();
    for r in &first {
        assert_eq!(r.status, 200, "{}", text(&r.body));
    }
    drop(b);
    drop(fx);

    // Everything lives in the shared artifact index and the blob store.
    assert!(world.path("data/index.redb").is_file());
    assert!(!world.path("data/gomod.redb").exists());
    let b = Bulwark::start(&config);
    for (p, want) in [GREET_ZIP, GREET_MOD, lookup.as_str()].iter().zip(&first) {
        let r = b.get(p);
        assert_eq!(r.status, 200, "{p}: {}", text(&r.body));
        assert!(r.body == want.body, "{p}: other bytes after the restart");
        assert_eq!(r.header("warning"), None, "{p}: {}", r.head);
    }
    // Never verified: refused, naming the upstream.
    let r = b.get(HELLO_ZIP);
    assert_ne!(r.status, 200);
    assert_eq!(r.json()["upstream"], UPSTREAM, "{}", text(&r.body));
}

#[test]
fn a_module_file_hit_reads_the_index_only() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let b = Bulwark::start(&world.config(&fx));
    let hits = |kind: &str| {
        metric(
            &b,
            &format!("bulwark_cache_lookups_total{{kind=\"{kind}\",result=\"hit\"}}"),
        )
    };
    let first = b.get(GREET_ZIP);
    assert_eq!(first.status, 200, "{}", text(&first.body));
    assert_eq!(b.get(GREET_MOD).status, 200);
    let (records, modules) = (hits("gomod.record"), hits("gomod.module"));
    // Served from the index: no record lookup (not even a cached one).
    for _ in 0..3 {
        let r = b.get(GREET_ZIP);
        assert_eq!(r.status, 200);
        assert!(r.body == first.body);
        assert_eq!(b.get(GREET_MOD).status, 200);
    }
    assert_eq!(hits("gomod.module"), modules + 6.0);
    assert_eq!(hits("gomod.record"), records);
}

#[test]
fn after_a_rebase_nothing_of_the_old_epoch_is_served_with_the_upstream_down() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let name = fx.name.clone();
    let lookup = format!("/sumdb/{name}/lookup/{GREET}@v1.0.0");
    let tile = format!("/sumdb/{name}/tile/8/0/000.p/2");
    let paths = [GREET_ZIP, GREET_MOD, lookup.as_str(), tile.as_str()];
    let b = Bulwark::start(&config);
    for p in paths {
        assert_eq!(b.get(p).status, 200, "{p}");
    }
    drop(b);
    drop(fx);
    assert_success(
        "upstream clear --rebase",
        &bulwark_cli(&["upstream", "clear", UPSTREAM, "--rebase"], &config),
    );
    // The new epoch has no accepted tree and the upstream is gone: nothing
    // proven in the old epoch may stand in.
    let b = Bulwark::start(&config);
    for p in paths {
        let r = b.get(p);
        assert_ne!(r.status, 200, "{p} served from the old epoch");
        assert_eq!(r.json()["upstream"], UPSTREAM, "{p}: {}", text(&r.body));
    }
}

#[test]
fn a_record_proven_for_a_module_file_is_served_by_lookup_after_a_restart_with_the_upstream_down() {
    let world = World::new();
    let fx = GoFixture::start(&world.options());
    let config = world.config(&fx);
    let lookup = format!("/sumdb/{}/lookup/{GREET}@v1.0.0", fx.name);
    let (status, want) = fx.get(&lookup);
    assert_eq!(status, 200);
    let b = Bulwark::start(&config);
    // Only the zip: the record that proved it is kept with it.
    assert_eq!(b.get(GREET_ZIP).status, 200);
    drop(b);
    drop(fx);
    let b = Bulwark::start(&config);
    let r = b.get(&lookup);
    assert_eq!(r.status, 200, "{}", text(&r.body));
    assert!(r.body == want, "{} != {}", text(&r.body), text(&want));
    assert_eq!(b.get(GREET_MOD).status, 502, "a go.mod never fetched");
}
