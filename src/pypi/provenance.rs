//! A distribution file's PEP 740 provenance (the Integrity API's answer),
//! checked against the file: every attestation verifies with the Sigstore
//! core (certificate chain, SCT, signature, Rekor entry with its inclusion
//! proof and signed checkpoint), names the file as a subject (by its
//! ultranormal name, see [`super::filename`]) with the file's SHA-256, and
//! comes from the Trusted Publisher the bundle states, which must be the
//! one the operator's policy expects if it names one.
//!
//! Pure: the caller records each verified Rekor checkpoint in the trust
//! state (`sigstore::log::record`), which proves it consistent with
//! everything accepted before.

use crate::sigstore::input::{self, Format, Publisher};
use crate::sigstore::{verify_attestation, ArtifactInput, Options, Refusal, Verified};

use super::filename::DistFilename;

/// A provenance that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedProvenance {
    /// Every attestation, verified.
    pub attestations: Vec<Verified>,
    /// The Trusted Publisher of each attestation bundle, in order, once.
    pub publishers: Vec<Publisher>,
}

/// Checks `provenance` (a PEP 740 provenance object) for the file
/// `filename` whose SHA-256 is `sha256`. `opts.identity` is the operator's
/// publisher policy (`IdentityPolicy::Report` when none is set).
pub fn verify_provenance(
    provenance: &[u8],
    filename: &str,
    sha256: [u8; 32],
    opts: &Options<'_>,
) -> Result<VerifiedProvenance, Refusal> {
    let want = DistFilename::parse(filename)
        .map_err(|e| Refusal::new("filename", "a wheel or sdist file name", e.to_string()))?
        .ultranormal();
    let (format, atts) = input::parse(provenance)?;
    if format != Format::Pep740Provenance {
        return Err(Refusal::new(
            "format",
            Format::Pep740Provenance.as_str(),
            format.as_str(),
        ));
    }
    let digest = hex::encode(sha256);
    let mut attestations = Vec::with_capacity(atts.len());
    let mut publishers: Vec<Publisher> = Vec::new();
    for att in &atts {
        let Some(publisher) = &att.publisher else {
            return Err(Refusal::new(
                "publisher",
                "an attestation bundle with its Trusted Publisher",
                "none",
            )
            .at(&att.label));
        };
        let v = verify_attestation(att, ArtifactInput::Sha256(sha256), opts)?;
        let named = v.subjects.iter().any(|s| {
            DistFilename::parse(&s.name).is_ok_and(|d| d.ultranormal() == want)
                && s.digests
                    .iter()
                    .any(|(alg, hex)| alg == "sha256" && hex.eq_ignore_ascii_case(&digest))
        });
        if !named {
            let seen: Vec<String> = v
                .subjects
                .iter()
                .map(|s| {
                    let d = s
                        .digests
                        .iter()
                        .find(|(a, _)| a == "sha256")
                        .map_or("no sha256", |(_, h)| h.as_str());
                    format!("{} ({d})", s.name)
                })
                .collect();
            return Err(Refusal::new(
                "subject",
                format!("a subject {filename} with sha256 {digest}"),
                if seen.is_empty() {
                    "no subject".to_string()
                } else {
                    seen.join(", ")
                },
            )
            .at(&att.label));
        }
        if !publishers.contains(publisher) {
            publishers.push(publisher.clone());
        }
        attestations.push(v);
    }
    Ok(VerifiedProvenance {
        attestations,
        publishers,
    })
}
