//! Attestation policy, one definition for every ecosystem whose registry
//! publishes Sigstore attestations (PyPI's PEP 740 provenance, npm's
//! publish attestations and provenance): the configuration keys and what
//! they mean, the Rekor step every verified attestation goes through, and
//! the never-downgrade verdict.
//!
//! ```toml
//! attestations = "required"            # or "if-present", "off"
//! publishers = { "<name pattern>" = "GitHub:owner/repo[:workflow]" }
//! sigstore_root = "trusted_root.json"  # default: the embedded production root
//! rekor_urls = { "rekor.sigstore.dev" = "https://rekor-mirror.internal" }
//! rekor_consistency = "when-reachable" # or "required"
//! ```
//!
//! plus one per-name table of modes, named by the ecosystem
//! (`project_attestations` for PyPI, `package_attestations` for npm).
//!
//! - `attestations = "required"` (the default): an artifact is served only
//!   with verified attestations (Sigstore chain, signature, Rekor inclusion
//!   and checkpoint recorded in the trust state, the subject naming the
//!   artifact with its digest, the publisher).
//! - `"if-present"`: verified when the registry has attestations;
//!   otherwise served marked (`Bulwark-Attestation: none`) and counted
//!   (`bulwark_unvouched_served_total`), unless the name was seen attested
//!   before (never downgrade, [`crate::verify::ledger`]).
//! - `"off"`: the explicit opt-out (the registry's hash only).
//! - `publishers`: name pattern → the CI publisher (`KIND:REPOSITORY[:WORKFLOW]`,
//!   KIND `GitHub` or `GitLab`) the attestations must come from.
//! - `sigstore_root`, `rekor_urls`: the trusted root, and where a Rekor
//!   log's consistency proofs are fetched from (its key stays the root's).
//! - `rekor_consistency`: when a Rekor log cannot be reached for the
//!   consistency proof of a new checkpoint, `"when-reachable"` accepts the
//!   attestation on its inclusion proof and signed checkpoint (counted as
//!   `rekor consistency deferred` and logged), `"required"` refuses it. A
//!   log that answers wrongly is refused (and quarantined) either way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{ConfigError, ProtocolKeys};
use crate::metrics::Metrics;
use crate::pattern::NamePatterns;
use crate::sigstore::log::CHECK_CONSISTENCY_PROOF;
use crate::sigstore::verify::Verified;
use crate::sigstore::{IdentityPolicy, TrustRoot};
use crate::verify::ledger::Verdict;

use crate::store::index::Entry;
use crate::store::Digest;

use super::artifacts::Artifacts;
use super::refusal::Refusal;
use super::rekor::{Consistency, Rekor};
use super::trust::Trust;

/// The response header saying what stands behind a served artifact.
pub const ATTESTATION_HEADER: &str = "bulwark-attestation";
/// The metrics check counting attestation verifications.
pub const CHECK_ATTESTATION: &str = "attestation";
/// The metrics check counting Rekor consistency proofs deferred.
pub const CHECK_REKOR_DEFERRED: &str = "rekor consistency deferred";

/// How an artifact's attestations are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attestations {
    /// Verified attestations are required.
    Required,
    /// Verified when present; otherwise the registry's hash, marked and
    /// counted.
    IfPresent,
    /// The registry's hash only.
    Off,
}

impl Attestations {
    pub fn parse(s: &str) -> Result<Attestations, String> {
        match s {
            "required" => Ok(Attestations::Required),
            "if-present" => Ok(Attestations::IfPresent),
            "off" => Ok(Attestations::Off),
            other => Err(format!(
                "expected \"required\", \"if-present\" or \"off\", saw {other:?}"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Attestations::Required => "required",
            Attestations::IfPresent => "if-present",
            Attestations::Off => "off",
        }
    }
}

/// What stands behind a served artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouched {
    /// Its attestations verified.
    Attested,
    /// No attestation; served on the registry's hash as `if-present`
    /// allows.
    Unattested,
    /// `attestations = "off"`: the registry's hash only.
    IndexOnly,
}

impl Vouched {
    /// The [`ATTESTATION_HEADER`] value.
    fn header_value(self) -> &'static str {
        match self {
            Vouched::Attested => "verified",
            Vouched::Unattested => "none",
            Vouched::IndexOnly => "off",
        }
    }

    /// Says on `headers` what vouches for the answer they head.
    pub fn mark(self, headers: &mut http::HeaderMap) {
        headers.insert(
            ATTESTATION_HEADER,
            http::HeaderValue::from_static(self.header_value()),
        );
    }
}

/// An expected publisher, as written and as a policy.
#[derive(Debug, Clone)]
pub struct ExpectedPublisher {
    pub written: String,
    pub policy: IdentityPolicy,
}

/// The attestation keys of one upstream, as written (each ecosystem's
/// configuration struct carries these fields and hands them over).
#[derive(Debug, Default)]
pub struct RawPolicy {
    pub attestations: Option<String>,
    /// The per-name modes, and the key they were written under.
    pub per_name: (&'static str, BTreeMap<String, String>),
    pub publishers: BTreeMap<String, String>,
    pub sigstore_root: Option<String>,
    pub rekor_urls: BTreeMap<String, String>,
    pub rekor_consistency: Option<String>,
}

/// One upstream's attestation policy, checked.
pub struct AttestationPolicy {
    /// The upstream's mode.
    pub attestations: Attestations,
    /// Per name pattern.
    pub per_name: NamePatterns<Attestations>,
    pub publishers: NamePatterns<ExpectedPublisher>,
    /// The Sigstore trusted root, with `rekor_urls` applied.
    pub root: Arc<TrustRoot>,
    /// Where the root came from, for `check-config`.
    pub root_source: String,
    /// Refuse an attestation whose Rekor log cannot be reached for a
    /// consistency proof (`rekor_consistency = "required"`).
    pub rekor_consistency_required: bool,
}

impl std::fmt::Debug for AttestationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationPolicy")
            .field("attestations", &self.attestations)
            .field("per_name", &self.per_name)
            .field("publishers", &self.publishers)
            .field("root_source", &self.root_source)
            .finish_non_exhaustive()
    }
}

impl AttestationPolicy {
    /// Checks `raw`; `normalize` turns a written name pattern into the
    /// ecosystem's normal form.
    pub fn from_raw(
        keys: &ProtocolKeys<'_>,
        raw: RawPolicy,
        normalize: impl Fn(&str) -> Result<String, String>,
    ) -> Result<AttestationPolicy, ConfigError> {
        let attestations = Attestations::parse(raw.attestations.as_deref().unwrap_or("required"))
            .map_err(|e| keys.err("attestations", e))?;
        let (per_name_key, per_name_raw) = raw.per_name;
        let mut per_name = NamePatterns::default();
        for (pattern, mode) in &per_name_raw {
            let key = format!("{per_name_key}.{pattern:?}");
            let normal = normalize(pattern).map_err(|e| keys.err(&key, e))?;
            let mode = Attestations::parse(mode).map_err(|e| keys.err(&key, e))?;
            per_name
                .insert(&normal, mode)
                .map_err(|e| keys.err(&key, e))?;
        }
        let mut publishers = NamePatterns::default();
        for (pattern, spec) in &raw.publishers {
            let key = format!("publishers.{pattern:?}");
            let normal = normalize(pattern).map_err(|e| keys.err(&key, e))?;
            let policy = IdentityPolicy::publisher(spec).map_err(|e| keys.err(&key, e))?;
            publishers
                .insert(
                    &normal,
                    ExpectedPublisher {
                        written: spec.clone(),
                        policy,
                    },
                )
                .map_err(|e| keys.err(&key, e))?;
        }
        let (mut root, root_source) = match &raw.sigstore_root {
            None => (
                TrustRoot::production()
                    .map_err(|r| keys.err("sigstore_root", format!("embedded root: {r}")))?,
                "the embedded Sigstore production root".to_string(),
            ),
            Some(written) => {
                let path = keys.path(written);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| keys.err("sigstore_root", format!("{}: {e}", path.display())))?;
                let root = TrustRoot::from_json(&text)
                    .map_err(|r| keys.err("sigstore_root", format!("{}: {r}", path.display())))?;
                (root, format!("the Sigstore root {}", path.display()))
            }
        };
        for (host, url) in &raw.rekor_urls {
            let key = format!("rekor_urls.{host:?}");
            let url = keys.url(&key, url)?;
            root.override_url(host, &url)
                .map_err(|r| keys.err(&key, r.to_string()))?;
        }
        let rekor_consistency_required = match raw.rekor_consistency.as_deref() {
            None | Some("when-reachable") => false,
            Some("required") => true,
            Some(other) => {
                return Err(keys.err(
                    "rekor_consistency",
                    format!("expected \"required\" or \"when-reachable\", saw {other:?}"),
                ))
            }
        };
        Ok(AttestationPolicy {
            attestations,
            per_name,
            publishers,
            root: Arc::new(root),
            root_source,
            rekor_consistency_required,
        })
    }

    /// The mode for `name` (in the ecosystem's normal form).
    pub fn mode(&self, name: &str) -> Attestations {
        self.per_name
            .get(name)
            .map_or(self.attestations, |(_, m)| *m)
    }

    /// The publisher `name`'s artifacts must come from, if one is set.
    pub fn publisher(&self, name: &str) -> Option<&ExpectedPublisher> {
        self.publishers.get(name).map(|(_, p)| p)
    }

    /// The identity policy for `name`: its expected publisher, or report.
    pub fn identity(&self, name: &str) -> IdentityPolicy {
        self.publisher(name)
            .map_or(IdentityPolicy::Report, |p| p.policy.clone())
    }

    /// What `check-config` shows; `what` names the attestations
    /// (`PEP 740 provenance`).
    pub fn pinned(&self, what: &str, off: &str) -> String {
        let mut s = match self.attestations {
            Attestations::Off => format!("attestations off: {off}"),
            mode => format!(
                "attestations {}: {what} verified under {}",
                mode.as_str(),
                self.root_source
            ),
        };
        for (p, m) in self.per_name.iter() {
            s.push_str(&format!("; {p}: attestations {}", m.as_str()));
        }
        for (p, e) in self.publishers.iter() {
            s.push_str(&format!("; {p}: publisher {}", e.written));
        }
        if self.rekor_consistency_required {
            s.push_str("; Rekor consistency required");
        }
        s
    }
}

/// The index kinds an ecosystem records its attestation outcomes under.
#[derive(Debug, Clone, Copy)]
pub struct Kinds {
    /// The verified attestations of an artifact (key: the artifact's).
    pub attested: &'static str,
    /// An artifact served without attestations as `if-present` allows.
    pub unattested: &'static str,
}

/// What stands behind an artifact already stored under `key`, as `mode`
/// asks: `None` when it must be vouched for again (it was stored under a
/// looser policy, or a crash came between storing it and recording its
/// attestations). An unattested artifact served is counted.
pub async fn stored_vouched(
    artifacts: &Artifacts,
    upstream: &str,
    epoch: u64,
    kinds: Kinds,
    key: &str,
    mode: Attestations,
) -> Result<Option<Vouched>, Refusal> {
    if mode == Attestations::Off {
        return Ok(Some(Vouched::IndexOnly));
    }
    if artifacts
        .entry(upstream, epoch, kinds.attested, key)
        .await?
        .is_some()
    {
        return Ok(Some(Vouched::Attested));
    }
    if mode == Attestations::IfPresent
        && artifacts
            .entry(upstream, epoch, kinds.unattested, key)
            .await?
            .is_some()
    {
        artifacts.metrics().unvouched(upstream);
        return Ok(Some(Vouched::Unattested));
    }
    Ok(None)
}

/// Records that the artifact `key` (of `digest`) is served without
/// attestations, as `attestations = "if-present"` allows (`what` names
/// what it lacks: `PEP 740 provenance`), and counts it.
pub async fn mark_unattested(
    artifacts: &Artifacts,
    upstream: &str,
    epoch: u64,
    kinds: Kinds,
    key: String,
    digest: Digest,
    what: &str,
) -> Result<Vouched, Refusal> {
    let why = format!("no {what}; served as attestations = \"if-present\" allows");
    artifacts
        .index(
            upstream,
            epoch,
            kinds.unattested,
            vec![(key, Entry::new(digest, why))],
        )
        .await?;
    artifacts.metrics().unvouched(upstream);
    Ok(Vouched::Unattested)
}

/// The refusal of attestations that did not verify (`what` names them:
/// `the PEP 740 provenance of <file>`), counted as a failed `attestation`
/// check.
pub fn refused(
    metrics: &Metrics,
    upstream: &str,
    what: &str,
    r: crate::sigstore::Refusal,
) -> Refusal {
    metrics.verification(upstream, CHECK_ATTESTATION, false);
    Refusal::new(
        upstream,
        r.check,
        http::StatusCode::FORBIDDEN,
        format!("upstream {upstream}: refused {what}: {r}"),
    )
    .expected_seen(r.expected, r.seen)
}

/// Accepts attestations that verified: their Rekor checkpoints recorded
/// ([`record_rekor`]), then counted as a passed `attestation` check.
pub async fn accept(
    rekor: &Rekor,
    metrics: &Metrics,
    upstream: &str,
    artifact: &str,
    verified: &[Verified],
    consistency_required: bool,
) -> Result<Vec<String>, Refusal> {
    let lines = record_rekor(
        rekor,
        metrics,
        upstream,
        artifact,
        verified,
        consistency_required,
    )
    .await?;
    metrics.verification(upstream, CHECK_ATTESTATION, true);
    Ok(lines)
}

/// Records the Rekor checkpoint of every entry of `verified` through the
/// follower (consistency with everything accepted of its log). A log that
/// cannot be reached is refused under `rekor_consistency = "required"`,
/// else counted and logged. Returns one line per entry for the index's
/// proof text. `artifact` names what was attested, for messages.
async fn record_rekor(
    rekor: &Rekor,
    metrics: &Metrics,
    upstream: &str,
    artifact: &str,
    verified: &[Verified],
    consistency_required: bool,
) -> Result<Vec<String>, Refusal> {
    let mut lines = Vec::new();
    for att in verified {
        let deferred = rekor.record(upstream, &att.entries).await? == Consistency::Deferred;
        if deferred {
            metrics.verification(upstream, CHECK_REKOR_DEFERRED, false);
            if consistency_required {
                return Err(Refusal::new(
                    upstream,
                    CHECK_CONSISTENCY_PROOF,
                    http::StatusCode::BAD_GATEWAY,
                    format!(
                        "upstream {upstream}: {artifact}: the Rekor log could not be reached for \
                         the consistency proof of its checkpoint, and rekor_consistency = \
                         \"required\""
                    ),
                )
                .expected_seen("a consistency proof from the log", "unreachable"));
            }
            tracing::warn!(
                upstream = %upstream,
                artifact = %artifact,
                "Rekor unreachable: attestation accepted on its inclusion proof and signed \
                 checkpoint; consistency with earlier checkpoints not proven"
            );
        }
        for e in &att.entries {
            lines.push(format!(
                "{} entry {}{}",
                e.checkpoint.origin,
                e.log_index,
                if deferred {
                    " (consistency not proven: log unreachable)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(lines)
}

/// Never downgrade: the ledger's verdict on an artifact of `name` attested
/// by `publishers` (empty: unattested). `kind` names the attestation in
/// messages (`a PEP 740 attestation`).
pub async fn judge(
    trust: &Trust,
    upstream: &str,
    name: &str,
    publishers: &[String],
    artifact: &str,
    kind: &str,
) -> Result<(), Refusal> {
    let (up, n, seen, a) = (
        upstream.to_string(),
        name.to_string(),
        publishers.to_vec(),
        artifact.to_string(),
    );
    let verdict = trust
        .run(move |s| s.judge_publishers(&up, &n, &seen, &a, SystemTime::now()))
        .await
        .map_err(|e| Refusal::from_trust(&e))?;
    let Verdict::Downgrade(ledger) = verdict else {
        return Ok(());
    };
    let since = humantime::format_rfc3339_seconds(ledger.since);
    let (check, expected, seen) = if publishers.is_empty() {
        (
            "attestation downgrade",
            format!(
                "{kind} from {} (verified for {name} since {since}, first on {})",
                ledger.publishers.join(" or "),
                ledger.first
            ),
            "no attestation".to_string(),
        )
    } else {
        (
            "publisher change",
            if ledger.publishers.is_empty() {
                format!("no attestation (an operator's decision of {since})")
            } else {
                format!(
                    "{} (verified for {name} since {since}, first on {})",
                    ledger.publishers.join(" or "),
                    ledger.first
                )
            },
            publishers.join(", "),
        )
    };
    Err(Refusal::new(
        upstream,
        check,
        http::StatusCode::FORBIDDEN,
        format!(
            "upstream {upstream}: {artifact}: {check}; an operator accepts it with `bulwark \
             upstream publishers {upstream} {name} --accept PUBLISHER` (or --accept-unattested)"
        ),
    )
    .expected_seen(expected, seen))
}
