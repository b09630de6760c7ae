//! Incremental syncs: a second run starts from the saved cursor, sends it to the API, and the
//! output file ends up holding every record exactly once.

use sluice_tests::connection::{Style, incremental, rest_connection, rest_stream};
use sluice_tests::dataset;
use sluice_tests::mock::MockApi;

use crate::Workspace;

const FIRST: u64 = 120;
const APPENDED: u64 = 37;

/// Runs the first sync, appends records, runs again, and checks the second run used `param`
/// with the value of `field` of the last record of the first run.
fn first_then_incremental(style: Style, field: &str, param: &str) {
    let mock = MockApi::start(FIRST);
    let ws = Workspace::new();
    let stream = incremental(rest_stream("items", style, 25), field, param);
    ws.write(&rest_connection(&mock, vec![stream]));

    let first = ws.run("rest");
    assert_eq!(first.stream("items").start, "fresh", "{first:?}");
    assert_eq!(first.stream("items").records, FIRST, "{first:?}");
    assert_eq!(
        dataset::ids(&ws.records("items")),
        (1..=FIRST).collect::<Vec<_>>()
    );

    // The saved cursor is the last record's field, as the API's filter expects it.
    let last = dataset::record(FIRST);
    let pointer_value = last.pointer(field).expect("cursor field in record");
    let cursor = match pointer_value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };

    mock.clear_log();
    let appended = mock.append(APPENDED);
    let second = ws.run("rest");
    let summary = second.stream("items");
    assert_eq!(summary.start, "incremental", "{second:?}");
    assert_eq!(summary.records, APPENDED, "{second:?}");

    let log = mock.requests();
    assert!(!log.is_empty());
    assert_eq!(log.len() as u64, summary.requests, "{second:?}");
    for request in &log {
        assert_eq!(
            request.query_param(param),
            Some(cursor.as_str()),
            "every request of the incremental run must carry the saved cursor: {request:?}"
        );
    }

    let written = ws.records("items");
    assert_eq!(
        dataset::ids(&written),
        (1..=FIRST)
            .chain(appended.iter().copied())
            .collect::<Vec<_>>(),
        "every record exactly once, in order"
    );
    assert_eq!(written, dataset::records(FIRST + APPENDED));

    // Nothing new: still incremental, nothing written, file unchanged.
    let before = std::fs::read(ws.output_file("items")).expect("output");
    mock.clear_log();
    let third = ws.run("rest");
    assert_eq!(third.stream("items").start, "incremental", "{third:?}");
    assert_eq!(third.stream("items").records, 0, "{third:?}");
    let expected_cursor = dataset::record(FIRST + APPENDED);
    let expected_cursor = match expected_cursor.pointer(field).expect("field") {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(
        mock.requests()[0].query_param(param),
        Some(expected_cursor.as_str())
    );
    assert_eq!(
        std::fs::read(ws.output_file("items")).expect("output"),
        before
    );
}

#[test]
fn incremental_by_id_with_offset_pages() {
    first_then_incremental(Style::Offset, "/id", "since_id");
}

#[test]
fn incremental_by_timestamp_with_cursor_pages() {
    first_then_incremental(Style::Cursor, "/updated_at", "updated_after");
}

#[test]
fn incremental_by_id_with_link_pages() {
    first_then_incremental(Style::Link, "/id", "since_id");
}

/// `--full-refresh` ignores the saved cursor and replaces the output with one complete copy.
#[test]
fn full_refresh_ignores_the_cursor() {
    let mock = MockApi::start(50);
    let ws = Workspace::new();
    let stream = incremental(rest_stream("items", Style::Offset, 20), "/id", "since_id");
    ws.write(&rest_connection(&mock, vec![stream]));
    ws.run("rest");
    mock.append(5);
    mock.clear_log();

    let mut args = ws.run_args("rest");
    args.push("--full-refresh".to_owned());
    let output = crate::sluice().run(&args);
    output.assert_success();
    let summary: sluice_tests::cli::RunSummary = output.json();
    assert_eq!(summary.stream("items").start, "fresh", "{summary:?}");
    assert_eq!(summary.stream("items").records, 55, "{summary:?}");
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.query_param("since_id").is_none()),
        "a full refresh must not send the cursor: {:?}",
        mock.requests()
    );
    assert_eq!(
        dataset::ids(&ws.records("items")),
        (1..=55).collect::<Vec<_>>()
    );
}
