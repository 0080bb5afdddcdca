//! Signed notes (c2sp.org/signed-note): verifier keys, strict parsing,
//! verification and Ed25519 signing.
//!
//! A signed note is a text ending in a newline, a blank line, and one or
//! more signature lines `— <key name> <base64(key ID ‖ signature)>`:
//!
//! ```text
//! example.com/log\n
//! 15\n
//! <base64 root>\n
//! \n
//! — example.com/log <base64(4-byte key ID ‖ signature)>\n
//! ```
//!
//! Checkpoints, cosigned checkpoints, sum.golang.org tree notes and
//! tlog-proof bundles all arrive as signed notes; [`open`] is the one place
//! that decides which signatures on them hold. Callers: the checkpoint and
//! policy modules here, the protocol verifiers (`warg`, `gomod`) and
//! `bulwark verify`.
//!
//! Verification follows golang.org/x/mod/sumdb/note: a signature is
//! attributed to a key by the pair (key name, key ID); signatures by unknown
//! keys are kept as unverified and otherwise ignored; a signature by a known
//! key that does not verify rejects the whole note; a note with no verified
//! signature is an error. Unlike the Go package, a repeated signature by a
//! known key is verified too (a bad duplicate rejects the note) and is
//! reported once.
//!
//! Supported signature types (the first byte of the key material):
//!
//! * `0x01` Ed25519 over the note text. Key ID =
//!   SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte key)\[:4\].
//! * `0x02` ECDSA P-256 with SHA-256 over the note text, DER-encoded
//!   signature; the key is a DER SubjectPublicKeyInfo. Key ID =
//!   SHA-256(DER key)\[:4\], without the name: that is how Rekor and the
//!   other transparency-dev/witness ECDSA logs compute it, as the
//!   signed-note spec notes for this type.
//! * `0x04` Ed25519 cosignature/v1 (c2sp.org/tlog-cosignature): the
//!   signature is an 8-byte big-endian timestamp ‖ a 64-byte Ed25519
//!   signature over `cosignature/v1\ntime <timestamp>\n` ‖ note text. Key ID
//!   = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte key)\[:4\]. Witnesses often
//!   publish their key as a plain `0x01` vkey; [`VerifierKey::to_cosigner`]
//!   turns either publication into the `0x04` verifier.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Largest note [`open`] and [`Note::parse`] accept, in bytes.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines a note may carry (golang.org/x/mod/sumdb/note uses
/// the same bound; the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Longest verifier or signer key string accepted.
pub const MAX_KEY_STRING: usize = 4096;

/// Signature type byte of plain Ed25519 note signatures.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type byte of ECDSA (P-256, SHA-256) note signatures.
pub const TYPE_ECDSA: u8 = 0x02;
/// Signature type byte of Ed25519 cosignature/v1 (tlog-cosignature).
pub const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Largest timestamp a cosignature/v1 may carry (2^63 - 1).
pub const MAX_COSIGNATURE_TIME: u64 = (1 << 63) - 1;

const DASH: &str = "\u{2014} ";

/// The signature algorithm a key verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x02`: ECDSA P-256 with SHA-256 over the note text.
    EcdsaP256,
    /// `0x04`: Ed25519 cosignature/v1 with a timestamp.
    CosignatureV1,
}

impl Algorithm {
    /// The signature type byte that identifies the algorithm in keys.
    pub fn type_byte(self) -> u8 {
        match self {
            Algorithm::Ed25519 => TYPE_ED25519,
            Algorithm::EcdsaP256 => TYPE_ECDSA,
            Algorithm::CosignatureV1 => TYPE_COSIGNATURE_V1,
        }
    }
}

/// A malformed or unsupported verifier or signer key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key string is {0} bytes, more than the {MAX_KEY_STRING} allowed")]
    TooLong(usize),
    #[error("key is not of the form {want}")]
    Format { want: &'static str },
    #[error("key name {0:?} is empty or contains a space or '+'")]
    BadName(String),
    #[error("key ID {0:?} is not 8 hexadecimal digits")]
    BadKeyId(String),
    #[error("key material is not canonical standard base64")]
    Base64,
    #[error("key material is empty")]
    Empty,
    #[error("signature type {0:#04x} is not supported (want 0x01 Ed25519, 0x02 ECDSA P-256 or 0x04 cosignature/v1)")]
    UnsupportedType(u8),
    #[error("signature type {type_byte:#04x} wants a {want}-byte key, saw {seen} bytes")]
    Length {
        type_byte: u8,
        want: usize,
        seen: usize,
    },
    #[error("key bytes are not a valid Ed25519 public key")]
    BadEd25519,
    #[error("key bytes are not a DER SubjectPublicKeyInfo of a P-256 key")]
    BadEcdsa,
    #[error("key ID in the key string is {seen:08x}, but the key hashes to {want:08x}")]
    KeyIdMismatch { want: u32, seen: u32 },
    #[error("an ECDSA key cannot verify Ed25519 cosignatures")]
    NotEd25519,
    #[error("cosignature time {0} is above 2^63-1")]
    TimeOutOfRange(u64),
}

#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    Ed25519(VerifyingKey),
    Ecdsa {
        key: p256::ecdsa::VerifyingKey,
        der: Vec<u8>,
    },
    Cosignature(VerifyingKey),
}

/// A verifier key: `<name>+<hex key ID>+<base64(type ‖ key)>`.
///
/// Parsed with [`FromStr`], printed with [`Display`](fmt::Display) in the
/// same form. Parsing checks that the key ID matches the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: PublicKey,
}

impl VerifierKey {
    /// A plain Ed25519 (`0x01`) verifier key.
    pub fn new_ed25519(name: &str, key: &[u8; 32]) -> Result<VerifierKey, KeyError> {
        check_name(name)?;
        let vk = VerifyingKey::from_bytes(key).map_err(|_| KeyError::BadEd25519)?;
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, TYPE_ED25519, key),
            key: PublicKey::Ed25519(vk),
        })
    }

    /// A cosignature/v1 (`0x04`) verifier key for an Ed25519 witness key.
    pub fn new_cosigner(name: &str, key: &[u8; 32]) -> Result<VerifierKey, KeyError> {
        VerifierKey::new_ed25519(name, key)?.to_cosigner()
    }

    /// The same Ed25519 key as a cosignature/v1 verifier: accepts a key
    /// published as `0x01` or `0x04` and returns the `0x04` verifier, whose
    /// key ID is the one witnesses put on their cosignature lines.
    pub fn to_cosigner(&self) -> Result<VerifierKey, KeyError> {
        match &self.key {
            PublicKey::Ed25519(vk) | PublicKey::Cosignature(vk) => Ok(VerifierKey {
                name: self.name.clone(),
                id: key_id(&self.name, TYPE_COSIGNATURE_V1, vk.as_bytes()),
                key: PublicKey::Cosignature(*vk),
            }),
            PublicKey::Ecdsa { .. } => Err(KeyError::NotEd25519),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID that signature lines by this key carry.
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.key {
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
            PublicKey::Ecdsa { .. } => Algorithm::EcdsaP256,
            PublicKey::Cosignature(_) => Algorithm::CosignatureV1,
        }
    }

    /// The public key bytes without the type byte: 32 bytes for Ed25519
    /// and cosignature keys, the DER SubjectPublicKeyInfo for ECDSA. Two
    /// vkeys wrap the same key when these bytes are equal.
    pub fn public_key(&self) -> &[u8] {
        match &self.key {
            PublicKey::Ed25519(vk) | PublicKey::Cosignature(vk) => vk.as_bytes(),
            PublicKey::Ecdsa { der, .. } => der,
        }
    }

    /// Checks `sig` (the signature bytes after the key ID) over `text`.
    /// Returns the cosignature timestamp for cosignature keys.
    fn verify(&self, text: &[u8], sig: &[u8]) -> Option<SignatureKind> {
        match &self.key {
            PublicKey::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                vk.verify_strict(text, &sig).ok()?;
                Some(SignatureKind::Ed25519)
            }
            PublicKey::Ecdsa { key, .. } => {
                use p256::ecdsa::signature::Verifier;
                let sig = p256::ecdsa::Signature::from_der(sig).ok()?;
                key.verify(text, &sig).ok()?;
                Some(SignatureKind::EcdsaP256)
            }
            PublicKey::Cosignature(vk) => {
                if sig.len() != 8 + 64 {
                    return None;
                }
                let (ts, sig) = sig.split_at(8);
                let time = u64::from_be_bytes(ts.try_into().ok()?);
                if time > MAX_COSIGNATURE_TIME {
                    return None;
                }
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                vk.verify_strict(&cosigned_message(time, text), &sig).ok()?;
                Some(SignatureKind::Cosignature { time })
            }
        }
    }

    fn type_byte(&self) -> u8 {
        self.algorithm().type_byte()
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<VerifierKey, KeyError> {
        const FORM: &str = "<name>+<8 hex digits>+<base64 key>";
        if s.len() > MAX_KEY_STRING {
            return Err(KeyError::TooLong(s.len()));
        }
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex8), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Format { want: FORM });
        };
        check_name(name)?;
        let id = parse_key_id(hex8)?;
        let raw = STANDARD.decode(b64).map_err(|_| KeyError::Base64)?;
        let (&type_byte, key) = raw.split_first().ok_or(KeyError::Empty)?;
        let vkey = match type_byte {
            TYPE_ED25519 | TYPE_COSIGNATURE_V1 => {
                let key: &[u8; 32] = key.try_into().map_err(|_| KeyError::Length {
                    type_byte,
                    want: 32,
                    seen: key.len(),
                })?;
                let vk = VerifyingKey::from_bytes(key).map_err(|_| KeyError::BadEd25519)?;
                VerifierKey {
                    name: name.to_string(),
                    id: key_id(name, type_byte, key),
                    key: if type_byte == TYPE_ED25519 {
                        PublicKey::Ed25519(vk)
                    } else {
                        PublicKey::Cosignature(vk)
                    },
                }
            }
            TYPE_ECDSA => {
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(key)
                    .map_err(|_| KeyError::BadEcdsa)?;
                VerifierKey {
                    name: name.to_string(),
                    id: ecdsa_key_id(key),
                    key: PublicKey::Ecdsa {
                        key: vk,
                        der: key.to_vec(),
                    },
                }
            }
            other => return Err(KeyError::UnsupportedType(other)),
        };
        if vkey.id != id {
            return Err(KeyError::KeyIdMismatch {
                want: vkey.id,
                seen: id,
            });
        }
        Ok(vkey)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(1 + self.public_key().len());
        raw.push(self.type_byte());
        raw.extend_from_slice(self.public_key());
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(raw))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

/// SHA-256(name ‖ 0x0A ‖ type ‖ key)\[:4\] as a big-endian uint32.
pub fn key_id(name: &str, type_byte: u8, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', type_byte]);
    h.update(key);
    first_u32(&h.finalize())
}

/// The key ID of an ECDSA key: SHA-256(DER SubjectPublicKeyInfo)\[:4\].
fn ecdsa_key_id(der: &[u8]) -> u32 {
    first_u32(&Sha256::digest(der))
}

fn first_u32(digest: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&digest[..4]);
    u32::from_be_bytes(b)
}

fn parse_key_id(hex8: &str) -> Result<u32, KeyError> {
    if hex8.len() != 8 || !hex8.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::BadKeyId(hex8.chars().take(16).collect()));
    }
    u32::from_str_radix(hex8, 16).map_err(|_| KeyError::BadKeyId(hex8.to_string()))
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::BadName(name.chars().take(64).collect()))
    }
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <t>\n` ‖ text.
pub fn cosigned_message(time: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

/// Why a signature line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureLineError {
    #[error("does not start with \"\u{2014} \" (U+2014 and a space)")]
    MissingDash,
    #[error("has no space between key name and signature")]
    MissingSignature,
    #[error("key name {0:?} is empty or contains a space or '+'")]
    BadName(String),
    #[error("signature is not canonical standard base64")]
    Base64,
    #[error("signature decodes to {0} bytes, want at least 5 (key ID and signature)")]
    TooShort(usize),
}

/// Why a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("note is {0} bytes, more than the {MAX_NOTE_SIZE} allowed")]
    TooLarge(usize),
    #[error("note is not valid UTF-8 at byte {0}")]
    InvalidUtf8(usize),
    #[error("note has control character {byte:#04x} at byte {offset}; only newline is allowed")]
    ControlCharacter { offset: usize, byte: u8 },
    #[error("note has no blank line separating text and signatures")]
    NoSignatureBlock,
    #[error("note has a blank line but no signature lines after it")]
    NoSignatures,
    #[error("note does not end in a newline")]
    NoFinalNewline,
    #[error("note has {0} signature lines, more than the {MAX_SIGNATURES} allowed")]
    TooManySignatures(usize),
    #[error("signature line {line} {error}")]
    BadSignatureLine {
        line: usize,
        error: SignatureLineError,
    },
    #[error("signature by known key {name}+{key_id:08x} does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("two different known keys are named {name}+{key_id:08x}")]
    AmbiguousKey { name: String, key_id: u32 },
    #[error("note has no signature by a known key (signed by: {})", signers_list(.0))]
    NotVerified(Vec<(String, u32)>),
    #[error("note text must end in a newline")]
    TextNoFinalNewline,
    #[error("signer name {0:?} is empty or contains a space or '+'")]
    BadSignerName(String),
}

fn signers_list(s: &[(String, u32)]) -> String {
    if s.is_empty() {
        return "nobody".to_string();
    }
    s.iter()
        .map(|(n, id)| format!("{n}+{id:08x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One signature line of a note, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_id: u32,
    /// The signature bytes after the 4-byte key ID.
    pub signature: Vec<u8>,
}

impl Signature {
    /// The signature line, without its newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{DASH}{} {}", self.name, STANDARD.encode(raw))
    }

    /// The timestamp of a cosignature/v1, read without verifying: the
    /// first 8 bytes big-endian, when the signature is 72 bytes long.
    pub fn cosignature_time(&self) -> Option<u64> {
        if self.signature.len() != 72 {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.signature[..8]);
        Some(u64::from_be_bytes(b))
    }
}

/// A note split into its text and signature lines, nothing verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    pub signatures: Vec<Signature>,
}

impl Note {
    /// Parses a signed note strictly, without checking any signature.
    ///
    /// The text is everything up to and including the newline before the
    /// last blank line; every line after that blank line must be a
    /// signature line. Identical repeated signature lines are kept.
    pub fn parse(msg: &[u8]) -> Result<Note, NoteError> {
        if msg.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge(msg.len()));
        }
        let s = std::str::from_utf8(msg).map_err(|e| NoteError::InvalidUtf8(e.valid_up_to()))?;
        check_controls(s)?;
        let split = s.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::NoFinalNewline);
        }
        let count = sigs.bytes().filter(|&b| b == b'\n').count();
        if count > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures(count));
        }
        let mut signatures = Vec::with_capacity(count);
        for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            let sig = parse_signature_line(line)
                .map_err(|error| NoteError::BadSignatureLine { line: i + 1, error })?;
            signatures.push(sig);
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// The note as bytes: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
            out.push('\n');
        }
        out.into_bytes()
    }
}

fn check_controls(s: &str) -> Result<(), NoteError> {
    match s.bytes().enumerate().find(|&(_, b)| b < 0x20 && b != b'\n') {
        Some((offset, byte)) => Err(NoteError::ControlCharacter { offset, byte }),
        None => Ok(()),
    }
}

fn parse_signature_line(line: &str) -> Result<Signature, SignatureLineError> {
    let rest = line
        .strip_prefix(DASH)
        .ok_or(SignatureLineError::MissingDash)?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(SignatureLineError::MissingSignature)?;
    if !is_valid_name(name) {
        return Err(SignatureLineError::BadName(name.chars().take(64).collect()));
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| SignatureLineError::Base64)?;
    if raw.len() < 5 {
        return Err(SignatureLineError::TooShort(raw.len()));
    }
    let (id, sig) = raw.split_at(4);
    Ok(Signature {
        name: name.to_string(),
        key_id: first_u32(id),
        signature: sig.to_vec(),
    })
}

/// What a verified signature attests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// An Ed25519 note signature (`0x01`).
    Ed25519,
    /// An ECDSA P-256 note signature (`0x02`).
    EcdsaP256,
    /// A cosignature/v1 (`0x04`) made at `time` (POSIX seconds).
    Cosignature { time: u64 },
}

/// A signature that verified under one of the given keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub name: String,
    pub key_id: u32,
    pub kind: SignatureKind,
}

impl VerifiedSignature {
    /// The cosignature timestamp, for cosignatures.
    pub fn cosignature_time(&self) -> Option<u64> {
        match self.kind {
            SignatureKind::Cosignature { time } => Some(time),
            _ => None,
        }
    }
}

/// A note whose signatures have been checked against a set of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The signed text, including its final newline.
    pub text: String,
    /// One entry per known key that signed, in order of appearance.
    pub verified: Vec<VerifiedSignature>,
    /// Signatures by keys not given to [`open`], duplicates removed.
    pub unverified: Vec<Signature>,
}

/// Parses `msg` and checks its signatures against `keys`.
///
/// A signature belongs to a key when both its name and key ID match. Every
/// signature by a known key must verify, or the note is rejected
/// ([`NoteError::InvalidSignature`]); signatures by unknown keys land in
/// [`VerifiedNote::unverified`]; at least one signature must verify
/// ([`NoteError::NotVerified`]).
pub fn open(msg: &[u8], keys: &[VerifierKey]) -> Result<VerifiedNote, NoteError> {
    let note = Note::parse(msg)?;
    let mut verified: Vec<VerifiedSignature> = Vec::new();
    let mut unverified: Vec<Signature> = Vec::new();
    for sig in note.signatures {
        let mut matching = keys
            .iter()
            .filter(|k| k.id == sig.key_id && k.name == sig.name);
        let Some(key) = matching.next() else {
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if matching.any(|other| other != key) {
            return Err(NoteError::AmbiguousKey {
                name: sig.name,
                key_id: sig.key_id,
            });
        }
        let Some(kind) = key.verify(note.text.as_bytes(), &sig.signature) else {
            return Err(NoteError::InvalidSignature {
                name: sig.name,
                key_id: sig.key_id,
            });
        };
        if !verified
            .iter()
            .any(|v| v.name == sig.name && v.key_id == sig.key_id)
        {
            verified.push(VerifiedSignature {
                name: sig.name,
                key_id: sig.key_id,
                kind,
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NotVerified(
            unverified.into_iter().map(|s| (s.name, s.key_id)).collect(),
        ));
    }
    Ok(VerifiedNote {
        text: note.text,
        verified,
        unverified,
    })
}

#[derive(Clone)]
enum Role {
    Note,
    Cosignature { time: u64 },
}

/// An Ed25519 signing key with its name: signs notes (`0x01`) or, made
/// with [`Signer::cosigner`], cosignature/v1 lines (`0x04`) at a given
/// time.
///
/// Its signer key string (`PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 ‖
/// seed)>`, as golang.org/x/mod/sumdb/note's `NewSigner` reads it) is
/// parsed with [`FromStr`] and produced by [`Signer::to_signer_key`]; the
/// `Debug` output never shows the secret.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SigningKey,
    role: Role,
}

impl Signer {
    /// A new random key (from the operating system's generator).
    pub fn generate(name: &str) -> Result<Signer, KeyError> {
        check_name(name)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Ok(Signer {
            name: name.to_string(),
            key,
            role: Role::Note,
        })
    }

    /// The key derived from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, KeyError> {
        check_name(name)?;
        Ok(Signer {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
            role: Role::Note,
        })
    }

    /// The same key as a witness producing cosignature/v1 lines dated
    /// `time` (POSIX seconds, at most 2^63-1).
    pub fn cosigner(&self, time: u64) -> Result<Signer, KeyError> {
        if time > MAX_COSIGNATURE_TIME {
            return Err(KeyError::TimeOutOfRange(time));
        }
        Ok(Signer {
            role: Role::Cosignature { time },
            ..self.clone()
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID this signer puts on its signature lines.
    pub fn key_id(&self) -> u32 {
        self.verifier_key().key_id()
    }

    /// The verifier key for this signer's lines: `0x01` for a note signer,
    /// `0x04` for a cosigner.
    pub fn verifier_key(&self) -> VerifierKey {
        let vk = self.key.verifying_key();
        let (type_byte, key) = match self.role {
            Role::Note => (TYPE_ED25519, PublicKey::Ed25519(vk)),
            Role::Cosignature { .. } => (TYPE_COSIGNATURE_V1, PublicKey::Cosignature(vk)),
        };
        VerifierKey {
            name: self.name.clone(),
            id: key_id(&self.name, type_byte, vk.as_bytes()),
            key,
        }
    }

    /// The signer key string, always in its plain Ed25519 (`0x01`) form.
    pub fn to_signer_key(&self) -> String {
        let mut raw = vec![TYPE_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        let id = key_id(
            &self.name,
            TYPE_ED25519,
            self.key.verifying_key().as_bytes(),
        );
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            id,
            STANDARD.encode(raw)
        )
    }

    fn signature_for(&self, text: &[u8]) -> Signature {
        let signature = match self.role {
            Role::Note => self.key.sign(text).to_bytes().to_vec(),
            Role::Cosignature { time } => {
                let sig = self.key.sign(&cosigned_message(time, text));
                let mut out = time.to_be_bytes().to_vec();
                out.extend_from_slice(&sig.to_bytes());
                out
            }
        };
        Signature {
            name: self.name.clone(),
            key_id: self.key_id(),
            signature,
        }
    }
}

impl FromStr for Signer {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Signer, KeyError> {
        const FORM: &str = "PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>";
        if s.len() > MAX_KEY_STRING {
            return Err(KeyError::TooLong(s.len()));
        }
        let mut parts = s.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(hex8), Some(b64)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(KeyError::Format { want: FORM });
        };
        check_name(name)?;
        let id = parse_key_id(hex8)?;
        let raw = STANDARD.decode(b64).map_err(|_| KeyError::Base64)?;
        let (&type_byte, seed) = raw.split_first().ok_or(KeyError::Empty)?;
        if type_byte != TYPE_ED25519 {
            return Err(KeyError::UnsupportedType(type_byte));
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| KeyError::Length {
            type_byte,
            want: 32,
            seen: seed.len(),
        })?;
        let signer = Signer::from_seed(name, seed)?;
        let want = signer.key_id();
        if want != id {
            return Err(KeyError::KeyIdMismatch { want, seen: id });
        }
        Ok(signer)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Note => write!(f, "Signer({}+{:08x})", self.name, self.key_id()),
            Role::Cosignature { time } => {
                write!(f, "Cosigner({}+{:08x} @ {time})", self.name, self.key_id())
            }
        }
    }
}

/// Signs `text` (which must end in a newline and contain no control
/// character but newline) and returns the signed note.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::TextNoFinalNewline);
    }
    check_controls(text)?;
    let note = Note {
        text: text.to_string(),
        signatures: Vec::new(),
    };
    extend(note, signers)
}

/// Adds signatures to an already signed note `msg` (which is parsed but
/// not verified). Existing lines with the same name and key ID as a new
/// signer are replaced; all others are kept, in order.
pub fn add_signatures(msg: &[u8], signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    let mut note = Note::parse(msg)?;
    note.signatures.retain(|s| {
        !signers
            .iter()
            .any(|n| n.name == s.name && n.key_id() == s.key_id)
    });
    extend(note, signers)
}

fn extend(mut note: Note, signers: &[&Signer]) -> Result<Vec<u8>, NoteError> {
    if note.signatures.is_empty() && signers.is_empty() {
        return Err(NoteError::NoSignatures);
    }
    for s in signers {
        if !is_valid_name(&s.name) {
            return Err(NoteError::BadSignerName(s.name.clone()));
        }
        note.signatures.push(s.signature_for(note.text.as_bytes()));
    }
    if note.signatures.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures(note.signatures.len()));
    }
    let out = note.to_bytes();
    if out.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The C2SP signed-note example (c2sp.org/signed-note; key and note as
    // quoted in ../shared/testdata/README.md).
    const C2SP_KEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const C2SP_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    // sum.golang.org's key and a tree note it signed (golang/mod, BSD-3).
    const SUMDB_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    const SUMDB_NOTE: &str = "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n\u{2014} sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";

    // The example in golang.org/x/mod/sumdb/note's package documentation
    // (BSD-3): a signer key, its verifier key, and the note it signs.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    // ECDSA P-256 keys and notes from transparency-dev/formats
    // note/note_verifier_test.go (Apache-2.0): the Sigstore Rekor key and
    // the Pixel 6 transparency log key, with notes each signed.
    const REKOR_KEY: &str = "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=";
    const REKOR_NOTE: &str = "Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\u{2014} rekor.sigstore.dev wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n";
    const PIXEL_KEY: &str = "pixel6_transparency_log+91c16e30+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABN+4x0Jk1yTwvLFI9A4NDdGZcX0aiWVdWM5XJVy0M4VWD3AvyW5Q6Hs9A0mcDkpUoYgn+KKPNzFC0H3nN3q6JQ8=";
    const PIXEL_NOTE: &str = "DEFAULT\n10\nbsWRucJU5xJPHb5eBdOm6+DM+VelCZBuvtI3sHERJ9Y=\n\n\u{2014} pixel6_transparency_log kcFuMDBFAiEAhqMAP8P6qf6QxtUJhzMhbN+MbZ9dwfUHzGQJmffJHtoCIGD0cNe47dHWBoPwYdgBCepB06/+g5O1FmYjXl06owL4\n";

    fn key(s: &str) -> VerifierKey {
        s.parse().unwrap()
    }

    fn flip_bit(msg: &[u8], bit: usize) -> Vec<u8> {
        let mut m = msg.to_vec();
        m[bit / 8] ^= 1 << (bit % 8);
        m
    }

    #[test]
    fn verifies_the_c2sp_example_note() {
        let n = open(C2SP_NOTE.as_bytes(), &[key(C2SP_KEY)]).unwrap();
        assert_eq!(n.text, "This is an example message.\n");
        assert_eq!(
            n.verified,
            vec![VerifiedSignature {
                name: "example.com/foo".into(),
                key_id: 0x530d903a,
                kind: SignatureKind::Ed25519
            }]
        );
        assert!(n.unverified.is_empty());
    }

    #[test]
    fn verifies_the_sum_golang_org_tree_note() {
        let n = open(SUMDB_NOTE.as_bytes(), &[key(SUMDB_KEY)]).unwrap();
        assert_eq!(
            n.text,
            "go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n"
        );
        assert_eq!(n.verified[0].name, "sum.golang.org");
        assert_eq!(n.verified[0].key_id, 0x033de0ae);
    }

    #[test]
    fn verifies_real_ecdsa_p256_notes() {
        for (k, note) in [(REKOR_KEY, REKOR_NOTE), (PIXEL_KEY, PIXEL_NOTE)] {
            let k = key(k);
            assert_eq!(k.algorithm(), Algorithm::EcdsaP256);
            let n = open(note.as_bytes(), std::slice::from_ref(&k)).unwrap();
            assert_eq!(n.verified[0].kind, SignatureKind::EcdsaP256);
            assert_eq!(n.verified[0].key_id, k.key_id());
        }
    }

    #[test]
    fn ecdsa_key_id_is_the_hash_of_the_der_key_alone() {
        // Same key material under another name keeps its key ID.
        let renamed = REKOR_KEY.replace("rekor.sigstore.dev", "other.example");
        assert_eq!(key(&renamed).key_id(), 0xc0d23d6a);
        let wrong = REKOR_KEY.replace("c0d23d6a", "00000000");
        assert_eq!(
            wrong.parse::<VerifierKey>(),
            Err(KeyError::KeyIdMismatch {
                want: 0xc0d23d6a,
                seen: 0
            })
        );
    }

    #[test]
    fn every_one_bit_change_of_a_real_note_is_refused() {
        for (k, note) in [
            (C2SP_KEY, C2SP_NOTE),
            (SUMDB_KEY, SUMDB_NOTE),
            (GO_VKEY, GO_NOTE),
            (REKOR_KEY, REKOR_NOTE),
            (PIXEL_KEY, PIXEL_NOTE),
        ] {
            let keys = [key(k)];
            for bit in 0..note.len() * 8 {
                let m = flip_bit(note.as_bytes(), bit);
                assert!(open(&m, &keys).is_err(), "bit {bit} of {note:?}");
            }
        }
    }

    #[test]
    fn signs_exactly_like_go_note_sign() {
        let signer: Signer = GO_SKEY.parse().unwrap();
        assert_eq!(signer.verifier_key().to_string(), GO_VKEY);
        assert_eq!(signer.to_signer_key(), GO_SKEY);
        assert_eq!(sign(GO_TEXT, &[&signer]).unwrap(), GO_NOTE.as_bytes());
        assert_eq!(format!("{signer:?}"), "Signer(PeterNeumann+c74f20a3)");
    }

    #[test]
    fn verifier_key_round_trips_through_its_string() {
        for s in [C2SP_KEY, SUMDB_KEY, GO_VKEY, REKOR_KEY, PIXEL_KEY] {
            assert_eq!(key(s).to_string(), s);
        }
        // Upper-case hex is read (Go's ParseUint accepts it) and printed
        // lower-case.
        let upper = "rekor.sigstore.dev+C0D23D6A+".to_string() + REKOR_KEY.split_at(28).1;
        assert_eq!(key(&upper).to_string(), REKOR_KEY);
    }

    #[test]
    fn refuses_malformed_verifier_keys() {
        let cases: Vec<(String, KeyError)> = vec![
            (
                "example.com/foo+530d903a".into(),
                KeyError::Format {
                    want: "<name>+<8 hex digits>+<base64 key>",
                },
            ),
            (
                "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::BadName(String::new()),
            ),
            (
                "exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::BadName("exa mple".into()),
            ),
            (
                "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::BadKeyId("530d903".into()),
            ),
            (
                "example.com/foo+-30d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::BadKeyId("-30d903a".into()),
            ),
            // Non-canonical base64: last character changes unused bits.
            (REKOR_KEY.replace("WLc=", "WLd="), KeyError::Base64),
            (REKOR_KEY.replace("WLc=", "WLc"), KeyError::Base64),
            ("example.com/foo+530d903a+".into(), KeyError::Empty),
            (
                "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3Q==".into(),
                KeyError::Length {
                    type_byte: 1,
                    want: 32,
                    seen: 30,
                },
            ),
            (
                "example.com/foo+530d903a+A+kyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::UnsupportedType(3),
            ),
            (
                "example.com/foo+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k".into(),
                KeyError::KeyIdMismatch {
                    want: 0x530d903a,
                    seen: 0,
                },
            ),
            (
                "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWA==".into(),
                KeyError::BadEcdsa,
            ),
            ("x".repeat(5000), KeyError::TooLong(5000)),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<VerifierKey>(), Err(want), "{s}");
        }
    }

    #[test]
    fn refuses_ed25519_keys_that_are_not_curve_points() {
        // Find a 32-byte string that does not decompress to a point.
        let bad = (0u8..=255)
            .map(|b| [b; 32])
            .find(|k| VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        assert_eq!(
            VerifierKey::new_ed25519("x", &bad),
            Err(KeyError::BadEd25519)
        );
        let mut raw = vec![1u8];
        raw.extend_from_slice(&bad);
        let s = format!("x+{:08x}+{}", key_id("x", 1, &bad), STANDARD.encode(&raw));
        assert_eq!(s.parse::<VerifierKey>(), Err(KeyError::BadEd25519));
    }

    #[test]
    fn refuses_malformed_signer_keys() {
        let s = |x: &str| x.parse::<Signer>().map(|_| ()).unwrap_err();
        assert!(matches!(s("PRIVATE+KEY+x"), KeyError::Format { .. }));
        assert!(matches!(
            s(&GO_SKEY.replace("PRIVATE", "PUBLIC")),
            KeyError::Format { .. }
        ));
        assert_eq!(
            s(&GO_SKEY.replace("c74f20a3", "c74f20a4")),
            KeyError::KeyIdMismatch {
                want: 0xc74f20a3,
                seen: 0xc74f20a4
            }
        );
        assert_eq!(
            s("PRIVATE+KEY+x+00000000+BA=="),
            KeyError::UnsupportedType(4)
        );
        assert_eq!(
            s("PRIVATE+KEY+x+00000000+AQ=="),
            KeyError::Length {
                type_byte: 1,
                want: 32,
                seen: 0
            }
        );
    }

    #[test]
    fn generated_signer_key_string_round_trips() {
        let s = Signer::generate("example.com/new").unwrap();
        let back: Signer = s.to_signer_key().parse().unwrap();
        assert_eq!(back.verifier_key(), s.verifier_key());
        let note = sign("hello\n", &[&s]).unwrap();
        open(&note, &[back.verifier_key()]).unwrap();
        assert!(Signer::generate("bad name").is_err());
    }

    #[test]
    fn ignores_signatures_by_unknown_keys() {
        let other = Signer::from_seed("other.example", &[7; 32]).unwrap();
        let msg = add_signatures(C2SP_NOTE.as_bytes(), &[&other]).unwrap();
        let n = open(&msg, &[key(C2SP_KEY)]).unwrap();
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.unverified.len(), 1);
        assert_eq!(n.unverified[0].name, "other.example");
        assert_eq!(n.unverified[0].key_id, other.key_id());
    }

    #[test]
    fn ignores_a_signature_that_shares_only_the_name_or_only_the_id() {
        // Same name as a known key, different key: a different key ID.
        let impostor = Signer::from_seed("example.com/foo", &[9; 32]).unwrap();
        let msg = add_signatures(C2SP_NOTE.as_bytes(), &[&impostor]).unwrap();
        let n = open(&msg, &[key(C2SP_KEY)]).unwrap();
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.unverified[0].name, "example.com/foo");
        // Same key ID, other name.
        let line = C2SP_NOTE.replace("\u{2014} example.com/foo", "\u{2014} example.com/bar");
        let err = open(line.as_bytes(), &[key(C2SP_KEY)]).unwrap_err();
        assert_eq!(
            err,
            NoteError::NotVerified(vec![("example.com/bar".into(), 0x530d903a)])
        );
    }

    #[test]
    fn a_bad_signature_by_a_known_key_rejects_the_note() {
        let good = Signer::from_seed("good.example", &[1; 32]).unwrap();
        // Signature bytes by the C2SP key's name and ID, made with another key.
        let forged = Note {
            text: "This is an example message.\n".into(),
            signatures: vec![Signature {
                name: "example.com/foo".into(),
                key_id: 0x530d903a,
                signature: vec![0; 64],
            }],
        };
        let msg = add_signatures(&forged.to_bytes(), &[&good]).unwrap();
        let err = open(&msg, &[key(C2SP_KEY), good.verifier_key()]).unwrap_err();
        assert_eq!(
            err,
            NoteError::InvalidSignature {
                name: "example.com/foo".into(),
                key_id: 0x530d903a
            }
        );
        assert!(err.to_string().contains("example.com/foo+530d903a"));
    }

    #[test]
    fn a_note_without_a_known_signature_is_an_error() {
        let err = open(C2SP_NOTE.as_bytes(), &[key(SUMDB_KEY)]).unwrap_err();
        assert_eq!(
            err,
            NoteError::NotVerified(vec![("example.com/foo".into(), 0x530d903a)])
        );
        assert!(err.to_string().contains("example.com/foo+530d903a"));
        assert!(open(C2SP_NOTE.as_bytes(), &[]).is_err());
    }

    #[test]
    fn repeated_signatures_are_reported_once_and_each_is_checked() {
        let s = Signer::from_seed("a.example", &[1; 32]).unwrap();
        let one = sign("t\n", &[&s]).unwrap();
        let line = std::str::from_utf8(&one).unwrap().split_at(3).1.to_string();
        let twice = format!("t\n\n{line}{line}");
        let n = open(twice.as_bytes(), &[s.verifier_key()]).unwrap();
        assert_eq!(n.verified.len(), 1);
        // A bad second copy by the same key is not skipped.
        let mut note = Note::parse(twice.as_bytes()).unwrap();
        note.signatures[1].signature[0] ^= 1;
        assert!(matches!(
            open(&note.to_bytes(), &[s.verifier_key()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn two_different_keys_with_one_name_and_id_are_ambiguous() {
        // A real key and a forged key carrying the same name and ID: build
        // the forged one by hand, since parsing would refuse its ID.
        let real = key(C2SP_KEY);
        let mut forged = VerifierKey::new_ed25519("example.com/foo", &[0x11; 32])
            .or_else(|_| VerifierKey::new_ed25519("example.com/foo", &[0x22; 32]))
            .unwrap();
        forged.id = real.id;
        assert_eq!(
            open(C2SP_NOTE.as_bytes(), &[real.clone(), forged]),
            Err(NoteError::AmbiguousKey {
                name: "example.com/foo".into(),
                key_id: 0x530d903a
            })
        );
        // The same key twice is not ambiguous.
        open(C2SP_NOTE.as_bytes(), &[real.clone(), real]).unwrap();
    }

    #[test]
    fn refuses_malformed_notes_with_a_clear_error() {
        let sig = "\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=";
        let cases: Vec<(Vec<u8>, NoteError)> = vec![
            (b"text\n".to_vec(), NoteError::NoSignatureBlock),
            (b"text\n\n".to_vec(), NoteError::NoSignatures),
            (
                format!("text\n\n{sig}").into_bytes(),
                NoteError::NoFinalNewline,
            ),
            (
                format!("te\rxt\n\n{sig}\n").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 2,
                    byte: b'\r',
                },
            ),
            (
                format!("text\t\n\n{sig}\n").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 4,
                    byte: b'\t',
                },
            ),
            (
                [b"te\xffxt\n\n".as_slice(), sig.as_bytes(), b"\n"].concat(),
                NoteError::InvalidUtf8(2),
            ),
            (
                b"text\n\n- example.com/foo AAAAAAA=\n".to_vec(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::MissingDash,
                },
            ),
            (
                format!("text\n\n{sig}\n\u{2014} example.com/foo\n").into_bytes(),
                NoteError::BadSignatureLine {
                    line: 2,
                    error: SignatureLineError::MissingSignature,
                },
            ),
            (
                "text\n\n\u{2014} a+b AAAAAAA=\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::BadName("a+b".into()),
                },
            ),
            (
                "text\n\n\u{2014} a\u{a0}b AAAAAAA=\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::BadName("a\u{a0}b".into()),
                },
            ),
            // Non-canonical base64 (trailing bits set), missing padding,
            // and an extra space.
            (
                "text\n\n\u{2014} a AAAAAAB=\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::Base64,
                },
            ),
            (
                "text\n\n\u{2014} a AAAAAAA\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::Base64,
                },
            ),
            (
                "text\n\n\u{2014} a AAAA AAA=\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::Base64,
                },
            ),
            (
                "text\n\n\u{2014} a AAAAAA==\n".into(),
                NoteError::BadSignatureLine {
                    line: 1,
                    error: SignatureLineError::TooShort(4),
                },
            ),
            (
                vec![b'a'; MAX_NOTE_SIZE + 1],
                NoteError::TooLarge(MAX_NOTE_SIZE + 1),
            ),
        ];
        for (msg, want) in cases {
            let got = open(&msg, &[key(C2SP_KEY)]);
            assert_eq!(got, Err(want), "{:?}", String::from_utf8_lossy(&msg));
        }
    }

    #[test]
    fn refuses_ten_thousand_signature_lines() {
        let line = "\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let short = "\u{2014} a AAAAAAA=\n";
        let msg = format!("text\n\n{}", short.repeat(10_000));
        assert_eq!(
            open(msg.as_bytes(), &[key(C2SP_KEY)]),
            Err(NoteError::TooManySignatures(10_000))
        );
        // 10,000 full-length lines exceed the size bound first.
        let msg = format!("text\n\n{}", line.repeat(10_000));
        assert_eq!(
            open(msg.as_bytes(), &[key(C2SP_KEY)]),
            Err(NoteError::TooLarge(msg.len()))
        );
        // 100 lines are still accepted, 101 are not.
        let hundred = format!("This is an example message.\n\n{}", line.repeat(100));
        open(hundred.as_bytes(), &[key(C2SP_KEY)]).unwrap();
        let more = format!("{hundred}{line}");
        assert_eq!(
            open(more.as_bytes(), &[key(C2SP_KEY)]),
            Err(NoteError::TooManySignatures(101))
        );
    }

    #[test]
    fn the_text_ends_at_the_last_blank_line() {
        let s = Signer::from_seed("a.example", &[3; 32]).unwrap();
        let text = "para one\n\npara two\n";
        let msg = sign(text, &[&s]).unwrap();
        assert_eq!(open(&msg, &[s.verifier_key()]).unwrap().text, text);
        // A text that itself ends in a blank line.
        let msg = sign("note\n\n", &[&s]).unwrap();
        assert_eq!(open(&msg, &[s.verifier_key()]).unwrap().text, "note\n\n");
    }

    #[test]
    fn sign_refuses_text_that_would_not_parse() {
        let s = Signer::from_seed("a.example", &[3; 32]).unwrap();
        assert_eq!(
            sign("no newline", &[&s]),
            Err(NoteError::TextNoFinalNewline)
        );
        assert_eq!(
            sign("a\x07\n", &[&s]),
            Err(NoteError::ControlCharacter { offset: 1, byte: 7 })
        );
        assert_eq!(sign("a\n", &[]), Err(NoteError::NoSignatures));
    }

    #[test]
    fn cosignature_verifies_under_both_publications_of_the_witness_key() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let witness = Signer::from_seed("witness.example/w1", &[2; 32]).unwrap();
        let plain = witness.verifier_key(); // published as type 0x01
        let cosigner = witness.cosigner(1_700_000_000).unwrap();
        let as_04 = cosigner.verifier_key(); // published as type 0x04
        assert_eq!(as_04.algorithm(), Algorithm::CosignatureV1);
        assert_eq!(plain.to_cosigner().unwrap(), as_04);
        assert_eq!(as_04.to_cosigner().unwrap(), as_04);
        assert_eq!(
            as_04.key_id(),
            key_id("witness.example/w1", 4, plain.public_key())
        );
        let as_04_parsed: VerifierKey = as_04.to_string().parse().unwrap();
        assert_eq!(as_04_parsed, as_04);

        let text = "example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let signed = sign(text, &[&log]).unwrap();
        let cosigned = add_signatures(&signed, &[&cosigner]).unwrap();
        for wkey in [plain.to_cosigner().unwrap(), as_04_parsed] {
            let n = open(&cosigned, &[log.verifier_key(), wkey]).unwrap();
            assert_eq!(
                n.verified,
                vec![
                    VerifiedSignature {
                        name: "example.com/log".into(),
                        key_id: log.key_id(),
                        kind: SignatureKind::Ed25519
                    },
                    VerifiedSignature {
                        name: "witness.example/w1".into(),
                        key_id: as_04.key_id(),
                        kind: SignatureKind::Cosignature {
                            time: 1_700_000_000
                        }
                    }
                ]
            );
            assert_eq!(n.verified[1].cosignature_time(), Some(1_700_000_000));
        }
        // The plain 0x01 key does not match the cosignature line (its ID
        // differs), so that line stays unverified.
        let n = open(&cosigned, &[log.verifier_key(), plain]).unwrap();
        assert_eq!(n.verified.len(), 1);
        assert_eq!(n.unverified.len(), 1);
        assert_eq!(n.unverified[0].cosignature_time(), Some(1_700_000_000));
    }

    #[test]
    fn cosignature_signs_the_header_time_and_text() {
        let w = Signer::from_seed("w", &[5; 32])
            .unwrap()
            .cosigner(42)
            .unwrap();
        let text = "origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let msg = sign(text, &[&w]).unwrap();
        let note = Note::parse(&msg).unwrap();
        let sig = &note.signatures[0].signature;
        assert_eq!(sig.len(), 72);
        assert_eq!(&sig[..8], &42u64.to_be_bytes());
        let vk =
            VerifyingKey::from_bytes(w.verifier_key().public_key().try_into().unwrap()).unwrap();
        let ed = ed25519_dalek::Signature::from_slice(&sig[8..]).unwrap();
        vk.verify_strict(format!("cosignature/v1\ntime 42\n{text}").as_bytes(), &ed)
            .unwrap();
    }

    #[test]
    fn cosignature_with_changed_time_or_oversized_time_fails() {
        let w = Signer::from_seed("w", &[5; 32]).unwrap();
        let c = w.cosigner(42).unwrap();
        let msg = sign("o\n1\nx\n", &[&c]).unwrap();
        let mut note = Note::parse(&msg).unwrap();
        note.signatures[0].signature[7] = 43;
        assert!(matches!(
            open(&note.to_bytes(), &[c.verifier_key()]),
            Err(NoteError::InvalidSignature { .. })
        ));
        // A timestamp of 2^63 or more is invalid even if signed.
        assert_eq!(
            w.cosigner(1 << 63).unwrap_err(),
            KeyError::TimeOutOfRange(1 << 63)
        );
        let big = 1u64 << 63;
        let sig = w.key.sign(&cosigned_message(big, b"o\n1\nx\n"));
        let mut raw = big.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        note.signatures[0].signature = raw;
        assert!(matches!(
            open(&note.to_bytes(), &[c.verifier_key()]),
            Err(NoteError::InvalidSignature { .. })
        ));
        // A 64-byte plain signature under a cosignature key fails too.
        let plain = sign("o\n1\nx\n", &[&w]).unwrap();
        let mut note = Note::parse(&plain).unwrap();
        note.signatures[0].key_id = c.key_id();
        assert!(open(&note.to_bytes(), &[c.verifier_key()]).is_err());
    }

    #[test]
    fn an_ecdsa_key_cannot_become_a_cosigner() {
        assert_eq!(key(REKOR_KEY).to_cosigner(), Err(KeyError::NotEd25519));
    }

    #[test]
    fn ecdsa_signatures_made_here_verify_including_high_s() {
        use p256::ecdsa::signature::Signer as _;
        let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(point.as_bytes());
        let mut raw = vec![TYPE_ECDSA];
        raw.extend_from_slice(&der);
        let vkey = key(&format!(
            "ecdsa.example+{:08x}+{}",
            ecdsa_key_id(&der),
            STANDARD.encode(&raw)
        ));
        let text = "ecdsa.example\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let sig: p256::ecdsa::Signature = sk.sign(text.as_bytes());
        // Both (r, s) and (r, n - s) are valid ECDSA signatures; Go's
        // VerifyASN1 accepts both, and so do we.
        let low = sig.normalize_s().unwrap_or(sig);
        let s_neg = -*low.s();
        let high =
            p256::ecdsa::Signature::from_scalars(low.r().to_bytes(), s_neg.to_bytes()).unwrap();
        for s in [low, high] {
            let note = Note {
                text: text.into(),
                signatures: vec![Signature {
                    name: "ecdsa.example".into(),
                    key_id: vkey.key_id(),
                    signature: s.to_der().as_bytes().to_vec(),
                }],
            };
            let n = open(&note.to_bytes(), std::slice::from_ref(&vkey)).unwrap();
            assert_eq!(n.verified[0].kind, SignatureKind::EcdsaP256);
        }
        // A raw (r ‖ s) signature is not DER and fails.
        let note = Note {
            text: text.into(),
            signatures: vec![Signature {
                name: "ecdsa.example".into(),
                key_id: vkey.key_id(),
                signature: low.to_bytes().to_vec(),
            }],
        };
        assert!(matches!(
            open(&note.to_bytes(), &[vkey]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn add_signatures_replaces_a_signers_old_line() {
        let a = Signer::from_seed("a", &[1; 32]).unwrap();
        let w = Signer::from_seed("w", &[2; 32]).unwrap();
        let msg = sign("t\n", &[&a, &w.cosigner(1).unwrap()]).unwrap();
        let again = add_signatures(&msg, &[&w.cosigner(2).unwrap()]).unwrap();
        let n = Note::parse(&again).unwrap();
        assert_eq!(n.signatures.len(), 2);
        assert_eq!(n.signatures[0].name, "a");
        assert_eq!(n.signatures[1].cosignature_time(), Some(2));
    }

    proptest! {
        #[test]
        fn sign_then_open_round_trips(
            lines in proptest::collection::vec("[ -~\u{a0}-\u{2fff}]{0,40}", 1..6),
            seed in any::<[u8; 32]>(),
            time in 0u64..=MAX_COSIGNATURE_TIME,
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let s = Signer::from_seed("p.example/log", &seed).unwrap();
            let c = Signer::from_seed("p.example/w", &seed).unwrap().cosigner(time).unwrap();
            let msg = sign(&text, &[&s, &c]).unwrap();
            let n = open(&msg, &[s.verifier_key(), c.verifier_key()]).unwrap();
            prop_assert_eq!(&n.text, &text);
            prop_assert_eq!(n.verified.len(), 2);
            prop_assert_eq!(n.verified[1].cosignature_time(), Some(time));
        }

        #[test]
        fn any_bit_flip_of_a_signed_note_is_refused(
            seed in any::<[u8; 32]>(),
            bit in any::<proptest::sample::Index>(),
        ) {
            let s = Signer::from_seed("p.example/log", &seed).unwrap();
            let c = Signer::from_seed("p.example/w", &seed).unwrap().cosigner(7).unwrap();
            let text = "p.example/log\n9\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
            let msg = sign(text, &[&s, &c]).unwrap();
            let bit = bit.index(msg.len() * 8);
            let flipped = flip_bit(&msg, bit);
            // A flip in the text always fails. A flip in a signature line
            // either fails or turns that line into one by an unknown key
            // (another name or ID), which only drops that signer.
            match open(&flipped, &[s.verifier_key(), c.verifier_key()]) {
                Err(_) => {}
                Ok(n) => {
                    prop_assert!(bit / 8 >= text.len());
                    prop_assert_eq!(n.text, text);
                    prop_assert_eq!(n.verified.len(), 1);
                    prop_assert_eq!(n.unverified.len(), 1);
                }
            }
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Note::parse(&msg);
            let _ = open(&msg, &[key(C2SP_KEY)]);
        }

        #[test]
        fn parsing_arbitrary_key_strings_never_panics(s in "[ -~]{0,120}") {
            let _ = s.parse::<VerifierKey>();
            let _ = s.parse::<Signer>();
        }
    }
}
