//! The air gap's library side: the lockfiles `bulwark sync` reads
//! ([`lockfile`]) and the signed bundle manifest ([`manifest`]). The
//! subcommands themselves (`sync`, `export`, `import`) are in the binary
//! (`src/cli/airgap.rs`); they drive the protocol fronts and the
//! ecosystems' pipelines in process, so nothing here verifies an
//! artifact: a lockfile only says what to fetch and which hashes the
//! project pinned (a pinned hash that differs from the verified one is a
//! refusal), and a signed manifest says who made a bundle and that its
//! members arrived as they left.

pub mod lockfile;
pub mod manifest;
