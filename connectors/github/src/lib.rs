//! `github`: the issues, pull requests and commits of one GitHub repository, each incremental.
//!
//! Config: `{"repository": "owner/name", "base_url": "https://api.github.com", "start_date":
//! "2024-01-01", "streams": ["issues", "pulls", "commits"]}` (only `repository` is required;
//! `streams` defaults to `["issues"]`). Requests ask for the connection's
//! credential; configure a token as a bearer secret for private repositories and the higher
//! rate limit. Every stream pages by the `Link` header and keeps a [`Watermark`] state,
//! `{"cursor": "<max cursor value>"}`:
//! - `issues`: `since` on `updated_at`, oldest update first;
//! - `pulls`: no `since` in the API, so newest update first, stopping at the saved cursor;
//! - `commits`: `since` on the committer date, newest first.

mod api;
mod commits;
mod config;
mod issues;
mod pulls;

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
            "Issues, pull requests and commits of a GitHub repository, incremental",
        )
        .with_config_schema(config_schema())
        .with_rate_limit(RateLimit::per_hour(5000).with_burst(100))
        .with_auth_scheme(AuthScheme::Bearer)
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let mut catalog = Catalog::new().with_allowed_host(url::allowed_host(&config.base_url)?);
        for stream in [
            StreamInfo::new(issues::STREAM)
                .with_json_schema(issues::schema())
                .with_primary_key("/id")
                .with_cursor_field(issues::CURSOR_FIELD),
            StreamInfo::new(pulls::STREAM)
                .with_json_schema(pulls::schema())
                .with_primary_key("/id")
                .with_cursor_field(pulls::CURSOR_FIELD),
            StreamInfo::new(commits::STREAM)
                .with_json_schema(commits::schema())
                .with_primary_key("/sha")
                .with_cursor_field(commits::CURSOR_FIELD),
        ] {
            if config.offers(&stream.name) {
                catalog = catalog.with_stream(stream);
            }
        }
        Ok(catalog)
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        let first = match known_stream(stream)? {
            Stream::Issues => issues::first_request(config, &state)?,
            Stream::Pulls => pulls::first_request(config)?,
            Stream::Commits => commits::first_request(config, &state)?,
        };
        Ok(Next::Fetch(first))
    }

    fn next_page(
        config: &Config,
        stream: &str,
        state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        match known_stream(stream)? {
            Stream::Issues => issues::read_page(state, request, response),
            Stream::Pulls => pulls::read_page(config, state, request, response),
            Stream::Commits => commits::read_page(state, request, response),
        }
    }
}

/// The streams of the connector.
enum Stream {
    Issues,
    Pulls,
    Commits,
}

fn known_stream(stream: &str) -> Result<Stream> {
    match stream {
        issues::STREAM => Ok(Stream::Issues),
        pulls::STREAM => Ok(Stream::Pulls),
        commits::STREAM => Ok(Stream::Commits),
        other => Err(Error::invalid_config(format!(
            "unknown stream `{other}`; the github connector has: {}, {}, {}",
            issues::STREAM,
            pulls::STREAM,
            commits::STREAM
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
            "streams": {
                "type": "array",
                "items": {"enum": config::STREAMS},
                "uniqueItems": true,
                "minItems": 1,
                "default": ["issues"],
                "description": "The streams this connection offers: issues, pulls, commits (only issues when absent)"
            },
            "start_date": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$",
                "description": "On the first run, read only issues and pull requests updated, and commits committed, at or after this UTC date or time"
            }
        }
    })
}

sluice_sdk::export_connector!(GitHub);

#[cfg(test)]
mod tests;
