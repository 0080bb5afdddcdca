//! The air gap's library side: the lockfiles `bulwark sync` reads
//! ([`lockfile`]), the signed bundle manifest ([`manifest`]) and the
//! check of the C2SP inclusion proofs a bundle carries for Go modules
//! ([`goproof`]). The subcommands themselves (`sync`, `export`,
//! `import`) are in the binary (`src/cli/airgap.rs`); they drive the
//! protocol fronts and the ecosystems' pipelines in process, so nothing
//! here lets an artifact in: a lockfile only says what to fetch and which
//! hashes the project pinned (a pinned hash that differs from the
//! verified one is a refusal), a signed manifest says who made a bundle
//! and that its members arrived as they left, and a tlog-proof that does
//! not prove what the bundle says keeps a module out.

pub mod goproof;
pub mod lockfile;
pub mod manifest;
