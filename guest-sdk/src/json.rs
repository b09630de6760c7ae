//! JSON helpers: reading values at JSON pointers (RFC 6901), finding the record array in a
//! response body, and ordering cursor values.

use std::cmp::Ordering;

use serde_json::Value;

use crate::{Error, Result};

/// The value at JSON pointer `pointer` (RFC 6901) in `value`; `""` is `value` itself.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// let body = json!({"data": {"items": [{"id": 7}]}, "a/b": 1});
/// assert_eq!(json::pointer(&body, "/data/items/0/id"), Some(&json!(7)));
/// assert_eq!(json::pointer(&body, "/a~1b"), Some(&json!(1)));
/// assert_eq!(json::pointer(&body, "/missing"), None);
/// ```
pub fn pointer<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    value.pointer(pointer)
}

/// Whether `pointer` is a syntactically valid JSON pointer: `""`, or `/`-separated tokens in
/// which `~` only appears as `~0` or `~1`. Use it to check pointers that come from config.
///
/// ```
/// use sluice_sdk::json::is_valid_pointer;
///
/// assert!(is_valid_pointer(""));
/// assert!(is_valid_pointer("/data/items"));
/// assert!(!is_valid_pointer("data"));
/// assert!(!is_valid_pointer("/a~2"));
/// ```
pub fn is_valid_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let bytes = pointer.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'~')
        .all(|(at, _)| matches!(bytes.get(at + 1), Some(b'0' | b'1')))
}

/// The records of a response body: the array at JSON pointer `pointer`, where `""` means the
/// body itself is the array.
///
/// A missing value or a value that is not an array is an [`Error::UnexpectedResponse`] naming
/// the pointer.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let body = json!({"data": [{"id": 1}, {"id": 2}]});
/// assert_eq!(json::records_at(&body, "/data")?.len(), 2);
/// assert_eq!(json::records_at(&json!([{"id": 1}]), "")?.len(), 1);
/// assert!(json::records_at(&body, "/items").is_err());
/// # Ok(())
/// # }
/// ```
pub fn records_at<'a>(body: &'a Value, pointer: &str) -> Result<&'a [Value]> {
    let shown = match pointer {
        "" => "the top level (pointer \"\")".to_owned(),
        pointer => format!("`{pointer}`"),
    };
    match body.pointer(pointer) {
        Some(Value::Array(records)) => Ok(records),
        Some(other) => Err(Error::unexpected_response(format!(
            "expected an array of records at {shown} of the response body, found {}",
            describe(other)
        ))),
        None => Err(Error::unexpected_response(format!(
            "expected an array of records at {shown} of the response body, found nothing there"
        ))),
    }
}

/// Order two cursor values: numbers numerically, strings lexicographically (byte order, which
/// is chronological for ISO-8601 timestamps written the same way). Values of different kinds,
/// or of kinds without an order, compare as `None`.
///
/// ```
/// use std::cmp::Ordering;
/// use sluice_sdk::prelude::*;
///
/// assert_eq!(json::compare_cursors(&json!(9), &json!(10)), Some(Ordering::Less));
/// assert_eq!(json::compare_cursors(&json!("9"), &json!("10")), Some(Ordering::Greater));
/// assert_eq!(json::compare_cursors(&json!(1), &json!("1")), None);
/// ```
pub fn compare_cursors(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => match (as_integer(a), as_integer(b)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn as_integer(number: &serde_json::Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

/// A scalar as a query-parameter value: strings as they are, numbers and booleans in their
/// JSON spelling. Arrays, objects and `null` have none.
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// assert_eq!(json::query_value(&json!("2024-01-01T00:00:00Z")).as_deref(), Some("2024-01-01T00:00:00Z"));
/// assert_eq!(json::query_value(&json!(42)).as_deref(), Some("42"));
/// assert_eq!(json::query_value(&json!(null)), None);
/// ```
pub fn query_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A short description of a value's kind for error messages: `"a string"`, `"an object"`, ...
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_at_names_the_pointer() {
        let body = json!({"data": {"items": "nope"}});
        assert_eq!(
            records_at(&body, "/data/items").unwrap_err(),
            Error::UnexpectedResponse(
                "expected an array of records at `/data/items` of the response body, found a string"
                    .into()
            )
        );
        assert_eq!(
            records_at(&body, "").unwrap_err().message(),
            "expected an array of records at the top level (pointer \"\") of the response body, found an object"
        );
        assert!(
            records_at(&body, "/nothing")
                .unwrap_err()
                .message()
                .ends_with("found nothing there")
        );
    }

    #[test]
    fn cursor_order() {
        assert_eq!(
            compare_cursors(&json!(-1), &json!(u64::MAX)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_cursors(&json!(1.5), &json!(1)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_cursors(&json!(2), &json!(2.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_cursors(
                &json!("2024-01-02T00:00:00Z"),
                &json!("2024-01-10T00:00:00Z")
            ),
            Some(Ordering::Less)
        );
        assert_eq!(compare_cursors(&json!(null), &json!(null)), None);
        assert_eq!(compare_cursors(&json!([1]), &json!([1])), None);
    }

    #[test]
    fn pointer_syntax() {
        assert!(is_valid_pointer("/a~0b~1c/0"));
        assert!(!is_valid_pointer("/a~"));
        assert!(is_valid_pointer("/"));
    }
}
