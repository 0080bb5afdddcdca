//! Configuration: the TOML files in `federation/` (`[server]` and
//! `[[upstream]]`), parsed, resolved and validated into typed structs.
//!
//! This file knows the `[server]` table and the keys every `[[upstream]]`
//! has whatever its protocol (`name`, `protocol`, `url`, `namespaces`,
//! `default`, `witness_policy`, `ca_file`, `token`, `token_env`,
//! `max_checkpoint_age`). Every other key of an upstream belongs to its
//! protocol: each ecosystem reads and checks its own keys in its folder
//! (`src/gomod/config.rs`, `src/warg/config.rs`) through
//! [`ProtocolConfig`], and the typed result travels in the
//! [`UpstreamConfig`] ([`UpstreamConfig::settings`]). This file imports
//! no ecosystem and not the routing table: [`Config::parse_with`] takes the
//! protocols as an argument. `Config::load`, `Config::parse` and
//! `Config::embedded`, which use every registered ecosystem and refuse
//! overlapping namespace claims, are in `src/ecosystems.rs`.
//!
//! `main.rs` loads a [`Config`] (from a file or the copy embedded in the
//! binary), the server reads [`ServerConfig`], the federation layer builds its
//! routing table from the [`UpstreamConfig`]s, and the protocol fronts and the
//! verifier read the pinned keys from them. Every error names the file, the key
//! path and the problem, e.g.
//! `federation/x.toml: upstream[1].namespaces: "acme" is already owned by upstream "internal"`.
//!
//! Fail-closed: unknown keys are errors (an ecosystem's own keys too: they
//! are checked against the fields of the struct it reads them into, see
//! [`ProtocolKeys::parse`]), keys are checked for syntax (and, for
//! signed-note keys, for a key id that matches the key) when the file is
//! loaded, and credentials named by environment variable must be set.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::tlog::note::VerifierKey;
use crate::tlog::policy::Policy;

/// The default configuration, compiled into the binary so that `bulwark
/// serve` runs without any file.
pub const EMBEDDED_DEFAULT: &str = include_str!("../federation/default.toml");

/// The name [`Config::embedded`] reports as its origin in messages.
pub const EMBEDDED_ORIGIN: &str = "<embedded federation/default.toml>";

/// A configuration error: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    /// The file the error is in (as given on the command line).
    pub file: String,
    /// Dotted key path, e.g. `upstream[1].namespaces` or `server.listen`.
    pub key: String,
    /// What is wrong, saying what was expected and what was seen.
    pub message: String,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or [`EMBEDDED_ORIGIN`]).
    pub origin: String,
    /// The `[server]` table.
    pub server: ServerConfig,
    /// The `[[upstream]]` entries, in file order.
    pub upstreams: Vec<UpstreamConfig>,
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[server]`: where and how bulwark listens, and its limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`"127.0.0.1:8080"`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory for trust state and blobs. A relative path is taken relative
    /// to the current working directory.
    pub data_dir: PathBuf,
    /// Oldest upstream checkpoint accepted while the upstream answers.
    pub max_checkpoint_age: Duration,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: u64,
    /// Largest request head (request line and headers) accepted (431 beyond).
    pub max_header_bytes: usize,
    /// Most request headers accepted (431 beyond).
    pub max_headers: usize,
    /// Time a request may take from its head arriving to its response head.
    pub request_timeout: Duration,
    /// Time a client has to send a complete request head (slow clients are
    /// disconnected), and to finish a TLS handshake.
    pub header_read_timeout: Duration,
    /// Requests handled at once; more wait in a queue (see `queue_length`).
    pub max_concurrency: usize,
    /// Requests that may wait for one of the `max_concurrency` slots; a
    /// request beyond them gets 503 (with `Retry-After`) at once. 0: no
    /// queue. Health probes and metrics never wait.
    pub queue_length: usize,
    /// Longest a request waits in the queue before it gets 503.
    pub queue_timeout: Duration,
    /// Connections open at once (besides the `probe_connections`); beyond
    /// this new connections are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one client IP address.
    pub max_connections_per_peer: usize,
    /// Connections kept beyond `max_connections` for health probes: each
    /// may carry one `/healthz` or `/readyz` request, then it is closed.
    pub probe_connections: usize,
    /// A connection whose client takes no response bytes for this long
    /// (its response is waiting on the client) is closed. An idle timeout,
    /// not a total: a slow client that keeps reading is never cut off.
    pub write_timeout: Duration,
    /// An HTTP/2 connection with no open stream for this long gets GOAWAY
    /// and is closed (idle HTTP/1.1 connections close after
    /// `header_read_timeout`).
    pub idle_timeout: Duration,
    /// Serve on a non-loopback address without `tokens`: the operator says
    /// explicitly that anyone who reaches the port may use bulwark.
    pub allow_unauthenticated: bool,
    /// `offline = true`: no upstream is ever contacted (an air-gapped
    /// mirror, filled by `bulwark import`); what was verified is served
    /// with the stale `Warning`, the rest refused with check `offline`.
    pub offline: bool,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Bytes of verified blobs kept in memory (the blob store's memory
    /// tier, `store::hot`): every buffer of the tier counts while it lives,
    /// cached or still being sent. 0 turns it off.
    pub blob_cache_bytes: u64,
    /// Largest blob kept in memory (at most half of `blob_cache_bytes`);
    /// larger ones are streamed from their file.
    pub blob_cache_max_object: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// TLS certificate and key, if bulwark terminates TLS itself.
    pub tls: Option<TlsConfig>,
    /// Bearer tokens clients must present (none: no authentication).
    pub tokens: Vec<Secret>,
}

impl ServerConfig {
    /// Refuses to serve on a non-loopback address with no `tokens` unless
    /// `allow_unauthenticated` says so: anyone who can reach such an
    /// address could use bulwark (and its upstream credentials). Checked
    /// when the configuration is read and again when the socket is bound
    /// (`serve --listen` overrides the address).
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() || !self.tokens.is_empty() || self.allow_unauthenticated {
            return Ok(());
        }
        Err(format!(
            "{} is not a loopback address and no server.tokens (or tokens_file) are set, so anyone \
             who can reach it could use bulwark; set tokens, or set \
             server.allow_unauthenticated = true to serve without authentication on purpose",
            self.listen
        ))
    }
}

/// `[server.tls]`: PEM files, resolved against the config file's directory.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A secret string whose `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// How an ecosystem's namespaces are written and matched; the routing
/// table (`src/federation.rs`) keeps one table per protocol by this rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Matching {
    /// A namespace is one label (Warg's `acme` in `acme:pkg`), matched
    /// exactly and case-insensitively; one upstream per protocol may be
    /// `default = true` and take every namespace nobody claims.
    Label,
    /// A namespace is a path prefix (`github.com/acme/*`, or
    /// `github.com/acme`: the same) matching the path itself and every path
    /// below it, element by element; the longest matching prefix wins; `*`
    /// matches every path, so there is no `default`.
    PathPrefix,
}

/// The protocol an upstream speaks: its `protocol = "..."` name and how its
/// namespaces match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol {
    name: &'static str,
    matching: Matching,
}

impl Protocol {
    /// The name written in `protocol = "..."` (`gomod`, `warg`).
    pub fn name(self) -> &'static str {
        self.name
    }

    /// How its namespaces match.
    pub fn matching(self) -> Matching {
        self.matching
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// An ecosystem's part of the configuration: its `protocol` name, its
/// namespaces, and the keys of an `[[upstream]]` that only it has.
/// Implemented in the ecosystem's folder (`src/<ecosystem>/config.rs`),
/// registered in `src/ecosystems.rs`.
pub trait ProtocolConfig: Sync {
    /// The `protocol = "..."` value.
    fn protocol(&self) -> &'static str;

    /// How namespaces are matched.
    fn matching(&self) -> Matching;

    /// Checks one `namespaces` entry as written and returns it as the
    /// routing table compares it (Warg: lowercased; Go: `*` or the prefix
    /// without `/*`), or says what was expected.
    fn namespace(&self, written: &str) -> Result<String, String>;

    /// Reads and checks this protocol's own keys of one upstream (call
    /// [`ProtocolKeys::parse`] once with the struct they go into).
    fn settings(
        &self,
        keys: &mut ProtocolKeys<'_>,
    ) -> Result<Arc<dyn UpstreamSettings>, ConfigError>;
}

/// What an ecosystem read from its own keys of one upstream (its pinned
/// keys, its options); the fronts get it back typed with
/// [`UpstreamConfig::settings`].
pub trait UpstreamSettings: Any + fmt::Debug + Send + Sync {
    /// What `check-config` prints under the upstream's URL: the pinned
    /// key(s) it verifies against.
    fn pinned(&self) -> String;

    /// The signed-note verifier key (`name+hex8+base64`) of the log a
    /// `witness_policy` would apply to, or why this protocol cannot
    /// enforce one (the error message).
    /// Returned with the key path that pinned it (`sumdb.key`), for
    /// messages.
    fn witness_log_key(&self) -> Result<(&'static str, &str), String>;
}

/// A witness policy as configured: the file (resolved against the config
/// file's directory) and the policy it holds, parsed once, at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    pub path: PathBuf,
    pub policy: Policy,
}

/// One `[[upstream]]` entry, validated.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Unique name (used in logs, metrics, routing tables, `Warg-Registry`).
    pub name: String,
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Base URL (no trailing slash).
    pub url: String,
    /// Namespaces owned, as the protocol normalized them
    /// ([`ProtocolConfig::namespace`]).
    pub namespaces: Vec<String>,
    /// Take the namespaces nobody claims ([`Matching::Label`] protocols).
    pub default: bool,
    /// The c2sp.org/tlog-policy, parsed and checked (against the protocol's
    /// [`UpstreamSettings::witness_log_key`]) when the configuration is
    /// loaded.
    pub witness_policy: Option<WitnessPolicy>,
    /// Extra CA certificate (PEM) to trust for this upstream's TLS.
    pub ca_file: Option<PathBuf>,
    /// Credential sent upstream as a bearer token.
    pub token: Option<Secret>,
    /// Per-upstream override of `server.max_checkpoint_age`.
    pub max_checkpoint_age: Option<Duration>,
    /// What the protocol read from its own keys.
    settings: Arc<dyn UpstreamSettings>,
}

impl UpstreamConfig {
    /// The freshness bound for this upstream's checkpoints.
    pub fn checkpoint_age_bound(&self, server: &ServerConfig) -> Duration {
        self.max_checkpoint_age.unwrap_or(server.max_checkpoint_age)
    }

    /// The protocol's own settings, if they are a `T` (`None` for an
    /// upstream of another protocol): e.g.
    /// `u.settings::<GoSettings>()` in the Go front.
    pub fn settings<T: UpstreamSettings>(&self) -> Option<&T> {
        let any: &dyn Any = self.settings.as_ref();
        any.downcast_ref::<T>()
    }

    /// Replaces the protocol's own settings (`bulwark import` points an
    /// upstream at the bundle it serves on loopback).
    pub fn set_settings<T: UpstreamSettings>(&mut self, settings: T) {
        self.settings = Arc::new(settings);
    }

    /// The protocol's settings, shared, if they are a `T`.
    pub fn settings_arc<T: UpstreamSettings>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = self.settings.clone();
        any.downcast::<T>().ok()
    }

    /// What `check-config` prints for its pinned key(s).
    pub fn pinned(&self) -> String {
        self.settings.pinned()
    }
}

// ---- raw (as written) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    upstream: Vec<RawUpstream>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    max_checkpoint_age: Option<String>,
    max_body_bytes: Option<u64>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    request_timeout: Option<String>,
    header_read_timeout: Option<String>,
    max_concurrency: Option<usize>,
    queue_length: Option<usize>,
    queue_timeout: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_peer: Option<usize>,
    probe_connections: Option<usize>,
    write_timeout: Option<String>,
    idle_timeout: Option<String>,
    allow_unauthenticated: Option<bool>,
    offline: Option<bool>,
    shutdown_grace: Option<String>,
    blob_cache_bytes: Option<u64>,
    blob_cache_max_object: Option<u64>,
    log_format: Option<LogFormat>,
    tls: Option<RawTls>,
    tokens: Option<Vec<String>>,
    tokens_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

/// The keys every `[[upstream]]` has; all others are its protocol's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: String,
    protocol: String,
    url: String,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    default: bool,
    witness_policy: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    token: Option<String>,
    token_env: Option<String>,
    max_checkpoint_age: Option<String>,
}

/// Defaults, written once so that the reference in README matches the code.
pub mod defaults {
    /// `server.listen`
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `server.data_dir`
    pub const DATA_DIR: &str = "bulwark-data";
    /// `server.max_checkpoint_age`
    pub const MAX_CHECKPOINT_AGE: &str = "24h";
    /// `server.max_body_bytes` (64 MiB)
    pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
    /// `server.max_header_bytes` (hyper's floor is 8192)
    pub const MAX_HEADER_BYTES: usize = 16 * 1024;
    /// `server.max_headers`
    pub const MAX_HEADERS: usize = 100;
    /// `server.request_timeout`
    pub const REQUEST_TIMEOUT: &str = "120s";
    /// `server.header_read_timeout`
    pub const HEADER_READ_TIMEOUT: &str = "10s";
    /// `server.max_concurrency`
    pub const MAX_CONCURRENCY: usize = 512;
    /// `server.queue_length`
    pub const QUEUE_LENGTH: usize = 4096;
    /// `server.queue_timeout`
    pub const QUEUE_TIMEOUT: &str = "5s";
    /// `server.max_connections`
    pub const MAX_CONNECTIONS: usize = 4096;
    /// `server.max_connections_per_peer`
    pub const MAX_CONNECTIONS_PER_PEER: usize = 256;
    /// `server.probe_connections`
    pub const PROBE_CONNECTIONS: usize = 4;
    /// `server.write_timeout`
    pub const WRITE_TIMEOUT: &str = "60s";
    /// `server.idle_timeout`
    pub const IDLE_TIMEOUT: &str = "30s";
    /// `server.shutdown_grace`
    pub const SHUTDOWN_GRACE: &str = "30s";
    /// `server.blob_cache_bytes` (64 MiB)
    pub const BLOB_CACHE_BYTES: u64 = crate::store::hot::DEFAULT_BUDGET;
    /// `server.blob_cache_max_object` (16 MiB)
    pub const BLOB_CACHE_MAX_OBJECT: u64 = crate::store::hot::DEFAULT_MAX_OBJECT;
}

/// Smallest head buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8192;

impl Config {
    /// Reads and validates the file at `path` with the given protocols
    /// (`Config::load` in `src/ecosystems.rs` gives every registered one and
    /// checks the routing table).
    pub fn load_with(
        path: &Path,
        protocols: &[&dyn ProtocolConfig],
    ) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: origin.clone(),
            key: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse_with(&text, &origin, &base, protocols)
    }

    /// Parses and validates `text` with the given protocols; `origin` names
    /// it in errors and `base` is the directory relative file paths are
    /// resolved against. Namespace claims are checked one by one, not
    /// against each other: that is the routing table's check
    /// (`Federation::new`), which `Config::parse` in `src/ecosystems.rs`
    /// makes.
    pub fn parse_with(
        text: &str,
        origin: &str,
        base: &Path,
        protocols: &[&dyn ProtocolConfig],
    ) -> Result<Config, ConfigError> {
        let v = Validator { origin, base, text };
        let mut doc = DeTable::parse(text).map_err(|e| v.toml_error(e))?;
        // Each upstream's protocol keys are taken out of its table before
        // the generic keys are read; its protocol reads them.
        let generic = struct_fields::<RawUpstream>().unwrap_or(&[]);
        let mut own_keys: Vec<Spanned<DeTable<'_>>> = Vec::new();
        if let Some(DeValue::Array(list)) = doc
            .get_mut()
            .iter_mut()
            .find(|(k, _)| k.get_ref() == "upstream")
            .map(|(_, v)| v.get_mut())
        {
            for item in list.iter_mut() {
                let span = item.span();
                let own = match item.get_mut() {
                    DeValue::Table(t) => {
                        let (keep, own): (Vec<_>, Vec<_>) = std::mem::take(t)
                            .into_iter()
                            .partition(|(k, _)| generic.contains(&k.get_ref().as_ref()));
                        *t = keep.into_iter().collect();
                        own.into_iter().collect()
                    }
                    // Not a table: refused below, when the generic keys are read.
                    _ => DeTable::new(),
                };
                own_keys.push(Spanned::new(span, own));
            }
        }
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
            .map_err(|e| v.toml_error(e))?;
        let server = v.server(raw.server)?;
        let mut upstreams = Vec::with_capacity(raw.upstream.len());
        let mut own_keys = own_keys.into_iter();
        for (i, u) in raw.upstream.into_iter().enumerate() {
            let own = own_keys
                .next()
                .unwrap_or_else(|| Spanned::new(0..0, DeTable::new()));
            upstreams.push(v.upstream(i, u, own, &server, protocols)?);
        }
        v.unique_names(&upstreams)?;
        Ok(Config {
            origin: origin.to_string(),
            server,
            upstreams,
        })
    }

    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

/// One upstream's protocol keys (every key of its `[[upstream]]` table that
/// is not a generic one), handed to its protocol's
/// [`ProtocolConfig::settings`], with what it needs to check them and to
/// name them in errors.
pub struct ProtocolKeys<'a> {
    v: &'a Validator<'a>,
    index: usize,
    name: &'a str,
    protocol: &'static str,
    server: &'a ServerConfig,
    /// Taken by [`ProtocolKeys::parse`].
    table: Option<Spanned<DeTable<'a>>>,
}

impl ProtocolKeys<'_> {
    /// Reads the keys into `T`, a struct deriving `Deserialize` (one field
    /// per key, `Option` for optional ones). A key that is not a field of
    /// `T` is an error whatever `T`'s serde attributes say, so a key the
    /// protocol does not read is never silently ignored. Errors name the
    /// key path (`upstream[1].sumdb.key`) and the line.
    pub fn parse<T: DeserializeOwned>(&mut self) -> Result<T, ConfigError> {
        let table = self
            .table
            .take()
            .unwrap_or_else(|| Spanned::new(0..0, DeTable::new()));
        let Some(fields) = struct_fields::<T>() else {
            return Err(self.err(
                "(protocol keys)",
                format!(
                    "bulwark bug: the {} keys are not read into a struct",
                    self.protocol
                ),
            ));
        };
        if let Some((key, _)) = table
            .get_ref()
            .iter()
            .find(|(k, _)| !fields.contains(&k.get_ref().as_ref()))
        {
            return Err(self.unknown(key.get_ref(), fields));
        }
        let span = table.span();
        T::deserialize(toml::de::ValueDeserializer::from(Spanned::new(
            span,
            DeValue::Table(table.into_inner()),
        )))
        .map_err(|e| self.v.toml_error(e))
    }

    /// The error for the upstream's key `key` (relative: `sumdb.key`).
    pub fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.v
            .err(format!("upstream[{}].{key}", self.index), message)
    }

    /// Checks an http(s) URL (the upstream's `key`); returns it without a
    /// trailing slash.
    pub fn url(&self, key: &str, text: &str) -> Result<String, ConfigError> {
        self.v.url(&format!("upstream[{}].{key}", self.index), text)
    }

    /// A file path the upstream names, relative to the configuration
    /// file's directory unless absolute.
    pub fn path(&self, p: impl Into<PathBuf>) -> PathBuf {
        self.v.resolve(p.into())
    }

    /// The `[server]` table, for checks that depend on it.
    pub fn server(&self) -> &ServerConfig {
        self.server
    }

    /// The upstream's `name`.
    pub fn upstream_name(&self) -> &str {
        self.name
    }

    fn unknown(&self, key: &str, fields: &[&str]) -> ConfigError {
        let generic = struct_fields::<RawUpstream>().unwrap_or(&[]);
        let mut all: Vec<&str> = generic.iter().chain(fields).copied().collect();
        all.sort_unstable();
        self.err(
            key,
            format!(
                "unknown field `{key}`: a {} upstream takes {}",
                self.protocol,
                all.join(", ")
            ),
        )
    }

    /// After the protocol read its keys: any left unread (the protocol
    /// never called `parse`) are unknown.
    fn finish(&self) -> Result<(), ConfigError> {
        match self.table.as_ref().and_then(|t| t.get_ref().keys().next()) {
            Some(key) => Err(self.unknown(key.get_ref(), &[])),
            None => Ok(()),
        }
    }
}

/// The field names of the struct `T` deserializes into (`None` if `T` is
/// not a struct), read from its `Deserialize` implementation: the one list
/// of keys a section takes.
fn struct_fields<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    use serde::de::{Error as _, Visitor};
    use serde::forward_to_deserialize_any;

    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(Self::Error::custom("probed"))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = None;
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

struct Validator<'a> {
    origin: &'a str,
    base: &'a Path,
    /// The whole file, to turn the parser's spans into key paths and lines.
    text: &'a str,
}

impl Validator<'_> {
    /// A TOML parse or type error, at the key path and line of its span.
    fn toml_error(&self, e: toml::de::Error) -> ConfigError {
        let text = self.text;
        let (key, line) = match e.span() {
            Some(span) => (key_path_at(text, span.start), line_of(text, span.start)),
            None => ("(document)".to_string(), 0),
        };
        let mut message = e.message().trim().to_string();
        if line > 0 {
            message = format!("{message} (line {line})");
        }
        self.err(key, message)
    }

    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.origin.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn resolve(&self, p: PathBuf) -> PathBuf {
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<String>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let text = value.unwrap_or_else(|| default.to_string());
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("expected a duration like \"30s\" or \"24h\", saw {text:?} ({e})"),
            )
        })?;
        if d.is_zero() {
            return Err(self.err(key, format!("must be longer than zero, saw {text:?}")));
        }
        Ok(d)
    }

    fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let listen_text = raw.listen.unwrap_or_else(|| defaults::LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            self.err(
                "server.listen",
                format!(
                    "expected an IP address and port like \"127.0.0.1:8080\", saw {listen_text:?}"
                ),
            )
        })?;
        let max_header_bytes = raw.max_header_bytes.unwrap_or(defaults::MAX_HEADER_BYTES);
        if max_header_bytes < MIN_HEADER_BYTES {
            return Err(self.err(
                "server.max_header_bytes",
                format!("must be at least {MIN_HEADER_BYTES}, saw {max_header_bytes}"),
            ));
        }
        let positive = |key: &str, v: usize| -> Result<usize, ConfigError> {
            if v == 0 {
                Err(self.err(key, "must be at least 1, saw 0"))
            } else {
                Ok(v)
            }
        };
        let max_headers = positive(
            "server.max_headers",
            raw.max_headers.unwrap_or(defaults::MAX_HEADERS),
        )?;
        let max_concurrency = positive(
            "server.max_concurrency",
            raw.max_concurrency.unwrap_or(defaults::MAX_CONCURRENCY),
        )?;
        let max_connections = positive(
            "server.max_connections",
            raw.max_connections.unwrap_or(defaults::MAX_CONNECTIONS),
        )?;
        // The default never exceeds max_connections; a configured value
        // above it could not be enforced, so it is an error.
        let max_connections_per_peer = match raw.max_connections_per_peer {
            None => defaults::MAX_CONNECTIONS_PER_PEER.min(max_connections),
            Some(n) => {
                let n = positive("server.max_connections_per_peer", n)?;
                if n > max_connections {
                    return Err(self.err(
                        "server.max_connections_per_peer",
                        format!(
                            "must be at most server.max_connections ({max_connections}), saw {n}"
                        ),
                    ));
                }
                n
            }
        };
        let blob_cache_bytes = raw.blob_cache_bytes.unwrap_or(defaults::BLOB_CACHE_BYTES);
        // The default shrinks with a smaller cache; a configured value
        // above half the cache could not be enforced, so it is an error.
        let blob_cache_max_object = match raw.blob_cache_max_object {
            None => defaults::BLOB_CACHE_MAX_OBJECT.min(blob_cache_bytes / 2),
            Some(n) if n > blob_cache_bytes / 2 => {
                return Err(self.err(
                    "server.blob_cache_max_object",
                    format!(
                        "must be at most half of server.blob_cache_bytes ({}), saw {n}",
                        blob_cache_bytes / 2
                    ),
                ))
            }
            Some(n) => n,
        };
        let mut tokens = Vec::new();
        for (i, t) in raw.tokens.unwrap_or_default().into_iter().enumerate() {
            tokens.push(self.token(&format!("server.tokens[{i}]"), t)?);
        }
        if let Some(file) = raw.tokens_file {
            let path = self.resolve(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                self.err(
                    "server.tokens_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                tokens.push(self.token(
                    &format!("server.tokens_file ({} line {})", path.display(), n + 1),
                    line.to_string(),
                )?);
            }
        }
        let tls = match raw.tls {
            None => None,
            Some(t) => {
                let cert = self.resolve(t.cert);
                let key = self.resolve(t.key);
                for (k, p) in [("server.tls.cert", &cert), ("server.tls.key", &key)] {
                    if !p.is_file() {
                        return Err(self.err(k, format!("no such file: {}", p.display())));
                    }
                }
                Some(TlsConfig { cert, key })
            }
        };
        let server = ServerConfig {
            listen,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR)),
            max_checkpoint_age: self.duration(
                "server.max_checkpoint_age",
                raw.max_checkpoint_age,
                defaults::MAX_CHECKPOINT_AGE,
            )?,
            max_body_bytes: raw.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES),
            max_header_bytes,
            max_headers,
            request_timeout: self.duration(
                "server.request_timeout",
                raw.request_timeout,
                defaults::REQUEST_TIMEOUT,
            )?,
            header_read_timeout: self.duration(
                "server.header_read_timeout",
                raw.header_read_timeout,
                defaults::HEADER_READ_TIMEOUT,
            )?,
            max_concurrency,
            queue_length: raw.queue_length.unwrap_or(defaults::QUEUE_LENGTH),
            queue_timeout: self.duration(
                "server.queue_timeout",
                raw.queue_timeout,
                defaults::QUEUE_TIMEOUT,
            )?,
            max_connections,
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace,
                defaults::SHUTDOWN_GRACE,
            )?,
            max_connections_per_peer,
            probe_connections: raw.probe_connections.unwrap_or(defaults::PROBE_CONNECTIONS),
            write_timeout: self.duration(
                "server.write_timeout",
                raw.write_timeout,
                defaults::WRITE_TIMEOUT,
            )?,
            idle_timeout: self.duration(
                "server.idle_timeout",
                raw.idle_timeout,
                defaults::IDLE_TIMEOUT,
            )?,
            allow_unauthenticated: raw.allow_unauthenticated.unwrap_or(false),
            offline: raw.offline.unwrap_or(false),
            blob_cache_bytes,
            blob_cache_max_object,
            log_format: raw.log_format.unwrap_or(LogFormat::Human),
            tls,
            tokens,
        };
        server
            .check_exposure()
            .map_err(|m| self.err("server.listen", m))?;
        Ok(server)
    }

    fn token(&self, key: &str, t: String) -> Result<Secret, ConfigError> {
        let ok = t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(self.err(
                key,
                format!(
                    "a token must be at least 16 printable ASCII characters without spaces, saw {} characters",
                    t.len()
                ),
            ));
        }
        Ok(Secret(t))
    }

    fn url(&self, key: &str, text: &str) -> Result<String, ConfigError> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| self.err(key, format!("expected an http(s) URL, saw {text:?} ({e})")))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http") | Some("https"));
        if !scheme_ok || uri.authority().is_none() || uri.query().is_some() {
            return Err(self.err(
                key,
                format!(
                    "expected an http:// or https:// URL with a host and no query, saw {text:?}"
                ),
            ));
        }
        Ok(text.trim_end_matches('/').to_string())
    }

    fn upstream(
        &self,
        i: usize,
        raw: RawUpstream,
        own: Spanned<DeTable<'_>>,
        server: &ServerConfig,
        protocols: &[&dyn ProtocolConfig],
    ) -> Result<UpstreamConfig, ConfigError> {
        let at = |k: &str| format!("upstream[{i}].{k}");
        if !valid_upstream_name(&raw.name) {
            return Err(self.err(
                at("name"),
                format!(
                    "expected lowercase letters, digits, '.', '-' or '_' starting with a letter or digit (at most 64), saw {:?}",
                    raw.name
                ),
            ));
        }
        let Some(&proto) = protocols.iter().find(|p| p.protocol() == raw.protocol) else {
            let known: Vec<&str> = protocols.iter().map(|p| p.protocol()).collect();
            return Err(self.err(
                at("protocol"),
                format!(
                    "unknown protocol {:?}, expected one of: {}",
                    raw.protocol,
                    known.join(", ")
                ),
            ));
        };
        let protocol = Protocol {
            name: proto.protocol(),
            matching: proto.matching(),
        };
        let url = self.url(&at("url"), &raw.url)?;
        let mut keys = ProtocolKeys {
            v: self,
            index: i,
            name: &raw.name,
            protocol: protocol.name,
            server,
            table: Some(own),
        };
        let settings = proto.settings(&mut keys)?;
        keys.finish()?;
        let mut namespaces = Vec::with_capacity(raw.namespaces.len());
        for (j, ns) in raw.namespaces.iter().enumerate() {
            let norm = proto
                .namespace(ns)
                .map_err(|m| self.err(format!("upstream[{i}].namespaces[{j}]"), m))?;
            namespaces.push(norm);
        }
        match protocol.matching {
            Matching::Label => {
                if namespaces.is_empty() && !raw.default {
                    return Err(self.err(
                        at("namespaces"),
                        format!(
                            "a {protocol} upstream must own at least one namespace or be the default (default = true)"
                        ),
                    ));
                }
            }
            Matching::PathPrefix => {
                if raw.default {
                    return Err(self.err(
                        at("default"),
                        format!(
                            "a {protocol} upstream takes no default: its namespaces are path \
                             prefixes, so claim the pattern \"*\" for every path"
                        ),
                    ));
                }
                if namespaces.is_empty() {
                    return Err(self.err(
                        at("namespaces"),
                        format!(
                            "a {protocol} upstream must own at least one namespace pattern (\"*\" for all)"
                        ),
                    ));
                }
            }
        }
        let witness_policy = match raw.witness_policy {
            None => None,
            Some(p) => Some(self.witness_policy(&at("witness_policy"), p, settings.as_ref())?),
        };
        let ca_file = match raw.ca_file {
            None => None,
            Some(p) => {
                let p = self.resolve(p);
                if !p.is_file() {
                    return Err(self.err(at("ca_file"), format!("no such file: {}", p.display())));
                }
                Some(p)
            }
        };
        let token = match (raw.token, raw.token_env) {
            (Some(_), Some(_)) => {
                return Err(self.err(at("token_env"), "give either token or token_env, not both"));
            }
            (Some(t), None) => Some(Secret(t)),
            (None, Some(var)) => match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Some(Secret(v)),
                _ => {
                    return Err(self.err(
                        at("token_env"),
                        format!("environment variable {var} is not set (or empty)"),
                    ));
                }
            },
            (None, None) => None,
        };
        let max_checkpoint_age = match raw.max_checkpoint_age {
            None => None,
            Some(t) => Some(self.duration(&at("max_checkpoint_age"), Some(t), "")?),
        };
        Ok(UpstreamConfig {
            name: raw.name,
            protocol,
            url,
            namespaces,
            default: raw.default,
            witness_policy,
            ca_file,
            token,
            max_checkpoint_age,
            settings,
        })
    }

    /// Reads and checks a `witness_policy`: only logs whose checkpoints are
    /// signed notes can be cosigned by witnesses (a policy bulwark cannot
    /// enforce is an error, never ignored: the protocol says why in
    /// [`UpstreamSettings::witness_log_key`]); the file must parse; and its
    /// `log` lines must include the key pinned for the log, so that the
    /// pinned key signs every tree the policy admits.
    fn witness_policy(
        &self,
        key: &str,
        path: PathBuf,
        settings: &dyn UpstreamSettings,
    ) -> Result<WitnessPolicy, ConfigError> {
        let (pinned_at, pinned) = settings.witness_log_key().map_err(|m| self.err(key, m))?;
        let path = self.resolve(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.err(key, format!("cannot read {}: {e}", path.display())))?;
        let policy =
            Policy::parse(&text).map_err(|e| self.err(key, format!("{}: {e}", path.display())))?;
        let pinned: VerifierKey = pinned
            .parse()
            .map_err(|e| self.err(key, format!("{pinned_at}: {e}")))?;
        if !policy.log_keys().contains(&pinned) {
            return Err(self.err(
                key,
                format!(
                    "{}: no `log` line names the pinned {pinned_at} {}; the pinned key must sign \
                     every tree the policy admits",
                    path.display(),
                    pinned.name()
                ),
            ));
        }
        Ok(WitnessPolicy { path, policy })
    }

    fn unique_names(&self, ups: &[UpstreamConfig]) -> Result<(), ConfigError> {
        for (i, u) in ups.iter().enumerate() {
            if let Some(first) = ups[..i].iter().position(|o| o.name == u.name) {
                return Err(self.err(
                    format!("upstream[{i}].name"),
                    format!("{:?} is already the name of upstream[{first}]", u.name),
                ));
            }
        }
        Ok(())
    }
}

fn valid_upstream_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_')
        })
}

/// The first 60 characters of something written in the file, for messages
/// that quote a bad value (a key, a path) without flooding the terminal.
pub fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort dotted key path (`upstream[1].sumdb.key`) of the byte at
/// `offset`, for errors from the TOML parser, which point at a span.
fn key_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    // The table header in force: the last `[x]` / `[[x]]` line before here.
    let mut section = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text.get(..line_start).unwrap_or("").lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((name.clone(), 0));
                    0
                }
            };
            section = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            section = name.trim().to_string();
        }
    }
    // Keys on the current line before the offset, following inline tables.
    let line = before.get(line_start..).unwrap_or("");
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut word = String::new();
    let mut in_str: Option<char> = None;
    for c in line.chars() {
        if let Some(q) = in_str {
            if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => in_str = Some(c),
            '=' => {
                let k = word.trim().to_string();
                if !k.is_empty() {
                    current = Some(k);
                }
                word.clear();
            }
            '{' => {
                if let Some(k) = current.take() {
                    stack.push(k);
                }
                word.clear();
            }
            '}' => {
                stack.pop();
                current = None;
                word.clear();
            }
            ',' => {
                current = None;
                word.clear();
            }
            _ => word.push(c),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !section.is_empty() {
        parts.push(section);
    }
    parts.extend(stack);
    if let Some(k) = current {
        parts.push(k);
    }
    if parts.is_empty() {
        "(top level)".to_string()
    } else {
        parts.join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protocol with one key of its own (`secret`, a string table
    /// `extra = { n = 1 }`), path-prefix namespaces, and an optional
    /// witness log key: enough to test the generic part.
    struct Toy {
        reads: bool,
    }

    #[derive(Debug)]
    struct ToySettings(String);

    impl UpstreamSettings for ToySettings {
        fn pinned(&self) -> String {
            self.0.clone()
        }
        fn witness_log_key(&self) -> Result<(&'static str, &str), String> {
            Err("toy logs have no witnesses".into())
        }
    }

    #[derive(Deserialize)]
    struct RawToy {
        secret: Option<String>,
        #[allow(dead_code)]
        extra: Option<RawExtra>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawExtra {
        #[allow(dead_code)]
        n: u32,
    }

    impl ProtocolConfig for Toy {
        fn protocol(&self) -> &'static str {
            "toy"
        }
        fn matching(&self) -> Matching {
            Matching::Label
        }
        fn namespace(&self, written: &str) -> Result<String, String> {
            Ok(written.to_ascii_lowercase())
        }
        fn settings(
            &self,
            keys: &mut ProtocolKeys<'_>,
        ) -> Result<Arc<dyn UpstreamSettings>, ConfigError> {
            if !self.reads {
                return Ok(Arc::new(ToySettings(String::new())));
            }
            let raw: RawToy = keys.parse()?;
            Ok(Arc::new(ToySettings(raw.secret.unwrap_or_default())))
        }
    }

    static TOY: Toy = Toy { reads: true };
    /// Forgets to read its keys.
    static CARELESS: Toy = Toy { reads: false };

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, "t.toml", Path::new("."), &[&TOY])
    }

    fn toy(extra: &str) -> String {
        format!(
            "[[upstream]]\nname = \"t\"\nprotocol = \"toy\"\nurl = \"https://t.example\"\nnamespaces = [\"Acme\"]\n{extra}\n"
        )
    }

    #[test]
    fn embedded_default_parses_with_no_upstream_protocol_missing() {
        // The generic part of the embedded file; `ecosystems` checks the
        // whole of it with every registered protocol.
        let e =
            Config::parse_with(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN, Path::new("."), &[]).unwrap_err();
        assert_eq!(e.key, "upstream[0].protocol", "{e}");
    }

    #[test]
    fn a_protocols_own_keys_reach_it_and_the_settings_come_back_typed() {
        let c = parse(&toy("secret = \"s3\"")).unwrap();
        let u = &c.upstreams[0];
        assert_eq!(u.protocol.name(), "toy");
        assert_eq!(u.namespaces, ["acme"]);
        assert_eq!(u.settings::<ToySettings>().unwrap().0, "s3");
        assert_eq!(u.pinned(), "s3");
    }

    #[test]
    fn an_unknown_upstream_key_is_refused_naming_it() {
        let e = parse(&toy("secrte = \"s3\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].secrte", "{e}");
        assert!(e.message.contains("unknown field `secrte`"), "{e}");
        assert!(e.message.contains("secret"), "{e}");
        // Even when the protocol never reads its keys.
        let e = Config::parse_with(
            &toy("secret = \"s3\""),
            "t.toml",
            Path::new("."),
            &[&CARELESS],
        )
        .unwrap_err();
        assert_eq!(e.key, "upstream[0].secret", "{e}");
    }

    #[test]
    fn a_type_error_in_a_protocol_key_names_its_path_and_line() {
        let e = parse(&toy("extra = { n = \"one\" }")).unwrap_err();
        assert_eq!(e.key, "upstream[0].extra.n", "{e}");
        assert!(e.message.contains("(line 6)"), "{e}");
        let e = parse(&toy("extra = { n = 1, m = 2 }")).unwrap_err();
        assert!(e.message.contains("`m`"), "{e}");
    }

    #[test]
    fn an_unknown_protocol_is_refused_listing_the_known_ones() {
        let e = parse(&toy("").replace("\"toy\"", "\"tooy\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].protocol", "{e}");
        assert!(
            e.message.contains("tooy") && e.message.contains("toy"),
            "{e}"
        );
    }

    #[test]
    fn a_witness_policy_the_protocol_cannot_enforce_is_refused() {
        let e = parse(&toy("witness_policy = \"p.policy\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].witness_policy", "{e}");
        assert!(e.message.contains("no witnesses"), "{e}");
    }

    #[test]
    fn two_upstreams_with_one_name_are_refused() {
        let e = parse(&(toy("") + &toy(""))).unwrap_err();
        assert_eq!(e.key, "upstream[1].name", "{e}");
    }

    #[test]
    fn the_blob_cache_defaults_and_refuses_an_object_limit_it_cannot_keep() {
        let c = parse("[server]\n").unwrap();
        assert_eq!(c.server.blob_cache_bytes, defaults::BLOB_CACHE_BYTES);
        assert_eq!(
            c.server.blob_cache_max_object,
            defaults::BLOB_CACHE_MAX_OBJECT
        );
        let c = parse("[server]\nblob_cache_bytes = 1048576\n").unwrap();
        assert_eq!(c.server.blob_cache_max_object, 524288);
        let c = parse("[server]\nblob_cache_bytes = 0\n").unwrap();
        assert_eq!(c.server.blob_cache_max_object, 0);
        let e = parse("[server]\nblob_cache_bytes = 1048576\nblob_cache_max_object = 524289\n")
            .unwrap_err();
        assert_eq!(e.key, "server.blob_cache_max_object", "{e}");
        assert!(e.message.contains("524288"), "{e}");
    }

    #[test]
    fn unknown_key_names_section_and_field() {
        let e = parse("[server]\nlisten = \"127.0.0.1:0\"\nlissten = 1\n").unwrap_err();
        assert_eq!(e.file, "t.toml");
        assert_eq!(e.key, "server");
        assert!(e.message.contains("lissten"), "{e}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e = parse("[server]\nrequest_timeout = \"soon\"\n").unwrap_err();
        assert_eq!(e.key, "server.request_timeout");
        assert!(e.message.contains("soon"));
    }

    #[test]
    fn the_request_queue_is_configured_and_checked() {
        let c = parse("[server]\n").unwrap();
        assert_eq!(c.server.queue_length, defaults::QUEUE_LENGTH);
        assert_eq!(c.server.queue_timeout, Duration::from_secs(5));
        let c = parse("[server]\nqueue_length = 0\nqueue_timeout = \"250ms\"\n").unwrap();
        assert_eq!(c.server.queue_length, 0);
        assert_eq!(c.server.queue_timeout, Duration::from_millis(250));
        let e = parse("[server]\nqueue_timeout = \"0s\"\n").unwrap_err();
        assert_eq!(e.key, "server.queue_timeout", "{e}");
        assert!(parse("[server]\nqueue_length = -1\n").is_err());
    }

    #[test]
    fn offline_mode_is_off_unless_set() {
        assert!(!parse("").unwrap().server.offline);
        assert!(parse("[server]\noffline = true\n").unwrap().server.offline);
        assert!(parse("[server]\noffline = \"yes\"\n").is_err());
    }

    #[test]
    fn a_non_loopback_listen_needs_tokens_or_an_explicit_opt_out() {
        let e = parse("[server]\nlisten = \"0.0.0.0:8080\"\n").unwrap_err();
        assert_eq!(e.key, "server.listen");
        assert!(e.message.contains("allow_unauthenticated"), "{e}");
        let e = parse("[server]\nlisten = \"[::]:8080\"\n").unwrap_err();
        assert_eq!(e.key, "server.listen");
        parse("[server]\nlisten = \"0.0.0.0:8080\"\nallow_unauthenticated = true\n").unwrap();
        parse("[server]\nlisten = \"0.0.0.0:8080\"\ntokens = [\"0123456789abcdef0123\"]\n")
            .unwrap();
        parse("[server]\nlisten = \"[::1]:8080\"\n").unwrap();
    }

    #[test]
    fn connection_limits_are_validated() {
        let c = parse("[server]\nmax_connections = 10\n").unwrap();
        // The default per-peer cap never exceeds max_connections.
        assert_eq!(c.server.max_connections_per_peer, 10);
        let e =
            parse("[server]\nmax_connections = 10\nmax_connections_per_peer = 11\n").unwrap_err();
        assert_eq!(e.key, "server.max_connections_per_peer");
        let e = parse("[server]\nmax_connections_per_peer = 0\n").unwrap_err();
        assert_eq!(e.key, "server.max_connections_per_peer");
        let e = parse("[server]\nwrite_timeout = \"0s\"\n").unwrap_err();
        assert_eq!(e.key, "server.write_timeout");
        let c = parse("[server]\nidle_timeout = \"5s\"\nprobe_connections = 0\n").unwrap();
        assert_eq!(c.server.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.server.probe_connections, 0);
    }
}
