//! Native tests against recorded-shape responses (`tests/fixtures/`): GitLab's `X-Next-Page`
//! page-number header, and an events API sending the next URL in `X-Next-Page-Url`.

use sluice_sdk::prelude::*;
use sluice_sdk::testing::{self, Harness};

use crate::NextHeader;

const GITLAB_PAGE_1: &str = include_str!("../tests/fixtures/gitlab_issues_page1.json");
const GITLAB_PAGE_2: &str = include_str!("../tests/fixtures/gitlab_issues_page2.json");
const EVENTS_PAGE_1: &str = include_str!("../tests/fixtures/events_page1.json");
const EVENTS_PAGE_2: &str = include_str!("../tests/fixtures/events_page2.json");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

const GITLAB_ISSUES: &str = "https://gitlab.com/api/v4/projects/278964/issues";

/// The connection of the README's GitLab example.
fn gitlab_config() -> Value {
    json!({
        "stream": "issues",
        "url": GITLAB_ISSUES,
        "next_header": "X-Next-Page",
        "next_param": "page",
        "primary_key": "/id",
        "params": {"scope": "all", "state": "all", "order_by": "created_at", "sort": "asc", "per_page": 100},
        "incremental": {"field": "/created_at", "param": "created_after", "start": "2024-03-01T00:00:00Z"}
    })
}

/// GitLab's offset pagination headers, as GitLab sends them (`X-Next-Page` empty on the last
/// page).
fn gitlab(request: &Request) -> Response {
    let (body, page, next, prev) = match request.query_param("page").as_deref() {
        None | Some("1") => (GITLAB_PAGE_1, "1", "2", ""),
        Some("2") => (GITLAB_PAGE_2, "2", "", "1"),
        Some(other) => panic!("unexpected page {other}"),
    };
    testing::json_response(fixture(body))
        .with_url(request.full_url())
        .with_header("x-page", page)
        .with_header("x-per-page", "100")
        .with_header("x-next-page", next)
        .with_header("x-prev-page", prev)
        .with_header("x-total", "3")
        .with_header("x-total-pages", "2")
}

fn events_config() -> Value {
    json!({
        "stream": "events",
        "url": "https://api.example.com/v2/events",
        "next_header": "X-Next-Page-Url",
        "records": "/events",
        "primary_key": "/id",
        "params": {"limit": 2},
        "headers": {"Accept": "application/json"}
    })
}

fn events(request: &Request) -> Response {
    match request.query_param("after").as_deref() {
        None => testing::json_response(fixture(EVENTS_PAGE_1))
            .with_url(request.full_url())
            .with_header("X-Next-Page-Url", "/v2/events?limit=2&after=evt_01HQ9"),
        Some("evt_01HQ9") => {
            testing::json_response(fixture(EVENTS_PAGE_2)).with_url(request.full_url())
        }
        Some(other) => panic!("unexpected cursor {other}"),
    }
}

#[test]
fn spec_and_discover() {
    let spec = testing::spec::<NextHeader>();
    assert_eq!(spec.name, "next_header");
    assert_eq!(
        spec.auth_schemes,
        vec![AuthScheme::Bearer, AuthScheme::ApiKey, AuthScheme::Basic]
    );
    assert_eq!(
        spec.config_schema["required"],
        json!(["url", "next_header"])
    );
    let catalog = testing::discover::<NextHeader>(&gitlab_config()).unwrap();
    assert_eq!(catalog.allowed_hosts, vec!["gitlab.com"]);
    assert_eq!(catalog.streams.len(), 1);
    let stream = &catalog.streams[0];
    assert_eq!(stream.name, "issues");
    assert_eq!(stream.primary_key, vec!["/id".to_owned()]);
    assert_eq!(stream.cursor_field.as_deref(), Some("/created_at"));
    assert_eq!(
        stream.sync_modes,
        vec![SyncMode::FullRefresh, SyncMode::Incremental]
    );
    let plain = testing::discover::<NextHeader>(
        &json!({"url": "http://127.0.0.1:9000/items", "next_header": "X-Next"}),
    )
    .unwrap();
    assert_eq!(plain.allowed_hosts, vec!["127.0.0.1:9000"]);
    assert_eq!(plain.streams[0].name, "records");
    assert_eq!(plain.streams[0].sync_modes, vec![SyncMode::FullRefresh]);
}

#[test]
fn config_errors() {
    let message = |config: Value| match testing::check::<NextHeader>(&config) {
        Err(Error::InvalidConfig(message)) => message,
        other => panic!("expected invalid-config, got {other:?}"),
    };
    let base = |extra: Value| {
        let mut config = json!({"url": "https://api.example.com/items", "next_header": "X-Next"});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        config
    };
    assert_eq!(
        message(base(json!({"next_header": "X Next"}))),
        "`next_header` is `X Next`; write a header name like `X-Next-Page-Url`"
    );
    assert_eq!(
        message(base(json!({"records": "data"}))),
        "`records` is `data`, not a JSON pointer; write it like `/data` (or `\"\"` for the whole body)"
    );
    assert_eq!(
        message(base(json!({"params": {"filter": {"a": 1}}}))),
        "`params.filter` is an object; use a string, a number or a boolean"
    );
    assert_eq!(
        message(base(
            json!({"incremental": {"field": "", "param": "since"}})
        )),
        "`incremental.field` is empty; point at the cursor field, like `/updated_at`"
    );
    assert!(message(base(json!({"next_param": ""}))).starts_with("`next_param` is empty"));
    assert!(message(base(json!({"url": "/items"}))).contains("not a usable base URL"));
    assert!(message(json!({"url": "https://h/x"})).contains("missing field `next_header`"));
    let err = Harness::<NextHeader>::new(events_config(), "records")
        .run(|_| Response::new(200))
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig(
            "unknown stream `records`; this connection has one stream, `events`".into()
        )
    );
}

#[test]
fn page_number_header_with_incremental_start_and_cursor() {
    let run = Harness::<NextHeader>::new(gitlab_config(), "issues")
        .run(gitlab)
        .unwrap();
    let urls: Vec<String> = run.requests().map(Request::full_url).collect();
    assert_eq!(
        urls,
        vec![
            format!(
                "{GITLAB_ISSUES}?scope=all&state=all&order_by=created_at&sort=asc&per_page=100&created_after=2024-03-01T00%3A00%3A00Z"
            ),
            format!(
                "{GITLAB_ISSUES}?scope=all&state=all&order_by=created_at&sort=asc&per_page=100&created_after=2024-03-01T00%3A00%3A00Z&page=2"
            ),
        ]
    );
    assert!(run.requests().all(|r| r.authenticate));
    let iids: Vec<u64> = run
        .records
        .iter()
        .map(|r| r["iid"].as_u64().unwrap())
        .collect();
    assert_eq!(iids, vec![441001, 441002, 441003]);
    assert_eq!(run.records[1]["state"], "closed");
    assert!(run.steps[1].next.is_done(), "an empty X-Next-Page ends");
    assert_eq!(
        run.state,
        Some(json!({"cursor": "2024-03-01T10:15:00.000Z"}))
    );

    // The next sync filters from the cursor, and drops the boundary record GitLab's inclusive
    // filter sends back.
    let run = Harness::<NextHeader>::new(gitlab_config(), "issues")
        .with_state(run.state.unwrap())
        .run(|request| {
            assert_eq!(
                request.query_param("created_after").as_deref(),
                Some("2024-03-01T10:15:00.000Z")
            );
            testing::json_response(fixture(GITLAB_PAGE_2)).with_header("x-next-page", "")
        })
        .unwrap();
    assert!(run.records.is_empty());
    assert_eq!(
        run.state,
        Some(json!({"cursor": "2024-03-01T10:15:00.000Z"}))
    );
}

#[test]
fn next_url_header_relative_to_the_answering_url() {
    let run = Harness::<NextHeader>::new(events_config(), "events")
        .run(events)
        .unwrap();
    let second = &run.steps[1].request;
    assert_eq!(
        second.full_url(),
        "https://api.example.com/v2/events?limit=2&after=evt_01HQ9"
    );
    assert!(
        second.query.is_empty(),
        "the next URL carries the whole query"
    );
    assert_eq!(second.header_value("accept"), Some("application/json"));
    assert!(second.authenticate);
    let ids: Vec<&str> = run
        .records
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["evt_01HQ8", "evt_01HQ9", "evt_01HQA"]);
    assert_eq!(run.records[2]["data"]["carrier"], "UPS");
    assert_eq!(
        run.state,
        Some(json!({})),
        "no incremental config, no cursor"
    );
}

#[test]
fn a_repeated_or_bad_next_page_ends_or_fails() {
    // A header naming the URL just fetched ends the stream instead of looping.
    let run = Harness::<NextHeader>::new(events_config(), "events")
        .run(|request| {
            testing::json_response(fixture(EVENTS_PAGE_2))
                .with_url(request.full_url())
                .with_header("x-next-page-url", request.full_url())
        })
        .unwrap();
    assert_eq!(run.steps.len(), 1);
    // So does a token equal to the one just sent.
    let run = Harness::<NextHeader>::new(gitlab_config(), "issues")
        .with_max_pages(5)
        .run(|request| {
            let page = request
                .query_param("page")
                .map_or("2".to_owned(), |p| p.into_owned());
            testing::json_response(json!([])).with_header("x-next-page", page)
        })
        .unwrap();
    assert_eq!(run.steps.len(), 2);

    let err = Harness::<NextHeader>::new(events_config(), "events")
        .run(|_| {
            testing::json_response(fixture(EVENTS_PAGE_2))
                .with_header("x-next-page-url", "mailto:ops@example.com")
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "the `X-Next-Page-Url` header is `mailto:ops@example.com`, not an http(s) URL; if it holds a token, set `next_param`".into()
        )
    );
    let err = Harness::<NextHeader>::new(events_config(), "events")
        .run(|_| testing::json_response(json!({"items": []})))
        .unwrap_err();
    assert_eq!(
        err,
        Error::UnexpectedResponse(
            "expected an array of records at `/events` of the response body, found nothing there"
                .into()
        )
    );
}

#[test]
fn resume_re_sends_the_pending_page() {
    let pending = Request::get("https://api.example.com/v2/events?limit=2&after=evt_01HQ9")
        .header("Accept", "application/json")
        .authenticated();
    let run = Harness::<NextHeader>::new(events_config(), "events")
        .resume(pending, events)
        .unwrap();
    assert_eq!(run.records.len(), 1);
    assert_eq!(run.records[0]["id"], "evt_01HQA");
}
