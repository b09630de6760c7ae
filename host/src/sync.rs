//! The sync loop: for each stream, ask the guest for a request, send it through the host's
//! transport, hand the response back, append the records to the sink, then commit the
//! checkpoint.
//!
//! This is the only place that knows the order of those steps, and the order is what makes
//! resume exact: records are flushed to disk *before* the checkpoint that covers them is
//! committed, and on start the sink is cut back to the last committed position. Kill the
//! process at any instant and the next run produces the same output as an uninterrupted one.

use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, MaybeDone};
use futures_util::{FutureExt as _, StreamExt as _};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::checkpoint::{self, Checkpoint, CheckpointStore, RecordDigest, SinkPosition, StreamKey};
use crate::config::{Connection, StreamMode};
use crate::connector::{Connector, Session, now_ms};
use crate::dedup::{self, SeenFilter};
use crate::http::{self, AllowedHosts, EgressPolicy, HttpRequest, Transport, TransportStats};
use crate::protocol::{
    ConnectorRequest, Next, RateLimitHint, RunContext, StreamInfo, SyncMode, excerpt,
};
use crate::rate_limit::SharedBudget;
use crate::sandbox::{self, Limits, Runtime};
use crate::schema::{self, FieldDrift, SchemaChecker, SchemaSource};
use crate::secrets::ResolveOptions;
use crate::sink::{self, JsonlSink};

mod committer;
mod prefetch;

use committer::Committer;

/// What to sync and where.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Directory of the checkpoint store.
    pub state_dir: PathBuf,
    /// Directory of the JSON-lines output (one file per stream).
    pub output_dir: PathBuf,
    /// Streams to sync; empty means all of them.
    pub streams: Vec<String>,
    /// Ignore saved cursors and read every record again, replacing previous output.
    pub full_refresh: bool,
    /// When cancelled, each stream stops at its next checkpoint (after the page in flight is
    /// committed) with [`Error::Stopped`]; the next run resumes from there.
    pub stop: Option<CancellationToken>,
    /// Rate budgets shared with other connections that use the same credential on the same
    /// upstream host (see [`SharedBudget`]).
    pub rate_budgets: Vec<SharedBudget>,
    /// Keep every response the connector is handed, with its request, in a raw archive
    /// (see [`crate::archive`]).
    pub archive: Option<crate::archive::ArchiveTarget>,
    /// Replay: answer the connector from this archived run directory instead of the network.
    /// No transport is built and no credential is resolved.
    pub replay: Option<PathBuf>,
    /// Where records go: JSON-lines files in `output_dir` (default), or Airbyte/Singer
    /// messages on stdout (checkpoints are kept either way).
    pub format: sink::Format,
    /// Where to report progress (pages, waits, retries) as the run goes; `None`: nowhere.
    pub progress: Option<crate::progress::SharedProgress>,
}

/// How a stream's sync started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// From nothing: no checkpoint, or a full refresh.
    Fresh,
    /// From the saved cursor of a completed previous sync.
    Incremental,
    /// Continuing a sync that was interrupted mid-way.
    Resumed,
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Start::Fresh => "fresh",
            Start::Incremental => "incremental",
            Start::Resumed => "resumed",
        })
    }
}

/// The outcome of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub name: String,
    /// Mode of this sync.
    pub mode: SyncMode,
    /// How it started.
    pub start: Start,
    /// Records written in this run.
    pub records: u64,
    /// Records in the output file after this run.
    pub records_total: u64,
    /// Pages processed in this run.
    pub pages: u64,
    /// Requests sent in this run (prefetched ones included, used or not).
    pub requests: u64,
    /// Responses of guessed requests that the connector then asked for (`[sync] prefetch`).
    pub prefetched: u64,
    /// Guest log lines dropped because the connector spent its log budget
    /// (`max_log_lines_per_sync`).
    pub guest_log_lines_dropped: u64,
    /// Whether the output keeps one record per primary key (`incremental_dedup`): the latest
    /// versions are in `latest_output`.
    pub dedup: bool,
    /// Records dropped because the same version was already written (lookback re-reads,
    /// records repeated across pages).
    pub duplicates_skipped: u64,
    /// `<stream>.latest.jsonl`: one line per primary key, for `incremental_dedup` streams.
    pub latest_output: Option<PathBuf>,
    /// Where the schema records were checked against came from (declared or inferred).
    pub schema: Option<SchemaSource>,
    /// Fields that drifted from the schema in this sync: new, missing, changed type.
    pub schema_drift: Vec<FieldDrift>,
    /// Non-conforming records sent to `<stream>.dead_letter.jsonl` in this sync
    /// (`schema_policy = "dead_letter"`).
    pub dead_letters: u64,
    /// Time spent inside guest calls, in milliseconds.
    pub guest_cpu_ms: u64,
    /// The most linear memory the guest held at once, in bytes.
    pub guest_memory_peak_bytes: u64,
    /// The output file.
    pub output: PathBuf,
    /// Why the stream failed, if it did.
    pub error: Option<String>,
    /// The stable key of that failure ([`Error::kind`]), e.g. `memory_limit_exceeded`.
    pub error_kind: Option<&'static str>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Connection name.
    pub connection: String,
    /// Connector name.
    pub connector: String,
    /// Per-stream outcomes.
    pub streams: Vec<StreamSummary>,
    /// Requests sent in total.
    pub requests: u64,
    /// Retried attempts in total.
    pub retries: u64,
    /// What the HTTP transport did: attempts, retries, 429s, time waited, bytes.
    pub http: TransportStats,
    /// Where the checkpoints are.
    pub state_dir: PathBuf,
    /// Where the output is.
    pub output_dir: PathBuf,
    /// Wall time of the run in milliseconds.
    pub elapsed_ms: u64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connector failed or broke a limit.
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    /// The connection file is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The checkpoint store failed.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::Error),
    /// The output could not be written.
    #[error(transparent)]
    Sink(#[from] sink::Error),
    /// The HTTP transport could not be set up, or a request failed for good.
    #[error("{context}: {error}")]
    Http {
        /// What was being done.
        context: String,
        /// The transport error (part of the message, so not also a `source`).
        error: http::Error,
    },
    /// A credential could not be resolved.
    #[error(transparent)]
    Secret(#[from] crate::secrets::Error),
    /// The raw archive could not be written, or a replay diverged from it.
    #[error(transparent)]
    Archive(#[from] crate::archive::Error),
    /// The operator named a stream the connector does not have.
    #[error("connector has no stream `{name}`; its streams are: {available}")]
    UnknownStream {
        /// The name given.
        name: String,
        /// The streams the connector offers.
        available: String,
    },
    /// A per-sync limit was reached.
    #[error(
        "stream `{stream}` reached {limit} = {value}; raise it in [limits] if this is expected"
    )]
    Limit {
        /// The stream.
        stream: String,
        /// The limit's config key.
        limit: &'static str,
        /// Its value.
        value: u64,
    },
    /// A record broke the stream's schema under `schema_policy = "fail"`, or the connector's
    /// schema is invalid.
    #[error(transparent)]
    Schema(#[from] schema::Error),
    /// The operator asked for a sync mode the stream cannot do.
    #[error(
        "stream `{stream}` cannot sync as `{mode}`: {reason}; change [streams.{stream}] sync_mode"
    )]
    UnsupportedMode {
        /// The stream.
        stream: String,
        /// The mode asked for.
        mode: &'static str,
        /// Why not.
        reason: String,
    },
    /// The connector asked for a request it already sent in this sync: its cursor repeats or
    /// cycles, and following it would never end.
    #[error(
        "stream `{stream}`: the connector asked again for `{request}`, which it already fetched in this sync; its pagination cursor repeats or cycles. The last good checkpoint is kept; fix the connector or its pagination config, or reset the stream"
    )]
    CursorCycle {
        /// The stream.
        stream: String,
        /// The repeated request.
        request: String,
    },
    /// The run was asked to stop ([`RunOptions::stop`]); the stream's last page is committed
    /// and its next sync resumes from there.
    #[error("stream `{stream}` stopped at a checkpoint because the sync was asked to stop")]
    Stopped {
        /// The stream.
        stream: String,
    },
    /// A bug in Sluice itself (a task of the sync failed); the last checkpoint is intact.
    #[error("internal error: {0}; please report it")]
    Internal(String),
    /// Some streams failed; the others completed. Checkpoints of failed streams are intact.
    #[error("{}", describe_failures(failures, *total))]
    StreamsFailed {
        /// Stream name and error, per failed stream.
        failures: Vec<(String, String)>,
        /// Streams in the run.
        total: usize,
        /// What did complete.
        summary: Box<RunSummary>,
    },
}

impl Error {
    /// A stable key for logs, metrics and tests (`error.type`): the sandbox's or the HTTP
    /// transport's own key, or the name of a per-sync limit.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Sandbox(error) => error.kind(),
            Error::Config(_) => "config",
            Error::Checkpoint(_) => "checkpoint",
            Error::Sink(_) => "sink",
            Error::Http { error, .. } => error.kind(),
            Error::Secret(_) => "secret",
            Error::Archive(crate::archive::Error::Diverged { .. }) => "replay_diverged",
            Error::Archive(crate::archive::Error::Exhausted { .. }) => "replay_exhausted",
            Error::Archive(crate::archive::Error::Unfinished { .. }) => "replay_unfinished",
            Error::Archive(_) => "archive",
            Error::UnknownStream { .. } => "unknown_stream",
            Error::Limit { limit, .. } => limit,
            Error::Stopped { .. } => "stopped",
            Error::UnsupportedMode { .. } => "unsupported_sync_mode",
            Error::Schema(error) => error.kind(),
            Error::CursorCycle { .. } => "cursor_cycle",
            Error::Internal(_) => "internal",
            Error::StreamsFailed { .. } => "streams_failed",
        }
    }
}

/// Syncs the selected streams of `connection` with `connector`. Streams run one after the
/// other; a failing stream does not stop the others, and the run then returns
/// [`Error::StreamsFailed`] with the summary of what completed.
pub async fn run(
    runtime: &Runtime,
    connector: &Connector,
    connection: &Connection,
    options: &RunOptions,
) -> Result<RunSummary, Error> {
    let span =
        tracing::info_span!("sync", connector = connector.name(), connection = %connection.name);
    let store = CheckpointStore::open(&options.state_dir)?;
    run_inner(runtime, connector, connection, options, &store)
        .instrument(span)
        .await
}

/// [`run`] with an already open checkpoint store (or a tenant's namespace of one), for a
/// process that runs many syncs over one state directory. `options.state_dir` is only reported.
pub async fn run_with_store(
    runtime: &Runtime,
    connector: &Connector,
    connection: &Connection,
    options: &RunOptions,
    store: &CheckpointStore,
) -> Result<RunSummary, Error> {
    let span =
        tracing::info_span!("sync", connector = connector.name(), connection = %connection.name);
    run_inner(runtime, connector, connection, options, store)
        .instrument(span)
        .await
}

async fn run_inner(
    runtime: &Runtime,
    connector: &Connector,
    connection: &Connection,
    options: &RunOptions,
    store: &CheckpointStore,
) -> Result<RunSummary, Error> {
    let started = Instant::now();
    let limits = &connection.limits;
    // `None` only if the limit is so large that the deadline is not representable: no deadline.
    let deadline = started.checked_add(Duration::from_secs(limits.max_sync_duration_secs));
    let spec = connector.spec(runtime, limits).await?;
    connection.validate_config(connector.name(), &spec.config_schema)?;
    connection.check_auth_scheme(connector.name(), &spec.auth_schemes)?;
    let config = connection.config_json();
    let catalog = connector.discover(runtime, limits, config).await?;
    let streams = select_streams(&catalog.streams, &options.streams)?;
    // Every `[streams.<name>]` must name a stream the connector has.
    let configured: Vec<String> = connection.streams.keys().cloned().collect();
    select_streams(&catalog.streams, &configured)?;

    // A replay answers from the archive: no transport, no credential.
    let transport = match options.replay {
        Some(_) => None,
        None => Some(
            build_transport(
                connection,
                &catalog.allowed_hosts,
                spec.rate_limit,
                Some(store),
            )?
            .with_shared_budgets(options.rate_budgets.clone())
            .with_progress(options.progress.clone()),
        ),
    };
    let archive_run = options.archive.as_ref().map(|target| {
        (
            target.run_dir(&connection.name, &new_run_id()),
            target.compression,
        )
    });

    // Each stream's sync as a future; `[sync] concurrent_streams` of them run at once. Their
    // requests share the connection's transport, so its rate limits hold across them.
    let transport_ref = transport.as_ref();
    let archive_run = archive_run.as_ref();
    let concurrency = usize::try_from(connection.sync.concurrent_streams)
        .unwrap_or(usize::MAX)
        .max(1);
    let syncs: Vec<_> = streams
        .iter()
        .copied()
        .map(|stream| {
            sync_stream(StreamSync {
                runtime,
                connector,
                connection,
                options,
                responses: match (transport_ref, &options.replay) {
                    (Some(transport), _) => Responses::Live {
                        transport,
                        recorder: archive_run.map(|(dir, compression)| {
                            crate::archive::Recorder::new(dir.clone(), *compression)
                        }),
                    },
                    (None, replay) => Responses::Replay {
                        run_dir: replay.as_deref(),
                        reader: None,
                    },
                },
                store,
                stream,
                deadline,
                summary: StreamSummary {
                    name: stream.name.clone(),
                    mode: SyncMode::FullRefresh,
                    start: Start::Fresh,
                    records: 0,
                    records_total: 0,
                    pages: 0,
                    requests: 0,
                    prefetched: 0,
                    guest_log_lines_dropped: 0,
                    dedup: false,
                    duplicates_skipped: 0,
                    latest_output: None,
                    schema: None,
                    schema_drift: Vec::new(),
                    dead_letters: 0,
                    guest_cpu_ms: 0,
                    guest_memory_peak_bytes: 0,
                    output: options.output_dir.join(format!("{}.jsonl", stream.name)),
                    error: None,
                    error_kind: None,
                },
            })
        })
        .collect();
    let mut syncs = futures_util::stream::iter(syncs).buffered(concurrency);

    let mut summaries = Vec::with_capacity(streams.len());
    let mut failures = Vec::new();
    while let Some((mut summary, outcome)) = syncs.next().await {
        if let Some(progress) = &options.progress {
            let error = outcome.as_ref().err().map(ToString::to_string);
            progress.event(&crate::progress::Event::StreamFinished {
                stream: &summary.name,
                records: summary.records,
                pages: summary.pages,
                error: error.as_deref(),
            });
        }
        if let Err(error) = outcome {
            tracing::info!(stream = %summary.name, error = %error, "Stream failed; its last checkpoint is intact.");
            failures.push((summary.name.clone(), error.to_string()));
            summary.error = Some(error.to_string());
            summary.error_kind = Some(error.kind());
            if error.kind() == "reauthorization_required" {
                // Every further request would be refused the same way: stop here.
                tracing::error!(
                    "error.type" = "reauthorization_required",
                    "The OAuth2 refresh token was refused; the sync stops until the connection is authorised again."
                );
                summaries.push(summary);
                break;
            }
        }
        summaries.push(summary);
    }
    drop(syncs);

    let stats = transport.as_ref().map(Transport::stats).unwrap_or_default();
    let summary = RunSummary {
        connection: connection.name.clone(),
        connector: connector.name().to_owned(),
        requests: summaries.iter().map(|stream| stream.requests).sum(),
        retries: stats.retries,
        http: stats,
        streams: summaries,
        state_dir: options.state_dir.clone(),
        output_dir: options.output_dir.clone(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(Error::StreamsFailed {
            total: summary.streams.len(),
            failures,
            summary: Box::new(summary),
        })
    }
}

/// Runs one stream's sync; returns its summary and how it ended.
async fn sync_stream(mut sync: StreamSync<'_>) -> (StreamSummary, Result<(), Error>) {
    let span = tracing::info_span!("stream", stream = %sync.stream.name);
    let outcome = match sync.run().instrument(span).await {
        // A replay must also have used every archived response.
        Ok(()) => match &mut sync.responses {
            Responses::Replay {
                reader: Some(reader),
                ..
            } => reader.finish().map_err(Error::from),
            _ => Ok(()),
        },
        error => error,
    };
    (sync.summary, outcome)
}

/// One line for a run of one stream; otherwise a count and one line per failed stream.
fn describe_failures(failures: &[(String, String)], total: usize) -> String {
    match failures {
        [(name, why)] if total == 1 => format!("stream `{name}`: {why}"),
        _ => {
            let lines: Vec<String> = failures
                .iter()
                .map(|(name, why)| format!("  stream `{name}`: {why}"))
                .collect();
            format!(
                "{} of {total} streams failed:\n{}",
                failures.len(),
                lines.join("\n")
            )
        }
    }
}

/// The streams to sync, in the connector's order, or an error naming an unknown one.
fn select_streams<'a>(
    available: &'a [StreamInfo],
    wanted: &[String],
) -> Result<Vec<&'a StreamInfo>, Error> {
    if wanted.is_empty() {
        return Ok(available.iter().collect());
    }
    for name in wanted {
        if !available.iter().any(|stream| &stream.name == name) {
            return Err(Error::UnknownStream {
                name: name.clone(),
                available: available
                    .iter()
                    .map(|stream| format!("`{}`", stream.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(available
        .iter()
        .filter(|stream| wanted.contains(&stream.name))
        .collect())
}

/// The connection's transport: egress policy from the connector's declared hosts narrowed by
/// the operator, the credential bound to the declared hosts (saving rotated OAuth2 refresh
/// tokens in `store`), and the connector's suggested rate limit (unless the operator set one).
fn build_transport(
    connection: &Connection,
    declared_hosts: &[String],
    rate_limit: Option<RateLimitHint>,
    store: Option<&CheckpointStore>,
) -> Result<Transport, Error> {
    let http_error = |context: &str| {
        let context = context.to_owned();
        move |error| Error::Http { context, error }
    };
    let declared = AllowedHosts::parse(declared_hosts)
        .map_err(http_error("the connector declared invalid hosts"))?;
    let operator = connection
        .network
        .allowed_hosts
        .as_deref()
        .map(AllowedHosts::parse)
        .transpose()
        .map_err(http_error("[network] allowed_hosts is invalid"))?;
    let policy = EgressPolicy::new(
        declared,
        operator,
        connection.network.allow_private_networks,
    );
    let credential = match &connection.auth {
        Some(auth) => {
            let options = ResolveOptions {
                allow_private_networks: connection.network.allow_private_networks,
                store: store
                    .map(|store| store.credential_slot(&connection.name))
                    .transpose()?,
            };
            Some(auth.resolve_with(policy.declared().clone(), options)?)
        }
        None => None,
    };
    let tls = connection
        .tls
        .resolve()
        .map_err(http_error("cannot set up TLS"))?;
    Transport::with_tls(&connection.http, policy, credential, tls)
        .and_then(|transport| transport.with_rate_limit_hint(rate_limit))
        .map_err(http_error("cannot set up the HTTP client"))
}

/// One stream's sync in progress.
struct StreamSync<'a> {
    runtime: &'a Runtime,
    connector: &'a Connector,
    connection: &'a Connection,
    options: &'a RunOptions,
    responses: Responses<'a>,
    store: &'a CheckpointStore,
    stream: &'a StreamInfo,
    /// When the whole sync must end (`max_sync_duration_secs`).
    deadline: Option<Instant>,
    summary: StreamSummary,
}

/// Where a stream's responses come from.
enum Responses<'a> {
    /// The network, through the connection's transport; each exchange is also archived when
    /// the run keeps a raw archive.
    Live {
        transport: &'a Transport,
        recorder: Option<crate::archive::Recorder>,
    },
    /// An archived run, in order (the stream's file is opened at the first request).
    Replay {
        run_dir: Option<&'a std::path::Path>,
        reader: Option<Box<crate::archive::Reader>>,
    },
}

/// Where a stream's sync starts from.
struct Origin {
    start: Start,
    mode: SyncMode,
    state: Option<String>,
    context: RunContext,
    /// The step to take first, when resuming; otherwise the guest's `begin` decides.
    pending: Option<Next>,
    /// Committed output position to cut the sink back to.
    output: SinkPosition,
    /// Keep a latest-version-per-key view (`incremental_dedup`).
    dedup: bool,
}

/// A response on its way: awaited, it keeps its result until taken.
type InFlight<'a> = Pin<Box<MaybeDone<BoxFuture<'a, Result<http::HttpResponse, http::Error>>>>>;

/// A guessed next request, sent while the guest parses the current response.
struct Prefetch<'a> {
    request: ConnectorRequest,
    response: InFlight<'a>,
}

impl<'a> Prefetch<'a> {
    /// Sends `request` (as `http_request`): polled once, which puts it on the wire; the rest
    /// happens when the response is awaited, or not at all if it is dropped.
    async fn start(
        transport: &'a Transport,
        request: ConnectorRequest,
        http_request: HttpRequest,
    ) -> Self {
        let mut response = Box::pin(futures_util::future::maybe_done(
            transport.send(http_request).boxed(),
        ));
        std::future::poll_fn(|cx| {
            let _ = response.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        Self { request, response }
    }
}

impl<'a> StreamSync<'a> {
    fn limits(&self) -> &Limits {
        &self.connection.limits
    }

    fn report(&self, event: &crate::progress::Event<'_>) {
        if let Some(progress) = &self.options.progress {
            progress.event(event);
        }
    }

    async fn run(&mut self) -> Result<(), Error> {
        let key = StreamKey::new(&self.connection.name, &self.stream.name);
        let origin = self.origin(self.store.load(&key)?)?;
        self.summary.start = origin.start;
        self.summary.mode = origin.mode;
        self.summary.dedup = origin.dedup;
        tracing::info!(start = %origin.start, "Stream sync starting.");
        self.report(&crate::progress::Event::StreamStarted {
            stream: &self.stream.name,
        });
        // The seen index guards incremental streams, whose lookback windows re-read records.
        let seen = match origin.mode {
            SyncMode::Incremental => SeenFilter::new(&self.stream.primary_key),
            SyncMode::FullRefresh => None,
        };
        let fresh = origin.start == Start::Fresh;
        let policy = self
            .connection
            .stream_settings(&self.stream.name)
            .schema_policy;
        let mut schema = SchemaChecker::new(&self.stream.name, &self.stream.json_schema, policy)?;
        self.summary.schema = Some(schema.source());
        let dead_letter_path = self
            .options
            .output_dir
            .join(format!("{}.dead_letter.jsonl", self.stream.name));
        // Opened only when there is something to cut back or write.
        let mut dead_letter_sink = if origin.output.dead_letter_bytes > 0 {
            Some(JsonlSink::open(
                &dead_letter_path,
                origin.output.dead_letter_bytes,
            )?)
        } else {
            None
        };

        let mut sink = sink::Output::open(
            self.options.format,
            &sink::StreamOutput {
                name: &self.stream.name,
                json_schema: &self.stream.json_schema,
                primary_key: &self.stream.primary_key,
                path: &self.summary.output,
            },
            origin.output.offset_bytes,
        )?;
        let mut position = origin.output;
        let state = origin.state;
        let context = origin.context;
        let mode = origin.mode;
        let config = self.connection.config_json();
        let mut session = self
            .connector
            .session(self.runtime, self.limits(), context.started_at_ms)
            .await?;

        let next = match origin.pending {
            Some(pending) => pending,
            None => {
                let first = session
                    .begin(config, &self.stream.name, state.as_deref(), &context)
                    .await?;
                // (Records without bytes: stdout output, which has no file position.)
                if origin.start == Start::Fresh
                    && (position.offset_bytes > 0 || position.records > 0)
                {
                    // A full refresh replaces earlier output: commit "nothing written yet"
                    // first, so a crash right after the cut cannot leave a checkpoint that
                    // points past the end of the file.
                    position = SinkPosition::default();
                    let pending = (first != Next::Done).then_some(&first);
                    self.commit(
                        &key,
                        &Progress {
                            mode,
                            state: &state,
                            context: &context,
                            position: &position,
                        },
                        pending,
                        &[],
                        true,
                    )
                    .await?;
                    sink.reset()?;
                    if let Some(dead_letters) = dead_letter_sink.as_mut() {
                        dead_letters.reset()?;
                    }
                } else if first != Next::Done {
                    self.commit(
                        &key,
                        &Progress {
                            mode,
                            state: &state,
                            context: &context,
                            position: &position,
                        },
                        Some(&first),
                        &[],
                        fresh,
                    )
                    .await?;
                }
                first
            }
        };

        let mut committer = Committer::spawn(committer::Writer {
            store: self.store.clone(),
            key: key.clone(),
            mode,
            context: context.clone(),
            state: state.clone(),
            position,
            files: Some(committer::Files {
                sink,
                dead_letters: dead_letter_sink,
                dead_letter_path,
            }),
            seen,
            every: self.connection.checkpoint,
            answer_before_flush: self.options.format.writes_file(),
        });
        let read = self
            .read_pages(
                &mut session,
                &mut committer,
                &mut schema,
                next,
                state,
                &context,
            )
            .await;
        // Whatever ended the reading, the pages already checked and written are committed.
        let finished = committer.finish().await;
        read?;
        let finished = finished?;
        let position = finished.position;
        self.summary.guest_log_lines_dropped = session.dropped_log_lines();
        if session.dropped_log_lines() > 0 {
            tracing::warn!(
                dropped = session.dropped_log_lines(),
                "Connector exceeded its log budget; lines were dropped."
            );
        }
        self.summary.records_total = position.records;
        self.summary.duplicates_skipped = finished.duplicates_skipped;
        self.summary.schema_drift = schema.drift();
        if origin.dedup && self.options.format.writes_file() {
            let latest = self
                .options
                .output_dir
                .join(format!("{}.latest.jsonl", self.stream.name));
            let written = dedup::write_latest(
                &self.summary.output,
                position.offset_bytes,
                &latest,
                &self.stream.primary_key,
            )
            .map_err(|error| sink::Error::Io {
                path: latest.clone(),
                error,
            })?;
            tracing::info!(records = written, path = %latest.display(), "Latest version of each record written.");
            self.summary.latest_output = Some(latest);
        }
        tracing::info!(
            records = self.summary.records,
            pages = self.summary.pages,
            duplicates_skipped = self.summary.duplicates_skipped,
            "Stream sync complete."
        );
        Ok(())
    }

    /// Reads pages from `next` on: sends each request, runs the guest on its response, checks
    /// the records (protocol, then `schema`), and hands the page to `committer`, which writes
    /// and commits it while the next page is fetched. Returns when the connector is done, or on the first error (the pages
    /// handed over before it are still the committer's to commit).
    async fn read_pages(
        &mut self,
        session: &mut Session,
        committer: &mut Committer,
        schema: &mut SchemaChecker,
        mut next: Next,
        mut state: Option<String>,
        context: &RunContext,
    ) -> Result<(), Error> {
        let connection = self.connection;
        let config = connection.config_json();
        let mut guard = CursorGuard::default();
        // The page the committer is working on.
        let mut in_flight: Option<committer::Pending> = None;
        // The request before this one, and the guess at the next one, in flight.
        let mut previous: Option<ConnectorRequest> = None;
        let mut prefetch: Option<Prefetch<'a>> = None;
        // Output that cannot be cut back on resume: a page's checkpoint is committed before
        // the next request goes out.
        let pipelined = self.options.format.writes_file();
        loop {
            self.summary.guest_cpu_ms =
                u64::try_from(session.cpu_used().as_millis()).unwrap_or(u64::MAX);
            self.summary.guest_memory_peak_bytes = session.peak_memory_bytes();
            if next != Next::Done
                && self
                    .options
                    .stop
                    .as_ref()
                    .is_some_and(CancellationToken::is_cancelled)
            {
                tracing::info!("Stopping at this checkpoint, as asked.");
                self.settle(committer, in_flight.take()).await?;
                return Err(Error::Stopped {
                    stream: self.stream.name.clone(),
                });
            }
            let request = match next {
                Next::Done => break,
                Next::Fetch(request) => {
                    guard.check_new(&self.stream.name, &request)?;
                    request
                }
                Next::BackOff { wait_ms, request } => {
                    // The page that asked for it is committed before the wait.
                    self.settle(committer, in_flight.take()).await?;
                    // Asking again after a back-off is what a back-off is for.
                    let wait_ms = wait_ms.min(self.limits().max_back_off_ms);
                    tracing::info!(wait_ms, "Connector asked to back off; waiting.");
                    self.report(&crate::progress::Event::Waiting {
                        host: None,
                        reason: crate::progress::WaitReason::BackOff,
                        until: Instant::now() + Duration::from_millis(wait_ms),
                    });
                    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    request
                }
            };
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return Err(self.sync_duration_exceeded());
            }
            if self.summary.requests >= self.limits().max_requests_per_sync {
                return Err(Error::Limit {
                    stream: self.stream.name.clone(),
                    limit: "max_requests_per_sync",
                    value: self.limits().max_requests_per_sync,
                });
            }
            let page_span = tracing::debug_span!("page", page = self.summary.pages + 1);
            let deadline = self.deadline;
            let fetch = self
                .fetch_page(
                    session,
                    config,
                    &state,
                    context,
                    &request,
                    (previous.as_ref(), &mut prefetch),
                )
                .instrument(page_span);
            // A page cut short by the deadline is dropped whole: nothing of it was written,
            // and the session (which may have been interrupted mid-call) is discarded.
            let page = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline.into(), fetch).await {
                    Ok(page) => page?,
                    Err(_) => return Err(self.sync_duration_exceeded()),
                },
                None => fetch.await?,
            };
            previous = Some(request);
            let (received, checked) =
                check_records(self.connector.name(), schema, page.records, self.limits())?;
            if let Some(new_state) = &page.state {
                validate_state(self.connector.name(), new_state, self.limits())?;
                state = Some(new_state.clone());
            }
            guard.count_page(
                &self.stream.name,
                received == 0,
                page.next == Next::Done,
                self.limits(),
            )?;
            // One page at a time in the committer: the one before must be done first.
            self.settle(committer, in_flight.take()).await?;
            next = page.next.clone();
            let pending = committer
                .submit(committer::PageWork {
                    checked,
                    state: page.state,
                    next: page.next,
                })
                .await?;
            if pipelined {
                in_flight = Some(pending);
            } else {
                self.settle(committer, Some(pending)).await?;
            }
        }
        self.settle(committer, in_flight).await
    }

    /// Waits for the committer to be done with the page it was handed, and counts it.
    async fn settle(
        &mut self,
        committer: &mut Committer,
        in_flight: Option<committer::Pending>,
    ) -> Result<(), Error> {
        let Some(pending) = in_flight else {
            return Ok(());
        };
        let done = committer.wait(pending).await?;
        self.summary.pages += 1;
        self.summary.records += done.written;
        self.summary.dead_letters += done.dead_letters;
        self.summary.records_total = done.records_total;
        tracing::debug!(
            records = done.written,
            total = done.records_total,
            "Page written."
        );
        self.report(&crate::progress::Event::PageCommitted {
            stream: &self.stream.name,
            records: self.summary.records,
            pages: self.summary.pages,
        });
        Ok(())
    }

    fn sync_duration_exceeded(&self) -> Error {
        Error::Limit {
            stream: self.stream.name.clone(),
            limit: "max_sync_duration_secs",
            value: self.limits().max_sync_duration_secs,
        }
    }

    /// Decides how the sync starts from the last checkpoint.
    fn origin(&self, checkpoint: Option<Checkpoint>) -> Result<Origin, Error> {
        let (mode, dedup) = self.mode()?;
        let origin = self.origin_in(mode, checkpoint);
        Ok(Origin { dedup, ..origin })
    }

    /// The sync mode: the operator's `[streams.<name>] sync_mode`, else incremental when the
    /// stream supports it; `--full-refresh` reads everything either way.
    fn mode(&self) -> Result<(SyncMode, bool), Error> {
        let settings = self.connection.stream_settings(&self.stream.name);
        let unsupported = |mode: &'static str, reason: String| Error::UnsupportedMode {
            stream: self.stream.name.clone(),
            mode,
            reason,
        };
        let wanted = settings.sync_mode;
        if matches!(
            wanted,
            Some(StreamMode::Incremental | StreamMode::IncrementalDedup)
        ) && !self.stream.supports_incremental()
        {
            return Err(unsupported(
                "incremental",
                "the connector offers only full refresh for it".to_owned(),
            ));
        }
        let dedup = wanted == Some(StreamMode::IncrementalDedup);
        if dedup && self.stream.primary_key.is_empty() {
            return Err(unsupported(
                "incremental_dedup",
                "the connector declares no primary key for it".to_owned(),
            ));
        }
        let mode = match wanted {
            _ if self.options.full_refresh => SyncMode::FullRefresh,
            Some(StreamMode::FullRefresh) => SyncMode::FullRefresh,
            Some(StreamMode::Incremental | StreamMode::IncrementalDedup) => SyncMode::Incremental,
            None if self.stream.supports_incremental() => SyncMode::Incremental,
            None => SyncMode::FullRefresh,
        };
        Ok((mode, dedup))
    }

    /// Where a stream in `mode` starts, from its last checkpoint.
    fn origin_in(&self, mode: SyncMode, checkpoint: Option<Checkpoint>) -> Origin {
        let fresh_context = || RunContext {
            run_id: new_run_id(),
            started_at_ms: now_ms(),
        };
        let Some(checkpoint) = checkpoint else {
            return Origin {
                start: Start::Fresh,
                mode,
                state: None,
                context: fresh_context(),
                pending: None,
                output: SinkPosition {
                    offset_bytes: 0,
                    records: 0,
                    dead_letter_bytes: 0,
                },
                dedup: false,
            };
        };
        if checkpoint.pending.is_some() && checkpoint.mode == mode {
            return Origin {
                start: Start::Resumed,
                mode,
                state: checkpoint.state,
                context: checkpoint.context,
                pending: checkpoint.pending,
                output: checkpoint.output,
                dedup: false,
            };
        }
        match mode {
            SyncMode::Incremental if checkpoint.state.is_some() => Origin {
                start: Start::Incremental,
                mode,
                state: checkpoint.state,
                context: fresh_context(),
                pending: None,
                output: checkpoint.output,
                dedup: false,
            },
            // Full refresh, or nothing to resume from: read everything again. The committed
            // output stays until the new sync commits its first checkpoint.
            _ => Origin {
                start: Start::Fresh,
                mode,
                state: None,
                context: fresh_context(),
                pending: None,
                output: checkpoint.output,
                dedup: false,
            },
        }
    }

    /// Sends `request` (or takes its prefetched response) and runs the guest on the response.
    /// With `[sync] prefetch`, the request guessed from `previous` and this one is sent before
    /// the guest runs and left in `prefetch` for the next call.
    async fn fetch_page(
        &mut self,
        session: &mut Session,
        config: &str,
        state: &Option<String>,
        context: &RunContext,
        request: &ConnectorRequest,
        (previous, prefetch): (Option<&ConnectorRequest>, &mut Option<Prefetch<'a>>),
    ) -> Result<crate::protocol::Page, Error> {
        let http_request = to_http_request(self.connector.name(), request)?;
        let target = format!(
            "{} {}",
            http_request.method,
            http::display_url(&http_request.url)
        );
        // A guess the connector did not confirm is dropped (the request is cancelled).
        let ahead = prefetch.take().filter(|ahead| ahead.request == *request);
        let response = match &mut self.responses {
            Responses::Live {
                transport,
                recorder,
            } => {
                let transport: &'a Transport = transport;
                let sent = match ahead {
                    Some(mut ahead) => {
                        self.summary.prefetched += 1;
                        ahead.response.as_mut().await;
                        ahead.response.as_mut().take_output().ok_or_else(|| {
                            Error::Internal("a prefetched response was taken twice".to_owned())
                        })?
                    }
                    None => {
                        self.summary.requests += 1;
                        transport.send(http_request).await
                    }
                };
                let response = sent.map_err(|error| Error::Http {
                    context: format!("request `{target}`"),
                    error,
                })?;
                if self.connection.sync.prefetch
                    && self.summary.requests < self.connection.limits.max_requests_per_sync
                    && let Some(guess) =
                        previous.and_then(|previous| prefetch::predict(previous, request))
                    && let Ok(guessed) = to_http_request(self.connector.name(), &guess)
                {
                    self.summary.requests += 1;
                    *prefetch = Some(Prefetch::start(transport, guess, guessed).await);
                }
                if let Some(recorder) = recorder {
                    // On disk before the connector sees it, so before its page is committed.
                    let exchange = crate::archive::Exchange {
                        request: crate::archive::ArchivedRequest::new(request),
                        response: crate::archive::ArchivedResponse::new(&response),
                    };
                    let header = || crate::archive::Header {
                        format: crate::archive::FORMAT.to_owned(),
                        version: crate::archive::VERSION,
                        connection: self.connection.name.clone(),
                        connector: self.connector.name().to_owned(),
                        stream: self.stream.name.clone(),
                        mode: self.summary.mode,
                        start: self.summary.start.to_string(),
                        state: state.clone(),
                        context: context.clone(),
                        config: self.connection.connector_config.clone(),
                    };
                    recorder.record(header, &exchange)?;
                }
                response
            }
            Responses::Replay { run_dir, reader } => {
                self.summary.requests += 1;
                let reader = match reader {
                    Some(reader) => reader,
                    None => reader.insert(Box::new(crate::archive::open_stream(
                        run_dir.unwrap_or(std::path::Path::new(".")),
                        &self.stream.name,
                    )?)),
                };
                reader.answer(request)?
            }
        };
        tracing::debug!(
            status = response.status,
            bytes = response.body.len(),
            "Response received."
        );
        Ok(session
            .next_page(
                config,
                &self.stream.name,
                state.as_deref(),
                context,
                request,
                response,
            )
            .await?)
    }

    /// Commits the checkpoint of `progress`, with `pending` as the next step and the page's
    /// seen-index entries (after dropping the stream's old ones, with `forget_seen`).
    async fn commit(
        &self,
        key: &StreamKey,
        progress: &Progress<'_>,
        pending: Option<&Next>,
        seen: &[(String, RecordDigest)],
        forget_seen: bool,
    ) -> Result<(), Error> {
        let checkpoint = Checkpoint {
            mode: progress.mode,
            state: progress.state.clone(),
            pending: pending.cloned(),
            context: progress.context.clone(),
            output: progress.position.clone(),
            committed_at_ms: now_ms(),
        };
        Ok(self
            .store
            .commit_page(key, &checkpoint, seen, forget_seen)
            .await?)
    }
}

/// What a checkpoint records of a stream's progress, besides the next step.
struct Progress<'a> {
    mode: SyncMode,
    state: &'a Option<String>,
    context: &'a RunContext,
    position: &'a SinkPosition,
}

/// Notices pagination that cannot end: a request the connector already sent in this sync
/// (a cursor that repeats or cycles), or a long run of empty pages that still ask for more.
#[derive(Debug, Default)]
struct CursorGuard {
    sent: std::collections::HashSet<[u8; 32]>,
    empty_in_a_row: u64,
}

impl CursorGuard {
    /// Fails if `request` was already sent in this sync; else remembers it.
    fn check_new(&mut self, stream: &str, request: &ConnectorRequest) -> Result<(), Error> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(request.method.as_bytes());
        hasher.update([0]);
        hasher.update(request.url.as_bytes());
        for (name, value) in &request.query {
            hasher.update([0]);
            hasher.update(name.as_bytes());
            hasher.update([1]);
            hasher.update(value.as_bytes());
        }
        hasher.update([2]);
        hasher.update(request.body.as_deref().unwrap_or_default());
        if self.sent.insert(hasher.finalize().into()) {
            Ok(())
        } else {
            Err(Error::CursorCycle {
                stream: stream.to_owned(),
                request: format!("{} {}", request.method, excerpt(&request.url)),
            })
        }
    }

    /// Counts a page, `empty` or not (`last`: the connector is done after it); fails past `max_empty_pages` empty
    /// pages in a row that still ask for more.
    fn count_page(
        &mut self,
        stream: &str,
        empty: bool,
        last: bool,
        limits: &Limits,
    ) -> Result<(), Error> {
        if !empty || last {
            self.empty_in_a_row = 0;
            return Ok(());
        }
        self.empty_in_a_row += 1;
        if self.empty_in_a_row > limits.max_empty_pages {
            return Err(Error::Limit {
                stream: stream.to_owned(),
                limit: "max_empty_pages",
                value: limits.max_empty_pages,
            });
        }
        Ok(())
    }
}

/// A new run id: time-ordered and unique enough to tell runs apart in logs.
fn new_run_id() -> String {
    format!("{:x}-{:08x}", now_ms(), rand::random::<u32>())
}

/// The connector returned data from `next-page` that the host refuses.
fn protocol_violation(connector: &str, detail: String) -> Error {
    Error::Sandbox(sandbox::Error::Protocol {
        connector: connector.to_owned(),
        call: "next-page",
        detail,
    })
}

/// Turns a guest's request into one the transport can send; a malformed URL or method is the
/// connector's bug.
fn to_http_request(connector: &str, request: &ConnectorRequest) -> Result<HttpRequest, Error> {
    let protocol = |detail: String| protocol_violation(connector, detail);
    let mut url = url::Url::parse(&request.url)
        .map_err(|error| protocol(format!("invalid request URL {:?}: {error}", request.url)))?;
    if !request.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &request.query {
            pairs.append_pair(name, value);
        }
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| protocol(format!("invalid HTTP method {:?}", request.method)))?;
    Ok(HttpRequest {
        method,
        url,
        headers: request.headers.clone(),
        body: request.body.clone(),
        authenticate: request.authenticate,
        idempotent: request.idempotent,
    })
}

/// Checks a page's records before anything of it is written: the protocol (one JSON object per
/// line, within the limits), then the stream's schema. Each record is parsed once, by the
/// schema check. Returns how many records the connector sent, and what to write.
fn check_records(
    connector: &str,
    schema: &mut SchemaChecker,
    records: String,
    limits: &Limits,
) -> Result<(u64, schema::CheckedPage), Error> {
    let received = validate_records(connector, &records, limits)?;
    let checked = schema.check_page(records).map_err(|error| match error {
        schema::Error::NotAnObject { record, detail, .. } => protocol_violation(
            connector,
            format!("record line {record} is not valid JSON: {detail}"),
        ),
        error => Error::Schema(error),
    })?;
    Ok((received, checked))
}

/// The cheap part of [`check_records`]: one non-blank line per record, each starting like a
/// JSON object, within the limits; returns how many there are.
fn validate_records(connector: &str, lines: &str, limits: &Limits) -> Result<u64, Error> {
    let protocol = |detail: String| protocol_violation(connector, detail);
    if lines.len() as u64 > limits.max_page_bytes {
        return Err(protocol(format!(
            "a page of {} bytes of records exceeds max_page_bytes = {}",
            lines.len(),
            limits.max_page_bytes
        )));
    }
    let mut count = 0u64;
    for (index, line) in lines.split('\n').enumerate() {
        if line.is_empty() && index > 0 && lines.ends_with('\n') {
            continue;
        }
        if line.trim().is_empty() {
            if lines.is_empty() {
                break;
            }
            return Err(protocol(format!("record line {} is empty", index + 1)));
        }
        if !line.trim_start().starts_with('{') {
            return Err(protocol(format!(
                "record line {} is not a JSON object: {}",
                index + 1,
                excerpt(line)
            )));
        }
        count += 1;
        if count > limits.max_records_per_page {
            return Err(protocol(format!(
                "a page has more than max_records_per_page = {} records",
                limits.max_records_per_page
            )));
        }
    }
    Ok(count)
}

/// Checks a new checkpoint state: JSON, within the size limit.
fn validate_state(connector: &str, state: &str, limits: &Limits) -> Result<(), Error> {
    let protocol = |detail: String| protocol_violation(connector, detail);
    if state.len() as u64 > limits.max_state_bytes {
        return Err(protocol(format!(
            "checkpoint state of {} bytes exceeds max_state_bytes = {}",
            state.len(),
            limits.max_state_bytes
        )));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(state)
        .map(|_| ())
        .map_err(|error| protocol(format!("checkpoint state is not valid JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `lines` as a page of a stream without a declared schema.
    fn check(lines: &str, limits: &Limits) -> Result<(u64, schema::CheckedPage), Error> {
        let mut schema = SchemaChecker::new(
            "s",
            &serde_json::Value::Null,
            crate::config::SchemaPolicy::Warn,
        )
        .expect("no schema");
        check_records("c", &mut schema, lines.to_owned(), limits)
    }

    #[test]
    fn records_are_counted_and_bad_lines_named() {
        let limits = Limits::default();
        assert_eq!(check("", &limits).unwrap().0, 0);
        let (count, page) = check("{\"a\":1}", &limits).unwrap();
        assert_eq!((count, page.kept.as_str()), (1, "{\"a\":1}\n"));
        assert_eq!(check("{}\n{}\n", &limits).unwrap().0, 2);
        let error = check("{}\n[1]\n", &limits).unwrap_err().to_string();
        assert!(
            error.contains("record line 2 is not a JSON object"),
            "{error}"
        );
        for (lines, line) in [("{\"a\":}", 1), ("{}\n{\"a\":1} trailing\n", 2)] {
            let error = check(lines, &limits).unwrap_err().to_string();
            assert!(
                error.contains(&format!("record line {line} is not valid JSON")),
                "{error}"
            );
            assert!(error.contains("returned invalid data"), "{error}");
        }
        let error = check("{}\n\n{}", &limits).unwrap_err().to_string();
        assert!(error.contains("record line 2 is empty"), "{error}");
    }

    #[test]
    fn record_limits_are_enforced_before_writing() {
        let limits = Limits {
            max_records_per_page: 2,
            ..Limits::default()
        };
        let error = validate_records("c", "{}\n{}\n{}", &limits)
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_records_per_page = 2"), "{error}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn small_limits() -> Limits {
            Limits {
                max_records_per_page: 8,
                max_page_bytes: 512,
                max_state_bytes: 64,
                ..Limits::default()
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever a guest returns as records, validation never panics, and what it
            /// accepts is within the limits and one JSON object per line.
            #[test]
            fn records_validation_accepts_only_bounded_json_objects(
                lines in "(\\{[a-z0-9\":,\\[\\] ]{0,12}\\}|[ -~]{0,6}|\n){0,16}"
            ) {
                let limits = small_limits();
                if let Ok((count, _)) = check(&lines, &limits) {
                    prop_assert!(count <= limits.max_records_per_page);
                    prop_assert!(lines.len() as u64 <= limits.max_page_bytes);
                    let parsed = lines
                        .split('\n')
                        .filter(|line| !line.is_empty())
                        .map(serde_json::from_str::<serde_json::Value>)
                        .collect::<Result<Vec<_>, _>>();
                    prop_assert!(parsed.is_ok(), "{lines:?}");
                    let parsed = parsed.unwrap_or_default();
                    prop_assert!(parsed.iter().all(serde_json::Value::is_object));
                    prop_assert_eq!(parsed.len() as u64, count);
                }
            }

            /// Arbitrary text as records never panics the host.
            #[test]
            fn arbitrary_records_never_panic(lines in "\\PC{0,200}") {
                let _ = check(&lines, &small_limits());
            }

            /// Accepted state is JSON within `max_state_bytes`.
            #[test]
            fn state_validation(state in "\\PC{0,100}") {
                let limits = small_limits();
                if validate_state("c", &state, &limits).is_ok() {
                    prop_assert!(state.len() as u64 <= limits.max_state_bytes);
                    prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&state).is_ok());
                }
            }

            /// Any method, URL and query pairs a guest sends either convert or are refused
            /// as the connector's bug; never a panic, and the query pairs are kept.
            #[test]
            fn request_conversion(
                method in "[A-Z]{0,8}|\\PC{0,8}",
                url in "(https?://)?\\PC{0,40}",
                query in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..4),
            ) {
                let request = ConnectorRequest {
                    method,
                    url,
                    query,
                    headers: vec![],
                    body: None,
                    authenticate: false,
                    idempotent: false,
                };
                match to_http_request("c", &request) {
                    Ok(http_request) => {
                        let pairs: Vec<(String, String)> = http_request
                            .url
                            .query_pairs()
                            .map(|(name, value)| (name.into_owned(), value.into_owned()))
                            .collect();
                        prop_assert!(pairs.ends_with(&request.query), "{pairs:?}");
                    }
                    Err(error) => prop_assert_eq!(error.kind(), "guest_protocol_violation"),
                }
            }
        }
    }

    #[test]
    fn query_pairs_are_appended_to_the_url() {
        let request = ConnectorRequest {
            method: "GET".into(),
            url: "http://h/p?a=1".into(),
            query: vec![("b".into(), "x y".into())],
            headers: vec![],
            body: None,
            authenticate: false,
            idempotent: false,
        };
        let http_request = to_http_request("c", &request).unwrap();
        assert_eq!(http_request.url.as_str(), "http://h/p?a=1&b=x+y");
    }
}
