//! Errors of bulwark's upstream HTTP client.
//!
//! Every variant names the upstream (its configured name) and, where a
//! request was made, the full URL, so a log line or a refusal sent to a client
//! says which registry failed and how. The server layer maps them to HTTP
//! statuses with [`UpstreamError::http_status`]: 504 for timeouts, 404 for an
//! upstream 404, 502 for the rest.
//!
//! Errors are `Clone` because coalesced requests share one outcome.

use std::time::Duration;

/// Why a request to an upstream registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The client could not be built from its options.
    #[error("upstream {upstream}: bad configuration: {reason}")]
    Config { upstream: String, reason: String },

    /// The path given by the caller does not make a valid URL under the
    /// upstream's base URL (it must start with `/`).
    #[error("upstream {upstream}: invalid request path {path:?}: {reason}")]
    InvalidRequest {
        upstream: String,
        path: String,
        reason: String,
    },

    /// The upstream's host name did not resolve.
    #[error("upstream {upstream}: {url}: DNS lookup of {host} failed: {reason}")]
    Dns {
        upstream: String,
        url: String,
        host: String,
        reason: String,
    },

    /// No TCP connection could be opened.
    #[error("upstream {upstream}: {url}: cannot connect: {reason}")]
    Connect {
        upstream: String,
        url: String,
        reason: String,
    },

    /// The TLS handshake failed (untrusted or wrong certificate, protocol
    /// error).
    #[error("upstream {upstream}: {url}: TLS failed: {reason}")]
    Tls {
        upstream: String,
        url: String,
        reason: String,
    },

    /// Connecting, or the whole request (headers and body), took longer
    /// than allowed.
    #[error("upstream {upstream}: {url}: {phase} timed out after {after:?}")]
    Timeout {
        upstream: String,
        url: String,
        phase: TimeoutPhase,
        after: Duration,
    },

    /// The response body is larger than the configured cap; reading stopped
    /// there and the connection was dropped.
    #[error("upstream {upstream}: {url}: response body exceeds the limit of {limit} bytes{}",
        match .declared { Some(n) => format!(" (Content-Length says {n})"), None => String::new() })]
    TooLarge {
        upstream: String,
        url: String,
        limit: u64,
        /// The Content-Length the upstream announced, if it did.
        declared: Option<u64>,
    },

    /// The upstream answered with a status the caller does not accept
    /// (made by [`super::UpstreamResponse::error_for_status`]).
    #[error("upstream {upstream}: {url}: answered HTTP {code}")]
    Status {
        upstream: String,
        url: String,
        code: u16,
    },

    /// Recent requests to this upstream kept failing, so the circuit
    /// breaker refuses to ask it again until its cooldown ends.
    #[error("upstream {upstream}: {url}: not asked: the last {failures} requests to it failed; next try in {retry_in:?}")]
    CircuitOpen {
        upstream: String,
        url: String,
        failures: u32,
        retry_in: Duration,
    },

    /// Not asked: the mirror runs with `[server] offline = true` and
    /// contacts no upstream.
    #[error(
        "upstream {upstream}: {url}: not asked: the mirror is offline ([server] offline = true)"
    )]
    Offline { upstream: String, url: String },

    /// The HTTP exchange broke (connection reset, malformed response).
    #[error("upstream {upstream}: {url}: HTTP exchange failed: {reason}")]
    Protocol {
        upstream: String,
        url: String,
        reason: String,
    },
}

/// Which deadline a [`UpstreamError::Timeout`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Resolving the name, opening TCP and the TLS handshake.
    Connect,
    /// The request, from sending it to the last byte of the body.
    Request,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Connect => "connecting",
            TimeoutPhase::Request => "the request",
        })
    }
}

impl UpstreamError {
    /// The configured name of the upstream this error is about.
    pub fn upstream(&self) -> &str {
        match self {
            UpstreamError::Config { upstream, .. }
            | UpstreamError::InvalidRequest { upstream, .. }
            | UpstreamError::Dns { upstream, .. }
            | UpstreamError::Connect { upstream, .. }
            | UpstreamError::Tls { upstream, .. }
            | UpstreamError::Timeout { upstream, .. }
            | UpstreamError::TooLarge { upstream, .. }
            | UpstreamError::Status { upstream, .. }
            | UpstreamError::CircuitOpen { upstream, .. }
            | UpstreamError::Offline { upstream, .. }
            | UpstreamError::Protocol { upstream, .. } => upstream,
        }
    }

    /// Whether the upstream could not be reached: name resolution,
    /// connecting, a timeout, an open circuit breaker, or a broken
    /// exchange. The one definition of "unreachable": only after such a
    /// failure may bulwark serve what it verified earlier (offline, with a
    /// `Warning`). A TLS failure is not one (a wrong certificate may be an
    /// attacker's), nor is any answer the upstream gave (a status, a body
    /// over its cap). Offline mode is one (nothing is asked).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            UpstreamError::Dns { .. }
                | UpstreamError::Connect { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::CircuitOpen { .. }
                | UpstreamError::Offline { .. }
                | UpstreamError::Protocol { .. }
        )
    }

    /// Whether it is a timeout (the server answers those with 504).
    pub fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::Timeout { .. })
    }

    /// The status bulwark should answer its own client with: 504 for a
    /// timeout, 404 for an upstream 404, 502 for every other failure.
    pub fn http_status(&self) -> u16 {
        match self {
            UpstreamError::Timeout { .. } => 504,
            UpstreamError::Status { code: 404, .. } => 404,
            _ => 502,
        }
    }

    /// Whether this failure says the upstream is unwell (for the circuit
    /// breaker): it could not be reached, timed out, broke the exchange or
    /// failed TLS. A too-large body or a bad request path says nothing about
    /// its health.
    pub(crate) fn counts_against_upstream(&self) -> bool {
        matches!(
            self,
            UpstreamError::Dns { .. }
                | UpstreamError::Connect { .. }
                | UpstreamError::Tls { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Protocol { .. }
        )
    }

    /// Whether an idempotent request may be tried again after this error:
    /// connection failures, timeouts and broken exchanges, but not TLS
    /// failures (a wrong certificate stays wrong), size-cap violations or
    /// bad requests.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            UpstreamError::Dns { .. }
                | UpstreamError::Connect { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Protocol { .. }
        )
    }
}
