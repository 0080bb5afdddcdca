//! Witness policies (c2sp.org/tlog-policy): which logs may sign a
//! checkpoint and which witnesses must cosign it.
//!
//! ```text
//! # comments and blank lines are ignored
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <name>...
//! quorum <name>|none
//! ```
//!
//! A checkpoint is valid under a policy when one of its `log` keys signed it
//! and its quorum holds over the valid cosignatures (c2sp.org/
//! tlog-cosignature, `cosignature/v1`) of its witnesses. A group holds when
//! at least k of its members hold; a witness holds when it cosigned.
//!
//! Parsing is strict, per the spec: fields are separated by spaces and tabs
//! only; a group or the quorum may name only witnesses and groups defined on
//! earlier lines (so cycles cannot be written; a forward or self reference is
//! reported as such); names are unique and `none` is reserved; a name
//! appears at most once in a group; 1 ≤ k ≤ n; exactly one quorum line.
//! Witnesses count by key, never by line: two `witness` lines with the same
//! public key (even under different names or key types) are refused, so one
//! key can never fill two places in a group; likewise for `log` lines.
//!
//! Witness keys may be published as plain Ed25519 (`0x01`) or cosignature
//! (`0x04`) vkeys; both verify cosignature lines, whose key ID is always
//! derived with `0x04`. Log keys may be any type [`VerifierKey`] reads.
//!
//! Callers: `bulwark verify checkpoint --policy` and the per-upstream
//! verifiers, which load `policies/*.txt`.

use super::checkpoint::{parse_decimal, Checkpoint, CheckpointError};
use super::note::{self, KeyError, NoteError, VerifierKey};
use std::collections::HashMap;
use std::fmt;

/// Largest policy file accepted, in bytes.
pub const MAX_POLICY_SIZE: usize = 64 * 1024;

/// Most lines a policy file may have (the spec asks implementations to
/// support at least 32 logs, 32 witnesses and 32 groups).
pub const MAX_POLICY_LINES: usize = 1024;

/// How far in the future (relative to the `now` given to
/// [`Policy::verify`]) a cosignature may be dated and still count, to allow
/// for clock skew between the witness and us.
pub const MAX_COSIGNATURE_SKEW_SECS: u64 = 600;

/// A `log` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    pub key: VerifierKey,
    pub url: Option<String>,
}

/// A `witness` line. `key` is the cosignature (`0x04`) verifier, whatever
/// type the line published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    pub name: String,
    pub key: VerifierKey,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed tlog-policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None` for `quorum none`.
    quorum: Option<Member>,
}

/// A witness cosignature that counted toward the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    /// The witness's name in the policy.
    pub witness: String,
    /// The key name on its cosignature line.
    pub key_name: String,
    /// The cosignature's timestamp (POSIX seconds).
    pub time: u64,
}

/// A checkpoint that satisfied a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVerified {
    pub checkpoint: Checkpoint,
    /// The signed checkpoint text.
    pub text: String,
    /// The key name of the log key that signed it. The policy spec says it
    /// corresponds to the origin; sum.golang.org's does not
    /// (`sum.golang.org` vs `go.sum database tree`), so callers that want
    /// them equal check it.
    pub log: String,
    /// Every listed witness whose cosignature verified, in note order.
    pub cosigners: Vec<Cosigner>,
    /// The newest time at which the quorum was met: the largest `t` such
    /// that the cosignatures dated `t` or later satisfy the quorum alone
    /// (POSIX seconds). `None` for `quorum none`. This is how fresh the
    /// witnesses vouch the tree is.
    pub quorum_time: Option<u64>,
}

/// Why a policy was refused, or a checkpoint did not satisfy it. Line
/// numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is {0} bytes, more than the {MAX_POLICY_SIZE} allowed")]
    TooLarge(usize),
    #[error("policy has {0} lines, more than the {MAX_POLICY_LINES} allowed")]
    TooManyLines(usize),
    #[error("line {line}: byte {byte:#04x} is not allowed (only tab, newline, printable ASCII and bytes >= 0x80)")]
    BadCharacter { line: usize, byte: u8 },
    #[error("line {line}: unknown keyword {keyword:?}, want log, witness, group or quorum")]
    UnknownKeyword { line: usize, keyword: String },
    #[error("line {line}: {keyword} line has {seen} fields, want {want}")]
    WrongFieldCount {
        line: usize,
        keyword: &'static str,
        want: &'static str,
        seen: usize,
    },
    #[error("line {line}: bad key: {error}")]
    BadKey { line: usize, error: KeyError },
    #[error("line {line}: log key is already listed on line {first_line}")]
    DuplicateLog { line: usize, first_line: usize },
    #[error("line {line}: witness {name:?} has the same public key as witness {other:?}; a key may be listed once")]
    DuplicateWitnessKey {
        line: usize,
        name: String,
        other: String,
    },
    #[error("line {line}: name {name:?} is already defined on line {first_line}")]
    DuplicateName {
        line: usize,
        name: String,
        first_line: usize,
    },
    #[error("line {line}: the name \"none\" is reserved")]
    ReservedName { line: usize },
    #[error("line {line}: {name:?} is not defined in this policy")]
    UndefinedName { line: usize, name: String },
    #[error("line {line}: {name:?} is defined later, on line {defined_at}; groups and the quorum may only name witnesses and groups defined before them (which also rules out cycles)")]
    ForwardReference {
        line: usize,
        name: String,
        defined_at: usize,
    },
    #[error("line {line}: group {name:?} names itself (a cycle)")]
    SelfReference { line: usize, name: String },
    #[error("line {line}: \"none\" cannot be a group member")]
    NoneAsMember { line: usize },
    #[error("line {line}: {name:?} is listed twice in the group")]
    DuplicateMember { line: usize, name: String },
    #[error("line {line}: threshold {seen:?} is not all, any or a decimal number")]
    BadThreshold { line: usize, seen: String },
    #[error("line {line}: threshold {k} is out of range, want 1 to {n} (the number of members)")]
    ThresholdOutOfRange { line: usize, k: u64, n: usize },
    #[error("line {line}: a second quorum line (the first is on line {first_line})")]
    DuplicateQuorum { line: usize, first_line: usize },
    #[error("policy has no quorum line (write \"quorum none\" to require no witness)")]
    MissingQuorum,
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    #[error("{0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("checkpoint is not signed by a log of the policy (verified signers: {})", list(.0))]
    NoLogSignature(Vec<String>),
    #[error("witness quorum {quorum:?} not met: valid cosignatures from {}{}", list(.cosigned), future_note(.future))]
    QuorumNotMet {
        quorum: String,
        cosigned: Vec<String>,
        future: Vec<String>,
    },
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

fn future_note(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!(
            "; ignored as dated more than {MAX_COSIGNATURE_SKEW_SECS}s in the future: {}",
            v.join(", ")
        )
    }
}

impl Policy {
    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge(text.len()));
        }
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() > MAX_POLICY_LINES {
            return Err(PolicyError::TooManyLines(lines.len()));
        }
        let mut fields: Vec<(usize, Vec<&str>)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let lineno = i + 1;
            if let Some(&byte) = line
                .as_bytes()
                .iter()
                .find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f)
            {
                return Err(PolicyError::BadCharacter { line: lineno, byte });
            }
            let f: Vec<&str> = line.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
            if f.is_empty() || f[0].starts_with('#') {
                continue;
            }
            fields.push((lineno, f));
        }

        // Where each name is first defined, to tell a forward reference
        // from an undefined name.
        let mut defined_at: HashMap<&str, usize> = HashMap::new();
        for (lineno, f) in &fields {
            if matches!(f[0], "witness" | "group") && f.len() > 1 {
                defined_at.entry(f[1]).or_insert(*lineno);
            }
        }

        let mut p = Parser {
            policy: Policy {
                logs: Vec::new(),
                witnesses: Vec::new(),
                groups: Vec::new(),
                quorum: None,
            },
            names: HashMap::new(),
            log_lines: Vec::new(),
            quorum_line: None,
            defined_at,
        };
        for (lineno, f) in &fields {
            p.line(*lineno, f)?;
        }
        if p.quorum_line.is_none() {
            return Err(PolicyError::MissingQuorum);
        }
        Ok(p.policy)
    }

    /// The `log` lines, in order.
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The keys of the `log` lines.
    pub fn log_keys(&self) -> Vec<VerifierKey> {
        self.logs.iter().map(|l| l.key.clone()).collect()
    }

    /// The `witness` lines, in order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The cosignature verifier keys of the `witness` lines.
    pub fn witness_keys(&self) -> Vec<VerifierKey> {
        self.witnesses.iter().map(|w| w.key.clone()).collect()
    }

    /// The quorum's name, or `None` for `quorum none`.
    pub fn quorum_name(&self) -> Option<&str> {
        self.quorum.map(|m| self.member_name(m))
    }

    fn member_name(&self, m: Member) -> &str {
        match m {
            Member::Witness(i) => &self.witnesses[i].name,
            Member::Group(i) => &self.groups[i].name,
        }
    }

    /// Whether the quorum holds when exactly the witnesses marked in
    /// `cosigned` (indexed like [`Policy::witnesses`]) cosigned.
    fn quorum_holds(&self, cosigned: &[bool]) -> bool {
        // Groups only name earlier groups, so one pass in order settles
        // every group.
        let mut group_holds = Vec::with_capacity(self.groups.len());
        let holds = |m: Member, group_holds: &[bool]| match m {
            Member::Witness(i) => cosigned.get(i).copied().unwrap_or(false),
            Member::Group(i) => group_holds.get(i).copied().unwrap_or(false),
        };
        for g in &self.groups {
            let n = g
                .members
                .iter()
                .filter(|&&m| holds(m, &group_holds))
                .count();
            group_holds.push(n >= g.threshold);
        }
        match self.quorum {
            None => true,
            Some(m) => holds(m, &group_holds),
        }
    }

    /// The newest time at which `cosigners` (that met the quorum) met it:
    /// the largest cosignature time `t` such that the cosignatures dated
    /// `t` or later satisfy the quorum on their own. `None` for
    /// `quorum none` (no witness vouches for any time).
    fn quorum_time(&self, cosigners: &[Cosigner]) -> Option<u64> {
        self.quorum?;
        let mut times: Vec<u64> = cosigners.iter().map(|c| c.time).collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.dedup();
        times.into_iter().find(|&t| {
            let mut cosigned = vec![false; self.witnesses.len()];
            for c in cosigners.iter().filter(|c| c.time >= t) {
                if let Some(i) = self.witnesses.iter().position(|w| w.name == c.witness) {
                    cosigned[i] = true;
                }
            }
            self.quorum_holds(&cosigned)
        })
    }

    /// Checks a signed checkpoint note against the policy at time `now`
    /// (POSIX seconds): its text must be a checkpoint, a `log` key must
    /// have signed it, and the quorum must hold over the cosignatures of
    /// listed witnesses. Cosignatures dated more than
    /// [`MAX_COSIGNATURE_SKEW_SECS`] after `now` do not count. As in
    /// [`note::open`], any signature by a listed key that fails to verify
    /// rejects the note.
    pub fn verify(&self, msg: &[u8], now: u64) -> Result<PolicyVerified, PolicyError> {
        let mut keys = self.log_keys();
        keys.extend(self.witness_keys());
        let note = note::open(msg, &keys)?;
        let checkpoint = Checkpoint::parse(&note.text)?;

        let is = |k: &VerifierKey, name: &str, id: u32| k.name() == name && k.key_id() == id;
        let log = note
            .verified
            .iter()
            .find(|v| self.logs.iter().any(|l| is(&l.key, &v.name, v.key_id)))
            .ok_or_else(|| {
                PolicyError::NoLogSignature(
                    note.verified
                        .iter()
                        .map(|v| format!("{}+{:08x}", v.name, v.key_id))
                        .collect(),
                )
            })?;

        let mut cosigned = vec![false; self.witnesses.len()];
        let mut cosigners = Vec::new();
        let mut future = Vec::new();
        let latest = now.saturating_add(MAX_COSIGNATURE_SKEW_SECS);
        for v in &note.verified {
            let Some(time) = v.cosignature_time() else {
                continue;
            };
            let Some(i) = self
                .witnesses
                .iter()
                .position(|w| is(&w.key, &v.name, v.key_id))
            else {
                continue;
            };
            let witness = self.witnesses[i].name.clone();
            if time > latest {
                future.push(format!("{witness} (time {time})"));
                continue;
            }
            cosigned[i] = true;
            cosigners.push(Cosigner {
                witness,
                key_name: v.name.clone(),
                time,
            });
        }
        if !self.quorum_holds(&cosigned) {
            return Err(PolicyError::QuorumNotMet {
                quorum: self.quorum_name().unwrap_or("none").to_string(),
                cosigned: cosigners.iter().map(|c| c.witness.clone()).collect(),
                future,
            });
        }
        let quorum_time = self.quorum_time(&cosigners);
        Ok(PolicyVerified {
            checkpoint,
            log: log.name.clone(),
            text: note.text,
            cosigners,
            quorum_time,
        })
    }
}

impl fmt::Display for Policy {
    /// The policy in canonical form: logs, witnesses, groups, quorum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.logs {
            write!(f, "log {}", l.key)?;
            if let Some(u) = &l.url {
                write!(f, " {u}")?;
            }
            writeln!(f)?;
        }
        for w in &self.witnesses {
            write!(f, "witness {} {}", w.name, w.key)?;
            if let Some(u) = &w.url {
                write!(f, " {u}")?;
            }
            writeln!(f)?;
        }
        for g in &self.groups {
            let k = if g.threshold == g.members.len() {
                "all".to_string()
            } else {
                g.threshold.to_string()
            };
            write!(f, "group {} {k}", g.name)?;
            for &m in &g.members {
                write!(f, " {}", self.member_name(m))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "quorum {}", self.quorum_name().unwrap_or("none"))
    }
}

struct Parser<'a> {
    policy: Policy,
    names: HashMap<&'a str, (Member, usize)>,
    log_lines: Vec<usize>,
    quorum_line: Option<usize>,
    defined_at: HashMap<&'a str, usize>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, line: usize, f: &[&'a str]) -> Result<(), PolicyError> {
        let count = |keyword, want, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(PolicyError::WrongFieldCount {
                    line,
                    keyword,
                    want,
                    seen: f.len(),
                })
            }
        };
        match f[0] {
            "log" => {
                count(
                    "log",
                    "2 or 3 (log <vkey> [<url>])",
                    matches!(f.len(), 2 | 3),
                )?;
                let key = parse_key(line, f[1])?;
                if let Some(i) = self.policy.logs.iter().position(|l| same_key(&l.key, &key)) {
                    return Err(PolicyError::DuplicateLog {
                        line,
                        first_line: self.log_lines[i],
                    });
                }
                self.policy.logs.push(PolicyLog {
                    key,
                    url: f.get(2).map(|s| s.to_string()),
                });
                self.log_lines.push(line);
            }
            "witness" => {
                count(
                    "witness",
                    "3 or 4 (witness <name> <vkey> [<url>])",
                    matches!(f.len(), 3 | 4),
                )?;
                let name = f[1];
                self.define(line, name)?;
                let key = parse_key(line, f[2])?
                    .to_cosigner()
                    .map_err(|error| PolicyError::BadKey { line, error })?;
                if let Some(other) = self
                    .policy
                    .witnesses
                    .iter()
                    .find(|w| w.key.public_key() == key.public_key())
                {
                    return Err(PolicyError::DuplicateWitnessKey {
                        line,
                        name: name.to_string(),
                        other: other.name.clone(),
                    });
                }
                let idx = self.policy.witnesses.len();
                self.policy.witnesses.push(PolicyWitness {
                    name: name.to_string(),
                    key,
                    url: f.get(3).map(|s| s.to_string()),
                });
                self.names.insert(name, (Member::Witness(idx), line));
            }
            "group" => {
                count(
                    "group",
                    "at least 4 (group <name> <all|any|k> <name>...)",
                    f.len() >= 4,
                )?;
                let name = f[1];
                self.define(line, name)?;
                let mut members = Vec::with_capacity(f.len() - 3);
                for &m in &f[3..] {
                    if m == "none" {
                        return Err(PolicyError::NoneAsMember { line });
                    }
                    if m == name {
                        return Err(PolicyError::SelfReference {
                            line,
                            name: name.to_string(),
                        });
                    }
                    let member = self.lookup(line, m)?;
                    if members.contains(&member) {
                        return Err(PolicyError::DuplicateMember {
                            line,
                            name: m.to_string(),
                        });
                    }
                    members.push(member);
                }
                let n = members.len();
                let threshold = match f[2] {
                    "all" => n,
                    "any" => 1,
                    k => {
                        let k = parse_decimal(k).ok_or_else(|| PolicyError::BadThreshold {
                            line,
                            seen: k.chars().take(32).collect(),
                        })?;
                        if k == 0 || k > n as u64 {
                            return Err(PolicyError::ThresholdOutOfRange { line, k, n });
                        }
                        k as usize
                    }
                };
                let idx = self.policy.groups.len();
                self.policy.groups.push(Group {
                    name: name.to_string(),
                    threshold,
                    members,
                });
                self.names.insert(name, (Member::Group(idx), line));
            }
            "quorum" => {
                count("quorum", "2 (quorum <name>|none)", f.len() == 2)?;
                if let Some(first_line) = self.quorum_line {
                    return Err(PolicyError::DuplicateQuorum { line, first_line });
                }
                self.policy.quorum = match f[1] {
                    "none" => None,
                    name => Some(self.lookup(line, name)?),
                };
                self.quorum_line = Some(line);
            }
            other => {
                return Err(PolicyError::UnknownKeyword {
                    line,
                    keyword: other.chars().take(32).collect(),
                })
            }
        }
        Ok(())
    }

    fn define(&self, line: usize, name: &str) -> Result<(), PolicyError> {
        if name == "none" {
            return Err(PolicyError::ReservedName { line });
        }
        if let Some(&(_, first_line)) = self.names.get(name) {
            return Err(PolicyError::DuplicateName {
                line,
                name: name.to_string(),
                first_line,
            });
        }
        Ok(())
    }

    fn lookup(&self, line: usize, name: &str) -> Result<Member, PolicyError> {
        if let Some(&(m, _)) = self.names.get(name) {
            return Ok(m);
        }
        Err(match self.defined_at.get(name) {
            Some(&defined_at) => PolicyError::ForwardReference {
                line,
                name: name.to_string(),
                defined_at,
            },
            None => PolicyError::UndefinedName {
                line,
                name: name.to_string(),
            },
        })
    }
}

fn parse_key(line: usize, s: &str) -> Result<VerifierKey, PolicyError> {
    s.parse()
        .map_err(|error| PolicyError::BadKey { line, error })
}

/// Two vkeys are duplicates when they wrap the same public key, whatever
/// their names, IDs or (Ed25519 vs cosignature) types.
fn same_key(a: &VerifierKey, b: &VerifierKey) -> bool {
    a.public_key() == b.public_key()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::note::{add_signatures, sign, Signer};
    use proptest::prelude::*;

    // A real cosigned checkpoint of the arche2025h1 staging CT log, with a
    // RFC 6962 STH signature (type 0x05, unknown here), an Ed25519 log
    // signature and four witness cosignatures. From florolf/tlog-scales
    // tests/test_signing.py. Log key from the same file; witness keys as
    // their operators publish them (transparency.dev witnesses page and the
    // public witness network lists); little-garden is used in its plain
    // Ed25519 (0x01) publication, as in transparency-dev/tessera's README,
    // the others in their 0x04 publication.
    const ARCHE: &str = "arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

\u{2014} arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u{2014} arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u{2014} transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u{2014} witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
\u{2014} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
\u{2014} witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
";
    const ARCHE_LOG: &str = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f";
    const LITTLE_GARDEN_01: &str = "transparency.dev/DEV:witness-little-garden+4b7fca75+AStusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM";
    const LITTLE_GARDEN_04: &str = "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM";
    const SMARTIT: &str =
        "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO";
    const REMORA: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
    const STAGEMOLE: &str =
        "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv";
    /// The cosignatures' timestamp (0x6a122120).
    const ARCHE_TIME: u64 = 1_779_573_024;

    fn arche_policy(quorum: &str) -> String {
        format!(
            "# real witnesses\n\
             log {ARCHE_LOG} https://arche2025h1.staging.ct.transparency.dev/\n\
             \n\
             witness lg {LITTLE_GARDEN_01} https://api.transparency.dev/dev/witness/little-garden\n\
             witness smartit {SMARTIT}\n\
             \twitness   remora\t{REMORA}  \n\
             witness stagemole {STAGEMOLE}\n\
             group google any lg\n\
             group others 2 smartit remora stagemole\n\
             group both all google others\n\
             group all4 all lg smartit remora stagemole\n\
             quorum {quorum}\n"
        )
    }

    #[test]
    fn a_real_cosigned_checkpoint_satisfies_a_four_witness_policy() {
        let p = Policy::parse(&arche_policy("both")).unwrap();
        let v = p.verify(ARCHE.as_bytes(), ARCHE_TIME + 3600).unwrap();
        assert_eq!(v.log, "arche2025h1.staging.ct.transparency.dev");
        assert_eq!(v.checkpoint.size, 1432088532);
        assert_eq!(
            v.cosigners,
            vec![
                Cosigner {
                    witness: "lg".into(),
                    key_name: "transparency.dev/DEV:witness-little-garden".into(),
                    time: ARCHE_TIME
                },
                Cosigner {
                    witness: "smartit".into(),
                    key_name: "witness1.smartit.nu/witness1".into(),
                    time: ARCHE_TIME
                },
                Cosigner {
                    witness: "remora".into(),
                    key_name: "remora.n621.de".into(),
                    time: ARCHE_TIME
                },
                Cosigner {
                    witness: "stagemole".into(),
                    key_name: "witness.stagemole.eu".into(),
                    time: ARCHE_TIME
                },
            ]
        );
        assert_eq!(p.witnesses()[0].key.to_string(), LITTLE_GARDEN_04);
        assert_eq!(
            p.logs()[0].url.as_deref(),
            Some("https://arche2025h1.staging.ct.transparency.dev/")
        );
    }

    #[test]
    fn both_publications_of_a_real_witness_key_verify_its_cosignature() {
        for k in [LITTLE_GARDEN_01, LITTLE_GARDEN_04] {
            let text = format!("log {ARCHE_LOG}\nwitness lg {k}\nquorum lg\n");
            let v = Policy::parse(&text)
                .unwrap()
                .verify(ARCHE.as_bytes(), ARCHE_TIME)
                .unwrap();
            assert_eq!(v.cosigners.len(), 1);
        }
    }

    #[test]
    fn every_one_bit_change_of_the_real_cosigned_checkpoint_fails_the_policy() {
        // With all four witnesses required, changing the text or any known
        // signature line fails. The RFC 6962 STH line is by a key the
        // policy does not list, so changes there are ignored, as the
        // signed-note spec requires.
        let p = Policy::parse(&arche_policy("all4")).unwrap();
        let sth_start = ARCHE.find("\n\n").unwrap() + 2;
        let sth_end = sth_start + ARCHE[sth_start..].find('\n').unwrap();
        for bit in 0..ARCHE.len() * 8 {
            let mut m = ARCHE.as_bytes().to_vec();
            m[bit / 8] ^= 1 << (bit % 8);
            let in_sth_line = (sth_start..sth_end).contains(&(bit / 8));
            if !in_sth_line {
                assert!(p.verify(&m, ARCHE_TIME).is_err(), "bit {bit}");
            }
        }
    }

    #[test]
    fn cosignatures_dated_in_the_future_do_not_count() {
        let p = Policy::parse(&arche_policy("both")).unwrap();
        p.verify(ARCHE.as_bytes(), ARCHE_TIME - MAX_COSIGNATURE_SKEW_SECS)
            .unwrap();
        let err = p
            .verify(ARCHE.as_bytes(), ARCHE_TIME - MAX_COSIGNATURE_SKEW_SECS - 1)
            .unwrap_err();
        let PolicyError::QuorumNotMet {
            future, cosigned, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(cosigned.is_empty());
        assert_eq!(future.len(), 4);
        assert!(err.to_string().contains("in the future"));
    }

    #[test]
    fn a_missing_cosignature_fails_the_quorum_and_names_who_signed() {
        // Drop little-garden's line: "google" no longer holds.
        let without: String = ARCHE
            .lines()
            .filter(|l| !l.contains("little-garden"))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = Policy::parse(&arche_policy("both")).unwrap();
        let err = p.verify(without.as_bytes(), ARCHE_TIME).unwrap_err();
        assert_eq!(
            err,
            PolicyError::QuorumNotMet {
                quorum: "both".into(),
                cosigned: vec!["smartit".into(), "remora".into(), "stagemole".into()],
                future: vec![],
            }
        );
        // "others" alone (2 of 3) still holds.
        let p = Policy::parse(&arche_policy("others")).unwrap();
        p.verify(without.as_bytes(), ARCHE_TIME).unwrap();
    }

    #[test]
    fn a_checkpoint_not_signed_by_a_listed_log_is_refused() {
        let other = Signer::from_seed("example.com/other", &[1; 32]).unwrap();
        let text = format!(
            "log {}\nwitness lg {LITTLE_GARDEN_01}\nquorum lg\n",
            other.verifier_key()
        );
        let p = Policy::parse(&text).unwrap();
        assert_eq!(
            p.verify(ARCHE.as_bytes(), ARCHE_TIME),
            Err(PolicyError::NoLogSignature(vec![
                "transparency.dev/DEV:witness-little-garden+d8042a87".into()
            ]))
        );
        // Without any known signer the note itself is refused.
        let text = format!("log {}\nquorum none\n", other.verifier_key());
        let err = Policy::parse(&text)
            .unwrap()
            .verify(ARCHE.as_bytes(), 0)
            .unwrap_err();
        assert!(matches!(err, PolicyError::Note(NoteError::NotVerified(_))));
    }

    fn keys(n: usize) -> Vec<Signer> {
        (0..n)
            .map(|i| Signer::from_seed(&format!("w{i}.example"), &[i as u8 + 10; 32]).unwrap())
            .collect()
    }

    /// A checkpoint signed by `log` and cosigned at time 100 by `by`.
    fn cosigned(log: &Signer, by: &[&Signer]) -> Vec<u8> {
        let msg = sign(
            "example.com/log\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            &[log],
        )
        .unwrap();
        let cos: Vec<Signer> = by.iter().map(|s| s.cosigner(100).unwrap()).collect();
        let refs: Vec<&Signer> = cos.iter().collect();
        add_signatures(&msg, &refs).unwrap()
    }

    #[test]
    fn k_of_n_and_nested_groups_hold_exactly_when_enough_cosign() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let w = keys(6);
        let mut text = format!("log {}\n", log.verifier_key());
        for (i, s) in w.iter().enumerate() {
            text.push_str(&format!("witness x{i} {}\n", s.verifier_key()));
        }
        text.push_str("group a 2 x0 x1 x2\ngroup b any x3 x4\ngroup top all a b\nquorum top\n");
        let p = Policy::parse(&text).unwrap();
        let check = |idx: &[usize]| {
            let by: Vec<&Signer> = idx.iter().map(|&i| &w[i]).collect();
            p.verify(&cosigned(&log, &by), 200).is_ok()
        };
        assert!(check(&[0, 1, 3]));
        assert!(check(&[1, 2, 4]));
        assert!(check(&[0, 1, 2, 3, 4, 5]));
        assert!(!check(&[0, 3]));
        assert!(!check(&[0, 1]));
        assert!(!check(&[0, 1, 2]));
        assert!(!check(&[0, 5, 3, 4]));
        assert!(!check(&[]));
    }

    #[test]
    fn quorum_time_is_the_newest_time_the_quorum_was_met() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let w = keys(3);
        let mut text = format!("log {}\n", log.verifier_key());
        for (i, s) in w.iter().enumerate() {
            text.push_str(&format!("witness x{i} {}\n", s.verifier_key()));
        }
        text.push_str("group two 2 x0 x1 x2\nquorum two\n");
        let p = Policy::parse(&text).unwrap();
        let msg = sign(
            "example.com/log\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            &[&log],
        )
        .unwrap();
        let at = |times: &[(usize, u64)]| {
            let cos: Vec<Signer> = times
                .iter()
                .map(|&(i, t)| w[i].cosigner(t).unwrap())
                .collect();
            let refs: Vec<&Signer> = cos.iter().collect();
            p.verify(&add_signatures(&msg, &refs).unwrap(), 1000)
                .map(|v| v.quorum_time)
        };
        // Two of three: the second-newest cosignature dates the quorum.
        assert_eq!(at(&[(0, 100), (1, 300), (2, 200)]), Ok(Some(200)));
        assert_eq!(at(&[(0, 500), (1, 300)]), Ok(Some(300)));
        assert!(at(&[(0, 500)]).is_err());
        // quorum none: no witness vouches for a time.
        let none = Policy::parse(&format!("log {}\nquorum none\n", log.verifier_key())).unwrap();
        assert_eq!(none.verify(&msg, 0).unwrap().quorum_time, None);
    }

    #[test]
    fn quorum_none_needs_only_the_log() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let p = Policy::parse(&format!("log {}\nquorum none\n", log.verifier_key())).unwrap();
        assert_eq!(p.quorum_name(), None);
        let v = p.verify(&cosigned(&log, &[]), 0).unwrap();
        assert!(v.cosigners.is_empty());
    }

    #[test]
    fn a_single_witness_quorum() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let w = keys(2);
        let text = format!(
            "log {}\nwitness a {}\nwitness b {}\nquorum a\n",
            log.verifier_key(),
            w[0].verifier_key(),
            w[1].verifier_key()
        );
        let p = Policy::parse(&text).unwrap();
        assert!(p.verify(&cosigned(&log, &[&w[0]]), 100).is_ok());
        assert!(p.verify(&cosigned(&log, &[&w[1]]), 100).is_err());
    }

    #[test]
    fn a_bad_cosignature_by_a_listed_witness_rejects_the_checkpoint() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let w = keys(2);
        let text = format!(
            "log {}\nwitness a {}\nwitness b {}\ngroup g any a b\nquorum g\n",
            log.verifier_key(),
            w[0].verifier_key(),
            w[1].verifier_key()
        );
        let p = Policy::parse(&text).unwrap();
        let msg = cosigned(&log, &[&w[0], &w[1]]);
        let mut note = note::Note::parse(&msg).unwrap();
        note.signatures[2].signature[20] ^= 1;
        assert!(matches!(
            p.verify(&note.to_bytes(), 100),
            Err(PolicyError::Note(NoteError::InvalidSignature { .. }))
        ));
    }

    #[test]
    fn supports_sixty_four_logs_witnesses_and_groups() {
        let logs: Vec<Signer> = (0..64)
            .map(|i| Signer::from_seed(&format!("log{i}.example"), &[i as u8 + 100; 32]).unwrap())
            .collect();
        let w = keys(64);
        let mut text = String::new();
        for l in &logs {
            text.push_str(&format!("log {}\n", l.verifier_key()));
        }
        for (i, s) in w.iter().enumerate() {
            text.push_str(&format!("witness w{i} {}\n", s.verifier_key()));
        }
        // A chain of 64 nested groups: g0 = any w0; gi = 1-of (gi-1, wi).
        text.push_str("group g0 any w0\n");
        for i in 1..64 {
            text.push_str(&format!("group g{i} 1 g{} w{i}\n", i - 1));
        }
        text.push_str("quorum g63\n");
        let p = Policy::parse(&text).unwrap();
        assert_eq!(p.logs().len(), 64);
        assert_eq!(p.witnesses().len(), 64);
        assert!(p.verify(&cosigned(&logs[63], &[&w[0]]), 100).is_ok());
        assert!(p.verify(&cosigned(&logs[0], &[]), 100).is_err());
    }

    #[test]
    fn the_same_witness_key_cannot_be_listed_twice() {
        let w = keys(1);
        let plain = w[0].verifier_key();
        let cos = w[0].cosigner(0).unwrap().verifier_key();
        // Same key under two names, or as 0x01 and 0x04: one key, one place.
        let renamed =
            VerifierKey::new_ed25519("other.name", plain.public_key().try_into().unwrap()).unwrap();
        for second in [plain.to_string(), cos.to_string(), renamed.to_string()] {
            let text = format!("witness a {plain}\nwitness b {second}\ngroup g 2 a b\nquorum g\n");
            assert_eq!(
                Policy::parse(&text),
                Err(PolicyError::DuplicateWitnessKey {
                    line: 2,
                    name: "b".into(),
                    other: "a".into()
                })
            );
        }
    }

    #[test]
    fn refuses_malformed_policies_with_a_clear_error() {
        let w = keys(2);
        let (a, b) = (w[0].verifier_key(), w[1].verifier_key());
        let cases: Vec<(String, PolicyError)> = vec![
            (format!("witness a {a}\n"), PolicyError::MissingQuorum),
            (String::new(), PolicyError::MissingQuorum),
            ("# only a comment\n".into(), PolicyError::MissingQuorum),
            ("quorum none\nquorum none\n".into(), PolicyError::DuplicateQuorum { line: 2, first_line: 1 }),
            ("quorum x\n".into(), PolicyError::UndefinedName { line: 1, name: "x".into() }),
            ("quorum\n".into(), PolicyError::WrongFieldCount { line: 1, keyword: "quorum", want: "2 (quorum <name>|none)", seen: 1 }),
            ("logs x\n".into(), PolicyError::UnknownKeyword { line: 1, keyword: "logs".into() }),
            (format!("log {a} url extra\n"), PolicyError::WrongFieldCount { line: 1, keyword: "log", want: "2 or 3 (log <vkey> [<url>])", seen: 4 }),
            (format!("witness {a}\n"), PolicyError::WrongFieldCount { line: 1, keyword: "witness", want: "3 or 4 (witness <name> <vkey> [<url>])", seen: 2 }),
            (format!("witness a {a}\ngroup g any\n"), PolicyError::WrongFieldCount { line: 2, keyword: "group", want: "at least 4 (group <name> <all|any|k> <name>...)", seen: 3 }),
            ("log nonsense\n".into(), PolicyError::BadKey { line: 1, error: KeyError::Format { want: "<name>+<8 hex digits>+<base64 key>" } }),
            (
                "witness r rekor.sigstore.dev+c0d23d6a+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+smGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=\n".into(),
                PolicyError::BadKey { line: 1, error: KeyError::NotEd25519 },
            ),
            (format!("log {a}\nlog {a}\n"), PolicyError::DuplicateLog { line: 2, first_line: 1 }),
            (format!("witness a {a}\nwitness a {b}\n"), PolicyError::DuplicateName { line: 2, name: "a".into(), first_line: 1 }),
            (format!("witness a {a}\ngroup a any a\n"), PolicyError::DuplicateName { line: 2, name: "a".into(), first_line: 1 }),
            (format!("witness none {a}\n"), PolicyError::ReservedName { line: 1 }),
            (format!("witness a {a}\ngroup g any a none\n"), PolicyError::NoneAsMember { line: 2 }),
            (format!("witness a {a}\ngroup g any a a\n"), PolicyError::DuplicateMember { line: 2, name: "a".into() }),
            (format!("witness a {a}\ngroup g 0 a\n"), PolicyError::ThresholdOutOfRange { line: 2, k: 0, n: 1 }),
            (format!("witness a {a}\ngroup g 2 a\n"), PolicyError::ThresholdOutOfRange { line: 2, k: 2, n: 1 }),
            (format!("witness a {a}\ngroup g 99999999999999999999999 a\n"), PolicyError::BadThreshold { line: 2, seen: "99999999999999999999999".into() }),
            (format!("witness a {a}\ngroup g 01 a\n"), PolicyError::BadThreshold { line: 2, seen: "01".into() }),
            (format!("witness a {a}\ngroup g some a\n"), PolicyError::BadThreshold { line: 2, seen: "some".into() }),
            (format!("witness a {a}\ngroup g any a b\n"), PolicyError::UndefinedName { line: 2, name: "b".into() }),
            // Cycles: a self reference, and two groups naming each other.
            (format!("witness a {a}\ngroup g any a g\n"), PolicyError::SelfReference { line: 2, name: "g".into() }),
            (
                format!("witness a {a}\ngroup g1 any a g2\ngroup g2 any a g1\nquorum g1\n"),
                PolicyError::ForwardReference { line: 2, name: "g2".into(), defined_at: 3 },
            ),
            (
                format!("quorum b\nwitness b {b}\n"),
                PolicyError::ForwardReference { line: 1, name: "b".into(), defined_at: 2 },
            ),
            (format!("witness a {a}\r\nquorum a\n"), PolicyError::BadCharacter { line: 1, byte: b'\r' }),
            (format!("witness a {a}\nquorum a\x00\n"), PolicyError::BadCharacter { line: 2, byte: 0 }),
            ("x".repeat(MAX_POLICY_SIZE + 1), PolicyError::TooLarge(MAX_POLICY_SIZE + 1)),
            ("\n".repeat(MAX_POLICY_LINES + 1), PolicyError::TooManyLines(MAX_POLICY_LINES + 1)),
        ];
        for (text, want) in cases {
            let got = Policy::parse(&text);
            assert_eq!(got, Err(want.clone()), "{text:?}");
            // Every error renders to one line that names the problem.
            let msg = want.to_string();
            assert!(!msg.contains('\n') && !msg.is_empty());
        }
    }

    #[test]
    fn comments_blank_lines_and_tabs_are_allowed() {
        let w = keys(2);
        let text = format!(
            "  # comment\n\t\n\twitness\ta {}   # not a url? it is: 4 fields\nwitness b {}\n  quorum  b  \n",
            w[0].verifier_key(),
            w[1].verifier_key()
        );
        // The trailing "# not..." is not a comment (comments start a line),
        // so line 3 has too many fields.
        assert!(matches!(
            Policy::parse(&text),
            Err(PolicyError::WrongFieldCount { line: 3, .. })
        ));
        let text = format!(
            "  # comment\n\t\n\twitness\ta {}\nwitness b {}\n  quorum  b  ",
            w[0].verifier_key(),
            w[1].verifier_key()
        );
        let p = Policy::parse(&text).unwrap();
        assert_eq!(p.quorum_name(), Some("b"));
    }

    #[test]
    fn display_prints_a_policy_that_parses_back_the_same() {
        let p = Policy::parse(&arche_policy("both")).unwrap();
        let again = Policy::parse(&p.to_string()).unwrap();
        assert_eq!(again, p);
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "(?s)[ -~\t\n]{0,400}") {
            let _ = Policy::parse(&text);
        }

        #[test]
        fn parsing_keyword_soup_never_panics(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just("log".to_string()), Just("witness".to_string()),
                        Just("group".to_string()), Just("quorum".to_string()),
                        Just("any".to_string()), Just("all".to_string()),
                        Just("none".to_string()), Just("a".to_string()), Just("b".to_string()),
                        Just("0".to_string()), Just("2".to_string()),
                        Just("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2".to_string()),
                    ],
                    0..6,
                ),
                0..12,
            ),
        ) {
            let text: String = lines.iter().map(|l| format!("{}\n", l.join(" "))).collect();
            if let Ok(p) = Policy::parse(&text) {
                let _ = p.verify(ARCHE.as_bytes(), ARCHE_TIME);
            }
        }
    }
}
