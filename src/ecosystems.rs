//! The ecosystems bulwark serves: one line each in [`ECOSYSTEMS`]. Adding
//! one is a folder (`src/<name>/`, see `docs/ecosystem.md`) plus its line
//! here.
//!
//! Also where a configuration is read with every registered protocol
//! ([`Config::load`], [`Config::parse`], [`Config::embedded`]) and its
//! routing table checked, since that needs every ecosystem and the routing
//! table, which sit above `src/config.rs`.

use std::path::Path;

use crate::config::{Config, ConfigError, ProtocolConfig, EMBEDDED_DEFAULT, EMBEDDED_ORIGIN};
use crate::ecosystem::Ecosystem;
use crate::federation::Federation;
use crate::{gomod, npm, pypi, warg};

/// Every ecosystem, one line each. Their fronts are asked, in this order,
/// whether a request is theirs.
pub const ECOSYSTEMS: &[&dyn Ecosystem] = &[
    &warg::ECOSYSTEM,
    &gomod::ECOSYSTEM,
    &pypi::ECOSYSTEM,
    &npm::ECOSYSTEM,
];

/// The configuration side of every ecosystem.
pub fn protocols() -> Vec<&'static dyn ProtocolConfig> {
    ECOSYSTEMS.iter().map(|e| e.config()).collect()
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let config = Config::load_with(path, &protocols())?;
        check_routes(config)
    }

    /// The configuration embedded in the binary; relative paths in it are
    /// taken relative to the current directory.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN, Path::new("."))
    }

    /// Parses and validates `text`; `origin` names it in errors and `base` is
    /// the directory relative file paths are resolved against.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let config = Config::parse_with(text, origin, base, &protocols())?;
        check_routes(config)
    }
}

/// Refuses overlapping namespace claims (the routing table's check), at the
/// key of the second claim.
fn check_routes(config: Config) -> Result<Config, ConfigError> {
    Federation::new(&config.upstreams).map_err(|e| e.config_error(&config.origin))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded().unwrap();
        assert!(c
            .upstreams
            .iter()
            .any(|u| u.protocol.name() == gomod::config::PROTOCOL));
    }

    #[test]
    fn every_ecosystem_has_its_own_protocol_name() {
        let names: HashSet<&str> = ECOSYSTEMS.iter().map(|e| e.protocol()).collect();
        assert_eq!(names.len(), ECOSYSTEMS.len());
    }

    #[test]
    fn overlapping_claims_are_refused_when_a_file_is_read() {
        const WARG_KEY: &str = "ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW";
        let warg = |name: &str, ns: &str| {
            format!(
                "[[upstream]]\nname = \"{name}\"\nprotocol = \"warg\"\nurl = \"https://{name}.example\"\nnamespaces = [\"{ns}\"]\noperator_key = \"{WARG_KEY}\"\n\n"
            )
        };
        let text = warg("internal", "acme") + &warg("x", "Acme");
        let e = Config::parse(&text, "f.toml", Path::new(".")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: upstream[1].namespaces: \"acme\" is already owned by upstream \"internal\""
        );
    }
}
