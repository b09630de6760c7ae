//! Rate limiter tests: config validation, header parsing, and waits on tokio's paused clock.

use super::*;

fn config(toml: &str) -> RateLimitConfig {
    toml::from_str(toml).unwrap()
}

fn hint(requests: u32, per_seconds: u32, burst: u32) -> Option<RateLimitHint> {
    Some(RateLimitHint {
        requests,
        per_seconds,
        burst,
    })
}

fn rate(requests: u32, per_seconds: u32, burst: u32) -> Rate {
    Rate::new(requests, per_seconds, burst).unwrap()
}

/// Headers as a lookup function, the way the transport passes them.
fn signal(status: u16, headers: &[(&str, &str)], now: SystemTime) -> ServerSignal {
    ServerSignal::from_headers(
        status,
        |name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        },
        now,
    )
}

/// 2026-01-01T00:00:00Z.
fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn held(wait: Duration, reason: HoldReason) -> Option<(Duration, HoldReason)> {
    Some((wait, reason))
}

#[test]
fn defaults_mean_no_limit() {
    let parsed = config("");
    assert_eq!(parsed, RateLimitConfig::default());
    assert_eq!(parsed.max_wait_ms, 300_000);
    assert!(parsed.use_connector_hint && parsed.follow_server_headers);
    assert_eq!(parsed.rate(None).unwrap(), None);
}

#[test]
fn operator_rate_overrides_the_hint_and_defaults_fill_in() {
    let operator = config("requests = 10\nper_seconds = 1\nburst = 5");
    assert_eq!(
        operator.rate(hint(5000, 3600, 100)).unwrap(),
        Some(rate(10, 1, 5))
    );
    // `per_seconds` and `burst` default to 1.
    assert_eq!(
        config("requests = 3").rate(None).unwrap(),
        Some(rate(3, 1, 1))
    );
    // Without `requests`, the connector's hint applies, unless turned off.
    assert_eq!(
        config("").rate(hint(5000, 3600, 100)).unwrap(),
        Some(rate(5000, 3600, 100))
    );
    assert_eq!(
        config("use_connector_hint = false")
            .rate(hint(5000, 3600, 100))
            .unwrap(),
        None
    );
    // A hint with a zero is the connector's bug: ignored, not fatal.
    assert_eq!(config("").rate(hint(0, 60, 1)).unwrap(), None);
    assert_eq!(config("").rate(hint(10, 0, 1)).unwrap(), None);
}

#[test]
fn invalid_settings_are_named_with_the_fix() {
    let error = |toml: &str| config(toml).rate(None).unwrap_err().to_string();
    assert_eq!(
        error("requests = 0"),
        "invalid `requests` = 0 in [http.rate_limit]: it must be at least 1 (to turn off the \
         connector's suggested rate, set `use_connector_hint = false` and leave `requests` out)"
    );
    assert!(
        error("requests = 5\nper_seconds = 0").starts_with("invalid `per_seconds` = 0 in"),
        "{}",
        error("requests = 5\nper_seconds = 0")
    );
    assert!(error("requests = 5\nburst = 0").starts_with("invalid `burst` = 0 in"));
    assert_eq!(
        error("burst = 4"),
        "invalid `burst` = 4 in [http.rate_limit]: it only applies together with `requests`; \
         set `requests` too"
    );
    assert_eq!(
        error("max_wait_ms = 0"),
        "invalid `max_wait_ms` = 0 in [http.rate_limit]: it must be at least 1"
    );
    let unknown = toml::from_str::<RateLimitConfig>("requests_per_second = 5").unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("unknown field `requests_per_second`"),
        "{unknown}"
    );
}

#[test]
fn rate_interval_and_display() {
    assert_eq!(rate(10, 1, 1).interval(), Duration::from_millis(100));
    assert_eq!(
        rate(5000, 3600, 100).interval(),
        Duration::from_micros(720_000)
    );
    assert_eq!(rate(u32::MAX, 1, 1).interval(), Duration::from_nanos(1));
    assert_eq!(rate(10, 60, 2).to_string(), "10 per 60 s (burst 2)");
    assert_eq!(Rate::new(1, 1, 0), None);
}

#[test]
fn retry_after_holds_only_on_429_and_503() {
    let now = wall();
    assert_eq!(
        signal(429, &[("retry-after", "7")], now).hold,
        held(secs(7), HoldReason::RetryAfter)
    );
    assert_eq!(
        signal(
            503,
            &[("retry-after", "Thu, 01 Jan 2026 00:00:30 GMT")],
            now
        )
        .hold,
        held(secs(30), HoldReason::RetryAfter)
    );
    // On a success it means nothing, and garbage or the past is ignored.
    assert_eq!(signal(200, &[("retry-after", "7")], now).hold, None);
    for garbage in ["soon", "-3", "Wed, 31 Dec 2025 23:59:00 GMT", "0"] {
        assert_eq!(
            signal(429, &[("retry-after", garbage)], now).hold,
            None,
            "{garbage}"
        );
    }
}

#[test]
fn x_ratelimit_reset_as_delta_or_unix_time() {
    let now = wall();
    let exhausted = |reset: &str| {
        signal(
            200,
            &[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", reset)],
            now,
        )
        .hold
    };
    // Small numbers are seconds from now.
    assert_eq!(exhausted("30"), held(secs(30), HoldReason::Exhausted));
    assert_eq!(
        exhausted("1.5"),
        held(Duration::from_millis(1500), HoldReason::Exhausted)
    );
    // Large ones are Unix times, in seconds or in milliseconds.
    assert_eq!(
        exhausted("1767225645"),
        held(secs(45), HoldReason::Exhausted)
    );
    assert_eq!(
        exhausted("1767225612000"),
        held(secs(12), HoldReason::Exhausted)
    );
    // A reset in the past, garbage, or no reset at all: nothing to wait for.
    assert_eq!(exhausted("1767225000"), None);
    assert_eq!(exhausted("-5"), None);
    assert_eq!(exhausted("tomorrow"), None);
    assert_eq!(
        signal(200, &[("x-ratelimit-remaining", "0")], now).hold,
        None
    );
    // Requests left: no hold.
    assert_eq!(
        signal(
            200,
            &[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "30")],
            now
        )
        .hold,
        None
    );
    // Other spellings.
    assert_eq!(
        signal(
            200,
            &[("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "9")],
            now
        )
        .hold,
        held(secs(9), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset-after", "2.5")
            ],
            now
        )
        .hold,
        held(Duration::from_millis(2500), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(
            200,
            &[("ratelimit-remaining", "0"), ("ratelimit-reset", "4")],
            now
        )
        .hold,
        held(secs(4), HoldReason::Exhausted)
    );
}

#[test]
fn a_429_with_a_reset_but_no_count_holds_until_the_reset() {
    let now = wall();
    assert_eq!(
        signal(429, &[("x-ratelimit-reset", "20")], now).hold,
        held(secs(20), HoldReason::Exhausted)
    );
    // The longer of Retry-After and the reset wins.
    assert_eq!(
        signal(
            429,
            &[("retry-after", "5"), ("x-ratelimit-reset", "20")],
            now
        )
        .hold,
        held(secs(20), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(
            429,
            &[("retry-after", "50"), ("x-ratelimit-reset", "20")],
            now
        )
        .hold,
        held(secs(50), HoldReason::RetryAfter)
    );
}

#[test]
fn ietf_ratelimit_in_both_draft_forms() {
    let now = wall();
    // Drafts 05-06: a dictionary.
    assert_eq!(
        signal(
            200,
            &[("ratelimit", "limit=100, remaining=0, reset=30")],
            now
        )
        .hold,
        held(secs(30), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(
            200,
            &[("ratelimit", "limit=100, remaining=7, reset=30")],
            now
        )
        .hold,
        None
    );
    // Draft 07 on: a list of policies with `r` and `t`; the longest exhausted one counts.
    assert_eq!(
        signal(200, &[("ratelimit", "\"default\";r=0;t=30")], now).hold,
        held(secs(30), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(
            200,
            &[(
                "ratelimit",
                "\"minute\";r=0;t=12, \"day, total\";r=0;t=600, \"hour\";r=5;t=1800"
            )],
            now
        )
        .hold,
        held(secs(600), HoldReason::Exhausted)
    );
    assert_eq!(
        signal(200, &[("ratelimit", "default;r=4;t=30")], now).hold,
        None
    );
    assert_eq!(signal(200, &[("ratelimit", ";;,=,\"")], now).hold, None);
}

#[test]
fn ratelimit_policy_gives_the_strictest_rate_with_the_smallest_burst() {
    let now = wall();
    let policy = |value: &str| signal(200, &[("ratelimit-policy", value)], now).policy;
    assert_eq!(policy("100;w=60"), Some(rate(100, 60, 100)));
    assert_eq!(policy("\"default\";q=100;w=60"), Some(rate(100, 60, 100)));
    assert_eq!(
        policy("\"burst\";q=10;w=1, \"daily\";q=1000;w=86400"),
        Some(rate(1000, 86400, 10))
    );
    assert_eq!(policy("\"x\";q=0;w=60"), None);
    assert_eq!(policy("\"x\";w=60"), None);
    assert_eq!(policy("garbage"), None);
}

#[tokio::test(start_paused = true)]
async fn quota_spaces_requests_after_the_burst() {
    let limiter = RateLimiter::new(&config("requests = 4\nburst = 2"), None).unwrap();
    let start = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..5 {
        limiter.acquire("api.example.com").await.unwrap();
        sent.push(start.elapsed());
    }
    let ms = Duration::from_millis;
    // Two at once, then one every 250 ms.
    assert_eq!(sent, vec![ms(0), ms(0), ms(250), ms(500), ms(750)]);
    // Another host has its own quota.
    let before = Instant::now();
    limiter.acquire("other.example.com").await.unwrap();
    assert_eq!(before.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn connector_hint_applies_without_operator_rate() {
    let limiter = RateLimiter::new(&config(""), hint(1, 2, 1)).unwrap();
    assert_eq!(limiter.quota(), Some(rate(1, 2, 1)));
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
    assert_eq!(limiter.acquire("h").await.unwrap(), secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_hold_blocks_only_its_host_until_it_ends() {
    let limiter = RateLimiter::new(&config(""), None).unwrap();
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
    limiter.observe(
        "h",
        ServerSignal {
            hold: held(secs(30), HoldReason::Exhausted),
            policy: None,
        },
    );
    // A shorter hold later does not shorten it.
    limiter.observe(
        "h",
        ServerSignal {
            hold: held(secs(1), HoldReason::RetryAfter),
            policy: None,
        },
    );
    assert_eq!(limiter.acquire("other").await.unwrap(), Duration::ZERO);
    let start = Instant::now();
    assert_eq!(limiter.acquire("h").await.unwrap(), secs(30));
    assert_eq!(start.elapsed(), secs(30));
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_hold_longer_than_max_wait_fails_at_once() {
    let limiter = RateLimiter::new(&config("max_wait_ms = 60000"), None).unwrap();
    limiter.observe(
        "api.example.com",
        ServerSignal {
            hold: held(secs(3600), HoldReason::Exhausted),
            policy: None,
        },
    );
    let start = Instant::now();
    let error = limiter.acquire("api.example.com").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(error.wait_secs, 3600);
    assert_eq!(
        error.to_string(),
        "the rate limit of `api.example.com` (remaining_0) would hold this request for 3600 s, \
         longer than `max_wait_ms` = 60000 in [http.rate_limit]; the sync resumes from its \
         checkpoint on the next run, or raise `max_wait_ms` to wait it out"
    );
    // A quota that cannot be met in time fails the same way.
    let limiter = RateLimiter::new(
        &config("requests = 1\nper_seconds = 3600\nmax_wait_ms = 1000"),
        None,
    )
    .unwrap();
    limiter.acquire("h").await.unwrap();
    let error = limiter.acquire("h").await.unwrap_err();
    assert_eq!((error.reason, error.wait_secs), ("quota", 3600));
}

#[tokio::test(start_paused = true)]
async fn advertised_policy_is_adopted_only_without_a_configured_quota() {
    let advertised = ServerSignal {
        hold: None,
        policy: Some(rate(2, 1, 1)),
    };
    let limiter = RateLimiter::new(&config(""), None).unwrap();
    limiter.observe("h", advertised);
    assert_eq!(limiter.quota_for("h"), Some(rate(2, 1, 1)));
    assert_eq!(limiter.quota_for("other"), None);
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
    assert_eq!(
        limiter.acquire("h").await.unwrap(),
        Duration::from_millis(500)
    );

    let limiter = RateLimiter::new(&config("requests = 100"), None).unwrap();
    limiter.observe("h", advertised);
    assert_eq!(limiter.quota_for("h"), Some(rate(100, 1, 1)));
}

#[tokio::test(start_paused = true)]
async fn server_headers_can_be_ignored() {
    let limiter = RateLimiter::new(&config("follow_server_headers = false"), None).unwrap();
    limiter.observe(
        "h",
        ServerSignal {
            hold: held(secs(30), HoldReason::RetryAfter),
            policy: Some(rate(1, 60, 1)),
        },
    );
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
    assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
}

/// On the real clock, a request that did not wait reports exactly zero (the transport counts
/// every non-zero wait as a rate-limit wait).
#[tokio::test]
async fn no_wait_is_exactly_zero_on_the_real_clock() {
    let limiter = RateLimiter::new(&config("requests = 1000\nburst = 10"), None).unwrap();
    for _ in 0..5 {
        assert_eq!(limiter.acquire("h").await.unwrap(), Duration::ZERO);
    }
    let unlimited = RateLimiter::new(&config(""), None).unwrap();
    assert_eq!(unlimited.acquire("h").await.unwrap(), Duration::ZERO);
}

/// Connections sharing a credential share its budget: the quota is spent by all of them
/// together, and a `Retry-After` one of them saw holds the others too. Other hosts are free.
#[tokio::test(start_paused = true)]
async fn a_shared_budget_is_spent_and_held_by_every_connection_using_it() {
    let budget = SharedBudget::new("API.example.com", rate(1, 10, 1), 60_000);
    let (acme, globex) = (budget.clone(), budget.clone());
    assert!(acme.applies_to("api.example.com"));
    assert!(!acme.applies_to("other.example.com"));
    assert_eq!(
        acme.limiter().acquire("api.example.com").await.unwrap(),
        Duration::ZERO
    );
    // The one request per 10 s was acme's: globex waits for the next cell.
    assert_eq!(
        globex.limiter().acquire("api.example.com").await.unwrap(),
        secs(10)
    );
    globex.limiter().observe(
        "api.example.com",
        ServerSignal {
            hold: held(secs(40), HoldReason::RetryAfter),
            policy: None,
        },
    );
    let start = Instant::now();
    acme.limiter().acquire("api.example.com").await.unwrap();
    assert_eq!(
        start.elapsed(),
        secs(40),
        "acme waits out globex's Retry-After"
    );
    let separate = SharedBudget::new("api.example.com", rate(1, 10, 1), 60_000);
    assert_eq!(
        separate.limiter().acquire("api.example.com").await.unwrap(),
        Duration::ZERO,
        "another credential has its own budget"
    );
}
