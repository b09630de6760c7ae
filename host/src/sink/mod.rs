//! Where records go: one JSON-lines file per stream (the default), or protocol messages on
//! stdout (Airbyte or Singer). A sink knows nothing about wasm; it appends validated records,
//! makes them durable, and can be cut back to a committed position so that a resumed sync
//! never duplicates output.

mod jsonl;
pub mod messages;

pub use jsonl::JsonlSink;
pub use messages::MessageWriter;

use std::path::{Path, PathBuf};

/// The form of a run's output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `<output dir>/<stream>.jsonl`, one record per line.
    #[default]
    Jsonl,
    /// Airbyte protocol messages on stdout (`RECORD`, `STATE`, `LOG`, `TRACE`).
    Airbyte,
    /// Singer messages on stdout (`SCHEMA`, `RECORD`, `STATE`).
    Singer,
}

impl Format {
    /// Whether the output is a file, which a resumed sync cuts back to the last commit.
    /// Only then may a page be written before its checkpoint is committed; messages on stdout
    /// cannot be taken back once a consumer has read them.
    pub fn writes_file(self) -> bool {
        self == Self::Jsonl
    }
}

/// A stream's output: its JSON-lines file, or protocol messages on stdout.
pub enum Output {
    /// The JSON-lines file.
    Jsonl(JsonlSink),
    /// Messages on stdout; no file is written.
    Stdout(MessageWriter),
}

/// What a stream's output needs to know about it.
pub struct StreamOutput<'a> {
    /// The stream's name.
    pub name: &'a str,
    /// Its JSON schema (Singer's `SCHEMA` message).
    pub json_schema: &'a serde_json::Value,
    /// JSON pointers of its primary key (Singer's `key_properties`).
    pub primary_key: &'a [String],
    /// The JSON-lines file.
    pub path: &'a Path,
}

impl Output {
    /// Opens the output of `stream` in `format`, cut back to `committed_bytes` for a file.
    pub fn open(
        format: Format,
        stream: &StreamOutput<'_>,
        committed_bytes: u64,
    ) -> Result<Self, Error> {
        match format {
            Format::Jsonl => Ok(Self::Jsonl(JsonlSink::open(stream.path, committed_bytes)?)),
            Format::Airbyte | Format::Singer => Ok(Self::Stdout(MessageWriter::open(
                format,
                stream.name,
                stream.json_schema,
                stream.primary_key,
                committed_bytes,
            )?)),
        }
    }

    /// Appends one page of validated JSON lines (file: written, not yet synced; stdout: one
    /// `RECORD` message each, which a consumer keeps only once a `STATE` follows).
    pub fn write(&mut self, lines: &str) -> Result<(), Error> {
        match self {
            Self::Jsonl(sink) => sink.append(lines),
            Self::Stdout(writer) => writer.write_records(lines),
        }
    }

    /// Makes everything written so far durable before a checkpoint covers it (file: synced;
    /// stdout: a `STATE` message carrying `state`, then flushed). Returns the offset to
    /// checkpoint.
    pub fn commit(&mut self, state: Option<&str>) -> Result<u64, Error> {
        match self {
            Self::Jsonl(sink) => sink.sync(),
            Self::Stdout(writer) => writer.write_state(state),
        }
    }

    /// Discards earlier output (a full refresh). Stdout output cannot be taken back: no-op.
    pub fn reset(&mut self) -> Result<(), Error> {
        match self {
            Self::Jsonl(sink) => sink.reset(),
            Self::Stdout(_) => Ok(()),
        }
    }
}

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
    /// Messages could not be written to stdout (`--format airbyte|singer`).
    #[error("cannot write messages to stdout: {error}")]
    Stdout {
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
