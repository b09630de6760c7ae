//! The `sluice` command line: parses arguments, sets up logging and the runtime, calls the
//! library, and prints results on stdout and one clear `error:` line on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::checkpoint::{CheckpointStore, StreamKey};
use crate::config::Connection;
use crate::sandbox::Limits;
use crate::sink::messages;
use crate::sync::{self, RunOptions, RunSummary};
use crate::telemetry::{self, LogFormat};
use crate::{Connector, Runtime};

/// Default directory of the checkpoint store, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".sluice/state";
/// Default directory of the JSON-lines output, relative to the working directory.
pub const DEFAULT_OUTPUT_DIR: &str = ".sluice/output";
/// Default output directory of `sluice replay`, apart from the live output.
pub const DEFAULT_REPLAY_OUTPUT_DIR: &str = ".sluice/replay";

/// Format of raw archive files (`sluice run --archive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ArchiveFormat {
    /// `<stream>.jsonl.gz`: compact.
    Gzip,
    /// `<stream>.jsonl`: plain JSON lines, e.g. as a fixture for the SDK's test harness.
    Jsonl,
}

/// Where `sluice run` writes records (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RunFormat {
    /// `<output>/<stream>.jsonl` files, one record per line.
    Jsonl,
    /// Airbyte protocol messages on stdout: RECORD, STATE after each page, LOG, TRACE.
    Airbyte,
    /// Singer messages on stdout: SCHEMA, RECORD, STATE after each page.
    Singer,
}

impl From<RunFormat> for crate::sink::Format {
    fn from(format: RunFormat) -> Self {
        match format {
            RunFormat::Jsonl => Self::Jsonl,
            RunFormat::Airbyte => Self::Airbyte,
            RunFormat::Singer => Self::Singer,
        }
    }
}

/// How `sluice spec|check|discover` answer (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AnswerFormat {
    /// Sluice's own JSON (spec, discover) or text (check).
    Sluice,
    /// One Airbyte protocol message: SPEC, CONNECTION_STATUS or CATALOG.
    Airbyte,
}

/// Sluice runs untrusted API connectors (WebAssembly components) in a sandbox; the host does
/// all the I/O: HTTP, retries, rate limits, credentials, output and checkpoints.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr (no progress display).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Format of log lines on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    command: Command,
}

/// Selects a connector: a bundled name (`rest`, `github`) or a path to a `.wasm` component.
#[derive(Debug, clap::Args)]
struct ConnectorArg {
    /// Bundled connector name (`rest`, `github`) or path to a `.wasm` component.
    #[arg(long, short = 'c')]
    connector: String,
}

/// A connector plus a connection file.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    #[command(flatten)]
    connector: ConnectorArg,
    /// The connection file (TOML): `[config]` for the connector, `[network]`, `[limits]`, ...
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a connector's spec (name, version, config schema, auth schemes) as JSON.
    Spec {
        #[command(flatten)]
        connector: ConnectorArg,
        /// `airbyte`: answer with an Airbyte SPEC message.
        #[arg(long, value_enum, default_value = "sluice")]
        format: AnswerFormat,
    },
    /// Validate a connection file against the connector, offline.
    Check {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// `airbyte`: answer with an Airbyte CONNECTION_STATUS message (FAILED with the reason,
        /// and exit status 0, when the connection is not valid).
        #[arg(long, value_enum, default_value = "sluice")]
        format: AnswerFormat,
    },
    /// Print the hosts and streams a connector offers under a connection file, as JSON.
    Discover {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// `airbyte`: answer with an Airbyte CATALOG message.
        #[arg(long, value_enum, default_value = "sluice")]
        format: AnswerFormat,
    },
    /// Sync streams: fetch, write JSON lines per stream, checkpoint after every page.
    ///
    /// Progress goes to stderr: live per-stream lines on a terminal, otherwise a log line per
    /// stream every few seconds and when it ends; none with `--quiet`.
    Run {
        #[command(flatten)]
        connection: ConnectionArgs,
        /// Directory of the checkpoint store.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state: PathBuf,
        /// Directory for the output files (`<stream>.jsonl`).
        #[arg(long, default_value = DEFAULT_OUTPUT_DIR)]
        output: PathBuf,
        /// Sync only this stream (repeatable). Default: all.
        #[arg(long = "stream", value_name = "NAME")]
        streams: Vec<String>,
        /// Ignore saved cursors and replace previous output with a complete read.
        #[arg(long)]
        full_refresh: bool,
        /// Print the run summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Where records go: `jsonl` files in --output, or `airbyte`/`singer` messages on
        /// stdout (the summary then goes to stderr, or into an Airbyte LOG message).
        #[arg(long, value_enum, default_value = "jsonl")]
        format: RunFormat,
        /// Keep every response the connector is handed, with its request (never the
        /// credential), in DIR/<connection>/<run>/<stream>.jsonl.gz, for `sluice replay`.
        #[arg(long, value_name = "DIR")]
        archive: Option<PathBuf>,
        /// Format of the archive files: gzip (compact) or jsonl (plain, usable as an SDK test
        /// fixture).
        #[arg(long, value_enum, default_value = "gzip", value_name = "FORMAT")]
        archive_format: ArchiveFormat,
    },
    /// Re-run a connector against a raw archive (`sluice run --archive`) without the network,
    /// writing the records the live run wrote; live checkpoints are not touched.
    Replay {
        #[command(flatten)]
        connector: ConnectorArg,
        /// The `--archive` directory of `sluice run` (its latest run), or one
        /// `<connection>/<run>` directory in it.
        #[arg(long, value_name = "DIR")]
        archive: PathBuf,
        /// A connection file whose `[config]` (and `[limits]`) to use instead of the archived
        /// config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory for the replayed output files (`<stream>.jsonl`).
        #[arg(long, default_value = DEFAULT_REPLAY_OUTPUT_DIR)]
        output: PathBuf,
        /// Checkpoint store of the replay; default: a temporary directory, removed afterwards.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Replay only this stream (repeatable). Default: every archived stream.
        #[arg(long = "stream", value_name = "NAME")]
        streams: Vec<String>,
        /// Print the summary as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show what a connector is, imports and exports, and (with --config) which hosts and
    /// streams it declares; every load-time check runs as for a sync.
    Inspect {
        /// Bundled connector name (`rest`, `github`) or path to a `.wasm` component.
        connector: String,
        /// A connection file, to also list the hosts and streams declared under its config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Inspect or reset saved checkpoints.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Run many tenants' connections on their schedules in one process, with a control API
    /// and Prometheus metrics; SIGHUP reloads the deployment, SIGTERM stops at checkpoints.
    Serve {
        /// The deployment file (TOML): tenants, connections, secrets, caps, schedules.
        #[arg(long)]
        deployment: PathBuf,
        /// Check the deployment file and compile its connectors, then exit.
        #[arg(long)]
        check: bool,
    },
    /// Print a shell completion script, e.g. `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Create a connector crate NAME (in the working directory, or --dir): it depends on the
    /// SDK, builds to a component with `cargo build --release`, and has native tests.
    New {
        /// Package name of the connector: lowercase letters, digits, `-` and `_`.
        name: String,
        /// Directory to create the crate in (`<DIR>/<NAME>`); default: the working directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The SDK to depend on, by path (`guest-sdk/` of a Sluice checkout); default: the one
        /// this `sluice` was built from.
        #[arg(long, value_name = "PATH", conflicts_with = "sdk_git")]
        sdk: Option<PathBuf>,
        /// The SDK to depend on, from a git repository holding it.
        #[arg(long, value_name = "URL")]
        sdk_git: Option<String>,
    },
    /// Start a bundled demo API on 127.0.0.1 and sync it; run again to see an incremental sync.
    ///
    /// With --serve, only start the demo API and keep it running until Ctrl-C or SIGTERM, to
    /// sync a connector of your own against it: its `/v1/items` endpoint is the API a
    /// connector made by `sluice new` reads as generated.
    Demo {
        /// Directory for the demo's connection file, output and checkpoints.
        #[arg(long, default_value = "sluice-demo", conflicts_with = "serve")]
        dir: PathBuf,
        /// Only serve the demo API, until Ctrl-C or SIGTERM (then exit 0). The first line on
        /// stdout is `Demo API listening on http://127.0.0.1:PORT/v1`; its endpoints follow.
        #[arg(long)]
        serve: bool,
        /// The port on 127.0.0.1 for --serve; 0 picks any free port. Default: 47878 if it is
        /// free, otherwise any free port.
        #[arg(long, value_name = "PORT", requires = "serve")]
        port: Option<u16>,
    },
}

#[derive(Debug, Subcommand)]
enum StateAction {
    /// List every checkpoint of the store as JSON.
    List {
        /// Directory of the checkpoint store.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state: PathBuf,
    },
    /// Print a connection's checkpoints (every stream, or one) in their stored, versioned form:
    /// `{"<stream>": {"version": "1", "mode", "state", "pending", "context", "output", ...}}`.
    Show {
        /// Directory of the checkpoint store.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state: PathBuf,
        /// Connection name (the `name` in the connection file, or its file stem).
        #[arg(long)]
        connection: String,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Replace a stream's checkpoint with versioned JSON in the form `state show` prints for
    /// one stream; invalid checkpoints are refused.
    Set {
        /// Directory of the checkpoint store.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state: PathBuf,
        /// Directory of the output files (`<stream>.jsonl`), to check the checkpoint's
        /// `output` position against.
        #[arg(long, default_value = DEFAULT_OUTPUT_DIR)]
        output: PathBuf,
        /// Connection name (the `name` in the connection file, or its file stem).
        #[arg(long)]
        connection: String,
        /// Stream name.
        #[arg(long)]
        stream: String,
        /// Read the checkpoint from this file (`-` for stdin).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "json",
            required_unless_present = "json"
        )]
        file: Option<PathBuf>,
        /// The checkpoint as JSON text.
        #[arg(long, value_name = "TEXT")]
        json: Option<String>,
        /// Accept an `output` position beyond the output file's size (the next sync of the
        /// stream will then refuse to resume).
        #[arg(long)]
        force: bool,
    },
    /// Forget a connection's checkpoints (one stream, or every stream) so that their next sync
    /// starts over.
    Reset {
        /// Directory of the checkpoint store.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state: PathBuf,
        /// Connection name (the `name` in the connection file, or its file stem).
        #[arg(long)]
        connection: String,
        /// Only this stream. Default: every stream of the connection.
        #[arg(long)]
        stream: Option<String>,
    },
}

/// Entry point of the `sluice` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    };
    telemetry::init(verbosity, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let progress = Ui {
        quiet: cli.quiet,
        log_format: cli.log_format,
    };
    match runtime.block_on(execute(cli.command, progress)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// How the CLI talks to the operator on stderr.
#[derive(Debug, Clone, Copy)]
struct Ui {
    quiet: bool,
    log_format: LogFormat,
}

/// How often a plain progress line is logged per running stream, when stderr is no terminal.
const PROGRESS_LINE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl Ui {
    /// `sluice run`'s progress display: live bars when stderr is a terminal (and logs are text),
    /// plain periodic log lines otherwise, nothing with `--quiet`.
    fn progress(self) -> Option<crate::progress::SharedProgress> {
        use std::io::IsTerminal as _;
        if self.quiet {
            None
        } else if self.log_format == LogFormat::Text && std::io::stderr().is_terminal() {
            Some(std::sync::Arc::new(crate::progress::terminal::Bars::new()))
        } else {
            Some(std::sync::Arc::new(crate::progress::PlainLines::new(
                PROGRESS_LINE_INTERVAL,
            )))
        }
    }
}

async fn execute(command: Command, ui: Ui) -> Result<()> {
    match command {
        Command::Spec {
            connector: ConnectorArg { connector },
            format,
        } => {
            let runtime = Runtime::new()?;
            let connector = Connector::load(&runtime, &connector)?;
            let spec = connector.spec(&runtime, &Limits::default()).await?;
            match format {
                AnswerFormat::Sluice => print_json(&spec),
                // Which streams sync incrementally is known only under a config (CATALOG).
                AnswerFormat::Airbyte => {
                    print_message(&messages::airbyte_spec(&spec.config_schema))
                }
            }
        }
        Command::Check {
            connection: args,
            format: AnswerFormat::Airbyte,
        } => {
            let message = match check(&args).await {
                Ok(summary) => messages::airbyte_connection_status(Ok(&summary)),
                Err(error) => messages::airbyte_connection_status(Err(&format!("{error:#}"))),
            };
            print_message(&message)
        }
        Command::Check {
            connection: args,
            format: AnswerFormat::Sluice,
        } => {
            println!("{}", check(&args).await?);
            Ok(())
        }
        Command::Discover {
            connection: args,
            format,
        } => {
            let (runtime, connector, connection) = load(&args)?;
            let spec = connector.spec(&runtime, &connection.limits).await?;
            connection.validate_config(connector.name(), &spec.config_schema)?;
            let catalog = connector
                .discover(&runtime, &connection.limits, connection.config_json())
                .await?;
            match format {
                AnswerFormat::Sluice => print_json(&catalog),
                AnswerFormat::Airbyte => print_message(&messages::airbyte_catalog(&catalog)),
            }
        }
        Command::Run {
            connection,
            state,
            output,
            streams,
            full_refresh,
            json,
            format,
            archive,
            archive_format,
        } => {
            let (runtime, connector, connection) = load(&connection)?;
            let options = RunOptions {
                state_dir: state,
                output_dir: output,
                streams,
                full_refresh,
                format: format.into(),
                archive: archive.map(|dir| crate::archive::ArchiveTarget {
                    dir,
                    compression: match archive_format {
                        ArchiveFormat::Gzip => crate::archive::Compression::Gzip,
                        ArchiveFormat::Jsonl => crate::archive::Compression::None,
                    },
                }),
                progress: ui.progress(),
                ..RunOptions::default()
            };
            let outcome = sync::run(&runtime, &connector, &connection, &options).await;
            let summary = match &outcome {
                Ok(summary) => Some(summary),
                Err(sync::Error::StreamsFailed { summary, .. }) => Some(summary.as_ref()),
                Err(_) => None,
            };
            if format != RunFormat::Jsonl {
                report_run(format, json, summary, &outcome)?;
            } else if let Some(summary) = summary {
                if json {
                    print_json(summary)?;
                } else {
                    print!("{}", render_summary(summary));
                }
            }
            outcome.map(drop).map_err(Into::into)
        }
        Command::Replay {
            connector,
            archive,
            config,
            output,
            state,
            streams,
            json,
        } => {
            let temporary = state.is_none();
            let state = state.unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "sluice-replay-{}-{}",
                    std::process::id(),
                    crate::connector::now_ms()
                ))
            });
            let outcome = replay(
                &connector.connector,
                &archive,
                config.as_deref(),
                &output,
                &state,
                &streams,
            )
            .await;
            if temporary {
                let _ = std::fs::remove_dir_all(&state);
            }
            let (summary, failures) = outcome?;
            if json {
                print_json(&summary)?;
            } else {
                print!("{}", render_summary(&summary));
            }
            match failures.as_slice() {
                [] => Ok(()),
                [(stream, why)] => anyhow::bail!("stream `{stream}`: {why}"),
                _ => anyhow::bail!(
                    "{} streams failed:\n{}",
                    failures.len(),
                    failures
                        .iter()
                        .map(|(stream, why)| format!("  stream `{stream}`: {why}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
        Command::Inspect {
            connector,
            config,
            json,
        } => {
            let connection = config.as_deref().map(Connection::load).transpose()?;
            let runtime = Runtime::new()?;
            let inspection =
                crate::inspect::inspect(&runtime, &connector, connection.as_ref()).await?;
            if json {
                print_json(&inspection)
            } else {
                print!("{}", crate::inspect::render(&inspection));
                Ok(())
            }
        }
        Command::State { action } => state(action).await,
        Command::Serve { deployment, check } => serve(&deployment, check).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut script);
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&script).and_then(|()| stdout.flush()) {
                // A reader that stops early (`| head`) is not an error.
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(error).context("cannot write the completion script")
                }
                _ => Ok(()),
            }
        }
        Command::New {
            name,
            dir,
            sdk,
            sdk_git,
        } => crate::scaffold::run(&name, dir.as_deref(), sdk.as_deref(), sdk_git.as_deref()),
        Command::Demo {
            serve: true, port, ..
        } => crate::demo::serve(port).await,
        Command::Demo { dir, .. } => crate::demo::run(&dir, ui.progress()).await,
    }
}

async fn serve(path: &Path, check: bool) -> Result<()> {
    let deployment = crate::serve::Deployment::load(path)?;
    let runtime = Runtime::new()?;
    if check {
        let connections = deployment.jobs().count();
        let tenants = deployment.tenants.len();
        for job in deployment.jobs() {
            let at = || format!("tenant `{}` connection `{}`", job.tenant, job.name);
            let connector = Connector::load(&runtime, &job.connector).with_context(at)?;
            let connection = &job.connection;
            let spec = connector
                .spec(&runtime, &connection.limits)
                .await
                .with_context(at)?;
            connection
                .validate_config(connector.name(), &spec.config_schema)
                .with_context(at)?;
            connection
                .check_auth_scheme(connector.name(), &spec.auth_schemes)
                .with_context(at)?;
        }
        println!(
            "ok: `{}` is a valid deployment ({tenants} tenant{}, {connections} connection{})",
            path.display(),
            if tenants == 1 { "" } else { "s" },
            if connections == 1 { "" } else { "s" },
        );
        return Ok(());
    }
    let server = crate::serve::Server::start(runtime, deployment).await?;
    // The first line on stdout says where to reach it; tests and scripts read it.
    println!(
        "sluice serve: control API on http://{}",
        server.control_addr
    );
    server.run_until_signalled().await?;
    println!("sluice serve: stopped");
    Ok(())
}

/// `sluice replay`: each archived stream starts exactly where the live sync started (its state,
/// run context and first request are seeded as a pending checkpoint in the replay's own store),
/// then the sync loop runs with the archive answering instead of the network. Returns the
/// summary and the failed streams.
async fn replay(
    connector: &str,
    archive: &Path,
    config: Option<&Path>,
    output: &Path,
    state: &Path,
    only: &[String],
) -> Result<(RunSummary, Vec<(String, String)>)> {
    use crate::checkpoint::{Checkpoint, SinkPosition};
    use crate::protocol::{Next, SyncMode};

    let run_dir = crate::archive::find_run(archive)?;
    let archived = crate::archive::read_run(&run_dir)?;
    let Some((first, _)) = archived.first() else {
        anyhow::bail!("no archived stream in `{}`", run_dir.display());
    };
    let connection = match config {
        Some(path) => Connection::load(path)?,
        None => {
            let text = toml::to_string(&serde_json::json!({
                "name": first.connection,
                "config": first.config,
            }))
            .context("the archived config cannot be written as a connection file; pass --config")?;
            Connection::parse(&text, &run_dir.join("connection.toml"))?
        }
    };
    for name in only {
        anyhow::ensure!(
            archived.iter().any(|(header, _)| &header.stream == name),
            "stream `{name}` is not in the archive `{}`",
            run_dir.display()
        );
    }
    let runtime = Runtime::new()?;
    let connector = Connector::load(&runtime, connector)?;
    if connector.name() != first.connector {
        tracing::warn!(
            archived = %first.connector,
            replaying = connector.name(),
            "The archive was recorded with another connector."
        );
    }
    let store = CheckpointStore::open(state)?;
    let mut total: Option<RunSummary> = None;
    let mut failures = Vec::new();
    for (header, first_request) in &archived {
        let Some(first_request) = first_request else {
            continue;
        };
        if !only.is_empty() && !only.contains(&header.stream) {
            continue;
        }
        let pending = first_request
            .to_request()
            .map_err(|detail| anyhow::anyhow!("archive of stream `{}`: {detail}", header.stream))?;
        let seeded = Checkpoint {
            mode: header.mode,
            state: header.state.clone(),
            pending: Some(Next::Fetch(pending)),
            context: header.context.clone(),
            output: SinkPosition {
                offset_bytes: 0,
                records: 0,
                dead_letter_bytes: 0,
            },
            committed_at_ms: 0,
        };
        store
            .commit(&StreamKey::new(&connection.name, &header.stream), &seeded)
            .await?;
        let options = RunOptions {
            state_dir: state.to_owned(),
            output_dir: output.to_owned(),
            streams: vec![header.stream.clone()],
            full_refresh: header.mode == SyncMode::FullRefresh,
            replay: Some(run_dir.clone()),
            ..RunOptions::default()
        };
        let summary =
            match sync::run_with_store(&runtime, &connector, &connection, &options, &store).await {
                Ok(summary) => summary,
                Err(sync::Error::StreamsFailed {
                    summary,
                    failures: failed,
                    ..
                }) => {
                    failures.extend(failed);
                    *summary
                }
                Err(error) => return Err(error.into()),
            };
        match &mut total {
            None => total = Some(summary),
            Some(total) => {
                total.requests += summary.requests;
                total.elapsed_ms += summary.elapsed_ms;
                total.streams.extend(summary.streams);
            }
        }
    }
    let summary = total.context("no archived stream to replay")?;
    Ok((summary, failures))
}

/// `sluice state ...`.
async fn state(action: StateAction) -> Result<()> {
    match action {
        StateAction::List { state } => {
            let store = open_existing_store(&state)?;
            let entries: serde_json::Map<String, serde_json::Value> = store
                .list()?
                .into_iter()
                .map(|(key, checkpoint)| serde_json::to_value(checkpoint).map(|value| (key, value)))
                .collect::<Result<_, _>>()?;
            print_json(&entries)
        }
        StateAction::Show {
            state,
            connection,
            stream,
        } => {
            let store = open_existing_store(&state)?;
            let streams = match stream {
                Some(stream) => vec![stream],
                None => store.streams(&connection)?,
            };
            let mut shown = serde_json::Map::new();
            for stream in streams {
                let key = StreamKey::new(&connection, &stream);
                let Some(value) = store.export(&key)? else {
                    anyhow::bail!(
                        "no checkpoint `{key}` in `{}`; `sluice state show --connection {connection}` shows its streams",
                        state.display()
                    );
                };
                shown.insert(stream, value);
            }
            anyhow::ensure!(
                !shown.is_empty(),
                "no checkpoint of connection `{connection}` in `{}`; `sluice state list` shows what there is",
                state.display()
            );
            print_json(&shown)
        }
        StateAction::Set {
            state,
            output,
            connection,
            stream,
            file,
            json,
            force,
        } => {
            let (text, source) = match (file, json) {
                (Some(path), _) if path.as_os_str() == "-" => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .context("cannot read the checkpoint from stdin")?;
                    (text, "stdin".to_owned())
                }
                (Some(path), _) => (
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?,
                    format!("`{}`", path.display()),
                ),
                (None, Some(text)) => (text, "--json".to_owned()),
                (None, None) => {
                    anyhow::bail!("pass the checkpoint with --file FILE or --json TEXT")
                }
            };
            let key = StreamKey::new(&connection, &stream);
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|error| {
                anyhow::anyhow!(
                    "refused the checkpoint for `{key}`: {source} is not JSON ({error}); pass one stream's object as `sluice state show --stream {stream}` prints it"
                )
            })?;
            // One stream's entry of `state show` output is accepted as is.
            let value = match value {
                serde_json::Value::Object(mut object)
                    if object.len() == 1 && !object.contains_key("version") =>
                {
                    match object.remove(&stream) {
                        Some(inner) => inner,
                        None => serde_json::Value::Object(object),
                    }
                }
                other => other,
            };
            let checkpoint = crate::checkpoint::decode_stored(&key, value.clone())?;
            let file = output.join(format!("{stream}.jsonl"));
            let size = match std::fs::metadata(&file) {
                Ok(metadata) => metadata.len(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot read `{}`", file.display()));
                }
            };
            let covered = checkpoint.output.offset_bytes;
            if covered > size {
                if force {
                    tracing::warn!(
                        file = %file.display(),
                        size,
                        covered,
                        "The checkpoint covers more output than the file holds; the next sync of the stream will not resume."
                    );
                } else {
                    anyhow::bail!(
                        "refused the checkpoint for `{key}`: the output file `{}` has {size} bytes; a checkpoint covering {covered} bytes (field `output.offset_bytes`) cannot be resumed; lower `output.offset_bytes`, pass the `--output` used with `sluice run`, or --force",
                        file.display()
                    );
                }
            }
            let store = open_existing_store(&state)?;
            let previous = store.load(&key)?;
            store.import(&key, value).await?;
            println!(
                "set `{key}` ({}): its next sync resumes from this checkpoint",
                if previous.is_some() {
                    "replaced"
                } else {
                    "new"
                }
            );
            Ok(())
        }
        StateAction::Reset {
            state,
            connection,
            stream,
        } => {
            let store = open_existing_store(&state)?;
            let streams = match stream {
                Some(stream) => vec![stream],
                None => store.streams(&connection)?,
            };
            anyhow::ensure!(
                !streams.is_empty(),
                "no checkpoint of connection `{connection}` in `{}`; `sluice state list` shows what there is",
                state.display()
            );
            for stream in streams {
                let key = StreamKey::new(&connection, &stream);
                if store.reset(&key).await? {
                    println!("reset `{key}`: its next sync starts from scratch");
                } else {
                    anyhow::bail!(
                        "no checkpoint `{key}` in `{}`; `sluice state list` shows what there is",
                        state.display()
                    );
                }
            }
            Ok(())
        }
    }
}

/// Validates a connection file against its connector, offline, and says what it offers.
async fn check(args: &ConnectionArgs) -> Result<String> {
    let (runtime, connector, connection) = load(args)?;
    let spec = connector.spec(&runtime, &connection.limits).await?;
    connection.validate_config(connector.name(), &spec.config_schema)?;
    connection.check_auth_scheme(connector.name(), &spec.auth_schemes)?;
    if let Some(auth) = &connection.auth {
        // Every secret must be readable now; nothing is sent.
        auth.resolve(crate::http::AllowedHosts::parse(&[] as &[String])?)?;
    }
    connection.tls.resolve()?;
    connector
        .check(&runtime, &connection.limits, connection.config_json())
        .await?;
    let catalog = connector
        .discover(&runtime, &connection.limits, connection.config_json())
        .await?;
    Ok(format!(
        "ok: `{}` is a valid connection for connector `{}` ({} stream{}: {})",
        connection.path.display(),
        connector.name(),
        catalog.streams.len(),
        if catalog.streams.len() == 1 { "" } else { "s" },
        catalog
            .streams
            .iter()
            .map(|stream| stream.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Writes one protocol message as a line on stdout.
fn print_message(message: &serde_json::Value) -> Result<()> {
    messages::write_stdout(&format!("{message}\n"))?;
    Ok(())
}

/// Error kinds an operator fixes in the connection file or its credentials (Airbyte's
/// `config_error`); every other failure is a `system_error`.
fn is_config_error(kind: &str) -> bool {
    matches!(
        kind,
        "config"
            | "secret"
            | "unknown_stream"
            | "unsupported_sync_mode"
            | "reauthorization_required"
    )
}

/// The end of `sluice run --format airbyte|singer`: stdout carries only protocol messages, so
/// the summary goes into an Airbyte LOG message (Singer: stderr), and each failure into an
/// Airbyte TRACE error.
fn report_run(
    format: RunFormat,
    json: bool,
    summary: Option<&RunSummary>,
    outcome: &Result<RunSummary, sync::Error>,
) -> Result<()> {
    let text = match summary {
        Some(summary) if json => serde_json::to_string(summary).context("cannot render JSON")?,
        Some(summary) => render_summary(summary),
        None => String::new(),
    };
    if format == RunFormat::Airbyte {
        if !text.is_empty() {
            print_message(&messages::airbyte_log("INFO", text.trim_end()))?;
        }
        match outcome {
            Ok(_) => {}
            Err(sync::Error::StreamsFailed { summary, .. }) => {
                for stream in &summary.streams {
                    if let Some(error) = &stream.error {
                        let message = format!("stream `{}`: {error}", stream.name);
                        let config = stream.error_kind.is_some_and(is_config_error);
                        print_message(&messages::airbyte_error_trace(&message, config))?;
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                let config = is_config_error(error.kind());
                print_message(&messages::airbyte_error_trace(&message, config))?;
            }
        }
    } else if !text.is_empty() {
        eprint!("{text}");
        if !text.ends_with('\n') {
            eprintln!();
        }
    }
    Ok(())
}

fn load(args: &ConnectionArgs) -> Result<(Runtime, Connector, Connection)> {
    let connection = Connection::load(&args.config)?;
    let runtime = Runtime::new()?;
    let connector = Connector::load(&runtime, &args.connector.connector)?;
    Ok((runtime, connector, connection))
}

fn open_existing_store(dir: &Path) -> Result<CheckpointStore> {
    anyhow::ensure!(
        dir.is_dir(),
        "no state directory at `{}`; pass the `--state` used with `sluice run`",
        dir.display()
    );
    Ok(CheckpointStore::open(dir)?)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
    print_stdout(&text)
}

/// Writes `text` and a newline to stdout. A reader that went away (`sluice state list | head`)
/// is not an error: there is no one left to tell.
fn print_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// The human-readable run summary: one line per stream, then where things went.
pub fn render_summary(summary: &RunSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Synced connection `{}` with connector `{}` in {:.2} s: {} requests, {} retries.",
        summary.connection,
        summary.connector,
        summary.elapsed_ms as f64 / 1000.0,
        summary.requests,
        summary.retries,
    );
    let _ = writeln!(
        out,
        "  {:<16} {:<12} {:>9} {:>9} {:>7} {:>9}  output",
        "stream", "start", "new", "total", "pages", "requests"
    );
    for stream in &summary.streams {
        let _ = writeln!(
            out,
            "  {:<16} {:<12} {:>9} {:>9} {:>7} {:>9}  {}{}",
            stream.name,
            stream.start.to_string(),
            stream.records,
            stream.records_total,
            stream.pages,
            stream.requests,
            stream.output.display(),
            if stream.error.is_some() {
                "  FAILED"
            } else {
                ""
            }
        );
    }
    for stream in &summary.streams {
        if stream.duplicates_skipped > 0 {
            let _ = writeln!(
                out,
                "  {}: {} records already written unchanged were skipped",
                stream.name, stream.duplicates_skipped
            );
        }
        if let Some(latest) = &stream.latest_output {
            let _ = writeln!(
                out,
                "  {}: latest version of each record in {}",
                stream.name,
                latest.display()
            );
        }
        if stream.dead_letters > 0 {
            let _ = writeln!(
                out,
                "  {}: {} non-conforming records in {}.dead_letter.jsonl",
                stream.name, stream.dead_letters, stream.name
            );
        }
        for drift in &stream.schema_drift {
            let _ = writeln!(
                out,
                "  {}: schema drift at `{}`: {} ({} records)",
                stream.name,
                drift.path,
                drift.describe(),
                drift.records
            );
        }
    }
    let _ = writeln!(out, "Checkpoints: {}", summary.state_dir.display());
    out
}
