//! Packuments (`GET /<name>` on a registry): parsed from the upstream's
//! full document (`application/json`) into one checked model, filtered
//! (a version that fails a check is removed, with the reason kept for the
//! refusal of its tarball; `dist-tags` naming a removed version are
//! dropped), and written back either full or abbreviated
//! (`application/vnd.npm.install-v1+json`, the "corgi" npm installs with),
//! every tarball URL pointing at bulwark.
//!
//! The parser takes untrusted bytes: it never panics, bounds what it keeps
//! (versions, signatures, string lengths), and refuses a document whose
//! `name` is not the one asked for. Each version keeps its manifest as
//! given (dependencies, bin, engines...), except `dist`, which is rebuilt
//! from the checked fields only.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::name::{version_ok, PackageName};

/// Largest packument read from an upstream (the biggest public ones are
/// tens of MiB).
pub const MAX_PACKUMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Most versions kept from one packument.
pub const MAX_VERSIONS: usize = 50_000;
/// Most registry signatures kept per version.
pub const MAX_SIGNATURES: usize = 16;
/// Longest tarball URL, key id or signature taken.
const MAX_FIELD: usize = 4096;
/// The media type of abbreviated packuments.
pub const ABBREVIATED: &str = "application/vnd.npm.install-v1+json";

/// The manifest fields an abbreviated packument keeps (besides `dist`).
const ABBREVIATED_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
    "hasInstallScript",
];

/// One `dist.signatures` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySignature {
    pub keyid: String,
    pub sig: String,
}

/// A version's `dist`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    /// The upstream's tarball URL, as given.
    pub tarball: String,
    /// The SHA-512 `dist.integrity` names (the strongest hash npm
    /// checks; bulwark checks the tarball against it).
    pub sha512: [u8; 64],
    /// The integrity string as the upstream wrote it: what the registry
    /// signed and what bulwark serves.
    pub integrity: String,
    pub shasum: Option<String>,
    pub signatures: Vec<RegistrySignature>,
    /// `dist.attestations` listed by the registry: the provenance's
    /// predicate type (empty if it names none). Where the registry says
    /// they are is not kept: bulwark fetches them from the registry it is
    /// configured with, as `npm` does.
    pub attestations: Option<String>,
    file_count: Option<Value>,
    unpacked_size: Option<Value>,
}

/// One version: its manifest (without `dist`), its checked `dist` and its
/// publish time (from `time`, as the registry states it).
#[derive(Debug, Clone)]
pub struct Version {
    manifest: Map<String, Value>,
    pub dist: Dist,
    pub published: Option<SystemTime>,
}

/// Where a rendered packument points: each version's tarball, and its
/// attestations (`None`: `dist.attestations` left out).
pub struct Urls<'a> {
    pub tarball: &'a VersionUrl<'a>,
    pub attestations: Option<&'a VersionUrl<'a>>,
}

/// The URL of something of a version on bulwark, from its name and version.
pub type VersionUrl<'a> = dyn Fn(&PackageName, &str) -> String + 'a;

/// Why a version was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub check: &'static str,
    pub expected: String,
    pub seen: String,
}

/// A parsed, checked packument.
#[derive(Debug, Clone)]
pub struct Packument {
    pub name: PackageName,
    pub dist_tags: BTreeMap<String, String>,
    pub versions: BTreeMap<String, Version>,
    /// Versions removed and why.
    pub removed: BTreeMap<String, Removed>,
    /// Of the removed versions, those hidden only because bulwark first
    /// saw them less than `min_release_age` ago, kept whole: the Rekor time
    /// of their attestations may show them old enough.
    pub held: BTreeMap<String, Version>,
    time: BTreeMap<String, String>,
    /// Every other top-level field (description, maintainers...), for the
    /// full document.
    rest: Map<String, Value>,
}

fn short(s: &str) -> String {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The SHA-512 of an SRI string (`sha512-<base64>`, possibly among other
/// algorithms and with `?options`).
pub fn sri_sha512(sri: &str) -> Option<[u8; 64]> {
    sri.split_ascii_whitespace().find_map(|tok| {
        let b64 = tok.strip_prefix("sha512-")?;
        let b64 = b64.split('?').next().unwrap_or(b64);
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        <[u8; 64]>::try_from(bytes.as_slice()).ok()
    })
}

fn string_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| s.len() <= MAX_FIELD)
}

fn parse_dist(v: Option<&Value>) -> Result<Dist, Removed> {
    let removed = |expected: &str, seen: String| Removed {
        check: "integrity",
        expected: expected.to_string(),
        seen,
    };
    let Some(dist) = v.and_then(Value::as_object) else {
        return Err(removed("a dist object", "none".into()));
    };
    let Some(tarball) = string_field(dist, "tarball") else {
        return Err(removed("a dist.tarball URL", "none".into()));
    };
    let given = string_field(dist, "integrity").unwrap_or("");
    let Some(sha512) = sri_sha512(given) else {
        return Err(removed(
            "a sha512 dist.integrity",
            if given.is_empty() {
                "none".into()
            } else {
                short(given)
            },
        ));
    };
    let mut signatures = Vec::new();
    if let Some(list) = dist.get("signatures").and_then(Value::as_array) {
        for s in list.iter().take(MAX_SIGNATURES) {
            let Some(o) = s.as_object() else { continue };
            if let (Some(keyid), Some(sig)) = (string_field(o, "keyid"), string_field(o, "sig")) {
                signatures.push(RegistrySignature {
                    keyid: keyid.to_string(),
                    sig: sig.to_string(),
                });
            }
        }
    }
    let attestations = dist
        .get("attestations")
        .and_then(Value::as_object)
        .map(|a| {
            a.get("provenance")
                .and_then(Value::as_object)
                .and_then(|p| string_field(p, "predicateType"))
                .filter(|t| t.len() <= 256)
                .unwrap_or("")
                .to_string()
        });
    Ok(Dist {
        tarball: tarball.to_string(),
        attestations,
        integrity: given.to_string(),
        sha512,
        shasum: string_field(dist, "shasum").map(str::to_string),
        signatures,
        file_count: dist.get("fileCount").filter(|v| v.is_u64()).cloned(),
        unpacked_size: dist.get("unpackedSize").filter(|v| v.is_u64()).cloned(),
    })
}

impl Packument {
    /// Parses the full packument `body` of `name`.
    pub fn parse(body: &[u8], name: &PackageName) -> Result<Packument, String> {
        if body.len() as u64 > MAX_PACKUMENT_BYTES {
            return Err(format!(
                "{} bytes, more than {MAX_PACKUMENT_BYTES}",
                body.len()
            ));
        }
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JSON packument: {e}"))?;
        let Value::Object(mut doc) = doc else {
            return Err("not a JSON object".into());
        };
        match doc.get("name").and_then(Value::as_str) {
            Some(n) if n == name.as_str() => {}
            other => {
                return Err(format!(
                    "the packument of {name} names {}",
                    other.map_or("no package".to_string(), |n| format!("{:?}", short(n)))
                ))
            }
        }
        let versions = match doc.remove("versions") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err("versions is not an object".into()),
        };
        if versions.len() > MAX_VERSIONS {
            return Err(format!(
                "{} versions, more than {MAX_VERSIONS}",
                versions.len()
            ));
        }
        let mut time = BTreeMap::new();
        if let Some(Value::Object(t)) = doc.remove("time") {
            for (k, v) in t {
                if let Some(s) = v.as_str().filter(|s| s.len() <= 64) {
                    if k.len() <= 256 {
                        time.insert(k, s.to_string());
                    }
                }
            }
        }
        let mut dist_tags = BTreeMap::new();
        if let Some(Value::Object(t)) = doc.remove("dist-tags") {
            for (k, v) in t {
                if let Some(s) = v.as_str() {
                    if k.len() <= 256 && version_ok(s) {
                        dist_tags.insert(k, s.to_string());
                    }
                }
            }
        }
        doc.remove("_attachments");
        doc.remove("name");
        let mut out = Packument {
            name: name.clone(),
            dist_tags,
            versions: BTreeMap::new(),
            removed: BTreeMap::new(),
            held: BTreeMap::new(),
            time,
            rest: doc,
        };
        for (v, manifest) in versions {
            if !version_ok(&v) {
                continue;
            }
            let Value::Object(mut manifest) = manifest else {
                out.removed.insert(
                    v,
                    Removed {
                        check: "manifest",
                        expected: "a version object".into(),
                        seen: "another JSON value".into(),
                    },
                );
                continue;
            };
            let (n, mv) = (
                manifest.get("name").and_then(Value::as_str),
                manifest.get("version").and_then(Value::as_str),
            );
            if n != Some(name.as_str()) || mv != Some(v.as_str()) {
                let seen = format!(
                    "{}@{}",
                    short(n.unwrap_or("(no name)")),
                    short(mv.unwrap_or("(no version)"))
                );
                out.removed.insert(
                    v.clone(),
                    Removed {
                        check: "manifest",
                        expected: format!("a manifest of {name}@{v}"),
                        seen,
                    },
                );
                continue;
            }
            let dist = match parse_dist(manifest.remove("dist").as_ref()) {
                Ok(d) => d,
                Err(r) => {
                    out.removed.insert(v, r);
                    continue;
                }
            };
            let published = out
                .time
                .get(&v)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(SystemTime::from);
            out.versions.insert(
                v,
                Version {
                    manifest,
                    dist,
                    published,
                },
            );
        }
        out.drop_dangling_tags();
        Ok(out)
    }

    /// Removes the versions `check` refuses (keeping why), and the tags
    /// naming them.
    pub fn retain(&mut self, mut check: impl FnMut(&str, &Version) -> Result<(), Removed>) {
        let mut removed = Vec::new();
        for (v, version) in &self.versions {
            if let Err(r) = check(v, version) {
                removed.push((v.clone(), r));
            }
        }
        for (v, r) in removed {
            self.versions.remove(&v);
            self.removed.insert(v, r);
        }
        self.drop_dangling_tags();
    }

    fn drop_dangling_tags(&mut self) {
        let versions = &self.versions;
        self.dist_tags.retain(|_, v| versions.contains_key(v));
    }

    fn dist_value(&self, v: &str, d: &Dist, urls: &Urls<'_>) -> Value {
        let mut m = Map::new();
        m.insert(
            "tarball".into(),
            Value::String((urls.tarball)(&self.name, v)),
        );
        m.insert("integrity".into(), Value::String(d.integrity.clone()));
        if let Some(s) = &d.shasum {
            m.insert("shasum".into(), Value::String(s.clone()));
        }
        if !d.signatures.is_empty() {
            let sigs = d
                .signatures
                .iter()
                .map(|s| serde_json::json!({ "keyid": s.keyid, "sig": s.sig }))
                .collect();
            m.insert("signatures".into(), Value::Array(sigs));
        }
        if let Some(c) = &d.file_count {
            m.insert("fileCount".into(), c.clone());
        }
        if let Some(s) = &d.unpacked_size {
            m.insert("unpackedSize".into(), s.clone());
        }
        if let (Some(listed), Some(url)) = (&d.attestations, urls.attestations) {
            let mut a = serde_json::json!({ "url": url(&self.name, v) });
            if !listed.is_empty() {
                a["provenance"] = serde_json::json!({ "predicateType": listed });
            }
            m.insert("attestations".into(), a);
        }
        Value::Object(m)
    }

    /// The document for a client: full, or abbreviated; `tarball(name,
    /// version)` is the URL of each tarball on bulwark.
    pub fn render(
        &self,
        abbreviated: bool,
        tarball: impl Fn(&PackageName, &str) -> String,
    ) -> Vec<u8> {
        self.render_with(
            abbreviated,
            &Urls {
                tarball: &tarball,
                attestations: None,
            },
        )
    }

    /// [`Packument::render`], with `dist.attestations` pointing at
    /// `urls.attestations` for the versions the registry lists them for.
    pub fn render_with(&self, abbreviated: bool, urls: &Urls<'_>) -> Vec<u8> {
        let mut doc = if abbreviated {
            let mut m = Map::new();
            if let Some(t) = self.time.get("modified") {
                m.insert("modified".into(), Value::String(t.clone()));
            }
            m
        } else {
            let mut m = self.rest.clone();
            let time: Map<String, Value> = self
                .time
                .iter()
                .filter(|(k, _)| {
                    k.as_str() == "created"
                        || k.as_str() == "modified"
                        || self.versions.contains_key(*k)
                })
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            m.insert("time".into(), Value::Object(time));
            m
        };
        doc.insert("name".into(), Value::String(self.name.to_string()));
        doc.insert(
            "dist-tags".into(),
            Value::Object(
                self.dist_tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        let mut versions = Map::new();
        for (v, version) in &self.versions {
            let mut m: Map<String, Value> = if abbreviated {
                ABBREVIATED_FIELDS
                    .iter()
                    .filter_map(|f| version.manifest.get(*f).map(|x| (f.to_string(), x.clone())))
                    .collect()
            } else {
                version.manifest.clone()
            };
            m.insert("dist".into(), self.dist_value(v, &version.dist, urls));
            versions.insert(v.clone(), Value::Object(m));
        }
        doc.insert("versions".into(), Value::Object(versions));
        serde_json::to_vec(&Value::Object(doc)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INTEGRITY: &str = "sha512-5ZYe1LgwHIaag0p9loMwsf5N/wJ4XAuHVNhSO+qulQOXWnyJVuco6IZjo+5u4ZLF/GimdHJcX+QK892ONfOCqQ==";

    fn doc() -> Value {
        json!({
            "_id": "@acme/pad",
            "name": "@acme/pad",
            "description": "pads",
            "dist-tags": { "latest": "1.1.0", "next": "2.0.0", "old": "1.0.0" },
            "time": { "created": "2024-01-01T00:00:00.000Z", "1.0.0": "2024-01-01T00:00:00.000Z", "1.1.0": "2024-02-01T00:00:00.000Z" },
            "versions": {
                "1.0.0": { "name": "@acme/pad", "version": "1.0.0", "readme": "long",
                           "dependencies": { "x": "^1" },
                           "dist": { "tarball": "http://up/@acme/pad/-/pad-1.0.0.tgz", "integrity": INTEGRITY, "shasum": "ab",
                                     "signatures": [{ "keyid": "k", "sig": "s" }], "npm-signature": "pgp" } },
                "1.1.0": { "name": "@acme/pad", "version": "1.1.0",
                           "dist": { "tarball": "http://up/x.tgz", "shasum": "ab" } },
                "2.0.0": { "name": "@acme/other", "version": "2.0.0",
                           "dist": { "tarball": "http://up/y.tgz", "integrity": INTEGRITY } },
                "../3": { "name": "@acme/pad", "version": "../3" }
            },
            "_attachments": { "big": "x" }
        })
    }

    #[test]
    fn versions_without_sha512_or_of_another_package_are_removed_with_their_tags() {
        let name = PackageName::parse("@acme/pad").unwrap();
        let p = Packument::parse(&serde_json::to_vec(&doc()).unwrap(), &name).unwrap();
        assert_eq!(p.versions.keys().collect::<Vec<_>>(), ["1.0.0"]);
        assert_eq!(p.removed["1.1.0"].check, "integrity");
        assert_eq!(p.removed["2.0.0"].check, "manifest");
        assert_eq!(p.dist_tags.len(), 1);
        assert_eq!(p.dist_tags["old"], "1.0.0");
        assert!(p.versions["1.0.0"].published.is_some());

        let url = |n: &PackageName, v: &str| format!("http://b/npm/{n}/-/{}-{v}.tgz", n.bare());
        let full: Value = serde_json::from_slice(&p.render(false, url)).unwrap();
        assert_eq!(full["description"], "pads");
        assert!(full.get("_attachments").is_none());
        let d = &full["versions"]["1.0.0"]["dist"];
        assert_eq!(d["tarball"], "http://b/npm/@acme/pad/-/pad-1.0.0.tgz");
        assert_eq!(d["integrity"], INTEGRITY);
        assert_eq!(d["signatures"][0]["keyid"], "k");
        assert!(d.get("npm-signature").is_none());
        assert_eq!(full["versions"]["1.0.0"]["readme"], "long");
        assert!(full["time"].get("1.1.0").is_none());
        // What bulwark writes parses back to the same versions.
        let again = Packument::parse(&serde_json::to_vec(&full).unwrap(), &name).unwrap();
        assert_eq!(
            again.versions["1.0.0"].dist.sha512,
            p.versions["1.0.0"].dist.sha512
        );

        let corgi: Value = serde_json::from_slice(&p.render(true, url)).unwrap();
        assert!(corgi.get("description").is_none());
        assert!(corgi["versions"]["1.0.0"].get("readme").is_none());
        assert_eq!(corgi["versions"]["1.0.0"]["dependencies"]["x"], "^1");
    }

    #[test]
    fn a_packument_of_another_name_or_not_json_is_refused() {
        let name = PackageName::parse("pad").unwrap();
        for body in [
            &b"[]"[..],
            b"{\"name\": \"other\"}",
            b"{",
            b"{\"name\": \"pad\", \"versions\": 1}",
        ] {
            assert!(Packument::parse(body, &name).is_err());
        }
        let p = Packument::parse(b"{\"name\": \"pad\"}", &name).unwrap();
        assert!(p.versions.is_empty());
    }

    #[test]
    fn retain_removes_and_keeps_why() {
        let name = PackageName::parse("@acme/pad").unwrap();
        let mut p = Packument::parse(&serde_json::to_vec(&doc()).unwrap(), &name).unwrap();
        p.retain(|_, _| {
            Err(Removed {
                check: "npm registry signature",
                expected: "e".into(),
                seen: "s".into(),
            })
        });
        assert!(p.versions.is_empty() && p.dist_tags.is_empty());
        assert_eq!(p.removed["1.0.0"].check, "npm registry signature");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn json_leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                "[a-z0-9@/._-]{0,12}".prop_map(Value::String),
                Just(json!(INTEGRITY)),
                Just(json!("sha512-AAAA")),
                Just(json!("2024-01-01T00:00:00.000Z")),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            json_leaf().prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("name".to_string()),
                            Just("version".to_string()),
                            Just("dist".to_string()),
                            Just("integrity".to_string()),
                            Just("tarball".to_string()),
                            Just("signatures".to_string()),
                            Just("keyid".to_string()),
                            Just("sig".to_string()),
                            Just("versions".to_string()),
                            Just("dist-tags".to_string()),
                            Just("time".to_string()),
                            Just("1.0.0".to_string()),
                            Just("latest".to_string()),
                            "[a-z0-9.]{1,6}",
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A packument-shaped document with arbitrary parts.
        fn packument() -> impl Strategy<Value = Value> {
            let version = (json_value(), json_value(), prop::bool::ANY, "[0-9.]{1,6}").prop_map(
                |(extra, dist, good, v)| {
                    let mut m = match extra {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    m.insert("name".into(), json!("x"));
                    m.insert("version".into(), json!(v.clone()));
                    let dist = if good {
                        json!({ "tarball": "http://u/x.tgz", "integrity": INTEGRITY,
                                "signatures": [{ "keyid": "k", "sig": v }] })
                    } else {
                        dist
                    };
                    m.insert("dist".into(), dist);
                    (v, Value::Object(m))
                },
            );
            (
                prop::collection::vec(version, 0..5),
                json_value(),
                json_value(),
                json_value(),
            )
                .prop_map(|(versions, tags, time, rest)| {
                    let mut doc = match rest {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    doc.insert("name".into(), json!("x"));
                    doc.insert(
                        "versions".into(),
                        Value::Object(versions.into_iter().collect()),
                    );
                    doc.insert("dist-tags".into(), tags);
                    doc.insert("time".into(), time);
                    Value::Object(doc)
                })
        }

        proptest! {
            /// What the fuzz target `npm_packument` checks: no input
            /// panics, and what bulwark writes parses back to the same
            /// versions, integrity, signatures and tags.
            #[test]
            fn what_bulwark_writes_parses_back_the_same(doc in packument()) {
                let name = PackageName::parse("x").unwrap();
                let body = serde_json::to_vec(&doc).unwrap();
                if let Ok(p) = Packument::parse(&body, &name) {
                    let url = |n: &PackageName, v: &str| format!("http://b/npm/{n}/-/{}-{v}.tgz", n.bare());
                    for abbreviated in [false, true] {
                        let back = Packument::parse(&p.render(abbreviated, url), &name).unwrap();
                        prop_assert_eq!(back.versions.keys().collect::<Vec<_>>(), p.versions.keys().collect::<Vec<_>>());
                        for (v, version) in &p.versions {
                            prop_assert_eq!(&back.versions[v].dist.integrity, &version.dist.integrity);
                            prop_assert_eq!(&back.versions[v].dist.signatures, &version.dist.signatures);
                        }
                        prop_assert_eq!(&back.dist_tags, &p.dist_tags);
                    }
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let name = PackageName::parse("x").unwrap();
                let _ = Packument::parse(&bytes, &name);
            }
        }
    }
}
