//! `bulwark sync`, `bulwark import` and `bulwark export` against a data
//! directory a running `serve` holds: the artifact index is opened by
//! one process at a time, so they run inside that `serve`, through its
//! control socket
//! (`<data_dir>/control.sock`, a Unix socket of mode 0600: who may write
//! the data directory may run them). The server runs one command at a
//! time over its own trust state, blob store and index, with fronts of
//! its own for the run (`import` points them at the bundle), so what it
//! stores is served at once, without a restart. The command's progress
//! and summary come back as JSON lines and are shown here as they would
//! be by a run in this process; a client that goes away stops a `sync`
//! or `import` (what was stored by then is complete and verified, as
//! after a kill; an `export` runs to its end on its blocking thread).
//!
//! With no `serve` on the data directory (no socket, or one a dead
//! process left), the command runs in this process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use bulwark::ecosystem::EcosystemContext;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

use crate::cli::airgap::{
    export_with, finish, import_with, open_context, runtime, sync_with, ExportArgs, ExportSpec,
    ImportArgs, Load, Local, Progress, Report, SyncArgs,
};

/// The control socket's file name in the data directory.
pub const SOCKET: &str = "control.sock";
/// Longest request line the server reads.
const MAX_REQUEST: u64 = 1024 * 1024;
/// Longest event line the client reads.
const MAX_EVENT: u64 = 1024 * 1024;

/// What a client asks the running server to do (`sync`, `import` and
/// `export` with their arguments).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    /// `bulwark sync` of these lockfiles (absolute paths).
    Sync { lockfiles: Vec<PathBuf> },
    /// `bulwark import` of this bundle (an absolute path).
    Import {
        file: PathBuf,
        manifest_keys: Vec<String>,
    },
    /// `bulwark export` (absolute paths).
    Export(ExportSpec),
}

/// What the server says while it runs a command, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Event {
    /// [`Report::start`].
    Start(u64),
    /// [`Report::item`].
    Item(String),
    /// [`Report::finish`].
    Finish,
    /// [`Report::print`].
    Print(String),
    /// [`Report::note`].
    Note(String),
    /// The command failed before its summary.
    Error(String),
    /// The command ended: whether nothing was refused. Always the last.
    Exit(bool),
}

/// [`Report`] to a control-socket client.
struct Remote(tokio::sync::mpsc::UnboundedSender<Event>);

impl Report for Remote {
    fn start(&self, total: u64) {
        let _ = self.0.send(Event::Start(total));
    }
    fn item(&self, line: &str) {
        let _ = self.0.send(Event::Item(line.to_string()));
    }
    fn finish(&self) {
        let _ = self.0.send(Event::Finish);
    }
    fn print(&self, line: &str) {
        let _ = self.0.send(Event::Print(line.to_string()));
    }
    fn note(&self, line: &str) {
        let _ = self.0.send(Event::Note(line.to_string()));
    }
}

/// The control socket of a running `serve`; dropping it stops listening
/// and removes the socket file.
pub struct Control {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `<data_dir>/control.sock` for `sync`, `import` and `export` over
/// `ctx` (serve's own shared state). Called with the artifact index
/// open, so no other live `serve` uses this data directory: a socket
/// file already there is a dead one's, and is replaced.
pub fn listen(ctx: EcosystemContext) -> anyhow::Result<Control> {
    let path = ctx.data_dir.join(SOCKET);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("{}: cannot replace it", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("{}: cannot listen on the control socket", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("{}: cannot make it private", path.display()))?;
    let one = Arc::new(tokio::sync::Mutex::new(()));
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(handle(ctx.clone(), one.clone(), stream));
                }
                Err(e) => tracing::warn!("control socket: accept: {e}"),
            }
        }
    });
    Ok(Control { path, task })
}

/// One client: its command, run (one at a time), its events written
/// back; stopped if the client goes away.
async fn handle(
    ctx: EcosystemContext,
    one: Arc<tokio::sync::Mutex<()>>,
    stream: tokio::net::UnixStream,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read).take(MAX_REQUEST);
    let mut line = String::new();
    let command = match reader.read_line(&mut line).await {
        Ok(_) => serde_json::from_str::<Command>(&line).map_err(|e| format!("bad request: {e}")),
        Err(e) => Err(format!("bad request: {e}")),
    };
    let mut reader = reader.into_inner();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let run = async move {
        let command = match command {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Event::Error(e));
                let _ = tx.send(Event::Exit(false));
                return;
            }
        };
        let _one = one.lock().await;
        tracing::info!(?command, "control socket: running");
        let report = Remote(tx.clone());
        let r = match &command {
            Command::Sync { lockfiles } => sync_with(&ctx, lockfiles, &report).await,
            Command::Import {
                file,
                manifest_keys,
            } => import_with(&ctx, file, manifest_keys, &report).await,
            Command::Export(spec) => export_with(&ctx, spec, &report).await,
        };
        let ok = r.unwrap_or_else(|e| {
            let _ = tx.send(Event::Error(format!("{e:#}")));
            false
        });
        tracing::info!(?command, ok, "control socket: done");
        let _ = tx.send(Event::Exit(ok));
    };
    let send = async move {
        while let Some(e) = rx.recv().await {
            let mut line = match serde_json::to_vec(&e) {
                Ok(l) => l,
                Err(_) => continue,
            };
            line.push(b'\n');
            if write.write_all(&line).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    };
    // The client sends nothing after its command: end of input (or an
    // error) means it went away.
    let gone = async move {
        let mut buf = [0u8; 64];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(run, send) } => {}
        _ = gone => tracing::warn!("control socket: the client went away; its run is stopped"),
    }
}

/// Runs `command` in the `serve` holding `data_dir`, showing its
/// progress as `progress` says. `None`: no `serve` listens there.
fn delegate(
    data_dir: &Path,
    command: &Command,
    progress: Progress,
) -> anyhow::Result<Option<ExitCode>> {
    let path = data_dir.join(SOCKET);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{}: a running serve's control socket", path.display()))
        }
    };
    eprintln!(
        "running in the bulwark serve that holds {} (its configuration, its stores)",
        data_dir.display()
    );
    let mut line = serde_json::to_vec(command)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let local = Local::new(progress);
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = std::io::Read::take(&mut reader, MAX_EVENT).read_until(b'\n', &mut line)?;
        if n == 0 {
            anyhow::bail!("the running serve closed its control socket before the run ended");
        }
        let event: Event = serde_json::from_slice(&line)
            .with_context(|| format!("{}: unexpected answer", path.display()))?;
        match event {
            Event::Start(n) => local.start(n),
            Event::Item(l) => local.item(&l),
            Event::Finish => local.finish(),
            Event::Print(l) => local.print(&l),
            Event::Note(l) => local.note(&l),
            Event::Error(e) => eprintln!("error: {e}"),
            Event::Exit(ok) => {
                return Ok(Some(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }))
            }
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `bulwark sync`: in the running `serve` of the data directory, else
/// here.
pub fn sync(args: SyncArgs, load: Load) -> ExitCode {
    finish((|| {
        let config = load(args.config.as_deref())?;
        let lockfiles = args
            .lockfiles
            .iter()
            .map(std::path::absolute)
            .collect::<std::io::Result<Vec<_>>>()?;
        let command = Command::Sync {
            lockfiles: lockfiles.clone(),
        };
        if let Some(code) = delegate(&config.server.data_dir, &command, args.progress)? {
            return Ok(code);
        }
        let report = Local::new(args.progress);
        runtime()?.block_on(async move {
            let base = open_context(config).await?;
            Ok(exit(sync_with(&base, &lockfiles, &report).await?))
        })
    })())
}

/// `bulwark import`: in the running `serve` of the data directory, else
/// here.
pub fn import(args: ImportArgs, load: Load) -> ExitCode {
    finish((|| {
        let config = load(args.config.as_deref())?;
        let file = std::path::absolute(&args.file)?;
        let command = Command::Import {
            file: file.clone(),
            manifest_keys: args.manifest_keys.clone(),
        };
        if let Some(code) = delegate(&config.server.data_dir, &command, args.progress)? {
            return Ok(code);
        }
        let report = Local::new(args.progress);
        runtime()?.block_on(async move {
            let base = open_context(config).await?;
            Ok(exit(
                import_with(&base, &file, &args.manifest_keys, &report).await?,
            ))
        })
    })())
}

/// `bulwark export`: in the running `serve` of the data directory, else
/// here.
pub fn export(args: ExportArgs, load: Load) -> ExitCode {
    finish((|| {
        let config = load(args.config.as_deref())?;
        let spec = args.spec.absolute()?;
        let command = Command::Export(spec.clone());
        if let Some(code) = delegate(&config.server.data_dir, &command, Progress::None)? {
            return Ok(code);
        }
        let report = Local::new(Progress::None);
        runtime()?.block_on(async move {
            let base = open_context(config).await?;
            Ok(exit(export_with(&base, &spec, &report).await?))
        })
    })())
}
