//! Verifying one attestation: bulwark's own log checks, then the
//! attestation itself through `sigstore-verify`, then the identity policy.

use super::input::{Attestation, Publisher};
use super::npm::{NpmKeys, USAGE_ATTESTATIONS};
use super::policy::{check_publisher, IdentityPolicy};
use super::root::{to_system_time, RekorVersion, TrustRoot};
use super::Refusal;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::policy::{Cosigner, Policy};
use serde::Deserialize;
use sigstore_verify::types::bundle::{TransparencyLogEntry, VerificationMaterialContent};
use sigstore_verify::types::Bundle;
use sigstore_verify::types::{
    ArtifactDigest, DerPublicKey, HashAlgorithm, Sha256Hash, SignatureContent,
};
use sigstore_verify::{
    Policy as SigstorePolicy, PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult,
    Verifier,
};
use std::time::{SystemTime, UNIX_EPOCH};

/// Most hashes an inclusion proof may carry (trees below 2^64).
pub const MAX_INCLUSION_HASHES: usize = 64;

/// Most log entries one bundle may cite.
pub const MAX_TLOG_ENTRIES: usize = 8;

/// What a verification needs besides the attestation and artifact.
pub struct Options<'a> {
    pub root: &'a TrustRoot,
    pub identity: &'a IdentityPolicy,
    /// A c2sp.org/tlog-policy the checkpoint must also satisfy (its log
    /// line names the log, its quorum the witnesses).
    pub witnesses: Option<&'a Policy>,
    /// The npm registry's keys, for public-key (npm publish) bundles.
    pub npm_keys: Option<&'a NpmKeys>,
    /// The time witness cosignatures are judged against.
    pub now: SystemTime,
}

/// One Rekor entry, verified by bulwark: included at `proof_index` in the
/// tree of `checkpoint`, which the log's key signed.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub log_url: String,
    pub version: RekorVersion,
    /// `hashedrekord 0.0.1`, `dsse 0.0.2`, ...
    pub kind: String,
    /// The global `logIndex` the bundle cites (Rekor v1: across shards).
    pub log_index: u64,
    /// The index the inclusion proof is at (Rekor v1: shard-local).
    pub proof_index: u64,
    pub checkpoint: Checkpoint,
    /// The signed checkpoint note as the bundle carries it.
    pub note: Vec<u8>,
    /// Witnesses of the policy whose cosignatures counted.
    pub cosigners: Vec<Cosigner>,
}

/// An in-toto subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    /// (algorithm, hex digest), sorted by algorithm.
    pub digests: Vec<(String, String)>,
}

/// A verified attestation.
#[derive(Debug, Clone)]
pub struct Verified {
    pub label: String,
    pub entries: Vec<LogEntry>,
    /// The authenticated signing time (Rekor integrated time or RFC 3161).
    pub signing_time: Option<SystemTime>,
    /// The certificate SAN, or `npm registry key <key ID>`.
    pub identity: String,
    pub issuer: Option<String>,
    /// In-toto predicate type (DSSE bundles).
    pub predicate_type: Option<String>,
    pub subjects: Vec<Subject>,
    pub publisher: Option<Publisher>,
    /// The publisher the Fulcio certificate itself names (GitHub or
    /// GitLab CI: issuer, source repository, workflow), if it names one.
    pub signer: Option<Publisher>,
}

/// The artifact an attestation is checked against.
#[derive(Debug, Clone, Copy)]
pub enum ArtifactInput<'a> {
    /// Its bytes.
    Bytes(&'a [u8]),
    /// Its SHA-256 digest (a registry's, or one computed while streaming).
    Sha256([u8; 32]),
    /// Its SHA-512 digest (npm's `dist.integrity`).
    Sha512([u8; 64]),
}

impl<'a> From<&'a [u8]> for ArtifactInput<'a> {
    fn from(b: &'a [u8]) -> Self {
        ArtifactInput::Bytes(b)
    }
}

impl<'a> From<&'a Vec<u8>> for ArtifactInput<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        ArtifactInput::Bytes(b)
    }
}

impl<'a> ArtifactInput<'a> {
    fn to_sigstore(self) -> sigstore_verify::types::Artifact<'a> {
        match self {
            ArtifactInput::Bytes(b) => sigstore_verify::types::Artifact::Blob(b),
            ArtifactInput::Sha256(d) => sigstore_verify::types::Artifact::from(Sha256Hash::new(d)),
            ArtifactInput::Sha512(d) => sigstore_verify::types::Artifact::from_digest(
                // 64 bytes is SHA-512's size, so this cannot fail.
                ArtifactDigest::new(HashAlgorithm::Sha2512, d.to_vec())
                    .unwrap_or_else(|_| ArtifactDigest::sha256(Sha256Hash::new([0; 32]))),
            ),
        }
    }
}

/// Verifies one attestation over `artifact`.
pub fn verify_attestation<'a>(
    att: &Attestation,
    artifact: impl Into<ArtifactInput<'a>>,
    opts: &Options<'_>,
) -> Result<Verified, Refusal> {
    let artifact = artifact.into();
    verify_with(att, opts, |verifier, bundle, policy| {
        verifier.verify(artifact.to_sigstore(), bundle, policy)
    })
}

/// Verifies one attestation over the artifact read from `reader` to its
/// end, in constant memory (the digests the bundle needs are computed while
/// reading). Bundle-only checks run before any byte is read.
pub fn verify_attestation_reader(
    att: &Attestation,
    reader: impl std::io::Read,
    opts: &Options<'_>,
) -> Result<Verified, Refusal> {
    verify_with(att, opts, |verifier, bundle, policy| {
        verifier.verify_reader(reader, bundle, policy)
    })
}

/// The shared path: `check` runs `sigstore-verify` over the artifact, once.
fn verify_with(
    att: &Attestation,
    opts: &Options<'_>,
    check: impl FnOnce(
        &Verifier,
        &Bundle,
        &dyn SigstorePolicy,
    ) -> sigstore_verify::Result<VerificationResult>,
) -> Result<Verified, Refusal> {
    super::provider::install();
    let bundle = &att.bundle;
    let tlog = &bundle.verification_material.tlog_entries;
    if tlog.is_empty() {
        return Err(Refusal::new(
            "transparency log entry",
            "a Rekor entry with an inclusion proof and a signed checkpoint",
            "none (nothing proves the signature was ever logged)",
        )
        .at(&att.label));
    }
    if tlog.len() > MAX_TLOG_ENTRIES {
        return Err(Refusal::new(
            "transparency log entry",
            format!("at most {MAX_TLOG_ENTRIES} entries"),
            format!("{}", tlog.len()),
        )
        .at(&att.label));
    }
    let mut entries = Vec::with_capacity(tlog.len());
    for entry in tlog {
        entries.push(verify_log_entry(entry, opts).map_err(|r| r.at(&att.label))?);
    }

    // The attestation: chain, SCT, time, signature, entry body.
    let (result, npm_key) = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(hint) => {
            let keys = opts.npm_keys.ok_or_else(|| {
                Refusal::new(
                    "signing key",
                    "a Fulcio certificate",
                    format!("public key {:?}", hint.hint),
                )
                .at(&att.label)
            })?;
            // The time picks the key; it is authenticated by the SET below.
            let claimed = tlog
                .iter()
                .find_map(|e| e.integrated_time)
                .map_or(opts.now, to_system_time);
            let key = keys
                .find(&hint.hint, USAGE_ATTESTATIONS, claimed)
                .map_err(|r| r.at(&att.label))?;
            let policy = PublicKeyVerificationPolicy::new(DerPublicKey::from_bytes(&key.spki));
            let result = check(&opts.root.verifier, bundle, &policy)
                .map_err(|e| map_error(e).at(&att.label))?;
            let time = result
                .integrated_time()
                .map(to_system_time)
                .ok_or_else(|| {
                    Refusal::new("integrated time", "a Rekor integrated time", "none")
                        .at(&att.label)
                })?;
            keys.find(&hint.hint, USAGE_ATTESTATIONS, time)
                .map_err(|r| r.at(&att.label))?;
            (result, Some(hint.hint.clone()))
        }
        _ => {
            let result = check(
                &opts.root.verifier,
                bundle,
                &VerificationPolicy::any_identity(),
            )
            .map_err(|e| map_error(e).at(&att.label))?;
            if !result.certificate_verified() || !result.sct_verified() || !result.tlog_verified() {
                return Err(Refusal::new(
                    "certificate chain",
                    "a verified chain, SCT and log entry",
                    "an incomplete verification",
                )
                .at(&att.label));
            }
            (result, None)
        }
    };

    // Who signed.
    let cert = result.certificate();
    opts.identity.check(cert).map_err(|r| r.at(&att.label))?;
    if let Some(p) = &att.publisher {
        // The publisher PyPI states must be the one the certificate names.
        check_publisher(p, cert).map_err(|r| r.at(&att.label))?;
    }

    // What it says.
    let (predicate_type, subjects) = match &bundle.content {
        SignatureContent::DsseEnvelope(env) => {
            let (p, s) = statement(env.payload.as_bytes()).map_err(|r| r.at(&att.label))?;
            (Some(p), s)
        }
        _ => (None, Vec::new()),
    };
    if let Some(listed) = &att.listed_predicate_type {
        if predicate_type.as_deref() != Some(listed.as_str()) {
            return Err(Refusal::new(
                "predicate type",
                format!("the listed {listed}"),
                predicate_type.unwrap_or_else(|| "none".into()),
            )
            .at(&att.label));
        }
    }
    let signing_time = result
        .integrated_time()
        .or_else(|| result.verified_timestamps().iter().min().copied())
        .map(to_system_time);
    // The log's key must have been valid when the entry was made (shards
    // of Rekor v2 have end dates; a retired key signs nothing new).
    if let Some(t) = signing_time {
        for e in tlog {
            let log = opts.root.log(e.log_id.key_id.as_bytes())?;
            let after_start = log.valid_from.is_none_or(|from| from <= t);
            let before_end = log.valid_until.is_none_or(|until| t < until);
            if !after_start || !before_end {
                let fmt = |t: Option<SystemTime>| {
                    t.map_or_else(
                        || "-".to_string(),
                        |t| humantime::format_rfc3339_seconds(t).to_string(),
                    )
                };
                return Err(Refusal::new(
                    "log validity",
                    format!(
                        "a signing time in the validity of {} ({} to {})",
                        log.url,
                        fmt(log.valid_from),
                        fmt(log.valid_until)
                    ),
                    humantime::format_rfc3339_seconds(t).to_string(),
                )
                .at(&att.label));
            }
        }
    }
    let identity = match &npm_key {
        Some(k) => format!("npm registry key {k}"),
        None => result
            .identity()
            .map_or_else(|| "none".to_string(), |s| s.to_string()),
    };
    Ok(Verified {
        label: att.label.clone(),
        entries,
        signing_time,
        identity,
        issuer: result.issuer().map(str::to_string),
        predicate_type,
        subjects,
        publisher: att.publisher.clone(),
        signer: cert.and_then(super::policy::publisher_of),
    })
}

/// bulwark's own check of one Rekor entry: inclusion at the proof's index
/// under a checkpoint the log's key signed (and the witness policy, if any).
pub fn verify_log_entry(
    entry: &TransparencyLogEntry,
    opts: &Options<'_>,
) -> Result<LogEntry, Refusal> {
    let log = opts.root.log(entry.log_id.key_id.as_bytes())?;
    let proof = entry.inclusion_proof.as_ref().ok_or_else(|| {
        Refusal::new(
            "inclusion proof",
            "an inclusion proof with a signed checkpoint",
            if entry.inclusion_promise.is_some() {
                "only an inclusion promise (SET)"
            } else {
                "none"
            },
        )
    })?;
    let envelope = proof.checkpoint.envelope();
    if envelope.is_empty() {
        return Err(Refusal::new(
            "checkpoint",
            "a signed checkpoint beside the inclusion proof",
            "none",
        ));
    }
    if proof.hashes.len() > MAX_INCLUSION_HASHES {
        return Err(Refusal::new(
            "inclusion proof",
            format!("at most {MAX_INCLUSION_HASHES} hashes"),
            format!("{}", proof.hashes.len()),
        ));
    }
    let index = proof.log_index.get();
    let size = proof.tree_size;
    let root = Hash(*proof.root_hash.as_bytes());
    let hashes: Vec<Hash> = proof.hashes.iter().map(|h| Hash(*h.as_bytes())).collect();
    let leaf = merkle::leaf_hash(entry.canonicalized_body.as_bytes());
    merkle::verify_inclusion(index, size, &leaf, &hashes, &root).map_err(|e| {
        Refusal::new(
            "inclusion proof",
            format!("the entry at index {index} of the tree of size {size} with root {root}"),
            e.to_string(),
        )
    })?;
    let note = envelope.as_bytes().to_vec();
    let (checkpoint, _) = Checkpoint::open(&note, std::slice::from_ref(&log.key)).map_err(|e| {
        Refusal::new(
            "checkpoint signature",
            format!("a checkpoint signed by {}", log.key),
            e.to_string(),
        )
    })?;
    if !log.accepts_origin(&checkpoint.origin) {
        let want = match log.version {
            RekorVersion::V1 => format!("{} - <tree id>", log.host),
            RekorVersion::V2 => log.host.clone(),
        };
        return Err(Refusal::new(
            "checkpoint origin",
            want,
            checkpoint.origin.clone(),
        ));
    }
    if checkpoint.size != size || checkpoint.root != root {
        return Err(Refusal::new(
            "checkpoint",
            format!("the proof's tree: size {size}, root {root}"),
            format!("size {}, root {}", checkpoint.size, checkpoint.root),
        ));
    }
    let mut cosigners = Vec::new();
    if let Some(policy) = opts.witnesses {
        let now = opts
            .now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let v = policy.verify(&note, now).map_err(|e| {
            Refusal::new(
                "witness policy",
                "a checkpoint satisfying the policy",
                e.to_string(),
            )
        })?;
        cosigners = v.cosigners;
    }
    Ok(LogEntry {
        log_url: log.url.clone(),
        version: log.version,
        kind: format!(
            "{} {}",
            entry.kind_version.kind(),
            entry.kind_version.version()
        ),
        log_index: entry.log_index.get(),
        proof_index: index,
        checkpoint,
        note,
        cosigners,
    })
}

/// The predicate type and subjects of an in-toto statement.
fn statement(payload: &[u8]) -> Result<(String, Vec<Subject>), Refusal> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement {
        predicate_type: String,
        subject: Vec<RawSubject>,
    }
    #[derive(Deserialize)]
    struct RawSubject {
        #[serde(default)]
        name: String,
        digest: std::collections::BTreeMap<String, String>,
    }
    let s: Statement = serde_json::from_slice(payload)
        .map_err(|e| Refusal::new("statement", "an in-toto statement", e.to_string()))?;
    let subjects = s
        .subject
        .into_iter()
        .map(|r| Subject {
            name: r.name,
            digests: r.digest.into_iter().collect(),
        })
        .collect();
    Ok((s.predicate_type, subjects))
}

/// A `sigstore-verify` error as a refusal naming the check.
fn map_error(e: sigstore_verify::Error) -> Refusal {
    use sigstore_verify::{
        CertificateError as C, Error as E, TimestampError as T, TransparencyLogError as L,
    };
    let seen = e.to_string();
    let (check, expected) = match &e {
        E::SignatureInvalid(_) => (
            "signature",
            "a signature by the signing key over the artifact or DSSE payload",
        ),
        E::ArtifactMismatch(_) => (
            "artifact digest",
            "the artifact's digest in the signed content",
        ),
        E::UnsupportedArtifact(_) => (
            "artifact digest",
            "an artifact digest the bundle can be checked with",
        ),
        E::Certificate(C::ChainInvalid(_)) | E::Certificate(C::NoValidAuthority { .. }) => (
            "certificate chain",
            "a chain to a Fulcio root of the trusted root valid at the signing time",
        ),
        E::Certificate(C::NotYetValid { .. }) | E::Certificate(C::Expired { .. }) => (
            "certificate validity",
            "a certificate valid at the signing time",
        ),
        E::Certificate(C::Sct(_)) => (
            "sct",
            "a signed certificate timestamp by a CT log of the trusted root",
        ),
        E::Certificate(_) => ("certificate", "a well-formed Fulcio certificate"),
        E::TransparencyLog(L::UnknownLog { .. }) => ("log", "a Rekor log of the trusted root"),
        E::TransparencyLog(L::InclusionProof(_)) => ("inclusion proof", "a valid inclusion proof"),
        E::TransparencyLog(L::Checkpoint(_)) => ("checkpoint", "a checkpoint signed by the log"),
        E::TransparencyLog(L::InclusionPromise(_)) => {
            ("inclusion promise", "a signed entry timestamp by the log")
        }
        E::TransparencyLog(L::EntryMismatch(_)) | E::TransparencyLog(L::MalformedEntry(_)) => (
            "log entry body",
            "a log entry body bound to this signature and artifact",
        ),
        E::TransparencyLog(L::IntegratedTime(_)) => (
            "integrated time",
            "an integrated time within the certificate's validity",
        ),
        E::TransparencyLog(_) => ("log entry", "a valid transparency log entry"),
        E::Timestamp(T::NoVerifiedTimestamp(_)) => ("timestamp", "a verified signing time"),
        E::Timestamp(_) => (
            "timestamp",
            "an RFC 3161 timestamp by a TSA of the trusted root",
        ),
        E::InvalidBundle(_) | E::UnsupportedBundle(_) | E::Bundle(_) | E::Types(_) => {
            ("bundle", "a valid Sigstore bundle")
        }
        E::InvalidTrustRoot(_) | E::TrustRoot(_) | E::TrustedCertificate(_) => {
            ("trusted root", "valid trust material")
        }
        E::Crypto(_) => ("signature", "a signature bulwark can verify"),
        E::ArtifactRead(_) => ("artifact", "a readable artifact"),
        _ => ("verification", "a verifiable attestation"),
    };
    Refusal::new(check, expected, seen)
}
