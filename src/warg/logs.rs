//! Warg logs: fetched in full (paged, bounded), validated from their first
//! record with `warg::verify`, their head proven included (log and map) in
//! a verified checkpoint and every other record proven at its registry
//! index against a verified ledger; a package log's release digests then
//! go to the artifact index. The records a client's fetch-logs request
//! gets must be records of that validated log at their index. Package
//! names are learnt only when they hash to their log ID.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use indexmap::IndexMap;

use crate::pipeline::refusal::Refusal;
use crate::upstream::UpstreamRequest;
use crate::warg::checks::{CheckError, LogKind, ValidatedLog};
use crate::warg::memory::{AnswerKind, MAX_CACHED_LEAVES};
use crate::warg::refuse::{expect_ok, malformed, refuse, CHECK_SIZE};
use crate::warg::registry::{own, to_len, Registries, Registry, Served, MAX_JSON_ANSWER};
use crate::warg::verify::{
    self as wv, LeafRef, OperatorState, PackageState, VerifiedCheckpoint, WargVerifyError,
};
use crate::warg::wire::{
    self, FetchLogsRequest, FetchLogsResponse, FetchPackageNamesRequest, FetchPackageNamesResponse,
    InclusionRequest, InclusionResponse, LogId, PackageName, RegistryIndex,
};

/// Most records bulwark reads from one log to validate it.
const MAX_LOG_RECORDS: usize = 100_000;
/// Most bytes of `fetch/logs` answers bulwark reads for one log (all pages).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// A client's fetch-logs request, answered.
pub enum Logs {
    /// Every returned record checked (see [`Registries::fetch_logs`]).
    Verified(Served),
    /// The upstream has no such log (the client initialises a new package
    /// on this answer): a log the client asked about.
    Missing(LogId),
}

/// Validates a whole log with `warg::verify`, from its first record.
pub(crate) fn validate(
    kind: &LogKind,
    records: &[wire::PublishedRecord],
) -> Result<ValidatedLog, WargVerifyError> {
    let mut out = ValidatedLog::default();
    match kind {
        LogKind::Operator => {
            let mut s = OperatorState::new();
            s.validate_published(records)?;
            out.records = s.records().to_vec();
            out.operator = Some(s);
        }
        LogKind::Package(id) => {
            let mut s = PackageState::new(id.clone());
            s.validate_published(records)?;
            out.records = s.records().to_vec();
            out.releases = s
                .releases()
                .into_iter()
                .filter_map(|r| r.content.map(|c| c.to_string()))
                .collect();
        }
    }
    Ok(out)
}

fn record_id(kind: &LogKind, r: &wire::PublishedRecord) -> Result<wire::RecordId, CheckError> {
    use warg_crypto::hash::Sha256;
    use warg_protocol::{operator, package, PublishedProtoEnvelope};
    Ok(match kind {
        LogKind::Operator => {
            let env: PublishedProtoEnvelope<operator::OperatorRecord> =
                PublishedProtoEnvelope::try_from(r.envelope.clone())
                    .map_err(|e| CheckError::Log(format!("operator record: {e:#}")))?;
            wire::RecordId::operator_record::<Sha256>(&env.envelope)
        }
        LogKind::Package(_) => {
            let env: PublishedProtoEnvelope<package::PackageRecord> =
                PublishedProtoEnvelope::try_from(r.envelope.clone())
                    .map_err(|e| CheckError::Log(format!("package record: {e:#}")))?;
            wire::RecordId::package_record::<Sha256>(&env.envelope)
        }
    })
}

impl Registries {
    /// Every record of a log at length `len`, paged. `None`: the upstream
    /// has no such log.
    pub(crate) async fn fetch_records(
        &self,
        reg: &Registry,
        kind: &LogKind,
        len: u64,
    ) -> Result<Option<Vec<wire::PublishedRecord>>, Refusal> {
        let mut records = Vec::new();
        let mut token: Option<String> = None;
        let mut bytes: u64 = 0;
        loop {
            let mut packages = IndexMap::new();
            let operator = match kind {
                LogKind::Operator => token.clone().map(Into::into),
                LogKind::Package(id) => {
                    packages.insert(id.clone(), token.clone());
                    None
                }
            };
            let req = FetchLogsRequest {
                log_length: to_len(len),
                limit: Some(wire::MAX_FETCH_LIMIT),
                operator,
                packages: std::borrow::Cow::Owned(packages),
            };
            let mut request =
                UpstreamRequest::post_json_idempotent("/v1/fetch/logs", wire::encode_json(&req));
            // The operator log is bulwark's own business; a package log is
            // one a client named.
            if *kind == LogKind::Operator {
                request = own(request);
            }
            let resp = self.post_json(reg, request).await?;
            if resp.status == StatusCode::NOT_FOUND && matches!(kind, LogKind::Package(_)) {
                return Ok(None);
            }
            let what = format!("fetching the log {}", kind.log_id());
            let resp = expect_ok(&reg.name, &what, resp)?;
            bytes = bytes.saturating_add(resp.body.len() as u64);
            if bytes > MAX_LOG_BYTES {
                return Err(refuse(
                    &reg.name,
                    CHECK_SIZE,
                    format!(
                        "log {} is larger than the {MAX_LOG_BYTES} bytes bulwark validates",
                        kind.log_id()
                    ),
                ));
            }
            let mut body: FetchLogsResponse =
                wire::decode_json("fetch logs response", &resp.body, MAX_JSON_ANSWER)
                    .map_err(|e| malformed(&reg.name, e))?;
            let page = match kind {
                LogKind::Operator => std::mem::take(&mut body.operator),
                LogKind::Package(id) => body.packages.swap_remove(id).unwrap_or_default(),
            };
            let more = body.more && !page.is_empty();
            token = page.last().map(|r| r.fetch_token.clone()).or(token);
            records.extend(page);
            if records.len() > MAX_LOG_RECORDS {
                return Err(refuse(
                    &reg.name,
                    CHECK_SIZE,
                    format!(
                        "log {} has more than the {MAX_LOG_RECORDS} records bulwark validates",
                        kind.log_id()
                    ),
                ));
            }
            if !more {
                break;
            }
        }
        Ok(Some(records))
    }

    /// Proves a validated log's head included (log and map) in `vcp`.
    pub(crate) async fn prove_head(
        &self,
        reg: &Registry,
        vcp: &VerifiedCheckpoint,
        kind: &LogKind,
        log: &ValidatedLog,
    ) -> Result<(), Refusal> {
        let head = log
            .head()
            .cloned()
            .ok_or_else(|| refuse(&reg.name, "log-validation", "empty log"))?;
        let leaf = LeafRef {
            registry_index: head.registry_index,
            log_id: kind.log_id(),
            record_id: head.record_id.clone(),
        };
        let body = wire::encode_json(&InclusionRequest {
            log_length: vcp.log_length(),
            leafs: vec![head.registry_index],
        });
        let mut request = UpstreamRequest::post_json_idempotent("/v1/proof/inclusion", body);
        if *kind == LogKind::Operator {
            request = own(request);
        }
        let resp = self.post_json(reg, request).await?;
        let resp = expect_ok(&reg.name, "the inclusion proof", resp)?;
        let inc: InclusionResponse =
            wire::decode_json("inclusion response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| malformed(&reg.name, e))?;
        self.verified(reg, "inclusion", wv::verify_inclusion(vcp, &[leaf], &inc))
    }

    /// Proves every record of a validated log but its head (see
    /// `prove_head`) included in `vcp` at its registry index: leaf `i` of a
    /// verified ledger at least as long as `vcp`'s log must be the log ID
    /// and record ID of the record claiming registry index `i` (every
    /// accepted checkpoint extends the earlier ones, so an older length's
    /// leaves are a prefix of a newer verified ledger's).
    async fn prove_indexes(
        &self,
        reg: &Registry,
        epoch: u64,
        vcp: &VerifiedCheckpoint,
        kind: &LogKind,
        log: &ValidatedLog,
    ) -> Result<(), Refusal> {
        let Some((_head, rest)) = log.records.split_last() else {
            return Ok(());
        };
        if rest.is_empty() {
            return Ok(());
        }
        let len = vcp.log_length() as u64;
        let leaves = self.ledger_covering(reg, epoch, vcp).await?;
        let log_id = kind.log_id();
        for r in rest {
            let i = r.registry_index;
            let seen = if (i as u64) < len {
                leaves.get(i)
            } else {
                None
            };
            if seen.is_some_and(|l| l.log_id == log_id && l.record_id == r.record_id) {
                continue;
            }
            let seen = match seen {
                Some(l) => format!("leaf ({}, {})", l.log_id, l.record_id),
                None => "no such leaf".to_string(),
            };
            self.tally(reg, "inclusion", false);
            let expected = format!("leaf ({log_id}, {})", r.record_id);
            return Err(refuse(
                &reg.name,
                "inclusion",
                format!(
                    "record {} of log {log_id} claims registry index {i}; \
                     expected {expected} there in the verified ledger at log length {len}, \
                     seen {seen}",
                    r.record_id
                ),
            )
            .expected_seen(expected, seen));
        }
        self.tally(reg, "inclusion", true);
        Ok(())
    }

    /// A whole log at `vcp`'s length, validated, its head proven included
    /// and every other record proven at its index; a package log's release
    /// digests recorded in the artifact index. `None`: the upstream has no
    /// such log.
    pub(crate) async fn validated_log(
        &self,
        reg: &Registry,
        epoch: u64,
        kind: &LogKind,
        vcp: &VerifiedCheckpoint,
    ) -> Result<Option<Arc<ValidatedLog>>, Refusal> {
        let len = vcp.log_length() as u64;
        if let Some(l) = reg.memory()?.log(kind, len) {
            return Ok(Some(l));
        }
        let Some(records) = self.fetch_records(reg, kind, len).await? else {
            return Ok(None);
        };
        let log = self.verified(reg, "log-validation", validate(kind, &records))?;
        self.prove_head(reg, vcp, kind, &log).await?;
        self.prove_indexes(reg, epoch, vcp, kind, &log).await?;
        self.index_releases(reg, epoch, kind, len, &log).await?;
        let log = Arc::new(log);
        reg.memory()?
            .remember_log(epoch, kind.clone(), len, log.clone());
        Ok(Some(log))
    }

    /// A client's `POST /v1/fetch/logs` (its raw `body` and decoded
    /// `request`), forwarded; every returned record checked to be a record
    /// of the validated log at its registry index (see `check_returned`).
    /// While the upstream cannot be reached: the verified answer to the
    /// same request, if bulwark has one.
    pub async fn fetch_logs(
        &self,
        reg: &Registry,
        epoch: u64,
        body: Bytes,
        request: &FetchLogsRequest<'_>,
    ) -> Result<Logs, Refusal> {
        // The client chose this body: not a probe.
        let forwarded = UpstreamRequest::post_json_idempotent("/v1/fetch/logs", body.clone());
        let resp = match self.post_json(reg, forwarded).await {
            Ok(r) => r,
            Err(e) => {
                return self
                    .offline(reg, AnswerKind::Logs, &body, &e)
                    .map(Logs::Verified)
            }
        };
        if resp.status == StatusCode::NOT_FOUND {
            // The one upstream error body the client needs as is (a new
            // package is initialised on it): re-encoded by the front, and
            // only for a log the client asked about.
            if let Ok(wire::FetchError::LogNotFound(id)) =
                wire::decode_json("fetch logs error", &resp.body, 64 * 1024)
            {
                if request.packages.contains_key(&id) {
                    return Ok(Logs::Missing(id));
                }
            }
        }
        let resp = expect_ok(&reg.name, "the fetch-logs request", resp)?;
        let answer: FetchLogsResponse =
            wire::decode_json("fetch logs response", &resp.body, MAX_JSON_ANSWER)
                .map_err(|e| malformed(&reg.name, e))?;
        let cp = self
            .checkpoint_at(reg, epoch, request.log_length as u64)
            .await?;
        if !answer.operator.is_empty() {
            self.check_returned(reg, epoch, &LogKind::Operator, &answer.operator, &cp)
                .await?;
        }
        for (log_id, records) in &answer.packages {
            if records.is_empty() {
                continue;
            }
            self.check_returned(reg, epoch, &LogKind::Package(log_id.clone()), records, &cp)
                .await?;
        }
        reg.memory()?
            .remember_answer(epoch, AnswerKind::Logs, &body, &resp.body);
        Ok(Logs::Verified(Served {
            body: resp.body,
            warning: None,
        }))
    }

    /// Every returned record must be a record of the validated log, at its
    /// registry index (where `validated_log` proved it included in `cp`).
    async fn check_returned(
        &self,
        reg: &Registry,
        epoch: u64,
        kind: &LogKind,
        records: &[wire::PublishedRecord],
        cp: &VerifiedCheckpoint,
    ) -> Result<(), Refusal> {
        let log = self
            .validated_log(reg, epoch, kind, cp)
            .await?
            .ok_or_else(|| {
                refuse(
                    &reg.name,
                    "log-validation",
                    format!("log {} vanished", kind.log_id()),
                )
            })?;
        let ids: HashMap<RegistryIndex, &wire::RecordId> = log
            .records
            .iter()
            .map(|r| (r.registry_index, &r.record_id))
            .collect();
        let same = records.iter().try_for_each(|r| {
            let id = record_id(kind, r)?;
            if ids.get(&r.envelope.registry_index) == Some(&&id) {
                return Ok(());
            }
            Err(CheckError::Log(format!(
                "record {id} at registry index {} is not the validated record of log {} at that index",
                r.envelope.registry_index,
                kind.log_id()
            )))
        });
        self.checked(reg, "log-validation", same)
    }

    // ---- names ----

    /// Learns package names (each already checked to hash to its log ID).
    pub fn learn(&self, names: impl IntoIterator<Item = (LogId, PackageName)>) {
        if let Ok(mut m) = self.names.lock() {
            for (id, name) in names {
                if m.len() >= MAX_CACHED_LEAVES {
                    m.clear();
                }
                m.insert(id, name);
            }
        }
    }

    /// The name of a package log: learnt, else asked of every upstream
    /// that passes its gate (a name is trusted only if it hashes to the
    /// log ID).
    pub async fn name_of(&self, log_id: &LogId) -> Option<PackageName> {
        if let Some(n) = self.names.lock().ok()?.get(log_id) {
            return Some(n.clone());
        }
        let body = wire::encode_json(&FetchPackageNamesRequest {
            packages: std::borrow::Cow::Owned(vec![log_id.clone()]),
        });
        for reg in self.registries() {
            if self.gate(reg).await.is_err() {
                continue;
            }
            let request = UpstreamRequest::post_json_idempotent("/v1/fetch/names", body.clone());
            let Ok(resp) = self.post_json(reg, request).await else {
                continue;
            };
            if resp.status != StatusCode::OK {
                continue;
            }
            let Ok(r) = wire::decode_json::<FetchPackageNamesResponse>(
                "fetch names response",
                &resp.body,
                MAX_JSON_ANSWER,
            ) else {
                continue;
            };
            if let Some(Some(name)) = r.packages.get(log_id) {
                if &wire::package_log_id(name) == log_id {
                    self.learn([(log_id.clone(), name.clone())]);
                    return Some(name.clone());
                }
            }
        }
        None
    }

    /// A client's `POST /v1/fetch/names` (raw body), forwarded: a name is
    /// passed on only if it hashes to the log ID it answers.
    pub async fn fetch_names(
        &self,
        reg: &Registry,
        body: Bytes,
    ) -> Result<FetchPackageNamesResponse, Refusal> {
        let request = UpstreamRequest::post_json_idempotent("/v1/fetch/names", body);
        let resp = self.post_json(reg, request).await?;
        let resp = expect_ok(&reg.name, "the fetch-names request", resp)?;
        let r = wire::decode_json::<FetchPackageNamesResponse>(
            "fetch names response",
            &resp.body,
            MAX_JSON_ANSWER,
        )
        .map_err(|e| malformed(&reg.name, e))?;
        let mut names = Vec::new();
        for (id, n) in &r.packages {
            if let Some(n) = n {
                if &wire::package_log_id(n) != id {
                    self.tally(reg, "name", false);
                    return Err(refuse(
                        &reg.name,
                        "name",
                        format!("package name {n} does not hash to log {id}"),
                    )
                    .expected_seen(id.to_string(), wire::package_log_id(n).to_string()));
                }
                names.push((id.clone(), n.clone()));
            }
        }
        if !names.is_empty() {
            self.tally(reg, "name", true);
        }
        self.learn(names);
        Ok(r)
    }
}
