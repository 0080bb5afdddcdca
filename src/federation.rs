//! The routing table: which upstream owns a namespace of a protocol (a Warg
//! namespace, a Go module path).
//!
//! Built from the validated `[[upstream]]` entries, one table per protocol,
//! each matching by its protocol's [`Matching`] rule; building it refuses
//! overlapping claims (`Config::parse` in `src/ecosystems.rs` builds it to
//! check a file, and turns a [`FederationError`] into a [`ConfigError`]
//! naming the key). The protocol fronts call [`Federation::route`] (or
//! [`Federation::owner`]) on every request.
//!
//! [`Matching::Label`] (Warg, PyPI): namespaces match exactly and
//! case-insensitively, or, where the protocol's namespaces may hold `*`
//! (PyPI project patterns such as `acme-*`), as [`crate::pattern`]
//! patterns: an exact claim first, then the most specific pattern; an
//! upstream with `default = true` takes namespaces nobody claims. [`Matching::PathPrefix`] (Go): patterns are `*` (every
//! path) or a path prefix (`github.com/acme/*` or `github.com/acme`) that
//! matches the path itself and every path below it, element by element; the
//! longest matching prefix wins. Each namespace and each pattern has exactly
//! one owner.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::config::{ConfigError, Matching, Protocol, UpstreamConfig};
use crate::pattern::NamePatterns;

/// An overlapping claim found while building the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FederationError {
    /// Two upstreams claim the same namespace or pattern.
    #[error("upstream {claimant:?} (upstream[{index}]) claims {namespace:?}, already owned by upstream {owner:?}")]
    Overlap {
        /// Index of the second claimant in the upstream list.
        index: usize,
        /// The second claimant.
        claimant: String,
        /// The namespace or pattern (as normalized).
        namespace: String,
        /// The first owner.
        owner: String,
    },
    /// Two upstreams of one protocol are both `default = true`.
    #[error("upstream {claimant:?} (upstream[{index}]) is a second default after {owner:?}")]
    TwoDefaults {
        /// Index of the second default.
        index: usize,
        /// The second default.
        claimant: String,
        /// The first default.
        owner: String,
        /// Their protocol.
        protocol: &'static str,
    },
}

impl FederationError {
    /// The error as the configuration file `origin` shows it: at the key
    /// of the second claim.
    pub fn config_error(&self, origin: &str) -> ConfigError {
        let (key, message) = match self {
            FederationError::Overlap {
                index,
                namespace,
                owner,
                ..
            } => (
                format!("upstream[{index}].namespaces"),
                format!("{namespace:?} is already owned by upstream {owner:?}"),
            ),
            FederationError::TwoDefaults {
                index,
                owner,
                protocol,
                ..
            } => (
                format!("upstream[{index}].default"),
                format!("upstream {owner:?} is already the default {protocol} upstream"),
            ),
        };
        ConfigError {
            file: origin.to_string(),
            key,
            message,
        }
    }
}

/// One protocol's table: upstream indices by namespace.
#[derive(Debug, Clone)]
enum Table {
    /// [`Matching::Label`]: lowercased namespace → owner, and the default.
    Label {
        owners: HashMap<String, usize>,
        /// Claims with `*` wildcards.
        globs: NamePatterns<usize>,
        default: Option<usize>,
    },
    /// [`Matching::PathPrefix`]: prefixes, longest first, with their owner;
    /// `*` kept apart.
    PathPrefix {
        prefixes: Vec<(String, usize)>,
        star: Option<usize>,
    },
}

/// The routing table over a list of upstreams.
#[derive(Debug, Clone)]
pub struct Federation {
    upstreams: Vec<UpstreamConfig>,
    /// By protocol name.
    tables: BTreeMap<&'static str, (Protocol, Table)>,
}

impl Federation {
    /// Builds the table, refusing overlapping claims.
    pub fn new(upstreams: &[UpstreamConfig]) -> Result<Federation, FederationError> {
        let mut tables: BTreeMap<&'static str, (Protocol, Table)> = BTreeMap::new();
        for (i, u) in upstreams.iter().enumerate() {
            let overlap = |ns: &str, owner: usize| FederationError::Overlap {
                index: i,
                claimant: u.name.clone(),
                namespace: ns.to_string(),
                owner: upstreams[owner].name.clone(),
            };
            let (_, table) = tables.entry(u.protocol.name()).or_insert_with(|| {
                let table = match u.protocol.matching() {
                    Matching::Label => Table::Label {
                        owners: HashMap::new(),
                        globs: NamePatterns::default(),
                        default: None,
                    },
                    Matching::PathPrefix => Table::PathPrefix {
                        prefixes: Vec::new(),
                        star: None,
                    },
                };
                (u.protocol, table)
            });
            match table {
                Table::Label {
                    owners,
                    globs,
                    default,
                } => {
                    for ns in &u.namespaces {
                        let key = ns.to_ascii_lowercase();
                        if key.contains('*') {
                            if let Some((_, &owner)) = globs.iter().find(|(g, _)| *g == key) {
                                return Err(overlap(ns, owner));
                            }
                            globs.insert(&key, i).map_err(|_| overlap(ns, i))?;
                            continue;
                        }
                        if let Some(&owner) = owners.get(&key) {
                            return Err(overlap(ns, owner));
                        }
                        owners.insert(key, i);
                    }
                    if u.default {
                        if let Some(owner) = *default {
                            return Err(FederationError::TwoDefaults {
                                index: i,
                                claimant: u.name.clone(),
                                owner: upstreams[owner].name.clone(),
                                protocol: u.protocol.name(),
                            });
                        }
                        *default = Some(i);
                    }
                }
                Table::PathPrefix { prefixes, star } => {
                    for p in &u.namespaces {
                        let prefix = p.strip_suffix("/*").unwrap_or(p);
                        if prefix == "*" {
                            if let Some(owner) = *star {
                                return Err(overlap("*", owner));
                            }
                            *star = Some(i);
                        } else if let Some(&(_, owner)) = prefixes.iter().find(|(q, _)| q == prefix)
                        {
                            return Err(overlap(p, owner));
                        } else {
                            prefixes.push((prefix.to_string(), i));
                        }
                    }
                }
            }
        }
        for (_, table) in tables.values_mut() {
            if let Table::PathPrefix { prefixes, .. } = table {
                prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            }
        }
        Ok(Federation {
            upstreams: upstreams.to_vec(),
            tables,
        })
    }

    /// All upstreams, in configuration order.
    pub fn upstreams(&self) -> &[UpstreamConfig] {
        &self.upstreams
    }

    /// The upstream called `name` (e.g. from a `Warg-Registry` header).
    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// The `protocol` upstream that owns `namespace`: for
    /// [`Matching::Label`] the explicit claim, else the default; for
    /// [`Matching::PathPrefix`] the longest matching prefix, else `*`.
    pub fn route(&self, protocol: &str, namespace: &str) -> Option<&UpstreamConfig> {
        let i = match &self.tables.get(protocol)?.1 {
            Table::Label {
                owners,
                globs,
                default,
            } => {
                let key = namespace.to_ascii_lowercase();
                owners
                    .get(&key)
                    .copied()
                    .or_else(|| globs.get(&key).map(|(_, &i)| i))
                    .or(*default)
            }
            Table::PathPrefix { prefixes, star } => prefixes
                .iter()
                .find(|(prefix, _)| path_has_prefix(namespace, prefix))
                .map(|&(_, i)| i)
                .or(*star),
        }?;
        self.upstreams.get(i)
    }

    /// The `protocol` upstream that owns `namespace` by an explicit claim
    /// (no default, no `*`), e.g. for answering with a
    /// `warg-registry-hint`.
    pub fn owner(&self, protocol: &str, namespace: &str) -> Option<&UpstreamConfig> {
        let i = match &self.tables.get(protocol)?.1 {
            Table::Label { owners, globs, .. } => {
                let key = namespace.to_ascii_lowercase();
                owners
                    .get(&key)
                    .copied()
                    .or_else(|| globs.get(&key).map(|(_, &i)| i))
            }
            Table::PathPrefix { prefixes, .. } => prefixes
                .iter()
                .find(|(prefix, _)| path_has_prefix(namespace, prefix))
                .map(|&(_, i)| i),
        }?;
        self.upstreams.get(i)
    }

    /// Table rows: (protocol, namespace or pattern, upstream), sorted.
    pub fn rows(&self) -> Vec<(Protocol, String, &UpstreamConfig)> {
        let mut rows: Vec<(Protocol, String, &UpstreamConfig)> = Vec::new();
        for (protocol, table) in self.tables.values() {
            let p = *protocol;
            match table {
                Table::Label {
                    owners,
                    globs,
                    default,
                } => {
                    for (ns, &i) in owners {
                        rows.push((p, ns.clone(), &self.upstreams[i]));
                    }
                    for (g, &i) in globs.iter() {
                        rows.push((p, g.to_string(), &self.upstreams[i]));
                    }
                    if let Some(i) = *default {
                        rows.push((p, "(default)".into(), &self.upstreams[i]));
                    }
                }
                Table::PathPrefix { prefixes, star } => {
                    for (prefix, i) in prefixes {
                        rows.push((p, format!("{prefix}/*"), &self.upstreams[*i]));
                    }
                    if let Some(i) = *star {
                        rows.push((p, "*".into(), &self.upstreams[i]));
                    }
                }
            }
        }
        rows.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
        rows
    }
}

/// `path` equals `prefix` or continues it with `/`.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl fmt::Display for Federation {
    /// The routing table as `bulwark check-config` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        let w_ns = rows.iter().map(|r| r.1.len()).chain([9]).max().unwrap_or(9);
        let w_up = rows
            .iter()
            .map(|r| r.2.name.len())
            .chain([8])
            .max()
            .unwrap_or(8);
        writeln!(
            f,
            "{:<8} {:<w_ns$} {:<w_up$} URL / PINNED KEY",
            "PROTOCOL", "NAMESPACE", "UPSTREAM"
        )?;
        for (proto, ns, u) in rows {
            writeln!(
                f,
                "{:<8} {:<w_ns$} {:<w_up$} {}",
                proto.to_string(),
                ns,
                u.name,
                u.url
            )?;
            writeln!(f, "{:<8} {:<w_ns$} {:<w_up$}   {}", "", "", "", u.pinned())?;
        }
        for (protocol, table) in self.tables.values() {
            match table {
                Table::PathPrefix { prefixes, star } if star.is_none() && !prefixes.is_empty() => {
                    writeln!(f, "({protocol} names matching no pattern are refused)")?
                }
                Table::Label {
                    owners,
                    globs,
                    default,
                } if default.is_none() && !(owners.is_empty() && globs.is_empty()) => {
                    writeln!(f, "({protocol} namespaces no upstream claims are refused)")?
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ProtocolConfig};
    use crate::gomod::config::{self as gomod, PROTOCOL as GO};
    use crate::warg::config::{self as warg, PROTOCOL as WARG};
    use std::path::Path;

    const PROTOCOLS: &[&dyn ProtocolConfig] = &[&gomod::CONFIG, &warg::CONFIG];

    #[test]
    fn pypi_project_patterns_route_exact_names_first_then_the_most_specific_pattern() {
        use crate::pypi::config as pypi;
        let text = r#"
[[upstream]]
name = "internal"
protocol = "pypi"
url = "http://127.0.0.1:1/simple"
namespaces = ["Acme_*", "acme-public-tool"]
attestations = "off"

[[upstream]]
name = "tools"
protocol = "pypi"
url = "http://127.0.0.1:2/simple"
namespaces = ["acme-tools-*"]
attestations = "off"

[[upstream]]
name = "public"
protocol = "pypi"
url = "http://127.0.0.1:3/simple"
namespaces = []
default = true
"#;
        let c = Config::parse_with(text, "t.toml", Path::new("."), &[&pypi::CONFIG]).unwrap();
        let f = Federation::new(&c.upstreams).unwrap();
        let route = |n: &str| f.route(pypi::PROTOCOL, n).map(|u| u.name.as_str());
        assert_eq!(route("acme-web"), Some("internal"));
        assert_eq!(route("acme-tools-cli"), Some("tools"));
        assert_eq!(route("acme-public-tool"), Some("internal"));
        assert_eq!(route("requests"), Some("public"));
        assert_eq!(
            f.owner(pypi::PROTOCOL, "acme-tools-x")
                .map(|u| u.name.as_str()),
            Some("tools")
        );
        assert!(f.owner(pypi::PROTOCOL, "requests").is_none());
        // The same pattern twice is an overlap.
        let twice = text.replace("\"acme-tools-*\"", "\"ACME.*\"");
        let c = Config::parse_with(&twice, "t.toml", Path::new("."), &[&pypi::CONFIG]).unwrap();
        assert!(matches!(
            Federation::new(&c.upstreams),
            Err(FederationError::Overlap { .. })
        ));
    }

    /// Parses `text` and builds its table, the two checks
    /// `Config::parse` makes.
    fn parse(text: &str, origin: &str) -> Result<Federation, ConfigError> {
        let c = Config::parse_with(text, origin, Path::new("."), PROTOCOLS)?;
        Federation::new(&c.upstreams).map_err(|e| e.config_error(origin))
    }

    const GO_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    // A valid P-256 point (the generator, compressed).
    const WARG_KEY: &str = "ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW";

    fn go(name: &str, patterns: &[&str]) -> String {
        format!(
            "[[upstream]]\nname = \"{name}\"\nprotocol = \"gomod\"\nurl = \"https://{name}.example\"\nnamespaces = {patterns:?}\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n\n"
        )
    }

    fn warg(name: &str, ns: &[&str], default: bool) -> String {
        format!(
            "[[upstream]]\nname = \"{name}\"\nprotocol = \"warg\"\nurl = \"https://{name}.example\"\nnamespaces = {ns:?}\noperator_key = \"{WARG_KEY}\"\ndefault = {default}\n\n"
        )
    }

    fn fed(text: &str) -> Federation {
        parse(text, "t.toml").unwrap()
    }

    #[test]
    fn most_specific_go_pattern_wins() {
        let f = fed(&(go("public", &["*"])
            + &go("acme", &["github.com/acme/*"])
            + &go("tools", &["github.com/acme/tools"])));
        assert_eq!(f.route(GO, "github.com/acme/x").unwrap().name, "acme");
        assert_eq!(f.route(GO, "github.com/acme").unwrap().name, "acme");
        assert_eq!(
            f.route(GO, "github.com/acme/tools/v2").unwrap().name,
            "tools"
        );
        assert_eq!(f.route(GO, "github.com/acmeco/x").unwrap().name, "public");
        assert_eq!(f.route(GO, "golang.org/x/mod").unwrap().name, "public");
    }

    #[test]
    fn go_module_without_owner_is_unrouted() {
        let f = fed(&go("acme", &["github.com/acme/*"]));
        assert!(f.route(GO, "github.com/other/x").is_none());
    }

    #[test]
    fn warg_routes_case_insensitively_and_falls_back_to_default() {
        let f = fed(&(warg("internal", &["acme"], false) + &warg("ba", &["wasi"], true)));
        assert_eq!(f.route(WARG, "ACME").unwrap().name, "internal");
        assert_eq!(f.route(WARG, "wasi").unwrap().name, "ba");
        assert_eq!(f.route(WARG, "other").unwrap().name, "ba");
        assert!(f.owner(WARG, "other").is_none());
    }

    #[test]
    fn overlapping_warg_namespace_names_both_upstreams() {
        let text = warg("internal", &["acme"], false) + &warg("x", &["Acme"], false);
        let e = parse(&text, "f.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: upstream[1].namespaces: \"acme\" is already owned by upstream \"internal\""
        );
    }

    #[test]
    fn same_go_pattern_twice_is_refused() {
        let text = go("a", &["github.com/acme/*"]) + &go("b", &["github.com/acme"]);
        let e = parse(&text, "f.toml").unwrap_err();
        assert!(
            e.to_string().contains("already owned by upstream \"a\""),
            "{e}"
        );
    }

    #[test]
    fn two_warg_defaults_are_refused() {
        let text = warg("a", &["x"], true) + &warg("b", &["y"], true);
        let e = parse(&text, "f.toml").unwrap_err();
        assert_eq!(e.key, "upstream[1].default");
    }

    #[test]
    fn table_lists_every_claim() {
        let f = fed(&(go("public", &["*"]) + &warg("internal", &["acme"], false)));
        let s = f.to_string();
        assert!(
            s.contains("acme") && s.contains("internal") && s.contains("public"),
            "{s}"
        );
    }
}
