//! `sha256:<hex>` content digests: the names of blobs in the content store.
//!
//! Used by the blob store (`store::blobs`) to name files and by the protocol
//! fronts to turn the digest a verified record names (a Warg content digest,
//! for example) into a store key. Parsing is strict: the algorithm must be
//! `sha256`, followed by a colon and exactly 64 lowercase hex digits; nothing
//! else is accepted, so one blob has exactly one spelling.

use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// The only algorithm the store names blobs by.
pub const SHA256_PREFIX: &str = "sha256:";

/// A SHA-256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {seen:?} has no algorithm prefix, want \"sha256:<64 lowercase hex>\"")]
    MissingAlgorithm { seen: String },
    #[error("digest algorithm {seen:?} is not supported, want \"sha256\"")]
    UnsupportedAlgorithm { seen: String },
    #[error("sha256 digest has {seen} hex characters, want 64")]
    Length { seen: usize },
    #[error("sha256 digest {seen:?} is not lowercase hex")]
    NotLowercaseHex { seen: String },
}

/// At most this many characters of a refused input are quoted back.
const QUOTE_LIMIT: usize = 80;

fn quote(s: &str) -> String {
    s.chars().take(QUOTE_LIMIT).collect()
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// Wraps 32 raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the algorithm prefix.
    pub fn hex(&self) -> String {
        self.hex_digits().to_string()
    }

    /// The 64 lowercase hex digits, without an allocation.
    fn hex_digits(&self) -> HexDigits {
        let mut out = [0u8; 64];
        // Fills every byte of `out` with an ASCII hex digit.
        if hex::encode_to_slice(self.0, &mut out).is_err() {
            out = [b'0'; 64];
        }
        HexDigits(out)
    }

    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex_part)) = s.split_once(':') else {
            return Err(DigestError::MissingAlgorithm { seen: quote(s) });
        };
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm { seen: quote(alg) });
        }
        Digest::parse_hex(hex_part)
    }

    /// Parses exactly 64 lowercase hex digits (no prefix).
    pub fn parse_hex(s: &str) -> Result<Digest, DigestError> {
        if s.len() != 64 {
            return Err(DigestError::Length { seen: s.len() });
        }
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::NotLowercaseHex { seen: quote(s) });
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| DigestError::NotLowercaseHex { seen: quote(s) })?;
        Ok(Digest(out))
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

/// 64 lowercase hex digits ([`Digest::hex_digits`]).
struct HexDigits([u8; 64]);

impl HexDigits {
    fn as_str(&self) -> &str {
        // ASCII hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for HexDigits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SHA256_PREFIX)?;
        f.write_str(self.hex_digits().as_str())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_and_prints_the_canonical_form() {
        let d = Digest::parse(ABC).unwrap();
        assert_eq!(d, Digest::of(b"abc"));
        assert_eq!(d.to_string(), ABC);
        assert_eq!(ABC.parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn refuses_uppercase_short_long_and_other_algorithms() {
        let upper = ABC.replace("ba78", "BA78");
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::NotLowercaseHex { .. })
        ));
        assert_eq!(
            Digest::parse(&ABC[..ABC.len() - 1]),
            Err(DigestError::Length { seen: 63 })
        );
        assert_eq!(
            Digest::parse(&format!("{ABC}0")),
            Err(DigestError::Length { seen: 65 })
        );
        assert!(matches!(
            Digest::parse(&ABC.replace("sha256", "sha512")),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(&ABC.replace("sha256", "SHA256")),
            Err(DigestError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(&ABC[7..]),
            Err(DigestError::MissingAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(&format!("sha256:{}", ABC[7..].replace('a', "g"))),
            Err(DigestError::NotLowercaseHex { .. })
        ));
        // A multi-byte character that makes the length 64 bytes but not 64
        // hex digits.
        let odd = format!("sha256:{}é", "0".repeat(62));
        assert!(Digest::parse(&odd).is_err());
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let d = Digest::of(b"abc");
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }
}
