//! `bulwark verify`: offline checks of what transparency logs publish, on
//! top of the pure core in `bulwark::tlog`.
//!
//! ```text
//! bulwark verify checkpoint (--key VKEY)... [--policy FILE] FILE|-
//! bulwark verify proof --policy FILE (--entry FILE | --leaf-hash BASE64) FILE|-
//! bulwark verify consistency --key VKEY --old FILE --new FILE --proof FILE
//! bulwark verify bundle --artifact FILE [--trusted-root FILE]
//!     [--issuer URL --identity REGEX | --publisher KIND:REPOSITORY[:WORKFLOW]]
//!     [--policy FILE] BUNDLE|-
//! ```
//!
//! Exit 0 only when everything holds, printing what was verified; exit 1
//! with one line naming the failed check, what was expected and what was
//! seen; exit 2 for usage errors (clap's own code, and ours for files that
//! cannot be read).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bulwark::tlog::checkpoint::Checkpoint;
use bulwark::tlog::merkle::{self, Hash};
use bulwark::tlog::note::{SignatureKind, VerifiedNote, VerifierKey};
use bulwark::tlog::policy::Policy;
use bulwark::tlog::proof::TlogProof;
use clap::{Args, Subcommand};

/// Largest input file read (notes, proofs, policies, entries).
const MAX_INPUT: u64 = 16 << 20;
/// Most hashes a consistency proof file may hold: a proof between trees
/// below 2^64 has at most 2·64 of them.
const MAX_PROOF_HASHES: usize = 128;

#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Verify a signed checkpoint: signature by a given key (or a policy's
    /// log), and the policy's witness quorum.
    Checkpoint(CheckpointArgs),
    /// Verify a c2sp.org/tlog-proof@v1 bundle: the checkpoint satisfies the
    /// policy and the entry is included in it.
    Proof(ProofArgs),
    /// Verify that a newer checkpoint extends an older one.
    Consistency(ConsistencyArgs),
    /// Verify Sigstore attestations of an artifact: a Sigstore bundle, a
    /// PEP 740 attestation or provenance object, or an npm attestations
    /// answer (recognised by content). Checks the certificate, signature,
    /// log entry, inclusion proof and signed checkpoint offline; not
    /// checkpoint consistency (that needs bulwark's trust state).
    Bundle(BundleArgs),
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    /// The artifact the attestations are about.
    #[arg(long)]
    artifact: PathBuf,
    /// A Sigstore trusted_root.json instead of the embedded production one.
    #[arg(long = "trusted-root", value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// Required OIDC issuer of the signing certificate.
    #[arg(long, requires = "identity", conflicts_with = "publisher")]
    issuer: Option<String>,
    /// Pattern the whole certificate SAN must match (with --issuer).
    #[arg(long, requires = "issuer", value_name = "REGEX")]
    identity: Option<String>,
    /// Required Trusted Publisher, e.g. `GitHub:owner/repo:release.yml`.
    #[arg(long, value_name = "KIND:REPOSITORY[:WORKFLOW]")]
    publisher: Option<String>,
    /// c2sp.org/tlog-policy the log's checkpoints must satisfy (witnesses).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The attestations, or `-` for standard input.
    file: PathBuf,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Verifier key of the log (`name+hex8+base64`); repeatable.
    #[arg(long = "key", value_name = "VKEY")]
    keys: Vec<String>,
    /// c2sp.org/tlog-policy file: its `log` lines give the keys and its
    /// quorum must hold.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The signed checkpoint, or `-` for standard input.
    file: PathBuf,
}

#[derive(Args, Debug)]
pub struct ProofArgs {
    /// c2sp.org/tlog-policy file for the proof's checkpoint.
    #[arg(long)]
    policy: PathBuf,
    /// The entry itself (its leaf hash is computed).
    #[arg(
        long,
        conflicts_with = "leaf_hash",
        required_unless_present = "leaf_hash"
    )]
    entry: Option<PathBuf>,
    /// The entry's leaf hash, base64.
    #[arg(long = "leaf-hash", value_name = "BASE64")]
    leaf_hash: Option<String>,
    /// The tlog-proof file, or `-` for standard input.
    file: PathBuf,
}

#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    /// Verifier key of the log (`name+hex8+base64`).
    #[arg(long = "key", value_name = "VKEY")]
    key: String,
    /// The older signed checkpoint.
    #[arg(long)]
    old: PathBuf,
    /// The newer signed checkpoint.
    #[arg(long)]
    new: PathBuf,
    /// The consistency proof: one base64 hash a line.
    #[arg(long)]
    proof: PathBuf,
}

/// How a verification ended, mapped to the exit code.
enum Failure {
    /// Exit 2: the command was used wrongly (unreadable file, bad key).
    Usage(String),
    /// Exit 1: a check failed.
    Check { check: &'static str, detail: String },
}

fn check(check: &'static str, detail: impl ToString) -> Failure {
    Failure::Check {
        check,
        detail: detail.to_string(),
    }
}

pub fn run(cmd: VerifyCommand) -> ExitCode {
    let result = match cmd {
        VerifyCommand::Checkpoint(a) => verify_checkpoint(a),
        VerifyCommand::Proof(a) => verify_proof(a),
        VerifyCommand::Consistency(a) => verify_consistency(a),
        VerifyCommand::Bundle(a) => verify_bundle(a),
    };
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Check { check, detail }) => {
            eprintln!("verification failed: {check}: {detail}");
            ExitCode::FAILURE
        }
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    let res = if path == Path::new("-") {
        std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut buf))
    };
    res.map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(Failure::Usage(format!(
            "{} is larger than {MAX_INPUT} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

fn parse_keys(keys: &[String]) -> Result<Vec<VerifierKey>, Failure> {
    keys.iter()
        .map(|k| {
            k.parse::<VerifierKey>()
                .map_err(|e| Failure::Usage(format!("--key {k:?}: {e}")))
        })
        .collect()
}

fn load_policy(path: &Path) -> Result<Policy, Failure> {
    let bytes = read_input(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Failure::Usage(format!("policy {} is not UTF-8", path.display())))?;
    Policy::parse(text).map_err(|e| Failure::Usage(format!("policy {}: {e}", path.display())))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn format_time(secs: u64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What a successful check prints: the checkpoint and who vouched for it.
fn describe(cp: &Checkpoint, signers: &[String]) -> String {
    let mut s = format!(
        "origin: {}\nsize: {}\nroot: {}\n",
        cp.origin, cp.size, cp.root
    );
    for line in signers {
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn note_signers(note: &VerifiedNote) -> Vec<String> {
    note.verified
        .iter()
        .map(|v| match v.kind {
            SignatureKind::Cosignature { time } => {
                format!("cosigned: {} at {} ({time})", v.name, format_time(time))
            }
            _ => format!("signed: {}", v.name),
        })
        .collect()
}

/// Opens a checkpoint note under keys and/or a policy; returns the
/// checkpoint and the lines describing its signers.
fn open_checkpoint(
    msg: &[u8],
    keys: &[VerifierKey],
    policy: Option<&Policy>,
) -> Result<(Checkpoint, Vec<String>), Failure> {
    let mut lines = Vec::new();
    let mut checkpoint = None;
    if !keys.is_empty() {
        let (cp, note) =
            Checkpoint::open(msg, keys).map_err(|e| check("checkpoint signature", e))?;
        if !note.verified.iter().any(|v| v.cosignature_time().is_none()) {
            return Err(check(
                "checkpoint signature",
                "only cosignatures verified; want a signature by a --key log key",
            ));
        }
        lines = note_signers(&note);
        checkpoint = Some(cp);
    }
    if let Some(policy) = policy {
        let v = policy
            .verify(msg, now_secs())
            .map_err(|e| check("witness policy", e))?;
        lines = vec![format!("signed: {} (policy log)", v.log)];
        for c in &v.cosigners {
            lines.push(format!(
                "cosigned: {} ({}) at {} ({})",
                c.witness,
                c.key_name,
                format_time(c.time),
                c.time
            ));
        }
        checkpoint = Some(v.checkpoint);
    }
    match checkpoint {
        Some(cp) => Ok((cp, lines)),
        None => Err(Failure::Usage("give --key or --policy".into())),
    }
}

fn verify_checkpoint(a: CheckpointArgs) -> Result<String, Failure> {
    let keys = parse_keys(&a.keys)?;
    let policy = a.policy.as_deref().map(load_policy).transpose()?;
    if keys.is_empty() && policy.is_none() {
        return Err(Failure::Usage(
            "verify checkpoint needs --key VKEY or --policy FILE".into(),
        ));
    }
    let msg = read_input(&a.file)?;
    let (cp, lines) = open_checkpoint(&msg, &keys, policy.as_ref())?;
    Ok(describe(&cp, &lines))
}

fn verify_proof(a: ProofArgs) -> Result<String, Failure> {
    let policy = load_policy(&a.policy)?;
    let leaf = match (&a.entry, &a.leaf_hash) {
        (Some(path), _) => merkle::leaf_hash(&read_input(path)?),
        (None, Some(b64)) => Hash::from_base64(b64.trim())
            .map_err(|e| Failure::Usage(format!("--leaf-hash: {e}")))?,
        (None, None) => return Err(Failure::Usage("give --entry or --leaf-hash".into())),
    };
    let bytes = read_input(&a.file)?;
    let proof = TlogProof::parse(&bytes).map_err(|e| check("proof format", e))?;
    let (cp, lines) = open_checkpoint(&proof.checkpoint_note, &[], Some(&policy))?;
    proof.verify_inclusion_in(&leaf, &cp).map_err(|e| {
        check(
            "inclusion proof",
            format!(
                "leaf {leaf} at index {} in tree of size {}: {e}",
                proof.index, cp.size
            ),
        )
    })?;
    let mut out = format!(
        "included: leaf {leaf} at index {} ({} proof hashes)\n",
        proof.index,
        proof.hashes.len()
    );
    if let Some(extra) = &proof.extra {
        out.push_str(&format!("extra: {}\n", String::from_utf8_lossy(extra)));
    }
    out.push_str(&describe(&cp, &lines));
    Ok(out)
}

/// Reads a proof file: one canonical base64 hash a line.
fn read_proof_hashes(path: &Path) -> Result<Vec<Hash>, Failure> {
    let bytes = read_input(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| check("proof format", format!("{} is not UTF-8", path.display())))?;
    let mut hashes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if hashes.len() == MAX_PROOF_HASHES {
            return Err(check(
                "proof format",
                format!("more than {MAX_PROOF_HASHES} hashes"),
            ));
        }
        let h = Hash::from_base64(line)
            .map_err(|e| check("proof format", format!("line {}: {e}", i + 1)))?;
        hashes.push(h);
    }
    Ok(hashes)
}

fn verify_consistency(a: ConsistencyArgs) -> Result<String, Failure> {
    let keys = parse_keys(std::slice::from_ref(&a.key))?;
    let (old, _) = open_checkpoint(&read_input(&a.old)?, &keys, None)
        .map_err(|f| relabel(f, "old checkpoint"))?;
    let (new, lines) = open_checkpoint(&read_input(&a.new)?, &keys, None)
        .map_err(|f| relabel(f, "new checkpoint"))?;
    if old.origin != new.origin {
        return Err(check(
            "origin",
            format!(
                "old checkpoint is for {:?}, new one for {:?}",
                old.origin, new.origin
            ),
        ));
    }
    let proof = read_proof_hashes(&a.proof)?;
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|e| {
        check(
            "consistency proof",
            format!("{} -> {}: {e}", old.size, new.size),
        )
    })?;
    let mut out = format!(
        "consistent: {} -> {} ({} proof hashes)\n",
        old.size,
        new.size,
        proof.len()
    );
    out.push_str(&describe(&new, &lines));
    Ok(out)
}

fn relabel(f: Failure, what: &'static str) -> Failure {
    match f {
        Failure::Check { detail, .. } => Failure::Check {
            check: what,
            detail,
        },
        other => other,
    }
}

fn refused(r: bulwark::sigstore::Refusal) -> Failure {
    check(r.check, format!("expected {}, seen {}", r.expected, r.seen))
}

fn verify_bundle(a: BundleArgs) -> Result<String, Failure> {
    use bulwark::sigstore::npm::NpmKeys;
    use bulwark::sigstore::{input, verify_attestation_reader, IdentityPolicy, Options, TrustRoot};

    let identity = match (&a.issuer, &a.identity, &a.publisher) {
        (Some(issuer), Some(pattern), None) => {
            IdentityPolicy::certificate(issuer, pattern).map_err(Failure::Usage)?
        }
        (None, None, Some(p)) => IdentityPolicy::publisher(p).map_err(Failure::Usage)?,
        (None, None, None) => IdentityPolicy::Report,
        _ => {
            return Err(Failure::Usage(
                "give --issuer with --identity, or --publisher, not both".into(),
            ))
        }
    };
    let root = match &a.trusted_root {
        Some(path) => {
            let bytes = read_input(path)?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Failure::Usage(format!("{} is not UTF-8", path.display())))?;
            TrustRoot::from_json(text)
                .map_err(|r| Failure::Usage(format!("--trusted-root {}: {r}", path.display())))?
        }
        None => TrustRoot::production().map_err(refused)?,
    };
    let policy = a.policy.as_deref().map(load_policy).transpose()?;
    let npm_keys = NpmKeys::embedded().map_err(refused)?;
    // Opened now so a missing artifact is a usage error before any check.
    open_artifact(&a.artifact)?;
    let input = read_input(&a.file)?;
    let (format, atts) = input::parse(&input).map_err(refused)?;
    let opts = Options {
        root: &root,
        identity: &identity,
        witnesses: policy.as_ref(),
        npm_keys: Some(&npm_keys),
        now: SystemTime::now(),
    };
    let mut out = String::new();
    for att in &atts {
        // Streamed, once per attestation: memory stays bounded whatever its size.
        let artifact = open_artifact(&a.artifact)?;
        let v = verify_attestation_reader(att, std::io::BufReader::new(artifact), &opts)
            .map_err(refused)?;
        out.push_str(&format!("attestation: {} ({})\n", v.label, format.as_str()));
        for e in &v.entries {
            let version = match e.version {
                bulwark::sigstore::RekorVersion::V1 => "Rekor v1",
                bulwark::sigstore::RekorVersion::V2 => "Rekor v2",
            };
            out.push_str(&format!(
                "  log: {} ({version}), {} entry, log index {}\n",
                e.log_url, e.kind, e.log_index
            ));
            out.push_str(&format!("  log origin: {}\n", e.checkpoint.origin));
            out.push_str(&format!("  proof index: {}\n", e.proof_index));
            out.push_str(&format!("  checkpoint size: {}\n", e.checkpoint.size));
            out.push_str(&format!("  checkpoint root: {}\n", e.checkpoint.root));
            for c in &e.cosigners {
                out.push_str(&format!(
                    "  cosigned: {} ({}) at {}\n",
                    c.witness,
                    c.key_name,
                    format_time(c.time)
                ));
            }
        }
        let time = v.signing_time.map_or_else(
            || "none".to_string(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        );
        out.push_str(&format!("  signing time: {time}\n"));
        out.push_str(&format!("  identity: {}\n", v.identity));
        if let Some(issuer) = &v.issuer {
            out.push_str(&format!("  issuer: {issuer}\n"));
        }
        if let Some(p) = &v.publisher {
            let workflow = p
                .workflow
                .as_deref()
                .or(p.workflow_filepath.as_deref())
                .unwrap_or("-");
            out.push_str(&format!(
                "  publisher: {} {} {workflow}\n",
                p.kind, p.repository
            ));
        }
        if let Some(pt) = &v.predicate_type {
            out.push_str(&format!("  predicate type: {pt}\n"));
        }
        for s in &v.subjects {
            let digests: Vec<String> = s
                .digests
                .iter()
                .map(|(alg, d)| format!("{alg}:{d}"))
                .collect();
            out.push_str(&format!("  subject: {} {}\n", s.name, digests.join(" ")));
        }
    }
    out.push_str(&format!(
        "verified: {} attestation(s); checkpoint consistency not checked offline (bulwark's trust state checks it when serving)\n",
        atts.len()
    ));
    Ok(out)
}

fn open_artifact(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::open(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}
