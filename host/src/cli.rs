//! The `wasmgate` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DEMO_API_KEY, embedded_default};
use crate::mock::{MockConfig, MockServer};
use crate::server::{self, Snapshot};

#[derive(Debug, Parser)]
#[command(name = "wasmgate", version, about = "OpenAI-compatible LLM gateway with WebAssembly policy plugins")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (without --config: an embedded default with a mock upstream, offline).
    Serve(ServeArgs),
    /// Run the mock OpenAI upstream on its own (for benches and tests).
    MockUpstream(MockArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Say which world a .wasm implements, its imports, exports, size and compile time, and run
    /// its `configure` (with --config, a JSON or TOML file).
    Check {
        file: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a plugin on a recorded request outside the gateway: its decision, the time per call
    /// (p50/p99) and its memory.
    Run(PluginRunArgs),
    /// Write a new plugin project that builds as it is, with a README, config and test request.
    New(PluginNewArgs),
}

#[derive(Debug, Args)]
struct PluginRunArgs {
    /// The component (.wasm).
    file: PathBuf,
    /// A recorded request (`{"method","path","headers","body"}`, as `mock-upstream --record`
    /// keeps them) or a bare OpenAI request body.
    #[arg(long)]
    request: PathBuf,
    /// The plugin's config (JSON or TOML), as `config` of `[plugins.ID]` holds it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Calls to make on reused instances (then up to 200 on fresh ones).
    #[arg(long, default_value_t = 1000)]
    repeat: u32,
    /// Extra request header, `name: value` (repeatable), e.g. `-H 'authorization: Bearer sk-1'`.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Do not hand the body to the plugin (as the gateway does unless `body = true`).
    #[arg(long)]
    no_body: bool,
    /// Deadline of one call (the gateway's `timeout`).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Linear-memory cap of an instance, MiB (the gateway's `memory-limit-mib`).
    #[arg(long, default_value_t = 64)]
    memory_limit_mib: u64,
}

#[derive(Debug, Args)]
struct PluginNewArgs {
    /// Project name: lower-case letters, digits and dashes.
    name: String,
    /// The world the plugin implements.
    #[arg(long, value_enum)]
    kind: KindArg,
    #[arg(long, value_enum, default_value = "rust")]
    lang: crate::plugin_cli::Lang,
    /// Where to write it (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The wasmgate checkout whose sdk/ and wit/ the project uses (default: the one this
    /// binary was built from).
    #[arg(long)]
    wasmgate_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Auth,
    Rewrite,
    RateLimit,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Config file (TOML). Without it, the embedded default runs.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// API listen address (overrides `server.listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listen address (overrides `server.admin-listen`).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct MockArgs {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Delay before the response (or before the first chunk of a stream).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Content chunks per stream.
    #[arg(long, default_value_t = 8)]
    chunks: u32,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Keep the last N requests (bodies included) for `GET /_mock/requests`; `--record` alone
    /// keeps 256. Off by default: it holds memory and costs a lock per request.
    #[arg(long, num_args = 0..=1, default_value_t = 0, default_missing_value = "256", value_name = "N")]
    record: usize,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file, or print every error with its key and line.
    Check {
        file: PathBuf,
        /// Also print the config resolved, as a config file (TOML, every default written
        /// out, secrets redacted) that loads to the same config.
        #[arg(long)]
        print: bool,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::MockUpstream(args) => runtime.block_on(mock_upstream(args)),
        Command::Config(ConfigCommand::Check { file, print }) => config_check(&file, print),
        Command::Plugin(PluginCommand::Check { file, config }) => {
            runtime.block_on(crate::plugin_cli::check(&file, config.as_deref()))
        }
        Command::Plugin(PluginCommand::Run(a)) => {
            let opts = crate::plugin_cli::RunOptions {
                repeat: a.repeat,
                headers: a.headers,
                pass_body: !a.no_body,
                timeout: a.timeout,
                memory_limit_mib: a.memory_limit_mib,
            };
            runtime.block_on(crate::plugin_cli::run(&a.file, &a.request, a.config.as_deref(), &opts))
        }
        Command::Plugin(PluginCommand::New(a)) => plugin_new(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WASMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: in a file or a log collector they are noise.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

fn plugin_new(a: PluginNewArgs) -> Result<(), String> {
    use crate::policy::PluginKind;
    let kind = match a.kind {
        KindArg::Auth => PluginKind::Auth,
        KindArg::Rewrite => PluginKind::Rewrite,
        KindArg::RateLimit => PluginKind::RateLimit,
    };
    let dir = crate::plugin_cli::new_project(&a.name, kind, a.lang, a.dir.as_deref(), a.wasmgate_dir.as_deref())?;
    println!("wrote {} ({} plugin); next: see {}/README.md", dir.display(), kind.world(), dir.display());
    Ok(())
}

fn config_check(file: &std::path::Path, print: bool) -> Result<(), String> {
    match Config::load(file) {
        Ok(c) if print => {
            println!("# {}: OK\n{}", file.display(), c.describe());
            Ok(())
        }
        Ok(_) => {
            println!("{}: OK", file.display());
            Ok(())
        }
        Err(errs) => Err(errs.to_string().trim_end().to_string()),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    // The embedded default needs its mock upstream running first (kept alive until exit).
    let (mut config, mock) = match &args.config {
        Some(path) => (Config::load(path).map_err(|e| e.to_string().trim_end().to_string())?, None),
        None => {
            // Records nothing: a demo gateway left running must not hold the last request bodies.
            let mock_cfg = MockConfig { record: 0, ..MockConfig::default() };
            let mock = MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), mock_cfg)
                .await
                .map_err(|e| format!("cannot start the embedded mock upstream: {e}"))?;
            let config = embedded_default(mock.addr).map_err(|e| e.to_string())?;
            (config, Some(mock))
        }
    };
    if let Some(a) = args.listen {
        config.server.listen = a;
    }
    if let Some(a) = args.admin_listen {
        config.server.admin_listen = a;
    }
    // The same rule as `server.admin-listen` in the file (see config validation).
    if config.server.admin.token.is_none() && !config.server.admin_listen.ip().is_loopback() {
        return Err(format!(
            "admin listener {} is not a loopback address and no `server.admin-token-env` is set: \
             set a token, or listen on 127.0.0.1",
            config.server.admin_listen
        ));
    }
    let embedded = mock.is_some();
    let snapshot = Snapshot::from_config(config).await.map_err(|e| e.to_string())?;
    let running = server::start_with(snapshot, args.config.clone()).await.map_err(|e| e.to_string())?;
    spawn_sighup_reload(running.reloader.clone());
    println!("wasmgate listening on http://{} (admin: http://{}/metrics)", running.addr, running.admin_addr);
    if let Some(m) = &mock {
        println!("embedded default: mock upstream on {}, models mock-gpt-4o, mock-gpt-4o-mini, mock-embedding", m.addr);
    }
    let auth = if embedded { format!(" -H 'Authorization: Bearer {DEMO_API_KEY}'") } else { String::new() };
    println!(
        "try: curl -s http://{}/v1/chat/completions -H 'Content-Type: application/json'{auth} -d '{{\"model\":\"mock-gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'",
        running.addr
    );
    shutdown_signal().await;
    tracing::info!("signal received; shutting down");
    running.shutdown().await;
    if let Some(m) = mock {
        m.shutdown();
    }
    Ok(())
}

async fn mock_upstream(args: MockArgs) -> Result<(), String> {
    let cfg = MockConfig {
        latency: Duration::from_millis(args.latency_ms),
        chunks: args.chunks,
        chunk_interval: Duration::from_millis(args.chunk_interval_ms),
        record: args.record,
        ..MockConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("wasmgate mock upstream listening on http://{addr}/v1");
    crate::mock::serve(listener, cfg, shutdown_signal()).await.map_err(|e| e.to_string())
}

/// SIGHUP reloads config and plugins, as `POST /admin/reload` does.
fn spawn_sighup_reload(reloader: std::sync::Arc<crate::reload::Reloader>) {
    #[cfg(unix)]
    #[allow(clippy::disallowed_methods, reason = "process-lifetime signal listener; nothing to drain")]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let report = reloader.reload().await;
            tracing::info!(swapped = report.swapped, loaded = ?report.loaded, "reload done");
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
