//! A version's attestations answer (`/-/npm/v1/attestations/<name>@<version>`,
//! `{"attestations": [{"predicateType", "bundle"}]}`), checked against the
//! version: every attestation verifies with the Sigstore core, the publish
//! attestation under the registry's `npm:attestations` key valid at its
//! Rekor time, the SLSA provenance keyless (Fulcio chain and SCT, the
//! expected publisher if one is set); each names the version by its
//! package URL (`pkg:npm/<name>@<version>`, scope `@` as `%40`) with the
//! sha512 of its `dist.integrity`. Both kinds must be present.
//!
//! Pure: the caller records each Rekor checkpoint in the trust state and
//! judges the publisher with the never-downgrade ledger.

use std::time::SystemTime;

use crate::sigstore::input::{self, Format};
use crate::sigstore::npm::NpmKeys;
use crate::sigstore::verify::Verified;
use crate::sigstore::TrustRoot;
use crate::sigstore::{verify_attestation, ArtifactInput, IdentityPolicy, Options, Refusal};

use super::name::PackageName;

/// The predicate type of the registry's publish attestation (a prefix:
/// the spec's version follows).
pub const PUBLISH_PREDICATE: &str = "https://github.com/npm/attestation/tree/main/specs/publish/";
/// The predicate type of SLSA provenance (a prefix: `v0.2`, `v1`).
pub const PROVENANCE_PREDICATE: &str = "https://slsa.dev/provenance/";

/// An attestations answer that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedAttestations {
    /// Every attestation, verified.
    pub attestations: Vec<Verified>,
    /// Who built it, from the provenance's certificate
    /// (`GitHub:owner/repo:workflow.yml`), as the ledger keeps it.
    pub publisher: String,
}

/// The package URL of `name@version` (the subject name npm writes).
pub fn purl(name: &PackageName, version: &str) -> String {
    format!(
        "pkg:npm/{}@{version}",
        name.as_str().replacen('@', "%40", 1)
    )
}

/// Whether a subject name is `name@version`'s package URL (compared
/// after percent-decoding, so `%40` and `@`, `%2B` and `+` are the same).
fn names_version(subject: &str, name: &PackageName, version: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(subject).decode_utf8_lossy();
    decoded == format!("pkg:npm/{name}@{version}")
}

/// Checks `answer` for `name@version` whose tarball's SHA-512 is `sha512`.
/// `identity` is the publisher policy for the provenance
/// (`IdentityPolicy::Report` when none is set).
pub fn check_answer(
    answer: &[u8],
    name: &PackageName,
    version: &str,
    sha512: [u8; 64],
    keys: &NpmKeys,
    root: &TrustRoot,
    identity: &IdentityPolicy,
) -> Result<CheckedAttestations, Refusal> {
    let (format, atts) = input::parse(answer)?;
    if format != Format::NpmAttestations {
        return Err(Refusal::new(
            "format",
            "an npm attestations answer",
            format.as_str(),
        ));
    }
    let digest = hex::encode(sha512);
    let mut attestations = Vec::with_capacity(atts.len());
    let (mut publish, mut provenance) = (false, None);
    for att in &atts {
        let keyed = matches!(
            att.bundle.verification_material.content,
            sigstore_verify::types::bundle::VerificationMaterialContent::PublicKey(_)
        );
        let opts = Options {
            root,
            // The registry's key signs the publish attestation; the
            // publisher policy applies to the keyless provenance.
            identity: if keyed {
                &IdentityPolicy::Report
            } else {
                identity
            },
            witnesses: None,
            npm_keys: Some(keys),
            now: SystemTime::now(),
        };
        let v = verify_attestation(att, ArtifactInput::Sha512(sha512), &opts)?;
        let named = v.subjects.iter().any(|s| {
            names_version(&s.name, name, version)
                && s.digests.iter().any(|(a, d)| a == "sha512" && *d == digest)
        });
        if !named {
            let seen = v
                .subjects
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Refusal::new(
                "subject",
                format!("{} with sha512 {digest}", purl(name, version)),
                if seen.is_empty() {
                    "no subject".into()
                } else {
                    seen
                },
            )
            .at(&v.label));
        }
        let predicate = v.predicate_type.as_deref().unwrap_or("");
        if keyed && predicate.starts_with(PUBLISH_PREDICATE) {
            publish = true;
        } else if !keyed && predicate.starts_with(PROVENANCE_PREDICATE) {
            provenance = Some(v.signer.as_ref().map_or_else(
                || {
                    format!(
                        "{}:{}",
                        v.issuer.as_deref().unwrap_or("unknown issuer"),
                        v.identity
                    )
                },
                |p| p.id(),
            ));
        }
        attestations.push(v);
    }
    match (publish, provenance) {
        (true, Some(publisher)) => Ok(CheckedAttestations {
            attestations,
            publisher,
        }),
        (publish, provenance) => Err(Refusal::new(
            "attestation",
            "the registry's publish attestation and a keyless SLSA provenance",
            match (publish, provenance.is_some()) {
                (false, false) => "neither",
                (true, _) => "no provenance",
                (false, _) => "no publish attestation",
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls_are_compared_decoded() {
        let scoped = PackageName::parse("@playwright/cli").unwrap();
        assert_eq!(purl(&scoped, "0.1.1"), "pkg:npm/%40playwright/cli@0.1.1");
        assert!(names_version(
            "pkg:npm/%40playwright/cli@0.1.1",
            &scoped,
            "0.1.1"
        ));
        assert!(names_version(
            "pkg:npm/@playwright/cli@0.1.1",
            &scoped,
            "0.1.1"
        ));
        assert!(!names_version(
            "pkg:npm/%40playwright/cli@0.1.2",
            &scoped,
            "0.1.1"
        ));
        assert!(!names_version("pkg:npm/cli@0.1.1", &scoped, "0.1.1"));
        let plain = PackageName::parse("left-pad").unwrap();
        assert!(names_version(
            "pkg:npm/left-pad@1.0.0%2Bbuild",
            &plain,
            "1.0.0+build"
        ));
        assert!(!names_version("pkg:pypi/left-pad@1.0.0", &plain, "1.0.0"));
    }
}
