//! The `pypi` protocol's part of the configuration. An `[[upstream]]` with
//! `protocol = "pypi"` has `url` = the upstream's simple index (the URL
//! `pip --index-url` would take), owns project names (`namespaces`, in any
//! spelling, `*` matching any run of characters (`acme-*`); compared in
//! their PEP 503 normal form; an exact name before the most specific
//! pattern; `default = true` takes every project nobody claims), and says
//! how files are checked:
//!
//! ```toml
//! attestations = "required"          # or "if-present", "off"
//! publishers = { "sampleproject" = "GitHub:pypa/sampleproject", "acme-*" = "GitLab:acme/tools" }
//! project_attestations = { "legacy-*" = "off" }
//! sigstore_root = "trusted_root.json"  # default: the embedded production root
//! rekor_urls = { "rekor.sigstore.dev" = "https://rekor-mirror.internal" }
//! file_origins = ["https://files.internal"]
//! rekor_consistency = "when-reachable"  # or "required"
//! min_release_age = "7d"
//! ```
//!
//! - `attestations = "required"` (the default): a file is served only when
//!   its bytes hash to the index's `sha256` and its PEP 740 provenance
//!   verifies (every attestation: Sigstore chain, signature, Rekor
//!   inclusion and checkpoint, recorded in the trust state; a subject
//!   naming the file with its sha256; the Trusted Publisher).
//! - `attestations = "if-present"`: files with provenance as above; files
//!   without it are served on the index hash alone, marked with the
//!   `Bulwark-Attestation: none` header and counted — unless the project
//!   was seen attested before (never downgrade, `verify::ledger`).
//! - `attestations = "off"`: the index page's `sha256` only; the page
//!   itself is unsigned. The explicit opt-out of bulwark's log guarantee,
//!   for private indexes that publish no provenance.
//! - `publishers`: project pattern → the Trusted Publisher its files must
//!   come from (`KIND:REPOSITORY[:WORKFLOW]`, KIND `GitHub` or `GitLab`).
//! - `project_attestations`: project pattern → the `attestations` mode for
//!   those projects. Patterns are project names in any spelling, `*`
//!   matching any run of characters; the most specific wins
//!   ([`crate::pattern`]).
//! - `sigstore_root`: a Sigstore `trusted_root.json` (Fulcio CAs, Rekor
//!   keys) instead of the embedded production root; `rekor_urls`: a Rekor
//!   log's host → the base URL to fetch its consistency proofs from (the
//!   log's key stays the root's).
//! - `rekor_consistency`: what to do when a Rekor log cannot be reached
//!   (DNS, connect, timeout) for the consistency proof a new checkpoint
//!   needs. `"when-reachable"` (the default): the attestation is accepted
//!   on its inclusion proof and signed checkpoint, the checkpoint is not
//!   recorded (so a split view it shows goes unseen), and the deferral is
//!   counted (`bulwark_verifications_total{check="rekor consistency
//!   deferred"}`) and logged; an air-gapped mirror cannot reach Rekor at
//!   all. `"required"`: refused. A log that answers, but not with a proof
//!   that verifies, is refused (and quarantined) either way.
//! - `min_release_age`: a file bulwark first saw less than this long ago
//!   is left out of project pages and refused (check `min release age`);
//!   the age counts from bulwark's own first sighting, never from the
//!   index's `upload-time`. A file whose sha256 is not the one first seen
//!   is refused (`first seen digest`). See `pipeline::release_age`.
//! - `file_origins`: other origins (`scheme://host[:port]`) the index's
//!   pages may send files and provenance to, besides the index's own (an
//!   index that serves its files from a separate host). A URL on any other
//!   origin is refused: an unsigned page does not choose where bulwark
//!   connects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Matching, ProtocolConfig, ProtocolKeys, UpstreamSettings};
use crate::pipeline::attest::{AttestationPolicy, RawPolicy};
pub use crate::pipeline::attest::{Attestations, ExpectedPublisher};
use crate::pipeline::release_age::parse_min_release_age;

use super::name::{normalize_pattern, ProjectName};

/// The `protocol = "..."` name.
pub const PROTOCOL: &str = "pypi";

/// The `pypi` protocol's configuration.
pub struct PypiProtocol;

/// The one instance.
pub static CONFIG: PypiProtocol = PypiProtocol;

/// A `pypi` upstream's own settings.
#[derive(Debug)]
pub struct PypiSettings {
    /// `attestations`, `project_attestations`, `publishers`,
    /// `sigstore_root`, `rekor_urls`, `rekor_consistency`.
    pub policy: AttestationPolicy,
    /// Origins besides the index's that files may be fetched from.
    pub file_origins: Vec<url::Url>,
    /// `min_release_age`, if set.
    pub min_release_age: Option<std::time::Duration>,
}

impl PypiSettings {
    /// The mode for `project`.
    pub fn mode(&self, project: &ProjectName) -> Attestations {
        self.policy.mode(project.as_str())
    }

    /// The publisher `project`'s files must come from, if one is set.
    pub fn publisher(&self, project: &ProjectName) -> Option<&ExpectedPublisher> {
        self.policy.publisher(project.as_str())
    }
}

impl UpstreamSettings for PypiSettings {
    fn pinned(&self) -> String {
        let mut s = self.policy.pinned(
            "PEP 740 provenance",
            "files checked against the index's sha256 only",
        );
        if let Some(d) = self.min_release_age {
            s.push_str(&format!(
                "; min_release_age {}",
                humantime::format_duration(d)
            ));
        }
        for o in &self.file_origins {
            s.push_str(&format!(
                "; files also from {}",
                o.origin().ascii_serialization()
            ));
        }
        s
    }

    fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
        Err("a PyPI index is not a signed log: a witness policy cannot apply to it".into())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPypi {
    attestations: Option<String>,
    #[serde(default)]
    project_attestations: BTreeMap<String, String>,
    #[serde(default)]
    publishers: BTreeMap<String, String>,
    sigstore_root: Option<String>,
    #[serde(default)]
    rekor_urls: BTreeMap<String, String>,
    #[serde(default)]
    file_origins: Vec<String>,
    rekor_consistency: Option<String>,
    min_release_age: Option<String>,
}

impl ProtocolConfig for PypiProtocol {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn matching(&self) -> Matching {
        Matching::Label
    }

    fn namespace(&self, written: &str) -> Result<String, String> {
        if written.contains('*') {
            return normalize_pattern(written)
                .map_err(|e| format!("expected a project name pattern like \"acme-*\": {e}"));
        }
        ProjectName::parse(written)
            .map(|n| n.as_str().to_string())
            .map_err(|e| format!("expected a project name like \"sampleproject\": {e}"))
    }

    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
        let raw: RawPypi = keys.parse()?;
        let policy = AttestationPolicy::from_raw(
            keys,
            RawPolicy {
                attestations: raw.attestations,
                per_name: ("project_attestations", raw.project_attestations),
                publishers: raw.publishers,
                sigstore_root: raw.sigstore_root,
                rekor_urls: raw.rekor_urls,
                rekor_consistency: raw.rekor_consistency,
            },
            normalize_pattern,
        )?;
        let mut file_origins = Vec::new();
        for (i, written) in raw.file_origins.iter().enumerate() {
            let key = format!("file_origins[{i}]");
            let checked = keys.url(&key, written)?;
            let url = url::Url::parse(&checked).map_err(|e| keys.err(&key, e.to_string()))?;
            if !matches!(url.path(), "" | "/") || url.query().is_some() {
                return Err(keys.err(
                    &key,
                    format!("expected an origin like \"https://files.example\", saw {written:?}"),
                ));
            }
            file_origins.push(url);
        }
        let min_release_age = raw
            .min_release_age
            .as_deref()
            .map(parse_min_release_age)
            .transpose()
            .map_err(|e| keys.err("min_release_age", e))?;
        Ok(Arc::new(PypiSettings {
            policy,
            file_origins,
            min_release_age,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[upstream]]\nname = \"py\"\nprotocol = \"pypi\"\nurl = \"http://127.0.0.1:1/simple\"\nnamespaces = [\"Sample_Project\"]\n{extra}\n"
        );
        Config::parse_with(&text, "t.toml", Path::new("."), &[&CONFIG])
    }

    #[test]
    fn every_attestations_mode_and_the_policy_keys_are_read() {
        let c = parse("attestations = \"off\"").unwrap();
        let s = c.upstreams[0].settings::<PypiSettings>().unwrap();
        assert_eq!(s.policy.attestations, Attestations::Off);
        assert_eq!(c.upstreams[0].namespaces, ["sample-project"]);
        let c = parse("").unwrap();
        let s = c.upstreams[0].settings::<PypiSettings>().unwrap();
        assert_eq!(s.policy.attestations, Attestations::Required, "the default");
        let c = parse(
            "attestations = \"if-present\"\nproject_attestations = { \"Legacy_*\" = \"off\", \"legacy-core\" = \"required\" }\npublishers = { \"Sample.Project\" = \"GitHub:pypa/sampleproject:release.yml\" }",
        )
        .unwrap();
        let s = c.upstreams[0].settings::<PypiSettings>().unwrap();
        let name = |n: &str| ProjectName::parse(n).unwrap();
        assert_eq!(s.mode(&name("legacy.tool")), Attestations::Off);
        assert_eq!(s.mode(&name("legacy-core")), Attestations::Required);
        assert_eq!(s.mode(&name("other")), Attestations::IfPresent);
        assert_eq!(
            s.publisher(&name("sample_project")).unwrap().written,
            "GitHub:pypa/sampleproject:release.yml"
        );
        assert!(s.publisher(&name("other")).is_none());
        for (extra, want) in [
            ("attestations = \"sometimes\"", "expected"),
            ("attestations = \"off\"\nsumdb = 1", "sumdb"),
            ("publishers = { \"x\" = \"Gitea:a/b\" }", "publishers"),
            (
                "project_attestations = { \"x\" = \"maybe\" }",
                "project_attestations",
            ),
            (
                "project_attestations = { \"x y\" = \"off\" }",
                "project_attestations",
            ),
            (
                "sigstore_root = \"/nonexistent/root.json\"",
                "sigstore_root",
            ),
            (
                "rekor_urls = { \"rekor.example\" = \"http://127.0.0.1:1\" }",
                "rekor_urls",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
    }
}
