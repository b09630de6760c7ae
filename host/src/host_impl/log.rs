//! The `log` import: guest log lines re-emitted through `tracing` with `target: "guest"`,
//! truncated and capped per session so a guest cannot flood the host's log.

use crate::bindings::{log, types};
use crate::sandbox::StoreState;

impl types::Host for StoreState {}

impl log::Host for StoreState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let budget = &mut self.log;
        if budget.emitted >= budget.max_lines {
            budget.dropped += 1;
            if budget.dropped == 1 {
                tracing::warn!(
                    connector = %budget.connector,
                    max_lines = budget.max_lines,
                    "Connector log budget spent; further guest log lines are dropped."
                );
            }
            return Ok(());
        }
        budget.emitted += 1;
        let message = truncate(&message, budget.max_line_bytes);
        let connector = budget.connector.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "guest", connector, "{message}"),
            log::Level::Debug => tracing::debug!(target: "guest", connector, "{message}"),
            log::Level::Info => tracing::info!(target: "guest", connector, "{message}"),
            log::Level::Warn => tracing::warn!(target: "guest", connector, "{message}"),
            log::Level::Error => tracing::error!(target: "guest", connector, "{message}"),
        }
        Ok(())
    }
}

/// The longest prefix of `text` within `max_bytes`, cut on a character boundary, with control
/// characters (which could forge log lines) escaped.
fn truncate(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end);
    for c in text[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if end < text.len() {
        out.push_str("…[truncated]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_respects_char_boundaries_and_escapes_newlines() {
        assert_eq!(truncate("héllo", 2), "h…[truncated]");
        assert_eq!(truncate("a\nb", 10), "a\\nb");
    }
}
