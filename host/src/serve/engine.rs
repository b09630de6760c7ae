//! The scheduler of `sluice serve`: which syncs are due, which may start (global, per-tenant
//! concurrency and memory caps, fair round robin between tenants), running them on one shared
//! [`Runtime`], and what happened to them.
//!
//! Every sync gets a fresh store in the sandbox (see [`crate::connector::Session`]) but shares
//! the compiled component with every other connection whose connector has the same bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinError};
use tokio_util::sync::CancellationToken;

use super::deployment::{Deployment, Job};
use super::metrics::{self, ConnectionMetrics, Live};
use crate::checkpoint::{self, Checkpoint, CheckpointStore, StreamKey};
use crate::connector::Connector;
use crate::rate_limit::SharedBudget;
use crate::sandbox::Runtime;
use crate::sync::{self, RunOptions, RunSummary, StreamSummary};

/// Runs kept per connection for the control API.
const HISTORY: usize = 20;
/// Longest the scheduler sleeps without looking at the clock again.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How long aborted syncs get to wind down after the shutdown grace.
const ABORT_WAIT: Duration = Duration::from_secs(10);

/// A failure of a control operation, with the HTTP status it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServeError {
    /// HTTP status for the control API.
    pub status: u16,
    /// Stable key, e.g. `not_found`, `conflict`.
    pub kind: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

impl ServeError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }
}

/// Why `serve` could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The deployment file is wrong.
    #[error(transparent)]
    Deployment(#[from] super::deployment::Error),
    /// A connector could not be loaded.
    #[error("tenant `{tenant}` connection `{connection}`: {source}")]
    Connector {
        /// The tenant.
        tenant: String,
        /// The connection.
        connection: String,
        /// Why.
        #[source]
        source: Box<crate::sandbox::Error>,
    },
    /// The checkpoint store could not be opened.
    #[error(transparent)]
    Store(#[from] checkpoint::Error),
}

/// One ended (or running) sync as the control API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Run number, unique in this process.
    pub id: u64,
    /// `schedule` or `manual`.
    pub trigger: &'static str,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// End time; `None` while running.
    pub finished_at: Option<String>,
    /// `running`, `succeeded`, `failed`, `stopped` or `cancelled`.
    pub outcome: &'static str,
    /// The error, if it failed.
    pub error: Option<String>,
    /// Its stable key.
    pub error_kind: Option<&'static str>,
    /// Records written.
    pub records: u64,
    /// Requests sent.
    pub requests: u64,
    /// Per-stream outcomes, once ended.
    pub streams: Vec<StreamSummary>,
}

/// A connection as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    /// Tenant.
    pub tenant: String,
    /// Connection name.
    pub name: String,
    /// Connector source.
    pub connector: String,
    /// Its schedule, if any.
    pub schedule: Option<String>,
    /// When it is next due by its schedule (RFC 3339).
    pub next_run: Option<String>,
    /// Whether it waits for a slot.
    pub queued: bool,
    /// The sync running now, if any.
    pub running: Option<RunRecord>,
    /// Latest runs, newest first.
    pub last_runs: Vec<RunRecord>,
}

/// What a reload changed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReloadReport {
    /// Connections added, as `tenant/connection`.
    pub added: Vec<String>,
    /// Connections removed (a running sync of one finishes first).
    pub removed: Vec<String>,
    /// Connections kept, with their new settings for their next sync.
    pub kept: usize,
}

/// What triggering a sync did.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Triggered {
    /// Queued now.
    Queued,
    /// It was already waiting for a slot.
    AlreadyQueued,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Cancelled {
    /// The running sync was stopped; its committed pages stay.
    Running,
    /// It was only queued and is no longer.
    Dequeued,
}

/// Compiled connectors by SHA-256 of their bytes.
type ConnectorCache = HashMap<[u8; 32], Arc<Connector>>;

/// The scheduler and everything it shares with its syncs and the control API.
pub struct Engine {
    runtime: Runtime,
    store: CheckpointStore,
    state: Mutex<State>,
    connectors: Mutex<ConnectorCache>,
    /// Wakes the scheduler (a sync ended, one was triggered, a reload happened).
    wake: Notify,
    /// Wakes shutdown when a sync ends.
    ended: Notify,
    /// Cancelled on shutdown: nothing new starts.
    draining: CancellationToken,
    next_run_id: AtomicU64,
}

struct State {
    deployment: Arc<Deployment>,
    tenants: BTreeMap<String, TenantState>,
    /// Shared rate budgets by (host, credential).
    budgets: HashMap<(String, String), SharedBudget>,
    running: usize,
    /// Index of the tenant the next dispatch round starts with.
    round_robin: usize,
}

#[derive(Default)]
struct TenantState {
    queue: VecDeque<String>,
    running: usize,
    memory_in_use: u64,
    connections: BTreeMap<String, ConnState>,
}

struct ConnState {
    job: Arc<Job>,
    connector: Arc<Connector>,
    next_due: Option<DateTime<Utc>>,
    queued: Option<&'static str>,
    running: Option<Running>,
    history: VecDeque<RunRecord>,
    metrics: ConnectionMetrics,
    /// Removed by a reload while running: dropped when the sync ends.
    removed: bool,
}

struct Running {
    record: RunRecord,
    stop: CancellationToken,
    abort: AbortHandle,
    memory: u64,
}

impl Engine {
    /// Opens the state directory, compiles the deployment's connectors and starts scheduling.
    pub fn start(runtime: Runtime, deployment: Deployment) -> Result<Arc<Self>, StartError> {
        let store = CheckpointStore::open(&deployment.state_dir)?;
        let mut cache = ConnectorCache::new();
        let compiled = compile_all(&runtime, &deployment, &mut cache)?;
        let (tenants, _) = merge(&deployment, &compiled, BTreeMap::new());
        let engine = Arc::new(Self {
            runtime,
            store,
            state: Mutex::new(State {
                deployment: Arc::new(deployment),
                tenants,
                budgets: HashMap::new(),
                running: 0,
                round_robin: 0,
            }),
            connectors: Mutex::new(cache),
            wake: Notify::new(),
            ended: Notify::new(),
            draining: CancellationToken::new(),
            next_run_id: AtomicU64::new(1),
        });
        tokio::spawn(Arc::clone(&engine).schedule_loop());
        Ok(engine)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole; a panic elsewhere must not stop the scheduler.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The deployment in force.
    pub fn deployment(&self) -> Arc<Deployment> {
        Arc::clone(&self.lock().deployment)
    }

    /// Compiled components in the in-process cache (one per distinct connector content).
    pub fn compiled_connectors(&self) -> usize {
        self.connectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    async fn schedule_loop(self: Arc<Self>) {
        loop {
            let earliest = {
                let mut state = self.lock();
                let now = Utc::now();
                enqueue_due(&mut state, now);
                self.dispatch(&mut state);
                earliest_due(&state)
            };
            let idle = earliest
                .and_then(|due| (due - Utc::now()).to_std().ok())
                .unwrap_or(MAX_IDLE)
                .min(MAX_IDLE);
            tokio::select! {
                () = self.draining.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        }
    }

    /// Starts queued syncs while caps allow, one per tenant per round, the rounds starting
    /// with a different tenant each time: a tenant with a thousand queued connections gets the
    /// same turns as one with a single connection.
    fn dispatch(self: &Arc<Self>, state: &mut State) {
        if self.draining.is_cancelled() {
            return;
        }
        let names: Vec<String> = state.tenants.keys().cloned().collect();
        if names.is_empty() {
            return;
        }
        loop {
            let mut started = false;
            let first = state.round_robin % names.len();
            for offset in 0..names.len() {
                if state.running >= state.deployment.max_concurrent_syncs {
                    return;
                }
                let index = (first + offset) % names.len();
                if self.start_next(state, &names[index]) {
                    started = true;
                    state.round_robin = index + 1;
                }
            }
            if !started {
                return;
            }
        }
    }

    /// Starts the first queued sync of `tenant` if its caps allow.
    fn start_next(self: &Arc<Self>, state: &mut State, tenant: &str) -> bool {
        let deployment = Arc::clone(&state.deployment);
        let Some(caps) = deployment.tenants.get(tenant) else {
            return false;
        };
        let Some(tenant_state) = state.tenants.get_mut(tenant) else {
            return false;
        };
        let Some(name) = tenant_state.queue.front().cloned() else {
            return false;
        };
        let Some(conn) = tenant_state.connections.get(&name) else {
            tenant_state.queue.pop_front();
            return false;
        };
        let memory = conn.job.connection.limits.max_memory_bytes;
        if tenant_state.running >= caps.max_concurrent_syncs
            || tenant_state.memory_in_use + memory > caps.max_guest_memory_bytes
        {
            return false;
        }
        tenant_state.queue.pop_front();
        let budgets = shared_budgets(&deployment, &mut state.budgets, &conn.job.credential);
        let Some(tenant_state) = state.tenants.get_mut(tenant) else {
            return false;
        };
        let Some(conn) = tenant_state.connections.get_mut(&name) else {
            return false;
        };
        let trigger = conn.queued.take().unwrap_or("manual");
        let now = Utc::now();
        conn.next_due = conn
            .job
            .schedule
            .as_ref()
            .map(|schedule| schedule.next_after(Some(now), now));
        let id = self.next_run_id.fetch_add(1, Ordering::Relaxed);
        let stop = CancellationToken::new();
        let options = RunOptions {
            state_dir: deployment.state_dir.clone(),
            output_dir: conn.job.output_dir.clone(),
            streams: conn.job.streams.clone(),
            full_refresh: false,
            stop: Some(stop.clone()),
            rate_budgets: budgets,
            ..RunOptions::default()
        };
        let job = Arc::clone(&conn.job);
        let connector = Arc::clone(&conn.connector);
        let engine = Arc::clone(self);
        let tenant_name = tenant.to_owned();
        let sync = tokio::spawn(async move {
            let store = engine.store.namespace(&tenant_name)?;
            sync::run_with_store(
                &engine.runtime,
                &connector,
                &job.connection,
                &options,
                &store,
            )
            .await
        });
        let record = RunRecord {
            id,
            trigger,
            started_at: rfc3339(now),
            finished_at: None,
            outcome: "running",
            error: None,
            error_kind: None,
            records: 0,
            requests: 0,
            streams: Vec::new(),
        };
        tracing::info!(tenant, connection = %name, run = id, trigger, "Sync starting.");
        conn.running = Some(Running {
            record,
            stop,
            abort: sync.abort_handle(),
            memory,
        });
        tenant_state.running += 1;
        tenant_state.memory_in_use += memory;
        state.running += 1;
        let engine = Arc::clone(self);
        let tenant = tenant.to_owned();
        tokio::spawn(async move {
            let outcome = sync.await;
            engine.finish(&tenant, &name, outcome);
        });
        true
    }

    /// Books an ended sync: caps released, history and metrics updated, scheduler woken.
    fn finish(
        &self,
        tenant: &str,
        name: &str,
        outcome: Result<Result<RunSummary, sync::Error>, JoinError>,
    ) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        if let Some(tenant_state) = state.tenants.get_mut(tenant)
            && let Some(conn) = tenant_state.connections.get_mut(name)
            && let Some(running) = conn.running.take()
        {
            tenant_state.running = tenant_state.running.saturating_sub(1);
            tenant_state.memory_in_use = tenant_state.memory_in_use.saturating_sub(running.memory);
            let mut record = running.record;
            record.finished_at = Some(rfc3339(Utc::now()));
            let summary = settle(&mut record, outcome);
            match summary.as_ref() {
                Some(summary) => conn.metrics.record(record.outcome, Some(summary)),
                None if record.outcome == "cancelled" => conn.metrics.record("cancelled", None),
                None => conn
                    .metrics
                    .record_failure(record.error_kind.unwrap_or("unknown")),
            }
            tracing::info!(
                tenant,
                connection = name,
                run = record.id,
                outcome = record.outcome,
                records = record.records,
                error = record.error.as_deref().unwrap_or(""),
                "Sync ended."
            );
            conn.history.push_front(record);
            conn.history.truncate(HISTORY);
            if conn.removed {
                tenant_state.connections.remove(name);
            }
        }
        drop(state);
        self.wake.notify_one();
        self.ended.notify_waiters();
    }

    /// Every connection (of `tenant` only, if given).
    pub fn list(&self, tenant: Option<&str>) -> Vec<ConnectionView> {
        let state = self.lock();
        state
            .tenants
            .iter()
            .filter(|(name, _)| tenant.is_none_or(|wanted| wanted == name.as_str()))
            .flat_map(|(tenant, tenant_state)| {
                tenant_state
                    .connections
                    .iter()
                    .filter(|(_, conn)| !conn.removed)
                    .map(|(name, conn)| view(tenant, name, conn))
            })
            .collect()
    }

    /// One connection.
    pub fn get(&self, tenant: &str, name: &str) -> Result<ConnectionView, ServeError> {
        let state = self.lock();
        let conn = find(&state, tenant, name)?;
        Ok(view(tenant, name, conn))
    }

    /// Queues a sync of `tenant`/`name` now.
    pub fn trigger(&self, tenant: &str, name: &str) -> Result<Triggered, ServeError> {
        if self.draining.is_cancelled() {
            return Err(ServeError::new(
                503,
                "shutting_down",
                "sluice is shutting down and starts no new syncs",
            ));
        }
        let mut state = self.lock();
        let conn = find_mut(&mut state, tenant, name)?;
        if conn.running.is_some() {
            return Err(ServeError::new(
                409,
                "already_running",
                format!("`{tenant}/{name}` is syncing now; cancel it first or wait for it to end"),
            ));
        }
        if conn.queued.is_some() {
            return Ok(Triggered::AlreadyQueued);
        }
        conn.queued = Some("manual");
        if let Some(tenant_state) = state.tenants.get_mut(tenant) {
            tenant_state.queue.push_back(name.to_owned());
        }
        drop(state);
        self.wake.notify_one();
        Ok(Triggered::Queued)
    }

    /// Cancels the running or queued sync of `tenant`/`name`. A running sync is dropped where
    /// it is: what it committed stays, the page in flight is discarded, and its next sync
    /// resumes from the last checkpoint.
    pub fn cancel(&self, tenant: &str, name: &str) -> Result<Cancelled, ServeError> {
        let mut state = self.lock();
        let conn = find_mut(&mut state, tenant, name)?;
        if let Some(running) = &conn.running {
            running.abort.abort();
            return Ok(Cancelled::Running);
        }
        if conn.queued.take().is_some() {
            if let Some(tenant_state) = state.tenants.get_mut(tenant) {
                tenant_state.queue.retain(|queued| queued != name);
            }
            return Ok(Cancelled::Dequeued);
        }
        Err(ServeError::new(
            409,
            "not_running",
            format!("`{tenant}/{name}` is neither running nor queued"),
        ))
    }

    /// The committed checkpoints of `tenant`/`name`, by stream.
    pub fn checkpoints(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<BTreeMap<String, Checkpoint>, ServeError> {
        find(&self.lock(), tenant, name)?;
        let prefix = format!("{name}/");
        let all = self
            .store
            .namespace(tenant)
            .and_then(|store| store.list())
            .map_err(store_error)?;
        Ok(all
            .into_iter()
            .filter_map(|(key, checkpoint)| {
                key.strip_prefix(&prefix)
                    .map(|stream| (stream.to_owned(), checkpoint))
            })
            .collect())
    }

    /// Forgets the checkpoint of `stream` of `tenant`/`name`: its next sync starts from
    /// scratch. Refused while the connection syncs.
    pub async fn reset(&self, tenant: &str, name: &str, stream: &str) -> Result<bool, ServeError> {
        {
            let state = self.lock();
            if find(&state, tenant, name)?.running.is_some() {
                return Err(ServeError::new(
                    409,
                    "already_running",
                    format!("`{tenant}/{name}` is syncing now; cancel it or wait before resetting"),
                ));
            }
        }
        let store = self.store.namespace(tenant).map_err(store_error)?;
        store
            .reset(&StreamKey::new(name, stream))
            .await
            .map_err(store_error)
    }

    /// Re-reads the deployment file. Running syncs go on with the settings they started
    /// with; a removed connection's running sync finishes first. On any error nothing changes.
    pub fn reload(self: &Arc<Self>) -> Result<ReloadReport, StartError> {
        let path = self.lock().deployment.path.clone();
        let deployment = Deployment::load(&path)?;
        let compiled = {
            let mut cache = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            compile_all(&self.runtime, &deployment, &mut cache)?
        };
        let mut state = self.lock();
        let previous = std::mem::take(&mut state.tenants);
        let (tenants, report) = merge(&deployment, &compiled, previous);
        state.tenants = tenants;
        state.deployment = Arc::new(deployment);
        drop(state);
        tracing::info!(
            added = report.added.len(),
            removed = report.removed.len(),
            kept = report.kept,
            "Deployment reloaded."
        );
        self.wake.notify_one();
        Ok(report)
    }

    /// Prometheus text of every connection's metrics.
    pub fn metrics_text(&self) -> String {
        let state = self.lock();
        metrics::render(state.tenants.iter().flat_map(|(tenant, tenant_state)| {
            tenant_state.connections.iter().map(move |(name, conn)| {
                (
                    (tenant.as_str(), name.as_str()),
                    &conn.metrics,
                    Live {
                        running: u64::from(conn.running.is_some()),
                        queued: u64::from(conn.queued.is_some()),
                    },
                )
            })
        }))
    }

    /// Stops scheduling, asks every running sync to stop at its next checkpoint, waits up to
    /// the deployment's grace for them, then drops the rest (what they committed stays).
    pub async fn shutdown(&self) {
        self.draining.cancel();
        let grace = {
            let state = self.lock();
            for conn in state.tenants.values().flat_map(|t| t.connections.values()) {
                if let Some(running) = &conn.running {
                    running.stop.cancel();
                }
            }
            state.deployment.shutdown_grace
        };
        tracing::info!(
            grace_secs = grace.as_secs(),
            "Shutting down: running syncs stop at their next checkpoint."
        );
        if tokio::time::timeout(grace, self.wait_idle()).await.is_err() {
            let mut aborted = 0;
            for conn in self
                .lock()
                .tenants
                .values()
                .flat_map(|t| t.connections.values())
            {
                if let Some(running) = &conn.running {
                    running.abort.abort();
                    aborted += 1;
                }
            }
            tracing::warn!(
                aborted,
                "Syncs did not reach a checkpoint within the grace; dropped them (committed pages stay)."
            );
            let _ = tokio::time::timeout(ABORT_WAIT, self.wait_idle()).await;
        }
    }

    async fn wait_idle(&self) {
        loop {
            let ended = self.ended.notified();
            if self.lock().running == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Whether `token` is the operator's token, or which tenant's it is.
    pub fn access(&self, token: &str) -> Option<Access> {
        let state = self.lock();
        let deployment = &state.deployment;
        if constant_time_eq(token, deployment.control.token.expose()) {
            return Some(Access::Operator);
        }
        deployment
            .tenants
            .values()
            .find(|tenant| {
                tenant
                    .control_token
                    .as_ref()
                    .is_some_and(|own| constant_time_eq(token, own.expose()))
            })
            .map(|tenant| Access::Tenant(tenant.name.clone()))
    }
}

/// Who a control API caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The operator: everything.
    Operator,
    /// One tenant: its own connections only.
    Tenant(String),
}

impl Access {
    /// Whether this caller may see and act on `tenant`'s connections.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            Access::Operator => true,
            Access::Tenant(own) => own == tenant,
        }
    }
}

/// Compares without stopping at the first differing byte, so timing does not leak the token.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn store_error(error: checkpoint::Error) -> ServeError {
    ServeError::new(500, "checkpoint", error.to_string())
}

fn not_found(tenant: &str, name: &str) -> ServeError {
    ServeError::new(
        404,
        "not_found",
        format!("no connection `{name}` in tenant `{tenant}`"),
    )
}

fn find<'s>(state: &'s State, tenant: &str, name: &str) -> Result<&'s ConnState, ServeError> {
    state
        .tenants
        .get(tenant)
        .and_then(|t| t.connections.get(name))
        .filter(|conn| !conn.removed)
        .ok_or_else(|| not_found(tenant, name))
}

fn find_mut<'s>(
    state: &'s mut State,
    tenant: &str,
    name: &str,
) -> Result<&'s mut ConnState, ServeError> {
    state
        .tenants
        .get_mut(tenant)
        .and_then(|t| t.connections.get_mut(name))
        .filter(|conn| !conn.removed)
        .ok_or_else(|| not_found(tenant, name))
}

fn view(tenant: &str, name: &str, conn: &ConnState) -> ConnectionView {
    ConnectionView {
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        connector: conn.job.connector.clone(),
        schedule: conn.job.schedule.as_ref().map(|s| s.describe()),
        next_run: conn.next_due.map(rfc3339),
        queued: conn.queued.is_some(),
        running: conn.running.as_ref().map(|running| running.record.clone()),
        last_runs: conn.history.iter().cloned().collect(),
    }
}

/// Queues every connection whose schedule says it is due and that is not queued or running.
fn enqueue_due(state: &mut State, now: DateTime<Utc>) {
    for tenant in state.tenants.values_mut() {
        for (name, conn) in &mut tenant.connections {
            let due = conn.next_due.is_some_and(|due| due <= now);
            if due && !conn.removed && conn.queued.is_none() && conn.running.is_none() {
                conn.queued = Some("schedule");
                tenant.queue.push_back(name.clone());
            }
        }
    }
}

/// The soonest scheduled time among connections not already queued or running.
fn earliest_due(state: &State) -> Option<DateTime<Utc>> {
    state
        .tenants
        .values()
        .flat_map(|tenant| tenant.connections.values())
        .filter(|conn| conn.queued.is_none() && conn.running.is_none())
        .filter_map(|conn| conn.next_due)
        .min()
}

/// The shared budgets a sync with `credential` draws on: one per budgeted host, created on
/// first use and then shared by every connection sending the same credential there.
fn shared_budgets(
    deployment: &Deployment,
    budgets: &mut HashMap<(String, String), SharedBudget>,
    credential: &str,
) -> Vec<SharedBudget> {
    deployment
        .rate_budgets
        .iter()
        .map(|(host, budget)| {
            budgets
                .entry((host.clone(), credential.to_owned()))
                .or_insert_with(|| SharedBudget::new(host, budget.rate, budget.max_wait_ms))
                .clone()
        })
        .collect()
}

/// Fills `record` from how the sync ended; returns its summary if it got one.
fn settle(
    record: &mut RunRecord,
    outcome: Result<Result<RunSummary, sync::Error>, JoinError>,
) -> Option<RunSummary> {
    let summary = match outcome {
        Ok(Ok(summary)) => {
            record.outcome = "succeeded";
            summary
        }
        Ok(Err(sync::Error::StreamsFailed { summary, .. })) => {
            let stopped = summary
                .streams
                .iter()
                .all(|stream| matches!(stream.error_kind, None | Some("stopped")));
            record.outcome = if stopped { "stopped" } else { "failed" };
            let failed = summary.streams.iter().find(|s| s.error.is_some());
            record.error = failed.and_then(|s| s.error.clone());
            record.error_kind = failed.and_then(|s| s.error_kind);
            *summary
        }
        Ok(Err(error)) => {
            record.outcome = "failed";
            record.error = Some(error.to_string());
            record.error_kind = Some(error.kind());
            return None;
        }
        Err(join) if join.is_cancelled() => {
            record.outcome = "cancelled";
            return None;
        }
        Err(_) => {
            record.outcome = "failed";
            record.error = Some("the sync task panicked; this is a bug in sluice".to_owned());
            record.error_kind = Some("panic");
            return None;
        }
    };
    record.records = summary.streams.iter().map(|s| s.records).sum();
    record.requests = summary.requests;
    record.streams = summary.streams.clone();
    Some(summary)
}

/// Compiles every connector `deployment` names, only content not already in `cache`.
fn compile_all(
    runtime: &Runtime,
    deployment: &Deployment,
    cache: &mut ConnectorCache,
) -> Result<HashMap<String, Arc<Connector>>, StartError> {
    let mut compiled = HashMap::new();
    for job in deployment.jobs() {
        let connector = load_cached(runtime, cache, &job.connector).map_err(|source| {
            StartError::Connector {
                tenant: job.tenant.clone(),
                connection: job.name.clone(),
                source: Box::new(source),
            }
        })?;
        compiled.insert(job.connector.clone(), connector);
    }
    Ok(compiled)
}

/// Builds the scheduler's view of `deployment` with its `compiled` connectors, keeping what
/// `previous` knew of connections that are still there (history, metrics, a running sync).
fn merge(
    deployment: &Deployment,
    compiled: &HashMap<String, Arc<Connector>>,
    mut previous: BTreeMap<String, TenantState>,
) -> (BTreeMap<String, TenantState>, ReloadReport) {
    let mut report = ReloadReport::default();
    let now = Utc::now();
    let mut tenants = BTreeMap::new();
    for (tenant_name, tenant) in &deployment.tenants {
        let mut old = previous.remove(tenant_name).unwrap_or_default();
        let mut fresh = TenantState {
            queue: VecDeque::new(),
            running: old.running,
            memory_in_use: old.memory_in_use,
            connections: BTreeMap::new(),
        };
        for (name, job) in &tenant.connections {
            let connector = Arc::clone(&compiled[&job.connector]);
            let conn = match old.connections.remove(name) {
                Some(mut conn) => {
                    report.kept += 1;
                    let schedule_changed = conn.job.schedule.as_ref().map(|s| s.describe())
                        != job.schedule.as_ref().map(|s| s.describe());
                    if schedule_changed {
                        conn.next_due = job.schedule.as_ref().map(|s| s.next_after(None, now));
                    }
                    conn.job = Arc::clone(job);
                    conn.connector = connector;
                    conn.removed = false;
                    conn
                }
                None => {
                    report.added.push(format!("{tenant_name}/{name}"));
                    ConnState {
                        next_due: job.schedule.as_ref().map(|s| s.next_after(None, now)),
                        job: Arc::clone(job),
                        connector,
                        queued: None,
                        running: None,
                        history: VecDeque::new(),
                        metrics: ConnectionMetrics::default(),
                        removed: false,
                    }
                }
            };
            fresh.connections.insert(name.clone(), conn);
        }
        // Keep the queue order of connections that are still queued.
        for name in old.queue.drain(..) {
            if fresh
                .connections
                .get(&name)
                .is_some_and(|c| c.queued.is_some())
            {
                fresh.queue.push_back(name);
            }
        }
        for (name, mut conn) in old.connections {
            report.removed.push(format!("{tenant_name}/{name}"));
            if conn.running.is_some() {
                conn.removed = true;
                conn.queued = None;
                fresh.connections.insert(name, conn);
            }
        }
        tenants.insert(tenant_name.clone(), fresh);
    }
    for (tenant_name, mut old) in previous {
        for (name, mut conn) in std::mem::take(&mut old.connections) {
            report.removed.push(format!("{tenant_name}/{name}"));
            if conn.running.is_some() {
                conn.removed = true;
                conn.queued = None;
                old.connections.insert(name, conn);
            }
        }
        if !old.connections.is_empty() {
            // A removed tenant's running syncs still finish and release their slots.
            old.queue.clear();
            tenants.insert(tenant_name, old);
        }
    }
    (tenants, report)
}

/// The compiled connector for `source`, compiling only content not seen before.
fn load_cached(
    runtime: &Runtime,
    cache: &mut ConnectorCache,
    source: &str,
) -> Result<Arc<Connector>, crate::sandbox::Error> {
    let (name, bytes) = Connector::read(source)?;
    let hash: [u8; 32] = Sha256::digest(&bytes).into();
    if let Some(connector) = cache.get(&hash) {
        return Ok(Arc::clone(connector));
    }
    let connector = Arc::new(Connector::from_bytes(runtime, &name, &bytes)?);
    cache.insert(hash, Arc::clone(&connector));
    Ok(connector)
}
