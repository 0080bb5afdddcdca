//! Fuzzes the check of an npm attestations answer
//! (`npm::attestations::check_answer`): no input may panic, and nothing
//! made up verifies under the production root and the registry's keys.
#![no_main]

use std::sync::OnceLock;

use bulwark::npm::attestations::check_answer;
use bulwark::npm::name::PackageName;
use bulwark::sigstore::npm::NpmKeys;
use bulwark::sigstore::{IdentityPolicy, TrustRoot};
use libfuzzer_sys::fuzz_target;

fn trust() -> &'static (NpmKeys, TrustRoot) {
    static T: OnceLock<(NpmKeys, TrustRoot)> = OnceLock::new();
    T.get_or_init(|| {
        (
            NpmKeys::embedded().expect("embedded keys"),
            TrustRoot::production().expect("embedded root"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (keys, root) = trust();
    let name = PackageName::parse("@s/x").unwrap();
    let r = check_answer(
        data,
        &name,
        "1.0.0",
        [0x5a; 64],
        keys,
        root,
        &IdentityPolicy::Report,
    );
    assert!(r.is_err(), "a made-up answer verified");
});
