//! What a connector returns: [`Next`] (the next step) and [`Page`] (records, state, next).

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

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
/// [`Page::push`] and [`Page::push_value`] write compact JSON; [`Page::push_raw`] copies a
/// record's own JSON text (from [`Response::json_records`](crate::Response::json_records)),
/// which skips building and re-serialising a `Value` for it.
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
    /// Records as JSON objects, one per line, no trailing newline.
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

    /// An empty page (see [`Page::new`]) with room for `bytes` bytes of records, e.g. the size
    /// of the response body they come from.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            records: String::with_capacity(bytes),
            ..Self::new()
        }
    }

    /// Add one record. It must serialise to a JSON object; anything else is a
    /// [`Error::ConnectorBug`].
    pub fn push(&mut self, record: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|error| {
            Error::bug(format!("record {} cannot be serialised: {error}", self.len))
        })?;
        self.push_line(&line)
    }

    /// Add one record given as a JSON value (see [`Page::push`]).
    pub fn push_value(&mut self, record: &Value) -> Result<()> {
        if !record.is_object() {
            return Err(self.not_an_object(crate::json::describe(record)));
        }
        // A `Value` serialises to compact JSON: no raw newline to take out.
        self.start_line();
        self.records.push_str(&record.to_string());
        Ok(())
    }

    /// Add one record given as JSON text, copied as it is: the API's own bytes, field order and
    /// number spelling, without parsing it again. It must be an object (anything else is a
    /// [`Error::ConnectorBug`]); whitespace outside strings is taken out only if it holds a
    /// line break, which would split the JSON line.
    ///
    /// ```
    /// use sluice_sdk::prelude::*;
    /// use sluice_sdk::serde_json::value::RawValue;
    ///
    /// # fn main() -> Result<()> {
    /// let body = "[{\"b\": 1.50, \"a\": \"\\u00e9\"}, {\n  \"c\": \"x y\"\n}, 7]";
    /// let records: Vec<&RawValue> = serde_json::from_str(body)?;
    /// let mut page: Page<()> = Page::new();
    /// page.push_raw(records[0])?;
    /// page.push_raw(records[1])?;
    /// assert!(page.push_raw(records[2]).is_err(), "records must be objects");
    /// assert_eq!(page.records_jsonl(), "{\"b\": 1.50, \"a\": \"\\u00e9\"}\n{\"c\":\"x y\"}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn push_raw(&mut self, record: &RawValue) -> Result<()> {
        let text = record.get();
        // A `RawValue` is one valid JSON value without surrounding whitespace: an object
        // exactly when it starts with `{`.
        if !text.starts_with('{') {
            return Err(self.not_an_object(crate::json::describe_raw(record)));
        }
        self.start_line();
        match has_line_break(text) {
            true => push_without_whitespace(&mut self.records, text),
            false => self.records.push_str(text),
        }
        Ok(())
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

    fn push_line(&mut self, line: &str) -> Result<()> {
        // Compact JSON is an object exactly when it starts with `{`, and never contains a raw
        // line break. A custom `Serialize` could still emit pretty raw JSON (a `RawValue`
        // field): take its whitespace out.
        if !line.starts_with('{') {
            let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            return Err(self.not_an_object(crate::json::describe(&value)));
        }
        self.start_line();
        match has_line_break(line) {
            true => push_without_whitespace(&mut self.records, line),
            false => self.records.push_str(line),
        }
        Ok(())
    }

    /// Count one more record and separate it from the previous one.
    fn start_line(&mut self) {
        if self.len > 0 {
            self.records.push('\n');
        }
        self.len += 1;
    }

    fn not_an_object(&self, kind: &str) -> Error {
        Error::bug(format!(
            "record {} is {kind}, but records must be JSON objects",
            self.len
        ))
    }
}

/// Whether `json` holds a line break (which, in valid JSON, is whitespace between tokens:
/// inside strings they are escaped).
fn has_line_break(json: &str) -> bool {
    // Eight bytes at a time: `word ^ (ONES * b)` has a zero byte exactly where `word` has `b`,
    // and `(x - ONES) & !x & HIGHS` is non-zero exactly when `x` has a zero byte. Most records
    // have no line break, so this runs over every byte of a page.
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let has_zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let (words, tail) = json.as_bytes().as_chunks::<8>();
    words.iter().any(|word| {
        let word = u64::from_le_bytes(*word);
        has_zero_byte(word ^ (ONES * u64::from(b'\n')))
            | has_zero_byte(word ^ (ONES * u64::from(b'\r')))
    }) || tail.iter().any(|&byte| matches!(byte, b'\n' | b'\r'))
}

/// Append valid JSON text `json` to `out` without the whitespace outside its strings: compact,
/// with the field order, escapes and number spelling of the text.
fn push_without_whitespace(out: &mut String, json: &str) {
    let bytes = json.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            // Whitespace is ASCII, so `start..at` ends on a character boundary.
            out.push_str(&json[start..at]);
            start = at + 1;
        }
    }
    out.push_str(&json[start..]);
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
    fn raw_records_are_copied_and_line_breaks_taken_out() {
        let body = "[{\"z\": 1, \"a\": [1.0e2, \"\\u00e9 \\\"\\n\"]},\r\n{\n\t\"k\" : \"a b\\\\\" ,\r\n \"m\": {}\n}, [], \"{\"]";
        let records: Vec<&RawValue> = serde_json::from_str(body).unwrap();
        let mut page: Page<()> = Page::with_capacity(body.len());
        page.push_raw(records[0]).unwrap();
        page.push_raw(records[1]).unwrap();
        assert_eq!(
            page.records_jsonl(),
            "{\"z\": 1, \"a\": [1.0e2, \"\\u00e9 \\\"\\n\"]}\n{\"k\":\"a b\\\\\",\"m\":{}}"
        );
        assert_eq!(
            page.push_raw(records[2]).unwrap_err(),
            Error::ConnectorBug("record 2 is an array, but records must be JSON objects".into())
        );
        assert!(page.push_raw(records[3]).is_err());
        assert_eq!(page.len(), 2);
        for line in page.records_jsonl().split('\n') {
            let original: Value = serde_json::from_str(line).unwrap();
            assert!(original.is_object());
        }
    }

    #[test]
    fn line_breaks_are_found_at_every_position() {
        for len in 0..20 {
            let plain = "a".repeat(len);
            assert!(!has_line_break(&plain), "{len}");
            for at in 0..len {
                for byte in ["\n", "\r"] {
                    let mut text = plain.clone();
                    text.replace_range(at..=at, byte);
                    assert!(has_line_break(&text), "{text:?}");
                }
            }
        }
        // Bytes next to 0x0a/0x0d, and multi-byte characters, are not line breaks.
        assert!(!has_line_break(
            "\t\u{b}\u{c}\u{e}\u{9}\u{8a}\u{10a}\u{2028}\u{8d}é漢字🙂"
        ));
    }

    #[test]
    fn a_serialised_record_with_a_line_break_is_made_compact() {
        #[derive(Serialize)]
        struct Wrapped<'a> {
            id: u32,
            extra: &'a RawValue,
        }
        let extra: &RawValue =
            serde_json::from_str("{\n  \"b\": 2,\n  \"a\": \"x\\ny\"\n}").unwrap();
        let mut page: Page<()> = Page::new();
        page.push(&Wrapped { id: 1, extra }).unwrap();
        assert_eq!(
            page.records_jsonl(),
            "{\"id\":1,\"extra\":{\"b\":2,\"a\":\"x\\ny\"}}"
        );
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
