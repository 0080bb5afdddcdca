//! Name patterns for per-package policy (`publishers`, per-project
//! `attestations`): a name written exactly, or with `*` wildcards
//! (`acme-*`, `*`). The most specific pattern wins: an exact name before
//! any wildcard, then the wildcard pattern with the most literal
//! characters (`acme-tools-*` before `acme-*` before `*`). Names and
//! patterns are compared in the protocol's normal form, which the caller
//! applies before [`NamePatterns::insert`] and [`NamePatterns::get`].

use regex::Regex;

/// Longest pattern accepted.
pub const MAX_PATTERN: usize = 256;

#[derive(Debug, Clone)]
struct Entry<T> {
    written: String,
    /// `None`: no wildcard, compared exactly.
    regex: Option<Regex>,
    literal_len: usize,
    value: T,
}

/// Patterns, each with a value.
#[derive(Debug, Clone)]
pub struct NamePatterns<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for NamePatterns<T> {
    fn default() -> Self {
        NamePatterns {
            entries: Vec::new(),
        }
    }
}

impl<T> NamePatterns<T> {
    /// Adds a pattern (already in normal form); a pattern given twice is
    /// an error.
    pub fn insert(&mut self, pattern: &str, value: T) -> Result<(), String> {
        if pattern.is_empty() || pattern.len() > MAX_PATTERN {
            return Err(format!(
                "pattern {pattern:?} has {} bytes, want 1 to {MAX_PATTERN}",
                pattern.len()
            ));
        }
        if self.entries.iter().any(|e| e.written == pattern) {
            return Err(format!("pattern {pattern:?} is given twice"));
        }
        let regex = if pattern.contains('*') {
            let body: Vec<String> = pattern.split('*').map(regex::escape).collect();
            Some(
                Regex::new(&format!("^{}$", body.join(".*")))
                    .map_err(|e| format!("pattern {pattern:?}: {e}"))?,
            )
        } else {
            None
        };
        self.entries.push(Entry {
            written: pattern.to_string(),
            regex,
            literal_len: pattern.chars().filter(|&c| c != '*').count(),
            value,
        });
        Ok(())
    }

    /// The value of the most specific pattern matching `name`, with the
    /// pattern as written.
    pub fn get(&self, name: &str) -> Option<(&str, &T)> {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.regex.is_none() && e.written == name)
        {
            return Some((&e.written, &e.value));
        }
        self.entries
            .iter()
            .filter(|e| e.regex.as_ref().is_some_and(|r| r.is_match(name)))
            .max_by_key(|e| e.literal_len)
            .map(|e| (e.written.as_str(), &e.value))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every pattern as written, with its value, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|e| (e.written.as_str(), &e.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_pattern_wins() {
        let mut p = NamePatterns::default();
        p.insert("*", 0).unwrap();
        p.insert("acme-*", 1).unwrap();
        p.insert("acme-tools-*", 2).unwrap();
        p.insert("acme-tools-x", 3).unwrap();
        p.insert("a.c+", 4).unwrap();
        assert_eq!(p.get("other"), Some(("*", &0)));
        assert_eq!(p.get("acme-web"), Some(("acme-*", &1)));
        assert_eq!(p.get("acme-tools-y"), Some(("acme-tools-*", &2)));
        assert_eq!(p.get("acme-tools-x"), Some(("acme-tools-x", &3)));
        // Pattern characters other than `*` are literal.
        assert_eq!(p.get("a.c+"), Some(("a.c+", &4)));
        assert_eq!(p.get("abcc"), Some(("*", &0)));
        assert!(p.insert("acme-*", 9).is_err());
        assert!(p.insert("", 9).is_err());
        let mut q: NamePatterns<u8> = NamePatterns::default();
        q.insert("acme-*", 1).unwrap();
        assert_eq!(q.get("acme"), None);
        assert_eq!(q.get("acme-"), Some(("acme-*", &1)));
    }
}
