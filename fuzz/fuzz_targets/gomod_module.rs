//! Fuzzes the GOPROXY request and answer parsers and the module path and
//! version rules (`gomod::module`): request paths (raw and on the wire),
//! case escaping, canonical versions, `.info` and `list` answers, `h1:`
//! strings. No input may panic, and everything accepted round-trips.
#![no_main]

use bulwark::gomod::dirhash::H1;
use bulwark::gomod::module::{
    check_canonical_version, check_path, decode_request_path, escape_path, escape_version,
    parse_list, unescape_path, unescape_version, Info, ProxyRequest,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = Info::parse(data, None) {
        assert_eq!(Info::parse(i.to_json().as_bytes(), None).as_ref(), Ok(&i));
    }
    if let Ok(versions) = parse_list(data) {
        let again: String = versions.iter().map(|v| format!("{v}\n")).collect();
        assert_eq!(parse_list(again.as_bytes()).as_ref(), Ok(&versions));
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [ProxyRequest::parse(s), ProxyRequest::parse_wire(s)] {
        if let Ok(r) = parsed {
            // What is sent upstream parses back to the same request.
            assert_eq!(ProxyRequest::parse_wire(&r.to_path()).as_ref(), Ok(&r));
        }
    }
    if let Ok(d) = decode_request_path(s) {
        assert_eq!(d.matches('/').count(), s.matches('/').count());
    }
    if let Ok(p) = unescape_path(s) {
        assert!(check_path(&p).is_ok());
        assert_eq!(escape_path(&p).as_deref(), Ok(s));
    }
    if check_path(s).is_ok() {
        assert_eq!(unescape_path(&escape_path(s).unwrap()).as_deref(), Ok(s));
    }
    if let Ok(v) = unescape_version(s) {
        if let Ok(e) = escape_version(&v) {
            assert_eq!(e, s);
        }
    }
    if check_canonical_version(s).is_ok() {
        assert_eq!(unescape_version(&escape_version(s).unwrap()).as_deref(), Ok(s));
    }
    if let Ok(h) = H1::parse(s) {
        assert_eq!(h.to_string(), s);
    }
});
