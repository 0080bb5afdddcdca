//! The Warg API v1 on the wire, exactly as the reference server
//! (`warg-server` 0.10) speaks it: routes, headers, JSON bodies, error
//! bodies, and guarded decoders for the untrusted bytes bulwark reads from
//! clients and upstreams.
//!
//! The request and response types are the reference crates' own
//! (`warg-api` 0.10 for JSON, `warg-protocol` for records and checkpoints,
//! `warg-transparency` for proof bundles), re-exported here so the Warg front,
//! verifier and upstream client name one module. What the reference peers do
//! with them, and which reference calls panic on hostile input, is written
//! down in `tests/support/WARG.md`; this module's decoders are the only place
//! bulwark turns Warg bytes into those types.
//!
//! Called by the Warg front (routing, error bodies, the `warg-registry-hint`
//! header), the Warg upstream client (decoding upstream answers) and the Warg
//! verifier (proof bundles).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::str::FromStr;
use thiserror::Error;
use warg_crypto::hash::{AnyHash, Sha256};
use warg_transparency::log::Node;

pub use warg_api::v1::content::{ContentError, ContentSourcesResponse};
pub use warg_api::v1::fetch::{
    FetchError, FetchLogsRequest, FetchLogsResponse, FetchPackageNamesRequest,
    FetchPackageNamesResponse, FetchWarning, PublishedRecord,
};
pub use warg_api::v1::ledger::{
    LedgerError, LedgerSource, LedgerSourceContentType, LedgerSourcesResponse,
};
pub use warg_api::v1::monitor::{CheckpointVerificationResponse, MonitorError, VerificationState};
pub use warg_api::v1::package::{
    MissingContent, PackageError, PackageRecord, PackageRecordState, PublishRecordRequest,
    UploadEndpoint,
};
pub use warg_api::v1::proof::{
    ConsistencyRequest, ConsistencyResponse, InclusionRequest, InclusionResponse, ProofError,
};
pub use warg_api::v1::{ContentSource, REGISTRY_HEADER_NAME, REGISTRY_HINT_HEADER_NAME};
pub use warg_api::{WellKnownConfig, WELL_KNOWN_PATH};
pub use warg_protocol::registry::{
    Checkpoint, LogId, LogLeaf, MapLeaf, PackageName, RecordId, RegistryIndex, RegistryLen,
    TimestampedCheckpoint,
};
pub use warg_protocol::{PublishedProtoEnvelopeBody, SerdeEnvelope};

/// A proof bundle of the registry log (inclusion and consistency proofs).
pub type LogProofBundle = warg_transparency::log::LogProofBundle<Sha256, LogLeaf>;
/// A proof bundle of the registry map (log ID to latest record ID).
pub type MapProofBundle = warg_transparency::map::MapProofBundle<Sha256, LogId, MapLeaf>;
/// A checkpoint as `GET /v1/fetch/checkpoint` returns it:
/// `{"contents":{"logRoot","logLength","mapRoot","timestamp"},"keyId","signature"}`.
pub type SignedCheckpoint = SerdeEnvelope<TimestampedCheckpoint>;

/// The one content type of every JSON body. The reference client compares
/// the header to this string byte for byte, on success and error answers
/// alike: `application/json; charset=utf-8` is refused.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The content type of `GET /v1/ledger/records/{start}` (64-byte
/// `logId || recordId` pairs, no framing).
pub const CONTENT_TYPE_LEDGER: &str = "application/vnd.warg.ledger.packed";

/// Depth of the registry map (a sparse Merkle tree keyed by the SHA-256 of
/// the log ID): a map inclusion proof holds at most this many peers.
pub const MAP_DEPTH: usize = 256;

/// The reference server's cap on `limit` in a fetch-logs request (and its
/// default, 100, when absent).
pub const MAX_FETCH_LIMIT: u16 = 1000;

/// A default bound on a JSON body bulwark reads (a full fetch-logs page is
/// about 1000 records of well under 1 KiB each).
pub const DEFAULT_JSON_LIMIT: usize = 8 << 20;

/// A bound on a proof bundle bulwark decodes (a log bundle holds one
/// 32-byte hash per needed node, a map bundle at most 256 per proof).
pub const DEFAULT_BUNDLE_LIMIT: usize = 4 << 20;

/// Why Warg bytes were refused. Each variant says what was being read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("{what}: {seen} bytes exceed the limit of {limit}")]
    TooLarge {
        what: &'static str,
        limit: usize,
        seen: usize,
    },
    #[error("{what}: not the expected JSON: {detail}")]
    Json { what: &'static str, detail: String },
    #[error("{what}: not a valid protobuf proof bundle: {detail}")]
    Protobuf { what: &'static str, detail: String },
    #[error("{what}: expected `sha256:` and 64 lowercase hex digits, saw {seen:?}")]
    Digest { what: &'static str, seen: String },
    #[error("namespace {seen:?} is not a valid Warg namespace (lower-case kebab case)")]
    Namespace { seen: String },
    #[error(
        "registry name {seen:?} cannot be a federation hint: expected 1 to 63 of a-z, 0-9, \
         '-', '.', starting with a letter or digit"
    )]
    RegistryName { seen: String },
    #[error("registry index {index} has no log node (index too large)")]
    IndexTooLarge { index: RegistryIndex },
}

/// An API route of a Warg registry, parsed from a request's method and
/// path (without query). Paths are those of `warg-api`'s `paths` module and
/// the reference server's router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/fetch/checkpoint`
    FetchCheckpoint,
    /// `POST /v1/fetch/logs` ([`FetchLogsRequest`] → [`FetchLogsResponse`])
    FetchLogs,
    /// `POST /v1/fetch/names` ([`FetchPackageNamesRequest`] →
    /// [`FetchPackageNamesResponse`])
    FetchNames,
    /// `POST /v1/proof/consistency` ([`ConsistencyRequest`] →
    /// [`ConsistencyResponse`])
    ProveConsistency,
    /// `POST /v1/proof/inclusion` ([`InclusionRequest`] →
    /// [`InclusionResponse`])
    ProveInclusion,
    /// `GET /v1/content/{digest}` → [`ContentSourcesResponse`]
    ContentSources { digest: AnyHash },
    /// `GET /content/sha256-{hex}`: the content bytes (the URL the
    /// reference server puts in `contentSources`; not under `/v1`).
    ContentFile { digest: AnyHash },
    /// `GET /v1/ledger` → [`LedgerSourcesResponse`]
    Ledger,
    /// `GET /v1/ledger/records/{start}`: packed leaves
    /// ([`CONTENT_TYPE_LEDGER`]), at most 1000 from `start`.
    LedgerRecords { start: RegistryIndex },
    /// `POST /v1/verify/checkpoint` ([`SignedCheckpoint`] →
    /// [`CheckpointVerificationResponse`])
    VerifyCheckpoint,
    /// `POST /v1/package/{logId}/record` ([`PublishRecordRequest`] → 202
    /// [`PackageRecord`])
    PublishRecord { log_id: LogId },
    /// `GET /v1/package/{logId}/record/{recordId}` → [`PackageRecord`]
    GetRecord { log_id: LogId, record_id: RecordId },
    /// `POST /v1/package/{logId}/record/{recordId}/content/{digest}`: the
    /// raw content bytes of a publish (201, empty body).
    UploadContent {
        log_id: LogId,
        record_id: RecordId,
        digest: AnyHash,
    },
    /// `GET /.well-known/wasm-pkg/registry.json` → [`WellKnownConfig`]
    /// (the reference server has none: bare 404).
    WellKnown,
}

impl Route {
    /// The route for `method` and `path`, or `None` for anything the
    /// reference server would not route (it answers those 404, or 405 for a
    /// known path with the wrong method).
    pub fn parse(method: &http::Method, path: &str) -> Option<Route> {
        use http::Method;
        let get = method == Method::GET;
        let post = method == Method::POST;
        if path == "/.well-known/wasm-pkg/registry.json" {
            return get.then_some(Route::WellKnown);
        }
        if let Some(file) = path.strip_prefix("/content/") {
            let digest = parse_digest("content file", &file.replacen('-', ":", 1)).ok()?;
            return get.then_some(Route::ContentFile { digest });
        }
        let rest = path.strip_prefix("/v1/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        let route = match segments.as_slice() {
            ["fetch", "checkpoint"] if get => Route::FetchCheckpoint,
            ["fetch", "logs"] if post => Route::FetchLogs,
            ["fetch", "names"] if post => Route::FetchNames,
            ["proof", "consistency"] if post => Route::ProveConsistency,
            ["proof", "inclusion"] if post => Route::ProveInclusion,
            ["content", digest] if get => Route::ContentSources {
                digest: parse_digest("content digest", digest).ok()?,
            },
            ["ledger"] if get => Route::Ledger,
            ["ledger", "records", start] if get => Route::LedgerRecords {
                start: parse_index(start)?,
            },
            ["verify", "checkpoint"] if post => Route::VerifyCheckpoint,
            ["package", log_id, "record"] if post => Route::PublishRecord {
                log_id: parse_digest("log id", log_id).ok()?.into(),
            },
            ["package", log_id, "record", record_id] if get => Route::GetRecord {
                log_id: parse_digest("log id", log_id).ok()?.into(),
                record_id: parse_digest("record id", record_id).ok()?.into(),
            },
            ["package", log_id, "record", record_id, "content", digest] if post => {
                Route::UploadContent {
                    log_id: parse_digest("log id", log_id).ok()?.into(),
                    record_id: parse_digest("record id", record_id).ok()?.into(),
                    digest: parse_digest("content digest", digest).ok()?,
                }
            }
            _ => return None,
        };
        Some(route)
    }
}

fn parse_index(s: &str) -> Option<RegistryIndex> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a SHA-256 digest, log ID or record ID as Warg writes them:
/// `sha256:` and exactly 64 lowercase hex digits. (`AnyHash::from_str`
/// alone accepts any length.)
pub fn parse_digest(what: &'static str, s: &str) -> Result<AnyHash, WireError> {
    let bad = || WireError::Digest {
        what,
        seen: s.chars().take(80).collect(),
    };
    let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    AnyHash::from_str(s).map_err(|_| bad())
}

/// The log ID of a package: SHA-256 of the prefix-encoded name. Fetch-logs
/// requests name packages only by this, so routing a request by namespace
/// needs the name from elsewhere (see WARG.md).
pub fn package_log_id(name: &PackageName) -> LogId {
    LogId::package_log::<Sha256>(name)
}

/// The log ID of the operator log.
pub fn operator_log_id() -> LogId {
    LogId::operator_log::<Sha256>()
}

/// The log node that holds the leaf at registry index `index`: leaves sit at
/// the even in-order positions, `Node(2 * index)`. A log inclusion proof for
/// `index` must be for exactly this node.
pub fn leaf_node(index: RegistryIndex) -> Result<Node, WireError> {
    index
        .checked_mul(2)
        .map(Node)
        .ok_or(WireError::IndexTooLarge { index })
}

/// Decodes a JSON body of at most `limit` bytes into `T`.
pub fn decode_json<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
    limit: usize,
) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge {
            what,
            limit,
            seen: bytes.len(),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| WireError::Json {
        what,
        detail: e.to_string(),
    })
}

/// Serialises `value` as the reference server does (compact JSON).
pub fn encode_json<T: Serialize>(value: &T) -> Vec<u8> {
    // The API types serialise to strings, numbers, maps and lists only.
    serde_json::to_vec(value).unwrap_or_else(|e| {
        format!(r#"{{"status":500,"message":"cannot encode response: {e}"}}"#).into_bytes()
    })
}

/// Decodes a log proof bundle (the `proof` of a consistency response or
/// the `log` of an inclusion response, after base64) of at most `limit`
/// bytes. Decoding checks only the protobuf and hash lengths: the caller
/// must check the bundle's proofs are the ones it asked for before
/// evaluating any (WARG.md lists the reference calls that panic otherwise).
pub fn decode_log_bundle(bytes: &[u8], limit: usize) -> Result<LogProofBundle, WireError> {
    const WHAT: &str = "log proof bundle";
    if bytes.len() > limit {
        return Err(WireError::TooLarge {
            what: WHAT,
            limit,
            seen: bytes.len(),
        });
    }
    LogProofBundle::decode(bytes).map_err(|e| WireError::Protobuf {
        what: WHAT,
        detail: format!("{e:#}"),
    })
}

/// Decodes a map proof bundle (the `map` of an inclusion response) of at
/// most `limit` bytes. Each proof's `peers` must be checked to hold at most
/// [`MAP_DEPTH`] entries before it is evaluated.
pub fn decode_map_bundle(bytes: &[u8], limit: usize) -> Result<MapProofBundle, WireError> {
    const WHAT: &str = "map proof bundle";
    if bytes.len() > limit {
        return Err(WireError::TooLarge {
            what: WHAT,
            limit,
            seen: bytes.len(),
        });
    }
    MapProofBundle::decode(bytes).map_err(|e| WireError::Protobuf {
        what: WHAT,
        detail: format!("{e:#}"),
    })
}

/// The status and body the reference server answers for a log it does not
/// have (fetch logs, fetch names): `404` and
/// `{"status":404,"type":"log","id":"sha256:…"}`.
pub fn log_not_found(log_id: &LogId) -> (u16, Vec<u8>) {
    let err = FetchError::LogNotFound(log_id.clone());
    (err.status(), encode_json(&err))
}

/// The status and body of a fetch error, the reference server's shape.
pub fn fetch_error(err: &FetchError) -> (u16, Vec<u8>) {
    (err.status(), encode_json(err))
}

/// A `{"status":…,"message":…}` body: the shape every Warg error type falls
/// back to, and what bulwark answers for its own refusals on Warg routes.
pub fn message_body(status: u16, message: &str) -> Vec<u8> {
    encode_json(&FetchError::Message {
        status,
        message: message.to_string(),
    })
}

/// The value of the `warg-registry-hint` header that sends a reference
/// client for `namespace` to the registry named `registry`:
/// `<namespace>=<registry>`. The client splits at the first `=`, remembers
/// the mapping, sends `Warg-Registry: <registry>` on later requests for the
/// namespace, and uses `<registry>` as a directory name for that registry's
/// state: hence the strict character set.
pub fn registry_hint(namespace: &str, registry: &str) -> Result<String, WireError> {
    if !PackageName::is_valid_namespace(namespace) {
        return Err(WireError::Namespace {
            seen: namespace.to_string(),
        });
    }
    if !is_valid_registry_name(registry) {
        return Err(WireError::RegistryName {
            seen: registry.to_string(),
        });
    }
    Ok(format!("{namespace}={registry}"))
}

/// Whether `name` can name an upstream in `Warg-Registry` and
/// `warg-registry-hint` headers: 1 to 63 of `a-z 0-9 - .`, starting with a
/// letter or digit, no `..`.
pub fn is_valid_registry_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use proptest::prelude::*;

    const ZERO: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    const ONES: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn log_not_found_body_matches_the_reference_server_byte_for_byte() {
        // Captured from warg-server 0.10: POST /v1/fetch/logs for an unknown log.
        let log_id: LogId = parse_digest("log id", ZERO).unwrap().into();
        let (status, body) = log_not_found(&log_id);
        assert_eq!(status, 404);
        assert_eq!(
            body,
            format!(r#"{{"status":404,"type":"log","id":"{ZERO}"}}"#).into_bytes()
        );
        // And the reference client reads it back as LogNotFound.
        let back: FetchError = decode_json("error", &body, DEFAULT_JSON_LIMIT).unwrap();
        assert!(matches!(back, FetchError::LogNotFound(id) if id == log_id));
    }

    #[test]
    fn message_body_has_the_reference_shape() {
        assert_eq!(
            message_body(502, "upstream `acme` failed: bad signature"),
            br#"{"status":502,"message":"upstream `acme` failed: bad signature"}"#.to_vec()
        );
    }

    #[test]
    fn routes_parse_as_the_reference_router_defines_them() {
        let digest = parse_digest("t", ONES).unwrap();
        let cases = [
            (
                Method::GET,
                "/v1/fetch/checkpoint".to_string(),
                Some(Route::FetchCheckpoint),
            ),
            (
                Method::POST,
                "/v1/fetch/logs".into(),
                Some(Route::FetchLogs),
            ),
            (
                Method::POST,
                "/v1/fetch/names".into(),
                Some(Route::FetchNames),
            ),
            (
                Method::POST,
                "/v1/proof/consistency".into(),
                Some(Route::ProveConsistency),
            ),
            (
                Method::POST,
                "/v1/proof/inclusion".into(),
                Some(Route::ProveInclusion),
            ),
            (Method::GET, "/v1/ledger".into(), Some(Route::Ledger)),
            (
                Method::GET,
                "/v1/ledger/records/1000".into(),
                Some(Route::LedgerRecords { start: 1000 }),
            ),
            (
                Method::POST,
                "/v1/verify/checkpoint".into(),
                Some(Route::VerifyCheckpoint),
            ),
            (
                Method::GET,
                format!("/v1/content/{ONES}"),
                Some(Route::ContentSources {
                    digest: digest.clone(),
                }),
            ),
            (
                Method::GET,
                format!("/content/{}", ONES.replace(':', "-")),
                Some(Route::ContentFile {
                    digest: digest.clone(),
                }),
            ),
            (
                Method::POST,
                format!("/v1/package/{ZERO}/record"),
                Some(Route::PublishRecord {
                    log_id: parse_digest("t", ZERO).unwrap().into(),
                }),
            ),
            (
                Method::GET,
                format!("/v1/package/{ZERO}/record/{ONES}"),
                Some(Route::GetRecord {
                    log_id: parse_digest("t", ZERO).unwrap().into(),
                    record_id: digest.clone().into(),
                }),
            ),
            (
                Method::POST,
                format!("/v1/package/{ZERO}/record/{ONES}/content/{ONES}"),
                Some(Route::UploadContent {
                    log_id: parse_digest("t", ZERO).unwrap().into(),
                    record_id: digest.clone().into(),
                    digest: digest.clone(),
                }),
            ),
            (
                Method::GET,
                "/.well-known/wasm-pkg/registry.json".into(),
                Some(Route::WellKnown),
            ),
            // Wrong methods, unknown paths, malformed identifiers.
            (Method::POST, "/v1/fetch/checkpoint".into(), None),
            (Method::GET, "/v1/fetch/logs".into(), None),
            (Method::GET, "/v1/fetch/checkpoint/".into(), None),
            (Method::GET, "/v1/content/sha256:11".into(), None),
            (
                Method::GET,
                format!("/v1/content/{}", ONES.to_uppercase()),
                None,
            ),
            (Method::GET, "/v1/ledger/records/-1".into(), None),
            (Method::GET, "/v1/ledger/records/".into(), None),
            (Method::GET, "/content/sha256:11".into(), None),
            (Method::GET, "/v2/fetch/checkpoint".into(), None),
            (Method::GET, "/".into(), None),
        ];
        for (method, path, want) in cases {
            assert_eq!(Route::parse(&method, &path), want, "{method} {path}");
        }
    }

    #[test]
    fn digests_must_be_sha256_with_64_lowercase_hex_digits() {
        assert!(parse_digest("t", ZERO).is_ok());
        for bad in [
            "sha256:",
            "sha256:00",
            "sha512:0000000000000000000000000000000000000000000000000000000000000000",
            "sha256:000000000000000000000000000000000000000000000000000000000000000g",
            "sha256:000000000000000000000000000000000000000000000000000000000000000A",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(
                matches!(parse_digest("t", bad), Err(WireError::Digest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_hint_is_namespace_equals_name_and_refuses_path_like_names() {
        assert_eq!(
            registry_hint("wasi", "bca-registry").unwrap(),
            "wasi=bca-registry"
        );
        assert_eq!(
            registry_hint("my-ns", "registry.example.com").unwrap(),
            "my-ns=registry.example.com"
        );
        for bad in ["", "../etc", "a/b", "A", "a..b", ".hidden", "a=b", "a b"] {
            assert!(
                matches!(
                    registry_hint("wasi", bad),
                    Err(WireError::RegistryName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            registry_hint("Wasi", "x"),
            Err(WireError::Namespace { .. })
        ));
    }

    #[test]
    fn leaf_nodes_are_even_in_order_positions() {
        assert_eq!(leaf_node(0).unwrap(), Node(0));
        assert_eq!(leaf_node(5).unwrap(), Node(10));
        assert!(leaf_node(RegistryIndex::MAX).is_err());
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let body = vec![b' '; 11];
        assert_eq!(
            decode_json::<FetchLogsResponse>("fetch logs response", &body, 10).unwrap_err(),
            WireError::TooLarge {
                what: "fetch logs response",
                limit: 10,
                seen: 11
            }
        );
        assert!(matches!(
            decode_log_bundle(&[0; 11], 10),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_map_bundle(&[0; 11], 10),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn checkpoint_envelope_round_trips_in_the_reference_shape() {
        // Captured from warg-server 0.10 (GET /v1/fetch/checkpoint).
        let body = br#"{"contents":{"logRoot":"sha256:a6dfa791cad9b99d52be18e7d2dbcbaf6944dcbda670135a026d4dff0bc46bc3","logLength":1,"mapRoot":"sha256:3ac0d22dfdb36542a107c1d1871ff69d0a4ec6bc224d431ea4ed8916b488a281","timestamp":1795312098},"keyId":"sha256:d6d9b4cd077a829c0275233bf3843c8294e250dfcc82b8ea15745e92982a820d","signature":"ecdsa-p256:MEUCIQCzx4yHesRMQFJarbiuGb8ZwKShALEiLHTi4XJ0Ivm7QgIgIx3rKbJj3VhhpqIXqjV3J16/GJsWTZGokeWzrs1ungM="}"#;
        let cp: SignedCheckpoint = decode_json("checkpoint", body, DEFAULT_JSON_LIMIT).unwrap();
        assert_eq!(cp.as_ref().checkpoint.log_length, 1);
        assert_eq!(cp.as_ref().timestamp, 1795312098);
        assert_eq!(encode_json(&cp), body.to_vec());
    }

    #[test]
    fn an_empty_bundle_decodes_to_no_proofs_so_counts_must_be_checked() {
        // The empty protobuf message is a valid bundle with nothing in it;
        // the reference client zips proofs with leaves and accepts it.
        let (_, consistency, inclusion) = decode_log_bundle(&[], DEFAULT_BUNDLE_LIMIT)
            .unwrap()
            .unbundle();
        assert!(consistency.is_empty() && inclusion.is_empty());
        assert!(decode_map_bundle(&[], DEFAULT_BUNDLE_LIMIT)
            .unwrap()
            .unbundle()
            .is_empty());
    }

    proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_log_bundle(&bytes, DEFAULT_BUNDLE_LIMIT);
            let _ = decode_map_bundle(&bytes, DEFAULT_BUNDLE_LIMIT);
            let _ = decode_json::<FetchLogsResponse>("t", &bytes, DEFAULT_JSON_LIMIT);
            let _ = decode_json::<SignedCheckpoint>("t", &bytes, DEFAULT_JSON_LIMIT);
            let _ = decode_json::<InclusionResponse>("t", &bytes, DEFAULT_JSON_LIMIT);
        }

        #[test]
        fn route_parsing_never_panics(path in "/[a-z0-9:/._-]{0,200}") {
            let _ = Route::parse(&Method::GET, &path);
            let _ = Route::parse(&Method::POST, &path);
        }
    }
}
