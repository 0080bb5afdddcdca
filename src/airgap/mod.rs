//! The air gap's library side: the lockfiles `bulwark sync` reads
//! ([`lockfile`]). The subcommands themselves (`sync`, `export`,
//! `import`) are in the binary (`src/cli/airgap.rs`); they drive the
//! protocol fronts and the ecosystems' pipelines in process, so nothing
//! here verifies anything: a lockfile only says what to fetch and which
//! hashes the project pinned, and a pinned hash that differs from the
//! verified one is a refusal.

pub mod lockfile;
