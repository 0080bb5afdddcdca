//! Never downgrade: per upstream and package, the publishers whose
//! attestations bulwark has verified (a PEP 740 Trusted Publisher, the
//! source repository of npm provenance). Once a package has one, a later
//! artifact of it with no attestation, or attested by another publisher,
//! is refused — the stolen-token upload that bypasses trusted publishing —
//! until an operator accepts the change (`bulwark upstream publishers
//! ... --accept`), a decision kept here too.
//!
//! Kept in the trust state's file (`state.redb`, table `publishers`): it is
//! part of what bulwark remembers about each upstream, survives restarts
//! and a `clear --rebase` (an epoch change re-trusts a log, not a
//! publisher), and the CLI may write it while `serve` runs.

use std::time::SystemTime;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::trust::{storage, unix_ms, TrustError, TrustState, PUBLISHERS};

/// Most publishers one package's ledger keeps (a project moving between
/// repositories a few times; beyond that, an operator decides again).
pub const MAX_PUBLISHERS: usize = 16;
/// Longest package name or publisher identity kept.
pub const MAX_LEDGER_TEXT: usize = 512;

/// What bulwark remembers of one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The publishers accepted for the package, in the order first seen.
    /// Empty: the package may be served unattested (an operator's
    /// decision; a package never seen attested has no ledger at all).
    pub publishers: Vec<String>,
    /// The artifact that first showed them, or the operator's decision.
    pub first: String,
    /// When this was recorded.
    #[serde(with = "unix_ms")]
    pub since: SystemTime,
}

/// What the ledger says of an artifact about to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Consistent with the ledger (or recorded as the package's first
    /// publishers now).
    Accepted(Option<Ledger>),
    /// Refused: the ledger names other publishers.
    Downgrade(Ledger),
}

fn input(upstream: &str, detail: String) -> TrustError {
    TrustError::Input {
        upstream: upstream.chars().take(64).collect(),
        detail,
    }
}

fn check_text(upstream: &str, what: &str, s: &str) -> Result<(), TrustError> {
    if s.is_empty() || s.len() > MAX_LEDGER_TEXT {
        return Err(input(
            upstream,
            format!("{what} has {} bytes, want 1 to {MAX_LEDGER_TEXT}", s.len()),
        ));
    }
    Ok(())
}

fn decode(b: &[u8]) -> Result<Ledger, TrustError> {
    serde_json::from_slice(b).map_err(storage("decode publisher ledger"))
}

fn encode(l: &Ledger) -> Result<Vec<u8>, TrustError> {
    serde_json::to_vec(l).map_err(storage("encode publisher ledger"))
}

impl TrustState {
    /// The package's ledger, if bulwark ever verified an attestation of it
    /// (or an operator decided).
    pub fn publishers(&self, upstream: &str, package: &str) -> Result<Option<Ledger>, TrustError> {
        let txn = self.begin_read()?;
        let t = match txn.open_table(PUBLISHERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage("open table")(e)),
        };
        match t
            .get((upstream, package))
            .map_err(storage("read publisher ledger"))?
        {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Judges an artifact of `package` attested by `seen` (empty: not
    /// attested) against the ledger, in one write transaction: with no
    /// ledger yet, attested publishers become the package's ledger
    /// (`artifact` names what showed them); an unattested artifact is
    /// accepted only while the ledger is absent or empty; an attested one
    /// only if every publisher it shows is in the ledger.
    pub fn judge_publishers(
        &self,
        upstream: &str,
        package: &str,
        seen: &[String],
        artifact: &str,
        now: SystemTime,
    ) -> Result<Verdict, TrustError> {
        check_text(upstream, "package name", package)?;
        for p in seen {
            check_text(upstream, "publisher", p)?;
        }
        let txn = self.begin_write()?;
        let mut wrote = false;
        let verdict = {
            let mut t = txn.open_table(PUBLISHERS).map_err(storage("open table"))?;
            let old = match t
                .get((upstream, package))
                .map_err(storage("read publisher ledger"))?
            {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
            match old {
                None if seen.is_empty() => Verdict::Accepted(None),
                None => {
                    let mut publishers: Vec<String> = Vec::new();
                    for p in seen.iter().take(MAX_PUBLISHERS) {
                        if !publishers.contains(p) {
                            publishers.push(p.clone());
                        }
                    }
                    let l = Ledger {
                        publishers,
                        first: artifact.chars().take(MAX_LEDGER_TEXT).collect(),
                        since: now,
                    };
                    t.insert((upstream, package), encode(&l)?.as_slice())
                        .map_err(storage("write publisher ledger"))?;
                    wrote = true;
                    Verdict::Accepted(Some(l))
                }
                Some(l) if seen.is_empty() && l.publishers.is_empty() => Verdict::Accepted(Some(l)),
                Some(l) if !seen.is_empty() && seen.iter().all(|p| l.publishers.contains(p)) => {
                    Verdict::Accepted(Some(l))
                }
                Some(l) => Verdict::Downgrade(l),
            }
        };
        if wrote {
            self.commit_write(txn)?;
        } else {
            txn.abort().map_err(storage("abort"))?;
        }
        Ok(verdict)
    }

    /// The operator's decision for `package`: from now on accept exactly
    /// `publishers` (empty: accept it unattested until an attested artifact
    /// is seen again). Returns the ledger it replaces.
    pub fn accept_publishers(
        &self,
        upstream: &str,
        package: &str,
        publishers: &[String],
        now: SystemTime,
    ) -> Result<Option<Ledger>, TrustError> {
        check_text(upstream, "package name", package)?;
        if publishers.len() > MAX_PUBLISHERS {
            return Err(input(
                upstream,
                format!("{} publishers, at most {MAX_PUBLISHERS}", publishers.len()),
            ));
        }
        for p in publishers {
            check_text(upstream, "publisher", p)?;
        }
        let txn = self.begin_write()?;
        let old = {
            let mut t = txn.open_table(PUBLISHERS).map_err(storage("open table"))?;
            let old = match t
                .get((upstream, package))
                .map_err(storage("read publisher ledger"))?
            {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
            let l = Ledger {
                publishers: publishers.to_vec(),
                first: "accepted by an operator".to_string(),
                since: now,
            };
            t.insert((upstream, package), encode(&l)?.as_slice())
                .map_err(storage("write publisher ledger"))?;
            old
        };
        self.commit_write(txn)?;
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn state() -> (tempfile::TempDir, TrustState) {
        let dir = tempfile::tempdir().unwrap();
        let s = TrustState::open(dir.path().join("state.redb")).unwrap();
        (dir, s)
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_first_publisher_is_kept_and_a_downgrade_is_refused_until_accepted() {
        let (dir, s) = state();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Unattested before any attestation: accepted, nothing recorded.
        assert_eq!(
            s.judge_publishers("py", "demo", &[], "demo-0.1.tar.gz", t0)
                .unwrap(),
            Verdict::Accepted(None)
        );
        assert_eq!(s.publishers("py", "demo").unwrap(), None);
        // The first attested file records its publisher.
        let a = v(&["GitHub:acme/demo:release.yml"]);
        let Verdict::Accepted(Some(l)) = s
            .judge_publishers("py", "demo", &a, "demo-0.2.tar.gz", t0)
            .unwrap()
        else {
            panic!("not recorded")
        };
        assert_eq!(l.publishers, a);
        // The same publisher again: accepted; another, or none: refused.
        let t1 = t0 + Duration::from_secs(5);
        assert!(matches!(
            s.judge_publishers("py", "demo", &a, "demo-0.3.tar.gz", t1)
                .unwrap(),
            Verdict::Accepted(Some(_))
        ));
        let b = v(&["GitHub:mallory/demo:release.yml"]);
        for seen in [b.clone(), Vec::new()] {
            match s
                .judge_publishers("py", "demo", &seen, "demo-0.4.tar.gz", t1)
                .unwrap()
            {
                Verdict::Downgrade(l) => {
                    assert_eq!(l.publishers, a);
                    assert_eq!(l.first, "demo-0.2.tar.gz");
                }
                other => panic!("{seen:?}: {other:?}"),
            }
        }
        // Other upstreams and packages are separate.
        assert!(matches!(
            s.judge_publishers("py2", "demo", &b, "x", t1).unwrap(),
            Verdict::Accepted(Some(_))
        ));
        // The decision survives a reopen; the operator accepts the move.
        drop(s);
        let s = TrustState::open(dir.path().join("state.redb")).unwrap();
        assert_eq!(s.publishers("py", "demo").unwrap().unwrap().publishers, a);
        let old = s.accept_publishers("py", "demo", &b, t1).unwrap();
        assert_eq!(old.unwrap().publishers, a);
        assert!(matches!(
            s.judge_publishers("py", "demo", &b, "demo-0.4.tar.gz", t1)
                .unwrap(),
            Verdict::Accepted(Some(_))
        ));
        assert!(matches!(
            s.judge_publishers("py", "demo", &a, "demo-0.5.tar.gz", t1)
                .unwrap(),
            Verdict::Downgrade(_)
        ));
        // Accepting "unattested" (no publishers) lets unattested files through.
        s.accept_publishers("py", "demo", &[], t1).unwrap();
        assert!(matches!(
            s.judge_publishers("py", "demo", &[], "demo-0.6.tar.gz", t1)
                .unwrap(),
            Verdict::Accepted(Some(_))
        ));
    }

    #[test]
    fn oversized_names_are_refused_not_stored() {
        let (_dir, s) = state();
        let long = "x".repeat(MAX_LEDGER_TEXT + 1);
        let now = SystemTime::now();
        assert!(s.judge_publishers("py", &long, &[], "f", now).is_err());
        assert!(s
            .judge_publishers("py", "p", std::slice::from_ref(&long), "f", now)
            .is_err());
        assert!(s
            .accept_publishers("py", "p", &vec!["a".into(); MAX_PUBLISHERS + 1], now)
            .is_err());
    }
}
