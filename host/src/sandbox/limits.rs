//! Per-connection resource limits for guest code, and the wasmtime limiter that enforces the
//! memory, table and instance parts of them.

use serde::Deserialize;

/// Default cap on all of a guest's linear memories together: 256 MiB holds a connector parsing a
/// 64 MiB response into a DOM with room to spare, while 100 connections stay well inside a
/// normal machine's memory.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Default CPU deadline for one guest call: parsing a 1 MiB page takes ~10 ms, so 10 s only stops
/// code that is stuck.
pub const DEFAULT_GUEST_CALL_TIMEOUT_MS: u64 = 10_000;
/// Default CPU budget of one session (a stream's sync, or one `spec`/`discover`): an hour of
/// guest time parses hundreds of GiB of JSON, so only a connector burning CPU in a loop of
/// calls reaches it.
pub const DEFAULT_GUEST_CPU_BUDGET_MS: u64 = 60 * 60 * 1000;
/// Default cap on records in one page: far above any real API's page size.
pub const DEFAULT_MAX_RECORDS_PER_PAGE: u64 = 100_000;
/// Default cap on the JSON-lines bytes of one page.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on the checkpoint state a connector may keep: a cursor needs bytes, not megabytes.
pub const DEFAULT_MAX_STATE_BYTES: u64 = 1024 * 1024;
/// Default cap on requests in one sync of one stream.
pub const DEFAULT_MAX_REQUESTS_PER_SYNC: u64 = 1_000_000;
/// Default cap on log lines a guest may emit in one sync; later lines are dropped and counted.
pub const DEFAULT_MAX_LOG_LINES_PER_SYNC: u64 = 10_000;
/// Default cap on one log line's bytes; longer lines are truncated.
pub const DEFAULT_MAX_LOG_LINE_BYTES: u64 = 4 * 1024;
/// Default cap on a wait a connector may ask for with `back-off`.
pub const DEFAULT_MAX_BACK_OFF_MS: u64 = 15 * 60 * 1000;
/// Default cap on the wall time of one sync (every stream of a run): a day of paging is far
/// beyond any sane page size and rate limit, and a stuck sync still ends.
pub const DEFAULT_MAX_SYNC_DURATION_SECS: u64 = 24 * 60 * 60;
/// Default cap on pages in a row with no records that still ask for more.
pub const DEFAULT_MAX_EMPTY_PAGES: u64 = 20;
/// Bytes a guest may move to the host in one call on top of `max_page_bytes` and
/// `max_state_bytes`: the next request (URL, headers, body), the catalog or the spec.
pub const BOUNDARY_OVERHEAD_BYTES: u64 = 4 * 1024 * 1024;
/// Tables and instances a connector component may create: a Rust component needs a handful.
pub const MAX_TABLES: usize = 64;
/// See [`MAX_TABLES`].
pub const MAX_INSTANCES: usize = 64;
/// Maximum elements in one table.
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The `[limits]` table of a connection file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Cap on the guest's linear memories, summed.
    #[serde(default = "default_max_memory_bytes")]
    pub max_memory_bytes: u64,
    /// CPU deadline for one guest call, in milliseconds.
    #[serde(default = "default_guest_call_timeout_ms")]
    pub guest_call_timeout_ms: u64,
    /// Time a session may spend inside guest calls in total, in milliseconds.
    #[serde(default = "default_guest_cpu_budget_ms")]
    pub guest_cpu_budget_ms: u64,
    /// Cap on records in one page.
    #[serde(default = "default_max_records_per_page")]
    pub max_records_per_page: u64,
    /// Cap on the bytes of records in one page.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: u64,
    /// Cap on the checkpoint state's bytes.
    #[serde(default = "default_max_state_bytes")]
    pub max_state_bytes: u64,
    /// Cap on requests in one sync of one stream.
    #[serde(default = "default_max_requests_per_sync")]
    pub max_requests_per_sync: u64,
    /// Cap on guest log lines per sync.
    #[serde(default = "default_max_log_lines_per_sync")]
    pub max_log_lines_per_sync: u64,
    /// Cap on one guest log line's bytes.
    #[serde(default = "default_max_log_line_bytes")]
    pub max_log_line_bytes: u64,
    /// Cap on a wait the connector asks for.
    #[serde(default = "default_max_back_off_ms")]
    pub max_back_off_ms: u64,
    /// Cap on the wall time of one sync (all its streams), in seconds.
    #[serde(default = "default_max_sync_duration_secs")]
    pub max_sync_duration_secs: u64,
    /// Cap on pages in a row with no records that still ask for another page: past it, the
    /// connector's pagination is taken to be stuck.
    #[serde(default = "default_max_empty_pages")]
    pub max_empty_pages: u64,
}

impl Limits {
    /// The most bytes one guest call may move across the boundary to the host (wasmtime's
    /// hostcall fuel): a page of records, a state and the next request. Checked while wasmtime
    /// lifts the guest's values, so an oversized result is refused before the host copies it.
    pub fn max_boundary_bytes(&self) -> u64 {
        self.max_page_bytes
            .saturating_add(self.max_state_bytes)
            .saturating_add(BOUNDARY_OVERHEAD_BYTES)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            guest_call_timeout_ms: DEFAULT_GUEST_CALL_TIMEOUT_MS,
            guest_cpu_budget_ms: DEFAULT_GUEST_CPU_BUDGET_MS,
            max_records_per_page: DEFAULT_MAX_RECORDS_PER_PAGE,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_state_bytes: DEFAULT_MAX_STATE_BYTES,
            max_requests_per_sync: DEFAULT_MAX_REQUESTS_PER_SYNC,
            max_log_lines_per_sync: DEFAULT_MAX_LOG_LINES_PER_SYNC,
            max_log_line_bytes: DEFAULT_MAX_LOG_LINE_BYTES,
            max_back_off_ms: DEFAULT_MAX_BACK_OFF_MS,
            max_sync_duration_secs: DEFAULT_MAX_SYNC_DURATION_SECS,
            max_empty_pages: DEFAULT_MAX_EMPTY_PAGES,
        }
    }
}

const fn default_max_empty_pages() -> u64 {
    DEFAULT_MAX_EMPTY_PAGES
}
const fn default_max_memory_bytes() -> u64 {
    DEFAULT_MAX_MEMORY_BYTES
}
const fn default_guest_call_timeout_ms() -> u64 {
    DEFAULT_GUEST_CALL_TIMEOUT_MS
}
const fn default_guest_cpu_budget_ms() -> u64 {
    DEFAULT_GUEST_CPU_BUDGET_MS
}
const fn default_max_records_per_page() -> u64 {
    DEFAULT_MAX_RECORDS_PER_PAGE
}
const fn default_max_page_bytes() -> u64 {
    DEFAULT_MAX_PAGE_BYTES
}
const fn default_max_state_bytes() -> u64 {
    DEFAULT_MAX_STATE_BYTES
}
const fn default_max_requests_per_sync() -> u64 {
    DEFAULT_MAX_REQUESTS_PER_SYNC
}
const fn default_max_log_lines_per_sync() -> u64 {
    DEFAULT_MAX_LOG_LINES_PER_SYNC
}
const fn default_max_log_line_bytes() -> u64 {
    DEFAULT_MAX_LOG_LINE_BYTES
}
const fn default_max_back_off_ms() -> u64 {
    DEFAULT_MAX_BACK_OFF_MS
}
const fn default_max_sync_duration_secs() -> u64 {
    DEFAULT_MAX_SYNC_DURATION_SECS
}

/// Enforces the memory cap across *all* of a guest's linear memories (wasmtime's own
/// `StoreLimits` caps each memory separately), and remembers a breach so the trap that follows
/// can be reported as what it is.
#[derive(Debug)]
pub struct GuestLimiter {
    max_memory_bytes: usize,
    memory_bytes: usize,
    peak_bytes: usize,
    /// Set when a growth was refused because of the memory cap.
    pub memory_exceeded: bool,
}

impl GuestLimiter {
    /// A limiter allowing `max_memory_bytes` of linear memory in total.
    pub fn new(max_memory_bytes: u64) -> Self {
        Self {
            max_memory_bytes: usize::try_from(max_memory_bytes).unwrap_or(usize::MAX),
            memory_bytes: 0,
            peak_bytes: 0,
            memory_exceeded: false,
        }
    }

    /// The most linear memory the guest held at once, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        u64::try_from(self.peak_bytes).unwrap_or(u64::MAX)
    }
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_bytes
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.max_memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        self.memory_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_cap_is_summed_across_memories() {
        let mut limiter = GuestLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(!limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_exceeded);
        assert!(limiter.memory_growing(60, 100, None).unwrap());
        assert_eq!(limiter.peak_bytes(), 100);
    }

    #[test]
    fn limits_table_defaults_and_rejects_unknown_keys() {
        let limits: Limits = toml::from_str("guest_call_timeout_ms = 5").unwrap();
        assert_eq!(limits.guest_call_timeout_ms, 5);
        assert_eq!(limits.max_memory_bytes, DEFAULT_MAX_MEMORY_BYTES);
        let err = toml::from_str::<Limits>("max_memory = 5").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_memory`"),
            "{err}"
        );
    }
}
