//! Starting the real `bulwark serve` binary from tests and benchmarks.
//!
//! [`spawn`] runs `bulwark serve --config FILE`, keeps what bulwark logs on
//! stderr in a buffer (for failure messages), reads the `listening on ADDR`
//! line it prints once bound (configs use `listen = "127.0.0.1:0"`), and
//! keeps draining stdout so the child never blocks. The caller owns the
//! child and must kill and reap it (its own `Drop`).
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// A started `bulwark serve`: the child, its address, its stderr so far.
pub struct Spawned {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

/// A started `bulwark serve` that is killed and reaped when dropped.
pub struct Running(pub Spawned);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// Starts this crate's `bulwark serve --config config` (see [`spawn`]),
/// killed and reaped when the result is dropped.
pub fn start(config: &Path, rust_log: &str) -> Running {
    Running(spawn(
        Path::new(env!("CARGO_BIN_EXE_bulwark")),
        config,
        rust_log,
    ))
}

/// Starts `bin serve --config config` with `RUST_LOG=rust_log` and waits
/// for its `listening on` line; panics with its stderr if it exits first.
pub fn spawn(bin: &Path, config: &Path, rust_log: &str) -> Spawned {
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bulwark");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().expect("bulwark stderr");
    let sink = stderr.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut out = BufReader::new(child.stdout.take().expect("bulwark stdout"));
    let mut line = String::new();
    let mut addr = None;
    while out.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            addr = Some(a.parse().expect("listening address"));
            break;
        }
        line.clear();
    }
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "bulwark did not start; stderr:\n{}",
            stderr.lock().unwrap_or_else(|p| p.into_inner())
        );
    };
    thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = out.read_to_end(&mut sink);
    });
    Spawned {
        child,
        addr,
        stderr,
    }
}

/// How many blobs bulwark's store under `data_dir` holds (to show that
/// something refused was not stored).
pub fn stored_objects(data_dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    walk(&data_dir.join("blobs/sha256"))
}
