//! Per-stream schema checking and drift reporting: what the host does with records that do not
//! match the shape a stream is supposed to have.
//!
//! Each stream gets one [`SchemaChecker`] per sync. It checks every record of every page against
//! the stream's JSON Schema:
//!
//! - **Declared schema.** When the connector declares a schema with fields (`properties`,
//!   `required`, `$ref`, `allOf`/`anyOf`/`oneOf`, ...), records are checked against it. A declared
//!   schema that is not valid JSON Schema fails the stream before any record is written.
//! - **Inferred schema.** When the connector declares none (no schema, `true`, `{}`, or an object
//!   schema without fields), the first [`INFER_RECORDS`] records of the sync are kept unchecked and
//!   a schema is inferred from them: every field (nested objects and array items included) gets
//!   the JSON types seen for it (`["string", "null"]` when it was sometimes null), and a field is
//!   required only if it was present in *every* sampled object. A field seen only as `null` and the
//!   items of arrays only seen empty get no type constraint. Later records are checked against
//!   that schema.
//!
//! A record is *non-conforming* when it fails validation: a field has another type than the
//! schema says, a required field is absent, or any other JSON Schema rule fails. What happens to
//! it is the operator's choice per stream (`[streams.<name>] schema_policy`):
//!
//! - `warn` (default): the record is written anyway and the drift is reported;
//! - `dead_letter`: the record goes to `<stream>.dead_letter.jsonl` as
//!   `{"record": <record>, "reason": "...", "stream": "..."}` instead of the output;
//! - `fail`: the sync stops with an error naming the record, the field's JSON path, and what was
//!   expected and found; the last checkpoint is kept.
//!
//! *Drift* is reported per field (JSON pointer, with `*` for array elements), whatever the
//! policy: `new` (a field the schema does not list; this alone does not make a record
//! non-conforming unless the schema forbids additional properties), `missing` (a required field
//! absent), `type_changed` (expected vs found), and `invalid` (any other rule). Each is logged with
//! one `warn` the first time it is seen in a sync (never once per record) and is counted in
//! [`SchemaChecker::drift`], which goes into the run summary. Nothing is dropped silently and
//! nothing in a record can make the host panic.
//!
//! This module only checks; writing the kept and dead-letter lines is the sync loop's job.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::config::SchemaPolicy;

mod structure;

use structure::ConformingShapes;

/// How many records of a stream that declares no schema the host infers the schema from. One
/// page of a typical API; enough to see optional fields and nullable values, small enough that
/// drift in a long sync is caught early.
pub const INFER_RECORDS: u64 = 100;

/// Errors from schema checking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema the connector declared for the stream is not a valid JSON Schema.
    #[error(
        "the schema that the connector declares for stream `{stream}` is not a valid JSON Schema: \
         {detail}; fix the stream's schema in the connector (or declare none and the host infers one)"
    )]
    InvalidSchema {
        /// The stream.
        stream: String,
        /// The schema compiler's message.
        detail: String,
    },
    /// A record does not conform to the stream's schema and the stream's policy is `fail`.
    #[error(
        "stream `{stream}`: record {record} of the page does not conform to {schema}:\n  {}\n\
         the sync stopped at the last checkpoint; to keep such records set \
         `schema_policy = \"warn\"` (or `\"dead_letter\"` to set them aside) under \
         [streams.{stream}] in the connection file",
        problems.join("\n  ")
    )]
    Nonconforming {
        /// The stream.
        stream: String,
        /// The record's number within the page, from 1.
        record: u64,
        /// Which schema it was checked against.
        schema: SchemaSource,
        /// One line per problem: the JSON path, then what was expected and what was found.
        problems: Vec<String>,
    },
    /// A line of the page is not a JSON object: this check is where the host parses each
    /// record, so the sync loop reports it as the connector's protocol violation.
    #[error("stream `{stream}`: record {record} of the page is not a JSON object: {detail}")]
    NotAnObject {
        /// The stream.
        stream: String,
        /// The record's number within the page, from 1.
        record: u64,
        /// What is wrong with it.
        detail: String,
    },
}

impl Error {
    /// A stable key for logs, metrics and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidSchema { .. } => "invalid_schema",
            Error::Nonconforming { .. } => "schema_nonconforming",
            Error::NotAnObject { .. } => "guest_protocol_violation",
        }
    }
}

/// Where a stream's schema comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaSource {
    /// The connector declared it.
    Declared,
    /// The host inferred it from the first [`INFER_RECORDS`] records of the sync.
    Inferred,
}

impl fmt::Display for SchemaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Declared => f.write_str("the schema the connector declares"),
            Self::Inferred => write!(
                f,
                "the schema inferred from the stream's first {INFER_RECORDS} records"
            ),
        }
    }
}

/// One page after checking: the lines to write to the output and the lines to dead-letter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedPage {
    /// JSON lines to write to the stream's output, each the original record text, each ending
    /// with `\n`.
    pub kept: String,
    /// Number of lines in `kept`.
    pub kept_count: u64,
    /// JSON lines for `<stream>.dead_letter.jsonl`, each
    /// `{"record": <original record>, "reason": "...", "stream": "..."}` ending with `\n`. Only
    /// ever non-empty under [`SchemaPolicy::DeadLetter`].
    pub dead_letters: String,
    /// Number of lines in `dead_letters`.
    pub dead_count: u64,
}

impl CheckedPage {
    /// Keeps one record `line` that starts at `line_start` in `records`: it extends the
    /// verbatim prefix while every line so far is `unchanged`, else it is copied.
    fn keep(
        &mut self,
        verbatim: &mut Option<usize>,
        records: &str,
        line_start: usize,
        line: &str,
        unchanged: bool,
    ) {
        self.kept_count += 1;
        match verbatim {
            Some(end) if unchanged => *end = line_start + line.len() + 1,
            _ => {
                SchemaChecker::diverge(verbatim, &mut self.kept, records, line_start);
                self.kept.push_str(line);
                self.kept.push('\n');
            }
        }
    }
}

/// What kind of drift a field shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftKind {
    /// The field is not in the schema. Does not make a record non-conforming unless the schema
    /// forbids additional properties.
    New,
    /// The schema requires the field (for an inferred schema: it was in every sampled record) and
    /// the record lacks it.
    Missing,
    /// The field has another JSON type than the schema says.
    TypeChanged {
        /// The schema's type(s), e.g. `integer` or `string or null`.
        expected: String,
        /// The type found in the record.
        found: String,
    },
    /// Another JSON Schema rule fails for the field (enum, pattern, minimum, ...).
    Invalid {
        /// The rule and what it requires, without the record's value.
        problem: String,
    },
}

/// Drift seen for one field during a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDrift {
    /// The field's JSON pointer (`/customer/email`); array elements are `*` (`/items/*/price`).
    /// The empty string is the record itself.
    pub path: String,
    /// What changed.
    #[serde(flatten)]
    pub kind: DriftKind,
    /// In how many records of this sync it was seen.
    pub records: u64,
    /// The first record it was seen in: its number among the stream's records in this sync,
    /// from 1.
    pub first_record: u64,
}

impl FieldDrift {
    /// What changed, in a few words: `new field`, `missing`, `integer → string`, or the rule.
    pub fn describe(&self) -> String {
        match &self.kind {
            DriftKind::New => "new field".to_owned(),
            DriftKind::Missing => "missing".to_owned(),
            DriftKind::TypeChanged { expected, found } => format!("{expected} → {found}"),
            DriftKind::Invalid { problem } => problem.clone(),
        }
    }
}

/// Checks one stream's records against its schema and tracks drift.
pub struct SchemaChecker {
    stream: String,
    policy: SchemaPolicy,
    schema: Schema,
    /// Records checked so far in this sync (inference included).
    records_seen: u64,
    /// Drift by (path, kind key), sorted for a stable summary.
    drift: BTreeMap<(String, String), DriftEntry>,
}

impl fmt::Debug for SchemaChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaChecker")
            .field("stream", &self.stream)
            .field("policy", &self.policy)
            .field("inferring", &matches!(self.schema, Schema::Inferring(_)))
            .field("records_seen", &self.records_seen)
            .field("drift_fields", &self.drift.len())
            .finish()
    }
}

enum Schema {
    /// No declared schema yet: sampling records into a shape.
    Inferring(Shape),
    /// A compiled schema to check against.
    Ready(Box<Compiled>),
}

struct Compiled {
    source: SchemaSource,
    validator: jsonschema::Validator,
    /// The fields the schema lists, for `new` drift.
    fields: Fields,
    /// The schema itself when it was inferred (for the operator).
    inferred: Option<Value>,
    /// Shapes of records that passed cleanly, when the schema constrains only structure.
    shapes: Option<ConformingShapes>,
}

struct DriftEntry {
    drift: FieldDrift,
    /// The last record counted, so a field repeated in one record (array items) counts once.
    last_record: u64,
}

impl SchemaChecker {
    /// A checker for `stream`. `declared` is the connector's JSON Schema for the stream; `null`,
    /// `true`, `{}` or an object schema that lists no fields means "declares none", and the schema
    /// is then inferred from the first [`INFER_RECORDS`] records.
    ///
    /// Fails when `declared` is not a valid JSON Schema.
    pub fn new(stream: &str, declared: &Value, policy: SchemaPolicy) -> Result<Self, Error> {
        let schema = if declared.is_null() {
            Schema::Inferring(Shape::default())
        } else {
            // Compile even a schema that declares no fields, so a broken one is reported.
            let validator =
                jsonschema::validator_for(declared).map_err(|error| Error::InvalidSchema {
                    stream: stream.to_owned(),
                    detail: error.to_string(),
                })?;
            if declares_fields(declared) {
                Schema::Ready(Box::new(Compiled {
                    source: SchemaSource::Declared,
                    validator,
                    fields: Fields::from_schema(declared),
                    inferred: None,
                    shapes: ConformingShapes::for_schema(declared),
                }))
            } else {
                Schema::Inferring(Shape::default())
            }
        };
        Ok(Self {
            stream: stream.to_owned(),
            policy,
            schema,
            records_seen: 0,
            drift: BTreeMap::new(),
        })
    }

    /// Checks a page of records given as JSON lines (one JSON object per line; blank lines are
    /// skipped). Returns the lines to keep and the lines to dead-letter, and updates the drift.
    /// When every line is kept as it is (the usual case), `records` itself becomes the kept
    /// text, without a copy.
    ///
    /// Fails when a line is not a JSON object ([`Error::NotAnObject`]), and when the policy is
    /// [`SchemaPolicy::Fail`] and a record does not conform.
    pub fn check_page(&mut self, records: String) -> Result<CheckedPage, Error> {
        let mut page = CheckedPage::default();
        // `records[..verbatim]` is kept as it is; `page.kept` is only written once a line is
        // not (dropped, or trimmed).
        let mut verbatim = Some(0);
        let mut in_page = 0;
        let mut start = 0;
        for raw in records.split_inclusive('\n') {
            let line_start = start;
            start += raw.len();
            let line = raw.trim_end();
            let unchanged = line.len() == raw.strip_suffix('\n').unwrap_or(raw).len();
            if line.is_empty() {
                Self::diverge(&mut verbatim, &mut page.kept, &records, line_start);
                continue;
            }
            in_page += 1;
            // A record shaped like one that passed cleanly passes: keep it as it is.
            let shape = match &self.schema {
                Schema::Ready(compiled) => compiled.shapes.as_ref().and_then(|shapes| {
                    shapes
                        .shape(line)
                        .map(|shape| (shape, shapes.contains(shape)))
                }),
                Schema::Inferring(_) => None,
            };
            if let Some((_, true)) = shape {
                self.records_seen += 1;
                page.keep(&mut verbatim, &records, line_start, line, unchanged);
                continue;
            }
            let record: Value = serde_json::from_str(line).map_err(|error| Error::NotAnObject {
                stream: self.stream.clone(),
                record: in_page,
                detail: format!("{error}: {}", crate::protocol::excerpt(line)),
            })?;
            if !record.is_object() {
                return Err(Error::NotAnObject {
                    stream: self.stream.clone(),
                    record: in_page,
                    detail: format!("found {}", json_type(&record)),
                });
            }
            self.records_seen += 1;
            let (problems, clean) = self.check_record(&record)?;
            if let (true, Some((shape, _)), Schema::Ready(compiled)) =
                (clean, shape, &mut self.schema)
                && let Some(shapes) = compiled.shapes.as_mut()
            {
                shapes.insert(shape);
            }
            if problems.is_empty() || self.policy == SchemaPolicy::Warn {
                page.keep(&mut verbatim, &records, line_start, line, unchanged);
                continue;
            }
            if self.policy == SchemaPolicy::Fail {
                return Err(Error::Nonconforming {
                    stream: self.stream.clone(),
                    record: in_page,
                    schema: self.source(),
                    problems,
                });
            }
            Self::diverge(&mut verbatim, &mut page.kept, &records, line_start);
            let reason = problems.join("; ");
            page.dead_letters.push_str("{\"record\":");
            page.dead_letters.push_str(line);
            page.dead_letters.push_str(",\"reason\":");
            page.dead_letters
                .push_str(&Value::String(reason).to_string());
            page.dead_letters.push_str(",\"stream\":");
            page.dead_letters
                .push_str(&Value::String(self.stream.clone()).to_string());
            page.dead_letters.push_str("}\n");
            page.dead_count += 1;
        }
        if let Some(end) = verbatim {
            // Every line as it came; only a missing final line break is added.
            page.kept = records;
            if end > page.kept.len() {
                page.kept.push('\n');
            }
        }
        Ok(page)
    }

    /// Ends the verbatim prefix at `at`: from here on kept lines are copied into `kept`.
    fn diverge(verbatim: &mut Option<usize>, kept: &mut String, records: &str, at: usize) {
        if let Some(end) = verbatim.take() {
            debug_assert_eq!(end, at);
            kept.reserve(records.len() + 1);
            kept.push_str(&records[..end]);
        }
    }

    /// Drift seen so far in this sync, one entry per field and kind, sorted by path.
    pub fn drift(&self) -> Vec<FieldDrift> {
        self.drift
            .values()
            .map(|entry| entry.drift.clone())
            .collect()
    }

    /// The schema inferred for a stream that declares none, once [`INFER_RECORDS`] records have
    /// been seen.
    pub fn inferred_schema(&self) -> Option<&Value> {
        match &self.schema {
            Schema::Ready(compiled) => compiled.inferred.as_ref(),
            Schema::Inferring(_) => None,
        }
    }

    /// Where the stream's schema comes from (inferred while it is still being sampled).
    pub fn source(&self) -> SchemaSource {
        match &self.schema {
            Schema::Ready(compiled) => compiled.source,
            Schema::Inferring(_) => SchemaSource::Inferred,
        }
    }

    /// Checks one record (already counted in `records_seen`), records its drift, and returns its
    /// problems (empty when it conforms) and whether it was clean: checked against a ready
    /// schema, conforming, and with no field the schema does not list.
    fn check_record(&mut self, record: &Value) -> Result<(Vec<String>, bool), Error> {
        let compiled = match &mut self.schema {
            Schema::Inferring(shape) => {
                shape.observe(record);
                if self.records_seen >= INFER_RECORDS {
                    let inferred = shape.to_schema();
                    let validator = jsonschema::validator_for(&inferred).map_err(|error| {
                        Error::InvalidSchema {
                            stream: self.stream.clone(),
                            detail: format!("inferred schema: {error}"),
                        }
                    })?;
                    tracing::info!(
                        stream = %self.stream,
                        records = self.records_seen,
                        "The connector declares no schema for the stream; inferred one from its first records."
                    );
                    tracing::debug!(stream = %self.stream, schema = %inferred, "Inferred schema.");
                    self.schema = Schema::Ready(Box::new(Compiled {
                        source: SchemaSource::Inferred,
                        validator,
                        fields: Fields::from_schema(&inferred),
                        shapes: ConformingShapes::for_schema(&inferred),
                        inferred: Some(inferred),
                    }));
                }
                return Ok((Vec::new(), false));
            }
            Schema::Ready(compiled) => compiled,
        };
        let number = self.records_seen;

        let mut found: Vec<(String, DriftKind)> = Vec::new();
        let mut path = String::new();
        compiled.fields.new_fields(record, &mut path, &mut found);

        let mut problems = Vec::new();
        if !compiled.validator.is_valid(record) {
            for error in compiled.validator.iter_errors(record) {
                let at = error.instance_path.as_str();
                let field = normalized_path(record, at);
                match &error.kind {
                    jsonschema::error::ValidationErrorKind::Type { kind } => {
                        let expected = match kind {
                            jsonschema::error::TypeKind::Single(ty) => ty.to_string(),
                            jsonschema::error::TypeKind::Multiple(types) => types
                                .iter()
                                .map(|ty| ty.to_string())
                                .collect::<Vec<_>>()
                                .join(" or "),
                        };
                        let found_type = json_type(&error.instance).to_owned();
                        problems.push(format!(
                            "at `{}`: expected {expected}, found {found_type}",
                            display_path(at)
                        ));
                        found.push((
                            field,
                            DriftKind::TypeChanged {
                                expected,
                                found: found_type,
                            },
                        ));
                    }
                    jsonschema::error::ValidationErrorKind::Required { property } => {
                        let name = property
                            .as_str()
                            .map_or_else(|| property.to_string(), std::borrow::ToOwned::to_owned);
                        let missing = format!("{at}/{}", escape_pointer(&name));
                        problems.push(format!(
                            "at `{missing}`: expected a value (the field is required), found none"
                        ));
                        found.push((
                            format!("{field}/{}", escape_pointer(&name)),
                            DriftKind::Missing,
                        ));
                    }
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                        for name in unexpected {
                            let extra = format!("{at}/{}", escape_pointer(name));
                            problems.push(format!(
                                "at `{extra}`: expected no such field (the schema forbids \
                                 additional properties), found one"
                            ));
                            found.push((
                                format!("{field}/{}", escape_pointer(name)),
                                DriftKind::New,
                            ));
                        }
                    }
                    _ => {
                        let problem = error.masked().to_string();
                        problems.push(format!("at `{}`: {problem}", display_path(at)));
                        found.push((field, DriftKind::Invalid { problem }));
                    }
                }
            }
        }

        let clean = problems.is_empty() && found.is_empty();
        for (field, kind) in found {
            self.note_drift(field, kind, number);
        }
        Ok((problems, clean))
    }

    /// Counts one field's drift in record `number`, logging it the first time.
    fn note_drift(&mut self, path: String, kind: DriftKind, number: u64) {
        let key = match &kind {
            DriftKind::New => "new".to_owned(),
            DriftKind::Missing => "missing".to_owned(),
            DriftKind::TypeChanged { found, .. } => format!("type_changed:{found}"),
            DriftKind::Invalid { problem } => format!("invalid:{problem}"),
        };
        let key = (path, key);
        if let Some(entry) = self.drift.get_mut(&key) {
            if entry.last_record != number {
                entry.last_record = number;
                entry.drift.records += 1;
            }
            return;
        }
        let field = if key.0.is_empty() {
            "/"
        } else {
            key.0.as_str()
        };
        match &kind {
            DriftKind::New => tracing::warn!(
                stream = %self.stream,
                field,
                drift = "new",
                record = number,
                "A record has a field that the stream's schema does not list."
            ),
            DriftKind::Missing => tracing::warn!(
                stream = %self.stream,
                field,
                drift = "missing",
                record = number,
                policy = ?self.policy,
                "A record lacks a field that the stream's schema requires."
            ),
            DriftKind::TypeChanged { expected, found } => tracing::warn!(
                stream = %self.stream,
                field,
                drift = "type_changed",
                expected = %expected,
                found = %found,
                record = number,
                policy = ?self.policy,
                "A record's field has another type than the stream's schema says."
            ),
            DriftKind::Invalid { problem } => tracing::warn!(
                stream = %self.stream,
                field,
                drift = "invalid",
                problem = %problem,
                record = number,
                policy = ?self.policy,
                "A record's field breaks a rule of the stream's schema."
            ),
        }
        let drift = FieldDrift {
            path: key.0.clone(),
            kind,
            records: 1,
            first_record: number,
        };
        self.drift.insert(
            key,
            DriftEntry {
                drift,
                last_record: number,
            },
        );
    }
}

/// Whether a declared schema says anything about the record's fields; if not, the host infers.
fn declares_fields(schema: &Value) -> bool {
    match schema {
        Value::Bool(accept_all) => !accept_all,
        Value::Object(map) => {
            let has_properties = map
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|properties| !properties.is_empty());
            let forbids_extra = map
                .get("additionalProperties")
                .is_some_and(|additional| additional != &Value::Bool(true));
            has_properties
                || forbids_extra
                || [
                    "required",
                    "$ref",
                    "allOf",
                    "anyOf",
                    "oneOf",
                    "not",
                    "if",
                    "enum",
                    "const",
                    "patternProperties",
                    "unevaluatedProperties",
                ]
                .iter()
                .any(|keyword| map.contains_key(*keyword))
        }
        _ => true,
    }
}

/// The fields a schema lists, for `new` drift. A level is only checked when its schema lists
/// `properties` and neither `patternProperties` nor an `additionalProperties` schema (a map).
#[derive(Default)]
struct Fields {
    known: Option<HashMap<String, Fields>>,
    items: Option<Box<Fields>>,
}

impl Fields {
    fn from_schema(schema: &Value) -> Self {
        let Some(map) = schema.as_object() else {
            return Self::default();
        };
        let open_map = map.contains_key("patternProperties")
            || map
                .get("additionalProperties")
                .is_some_and(Value::is_object);
        let known = match map.get("properties").and_then(Value::as_object) {
            Some(properties) if !open_map => Some(
                properties
                    .iter()
                    .map(|(name, schema)| (name.clone(), Self::from_schema(schema)))
                    .collect(),
            ),
            _ => None,
        };
        let items = map
            .get("items")
            .filter(|items| items.is_object())
            .map(|items| Box::new(Self::from_schema(items)));
        Self { known, items }
    }

    /// Pushes a `new` drift for each field of `value` (at `path`) that the schema does not list.
    fn new_fields(&self, value: &Value, path: &mut String, found: &mut Vec<(String, DriftKind)>) {
        match value {
            Value::Object(map) => {
                let Some(known) = &self.known else { return };
                for (name, child) in map {
                    let len = path.len();
                    push_segment(path, name);
                    match known.get(name) {
                        Some(fields) => fields.new_fields(child, path, found),
                        None => found.push((path.clone(), DriftKind::New)),
                    }
                    path.truncate(len);
                }
            }
            Value::Array(elements) => {
                let Some(items) = &self.items else { return };
                let len = path.len();
                path.push_str("/*");
                for element in elements {
                    items.new_fields(element, path, found);
                }
                path.truncate(len);
            }
            _ => {}
        }
    }
}

/// The JSON types seen for one field while inferring.
#[derive(Default)]
struct Shape {
    /// Bit set of `TYPE_*`.
    types: u8,
    /// How many objects were seen here.
    objects: u64,
    /// Fields of those objects: how many had each, and its shape.
    properties: BTreeMap<String, (u64, Shape)>,
    /// The shape of array elements seen here.
    items: Option<Box<Shape>>,
}

const TYPE_NULL: u8 = 1;
const TYPE_BOOLEAN: u8 = 1 << 1;
const TYPE_INTEGER: u8 = 1 << 2;
const TYPE_NUMBER: u8 = 1 << 3;
const TYPE_STRING: u8 = 1 << 4;
const TYPE_ARRAY: u8 = 1 << 5;
const TYPE_OBJECT: u8 = 1 << 6;
const TYPE_NAMES: [(u8, &str); 7] = [
    (TYPE_STRING, "string"),
    (TYPE_INTEGER, "integer"),
    (TYPE_NUMBER, "number"),
    (TYPE_BOOLEAN, "boolean"),
    (TYPE_OBJECT, "object"),
    (TYPE_ARRAY, "array"),
    (TYPE_NULL, "null"),
];

impl Shape {
    fn observe(&mut self, value: &Value) {
        match value {
            Value::Null => self.types |= TYPE_NULL,
            Value::Bool(_) => self.types |= TYPE_BOOLEAN,
            Value::Number(number) if number.is_f64() => self.types |= TYPE_NUMBER,
            Value::Number(_) => self.types |= TYPE_INTEGER,
            Value::String(_) => self.types |= TYPE_STRING,
            Value::Array(elements) => {
                self.types |= TYPE_ARRAY;
                for element in elements {
                    self.items.get_or_insert_default().observe(element);
                }
            }
            Value::Object(map) => {
                self.types |= TYPE_OBJECT;
                self.objects += 1;
                for (name, child) in map {
                    let (count, shape) = self.properties.entry(name.clone()).or_default();
                    *count += 1;
                    shape.observe(child);
                }
            }
        }
    }

    fn to_schema(&self) -> Value {
        let mut types = self.types;
        if types & TYPE_NUMBER != 0 {
            // Every integer is a number.
            types &= !TYPE_INTEGER;
        }
        let mut schema = serde_json::Map::new();
        // Only ever null in the sample: no evidence of the real type, so no constraint.
        if types != TYPE_NULL {
            let names: Vec<Value> = TYPE_NAMES
                .iter()
                .filter(|(bit, _)| types & bit != 0)
                .map(|(_, name)| Value::from(*name))
                .collect();
            let ty = match <[Value; 1]>::try_from(names) {
                Ok([single]) => single,
                Err(names) => Value::Array(names),
            };
            schema.insert("type".to_owned(), ty);
        }
        if types & TYPE_OBJECT != 0 {
            let properties = self
                .properties
                .iter()
                .map(|(name, (_, shape))| (name.clone(), shape.to_schema()))
                .collect();
            let required: Vec<Value> = self
                .properties
                .iter()
                .filter(|(_, (count, _))| *count == self.objects)
                .map(|(name, _)| Value::from(name.as_str()))
                .collect();
            schema.insert("properties".to_owned(), Value::Object(properties));
            if !required.is_empty() {
                schema.insert("required".to_owned(), Value::Array(required));
            }
        }
        if let Some(items) = &self.items {
            schema.insert("items".to_owned(), items.to_schema());
        }
        Value::Object(schema)
    }
}

/// The JSON Schema type name of a value.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON pointer for messages: the record itself is `/`.
fn display_path(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// Escapes one JSON pointer segment (RFC 6901).
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends `/segment` to a JSON pointer, escaped, without allocating for the usual plain name.
fn push_segment(path: &mut String, segment: &str) {
    path.push('/');
    if segment.contains(['~', '/']) {
        path.push_str(&escape_pointer(segment));
    } else {
        path.push_str(segment);
    }
}

/// The field a validation error's instance path points to, with array indices replaced by `*`
/// so that one field of many array elements is one drift entry.
fn normalized_path(record: &Value, pointer: &str) -> String {
    let mut path = String::with_capacity(pointer.len());
    let mut current = Some(record);
    for raw in pointer.split('/').skip(1) {
        current = match current {
            Some(Value::Array(elements)) => {
                path.push_str("/*");
                raw.parse::<usize>()
                    .ok()
                    .and_then(|index| elements.get(index))
            }
            Some(Value::Object(map)) => {
                path.push('/');
                path.push_str(raw);
                map.get(&raw.replace("~1", "/").replace("~0", "~"))
            }
            _ => {
                path.push('/');
                path.push_str(raw);
                None
            }
        };
    }
    path
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ORDER_SCHEMA: &str = r#"{
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["open", "paid"]},
            "customer": {
                "type": ["object", "null"],
                "properties": {"email": {"type": "string"}}
            },
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"price": {"type": "number"}}}
            }
        },
        "required": ["id"]
    }"#;

    fn declared(policy: SchemaPolicy) -> SchemaChecker {
        let schema: Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
        SchemaChecker::new("orders", &schema, policy).unwrap()
    }

    fn lines(records: &[Value]) -> String {
        records.iter().map(|record| format!("{record}\n")).collect()
    }

    fn inferred_checker(policy: SchemaPolicy) -> SchemaChecker {
        let mut checker = SchemaChecker::new("events", &json!({}), policy).unwrap();
        let sample: Vec<Value> = (0..INFER_RECORDS)
            .map(|i| {
                if i % 2 == 0 {
                    json!({"id": i, "name": "x", "note": null, "meta": {"v": 1}})
                } else {
                    json!({"id": i, "name": "y", "note": "n", "meta": {"v": 2}, "tag": "t"})
                }
            })
            .collect();
        let page = checker.check_page(lines(&sample)).unwrap();
        assert_eq!(page.kept_count, INFER_RECORDS);
        checker
    }

    #[test]
    fn conforming_records_are_kept_verbatim_under_every_policy() {
        let page_text = "{\"id\": 1,  \"status\": \"open\"}\n{\"id\":2,\"customer\":null,\"items\":[{\"price\":1.5}]}\n";
        for policy in [
            SchemaPolicy::Warn,
            SchemaPolicy::DeadLetter,
            SchemaPolicy::Fail,
        ] {
            let mut checker = declared(policy);
            let page = checker.check_page(page_text.to_owned()).unwrap();
            assert_eq!(page.kept, page_text, "{policy:?}");
            assert_eq!(page.kept_count, 2);
            assert_eq!(page.dead_letters, "");
            assert_eq!(page.dead_count, 0);
            assert_eq!(checker.drift(), Vec::new());
        }
    }

    #[test]
    fn warn_keeps_a_nonconforming_record_and_reports_the_type_change() {
        let mut checker = declared(SchemaPolicy::Warn);
        let page = checker
            .check_page(lines(&[
                json!({"id": "7"}),
                json!({"id": 8}),
                json!({"id": "9"}),
            ]))
            .unwrap();
        assert_eq!(page.kept_count, 3);
        assert_eq!(page.dead_count, 0);
        assert_eq!(
            checker.drift(),
            vec![FieldDrift {
                path: "/id".to_owned(),
                kind: DriftKind::TypeChanged {
                    expected: "integer".to_owned(),
                    found: "string".to_owned(),
                },
                records: 2,
                first_record: 1,
            }]
        );
    }

    #[test]
    fn dead_letter_sets_nonconforming_records_aside_with_the_reason() {
        let mut checker = declared(SchemaPolicy::DeadLetter);
        let page = checker
            .check_page("{\"id\":1}\n{\"id\":\"x\",\"status\":\"open\"}\n".to_owned())
            .unwrap();
        assert_eq!(page.kept, "{\"id\":1}\n");
        assert_eq!(page.kept_count, 1);
        assert_eq!(page.dead_count, 1);
        assert_eq!(
            page.dead_letters,
            "{\"record\":{\"id\":\"x\",\"status\":\"open\"},\"reason\":\"at `/id`: expected integer, found string\",\"stream\":\"orders\"}\n"
        );
        let line: Value = serde_json::from_str(page.dead_letters.trim_end()).unwrap();
        assert_eq!(line["record"], json!({"id": "x", "status": "open"}));
        assert_eq!(line["stream"], "orders");
    }

    #[test]
    fn fail_names_the_record_the_path_and_expected_versus_found() {
        let mut checker = declared(SchemaPolicy::Fail);
        let error = checker
            .check_page(lines(&[
                json!({"id": 1}),
                json!({"id": 2}),
                json!({"id": 3, "customer": {"email": 5}}),
            ]))
            .unwrap_err();
        assert!(matches!(
            error,
            Error::Nonconforming {
                record: 3,
                schema: SchemaSource::Declared,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "stream `orders`: record 3 of the page does not conform to the schema the connector \
             declares:\n  at `/customer/email`: expected string, found integer\nthe sync stopped \
             at the last checkpoint; to keep such records set `schema_policy = \"warn\"` (or \
             `\"dead_letter\"` to set them aside) under [streams.orders] in the connection file"
        );
    }

    #[test]
    fn kept_text_is_each_kept_record_on_a_line_of_its_own() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
        let mut checker = SchemaChecker::new("s", &schema, SchemaPolicy::DeadLetter).unwrap();
        for (records, kept) in [
            // As it came (moved, not copied), with a missing final line break added.
            ("{\"id\":1}\n{\"id\":2}\n", "{\"id\":1}\n{\"id\":2}\n"),
            ("{\"id\":1}\n{\"id\":2}", "{\"id\":1}\n{\"id\":2}\n"),
            // Trailing white space, CR LF and blank lines go; dead letters are cut out.
            ("{\"id\":1}\r\n{\"id\":2}  \n", "{\"id\":1}\n{\"id\":2}\n"),
            ("{\"id\":1}\n \n{\"id\":2}\n", "{\"id\":1}\n{\"id\":2}\n"),
            (
                "{\"id\":1}\n{\"id\":\"x\"}\n{\"id\":3}",
                "{\"id\":1}\n{\"id\":3}\n",
            ),
            ("{\"id\":\"x\"}\n{\"id\":3}\n", "{\"id\":3}\n"),
            ("", ""),
        ] {
            let page = checker.check_page(records.to_owned()).unwrap();
            assert_eq!(page.kept, kept, "{records:?}");
            assert_eq!(page.kept_count, kept.lines().count() as u64, "{records:?}");
        }
    }

    #[test]
    fn a_missing_required_field_is_nonconforming_and_reported_as_missing() {
        let mut checker = declared(SchemaPolicy::DeadLetter);
        let page = checker
            .check_page("{\"status\":\"paid\"}\n".to_owned())
            .unwrap();
        assert_eq!(page.kept_count, 0);
        assert_eq!(page.dead_count, 1);
        assert!(page.dead_letters.contains(
            "\"reason\":\"at `/id`: expected a value (the field is required), found none\""
        ));
        assert_eq!(
            checker.drift(),
            vec![FieldDrift {
                path: "/id".to_owned(),
                kind: DriftKind::Missing,
                records: 1,
                first_record: 1,
            }]
        );
    }

    #[test]
    fn a_new_field_is_drift_but_not_nonconforming() {
        let mut checker = declared(SchemaPolicy::Fail);
        let page = checker
            .check_page(lines(&[
                json!({"id": 1, "coupon": "X"}),
                json!({"id": 2, "coupon": "Y", "items": [{"price": 1, "sku": "a"}, {"sku": "b"}]}),
            ]))
            .unwrap();
        assert_eq!(page.kept_count, 2);
        assert_eq!(
            checker.drift(),
            vec![
                FieldDrift {
                    path: "/coupon".to_owned(),
                    kind: DriftKind::New,
                    records: 2,
                    first_record: 1,
                },
                FieldDrift {
                    path: "/items/*/sku".to_owned(),
                    kind: DriftKind::New,
                    records: 1,
                    first_record: 2,
                },
            ]
        );
    }

    #[test]
    fn field_names_are_escaped_in_drift_paths() {
        let mut checker = declared(SchemaPolicy::Warn);
        checker
            .check_page("{\"id\":1,\"a/b~c\":2,\"customer\":{\"x\":1}}\n".to_owned())
            .unwrap();
        let paths: Vec<String> = checker.drift().into_iter().map(|d| d.path).collect();
        assert_eq!(paths, ["/a~1b~0c", "/customer/x"]);
    }

    #[test]
    fn other_rules_are_reported_without_the_value() {
        let mut checker = declared(SchemaPolicy::Warn);
        checker
            .check_page("{\"id\":1,\"status\":\"secret-ish\"}\n".to_owned())
            .unwrap();
        let drift = checker.drift();
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].path, "/status");
        let DriftKind::Invalid { problem } = &drift[0].kind else {
            panic!("expected an invalid drift, got {:?}", drift[0].kind);
        };
        assert!(!problem.contains("secret-ish"), "{problem}");
        assert!(problem.contains("open"), "{problem}");
    }

    #[test]
    fn drift_serializes_for_the_run_summary() {
        let mut checker = declared(SchemaPolicy::Warn);
        checker.check_page("{\"id\":true}\n".to_owned()).unwrap();
        assert_eq!(
            serde_json::to_value(checker.drift()).unwrap(),
            json!([{
                "path": "/id",
                "kind": "type_changed",
                "expected": "integer",
                "found": "boolean",
                "records": 1,
                "first_record": 1
            }])
        );
    }

    #[test]
    fn a_stream_without_a_schema_is_inferred_from_its_first_records() {
        for none in [
            json!({}),
            json!(true),
            Value::Null,
            json!({"type": "object"}),
        ] {
            let checker = SchemaChecker::new("events", &none, SchemaPolicy::Fail).unwrap();
            assert_eq!(checker.source(), SchemaSource::Inferred, "{none}");
            assert_eq!(checker.inferred_schema(), None);
        }
        let checker = inferred_checker(SchemaPolicy::Fail);
        assert_eq!(
            checker.inferred_schema(),
            Some(&json!({
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "meta": {
                        "type": "object",
                        "properties": {"v": {"type": "integer"}},
                        "required": ["v"]
                    },
                    "name": {"type": "string"},
                    "note": {"type": ["string", "null"]},
                    "tag": {"type": "string"}
                },
                "required": ["id", "meta", "name", "note"]
            }))
        );
        // Sampling itself reports no drift although `tag` comes and goes.
        assert_eq!(checker.drift(), Vec::new());
    }

    #[test]
    fn records_after_inference_are_checked_against_the_inferred_schema() {
        let mut checker = inferred_checker(SchemaPolicy::DeadLetter);
        let page = checker
            .check_page(lines(&[
                json!({"id": 1, "name": "a", "note": null, "meta": {"v": 3}}),
                json!({"id": 2, "name": "a", "meta": {"v": 3}}),
                json!({"id": "3", "name": "a", "note": "z", "meta": {"v": 3}, "extra": 1}),
            ]))
            .unwrap();
        assert_eq!(page.kept_count, 1);
        assert_eq!(page.dead_count, 2);
        assert!(page.dead_letters.contains("at `/note`: expected a value"));
        assert!(
            page.dead_letters
                .contains("at `/id`: expected integer, found string")
        );
        assert_eq!(
            checker.drift(),
            vec![
                FieldDrift {
                    path: "/extra".to_owned(),
                    kind: DriftKind::New,
                    records: 1,
                    first_record: INFER_RECORDS + 3,
                },
                FieldDrift {
                    path: "/id".to_owned(),
                    kind: DriftKind::TypeChanged {
                        expected: "integer".to_owned(),
                        found: "string".to_owned(),
                    },
                    records: 1,
                    first_record: INFER_RECORDS + 3,
                },
                FieldDrift {
                    path: "/note".to_owned(),
                    kind: DriftKind::Missing,
                    records: 1,
                    first_record: INFER_RECORDS + 2,
                },
            ]
        );
        let mut failing = inferred_checker(SchemaPolicy::Fail);
        let error = failing
            .check_page("{\"id\":1.5,\"name\":\"a\",\"note\":null,\"meta\":{\"v\":1}}\n".to_owned())
            .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "stream `events`: record 1 of the page does not conform to the schema inferred \
                 from the stream's first 100 records:\n  at `/id`: expected integer, found number"
            ),
            "{error}"
        );
    }

    #[test]
    fn inference_completes_mid_page_and_checks_the_rest_of_it() {
        let mut checker = SchemaChecker::new("s", &json!(true), SchemaPolicy::DeadLetter).unwrap();
        let mut records: Vec<Value> = (0..INFER_RECORDS).map(|i| json!({"n": i})).collect();
        records.push(json!({"n": "late"}));
        let page = checker.check_page(lines(&records)).unwrap();
        assert_eq!(page.kept_count, INFER_RECORDS);
        assert_eq!(page.dead_count, 1);
        assert_eq!(checker.source(), SchemaSource::Inferred);
    }

    #[test]
    fn an_invalid_declared_schema_is_refused_with_the_stream_name() {
        let error = SchemaChecker::new(
            "orders",
            &json!({"type": "object", "properties": {"id": {"type": "integr"}}}),
            SchemaPolicy::Warn,
        )
        .unwrap_err();
        assert!(matches!(&error, Error::InvalidSchema { stream, .. } if stream == "orders"));
        let message = error.to_string();
        assert!(
            message.starts_with(
                "the schema that the connector declares for stream `orders` is not a valid JSON Schema: "
            ),
            "{message}"
        );
        assert!(message.contains("integr"), "{message}");
        assert!(
            message.ends_with(
                "fix the stream's schema in the connector (or declare none and the host infers one)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_line_that_is_not_an_object_is_an_error_not_a_panic() {
        let mut checker = declared(SchemaPolicy::Warn);
        let error = checker
            .check_page("{\"id\":1}\n[1]\n".to_owned())
            .unwrap_err();
        assert!(matches!(error, Error::NotAnObject { record: 2, .. }));
        let error = checker.check_page("{\"id\":\n".to_owned()).unwrap_err();
        assert!(matches!(error, Error::NotAnObject { record: 1, .. }));
    }
}
