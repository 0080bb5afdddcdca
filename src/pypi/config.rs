//! The `pypi` protocol's part of the configuration. An `[[upstream]]` with
//! `protocol = "pypi"` has `url` = the upstream's simple index (the URL
//! `pip --index-url` would take), owns project names (`namespaces`, in any
//! spelling; compared in their PEP 503 normal form; `default = true` takes
//! every project nobody claims), and says how files are checked:
//!
//! ```toml
//! attestations = "off"
//! ```
//!
//! - `attestations = "required"` (the default) would serve a file only with
//!   a verified PEP 740 provenance. This build does not check provenance
//!   at serving time yet, so it refuses the setting rather than ignore it.
//! - `attestations = "if-present"` likewise (it needs the never-downgrade
//!   ledger).
//! - `attestations = "off"`: a file is served when its bytes hash to the
//!   `sha256` the upstream's index page gives for it (and only then); the
//!   page itself is unsigned. This is the explicit opt-out of bulwark's
//!   log guarantee, for private indexes that publish no provenance.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Matching, ProtocolConfig, ProtocolKeys, UpstreamSettings};

use super::name::ProjectName;

/// The `protocol = "..."` name.
pub const PROTOCOL: &str = "pypi";

/// The `pypi` protocol's configuration.
pub struct PypiProtocol;

/// The one instance.
pub static CONFIG: PypiProtocol = PypiProtocol;

/// How a file's authenticity is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attestations {
    /// The index page's `sha256` only.
    Off,
}

/// A `pypi` upstream's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiSettings {
    pub attestations: Attestations,
}

impl UpstreamSettings for PypiSettings {
    fn pinned(&self) -> String {
        match self.attestations {
            Attestations::Off => {
                "attestations off: files checked against the index's sha256 only".into()
            }
        }
    }

    fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
        Err("a PyPI index is not a signed log: a witness policy cannot apply to it".into())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPypi {
    attestations: Option<String>,
}

impl ProtocolConfig for PypiProtocol {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn matching(&self) -> Matching {
        Matching::Label
    }

    fn namespace(&self, written: &str) -> Result<String, String> {
        ProjectName::parse(written)
            .map(|n| n.as_str().to_string())
            .map_err(|e| format!("expected a project name like \"sampleproject\": {e}"))
    }

    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
        let raw: RawPypi = keys.parse()?;
        let attestations = match raw.attestations.as_deref().unwrap_or("required") {
            "off" => Attestations::Off,
            mode @ ("required" | "if-present") => {
                return Err(keys.err(
                    "attestations",
                    format!(
                        "{mode:?}{} is not enforced by this build yet (PEP 740 provenance is not \
                         checked when a file is served); set attestations = \"off\" to serve files \
                         checked against the index's sha256 only",
                        if raw.attestations.is_none() {
                            " (the default)"
                        } else {
                            ""
                        }
                    ),
                ))
            }
            other => {
                return Err(keys.err(
                    "attestations",
                    format!("expected \"required\", \"if-present\" or \"off\", saw {other:?}"),
                ))
            }
        };
        Ok(Arc::new(PypiSettings { attestations }))
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
    fn attestations_off_is_taken_and_what_cannot_be_enforced_is_refused() {
        let c = parse("attestations = \"off\"").unwrap();
        let s = c.upstreams[0].settings::<PypiSettings>().unwrap();
        assert_eq!(s.attestations, Attestations::Off);
        assert_eq!(c.upstreams[0].namespaces, ["sample-project"]);
        for (extra, want) in [
            ("", "(the default) is not enforced"),
            ("attestations = \"required\"", "not enforced"),
            ("attestations = \"if-present\"", "not enforced"),
            ("attestations = \"sometimes\"", "expected"),
            ("attestations = \"off\"\nsumdb = 1", "sumdb"),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
    }
}
