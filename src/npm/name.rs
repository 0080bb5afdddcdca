//! npm package names: `name` or `@scope/name`, as the registry accepts
//! them (at most 214 bytes; URL-safe characters; neither part starting
//! with `.` or `_`). Legacy names with capital letters are accepted as
//! written (the registry still serves them); nothing is case-folded.
//!
//! A name is what routes (`@scope/*` patterns), artifact keys
//! (`name@version`) and the signed message (`name@version:integrity`) use,
//! so it is checked once here and carried typed.

use std::fmt;

/// Longest package name the registry accepts.
pub const MAX_NAME: usize = 214;

/// A checked package name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an npm package name: {0}")]
pub struct BadName(pub String);

/// One part of a name (the scope without `@`, or the bare name).
fn part_ok(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with(['.', '_'])
        && p != "node_modules"
        && p.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
}

impl PackageName {
    /// Checks `s` (already percent-decoded).
    pub fn parse(s: &str) -> Result<PackageName, BadName> {
        let bad = |why: &str| BadName(format!("{why}: {:?}", truncate(s)));
        if s.is_empty() || s.len() > MAX_NAME {
            return Err(bad("empty or longer than 214 bytes"));
        }
        let ok = match s.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('/') {
                Some((scope, name)) => part_ok(scope) && part_ok(name),
                None => false,
            },
            None => part_ok(s),
        };
        if !ok {
            return Err(bad(
                "expected name or @scope/name of A-Z a-z 0-9 - . _ ~, not starting with . or _",
            ));
        }
        Ok(PackageName(s.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scope (`@acme`), if any.
    pub fn scope(&self) -> Option<&str> {
        self.0
            .starts_with('@')
            .then(|| self.0.split_once('/').map(|(s, _)| s))
            .flatten()
    }

    /// The name without its scope (the tarball file's prefix).
    pub fn bare(&self) -> &str {
        match self.0.split_once('/') {
            Some((_, n)) if self.0.starts_with('@') => n,
            _ => &self.0,
        }
    }

    /// The path segment a registry is asked for (`@scope%2fname`).
    pub fn escaped(&self) -> String {
        self.0.replacen('/', "%2f", 1)
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `v` can be a version key (a semver string, checked loosely:
/// bounded, printable, no path or URL syntax).
pub fn version_ok(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'+' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_scoped_and_bare() {
        let n = PackageName::parse("@acme/left-pad").unwrap();
        assert_eq!(
            (n.scope(), n.bare(), n.escaped().as_str()),
            (Some("@acme"), "left-pad", "@acme%2fleft-pad")
        );
        let n = PackageName::parse("JSONStream").unwrap();
        assert_eq!((n.scope(), n.bare()), (None, "JSONStream"));
        for bad in [
            "",
            "@acme",
            "@acme/",
            "@/x",
            "a/b",
            ".x",
            "_x",
            "@acme/.x",
            "a b",
            "x%2f",
            "@a/b/c",
            &"x".repeat(215),
        ] {
            assert!(PackageName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(version_ok("1.0.0-beta.1+build.5"));
        assert!(!version_ok("../1"));
        assert!(!version_ok("1/2"));
    }
}
