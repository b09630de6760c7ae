//! `github`: the issues of one GitHub repository, incremental on `updated_at`.
//!
//! Config: `{"repository": "owner/name", "base_url": "https://api.github.com", "start_date":
//! "2024-01-01"}` (only `repository` is required). Requests ask for the connection's
//! credential; configure a token as a bearer secret for private repositories and the higher
//! rate limit. State: `{"cursor": "<max updated_at>"}`.

mod config;
mod issues;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

pub use config::{Config, DEFAULT_BASE_URL};

/// The GitHub connector.
pub struct GitHub;

impl Connector for GitHub {
    type Config = Config;
    type State = Watermark;

    fn spec() -> Spec {
        Spec::new(
            "github",
            env!("CARGO_PKG_VERSION"),
            "Issues and pull requests of a GitHub repository, incremental on updated_at",
        )
        .with_config_schema(config_schema())
        .with_rate_limit(RateLimit::per_hour(5000).with_burst(100))
        .with_auth_scheme(AuthScheme::Bearer)
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        Ok(Catalog::new()
            .with_allowed_host(url::allowed_host(&config.base_url)?)
            .with_stream(
                StreamInfo::new(issues::STREAM)
                    .with_json_schema(issues::schema())
                    .with_primary_key("/id")
                    .with_cursor_field(issues::CURSOR_FIELD),
            ))
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        known_stream(stream)?;
        Ok(Next::Fetch(issues::first_request(config, &state)?))
    }

    fn next_page(
        _: &Config,
        stream: &str,
        state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        known_stream(stream)?;
        issues::read_page(state, request, response)
    }
}

fn known_stream(stream: &str) -> Result<()> {
    match stream {
        issues::STREAM => Ok(()),
        other => Err(Error::invalid_config(format!(
            "unknown stream `{other}`; the github connector has: {}",
            issues::STREAM
        ))),
    }
}

fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "github connector config",
        "type": "object",
        "additionalProperties": false,
        "required": ["repository"],
        "properties": {
            "repository": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                "description": "owner/name, e.g. rust-lang/rust"
            },
            "base_url": {
                "type": "string",
                "default": DEFAULT_BASE_URL,
                "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
                "description": "API root; GitHub Enterprise Server uses https://HOST/api/v3"
            },
            "start_date": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$",
                "description": "On the first run, read only issues updated at or after this UTC date or time"
            }
        }
    })
}

sluice_sdk::export_connector!(GitHub);

#[cfg(test)]
mod tests;
