//! Installs the process's `tracing` subscriber. Only the binary calls this; the library never
//! installs one, so embedders and tests keep control of their own.

use tracing_subscriber::EnvFilter;

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs a stderr subscriber. `verbosity` counts `-v` flags minus `-q` flags (0 = warnings
/// and errors only). `SLUICE_LOG` (an `EnvFilter` directive, e.g. `wasmtime=debug`) overrides
/// it.
pub fn init(verbosity: i8, format: LogFormat) {
    // `-v` flags raise Sluice's own events and the connectors' (`guest`) log lines; the
    // libraries underneath (wasmtime, cranelift, hyper) stay at warnings, since their debug
    // output is enormous (cranelift traces every compiled function) and of no use to operators.
    let default = match verbosity {
        i8::MIN..=-1 => "error".to_owned(),
        0 => format!("warn,{}=info", crate::progress::TARGET),
        _ => {
            let level = match verbosity {
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            format!(
                "warn,sluice_host={level},guest={level},{}=info",
                crate::progress::TARGET
            )
        }
    };
    let filter = EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| EnvFilter::new(&default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // A second call (tests running the CLI in-process) keeps the first subscriber.
    drop(installed);
}
