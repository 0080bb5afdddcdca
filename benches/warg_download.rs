//! Benchmark (not a test): downloading a 1 MiB and a 10 MiB Warg component
//! through bulwark, cold (bulwark fetches, hashes, stores, serves) and warm
//! (served from bulwark's blob store), against straight from the real
//! `warg-server`, in the same run. Two levels:
//!
//! - **content**: the bytes' GET alone (bulwark's `/content/<upstream>/…`
//!   vs the server's `/content/sha256-…`), after bulwark verified the log
//!   naming the digest;
//! - **cli**: a whole `warg download` by a fresh client (checkpoint, logs,
//!   proofs, content), home registry bulwark vs the server itself.
//!
//! Run: `cargo bench --bench warg_download` (after `bash .ci/setup`, which
//! installs the Warg binaries; set `BULWARK_BIN` to time another bulwark
//! binary). Prints medians and the ratios bulwark / direct.

#[path = "../tests/support/serve.rs"]
mod serve;
#[path = "../tests/support/warg.rs"]
mod warg;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use warg::{component, content_digest, http, WargClient, WargServer, WargServerOptions};

const CONTENT_RUNS: usize = 5;
const CLI_RUNS: usize = 3;

fn bin() -> PathBuf {
    std::env::var_os("BULWARK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bulwark")))
}

/// bulwark with one Warg upstream, its own data directory, killed on drop.
struct Bulwark {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Bulwark {
    fn start(server: &WargServer) -> Bulwark {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nmax_checkpoint_age = \"1h\"\n\
             max_body_bytes = 67108864\n\n[[upstream]]\nname = \"acme-up\"\nprotocol = \"warg\"\n\
             url = {:?}\noperator_key = {:?}\nnamespaces = [\"acme\"]\ndefault = true\n",
            dir.path().join("data"),
            server.url(),
            server.operator_key.public
        );
        let path = dir.path().join("bulwark.toml");
        std::fs::write(&path, config).unwrap();
        let serve::Spawned { child, addr, .. } = serve::spawn(&bin(), &path, "warn");
        Bulwark {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Makes bulwark verify the package's log (so its digest is known).
    fn verify_package(&self, name: &str) {
        let cp = http(self.addr, "GET", "/v1/fetch/checkpoint", &[], None);
        assert_eq!(cp.status, 200);
        let len = cp.json()["contents"]["logLength"].as_u64().unwrap();
        let pkg: warg_protocol::registry::PackageName = name.parse().unwrap();
        let log_id = warg_protocol::registry::LogId::package_log::<warg_crypto::hash::Sha256>(&pkg);
        let body = format!(r#"{{"logLength":{len},"packages":{{"{log_id}":null}}}}"#);
        let r = http(
            self.addr,
            "POST",
            "/v1/fetch/logs",
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

impl Drop for Bulwark {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo test --benches` runs benches with no filter and `--bench`-less
    // args; only run when asked for as a benchmark.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let server = WargServer::start(&WargServerOptions::owning("acme"));
    let publisher = WargClient::new(&server.url());
    println!("size      level    direct_ms  cold_ms  warm_ms  cold/direct  warm/direct");
    for (label, size, seed) in [("1MiB", 1usize << 20, 1u64), ("10MiB", 10 << 20, 2)] {
        let name = format!("acme:bench{}", seed);
        let bytes = component(size, seed);
        let digest = content_digest(&bytes);
        let hex = digest.trim_start_matches("sha256:").to_string();
        let run = publisher.publish(&name, "1.0.0", &bytes);
        assert!(run.success, "{run:?}");

        // Content GET alone.
        let mut direct = Vec::new();
        for _ in 0..CONTENT_RUNS {
            direct.push(timed(|| {
                let r = http(
                    server.addr,
                    "GET",
                    &format!("/content/sha256-{hex}"),
                    &[],
                    None,
                );
                assert_eq!(r.body.len(), size);
            }));
        }
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..CONTENT_RUNS {
            let b = Bulwark::start(&server);
            b.verify_package(&name);
            let path = format!("/content/acme-up/sha256-{hex}");
            cold.push(timed(|| {
                let r = http(b.addr, "GET", &path, &[], None);
                assert_eq!(r.status, 200);
                assert_eq!(r.body.len(), size);
            }));
            warm.push(timed(|| {
                let r = http(b.addr, "GET", &path, &[], None);
                assert_eq!(r.body.len(), size);
            }));
        }
        report(label, "content", direct, cold, warm);

        // Whole `warg download` by a fresh client.
        let mut direct = Vec::new();
        for _ in 0..CLI_RUNS {
            let c = WargClient::new(&server.url());
            direct.push(timed(|| {
                assert_eq!(c.download(&name, None).unwrap().len(), size);
            }));
        }
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..CLI_RUNS {
            let b = Bulwark::start(&server);
            let url = format!("http://{}", b.addr);
            let c = WargClient::new(&url);
            cold.push(timed(|| {
                assert_eq!(c.download(&name, None).unwrap(), bytes);
            }));
            let c = WargClient::new(&url);
            warm.push(timed(|| {
                assert_eq!(c.download(&name, None).unwrap().len(), size);
            }));
        }
        report(label, "cli", direct, cold, warm);
    }
}

fn report(label: &str, level: &str, d: Vec<Duration>, c: Vec<Duration>, w: Vec<Duration>) {
    let (d, c, w) = (median(d), median(c), median(w));
    println!(
        "{label:<9} {level:<8} {:>9.1} {:>8.1} {:>8.1} {:>12.2} {:>12.2}",
        ms(d),
        ms(c),
        ms(w),
        c.as_secs_f64() / d.as_secs_f64(),
        w.as_secs_f64() / d.as_secs_f64()
    );
}
