//! The routing table: which upstream owns a Warg namespace or a Go module
//! path.
//!
//! Built from the validated `[[upstream]]` entries (config validation calls
//! [`Federation::new`] to refuse overlapping claims); the protocol fronts call
//! [`Federation::route_warg`] and [`Federation::route_go`] on every request.
//!
//! Warg namespaces match exactly and case-insensitively; a Warg upstream with
//! `default = true` takes namespaces nobody claims. Go patterns are `*` (every
//! module) or a path prefix (`github.com/acme/*` or `github.com/acme`) that
//! matches the path itself and every path below it, element by element; the
//! longest matching prefix wins. Each namespace and each pattern has exactly
//! one owner.

use std::collections::HashMap;
use std::fmt;

use crate::config::{Protocol, UpstreamConfig};

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
    /// Two Warg upstreams are both `default = true`.
    #[error("upstream {claimant:?} (upstream[{index}]) is a second default after {owner:?}")]
    TwoDefaults {
        /// Index of the second default.
        index: usize,
        /// The second default.
        claimant: String,
        /// The first default.
        owner: String,
    },
}

/// The routing table over a list of upstreams.
#[derive(Debug, Clone)]
pub struct Federation {
    upstreams: Vec<UpstreamConfig>,
    /// Lowercased Warg namespace → index.
    warg: HashMap<String, usize>,
    warg_default: Option<usize>,
    /// Go prefixes, longest first, with their owner; `*` is kept apart.
    go: Vec<(String, usize)>,
    go_star: Option<usize>,
}

impl Federation {
    /// Builds the table, refusing overlapping claims.
    pub fn new(upstreams: &[UpstreamConfig]) -> Result<Federation, FederationError> {
        let mut warg: HashMap<String, usize> = HashMap::new();
        let mut warg_default: Option<usize> = None;
        let mut go: Vec<(String, usize)> = Vec::new();
        let mut go_star: Option<usize> = None;
        for (i, u) in upstreams.iter().enumerate() {
            let overlap = |ns: &str, owner: usize| FederationError::Overlap {
                index: i,
                claimant: u.name.clone(),
                namespace: ns.to_string(),
                owner: upstreams[owner].name.clone(),
            };
            match u.protocol {
                Protocol::Warg => {
                    for ns in &u.namespaces {
                        let key = ns.to_ascii_lowercase();
                        if let Some(&owner) = warg.get(&key) {
                            return Err(overlap(ns, owner));
                        }
                        warg.insert(key, i);
                    }
                    if u.default {
                        if let Some(owner) = warg_default {
                            return Err(FederationError::TwoDefaults {
                                index: i,
                                claimant: u.name.clone(),
                                owner: upstreams[owner].name.clone(),
                            });
                        }
                        warg_default = Some(i);
                    }
                }
                Protocol::Gomod => {
                    for p in &u.namespaces {
                        let prefix = p.strip_suffix("/*").unwrap_or(p);
                        if prefix == "*" {
                            if let Some(owner) = go_star {
                                return Err(overlap("*", owner));
                            }
                            go_star = Some(i);
                        } else if let Some(&(_, owner)) = go.iter().find(|(q, _)| q == prefix) {
                            return Err(overlap(p, owner));
                        } else {
                            go.push((prefix.to_string(), i));
                        }
                    }
                }
            }
        }
        go.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Federation {
            upstreams: upstreams.to_vec(),
            warg,
            warg_default,
            go,
            go_star,
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

    /// The Warg upstream that owns `namespace`, else the default one.
    pub fn route_warg(&self, namespace: &str) -> Option<&UpstreamConfig> {
        let key = namespace.to_ascii_lowercase();
        self.warg
            .get(&key)
            .copied()
            .or(self.warg_default)
            .map(|i| &self.upstreams[i])
    }

    /// The Warg upstream that owns `namespace` by an explicit claim (no
    /// default), for answering with a `warg-registry-hint`.
    pub fn warg_owner(&self, namespace: &str) -> Option<&UpstreamConfig> {
        self.warg
            .get(&namespace.to_ascii_lowercase())
            .map(|&i| &self.upstreams[i])
    }

    /// The Go upstream whose pattern matches `module_path` most specifically.
    pub fn route_go(&self, module_path: &str) -> Option<&UpstreamConfig> {
        self.go
            .iter()
            .find(|(prefix, _)| path_has_prefix(module_path, prefix))
            .map(|&(_, i)| i)
            .or(self.go_star)
            .map(|i| &self.upstreams[i])
    }

    /// Table rows: (protocol, namespace or pattern, upstream), sorted.
    pub fn rows(&self) -> Vec<(Protocol, String, &UpstreamConfig)> {
        let mut rows: Vec<(Protocol, String, &UpstreamConfig)> = Vec::new();
        for (ns, &i) in &self.warg {
            rows.push((Protocol::Warg, ns.clone(), &self.upstreams[i]));
        }
        if let Some(i) = self.warg_default {
            rows.push((Protocol::Warg, "(default)".into(), &self.upstreams[i]));
        }
        for (p, i) in &self.go {
            rows.push((Protocol::Gomod, format!("{p}/*"), &self.upstreams[*i]));
        }
        if let Some(i) = self.go_star {
            rows.push((Protocol::Gomod, "*".into(), &self.upstreams[i]));
        }
        rows.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
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
            let key = match (&u.operator_key, &u.sumdb) {
                (Some(k), _) => k.clone(),
                (None, Some(s)) => format!("sumdb {} {}", s.url, s.key),
                (None, None) => String::new(),
            };
            writeln!(
                f,
                "{:<8} {:<w_ns$} {:<w_up$} {}",
                proto.to_string(),
                ns,
                u.name,
                u.url
            )?;
            writeln!(f, "{:<8} {:<w_ns$} {:<w_up$}   {}", "", "", "", key)?;
        }
        if self.go_star.is_none() && !self.go.is_empty() {
            writeln!(f, "(Go modules matching no pattern are refused)")?;
        }
        if self.warg_default.is_none() && !self.warg.is_empty() {
            writeln!(f, "(Warg namespaces no upstream claims are refused)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

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
        let c = Config::parse(text, "t.toml", Path::new(".")).unwrap();
        Federation::new(&c.upstreams).unwrap()
    }

    #[test]
    fn most_specific_go_pattern_wins() {
        let f = fed(&(go("public", &["*"])
            + &go("acme", &["github.com/acme/*"])
            + &go("tools", &["github.com/acme/tools"])));
        assert_eq!(f.route_go("github.com/acme/x").unwrap().name, "acme");
        assert_eq!(f.route_go("github.com/acme").unwrap().name, "acme");
        assert_eq!(
            f.route_go("github.com/acme/tools/v2").unwrap().name,
            "tools"
        );
        assert_eq!(f.route_go("github.com/acmeco/x").unwrap().name, "public");
        assert_eq!(f.route_go("golang.org/x/mod").unwrap().name, "public");
    }

    #[test]
    fn go_module_without_owner_is_unrouted() {
        let f = fed(&go("acme", &["github.com/acme/*"]));
        assert!(f.route_go("github.com/other/x").is_none());
    }

    #[test]
    fn warg_routes_case_insensitively_and_falls_back_to_default() {
        let f = fed(&(warg("internal", &["acme"], false) + &warg("ba", &["wasi"], true)));
        assert_eq!(f.route_warg("ACME").unwrap().name, "internal");
        assert_eq!(f.route_warg("wasi").unwrap().name, "ba");
        assert_eq!(f.route_warg("other").unwrap().name, "ba");
        assert!(f.warg_owner("other").is_none());
    }

    #[test]
    fn overlapping_warg_namespace_names_both_upstreams() {
        let text = warg("internal", &["acme"], false) + &warg("x", &["Acme"], false);
        let e = Config::parse(&text, "f.toml", Path::new(".")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: upstream[1].namespaces: \"acme\" is already owned by upstream \"internal\""
        );
    }

    #[test]
    fn same_go_pattern_twice_is_refused() {
        let text = go("a", &["github.com/acme/*"]) + &go("b", &["github.com/acme"]);
        let e = Config::parse(&text, "f.toml", Path::new(".")).unwrap_err();
        assert!(
            e.to_string().contains("already owned by upstream \"a\""),
            "{e}"
        );
    }

    #[test]
    fn two_warg_defaults_are_refused() {
        let text = warg("a", &["x"], true) + &warg("b", &["y"], true);
        let e = Config::parse(&text, "f.toml", Path::new(".")).unwrap_err();
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
