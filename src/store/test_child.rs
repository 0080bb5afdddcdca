//! Test support: re-runs this test binary as a child process running one
//! `#[ignore]`d test, so crash tests can SIGKILL real writers mid-way.
//!
//! Used by the crash tests of `store::blobs` and `verify::trust`. The child
//! test reads its instructions from environment variables and reports
//! progress as lines on stdout; the parent waits for a line, then kills it.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running child test process; killed and reaped on drop.
pub(crate) struct ChildTest {
    child: Child,
    out: BufReader<ChildStdout>,
}

/// The libtest name of `test` in the module `module` (from `module_path!()`,
/// whose first segment, the crate name, libtest leaves out).
pub(crate) fn test_name(module: &str, test: &str) -> String {
    let m = module.split_once("::").map_or("", |(_, rest)| rest);
    format!("{m}::{test}")
}

impl ChildTest {
    /// Starts the ignored test `name` of this binary with `env` set.
    pub(crate) fn spawn(name: &str, env: &[(&str, &str)]) -> ChildTest {
        // /proc/self/exe runs this very binary even if the file was
        // replaced since (a shared target directory); elsewhere fall back
        // to its path.
        let proc_exe = std::path::Path::new("/proc/self/exe");
        let exe = if proc_exe.exists() {
            proc_exe.to_path_buf()
        } else {
            std::env::current_exe().expect("current test binary")
        };
        let mut cmd = Command::new(exe);
        cmd.args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child test");
        let out = BufReader::new(child.stdout.take().expect("child stdout"));
        ChildTest { child, out }
    }

    /// Reads stdout lines until one contains `marker` (libtest may print
    /// "test name ... " before it on the same line); returns what follows
    /// the marker. Panics if the child ends first.
    pub(crate) fn wait_for(&mut self, marker: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read child stdout");
            assert!(n > 0, "child test ended before printing {marker:?}");
            if let Some(at) = line.find(marker) {
                return line[at + marker.len()..].trim_end().to_string();
            }
        }
    }

    /// SIGKILLs the child and reaps it.
    pub(crate) fn kill(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        self.reap();
    }
}
