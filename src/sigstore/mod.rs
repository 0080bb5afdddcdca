//! Sigstore and Rekor: the transparency data PyPI (PEP 740), npm, GitHub
//! artifact attestations, RubyGems and Maven already publish.
//!
//! Two halves:
//!
//! * **The attestation** ([`verify`]): certificate chain to a Fulcio root
//!   valid at the signing time, SCT, time source (Rekor v1 integrated
//!   time/SET, RFC 3161), the signature over the artifact or the DSSE PAE,
//!   the log entry body bound to that signature and artifact
//!   (`hashedrekord`, `dsse`, `intoto`), the in-toto subject digest. These
//!   come from the maintained `sigstore-verify` crate (sigstore-rust),
//!   whose errors become [`Refusal`]s naming the check. On top: an
//!   identity policy (issuer + SAN pattern, or a PEP 740 Trusted
//!   Publisher).
//! * **The log, bulwark's own** ([`verify`] and [`log`]): every entry's
//!   inclusion proof at the proof's (shard-local) index with
//!   [`crate::tlog::merkle`], its checkpoint as a signed note by the log's
//!   key from the trusted root ([`crate::tlog::note`]), an optional witness
//!   policy ([`crate::tlog::policy`]), and then the checkpoint through
//!   [`crate::verify::trust::TrustState`], per log origin, consistent with
//!   everything accepted before.
//!
//! Pure: no I/O, no clock. The consistency proof a checkpoint needs is
//! fetched by the caller through [`log::ProofSource`].

pub mod input;
pub mod log;
pub mod npm;
pub mod policy;
pub mod provider;
pub mod root;
pub mod verify;

pub use input::{Attestation, Format, Publisher};
pub use policy::IdentityPolicy;
pub use root::{RekorLog, RekorVersion, TrustRoot};
pub use verify::{verify_attestation, verify_attestation_reader, ArtifactInput, Options, Verified};

/// Why an attestation was refused: the check, what it expected, what it
/// saw. Fit for one line of output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check}: expected {expected}, seen {seen}")]
pub struct Refusal {
    pub check: &'static str,
    pub expected: String,
    pub seen: String,
}

/// Longest `seen` text kept in a refusal (a peer chooses it).
const MAX_SEEN: usize = 512;

impl Refusal {
    pub fn new(
        check: &'static str,
        expected: impl Into<String>,
        seen: impl Into<String>,
    ) -> Refusal {
        let mut seen: String = seen.into();
        if seen.len() > MAX_SEEN {
            let mut cut = MAX_SEEN;
            while !seen.is_char_boundary(cut) {
                cut -= 1;
            }
            seen.truncate(cut);
            seen.push('…');
        }
        Refusal {
            check,
            expected: expected.into(),
            seen,
        }
    }

    /// The same refusal, its `seen` prefixed with where it happened.
    pub fn at(mut self, label: &str) -> Refusal {
        self.seen = format!("{label}: {}", self.seen);
        self
    }
}
