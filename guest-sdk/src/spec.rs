//! What a connector tells the host about itself ([`Spec`]) and about what a config gives access
//! to ([`Catalog`]).

use serde_json::{Value, json};

/// Static description of a connector, returned by [`crate::Connector::spec`].
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// let spec = Spec::new("github", env!("CARGO_PKG_VERSION"), "GitHub issues")
///     .with_config_schema(json!({
///         "type": "object",
///         "required": ["repository"],
///         "properties": {"repository": {"type": "string"}}
///     }))
///     .with_rate_limit(RateLimit::per_hour(5000).with_burst(100))
///     .with_auth_scheme(AuthScheme::Bearer);
/// assert_eq!(spec.auth_schemes, vec![AuthScheme::Bearer]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Spec {
    /// Connector name (kebab-case).
    pub name: String,
    /// Connector version (semver).
    pub version: String,
    /// One-line description.
    pub description: String,
    /// JSON Schema of the connector's config.
    pub config_schema: Value,
    /// Suggested rate limit for the upstream API; the operator may override it.
    pub rate_limit: Option<RateLimit>,
    /// Auth schemes the connector knows how to use (the host applies them).
    pub auth_schemes: Vec<AuthScheme>,
}

impl Spec {
    /// A spec whose config schema accepts any object, with no rate limit and no auth scheme.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_schema: json!({"type": "object"}),
            rate_limit: None,
            auth_schemes: Vec::new(),
        }
    }

    /// Set the JSON Schema of the config.
    pub fn with_config_schema(mut self, schema: Value) -> Self {
        self.config_schema = schema;
        self
    }

    /// Suggest a rate limit.
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = Some(rate_limit);
        self
    }

    /// Add an auth scheme the connector supports.
    pub fn with_auth_scheme(mut self, scheme: AuthScheme) -> Self {
        if !self.auth_schemes.contains(&scheme) {
            self.auth_schemes.push(scheme);
        }
        self
    }
}

/// A rate the connector suggests for its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per period.
    pub requests: u32,
    /// Length of the period in seconds.
    pub per_seconds: u32,
    /// Requests that may be sent at once after an idle period.
    pub burst: u32,
}

impl RateLimit {
    /// `requests` per `per_seconds` seconds, with a burst of 1.
    pub fn new(requests: u32, per_seconds: u32) -> Self {
        Self {
            requests,
            per_seconds,
            burst: 1,
        }
    }

    /// `requests` per second, with a burst of 1.
    pub fn per_second(requests: u32) -> Self {
        Self::new(requests, 1)
    }

    /// `requests` per minute, with a burst of 1.
    pub fn per_minute(requests: u32) -> Self {
        Self::new(requests, 60)
    }

    /// `requests` per hour, with a burst of 1.
    pub fn per_hour(requests: u32) -> Self {
        Self::new(requests, 3600)
    }

    /// Allow `burst` requests at once after an idle period.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }
}

/// An authentication scheme; the host applies it, the connector only asks for it with
/// [`crate::Request::authenticated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// An API key in a header or query parameter.
    ApiKey,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// HTTP basic auth.
    Basic,
    /// OAuth2 client-credentials grant.
    Oauth2ClientCredentials,
    /// OAuth2 refresh-token grant.
    Oauth2RefreshToken,
}

/// How a stream can be synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// Every record every time.
    FullRefresh,
    /// Only records after the saved checkpoint.
    Incremental,
}

/// The hosts and streams available under a config, returned by
/// [`crate::Connector::discover`].
///
/// ```
/// use sluice_sdk::prelude::*;
///
/// # fn main() -> Result<()> {
/// let catalog = Catalog::new()
///     .with_allowed_host(sluice_sdk::url::allowed_host("https://api.github.com")?)
///     .with_stream(
///         StreamInfo::new("issues")
///             .with_primary_key("/id")
///             .with_cursor_field("/updated_at"),
///     );
/// assert_eq!(catalog.allowed_hosts, vec!["api.github.com"]);
/// assert_eq!(
///     catalog.streams[0].sync_modes,
///     vec![SyncMode::FullRefresh, SyncMode::Incremental]
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Catalog {
    /// Hosts the connector needs to reach: `host`, `host:port` or `*.suffix`.
    pub allowed_hosts: Vec<String>,
    /// The streams it can read.
    pub streams: Vec<StreamInfo>,
}

impl Catalog {
    /// An empty catalog: no host, no stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a host the connector needs (see [`crate::url::allowed_host`]).
    pub fn with_allowed_host(mut self, host: impl Into<String>) -> Self {
        let host = host.into();
        if !self.allowed_hosts.contains(&host) {
            self.allowed_hosts.push(host);
        }
        self
    }

    /// Add a stream.
    pub fn with_stream(mut self, stream: StreamInfo) -> Self {
        self.streams.push(stream);
        self
    }
}

/// One stream a connector can read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamInfo {
    /// Stream name, unique within the connector.
    pub name: String,
    /// JSON Schema of one record (`{}` when unknown).
    pub json_schema: Value,
    /// JSON pointers to the fields forming the primary key.
    pub primary_key: Vec<String>,
    /// JSON pointer to the field that orders records for incremental sync.
    pub cursor_field: Option<String>,
    /// Modes this stream supports.
    pub sync_modes: Vec<SyncMode>,
}

impl StreamInfo {
    /// A full-refresh stream with an unknown record schema and no primary key.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            json_schema: json!({}),
            primary_key: Vec::new(),
            cursor_field: None,
            sync_modes: vec![SyncMode::FullRefresh],
        }
    }

    /// Set the JSON Schema of one record.
    pub fn with_json_schema(mut self, schema: Value) -> Self {
        self.json_schema = schema;
        self
    }

    /// Add a JSON pointer to the primary key (call once per field of a composite key).
    pub fn with_primary_key(mut self, pointer: impl Into<String>) -> Self {
        self.primary_key.push(pointer.into());
        self
    }

    /// Set the cursor field (a JSON pointer) and declare incremental sync.
    pub fn with_cursor_field(mut self, pointer: impl Into<String>) -> Self {
        self.cursor_field = Some(pointer.into());
        if !self.sync_modes.contains(&SyncMode::Incremental) {
            self.sync_modes.push(SyncMode::Incremental);
        }
        self
    }
}
