//! Index pages of the simple repository API, in both of its formats:
//! PEP 503 HTML (with the `data-*` attributes of PEP 592, 658/714, 740 and
//! the `pypi:` meta tags of PEP 629/792) and PEP 691 JSON (with the keys of
//! PEP 700, 714, 740 and 792).
//!
//! An upstream's page is untrusted input. It is parsed into one checked
//! model ([`ProjectPage`], [`ProjectList`]) and every page bulwark serves
//! is written from that model, never passed through: file URLs and
//! provenance URLs are bulwark's own, and only what was checked is said.
//!
//! Checks: the page is at most the caller's byte cap and [`MAX_FILES`]
//! files; every filename is a plain file name; a `sha256` is 64 hex
//! digits; every field is at most [`MAX_FIELD`] bytes; an HTML anchor's
//! text is the last segment of its URL (PEP 503); a file listed twice with
//! two digests, or twice with different metadata, is refused (an index
//! may not say two things about one file).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::name::ProjectName;

/// The PEP 691 JSON media type (API version 1).
pub const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
/// The PEP 691 HTML media type (API version 1).
pub const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";
/// The API version bulwark serves (PEP 629; 1.1 adds `size`, `versions`
/// and `upload-time` of PEP 700).
pub const API_VERSION: &str = "1.1";

/// Most files on one project page.
pub const MAX_FILES: usize = 200_000;
/// Largest index page read (big projects list tens of thousands of files).
pub const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;
/// Most projects on the project list.
pub const MAX_PROJECTS: usize = 2_000_000;
/// Longest field (a URL, a `requires-python`, a yank reason).
pub const MAX_FIELD: usize = 4096;
/// Longest filename.
pub const MAX_FILENAME: usize = 255;

/// A SHA-256 digest as an index states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// Parses 64 hex digits (either case).
    pub fn parse(s: &str) -> Option<Sha256> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Sha256(out))
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Whether a distribution's core metadata (PEP 658) is served beside it,
/// and its digest if the index gave one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreMetadata {
    Absent,
    Present(Option<Sha256>),
}

/// One file of a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    /// The file name (no path separators).
    pub filename: String,
    /// Where the upstream says it is (possibly relative to the page's URL),
    /// without fragment.
    pub url: String,
    /// The digest the index gives, if it gives a SHA-256.
    pub sha256: Option<Sha256>,
    pub requires_python: Option<String>,
    /// `Some(reason)` (the reason may be empty) when yanked (PEP 592).
    pub yanked: Option<String>,
    pub core_metadata: CoreMetadata,
    /// The upstream's provenance URL (PEP 740), if any.
    pub provenance: Option<String>,
    /// Size in bytes (PEP 700), if given.
    pub size: Option<u64>,
    /// Upload time (PEP 700), as given.
    pub upload_time: Option<String>,
}

/// A project's status (PEP 792).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStatus {
    /// `active`, `archived`, `quarantined` or `deprecated`.
    pub status: String,
    pub reason: Option<String>,
}

/// A project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    pub name: ProjectName,
    /// In the upstream's order, each filename once.
    pub files: Vec<DistFile>,
    /// The project's versions (PEP 700), if the upstream listed them.
    pub versions: Option<Vec<String>>,
    pub status: Option<ProjectStatus>,
}

/// The project list (`/simple/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectList {
    pub projects: Vec<ProjectName>,
}

/// Why an index page was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimpleError {
    #[error("index page is not valid JSON of the simple API: {0}")]
    Json(String),
    #[error("index page is not valid UTF-8")]
    Encoding,
    #[error("index page is for project {seen:?}, asked for {expected:?}")]
    WrongProject { expected: String, seen: String },
    #[error("index page lists more than {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("index page: {what} of {len} bytes is longer than the {limit} allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("index page: file name {0:?} is not a plain file name")]
    Filename(String),
    #[error("index page: file {filename:?}: {what} {value:?} is malformed")]
    Field {
        filename: String,
        what: &'static str,
        value: String,
    },
    #[error("index page: anchor text {text:?} is not the last segment of its URL {url:?}")]
    AnchorMismatch { text: String, url: String },
    #[error("index page lists file {filename:?} twice, saying different things ({detail})")]
    Duplicate { filename: String, detail: String },
    #[error("index page: project name: {0}")]
    Name(String),
}

/// Whether `s` is a plain distribution file name: ASCII letters, digits
/// and `.`, `_`, `-`, `+`, `!`, `~` (what wheel and sdist names are made
/// of), not `.` or `..`, at most [`MAX_FILENAME`] bytes.
pub fn check_filename(s: &str) -> Result<(), SimpleError> {
    let plain = !s.is_empty()
        && s.len() <= MAX_FILENAME
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+!~".contains(&c));
    if plain {
        Ok(())
    } else {
        Err(SimpleError::Filename(s.chars().take(80).collect()))
    }
}

/// Adds a file, refusing a second listing that says something else.
fn push_file(
    files: &mut Vec<DistFile>,
    seen: &mut BTreeMap<String, usize>,
    f: DistFile,
) -> Result<(), SimpleError> {
    if let Some(&i) = seen.get(&f.filename) {
        let old = &files[i];
        if old.sha256 != f.sha256 {
            return Err(SimpleError::Duplicate {
                filename: f.filename,
                detail: format!(
                    "sha256 {} and {}",
                    old.sha256.map_or("none".into(), |h| h.hex()),
                    f.sha256.map_or("none".into(), |h| h.hex())
                ),
            });
        }
        if *old != f {
            return Err(SimpleError::Duplicate {
                filename: f.filename,
                detail: "the same digest with other attributes".into(),
            });
        }
        return Ok(());
    }
    if files.len() >= MAX_FILES {
        return Err(SimpleError::TooMany {
            what: "files",
            limit: MAX_FILES,
        });
    }
    seen.insert(f.filename.clone(), files.len());
    files.push(f);
    Ok(())
}

fn check_project(expected: &ProjectName, seen: &str) -> Result<(), SimpleError> {
    let name = ProjectName::parse(seen).map_err(|e| SimpleError::Name(e.to_string()))?;
    if &name != expected {
        return Err(SimpleError::WrongProject {
            expected: expected.to_string(),
            seen: seen.chars().take(80).collect(),
        });
    }
    Ok(())
}

// ---- PEP 691 JSON -------------------------------------------------------

#[derive(Deserialize)]
struct JsonProjectIn {
    name: String,
    files: Vec<JsonFileIn>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default, rename = "project-status")]
    project_status: Option<JsonStatus>,
}

#[derive(Deserialize)]
struct JsonFileIn {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<BoolOr<String>>,
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOr<BTreeMap<String, String>>>,
    #[serde(default)]
    provenance: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, rename = "upload-time")]
    upload_time: Option<String>,
}

#[derive(Deserialize, Serialize, Clone)]
struct JsonStatus {
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOr<T> {
    Bool(bool),
    Value(T),
}

#[derive(Deserialize)]
struct JsonListIn {
    projects: Vec<JsonListEntry>,
}

#[derive(Deserialize, Serialize)]
struct JsonListEntry {
    name: String,
}

/// A text field of a file: at most [`MAX_FIELD`] bytes, no control
/// characters (an index has no use for them, and they do not survive
/// HTML).
fn opt_field(
    filename: &str,
    what: &'static str,
    v: Option<String>,
) -> Result<Option<String>, SimpleError> {
    match v {
        Some(s) if s.len() > MAX_FIELD || s.chars().any(char::is_control) => {
            Err(SimpleError::Field {
                filename: filename.to_string(),
                what,
                value: s.chars().take(80).collect(),
            })
        }
        v => Ok(v),
    }
}

fn hash_of(
    filename: &str,
    what: &'static str,
    hashes: &BTreeMap<String, String>,
) -> Result<Option<Sha256>, SimpleError> {
    match hashes.get("sha256") {
        None => Ok(None),
        Some(h) => Sha256::parse(h)
            .map(Some)
            .ok_or_else(|| SimpleError::Field {
                filename: filename.to_string(),
                what,
                value: h.chars().take(80).collect(),
            }),
    }
}

/// Parses a PEP 691 JSON project page of `expected`.
pub fn parse_project_json(body: &[u8], expected: &ProjectName) -> Result<ProjectPage, SimpleError> {
    let page: JsonProjectIn =
        serde_json::from_slice(body).map_err(|e| SimpleError::Json(e.to_string()))?;
    check_project(expected, &page.name)?;
    let mut files = Vec::new();
    let mut seen = BTreeMap::new();
    for f in page.files {
        check_filename(&f.filename)?;
        let name = f.filename.clone();
        opt_field(&name, "URL", Some(f.url.clone()))?;
        let core = f.core_metadata.or(f.dist_info_metadata);
        let core_metadata = match core {
            None | Some(BoolOr::Bool(false)) => CoreMetadata::Absent,
            Some(BoolOr::Bool(true)) => CoreMetadata::Present(None),
            Some(BoolOr::Value(h)) => {
                CoreMetadata::Present(hash_of(&name, "core-metadata sha256", &h)?)
            }
        };
        let yanked = match f.yanked {
            None | Some(BoolOr::Bool(false)) => None,
            Some(BoolOr::Bool(true)) => Some(String::new()),
            Some(BoolOr::Value(reason)) => opt_field(&name, "yank reason", Some(reason))?,
        };
        let file = DistFile {
            sha256: hash_of(&name, "sha256", &f.hashes)?,
            url: strip_fragment(&f.url).to_string(),
            requires_python: opt_field(&name, "requires-python", f.requires_python)?,
            yanked,
            core_metadata,
            provenance: opt_field(&name, "provenance URL", f.provenance)?,
            size: f.size,
            upload_time: opt_field(&name, "upload-time", f.upload_time)?,
            filename: f.filename,
        };
        push_file(&mut files, &mut seen, file)?;
    }
    let versions = match page.versions {
        Some(v) if v.len() > MAX_FILES => {
            return Err(SimpleError::TooMany {
                what: "versions",
                limit: MAX_FILES,
            })
        }
        Some(v) => {
            for s in &v {
                opt_field("", "version", Some(s.clone()))?;
            }
            Some(v)
        }
        None => None,
    };
    let status = match page.project_status {
        Some(s) => {
            opt_field("", "project status", Some(s.status.clone()))?;
            opt_field("", "project status reason", s.reason.clone())?;
            Some(ProjectStatus {
                status: s.status,
                reason: s.reason,
            })
        }
        None => None,
    };
    Ok(ProjectPage {
        name: expected.clone(),
        files,
        versions,
        status,
    })
}

/// Parses a PEP 691 JSON project list.
pub fn parse_list_json(body: &[u8]) -> Result<ProjectList, SimpleError> {
    let list: JsonListIn =
        serde_json::from_slice(body).map_err(|e| SimpleError::Json(e.to_string()))?;
    if list.projects.len() > MAX_PROJECTS {
        return Err(SimpleError::TooMany {
            what: "projects",
            limit: MAX_PROJECTS,
        });
    }
    let mut projects = Vec::with_capacity(list.projects.len());
    for p in list.projects {
        projects.push(ProjectName::parse(&p.name).map_err(|e| SimpleError::Name(e.to_string()))?);
    }
    Ok(ProjectList { projects })
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

// ---- PEP 503 HTML -------------------------------------------------------

mod html {
    use std::cell::RefCell;

    use html5ever::tendril::{ByteTendril, ReadExt as _};
    use html5ever::tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer,
    };

    /// One anchor: its attributes (name → value, first wins) and its text.
    #[derive(Debug, Default)]
    pub struct Anchor {
        pub attrs: Vec<(String, String)>,
        pub text: String,
    }

    impl Anchor {
        pub fn attr(&self, name: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// What a page says: its anchors and its `<meta name content>` pairs.
    #[derive(Debug, Default)]
    pub struct Scan {
        pub anchors: Vec<Anchor>,
        pub metas: Vec<(String, String)>,
        pub too_many: bool,
        pub too_long: bool,
    }

    struct Sink {
        scan: RefCell<Scan>,
        open: RefCell<Option<Anchor>>,
        max_anchors: usize,
        max_field: usize,
    }

    impl TokenSink for Sink {
        type Handle = ();

        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            let mut scan = self.scan.borrow_mut();
            match token {
                Token::TagToken(tag) if &*tag.name == "a" => match tag.kind {
                    TagKind::StartTag => {
                        let mut a = Anchor::default();
                        for at in tag.attrs {
                            let name = at.name.local.to_string();
                            if at.value.len() > self.max_field {
                                scan.too_long = true;
                                continue;
                            }
                            if !a.attrs.iter().any(|(n, _)| *n == name) {
                                a.attrs.push((name, at.value.to_string()));
                            }
                        }
                        if let Some(prev) = self.open.borrow_mut().replace(a) {
                            // An anchor left open: it ends where the next starts.
                            if scan.anchors.len() < self.max_anchors {
                                scan.anchors.push(prev);
                            } else {
                                scan.too_many = true;
                            }
                        }
                    }
                    TagKind::EndTag => {
                        if let Some(a) = self.open.borrow_mut().take() {
                            if scan.anchors.len() < self.max_anchors {
                                scan.anchors.push(a);
                            } else {
                                scan.too_many = true;
                            }
                        }
                    }
                },
                Token::TagToken(tag) if &*tag.name == "meta" => {
                    let get = |n: &str| {
                        tag.attrs
                            .iter()
                            .find(|a| &*a.name.local == n)
                            .map(|a| a.value.to_string())
                    };
                    if let (Some(n), Some(c)) = (get("name"), get("content")) {
                        if n.len() <= self.max_field && c.len() <= self.max_field {
                            if scan.metas.len() < 64 {
                                scan.metas.push((n, c));
                            }
                        } else {
                            scan.too_long = true;
                        }
                    }
                }
                Token::CharacterTokens(t) => {
                    if let Some(a) = self.open.borrow_mut().as_mut() {
                        if a.text.len() + t.len() > self.max_field {
                            scan.too_long = true;
                        } else {
                            a.text.push_str(&t);
                        }
                    }
                }
                Token::EOFToken => {
                    if let Some(a) = self.open.borrow_mut().take() {
                        if scan.anchors.len() < self.max_anchors {
                            scan.anchors.push(a);
                        } else {
                            scan.too_many = true;
                        }
                    }
                }
                _ => {}
            }
            TokenSinkResult::Continue
        }
    }

    /// Tokenises `body` (UTF-8) with the HTML standard's tokenizer and
    /// keeps the anchors and meta tags.
    pub fn scan(body: &str, max_anchors: usize, max_field: usize) -> Scan {
        let mut chunk = ByteTendril::new();
        // Reading from a slice cannot fail.
        let _ = body.as_bytes().read_to_tendril(&mut chunk);
        let input = BufferQueue::default();
        if let Ok(t) = chunk.try_reinterpret() {
            input.push_back(t);
        }
        let tok = Tokenizer::new(
            Sink {
                scan: RefCell::new(Scan::default()),
                open: RefCell::new(None),
                max_anchors,
                max_field,
            },
            Default::default(),
        );
        let _ = tok.feed(&input);
        tok.end();
        tok.sink.scan.take()
    }
}

/// Percent-decodes a URL path segment; `None` if it is not valid UTF-8
/// after decoding or has a malformed escape.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let h = std::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The last path segment of a URL (query and fragment cut), decoded.
fn last_segment(url: &str) -> Option<String> {
    let path = url.split(['#', '?']).next().unwrap_or("");
    percent_decode(path.rsplit('/').next().unwrap_or(""))
}

fn html_str(body: &[u8]) -> Result<&str, SimpleError> {
    std::str::from_utf8(body).map_err(|_| SimpleError::Encoding)
}

/// Parses a PEP 503 HTML project page of `expected`. The page's own
/// project name is not in the format; the caller asked for `expected`.
pub fn parse_project_html(body: &[u8], expected: &ProjectName) -> Result<ProjectPage, SimpleError> {
    let scan = html::scan(html_str(body)?, MAX_FILES + 1, MAX_FIELD);
    if scan.too_many || scan.anchors.len() > MAX_FILES {
        return Err(SimpleError::TooMany {
            what: "files",
            limit: MAX_FILES,
        });
    }
    if scan.too_long {
        return Err(SimpleError::TooLong {
            what: "attribute or anchor text",
            len: MAX_FIELD + 1,
            limit: MAX_FIELD,
        });
    }
    let mut files = Vec::new();
    let mut seen = BTreeMap::new();
    for a in &scan.anchors {
        let Some(href) = a.attr("href") else { continue };
        let filename = a.text.trim().to_string();
        check_filename(&filename)?;
        if last_segment(href).as_deref() != Some(filename.as_str()) {
            return Err(SimpleError::AnchorMismatch {
                text: filename,
                url: href.chars().take(200).collect(),
            });
        }
        let field = |what: &'static str, v: &str| SimpleError::Field {
            filename: filename.clone(),
            what,
            value: v.chars().take(80).collect(),
        };
        let frag_hash = |frag: &str, what: &'static str| -> Result<Option<Sha256>, SimpleError> {
            match frag.split_once('=') {
                Some(("sha256", h)) => Sha256::parse(h).map(Some).ok_or_else(|| field(what, frag)),
                Some((algo, _)) if !algo.is_empty() => Ok(None),
                _ => Err(field(what, frag)),
            }
        };
        let sha256 = match href.split_once('#') {
            Some((_, frag)) => frag_hash(frag, "URL fragment")?,
            None => None,
        };
        let core_attr = a
            .attr("data-core-metadata")
            .or_else(|| a.attr("data-dist-info-metadata"));
        let core_metadata = match core_attr {
            None => CoreMetadata::Absent,
            Some("true") => CoreMetadata::Present(None),
            Some(v) => CoreMetadata::Present(frag_hash(v, "data-core-metadata")?),
        };
        let text = |what, v: Option<&str>| opt_field(&filename, what, v.map(str::to_string));
        let file = DistFile {
            url: text("URL", Some(strip_fragment(href)))?.unwrap_or_default(),
            sha256,
            requires_python: text("requires-python", a.attr("data-requires-python"))?,
            yanked: text("yank reason", a.attr("data-yanked"))?,
            core_metadata,
            provenance: text("provenance URL", a.attr("data-provenance"))?,
            size: None,
            upload_time: None,
            filename,
        };
        push_file(&mut files, &mut seen, file)?;
    }
    let meta = |n: &str| {
        scan.metas
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let status = match opt_field("", "project status", meta("pypi:project-status"))? {
        Some(status) => Some(ProjectStatus {
            status,
            reason: opt_field(
                "",
                "project status reason",
                meta("pypi:project-status-reason"),
            )?,
        }),
        None => None,
    };
    Ok(ProjectPage {
        name: expected.clone(),
        files,
        versions: None,
        status,
    })
}

/// Parses a PEP 503 HTML project list (one anchor per project).
pub fn parse_list_html(body: &[u8]) -> Result<ProjectList, SimpleError> {
    let scan = html::scan(html_str(body)?, MAX_PROJECTS + 1, MAX_FIELD);
    if scan.too_many || scan.anchors.len() > MAX_PROJECTS {
        return Err(SimpleError::TooMany {
            what: "projects",
            limit: MAX_PROJECTS,
        });
    }
    let mut projects = Vec::with_capacity(scan.anchors.len());
    for a in &scan.anchors {
        projects
            .push(ProjectName::parse(a.text.trim()).map_err(|e| SimpleError::Name(e.to_string()))?);
    }
    Ok(ProjectList { projects })
}

// ---- Writing pages ------------------------------------------------------

/// The two formats a page is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

impl Format {
    /// Picks the format for a client's `Accept` header as PEP 691 says:
    /// the highest `q` among the simple API's types (`text/html` and `*/*`
    /// count as HTML); JSON wins a tie; HTML when nothing matches.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Html;
        };
        let mut best: Option<(f32, Format)> = None;
        for item in accept.split(',').take(32) {
            let mut parts = item.split(';');
            let ty = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let f = match ty.as_str() {
                JSON_V1 | "application/vnd.pypi.simple.latest+json" => Format::Json,
                HTML_V1 | "application/vnd.pypi.simple.latest+html" | "text/html" | "*/*" => {
                    Format::Html
                }
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, bf)) => q > bq || (q == bq && f == Format::Json && bf == Format::Html),
            };
            if better {
                best = Some((q, f));
            }
        }
        best.map_or(Format::Html, |(_, f)| f)
    }

    /// The `Content-Type` of a page in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON_V1,
            Format::Html => HTML_V1,
        }
    }
}

/// bulwark's own URLs for one file: where to fetch it and its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub file: String,
    /// Only for files whose upstream has provenance.
    pub provenance: Option<String>,
}

#[derive(Serialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: &'static str,
}

#[derive(Serialize)]
struct JsonProjectOut<'a> {
    meta: JsonMeta,
    name: &'a str,
    files: Vec<JsonFileOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<&'a [String]>,
    #[serde(rename = "project-status", skip_serializing_if = "Option::is_none")]
    project_status: Option<JsonStatus>,
}

#[derive(Serialize)]
struct JsonFileOut<'a> {
    filename: &'a str,
    url: String,
    hashes: BTreeMap<&'static str, String>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked: Option<serde_json::Value>,
    #[serde(rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    core_metadata: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "upload-time", skip_serializing_if = "Option::is_none")]
    upload_time: Option<&'a str>,
}

fn core_json(c: CoreMetadata) -> Option<serde_json::Value> {
    match c {
        CoreMetadata::Absent => None,
        CoreMetadata::Present(None) => Some(serde_json::Value::Bool(true)),
        CoreMetadata::Present(Some(h)) => Some(serde_json::json!({ "sha256": h.hex() })),
    }
}

/// Escapes text for an HTML attribute value or element content.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl ProjectPage {
    /// Writes the page in `format`, with `links` giving bulwark's URLs of
    /// each file (called once per file; a file it returns `None` for is
    /// left out).
    pub fn render(&self, format: Format, links: impl Fn(&DistFile) -> Option<Links>) -> Vec<u8> {
        match format {
            Format::Json => self.to_json(links),
            Format::Html => self.to_html(links).into_bytes(),
        }
    }

    fn to_json(&self, links: impl Fn(&DistFile) -> Option<Links>) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .filter_map(|f| {
                let l = links(f)?;
                let mut hashes = BTreeMap::new();
                if let Some(h) = f.sha256 {
                    hashes.insert("sha256", h.hex());
                }
                Some(JsonFileOut {
                    filename: &f.filename,
                    url: l.file,
                    hashes,
                    requires_python: f.requires_python.as_deref(),
                    yanked: f.yanked.as_ref().map(|r| {
                        if r.is_empty() {
                            serde_json::Value::Bool(true)
                        } else {
                            serde_json::Value::String(r.clone())
                        }
                    }),
                    core_metadata: core_json(f.core_metadata),
                    provenance: l.provenance,
                    size: f.size,
                    upload_time: f.upload_time.as_deref(),
                })
            })
            .collect();
        let out = JsonProjectOut {
            meta: JsonMeta {
                api_version: API_VERSION,
            },
            name: self.name.as_str(),
            files,
            versions: self.versions.as_deref(),
            project_status: self.status.as_ref().map(|s| JsonStatus {
                status: s.status.clone(),
                reason: s.reason.clone(),
            }),
        };
        // Serialising owned strings and maps cannot fail.
        serde_json::to_vec(&out).unwrap_or_default()
    }

    fn to_html(&self, links: impl Fn(&DistFile) -> Option<Links>) -> String {
        let name = escape(self.name.as_str());
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n"
        );
        if let Some(s) = &self.status {
            let _ = writeln!(
                out,
                "<meta name=\"pypi:project-status\" content=\"{}\">",
                escape(&s.status)
            );
            if let Some(r) = &s.reason {
                let _ = writeln!(
                    out,
                    "<meta name=\"pypi:project-status-reason\" content=\"{}\">",
                    escape(r)
                );
            }
        }
        let _ = write!(
            out,
            "<title>Links for {name}</title>\n</head>\n<body>\n<h1>Links for {name}</h1>\n"
        );
        for f in &self.files {
            let Some(l) = links(f) else { continue };
            let mut href = l.file;
            if let Some(h) = f.sha256 {
                let _ = write!(href, "#sha256={}", h.hex());
            }
            let _ = write!(out, "<a href=\"{}\"", escape(&href));
            if let Some(rp) = &f.requires_python {
                let _ = write!(out, " data-requires-python=\"{}\"", escape(rp));
            }
            if let Some(y) = &f.yanked {
                let _ = write!(out, " data-yanked=\"{}\"", escape(y));
            }
            match f.core_metadata {
                CoreMetadata::Absent => {}
                CoreMetadata::Present(None) => out.push_str(" data-core-metadata=\"true\""),
                CoreMetadata::Present(Some(h)) => {
                    let _ = write!(out, " data-core-metadata=\"sha256={}\"", h.hex());
                }
            }
            if let Some(p) = &l.provenance {
                let _ = write!(out, " data-provenance=\"{}\"", escape(p));
            }
            let _ = writeln!(out, ">{}</a><br>", escape(&f.filename));
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

impl ProjectList {
    /// Writes the list in `format`, each project linking to
    /// `project_url(name)`.
    pub fn render(&self, format: Format, project_url: impl Fn(&ProjectName) -> String) -> Vec<u8> {
        match format {
            Format::Json => {
                let projects: Vec<JsonListEntry> = self
                    .projects
                    .iter()
                    .map(|p| JsonListEntry {
                        name: p.to_string(),
                    })
                    .collect();
                serde_json::to_vec(&serde_json::json!({
                    "meta": { "api-version": API_VERSION },
                    "projects": projects,
                }))
                .unwrap_or_default()
            }
            Format::Html => {
                let mut out = format!(
                    "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n<title>Simple index</title>\n</head>\n<body>\n"
                );
                for p in &self.projects {
                    let _ = writeln!(
                        out,
                        "<a href=\"{}\">{}</a><br>",
                        escape(&project_url(p)),
                        escape(p.as_str())
                    );
                }
                out.push_str("</body>\n</html>\n");
                out.into_bytes()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "6f6e0c33bd0ee4b5e1e5c0b9d4d0e5de0c1e8f7e7b6a5c4d3e2f1a0b9c8d7e6f";
    const H2: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    fn name(s: &str) -> ProjectName {
        ProjectName::parse(s).unwrap()
    }

    /// What pypiserver 2 writes for a project page.
    fn pypiserver_page() -> String {
        format!(
            r#"<!DOCTYPE html>
<html>
  <head>
    <title>Links for Sample_Project</title>
  </head>
  <body>
    <h1>Links for Sample_Project</h1>
         <a href="../../packages/sample_project-1.0.tar.gz#sha256={H1}">sample_project-1.0.tar.gz</a><br>
         <a href="../../packages/sample_project-1.0%2Blocal-py3-none-any.whl#sha256={H2}" data-requires-python="&gt;=3.8" data-yanked="">sample_project-1.0+local-py3-none-any.whl</a><br>
  </body>
</html>
"#
        )
    }

    #[test]
    fn a_pypiserver_html_page_parses_with_its_hashes_and_attributes() {
        let p = parse_project_html(pypiserver_page().as_bytes(), &name("sample-project")).unwrap();
        assert_eq!(p.files.len(), 2);
        let a = &p.files[0];
        assert_eq!(a.filename, "sample_project-1.0.tar.gz");
        assert_eq!(a.url, "../../packages/sample_project-1.0.tar.gz");
        assert_eq!(a.sha256.unwrap().hex(), H1);
        assert_eq!(a.yanked, None);
        let b = &p.files[1];
        assert_eq!(b.filename, "sample_project-1.0+local-py3-none-any.whl");
        assert_eq!(b.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(b.yanked.as_deref(), Some(""));
    }

    #[test]
    fn a_json_page_parses_with_every_key_bulwark_keeps() {
        let body = serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "Sample.Project",
            "files": [{
                "filename": "sample_project-1.0-py3-none-any.whl",
                "url": "https://files.example/x/sample_project-1.0-py3-none-any.whl",
                "hashes": {"sha256": H1, "md5": "00"},
                "requires-python": ">=3.8",
                "yanked": "broken",
                "core-metadata": {"sha256": H2},
                "provenance": "https://index.example/integrity/x/1.0/f/provenance",
                "size": 1234,
                "upload-time": "2024-01-01T00:00:00.000000Z",
                "future-key": 7
            }],
            "versions": ["1.0"],
            "project-status": {"status": "archived", "reason": "done"}
        });
        let p = parse_project_json(body.to_string().as_bytes(), &name("sample-project")).unwrap();
        let f = &p.files[0];
        assert_eq!(f.sha256.unwrap().hex(), H1);
        assert_eq!(f.yanked.as_deref(), Some("broken"));
        assert_eq!(f.core_metadata, CoreMetadata::Present(Sha256::parse(H2)));
        assert_eq!(f.size, Some(1234));
        assert_eq!(p.versions.as_deref(), Some(&["1.0".to_string()][..]));
        assert_eq!(p.status.as_ref().unwrap().status, "archived");
    }

    #[test]
    fn both_formats_write_what_was_parsed_with_bulwarks_urls() {
        let p = parse_project_html(pypiserver_page().as_bytes(), &name("sample-project")).unwrap();
        let links = |f: &DistFile| {
            Some(Links {
                file: format!("/pypi/files/sample-project/{}", f.filename),
                provenance: None,
            })
        };
        let html = p.render(Format::Html, links);
        let back = parse_project_html(&html, &name("sample-project")).unwrap();
        assert_eq!(back.files.len(), 2);
        for (a, b) in p.files.iter().zip(&back.files) {
            assert_eq!(b.url, format!("/pypi/files/sample-project/{}", a.filename));
            assert_eq!(
                (
                    &a.filename,
                    a.sha256,
                    &a.requires_python,
                    &a.yanked,
                    a.core_metadata
                ),
                (
                    &b.filename,
                    b.sha256,
                    &b.requires_python,
                    &b.yanked,
                    b.core_metadata
                )
            );
        }
        let json = p.render(Format::Json, links);
        let back = parse_project_json(&json, &name("sample-project")).unwrap();
        assert_eq!(back.files[1].yanked.as_deref(), Some(""));
        assert_eq!(back.files[0].sha256, p.files[0].sha256);
        assert!(!String::from_utf8_lossy(&json).contains("packages/"));
    }

    #[test]
    fn a_file_listed_twice_with_two_digests_is_refused() {
        let body = format!(
            r#"<a href="/p/x-1.0.tar.gz#sha256={H1}">x-1.0.tar.gz</a><a href="/q/x-1.0.tar.gz#sha256={H2}">x-1.0.tar.gz</a>"#
        );
        let e = parse_project_html(body.as_bytes(), &name("x")).unwrap_err();
        assert!(matches!(e, SimpleError::Duplicate { .. }), "{e}");
        // The same listing twice says one thing: kept once.
        let body = format!(
            r#"<a href="/p/x-1.0.tar.gz#sha256={H1}">x-1.0.tar.gz</a><a href="/p/x-1.0.tar.gz#sha256={H1}">x-1.0.tar.gz</a>"#
        );
        assert_eq!(
            parse_project_html(body.as_bytes(), &name("x"))
                .unwrap()
                .files
                .len(),
            1
        );
    }

    #[test]
    fn hostile_pages_are_refused_with_the_reason() {
        let x = name("x");
        for (body, want) in [
            (
                r#"<a href="/p/y-1.0.tar.gz">x-1.0.tar.gz</a>"#.to_string(),
                "anchor",
            ),
            (r#"<a href="/p/..">..</a>"#.to_string(), "file name"),
            (
                r#"<a href="/p/x.tar.gz#sha256=zz">x.tar.gz</a>"#.to_string(),
                "malformed",
            ),
            (
                format!(r#"<a href="/p/x.tar.gz#sha256={H1}0">x.tar.gz</a>"#),
                "malformed",
            ),
            (r#"<a href="/p/a%2Fb">a/b</a>"#.to_string(), "file name"),
        ] {
            let e = parse_project_html(body.as_bytes(), &x).unwrap_err();
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
        let wrong = serde_json::json!({"name": "y", "files": []}).to_string();
        assert!(matches!(
            parse_project_json(wrong.as_bytes(), &x),
            Err(SimpleError::WrongProject { .. })
        ));
        assert!(parse_project_json(b"{", &x).is_err());
        assert!(parse_project_html(b"\xff\xfe", &x).is_err());
        let long = format!(r#"<a href="/p/{0}">{0}</a>"#, "a".repeat(MAX_FIELD + 1));
        assert!(parse_project_html(long.as_bytes(), &x).is_err());
    }

    #[test]
    fn project_lists_parse_in_both_formats() {
        let html = br#"<html><body><a href="/simple/a/">A</a><a href="/simple/b-c/">b_c</a></body></html>"#;
        let l = parse_list_html(html).unwrap();
        assert_eq!(
            l.projects.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["a", "b-c"]
        );
        let json = l.render(Format::Json, |p| format!("/pypi/simple/{p}/"));
        assert_eq!(parse_list_json(&json).unwrap(), l);
        let html = l.render(Format::Html, |p| format!("/pypi/simple/{p}/"));
        assert_eq!(parse_list_html(&html).unwrap(), l);
    }

    #[test]
    fn accept_headers_as_pip_and_uv_send_them_negotiate_json() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        assert_eq!(Format::negotiate(Some(pip)), Format::Json);
        assert_eq!(Format::negotiate(Some("text/html")), Format::Html);
        assert_eq!(Format::negotiate(None), Format::Html);
        assert_eq!(
            Format::negotiate(Some("application/vnd.pypi.simple.v1+json;q=0, text/html")),
            Format::Html
        );
        assert_eq!(Format::negotiate(Some("image/png")), Format::Html);
    }
}
