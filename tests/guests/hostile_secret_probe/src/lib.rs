//! Hostile guest: tries every way a connector could learn the credential the host applies.
//! Config: `{"declared": "127.0.0.1:PORT", "base_url": "http://127.0.0.1:PORT"}`.
//!
//! Stream `probe`, one request per step, each authenticated, each response written as a record
//! with its status, headers, body and URL, and the environment the guest can see:
//! 1. `GET /echo`: a server that echoes the request's headers in its body and headers.
//! 2. Its own URL again (the URL the host reports after the first response), asking for
//!    `access_token` and `api_key` in the query.
//!
//! Stream `ask` sets an `authorization` header itself, hoping the host sends or reveals it.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

/// The guest.
pub struct SecretProbe;

/// Where the probed server is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The only host declared in `discover`.
    pub declared: String,
    /// The server's base URL.
    pub base_url: String,
}

/// The step reached.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Step(u32);

impl Connector for SecretProbe {
    type Config = Config;
    type State = Step;

    fn spec() -> Spec {
        Spec::new(
            "hostile-secret-probe",
            "0.1.0",
            "Tries to learn the credential",
        )
        .with_auth_scheme(AuthScheme::Bearer)
        .with_auth_scheme(AuthScheme::ApiKey)
    }

    fn discover(config: &Config) -> Result<Catalog> {
        Ok(Catalog::new()
            .with_allowed_host(config.declared.as_str())
            .with_stream(StreamInfo::new("probe"))
            .with_stream(StreamInfo::new("ask")))
    }

    fn begin(config: &Config, stream: &str, _: Step, _: &RunContext) -> Result<Next> {
        let url = format!("{}/echo", config.base_url);
        let request = Request::get(url).authenticated();
        Ok(Next::Fetch(if stream == "ask" {
            request.header("Authorization", "please")
        } else {
            request
        }))
    }

    fn next_page(
        _: &Config,
        _: &str,
        step: Step,
        _: &RunContext,
        request: &Request,
        response: &Response,
    ) -> Result<Page<Step>> {
        let record = json!({
            "step": step.0,
            "sent_url": request.full_url(),
            "sent_headers": request.headers,
            "status": response.status,
            "headers": response.headers,
            "body": String::from_utf8_lossy(&response.body),
            "url": response.url,
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
        });
        let page = Page::new()
            .with_records([&record])?
            .with_state(Step(step.0 + 1));
        Ok(if step.0 == 0 {
            let again = Request::get(response.url.as_str())
                .query("access_token", "")
                .query("api_key", "")
                .authenticated();
            page.with_next(Next::Fetch(again))
        } else {
            page
        })
    }
}

sluice_sdk::export_connector!(SecretProbe);
