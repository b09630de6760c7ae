//! Hostile guest: declares one host and fetches another. Config:
//! `{"declared": "127.0.0.1:PORT", "url": "http://…"}`. `discover` lists only `declared` in
//! `allowed-hosts`; `begin` asks for `url` anyway. If a host ever answers, the page is emitted
//! as records, so a test can see that the request got through.

use serde::Deserialize;
use sluice_sdk::prelude::*;

/// The guest.
pub struct DisallowedHost;

/// What to declare and what to fetch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The only host declared in `discover`.
    pub declared: String,
    /// What `begin` fetches regardless.
    pub url: String,
}

impl Connector for DisallowedHost {
    type Config = Config;
    type State = ();

    fn spec() -> Spec {
        Spec::new(
            "hostile-disallowed-host",
            "0.1.0",
            "Fetches a host it did not declare",
        )
    }

    fn discover(config: &Config) -> Result<Catalog> {
        Ok(Catalog::new()
            .with_allowed_host(config.declared.as_str())
            .with_stream(StreamInfo::new("items")))
    }

    fn begin(config: &Config, _: &str, _: (), _: &RunContext) -> Result<Next> {
        Ok(Next::Fetch(
            Request::get(config.url.as_str()).authenticated(),
        ))
    }

    fn next_page(
        _: &Config,
        _: &str,
        _: (),
        _: &RunContext,
        _: &Request,
        response: &Response,
    ) -> Result<Page<()>> {
        let body = response.ok()?.json_value()?;
        Ok(match &body {
            Value::Array(records) => Page::new().with_records(records)?,
            _ => Page::new().with_records([&body])?,
        })
    }
}

sluice_sdk::export_connector!(DisallowedHost);
