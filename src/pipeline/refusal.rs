//! Why bulwark refuses to serve something, in one shape for every
//! ecosystem, and the one `Warning` header it sends with what it serves
//! while it cannot confirm it with the upstream.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::http::ApiError;
use crate::store::{IndexError, StoreError};
use crate::upstream::{StatusClass, UpstreamError};
use crate::verify::trust::{TrustError, Verified, MAX_CLOCK_SKEW};

/// A refusal: which upstream, which check, what was expected and what was
/// seen, and the HTTP status a client gets. Fronts render it in their
/// protocol's error shape; `message` is a full sentence fit for clients and
/// logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The configured upstream name.
    pub upstream: String,
    /// A short stable name of the check (metrics label, JSON `check`).
    pub check: &'static str,
    /// The status for the client.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
    /// What the check expected, where it has one.
    pub expected: Option<String>,
    /// What it saw instead.
    pub seen: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// A refusal with no expected/seen pair.
    pub fn new(
        upstream: impl Into<String>,
        check: &'static str,
        status: StatusCode,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            upstream: upstream.into(),
            check,
            status,
            message: message.into(),
            expected: None,
            seen: None,
        }
    }

    /// A 502: the upstream's answer failed `check`.
    pub fn bad_answer(
        upstream: impl Into<String>,
        check: &'static str,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal::new(upstream, check, StatusCode::BAD_GATEWAY, message)
    }

    /// With what the check expected and what it saw.
    pub fn expected_seen(mut self, expected: impl Into<String>, seen: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.seen = Some(seen.into());
        self
    }

    /// Whether the upstream could not be reached (see
    /// [`UpstreamError::is_unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        self.check == CHECK_UNREACHABLE || self.check == CHECK_OFFLINE
    }

    /// Whether the upstream said the thing does not exist (404 or 410).
    pub fn is_not_found(&self) -> bool {
        self.check == CHECK_UPSTREAM_STATUS
            && matches!(self.status, StatusCode::NOT_FOUND | StatusCode::GONE)
    }

    /// The trust state refused (502), or could not be read (503: never
    /// serve on a read error).
    pub fn from_trust(e: &TrustError) -> Refusal {
        let upstream = trust_upstream(e);
        let status = match e {
            TrustError::Storage { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        let mut r = Refusal::new(upstream, e.check(), status, e.to_string());
        if let Some((expected, seen)) = trust_expected_seen(e) {
            r = r.expected_seen(expected, seen);
        }
        r
    }

    /// The upstream failed: an answer of 4xx or 5xx keeps its status (the
    /// body is bulwark's own), a timeout is 504, anything else 502.
    pub fn from_upstream(e: &UpstreamError) -> Refusal {
        let (check, status) = match e {
            UpstreamError::Status { code, .. } => (
                CHECK_UPSTREAM_STATUS,
                StatusCode::from_u16(*code)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY),
            ),
            UpstreamError::Offline { .. } => (CHECK_OFFLINE, StatusCode::SERVICE_UNAVAILABLE),
            e if e.is_timeout() => (CHECK_UNREACHABLE, StatusCode::GATEWAY_TIMEOUT),
            e if e.is_unreachable() => (CHECK_UNREACHABLE, StatusCode::BAD_GATEWAY),
            UpstreamError::Tls { .. } => ("tls", StatusCode::BAD_GATEWAY),
            UpstreamError::TooLarge { .. } => ("size", StatusCode::BAD_GATEWAY),
            _ => ("upstream", StatusCode::BAD_GATEWAY),
        };
        let r = Refusal::new(e.upstream(), check, status, e.to_string());
        match e {
            UpstreamError::Status { code, .. } => {
                r.expected_seen("status 200", format!("status {code}"))
            }
            _ => r,
        }
    }

    /// The one status rule for an upstream answer that takes the verified
    /// path: `Ok` for exactly `expected`; a 4xx/5xx keeps its status; any
    /// other status (203, 206, 3xx...) is refused with 502.
    pub fn status_rule(
        upstream: &str,
        url: &str,
        status: StatusCode,
        expected: StatusCode,
    ) -> Result<(), Refusal> {
        match StatusClass::of(status, expected) {
            StatusClass::Success => Ok(()),
            StatusClass::Failure(code) => Err(Refusal::from_upstream(&UpstreamError::Status {
                upstream: upstream.to_string(),
                url: url.to_string(),
                code: code.as_u16(),
            })),
            StatusClass::Unexpected(code) => Err(Refusal::bad_answer(
                upstream,
                CHECK_UPSTREAM_STATUS,
                format!(
                    "upstream {upstream}: status: {url} answered {}; only {} is accepted",
                    code.as_u16(),
                    expected.as_u16()
                ),
            )
            .expected_seen(
                format!("status {}", expected.as_u16()),
                format!("status {}", code.as_u16()),
            )),
        }
    }

    /// bulwark could not read or write its blob store: 503, or 502 when
    /// the bytes were the upstream's fault (wrong digest, too large).
    pub fn from_store(upstream: &str, e: &StoreError) -> Refusal {
        match e {
            StoreError::DigestMismatch { expected, seen } => {
                Refusal::bad_answer(upstream, CHECK_DIGEST, format!("upstream {upstream}: {e}"))
                    .expected_seen(expected.to_string(), seen.to_string())
            }
            StoreError::TooLarge { limit, seen, .. } => {
                Refusal::bad_answer(upstream, "size", format!("upstream {upstream}: {e}"))
                    .expected_seen(format!("at most {limit} bytes"), format!("{seen} bytes"))
            }
            StoreError::Body { source, .. } => {
                // The upstream's body broke off (or went over its cap).
                Refusal::bad_answer(upstream, "upstream", format!("upstream {upstream}: {e}"))
                    .expected_seen("the whole body", source.to_string())
            }
            _ => Refusal::new(
                upstream,
                "store",
                StatusCode::SERVICE_UNAVAILABLE,
                format!("upstream {upstream}: {e}"),
            ),
        }
    }

    /// bulwark could not read or write its artifact index: 503.
    pub fn from_index(upstream: &str, e: &IndexError) -> Refusal {
        Refusal::new(
            upstream,
            "index",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("upstream {upstream}: {e}"),
        )
    }

    /// The JSON error body (`{"status","message","upstream","check",
    /// "expected","seen"}`) for fronts whose protocol has no error shape
    /// of its own.
    pub fn api_error(&self) -> ApiError {
        let e = ApiError::new(self.status, self.message.clone()).upstream(&self.upstream);
        if self.is_not_found() {
            return e;
        }
        e.check(
            self.check,
            self.expected.clone().unwrap_or_default(),
            self.seen.clone().unwrap_or_default(),
        )
    }
}

impl From<TrustError> for Refusal {
    fn from(e: TrustError) -> Refusal {
        Refusal::from_trust(&e)
    }
}

impl From<UpstreamError> for Refusal {
    fn from(e: UpstreamError) -> Refusal {
        Refusal::from_upstream(&e)
    }
}

/// The check name of an upstream that could not be reached.
pub const CHECK_UNREACHABLE: &str = "unreachable";
/// The check name of what offline mode (`[server] offline = true`) cannot
/// serve: nothing verified answers and no upstream is asked.
pub const CHECK_OFFLINE: &str = "offline";
/// The check name of an upstream answer with another status than the one
/// the verified path takes.
pub const CHECK_UPSTREAM_STATUS: &str = "upstream-status";
/// The check name of bytes whose digest is not the one a verified record
/// names.
pub const CHECK_DIGEST: &str = "digest";

/// The `Warning` header value (RFC 7234 section 5.5, code 110) sent with
/// what bulwark serves from what it verified earlier while it cannot
/// confirm it with the upstream; `detail` says why (e.g. "unreachable").
pub fn stale_warning(upstream: &str, detail: impl fmt::Display) -> String {
    format!("110 bulwark \"Response is Stale: upstream {upstream} {detail}\"")
}

/// The offline rule, applied by every front to what it serves: with
/// `[server] offline = true` nothing is confirmed with an upstream, so
/// every answer carries the stale `Warning`: the one it has already (a
/// stale or unreachable state), else one saying the mirror is offline.
/// Online, `warning` is returned as it is. (What offline mode cannot
/// serve is refused with check [`CHECK_OFFLINE`]: the upstream client is
/// never asked.)
pub fn offline_warning(offline: bool, upstream: &str, warning: Option<String>) -> Option<String> {
    match warning {
        None if offline => Some(stale_warning(upstream, "offline")),
        w => w,
    }
}

/// The `Warning` for a stale verified state, `None` while it is fresh.
pub fn verified_warning(v: &Verified) -> Option<String> {
    v.stale.then(|| {
        stale_warning(
            &v.upstream,
            format_args!(
                "last verified at size {} {} ago",
                v.checkpoint.size,
                humantime::format_duration(Duration::from_secs(v.age.as_secs()))
            ),
        )
    })
}

/// The `Warning` for what is served from a verified state because the
/// upstream cannot be reached: the stale warning if it is stale, else one
/// that says the upstream is unreachable.
pub fn unreachable_warning(v: &Verified) -> String {
    verified_warning(v).unwrap_or_else(|| {
        stale_warning(
            &v.upstream,
            format_args!("unreachable; last verified at size {}", v.checkpoint.size),
        )
    })
}

fn trust_upstream(e: &TrustError) -> String {
    match e {
        TrustError::Quarantined { upstream, .. }
        | TrustError::Fork { upstream, .. }
        | TrustError::Inconsistent { upstream, .. }
        | TrustError::OriginChanged { upstream, .. }
        | TrustError::Rewind { upstream, .. }
        | TrustError::StaleBase { upstream, .. }
        | TrustError::Time { upstream, .. }
        | TrustError::Stale { upstream, .. }
        | TrustError::NoCheckpoint { upstream }
        | TrustError::UnknownUpstream { upstream }
        | TrustError::Input { upstream, .. } => upstream.clone(),
        TrustError::Storage { .. } => String::new(),
    }
}

/// (expected, seen) of a trust-state refusal, where it has them.
fn trust_expected_seen(e: &TrustError) -> Option<(String, String)> {
    match e {
        TrustError::Fork { expected, seen, .. } => Some((expected.to_string(), seen.to_string())),
        TrustError::Rewind { expected, seen, .. } => {
            Some((format!("size >= {expected}"), format!("size {seen}")))
        }
        TrustError::StaleBase { expected, seen, .. } => Some((
            format!("a proof from size {expected}"),
            format!("a proof from size {seen}"),
        )),
        TrustError::Inconsistent {
            old_size,
            old_root,
            new_size,
            new_root,
            error,
            ..
        } => Some((
            format!("tree {new_size} ({new_root}) extends accepted tree {old_size} ({old_root})"),
            format!("consistency proof: {error}"),
        )),
        TrustError::OriginChanged { expected, seen, .. } => Some((expected.clone(), seen.clone())),
        TrustError::Stale {
            size, age, max_age, ..
        } => Some((
            format!(
                "a tree at most {} old",
                humantime::format_duration(*max_age)
            ),
            format!(
                "tree {size} fresh since {} ago",
                humantime::format_duration(Duration::from_secs(age.as_secs()))
            ),
        )),
        TrustError::Time { detail, .. } => Some((
            format!(
                "a signed time at most {} ahead and not before the accepted one's",
                humantime::format_duration(MAX_CLOCK_SKEW)
            ),
            detail.to_string(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_4xx_keeps_its_status_and_other_statuses_are_refused() {
        let r =
            Refusal::status_rule("up", "/x", StatusCode::NOT_FOUND, StatusCode::OK).unwrap_err();
        assert_eq!(
            (r.status, r.check, r.is_not_found()),
            (StatusCode::NOT_FOUND, CHECK_UPSTREAM_STATUS, true)
        );
        let r = Refusal::status_rule("up", "/x", StatusCode::PARTIAL_CONTENT, StatusCode::OK)
            .unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert_eq!(r.seen.as_deref(), Some("status 206"));
        assert!(Refusal::status_rule("up", "/x", StatusCode::OK, StatusCode::OK).is_ok());
    }

    #[test]
    fn only_failures_to_reach_the_upstream_are_unreachable() {
        let connect = UpstreamError::Connect {
            upstream: "up".into(),
            url: "http://x/".into(),
            reason: "refused".into(),
        };
        assert!(Refusal::from_upstream(&connect).is_unreachable());
        let tls = UpstreamError::Tls {
            upstream: "up".into(),
            url: "https://x/".into(),
            reason: "bad certificate".into(),
        };
        let r = Refusal::from_upstream(&tls);
        assert!(!r.is_unreachable());
        assert_eq!((r.check, r.upstream.as_str()), ("tls", "up"));
    }

    #[test]
    fn offline_everything_served_carries_a_warning_and_online_nothing_changes() {
        let stale = stale_warning("up", "unreachable");
        assert_eq!(offline_warning(false, "up", None), None);
        assert_eq!(
            offline_warning(true, "up", None),
            Some(stale_warning("up", "offline"))
        );
        assert_eq!(
            offline_warning(true, "up", Some(stale.clone())),
            Some(stale.clone())
        );
        assert_eq!(
            offline_warning(false, "up", Some(stale.clone())),
            Some(stale)
        );
    }

    #[test]
    fn the_warning_names_the_upstream_and_why() {
        assert_eq!(
            stale_warning("acme", "unreachable"),
            "110 bulwark \"Response is Stale: upstream acme unreachable\""
        );
    }
}
