//! `hackernews`: Hacker News items through Algolia's search API, incremental on
//! `created_at_i`.
//!
//! Config: `{"base_url": "https://hn.algolia.com", "hits_per_page": 100, "start_date":
//! "2024-01-01", "query": "rust"}` (all optional). No credential: the API is public. State:
//! `{"cursor": <max created_at_i>}`. Paging and incremental reads are in [`search`].

mod config;
pub mod search;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

pub use config::{Config, DEFAULT_BASE_URL, DEFAULT_HITS_PER_PAGE, MAX_HITS_PER_PAGE};

/// The Hacker News connector.
pub struct HackerNews;

/// The streams: name and Algolia tag.
const STREAMS: [(&str, &str); 5] = [
    ("stories", "story"),
    ("comments", "comment"),
    ("ask_hn", "ask_hn"),
    ("show_hn", "show_hn"),
    ("jobs", "job"),
];

impl Connector for HackerNews {
    type Config = Config;
    type State = Watermark;

    fn spec() -> Spec {
        Spec::new(
            "hackernews",
            env!("CARGO_PKG_VERSION"),
            "Hacker News stories, comments, Ask HN, Show HN and jobs via Algolia, incremental on created_at_i",
        )
        .with_config_schema(config_schema())
        // Algolia asks HN API clients to stay under 10,000 requests per hour.
        .with_rate_limit(RateLimit::per_hour(10_000).with_burst(10))
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let mut catalog = Catalog::new().with_allowed_host(url::allowed_host(&config.base_url)?);
        for (name, _) in STREAMS {
            catalog = catalog.with_stream(
                StreamInfo::new(name)
                    .with_json_schema(search::schema())
                    .with_primary_key("/objectID")
                    .with_cursor_field(search::CURSOR_FIELD),
            );
        }
        Ok(catalog)
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        let tag = known_stream(stream)?;
        Ok(Next::Fetch(search::first_request(config, tag, &state)?))
    }

    fn next_page(
        config: &Config,
        stream: &str,
        state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        known_stream(stream)?;
        search::read_page(config, state, request, response)
    }
}

/// The Algolia tag of `stream`.
fn known_stream(stream: &str) -> Result<&'static str> {
    STREAMS
        .into_iter()
        .find(|(name, _)| *name == stream)
        .map(|(_, tag)| tag)
        .ok_or_else(|| {
            let names: Vec<&str> = STREAMS.iter().map(|(name, _)| *name).collect();
            Error::invalid_config(format!(
                "unknown stream `{stream}`; the hackernews connector has: {}",
                names.join(", ")
            ))
        })
}

fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hackernews connector config",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "base_url": {
                "type": "string",
                "default": DEFAULT_BASE_URL,
                "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
                "description": "API root"
            },
            "hits_per_page": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_HITS_PER_PAGE,
                "default": DEFAULT_HITS_PER_PAGE,
                "description": "Hits per request"
            },
            "start_date": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$",
                "description": "On the first run, read only items created at or after this UTC date or time"
            },
            "query": {
                "type": "string",
                "description": "Only items matching this full-text query"
            }
        }
    })
}

sluice_sdk::export_connector!(HackerNews);

#[cfg(test)]
mod tests;
