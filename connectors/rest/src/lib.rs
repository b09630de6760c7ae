//! `rest`: a declarative connector. The config names a base URL and, per stream, a path, where
//! the records are in the body, how the API pages and which field makes it incremental; no code
//! is needed for the many APIs that fit that shape.
//!
//! ```json
//! {
//!   "base_url": "https://api.example.com/v1",
//!   "streams": [{
//!     "name": "users",
//!     "path": "/users",
//!     "records": "/data",
//!     "primary_key": "/id",
//!     "pagination": {"type": "offset", "limit_param": "limit", "offset_param": "offset", "page_size": 100},
//!     "incremental": {"field": "/updated_at", "param": "updated_since"}
//!   }]
//! }
//! ```
//!
//! The state of an incremental stream is `{"cursor": <highest field value emitted>}` between
//! runs, plus `"max"` (the highest so far) during one. The pagination position is not state:
//! the host re-sends the pending request after a crash and the next page's parameters are
//! computed from it.

mod config;
mod read;

use sluice_sdk::prelude::*;
use sluice_sdk::url;

pub use config::{Config, IncrementalConfig, PaginationConfig, StreamConfig};

/// The declarative REST connector.
pub struct Rest;

impl Connector for Rest {
    type Config = Config;
    type State = Watermark;

    fn spec() -> Spec {
        Spec::new(
            "rest",
            env!("CARGO_PKG_VERSION"),
            "Any JSON REST API described by config: paths, records pointer, pagination, incremental field",
        )
        .with_config_schema(config::schema())
        .with_auth_scheme(AuthScheme::ApiKey)
        .with_auth_scheme(AuthScheme::Bearer)
        .with_auth_scheme(AuthScheme::Basic)
        .with_auth_scheme(AuthScheme::Oauth2ClientCredentials)
        .with_auth_scheme(AuthScheme::Oauth2RefreshToken)
    }

    fn check(config: &Config) -> Result<()> {
        config.validate()
    }

    fn discover(config: &Config) -> Result<Catalog> {
        let catalog = Catalog::new().with_allowed_host(url::allowed_host(&config.base_url)?);
        Ok(config.streams.iter().fold(catalog, |catalog, stream| {
            let mut info = StreamInfo::new(stream.name.as_str());
            if let Some(key) = &stream.primary_key {
                info = info.with_primary_key(key.as_str());
            }
            if let Some(incremental) = &stream.incremental {
                info = info.with_cursor_field(incremental.field.as_str());
            }
            catalog.with_stream(info)
        }))
    }

    fn begin(config: &Config, stream: &str, state: Watermark, _: &RunContext) -> Result<Next> {
        let stream = config.stream(stream)?;
        Ok(Next::Fetch(read::first_request(config, stream, &state)))
    }

    fn next_page(
        config: &Config,
        stream: &str,
        state: Watermark,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Watermark>> {
        read::read_page(config.stream(stream)?, state, request, response)
    }
}

sluice_sdk::export_connector!(Rest);

#[cfg(test)]
mod tests;
