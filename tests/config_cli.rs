//! `bulwark check-config` through the real binary: settings bulwark cannot
//! enforce are refused when the configuration is checked, never ignored or
//! found out first at `serve`.

use std::process::Command;

use bulwark::tlog::note::Signer;

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const GO_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const WARG_KEY: &str = "ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW";

/// Writes `config` (and `policy`, as `p.policy`, if given) to a temporary
/// directory and runs `bulwark ARGS FILE`; returns whether it succeeded and
/// its stderr.
fn run(args: &[&str], config: &str, policy: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(p) = policy {
        std::fs::write(dir.path().join("p.policy"), p).unwrap();
    }
    let file = dir.path().join("c.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n{config}",
            data.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN).args(args).arg(&file).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(config: &str, policy: Option<&str>) -> (bool, String) {
    run(&["check-config"], config, policy)
}

fn gomod(policy_file: &str) -> String {
    format!(
        "[[upstream]]\nname = \"golang\"\nprotocol = \"gomod\"\nurl = \"http://127.0.0.1:1\"\n\
         namespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", url = \"http://127.0.0.1:1\", key = \"{GO_KEY}\" }}\n\
         witness_policy = \"{policy_file}\"\n"
    )
}

#[test]
fn a_witness_policy_on_a_warg_upstream_is_refused_by_check_config_and_serve() {
    let config = format!(
        "[[upstream]]\nname = \"w\"\nprotocol = \"warg\"\nurl = \"http://127.0.0.1:1\"\n\
         operator_key = \"{WARG_KEY}\"\nnamespaces = [\"acme\"]\nwitness_policy = \"p.policy\"\n"
    );
    let policy = format!("log {GO_KEY}\nquorum none\n");
    // `serve` refuses the file before it binds, so it exits at once.
    for args in [&["check-config"][..], &["serve", "--config"][..]] {
        let (ok, err) = run(args, &config, Some(&policy));
        assert!(!ok, "{args:?}: a warg witness policy must be refused");
        assert!(
            err.contains("upstream[0].witness_policy") && err.contains("cannot enforce"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_witness_policy_is_parsed_and_checked_by_check_config() {
    // Not a policy at all.
    let (ok, err) = check(&gomod("p.policy"), Some("log nonsense\n"));
    assert!(!ok);
    assert!(err.contains("upstream[0].witness_policy"), "{err}");
    // A policy whose logs do not include the pinned key would admit trees
    // the pinned key never signed.
    let other = Signer::generate("example.com/log").unwrap().verifier_key();
    let (ok, err) = check(
        &gomod("p.policy"),
        Some(&format!("log {other}\nquorum none\n")),
    );
    assert!(!ok);
    assert!(
        err.contains("upstream[0].witness_policy") && err.contains("pinned sumdb.key"),
        "{err}"
    );
    // A missing file.
    let (ok, err) = check(&gomod("nowhere.policy"), None);
    assert!(!ok);
    assert!(err.contains("nowhere.policy"), "{err}");
    // The pinned log with quorum none: fine.
    let (ok, err) = check(
        &gomod("p.policy"),
        Some(&format!("log {GO_KEY}\nquorum none\n")),
    );
    assert!(ok, "{err}");
}

#[test]
fn a_key_another_protocol_takes_is_refused_naming_it_and_what_the_protocol_takes() {
    // Each protocol reads its own keys (src/<ecosystem>/config.rs); a Warg
    // key on a gomod upstream cannot be enforced there, so it is an error.
    let config = format!(
        "[[upstream]]\nname = \"golang\"\nprotocol = \"gomod\"\nurl = \"http://127.0.0.1:1\"\n\
         namespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", url = \"http://127.0.0.1:1\", key = \"{GO_KEY}\" }}\n\
         operator_key = \"{WARG_KEY}\"\n"
    );
    let (ok, err) = check(&config, None);
    assert!(!ok, "a warg key on a gomod upstream must be refused");
    assert!(
        err.contains("upstream[0].operator_key")
            && err.contains("unknown field `operator_key`")
            && err.contains("sumdb"),
        "{err}"
    );
    // An unknown protocol names the ones there are.
    let (ok, err) = check(&config.replace("\"gomod\"", "\"gomodd\""), None);
    assert!(!ok);
    assert!(
        err.contains("upstream[0].protocol") && err.contains("gomod") && err.contains("warg"),
        "{err}"
    );
}
