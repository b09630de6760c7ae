//! Per tenant and connection counters of `sluice serve`, in the Prometheus text format.
//!
//! Counters are added to when a sync ends, from its [`RunSummary`]; gauges (running syncs,
//! queued syncs) are read from the scheduler when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::sync::RunSummary;

/// Error kinds that mean a limit was hit (the sandbox's, the sync's or the rate budget's).
const LIMIT_KINDS: &[&str] = &[
    "cpu_deadline_exceeded",
    "cpu_budget_exceeded",
    "memory_limit_exceeded",
    "stack_overflow",
    "boundary_limit_exceeded",
    "max_requests_per_sync",
    "max_sync_duration_secs",
    "max_records_per_page",
    "rate_limit_wait",
    "too_large",
];

/// What every sync of one connection added up to.
#[derive(Debug, Default, Clone)]
pub struct ConnectionMetrics {
    /// Syncs ended, by outcome (`succeeded`, `failed`, `stopped`, `cancelled`).
    pub syncs: BTreeMap<&'static str, u64>,
    /// Records written.
    pub records: u64,
    /// Requests sent (attempts, including retries).
    pub requests: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Responses with status 429.
    pub rate_limited: u64,
    /// Time spent waiting (rate limits and back-off), in milliseconds.
    pub waited_ms: u64,
    /// Time spent inside the guest, in milliseconds.
    pub guest_cpu_ms: u64,
    /// The most guest memory one sync held, in bytes.
    pub guest_memory_peak_bytes: u64,
    /// Streams that ended on a limit, by limit.
    pub limit_breaches: BTreeMap<&'static str, u64>,
}

impl ConnectionMetrics {
    /// Adds one ended sync: its outcome and, if it got that far, its summary.
    pub fn record(&mut self, outcome: &'static str, summary: Option<&RunSummary>) {
        *self.syncs.entry(outcome).or_default() += 1;
        let Some(summary) = summary else {
            return;
        };
        self.records += summary.streams.iter().map(|s| s.records).sum::<u64>();
        self.requests += summary.http.requests_sent;
        self.retries += summary.http.retries;
        self.rate_limited += summary.http.rate_limited;
        self.waited_ms += summary.http.waited_ms;
        for stream in &summary.streams {
            self.guest_cpu_ms += stream.guest_cpu_ms;
            self.guest_memory_peak_bytes = self
                .guest_memory_peak_bytes
                .max(stream.guest_memory_peak_bytes);
            if let Some(kind) = stream.error_kind.filter(|kind| is_limit(kind)) {
                *self.limit_breaches.entry(kind).or_default() += 1;
            }
        }
    }

    /// Adds a sync that failed before any stream ran, with the kind of its error.
    pub fn record_failure(&mut self, kind: &'static str) {
        *self.syncs.entry("failed").or_default() += 1;
        if is_limit(kind) {
            *self.limit_breaches.entry(kind).or_default() += 1;
        }
    }
}

fn is_limit(kind: &str) -> bool {
    LIMIT_KINDS.contains(&kind)
}

/// Gauges of one connection at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    /// 1 while a sync runs.
    pub running: u64,
    /// 1 while a sync waits for a slot.
    pub queued: u64,
}

/// Renders the metrics of every `(tenant, connection)` in the Prometheus text format.
pub fn render<'a>(
    connections: impl Iterator<Item = ((&'a str, &'a str), &'a ConnectionMetrics, Live)>,
) -> String {
    let rows: Vec<_> = connections.collect();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, values: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        values(&mut out);
    };
    let labels = |(tenant, connection): (&str, &str)| {
        format!("tenant=\"{tenant}\",connection=\"{connection}\"")
    };
    macro_rules! simple {
        ($name:literal, $kind:literal, $help:literal, |$m:ident, $live:ident| $value:expr) => {
            family($name, $kind, $help, &mut |out| {
                for (key, $m, $live) in &rows {
                    let _ = ($m, $live);
                    let _ = writeln!(out, "{}{{{}}} {}", $name, labels(*key), $value);
                }
            });
        };
    }
    family(
        "sluice_syncs_total",
        "counter",
        "Syncs ended, by outcome.",
        &mut |out| {
            for (key, metrics, _) in &rows {
                for outcome in ["succeeded", "failed", "stopped", "cancelled"] {
                    let count = metrics.syncs.get(outcome).copied().unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "sluice_syncs_total{{{},outcome=\"{outcome}\"}} {count}",
                        labels(*key)
                    );
                }
            }
        },
    );
    simple!(
        "sluice_records_total",
        "counter",
        "Records written.",
        |m, l| m.records
    );
    simple!(
        "sluice_requests_total",
        "counter",
        "HTTP attempts sent, retries included.",
        |m, l| m.requests
    );
    simple!(
        "sluice_retries_total",
        "counter",
        "HTTP attempts that were retries.",
        |m, l| m.retries
    );
    simple!(
        "sluice_rate_limited_total",
        "counter",
        "Responses with status 429.",
        |m, l| m.rate_limited
    );
    simple!(
        "sluice_wait_seconds_total",
        "counter",
        "Time spent waiting for rate limits and back-off.",
        |m, l| seconds(m.waited_ms)
    );
    simple!(
        "sluice_guest_cpu_seconds_total",
        "counter",
        "Time spent running connector code.",
        |m, l| seconds(m.guest_cpu_ms)
    );
    simple!(
        "sluice_guest_memory_peak_bytes",
        "gauge",
        "Most linear memory one sync's connector held.",
        |m, l| m.guest_memory_peak_bytes
    );
    simple!(
        "sluice_running_syncs",
        "gauge",
        "Syncs running now.",
        |m, l| l.running
    );
    simple!(
        "sluice_queued_syncs",
        "gauge",
        "Syncs waiting for a slot.",
        |m, l| l.queued
    );
    family(
        "sluice_limit_breaches_total",
        "counter",
        "Streams stopped by a limit, by limit.",
        &mut |out| {
            for (key, metrics, _) in &rows {
                for (limit, count) in &metrics.limit_breaches {
                    let _ = writeln!(
                        out,
                        "sluice_limit_breaches_total{{{},limit=\"{limit}\"}} {count}",
                        labels(*key)
                    );
                }
            }
        },
    );
    out
}

fn seconds(millis: u64) -> String {
    format!("{:.3}", millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_families() {
        let mut metrics = ConnectionMetrics::default();
        metrics.record("succeeded", None);
        metrics.record_failure("memory_limit_exceeded");
        let text = render(
            [(
                ("acme", "shop"),
                &metrics,
                Live {
                    running: 1,
                    queued: 0,
                },
            )]
            .into_iter(),
        );
        assert!(text.contains("# TYPE sluice_syncs_total counter"), "{text}");
        assert!(text.contains(
            "sluice_syncs_total{tenant=\"acme\",connection=\"shop\",outcome=\"failed\"} 1"
        ));
        assert!(text.contains(
            "sluice_limit_breaches_total{tenant=\"acme\",connection=\"shop\",limit=\"memory_limit_exceeded\"} 1"
        ));
        assert!(text.contains("sluice_running_syncs{tenant=\"acme\",connection=\"shop\"} 1"));
    }
}
