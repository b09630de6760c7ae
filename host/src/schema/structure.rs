//! Skipping the full check of records shaped like one that already passed it.
//!
//! Most APIs return records of a few shapes: the same keys in the same order with values of
//! the same JSON types. When a stream's schema constrains only that structure (`type`,
//! `properties`, `required`, `items`, `additionalProperties`, plus annotations), whether a
//! record conforms, and whether it has fields the schema does not list, depends on its shape
//! alone. So the shape of each record that passed cleanly is remembered, and a record of a
//! remembered shape is kept without building a `Value` or running the validator.
//!
//! A shape is hashed while the record is parsed, with a per-checker random key (a connector
//! cannot aim for a collision). Numbers are told apart as integers, whole floats and fractional
//! floats, so `integer` is never decided by a shape that hides a fraction; an array contributes
//! the set of its elements' shapes, not their number or order (a structural schema applies
//! `items` to each element alike).

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Shapes remembered per stream at most; past that, records are checked in full.
const MAX_SHAPES: usize = 4096;

/// The shapes of records that passed a structural schema cleanly.
pub(super) struct ConformingShapes {
    keys: Keys,
    shapes: HashSet<u64, BuildHasherDefault<AlreadyHashed>>,
}

/// The set's hasher: a shape is already a keyed hash, so it is used as it is.
#[derive(Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the set holds `u64`s); fold anything else in anyway.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, shape: u64) {
        self.0 = shape;
    }
}

/// The checker's random hash key, and each scalar type's shape hashed with it once (a scalar
/// is most of a record's values; hashing its tag anew each time was most of the hashing).
struct Keys {
    hasher: std::hash::RandomState,
    tags: [u64; ARRAY as usize + 1],
}

impl Keys {
    fn new() -> Self {
        let hasher = std::hash::RandomState::new();
        let tags = std::array::from_fn(|tag| hasher.hash_one(tag as u64));
        Self { hasher, tags }
    }

    fn tag(&self, tag: u64) -> u64 {
        self.tags[tag as usize]
    }
}

impl ConformingShapes {
    /// A cache for `schema`, or `None` when the schema constrains more than structure.
    pub fn for_schema(schema: &Value) -> Option<Self> {
        is_structural(schema).then(|| Self {
            keys: Keys::new(),
            shapes: HashSet::default(),
        })
    }

    /// The shape of the JSON text `record`; `None` if it is not valid JSON.
    pub fn shape(&self, record: &str) -> Option<u64> {
        let mut deserializer = serde_json::Deserializer::from_str(record);
        let shape = ShapeSeed(&self.keys).deserialize(&mut deserializer).ok()?;
        deserializer.end().ok()?;
        Some(shape)
    }

    /// Whether a record of `shape` passed cleanly before.
    pub fn contains(&self, shape: u64) -> bool {
        self.shapes.contains(&shape)
    }

    /// Remembers that a record of `shape` passed cleanly.
    pub fn insert(&mut self, shape: u64) {
        if self.shapes.len() < MAX_SHAPES {
            self.shapes.insert(shape);
        }
    }
}

/// Whether `schema` constrains only the structure of a record (see the module docs).
fn is_structural(schema: &Value) -> bool {
    match schema {
        Value::Bool(_) => true,
        Value::Object(keywords) => keywords
            .iter()
            .all(|(keyword, value)| match keyword.as_str() {
                "type" | "required" | "$schema" | "$id" | "$comment" | "title" | "description"
                | "default" | "examples" => true,
                "properties" => value
                    .as_object()
                    .is_some_and(|properties| properties.values().all(is_structural)),
                // Only the one-schema-for-every-element form: tuple `items` depend on position.
                "items" | "additionalProperties" => is_structural(value),
                _ => false,
            }),
        _ => false,
    }
}

const BOOL: u64 = 1;
const INTEGER: u64 = 2;
const WHOLE_FLOAT: u64 = 3;
const FRACTION: u64 = 4;
const STRING: u64 = 5;
const NULL: u64 = 6;
const OBJECT: u64 = 7;
const ARRAY: u64 = 8;

/// Hashes the shape of one JSON value.
struct ShapeSeed<'a>(&'a Keys);

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<u64, E> {
        Ok(self.0.tag(BOOL))
    }

    fn visit_i64<E>(self, _: i64) -> Result<u64, E> {
        Ok(self.0.tag(INTEGER))
    }

    fn visit_u64<E>(self, _: u64) -> Result<u64, E> {
        Ok(self.0.tag(INTEGER))
    }

    fn visit_f64<E>(self, value: f64) -> Result<u64, E> {
        let kind = if value.fract() == 0.0 {
            WHOLE_FLOAT
        } else {
            FRACTION
        };
        Ok(self.0.tag(kind))
    }

    fn visit_str<E>(self, _: &str) -> Result<u64, E> {
        Ok(self.0.tag(STRING))
    }

    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(self.0.tag(NULL))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut hasher = self.0.hasher.build_hasher();
        hasher.write_u64(OBJECT);
        while let Some(()) = map.next_key_seed(KeySeed(&mut hasher))? {
            hasher.write_u64(map.next_value_seed(ShapeSeed(self.0))?);
        }
        Ok(hasher.finish())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        // The distinct element shapes; most arrays have one, which needs no allocation.
        let mut first = None;
        let mut others = Vec::new();
        while let Some(shape) = seq.next_element_seed(ShapeSeed(self.0))? {
            match first {
                None => first = Some(shape),
                Some(seen) if seen == shape => {}
                Some(_) if others.contains(&shape) => {}
                Some(_) => others.push(shape),
            }
        }
        let mut elements = others;
        elements.extend(first);
        elements.sort_unstable();
        let mut hasher = self.0.hasher.build_hasher();
        hasher.write_u64(ARRAY);
        for shape in elements {
            hasher.write_u64(shape);
        }
        Ok(hasher.finish())
    }
}

/// Feeds an object key (unescaped) into the object's hasher.
struct KeySeed<'a, H>(&'a mut H);

impl<'de, H: Hasher> DeserializeSeed<'de> for KeySeed<'_, H> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<H: Hasher> Visitor<'_> for KeySeed<'_, H> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        self.0.write(key.as_bytes());
        self.0.write_u8(0xff);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shapes() -> ConformingShapes {
        ConformingShapes::for_schema(&json!({"type": "object"})).expect("structural")
    }

    #[test]
    fn same_keys_and_types_share_a_shape_whatever_the_values() {
        let cache = shapes();
        let a = cache.shape(r#"{"id": 1, "tags": ["x"], "n": null}"#);
        let b = cache.shape(r#"{"id": 99, "tags": ["y", "z", "w"], "n": null}"#);
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn types_keys_order_and_fractions_make_different_shapes() {
        let cache = shapes();
        let base = cache.shape(r#"{"id": 1, "name": "a"}"#);
        for other in [
            r#"{"id": "1", "name": "a"}"#,
            r#"{"id": 1.5, "name": "a"}"#,
            r#"{"id": 1.0, "name": "a"}"#,
            r#"{"name": "a", "id": 1}"#,
            r#"{"id": 1}"#,
            r#"{"id": 1, "name": "a", "extra": true}"#,
            r#"{"id": 1, "name": null}"#,
            r#"{"id": 1, "nam": "a"}"#,
        ] {
            assert_ne!(base, cache.shape(other), "{other}");
        }
        assert_ne!(
            cache.shape(r#"{"a": [1]}"#),
            cache.shape(r#"{"a": [1, "x"]}"#)
        );
    }

    #[test]
    fn invalid_json_has_no_shape() {
        let cache = shapes();
        assert_eq!(cache.shape(r#"{"id": 1"#), None);
        assert_eq!(cache.shape(r#"{"id": 1} trailing"#), None);
    }

    #[test]
    fn only_structural_schemas_are_cached() {
        for schema in [
            json!({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}),
            json!({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}, "additionalProperties": false}),
            json!(true),
        ] {
            assert!(ConformingShapes::for_schema(&schema).is_some(), "{schema}");
        }
        for schema in [
            json!({"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}}}),
            json!({"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}),
            json!({"type": "object", "properties": {"t": {"type": "array", "items": [{"type": "string"}]}}}),
            json!({"type": "object", "properties": {"s": {"enum": ["a"]}}}),
            json!({"anyOf": [{"type": "object"}]}),
        ] {
            assert!(ConformingShapes::for_schema(&schema).is_none(), "{schema}");
        }
    }
}
