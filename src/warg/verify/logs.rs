//! Validation of Warg log records: the operator log and package logs, in
//! registry order, with the reference validator (`warg-protocol`'s
//! `operator::LogState` / `package::LogState`): each record signed by a key
//! the log grants, `prev` naming the previous record, timestamps not going
//! back, the init record first; release and yank rules for packages.
//!
//! States are incremental (validate a page of records, then the next) and
//! transactional (a refused batch leaves the state as it was). Called by the
//! Warg front on every page of `POST /v1/fetch/logs` it receives, before it
//! proves the log heads included ([`super::verify_inclusion`]) and before it
//! serves content a release names.

use super::error::{printable, WargVerifyError};
use crate::warg::wire::{
    self, LogId, PackageName, PublishedProtoEnvelopeBody, PublishedRecord, RecordId, RegistryIndex,
};
use std::fmt::Display;
use warg_crypto::hash::{AnyHash, Sha256};
use warg_crypto::signing::KeyID;
use warg_protocol::operator::{self, NamespaceState};
use warg_protocol::package;
use warg_protocol::{ProtoEnvelope, PublishedProtoEnvelope, Validator, Version};

/// The most records one log state holds (operator or package). Far above
/// any real log; a bound on what a hostile upstream can make bulwark keep.
pub const MAX_LOG_RECORDS: usize = 1 << 20;

/// A leaf of the registry log: the record `record_id` of log `log_id`,
/// published at `registry_index`. Log inclusion proves the leaf at that
/// index; map inclusion proves `record_id` is the log's head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafRef {
    pub registry_index: RegistryIndex,
    pub log_id: LogId,
    pub record_id: RecordId,
}

impl LeafRef {
    pub(super) fn describe(&self) -> String {
        format!(
            "registry index {}, log {}, record {}",
            self.registry_index, self.log_id, self.record_id
        )
    }
}

/// A validated record: where it sits in the registry log and its ID (the
/// leaf `(log ID, record ID)` at `registry_index`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRecord {
    pub registry_index: RegistryIndex,
    pub record_id: RecordId,
}

/// The validated state of a registry's operator log.
#[derive(Clone, Debug, Default)]
pub struct OperatorState {
    state: operator::LogState,
    records: Vec<VerifiedRecord>,
}

impl OperatorState {
    /// An empty operator log (no record validated yet).
    pub fn new() -> OperatorState {
        OperatorState::default()
    }

    /// Validates `records`, the next records of the operator log in order
    /// (the first call starts with the init record). On error nothing of
    /// the batch is kept.
    pub fn validate(
        &mut self,
        records: &[PublishedProtoEnvelopeBody],
    ) -> Result<(), WargVerifyError> {
        let (state, added) = validate_batch(
            "operator",
            &self.state,
            self.records.last(),
            self.records.len(),
            records.iter().map(|r| (r, None)),
            |e: &ProtoEnvelope<operator::OperatorRecord>| RecordId::operator_record::<Sha256>(e),
        )?;
        self.state = state;
        self.records.extend(added);
        Ok(())
    }

    /// [`Self::validate`] for records as `POST /v1/fetch/logs` returns them,
    /// also checking each fetch token is the record's ID.
    pub fn validate_published(
        &mut self,
        records: &[PublishedRecord],
    ) -> Result<(), WargVerifyError> {
        let (state, added) = validate_batch(
            "operator",
            &self.state,
            self.records.last(),
            self.records.len(),
            records
                .iter()
                .map(|r| (&r.envelope, Some(r.fetch_token.as_str()))),
            |e: &ProtoEnvelope<operator::OperatorRecord>| RecordId::operator_record::<Sha256>(e),
        )?;
        self.state = state;
        self.records.extend(added);
        Ok(())
    }

    /// The validated records, in registry order.
    pub fn records(&self) -> &[VerifiedRecord] {
        &self.records
    }

    /// The leaf of the operator log's head (its last validated record), the
    /// one a map proof proves; `None` before any record.
    pub fn head_leaf(&self) -> Option<LeafRef> {
        self.records.last().map(|r| LeafRef {
            registry_index: r.registry_index,
            log_id: wire::operator_log_id(),
            record_id: r.record_id.clone(),
        })
    }

    /// Whether the log grants `key_id` the `commit` permission (may sign
    /// checkpoints).
    pub fn key_can_commit(&self, key_id: &KeyID) -> bool {
        !self.records.is_empty() && self.state.key_has_permission_to_sign_checkpoints(key_id)
    }

    /// What the log says about `namespace`: defined here, imported from
    /// another registry, or `None`.
    pub fn namespace_state(&self, namespace: &str) -> Option<&NamespaceState> {
        self.state.namespace_state(namespace)
    }

    /// The reference validator's state.
    pub fn log_state(&self) -> &operator::LogState {
        &self.state
    }
}

/// A release as a validated package log leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRelease {
    pub version: Version,
    /// The content digest the release names; `None` once yanked.
    pub content: Option<AnyHash>,
    /// The record that released it, and its registry index.
    pub record: VerifiedRecord,
}

/// The validated state of one package log.
#[derive(Clone, Debug)]
pub struct PackageState {
    log_id: LogId,
    state: package::LogState,
    records: Vec<VerifiedRecord>,
}

impl PackageState {
    /// An empty state for the package log `log_id`.
    pub fn new(log_id: LogId) -> PackageState {
        PackageState {
            log_id,
            state: package::LogState::default(),
            records: Vec::new(),
        }
    }

    /// An empty state for the package `name`.
    pub fn for_name(name: &PackageName) -> PackageState {
        PackageState::new(wire::package_log_id(name))
    }

    /// The package's log ID.
    pub fn log_id(&self) -> &LogId {
        &self.log_id
    }

    /// Validates `records`, the next records of this package log in order.
    /// On error nothing of the batch is kept.
    pub fn validate(
        &mut self,
        records: &[PublishedProtoEnvelopeBody],
    ) -> Result<(), WargVerifyError> {
        let (state, added) = validate_batch(
            "package",
            &self.state,
            self.records.last(),
            self.records.len(),
            records.iter().map(|r| (r, None)),
            |e: &ProtoEnvelope<package::PackageRecord>| RecordId::package_record::<Sha256>(e),
        )?;
        self.state = state;
        self.records.extend(added);
        Ok(())
    }

    /// [`Self::validate`] for records as `POST /v1/fetch/logs` returns them,
    /// also checking each fetch token is the record's ID.
    pub fn validate_published(
        &mut self,
        records: &[PublishedRecord],
    ) -> Result<(), WargVerifyError> {
        let (state, added) = validate_batch(
            "package",
            &self.state,
            self.records.last(),
            self.records.len(),
            records
                .iter()
                .map(|r| (&r.envelope, Some(r.fetch_token.as_str()))),
            |e: &ProtoEnvelope<package::PackageRecord>| RecordId::package_record::<Sha256>(e),
        )?;
        self.state = state;
        self.records.extend(added);
        Ok(())
    }

    /// The validated records, in registry order.
    pub fn records(&self) -> &[VerifiedRecord] {
        &self.records
    }

    /// The leaf of the log's head (its last validated record); `None`
    /// before any record.
    pub fn head_leaf(&self) -> Option<LeafRef> {
        self.records.last().map(|r| LeafRef {
            registry_index: r.registry_index,
            log_id: self.log_id.clone(),
            record_id: r.record_id.clone(),
        })
    }

    /// Every release, in log order, yanked ones with `content: None`.
    pub fn releases(&self) -> Vec<VerifiedRelease> {
        self.state
            .releases()
            .filter_map(|r| self.verified_release(r))
            .collect()
    }

    /// The release of `version`, if the log has one.
    pub fn release(&self, version: &Version) -> Option<VerifiedRelease> {
        self.state
            .release(version)
            .and_then(|r| self.verified_release(r))
    }

    /// The (not yanked) release whose content is `digest`: what makes a
    /// content digest servable. `None` when no verified release names it.
    pub fn release_naming(&self, digest: &AnyHash) -> Option<VerifiedRelease> {
        self.state
            .releases()
            .find(|r| r.content() == Some(digest))
            .and_then(|r| self.verified_release(r))
    }

    /// The reference validator's state.
    pub fn log_state(&self) -> &package::LogState {
        &self.state
    }

    fn verified_release(&self, release: &package::Release) -> Option<VerifiedRelease> {
        let record = self
            .records
            .iter()
            .find(|r| r.record_id == release.record_id)?
            .clone();
        Some(VerifiedRelease {
            version: release.version.clone(),
            content: release.content().cloned(),
            record,
        })
    }
}

/// Validates a batch of records on a copy of `state`; returns the new state
/// and the records added, or the first refusal.
fn validate_batch<'a, V>(
    log: &'static str,
    state: &V,
    last: Option<&VerifiedRecord>,
    count: usize,
    records: impl ExactSizeIterator<Item = (&'a PublishedProtoEnvelopeBody, Option<&'a str>)>,
    record_id: impl Fn(&ProtoEnvelope<V::Record>) -> RecordId,
) -> Result<(V, Vec<VerifiedRecord>), WargVerifyError>
where
    V: Validator + Clone,
    V::Error: Display,
{
    let total = count.saturating_add(records.len());
    if total > MAX_LOG_RECORDS {
        return Err(WargVerifyError::TooManyRecords {
            log,
            limit: MAX_LOG_RECORDS,
            seen: total,
        });
    }
    let mut state = state.clone();
    let mut after = last.map(|r| r.registry_index);
    let mut added = Vec::with_capacity(records.len());
    for (offset, (body, token)) in records.enumerate() {
        let position = count + offset;
        let registry_index = body.registry_index;
        if let Some(after) = after {
            if registry_index <= after {
                return Err(WargVerifyError::RecordOrder {
                    log,
                    position,
                    after,
                    seen: registry_index,
                });
            }
        }
        let (next, id) = super::guarded("log record", || {
            let published: PublishedProtoEnvelope<V::Record> =
                body.clone()
                    .try_into()
                    .map_err(|e| WargVerifyError::RecordDecode {
                        log,
                        position,
                        registry_index,
                        detail: format!("{e:#}"),
                    })?;
            let envelope = published.envelope;
            let id = record_id(&envelope);
            if let Some(token) = token {
                if token != id.to_string() {
                    return Err(WargVerifyError::FetchToken {
                        log,
                        position,
                        expected: id.to_string(),
                        seen: printable(token),
                    });
                }
            }
            let next = std::mem::take(&mut state)
                .validate(&envelope)
                .map_err(|e| WargVerifyError::RecordInvalid {
                    log,
                    position,
                    registry_index,
                    record_id: id.to_string(),
                    detail: e.to_string(),
                })?;
            Ok((next, id))
        })?;
        state = next;
        after = Some(registry_index);
        added.push(VerifiedRecord {
            registry_index,
            record_id: id,
        });
    }
    Ok((state, added))
}
