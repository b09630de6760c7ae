//! The sandbox every connector runs in: one shared wasmtime engine, WASI linked with nothing
//! granted, and per-call limits (memory across all linear memories, CPU deadline by epoch
//! interruption plus an outer timeout, wasm stack).
//!
//! This module knows nothing about HTTP, sinks or checkpoints; it turns guest calls that went
//! wrong into [`Error`]s that say which limit was hit.

mod engine;
pub mod limits;
mod stderr;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap};

pub use engine::{EPOCH_TICK, MAX_WASM_STACK_BYTES};
pub use limits::Limits;
pub use store::StoreState;

use crate::protocol::GuestError;

/// Extra time the outer (tokio) timeout allows beyond the epoch deadline, so that the epoch
/// trap, which names the problem precisely, normally fires first.
const OUTER_TIMEOUT_GRACE: Duration = Duration::from_secs(2);

/// Something went wrong loading or calling a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wasmtime engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {detail}")]
    Engine {
        /// What failed.
        detail: String,
    },
    /// The connector is neither a bundled name nor a readable file.
    #[error(
        "connector `{source_name}` is neither a bundled connector ({available}) nor a readable `.wasm` file: {detail}"
    )]
    NotFound {
        /// What the operator passed.
        source_name: String,
        /// Bundled connector names.
        available: String,
        /// Why the file could not be read.
        detail: String,
    },
    /// The file is larger than a connector may be.
    #[error(
        "connector `{source_name}` is {size_bytes} bytes, over the {limit_bytes}-byte limit for a component"
    )]
    TooLarge {
        /// The file.
        source_name: String,
        /// Its size.
        size_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
    /// The bytes are not a WebAssembly component.
    #[error("connector `{source_name}` is not a valid WebAssembly component: {reason}")]
    NotAComponent {
        /// The file.
        source_name: String,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// The component does not fit the host: missing imports or exports.
    #[error("connector `{source_name}` is not a Sluice connector component: {detail}")]
    Link {
        /// The file.
        source_name: String,
        /// Which import or export is wrong.
        detail: String,
    },
    /// The component imports interfaces the host does not provide.
    #[error(
        "connector `{source_name}` imports what the host does not provide: {}; a connector may import only `sluice:connector/log`, `sluice:connector/types` and WASI 0.2 (granted nothing)",
        imports.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
    )]
    ForbiddenImports {
        /// The file.
        source_name: String,
        /// The offending import names.
        imports: Vec<String>,
    },
    /// Compiling the component took longer than the host allows.
    #[error(
        "connector `{source_name}` did not compile within {limit_ms} ms; a real connector compiles in well under a second, so this component is too large or built to stall the compiler"
    )]
    CompileTimeout {
        /// The file.
        source_name: String,
        /// The budget.
        limit_ms: u64,
    },
    /// A guest call ran past its CPU deadline.
    #[error(
        "connector `{connector}` exceeded its CPU deadline of {limit_ms} ms in `{call}`; raise `guest_call_timeout_ms` in [limits] if it is legitimately slow"
    )]
    Timeout {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The deadline.
        limit_ms: u64,
    },
    /// The guest used up its CPU budget for the session (one stream's sync).
    #[error(
        "connector `{connector}` used up its CPU budget of {limit_ms} ms for this sync in `{call}`; raise `guest_cpu_budget_ms` in [limits] if it legitimately needs more"
    )]
    CpuBudgetExceeded {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The budget.
        limit_ms: u64,
    },
    /// The guest tried to grow its memory past the limit.
    #[error(
        "connector `{connector}` exceeded its memory limit of {limit_bytes} bytes in `{call}`; raise `max_memory_bytes` in [limits] if it legitimately needs more"
    )]
    MemoryExceeded {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The limit.
        limit_bytes: u64,
    },
    /// The guest overflowed its wasm stack.
    #[error(
        "connector `{connector}` overflowed its {limit_bytes}-byte stack in `{call}` (runaway recursion)"
    )]
    StackOverflow {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The stack size.
        limit_bytes: usize,
    },
    /// The guest tried to move more bytes to the host in one call than the boundary allows
    /// (refused while wasmtime lifted the values, before the host held a copy).
    #[error(
        "connector `{connector}` tried to return more than {limit_bytes} bytes from `{call}` (max_page_bytes + max_state_bytes + {overhead_bytes}); raise `max_page_bytes` in [limits] if its pages are legitimately that large"
    )]
    BoundaryExceeded {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The limit.
        limit_bytes: u64,
        /// The part of the limit beyond pages and state.
        overhead_bytes: u64,
    },
    /// The guest trapped (panic, unreachable, bad memory access, …).
    #[error("connector `{connector}` crashed in `{call}`: {detail}")]
    Trapped {
        /// Connector name.
        connector: String,
        /// Export that was running.
        call: &'static str,
        /// The trap and its backtrace, as wasmtime reports it.
        detail: String,
    },
    /// The guest returned an error value.
    #[error("connector `{connector}` failed in `{call}`: {error}")]
    Guest {
        /// Connector name.
        connector: String,
        /// Export that returned it.
        call: &'static str,
        /// The error.
        error: GuestError,
    },
    /// The guest returned data the host refuses (malformed JSON, over a size limit, …).
    #[error("connector `{connector}` returned invalid data from `{call}`: {detail}")]
    Protocol {
        /// Connector name.
        connector: String,
        /// Export that returned it.
        call: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl Error {
    /// A stable key for logs and metrics (`error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Engine { .. } => "engine",
            Error::NotFound { .. } => "connector_not_found",
            Error::TooLarge { .. } => "component_too_large",
            Error::NotAComponent { .. } => "not_a_component",
            Error::Link { .. } => "link_error",
            Error::ForbiddenImports { .. } => "forbidden_imports",
            Error::CompileTimeout { .. } => "compile_timeout",
            Error::BoundaryExceeded { .. } => "boundary_limit_exceeded",
            Error::Timeout { .. } => "cpu_deadline_exceeded",
            Error::CpuBudgetExceeded { .. } => "cpu_budget_exceeded",
            Error::MemoryExceeded { .. } => "memory_limit_exceeded",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::Trapped { .. } => "guest_trapped",
            Error::Guest { .. } => "guest_error",
            Error::Protocol { .. } => "guest_protocol_violation",
        }
    }

    /// Whether the store this error came from must be discarded (the instance trapped).
    pub fn poisons_store(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::CpuBudgetExceeded { .. }
                | Error::MemoryExceeded { .. }
                | Error::StackOverflow { .. }
                | Error::BoundaryExceeded { .. }
                | Error::Trapped { .. }
        )
    }
}

/// The process-wide sandbox: one engine (shared by every connector and connection), the linker
/// holding WASI and the host's imports, and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    _ticker: engine::EpochTicker,
}

impl Runtime {
    /// A runtime that caches compiled components in the user's cache directory
    /// (`$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`).
    pub fn new() -> Result<Self, Error> {
        Self::with_cache_dir(default_cache_dir())
    }

    /// A runtime caching compiled components in `cache_dir` (`None`: no cache).
    pub fn with_cache_dir(cache_dir: Option<PathBuf>) -> Result<Self, Error> {
        let engine = engine::build_engine(cache_dir.as_deref())?;
        let mut linker = Linker::new(&engine);
        let link_error = |error: wasmtime::Error| Error::Engine {
            detail: format!("cannot link host imports: {error:#}"),
        };
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
        crate::host_impl::add_to_linker(&mut linker).map_err(link_error)?;
        let ticker = engine::EpochTicker::start(&engine)?;
        Ok(Self {
            engine,
            linker,
            _ticker: ticker,
        })
    }

    /// The shared engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker with every import a connector may use.
    pub fn linker(&self) -> &Linker<StoreState> {
        &self.linker
    }

    /// A fresh store for one session of `connector`, with the memory limiter installed and a
    /// deadline that will be re-armed before each call.
    pub fn new_store(&self, connector: &str, limits: &Limits, now_ms: u64) -> Store<StoreState> {
        let mut store = Store::new(&self.engine, StoreState::new(connector, limits, now_ms));
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(usize::try_from(limits.max_boundary_bytes()).unwrap_or(usize::MAX));
        store.epoch_deadline_trap();
        arm_deadline(&mut store, limits);
        store
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the cache location is process behaviour, taken from the environment"
)]
fn default_cache_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("SLUICE_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("sluice"))
}

/// Sets the epoch deadline for the next guest call from `limits`.
pub fn arm_deadline(store: &mut Store<StoreState>, limits: &Limits) {
    arm_deadline_ms(store, limits.guest_call_timeout_ms);
}

/// Sets the epoch deadline for the next guest call to `deadline_ms` (rounded up to whole
/// [`EPOCH_TICK`]s).
pub fn arm_deadline_ms(store: &mut Store<StoreState>, deadline_ms: u64) {
    let tick_ms = u64::try_from(EPOCH_TICK.as_millis()).unwrap_or(10).max(1);
    store.set_epoch_deadline(deadline_ms.div_ceil(tick_ms).max(1));
}

/// The outer wall-clock bound for one guest call: the CPU deadline plus a grace period. It
/// catches a guest blocked in a host call, which the epoch deadline cannot interrupt.
pub fn outer_timeout(limits: &Limits) -> Duration {
    Duration::from_millis(limits.guest_call_timeout_ms) + OUTER_TIMEOUT_GRACE
}

/// Turns the outcome of a guest call into a host error that names the limit that was hit.
pub fn classify<T>(
    store: &Store<StoreState>,
    limits: &Limits,
    call: &'static str,
    outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T, Error> {
    let connector = store.data().log.connector.clone();
    let error = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(error)) => error,
        Err(_elapsed) => {
            return Err(Error::Timeout {
                connector,
                call,
                limit_ms: limits.guest_call_timeout_ms,
            });
        }
    };
    let trap = error.downcast_ref::<Trap>().copied();
    Err(match trap {
        Some(Trap::Interrupt) => Error::Timeout {
            connector,
            call,
            limit_ms: limits.guest_call_timeout_ms,
        },
        Some(Trap::StackOverflow) => Error::StackOverflow {
            connector,
            call,
            limit_bytes: MAX_WASM_STACK_BYTES,
        },
        _ if is_hostcall_fuel_exhausted(&error) => Error::BoundaryExceeded {
            connector,
            call,
            limit_bytes: limits.max_boundary_bytes(),
            overhead_bytes: limits::BOUNDARY_OVERHEAD_BYTES,
        },
        _ if store.data().limiter.memory_exceeded => Error::MemoryExceeded {
            connector,
            call,
            limit_bytes: limits.max_memory_bytes,
        },
        _ => {
            // The full chain (with the wasm backtrace) is for debugging; the error says what
            // happened in one line, with the panic message when the guest left one on stderr.
            tracing::debug!(connector = %connector, call, error = format!("{error:#}"), "Guest trapped.");
            let detail = match (store.data().stderr.panic_message(), trap) {
                (Some(panic), _) => panic,
                (None, Some(trap)) => format!("wasm trap: {trap}"),
                (None, None) => error.to_string(),
            };
            Error::Trapped {
                connector,
                call,
                detail,
            }
        }
    })
}

/// Whether `error` is wasmtime refusing to lift more data than the store's hostcall fuel allows.
/// wasmtime 48 keeps that error type private, so it is recognised by its message, which has been
/// stable since hostcall fuel was introduced.
fn is_hostcall_fuel_exhausted(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.to_string().contains("fuel allocated for hostcalls"))
}
