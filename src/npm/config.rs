//! The `npm` protocol's part of the configuration. An `[[upstream]]` with
//! `protocol = "npm"` has `url` = the registry (what `npm config set
//! registry` would take), owns package names by pattern (`namespaces =
//! ["@acme/*"]` for a scope, `["*"]` for every name nobody else claims;
//! the longest pattern wins), and says how versions are checked:
//!
//! ```toml
//! signatures = "required"              # the default
//! registry_keys = "npm-keys.json"      # default: the embedded keys
//! attestations = "required"            # the default; or "if-present", "off"
//! package_attestations = { "@legacy/*" = "off" }
//! publishers = { "@acme/*" = "GitHub:acme/tools" }
//! min_release_age = "7d"
//! ```
//!
//! - `signatures = "required"`: a version is served only when its
//!   `dist.signatures` verify (ECDSA P-256 over
//!   `<name>@<version>:<integrity>`) under a pinned registry key valid at
//!   the version's publish time; versions that do not are removed from
//!   the packuments bulwark serves, and their tarballs refused.
//!   `signatures = "off"` is the explicit opt-out for private registries
//!   that sign nothing: the tarball's sha512 is still checked against the
//!   packument's `dist.integrity`, but the packument itself is unsigned.
//! - `registry_keys`: a file in the shape Sigstore's TUF repository
//!   distributes the registry's keys in (`keys[].keyId`, `keyUsage`,
//!   `publicKey.rawBytes`, `publicKey.validFor`); the embedded default is
//!   the public registry's published set. Read and checked at load.
//! - `min_release_age = "7d"` (optional): a version is hidden from
//!   packuments and its tarball refused until it is that old by a time
//!   bulwark can trust: its own first sighting (recorded durably the first
//!   time a packument lists it), or the Rekor time of the version's
//!   verified attestations if earlier (checked when its tarball is asked
//!   for; recorded, the version is listed from then on). The packument's
//!   `time` field, which the registry alone asserts, is never used. A
//!   version whose integrity differs from the one first seen is refused
//!   too.
//! - `attestations` (and `package_attestations`, `publishers`,
//!   `sigstore_root`, `rekor_urls`, `rekor_consistency`: see
//!   [`crate::pipeline::attest`]): before a tarball is served, its
//!   version's attestations are fetched from the registry
//!   (`/-/npm/v1/attestations/<name>@<version>`) and every one verified with
//!   the Sigstore core: the publish attestation under a pinned
//!   `npm:attestations` registry key valid at its Rekor time, the SLSA
//!   provenance keyless (Fulcio chain, SCT), each with its Rekor inclusion
//!   proof and signed checkpoint, recorded through the trust state; every
//!   subject is `pkg:npm/<name>@<version>` with the sha512 of
//!   `dist.integrity`; the provenance's source repository and workflow are
//!   the `publishers` entry's, and, never downgrade, the ones the package
//!   was seen with before. `"required"` (the default) refuses a version
//!   without both; `"if-present"` serves it marked and counted (unless the
//!   package was seen attested); `"off"` checks none. Name patterns are
//!   package names with `*` (`@acme/*`, `*`).

use std::sync::Arc;

use serde::Deserialize;

use std::collections::BTreeMap;

use crate::config::{ConfigError, Matching, ProtocolConfig, ProtocolKeys, UpstreamSettings};
use crate::pipeline::attest::{AttestationPolicy, Attestations, RawPolicy};
use crate::pipeline::release_age::parse_min_release_age;
use crate::sigstore::npm::{NpmKeys, MAX_KEYS_FILE, USAGE_ATTESTATIONS};

use super::name::PackageName;

/// The `protocol = "..."` name.
pub const PROTOCOL: &str = "npm";

/// The `npm` protocol's configuration.
pub struct NpmProtocol;

/// The one instance.
pub static CONFIG: NpmProtocol = NpmProtocol;

/// How a version's registry signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Under a pinned registry key valid at the publish time; versions
    /// that fail are removed.
    Required,
    /// Not checked (the tarball's `dist.integrity` still is).
    Off,
}

/// An `npm` upstream's own settings.
#[derive(Debug)]
pub struct NpmSettings {
    pub signatures: Signatures,
    /// The pinned registry keys.
    pub keys: Arc<NpmKeys>,
    /// Where they came from (for `check-config`).
    pub keys_source: String,
    /// Hide versions bulwark first saw less than this long ago.
    pub min_release_age: Option<std::time::Duration>,
    /// The attestation policy.
    pub policy: AttestationPolicy,
}

impl NpmSettings {
    /// The attestation mode for `name`.
    pub fn mode(&self, name: &PackageName) -> Attestations {
        self.policy.mode(name.as_str())
    }
}

impl UpstreamSettings for NpmSettings {
    fn pinned(&self) -> String {
        let age = self.min_release_age.map_or(String::new(), |d| {
            format!("; min_release_age {}", humantime::format_duration(d))
        });
        let what = match self.signatures {
            Signatures::Required => {
                format!("registry signatures required, keys {}", self.keys_source)
            }
            Signatures::Off => {
                "signatures off: tarballs checked against dist.integrity".to_string()
            }
        };
        let attestations = self
            .policy
            .pinned("npm publish attestations and provenance", "none checked");
        format!("{what}; {attestations}{age}")
    }

    fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
        Err(
            "npm registry signatures are per version, not a signed log: a witness policy cannot \
             apply to an npm upstream"
                .into(),
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNpm {
    signatures: Option<String>,
    registry_keys: Option<String>,
    attestations: Option<String>,
    #[serde(default)]
    package_attestations: BTreeMap<String, String>,
    #[serde(default)]
    publishers: BTreeMap<String, String>,
    sigstore_root: Option<String>,
    #[serde(default)]
    rekor_urls: BTreeMap<String, String>,
    rekor_consistency: Option<String>,
    min_release_age: Option<String>,
}

/// A name pattern (`@acme/*`, `left-*`, `*`, a name), checked as a
/// package name with each `*` standing for a letter.
fn normalize_pattern(written: &str) -> Result<String, String> {
    let probe = written.replace('*', "x");
    PackageName::parse(&probe)
        .map(|_| written.to_string())
        .map_err(|e| {
            format!("expected a package name pattern like \"@acme/*\", saw {written:?} ({e})")
        })
}

impl ProtocolConfig for NpmProtocol {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn matching(&self) -> Matching {
        Matching::PathPrefix
    }

    fn namespace(&self, written: &str) -> Result<String, String> {
        if written == "*" {
            return Ok("*".into());
        }
        let expected = "expected \"*\", a scope like \"@acme/*\" or a package name";
        if let Some(scope) = written.strip_suffix("/*") {
            // A scope: checked as the scope of a name.
            return match PackageName::parse(&format!("{scope}/x")) {
                Ok(n) if n.scope() == Some(scope) => Ok(scope.to_string()),
                _ => Err(format!("{expected}, saw {written:?}")),
            };
        }
        PackageName::parse(written)
            .map(|n| n.as_str().to_string())
            .map_err(|e| format!("{expected}, saw {written:?} ({e})"))
    }

    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
        let raw: RawNpm = keys.parse()?;
        let signatures = match raw.signatures.as_deref().unwrap_or("required") {
            "required" => Signatures::Required,
            "off" => Signatures::Off,
            other => {
                return Err(keys.err(
                    "signatures",
                    format!("expected \"required\" or \"off\", saw {other:?}"),
                ))
            }
        };
        let (npm_keys, keys_source) = match raw.registry_keys {
            None => (
                NpmKeys::embedded()
                    .map_err(|e| keys.err("registry_keys", format!("embedded keys: {e}")))?,
                "embedded".to_string(),
            ),
            Some(p) => {
                let path = keys.path(&p);
                let text = read_bounded(&path)
                    .map_err(|e| keys.err("registry_keys", format!("{}: {e}", path.display())))?;
                let k = NpmKeys::from_json(&text)
                    .map_err(|e| keys.err("registry_keys", format!("{}: {e}", path.display())))?;
                (k, path.display().to_string())
            }
        };
        let min_release_age = raw
            .min_release_age
            .map(|t| parse_min_release_age(&t))
            .transpose()
            .map_err(|e| keys.err("min_release_age", e))?;
        let policy = AttestationPolicy::from_raw(
            keys,
            RawPolicy {
                attestations: raw.attestations,
                per_name: ("package_attestations", raw.package_attestations),
                publishers: raw.publishers,
                sigstore_root: raw.sigstore_root,
                rekor_urls: raw.rekor_urls,
                rekor_consistency: raw.rekor_consistency,
            },
            normalize_pattern,
        )?;
        let attested = policy.attestations != Attestations::Off
            || policy.per_name.iter().any(|(_, m)| *m != Attestations::Off);
        if attested
            && !npm_keys
                .keys()
                .iter()
                .any(|k| k.usage == USAGE_ATTESTATIONS)
        {
            return Err(keys.err(
                "registry_keys",
                format!(
                    "attestations are checked, and publish attestations are signed by the \
                     registry: at least one {USAGE_ATTESTATIONS} key is needed"
                ),
            ));
        }
        if signatures == Signatures::Required && npm_keys.keys().is_empty() {
            return Err(keys.err(
                "registry_keys",
                "signatures = \"required\" needs at least one registry key",
            ));
        }
        Ok(Arc::new(NpmSettings {
            signatures,
            keys: Arc::new(npm_keys),
            keys_source,
            min_release_age,
            policy,
        }))
    }
}

fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(MAX_KEYS_FILE as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() > MAX_KEYS_FILE {
        return Err(format!("larger than {MAX_KEYS_FILE} bytes"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(ns: &str, extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[upstream]]\nname = \"reg\"\nprotocol = \"npm\"\nurl = \"http://127.0.0.1:1/\"\nnamespaces = [{ns}]\n{extra}\n"
        );
        Config::parse_with(&text, "t.toml", Path::new("."), &[&CONFIG])
    }

    #[test]
    fn keys_are_taken_and_bad_values_are_refused() {
        let c = parse("\"@acme/*\", \"left-pad\"", "attestations = \"off\"").unwrap();
        assert_eq!(c.upstreams[0].namespaces, ["@acme", "left-pad"]);
        let s = c.upstreams[0].settings::<NpmSettings>().unwrap();
        assert_eq!(s.signatures, Signatures::Required);
        assert!(!s.keys.keys().is_empty());
        let c = parse(
            "\"*\"",
            "attestations = \"off\"\nsignatures = \"off\"\nmin_release_age = \"7d\"",
        )
        .unwrap();
        let s = c.upstreams[0].settings::<NpmSettings>().unwrap();
        assert_eq!(s.signatures, Signatures::Off);
        assert_eq!(
            s.min_release_age,
            Some(std::time::Duration::from_secs(7 * 86400))
        );
        let c = parse(
            "\"*\"",
            "attestations = \"if-present\"\npackage_attestations = { \"@legacy/*\" = \"off\", \"@acme/core\" = \"required\" }\npublishers = { \"@acme/*\" = \"GitHub:acme/tools:release.yml\" }",
        )
        .unwrap();
        let s = c.upstreams[0].settings::<NpmSettings>().unwrap();
        let n = |s: &str| PackageName::parse(s).unwrap();
        assert_eq!(s.mode(&n("@legacy/x")), Attestations::Off);
        assert_eq!(s.mode(&n("@acme/core")), Attestations::Required);
        assert_eq!(s.mode(&n("left-pad")), Attestations::IfPresent);
        assert_eq!(
            s.policy.publisher("@acme/pad").unwrap().written,
            "GitHub:acme/tools:release.yml"
        );
        assert!(s.policy.publisher("left-pad").is_none());
        // The default is "required", under the embedded keys.
        let c = parse("\"*\"", "").unwrap();
        let s = c.upstreams[0].settings::<NpmSettings>().unwrap();
        assert_eq!(s.mode(&n("left-pad")), Attestations::Required);
        let dir = tempfile::tempdir().unwrap();
        let sig_only = dir.path().join("sig-only.json");
        std::fs::write(
            &sig_only,
            crate::sigstore::npm::NPM_KEYS.replace("npm:attestations", "npm:other"),
        )
        .unwrap();
        let no_attestation_key = format!("registry_keys = \"{}\"", sig_only.display());
        for (ns, extra, key, want) in [
            (
                "\"*\"",
                "attestations = \"sometimes\"",
                "attestations",
                "expected",
            ),
            (
                "\"*\"",
                "package_attestations = { \"Bad Name\" = \"off\" }",
                "package_attestations",
                "package name pattern",
            ),
            (
                "\"*\"",
                "publishers = { \"@acme/*\" = \"Gitea:a/b\" }",
                "publishers",
                "GitHub or GitLab",
            ),
            (
                "\"*\"",
                no_attestation_key.as_str(),
                "registry_keys",
                "npm:attestations",
            ),
            (
                "\"*\"",
                "attestations = \"off\"\nsignatures = \"maybe\"",
                "signatures",
                "expected",
            ),
            (
                "\"*\"",
                "attestations = \"off\"\nregistry_keys = \"/nonexistent/keys.json\"",
                "registry_keys",
                "nonexistent",
            ),
            (
                "\"*\"",
                "attestations = \"off\"\nsumdb = 1",
                "sumdb",
                "unknown field",
            ),
            (
                "\"@acme\"",
                "attestations = \"off\"",
                "namespaces",
                "expected",
            ),
            (
                "\"@acme/x/*\"",
                "attestations = \"off\"",
                "namespaces",
                "expected",
            ),
            (
                "\"a/*\"",
                "attestations = \"off\"",
                "namespaces",
                "expected",
            ),
        ] {
            let e = parse(ns, extra).unwrap_err();
            assert!(e.key.contains(key), "{extra}: {e}");
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn a_keys_file_is_read_relative_to_the_config_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), crate::sigstore::npm::NPM_KEYS).unwrap();
        std::fs::write(dir.path().join("bad.json"), "{\"keys\": [1]}").unwrap();
        let text = |f: &str| {
            format!(
                "[[upstream]]\nname = \"reg\"\nprotocol = \"npm\"\nurl = \"http://127.0.0.1:1/\"\nnamespaces = [\"*\"]\nattestations = \"off\"\nregistry_keys = \"{f}\"\n"
            )
        };
        let c = Config::parse_with(&text("keys.json"), "t.toml", dir.path(), &[&CONFIG]).unwrap();
        let s = c.upstreams[0].settings::<NpmSettings>().unwrap();
        assert!(s.keys_source.ends_with("keys.json"));
        let e =
            Config::parse_with(&text("bad.json"), "t.toml", dir.path(), &[&CONFIG]).unwrap_err();
        assert!(e.key.ends_with("registry_keys"), "{e}");
    }
}
