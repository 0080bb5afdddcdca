//! The C2SP inclusion proof (c2sp.org/tlog-proof@v1) a bundle carries
//! for each Go module version (`gomod/<upstream>/tlog-proof/<m>@<v>`,
//! written by `bulwark export`): checked on import before anything of
//! that module is fetched from the bundle, so a proof that does not prove
//! what the rest of the bundle says refuses the module, with the check
//! [`CHECK`] named, and nothing of it is stored.
//!
//! The proof's checkpoint must be the bundle's signed tree byte for byte
//! (`sumdb/latest`, which import verifies under this side's pinned key
//! and proves consistent with its trust state before any module); its
//! `extra` must be the module's checksum-database record; that record
//! must be included at the proof's index in that tree; and the bundle's
//! lookup answer for the module, if it has one, must name the same
//! record at the same index (the lookup and the tiles are then proven
//! again by the import's pipeline).

use crate::gomod::module::ModuleVersion;
use crate::gomod::sumdb::{note_text, parse_tree, Lookup, Record};
use crate::tlog::merkle::leaf_hash;
use crate::tlog::proof::TlogProof;

/// The check a refusal names.
pub const CHECK: &str = "tlog-proof";

/// Checks the tlog-proof `proof` of module version `m` against the
/// bundle's signed tree `latest` and its lookup answer `lookup` for `m`
/// (if the bundle has one). The error says what was expected and seen.
pub fn check(
    m: &ModuleVersion,
    proof: &[u8],
    latest: &[u8],
    lookup: Option<&[u8]>,
) -> Result<(), String> {
    let p = TlogProof::parse(proof).map_err(|e| format!("unreadable: {e}"))?;
    if p.checkpoint_note != latest {
        return Err(
            "its checkpoint is not the bundle's signed tree (sumdb/latest), byte for byte"
                .to_string(),
        );
    }
    let note = std::str::from_utf8(latest).map_err(|_| "the signed tree is not UTF-8")?;
    let cp = note_text(note)
        .and_then(parse_tree)
        .map_err(|e| format!("the signed tree: {e}"))?;
    let extra = p
        .extra
        .as_deref()
        .ok_or("no record (the extra line) to prove")?;
    let text = std::str::from_utf8(extra).map_err(|_| "its record is not UTF-8")?;
    let record = Record::parse(text).map_err(|e| format!("its record: {e}"))?;
    if record.module() != *m {
        return Err(format!(
            "expected a record of {m}, seen one of {}",
            record.module()
        ));
    }
    p.verify_inclusion_in(&leaf_hash(extra), &cp).map_err(|e| {
        format!(
            "the record of {m} is not proven included at index {} in the tree of size {}: {e}",
            p.index, cp.size
        )
    })?;
    if let Some(body) = lookup {
        let l = Lookup::parse(body).map_err(|e| format!("the bundle's lookup of {m}: {e}"))?;
        if l.id != p.index || l.record.text() != text {
            return Err(format!(
                "expected the bundle's lookup of {m} to name record {} as proven, seen record {}{}",
                p.index,
                l.id,
                if l.record.text() == text {
                    ""
                } else {
                    " with other hashes"
                }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{inclusion_proof_from_leaves, tree_hash_from_leaves};
    use crate::tlog::note::Signer;

    const H1A: &str = "h1:B5p0g56HnEiq+lItgmHMj0JbUNPdq9n8mnHaCbXGwpY=";
    const H1B: &str = "h1:hMpuUz7ru5p+vHvyJ4PiVzm61SjdnrxaLfKJac6I+tM=";

    fn record(path: &str, version: &str) -> String {
        format!("{path} {version} {H1A}\n{path} {version}/go.mod {H1B}\n")
    }

    /// A tree of three records, its signed note, and the proof of record 1.
    struct World {
        records: Vec<String>,
        latest: Vec<u8>,
        proof: TlogProof,
    }

    fn world() -> World {
        let records: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|n| record(&format!("example.com/{n}"), "v1.0.0"))
            .collect();
        let leaves: Vec<_> = records.iter().map(|r| leaf_hash(r.as_bytes())).collect();
        let root = tree_hash_from_leaves(&leaves);
        let text = format!("go.sum database tree\n3\n{}\n", root.to_base64());
        let signer = Signer::generate("sum.example").expect("signer");
        let latest = crate::tlog::note::sign(&text, &[&signer]).expect("sign");
        let proof = TlogProof {
            extra: Some(records[1].clone().into_bytes()),
            index: 1,
            hashes: inclusion_proof_from_leaves(1, &leaves).expect("proof"),
            checkpoint_note: latest.clone(),
        };
        World {
            records,
            latest,
            proof,
        }
    }

    fn b() -> ModuleVersion {
        ModuleVersion::new("example.com/b", "v1.0.0").expect("module")
    }

    fn lookup(id: u64, record: &str, latest: &[u8]) -> Vec<u8> {
        let mut l = format!("{id}\n{record}\n").into_bytes();
        l.extend_from_slice(latest);
        l
    }

    #[test]
    fn a_proof_of_the_record_in_the_signed_tree_passes() {
        let w = world();
        let l = lookup(1, &w.records[1], &w.latest);
        check(&b(), &w.proof.to_bytes(), &w.latest, Some(&l)).expect("valid");
        check(&b(), &w.proof.to_bytes(), &w.latest, None).expect("valid without a lookup");
    }

    #[test]
    fn every_disagreement_is_refused_saying_what() {
        let w = world();
        let good = w.proof.to_bytes();
        let l = lookup(1, &w.records[1], &w.latest);
        let refused = |proof: &[u8], latest: &[u8], lookup: Option<&[u8]>, m: &ModuleVersion| {
            check(m, proof, latest, lookup).expect_err("refused")
        };
        // Another module's proof.
        let other = ModuleVersion::new("example.com/a", "v1.0.0").unwrap();
        assert!(refused(&good, &w.latest, None, &other).contains("expected a record of"));
        // Another index.
        let mut p = w.proof.clone();
        p.index = 2;
        assert!(refused(&p.to_bytes(), &w.latest, None, &b()).contains("not proven included"));
        // A changed proof hash.
        let mut p = w.proof.clone();
        p.hashes[0] = leaf_hash(b"x");
        assert!(refused(&p.to_bytes(), &w.latest, None, &b()).contains("not proven included"));
        // Other hashes in the record.
        let mut p = w.proof.clone();
        p.extra = Some(w.records[1].replace(H1A, H1B).into_bytes());
        assert!(refused(&p.to_bytes(), &w.latest, None, &b()).contains("not proven included"));
        // No record.
        let mut p = w.proof.clone();
        p.extra = None;
        assert!(refused(&p.to_bytes(), &w.latest, None, &b()).contains("no record"));
        // Another checkpoint than the bundle's tree.
        let mut latest = w.latest.clone();
        latest.push(b'\n');
        assert!(refused(&good, &latest, None, &b()).contains("signed tree"));
        // A lookup naming another record or index.
        let l2 = lookup(2, &w.records[1], &w.latest);
        assert!(refused(&good, &w.latest, Some(&l2), &b()).contains("seen record 2"));
        assert!(check(&b(), &good, &w.latest, Some(&l)).is_ok());
        // Garbage.
        assert!(
            refused(b"c2sp.org/tlog-proof@v1\nindex x\n", &w.latest, None, &b())
                .contains("unreadable")
        );
    }
}
