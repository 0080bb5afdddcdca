//! The `bulwark` command line: `serve` runs the proxy, `check-config`
//! validates a routing table and prints it.
//!
//! `serve` prints one machine-readable line, `listening on ADDR`, to stdout
//! once the socket is bound (tests that configure port 0 read the real port
//! from it); logs go to stderr.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bulwark::admin::Admin;
use bulwark::config::{Config, ConfigError, LogFormat};
use bulwark::federation::Federation;
use bulwark::server::{App, Server};
use clap::{Parser, Subcommand};

mod cli;

/// The config file used when `serve` gets no `--config`, if it exists.
const DEFAULT_CONFIG_PATH: &str = "federation/default.toml";

#[derive(Parser, Debug)]
#[command(
    name = "bulwark",
    version,
    about = "Edge proxy and mirror for package registries that serves only what it verified in the upstream transparency log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Configuration file (default: federation/default.toml if it exists,
        /// else the copy embedded in the binary).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen on this address instead of the configured server.listen
        /// (e.g. 0.0.0.0:8080, or 127.0.0.1:0 for any free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration file and print its routing table.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Verify checkpoints, proofs and consistency offline.
    #[command(subcommand)]
    Verify(cli::verify::VerifyCommand),
    /// Show or change upstreams' trust state (list, clear a quarantine).
    #[command(subcommand)]
    Upstream(cli::upstream::UpstreamCommand),
    /// Check the blob store (re-hash every stored blob).
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
    /// Fetch what lockfiles name through the verified pipeline (air gap,
    /// outside).
    Sync(cli::airgap::SyncArgs),
    /// Write the verified store and its proofs to one tar (air gap).
    Export(cli::airgap::ExportArgs),
    /// Verify a tar written by `export` again and store what passes (air
    /// gap, inside).
    Import(cli::airgap::ImportArgs),
    /// Make a key to sign bundles with (`export --sign-key`): writes the
    /// private key, prints the verifier key for `import --manifest-key`.
    Keygen {
        /// The key's name, e.g. `bundles.acme.example/outside`.
        name: String,
        /// The file to write the private key to (created, mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => serve(config.as_deref(), listen),
        Command::CheckConfig { file } => check_config(&file),
        Command::Verify(cmd) => cli::verify::run(cmd),
        Command::Upstream(cmd) => cli::upstream::run(cmd, load),
        Command::Store(cmd) => cli::store::run(cmd, load),
        Command::Sync(args) => cli::control::sync(args, load),
        Command::Export(args) => cli::control::export(args, load),
        Command::Import(args) => cli::control::import(args, load),
        Command::Keygen { name, out } => cli::airgap::keygen(&name, &out),
    }
}

fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
            Config::load(Path::new(DEFAULT_CONFIG_PATH))
        }
        None => Config::embedded(),
    }
}

fn check_config(file: &Path) -> ExitCode {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Federation::new(&config.upstreams) {
        Ok(f) => {
            println!(
                "{}: ok, {} upstream(s)\n",
                config.origin,
                config.upstreams.len()
            );
            print!("{f}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", config.origin);
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal: no escape codes in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder
            .event_format(bulwark::logging::Human::default())
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn serve(config_path: Option<&Path>, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let mut config = match load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    init_logging(config.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let origin = config.origin.clone();
        let shutdown = bulwark::server::shutdown_signal()?;
        let mut app = App::new(config)?;
        let ctx = cli::mirror::ecosystem_context(&app).await?;
        let fronts = cli::mirror::protocol_fronts(&ctx)?;
        // `sync`, `import` and `export` on this data directory run in here.
        // Without the socket (e.g. a data_dir path longer than a Unix
        // socket path may be) serve still runs; those commands then need
        // it stopped.
        let _control = cli::control::listen(ctx)
            .map_err(|e| tracing::warn!("{e:#}; sync, import and export need serve stopped"))
            .ok();
        app.add_front(Arc::new(Admin::new(
            app.metrics.clone(),
            app.data_dir().clone(),
            fronts.clone(),
        )));
        for front in fronts {
            app.add_front(front);
        }
        let server = Server::bind(app).await?;
        let addr = server.local_addr()?;
        let scheme = if server.is_tls() { "https" } else { "http" };
        tracing::info!(config = %origin, %addr, scheme, "bulwark serving");
        println!("listening on {addr}");
        server.run(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
