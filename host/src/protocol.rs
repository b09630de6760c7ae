//! Host-side mirror of the data types of `wit/connector.wit`.
//!
//! The generated bindings types are tied to wasmtime; these are plain, serialisable values that
//! the rest of the host (sync loop, checkpoints, CLI output) works with. `host_impl` converts
//! between the two. Nothing here is trusted: every value came from a guest.

use serde::{Deserialize, Serialize};

/// An HTTP request a connector asked the host to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Absolute URL as the guest wrote it.
    pub url: String,
    /// Query pairs to append to the URL.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Extra headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Optional body.
    #[serde(default)]
    pub body: Option<Vec<u8>>,
    /// Whether the connection's credential should be applied.
    #[serde(default)]
    pub authenticate: bool,
    /// Whether the request may be repeated even if its method is not idempotent.
    #[serde(default)]
    pub idempotent: bool,
}

/// What a connector wants to happen next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Send this request.
    Fetch(ConnectorRequest),
    /// Wait `wait_ms`, then send `request`.
    BackOff {
        /// Requested wait in milliseconds (the host clamps it).
        wait_ms: u64,
        /// The request to send afterwards.
        request: ConnectorRequest,
    },
    /// The stream is complete.
    Done,
}

impl Next {
    /// The request this step will send, if any.
    pub fn request(&self) -> Option<&ConnectorRequest> {
        match self {
            Next::Fetch(request) | Next::BackOff { request, .. } => Some(request),
            Next::Done => None,
        }
    }
}

/// One page a connector produced from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Records as JSON lines (validated by the sync loop before anything is written).
    pub records: String,
    /// New checkpoint state (JSON text), `None` to keep the previous one.
    pub state: Option<String>,
    /// What to do next.
    pub next: Next,
}

/// Facts about the run a connector may rely on instead of a clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    /// Unique id of the sync; kept when a crashed sync is resumed.
    pub run_id: String,
    /// Start of the sync in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

/// How a stream can be synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every record every time.
    FullRefresh,
    /// Only records after the saved checkpoint.
    Incremental,
}

/// One stream a connector can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Stream name.
    pub name: String,
    /// JSON Schema of one record.
    pub json_schema: serde_json::Value,
    /// JSON pointers forming the primary key.
    pub primary_key: Vec<String>,
    /// JSON pointer of the incremental cursor field.
    pub cursor_field: Option<String>,
    /// Supported sync modes.
    pub sync_modes: Vec<SyncMode>,
}

impl StreamInfo {
    /// Whether the stream can resume from a saved cursor.
    pub fn supports_incremental(&self) -> bool {
        self.sync_modes.contains(&SyncMode::Incremental)
    }
}

/// Hosts and streams a connector offers under one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Host patterns the connector needs to reach.
    pub allowed_hosts: Vec<String>,
    /// Its streams.
    pub streams: Vec<StreamInfo>,
}

/// A rate a connector suggests for its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitHint {
    /// Requests per period.
    pub requests: u32,
    /// Period in seconds.
    pub per_seconds: u32,
    /// Burst size.
    pub burst: u32,
}

/// Authentication schemes a connector can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// API key in a header or query parameter.
    ApiKey,
    /// Bearer token.
    Bearer,
    /// HTTP basic.
    Basic,
    /// OAuth2 client credentials grant.
    Oauth2ClientCredentials,
    /// OAuth2 refresh token grant.
    Oauth2RefreshToken,
}

/// Static description of a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Connector name.
    pub name: String,
    /// Connector version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// JSON Schema of the connector's config.
    pub config_schema: serde_json::Value,
    /// Suggested rate limit.
    pub rate_limit: Option<RateLimitHint>,
    /// Supported auth schemes.
    pub auth_schemes: Vec<AuthScheme>,
}

/// An error a connector returned (as opposed to a trap).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The config is wrong.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The API answered something the connector cannot interpret.
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    /// The connector is buggy.
    #[error("connector bug: {0}")]
    ConnectorBug(String),
}

/// The first 80 bytes of guest-supplied `text`, quoted and escaped, for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}", &text[..end])
}
