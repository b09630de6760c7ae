//! Keyset pagination in the `rest` connector against the mock's `/offset/items` endpoint (which
//! filters by `since_id`, ids strictly greater): each page asks for the records after the last
//! id of the previous one, the output is the dataset exactly, and an incremental second run on
//! the same key fetches only the records appended since.

use serde_json::json;
use sluice_tests::connection::rest_connection;
use sluice_tests::dataset;
use sluice_tests::mock::MockApi;

use crate::Workspace;

/// Not a multiple of the page size, so the last page is short.
const RECORDS: u64 = 53;
const PAGE_SIZE: u64 = 20;
const APPENDED: u64 = 5;

fn keyset_stream() -> serde_json::Value {
    json!({
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
        "incremental": { "field": "/id", "param": "since_id" },
    })
}

/// The `(since_id, limit)` pairs the mock received, in order.
fn sent(mock: &MockApi) -> Vec<(Option<String>, Option<String>)> {
    mock.requests()
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/offset/items", "{r:?}");
            assert!(r.query_param("offset").is_none(), "{r:?}");
            (
                r.query_param("since_id").map(str::to_owned),
                r.query_param("limit").map(str::to_owned),
            )
        })
        .collect()
}

fn pair(since_id: Option<u64>) -> (Option<String>, Option<String>) {
    (
        since_id.map(|id| id.to_string()),
        Some(PAGE_SIZE.to_string()),
    )
}

#[test]
fn keyset_pagination_reads_everything_then_only_what_was_appended() {
    let mock = MockApi::start(RECORDS);
    let ws = Workspace::new();
    ws.write(&rest_connection(&mock, vec![keyset_stream()]));

    let first = ws.run("rest");
    let stream = first.stream("items");
    assert_eq!(stream.start, "fresh", "{first:?}");
    assert_eq!(stream.records, RECORDS, "{first:?}");
    assert_eq!(stream.requests, 3, "{first:?}");
    assert_eq!(ws.records("items"), dataset::records(RECORDS));
    assert_eq!(
        sent(&mock),
        vec![pair(None), pair(Some(20)), pair(Some(40))],
        "the first request as given plus the limit, then the last id of each full page; the short page (41..=53) ends"
    );

    mock.clear_log();
    let appended = mock.append(APPENDED);
    assert_eq!(
        appended,
        (RECORDS + 1..=RECORDS + APPENDED).collect::<Vec<_>>()
    );
    let second = ws.run("rest");
    let stream = second.stream("items");
    assert_eq!(stream.start, "incremental", "{second:?}");
    assert_eq!(stream.records, APPENDED, "{second:?}");
    assert_eq!(
        sent(&mock),
        vec![pair(Some(RECORDS))],
        "the incremental run starts after the saved id and its one short page ends it"
    );
    assert_eq!(
        ws.records("items"),
        dataset::records(RECORDS + APPENDED),
        "every record exactly once, in order"
    );
}
