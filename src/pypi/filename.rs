//! Distribution file names (wheels and sdists) and their "ultranormal"
//! form: what a PEP 740 attestation's subject name is compared by, as
//! PyPI's own verifier does it. The project name in its normal form with
//! `_` for `-`, the version in PEP 440 normal form, and a wheel's
//! compressed tag sets each sorted, so that two spellings of one file
//! compare equal and two different files never do.
//!
//! Versions are parsed and normalised by `pep440_rs` (the PEP 440
//! implementation `uv` uses).

use std::collections::BTreeSet;
use std::str::FromStr as _;

use pep440_rs::Version;

use super::name::ProjectName;

/// What kind of distribution a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistKind {
    Wheel,
    SdistTarGz,
    SdistZip,
}

/// A parsed distribution file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFilename {
    pub project: ProjectName,
    pub version: Version,
    pub kind: DistKind,
    /// A wheel's build tag: its number and the rest.
    pub build: Option<(u64, String)>,
    /// A wheel's interpreter, ABI and platform tags, each set sorted and
    /// lower-cased.
    pub tags: [BTreeSet<String>; 3],
}

/// Why a file name is not a distribution file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a distribution file name ({reason}): {shown:?}")]
pub struct FilenameError {
    pub reason: String,
    pub shown: String,
}

fn err(name: &str, reason: impl Into<String>) -> FilenameError {
    FilenameError {
        reason: reason.into(),
        shown: name.chars().take(120).collect(),
    }
}

/// Longest file name parsed.
const MAX_FILENAME: usize = 255;

fn version(name: &str, v: &str) -> Result<Version, FilenameError> {
    Version::from_str(v).map_err(|e| err(name, format!("version {v:?}: {e}")))
}

fn tag_set(name: &str, part: &str) -> Result<BTreeSet<String>, FilenameError> {
    let mut set = BTreeSet::new();
    for t in part.split('.') {
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(err(name, format!("tag {part:?}")));
        }
        set.insert(t.to_ascii_lowercase());
    }
    Ok(set)
}

impl DistFilename {
    /// Parses a wheel (`name-version(-build)?-python-abi-platform.whl`) or
    /// sdist (`name-version.tar.gz` / `.zip`) file name.
    pub fn parse(filename: &str) -> Result<DistFilename, FilenameError> {
        if filename.len() > MAX_FILENAME || !filename.is_ascii() {
            return Err(err(filename, "too long or not ASCII"));
        }
        if let Some(stem) = filename.strip_suffix(".whl") {
            let parts: Vec<&str> = stem.split('-').collect();
            let (name, ver, build, tags) = match parts.as_slice() {
                [n, v, py, abi, plat] => (*n, *v, None, [*py, *abi, *plat]),
                [n, v, b, py, abi, plat] => (*n, *v, Some(*b), [*py, *abi, *plat]),
                _ => return Err(err(filename, "a wheel name has 5 or 6 parts")),
            };
            if !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            {
                return Err(err(filename, "project part"));
            }
            let project = ProjectName::parse(name).map_err(|e| err(filename, e.to_string()))?;
            let build = match build {
                None => None,
                Some(b) => {
                    let digits = b.bytes().take_while(u8::is_ascii_digit).count();
                    let n = b[..digits]
                        .parse::<u64>()
                        .map_err(|_| err(filename, "build tag must start with a number"))?;
                    Some((n, b[digits..].to_string()))
                }
            };
            return Ok(DistFilename {
                project,
                version: version(filename, ver)?,
                kind: DistKind::Wheel,
                build,
                tags: [
                    tag_set(filename, tags[0])?,
                    tag_set(filename, tags[1])?,
                    tag_set(filename, tags[2])?,
                ],
            });
        }
        let (stem, kind) = if let Some(s) = filename.strip_suffix(".tar.gz") {
            (s, DistKind::SdistTarGz)
        } else if let Some(s) = filename.strip_suffix(".zip") {
            (s, DistKind::SdistZip)
        } else {
            return Err(err(filename, "not .whl, .tar.gz or .zip"));
        };
        let Some((name, ver)) = stem.rsplit_once('-') else {
            return Err(err(filename, "no '-' between name and version"));
        };
        Ok(DistFilename {
            project: ProjectName::parse(name).map_err(|e| err(filename, e.to_string()))?,
            version: version(filename, ver)?,
            kind,
            build: None,
            tags: Default::default(),
        })
    }

    /// The ultranormal form (see the module documentation).
    pub fn ultranormal(&self) -> String {
        let name = self.project.as_str().replace('-', "_");
        let ver = self.version.to_string();
        match self.kind {
            DistKind::SdistTarGz => format!("{name}-{ver}.tar.gz"),
            DistKind::SdistZip => format!("{name}-{ver}.zip"),
            DistKind::Wheel => {
                let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(".");
                let [py, abi, plat] = &self.tags;
                let build = self
                    .build
                    .as_ref()
                    .map(|(n, rest)| format!("-{n}{rest}"))
                    .unwrap_or_default();
                format!(
                    "{name}-{ver}{build}-{}-{}-{}.whl",
                    join(py),
                    join(abi),
                    join(plat)
                )
            }
        }
    }
}

/// Whether two file names name the same distribution.
pub fn same_distribution(a: &str, b: &str) -> Result<bool, FilenameError> {
    Ok(DistFilename::parse(a)?.ultranormal() == DistFilename::parse(b)?.ultranormal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_names_take_their_normal_forms() {
        for (raw, want) in [
            ("Sample.Project-1.0.tar.gz", "sample_project-1.0.tar.gz"),
            // The version is what follows the last '-' (as `packaging` reads it).
            ("sample-project-01.02-1.zip", "sample_project_01_02-1.zip"),
            ("x-01.02.post1.zip", "x-1.2.post1.zip"),
            ("x-1.0.0RC1.tar.gz", "x-1.0.0rc1.tar.gz"),
            ("x-v1.0.tar.gz", "x-1.0.tar.gz"),
            ("x-0!1.0.tar.gz", "x-1.0.tar.gz"),
            ("x-1.0+Local.01.tar.gz", "x-1.0+local.1.tar.gz"),
            ("x-1.0.alpha2.dev3.tar.gz", "x-1.0a2.dev3.tar.gz"),
            (
                "rfc8785-0.1.2-py3-none-any.whl",
                "rfc8785-0.1.2-py3-none-any.whl",
            ),
            (
                "Foo.Bar-1.0-py3.py2-none-any.whl",
                "foo_bar-1.0-py2.py3-none-any.whl",
            ),
            (
                "foo-1.0-2a-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "foo-1.0-2a-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            ),
        ] {
            assert_eq!(
                DistFilename::parse(raw).unwrap().ultranormal(),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn spellings_of_one_file_match_and_different_files_do_not() {
        assert!(!same_distribution("Foo_Bar-1.0.tar.gz", "foo.bar-1.0.0.tar.gz").unwrap());
        assert!(same_distribution("Foo_Bar-1.0.tar.gz", "foo-bar-1.0.tar.gz").unwrap());
        assert!(
            same_distribution("a-1.0-py3.py2-none-any.whl", "a-1.0-py2.py3-none-any.whl").unwrap()
        );
        assert!(!same_distribution("a-1.0-py3-none-any.whl", "a-1.0.tar.gz").unwrap());
        assert!(!same_distribution("a-1.0.tar.gz", "a-1.0.zip").unwrap());
        assert!(!same_distribution("a-1.0.tar.gz", "b-1.0.tar.gz").unwrap());
    }

    #[test]
    fn what_is_not_a_distribution_is_refused() {
        for bad in [
            "a.tar.bz2",
            "a.tar.gz",
            "a-b-c.whl",
            "a-1.0-x-py3-none-any.whl",
            "a-1.0-py3-none.any!-any.whl",
            "a-notaversion.tar.gz",
            "a-1.0-1-2-3-4-5.whl",
            "é-1.0.tar.gz",
        ] {
            assert!(DistFilename::parse(bad).is_err(), "{bad}");
        }
    }
}
