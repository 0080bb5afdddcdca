//! The verify layer: decides what bulwark may believe about each upstream.
//!
//! - [`trust`]: the persisted trust state per upstream (accepted checkpoint
//!   history, evidence of misbehaviour, quarantine, freshness). It is the
//!   only code that writes that state. The protocol verifiers call it after
//!   they have checked a checkpoint's signature against the pinned key; the
//!   CLI calls it for `bulwark upstream list` and `bulwark upstream clear`.
//! - [`ledger`]: never downgrade: the publishers verified per package.

pub mod ledger;
pub mod trust;

pub use trust::{
    Accepted, Advance, ClearMode, Cleared, ConsistencyProof, Evidence, EvidenceKind, EvidenceNote,
    Quarantine, Status, TrustError, TrustState, UpstreamSummary, Verified,
};
