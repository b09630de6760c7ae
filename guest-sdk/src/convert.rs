//! Conversions between the SDK's types and the generated WIT types. Field-by-field and
//! nothing else; the decisions live in [`crate::adapter`].

use crate::bindings::sluice::connector::{log as wit_log, types as wit};
use crate::log::Level;
use crate::{
    AuthScheme, Catalog, Error, Method, Next, RateLimit, Request, Response, RunContext, Spec,
    StreamInfo, SyncMode,
};

impl From<Method> for wit::Method {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => Self::Get,
            Method::Post => Self::Post,
            Method::Put => Self::Put,
            Method::Patch => Self::Patch,
            Method::Delete => Self::Delete,
            Method::Head => Self::Head,
        }
    }
}

impl From<wit::Method> for Method {
    fn from(method: wit::Method) -> Self {
        match method {
            wit::Method::Get => Self::Get,
            wit::Method::Post => Self::Post,
            wit::Method::Put => Self::Put,
            wit::Method::Patch => Self::Patch,
            wit::Method::Delete => Self::Delete,
            wit::Method::Head => Self::Head,
        }
    }
}

impl From<Request> for wit::Request {
    fn from(request: Request) -> Self {
        Self {
            method: request.method.into(),
            url: request.url,
            query: request.query,
            headers: request.headers,
            body: request.body,
            authenticate: request.authenticate,
            idempotent: request.idempotent,
        }
    }
}

impl From<wit::Request> for Request {
    fn from(request: wit::Request) -> Self {
        Self {
            method: request.method.into(),
            url: request.url,
            query: request.query,
            headers: request.headers,
            body: request.body,
            authenticate: request.authenticate,
            idempotent: request.idempotent,
        }
    }
}

impl From<wit::Response> for Response {
    fn from(response: wit::Response) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
            url: response.url,
        }
    }
}

impl From<Response> for wit::Response {
    fn from(response: Response) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
            url: response.url,
        }
    }
}

impl From<wit::RunContext> for RunContext {
    fn from(context: wit::RunContext) -> Self {
        Self {
            run_id: context.run_id,
            started_at_ms: context.started_at_ms,
        }
    }
}

impl From<RunContext> for wit::RunContext {
    fn from(context: RunContext) -> Self {
        Self {
            run_id: context.run_id,
            started_at_ms: context.started_at_ms,
        }
    }
}

impl From<AuthScheme> for wit::AuthScheme {
    fn from(scheme: AuthScheme) -> Self {
        match scheme {
            AuthScheme::ApiKey => Self::ApiKey,
            AuthScheme::Bearer => Self::Bearer,
            AuthScheme::Basic => Self::Basic,
            AuthScheme::Oauth2ClientCredentials => Self::Oauth2ClientCredentials,
            AuthScheme::Oauth2RefreshToken => Self::Oauth2RefreshToken,
        }
    }
}

impl From<RateLimit> for wit::RateLimit {
    fn from(limit: RateLimit) -> Self {
        Self {
            requests: limit.requests,
            per_seconds: limit.per_seconds,
            burst: limit.burst,
        }
    }
}

impl From<Spec> for wit::Spec {
    fn from(spec: Spec) -> Self {
        Self {
            name: spec.name,
            version: spec.version,
            description: spec.description,
            config_schema: spec.config_schema.to_string(),
            rate_limit: spec.rate_limit.map(Into::into),
            auth_schemes: spec.auth_schemes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<SyncMode> for wit::SyncMode {
    fn from(mode: SyncMode) -> Self {
        match mode {
            SyncMode::FullRefresh => Self::FullRefresh,
            SyncMode::Incremental => Self::Incremental,
        }
    }
}

impl From<StreamInfo> for wit::StreamInfo {
    fn from(stream: StreamInfo) -> Self {
        Self {
            name: stream.name,
            json_schema: stream.json_schema.to_string(),
            primary_key: stream.primary_key,
            cursor_field: stream.cursor_field,
            sync_modes: stream.sync_modes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Catalog> for wit::Catalog {
    fn from(catalog: Catalog) -> Self {
        Self {
            allowed_hosts: catalog.allowed_hosts,
            streams: catalog.streams.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Next> for wit::Next {
    fn from(next: Next) -> Self {
        match next {
            Next::Fetch(request) => Self::Fetch(request.into()),
            Next::BackOff { wait_ms, request } => Self::BackOff(wit::BackOff {
                wait_ms,
                request: request.into(),
            }),
            Next::Done => Self::Done,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidConfig(message) => Self::InvalidConfig(message),
            Error::UnexpectedResponse(message) => Self::UnexpectedResponse(message),
            Error::ConnectorBug(message) => Self::ConnectorBug(message),
        }
    }
}

impl From<Level> for wit_log::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips() {
        let request = Request::post("https://h/x")
            .query("a", "1")
            .header("h", "v")
            .body("b")
            .authenticated()
            .idempotent();
        let wit: wit::Request = request.clone().into();
        assert_eq!(Request::from(wit), request);
    }

    #[test]
    fn spec_and_catalog_carry_json_as_text() {
        let spec: wit::Spec = Spec::new("n", "1.0.0", "d")
            .with_config_schema(json!({"type": "object"}))
            .with_rate_limit(RateLimit::per_hour(5000).with_burst(100))
            .with_auth_scheme(AuthScheme::Bearer)
            .into();
        assert_eq!(spec.config_schema, r#"{"type":"object"}"#);
        assert_eq!(
            spec.rate_limit
                .map(|r| (r.requests, r.per_seconds, r.burst)),
            Some((5000, 3600, 100))
        );
        assert!(matches!(spec.auth_schemes[..], [wit::AuthScheme::Bearer]));

        let catalog: wit::Catalog = Catalog::new()
            .with_allowed_host("h")
            .with_stream(StreamInfo::new("s").with_cursor_field("/t"))
            .into();
        assert_eq!(catalog.streams[0].json_schema, "{}");
        assert_eq!(catalog.streams[0].cursor_field.as_deref(), Some("/t"));
        assert_eq!(catalog.streams[0].sync_modes.len(), 2);
    }

    #[test]
    fn errors_keep_their_kind() {
        assert!(matches!(
            wit::Error::from(Error::unexpected_response("x")),
            wit::Error::UnexpectedResponse(m) if m == "x"
        ));
    }
}
