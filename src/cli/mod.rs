//! Subcommands of the `bulwark` binary other than `serve` and
//! `check-config`: offline verification (`verify`), the operator's view
//! of trust state (`upstream`), the blob store check (`store`), and the
//! air gap (`sync`, `export`, `import`), which run
//! inside a running `serve` through its control socket (`control`).

pub mod airgap;
pub mod control;
pub mod mirror;
pub mod store;
pub mod upstream;
pub mod verify;
