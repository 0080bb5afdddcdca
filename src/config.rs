//! Configuration: the TOML files in `federation/` (`[server]` and
//! `[[upstream]]`), parsed, resolved and validated into typed structs.
//!
//! `main.rs` loads a [`Config`] (from a file or the copy embedded in the
//! binary), the server reads [`ServerConfig`], the federation layer builds its
//! routing table from the [`UpstreamConfig`]s, and the protocol fronts and the
//! verifier read the pinned keys from them. Every error names the file, the key
//! path and the problem, e.g.
//! `federation/x.toml: upstream[1].namespaces: "acme" is already owned by upstream "internal"`.
//!
//! Fail-closed: unknown keys are errors, keys are checked for syntax (and, for
//! signed-note keys, for a key id that matches the key) when the file is
//! loaded, and credentials named by environment variable must be set.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::federation::{Federation, FederationError};
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

/// Warg: what bulwark does with a client's publish (`publish = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WargPublish {
    /// Refused with 403 (the default: a mirror is read-only unless the
    /// operator says otherwise).
    #[default]
    Off,
    /// Forwarded to the upstream owning the namespace with the client's own
    /// `Authorization` header (if any) and never with the upstream `token`,
    /// which is a read credential.
    Forward,
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
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
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

/// The protocol an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Warg API v1.
    Warg,
    /// GOPROXY protocol with a checksum database.
    Gomod,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Warg => "warg",
            Protocol::Gomod => "gomod",
        })
    }
}

/// The checksum database that vouches for a Go upstream's modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbConfig {
    /// Database name, e.g. `sum.golang.org`.
    pub name: String,
    /// Base URL (no trailing slash), e.g. `https://sum.golang.org`.
    pub url: String,
    /// Signed-note verifier key `name+hex8+base64`, checked for syntax and
    /// key id.
    pub key: String,
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
    /// Warg: the pinned operator key, `ecdsa-p256:<base64 SEC1 point>`.
    pub operator_key: Option<String>,
    /// Go: the checksum database.
    pub sumdb: Option<SumdbConfig>,
    /// Warg namespaces (lowercased) or Go module path patterns owned.
    pub namespaces: Vec<String>,
    /// Warg: route namespaces nobody claims here.
    pub default: bool,
    /// Go: the c2sp.org/tlog-policy, parsed and checked when the
    /// configuration is loaded.
    pub witness_policy: Option<WitnessPolicy>,
    /// Extra CA certificate (PEM) to trust for this upstream's TLS.
    pub ca_file: Option<PathBuf>,
    /// Credential sent upstream as a bearer token.
    pub token: Option<Secret>,
    /// Per-upstream override of `server.max_checkpoint_age`.
    pub max_checkpoint_age: Option<Duration>,
    /// Warg: whether client publishes are forwarded (with the client's own
    /// credential) or refused.
    pub publish: WargPublish,
    /// Warg: how long a verified checkpoint answers `fetch/checkpoint`
    /// before the upstream is asked again (zero: every request asks).
    pub checkpoint_reuse: Duration,
}

impl UpstreamConfig {
    /// The freshness bound for this upstream's checkpoints.
    pub fn checkpoint_age_bound(&self, server: &ServerConfig) -> Duration {
        self.max_checkpoint_age.unwrap_or(server.max_checkpoint_age)
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
    shutdown_grace: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSumdb {
    name: String,
    url: Option<String>,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: String,
    protocol: Protocol,
    url: String,
    operator_key: Option<String>,
    sumdb: Option<RawSumdb>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    default: bool,
    witness_policy: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    token: Option<String>,
    token_env: Option<String>,
    max_checkpoint_age: Option<String>,
    publish: Option<WargPublish>,
    checkpoint_reuse: Option<String>,
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
    /// `upstream.checkpoint_reuse` (Warg)
    pub const CHECKPOINT_REUSE: &str = "2s";
    /// The longest `upstream.checkpoint_reuse` accepted.
    pub const MAX_CHECKPOINT_REUSE: std::time::Duration = std::time::Duration::from_secs(60);
}

/// Smallest head buffer hyper accepts.
const MIN_HEADER_BYTES: usize = 8192;

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
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
        Config::parse(&text, &origin, &base)
    }

    /// The configuration embedded in the binary; relative paths in it are
    /// taken relative to the current directory.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN, Path::new("."))
    }

    /// Parses and validates `text`; `origin` names it in errors and `base` is
    /// the directory relative file paths are resolved against.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (key, line) = match e.span() {
                Some(span) => (key_path_at(text, span.start), line_of(text, span.start)),
                None => ("(document)".to_string(), 0),
            };
            let mut message = e.message().trim().to_string();
            if line > 0 {
                message = format!("{message} (line {line})");
            }
            ConfigError {
                file: origin.to_string(),
                key,
                message,
            }
        })?;
        let v = Validator { origin, base };
        let server = v.server(raw.server)?;
        let mut upstreams = Vec::with_capacity(raw.upstream.len());
        for (i, u) in raw.upstream.into_iter().enumerate() {
            upstreams.push(v.upstream(i, u)?);
        }
        v.unique_names(&upstreams)?;
        for (i, u) in upstreams.iter().enumerate() {
            if u.publish == WargPublish::Forward && !server.tokens.is_empty() {
                // The client's Authorization header is what `forward`
                // sends upstream; with server.tokens it is bulwark's own
                // token, which must never reach an upstream.
                return Err(v.err(
                    format!("upstream[{i}].publish"),
                    "\"forward\" sends the client's Authorization header upstream, and with \
                     server.tokens that header is a bulwark token, which would leak to the \
                     upstream; publish to the upstream directly, or serve this upstream from a \
                     bulwark without tokens",
                ));
            }
        }
        if let Err(e) = Federation::new(&upstreams) {
            return Err(v.federation_error(e));
        }
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

struct Validator<'a> {
    origin: &'a str,
    base: &'a Path,
}

impl Validator<'_> {
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

    fn upstream(&self, i: usize, raw: RawUpstream) -> Result<UpstreamConfig, ConfigError> {
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
        let url = self.url(&at("url"), &raw.url)?;
        let mut operator_key = None;
        let mut sumdb = None;
        let mut namespaces = Vec::with_capacity(raw.namespaces.len());
        match raw.protocol {
            Protocol::Warg => {
                if raw.sumdb.is_some() {
                    return Err(
                        self.err(at("sumdb"), "only gomod upstreams have a checksum database")
                    );
                }
                let key = raw.operator_key.ok_or_else(|| {
                    self.err(
                        at("operator_key"),
                        "a warg upstream needs its pinned operator key (\"ecdsa-p256:<base64>\")",
                    )
                })?;
                check_warg_key(&key).map_err(|m| self.err(at("operator_key"), m))?;
                operator_key = Some(key);
                for (j, ns) in raw.namespaces.iter().enumerate() {
                    if !valid_warg_namespace(ns) {
                        return Err(self.err(
                            format!("upstream[{i}].namespaces[{j}]"),
                            format!("expected a kebab-case Warg namespace like \"acme\" or \"wasi\", saw {ns:?}"),
                        ));
                    }
                    namespaces.push(ns.to_ascii_lowercase());
                }
                if namespaces.is_empty() && !raw.default {
                    return Err(self.err(
                        at("namespaces"),
                        "a warg upstream must own at least one namespace or be the default (default = true)",
                    ));
                }
            }
            Protocol::Gomod => {
                if raw.checkpoint_reuse.is_some() {
                    return Err(self.err(
                        at("checkpoint_reuse"),
                        "only warg upstreams take checkpoint_reuse",
                    ));
                }
                if raw.publish.is_some() {
                    return Err(self.err(
                        at("publish"),
                        "only warg upstreams take publish; bulwark never forwards writes to a GOPROXY",
                    ));
                }
                if raw.operator_key.is_some() {
                    return Err(self.err(
                        at("operator_key"),
                        "only warg upstreams have an operator key",
                    ));
                }
                if raw.default {
                    return Err(self.err(
                        at("default"),
                        "only warg upstreams take default; for Go modules claim the pattern \"*\"",
                    ));
                }
                let s = raw.sumdb.ok_or_else(|| {
                    self.err(
                        at("sumdb"),
                        "a gomod upstream needs its checksum database: sumdb = { name, url, key }",
                    )
                })?;
                if !valid_sumdb_name(&s.name) {
                    return Err(self.err(
                        at("sumdb.name"),
                        format!(
                            "expected a checksum database name like \"sum.golang.org\", saw {:?}",
                            s.name
                        ),
                    ));
                }
                check_note_verifier_key(&s.key, &s.name)
                    .map_err(|m| self.err(at("sumdb.key"), m))?;
                let sumdb_url = match s.url {
                    Some(u) => self.url(&at("sumdb.url"), &u)?,
                    None => format!("https://{}", s.name),
                };
                sumdb = Some(SumdbConfig {
                    name: s.name,
                    url: sumdb_url,
                    key: s.key,
                });
                for (j, p) in raw.namespaces.iter().enumerate() {
                    let norm = normalize_go_pattern(p)
                        .map_err(|m| self.err(format!("upstream[{i}].namespaces[{j}]"), m))?;
                    namespaces.push(norm);
                }
                if namespaces.is_empty() {
                    return Err(self.err(
                        at("namespaces"),
                        "a gomod upstream must own at least one module path pattern (\"*\" for all)",
                    ));
                }
            }
        }
        let witness_policy = match raw.witness_policy {
            None => None,
            Some(p) => {
                Some(self.witness_policy(&at("witness_policy"), p, &raw.protocol, &sumdb)?)
            }
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
        let reuse_text = raw
            .checkpoint_reuse
            .unwrap_or_else(|| defaults::CHECKPOINT_REUSE.to_string());
        let checkpoint_reuse = humantime::parse_duration(reuse_text.trim()).map_err(|e| {
            self.err(
                at("checkpoint_reuse"),
                format!(
                    "expected a duration like \"2s\" (\"0s\": no reuse), saw {reuse_text:?} ({e})"
                ),
            )
        })?;
        if checkpoint_reuse > defaults::MAX_CHECKPOINT_REUSE {
            return Err(self.err(
                at("checkpoint_reuse"),
                format!(
                    "at most {} (a reused checkpoint is not re-confirmed meanwhile), saw {reuse_text:?}",
                    humantime::format_duration(defaults::MAX_CHECKPOINT_REUSE)
                ),
            ));
        }
        Ok(UpstreamConfig {
            name: raw.name,
            protocol: raw.protocol,
            url,
            operator_key,
            sumdb,
            namespaces,
            default: raw.default,
            witness_policy,
            ca_file,
            token,
            max_checkpoint_age,
            publish: raw.publish.unwrap_or_default(),
            checkpoint_reuse,
        })
    }

    /// Reads and checks a `witness_policy`: only protocols whose checkpoints
    /// are signed notes can be cosigned by witnesses (a policy bulwark
    /// cannot enforce is an error, never ignored); the file must parse; and
    /// its `log` lines must include the key pinned for the log, so that
    /// the pinned key signs every tree the policy admits.
    fn witness_policy(
        &self,
        key: &str,
        path: PathBuf,
        protocol: &Protocol,
        sumdb: &Option<SumdbConfig>,
    ) -> Result<WitnessPolicy, ConfigError> {
        let pinned = match (protocol, sumdb) {
            (Protocol::Gomod, Some(s)) => &s.key,
            (Protocol::Gomod, None) => {
                return Err(self.err(key, "a witness policy needs the sumdb it applies to"));
            }
            (Protocol::Warg, _) => {
                return Err(self.err(
                    key,
                    "warg checkpoints are not signed notes, so no witness can cosign them and \
                     bulwark cannot enforce a witness policy for a warg upstream; remove the key",
                ));
            }
        };
        let path = self.resolve(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| self.err(key, format!("cannot read {}: {e}", path.display())))?;
        let policy =
            Policy::parse(&text).map_err(|e| self.err(key, format!("{}: {e}", path.display())))?;
        let pinned: VerifierKey = pinned
            .parse()
            .map_err(|e| self.err(key, format!("sumdb.key: {e}")))?;
        if !policy.log_keys().contains(&pinned) {
            return Err(self.err(
                key,
                format!(
                    "{}: no `log` line names the pinned sumdb.key {}; the pinned key must sign \
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

    fn federation_error(&self, e: FederationError) -> ConfigError {
        match e {
            FederationError::Overlap {
                index,
                namespace,
                owner,
                ..
            } => self.err(
                format!("upstream[{index}].namespaces"),
                format!("{namespace:?} is already owned by upstream {owner:?}"),
            ),
            FederationError::TwoDefaults { index, owner, .. } => self.err(
                format!("upstream[{index}].default"),
                format!("upstream {owner:?} is already the default warg upstream"),
            ),
        }
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

/// Warg namespaces are kebab-case labels (`acme`, `my-org`); compared
/// case-insensitively.
pub fn valid_warg_namespace(s: &str) -> bool {
    if s.is_empty() || s.len() > 128 {
        return false;
    }
    s.split('-').enumerate().all(|(i, word)| {
        let b = word.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_alphanumeric())
            && (i > 0 || b[0].is_ascii_alphabetic())
    })
}

fn valid_sumdb_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && !s.contains('+') && s.bytes().all(|c| c.is_ascii_graphic())
}

/// Normalizes a Go module path pattern: `*` (everything), or a module path
/// prefix written `github.com/acme/*` or `github.com/acme` (both mean the path
/// and everything below it, element-wise). Returns `*` or the prefix.
pub fn normalize_go_pattern(p: &str) -> Result<String, String> {
    if p == "*" {
        return Ok("*".to_string());
    }
    let prefix = p.strip_suffix("/*").unwrap_or(p);
    let bad = |why: &str| {
        format!(
            "expected \"*\" or a module path prefix like \"github.com/acme/*\", saw {p:?} ({why})"
        )
    };
    if prefix.is_empty() || prefix.len() > 512 {
        return Err(bad("empty or too long"));
    }
    for elem in prefix.split('/') {
        if elem.is_empty() {
            return Err(bad("empty path element"));
        }
        if elem.contains('*') {
            return Err(bad("'*' is allowed only as the whole last element"));
        }
        if elem == "." || elem == ".." {
            return Err(bad("'.' and '..' are not path elements"));
        }
        if !elem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
        {
            return Err(bad("characters outside A-Z a-z 0-9 - . _ ~"));
        }
    }
    Ok(prefix.to_string())
}

/// Checks a Warg public key `ecdsa-p256:<base64 SEC1 point>`.
pub fn check_warg_key(key: &str) -> Result<(), String> {
    let Some(b64) = key.strip_prefix("ecdsa-p256:") else {
        return Err(format!(
            "expected a Warg public key \"ecdsa-p256:<base64>\", saw {:?}",
            truncate(key)
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the part after \"ecdsa-p256:\" is not base64 ({e})"))?;
    if p256::PublicKey::from_sec1_bytes(&bytes).is_err() {
        let hint = if bytes.len() == 32 {
            " (32 bytes: is this the private key?)"
        } else {
            ""
        };
        return Err(format!(
            "not a P-256 public key: expected a 33- or 65-byte SEC1 point, saw {} bytes{hint}",
            bytes.len()
        ));
    }
    Ok(())
}

/// Checks a signed-note verifier key `name+hex8+base64(alg || key)`: the name
/// must be `expected_name`, the algorithm Ed25519 (1), and the key id the
/// first four bytes of SHA-256(name || "\n" || alg || key).
pub fn check_note_verifier_key(key: &str, expected_name: &str) -> Result<(), String> {
    let mut parts = key.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "expected a signed-note verifier key \"name+hex8+base64\", saw {:?}",
            truncate(key)
        ));
    };
    if name != expected_name {
        return Err(format!(
            "the key's name {name:?} differs from the database name {expected_name:?}"
        ));
    }
    if id.len() != 8 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "expected an 8-digit hex key id after the name, saw {id:?}"
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the key part is not base64 ({e})"))?;
    if raw.len() != 33 || raw[0] != 1 {
        return Err(format!(
            "expected an Ed25519 key (algorithm byte 1 and 32 key bytes), saw {} bytes{}",
            raw.len(),
            raw.first()
                .map(|a| format!(" with algorithm byte {a}"))
                .unwrap_or_default()
        ));
    }
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(&raw);
    let want = hex::encode(&h.finalize()[..4]);
    if !want.eq_ignore_ascii_case(id) {
        return Err(format!(
            "key id {id} does not match the key (expected {want}): the key is mistyped"
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
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

    const GO_KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "t.toml", Path::new("."))
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded().unwrap();
        assert!(c.upstreams.iter().any(|u| u.protocol == Protocol::Gomod));
    }

    #[test]
    fn accepts_the_real_sum_golang_org_key() {
        check_note_verifier_key(GO_KEY, "sum.golang.org").unwrap();
    }

    #[test]
    fn refuses_a_note_key_whose_id_does_not_match() {
        let bad = GO_KEY.replace("033de0ae", "033de0af");
        let e = check_note_verifier_key(&bad, "sum.golang.org").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }

    fn warg_upstream(extra: &str) -> String {
        format!(
            "[[upstream]]\nname = \"w\"\nprotocol = \"warg\"\nurl = \"https://w.example\"\noperator_key = \"ecdsa-p256:A2sX0fLhLEJH+Lzm5WOkQPJ3A32BLeszoPShOUXYmMKW\"\ndefault = true\n{extra}\n"
        )
    }

    #[test]
    fn forwarding_publishes_is_refused_where_clients_authenticate_with_bulwark_tokens() {
        let text = format!(
            "[server]\ntokens = [\"a-long-enough-test-token\"]\n\n{}",
            warg_upstream("publish = \"forward\"")
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "upstream[0].publish", "{e}");
        assert!(e.message.contains("leak"), "{e}");
        let text = format!(
            "[server]\ntokens = [\"a-long-enough-test-token\"]\n\n{}",
            warg_upstream("")
        );
        parse(&text).unwrap();
    }

    #[test]
    fn warg_publish_is_off_unless_forward_and_only_on_warg() {
        let c = parse(&warg_upstream("")).unwrap();
        assert_eq!(c.upstreams[0].publish, WargPublish::Off);
        let c = parse(&warg_upstream("publish = \"forward\"")).unwrap();
        assert_eq!(c.upstreams[0].publish, WargPublish::Forward);
        let e = parse(&warg_upstream("publish = \"yes\"")).unwrap_err();
        assert!(e.message.contains("yes"), "{e}");
        let go = format!(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\npublish = \"forward\"\n"
        );
        let e = parse(&go).unwrap_err();
        assert_eq!(e.key, "upstream[0].publish", "{e}");
    }

    #[test]
    fn warg_checkpoint_reuse_defaults_and_is_bounded() {
        let c = parse(&warg_upstream("")).unwrap();
        assert_eq!(c.upstreams[0].checkpoint_reuse, Duration::from_secs(2));
        let c = parse(&warg_upstream("checkpoint_reuse = \"0s\"")).unwrap();
        assert_eq!(c.upstreams[0].checkpoint_reuse, Duration::ZERO);
        let e = parse(&warg_upstream("checkpoint_reuse = \"5m\"")).unwrap_err();
        assert_eq!(e.key, "upstream[0].checkpoint_reuse", "{e}");
    }

    #[test]
    fn refuses_a_warg_private_key_in_place_of_the_public_key() {
        let e =
            check_warg_key("ecdsa-p256:I+UlDo0HxyBBFeelhPPWmD+LnklOpqZDkrFP5VduASk=").unwrap_err();
        assert!(e.contains("private key"), "{e}");
    }

    #[test]
    fn unknown_key_names_section_and_field() {
        let e = parse("[server]\nlisten = \"127.0.0.1:0\"\nlissten = 1\n").unwrap_err();
        assert_eq!(e.file, "t.toml");
        assert_eq!(e.key, "server");
        assert!(e.message.contains("lissten"), "{e}");
    }

    #[test]
    fn type_error_in_inline_table_names_the_key_path() {
        let text = format!(
            "[[upstream]]\nname = \"a\"\nprotocol = \"gomod\"\nurl = \"https://x\"\nnamespaces = [\"*\"]\nsumdb = {{ name = \"sum.golang.org\", key = \"{GO_KEY}\" }}\n\n[[upstream]]\nname = \"b\"\nprotocol = \"gomod\"\nurl = \"https://y\"\nsumdb = {{ name = \"x\", key = 5 }}\n"
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "upstream[1].sumdb.key", "{e}");
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

    #[test]
    fn go_patterns_normalize() {
        assert_eq!(
            normalize_go_pattern("github.com/acme/*").unwrap(),
            "github.com/acme"
        );
        assert_eq!(
            normalize_go_pattern("github.com/acme").unwrap(),
            "github.com/acme"
        );
        assert_eq!(normalize_go_pattern("*").unwrap(), "*");
        assert!(normalize_go_pattern("github.com/*/x").is_err());
        assert!(normalize_go_pattern("github.com//x").is_err());
        assert!(normalize_go_pattern("*.acme.com").is_err());
    }

    #[test]
    fn warg_namespaces_are_kebab_case() {
        assert!(valid_warg_namespace("acme"));
        assert!(valid_warg_namespace("my-org2"));
        assert!(valid_warg_namespace("WASI"));
        assert!(!valid_warg_namespace("my_org"));
        assert!(!valid_warg_namespace("-x"));
        assert!(!valid_warg_namespace("1abc"));
        assert!(!valid_warg_namespace("a:b"));
    }
}
