//! Fuzzes the check of a bundle's Go tlog-proof member on import
//! (`airgap::goproof::check`): the proof, the signed tree and the lookup
//! answer are all bundle bytes. No input may panic; a proof that passes
//! names the module asked about.
#![no_main]

use bulwark::airgap::goproof::check;
use bulwark::gomod::module::ModuleVersion;
use bulwark::tlog::proof::TlogProof;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Three parts, split at the first two NUL bytes: proof, tree, lookup.
    let mut parts = data.splitn(3, |&b| b == 0);
    let proof = parts.next().unwrap_or_default();
    let latest = parts.next().unwrap_or_default();
    let lookup = parts.next();
    let Ok(m) = ModuleVersion::new("example.com/a", "v1.0.0") else {
        return;
    };
    if check(&m, proof, latest, lookup).is_ok() {
        let p = TlogProof::parse(proof).expect("a proof that passed parses");
        let extra = p.extra.expect("a proof that passed has its record");
        assert!(extra.starts_with(b"example.com/a v1.0.0 "));
    }
});
