//! The `next_header` connector's config and the checks serde cannot express.

use std::collections::BTreeMap;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

/// The stream's name unless configured.
pub const DEFAULT_STREAM: &str = "records";

/// One endpoint whose responses name the next page in a header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Absolute URL of the first page; its host is the one the connector may reach.
    pub url: String,
    /// The response header that names the next page, e.g. `X-Next-Page-Url` or `X-Next-Page`
    /// (case-insensitive). Absent or empty on the last page.
    pub next_header: String,
    /// When set, the header holds a token (a cursor or page number) sent as this query
    /// parameter of the same request; when absent, the header holds the next page's URL
    /// (absolute, or relative to the URL that answered).
    #[serde(default)]
    pub next_param: Option<String>,
    /// Stream name (the output file is `<stream>.jsonl`).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Query parameters of the first request, in order (strings, numbers or booleans).
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// Extra headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON pointer to the array of records in the body; `""` (the default) when the body is
    /// the array.
    #[serde(default)]
    pub records: String,
    /// JSON pointer to a record's primary key.
    #[serde(default)]
    pub primary_key: Option<String>,
    /// How the stream resumes, if it can.
    #[serde(default)]
    pub incremental: Option<Incremental>,
}

/// Incremental reads: a cursor field in the records and a query parameter that filters on it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// JSON pointer to the record's cursor value, e.g. `/updated_at`.
    pub field: String,
    /// Query parameter of the first request that carries the saved cursor, e.g.
    /// `updated_after`.
    pub param: String,
    /// Value of `param` on the first sync, before there is a cursor.
    #[serde(default)]
    pub start: Option<String>,
}

fn default_stream() -> String {
    DEFAULT_STREAM.to_owned()
}

impl Config {
    /// Check everything serde does not.
    pub fn validate(&self) -> Result<()> {
        url::allowed_host(&self.url)?;
        if !is_token(&self.next_header) {
            return Err(Error::invalid_config(format!(
                "`next_header` is `{}`; write a header name like `X-Next-Page-Url`",
                self.next_header
            )));
        }
        if self.next_param.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid_config(
                "`next_param` is empty; name the query parameter the header's token goes in, or leave it out when the header holds a URL",
            ));
        }
        if self.stream.is_empty() {
            return Err(Error::invalid_config("`stream` is empty; name the stream"));
        }
        for (name, value) in &self.params {
            if json::query_value(value).is_none() {
                return Err(Error::invalid_config(format!(
                    "`params.{name}` is {}; use a string, a number or a boolean",
                    json::describe(value)
                )));
            }
        }
        check_pointer(&self.records, "records")?;
        if let Some(key) = &self.primary_key {
            check_pointer(key, "primary_key")?;
        }
        if let Some(incremental) = &self.incremental {
            check_pointer(&incremental.field, "incremental.field")?;
            if incremental.field.is_empty() {
                return Err(Error::invalid_config(
                    "`incremental.field` is empty; point at the cursor field, like `/updated_at`",
                ));
            }
            if incremental.param.is_empty() {
                return Err(Error::invalid_config(
                    "`incremental.param` is empty; name the query parameter that filters on the cursor, like `updated_after`",
                ));
            }
        }
        Ok(())
    }

    /// The query pairs of the first request, in order.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, String)> {
        self.params
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), json::query_value(value)?)))
    }
}

/// Whether `name` is an HTTP header name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_pointer(pointer: &str, key: &str) -> Result<()> {
    match json::is_valid_pointer(pointer) {
        true => Ok(()),
        false => Err(Error::invalid_config(format!(
            "`{key}` is `{pointer}`, not a JSON pointer; write it like `/data` (or `\"\"` for the whole body)"
        ))),
    }
}
