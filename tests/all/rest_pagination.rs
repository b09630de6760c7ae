//! The bundled `rest` connector reads every pagination style of the mock API completely: the
//! output is the dataset exactly (ids in order, no duplicate, no gap) and the number of requests
//! is the number of pages.

use sluice_tests::connection::{Style, rest_connection, rest_stream};
use sluice_tests::dataset;
use sluice_tests::mock::{self, MockApi};

use crate::Workspace;

/// Not a multiple of the page size, so the last page is short.
const RECORDS: u64 = 253;
const PAGE_SIZE: u64 = 20;

fn full_sync(style: Style, records: u64, page_size: u64) {
    let mock = MockApi::start(records);
    let ws = Workspace::new();
    let stream = style.name();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream(stream, style, page_size)],
    ));

    let summary = ws.run("rest");

    let expected_requests = style.expected_requests(records, page_size);
    let summary_stream = summary.stream(stream);
    assert_eq!(summary_stream.start, "fresh", "{summary:?}");
    assert_eq!(summary_stream.records, records, "{summary:?}");
    assert_eq!(summary_stream.requests, expected_requests, "{summary:?}");
    assert_eq!(summary.requests, expected_requests, "{summary:?}");
    assert_eq!(
        std::path::Path::new(&summary_stream.output),
        ws.output_file(stream)
    );

    let written = ws.records(stream);
    assert_eq!(
        dataset::ids(&written),
        (1..=records).collect::<Vec<_>>(),
        "ids must be exactly 1..={records} in order"
    );
    assert_eq!(
        written,
        dataset::records(records),
        "records must be unchanged"
    );

    let log = mock.requests();
    assert_eq!(
        log.len() as u64,
        expected_requests,
        "requests seen by the mock"
    );
    assert_eq!(
        mock::paths(&log).get(style.path().as_str()).copied(),
        Some(log.len()),
        "every request goes to the stream's path"
    );
    assert!(log.iter().all(|r| r.method == "GET"));
    assert_each_page_once(&log);
}

/// Each page is requested once: no request repeats.
fn assert_each_page_once(log: &[mock::LoggedRequest]) {
    let mut queries: Vec<&str> = log.iter().map(|r| r.raw_query.as_str()).collect();
    queries.sort_unstable();
    queries.dedup();
    assert_eq!(
        queries.len(),
        log.len(),
        "a page was requested twice: {log:?}"
    );
}

#[test]
fn rest_offset_pagination() {
    full_sync(Style::Offset, RECORDS, PAGE_SIZE);
}

#[test]
fn rest_page_number_pagination() {
    full_sync(Style::Page, RECORDS, PAGE_SIZE);
}

#[test]
fn rest_cursor_pagination() {
    full_sync(Style::Cursor, RECORDS, PAGE_SIZE);
}

#[test]
fn rest_link_header_pagination() {
    full_sync(Style::Link, RECORDS, PAGE_SIZE);
}

#[test]
fn rest_no_pagination() {
    full_sync(Style::None, RECORDS, PAGE_SIZE);
}

/// When the last page is exactly full, the styles that stop on a short page need one more
/// (empty) request; the ones with an explicit "next" do not.
#[test]
fn rest_exactly_full_last_page() {
    for style in [Style::Offset, Style::Cursor, Style::Link] {
        full_sync(style, 60, PAGE_SIZE);
    }
}

#[test]
fn rest_empty_dataset() {
    for style in [Style::Offset, Style::Link, Style::None] {
        let mock = MockApi::start(0);
        let ws = Workspace::new();
        ws.write(&rest_connection(
            &mock,
            vec![rest_stream("empty", style, PAGE_SIZE)],
        ));
        let summary = ws.run("rest");
        assert_eq!(summary.stream("empty").records, 0, "{style:?}");
        assert_eq!(summary.stream("empty").requests, 1, "{style:?}");
        assert_eq!(
            std::fs::read(ws.output_file("empty")).unwrap_or_default(),
            b"",
            "{style:?}"
        );
    }
}

/// Several streams in one connection are all synced, each into its own file, and `--stream`
/// selects among them.
#[test]
fn rest_several_streams_and_stream_selection() {
    let mock = MockApi::start(45);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![
            rest_stream("by_offset", Style::Offset, 10),
            rest_stream("by_cursor", Style::Cursor, 10),
        ],
    ));
    let mut args = ws.run_args("rest");
    args.extend(["--stream".to_owned(), "by_cursor".to_owned()]);
    let output = crate::sluice().run(&args);
    output.assert_success();
    let summary: sluice_tests::cli::RunSummary = output.json();
    assert_eq!(summary.streams.len(), 1, "{summary:?}");
    assert_eq!(summary.stream("by_cursor").records, 45);
    assert!(!ws.output_file("by_offset").exists());
    assert!(mock.requests().iter().all(|r| r.path == "/cursor/items"));

    let summary = ws.run("rest");
    assert_eq!(summary.stream("by_offset").records, 45);
    assert_eq!(
        dataset::ids(&ws.records("by_offset")),
        (1..=45).collect::<Vec<_>>()
    );
}

/// With `[sync] concurrent_streams = 3`, three streams are in flight at once: the mock holds
/// every request unanswered until all three first requests have arrived (one after the other,
/// the second could never start). Each stream then completes into its own file.
#[test]
fn concurrent_streams_are_in_flight_at_once() {
    let mock = MockApi::start(45);
    let ws = Workspace::new();
    let styles = [Style::Offset, Style::Page, Style::Cursor];
    let streams = styles
        .iter()
        .enumerate()
        .map(|(i, style)| rest_stream(&format!("s{i}"), *style, 10))
        .collect();
    ws.write(&rest_connection(&mock, streams).set(
        "sync",
        "concurrent_streams",
        serde_json::json!(3),
    ));
    mock.hold_from(1);
    let child = crate::sluice().cmd(ws.run_args("rest")).spawn();
    let all_in_flight = mock.wait_for_requests(3, std::time::Duration::from_secs(60));
    mock.release();
    let output = child.wait();
    assert!(
        all_in_flight,
        "only {} request(s) arrived while the first was held",
        mock.request_count()
    );
    output.assert_success();
    let summary: sluice_tests::cli::RunSummary = output.json();
    for i in 0..styles.len() {
        let name = format!("s{i}");
        assert_eq!(summary.stream(&name).records, 45, "{summary:?}");
        assert_eq!(
            dataset::ids(&ws.records(&name)),
            (1..=45).collect::<Vec<_>>()
        );
    }
}

/// With `[sync] prefetch = true`, offset and page-number pages are requested while the connector
/// parses the page before: every page after the second comes from a guessed request, the output
/// is exactly the dataset, and the one guess past the end is the only extra request.
#[test]
fn prefetched_pages_give_the_same_output() {
    for style in [Style::Offset, Style::Page] {
        let mock = MockApi::start(RECORDS);
        let ws = Workspace::new();
        ws.write(
            &rest_connection(&mock, vec![rest_stream("items", style, PAGE_SIZE)]).set(
                "sync",
                "prefetch",
                serde_json::json!(true),
            ),
        );
        let summary = ws.run("rest");
        let stream = summary.stream("items");
        let pages = style.expected_requests(RECORDS, PAGE_SIZE);
        assert_eq!(stream.prefetched, pages - 2, "{style:?}: {summary:?}");
        assert_eq!(stream.requests, pages + 1, "{style:?}: {summary:?}");
        assert_eq!(ws.records("items"), dataset::records(RECORDS), "{style:?}");
        // The guess past the end may be cancelled before it reaches the mock.
        let log = mock.requests();
        assert!(
            (pages..=pages + 1).contains(&(log.len() as u64)),
            "{style:?}: {} requests seen by the mock for {pages} pages",
            log.len()
        );
        assert_each_page_once(&log);
    }
}
