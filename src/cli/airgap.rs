//! The air gap: `bulwark sync`, `bulwark export`, `bulwark import`.
//!
//! None of them has a verifier of its own: they drive the protocol fronts
//! `serve` uses, in process, with the requests a client would send, so
//! every byte they store took the one verified path (checkpoint under the
//! pinned key, consistency with the trust state, inclusion, hash, then
//! write-fsync-rename and index).
//!
//! - `sync` reads lockfiles (`go.sum`, `requirements.txt`, `pylock.toml`,
//!   `uv.lock`, `package-lock.json`, parsed by
//!   [`bulwark::airgap::lockfile`], or a list of `ecosystem name version`
//!   lines) and fetches each version through the pipeline of its
//!   ecosystem: a Go module's checksum-database record first (proven
//!   included), compared with the hash the lockfile pins, then its `.mod`
//!   and `.zip`; a Python package's index page (its sha256 compared with
//!   the lockfile's pins) then its files; an npm package's packument (its
//!   `dist.integrity` compared with the lockfile's) then its tarball.
//! - `export` writes one tar: per Go upstream, its accepted signed tree,
//!   the stored module files, the records that proved them and the tiles
//!   bulwark authenticated, laid out as a GOPROXY and a checksum database
//!   (`gomod/<upstream>/proxy/<module>/@v/<version>.zip|.mod`,
//!   `gomod/<upstream>/sumdb/latest|lookup/<m>@<v>|tile/...`); per PyPI
//!   upstream a simple index of the stored files (`pypi/<upstream>/...`,
//!   [`export_pypi`]); per npm upstream a registry of the stored tarballs
//!   (`npm/<upstream>/...`, [`export_npm`]); and a `MANIFEST` with the
//!   SHA-256 and size of every member.
//! - `import` trusts nothing in the tar: it serves it read-only on a
//!   loopback port, points each exported upstream (and its checksum
//!   database) at it for this run, and `sync`s everything in it through
//!   the same pipelines: the signed tree is checked under this side's
//!   pinned key and proven consistent with this side's trust state (a
//!   forked bundle quarantines the upstream as a live fork does), every
//!   record proven included, every page and packument checked again
//!   (registry signatures under this side's keys, provenance under its
//!   Sigstore root), every file hashed before it is stored.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr as _;
use std::sync::Arc;

use bulwark::airgap::lockfile::{self, Entry, Kind, NpmPin, PyFile, PyPin};
use bulwark::airgap::{goproof, manifest};
use bulwark::config::Config;
use bulwark::ecosystem::EcosystemContext;
use bulwark::gomod::config::{GoSettings, PROTOCOL as GOMOD};
use bulwark::gomod::module::{ModuleVersion, ProxyRequest};
use bulwark::gomod::sumdb::{self, Lookup as SumdbLookup};
use bulwark::gomod::verifier::{decode_record, module_key};
use bulwark::http::{Front, ReqBody, ResBody};
use bulwark::npm::config::PROTOCOL as NPM;
use bulwark::npm::name::PackageName;
use bulwark::npm::packument::sri_sha512;
use bulwark::npm::resolve::{NpmUpstream, ATTESTATIONS_KIND, TARBALL_KIND};
use bulwark::pipeline::artifacts::Lookup;
use bulwark::pipeline::refusal::Refusal;
use bulwark::pipeline::rekor::Rekor;
use bulwark::pypi::config::PROTOCOL as PYPI;
use bulwark::pypi::filename::DistFilename;
use bulwark::pypi::name::ProjectName;
use bulwark::pypi::resolve::{PypiUpstream, FILE_KIND, PROVENANCE_KIND};
use bulwark::pypi::saved::SavedPages;
use bulwark::pypi::simple::{Format, Links, JSON_V1};
use bulwark::server::App;
use bulwark::store::index::kinds;
use bulwark::store::{ArtifactIndex, Digest, FsBlobStore};
use bulwark::tlog::merkle::prove_record;
use bulwark::tlog::note::{self, Signer, VerifierKey};
use bulwark::tlog::proof::{TlogProof, MAX_PROOF_SIZE};
use bulwark::tlog::tile::{Dialect, Tile, TileHashReader, TileReader};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use futures_util::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use sha2::Digest as _;

/// How many module or package versions are fetched at once.
const CONCURRENCY: usize = 8;
/// Largest answer body kept in memory (a lookup, an error); module files
/// are drained, never kept.
const MAX_KEPT_BODY: usize = 64 * 1024;
/// The tar member listing every other member with its SHA-256 and size.
const MANIFEST: &str = "MANIFEST";
/// Longest line of a lockfile read.
const MAX_LINE: usize = 4096;
/// The bundle's folder of PyPI upstreams.
const BUNDLE_PYPI: &str = "pypi";
/// The bundle's folder of npm upstreams.
const BUNDLE_NPM: &str = "npm";
/// The member a bundle path ending in `/` (a PyPI project page) is
/// answered from.
const PAGE_MEMBER: &str = "index.json";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// One line per module version.
    Plain,
    /// Only the summary.
    None,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Configuration file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Lockfiles: `go.sum`, `requirements.txt`, `pylock.toml`, `uv.lock`,
    /// `package-lock.json`, or lines of `ecosystem name version`.
    #[arg(required = true)]
    pub lockfiles: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Configuration file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub spec: ExportSpec,
}

/// What `export` writes (also what it sends a running `serve`).
#[derive(Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// The tar to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Only these upstreams (default: every Go, PyPI and npm upstream).
    #[arg(long)]
    pub upstream: Vec<String>,
    /// Only artifacts bulwark verified at or after this time (RFC 3339,
    /// e.g. `2026-11-01T00:00:00Z`, or a date `2026-11-01`): a bundle of
    /// what is new since the last one carried across.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only what these lockfiles name (the files `sync` reads; repeat).
    #[arg(long = "from", value_name = "LOCKFILE")]
    pub from: Vec<PathBuf>,
    /// Sign the bundle's manifest with this key (a file holding a
    /// `PRIVATE+KEY+...` signed-note key, as `bulwark keygen` writes):
    /// adds `MANIFEST.sig`, which `import --manifest-key` checks.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

impl ExportSpec {
    /// The same with every path absolute (for a `serve` with another
    /// working directory).
    pub fn absolute(self) -> std::io::Result<ExportSpec> {
        Ok(ExportSpec {
            out: std::path::absolute(&self.out)?,
            from: self
                .from
                .iter()
                .map(std::path::absolute)
                .collect::<std::io::Result<_>>()?,
            sign_key: self
                .sign_key
                .as_deref()
                .map(std::path::absolute)
                .transpose()?,
            ..self
        })
    }
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Configuration file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Require the bundle's manifest signed by this key (a signed-note
    /// verifier key `<name>+<id>+<base64>`; repeat to accept any of
    /// several), and every member to be as the manifest lists it.
    #[arg(long = "manifest-key", value_name = "KEY")]
    pub manifest_keys: Vec<String>,
    /// The tar written by `bulwark export`.
    pub file: PathBuf,
}

pub type Load = fn(Option<&Path>) -> Result<Config, bulwark::config::ConfigError>;

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn finish(r: anyhow::Result<ExitCode>) -> ExitCode {
    r.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// One module version to fetch, with the hashes a lockfile pins (if any).
#[derive(Debug, Clone)]
struct GoItem {
    m: ModuleVersion,
    zip: Option<Option<String>>,
    module: Option<Option<String>>,
}

/// One npm package version to fetch, with the integrity values lockfiles
/// pin (each must be the verified tarball's).
#[derive(Debug, Clone)]
struct NpmItem {
    name: PackageName,
    version: String,
    integrity: Vec<String>,
}

/// One thing `sync` or `import` fetches through the verified path.
enum Item {
    Go(GoItem),
    /// A Python package version (or, on import, one file), with its label.
    Py(String, PyPin),
    Npm(NpmItem),
}

impl Item {
    fn label(&self) -> String {
        match self {
            Item::Go(g) => g.m.to_string(),
            Item::Py(label, _) => label.clone(),
            Item::Npm(n) => format!("{}@{}", n.name, n.version),
        }
    }
}

/// What sync or import did with one module version.
enum Outcome {
    Verified,
    Already,
    Refused { check: String, message: String },
}

fn refused(check: &str, message: impl Into<String>) -> Outcome {
    Outcome::Refused {
        check: check.to_string(),
        message: message.into(),
    }
}

/// The mirror's fronts, in process, and the PyPI and npm upstreams'
/// pipelines (their pages, packuments, files and tarballs).
struct Mirror {
    ctx: EcosystemContext,
    fronts: Vec<Arc<dyn Front>>,
    pypi: HashMap<String, PypiUpstream>,
    npm: HashMap<String, NpmUpstream>,
}

/// The shared state of `config`'s data directory, opened for a run of
/// `sync` or `import` in this process (no `serve` holds it).
pub async fn open_context(config: Config) -> anyhow::Result<EcosystemContext> {
    let app = App::new(config)?;
    crate::cli::mirror::ecosystem_context(&app).await
}

/// A context for `config` sharing `base`'s trust state, blob store,
/// artifact index and metrics (one process holds them: a run inside
/// `serve` uses serve's own): `import` points its upstreams at the
/// bundle; `rekor_offline`: no Rekor log is asked either.
fn beside(
    base: &EcosystemContext,
    config: Config,
    rekor_offline: bool,
) -> anyhow::Result<EcosystemContext> {
    let federation = bulwark::federation::Federation::new(&config.upstreams)?;
    let offline = rekor_offline || config.server.offline;
    Ok(EcosystemContext {
        federation: Arc::new(federation),
        rekor: Rekor::new(base.trust.clone(), offline),
        config: Arc::new(config),
        ..base.clone()
    })
}

/// A refusal as an outcome, with what was expected and seen (when the
/// check has them).
fn refused_seen(check: &str, message: &str, expected: Option<&str>, seen: Option<&str>) -> Outcome {
    match (expected, seen) {
        (Some(e), Some(s)) => refused(check, format!("{message} (expected {e}, seen {s})")),
        _ => refused(check, message),
    }
}

/// A pipeline refusal as an outcome.
fn from_refusal(r: &Refusal) -> Outcome {
    refused_seen(
        r.check,
        &r.message,
        r.expected.as_deref(),
        r.seen.as_deref(),
    )
}

/// Whether the SRI string a lockfile pins names `verified`, the sha512
/// `what` (the verified tarball, or its verified `dist.integrity`) has.
fn integrity_matches(pinned: &str, verified: &[u8; 64], what: &str) -> Result<(), String> {
    use base64::Engine as _;
    let seen = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(verified)
    );
    match sri_sha512(pinned) {
        Some(h) if h == *verified => Ok(()),
        Some(_) => Err(format!("the lockfile pins {pinned}, {what} is {seen}")),
        None => Err(format!(
            "the lockfile pins {pinned}, which names no sha512 to check; {what} is {seen}"
        )),
    }
}

/// An answer of a front: status and (up to [`MAX_KEPT_BODY`] of) body.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    /// The refusal a non-200 answer carries (the front's JSON error).
    fn refusal(&self) -> Outcome {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let check = field("check").unwrap_or_else(|| format!("status-{}", self.status.as_u16()));
        let message = field("message").unwrap_or_else(|| self.status.to_string());
        let (e, s) = (field("expected"), field("seen"));
        refused_seen(&check, &message, e.as_deref(), s.as_deref())
    }
}

impl Mirror {
    /// The mirror's fronts over `ctx`, built for this run.
    fn new(ctx: EcosystemContext) -> anyhow::Result<Mirror> {
        let fronts = crate::cli::mirror::protocol_fronts(&ctx)?;
        let mut pypi = HashMap::new();
        for u in ctx.upstreams(PYPI) {
            pypi.insert(u.name.clone(), PypiUpstream::new(&ctx, u)?);
        }
        let mut npm = HashMap::new();
        for u in ctx.upstreams(NPM) {
            npm.insert(u.name.clone(), NpmUpstream::new(&ctx, u)?);
        }
        Ok(Mirror {
            ctx,
            fronts,
            pypi,
            npm,
        })
    }

    /// Fetches one item through the verified path.
    async fn sync(&self, item: &Item) -> Outcome {
        match item {
            Item::Go(g) => self.sync_go(g).await,
            Item::Py(_, p) => self.sync_pypi(p).await,
            Item::Npm(n) => self.sync_npm(n).await,
        }
    }

    /// The upstream of `protocol` (among `upstreams`) that serves `name`.
    fn owner<'u, U>(
        &self,
        protocol: &str,
        name: &str,
        upstreams: &'u HashMap<String, U>,
    ) -> Result<&'u U, Outcome> {
        self.ctx
            .federation
            .route(protocol, name)
            .and_then(|u| upstreams.get(&u.name))
            .ok_or_else(|| refused("route", format!("no {protocol} upstream serves {name}")))
    }

    /// Whether `kind` `key` of `upstream` is verified and stored, and its
    /// digest.
    async fn stored_digest(&self, upstream: &str, kind: &str, key: &str) -> Option<Digest> {
        match self.ctx.artifacts.lookup(upstream, kind, key).await {
            Ok(Lookup::Hit { entry, .. }) => Some(entry.digest),
            _ => None,
        }
    }

    /// A Python package version (or named files of it) through the PyPI
    /// pipeline: the project's page, checked; the files the lockfile
    /// names (or every file of the version, or those whose sha256 it
    /// pins), each pinned sha256 compared with the page's, then each file
    /// fetched, hashed, vouched for and stored by the pipeline.
    async fn sync_pypi(&self, pin: &PyPin) -> Outcome {
        let project = &pin.project;
        let up = match self.owner(PYPI, project.as_str(), &self.pypi) {
            Ok(u) => u,
            Err(o) => return o,
        };
        let lockfile = |filename: &str, pinned: &[u8; 32], seen: &str| {
            refused(
                "lockfile",
                format!(
                    "upstream {}: {filename} of {project}: the lockfile pins sha256 {}, {seen}",
                    up.name,
                    hex::encode(pinned)
                ),
            )
        };
        // What the lockfile names, each with its pinned sha256.
        let mut wanted: Vec<(String, Option<[u8; 32]>)> = pin
            .files
            .iter()
            .map(|f| (f.filename.clone(), f.sha256))
            .collect();
        // Resumed: every named file is stored already (its digest is
        // still compared with the pin below), so the page is not needed.
        let mut stored_all = !wanted.is_empty();
        for (f, _) in &wanted {
            let key = format!("{project}/{f}");
            stored_all &= self
                .stored_digest(&up.name, FILE_KIND, &key)
                .await
                .is_some();
        }
        if !stored_all {
            let page = match up.page(project).await {
                Ok((p, _)) => p,
                Err(r) => return from_refusal(&r),
            };
            if wanted.is_empty() {
                let want = match pep440_rs::Version::from_str(&pin.version) {
                    Ok(v) => v,
                    Err(e) => {
                        return refused("lockfile", format!("{project}=={}: {e}", pin.version))
                    }
                };
                for f in &page.files {
                    let same = DistFilename::parse(&f.filename)
                        .is_ok_and(|d| &d.project == project && d.version == want);
                    let sha = f.sha256.map(|h| h.0);
                    if same
                        && (pin.hashes.is_empty() || sha.is_some_and(|h| pin.hashes.contains(&h)))
                    {
                        wanted.push((f.filename.clone(), sha));
                    }
                }
                for h in &pin.hashes {
                    if !wanted.iter().any(|(_, s)| s.as_ref() == Some(h)) {
                        return lockfile(
                            &format!("{project}=={}", pin.version),
                            h,
                            "and no file of that version on the index page has it",
                        );
                    }
                }
                if wanted.is_empty() {
                    return refused(
                        "index",
                        format!(
                            "upstream {}: the index page of {project} lists no file of version {}",
                            up.name, pin.version
                        ),
                    );
                }
            }
            for (filename, pinned) in &wanted {
                let listed = page.files.iter().find(|f| &f.filename == filename);
                if let (Some(p), Some(f)) = (pinned, listed) {
                    match f.sha256 {
                        Some(s) if s.0 != *p => {
                            return lockfile(
                                filename,
                                p,
                                &format!(
                                    "the index page (and so the verified file) says {}",
                                    s.hex()
                                ),
                            )
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut new = false;
        for (filename, pinned) in &wanted {
            let key = format!("{project}/{filename}");
            let before = self.stored_digest(&up.name, FILE_KIND, &key).await;
            let digest = match up.file(project, filename).await {
                Ok((_, d, _)) => d,
                Err(r) => return from_refusal(&r),
            };
            if let Some(p) = pinned.filter(|p| p != digest.as_bytes()) {
                return lockfile(
                    filename,
                    &p,
                    &format!("the verified file's is {}", digest.hex()),
                );
            }
            new |= before.is_none();
        }
        if new {
            Outcome::Verified
        } else {
            Outcome::Already
        }
    }

    /// An npm package version through the npm pipeline: its packument,
    /// checked (registry signatures as the upstream asks), the lockfile's
    /// integrity compared with the verified one, then the tarball
    /// fetched, hashed against `dist.integrity` and stored.
    async fn sync_npm(&self, item: &NpmItem) -> Outcome {
        let (name, version) = (&item.name, &item.version);
        let up = match self.owner(NPM, name.as_str(), &self.npm) {
            Ok(u) => u,
            Err(o) => return o,
        };
        let lockfile = |why: String| {
            refused(
                "lockfile",
                format!("upstream {}: {name}@{version}: {why}", up.name),
            )
        };
        let key = format!("{name}@{version}");
        if let Some(digest) = self.stored_digest(&up.name, TARBALL_KIND, &key).await {
            if !item.integrity.is_empty() {
                let blobs = self.ctx.artifacts.blobs().clone();
                let sha512 = tokio::task::spawn_blocking(move || blobs.sha512_of(&digest)).await;
                let sha512 = match sha512 {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => return refused("store", format!("{key}: {e}")),
                    Err(e) => return refused("store", format!("{key}: {e}")),
                };
                for pinned in &item.integrity {
                    if let Err(why) = integrity_matches(pinned, &sha512, "the verified tarball") {
                        return lockfile(why);
                    }
                }
            }
            return Outcome::Already;
        }
        if !item.integrity.is_empty() {
            let p = match up.packument(name).await {
                Ok((p, _)) => p,
                Err(r) => return from_refusal(&r),
            };
            // A version missing from the checked packument is refused by
            // the tarball's own path below, naming why.
            if let Some(v) = p.versions.get(version.as_str()) {
                for pinned in &item.integrity {
                    let what = "the verified packument's dist.integrity";
                    if let Err(why) = integrity_matches(pinned, &v.dist.sha512, what) {
                        return lockfile(why);
                    }
                }
            }
        }
        match up.tarball(name, version).await {
            Ok(_) => Outcome::Verified,
            Err(r) => from_refusal(&r),
        }
    }

    /// GET `path` through the front that claims it, as a client would.
    async fn get(&self, path: &str) -> Answer {
        let empty: ReqBody = http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        let req = match Request::get(path).body(empty) {
            Ok(r) => r,
            Err(e) => {
                return Answer {
                    status: StatusCode::BAD_REQUEST,
                    body: Bytes::from(format!("{{\"message\":\"bad path: {e}\"}}")),
                }
            }
        };
        for f in &self.fronts {
            if let Some(route) = f.route(&req) {
                let res = f.handle(route, req).await;
                return Answer {
                    status: res.status(),
                    body: drain(res.into_body()).await,
                };
            }
        }
        Answer {
            status: StatusCode::NOT_FOUND,
            body: Bytes::from_static(
                b"{\"check\":\"route\",\"message\":\"no upstream serves it\"}",
            ),
        }
    }

    /// The Go upstream `m` routes to: its name and its checksum database's.
    fn go_route(&self, m: &ModuleVersion) -> Option<(String, String)> {
        let u = self.ctx.federation.route(GOMOD, &m.path)?;
        let sumdb = u.settings::<GoSettings>()?.sumdb.name.clone();
        Some((u.name.clone(), sumdb))
    }

    /// Whether `kind` of `m` is verified and stored already.
    async fn stored(&self, upstream: &str, kind: &str, m: &ModuleVersion) -> bool {
        matches!(
            self.ctx
                .artifacts
                .lookup(upstream, kind, &module_key(m))
                .await,
            Ok(Lookup::Hit { .. })
        )
    }

    /// Fetches one module version through the verified path.
    async fn sync_go(&self, item: &GoItem) -> Outcome {
        let m = &item.m;
        let Some((upstream, sumdb)) = self.go_route(m) else {
            return refused(
                "route",
                format!("no gomod upstream serves the module {}", m.path),
            );
        };
        let mut already = true;
        for (want, kind) in [
            (&item.zip, kinds::GOMOD_ZIP),
            (&item.module, kinds::GOMOD_MOD),
        ] {
            if want.is_some() && !self.stored(&upstream, kind, m).await {
                already = false;
            }
        }
        // The record, proven included (from the index when it is there).
        let a = self
            .get(&format!("/sumdb/{sumdb}/lookup/{}", m.escaped()))
            .await;
        if a.status != StatusCode::OK {
            return a.refusal();
        }
        let rec = match SumdbLookup::parse(&a.body) {
            Ok(l) => l.record,
            Err(e) => return refused("format", format!("lookup of {m}: {e}")),
        };
        for (pin, what, logged) in [
            (&item.zip, "zip", rec.zip_hash.to_string()),
            (&item.module, "go.mod", rec.mod_hash.to_string()),
        ] {
            if let Some(Some(pinned)) = pin {
                if *pinned != logged {
                    return refused(
                        "lockfile",
                        format!(
                            "upstream {upstream}: {what} of {m}: the lockfile pins {pinned}, the checksum database's record (proven included) says {logged}"
                        ),
                    );
                }
            }
        }
        for (want, req) in [
            (&item.module, ProxyRequest::Mod(m.clone())),
            (&item.zip, ProxyRequest::Zip(m.clone())),
        ] {
            if want.is_none() {
                continue;
            }
            let a = self.get(&format!("/{}", req.to_path())).await;
            if a.status != StatusCode::OK {
                return a.refusal();
            }
        }
        if already {
            Outcome::Already
        } else {
            Outcome::Verified
        }
    }

    /// Runs every item with bounded concurrency, reporting each outcome,
    /// then the summary; `true` when nothing was refused.
    async fn run(
        &self,
        items: Vec<Item>,
        extra: Vec<(String, Outcome)>,
        report: &dyn Report,
    ) -> bool {
        report.start((items.len() + extra.len()) as u64);
        let mut results: Vec<(String, Outcome)> = extra;
        let mut done = futures_util::stream::iter(items.into_iter().map(|item| async move {
            let o = self.sync(&item).await;
            (item.label(), o)
        }))
        .buffer_unordered(CONCURRENCY);
        while let Some((name, o)) = done.next().await {
            report.item(&match &o {
                Outcome::Verified => format!("verified {name}"),
                Outcome::Already => format!("already there {name}"),
                Outcome::Refused { check, message } => {
                    format!("refused {name}: {check}: {message}")
                }
            });
            results.push((name, o));
        }
        report.finish();
        let (mut verified, mut already) = (0, 0);
        let mut refusals = Vec::new();
        for (name, o) in results {
            match o {
                Outcome::Verified => verified += 1,
                Outcome::Already => already += 1,
                Outcome::Refused { check, message } => refusals.push((name, check, message)),
            }
        }
        refusals.sort();
        report.print(&format!(
            "verified: {verified}, already there: {already}, refused: {}",
            refusals.len()
        ));
        for (name, check, message) in &refusals {
            report.print(&format!("refused {name}: {check}: {message}"));
        }
        refusals.is_empty()
    }
}

/// Where `sync` and `import` say what they do: one line per item (a
/// progress bar's message, or a plain line) and the summary.
pub trait Report: Send + Sync {
    /// `total` items are about to run.
    fn start(&self, total: u64);
    /// One item's outcome.
    fn item(&self, line: &str);
    /// Every item ran.
    fn finish(&self);
    /// A line of the summary (standard output).
    fn print(&self, line: &str);
    /// A remark on the way (standard error).
    fn note(&self, line: &str);
}

/// [`Report`] on this process's terminal: a bar on a terminal (`auto`),
/// plain lines on standard error otherwise, or only the summary.
pub struct Local {
    progress: Progress,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
}

impl Local {
    pub fn new(progress: Progress) -> Local {
        Local {
            progress,
            bar: std::sync::OnceLock::new(),
        }
    }
}

impl Report for Local {
    fn start(&self, total: u64) {
        if self.progress == Progress::Auto && std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} {elapsed} {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let _ = self.bar.set(b);
        }
    }

    fn item(&self, line: &str) {
        if let Some(b) = self.bar.get() {
            b.inc(1);
            b.set_message(line.to_string());
        } else if self.progress != Progress::None {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }

    fn print(&self, line: &str) {
        println!("{line}");
    }

    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// A response body read to its end, keeping at most [`MAX_KEPT_BODY`]
/// bytes (module files are only drained: the pipeline stored them before
/// answering).
async fn drain(mut body: ResBody) -> Bytes {
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = MAX_KEPT_BODY.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Bytes::from(kept)
}

/// What lockfiles (or a bundle) ask for, each thing once.
#[derive(Default)]
struct Items {
    go: BTreeMap<ModuleVersion, GoItem>,
    /// Keyed by project, version and whether files are named.
    py: BTreeMap<(String, String, bool), (String, PyPin)>,
    npm: BTreeMap<(String, String), NpmItem>,
}

impl Items {
    fn go(&mut self, m: ModuleVersion) -> &mut GoItem {
        self.go.entry(m.clone()).or_insert(GoItem {
            m,
            zip: None,
            module: None,
        })
    }

    fn py(&mut self, label: String, pin: PyPin) {
        let key = (
            pin.project.as_str().to_string(),
            pin.version.clone(),
            pin.files.is_empty(),
        );
        match self.py.get_mut(&key) {
            Some((_, have)) => {
                for h in pin.hashes {
                    if !have.hashes.contains(&h) {
                        have.hashes.push(h);
                    }
                }
                for f in pin.files {
                    if !have.files.contains(&f) {
                        have.files.push(f);
                    }
                }
            }
            None => {
                self.py.insert(key, (label, pin));
            }
        }
    }

    fn npm(&mut self, name: PackageName, version: String, integrity: Option<String>) {
        let item = self
            .npm
            .entry((name.as_str().to_string(), version.clone()))
            .or_insert(NpmItem {
                name,
                version,
                integrity: Vec::new(),
            });
        if let Some(i) = integrity {
            if !item.integrity.contains(&i) {
                item.integrity.push(i);
            }
        }
    }

    fn into_vec(self) -> Vec<Item> {
        let mut out: Vec<Item> = self.go.into_values().map(Item::Go).collect();
        out.extend(self.py.into_values().map(|(l, p)| Item::Py(l, p)));
        out.extend(self.npm.into_values().map(Item::Npm));
        out
    }
}

/// Reads a lockfile (recognised by [`Kind::detect`]): `go.sum` and lines
/// of `ecosystem name version` (`#` comments) here, the Python and npm
/// lockfiles through [`lockfile::parse`]. Entries bulwark does not fetch
/// are refused, with why.
fn read_lockfile(
    path: &Path,
    items: &mut Items,
    other: &mut Vec<(String, Outcome)>,
) -> anyhow::Result<()> {
    let at_file = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", path.display());
    let len = std::fs::metadata(path).map_err(|e| at_file(&e))?.len();
    if len > lockfile::MAX_LOCKFILE_BYTES {
        anyhow::bail!(
            "{}: {len} bytes, more than {} (not a lockfile bulwark reads)",
            path.display(),
            lockfile::MAX_LOCKFILE_BYTES
        );
    }
    let text = std::fs::read_to_string(path).map_err(|e| at_file(&e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = Kind::detect(&file_name, &text)
        .ok_or_else(|| anyhow::anyhow!("{}: empty, or not a lockfile", path.display()))?;
    if !matches!(kind, Kind::GoSum | Kind::List) {
        for e in lockfile::parse(kind, &text).map_err(|e| at_file(&e))? {
            match e {
                Entry::Pypi(pin) => {
                    let label = format!("{}=={}", pin.project, pin.version);
                    items.py(label, pin);
                }
                Entry::Npm(NpmPin {
                    name,
                    version,
                    integrity,
                }) => items.npm(name, version, integrity),
                Entry::Refused { what, reason } => other.push((
                    format!("{}: {what}", path.display()),
                    refused("lockfile", reason),
                )),
            }
        }
        return Ok(());
    }
    let is_gosum = kind == Kind::GoSum;
    for (no, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), no + 1);
        if line.len() > MAX_LINE {
            anyhow::bail!("{}: line longer than {MAX_LINE} bytes", at());
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if is_gosum {
            let [path_, version, hash] = words[..] else {
                anyhow::bail!("{}: want `module version h1:...`", at());
            };
            let (version, is_mod) = match version.strip_suffix("/go.mod") {
                Some(v) => (v, true),
                None => (version, false),
            };
            let m =
                ModuleVersion::new(path_, version).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            let item = items.go(m);
            let h = Some(Some(hash.to_string()));
            if is_mod {
                item.module = h;
            } else {
                item.zip = h;
            }
            continue;
        }
        let [eco, name, version] = words[..] else {
            anyhow::bail!("{}: want `ecosystem name version`", at());
        };
        match eco {
            GOMOD => {
                let m = ModuleVersion::new(name, version)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                let item = items.go(m);
                item.zip.get_or_insert(None);
                item.module.get_or_insert(None);
            }
            PYPI => {
                let project =
                    ProjectName::parse(name).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                items.py(
                    format!("{project}=={version}"),
                    PyPin {
                        project,
                        version: version.to_string(),
                        hashes: Vec::new(),
                        files: Vec::new(),
                    },
                );
            }
            NPM => {
                let name =
                    PackageName::parse(name).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                items.npm(name, version.to_string(), None);
            }
            _ => other.push((
                format!("{eco} {name} {version}"),
                refused(
                    "unsupported",
                    format!("sync does not fetch {eco} packages yet (only {GOMOD}, {PYPI}, {NPM})"),
                ),
            )),
        }
    }
    Ok(())
}

/// `bulwark sync` over `base` (this process's own stores, or a running
/// `serve`'s): what `lockfiles` name, through the verified pipelines;
/// `true` when nothing was refused.
pub async fn sync_with(
    base: &EcosystemContext,
    lockfiles: &[PathBuf],
    report: &dyn Report,
) -> anyhow::Result<bool> {
    let mut items = Items::default();
    let mut other = Vec::new();
    for f in lockfiles {
        read_lockfile(f, &mut items, &mut other)?;
    }
    let mirror = Mirror::new(base.clone())?;
    Ok(mirror.run(items.into_vec(), other, report).await)
}

/// A tar being written, with the manifest of its members.
struct Bundle<W: Write> {
    tar: tar::Builder<W>,
    manifest: String,
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: sha2::Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> Bundle<W> {
    fn add(&mut self, name: &str, len: u64, data: impl Read) -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let mut r = Hashing {
            inner: data.take(len),
            hash: sha2::Sha256::new(),
        };
        self.tar.append_data(&mut h, name, &mut r)?;
        self.manifest.push_str(&format!(
            "{} {len} {name}\n",
            hex::encode(r.hash.finalize())
        ));
        Ok(())
    }
}

/// `bulwark export` over `base` (this process's own stores, or a running
/// `serve`'s), on a blocking thread of its own (the tar is written with
/// synchronous I/O); `true` when written.
pub async fn export_with(
    base: &EcosystemContext,
    spec: &ExportSpec,
    report: &dyn Report,
) -> anyhow::Result<bool> {
    for name in &spec.upstream {
        if !base
            .config
            .upstreams
            .iter()
            .any(|u| &u.name == name && [GOMOD, PYPI, NPM].contains(&u.protocol.name()))
        {
            anyhow::bail!("--upstream {name}: no gomod, pypi or npm upstream of that name (export carries those)");
        }
    }
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(export_run(base, spec, report)))
}

async fn export_run(
    base: &EcosystemContext,
    args: &ExportSpec,
    report: &dyn Report,
) -> anyhow::Result<bool> {
    let config = &base.config;
    let signer = args.sign_key.as_deref().map(read_signer).transpose()?;
    let select = Selection::new(args)?;
    let data_dir = base.data_dir.clone();
    let trust = &base.trust;
    let blobs = base.artifacts.blobs();
    let index = base.artifacts.artifact_index();
    let tmp = args.out.with_extension("partial");
    let file = std::fs::File::create(&tmp)?;
    let mut b = Bundle {
        tar: tar::Builder::new(std::io::BufWriter::new(file)),
        manifest: String::new(),
    };
    let mut counts = Vec::new();
    for u in config
        .upstreams
        .iter()
        .filter(|u| u.protocol.name() == GOMOD)
    {
        if !args.upstream.is_empty() && !args.upstream.contains(&u.name) {
            continue;
        }
        let Some(acc) = trust.latest(&u.name).await? else {
            report.note(&format!(
                "upstream {}: nothing accepted yet, skipped",
                u.name
            ));
            continue;
        };
        let (epoch, base) = (acc.epoch, format!("gomod/{}", u.name));
        b.add(
            &format!("{base}/sumdb/latest"),
            acc.note.len() as u64,
            &acc.note[..],
        )?;
        let mut files = 0;
        let mut lookups: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut records: BTreeMap<String, (u64, String)> = BTreeMap::new();
        for kind in [kinds::GOMOD_RECORD, kinds::GOMOD_MOD, kinds::GOMOD_ZIP] {
            for (key, e) in index.list(&u.name, epoch, kind)? {
                let Some((p, v)) = key.rsplit_once('@') else {
                    continue;
                };
                let m = ModuleVersion::new(p, v)?;
                if !select.recent(&e) || !select.go(&m) {
                    continue;
                }
                let digest = (kind == kinds::GOMOD_RECORD).then_some(&e.digest);
                let Some(rec) = decode_record(&m, &e.proof, digest, epoch) else {
                    anyhow::bail!(
                        "upstream {}: index entry {kind} {key}: unreadable proof {:?}",
                        u.name,
                        e.proof
                    );
                };
                let mut body = format!("{}\n{}\n", rec.id, rec.record.text()).into_bytes();
                body.extend_from_slice(&acc.note);
                lookups.insert(m.escaped(), body);
                records.insert(m.escaped(), (rec.id, rec.record.text().to_string()));
                let req = match kind {
                    k if k == kinds::GOMOD_MOD => ProxyRequest::Mod(m),
                    k if k == kinds::GOMOD_ZIP => ProxyRequest::Zip(m),
                    _ => continue,
                };
                let path = blobs.path_of(&e.digest);
                let f = std::fs::File::open(&path)
                    .map_err(|err| anyhow::anyhow!("blob {} of {key}: {err}", e.digest))?;
                let len = f.metadata()?.len();
                b.add(&format!("{base}/proxy/{}", req.to_path()), len, f)?;
                files += 1;
            }
        }
        for (key, body) in &lookups {
            b.add(
                &format!("{base}/sumdb/lookup/{key}"),
                body.len() as u64,
                &body[..],
            )?;
        }
        let mut tiles = 0;
        let mut stored_tiles = HashMap::new();
        for (key, e) in index.list(&u.name, epoch, kinds::GOMOD_TILE)? {
            let path = blobs.path_of(&e.digest);
            let f =
                std::fs::File::open(&path).map_err(|err| anyhow::anyhow!("tile {key}: {err}"))?;
            let len = f.metadata()?.len();
            b.add(&format!("{base}/sumdb/{key}"), len, f)?;
            stored_tiles.insert(key, path);
            tiles += 1;
        }
        // Each record's inclusion in the exported tree, in the C2SP form
        // (c2sp.org/tlog-proof@v1: the record as `extra`, its index, the
        // proof, the signed checkpoint), computed from the stored tiles,
        // which are authenticated against the accepted root first.
        let reader = StoredTiles(stored_tiles);
        let hashes = TileHashReader::new(acc.size, acc.root, &reader);
        let mut proofs = 0;
        for (key, (id, text)) in &records {
            let Ok(proof) = prove_record(acc.size, *id, &hashes) else {
                report.note(&format!(
                    "upstream {}: {key}: no tlog-proof (the stored tiles do not prove record \
                     {id} in tree {}); the lookup and tiles still do",
                    u.name, acc.size
                ));
                continue;
            };
            let p = TlogProof {
                extra: Some(text.clone().into_bytes()),
                index: *id,
                hashes: proof,
                checkpoint_note: acc.note.clone(),
            }
            .to_bytes();
            b.add(&format!("{base}/tlog-proof/{key}"), p.len() as u64, &p[..])?;
            proofs += 1;
        }
        counts.push(format!(
            "upstream {}: tree {}, {files} file(s), {} record(s), {tiles} tile(s), {proofs} tlog-proof(s)",
            u.name,
            acc.size,
            lookups.len()
        ));
    }
    let stored = Stored {
        index,
        blobs,
        report,
        data_dir: &data_dir,
        select: &select,
    };
    let selected = |u: &&bulwark::config::UpstreamConfig| {
        args.upstream.is_empty() || args.upstream.contains(&u.name)
    };
    for u in config.upstreams.iter().filter(selected) {
        let kind = u.protocol.name();
        if kind != PYPI && kind != NPM {
            continue;
        }
        let epoch = match trust.gate(&u.name).await {
            Ok(e) => e,
            Err(e) => {
                report.note(&format!("upstream {}: skipped: {e}", u.name));
                continue;
            }
        };
        let c = if kind == PYPI {
            export_pypi(&mut b, &stored, &u.name, epoch)?
        } else {
            export_npm(&mut b, &stored, &u.name, epoch)?
        };
        counts.push(c);
    }
    let manifest = std::mem::take(&mut b.manifest);
    b.add(MANIFEST, manifest.len() as u64, manifest.as_bytes())?;
    if let Some(signer) = &signer {
        let sig = manifest::sign(manifest.as_bytes(), signer).map_err(anyhow::Error::msg)?;
        b.add(manifest::SIGNATURE_MEMBER, sig.len() as u64, &sig[..])?;
    }
    let w = b.tar.into_inner()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &args.out)?;
    for c in counts {
        report.print(&c);
    }
    report.print(&format!("wrote {}", args.out.display()));
    Ok(true)
}

/// What `export` reads: the artifact index, the blobs and the data
/// directory (the saved pages and packuments), and what to carry.
struct Stored<'s> {
    index: &'s ArtifactIndex,
    blobs: &'s FsBlobStore,
    report: &'s dyn Report,
    data_dir: &'s Path,
    select: &'s Selection,
}

/// The tiles the store holds, by their sumdb path, read for proofs.
struct StoredTiles(HashMap<String, PathBuf>);

impl TileReader for StoredTiles {
    type Error = std::io::Error;

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, std::io::Error> {
        tiles
            .iter()
            .map(|t| {
                let path = t.path(Dialect::SumDb);
                let file = self.0.get(&path).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("no stored {path}"))
                })?;
                std::fs::read(file)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// What `export` carries: every verified artifact, or those verified
/// since `--since` and named by the `--from` lockfiles. The proofs they
/// need (the accepted tree, its tiles, records, pages, packuments) come
/// with them.
#[derive(Default)]
struct Selection {
    since: Option<std::time::SystemTime>,
    from: Option<Items>,
}

impl Selection {
    fn new(args: &ExportSpec) -> anyhow::Result<Selection> {
        let since = args
            .since
            .as_deref()
            .map(|t| {
                t.parse::<jiff::Timestamp>()
                    .map(std::time::SystemTime::from)
                    .or_else(|_| {
                        t.parse::<jiff::civil::Date>()
                            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                            .map(|z| std::time::SystemTime::from(z.timestamp()))
                    })
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "--since {t:?}: expected an RFC 3339 time like \
                             2026-11-01T00:00:00Z or a date like 2026-11-01"
                        )
                    })
            })
            .transpose()?;
        let from = if args.from.is_empty() {
            None
        } else {
            let (mut items, mut other) = (Items::default(), Vec::new());
            for f in &args.from {
                read_lockfile(f, &mut items, &mut other)?;
            }
            Some(items)
        };
        Ok(Selection { since, from })
    }

    /// Verified at or after `--since`.
    fn recent(&self, e: &bulwark::store::index::Entry) -> bool {
        self.since.is_none_or(|t| e.at >= t)
    }

    fn go(&self, m: &ModuleVersion) -> bool {
        self.from.as_ref().is_none_or(|i| i.go.contains_key(m))
    }

    fn npm(&self, name: &str, version: &str) -> bool {
        self.from
            .as_ref()
            .is_none_or(|i| i.npm.contains_key(&(name.to_string(), version.to_string())))
    }

    /// A file of a pinned version of `project` (and one of the pin's named
    /// files, if it names files).
    fn py(&self, project: &str, filename: &str) -> bool {
        let Some(items) = &self.from else {
            return true;
        };
        let Ok(file) = DistFilename::parse(filename) else {
            return false;
        };
        items.py.values().any(|(_, pin)| {
            pin.project.as_str() == project
                && pin
                    .version
                    .parse::<pep440_rs::Version>()
                    .is_ok_and(|v| v == file.version)
                && (pin.files.is_empty() || pin.files.iter().any(|f| f.filename == filename))
        })
    }
}

/// Index entries grouped: package → (file or version → digest).
type Grouped = BTreeMap<String, BTreeMap<String, Digest>>;

impl Stored<'_> {
    /// The index entries of `kind` of `up` in `epoch`, each key split by
    /// `split` into package and file or version.
    fn grouped(
        &self,
        up: &str,
        epoch: u64,
        kind: &str,
        split: fn(&str) -> Option<(&str, &str)>,
        keep: impl Fn(&str, &str, &bulwark::store::index::Entry) -> bool,
    ) -> anyhow::Result<Grouped> {
        let mut out = Grouped::new();
        for (key, e) in self.index.list(up, epoch, kind)? {
            if let Some((package, rest)) = split(&key).filter(|(p, r)| keep(p, r, &e)) {
                out.entry(package.to_string())
                    .or_default()
                    .insert(rest.to_string(), e.digest);
            }
        }
        Ok(out)
    }

    /// Adds a stored blob as a member.
    fn add_blob<W: Write>(
        &self,
        b: &mut Bundle<W>,
        name: &str,
        digest: &Digest,
    ) -> anyhow::Result<()> {
        let f = std::fs::File::open(self.blobs.path_of(digest))
            .map_err(|e| anyhow::anyhow!("blob {digest} of {name}: {e}"))?;
        let len = f.metadata()?.len();
        b.add(name, len, f)
    }
}

/// A PyPI upstream's part of a bundle, laid out as a simple index the
/// importing side fetches from as that upstream:
/// `pypi/<upstream>/simple/<project>/index.json` (the last page checked,
/// PEP 691 JSON, listing only the stored files, with URLs relative to the
/// bundle), `pypi/<upstream>/files/<project>/<filename>` and, for files
/// verified with one, `pypi/<upstream>/provenance/<project>/<filename>`
/// (their PEP 740 provenance, verified again on the inside).
fn export_pypi<W: Write>(
    b: &mut Bundle<W>,
    st: &Stored<'_>,
    up: &str,
    epoch: u64,
) -> anyhow::Result<String> {
    let base = format!("{BUNDLE_PYPI}/{up}");
    let split: fn(&str) -> Option<(&str, &str)> = |k| k.split_once('/');
    let provenance = st.grouped(up, epoch, PROVENANCE_KIND, split, |_, _, _| true)?;
    let projects = st.grouped(up, epoch, FILE_KIND, split, |p, f, e| {
        st.select.recent(e) && st.select.py(p, f)
    })?;
    let saved = SavedPages::new(st.data_dir, up);
    let (mut pages, mut files, mut provs) = (0, 0, 0);
    for (project, stored) in &projects {
        let name = ProjectName::parse(project)?;
        let Some((page, _)) = saved.load(epoch, &name).map_err(|e| anyhow::anyhow!(e))? else {
            st.report.note(&format!(
                "upstream {up}: {project}: no saved index page, its files are not exported"
            ));
            continue;
        };
        let provs_of = provenance.get(project);
        let prov = |filename: &str| provs_of.and_then(|p| p.get(filename));
        let body = page.render(Format::Json, |f| {
            stored.get(&f.filename)?;
            Some(Links {
                file: format!("../../files/{project}/{}", f.filename),
                provenance: prov(&f.filename)
                    .map(|_| format!("../../provenance/{project}/{}", f.filename)),
            })
        });
        b.add(
            &format!("{base}/simple/{project}/{PAGE_MEMBER}"),
            body.len() as u64,
            &body[..],
        )?;
        pages += 1;
        for (filename, digest) in stored {
            st.add_blob(b, &format!("{base}/files/{project}/{filename}"), digest)?;
            files += 1;
            if let Some(d) = prov(filename) {
                st.add_blob(b, &format!("{base}/provenance/{project}/{filename}"), d)?;
                provs += 1;
            }
        }
    }
    Ok(format!(
        "upstream {up}: {pages} page(s), {files} file(s), {provs} provenance(s)"
    ))
}

/// An npm upstream's part of a bundle, laid out as a registry the
/// importing side fetches from as that upstream:
/// `npm/<upstream>/packument/<escaped name>` (the last packument checked,
/// the registry's own document with only the stored versions kept and
/// their tarball URLs relative to the bundle; the registry signatures
/// cover name, version and integrity, so the inside checks them again)
/// and `npm/<upstream>/tarball/<name>/-/<bare>-<version>.tgz`.
fn export_npm<W: Write>(
    b: &mut Bundle<W>,
    st: &Stored<'_>,
    up: &str,
    epoch: u64,
) -> anyhow::Result<String> {
    let base = format!("{BUNDLE_NPM}/{up}");
    let split: fn(&str) -> Option<(&str, &str)> =
        |k| k.rsplit_once('@').filter(|(n, _)| !n.is_empty());
    let packages = st.grouped(up, epoch, TARBALL_KIND, split, |n, v, e| {
        st.select.recent(e) && st.select.npm(n, v)
    })?;
    let attested = st.grouped(up, epoch, ATTESTATIONS_KIND, split, |_, _, _| true)?;
    let saved = bulwark::npm::saved::Saved::new(st.data_dir, up);
    let (mut docs, mut tarballs, mut answers) = (0, 0, 0);
    for (name, stored) in &packages {
        let name = PackageName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(body) = saved.load(epoch, &name)? else {
            st.report.note(&format!(
                "upstream {up}: {name}: no saved packument, its tarballs are not exported"
            ));
            continue;
        };
        let mut doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("upstream {up}: saved packument of {name}: {e}"))?;
        let tarball = |v: &str| format!("../tarball/{name}/-/{}-{v}.tgz", name.bare());
        if let Some(versions) = doc.get_mut("versions").and_then(|v| v.as_object_mut()) {
            versions.retain(|v, _| stored.contains_key(v));
            for (v, m) in versions.iter_mut() {
                if let Some(dist) = m.get_mut("dist").and_then(|d| d.as_object_mut()) {
                    dist.insert("tarball".into(), serde_json::Value::String(tarball(v)));
                }
            }
        }
        if let Some(tags) = doc.get_mut("dist-tags").and_then(|t| t.as_object_mut()) {
            tags.retain(|_, v| v.as_str().is_some_and(|v| stored.contains_key(v)));
        }
        let out = serde_json::to_vec(&doc)?;
        b.add(
            &format!("{base}/packument/{}", name.escaped()),
            out.len() as u64,
            &out[..],
        )?;
        docs += 1;
        for (v, digest) in stored {
            st.add_blob(
                b,
                &format!("{base}/tarball/{name}/-/{}-{v}.tgz", name.bare()),
                digest,
            )?;
            tarballs += 1;
            // The verified attestations answer, where the inside's npm
            // pipeline asks the registry for it.
            if let Some(a) = attested.get(name.as_str()).and_then(|a| a.get(v)) {
                st.add_blob(
                    b,
                    &format!(
                        "{base}/packument/-/npm/v1/attestations/{}@{v}",
                        name.escaped()
                    ),
                    a,
                )?;
                answers += 1;
            }
        }
    }
    Ok(format!(
        "upstream {up}: {docs} packument(s), {tarballs} tarball(s), {answers} attestations answer(s)"
    ))
}

/// The members of a bundle: name → (offset of the data, length).
type Members = HashMap<String, (u64, u64)>;

fn read_members(path: &Path) -> anyhow::Result<Members> {
    let f = std::fs::File::open(path)?;
    let mut ar = tar::Archive::new(f);
    let mut out = HashMap::new();
    for e in ar.entries()? {
        let e = e?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path()?.to_string_lossy().into_owned();
        out.insert(name, (e.raw_file_position(), e.size()));
    }
    Ok(out)
}

/// Serves the bundle's members read-only on a loopback port: `GET /<member>`
/// answers its bytes (a path ending in `/`, a PyPI project page: its
/// `index.json`), anything else 404.
async fn serve_bundle(
    file: PathBuf,
    members: Arc<Members>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let (file, members) = (file.clone(), members.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (file, members) = (file.clone(), members.clone());
                    async move {
                        let mut name = req.uri().path().trim_start_matches('/').to_string();
                        if name.ends_with('/') {
                            name.push_str(PAGE_MEMBER);
                        }
                        let res = match members.get(&name) {
                            Some(&(offset, len)) if req.method() == http::Method::GET => {
                                match std::fs::File::open(&file) {
                                    Ok(f) => {
                                        let mut r =
                                            http::Response::new(bulwark::http::stream_body(
                                                len,
                                                bulwark::store::file_stream(
                                                    f,
                                                    file.clone(),
                                                    offset,
                                                    len,
                                                ),
                                            ));
                                        let page = name.starts_with(BUNDLE_PYPI)
                                            && name.ends_with(PAGE_MEMBER);
                                        r.headers_mut().insert(
                                            http::header::CONTENT_TYPE,
                                            http::HeaderValue::from_static(if page {
                                                JSON_V1
                                            } else {
                                                "application/octet-stream"
                                            }),
                                        );
                                        r
                                    }
                                    Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
                                }
                            }
                            _ => status(StatusCode::NOT_FOUND),
                        };
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

fn status(s: StatusCode) -> http::Response<ResBody> {
    let mut r = http::Response::new(bulwark::http::full(Bytes::new()));
    *r.status_mut() = s;
    r
}

/// `bulwark keygen NAME --out FILE`: a new Ed25519 signed-note key for
/// `export --sign-key`, written to FILE (created, mode 0600, fsynced);
/// prints the verifier key `import --manifest-key` takes.
pub fn keygen(name: &str, out: &Path) -> ExitCode {
    finish((|| {
        use std::os::unix::fs::OpenOptionsExt as _;
        let signer =
            Signer::generate(name).map_err(|e| anyhow::anyhow!("key name {name:?}: {e}"))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out)
            .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        f.write_all(format!("{}\n", signer.to_signer_key()).as_bytes())?;
        f.sync_all()?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        println!("{}", signer.verifier_key());
        Ok(ExitCode::SUCCESS)
    })())
}

/// The operator's signing key in `path` (`PRIVATE+KEY+...`).
fn read_signer(path: &Path) -> anyhow::Result<Signer> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(note::MAX_KEY_STRING as u64 + 1)
                .read_to_string(&mut text)
        })
        .map_err(|e| anyhow::anyhow!("--sign-key {}: {e}", path.display()))?;
    text.trim()
        .parse::<Signer>()
        .map_err(|e| anyhow::anyhow!("--sign-key {}: {e}", path.display()))
}

/// A member's bytes, at most `max`.
fn member_bytes(file: &Path, members: &Members, name: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::{Seek as _, SeekFrom};
    let &(offset, len) = members
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("the bundle has no {name}"))?;
    if len > max {
        anyhow::bail!("{name} is {len} bytes, more than {max}");
    }
    let mut f = std::fs::File::open(file)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut out)?;
    Ok(out)
}

/// `--manifest-key`: the manifest's signature verifies under one of
/// `keys` and names the `MANIFEST`, and every member is the one the
/// manifest lists (size and SHA-256, read once, in order); no member is
/// missing or added.
fn check_manifest(file: &Path, members: &Members, keys: &[VerifierKey]) -> anyhow::Result<()> {
    let refused = |why: String| anyhow::anyhow!("bundle refused: manifest: {why}");
    let sig = member_bytes(
        file,
        members,
        manifest::SIGNATURE_MEMBER,
        manifest::MAX_SIGNATURE,
    )
    .map_err(|e| refused(e.to_string()))?;
    let text = member_bytes(file, members, MANIFEST, manifest::MAX_MANIFEST)
        .map_err(|e| refused(e.to_string()))?;
    let mut listed = manifest::check(&sig, &text, keys).map_err(refused)?;
    let mut ar = tar::Archive::new(std::fs::File::open(file)?);
    for e in ar.entries()? {
        let mut e = e?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path()?.to_string_lossy().into_owned();
        if name == MANIFEST || name == manifest::SIGNATURE_MEMBER {
            continue;
        }
        let want = listed
            .remove(&name)
            .ok_or_else(|| refused(format!("member {name} is not in the signed manifest")))?;
        let mut h = sha2::Sha256::new();
        let len = std::io::copy(&mut e, &mut h)?;
        let seen: [u8; 32] = h.finalize().into();
        if (seen, len) != (want.sha256, want.len) {
            return Err(refused(format!(
                "member {name}: expected sha256 {} ({} bytes), seen {} ({len} bytes)",
                hex::encode(want.sha256),
                want.len,
                hex::encode(seen)
            )));
        }
    }
    if let Some(name) = listed.keys().next() {
        return Err(refused(format!(
            "member {name} is in the signed manifest but not in the bundle ({} missing)",
            listed.len()
        )));
    }
    Ok(())
}

/// `bulwark import` over `base` (this process's own stores, or a running
/// `serve`'s): the bundle `file` verified again and stored; `true` when
/// nothing was refused.
pub async fn import_with(
    base: &EcosystemContext,
    file: &Path,
    manifest_keys: &[String],
    report: &dyn Report,
) -> anyhow::Result<bool> {
    let members = {
        let file = file.to_path_buf();
        Arc::new(tokio::task::spawn_blocking(move || read_members(&file)).await??)
    };
    if !manifest_keys.is_empty() {
        let keys = manifest_keys
            .iter()
            .map(|k| {
                k.parse::<VerifierKey>()
                    .map_err(|e| anyhow::anyhow!("--manifest-key {k:?}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (file, members) = (file.to_path_buf(), members.clone());
        tokio::task::spawn_blocking(move || check_manifest(&file, &members, &keys)).await??;
    }
    let mut config = (*base.config).clone();
    let (addr, server) = serve_bundle(file.to_path_buf(), members.clone()).await?;
    // Stopped however this returns (inside `serve`, a run that fails
    // must not leave the bundle served).
    let _server = AbortOnDrop(server);
    // This run asks the bundle, and only the bundle.
    config.server.offline = false;
    let mut items = Items::default();
    let mut carried = Vec::new();
    for u in config.upstreams.iter_mut() {
        let base = format!("gomod/{}", u.name);
        if u.protocol.name() != GOMOD || !members.contains_key(&format!("{base}/sumdb/latest")) {
            continue;
        }
        let Some(mut s) = u.settings::<GoSettings>().cloned() else {
            continue;
        };
        u.url = format!("http://{addr}/{base}/proxy");
        s.sumdb.url = format!("http://{addr}/{base}/sumdb");
        carried.push((u.name.clone(), s.sumdb.name.clone()));
        u.set_settings(s);
    }
    for name in members.keys() {
        for (up, _) in &carried {
            let Some(rest) = name.strip_prefix(&format!("gomod/{up}/proxy/")) else {
                continue;
            };
            let m = match ProxyRequest::parse(rest) {
                Ok(ProxyRequest::Zip(m)) | Ok(ProxyRequest::Mod(m)) => m,
                _ => continue,
            };
            let item = items.go(m);
            if rest.ends_with(".zip") {
                item.zip = Some(None);
            } else {
                item.module = Some(None);
            }
        }
    }
    // PyPI and npm upstreams the bundle carries: each fetched
    // from the bundle as that upstream, through its pipeline.
    let mut carried_other: Vec<(&str, String)> = Vec::new();
    for u in config.upstreams.iter_mut() {
        let kind = u.protocol.name();
        let (folder, sub) = match kind {
            k if k == PYPI => (BUNDLE_PYPI, "simple"),
            k if k == NPM => (BUNDLE_NPM, "packument"),
            _ => continue,
        };
        let base = format!("{folder}/{}/{sub}", u.name);
        if members.keys().any(|m| m.starts_with(&format!("{base}/"))) {
            u.url = format!("http://{addr}/{base}");
            carried_other.push((folder, u.name.clone()));
        }
    }
    for name in members.keys() {
        for (folder, up) in &carried_other {
            let Some(rest) = name.strip_prefix(&format!("{folder}/{up}/")) else {
                continue;
            };
            if *folder == BUNDLE_PYPI {
                let Some((project, filename)) =
                    rest.strip_prefix("files/").and_then(|r| r.split_once('/'))
                else {
                    continue;
                };
                let project = ProjectName::parse(project)
                    .map_err(|e| anyhow::anyhow!("bundle member {name}: {e}"))?;
                // One item per file: the key's version slot holds
                // the file name (a pin naming files does not use
                // its version).
                items.py(
                    format!("{project} {filename}"),
                    PyPin {
                        project,
                        version: filename.to_string(),
                        hashes: Vec::new(),
                        files: vec![PyFile {
                            filename: filename.to_string(),
                            sha256: None,
                        }],
                    },
                );
            } else {
                let Some((pkg, file)) = rest
                    .strip_prefix("tarball/")
                    .and_then(|r| r.rsplit_once("/-/"))
                else {
                    continue;
                };
                let pkg = PackageName::parse(pkg)
                    .map_err(|e| anyhow::anyhow!("bundle member {name}: {e}"))?;
                let Some(version) = file
                    .strip_prefix(pkg.bare())
                    .and_then(|f| f.strip_prefix('-'))
                    .and_then(|f| f.strip_suffix(".tgz"))
                else {
                    anyhow::bail!("bundle member {name}: not <name>-<version>.tgz");
                };
                items.npm(pkg, version.to_string(), None);
            }
        }
    }
    // A bundle upstream this side does not configure is not
    // imported: its pinned key is unknown here.
    let mut extra = Vec::new();
    let mut unknown = std::collections::BTreeSet::new();
    for name in members.keys() {
        for folder in [BUNDLE_PYPI, BUNDLE_NPM] {
            let Some(up) = name
                .strip_prefix(&format!("{folder}/"))
                .and_then(|r| r.split_once('/'))
                .map(|(up, _)| up)
            else {
                continue;
            };
            if !carried_other.iter().any(|(f, c)| *f == folder && c == up) {
                unknown.insert((folder, up.to_string()));
            }
        }
    }
    for (folder, up) in unknown {
        extra.push((
            format!("upstream {up}"),
            refused(
                "config",
                format!("the bundle carries {folder} upstream {up}, which this configuration has no {folder} upstream of that name to verify it with"),
            ),
        ));
    }
    for name in members.keys() {
        let Some(up) = name
            .strip_prefix("gomod/")
            .and_then(|r| r.strip_suffix("/sumdb/latest"))
        else {
            continue;
        };
        if !carried.iter().any(|(c, _)| c == up) {
            extra.push((
                format!("upstream {up}"),
                refused(
                    "config",
                    format!("the bundle carries upstream {up}, which this configuration has no gomod upstream of that name to verify it with"),
                ),
            ));
        }
    }
    let mirror = Mirror::new(beside(base, config, true)?)?;
    // Each carried signed tree first: signature, consistency with
    // what this side accepted (a fork quarantines the upstream).
    let mut trees = Vec::new();
    for (up, sumdb) in &carried {
        let a = mirror.get(&format!("/sumdb/{sumdb}/latest")).await;
        if a.status == StatusCode::OK {
            trees.push(up.clone());
        } else {
            extra.push((format!("upstream {up}: signed tree"), a.refusal()));
        }
    }
    // Then each module's C2SP inclusion proof, where the bundle has one:
    // it must prove what the rest of the bundle says before anything of
    // the module is fetched from it.
    for (m, outcome) in check_go_proofs(file, &members, &trees, &items).await? {
        items.go.remove(&m);
        extra.push((m.to_string(), outcome));
    }
    Ok(mirror.run(items.into_vec(), extra, report).await)
}

/// [`goproof::check`] of every module of `items` a carried Go upstream
/// (whose signed tree this side accepted) has a `tlog-proof` member for:
/// the modules refused, with why.
async fn check_go_proofs(
    file: &Path,
    members: &Arc<Members>,
    carried: &[String],
    items: &Items,
) -> anyhow::Result<Vec<(ModuleVersion, Outcome)>> {
    let (file, members) = (file.to_path_buf(), members.clone());
    let carried = carried.to_vec();
    let modules: Vec<ModuleVersion> = items.go.keys().cloned().collect();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for up in &carried {
            let base = format!("gomod/{up}");
            let latest = format!("{base}/sumdb/latest");
            let Ok(latest) = member_bytes(&file, &members, &latest, sumdb::MAX_NOTE_SIZE as u64)
            else {
                continue;
            };
            for m in &modules {
                let name = format!("{base}/tlog-proof/{}", m.escaped());
                if !members.contains_key(&name) {
                    continue;
                }
                let lookup = format!("{base}/sumdb/lookup/{}", m.escaped());
                let verdict = member_bytes(&file, &members, &name, MAX_PROOF_SIZE as u64)
                    .map_err(|e| e.to_string())
                    .and_then(|proof| {
                        let lookup = members
                            .contains_key(&lookup)
                            .then(|| {
                                member_bytes(
                                    &file,
                                    &members,
                                    &lookup,
                                    sumdb::MAX_LOOKUP_SIZE as u64,
                                )
                            })
                            .transpose()
                            .map_err(|e| e.to_string())?;
                        goproof::check(m, &proof, &latest, lookup.as_deref())
                    });
                if let Err(why) = verdict {
                    out.push((
                        m.clone(),
                        refused(goproof::CHECK, format!("upstream {up}: {name}: {why}")),
                    ));
                }
            }
        }
        out
    })
    .await
    .map_err(Into::into)
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
