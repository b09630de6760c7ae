//! The HTTP layer against a hostile network (issue 3): the real `rest` connector, run by the
//! real `sluice` binary, against [`ScriptedServer`] on 127.0.0.1.
//!
//! Every scenario checks two things beyond the failure itself: the output holds each record
//! exactly once and nothing else (failed attempts carry "poison" records, id 9001, that must
//! never reach the sink), and a sync that fails for good leaves the previous sync's output and
//! checkpoint as they were. Timing is asserted only on the server side ([`Hit::at`]) and only as
//! lower bounds ("not sent before the reset"), never as the speed of a run. Settings are small
//! (timeouts of a few hundred milliseconds, backoff of tens) to keep the whole file quick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sluice_host::checkpoint::{CheckpointStore, StreamKey};
use sluice_host::http::{AllowedHosts, EgressPolicy, HttpRequest, HttpSettings, Transport};
use sluice_tests::cli::CmdOutput;
use sluice_tests::connection::{Connection, Style, incremental, rest_stream};
use sluice_tests::dataset;
use sluice_tests::scripted::{Hit, Reply, ScriptedServer, dataset_page, head};

use crate::Workspace;

/// Records served; with pages of [`PAGE`], the sync takes three requests (10, 10, 5).
const RECORDS: u64 = 25;
const PAGE: u64 = 10;

/// A record that only failed attempts carry: finding it in the output means a failed attempt
/// reached the sink.
fn poison() -> Value {
    json!({ "data": [{ "id": 9001, "poison": true }] })
}

fn poison_bytes() -> Vec<u8> {
    poison().to_string().into_bytes()
}

/// The stream's offset (`0`, `10`, `20`) of a request.
fn offset(hit: &Hit) -> u64 {
    hit.window().map_or(0, |(_, offset)| offset)
}

/// `[http]` for these tests: short timeouts, tiny backoff, room for a few retries.
fn fast_http() -> Value {
    json!({
        "connect_timeout_ms": 2_000,
        "request_timeout_ms": 5_000,
        "read_timeout_ms": 2_000,
        "retry": { "max_attempts": 5, "base_delay_ms": 10, "max_delay_ms": 50 },
    })
}

/// A `rest` connection reading the server's offset endpoint with pages of [`PAGE`], with `http`
/// as its `[http]` table.
fn connection(server: &ScriptedServer, http: Value, incremental_stream: bool) -> Connection {
    let mut stream = rest_stream("items", Style::Offset, PAGE);
    if incremental_stream {
        stream = incremental(stream, "/updated_at", "updated_after");
    }
    let mut connection =
        Connection::new(json!({ "base_url": server.base_url(), "streams": [stream] }))
            .allow_private_networks();
    let Value::Object(table) = http else {
        panic!("[http] must be an object")
    };
    for (key, value) in table {
        connection = connection.set("http", &key, value);
    }
    connection
}

/// Writes the connection and runs `sluice run --json`.
fn run(ws: &Workspace, connection: &Connection) -> CmdOutput {
    ws.write(connection);
    ws.run_output("rest")
}

/// Runs expecting success; returns the JSON summary.
#[track_caller]
fn run_ok(ws: &Workspace, connection: &Connection) -> Value {
    let output = run(ws, connection);
    output.assert_success();
    output.json()
}

/// The output holds records `1..=total`, each exactly once, in order, and nothing else.
#[track_caller]
fn assert_exactly_once(ws: &Workspace, total: u64) {
    let written = ws.records("items");
    assert_eq!(
        dataset::ids(&written),
        (1..=total).collect::<Vec<_>>(),
        "each record exactly once, no poison from a failed attempt"
    );
    assert_eq!(written, dataset::records(total));
}

/// `summary.http.retries_by_cause[cause]`, 0 when absent.
fn retries_for(summary: &Value, cause: &str) -> u64 {
    summary["http"]["retries_by_cause"][cause]
        .as_u64()
        .unwrap_or(0)
}

/// What a sync left behind: the output file's bytes, and the checkpoint's connector state and
/// output position.
#[derive(Debug, PartialEq)]
struct Committed {
    output: Vec<u8>,
    state: Option<String>,
    offset_bytes: u64,
    records: u64,
}

fn committed(ws: &Workspace) -> Committed {
    let store = CheckpointStore::open(&ws.state()).expect("open the checkpoint store");
    let checkpoint = store
        .load(&StreamKey::new("connection", "items"))
        .expect("read the checkpoint")
        .expect("a checkpoint for `items`");
    Committed {
        output: std::fs::read(ws.output_file("items")).expect("read the output"),
        state: checkpoint.state,
        offset_bytes: checkpoint.output.offset_bytes,
        records: checkpoint.output.records,
    }
}

/// Syncs an incremental stream successfully, then makes the server answer every request with
/// `failing`, syncs again and expects a clean failure; the output and the committed checkpoint
/// (cursor and output position) must be exactly those of the first sync. Returns the error text
/// and the server.
fn fails_for_good_keeping_the_previous_sync(
    http: Value,
    failing: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
) -> (String, ScriptedServer) {
    let broken = Arc::new(AtomicBool::new(false));
    let switch = Arc::clone(&broken);
    let server = ScriptedServer::start(move |hit| {
        if switch.load(Ordering::SeqCst) {
            failing(hit)
        } else {
            dataset_page(hit, RECORDS)
        }
    });
    let ws = Workspace::new();
    let connection = connection(&server, http, true);
    run_ok(&ws, &connection);
    assert_exactly_once(&ws, RECORDS);
    let before = committed(&ws);

    broken.store(true, Ordering::SeqCst);
    let hits_before = server.hit_count();
    let output = run(&ws, &connection);
    let error = output.assert_error();
    assert!(
        server.hit_count() > hits_before || error.contains("denied"),
        "the failing sync must have tried\n{output}"
    );
    assert_eq!(
        committed(&ws),
        before,
        "a failed sync must leave the output and the checkpoint as they were\n{output}"
    );
    assert_exactly_once(&ws, RECORDS);
    (error, server)
}

// ---------------------------------------------------------------------------------------------
// Retry-After and 5xx.

/// HTTP-date formats of RFC 9110 §5.6.7 for `at` (whole seconds).
fn http_date(at: SystemTime, format: &str) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let days = i64::try_from(secs / 86_400).expect("days fit");
    let (year, month, day) = dataset::civil_from_days(days);
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let weekday = usize::try_from((days + 4) % 7).expect("0..7");
    const SHORT: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const LONG: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS[usize::try_from(month - 1).expect("1..=12")];
    match format {
        "imf" => httpdate::fmt_http_date(at),
        "rfc850" => format!(
            "{}, {day:02}-{month}-{:02} {hh:02}:{mm:02}:{ss:02} GMT",
            LONG[weekday],
            year % 100
        ),
        "asctime" => format!(
            "{} {month} {day:>2} {hh:02}:{mm:02}:{ss:02} {year}",
            SHORT[weekday]
        ),
        other => panic!("unknown date format {other}"),
    }
}

/// A `Retry-After` value in `form` and the wait it asks for, measured now. Dates have whole
/// seconds, so the date is the next second boundary at least 300 ms away.
fn retry_after(form: &str) -> (String, Option<Duration>) {
    let now = SystemTime::now();
    let date = |now: SystemTime| {
        let since = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970");
        let mut next = Duration::from_secs(since.as_secs() + 1);
        if next - since < Duration::from_millis(300) {
            next += Duration::from_secs(1);
        }
        let at = SystemTime::UNIX_EPOCH + next;
        (at, next - since)
    };
    match form {
        "delta" => ("1".to_owned(), Some(Duration::from_secs(1))),
        "imf" | "rfc850" | "asctime" => {
            let (at, wait) = date(now);
            (http_date(at, form), Some(wait))
        }
        "garbage" => ("in a little while".to_owned(), None),
        "negative" => ("-3".to_owned(), None),
        "past" => (http_date(now - Duration::from_secs(3600), "imf"), None),
        other => panic!("unknown form {other}"),
    }
}

/// One sync whose second page first gets a 429 with `Retry-After` in `form` (and poison in its
/// body). Returns the gap between the 429 and its retry, the wait the header asked for (if it is
/// usable), and the summary.
fn storm_with_retry_after(form: &'static str) -> (Duration, Option<Duration>, Value) {
    let asked: Arc<std::sync::Mutex<Option<Duration>>> = Arc::default();
    let record = Arc::clone(&asked);
    let server = ScriptedServer::start(move |hit| {
        if hit.index == 1 {
            let (value, wait) = retry_after(form);
            *record.lock().expect("lock") = wait;
            Reply::new(429, &[("retry-after", &value)], poison_bytes())
        } else {
            dataset_page(hit, RECORDS)
        }
    });
    let ws = Workspace::new();
    let summary = run_ok(&ws, &connection(&server, fast_http(), false));
    assert_exactly_once(&ws, RECORDS);
    let hits = server.hits();
    assert_eq!(hits.len(), 4, "three pages and one retry ({form})");
    assert_eq!(offset(&hits[1]), offset(&hits[2]), "the 429 is retried");
    assert_eq!(summary["http"]["rate_limited"], 1, "{summary}");
    assert_eq!(retries_for(&summary, "status_429"), 1, "{summary}");
    let wait = *asked.lock().expect("lock");
    (hits[2].at - hits[1].at, wait, summary)
}

/// A 429 storm with each `Retry-After` form: delta seconds and the three HTTP-date formats are
/// honoured (the retry is not sent before the time they name); garbage, negative and past
/// values fall back to the configured backoff (here at most 50 ms).
#[test]
fn retry_after_in_every_form_is_honoured_and_bad_values_fall_back_to_backoff() {
    let forms = [
        "delta", "imf", "rfc850", "asctime", "garbage", "negative", "past",
    ];
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = forms
            .iter()
            .map(|form| scope.spawn(move || (*form, storm_with_retry_after(form))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    for (form, (gap, asked, summary)) in results {
        match asked {
            Some(wait) => {
                assert!(
                    gap >= wait,
                    "{form}: retried after {gap:?}, before the {wait:?} Retry-After asked for"
                );
                // The host measured the wait from when the answer reached it, a little later.
                assert!(
                    summary["http"]["waited_ms"].as_u64().unwrap_or(0) + 100
                        >= u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "{form}: the wait is counted: {summary}"
                );
            }
            // The 2 s bound is far above the 50 ms backoff and below any reading of these
            // values as a wait (-3 read as 3 s, the past date as an hour).
            None => assert!(
                gap < Duration::from_secs(2),
                "{form}: an unusable Retry-After must fall back to backoff, waited {gap:?}"
            ),
        }
    }
}

/// Bursts of 500, 502, 503 and 504 on two pages are retried until the server recovers; the
/// summary counts each cause, and the records arrive exactly once.
#[test]
fn server_error_bursts_then_recovery() {
    let server = ScriptedServer::start(|hit| match (offset(hit), hit.index) {
        (0, 0) => Reply::new(503, &[], poison_bytes()),
        (0, 1) => Reply::new(503, &[], poison_bytes()),
        (0, 2) => Reply::new(500, &[], poison_bytes()),
        (10, 4) => Reply::new(502, &[], poison_bytes()),
        (10, 5) => Reply::new(504, &[], poison_bytes()),
        _ => dataset_page(hit, RECORDS),
    });
    let ws = Workspace::new();
    let summary = run_ok(&ws, &connection(&server, fast_http(), false));
    assert_exactly_once(&ws, RECORDS);
    assert_eq!(server.hit_count(), 3 + 5, "{summary}");
    assert_eq!(summary["http"]["requests_sent"], 8, "{summary}");
    assert_eq!(summary["http"]["retries"], 5, "{summary}");
    for (cause, count) in [
        ("status_503", 2),
        ("status_500", 1),
        ("status_502", 1),
        ("status_504", 1),
    ] {
        assert_eq!(retries_for(&summary, cause), count, "{cause}: {summary}");
    }
    // The connector saw one request per page: retries are the host's business.
    assert_eq!(summary["streams"][0]["requests"], 3, "{summary}");
}

/// A server that keeps failing exhausts the retries; the sync fails and the previous sync's
/// output and checkpoint are untouched.
#[test]
fn persistent_server_errors_fail_the_sync_and_keep_the_previous_one() {
    let (error, server) = fails_for_good_keeping_the_previous_sync(fast_http(), |_| {
        Reply::new(503, &[], poison_bytes())
    });
    assert!(error.contains("503"), "{error}");
    // 3 requests for the first sync, then `max_attempts` = 5 for the failing one.
    assert_eq!(server.hit_count(), 3 + 5);
}

// ---------------------------------------------------------------------------------------------
// Timeouts and broken bodies.

/// A first byte later than `read_timeout_ms` is a timeout; the late response (poison) is never
/// used, and the retry succeeds.
#[test]
fn slow_first_byte_times_out_and_is_retried() {
    let server = ScriptedServer::start(|hit| {
        if hit.index == 1 {
            Reply::json(200, &poison()).delayed(Duration::from_millis(900))
        } else {
            dataset_page(hit, RECORDS)
        }
    });
    let ws = Workspace::new();
    let mut http = fast_http();
    http["read_timeout_ms"] = json!(300);
    let summary = run_ok(&ws, &connection(&server, http, false));
    assert_exactly_once(&ws, RECORDS);
    assert_eq!(retries_for(&summary, "timeout"), 1, "{summary}");
    let hits = server.hits();
    assert_eq!(hits.len(), 4);
    assert!(
        hits[2].at - hits[1].at >= Duration::from_millis(300),
        "the retry follows the read timeout"
    );
}

/// A body that drips slower than `read_timeout_ms` times out between bytes; one that drips
/// within it but takes longer than `request_timeout_ms` in total times out too. Neither partial
/// body reaches the sink.
#[test]
fn dripping_bodies_time_out_and_are_retried() {
    let body = dataset_body_bytes(0);
    let server = ScriptedServer::start(move |hit| {
        let length = body.len().to_string();
        let head = head(200, &[("content-length", &length)]);
        match hit.index {
            // Gaps of 600 ms, above the 300 ms read timeout.
            0 => Reply::Drip {
                head,
                chunks: body.chunks(16).map(<[u8]>::to_vec).collect(),
                every: Duration::from_millis(600),
            },
            // Gaps of 100 ms, but 20 of them: past the 1 s request timeout.
            1 => Reply::Drip {
                head,
                chunks: body
                    .chunks(body.len().div_ceil(20))
                    .map(<[u8]>::to_vec)
                    .collect(),
                every: Duration::from_millis(100),
            },
            _ => dataset_page(hit, RECORDS),
        }
    });
    let ws = Workspace::new();
    let mut http = fast_http();
    http["read_timeout_ms"] = json!(300);
    http["request_timeout_ms"] = json!(1_000);
    let summary = run_ok(&ws, &connection(&server, http, false));
    assert_exactly_once(&ws, RECORDS);
    assert_eq!(retries_for(&summary, "timeout"), 2, "{summary}");
    assert_eq!(server.hit_count(), 5);
}

/// The first page's body as the server would send it.
fn dataset_body_bytes(offset: u64) -> Vec<u8> {
    let records: Vec<Value> = (offset + 1..=(offset + PAGE).min(RECORDS))
        .map(dataset::record)
        .collect();
    json!({ "data": records }).to_string().into_bytes()
}

/// A connection reset half-way through a body, and a `Content-Length` that promises more than
/// arrives (the part that does arrive is complete, valid JSON with poison in it): both are
/// incomplete bodies, retried, never a page.
#[test]
fn reset_mid_body_and_lying_content_length_are_retried() {
    let server = ScriptedServer::start(|hit| {
        let poison = poison_bytes();
        match hit.index {
            0 => {
                let full = dataset_body_bytes(0);
                let mut bytes = head(200, &[("content-length", &full.len().to_string())]);
                bytes.extend_from_slice(&full[..full.len() / 2]);
                Reply::RawThenReset(bytes)
            }
            2 => {
                let claimed = (poison.len() + 500).to_string();
                let mut bytes = head(
                    200,
                    &[
                        ("content-type", "application/json"),
                        ("content-length", &claimed),
                    ],
                );
                bytes.extend_from_slice(&poison);
                Reply::Raw(bytes)
            }
            _ => dataset_page(hit, RECORDS),
        }
    });
    let ws = Workspace::new();
    let summary = run_ok(&ws, &connection(&server, fast_http(), false));
    assert_exactly_once(&ws, RECORDS);
    assert_eq!(summary["http"]["retries"], 2, "{summary}");
    assert_eq!(
        retries_for(&summary, "incomplete_body") + retries_for(&summary, "connection_lost"),
        2,
        "{summary}"
    );
    assert_eq!(server.hit_count(), 5);
}

/// A gzip bomb (16 MiB of zeros in 16 KiB) against `max_response_bytes` = 1 MiB: refused with
/// an error naming the cap and how to raise it, not retried, and the previous sync is intact.
#[test]
fn gzip_bomb_is_refused_and_keeps_the_previous_sync() {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        encoder.write_all(&zeros).expect("compress");
    }
    let bomb = encoder.finish().expect("compress");
    assert!(bomb.len() < 100 * 1024);
    let mut http = fast_http();
    http["max_response_bytes"] = json!(1 << 20);
    let (error, server) = fails_for_good_keeping_the_previous_sync(http, move |_| {
        Reply::new(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            bomb.clone(),
        )
    });
    assert!(
        error.contains("larger than 1048576 bytes") && error.contains("max_response_bytes"),
        "{error}"
    );
    assert_eq!(
        server.hit_count(),
        3 + 1,
        "a body over the cap is not retried"
    );
}

// ---------------------------------------------------------------------------------------------
// Redirects.

/// A redirect to another server (not a host the connector declared) is refused, and that
/// server receives nothing.
#[test]
fn redirect_to_another_host_is_refused() {
    let other = ScriptedServer::start(|hit| dataset_page(hit, RECORDS));
    let location = other.url("/offset/items?limit=10&offset=0");
    let (error, _server) = fails_for_good_keeping_the_previous_sync(fast_http(), move |_| {
        Reply::status(302, &[("location", &location)])
    });
    assert!(
        error.contains("denied") && error.contains(&other.host_port()),
        "{error}"
    );
    assert_eq!(other.hit_count(), 0, "the other host was reached");
}

/// A redirect to a private address (the cloud metadata endpoint, refused even with
/// `allow_private_networks`) is refused before anything is sent; no retry either.
#[test]
fn redirect_to_a_private_address_is_refused() {
    let (error, server) = fails_for_good_keeping_the_previous_sync(fast_http(), |_| {
        Reply::status(
            307,
            &[("location", "http://169.254.169.254/latest/meta-data/")],
        )
    });
    assert!(
        error.contains("denied") && error.contains("169.254.169.254"),
        "{error}"
    );
    assert_eq!(
        server.hit_count(),
        3 + 1,
        "a refused redirect is not retried"
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limits.

/// Rate-limit headers that say "0 left, reset in N s" hold the next request to that host
/// until the reset, in each form: `X-RateLimit-Reset` as seconds from now and as a Unix time,
/// IETF `RateLimit` (draft-07 form) and a 429 with a reset but no `Retry-After` (whose own
/// backoff would be only tens of milliseconds).
#[test]
fn rate_limit_headers_hold_the_next_request_until_the_reset() {
    let asked: Arc<std::sync::Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let record = Arc::clone(&asked);
    let server = ScriptedServer::start(move |hit| {
        let mut asked = record.lock().expect("lock");
        let reply = dataset_page(hit, 45);
        match hit.index {
            0 => {
                asked.push((0, Duration::from_secs(1)));
                reply
                    .with_header("x-ratelimit-remaining", "0")
                    .with_header("x-ratelimit-reset", "1")
            }
            1 => {
                // A Unix time: the next whole second at least 300 ms away.
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after 1970");
                let mut reset = now.as_secs() + 1;
                if Duration::from_secs(reset) - now < Duration::from_millis(300) {
                    reset += 1;
                }
                asked.push((1, Duration::from_secs(reset) - now));
                reply
                    .with_header("x-ratelimit-limit", "60")
                    .with_header("x-ratelimit-remaining", "0")
                    .with_header("x-ratelimit-reset", &reset.to_string())
            }
            2 => {
                asked.push((2, Duration::from_secs(1)));
                reply.with_header("ratelimit", "\"default\";r=0;t=1")
            }
            3 => {
                asked.push((3, Duration::from_secs(1)));
                Reply::new(429, &[("x-ratelimit-reset", "1")], poison_bytes())
            }
            _ => reply,
        }
    });
    let ws = Workspace::new();
    let summary = run_ok(&ws, &connection(&server, fast_http(), false));
    assert_exactly_once(&ws, 45);
    let hits = server.hits();
    // Pages at offsets 0, 10, 20, 30 (429, then again), 40.
    assert_eq!(hits.len(), 6, "{summary}");
    for (index, wait) in asked.lock().expect("lock").iter().copied() {
        let gap = hits[index + 1].at - hits[index].at;
        assert!(
            gap >= wait,
            "request {} was sent {gap:?} after request {index}, before the {wait:?} reset",
            index + 1
        );
    }
    let http = &summary["http"];
    assert_eq!(http["rate_limit_waits"], 4, "{summary}");
    assert!(
        http["rate_limit_wait_ms"].as_u64().unwrap_or(0) >= 2_500,
        "{summary}"
    );
    assert!(
        http["waited_ms"].as_u64().unwrap_or(0) >= http["rate_limit_wait_ms"].as_u64().unwrap_or(0),
        "{summary}"
    );
    assert_eq!(http["rate_limited"], 1, "{summary}");
}

/// The operator's `[http.rate_limit]` spaces requests to the host: 4 per second with a burst
/// of 1 puts 250 ms between requests (without it they follow each other within milliseconds).
#[test]
fn operator_quota_spaces_requests() {
    let server = ScriptedServer::start(|hit| dataset_page(hit, RECORDS));
    let ws = Workspace::new();
    let mut http = fast_http();
    http["rate_limit"] = json!({ "requests": 4, "per_seconds": 1, "burst": 1 });
    let summary = run_ok(&ws, &connection(&server, http, false));
    assert_exactly_once(&ws, RECORDS);
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    for pair in hits.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // The limiter spaces the moments requests leave the host; how long each takes to reach
        // the server varies (the first one also connects), hence a 100 ms tolerance.
        assert!(
            gap >= Duration::from_millis(150),
            "requests {gap:?} apart, closer than the quota allows"
        );
    }
    let http = &summary["http"];
    assert_eq!(http["rate_limit_waits"], 2, "{summary}");
    assert!(
        http["rate_limit_wait_ms"].as_u64().unwrap_or(0) >= 300,
        "{summary}"
    );
}

/// A rate limit that would hold a request longer than `max_wait_ms` fails the sync at once
/// with an error naming the host and the setting, and sends nothing more to that host.
#[test]
fn a_reset_beyond_max_wait_fails_at_once_and_keeps_the_previous_sync() {
    let mut http = fast_http();
    http["rate_limit"] = json!({ "max_wait_ms": 2_000 });
    let (error, server) = fails_for_good_keeping_the_previous_sync(http, |_| {
        Reply::new(
            429,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "3600"),
            ],
            poison_bytes(),
        )
    });
    assert!(
        error.contains("max_wait_ms") && error.contains("3600 s"),
        "{error}"
    );
    assert_eq!(
        server.hit_count(),
        3 + 1,
        "nothing is sent while the host is on hold"
    );
}

// ---------------------------------------------------------------------------------------------
// Stale pooled connections (library level: the transport on its own).

fn transport(server: &ScriptedServer, max_attempts: u32) -> Transport {
    let mut settings = HttpSettings::default();
    settings.retry.max_attempts = max_attempts;
    let hosts = AllowedHosts::parse(&[server.host_port()]).expect("host pattern");
    Transport::new(&settings, EgressPolicy::new(hosts, None, true), None).expect("transport")
}

fn request(server: &ScriptedServer, method: reqwest::Method) -> HttpRequest {
    HttpRequest {
        method,
        url: url::Url::parse(&server.url("/offset/items?limit=10")).expect("url"),
        headers: Vec::new(),
        body: None,
        authenticate: false,
        idempotent: false,
    }
}

/// The server closes a kept-alive connection just as the next request arrives on it (the race
/// every client of a keep-alive server meets). An idempotent request is sent again at once on a
/// new connection even with retries disabled; a `POST` the server may have seen is not.
#[tokio::test]
async fn stale_pooled_connection_is_retried_once_for_idempotent_requests() {
    let server = ScriptedServer::start(|hit| {
        if hit.on_connection > 0 {
            Reply::Close
        } else {
            dataset_page(hit, RECORDS)
        }
    });
    let transport = transport(&server, 1);
    for _ in 0..2 {
        let response = transport
            .send(request(&server, reqwest::Method::GET))
            .await
            .expect("the stale connection is replaced");
        assert_eq!(response.status, 200);
    }
    let stats = transport.stats();
    assert_eq!(stats.retries_by_cause.get("stale_connection"), Some(&1));
    let hits = server.hits();
    assert_eq!(hits.len(), 3);
    assert_eq!(
        (hits[1].connection, hits[1].on_connection),
        (hits[0].connection, 1),
        "the second request went out on the pooled connection"
    );
    assert_eq!(hits[2].on_connection, 0, "and again on a new one");

    // A POST on a connection that turns out stale may have been processed: not repeated.
    let error = transport
        .send(request(&server, reqwest::Method::POST))
        .await
        .expect_err("a non-idempotent request is not sent twice");
    assert!(error.is_retryable(), "{error:?}");
    let posts = server
        .hits()
        .iter()
        .filter(|hit| hit.method == "POST")
        .count();
    assert_eq!(posts, 1);
}

/// A server that closes idle keep-alive connections after 20 ms: a request sent after that,
/// even a `POST`, goes out on a new connection and succeeds, exactly once. Nothing was sent on
/// the closed connection, so nothing needs repeating.
#[tokio::test]
async fn idle_connections_closed_by_the_server_are_not_reused() {
    let server = ScriptedServer::builder()
        .close_idle_after(Duration::from_millis(20))
        .start(|hit| dataset_page(hit, RECORDS));
    let transport = transport(&server, 1);
    let first = transport
        .send(request(&server, reqwest::Method::GET))
        .await
        .expect("first request");
    assert_eq!(first.status, 200);
    // Wait for the event itself: the server closing the idle connection.
    assert!(
        sluice_tests::wait::until_async(Duration::from_secs(10), || server.connections_closed()
            >= 1)
        .await,
        "the server never closed the idle connection"
    );
    // The server's FIN is in this client's socket now, but the client's connection task runs
    // on this same single-threaded runtime: it must be polled to read the FIN and take the
    // connection out of the pool. The first yield lets the runtime poll its I/O driver (which
    // wakes that task); the next ones let the task run before this one sends again.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    let second = transport
        .send(request(&server, reqwest::Method::POST))
        .await
        .expect("a POST after the server closed the idle connection");
    assert_eq!(second.status, 200);
    let hits = server.hits();
    assert_eq!(hits.len(), 2, "each request exactly once");
    assert_ne!(hits[0].connection, hits[1].connection);
    assert_eq!(transport.stats().retries, 0);
}

// ---------------------------------------------------------------------------------------------
// The closing scenario of issue 3.

/// A server that answers every third request with 429 (the first one also saying "0 left,
/// reset in 1 s") and two pages with bursts of 503: every record arrives exactly once, and the
/// run summary accounts for every request, retry, 429 and millisecond waited.
#[test]
fn every_third_request_429_and_503_bursts_deliver_every_record_once() {
    const TOTAL: u64 = 100;
    // Non-429 answers so far per page offset.
    let answered: std::sync::Mutex<std::collections::HashMap<u64, u32>> = Default::default();
    let server = ScriptedServer::start(move |hit| {
        if hit.index % 3 == 2 {
            let reply = Reply::new(429, &[], poison_bytes());
            return if hit.index == 2 {
                reply
                    .with_header("x-ratelimit-remaining", "0")
                    .with_header("x-ratelimit-reset", "1")
            } else {
                reply
            };
        }
        let mut answered = answered.lock().expect("lock");
        let count = answered.entry(offset(hit)).or_default();
        *count += 1;
        // Pages at offsets 30 and 70: their first two non-429 answers are 503s.
        if matches!(offset(hit), 30 | 70) && *count <= 2 {
            return Reply::new(503, &[("retry-after", "0")], poison_bytes());
        }
        dataset_page(hit, TOTAL)
    });

    let ws = Workspace::new();
    let mut http = fast_http();
    http["retry"] = json!({ "max_attempts": 8, "base_delay_ms": 20, "max_delay_ms": 100 });
    let summary = run_ok(&ws, &connection(&server, http, false));
    eprintln!(
        "run summary:\n{}",
        serde_json::to_string_pretty(&summary).expect("json")
    );
    assert_exactly_once(&ws, TOTAL);

    let hits = server.hits();
    let pages = TOTAL / PAGE + 1;
    let statuses_429 = hits.iter().filter(|hit| hit.index % 3 == 2).count() as u64;
    let http = &summary["http"];
    assert_eq!(http["requests_sent"], hits.len() as u64, "{summary}");
    assert_eq!(http["retries"], hits.len() as u64 - pages, "{summary}");
    assert_eq!(http["rate_limited"], statuses_429, "{summary}");
    assert_eq!(
        retries_for(&summary, "status_429"),
        statuses_429,
        "{summary}"
    );
    assert_eq!(
        retries_for(&summary, "status_429") + retries_for(&summary, "status_503"),
        http["retries"].as_u64().unwrap_or(0),
        "{summary}"
    );
    assert_eq!(retries_for(&summary, "status_503"), 4, "{summary}");
    assert_eq!(http["rate_limit_waits"], 1, "{summary}");
    assert!(
        http["rate_limit_wait_ms"].as_u64().unwrap_or(0) >= 900,
        "{summary}"
    );
    assert!(
        http["waited_ms"].as_u64().unwrap_or(0) > http["rate_limit_wait_ms"].as_u64().unwrap_or(0),
        "{summary}"
    );
    assert_eq!(summary["streams"][0]["records"], TOTAL, "{summary}");
    assert_eq!(summary["streams"][0]["requests"], pages, "{summary}");
}
