//! Incremental-sync state: [`Watermark`], the high-water mark of a cursor field.
//!
//! A run filters with the mark committed by the last *complete* run and tracks the highest
//! value it has emitted separately, promoting it only when the stream is done. That keeps a
//! state checkpointed mid-run consistent: the host resumes by re-sending the pending request
//! with that state, and the filter is still the one the run started with.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;

/// The state of an incremental stream ordered by one cursor field.
///
/// Serialised as `{"cursor": <mark>}` between runs and `{"cursor": <mark>, "max": <highest
/// emitted so far>}` during one. Records whose cursor value is at or below `cursor` were
/// emitted by an earlier run and are dropped ([`Watermark::admit`]): this de-duplicates the
/// boundary when the API's filter is inclusive (`since=` returns records *at* the mark too).
/// The price is that a record created later with exactly the mark's value is skipped, which is
/// why APIs with coarse timestamps should prefer an id as the cursor.
///
/// Values compare with [`json::compare_cursors`]: numbers numerically, strings
/// lexicographically.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// let mut state = Watermark::from_cursor(json!("2024-01-02"));
/// assert!(!state.admit(&json!({"updated_at": "2024-01-02"}), "/updated_at"), "seen last run");
/// assert!(state.admit(&json!({"updated_at": "2024-01-05"}), "/updated_at"));
/// assert_eq!(state.cursor(), Some(&json!("2024-01-02")), "the filter stays put mid-run");
/// state.finish();
/// assert_eq!(state.cursor(), Some(&json!("2024-01-05")));
/// assert_eq!(serde_json::to_value(&state).unwrap(), json!({"cursor": "2024-01-05"}));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    /// The mark committed by the last complete run: records at or below it were emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<Value>,
    /// The highest value emitted by the run in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<Value>,
}

impl Watermark {
    /// A state with `cursor` as the mark, as if a previous run had ended there (useful for a
    /// configured start value).
    pub fn from_cursor(cursor: Value) -> Self {
        Self {
            cursor: Some(cursor),
            max: None,
        }
    }

    /// The mark of the last complete run, the value to send to the API as "since".
    pub fn cursor(&self) -> Option<&Value> {
        self.cursor.as_ref()
    }

    /// The mark as a query-parameter value (see [`json::query_value`]).
    pub fn cursor_param(&self) -> Option<String> {
        self.cursor.as_ref().and_then(json::query_value)
    }

    /// The highest value emitted by the run in progress, if any.
    pub fn running_max(&self) -> Option<&Value> {
        self.max.as_ref()
    }

    /// Whether `value` is past the mark. Without a mark, or when the two cannot be compared
    /// (different kinds), everything is new: records are never dropped on a doubt.
    pub fn is_new(&self, value: &Value) -> bool {
        match &self.cursor {
            None => true,
            Some(cursor) => !matches!(
                json::compare_cursors(value, cursor),
                Some(Ordering::Less | Ordering::Equal)
            ),
        }
    }

    /// Record that `value` was emitted: it raises the running maximum. A value that cannot
    /// be compared with the current maximum leaves it unchanged.
    pub fn observe(&mut self, value: &Value) {
        let higher = match &self.max {
            None => !value.is_null(),
            Some(max) => json::compare_cursors(value, max) == Some(Ordering::Greater),
        };
        if higher {
            self.max = Some(value.clone());
        }
    }

    /// Decide whether `record` is new, reading its cursor at JSON pointer `field`, and observe
    /// the value if so. A record without the field (or with `null` there) is admitted and not
    /// observed, since it cannot be placed.
    pub fn admit(&mut self, record: &Value, field: &str) -> bool {
        match json::pointer(record, field) {
            None | Some(Value::Null) => true,
            Some(value) if self.is_new(value) => {
                self.observe(value);
                true
            }
            Some(_) => false,
        }
    }

    /// The stream is complete: the running maximum becomes the mark for the next run.
    pub fn finish(&mut self) {
        if let Some(max) = self.max.take() {
            let higher = match &self.cursor {
                None => true,
                Some(cursor) => json::compare_cursors(&max, cursor) == Some(Ordering::Greater),
            };
            if higher {
                self.cursor = Some(max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_run_admits_everything_and_promotes_the_max() {
        let mut state = Watermark::default();
        for id in [3, 1, 2] {
            assert!(state.admit(&json!({"id": id}), "/id"));
        }
        assert!(state.admit(&json!({"other": 1}), "/id"));
        assert_eq!(serde_json::to_value(&state).unwrap(), json!({"max": 3}));
        state.finish();
        assert_eq!(serde_json::to_value(&state).unwrap(), json!({"cursor": 3}));
    }

    #[test]
    fn resumed_mid_run_state_keeps_the_original_filter() {
        let mut state = Watermark::from_cursor(json!(10));
        assert!(!state.admit(&json!({"id": 10}), "/id"));
        assert!(state.admit(&json!({"id": 12}), "/id"));
        let saved = serde_json::to_string(&state).unwrap();
        assert_eq!(saved, r#"{"cursor":10,"max":12}"#);

        let mut resumed: Watermark = serde_json::from_str(&saved).unwrap();
        assert!(
            resumed.admit(&json!({"id": 11}), "/id"),
            "11 > 10: new for this run"
        );
        assert_eq!(resumed.running_max(), Some(&json!(12)));
        resumed.finish();
        assert_eq!(resumed.cursor(), Some(&json!(12)));
        assert_eq!(resumed.cursor_param().as_deref(), Some("12"));
    }

    #[test]
    fn incomparable_values_are_admitted() {
        let mut state = Watermark::from_cursor(json!("2024"));
        assert!(state.admit(&json!({"t": 5}), "/t"));
        state.finish();
        assert_eq!(
            state.cursor(),
            Some(&json!("2024")),
            "an incomparable max does not replace the mark"
        );
    }
}
