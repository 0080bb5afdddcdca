//! The npm ecosystem's side of the pipeline, per upstream: packuments
//! fetched (always the full document: it carries the publish times the
//! signature keys' validity is judged at), parsed, filtered by the
//! upstream's rules (every version's `dist.signatures` under the pinned
//! registry keys, unless `signatures = "off"`) and kept briefly; the last
//! good copy is served, with the pipeline's `Warning`, while the upstream
//! cannot be reached. Tarballs are resolved to the SHA-512 their version's
//! `dist.integrity` names, fetched, checked, stored and indexed by the
//! artifact service, and served from the store afterwards (also with the
//! upstream down). The last good packument of each package is also kept
//! on disk ([`super::saved`]) for restarts while the upstream is down.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue};

use crate::config::UpstreamConfig;
use crate::ecosystem::EcosystemContext;
use crate::metrics::Metrics;
use crate::pipeline::artifacts::{Artifacts, Fill, Lookup, Rule};
use crate::pipeline::attest::{
    accept, judge, mark_unattested, refused, stored_vouched, Attestations, Kinds, Vouched,
    CHECK_ATTESTATION,
};
use crate::pipeline::refusal::{stale_warning, Refusal};
use crate::pipeline::rekor::Rekor;
use crate::pipeline::release_age::{release_age_ok, TooYoung, CHECK_FIRST_SEEN, CHECK_RELEASE_AGE};
use crate::pipeline::trust::Trust;
use crate::sigstore::npm::NpmKeys;
use crate::store::{Blob, Digest};
use crate::upstream::{UpstreamClient, UpstreamRequest};

use super::attestations::check_answer;
use super::config::{NpmSettings, Signatures};
use super::name::PackageName;
use super::packument::{Packument, Removed, Version, MAX_PACKUMENT_BYTES};
use super::saved::Saved;

/// The artifact kind of a tarball (key: `<name>@<version>`).
pub const TARBALL_KIND: &str = "npm.tarball";
/// The kind of a version's verified attestations answer, as the registry
/// sent it (key: `<name>@<version>`).
pub const ATTESTATIONS_KIND: &str = "npm.attestations";
/// The kind recording that a version was served without attestations as
/// `attestations = "if-present"` allows (key: `<name>@<version>`).
pub const UNATTESTED_KIND: &str = "npm.unattested";
/// Where the attestation outcomes of tarballs are recorded.
const KINDS: Kinds = Kinds {
    attested: ATTESTATIONS_KIND,
    unattested: UNATTESTED_KIND,
};
/// The kind recording when a version was published by a time bulwark can
/// trust: the latest Rekor integrated time of its verified attestations
/// (the registry's publish attestation is logged when the version is
/// published). Key `<name>@<version>`; digest: SHA-256 of the integrity
/// string; the entry's time is that Rekor time. `min_release_age` counts
/// from it or from the first sighting, whichever is earlier.
pub const LOGGED_KIND: &str = "npm.logged-at";
/// Largest attestations answer read.
const MAX_ATTESTATIONS_BYTES: u64 = crate::sigstore::input::MAX_INPUT as u64;
/// The check name of a version's registry signature.
pub const CHECK_SIGNATURE: &str = "npm registry signature";
/// The index kind recording when bulwark first saw a version (key:
/// `<name>@<version>`; digest: SHA-256 of the integrity string first
/// seen; the entry's time is the first sighting), for
/// [`crate::pipeline::release_age`].
pub const SEEN_KIND: &str = "npm.first-seen";
/// How long a checked packument is reused.
const PACKUMENT_TTL: Duration = Duration::from_secs(30);
/// Byte budget of each packument cache, per upstream (a parsed packument
/// is weighed as [`PARSED_WEIGHT`] times its document's size).
const PACKUMENT_CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// About how much memory a parsed packument takes per byte of its
/// document.
const PARSED_WEIGHT: u32 = 3;
/// Largest tarball fetched.
pub const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;

type Cache = moka::future::Cache<String, (Arc<Packument>, u32)>;

fn packument_cache(ttl: Option<Duration>) -> Cache {
    let b = moka::future::Cache::builder()
        .weigher(|k: &String, v: &(Arc<Packument>, u32)| {
            u32::try_from(k.len())
                .unwrap_or(u32::MAX)
                .saturating_add(v.1)
        })
        .max_capacity(PACKUMENT_CACHE_BYTES);
    match ttl {
        Some(t) => b.time_to_live(t).build(),
        None => b.build(),
    }
}

/// One `npm` upstream.
pub struct NpmUpstream {
    pub name: String,
    pub settings: Arc<NpmSettings>,
    /// The registry client (its base is the configured `url`).
    registry: UpstreamClient,
    /// The tarball client: the registry's origin.
    files: UpstreamClient,
    /// The configured `url`, with a trailing slash.
    base: url::Url,
    packuments: Cache,
    /// The last good packument of each package, served only while the
    /// upstream cannot be reached.
    stale: Cache,
    /// The last good packuments, on disk.
    saved: Saved,
    artifacts: Artifacts,
    metrics: Arc<Metrics>,
    trust: Trust,
    rekor: Rekor,
}

/// A version's attestations, verified, as fetched.
struct Attested {
    body: bytes::Bytes,
    publisher: String,
    rekor: Vec<String>,
    /// The latest Rekor integrated time of the attestations.
    logged_at: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for NpmUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpmUpstream")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn refusal(up: &str, check: &'static str, e: impl std::fmt::Display) -> Refusal {
    Refusal::bad_answer(up, check, format!("upstream {up}: {check}: {e}"))
}

/// Checks one version's registry signatures: every signature by a pinned
/// key verifies under that key valid at the publish time, and at least
/// one does. Signatures by keys bulwark does not pin count for nothing.
pub fn check_signatures(
    keys: &NpmKeys,
    name: &PackageName,
    version: &str,
    v: &Version,
) -> Result<String, Removed> {
    let removed = |r: crate::sigstore::Refusal| Removed {
        check: CHECK_SIGNATURE,
        expected: r.expected,
        seen: format!("{}: {}", r.check, r.seen),
    };
    let Some(published) = v.published else {
        return Err(Removed {
            check: CHECK_SIGNATURE,
            expected: format!("a publish time for {name}@{version} to choose its key by"),
            seen: "none in the packument's time".into(),
        });
    };
    let mut verified = None;
    let mut unknown = Vec::new();
    for s in &v.dist.signatures {
        let pinned = keys
            .keys()
            .iter()
            .any(|k| k.key_id == s.keyid && k.usage == crate::sigstore::npm::USAGE_SIGNATURES);
        if !pinned {
            unknown.push(s.keyid.as_str());
            continue;
        }
        keys.verify_registry_signature(
            &s.keyid,
            &s.sig,
            name.as_str(),
            version,
            &v.dist.integrity,
            published,
        )
        .map_err(removed)?;
        verified.get_or_insert(s.keyid.clone());
    }
    verified.ok_or_else(|| Removed {
        check: CHECK_SIGNATURE,
        expected: format!("a signature over {name}@{version} by a pinned registry key"),
        seen: if unknown.is_empty() {
            "no signature".into()
        } else {
            format!("signatures by unpinned keys {}", unknown.join(", "))
        },
    })
}

impl NpmUpstream {
    /// The upstream of `u`, with its clients.
    pub fn new(ctx: &EcosystemContext, u: &UpstreamConfig) -> anyhow::Result<NpmUpstream> {
        let settings = u
            .settings_arc::<NpmSettings>()
            .ok_or_else(|| anyhow::anyhow!("upstream {}: not an npm upstream", u.name))?;
        let mut base = url::Url::parse(&u.url)
            .map_err(|e| anyhow::anyhow!("upstream {}: url {:?}: {e}", u.name, u.url))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let origin = base.origin().ascii_serialization();
        let options = |url: &str| ctx.upstream_options(u, url);
        Ok(NpmUpstream {
            name: u.name.clone(),
            settings,
            registry: UpstreamClient::new(options(u.url.trim_end_matches('/')))?,
            files: UpstreamClient::new(options(&origin))?,
            base,
            packuments: packument_cache(Some(PACKUMENT_TTL)),
            stale: packument_cache(None),
            saved: Saved::new(&ctx.data_dir, &u.name),
            artifacts: ctx.artifacts.clone(),
            metrics: ctx.metrics.clone(),
            trust: ctx.trust.clone(),
            rekor: ctx.rekor.clone(),
        })
    }

    /// The attestation mode for `name`.
    pub fn mode(&self, name: &PackageName) -> Attestations {
        self.settings.mode(name)
    }

    /// A package's packument, checked and filtered: from the short cache,
    /// else from the upstream; while the upstream cannot be reached, the
    /// last good one with a `Warning`.
    pub async fn packument(
        &self,
        name: &PackageName,
    ) -> Result<(Arc<Packument>, Option<String>), Refusal> {
        let key = name.as_str().to_string();
        // One fetch and check per package at a time: concurrent misses
        // wait for it.
        let fresh = self
            .packuments
            .try_get_with(key.clone(), async {
                let (p, weight) = self.fetch_packument(name).await?;
                let p = Arc::new(p);
                self.stale.insert(key.clone(), (p.clone(), weight)).await;
                Ok::<_, Refusal>((p, weight))
            })
            .await
            .map_err(|e: Arc<Refusal>| Refusal::clone(&e));
        match fresh {
            Ok((p, _)) => Ok((p, None)),
            Err(r) if r.is_unreachable() => {
                let warning = stale_warning(&self.name, "unreachable; packument checked earlier");
                if let Some((p, _)) = self.stale.get(&key).await {
                    return Ok((p, Some(warning)));
                }
                match self.saved_packument(name).await? {
                    Some((p, weight)) => {
                        let p = Arc::new(p);
                        self.stale.insert(key, (p.clone(), weight)).await;
                        Ok((p, Some(warning)))
                    }
                    None => Err(r),
                }
            }
            Err(r) => Err(r),
        }
    }

    async fn fetch_packument(&self, name: &PackageName) -> Result<(Packument, u32), Refusal> {
        let req = UpstreamRequest::get(format!("/{}", name.escaped()))
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .max_response_bytes(MAX_PACKUMENT_BYTES);
        let res = self.registry.send(req).await?;
        Refusal::status_rule(&self.name, &res.url, res.status, http::StatusCode::OK)?;
        let body = res.body;
        let (p, weight) = self.check_packument(name, body.clone()).await?;
        // Kept for restarts while the upstream is down (see `saved`).
        let epoch = self.artifacts.trust().gate(&self.name).await?;
        let (saved, n) = (self.saved.clone(), name.clone());
        let kept = tokio::task::spawn_blocking(move || saved.save(epoch, &n, &body)).await;
        if let Err(e) = kept
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(upstream = %self.name, package = %name, "packument not saved: {e}");
        }
        Ok((p, weight))
    }

    /// The last good packument saved on disk, checked again as a fresh
    /// answer would be.
    async fn saved_packument(
        &self,
        name: &PackageName,
    ) -> Result<Option<(Packument, u32)>, Refusal> {
        let epoch = self.artifacts.trust().gate(&self.name).await?;
        let (saved, n) = (self.saved.clone(), name.clone());
        let unreadable = |e: String| {
            Refusal::new(
                &self.name,
                "store",
                http::StatusCode::SERVICE_UNAVAILABLE,
                format!("upstream {}: saved packument of {name}: {e}", self.name),
            )
        };
        let body = tokio::task::spawn_blocking(move || saved.load(epoch, &n))
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .map_err(|e| unreadable(e.to_string()))?;
        match body {
            Some(b) => Ok(Some(self.check_packument(name, b.into()).await?)),
            None => Ok(None),
        }
    }

    /// Parses a full packument and filters it by the upstream's rules.
    async fn check_packument(
        &self,
        name: &PackageName,
        body: bytes::Bytes,
    ) -> Result<(Packument, u32), Refusal> {
        let weight = u32::try_from(body.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(PARSED_WEIGHT);
        let (settings, n) = (self.settings.clone(), name.clone());
        // Parsing a large document and checking thousands of signatures
        // is CPU work: off the async threads.
        let (parsed, checks) = tokio::task::spawn_blocking(move || {
            let mut p = Packument::parse(&body, &n)?;
            let mut checks = Vec::new();
            if settings.signatures == Signatures::Required {
                p.retain(|v, version| {
                    let r = check_signatures(&settings.keys, &n, v, version).map(|_| ());
                    checks.push(r.is_ok());
                    r
                });
            }
            Ok::<_, String>((p, checks))
        })
        .await
        .map_err(|e| refusal(&self.name, "packument", e))?
        .map_err(|e| refusal(&self.name, "packument", e))?;
        for ok in checks {
            self.metrics.verification(&self.name, CHECK_SIGNATURE, ok);
        }
        let mut parsed = parsed;
        if let Some(min) = self.settings.min_release_age {
            self.hide_young(&mut parsed, min).await?;
        }
        Ok((parsed, weight))
    }

    /// `min_release_age`: records the first sighting of every version not
    /// seen before, then removes the versions first seen less than `min`
    /// ago (unless the Rekor time of their verified attestations, recorded
    /// under [`LOGGED_KIND`], shows them older; such versions are kept in
    /// `held`), and those whose integrity is not the one first seen.
    async fn hide_young(&self, p: &mut Packument, min: Duration) -> Result<(), Refusal> {
        let epoch = self.artifacts.trust().gate(&self.name).await?;
        let sightings = p
            .versions
            .iter()
            .map(|(v, version)| {
                (
                    format!("{}@{v}", p.name),
                    Digest::of(version.dist.integrity.as_bytes()),
                    format!("first seen with {}", version.dist.integrity),
                )
            })
            .collect();
        let seen = self
            .artifacts
            .first_seen(&self.name, epoch, SEEN_KIND, sightings)
            .await?;
        let now = std::time::SystemTime::now();
        let name = p.name.clone();
        let age = |v: &str, version: &Version| match seen.get(&format!("{name}@{v}")) {
            None => Err(TooYoung {
                check: CHECK_RELEASE_AGE,
                expected: "a record of when bulwark first saw the version".into(),
                seen: "none".into(),
            }),
            Some(first) => release_age_ok(
                first,
                &Digest::of(version.dist.integrity.as_bytes()),
                min,
                now,
            ),
        };
        // The Rekor times of the young versions, where known (only
        // attestations checked for the package record them).
        let mut logged = std::collections::HashMap::new();
        let attested = self.mode(&p.name) != Attestations::Off;
        for (v, version) in p.versions.iter().filter(|_| attested) {
            if age(v, version).is_err_and(|t| t.check == CHECK_RELEASE_AGE) {
                if let Some(e) = self
                    .artifacts
                    .entry(&self.name, epoch, LOGGED_KIND, &format!("{name}@{v}"))
                    .await?
                {
                    if e.digest == Digest::of(version.dist.integrity.as_bytes()) {
                        logged.insert(v.clone(), e.at);
                    }
                }
            }
        }
        let mut held = std::collections::BTreeMap::new();
        p.retain(|v, version| match age(v, version) {
            Ok(()) => Ok(()),
            Err(t) if t.check == CHECK_RELEASE_AGE => {
                if logged
                    .get(v)
                    .is_some_and(|at| now.duration_since(*at).unwrap_or_default() >= min)
                {
                    return Ok(());
                }
                held.insert(v.to_string(), version.clone());
                Err(Removed {
                    check: t.check,
                    expected: t.expected,
                    seen: t.seen,
                })
            }
            Err(t) => Err(Removed {
                check: t.check,
                expected: t.expected,
                seen: t.seen,
            }),
        });
        p.held = held;
        Ok(())
    }

    /// The path on the registry's origin of a version's tarball. A
    /// tarball URL on another host (a registry's packuments copied
    /// verbatim, naming the public registry's host) is fetched by its path
    /// below the configured registry URL, as `npm --replace-registry-host`
    /// does: bulwark never connects where an unsigned packument says, and
    /// the bytes must hash to the signed integrity either way.
    fn tarball_path(&self, tarball: &str) -> Result<String, Refusal> {
        let bad = |e: String| refusal(&self.name, "tarball URL", format!("{tarball:?}: {e}"));
        let mut url = self.base.join(tarball).map_err(|e| bad(e.to_string()))?;
        if url.origin() != self.base.origin() {
            let query = url.query().map(str::to_string);
            url = self
                .base
                .join(url.path().trim_start_matches('/'))
                .map_err(|e| bad(e.to_string()))?;
            url.set_query(query.as_deref());
        }
        if url.origin() != self.base.origin() {
            return Err(bad(format!(
                "not on the registry's origin {}",
                self.base.origin().ascii_serialization()
            ))
            .expected_seen(
                self.base.origin().ascii_serialization(),
                url.origin().ascii_serialization(),
            ));
        }
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// A version of the filtered packument, or why there is none. A
    /// version hidden only by `min_release_age` is returned with the
    /// refusal to give unless the Rekor time of its attestations shows it
    /// old enough (only while attestations are checked for the package).
    async fn listed(
        &self,
        name: &PackageName,
        version: &str,
    ) -> Result<(Version, Option<Refusal>), Refusal> {
        let key = format!("{name}@{version}");
        let (p, _) = self.packument(name).await?;
        if let Some(v) = p.versions.get(version) {
            return Ok((v.clone(), None));
        }
        if let Some(r) = p.removed.get(version) {
            let message = format!(
                "upstream {}: {key} was removed from the packument: {}: expected {}, seen {}",
                self.name, r.check, r.expected, r.seen
            );
            // Held back by policy (as PyPI's files are), or a bad answer.
            let refusal = if [CHECK_RELEASE_AGE, CHECK_FIRST_SEEN].contains(&r.check) {
                Refusal::new(&self.name, r.check, http::StatusCode::FORBIDDEN, message)
            } else {
                Refusal::bad_answer(&self.name, r.check, message)
            }
            .expected_seen(r.expected.clone(), r.seen.clone());
            return match p.held.get(version) {
                Some(v) if self.mode(name) != Attestations::Off => Ok((v.clone(), Some(refusal))),
                _ => Err(refusal),
            };
        }
        Err(Refusal::new(
            &self.name,
            "packument",
            http::StatusCode::NOT_FOUND,
            format!(
                "upstream {}: {key} is not in the packument of {name}",
                self.name
            ),
        ))
    }

    /// A version held back by `min_release_age` is served when the Rekor
    /// time of its verified attestations is at least that long ago;
    /// otherwise `held` (its refusal) stands.
    fn old_enough(&self, attested: Option<&Attested>, held: Refusal) -> Result<(), Refusal> {
        let (Some(min), Some(at)) = (
            self.settings.min_release_age,
            attested.and_then(|a| a.logged_at),
        ) else {
            return Err(held);
        };
        let age = std::time::SystemTime::now()
            .duration_since(at)
            .unwrap_or_default();
        if age >= min {
            return Ok(());
        }
        Err(Refusal::new(
            &self.name,
            CHECK_RELEASE_AGE,
            http::StatusCode::FORBIDDEN,
            format!("upstream {}: {}", self.name, CHECK_RELEASE_AGE),
        )
        .expected_seen(
            format!(
                "a version published at least {} ago",
                humantime::format_duration(min)
            ),
            format!(
                "published at {} by the Rekor time of its attestations, and first seen by \
                 bulwark later",
                humantime::format_rfc3339_seconds(at)
            ),
        ))
    }

    /// A version's tarball: the verified copy if there is one, else the
    /// bytes whose SHA-512 is the one the version's `dist.integrity`
    /// names (in the filtered packument), vouched for as the attestation
    /// policy asks ([`NpmUpstream::vouch`]), fetched, checked, stored and
    /// indexed. The digest is returned for `ETag`.
    pub async fn tarball(
        &self,
        name: &PackageName,
        version: &str,
    ) -> Result<(Blob, Digest, Vouched), Refusal> {
        let key = format!("{name}@{version}");
        let mode = self.mode(name);
        let (epoch, stored) = match self
            .artifacts
            .lookup(&self.name, TARBALL_KIND, &key)
            .await?
        {
            Lookup::Hit { epoch, entry, blob } => {
                if let Some(v) =
                    stored_vouched(&self.artifacts, &self.name, epoch, KINDS, &key, mode).await?
                {
                    return Ok((blob, entry.digest, v));
                }
                (epoch, Some((blob, entry.digest)))
            }
            other => (other.epoch(), None),
        };
        let (v, held) = self.listed(name, version).await?;
        let attested = match mode {
            Attestations::Off => None,
            _ => self.vouch(name, version, &v, mode).await?,
        };
        if let Some(held) = held {
            self.old_enough(attested.as_ref(), held)?;
        }
        let (blob, digest) = match stored {
            Some((blob, digest)) => {
                // Stored against an earlier packument: the attestations
                // just verified are about the integrity the packument
                // gives now, which the stored bytes must have.
                let blobs = self.artifacts.blobs().clone();
                let seen = tokio::task::spawn_blocking(move || blobs.sha512_of(&digest))
                    .await
                    .map_err(|e| refusal(&self.name, "store", e))?
                    .map_err(|e| refusal(&self.name, "store", e))?;
                if seen != v.dist.sha512 {
                    return Err(refusal(
                        &self.name,
                        "integrity",
                        format!(
                            "{key} was stored with another sha512 than the packument gives now"
                        ),
                    )
                    .expected_seen(hex::encode(v.dist.sha512), hex::encode(seen)));
                }
                (blob, digest)
            }
            None => {
                let path = self.tarball_path(&v.dist.tarball)?;
                let proof = match self.settings.signatures {
                    Signatures::Required => {
                        "dist.integrity of a version signed by a pinned registry key".to_string()
                    }
                    Signatures::Off => {
                        "dist.integrity of the packument (signatures off)".to_string()
                    }
                };
                let (entry, blob) = self
                    .artifacts
                    .fill(Fill {
                        upstream: &self.name,
                        epoch,
                        kind: TARBALL_KIND,
                        key: key.clone(),
                        proof,
                        rule: Rule::Sha512(v.dist.sha512),
                        client: &self.files,
                        request: UpstreamRequest::get(path).max_response_bytes(MAX_TARBALL_BYTES),
                    })
                    .await?;
                (blob, entry.digest)
            }
        };
        let vouched = match attested {
            Some(a) => {
                self.keep_attestations(epoch, name, key, &v, a).await?;
                Vouched::Attested
            }
            None if mode == Attestations::Off => Vouched::IndexOnly,
            None => {
                mark_unattested(
                    &self.artifacts,
                    &self.name,
                    epoch,
                    KINDS,
                    key,
                    digest,
                    "npm attestations",
                )
                .await?
            }
        };
        Ok((blob, digest, vouched))
    }

    /// Stores and indexes a version's verified attestations answer, and
    /// its Rekor time ([`LOGGED_KIND`]) for `min_release_age`.
    async fn keep_attestations(
        &self,
        epoch: u64,
        name: &PackageName,
        key: String,
        v: &Version,
        a: Attested,
    ) -> Result<(), Refusal> {
        let proof = format!(
            "npm publish attestation and provenance verified: publisher {}; Rekor {}",
            a.publisher,
            a.rekor.join(", ")
        );
        if let Some(at) = a.logged_at {
            let entry = crate::store::index::Entry {
                at,
                ..crate::store::index::Entry::new(
                    Digest::of(v.dist.integrity.as_bytes()),
                    format!("Rekor time of the attestations of {key}"),
                )
            };
            self.artifacts
                .index(&self.name, epoch, LOGGED_KIND, vec![(key.clone(), entry)])
                .await?;
        }
        self.artifacts
            .put_proven(&self.name, epoch, ATTESTATIONS_KIND, key, a.body, proof)
            .await?;
        // A packument that held the version back may show it now.
        self.packuments.invalidate(name.as_str()).await;
        Ok(())
    }

    /// A version's verified attestations answer (what bulwark serves at
    /// `/-/npm/v1/attestations/<name>@<version>`): the stored one (also
    /// with the upstream down, or after the registry dropped them), else
    /// fetched and verified against the version's `dist.integrity` now,
    /// and kept. `None`: the registry has none for the version, or
    /// attestations are off for the package.
    pub async fn attestations(
        &self,
        name: &PackageName,
        version: &str,
    ) -> Result<Option<bytes::Bytes>, Refusal> {
        let key = format!("{name}@{version}");
        let mode = self.mode(name);
        if mode == Attestations::Off {
            return Ok(None);
        }
        let (epoch, stored) = self
            .artifacts
            .proven(&self.name, ATTESTATIONS_KIND, &key)
            .await?;
        if stored.is_some() {
            return Ok(stored);
        }
        let (v, _) = self.listed(name, version).await?;
        let Some(a) = self.vouch(name, version, &v, mode).await? else {
            return Ok(None);
        };
        let body = a.body.clone();
        self.keep_attestations(epoch, name, key, &v, a).await?;
        Ok(Some(body))
    }

    /// Vouches for a version as `mode` asks, before its tarball is fetched
    /// (the attestations bind the version's sha512, which the bytes are
    /// then checked against): its attestations are fetched from the
    /// registry (exact 200; 404 means none), checked
    /// ([`super::attestations::check_answer`]), each Rekor checkpoint
    /// recorded through the trust state, and the publisher judged by the
    /// never-downgrade ledger. Without attestations: refused under
    /// `required`; under `if-present` judged by the ledger (refused once
    /// the package was seen attested).
    async fn vouch(
        &self,
        name: &PackageName,
        version: &str,
        v: &Version,
        mode: Attestations,
    ) -> Result<Option<Attested>, Refusal> {
        let spec = format!("{name}@{version}");
        let ask = |escaped: String| {
            self.registry.send(
                UpstreamRequest::get(format!("/-/npm/v1/attestations/{escaped}@{version}"))
                    .header(header::ACCEPT, HeaderValue::from_static("application/json"))
                    .max_response_bytes(MAX_ATTESTATIONS_BYTES),
            )
        };
        let mut res = ask(name.escaped()).await?;
        // The registry writes a scoped name `@scope%2fname`, as npm asks;
        // a registry that only knows `@scope/name` is asked that way too.
        if res.status == http::StatusCode::NOT_FOUND && name.scope().is_some() {
            res = ask(name.as_str().to_string()).await?;
        }
        if res.status == http::StatusCode::NOT_FOUND {
            if mode == Attestations::Required {
                return Err(Refusal::new(
                    &self.name,
                    CHECK_ATTESTATION,
                    http::StatusCode::FORBIDDEN,
                    format!(
                        "upstream {}: {spec} has no attestations and attestations = \"required\"",
                        self.name
                    ),
                )
                .expected_seen(
                    "the registry's publish attestation and provenance for the version",
                    format!(
                        "404 from the registry{}",
                        if v.dist.attestations.is_some() {
                            " (its packument lists them)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            self.judge(name, &[], &spec).await?;
            return Ok(None);
        }
        Refusal::status_rule(&self.name, &res.url, res.status, http::StatusCode::OK)?;
        let body = res.body;
        let identity = self.settings.policy.identity(name.as_str());
        let settings = self.settings.clone();
        let (b, n, ver, sha512) = (
            body.clone(),
            name.clone(),
            version.to_string(),
            v.dist.sha512,
        );
        let checked = tokio::task::spawn_blocking(move || {
            check_answer(
                &b,
                &n,
                &ver,
                sha512,
                &settings.keys,
                &settings.policy.root,
                &identity,
            )
        })
        .await
        .map_err(|e| {
            refusal(
                &self.name,
                CHECK_ATTESTATION,
                format!("verification task: {e}"),
            )
        })?;
        let what = format!("the attestations of {spec}");
        let checked = checked.map_err(|r| refused(&self.metrics, &self.name, &what, r))?;
        let rekor = accept(
            &self.rekor,
            &self.metrics,
            &self.name,
            &spec,
            &checked.attestations,
            self.settings.policy.rekor_consistency_required,
        )
        .await?;
        self.judge(name, std::slice::from_ref(&checked.publisher), &spec)
            .await?;
        let logged_at = checked
            .attestations
            .iter()
            .filter_map(|a| a.signing_time)
            .max();
        Ok(Some(Attested {
            body,
            publisher: checked.publisher,
            rekor,
            logged_at,
        }))
    }

    /// Never downgrade: the ledger's verdict on `spec` of `name` built by
    /// `publishers` (empty: unattested).
    async fn judge(
        &self,
        name: &PackageName,
        publishers: &[String],
        spec: &str,
    ) -> Result<(), Refusal> {
        judge(
            &self.trust,
            &self.name,
            name.as_str(),
            publishers,
            spec,
            "npm provenance",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real registry signature from npm/pacote's tests, in a
    /// packument, through the embedded keys.
    #[test]
    fn a_real_registry_signature_verifies_at_its_publish_time_only() {
        let integrity = "sha512-5ZYe1LgwHIaag0p9loMwsf5N/wJ4XAuHVNhSO+qulQOXWnyJVuco6IZjo+5u4ZLF/GimdHJcX+QK892ONfOCqQ==";
        let doc = |time: &str, sig: &str, keyid: &str| {
            serde_json::json!({
                "name": "@isaacs/namespace-test",
                "time": { "1.0.0": time },
                "versions": { "1.0.0": {
                    "name": "@isaacs/namespace-test", "version": "1.0.0",
                    "dist": { "tarball": "http://r/t.tgz", "integrity": integrity,
                              "signatures": [{ "keyid": keyid, "sig": sig }] } } }
            })
            .to_string()
        };
        let sig = "MEQCIHXwKYe70+xcDOvFhM1etZQFUKEwz9VarppUbp5/Ie1+AiAM7aZcT1a2JR0oF/XwjNb13YEHwiagnDapLgYbklRvtA==";
        let id = "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA";
        let keys = NpmKeys::embedded().unwrap();
        let name = PackageName::parse("@isaacs/namespace-test").unwrap();
        let check = |body: String| {
            let p = Packument::parse(body.as_bytes(), &name).unwrap();
            check_signatures(&keys, &name, "1.0.0", &p.versions["1.0.0"])
        };
        assert_eq!(check(doc("2023-11-14T22:13:20.000Z", sig, id)).unwrap(), id);
        // The key had expired when a version says it was published.
        let r = check(doc("2025-06-01T00:00:00.000Z", sig, id)).unwrap_err();
        assert!(r.seen.starts_with("npm key validity"), "{r:?}");
        // Another message under the same key.
        let other = sig.replace("MEQCIHXw", "MEQCIHXx");
        let r = check(doc("2023-11-14T22:13:20.000Z", &other, id)).unwrap_err();
        assert_eq!(r.check, CHECK_SIGNATURE);
        // Only unpinned keys, or no time to choose a key by.
        let r = check(doc("2023-11-14T22:13:20.000Z", sig, "SHA256:other")).unwrap_err();
        assert!(r.seen.contains("unpinned"), "{r:?}");
        let r = check(doc("not a time", sig, id)).unwrap_err();
        assert!(r.expected.contains("publish time"), "{r:?}");
    }
}
