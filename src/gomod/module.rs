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
/// Largest `.info` or `@latest` answer accepted from a GOPROXY: a JSON
/// object with a version and a time (and perhaps VCS origin details).
pub const MAX_INFO_BYTES: u64 = 8 * 1024;
/// Largest `@v/list` answer accepted: room for about 30,000 versions.
pub const MAX_LIST_BYTES: u64 = 1024 * 1024;
/// Largest go.mod accepted (golang.org/x/mod/zip `MaxGoMod`).
pub const MAX_MOD_BYTES: u64 = 16 * 1024 * 1024;

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
    #[error("malformed {what} from the GOPROXY: {reason}")]
    BadResponse { what: &'static str, reason: String },
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

/// A byte allowed in a module path element: ASCII letters and digits and
/// `- . _ ~`.
fn mod_path_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A character allowed in a file name (and so in a version): letters (any
/// Unicode letter), digits, space and `!#$%&()+,-.=@[]^_{}~`.
fn file_name_ok(c: char) -> bool {
    match u8::try_from(c) {
        Ok(b) if b.is_ascii() => {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'('
                        | b')'
                        | b'+'
                        | b','
                        | b'-'
                        | b'.'
                        | b'='
                        | b'@'
                        | b'['
                        | b']'
                        | b'^'
                        | b'_'
                        | b'{'
                        | b'}'
                        | b'~'
                        | b' '
                )
        }
        _ => c.is_alphabetic(),
    }
}

/// Checks one path element (Go's `checkElem`).
fn check_elem(elem: &str, kind: Kind) -> Result<(), &'static str> {
    let b = elem.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return Err("empty path element");
    };
    if b.iter().all(|&c| c == b'.') {
        return Err("path element made only of dots");
    }
    if kind == Kind::Module && first == b'.' {
        return Err("leading dot in path element");
    }
    if last == b'.' {
        return Err("trailing dot in path element");
    }
    let ok = match kind {
        Kind::Module => b.iter().all(|&c| mod_path_ok(c)),
        Kind::File => elem.chars().all(file_name_ok),
    };
    if !ok {
        return Err("character not allowed in path element");
    }
    let short = match b.iter().position(|&c| c == b'.') {
        Some(dot) => &b[..dot],
        None => b,
    };
    // Every reserved name is three or four bytes long.
    if matches!(short.len(), 3 | 4)
        && BAD_WINDOWS_NAMES
            .iter()
            .any(|bad| bad.as_bytes().eq_ignore_ascii_case(short))
    {
        return Err("reserved Windows name in path element");
    }
    if kind == Kind::File {
        return Ok(());
    }
    if let Some(tilde) = short.iter().rposition(|&c| c == b'~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.iter().all(u8::is_ascii_digit) {
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
    let b = path.as_bytes();
    let (Some(&first_byte), Some(&last_byte)) = (b.first(), b.last()) else {
        return Err(bad_path(path, "empty"));
    };
    if first_byte == b'-' {
        return Err(bad_path(path, "leading dash"));
    }
    if b.windows(2).any(|w| w == b"//") {
        return Err(bad_path(path, "double slash"));
    }
    if last_byte == b'/' {
        return Err(bad_path(path, "trailing slash"));
    }
    if first_byte == b'/' {
        return Err(bad_path(path, "leading slash"));
    }
    for elem in path.split('/') {
        check_elem(elem, Kind::Module).map_err(|r| bad_path(path, r))?;
    }
    let first = match b.iter().position(|&c| c == b'/') {
        Some(slash) => &b[..slash],
        None => b,
    };
    if !first.contains(&b'.') {
        return Err(bad_path(path, "missing dot in first path element"));
    }
    if !first
        .iter()
        .all(|&c| c == b'-' || c == b'.' || c.is_ascii_digit() || c.is_ascii_lowercase())
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
    for &b in escaped.as_bytes() {
        if !b.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !b.is_ascii_lowercase() {
                return None;
            }
            out.push(char::from(b.to_ascii_uppercase()));
        } else if b == b'!' {
            bang = true;
        } else if b.is_ascii_uppercase() {
            return None;
        } else {
            out.push(char::from(b));
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
        ModuleVersion::with_checked_path(path.to_string(), version.to_string())
    }

    /// [`ModuleVersion::new`] of a path already checked ([`check_path`]):
    /// validates the canonical `version` only.
    fn with_checked_path(path: String, version: String) -> Result<ModuleVersion, ModuleError> {
        check_canonical_version(&version)?;
        Ok(ModuleVersion { path, version })
    }

    /// `<escaped path>@<escaped version>`, as in `/lookup/` URLs
    /// (percent-encoded where a character is not safe in a URL path; a
    /// valid module path and canonical version never need it).
    pub fn escaped(&self) -> String {
        format!(
            "{}@{}",
            wire_segments(&escape_string(&self.path)),
            wire_segments(&escape_string(&self.version))
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
    /// Parses a (percent-decoded) GOPROXY request path relative to the
    /// proxy root, with or without a leading `/`
    /// (`github.com/!azure/x/@v/v1.0.0.zip`); see
    /// [`ProxyRequest::parse_wire`] for a path as it arrives on the wire.
    /// `.mod` and `.zip` need a canonical version.
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
            // `unescape_path` checked the module path.
            "mod" => Ok(ProxyRequest::Mod(ModuleVersion::with_checked_path(
                module, version,
            )?)),
            "zip" => Ok(ProxyRequest::Zip(ModuleVersion::with_checked_path(
                module, version,
            )?)),
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
    /// upstream GOPROXY expects it on the wire: case-encoded (`!x`) and
    /// then percent-encoded wherever a character is not safe in a URL path
    /// (a version may hold `%`, `#`, spaces...), so the upstream decodes
    /// exactly what was parsed. [`ProxyRequest::parse_wire`] inverts it.
    pub fn to_path(&self) -> String {
        let p = |path: &str| wire_segments(&escape_string(path));
        let v = |version: &str| wire_segments(&escape_string(version));
        match self {
            ProxyRequest::List { path } => format!("{}/@v/list", p(path)),
            ProxyRequest::Latest { path } => format!("{}/@latest", p(path)),
            ProxyRequest::Info { path, version } => {
                format!("{}/@v/{}.info", p(path), v(version))
            }
            ProxyRequest::Mod(mv) => format!("{}/@v/{}.mod", p(&mv.path), v(&mv.version)),
            ProxyRequest::Zip(mv) => format!("{}/@v/{}.zip", p(&mv.path), v(&mv.version)),
        }
    }

    /// Parses a request path as it arrives on the wire: each `/`-separated
    /// segment is percent-decoded once (an escape that decodes to `/` is
    /// refused, so segments stay segments), then [`ProxyRequest::parse`].
    pub fn parse_wire(raw: &str) -> Result<ProxyRequest, ModuleError> {
        ProxyRequest::parse(&decode_request_path(raw)?)
    }
}

/// Characters left as they are in a path segment sent upstream: RFC 3986
/// unreserved characters and the sub-delimiters and `:@` allowed in a
/// segment. Everything else is percent-encoded.
fn segment_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// Percent-encodes each `/`-separated segment of `s` for a URL path.
fn wire_segments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b == b'/' || segment_safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a request path (`/a/b%21c/...`) once, segment by segment: a
/// malformed escape, an escape decoding to `/` (which would move segment
/// boundaries) or to invalid UTF-8 is refused.
pub fn decode_request_path(raw: &str) -> Result<String, ModuleError> {
    let bad = |reason| ModuleError::BadRequest {
        path: truncate(raw),
        reason,
    };
    if raw.len() > 4 * (MAX_PATH_LEN + MAX_VERSION_LEN) {
        return Err(bad("too long"));
    }
    if !raw.contains('%') {
        return Ok(raw.to_string());
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, seg) in raw.split('/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let b = seg.as_bytes();
        let mut j = 0;
        while j < b.len() {
            if b[j] == b'%' {
                let hex = b
                    .get(j + 1..j + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("malformed percent escape"))?;
                if hex == b'/' {
                    return Err(bad("escaped '/' in a path segment"));
                }
                out.push(hex);
                j += 3;
            } else {
                out.push(b[j]);
                j += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("percent escapes decode to invalid UTF-8"))
}

/// A checked `.info` (or `@latest`) answer: the fields Go reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// A canonical version.
    pub version: String,
    /// An RFC 3339 time.
    pub time: String,
}

impl Info {
    /// Parses a GOPROXY `.info` or `@latest` body: a JSON object of at most
    /// [`MAX_INFO_BYTES`] with a canonical `Version` and an RFC 3339
    /// `Time` (other fields are ignored). When the request named a
    /// canonical version, the answer must be about that version (as Go's
    /// own proxy client checks).
    pub fn parse(body: &[u8], requested: Option<&str>) -> Result<Info, ModuleError> {
        let bad = |reason: String| ModuleError::BadResponse {
            what: "version info",
            reason,
        };
        if body.len() as u64 > MAX_INFO_BYTES {
            return Err(bad(format!(
                "{} bytes, more than the {MAX_INFO_BYTES} allowed",
                body.len()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "Version")]
            version: String,
            #[serde(rename = "Time")]
            time: String,
        }
        let raw: Raw = serde_json::from_slice(body)
            .map_err(|e| bad(format!("want a JSON object with Version and Time: {e}")))?;
        check_canonical_version(&raw.version)?;
        if !is_rfc3339(&raw.time) {
            return Err(bad(format!(
                "Time {:?} is not RFC 3339",
                truncate(&raw.time)
            )));
        }
        if let Some(want) = requested {
            if check_canonical_version(want).is_ok() && raw.version != want {
                return Err(bad(format!(
                    "asked about {want}, answered about {}",
                    raw.version
                )));
            }
        }
        Ok(Info {
            version: raw.version,
            time: raw.time,
        })
    }

    /// The JSON served for it (only the checked fields).
    pub fn to_json(&self) -> String {
        serde_json::json!({ "Version": self.version, "Time": self.time }).to_string()
    }
}

/// Parses a GOPROXY `@v/list` body: at most [`MAX_LIST_BYTES`], one
/// canonical version per line (a final newline and an empty list are
/// fine). Returns the versions.
pub fn parse_list(body: &[u8]) -> Result<Vec<String>, ModuleError> {
    let bad = |reason: String| ModuleError::BadResponse {
        what: "version list",
        reason,
    };
    if body.len() as u64 > MAX_LIST_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_LIST_BYTES} allowed",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8".to_string()))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('\n')
        .map(|line| {
            check_canonical_version(line)?;
            Ok(line.to_string())
        })
        .collect()
}

/// Whether `s` is an RFC 3339 date-time (`2006-01-02T15:04:05Z`, with
/// optional fractional seconds and a `Z` or `±hh:mm` offset), as Go's
/// `time.Time` marshals to JSON.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let (month, day, hour, min, sec) =
        (num(5..7), num(8..10), num(11..13), num(14..16), num(17..19));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || i - start > 9 {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && digits(i + 1..i + 3)
                && at(i + 3, b':')
                && digits(i + 4..i + 6)
                && num(i + 1..i + 3) < 24
                && num(i + 4..i + 6) < 60
        }
        _ => false,
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
            assert_eq!(ProxyRequest::parse_wire(&r.to_path()), Ok(r.clone()));
        }
    }

    #[test]
    fn request_paths_are_decoded_once_per_segment() {
        assert_eq!(
            decode_request_path("/example.com/%21hello/@v/v1.1.0.zip").as_deref(),
            Ok("/example.com/!hello/@v/v1.1.0.zip")
        );
        assert_eq!(decode_request_path("/plain").as_deref(), Ok("/plain"));
        // Decoded once: %25 becomes a literal %, not decoded again.
        assert_eq!(
            ProxyRequest::parse_wire("/x.com/m/@v/v1%252e.info"),
            Ok(ProxyRequest::Info {
                path: "x.com/m".into(),
                version: "v1%2e".into()
            })
        );
        for bad in [
            "/a%2",
            "/a%zz",
            "/a%ff",
            "/example.com%2Fgreet/@v/list",
            "/example.com%2fgreet/@v/list",
        ] {
            assert!(decode_request_path(bad).is_err(), "accepted {bad:?}");
        }
        // `%2e%2e` decodes to `..`, which no module path or version allows.
        assert!(ProxyRequest::parse_wire("/example.com/%2e%2e/x/@v/list").is_err());
        assert!(ProxyRequest::parse_wire("/example.com/x/@v/%2e%2e.info").is_err());
    }

    #[test]
    fn upstream_paths_percent_encode_what_is_not_url_safe() {
        let info = |v: &str| ProxyRequest::Info {
            path: "x.com/M".into(),
            version: v.into(),
        };
        assert_eq!(info("v1%2e").to_path(), "x.com/!m/@v/v1%252e.info");
        assert_eq!(info("a b#c?d").to_path(), "x.com/!m/@v/a%20b%23c%3Fd.info");
        assert_eq!(info("master").to_path(), "x.com/!m/@v/master.info");
        for v in ["v1%2e", "a b#c", "x[1]^{}", "%41"] {
            assert_eq!(ProxyRequest::parse_wire(&info(v).to_path()), Ok(info(v)));
        }
    }

    #[test]
    fn info_answers_must_carry_a_canonical_version_and_a_time() {
        let ok = br#"{"Version":"v1.0.0","Time":"2026-01-02T03:04:05Z","Origin":{"VCS":"git"}}"#;
        let i = Info::parse(ok, Some("v1.0.0")).unwrap();
        assert_eq!(i.version, "v1.0.0");
        assert_eq!(
            i.to_json(),
            r#"{"Time":"2026-01-02T03:04:05Z","Version":"v1.0.0"}"#
        );
        assert!(Info::parse(ok, Some("master")).is_ok());
        assert!(Info::parse(ok, None).is_ok());
        for t in [
            "2026-01-02T03:04:05.123456789Z",
            "2026-01-02T03:04:05+02:00",
            "2026-01-02T03:04:05.5-07:30",
        ] {
            let b = format!(r#"{{"Version":"v1.0.0","Time":"{t}"}}"#);
            assert!(Info::parse(b.as_bytes(), None).is_ok(), "{t}");
        }
        assert!(Info::parse(ok, Some("v1.0.1")).is_err(), "other version");
        for bad in [
            &b""[..],
            b"[]",
            b"<html>",
            br#"{"Version":"v1.0.0"}"#,
            br#"{"Version":"master","Time":"2026-01-02T03:04:05Z"}"#,
            br#"{"Version":"v1.0.0","Time":"yesterday"}"#,
            br#"{"Version":"v1.0.0","Time":"2026-13-02T03:04:05Z"}"#,
            br#"{"Version":"v1.0.0","Time":"2026-01-02T03:04:05"}"#,
            br#"{"Version":"v1.0.0","Time":"2026-01-02T03:04:05.Z"}"#,
            br#"{"Version":1,"Time":"2026-01-02T03:04:05Z"}"#,
        ] {
            assert!(
                Info::parse(bad, None).is_err(),
                "accepted {}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = format!(
            r#"{{"Version":"v1.0.0","Time":"2026-01-02T03:04:05Z","X":"{}"}}"#,
            "a".repeat(MAX_INFO_BYTES as usize)
        );
        assert!(Info::parse(big.as_bytes(), None).is_err());
    }

    #[test]
    fn list_answers_are_canonical_versions_one_per_line() {
        assert_eq!(parse_list(b""), Ok(vec![]));
        assert_eq!(parse_list(b"\n").map(|v| v.len()), Ok(0));
        assert_eq!(
            parse_list(b"v1.0.0\nv1.1.0-rc.1\n"),
            Ok(vec!["v1.0.0".to_string(), "v1.1.0-rc.1".to_string()])
        );
        assert_eq!(parse_list(b"v1.0.0").map(|v| v.len()), Ok(1));
        for bad in [
            &b"v1.0.0\n\nv1.1.0\n"[..],
            b"v1.0\n",
            b"<html></html>\n",
            b"v1.0.0 extra\n",
            b"v1.0.0\r\n",
            b"\xff\n",
        ] {
            assert!(
                parse_list(bad).is_err(),
                "accepted {}",
                String::from_utf8_lossy(bad)
            );
        }
        let big = "v1.0.0\n".repeat(MAX_LIST_BYTES as usize / 7 + 1);
        assert!(parse_list(big.as_bytes()).is_err());
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
                let _ = ProxyRequest::parse_wire(input);
                let _ = Info::parse(input.as_bytes(), None);
                let _ = parse_list(input.as_bytes());
                if let Ok(r) = ProxyRequest::parse(input) {
                    // Whatever parses is re-encoded to a path that parses the same.
                    proptest::prop_assert_eq!(ProxyRequest::parse_wire(&r.to_path()), Ok(r));
                }
            }
        }
    }
}
