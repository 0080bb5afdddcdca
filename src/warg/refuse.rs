//! Warg's refusals as the pipeline's [`Refusal`]: the check names of
//! `warg::verify` and `warg::checks` errors, and the one rule for upstream
//! statuses on every Warg exchange (with the upstream's own `message`
//! quoted, cut short). The front renders them in Warg's
//! `{"status","message"}` shape.

use http::StatusCode;

use crate::pipeline::refusal::Refusal;
use crate::upstream::UpstreamResponse;
use crate::warg::checks::CheckError;
use crate::warg::verify::WargVerifyError;
use crate::warg::wire;

/// Most characters of an upstream's own error message quoted back.
const QUOTED_MESSAGE: usize = 200;

/// The check name of a malformed upstream answer.
pub const CHECK_WIRE: &str = "wire";
/// The check name of an answer larger than bulwark validates.
pub const CHECK_SIZE: &str = "size";

/// A 502: the upstream's answer failed `check`.
pub fn refuse(up: &str, check: &'static str, detail: impl std::fmt::Display) -> Refusal {
    Refusal::bad_answer(up, check, format!("upstream {up}: {detail}"))
}

/// A malformed answer (a decoder's error).
pub fn malformed(up: &str, e: impl std::fmt::Display) -> Refusal {
    refuse(up, CHECK_WIRE, e)
}

/// A short name of the `warg::verify` check that failed.
pub fn verify_check(e: &WargVerifyError) -> &'static str {
    use WargVerifyError as E;
    match e {
        E::CheckpointKey { .. } => "operator-key",
        E::CheckpointSignature { .. } => "checkpoint-signature",
        E::NotCommitter { .. } => "commit-permission",
        E::TimestampRewind { .. } | E::Rewind { .. } => "rewind",
        E::ConsistencyLengths { .. } | E::ConsistencyRoot { .. } => "consistency",
        E::TooManyRecords { .. }
        | E::RecordOrder { .. }
        | E::FetchToken { .. }
        | E::RecordDecode { .. }
        | E::RecordInvalid { .. } => "log-validation",
        E::NothingToProve { .. }
        | E::ProofCount { .. }
        | E::ProofKind { .. }
        | E::ProofLength { .. }
        | E::IndexPastLog { .. }
        | E::ProofLeaf { .. }
        | E::ProofUnusable { .. }
        | E::MapPeers { .. }
        | E::RootMismatch { .. }
        | E::Bundle(_) => "inclusion",
        _ => "checkpoint",
    }
}

pub fn from_verify(up: &str, e: &WargVerifyError) -> Refusal {
    refuse(up, verify_check(e), e)
}

pub fn from_check(up: &str, e: &CheckError) -> Refusal {
    refuse(up, e.check(), e)
}

/// The one rule for upstream statuses on every Warg exchange: only
/// `expected` (200 on every read route) takes the verified path; an
/// upstream 4xx/5xx keeps its status (the upstream's `message`, if it sent
/// one, quoted and cut short); any other status is a 502 refusal.
pub fn expect_status(
    up: &str,
    what: &str,
    expected: StatusCode,
    resp: UpstreamResponse,
) -> Result<UpstreamResponse, Refusal> {
    match Refusal::status_rule(up, &resp.url, resp.status, expected) {
        Ok(()) => Ok(resp),
        Err(mut r) => {
            let quoted = upstream_message(&resp.body)
                .map(|m| format!(" (the upstream said: {m:?})"))
                .unwrap_or_default();
            r.message = format!("{} (to {what}){quoted}", r.message);
            Err(r)
        }
    }
}

/// [`expect_status`] with 200.
pub fn expect_ok(
    up: &str,
    what: &str,
    resp: UpstreamResponse,
) -> Result<UpstreamResponse, Refusal> {
    expect_status(up, what, StatusCode::OK, resp)
}

/// The printable `message` of an upstream's `{"status","message"}` body,
/// cut to [`QUOTED_MESSAGE`] characters.
fn upstream_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        message: String,
    }
    let m: M = wire::decode_json("upstream error", body, 64 * 1024).ok()?;
    let text: String = m
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(QUOTED_MESSAGE)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// bulwark's own memory could not be read (a lock poisoned by a panic):
/// refused, never served.
pub fn poisoned(up: &str) -> Refusal {
    Refusal::new(
        up,
        "internal",
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("upstream {up}: bulwark's memory of it is unusable (a lock was poisoned)"),
    )
}
