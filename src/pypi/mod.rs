//! PyPI: the simple repository API (PEP 503 HTML, PEP 691 JSON) as the
//! real `pip` and `uv` speak it, and the PEP 740 provenance PyPI publishes
//! for attested files.
//!
//! So far the pure pieces:
//! - [`name`]: project names and their PEP 503 normal form;
//! - [`simple`]: index pages (the project list and project pages) parsed
//!   from either format into one checked model, and written back in
//!   either format with every file URL pointing at bulwark.
//!
//! The front, the file route (sha256 from the index, then the provenance
//! through the Sigstore core) and the policy build on these.

pub mod filename;
pub mod name;
pub mod provenance;
pub mod simple;
