//! The HTTP transport: every byte a connector causes to be sent or received goes through here.
//!
//! One [`Transport`] per connection wraps one reqwest client and runs each [`HttpRequest`] through
//! the pipeline *egress policy → rate limit → credential → send with timeouts → capped body →
//! retry*, following redirects itself so that every hop is checked again.
//!
//! - [`EgressPolicy`]: scheme, host allow-lists ([`AllowedHosts`]: declared by the connector,
//!   narrowed by the operator), user info, and blocked address ranges, checked on IP literals
//!   and on the addresses names resolve to.
//! - Credentials ([`crate::secrets::Credential`]) are added by the host, only to requests that
//!   ask for them and only on the origin they were sent to, never on a redirect elsewhere.
//! - OAuth2 access tokens are fetched, cached and refreshed by [`oauth2::TokenSource`]; a `401`
//!   to a request that carried one makes the transport fetch a new token and send it once more.
//! - `[tls]` ([`TlsConfig`]) adds a client certificate for mutual TLS and extra trusted CAs.
//! - Every request put on the wire first waits for its host's rate limit
//!   ([`crate::rate_limit`]), and every response's rate-limit headers adapt it.
//! - Responses are read with a cap on decompressed bytes and handed back as data
//!   ([`HttpResponse`]); a non-2xx status is not an error here, the connector decides.
//!
//! This module must not touch wasmtime: the guest-facing adapter converts to and from these types.

mod allowed_hosts;
mod body;
pub mod oauth2;
mod policy;
mod resolver;
mod tls;
mod transport;

#[cfg(test)]
mod test_server;

use serde::Deserialize;
use url::Url;

use crate::rate_limit::{self, RateLimitConfig};
use crate::retry::{self, RetryConfig};

pub use allowed_hosts::AllowedHosts;
pub use policy::{BlockedClass, Denial, EgressPolicy, classify};
pub use tls::{ResolvedTls, TlsConfig};
pub use transport::{Transport, TransportStats};

/// Default for [`HttpSettings::connect_timeout_ms`]: a TCP and TLS handshake with a healthy API
/// takes well under a second; 10 s covers slow links and still fails fast enough to retry.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Default for [`HttpSettings::request_timeout_ms`]: two minutes for one attempt, body included.
/// That reads a full [`DEFAULT_MAX_RESPONSE_BYTES`] page at about 0.5 MB/s; a page that needs
/// longer is better split by the connector.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 120_000;

/// Default for [`HttpSettings::read_timeout_ms`]: a minute without a single byte, including the
/// wait for the response head. Report-style endpoints can think for tens of seconds before they
/// answer; a connection silent for longer is treated as dead.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 60_000;

/// Default for [`HttpSettings::pool_idle_timeout_ms`]: idle connections are closed after 30 s,
/// below the 60 s idle timeout common on servers and load balancers (AWS ALB, many nginx
/// setups), so the client does not reuse a connection the server is about to close.
pub const DEFAULT_POOL_IDLE_TIMEOUT_MS: u64 = 30_000;

/// Default for [`HttpSettings::max_response_bytes`]: 64 MiB after decompression. API pages are
/// rarely above a few MiB; the body is held in memory and then copied into the connector's
/// memory, so the cap keeps a hostile or broken upstream (or a compression bomb) from exhausting
/// either while leaving room for bulk-export pages.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Largest accepted [`HttpSettings::max_response_bytes`]: 1 GiB. Each body exists in host memory
/// and again in the guest's linear memory (at most 4 GiB for wasm32); beyond this, connectors
/// should page.
pub const MAX_MAX_RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;

/// Default for [`HttpSettings::max_redirects`]: APIs redirect once or twice (a moved endpoint,
/// a signed download URL); five covers that and stops loops quickly.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// Default for [`HttpSettings::user_agent`]: the product and its version, so API operators can
/// tell Sluice traffic apart.
pub const DEFAULT_USER_AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

const fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
const fn default_request_timeout_ms() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_MS
}
const fn default_read_timeout_ms() -> u64 {
    DEFAULT_READ_TIMEOUT_MS
}
const fn default_pool_idle_timeout_ms() -> u64 {
    DEFAULT_POOL_IDLE_TIMEOUT_MS
}
const fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}
const fn default_max_redirects() -> u32 {
    DEFAULT_MAX_REDIRECTS
}
fn default_user_agent() -> String {
    DEFAULT_USER_AGENT.to_owned()
}

/// The `[http]` table of a connection file. Every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Time allowed to open a connection (TCP and TLS), in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time allowed for one attempt from sending to the last body byte, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Longest silence between two reads from the connection, in milliseconds.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Idle pooled connections are closed after this many milliseconds.
    #[serde(default = "default_pool_idle_timeout_ms")]
    pub pool_idle_timeout_ms: u64,
    /// Largest response body accepted, after decompression, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// Redirects followed per request; `0` makes any redirect an error.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// `User-Agent` sent unless the connector sets its own.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// The `[http.retry]` table.
    #[serde(default)]
    pub retry: RetryConfig,
    /// The `[http.rate_limit]` table.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
            pool_idle_timeout_ms: DEFAULT_POOL_IDLE_TIMEOUT_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            user_agent: default_user_agent(),
            retry: RetryConfig::default(),
            rate_limit: RateLimitConfig::default(),
        }
    }
}

/// The `[network]` table of a connection file: the operator's egress settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Narrows the hosts the connector declares; absent means no narrowing, an empty list means
    /// no host at all. Patterns as in [`AllowedHosts`].
    pub allowed_hosts: Option<Vec<String>>,
    /// Allow loopback, private, link-local and similar ranges (cloud metadata stays refused).
    #[serde(default)]
    pub allow_private_networks: bool,
}

/// A request to send, as the connector described it (query pairs already applied to `url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Absolute `http` or `https` URL.
    pub url: Url,
    /// Headers from the connector; credential, `host`, `cookie` and framing headers are refused.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// Apply the connection's credential (on its bound origin only).
    pub authenticate: bool,
    /// Safe to repeat even if the method is not idempotent (e.g. a search `POST`).
    pub idempotent: bool,
}

/// A response, as data for the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers with lowercase names; any header echoing the credential is removed. Values that
    /// are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// Body, decompressed.
    pub body: Vec<u8>,
    /// The URL that answered, after redirects, without the credential's query parameter.
    pub url: String,
}

impl HttpResponse {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What is wrong with a connector's request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestProblem {
    /// A header the host owns.
    ReservedHeader {
        /// Its name, lowercase.
        name: String,
    },
    /// A header name that is not a valid HTTP token.
    InvalidHeaderName {
        /// The name.
        name: String,
    },
    /// A header value with a control character (CR, LF, NUL, ...).
    InvalidHeaderValue {
        /// The header's name.
        name: String,
    },
    /// The query parameter that carries the credential.
    ReservedQuery {
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for RequestProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReservedHeader { name } => write!(
                f,
                "header `{name}` is set by the host; a connector may not set it"
            ),
            Self::InvalidHeaderName { name } => {
                write!(f, "header name {name:?} is not a valid HTTP header name")
            }
            Self::InvalidHeaderValue { name } => write!(
                f,
                "the value of header `{name}` contains a control character (such as CR or LF) \
                 or an invalid byte"
            ),
            Self::ReservedQuery { name } => write!(
                f,
                "query parameter `{name}` carries the credential and is set by the host; a \
                 connector may not set it"
            ),
        }
    }
}

/// Why a request failed. [`is_retryable`](Self::is_retryable) says whether another attempt may
/// succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The egress policy refused the request or a redirect hop.
    #[error("request to `{url}` denied: {reason}")]
    Denied {
        /// The URL, without query.
        url: String,
        /// Why.
        reason: Denial,
    },
    /// The connector's request is malformed or sets something the host owns.
    #[error("invalid request to `{url}`: {problem}")]
    InvalidRequest {
        /// The URL, without query.
        url: String,
        /// What is wrong.
        problem: RequestProblem,
    },
    /// No credential could be put on the request (an OAuth2 token could not be had).
    #[error(transparent)]
    Auth(#[from] oauth2::Error),
    /// A `[tls]` setting cannot be used.
    #[error("invalid `{setting}` = {value} in [tls]: {reason}")]
    InvalidTls {
        /// The setting.
        setting: &'static str,
        /// Where it points (a path or a secret's origin; never key material).
        value: String,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
    /// An allowed-host pattern cannot be parsed.
    #[error("invalid allowed host `{pattern}`: {reason}")]
    InvalidAllowedHost {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An `[http]` setting cannot work.
    #[error("invalid `{setting}` = {value} in [http]: {reason}")]
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An `[http.retry]` setting cannot work.
    #[error(transparent)]
    InvalidRetry(#[from] retry::InvalidConfig),
    /// An `[http.rate_limit]` setting cannot work.
    #[error(transparent)]
    InvalidRateLimit(#[from] rate_limit::InvalidConfig),
    /// A rate limit would hold the request longer than `max_wait_ms`. Nothing was sent.
    #[error(transparent)]
    RateLimitWait(#[from] rate_limit::WaitTooLong),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client")]
    Client {
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// No connection could be opened (DNS failure, refused, connect timeout). Nothing was sent.
    #[error("cannot connect to `{url}`")]
    Connect {
        /// The URL, without query.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server did not answer in time.
    #[error(
        "request to `{url}` timed out (limits: `read_timeout_ms` and `request_timeout_ms` in [http])"
    )]
    Timeout {
        /// The URL, without query.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection failed after the request may have been sent (reset, closed early).
    #[error("request to `{url}` failed")]
    Send {
        /// The URL, without query.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The body is larger than `max_response_bytes`.
    #[error(
        "response from `{url}` is larger than {limit_bytes} bytes; raise `max_response_bytes` in \
         [http] if this is expected"
    )]
    TooLarge {
        /// The URL, without query.
        url: String,
        /// The cap.
        limit_bytes: u64,
    },
    /// The body ended before it was complete.
    #[error("response body from `{url}` was cut off after {received_bytes} bytes")]
    Incomplete {
        /// The URL, without query.
        url: String,
        /// Bytes received before the cut.
        received_bytes: u64,
        /// reqwest's error, if one was reported.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The body could not be decompressed.
    #[error("cannot decode the response body from `{url}`")]
    Decode {
        /// The URL, without query.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// More redirects than `max_redirects`.
    #[error(
        "too many redirects from `{url}` (more than {limit}); raise `max_redirects` in [http] if \
         this is expected"
    )]
    TooManyRedirects {
        /// The original URL, without query.
        url: String,
        /// The limit.
        limit: u32,
    },
    /// A redirect whose `Location` is not a URL.
    #[error("redirect from `{url}` has an invalid location {location:?}")]
    InvalidRedirect {
        /// The redirecting URL, without query.
        url: String,
        /// The `Location` header, lossily decoded.
        location: String,
    },
}

impl Error {
    /// Whether another attempt may succeed: connect failures, timeouts, broken connections and
    /// cut-off bodies.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout { .. }
                | Self::Send { .. }
                | Self::Incomplete { .. }
        )
    }

    /// Whether the request certainly never reached the server, so that even a non-idempotent
    /// request may be sent again.
    pub fn is_unsent(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The key under which a retry after this error is counted in
    /// [`TransportStats::retries_by_cause`]: `connect`, `timeout`, `connection_lost` (reset or
    /// closed before a response), `incomplete_body`, or [`kind`](Self::kind) for the others.
    pub fn retry_cause(&self) -> &'static str {
        match self {
            Self::Send { .. } => "connection_lost",
            Self::Incomplete { .. } => "incomplete_body",
            other => other.kind(),
        }
    }

    /// A stable key for logs and metrics (`"error.type"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Denied { .. } => "denied",
            Self::Auth(error) => error.kind(),
            Self::InvalidRequest { .. } => "invalid_request",
            Self::InvalidAllowedHost { .. }
            | Self::InvalidTls { .. }
            | Self::InvalidSetting { .. }
            | Self::InvalidRetry(_)
            | Self::InvalidRateLimit(_) => "invalid_config",
            Self::RateLimitWait(_) => "rate_limit_wait",
            Self::Client { .. } => "client",
            Self::Connect { .. } => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Send { .. } => "send",
            Self::TooLarge { .. } => "too_large",
            Self::Incomplete { .. } => "incomplete",
            Self::Decode { .. } => "decode",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::InvalidRedirect { .. } => "invalid_redirect",
        }
    }
}

/// A URL as shown in errors and logs: scheme, host, port and path, without user info, query or
/// fragment (they may carry secrets or be long).
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_match_constants() {
        let parsed: HttpSettings = toml::from_str("").unwrap();
        assert_eq!(parsed, HttpSettings::default());
        assert_eq!(parsed.max_response_bytes, 64 * 1024 * 1024);
        assert_eq!(parsed.pool_idle_timeout_ms, 30_000);
        assert!(parsed.user_agent.starts_with("sluice/"));
        let parsed: HttpSettings =
            toml::from_str("max_redirects = 2\n[retry]\nmax_attempts = 1").unwrap();
        assert_eq!(parsed.max_redirects, 2);
        assert_eq!(parsed.retry.max_attempts, 1);
        assert_eq!(parsed.retry.base_delay_ms, retry::DEFAULT_BASE_DELAY_MS);
    }

    #[test]
    fn settings_reject_unknown_fields() {
        let err = toml::from_str::<HttpSettings>("timeout_ms = 5").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `timeout_ms`"),
            "{err}"
        );
    }

    #[test]
    fn display_url_drops_secrets_and_query() {
        let url = Url::parse("https://u:p@api.example.com:8443/v1/items?api_key=s#frag").unwrap();
        assert_eq!(display_url(&url), "https://api.example.com:8443/v1/items");
        let url = Url::parse("http://[::1]/x").unwrap();
        assert_eq!(display_url(&url), "http://[::1]/x");
    }

    #[test]
    fn retryability() {
        let url = String::from("https://api.example.com/");
        assert!(
            Error::Incomplete {
                url: url.clone(),
                received_bytes: 3,
                source: None
            }
            .is_retryable()
        );
        assert!(
            !Error::TooLarge {
                url: url.clone(),
                limit_bytes: 1
            }
            .is_retryable()
        );
        assert!(
            !Error::Denied {
                url,
                reason: Denial::UserInfo
            }
            .is_retryable()
        );
    }
}
