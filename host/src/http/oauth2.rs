//! OAuth2 access tokens obtained by the host: the client-credentials and refresh-token grants.
//!
//! A [`TokenSource`] caches one access token per credential until shortly before it expires
//! ([`expiry_skew`]), fetches a new one with a single request in flight however many requests
//! need it (the state sits behind a `tokio::sync::Mutex` held across the fetch), and drops the
//! cached token when the API answers `401` with it so that the next request gets a fresh one.
//!
//! The token endpoint is reached with the connection's HTTP client (so private and metadata
//! addresses stay refused unless `allow_private_networks`) under a policy that allows the token
//! endpoint's host and nothing else; that host is not added to what the connector may reach.
//! Failures to reach it are retried with capped exponential backoff, a bounded number of times.
//! `invalid_grant` is final: the source remembers it and never asks again.
//!
//! A refresh token the endpoint rotates is saved in the state directory's credentials tree
//! (see [`crate::checkpoint::CredentialSlot`]) before the new access token is used, so a
//! process killed right after a refresh restarts with the token the server now expects.
//!
//! No token value is ever formatted: errors name the token endpoint (without its query) and
//! the OAuth2 error code only.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderValue};
use serde::Deserialize;
use sha2::Digest as _;
use url::Url;

use super::{AllowedHosts, EgressPolicy, body, display_url};
use crate::checkpoint::{CredentialSlot, StoredRefreshToken};
use crate::secrets::Secret;

/// The most a token is refreshed ahead of its expiry: a request sent with a token about to
/// expire may arrive after it did, and clocks drift.
pub const MAX_EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// Attempts at the token endpoint per fetch: a flaky endpoint gets a few tries, a dead one
/// fails the sync within seconds instead of holding it.
pub const TOKEN_MAX_ATTEMPTS: u32 = 4;

/// Backoff before the second attempt; doubled for each further one.
const TOKEN_BASE_DELAY: Duration = Duration::from_millis(200);

/// Cap of one backoff pause.
const TOKEN_MAX_DELAY: Duration = Duration::from_secs(5);

/// A token response is a small JSON object; anything larger is refused.
const MAX_TOKEN_RESPONSE_BYTES: u64 = 64 * 1024;

/// Longest OAuth2 `error` code repeated in an error message; codes are short ASCII words.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// How long before its expiry a token lifetime of `lifetime` is refreshed: a quarter of the
/// lifetime, at most [`MAX_EXPIRY_SKEW`], so that short-lived tokens are still used.
pub fn expiry_skew(lifetime: Duration) -> Duration {
    (lifetime / 4).min(MAX_EXPIRY_SKEW)
}

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token endpoint answered `invalid_grant` to the refresh token: it was revoked, has
    /// expired, or was already used. Only a new authorisation helps.
    #[error(
        "the token endpoint `{token_url}` answered `invalid_grant`: the refresh token was \
         revoked, expired or already used; re-authorisation is needed: authorise the connection \
         again and put the new refresh token in `[auth] refresh_token`"
    )]
    InvalidGrant {
        /// The token endpoint, without query.
        token_url: String,
    },
    /// The token endpoint refused the request for a reason retrying cannot fix.
    #[error(
        "the token endpoint `{token_url}` refused the token request with HTTP {status}{}; check \
         `client_id`, `client_secret`, `scopes` and `token_url` in [auth]",
        code.as_deref().map(|c| format!(" (`{c}`)")).unwrap_or_default()
    )]
    Refused {
        /// The token endpoint, without query.
        token_url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth2 `error` code, if the response had a short printable one.
        code: Option<String>,
    },
    /// The token endpoint kept failing (unreachable, timing out, or 5xx/429).
    #[error(
        "the token endpoint `{token_url}` failed {attempts} times, last with {last}; check that \
         it is reachable, or try again later"
    )]
    Unavailable {
        /// The token endpoint, without query.
        token_url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure, e.g. `HTTP 503` or `a timeout`.
        last: String,
    },
    /// The token endpoint's answer is not a usable token response.
    #[error("the token endpoint `{token_url}` sent an unusable token response: {problem}")]
    BadResponse {
        /// The token endpoint, without query.
        token_url: String,
        /// What is wrong (never the body itself).
        problem: &'static str,
    },
    /// The egress policy refused the token endpoint.
    #[error("the token endpoint cannot be reached: {0}")]
    Denied(Box<super::Error>),
    /// A rotated refresh token could not be saved; the sync stops rather than lose it.
    #[error(
        "cannot save the rotated refresh token in the state directory ({detail}); the sync \
         stops so that the new token is not lost: check that the state directory is writable"
    )]
    Store {
        /// What failed.
        detail: String,
    },
}

impl Error {
    /// A stable key for logs and metrics: `reauthorization_required` for `invalid_grant`,
    /// otherwise `token_endpoint`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidGrant { .. } => "reauthorization_required",
            Self::Store { .. } => "credential_store",
            Self::Denied(_) => "denied",
            Self::Refused { .. } | Self::Unavailable { .. } | Self::BadResponse { .. } => {
                "token_endpoint"
            }
        }
    }
}

/// Which OAuth2 grant a [`TokenSource`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `grant_type=client_credentials`.
    ClientCredentials,
    /// `grant_type=refresh_token`.
    RefreshToken,
}

/// The resolved settings of a [`TokenSource`].
pub struct TokenSourceConfig {
    /// The grant.
    pub grant: Grant,
    /// The token endpoint.
    pub token_url: Url,
    /// `client_id`.
    pub client_id: Secret,
    /// `client_secret`, if the client has one.
    pub client_secret: Option<Secret>,
    /// Scopes, sent space-separated as `scope` when not empty.
    pub scopes: Vec<String>,
    /// The configured refresh token (refresh-token grant only).
    pub refresh_token: Option<Secret>,
    /// Whether the token endpoint may be on a private network.
    pub allow_private_networks: bool,
    /// Where rotated refresh tokens are saved; `None` keeps them in memory only.
    pub store: Option<CredentialSlot>,
}

/// An access token to put on a request, and the generation it belongs to (for
/// [`TokenSource::rejected`]).
#[derive(Clone)]
pub struct AccessToken {
    /// `Bearer <token>`, marked sensitive.
    pub header: HeaderValue,
    /// Increases with every fetched token.
    pub generation: u64,
}

struct Cached {
    header: HeaderValue,
    /// When to fetch a new one; `None` when the endpoint gave no lifetime (kept until a 401).
    refresh_at: Option<Instant>,
}

struct State {
    access: Option<Cached>,
    refresh_token: Option<Secret>,
    generation: u64,
    /// Set by `invalid_grant`: never ask again.
    revoked: bool,
}

/// The OAuth2 tokens of one credential. `Debug` shows the grant and endpoint only.
pub struct TokenSource {
    grant: Grant,
    token_url: Url,
    shown_url: String,
    client_id: Secret,
    client_secret: Option<Secret>,
    scopes: Vec<String>,
    policy: EgressPolicy,
    store: Option<CredentialSlot>,
    /// SHA-256 of the configured refresh token: a stored rotated token descends from it, and is
    /// ignored once the operator configures a different one.
    configured_sha256: Option<String>,
    state: tokio::sync::Mutex<State>,
    /// Values whose appearance in a response header gets it dropped.
    echo: StdMutex<Vec<Secret>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("grant", &self.grant)
            .field("token_url", &self.shown_url)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(value: &str) -> String {
    sha2::Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TokenSource {
    /// A source for `config`. A refresh token saved by an earlier run wins over the configured
    /// one, unless the configured one changed since (the operator re-authorised).
    pub fn new(config: TokenSourceConfig) -> Result<Self, crate::secrets::Error> {
        let invalid = |reason: String| crate::secrets::Error::InvalidAuth { reason };
        let url = &config.token_url;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(invalid(format!(
                "`token_url = \"{}\"` must be an https:// URL with a host",
                display_url(url)
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "`token_url` must not contain user info; use `client_id` and `client_secret`"
                    .to_owned(),
            ));
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let allowed = AllowedHosts::parse(&[host])
            .map_err(|error| invalid(format!("`token_url` has an unusable host: {error}")))?;
        let policy = EgressPolicy::new(allowed, None, config.allow_private_networks);
        let configured_sha256 = config
            .refresh_token
            .as_ref()
            .map(|t| sha256_hex(t.expose()));
        let mut refresh_token = config.refresh_token;
        if let (Some(store), Some(configured)) = (&config.store, &configured_sha256) {
            let stored = store.load().map_err(|error| {
                invalid(format!("cannot read the saved refresh token: {error}"))
            })?;
            if let Some(stored) = stored {
                if &stored.configured_sha256 == configured {
                    tracing::debug!("Using the rotated refresh token saved by an earlier run.");
                    refresh_token = Some(stored.refresh_token);
                } else {
                    tracing::info!(
                        "The configured refresh token changed since a rotated one was saved; using the configured one."
                    );
                }
            }
        }
        let mut echo: Vec<Secret> = config.client_secret.iter().cloned().collect();
        echo.extend(refresh_token.iter().cloned());
        Ok(Self {
            grant: config.grant,
            shown_url: display_url(&config.token_url),
            token_url: config.token_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            scopes: config.scopes,
            policy,
            store: config.store,
            configured_sha256,
            state: tokio::sync::Mutex::new(State {
                access: None,
                refresh_token,
                generation: 0,
                revoked: false,
            }),
            echo: StdMutex::new(echo),
            fetches: AtomicU64::new(0),
        })
    }

    /// The token endpoint, as shown in messages.
    pub fn token_url(&self) -> &str {
        &self.shown_url
    }

    /// Tokens fetched successfully so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// A valid access token: the cached one, or a new one fetched with `client` (one fetch at
    /// a time; callers that wait for it get its result).
    pub async fn token(&self, client: &reqwest::Client) -> Result<AccessToken, Error> {
        let mut state = self.state.lock().await;
        if let Some(cached) = &state.access
            && cached.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(AccessToken {
                header: cached.header.clone(),
                generation: state.generation,
            });
        }
        self.fetch(client, &mut state).await?;
        match &state.access {
            Some(cached) => Ok(AccessToken {
                header: cached.header.clone(),
                generation: state.generation,
            }),
            None => Err(Error::BadResponse {
                token_url: self.shown_url.clone(),
                problem: "no access token",
            }),
        }
    }

    /// The API refused the token of `generation` (`401`): forget it, unless a newer one was
    /// fetched meanwhile, so that the next [`token`](Self::token) fetches exactly once.
    pub async fn rejected(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.access = None;
        }
    }

    /// Whether `bytes` contain a client secret, refresh token or access token of this source.
    pub fn appears_in(&self, bytes: &[u8]) -> bool {
        let echo = self.echo.lock().unwrap_or_else(|e| e.into_inner());
        echo.iter().any(|secret| {
            let needle = secret.expose().as_bytes();
            needle.len() >= 4 && bytes.windows(needle.len()).any(|window| window == needle)
        })
    }

    /// The client secret, refresh tokens and access tokens this source has held lately.
    pub fn secrets(&self) -> Vec<Secret> {
        self.echo.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remember_echo(&self, secret: &Secret) {
        let mut echo = self.echo.lock().unwrap_or_else(|e| e.into_inner());
        // The client secret and the latest few tokens: bounded however long the sync.
        if echo.len() > 8 {
            echo.remove(usize::from(self.client_secret.is_some()));
        }
        echo.push(secret.clone());
    }

    /// Fetches a new token into `state`, retrying transient failures with backoff.
    async fn fetch(&self, client: &reqwest::Client, state: &mut State) -> Result<(), Error> {
        if state.revoked {
            return Err(Error::InvalidGrant {
                token_url: self.shown_url.clone(),
            });
        }
        let form = self.form(state)?;
        let mut last = String::new();
        for attempt in 1..=TOKEN_MAX_ATTEMPTS {
            if attempt > 1 {
                let exp = TOKEN_BASE_DELAY.saturating_mul(1 << (attempt - 2).min(8));
                let wait = exp.min(TOKEN_MAX_DELAY);
                tracing::debug!(
                    attempt,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    last = %last,
                    "Retrying the OAuth2 token request."
                );
                tokio::time::sleep(wait).await;
            }
            match self.attempt(client, &form).await {
                Attempt::Token(response) => return self.accept(response, state).await,
                Attempt::Retry(why) => last = why,
                Attempt::Fail(error) => {
                    if matches!(error, Error::InvalidGrant { .. }) {
                        state.revoked = true;
                        state.access = None;
                    }
                    return Err(error);
                }
            }
        }
        Err(Error::Unavailable {
            token_url: self.shown_url.clone(),
            attempts: TOKEN_MAX_ATTEMPTS,
            last,
        })
    }

    fn form(&self, state: &State) -> Result<String, Error> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        match self.grant {
            Grant::ClientCredentials => {
                form.append_pair("grant_type", "client_credentials");
            }
            Grant::RefreshToken => {
                let Some(token) = &state.refresh_token else {
                    return Err(Error::InvalidGrant {
                        token_url: self.shown_url.clone(),
                    });
                };
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", token.expose());
            }
        }
        if !self.scopes.is_empty() {
            form.append_pair("scope", &self.scopes.join(" "));
        }
        form.append_pair("client_id", self.client_id.expose());
        if let Some(secret) = &self.client_secret {
            form.append_pair("client_secret", secret.expose());
        }
        Ok(form.finish())
    }

    async fn attempt(&self, client: &reqwest::Client, form: &str) -> Attempt {
        if let Err(error) = self.policy.check_url(&self.token_url) {
            return Attempt::Fail(Error::Denied(Box::new(error)));
        }
        let request = client
            .post(self.token_url.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(form.to_owned());
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => {
                let error = super::transport::send_error(source, self.shown_url.clone());
                return match error {
                    super::Error::Denied { .. } => Attempt::Fail(Error::Denied(Box::new(error))),
                    other => Attempt::Retry(format!("a `{}` failure", other.kind())),
                };
            }
        };
        let status = response.status().as_u16();
        let bytes =
            match body::read_capped(response, MAX_TOKEN_RESPONSE_BYTES, &self.shown_url).await {
                Ok(bytes) => bytes,
                Err(error) if error.is_retryable() => {
                    return Attempt::Retry(format!("a `{}` failure", error.kind()));
                }
                Err(_) => {
                    return Attempt::Fail(Error::BadResponse {
                        token_url: self.shown_url.clone(),
                        problem: "the body is too large or cannot be decoded",
                    });
                }
            };
        if (200..300).contains(&status) {
            return Attempt::Token(bytes);
        }
        if status == 429 || status >= 500 || status == 408 {
            return Attempt::Retry(format!("HTTP {status}"));
        }
        let code = serde_json::from_slice::<ErrorResponse>(&bytes)
            .ok()
            .map(|e| e.error)
            .filter(|code| {
                code.len() <= MAX_ERROR_CODE_CHARS
                    && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if code.as_deref() == Some("invalid_grant") && self.grant == Grant::RefreshToken {
            return Attempt::Fail(Error::InvalidGrant {
                token_url: self.shown_url.clone(),
            });
        }
        Attempt::Fail(Error::Refused {
            token_url: self.shown_url.clone(),
            status,
            code,
        })
    }

    /// Takes a successful token response: saves a rotated refresh token first, then caches the
    /// access token.
    async fn accept(&self, bytes: Vec<u8>, state: &mut State) -> Result<(), Error> {
        let bad = |problem| Error::BadResponse {
            token_url: self.shown_url.clone(),
            problem,
        };
        // The parse error is not kept: it could quote a token.
        let response: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|_| bad("expected a JSON object with a string `access_token`"))?;
        if let Some(kind) = &response.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(bad("`token_type` is not `Bearer`"));
        }
        if response.access_token.is_empty() {
            return Err(bad("`access_token` is empty"));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {}", response.access_token))
            .map_err(|_| bad("`access_token` cannot be sent in a header"))?;
        header.set_sensitive(true);
        let lifetime = match response.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        }
        .map(Duration::from_secs);
        if self.grant == Grant::RefreshToken
            && let Some(rotated) = response.refresh_token.filter(|t| !t.is_empty())
            && state
                .refresh_token
                .as_ref()
                .is_none_or(|t| t.expose() != rotated)
        {
            let rotated = Secret::new(rotated);
            self.remember_echo(&rotated);
            if let (Some(store), Some(configured)) = (&self.store, &self.configured_sha256) {
                store
                    .save(&StoredRefreshToken {
                        refresh_token: rotated.clone(),
                        configured_sha256: configured.clone(),
                    })
                    .await
                    .map_err(|error| Error::Store {
                        detail: error.to_string(),
                    })?;
            }
            tracing::debug!("The token endpoint rotated the refresh token; saved it.");
            state.refresh_token = Some(rotated);
        }
        self.remember_echo(&Secret::new(response.access_token));
        let now = Instant::now();
        state.access = Some(Cached {
            header,
            refresh_at: lifetime.map(|l| now + l.saturating_sub(expiry_skew(l))),
        });
        state.generation += 1;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            token_url = %self.shown_url,
            expires_in_secs = lifetime.map(|l| l.as_secs()),
            "Fetched an OAuth2 access token."
        );
        Ok(())
    }
}

enum Attempt {
    Token(Vec<u8>),
    Retry(String),
    Fail(Error),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_a_quarter_of_the_lifetime_capped() {
        assert_eq!(expiry_skew(Duration::from_secs(4)), Duration::from_secs(1));
        assert_eq!(expiry_skew(Duration::from_secs(3600)), MAX_EXPIRY_SKEW);
        assert_eq!(expiry_skew(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn invalid_grant_message_says_reauthorise() {
        let error = Error::InvalidGrant {
            token_url: "https://auth.example.com/token".to_owned(),
        };
        assert!(error.to_string().contains("re-authorisation is needed"));
        assert_eq!(error.kind(), "reauthorization_required");
    }
}
