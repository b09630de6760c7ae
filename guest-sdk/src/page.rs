//! What a connector returns: [`Next`] (the next step) and [`Page`] (records, state, next).

use serde::Serialize;
use serde_json::Value;

use crate::{Error, Request, Result};

/// What the connector wants to happen next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send this request and hand its response back.
    Fetch(Request),
    /// Wait, then send the request (for limits an API reports inside a 2xx body).
    BackOff {
        /// How long to wait, in milliseconds.
        wait_ms: u64,
        /// The request to send after waiting.
        request: Request,
    },
    /// The stream is complete.
    Done,
}

impl Next {
    /// Whether this is [`Next::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// The request to send next, if any.
    pub fn request(&self) -> Option<&Request> {
        match self {
            Self::Fetch(request) | Self::BackOff { request, .. } => Some(request),
            Self::Done => None,
        }
    }
}

impl From<Option<Request>> for Next {
    /// `Some(request)` fetches it, `None` is [`Next::Done`]: the shape pagination helpers
    /// return.
    fn from(request: Option<Request>) -> Self {
        request.map_or(Self::Done, Self::Fetch)
    }
}

impl From<Request> for Next {
    fn from(request: Request) -> Self {
        Self::Fetch(request)
    }
}

/// The result of parsing one response: records, the new state and what to do next.
///
/// Records are kept as JSON lines, exactly as they cross to the host: each must serialise to a
/// JSON object. A page without [`Page::with_state`] keeps the previous state, and a page
/// without [`Page::with_next`] ends the stream.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let mut page: Page<u32> = Page::new();
/// page.push(&json!({"id": 1}))?;
/// page.push(&json!({"id": 2}))?;
/// let mut page = page
///     .with_state(2)
///     .with_next(Request::get("https://api.example.com/items?page=2"));
/// assert_eq!(page.records_jsonl(), "{\"id\":1}\n{\"id\":2}");
/// assert!(page.push_value(&json!([1])).is_err(), "records must be objects");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Page<S> {
    /// Records as compact JSON objects, one per line, no trailing newline.
    records: String,
    /// How many records `records` holds.
    len: usize,
    /// The new state, or `None` to keep the previous one.
    state: Option<S>,
    /// What to do next.
    next: Next,
}

impl<S> Default for Page<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Page<S> {
    /// A page with no records that keeps the previous state and ends the stream.
    pub fn new() -> Self {
        Self {
            records: String::new(),
            len: 0,
            state: None,
            next: Next::Done,
        }
    }

    /// Add one record. It must serialise to a JSON object; anything else is a
    /// [`Error::ConnectorBug`].
    pub fn push(&mut self, record: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|error| {
            Error::bug(format!("record {} cannot be serialised: {error}", self.len))
        })?;
        self.push_line(line)
    }

    /// Add one record given as a JSON value (see [`Page::push`]).
    pub fn push_value(&mut self, record: &Value) -> Result<()> {
        if !record.is_object() {
            return Err(self.not_an_object(record));
        }
        self.push_line(record.to_string())
    }

    /// Add every record of `records` (see [`Page::push`]).
    pub fn extend<'a, T>(&mut self, records: impl IntoIterator<Item = &'a T>) -> Result<()>
    where
        T: Serialize + 'a,
    {
        records.into_iter().try_for_each(|record| self.push(record))
    }

    /// This page with every record of `records` added: the by-value form of
    /// [`Page::extend`], for pages built from a `Vec<serde_json::Value>` or a slice of one.
    pub fn with_records<'a, T>(mut self, records: impl IntoIterator<Item = &'a T>) -> Result<Self>
    where
        T: Serialize + 'a,
    {
        self.extend(records)?;
        Ok(self)
    }

    /// Set the new state; the host commits it together with this page's records.
    pub fn with_state(mut self, state: S) -> Self {
        self.state = Some(state);
        self
    }

    /// Set what happens next: a [`Next`], a [`Request`] to fetch, or an `Option<Request>`
    /// where `None` ends the stream.
    pub fn with_next(mut self, next: impl Into<Next>) -> Self {
        self.next = next.into();
        self
    }

    /// How many records the page holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the page holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records as JSON lines, as the host receives them.
    pub fn records_jsonl(&self) -> &str {
        &self.records
    }

    /// The new state, if the page sets one.
    pub fn state(&self) -> Option<&S> {
        self.state.as_ref()
    }

    /// What happens next.
    pub fn next(&self) -> &Next {
        &self.next
    }

    /// Split the page into its JSON lines, state and next step.
    pub fn into_parts(self) -> (String, Option<S>, Next) {
        (self.records, self.state, self.next)
    }

    fn push_line(&mut self, line: String) -> Result<()> {
        // Compact JSON is an object exactly when it starts with `{`, and never contains a raw
        // newline. A custom `Serialize` could still emit pretty raw JSON: reparse that.
        if !line.starts_with('{') {
            let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            return Err(self.not_an_object(&value));
        }
        let line = match line.contains('\n') {
            true => serde_json::from_str::<Value>(&line)?.to_string(),
            false => line,
        };
        if self.len > 0 {
            self.records.push('\n');
        }
        self.records.push_str(&line);
        self.len += 1;
        Ok(())
    }

    fn not_an_object(&self, value: &Value) -> Error {
        Error::bug(format!(
            "record {} is {}, but records must be JSON objects",
            self.len,
            crate::json::describe(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Issue {
        id: u64,
        title: &'static str,
    }

    #[test]
    fn records_are_compact_json_lines() {
        let mut page: Page<()> = Page::new();
        page.push(&Issue {
            id: 1,
            title: "a\nb",
        })
        .unwrap();
        page.extend(&[json!({"id": 2}), json!({"x": {"y": [1, 2]}})])
            .unwrap();
        assert_eq!(
            page.records_jsonl(),
            "{\"id\":1,\"title\":\"a\\nb\"}\n{\"id\":2}\n{\"x\":{\"y\":[1,2]}}"
        );
        assert_eq!(page.len(), 3);
        assert!(page.next().is_done());
        assert_eq!(page.state(), None);
    }

    #[test]
    fn non_objects_are_connector_bugs() {
        let mut page: Page<()> = Page::new();
        assert_eq!(
            page.push(&"text").unwrap_err(),
            Error::ConnectorBug("record 0 is a string, but records must be JSON objects".into())
        );
        assert!(page.push(&vec![1]).is_err());
        assert!(page.push_value(&json!(null)).is_err());
        assert!(page.is_empty());
    }

    #[test]
    fn next_from_option() {
        let request = Request::get("https://h/");
        assert_eq!(
            Next::from(Some(request.clone())),
            Next::Fetch(request.clone())
        );
        assert_eq!(Next::from(None), Next::Done);
        assert_eq!(
            Next::BackOff {
                wait_ms: 5,
                request: request.clone()
            }
            .request(),
            Some(&request)
        );
    }
}
