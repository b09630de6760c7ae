//! [`Transport`]: one reqwest client per connection and the request pipeline around it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tracing::Instrument as _;
use url::Url;

use super::policy::{Denial, display_host};
use super::resolver::{PolicyResolver, ResolveDenied};
use super::{
    EgressPolicy, Error, HttpRequest, HttpResponse, HttpSettings, MAX_MAX_RESPONSE_BYTES,
    RequestProblem, ResolvedTls, body, display_url,
};
use crate::progress::{Event, SharedProgress, WaitReason};
use crate::protocol::RateLimitHint;
use crate::rate_limit::{LONG_WAIT, RateLimitConfig, RateLimiter, ServerSignal, SharedBudget};
use crate::retry::{self, AttemptReport, Classify, Outcome, RetryAction, RetryPolicy, RetryReason};
use crate::secrets::{Applied, Credential};

/// Headers a connector may not set: credentials and cookies are the host's, `host` must match the
/// URL the policy checked, and framing headers are for the HTTP stack alone.
const RESERVED_HEADERS: [&str; 12] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Counters of one [`Transport`] since it was created (the `http` object of a run summary).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TransportStats {
    /// HTTP requests put on the wire, every attempt and redirect hop included.
    pub requests_sent: u64,
    /// Requests sent again: attempts repeated after a retryable outcome, plus immediate
    /// re-sends after a stale pooled connection.
    pub retries: u64,
    /// [`retries`](Self::retries) by cause: `status_<code>` for a retryable status (`status_429`,
    /// `status_503`, ...), `connect`, `timeout`, `connection_lost`, `incomplete_body`, and
    /// `stale_connection` ([`Error::retry_cause`]).
    pub retries_by_cause: BTreeMap<String, u64>,
    /// `429 Too Many Requests` responses seen.
    pub rate_limited: u64,
    /// Milliseconds spent waiting in total: backoff between attempts plus rate-limit waits.
    pub waited_ms: u64,
    /// Requests that had to wait for a rate limit (a quota, or a host on hold).
    pub rate_limit_waits: u64,
    /// Milliseconds those requests waited.
    pub rate_limit_wait_ms: u64,
    /// Response body bytes received, after decompression.
    pub bytes_received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests_sent: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    waited_ms: AtomicU64,
    rate_limit_waits: AtomicU64,
    rate_limit_wait_ms: AtomicU64,
    bytes_received: AtomicU64,
    retries_by_cause: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn retried(&self, cause: &str) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let mut causes = self
            .retries_by_cause
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match causes.get_mut(cause) {
            Some(count) => *count += 1,
            None => {
                causes.insert(cause.to_owned(), 1);
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Sends a connection's requests: policy, credential, timeouts, capped bodies, redirects and
/// retries. Wraps one `reqwest::Client`, so connections to an upstream are pooled per connection
/// and never shared between tenants.
#[derive(Debug)]
pub struct Transport {
    client: reqwest::Client,
    policy: EgressPolicy,
    credential: Option<Credential>,
    retry: RetryPolicy,
    max_response_bytes: u64,
    max_redirects: u32,
    rate_limit_config: RateLimitConfig,
    rate_limit: RateLimiter,
    shared_budgets: Vec<SharedBudget>,
    counters: Counters,
    progress: Option<SharedProgress>,
}

impl Transport {
    /// Builds the transport of one connection.
    ///
    /// The client never uses a proxy from the environment, follows no redirect on its own
    /// (the transport does, re-checking each hop), resolves names through the egress policy,
    /// decompresses gzip, brotli, zstd and deflate, and keeps no cookies. Requests are rate
    /// limited per host by the operator's `[http.rate_limit]` only; see
    /// [`with_rate_limit_hint`](Self::with_rate_limit_hint) for the connector's suggestion. Fails
    /// when a setting cannot work (a zero timeout, a cap of zero or above
    /// [`MAX_MAX_RESPONSE_BYTES`], a `user_agent` that is not a valid header value, a zero rate)
    /// or TLS cannot be set up.
    pub fn new(
        settings: &HttpSettings,
        policy: EgressPolicy,
        credential: Option<Credential>,
    ) -> Result<Self, Error> {
        Self::with_tls(settings, policy, credential, ResolvedTls::default())
    }

    /// [`new`](Self::new) with a client certificate and extra trusted CAs from `[tls]`.
    pub fn with_tls(
        settings: &HttpSettings,
        policy: EgressPolicy,
        credential: Option<Credential>,
        tls: ResolvedTls,
    ) -> Result<Self, Error> {
        let millis = |setting: &'static str, value: u64| {
            if value == 0 {
                Err(Error::InvalidSetting {
                    setting,
                    value: value.to_string(),
                    reason: "it must be at least 1",
                })
            } else {
                Ok(Duration::from_millis(value))
            }
        };
        let connect_timeout = millis("connect_timeout_ms", settings.connect_timeout_ms)?;
        let request_timeout = millis("request_timeout_ms", settings.request_timeout_ms)?;
        let read_timeout = millis("read_timeout_ms", settings.read_timeout_ms)?;
        let pool_idle_timeout = millis("pool_idle_timeout_ms", settings.pool_idle_timeout_ms)?;
        if !(1..=MAX_MAX_RESPONSE_BYTES).contains(&settings.max_response_bytes) {
            return Err(Error::InvalidSetting {
                setting: "max_response_bytes",
                value: settings.max_response_bytes.to_string(),
                reason: "it must be from 1 to 1073741824 (1 GiB)",
            });
        }
        let user_agent =
            HeaderValue::from_str(&settings.user_agent).map_err(|_| Error::InvalidSetting {
                setting: "user_agent",
                value: format!("{:?}", settings.user_agent),
                reason: "it must be printable ASCII",
            })?;
        let retry = RetryPolicy::new(&settings.retry)?;
        let rate_limit = RateLimiter::new(&settings.rate_limit, None)?;
        let mut builder = reqwest::Client::builder();
        if let Some(identity) = tls.identity {
            builder = builder.identity(identity);
        }
        for root in tls.roots {
            builder = builder.add_root_certificate(root);
        }
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .referer(false)
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .read_timeout(read_timeout)
            .pool_idle_timeout(pool_idle_timeout)
            .user_agent(user_agent)
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private_networks: policy.allow_private_networks(),
            }))
            .gzip(true)
            .brotli(true)
            .zstd(true)
            .deflate(true)
            .build()
            .map_err(|source| Error::Client { source })?;
        Ok(Self {
            client,
            policy,
            credential,
            retry,
            max_response_bytes: settings.max_response_bytes,
            max_redirects: settings.max_redirects,
            rate_limit_config: settings.rate_limit.clone(),
            rate_limit,
            shared_budgets: Vec::new(),
            counters: Counters::default(),
            progress: None,
        })
    }

    /// Applies the rate the connector suggests in its spec, unless the operator set `requests`
    /// in `[http.rate_limit]` or turned hints off (`use_connector_hint = false`).
    pub fn with_rate_limit_hint(mut self, hint: Option<RateLimitHint>) -> Result<Self, Error> {
        self.rate_limit = RateLimiter::new(&self.rate_limit_config, hint)?;
        Ok(self)
    }

    /// Draws requests to each budget's host on that budget as well as on this connection's own
    /// limits (see [`SharedBudget`]).
    pub fn with_shared_budgets(mut self, budgets: Vec<SharedBudget>) -> Self {
        self.shared_budgets = budgets;
        self
    }

    /// Reports rate-limit waits and retries to `progress`.
    pub fn with_progress(mut self, progress: Option<SharedProgress>) -> Self {
        self.progress = progress;
        self
    }

    /// Tells the progress sink, if any, that requests to `host` wait `wait` for `reason`.
    fn report_wait(&self, host: &str, wait: Duration, reason: WaitReason<'_>) {
        if let Some(progress) = &self.progress {
            progress.event(&Event::Waiting {
                host: Some(host),
                reason,
                until: std::time::Instant::now() + wait,
            });
        }
    }

    /// The per-host rate limiter.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.rate_limit
    }

    /// The egress policy in force.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Sends `request`, following allowed redirects and retrying retryable failures.
    ///
    /// Any HTTP status comes back as an [`HttpResponse`], after the last attempt if it was
    /// retryable; only failures without a usable response are errors. Refused requests
    /// ([`Error::Denied`], [`Error::InvalidRequest`]) never reach the network.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let shown = display_url(&request.url);
        let headers = self.connector_headers(&request, &shown)?;
        if let Some(name) = self.credential.as_ref().and_then(Credential::query_name)
            && request.url.query_pairs().any(|(key, _)| key == name)
        {
            return Err(Error::InvalidRequest {
                url: shown,
                problem: RequestProblem::ReservedQuery {
                    name: name.to_owned(),
                },
            });
        }
        self.policy.check_url(&request.url)?;
        // The rate limit is waited for in `attempt`, before each request put on the wire: every
        // retry and redirect hop is a request too, and a 429 must hold the retry that follows.
        let idempotent = request.idempotent || request.method.is_idempotent();
        let host = display_host(&request.url);
        let span = tracing::debug_span!(
            "request",
            method = %request.method,
            host = %host,
            path = request.url.path(),
        );
        let target = Target {
            method: request.method.as_str(),
            host: &host,
            path: request.url.path(),
        };
        let (request, headers) = (&request, &headers);
        // Why the last attempt failed, for counting its retry by cause.
        let last_failure: Mutex<Option<&'static str>> = Mutex::new(None);
        let last_failure = &last_failure;
        self.retry
            .run(
                idempotent,
                |attempt| async move {
                    let result = self.attempt(request, headers, attempt).await;
                    let cause = result.as_ref().err().map(Error::retry_cause);
                    *last_failure.lock().unwrap_or_else(|e| e.into_inner()) = cause;
                    result
                },
                |report| {
                    let cause = *last_failure.lock().unwrap_or_else(|e| e.into_inner());
                    self.record(&target, report, cause);
                },
            )
            .instrument(span)
            .await
    }

    /// What the transport has done so far.
    pub fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let retries_by_cause = c
            .retries_by_cause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TransportStats {
            requests_sent: c.requests_sent.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            retries_by_cause,
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            waited_ms: c.waited_ms.load(Ordering::Relaxed),
            rate_limit_waits: c.rate_limit_waits.load(Ordering::Relaxed),
            rate_limit_wait_ms: c.rate_limit_wait_ms.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Validates the connector's headers: names and values must be valid, and none may be one
    /// the host owns.
    fn connector_headers(&self, request: &HttpRequest, shown: &str) -> Result<HeaderMap, Error> {
        let invalid = |problem| Error::InvalidRequest {
            url: shown.to_owned(),
            problem,
        };
        let credential_header = self.credential.as_ref().and_then(Credential::header_name);
        let mut headers = HeaderMap::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(RequestProblem::InvalidHeaderName { name: name.clone() }))?;
            if RESERVED_HEADERS.contains(&name.as_str()) || credential_header == Some(&name) {
                return Err(invalid(RequestProblem::ReservedHeader {
                    name: name.as_str().to_owned(),
                }));
            }
            let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
                invalid(RequestProblem::InvalidHeaderValue {
                    name: name.as_str().to_owned(),
                })
            })?;
            headers.append(name, value);
        }
        Ok(headers)
    }

    /// One attempt: the request and the redirects it leads to, up to a final response whose
    /// body is read.
    async fn attempt(
        &self,
        request: &HttpRequest,
        connector_headers: &HeaderMap,
        attempt: u32,
    ) -> Result<HttpResponse, Error> {
        let origin = request.url.origin();
        let mut url = request.url.clone();
        let mut method = request.method.clone();
        let mut body = request.body.clone();
        let mut headers = connector_headers.clone();
        let mut redirects = 0;
        let mut stale_resent = false;
        // Whether a `401` already made the credential fetch a new token for this request.
        let mut reauthorized = false;
        loop {
            let shown = display_url(&url);
            let host = display_host(&url);
            let on_wait = |wait: Duration, reason: &'static str| {
                let reason = match reason {
                    "quota" => WaitReason::Quota,
                    _ => WaitReason::RateLimited,
                };
                self.report_wait(&host, wait, reason);
            };
            let mut waited = self.rate_limit.acquire_with(&host, &on_wait).await?;
            for budget in self.shared_budgets.iter().filter(|b| b.applies_to(&host)) {
                waited += budget.limiter().acquire_with(&host, &on_wait).await?;
            }
            if !waited.is_zero() {
                let waited_ms = millis(waited);
                let c = &self.counters;
                c.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
                c.rate_limit_wait_ms.fetch_add(waited_ms, Ordering::Relaxed);
                c.waited_ms.fetch_add(waited_ms, Ordering::Relaxed);
            }
            let mut wire_url = url.clone();
            let mut wire_headers = headers.clone();
            let mut applied = None;
            if let Some(credential) = &self.credential
                && request.authenticate
                && url.origin() == origin
                && credential.is_bound_to(&url)
            {
                applied = Some(
                    credential
                        .apply(&self.client, &mut wire_url, &mut wire_headers)
                        .await?,
                );
            }
            let mut wire = reqwest::Request::new(method.clone(), wire_url);
            *wire.headers_mut() = wire_headers;
            *wire.body_mut() = body.clone().map(reqwest::Body::from);
            self.counters.requests_sent.fetch_add(1, Ordering::Relaxed);
            let response = match self.client.execute(wire).await {
                Ok(response) => response,
                Err(source)
                    if !stale_resent
                        && (request.idempotent || method.is_idempotent())
                        && is_stale_connection(&source) =>
                {
                    // The server closed a kept-alive connection as the request went out on it:
                    // send it once more at once, on a new connection, whatever `[http.retry]`
                    // says. Only for idempotent requests: the server may have seen this one.
                    stale_resent = true;
                    self.counters.retried("stale_connection");
                    tracing::debug!(
                        attempt,
                        method = %method,
                        host = %host,
                        path = url.path(),
                        error = %source,
                        "Connection closed before any response; sending again on a new connection."
                    );
                    continue;
                }
                Err(source) => {
                    let error = send_error(source, shown);
                    tracing::debug!(attempt, error = %error, "HTTP request failed.");
                    return Err(error);
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED
                && !reauthorized
                && let (Some(credential), Some(applied)) = (&self.credential, applied)
                && applied != Applied::Static
                && credential.rejected(applied).await
            {
                // The token was refused (revoked, or expired early): fetch a new one and send
                // the request once more with it.
                reauthorized = true;
                tracing::debug!(
                    attempt,
                    host = %host,
                    path = url.path(),
                    "Access token refused with 401; sending again with a new token."
                );
                continue;
            }
            let signal = ServerSignal::from_headers(
                status.as_u16(),
                |name| response.headers().get(name).and_then(|v| v.to_str().ok()),
                SystemTime::now(),
            );
            self.rate_limit.observe(&host, signal);
            for budget in self.shared_budgets.iter().filter(|b| b.applies_to(&host)) {
                budget.limiter().observe(&host, signal);
            }
            let location = response.headers().get(header::LOCATION);
            if let (true, Some(location)) = (is_followed_redirect(status), location) {
                if redirects == self.max_redirects {
                    return Err(Error::TooManyRedirects {
                        url: display_url(&request.url),
                        limit: self.max_redirects,
                    });
                }
                redirects += 1;
                let next = self.redirect_target(&url, location)?;
                if status == StatusCode::SEE_OTHER && method != Method::HEAD
                    || matches!(status.as_u16(), 301 | 302) && method == Method::POST
                {
                    method = Method::GET;
                    body = None;
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::CONTENT_ENCODING);
                }
                tracing::debug!(
                    attempt,
                    status = status.as_u16(),
                    location = %display_url(&next),
                    "Following redirect."
                );
                url = next;
                continue;
            }
            let response_headers = self.response_headers(response.headers());
            let mut body = body::read_capped(response, self.max_response_bytes, &shown).await?;
            if let Some(credential) = &self.credential
                && credential.redact(&mut body)
            {
                tracing::debug!(
                    host = %host,
                    path = url.path(),
                    "The response body echoed the credential; it was redacted before the connector saw it."
                );
            }
            self.counters
                .bytes_received
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            return Ok(HttpResponse {
                status: status.as_u16(),
                headers: response_headers,
                body,
                url: url.into(),
            });
        }
    }

    /// Resolves a `Location` against the current URL and checks it: no downgrade from https
    /// to http, and the egress policy. The credential's query parameter is removed, so a
    /// server echoing it cannot make the transport carry it to another origin.
    fn redirect_target(&self, current: &Url, location: &HeaderValue) -> Result<Url, Error> {
        let invalid = || Error::InvalidRedirect {
            url: display_url(current),
            location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
        };
        let location = location.to_str().map_err(|_| invalid())?;
        let mut next = current.join(location).map_err(|_| invalid())?;
        next.set_fragment(None);
        if let Some(name) = self.credential.as_ref().and_then(Credential::query_name) {
            remove_query_param(&mut next, name);
        }
        if current.scheme() == "https" && next.scheme() == "http" {
            return Err(Error::Denied {
                url: display_url(current),
                reason: Denial::Downgrade {
                    location: display_url(&next),
                },
            });
        }
        self.policy.check_url(&next)?;
        Ok(next)
    }

    /// Response headers for the connector: lowercase names, values lossily decoded, and any
    /// header that echoes the credential dropped.
    fn response_headers(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(_, value)| {
                self.credential
                    .as_ref()
                    .is_none_or(|credential| !credential.appears_in(value.as_bytes()))
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    /// Counts and logs one attempt and the decision after it: every attempt is one `debug`
    /// event with the method, host, path (never the query), status or error, attempt number
    /// and the wait before the next attempt.
    fn record(&self, target: &Target<'_>, report: &AttemptReport, failure: Option<&'static str>) {
        let status = match report.outcome {
            Outcome::Response { status, .. } => Some(status),
            Outcome::Failed { .. } => None,
        };
        if status == Some(429) {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let Target { method, host, path } = *target;
        match report.action {
            RetryAction::Retry { wait, reason } => {
                let wait_ms = millis(wait);
                let cause = match reason {
                    RetryReason::Status(code) | RetryReason::RetryAfter(code) => {
                        format!("status_{code}")
                    }
                    RetryReason::Failure => failure.unwrap_or("failure").to_owned(),
                };
                self.counters.retried(&cause);
                if let Some(progress) = &self.progress {
                    progress.event(&Event::Retry {
                        host,
                        cause: &cause,
                    });
                    self.report_wait(host, wait, WaitReason::Retry { cause: &cause });
                }
                self.counters
                    .waited_ms
                    .fetch_add(wait_ms, Ordering::Relaxed);
                if wait > LONG_WAIT {
                    tracing::info!(
                        host,
                        wait_secs = wait.as_secs(),
                        cause = %cause,
                        "Waiting before retrying a request to the upstream host."
                    );
                }
                tracing::debug!(
                    method,
                    host,
                    path,
                    attempt = report.attempt,
                    status,
                    error = failure,
                    wait_ms,
                    cause = %cause,
                    "HTTP attempt will be retried."
                );
            }
            RetryAction::Stop(reason) => tracing::debug!(
                method,
                host,
                path,
                attempt = report.attempt,
                status,
                error = failure,
                wait_ms = 0,
                reason = ?reason,
                "HTTP request finished."
            ),
        }
    }
}

/// What a request is, for its log events.
struct Target<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
}

impl Classify for Result<HttpResponse, Error> {
    fn outcome(&self) -> Outcome {
        match self {
            Ok(response) => Outcome::Response {
                status: response.status,
                retry_after: response
                    .header("retry-after")
                    .and_then(|value| retry::parse_retry_after(value, SystemTime::now())),
            },
            Err(error) => Outcome::Failed {
                retryable: error.is_retryable(),
                unsent: error.is_unsent(),
            },
        }
    }
}

/// Statuses whose `Location` the transport follows (300 and 304 are handed to the connector).
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Maps a reqwest error from sending into the transport's error, recognising the resolver's
/// policy refusals anywhere in the chain.
pub(super) fn send_error(source: reqwest::Error, url: String) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&source);
    while let Some(error) = cause {
        if let Some(denied) = error.downcast_ref::<ResolveDenied>() {
            return Error::Denied {
                url,
                reason: denied.denial.clone(),
            };
        }
        cause = error.source();
    }
    if source.is_connect() {
        Error::Connect { url, source }
    } else if source.is_timeout() {
        Error::Timeout { url, source }
    } else {
        Error::Send { url, source }
    }
}

/// Whether a send failed the way a stale pooled connection fails: the connection was closed or
/// reset after the request went out and before any response byte (hyper's "incomplete message",
/// or a reset or broken pipe), as opposed to a failure to connect or a timeout. A request that
/// never left (hyper found the pooled connection closed first) is re-sent by hyper itself.
fn is_stale_connection(error: &reqwest::Error) -> bool {
    if error.is_connect() || error.is_timeout() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(hyper) = current.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() {
                return true;
            }
        } else if let Some(io) = current.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Removes every query pair named `name`, leaving the rest as they were.
fn remove_query_param(url: &mut Url, name: &str) {
    if !url.query_pairs().any(|(key, _)| key == name) {
        return;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
}

#[cfg(test)]
mod tests;
