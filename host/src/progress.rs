//! Live progress of a run, as events for whoever displays it.
//!
//! The sync loop and the transport report what they do to an optional [`ProgressSink`]
//! ([`crate::sync::RunOptions::progress`]); the library itself draws nothing. The CLI shows the
//! events as live bars on a terminal ([`terminal::Bars`]) and as [`PlainLines`] (a line per
//! stream at most every few seconds, through `tracing`) otherwise.
//!
//! Streams run one after the other, so events without a stream (waits, retries, which come from
//! the connection's shared transport) belong to the stream that started last.

pub mod terminal;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `tracing` target of the plain progress lines (shown at the default verbosity).
pub const TARGET: &str = "sluice::progress";

/// Why a run is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason<'a> {
    /// The upstream host said to wait (`Retry-After`, or no requests left until a reset).
    RateLimited,
    /// The rate-limit quota in force for the host (configured, suggested or advertised).
    Quota,
    /// Waiting before retrying a failed attempt; `cause` as in the transport's statistics
    /// (`status_503`, `timeout`, ...).
    Retry {
        /// Why the attempt is retried.
        cause: &'a str,
    },
    /// The connector asked to back off.
    BackOff,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A stream's sync began.
    StreamStarted {
        /// The stream.
        stream: &'a str,
    },
    /// A page of a stream was committed; the counts are the stream's totals in this run.
    PageCommitted {
        /// The stream.
        stream: &'a str,
        /// New records written in this run.
        records: u64,
        /// Pages committed in this run.
        pages: u64,
    },
    /// Nothing is sent until `until`.
    Waiting {
        /// The upstream host waited for; `None` for a connector's back-off.
        host: Option<&'a str>,
        /// Why.
        reason: WaitReason<'a>,
        /// When the wait ends.
        until: Instant,
    },
    /// A request is sent again.
    Retry {
        /// The upstream host.
        host: &'a str,
        /// Why (see [`WaitReason::Retry`]).
        cause: &'a str,
    },
    /// A stream's sync ended, with its error if it failed.
    StreamFinished {
        /// The stream.
        stream: &'a str,
        /// New records written in this run.
        records: u64,
        /// Pages committed in this run.
        pages: u64,
        /// Why it failed, if it did.
        error: Option<&'a str>,
    },
}

/// Receives a run's progress events. Called from the sync loop and the transport: it must be
/// quick and must not block.
pub trait ProgressSink: fmt::Debug + Send + Sync {
    /// Takes in one event.
    fn event(&self, event: &Event<'_>);
}

/// A shared progress sink, as [`crate::sync::RunOptions`] and the transport hold it.
pub type SharedProgress = Arc<dyn ProgressSink>;

/// "rate limited by api.github.com, resuming in 41 s".
pub fn describe_wait(host: Option<&str>, reason: &WaitReason<'_>, remaining: Duration) -> String {
    let host = host.unwrap_or("the upstream host");
    let why = match reason {
        WaitReason::RateLimited => format!("rate limited by {host}"),
        WaitReason::Quota => format!("keeping to the rate limit of {host}"),
        WaitReason::Retry { cause } => format!("retrying {host} after {cause}"),
        WaitReason::BackOff => "the connector asked to back off".to_owned(),
    };
    let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
    format!("{why}, resuming in {secs} s")
}

/// What is known of one stream's progress.
#[derive(Debug, Clone)]
struct StreamState {
    name: String,
    started: Instant,
    records: u64,
    pages: u64,
    retries: u64,
    /// `Some(error)` once finished (`None` inside: succeeded).
    finished: Option<Option<String>>,
    finished_at: Option<Instant>,
}

/// The current wait, owned.
#[derive(Debug, Clone)]
struct Wait {
    host: Option<String>,
    reason: OwnedReason,
    until: Instant,
}

#[derive(Debug, Clone)]
enum OwnedReason {
    RateLimited,
    Quota,
    Retry(String),
    BackOff,
}

impl OwnedReason {
    fn new(reason: &WaitReason<'_>) -> Self {
        match reason {
            WaitReason::RateLimited => Self::RateLimited,
            WaitReason::Quota => Self::Quota,
            WaitReason::Retry { cause } => Self::Retry((*cause).to_owned()),
            WaitReason::BackOff => Self::BackOff,
        }
    }

    fn borrow(&self) -> WaitReason<'_> {
        match self {
            Self::RateLimited => WaitReason::RateLimited,
            Self::Quota => WaitReason::Quota,
            Self::Retry(cause) => WaitReason::Retry { cause },
            Self::BackOff => WaitReason::BackOff,
        }
    }
}

/// The progress of every stream so far, as both displays keep it.
#[derive(Debug, Default)]
struct Tracker {
    streams: Vec<StreamState>,
    wait: Option<Wait>,
}

impl Tracker {
    /// Takes in `event`; returns the index of the stream it concerns, if any.
    fn apply(&mut self, event: &Event<'_>, now: Instant) -> Option<usize> {
        match *event {
            Event::StreamStarted { stream } => {
                self.wait = None;
                self.streams.push(StreamState {
                    name: stream.to_owned(),
                    started: now,
                    records: 0,
                    pages: 0,
                    retries: 0,
                    finished: None,
                    finished_at: None,
                });
                Some(self.streams.len() - 1)
            }
            Event::PageCommitted {
                stream,
                records,
                pages,
            } => {
                let index = self.index(stream)?;
                let state = &mut self.streams[index];
                state.records = records;
                state.pages = pages;
                Some(index)
            }
            Event::Waiting {
                host,
                ref reason,
                until,
            } => {
                self.wait = Some(Wait {
                    host: host.map(str::to_owned),
                    reason: OwnedReason::new(reason),
                    until,
                });
                self.current()
            }
            Event::Retry { .. } => {
                let index = self.current()?;
                self.streams[index].retries += 1;
                Some(index)
            }
            Event::StreamFinished {
                stream,
                records,
                pages,
                error,
            } => {
                self.wait = None;
                let index = self.index(stream)?;
                let state = &mut self.streams[index];
                state.records = records;
                state.pages = pages;
                state.finished = Some(error.map(str::to_owned));
                state.finished_at = Some(now);
                Some(index)
            }
        }
    }

    fn index(&self, stream: &str) -> Option<usize> {
        self.streams.iter().rposition(|state| state.name == stream)
    }

    /// The stream that started last, while it runs.
    fn current(&self) -> Option<usize> {
        let index = self.streams.len().checked_sub(1)?;
        self.streams[index].finished.is_none().then_some(index)
    }

    /// The wait in force at `now`, described.
    fn wait_at(&self, now: Instant) -> Option<String> {
        let wait = self.wait.as_ref().filter(|wait| wait.until > now)?;
        Some(describe_wait(
            wait.host.as_deref(),
            &wait.reason.borrow(),
            wait.until - now,
        ))
    }

    /// "1200 records, 12 pages, 85 records/s, 2 retries, rate limited by ..., resuming in 4 s".
    fn describe(&self, index: usize, now: Instant) -> String {
        let state = &self.streams[index];
        let end = state.finished_at.unwrap_or(now);
        let elapsed = end.saturating_duration_since(state.started);
        let mut parts = vec![plural(state.records, "record"), plural(state.pages, "page")];
        if elapsed >= Duration::from_millis(100) {
            parts.push(format!(
                "{:.0} records/s",
                state.records as f64 / elapsed.as_secs_f64()
            ));
        }
        if state.retries > 0 {
            parts.push(plural(state.retries, "retry"));
        }
        if state.finished.is_none()
            && self.current() == Some(index)
            && let Some(wait) = self.wait_at(now)
        {
            parts.push(wait);
        }
        let counts = parts.join(", ");
        match &state.finished {
            None => counts,
            Some(None) => format!("done in {:.1} s: {counts}", elapsed.as_secs_f64()),
            Some(Some(error)) => format!("failed after {counts}: {error}"),
        }
    }
}

fn plural(count: u64, noun: &str) -> String {
    match (count, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "retry") => format!("{count} retries"),
        _ => format!("{count} {noun}s"),
    }
}

/// Progress as plain log lines (`info` on the [`TARGET`] target): for each stream, a line at
/// most every `interval` while it runs, one for a wait of at least `interval`, and one when it
/// ends.
#[derive(Debug)]
pub struct PlainLines {
    interval: Duration,
    state: Mutex<PlainState>,
}

#[derive(Debug, Default)]
struct PlainState {
    tracker: Tracker,
    /// When each stream (by index) last had a line.
    last_line: Vec<Instant>,
}

impl PlainLines {
    /// Lines at most every `interval` per running stream.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(PlainState::default()),
        }
    }

    /// Takes in `event` at `now`; returns the line to log, if one is due.
    pub fn line_at(&self, event: &Event<'_>, now: Instant) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let PlainState { tracker, last_line } = &mut *state;
        let index = tracker.apply(event, now)?;
        if last_line.len() <= index {
            last_line.resize(index + 1, now);
        }
        let due = match event {
            Event::StreamStarted { .. } | Event::Retry { .. } => false,
            Event::PageCommitted { .. } => {
                now.saturating_duration_since(last_line[index]) >= self.interval
            }
            Event::Waiting { until, .. } => until.saturating_duration_since(now) >= self.interval,
            Event::StreamFinished { .. } => true,
        };
        if !due {
            return None;
        }
        last_line[index] = now;
        let name = &tracker.streams[index].name;
        Some(format!("stream `{name}`: {}", tracker.describe(index, now)))
    }
}

impl ProgressSink for PlainLines {
    fn event(&self, event: &Event<'_>) {
        if let Some(line) = self.line_at(event, Instant::now()) {
            tracing::info!(target: TARGET, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn page(stream: &str, records: u64, pages: u64) -> Event<'_> {
        Event::PageCommitted {
            stream,
            records,
            pages,
        }
    }

    #[test]
    fn progress_lines_are_periodic_per_stream_and_final() {
        let sink = PlainLines::new(INTERVAL);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(
            sink.line_at(&Event::StreamStarted { stream: "issues" }, at(0)),
            None
        );
        assert_eq!(sink.line_at(&page("issues", 100, 1), at(1)), None);
        assert_eq!(
            sink.line_at(&page("issues", 500, 5), at(5)).as_deref(),
            Some("stream `issues`: 500 records, 5 pages, 100 records/s")
        );
        // Not again before another interval has passed.
        assert_eq!(sink.line_at(&page("issues", 600, 6), at(6)), None);
        assert_eq!(
            sink.line_at(
                &Event::Retry {
                    host: "api.github.com",
                    cause: "status_503"
                },
                at(7)
            ),
            None
        );
        assert_eq!(
            sink.line_at(&page("issues", 1000, 10), at(10)).as_deref(),
            Some("stream `issues`: 1000 records, 10 pages, 100 records/s, 1 retry")
        );
        assert_eq!(
            sink.line_at(
                &Event::StreamFinished {
                    stream: "issues",
                    records: 1001,
                    pages: 11,
                    error: None
                },
                at(11)
            )
            .as_deref(),
            Some("stream `issues`: done in 11.0 s: 1001 records, 11 pages, 91 records/s, 1 retry")
        );
    }

    #[test]
    fn progress_lines_name_long_waits_and_failures() {
        let sink = PlainLines::new(INTERVAL);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        sink.line_at(&Event::StreamStarted { stream: "pulls" }, at(0));
        // A short wait is no line of its own ...
        let short = Event::Waiting {
            host: Some("api.github.com"),
            reason: WaitReason::Quota,
            until: at(1),
        };
        assert_eq!(sink.line_at(&short, at(0)), None);
        // ... a long one is, at once.
        let long = Event::Waiting {
            host: Some("api.github.com"),
            reason: WaitReason::RateLimited,
            until: at(42),
        };
        assert_eq!(
            sink.line_at(&long, at(1)).as_deref(),
            Some(
                "stream `pulls`: 0 records, 0 pages, 0 records/s, \
                 rate limited by api.github.com, resuming in 41 s"
            )
        );
        // The wait shows in the periodic line while it lasts.
        assert_eq!(
            sink.line_at(&page("pulls", 0, 1), at(40)).as_deref(),
            Some(
                "stream `pulls`: 0 records, 1 page, 0 records/s, \
                 rate limited by api.github.com, resuming in 2 s"
            )
        );
        assert_eq!(
            sink.line_at(
                &Event::StreamFinished {
                    stream: "pulls",
                    records: 0,
                    pages: 1,
                    error: Some("HTTP 500")
                },
                at(43)
            )
            .as_deref(),
            Some("stream `pulls`: failed after 0 records, 1 page, 0 records/s: HTTP 500")
        );
    }

    #[test]
    fn progress_waits_are_described_with_their_cause() {
        let secs = Duration::from_millis(40_200);
        assert_eq!(
            describe_wait(Some("api.github.com"), &WaitReason::RateLimited, secs),
            "rate limited by api.github.com, resuming in 41 s"
        );
        assert_eq!(
            describe_wait(
                Some("h"),
                &WaitReason::Retry {
                    cause: "status_503"
                },
                secs
            ),
            "retrying h after status_503, resuming in 41 s"
        );
        assert_eq!(
            describe_wait(None, &WaitReason::BackOff, Duration::from_secs(3)),
            "the connector asked to back off, resuming in 3 s"
        );
    }
}
