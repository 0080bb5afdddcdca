//! What `bulwark verify bundle` and the registry fronts are handed,
//! recognised by content and turned into Sigstore bundles:
//!
//! * a Sigstore bundle (`mediaType` v0.1, v0.2 or v0.3), as cosign, GitHub
//!   attestations, RubyGems and Maven publish them;
//! * a PEP 740 attestation object (`version`, `verification_material`,
//!   `envelope`), and a PEP 740 provenance object (PyPI's Integrity API
//!   answer: `attestation_bundles`, each with its Trusted Publisher);
//! * an npm attestations answer (`attestations`: `predicateType` + `bundle`).
//!
//! Untrusted input: the size is bounded before parsing, the number of
//! attestations is bounded, and every failure is a [`Refusal`] naming the
//! `format` check.

use super::Refusal;
use serde::Deserialize;
use serde_json::{json, Value};
use sigstore_verify::types::Bundle;

/// Largest input accepted, in bytes (real answers are a few tens of KiB).
pub const MAX_INPUT: usize = 4 << 20;

/// Most attestations one input may carry.
pub const MAX_ATTESTATIONS: usize = 64;

/// A PEP 740 Trusted Publisher as PyPI states it (`GitHub`: repository +
/// workflow; `GitLab`: repository + workflow_filepath; `Google`: email).
/// The environment is reported; no certificate claim carries it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Publisher {
    pub kind: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default)]
    pub workflow_filepath: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Publisher {
    /// The publisher as the never-downgrade ledger keeps it and an
    /// operator names it: `KIND:REPOSITORY:WORKFLOW` (GitHub: the workflow
    /// file name; GitLab: its path), or `Google:EMAIL`. The environment is
    /// left out: no certificate claim carries it.
    pub fn id(&self) -> String {
        if let Some(email) = self.email.as_deref().filter(|_| self.repository.is_empty()) {
            return format!("{}:{email}", self.kind);
        }
        let workflow = self
            .workflow
            .as_deref()
            .or(self.workflow_filepath.as_deref())
            .unwrap_or("");
        format!("{}:{}:{workflow}", self.kind, self.repository)
    }
}

/// One attestation, as a Sigstore bundle.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// Where it came from in the input (`bundle`, `attestation_bundles[0].attestations[1]`).
    pub label: String,
    pub bundle: Bundle,
    /// The publisher PyPI says produced it (provenance objects only).
    pub publisher: Option<Publisher>,
    /// The predicate type npm lists beside it (npm answers only).
    pub listed_predicate_type: Option<String>,
}

/// Which format the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bundle,
    Pep740Attestation,
    Pep740Provenance,
    NpmAttestations,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Bundle => "Sigstore bundle",
            Format::Pep740Attestation => "PEP 740 attestation",
            Format::Pep740Provenance => "PEP 740 provenance",
            Format::NpmAttestations => "npm attestations",
        }
    }
}

fn refuse(expected: &str, seen: impl Into<String>) -> Refusal {
    Refusal::new("format", expected, seen)
}

const KNOWN: &str =
    "a Sigstore bundle, a PEP 740 attestation or provenance object, or an npm attestations answer";

/// Recognises and parses `input`. An input with no attestation is refused.
pub fn parse(input: &[u8]) -> Result<(Format, Vec<Attestation>), Refusal> {
    if input.len() > MAX_INPUT {
        return Err(refuse(
            &format!("at most {MAX_INPUT} bytes"),
            format!("{} bytes", input.len()),
        ));
    }
    let value: Value = serde_json::from_slice(input).map_err(|e| refuse("JSON", e.to_string()))?;
    let Value::Object(obj) = &value else {
        return Err(refuse(KNOWN, "JSON that is not an object"));
    };
    let (format, atts) = if obj.contains_key("mediaType") {
        (Format::Bundle, vec![bundle("bundle", &value)?])
    } else if let Some(bundles) = obj.get("attestation_bundles") {
        (Format::Pep740Provenance, provenance(obj, bundles)?)
    } else if obj.contains_key("verification_material") || obj.contains_key("envelope") {
        (
            Format::Pep740Attestation,
            vec![pep740("attestation", &value, None)?],
        )
    } else if let Some(list) = obj.get("attestations") {
        (Format::NpmAttestations, npm(list)?)
    } else {
        let keys: Vec<&str> = obj.keys().take(8).map(String::as_str).collect();
        return Err(refuse(KNOWN, format!("an object with keys {keys:?}")));
    };
    if atts.is_empty() {
        return Err(Refusal::new(
            "attestations",
            "at least one attestation",
            format!("an empty {}", format.as_str()),
        ));
    }
    Ok((format, atts))
}

fn bundle(label: &str, value: &Value) -> Result<Attestation, Refusal> {
    let media = value.get("mediaType").and_then(Value::as_str).unwrap_or("");
    const MEDIA: [&str; 4] = [
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    ];
    if !MEDIA.contains(&media) {
        return Err(Refusal::new(
            "media type",
            "a Sigstore bundle media type v0.1, v0.2 or v0.3",
            format!("{label}: {:?}", media.chars().take(100).collect::<String>()),
        ));
    }
    let bundle = Bundle::deserialize(value)
        .map_err(|e| refuse("a Sigstore bundle", format!("{label}: {e}")))?;
    Ok(Attestation {
        label: label.to_string(),
        bundle,
        publisher: None,
        listed_predicate_type: None,
    })
}

/// A PEP 740 attestation object as a bundle v0.3 with a DSSE envelope.
fn pep740(
    label: &str,
    value: &Value,
    publisher: Option<Publisher>,
) -> Result<Attestation, Refusal> {
    #[derive(Deserialize)]
    struct Object {
        version: u64,
        verification_material: Material,
        envelope: Envelope,
    }
    #[derive(Deserialize)]
    struct Material {
        certificate: String,
        transparency_entries: Vec<Value>,
    }
    #[derive(Deserialize)]
    struct Envelope {
        statement: String,
        signature: String,
    }
    let obj = Object::deserialize(value)
        .map_err(|e| refuse("a PEP 740 attestation object", format!("{label}: {e}")))?;
    if obj.version != 1 {
        return Err(refuse(
            "PEP 740 attestation version 1",
            format!("{label}: version {}", obj.version),
        ));
    }
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": { "rawBytes": obj.verification_material.certificate },
            "tlogEntries": obj.verification_material.transparency_entries,
        },
        "dsseEnvelope": {
            "payload": obj.envelope.statement,
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [ { "sig": obj.envelope.signature } ],
        },
    });
    let mut att = bundle_untyped(label, &bundle)?;
    att.publisher = publisher;
    Ok(att)
}

fn bundle_untyped(label: &str, value: &Value) -> Result<Attestation, Refusal> {
    let bundle = Bundle::deserialize(value)
        .map_err(|e| refuse("a PEP 740 attestation object", format!("{label}: {e}")))?;
    Ok(Attestation {
        label: label.to_string(),
        bundle,
        publisher: None,
        listed_predicate_type: None,
    })
}

fn provenance(
    obj: &serde_json::Map<String, Value>,
    bundles: &Value,
) -> Result<Vec<Attestation>, Refusal> {
    match obj.get("version").and_then(Value::as_u64) {
        Some(1) => {}
        other => {
            return Err(refuse(
                "PEP 740 provenance version 1",
                format!("version {other:?}"),
            ))
        }
    }
    let bundles = bundles
        .as_array()
        .ok_or_else(|| refuse("attestation_bundles to be a list", "another JSON type"))?;
    let mut out = Vec::new();
    for (i, b) in bundles.iter().enumerate() {
        let publisher = b.get("publisher").ok_or_else(|| {
            refuse(
                "a publisher in every attestation bundle",
                format!("attestation_bundles[{i}] without one"),
            )
        })?;
        let publisher = Publisher::deserialize(publisher).map_err(|e| {
            refuse(
                "a PEP 740 publisher",
                format!("attestation_bundles[{i}].publisher: {e}"),
            )
        })?;
        let atts = b
            .get("attestations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                refuse(
                    "an attestations list",
                    format!("attestation_bundles[{i}] without one"),
                )
            })?;
        for (j, a) in atts.iter().enumerate() {
            if out.len() >= MAX_ATTESTATIONS {
                return Err(refuse(
                    &format!("at most {MAX_ATTESTATIONS} attestations"),
                    "more",
                ));
            }
            let label = format!("attestation_bundles[{i}].attestations[{j}]");
            out.push(pep740(&label, a, Some(publisher.clone()))?);
        }
    }
    Ok(out)
}

fn npm(list: &Value) -> Result<Vec<Attestation>, Refusal> {
    let list = list
        .as_array()
        .ok_or_else(|| refuse("attestations to be a list", "another JSON type"))?;
    if list.len() > MAX_ATTESTATIONS {
        return Err(refuse(
            &format!("at most {MAX_ATTESTATIONS} attestations"),
            format!("{}", list.len()),
        ));
    }
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let label = format!("attestations[{i}]");
        let predicate = a
            .get("predicateType")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("a predicateType", format!("{label} without one")))?;
        let b = a
            .get("bundle")
            .ok_or_else(|| refuse("a bundle", format!("{label} without one")))?;
        let mut att = bundle(&label, b)?;
        att.listed_predicate_type = Some(predicate.to_string());
        out.push(att);
    }
    Ok(out)
}
