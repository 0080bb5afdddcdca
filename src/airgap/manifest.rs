//! The bundle's manifest, signed by the operator who exported it.
//!
//! `bulwark export --sign-key FILE` adds `MANIFEST.sig` to the bundle: a
//! signed note (c2sp.org/signed-note, Ed25519, the key in the
//! `PRIVATE+KEY+<name>+<id>+<base64>` form `bulwark keygen` writes) whose
//! text binds the `MANIFEST` member by its SHA-256 and size:
//!
//! ```text
//! bulwark bundle manifest
//! sha256 <hex>
//! size <bytes>
//! ```
//!
//! `bulwark import --manifest-key <name+id+base64>` then refuses a bundle
//! unless that note verifies under one of the given keys, the `MANIFEST`
//! is the one it names, and every other member is listed in it with its
//! size and SHA-256 (and every listed member is there). This says who
//! made the bundle and that nothing was added, dropped or changed on the
//! way; what the bundle carries is verified again on import either way,
//! under the inside's own keys.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::tlog::note::{self, Signer, VerifierKey};

/// The member holding the signed note.
pub const SIGNATURE_MEMBER: &str = "MANIFEST.sig";
/// The note's first line.
const HEADER: &str = "bulwark bundle manifest";
/// Largest `MANIFEST` read (a line per member; a million members fit).
pub const MAX_MANIFEST: u64 = 256 << 20;
/// Largest `MANIFEST.sig` read.
pub const MAX_SIGNATURE: u64 = 64 << 10;

/// What the manifest says of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub sha256: [u8; 32],
    pub len: u64,
}

/// The signed note for `manifest`.
pub fn sign(manifest: &[u8], signer: &Signer) -> Result<Vec<u8>, String> {
    let text = format!(
        "{HEADER}\nsha256 {}\nsize {}\n",
        hex::encode(Sha256::digest(manifest)),
        manifest.len()
    );
    note::sign(&text, &[signer]).map_err(|e| format!("signing the manifest: {e}"))
}

/// Checks `signature` (the `MANIFEST.sig` member) under `keys` against
/// `manifest` (the `MANIFEST` member), and returns what the manifest
/// lists. Every failure says what was expected and what was seen.
pub fn check(
    signature: &[u8],
    manifest: &[u8],
    keys: &[VerifierKey],
) -> Result<BTreeMap<String, Listed>, String> {
    let opened = note::open(signature, keys).map_err(|e| {
        let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
        format!(
            "manifest signature: expected a note signed by {}, seen: {e}",
            names.join(" or ")
        )
    })?;
    let want = format!(
        "{HEADER}\nsha256 {}\nsize {}\n",
        hex::encode(Sha256::digest(manifest)),
        manifest.len()
    );
    if opened.text != want {
        return Err(format!(
            "manifest signature: expected a note naming this MANIFEST ({}), seen {:?}",
            want.lines().skip(1).collect::<Vec<_>>().join(", "),
            opened.text.chars().take(200).collect::<String>()
        ));
    }
    parse(manifest)
}

/// Parses `MANIFEST` lines, `<sha256 hex> <size> <name>`.
pub fn parse(manifest: &[u8]) -> Result<BTreeMap<String, Listed>, String> {
    let text = std::str::from_utf8(manifest).map_err(|_| "MANIFEST: not UTF-8".to_string())?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || {
            format!(
                "MANIFEST line {}: expected `<sha256> <size> <name>`, seen {line:?}",
                i + 1
            )
        };
        let mut parts = line.splitn(3, ' ');
        let (Some(h), Some(n), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(h, &mut sha256).map_err(|_| bad())?;
        let len = n.parse::<u64>().map_err(|_| bad())?;
        if name.is_empty()
            || out
                .insert(name.to_string(), Listed { sha256, len })
                .is_some()
        {
            return Err(format!(
                "MANIFEST line {}: member {name:?} listed twice or unnamed",
                i + 1
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Vec<u8> {
        format!(
            "{} 3 a/b\n{} 0 MANIFEST.other\n",
            hex::encode(Sha256::digest(b"abc")),
            hex::encode(Sha256::digest(b""))
        )
        .into_bytes()
    }

    #[test]
    fn a_signed_manifest_checks_under_its_key_only() {
        let signer = Signer::from_seed("bundles.example/outside", &[7; 32]).unwrap();
        let m = manifest();
        let sig = sign(&m, &signer).unwrap();
        let listed = check(&sig, &m, &[signer.verifier_key()]).unwrap();
        assert_eq!(listed["a/b"].len, 3);
        assert_eq!(
            listed["a/b"].sha256,
            <[u8; 32]>::from(Sha256::digest(b"abc"))
        );
        // Another key.
        let other = Signer::from_seed("bundles.example/outside", &[8; 32]).unwrap();
        let e = check(&sig, &m, &[other.verifier_key()]).unwrap_err();
        assert!(
            e.starts_with("manifest signature: expected a note signed by"),
            "{e}"
        );
        // Another manifest under the same signature.
        let mut changed = m.clone();
        changed[0] ^= 1;
        let e = check(&sig, &changed, &[signer.verifier_key()]).unwrap_err();
        assert!(e.contains("naming this MANIFEST"), "{e}");
    }

    #[test]
    fn malformed_manifests_are_refused() {
        for bad in [
            "xyz 3 a\n",
            &format!("{} three a\n", hex::encode([0u8; 32])),
            &format!("{} 3\n", hex::encode([0u8; 32])),
            &format!("{0} 3 a\n{0} 3 a\n", hex::encode([0u8; 32])),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
        assert!(parse(b"").unwrap().is_empty());
    }
}
