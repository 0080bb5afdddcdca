//! One `gomod` upstream on the pipeline: its GOPROXY client, its
//! checksum-database follower ([`SumdbVerifier`]) and the answers the
//! Go-modules front renders.
//!
//! - `.mod` and `.zip` go through [`Artifacts`]: a hit is the gate, one
//!   index read and the stored blob (the freshness `Warning` from the trust
//!   state's memory while the accepted tree is fresh); a miss proves the
//!   module's record included in an accepted tree, then
//!   [`Artifacts::fill`] fetches the file (exact 200 only, streamed to a
//!   spool file), checks its `h1:` against the record's (the [`Rule`] runs
//!   [`dirhash::hash_module_zip_source`] over the spooled zip, or hashes
//!   the go.mod), stores and indexes it, and streams it out.
//! - `@v/list`, `.info` and `@latest` are unsigned metadata: only an exact
//!   200 whose body has the route's shape is passed on, re-serialised from
//!   what was checked, with a short byte-weighed cache; the last good
//!   answer is served with a `Warning` while the upstream cannot be
//!   reached. They never lead to unverified bytes, since every `.mod`/`.zip`
//!   is checked on its own.
//!
//! Built by the front ([`super::front`]) for each configured upstream;
//! every failure is a [`Refusal`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::UpstreamConfig;
use crate::ecosystem::EcosystemContext;
use crate::gomod::config::GoSettings;
use crate::gomod::dirhash::{self, Limits, H1};
use crate::gomod::module::{
    parse_list, Info, ModuleVersion, ProxyRequest, MAX_INFO_BYTES, MAX_LIST_BYTES, MAX_MOD_BYTES,
};
use crate::gomod::verifier::{
    expect_200, module_key, record_proof, ModFile, SumdbVerifier, VerifiedRecord, VerifyError,
};
use crate::gomod::zipread::{self, Source as _};
use crate::metrics::Metrics;
use crate::pipeline::artifacts::{Artifacts, Fill, Lookup, Rule};
use crate::pipeline::refusal::{stale_warning, Refusal};
use crate::store::Blob;
use crate::tlog::note::VerifierKey;
use crate::upstream::{UpstreamClient, UpstreamRequest};

/// The content type of text answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// How long unsigned metadata (`list`, `.info`, `@latest`) is cached.
const META_TTL: Duration = Duration::from_secs(30);
/// Byte budget of each metadata cache (the fresh one and the one served
/// while the upstream is unreachable), per upstream.
const META_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// A metadata cache weighed by the bytes of its keys and values.
fn meta_cache(ttl: Option<Duration>) -> moka::future::Cache<String, Bytes> {
    let b = moka::future::Cache::builder()
        .weigher(|k: &String, v: &Bytes| u32::try_from(k.len() + v.len() + 64).unwrap_or(u32::MAX))
        .max_capacity(META_CACHE_BYTES);
    match ttl {
        Some(t) => b.time_to_live(t).build(),
        None => b.build(),
    }
}

/// What the front sends for a successful request.
#[derive(Debug)]
pub struct Answer {
    pub body: Blob,
    pub content_type: &'static str,
    /// A `Warning` header value (served from a stale verified state).
    pub warning: Option<String>,
    /// The stored blob's digest, for a module file (immutable content:
    /// served with `ETag`, conditional and range requests).
    pub digest: Option<crate::store::Digest>,
}

impl Answer {
    fn bytes(body: Bytes, content_type: &'static str, warning: Option<String>) -> Answer {
        Answer {
            body: Blob::from_bytes(body),
            content_type,
            warning,
            digest: None,
        }
    }
}

/// One gomod upstream (see the module documentation).
pub struct GoUpstream {
    name: String,
    proxy: UpstreamClient,
    verifier: SumdbVerifier,
    artifacts: Artifacts,
    metrics: Arc<Metrics>,
    limits: Limits,
    meta: moka::future::Cache<String, Bytes>,
    /// The last answer to each metadata request, served only while the
    /// upstream cannot be reached (with a `Warning`).
    meta_stale: moka::future::Cache<String, Bytes>,
}

impl GoUpstream {
    /// The upstream `u` (protocol `gomod`) of the configuration.
    pub fn new(ctx: &EcosystemContext, u: &UpstreamConfig) -> anyhow::Result<GoUpstream> {
        let Some(GoSettings { sumdb: sdb }) = u.settings::<GoSettings>() else {
            anyhow::bail!("upstream {}: protocol gomod needs sumdb", u.name);
        };
        let key: VerifierKey = sdb
            .key
            .parse()
            .map_err(|e| anyhow::anyhow!("upstream {}: sumdb.key: {e}", u.name))?;
        let policy = u.witness_policy.as_ref().map(|w| w.policy.clone());
        let options = |url: &str| ctx.upstream_options(u, url);
        let proxy = UpstreamClient::new(options(&u.url))?;
        let sumdb_client = UpstreamClient::new(options(&sdb.url))?;
        let verifier = SumdbVerifier::new(
            &u.name,
            &sdb.name,
            key,
            policy,
            sumdb_client,
            ctx.artifacts.clone(),
            ctx.metrics.clone(),
            u.checkpoint_age_bound(&ctx.config.server),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        Ok(GoUpstream {
            name: u.name.clone(),
            proxy,
            verifier,
            artifacts: ctx.artifacts.clone(),
            metrics: ctx.metrics.clone(),
            limits: Limits::default(),
            meta: meta_cache(Some(META_TTL)),
            meta_stale: meta_cache(None),
        })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its checksum database's name (`sum.golang.org`).
    pub fn sumdb_name(&self) -> &str {
        &self.verifier.name
    }

    /// The one quarantine gate of a request; the upstream's epoch.
    pub async fn gate(&self) -> Result<u64, Refusal> {
        self.verifier.gate().await.map_err(|e| self.refusal(e))
    }

    /// A verification failure as the one [`Refusal`].
    pub fn refusal(&self, e: VerifyError) -> Refusal {
        e.refusal(&self.name)
    }

    /// `.mod` or `.zip` of `m` (see the module documentation).
    pub async fn module_file(&self, file: ModFile, m: &ModuleVersion) -> Result<Answer, Refusal> {
        let content_type = match file {
            ModFile::Zip => "application/zip",
            ModFile::Mod => TEXT,
        };
        let key = module_key(m);
        let v = &self.verifier;
        // The gate, and the freshness a hit is served by, in one look.
        let gated = v.gate_fresh().await?;
        let lookup = self
            .artifacts
            .lookup_in(&self.name, gated.epoch, file.index_kind(), &key)
            .await?;
        if let Lookup::Hit { blob, entry, .. } = lookup {
            // Refuses a stale tree the upstream answers about; warns when
            // serving offline.
            let warning = v
                .serving_warning(gated)
                .await
                .map_err(|e| self.refusal(e))?;
            self.metrics.cache("gomod.module", true);
            return Ok(Answer {
                body: blob,
                content_type,
                warning,
                digest: Some(entry.digest),
            });
        }
        self.metrics.cache("gomod.module", false);
        let max = match file {
            // A zip may be hundreds of MiB: it streams to a spool file of
            // the store and is hashed there, never whole in memory.
            ModFile::Zip => self.limits.max_zip_bytes,
            ModFile::Mod => MAX_MOD_BYTES,
        };
        // The GOPROXY path re-encoded from the parsed module version.
        let path = match file {
            ModFile::Zip => ProxyRequest::Zip(m.clone()),
            ModFile::Mod => ProxyRequest::Mod(m.clone()),
        }
        .to_path();
        let request = UpstreamRequest::get(format!("/{path}")).max_response_bytes(max);
        // `go` asks for a version's .mod before its checksum-database
        // lookup: a .mod (small) is fetched while its record is looked up
        // and proven, and kept only if it hashes to what the proven record
        // says. A zip is fetched only once its record is proven.
        let (rec, fetched) = match file {
            ModFile::Mod => {
                let (rec, fetched) = tokio::join!(
                    v.lookup_for_file(m),
                    self.artifacts.fetch(&self.proxy, request.clone())
                );
                (rec, Some(fetched))
            }
            ModFile::Zip => (v.lookup_for_file(m).await, None),
        };
        let rec = rec.map_err(|e| self.refusal(e))?;
        let fetched = fetched.transpose()?;
        let (_, warning) = v.current().await.map_err(|e| self.refusal(e))?;
        let (entry, body) = self
            .artifacts
            .fill_fetched(
                Fill {
                    upstream: &self.name,
                    epoch: rec.epoch,
                    kind: file.index_kind(),
                    key,
                    // The record that proved the file: also the record's own entry
                    // (see `SumdbVerifier::lookup_for_file`).
                    proof: record_proof(&rec),
                    rule: Rule::Check {
                        check: "h1",
                        run: self.h1_rule(file, &rec),
                    },
                    client: &self.proxy,
                    request,
                },
                fetched,
            )
            .await?;
        Ok(Answer {
            body,
            content_type,
            warning,
            digest: Some(entry.digest),
        })
    }

    /// The `h1:` rule of `file`: the hash of the spooled bytes must be the
    /// one the included record names (a zip must also read the same way
    /// from its start and from its end).
    fn h1_rule(&self, file: ModFile, rec: &VerifiedRecord) -> crate::pipeline::artifacts::Check {
        let (upstream, m) = (self.name.clone(), rec.record.module());
        let expected = *file.h1(&rec.record);
        let limits = self.limits;
        Box::new(move |f: std::fs::File, _len: u64| {
            let io = |e: std::io::Error| {
                Refusal::new(
                    &upstream,
                    "store",
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "upstream {upstream}: reading the spooled {}: {e}",
                        file.what()
                    ),
                )
            };
            let seen: H1 = match file {
                ModFile::Zip => {
                    let src = zipread::FileSource::new(f).map_err(io)?;
                    dirhash::hash_module_zip_source(&src, &m, &limits).map_err(|e| {
                        let r = VerifyError::Zip {
                            module: m.to_string(),
                            detail: e.to_string(),
                        }
                        .refusal(&upstream);
                        tracing::error!(upstream, module = %m, "{r}");
                        r
                    })?
                }
                ModFile::Mod => {
                    // Positional reads: the spool's handle shares the
                    // writer's file offset. The fill capped the length.
                    let src = zipread::FileSource::new(f).map_err(io)?;
                    let len = usize::try_from(src.size().min(MAX_MOD_BYTES)).unwrap_or(0);
                    let mut data = vec![0; len];
                    src.read_at(0, &mut data).map_err(io)?;
                    dirhash::hash_go_mod(&data)
                }
            };
            if seen != expected {
                let r = VerifyError::Hash {
                    what: file.what(),
                    module: m.to_string(),
                    expected: expected.to_string(),
                    seen: seen.to_string(),
                }
                .refusal(&upstream);
                tracing::error!(upstream, module = %m, "{r}");
                return Err(r);
            }
            Ok(())
        })
    }

    /// `/sumdb/<name>/latest`: the newest accepted signed tree.
    pub async fn sumdb_latest(&self) -> Result<Answer, Refusal> {
        let (a, warning) = self
            .verifier
            .latest_for_serving()
            .await
            .map_err(|e| self.refusal(e))?;
        Ok(Answer::bytes(Bytes::from(a.note), TEXT, warning))
    }

    /// `/sumdb/<name>/lookup/<module>@<version>`: the record proven
    /// included, its id, and an accepted tree that contains it.
    pub async fn sumdb_lookup(&self, m: &ModuleVersion) -> Result<Answer, Refusal> {
        let v = &self.verifier;
        let rec = v.lookup(m).await.map_err(|e| self.refusal(e))?;
        let (mut tree, mut warning) = v.current().await.map_err(|e| self.refusal(e))?;
        if rec.id >= tree.size {
            tree = v.refresh().await.map_err(|e| self.refusal(e))?;
            warning = None;
        }
        let mut body = format!("{}\n{}\n", rec.id, rec.record.text()).into_bytes();
        body.extend_from_slice(&tree.note);
        Ok(Answer::bytes(Bytes::from(body), TEXT, warning))
    }

    /// `/sumdb/<name>/tile/...`: a tile authenticated against an accepted
    /// tree.
    pub async fn sumdb_tile(&self, path: &str) -> Result<Answer, Refusal> {
        let (data, warning) = self
            .verifier
            .tile(path)
            .await
            .map_err(|e| self.refusal(e))?;
        Ok(Answer::bytes(data, "application/octet-stream", warning))
    }

    /// `@v/list`, `.info` and `@latest` (see the module documentation).
    pub async fn metadata(&self, req: &ProxyRequest) -> Result<Answer, Refusal> {
        let path = format!("/{}", req.to_path());
        let (content_type, max) = match req {
            ProxyRequest::List { .. } => (TEXT, MAX_LIST_BYTES),
            _ => ("application/json", MAX_INFO_BYTES),
        };
        if let Some(b) = self.meta.get(&path).await {
            self.metrics.cache("gomod.meta", true);
            return Ok(Answer::bytes(b, content_type, None));
        }
        self.metrics.cache("gomod.meta", false);
        let res = self
            .proxy
            .send(UpstreamRequest::get(path.clone()).max_response_bytes(max))
            .await
            .map_err(VerifyError::Upstream)
            .and_then(expect_200)
            .and_then(|r| checked_metadata(req, &r.body));
        let body = match res {
            Ok(b) => b,
            Err(e) => {
                if e.is_unreachable() {
                    let stale = match self.meta_stale.get(&path).await {
                        Some(b) => Some(b),
                        None => self.verified_info(req).await,
                    };
                    if let Some(b) = stale {
                        let w = stale_warning(&self.name, "unreachable");
                        return Ok(Answer::bytes(b, content_type, Some(w)));
                    }
                }
                return Err(self.refusal(e));
            }
        };
        self.meta.insert(path.clone(), body.clone()).await;
        self.meta_stale.insert(path, body.clone()).await;
        Ok(Answer::bytes(body, content_type, None))
    }
}

impl GoUpstream {
    /// While the upstream cannot be reached (or the mirror is offline),
    /// the `.info` of a version whose `.mod` or `.zip` is verified and
    /// stored: its version, and the time bulwark verified it (an imported
    /// store has no other metadata).
    async fn verified_info(&self, req: &ProxyRequest) -> Option<Bytes> {
        let ProxyRequest::Info { path, version } = req else {
            return None;
        };
        let m = ModuleVersion::new(path, version).ok()?;
        for kind in [ModFile::Zip.index_kind(), ModFile::Mod.index_kind()] {
            if let Ok(Lookup::Hit { entry, .. }) = self
                .artifacts
                .lookup(&self.name, kind, &module_key(&m))
                .await
            {
                let info = Info {
                    version: m.version.clone(),
                    time: humantime::format_rfc3339_seconds(entry.at).to_string(),
                };
                return Some(Bytes::from(info.to_json()));
            }
        }
        None
    }
}

/// The body served for a metadata answer: parsed for the route's shape
/// and re-serialised from what was checked.
fn checked_metadata(req: &ProxyRequest, body: &[u8]) -> Result<Bytes, VerifyError> {
    let format = |what: &'static str| {
        move |e: crate::gomod::module::ModuleError| VerifyError::Format {
            what,
            detail: e.to_string(),
        }
    };
    match req {
        ProxyRequest::List { .. } => {
            let versions = parse_list(body).map_err(format("version list"))?;
            let mut out = String::new();
            for v in versions {
                out.push_str(&v);
                out.push('\n');
            }
            Ok(Bytes::from(out))
        }
        ProxyRequest::Info { version, .. } => Ok(Bytes::from(
            Info::parse(body, Some(version))
                .map_err(format("version info"))?
                .to_json(),
        )),
        _ => Ok(Bytes::from(
            Info::parse(body, None)
                .map_err(format("latest version info"))?
                .to_json(),
        )),
    }
}
