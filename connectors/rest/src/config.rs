//! The `rest` connector's config: its serde shape, the checks serde cannot express, and the
//! JSON Schema the host validates configs against.

use std::collections::BTreeMap;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

/// A whole connection: one API, several streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL that every stream's `path` is joined to.
    pub base_url: String,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether requests ask the host for the connection's credential.
    #[serde(default = "default_auth")]
    pub auth: bool,
    /// The streams this config defines.
    pub streams: Vec<StreamConfig>,
}

const fn default_auth() -> bool {
    true
}

/// One stream: an endpoint, where its records are, how it pages and how it resumes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Stream name, unique within the config.
    pub name: String,
    /// Path joined to `base_url`.
    pub path: String,
    /// Static query parameters, sent in order.
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// JSON pointer to the array of records in the body; `""` when the body is the array.
    #[serde(default)]
    pub records: String,
    /// JSON pointer to the primary key of a record.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// How the stream pages.
    #[serde(default)]
    pub pagination: PaginationConfig,
    /// How the stream resumes, if it can.
    #[serde(default)]
    pub incremental: Option<IncrementalConfig>,
}

/// A pagination style and its parameters.
///
/// The parameterless styles are empty struct variants, not unit variants: serde ignores
/// unknown keys next to the tag of a unit variant, and a typo should be an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum PaginationConfig {
    /// One request.
    None {},
    /// `limit`/`offset`, stopping at a short page.
    Offset {
        /// Parameter carrying the page size.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Parameter carrying the offset.
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// Records per page.
        #[serde(default = "default_page_size")]
        page_size: u64,
    },
    /// Page numbers, stopping at an empty page (or a short one when the size is known).
    Page {
        /// Parameter carrying the page number.
        #[serde(default = "default_page_param")]
        page_param: String,
        /// Parameter carrying the page size, if the API takes one.
        #[serde(default)]
        limit_param: Option<String>,
        /// Records per page; required with `limit_param`.
        #[serde(default)]
        page_size: Option<u64>,
        /// Number of the first page.
        #[serde(default = "default_start_page")]
        start_page: u64,
    },
    /// A cursor read from the body and sent back as a parameter.
    Cursor {
        /// Parameter carrying the cursor.
        cursor_param: String,
        /// JSON pointer to the next cursor in the body.
        next_cursor: String,
    },
    /// The `Link: <…>; rel="next"` header.
    Link {},
    /// Keyset: the next request sends `field` of the page's last record as `param`
    /// (`since_id=<last id>`), stopping at an empty page (or a short one when the size is
    /// known). Exact only when `field` is unique and the API sorts by it; for timestamps that
    /// records share, use `offset`/`page` with an incremental lookback and tie-breaker.
    Keyset {
        /// Parameter carrying the key of the last record seen, e.g. `since_id`.
        param: String,
        /// JSON pointer to the key in a record, e.g. `/id`.
        field: String,
        /// Parameter carrying the page size, if the API takes one.
        #[serde(default)]
        limit_param: Option<String>,
        /// Records per page; required with `limit_param`.
        #[serde(default)]
        page_size: Option<u64>,
    },
}

impl Default for PaginationConfig {
    fn default() -> Self {
        Self::None {}
    }
}

fn default_limit_param() -> String {
    "limit".to_owned()
}

fn default_offset_param() -> String {
    "offset".to_owned()
}

fn default_page_param() -> String {
    "page".to_owned()
}

const fn default_page_size() -> u64 {
    100
}

const fn default_start_page() -> u64 {
    1
}

/// Incremental sync on one record field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// JSON pointer to the field that orders records.
    pub field: String,
    /// Query parameter carrying the saved maximum of `field` on the next run.
    pub param: String,
    /// Seconds before the saved maximum the next run starts reading again (timestamps as RFC
    /// 3339 strings or Unix seconds): for APIs whose filter is strictly "after", or whose
    /// records become visible late. The host drops re-read records it already wrote.
    #[serde(default)]
    pub lookback_secs: u64,
    /// JSON pointer to a key telling apart records with the same `field` value; defaults to the
    /// stream's `primary_key`. With it, records sharing the boundary value are neither lost
    /// nor repeated.
    pub tie_breaker: Option<String>,
}

impl StreamConfig {
    /// The boundary rules of this stream's incremental sync.
    pub fn boundary(&self) -> sluice_sdk::incremental::Boundary {
        let incremental = self.incremental.as_ref();
        sluice_sdk::incremental::Boundary {
            tie_breaker: incremental
                .and_then(|i| i.tie_breaker.clone())
                .or_else(|| self.primary_key.clone()),
            lookback_secs: incremental.map_or(0, |i| i.lookback_secs),
        }
    }
}

impl Config {
    /// The stream called `name`, or an error listing the configured ones.
    pub fn stream(&self, name: &str) -> Result<&StreamConfig> {
        self.streams
            .iter()
            .find(|stream| stream.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
                Error::invalid_config(format!(
                    "unknown stream `{name}`; this config defines: {}",
                    known.join(", ")
                ))
            })
    }

    /// What serde cannot check: URLs, pointers, uniqueness, sizes.
    pub fn validate(&self) -> Result<()> {
        url::allowed_host(&self.base_url)?;
        if self.streams.is_empty() {
            return Err(Error::invalid_config(
                "`streams` is empty; define at least one stream",
            ));
        }
        for (index, stream) in self.streams.iter().enumerate() {
            let at = format!("streams[{index}]");
            if stream.name.trim().is_empty() {
                return Err(Error::invalid_config(format!("`{at}.name` is empty")));
            }
            if self.streams[..index].iter().any(|s| s.name == stream.name) {
                return Err(Error::invalid_config(format!(
                    "`{at}.name`: stream `{}` is defined twice; stream names must be unique",
                    stream.name
                )));
            }
            stream.validate(&at)?;
        }
        Ok(())
    }
}

impl StreamConfig {
    fn validate(&self, at: &str) -> Result<()> {
        if self.path.contains("://") {
            return Err(Error::invalid_config(format!(
                "`{at}.path` is `{}`; write a path like `/users` and put the host in `base_url`",
                self.path
            )));
        }
        for (name, value) in &self.params {
            if json::query_value(value).is_none() {
                return Err(Error::invalid_config(format!(
                    "`{at}.params.{name}` is {}; use a string, a number or a boolean",
                    json::describe(value)
                )));
            }
        }
        check_pointer(&self.records, &format!("{at}.records"))?;
        if let Some(key) = &self.primary_key {
            check_pointer(key, &format!("{at}.primary_key"))?;
        }
        self.pagination.validate(&format!("{at}.pagination"))?;
        if let Some(incremental) = &self.incremental {
            check_pointer(&incremental.field, &format!("{at}.incremental.field"))?;
            if let Some(tie_breaker) = &incremental.tie_breaker {
                check_pointer(tie_breaker, &format!("{at}.incremental.tie_breaker"))?;
            }
            if incremental.field.is_empty() {
                return Err(Error::invalid_config(format!(
                    "`{at}.incremental.field` is empty; point it at a field, e.g. `/updated_at`"
                )));
            }
            if incremental.param.is_empty() {
                return Err(Error::invalid_config(format!(
                    "`{at}.incremental.param` is empty; name the query parameter that filters by `{}`",
                    incremental.field
                )));
            }
        }
        Ok(())
    }
}

impl PaginationConfig {
    fn validate(&self, at: &str) -> Result<()> {
        let positive = |size: u64, field: &str| match size {
            0 => Err(Error::invalid_config(format!(
                "`{at}.{field}` is 0; use at least 1"
            ))),
            _ => Ok(()),
        };
        match self {
            Self::None {} | Self::Link {} => Ok(()),
            Self::Offset { page_size, .. } => positive(*page_size, "page_size"),
            Self::Page {
                limit_param,
                page_size,
                ..
            } => match (limit_param, page_size) {
                (Some(_), None) => Err(Error::invalid_config(format!(
                    "`{at}.page_size` is missing; it is required with `{at}.limit_param`"
                ))),
                (_, Some(size)) => positive(*size, "page_size"),
                (None, None) => Ok(()),
            },
            Self::Cursor { next_cursor, .. } => {
                check_pointer(next_cursor, &format!("{at}.next_cursor"))
            }
            Self::Keyset {
                param,
                field,
                limit_param,
                page_size,
            } => {
                check_pointer(field, &format!("{at}.field"))?;
                if field.is_empty() {
                    return Err(Error::invalid_config(format!(
                        "`{at}.field` is empty; point it at a unique, sorted key of a record, e.g. `/id`"
                    )));
                }
                if param.is_empty() {
                    return Err(Error::invalid_config(format!(
                        "`{at}.param` is empty; name the query parameter that asks for records after `{field}`, e.g. `since_id`"
                    )));
                }
                match (limit_param, page_size) {
                    (Some(_), None) => Err(Error::invalid_config(format!(
                        "`{at}.page_size` is missing; it is required with `{at}.limit_param`"
                    ))),
                    (_, Some(size)) => positive(*size, "page_size"),
                    (None, None) => Ok(()),
                }
            }
        }
    }

    /// The SDK strategy this config describes.
    pub fn strategy(&self) -> Pagination {
        match self {
            Self::None {} => Pagination::None,
            Self::Offset {
                limit_param,
                offset_param,
                page_size,
            } => Pagination::Offset(paginate::Offset::new(
                limit_param.as_str(),
                offset_param.as_str(),
                *page_size,
            )),
            Self::Page {
                page_param,
                limit_param,
                page_size,
                start_page,
            } => {
                let pages =
                    paginate::PageNumber::new(page_param.as_str()).with_start_page(*start_page);
                Pagination::PageNumber(match (limit_param, page_size) {
                    (Some(param), Some(size)) => pages.with_size_param(param.as_str(), *size),
                    (None, Some(size)) => pages.with_page_size(*size),
                    _ => pages,
                })
            }
            Self::Cursor {
                cursor_param,
                next_cursor,
            } => Pagination::Cursor(paginate::Cursor::new(
                cursor_param.as_str(),
                next_cursor.as_str(),
            )),
            Self::Link {} => Pagination::Link(paginate::LinkHeader::new()),
            Self::Keyset {
                param,
                field,
                limit_param,
                page_size,
            } => {
                let keyset = paginate::Keyset::new(param.as_str(), field.as_str());
                Pagination::Keyset(match (limit_param, page_size) {
                    (Some(limit), Some(size)) => keyset.with_limit_param(limit.as_str(), *size),
                    (None, Some(size)) => keyset.with_page_size(*size),
                    _ => keyset,
                })
            }
        }
    }
}

fn check_pointer(pointer: &str, at: &str) -> Result<()> {
    match json::is_valid_pointer(pointer) {
        true => Ok(()),
        false => Err(Error::invalid_config(format!(
            "`{at}` is `{pointer}`, not a JSON pointer; write it like `/data/items` (or \"\" for the whole value)"
        ))),
    }
}

/// The JSON Schema of [`Config`], as published in the spec.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rest connector config",
        "type": "object",
        "additionalProperties": false,
        "required": ["base_url", "streams"],
        "properties": {
            "base_url": {
                "type": "string",
                "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
                "description": "Base URL every stream path is joined to, e.g. https://api.example.com/v1"
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra headers sent with every request (`accept: application/json` unless set here)"
            },
            "auth": {
                "type": "boolean",
                "default": true,
                "description": "Ask the host to apply the connection's credential to every request"
            },
            "streams": {"type": "array", "minItems": 1, "items": stream_schema()}
        }
    })
}

fn pointer_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^(/([^~]|~[01])*)*$",
        "description": "JSON pointer (RFC 6901); \"\" is the whole value"
    })
}

fn param_schema() -> Value {
    json!({"type": "string", "minLength": 1})
}

fn stream_schema() -> Value {
    let pointer = pointer_schema();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "path"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Stream name, unique in this config"},
            "path": {"type": "string", "description": "Path joined to base_url, e.g. /users"},
            "params": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "Static query parameters"
            },
            "records": {
                "allOf": [pointer],
                "default": "",
                "description": "JSON pointer to the array of records in the body; \"\" when the body is the array"
            },
            "primary_key": {"allOf": [pointer], "description": "JSON pointer to a record's primary key"},
            "pagination": pagination_schema(),
            "incremental": {
                "type": "object",
                "additionalProperties": false,
                "required": ["field", "param"],
                "description": "Resume from the highest value of field emitted, sent as param (lookback_secs earlier); records at that value are told apart by tie_breaker (default: primary_key)",
                "properties": {
                    "field": {"allOf": [pointer], "minLength": 1},
                    "param": param_schema(),
                    "lookback_secs": {"type": "integer", "minimum": 0, "default": 0, "description": "Seconds before the saved maximum to read again"},
                    "tie_breaker": {"allOf": [pointer], "description": "JSON pointer to a key telling apart records with the same field value; default primary_key"}
                }
            }
        }
    })
}

fn pagination_schema() -> Value {
    let param = param_schema();
    let only_type = |kind: &str, description: &str| {
        json!({
            "description": description,
            "additionalProperties": false,
            "properties": {"type": {"const": kind}}
        })
    };
    json!({
        "type": "object",
        "required": ["type"],
        "oneOf": [
            only_type("none", "One request"),
            only_type("link", "The Link response header, rel=\"next\""),
            {
                "description": "limit/offset parameters; a page shorter than page_size is the last",
                "additionalProperties": false,
                "properties": {
                    "type": {"const": "offset"},
                    "limit_param": {"allOf": [param], "default": "limit"},
                    "offset_param": {"allOf": [param], "default": "offset"},
                    "page_size": {"type": "integer", "minimum": 1, "default": 100}
                }
            },
            {
                "description": "Page numbers; an empty page (or a short one when page_size is set) is the last",
                "additionalProperties": false,
                "dependentRequired": {"limit_param": ["page_size"]},
                "properties": {
                    "type": {"const": "page"},
                    "page_param": {"allOf": [param], "default": "page"},
                    "limit_param": {"allOf": [param], "description": "Parameter carrying page_size, if the API takes one"},
                    "page_size": {"type": "integer", "minimum": 1},
                    "start_page": {"type": "integer", "minimum": 0, "default": 1}
                }
            },
            {
                "description": "A cursor read from the body at next_cursor, sent back as cursor_param; a missing, null or empty cursor ends",
                "additionalProperties": false,
                "required": ["cursor_param", "next_cursor"],
                "properties": {
                    "type": {"const": "cursor"},
                    "cursor_param": param,
                    "next_cursor": pointer_schema()
                }
            },
            {
                "description": "Keyset: field (JSON pointer) of the page's last record sent as param, e.g. since_id=<last id>; an empty page (or a short one when page_size is set) is the last. Exact only when field is unique and the API sorts by it",
                "additionalProperties": false,
                "required": ["param", "field"],
                "dependentRequired": {"limit_param": ["page_size"]},
                "properties": {
                    "type": {"const": "keyset"},
                    "param": param,
                    "field": {"allOf": [pointer_schema()], "minLength": 1},
                    "limit_param": {"allOf": [param], "description": "Parameter carrying page_size, if the API takes one"},
                    "page_size": {"type": "integer", "minimum": 1}
                }
            }
        ]
    })
}
