//! The shared wasmtime engine: configuration, the on-disk compilation cache and the epoch
//! ticker that makes guest CPU deadlines work.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::Error;

/// How often the epoch advances. A guest deadline is a whole number of ticks, so this is the
/// granularity of CPU deadlines; 10 ms keeps the ticker's own cost negligible.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Wasm stack a guest may use: enough for deep serde recursion, small enough that a runaway
/// recursion traps quickly.
pub const MAX_WASM_STACK_BYTES: usize = 1024 * 1024;

/// Builds the engine every connector runs on. `cache_dir`, when given, holds compiled
/// components keyed by a hash of their bytes and the engine configuration, so a second run does
/// not recompile.
pub fn build_engine(cache_dir: Option<&Path>) -> Result<Engine, Error> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    if let Some(dir) = cache_dir {
        let mut cache_config = CacheConfig::new();
        cache_config.with_directory(dir);
        match Cache::new(cache_config) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(error) => tracing::warn!(
                cache_dir = %dir.display(),
                error = %error,
                "Compilation cache unavailable; components will be compiled on every run."
            ),
        }
    }
    Engine::new(&config).map_err(|error| Error::Engine {
        detail: format!("{error:#}"),
    })
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        #[allow(
                            clippy::disallowed_methods,
                            reason = "a dedicated OS thread, not an async task"
                        )]
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|error| Error::Engine {
                detail: format!("cannot start the epoch thread: {error}"),
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
