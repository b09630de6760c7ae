//! Where records go. Today: one JSON-lines file per stream. A sink knows nothing about wasm;
//! it appends validated records, makes them durable, and can be cut back to a committed
//! position so that a resumed sync never duplicates output.

mod jsonl;

pub use jsonl::JsonlSink;

use std::path::PathBuf;

/// Errors of the output sinks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output file could not be opened, written or flushed.
    #[error("cannot write output file `{}`: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error (part of the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The output file is shorter than the checkpoint says: someone changed it.
    #[error(
        "output file `{}` has {actual_bytes} bytes but the last checkpoint covers {committed_bytes}; it was changed outside sluice — restore it, or start over with `--full-refresh`",
        path.display()
    )]
    Shrunk {
        /// The file.
        path: PathBuf,
        /// Its size now.
        actual_bytes: u64,
        /// What the checkpoint recorded.
        committed_bytes: u64,
    },
}
