//! Fuzzes the signed-note parser and verifier (`tlog::note`) with arbitrary
//! bytes, under a plain Ed25519 key, an ECDSA key and a cosignature key, and
//! the verifier-key and signer-key parsers with the same bytes as text.
#![no_main]

use bulwark::tlog::note::{self, Note, Signer, VerifierKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys: Vec<VerifierKey> = [
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=",
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    ]
    .iter()
    .map(|k| k.parse().unwrap())
    .collect();
    if let Ok(n) = Note::parse(data) {
        // What parses must print back to the same bytes.
        assert_eq!(n.to_bytes(), data);
    }
    let _ = note::open(data, &keys);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(k) = s.parse::<VerifierKey>() {
            let _ = k.to_string().parse::<VerifierKey>().unwrap();
        }
        let _ = s.parse::<Signer>();
    }
});
