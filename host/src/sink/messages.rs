//! Protocol messages on stdout: Airbyte (`RECORD`, `STATE`, `LOG`, `TRACE`, `SPEC`,
//! `CONNECTION_STATUS`, `CATALOG`) and Singer (`SCHEMA`, `RECORD`, `STATE`), one JSON object
//! per line, so that Sluice can stand where an Airbyte source or a Singer tap stands.
//!
//! The stdout writer keeps no position: what was flushed to stdout belongs to the consumer. The
//! host still commits its own checkpoint after each page, so a resumed run starts after the
//! last committed page, exactly as with the JSON-lines files.

use std::io::Write;

use serde_json::{Value, json};

use super::{Error, Format};
use crate::protocol::{Catalog, StreamInfo, SyncMode};

/// Writes one stream's records and states as protocol messages on stdout.
pub struct MessageWriter {
    format: Format,
    stream: String,
    /// The committed offset the sink was opened with, handed back unchanged: stdout output
    /// has no position, and the JSON-lines file of the stream (if any) is left alone.
    offset_bytes: u64,
}

impl MessageWriter {
    /// A writer for `stream` in `format` (Airbyte or Singer). Singer's `SCHEMA` message, with
    /// the stream's JSON schema and the top-level names of its primary key, is written now,
    /// before any record.
    pub fn open(
        format: Format,
        stream: &str,
        json_schema: &Value,
        primary_key: &[String],
        committed_bytes: u64,
    ) -> Result<Self, Error> {
        let writer = Self {
            format,
            stream: stream.to_owned(),
            offset_bytes: committed_bytes,
        };
        if format == Format::Singer {
            let schema = if json_schema.is_object() {
                json_schema.clone()
            } else {
                json!({})
            };
            let message = json!({
                "type": "SCHEMA",
                "stream": stream,
                "schema": schema,
                "key_properties": key_properties(primary_key),
            });
            write_stdout(&format!("{message}\n"))?;
        }
        Ok(writer)
    }

    /// The offset this writer was opened with (stdout output moves no file position).
    pub fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }

    /// Writes a `RECORD` message per JSON line of `lines`.
    pub fn write_records(&mut self, lines: &str) -> Result<(), Error> {
        let mut out = String::with_capacity(lines.len() * 2 + 128);
        let emitted_at = crate::connector::now_ms();
        for line in lines.lines().filter(|line| !line.trim().is_empty()) {
            let data: Value = serde_json::from_str(line).map_err(|error| Error::Stdout {
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
            })?;
            let message = match self.format {
                Format::Singer => json!({"type": "RECORD", "stream": self.stream, "record": data}),
                _ => json!({
                    "type": "RECORD",
                    "record": {"stream": self.stream, "data": data, "emitted_at": emitted_at},
                }),
            };
            out.push_str(&message.to_string());
            out.push('\n');
        }
        write_stdout(&out)
    }

    /// Writes a `STATE` message with the connector's `state` (JSON text; `{}` when there is
    /// none) and flushes stdout: the records before it are now the consumer's.
    pub fn write_state(&mut self, state: Option<&str>) -> Result<u64, Error> {
        let mut out = String::with_capacity(256);
        let state = state_value(state);
        let message = match self.format {
            Format::Singer => json!({
                "type": "STATE",
                "value": {"bookmarks": {self.stream.as_str(): state}},
            }),
            _ => json!({
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "stream": {
                        "stream_descriptor": {"name": self.stream},
                        "stream_state": state_blob(state),
                    },
                },
            }),
        };
        out.push_str(&message.to_string());
        out.push('\n');
        write_stdout(&out)?;
        Ok(self.offset_bytes)
    }
}

/// Writes `text` to stdout at once and flushes it.
pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::Stdout { error })
}

/// The connector's state as JSON: `{}` when there is none, a string if it is not JSON text.
fn state_value(state: Option<&str>) -> Value {
    match state {
        None => json!({}),
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// Airbyte's `stream_state` must be an object: any other state is wrapped as `{"state": ..}`.
fn state_blob(state: Value) -> Value {
    if state.is_object() {
        state
    } else {
        json!({ "state": state })
    }
}

/// The path segments of a JSON pointer (`/a/b~1c` → `["a", "b/c"]`).
fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Singer's `key_properties`: the top-level field of each primary-key pointer, once each.
pub fn key_properties(primary_key: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for pointer in primary_key {
        if let Some(first) = pointer_segments(pointer).into_iter().next()
            && !names.contains(&first)
        {
            names.push(first);
        }
    }
    names
}

/// Airbyte `LOG` message at `level` (`INFO`, `WARN`, `ERROR`, ...).
pub fn airbyte_log(level: &str, message: &str) -> Value {
    json!({"type": "LOG", "log": {"level": level, "message": message}})
}

/// Airbyte `TRACE` message of type `ERROR`; `config_error` says the operator must fix the
/// connection, `system_error` anything else.
pub fn airbyte_error_trace(message: &str, config_error: bool) -> Value {
    json!({
        "type": "TRACE",
        "trace": {
            "type": "ERROR",
            "emitted_at": crate::connector::now_ms() as f64,
            "error": {
                "message": message,
                "failure_type": if config_error { "config_error" } else { "system_error" },
            },
        },
    })
}

/// Airbyte `SPEC` message for a connector whose config follows `config_schema`.
pub fn airbyte_spec(config_schema: &Value) -> Value {
    json!({"type": "SPEC", "spec": {"connectionSpecification": config_schema}})
}

/// Airbyte `CONNECTION_STATUS` message: `SUCCEEDED`, or `FAILED` with why.
pub fn airbyte_connection_status(result: Result<&str, &str>) -> Value {
    let (status, message) = match result {
        Ok(message) => ("SUCCEEDED", message),
        Err(message) => ("FAILED", message),
    };
    json!({
        "type": "CONNECTION_STATUS",
        "connectionStatus": {"status": status, "message": message},
    })
}

/// Airbyte `CATALOG` message for the streams of `catalog`.
pub fn airbyte_catalog(catalog: &Catalog) -> Value {
    let streams: Vec<Value> = catalog.streams.iter().map(airbyte_stream).collect();
    json!({"type": "CATALOG", "catalog": {"streams": streams}})
}

fn airbyte_stream(stream: &StreamInfo) -> Value {
    let modes: Vec<&str> = stream
        .sync_modes
        .iter()
        .map(|mode| match mode {
            SyncMode::FullRefresh => "full_refresh",
            SyncMode::Incremental => "incremental",
        })
        .collect();
    let modes = if modes.is_empty() {
        vec!["full_refresh"]
    } else {
        modes
    };
    let cursor: Vec<String> = stream
        .cursor_field
        .as_deref()
        .map(pointer_segments)
        .unwrap_or_default();
    let primary_key: Vec<Vec<String>> = stream
        .primary_key
        .iter()
        .map(|pointer| pointer_segments(pointer))
        .collect();
    let schema = if stream.json_schema.is_object() {
        stream.json_schema.clone()
    } else {
        json!({})
    };
    json!({
        "name": stream.name,
        "json_schema": schema,
        "supported_sync_modes": modes,
        "source_defined_cursor": !cursor.is_empty(),
        "default_cursor_field": cursor,
        "source_defined_primary_key": primary_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_properties_are_top_level_names() {
        let keys = key_properties(&["/id".into(), "/org/id".into(), "/a~1b".into()]);
        assert_eq!(keys, ["id", "org", "a/b"]);
    }

    #[test]
    fn state_that_is_not_json_is_a_string() {
        assert_eq!(state_value(None), json!({}));
        assert_eq!(state_value(Some("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(state_value(Some("abc")), json!("abc"));
    }
}
