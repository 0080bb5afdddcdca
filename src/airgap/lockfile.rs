//! The Python and npm lockfiles `bulwark sync` reads, parsed into what to
//! fetch and the hashes they pin:
//!
//! - `requirements.txt` (pip's format): `name==version` lines, with or
//!   without `--hash=sha256:...` options, `\` continuations and `#`
//!   comments; a line that does not pin one version (`>=`, a range, a
//!   URL, a path, `-e`, `-r`) is refused with its reason, never guessed;
//! - `pylock.toml` (PEP 751): `[[packages]]` with an `sdist` and `wheels`,
//!   each with its `hashes`;
//! - `uv.lock`: `[[package]]` from a `registry` source with an `sdist` and
//!   `wheels`, each with its `hash = "sha256:..."`;
//! - `package-lock.json` / `npm-shrinkwrap.json` (lockfileVersion 2 or
//!   3): `packages["node_modules/..."]` with `version` and `integrity`.
//!
//! A lockfile is untrusted input: its size, its line length and its
//! number of entries are bounded, and no input panics (fuzz target
//! `fuzz/fuzz_targets/airgap_lockfile.rs`). The TOML and JSON documents are
//! read by the `toml` and `serde_json` crates. `go.sum` and lists of
//! `ecosystem name version` lines are recognised here ([`Kind::detect`])
//! and read by `bulwark sync` itself.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use serde::Deserialize;

use crate::npm::name::{version_ok, PackageName};
use crate::pypi::name::ProjectName;
use crate::pypi::simple::{check_filename, Sha256};

/// Largest lockfile read.
pub const MAX_LOCKFILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most entries taken from one lockfile.
pub const MAX_ENTRIES: usize = 100_000;
/// Longest logical line of a `requirements.txt` (continuations joined).
pub const MAX_LINE: usize = 64 * 1024;
/// Longest `integrity` (an SRI string) taken from a `package-lock.json`.
const MAX_INTEGRITY: usize = 1024;
/// Most files one Python package of a lockfile may list.
const MAX_FILES: usize = 1_000;

/// The kinds of lockfile `bulwark sync` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `go.sum`.
    GoSum,
    /// Lines of `ecosystem name version`.
    List,
    /// pip's `requirements.txt`.
    Requirements,
    /// PEP 751 `pylock.toml`.
    Pylock,
    /// uv's `uv.lock`.
    UvLock,
    /// npm's `package-lock.json` or `npm-shrinkwrap.json`.
    PackageLock,
}

/// The ecosystems a list line may name.
const LIST_ECOSYSTEMS: [&str; 4] = ["gomod", "pypi", "npm", "warg"];

impl Kind {
    /// What `file_name` holding `text` is: by its name first (`go.sum`,
    /// `package-lock.json`, `npm-shrinkwrap.json`, `uv.lock`,
    /// `pylock.toml`, `pylock.<name>.toml`, `requirements*.txt`), else by
    /// its content. `None`: not a lockfile bulwark reads.
    pub fn detect(file_name: &str, text: &str) -> Option<Kind> {
        match file_name {
            "go.sum" => return Some(Kind::GoSum),
            "package-lock.json" | "npm-shrinkwrap.json" => return Some(Kind::PackageLock),
            "uv.lock" => return Some(Kind::UvLock),
            n if n == "pylock.toml"
                || (n.starts_with("pylock.") && n.ends_with(".toml") && n.len() > 12) =>
            {
                return Some(Kind::Pylock)
            }
            n if n.starts_with("requirements") && n.ends_with(".txt") => {
                return Some(Kind::Requirements)
            }
            _ => {}
        }
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))?;
        if first.starts_with('{') {
            return text
                .contains("\"lockfileVersion\"")
                .then_some(Kind::PackageLock);
        }
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("lock-version"))
        {
            return Some(Kind::Pylock);
        }
        if text.lines().any(|l| l.trim() == "[[package]]") {
            return Some(Kind::UvLock);
        }
        let words: Vec<&str> = first.split_whitespace().collect();
        if words.len() == 3 && LIST_ECOSYSTEMS.contains(&words[0]) {
            return Some(Kind::List);
        }
        Some(Kind::Requirements)
    }
}

/// One file of a Python package a lockfile names, with its pinned sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFile {
    pub filename: String,
    pub sha256: Option<[u8; 32]>,
}

/// A Python package version to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyPin {
    pub project: ProjectName,
    /// The version, as written (a valid PEP 440 version).
    pub version: String,
    /// `requirements.txt`: the sha256 values pinned (each must be the
    /// index's sha256 of a file of this version; only those files are
    /// fetched). Empty: every file of the version is fetched.
    pub hashes: Vec<[u8; 32]>,
    /// `pylock.toml`, `uv.lock`: exactly these files. Empty: the files
    /// are chosen by version (and `hashes`).
    pub files: Vec<PyFile>,
}

/// An npm package version to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPin {
    pub name: PackageName,
    pub version: String,
    /// The `integrity` the lockfile pins (an SRI string), if any.
    pub integrity: Option<String>,
}

/// One entry of a lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Pypi(PyPin),
    Npm(NpmPin),
    /// An entry bulwark does not fetch, with why (`what` shows it).
    Refused {
        what: String,
        reason: String,
    },
}

/// A lockfile that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LockError(pub String);

fn err(s: impl Into<String>) -> LockError {
    LockError(s.into())
}

fn refused(what: impl Into<String>, reason: impl Into<String>) -> Entry {
    Entry::Refused {
        what: short(&what.into()),
        reason: reason.into(),
    }
}

/// At most 200 bytes of `s`, for messages.
fn short(s: &str) -> String {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Parses `text` as a lockfile of `kind` (not [`Kind::GoSum`] or
/// [`Kind::List`], which `bulwark sync` reads itself).
pub fn parse(kind: Kind, text: &str) -> Result<Vec<Entry>, LockError> {
    if text.len() as u64 > MAX_LOCKFILE_BYTES {
        return Err(err(format!(
            "longer than {MAX_LOCKFILE_BYTES} bytes ({} bytes)",
            text.len()
        )));
    }
    let entries = match kind {
        Kind::Requirements => requirements(text)?,
        Kind::Pylock => pylock(text)?,
        Kind::UvLock => uv_lock(text)?,
        Kind::PackageLock => package_lock(text)?,
        Kind::GoSum | Kind::List => {
            return Err(err("go.sum and lists are read by `bulwark sync` itself"))
        }
    };
    if entries.len() > MAX_ENTRIES {
        return Err(err(format!("more than {MAX_ENTRIES} entries")));
    }
    Ok(entries)
}

fn pep440_ok(v: &str) -> bool {
    v.len() <= 128 && pep440_rs::Version::from_str(v).is_ok()
}

/// A `#` at the start or after whitespace starts a comment (pip's rule).
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

fn is_comment_line(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// pip's `requirements.txt` (see the module documentation).
pub fn requirements(text: &str) -> Result<Vec<Entry>, LockError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 1;
    for (no, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = no + 1;
        }
        if logical.len() + raw.len() > MAX_LINE {
            return Err(err(format!(
                "line {start}: longer than {MAX_LINE} bytes (continuations joined)"
            )));
        }
        if let Some(head) = raw.strip_suffix('\\').filter(|_| !is_comment_line(raw)) {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        requirement_line(&logical, start, &mut out);
        logical.clear();
        if out.len() > MAX_ENTRIES {
            return Err(err(format!("more than {MAX_ENTRIES} entries")));
        }
    }
    if !logical.is_empty() {
        requirement_line(&logical, start, &mut out);
    }
    Ok(out)
}

fn requirement_line(logical: &str, no: usize, out: &mut Vec<Entry>) {
    let line = strip_comment(logical).trim();
    if line.is_empty() {
        return;
    }
    let what = format!("line {no}: {line}");
    if line.starts_with('-') {
        let opt = line
            .split(|c: char| c.is_ascii_whitespace() || c == '=')
            .next()
            .unwrap_or("");
        match opt {
            "-r" | "--requirement" | "-c" | "--constraint" => out.push(refused(
                what,
                "a nested requirements file is not followed: give it to `bulwark sync` too",
            )),
            "-e" | "--editable" => out.push(refused(
                what,
                "an editable requirement is not from an index: bulwark cannot verify it",
            )),
            // Index and installer options: bulwark routes by its own
            // configuration.
            _ => {}
        }
        return;
    }
    // The requirement, then its options (`--hash=...`).
    let (spec, opts) = match line.find(" --").or_else(|| line.find("\t--")) {
        Some(i) => (line[..i].trim(), &line[i..]),
        None => (line, ""),
    };
    let mut hashes = Vec::new();
    let mut tokens = opts.split_ascii_whitespace();
    while let Some(t) = tokens.next() {
        let value = match t.strip_prefix("--hash") {
            Some(rest) => match rest.strip_prefix('=') {
                Some(v) => v,
                None if rest.is_empty() => tokens.next().unwrap_or(""),
                None => continue,
            },
            None => continue,
        };
        let Some((alg, hex)) = value.split_once(':') else {
            out.push(refused(
                what,
                format!("--hash {value:?}: want sha256:<hex>"),
            ));
            return;
        };
        if alg != "sha256" {
            out.push(refused(
                what,
                format!(
                    "--hash {alg}: only sha256 pins can be checked (the index names each file's sha256)"
                ),
            ));
            return;
        }
        let Some(h) = Sha256::parse(hex) else {
            out.push(refused(
                what,
                format!("--hash sha256:{}: not 64 hex digits", short(hex)),
            ));
            return;
        };
        if !hashes.contains(&h.0) {
            hashes.push(h.0);
        }
    }
    // Environment markers do not change what is fetched: every file of
    // the pinned version is, whatever the platform.
    let spec = spec.split(';').next().unwrap_or("").trim();
    if spec.contains("://") || spec.contains(" @") || spec.starts_with(['.', '/', '~']) {
        out.push(refused(
            what,
            "a URL or path requirement is not from an index: bulwark cannot verify it",
        ));
        return;
    }
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(spec.len());
    let project = match ProjectName::parse(&spec[..name_end]) {
        Ok(p) => p,
        Err(e) => {
            out.push(refused(what, format!("not a requirement: {e}")));
            return;
        }
    };
    let mut rest = spec[name_end..].trim_start();
    if let Some(r) = rest.strip_prefix('[') {
        match r.split_once(']') {
            Some((_, after)) => rest = after.trim_start(),
            None => {
                out.push(refused(what, "unclosed extras `[`"));
                return;
            }
        }
    }
    let version = rest
        .strip_prefix("===")
        .or_else(|| rest.strip_prefix("=="))
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.contains([',', '*', ' ', '\t']));
    let Some(version) = version else {
        out.push(refused(
            what,
            format!(
                "not pinned to one version (want {project}==<version>): bulwark does not guess one"
            ),
        ));
        return;
    };
    if !pep440_ok(version) {
        out.push(refused(
            what,
            format!("version {:?} is not a PEP 440 version", short(version)),
        ));
        return;
    }
    out.push(Entry::Pypi(PyPin {
        project,
        version: version.to_string(),
        hashes,
        files: Vec::new(),
    }));
}

/// The file name a URL or path ends with, percent-decoded and checked.
fn file_name_of(url: Option<&str>, path: Option<&str>) -> Result<String, String> {
    let last = match (url, path) {
        (Some(u), _) => {
            let parsed = url::Url::parse(u).map_err(|e| format!("url {:?}: {e}", short(u)))?;
            let seg = parsed
                .path_segments()
                .and_then(|mut s| s.next_back())
                .unwrap_or("")
                .to_string();
            percent_encoding::percent_decode_str(&seg)
                .decode_utf8()
                .map_err(|e| format!("url {:?}: {e}", short(u)))?
                .into_owned()
        }
        (None, Some(p)) => p.rsplit(['/', '\\']).next().unwrap_or("").to_string(),
        (None, None) => return Err("neither a name, a url nor a path".into()),
    };
    check_filename(&last).map_err(|e| e.to_string())?;
    Ok(last)
}

#[derive(Deserialize)]
struct PylockDoc {
    #[serde(rename = "lock-version")]
    lock_version: Option<String>,
    #[serde(default)]
    packages: Vec<PylockPackage>,
}

#[derive(Deserialize)]
struct PylockPackage {
    name: String,
    version: Option<String>,
    sdist: Option<PylockFile>,
    #[serde(default)]
    wheels: Vec<PylockFile>,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<toml::Value>,
}

#[derive(Deserialize)]
struct PylockFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// A file's name and sha256 pin from a lockfile's `hashes` table.
fn pinned_file(
    name: Option<&str>,
    url: Option<&str>,
    path: Option<&str>,
    sha256: Option<&str>,
    other_hashes: bool,
) -> Result<PyFile, String> {
    let filename = match name {
        Some(n) => {
            check_filename(n).map_err(|e| e.to_string())?;
            n.to_string()
        }
        None => file_name_of(url, path)?,
    };
    let sha256 = match sha256 {
        Some(h) => Some(
            Sha256::parse(h)
                .ok_or_else(|| format!("{filename}: sha256 {:?} is not 64 hex digits", short(h)))?
                .0,
        ),
        None if other_hashes => {
            return Err(format!(
                "{filename}: only sha256 pins can be checked (the index names each file's sha256)"
            ))
        }
        None => None,
    };
    Ok(PyFile { filename, sha256 })
}

/// A file entry of a Python lockfile.
trait LockedFile {
    /// Its name and pinned sha256, checked.
    fn pinned(&self) -> Result<PyFile, String>;
}

/// A Python package of a lockfile: its name, version and files (the first
/// bad one refuses the package) checked.
fn py_package<'f, T: LockedFile + 'f>(
    what: &str,
    name: &str,
    version: Option<&str>,
    files: impl Iterator<Item = &'f T>,
) -> Entry {
    let files: Vec<&T> = files.take(MAX_FILES + 1).collect();
    let project = match ProjectName::parse(name) {
        Ok(p) => p,
        Err(e) => return refused(what, format!("package name: {e}")),
    };
    let Some(version) = version.filter(|v| pep440_ok(v)) else {
        return refused(what, "no PEP 440 version");
    };
    if files.is_empty() {
        return refused(what, "lists no sdist or wheel to fetch from an index");
    }
    if files.len() > MAX_FILES {
        return refused(what, format!("lists more than {MAX_FILES} files"));
    }
    let files = match files
        .iter()
        .map(|f| f.pinned())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(f) => f,
        Err(e) => return refused(what, e),
    };
    Entry::Pypi(PyPin {
        project,
        version: version.to_string(),
        hashes: Vec::new(),
        files,
    })
}

/// PEP 751 `pylock.toml` (see the module documentation).
pub fn pylock(text: &str) -> Result<Vec<Entry>, LockError> {
    let doc: PylockDoc = toml::from_str(text).map_err(|e| err(format!("pylock.toml: {e}")))?;
    match doc.lock_version.as_deref() {
        Some(v) if v == "1" || v.starts_with("1.") => {}
        v => {
            return Err(err(format!(
                "pylock.toml: lock-version {v:?}: only version 1 is read"
            )))
        }
    }
    let mut out = Vec::new();
    for p in doc.packages.iter().take(MAX_ENTRIES + 1) {
        let what = format!(
            "{} {}",
            p.name,
            p.version.as_deref().unwrap_or("(no version)")
        );
        if p.vcs.is_some() || p.directory.is_some() || p.archive.is_some() {
            out.push(refused(
                what,
                "a VCS, directory or archive package is not from an index: bulwark cannot verify it",
            ));
            continue;
        }
        let files = p.sdist.iter().chain(&p.wheels);
        out.push(py_package(&what, &p.name, p.version.as_deref(), files));
    }
    Ok(out)
}

impl LockedFile for PylockFile {
    fn pinned(&self) -> Result<PyFile, String> {
        pinned_file(
            self.name.as_deref(),
            self.url.as_deref(),
            self.path.as_deref(),
            self.hashes.get("sha256").map(String::as_str),
            self.hashes.keys().any(|k| k != "sha256"),
        )
    }
}

#[derive(Deserialize)]
struct UvDoc {
    version: Option<i64>,
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Deserialize)]
struct UvPackage {
    name: String,
    version: Option<String>,
    #[serde(default)]
    source: BTreeMap<String, toml::Value>,
    sdist: Option<UvFile>,
    #[serde(default)]
    wheels: Vec<UvFile>,
}

#[derive(Deserialize)]
struct UvFile {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
}

impl LockedFile for UvFile {
    fn pinned(&self) -> Result<PyFile, String> {
        let (sha, other) = match self.hash.as_deref().map(|h| h.split_once(':')) {
            None => (None, false),
            Some(Some(("sha256", hex))) => (Some(hex), false),
            Some(_) => (None, true),
        };
        pinned_file(
            self.filename.as_deref(),
            self.url.as_deref(),
            self.path.as_deref(),
            sha,
            other,
        )
    }
}

/// uv's `uv.lock` (see the module documentation).
pub fn uv_lock(text: &str) -> Result<Vec<Entry>, LockError> {
    let doc: UvDoc = toml::from_str(text).map_err(|e| err(format!("uv.lock: {e}")))?;
    if doc.version != Some(1) {
        return Err(err(format!(
            "uv.lock: version {:?}: only version 1 is read",
            doc.version
        )));
    }
    let mut out = Vec::new();
    for p in doc.package.iter().take(MAX_ENTRIES + 1) {
        let what = format!(
            "{} {}",
            p.name,
            p.version.as_deref().unwrap_or("(no version)")
        );
        // The locked project itself (and its workspace members).
        if p.source.contains_key("editable") || p.source.contains_key("virtual") {
            continue;
        }
        if !p.source.contains_key("registry") {
            let kind = p.source.keys().next().map_or("no", String::as_str);
            out.push(refused(
                what,
                format!("a {kind} source is not an index: bulwark cannot verify it"),
            ));
            continue;
        }
        let files = p.sdist.iter().chain(&p.wheels);
        out.push(py_package(&what, &p.name, p.version.as_deref(), files));
    }
    Ok(out)
}

/// npm's `package-lock.json` (see the module documentation).
pub fn package_lock(text: &str) -> Result<Vec<Entry>, LockError> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(format!("package-lock.json: {e}")))?;
    match doc.get("lockfileVersion").and_then(|v| v.as_u64()) {
        Some(2 | 3) => {}
        Some(1) => {
            return Err(err(
                "package-lock.json: lockfileVersion 1 has no `packages`; write it again with npm 7 or later",
            ))
        }
        v => {
            return Err(err(format!(
                "package-lock.json: lockfileVersion {v:?}: want 2 or 3"
            )))
        }
    }
    let Some(packages) = doc.get("packages").and_then(|p| p.as_object()) else {
        return Err(err("package-lock.json: no `packages` object"));
    };
    let mut out = Vec::new();
    for (key, v) in packages.iter().take(MAX_ENTRIES + 1) {
        // "" is the project itself; keys without node_modules are
        // workspace folders; links and bundled packages are not fetched
        // from a registry.
        let Some(i) = key.rfind("node_modules/") else {
            continue;
        };
        let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()) == Some(true);
        if flag("link") || flag("inBundle") {
            continue;
        }
        let field = |k: &str| v.get(k).and_then(|x| x.as_str());
        let name = field("name").unwrap_or(&key[i + "node_modules/".len()..]);
        let version = field("version").unwrap_or("");
        let what = format!("{name}@{version}");
        if let Some(r) = field("resolved") {
            if !(r.starts_with("https://") || r.starts_with("http://")) {
                out.push(refused(
                    what,
                    format!(
                        "resolved from {:?}, not a registry: bulwark cannot verify it",
                        short(r)
                    ),
                ));
                continue;
            }
        }
        let name = match PackageName::parse(name) {
            Ok(n) => n,
            Err(e) => {
                out.push(refused(what, format!("package name: {e}")));
                continue;
            }
        };
        if !version_ok(version) {
            out.push(refused(what, "no valid version"));
            continue;
        }
        let integrity = field("integrity").map(str::trim);
        if integrity.is_some_and(|i| i.len() > MAX_INTEGRITY) {
            out.push(refused(
                what,
                format!("an integrity longer than {MAX_INTEGRITY} bytes"),
            ));
            continue;
        }
        out.push(Entry::Npm(NpmPin {
            name,
            version: version.to_string(),
            integrity: integrity.map(str::to_string),
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn pins(entries: &[Entry]) -> Vec<&PyPin> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Pypi(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn reasons(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Refused { what, reason } => Some(format!("{what}: {reason}")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn requirements_pins_hashes_continuations_and_comments() {
        let text = format!(
            "# a comment\n--index-url http://x/simple\n\
             Alpha[extra]==1.0 ; python_version >= \"3\" \\\n    --hash=sha256:{H1} \\\n    --hash sha256:{H2}  # two files\n\
             beta==2.0.post1\n\
             gamma>=1\n\
             delta==1.*\n\
             -e ./local\n\
             -r other.txt\n\
             eps @ https://x/eps.whl\n\
             zeta==1.0 --hash=md5:abc\n\
             eta==1.0 --hash=sha256:abc\n"
        );
        let e = requirements(&text).unwrap();
        let p = pins(&e);
        assert_eq!(p.len(), 2, "{e:?}");
        assert_eq!(p[0].project.as_str(), "alpha");
        assert_eq!(p[0].version, "1.0");
        assert_eq!(p[0].hashes.len(), 2);
        assert_eq!(p[0].hashes[1], [0x22; 32]);
        assert_eq!(
            (p[1].project.as_str(), p[1].version.as_str()),
            ("beta", "2.0.post1")
        );
        assert!(p[1].hashes.is_empty());
        let r = reasons(&e);
        assert_eq!(r.len(), 7, "{r:?}");
        assert!(
            r[0].contains("gamma>=1") && r[0].contains("not pinned"),
            "{r:?}"
        );
        assert!(r[1].contains("not pinned"), "{r:?}");
        assert!(r[2].contains("editable"), "{r:?}");
        assert!(r[3].contains("nested"), "{r:?}");
        assert!(r[4].contains("URL or path"), "{r:?}");
        assert!(r[5].contains("only sha256"), "{r:?}");
        assert!(r[6].contains("64 hex"), "{r:?}");
    }

    #[test]
    fn pylock_and_uv_lock_name_their_files_and_hashes() {
        let text = format!(
            "lock-version = \"1.0\"\ncreated-by = \"uv\"\n\n\
             [[packages]]\nname = \"alpha\"\nversion = \"1.0\"\n\
             sdist = {{ url = \"http://x/files/alpha-1.0.tar.gz\", hashes = {{ sha256 = \"{H1}\" }} }}\n\
             wheels = [{{ url = \"http://x/files/alpha-1.0-py3-none-any.whl\", hashes = {{ sha256 = \"{H2}\" }} }}]\n\n\
             [[packages]]\nname = \"local\"\ndirectory = {{ path = \".\" }}\n"
        );
        let e = pylock(&text).unwrap();
        let p = pins(&e);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].files,
            vec![
                PyFile {
                    filename: "alpha-1.0.tar.gz".into(),
                    sha256: Some([0x11; 32])
                },
                PyFile {
                    filename: "alpha-1.0-py3-none-any.whl".into(),
                    sha256: Some([0x22; 32])
                }
            ]
        );
        assert!(reasons(&e)[0].contains("not from an index"));
        assert!(pylock("lock-version = \"2.0\"\n").is_err());

        let uv = format!(
            "version = 1\nrevision = 3\nrequires-python = \">=3.11\"\n\n\
             [[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = {{ virtual = \".\" }}\n\n\
             [[package]]\nname = \"Beta\"\nversion = \"2.0\"\nsource = {{ registry = \"http://x/simple\" }}\n\
             wheels = [\n    {{ url = \"http://x/files/beta-2.0-py3-none-any.whl\", hash = \"sha256:{H1}\", size = 10 }},\n]\n\n\
             [[package]]\nname = \"g\"\nversion = \"1.0\"\nsource = {{ git = \"https://x/g\" }}\n"
        );
        let e = uv_lock(&uv).unwrap();
        let p = pins(&e);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].project.as_str(), "beta");
        assert_eq!(p[0].files[0].filename, "beta-2.0-py3-none-any.whl");
        assert_eq!(p[0].files[0].sha256, Some([0x11; 32]));
        assert!(reasons(&e)[0].contains("git source"), "{:?}", reasons(&e));
    }

    #[test]
    fn package_lock_takes_registry_packages_with_their_integrity() {
        let text = r#"{"name":"app","lockfileVersion":3,"packages":{
            "":{"name":"app","dependencies":{"a":"^1"}},
            "node_modules/a":{"version":"1.0.0","resolved":"http://r/a/-/a-1.0.0.tgz","integrity":"sha512-AAAA"},
            "node_modules/a/node_modules/@s/b":{"version":"2.0.0","integrity":"sha512-BBBB"},
            "node_modules/alias":{"name":"c","version":"3.0.0","resolved":"http://r/c/-/c-3.0.0.tgz"},
            "node_modules/linked":{"resolved":"packages/linked","link":true},
            "packages/linked":{"version":"0.0.1"},
            "node_modules/g":{"version":"1.0.0","resolved":"git+ssh://git@x/g.git"},
            "node_modules/inside":{"version":"1.0.0","inBundle":true}
        }}"#;
        let e = package_lock(text).unwrap();
        let n: Vec<String> = e
            .iter()
            .filter_map(|e| match e {
                Entry::Npm(p) => Some(format!("{}@{} {:?}", p.name, p.version, p.integrity)),
                _ => None,
            })
            .collect();
        assert_eq!(
            n,
            vec![
                "a@1.0.0 Some(\"sha512-AAAA\")",
                "@s/b@2.0.0 Some(\"sha512-BBBB\")",
                "c@3.0.0 None"
            ]
        );
        assert!(reasons(&e)[0].contains("not a registry"));
        assert!(package_lock(r#"{"lockfileVersion":1,"dependencies":{}}"#).is_err());
    }

    #[test]
    fn files_are_recognised_by_name_then_content() {
        assert_eq!(Kind::detect("go.sum", ""), Some(Kind::GoSum));
        assert_eq!(Kind::detect("pylock.dev.toml", ""), Some(Kind::Pylock));
        assert_eq!(
            Kind::detect("requirements-dev.txt", ""),
            Some(Kind::Requirements)
        );
        assert_eq!(Kind::detect("x", "# c\npypi alpha 1.0\n"), Some(Kind::List));
        assert_eq!(Kind::detect("x", "alpha==1.0\n"), Some(Kind::Requirements));
        assert_eq!(
            Kind::detect("x", "{\"lockfileVersion\": 3}"),
            Some(Kind::PackageLock)
        );
        assert_eq!(
            Kind::detect("x", "version = 1\n[[package]]\n"),
            Some(Kind::UvLock)
        );
        assert_eq!(
            Kind::detect("x", "lock-version = \"1.0\"\n"),
            Some(Kind::Pylock)
        );
        assert_eq!(Kind::detect("x", "\n\n"), None);
    }

    proptest::proptest! {
        /// No input panics any parser; requirement-like lines give only
        /// pins of checked names and versions, or refusals.
        #[test]
        fn no_input_panics(
            any in "\\PC{0,300}",
            req in "[a-zA-Z0-9_.=<>~!;#:@/\\[\\] \\\\\n-]{0,200}",
        ) {
            for kind in [Kind::Requirements, Kind::Pylock, Kind::UvLock, Kind::PackageLock] {
                let _ = parse(kind, &any);
            }
            let _ = Kind::detect("x", &any);
            for e in requirements(&req).unwrap_or_default() {
                if let Entry::Pypi(p) = e {
                    proptest::prop_assert!(pep440_ok(&p.version));
                    proptest::prop_assert!(ProjectName::parse(p.project.as_str()).is_ok());
                }
            }
        }
    }

    #[test]
    fn hostile_inputs_are_refused_without_panicking() {
        let deep = format!("a = {}", "[".repeat(100_000));
        assert!(pylock(&deep).is_err());
        assert!(uv_lock(&deep).is_err());
        assert!(package_lock(&"[".repeat(100_000)).is_err());
        assert!(requirements(&"x\\\n".repeat(MAX_LINE)).is_err());
        let long = format!(
            "{{\"lockfileVersion\":3,\"packages\":{{\"node_modules/a\":{{\"version\":\"1.0.0\",\"integrity\":\"sha512-{}\"}}}}}}",
            "A".repeat(2 * MAX_INTEGRITY)
        );
        assert!(reasons(&package_lock(&long).unwrap())[0].contains("longer than"));
        for s in [
            "==",
            "a==",
            "[==1",
            "a[==1",
            "é==1",
            "a==1 --hash",
            "a==1 --hash=",
            "#",
        ] {
            let _ = requirements(s);
        }
    }
}
