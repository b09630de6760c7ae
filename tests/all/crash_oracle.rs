//! An exactly-once oracle under SIGKILL, for every pagination style and sync mode (issue 7,
//! point 2).
//!
//! For each pagination style (offset, page, cursor, link, keyset) and sync mode (full_refresh,
//! incremental, incremental_dedup), `sluice run` is started again and again against a mock of
//! [`RECORDS`] records and killed with SIGKILL at seeded random points; records are appended to
//! the source between runs; a final run is let finish. The oracle then compares the output with
//! the source ([`MockApi::records`]): every record of the source appears exactly once, in source
//! order, with the source's content. For full refresh (whose output is replaced by each complete
//! read) that is the current source; for the incremental modes it is every record the source
//! ever held (records are only ever appended, never changed, so the two coincide). For
//! `incremental_dedup`, `<stream>.latest.jsonl` also holds one line per id, the same records.
//!
//! A kill lands either "aligned" (request k of the run has reached the mock, which holds it
//! unanswered, plus a seeded jitter) or "unaligned" (every response is slightly delayed and the
//! kill comes a seeded instant after request k arrived, so it may hit a page being written or
//! its checkpoint being committed). After each kill a torn partial record is appended to the
//! output, as a crash in the middle of a write would leave it.
//!
//! Figures (kills, records, duplicates, losses, ...) are printed (see them with `--nocapture`)
//! and repeated in any failure message. `SLUICE_TEST_SEED=<n>` replays other kill points.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_tests::connection::{Connection, Style, incremental, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;
use sluice_tests::rng::SplitMix64;
use sluice_tests::wait;

use crate::{Workspace, sluice};

/// Records in the source at the start: 12 full pages.
const RECORDS: u64 = 120;
const PAGE_SIZE: u64 = 10;
/// Kill attempts per combination.
const KILLS: usize = 3;
/// Bound on waiting for a request or an exit (a guard against hangs, not a speed target).
const WAIT: Duration = Duration::from_secs(60);
/// Delay of every response during an unaligned kill.
const UNALIGNED_DELAY: Duration = Duration::from_millis(3);
/// The id of the torn record appended after each kill (never in the source).
const TORN_ID: u64 = 999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pagination {
    Style(Style),
    Keyset,
}

impl Pagination {
    const ALL: [Pagination; 5] = [
        Pagination::Style(Style::Offset),
        Pagination::Style(Style::Page),
        Pagination::Style(Style::Cursor),
        Pagination::Style(Style::Link),
        Pagination::Keyset,
    ];

    fn name(self) -> &'static str {
        match self {
            Pagination::Style(style) => style.name(),
            Pagination::Keyset => "keyset",
        }
    }

    /// The `items` stream, incremental on `/id` via `since_id` (the mode decides whether that
    /// is used).
    fn stream(self) -> Value {
        let stream = match self {
            Pagination::Style(style) => rest_stream("items", style, PAGE_SIZE),
            Pagination::Keyset => json!({
                "name": "items",
                "path": "/offset/items",
                "records": "/data",
                "primary_key": "/id",
                "pagination": {
                    "type": "keyset",
                    "param": "since_id",
                    "field": "/id",
                    "limit_param": "limit",
                    "page_size": PAGE_SIZE,
                },
            }),
        };
        incremental(stream, "/id", "since_id")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    FullRefresh,
    Incremental,
    IncrementalDedup,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::FullRefresh, Mode::Incremental, Mode::IncrementalDedup];

    fn name(self) -> &'static str {
        match self {
            Mode::FullRefresh => "full_refresh",
            Mode::Incremental => "incremental",
            Mode::IncrementalDedup => "incremental_dedup",
        }
    }
}

fn connection(mock: &MockApi, pagination: Pagination, mode: Mode) -> Connection {
    rest_connection(mock, vec![pagination.stream()]).set(
        "streams",
        "items",
        json!({ "sync_mode": mode.name() }),
    )
}

/// Totals over every combination.
#[derive(Debug, Default, Clone)]
struct Figures {
    combinations: usize,
    /// Runs killed while still running.
    kills: usize,
    /// Kill attempts that found the run already finished by itself.
    finished_first: usize,
    /// Runs let finish.
    complete_runs: usize,
    /// Records appended to sources between runs.
    appended: u64,
    /// Records in the sources at the end (what the outputs must hold).
    records: u64,
    /// Lines read from the outputs.
    output_lines: u64,
    /// Extra copies of a source record.
    duplicates: u64,
    /// Source records missing from the output.
    losses: u64,
    /// Lines that are not a source record (torn, unparsable, unknown id or altered content).
    foreign: u64,
    /// Outputs whose records are all there once but not in source order.
    misordered: u64,
    /// `latest.jsonl` files that are not one line per source record.
    latest_bad: u64,
    /// One line per combination that failed the oracle.
    failures: Vec<String>,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} combinations, {} kills ({} runs finished before the kill), {} complete runs, \
             {} records ({} appended), {} output lines, {} duplicates, {} losses, \
             {} foreign lines, {} misordered outputs, {} bad latest views",
            self.combinations,
            self.kills,
            self.finished_first,
            self.complete_runs,
            self.records,
            self.appended,
            self.output_lines,
            self.duplicates,
            self.losses,
            self.foreign,
            self.misordered,
            self.latest_bad,
        )
    }
}

/// What an output file holds compared with the source.
#[derive(Debug, Default)]
struct Check {
    lines: u64,
    duplicates: u64,
    losses: u64,
    foreign: u64,
    misordered: bool,
    /// Ids in output order (unparsable lines as `None`), for the failure message.
    ids: Vec<Option<u64>>,
}

impl Check {
    fn exact(&self) -> bool {
        self.duplicates == 0 && self.losses == 0 && self.foreign == 0 && !self.misordered
    }
}

/// Compares the JSONL `text` with `source`: each source record exactly once, with its content;
/// `ordered` also asks for source order.
fn check(text: &str, source: &[Value], ordered: bool) -> Check {
    let by_id: BTreeMap<u64, &Value> = source
        .iter()
        .map(|r| (r["id"].as_u64().expect("source ids are numbers"), r))
        .collect();
    let mut result = Check::default();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut kept = Vec::new();
    for line in text.split_inclusive('\n') {
        result.lines += 1;
        let record = line
            .strip_suffix('\n')
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        let id = record.as_ref().and_then(|r| r["id"].as_u64());
        result.ids.push(id);
        match (record, id) {
            (Some(record), Some(id)) if by_id.get(&id) == Some(&&record) => {
                *counts.entry(id).or_default() += 1;
                kept.push(id);
            }
            _ => result.foreign += 1,
        }
    }
    result.duplicates = counts.values().map(|n| n - 1).sum();
    result.losses = by_id.keys().filter(|id| !counts.contains_key(id)).count() as u64;
    if ordered && result.duplicates == 0 && result.losses == 0 {
        result.misordered = !kept.iter().copied().eq(by_id.keys().copied());
    }
    result
}

/// Simulates a write torn by the crash: a partial record after the last complete line.
fn tear_output(ws: &Workspace) {
    use std::io::Write as _;
    let file = ws.output_file("items");
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).expect("output directory");
    }
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&file)
        .unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
    write!(out, r#"{{"id": {TORN_ID}, "name": "torn wri"#).expect("append a torn record");
}

/// Complete lines in the output (what the last checkpoint may have committed, at most).
fn committed_lines(ws: &Workspace) -> u64 {
    std::fs::read(ws.output_file("items"))
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// One combination's run: kills, appends, a final run, and the oracle.
struct Trial<'a> {
    pagination: Pagination,
    mode: Mode,
    mock: MockApi,
    ws: Workspace,
    rng: &'a mut SplitMix64,
    figures: &'a mut Figures,
    /// Whether the last run finished (a full refresh then reads everything again).
    last_complete: bool,
    /// What happened, for the failure message.
    log: Vec<String>,
}

impl Trial<'_> {
    /// Requests a run will send at most, roughly: every page of the source for a full read,
    /// else the pages of what the output lacks.
    fn estimated_requests(&self) -> u64 {
        let source = self.mock.records().len() as u64;
        let to_read = if self.mode == Mode::FullRefresh && self.last_complete {
            source
        } else {
            source.saturating_sub(committed_lines(&self.ws))
        };
        to_read / PAGE_SIZE + 1
    }

    fn maybe_append(&mut self) {
        if self.rng.range(0, 3) == 0 {
            return;
        }
        let count = self.rng.range(1, 2 * PAGE_SIZE + 5);
        let ids = self.mock.append(count);
        self.figures.appended += count;
        self.log.push(format!(
            "append {}..={}",
            ids.first().expect("some"),
            ids.last().expect("some")
        ));
    }

    /// Starts a run and SIGKILLs it at a seeded point; a run that finishes first counts as
    /// complete.
    fn kill_attempt(&mut self) {
        let before = self.mock.request_count();
        let k = self.rng.range(1, self.estimated_requests().max(1) + 1);
        let target = before + usize::try_from(k).expect("small");
        let aligned = self.rng.range(0, 3) != 0;
        let jitter = Duration::from_millis(if aligned {
            self.rng.range(0, 20)
        } else {
            self.rng.range(0, 15)
        });
        if aligned {
            self.mock.hold_from(target);
        } else {
            self.mock.set_delay(UNALIGNED_DELAY);
        }
        let mut child = sluice().cmd(self.ws.run_args("rest")).spawn();
        let reached = wait::until(WAIT, || {
            self.mock.request_count() >= target || !child.is_running()
        });
        assert!(
            reached,
            "the sync neither sent request {target} nor exited (saw {})",
            self.mock.request_count()
        );
        wait::pause(jitter);
        let killed = child.kill();
        self.mock.release();
        self.mock.set_delay(Duration::ZERO);
        let how = if aligned { "aligned" } else { "unaligned" };
        match killed {
            Some(_) => {
                self.figures.kills += 1;
                self.last_complete = false;
                tear_output(&self.ws);
                self.log
                    .push(format!("kill {how} at request {k} of the run + {jitter:?}"));
            }
            None => {
                self.figures.finished_first += 1;
                self.last_complete = true;
                self.log.push(format!(
                    "run finished before the {how} kill at request {k} + {jitter:?}"
                ));
            }
        }
    }

    fn complete_run(&mut self) {
        let output = sluice().cmd(self.ws.run_args("rest")).output();
        output.assert_success();
        let summary: sluice_tests::cli::RunSummary = output.json();
        let stream = summary.stream("items");
        self.figures.complete_runs += 1;
        self.last_complete = true;
        self.log.push(format!(
            "complete run: start {}, {} records, {} requests",
            stream.start, stream.records, stream.requests
        ));
    }

    fn run(mut self) {
        self.ws
            .write(&connection(&self.mock, self.pagination, self.mode));
        // A first sync killed; then, after a complete sync, a second one (incremental or a
        // full re-read) killed and its resumption killed again; then the last run finishes.
        self.kill_attempt();
        self.complete_run();
        for _ in 1..KILLS {
            self.maybe_append();
            self.kill_attempt();
        }
        self.maybe_append();
        self.complete_run();
        self.verify();
    }

    fn verify(&mut self) {
        let name = format!("{} × {}", self.pagination.name(), self.mode.name());
        let source = self.mock.records();
        self.figures.combinations += 1;
        self.figures.records += source.len() as u64;
        let text = std::fs::read_to_string(self.ws.output_file("items")).unwrap_or_default();
        let output = check(&text, &source, true);
        self.figures.output_lines += output.lines;
        self.figures.duplicates += output.duplicates;
        self.figures.losses += output.losses;
        self.figures.foreign += output.foreign;
        self.figures.misordered += u64::from(output.misordered);
        let mut problems = Vec::new();
        if !output.exact() {
            problems.push(format!(
                "output: {} lines, {} duplicates, {} losses, {} foreign, misordered {}; ids {:?}",
                output.lines,
                output.duplicates,
                output.losses,
                output.foreign,
                output.misordered,
                output.ids
            ));
        }
        if self.mode == Mode::IncrementalDedup {
            let path = self.ws.output().join("items.latest.jsonl");
            let latest = std::fs::read_to_string(&path).unwrap_or_default();
            // One line per id; its order is the view's own business.
            let view = check(&latest, &source, false);
            if !view.exact() {
                self.figures.latest_bad += 1;
                problems.push(format!(
                    "latest view: {} lines, {} duplicates, {} losses, {} foreign; ids {:?}",
                    view.lines, view.duplicates, view.losses, view.foreign, view.ids
                ));
            }
        }
        println!(
            "  {name}: {} source records, {} output lines; {}",
            source.len(),
            output.lines,
            self.log.join(", ")
        );
        if !problems.is_empty() {
            self.figures.failures.push(format!(
                "{name} (source ids 1..={}): {}; runs: {}",
                source.len(),
                problems.join("; "),
                self.log.join(", ")
            ));
        }
    }
}

/// Every pagination style × sync mode, each killed [`KILLS`] times at seeded random points with
/// appends between runs; every source record must be in the final output exactly once.
#[test]
fn crash_oracle_every_style_and_mode() {
    let seed = SplitMix64::seed_from_env(0x0_7ac1e);
    let mut rng = SplitMix64::new(seed);
    let mut figures = Figures::default();
    let started = std::time::Instant::now();
    for pagination in Pagination::ALL {
        for mode in Mode::ALL {
            Trial {
                pagination,
                mode,
                mock: MockApi::start(RECORDS),
                ws: Workspace::new(),
                rng: &mut rng,
                figures: &mut figures,
                last_complete: false,
                log: Vec::new(),
            }
            .run();
        }
    }
    println!(
        "crash oracle (seed {seed:#x}, {:.1?}): {figures}",
        started.elapsed()
    );
    for failure in &figures.failures {
        println!("  FAILED {failure}");
    }
    assert!(
        figures.failures.is_empty()
            && figures.duplicates == 0
            && figures.losses == 0
            && figures.foreign == 0
            && figures.misordered == 0
            && figures.latest_bad == 0,
        "seed {seed:#x}: {figures}\n{}",
        figures.failures.join("\n")
    );
    assert!(
        figures.kills >= Pagination::ALL.len() * Mode::ALL.len(),
        "seed {seed:#x}: too few runs were actually killed to mean much: {figures}"
    );
}

/// The oracle itself sees each kind of damage.
#[test]
fn crash_oracle_check_counts_damage() {
    let source = sluice_tests::dataset::records(4);
    let line = |id: u64| format!("{}\n", sluice_tests::dataset::record(id));
    let exact: String = (1..=4).map(line).collect();
    assert!(check(&exact, &source, true).exact());

    let damaged = [line(1), line(2), line(2), line(4)].concat() + r#"{"id": 4, "na"#;
    let result = check(&damaged, &source, true);
    assert_eq!(
        (
            result.lines,
            result.duplicates,
            result.losses,
            result.foreign
        ),
        (5, 1, 1, 1),
        "{result:?}"
    );

    let altered = [line(1), line(2), line(3)].concat() + "{\"id\": 4}\n";
    let result = check(&altered, &source, true);
    assert_eq!((result.losses, result.foreign), (1, 1), "{result:?}");

    let swapped = [line(2), line(1), line(3), line(4)].concat();
    assert!(check(&swapped, &source, true).misordered);
    assert!(check(&swapped, &source, false).exact());
}
