//! Exactly-once output across crashes: `sluice run` is killed with SIGKILL in the middle of a
//! sync, run again, and the output file must be byte-identical to that of an uninterrupted run.
//!
//! A kill "after k pages" happens once request k + 1 has reached the mock, which holds it
//! unanswered, plus a seeded jitter. Pages 1..k were answered then, and 1..k-2 committed; pages
//! k - 1 and k may still be committing, as the sync fetches the next page while it writes one and
//! flushes the checkpoint of the one before. So a resume fetches the pages after k again, and
//! pages k - 1 and k too if their commits had not finished. Another test kills at unaligned random instants instead. After each kill a torn partial record
//! is appended to the output, as a crash in the middle of a write would leave it.

use std::time::Duration;

use serde_json::json;

use sluice_tests::connection::{Style, incremental, rest_connection, rest_stream};
use sluice_tests::dataset;
use sluice_tests::mock::MockApi;
use sluice_tests::rng::SplitMix64;
use sluice_tests::wait;

use crate::{Workspace, sluice};

/// 15 pages of 10, the last one short.
const RECORDS: u64 = 147;
const PAGE_SIZE: u64 = 10;
const PAGES: u64 = 15;
/// Bound on waiting for the mock to see a request (a guard against hangs, not a speed target).
const WAIT: Duration = Duration::from_secs(60);

fn connection(mock: &MockApi, style: Style) -> sluice_tests::connection::Connection {
    rest_connection(mock, vec![rest_stream("items", style, PAGE_SIZE)])
}

/// The output of an uninterrupted sync of `style`.
fn reference_output(style: Style) -> Vec<u8> {
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&connection(&mock, style));
    let summary = ws.run("rest");
    assert_eq!(summary.stream("items").records, RECORDS, "{summary:?}");
    let bytes = std::fs::read(ws.output_file("items")).expect("reference output");
    assert_eq!(
        dataset::ids(&ws.records("items")),
        (1..=RECORDS).collect::<Vec<_>>()
    );
    bytes
}

/// Starts `sluice run` and SIGKILLs it after `pages` more pages were answered, while the mock
/// holds the next request unanswered (so the kill lands at a known point whatever the load).
fn kill_after(ws: &Workspace, mock: &MockApi, pages: u64, jitter: Duration) {
    let before = mock.request_count();
    let target = before + usize::try_from(pages).expect("small") + 1;
    mock.hold_from(target);
    let child = sluice().cmd(ws.run_args("rest")).spawn();
    assert!(
        mock.wait_for_requests(target, WAIT),
        "the sync never sent request {target} (saw {})",
        mock.request_count()
    );
    wait::pause(jitter);
    let killed = child.kill();
    mock.release();
    assert!(
        killed.is_some(),
        "the sync finished by itself before it could be killed"
    );
    tear_output(ws);
}

/// Simulates a write torn by the crash: a partial record after the last complete line. The
/// next run must cut the file back to its last checkpoint, so this never reaches the output.
fn tear_output(ws: &Workspace) {
    use std::io::Write as _;
    let file = ws.output_file("items");
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&file)
        .unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
    out.write_all(br#"{"id": 999999, "name": "torn wri"#)
        .expect("append a torn record");
}

/// Runs the interrupted sync to completion and checks it resumed where it stopped: it fetches
/// the `pages_left` pages after the last answered one, plus at most `committing` pages whose
/// commit may still have been running at a kill (two per kill).
fn resume(ws: &Workspace, mock: &MockApi, pages_left: u64, committing: u64) {
    let before = mock.request_count();
    let summary = ws.run("rest");
    let stream = summary.stream("items");
    assert_eq!(stream.start, "resumed", "{summary:?}");
    let allowed = pages_left..=pages_left + committing;
    assert!(
        allowed.contains(&stream.requests),
        "only the pages after the last checkpoint are fetched again ({allowed:?}): {summary:?}"
    );
    assert_eq!(
        (mock.request_count() - before) as u64,
        stream.requests,
        "requests the mock saw while resuming"
    );
}

fn crash_and_resume(style: Style, pages_done: u64, jitter: Duration) {
    let reference = reference_output(style);
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&connection(&mock, style));

    kill_after(&ws, &mock, pages_done, jitter);
    resume(&ws, &mock, PAGES - pages_done, 2);

    let output = std::fs::read(ws.output_file("items")).expect("output");
    assert!(
        output == reference,
        "output after kill at page {pages_done} + resume differs from an uninterrupted run \
         ({} vs {} bytes); ids: {:?}",
        output.len(),
        reference.len(),
        dataset::ids(&ws.records("items"))
    );
}

#[test]
fn crash_resume_after_1_page() {
    crash_and_resume(Style::Offset, 1, Duration::ZERO);
}

#[test]
fn crash_resume_after_3_pages() {
    crash_and_resume(Style::Cursor, 3, Duration::from_millis(10));
}

#[test]
fn crash_resume_after_7_pages() {
    crash_and_resume(Style::Link, 7, Duration::from_millis(25));
}

/// With `[checkpoint] every_pages = 4`, a kill after 6 pages finds pages 1..=4 committed (the
/// commit at page 8 is not due yet), or none if the flush of page 4's checkpoint was still
/// running: the resume fetches everything after page 4 (or all) again, and the output is still
/// that of an uninterrupted run.
#[test]
fn crash_resume_with_a_commit_every_4_pages() {
    let reference = reference_output(Style::Offset);
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&connection(&mock, Style::Offset).set("checkpoint", "every_pages", json!(4)));

    kill_after(&ws, &mock, 6, Duration::from_millis(20));
    resume(&ws, &mock, PAGES - 4, 4);

    let output = std::fs::read(ws.output_file("items")).expect("output");
    assert!(
        output == reference,
        "output differs from an uninterrupted run; ids: {:?}",
        dataset::ids(&ws.records("items"))
    );
}

/// Two kills at seeded random points of one sync (the second during the resumed run), then a
/// run to completion. Set `SLUICE_TEST_SEED` to replay another sequence.
#[test]
fn crash_resume_at_seeded_random_points() {
    let seed = SplitMix64::seed_from_env(0x5eed_cafe);
    let mut rng = SplitMix64::new(seed);
    let styles = [Style::Offset, Style::Page, Style::Cursor, Style::Link];
    let style = styles[usize::try_from(rng.range(0, styles.len() as u64)).expect("small")];
    let first = rng.range(1, PAGES - 2);
    let second = rng.range(first + 1, PAGES);
    let jitters = [rng.range(0, 50), rng.range(0, 50)].map(Duration::from_millis);
    eprintln!(
        "seed {seed:#x}: {style:?}, kills after pages {first} and {second}, jitters {jitters:?}"
    );

    let reference = reference_output(style);
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&connection(&mock, style));

    kill_after(&ws, &mock, first, jitters[0]);
    // The resumed run re-sends request `first + 1` (or `first - 1` or `first`, if those pages'
    // commits had not finished), so it has answered `second - first` pages when request
    // `second + 1` (or one or two before it) arrives.
    kill_after(&ws, &mock, second - first, jitters[1]);
    resume(&ws, &mock, PAGES - second, 4);

    let output = std::fs::read(ws.output_file("items")).expect("output");
    assert!(
        output == reference,
        "seed {seed:#x}: output differs from an uninterrupted run; ids: {:?}",
        dataset::ids(&ws.records("items"))
    );
}

/// A crash during an incremental (second) sync resumes it; records of the first sync stay, the
/// new ones are appended exactly once.
#[test]
fn crash_resume_during_incremental_sync() {
    let mock = MockApi::start(60);
    let ws = Workspace::new();
    let stream = incremental(
        rest_stream("items", Style::Offset, PAGE_SIZE),
        "/id",
        "since_id",
    );
    ws.write(&rest_connection(&mock, vec![stream]));
    let first = ws.run("rest");
    assert_eq!(first.stream("items").records, 60, "{first:?}");

    mock.append(RECORDS - 60); // 87 new records: 9 pages, the last short
    kill_after(&ws, &mock, 4, Duration::from_millis(5));
    resume(&ws, &mock, 9 - 4, 2);
    assert!(
        mock.requests()
            .iter()
            .skip(first.requests as usize)
            .all(|r| r.query_param("since_id") == Some("60")),
        "the resumed incremental sync keeps the cursor it started from"
    );
    assert_eq!(
        ws.records("items"),
        dataset::records(RECORDS),
        "every record exactly once, in order"
    );
}

/// Kills that are not aligned to requests: at seeded random instants, so some land while a page
/// is being written or its checkpoint committed. Whatever the instant, the final output is that
/// of an uninterrupted run.
#[test]
fn crash_resume_at_unaligned_instants() {
    let seed = SplitMix64::seed_from_env(0x0dd_1a7e);
    let mut rng = SplitMix64::new(seed);
    let reference = reference_output(Style::Offset);
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&connection(&mock, Style::Offset));
    // Short enough that a good share of the run is spent writing and committing pages.
    mock.set_delay(Duration::from_millis(3));

    let mut kills = Vec::new();
    for _ in 0..4 {
        let before = mock.request_count();
        let child = sluice().cmd(ws.run_args("rest")).spawn();
        let target = before + 1 + usize::try_from(rng.range(0, 3)).expect("small");
        let saw = mock.wait_for_requests(target, WAIT);
        let pause = Duration::from_millis(rng.range(0, 30));
        wait::pause(pause);
        match child.kill() {
            Some(_) => kills.push((target - before, pause)),
            // It finished first: nothing left to interrupt.
            None => break,
        }
        assert!(saw, "the sync never sent request {target}");
    }
    eprintln!("seed {seed:#x}: killed after (requests seen, pause): {kills:?}");

    mock.set_delay(Duration::ZERO);
    let summary = ws.run("rest");
    assert_ne!(summary.stream("items").start, "incremental", "{summary:?}");
    let output = std::fs::read(ws.output_file("items")).expect("output");
    assert!(
        output == reference,
        "seed {seed:#x}: output differs from an uninterrupted run; ids: {:?}",
        dataset::ids(&ws.records("items"))
    );
}
