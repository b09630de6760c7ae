//! When and how long to wait before sending a request again.
//!
//! [`RetryPolicy`] is built from the `[http.retry]` table ([`RetryConfig`]). It decides, from the
//! [`Outcome`] of one attempt, whether to try again ([`RetryAction`]): capped exponential backoff
//! with full jitter, `Retry-After` honoured in both of its forms, and limits on attempts and on
//! the total time spent retrying. [`RetryPolicy::run`] drives an attempt function through that
//! loop, sleeping with `tokio::time::sleep`.
//!
//! This module knows nothing about reqwest or wasm: what counts as retryable for a transport error
//! is the error's own business ([`Classify`], implemented by the `http` module).

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::Deserialize;

/// Default for [`RetryConfig::max_attempts`]: the first try plus four retries. With the default
/// delays that spans roughly 0.5 + 1 + 2 + 4 s of backoff (before jitter), enough to ride out a
/// deploy or a short overload, yet a dead API is reported within seconds.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Default for [`RetryConfig::base_delay_ms`]: the cap of the first backoff. Half a second is long
/// enough for a restarted upstream to accept connections and short enough not to slow a sync
/// noticeably on a one-off blip.
pub const DEFAULT_BASE_DELAY_MS: u64 = 500;

/// Default for [`RetryConfig::max_delay_ms`]: no single backoff waits longer than 30 s, so a high
/// `max_attempts` does not turn into waits of many minutes between tries.
pub const DEFAULT_MAX_DELAY_MS: u64 = 30_000;

/// Default for [`RetryConfig::max_retry_time_ms`]: five minutes of retrying per request at most,
/// measured from the first attempt. Longer outages are better handled by the next scheduled run,
/// which resumes from the checkpoint.
pub const DEFAULT_MAX_RETRY_TIME_MS: u64 = 300_000;

/// Default for [`RetryConfig::max_retry_after_ms`]: a `Retry-After` longer than five minutes is
/// cut to five minutes. APIs that ask for an hour (daily quotas) would otherwise park a worker;
/// the retry after the shortened wait fails fast and the run ends with a clear error instead.
pub const DEFAULT_MAX_RETRY_AFTER_MS: u64 = 300_000;

/// Statuses retried by default: request timeout (408), too early (425), too many requests (429),
/// and the server-side failures that are usually transient (500, 502, 503, 504).
pub const DEFAULT_RETRY_STATUSES: [u16; 7] = [408, 425, 429, 500, 502, 503, 504];

const fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
const fn default_base_delay_ms() -> u64 {
    DEFAULT_BASE_DELAY_MS
}
const fn default_max_delay_ms() -> u64 {
    DEFAULT_MAX_DELAY_MS
}
const fn default_max_retry_time_ms() -> u64 {
    DEFAULT_MAX_RETRY_TIME_MS
}
const fn default_max_retry_after_ms() -> u64 {
    DEFAULT_MAX_RETRY_AFTER_MS
}

/// The `[http.retry]` table of a connection file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first one included; `1` disables retrying.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Upper bound of the first backoff, in milliseconds; it doubles on every retry.
    #[serde(default = "default_base_delay_ms")]
    pub base_delay_ms: u64,
    /// Upper bound of any one backoff, in milliseconds.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Stop retrying once this much time has passed since the first attempt, in milliseconds.
    #[serde(default = "default_max_retry_time_ms")]
    pub max_retry_time_ms: u64,
    /// Longest wait a server's `Retry-After` may impose, in milliseconds; longer values are cut.
    #[serde(default = "default_max_retry_after_ms")]
    pub max_retry_after_ms: u64,
    /// Statuses to retry in addition to [`DEFAULT_RETRY_STATUSES`].
    #[serde(default)]
    pub retry_statuses: Vec<u16>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay_ms: DEFAULT_BASE_DELAY_MS,
            max_delay_ms: DEFAULT_MAX_DELAY_MS,
            max_retry_time_ms: DEFAULT_MAX_RETRY_TIME_MS,
            max_retry_after_ms: DEFAULT_MAX_RETRY_AFTER_MS,
            retry_statuses: Vec::new(),
        }
    }
}

/// A `[http.retry]` value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{setting}` = {value} in [http.retry]: {reason}")]
pub struct InvalidConfig {
    /// The offending setting.
    pub setting: &'static str,
    /// Its value.
    pub value: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Retry behaviour validated from a [`RetryConfig`].
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_time: Duration,
    max_retry_after: Duration,
    extra_statuses: Vec<u16>,
}

/// What one attempt produced, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response arrived (after redirects).
    Response {
        /// Its status.
        status: u16,
        /// The wait its `Retry-After` header asks for, if it had a usable one.
        retry_after: Option<Duration>,
    },
    /// No usable response arrived.
    Failed {
        /// Whether the failure is transient ([`Classify`]).
        retryable: bool,
        /// Whether the request certainly never reached the server (a connect failure), so that
        /// even a non-idempotent request may be sent again.
        unsent: bool,
    },
}

/// Turns the result of an attempt into an [`Outcome`].
pub trait Classify {
    /// The retry-relevant facts about `self`.
    fn outcome(&self) -> Outcome;
}

/// Why the next attempt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// A retryable status without a usable `Retry-After`.
    Status(u16),
    /// A retryable status whose `Retry-After` set the wait.
    RetryAfter(u16),
    /// A transient transport failure.
    Failure,
}

/// Why no further attempt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The outcome is final: a non-retryable status (including success) or error.
    Final,
    /// The request may have had an effect and its method is not idempotent.
    NotIdempotent,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// Waiting again would go past `max_retry_time_ms`.
    RetryTimeExhausted,
}

/// The decision after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Wait, then attempt again.
    Retry {
        /// How long to wait first.
        wait: Duration,
        /// Why.
        reason: RetryReason,
    },
    /// Return the outcome of this attempt to the caller.
    Stop(StopReason),
}

/// What [`RetryPolicy::run`] reports after each attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptReport {
    /// Attempt number, from 1.
    pub attempt: u32,
    /// What the attempt produced.
    pub outcome: Outcome,
    /// What happens next.
    pub action: RetryAction,
}

impl RetryPolicy {
    /// Validates `config`: at least one attempt, and `base_delay_ms <= max_delay_ms`.
    pub fn new(config: &RetryConfig) -> Result<Self, InvalidConfig> {
        if config.max_attempts == 0 {
            return Err(InvalidConfig {
                setting: "max_attempts",
                value: 0,
                reason: "it must be at least 1 (1 disables retrying)",
            });
        }
        if config.base_delay_ms > config.max_delay_ms {
            return Err(InvalidConfig {
                setting: "base_delay_ms",
                value: config.base_delay_ms,
                reason: "it must not exceed `max_delay_ms`",
            });
        }
        if let Some(&status) = config
            .retry_statuses
            .iter()
            .find(|&&s| !(100..=599).contains(&s))
        {
            return Err(InvalidConfig {
                setting: "retry_statuses",
                value: u64::from(status),
                reason: "statuses are numbers from 100 to 599",
            });
        }
        Ok(Self {
            max_attempts: config.max_attempts,
            base_delay: Duration::from_millis(config.base_delay_ms),
            max_delay: Duration::from_millis(config.max_delay_ms),
            max_retry_time: Duration::from_millis(config.max_retry_time_ms),
            max_retry_after: Duration::from_millis(config.max_retry_after_ms),
            extra_statuses: config.retry_statuses.clone(),
        })
    }

    /// Attempts per request, the first one included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a response with `status` is worth another attempt: the
    /// [`DEFAULT_RETRY_STATUSES`] plus the configured extra ones.
    pub fn is_retryable_status(&self, status: u16) -> bool {
        DEFAULT_RETRY_STATUSES.contains(&status) || self.extra_statuses.contains(&status)
    }

    /// The upper bound of the backoff before retry number `retry` (1 for the first retry):
    /// `min(max_delay, base_delay * 2^(retry - 1))`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A backoff with full jitter: uniformly random in `[0, backoff_cap(retry)]`.
    pub fn backoff<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=cap))
    }

    /// Decides what follows attempt number `attempt` (from 1), `elapsed` after the first attempt
    /// started. Non-idempotent requests are only sent again when the previous attempt certainly
    /// never reached the server.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        outcome: Outcome,
        attempt: u32,
        elapsed: Duration,
        idempotent: bool,
        rng: &mut R,
    ) -> RetryAction {
        let (wait, reason) = match outcome {
            Outcome::Response {
                status,
                retry_after,
            } => {
                if !self.is_retryable_status(status) {
                    return RetryAction::Stop(StopReason::Final);
                }
                if !idempotent {
                    return RetryAction::Stop(StopReason::NotIdempotent);
                }
                match retry_after {
                    Some(wait) => (
                        wait.min(self.max_retry_after),
                        RetryReason::RetryAfter(status),
                    ),
                    None => (self.backoff(attempt, rng), RetryReason::Status(status)),
                }
            }
            Outcome::Failed { retryable, unsent } => {
                if !retryable {
                    return RetryAction::Stop(StopReason::Final);
                }
                if !idempotent && !unsent {
                    return RetryAction::Stop(StopReason::NotIdempotent);
                }
                (self.backoff(attempt, rng), RetryReason::Failure)
            }
        };
        if attempt >= self.max_attempts {
            return RetryAction::Stop(StopReason::AttemptsExhausted);
        }
        if elapsed.saturating_add(wait) > self.max_retry_time {
            return RetryAction::Stop(StopReason::RetryTimeExhausted);
        }
        RetryAction::Retry { wait, reason }
    }

    /// Calls `attempt` (with the attempt number, from 1) until [`decide`](Self::decide) stops,
    /// sleeping between attempts with `tokio::time::sleep`, and returns the last result.
    /// `report` sees every decision, for logging and counters.
    pub async fn run<T, F, Fut>(
        &self,
        idempotent: bool,
        mut attempt: F,
        mut report: impl FnMut(&AttemptReport),
    ) -> T
    where
        T: Classify,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = T>,
    {
        let started = tokio::time::Instant::now();
        let mut number = 1;
        loop {
            let result = attempt(number).await;
            let outcome = result.outcome();
            let action = self.decide(
                outcome,
                number,
                started.elapsed(),
                idempotent,
                &mut rand::rng(),
            );
            report(&AttemptReport {
                attempt: number,
                outcome,
                action,
            });
            match action {
                RetryAction::Stop(_) => return result,
                RetryAction::Retry { wait, .. } => {
                    drop(result);
                    tokio::time::sleep(wait).await;
                    number += 1;
                }
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: Duration::from_millis(DEFAULT_BASE_DELAY_MS),
            max_delay: Duration::from_millis(DEFAULT_MAX_DELAY_MS),
            max_retry_time: Duration::from_millis(DEFAULT_MAX_RETRY_TIME_MS),
            max_retry_after: Duration::from_millis(DEFAULT_MAX_RETRY_AFTER_MS),
            extra_statuses: Vec::new(),
        }
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3) into a wait measured from `now`.
///
/// Accepts delta-seconds (`120`) and an HTTP-date in any of the three RFC 9110 formats
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`,
/// `Sun Nov  6 08:49:37 1994`). Returns `None` for anything else, for negative numbers and for
/// dates not after `now`, so that the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail: they are clamped later anyway.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    match at.duration_since(now) {
        Ok(wait) if !wait.is_zero() => Some(wait),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::{Arc, Mutex};

    fn policy(config: RetryConfig) -> RetryPolicy {
        RetryPolicy::new(&config).unwrap()
    }

    fn status(status: u16) -> Outcome {
        Outcome::Response {
            status,
            retry_after: None,
        }
    }

    const RETRYABLE_FAILURE: Outcome = Outcome::Failed {
        retryable: true,
        unsent: false,
    };

    /// 1994-11-06T08:49:37Z, the RFC 9110 example date.
    fn rfc_example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn config_defaults_match_constants() {
        let parsed: RetryConfig = toml::from_str("").unwrap();
        assert_eq!(parsed, RetryConfig::default());
        assert_eq!(parsed.max_attempts, 5);
        assert_eq!(parsed.base_delay_ms, 500);
        assert_eq!(parsed.max_delay_ms, 30_000);
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let err = toml::from_str::<RetryConfig>("max_atempts = 3").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_atempts`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_configs_are_named() {
        let err = RetryPolicy::new(&RetryConfig {
            max_attempts: 0,
            ..RetryConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `max_attempts` = 0 in [http.retry]: it must be at least 1 (1 disables retrying)"
        );
        let err = RetryPolicy::new(&RetryConfig {
            base_delay_ms: 40_000,
            ..RetryConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `base_delay_ms` = 40000 in [http.retry]: it must not exceed `max_delay_ms`"
        );
        let err = RetryPolicy::new(&RetryConfig {
            retry_statuses: vec![404, 1000],
            ..RetryConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `retry_statuses` = 1000 in [http.retry]: statuses are numbers from 100 to 599"
        );
    }

    #[test]
    fn status_classification() {
        let p = policy(RetryConfig {
            retry_statuses: vec![409],
            ..RetryConfig::default()
        });
        for s in [408, 425, 429, 500, 502, 503, 504, 409] {
            assert!(p.is_retryable_status(s), "{s}");
        }
        for s in [
            200, 201, 204, 301, 304, 400, 401, 403, 404, 410, 422, 501, 505,
        ] {
            assert!(!p.is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_caps_double_and_saturate() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_cap(1), Duration::from_millis(500));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(1_000));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(2_000));
        assert_eq!(p.backoff_cap(7), Duration::from_millis(30_000));
        assert_eq!(p.backoff_cap(u32::MAX), Duration::from_millis(30_000));
    }

    #[test]
    fn backoff_stays_within_full_jitter_bounds() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=12 {
            let cap = p.backoff_cap(retry);
            let waits: Vec<_> = (0..200).map(|_| p.backoff(retry, &mut rng)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "retry {retry}");
            // Full jitter spreads over the whole range, not just near the cap.
            assert!(waits.iter().any(|w| *w < cap / 2), "retry {retry}");
        }
    }

    #[test]
    fn decide_follows_the_rules() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let zero = Duration::ZERO;
        assert_eq!(
            p.decide(status(200), 1, zero, true, &mut rng),
            RetryAction::Stop(StopReason::Final)
        );
        assert_eq!(
            p.decide(status(404), 1, zero, true, &mut rng),
            RetryAction::Stop(StopReason::Final)
        );
        assert!(matches!(
            p.decide(status(503), 1, zero, true, &mut rng),
            RetryAction::Retry { wait, reason: RetryReason::Status(503) } if wait <= Duration::from_millis(500)
        ));
        assert_eq!(
            p.decide(status(503), 1, zero, false, &mut rng),
            RetryAction::Stop(StopReason::NotIdempotent)
        );
        assert!(matches!(
            p.decide(RETRYABLE_FAILURE, 4, zero, true, &mut rng),
            RetryAction::Retry {
                reason: RetryReason::Failure,
                ..
            }
        ));
        assert_eq!(
            p.decide(RETRYABLE_FAILURE, 5, zero, true, &mut rng),
            RetryAction::Stop(StopReason::AttemptsExhausted)
        );
        assert_eq!(
            p.decide(RETRYABLE_FAILURE, 1, zero, false, &mut rng),
            RetryAction::Stop(StopReason::NotIdempotent)
        );
        // A connect failure never reached the server: safe to repeat even a POST.
        let unsent = Outcome::Failed {
            retryable: true,
            unsent: true,
        };
        assert!(matches!(
            p.decide(unsent, 1, zero, false, &mut rng),
            RetryAction::Retry { .. }
        ));
        let fatal = Outcome::Failed {
            retryable: false,
            unsent: true,
        };
        assert_eq!(
            p.decide(fatal, 1, zero, true, &mut rng),
            RetryAction::Stop(StopReason::Final)
        );
    }

    #[test]
    fn retry_after_is_honoured_clamped_and_budgeted() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let after = |secs| Outcome::Response {
            status: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            p.decide(after(7), 1, Duration::ZERO, true, &mut rng),
            RetryAction::Retry {
                wait: Duration::from_secs(7),
                reason: RetryReason::RetryAfter(429)
            }
        );
        assert_eq!(
            p.decide(after(86_400), 1, Duration::ZERO, true, &mut rng),
            RetryAction::Retry {
                wait: Duration::from_secs(300),
                reason: RetryReason::RetryAfter(429)
            }
        );
        assert_eq!(
            p.decide(after(120), 1, Duration::from_secs(200), true, &mut rng),
            RetryAction::Stop(StopReason::RetryTimeExhausted)
        );
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = rfc_example_time();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn retry_after_http_dates_in_all_three_formats() {
        let now = rfc_example_time() - Duration::from_secs(30);
        let thirty = Some(Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            thirty
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            thirty
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), thirty);
    }

    #[test]
    fn retry_after_garbage_negative_and_past_fall_back_to_backoff() {
        let now = rfc_example_time();
        for value in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "0x10",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sat, 05 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    /// A scripted attempt result.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Scripted(Outcome);

    impl Classify for Scripted {
        fn outcome(&self) -> Outcome {
            self.0
        }
    }

    async fn run_script(
        policy: &RetryPolicy,
        idempotent: bool,
        script: Vec<Outcome>,
    ) -> (Scripted, Vec<AttemptReport>, Vec<Duration>) {
        let started = tokio::time::Instant::now();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut reports = Vec::new();
        let result = policy
            .run(
                idempotent,
                |n| {
                    starts.lock().unwrap().push(started.elapsed());
                    let outcome = script[usize::try_from(n).unwrap() - 1];
                    async move { Scripted(outcome) }
                },
                |report| reports.push(*report),
            )
            .await;
        let starts = starts.lock().unwrap().clone();
        (result, reports, starts)
    }

    #[tokio::test(start_paused = true)]
    async fn run_waits_retry_after_then_returns_success() {
        let p = RetryPolicy::default();
        let script = vec![
            Outcome::Response {
                status: 429,
                retry_after: Some(Duration::from_secs(3)),
            },
            Outcome::Response {
                status: 503,
                retry_after: Some(Duration::from_secs(10)),
            },
            status(200),
        ];
        let (result, reports, starts) = run_script(&p, true, script).await;
        assert_eq!(result, Scripted(status(200)));
        assert_eq!(
            starts,
            vec![
                Duration::ZERO,
                Duration::from_secs(3),
                Duration::from_secs(13)
            ]
        );
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[2].action, RetryAction::Stop(StopReason::Final));
    }

    #[tokio::test(start_paused = true)]
    async fn run_backs_off_within_bounds_and_returns_the_last_response() {
        let p = policy(RetryConfig {
            max_attempts: 4,
            base_delay_ms: 1_000,
            max_delay_ms: 2_500,
            ..RetryConfig::default()
        });
        let (result, reports, starts) = run_script(&p, true, vec![status(503); 4]).await;
        // After the last attempt the final response is handed back, not turned into an error.
        assert_eq!(result, Scripted(status(503)));
        assert_eq!(starts.len(), 4);
        assert_eq!(
            reports.last().unwrap().action,
            RetryAction::Stop(StopReason::AttemptsExhausted)
        );
        let caps = [1_000, 2_000, 2_500];
        for (i, cap) in caps.iter().enumerate() {
            let gap = starts[i + 1] - starts[i];
            assert!(gap <= Duration::from_millis(*cap), "gap {i}: {gap:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn run_does_not_repeat_non_idempotent_requests() {
        let p = RetryPolicy::default();
        let (result, reports, _) = run_script(&p, false, vec![status(503), status(200)]).await;
        assert_eq!(result, Scripted(status(503)));
        assert_eq!(reports.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_at_the_retry_time_budget() {
        let p = policy(RetryConfig {
            max_attempts: 100,
            max_retry_time_ms: 25_000,
            ..RetryConfig::default()
        });
        let after10 = Outcome::Response {
            status: 503,
            retry_after: Some(Duration::from_secs(10)),
        };
        let (_, reports, starts) = run_script(&p, true, vec![after10; 100]).await;
        assert_eq!(starts.len(), 3);
        assert_eq!(
            reports.last().unwrap().action,
            RetryAction::Stop(StopReason::RetryTimeExhausted)
        );
    }
}
