//! Subcommands of the `bulwark` binary other than `serve` and
//! `check-config`: offline verification (`verify`) and the operator's view
//! of trust state (`upstream`).

pub mod upstream;
pub mod verify;
