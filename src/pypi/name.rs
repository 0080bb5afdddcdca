//! Project names (PEP 508) and their normal form (PEP 503): runs of `-`,
//! `_` and `.` become one `-`, letters become lower case. Two names are the
//! same project exactly when their normal forms are equal.

use std::fmt;

/// Longest project name accepted (PyPI's own limit is far below this).
pub const MAX_NAME: usize = 200;

/// A valid project name, kept in its normal form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

/// Why a string is not a project name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a project name ({reason}): {shown:?}")]
pub struct NameError {
    /// What rule it breaks.
    pub reason: &'static str,
    /// The first characters of it.
    pub shown: String,
}

impl ProjectName {
    /// Parses a name as written anywhere (an index, a request path): ASCII
    /// letters and digits, with `-`, `_` and `.` inside; at most
    /// [`MAX_NAME`] bytes.
    pub fn parse(s: &str) -> Result<ProjectName, NameError> {
        let err = |reason| NameError {
            reason,
            shown: s.chars().take(64).collect(),
        };
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.len() > MAX_NAME {
            return Err(err("too long"));
        }
        let b = s.as_bytes();
        let sep = |c: u8| matches!(c, b'-' | b'_' | b'.');
        if !b.iter().all(|&c| c.is_ascii_alphanumeric() || sep(c)) {
            return Err(err(
                "only ASCII letters, digits, '-', '_' and '.' are allowed",
            ));
        }
        if sep(b[0]) || sep(b[b.len() - 1]) {
            return Err(err("must start and end with a letter or digit"));
        }
        let mut out = String::with_capacity(s.len());
        let mut in_sep = false;
        for &c in b {
            if sep(c) {
                if !in_sep {
                    out.push('-');
                }
                in_sep = true;
            } else {
                out.push(char::from(c.to_ascii_lowercase()));
                in_sep = false;
            }
        }
        Ok(ProjectName(out))
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A project name pattern (`acme-*`, `*`, `Sample_Project`) in the normal
/// form of [`ProjectName`], `*` kept: what [`crate::pattern::NamePatterns`]
/// compares normal names against.
pub fn normalize_pattern(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(format!(
            "pattern {:?} has {} bytes, want 1 to {MAX_NAME}",
            s.chars().take(64).collect::<String>(),
            s.len()
        ));
    }
    let mut pieces = Vec::new();
    for piece in s.split('*') {
        if piece.is_empty() {
            pieces.push(String::new());
            continue;
        }
        // A piece is a name, but may begin or end with a separator
        // (`acme-*`): normalise it with a letter around it.
        let n = ProjectName::parse(&format!("a{piece}a"))
            .map_err(|e| format!("pattern {s:?}: {}", e.reason))?;
        let n = n.as_str();
        pieces.push(n[1..n.len() - 1].to_string());
    }
    let out = pieces.join("*");
    Ok(out)
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_take_the_normal_form_and_keep_their_wildcards() {
        assert_eq!(normalize_pattern("Acme_Tools.*").unwrap(), "acme-tools-*");
        assert_eq!(normalize_pattern("*").unwrap(), "*");
        assert_eq!(normalize_pattern("*-Py").unwrap(), "*-py");
        assert_eq!(normalize_pattern("a*b*c").unwrap(), "a*b*c");
        assert_eq!(
            normalize_pattern("Sample_Project").unwrap(),
            "sample-project"
        );
        assert!(normalize_pattern("x y").is_err());
        assert!(normalize_pattern("").is_err());
    }

    #[test]
    fn names_normalise_as_pep_503_says() {
        for (raw, norm) in [
            ("friendly-bard", "friendly-bard"),
            ("Friendly-Bard", "friendly-bard"),
            ("FRIENDLY-BARD", "friendly-bard"),
            ("friendly.bard", "friendly-bard"),
            ("friendly_bard", "friendly-bard"),
            ("friendly--bard", "friendly-bard"),
            ("FrIeNdLy-._.-bArD", "friendly-bard"),
            ("a", "a"),
            ("zope.interface", "zope-interface"),
        ] {
            assert_eq!(ProjectName::parse(raw).unwrap().as_str(), norm, "{raw}");
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in ["", "-a", "a-", ".a", "a/b", "a b", "ä", "../x", "a\0"] {
            assert!(ProjectName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ProjectName::parse(&"a".repeat(MAX_NAME + 1)).is_err());
        assert!(ProjectName::parse(&"a".repeat(MAX_NAME)).is_ok());
    }
}
