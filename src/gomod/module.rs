//! Go module paths and versions: validation, the case encoding of the GOPROXY
//! protocol (`!x` for `X`), and parsing of GOPROXY request paths.
//!
//! The rules follow golang.org/x/mod/module (`CheckPath`, `EscapePath`,
//! `UnescapePath`, `EscapeVersion`, `UnescapeVersion`) and
//! golang.org/x/mod/semver, with length bounds added. The GOPROXY front calls
//! [`ProxyRequest::parse`] on every request path; the checksum-database code
//! calls [`check_path`] and [`check_canonical_version`] on every record.
//! Everything here is pure and never panics.

use std::fmt;

/// Longest module path accepted. Go sets no limit; real paths are far
/// shorter, and a bound keeps hostile input small.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest version accepted (pseudo-versions are about 35 bytes).
pub const MAX_VERSION_LEN: usize = 256;

/// Why a module path, version or request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("module path is {0} bytes, more than the {MAX_PATH_LEN} allowed")]
    PathTooLong(usize),
    #[error("version is {0} bytes, more than the {MAX_VERSION_LEN} allowed")]
    VersionTooLong(usize),
    #[error("malformed module path {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("malformed version {version:?}: {reason}")]
    BadVersion {
        version: String,
        reason: &'static str,
    },
    #[error(
        "malformed escaped string {0:?}: want lower case, `!` only before a lower-case letter"
    )]
    BadEscape(String),
    #[error("malformed GOPROXY request {path:?}: {reason}")]
    BadRequest { path: String, reason: &'static str },
}

fn bad_path(path: &str, reason: &'static str) -> ModuleError {
    ModuleError::BadPath {
        path: truncate(path),
        reason,
    }
}

fn bad_version(version: &str, reason: &'static str) -> ModuleError {
    ModuleError::BadVersion {
        version: truncate(version),
        reason,
    }
}

/// Shortens untrusted text quoted in an error message.
fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

/// Which rules a path element is checked against (Go's `pathKind`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    File,
}

const BAD_WINDOWS_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A character allowed in a module path element: ASCII letters and digits
/// and `- . _ ~`.
fn mod_path_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// A character allowed in a file name (and so in a version): letters (any
/// Unicode letter), digits, space and `!#$%&()+,-.=@[]^_{}~`.
fn file_name_ok(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
    } else {
        c.is_alphabetic()
    }
}

/// Checks one path element (Go's `checkElem`).
fn check_elem(elem: &str, kind: Kind) -> Result<(), &'static str> {
    if elem.is_empty() {
        return Err("empty path element");
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err("path element made only of dots");
    }
    if kind == Kind::Module && elem.starts_with('.') {
        return Err("leading dot in path element");
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element");
    }
    let ok = match kind {
        Kind::Module => elem.chars().all(mod_path_ok),
        Kind::File => elem.chars().all(file_name_ok),
    };
    if !ok {
        return Err("character not allowed in path element");
    }
    let short = elem.split('.').next().unwrap_or(elem);
    if BAD_WINDOWS_NAMES
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err("reserved Windows name in path element");
    }
    if kind == Kind::File {
        return Ok(());
    }
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("trailing tilde and digits in path element");
        }
    }
    Ok(())
}

/// Checks a module path as golang.org/x/mod/module.CheckPath does: slash
/// separated elements of ASCII letters, digits and `-._~`; a first element
/// that is a lower-case domain name with a dot; no element starting with a
/// dot; a well-formed major version suffix (`/vN`, N ≥ 2, or gopkg.in's
/// `.vN`).
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    if path.len() > MAX_PATH_LEN {
        return Err(ModuleError::PathTooLong(path.len()));
    }
    if path.is_empty() {
        return Err(bad_path(path, "empty"));
    }
    if path.starts_with('-') {
        return Err(bad_path(path, "leading dash"));
    }
    if path.contains("//") {
        return Err(bad_path(path, "double slash"));
    }
    if path.ends_with('/') {
        return Err(bad_path(path, "trailing slash"));
    }
    if path.starts_with('/') {
        return Err(bad_path(path, "leading slash"));
    }
    for elem in path.split('/') {
        check_elem(elem, Kind::Module).map_err(|r| bad_path(path, r))?;
    }
    let first = path.split('/').next().unwrap_or(path);
    if !first.contains('.') {
        return Err(bad_path(path, "missing dot in first path element"));
    }
    if !first
        .bytes()
        .all(|b| b == b'-' || b == b'.' || b.is_ascii_digit() || b.is_ascii_lowercase())
    {
        return Err(bad_path(
            path,
            "first path element is not a lower-case domain name",
        ));
    }
    if !major_suffix_ok(path) {
        return Err(bad_path(path, "malformed major version suffix"));
    }
    Ok(())
}

/// Go's `SplitPathVersion(path)` `ok` result: a trailing `/vN` must have
/// N ≥ 2 without a leading zero or dots; gopkg.in paths must end in `.vN`.
fn major_suffix_ok(path: &str) -> bool {
    let b = path.as_bytes();
    if path.starts_with("gopkg.in/") {
        let mut i = b.len();
        if path.ends_with("-unstable") {
            i -= "-unstable".len();
        }
        while i > 0 && b[i - 1].is_ascii_digit() {
            i -= 1;
        }
        if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
            return false;
        }
        let major = &b[i - 2..];
        return !(major.len() <= 2 || major[2] == b'0' && major != b".v0");
    }
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        dot |= b[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return true;
    }
    let major = &b[i - 2..];
    !(dot || major.len() <= 2 || major[2] == b'0' || major == b"/v1")
}

/// Checks a version as allowed in GOPROXY paths (Go's `EscapeVersion`
/// rules): a valid file name without `!`. Queries like `master` pass.
pub fn check_version(version: &str) -> Result<(), ModuleError> {
    if version.len() > MAX_VERSION_LEN {
        return Err(ModuleError::VersionTooLong(version.len()));
    }
    check_elem(version, Kind::File).map_err(|r| bad_version(version, r))?;
    if version.contains('!') {
        return Err(bad_version(version, "contains '!'"));
    }
    Ok(())
}

/// Checks that `version` is a canonical semantic version as the checksum
/// database logs them: `vMAJOR.MINOR.PATCH[-PRERELEASE][+incompatible]`,
/// no leading zeros, no other build metadata, no shorthand like `v1.2`.
pub fn check_canonical_version(version: &str) -> Result<(), ModuleError> {
    if version.len() > MAX_VERSION_LEN {
        return Err(ModuleError::VersionTooLong(version.len()));
    }
    let rest = version
        .strip_prefix('v')
        .ok_or_else(|| bad_version(version, "does not start with 'v'"))?;
    let rest = rest.strip_suffix("+incompatible").unwrap_or(rest);
    if rest.contains('+') {
        return Err(bad_version(
            version,
            "build metadata other than +incompatible",
        ));
    }
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let mut n = 0;
    for num in core.split('.') {
        n += 1;
        if !canonical_number(num) {
            return Err(bad_version(
                version,
                "not MAJOR.MINOR.PATCH decimal numbers",
            ));
        }
    }
    if n != 3 {
        return Err(bad_version(version, "not MAJOR.MINOR.PATCH"));
    }
    if let Some(pre) = pre {
        for ident in pre.split('.') {
            if ident.is_empty()
                || !ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad_version(version, "malformed prerelease"));
            }
            if ident.bytes().all(|b| b.is_ascii_digit()) && !canonical_number(ident) {
                return Err(bad_version(version, "leading zero in prerelease number"));
            }
        }
    }
    Ok(())
}

fn canonical_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// The case encoding of module paths and versions in URLs and file names:
/// each upper-case ASCII letter `X` becomes `!x`.
fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape_string`]: ASCII only, no upper case, every `!`
/// followed by a lower-case letter.
fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    if bang {
        return None;
    }
    Some(out)
}

/// Go's `module.EscapePath`: validates the path, then encodes upper case.
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    check_path(path)?;
    Ok(escape_string(path))
}

/// Go's `module.UnescapePath`: decodes `!x` and validates the result.
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    if escaped.len() > 2 * MAX_PATH_LEN {
        return Err(ModuleError::PathTooLong(escaped.len()));
    }
    let path = unescape_string(escaped).ok_or_else(|| ModuleError::BadEscape(truncate(escaped)))?;
    check_path(&path)?;
    Ok(path)
}

/// Go's `module.EscapeVersion`.
pub fn escape_version(version: &str) -> Result<String, ModuleError> {
    check_version(version)?;
    if !version.is_ascii() {
        // Go's escapeString refuses non-ASCII; file names allow it.
        return Err(bad_version(version, "not ASCII"));
    }
    Ok(escape_string(version))
}

/// Go's `module.UnescapeVersion`.
pub fn unescape_version(escaped: &str) -> Result<String, ModuleError> {
    if escaped.len() > 2 * MAX_VERSION_LEN {
        return Err(ModuleError::VersionTooLong(escaped.len()));
    }
    let version =
        unescape_string(escaped).ok_or_else(|| ModuleError::BadEscape(truncate(escaped)))?;
    check_elem(&version, Kind::File).map_err(|r| bad_version(&version, r))?;
    if version.len() > MAX_VERSION_LEN {
        return Err(ModuleError::VersionTooLong(version.len()));
    }
    Ok(version)
}

/// A module path and version, both validated (the version canonical).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleVersion {
    pub path: String,
    pub version: String,
}

impl ModuleVersion {
    /// Validates `path` and the canonical `version`.
    pub fn new(path: &str, version: &str) -> Result<ModuleVersion, ModuleError> {
        check_path(path)?;
        check_canonical_version(version)?;
        Ok(ModuleVersion {
            path: path.to_string(),
            version: version.to_string(),
        })
    }

    /// `<escaped path>@<escaped version>`, as in `/lookup/` URLs.
    pub fn escaped(&self) -> String {
        format!(
            "{}@{}",
            escape_string(&self.path),
            escape_string(&self.version)
        )
    }
}

impl fmt::Display for ModuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.path, self.version)
    }
}

/// What a GOPROXY request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `<module>/@v/list`: the known versions (unsigned).
    List { path: String },
    /// `<module>/@v/<version>.info`: version metadata (unsigned). The
    /// version may be a query such as a branch name.
    Info { path: String, version: String },
    /// `<module>/@v/<version>.mod`: the go.mod file (checked against the
    /// database before it is served).
    Mod(ModuleVersion),
    /// `<module>/@v/<version>.zip`: the module zip (checked likewise).
    Zip(ModuleVersion),
    /// `<module>/@latest`: the latest version's metadata (unsigned).
    Latest { path: String },
}

impl ProxyRequest {
    /// Parses a GOPROXY request path relative to the proxy root, with or
    /// without a leading `/` (`github.com/!azure/x/@v/v1.0.0.zip`). The
    /// path is taken as it appears on the wire: no percent-decoding (Go
    /// never percent-encodes these, and all characters allowed are
    /// URL-safe). `.mod` and `.zip` need a canonical version.
    pub fn parse(path: &str) -> Result<ProxyRequest, ModuleError> {
        let bad = |reason| ModuleError::BadRequest {
            path: truncate(path),
            reason,
        };
        if path.len() > 2 * (MAX_PATH_LEN + MAX_VERSION_LEN) {
            return Err(bad("too long"));
        }
        let p = path.strip_prefix('/').unwrap_or(path);
        if let Some(escaped) = p.strip_suffix("/@latest") {
            return Ok(ProxyRequest::Latest {
                path: unescape_path(escaped)?,
            });
        }
        let (escaped, file) = p
            .split_once("/@v/")
            .ok_or_else(|| bad("want <module>/@v/<file> or <module>/@latest"))?;
        let module = unescape_path(escaped)?;
        if file == "list" {
            return Ok(ProxyRequest::List { path: module });
        }
        let (escaped_version, ext) = file
            .rsplit_once('.')
            .ok_or_else(|| bad("want list, <version>.info, .mod or .zip"))?;
        let version = unescape_version(escaped_version)?;
        match ext {
            "info" => Ok(ProxyRequest::Info {
                path: module,
                version,
            }),
            "mod" => Ok(ProxyRequest::Mod(ModuleVersion::new(&module, &version)?)),
            "zip" => Ok(ProxyRequest::Zip(ModuleVersion::new(&module, &version)?)),
            _ => Err(bad("want list, <version>.info, .mod or .zip")),
        }
    }

    /// The module path the request is about.
    pub fn module_path(&self) -> &str {
        match self {
            ProxyRequest::List { path }
            | ProxyRequest::Info { path, .. }
            | ProxyRequest::Latest { path } => path,
            ProxyRequest::Mod(mv) | ProxyRequest::Zip(mv) => &mv.path,
        }
    }

    /// The request path (without a leading `/`) that asks for this, as an
    /// upstream GOPROXY expects it.
    pub fn to_path(&self) -> String {
        match self {
            ProxyRequest::List { path } => format!("{}/@v/list", escape_string(path)),
            ProxyRequest::Latest { path } => format!("{}/@latest", escape_string(path)),
            ProxyRequest::Info { path, version } => {
                format!("{}/@v/{}.info", escape_string(path), escape_string(version))
            }
            ProxyRequest::Mod(mv) => format!(
                "{}/@v/{}.mod",
                escape_string(&mv.path),
                escape_string(&mv.version)
            ),
            ProxyRequest::Zip(mv) => format!(
                "{}/@v/{}.zip",
                escape_string(&mv.path),
                escape_string(&mv.version)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_paths_go_accepts() {
        for p in [
            "example.com/hello",
            "github.com/Azure/azure-sdk-for-go",
            "golang.org/x/mod",
            "example.com/m/v2",
            "gopkg.in/yaml.v2",
            "gopkg.in/check.v1",
            "gopkg.in/src-d/go-git.v4",
            "gopkg.in/yaml.v0",
            "example.com/a_b~c",
            "x.y",
        ] {
            assert_eq!(check_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refuses_paths_go_refuses() {
        for p in [
            "",
            "-x.com/a",
            "x.com//a",
            "x.com/a/",
            "/x.com",
            "example/hello",     // no dot in the first element
            "Example.com/hello", // upper case in the domain
            "x.com/.hidden",     // leading dot
            "x.com/a.",          // trailing dot
            "x.com/..",          // dots only
            "x.com/a b",         // space
            "x.com/a+b",         // plus
            "x.com/é",           // non-ASCII
            "x.com/con",         // Windows name
            "x.com/LPT1.txt",    // Windows name before a dot
            "x.com/abcdef~1",    // Windows short name
            "x.com/m/v1",        // /v1 is not a suffix
            "x.com/m/v0",        // nor /v0
            "x.com/m/v02",       // leading zero
            "x.com/m/v2.0",      // dotted
            "gopkg.in/yaml",     // gopkg.in without .vN
            "gopkg.in/yaml.v01", // leading zero
            "x.com/a@b",
        ] {
            assert!(check_path(p).is_err(), "accepted {p:?}");
        }
        assert_eq!(
            check_path(&format!("x.com/{}", "a".repeat(MAX_PATH_LEN))),
            Err(ModuleError::PathTooLong(MAX_PATH_LEN + 6))
        );
    }

    #[test]
    fn canonical_versions_only() {
        for v in [
            "v0.0.0",
            "v1.2.3",
            "v1.2.3-pre",
            "v1.2.3-pre.0.x-y",
            "v0.0.0-20191109021931-daa7c04131f5",
            "v2.0.0+incompatible",
            "v2.0.0-rc.1+incompatible",
        ] {
            assert_eq!(check_canonical_version(v), Ok(()), "{v}");
        }
        for v in [
            "",
            "1.2.3",
            "v1",
            "v1.2",
            "v1.2.3.4",
            "v01.2.3",
            "v1.02.3",
            "v1.2.3-",
            "v1.2.3-a..b",
            "v1.2.3-01",
            "v1.2.3+meta",
            "v1.2.3-a_b",
            "master",
            "v1.2.3+incompatible+incompatible",
        ] {
            assert!(check_canonical_version(v).is_err(), "accepted {v:?}");
        }
    }

    #[test]
    fn escapes_upper_case_as_bang_lower() {
        assert_eq!(
            escape_path("github.com/GoogleCloudPlatform/omega").as_deref(),
            Ok("github.com/!google!cloud!platform/omega")
        );
        assert_eq!(escape_version("v1.0.0-RC1").as_deref(), Ok("v1.0.0-!r!c1"));
        assert_eq!(
            unescape_path("github.com/!google!cloud!platform/omega").as_deref(),
            Ok("github.com/GoogleCloudPlatform/omega")
        );
        assert_eq!(
            unescape_version("v1.0.0-!r!c1").as_deref(),
            Ok("v1.0.0-RC1")
        );
    }

    #[test]
    fn refuses_malformed_escapes() {
        // The cases of golang.org/x/mod/module's TestUnescapePath.
        for e in [
            "github.com/GoogleCloudPlatform/omega",
            "github.com/!google!cloud!platform!/omega",
            "github.com/!0google!cloud!platform/omega",
            "github.com/!_google!cloud!platform/omega",
            "github.com/!!google!cloud!platform/omega",
            "",
            "x.com/é",
            "x.com/a!",
        ] {
            assert!(unescape_path(e).is_err(), "accepted {e:?}");
        }
        assert!(unescape_version("v1.0.0-RC1").is_err());
        assert!(unescape_version("v1!").is_err());
        assert!(escape_version("v1!").is_err());
        assert!(escape_path("x.com/é").is_err());
    }

    #[test]
    fn escape_round_trips() {
        for p in [
            "example.com/Hello/World",
            "a.b/c",
            "github.com/Azure/X_y~z/v3",
        ] {
            let e = escape_path(p).unwrap();
            assert!(!e.bytes().any(|b| b.is_ascii_uppercase()));
            assert_eq!(unescape_path(&e).as_deref(), Ok(p));
        }
    }

    #[test]
    fn parses_every_goproxy_request() {
        let mv = |p: &str, v: &str| ModuleVersion::new(p, v).unwrap();
        assert_eq!(
            ProxyRequest::parse("/github.com/!azure/go/@v/list"),
            Ok(ProxyRequest::List {
                path: "github.com/Azure/go".into()
            })
        );
        assert_eq!(
            ProxyRequest::parse("github.com/!azure/go/@latest"),
            Ok(ProxyRequest::Latest {
                path: "github.com/Azure/go".into()
            })
        );
        assert_eq!(
            ProxyRequest::parse("/x.com/m/@v/master.info"),
            Ok(ProxyRequest::Info {
                path: "x.com/m".into(),
                version: "master".into()
            })
        );
        assert_eq!(
            ProxyRequest::parse("/x.com/m/v2/@v/v2.0.0-!r!c1.mod"),
            Ok(ProxyRequest::Mod(mv("x.com/m/v2", "v2.0.0-RC1")))
        );
        assert_eq!(
            ProxyRequest::parse("/x.com/m/@v/v1.0.0.zip"),
            Ok(ProxyRequest::Zip(mv("x.com/m", "v1.0.0")))
        );
        for r in [
            ProxyRequest::Zip(mv("x.com/M", "v1.0.0-X")),
            ProxyRequest::List {
                path: "x.com/M".into(),
            },
        ] {
            assert_eq!(ProxyRequest::parse(&r.to_path()), Ok(r.clone()));
        }
    }

    #[test]
    fn refuses_malformed_goproxy_requests() {
        for p in [
            "/",
            "/x.com/m",
            "/x.com/m/@v/",
            "/x.com/m/@v/v1.0.0",
            "/x.com/m/@v/v1.0.0.tar",
            "/x.com/m/@v/master.zip", // .zip needs a canonical version
            "/x.com/m/@v/v1.0.mod",
            "/x.com/M/@v/list", // upper case must be escaped
            "/x.com/m/@v/../../etc/passwd.zip",
            "/x.com/m/@v/v1.0.0%2e.zip",
            "/@v/list",
            "/x.com/m/@latest/x",
        ] {
            assert!(ProxyRequest::parse(p).is_err(), "accepted {p:?}");
        }
        let long = format!("/x.com/{}/@v/list", "a".repeat(5000));
        assert!(ProxyRequest::parse(&long).is_err());
    }

    proptest::proptest! {
        #[test]
        fn escaping_round_trips_for_valid_paths(
            p in "[a-z]{1,8}\\.[a-z]{2,3}(/[A-Za-z0-9_~-]{1,10}){0,4}"
        ) {
            proptest::prop_assume!(check_path(&p).is_ok());
            let e = escape_path(&p).unwrap();
            proptest::prop_assert!(!e.bytes().any(|b| b.is_ascii_uppercase()));
            proptest::prop_assert_eq!(unescape_path(&e).unwrap(), p);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,80}", raw in proptest::collection::vec(0u8..=255, 0..80)) {
            let lossy = String::from_utf8_lossy(&raw);
            for input in [s.as_str(), &*lossy] {
                let _ = ProxyRequest::parse(input);
                let _ = unescape_path(input);
                let _ = unescape_version(input);
                let _ = check_canonical_version(input);
                if let Ok(r) = ProxyRequest::parse(input) {
                    // Whatever parses is re-encoded to a path that parses the same.
                    proptest::prop_assert_eq!(ProxyRequest::parse(&r.to_path()), Ok(r));
                }
            }
        }
    }
}
