//! Every record once, in the right shape (issue 7): records sharing the boundary timestamp,
//! records inserted and updated between pages, the latest-per-key view, and what happens to
//! records that do not match the stream's schema.

use serde_json::{Value, json};
use sluice_tests::connection::{Connection, Style, incremental, rest_connection, rest_stream};
use sluice_tests::dataset::{self, BASE_EPOCH_SECS, iso8601};
use sluice_tests::files::read_jsonl;
use sluice_tests::mock::MockApi;

use crate::{HANG_GUARD, Workspace, sluice};

/// Ids of `records`, in order.
fn ids(records: &[Value]) -> Vec<u64> {
    dataset::ids(records)
}

/// A `rest` connection to the mock's offset endpoint, incremental on `updated_at` (sent as
/// `updated_after`, which the mock applies as strictly later) with `lookback_secs`, in `mode`.
fn by_updated_at(mock: &MockApi, lookback_secs: u64, mode: &str) -> Connection {
    let mut stream = incremental(
        rest_stream("items", Style::Offset, 10),
        "/updated_at",
        "updated_after",
    );
    stream["incremental"]["lookback_secs"] = json!(lookback_secs);
    rest_connection(mock, vec![stream]).set("streams", "items", json!({ "sync_mode": mode }))
}

/// Thirty records share one `updated_at`; after the first sync five more arrive with that same
/// timestamp (an API's strictly-"after" filter would hide them) and five with a later one. The
/// lookback re-reads the boundary second, the tie-breaker (the primary key) drops the ones
/// already written: every record is written exactly once.
#[test]
fn records_sharing_the_boundary_timestamp_are_neither_lost_nor_repeated() {
    let mock = MockApi::start(0);
    let t1 = iso8601(BASE_EPOCH_SECS + 100);
    let t2 = iso8601(BASE_EPOCH_SECS + 200);
    mock.insert_at(30, &t1);
    let ws = Workspace::new();
    ws.write(&by_updated_at(&mock, 1, "incremental"));

    let first = ws.run("rest");
    assert_eq!(first.stream("items").records, 30);

    mock.insert_at(5, &t1);
    mock.insert_at(5, &t2);
    mock.clear_log();
    let second = ws.run("rest");
    assert_eq!(second.stream("items").start, "incremental");
    assert_eq!(second.stream("items").records, 10, "{second:?}");
    let filters: Vec<Option<String>> = mock
        .requests()
        .iter()
        .map(|r| r.query_param("updated_after").map(str::to_owned))
        .collect();
    assert_eq!(
        filters[0].as_deref(),
        Some(iso8601(BASE_EPOCH_SECS + 99).as_str()),
        "the filter starts one second (the lookback) before the mark"
    );

    let third = ws.run("rest");
    assert_eq!(third.stream("items").records, 0, "nothing new: {third:?}");
    let written = ws.records("items");
    assert_eq!(ids(&written), (1..=40).collect::<Vec<u64>>());
    assert_eq!(written, mock.records());
}

/// Keyset pagination on `updated_at` while the API changes under the sync: between the second
/// and third page two earlier records are updated (moving to the end) and three are inserted.
/// The append log holds every version once; `items.latest.jsonl` holds exactly the API's
/// current records, one per id; later syncs add only what changed.
#[test]
fn inserts_and_updates_between_pages_with_incremental_dedup() {
    let mock = MockApi::start(50);
    let stream = json!({
        "name": "items",
        "path": "/offset/items",
        "records": "/data",
        "primary_key": "/id",
        "pagination": {
            "type": "keyset",
            "param": "updated_after",
            "field": "/updated_at",
            "limit_param": "limit",
            "page_size": 10,
        },
        "incremental": { "field": "/updated_at", "param": "updated_after" },
    });
    let ws = Workspace::new();
    ws.write(&rest_connection(&mock, vec![stream]).set(
        "streams",
        "items",
        json!({ "sync_mode": "incremental_dedup" }),
    ));

    mock.hold_from(3);
    let run = sluice()
        .cmd(ws.run_args("rest"))
        .timeout(HANG_GUARD)
        .spawn();
    assert!(
        mock.wait_for_requests(3, HANG_GUARD),
        "the sync did not reach its third page"
    );
    // Keyset pagination with a strictly-after filter needs distinct keys at page boundaries
    // (see `paginate::Keyset`): the updates get distinct timestamps.
    mock.update(&[5], &iso8601(BASE_EPOCH_SECS + 10_000));
    mock.update(&[25], &iso8601(BASE_EPOCH_SECS + 10_001));
    let inserted = mock.insert_at(3, &iso8601(BASE_EPOCH_SECS + 10_002));
    assert_eq!(inserted, vec![51, 52, 53]);
    mock.release();
    let output = run.wait();
    output.assert_success();

    let log = ws.records("items");
    // Record 5 was read before its update and again after; record 25 was updated before the
    // sync reached it, so only its new version was ever served.
    let mut expected: Vec<u64> = (1..=50).filter(|&id| id != 25).collect();
    expected.extend([5, 25, 51, 52, 53]);
    assert_eq!(ids(&log), expected, "every version once, in the order read");
    let latest = read_jsonl(&ws.output().join("items.latest.jsonl"));
    assert_eq!(
        latest,
        mock.records(),
        "one line per id, its latest version"
    );

    // Nothing changed: nothing is written. Then one update: exactly that version is added.
    assert_eq!(ws.run("rest").stream("items").records, 0);
    mock.update(&[1], &iso8601(BASE_EPOCH_SECS + 20_000));
    let third = ws.run("rest");
    assert_eq!(third.stream("items").records, 1, "{third:?}");
    assert_eq!(
        read_jsonl(&ws.output().join("items.latest.jsonl")),
        mock.records()
    );
    assert_eq!(ws.records("items").len(), 55);
    // The run summary says where the view is.
    let summary: Value = sluice().run(ws.run_args("rest")).json();
    assert!(
        summary["streams"][0]["latest_output"]
            .as_str()
            .is_some_and(|path| path.ends_with("items.latest.jsonl")),
        "{summary}"
    );
}

/// A mock whose 120 records are followed by one whose `id` is a string and one with a field
/// no record had: the inferred schema (from the first 100) flags both.
fn drifting_mock() -> MockApi {
    let mock = MockApi::start(120);
    let mut bad = dataset::record(121);
    bad["id"] = json!("121");
    mock.push_record(bad);
    let mut extra = dataset::record(122);
    extra["coupon"] = json!("SPRING");
    mock.push_record(extra);
    mock
}

fn schema_connection(mock: &MockApi, policy: &str) -> Connection {
    rest_connection(mock, vec![rest_stream("items", Style::Offset, 50)]).set(
        "streams",
        "items",
        json!({ "schema_policy": policy }),
    )
}

/// `dead_letter`: the record whose `id` changed type goes to `items.dead_letter.jsonl` with the
/// reason; the new field is reported as drift but the record is kept.
#[test]
fn nonconforming_records_go_to_the_dead_letter_file() {
    let mock = drifting_mock();
    let ws = Workspace::new();
    ws.write(&schema_connection(&mock, "dead_letter"));
    let summary: Value = {
        let output = sluice().run(ws.run_args("rest"));
        output.assert_success();
        output.json()
    };
    let stream = &summary["streams"][0];
    assert_eq!(stream["records"], 121, "{summary:#}");
    assert_eq!(stream["dead_letters"], 1, "{summary:#}");
    assert_eq!(stream["schema"], "inferred");
    let drift = stream["schema_drift"].as_array().expect("drift");
    assert!(
        drift
            .iter()
            .any(|d| d["path"] == "/id" && d["kind"] == "type_changed"),
        "{drift:#?}"
    );
    assert!(
        drift
            .iter()
            .any(|d| d["path"] == "/coupon" && d["kind"] == "new"),
        "{drift:#?}"
    );
    let dead = read_jsonl(&ws.output().join("items.dead_letter.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["record"]["id"], "121");
    assert_eq!(dead[0]["stream"], "items");
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/id")),
        "{dead:?}"
    );
    let written = ws.records("items");
    assert_eq!(written.len(), 121);
    assert!(written.iter().all(|r| r["id"] != "121"));
}

/// `fail`: the sync stops on the page with the bad record, names the record and field, and
/// keeps the checkpoint of the pages before it.
#[test]
fn a_nonconforming_record_fails_the_stream_under_fail() {
    let mock = drifting_mock();
    let ws = Workspace::new();
    ws.write(&schema_connection(&mock, "fail"));
    let error = ws.run_output("rest").assert_error();
    assert!(
        error.contains("stream `items`") && error.contains("/id") && error.contains("record"),
        "{error}"
    );
    // Pages 1 and 2 (100 records) were committed; page 3 holds the bad record.
    assert_eq!(ids(&ws.records("items")), (1..=100).collect::<Vec<u64>>());
    let listed: Value = sluice()
        .run(["state", "list", "--state", &ws.state().to_string_lossy()])
        .json();
    let checkpoint = listed
        .as_object()
        .and_then(|all| all.values().next())
        .expect("a checkpoint");
    assert_eq!(checkpoint["output"]["records"], 100, "{listed:#}");
}

/// An unknown stream under `[streams]` and an impossible mode are refused before anything runs.
#[test]
fn stream_settings_are_checked_against_the_catalog() {
    let mock = MockApi::start(3);
    let ws = Workspace::new();
    ws.write(
        &rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)]).set(
            "streams",
            "itmes",
            json!({ "sync_mode": "incremental" }),
        ),
    );
    let error = ws.run_output("rest").assert_error();
    assert!(error.contains("no stream `itmes`"), "{error}");
    ws.write(
        &rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)]).set(
            "streams",
            "items",
            json!({ "sync_mode": "incremental" }),
        ),
    );
    let error = ws.run_output("rest").assert_error();
    assert!(
        error.contains("cannot sync as `incremental`") && error.contains("sync_mode"),
        "{error}"
    );
    assert_eq!(mock.request_count(), 0, "nothing was sent");
}

/// Two processes on one state directory: the second fails fast with a clear message and
/// changes nothing; the first finishes normally.
#[test]
fn a_second_process_on_the_same_state_directory_fails_fast() {
    let mock = MockApi::start(30);
    let ws = Workspace::new();
    ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, 10)],
    ));
    mock.hold_from(2);
    let first = sluice()
        .cmd(ws.run_args("rest"))
        .timeout(HANG_GUARD)
        .spawn();
    assert!(
        mock.wait_for_requests(2, HANG_GUARD),
        "the first sync did not start"
    );
    let error = ws.run_output("rest").assert_error();
    assert!(
        error.contains("is in use by another sluice process") && error.contains("--state"),
        "{error}"
    );
    assert_eq!(mock.request_count(), 2, "the second process sent nothing");
    mock.release();
    first.wait().assert_success();
    assert_eq!(ws.records("items"), dataset::records(30));
}
