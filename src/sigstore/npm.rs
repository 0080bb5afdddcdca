//! The npm registry's own signing keys (`keys.json`, as Sigstore's TUF
//! repository distributes them): the publish attestation of an npm
//! package is signed by the registry's key (a public-key bundle whose hint
//! is the key ID), and `dist.signatures` in the packument is an ECDSA
//! P-256/SHA-256 signature over `<name>@<version>:<integrity>`.
//!
//! The keys from sigstore/root-signing are compiled in; another file can be
//! loaded. Each key has a usage and a validity period; a signature counts
//! only under a key of the right usage valid at the signing time.

use super::Refusal;
use serde::Deserialize;
use std::time::SystemTime;

/// The npm registry keys as distributed by sigstore/root-signing.
pub const NPM_KEYS: &str = include_str!("npm_keys.json");

/// Largest keys file accepted.
pub const MAX_KEYS_FILE: usize = 256 * 1024;

/// Key usage of the publish-attestation keys.
pub const USAGE_ATTESTATIONS: &str = "npm:attestations";
/// Key usage of the `dist.signatures` keys.
pub const USAGE_SIGNATURES: &str = "npm:signatures";

/// One key of `keys.json`.
#[derive(Debug, Clone)]
pub struct NpmKey {
    pub key_id: String,
    pub usage: String,
    /// DER SubjectPublicKeyInfo (ECDSA P-256).
    pub spki: Vec<u8>,
    pub valid_from: SystemTime,
    pub valid_until: Option<SystemTime>,
}

/// The set of npm registry keys.
#[derive(Debug, Clone)]
pub struct NpmKeys {
    keys: Vec<NpmKey>,
}

impl NpmKeys {
    /// The embedded keys.
    pub fn embedded() -> Result<NpmKeys, Refusal> {
        NpmKeys::from_json(NPM_KEYS)
    }

    /// Parses a `keys.json`.
    pub fn from_json(text: &str) -> Result<NpmKeys, Refusal> {
        #[derive(Deserialize)]
        struct File {
            keys: Vec<Key>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Key {
            key_id: String,
            key_usage: String,
            public_key: Public,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Public {
            raw_bytes: String,
            key_details: String,
            valid_for: Window,
        }
        #[derive(Deserialize)]
        struct Window {
            start: jiff::Timestamp,
            #[serde(default)]
            end: Option<jiff::Timestamp>,
        }
        use base64::Engine;
        let bad = |seen: String| Refusal::new("npm keys", "a valid npm keys.json", seen);
        if text.len() > MAX_KEYS_FILE {
            return Err(bad(format!("{} bytes", text.len())));
        }
        let file: File = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut keys = Vec::new();
        for k in file.keys {
            if k.public_key.key_details != "PKIX_ECDSA_P256_SHA_256" {
                return Err(bad(format!(
                    "key {} of type {}",
                    k.key_id, k.public_key.key_details
                )));
            }
            let spki = base64::engine::general_purpose::STANDARD
                .decode(&k.public_key.raw_bytes)
                .map_err(|e| bad(format!("key {}: {e}", k.key_id)))?;
            use p256::pkcs8::DecodePublicKey;
            p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
                .map_err(|_| bad(format!("key {} is not a P-256 SPKI", k.key_id)))?;
            keys.push(NpmKey {
                key_id: k.key_id,
                usage: k.key_usage,
                spki,
                valid_from: k.public_key.valid_for.start.into(),
                valid_until: k.public_key.valid_for.end.map(Into::into),
            });
        }
        Ok(NpmKeys { keys })
    }

    /// Every key, in file order.
    pub fn keys(&self) -> &[NpmKey] {
        &self.keys
    }

    /// The key with this ID and usage valid at `time`.
    pub fn find(&self, key_id: &str, usage: &str, time: SystemTime) -> Result<&NpmKey, Refusal> {
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.key_id == key_id && k.usage == usage)
            .peekable();
        if candidates.peek().is_none() {
            return Err(Refusal::new(
                "npm key",
                format!("a registry key for {usage}"),
                format!("key ID {key_id:?}"),
            ));
        }
        candidates
            .find(|k| k.valid_from <= time && k.valid_until.is_none_or(|end| time < end))
            .ok_or_else(|| {
                Refusal::new(
                    "npm key validity",
                    format!("{key_id} ({usage}) valid at the signing time"),
                    format!("signed at {}", humantime::format_rfc3339_seconds(time)),
                )
            })
    }

    /// Checks a packument's `dist.signatures` entry: ECDSA P-256/SHA-256
    /// (base64 DER) over `<name>@<version>:<integrity>` by a
    /// `npm:signatures` key valid at `time` (the version's publish time).
    pub fn verify_registry_signature(
        &self,
        key_id: &str,
        sig_b64: &str,
        name: &str,
        version: &str,
        integrity: &str,
        time: SystemTime,
    ) -> Result<(), Refusal> {
        use base64::Engine;
        use p256::ecdsa::signature::Verifier;
        use p256::pkcs8::DecodePublicKey;
        let key = self.find(key_id, USAGE_SIGNATURES, time)?;
        let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&key.spki)
            .map_err(|_| Refusal::new("npm key", "a P-256 key", key_id))?;
        let bad = |seen: &str| {
            Refusal::new(
                "npm registry signature",
                format!("a signature by {key_id} over {name}@{version}:{integrity}"),
                seen.to_string(),
            )
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(sig_b64)
            .map_err(|_| bad("a signature that is not base64"))?;
        let sig =
            p256::ecdsa::Signature::from_der(&der).map_err(|_| bad("a malformed DER signature"))?;
        vk.verify(format!("{name}@{version}:{integrity}").as_bytes(), &sig)
            .map_err(|_| bad("a signature that does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The real example from npm/pacote's tests (see tests/data/sigstore/README.md).
    #[test]
    fn real_registry_signature_verifies_and_tampering_fails() {
        let keys = NpmKeys::embedded().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let id = "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA";
        let sig = "MEQCIHXwKYe70+xcDOvFhM1etZQFUKEwz9VarppUbp5/Ie1+AiAM7aZcT1a2JR0oF/XwjNb13YEHwiagnDapLgYbklRvtA==";
        let integrity = "sha512-5ZYe1LgwHIaag0p9loMwsf5N/wJ4XAuHVNhSO+qulQOXWnyJVuco6IZjo+5u4ZLF/GimdHJcX+QK892ONfOCqQ==";
        keys.verify_registry_signature(id, sig, "@isaacs/namespace-test", "1.0.0", integrity, t)
            .unwrap();
        let e = keys
            .verify_registry_signature(id, sig, "@isaacs/namespace-test", "1.0.1", integrity, t)
            .unwrap_err();
        assert_eq!(e.check, "npm registry signature");
        // The key expired on 2025-01-29.
        let late = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let e = keys
            .verify_registry_signature(id, sig, "@isaacs/namespace-test", "1.0.0", integrity, late)
            .unwrap_err();
        assert_eq!(e.check, "npm key validity");
    }
}
