//! JSON helpers: reading values at JSON pointers (RFC 6901), finding the record array in a
//! response body, and ordering cursor values.
//!
//! Two ways to read records. [`records_at`] works on a body parsed into a [`Value`]: simple,
//! and right when a connector reshapes its records. [`Response::json_records`] parses the body
//! once without building a `Value` per record: each record stays the API's own JSON text
//! ([`RawValue`]) for [`Page::push_raw`], and [`values_at`] reads just the fields a connector
//! needs (a cursor, a key) from that text. That is several times cheaper per record.
//!
//! [`Response::json_records`]: crate::Response::json_records
//! [`Page::push_raw`]: crate::Page::push_raw

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// One JSON value kept as its text (serde_json's, re-exported): see [`RawRecords`].
pub use serde_json::value::RawValue;

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
    match body.pointer(pointer) {
        Some(Value::Array(records)) => Ok(records),
        Some(other) => Err(not_records(pointer, Some(describe(other)))),
        None => Err(not_records(pointer, None)),
    }
}

/// The error for a body without an array of records at `pointer`: it holds `found` (a
/// [`describe`] text) there, or nothing.
fn not_records(pointer: &str, found: Option<&str>) -> Error {
    let shown = match pointer {
        "" => "the top level (pointer \"\")".to_owned(),
        pointer => format!("`{pointer}`"),
    };
    Error::unexpected_response(format!(
        "expected an array of records at {shown} of the response body, found {}",
        found.unwrap_or("nothing there")
    ))
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

/// [`describe`] for JSON text: the kind of the value `raw` holds, read from its first byte.
///
/// ```
/// use sluice_sdk::json::describe_raw;
/// use sluice_sdk::serde_json::value::RawValue;
///
/// let raw: Box<RawValue> = RawValue::from_string(" [1, 2]".to_owned()).unwrap();
/// assert_eq!(describe_raw(&raw), "an array");
/// ```
pub fn describe_raw(raw: &RawValue) -> &'static str {
    // A `RawValue` holds exactly one valid JSON value with no whitespace around it.
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The records of a response body and the rest of it, parsed in one pass: see
/// [`Response::json_records`](crate::Response::json_records).
#[derive(Debug, Clone)]
pub struct RawRecords<'a> {
    /// Each record's JSON text, exactly as the API sent it (without the whitespace around it).
    pub records: Vec<&'a RawValue>,
    /// The body with the array of records replaced by an empty array: what a paginator reads
    /// (a next cursor, a total) with [`pointer()`].
    pub rest: Value,
}

/// Parse `body`, keeping the array at `pointer` as raw records (see
/// [`Response::json_records`](crate::Response::json_records)). A JSON syntax error is the
/// outer error; a missing or non-array value at `pointer` the inner one.
pub(crate) fn split_records<'a>(
    body: &'a [u8],
    pointer: &str,
) -> serde_json::Result<Result<RawRecords<'a>>> {
    let path = Pointer::new(pointer);
    let mut found = Found::Nothing;
    let rest = match &path.tokens {
        Some(tokens) => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let rest = Split {
                tokens,
                depth: 0,
                found: &mut found,
            }
            .deserialize(&mut deserializer)?;
            deserializer.end()?;
            rest
        }
        // Not a pointer: it finds nothing, as `Value::pointer` does.
        None => serde_json::from_slice(body)?,
    };
    Ok(match found {
        Found::Records(records) => Ok(RawRecords { records, rest }),
        Found::Other(kind) => Err(not_records(pointer, Some(kind))),
        Found::Nothing => Err(not_records(pointer, None)),
    })
}

/// What the walk of a body found at the records pointer.
enum Found<'de> {
    /// The pointer leads nowhere (so far).
    Nothing,
    /// An array: the records.
    Records(Vec<&'de RawValue>),
    /// A value of another kind ([`describe`] text).
    Other(&'static str),
}

/// Deserialises a body into a [`Value`], except for the value at `tokens` (from `depth` on),
/// which goes into `found` as raw records.
struct Split<'p, 'f, 'de> {
    tokens: &'p [String],
    depth: usize,
    found: &'f mut Found<'de>,
}

impl<'de> DeserializeSeed<'de> for Split<'_, '_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.depth == self.tokens.len() {
            true => deserializer.deserialize_any(Target { found: self.found }),
            false => deserializer.deserialize_any(self),
        }
    }
}

impl<'p, 'de> Split<'p, '_, 'de> {
    /// The seed for a child of this value, which the path continues into: a later duplicate
    /// key replaces an earlier one, as in a parsed `Value`.
    fn child(&mut self) -> Split<'p, '_, 'de> {
        *self.found = Found::Nothing;
        Split {
            tokens: self.tokens,
            depth: self.depth + 1,
            found: &mut *self.found,
        }
    }
}

impl<'de> Visitor<'de> for Split<'_, '_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let wanted = parse_index(&self.tokens[self.depth]);
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let next = match wanted == Some(values.len()) {
                true => seq.next_element_seed(self.child())?,
                false => seq.next_element()?,
            };
            match next {
                Some(value) => values.push(value),
                None => return Ok(Value::Array(values)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match key == self.tokens[self.depth] {
                true => map.next_value_seed(self.child())?,
                false => map.next_value()?,
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Deserialises the value the records pointer leads to: an array is kept as raw records, any
/// other value only described. Either way it leaves a placeholder in the rest of the body.
struct Target<'f, 'de> {
    found: &'f mut Found<'de>,
}

impl Target<'_, '_> {
    fn other<E>(self, kind: &'static str) -> Result<Value, E> {
        *self.found = Found::Other(kind);
        Ok(Value::Null)
    }
}

impl<'de> Visitor<'de> for Target<'_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        self.other("a boolean")
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        self.other("a number")
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        self.other("a number")
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        self.other("a number")
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        self.other("a string")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        self.other("null")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(record) = seq.next_element::<&'de RawValue>()? {
            records.push(record);
        }
        *self.found = Found::Records(records);
        Ok(Value::Array(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.other("an object")
    }
}

/// A JSON pointer split into its reference tokens once, to read it from many records with
/// [`values_at`].
///
/// ```
/// use sluice_sdk::json::Pointer;
///
/// assert!(Pointer::new("/data/0/id").is_valid());
/// assert!(Pointer::new("").is_valid(), "the whole value");
/// assert!(!Pointer::new("data").is_valid(), "a pointer starts with `/` (or is empty)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The unescaped reference tokens; `None` when the text is not a pointer (it finds
    /// nothing, as with [`pointer()`]).
    tokens: Option<Vec<String>>,
}

impl Pointer {
    /// Split `pointer` into its tokens, unescaping `~1` and `~0` as [`pointer()`] does.
    pub fn new(pointer: &str) -> Self {
        let tokens = match pointer {
            "" => Some(Vec::new()),
            pointer if pointer.starts_with('/') => Some(
                pointer
                    .split('/')
                    .skip(1)
                    .map(|token| token.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            ),
            _ => None,
        };
        Self { tokens }
    }

    /// Whether the text was a pointer: `""`, or starting with `/`.
    pub fn is_valid(&self) -> bool {
        self.tokens.is_some()
    }
}

/// An array index token as [`pointer()`] reads it: digits without a leading zero or sign.
fn parse_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// The value at `tokens` in `value`, as [`pointer()`] finds it.
fn lookup<'a>(value: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(value, |target, token| match target {
        Value::Object(map) => map.get(token),
        Value::Array(list) => parse_index(token).and_then(|index| list.get(index)),
        _ => None,
    })
}

/// The values at `pointers` in the JSON text `json`: what [`pointer()`] finds in the parsed
/// value, but only those values are built; everything else is skipped over. For reading a
/// cursor or a key from each raw record (see [`RawRecords`]).
///
/// Invalid JSON is an [`Error::UnexpectedResponse`].
///
/// ```
/// use sluice_sdk::prelude::*;
/// use sluice_sdk::json::{Pointer, values_at};
///
/// # fn main() -> Result<()> {
/// let record = r#"{"id": 7, "meta": {"updated_at": "2024-05-01", "tags": [1, 2]}}"#;
/// let [updated, id, tag] = values_at(
///     record,
///     [&Pointer::new("/meta/updated_at"), &Pointer::new("/id"), &Pointer::new("/meta/tags/1")],
/// )?;
/// assert_eq!(updated, Some(json!("2024-05-01")));
/// assert_eq!((id, tag), (Some(json!(7)), Some(json!(2))));
/// assert_eq!(values_at(record, [&Pointer::new("/missing")])?, [None]);
/// # Ok(())
/// # }
/// ```
pub fn values_at<const N: usize>(
    json: &str,
    pointers: [&Pointer; N],
) -> Result<[Option<Value>; N]> {
    const { assert!(N <= 64, "values_at reads at most 64 pointers at once") };
    let mut found: [Option<Value>; N] = std::array::from_fn(|_| None);
    let tokens: [Option<&[String]>; N] = pointers.map(|pointer| pointer.tokens.as_deref());
    let active = tokens
        .iter()
        .enumerate()
        .filter(|(_, tokens)| tokens.is_some())
        .fold(0u64, |mask, (slot, _)| mask | 1 << slot);
    let mut deserializer = serde_json::Deserializer::from_str(json);
    Find {
        tokens: &tokens,
        found: &mut found,
        depth: 0,
        active,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|error| Error::unexpected_response(format!("a record is not valid JSON: {error}")))?;
    Ok(found)
}

/// Walks a value, building only the values the `active` pointers lead to. Every active pointer
/// matches the path walked so far, `depth` tokens deep.
struct Find<'p, 'f> {
    tokens: &'p [Option<&'p [String]>],
    found: &'f mut [Option<Value>],
    depth: usize,
    active: u64,
}

impl<'p> Find<'p, '_> {
    /// The tokens of `slot` (none for an invalid pointer, which is never active).
    fn tokens(&self, slot: usize) -> &'p [String] {
        self.tokens[slot].unwrap_or_default()
    }

    fn is_active(&self, slot: usize) -> bool {
        self.active & (1 << slot) != 0
    }

    /// The active slots whose next token `matches`.
    fn matching(&self, matches: impl Fn(&str) -> bool) -> u64 {
        (0..self.tokens.len())
            .filter(|&slot| self.is_active(slot))
            .filter(|&slot| {
                self.tokens(slot)
                    .get(self.depth)
                    .is_some_and(|token| matches(token))
            })
            .fold(0, |mask, slot| mask | 1 << slot)
    }

    /// The walker for a child value that the slots of `mask` continue into. Their values are
    /// reset first: a later duplicate key replaces an earlier one, as in a parsed `Value`.
    fn child(&mut self, mask: u64) -> Find<'p, '_> {
        for (slot, found) in self.found.iter_mut().enumerate() {
            if mask & (1 << slot) != 0 {
                *found = None;
            }
        }
        Find {
            tokens: self.tokens,
            found: &mut *self.found,
            depth: self.depth + 1,
            active: mask,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Find<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.active == 0 {
            return IgnoredAny::deserialize(deserializer).map(drop);
        }
        let ends_here = (0..self.tokens.len())
            .any(|slot| self.is_active(slot) && self.tokens(slot).len() == self.depth);
        if !ends_here {
            return deserializer.deserialize_any(self);
        }
        // A pointer ends here: build this value, and find any longer ones inside it.
        let value = Value::deserialize(deserializer)?;
        for slot in 0..self.tokens.len() {
            if self.is_active(slot) {
                let rest = &self.tokens(slot)[self.depth..];
                self.found[slot] = lookup(&value, rest).cloned();
            }
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Find<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    // Scalars hold nothing a longer pointer could find.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        for index in 0.. {
            let mask = self.matching(|token| parse_index(token) == Some(index));
            let more = match mask {
                0 => seq.next_element::<IgnoredAny>()?.is_some(),
                mask => seq.next_element_seed(self.child(mask))?.is_some(),
            };
            if !more {
                break;
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(mask) = map.next_key_seed(KeyMask { find: &self })? {
            match mask {
                0 => map.next_value::<IgnoredAny>().map(drop)?,
                mask => map.next_value_seed(self.child(mask))?,
            }
        }
        Ok(())
    }
}

/// Reads an object key as the mask of the active slots whose next token it is, without
/// allocating it.
struct KeyMask<'a, 'p, 'f> {
    find: &'a Find<'p, 'f>,
}

impl<'de> DeserializeSeed<'de> for KeyMask<'_, '_, '_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMask<'_, '_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<u64, E> {
        Ok(self.find.matching(|token| token == key))
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

    fn split(body: &str, pointer: &str) -> Result<(Vec<String>, Value)> {
        let split = split_records(body.as_bytes(), pointer).map_err(Error::bug)??;
        let records = split.records.iter().map(|r| r.get().to_owned()).collect();
        Ok((records, split.rest))
    }

    #[test]
    fn split_records_keeps_each_record_s_text_and_the_rest_of_the_body() {
        let body = r#" {"meta": {"next": "c2", "n": [1, 2.5, -3, null, true]},
            "data": [ {"b": 1, "a": "\u00e9"} ,{"c" : [ 1 ]}, 7, "x" ], "after": {}} "#;
        let (records, rest) = split(body, "/data").unwrap();
        assert_eq!(
            records,
            [
                r#"{"b": 1, "a": "\u00e9"}"#,
                r#"{"c" : [ 1 ]}"#,
                "7",
                r#""x""#
            ]
        );
        let mut expected: Value = serde_json::from_str(body).unwrap();
        expected["data"] = json!([]);
        assert_eq!(rest, expected);
        assert_eq!(
            serde_json::to_string(&rest).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "same field order"
        );

        let (records, rest) = split(r#"[{"id": 1}]"#, "").unwrap();
        assert_eq!(
            (records, rest),
            (vec![r#"{"id": 1}"#.to_owned()], json!([]))
        );
        let (records, _) = split(
            r#"{"pages": [{"items": [{"a": 1}]}, {"items": [{"b": 2}]}]}"#,
            "/pages/1/items",
        )
        .unwrap();
        assert_eq!(records, [r#"{"b": 2}"#]);
        let (records, _) = split(r#"{"a/b": {"~": [{}]}}"#, "/a~1b/~0").unwrap();
        assert_eq!(records, ["{}"]);
    }

    #[test]
    fn split_records_fails_as_records_at_does() {
        for (body, pointer) in [
            (r#"{"data": {"items": "nope"}}"#, "/data/items"),
            (r#"{"data": {"items": "nope"}}"#, ""),
            (r#"{"data": {"items": "nope"}}"#, "/nothing"),
            (r#"{"data": 5}"#, "/data"),
            (r#"{"data": null}"#, "/data"),
            (r#"{"data": true}"#, "/data"),
            (r#"{"data": {"a": [1]}}"#, "/data"),
            (r#"{"data": [1]}"#, "/data/0"),
            (r#"{"data": [1]}"#, "/data/01"),
            (r#"[[{}]]"#, "/0"),
            (r#"[[{}]]"#, "/+0"),
            (r#"{"data": []}"#, "data"),
            // A later duplicate key wins, as in a parsed `Value`.
            (r#"{"data": [{}], "data": 5}"#, "/data"),
            (r#"{"data": 5, "data": [{}, {}]}"#, "/data"),
            (r#"{"a": {"data": []}, "a": 1}"#, "/a/data"),
        ] {
            let value: Value = serde_json::from_str(body).unwrap();
            let expected = records_at(&value, pointer).map(|records| records.len());
            let actual = split(body, pointer).map(|(records, _)| records.len());
            assert_eq!(actual, expected, "{body} at {pointer:?}");
        }
    }

    #[test]
    fn split_records_reports_syntax_errors_as_serde_json_does() {
        for body in [
            r#"{"data": [{"a": 1}, ]}"#,
            r#"{"data": [{}]} x"#,
            "",
            r#"{"data": [{"a": "\x"}]}"#,
        ] {
            let expected = serde_json::from_str::<Value>(body).unwrap_err().to_string();
            let actual = split_records(body.as_bytes(), "/data")
                .unwrap_err()
                .to_string();
            assert_eq!(actual, expected, "{body}");
        }
    }

    #[test]
    fn values_at_finds_what_pointer_finds() {
        let records = [
            r#"{"id": 7, "t": "2024", "meta": {"k": [10, {"x": null}], "a/b": 1, "~": 2}}"#,
            r#"{"id": 1, "id": 2, "meta": {"k": 1}, "meta": {"z": 0}}"#,
            r#"{"meta": {"k": [1]}, "meta": 3}"#,
            r#"[{"id": 3}, 4]"#,
            r#""text""#,
            "12.50",
            "null",
        ];
        let pointers = [
            "",
            "/id",
            "/t",
            "/meta",
            "/meta/k",
            "/meta/k/0",
            "/meta/k/1/x",
            "/meta/k/01",
            "/meta/a~1b",
            "/meta/~0",
            "/meta/z",
            "/0/id",
            "/1",
            "/missing",
            "id",
            "/id/0",
        ];
        for record in records {
            let value: Value = serde_json::from_str(record).unwrap();
            for pointer in pointers {
                let [found] = values_at(record, [&Pointer::new(pointer)]).unwrap();
                assert_eq!(
                    found.as_ref(),
                    value.pointer(pointer),
                    "{record} at {pointer:?}"
                );
            }
            // Several at once, including pointers that share a path or end inside another.
            let all: Vec<Pointer> = pointers.iter().map(|p| Pointer::new(p)).collect();
            let [a, b, c, d] = values_at(record, [&all[3], &all[4], &all[6], &all[1]]).unwrap();
            assert_eq!(a.as_ref(), value.pointer("/meta"), "{record}");
            assert_eq!(b.as_ref(), value.pointer("/meta/k"), "{record}");
            assert_eq!(c.as_ref(), value.pointer("/meta/k/1/x"), "{record}");
            assert_eq!(d.as_ref(), value.pointer("/id"), "{record}");
        }
        assert!(matches!(
            values_at("{", [&Pointer::new("/a")]),
            Err(Error::UnexpectedResponse(_))
        ));
    }

    #[test]
    fn describe_raw_agrees_with_describe() {
        for text in [
            "{}", "[1]", "\"s\"", "true", "false", "null", "-1", "0.5", "1e3",
        ] {
            let raw: &RawValue = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(describe_raw(raw), describe(&value), "{text}");
        }
    }

    #[test]
    fn pointer_syntax() {
        assert!(is_valid_pointer("/a~0b~1c/0"));
        assert!(!is_valid_pointer("/a~"));
        assert!(is_valid_pointer("/"));
    }
}
