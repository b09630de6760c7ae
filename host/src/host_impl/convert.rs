//! Conversions between generated WIT types and [`crate::protocol`] types. Guest data that does
//! not make sense (unparsable JSON, unknown method) becomes an error string, never a panic.

use crate::bindings::types as wit;
use crate::http::HttpResponse;
use crate::protocol::{
    AuthScheme, Catalog, ConnectorRequest, GuestError, Next, Page, RateLimitHint, RunContext, Spec,
    StreamInfo, SyncMode,
};

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|error| format!("{what} is not valid JSON: {error}"))
}

/// The host's view of a connector's spec.
pub fn spec_from_wit(spec: wit::Spec) -> Result<Spec, String> {
    Ok(Spec {
        config_schema: parse_json("`config-schema`", &spec.config_schema)?,
        name: spec.name,
        version: spec.version,
        description: spec.description,
        rate_limit: spec.rate_limit.map(|rate| RateLimitHint {
            requests: rate.requests,
            per_seconds: rate.per_seconds,
            burst: rate.burst,
        }),
        auth_schemes: spec
            .auth_schemes
            .into_iter()
            .map(|scheme| match scheme {
                wit::AuthScheme::ApiKey => AuthScheme::ApiKey,
                wit::AuthScheme::Bearer => AuthScheme::Bearer,
                wit::AuthScheme::Basic => AuthScheme::Basic,
                wit::AuthScheme::Oauth2ClientCredentials => AuthScheme::Oauth2ClientCredentials,
                wit::AuthScheme::Oauth2RefreshToken => AuthScheme::Oauth2RefreshToken,
            })
            .collect(),
    })
}

/// The host's view of a connector's catalog.
pub fn catalog_from_wit(catalog: wit::Catalog) -> Result<Catalog, String> {
    let streams = catalog
        .streams
        .into_iter()
        .map(|stream| {
            Ok(StreamInfo {
                json_schema: parse_json(
                    &format!("the JSON schema of stream `{}`", stream.name),
                    &stream.json_schema,
                )?,
                name: stream.name,
                primary_key: stream.primary_key,
                cursor_field: stream.cursor_field,
                sync_modes: stream
                    .sync_modes
                    .into_iter()
                    .map(|mode| match mode {
                        wit::SyncMode::FullRefresh => SyncMode::FullRefresh,
                        wit::SyncMode::Incremental => SyncMode::Incremental,
                    })
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Catalog {
        allowed_hosts: catalog.allowed_hosts,
        streams,
    })
}

fn request_from_wit(request: wit::Request) -> ConnectorRequest {
    let method = match request.method {
        wit::Method::Get => "GET",
        wit::Method::Post => "POST",
        wit::Method::Put => "PUT",
        wit::Method::Patch => "PATCH",
        wit::Method::Delete => "DELETE",
        wit::Method::Head => "HEAD",
    };
    ConnectorRequest {
        method: method.to_owned(),
        url: request.url,
        query: request.query,
        headers: request.headers,
        body: request.body,
        authenticate: request.authenticate,
        idempotent: request.idempotent,
    }
}

/// A stored request, as the guest sees it again.
pub fn request_to_wit(request: &ConnectorRequest) -> Result<wit::Request, String> {
    let method = match request.method.as_str() {
        "GET" => wit::Method::Get,
        "POST" => wit::Method::Post,
        "PUT" => wit::Method::Put,
        "PATCH" => wit::Method::Patch,
        "DELETE" => wit::Method::Delete,
        "HEAD" => wit::Method::Head,
        other => return Err(format!("unknown HTTP method `{other}`")),
    };
    Ok(wit::Request {
        method,
        url: request.url.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        authenticate: request.authenticate,
        idempotent: request.idempotent,
    })
}

/// What the guest asked for next.
pub fn next_from_wit(next: wit::Next) -> Next {
    match next {
        wit::Next::Fetch(request) => Next::Fetch(request_from_wit(request)),
        wit::Next::BackOff(back_off) => Next::BackOff {
            wait_ms: back_off.wait_ms,
            request: request_from_wit(back_off.request),
        },
        wit::Next::Done => Next::Done,
    }
}

/// A page the guest produced.
pub fn page_from_wit(page: wit::Page) -> Page {
    Page {
        records: page.records,
        state: page.state,
        next: next_from_wit(page.next),
    }
}

/// A response handed to the guest. Takes it by value so the body is moved, not copied.
pub fn response_to_wit(response: HttpResponse) -> wit::Response {
    wit::Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
        url: response.url,
    }
}

/// The run context handed to the guest.
pub fn run_context_to_wit(context: &RunContext) -> wit::RunContext {
    wit::RunContext {
        run_id: context.run_id.clone(),
        started_at_ms: context.started_at_ms,
    }
}

/// An error value the guest returned.
pub fn guest_error_from_wit(error: wit::Error) -> GuestError {
    match error {
        wit::Error::InvalidConfig(message) => GuestError::InvalidConfig(message),
        wit::Error::UnexpectedResponse(message) => GuestError::UnexpectedResponse(message),
        wit::Error::ConnectorBug(message) => GuestError::ConnectorBug(message),
    }
}
