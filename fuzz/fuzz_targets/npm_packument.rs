//! Fuzzes the packument parser (`npm::packument`) and the request path
//! parser's building block (`npm::name`). No input may panic; every
//! packument accepted is written back full and abbreviated, and what
//! bulwark writes parses back to the same versions with the same
//! integrity and tags.
#![no_main]

use bulwark::npm::name::PackageName;
use bulwark::npm::packument::{Packument, Urls};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = PackageName::parse(s) {
            assert_eq!(PackageName::parse(n.as_str()).as_ref(), Ok(&n));
        }
    }
    for name in ["x", "@s/x"] {
        let name = PackageName::parse(name).unwrap();
        let Ok(p) = Packument::parse(data, &name) else {
            continue;
        };
        let url = |n: &PackageName, v: &str| format!("http://b/npm/{n}/-/{}-{v}.tgz", n.bare());
        let att = |n: &PackageName, v: &str| format!("http://b/npm/-/npm/v1/attestations/{n}@{v}");
        let urls = Urls {
            tarball: &url,
            attestations: Some(&att),
        };
        for abbreviated in [false, true] {
            let out = p.render_with(abbreviated, &urls);
            let back = Packument::parse(&out, &name).expect("bulwark's own packument parses");
            assert_eq!(
                back.versions.keys().collect::<Vec<_>>(),
                p.versions.keys().collect::<Vec<_>>()
            );
            for (v, version) in &p.versions {
                assert_eq!(back.versions[v].dist.sha512, version.dist.sha512);
                assert_eq!(back.versions[v].dist.signatures, version.dist.signatures);
                assert_eq!(back.versions[v].dist.attestations, version.dist.attestations);
            }
            assert_eq!(back.dist_tags, p.dist_tags);
        }
    }
});
