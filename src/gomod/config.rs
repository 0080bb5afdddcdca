//! The `gomod` protocol's part of the configuration: an `[[upstream]]` with
//! `protocol = "gomod"` owns module path patterns (`namespaces = ["*"]`,
//! `["github.com/acme/*"]`) and names the checksum database that vouches for
//! its modules:
//!
//! ```toml
//! sumdb = { name = "sum.golang.org", url = "https://sum.golang.org", key = "sum.golang.org+033de0ae+..." }
//! ```
//!
//! `src/config.rs` reads the generic keys and hands the others here
//! ([`ProtocolConfig::settings`]); the Go front gets the result back with
//! `upstream.settings::<GoSettings>()`. A `witness_policy` applies to the
//! checksum database's signed tree heads.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{
    truncate, ConfigError, Matching, ProtocolConfig, ProtocolKeys, UpstreamSettings,
};
use crate::tlog::note::{Algorithm, KeyError, VerifierKey};

/// The `protocol = "..."` name.
pub const PROTOCOL: &str = "gomod";

/// The `gomod` protocol's configuration (registered in `src/ecosystems.rs`
/// through `gomod::ECOSYSTEM`).
pub struct GoProtocol;

/// The one instance.
pub static CONFIG: GoProtocol = GoProtocol;

/// The checksum database that vouches for a Go upstream's modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbConfig {
    /// Database name, e.g. `sum.golang.org`.
    pub name: String,
    /// Base URL (no trailing slash), e.g. `https://sum.golang.org`.
    pub url: String,
    /// Signed-note verifier key `name+hex8+base64`, checked for syntax,
    /// algorithm (Ed25519), name and key id.
    pub key: String,
}

/// A `gomod` upstream's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSettings {
    /// The checksum database.
    pub sumdb: SumdbConfig,
}

impl UpstreamSettings for GoSettings {
    fn pinned(&self) -> String {
        format!("sumdb {} {}", self.sumdb.url, self.sumdb.key)
    }

    fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
        Ok(("sumdb.key", &self.sumdb.key))
    }
}

/// The keys as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGo {
    sumdb: Option<RawSumdb>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSumdb {
    name: String,
    url: Option<String>,
    key: String,
}

impl ProtocolConfig for GoProtocol {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn matching(&self) -> Matching {
        Matching::PathPrefix
    }

    fn namespace(&self, written: &str) -> Result<String, String> {
        normalize_go_pattern(written)
    }

    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
        let raw: RawGo = keys.parse()?;
        let s = raw.sumdb.ok_or_else(|| {
            keys.err(
                "sumdb",
                "a gomod upstream needs its checksum database: sumdb = { name, url, key }",
            )
        })?;
        if !valid_sumdb_name(&s.name) {
            return Err(keys.err(
                "sumdb.name",
                format!(
                    "expected a checksum database name like \"sum.golang.org\", saw {:?}",
                    s.name
                ),
            ));
        }
        check_note_verifier_key(&s.key, &s.name).map_err(|m| keys.err("sumdb.key", m))?;
        let url = match s.url {
            Some(u) => keys.url("sumdb.url", &u)?,
            None => format!("https://{}", s.name),
        };
        Ok(Arc::new(GoSettings {
            sumdb: SumdbConfig {
                name: s.name,
                url,
                key: s.key,
            },
        }))
    }
}

fn valid_sumdb_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && !s.contains('+') && s.bytes().all(|c| c.is_ascii_graphic())
}

/// Normalizes a Go module path pattern: `*` (everything), or a module path
/// prefix written `github.com/acme/*` or `github.com/acme` (both mean the path
/// and everything below it, element-wise). Returns `*` or the prefix.
pub fn normalize_go_pattern(p: &str) -> Result<String, String> {
    if p == "*" {
        return Ok("*".to_string());
    }
    let prefix = p.strip_suffix("/*").unwrap_or(p);
    let bad = |why: &str| {
        format!(
            "expected \"*\" or a module path prefix like \"github.com/acme/*\", saw {p:?} ({why})"
        )
    };
    if prefix.is_empty() || prefix.len() > 512 {
        return Err(bad("empty or too long"));
    }
    for elem in prefix.split('/') {
        if elem.is_empty() {
            return Err(bad("empty path element"));
        }
        if elem.contains('*') {
            return Err(bad("'*' is allowed only as the whole last element"));
        }
        if elem == "." || elem == ".." {
            return Err(bad("'.' and '..' are not path elements"));
        }
        if !elem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(bad("characters outside A-Z a-z 0-9 - . _ ~"));
        }
    }
    Ok(prefix.to_string())
}

/// Checks a checksum database's signed-note verifier key
/// `name+hex8+base64(alg || key)` (parsed by [`VerifierKey`], the one
/// parser of note keys): the name must be `expected_name`, the algorithm
/// Ed25519, and the key id the one the key hashes to.
pub fn check_note_verifier_key(key: &str, expected_name: &str) -> Result<(), String> {
    let parsed: VerifierKey = key.parse().map_err(|e| match e {
        KeyError::KeyIdMismatch { want, seen } => format!(
            "key id {seen:08x} does not match the key (expected {want:08x}): the key is mistyped"
        ),
        e => format!(
            "expected a signed-note verifier key \"name+hex8+base64\", saw {:?}: {e}",
            truncate(key)
        ),
    })?;
    if parsed.name() != expected_name {
        return Err(format!(
            "the key's name {:?} differs from the database name {expected_name:?}",
            parsed.name()
        ));
    }
    if parsed.algorithm() != Algorithm::Ed25519 {
        return Err(format!(
            "expected an Ed25519 key (algorithm byte 1), saw {:?}",
            parsed.algorithm()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const GO_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, "t.toml", Path::new("."), &[&CONFIG])
    }

    fn go(extra: &str) -> String {
        format!(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n{extra}\n"
        )
    }

    #[test]
    fn accepts_the_real_sum_golang_org_key() {
        check_note_verifier_key(GO_KEY, "sum.golang.org").unwrap();
        let c = parse(&go("")).unwrap();
        let s = c.upstreams[0].settings::<GoSettings>().unwrap();
        assert_eq!(s.sumdb.url, "https://sum.golang.org");
        assert_eq!(s.sumdb.key, GO_KEY);
    }

    #[test]
    fn refuses_a_note_key_whose_id_does_not_match() {
        let bad = GO_KEY.replace("033de0ae", "033de0af");
        let e = check_note_verifier_key(&bad, "sum.golang.org").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = check_note_verifier_key(GO_KEY, "sum.example").unwrap_err();
        assert!(e.contains("differs from the database name"), "{e}");
    }

    #[test]
    fn keys_of_other_protocols_are_refused_naming_the_key() {
        for (extra, key) in [
            ("publish = \"forward\"", "upstream[0].publish"),
            ("operator_key = \"x\"", "upstream[0].operator_key"),
            ("checkpoint_reuse = \"1s\"", "upstream[0].checkpoint_reuse"),
            ("default = true", "upstream[0].default"),
        ] {
            let e = parse(&go(extra)).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn type_error_in_inline_table_names_the_key_path() {
        let text = format!(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n\n[[upstream]]\nname = \"b\"\nprotocol = \"gomod\"\nurl = \"https://y\"\nsumdb = {{ name = \"x\", key = 5 }}\n"
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "upstream[1].sumdb.key", "{e}");
        // And an unknown key inside the sumdb table.
        let text = format!(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\", kee = 1 }}\n"
        );
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("kee"), "{e}");
    }

    #[test]
    fn a_gomod_upstream_needs_a_sumdb_and_a_pattern() {
        let e = parse(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "upstream[0].sumdb", "{e}");
        let e = parse(&go("").replace("namespaces = [\"*\"]\n", "")).unwrap_err();
        assert_eq!(e.key, "upstream[0].namespaces", "{e}");
        let e = parse(&go("").replace("[\"*\"]", "[\"github.com/*/x\"]")).unwrap_err();
        assert_eq!(e.key, "upstream[0].namespaces[0]", "{e}");
    }

    #[test]
    fn go_patterns_normalize() {
        assert_eq!(
            normalize_go_pattern("github.com/acme/*").unwrap(),
            "github.com/acme"
        );
        assert_eq!(
            normalize_go_pattern("github.com/acme").unwrap(),
            "github.com/acme"
        );
        assert_eq!(normalize_go_pattern("*").unwrap(), "*");
        assert!(normalize_go_pattern("github.com/*/x").is_err());
        assert!(normalize_go_pattern("github.com//x").is_err());
        assert!(normalize_go_pattern("*.acme.com").is_err());
    }
}
