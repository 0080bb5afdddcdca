//! `bulwark upstream`: the operator's view of the trust state.
//!
//! ```text
//! bulwark upstream list [--config FILE]          each upstream's status and newest checkpoint
//! bulwark upstream clear NAME [--config FILE] [--rebase]   lift a quarantine
//! ```
//!
//! Reads `<server.data_dir>/state.redb` of the configuration (the same file
//! a running `bulwark serve` uses; the trust state allows both at once).
//! `clear` keeps the accepted history by default (the upstream must stay
//! consistent with it); `--rebase` starts a new epoch (see
//! `bulwark::verify::trust`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use bulwark::verify::trust::{ClearMode, Status, TrustState};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum UpstreamCommand {
    /// Show each upstream's status and newest accepted checkpoint.
    List {
        /// Configuration file (default: as for `serve`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lift an upstream's quarantine.
    Clear {
        /// The upstream's configured name.
        name: String,
        /// Configuration file (default: as for `serve`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start a new epoch instead of keeping the accepted history.
        #[arg(long)]
        rebase: bool,
    },
}

/// Runs the command; `load` reads the configuration as `serve` does.
pub fn run(
    cmd: UpstreamCommand,
    load: impl Fn(
        Option<&std::path::Path>,
    ) -> Result<bulwark::config::Config, bulwark::config::ConfigError>,
) -> ExitCode {
    let config_path = match &cmd {
        UpstreamCommand::List { config } | UpstreamCommand::Clear { config, .. } => config.clone(),
    };
    let config = match load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let path = config.server.data_dir.join("state.redb");
    let trust = match TrustState::open(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        UpstreamCommand::List { .. } => list(&config, &trust),
        UpstreamCommand::Clear { name, rebase, .. } => {
            if !config.upstreams.iter().any(|u| u.name == name) {
                eprintln!("error: {}: no upstream named {name:?}", config.origin);
                return ExitCode::FAILURE;
            }
            let mode = if rebase {
                ClearMode::Rebase
            } else {
                ClearMode::Resume
            };
            match trust.clear(&name, mode, SystemTime::now()) {
                Ok(c) => {
                    let was = match c.was {
                        Status::Active => "was not quarantined".to_string(),
                        Status::Quarantined(q) => {
                            format!(
                                "quarantine lifted (was: {} check, evidence #{})",
                                q.check.as_str(),
                                q.evidence
                            )
                        }
                    };
                    println!("{name}: {was}; epoch {}; mode {mode:?}", c.epoch);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn list(config: &bulwark::config::Config, trust: &TrustState) -> ExitCode {
    let summaries = match trust.list() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for u in &config.upstreams {
        let s = summaries.iter().find(|s| s.name == u.name);
        let status = match s.map(|s| &s.status) {
            None | Some(Status::Active) => "active".to_string(),
            Some(Status::Quarantined(q)) => format!(
                "QUARANTINED ({} check, evidence #{}: {})",
                q.check.as_str(),
                q.evidence,
                q.reason
            ),
        };
        let newest = match s.and_then(|s| s.latest.as_ref()) {
            Some(a) => format!(
                "size {} root {} ({} accepted, {} evidence)",
                a.size,
                a.root,
                s.map_or(0, |s| s.checkpoints),
                s.map_or(0, |s| s.evidence)
            ),
            None => "no checkpoint".to_string(),
        };
        println!("{}\t{}\t{}\t{}", u.name, u.protocol, status, newest);
    }
    ExitCode::SUCCESS
}
