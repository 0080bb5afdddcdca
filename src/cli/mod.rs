//! Subcommands of the `bulwark` binary other than `serve` and
//! `check-config`: offline verification (`verify`), the operator's view
//! of trust state (`upstream`) and the blob store check (`store`).

pub mod store;
pub mod upstream;
pub mod verify;
