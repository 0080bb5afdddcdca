//! `min_release_age`: a release younger than the operator's minimum is
//! hidden and refused, where its age counts from a time bulwark can trust
//! — the first time bulwark itself saw it — never from a time the registry
//! alone asserts (an npm packument's `time`, a PyPI `upload-time`).
//!
//! Each ecosystem names what a sighting is (npm: a version and its
//! integrity; PyPI: a file and its sha256). The first sighting of each is
//! recorded durably in the artifact index (one transaction for all new
//! ones; a key keeps its first entry), and a release whose digest is not
//! the one first seen is refused too: the registry swapped it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::store::index::Entry;
use crate::store::Digest;

use super::artifacts::Artifacts;
use super::refusal::Refusal;

/// The check name of a release younger than `min_release_age`.
pub const CHECK_RELEASE_AGE: &str = "min release age";
/// The check name of a release whose digest is not the one first seen.
pub const CHECK_FIRST_SEEN: &str = "first seen digest";

/// Parses a `min_release_age` value (`"7d"`, `"36h"`): longer than zero.
pub fn parse_min_release_age(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("must be longer than zero, saw {text:?}")),
        Err(e) => Err(format!(
            "expected a duration like \"7d\", saw {text:?} ({e})"
        )),
    }
}

/// Why a release may not be served (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooYoung {
    pub check: &'static str,
    pub expected: String,
    pub seen: String,
}

/// Whether a release first seen as `first` and now showing `digest` may be
/// served at `now` under `min_release_age = min`.
pub fn release_age_ok(
    first: &Entry,
    digest: &Digest,
    min: Duration,
    now: SystemTime,
) -> Result<(), TooYoung> {
    if first.digest != *digest {
        return Err(TooYoung {
            check: CHECK_FIRST_SEEN,
            expected: format!("the release first seen ({})", first.proof),
            seen: format!("digest {digest}"),
        });
    }
    let age = now.duration_since(first.at).unwrap_or_default();
    if age >= min {
        return Ok(());
    }
    Err(TooYoung {
        check: CHECK_RELEASE_AGE,
        expected: format!(
            "a release bulwark first saw at least {} ago",
            humantime::format_duration(min)
        ),
        seen: format!(
            "first seen at {} ({} ago)",
            humantime::format_rfc3339_seconds(first.at),
            humantime::format_duration(Duration::from_secs(age.as_secs()))
        ),
    })
}

impl Artifacts {
    /// The first sighting of each `(key, digest, proof)` under `kind`:
    /// recorded now for keys never seen (one durable transaction), read
    /// back for the rest (a key keeps its first entry).
    pub async fn first_seen(
        &self,
        upstream: &str,
        epoch: u64,
        kind: &'static str,
        sightings: Vec<(String, Digest, String)>,
    ) -> Result<BTreeMap<String, Entry>, Refusal> {
        let mut seen = BTreeMap::new();
        let mut new = Vec::new();
        for (key, digest, proof) in sightings {
            match self.entry(upstream, epoch, kind, &key).await? {
                Some(e) => {
                    seen.insert(key, e);
                }
                None => new.push((key, Entry::new(digest, proof))),
            }
        }
        if !new.is_empty() {
            self.index(upstream, epoch, kind, new.clone()).await?;
            for (key, e) in new {
                let e = self.entry(upstream, epoch, kind, &key).await?.unwrap_or(e);
                seen.insert(key, e);
            }
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_from_the_first_sighting_and_a_swapped_release_is_refused() {
        let d = Digest::of(b"release");
        let mut first = Entry::new(d, "first seen with release");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        first.at = t0;
        let day = Duration::from_secs(86_400);
        assert!(release_age_ok(&first, &d, day, t0 + day).is_ok());
        let e = release_age_ok(&first, &d, day, t0 + day / 2).unwrap_err();
        assert_eq!(e.check, CHECK_RELEASE_AGE);
        assert!(e.seen.contains("12h"), "{e:?}");
        let e = release_age_ok(&first, &Digest::of(b"other"), day, t0 + 2 * day).unwrap_err();
        assert_eq!(e.check, CHECK_FIRST_SEEN);
        assert_eq!(parse_min_release_age("7d"), Ok(7 * day));
        assert!(parse_min_release_age("0s").is_err());
        assert!(parse_min_release_age("soon").is_err());
    }
}
