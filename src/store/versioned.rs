//! The redb files bulwark keeps (`state.redb`, `index.redb`): opened in
//! multi-writer mode (the CLI may change them while `serve` runs) and
//! stamped with a schema version, so that a newer file is never read by
//! an older bulwark.

use std::path::Path;

use redb::{ReadableTable, TableDefinition};

/// "schema_version" → version.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a file could not be opened: the operation and what went wrong.
pub type OpenError = (&'static str, String);

/// Opens (creating if needed) the redb file at `path`, records
/// `schema_version` in a new file and refuses a file of another version;
/// `tables` then opens (creates) the caller's tables in the same write
/// transaction.
pub fn open(
    path: &Path,
    schema_version: u64,
    tables: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<redb::Database, OpenError> {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    let db = builder
        .create(path)
        .map_err(|e| ("open", format!("{}: {e}", path.display())))?;
    let txn = db
        .begin_write()
        .map_err(|e| ("begin write", e.to_string()))?;
    {
        let mut meta = txn
            .open_table(META)
            .map_err(|e| ("open table", e.to_string()))?;
        let version = meta
            .get("schema_version")
            .map_err(|e| ("read schema version", e.to_string()))?
            .map(|v| v.value());
        match version {
            None => {
                meta.insert("schema_version", schema_version)
                    .map_err(|e| ("write schema version", e.to_string()))?;
            }
            Some(v) if v == schema_version => {}
            Some(v) => {
                return Err((
                    "open",
                    format!(
                        "{}: schema version {v}, this bulwark reads {schema_version}",
                        path.display()
                    ),
                ))
            }
        }
        tables(&txn).map_err(|e| ("open table", e.to_string()))?;
    }
    txn.commit().map_err(|e| ("commit", e.to_string()))?;
    Ok(db)
}
