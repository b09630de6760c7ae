//! Incremental-sync state: [`Watermark`], the high-water mark of a cursor field, and the
//! [`Boundary`] rules that make it exact when many records share the mark's value.
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
    /// Tie-breaker keys of the records emitted with exactly `cursor` (see [`Boundary`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ties: Vec<Value>,
    /// Tie-breaker keys of the records emitted so far with exactly `max`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    max_ties: Vec<Value>,
}

/// How an incremental stream treats the records around its mark.
///
/// - **Inclusive boundary with a tie-breaker.** With `tie_breaker` set (a JSON pointer to a
///   unique key, usually the id), a record *at* the mark is new unless its key was emitted at
///   the mark before: many records sharing one `updated_at` are neither lost when some arrive
///   after the sync that set the mark, nor duplicated when the API's filter returns the mark
///   again. Without it, records at the mark are taken as already emitted.
/// - **Lookback.** With `lookback_secs`, the filter sent to the API starts that much before
///   the mark ([`Watermark::filter_param`]) and records in the window are admitted again, for
///   APIs whose timestamps become visible late or whose filter is strictly "after". Re-read
///   records the host already wrote unchanged are dropped by its seen index, so the output
///   still holds each version once.
///
/// ```
/// use sluice_sdk::prelude::*;
/// use sluice_sdk::incremental::Boundary;
///
/// let boundary = Boundary { tie_breaker: Some("/id".into()), lookback_secs: 0 };
/// let mut state = Watermark::default();
/// assert!(state.admit_at(&json!({"id": 1, "t": 5}), "/t", &boundary));
/// assert!(state.admit_at(&json!({"id": 2, "t": 5}), "/t", &boundary));
/// state.finish();
/// // Next run: id 2 comes back at the mark (inclusive filter), id 3 arrived at the same time.
/// assert!(!state.admit_at(&json!({"id": 2, "t": 5}), "/t", &boundary));
/// assert!(state.admit_at(&json!({"id": 3, "t": 5}), "/t", &boundary));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boundary {
    /// JSON pointer to a key that tells records with the same cursor value apart.
    pub tie_breaker: Option<String>,
    /// How far before the mark the next run starts reading again, in seconds (timestamps as
    /// RFC 3339 strings or Unix seconds).
    pub lookback_secs: u64,
}

impl Watermark {
    /// A state with `cursor` as the mark, as if a previous run had ended there (useful for a
    /// configured start value).
    pub fn from_cursor(cursor: Value) -> Self {
        Self {
            cursor: Some(cursor),
            ..Self::default()
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

    /// The mark as the API's filter value under `boundary`: `lookback_secs` earlier for RFC 3339
    /// timestamps and Unix seconds; other values as they are.
    pub fn filter_param(&self, boundary: &Boundary) -> Option<String> {
        let cursor = self.cursor.as_ref()?;
        if boundary.lookback_secs == 0 {
            return json::query_value(cursor);
        }
        let lookback = i64::try_from(boundary.lookback_secs).unwrap_or(i64::MAX);
        match cursor {
            Value::Number(number) => match number.as_i64() {
                Some(seconds) => Some(seconds.saturating_sub(lookback).to_string()),
                None => number
                    .as_f64()
                    .map(|seconds| (seconds - boundary.lookback_secs as f64).to_string()),
            },
            Value::String(text) => Some(
                crate::time::parse_rfc3339(text)
                    .map(|seconds| crate::time::format_rfc3339(seconds.saturating_sub(lookback)))
                    .unwrap_or_else(|| text.clone()),
            ),
            other => json::query_value(other),
        }
    }

    /// Decides whether `record` is new under `boundary` (see [`Boundary`]), reading its
    /// cursor at `field`, and observes it if so. Records without the field are admitted.
    pub fn admit_at(&mut self, record: &Value, field: &str, boundary: &Boundary) -> bool {
        let Some(value) = json::pointer(record, field).filter(|v| !v.is_null()) else {
            return true;
        };
        let key = boundary
            .tie_breaker
            .as_deref()
            .and_then(|pointer| json::pointer(record, pointer))
            .cloned();
        self.admit_found_at(Some(value), key, boundary)
    }

    /// [`admit_at`](Self::admit_at) for a record whose cursor `value` and tie-breaker `key`
    /// were already read (e.g. with [`json::values_at`] from a raw record): `None` when the
    /// record has no such field.
    ///
    /// ```
    /// use sluice_sdk::prelude::*;
    /// use sluice_sdk::incremental::Boundary;
    ///
    /// let boundary = Boundary { tie_breaker: Some("/id".into()), lookback_secs: 0 };
    /// let mut state = Watermark::from_cursor(json!(5));
    /// assert!(!state.admit_found_at(Some(&json!(4)), Some(json!(1)), &boundary));
    /// assert!(state.admit_found_at(Some(&json!(6)), Some(json!(2)), &boundary));
    /// assert!(state.admit_found_at(None, None, &boundary), "no cursor value: admitted");
    /// ```
    pub fn admit_found_at(
        &mut self,
        value: Option<&Value>,
        key: Option<Value>,
        boundary: &Boundary,
    ) -> bool {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return true;
        };
        let admitted = match self
            .cursor
            .as_ref()
            .map(|c| json::compare_cursors(value, c))
        {
            None | Some(None | Some(Ordering::Greater)) => true,
            Some(Some(Ordering::Equal)) => key.as_ref().is_some_and(|key| !self.ties.contains(key)),
            Some(Some(Ordering::Less)) => {
                boundary.lookback_secs > 0 && self.within_lookback(value, boundary.lookback_secs)
            }
        };
        if admitted {
            self.observe_key(value, key);
        }
        admitted
    }

    /// Whether `value` is at most `lookback_secs` before the mark.
    fn within_lookback(&self, value: &Value, lookback_secs: u64) -> bool {
        let seconds = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => crate::time::parse_rfc3339(s).map(|s| s as f64),
            _ => None,
        };
        match (self.cursor.as_ref().and_then(seconds), seconds(value)) {
            (Some(mark), Some(value)) => mark - value <= lookback_secs as f64,
            _ => false,
        }
    }

    /// Like [`observe`](Self::observe), also keeping the tie-breaker `key` of a record at the
    /// running maximum.
    fn observe_key(&mut self, value: &Value, key: Option<Value>) {
        match self
            .max
            .as_ref()
            .map(|max| json::compare_cursors(value, max))
        {
            None | Some(Some(Ordering::Greater)) => {
                self.max = Some(value.clone());
                self.max_ties = key.into_iter().collect();
            }
            Some(Some(Ordering::Equal)) => {
                if let Some(key) = key
                    && !self.max_ties.contains(&key)
                {
                    self.max_ties.push(key);
                }
            }
            Some(_) => {}
        }
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
        self.admit_found(json::pointer(record, field))
    }

    /// [`admit`](Self::admit) for a record whose cursor `value` was already read (e.g. with
    /// [`json::values_at`] from a raw record): `None` when the record has no such field.
    pub fn admit_found(&mut self, value: Option<&Value>) -> bool {
        match value {
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
        let max_ties = std::mem::take(&mut self.max_ties);
        if let Some(max) = self.max.take() {
            match self.cursor.as_ref().map(|c| json::compare_cursors(&max, c)) {
                None | Some(Some(Ordering::Greater)) => {
                    self.cursor = Some(max);
                    self.ties = max_ties;
                }
                Some(Some(Ordering::Equal)) => {
                    for key in max_ties {
                        if !self.ties.contains(&key) {
                            self.ties.push(key);
                        }
                    }
                }
                Some(_) => {}
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

    fn boundary(tie_breaker: Option<&str>, lookback_secs: u64) -> Boundary {
        Boundary {
            tie_breaker: tie_breaker.map(str::to_owned),
            lookback_secs,
        }
    }

    #[test]
    fn records_sharing_the_mark_are_neither_lost_nor_repeated() {
        let b = boundary(Some("/id"), 0);
        let mut state = Watermark::default();
        for id in [1, 2, 3] {
            assert!(state.admit_at(&json!({"id": id, "t": "2024-01-01T00:00:10Z"}), "/t", &b));
        }
        assert!(state.admit_at(&json!({"id": 0, "t": "2024-01-01T00:00:09Z"}), "/t", &b));
        state.finish();
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"cursor": "2024-01-01T00:00:10Z", "ties": [1, 2, 3]})
        );
        // The next run sees the boundary again plus a late record at the same second.
        for (id, new) in [(2, false), (4, true), (3, false)] {
            let record = json!({"id": id, "t": "2024-01-01T00:00:10Z"});
            assert_eq!(state.admit_at(&record, "/t", &b), new, "id {id}");
        }
        assert!(!state.admit_at(&json!({"id": 0, "t": "2024-01-01T00:00:09Z"}), "/t", &b));
        state.finish();
        assert_eq!(
            serde_json::to_value(&state).unwrap(),
            json!({"cursor": "2024-01-01T00:00:10Z", "ties": [1, 2, 3, 4]})
        );
        // A later value moves the mark and starts a new tie set.
        assert!(state.admit_at(&json!({"id": 9, "t": "2024-01-01T00:00:11Z"}), "/t", &b));
        state.finish();
        assert_eq!(state.ties, vec![json!(9)]);
    }

    #[test]
    fn lookback_reads_the_window_again_and_moves_the_filter_back() {
        let b = boundary(Some("/id"), 60);
        let mut state = Watermark::from_cursor(json!("2024-01-01T01:00:00Z"));
        assert_eq!(
            state.filter_param(&b).as_deref(),
            Some("2024-01-01T00:59:00Z")
        );
        assert!(state.admit_at(&json!({"id": 1, "t": "2024-01-01T00:59:30Z"}), "/t", &b));
        assert!(!state.admit_at(&json!({"id": 2, "t": "2024-01-01T00:58:59Z"}), "/t", &b));
        let numeric = Watermark::from_cursor(json!(1_000));
        assert_eq!(numeric.filter_param(&b).as_deref(), Some("940"));
        assert_eq!(
            numeric.filter_param(&boundary(None, 0)).as_deref(),
            Some("1000")
        );
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
