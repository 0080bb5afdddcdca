//! `bulwark store`: the operator's checks of the blob store.
//!
//! ```text
//! bulwark store verify [--config FILE]   re-hash every stored blob
//! ```
//!
//! Blobs are hashed once, while they are written, and served by streaming
//! the file; `verify` re-hashes them all (disk corruption, tampering). A
//! blob that no longer hashes to its name is moved to
//! `<data_dir>/blobs/corrupt/` (so it is never served again, and fetched
//! and verified anew when asked for) and listed, and the artifact-index
//! entries naming it are dropped; exit 1 if there was any.
//! Safe while `bulwark serve` runs on the same data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark::store::scrub;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Re-hash every stored blob; move aside those that do not match.
    Verify {
        /// Configuration file (default: as for `serve`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Runs the command; `load` reads the configuration as `serve` does.
pub fn run(
    cmd: StoreCommand,
    load: impl Fn(
        Option<&std::path::Path>,
    ) -> Result<bulwark::config::Config, bulwark::config::ConfigError>,
) -> ExitCode {
    let StoreCommand::Verify { config } = cmd;
    let config = match load(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = config.server.data_dir.clone();
    let report = runtime.block_on(async move { scrub(&data_dir).await });
    let bulwark::store::ScrubReport {
        blobs: report,
        index,
    } = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (digest, seen, moved_to) in &report.corrupt {
        println!(
            "corrupt {digest}: hashes to {seen}; moved to {}",
            moved_to.display()
        );
    }
    for path in &report.unknown {
        println!(
            "unknown file {} (not a digest name; left alone)",
            path.display()
        );
    }
    match index {
        Ok(n) if !report.corrupt.is_empty() => {
            println!("{n} artifact-index entr(ies) naming a corrupt blob dropped")
        }
        Ok(_) => {}
        Err(e) => println!(
            "artifact-index entries naming a corrupt blob not dropped ({e}); \
             a running server fetches and checks that content anew when asked for it"
        ),
    }
    println!("{} blob(s) ok, {} corrupt", report.ok, report.corrupt.len());
    if report.corrupt.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
