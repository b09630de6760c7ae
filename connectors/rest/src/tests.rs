//! Native tests: the connector driven by the SDK's harness against in-memory APIs.

use sluice_sdk::prelude::*;
use sluice_sdk::testing::{self, Harness};

use crate::Rest;

/// `n` records with ids 1..=n and `updated_at` equal to the id.
fn items(n: u64) -> Vec<Value> {
    (1..=n)
        .map(|id| json!({"id": id, "updated_at": id}))
        .collect()
}

fn config(stream: Value) -> Value {
    json!({"base_url": "http://127.0.0.1:9000/api/", "streams": [stream]})
}

fn param(request: &Request, name: &str) -> Option<u64> {
    request
        .query_param(name)
        .and_then(|value| value.parse().ok())
}

fn ids(records: &[Value]) -> Vec<u64> {
    records.iter().filter_map(|r| r["id"].as_u64()).collect()
}

fn invalid_config(config: Value) -> String {
    match testing::check::<Rest>(&config) {
        Err(Error::InvalidConfig(message)) => message,
        other => panic!("expected invalid-config, got {other:?}"),
    }
}

#[test]
fn spec_publishes_a_schema_of_the_config() {
    let spec = testing::spec::<Rest>();
    assert_eq!(spec.name, "rest");
    assert_eq!(
        spec.config_schema["required"],
        json!(["base_url", "streams"])
    );
    let stream = &spec.config_schema["properties"]["streams"]["items"]["properties"];
    for key in [
        "name",
        "path",
        "params",
        "records",
        "primary_key",
        "pagination",
        "incremental",
    ] {
        assert!(stream.get(key).is_some(), "schema lacks `{key}`");
    }
    assert_eq!(
        stream["pagination"]["oneOf"].as_array().map(Vec::len),
        Some(6)
    );
}

#[test]
fn discover_declares_the_base_url_host_and_each_stream() {
    let config = json!({
        "base_url": "http://127.0.0.1:9000/api",
        "streams": [
            {"name": "users", "path": "/users", "primary_key": "/id",
             "incremental": {"field": "/updated_at", "param": "since"}},
            {"name": "tags", "path": "/tags"}
        ]
    });
    let catalog = testing::discover::<Rest>(&config).unwrap();
    assert_eq!(catalog.allowed_hosts, vec!["127.0.0.1:9000"]);
    assert_eq!(catalog.streams[0].primary_key, vec!["/id"]);
    assert_eq!(
        catalog.streams[0].cursor_field.as_deref(),
        Some("/updated_at")
    );
    assert_eq!(
        catalog.streams[0].sync_modes,
        vec![SyncMode::FullRefresh, SyncMode::Incremental]
    );
    assert_eq!(catalog.streams[1].primary_key, Vec::<String>::new());
    assert_eq!(catalog.streams[1].sync_modes, vec![SyncMode::FullRefresh]);
}

#[test]
fn config_errors_say_what_to_fix() {
    assert_eq!(
        invalid_config(json!({"streams": []})),
        "missing field `base_url`; see the connector's config schema"
    );
    assert_eq!(
        invalid_config(config(
            json!({"name": "a", "path": "/a", "pagination": {"type": "pages"}})
        )),
        "at `streams[0].pagination.type`: unknown variant `pages`, expected one of `none`, `offset`, `page`, `cursor`, `link`, `keyset`; see the connector's config schema"
    );
    assert_eq!(
        invalid_config(json!({"base_url": "api.example.com", "streams": []})),
        "`api.example.com` is not a usable base URL (it must start with http:// or https://); write it like `https://api.example.com`"
    );
    assert_eq!(
        invalid_config(json!({"base_url": "https://h", "streams": []})),
        "`streams` is empty; define at least one stream"
    );
    assert_eq!(
        invalid_config(json!({"base_url": "https://h", "streams": [
            {"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}
        ]})),
        "`streams[1].name`: stream `a` is defined twice; stream names must be unique"
    );
    assert_eq!(
        invalid_config(config(
            json!({"name": "a", "path": "/a", "records": "data"})
        )),
        "`streams[0].records` is `data`, not a JSON pointer; write it like `/data/items` (or \"\" for the whole value)"
    );
    assert_eq!(
        invalid_config(config(json!({"name": "a", "path": "/a",
            "pagination": {"type": "page", "limit_param": "per_page"}}))),
        "`streams[0].pagination.page_size` is missing; it is required with `streams[0].pagination.limit_param`"
    );
    assert_eq!(
        invalid_config(config(json!({"name": "a", "path": "/a",
            "pagination": {"type": "offset", "page_size": 0}}))),
        "`streams[0].pagination.page_size` is 0; use at least 1"
    );
    assert_eq!(
        invalid_config(config(json!({"name": "a", "path": "/a",
            "pagination": {"type": "cursor", "cursor_param": "c"}}))),
        "at `streams[0].pagination`: missing field `next_cursor`; see the connector's config schema"
    );
    assert_eq!(
        invalid_config(config(
            json!({"name": "a", "path": "/a", "params": {"q": [1]}})
        )),
        "`streams[0].params.q` is an array; use a string, a number or a boolean"
    );
    assert_eq!(
        invalid_config(config(
            json!({"name": "a", "path": "https://evil.example/a"})
        )),
        "`streams[0].path` is `https://evil.example/a`; write a path like `/users` and put the host in `base_url`"
    );
    assert_eq!(
        invalid_config(config(json!({"name": "a", "path": "/a",
            "incremental": {"field": "", "param": "since"}}))),
        "`streams[0].incremental.field` is empty; point it at a field, e.g. `/updated_at`"
    );
    assert!(
        invalid_config(config(
            json!({"name": "a", "path": "/a", "pagination": {"type": "link", "page_size": 3}})
        ))
        .starts_with("at `streams[0].pagination`: unknown field `page_size`")
    );
}

#[test]
fn unknown_streams_are_config_errors() {
    let err = Harness::<Rest>::new(config(json!({"name": "users", "path": "/users"})), "orders")
        .run(|_| testing::json_response(json!([])))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig("unknown stream `orders`; this config defines: users".into())
    );
}

#[test]
fn first_request_carries_params_headers_and_auth() {
    let config = json!({
        "base_url": "https://api.example.com/v1/",
        "headers": {"X-Api-Version": "3"},
        "auth": false,
        "streams": [{"name": "s", "path": "/things", "params": {"state": "all", "n": 5, "deep": true}}]
    });
    let run = Harness::<Rest>::new(config, "s")
        .run(|_| testing::json_response(json!([])))
        .unwrap();
    let request = &run.steps[0].request;
    assert_eq!(
        request.full_url(),
        "https://api.example.com/v1/things?state=all&n=5&deep=true"
    );
    assert_eq!(request.header_value("x-api-version"), Some("3"));
    assert_eq!(request.header_value("accept"), Some("application/json"));
    assert!(!request.authenticate);

    let authenticated = Harness::<Rest>::new(config_with_accept(), "s")
        .run(|_| testing::json_response(json!([])))
        .unwrap();
    assert!(
        authenticated.steps[0].request.authenticate,
        "auth defaults to true"
    );
    assert_eq!(
        authenticated.steps[0].request.header_value("Accept"),
        Some("text/json")
    );
}

fn config_with_accept() -> Value {
    json!({"base_url": "https://h", "headers": {"Accept": "text/json"}, "streams": [{"name": "s", "path": ""}]})
}

/// An offset API over `all`, honouring `limit` and `offset`.
fn offset_api(all: &[Value], request: &Request) -> Response {
    let limit = param(request, "limit").unwrap_or(10) as usize;
    let offset = param(request, "offset").unwrap_or(0) as usize;
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    testing::json_response(json!({"data": page, "total": all.len()}))
}

#[test]
fn offset_pagination_reads_every_page() {
    let all = items(250);
    let stream = json!({"name": "s", "path": "/items", "records": "/data",
        "pagination": {"type": "offset", "limit_param": "limit", "offset_param": "offset", "page_size": 100}});
    let run = Harness::<Rest>::new(config(stream), "s")
        .run(|request| offset_api(&all, request))
        .unwrap();
    assert_eq!(ids(&run.records), (1..=250).collect::<Vec<_>>());
    let offsets: Vec<Option<u64>> = run.requests().map(|r| param(r, "offset")).collect();
    assert_eq!(offsets, vec![Some(0), Some(100), Some(200)]);
    assert_eq!(
        run.state,
        Some(json!({})),
        "a full-refresh stream keeps no cursor"
    );
}

#[test]
fn offset_pagination_stops_on_an_empty_page_after_a_full_one() {
    let all = items(200);
    let stream = json!({"name": "s", "path": "/items", "records": "/data",
        "pagination": {"type": "offset", "page_size": 100}});
    let run = Harness::<Rest>::new(config(stream), "s")
        .run(|request| offset_api(&all, request))
        .unwrap();
    assert_eq!(run.records.len(), 200);
    assert_eq!(run.steps.len(), 3);
}

#[test]
fn page_number_pagination_with_and_without_a_size() {
    let all = items(45);
    let api = |request: &Request| {
        let size = param(request, "per_page").unwrap_or(20) as usize;
        let page = param(request, "p").unwrap_or(1) as usize;
        let slice: Vec<Value> = all
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect();
        testing::json_response(Value::Array(slice))
    };
    let sized = json!({"name": "s", "path": "/items",
        "pagination": {"type": "page", "page_param": "p", "limit_param": "per_page", "page_size": 20}});
    let run = Harness::<Rest>::new(config(sized), "s").run(api).unwrap();
    assert_eq!(run.records.len(), 45);
    assert_eq!(run.steps.len(), 3, "the short third page is the last");
    assert_eq!(
        run.steps[0].request.full_url(),
        "http://127.0.0.1:9000/api/items?p=1&per_page=20"
    );

    let unsized_ =
        json!({"name": "s", "path": "/items", "pagination": {"type": "page", "page_param": "p"}});
    let run = Harness::<Rest>::new(config(unsized_), "s")
        .run(api)
        .unwrap();
    assert_eq!(run.records.len(), 45);
    assert_eq!(
        run.steps.len(),
        4,
        "without a known size only an empty page ends"
    );
}

#[test]
fn cursor_pagination_follows_the_body() {
    let stream = json!({"name": "s", "path": "/events", "records": "/events",
        "pagination": {"type": "cursor", "cursor_param": "after", "next_cursor": "/meta/next"}});
    let run = Harness::<Rest>::new(config(stream), "s")
        .run(|request| match request.query_param("after").as_deref() {
            None => testing::json_response(json!({"events": [{"id": 1}], "meta": {"next": "c2"}})),
            Some("c2") => {
                testing::json_response(json!({"events": [{"id": 2}], "meta": {"next": "c3"}}))
            }
            Some(_) => {
                testing::json_response(json!({"events": [{"id": 3}], "meta": {"next": null}}))
            }
        })
        .unwrap();
    assert_eq!(ids(&run.records), vec![1, 2, 3]);
    assert_eq!(
        run.steps[2].request.query_param("after").as_deref(),
        Some("c3")
    );
}

#[test]
fn link_pagination_follows_rel_next() {
    let stream = json!({"name": "s", "path": "/items", "pagination": {"type": "link"}});
    let run = Harness::<Rest>::new(config(stream), "s")
        .run(|request| {
            let page = request
                .query_param("page")
                .map_or(1, |p| p.parse().unwrap_or(1));
            let response =
                testing::json_response(json!([{"id": page}])).with_url(request.full_url());
            match page {
                1 => response.with_header(
                    "link",
                    "</api/items?page=2>; rel=\"next\", </api/items?page=3>; rel=\"last\"",
                ),
                2 => response.with_header(
                    "link",
                    "<http://127.0.0.1:9000/api/items?page=3>; rel=\"next\"",
                ),
                _ => response,
            }
        })
        .unwrap();
    assert_eq!(ids(&run.records), vec![1, 2, 3]);
    assert_eq!(
        run.steps[1].request.url,
        "http://127.0.0.1:9000/api/items?page=2"
    );
}

#[test]
fn no_pagination_is_one_request() {
    let run = Harness::<Rest>::new(config(json!({"name": "s", "path": "/all"})), "s")
        .run(|_| testing::json_response(Value::Array(items(3))))
        .unwrap();
    assert_eq!(run.records.len(), 3);
    assert_eq!(run.steps.len(), 1);
}

fn incremental_stream() -> Value {
    config(json!({"name": "s", "path": "/items", "records": "/data",
        "pagination": {"type": "offset", "page_size": 2},
        "incremental": {"field": "/updated_at", "param": "since"}}))
}

/// An API with an inclusive `since` filter over `all`, paged by offset.
fn since_api(all: &[Value], request: &Request) -> Response {
    let since = param(request, "since").unwrap_or(0);
    let matching: Vec<Value> = all
        .iter()
        .filter(|item| item["updated_at"].as_u64().unwrap_or(0) >= since)
        .cloned()
        .collect();
    offset_api(&matching, request)
}

#[test]
fn incremental_runs_resume_from_the_saved_cursor_without_repeating_the_boundary() {
    let mut all = items(5);
    let first = Harness::<Rest>::new(incremental_stream(), "s")
        .run(|request| since_api(&all, request))
        .unwrap();
    assert_eq!(ids(&first.records), vec![1, 2, 3, 4, 5]);
    assert_eq!(first.state, Some(json!({"cursor": 5})));
    assert_eq!(first.steps[0].request.query_param("since"), None);
    assert_eq!(
        first.steps[1].state,
        Some(json!({"max": 4})),
        "mid-run: the running max, no cursor yet"
    );

    all.extend([
        json!({"id": 6, "updated_at": 6}),
        json!({"id": 2, "updated_at": 7}),
    ]);
    let second = Harness::<Rest>::new(incremental_stream(), "s")
        .with_state(first.state.clone().unwrap())
        .run(|request| since_api(&all, request))
        .unwrap();
    assert_eq!(
        second.steps[0].request.query_param("since").as_deref(),
        Some("5")
    );
    assert_eq!(
        ids(&second.records),
        vec![6, 2],
        "the boundary record 5 is not emitted again"
    );
    assert_eq!(second.state, Some(json!({"cursor": 7})));

    let third = Harness::<Rest>::new(incremental_stream(), "s")
        .with_state(second.state.unwrap())
        .run(|request| since_api(&all, request))
        .unwrap();
    assert!(third.records.is_empty());
    assert_eq!(third.state, Some(json!({"cursor": 7})));
}

#[test]
fn a_state_checkpointed_mid_run_resumes_to_the_same_result() {
    let mut all = items(3);
    let previous = Harness::<Rest>::new(incremental_stream(), "s")
        .run(|request| since_api(&all, request))
        .unwrap();
    all.extend((4..=9).map(|id| json!({"id": id, "updated_at": id})));
    let harness =
        Harness::<Rest>::new(incremental_stream(), "s").with_state(previous.state.unwrap());
    let uninterrupted = harness.run(|request| since_api(&all, request)).unwrap();

    for crash_after in 0..uninterrupted.steps.len() - 1 {
        let committed = &uninterrupted.steps[crash_after];
        let pending = committed.next.request().cloned().unwrap();
        let resumed = Harness::<Rest>::new(incremental_stream(), "s")
            .with_state(committed.state.clone().unwrap())
            .resume(pending, |request| since_api(&all, request))
            .unwrap();
        let emitted_before: Vec<Value> = uninterrupted.steps[..=crash_after]
            .iter()
            .flat_map(|step| step.records.clone())
            .collect();
        let mut combined = emitted_before;
        combined.extend(resumed.records);
        assert_eq!(
            combined, uninterrupted.records,
            "crash after page {crash_after}"
        );
        assert_eq!(
            resumed.state, uninterrupted.state,
            "crash after page {crash_after}"
        );
    }
    assert_eq!(uninterrupted.state, Some(json!({"cursor": 9})));
}

#[test]
fn unexpected_responses_are_reported_as_such() {
    let stream = config(json!({"name": "s", "path": "/items", "records": "/data"}));
    let harness = Harness::<Rest>::new(stream, "s");

    let err = harness
        .run(|_| {
            testing::text_response(404, "no such endpoint")
                .with_url("http://127.0.0.1:9000/api/items")
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "HTTP 404 from `http://127.0.0.1:9000/api/items`: no such endpoint".into()
        )
    );

    let err = harness
        .run(|_| testing::json_response(json!({"items": []})))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "expected an array of records at `/data` of the response body, found nothing there"
                .into()
        )
    );

    let err = harness
        .run(|_| testing::json_response(json!({"data": [{"id": 1}, 2]})))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse("a record at `/data` is a number, expected an object".into())
    );

    let err = harness
        .run(|_| testing::text_response(200, "<html>"))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedResponse(ref m) if m.starts_with("the body is not the expected JSON")),
        "{err}"
    );
}

#[test]
fn records_keep_the_api_field_order() {
    let run = Harness::<Rest>::new(config(json!({"name": "s", "path": "/x"})), "s")
        .run(|_| testing::text_response(200, r#"[{"zeta": 1, "alpha": 2}]"#))
        .unwrap();
    let keys: Vec<&String> = run.records[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["zeta", "alpha"]);
}

/// A keyset API over `all` (sorted by id): records with `id > since_id`, at most `limit`
/// (default 10) per page.
fn keyset_api(all: &[Value], request: &Request) -> Response {
    let since = param(request, "since_id").unwrap_or(0);
    let limit = param(request, "limit").unwrap_or(10) as usize;
    let page: Vec<Value> = all
        .iter()
        .filter(|item| item["id"].as_u64().unwrap_or(0) > since)
        .take(limit)
        .cloned()
        .collect();
    testing::json_response(json!({"data": page}))
}

fn keyset_stream(pagination: Value) -> Value {
    config(
        json!({"name": "s", "path": "/items", "records": "/data", "primary_key": "/id",
        "pagination": pagination}),
    )
}

fn keyset_pagination() -> Value {
    json!({"type": "keyset", "param": "since_id", "field": "/id", "limit_param": "limit", "page_size": 100})
}

#[test]
fn keyset_pagination_sends_the_last_id_of_each_page() {
    let all = items(250);
    let run = Harness::<Rest>::new(keyset_stream(keyset_pagination()), "s")
        .run(|request| keyset_api(&all, request))
        .unwrap();
    assert_eq!(ids(&run.records), (1..=250).collect::<Vec<_>>());
    let sent: Vec<(Option<u64>, Option<u64>)> = run
        .requests()
        .map(|r| (param(r, "since_id"), param(r, "limit")))
        .collect();
    assert_eq!(
        sent,
        vec![
            (None, Some(100)),
            (Some(100), Some(100)),
            (Some(200), Some(100))
        ],
        "the first request as given plus the limit, then the last id of each page; the short page ends"
    );
    assert_eq!(
        run.requests().next().unwrap().full_url(),
        "http://127.0.0.1:9000/api/items?limit=100"
    );
    assert_eq!(run.state, Some(json!({})));
}

#[test]
fn keyset_pagination_without_a_size_stops_on_an_empty_page() {
    let all = items(25);
    let run = Harness::<Rest>::new(
        keyset_stream(json!({"type": "keyset", "param": "since_id", "field": "/id"})),
        "s",
    )
    .run(|request| keyset_api(&all, request))
    .unwrap();
    assert_eq!(ids(&run.records), (1..=25).collect::<Vec<_>>());
    let sent: Vec<Option<u64>> = run.requests().map(|r| param(r, "since_id")).collect();
    assert_eq!(sent, vec![None, Some(10), Some(20), Some(25)]);
    assert!(run.requests().all(|r| r.query_param("limit").is_none()));
}

#[test]
fn keyset_pagination_with_a_full_last_page_asks_once_more() {
    let all = items(4);
    let run = Harness::<Rest>::new(
        keyset_stream(
            json!({"type": "keyset", "param": "since_id", "field": "/id",
            "limit_param": "limit", "page_size": 2}),
        ),
        "s",
    )
    .run(|request| keyset_api(&all, request))
    .unwrap();
    assert_eq!(ids(&run.records), vec![1, 2, 3, 4]);
    let sent: Vec<Option<u64>> = run.requests().map(|r| param(r, "since_id")).collect();
    assert_eq!(sent, vec![None, Some(2), Some(4)]);
}

#[test]
fn keyset_pagination_with_an_incremental_cursor_reads_only_new_records() {
    let stream = || {
        let mut stream = keyset_stream(json!({"type": "keyset", "param": "since_id",
            "field": "/id", "limit_param": "limit", "page_size": 3}));
        stream["streams"][0]["incremental"] = json!({"field": "/id", "param": "since_id"});
        stream
    };
    let mut all = items(7);
    let first = Harness::<Rest>::new(stream(), "s")
        .run(|request| keyset_api(&all, request))
        .unwrap();
    assert_eq!(ids(&first.records), (1..=7).collect::<Vec<_>>());
    assert_eq!(first.state, Some(json!({"cursor": 7, "ties": [7]})));

    all.extend((8..=12).map(|id| json!({"id": id, "updated_at": id})));
    let second = Harness::<Rest>::new(stream(), "s")
        .with_state(first.state.clone().unwrap())
        .run(|request| keyset_api(&all, request))
        .unwrap();
    assert_eq!(ids(&second.records), vec![8, 9, 10, 11, 12]);
    let sent: Vec<Option<u64>> = second.requests().map(|r| param(r, "since_id")).collect();
    assert_eq!(
        sent,
        vec![Some(7), Some(10)],
        "resumes after the saved id, then pages by the last id"
    );
    assert_eq!(second.state, Some(json!({"cursor": 12, "ties": [12]})));
}

#[test]
fn keyset_pagination_needs_the_field_in_the_last_record() {
    let mut all = items(3);
    all[2] = json!({"name": "no id"});
    let err = Harness::<Rest>::new(
        keyset_stream(
            json!({"type": "keyset", "param": "since_id", "field": "/id",
            "limit_param": "limit", "page_size": 3}),
        ),
        "s",
    )
    .run(|_| testing::json_response(json!({"data": all.clone()})))
    .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "the last record of the page has no `/id`; keyset pagination on `since_id` needs it in every record"
                .into()
        )
    );
}

#[test]
fn keyset_config_errors_say_what_to_fix() {
    let keyset = |pagination: Value| invalid_config(keyset_stream(pagination));
    assert_eq!(
        keyset(
            json!({"type": "keyset", "param": "since_id", "field": "/id", "limit_param": "limit"})
        ),
        "`streams[0].pagination.page_size` is missing; it is required with `streams[0].pagination.limit_param`"
    );
    assert_eq!(
        keyset(json!({"type": "keyset", "param": "since_id", "field": "/id", "page_size": 0})),
        "`streams[0].pagination.page_size` is 0; use at least 1"
    );
    assert_eq!(
        keyset(json!({"type": "keyset", "param": "since_id", "field": "id"})),
        "`streams[0].pagination.field` is `id`, not a JSON pointer; write it like `/data/items` (or \"\" for the whole value)"
    );
    assert_eq!(
        keyset(json!({"type": "keyset", "param": "since_id", "field": ""})),
        "`streams[0].pagination.field` is empty; point it at a unique, sorted key of a record, e.g. `/id`"
    );
    assert_eq!(
        keyset(json!({"type": "keyset", "param": "", "field": "/id"})),
        "`streams[0].pagination.param` is empty; name the query parameter that asks for records after `/id`, e.g. `since_id`"
    );
    assert_eq!(
        keyset(json!({"type": "keyset", "field": "/id"})),
        "at `streams[0].pagination`: missing field `param`; see the connector's config schema"
    );
    assert!(
        keyset(json!({"type": "keyset", "param": "since_id", "field": "/id", "offset_param": "o"}))
            .starts_with("at `streams[0].pagination`: unknown field `offset_param`")
    );
}

#[test]
fn keyset_config_maps_to_the_sdk_strategy_and_schema() {
    let config: crate::config::Config =
        serde_json::from_value(keyset_stream(keyset_pagination())).unwrap();
    assert_eq!(
        config.streams[0].pagination.strategy(),
        Pagination::Keyset(paginate::Keyset::new("since_id", "/id").with_limit_param("limit", 100))
    );
    let spec = testing::spec::<Rest>();
    let keyset =
        spec.config_schema["properties"]["streams"]["items"]["properties"]["pagination"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|variant| variant["properties"]["type"]["const"] == "keyset")
            .expect("the schema has a keyset variant")
            .clone();
    assert_eq!(keyset["required"], json!(["param", "field"]));
    assert_eq!(
        keyset["dependentRequired"],
        json!({"limit_param": ["page_size"]})
    );
}

/// The page `read::read_page` makes of `body` for `stream` (a stream config), with no state.
fn raw_page(stream: Value, body: &str) -> Result<Page<Watermark>> {
    let config: crate::config::Config = serde_json::from_value(config(stream)).unwrap();
    let request = Request::get("http://127.0.0.1:9000/api/x");
    let response = testing::text_response(200, body);
    crate::read::read_page(
        &config.streams[0],
        Watermark::default(),
        &request,
        &response,
    )
}

#[test]
fn records_are_the_api_s_own_json_text_one_per_line() {
    // Field order, spacing, escapes and number spelling stay as sent; only a record that
    // spans lines is made compact, since a line break would split its JSON line.
    let body = "{\"data\": [{\"b\": 1.50, \"a\": \"caf\\u00e9\"}, {\"n\": 12345678901234567890123},\n  {\n    \"id\": 3,\n    \"t\": \"x\\ny\"\n  }\n], \"total\": 3}";
    let stream = json!({"name": "s", "path": "/x", "records": "/data"});
    let page = raw_page(stream, body).unwrap();
    assert_eq!(
        page.records_jsonl(),
        "{\"b\": 1.50, \"a\": \"caf\\u00e9\"}\n{\"n\": 12345678901234567890123}\n{\"id\":3,\"t\":\"x\\ny\"}"
    );
    assert_eq!(page.len(), 3);
}

#[test]
fn a_non_object_record_is_an_unexpected_response_with_incremental_too() {
    let stream = json!({"name": "s", "path": "/x", "records": "/data", "primary_key": "/id",
        "incremental": {"field": "/t", "param": "since"}});
    for (body, kind) in [
        (r#"{"data": [{"id": 1, "t": 1}, [1]]}"#, "an array"),
        (r#"{"data": [{"id": 1, "t": 1}, "x"]}"#, "a string"),
        (r#"{"data": [null]}"#, "null"),
        (r#"{"data": [true]}"#, "a boolean"),
        (r#"{"data": [-0.5]}"#, "a number"),
    ] {
        assert_eq!(
            raw_page(stream.clone(), body).unwrap_err(),
            Error::UnexpectedResponse(format!("a record at `/data` is {kind}, expected an object")),
            "{body}"
        );
    }
}

#[test]
fn incremental_fields_are_read_from_the_raw_records() {
    let stream = json!({"name": "s", "path": "/x", "records": "/data", "primary_key": "/id",
        "incremental": {"field": "/meta/t", "param": "since"}});
    let body = r#"{"data": [
        {"id": 1, "meta": {"t": 5}}, {"id": 2, "meta": {"t": 9, "t": 7}}, {"id": 3}, {"id": 4, "meta": {"t": 7}}
    ]}"#;
    let page = raw_page(stream, body).unwrap();
    assert_eq!(page.len(), 4);
    let state = serde_json::to_value(page.state().unwrap()).unwrap();
    assert_eq!(
        state,
        json!({"cursor": 7, "ties": [2, 4]}),
        "the last of duplicate keys counts, as in a parsed value"
    );
}

#[test]
fn a_next_cursor_inside_the_records_is_still_found() {
    let stream = json!({"name": "s", "path": "/x", "records": "/data",
        "pagination": {"type": "cursor", "cursor_param": "after", "next_cursor": "/data/1/id"}});
    let after = |stream, body| {
        let page = raw_page(stream, body).unwrap();
        let next = page.next().request().unwrap();
        next.query_param("after").map(|after| after.into_owned())
    };
    let page = after(stream, r#"{"data": [{"id": "a"}, {"id": "b"}]}"#);
    assert_eq!(page.as_deref(), Some("b"));
    let bare = json!({"name": "s", "path": "/x",
        "pagination": {"type": "cursor", "cursor_param": "after", "next_cursor": "/0/next"}});
    assert_eq!(after(bare, r#"[{"next": "c"}]"#).as_deref(), Some("c"));
}
