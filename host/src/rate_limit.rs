//! Client-side rate limiting: a quota per upstream host, adapted to what the server says.
//!
//! One [`RateLimiter`] belongs to one connection's transport (it is injected, never global), so
//! its per-host state is already "per connection and upstream host". Before every request put on
//! the wire, the transport calls [`RateLimiter::acquire`] with the request's host; after every
//! response it calls [`RateLimiter::observe`] with what the server said ([`ServerSignal`]).
//!
//! - **Quota.** A GCRA limiter ([`governor`]) per host, from the operator's `[http.rate_limit]`
//!   table ([`RateLimitConfig`]), else the connector's hint, else none. When neither sets one, a
//!   host that advertises its policy (`RateLimit-Policy`) gets that policy as its quota.
//! - **Holds.** A server that says it has no requests left (`X-RateLimit-Remaining: 0`,
//!   `RateLimit: "default";r=0;t=30`, `RateLimit: limit=10, remaining=0, reset=30`) or that
//!   answers 429/503 with a `Retry-After` puts its host on hold: no request to that host is sent
//!   before the time it named.
//! - **Waits** are `tokio::time` sleeps on the host side (no guest is running during a send), so
//!   tests can use paused time. A wait longer than [`LONG_WAIT`] is logged at `info`; a wait
//!   longer than `max_wait_ms` is not waited out but fails with [`WaitTooLong`], naming the host.
//!
//! This module knows nothing about reqwest or wasm: headers come in as a lookup function.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use serde::Deserialize;
use tokio::time::Instant;

use crate::protocol::RateLimitHint;

/// Default for [`RateLimitConfig::per_seconds`]: `requests = 10` alone means ten per second.
pub const DEFAULT_PER_SECONDS: u32 = 1;

/// Default for [`RateLimitConfig::burst`]: one request at a time, evenly spaced, which is what an
/// upstream that counts per second or per minute tolerates best. Raise it for APIs that allow
/// bursts (GitHub's connector hints 5000 per hour with a burst of 100).
pub const DEFAULT_BURST: u32 = 1;

/// Default for [`RateLimitConfig::max_wait_ms`]: five minutes, the same as
/// [`crate::retry::DEFAULT_MAX_RETRY_AFTER_MS`]. A host whose limit resets later than that (an
/// exhausted hourly or daily quota) fails the request at once with a clear error instead of
/// parking the worker; the next run resumes from the checkpoint.
pub const DEFAULT_MAX_WAIT_MS: u64 = 300_000;

/// Waits longer than this are logged at `info` (with the host and the seconds), so that a sync
/// held by a rate limit is visibly waiting rather than silently hung.
pub const LONG_WAIT: Duration = Duration::from_secs(5);

/// Longest hold a server can impose, whatever it says: a year. It only keeps instants from
/// overflowing; any hold longer than `max_wait_ms` already fails the request.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `X-RateLimit-Reset` values from this number up are Unix times in seconds (2001-09-09 onwards);
/// below it, they are seconds from now. A delta of 31 years or an epoch before 2001 makes no
/// sense, so the two readings cannot be confused.
const EPOCH_SECONDS_FROM: f64 = 1e9;

/// `X-RateLimit-Reset` values from this number up are Unix times in milliseconds (some APIs send
/// those); as seconds they would be thousands of years away.
const EPOCH_MILLIS_FROM: f64 = 1e11;

const fn default_true() -> bool {
    true
}
const fn default_max_wait_ms() -> u64 {
    DEFAULT_MAX_WAIT_MS
}

/// The `[http.rate_limit]` table of a connection file. Every field is optional; without the
/// table, requests are limited only by the connector's hint (if it gives one) and by what the
/// servers say.
///
/// ```toml
/// [http.rate_limit]
/// requests = 10      # per `per_seconds`
/// per_seconds = 1    # 60 for per minute, 3600 for per hour
/// burst = 5
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per `per_seconds`, per upstream host. Setting it replaces the
    /// connector's hint entirely.
    pub requests: Option<u32>,
    /// Length of the period in seconds (default [`DEFAULT_PER_SECONDS`]); needs `requests`.
    pub per_seconds: Option<u32>,
    /// Requests that may go out at once after an idle period (default [`DEFAULT_BURST`]); needs
    /// `requests`.
    pub burst: Option<u32>,
    /// Apply the rate the connector suggests when `requests` is not set.
    #[serde(default = "default_true")]
    pub use_connector_hint: bool,
    /// Hold a host when it says it has no requests left or asks to retry later, and adopt its
    /// advertised `RateLimit-Policy` when no quota is set.
    #[serde(default = "default_true")]
    pub follow_server_headers: bool,
    /// Longest a request may wait for a rate limit, in milliseconds; a longer wait fails the
    /// request instead.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests: None,
            per_seconds: None,
            burst: None,
            use_connector_hint: true,
            follow_server_headers: true,
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
        }
    }
}

/// A `[http.rate_limit]` value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{setting}` = {value} in [http.rate_limit]: {reason}")]
pub struct InvalidConfig {
    /// The offending setting.
    pub setting: &'static str,
    /// Its value.
    pub value: u64,
    /// What is wrong with it and how to fix it.
    pub reason: &'static str,
}

/// A request could not be sent within `max_wait_ms` because of a rate limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the rate limit of `{host}` ({reason}) would hold this request for {wait_secs} s, longer \
     than `max_wait_ms` = {max_wait_ms} in [http.rate_limit]; the sync resumes from its \
     checkpoint on the next run, or raise `max_wait_ms` to wait it out"
)]
pub struct WaitTooLong {
    /// The upstream host (and port, if not the default).
    pub host: String,
    /// The wait that would have been needed, in whole seconds (rounded up).
    pub wait_secs: u64,
    /// The configured maximum.
    pub max_wait_ms: u64,
    /// What imposes the wait ([`HoldReason::as_str`] or `"quota"`).
    pub reason: &'static str,
}

/// A rate: `requests` per `per`, with `burst` allowed at once. Always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    requests: NonZeroU32,
    per_seconds: NonZeroU32,
    burst: NonZeroU32,
}

impl Rate {
    /// `requests` per `per_seconds` seconds with `burst`; `None` if any of them is zero.
    pub fn new(requests: u32, per_seconds: u32, burst: u32) -> Option<Self> {
        Some(Self {
            requests: NonZeroU32::new(requests)?,
            per_seconds: NonZeroU32::new(per_seconds)?,
            burst: NonZeroU32::new(burst)?,
        })
    }

    /// Requests per period.
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// The period, in seconds.
    pub fn per_seconds(&self) -> u32 {
        self.per_seconds.get()
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// The time one request "costs": `per_seconds / requests`, at least a nanosecond.
    pub fn interval(&self) -> Duration {
        let nanos = u64::from(self.per_seconds.get()) * 1_000_000_000 / u64::from(self.requests());
        Duration::from_nanos(nanos.max(1))
    }

    fn quota(&self) -> Quota {
        // `interval` is never zero, so `with_period` always succeeds; the fallback is unreachable.
        Quota::with_period(self.interval())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst)
    }

    /// Requests per second, for comparing rates.
    fn per_second(&self) -> f64 {
        f64::from(self.requests()) / f64::from(self.per_seconds())
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} per {} s (burst {})",
            self.requests, self.per_seconds, self.burst
        )
    }
}

impl RateLimitConfig {
    /// The operator's own quota: `requests` per `per_seconds` with `burst`, or `None` without
    /// `requests`. Fails on a zero, or on `per_seconds`/`burst` without `requests`.
    pub fn operator_rate(&self) -> Result<Option<Rate>, InvalidConfig> {
        if self.max_wait_ms == 0 {
            return Err(InvalidConfig {
                setting: "max_wait_ms",
                value: 0,
                reason: "it must be at least 1",
            });
        }
        let Some(requests) = self.requests else {
            for (setting, value) in [("per_seconds", self.per_seconds), ("burst", self.burst)] {
                if let Some(value) = value {
                    return Err(InvalidConfig {
                        setting,
                        value: u64::from(value),
                        reason: "it only applies together with `requests`; set `requests` too",
                    });
                }
            }
            return Ok(None);
        };
        let per_seconds = self.per_seconds.unwrap_or(DEFAULT_PER_SECONDS);
        let burst = self.burst.unwrap_or(DEFAULT_BURST);
        for (setting, value) in [
            ("requests", requests),
            ("per_seconds", per_seconds),
            ("burst", burst),
        ] {
            if value == 0 {
                return Err(InvalidConfig {
                    setting,
                    value: 0,
                    reason: "it must be at least 1 (to turn off the connector's suggested \
                             rate, set `use_connector_hint = false` and leave `requests` out)",
                });
            }
        }
        Ok(Rate::new(requests, per_seconds, burst))
    }

    /// The quota in force: the operator's ([`operator_rate`](Self::operator_rate)) if set, else
    /// the connector's `hint` (unless `use_connector_hint = false`), else none. An unusable hint
    /// (a zero in it) is ignored with a warning: it is the connector's suggestion, not the
    /// operator's setting.
    pub fn rate(&self, hint: Option<RateLimitHint>) -> Result<Option<Rate>, InvalidConfig> {
        if let Some(rate) = self.operator_rate()? {
            return Ok(Some(rate));
        }
        let Some(hint) = hint.filter(|_| self.use_connector_hint) else {
            return Ok(None);
        };
        let rate = Rate::new(hint.requests, hint.per_seconds, hint.burst);
        if rate.is_none() {
            tracing::warn!(
                requests = hint.requests,
                per_seconds = hint.per_seconds,
                burst = hint.burst,
                "Connector suggests an unusable rate limit (a zero); ignoring it."
            );
        }
        Ok(rate)
    }
}

/// Why a server put its host on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// A 429 or 503 with a usable `Retry-After`.
    RetryAfter,
    /// The server's rate-limit headers say no request is left until a reset.
    Exhausted,
}

impl HoldReason {
    /// A stable name for logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetryAfter => "retry_after",
            Self::Exhausted => "remaining_0",
        }
    }
}

/// What one response says about the server's rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerSignal {
    /// Send nothing more to this host for this long, and why.
    pub hold: Option<(Duration, HoldReason)>,
    /// The quota the server advertises (`RateLimit-Policy`), the strictest if several.
    pub policy: Option<Rate>,
}

impl ServerSignal {
    /// Reads the rate-limit facts of a response with `status` whose headers `header` looks up by
    /// lowercase name (first value), at wall-clock time `now` (for dates and Unix times).
    ///
    /// Understood:
    /// - `Retry-After` on 429 and 503, in seconds or as an HTTP date
    ///   ([`crate::retry::parse_retry_after`]);
    /// - `X-RateLimit-Remaining` / `X-Rate-Limit-Remaining` / `RateLimit-Remaining` with
    ///   `X-RateLimit-Reset` / `X-Rate-Limit-Reset` (seconds from now, or a Unix time in seconds
    ///   or milliseconds: see `EPOCH_SECONDS_FROM`), `X-RateLimit-Reset-After` or
    ///   `RateLimit-Reset` (seconds from now);
    /// - IETF `RateLimit`, both as `limit=10, remaining=0, reset=30` (drafts 05–06) and as
    ///   `"default";r=0;t=30` (draft 07 on), and `RateLimit-Policy` as `100;w=60` or
    ///   `"default";q=100;w=60`.
    ///
    /// A 429 with a known reset time but no remaining count holds until that reset. Garbage,
    /// negative values and times in the past are ignored.
    pub fn from_headers<'h>(
        status: u16,
        header: impl Fn(&str) -> Option<&'h str>,
        now: SystemTime,
    ) -> Self {
        let mut hold: Option<(Duration, HoldReason)> = None;
        let mut extend = |wait: Duration, reason: HoldReason| {
            if !wait.is_zero() && hold.is_none_or(|(current, _)| wait > current) {
                hold = Some((wait.min(MAX_SERVER_WAIT), reason));
            }
        };
        if matches!(status, 429 | 503)
            && let Some(wait) =
                header("retry-after").and_then(|value| crate::retry::parse_retry_after(value, now))
        {
            extend(wait, HoldReason::RetryAfter);
        }

        // Legacy and vendor headers.
        let remaining = [
            "x-ratelimit-remaining",
            "x-rate-limit-remaining",
            "ratelimit-remaining",
        ]
        .into_iter()
        .find_map(|name| header(name).and_then(parse_number));
        let reset = ["x-ratelimit-reset", "x-rate-limit-reset"]
            .into_iter()
            .find_map(|name| header(name).and_then(parse_number))
            .and_then(|value| reset_wait(value, now))
            .or_else(|| {
                ["x-ratelimit-reset-after", "ratelimit-reset"]
                    .into_iter()
                    .find_map(|name| header(name).and_then(parse_number))
                    .map(duration_from_secs)
            });
        if let Some(reset) = reset
            && (remaining.is_some_and(|left| left < 1.0) || remaining.is_none() && status == 429)
        {
            extend(reset, HoldReason::Exhausted);
        }

        // IETF `RateLimit`.
        if let Some(value) = header("ratelimit") {
            for (remaining, reset) in parse_ratelimit(value) {
                if let Some(reset) = reset
                    && (remaining.is_some_and(|left| left < 1.0)
                        || remaining.is_none() && status == 429)
                {
                    extend(duration_from_secs(reset), HoldReason::Exhausted);
                }
            }
        }

        let policy = header("ratelimit-policy").and_then(parse_policy);
        Self { hold, policy }
    }
}

/// A `governor` clock on `tokio::time`, so that paused-time tests drive the limiter too.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

/// A `tokio::time::Instant` as a `governor` reference point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.checked_sub(duration.into()).unwrap_or(self.0))
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type HostLimiter = Gcra<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

/// A rate budget one upstream host grants one credential, shared by every connection that
/// sends that credential there (in `sluice serve`, across tenants). It holds the host's quota
/// and the holds its server imposes (`Retry-After`, `X-RateLimit-*`), so a 429 seen by one
/// connection slows them all down instead of each finding out on its own.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    host: String,
    limiter: Arc<RateLimiter>,
}

impl SharedBudget {
    /// A budget of `rate` for requests to `host` (lowercase, without port), waiting at most
    /// `max_wait_ms` for it.
    pub fn new(host: &str, rate: Rate, max_wait_ms: u64) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            limiter: Arc::new(RateLimiter {
                quota: Some(rate),
                follow_server_headers: true,
                max_wait: Duration::from_millis(max_wait_ms),
                max_wait_ms,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The host this budget is for.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether a request to `host` draws on this budget.
    pub fn applies_to(&self, host: &str) -> bool {
        self.host.eq_ignore_ascii_case(host)
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

/// What the limiter knows about one upstream host.
#[derive(Debug, Default)]
struct HostState {
    /// The GCRA limiter of the quota in force for this host, if any.
    limiter: Option<Arc<HostLimiter>>,
    /// The server-advertised rate the limiter was built from, if it was.
    adopted: Option<Rate>,
    /// Nothing is sent to this host before this instant.
    hold: Option<(Instant, HoldReason)>,
}

/// Rate limits of one connection, per upstream host. See the module documentation.
#[derive(Debug)]
pub struct RateLimiter {
    quota: Option<Rate>,
    follow_server_headers: bool,
    max_wait: Duration,
    max_wait_ms: u64,
    hosts: Mutex<HashMap<String, HostState>>,
}

impl RateLimiter {
    /// A limiter from the operator's `config` and the connector's `hint` (see
    /// [`RateLimitConfig::rate`] for which applies).
    pub fn new(
        config: &RateLimitConfig,
        hint: Option<RateLimitHint>,
    ) -> Result<Self, InvalidConfig> {
        let quota = config.rate(hint)?;
        Ok(Self {
            quota,
            follow_server_headers: config.follow_server_headers,
            max_wait: Duration::from_millis(config.max_wait_ms),
            max_wait_ms: config.max_wait_ms,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// The configured quota (operator's or connector's), applied to every host.
    pub fn quota(&self) -> Option<Rate> {
        self.quota
    }

    /// The quota in force for `host`: the configured one, else the one its server advertised.
    pub fn quota_for(&self, host: &str) -> Option<Rate> {
        self.quota
            .or_else(|| self.lock().get(host).and_then(|state| state.adopted))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HostState>> {
        // The map is never left half-updated: a panic elsewhere must not disable limiting.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `host`, created with the configured quota on first use.
    fn state<'m>(
        &self,
        hosts: &'m mut HashMap<String, HostState>,
        host: &str,
    ) -> &'m mut HostState {
        hosts.entry(host.to_owned()).or_insert_with(|| HostState {
            limiter: self
                .quota
                .map(|rate| Arc::new(HostLimiter::direct_with_clock(rate.quota(), TokioClock))),
            ..HostState::default()
        })
    }

    /// Waits until a request to `host` may be sent: past any hold the server imposed, then for a
    /// cell of the host's quota (which it takes). Returns how long it waited. Fails without
    /// waiting when the wait would exceed `max_wait_ms`.
    pub async fn acquire(&self, host: &str) -> Result<Duration, WaitTooLong> {
        self.acquire_with(host, &|_, _| {}).await
    }

    /// [`acquire`](Self::acquire), telling `on_wait` of each wait before it starts: how long,
    /// and why (`retry_after`, `remaining_0` or `quota`).
    pub async fn acquire_with(
        &self,
        host: &str,
        on_wait: &(dyn Fn(Duration, &'static str) + Send + Sync),
    ) -> Result<Duration, WaitTooLong> {
        let started = Instant::now();
        let mut announced = false;
        let mut waited = false;
        // Each round either returns or sleeps until the obstacle it saw is gone; a new hold can
        // only come from a response, so at most a few rounds ever run.
        loop {
            let (hold, limiter) = {
                let mut hosts = self.lock();
                let state = self.state(&mut hosts, host);
                (state.hold, state.limiter.clone())
            };
            let now = Instant::now();
            let (wait, reason) = match hold {
                Some((until, reason)) if until > now => (until - now, reason.as_str()),
                _ => match limiter.as_deref().map(HostLimiter::check) {
                    None | Some(Ok(())) => {
                        return Ok(if waited {
                            started.elapsed()
                        } else {
                            Duration::ZERO
                        });
                    }
                    Some(Err(not_until)) => (not_until.wait_time_from(TokioClock.now()), "quota"),
                },
            };
            let total = started.elapsed() + wait;
            if total > self.max_wait {
                return Err(WaitTooLong {
                    host: host.to_owned(),
                    wait_secs: total.as_secs() + u64::from(total.subsec_nanos() > 0),
                    max_wait_ms: self.max_wait_ms,
                    reason,
                });
            }
            if !announced && wait > LONG_WAIT {
                announced = true;
                tracing::info!(
                    host,
                    wait_secs = wait.as_secs(),
                    reason,
                    "Waiting for the upstream host's rate limit."
                );
            } else {
                tracing::debug!(
                    host,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    reason,
                    "Waiting for the rate limit."
                );
            }
            on_wait(wait, reason);
            tokio::time::sleep(wait).await;
            waited = true;
        }
    }

    /// Takes in what a response from `host` said: a hold is extended (never shortened), and an
    /// advertised policy becomes the host's quota when no quota is configured. Does nothing when
    /// `follow_server_headers = false`.
    pub fn observe(&self, host: &str, signal: ServerSignal) {
        if !self.follow_server_headers {
            return;
        }
        let mut hosts = self.lock();
        let state = self.state(&mut hosts, host);
        if let Some((wait, reason)) = signal.hold {
            let until = Instant::now() + wait;
            if state.hold.is_none_or(|(current, _)| until > current) {
                state.hold = Some((until, reason));
                tracing::debug!(
                    host,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    reason = reason.as_str(),
                    "Upstream host put on hold by its rate limit."
                );
            }
        }
        if self.quota.is_none()
            && let Some(policy) = signal.policy
            && state.adopted != Some(policy)
        {
            tracing::info!(host, policy = %policy, "Following the rate limit the upstream host advertises.");
            state.adopted = Some(policy);
            state.limiter = Some(Arc::new(HostLimiter::direct_with_clock(
                policy.quota(),
                TokioClock,
            )));
        }
    }
}

/// A non-negative decimal number (`12`, `1.5`); `None` for anything else.
fn parse_number(value: &str) -> Option<f64> {
    let value = value.trim();
    let valid = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|&b| b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    valid.then(|| value.parse::<f64>().ok()).flatten()
}

fn duration_from_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_SERVER_WAIT)
        .min(MAX_SERVER_WAIT)
}

/// The wait until an `X-RateLimit-Reset` value: a Unix time (seconds or milliseconds, told apart
/// by size) or seconds from now. `None` for a time in the past.
fn reset_wait(value: f64, now: SystemTime) -> Option<Duration> {
    let epoch_secs = if value >= EPOCH_MILLIS_FROM {
        value / 1000.0
    } else if value >= EPOCH_SECONDS_FROM {
        value
    } else {
        return Some(duration_from_secs(value));
    };
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    (epoch_secs > now_secs).then(|| duration_from_secs(epoch_secs - now_secs))
}

/// Splits a structured-field list or dictionary at top-level `sep`, respecting quoted strings.
fn split_top_level(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// One member of a structured list or dictionary: its bare item (or `key=value` for dictionary
/// members) and its parameters.
struct Member<'a> {
    key: Option<&'a str>,
    item: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn members(value: &str) -> impl Iterator<Item = Member<'_>> {
    split_top_level(value, ',').into_iter().map(|member| {
        let mut parts = split_top_level(member, ';').into_iter().map(str::trim);
        let head = parts.next().unwrap_or_default();
        let (key, item) = match head.split_once('=') {
            Some((key, item)) if !head.starts_with('"') => (Some(key.trim()), item.trim()),
            _ => (None, head),
        };
        let params = parts
            .filter_map(|param| param.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        Member { key, item, params }
    })
}

fn param<'a>(member: &Member<'a>, name: &str) -> Option<&'a str> {
    member
        .params
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// `(remaining, reset seconds)` per policy in an IETF `RateLimit` header, in either form.
fn parse_ratelimit(value: &str) -> Vec<(Option<f64>, Option<f64>)> {
    let members: Vec<_> = members(value).collect();
    if members.iter().any(|member| member.key.is_some()) {
        // Dictionary form: `limit=10, remaining=0, reset=30`.
        let field = |name: &str| {
            members
                .iter()
                .find(|member| member.key.is_some_and(|key| key.eq_ignore_ascii_case(name)))
                .and_then(|member| parse_number(member.item))
        };
        return vec![(field("remaining"), field("reset"))];
    }
    // List form: `"default";r=0;t=30, "daily";r=100;t=3600`.
    members
        .iter()
        .map(|member| {
            (
                param(member, "r").and_then(parse_number),
                param(member, "t").and_then(parse_number),
            )
        })
        .collect()
}

/// The strictest rate in a `RateLimit-Policy` header (`100;w=60` or `"default";q=100;w=60`):
/// the lowest requests per second, with the smallest quota as its burst so that no policy is
/// exceeded by a burst.
fn parse_policy(value: &str) -> Option<Rate> {
    let mut strictest: Option<Rate> = None;
    let mut smallest_quota = u32::MAX;
    for member in members(value) {
        let quota = param(&member, "q").or(Some(member.item).filter(|_| member.key.is_none()));
        let (Some(quota), Some(window)) = (
            quota.and_then(parse_whole),
            param(&member, "w").and_then(parse_whole),
        ) else {
            continue;
        };
        let Some(rate) = Rate::new(quota, window, quota) else {
            continue;
        };
        smallest_quota = smallest_quota.min(quota);
        if strictest.is_none_or(|current| rate.per_second() < current.per_second()) {
            strictest = Some(rate);
        }
    }
    let strictest = strictest?;
    Rate::new(
        strictest.requests(),
        strictest.per_seconds(),
        smallest_quota,
    )
}

fn parse_whole(value: &str) -> Option<u32> {
    let value = value.trim();
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests;
