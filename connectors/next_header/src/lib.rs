//! `next_header`: one stream from a JSON API that names the next page in a response header,
//! either as a URL (`X-Next-Page-Url`) or as a token for a query parameter (`X-Next-Page`,
//! `x-ms-continuationtoken`).
//!
//! Config (see [`Config`]): `url`, `next_header`, optional `next_param`, `stream`, `params`,
//! `headers`, `records`, `primary_key` and `incremental` (`field`, `param`, `start`). Requests
//! ask for the connection's credential; the operator decides whether there is one and of which
//! kind. State: a [`Watermark`] on `incremental.field`, `{"cursor": <max>}`, when incremental.

mod config;
pub mod next;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

pub use config::{Config, DEFAULT_STREAM, Incremental};

/// The next-page-header connector.
pub struct NextHeader;

impl Connector for NextHeader {
    type Config = Config;
    type State = Watermark;

    fn spec() -> Spec {
        Spec::new(
            "next_header",
            env!("CARGO_PKG_VERSION"),
            "One stream from a JSON API that names the next page in a response header (a URL or a token)",
        )
        .with_config_schema(config_schema())
        .with_auth_scheme(AuthScheme::Bearer)
        .with_auth_scheme(AuthScheme::ApiKey)
        .with_auth_scheme(AuthScheme::Basic)
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let mut stream = StreamInfo::new(config.stream.clone());
        if let Some(key) = &config.primary_key {
            stream = stream.with_primary_key(key.clone());
        }
        if let Some(incremental) = &config.incremental {
            stream = stream.with_cursor_field(incremental.field.clone());
        }
        Ok(Catalog::new()
            .with_allowed_host(url::allowed_host(&config.url)?)
            .with_stream(stream))
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        known_stream(config, stream)?;
        let mut request = Request::get(config.url.clone())
            .headers(config.headers.clone())
            .authenticated();
        for (name, value) in config.query_pairs() {
            request = request.query(name, value);
        }
        if let Some(incremental) = &config.incremental {
            let since = state.cursor_param().or_else(|| incremental.start.clone());
            request = request.query_opt(incremental.param.clone(), since);
        }
        Ok(Next::Fetch(request))
    }

    fn next_page(
        config: &Config,
        stream: &str,
        mut state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        known_stream(config, stream)?;
        // One pass over the body; records go to the page as the API sent them, and only
        // their cursor field is parsed.
        let body = response.ok()?.json_records(&config.records)?;
        let mut page = Page::with_capacity(response.body.len());
        let cursor = config
            .incremental
            .as_ref()
            .map(|incremental| json::Pointer::new(&incremental.field));
        for record in &body.records {
            let new = match &cursor {
                Some(field) => {
                    let [value] = json::values_at(record.get(), [field])?;
                    state.admit_found(value.as_ref())
                }
                None => true,
            };
            if new {
                page.push_raw(record).map_err(|_| {
                    Error::unexpected_response(format!(
                        "a record is {}, expected an object",
                        json::describe_raw(record)
                    ))
                })?;
            }
        }
        let next = next::next_request(config, request, response)?;
        if next.is_none() {
            state.finish();
        }
        Ok(page.with_state(state).with_next(next))
    }
}

fn known_stream(config: &Config, stream: &str) -> Result<()> {
    match stream == config.stream {
        true => Ok(()),
        false => Err(Error::invalid_config(format!(
            "unknown stream `{stream}`; this connection has one stream, `{}`",
            config.stream
        ))),
    }
}

fn config_schema() -> Value {
    let pointer = json!({"type": "string", "pattern": "^(/.*)?$"});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "next_header connector config",
        "type": "object",
        "additionalProperties": false,
        "required": ["url", "next_header"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
                "description": "Absolute URL of the first page; the connector may reach only its host"
            },
            "next_header": {
                "type": "string",
                "minLength": 1,
                "description": "Response header naming the next page, e.g. X-Next-Page-Url; absent or empty on the last page"
            },
            "next_param": {
                "type": "string",
                "minLength": 1,
                "description": "If set, the header holds a token sent as this query parameter; otherwise it holds the next URL"
            },
            "stream": {"type": "string", "minLength": 1, "default": DEFAULT_STREAM, "description": "Stream name"},
            "params": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
                "description": "Query parameters of the first request"
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra headers sent with every request"
            },
            "records": {
                "allOf": [pointer.clone()],
                "default": "",
                "description": "JSON pointer to the array of records; \"\" for a bare array"
            },
            "primary_key": {"allOf": [pointer.clone()], "description": "JSON pointer to a record's key"},
            "incremental": {
                "type": "object",
                "additionalProperties": false,
                "required": ["field", "param"],
                "properties": {
                    "field": {"allOf": [pointer], "description": "JSON pointer to the cursor field"},
                    "param": {"type": "string", "minLength": 1, "description": "Query parameter carrying the saved cursor"},
                    "start": {"type": "string", "description": "Value of param on the first sync"}
                }
            }
        }
    })
}

sluice_sdk::export_connector!(NextHeader);

#[cfg(test)]
mod tests;
