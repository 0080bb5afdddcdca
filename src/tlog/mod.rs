//! The transparency core: signed notes, checkpoints, RFC 9162 Merkle proofs,
//! tiles, witness policies and offline proof bundles.
//!
//! Everything here is pure and synchronous: no I/O, no async, no clock (the
//! caller passes the time where a check needs it). Every parser of untrusted
//! input checks lengths before it reads and returns a typed error; nothing
//! here panics on any input.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof;
pub mod tile;

pub use checkpoint::Checkpoint;
pub use merkle::Hash;
