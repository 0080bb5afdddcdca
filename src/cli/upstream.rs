//! `bulwark upstream`: the operator's view of the trust state.
//!
//! ```text
//! bulwark upstream list [--config FILE]          each upstream's status and newest checkpoint
//! bulwark upstream clear NAME [--config FILE] [--rebase]   lift a quarantine
//! bulwark upstream publishers NAME PACKAGE [--accept PUBLISHER]... [--accept-unattested]
//! ```
//!
//! `publishers` shows the never-downgrade ledger of a package (the
//! publishers whose attestations bulwark verified for it) and, with
//! `--accept`, records the operator's decision to accept exactly those
//! publishers from now on (`--accept-unattested`: accept files without
//! attestation until an attested one is seen again).
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
    /// Show (or decide) a package's accepted publishers: never downgrade.
    Publishers {
        /// The upstream's configured name.
        name: String,
        /// The package (PyPI: the project), in any spelling.
        package: String,
        /// Configuration file (default: as for `serve`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Accept this publisher from now on (as refusals name it, e.g.
        /// `GitHub:acme/tool:release.yml`); repeat for several.
        #[arg(long, value_name = "PUBLISHER", conflicts_with = "accept_unattested")]
        accept: Vec<String>,
        /// Accept the package's files without attestation from now on.
        #[arg(long)]
        accept_unattested: bool,
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
        UpstreamCommand::List { config }
        | UpstreamCommand::Clear { config, .. }
        | UpstreamCommand::Publishers { config, .. } => config.clone(),
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
        UpstreamCommand::Publishers {
            name,
            package,
            accept,
            accept_unattested,
            ..
        } => publishers(&config, &trust, &name, &package, &accept, accept_unattested),
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

fn publishers(
    config: &bulwark::config::Config,
    trust: &TrustState,
    name: &str,
    package: &str,
    accept: &[String],
    accept_unattested: bool,
) -> ExitCode {
    let Some(u) = config.upstream(name) else {
        eprintln!("error: {}: no upstream named {name:?}", config.origin);
        return ExitCode::FAILURE;
    };
    // The ledger keys a package by its protocol's normal form.
    let package = match bulwark::ecosystems::ECOSYSTEMS
        .iter()
        .find(|e| e.protocol() == u.protocol.name())
        .map(|e| e.config().namespace(package))
    {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("error: package {package:?}: {e}");
            return ExitCode::from(2);
        }
        None => package.to_string(),
    };
    let show = |what: &str, l: &bulwark::verify::ledger::Ledger| {
        let who = if l.publishers.is_empty() {
            "no publisher (files without attestation accepted)".to_string()
        } else {
            l.publishers.join(", ")
        };
        println!(
            "{name} {package}: {what} {who}; since {} ({})",
            humantime::format_rfc3339_seconds(l.since),
            l.first
        );
    };
    if accept.is_empty() && !accept_unattested {
        return match trust.publishers(name, &package) {
            Ok(Some(l)) => {
                show("accepted", &l);
                ExitCode::SUCCESS
            }
            Ok(None) => {
                println!("{name} {package}: never seen attested; no decision");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match trust.accept_publishers(name, &package, accept, SystemTime::now()) {
        Ok(old) => {
            if let Some(old) = old {
                show("was", &old);
            }
            if let Ok(Some(l)) = trust.publishers(name, &package) {
                show("now accepts", &l);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
