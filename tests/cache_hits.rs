//! Verified cache hits through the real binary: the HTTP semantics of
//! immutable, content-addressed content (`ETag` = the digest,
//! `If-None-Match` → 304, `HEAD`, `Range` → 206/416, `Cache-Control:
//! immutable`), on Go module files fetched from the Go fixture (a real
//! GOPROXY and checksum database built from golang.org/x/mod).
//!
//! Needs the Debian packages `golang-go` and `golang-golang-x-mod-dev`.

mod support;

use std::net::SocketAddr;
use std::path::Path;

use sha2::Digest as _;
use support::gofixture::{write_module, FixtureOptions, GoFixture};
use support::http::send;

const MODULE: &str = "example.com/cached";
const ZIP: &str = "/example.com/cached/@v/v1.0.0.zip";
const MOD: &str = "/example.com/cached/@v/v1.0.0.mod";

/// A running `bulwark serve`, killed and reaped on drop.
struct Bulwark {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Bulwark {
    fn start(config: &Path) -> Bulwark {
        let s = support::serve::spawn(Path::new(env!("CARGO_BIN_EXE_bulwark")), config, "warn");
        Bulwark {
            child: s.child,
            addr: s.addr,
        }
    }
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture serving one module whose zip is over 1 MiB (so bulwark
/// streams it from its file rather than from memory), and bulwark in front
/// of it.
fn world() -> (tempfile::TempDir, GoFixture, Bulwark) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mods = tmp.path().join("mods");
    // Printable noise from a linear congruential generator: deflate can
    // barely shrink it.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: String = (0..1_600_000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'!' + ((x >> 33) % 94) as u8)
        })
        .collect();
    write_module(
        &mods,
        MODULE,
        "v1.0.0",
        &[
            ("go.mod", "module example.com/cached\n\ngo 1.19\n"),
            ("cached.go", "package cached\n\nconst Name = \"cached\"\n"),
            ("noise.txt", &noise),
        ],
    );
    let fx = GoFixture::start(&FixtureOptions {
        modules: mods,
        key: tmp.path().join("sumdb.key"),
        ..FixtureOptions::default()
    });
    let config = tmp.path().join("bulwark.toml");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
         [[upstream]]\nname = \"fixture\"\nprotocol = \"gomod\"\nurl = \"{}\"\n\
         namespaces = [\"*\"]\nsumdb = {{ name = \"{}\", url = \"{}\", key = \"{}\" }}\n",
        tmp.path().join("data").display(),
        fx.proxy_url(),
        fx.name,
        fx.sumdb_url(),
        fx.vkey
    );
    std::fs::write(&config, toml).expect("write config");
    let b = Bulwark::start(&config);
    (tmp, fx, b)
}

fn etag_of(body: &[u8]) -> String {
    format!("\"sha256:{}\"", hex::encode(sha2::Sha256::digest(body)))
}

#[test]
fn stored_module_files_carry_their_digest_as_etag_and_answer_304() {
    let (_tmp, _fx, b) = world();
    for path in [ZIP, MOD] {
        // The first answer (verified and stored now) and a cache hit.
        for round in 0..2 {
            let r = send(b.addr, "GET", path, &[]);
            assert_eq!(r.status, 200, "{path} round {round}: {}", r.head);
            let etag = etag_of(&r.body);
            assert_eq!(r.header("etag"), Some(etag.clone()), "{}", r.head);
            assert_eq!(
                r.header("cache-control").as_deref(),
                Some("public, max-age=31536000, immutable")
            );
            assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));

            let r304 = send(b.addr, "GET", path, &[("If-None-Match", &etag)]);
            assert_eq!(r304.status, 304, "{}", r304.head);
            assert!(r304.body.is_empty());
            assert_eq!(r304.header("etag"), Some(etag.clone()));

            let other = send(b.addr, "GET", path, &[("If-None-Match", "\"sha256:00\"")]);
            assert_eq!(other.status, 200);
            assert_eq!(other.body, r.body);
        }
    }
}

#[test]
fn ranges_and_head_of_a_stored_zip() {
    let (_tmp, _fx, b) = world();
    let whole = send(b.addr, "GET", ZIP, &[]);
    assert_eq!(whole.status, 200);
    let len = whole.body.len();
    assert!(len > 1024 * 1024, "zip of {len} bytes");
    let etag = etag_of(&whole.body);

    // One range, inside a later read chunk: 206 with exactly those bytes.
    let (a, z) = (150_001usize, 150_100usize);
    let r = send(b.addr, "GET", ZIP, &[("Range", &format!("bytes={a}-{z}"))]);
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {a}-{z}/{len}"))
    );
    assert_eq!(r.header("content-length"), Some("100".to_string()));
    assert_eq!(r.body, &whole.body[a..=z]);

    // A suffix range, and an open-ended one.
    let r = send(b.addr, "GET", ZIP, &[("Range", "bytes=-10")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &whole.body[len - 10..]);
    let r = send(
        b.addr,
        "GET",
        ZIP,
        &[("Range", &format!("bytes={}-", len - 3))],
    );
    assert_eq!(r.body, &whole.body[len - 3..]);

    // Unsatisfiable: 416 naming the length; several ranges: the whole zip.
    let r = send(b.addr, "GET", ZIP, &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(r.status, 416, "{}", r.head);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}")));
    let r = send(b.addr, "GET", ZIP, &[("Range", "bytes=0-1,5-6")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, whole.body);

    // If-Range with another ETag: the whole zip.
    let r = send(
        b.addr,
        "GET",
        ZIP,
        &[("Range", "bytes=0-1"), ("If-Range", "\"sha256:00\"")],
    );
    assert_eq!(r.status, 200);
    let r = send(
        b.addr,
        "GET",
        ZIP,
        &[("Range", "bytes=0-1"), ("If-Range", &etag)],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &whole.body[..2]);

    // HEAD: the GET answer's headers, no body.
    let r = send(b.addr, "HEAD", ZIP, &[]);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("content-length"), Some(len.to_string()));
    assert_eq!(r.header("etag"), Some(etag));
    assert_eq!(r.header("content-type").as_deref(), Some("application/zip"));
    assert!(r.body.is_empty());
}
