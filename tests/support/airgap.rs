//! What the air-gap tests (`tests/airgap_*.rs`) share: running `bulwark
//! sync|export|import`, reading their summary, a URL nothing listens on
//! (the inside's upstream), and rewriting a bundle to tamper with it.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `bulwark <args> --config <config> <tail>`.
pub fn cli(args: &[&str], config: &Path, tail: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .arg("--config")
        .arg(config)
        .args(tail)
        .env("RUST_LOG", "error")
        .output()
        .expect("run bulwark")
}

/// Asserts the summary line `sync` or `import` printed first, and its exit
/// status (success exactly when nothing was refused).
pub fn assert_summary(out: &Output, verified: usize, already: usize, refused: usize) {
    let stdout = text(&out.stdout);
    let want = format!("verified: {verified}, already there: {already}, refused: {refused}");
    assert_eq!(stdout.lines().next(), Some(want.as_str()), "{stdout}");
    assert_eq!(
        out.status.success(),
        refused == 0,
        "{}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
}

/// `http://127.0.0.1:<port>` of a port nothing listens on.
pub fn dead_url() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    url
}

/// Rewrites the tar `from` into `to`, passing each member through `edit`
/// (name, bytes) → replacement bytes.
pub fn rewrite_tar(from: &Path, to: &Path, mut edit: impl FnMut(&str, Vec<u8>) -> Vec<u8>) {
    let mut ar = tar::Archive::new(std::fs::File::open(from).expect("open bundle"));
    let mut out = tar::Builder::new(std::fs::File::create(to).expect("create"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read member");
        let data = edit(&name, data);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, &name, &data[..]).expect("append");
    }
    out.finish().expect("finish tar");
}

/// Flips one bit in the middle of member `member` of `from`, into `to`.
pub fn alter_member(from: &Path, to: &Path, member: &str) {
    rewrite_tar(from, to, |name, mut data| {
        if name == member {
            let at = data.len() / 2;
            data[at] ^= 0x20;
        }
        data
    });
}

/// Runs `bulwark <command> <input>` twice: the first run verifies `n`
/// things, the second finds them all there (`sync` resumes; `import` again
/// is a no-op).
pub fn twice(command: &str, config: &Path, input: &Path, n: usize) {
    let out = cli(&[command, "--progress", "plain"], config, &[input]);
    assert_summary(&out, n, 0, 0);
    let out = cli(&[command, "--progress", "none"], config, &[input]);
    assert_summary(&out, 0, n, 0);
}

/// Asserts a run failed and its output says `needle` (what was refused,
/// and the check).
pub fn assert_refused(out: &Output, needle: &str) {
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains(needle), "{stdout}");
}
