//! `stripe`: customers, charges and invoices of a Stripe account, incremental on `created`.
//!
//! Config: `{"base_url": "https://api.stripe.com", "page_size": 100, "start_date":
//! "2024-01-01", "api_version": "2024-06-20", "account": "acct_..."}` (all optional). Requests
//! ask for the connection's credential: configure the secret key (`sk_live_...`, `sk_test_...`
//! or a restricted `rk_...` key) as a bearer secret. State: `{"cursor": <max created>}`.
//! Pagination and incremental reads are in [`list`].

mod config;
pub mod list;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

pub use config::{Config, DEFAULT_BASE_URL, MAX_PAGE_SIZE};

/// The Stripe connector.
pub struct Stripe;

/// The streams: name, API path, and the object's name in messages.
const STREAMS: [(&str, &str, &str); 3] = [
    ("customers", "v1/customers", "customer"),
    ("charges", "v1/charges", "charge"),
    ("invoices", "v1/invoices", "invoice"),
];

impl Connector for Stripe {
    type Config = Config;
    type State = Watermark;

    fn spec() -> Spec {
        Spec::new(
            "stripe",
            env!("CARGO_PKG_VERSION"),
            "Customers, charges and invoices of a Stripe account, incremental on created",
        )
        .with_config_schema(config_schema())
        // Stripe allows 25 read requests per second in test mode (100 in live mode).
        .with_rate_limit(RateLimit::per_second(25).with_burst(25))
        .with_auth_scheme(AuthScheme::Bearer)
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let mut catalog = Catalog::new().with_allowed_host(url::allowed_host(&config.base_url)?);
        for (name, _, object) in STREAMS {
            catalog = catalog.with_stream(
                StreamInfo::new(name)
                    .with_json_schema(schema(object))
                    .with_primary_key("/id")
                    .with_cursor_field(list::CURSOR_FIELD),
            );
        }
        Ok(catalog)
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        let (_, path, _) = known_stream(stream)?;
        Ok(Next::Fetch(list::first_request(config, path, &state)?))
    }

    fn next_page(
        _: &Config,
        stream: &str,
        state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        let (_, _, object) = known_stream(stream)?;
        list::read_page(object, state, request, response)
    }
}

fn known_stream(stream: &str) -> Result<(&'static str, &'static str, &'static str)> {
    STREAMS
        .into_iter()
        .find(|(name, _, _)| *name == stream)
        .ok_or_else(|| {
            let names: Vec<&str> = STREAMS.iter().map(|(name, _, _)| *name).collect();
            Error::invalid_config(format!(
                "unknown stream `{stream}`; the stripe connector has: {}",
                names.join(", ")
            ))
        })
}

/// The JSON Schema of a Stripe object: what every one has; Stripe sends many more fields.
fn schema(object: &str) -> Value {
    json!({
        "type": "object",
        "required": ["id", "object", "created"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": object},
            "created": {"type": "integer", "description": "Seconds since the Unix epoch"},
            "livemode": {"type": "boolean"},
            "metadata": {"type": "object"}
        },
        "additionalProperties": true
    })
}

fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "stripe connector config",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "base_url": {
                "type": "string",
                "default": DEFAULT_BASE_URL,
                "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
                "description": "API root"
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "default": MAX_PAGE_SIZE,
                "description": "Objects per request"
            },
            "start_date": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?$",
                "description": "On the first run, read only objects created at or after this UTC date or time"
            },
            "api_version": {
                "type": "string",
                "description": "Stripe-Version header, e.g. 2024-06-20; the account's default when absent"
            },
            "account": {
                "type": "string",
                "pattern": "^acct_",
                "description": "Stripe-Account header: read this connected account"
            }
        }
    })
}

sluice_sdk::export_connector!(Stripe);

#[cfg(test)]
mod tests;
