//! The crypto backend bulwark gives `sigstore-verify`.
//!
//! sigstore-rust defaults to aws-lc-rs; bulwark builds it without that
//! feature and installs this provider instead, on the crates already in the
//! tree: ring (the TLS provider bulwark uses) for signatures over messages,
//! sha2 for digests, and p256/p384 for ECDSA over a precomputed digest
//! (hashedrekord entries of large artifacts). Verification only: bulwark
//! never signs with Sigstore keys.

use sha2::Digest as _;
use sigstore_verify::crypto::provider::{CryptoProvider, HashContext};
use sigstore_verify::crypto::{Error, Result, SigningScheme};
use sigstore_verify::types::HashAlgorithm;
use std::sync::Once;

/// The provider; stateless.
#[derive(Debug)]
pub struct BulwarkCrypto;

static PROVIDER: BulwarkCrypto = BulwarkCrypto;
static INSTALL: Once = Once::new();

/// Installs [`BulwarkCrypto`] as sigstore-crypto's process-wide provider.
/// Idempotent; every entry point of `crate::sigstore` calls it first.
pub fn install() {
    INSTALL.call_once(|| {
        // Nothing else in bulwark installs one; if something did, that
        // provider stays and verification still runs (no panic).
        let _ = sigstore_verify::crypto::install_default_provider(&PROVIDER);
    });
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl HashContext for Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        match *self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

fn ring_algorithm(
    scheme: SigningScheme,
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as s;
    Some(match scheme {
        SigningScheme::EcdsaP256Sha256 => &s::ECDSA_P256_SHA256_ASN1,
        SigningScheme::EcdsaP256Sha384 => &s::ECDSA_P256_SHA384_ASN1,
        SigningScheme::EcdsaP384Sha256 => &s::ECDSA_P384_SHA256_ASN1,
        SigningScheme::EcdsaP384Sha384 => &s::ECDSA_P384_SHA384_ASN1,
        SigningScheme::Ed25519 => &s::ED25519,
        SigningScheme::RsaPssSha256 => &s::RSA_PSS_2048_8192_SHA256,
        SigningScheme::RsaPssSha384 => &s::RSA_PSS_2048_8192_SHA384,
        SigningScheme::RsaPssSha512 => &s::RSA_PSS_2048_8192_SHA512,
        SigningScheme::RsaPkcs1Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
        SigningScheme::RsaPkcs1Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
        SigningScheme::RsaPkcs1Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn invalid(scheme: SigningScheme) -> Error {
    Error::Verification(format!("{} signature invalid", scheme.name()))
}

impl CryptoProvider for BulwarkCrypto {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        Ok(Box::new(match algorithm {
            HashAlgorithm::Sha2256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha2384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha2512 => Hasher::Sha512(sha2::Sha512::new()),
            other => {
                return Err(Error::UnsupportedAlgorithm(format!(
                    "hash {other:?} is not supported by bulwark"
                )))
            }
        }))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn sha384(&self, data: &[u8]) -> [u8; 48] {
        sha2::Sha384::digest(data).into()
    }

    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        sha2::Sha512::digest(data).into()
    }

    fn verify_raw(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let alg = ring_algorithm(scheme).ok_or_else(|| {
            Error::UnsupportedAlgorithm(format!("{} is not supported by bulwark", scheme.name()))
        })?;
        ring::signature::UnparsedPublicKey::new(alg, key)
            .verify(data, signature)
            .map_err(|_| invalid(scheme))
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map_err(|_| Error::InvalidKey("P-256 public key".into()))?;
                let sig =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
                vk.verify_prehash(digest, &sig).map_err(|_| invalid(scheme))
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map_err(|_| Error::InvalidKey("P-384 public key".into()))?;
                let sig =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid(scheme))?;
                vk.verify_prehash(digest, &sig).map_err(|_| invalid(scheme))
            }
            _ => Err(Error::UnsupportedAlgorithm(format!(
                "{} over a precomputed digest is not supported by bulwark",
                scheme.name()
            ))),
        }
    }
}
