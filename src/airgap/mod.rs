//! The air gap's library side: the signed bundle manifest
//! ([`manifest`]). The subcommands themselves (`sync`, `export`,
//! `import`) are in the binary (`src/cli/airgap.rs`).

pub mod manifest;
