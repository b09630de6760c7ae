//! The per-call data a wasmtime `Store` carries: an empty WASI context, the limiter and the
//! guest-log budget. One `Store` serves one connector session and is dropped after any trap.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::limits::{GuestLimiter, Limits};
use super::stderr::StderrTail;

/// Everything a guest call can reach on the host side.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory/table/instance limiter.
    pub limiter: GuestLimiter,
    /// Budget and counters for the `log` import.
    pub log: GuestLogBudget,
    /// The last bytes the guest wrote to stderr (its panic message, if it panicked).
    pub stderr: StderrTail,
}

impl StoreState {
    /// State for a session of the connector `connector` under `limits`. `now_ms` is what the
    /// guest sees as the wall clock: frozen at the run's start, so a replay sees the same time.
    pub fn new(connector: &str, limits: &Limits, now_ms: u64) -> Self {
        // `WasiCtx::builder()` grants nothing by default: no preopened directories, no
        // environment, no arguments, closed stdin, discarded stdout. Sockets and name lookup
        // are switched off explicitly as well. Stderr goes to a small in-memory tail, read only
        // to report a panic.
        let stderr = StderrTail::default();
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FrozenClock(Duration::from_millis(now_ms)))
            .monotonic_clock(FrozenClock(Duration::ZERO))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: GuestLimiter::new(limits.max_memory_bytes),
            stderr,
            log: GuestLogBudget {
                connector: connector.to_owned(),
                max_lines: limits.max_log_lines_per_sync,
                max_line_bytes: usize::try_from(limits.max_log_line_bytes).unwrap_or(usize::MAX),
                emitted: 0,
                dropped: 0,
            },
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// How much a guest may still log in this session.
#[derive(Debug)]
pub struct GuestLogBudget {
    /// Connector name, attached to every re-emitted line.
    pub connector: String,
    /// Lines allowed in the session.
    pub max_lines: u64,
    /// Bytes kept of one line.
    pub max_line_bytes: usize,
    /// Lines emitted so far.
    pub emitted: u64,
    /// Lines dropped because the budget was spent.
    pub dropped: u64,
}

/// A clock that does not move: the guest gets the run's start time and nothing it could use to
/// time the host.
struct FrozenClock(Duration);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }
}
