//! `bulwark verify` end to end through the binary, on the real Tessera log
//! in tests/data/tessera-log (see tests/data/README.md for provenance) and
//! on notes made here with the note signer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bulwark::tlog::merkle::{consistency_proof_from_leaves, leaf_hash, Hash};
use bulwark::tlog::note::{add_signatures, sign, Signer};
use bulwark::tlog::tile::parse_entry_bundle;

const TESSERA_KEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tessera-log")
        .join(rel)
}

fn bulwark(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bulwark");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            input.write_all(bytes).expect("write stdin");
        }
    }
    child.wait_with_output().expect("bulwark output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The leaf hashes of the first 15 Tessera entries, from the entry bundle.
fn tessera_leaves() -> Vec<Hash> {
    let bundle = std::fs::read(data("tile/entries/000.p/15")).unwrap();
    parse_entry_bundle(&bundle, 15)
        .unwrap()
        .into_iter()
        .map(leaf_hash)
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verifies_every_tessera_checkpoint_under_its_key() {
    for n in 0..=15 {
        let path = data(&format!("checkpoint.{n}"));
        let out = bulwark(
            &["verify", "checkpoint", "--key", TESSERA_KEY, s(&path)],
            None,
        );
        assert!(
            out.status.success(),
            "checkpoint.{n}: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("origin: example.com/log/testdata\n"),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("size: {n}\n")), "{stdout}");
        assert!(
            stdout.contains("signed: example.com/log/testdata"),
            "{stdout}"
        );
    }
}

#[test]
fn refuses_a_checkpoint_with_one_bit_changed() {
    let mut bytes = std::fs::read(data("checkpoint.15")).unwrap();
    // Flip a bit in the root hash line (third line): the signature no
    // longer covers the text.
    let root_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 4;
    bytes[root_line] ^= 0x01;
    let out = bulwark(
        &["verify", "checkpoint", "--key", TESSERA_KEY, "-"],
        Some(&bytes),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("verification failed: checkpoint signature:"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn refuses_a_checkpoint_signed_by_another_key() {
    let other = Signer::generate("example.com/log/testdata").unwrap();
    let note = sign(
        &std::fs::read_to_string(data("checkpoint.15"))
            .unwrap()
            .split("\n\n")
            .next()
            .map(|t| format!("{t}\n"))
            .unwrap(),
        &[&other],
    )
    .unwrap();
    let out = bulwark(
        &["verify", "checkpoint", "--key", TESSERA_KEY, "-"],
        Some(&note),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no signature by a known key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let path = data("checkpoint.15");
    // Neither --key nor --policy.
    let out = bulwark(&["verify", "checkpoint", s(&path)], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A malformed key.
    let out = bulwark(&["verify", "checkpoint", "--key", "nope", s(&path)], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // An unknown subcommand.
    let out = bulwark(&["verify", "nothing"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn proves_consistency_between_tessera_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = tessera_leaves();
    for (old, new) in [(0u64, 15u64), (1, 15), (5, 15), (7, 8), (8, 15), (15, 15)] {
        let proof = consistency_proof_from_leaves(old, &leaves[..new as usize]).unwrap();
        let lines: String = proof.iter().map(|h| format!("{h}\n")).collect();
        let proof_path = write(dir.path(), "proof", lines.as_bytes());
        let out = bulwark(
            &[
                "verify",
                "consistency",
                "--key",
                TESSERA_KEY,
                "--old",
                s(&data(&format!("checkpoint.{old}"))),
                "--new",
                s(&data(&format!("checkpoint.{new}"))),
                "--proof",
                s(&proof_path),
            ],
            None,
        );
        assert!(out.status.success(), "{old}->{new}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("consistent: {old} -> {new}")));
    }
}

#[test]
fn refuses_a_consistency_proof_with_a_changed_hash_or_swapped_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let leaves = tessera_leaves();
    let proof = consistency_proof_from_leaves(5, &leaves).unwrap();
    assert!(!proof.is_empty());
    let run = |old: &str, new: &str, proof: &[Hash]| {
        let lines: String = proof.iter().map(|h| format!("{h}\n")).collect();
        let proof_path = write(dir.path(), "proof", lines.as_bytes());
        bulwark(
            &[
                "verify",
                "consistency",
                "--key",
                TESSERA_KEY,
                "--old",
                s(&data(old)),
                "--new",
                s(&data(new)),
                "--proof",
                s(&proof_path),
            ],
            None,
        )
    };
    for i in 0..proof.len() {
        let mut bad = proof.clone();
        bad[i].0[7] ^= 0x80;
        let out = run("checkpoint.5", "checkpoint.15", &bad);
        assert_eq!(out.status.code(), Some(1), "hash {i}");
        assert!(
            text(&out.stderr).starts_with("verification failed: consistency proof: 5 -> 15:"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = run("checkpoint.15", "checkpoint.5", &proof);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("larger than new size"));
    // A proof for other sizes does not fit.
    let out = run("checkpoint.6", "checkpoint.15", &proof);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn refuses_a_proof_file_that_is_not_base64_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let proof_path = write(dir.path(), "proof", b"not a hash\n");
    let out = bulwark(
        &[
            "verify",
            "consistency",
            "--key",
            TESSERA_KEY,
            "--old",
            s(&data("checkpoint.5")),
            "--new",
            s(&data("checkpoint.15")),
            "--proof",
            s(&proof_path),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("proof format: line 1"));
}

#[test]
fn a_policy_alone_gives_the_log_key_and_its_quorum_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let log = Signer::generate("example.com/log").unwrap();
    let w1 = Signer::generate("witness.example/one").unwrap();
    let w2 = Signer::generate("witness.example/two").unwrap();
    let body = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let signed = sign(body, &[&log]).unwrap();
    let time = 1_700_000_000;
    let cosigned = add_signatures(&signed, &[&w1.cosigner(time).unwrap()]).unwrap();
    let policy = format!(
        "log {}\nwitness one {}\nwitness two {}\ngroup both all one two\ngroup either any one two\n",
        log.verifier_key(),
        w1.verifier_key(),
        w2.verifier_key()
    );
    let any = write(
        dir.path(),
        "any.policy",
        format!("{policy}quorum either\n").as_bytes(),
    );
    let all = write(
        dir.path(),
        "all.policy",
        format!("{policy}quorum both\n").as_bytes(),
    );
    let note = write(dir.path(), "checkpoint", &cosigned);

    let out = bulwark(
        &["verify", "checkpoint", "--policy", s(&any), s(&note)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("size: 3\n"), "{stdout}");
    assert!(
        stdout.contains("cosigned: one (witness.example/one) at 2023-11-14T22:13:20Z (1700000000)"),
        "{stdout}"
    );

    let out = bulwark(
        &["verify", "checkpoint", "--policy", s(&all), s(&note)],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).starts_with("verification failed: witness policy:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verifies_the_real_sum_golang_org_note_from_stdin() {
    let note = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n\u{2014} sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";
    let key = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    let out = bulwark(
        &["verify", "checkpoint", "--key", key, "-"],
        Some(note.as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("size: 30055305\n"));
}

/// A c2sp.org/tlog-proof@v1 bundle for Tessera entry `index` in the tree of
/// size 15, built from the entry bundle and the real checkpoint.15.
fn tessera_tlog_proof(index: u64) -> (Vec<u8>, Vec<u8>) {
    use bulwark::tlog::merkle::inclusion_proof_from_leaves;
    use bulwark::tlog::proof::TlogProof;
    let bundle = std::fs::read(data("tile/entries/000.p/15")).unwrap();
    let entries = parse_entry_bundle(&bundle, 15).unwrap();
    let entry = entries[index as usize].to_vec();
    let proof = TlogProof {
        extra: None,
        index,
        hashes: inclusion_proof_from_leaves(index, &tessera_leaves()).unwrap(),
        checkpoint_note: std::fs::read(data("checkpoint.15")).unwrap(),
    };
    (proof.to_bytes(), entry)
}

#[test]
fn verifies_tlog_proofs_of_every_tessera_entry() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "log.policy",
        format!("log {TESSERA_KEY}\nquorum none\n").as_bytes(),
    );
    for index in 0..15u64 {
        let (proof, entry) = tessera_tlog_proof(index);
        let proof_path = write(dir.path(), "proof", &proof);
        let entry_path = write(dir.path(), "entry", &entry);
        let out = bulwark(
            &[
                "verify",
                "proof",
                "--policy",
                s(&policy),
                "--entry",
                s(&entry_path),
                s(&proof_path),
            ],
            None,
        );
        assert!(out.status.success(), "entry {index}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("at index {index}")));
        // The same by leaf hash, from stdin.
        let leaf = leaf_hash(&entry).to_base64();
        let out = bulwark(
            &[
                "verify",
                "proof",
                "--policy",
                s(&policy),
                "--leaf-hash",
                &leaf,
                "-",
            ],
            Some(&proof),
        );
        assert!(out.status.success(), "entry {index}: {}", text(&out.stderr));
    }
}

#[test]
fn refuses_tlog_proofs_for_another_entry_a_changed_hash_or_an_unmet_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "log.policy",
        format!("log {TESSERA_KEY}\nquorum none\n").as_bytes(),
    );
    let (proof, _) = tessera_tlog_proof(3);
    let (_, other_entry) = tessera_tlog_proof(4);
    let run = |proof: &[u8], entry: &[u8], policy: &Path| {
        let proof_path = write(dir.path(), "proof", proof);
        let entry_path = write(dir.path(), "entry", entry);
        bulwark(
            &[
                "verify",
                "proof",
                "--policy",
                s(policy),
                "--entry",
                s(&entry_path),
                s(&proof_path),
            ],
            None,
        )
    };
    // Another entry's bytes.
    let out = run(&proof, &other_entry, &policy);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("verification failed: inclusion proof:"),
        "{}",
        text(&out.stderr)
    );
    // A proof hash changed (the first hash line follows "index 3\n").
    let (_, entry) = tessera_tlog_proof(3);
    let mut bad = proof.clone();
    let at = bad.windows(8).position(|w| w == b"index 3\n").unwrap() + 8;
    bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
    let out = run(&bad, &entry, &policy);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // Garbage instead of a proof.
    let out = run(b"c2sp.org/tlog-proof@v1\nindex x\n", &entry, &policy);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("proof format"),
        "{}",
        text(&out.stderr)
    );
    // A policy that wants a witness the checkpoint lacks.
    let witness = Signer::generate("witness.example/w").unwrap();
    let strict = write(
        dir.path(),
        "strict.policy",
        format!(
            "log {TESSERA_KEY}\nwitness w {}\nquorum w\n",
            witness.verifier_key()
        )
        .as_bytes(),
    );
    let out = run(&proof, &entry, &strict);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("witness policy"),
        "{}",
        text(&out.stderr)
    );
}
